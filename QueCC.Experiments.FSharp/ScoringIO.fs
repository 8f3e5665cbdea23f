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

let private parseJson (where: string) (text: string) : JsonNode = parseJsonNode where text

let private asObject (where: string) (node: JsonNode) =
    match node with
    | :? JsonObject as o -> { Where = where; Obj = o }
    | _ -> inputError "%s: expected a JSON object, got %s" where (node.GetValueKind() |> string)

/// The non-empty lines of a JSONL text as objects, numbered from 1 as an editor shows them.
let private jsonLines (source: string) (text: string) =
    let text = if text.StartsWith '\uFEFF' then text.Substring 1 else text
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
        let whole = try Some(parseJsonNode source text) with :? InputError -> None
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
        match (try Some(parseJsonNode source text) with :? InputError -> None) with
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
/// eval_textvqa.py's prompt_processor: the question inside a LLaVA TextVQA prompt, lower-cased.
let private textVqaQuestion (where: string) (prompt: string) =
    let lines = prompt.Split '\n'
    let q =
        if prompt.StartsWith "OCR tokens: " then
            let m = Text.RegularExpressions.Regex.Match(prompt, "Question: (.*?) Short answer:", Text.RegularExpressions.RegexOptions.Singleline)
            if m.Success then m.Groups[1].Value else inputError "%s: prompt starts with \"OCR tokens: \" but has no \"Question: ... Short answer:\"" where
        elif prompt.Contains "Reference OCR token: " && lines.Length = 3 then
            if prompt.StartsWith "Reference OCR token:" then lines[1] else lines[0]
        elif lines.Length = 2 then lines[0]
        else inputError "%s: prompt has %d lines; expected LLaVA's TextVQA prompt (question, optional OCR line, answer instruction)" where lines.Length
    q.ToLowerInvariant()

/// LLaVA's TextVQA question file puts the image id in "question_id" (several questions share it) and eval_textvqa.py
/// finds the annotation by (image_id, question in the prompt). Answers written that way, against the official
/// {"data": [...]} document, are re-keyed to the annotations' question ids; None when the answers are keyed by
/// question id already.
let private rekeyLlavaTextVqa (answersPath: string) (answersText: string) (annotationsPath: string) (annotationsText: string) =
    match officialVqaItems annotationsPath annotationsText with
    | Some items when items |> List.forall (fun x -> not (isNull x.Obj["image_id"]) && not (isNull x.Obj["question"])) ->
        let questionIds = items |> List.map (fun x -> idOf x "question_id") |> Set.ofList
        let rows = jsonLines answersPath answersText
        if rows |> List.forall (fun x -> questionIds.Contains(idOf x "question_id")) then None
        else
            let byImageQuestion =
                items
                |> List.map (fun x -> (stringField x "image_id" "the image id", (stringField x "question" "the question").ToLowerInvariant()), idOf x "question_id")
                |> Map.ofList
            let keyed =
                rows
                |> List.map (fun x ->
                    let key = idOf x "question_id", textVqaQuestion x.Where (stringField x "prompt" "the prompt LLaVA wrote (needed to find the question)")
                    match byImageQuestion.TryFind key with
                    | Some qid -> qid, x
                    | None -> inputError "%s: no annotation for image %s with question \"%s\" in %s" x.Where (fst key) (snd key) annotationsPath)
            noDuplicates keyed
            Some(keyed |> List.map (fun (qid, x) -> qid, stringField x "text" "the model's answer as a string") |> Map.ofList)
    | _ -> None

let scoreFilesWith (options: ScoreOptions) (benchmark: Benchmark) (answersPath: string) (annotationsPath: string) : ScoreReport =
    let answersText = readText answersPath
    let annotationsText = readText annotationsPath
    let answers =
        match (if benchmark = TextVqa then rekeyLlavaTextVqa answersPath answersText annotationsPath annotationsText else None) with
        | Some a -> a
        | None -> parseAnswers answersPath answersText
    let truth = parseTruth benchmark annotationsPath annotationsText
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

// ---------------------------------------------------------------------------------------------
// MMBench test-split submission (its answers are not public)

/// A tab-separated text as pandas writes and reads it: fields with a tab, newline or quote are quoted, "" inside.
let private parseTsv (source: string) (text: string) : string list list =
    let rows = ResizeArray<string list>()
    let row = ResizeArray<string>()
    let field = StringBuilder()
    let mutable i = 0
    let mutable quoted = false
    let endField () = row.Add(field.ToString()); field.Clear() |> ignore
    let endRow () =
        endField ()
        if not (row.Count = 1 && row[0] = "") then rows.Add(List.ofSeq row)
        row.Clear()
    while i < text.Length do
        let c = text[i]
        if quoted then
            if c = '"' && i + 1 < text.Length && text[i + 1] = '"' then field.Append '"' |> ignore; i <- i + 1
            elif c = '"' then quoted <- false
            else field.Append c |> ignore
        else
            match c with
            | '"' when field.Length = 0 -> quoted <- true
            | '\t' -> endField ()
            | '\r' when i + 1 < text.Length && text[i + 1] = '\n' -> ()
            | '\n' | '\r' -> endRow ()
            | c -> field.Append c |> ignore
        i <- i + 1
    if quoted then inputError "%s: a quoted field is never closed; expected a TSV as MMBench ships it" source
    if field.Length > 0 || row.Count > 0 then endRow ()
    List.ofSeq rows

