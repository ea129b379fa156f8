#!/usr/bin/env bash
# Runs Engine and its peers on the same work, on this machine, in one run, and prints a ratio table.
# Usage: benchmarks/compare.sh [threads...]   (default: 1 2). Needs /usr/bin/python3 with numpy and torch
# (Debian: python3-numpy python3-torch libopenblas0-pthread). Writes benchmarks/compare-<date>.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=("${@:-1}"); [ $# -eq 0 ] && threads=(1 2)
out="benchmarks/compare-$(date +%Y%m%d-%H%M%S).jsonl"
dotnet build src/Engine.Cli/Engine.Cli.csproj -c Release --nologo -v q >/dev/null
dotnet build benchmarks/Engine.Benchmarks/Engine.Benchmarks.csproj -c Release --nologo -v q >/dev/null
engine() { dotnet src/Engine.Cli/bin/Release/net10.0/Engine.Cli.dll "$@"; }
bench() { dotnet benchmarks/Engine.Benchmarks/bin/Release/net10.0/Engine.Benchmarks.dll "$@"; }
py=/usr/bin/python3
# The bound nets' weights, inputs and Engine bounds for the same-weights CROWN peer (benchmarks/peers/crown_torch.py).
boundnets=$(mktemp -d)
trap 'rm -rf "$boundnets"' EXIT
{
  for t in "${threads[@]}"; do
    for n in 256 512 1024 2048; do engine bench gemm --n "$n" --threads "$t"; done
    engine bench gemm --m 128 --k 784 --n 256 --threads "$t"
    $py benchmarks/peers/gemm_numpy.py --threads "$t" --coretype SkylakeX --shapes 256,512,1024,2048,128x784x256
    for m in mlp cnn; do engine bench train --model "$m" --batch 128 --threads "$t"; done
    engine bench conv2d --threads "$t"
    $py benchmarks/peers/train_torch.py --threads "$t" --batch 128
    # IBP / CROWN margin lower bounds of BoundBenchNets: Engine timings, then the peer's timings and tightness lines.
    bench --export-bound-nets "$boundnets" --threads "$t"
    $py benchmarks/peers/crown_torch.py --dir "$boundnets" --threads "$t"
  done
} 2>/dev/null | grep '^{' | tee "$out"
$py benchmarks/peers/summarize.py "$out"
