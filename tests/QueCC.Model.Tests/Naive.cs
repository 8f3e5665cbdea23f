using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Tests;

/// <summary>Explicit-loop reference math in double precision: the independent oracle the tensor code is checked against.</summary>
internal static class Naive
{
    public static double[] Flat(Tensor t) => t.detach().to_type(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();

    public static Dictionary<string, double[]> Params(nn.Module m) =>
        m.named_parameters().ToDictionary(p => p.name, p => Flat(p.parameter));

    /// <summary>x (T, In) · W(Out, In)ᵀ + b.</summary>
    public static double[,] Linear(double[,] x, double[] w, double[]? b, int outDim)
    {
        int t = x.GetLength(0), inDim = x.GetLength(1);
        var y = new double[t, outDim];
        for (int i = 0; i < t; i++)
            for (int o = 0; o < outDim; o++)
            {
                double s = b?[o] ?? 0;
                for (int k = 0; k < inDim; k++) s += x[i, k] * w[o * inDim + k];
                y[i, o] = s;
            }
        return y;
    }

    public static double[,] LayerNorm(double[,] x, double[] g, double[] b, double eps)
    {
        int t = x.GetLength(0), c = x.GetLength(1);
        var y = new double[t, c];
        for (int i = 0; i < t; i++)
        {
            double mean = 0, v = 0;
            for (int k = 0; k < c; k++) mean += x[i, k];
            mean /= c;
            for (int k = 0; k < c; k++) v += (x[i, k] - mean) * (x[i, k] - mean);
            v /= c;
            for (int k = 0; k < c; k++) y[i, k] = (x[i, k] - mean) / Math.Sqrt(v + eps) * g[k] + b[k];
        }
        return y;
    }

    public static double[,] RmsNorm(double[,] x, double[] g, double eps)
    {
        int t = x.GetLength(0), c = x.GetLength(1);
        var y = new double[t, c];
        for (int i = 0; i < t; i++)
        {
            double ms = 0;
            for (int k = 0; k < c; k++) ms += x[i, k] * x[i, k];
            ms /= c;
            for (int k = 0; k < c; k++) y[i, k] = x[i, k] / Math.Sqrt(ms + eps) * g[k];
        }
        return y;
    }

    public static double[,] Map(double[,] x, Func<double, double> f)
    {
        var y = (double[,])x.Clone();
        for (int i = 0; i < y.GetLength(0); i++) for (int k = 0; k < y.GetLength(1); k++) y[i, k] = f(y[i, k]);
        return y;
    }

    public static double[,] Add(double[,] a, double[,] b)
    {
        var y = (double[,])a.Clone();
        for (int i = 0; i < y.GetLength(0); i++) for (int k = 0; k < y.GetLength(1); k++) y[i, k] += b[i, k];
        return y;
    }

    public static double[,] Mul(double[,] a, double[,] b)
    {
        var y = (double[,])a.Clone();
        for (int i = 0; i < y.GetLength(0); i++) for (int k = 0; k < y.GetLength(1); k++) y[i, k] *= b[i, k];
        return y;
    }

    /// <summary>
    /// Multi-head attention by explicit softmax loops. q (T, H·D), k/v (S, KVH·D); query head h reads kv head h / (H/KVH).
    /// allowed(i, j) says whether query i may see key j.
    /// </summary>
    public static double[,] Attention(double[,] q, double[,] k, double[,] v, int heads, int kvHeads, int headDim, Func<int, int, bool> allowed)
    {
        int t = q.GetLength(0), s = k.GetLength(0);
        var y = new double[t, heads * headDim];
        for (int h = 0; h < heads; h++)
        {
            int kh = h / (heads / kvHeads);
            for (int i = 0; i < t; i++)
            {
                var scores = new double[s];
                double max = double.NegativeInfinity;
                for (int j = 0; j < s; j++)
                {
                    if (!allowed(i, j)) { scores[j] = double.NegativeInfinity; continue; }
                    double dot = 0;
                    for (int d = 0; d < headDim; d++) dot += q[i, h * headDim + d] * k[j, kh * headDim + d];
                    scores[j] = dot / Math.Sqrt(headDim);
                    max = Math.Max(max, scores[j]);
                }
                double z = 0;
                for (int j = 0; j < s; j++) { scores[j] = double.IsNegativeInfinity(scores[j]) ? 0 : Math.Exp(scores[j] - max); z += scores[j]; }
                for (int d = 0; d < headDim; d++)
                {
                    double acc = 0;
                    for (int j = 0; j < s; j++) if (scores[j] != 0) acc += scores[j] / z * v[j, kh * headDim + d];
                    y[i, h * headDim + d] = acc;
                }
            }
        }
        return y;
    }

    /// <summary>RoPE written pair by pair: element d and d + D/2 of each head rotate by angle pos · θ^(−2d/D).</summary>
    public static double[,] Rope(double[,] x, int heads, int headDim, int[] positions, double theta)
    {
        var y = (double[,])x.Clone();
        int half = headDim / 2;
        for (int i = 0; i < x.GetLength(0); i++)
            for (int h = 0; h < heads; h++)
                for (int d = 0; d < half; d++)
                {
                    double angle = positions[i] * Math.Pow(theta, -2.0 * d / headDim);
                    double a = x[i, h * headDim + d], b = x[i, h * headDim + d + half];
                    y[i, h * headDim + d] = a * Math.Cos(angle) - b * Math.Sin(angle);
                    y[i, h * headDim + d + half] = b * Math.Cos(angle) + a * Math.Sin(angle);
                }
        return y;
    }

    public static double[,] Rows(Tensor t2d)
    {
        long r = t2d.shape[0], c = t2d.shape[1];
        var f = Flat(t2d);
        var y = new double[r, c];
        for (int i = 0; i < r; i++) for (int k = 0; k < c; k++) y[i, k] = f[i * c + k];
        return y;
    }

    public static void AssertClose(double[,] expected, Tensor actual2d, double tol, string what)
    {
        var a = Rows(actual2d);
        Assert.Equal(expected.GetLength(0), a.GetLength(0));
        Assert.Equal(expected.GetLength(1), a.GetLength(1));
        double worst = 0;
        for (int i = 0; i < a.GetLength(0); i++)
            for (int k = 0; k < a.GetLength(1); k++)
                worst = Math.Max(worst, Math.Abs(expected[i, k] - a[i, k]));
        Assert.True(worst <= tol, $"{what}: max abs error {worst:g4} > {tol:g4}");
    }
}
