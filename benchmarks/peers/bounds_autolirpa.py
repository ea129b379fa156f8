"""auto_LiRPA peer for BoundBenchmarks (issue 3): IBP, CROWN and alpha-CROWN lower bounds of the margin spec.

Usage: python3 benchmarks/peers/bounds_autolirpa.py --threads 1 [--iters 10]
Same networks as benchmarks/Engine.Benchmarks/BoundBenchNets.cs (MLP 784-256-256-10; CNN 1x28x28: conv 8 k4 s2 p1,
ReLU, conv 16 k4 s2 p1, ReLU, fc 100, ReLU, fc 10), batch 1 and 32, L-inf eps 0.01, inputs in [0, 1], labels i mod 10,
alpha-CROWN 20 iterations (auto_LiRPA's defaults otherwise). The weights are torch's seeded default initialisation:
the Engine's seeded weights differ, but the shapes, eps and unstable-neuron shares are comparable.
Prints one JSON line per measurement (median ms after warm-up):
  {"peer": "auto_LiRPA", "op": "crown", "method": ..., "net": ..., "batch": ..., "threads": ..., "ms": ...}
Without auto_LiRPA it says so on stderr, prints {"peer": "auto_LiRPA", "available": false} and exits 0.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import setup_threads, median_ms, emit  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=1)
p.add_argument("--iters", type=int, default=10)
p.add_argument("--eps", type=float, default=0.01)
args = p.parse_args()
setup_threads(args.threads)

try:
    import torch  # noqa: E402
    import torch.nn as nn  # noqa: E402
    from auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm  # noqa: E402
except ImportError as e:
    print(f"# auto_LiRPA is not available here ({e}); nothing timed.", file=sys.stderr)
    emit({"peer": "auto_LiRPA", "available": False})
    sys.exit(0)

torch.set_num_threads(args.threads)
torch.manual_seed(0)


from bound_nets import mlp, cnn, margins  # noqa: E402,F401


METHODS = {"ibp": "IBP", "crown": "CROWN", "alpha-crown": "alpha-CROWN"}

for name, make in (("mlp", mlp), ("cnn", cnn)):
    for batch in (1, 32):
        model = make().eval()
        x = torch.rand(batch, 1, 28, 28)
        c = margins([i % 10 for i in range(batch)])
        for method, lirpa_method in METHODS.items():
            bounded = BoundedModule(model, torch.empty_like(x), device="cpu",
                                    bound_opts={"optimize_bound_args": {"iteration": 20}})
            ptb = PerturbationLpNorm(norm=float("inf"), eps=args.eps)
            bx = BoundedTensor(x, ptb)

            def run():
                with torch.no_grad() if method != "alpha-crown" else torch.enable_grad():
                    bounded.compute_bounds(x=(bx,), C=c, method=lirpa_method, bound_upper=False)

            iters = max(2, args.iters // 5) if method == "alpha-crown" else args.iters
            ms = median_ms(run, warmup=1, iters=iters)
            emit({"peer": "auto_LiRPA", "op": "crown", "method": method, "net": name, "batch": batch,
                  "threads": args.threads, "ms": round(ms, 3)})
