/// The `quecc` verbs: each turns its Argu parse results into domain values, checks them, and calls the
/// pure core (F#) or the model library (C#). User errors are raised as InputError / UserInputException.
module QueCC.Experiments.Commands

open System
open System.Diagnostics
open System.IO
open Argu
open QueCC.Experiments.Data
open QueCC.Experiments.ScalingLaw
open QueCC.Experiments.Fitting
open QueCC.Experiments.ComputeOptimal
open QueCC.Experiments.Reproduce
open QueCC.Experiments.CliArgs

// ---------------------------------------------------------------------------------------------
// Output paths, checked before any work: a bad --out costs nothing and is named in one line.

/// A folder to write into, created when missing. A file in its place, or a place where no folder can be
/// created or written, is the user's to fix.
let outputFolder (flag: string) (path: string) =
    if File.Exists path then inputError "%s %s: is a file; expected a folder to write into (new or existing)" flag path
    try Directory.CreateDirectory path |> ignore
    with :? IOException | :? UnauthorizedAccessException as e -> inputError "%s %s: cannot create this folder (%s)" flag path (e.Message.Replace("\n", " "))
    let probe = Path.Combine(path, $".quecc-write-test-{Guid.NewGuid():N}")
    try
        File.WriteAllText(probe, "")
        File.Delete probe
    with :? IOException | :? UnauthorizedAccessException as e -> inputError "%s %s: cannot write into this folder (%s)" flag path (e.Message.Replace("\n", " "))

// ---------------------------------------------------------------------------------------------
// Verbs.

let private axisOf (lo, hi, count) : Axis = { Lo = lo; Hi = hi; Count = count }

let private gridOptionsOf (a: ParseResults<FitArgs>) =
    let g = paperGrid
    { Grid =
        { A = a.TryGetResult FitArgs.Grid_A |> Option.map axisOf |> Option.defaultValue g.A
          Alpha = a.TryGetResult FitArgs.Grid_Alpha |> Option.map axisOf |> Option.defaultValue g.Alpha
          Beta = a.TryGetResult FitArgs.Grid_Beta |> Option.map axisOf |> Option.defaultValue g.Beta
          D = a.TryGetResult FitArgs.Grid_D |> Option.map axisOf |> Option.defaultValue g.D }
      Fraction = a.GetResult(FitArgs.Grid_Fraction, defaultValue = 1.0)
      Seed = a.GetResult(FitArgs.Seed, defaultValue = 0) }

let private specOf (q: float option) =
    match q with
    | Some q when q < 0.0 -> inputError "--law-text-tokens %g: expected a count ≥ 0" q
    | Some q -> { LawTextTokens = q }
    | None -> defaultSpec

let private fitMethodOf (m: MethodArg) (grid: GridOptions) =
    match m with
    | MethodArg.Grid -> FitMethod.Grid grid
    | MethodArg.Continuous -> FitMethod.Continuous

let runFit (a: ParseResults<FitArgs>) =
    let path = a.GetResult FitArgs.Data
    let obs = load path (a.TryGetResult FitArgs.Task)
    let spec = specOf (a.TryGetResult FitArgs.Law_Text_Tokens)
    let grid = gridOptionsOf a
    let methodChoice = fitMethodOf (a.GetResult(FitArgs.Method, defaultValue = MethodArg.Grid)) grid
    let result =
        match methodChoice with
        | FitMethod.Grid g -> fitGrid spec g obs
        | FitMethod.Continuous ->
            let g = fitGrid spec { defaultGridOptions with Grid = grid.Grid } obs
            fitContinuousWith spec defaultContinuousOptions g.Params obs
    let boot =
        a.TryGetResult FitArgs.Bootstrap
        |> Option.map (fun b -> bootstrap spec methodChoice b grid.Seed 0.95 (Progress.reporter () "bootstrap" b) obs)
    let hold = a.TryGetResult FitArgs.Holdout_Llm |> Option.map (fun n -> holdout spec methodChoice n obs)
    if a.Contains FitArgs.Json then
        let node = Json.fit spec result boot
        hold |> Option.iter (fun h -> node["holdout"] <- Json.holdout h)
        if result.Method = "continuous" then node["atBounds"] <- Json.arr (atBounds obs result.Params |> List.map Json.str)
        printfn "%s" (Json.toText node)
    else
        let p = result.Params
        printfn "%s fit of %s (%d observations, T = V + %g)" result.Method path result.N spec.LawTextTokens
        printfn "  alpha = %.5f   beta = %.5f   A = %.5f   D = %.5f" p.Alpha p.Beta p.A p.D
        printfn "  SSE = %.6g   R² = %.5f   alpha/beta = %.2f" result.Sse result.R2 (p.Alpha / p.Beta)
        if result.Method = "continuous" then
            for note in atBounds obs p do
                printfn "  at a bound: %s" note
        boot
        |> Option.iter (fun b ->
            printfn "  95%% bootstrap intervals (%d resamples):" b.Resamples
            printfn "    alpha [%.5f, %.5f]   beta [%.5f, %.5f]" b.CiAlpha.Lo b.CiAlpha.Hi b.CiBeta.Lo b.CiBeta.Hi
            printfn "    A [%.5f, %.5f]   D [%.5f, %.5f]   alpha/beta [%.2f, %.2f]" b.CiA.Lo b.CiA.Hi b.CiD.Lo b.CiD.Hi b.AlphaOverBeta.Lo b.AlphaOverBeta.Hi)
        hold
        |> Option.iter (fun h ->
            printfn "  held-out %gB LLM: mean |relative error| %.2f%%, max %.2f%%" h.LlmParamsB (100.0 * h.MeanAbsRelativeError) (100.0 * h.MaxAbsRelativeError)
            for pt in h.Points do
                printfn "    V = %-4g observed %.4f predicted %.4f (%+.2f%%)" pt.VisualTokens pt.Observed pt.Predicted (100.0 * pt.RelativeError))
    0

