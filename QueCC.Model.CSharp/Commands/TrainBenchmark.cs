using System.Diagnostics;
using QueCC.Model.Data;
using QueCC.Model.Llava;
using QueCC.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Commands;

/// <summary>
/// Trainer throughput against a bare forward/backward/step loop on the same batches: the headline rates come from the median
/// step time over all timed steps, the <c>Mean…</c> ones from the best round's total time. Overheads are in percent.
/// </summary>
public sealed record BenchTrainResult(string Preset, string Device, int Steps, int BatchSize, int Repeats, double TrainerSamplesPerSecond,
                                      double BareSamplesPerSecond, double OverheadPercent, double TrainerMeanSamplesPerSecond,
                                      double BareMeanSamplesPerSecond, double MeanOverheadPercent, long PeakWorkingSetBytes, long PeakManagedBytes);

/// <summary><c>quecc bench train</c>: the <see cref="Trainer"/>'s overhead over a bare training loop.</summary>
public static class TrainBenchmark
{
    /// <summary>
    /// Trainer throughput against a bare loop (collate, forward, backward, AdamW step — no clipping, metrics, TensorBoard,
    /// progress or checkpoint logic) over the same batches of a random-init <paramref name="preset"/> model on synthetic
    /// shapes data, in a temporary folder. A trainer step is timed with its bookkeeping (metrics line, TensorBoard scalars,
    /// progress callback). One untimed pass of each warms the process first (JIT tiers, libtorch's allocator and thread pool:
    /// without it the first loops measured run up to 40% slower, and the trainer, with more code to tier up, longest), then <paramref name="repeats"/> rounds alternate which
    /// loop goes first; the first <paramref name="warmupSteps"/> steps of every loop are not timed.
    /// Headline: the median step time over all timed steps of each loop (on a shared 2-core machine single steps spike to
    /// 3–4× from neighbours and GC; the median is what a long run converges to). The mean of the best round is reported too.
    /// Memory: the process's peak working set (native libtorch included) and the largest managed heap seen.
    /// </summary>
    public static BenchTrainResult Run(string preset = "tiny", int steps = 20, int batchSize = 8, string stage = "finetune",
                                       string device = "cpu", int seed = 0, int warmupSteps = 5, int repeats = 3, Action<string>? log = null)
    {
        if (steps < 1) throw new UserInputException($"steps {steps}: expected at least 1");
        if (batchSize < 1) throw new UserInputException($"batch size {batchSize}: expected at least 1");
        if (repeats < 1) throw new UserInputException($"repeats {repeats}: expected at least 1");
        if (warmupSteps < 0) throw new UserInputException($"warmup steps {warmupSteps}: expected 0 or more");
        var root = Path.Combine(Path.GetTempPath(), $"quecc-benchtrain-{Guid.NewGuid():N}");
        long managedPeak = 0;
        void SampleHeap() => managedPeak = Math.Max(managedPeak, GC.GetTotalMemory(false));
        try
        {
            var modelDir = LlavaEntryPoints.InitModel(preset, "quecc", 4, Path.Combine(root, "model"), seed);
            int total = steps + warmupSteps;
            var dataJson = SyntheticData.Make("shapes", total * batchSize, seed, 0, Path.Combine(root, "data"));
            var opts = new TrainOptions
            {
                ModelDir = modelDir, DataJson = dataJson, OutDir = Path.Combine(root, "run"), Stage = stage, BatchSize = batchSize, MaxSteps = total,
                Device = device, Seed = seed, SaveEvery = 0, TensorBoard = true, MaxLength = 2048, GroupByLength = false,
                // Like for like with the bare loop, which encodes every batch through the tower: one epoch visits each image
                // once, so kept features would only add the cost of encoding images one at a time.
                FeatureCacheMb = 0,
            };
            BareLoop(modelDir, dataJson, stage, device, seed, batchSize, total, opts, SampleHeap);
            Trainer.Train(opts with { OutDir = Path.Combine(root, "warmup") }, _ => SampleHeap(), log);
            var trainerSteps = new List<double>();
            var bareSteps = new List<double>();
            double trainerBest = double.MaxValue, bareBest = double.MaxValue;
            for (int r = 0; r < repeats; r++)
            {
                void RunTrainer()
                {
                    var t = Trainer.Train(opts with { OutDir = Path.Combine(root, $"run{r}") }, _ => SampleHeap(), log).StepSeconds.Skip(warmupSteps).ToList();
                    trainerSteps.AddRange(t);
                    trainerBest = Math.Min(trainerBest, t.Sum());
                }
                void RunBare()
                {
                    var b = BareLoop(modelDir, dataJson, stage, device, seed, batchSize, total, opts, SampleHeap).Skip(warmupSteps).ToList();
                    bareSteps.AddRange(b);
                    bareBest = Math.Min(bareBest, b.Sum());
                }
                if (r % 2 == 0) { RunTrainer(); RunBare(); } else { RunBare(); RunTrainer(); }
            }

            double trainerRate = batchSize / Runtime.Stats.Median(trainerSteps), bareRate = batchSize / Runtime.Stats.Median(bareSteps);
            double trainerMean = steps * batchSize / trainerBest, bareMean = steps * batchSize / bareBest;
            return new BenchTrainResult(preset, device, steps, batchSize, repeats, trainerRate, bareRate, (bareRate / trainerRate - 1) * 100,
                                        trainerMean, bareMean, (bareMean / trainerMean - 1) * 100,
                                        Process.GetCurrentProcess().PeakWorkingSet64, managedPeak);
        }
        finally
        {
            try { Directory.Delete(root, true); } catch (IOException) { }
        }
    }

    /// <summary>The bare loop's per-step seconds, every step included.</summary>
    private static List<double> BareLoop(string modelDir, string dataJson, string stage, string device, int seed, int batchSize, int total,
                                         TrainOptions opts, Action sampleHeap)
    {
        var st = Trainer.ParseStage(stage);
        using var model = LlavaCheckpoint.Load(modelDir, null, Runtime.Devices.Resolve(device));
        var trainable = Trainer.Freeze(model, st);
        var data = LlavaDataset.Load(dataJson, Path.GetDirectoryName(dataJson)!, model.Tokenizer!, model.Config.Style, model.VisualTokenCount, 2048, queryRule: model.Config.Settings.QueryRule);
        var order = DataOrder.Epoch(data.Examples.Select(e => e.Length).ToList(), seed, 0, batchSize, false);
        using var opt = new AdamW(trainable.Select(t => (t.Name, (Tensor)t.Param)).ToList());
        var seconds = new List<double>(total);
        for (int s = 0; s < total; s++)
        {
            var sw = Stopwatch.StartNew();
            using (var scope = torch.NewDisposeScope())
            {
                var batch = LlavaDataset.Collate(model, order.Skip(s * batchSize).Take(batchSize).Select(i => data.Examples[i]).ToList());
                model.Loss(batch).backward();
                opt.Step(Trainer.PeakLr(opts, st));
                using (torch.no_grad()) foreach (var (_, p) in trainable) p.grad?.zero_();
            }
            seconds.Add(sw.Elapsed.TotalSeconds);
            sampleHeap();
        }
        return seconds;
    }
}
