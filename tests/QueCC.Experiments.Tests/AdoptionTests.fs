/// Progress display, one-line messages, figure export, sweep job options: what a new user meets first.
module QueCC.Experiments.Tests.AdoptionTests

open System
open System.Diagnostics
open System.IO
open Xunit
open QueCC.Experiments
open QueCC.Experiments.Tests.Helpers
open QueCC.Experiments.Tests.CliTests

let private tp step total sps =
    QueCC.Model.Training.TrainProgress(step, total, 0.0, 1.0, 1e-3, 0.5, sps, TimeSpan.Zero, 0)

[<Fact>]
let ``the first report fixes the rate's origin; later rates count only the work after it`` () =
    let r = Progress.RateEstimate()
    // 100 items done at 0.001 s (the clock started late): no rate yet, not 100 / 0.001.
    Assert.True((r.Observe(0.001, 100, 1000)).IsNone)
    match r.Observe(2.001, 300, 1000) with
    | Some(rate, eta) ->
        assertClose 1e-9 100.0 rate                     // (300 − 100) / (2.001 − 0.001), by hand
        assertClose 1e-6 7.0 eta.TotalSeconds           // 700 left at 100/s
    | None -> failwith "no rate after two reports"

[<Fact>]
let ``a 0-column terminal, no terminal, or a throwing writer gives plain lines and never throws`` () =
    for columns in [ Some 0; Some 5; None ] do
        let lines = Collections.Generic.List<string>()
        let report = Progress.reporterWith (fun () -> columns) lines.Add
        for i in 0 .. 400 do report "task" 400 i
        // Every 5% plus the end: 21 lines for 401 reports, not one per report.
        Assert.InRange(lines.Count, 20, 22)
        Assert.Equal("task: 400/400", (lines[lines.Count - 1]).Substring(0, 13))
    let boom = Progress.reporterWith (fun () -> None) (fun _ -> raise (IOException "broken pipe"))
    for i in 0 .. 10 do boom "task" 10 i
    let columnsFail = Progress.reporterWith (fun () -> failwith "no console") ignore
    columnsFail "task" 10 1

[<Fact>]
let ``one training display per run: the column count is asked once, lines every 5%, rate is n / sum(1/rate)`` () =
    let asked = ref 0
    let lines = Collections.Generic.List<string>()
    let report = Progress.trainReporterWith (fun () -> asked.Value <- asked.Value + 1; Some 0) lines.Add
    for s in 1 .. 400 do report (tp s 400 (if s % 2 = 0 then 10.0 else 30.0))
    Assert.Equal(1, asked.Value)
    Assert.InRange(lines.Count, 20, 21)
    // Equal samples per step at 10/s and 30/s alternately: 2 / (1/10 + 1/30) = 15 samples/s.
    Assert.Contains("15.0 samples/s", lines[lines.Count - 1])

/// Runs a shell command line, returning exit code and stdout + stderr.
let private sh (command: string) =
    let psi = ProcessStartInfo("bash", [ "-c"; command ], RedirectStandardOutput = true, RedirectStandardError = true)
    use p = Process.Start psi
    let err = p.StandardError.ReadToEndAsync()
    let out = p.StandardOutput.ReadToEnd()
    p.WaitForExit()
    p.ExitCode, out + err.Result

let private queccDll () = Path.Combine(AppContext.BaseDirectory, "quecc.dll")

let private tinySetup (dir: string) =
    let q args = let c, _, e = quecc args in Assert.True((c = 0), e)
    q [ "make-data"; "--kind"; "shapes"; "--count"; "16"; "--seed"; "1"; "--out"; Path.Combine(dir, "data") ]
    q [ "init-model"; "--preset"; "tiny"; "--visual-tokens"; "4"; "--out"; Path.Combine(dir, "m") ]

