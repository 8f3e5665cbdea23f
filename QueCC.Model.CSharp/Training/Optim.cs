using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Training;

/// <summary>
/// AdamW as torch.optim.AdamW (single-tensor path, amsgrad off), written out so its moments and step count are plain
/// named tensors the checkpoint can store bit for bit. The learning rate is passed per step (the schedule lives outside).
/// </summary>
public sealed class AdamW : IDisposable
{
    private readonly IReadOnlyList<(string Name, Tensor Param)> _params;
    private readonly Dictionary<string, (Tensor ExpAvg, Tensor ExpAvgSq)> _state = new();
    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    public double WeightDecay { get; }
    /// <summary>Optimizer steps taken (the bias corrections use it).</summary>
    public long StepCount { get; set; }

    public AdamW(IReadOnlyList<(string Name, Tensor Param)> parameters, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0)
    {
        _params = parameters;
        (Beta1, Beta2, Eps, WeightDecay) = (beta1, beta2, eps, weightDecay);
        foreach (var (name, p) in parameters)
            _state[name] = (torch.zeros_like(p).DetachFromDisposeScope(), torch.zeros_like(p).DetachFromDisposeScope());
    }

    /// <summary>Decay applies to tensors with ≥ 2 dimensions (weights, embeddings), not to biases or norm scales, as HF's Trainer groups them.</summary>
    public static bool Decays(Tensor p) => p.dim() >= 2;

    /// <summary>One update from the parameters' own gradients.</summary>
    public void Step(double lr) => Step(lr, null);

    /// <summary>
    /// One update; <paramref name="grads"/>, when given, holds each parameter's gradient in constructor order (null = no
    /// gradient, skipped) instead of <c>p.grad</c> — how the bf16 path feeds float32 copies of the bf16 model's gradients
    /// to the float32 master weights.
    /// </summary>
    public void Step(double lr, IReadOnlyList<Tensor?>? grads)
    {
        if (grads is not null && grads.Count != _params.Count)
            throw new ArgumentException($"{grads.Count} gradients for {_params.Count} parameters");
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        StepCount++;
        double bc1 = 1 - Math.Pow(Beta1, StepCount), bc2 = 1 - Math.Pow(Beta2, StepCount);
        // Explicit Scalars, alive (and disposed) for the whole step. An implicit double → Scalar temporary is unreachable
        // as soon as its handle is read, so the GC's finalizer thread may free the native Scalar while libtorch still
        // reads it (TorchSharp 0.107 does not keep it alive; dotnet/TorchSharp#1434) — once seen as a Scalar with a
        // garbage tag, "Expected false to be true", in a sweep run.
        // (lerp_'s weight is a 0-dim tensor, which the dispose scope keeps alive.)
        using Scalar decay = 1 - lr * WeightDecay, beta2 = Beta2, oneMinusBeta2 = 1 - Beta2, sqrtBc2 = Math.Sqrt(bc2), eps = Eps, stepSize = -lr / bc1;
        Tensor oneMinusBeta1 = 1 - Beta1;
        for (int i = 0; i < _params.Count; i++)
        {
            var (name, p) = _params[i];
            var g = grads is null ? p.grad : grads[i];
            if (g is null) continue;
            var (m, v) = _state[name];
            if (WeightDecay != 0 && Decays(p)) p.mul_(decay);
            m.lerp_(g, oneMinusBeta1);
            v.mul_(beta2).addcmul_(g, g, oneMinusBeta2);
            var denom = v.sqrt().div_(sqrtBc2).add_(eps);
            p.addcdiv_(m, denom, stepSize);
        }
    }

    /// <summary>Moments as <c>exp_avg/NAME</c>, <c>exp_avg_sq/NAME</c> (the tensors themselves, not copies).</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> StateTensors() =>
        _state.SelectMany(kv => new[] { new KeyValuePair<string, Tensor>("exp_avg/" + kv.Key, kv.Value.ExpAvg), new("exp_avg_sq/" + kv.Key, kv.Value.ExpAvgSq) });

    public void LoadState(Func<string, Tensor> read, long step)
    {
        using var _ = torch.no_grad();
        foreach (var (name, (m, v)) in _state)
        {
            using (var a = read("exp_avg/" + name)) m.copy_(a);
            using (var b = read("exp_avg_sq/" + name)) v.copy_(b);
        }
        StepCount = step;
    }

    public void Dispose()
    {
        foreach (var (m, v) in _state.Values) { m.Dispose(); v.Dispose(); }
    }
}

/// <summary>Learning-rate schedule of HF's get_cosine_schedule_with_warmup (as LLaVA uses): linear warmup from 0, then half a cosine to 0.</summary>
public static class LrSchedule
{
    /// <summary>HF's get_warmup_steps: ceil(ratio × total).</summary>
    public static int WarmupSteps(double warmupRatio, int totalSteps) => (int)Math.Ceiling(warmupRatio * totalSteps);

    /// <summary>The rate for 0-based optimizer step <paramref name="step"/> (the scheduler is stepped after the optimizer, so step 0 runs at factor(0)).</summary>
    public static double Cosine(double peakLr, int step, int totalSteps, int warmupSteps)
    {
        if (step < warmupSteps) return peakLr * step / Math.Max(1, warmupSteps);
        double progress = (double)(step - warmupSteps) / Math.Max(1, totalSteps - warmupSteps);
        return peakLr * Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * progress)));
    }
}
