#!/usr/bin/env bash
# Issue 5's per-epoch clause over the whole IBP recipe: the 20-epoch IBP recipe on the small CNN `cnn` (full
# Fashion-MNIST, batch 256, Adam 5e-4, 1 warm-up epoch, eps 0 -> 0.1 and kappa 1 -> 0 over 10 epochs, lr x0.1 late;
# 2 threads) of `engine train` and of the plain-PyTorch peer benchmarks/peers/certified_torch.py, alternating
# E, P, E, P, ..., E (this VM's speed moves runs by up to 25 % within minutes, so each peer run is compared with the
# mean of its two Engine neighbours). Prints every run's training time and mean ramp-epoch (epochs 2-11) and
# later-epoch times, then per peer run the ratios of the whole recipe, of the ramp epochs and of the later epochs.
# Usage: benchmarks/certified_recipe.sh [peer runs]   (default 2; about 3.5 minutes per peer run and its Engine run)
# Needs what benchmarks/certified_epochs.sh needs (/usr/bin/python3 with numpy and torch, libopenblas0-pthread,
# dataset-fashion-mnist or ENGINE_FASHION_MNIST=DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-2}"
source benchmarks/certified_setup.sh certified_recipe.sh
# Each run prints "total ramp_mean later_mean" (seconds).
engine_run() {
  dotnet src/Engine.Cli/bin/Release/net10.0/Engine.Cli.dll train --model cnn --method ibp --eps 0.1 --epochs 20 \
    --data "$data" --out "$work/engine.safetensors" 2>&1 | grep -E '^epoch' | sed -E 's/.*\(([0-9.]+) s\)$/\1/' |
    python3 -c 'import sys; e = [float(v) for v in sys.stdin.read().split()]; print(f"{sum(e):.1f} {sum(e[1:11]) / 10:.3f} {sum(e[11:]) / len(e[11:]):.3f}")'
}
peer_run() {
  # --model cnn: the script's default is cnn-small.
  /usr/bin/python3 benchmarks/peers/certified_torch.py --train-epochs 20 --method ibp --model cnn --data "$data" \
    --no-crown-eval 2>&1 | grep '"op": "train_epoch"' | sed -E 's/.*"seconds": ([0-9.]+).*/\1/' |
    python3 -c 'import sys; e = [float(v) for v in sys.stdin.read().split()]; print(f"{sum(e):.1f} {sum(e[1:11]) / 10:.3f} {sum(e[11:]) / len(e[11:]):.3f}")'
}
prev=$(engine_run)
echo "engine: training ${prev% * *} s, ramp epochs $(echo "$prev" | cut -d' ' -f2) s, later $(echo "$prev" | cut -d' ' -f3) s"
for r in $(seq 1 "$runs"); do
  peer=$(peer_run)
  echo "peer:   training ${peer% * *} s, ramp epochs $(echo "$peer" | cut -d' ' -f2) s, later $(echo "$peer" | cut -d' ' -f3) s"
  next=$(engine_run)
  echo "engine: training ${next% * *} s, ramp epochs $(echo "$next" | cut -d' ' -f2) s, later $(echo "$next" | cut -d' ' -f3) s"
  python3 -c "
p = [float(v) for v in '$peer'.split()]; a = [float(v) for v in '$prev'.split()]; b = [float(v) for v in '$next'.split()]
e = [(x + y) / 2 for x, y in zip(a, b)]
print(f'peer run $r against its neighbours: whole recipe {p[0] / e[0]:.2f}x, ramp epochs {p[1] / e[1]:.2f}x, later epochs {p[2] / e[2]:.2f}x')"
  prev=$next
done