let parseTokenSet (s: string) =
    s.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
    |> Array.map (fun t ->
        match Double.TryParse(t, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
        | true, v when v > 0.0 -> v
        | _ -> inputError "--tokens: '%s' is not a positive number; expected e.g. 1,4,16,36,64,144,576" t)
    |> List.ofArray

/// --cost flops | flops+query | measured:FILE.
let private costModelOf (spec: string) =
    match spec.Trim() with
    | s when s.ToLowerInvariant() = "flops" -> FlopsCost
    | s when s.ToLowerInvariant() = "flops+query" -> FlopsPlusQuery
    | s when s.StartsWith("measured:", StringComparison.OrdinalIgnoreCase) ->
        let path = s.Substring "measured:".Length
        if not (File.Exists path) then inputError "--cost %s: file %s not found; expected the output of `quecc bench latency --json`" spec path
        MeasuredLatency(parseMeasuredCost path (File.ReadAllText path))
    | _ -> inputError "--cost %s: expected flops, flops+query or measured:FILE" spec

let runFrontier (a: ParseResults<FrontierArgs>) =
    let path = a.GetResult FrontierArgs.Data
    let obs = load path (a.TryGetResult FrontierArgs.Task)
    let spec = specOf (a.TryGetResult FrontierArgs.Law_Text_Tokens)
    let q = a.GetResult FrontierArgs.Text_Tokens
    if q < 0.0 then inputError "--text-tokens %g: expected a count ≥ 0" q
    let result =
        match a.GetResult(FrontierArgs.Method, defaultValue = MethodArg.Continuous) with
        | MethodArg.Grid -> fitGrid spec defaultGridOptions obs
        | MethodArg.Continuous -> fitContinuous spec obs
    let tokenSet = a.TryGetResult FrontierArgs.Tokens |> Option.map parseTokenSet |> Option.defaultValue paperTokenSet
    let count = a.GetResult(FrontierArgs.Budgets, defaultValue = 25)
    if count < 2 then inputError "--budgets %d: expected at least 2" count
    let sizes = obs |> List.map (fun o -> o.LlmParamsB)
    let vs = obs |> List.map (fun o -> o.VisualTokens)
    let cost = a.TryGetResult FrontierArgs.Cost |> Option.map costModelOf |> Option.defaultValue FlopsCost
    let budgets = budgetsFor cost q tokenSet (List.min sizes * 0.6) (List.max sizes * 3.0) count
    let points = frontierUnder cost spec result.Params q tokenSet budgets
    let vStar = optimalVisualTokens spec result.Params q (min 1.0 (List.min vs)) (List.max vs)
    if a.Contains FrontierArgs.Json then
        Json.obj [ "textTokens", Json.num q
                   "cost", Json.str (CostModel.name cost)
                   "budgetUnit", Json.str (CostModel.unit cost)
                   "fit", Json.fit spec result None
                   "optimalVisualTokens", Json.optimal vStar
                   "optimalVisualTokensKind", Json.str (Json.optimalKind vStar)
                   "frontier", Json.arr (points |> List.map Json.frontierPoint) ]
        |> Json.toText
        |> printfn "%s"
    else
        printfn "%s fit: alpha = %.5f, beta = %.5f; Q = %g text tokens" result.Method result.Params.Alpha result.Params.Beta q
        printfn "optimal visual tokens V* = %.3f (%s)" vStar.Value (Json.optimalKind vStar)
        printfn "cost model %s" (CostModel.name cost)
        printfn "%14s %12s %8s %10s" ("budget " + CostModel.unit cost) "LLM (B)" "V" "error"
        for p in points do
            printfn "%14.4g %12.4f %8g %10.5f" p.Budget p.LlmParamsB p.VisualTokens p.Error
    0

let runReproduce (a: ParseResults<ReproduceArgs>) =
    let outDir = a.GetResult(ReproduceArgs.Out, defaultValue = "reproduce-out")
    outputFolder "--out" outDir
    let settings =
        { defaultSettings with
            Bootstrap = a.GetResult(ReproduceArgs.Bootstrap, defaultValue = defaultSettings.Bootstrap)
            Seed = a.GetResult(ReproduceArgs.Seed, defaultValue = 0) }
    let sw = Stopwatch.StartNew()
    let fams, files = run settings outDir (eprintfn "%s") (Progress.reporter ())
    for f in fams do
        let c = f.Continuous.Params
        let vstars = f.OptimalV |> List.map (fun (q, o) -> sprintf "V*(Q=%g) = %.3g" q o.Value) |> String.concat ", "
        printfn "%-18s alpha = %.4f [%.4f, %.4f]  beta = %.4f [%.4f, %.4f]  alpha/beta = %.2f  %s"
            f.Name c.Alpha f.Bootstrap.CiAlpha.Lo f.Bootstrap.CiAlpha.Hi c.Beta f.Bootstrap.CiBeta.Lo f.Bootstrap.CiBeta.Hi (c.Alpha / c.Beta) vstars
    printfn "wrote %d figure files, summary.json and summary.md to %s in %.1f s" files.Length (Path.GetFullPath outDir) sw.Elapsed.TotalSeconds
    0

let private median (xs: float list) = quantile 0.5 (Array.ofList xs)

let runBenchFit (a: ParseResults<BenchFitArgs>) =
    let repeats = a.GetResult(BenchFitArgs.Repeats, defaultValue = 5)
    if repeats < 1 then inputError "--repeats %d: expected at least 1" repeats
    let obs =
        match findRepoFile (Path.Combine("data", "paper", "visual_reasoning.csv")) with
        | Some p -> load p None
        | None -> inputError "data/paper/visual_reasoning.csv not found; run from the repository"
    let time f =
        f () |> ignore
        [ for _ in 1 .. repeats ->
              let sw = Stopwatch.StartNew()
              f () |> ignore
              sw.Elapsed.TotalSeconds ]
    let gridT = time (fun () -> fitGrid defaultSpec defaultGridOptions obs)
    let grid = fitGrid defaultSpec defaultGridOptions obs
    let contT = time (fun () -> fitContinuousWith defaultSpec defaultContinuousOptions grid.Params obs)
    let bootT =
        let sw = Stopwatch.StartNew()
        bootstrap defaultSpec FitMethod.Continuous 1000 0 0.95 ignore obs |> ignore
        sw.Elapsed.TotalSeconds
    let points = float paperGrid.Size
    let gridMedian = median gridT
    let pointsPerS = points / gridMedian
    let threads = TorchSharp.torch.get_num_threads ()
    if a.Contains BenchFitArgs.Json then
        Json.obj [ "gridPoints", Json.num points
                   "gridSeconds", Json.num gridMedian
                   "gridPointsPerSecond", Json.num pointsPerS
                   "continuousSeconds", Json.num (median contT)
                   "bootstrap1000ContinuousSeconds", Json.num bootT
                   "repeats", Json.num (float repeats)
                   "threads", Json.num (float threads) ]
        |> Json.toText
        |> printfn "%s"
    else
        printfn "quecc bench fit (paper visual-reasoning data, 28 observations, %d torch threads, median of %d)" threads repeats
        printfn "  grid search, exhaustive     %10.0f points in %7.3f s = %.3g points/s" points gridMedian pointsPerS
        printfn "  continuous fit (13 starts)  %7.3f s" (median contT)
        printfn "  bootstrap, 1000 continuous  %7.3f s" bootT
    0

let private parseInts (flag: string) (s: string) =
    s.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
    |> Array.map (fun t ->
        match Int32.TryParse t with
        | true, v when v > 0 -> v
        | _ -> inputError "%s: '%s' is not a positive integer; expected a comma-separated list such as 36,1" flag t)

let runCompress (a: ParseResults<CompressArgs>) =
    let shape =
        QueCC.Model.Commands.ProjectorTools.Compress(
            a.GetResult CompressArgs.Projector, a.GetResult CompressArgs.Config, a.GetResult CompressArgs.Features,
            a.GetResult CompressArgs.Out, a.GetResult(CompressArgs.Device, defaultValue = "cpu"))
    printfn "wrote image_tokens %A to %s" shape (a.GetResult CompressArgs.Out)
    0

let runDescribe (a: ParseResults<DescribeArgs>) =
    let config =
        match a.TryGetResult DescribeArgs.Config, a.TryGetResult DescribeArgs.Preset with
        | Some path, None -> QueCC.Model.Compression.ProjectorConfig.Load path
        | None, Some preset ->
            let p = QueCC.Model.Presets.Presets.Get preset
            let cfg =
                QueCC.Model.Commands.LlavaEntryPoints.BuildConfig(
                    p, a.GetResult(DescribeArgs.Compressor, defaultValue = "quecc"), a.GetResult(DescribeArgs.Visual_Tokens, defaultValue = 36))
            printfn "preset %s: LLM %s parameters" preset (p.Text.ParameterCount().ToString("N0"))
            cfg.Projector
        | _ -> inputError "describe: give exactly one of --config FILE or --preset NAME"
    printfn "%s" ((QueCC.Model.Commands.ProjectorTools.Describe config).Format())
    0

let runInitModel (a: ParseResults<InitModelArgs>) =
    let compressor = a.GetResult(InitModelArgs.Compressor, defaultValue = "quecc")
    // Without a compressor every patch is a visual token, so the count follows from the preset's tower.
    let visualTokens =
        match a.TryGetResult InitModelArgs.Visual_Tokens with
        | Some v -> v
        | None when compressor.Trim().ToLowerInvariant() = "none" -> (QueCC.Model.Presets.Presets.Get(a.GetResult InitModelArgs.Preset)).Vision.NumPatches
        | None -> 4
    let dir =
        QueCC.Model.Commands.LlavaEntryPoints.InitModel(
            a.GetResult InitModelArgs.Preset, compressor, visualTokens, a.GetResult InitModelArgs.Out,
            int64 (a.GetResult(InitModelArgs.Seed, defaultValue = 0)), Option.toObj (a.TryGetResult InitModelArgs.Vision_Tower))
    match a.TryGetResult InitModelArgs.Vision_Tower with
    | Some t -> printfn "wrote a %s model (random LLM and projector, vision tower from %s) to %s" (a.GetResult InitModelArgs.Preset) t (Path.GetFullPath dir)
    | None -> printfn "wrote a randomly initialised %s model to %s" (a.GetResult InitModelArgs.Preset) (Path.GetFullPath dir)
    0

let runGenerate (a: ParseResults<GenerateArgs>) =
    let temperature = a.GetResult(GenerateArgs.Temperature, defaultValue = 0.0)
    if temperature < 0.0 then inputError "--temperature %g: expected ≥ 0 (0 = greedy)" temperature
    let topP = a.GetResult(GenerateArgs.Top_P, defaultValue = 1.0)
    if not (topP > 0.0 && topP <= 1.0) then inputError "--top-p %g: expected a value in (0, 1]" topP
    let maxNew = a.GetResult(GenerateArgs.Max_New_Tokens, defaultValue = 64)
    if maxNew < 1 then inputError "--max-new-tokens %d: expected at least 1" maxNew
    let answer =
        QueCC.Model.Commands.LlavaEntryPoints.Generate(
            a.GetResult GenerateArgs.Model, a.TryGetResult GenerateArgs.Vision_Tower |> Option.toObj, a.GetResult GenerateArgs.Image,
            a.GetResult GenerateArgs.Prompt, maxNew, temperature, int64 (a.GetResult(GenerateArgs.Seed, defaultValue = 0)), topP)
    printfn "%s" answer
    0

let runMakeData (a: ParseResults<MakeDataArgs>) =
    let path =
        QueCC.Model.Data.SyntheticData.Make(
            a.GetResult MakeDataArgs.Kind, a.GetResult MakeDataArgs.Count, a.GetResult(MakeDataArgs.Seed, defaultValue = 0),
            a.GetResult(MakeDataArgs.Eval_Count, defaultValue = 0), a.GetResult MakeDataArgs.Out)
    printfn "wrote %s" path
    0

let private stageName (s: StageArg) = match s with StageArg.Pretrain -> "pretrain" | StageArg.Finetune -> "finetune"

let runTrain (a: ParseResults<TrainArgs>) =
    let opts =
        QueCC.Model.Training.TrainOptions(
            ModelDir = a.GetResult TrainArgs.Model,
            VisionTowerDir = (a.TryGetResult TrainArgs.Vision_Tower |> Option.toObj),
            Stage = stageName (a.GetResult TrainArgs.Stage),
            DataJson = a.GetResult TrainArgs.Data,
            ImagesDir = (a.TryGetResult TrainArgs.Images |> Option.toObj),
            OutDir = a.GetResult TrainArgs.Out,
            MaxSteps = (a.TryGetResult TrainArgs.Max_Steps |> Option.toNullable),
            Epochs = a.GetResult(TrainArgs.Epochs, defaultValue = 1),
            BatchSize = a.GetResult(TrainArgs.Batch_Size, defaultValue = 8),
            GradAccum = a.GetResult(TrainArgs.Grad_Accum, defaultValue = 1),
            Lr = (a.TryGetResult TrainArgs.Lr |> Option.toNullable),
            WarmupRatio = a.GetResult(TrainArgs.Warmup_Ratio, defaultValue = 0.03),
            WeightDecay = a.GetResult(TrainArgs.Weight_Decay, defaultValue = 0.0),
            MaxGradNorm = a.GetResult(TrainArgs.Max_Grad_Norm, defaultValue = 1.0),
            SaveEvery = a.GetResult(TrainArgs.Save_Every, defaultValue = 100),
            Seed = a.GetResult(TrainArgs.Seed, defaultValue = 42),
            Device = a.GetResult(TrainArgs.Device, defaultValue = "auto"),
            Precision = a.GetResult(TrainArgs.Precision, defaultValue = "auto"),
            PretrainedProjector = (a.TryGetResult TrainArgs.Pretrained_Projector |> Option.toObj),
            MaxLength = a.GetResult(TrainArgs.Max_Length, defaultValue = 2048),
            FeatureCacheMb = a.GetResult(TrainArgs.Feature_Cache_Mb, defaultValue = 2048),
            Resume = a.Contains TrainArgs.Resume,
            Strict = a.Contains TrainArgs.Strict)
    // Bound once: `Action<_>(f ())` would call `f ()` on every invocation, a new bar per step.
    let progress = Progress.trainReporterWith Progress.terminalColumns (fun s -> eprintfn "%s" s)
    let outExisted = Directory.Exists opts.OutDir
    let r =
        try QueCC.Model.Training.Trainer.Train(opts, Action<_>(progress), Action<string>(eprintfn "%s"))
        with _ ->
            // A run that failed before its first step leaves nothing worth keeping: no --out folder it created.
            let metrics = Path.Combine(opts.OutDir, "metrics.jsonl")
            let checkpoints = Path.Combine(opts.OutDir, "checkpoints")
            let stepsDone = (File.Exists metrics && FileInfo(metrics).Length > 0L) || Directory.Exists checkpoints
            if not outExisted && not stepsDone && Directory.Exists opts.OutDir then
                try Directory.Delete(opts.OutDir, true) with _ -> ()
            reraise ()
    printfn "trained %d/%d steps%s: loss %.4f → %.4f in %.1f s; metrics %s%s%s"
        r.Steps r.TotalSteps (match Option.ofNullable r.ResumedFromStep with Some s -> sprintf " (resumed from step %d)" s | None -> "")
        r.FirstLoss r.LastLoss r.TrainSeconds r.MetricsPath
        (match r.FinalDir with null -> "" | d -> "; final model " + d)
        (match r.ProjectorFile with null -> "" | f -> "; projector " + f)
    0

let runSweep (a: ParseResults<SweepArgs>) =
    let presetArg = a.GetResult SweepArgs.Preset
    let spec = Sweep.resolve presetArg
    let out = a.GetResult SweepArgs.Out
    let runs = Sweep.expand spec
    let devices = a.TryGetResult SweepArgs.Devices |> Option.map Sweep.parseDevices |> Option.defaultValue []
    let jobs = a.GetResult(SweepArgs.Jobs, defaultValue = max 1 devices.Length)
    if jobs < 1 then inputError "--jobs %d: expected at least 1" jobs
    if not devices.IsEmpty && jobs > devices.Length then
        inputError "--jobs %d with --devices %s: expected at most one job per device (--jobs %d or fewer)" jobs (String.Join(",", devices)) devices.Length
    let slurm: Sweep.SlurmOptions =
        { Time = a.TryGetResult SweepArgs.Time
          Partition = a.TryGetResult SweepArgs.Partition
          Mem = a.TryGetResult SweepArgs.Mem
          Gres = a.TryGetResult SweepArgs.Gres
          Account = a.TryGetResult SweepArgs.Account
          Extra = a.GetResults SweepArgs.Sbatch }
    Sweep.validateSlurm slurm
    let threads = a.GetResult(SweepArgs.Threads, defaultValue = max 1 (Environment.ProcessorCount / jobs))
    if threads < 1 then inputError "--threads %d: expected at least 1" threads
    TorchSharp.torch.set_num_threads threads
    let bootstrapB = a.GetResult(SweepArgs.Bootstrap, defaultValue = 200)
    let action =
        match a.TryGetResult SweepArgs.Emit_Slurm, a.TryGetResult SweepArgs.Only, a.Contains SweepArgs.Collect with
        | Some path, _, _ -> SweepRunner.EmitSlurm path
        | None, Some i, _ -> SweepRunner.Only i
        | None, None, true -> SweepRunner.Collect
        | None, None, false -> SweepRunner.Local
    SweepRunner.run
        { SweepRunner.PresetArg = presetArg; Spec = spec; Out = out; Runs = runs; Devices = devices; Jobs = jobs
          Slurm = slurm; Threads = threads; Bootstrap = bootstrapB; Action = action }

/// Reads (step, loss) from a metrics.jsonl; `path` names the file in errors. The trainer writes a non-finite
/// loss as null, so such steps are left out rather than rejected.
let readMetrics (path: string) =
    if Directory.Exists path then inputError "%s: is a folder; expected the metrics.jsonl a `quecc train` run writes (e.g. %s)" path (Path.Combine(path, "metrics.jsonl"))
    if not (File.Exists path) then inputError "%s: metrics file not found; expected the metrics.jsonl a `quecc train` run writes" path
    let field (n: int) (o: Text.Json.Nodes.JsonObject) (name: string) (expected: string) (read: Text.Json.Nodes.JsonValue -> 'T option) =
        let mutable node: Text.Json.Nodes.JsonNode = null
        match o.TryGetPropertyValue(name, &node), node with
        | false, _ -> inputError "%s:%d: missing \"%s\"; expected {\"step\": <int>, \"loss\": <number>, ...}" path n name
        | true, null -> None
        | true, v ->
            match box v with
            | :? Text.Json.Nodes.JsonValue as jv when (read jv).IsSome -> read jv
            | _ -> inputError "%s:%d: \"%s\" is %s; expected %s" path n name (v.ToJsonString()) expected
    let asInt (v: Text.Json.Nodes.JsonValue) = match v.TryGetValue<int>() with | true, i -> Some i | _ -> None
    let asFloat (v: Text.Json.Nodes.JsonValue) = match v.TryGetValue<float>() with | true, x -> Some x | _ -> None
    let rows =
        File.ReadAllLines path
        |> Array.mapi (fun i l -> i + 1, l)
        |> Array.filter (fun (_, l) -> l.Trim() <> "")
        |> Array.choose (fun (n, l) ->
            let o =
                match (try Some(Text.Json.Nodes.JsonNode.Parse l) with _ -> None) with
                | Some(:? Text.Json.Nodes.JsonObject as o) -> o
                | _ -> inputError "%s:%d: not a JSON object; expected {\"step\": <int>, \"loss\": <number>, ...}" path n
            let step = field n o "step" "an integer step" asInt
            let loss = field n o "loss" "a number" asFloat
            match step, loss with
            | Some s, Some l when Double.IsFinite l -> Some(s, l)
            | None, _ -> inputError "%s:%d: \"step\" is null; expected an integer step" path n
            | _ -> None)
    if rows.Length = 0 then inputError "%s: no steps with a finite loss" path
    rows

let runPlotMetrics (a: ParseResults<PlotMetricsArgs>) =
    let files = a.GetResult PlotMetricsArgs.Metrics
    // A run is named by its folder (OUT/metrics.jsonl), or by the file name when folders repeat.
    let folderOf (f: string) = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath f))
    let byFolder = (files |> List.map folderOf |> List.distinct |> List.length) = files.Length
    let curves =
        files
        |> List.map (fun f ->
            let rows = readMetrics f
            let name = if byFolder then folderOf f else Path.GetFileNameWithoutExtension f
            ({ Name = name; Steps = rows |> Array.map fst |> List.ofArray; Losses = rows |> Array.map snd |> List.ofArray }: Figures.TrainingCurve))
    let out = a.GetResult PlotMetricsArgs.Out
    // --out names the figure; its extension says which file must exist afterwards (all four are written
    // when Chromium is on PATH, the HTML alone otherwise).
    let full = Path.GetFullPath out
    let ext = Path.GetExtension(full).ToLowerInvariant()
    let stem = if List.contains ext [ ".html"; ".png"; ".svg"; ".pdf" ] then Path.ChangeExtension(full, null) else full
    let folder = Path.GetDirectoryName full
    outputFolder "--out" folder
    let writer = Reproduce.FigureWriter(folder, eprintfn "%s")
    if List.contains ext [ ".png"; ".svg"; ".pdf" ] && not writer.CanExportStatic then
        inputError "--out %s: a %s needs chromium on PATH (apt-get install chromium); expected a .html name, or chromium installed" out (ext.TrimStart('.').ToUpperInvariant())
    writer.Save(Path.GetFileName stem, Figures.trainingCurves (a.GetResult(PlotMetricsArgs.Title, defaultValue = "Training loss")) curves)
    let written = writer.Written
    let wanted = if ext = "" || not (List.contains ext [ ".html"; ".png"; ".svg"; ".pdf" ]) then stem + ".html" else full
    if not (File.Exists wanted) then
        inputError "--out %s: chromium could not render the figure (the HTML is at %s)" out (stem + ".html")
    for c in curves do
        let first = List.head c.Losses
        let tail = c.Losses |> List.skip (max 0 (c.Losses.Length - 50))
        printfn "%s: %d steps, loss %.3f at step %d, mean of the last %d steps %.3f, minimum %.3f" c.Name c.Steps.Length first (List.head c.Steps) tail.Length (List.average tail) (List.min c.Losses)
    printfn "wrote %s" (String.Join(", ", written))
    0