[<Fact>]
let ``train under a pseudo-terminal reporting 0 columns finishes and writes final/ and the projector`` () =
    let dir = tempDir "cols0"
    try
        tinySetup dir
        let train =
            sprintf "dotnet %s train --model %s --stage pretrain --data %s --out %s --max-steps 3 --batch-size 2 --device cpu"
                (queccDll ()) (Path.Combine(dir, "m")) (Path.Combine(dir, "data", "data.json")) (Path.Combine(dir, "out"))
        // util-linux `script` gives the command a real pseudo-terminal; `stty cols 0` is what broke the bar.
        let code, output = sh (sprintf "script -q -e -c 'stty cols 0; %s' /dev/null" train)
        Assert.True((code = 0), output)
        Assert.DoesNotContain("non-negative", output)
        Assert.True(File.Exists(Path.Combine(dir, "out", "final", "model.safetensors")), output)
        Assert.True(File.Exists(Path.Combine(dir, "out", "mm_projector.safetensors")), output)
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``train with redirected output prints about 20 progress lines, not one per step`` () =
    let dir = tempDir "lines"
    try
        tinySetup dir
        let code, output =
            sh (sprintf "dotnet %s train --model %s --stage pretrain --data %s --out %s --max-steps 40 --batch-size 1 --device cpu 2>&1 | cat"
                    (queccDll ()) (Path.Combine(dir, "m")) (Path.Combine(dir, "data", "data.json")) (Path.Combine(dir, "out")))
        Assert.Equal(0, code)
        let steps = output.Split('\n') |> Array.filter (fun l -> l.StartsWith "step ")
        Assert.InRange(steps.Length, 19, 21)
        Assert.StartsWith("step 40/40", steps[steps.Length - 1])
    finally
        Directory.Delete(dir, true)

// ---------------------------------------------------------------------------------------------
// One-line messages.

let private assertOneLine (expectedCode: int) (fragments: string list) (code: int, out: string, err: string) =
    Assert.Equal(expectedCode, code)
    let lines = err.Trim().Split('\n')
    Assert.True((lines.Length = 1), sprintf "expected one line, got %d:\n%s" lines.Length err)
    for f in fragments do Assert.Contains(f, err)
    ignore out

[<Fact>]
let ``plot-metrics: a bad metrics line is one line naming file, line, field and value; null losses are skipped`` () =
    let dir = tempDir "metrics"
    try
        let file = Path.Combine(dir, "metrics.jsonl")
        File.WriteAllText(file, "{\"step\":1,\"loss\":2.0}\n{\"step\":\"x\",\"loss\":1}\n")
        quecc [ "plot-metrics"; file; "--out"; Path.Combine(dir, "fig.html") ] |> assertOneLine 1 [ file + ":2"; "\"step\" is \"x\""; "integer" ]
        File.WriteAllText(file, "{\"step\":1,\"loss\":\"a\"}\n")
        quecc [ "plot-metrics"; file; "--out"; Path.Combine(dir, "fig.html") ] |> assertOneLine 1 [ file + ":1"; "\"loss\" is \"a\""; "a number" ]
        File.WriteAllText(file, "[1,2]\n")
        quecc [ "plot-metrics"; file; "--out"; Path.Combine(dir, "fig.html") ] |> assertOneLine 1 [ file + ":1"; "not a JSON object" ]
        quecc [ "plot-metrics"; dir; "--out"; Path.Combine(dir, "fig.html") ] |> assertOneLine 1 [ dir; "is a folder" ]
        Assert.False(File.Exists(Path.Combine(dir, "fig.html")))
        // The trainer writes a non-finite loss as null: such a step is left out, not an error.
        File.WriteAllText(file, "{\"step\":1,\"loss\":2.0}\n{\"step\":2,\"loss\":null}\n{\"step\":3,\"loss\":1.5}\n")
        let code, out, err = quecc [ "plot-metrics"; file; "--out"; Path.Combine(dir, "fig.html") ]
        Assert.True((code = 0), err)
        Assert.Contains("2 steps", out)
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``reproduce --out onto a file or an impossible place is one line, and nothing is computed`` () =
    let dir = tempDir "out"
    try
        let file = Path.Combine(dir, "a-file")
        File.WriteAllText(file, "keep me")
        quecc [ "reproduce"; "--out"; file ] |> assertOneLine 1 [ "--out " + file; "is a file"; "expected a folder" ]
        Assert.Equal("keep me", File.ReadAllText file)
        quecc [ "reproduce"; "--out"; Path.Combine(file, "sub") ] |> assertOneLine 1 [ "--out"; "cannot create this folder" ]
        // /proc accepts no new folders, even for root (permission bits would not stop root).
        quecc [ "reproduce"; "--out"; "/proc/quecc-cannot-be-here" ] |> assertOneLine 1 [ "--out /proc/quecc-cannot-be-here"; "cannot create" ]
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``misspelled commands and flags give one line with the nearest name`` () =
    quecc [ "trian" ] |> assertOneLine 2 [ "'trian'"; "did you mean 'train'?" ]
    quecc [ "reprodce" ] |> assertOneLine 2 [ "did you mean 'reproduce'?" ]
    quecc [ "bench"; "fti" ] |> assertOneLine 2 [ "quecc bench"; "did you mean 'fit'?" ]
    quecc [ "fit"; "--dta"; "x.csv" ] |> assertOneLine 2 [ "quecc fit"; "'--dta'"; "did you mean '--data'?" ]
    quecc [ "xyzzy" ] |> assertOneLine 2 [ "'xyzzy'"; "expected one of fit, frontier" ]
    quecc [ "fit" ] |> assertOneLine 2 [ "quecc fit"; "missing argument '--data'" ]
    // Help is still the full usage, on stdout, exit 0.
    let code, out, _ = quecc [ "fit"; "--help" ]
    Assert.Equal(0, code)
    Assert.Contains("--grid-fraction", out)

