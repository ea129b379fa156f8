#!/usr/bin/env bash
# Issue 5's per-epoch clause, timed the way this VM allows: the IBP recipe's epochs (small CNN `cnn`, full
# Fashion-MNIST, batch 256, 2 threads) of `engine train` and of the plain-PyTorch peer
# benchmarks/peers/certified_torch.py, run in alternating pairs in the same minutes (single runs on this 2-core VM
# swing by ±10 %, and its speed drifts by ~20 % within an hour, so only neighbouring runs compare). Each run is one
# warm-up epoch, two ramp epochs (eps 0 -> 0.1, kappa 1 -> 0: the clean pass included) and one epoch after the ramp.
# Prints each pair's epoch times and the ratio of their ramp epochs, then the ratio of the means.
# Usage: benchmarks/certified_epochs.sh [pairs]   (default 3; about 40 s a pair)
# Needs /usr/bin/python3 with numpy and torch (Debian: python3-numpy python3-torch libopenblas0-pthread — without
# libopenblas0-pthread the peer silently runs on reference BLAS, ~5x slower) and dataset-fashion-mnist (or
# ENGINE_FASHION_MNIST=DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
pairs="${1:-3}"
source benchmarks/certified_setup.sh certified_epochs.sh
recipe=(--warmup-epochs 1 --ramp-epochs 2)
engine_epochs() {
  # The CLI prints "... (S s)" per epoch with one decimal.
  dotnet src/Engine.Cli/bin/Release/net10.0/Engine.Cli.dll train --model cnn --method ibp --eps 0.1 --epochs 4 \
    "${recipe[@]}" --data "$data" --out "$work/engine.safetensors" 2>&1 | grep -E '^epoch' | sed -E 's/.*\(([0-9.]+) s\)$/\1/' | tr '\n' ' '
}
peer_epochs() {
  # --model cnn: the script's default is cnn-small (the Engine's --model cnn-small), a quarter of the convolutions.
  /usr/bin/python3 benchmarks/peers/certified_torch.py --train-epochs 4 "${recipe[@]}" --method ibp --model cnn \
    --data "$data" --no-crown-eval 2>&1 | grep '"op": "train_epoch"' | sed -E 's/.*"seconds": ([0-9.]+).*/\1/' | tr '\n' ' '
}
sum_engine=0; sum_peer=0
for p in $(seq 1 "$pairs"); do
  peer=$(peer_epochs); engine=$(engine_epochs)
  read -r _ p2 p3 _ <<<"$peer"; read -r _ e2 e3 _ <<<"$engine"
  ratio=$(python3 -c "print(f'{($p2 + $p3) / ($e2 + $e3):.2f}')")
  echo "pair $p: peer epochs [$peer] engine epochs [$engine] ramp-epoch ratio ${ratio}x"
  sum_peer=$(python3 -c "print($sum_peer + $p2 + $p3)"); sum_engine=$(python3 -c "print($sum_engine + $e2 + $e3)")
done
python3 -c "print(f'ramp epochs, mean: peer {$sum_peer / (2 * $pairs):.2f} s, engine {$sum_engine / (2 * $pairs):.2f} s, ratio {$sum_peer / $sum_engine:.2f}x')"
