module QueCC.Experiments.Tests.CheckpointCliTests

open System
open System.IO
open Xunit
open QueCC.Experiments.Tests.Helpers
open QueCC.Experiments.Tests.CliTests

let private fixture (parts: string list) = repoFile (Path.Combine(List.toArray ([ "tests"; "QueCC.Model.Tests"; "Fixtures" ] @ parts)))

[<Fact>]
let ``generate runs on the published LLaVA-1.5 layout with .bin shards and a separate CLIP folder`` () =
    let model = fixture [ "llava15"; "llava-v1.5-tiny"; "config.json" ] |> Path.GetDirectoryName
    let tower = fixture [ "llava15"; "clip-vit-tiny-patch2-48"; "config.json" ] |> Path.GetDirectoryName
    let img = Path.Combine(Path.GetTempPath(), sprintf "quecc-l15-%s.png" (Guid.NewGuid().ToString "N"))
    try
        QueCC.Model.Clip.RgbImage.Filled(50, 30, 30uy, 160uy, 90uy).SavePng img
        let code, out, err = quecc [ "generate"; "--model"; model; "--vision-tower"; tower; "--image"; img; "--prompt"; "What is it?"; "--max-new-tokens"; "5" ]
        Assert.True((code = 0), err)
        let code2, out2, _ = quecc [ "generate"; "--model"; model; "--vision-tower"; tower; "--image"; img; "--prompt"; "What is it?"; "--max-new-tokens"; "5" ]
        Assert.Equal(0, code2)
        Assert.Equal(out, out2)
        let code3, _, err3 = quecc [ "generate"; "--model"; model; "--image"; img; "--prompt"; "What is it?" ]
        Assert.Equal(1, code3)
        Assert.Contains("openai/clip-vit-large-patch14-336", err3)
    finally File.Delete img

[<Fact>]
let ``init-model --compressor none derives the visual-token count from the tower`` () =
    let dir = Path.Combine(Path.GetTempPath(), sprintf "quecc-none-%s" (Guid.NewGuid().ToString "N"))
    try
        let code, _, err = quecc [ "init-model"; "--preset"; "tiny"; "--compressor"; "none"; "--out"; dir ]
        Assert.True((code = 0), err)
        let cfg = QueCC.Model.Llava.LlavaConfig.Load(Path.Combine(dir, "config.json"))
        Assert.Equal(QueCC.Model.Presets.Presets.Get("tiny").Vision.NumPatches, cfg.Projector.InputTokenCount.Value)
        Assert.Equal(QueCC.Model.Compression.CompressionType.None, cfg.Projector.Compression)
        let code, _, err = quecc [ "init-model"; "--preset"; "tiny"; "--compressor"; "none"; "--visual-tokens"; "4"; "--out"; dir + "-4" ]
        Assert.Equal(1, code)
        Assert.Contains("compressor none passes all 576 patch tokens", err)
    finally
        if Directory.Exists dir then Directory.Delete(dir, true)