[<Fact>]
let ``a folder given as --data is named as a folder, and a failed train leaves no --out folder`` () =
    let dir = tempDir "datadir"
    try
        quecc [ "fit"; "--data"; dir ] |> assertOneLine 1 [ dir; "is a folder"; "expected a CSV file" ]
        tinySetup dir
        let out = Path.Combine(dir, "never")
        quecc [ "train"; "--model"; Path.Combine(dir, "m"); "--stage"; "pretrain"; "--data"; Path.Combine(dir, "data"); "--out"; out; "--device"; "cpu" ]
        |> assertOneLine 1 [ Path.Combine(dir, "data"); "is a folder"; "data.json" ]
        Assert.False(Directory.Exists out, "a failed train left its --out folder behind")
        quecc [ "train"; "--model"; Path.Combine(dir, "m"); "--stage"; "pretrain"; "--data"; Path.Combine(dir, "missing.json"); "--out"; out; "--device"; "cpu" ]
        |> assertOneLine 1 [ "missing.json" ]
        Assert.False(Directory.Exists out)
    finally
        Directory.Delete(dir, true)

// ---------------------------------------------------------------------------------------------
// Figures.

[<Fact>]
let ``every V of the paper's token set gets its own marker size; D on a bound is flagged`` () =
    let sizeOf = Figures.markerSizesFor [ 576.0; 1.0; 4.0; 16.0; 36.0; 64.0; 144.0; 16.0 ]
    Assert.Equal<int list>([ 6; 10; 14; 18; 22; 26; 30 ], [ for v in [ 1.0; 4.0; 16.0; 36.0; 64.0; 144.0; 576.0 ] -> sizeOf v ])
    let obs = [ for e in [ 0.5; 0.4; 0.45 ] -> ({ Task = "t"; LlmParamsB = 1.0; VisualTokens = 1.0; Score = 1.0 - e; Extra = Map.empty }: QueCC.Experiments.Data.Observation) ]
    let p d = ({ A = 1.0; Alpha = 0.1; Beta = 0.01; D = d }: QueCC.Experiments.ScalingLaw.LawParams)
    Assert.Contains("lower bound", (Figures.boundNote (p 0.0) obs).Value)
    Assert.Contains("upper bound", (Figures.boundNote (p (0.4 * (1.0 - 1e-12))) obs).Value)
    Assert.True((Figures.boundNote (p 0.2) obs).IsNone)

[<Fact>]
let ``heatmap iso-FLOP lines satisfy 2·N·(Q+V) = C and the colour bar is titled`` () =
    let obs = paperData "visual_reasoning.csv"
    let p: QueCC.Experiments.ScalingLaw.LawParams = { A = 0.5; Alpha = 0.07; Beta = 0.015; D = 0.0 }
    let json = Text.Json.JsonDocument.Parse(Plotly.NET.GenericChart.toJson (Figures.heatmap "t" QueCC.Experiments.ScalingLaw.defaultSpec p obs 50.0 [])).RootElement
    let traces = json.GetProperty("data").EnumerateArray() |> List.ofSeq
    let heat = traces |> List.find (fun t -> t.GetProperty("type").GetString() = "heatmap")
    Assert.Equal("predicted error", heat.GetProperty("colorbar").GetProperty("title").GetProperty("text").GetString())
    let iso = traces |> List.filter (fun t -> t.TryGetProperty("name") |> fst && t.GetProperty("name").GetString().StartsWith "iso-FLOPs")
    Assert.InRange(iso.Length, 3, 13)
    let budgets =
        [ for t in iso ->
              let xs = [ for x in t.GetProperty("x").EnumerateArray() -> x.GetDouble() ]
              let ys = [ for y in t.GetProperty("y").EnumerateArray() -> y.GetDouble() ]
              let cs = List.map2 (fun n v -> 2.0 * n * 1e9 * (50.0 + v)) xs ys
              for c in cs do assertClose (1e-9 * cs.Head) cs.Head c
              for v in ys do Assert.InRange(v, 1.0, 576.0)
              cs.Head ]
    // Half a decade apart.
    for a, b in List.pairwise budgets do assertClose 1e-9 (sqrt 10.0) (b / a)

