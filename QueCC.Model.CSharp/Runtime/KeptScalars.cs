using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Runtime;

/// <summary>
/// Arithmetic on tensors whose Scalar arguments stay reachable through the native call. TorchSharp 0.107 turns the
/// implicit arguments of <c>a + b</c> (alpha = 1) and of <c>t * 0.5</c>, <c>t - 1</c>, <c>t / n</c> into Scalar
/// temporaries that nothing references once their handle is read; a GC started meanwhile by another thread lets the
/// finalizer free the native Scalar while libtorch still reads it (dotnet/TorchSharp#1434): training died with
/// "Expected false to be true … toFloat at Scalar.h:140" from THSTensor_add (exit 134). Static Scalars are always
/// reachable, and the helpers below keep the ones they make alive until the call returns.
/// </summary>
public static class KeptScalars
{
    /// <summary>alpha of a plain sum or difference.</summary>
    public static readonly Scalar One = 1;

    /// <summary>a + b (broadcasting), with alpha held by a static field.</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary>t + value, the Scalar alive for the whole call.</summary>
    public static Tensor Plus(this Tensor t, double value) => Apply(t, value, (a, s) => a.add(s, One));

    /// <summary>t · value, the Scalar alive for the whole call.</summary>
    public static Tensor Times(this Tensor t, double value) => Apply(t, value, (a, s) => a.mul(s));

    /// <summary>t / value, the Scalar alive for the whole call.</summary>
    public static Tensor Over(this Tensor t, double value) => Apply(t, value, (a, s) => a.div(s));

    /// <summary>t − value for integer tensors (positions: an integer Scalar keeps the result an integer tensor).</summary>
    public static Tensor Minus(this Tensor t, long value) => Apply(t, value, (a, s) => a.sub(s));

    // The Scalar is this call's parameter, referenced until the op has returned, then freed at once.
    private static Tensor Apply(Tensor t, Scalar s, Func<Tensor, Scalar, Tensor> op)
    {
        using (s)
        {
            var r = op(t, s);
            GC.KeepAlive(s);
            return r;
        }
    }
}
