using System.Text.Json;
using System.Text.Json.Serialization;

namespace QueCC.Model.Runtime;

/// <summary>Parsing user-supplied JSON with the project's one-line error (<see cref="UserInputException"/>).</summary>
public static class JsonInput
{
    /// <summary>
    /// The root element of <paramref name="json"/>. Invalid JSON, a key given twice in one object (System.Text.Json
    /// would silently keep one of them) and strings holding unpaired surrogate escapes throw "SOURCE: …".
    /// </summary>
    public static JsonElement ParseRoot(string json, string source)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(json).RootElement; }
        catch (JsonException e) { throw new UserInputException($"{source}: not valid JSON ({e.Message})"); }
        CheckWellFormed(root, source);
        return root;
    }

    /// <summary>Rejects duplicate keys and strings that are not valid Unicode anywhere below <paramref name="e"/>.</summary>
    public static void CheckWellFormed(JsonElement e, string source, string path = "$")
    {
        try { Walk(e, source, path, 0); }
        catch (InvalidOperationException ex)
        {
            throw new UserInputException($"{source}: a string below {path} is not valid Unicode (unpaired surrogate escape?): {ex.Message}");
        }
    }

    private static void Walk(JsonElement e, string source, string path, int depth)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var p in e.EnumerateObject())
                {
                    if (!seen.Add(p.Name)) throw new UserInputException($"{source}: key \"{UserInputException.Shorten(p.Name)}\" appears twice in {path}; expected each key once");
                    Walk(p.Value, source, $"{path}.{UserInputException.Shorten(p.Name)}", depth + 1);
                }
                break;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in e.EnumerateArray()) Walk(item, source, $"{path}[{i++}]", depth + 1);
                break;
            case JsonValueKind.String:
                _ = e.GetString();
                break;
        }
    }

    /// <summary>
    /// Options for binding user JSON to config records: numbers must be JSON numbers, null is refused for
    /// non-nullable members (so <c>"vocab_size": null</c> or <c>"mm_projector_type": null</c> is an error, not a default or a crash).
    /// </summary>
    public static readonly JsonSerializerOptions StrictOptions = new()
    {
        NumberHandling = JsonNumberHandling.Strict,
        RespectNullableAnnotations = true,
    };

    /// <summary>Binds <paramref name="node"/> to <typeparamref name="T"/>; a wrong JSON type names the key, its value and the expected type.</summary>
    public static T Deserialize<T>(JsonElement node, string source, string what, JsonSerializerOptions? options = null) where T : class
    {
        if (node.ValueKind != JsonValueKind.Object)
            throw new UserInputException($"{source}: {what} is a JSON {node.ValueKind.ToString().ToLowerInvariant()}; expected an object");
        try
        {
            return node.Deserialize<T>(options ?? StrictOptions)
                   ?? throw new UserInputException($"{source}: {what} is JSON null; expected an object");
        }
        catch (JsonException e)
        {
            throw TypeError(node, source, what, e);
        }
        catch (InvalidOperationException e)
        {
            throw new UserInputException($"{source}: {what} holds a string that is not valid Unicode: {e.Message}");
        }
    }

    /// <summary>"SOURCE: key 'K' = VALUE has the wrong JSON type; expected …" from a binding <see cref="JsonException"/>.</summary>
    public static UserInputException TypeError(JsonElement node, string source, string what, JsonException e)
    {
        var path = e.Path ?? "$";
        var key = path.StartsWith("$.") ? path[2..] : path;
        var top = key.Split('.', '[')[0];
        string value = node.ValueKind == JsonValueKind.Object && node.TryGetProperty(top, out var v) ? v.GetRawText() : "?";
        var expected = e.Message.Contains("could not be converted to")
            ? ExpectedFromMessage(e.Message)
            : e.Message.Split(". Path:")[0];
        return new UserInputException(source, key, value, $"{expected} ({what})");
    }

    private static string ExpectedFromMessage(string message)
    {
        // "The JSON value could not be converted to System.Int32. Path: …" → "a JSON integer in the Int32 range"
        var t = message.Split("could not be converted to ")[1].Split(". Path")[0].Trim();
        return t switch
        {
            "System.Int32" or "System.Nullable`1[System.Int32]" => "an integer in [-2147483648, 2147483647]",
            "System.Int64" or "System.Nullable`1[System.Int64]" => "a 64-bit integer",
            "System.Double" or "System.Nullable`1[System.Double]" => "a finite number",
            "System.Boolean" or "System.Nullable`1[System.Boolean]" => "true or false",
            "System.String" => "a string",
            "System.Int32[]" => "an array of integers",
            _ => $"a value of type {t}",
        };
    }
}

/// <summary>
/// The memory a model may need before its weights are allocated: <see cref="DefaultFraction"/> of the memory
/// the runtime reports as available, or <see cref="Variable"/> bytes when set. A config asking for more is a user
/// error naming the computed parameter count, instead of an allocator abort minutes later.
/// </summary>
public static class ModelMemory
{
    public const string Variable = "QUECC_MAX_MODEL_BYTES";
    public const double DefaultFraction = 0.8;

    public static long LimitBytes
    {
        get
        {
            var text = Environment.GetEnvironmentVariable(Variable);
            if (!string.IsNullOrWhiteSpace(text))
                return long.TryParse(text, out var v) && v > 0 ? v : throw new UserInputException(Variable, "environment variable", text, "a positive number of bytes");
            return (long)(DefaultFraction * GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);
        }
    }

    /// <summary>Throws when <paramref name="parameters"/> × <paramref name="bytesPerParameter"/> exceeds <see cref="LimitBytes"/>.</summary>
    public static void Check(string source, string what, double parameters, int bytesPerParameter = 4)
    {
        double bytes = parameters * bytesPerParameter;
        long limit = LimitBytes;
        if (!(bytes <= limit))
            throw new UserInputException($"{source}: {what} needs {parameters:0.###e0} parameters = {bytes / 1e9:0.##} GB at {bytesPerParameter} bytes each, more than the memory limit {limit / 1e9:0.##} GB ({DefaultFraction:0%} of available memory unless {Variable} is set)");
    }
}
