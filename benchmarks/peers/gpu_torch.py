"""PyTorch CUDA peer for the engine's GPU benchmarks (`engine bench ... --device cuda`, issue 4).

Usage: python3 benchmarks/peers/gpu_torch.py [--dir DIR] [--batch 128] [--n 67108864] [--gemm-sizes 1024,4096,8192] [--only elementwise,gemm,train,conv2d,crown]
Same work as the engine, timed the same way (benchmarks: Engine.Cli BenchTiming.MedianSeconds): warm-up of at least
2 samples and 0.3 s, then 5 to 100 samples within about 2 s; a sample runs the work `reps` times and then calls
torch.cuda.synchronize(); the median sample divided by reps is printed. One JSON line per measurement:
- elementwise on N floats (default 2^26): {"peer": "torch_cuda", "op": "elementwise", "name": "copy"|"clone"|"relu"|
  "exp"|"add"|"mul", "gbps", "copy_gbps", "ratio"}: bytes = 4 N (inputs + 1); "copy" (the reference) is torch's own
  device-to-device copy, dst.copy_(src) into a preallocated tensor (a cudaMemcpyAsync); the ops allocate their
  output from torch's caching allocator, as the engine's do from its own.
- SGEMM with TF32 off (torch.backends.cuda.matmul.allow_tf32 = False): N x N x N for N in --gemm-sizes (1024, 4096, 8192) and the
  Linear shape A[128, 784] B[256, 784]^T; "gflops".
- one training step (zero_grad, forward, cross-entropy, backward, SGD lr 0.01 momentum 0.9) of the MLP 784-256-256-10
  and the CNN (conv 16 k4 s2 p1, conv 32 k4 s2 p1, fc 100, fc 10) of train_torch.py / Engine.Cli ModelZoo at
  --batch; "ms_per_step". conv2d 32x64x32x32 k3 p1 forward and forward+backward, as `engine bench conv2d`.
- CROWN (crown_torch.py's algorithm, auto_LiRPA's, on the GPU) margin lower bounds of the bound benchmark nets at
  --batch, eps 0.01. With --dir holding what `engine bench crown --net NET --batch B --export DIR` wrote (the
  engine's weights, inputs and lower bounds), the same weights and inputs are used and two more lines compare:
  {"op": "tightness"}: engine lower - peer lower (positive: the engine is tighter), and {"op": "soundness"}: the
  engine's lower bounds against the margins at random points of the ball (violations must be 0). Without them, nets
  of the same shapes with torch's own random weights (timing only).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

p = argparse.ArgumentParser()
p.add_argument("--dir", default=None, help="directory written by `engine bench crown --net NET --export DIR`")
p.add_argument("--batch", type=int, default=128)
p.add_argument("--n", type=int, default=1 << 26, help="elements for the element-wise ops")
p.add_argument("--eps", type=float, default=0.01)
p.add_argument("--gemm-sizes", default="1024,4096,8192", help="N of the N x N x N SGEMMs")
p.add_argument("--only", default="elementwise,gemm,train,conv2d,crown")
p.add_argument("--device", default="cuda")
args = p.parse_args()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from common import emit  # noqa: E402
import crown_torch  # noqa: E402  (its command line is parsed only when it is run as a script)
from bound_nets import mlp as bound_mlp, cnn as bound_cnn, margins  # noqa: E402

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = torch.device(args.device)
only = set(args.only.split(","))
PEER = "torch_cuda"


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def median_seconds(fn, reps=1, warmup_s=0.3, budget_s=2.0):
    """Seconds per call: the engine's BenchTiming.MedianSeconds(body, device, reps), in Python."""
    def sample():
        for _ in range(reps):
            fn()
        sync()
    # reps is read by sample() when called, so the doubling below applies.
    sync()
    sample()
    while reps < 1 << 20:   # a sample shorter than 0.1 ms doubles its calls, as the engine's does
        t = time.perf_counter()
        sample()
        if time.perf_counter() - t >= 1e-4:
            break
        reps *= 2
    t0 = time.perf_counter()
    i = 0
    while i < 2 or time.perf_counter() - t0 < warmup_s:
        sample()
        i += 1
    times = []
    t0 = time.perf_counter()
    while len(times) < 5 or (len(times) < 100 and time.perf_counter() - t0 < budget_s):
        t = time.perf_counter()
        sample()
        times.append(time.perf_counter() - t)
    times.sort()
    m = len(times) // 2
    return (times[m] if len(times) % 2 else 0.5 * (times[m - 1] + times[m])) / reps


