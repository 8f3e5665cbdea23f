namespace QueCC.Model.Runtime;

/// <summary>Small statistics the benchmarks share.</summary>
internal static class Stats
{
    /// <summary>Median of a non-empty sequence (mean of the two middle values for an even count).</summary>
    public static double Median(IEnumerable<double> xs)
    {
        var s = xs.Order().ToArray();
        if (s.Length == 0) throw new ArgumentException("median of an empty sequence");
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
