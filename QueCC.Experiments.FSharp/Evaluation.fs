/// Answering a benchmark's questions with a LLaVA checkpoint, writing answers as LLaVA's model_vqa_loader does,
/// so `ScoringIO.scoreFiles` (or the official scripts) can score them.
module QueCC.Experiments.Evaluation

open System
open System.IO
open System.Security.Cryptography
open System.Text
open System.Text.Json.Nodes
open QueCC.Experiments.Data
open QueCC.Model.Clip
open QueCC.Model.Generation
open QueCC.Model.Llava

/// One line of LLaVA's question format: {"question_id", "image", "text"}.
type Question =
    { /// The id as written (a number stays a number in the answers file).
      Id: JsonNode
      Image: string
      Text: string
      /// "questions.jsonl:3", for messages.
      Where: string }

let private firstLine (s: string) =
    match s.IndexOfAny [| '\r'; '\n' |] with
    | -1 -> s
    | i -> s.Substring(0, i)

/// Parses a questions JSONL text; `source` names the file in messages.
let parseQuestions (source: string) (text: string) : Question list =
    let rows =
        text.Replace("\r\n", "\n").Split('\n')
        |> Array.mapi (fun i l -> i + 1, l)
        |> Array.filter (fun (_, l) -> l.Trim() <> "")
        |> List.ofArray
    if List.isEmpty rows then inputError "%s: no questions; expected one {\"question_id\", \"image\", \"text\"} object per line" source
    let questions =
        [ for n, line in rows ->
              let where = $"{source}:{n}"
              let o: JsonObject =
                  try
                      match JsonNode.Parse line with
                      | :? JsonObject as o -> o
                      | _ -> inputError "%s: expected a JSON object {\"question_id\", \"image\", \"text\"}" where
                  with :? Text.Json.JsonException as e -> inputError "%s: not valid JSON (%s)" where (firstLine e.Message)
              let str (name: string) (expected: string) =
                  match o[name] with
                  | null -> inputError "%s: missing field \"%s\"; expected %s" where name expected
                  | v when v.GetValueKind() = Text.Json.JsonValueKind.String -> v.GetValue<string>()
                  | v -> inputError "%s: field \"%s\" is %s; expected %s" where name (v.ToJsonString()) expected
              let id =
                  match o["question_id"] with
                  | null -> inputError "%s: missing field \"question_id\"; expected a number or string" where
                  | v when v.GetValueKind() = Text.Json.JsonValueKind.String || v.GetValueKind() = Text.Json.JsonValueKind.Number -> v.DeepClone()
                  | v -> inputError "%s: field \"question_id\" is %s; expected a number or string" where (v.ToJsonString())
              { Id = id; Image = str "image" "the image file name, relative to the images folder"; Text = str "text" "the prompt text"; Where = where } ]
    questions
    |> List.fold
        (fun (seen: Map<string, string>) q ->
            let key = q.Id.ToJsonString().Trim('"')
            match seen.TryFind key with
            | Some first -> inputError "%s: question_id %s repeats %s; expected each question once" q.Where key first
            | None -> seen.Add(key, q.Where))
        Map.empty
    |> ignore
    questions

/// A stable answer id (LLaVA draws a random shortuuid; a hash keeps reruns byte-identical).
let answerId (modelId: string) (q: Question) =
    let bytes = SHA256.HashData(Encoding.UTF8.GetBytes($"{modelId}\n{q.Id.ToJsonString()}\n{q.Text}"))
    Convert.ToHexString(bytes).Substring(0, 22).ToLowerInvariant()

/// One answers-file line: {"question_id", "prompt", "text", "model_id", "answer_id"}.
let answerLine (modelId: string) (q: Question) (text: string) =
    let o = JsonObject()
    o["question_id"] <- q.Id.DeepClone()
    o["prompt"] <- JsonValue.Create q.Text
    o["text"] <- JsonValue.Create text
    o["model_id"] <- JsonValue.Create modelId
    o["answer_id"] <- JsonValue.Create(answerId modelId q)
    o.ToJsonString()

// ---------------------------------------------------------------------------------------------
// The reference's prompts and decoding, and batched answering

/// How LLaVA-1.5 asks a benchmark's questions (docs/Evaluation.md, scripts/v1_5/eval/*.sh and the question files
/// they read): the line appended to every question and the decoding (greedy: temperature 0, one beam).
type ReferencePrompt =
    { Benchmark: Scoring.Benchmark
      /// Appended after a newline, unless the question already ends with it (LLaVA's question files carry it).
      Suffix: string
      /// model_vqa_loader.py's default 128; model_vqa_science.py and model_vqa_mmbench.py fix 1024.
      MaxNewTokens: int
      /// The LLaVA script that generates the answers.
      Script: string }

