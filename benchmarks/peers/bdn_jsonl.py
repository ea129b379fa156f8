#!/usr/bin/env python3
"""Turns BenchmarkDotNet's JSON reports (--exporters json) of the certified benchmarks into the JSON lines that
summarize.py pairs with the peers' lines (benchmarks/certified_compare.sh).

Usage: bdn_jsonl.py ARTIFACTS_DIR   (the --artifacts directory; reads results/*-report-full-compressed.json)
Prints one line per benchmark case, median and min in ms:
  CertifiedTrainingBenchmarks -> {"op": "cert_train", "method": Training, "net": "cnn", "batch": 256, "threads", "ms", "min_ms"}
                                 (+ "sharded": true for the Sharded=True cases: one DataParallel shard per thread)
  CertifyBenchmarks           -> {"op": "cert_verify", "method": Bound, "net": "cnn", "images": 1000, "threads", "ms", "min_ms"}
A case that did not run (no statistics) is reported on stderr and skipped.
"""
import glob
import json
import os
import sys

OPS = {"CertifiedTrainingBenchmarks": ("cert_train", "Training", {"batch": 256}),
       "CertifyBenchmarks": ("cert_verify", "Bound", {"images": 1000})}


def main(artifacts):
    reports = sorted(glob.glob(os.path.join(artifacts, "results", "*-report-full-compressed.json")))
    if not reports:
        sys.exit(f"bdn_jsonl.py: no *-report-full-compressed.json under {artifacts}/results (run with --exporters json)")
    for path in reports:
        for b in json.load(open(path))["Benchmarks"]:
            if b["Type"] not in OPS:
                continue
            op, name, extra = OPS[b["Type"]]
            params = dict(kv.split("=", 1) for kv in b["Parameters"].split("&"))
            stats = b.get("Statistics")
            if not stats:
                print(f"bdn_jsonl.py: {b['FullName']} has no results", file=sys.stderr)
                continue
            sharded = {"sharded": True} if params.get("Sharded") == "True" else {}
            print(json.dumps({"op": op, "method": params[name], "net": "cnn", **extra, **sharded, "threads": int(params["Threads"]),
                              "ms": round(stats["Median"] / 1e6, 3), "min_ms": round(stats["Min"] / 1e6, 3),
                              "source": "BenchmarkDotNet"}))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
