/// Observations behind a scaling-law fit, and reading them from CSV.
module QueCC.Experiments.Data

open System
open System.Globalization
open System.IO

/// An error the user can cause (a bad file, flag or value). The CLI prints its message as one line.
type InputError(message: string) =
    inherit Exception(message)

let inputError fmt = Printf.kprintf (fun s -> raise (InputError s)) fmt

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

let private splitCsvLine (line: string) =
    // The data has no quoted fields; a quote means a format we do not read, so say so rather than misparse.
    if line.Contains '"' then None else Some(line.Split(',') |> Array.map (fun s -> s.Trim()))

/// Parses CSV text (header `task,llm_params_b,visual_tokens,score`, extra columns kept in `Extra`).
/// `source` names the file in error messages; line numbers count the header as line 1.
let parseCsv (source: string) (text: string) : Observation list =
    let lines =
        text.Replace("\r\n", "\n").Split('\n')
        |> Array.mapi (fun i l -> i + 1, l)
        |> Array.filter (fun (_, l) -> l.Trim() <> "")
    if lines.Length = 0 then
        inputError "%s: empty file; expected a header '%s'" source (String.Join(",", requiredColumns))
    let headerLine, headerText = lines[0]
    let header =
        match splitCsvLine headerText with
        | Some h -> h
        | None -> inputError "%s:%d: quoted fields are not supported" source headerLine
    for col in requiredColumns do
        if not (Array.contains col header) then
            inputError "%s:%d: missing column '%s'; expected a header with %s" source headerLine col (String.Join(",", requiredColumns))
    let index col = Array.findIndex ((=) col) header
    let iTask, iN, iV, iS = index "task", index "llm_params_b", index "visual_tokens", index "score"
    [ for lineNo, text in lines[1..] do
        let cells =
            match splitCsvLine text with
            | Some c -> c
            | None -> inputError "%s:%d: quoted fields are not supported" source lineNo
        if cells.Length <> header.Length then
            inputError "%s:%d: %d cells but the header has %d columns" source lineNo cells.Length header.Length
        let number col i =
            match Double.TryParse(cells[i], NumberStyles.Float, CultureInfo.InvariantCulture) with
            | true, v when Double.IsFinite v -> v
            | _ -> inputError "%s:%d: column '%s' is '%s', expected a number" source lineNo col cells[i]
        let n = number "llm_params_b" iN
        let v = number "visual_tokens" iV
        let s = number "score" iS
        if n <= 0.0 then inputError "%s:%d: llm_params_b is %g, expected a positive number of billions of parameters" source lineNo n
        if v <= 0.0 then inputError "%s:%d: visual_tokens is %g, expected a positive token count" source lineNo v
        if s < 0.0 || s > 1.0 then inputError "%s:%d: score is %g, expected a value in [0, 1]" source lineNo s
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