let private shortAnswer = "Answer the question using a single word or phrase."
let private optionLetter = "Answer with the option's letter from the given choices directly."

let referencePrompt (benchmark: Scoring.Benchmark) : ReferencePrompt =
    let p suffix maxNew script = { Benchmark = benchmark; Suffix = suffix; MaxNewTokens = maxNew; Script = script }
    match benchmark with
    | Scoring.VqaV2
    | Scoring.Gqa
    | Scoring.TextVqa
    | Scoring.Pope
    | Scoring.Mme -> p shortAnswer 128 "llava/eval/model_vqa_loader.py"
    | Scoring.VizWiz -> p ("When the provided information is insufficient, respond with 'Unanswerable'.\n" + shortAnswer) 128 "llava/eval/model_vqa_loader.py"
    | Scoring.ScienceQa -> p optionLetter 1024 "llava/eval/model_vqa_science.py --single-pred-prompt"
    | Scoring.MmBench -> p optionLetter 1024 "llava/eval/model_vqa_mmbench.py --single-pred-prompt"
    | Scoring.Seed -> p optionLetter 128 "llava/eval/model_vqa_loader.py"

/// The question text with the reference suffix on its own line, once.
let withSuffix (prompt: ReferencePrompt) (text: string) =
    if text.TrimEnd().EndsWith(prompt.Suffix) then text else text.TrimEnd() + "\n" + prompt.Suffix

type EvalSettings =
    { /// Some benchmark: its reference suffix is added and its decoding used; None: the questions as written.
      Benchmark: Scoring.Benchmark option
      /// None: the reference's (128 without a benchmark).
      MaxNewTokens: int option
      /// Questions answered per forward pass (left-padded; greedy answers equal batch size 1).
      BatchSize: int }

    static member Default = { Benchmark = None; MaxNewTokens = None; BatchSize = 1 }

/// `answerLine` plus what makes the answer traceable: benchmark, suffix and decoding under "metadata".
let private tracedLine (modelId: string) (q: Question) (text: string) (settings: EvalSettings) (maxNew: int) =
    let o = (JsonNode.Parse(answerLine modelId q text)).AsObject()
    let m = JsonObject()
    match settings.Benchmark with
    | Some b ->
        m["benchmark"] <- JsonValue.Create(Scoring.Benchmark.name b)
        m["prompt_suffix"] <- JsonValue.Create (referencePrompt b).Suffix
    | None -> ()
    m["temperature"] <- JsonValue.Create 0.0
    m["num_beams"] <- JsonValue.Create 1
    m["max_new_tokens"] <- JsonValue.Create maxNew
    m["batch_size"] <- JsonValue.Create settings.BatchSize
    o["metadata"] <- m
    o.ToJsonString()

/// The model id LLaVA writes: the model folder's name.
let modelIdOf (modelDir: string) = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath modelDir))

/// Answers every question greedily (temperature 0) with the model loaded once, `settings.BatchSize` at a time, and
/// writes the answers JSONL to `outAnswersJsonl` via a temporary file and a rename, so an interrupted run leaves no
/// half file. All questions and images are checked before the model is loaded. `progress done total` is called after
/// each batch.
let evaluateWith
    (settings: EvalSettings)
    (modelDir: string)
    (visionTowerDir: string option)
    (questionsJsonl: string)
    (imagesDir: string)
    (outAnswersJsonl: string)
    (progress: int -> int -> unit)
    : unit =
    let maxNewTokens =
        settings.MaxNewTokens
        |> Option.defaultWith (fun () -> settings.Benchmark |> Option.map (fun b -> (referencePrompt b).MaxNewTokens) |> Option.defaultValue 128)
    if maxNewTokens < 1 then inputError "max new tokens %d; expected at least 1" maxNewTokens
    if settings.BatchSize < 1 then inputError "batch size %d; expected at least 1" settings.BatchSize
    if not (File.Exists questionsJsonl) then inputError "%s: questions file not found" questionsJsonl
    if not (Directory.Exists imagesDir) then inputError "%s: images folder not found" imagesDir
    let questions =
        parseQuestions questionsJsonl (File.ReadAllText questionsJsonl)
        |> List.map (fun q -> match settings.Benchmark with | Some b -> { q with Text = withSuffix (referencePrompt b) q.Text } | None -> q)
    for q in questions do
        let path = Path.Combine(imagesDir, q.Image)
        if not (File.Exists path) then inputError "%s: image \"%s\" not found (looked for %s)" q.Where q.Image path
    let modelId = modelIdOf modelDir
    use model = LlavaCheckpoint.Load(modelDir, Option.toObj visionTowerDir, null)
    if isNull model.Tokenizer then inputError "%s: no tokenizer files (vocab.json + merges.txt or tokenizer.model)" modelDir
    let options = GenerationOptions(MaxNewTokens = maxNewTokens, Temperature = 0.0)
    let outFull = Path.GetFullPath outAnswersJsonl
    Directory.CreateDirectory(Path.GetDirectoryName outFull) |> ignore
    let tmp = outFull + ".tmp"
    try
        do
            use w = new StreamWriter(tmp, false, UTF8Encoding(false))
            let mutable finished = 0
            for batch in List.chunkBySize settings.BatchSize questions do
                let images =
                    batch
                    |> List.map (fun q ->
                        try RgbImage.Load(Path.Combine(imagesDir, q.Image))
                        with :? InvalidDataException as e -> inputError "%s: %s" q.Where (firstLine e.Message))
                let texts =
                    match batch, images with
                    | [ q ], [ image ] -> [| model.Answer(image, q.Text, options) |]
                    | _ -> model.AnswerBatch(Array.ofList images, batch |> List.map (fun q -> q.Text) |> Array.ofList, options)
                for q, text in List.zip batch (List.ofArray texts) do
                    w.Write(tracedLine modelId q text settings maxNewTokens)
                    w.Write '\n'
                finished <- finished + batch.Length
                progress finished questions.Length
        File.Move(tmp, outFull, true)
    with _ ->
        if File.Exists tmp then File.Delete tmp
        reraise ()

