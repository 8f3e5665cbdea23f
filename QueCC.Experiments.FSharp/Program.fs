module QueCC.Experiments.Program

[<EntryPoint>]
let main argv = Cli.run argv
