using QueCC.Model.Compression;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Compression;

/// <summary>
/// Second oracle for the window layout: the conv, the K×K windows and multi-head attention written as explicit
/// loops over windows, heads and keys (double precision), using only the module's state dict. The per-token
/// MLPs (q_proj, k_proj, v_proj, text_projection) are plain torch functional calls: they do not touch the layout.
/// </summary>
public class WindowOracleTests
{
    private const double Tolerance = 1e-5;
    private const int Width = 8, Heads = 2, Multi = 12, Text = 5, Grid = 6, Batch = 2;

    internal static ProjectorConfig SmallConfig(string kind, int kernel, int stride) => new ProjectorConfig
    {
        ProjectorType = "mlp2x_gelu", VisionWidth = Width, LlmWidth = 10, CompressionTypeName = kind,
        InputTokenCount = Grid * Grid, TextEmbeddingSize = Text, KernelSize = kernel, Stride = stride,
        MultiLevelSizeRaw = Multi, NumHeadsRaw = Heads,
    }.Validate();

    private static Tensor Mlp(Dictionary<string, Tensor> sd, string p, Tensor x)
    {
        var h = nn.functional.gelu(nn.functional.linear(x, sd[p + ".0.weight"], sd[p + ".0.bias"]));
        h = nn.functional.linear(h, sd[p + ".2.weight"], sd[p + ".2.bias"]);
        return nn.functional.layer_norm(h, [h.shape[^1]], sd[p + ".3.weight"], sd[p + ".3.bias"], 1e-6);
    }

    private static float[] F(Tensor t) => t.contiguous().data<float>().ToArray();

    /// <summary>Naive QueCC: returns (B, h·h, W) as nested arrays [b][token][channel].</summary>
    private static double[][][] NaiveQuecc(Dictionary<string, Tensor> sd, ProjectorConfig c, Tensor x, Tensor xm, Tensor? t)
    {
        if (t is not null)
        {
            var tp = nn.functional.linear(t, sd["text_projection.0.weight"], sd["text_projection.0.bias"]);
            x = x + nn.functional.layer_norm(tp, [Width], sd["text_projection.1.weight"], sd["text_projection.1.bias"], 1e-6);
        }
        float[] q = F(Mlp(sd, "q_proj", x)), k = F(Mlp(sd, "k_proj", xm)), v = F(Mlp(sd, "v_proj", xm));
        float[] cw = F(sd["q_downsample.weight"]), cb = F(sd["q_downsample.bias"]);
        float[] inW = F(sd["clip_attn.in_proj_weight"]), inB = F(sd["clip_attn.in_proj_bias"]);
        float[] outW = F(sd["clip_attn.out_proj.weight"]), outB = F(sd["clip_attn.out_proj.bias"]);
        int n = Grid * Grid, ks = c.Kernel, s = c.StrideOrKernel, h = c.OutputGrid, win = Grid / h, hd = Width / Heads;

        // Row r of the in-projection block `block` (0 q, 1 k, 2 v) applied to a vector.
        double Proj(int block, int r, Func<int, double> vec)
        {
            double acc = inB[block * Width + r];
            for (int j = 0; j < Width; j++) acc += inW[(block * Width + r) * Width + j] * vec(j);
            return acc;
        }

        var result = new double[Batch][][];
        for (int b = 0; b < Batch; b++)
        {
            result[b] = new double[h * h][];
            for (int i = 0; i < h; i++)
            for (int j = 0; j < h; j++)
            {
                // Depthwise conv at output position (i, j).
                var qd = new double[Width];
                for (int ch = 0; ch < Width; ch++)
                {
                    double acc = cb[ch];
                    for (int a = 0; a < ks; a++)
                    for (int bb = 0; bb < ks; bb++)
                        acc += cw[(ch * ks + a) * ks + bb] * q[(b * n + (i * s + a) * Grid + (j * s + bb)) * Width + ch];
                    qd[ch] = acc;
                }
                // The window of output (i, j): rows [i·K, (i+1)·K), cols [j·K, (j+1)·K).
                var tokens = new List<int>();
                for (int a = 0; a < win; a++)
                for (int bb = 0; bb < win; bb++)
                    tokens.Add((i * win + a) * Grid + (j * win + bb));
                var qp = Enumerable.Range(0, Width).Select(r => Proj(0, r, ch => qd[ch])).ToArray();
                var kp = tokens.Select(tok => Enumerable.Range(0, Width).Select(r => Proj(1, r, ch => k[(b * n + tok) * Width + ch])).ToArray()).ToArray();
                var vp = tokens.Select(tok => Enumerable.Range(0, Width).Select(r => Proj(2, r, ch => v[(b * n + tok) * Width + ch])).ToArray()).ToArray();
                var concat = new double[Width];
                for (int head = 0; head < Heads; head++)
                {
                    var scores = new double[tokens.Count];
                    for (int m = 0; m < tokens.Count; m++)
                    {
                        double dot = 0;
                        for (int d = 0; d < hd; d++) dot += qp[head * hd + d] * kp[m][head * hd + d];
                        scores[m] = dot / Math.Sqrt(hd);
                    }
                    double max = scores.Max(), sum = scores.Sum(z => Math.Exp(z - max));
                    for (int m = 0; m < tokens.Count; m++)
                    {
                        double p = Math.Exp(scores[m] - max) / sum;
                        for (int d = 0; d < hd; d++) concat[head * hd + d] += p * vp[m][head * hd + d];
                    }
                }
                var o = new double[Width];
                for (int r = 0; r < Width; r++)
                {
                    o[r] = outB[r];
                    for (int ch = 0; ch < Width; ch++) o[r] += outW[r * Width + ch] * concat[ch];
                }
                result[b][i * h + j] = o;
            }
        }
        return result;
    }

