"""Same-machine peer for certified training and certification (issue 5): auto_LiRPA's IBP and CROWN-IBP training
steps and its IBP / CROWN verification, re-implemented in plain PyTorch (auto_LiRPA itself cannot be installed here),
on the small CNN (1x28x28: conv 8 k4 s2 p1, ReLU, conv 16 k4 s2 p1, ReLU, flatten, fc 100, ReLU, fc 10).

Usage:
  /usr/bin/python3 benchmarks/peers/certified_torch.py [--threads 2] [--dir DIR] [--ops standard,ibp,crown-ibp,verify-ibp,verify-crown]
      [--verify-images 10000] [--verify-batch-crown 1] [--verify-batch-ibp 1000] [--weights FILE.safetensors]
  /usr/bin/python3 benchmarks/peers/certified_torch.py --train-epochs K --method ibp|crown-ibp [--save FILE.safetensors]

Timings (one JSON line each, median and min ms after warm-up, on --threads threads):
- {"op": "cert_train", "method": "standard"|"ibp"|"crown-ibp", ...}: one training step at --batch (256): zero_grad,
  loss, backward, Adam (lr 5e-4). standard: CE(f(x), y). ibp: kappa CE(f(x), y) + (1 - kappa) CE([0, -lb], 0) with
  lb the IBP lower bounds of the margins y_true - y_j (j != y_true) over the L-inf ball of radius --eps (0.1) clipped
  to [0, 1]. crown-ibp: the same with lb = beta CROWN-IBP + (1 - beta) IBP (lower bounds only, as auto_LiRPA's
  simple_training.py). kappa = beta = 0.5 (the cost does not depend on them as long as both terms are formed).
- {"op": "cert_verify", "method": "ibp"|"crown", ...}: verification (no grad) of the first --verify-images test images
  of Fashion-MNIST (--data) at eps 0.1 clipped to [0, 1], in batches of --verify-batch-*: ms for all of them (median
  and min over --verify-repeats passes after one warm-up batch), ms_per_1000 images, the median / min ms of a batch,
  and the verified count (every margin's lower bound > 0).
With --dir DIR (written by `Engine.Benchmarks --export-certified DIR`), the Engine's own work is loaded: the seeded
weights of BoundBenchNets "cnn" (DIR/cnn.safetensors) and training batch (seeded uniform inputs, labels i mod 10) for
the training steps, and its certifiably trained CNN (DIR/cnn_trained.safetensors, CertifiedBench.TrainedCnn) for the
verification, so the work is the same number for number; {"op": "cert_check"} lines compare the results: the peer's
IBP and CROWN-IBP lower bounds and losses against the Engine's (the Engine's bounds carry a float32 rounding margin,
about 1e-5 relative per sum of products, so they are slightly lower), and the verified counts. Without --dir the
network has torch's seeded random weights (or --weights) and the training batch is random; random weights leave
nearly every ReLU unstable at eps 0.1, which makes CROWN verification much slower than for a trained network.

What is computed, as auto_LiRPA 0.5 does for this network (see crown_torch.py for the shared code):
- Margin spec C [B, 9, 10] (auto_LiRPA's construction: eye[y] - eye with the row of y removed), folded into the last
  Linear layer for IBP ((C W) h + C b).
- IBP in centre/radius form; CROWN-IBP = IBP for every intermediate bound, one CROWN backward pass from the spec
  (dense A, conv by conv_transpose2d, the adaptive ReLU lower slope, the chord as upper line), lower bound only;
  gradients flow through both, including the ReLU relaxation's slopes, as in auto_LiRPA.
- CROWN verification: crown_torch.crown (auto_LiRPA's CROWN: intermediate bounds refined by CROWN for the neurons
  IBP leaves unstable, the union over the batch, dense A). auto_LiRPA's default conv mode is 'patches' and it is
  faster there; this peer uses dense A ('matrix' mode). Its cost grows with the batch's union of unstable neurons, so
  the default CROWN batch is 1 (the fastest here), IBP 1000.
- The input box of an image x is [max(x - eps, 0), min(x + eps, 1)] (auto_LiRPA's x_L / x_U with data_min / data_max).

Training recipe (--train-epochs K --method ibp|crown-ibp): the peer recipe of issue 5 on the full Fashion-MNIST
training set (auto_LiRPA simple_training.py style): batch 256, shuffled each epoch (seed --seed), Adam lr 5e-4;
--warmup-epochs (default max(1, round(K / 20))) of natural training (eps 0); then eps ramped linearly per batch from 0
to --eps over --ramp-epochs (default K // 2), kappa from 1 to --kappa-end (0) over the same ramp, and for crown-ibp
beta = 1 - eps / eps_max (CROWN-IBP to IBP, auto_LiRPA's factor; after the ramp only IBP is computed); the learning
rate times 0.1 from epoch --lr-decay-epoch (default round(0.75 K), 0-based) on. Prints one {"op": "train_epoch"}
line per epoch (seconds, final eps / kappa, mean loss) and at the end {"op": "train_result"}: training seconds,
seconds per epoch (ramp epochs and the others separately), and on the 10,000 test images at --eps: clean accuracy,
PGD-20 accuracy (L-inf, step 2.5 eps / 20, one random start, cross-entropy ascent, clipped to [0, 1]; an example
counts as robust only if every iterate is classified correctly), IBP-verified and (unless --no-crown-eval)
CROWN-verified accuracy, with the time of each. --save writes the trained weights as safetensors (nn.Sequential
names, the Engine's Module.LoadWeights reads them), so the Engine can certify the very same network.
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import setup_threads, emit, blas_info  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch", type=int, default=256, help="training batch")
p.add_argument("--eps", type=float, default=0.1, help="L-inf radius (inputs in [0, 1])")
p.add_argument("--ops", default="standard,ibp,crown-ibp,verify-ibp,verify-crown")
p.add_argument("--iters", type=int, default=50, help="most timed training steps per op")
p.add_argument("--budget", type=float, default=10.0, help="seconds of timed steps per op (at least 5 steps)")
p.add_argument("--dir", default=None, help="directory written by Engine.Benchmarks --export-certified")
p.add_argument("--weights", default=None, help="safetensors weights of the CNN (nn.Sequential names)")
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="directory of the four Fashion-MNIST IDX files")
p.add_argument("--verify-images", type=int, default=10000, help="test images verified (the first N)")
p.add_argument("--verify-batch-crown", type=int, default=1)
p.add_argument("--verify-batch-ibp", type=int, default=1000)
p.add_argument("--verify-repeats", type=int, default=1, help="timed passes over the verified images")
p.add_argument("--train-epochs", type=int, default=0, help="run the training recipe for K epochs instead of the timings")
p.add_argument("--method", choices=["ibp", "crown-ibp"], default="crown-ibp")
p.add_argument("--warmup-epochs", type=int, default=None)
p.add_argument("--ramp-epochs", type=int, default=None)
p.add_argument("--lr-decay-epoch", type=int, default=None)
p.add_argument("--kappa-end", type=float, default=0.0)
p.add_argument("--lr", type=float, default=5e-4)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--no-crown-eval", action="store_true", help="skip CROWN verification after training")
p.add_argument("--train-images", type=int, default=0, help="train on the first N training images only (0: all; for quick checks)")
p.add_argument("--test-images", type=int, default=0, help="evaluate on the first N test images only (0: all)")
p.add_argument("--model", choices=["cnn-small", "cnn"], default="cnn-small",
               help="cnn-small: conv 8, conv 16, fc 100 (the Engine's --model cnn-small); cnn: conv 16, conv 32, fc 100 "
                    "(Wong & Kolter's small CNN, auto_LiRPA's MNIST example model; the Engine's --model cnn)")
p.add_argument("--save", default=None, help="write the trained weights here (safetensors)")
args = p.parse_args()
if args.threads < 1 or args.batch < 1 or args.verify_images < 1 or args.verify_batch_crown < 1 or args.verify_batch_ibp < 1 or args.verify_repeats < 1:
    sys.exit("certified_torch.py: --threads, --batch, --verify-images, --verify-repeats and the verify batches must be >= 1")
if not (args.eps > 0):
    sys.exit("certified_torch.py: --eps must be > 0")
setup_threads(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)

import crown_torch  # noqa: E402  (its command line is parsed only when it is run as a script)
from bound_nets import cnn  # noqa: E402

PEER = "certified_torch"


# ---------------------------------------------------------------------------------------------------------- data

def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    if magic >> 8 != 0x08 or dims not in (1, 3):
        sys.exit(f"certified_torch.py: {path} is not an IDX file of unsigned bytes (magic {magic:#010x})")
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    if len(data) != 4 + 4 * dims + int(np.prod(shape)):
        sys.exit(f"certified_torch.py: {path} is truncated or has trailing data (shape {shape})")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_split(directory, prefix):
    def find(name):
        for cand in (name, name + ".gz"):
            path = os.path.join(directory, cand)
            if os.path.exists(path):
                return path
        sys.exit(f"certified_torch.py: neither {name} nor {name}.gz is in '{directory}' "
                 "(apt-get install dataset-fashion-mnist, or --data DIR)")
    images = read_idx(find(f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        sys.exit(f"certified_torch.py: {prefix} images {images.shape} and labels {labels.shape} are not N 28x28 images and N labels")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return x, torch.from_numpy(labels.astype(np.int64))


def save_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        raw = t.detach().contiguous().float().cpu().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ------------------------------------------------------------------------------------------------------- bounds

def spec(labels, classes=10):
    """auto_LiRPA's margin spec C [B, classes - 1, classes]: row r is e_y - e_j for the r-th j != y."""
    eye = torch.eye(classes)
    c = eye[labels].unsqueeze(1) - eye.unsqueeze(0)
    keep = labels.unsqueeze(1) != torch.arange(classes).unsqueeze(0)
    return c[keep].view(labels.shape[0], classes - 1, classes)


