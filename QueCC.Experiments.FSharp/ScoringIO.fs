/// Reading answers and ground truth for `Scoring`, and rendering its report as JSON or a text table.
///
/// Answers: JSONL as LLaVA's model_vqa_loader writes it, one `{"question_id", "text", ...}` per line
/// (other fields such as "prompt", "model_id", "answer_id" are ignored).
/// Ground truth, one JSON object per line (question ids may be numbers or strings; 12 and "12" are the same id):
///   VQAv2 / TextVQA / VizWiz  {"question_id", "answers": ["..." × 10]}  or  "answers": [{"answer": "..."}, ...];
///                             or the official single JSON document: {"annotations": [...]} (VQAv2),
///                             {"data": [...]} (TextVQA) or a top-level array (VizWiz, where "image" stands in
///                             for a missing "question_id"), each item with such an "answers" array.
///   GQA        {"question_id", "answer": "..."}
///   POPE       {"question_id", "label": "yes" | "no", "category"?: "adversarial" | ...}
///   ScienceQA  {"question_id", "answer": "B" or a 0-based index as problems.json has it, "choices"?: [...] (letters
///              past its length are wrong), "image"?: "image.png" | null (a non-empty image puts it in the IMG subset)}
///   MMBench    {"question_id": TSV index (integer; ≥ 1,000,000 = a rotated copy of index mod 1,000,000),
///              "answer": "B", "options"?: {"A": "...", ...} or the TSV's columns "A".."D" as fields, "category"?: "..."}
///   SEED       {"question_id", "answer": "B", "question_type_id": 3, "data_type"?: "image" | "video"}, or the official
///              SEED-Bench.json document {"questions": [...]} with those fields
///   MME        {"question_id", "subtask": "existence", "image": "000000006040.jpg", "label": "yes" | "no"}
module QueCC.Experiments.ScoringIO

open System
open System.Globalization
open System.IO
open System.Text
open System.Text.Json
open System.Text.Json.Nodes
open QueCC.Experiments.Data
open QueCC.Experiments.Scoring

/// A JSON object and where it came from ("answers.jsonl:3" or "gt.json: annotations[2]") for messages.
type private Located = { Where: string; Obj: JsonObject }

let private firstLine (s: string) =
    match s.IndexOfAny [| '\r'; '\n' |] with
    | -1 -> s
    | i -> s.Substring(0, i)

let private parseJson (where: string) (text: string) : JsonNode =
    try
        match JsonNode.Parse text with
        | null -> inputError "%s: null; expected a JSON object" where
        | n -> n
    with :? JsonException as e ->
        inputError "%s: not valid JSON (%s)" where (firstLine e.Message)

let private asObject (where: string) (node: JsonNode) =
    match node with
    | :? JsonObject as o -> { Where = where; Obj = o }
    | _ -> inputError "%s: expected a JSON object, got %s" where (node.GetValueKind() |> string)

/// The non-empty lines of a JSONL text as objects, numbered from 1 as an editor shows them.
let private jsonLines (source: string) (text: string) =
    text.Replace("\r\n", "\n").Split('\n')
    |> Array.mapi (fun i l -> i + 1, l)
    |> Array.filter (fun (_, l) -> l.Trim() <> "")
    |> Array.map (fun (n, l) -> let where = $"{source}:{n}" in asObject where (parseJson where l))
    |> List.ofArray

let private field (x: Located) (name: string) (expected: string) =
    match x.Obj[name] with
    | null -> inputError "%s: missing field \"%s\"; expected %s" x.Where name expected
    | n -> n

let private isKind (k: JsonValueKind) (n: JsonNode) = n.GetValueKind() = k

let private stringField (x: Located) (name: string) (expected: string) =
    let n = field x name expected
    if isKind JsonValueKind.String n then n.GetValue<string>()
    else inputError "%s: field \"%s\" is %s; expected %s" x.Where name (n.ToJsonString()) expected

/// Numbers keep their JSON text ("12"), so ids written as 12 and "12" meet.
let private idOf (x: Located) (name: string) =
    let n = field x name "a number or string question id"
    match n.GetValueKind() with
    | JsonValueKind.String -> n.GetValue<string>()
    | JsonValueKind.Number -> n.ToJsonString()
    | _ -> inputError "%s: field \"%s\" is %s; expected a number or string question id" x.Where name (n.ToJsonString())