/// When every question line carries its ground truth ("answer", optional "category"), `eval` also answers with grey
/// images and reports accuracy, blind accuracy, the majority baseline and accuracy per category.
let evalBaselines (a: ParseResults<EvalArgs>) (settings: Evaluation.EvalSettings) (report: string -> int -> int -> unit) =
    let questions = a.GetResult EvalArgs.Questions
    let text = File.ReadAllText questions
    let key = Evaluation.parseAnswerKey questions text
    let n = (Evaluation.parseQuestions questions text).Length
    if key.Count = n then
        let out = a.GetResult EvalArgs.Out
        let blindOut = Path.ChangeExtension(out, ".blind.jsonl")
        Evaluation.evaluateBlindWith settings
            (a.GetResult EvalArgs.Model) (a.TryGetResult EvalArgs.Vision_Tower) questions (a.GetResult EvalArgs.Images)
            blindOut (fun done' total -> report "eval (grey images)" total done')
        let read f = ScoringIO.parseAnswers f (File.ReadAllText f)
        let b = Evaluation.baselineReport Sweep.answerMatches Scoring.normalizeGqa key (read out) (read blindOut)
        let jsonOut = Path.ChangeExtension(out, ".baselines.json")
        Reproduce.writeAtomically jsonOut ((Evaluation.baselineJson b).ToJsonString(Text.Json.JsonSerializerOptions(WriteIndented = true)))
        printfn "%d questions: accuracy %.3f, blind (grey images) %.3f, majority answer %.3f" b.Questions b.Score b.BlindScore b.MajorityScore
        for KeyValue(c, acc) in b.ByType do
            printfn "  %-14s accuracy %.3f  blind %.3f  majority %.3f" c acc b.BlindByType[c] b.MajorityByType[c]
        printfn "wrote blind answers to %s and the summary to %s" blindOut jsonOut
    elif key.Count > 0 then
        printfn "%d of %d questions carry an \"answer\"; baselines need it on every line (skipped)" key.Count n