def input_box(x, eps):
    """Centre and radius of [max(x - eps, 0), min(x + eps, 1)]."""
    lo, hi = (x - eps).clamp(min=0.0), (x + eps).clamp(max=1.0)
    return (lo + hi) / 2, (hi - lo) / 2


def ibp_boxes(layers, centre, radius):
    """boxes[k] = IBP bounds of the input of layers[k], for k = 0 .. len(layers) - 1."""
    boxes = [(centre - radius, centre + radius)]
    for m in layers[:-1]:
        boxes.append(crown_torch.interval(m, *boxes[-1]))
    return boxes


def ibp_margins(layers, boxes, c):
    """IBP lower bounds of C f(x) [B, S], C folded into the last Linear layer (auto_LiRPA's BoundLinear with C)."""
    last = layers[-1]
    lo, hi = boxes[-1]
    w = c.matmul(last.weight)                      # [B, S, in]
    b = c.matmul(last.bias)                        # [B, S]
    mid, rad = ((hi + lo) / 2).unsqueeze(-1), ((hi - lo) / 2).unsqueeze(-1)
    return (w.matmul(mid) - w.abs().matmul(rad)).squeeze(-1) + b


def crown_ibp_margins(layers, boxes, c, centre, radius):
    """CROWN-IBP lower bounds [B, S]: one CROWN backward pass from C over the IBP intermediate boxes."""
    return crown_torch.backward(layers, len(layers) - 1, c.transpose(0, 1), boxes, centre, radius).t()


