using QueCC.Model.Commands;

namespace QueCC.Model.Tests.Llava;

public class BenchmarkTests
{
    [Fact]
    public void Prefill_benchmark_reports_the_2NQV_cost_model_for_each_point()
    {
        var r = LlavaEntryPoints.BenchmarkPrefill("tiny", new[] { 1, 4, 36 }, textTokens: 50, repeats: 1, decodeTokens: 3);
        // tiny Qwen2 by hand: embed 512·64 + 2 layers × (q 64·64+64, k,v 64·32+32 each, o 64·64, mlp 3·64·128, 2 norms 64) + final norm 64
        const long n = 512 * 64 + 2 * ((64 * 64 + 64) + 2 * (64 * 32 + 32) + 64 * 64 + 3 * 64 * 128 + 2 * 64) + 64;
        Assert.Equal(107_072, n);
        Assert.Equal(n, r.LlmParameters);
        Assert.Equal(new[] { 1, 4, 36 }, r.Points.Select(p => p.VisualTokens));
        Assert.Equal(new[] { 2.0 * n * 51, 2.0 * n * 54, 2.0 * n * 86 }, r.Points.Select(p => p.ModelFlops));
        Assert.All(r.Points, p => Assert.True(p.MeanMilliseconds > 0));
        Assert.True(r.DecodeTokensPerSecondCached > 0 && r.DecodeTokensPerSecondUncached > 0);
    }
}