let runPretrainVision (a: ParseResults<PretrainVisionArgs>) =
    let opts =
        QueCC.Model.Training.VisionPretrainOptions(
            OutDir = a.GetResult PretrainVisionArgs.Out,
            Preset = a.GetResult(PretrainVisionArgs.Preset, defaultValue = "tiny"),
            ImagesPerKind = a.GetResult(PretrainVisionArgs.Images, defaultValue = 1024),
            Steps = a.GetResult(PretrainVisionArgs.Steps, defaultValue = 300),
            BatchSize = a.GetResult(PretrainVisionArgs.Batch_Size, defaultValue = 16),
            Lr = a.GetResult(PretrainVisionArgs.Lr, defaultValue = 2e-3),
            Seed = a.GetResult(PretrainVisionArgs.Seed, defaultValue = 0))
    let r = QueCC.Model.Training.VisionPretrain.Run(opts, Action<string>(eprintfn "%s"))
    printfn "stage 0: %d steps in %.0f s, loss %.3f → %.3f; held-out accuracy: cell colour %.3f, cell shape %.3f, quadrant word %.3f, whole word %.3f"
        r.Steps r.Seconds r.FirstLoss r.LastLoss r.CellColorAccuracy r.CellShapeAccuracy r.QuadrantWordAccuracy r.WholeWordAccuracy
    printfn "wrote the vision tower to %s" r.TowerDir
    0