/// LLaVA's convert_mmbench_for_submission.py: the question TSV without hint, category, source, image, comment and
/// l2-category, a "prediction" column inserted at position 6 (after index, question and the options A-D), filled by
/// question id = index (empty where there is no answer). Header first.
let mmbenchSubmission (tsvSource: string) (tsvText: string) (answers: Map<string, string>) : string list list =
    match parseTsv tsvSource tsvText with
    | [] -> inputError "%s: empty; expected MMBench's question TSV with a header row" tsvSource
    | header :: rows ->
        let indexCol = header |> List.tryFindIndex ((=) "index") |> Option.defaultWith (fun () -> inputError "%s: no \"index\" column; expected MMBench's question TSV" tsvSource)
        let dropped = set [ "hint"; "category"; "source"; "image"; "comment"; "l2-category" ]
        let keep = header |> List.indexed |> List.filter (fun (_, h) -> not (dropped.Contains h)) |> List.map fst
        let at = min 6 keep.Length
        let insert (xs: string list) (x: string) = List.take at xs @ [ x ] @ List.skip at xs
        let rowsOut =
            rows
            |> List.mapi (fun n r ->
                if r.Length <> header.Length then
                    inputError "%s: row %d has %d fields; the header has %d" tsvSource (n + 2) r.Length header.Length
                let cells = keep |> List.map (fun j -> r[j])
                insert cells (answers |> Map.tryFind r[indexCol] |> Option.defaultValue ""))
        insert (keep |> List.map (fun j -> header[j])) "prediction" :: rowsOut

/// The rows as a one-sheet .xlsx (integers as numbers, everything else as inline strings), via a temporary file.
let writeXlsx (path: string) (rows: string list list) =
    let esc (s: string) =
        let sb = StringBuilder()
        for c in s do
            match c with
            | '&' -> sb.Append "&amp;" |> ignore
            | '<' -> sb.Append "&lt;" |> ignore
            | '>' -> sb.Append "&gt;" |> ignore
            | '"' -> sb.Append "&quot;" |> ignore
            | c when c < ' ' && c <> '\t' && c <> '\n' && c <> '\r' -> ()
            | c -> sb.Append c |> ignore
        sb.ToString()
    let column (i: int) =
        let mutable n = i + 1
        let mutable s = ""
        while n > 0 do
            s <- string (char (int 'A' + (n - 1) % 26)) + s
            n <- (n - 1) / 26
        s
    let sheet = StringBuilder()
    sheet.Append("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>") |> ignore
    rows
    |> List.iteri (fun r cells ->
        sheet.Append($"<row r=\"{r + 1}\">") |> ignore
        cells
        |> List.iteri (fun c v ->
            let ref = $"{column c}{r + 1}"
            let isInt = v <> "" && v.Length < 16 && v |> Seq.forall Char.IsAsciiDigit && (v = "0" || v[0] <> '0')
            if isInt then sheet.Append($"<c r=\"{ref}\"><v>{v}</v></c>") |> ignore
            elif v <> "" then sheet.Append($"<c r=\"{ref}\" t=\"inlineStr\"><is><t xml:space=\"preserve\">{esc v}</t></is></c>") |> ignore)
        sheet.Append "</row>" |> ignore)
    sheet.Append "</sheetData></worksheet>" |> ignore
    let parts =
        [ "[Content_Types].xml",
          "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/><Override PartName=\"/xl/worksheets/sheet1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/></Types>"
          "_rels/.rels",
          "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>"
          "xl/workbook.xml",
          "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><sheets><sheet name=\"Sheet1\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>"
          "xl/_rels/workbook.xml.rels",
          "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet1.xml\"/></Relationships>"
          "xl/worksheets/sheet1.xml", sheet.ToString() ]
    let full = Path.GetFullPath path
    Directory.CreateDirectory(Path.GetDirectoryName full) |> ignore
    let tmp = full + ".tmp"
    try
        do
            use zip = new IO.Compression.ZipArchive(File.Create tmp, IO.Compression.ZipArchiveMode.Create)
            for name, text in parts do
                use w = new StreamWriter(zip.CreateEntry(name).Open(), UTF8Encoding(false))
                w.Write(text: string)
        File.Move(tmp, full, true)
    with _ ->
        if File.Exists tmp then File.Delete tmp
        reraise ()
