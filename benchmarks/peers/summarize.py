#!/usr/bin/env python3
"""Pairs Engine's JSON lines with the peers' (same op, shape and threads) and prints a Markdown ratio table.

Usage: summarize.py results.jsonl   (the output of benchmarks/compare.sh)
Ratio > 1 means Engine is faster (GFLOP/s ratio for GEMM, time ratio peer/engine for the rest).
"""
import json
import sys


def key(r):
    op = r.get("op", "gemm")
    if op == "gemm":
        n = r["n"]
        m = r.get("m", n)
        k = r.get("k", n)
        return ("gemm", f"{m}x{k}x{n}" if (m, k) != (n, n) else str(n), r["threads"])
    if op == "train":
        return ("train", f"{r['model']} batch {r['batch']}", r["threads"])
    if op == "crown":
        return (f"crown {r['method']}", f"{r.get('net', r.get('model', '?'))} batch {r['batch']}", r["threads"])
    if op == "cert_train":
        return (f"certified step {r['method']}", f"{r['net']} batch {r['batch']}{', sharded' if r.get('sharded') else ''}", r["threads"])
    if op == "cert_verify":
        return (f"verify {r['method']}", f"{r['net']}, {r['images']} test images", r["threads"])
    return (op, r.get("shape", "32x64x32x32,k3p1,64"), r["threads"])


def certified_tables(engine, peer, keys, checks):
    """Issue 5: median and min of both sides (on a busy machine the min is the steadier estimate), then the checks."""
    def cell(r):
        return f"{r['ms']:.2f} / {r['min_ms']:.2f} ms" if r.get("min_ms") is not None else f"{r['ms']:.2f} ms"
    print()
    print("| op | work | threads | Engine median / min | peer | peer median / min | ratio (median) | ratio (min) |")
    print("|---|---|---|---|---|---|---|---|")
    for k in sorted(keys, key=lambda k: (k[0], k[2], k[1])):
        # A sharded (data-parallel) Engine row is the same work as the peer's whole-batch step.
        e, p = engine[k], peer.get((k[0], k[1].replace(", sharded", ""), k[2]))
        ratio = f"{p['ms'] / e['ms']:.2f}" if p else "-"
        ratio_min = f"{p['min_ms'] / e['min_ms']:.2f}" if p and p.get("min_ms") and e.get("min_ms") else "-"
        print(f"| {k[0]} | {k[1]} | {k[2]} | {cell(e)} | {p['peer'] if p else '-'} | {cell(p) if p else '-'} | "
              f"{ratio} | {ratio_min} |")
    if not checks:
        return
    # Same weights and data on both sides (certified_torch.py --dir): the results must agree.
    print()
    print("| check (same weights and data) | Engine | peer | Engine - peer lower bound: max / mean / min |")
    print("|---|---|---|---|")
    seen = set()
    for r in checks:
        if r["what"] in seen:
            continue  # the same check again for another thread count
        seen.add(r["what"])
        if "engine_loss" in r:
            print(f"| {r['what']} | loss {r['engine_loss']:.5f} | loss {r['peer_loss']:.5f} | "
                  f"{r['engine_minus_peer_max']:.3g} / {r['engine_minus_peer_mean']:.3g} / {r['engine_minus_peer_min']:.3g} |")
        else:
            print(f"| {r['what']} | {r['engine_verified']} | {r['peer_verified']} | |")


def main(path):
    engine, peer, tightness, checks = {}, {}, [], []
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if r.get("op") == "tightness":
            tightness.append(r)
            continue
        if r.get("op") == "cert_check":
            checks.append(r)
            continue
        if "peer" in r and "gflops" not in r and "ms" not in r and "ms_per_step" not in r:
            continue  # a peer's configuration line
        (peer if "peer" in r else engine)[key(r)] = r
    certified = [k for k in engine if engine[k].get("op") in ("cert_train", "cert_verify")]
    plain = [k for k in engine if k not in certified]
    if plain:
        print("| op | shape | threads | Engine | peer | peer value | ratio |")
        print("|---|---|---|---|---|---|---|")
    for k in sorted(plain, key=lambda k: (k[0], k[2], k[1])):
        e = engine[k]
        p = peer.get(k)
        if "gflops" in e:
            ev, unit = e["gflops"], "GFLOP/s"
            pv = p["gflops"] if p else None
            ratio = ev / pv if pv else None
        else:
            ev, unit = e.get("ms_per_step", e.get("ms")), "ms"
            pv = (p.get("ms_per_step", p.get("ms")) if p else None)
            ratio = pv / ev if pv else None
        print(f"| {k[0]} | {k[1]} | {k[2]} | {ev:.2f} {unit} | {p['peer'] if p else '-'} | "
              f"{'-' if pv is None else f'{pv:.2f} {unit}'} | {'-' if ratio is None else f'{ratio:.2f}'} |")
    if certified:
        certified_tables(engine, peer, certified, checks)
    if tightness:
        # Same weights and inputs (crown_torch.py): engine lower - peer lower, > 0 where the Engine is tighter.
        print()
        print("| bounds | net | batch | peer | engine - peer lower: max | mean | min | without Engine's rounding margin: max abs |")
        print("|---|---|---|---|---|---|---|---|")
        seen = set()
        for r in tightness:
            k = (r["method"], r["net"], r["batch"], r["peer"])
            if k in seen:
                continue  # the same bounds again for another thread count
            seen.add(k)
            print(f"| {r['method']} | {r['net']} | {r['batch']} | {r['peer']} | {r['max_diff']:.3g} | {r['mean_diff']:.3g} | "
                  f"{r['min_diff']:.3g} | {r.get('max_abs_diff_no_margin', float('nan')):.3g} |")


if __name__ == "__main__":
    main(sys.argv[1])
