#!/usr/bin/env bash
# Issue 5: certified training steps (standard, IBP, CROWN-IBP; small CNN, batch 256) and IBP / CROWN verification of
# 1,000 Fashion-MNIST test images at L-inf 0.1: the Engine against the PyTorch peer benchmarks/peers/certified_torch.py
# (auto_LiRPA's algorithms) on the same weights, batch and images (Engine.Benchmarks --export-certified), on this
# machine, in one run; prints the ratio table (median and min) and the same-work checks (bounds, losses, verified counts).
# Usage: benchmarks/certified_compare.sh [--quick] [threads...]   (default threads: 1 2)
#   default: the Engine side is BenchmarkDotNet (CertifiedTrainingBenchmarks, CertifyBenchmarks; both always run
#            threads 1 and 2), then the peer at each thread count.
#   --quick: the Engine side is the export's own timer (--export-certified ... --time), run right before the peer at
#            each thread count (rougher than BenchmarkDotNet, but the two sides alternate, which helps on a busy machine).
# Needs /usr/bin/python3 with numpy and torch (Debian: python3-numpy python3-torch libopenblas0-pthread) and the full
# Fashion-MNIST set (dataset-fashion-mnist, or ENGINE_FASHION_MNIST=DIR). Writes benchmarks/compare-certified-<date>.jsonl.
# Takes 10-20 minutes (--quick: about 3 minutes per thread count).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
threads=("${@:-1}"); [ $# -eq 0 ] && threads=(1 2)
data="${ENGINE_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
if [ ! -d "$data" ]; then
  echo "certified_compare.sh: $data not found (apt-get install dataset-fashion-mnist, or set ENGINE_FASHION_MNIST)" >&2
  exit 1
fi
export ENGINE_FASHION_MNIST="$data"
out="benchmarks/compare-certified-$(date +%Y%m%d-%H%M%S).jsonl"
dotnet build benchmarks/Engine.Benchmarks/Engine.Benchmarks.csproj -c Release --nologo -v q >/dev/null
bench() { dotnet benchmarks/Engine.Benchmarks/bin/Release/net10.0/Engine.Benchmarks.dll "$@"; }
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
peer() { $py benchmarks/peers/certified_torch.py --dir "$work/export" --data "$data" --threads "$1" --verify-images 1000 --verify-repeats 3; }
if [ "$quick" = 0 ]; then
  bench --export-certified "$work/export" --threads 2 --images 1000
  echo "# BenchmarkDotNet: CertifiedTrainingBenchmarks, CertifyBenchmarks (log: $work/bdn.log while it runs)" >&2
  bench --filter '*CertifiedTrainingBenchmarks*' '*CertifyBenchmarks*' --exporters json --artifacts "$work/bdn" >"$work/bdn.log" 2>&1 \
    || { tail -40 "$work/bdn.log" >&2; exit 1; }
fi
{
  [ "$quick" = 0 ] && $py benchmarks/peers/bdn_jsonl.py "$work/bdn"
  for t in "${threads[@]}"; do
    [ "$quick" = 1 ] && bench --export-certified "$work/export" --threads "$t" --images 1000 --time
    peer "$t"
  done
} 2>/dev/null | grep '^{' | tee "$out"
$py benchmarks/peers/summarize.py "$out"