let private yesNo (x: Located) (name: string) =
    match (stringField x name "\"yes\" or \"no\"").Trim().ToLowerInvariant() with
    | "yes" -> Yes
    | "no" -> No
    | other -> inputError "%s: field \"%s\" is \"%s\"; expected \"yes\" or \"no\"" x.Where name other

let private readText (path: string) =
    if not (File.Exists path) then inputError "%s: file not found" path
    File.ReadAllText path

/// Fails on a repeated question id, naming both places.
let private noDuplicates (items: (string * Located) list) =
    items
    |> List.fold
        (fun (seen: Map<string, string>) (id, x) ->
            match seen.TryFind id with
            | Some first -> inputError "%s: question_id %s repeats %s; expected each question once" x.Where id first
            | None -> seen.Add(id, x.Where))
        Map.empty
    |> ignore

/// Parses an answers JSONL text into question id → model text. `source` names the file in messages.
let parseAnswers (source: string) (text: string) : Map<string, string> =
    let rows = jsonLines source text
    if List.isEmpty rows then inputError "%s: no answers; expected one {\"question_id\", \"text\"} object per line" source
    let items = rows |> List.map (fun x -> idOf x "question_id", x)
    noDuplicates items
    items |> List.map (fun (id, x) -> id, stringField x "text" "the model's answer as a string") |> Map.ofList

let private humanAnswers (x: Located) =
    let expected = "an array of human answers (strings or {\"answer\": ...} objects)"
    match field x "answers" expected with
    | :? JsonArray as a when a.Count > 0 ->
        [ for i in 0 .. a.Count - 1 ->
              match a[i] with
              | null -> inputError "%s: answers[%d] is null; expected %s" x.Where i expected
              | n when isKind JsonValueKind.String n -> n.GetValue<string>()
              | :? JsonObject as o -> stringField { Where = $"{x.Where}: answers[{i}]"; Obj = o } "answer" "the answer string"
              | n -> inputError "%s: answers[%d] is %s; expected %s" x.Where i (n.ToJsonString()) expected ]
    | n -> inputError "%s: field \"answers\" is %s; expected %s" x.Where (n.ToJsonString()) expected

let private choiceLetter (x: Located) =
    let expected = "an option letter A-Z or a 0-based option index"
    let n = field x "answer" expected
    match n.GetValueKind() with
    | JsonValueKind.String ->
        match n.GetValue<string>().Trim() with
        | s when s.Length = 1 && Char.IsAsciiLetter s[0] -> Char.ToUpperInvariant s[0]
        | s -> inputError "%s: field \"answer\" is \"%s\"; expected %s" x.Where s expected
    | JsonValueKind.Number ->
        match n.GetValue<double>() with
        | i when i >= 0.0 && i < 26.0 && i = floor i -> char (int 'A' + int i)
        | _ -> inputError "%s: field \"answer\" is %s; expected %s" x.Where (n.ToJsonString()) expected
    | _ -> inputError "%s: field \"answer\" is %s; expected %s" x.Where (n.ToJsonString()) expected