let runEval (a: ParseResults<EvalArgs>) =
    let maxNew = a.TryGetResult EvalArgs.Max_New_Tokens
    match maxNew with
    | Some m when m < 1 -> inputError "--max-new-tokens %d: expected at least 1" m
    | _ -> ()
    let batch = a.GetResult(EvalArgs.Batch_Size, defaultValue = 1)
    if batch < 1 then inputError "--batch-size %d: expected at least 1" batch
    let benchmark =
        a.TryGetResult EvalArgs.Benchmark
        |> Option.map (fun name ->
            match name.Trim().ToLowerInvariant() with
            | "mc" -> Scoring.Benchmark.ScienceQa
            | other ->
                Scoring.Benchmark.tryParse other
                |> Option.defaultWith (fun () -> inputError "--benchmark %s: expected one of vqav2, gqa, textvqa, vizwiz, pope, mme, scienceqa, mmbench, seed" name))
    let questions = a.GetResult EvalArgs.Questions
    let report = Progress.reporter ()
    let settings: Evaluation.EvalSettings = { Benchmark = benchmark; MaxNewTokens = maxNew; BatchSize = batch }
    Evaluation.evaluateWith settings
        (a.GetResult EvalArgs.Model) (a.TryGetResult EvalArgs.Vision_Tower) questions (a.GetResult EvalArgs.Images)
        (a.GetResult EvalArgs.Out) (fun done' total -> report "eval" total done')
    printfn "wrote answers to %s" (a.GetResult EvalArgs.Out)
    evalBaselines a settings report
    0

