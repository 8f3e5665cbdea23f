// The paper's figures and fits from the shipped data, through the library (same as `quecc reproduce`).
// Needs a Release build first:  dotnet tool restore && dotnet build -c Release
// Run from the repository root:  dotnet fsi scripts/reproduce.fsx [OUT_DIR] [BOOTSTRAP_RESAMPLES]
let buildOutput = System.IO.Path.Combine(__SOURCE_DIRECTORY__, "../QueCC.Experiments.FSharp/bin/Release/net10.0/quecc.dll")
if not (System.IO.File.Exists buildOutput) then
    eprintfn "scripts/reproduce.fsx: the Release build is missing (%s); run 'dotnet tool restore && dotnet build -c Release' first" (System.IO.Path.GetFullPath buildOutput)
    exit 1
;;
#load "Prelude.fsx"

open QueCC.Experiments

Prelude.init ()
let args = fsi.CommandLineArgs |> Array.skip 1
let outDir = if args.Length > 0 then args[0] else "reproduce-out"
let settings =
    if args.Length > 1 then { Reproduce.defaultSettings with Bootstrap = int args[1] } else Reproduce.defaultSettings
let fams, files = Reproduce.run settings outDir (eprintfn "%s") (Progress.reporter ())
for f in fams do
    let p = f.Continuous.Params
    printfn "%-18s alpha = %.4f  beta = %.4f  alpha/beta = %.2f  V*(Q=50) = %.3g"
        f.Name p.Alpha p.Beta (p.Alpha / p.Beta) (f.OptimalV |> List.find (fun (q, _) -> q = 50.0) |> snd).Value
printfn "wrote %d figure files and summary.json/.md to %s" files.Length (System.IO.Path.GetFullPath outDir)