let private pngSize (bytes: byte[]) =
    Assert.Equal<byte[]>([| 0x89uy; byte 'P'; byte 'N'; byte 'G' |], bytes[0..3])
    let be (o: int) = (int bytes[o] <<< 24) ||| (int bytes[o + 1] <<< 16) ||| (int bytes[o + 2] <<< 8) ||| int bytes[o + 3]
    be 16, be 20

[<Fact>]
let ``plot-metrics --out x.png writes PNG, SVG and PDF without Plotly's tool bar, or says chromium is missing`` () =
    let dir = tempDir "static"
    try
        let file = Path.Combine(dir, "metrics.jsonl")
        File.WriteAllLines(file, [ for s in 1 .. 40 -> sprintf "{\"step\":%d,\"loss\":%g}" s (3.0 / float s) ])
        let png = Path.Combine(dir, "fig.png")
        match Reproduce.findChromium () with
        | Some _ ->
            let code, out, err = quecc [ "plot-metrics"; file; "--out"; png ]
            Assert.True((code = 0), err)
            Assert.Contains(png, out)
            // Plotly's own PNG export at scale 2 of the 1000×700 layout.
            Assert.Equal((2 * Figures.width, 2 * Figures.height), pngSize (File.ReadAllBytes png))
            // No tool bar: the top-right band above the legend (where the mode bar sits) is plain white.
            use bmp = SkiaSharp.SKBitmap.Decode png
            for y in 0 .. 8 .. 150 do
                for x in 1400 .. 8 .. 1999 do
                    let c = bmp.GetPixel(x, y)
                    Assert.True((c.Red = 255uy && c.Green = 255uy && c.Blue = 255uy), sprintf "pixel (%d, %d) is %O" x y c)
            let svg = Xml.Linq.XDocument.Load(Path.Combine(dir, "fig.svg")).Root
            Assert.Equal("svg", svg.Name.LocalName)
            Assert.Equal("1000", svg.Attribute(Xml.Linq.XName.Get "width").Value)
            Assert.DoesNotContain("modebar", File.ReadAllText(Path.Combine(dir, "fig.svg")))
            Assert.Contains("Training loss", File.ReadAllText(Path.Combine(dir, "fig.svg")))
            let pdf = File.ReadAllBytes(Path.Combine(dir, "fig.pdf"))
            let pdfText = Text.Encoding.Latin1.GetString pdf
            Assert.StartsWith("%PDF-", pdfText)
            // One page of the figure's size (1000×700 CSS px = 750×525 pt), drawn as vectors (no embedded image).
            let box = Text.RegularExpressions.Regex.Match(pdfText, @"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]")
            Assert.True(box.Success, "no MediaBox")
            assertClose 1.0 750.0 (float box.Groups[1].Value)
            assertClose 1.0 525.0 (float box.Groups[2].Value)
            Assert.DoesNotContain("/Subtype /Image", pdfText)
            Assert.True(File.Exists(Path.Combine(dir, "fig.html")))
        | None -> ()
        // Without chromium a PNG cannot be made: one line, and nothing written.
        let dotnet = Environment.ProcessPath
        let code, output = sh (sprintf "PATH=/nonexistent '%s' %s plot-metrics %s --out %s" dotnet (queccDll ()) file (Path.Combine(dir, "other.png")))
        if Path.GetFileNameWithoutExtension dotnet = "dotnet" then
            Assert.Equal(1, code)
            Assert.Contains("needs chromium on PATH", output)
            Assert.Equal(1, output.Trim().Split('\n').Length)
            Assert.False(File.Exists(Path.Combine(dir, "other.html")))
    finally
        Directory.Delete(dir, true)

