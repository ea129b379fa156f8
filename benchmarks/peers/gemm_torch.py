#!/usr/bin/env python3
"""Times PyTorch float32 CPU GEMM (torch.mm; Debian's torch uses the system BLAS, i.e. OpenBLAS) on the shapes of
GemmBenchmarks.cs.

Prints one JSON line per shape on stdout: {"peer":"torch","shape":..,"m":..,"n":..,"k":..,"threads":..,"gflops":..,...};
torch.__config__.show() and the BLAS libraries actually loaded go to stderr and into a first JSON line.
Usage: /usr/bin/python3 gemm_torch.py --threads 1 [--shapes 256,512,1024,2048,128x784x256] [--seconds 1.0]
       [--coretype SkylakeX]
"""
import argparse
import json
import os
import sys

from gemm_numpy import SHAPES, loaded_blas, parse_shape, time_op


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--shapes", default=SHAPES)
    ap.add_argument("--seconds", type=float, default=1.0, help="measuring time per shape")
    ap.add_argument("--coretype", default=None, help="OPENBLAS_CORETYPE to force, e.g. SkylakeX (AVX-512 kernels)")
    args = ap.parse_args()

    if args.coretype:
        os.environ["OPENBLAS_CORETYPE"] = args.coretype
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    cfg = torch.__config__.show()
    libs = loaded_blas()
    sys.stderr.write(cfg + "\nloaded BLAS libraries: %s\n" % json.dumps(libs))
    print(json.dumps({"peer": "torch", "version": torch.__version__, "threads": torch.get_num_threads(),
                      "coretype": args.coretype, "blas_libraries": libs, "config": cfg.strip()}), flush=True)

    g = torch.Generator().manual_seed(42)
    with torch.no_grad():
        for s in args.shapes.split(","):
            m, n, k, trans_b = parse_shape(s)
            a = torch.rand((m, k), generator=g, dtype=torch.float32) - 0.5
            b = torch.rand((n, k) if trans_b else (k, n), generator=g, dtype=torch.float32) - 0.5
            c = torch.empty((m, n), dtype=torch.float32)
            bt = b.t() if trans_b else b
            fn = lambda: torch.mm(a, bt, out=c)
            gflops, best, median = time_op(fn, args.seconds, 2.0 * m * n * k)
            print(json.dumps({"peer": "torch", "shape": s, "m": m, "n": n, "k": k, "trans_b": trans_b,
                              "threads": args.threads, "coretype": args.coretype, "gflops": round(gflops, 2),
                              "gflops_best": round(best, 2), "median_ms": round(median * 1e3, 4)}), flush=True)


if __name__ == "__main__":
    main()
