using static TorchSharp.torch;

namespace QueCC.Model.Tests;

internal static class TensorAssert
{
    /// <summary>Same dtype, shape and every element (TorchSharp's equal() returns a tensor, not a bool).</summary>
    public static bool Same(Tensor a, Tensor b) =>
        a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && (a.numel() == 0 || a.eq(b).all().item<bool>());
}
