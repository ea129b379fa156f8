#!/usr/bin/env bash
# One entry point: ./build.sh build | test | bench [filter...] | run [engine args...] | publish [RID] | emu
# `build --cpu-only` / `test --cpu-only` leave the CUDA backend (src/Engine.Cuda) out entirely.
# `emu` builds the CPU emulation of a CUDA device (native/cuda-emu) into out/cuda-emu; `test` builds it too and runs
# the CUDA tests a second time on it (ENGINE_CUDA_LIB=out/cuda-emu), so a machine without a GPU runs them all.
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
    emulator=0
    if [ "$cpu_only" = 0 ]; then
      if [ "$(uname -sm)" = "Linux x86_64" ] && command -v g++ >/dev/null && native/cuda-emu/build.sh; then emulator=1
      else echo "note: the CUDA emulator (native/cuda-emu: g++, x86-64 Linux) could not be built; the CUDA tests run once, on this machine's devices"; fi
    fi
    # Runs the tests (extra arguments: dotnet test's); adds the TRX counters to the totals. rc: the worst exit status.
    passed_all=0; failed_all=0; skipped_all=0; rc=0
    run_tests() {
      local label="$1"; shift
      local results; results=$(mktemp -d)
      set +e
      dotnet test tests/Engine.Tests/Engine.Tests.csproj -c Release --no-build --nologo \
        --logger "console;verbosity=normal" --logger "trx;LogFileName=results.trx" --results-directory "$results" "$@"
      local r=$?
      set -e
      local trx="$results/results.trx"
      if [ -f "$trx" ]; then
        local counters; counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
        get() { echo "$counters" | sed -E "s/.* $1=\"([0-9]+)\".*/\1/"; }
        local total passed failed; total=$(get total); passed=$(get passed); failed=$(get failed)
        echo "$label: $passed passed, $failed failed, $((total - passed - failed)) skipped"
        passed_all=$((passed_all + passed)); failed_all=$((failed_all + failed)); skipped_all=$((skipped_all + total - passed - failed))
      else
        echo "$label: no results"; failed_all=$((failed_all + 1)); [ "$r" -eq 0 ] && r=1
      fi
      [ "$r" -ne 0 ] && rc=$r
      rm -rf "$results"
    }
    run_tests "this machine" "$@"
    if [ "$emulator" = 1 ]; then
      # The in-process CUDA tests again, on the emulated device (which must load: ENGINE_REQUIRE_CUDA=1), each launch
      # run a second time in reverse thread order to catch races (ENGINE_CUDA_EMU_RACECHECK=1), new buffers NaN
      # (ENGINE_CUDA_POISON=1), on two emulated GPUs (ENGINE_CUDA_EMU_DEVICES=2: cuda:1 for the multi-GPU tests). A
      # --filter of the caller's narrows this run too.
      filter="FullyQualifiedName~Engine.Tests.Cuda."; rest=()
      while [ $# -gt 0 ]; do
        if [ "$1" = "--filter" ] && [ $# -gt 1 ]; then filter="$filter&($2)"; shift 2; else rest+=("$1"); shift; fi
      done
      ENGINE_CUDA_LIB="$PWD/out/cuda-emu" ENGINE_CUDA_EMU_DEVICES=2 ENGINE_CUDA_EMU_RACECHECK=1 ENGINE_CUDA_POISON=1 ENGINE_REQUIRE_CUDA=1 \
        run_tests "emulated GPU (out/cuda-emu)" --filter "$filter" ${rest[@]+"${rest[@]}"}
    fi
    # The plain summary line CI reads: "N passed, M failed, K skipped", from the TRX counters of both runs.
    echo "$passed_all passed, $failed_all failed, $skipped_all skipped"
    exit "$rc"
    ;;
  emu)
    native/cuda-emu/build.sh
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
    echo "usage: ./build.sh build|test [--cpu-only] [args...] | bench|run [args...] | publish [RID] | emu" >&2; exit 2
    ;;
esac