def reps_for(guess_seconds):
    """The engine's BenchTiming.Reps: about a millisecond a sample, 1 to 50 calls."""
    import math
    return 1 if dev.type == "cpu" else int(min(50, max(1, math.ceil(1e-3 / max(guess_seconds, 1e-9)))))


def describe():
    info = {"peer": PEER, "torch": torch.__version__, "device": str(dev)}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update(gpu=props.name, cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    memory_gib=round(props.total_memory / 2**30, 1), tf32=False)
    print(json.dumps(info), file=sys.stderr)


def elementwise():
    n = args.n
    g = torch.Generator(device=dev).manual_seed(1)
    a = torch.rand(n, device=dev, generator=g) * 2 - 1
    b = torch.rand(n, device=dev, generator=g) * 2 - 1
    dst = torch.empty_like(a)
    reps = reps_for(8.0 * n / 2e12)
    copy_s = median_seconds(lambda: dst.copy_(a), reps)
    copy_gbps = 8.0 * n / copy_s / 1e9

    def line(name, seconds, nbytes):
        gbps = nbytes / seconds / 1e9
        emit({"peer": PEER, "op": "elementwise", "name": name, "n": n, "device": str(dev), "ms": float(f"{seconds * 1e3:.6g}"),
              "gbps": round(gbps, 2), "copy_gbps": round(copy_gbps, 2), "ratio": round(gbps / copy_gbps, 4)})

    line("copy", copy_s, 8.0 * n)
    with torch.no_grad():
        for name, inputs, fn in (("clone", 1, lambda: a.clone()), ("relu", 1, lambda: torch.relu(a)),
                                 ("exp", 1, lambda: torch.exp(a)), ("add", 2, lambda: a + b), ("mul", 2, lambda: a * b)):
            line(name, median_seconds(fn, reps), 4.0 * n * (inputs + 1))
    del a, b, dst
    if dev.type == "cuda":
        torch.cuda.empty_cache()


def gemm():
    g = torch.Generator(device=dev).manual_seed(1)
    shapes = [(s, s, s, False) for s in map(int, args.gemm_sizes.split(","))] + [(128, 784, 256, True)]
    for (m, k, n, linear) in shapes:
        a = torch.rand(m, k, device=dev, generator=g) * 2 - 1
        b = torch.rand((n, k) if linear else (k, n), device=dev, generator=g) * 2 - 1
        c = torch.empty(m, n, device=dev)
        bt = b.t() if linear else b
        flop = 2.0 * m * n * k
        s = median_seconds(lambda: torch.mm(a, bt, out=c), reps_for(flop / 5e13))
        rec = {"peer": PEER, "op": "gemm"}
        if linear:
            rec.update(m=m, k=k)
        rec.update(n=n, device=str(dev), gflops=round(flop / s / 1e9, 3))
        emit(rec)
        del a, b, c, bt