def robust_ce(lb):
    """Cross-entropy over the logits [0, -lb_1, ..., -lb_S] with target 0: the worst case CE bound."""
    padded = torch.cat((torch.zeros(lb.shape[0], 1, dtype=lb.dtype), -lb), dim=1)
    return F.cross_entropy(padded, torch.zeros(lb.shape[0], dtype=torch.int64))


def certified_loss(model, layers, x, y, c, eps, kappa, beta):
    """kappa CE(f(x), y) + (1 - kappa) robust CE; lb = beta CROWN-IBP + (1 - beta) IBP (beta = 0: IBP only)."""
    clean = F.cross_entropy(model(x), y)
    if eps <= 0 or kappa >= 1:
        return clean
    centre, radius = input_box(x, eps)
    boxes = ibp_boxes(layers, centre, radius)
    lb = ibp_margins(layers, boxes, c)
    if beta >= 1e-5:
        lb = beta * crown_ibp_margins(layers, boxes, c, centre, radius) + (1 - beta) * lb
    return kappa * clean + (1 - kappa) * robust_ce(lb)


def verify_lower(layers, x, labels, eps, method):
    centre, radius = input_box(x, eps)
    c = spec(labels)
    if method == "ibp":
        return ibp_margins(layers, ibp_boxes(layers, centre, radius), c)
    return crown_torch.crown(layers, centre, radius, c)


