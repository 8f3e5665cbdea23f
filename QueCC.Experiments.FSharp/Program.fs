module QueCC.Experiments.Program
[<EntryPoint>]
let main argv =
    let t = TorchSharp.torch.ones(3L)
    printfn "%A" (t.sum().item<float32>())
    0
