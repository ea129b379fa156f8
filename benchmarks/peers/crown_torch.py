"""Same-weights CROWN peer (issue 3): auto_LiRPA's IBP and CROWN, re-implemented in plain PyTorch, on the Engine's own
bound benchmark networks, for the timing ratio and, above all, the tightness comparison.

auto_LiRPA itself cannot be installed here, and bounds_autolirpa.py can only build the same shapes with torch's own
weights; this script loads the Engine's weights instead, so the bounds are comparable number for number.

Usage: python3 benchmarks/peers/crown_torch.py --dir DIR [--threads 1] [--iters 10] [--no-time] [--device cpu|cuda]
where DIR was written by
  dotnet run -c Release --project benchmarks/Engine.Benchmarks -- --export-bound-nets DIR
(DIR/{mlp,cnn}.safetensors: the modules' state dicts, PyTorch nn.Sequential names; DIR/inputs.safetensors: "x1",
"x32"; DIR/engine_bounds.json: the Engine's margin lower bounds).

What is computed, as auto_LiRPA does it for sequential Linear / Conv2d / ReLU / Flatten networks with its defaults:
- IBP in centre/radius form: centre = layer(mid), radius = |W| applied to the radius; ReLU clamps both ends; the
  spec C is folded into the last Linear layer (C·W, C·b) as auto_LiRPA's BoundLinear does for the output node.
- CROWN (backward mode, dense A of shape [rows, batch, ...]; conv backward by conv_transpose2d, bias terms
  (A.sum over space)·b): the pre-activation bounds of each ReLU after the first affine layer (where IBP is exact and
  used, check_IBP_first_linear) are refined by CROWN for the neurons that the reference IBP bounds (from the refined
  bounds before) leave unstable in any example of the batch (sparse_intermediate_bounds; the union over the batch, the
  full layer when more than 90% are, minimum_sparsity), scattered into every example and intersected with IBP.
  ReLU upper line = chord u/(u-l)·(x - l), lower line = slope 1 if u >= -l else 0 through 0, stable neurons exact.
  L-inf concretisation: A·centre - |A|·eps.
  Convolutions run in auto_LiRPA's 'matrix' mode (dense A); auto_LiRPA's default for convolutions is 'patches' mode,
  which is much cheaper there, so the CNN timings of this peer are those of the dense algorithm, not of auto_LiRPA's
  default configuration. The union over the batch makes batch-32 CROWN bound every neuron that is unstable in any
  example, for every example (auto_LiRPA's cost; the Engine bounds each example's own unstable neurons).
The networks: "mlp" Flatten, Linear 784-256, ReLU, Linear 256-256, ReLU, Linear 256-10; "cnn" Conv 1-8 k4 s2 p1, ReLU,
Conv 8-16 k4 s2 p1, ReLU, Flatten, Linear 784-100, ReLU, Linear 100-10 (BoundBenchNets.cs). L-inf eps from
engine_bounds.json (0.01, no clipping), margin spec of labels i mod 10, lower bounds only (as the Engine's timings).

Prints one JSON line per measurement in the format of bounds_autolirpa.py (median and min ms after warm-up):
  {"peer": "crown_torch", "op": "crown", "method": ..., "net": ..., "batch": ..., "threads": ..., "ms": ..., "min_ms": ...}
and one per comparison with the Engine's bounds (diff = engine lower - peer lower; positive: the Engine is tighter).
The Engine's bounds carry a float32 rounding margin (rho = 1e-5 times the sum of absolute terms of every sum of products,
compounded through the layers for IBP), which shows as a negative diff; the *_no_margin fields compare the Engine's
bounds computed without it, i.e. the algorithms alone (float32 noise of both sides):
  {"peer": "crown_torch", "op": "tightness", "method": ..., "net": ..., "batch": ..., "max_diff": ..., "mean_diff": ...,
   "min_diff": ..., "max_abs_diff_no_margin": ..., "mean_diff_no_margin": ..., "mean_abs_peer": ...}
then a readable table on stderr.
"""
import argparse
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import setup_threads, emit  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--dir", required=True, help="directory written by Engine.Benchmarks --export-bound-nets")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--iters", type=int, default=10)
p.add_argument("--no-time", action="store_true", help="compare the bounds only")
p.add_argument("--device", default="cpu", help="torch device of the peer (cpu, cuda, cuda:N)")
# Imported as a module (benchmarks/peers/gpu_torch.py reuses the algorithm), the importer owns the command line.
args = p.parse_args() if __name__ == "__main__" else None
if args is not None:
    setup_threads(args.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

if args is not None:
    torch.set_num_threads(args.threads)


def load_safetensors(path):
    """The tensors of a safetensors file: 8-byte little-endian header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name} has dtype {info['dtype']}, expected F32")
        begin, end = info["data_offsets"]
        # torch.frombuffer rather than numpy, which a CUDA machine's torch install may lack; little-endian hosts only.
        raw = bytearray(data[8 + n + begin:8 + n + end])
        out[name] = torch.frombuffer(raw, dtype=torch.float32).reshape(info["shape"]).clone()
    return out


from bound_nets import mlp, cnn, margins  # noqa: E402,F401


def is_affine(m):
    return isinstance(m, (nn.Linear, nn.Conv2d))


def affine(m, x):
    return m(x)


def affine_abs(m, r):
    """|W| applied to a radius (no bias)."""
    if isinstance(m, nn.Linear):
        return F.linear(r, m.weight.abs())
    return F.conv2d(r, m.weight.abs(), None, m.stride, m.padding, m.dilation, m.groups)


def interval(m, lo, hi):
    """IBP of one layer in centre/radius form (auto_LiRPA's interval_propagate)."""
    if is_affine(m):
        mid, rad = (hi + lo) / 2, (hi - lo) / 2
        c, d = affine(m, mid), affine_abs(m, rad)
        return c - d, c + d
    if isinstance(m, nn.ReLU):
        return lo.clamp(min=0), hi.clamp(min=0)
    if isinstance(m, nn.Flatten):
        return m(lo), m(hi)
    raise NotImplementedError(type(m).__name__)


def ibp(layers, x, eps, c):
    lo, hi = x - eps, x + eps
    for m in layers[:-1]:
        lo, hi = interval(m, lo, hi)
    last = layers[-1]
    # The spec folded into the last Linear layer: (C·W) h + C·b.
    w = c.matmul(last.weight)                       # [B, S, in]
    b = c.matmul(last.bias)                          # [B, S]
    mid, rad = ((hi + lo) / 2).unsqueeze(-1), ((hi - lo) / 2).unsqueeze(-1)
    return (w.matmul(mid) - w.abs().matmul(rad)).squeeze(-1) + b


class ClampedMultiply(torch.autograd.Function):
    """
    The ReLU step of a lower-bound backward pass: a+ d_pos + a- d_neg and the bias sum over the neurons of a- b_neg,
    for a [R, B, ...] and d_pos, d_neg, b_neg [B, ...], with a hand-written backward that keeps only a: auto_LiRPA's
    ClampedMultiplication (operators/clampmult.py), which its CROWN-IBP training runs through. Same values as the
    plain expression; cheaper gradients than torch's autograd of it.
    """

    @staticmethod
    def forward(ctx, a, d_pos, d_neg, b_neg):
        ctx.save_for_backward(a, d_pos, d_neg, b_neg)
        pos, neg = a.clamp(min=0), a.clamp(max=0)
        return pos * d_pos + neg * d_neg, (neg * b_neg).flatten(2).sum(2)

    @staticmethod
    def backward(ctx, g_a, g_bias):
        a, d_pos, d_neg, b_neg = ctx.saved_tensors
        pos_mask = (a >= 0).to(a.dtype)
        g_pos, g_neg = pos_mask * g_a, (1 - pos_mask) * g_a
        g_bias_neg = (1 - pos_mask) * g_bias.view(*g_bias.shape, *([1] * (a.dim() - 2)))
        need = ctx.needs_input_grad
        return (d_pos * g_pos + d_neg * g_neg + b_neg * g_bias_neg if need[0] else None,
                (a * g_pos).sum(0) if need[1] else None,
                (a * g_neg).sum(0) if need[2] else None,
                (a * g_bias_neg).sum(0) if need[3] else None)


def backward(layers, end, a, boxes, x, eps):
    """
    CROWN's lower bound of a · (output of layers[end]) over the L-inf ball, for every row of a ([R, B, ...]):
    back-substitution through layers[end], ..., layers[0]; boxes[k] holds the bounds of the input of layers[k].
    eps is a float, or a tensor shaped like x for a box with per-element radius (x then is the box's centre).
    Returns [R, B].
    """
    bias = torch.zeros(a.shape[:2], device=a.device)
    for k in range(end, -1, -1):
        m = layers[k]
        if isinstance(m, nn.Linear):
            bias = bias + a.matmul(m.bias)
            a = a.matmul(m.weight)
        elif isinstance(m, nn.Conv2d):
            r, b = a.shape[:2]
            bias = bias + (a.sum((3, 4)) * m.bias).sum(2)
            in_shape = boxes[k][0].shape[1:]
            out_h, out_w = a.shape[3:]
            kh, kw = m.kernel_size
            pad = (in_shape[1] - ((out_h - 1) * m.stride[0] - 2 * m.padding[0] + kh),
                   in_shape[2] - ((out_w - 1) * m.stride[1] - 2 * m.padding[1] + kw))
            a = F.conv_transpose2d(a.reshape(r * b, *a.shape[2:]), m.weight, None, m.stride, m.padding, pad,
                                   m.groups, m.dilation).reshape(r, b, *in_shape)
        elif isinstance(m, nn.Flatten):
            a = a.reshape(a.shape[0], a.shape[1], *boxes[k][0].shape[1:])
        elif isinstance(m, nn.ReLU):
            lo, hi = boxes[k]
            unstable = (lo < 0) & (hi > 0)
            active = (lo >= 0).to(a.dtype)
            upper_d = torch.where(unstable, hi / torch.where(unstable, hi - lo, torch.ones_like(hi)), active)
            upper_b = torch.where(unstable, -lo * upper_d, torch.zeros_like(lo))
            lower_d = torch.where(unstable, (hi >= -lo).to(a.dtype), active)
            a, relu_bias = ClampedMultiply.apply(a, lower_d, upper_d, upper_b)
            bias = bias + relu_bias
        else:
            raise NotImplementedError(type(m).__name__)
    a = a.flatten(2)                                  # [R, B, n]
    x0 = x.flatten(1)                                 # [B, n]
    if torch.is_tensor(eps):                          # a per-element radius [B, ...] (a box clipped to the domain)
        return (a * x0).sum(2) - (a.abs() * eps.flatten(1)).sum(2) + bias
    return (a * x0).sum(2) - eps * a.abs().sum(2) + bias


def crown(layers, x, eps, c):
    boxes = [(x - eps, x + eps)]                      # bounds of the input of layers[k]
    first_affine = next(k for k, m in enumerate(layers) if is_affine(m))
    for k, m in enumerate(layers[:-1]):
        lo, hi = interval(m, *boxes[k])
        if is_affine(m) and k > first_affine and isinstance(layers[k + 1], nn.ReLU):
            shape = lo.shape[1:]
            dim = lo[0].numel()
            unstable = ((lo < 0) & (hi > 0)).flatten(1).any(0)   # union over the batch
            idx = unstable.nonzero().flatten()
            if idx.numel() > 0:
                if idx.numel() > 0.9 * dim:
                    idx = torch.arange(dim, device=x.device)
                rows = idx.numel()
                # Lower rows +e_i and upper rows -e_i in one pass: [2R, B, ...].
                a = torch.zeros(2 * rows, x.shape[0], dim, device=x.device)
                r = torch.arange(rows, device=x.device)
                a[r, :, idx] = 1.0
                a[rows + r, :, idx] = -1.0
                lb = backward(layers, k, a.reshape(2 * rows, x.shape[0], *shape), boxes, x, eps)   # [2R, B]
                lo_f, hi_f = lo.flatten(1).clone(), hi.flatten(1).clone()
                lo_f[:, idx] = torch.maximum(lo_f[:, idx], lb[:rows].t())
                hi_f[:, idx] = torch.minimum(hi_f[:, idx], -lb[rows:].t())
                lo, hi = lo_f.reshape(lo.shape), hi_f.reshape(hi.shape)
        boxes.append((lo, hi))
    return backward(layers, len(layers) - 1, c.transpose(0, 1), boxes, x, eps).t()   # [B, S]


def timings_ms(fn, iters, budget_s=5.0, warmup=2, min_calls=3):
    """Median ms, min ms and the number of timed calls of fn after warm-up: warmup calls (1 for a call over a
    second), then up to iters calls within about budget_s seconds, at least min_calls. On a GPU each call ends with a
    synchronize, inside its time. certified_torch.py times with this too."""
    if args is not None and args.device != "cpu":
        inner = fn

        def fn():
            inner()
            torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if time.perf_counter() - t < 1.0:
        for _ in range(warmup - 1):
            fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_calls or (len(times) < iters and time.perf_counter() - start < budget_s):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    mid = len(times) // 2
    median = times[mid] if len(times) % 2 else 0.5 * (times[mid - 1] + times[mid])
    return median, times[0], len(times)


def main():
    engine = json.load(open(os.path.join(args.dir, "engine_bounds.json")))
    eps = float(engine["eps"])
    inputs = load_safetensors(os.path.join(args.dir, "inputs.safetensors"))
    methods = {"ibp": ibp, "crown": crown}
    table = []
    for name, make in (("mlp", mlp), ("cnn", cnn)):
        model = make().eval()
        model.load_state_dict(load_safetensors(os.path.join(args.dir, f"{name}.safetensors")))
        model.to(args.device)
        layers = list(model)
        for batch in (1, 32):
            x = inputs[f"x{batch}"].to(args.device)
            c = margins([i % 10 for i in range(batch)]).to(args.device)
            for method, fn in methods.items():
                with torch.no_grad():
                    lower = fn(layers, x, eps, c)
                    median, best, _ = (float("nan"),) * 3 if args.no_time else timings_ms(lambda: fn(layers, x, eps, c), iters=args.iters)
                if not args.no_time:
                    emit({"peer": "crown_torch", "op": "crown", "method": method, "net": name, "batch": batch,
                          "threads": args.threads, **({"device": args.device} if args.device != "cpu" else {}),
                          "ms": round(median, 3), "min_ms": round(best, 3)})
                lower = lower.cpu()
                mine = torch.tensor(engine["lower"][name][str(batch)][method], dtype=torch.float64)
                bare = torch.tensor(engine["lower_no_margin"][name][str(batch)][method], dtype=torch.float64)
                diff, diff_bare = mine - lower.double(), bare - lower.double()
                record = {"peer": "crown_torch", "op": "tightness", "method": method, "net": name, "batch": batch,
                          "max_diff": float(diff.max()), "mean_diff": float(diff.mean()), "min_diff": float(diff.min()),
                          "max_abs_diff_no_margin": float(diff_bare.abs().max()),
                          "mean_diff_no_margin": float(diff_bare.mean()),
                          "mean_abs_peer": float(lower.double().abs().mean())}
                emit(record)
                table.append((record, median, best))
    print("| net | batch | method | peer ms (median / min) | engine - peer lower: max | mean | min "
          "| without the Engine's rounding margin: max abs | mean | mean abs peer bound |", file=sys.stderr)
    print("|---|---|---|---|---|---|---|---|---|---|", file=sys.stderr)
    for r, median, best in table:
        print(f"| {r['net']} | {r['batch']} | {r['method']} | {median:.3f} / {best:.3f} | {r['max_diff']:.3g} | "
              f"{r['mean_diff']:.3g} | {r['min_diff']:.3g} | {r['max_abs_diff_no_margin']:.3g} | "
              f"{r['mean_diff_no_margin']:.3g} | {r['mean_abs_peer']:.3g} |", file=sys.stderr)


if __name__ == "__main__":
    main()
