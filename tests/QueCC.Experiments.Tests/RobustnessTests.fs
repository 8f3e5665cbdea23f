/// Malformed CSV / JSONL / sweep specs in-process, property tests of the readers, and malformed files through
/// the built `quecc` executable: every case is accepted (where it may be valid, and then read correctly) or
/// rejected with the one user-error type and a one-line message; no other exception, no hang, no file left behind.
module QueCC.Experiments.Tests.RobustnessTests

open System
open System.Diagnostics
open System.IO
open System.Text
open System.Text.Json
open System.Threading
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open QueCC.Experiments
open QueCC.Experiments.Data
open QueCC.Experiments.Tests.Helpers

type Outcome =
    | Accepted
    | Rejected
    | Crash of string
    | Hang
    | AcceptedMalformed
    | Mishandled of string

/// One malformed input: whether it is invalid by construction (must be rejected) or valid by construction (must be read
/// exactly as the unmutated text), and the reader to run (it returns a canonical rendering of what it read).
type Case = { Label: string; MustReject: bool; Expected: string option; Run: unit -> string }

let private caseTimeout = TimeSpan.FromSeconds 10.0

let private oneLine (m: string) = m <> "" && not (m.Contains '\n') && not (m.Contains '\r')

let classify (c: Case) : Outcome =
    let mutable result = Unchecked.defaultof<Choice<string, exn>>
    let t = Thread(ThreadStart(fun () -> result <- (try Choice1Of2(c.Run()) with e -> Choice2Of2 e)), 64 <<< 20)
    t.IsBackground <- true
    t.Start()
    if not (t.Join caseTimeout) then Hang
    else
        match result with
        | Choice1Of2 got ->
            match c.Expected with
            | Some want when want <> got -> Mishandled "read differently from the unmutated input"
            | _ -> if c.MustReject then AcceptedMalformed else Accepted
        | Choice2Of2(:? InputError as e) when not (oneLine e.Message) -> Crash $"multi-line user error: {e.Message}"
        | Choice2Of2(:? InputError as e) -> if c.Expected.IsSome then Mishandled e.Message else Rejected
        | Choice2Of2 e -> Crash(e.GetType().Name + ": " + e.Message.Split('\n').[0])