# ------------------------------------------------------------------------------------------------------- timing

def timings_ms(fn, warmup=5, budget_s=None, iters=None):
    """crown_torch's timer with this script's defaults: 5 warm-up calls, at least 5 timed calls."""
    return crown_torch.timings_ms(fn, args.iters if iters is None else iters, args.budget if budget_s is None else budget_s,
                                  warmup=warmup, min_calls=5)


def make_model(exported=None):
    """The CNN: --weights if given, else DIR/exported with --dir, else torch's seeded random initialisation."""
    model = cnn() if args.model == "cnn-small" else nn.Sequential(
        nn.Conv2d(1, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(), nn.Flatten(),
        nn.Linear(1568, 100), nn.ReLU(), nn.Linear(100, 10))
    path = args.weights or (os.path.join(args.dir, exported) if args.dir and exported else None)
    if path:
        model.load_state_dict(crown_torch.load_safetensors(path))
    return model


def time_training(ops, export):
    if export is not None:
        x, y = export["x"], export["y"]
    else:
        x = torch.rand(args.batch, 1, 28, 28)
        y = torch.arange(args.batch) % 10
    c = spec(y)
    settings = {"standard": (1.0, 0.0), "ibp": (0.5, 0.0), "crown-ibp": (0.5, 0.5)}
    for method in ("standard", "ibp", "crown-ibp"):
        if method not in ops:
            continue
        kappa, beta = settings[method]
        # A fresh network and optimiser per method, as the Engine's benchmark (one GlobalSetup per case).
        model = make_model("cnn.safetensors")
        layers = list(model)
        opt = torch.optim.Adam(model.parameters(), lr=5e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = certified_loss(model, layers, x, y, c, args.eps, kappa, beta)
            loss.backward()
            opt.step()

        if export is not None and method != "standard":
            # The Engine's bounds and loss are for the exported weights, before any step.
            with torch.no_grad():
                centre, radius = input_box(x, args.eps)
                boxes = ibp_boxes(layers, centre, radius)
                lb = ibp_margins(layers, boxes, c)
                if method == "crown-ibp":
                    lb = 0.5 * crown_ibp_margins(layers, boxes, c, centre, radius) + 0.5 * lb
                loss = certified_loss(model, layers, x, y, c, args.eps, kappa, beta)
            diff = (export["ibp_lower" if method == "ibp" else "crown_ibp_lower"] - lb).double()
            emit({"peer": PEER, "op": "cert_check", "what": f"{method} lower bounds and loss, same weights and batch",
                  "engine_minus_peer_max": float(diff.max()), "engine_minus_peer_mean": float(diff.mean()),
                  "engine_minus_peer_min": float(diff.min()), "mean_abs_peer": float(lb.abs().mean()),
                  "engine_loss": export["loss"][method], "peer_loss": float(loss)})
        median, best, n = timings_ms(step)
        emit({"peer": PEER, "op": "cert_train", "method": method, "net": args.model, "batch": args.batch,
              "threads": args.threads, "eps": args.eps, "ms": round(median, 3), "min_ms": round(best, 3), "steps": n})


def time_verification(ops, model, export):
    layers = list(model)
    x_all, y_all = load_split(args.data, "t10k")
    n = min(args.verify_images, x_all.shape[0])
    x_all, y_all = x_all[:n], y_all[:n]
    for method in ("ibp", "crown"):
        if f"verify-{method}" not in ops:
            continue
        batch = args.verify_batch_crown if method == "crown" else args.verify_batch_ibp
        passes, per_batch, verified = [], [], 0
        with torch.no_grad():
            verify_lower(layers, x_all[:batch], y_all[:batch], args.eps, method)  # warm-up
            for rep in range(args.verify_repeats):
                start = time.perf_counter()
                for i in range(0, n, batch):
                    t = time.perf_counter()
                    lb = verify_lower(layers, x_all[i:i + batch], y_all[i:i + batch], args.eps, method)
                    per_batch.append((time.perf_counter() - t) * 1e3)
                    if rep == 0:
                        verified += int((lb > 0).all(dim=1).sum())
                passes.append((time.perf_counter() - start) * 1e3)
        per_batch.sort()
        passes.sort()
        median = passes[len(passes) // 2] if len(passes) % 2 else 0.5 * (passes[len(passes) // 2 - 1] + passes[len(passes) // 2])
        emit({"peer": PEER, "op": "cert_verify", "method": method, "net": args.model, "images": n, "batch": batch,
              "threads": args.threads, "eps": args.eps, "ms": round(median, 1), "min_ms": round(passes[0], 1),
              "passes": len(passes), "ms_per_1000": round(median * 1000 / n, 2),
              "batch_median_ms": round(per_batch[len(per_batch) // 2], 3), "batch_min_ms": round(per_batch[0], 3),
              "verified": verified})
        if export is not None and str(n) in export.get("verified", {}):
            emit({"peer": PEER, "op": "cert_check", "what": f"{method} verified count of the first {n} test images",
                  "engine_verified": export["verified"][str(n)][method], "peer_verified": verified})


def load_export():
    if args.dir is None:
        return None
    doc = json.load(open(os.path.join(args.dir, "engine_certified.json")))
    t = crown_torch.load_safetensors(os.path.join(args.dir, "batch.safetensors"))
    if abs(float(doc["eps"]) - args.eps) > 1e-7:
        sys.exit(f"certified_torch.py: the export is for eps {doc['eps']}, not --eps {args.eps}")
    if t["x"].shape[0] != args.batch:
        sys.exit(f"certified_torch.py: the export's batch is {t['x'].shape[0]}, not --batch {args.batch}")
    return {"x": t["x"], "y": t["y"].round().to(torch.int64), "ibp_lower": t["ibp_lower"],
            "crown_ibp_lower": t["crown_ibp_lower"], "loss": doc["loss"], "verified": doc.get("verified", {})}


# ------------------------------------------------------------------------------------------------------ training

def pgd_robust(model, x, y, eps, steps=20):
    """Per example: True when x and every PGD iterate (L-inf, random start, sign steps of 2.5 eps / steps on the
    cross-entropy, projected onto the clipped ball) are classified correctly."""
    lo, hi = (x - eps).clamp(min=0.0), (x + eps).clamp(max=1.0)
    step = 2.5 * eps / steps
    with torch.no_grad():
        robust = model(x).argmax(1) == y
    adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(lo, hi)
    for _ in range(steps + 1):
        adv.requires_grad_(True)
        logits = model(adv)
        robust &= (logits.argmax(1) == y).detach()
        grad, = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), adv)
        adv = torch.min(torch.max(adv.detach() + step * grad.sign(), lo), hi)
    return robust


def evaluate(model, x, y, eps, crown_eval):
    layers = list(model)
    res = {}
    t = time.perf_counter()
    with torch.no_grad():
        res["clean"] = float(sum(int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(x), 1000))) / len(x)
    res["clean_seconds"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    res["pgd20"] = float(sum(int(pgd_robust(model, x[i:i + 1000], y[i:i + 1000], eps).sum()) for i in range(0, len(x), 1000))) / len(x)
    res["pgd20_seconds"] = round(time.perf_counter() - t, 2)
    for method, batch, on in (("ibp", args.verify_batch_ibp, True), ("crown", args.verify_batch_crown, crown_eval)):
        if not on:
            continue
        t = time.perf_counter()
        with torch.no_grad():
            v = sum(int((verify_lower(layers, x[i:i + batch], y[i:i + batch], eps, method) > 0).all(1).sum())
                    for i in range(0, len(x), batch))
        res[f"{method}_verified"] = v / len(x)
        res[f"{method}_verified_seconds"] = round(time.perf_counter() - t, 2)
    return res


def train_recipe():
    k = args.train_epochs
    warm = args.warmup_epochs if args.warmup_epochs is not None else max(1, round(k / 20))
    ramp = args.ramp_epochs if args.ramp_epochs is not None else max(1, k // 2)
    decay = args.lr_decay_epoch if args.lr_decay_epoch is not None else round(0.75 * k)
    if warm < 0 or ramp < 1 or decay < 0:
        sys.exit("certified_torch.py: --warmup-epochs >= 0, --ramp-epochs >= 1, --lr-decay-epoch >= 0")
    x_train, y_train = load_split(args.data, "train")
    x_test, y_test = load_split(args.data, "t10k")
    if args.train_images > 0:
        x_train, y_train = x_train[:args.train_images], y_train[:args.train_images]
    if args.test_images > 0:
        x_test, y_test = x_test[:args.test_images], y_test[:args.test_images]
    model = make_model()
    layers = list(model)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(args.seed)
    n = x_train.shape[0]
    batches = (n + args.batch - 1) // args.batch
    ramp_steps = ramp * batches
    emit({"peer": PEER, "op": "train_config", "method": args.method, "epochs": k, "warmup_epochs": warm,
          "ramp_epochs": ramp, "lr_decay_epoch": decay, "lr": args.lr, "eps": args.eps, "kappa_end": args.kappa_end,
          "batch": args.batch, "threads": args.threads, "train_images": n, "torch": torch.__version__})
    total, ramp_seconds, other_seconds, ramp_count = 0.0, 0.0, 0.0, 0
    for epoch in range(k):
        for group in opt.param_groups:
            group["lr"] = args.lr * (0.1 if epoch >= decay else 1.0)
        perm = torch.randperm(n, generator=g)
        loss_sum, frac = 0.0, 0.0
        in_ramp = False
        t = time.perf_counter()
        for i in range(batches):
            idx = perm[i * args.batch:(i + 1) * args.batch]
            x, y = x_train[idx], y_train[idx]
            if epoch >= warm:
                done = (epoch - warm) * batches + i + 1
                frac = min(1.0, done / ramp_steps)
                in_ramp = in_ramp or done <= ramp_steps
            eps = args.eps * frac
            kappa = 1.0 - frac * (1.0 - args.kappa_end)
            beta = 1.0 - frac if args.method == "crown-ibp" else 0.0
            opt.zero_grad(set_to_none=True)
            loss = certified_loss(model, layers, x, y, spec(y), eps, kappa, beta)
            loss.backward()
            opt.step()
            loss_sum += float(loss) * len(idx)
        seconds = time.perf_counter() - t
        total += seconds
        if in_ramp:
            ramp_seconds += seconds
            ramp_count += 1
        else:
            other_seconds += seconds
        emit({"peer": PEER, "op": "train_epoch", "method": args.method, "epoch": epoch + 1, "seconds": round(seconds, 2),
              "eps": round(args.eps * frac, 5), "kappa": round(1.0 - frac * (1.0 - args.kappa_end), 4),
              "lr": opt.param_groups[0]["lr"], "loss": round(loss_sum / n, 4)})
    if args.save:
        save_safetensors(args.save, model.state_dict())
    res = evaluate(model, x_test, y_test, args.eps, not args.no_crown_eval)
    emit({"peer": PEER, "op": "train_result", "method": args.method, "epochs": k, "threads": args.threads,
          "train_images": n, "test_images": len(x_test),
          "train_seconds": round(total, 1),
          "seconds_per_ramp_epoch": round(ramp_seconds / ramp_count, 2) if ramp_count else None,
          "seconds_per_other_epoch": round(other_seconds / (k - ramp_count), 2) if k > ramp_count else None,
          "eps": args.eps, **res})


def main():
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, BLAS: {blas_info()}", file=sys.stderr)
    if args.train_epochs > 0:
        train_recipe()
        return
    ops = set(args.ops.split(","))
    unknown = ops - {"standard", "ibp", "crown-ibp", "verify-ibp", "verify-crown"}
    if unknown:
        sys.exit(f"certified_torch.py: unknown --ops {sorted(unknown)}")
    export = load_export()
    time_training(ops, export)
    if ops & {"verify-ibp", "verify-crown"}:
        time_verification(ops, make_model("cnn_trained.safetensors"), export)


if __name__ == "__main__":
    main()