let private truthOf (benchmark: Benchmark) (x: Located) : Truth =
    match Benchmark.kind benchmark with
    | VqaSoft -> HumanAnswers(humanAnswers x)
    | ExactMatch -> ExactAnswer(stringField x "answer" "the ground-truth answer string")
    | PopeYesNo ->
        let category =
            match x.Obj["category"] with
            | null -> None
            | _ -> Some(stringField x "category" "a category name such as \"adversarial\"")
        PopeLabel(yesNo x "label", category)
    | SqaChoice ->
        let choices =
            match x.Obj["choices"] with
            | null -> None
            | :? JsonArray as a when a.Count >= 1 && a.Count <= 5 -> Some a.Count
            | n -> inputError "%s: field \"choices\" is %s; expected an array of 1 to 5 option texts" x.Where (n.ToJsonString())
        let image =
            match x.Obj["image"] with
            | null -> false
            | n when isKind JsonValueKind.String n -> n.GetValue<string>() <> ""
            | n when isKind JsonValueKind.True n -> true
            | n when isKind JsonValueKind.False n -> false
            | n -> inputError "%s: field \"image\" is %s; expected an image file name, null or a boolean" x.Where (n.ToJsonString())
        let letter = choiceLetter x
        match choices with
        | Some n when int letter - int 'A' >= n -> inputError "%s: answer %c is past the %d choices" x.Where letter n
        | _ -> SqaAnswer(letter, choices, image)
    | CircularChoice ->
        let id = idOf x "question_id"
        if not (id |> Seq.forall Char.IsAsciiDigit) || id = "" then
            inputError "%s: question_id %s is not an integer; expected MMBench's TSV index" x.Where id
        let texts (o: JsonObject) (where: string) =
            [ for kv in o do
                  if kv.Key.Length = 1 && kv.Key[0] >= 'A' && kv.Key[0] <= 'Z' then
                      match kv.Value with
                      | null -> ()
                      | v when isKind JsonValueKind.String v -> kv.Key[0], v.GetValue<string>()
                      | v -> inputError "%s: option %s is %s; expected the option text" where kv.Key (v.ToJsonString()) ]
            |> List.sortBy fst
        let options =
            match x.Obj["options"] with
            | null -> texts x.Obj x.Where
            | :? JsonObject as o -> texts o x.Where
            | n -> inputError "%s: field \"options\" is %s; expected {\"A\": \"...\", ...}" x.Where (n.ToJsonString())
        let options = if List.isEmpty options then [ for c in "ABCD" -> c, "" ] else options
        let category =
            match x.Obj["category"] with
            | null -> None
            | _ -> Some(stringField x "category" "a category name")
        MmbAnswer(choiceLetter x, options, category)
    | SeedChoice ->
        let qtype =
            match field x "question_type_id" "the question type id" with
            | n when isKind JsonValueKind.Number n -> n.ToJsonString()
            | n when isKind JsonValueKind.String n -> n.GetValue<string>()
            | n -> inputError "%s: field \"question_type_id\" is %s; expected a number or string" x.Where (n.ToJsonString())
        let dtype =
            match x.Obj["data_type"] with
            | null -> "image"
            | _ -> stringField x "data_type" "\"image\" or \"video\""
        SeedAnswer(choiceLetter x, qtype, dtype)
    | MmeYesNo ->
        let subtask = stringField x "subtask" $"""one of {String.Join(", ", mmePerception @ mmeCognition)}"""
        MmeLabel(subtask, stringField x "image" "the image file name", yesNo x "label")

/// The items of an official VQA/TextVQA/VizWiz JSON document, or None when the text is JSONL.
let private officialVqaItems (source: string) (text: string) =
    let t = text.TrimStart()
    let items (arr: JsonArray) (name: string) =
        [ for i in 0 .. arr.Count - 1 ->
              let where = $"{source}: {name}[{i}]"
              match arr[i] with
              | null -> inputError "%s: null; expected a JSON object" where
              | n -> asObject where n ]
    if t.StartsWith "[" then
        match parseJson source text with
        | :? JsonArray as a -> Some(items a "")
        | _ -> None
    elif t.StartsWith "{" then
        // A one-line JSONL file is also a whole JSON document; only the official wrappers count as one.
        let whole = try Some(JsonNode.Parse text) with :? JsonException -> None
        match whole with
        | Some(:? JsonObject as o) ->
            match o["annotations"], o["data"] with
            | (:? JsonArray as a), _ -> Some(items a "annotations")
            | _, (:? JsonArray as a) -> Some(items a "data")
            | _ -> None
        | _ -> None
    else None

/// The questions of the official SEED-Bench.json ({"questions": [...], "question_type": {...}}), or None for JSONL.
let private officialSeedItems (source: string) (text: string) =
    if not (text.TrimStart().StartsWith "{") then None
    else
        match (try Some(JsonNode.Parse text) with :? JsonException -> None) with
        | Some(:? JsonObject as o) ->
            match o["questions"] with
            | :? JsonArray as a ->
                Some [ for i in 0 .. a.Count - 1 ->
                           let where = $"{source}: questions[{i}]"
                           match a[i] with
                           | null -> inputError "%s: null; expected a JSON object" where
                           | n -> asObject where n ]
            | _ -> None
        | _ -> None

