/// `evaluate` over a randomly initialised tiny model: file contract, determinism and input errors.
module QueCC.Experiments.Tests.EvaluationTests

open System
open System.IO
open System.Text.Json.Nodes
open Xunit
open QueCC.Experiments.Data
open QueCC.Experiments.Evaluation
open QueCC.Experiments.ScoringIO
open QueCC.Experiments.Tests.Helpers

let private tempDir () =
    let d = Path.Combine(Path.GetTempPath(), "quecc-eval-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

let private writePng (path: string) (w: int) (h: int) (r: byte) (g: byte) (b: byte) =
    use bmp = new SkiaSharp.SKBitmap(w, h)
    bmp.Erase(SkiaSharp.SKColor(r, g, b))
    use data = bmp.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100)
    File.WriteAllBytes(path, data.ToArray())

let private questions =
    """{"question_id": 7, "image": "red.png", "text": "What colour is it?\nAnswer the question using a single word or phrase."}
{"question_id": "q-8", "image": "blue.png", "text": "Is there a dog?", "category": "random"}

{"question_id": 9, "image": "red.png", "text": "<image>\nHow many objects?"}
"""

[<Fact>]
let ``evaluate answers every question once per line, deterministically, and the answers score`` () =
    let dir = tempDir ()
    try
        let model = Path.Combine(dir, "tiny-quecc")
        QueCC.Model.Commands.LlavaEntryPoints.InitModel("tiny", "quecc", 4, model) |> ignore
        let images = Path.Combine(dir, "images")
        Directory.CreateDirectory images |> ignore
        writePng (Path.Combine(images, "red.png")) 40 30 200uy 10uy 10uy
        writePng (Path.Combine(images, "blue.png")) 24 36 10uy 10uy 220uy
        let qs = Path.Combine(dir, "questions.jsonl")
        File.WriteAllText(qs, questions)
        let ticks = Collections.Generic.List<int * int>()
        let out1 = Path.Combine(dir, "out", "answers1.jsonl")
        evaluate model None qs images out1 5 (fun d t -> ticks.Add((d, t)))
        Assert.Equal<(int * int) list>([ 1, 3; 2, 3; 3, 3 ], List.ofSeq ticks)
        let lines = File.ReadAllLines out1
        Assert.Equal(3, lines.Length)
        let objs = lines |> Array.map (fun l -> JsonNode.Parse(l).AsObject())
        // Ids keep their JSON type: numbers stay numbers, strings stay strings.
        Assert.Equal<string[]>([| "7"; "\"q-8\""; "9" |], objs |> Array.map (fun o -> o["question_id"].ToJsonString()))
        for o in objs do
            Assert.Equal("tiny-quecc", o["model_id"].GetValue<string>())
            Assert.NotNull(o["text"].GetValue<string>())
            Assert.Equal(22, o["answer_id"].GetValue<string>().Length)
        let prompt = objs[1].["prompt"].GetValue<string>()
        Assert.Equal("Is there a dog?", prompt)
        Assert.False(File.Exists(out1 + ".tmp"))
        // Greedy decoding and a hashed answer id: a second run writes the same bytes.
        let out2 = Path.Combine(dir, "out", "answers2.jsonl")
        evaluate model None qs images out2 5 (fun _ _ -> ())
        Assert.Equal<byte[]>(File.ReadAllBytes out1, File.ReadAllBytes out2)
        // The file is what the scorer reads: POPE labels for the three ids give 3 scored, none missing.
        let gt = Path.Combine(dir, "pope.jsonl")
        File.WriteAllText(gt, "{\"question_id\": 7, \"label\": \"yes\"}\n{\"question_id\": \"q-8\", \"label\": \"no\"}\n{\"question_id\": 9, \"label\": \"yes\"}\n")
        let r = scoreFiles QueCC.Experiments.Scoring.Pope out1 gt
        Assert.Equal(3, r.Scored)
        Assert.Empty r.MissingAnswers
        Assert.Empty r.UnmatchedAnswers
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``bad question files and missing images are one-line errors before the model loads`` () =
    let dir = tempDir ()
    try
        let images = Path.Combine(dir, "images")
        Directory.CreateDirectory images |> ignore
        writePng (Path.Combine(images, "red.png")) 8 8 1uy 2uy 3uy
        let run (text: string) =
            let qs = Path.Combine(dir, "q.jsonl")
            File.WriteAllText(qs, text)
            // The model folder does not exist: reaching the loader would raise DirectoryNotFoundException instead.
            evaluate (Path.Combine(dir, "no-model")) None qs images (Path.Combine(dir, "a.jsonl")) 4 (fun _ _ -> ())
        assertInputError [ "q.jsonl:2"; "\"nope.png\" not found" ] (fun () ->
            run "{\"question_id\": 1, \"image\": \"red.png\", \"text\": \"x\"}\n{\"question_id\": 2, \"image\": \"nope.png\", \"text\": \"x\"}")
        assertInputError [ "q.jsonl:1"; "\"text\"" ] (fun () -> run "{\"question_id\": 1, \"image\": \"red.png\"}")
        assertInputError [ "q.jsonl:1"; "not valid JSON" ] (fun () -> run "{\"question_id\": 1,")
        assertInputError [ "q.jsonl:2"; "question_id 1 repeats"; "q.jsonl:1;" ] (fun () ->
            run "{\"question_id\": 1, \"image\": \"red.png\", \"text\": \"x\"}\n{\"question_id\": \"1\", \"image\": \"red.png\", \"text\": \"y\"}")
        assertInputError [ "q.jsonl"; "no questions" ] (fun () -> run "\n")
        assertInputError [ "max new tokens 0" ] (fun () ->
            evaluate dir None (Path.Combine(dir, "q.jsonl")) images (Path.Combine(dir, "a.jsonl")) 0 (fun _ _ -> ()))
        Assert.False(File.Exists(Path.Combine(dir, "a.jsonl")))
    finally
        Directory.Delete(dir, true)