    [Theory]
    [InlineData("quecc", 3, 3)]   // 2×2 windows of 3×3
    [InlineData("quecc", 2, 2)]   // 3×3 windows of 2×2
    [InlineData("quecc", 4, 2)]   // overlapping conv, 2×2 grid of 3×3 windows
    [InlineData("quecc_noquery", 2, 2)]
    public void Vectorised_windows_equal_a_loop_over_windows(string kind, int kernel, int stride)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(7);
        var config = SmallConfig(kind, kernel, stride);
        using var m = (QueccCompressor)VisionTokenCompressor.Create(config);
        using (torch.no_grad())
            foreach (var p in m.parameters()) p.add_(torch.randn_like(p) * 0.3); // non-default biases and LayerNorm affine
        var x = torch.randn(Batch, Grid * Grid, Width);
        var xm = torch.randn(Batch, Grid * Grid, Multi);
        var t = kind == "quecc" ? torch.randn(Batch, 1, Text) : null;
        using var _ = torch.no_grad();
        var got = m.Forward(x, xm, t);
        var sd = m.state_dict();
        var want = NaiveQuecc(sd, config, x, xm, t);
        int h = config.OutputGrid;
        Assert.Equal(new long[] { Batch, h * h, Width }, got.shape);
        var g = got.data<float>().ToArray();
        double maxDiff = 0;
        for (int b = 0; b < Batch; b++)
        for (int tok = 0; tok < h * h; tok++)
        for (int ch = 0; ch < Width; ch++)
            maxDiff = Math.Max(maxDiff, Math.Abs(g[(b * h * h + tok) * Width + ch] - want[b][tok][ch]));
        Assert.InRange(maxDiff, 0, Tolerance);
    }

    [Fact]
    public void Avgpool_is_the_mean_of_each_window()
    {
        using var scope = torch.NewDisposeScope();
        var config = SmallConfig("avgpool", 3, 3);
        using var m = VisionTokenCompressor.Create(config);
        var x = torch.randn(Batch, Grid * Grid, Width);
        var got = m.Forward(x).data<float>().ToArray();
        var xs = x.data<float>().ToArray();
        Assert.Equal(Batch * 4 * Width, got.Length);
        for (int b = 0; b < Batch; b++)
        for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
        for (int ch = 0; ch < Width; ch++)
        {
            double sum = 0;
            for (int a = 0; a < 3; a++)
            for (int c = 0; c < 3; c++)
                sum += xs[(b * 36 + (i * 3 + a) * 6 + (j * 3 + c)) * Width + ch];
            Assert.Equal(sum / 9, got[(b * 4 + i * 2 + j) * Width + ch], 5);
        }
    }

    [Fact]
    public void None_passes_every_token_through()
    {
        using var scope = torch.NewDisposeScope();
        var config = SmallConfig("none", 3, 3);
        using var m = VisionTokenCompressor.Create(config);
        var x = torch.randn(Batch, Grid * Grid, Width);
        Assert.True(TensorAssert.Same(m.Forward(x), x));
    }

    [Theory]
    [InlineData("quecc")]
    [InlineData("quecc_noquery")]
    [InlineData("tokenpacker")]
    public void Gradients_reach_every_parameter(string kind)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        var config = SmallConfig(kind, 2, 2);
        using var projector = new MultimodalProjector(config);
        using (torch.no_grad())
            foreach (var p in projector.parameters()) p.add_(torch.randn_like(p) * 0.1); // out_proj/in_proj biases start at 0
        var x = torch.randn(Batch, Grid * Grid, Width);
        var xm = torch.randn(Batch, Grid * Grid, Multi);
        var t = torch.randn(Batch, 1, Text);
        var y = projector.Forward(x, xm, t);
        // Weighted sum: a plain sum would give LayerNorm-weight gradients that can cancel by symmetry.
        (y * torch.randn_like(y)).sum().backward();
        var names = projector.named_parameters().Select(p => p.name).ToList();
        Assert.Contains("0.clip_attn.in_proj_weight", names);
        Assert.Contains("0.k_proj.3.weight", names);
        Assert.Equal(kind == "quecc", names.Contains("0.text_projection.0.weight"));
        foreach (var (name, p) in projector.named_parameters())
        {
            Assert.True(p.grad is not null, $"{name}: no gradient");
            Assert.True(p.grad!.abs().sum().item<float>() > 0, $"{name}: gradient is all zero");
        }
    }
}