/// Parses a ground-truth text for `benchmark` into (question id, truth) in file order.
let parseTruth (benchmark: Benchmark) (source: string) (text: string) : (string * Truth) list =
    let rows, official =
        let document =
            match Benchmark.kind benchmark with
            | VqaSoft -> officialVqaItems source text
            | SeedChoice -> officialSeedItems source text
            | _ -> None
        match document with
        | Some items -> items, true
        | None -> jsonLines source text, false
    if List.isEmpty rows then inputError "%s: no ground truth; expected one object per line for %s" source (Benchmark.name benchmark)
    let idFor (x: Located) =
        // VizWiz's official annotations are keyed by image, not by a question id.
        if official && isNull x.Obj["question_id"] && not (isNull x.Obj["image"]) then stringField x "image" "the image file name"
        else idOf x "question_id"
    let items = rows |> List.map (fun x -> idFor x, x)
    noDuplicates items
    items |> List.map (fun (id, x) -> id, truthOf benchmark x)

/// Reads both files and scores them.
let scoreFilesWith (options: ScoreOptions) (benchmark: Benchmark) (answersPath: string) (annotationsPath: string) : ScoreReport =
    let answers = parseAnswers answersPath (readText answersPath)
    let truth = parseTruth benchmark annotationsPath (readText annotationsPath)
    scoreWith options benchmark truth answers

/// `scoreFilesWith ScoreOptions.Default`.
let scoreFiles (benchmark: Benchmark) (answersPath: string) (annotationsPath: string) : ScoreReport =
    scoreFilesWith ScoreOptions.Default benchmark answersPath annotationsPath

// ---------------------------------------------------------------------------------------------
// Rendering

let private num (x: float) : JsonNode = JsonValue.Create x
let private int' (x: int) : JsonNode = JsonValue.Create x

let private obj (fields: (string * JsonNode) list) : JsonNode =
    let o = JsonObject()
    for k, v in fields do o[k] <- v
    o

let private arr (items: JsonNode seq) : JsonNode =
    let a = JsonArray()
    for i in items do a.Add i
    a

/// How many ids are listed in a report; the count is always complete.
let listedIds = 20