/// `evaluateWith` batch size 1, the questions as written, at most `maxNewTokens` new tokens.
let evaluate
    (modelDir: string)
    (visionTowerDir: string option)
    (questionsJsonl: string)
    (imagesDir: string)
    (outAnswersJsonl: string)
    (maxNewTokens: int)
    (progress: int -> int -> unit)
    : unit =
    if maxNewTokens < 1 then inputError "max new tokens %d; expected at least 1" maxNewTokens
    evaluateWith { EvalSettings.Default with MaxNewTokens = Some maxNewTokens } modelDir visionTowerDir questionsJsonl imagesDir outAnswersJsonl progress

// ---------------------------------------------------------------------------------------------
// Baselines: what an accuracy is worth. The same answering run twice — with the real images and with each image
// replaced by a uniform grey one of the same size (the "blind" model: whatever it gets right comes from the question
// text alone) — next to the majority-answer accuracy of the split and the accuracy per question type.

/// The ground truth of a question, from optional fields of its questions-file line: "answer" and "category"
/// (LLaVA's question files carry "category" for MME/POPE-style splits; `make-data` splits carry both).
type AnswerKey = { Answer: string; Category: string }

/// The grey of the blind baseline: mid-grey, so the preprocessing sees a constant image of ordinary brightness.
let blindGrey = 128uy

/// "answer"/"category" of every line that has an "answer" (category "all" where absent), by question id.
let parseAnswerKey (source: string) (text: string) : Map<string, AnswerKey> =
    text.Replace("\r\n", "\n").Split('\n')
    |> Array.mapi (fun i l -> i + 1, l)
    |> Array.filter (fun (_, l) -> l.Trim() <> "")
    |> Array.choose (fun (n, line) ->
        let o =
            try JsonNode.Parse line :?> JsonObject
            with _ -> inputError "%s:%d: not a JSON object" source n
        match o["answer"] with
        | null -> None
        | a when a.GetValueKind() = Text.Json.JsonValueKind.String ->
            let cat =
                match o["category"] with
                | null -> "all"
                | c when c.GetValueKind() = Text.Json.JsonValueKind.String -> c.GetValue<string>()
                | c -> inputError "%s:%d: field \"category\" is %s; expected a string" source n (c.ToJsonString())
            Some(o["question_id"].ToJsonString().Trim('"'), { Answer = a.GetValue<string>(); Category = cat })
        | a -> inputError "%s:%d: field \"answer\" is %s; expected the ground-truth answer as a string" source n (a.ToJsonString()))
    |> Map.ofArray

/// Accuracy of always giving the split's most common ground-truth answer (compared after `normalize`).
let majorityAccuracy (normalize: string -> string) (truths: string list) =
    if truths.IsEmpty then 0.0
    else
        let top = truths |> List.countBy normalize |> List.map snd |> List.max
        float top / float truths.Length

