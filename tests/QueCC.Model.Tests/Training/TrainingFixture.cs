using QueCC.Model.Commands;
using QueCC.Model.Data;
using QueCC.Model.Training;

namespace QueCC.Model.Tests.Training;

/// <summary>A tiny QueCC model folder (V = 4), a small shapes data set and one short stage-1 run, shared by the data and training tests.</summary>
public sealed class TrainingFixture : IDisposable
{
    public string Root { get; } = Path.Combine(Path.GetTempPath(), $"quecc-train-{Guid.NewGuid():N}");
    public string ModelDir => Path.Combine(Root, "model");
    public string DataDir => Path.Combine(Root, "shapes");
    public string DataJson => Path.Combine(DataDir, "data.json");
    public TrainResult Pretrain { get; }

    public TrainingFixture()
    {
        LlavaEntryPoints.InitModel("tiny", "quecc", 4, ModelDir, seed: 3);
        SyntheticData.Make("shapes", 16, 7, 0, DataDir);
        Pretrain = Trainer.Train(Options("pretrain-a") with { MaxSteps = 3 });
    }

    public string Out(string name) => Path.Combine(Root, "runs", name);

    public TrainOptions Options(string outName, string stage = "pretrain") => new()
    {
        ModelDir = ModelDir, DataJson = DataJson, OutDir = Out(outName), Stage = stage, BatchSize = 4, GradAccum = 1, Lr = 1e-3,
        WarmupRatio = 0.25, Device = "cpu", Seed = 11, SaveEvery = 0, TensorBoard = false, MaxLength = 256,
    };

    public void Dispose()
    {
        try { Directory.Delete(Root, true); } catch (IOException) { }
    }
}

[CollectionDefinition("training")]
public sealed class TrainingCollection : ICollectionFixture<TrainingFixture>;
