"""PyTorch CPU peer for `engine bench train` and the conv2d benchmarks.

Usage: /usr/bin/python3 benchmarks/peers/train_torch.py --threads 1 [--batch 128]
Prints one JSON line per measurement (median ms after warm-up), same work as the Engine benchmarks:
  train step (forward, cross-entropy, backward, SGD momentum step) of the MLP 784-256-256-10 and the small CNN;
  conv2d batch 32, 64->64, 32x32, k3 p1: forward, and forward+backward (dX and dW).
"""
import argparse
import sys
import os

sys.path.insert(0, os.path.dirname(__file__))
from common import setup_threads, median_ms, emit, blas_info  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=1)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--iters", type=int, default=50)
args = p.parse_args()
setup_threads(args.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(0)
print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, BLAS: {blas_info()}", file=sys.stderr)


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(1568, 100), nn.ReLU(), nn.Linear(100, 10))


for name, make in (("mlp", mlp), ("cnn", cnn)):
    model = make()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(args.batch, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    ms = median_ms(step, 10, args.iters)
    emit({"peer": "torch", "op": "train", "model": name, "batch": args.batch, "threads": args.threads, "ms_per_step": round(ms, 4)})

conv = nn.Conv2d(64, 64, 3, 1, 1)
x = torch.rand(32, 64, 32, 32)
with torch.no_grad():
    ms = median_ms(lambda: conv(x), 3, max(10, args.iters // 3))
emit({"peer": "torch", "op": "conv2d_forward", "shape": "32x64x32x32,k3p1,64", "threads": args.threads, "ms": round(ms, 4)})
xg = x.clone().requires_grad_(True)


def fwd_bwd():
    conv.zero_grad(set_to_none=True)
    xg.grad = None
    conv(xg).sum().backward()


ms = median_ms(fwd_bwd, 3, max(10, args.iters // 3))
emit({"peer": "torch", "op": "conv2d_forward_backward", "shape": "32x64x32x32,k3p1,64", "threads": args.threads, "ms": round(ms, 4)})