let runScore (a: ParseResults<ScoreArgs>) =
    let name = a.GetResult ScoreArgs.Benchmark
    let benchmark =
        match name.Trim().ToLowerInvariant() with
        | "mc" -> Some Scoring.Benchmark.ScienceQa
        | other -> Scoring.Benchmark.tryParse other
        |> Option.defaultWith (fun () ->
            inputError "--benchmark %s: expected one of vqa, vqav2, gqa, textvqa, vizwiz, pope, mc, scienceqa, mmbench, seed, mme" name)
    match a.TryGetResult ScoreArgs.Submission with
    | Some xlsx ->
        if benchmark <> Scoring.MmBench then inputError "--submission is for --benchmark mmbench; got %s" name
        let tsv = a.GetResult ScoreArgs.Annotations
        if not (File.Exists tsv) then inputError "%s: file not found; expected MMBench's question TSV" tsv
        let answersPath = a.GetResult ScoreArgs.Answers
        if not (File.Exists answersPath) then inputError "%s: file not found" answersPath
        let rows = ScoringIO.mmbenchSubmission tsv (File.ReadAllText tsv) (ScoringIO.parseAnswers answersPath (File.ReadAllText answersPath))
        ScoringIO.writeXlsx xlsx rows
        printfn "wrote %s (%d questions)" xlsx (rows.Length - 1)
        0
    | None ->
    let vqa =
        match a.TryGetResult ScoreArgs.Vqa_Answers |> Option.map (fun s -> s.Trim().ToLowerInvariant()) with
        | None
        | Some "llava" -> Scoring.LlavaSubmission
        | Some "raw" -> Scoring.RawText
        | Some other -> inputError "--vqa-answers %s: expected llava or raw" other
    let seed =
        match a.TryGetResult ScoreArgs.Seed_Answers |> Option.map (fun s -> s.Trim().ToLowerInvariant()) with
        | None
        | Some "exact" -> Scoring.ExactText
        | Some "first-letter" -> Scoring.FirstLetter
        | Some other -> inputError "--seed-answers %s: expected exact or first-letter" other
    let report = ScoringIO.scoreFilesWith { Vqa = vqa; Seed = seed } benchmark (a.GetResult ScoreArgs.Answers) (a.GetResult ScoreArgs.Annotations)
    if a.Contains ScoreArgs.Json then printfn "%s" (Json.toText (ScoringIO.toJson report))
    else printfn "%s" (ScoringIO.toText report)
    0