def train():
    def mlp():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

    def cnn():
        return nn.Sequential(nn.Conv2d(1, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(1568, 100), nn.ReLU(), nn.Linear(100, 10))

    torch.manual_seed(0)
    for name, make in (("mlp", mlp), ("cnn", cnn)):
        model = make().to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.rand(args.batch, 1, 28, 28, device=dev)
        y = torch.randint(0, 10, (args.batch,), device=dev)
        loss_fn = nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()   # as the engine's step (Training.Step returns loss.Item())

        s = median_seconds(step)
        emit({"peer": PEER, "op": "train", "model": name, "batch": args.batch, "device": str(dev), "ms_per_step": round(s * 1e3, 4)})


def conv2d():
    g = torch.Generator(device=dev).manual_seed(1)
    x = torch.rand(32, 64, 32, 32, device=dev, generator=g) * 2 - 1
    conv = nn.Conv2d(64, 64, 3, 1, 1).to(dev)
    shape = "32x64x32x32,k3p1,64"
    with torch.no_grad():
        s = median_seconds(lambda: conv(x))
    emit({"peer": PEER, "op": "conv2d_forward", "shape": shape, "device": str(dev), "ms": round(s * 1e3, 4)})
    xg = x.clone().requires_grad_(True)

    def both():
        conv.zero_grad(set_to_none=True)
        xg.grad = None
        conv(xg).sum().backward()

    s = median_seconds(both)
    emit({"peer": PEER, "op": "conv2d_forward_backward", "shape": shape, "device": str(dev), "ms": round(s * 1e3, 4)})


def crown():
    batch, eps = args.batch, args.eps
    for name, make in (("mlp", bound_mlp), ("cnn", bound_cnn)):
        model = make().eval()
        weights = os.path.join(args.dir, f"{name}.safetensors") if args.dir else None
        inputs = os.path.join(args.dir, f"{name}_x{batch}.safetensors") if args.dir else None
        same = bool(weights and os.path.exists(weights) and os.path.exists(inputs))
        if same:
            model.load_state_dict(crown_torch.load_safetensors(weights))
            x = crown_torch.load_safetensors(inputs)["x"]
        else:
            print(f"# {name}: no engine export in {args.dir}: torch's own random weights, timing only", file=sys.stderr)
            torch.manual_seed(1)
            model = make().eval()
            x = torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(2))
        model.to(dev)
        layers = list(model)
        x = x.to(dev)
        labels = [i % 10 for i in range(batch)]
        c = margins(labels).to(dev)
        with torch.no_grad():
            lower = crown_torch.crown(layers, x, eps, c)
            s = median_seconds(lambda: crown_torch.crown(layers, x, eps, c))
        emit({"peer": PEER, "op": "crown", "method": "crown", "net": name, "batch": batch, "device": str(dev),
              "same_weights": same, "ms": round(s * 1e3, 3)})
        if not same:
            continue
        bounds = os.path.join(args.dir, f"{name}_crown_b{batch}.json")
        if not os.path.exists(bounds):
            print(f"# {name}: no engine bounds at {bounds}", file=sys.stderr)
            continue
        engine = json.load(open(bounds))
        mine = torch.tensor([float("-inf") if v is None else v for v in engine["lower"]], dtype=torch.float64).reshape(batch, 9)
        diff = mine - lower.double().cpu()
        emit({"peer": PEER, "op": "tightness", "method": "crown", "net": name, "batch": batch, "engine_device": engine.get("device"),
              "max_diff": float(diff.max()), "mean_diff": float(diff.mean()), "min_diff": float(diff.min()),
              "mean_abs_peer": float(lower.double().abs().mean())})
        # Soundness of the engine's (GPU) bounds: a lower bound of C·f(x') over the ball must not exceed C·f(x') at any
        # point of it. Corners and uniform points, float64 forward of the same weights.
        m64 = make().eval().double()
        m64.load_state_dict({k: v.double() for k, v in crown_torch.load_safetensors(weights).items()})
        m64.to(dev)
        x64 = x.double()
        c64 = c.double()
        worst = torch.full((batch, 9), float("inf"), dtype=torch.float64, device=dev)
        gen = torch.Generator(device=dev).manual_seed(3)
        with torch.no_grad():
            for i in range(64):
                if i % 2 == 0:
                    delta = (torch.randint(0, 2, x64.shape, device=dev, generator=gen).double() * 2 - 1) * eps
                else:
                    delta = (torch.rand(x64.shape, device=dev, generator=gen, dtype=torch.float64) * 2 - 1) * eps
                y = m64(x64 + delta)
                worst = torch.minimum(worst, torch.einsum("bso,bo->bs", c64, y))
        worst = worst.cpu()
        violations = int((mine > worst).sum())
        emit({"peer": PEER, "op": "soundness", "method": "crown", "net": name, "batch": batch, "points": 64,
              "violations": violations, "min_gap": float((worst - mine).min())})


describe()
for part, fn in (("elementwise", elementwise), ("gemm", gemm), ("train", train), ("conv2d", conv2d), ("crown", crown)):
    if part in only:
        try:
            fn()
        except Exception as e:  # one failing part must not hide the others' numbers
            print(f"# {part} failed: {type(e).__name__}: {e}", file=sys.stderr)
            emit({"peer": PEER, "op": part, "error": f"{type(e).__name__}: {e}"})
