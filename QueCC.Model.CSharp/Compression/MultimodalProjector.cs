using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QueCC.Model.Compression;

/// <summary>
/// The LLaVA <c>mm_projector</c> with the compressor in front, laid out as the reference's Sequential so the
/// state-dict keys match: mlp2x_gelu = [compressor, Linear(C→D), GELU, Linear(D→D)] → keys <c>0.*</c>, <c>1.*</c>, <c>3.*</c>;
/// mlpNx_gelu continues with GELU, Linear pairs; linear = [compressor, Linear]; identity = [compressor].
/// With compression <c>none</c> there is no compressor entry, so the keys are those of a stock LLaVA-1.5
/// projector (<c>0.*</c>, <c>2.*</c>) and its mm_projector.bin-converted weights load unchanged.
/// </summary>
public sealed class MultimodalProjector : nn.Module
{
    public ProjectorConfig Config { get; }
    /// <summary>The compressor (an <see cref="IdentityCompressor"/> for <c>none</c>, then not part of the state dict).</summary>
    public VisionTokenCompressor Compressor { get; }
    private readonly List<nn.Module<Tensor, Tensor>> mlp = [];

    public MultimodalProjector(ProjectorConfig config, Device? device = null) : base("mm_projector")
    {
        config.Validate();
        if (device?.type != DeviceType.META) Runtime.ModelMemory.Check(config.Source, "the projector", config.ParameterEstimate());
        Config = config;
        Compressor = VisionTokenCompressor.Create(config, device);
        int index = 0;
        if (config.Compression != CompressionType.None)
            register_module((index++).ToString(), Compressor);
        var depth = config.MlpDepth;
        for (int i = 0; i < depth; i++)
        {
            if (i > 0)
                Add(index++, nn.GELU());
            Add(index++, nn.Linear(i == 0 ? config.Width : config.LlmHidden, config.LlmHidden, device: device));
        }
    }

    /// <summary>
    /// Nothing to do: the Sequential indices are registered in the constructor. TorchSharp calls this when the projector
    /// becomes a child (of <see cref="Llava.LlavaModel"/>'s tree), and its reflection would add <see cref="Compressor"/>'s
    /// backing field as a second child, giving the compressor's tensors a second, non-checkpoint key.
    /// </summary>
    protected override void RegisterComponents() { }

    private void Add(int index, nn.Module<Tensor, Tensor> layer)
    {
        mlp.Add(layer);
        register_module(index.ToString(), layer);
    }

    /// <summary>Compressed tokens only: (B, N, C) [+ multi, text] → (B, V, C).</summary>
    public Tensor Compress(Tensor imageFeatures, Tensor? imageFeaturesMulti = null, Tensor? textFeatures = null) =>
        Compressor.Forward(imageFeatures, imageFeaturesMulti, textFeatures);

    /// <summary>Visual tokens for the LLM: (B, N, C) [+ multi, text] → (B, V, hidden_size).</summary>
    public Tensor Forward(Tensor imageFeatures, Tensor? imageFeaturesMulti = null, Tensor? textFeatures = null)
    {
        var x = Compress(imageFeatures, imageFeaturesMulti, textFeatures); // (B, V, C)
        foreach (var layer in mlp)
            x = layer.call(x); // (B, V, D)
        return x;
    }
}
