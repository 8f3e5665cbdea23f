using System.Text;

namespace QueCC.Model;

/// <summary>
/// The one exception type for errors a user causes: a malformed file, config key, image, data record or flag value.
/// The CLI prints its <see cref="Exception.Message"/> as one line and exits non-zero; every other exception type is a
/// programming error and crashes with its stack trace. The message is always a single line (line breaks become "; ",
/// control characters and unpaired surrogates are escaped, long values are cut) so it can be shown as is.
/// </summary>
public class UserInputException : Exception
{
    /// <summary>The file (or flag / source) the bad input came from, when known.</summary>
    public string? File { get; }
    /// <summary>The key, field or column that holds the bad value, when known.</summary>
    public string? Field { get; }
    /// <summary>The offending value as written (shortened), when known.</summary>
    public string? Value { get; }
    /// <summary>What would have been accepted, when known.</summary>
    public string? Expected { get; }

    public UserInputException(string message) : base(OneLine(message)) { }

    public UserInputException(string message, Exception inner) : base(OneLine(message), inner) { }

    /// <summary>"FILE: FIELD = VALUE is invalid; expected EXPECTED".</summary>
    public UserInputException(string file, string field, string value, string expected)
        : base(OneLine($"{file}: {field} = {Shorten(value)} is invalid; expected {expected}"))
    {
        File = file; Field = field; Value = value; Expected = expected;
    }

    /// <summary>Values longer than this are cut in messages (a mutated file can hold a megabyte-long name).</summary>
    public const int MaxValueChars = 200;

    /// <summary>A value as it may appear in a one-line message: escaped control characters / lone surrogates, cut to <see cref="MaxValueChars"/>.</summary>
    public static string Shorten(string? value)
    {
        if (value is null) return "null";
        var cut = value.Length > MaxValueChars ? value[..MaxValueChars] + $"… ({value.Length} chars)" : value;
        return Escape(cut);
    }

    private static string Escape(string s)
    {
        StringBuilder? sb = null;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            bool pairedHigh = char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]);
            bool bad = (char.IsControl(c) && c != '\n' && c != '\r') || (char.IsSurrogate(c) && !pairedHigh && !(char.IsLowSurrogate(c) && i > 0 && char.IsHighSurrogate(s[i - 1])));
            if (bad)
            {
                sb ??= new StringBuilder(s, 0, i, s.Length + 16);
                sb.Append($"\\u{(int)c:x4}");
            }
            else sb?.Append(c);
        }
        return sb?.ToString() ?? s;
    }

    private static string OneLine(string message) =>
        Escape(message.Replace("\r\n", "; ").Replace('\r', ' ').Replace("\n", "; "));
}