let runBenchCompress (a: ParseResults<BenchCompressArgs>) =
    let tokens = a.TryGetResult BenchCompressArgs.Visual_Tokens |> Option.map (parseInts "--visual-tokens") |> Option.defaultValue [| 36; 1 |]
    let result =
        QueCC.Model.Commands.CompressBenchmark.Run(
            a.GetResult(BenchCompressArgs.Batch, defaultValue = 16), tokens, a.GetResult(BenchCompressArgs.Iterations, defaultValue = 3),
            Action<string>(eprintfn "%s"), a.GetResult(BenchCompressArgs.Method, defaultValue = "quecc"))
    printfn "%s" (result.Format())
    0

let runBenchPrefill (a: ParseResults<BenchPrefillArgs>) =
    let preset = a.GetResult(BenchPrefillArgs.Preset, defaultValue = "small")
    let tokens =
        a.TryGetResult BenchPrefillArgs.Visual_Tokens |> Option.map (parseInts "--visual-tokens") |> Option.defaultValue [| 1; 4; 16; 36; 64; 144; 576 |]
    let q = a.GetResult(BenchPrefillArgs.Text_Tokens, defaultValue = 50)
    let r =
        QueCC.Model.Commands.LlavaEntryPoints.BenchmarkPrefill(
            preset, tokens, q, a.GetResult(BenchPrefillArgs.Repeats, defaultValue = 3), a.GetResult(BenchPrefillArgs.Decode_Tokens, defaultValue = 16))
    printfn "quecc bench prefill: preset %s, LLM %s parameters, Q = %d text tokens, %s, %d torch threads" preset (r.LlmParameters.ToString("N0")) q r.Device (TorchSharp.torch.get_num_threads ())
    printfn "%6s %12s %14s %14s %18s" "V" "prefill ms" "model GFLOP" "ms per GFLOP" "measured/model"
    // The paper's cost model says latency ∝ 2·N·(Q+V): normalise by the largest point's ms-per-FLOP.
    let pts = List.ofSeq r.Points
    let reference = pts |> List.maxBy (fun p -> p.ModelFlops)
    let msPerFlop = reference.MeanMilliseconds / reference.ModelFlops
    for p in pts do
        printfn "%6d %12.2f %14.4f %14.3f %18.2f" p.VisualTokens p.MeanMilliseconds (p.ModelFlops / 1e9) (p.MeanMilliseconds / (p.ModelFlops / 1e9)) (p.MeanMilliseconds / (p.ModelFlops * msPerFlop))
    printfn "decode (%d tokens): %.1f tokens/s with KV cache, %.1f tokens/s without" r.DecodeTokens r.DecodeTokensPerSecondCached r.DecodeTokensPerSecondUncached
    0

let runBenchLatency (a: ParseResults<BenchLatencyArgs>) =
    let preset = a.GetResult(BenchLatencyArgs.Preset, defaultValue = "small")
    let vs = a.GetResult BenchLatencyArgs.Visual_Tokens |> parseInts "--visual-tokens"
    let q = a.GetResult BenchLatencyArgs.Text_Tokens
    if q < 1 then inputError "--text-tokens %d: expected at least 1" q
    let decode = a.GetResult(BenchLatencyArgs.Decode_Tokens, defaultValue = 8)
    if decode < 1 then inputError "--decode-tokens %d: expected at least 1" decode
    let repeats = a.GetResult(BenchLatencyArgs.Repeats, defaultValue = 3)
    if repeats < 1 then inputError "--repeats %d: expected at least 1" repeats
    let r = QueCC.Model.Commands.InferenceBenchmarks.Latency(preset, vs, q, decode, repeats)
    let pts = List.ofSeq r.Points
    if a.Contains BenchLatencyArgs.Json then
        Json.obj [ "preset", Json.str r.Preset; "device", Json.str r.Device; "llm_parameters", Json.num (float r.LlmParameters)
                   "weight_bytes", Json.num (float r.WeightBytes); "text_tokens", Json.num (float r.TextTokens)
                   "decode_tokens", Json.num (float r.DecodeTokens); "repeats", Json.num (float r.Repeats)
                   "torch_threads", Json.num (float (TorchSharp.torch.get_num_threads ()))
                   "query_pass_ms", Json.num r.QueryPassMilliseconds; "copy_bytes_per_second", Json.num r.CopyBytesPerSecond
                   "decode_bound_tokens_per_second", Json.num r.DecodeBoundTokensPerSecond
                   "points",
                   Json.arr [ for p in pts ->
                                  Json.obj [ "visual_tokens", Json.num (float p.VisualTokens); "prefill_ms", Json.num p.PrefillMilliseconds
                                             "decode_ms_per_token", Json.num p.DecodeMillisecondsPerToken
                                             "decode_tokens_per_second", Json.num (1000.0 / p.DecodeMillisecondsPerToken)
                                             "kv_cache_bytes", Json.num (float p.KvCacheBytes); "prefill_flops", Json.num p.PrefillFlops ] ] ]
        |> Json.toText
        |> printfn "%s"
    else
        printfn "quecc bench latency: preset %s, LLM %s parameters (%.2f GB of weights), Q = %d, %s, %d torch threads, median of %d"
            r.Preset (r.LlmParameters.ToString("N0")) (float r.WeightBytes / 1e9) q r.Device (TorchSharp.torch.get_num_threads ()) r.Repeats
        let first = List.head pts
        printfn "%6s %12s %14s %14s %14s %12s %12s" "V" "TTFT ms" "ms per token" "tokens/s" "KV-cache MB" "t / t(V0)" "FLOP ratio"
        for p in pts do
            printfn "%6d %12.2f %14.2f %14.2f %14.3f %12.2f %12.2f" p.VisualTokens p.PrefillMilliseconds p.DecodeMillisecondsPerToken
                (1000.0 / p.DecodeMillisecondsPerToken) (float p.KvCacheBytes / 1e6) (p.PrefillMilliseconds / first.PrefillMilliseconds) (p.PrefillFlops / first.PrefillFlops)
        printfn "QueCC query pass (forward over the Q = %d question tokens): %.2f ms" q r.QueryPassMilliseconds
        printfn "copy bandwidth %.2f GB/s (read + write); decode bound = bandwidth / weight bytes = %.2f tokens/s" (r.CopyBytesPerSecond / 1e9) r.DecodeBoundTokensPerSecond
    0

