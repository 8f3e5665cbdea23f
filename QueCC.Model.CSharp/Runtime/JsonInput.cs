using System.Text.Json;

namespace QueCC.Model.Runtime;

/// <summary>Parsing user-supplied JSON with the project's one-line error.</summary>
internal static class JsonInput
{
    /// <summary>The root element of <paramref name="json"/>; invalid JSON throws "SOURCE: not valid JSON (…)".</summary>
    public static JsonElement ParseRoot(string json, string source)
    {
        try { return JsonDocument.Parse(json).RootElement; }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not valid JSON ({e.Message})"); }
    }
}
