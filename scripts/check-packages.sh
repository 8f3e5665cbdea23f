#!/usr/bin/env bash
# Packs QueCC.Model and the quecc tool into artifacts/packages, then uses them the way a new user would:
# builds and runs examples/QueCC.Example from the packed library, installs the tool into a scratch tool path
# and runs it. Exits non-zero if any step fails. Usage: scripts/check-packages.sh [--skip-tool]
set -euo pipefail
cd "$(dirname "$0")/.."
skip_tool=${1:-}

rm -rf artifacts/packages
# The NuGet cache keeps the first extraction of a version: drop earlier packs of 0.1.0 so this one is used.
cache=${NUGET_PACKAGES:-$HOME/.nuget/packages}
rm -rf "$cache/quecc.model" "$cache/quecc" "$cache/quecc.linux-x64"

dotnet pack QueCC.Model.CSharp -c Release --nologo -v quiet
dotnet build examples/QueCC.Example -c Release --nologo -v quiet
dotnet examples/QueCC.Example/bin/Release/net10.0/QueCC.Example.dll

if [ "$skip_tool" != "--skip-tool" ]; then
  dotnet pack QueCC.Experiments.FSharp -c Release --nologo -v quiet
  tools=$(mktemp -d)
  trap 'rm -rf "$tools"' EXIT
  dotnet tool install quecc --tool-path "$tools" --add-source artifacts/packages
  "$tools/quecc" fit --data data/paper/visual_reasoning.csv --json | grep -q '"alpha"'
  # A torch call: the tool's own copy of libLibTorchSharp.so must load (Debian 12 native fix inside the package).
  "$tools/quecc" init-model --preset tiny --visual-tokens 4 --out "$tools/tiny-model"
  # The main job through the installed tool (as the README's install section promises): figures, summary.json.
  "$tools/quecc" reproduce --out "$tools/reproduce-out" --bootstrap 20 | tail -1
  test -s "$tools/reproduce-out/summary.json" && test -s "$tools/reproduce-out/figure1a_visual_reasoning_q0.png"
  echo "quecc tool: installed from artifacts/packages and ran fit, init-model and reproduce"
fi
