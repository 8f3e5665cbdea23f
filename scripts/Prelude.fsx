// Prelude for experiment scripts: references the built QueCC libraries and loads TorchSharp's native
// shim from the build output (TorchSharp's own script-mode loader copies ~480 MB into the NuGet cache and
// still fails on Debian 12). Scripts check for the build first, then `#load "Prelude.fsx"` and call `Prelude.init ()`.
#I "../QueCC.Experiments.FSharp/bin/Release/net10.0"
#r "quecc.dll"
#r "QueCC.Model.dll"
#r "TorchSharp.dll"
#r "Plotly.NET.dll"
#r "DynamicObj.dll"
#r "Giraffe.ViewEngine.dll"
#r "Argu.dll"
#r "ShellProgressBar.dll"

open System.IO
open System.Runtime.InteropServices

let binDir = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, "../QueCC.Experiments.FSharp/bin/Release/net10.0"))

let private nativeLoaded =
    lazy
        (let native = Path.Combine(binDir, "runtimes", "linux-x64", "native")
         if RuntimeInformation.IsOSPlatform OSPlatform.Linux then
             NativeLibrary.Load(Path.Combine(native, "libLibTorchSharp.so")) |> ignore)

/// Call before the first torch operation.
let init () = nativeLoaded.Force()
