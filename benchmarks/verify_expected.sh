#!/usr/bin/env bash
# Runs `engine verify` on the whole VNN-COMP 2021 sample list (shared/data/vnncomp2021/expected.csv) with the
# competition's time limits and prints the summary (verdict counts, times, agreement; exit code 2 on a wrong verdict).
# Usage: benchmarks/verify_expected.sh [DATA_DIR] [extra engine verify options, e.g. --shard 0/2 --results out.csv]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
data="${1:-}"
if [ -z "$data" ]; then
  d="$here"
  while [ "$d" != "/" ] && [ ! -d "$d/shared/data/vnncomp2021" ]; do d="$(dirname "$d")"; done
  data="$d/shared/data/vnncomp2021"
fi
[ $# -gt 0 ] && shift
[ -f "$data/expected.csv" ] || { echo "error: $data/expected.csv not found" >&2; exit 1; }
dotnet build "$here/src/Engine.Cli" -c Release -v q >/dev/null
exec "$here/src/Engine.Cli/bin/Release/net10.0/engine" verify --instances "$data/expected.csv" --root "$data" "$@"
