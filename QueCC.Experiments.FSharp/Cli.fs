/// The `quecc` command line: parse with Argu, dispatch to a verb of Commands, and show every user error as one line
/// (with the nearest command or flag for a misspelled word).
module QueCC.Experiments.Cli

open System
open Argu
open QueCC.Experiments.CliArgs
open QueCC.Experiments.Commands

/// Messages of the C# library's user errors can span lines (lists of keys); the CLI prints one line.
let private oneLine (s: string) = s.Replace("\r", "").Replace("\n", "; ")

/// Restricted Damerau–Levenshtein distance (adjacent swaps count 1), for "did you mean".
let editDistance (a: string) (b: string) =
    let d = Array2D.zeroCreate (a.Length + 1) (b.Length + 1)
    for i in 0 .. a.Length do d[i, 0] <- i
    for j in 0 .. b.Length do d[0, j] <- j
    for i in 1 .. a.Length do
        for j in 1 .. b.Length do
            let cost = if a[i - 1] = b[j - 1] then 0 else 1
            d[i, j] <- min (min (d[i - 1, j] + 1) (d[i, j - 1] + 1)) (d[i - 1, j - 1] + cost)
            if i > 1 && j > 1 && a[i - 1] = b[j - 2] && a[i - 2] = b[j - 1] then d[i, j] <- min d[i, j] (d[i - 2, j - 2] + 1)
    d[a.Length, b.Length]

/// Argu's error (a message line, then the whole usage) as one line: the message, the nearest command or flag
/// when the word is unknown, and where the usage is. Commands and flags are read from Argu's own usage text.
let usageErrorLine (argv: string[]) (message: string) =
    let lines = message.Replace("\r", "").Split('\n')
    let usageText = String.Join("\n", lines |> Array.skip 1)
    let first = lines[0].Replace("ERROR: ", "").TrimEnd('.')
    let usage = lines |> Array.tryFind (fun l -> l.StartsWith "USAGE: ")
    let program =
        match usage with
        | Some u ->
            let m = Text.RegularExpressions.Regex.Match(u, @"^USAGE: (.+?)(?= \[| --|$)")
            if m.Success then m.Groups[1].Value.Trim() else "quecc"
        | None ->
            // Argu gives no usage line for a missing flag: name the command from the arguments.
            "quecc" :: (argv |> Array.truncate 2 |> Array.takeWhile (fun w -> Text.RegularExpressions.Regex.IsMatch(w, "^[a-z][a-z-]*$")) |> List.ofArray) |> String.concat " "
    let unknown = Text.RegularExpressions.Regex.Match(first, "^unrecognized argument: '(.+)'$")
    let suggestion =
        if not unknown.Success then ""
        else
            let word = unknown.Groups[1].Value
            let candidates =
                if word.StartsWith "-" then
                    Text.RegularExpressions.Regex.Matches(usageText, @"(?<![\w-])--?[A-Za-z0-9][A-Za-z0-9-]*") |> Seq.map (fun m -> m.Value) |> Seq.filter (fun f -> f <> "--help") |> Seq.distinct |> List.ofSeq
                else
                    lines |> Array.choose (fun l -> let m = Text.RegularExpressions.Regex.Match(l, @"^    ([a-z][a-z0-9-]*) <options>") in if m.Success then Some m.Groups[1].Value else None) |> List.ofArray
            let scored = candidates |> List.map (fun c -> c, editDistance word c) |> List.sortBy snd
            match scored with
            | (best, d) :: _ when d <= max 2 (word.Length / 3) -> sprintf "; did you mean '%s'?" best
            | _ when not (word.StartsWith "-") && not candidates.IsEmpty -> sprintf "; expected one of %s" (String.Join(", ", candidates))
            | _ -> ""
    sprintf "%s: %s%s (%s --help for usage)" program first suggestion program

let run (argv: string[]) =
    let parser = ArgumentParser.Create<QueccArgs>(programName = "quecc")
    try
        let results = parser.ParseCommandLine(argv, raiseOnUsage = true)
        match results.GetSubCommand() with
        | Fit a -> runFit a
        | Frontier a -> runFrontier a
        | Reproduce a -> runReproduce a
        | Compress a -> runCompress a
        | Describe a -> runDescribe a
        | Init_Model a -> runInitModel a
        | Generate a -> runGenerate a
        | Make_Data a -> runMakeData a
        | Train a -> runTrain a
        | Sweep a -> runSweep a
        | Plot_Metrics a -> runPlotMetrics a
        | Eval a -> runEval a
        | Score a -> runScore a
        | Tokenize a -> runTokenize a
        | Pretrain_Vision a -> runPretrainVision a
        | Bench b ->
            match b.GetSubCommand() with
            | BenchArgs.Fit a -> runBenchFit a
            | BenchArgs.Compress a -> runBenchCompress a
            | BenchArgs.Latency a -> runBenchLatency a
            | BenchArgs.Eval a -> runBenchEval a
            | BenchArgs.Prefill a -> runBenchPrefill a
            | BenchArgs.Train a -> runBenchTrain a
    with
    | :? ArguParseException as e ->
        let isHelp = e.ErrorCode = ErrorCode.HelpText
        if isHelp then stdout.WriteLine e.Message else stderr.WriteLine(usageErrorLine argv e.Message)
        if isHelp then 0 else 2
    // The one user-error type (raised by the C# library and by this project alike). Anything else is a bug and
    // must crash with its stack trace rather than be shown as if the user had erred.
    | :? QueCC.Model.UserInputException as e ->
        eprintfn "quecc: %s" (oneLine e.Message)
        1
