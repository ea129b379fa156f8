#!/usr/bin/env bash
# One entry point: ./build.sh build | test | bench [filter...] | run [engine args...]
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
verb="${1:-build}"; shift || true

case "$verb" in
  build)
    dotnet build Engine.sln -c Release --nologo -v q "$@"
    ;;
  test)
    dotnet build Engine.sln -c Release --nologo -v q
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
    if [ $# -eq 0 ]; then set -- train --model cnn; fi
    dotnet src/Engine.Cli/bin/Release/net10.0/Engine.Cli.dll "$@"
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
    echo "usage: ./build.sh build|test|bench|run [args...]" >&2; exit 2
    ;;
esac
