#!/usr/bin/env bash
# One entry point: ./build.sh build | test | bench [filter...] | run [engine args...] | publish [RID]
# `build --cpu-only` / `test --cpu-only` leave the CUDA backend (src/Engine.Cuda) out entirely.
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
verb="${1:-build}"; shift || true
cpu_only=0
if [ "${1:-}" = "--cpu-only" ]; then cpu_only=1; shift; fi

# Builds the solution, or with --cpu-only every project except Engine.Cuda (the solution would build it anyway), with
# -p:CpuOnly=true so that nothing references it and no ENGINE_CUDA code is compiled.
build_all() {
  if [ "$cpu_only" = 1 ]; then
    for p in tests/Engine.Tests/Engine.Tests.csproj benchmarks/Engine.Benchmarks/Engine.Benchmarks.csproj; do
      dotnet build "$p" -c Release --nologo -v q -p:CpuOnly=true "$@"
    done
  else
    dotnet build Engine.sln -c Release --nologo -v q "$@"
  fi
}

case "$verb" in
  build)
    build_all "$@"
    ;;
  test)
    build_all
    results=$(mktemp -d)
    set +e
    dotnet test tests/Engine.Tests/Engine.Tests.csproj -c Release --no-build --nologo \
      --logger "console;verbosity=normal" --logger "trx;LogFileName=results.trx" --results-directory "$results" "$@"
    rc=$?
    set -e
    # The plain summary line CI reads: "N passed, M failed, K skipped", from the TRX counters.
    trx="$results/results.trx"
    if [ -f "$trx" ]; then
      counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
      get() { echo "$counters" | sed -E "s/.* $1=\"([0-9]+)\".*/\1/"; }
      total=$(get total); passed=$(get passed); failed=$(get failed)
      echo "$passed passed, $failed failed, $((total - passed - failed)) skipped"
    else
      echo "0 passed, 1 failed"
      [ "$rc" -eq 0 ] && rc=1
    fi
    rm -rf "$results"
    exit "$rc"
    ;;
  bench)
    dotnet run -c Release --project benchmarks/Engine.Benchmarks -- "$@"
    ;;
  run)
    dotnet build src/Engine.Cli/Engine.Cli.csproj -c Release --nologo -v q
    engine=(dotnet src/Engine.Cli/bin/Release/net10.0/Engine.Cli.dll)
    if [ $# -gt 0 ]; then "${engine[@]}" "$@"; exit; fi
    # The main job: certified (IBP) training of the small CNN on the embedded Fashion-MNIST subset, then its
    # certification report at Linf eps 0.1 (CROWN, inputs in [0, 1]); the last line is the certify JSON.
    "${engine[@]}" train --model cnn-small --method ibp --eps 0.1 --epochs 30 --batch 64 --lr 1e-3 --seed 0 --out out/main.safetensors
    "${engine[@]}" certify out/main.safetensors --eps 0.1 --method crown
    ;;
  publish)
    # NativeAOT, one self-contained file: out/engine-RID/engine (default RID linux-x64). x64 code is compiled for
    # x86-64-v3 (AVX2/FMA: every server CPU of the last decade) instead of the SSE4.2 default; override with ENGINE_ISA.
    rid="${1:-linux-x64}"; dir="out/engine-$rid"; isa=()
    case "$rid" in *-x64) isa=(-p:IlcInstructionSet="${ENGINE_ISA:-x86-64-v3}") ;; esac
    rm -rf "$dir"
    dotnet publish src/Engine.Cli/Engine.Cli.csproj -c Release -r "$rid" -p:PublishAot=true "${isa[@]}" --nologo -v q -o "$dir"
    mv "$dir/Engine.Cli" "$dir/engine"
    rm -f "$dir"/*.dbg "$dir"/*.pdb "$dir"/*.xml
    ls -l "$dir"
    ;;
  *)
    echo "usage: ./build.sh build|test [--cpu-only] [args...] | bench|run [args...] | publish [RID]" >&2; exit 2
    ;;
esac
