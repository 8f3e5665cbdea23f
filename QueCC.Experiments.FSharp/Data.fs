/// Observations behind a scaling-law fit, and reading them from CSV.
module QueCC.Experiments.Data

open System
open System.Globalization
open System.IO

/// An error the user can cause (a bad file, flag or value): the library's one user-error type, so the CLI
/// prints one line for it wherever it was raised and lets every other exception crash with its stack trace.
type InputError = QueCC.Model.UserInputException

let inputError fmt = Printf.kprintf (fun s -> raise (InputError s)) fmt

/// Parses one JSON text from a user file. JsonNode keeps duplicate keys and unpaired surrogate escapes until they
/// are read and then throws ArgumentException / InvalidOperationException, so the document is checked first (via
/// System.Text.Json's reader) and every problem becomes a one-line error naming `where`.
let parseJsonNode (where: string) (text: string) : Text.Json.Nodes.JsonNode =
    let firstLine (m: string) = m.Split([| '\r'; '\n' |]).[0]
    try
        use doc = Text.Json.JsonDocument.Parse text
        QueCC.Model.Runtime.JsonInput.CheckWellFormed(doc.RootElement, where)
        match Text.Json.Nodes.JsonNode.Parse text with
        | null -> inputError "%s: null; expected a JSON object" where
        | n -> n
    with :? Text.Json.JsonException as e -> inputError "%s: not valid JSON (%s)" where (firstLine e.Message)

/// One measured model: an LLM of `LlmParamsB` billion parameters given `VisualTokens` visual tokens.
type Observation =
    { Task: string
      LlmParamsB: float
      VisualTokens: float
      /// Average downstream score in [0, 1].
      Score: float
      /// Extra columns (compressor, seed, run id, …) carried through untouched.
      Extra: Map<string, string> }

    /// The law is fitted to the error, 1 − score.
    member o.Error = 1.0 - o.Score

let requiredColumns = [ "task"; "llm_params_b"; "visual_tokens"; "score" ]

/// The law has one exponent per axis, so each axis needs at least two distinct values to be identifiable.
let minDistinctPerAxis = 2

/// RFC 4180 records of `text`, each with the line number it starts on: fields separated by commas, records by LF or
/// CRLF (a lone CR too), a field in double quotes may hold commas, line breaks and "" for a quote. A leading UTF-8 BOM
/// is dropped. A quote inside an unquoted field, text after a closing quote or an unclosed quote is an error naming the line.
let parseCsvRecords (source: string) (text: string) : (int * string[]) list =
    let text = if text.StartsWith '\uFEFF' then text.Substring 1 else text
    let records = ResizeArray<int * string[]>()
    let fields = ResizeArray<string>()
    let field = Text.StringBuilder()
    let mutable line = 1
    let mutable recordLine = 1
    let mutable i = 0
    let mutable quoted = false       // inside a quoted field
    let mutable wasQuoted = false    // the current field was quoted (only a separator may follow the closing quote)
    let endField () =
        fields.Add(if wasQuoted then field.ToString() else field.ToString().Trim())
        field.Clear() |> ignore
        wasQuoted <- false
    let endRecord () =
        endField ()
        // A record of one empty unquoted field is a blank line.
        if not (fields.Count = 1 && fields[0] = "") then records.Add((recordLine, fields.ToArray()))
        fields.Clear()
    while i < text.Length do
        let c = text[i]
        if quoted then
            if c = '"' then
                if i + 1 < text.Length && text[i + 1] = '"' then
                    field.Append '"' |> ignore
                    i <- i + 1
                else quoted <- false
            else
                if c = '\n' then line <- line + 1
                field.Append c |> ignore
        else
            match c with
            | ',' -> endField ()
            | '\r' | '\n' ->
                if c = '\r' && i + 1 < text.Length && text[i + 1] = '\n' then i <- i + 1
                endRecord ()
                line <- line + 1
                recordLine <- line
            | '"' when not wasQuoted && field.ToString().Trim() = "" ->
                field.Clear() |> ignore
                quoted <- true
                wasQuoted <- true
            | '"' -> inputError "%s:%d: a quote inside an unquoted field; quote the whole field and write \"\" for a quote" source line
            | c when wasQuoted && not (Char.IsWhiteSpace c) ->
                inputError "%s:%d: '%c' after the closing quote of a field; expected ',' or the end of the line" source line c
            | c when wasQuoted -> ()
            | c -> field.Append c |> ignore
        i <- i + 1
    if quoted then inputError "%s:%d: a quoted field is never closed" source recordLine
    endRecord ()
    List.ofSeq records