// ---------------------------------------------------------------------------------------------
// Slurm directives and local jobs on devices.

[<Fact>]
let ``sweep --emit-slurm writes the sbatch directives asked for, before the first command; bad values are one line`` () =
    let dir = tempDir "slurm"
    try
        let script = Path.Combine(dir, "sweep.sh")
        let code, _, err =
            quecc [ "sweep"; "--preset"; "smoke"; "--out"; Path.Combine(dir, "out"); "--emit-slurm"; script
                    "--time"; "1-12:00:00"; "--partition"; "gpu"; "--mem"; "32G"; "--gres"; "gpu:a100:1"; "--account"; "lab42"
                    "--sbatch=--qos=high"; "--sbatch"; "--exclusive" ]
        Assert.True((code = 0), err)
        let lines = File.ReadAllLines script
        let directives = lines |> Array.filter (fun l -> l.StartsWith "#SBATCH") |> Set.ofArray
        for d in [ "#SBATCH --time=1-12:00:00"; "#SBATCH --partition=gpu"; "#SBATCH --mem=32G"; "#SBATCH --gres=gpu:a100:1"
                   "#SBATCH --account=lab42"; "#SBATCH --qos=high"; "#SBATCH --exclusive" ] do
            Assert.Contains(d, directives)
        // sbatch stops reading directives at the first command line.
        let firstCommand = lines |> Array.findIndex (fun l -> l <> "" && not (l.StartsWith "#"))
        let lastDirective = lines |> Array.findIndexBack (fun l -> l.StartsWith "#SBATCH")
        Assert.True(lastDirective < firstCommand)
        for args, fragments in
            [ [ "--time"; "2h" ], [ "--time '2h'"; "HH:MM:SS" ]
              [ "--mem"; "lots" ], [ "--mem 'lots'"; "32G" ]
              [ "--gres"; "gpu 1" ], [ "--gres 'gpu 1'"; "gpu:1" ]
              [ "--sbatch=qos" ], [ "--sbatch 'qos'"; "--qos=high" ] ] do
            quecc ([ "sweep"; "--preset"; "smoke"; "--out"; Path.Combine(dir, "bad"); "--emit-slurm"; Path.Combine(dir, "bad.sh") ] @ args)
            |> assertOneLine 1 fragments
            Assert.False(File.Exists(Path.Combine(dir, "bad.sh")))
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``local jobs on devices: each job holds its own device while it runs, never two jobs on one device`` () =
    let dir = tempDir "devices"
    try
        let commands =
            [ for i in 0 .. 7 ->
                  let log = Path.Combine(dir, sprintf "job%d.log" i)
                  [ "sh"; "-c"; sprintf "echo \"$(date +%%s%%N) $CUDA_VISIBLE_DEVICES\" > %s; sleep 0.3; date +%%s%%N >> %s" log log ] ]
        let results = Sweep.runLocalJobs 2 [ "0"; "1" ] commands ignore
        Assert.All(results, fun (code, _) -> Assert.Equal(0, code))
        let runs =
            [ for i in 0 .. 7 ->
                  let lines = File.ReadAllLines(Path.Combine(dir, sprintf "job%d.log" i))
                  let first = lines[0].Split(' ')
                  int64 first[0], int64 lines[1], first[1] ]
        // The child saw the device the launcher says it gave it.
        Assert.Equal<string list>([ for _, d in results -> d.Value ], [ for _, _, d in runs -> d ])
        for start, _, d in runs do
            Assert.Contains(d, [ "0"; "1" ])
            // At the instant a job starts, the jobs running (it included) are at most two and hold different devices.
            // (An interval may overlap more than two others over its length: one slot can finish a job and start the next.)
            let running = runs |> List.filter (fun (s, e, _) -> s <= start && start < e)
            Assert.InRange(running.Length, 1, 2)
            Assert.Equal(running.Length, running |> List.map (fun (_, _, d) -> d) |> List.distinct |> List.length)
        assertInputError [ "--jobs 3"; "one job per device" ] (fun () -> Sweep.runLocalJobs 3 [ "0"; "1" ] commands ignore)
        assertInputError [ "--devices '0,x'"; "'x'" ] (fun () -> Sweep.parseDevices "0,x")
        assertInputError [ "twice" ] (fun () -> Sweep.parseDevices "1,1")
    finally
        Directory.Delete(dir, true)
