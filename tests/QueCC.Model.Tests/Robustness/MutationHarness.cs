using System.Text;
using System.Text.Json.Nodes;

namespace QueCC.Model.Tests.Robustness;

/// <summary>What one malformed input did.</summary>
public enum Outcome
{
    /// <summary>Loaded (and used) without complaint; right for inputs that may still be valid.</summary>
    Accepted,
    /// <summary>A <see cref="UserInputException"/> with a non-empty one-line message.</summary>
    Rejected,
    /// <summary>Any other exception, or a user error whose message spans lines.</summary>
    Crash,
    /// <summary>Still running after the per-case timeout.</summary>
    Hang,
    /// <summary>Loaded although the mutation made it invalid by construction.</summary>
    AcceptedMalformed,
    /// <summary>An input that is valid by construction (BOM, CRLF, …) was rejected or read wrongly.</summary>
    ValidMishandled,
}

/// <summary>One mutated input: a label for failure reports, whether it is invalid by construction, and the code that loads it.</summary>
public sealed record MutationCase(string Label, bool MustReject, Action Run, bool MustAccept = false);

/// <summary>Counts per target, the first failures, and the table the issue asks for.</summary>
public sealed class Tally(string target)
{
    public string Target { get; } = target;
    public Dictionary<Outcome, int> Counts { get; } = Enum.GetValues<Outcome>().ToDictionary(o => o, _ => 0);
    public List<string> Failures { get; } = [];
    public int Tried => Counts.Values.Sum();
    public int Bad => Counts[Outcome.Crash] + Counts[Outcome.Hang] + Counts[Outcome.AcceptedMalformed] + Counts[Outcome.ValidMishandled];

    public void Add(MutationCase c, Outcome o, string detail)
    {
        Counts[o]++;
        if (o is Outcome.Crash or Outcome.Hang or Outcome.AcceptedMalformed or Outcome.ValidMishandled && Failures.Count < 12)
            Failures.Add($"{o}: {c.Label}: {detail}");
    }

    public static string Header => "| target | tried | clean one-line reject | crash | hang | accepted though malformed | valid input mishandled | accepted (may be valid) |\n|---|---|---|---|---|---|---|---|";

    public string Row => $"| {Target} | {Tried} | {Counts[Outcome.Rejected]} | {Counts[Outcome.Crash]} | {Counts[Outcome.Hang]} | {Counts[Outcome.AcceptedMalformed]} | {Counts[Outcome.ValidMishandled]} | {Counts[Outcome.Accepted]} |";
}

public static class Harness
{
    /// <summary>The issue's hang threshold.</summary>
    public static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Inputs valid by construction run the whole load + generate path, which on a loaded 2-core machine can take
    /// longer than the hang threshold for malformed input (a CI run saw 10 s exceeded once); they get this much.</summary>
    public static readonly TimeSpan ValidCaseTimeout = TimeSpan.FromSeconds(120);

    /// <summary>QUECC_MUTATION_SCALE multiplies every case count (1 in CI; larger for the measured table).</summary>
    public static double Scale => double.TryParse(Environment.GetEnvironmentVariable("QUECC_MUTATION_SCALE"), System.Globalization.CultureInfo.InvariantCulture, out var s) && s > 0 ? s : 1;

    public static int Count(int baseCount) => Math.Max(1, (int)Math.Round(baseCount * Scale));