[<Fact>]
let ``batched eval with the reference prompt gives the batch-of-one answers and records how they were made`` () =
    let dir = tempDir ()
    try
        let model = Path.Combine(dir, "tiny-quecc")
        QueCC.Model.Commands.LlavaEntryPoints.InitModel("tiny", "quecc", 4, model) |> ignore
        let images = Path.Combine(dir, "images")
        Directory.CreateDirectory images |> ignore
        writePng (Path.Combine(images, "red.png")) 40 30 200uy 10uy 10uy
        writePng (Path.Combine(images, "blue.png")) 24 36 10uy 10uy 220uy
        let qs = Path.Combine(dir, "questions.jsonl")
        // Prompts of different lengths, so the batch is padded; one already carries the suffix.
        File.WriteAllText(
            qs,
            String.concat "\n"
                [ """{"question_id": 1, "image": "red.png", "text": "Is there a dog?"}"""
                  """{"question_id": 2, "image": "blue.png", "text": "Is there a red car parked next to the small wooden house by the river?"}"""
                  """{"question_id": 3, "image": "red.png", "text": "Cat?\nAnswer the question using a single word or phrase."}"""
                  """{"question_id": 4, "image": "blue.png", "text": "Is the sky blue in this picture, or is it grey?"}"""
                  """{"question_id": 5, "image": "red.png", "text": "Any people?"}""" ])
        let run batch name =
            let out = Path.Combine(dir, name)
            let ticks = Collections.Generic.List<int>()
            evaluateWith { Benchmark = Some QueCC.Experiments.Scoring.Pope; MaxNewTokens = Some 6; BatchSize = batch } model None qs images out (fun d _ -> ticks.Add d)
            File.ReadAllLines out |> Array.map (fun l -> JsonNode.Parse(l).AsObject()), List.ofSeq ticks
        let one, ticks1 = run 1 "b1.jsonl"
        let three, ticks3 = run 3 "b3.jsonl"
        Assert.Equal<int list>([ 1; 2; 3; 4; 5 ], ticks1)
        Assert.Equal<int list>([ 3; 5 ], ticks3)
        Assert.Equal<string[]>(one |> Array.map (fun o -> o["text"].GetValue<string>()), three |> Array.map (fun o -> o["text"].GetValue<string>()))
        // The untrained tiny model mostly answers "", so this equality is weak; BatchedAnswerTests (C#) proves it on long,
        // varied answers. Here: the file contract at both sizes.
        let suffix = "Answer the question using a single word or phrase."
        for o in three do
            let p = o["prompt"].GetValue<string>()
            Assert.EndsWith("\n" + suffix, p)
            Assert.Equal(p.IndexOf suffix, p.LastIndexOf suffix)
            Assert.Equal("tiny-quecc", o["model_id"].GetValue<string>())
            let m = o["metadata"]
            Assert.Equal("pope", m["benchmark"].GetValue<string>())
            Assert.Equal(0.0, m["temperature"].GetValue<float>())
            Assert.Equal(6, m["max_new_tokens"].GetValue<int>())
            Assert.Equal(3, m["batch_size"].GetValue<int>())
    finally
        Directory.Delete(dir, true)