let private idList (ids: string list) =
    obj [ "count", int' ids.Length; "first", arr (ids |> List.truncate listedIds |> List.map (fun s -> JsonValue.Create s :> JsonNode)) ]

let private popeJson (m: PopeMetrics) =
    obj [ "total", int' m.Total; "tp", int' m.TruePositives; "fp", int' m.FalsePositives; "tn", int' m.TrueNegatives
          "fn", int' m.FalseNegatives; "unanswered", int' m.Unanswered; "accuracy", num m.Accuracy
          "precision", num m.Precision; "recall", num m.Recall; "f1", num m.F1; "yes_ratio", num m.YesRatio ]

/// The report as JSON; field names are part of the CLI contract. Rates are fractions in [0, 1]; "headline" is
/// on the paper's scale (percent, or MME points).
let toJson (r: ScoreReport) : JsonNode =
    let metrics =
        match r.Metrics with
        | VqaMetrics acc -> obj [ "accuracy", num acc ]
        | ExactMatchMetrics acc -> obj [ "accuracy", num acc ]
        | PopeResult(overall, perCat) ->
            obj [ "overall", popeJson overall
                  "categories", obj [ for c, m in perCat -> c, popeJson m ] ]
        | SqaResult m ->
            obj [ "accuracy", num m.Accuracy; "correct", int' m.Correct; "count", int' m.Count
                  "img_accuracy", num m.ImgAccuracy; "img_correct", int' m.ImgCorrect; "img_count", int' m.ImgCount
                  "unparsed", int' m.Unparsed ]
        | MmbResult m ->
            obj [ "circular_accuracy", num m.CircularAccuracy; "circular_correct", int' m.CircularCorrect
                  "questions", int' m.Questions; "vanilla_accuracy", num m.VanillaAccuracy; "rows", int' m.Rows
                  "unparsed", int' m.Unparsed; "orphan_copies", int' m.Orphans
                  "categories", obj [ for c, n, a in m.PerCategory -> c, obj [ "questions", int' n; "circular_accuracy", num a ] ] ]
        | SeedResult m ->
            obj [ "accuracy", num m.Accuracy; "count", int' m.Count
                  "image_accuracy", num m.ImageAccuracy; "image_count", int' m.ImageCount
                  "video_accuracy", num m.VideoAccuracy; "video_count", int' m.VideoCount
                  "question_types", obj [ for t, n, a in m.PerType -> t, obj [ "questions", int' n; "accuracy", num a ] ] ]
        | MmeResult m ->
            obj [ "perception", num m.Perception
                  "cognition", num m.Cognition
                  "subtasks",
                  arr [ for s in m.Subtasks ->
                            obj [ "subtask", JsonValue.Create s.Subtask; "questions", int' s.Questions; "images", int' s.Images
                                  "accuracy", num s.Accuracy; "accuracy_plus", num s.AccuracyPlus; "score", num s.Score ] ] ]
    obj [ "benchmark", JsonValue.Create(Benchmark.name r.Benchmark)
          "headline", num r.Headline
          "scored", int' r.Scored
          "missing_answers", idList r.MissingAnswers
          "unmatched_answers", idList r.UnmatchedAnswers
          "metrics", metrics ]

let private f (x: float) = x.ToString("0.00", CultureInfo.InvariantCulture)
let private pct (x: float) = f (100.0 * x)

/// The report as an aligned plain-text table (percentages with two decimals).
let toText (r: ScoreReport) : string =
    let sb = StringBuilder()
    let line (s: string) = sb.AppendLine s |> ignore
    let ids (label: string) (xs: string list) (consequence: string) =
        if not xs.IsEmpty then
            let shown = String.Join(", ", xs |> List.truncate 5)
            line $"""{label}: {xs.Length} ({consequence}; e.g. {shown}{if xs.Length > 5 then ", ..." else ""})"""
    line $"benchmark  {Benchmark.name r.Benchmark}"
    line $"scored     {r.Scored} questions"
    ids "missing answers" r.MissingAnswers "scored as wrong"
    ids "answers without ground truth" r.UnmatchedAnswers "not scored"
    match r.Metrics with
    | VqaMetrics acc -> line $"accuracy   {pct acc}"
    | ExactMatchMetrics acc -> line $"accuracy   {pct acc}"
    | SqaResult m ->
        line $"accuracy   {pct m.Accuracy} ({m.Correct} of {m.Count})"
        line $"IMG        {pct m.ImgAccuracy} ({m.ImgCorrect} of {m.ImgCount} with an image)"
        line $"no option letter found in {m.Unparsed} answers (scored as wrong)"
    | MmbResult m ->
        line $"circular   {pct m.CircularAccuracy} ({m.CircularCorrect} of {m.Questions} questions, every copy right)"
        line $"single     {pct m.VanillaAccuracy} (original rows only)"
        line $"rows       {m.Rows}; no option inferred in {m.Unparsed}; copies without their question {m.Orphans}"
        for c, n, a in m.PerCategory do
            line (String.Format("  {0,-36}{1,6}{2,9}", c, n, pct a))
    | SeedResult m ->
        line (String.Format("{0,-14}{1,7}{2,10}", "type", "n", "accuracy"))
        for t, n, a in m.PerType do
            line (String.Format("{0,-14}{1,7}{2,10}", t, n, pct a))
        line $"image      {pct m.ImageAccuracy} ({m.ImageCount})"
        line $"video      {pct m.VideoAccuracy} ({m.VideoCount})"
        line $"all        {pct m.Accuracy} ({m.Count})"
    | PopeResult(overall, perCat) ->
        line (String.Format("{0,-14}{1,7}{2,10}{3,11}{4,9}{5,8}{6,11}", "category", "n", "accuracy", "precision", "recall", "F1", "yes-ratio"))
        for name, m in perCat @ [ "all", overall ] do
            line (String.Format("{0,-14}{1,7}{2,10}{3,11}{4,9}{5,8}{6,11}", name, m.Total, pct m.Accuracy, pct m.Precision, pct m.Recall, pct m.F1, pct m.YesRatio))
    | MmeResult m ->
        line (String.Format("{0,-24}{1,6}{2,10}{3,11}{4,9}", "subtask", "n", "accuracy", "accuracy+", "score"))
        for s in m.Subtasks do
            line (String.Format("{0,-24}{1,6}{2,10}{3,11}{4,9}", s.Subtask, s.Questions, pct s.Accuracy, pct s.AccuracyPlus, f s.Score))
        line $"perception {f m.Perception}"
        line $"cognition  {f m.Cognition}"
    line $"headline   {f r.Headline}"
    sb.ToString()
