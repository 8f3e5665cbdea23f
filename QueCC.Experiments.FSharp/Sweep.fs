/// Miniature scaling studies: a sweep is a record (LLM sizes × compressors × visual tokens × task families
/// × seeds, plus training settings) expanded into runs with stable ids. Each run makes or reuses synthetic data,
/// trains stage 1 and stage 2, answers the held-out split and leaves one result row. The pure part (specs,
/// expansion, the results table) comes first; running, Slurm scripts and the report are at the end.
module QueCC.Experiments.Sweep

open System
open System.Diagnostics
open System.Globalization
open System.IO
open System.Text
open System.Text.Json
open System.Text.Json.Nodes
open QueCC.Experiments.Data

type TrainingSettings =
    { TrainSamples: int
      EvalSamples: int
      PretrainSteps: int
      FinetuneSteps: int
      BatchSize: int
      PretrainLr: float
      /// The LLMs start from random weights here, so stage 2 needs a larger rate than the reference's 2e-5.
      FinetuneLr: float
      MaxNewTokens: int
      /// Stage 0 (pretraining the vision tower on the synthetic images, once per sweep, shared by every run): its
      /// optimizer steps, 0 for a random frozen tower; and its training images per kind.
      VisionSteps: int
      VisionImages: int }

type SweepSpec =
    { Name: string
      /// Decoder presets (`sweep-xs` … `sweep-l`, or `tiny`/`small`); N is their parameter count.
      Llms: string list
      Compressors: string list
      VisualTokens: int list
      Tasks: string list
      Seeds: int list
      Training: TrainingSettings }

type Run =
    { Index: int
      Id: string
      Llm: string
      Compressor: string
      VisualTokens: int
      Task: string
      Seed: int }

type RunResult =
    { Run: Run
      LlmParams: int64
      /// Exact-match accuracy on the held-out split; None when the run failed.
      Score: float option
      /// Blind (grey-image) and majority-answer baselines and per-type accuracy of the same evaluation; None for
      /// failed runs and for results written before baselines existed.
      Baselines: Evaluation.BaselineReport option
      Error: string option
      Seconds: float }

/// CI-sized (about 4 minutes on 2 cores): 2 LLM sizes × V ∈ {1, 4} on the shapes family. The largest LLM at the
/// largest V must beat its own blind (grey-image) accuracy on shapes by ≥ 15 points (SweepTests; measured 2026-12-03:
/// 0.625 against 0.359). Stage 0 is short (150 steps on 512 images per kind: the shapes heads need few) and stage 1 a
/// few steps only: with a random-init LLM there is nothing for the projector to align to, so the learning happens in
/// stage 2, which needs ~1500 steps at this size (800 left the walkthrough model near its prior; docs/miniature-world.md §5).
let smoke =
    { Name = "smoke"
      Llms = [ "sweep-xs"; "sweep-s" ]
      Compressors = [ "quecc" ]
      VisualTokens = [ 1; 4 ]
      Tasks = [ "shapes" ]
      Seeds = [ 0 ]
      Training =
        { TrainSamples = 1024
          EvalSamples = 128
          PretrainSteps = 8
          FinetuneSteps = 1500
          BatchSize = 8
          PretrainLr = 1e-3
          FinetuneLr = 1e-3
          MaxNewTokens = 4
          VisionSteps = 150
          VisionImages = 512 } }

/// The miniature study: 4 LLM sizes (25×) × 4 token counts × QueCC and average pooling × 2 families × 3 seeds
/// = 192 runs, eval splits of 512 questions, 1500 stage-2 steps each (the tower's features kept, so a run costs
/// 1–3 minutes of one core), and a 1000-step stage 0 once for the sweep: about 3 hours with --jobs 2 on 2 cores
/// (docs/miniature-world.md).
let mini =
    { Name = "mini"
      Llms = [ "sweep-xs"; "sweep-s"; "sweep-m"; "sweep-l" ]
      Compressors = [ "quecc"; "avgpool" ]
      VisualTokens = [ 1; 4; 16; 64 ]
      Tasks = [ "shapes"; "ocr" ]
      Seeds = [ 0; 1; 2 ]
      Training =
        { TrainSamples = 2048
          EvalSamples = 512
          PretrainSteps = 8
          FinetuneSteps = 1500
          BatchSize = 8
          PretrainLr = 1e-3
          FinetuneLr = 1e-3
          MaxNewTokens = 4
          VisionSteps = 1000
          VisionImages = 1024 } }