/// Parses CSV text (header `task,llm_params_b,visual_tokens,score`, extra columns kept in `Extra`).
/// `source` names the file in error messages; line numbers count the header as line 1. Non-finite numbers
/// (NaN, Infinity, 1e999), a column named twice, an empty task and a row that repeats an earlier row exactly
/// (a copy-paste slip that would double its weight in the fit) are rejected by line.
let parseCsv (source: string) (text: string) : Observation list =
    let lines = parseCsvRecords source text
    if lines.IsEmpty then
        inputError "%s: empty file; expected a header '%s'" source (String.Join(",", requiredColumns))
    let headerLine, header = lines.Head
    for col in requiredColumns do
        if not (Array.contains col header) then
            inputError "%s:%d: missing column '%s'; expected a header with %s" source headerLine col (String.Join(",", requiredColumns))
    match header |> Array.countBy id |> Array.tryFind (fun (_, n) -> n > 1) with
    | Some (col, n) -> inputError "%s:%d: column '%s' appears %d times in the header; expected each column once" source headerLine col n
    | None -> ()
    let index col = Array.findIndex ((=) col) header
    let iTask, iN, iV, iS = index "task", index "llm_params_b", index "visual_tokens", index "score"
    let seen = Collections.Generic.Dictionary<string, int>()
    [ for lineNo, cells in lines.Tail do
        if cells.Length <> header.Length then
            inputError "%s:%d: %d cells but the header has %d columns" source lineNo cells.Length header.Length
        let number col i =
            match Double.TryParse(cells[i], NumberStyles.Float, CultureInfo.InvariantCulture) with
            | true, v when Double.IsFinite v -> v
            | _ -> inputError "%s:%d: column '%s' is '%s', expected a finite number" source lineNo col cells[i]
        if cells[iTask] = "" then inputError "%s:%d: column 'task' is empty; expected a task name" source lineNo
        let n = number "llm_params_b" iN
        let v = number "visual_tokens" iV
        let s = number "score" iS
        if n <= 0.0 then inputError "%s:%d: llm_params_b is %g, expected a positive number of billions of parameters" source lineNo n
        if v <= 0.0 then inputError "%s:%d: visual_tokens is %g, expected a positive token count" source lineNo v
        if s < 0.0 || s > 1.0 then inputError "%s:%d: score is %g, expected a value in [0, 1]" source lineNo s
        let key = String.Join("\u0000", cells)
        match seen.TryGetValue key with
        | true, first -> inputError "%s:%d: row repeats line %d exactly; expected each measurement once (add a column such as seed to tell repeats apart)" source lineNo first
        | _ -> seen[key] <- lineNo
        let extra =
            header
            |> Array.mapi (fun i h -> h, cells[i])
            |> Array.filter (fun (h, _) -> not (List.contains h requiredColumns))
            |> Map.ofArray
        yield { Task = cells[iTask]; LlmParamsB = n; VisualTokens = v; Score = s; Extra = extra } ]

/// Checks that the observations can identify the law: at least two distinct N and two distinct V.
let validateForLaw (source: string) (obs: Observation list) =
    let distinctN = obs |> List.map (fun o -> o.LlmParamsB) |> List.distinct |> List.length
    let distinctV = obs |> List.map (fun o -> o.VisualTokens) |> List.distinct |> List.length
    if distinctN < minDistinctPerAxis then
        inputError "%s: %d distinct llm_params_b value(s); the law needs at least %d to fit α" source distinctN minDistinctPerAxis
    if distinctV < minDistinctPerAxis then
        inputError "%s: %d distinct visual_tokens value(s); the law needs at least %d to fit β" source distinctV minDistinctPerAxis
    obs

/// Keeps one task's rows; with no task named, the file must hold a single task.
let selectTask (source: string) (task: string option) (obs: Observation list) =
    let tasks = obs |> List.map (fun o -> o.Task) |> List.distinct
    match task with
    | Some t ->
        match obs |> List.filter (fun o -> o.Task = t) with
        | [] -> inputError "%s: no rows with task '%s'; the file has %s" source t (String.Join(", ", tasks))
        | rows -> rows
    | None when tasks.Length > 1 ->
        inputError "%s: holds several tasks (%s); choose one with --task" source (String.Join(", ", tasks))
    | None -> obs

/// Reads, validates and (optionally) filters a CSV file of observations.
let load (path: string) (task: string option) : Observation list =
    if Directory.Exists path then inputError "%s: is a folder; expected a CSV file with header %s" path (String.Join(",", requiredColumns))
    if not (File.Exists path) then inputError "%s: file not found; expected a CSV with header %s" path (String.Join(",", requiredColumns))
    parseCsv path (File.ReadAllText path) |> selectTask path task |> validateForLaw path

/// The shipped data of the paper (data/paper/*.csv), found by walking up from a start folder.
let findRepoFile (relative: string) =
    let rec up (dir: DirectoryInfo) =
        if isNull dir then None
        else
            let candidate = Path.Combine(dir.FullName, relative)
            if File.Exists candidate || Directory.Exists candidate then Some candidate else up dir.Parent
    [ Environment.CurrentDirectory; AppContext.BaseDirectory ]
    |> List.tryPick (fun d -> up (DirectoryInfo d))
