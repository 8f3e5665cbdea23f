using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Runtime;

/// <summary>Device selection at run time, so a user who swaps in a CUDA runtime package gets GPU work with no code change.</summary>
public static class Devices
{
    /// <summary>Resolves "auto" | "cpu" | "cuda" | "cuda:N" to a device; "auto" picks CUDA when the loaded runtime has it.</summary>
    public static Device Resolve(string name)
    {
        switch (name.Trim().ToLowerInvariant())
        {
            case "auto":
                return torch.cuda.is_available() ? CUDA : CPU;
            case "cpu":
                return CPU;
            case var s when s == "cuda" || s.StartsWith("cuda:"):
                if (!torch.cuda.is_available())
                    throw new UserInputException($"device '{name}': CUDA is not available in the loaded TorchSharp runtime (TorchSharp-cpu has none); expected one of auto, cpu");
                return torch.device(s);
            default:
                throw new UserInputException($"device '{name}': expected one of auto, cpu, cuda, cuda:N");
        }
    }
}