/// Fraction correct per category, from (category, correct) pairs.
let accuracyByType (graded: (string * bool) list) : Map<string, float> =
    graded
    |> List.groupBy fst
    |> List.map (fun (c, xs) -> c, float (xs |> List.filter snd |> List.length) / float xs.Length)
    |> Map.ofList

/// Accuracy, blind accuracy, majority baseline and per-type accuracy (real images) of one evaluation.
type BaselineReport =
    { Questions: int
      Score: float
      BlindScore: float
      MajorityScore: float
      ByType: Map<string, float>
      BlindByType: Map<string, float>
      /// Per category, the majority-answer accuracy inside that category.
      MajorityByType: Map<string, float> }

/// Grades two answer sets (real images, grey images) against the key with `matches truth answer`.
let baselineReport (matches: string -> string -> bool) (normalize: string -> string) (key: Map<string, AnswerKey>)
                   (answers: Map<string, string>) (blindAnswers: Map<string, string>) : BaselineReport =
    let items = key |> Map.toList
    let graded (ans: Map<string, string>) =
        items |> List.map (fun (id, k) -> k.Category, (match ans.TryFind id with Some a -> matches k.Answer a | None -> false))
    let score g = if List.isEmpty g then 0.0 else float (g |> List.filter snd |> List.length) / float g.Length
    let real, blind = graded answers, graded blindAnswers
    { Questions = items.Length
      Score = score real
      BlindScore = score blind
      MajorityScore = majorityAccuracy normalize [ for _, k in items -> k.Answer ]
      ByType = accuracyByType real
      BlindByType = accuracyByType blind
      MajorityByType =
        items
        |> List.groupBy (fun (_, k) -> k.Category)
        |> List.map (fun (c, xs) -> c, majorityAccuracy normalize [ for _, k in xs -> k.Answer ])
        |> Map.ofList }

/// The blind run: `evaluate` over a temporary copy of the images folder in which every question's image is a uniform
/// grey PNG of the image's own size, so the answering path (batching included) is exactly the one of the real run.
let evaluateBlindWith
    (settings: EvalSettings)
    (modelDir: string)
    (visionTowerDir: string option)
    (questionsJsonl: string)
    (imagesDir: string)
    (outAnswersJsonl: string)
    (progress: int -> int -> unit)
    : unit =
    if not (File.Exists questionsJsonl) then inputError "%s: questions file not found" questionsJsonl
    let questions = parseQuestions questionsJsonl (File.ReadAllText questionsJsonl)
    let grey = Path.Combine(Path.GetTempPath(), $"quecc-blind-{Environment.ProcessId}-{Guid.NewGuid():N}")
    try
        for q in questions |> List.distinctBy (fun q -> q.Image) do
            let src = Path.Combine(imagesDir, q.Image)
            if not (File.Exists src) then inputError "%s: image \"%s\" not found (looked for %s)" q.Where q.Image src
            let img =
                try RgbImage.Load src
                with :? InvalidDataException as e -> inputError "%s: %s" q.Where (firstLine e.Message)
            let dst = Path.Combine(grey, q.Image)
            Directory.CreateDirectory(Path.GetDirectoryName dst) |> ignore
            RgbImage.Filled(img.Width, img.Height, blindGrey, blindGrey, blindGrey).SavePng dst
        evaluateWith settings modelDir visionTowerDir questionsJsonl grey outAnswersJsonl progress
    finally
        if Directory.Exists grey then Directory.Delete(grey, true)

/// `evaluateBlindWith` batch size 1, the questions as written, at most `maxNewTokens` new tokens.
let evaluateBlind modelDir visionTowerDir questionsJsonl imagesDir outAnswersJsonl (maxNewTokens: int) progress =
    if maxNewTokens < 1 then inputError "max new tokens %d; expected at least 1" maxNewTokens
    evaluateBlindWith { EvalSettings.Default with MaxNewTokens = Some maxNewTokens } modelDir visionTowerDir questionsJsonl imagesDir outAnswersJsonl progress

/// `baselineReport` as JSON: score, blind_score, majority_score, by_type (and blind_by_type, majority_by_type).
let baselineJson (r: BaselineReport) =
    let o = JsonObject()
    let m (x: Map<string, float>) =
        let j = JsonObject()
        for KeyValue(k, v) in x do j[k] <- JsonValue.Create v
        j
    o["questions"] <- JsonValue.Create r.Questions
    o["score"] <- JsonValue.Create r.Score
    o["blind_score"] <- JsonValue.Create r.BlindScore
    o["majority_score"] <- JsonValue.Create r.MajorityScore
    o["by_type"] <- m r.ByType
    o["blind_by_type"] <- m r.BlindByType
    o["majority_by_type"] <- m r.MajorityByType
    o