let runBenchEval (a: ParseResults<BenchEvalArgs>) =
    let sizes = a.TryGetResult BenchEvalArgs.Batch_Sizes |> Option.map (parseInts "--batch-sizes") |> Option.defaultValue [| 1; 8; 32 |]
    let n = a.GetResult(BenchEvalArgs.Questions, defaultValue = 64)
    if n < 1 then inputError "--questions %d: expected at least 1" n
    let maxNew = a.GetResult(BenchEvalArgs.Max_New_Tokens, defaultValue = 8)
    if maxNew < 1 then inputError "--max-new-tokens %d: expected at least 1" maxNew
    let r = QueCC.Model.Commands.InferenceBenchmarks.EvalThroughput(a.GetResult(BenchEvalArgs.Preset, defaultValue = "tiny"), sizes, n, maxNew)
    printfn "quecc bench eval: preset %s, %s, %d questions, at most %d new tokens, %d torch threads" r.Preset r.Device n maxNew (TorchSharp.torch.get_num_threads ())
    let pts = List.ofSeq r.Points
    printfn "%8s %10s %14s %12s %14s" "batch" "seconds" "questions/s" "vs first" "answer tokens"
    for p in pts do
        printfn "%8d %10.2f %14.2f %12.2f %14d" p.BatchSize p.Seconds p.QuestionsPerSecond (p.QuestionsPerSecond / (List.head pts).QuestionsPerSecond) p.AnswerTokens
    0

let runBenchTrain (a: ParseResults<BenchTrainArgs>) =
    let stage = a.GetResult(BenchTrainArgs.Stage, defaultValue = StageArg.Finetune) |> stageName
    let r =
        QueCC.Model.Commands.TrainBenchmark.Run(
            a.GetResult(BenchTrainArgs.Preset, defaultValue = "tiny"), a.GetResult(BenchTrainArgs.Steps, defaultValue = 20),
            a.GetResult(BenchTrainArgs.Batch_Size, defaultValue = 8), stage, "cpu", 0, 5, a.GetResult(BenchTrainArgs.Repeats, defaultValue = 3),
            Action<string>(eprintfn "%s"))
    printfn "quecc bench train: preset %s, %s, %s, %d timed steps × batch %d, %d rounds, %d torch threads" r.Preset stage r.Device r.Steps r.BatchSize r.Repeats (TorchSharp.torch.get_num_threads ())
    printfn "%-12s %18s %22s" "" "median samples/s" "best-round mean samples/s"
    printfn "%-12s %18.1f %22.1f" "trainer" r.TrainerSamplesPerSecond r.TrainerMeanSamplesPerSecond
    printfn "%-12s %18.1f %22.1f" "bare loop" r.BareSamplesPerSecond r.BareMeanSamplesPerSecond
    printfn "%-12s %17.1f%% %21.1f%%" "overhead" r.OverheadPercent r.MeanOverheadPercent
    printfn "target: overhead ≤ 5%% (median) — %s" (if r.OverheadPercent <= 5.0 then "met" else "NOT met")
    printfn "peak memory %.0f MB working set, %.0f MB managed heap" (float r.PeakWorkingSetBytes / 1e6) (float r.PeakManagedBytes / 1e6)
    0

let runTokenize (a: ParseResults<TokenizeArgs>) =
    let dir = a.GetResult TokenizeArgs.Tokenizer
    match a.TryGetResult TokenizeArgs.Input, a.TryGetResult TokenizeArgs.Conversations with
    | Some input, None ->
        if a.Contains TokenizeArgs.Template then inputError "tokenize: --template applies to --conversations, not --input"
        QueCC.Model.Commands.TokenizeCommand.Texts(dir, input, not (a.Contains TokenizeArgs.No_Special_Tokens), stdout)
    | None, Some conv ->
        if a.Contains TokenizeArgs.No_Special_Tokens then inputError "tokenize: --no-special-tokens applies to --input, not --conversations"
        match a.TryGetResult TokenizeArgs.Template with
        | Some t -> QueCC.Model.Commands.TokenizeCommand.Conversations(dir, conv, t, stdout, a.GetResult(TokenizeArgs.Query_Rule, defaultValue = "first_user_turn"))
        | None -> inputError "tokenize --conversations: give --template vicuna_v1, qwen_1_5 or plain"
    | _ -> inputError "tokenize: give exactly one of --input FILE.jsonl or --conversations FILE.json"
    0