let presets = [ smoke; mini ]

let knownTasks = [ "shapes"; "ocr" ]
let knownCompressors = [ "quecc"; "quecc_noquery"; "tokenpacker"; "avgpool"; "none" ]

/// Checks a spec before anything runs; `source` names where it came from.
let validate (source: string) (s: SweepSpec) =
    let nonEmpty name (xs: 'a list) = if xs.IsEmpty then inputError "%s: \"%s\" is empty; expected at least one value" source name
    nonEmpty "llms" s.Llms
    nonEmpty "compressors" s.Compressors
    nonEmpty "visual_tokens" s.VisualTokens
    nonEmpty "tasks" s.Tasks
    nonEmpty "seeds" s.Seeds
    for t in s.Tasks do
        if not (List.contains t knownTasks) then inputError "%s: task \"%s\"; expected one of %s" source t (String.Join(", ", knownTasks))
    for c in s.Compressors do
        if not (List.contains c knownCompressors) then
            inputError "%s: compressor \"%s\"; expected one of %s" source c (String.Join(", ", knownCompressors))
    for v in s.VisualTokens do
        let side = int (Math.Round(sqrt (float v)))
        if v < 1 || side * side <> v || 24 % side <> 0 then
            inputError "%s: visual_tokens %d; expected h² with h dividing 24 (1, 4, 9, 16, 36, 64, 144, 576)" source v
    for l in s.Llms do
        if not (QueCC.Model.Presets.Presets.Names |> Seq.contains l) || QueCC.Model.Presets.Presets.Get(l).ConfigOnly then
            inputError "%s: llm \"%s\"; expected a trainable preset (sweep-xs, sweep-s, sweep-m, sweep-l, tiny, small)" source l
    // Repeats would run (and count) the same configuration twice.
    let unique name (xs: 'a list) =
        match xs |> List.countBy id |> List.tryFind (fun (_, n) -> n > 1) with
        | Some (x, _) -> inputError "%s: \"%s\" lists %O twice; expected each value once" source name x
        | None -> ()
    unique "llms" s.Llms
    unique "compressors" s.Compressors
    unique "visual_tokens" s.VisualTokens
    unique "tasks" s.Tasks
    unique "seeds" s.Seeds
    // Sizes a sweep on one machine can hold: beyond these a typo (an extra zero or three) would run for days.
    let atMost name limit v = if v > limit then inputError "%s: training.%s is %d; expected at most %d" source name v limit
    let tr = s.Training
    atMost "train_samples" 1_000_000 tr.TrainSamples
    atMost "eval_samples" 100_000 tr.EvalSamples
    atMost "pretrain_steps" 10_000_000 tr.PretrainSteps
    atMost "finetune_steps" 10_000_000 tr.FinetuneSteps
    atMost "batch_size" 4096 tr.BatchSize
    atMost "max_new_tokens" 4096 tr.MaxNewTokens
    if not (Double.IsFinite tr.PretrainLr && Double.IsFinite tr.FinetuneLr) then
        inputError "%s: training.pretrain_lr %g / finetune_lr %g; expected finite learning rates" source tr.PretrainLr tr.FinetuneLr
    let t = s.Training
    let positive name v = if v < 1 then inputError "%s: training.%s is %d; expected a positive integer" source name v
    positive "train_samples" t.TrainSamples
    positive "eval_samples" t.EvalSamples
    positive "pretrain_steps" t.PretrainSteps
    positive "finetune_steps" t.FinetuneSteps
    positive "batch_size" t.BatchSize
    positive "max_new_tokens" t.MaxNewTokens
    if t.VisionSteps < 0 then inputError "%s: training.vision_steps is %d; expected 0 (random tower) or more" source t.VisionSteps
    positive "vision_images" t.VisionImages
    if not (t.PretrainLr > 0.0 && t.FinetuneLr > 0.0) then inputError "%s: learning rates must be positive" source
    s

/// Reads a sweep from JSON; absent fields take the smoke preset's values.
let parseSpec (source: string) (text: string) : SweepSpec =
    let root =
        try
            match parseJsonNode source text with
            | :? JsonObject as o -> o
            | _ -> inputError "%s: expected a JSON object with llms, compressors, visual_tokens, tasks, seeds, training" source
        with :? JsonException as e -> inputError "%s: not valid JSON (%s)" source (e.Message.Split('\n')[0])
    let get (o: JsonObject) (name: string) (read: JsonNode -> 'a) (fallback: 'a) =
        match o[name] with
        | null when o.ContainsKey name -> inputError "%s: field \"%s\" is null; expected %s (or leave the field out for the default)" source name (typeof<'a>.Name)
        | null -> fallback
        | v ->
            try read v
            with
            | :? InputError -> reraise ()
            | _ -> inputError "%s: field \"%s\" is %s; expected %s" source name (v.ToJsonString()) (typeof<'a>.Name)
    let strings (v: JsonNode) = v.AsArray() |> Seq.map (fun x -> x.GetValue<string>()) |> List.ofSeq
    let ints (v: JsonNode) = v.AsArray() |> Seq.map (fun x -> x.GetValue<int>()) |> List.ofSeq
    let d = smoke
    let t =
        match root["training"] with
        | :? JsonObject as o ->
            let dt = d.Training
            { TrainSamples = get o "train_samples" (fun v -> v.GetValue<int>()) dt.TrainSamples
              EvalSamples = get o "eval_samples" (fun v -> v.GetValue<int>()) dt.EvalSamples
              PretrainSteps = get o "pretrain_steps" (fun v -> v.GetValue<int>()) dt.PretrainSteps
              FinetuneSteps = get o "finetune_steps" (fun v -> v.GetValue<int>()) dt.FinetuneSteps
              BatchSize = get o "batch_size" (fun v -> v.GetValue<int>()) dt.BatchSize
              PretrainLr = get o "pretrain_lr" (fun v -> v.GetValue<float>()) dt.PretrainLr
              FinetuneLr = get o "finetune_lr" (fun v -> v.GetValue<float>()) dt.FinetuneLr
              MaxNewTokens = get o "max_new_tokens" (fun v -> v.GetValue<int>()) dt.MaxNewTokens
              VisionSteps = get o "vision_steps" (fun v -> v.GetValue<int>()) dt.VisionSteps
              VisionImages = get o "vision_images" (fun v -> v.GetValue<int>()) dt.VisionImages }
        | null -> d.Training
        | v -> inputError "%s: field \"training\" is %s; expected an object" source (v.ToJsonString())
    { Name = get root "name" (fun v -> v.GetValue<string>()) (Path.GetFileNameWithoutExtension source)
      Llms = get root "llms" strings d.Llms
      Compressors = get root "compressors" strings d.Compressors
      VisualTokens = get root "visual_tokens" ints d.VisualTokens
      Tasks = get root "tasks" strings d.Tasks
      Seeds = get root "seeds" ints d.Seeds
      Training = t }
    |> validate source

let toJson (s: SweepSpec) =
    let strs (xs: string list) = JsonArray(xs |> List.map (fun x -> JsonValue.Create x :> JsonNode) |> Array.ofList)
    let ints (xs: int list) = JsonArray(xs |> List.map (fun x -> JsonValue.Create x :> JsonNode) |> Array.ofList)
    let t = s.Training
    let o = JsonObject()
    o["name"] <- JsonValue.Create s.Name
    o["llms"] <- strs s.Llms
    o["compressors"] <- strs s.Compressors
    o["visual_tokens"] <- ints s.VisualTokens
    o["tasks"] <- strs s.Tasks
    o["seeds"] <- ints s.Seeds
    let tr = JsonObject()
    tr["train_samples"] <- JsonValue.Create t.TrainSamples
    tr["eval_samples"] <- JsonValue.Create t.EvalSamples
    tr["pretrain_steps"] <- JsonValue.Create t.PretrainSteps
    tr["finetune_steps"] <- JsonValue.Create t.FinetuneSteps
    tr["batch_size"] <- JsonValue.Create t.BatchSize
    tr["pretrain_lr"] <- JsonValue.Create t.PretrainLr
    tr["finetune_lr"] <- JsonValue.Create t.FinetuneLr
    tr["max_new_tokens"] <- JsonValue.Create t.MaxNewTokens
    tr["vision_steps"] <- JsonValue.Create t.VisionSteps
    tr["vision_images"] <- JsonValue.Create t.VisionImages
    o["training"] <- tr
    o.ToJsonString(JsonSerializerOptions(WriteIndented = true))

/// `--preset smoke|mini|FILE.json`.
let resolve (preset: string) =
    match presets |> List.tryFind (fun p -> p.Name = preset) with
    | Some p -> p
    | None when File.Exists preset -> parseSpec preset (File.ReadAllText preset)
    | None -> inputError "--preset %s: expected smoke, mini or a sweep JSON file" preset

/// Stable, readable run ids; the index is the run's position in this fixed expansion order (Slurm array index).
/// Seeds outermost: a sweep stopped part-way (or an array whose first tasks finished) holds whole grids of the first
/// seeds, which can be fitted and compared, rather than every seed of the first few cells.
let expand (s: SweepSpec) : Run list =
    [ for seed in s.Seeds do
          for task in s.Tasks do
              for llm in s.Llms do
                  for c in s.Compressors do
                      for v in s.VisualTokens -> task, llm, c, v, seed ]
    |> List.mapi (fun i (task, llm, c, v, seed) ->
        { Index = i; Id = sprintf "%s_%s_%s_v%d_s%d" task llm c v seed; Llm = llm; Compressor = c; VisualTokens = v; Task = task; Seed = seed })

let llmParams (preset: string) = QueCC.Model.Presets.Presets.Get(preset).Text.ParameterCount()

// ---------------------------------------------------------------------------------------------
// The results table, in the fitter's schema plus the sweep's own columns.

let resultsHeader = "task,llm_params_b,visual_tokens,score,compressor,seed,run_id,llm_preset,blind_score,majority_score"

let resultsCsv (results: RunResult list) =
    let sb = StringBuilder()
    sb.AppendLine resultsHeader |> ignore
    for r in results |> List.sortBy (fun r -> r.Run.Index) do
        match r.Score with
        | Some score ->
            sb.AppendLine(
                String.Join(
                    ",",
                    [ r.Run.Task
                      (float r.LlmParams / 1e9).ToString("R", CultureInfo.InvariantCulture)
                      string r.Run.VisualTokens
                      score.ToString("R", CultureInfo.InvariantCulture)
                      r.Run.Compressor
                      string r.Run.Seed
                      r.Run.Id
                      r.Run.Llm
                      (match r.Baselines with Some b -> b.BlindScore.ToString("R", CultureInfo.InvariantCulture) | None -> "")
                      (match r.Baselines with Some b -> b.MajorityScore.ToString("R", CultureInfo.InvariantCulture) | None -> "") ]
                )
            )
            |> ignore
        | None -> ()
    sb.ToString()

let resultToJson (r: RunResult) =
    let o = JsonObject()
    o["index"] <- JsonValue.Create r.Run.Index
    o["run_id"] <- JsonValue.Create r.Run.Id
    o["llm_params"] <- JsonValue.Create r.LlmParams
    o["score"] <- (match r.Score with Some s -> JsonValue.Create s :> JsonNode | None -> null)
    match r.Baselines with
    | Some b ->
        for KeyValue(k, v) in Evaluation.baselineJson b do
            if k <> "score" then o[k] <- v.DeepClone()
    | None -> ()
    o["status"] <- JsonValue.Create(if r.Score.IsSome then "ok" else "failed")
    o["error"] <- (match r.Error with Some e -> JsonValue.Create e :> JsonNode | None -> null)
    o["seconds"] <- JsonValue.Create r.Seconds
    o.ToJsonString()

let resultOfJson (run: Run) (text: string) =
    let o = JsonNode.Parse(text).AsObject()
    { Run = run
      LlmParams = o["llm_params"].GetValue<int64>()
      Score = (match o["score"] with null -> None | v -> Some(v.GetValue<float>()))
      Baselines =
        match o["blind_score"], o["score"] with
        | null, _ | _, null -> None
        | blind, score ->
            let m (name: string) =
                match o[name] with
                | :? JsonObject as x -> x |> Seq.map (fun kv -> kv.Key, kv.Value.GetValue<float>()) |> Map.ofSeq
                | _ -> Map.empty
            Some
                { Evaluation.BaselineReport.Questions = (match o["questions"] with null -> 0 | q -> q.GetValue<int>())
                  Score = score.GetValue<float>()
                  BlindScore = blind.GetValue<float>()
                  MajorityScore = o["majority_score"].GetValue<float>()
                  ByType = m "by_type"
                  BlindByType = m "blind_by_type"
                  MajorityByType = m "majority_by_type" }
      Error = (match o["error"] with null -> None | v -> Some(v.GetValue<string>()))
      Seconds = o["seconds"].GetValue<float>() }

// ---------------------------------------------------------------------------------------------
// Running.

let runDir (out: string) (r: Run) = Path.Combine(out, "runs", r.Id)
let resultPath out r = Path.Combine(runDir out r, "result.json")

let tryLoadResult (out: string) (r: Run) =
    let p = resultPath out r
    if File.Exists p then (try Some(resultOfJson r (File.ReadAllText p)) with _ -> None) else None

let private writeAtomically = Reproduce.writeAtomically

/// Synthetic data shared by every run of a (task, seed): made once, in a temporary folder renamed into place,
/// so parallel runs (local jobs, Slurm array tasks) never see half a data set.
let ensureData (spec: SweepSpec) (out: string) (task: string) (seed: int) =
    let dir = Path.Combine(out, "data", sprintf "%s-s%d-n%d-e%d" task seed spec.Training.TrainSamples spec.Training.EvalSamples)
    if not (File.Exists(Path.Combine(dir, "eval.json"))) then
        let tmp = dir + $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}"
        QueCC.Model.Data.SyntheticData.Make(task, spec.Training.TrainSamples, seed, spec.Training.EvalSamples, tmp) |> ignore
        try Directory.Move(tmp, dir)
        with :? IOException when Directory.Exists dir -> Directory.Delete(tmp, true) // another run made it first
    dir

/// Stage 0, once per sweep: the tower every run starts from (`OUT/vision/`), or None for random towers. The first run
/// to need it trains it under an exclusive lock on `OUT/vision.lock` (local jobs and Slurm tasks on one node wait for it
/// instead of training it each), into a temporary folder renamed into place.
let ensureTower (spec: SweepSpec) (out: string) (log: string -> unit) =
    let t = spec.Training
    if t.VisionSteps = 0 then None
    else
        let dir = Path.Combine(out, "vision")
        let ready () = File.Exists(Path.Combine(dir, "model.safetensors"))
        if not (ready ()) then
            Directory.CreateDirectory out |> ignore
            let rec acquire () =
                try new FileStream(Path.Combine(out, "vision.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)
                with :? IOException -> Threading.Thread.Sleep 500; acquire ()
            use _lock = acquire ()
            if not (ready ()) then
                let tmp = dir + $".tmp-{Environment.ProcessId}-{Guid.NewGuid():N}"
                QueCC.Model.Training.VisionPretrain.Run(
                    QueCC.Model.Training.VisionPretrainOptions(OutDir = tmp, Preset = spec.Llms.Head, ImagesPerKind = t.VisionImages, Steps = t.VisionSteps),
                    Action<string> log) |> ignore
                Directory.Move(tmp, dir)
        Some dir

/// The held-out split as LLaVA questions plus exact-match ground truth.
let evalQuestions (evalJson: string) =
    let arr = JsonNode.Parse(File.ReadAllText evalJson).AsArray()
    [ for item in arr ->
          let o = item.AsObject()
          let conv = o["conversations"].AsArray()
          let question = conv[0].["value"].GetValue<string>().Replace("<image>", "").Trim()
          let answer = conv[1].["value"].GetValue<string>()
          o["id"].GetValue<string>(), o["image"].GetValue<string>(), question, answer ]

/// The question type of each held-out record (`make-data`'s question_type; "all" where a record has none), by id.
let evalQuestionTypes (evalJson: string) =
    JsonNode.Parse(File.ReadAllText evalJson).AsArray()
    |> Seq.map (fun item ->
        let o = item.AsObject()
        o["id"].GetValue<string>(), (match o["question_type"] with null -> "all" | t -> t.GetValue<string>()))
    |> Map.ofSeq

/// Short-answer match: the answer's first words are the ground truth's words (after GQA's normalisation).
/// Models this small often run on past the answer instead of stopping, which exact match would count wrong.
let answerMatches (truth: string) (answer: string) =
    let words (s: string) = (Scoring.normalizeGqa s).Split([| ' '; '\t'; '\n' |], StringSplitOptions.RemoveEmptyEntries)
    let t, a = words truth, words answer
    t.Length > 0 && a.Length >= t.Length && Array.forall2 (fun x y -> x = y) t a[.. t.Length - 1]

/// Train stage 1 and 2 and score one run; every failure becomes the run's error, never the sweep's.
let executeRun (spec: SweepSpec) (out: string) (run: Run) : RunResult =
    let sw = Stopwatch.StartNew()
    let dir = runDir out run
    Directory.CreateDirectory dir |> ignore
    let logPath = Path.Combine(dir, "log.txt")
    use logFile = new StreamWriter(logPath, true)
    let log (s: string) = logFile.WriteLine s; logFile.Flush()
    let nParams = llmParams run.Llm
    let result =
        try
            let data = ensureData spec out run.Task run.Seed
            let model = Path.Combine(dir, "init")
            if not (File.Exists(Path.Combine(model, "config.json"))) then
                let tower = ensureTower spec out log
                QueCC.Model.Commands.LlavaEntryPoints.InitModel(run.Llm, run.Compressor, run.VisualTokens, model, int64 run.Seed, Option.toObj tower) |> ignore
            let t = spec.Training
            let train stage (steps: int) (lr: float) (projector: string option) =
                let stageOut = Path.Combine(dir, stage)
                if not (Directory.Exists(Path.Combine(stageOut, "final"))) then
                    let opts =
                        QueCC.Model.Training.TrainOptions(
                            ModelDir = model, Stage = stage, DataJson = Path.Combine(data, "data.json"), OutDir = stageOut,
                            MaxSteps = Nullable steps, BatchSize = t.BatchSize, Lr = Nullable lr, Seed = run.Seed, Device = "cpu",
                            SaveEvery = max 1 (steps / 2), Resume = true, TensorBoard = false,
                            PretrainedProjector = Option.toObj projector)
                    QueCC.Model.Training.Trainer.Train(opts, null, Action<string> log) |> ignore
                Path.Combine(stageOut, "final")
            train "pretrain" t.PretrainSteps t.PretrainLr None |> ignore
            let final = train "finetune" t.FinetuneSteps t.FinetuneLr (Some(Path.Combine(dir, "pretrain", "mm_projector.safetensors")))
            let questions = evalQuestions (Path.Combine(data, "eval.json"))
            let types = evalQuestionTypes (Path.Combine(data, "eval.json"))
            let qFile = Path.Combine(dir, "questions.jsonl")
            let line (id: string, image: string, text: string, answer: string) =
                let o = JsonObject()
                o["question_id"] <- JsonValue.Create id
                o["image"] <- JsonValue.Create image
                o["text"] <- JsonValue.Create text
                o["answer"] <- JsonValue.Create answer
                o["category"] <- JsonValue.Create types[id]
                o.ToJsonString()
            writeAtomically qFile (String.Join("\n", questions |> List.map line) + "\n")
            let answersFile = Path.Combine(dir, "answers.jsonl")
            let blindFile = Path.Combine(dir, "answers-blind.jsonl")
            // Batched answering: greedy answers do not depend on the batch size, and 16 at a time is several times faster here.
            let settings = { Evaluation.EvalSettings.Default with MaxNewTokens = Some t.MaxNewTokens; BatchSize = 16 }
            Evaluation.evaluateWith settings final None qFile data answersFile (fun _ _ -> ())
            Evaluation.evaluateBlindWith settings final None qFile data blindFile (fun _ _ -> ())
            let read f = ScoringIO.parseAnswers f (File.ReadAllText f)
            let key = Evaluation.parseAnswerKey qFile (File.ReadAllText qFile)
            let b = Evaluation.baselineReport answerMatches Scoring.normalizeGqa key (read answersFile) (read blindFile)
            { Run = run; LlmParams = nParams; Score = Some b.Score; Baselines = Some b; Error = None; Seconds = 0.0 }
        with e ->
            log (e.ToString())
            { Run = run; LlmParams = nParams; Score = None; Baselines = None; Error = Some(e.Message.Split('\n')[0]); Seconds = 0.0 }
    let result = { result with Seconds = sw.Elapsed.TotalSeconds }
    writeAtomically (resultPath out run) (resultToJson result)
    result

/// Finished = has a result with a score; failed runs are tried again on the next invocation.
let isFinished out run =
    match tryLoadResult out run with
    | Some r -> r.Score.IsSome
    | None -> false

let writeSpec (out: string) (spec: SweepSpec) =
    Directory.CreateDirectory out |> ignore
    writeAtomically (Path.Combine(out, "sweep.json")) (toJson spec)

/// The shell command that runs one run of this sweep (what a local job or a Slurm array task executes).
let selfCommand () =
    let entry = Reflection.Assembly.GetEntryAssembly().Location
    let proc = Environment.ProcessPath
    if Path.GetFileNameWithoutExtension(proc) = "dotnet" then [ proc; entry ] else [ proc ]

let private quote (s: string) =
    if Text.RegularExpressions.Regex.IsMatch(s, @"^[A-Za-z0-9_./=:,+@%-]+$") then s else "'" + s.Replace("'", "'\\''") + "'"

/// A Slurm job-array script: task i runs run i (`quecc sweep … --only i`).
let slurmScript (spec: SweepSpec) (presetArg: string) (out: string) (runCount: int) (threads: int) =
    let outAbs = Path.GetFullPath out
    let cmd = selfCommand () @ [ "sweep"; "--preset"; presetArg; "--out"; outAbs; "--only"; "$SLURM_ARRAY_TASK_ID"; "--threads"; string threads ]
    let line = cmd |> List.map (fun a -> if a = "$SLURM_ARRAY_TASK_ID" then "\"$SLURM_ARRAY_TASK_ID\"" else quote a) |> String.concat " "
    String.concat
        "\n"
        [ "#!/bin/bash"
          $"#SBATCH --job-name=quecc-{spec.Name}"
          $"#SBATCH --array=0-{runCount - 1}"
          $"#SBATCH --cpus-per-task={threads}"
          $"#SBATCH --output={outAbs}/slurm/%%A_%%a.out"
          "# One task per run; results land in runs/<id>/result.json. Afterwards:"
          $"#   quecc sweep --preset {presetArg} --out {outAbs} --collect"
          "set -euo pipefail"
          $"cd {quote Environment.CurrentDirectory}"
          line
          "" ]

// ---------------------------------------------------------------------------------------------
// Scheduler options: sbatch directives, and local jobs pinned to devices.

/// Resources a Slurm job array asks for. Each is an `#SBATCH` line; `Extra` holds further directives verbatim
/// (`--qos=high`, `--constraint=a100`). Values are checked here so a typo fails now, not after the queue wait.
type SlurmOptions =
    { Time: string option
      Partition: string option
      Mem: string option
      Gres: string option
      Account: string option
      Extra: string list }

let defaultSlurmOptions = { Time = None; Partition = None; Mem = None; Gres = None; Account = None; Extra = [] }

/// Checks every value against sbatch's own syntax (time formats of `--time`, sizes of `--mem`, `name[:type]:count`
/// of `--gres`); a value with a newline would smuggle a shell line into the script.
let validateSlurm (o: SlurmOptions) =
    let check (flag: string) (value: string option) (pattern: string) (expected: string) =
        match value with
        | Some v when not (Text.RegularExpressions.Regex.IsMatch(v, pattern)) -> inputError "%s '%s': expected %s" flag v expected
        | _ -> ()
    check "--time" o.Time @"^(\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+|\d+-\d+:\d{2}|\d+-\d+:\d{2}:\d{2})$" "minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (e.g. 2:00:00)"
    check "--partition" o.Partition @"^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$" "a partition name or a comma-separated list (e.g. gpu)"
    check "--mem" o.Mem @"^\d+[KMGT]?$" "a size with an optional K/M/G/T suffix (e.g. 32G)"
    check "--gres" o.Gres @"^[A-Za-z0-9_-]+(:[A-Za-z0-9_.-]+)*(,[A-Za-z0-9_-]+(:[A-Za-z0-9_.-]+)*)*$" "name[:type]:count (e.g. gpu:1 or gpu:a100:2)"
    check "--account" o.Account @"^[A-Za-z0-9_.-]+$" "an account name"
    for e in o.Extra do
        if not (Text.RegularExpressions.Regex.IsMatch(e, @"^--?[A-Za-z][A-Za-z0-9-]*(=[^\r\n]*)?$")) then
            inputError "--sbatch '%s': expected one sbatch option such as --qos=high or --exclusive" e

/// The `#SBATCH` lines for the options, in sbatch's spelling.
let slurmDirectives (o: SlurmOptions) =
    [ match o.Time with Some v -> yield $"#SBATCH --time={v}" | None -> ()
      match o.Partition with Some v -> yield $"#SBATCH --partition={v}" | None -> ()
      match o.Mem with Some v -> yield $"#SBATCH --mem={v}" | None -> ()
      match o.Gres with Some v -> yield $"#SBATCH --gres={v}" | None -> ()
      match o.Account with Some v -> yield $"#SBATCH --account={v}" | None -> ()
      for e in o.Extra -> $"#SBATCH {e}" ]

/// `slurmScript` with resource directives after the array's own.
let slurmScriptWith (o: SlurmOptions) (spec: SweepSpec) (presetArg: string) (out: string) (runCount: int) (threads: int) =
    validateSlurm o
    let lines = (slurmScript spec presetArg out runCount threads).Split('\n') |> List.ofArray
    // The directives must precede the first command; they go right after the existing #SBATCH block.
    let lastDirective = lines |> List.findIndexBack (fun l -> l.StartsWith "#SBATCH")
    String.concat "\n" (List.take (lastDirective + 1) lines @ slurmDirectives o @ List.skip (lastDirective + 1) lines)

/// `--devices 0,1,3`: distinct device indices as CUDA numbers them.
let parseDevices (text: string) =
    let items = text.Split(',', StringSplitOptions.TrimEntries) |> List.ofArray
    for d in items do
        if not (Text.RegularExpressions.Regex.IsMatch(d, @"^\d+$")) then inputError "--devices '%s': '%s' is not a device index; expected e.g. 0,1,2" text d
    if (List.distinct items).Length <> items.Length then inputError "--devices '%s': a device is listed twice; expected distinct indices" text
    items

/// Runs commands as child processes, at most `jobs` at a time. With devices, each running command holds one
/// device of its own, set as CUDA_VISIBLE_DEVICES (so inside it that device is cuda:0), and gives it back when
/// it exits; at most one command per device. Returns each command's exit code and the device it ran on.
let runLocalJobs (jobs: int) (devices: string list) (commands: string list list) (onExit: int -> unit) =
    if jobs < 1 then inputError "--jobs %d: expected at least 1" jobs
    if not devices.IsEmpty && jobs > devices.Length then
        inputError "--jobs %d with --devices %s: expected at most one job per device (--jobs %d or fewer)" jobs (String.Join(",", devices)) devices.Length
    let pool = new Collections.Concurrent.BlockingCollection<string>()
    for d in devices do pool.Add d
    let gate = new Threading.SemaphoreSlim(jobs)
    let tasks =
        commands
        |> List.mapi (fun i cmd ->
            Threading.Tasks.Task.Run(fun () ->
                gate.Wait()
                let device = if devices.IsEmpty then None else Some(pool.Take())
                try
                    let psi = Diagnostics.ProcessStartInfo(List.head cmd, List.tail cmd, RedirectStandardOutput = true, RedirectStandardError = true)
                    device |> Option.iter (fun d -> psi.Environment["CUDA_VISIBLE_DEVICES"] <- d)
                    use p = Diagnostics.Process.Start psi
                    p.StandardOutput.ReadToEndAsync() |> ignore
                    p.StandardError.ReadToEndAsync() |> ignore
                    p.WaitForExit()
                    onExit i
                    p.ExitCode, device
                finally
                    device |> Option.iter pool.Add
                    gate.Release() |> ignore))
    Threading.Tasks.Task.WaitAll(tasks |> List.map (fun t -> t :> Threading.Tasks.Task) |> Array.ofList)
    tasks |> List.map (fun t -> t.Result)
