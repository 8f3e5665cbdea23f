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
    public static Tensor Plus(this Tensor t, double value)
    {
        using Scalar s = value;
        var r = t.add(s, One);
        GC.KeepAlive(s);
        return r;
    }

    /// <summary>t · value, the Scalar alive for the whole call.</summary>
    public static Tensor Times(this Tensor t, double value)
    {
        using Scalar s = value;
        var r = t.mul(s);
        GC.KeepAlive(s);
        return r;
    }

    /// <summary>t / value, the Scalar alive for the whole call.</summary>
    public static Tensor Over(this Tensor t, double value)
    {
        using Scalar s = value;
        var r = t.div(s);
        GC.KeepAlive(s);
        return r;
    }

    /// <summary>t − value for integer tensors (positions), the Scalar alive for the whole call.</summary>
    public static Tensor Minus(this Tensor t, long value)
    {
        using Scalar s = value;
        var r = t.sub(s);
        GC.KeepAlive(s);
        return r;
    }
}