    public static (Outcome, string) Run(MutationCase c)
    {
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var scope = TorchSharp.torch.NewDisposeScope();
                c.Run();
            }
            catch (Exception e) { error = e; }
        }, 256 << 20) { IsBackground = true };
        thread.Start();
        var limit = c.MustAccept ? ValidCaseTimeout : CaseTimeout;
        if (!thread.Join(limit)) return (Outcome.Hang, $"still running after {limit.TotalSeconds} s");
        return Classify(c, error);
    }

    public static (Outcome, string) Classify(MutationCase c, Exception? error)
    {
        if (error is null)
            return c.MustReject ? (Outcome.AcceptedMalformed, "no error") : (Outcome.Accepted, "");
        if (error is MalformedAcceptedException) return (Outcome.AcceptedMalformed, error.Message);
        if (error is MishandledException) return (Outcome.ValidMishandled, error.Message);
        if (error is RecordSkippedException skip)
            return skip.Reason.Length > 0 && !skip.Reason.Contains('\n') ? (Outcome.Rejected, skip.Reason) : (Outcome.Crash, $"skip reason not one line: {skip.Reason}");
        if (error is UserInputException u)
        {
            if (u.Message.Length == 0 || u.Message.Contains('\n') || u.Message.Contains('\r'))
                return (Outcome.Crash, $"user error with a multi-line or empty message: {u.Message}");
            if (c.MustAccept) return (Outcome.ValidMishandled, u.Message);
            return (Outcome.Rejected, u.Message);
        }
        return (Outcome.Crash, $"{error.GetType().Name}: {error.Message.Split('\n')[0]}");
    }

    public static Tally RunAll(string target, IEnumerable<MutationCase> cases)
    {
        var tally = new Tally(target);
        foreach (var c in cases)
        {
            var (o, detail) = Run(c);
            tally.Add(c, o, detail);
        }
        return tally;
    }

    /// <summary>Appends the row to the file named by QUECC_MUTATION_TABLE (for the measured table), if set.</summary>
    public static void Report(Tally t, Xunit.Abstractions.ITestOutputHelper output)
    {
        output.WriteLine(Tally.Header);
        output.WriteLine(t.Row);
        foreach (var f in t.Failures) output.WriteLine(f);
        if (Environment.GetEnvironmentVariable("QUECC_MUTATION_TABLE") is { Length: > 0 } path)
            lock (typeof(Harness)) File.AppendAllText(path, t.Row + "\n");
    }

    public static void AssertClean(Tally t)
    {
        Assert.True(t.Bad == 0, $"{t.Target}: {t.Bad} of {t.Tried} malformed inputs were not cleanly rejected:\n{string.Join("\n", t.Failures)}");
        Assert.True(t.Counts[Outcome.Rejected] > 0, $"{t.Target}: no case was rejected; the mutations do not reach the validation");
    }
}

/// <summary>JSON values a config key can be set to, each with whether it is wrong for an integer size key by construction.</summary>
public static class Values
{
    /// <summary>Values of the wrong JSON type (or out of Int32) for an integer key.</summary>
    public static readonly string[] WrongForInt =
    [
        "null", "true", "false", "\"16\"", "\"\"", "1.5", "-0.5", "1e300", "2e9", "2147483648", "-2147483649", "9223372036854775808",
        "[]", "[16]", "{}", "{\"a\": 1}", "\"\\ud800\"", "\"\\udfff\\ud800\"", "NaN", "Infinity",
    ];

    /// <summary>Integers that are never a valid size: zero, negative, int.MaxValue.</summary>
    public static readonly string[] BadInt = ["0", "-1", "-2147483648", "2147483647"];

    public static readonly string[] WrongForString = ["null", "5", "true", "[]", "{}", "\"\\ud800\"", "\"\\udc00abc\""];

    public static readonly string[] WrongForFloat = ["null", "\"1e-5\"", "true", "[]", "{}", "-1", "0", "1e999", "-1e999", "NaN"];

    public static readonly string[] WrongForBool = ["null", "\"true\"", "1", "0", "[]", "{}"];

    public static string Pick(Random r, string[] pool) => pool[r.Next(pool.Length)];

    /// <summary>Replaces (or adds) <paramref name="key"/> in a flat JSON object by raw text.</summary>
    public static string Set(string json, string key, string rawValue)
    {
        var o = JsonNode.Parse(json)!.AsObject();
        o.Remove(key);
        var text = o.ToJsonString();
        var insert = $"\"{key}\": {rawValue}";
        return text.Length <= 2 ? "{" + insert + "}" : "{" + insert + "," + text[1..];
    }

    /// <summary>Writes <paramref name="key"/> a second time (first with a plausible value, last with the real one).</summary>
    public static string Duplicate(string json, string key)
    {
        var o = JsonNode.Parse(json)!.AsObject();
        if (!o.TryGetPropertyValue(key, out var v)) return json;
        return "{" + $"\"{key}\": {v?.ToJsonString() ?? "null"}," + json.TrimStart()[1..];
    }

    /// <summary>Byte-level damage: truncation, a flipped byte, an inserted or deleted run. The result may or may not be valid.</summary>
    public static byte[] Damage(Random r, byte[] b)
    {
        var list = b.ToList();
        switch (r.Next(5))
        {
            case 0: return b[..r.Next(b.Length)];
            case 1: { var c = (byte[])b.Clone(); c[r.Next(c.Length)] ^= (byte)(1 << r.Next(8)); return c; }
            case 2: { int at = r.Next(b.Length); list.InsertRange(at, Enumerable.Range(0, 1 + r.Next(8)).Select(_ => (byte)r.Next(256))); return list.ToArray(); }
            case 3: { int at = r.Next(b.Length); list.RemoveRange(at, Math.Min(1 + r.Next(8), b.Length - at)); return list.ToArray(); }
            default: { var c = (byte[])b.Clone(); c[r.Next(c.Length)] = Structural[r.Next(Structural.Length)]; return c; }
        }
    }

    private static readonly byte[] Structural = "\"{}[],:\\0x"u8.ToArray().Append((byte)0xFF).Append((byte)0xC3).ToArray();

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
}
