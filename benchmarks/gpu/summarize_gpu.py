#!/usr/bin/env python3
"""The GPU run's table: the engine's `bench ... --device cuda` lines against gpu_torch.py's, and the issue-4 targets.

Usage: summarize_gpu.py engine_bench.jsonl torch_bench.jsonl
Targets (issue 4, each a ratio measured in the same run): element-wise ops >= 80% of the device's copy bandwidth;
SGEMM >= 95% of cuBLAS called directly; MLP / CNN training step and CROWN at batch 128 at least as fast as PyTorch.
"""
import json
import sys


def read(path):
    rows = []
    try:
        for line in open(path):
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    except OSError as e:
        print(f"# {path}: {e}")
    return rows


def find(rows, **kv):
    for r in rows:
        if all(r.get(k) == v for k, v in kv.items()):
            return r
    return None


def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def verdict(ok):
    return "-" if ok is None else ("MET" if ok else "MISSED")


def main(engine_path, torch_path):
    eng, tor = read(engine_path), read(torch_path)
    print("## element-wise (GB/s; ratio = op / the same device's copy; target engine ratio >= 0.80)")
    print("| op | engine GB/s | engine ratio | torch GB/s | torch ratio | target |")
    print("|---|---|---|---|---|---|")
    for name in ("copy", "clone", "relu", "exp", "add", "mul"):
        e, t = find(eng, op="elementwise", name=name), find(tor, op="elementwise", name=name)
        ok = None if e is None or name == "copy" else e["ratio"] >= 0.8
        print(f"| {name} | {fmt(e and e['gbps'])} | {fmt(e and e['ratio'], '.3f')} | {fmt(t and t['gbps'])} | "
              f"{fmt(t and t['ratio'], '.3f')} | {verdict(ok)} |")
    print()
    print("## SGEMM (GFLOP/s, TF32 off; ratio = engine / cuBLAS direct; target >= 0.95)")
    print("| shape | engine | cuBLAS direct | ratio | torch | target |")
    print("|---|---|---|---|---|---|")
    for e in (r for r in eng if r.get("op") == "gemm"):
        n = e["n"]; m = e.get("m", n); k = e.get("k", n)
        t = next((r for r in tor if r.get("op") == "gemm" and r.get("n") == n and r.get("m", n) == m and r.get("k", n) == k), None)
        ratio = e.get("ratio")
        print(f"| {m}x{k}x{n} | {fmt(e['gflops'], '.0f')} | {fmt(e.get('cublas_gflops'), '.0f')} | {fmt(ratio, '.3f')} | "
              f"{fmt(t and t['gflops'], '.0f')} | {verdict(None if ratio is None else ratio >= 0.95)} |")
    print()
    print("## training step and CROWN at batch 128 (ms; ratio = torch / engine, > 1: the engine is faster; target >= 1)")
    print("| work | engine ms | torch ms | ratio | target |")
    print("|---|---|---|---|---|")
    for model in ("mlp", "cnn"):
        e, t = find(eng, op="train", model=model), find(tor, op="train", model=model)
        ev, tv = e and e["ms_per_step"], t and t["ms_per_step"]
        r = tv / ev if ev and tv else None
        print(f"| train {model} | {fmt(ev, '.3f')} | {fmt(tv, '.3f')} | {fmt(r)} | {verdict(None if r is None else r >= 1)} |")
    for net in ("mlp", "cnn"):
        e, t = find(eng, op="crown", net=net), find(tor, op="crown", net=net)
        ev, tv = e and e["ms"], t and t["ms"]
        r = tv / ev if ev and tv else None
        same = "" if t is None or t.get("same_weights") else " (torch: own weights)"
        print(f"| crown {net}{same} | {fmt(ev, '.3f')} | {fmt(tv, '.3f')} | {fmt(r)} | {verdict(None if r is None else r >= 1)} |")
    for op in ("conv2d_forward", "conv2d_forward_backward"):
        e, t = find(eng, op=op), find(tor, op=op)
        ev, tv = e and e["ms"], t and t["ms"]
        r = tv / ev if ev and tv else None
        print(f"| {op} (no target) | {fmt(ev, '.3f')} | {fmt(tv, '.3f')} | {fmt(r)} | - |")
    print()
    print("## the engine's CUDA CROWN bounds against the peer (same weights and inputs)")
    for r in tor:
        if r.get("op") == "tightness":
            print(f"tightness {r['net']}: engine - torch lower bound max {r['max_diff']:.3g} mean {r['mean_diff']:.3g} "
                  f"min {r['min_diff']:.3g} (mean |torch bound| {r['mean_abs_peer']:.3g}; engine bounds from {r.get('engine_device')})")
        if r.get("op") == "soundness":
            print(f"soundness {r['net']}: {r['violations']} violations over {r['points']} points per example "
                  f"(smallest margin - lower bound {r['min_gap']:.3g}){'  <-- UNSOUND' if r['violations'] else ''}")
    for r in eng:
        if "test_accuracy" in r:
            print(f"engine train (mlp, 2 epochs, embedded subset): test accuracy {r['test_accuracy']}, {r.get('seconds')} s")
    for r in tor:
        if "error" in r:
            print(f"torch {r['op']} failed: {r['error']}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