let private scale =
    match Double.TryParse(Environment.GetEnvironmentVariable "QUECC_MUTATION_SCALE", Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
    | true, s when s > 0.0 -> s
    | _ -> 1.0

let private count (n: int) = max 1 (int (Math.Round(float n * scale)))

/// Runs the cases, writes the issue's table row (and to QUECC_MUTATION_TABLE when set), fails on any bad outcome.
let runAndAssert (target: string) (cases: Case seq) =
    let outcomes = cases |> Seq.map (fun c -> c, classify c) |> List.ofSeq
    let n f = outcomes |> List.filter (snd >> f) |> List.length
    let crash = n (function Crash _ -> true | _ -> false)
    let hang = n ((=) Hang)
    let malformed = n ((=) AcceptedMalformed)
    let mishandled = n (function Mishandled _ -> true | _ -> false)
    let row = $"| {target} | {outcomes.Length} | {n ((=) Rejected)} | {crash} | {hang} | {malformed} | {mishandled} | {n ((=) Accepted)} |"
    match Environment.GetEnvironmentVariable "QUECC_MUTATION_TABLE" with
    | null | "" -> ()
    | path -> File.AppendAllText(path, row + "\n")
    let failures =
        outcomes
        |> List.filter (fun (_, o) -> match o with Accepted | Rejected -> false | _ -> true)
        |> List.truncate 12
        |> List.map (fun (c, o) -> $"{o}: {c.Label}")
    Assert.True(failures.IsEmpty, row + "\n" + String.Join("\n", failures))
    Assert.True(n ((=) Rejected) > 0, $"{target}: nothing was rejected; the mutations miss the validation")

let private pick (r: Random) (xs: 'a[]) = xs[r.Next xs.Length]

let private damage (r: Random) (s: string) =
    let b = Encoding.UTF8.GetBytes s |> ResizeArray
    match r.Next 4 with
    | 0 -> b.RemoveRange(r.Next b.Count, 1)
    | 1 -> b.Insert(r.Next b.Count, pick r [| byte '"'; byte ','; byte '\n'; byte '{'; byte ']'; 0xFFuy; byte '\\' |])
    | 2 -> b[r.Next b.Count] <- byte (r.Next 256)
    | _ -> let at = r.Next b.Count in b.RemoveRange(at, b.Count - at)
    Encoding.UTF8.GetString(b.ToArray())

// ------------------------------------------------------------------------------------------------- CSV

let private renderObs (obs: Observation list) =
    obs |> List.map (fun o -> $"{o.Task}|{o.LlmParamsB:R}|{o.VisualTokens:R}|{o.Score:R}|%A{o.Extra}") |> String.concat "\n"

let private quoteAll (csv: string) =
    csv.Replace("\r\n", "\n").Split('\n')
    |> Array.map (fun l -> if l = "" then l else l.Split(',') |> Array.map (fun c -> "\"" + c.Replace("\"", "\"\"") + "\"") |> String.concat ",")
    |> String.concat "\n"

let csvCases (n: int) =
    let text = File.ReadAllText(repoFile (Path.Combine("data", "paper", "visual_reasoning.csv")))
    let expected = renderObs (parseCsv "vr.csv" text)
    let lines = text.Replace("\r\n", "\n").TrimEnd('\n').Split('\n')
    let r = Random 14
    [ for i in 1..n ->
        let row = 1 + r.Next(lines.Length - 1)
        let withLine (l: string) = lines |> Array.mapi (fun k x -> if k = row then l else x) |> String.concat "\n"
        let cells = lines[row].Split(',')
        let col = 1 + r.Next 3
        let setCell v = withLine (String.Join(",", cells |> Array.mapi (fun k c -> if k = col then v else c)))
        let label, body, must, exp =
            match r.Next 10 with
            | 0 | 1 ->
                let v = pick r [| "NaN"; "Infinity"; "-Infinity"; "∞"; "1e999"; ""; "abc"; "0x10"; "nan"; "1e-400x" |]
                $"line {row + 1} column {col} = '{v}'", setCell v, true, None
            | 2 -> $"line {row + 1} repeated", (String.concat "\n" lines + "\n" + lines[row]), true, None
            | 3 -> "BOM", "\uFEFF" + text, false, Some expected
            | 4 -> "CRLF", text.Replace("\n", "\r\n"), false, Some expected
            | 5 -> "every field quoted", quoteAll text, false, Some expected
            | 6 ->
                let v = pick r [| "\"0.5"; "0\"5"; "\"0.5\"x"; "\"0.5" + "\n" |]
                $"line {row + 1} broken quote {v}", setCell v, true, None
            | 7 -> $"line {row + 1} missing a cell", withLine (String.Join(",", cells[.. cells.Length - 2])), true, None
            | 8 -> "header names score twice", (lines |> Array.mapi (fun k l -> if k = 0 then l + ",score" else l + ",0.1") |> String.concat "\n"), true, None
            | _ -> "damaged", damage r text, false, None
        { Label = label; MustReject = must; Expected = exp; Run = fun () -> renderObs (parseCsv "vr.csv" body) } ]

[<Fact>]
let ``malformed CSV is rejected by line and valid variants read the same`` () =
    runAndAssert "CSV observations (parse)" (csvCases (count 1000))

// ------------------------------------------------------------------------------------------------- JSONL answers

let private answersText =
    [ for i in 1..5 -> $"{{\"question_id\": {i}, \"prompt\": \"q{i}\", \"text\": \"answer {i}\", \"model_id\": \"m\"}}" ] |> String.concat "\n"

let private renderAnswers (m: Map<string, string>) = m |> Map.toList |> List.map (fun (k, v) -> k + "=" + v) |> String.concat "\n"

let answerCases (n: int) =
    let expected = renderAnswers (ScoringIO.parseAnswers "a.jsonl" answersText)
    let lines = answersText.Split('\n')
    let r = Random 141
    [ for _ in 1..n ->
        let k = r.Next lines.Length
        let withLine (l: string) = lines |> Array.mapi (fun j x -> if j = k then l else x) |> String.concat "\n"
        let label, body, must, exp =
            match r.Next 9 with
            | 0 ->
                let v = pick r [| "5"; "null"; "[]"; "{}"; "true"; "\"\\ud800\"" |]
                $"line {k + 1} text = {v}", withLine (lines[k].Replace($"\"answer {k + 1}\"", v)), true, None
            | 1 ->
                let v = pick r [| "[1]"; "{}"; "null"; "true"; "1.5e999" |]
                $"line {k + 1} question_id = {v}", withLine (lines[k].Replace($"\"question_id\": {k + 1}", $"\"question_id\": {v}")), v <> "1.5e999", None
            | 2 -> $"line {k + 1} repeats an id", withLine (lines[k].Replace($"\"question_id\": {k + 1}", $"\"question_id\": {(k + 1) % 5 + 1}")), true, None
            | 3 -> $"line {k + 1} has text twice", withLine (lines[k].Replace("\"model_id\"", "\"text\": \"other\", \"model_id\"")), true, None
            | 4 -> "BOM", "\uFEFF" + answersText, false, Some expected
            | 5 -> "CRLF", answersText.Replace("\n", "\r\n") + "\r\n", false, Some expected
            | 6 -> $"line {k + 1} cut", withLine (lines[k].Substring(0, r.Next(lines[k].Length - 1))), true, None
            | 7 -> $"line {k + 1} NaN", withLine (lines[k].Replace("\"model_id\": \"m\"", "\"score\": NaN")), true, None
            | _ -> "damaged", damage r answersText, false, None
        { Label = label; MustReject = must; Expected = exp; Run = fun () -> renderAnswers (ScoringIO.parseAnswers "a.jsonl" body) } ]

[<Fact>]
let ``malformed answer JSONL is rejected by line and valid variants read the same`` () =
    runAndAssert "answers JSONL (parse)" (answerCases (count 600))

// ------------------------------------------------------------------------------------------------- sweep spec

let sweepCases (n: int) =
    let text = Sweep.toJson Sweep.smoke
    let expected = sprintf "%A" (Sweep.parseSpec "s.json" text)
    let r = Random 142
    let set (json: string) (path: string list) (raw: string) =
        let root = Nodes.JsonNode.Parse(json).AsObject()
        let parent = match path with [ _ ] -> root | p :: _ -> root[p].AsObject() | [] -> root
        let key = List.last path
        parent.Remove key |> ignore
        parent[key] <- Nodes.JsonNode.Parse "0"
        root.ToJsonString().Replace($"\"{key}\":0", $"\"{key}\":{raw}")
    let arrays = [| "llms"; "compressors"; "visual_tokens"; "tasks"; "seeds" |]
    let training = [| "train_samples"; "eval_samples"; "pretrain_steps"; "finetune_steps"; "batch_size"; "max_new_tokens" |]
    [ for _ in 1..n ->
        let label, body, must, exp =
            match r.Next 7 with
            | 0 ->
                let k = pick r arrays
                let v = pick r [| "5"; "\"x\""; "{}"; "[null]"; "[[1]]"; "[true]"; "[\"\\ud800\"]"; "[]" |]
                $"{k} = {v}", set text [ k ] v, true, None
            | 1 ->
                let k = pick r training
                let v = pick r [| "\"8\""; "1.5"; "null"; "0"; "-3"; "2147483648"; "1e12"; "[]"; "100000000" |]
                $"training.{k} = {v}", set text [ "training"; k ] v, true, None
            | 2 ->
                let k = pick r [| "pretrain_lr"; "finetune_lr" |]
                let v = pick r [| "\"1e-3\""; "0"; "-1"; "1e999"; "null"; "{}" |]
                $"training.{k} = {v}", set text [ "training"; k ] v, true, None
            | 3 -> "seeds repeat", set text [ "seeds" ] "[0, 0]", true, None
            | 4 -> "a key twice", text.Replace("\"name\"", "\"tasks\": [\"ocr\"], \"name\""), true, None
            | 5 -> "root not an object", pick r [| "[]"; "5"; "null"; "\"x\""; "" |], true, None
            | _ -> "damaged", damage r text, false, None
        { Label = label; MustReject = must; Expected = exp; Run = fun () -> sprintf "%A" (Sweep.parseSpec "s.json" body) } ]

[<Fact>]
let ``malformed sweep specs are rejected with one line`` () =
    runAndAssert "sweep spec JSON (parse)" (sweepCases (count 300))

// ------------------------------------------------------------------------------------------------- properties

/// Task names with commas, quotes and line breaks; no lone surrogates (a CSV file is text).
let private taskName =
    Gen.elements [ 'a'; 'b'; ','; '"'; '\n'; '\r'; ' '; 'é'; '中'; 'x'; '\t' ]
    |> Gen.arrayOfLength 6
    |> Gen.map String
    |> Gen.filter (fun s -> s.Trim() <> "")

let private observation =
    gen {
        let! task = taskName
        let! n = Gen.choose (1, 100000) |> Gen.map (fun k -> float k / 1000.0)
        let! v = Gen.choose (1, 576) |> Gen.map float
        let! s = Gen.choose (0, 1000000) |> Gen.map (fun k -> float k / 1e6)
        return { Task = task; LlmParamsB = n; VisualTokens = v; Score = s; Extra = Map.empty }
    }

let private csvQuote (s: string) = "\"" + s.Replace("\"", "\"\"") + "\""

type Readers =
    static member Observations() =
        observation |> Gen.listOf |> Gen.map (List.distinctBy (fun o -> o.Task, o.LlmParamsB, o.VisualTokens, o.Score)) |> Arb.fromGen

[<Property(MaxTest = 300, Replay = "(1517,291)", Arbitrary = [| typeof<Readers> |])>]
let ``CSV written with RFC 4180 quoting reads back exactly`` (obs: Observation list) (crlf: bool) =
    let nl = if crlf then "\r\n" else "\n"
    let text =
        "task,llm_params_b,visual_tokens,score" + nl
        + (obs |> List.map (fun o -> String.Join(",", csvQuote o.Task, o.LlmParamsB.ToString "R", o.VisualTokens.ToString "R", o.Score.ToString "R") + nl) |> String.concat "")
    parseCsv "p.csv" text = obs

let private onlyUserErrors (f: unit -> 'a) =
    try f () |> ignore; true
    with
    | :? InputError as e -> oneLine e.Message
    | _ -> false

[<Property(MaxTest = 500, Replay = "(1518,293)")>]
let ``any text given as CSV is read or rejected with one line`` (text: string) =
    onlyUserErrors (fun () -> parseCsv "p.csv" (if isNull text then "" else text))

[<Property(MaxTest = 500, Replay = "(1519,295)")>]
let ``any text given as answer JSONL is read or rejected with one line`` (text: string) =
    onlyUserErrors (fun () -> ScoringIO.parseAnswers "a.jsonl" (if isNull text then "" else text))

[<Property(MaxTest = 300, Replay = "(1520,297)")>]
let ``answers serialised as JSONL read back exactly`` (answers: Map<int, NonNull<string>>) =
    // A string with an unpaired surrogate cannot be valid UTF-8 text; such answers are outside this property.
    let valid (s: string) = not (Seq.exists Char.IsSurrogate s)
    let answers = answers |> Map.filter (fun _ v -> valid v.Get)
    let text =
        answers
        |> Map.toList
        |> List.map (fun (id, v) -> JsonSerializer.Serialize(dict [ "question_id", box id; "text", box v.Get ]))
        |> String.concat "\n"
    answers.IsEmpty
    || ScoringIO.parseAnswers "a.jsonl" text = (answers |> Map.toList |> List.map (fun (k, v) -> string k, v.Get) |> Map.ofList)

[<Property(MaxTest = 300, Replay = "(1521,299)")>]
let ``any bytes as a safetensors header are read or rejected with one line`` (header: byte[]) (declared: uint16) =
    let header = if isNull header then [||] else header
    let path = Path.Combine(Path.GetTempPath(), $"quecc-prop-{Guid.NewGuid():N}.safetensors")
    let len = if declared % 4us = 0us then uint64 header.Length else uint64 declared
    File.WriteAllBytes(path, Array.append (BitConverter.GetBytes len) header)
    try
        try
            use f = QueCC.Model.Checkpoints.Safetensors.Open path
            for k in f.Tensors.Keys do (f.Read k).Dispose()
            true
        with
        | :? QueCC.Model.UserInputException as e -> oneLine e.Message
        | _ -> false
    finally File.Delete path

/// Config objects built from the projector's keys with arbitrary JSON values of every kind.
let private jsonValue =
    Gen.oneof
        [ Gen.choose (-3, 40) |> Gen.map string
          Gen.elements [ "null"; "true"; "\"quecc\""; "\"mlp2x_gelu\""; "\"linear\""; "\"avgpool\""; "1.5"; "2147483647"; "[]"; "{}"; "\"\\ud800\""; "16"; "4"; "64" ] ]

let private projectorKeys =
    [| "mm_projector_type"; "mm_hidden_size"; "hidden_size"; "mm_vision_token_compression_type"; "mm_vision_output_token_count"
       "mm_vision_output_text_embedding_size"; "mm_vision_token_compression_kernel_size"; "mm_vision_token_compression_stride"
       "mm_vision_multi_level_size"; "mm_vision_token_compression_num_heads" |]

type Configs =
    static member Text() =
        gen {
            let! present = Gen.subListOf projectorKeys
            let! values = Gen.listOfLength present.Length jsonValue
            return "{" + String.Join(",", List.map2 (fun k v -> $"\"{k}\": {v}") (List.ofSeq present) values) + "}"
        }
        |> Arb.fromGen

[<Property(MaxTest = 500, Replay = "(1522,301)", Arbitrary = [| typeof<Configs> |])>]
let ``any projector config is built or rejected with one line`` (json: string) =
    try
        let cfg = QueCC.Model.Compression.ProjectorConfig.Parse(json, "p.json")
        use _ = new QueCC.Model.Compression.MultimodalProjector(cfg)
        true
    with
    | :? QueCC.Model.UserInputException as e -> oneLine e.Message
    | _ -> false

// ------------------------------------------------------------------------------------------------- through the CLI

/// The built apphost beside the tests (no `dotnet run`: it would rebuild and cost seconds a call).
let private queccExe = Path.Combine(AppContext.BaseDirectory, "quecc")

let private runCli (dir: string) (args: string list) =
    let psi = ProcessStartInfo(queccExe, args, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir)
    // The same stated memory cap as the in-process suite, so an absurd config is refused rather than swapped.
    psi.Environment["QUECC_MAX_MODEL_BYTES"] <- string (2L <<< 30)
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit 60_000) then
        p.Kill true
        None
    else Some(p.ExitCode, out.Result, err.Result)

/// `ModelKey`: run against a copy of the tiny model folder with this config key set to this raw JSON value.
type CliCase = { CliLabel: string; MustFail: bool; Files: (string * byte[]) list; Args: string list; Out: string option; ModelKey: (string * string) option }

let private files (dir: string) = Directory.GetFiles(dir, "*", SearchOption.AllDirectories) |> Set.ofArray

let private cliOutcome (root: string) (c: CliCase) =
    let dir = Path.Combine(root, Guid.NewGuid().ToString "N")
    Directory.CreateDirectory dir |> ignore
    for name, bytes in c.Files do File.WriteAllBytes(Path.Combine(dir, name), bytes)
    let before = files dir
    match runCli dir c.Args with
    | None -> Hang
    | Some(code, _, err) ->
        let lines = err.Trim().Split('\n') |> Array.filter (fun l -> l.Trim() <> "")
        let left = Set.difference (files dir) before
        if not left.IsEmpty && code <> 0 then Crash("left behind " + String.Join(", ", left))
        elif code = 0 then (if c.MustFail then AcceptedMalformed else Accepted)
        elif code = 1 && lines.Length = 1 && lines[0].StartsWith "quecc: " then Rejected
        else Crash(sprintf "exit %d: %s" code (err.Trim().Split('\n').[0]))

let private ok (o: Outcome) = match o with Accepted | Rejected -> true | _ -> false

[<Fact>]
let ``malformed files through the quecc executable give one line, exit 1 and no output`` () =
    let root = Path.Combine(Path.GetTempPath(), $"quecc-cli-mut-{Guid.NewGuid():N}")
    Directory.CreateDirectory root |> ignore
    try
        let r = Random 143
        // Inputs: a tiny projector (config + weights + features) and a tiny LLaVA folder, written in-process.
        let projectorJson = """{"mm_projector_type": "mlp2x_gelu", "mm_hidden_size": 8, "hidden_size": 16, "mm_vision_token_compression_type": "avgpool", "mm_vision_output_token_count": 16, "mm_vision_token_compression_kernel_size": 2}"""
        let weights, features =
            let cfg = QueCC.Model.Compression.ProjectorConfig.Parse(projectorJson, "p.json")
            use proj = new QueCC.Model.Compression.MultimodalProjector(cfg)
            let w = Path.Combine(root, "w.safetensors")
            QueCC.Model.Checkpoints.Safetensors.Write(w, proj.state_dict() |> Seq.map (fun kv -> Collections.Generic.KeyValuePair("model.mm_projector." + kv.Key, kv.Value)))
            let f = Path.Combine(root, "f.safetensors")
            QueCC.Model.Checkpoints.Safetensors.Write(f, [ Collections.Generic.KeyValuePair("image_features", TorchSharp.torch.randn(2L, 16L, 8L)) ])
            File.ReadAllBytes w, File.ReadAllBytes f
        let model = Path.Combine(root, "model")
        QueCC.Model.Commands.LlavaEntryPoints.InitModel("tiny", "quecc", 4, model) |> ignore
        let png = Path.Combine(root, "i.png")
        QueCC.Model.Clip.RgbImage.Filled(20, 12, 200uy, 10uy, 10uy).SavePng png
        let pngBytes = File.ReadAllBytes png
        let csv = File.ReadAllBytes(repoFile (Path.Combine("data", "paper", "visual_reasoning.csv")))
        let utf8 (s: string) = Encoding.UTF8.GetBytes s
        let setKey (json: string) (key: string) (raw: string) =
            let o = Nodes.JsonNode.Parse(json).AsObject()
            o.Remove key |> ignore
            "{" + $"\"{key}\": {raw}, " + o.ToJsonString().Substring 1
        let cut (b: byte[]) = b[.. r.Next(b.Length - 13)]
        let flipHeader (b: byte[]) =
            let c = Array.copy b
            let n = int (BitConverter.ToUInt64(c, 0))
            c[8 + r.Next n] <- pick r [| byte '"'; byte '}'; 0xFFuy; byte '['; byte '-' |]
            c
        let cases =
            [ for v in [ "null"; "\"8\""; "2147483647"; "0"; "1.5"; "[]" ] ->
                  { CliLabel = $"describe: mm_hidden_size = {v}"; MustFail = true; Files = [ "c.json", utf8 (setKey projectorJson "mm_hidden_size" v) ]
                    Args = [ "describe"; "--config"; "c.json" ]; Out = None; ModelKey = None }
              yield { CliLabel = "describe: mm_projector_type = null"; MustFail = true; Files = [ "c.json", utf8 (setKey projectorJson "mm_projector_type" "null") ]
                      Args = [ "describe"; "--config"; "c.json" ]; Out = None; ModelKey = None }
              for i in 1..6 ->
                  let bytes = if i % 2 = 0 then cut features else flipHeader features
                  { CliLabel = $"compress: damaged features #{i}"; MustFail = (i % 2 = 0)
                    Files = [ "c.json", utf8 projectorJson; "w.safetensors", weights; "f.safetensors", bytes ]
                    Args = [ "compress"; "--projector"; "w.safetensors"; "--config"; "c.json"; "--features"; "f.safetensors"; "--out"; "o.safetensors" ]; Out = Some "o.safetensors"; ModelKey = None }
              for i in 1..4 ->
                  { CliLabel = $"compress: damaged weights #{i}"; MustFail = (i % 2 = 0)
                    Files = [ "c.json", utf8 projectorJson; "w.safetensors", (if i % 2 = 0 then cut weights else flipHeader weights); "f.safetensors", features ]
                    Args = [ "compress"; "--projector"; "w.safetensors"; "--config"; "c.json"; "--features"; "f.safetensors"; "--out"; "o.safetensors" ]; Out = Some "o.safetensors"; ModelKey = None }
              yield { CliLabel = "compress: hidden_size 2147483647"; MustFail = true
                      Files = [ "c.json", utf8 (setKey projectorJson "hidden_size" "2147483647"); "w.safetensors", weights; "f.safetensors", features ]
                      Args = [ "compress"; "--projector"; "w.safetensors"; "--config"; "c.json"; "--features"; "f.safetensors"; "--out"; "o.safetensors" ]; Out = Some "o.safetensors"; ModelKey = None }
              for i, v in List.indexed [ "NaN"; "Infinity"; "\"0.5"; "" ] ->
                  let text = Encoding.UTF8.GetString(csv).Replace("visual_reasoning,0.5,1,0.3855", $"visual_reasoning,0.5,1,{v}")
                  { CliLabel = $"fit: score {v}"; MustFail = true; Files = [ "d.csv", utf8 text ]; Args = [ "fit"; "--data"; "d.csv" ]; Out = None; ModelKey = None }
              yield { CliLabel = "fit: BOM + CRLF"; MustFail = false; Files = [ "d.csv", Array.append [| 0xEFuy; 0xBBuy; 0xBFuy |] (utf8 (Encoding.UTF8.GetString(csv).Replace("\n", "\r\n"))) ]
                      Args = [ "fit"; "--data"; "d.csv" ]; Out = None; ModelKey = None }
              for i in 1..4 ->
                  let bytes =
                      match i with
                      | 1 -> pngBytes[.. pngBytes.Length / 2]
                      | 2 ->
                          // A 20000 × 20000 IHDR with a valid CRC: refused from the header, before decoding.
                          let b = Array.copy pngBytes
                          let be (v: uint32) = [| byte (v >>> 24); byte (v >>> 16); byte (v >>> 8); byte v |]
                          Array.blit (be 20000u) 0 b 16 4
                          Array.blit (be 20000u) 0 b 20 4
                          let table = Array.init 256 (fun n -> let mutable c = uint32 n in (for _ in 1..8 do c <- if c &&& 1u <> 0u then 0xEDB88320u ^^^ (c >>> 1) else c >>> 1); c)
                          let crc = b[12..28] |> Array.fold (fun c x -> table[int ((c ^^^ uint32 x) &&& 0xFFu)] ^^^ (c >>> 8)) 0xFFFFFFFFu
                          Array.blit (be (crc ^^^ 0xFFFFFFFFu)) 0 b 29 4
                          b
                      | 3 -> utf8 "II*\000junk"
                      | _ -> [||]
                  { CliLabel = $"generate: bad image #{i}"; MustFail = true; Files = [ "x.png", bytes ]
                    Args = [ "generate"; "--model"; model; "--image"; "x.png"; "--prompt"; "What?"; "--max-new-tokens"; "1" ]; Out = None; ModelKey = None }
              for key, v in [ "vocab_size", "null"; "vocab_size", "2000000000"; "num_hidden_layers", "2147483647"; "intermediate_size", "\"128\""
                              "hidden_size", "2147483647"; "mm_projector_type", "null"; "num_attention_heads", "0"; "rope_theta", "-1" ] ->
                  { CliLabel = $"generate: config {key} = {v}"; MustFail = true; Files = [ "i.png", pngBytes ]
                    Args = [ "generate"; "--model"; "m"; "--image"; "i.png"; "--prompt"; "What?"; "--max-new-tokens"; "1" ]
                    Out = None; ModelKey = Some(key, v) } ]
        let outcomes =
            cases
            |> List.map (fun c ->
                match c.ModelKey with
                | Some(key, v) ->
                    // A copy of the tiny model folder with one config key changed.
                    let dir = Path.Combine(root, Guid.NewGuid().ToString "N")
                    let m = Path.Combine(dir, "m")
                    Directory.CreateDirectory(Path.Combine(m, "vision_tower")) |> ignore
                    for f in Directory.GetFiles(model, "*", SearchOption.AllDirectories) do
                        File.Copy(f, Path.Combine(m, Path.GetRelativePath(model, f)))
                    File.WriteAllText(Path.Combine(m, "config.json"), setKey (File.ReadAllText(Path.Combine(model, "config.json"))) key v)
                    File.WriteAllBytes(Path.Combine(dir, "i.png"), pngBytes)
                    let before = files dir
                    let o =
                        match runCli dir c.Args with
                        | None -> Hang
                        | Some(1, _, err) when err.Trim().Split('\n').Length = 1 && err.StartsWith "quecc: " ->
                            if (Set.difference (files dir) before).IsEmpty then Rejected else Crash "left a file behind"
                        | Some(0, _, _) -> AcceptedMalformed
                        | Some(code, _, err) -> Crash(sprintf "exit %d: %s" code (err.Trim().Split('\n').[0]))
                    c, o
                | _ -> c, cliOutcome root c)
        let n f = outcomes |> List.filter (snd >> f) |> List.length
        let row =
            $"| CLI: describe, compress, fit, generate | {outcomes.Length} | {n ((=) Rejected)} | {n (function Crash _ -> true | _ -> false)} | {n ((=) Hang)} | {n ((=) AcceptedMalformed)} | 0 | {n ((=) Accepted)} |"
        match Environment.GetEnvironmentVariable "QUECC_MUTATION_TABLE" with
        | null | "" -> ()
        | path -> File.AppendAllText(path, row + "\n")
        let bad = outcomes |> List.filter (fun (_, o) -> not (ok o)) |> List.map (fun (c, o) -> $"{o}: {c.CliLabel}")
        Assert.True(bad.IsEmpty, row + "\n" + String.Join("\n", bad))
    finally
        Directory.Delete(root, true)
