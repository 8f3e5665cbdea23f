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
                      match parseJsonNode where line with
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

/// The model id LLaVA writes: the model folder's name.
let modelIdOf (modelDir: string) = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath modelDir))

/// Answers every question greedily (temperature 0) with the model loaded once, and writes the answers JSONL to
/// `outAnswersJsonl` via a temporary file and a rename, so an interrupted run leaves no half file.
/// All questions and images are checked before the model is loaded. `progress done total` is called after each answer.
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
    if not (File.Exists questionsJsonl) then inputError "%s: questions file not found" questionsJsonl
    if not (Directory.Exists imagesDir) then inputError "%s: images folder not found" imagesDir
    let questions = parseQuestions questionsJsonl (File.ReadAllText questionsJsonl)
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
            questions
            |> List.iteri (fun i q ->
                let image =
                    try RgbImage.Load(Path.Combine(imagesDir, q.Image))
                    with :? QueCC.Model.UserInputException as e -> inputError "%s: %s" q.Where (firstLine e.Message)
                let text = model.Answer(image, q.Text, options)
                w.Write(answerLine modelId q text)
                w.Write '\n'
                progress (i + 1) questions.Length)
        File.Move(tmp, outFull, true)
    with _ ->
        if File.Exists tmp then File.Delete tmp
        reraise ()
