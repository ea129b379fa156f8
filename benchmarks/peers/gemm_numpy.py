#!/usr/bin/env python3
"""Times NumPy float32 GEMM (its BLAS: OpenBLAS on Debian) on the shapes of GemmBenchmarks.cs.

Prints one JSON line per shape on stdout: {"peer":"numpy","shape":..,"m":..,"n":..,"k":..,"threads":..,"gflops":..,...};
the BLAS configuration goes to stderr (and as the "blas" field of a first JSON line).
Usage: /usr/bin/python3 gemm_numpy.py --threads 1 [--shapes 256,512,1024,2048,128x784x256] [--seconds 1.0]
       [--coretype SkylakeX]
"""
import argparse
import contextlib
import io
import json
import os
import sys
import time

SHAPES = "256,512,1024,2048,128x784x256"


def parse_shape(s):
    """'N' -> (N, N, N, False); 'MxKxN' -> (M, N, K, True): x @ W.T with W stored N x K, as a Linear layer runs it."""
    p = s.split("x")
    if len(p) == 1:
        n = int(p[0])
        return n, n, n, False
    return int(p[0]), int(p[2]), int(p[1]), True


def time_op(fn, seconds, flops):
    fn()  # warm-up (thread pool start, page faults)
    reps = max(1, int(0.05 / max(1e-9, _once(fn))))
    samples = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        samples.append((time.perf_counter() - t0) / reps)
    samples.sort()
    median = samples[len(samples) // 2]
    return flops / median / 1e9, flops / samples[0] / 1e9, median


def _once(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def loaded_blas():
    """The BLAS actually mapped into this process (show_config only names the generic libblas.so on Debian), with
    OpenBLAS's own build/core report where the library exports it."""
    import ctypes
    found = []
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "/" in line and any(t in line.lower() for t in ("blas", "mkl", "blis"))})
    except OSError:
        paths = []
    for path in paths:
        info = {"path": path, "real_path": os.path.realpath(path)}
        try:
            lib = ctypes.CDLL(path)
            for fn in ("openblas_get_config", "openblas_get_corename"):
                if hasattr(lib, fn):
                    f = getattr(lib, fn)
                    f.restype = ctypes.c_char_p
                    info[fn] = f().decode()
            if hasattr(lib, "openblas_get_num_threads"):
                info["openblas_get_num_threads"] = lib.openblas_get_num_threads()
        except OSError:
            pass
        found.append(info)
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--shapes", default=SHAPES)
    ap.add_argument("--seconds", type=float, default=1.0, help="measuring time per shape")
    ap.add_argument("--coretype", default=None,
                    help="OPENBLAS_CORETYPE to force, e.g. SkylakeX for the AVX-512 kernels (OpenBLAS 0.3.21 "
                         "auto-detects Zen 5 as Haswell, i.e. AVX2 only)")
    args = ap.parse_args()

    if args.coretype:
        os.environ["OPENBLAS_CORETYPE"] = args.coretype
    # The BLAS reads its thread count when it loads, so set every known knob before importing numpy.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    cfg = io.StringIO()
    with contextlib.redirect_stdout(cfg):
        np.show_config()
    sys.stderr.write(cfg.getvalue())
    libs = loaded_blas()
    sys.stderr.write("loaded BLAS libraries: %s\n" % json.dumps(libs))
    limited = None
    try:  # confirm the limit took effect where threadpoolctl is available
        from threadpoolctl import threadpool_info, threadpool_limits
        threadpool_limits(args.threads)
        limited = [{k: i.get(k) for k in ("internal_api", "version", "num_threads", "filepath")} for i in threadpool_info()]
    except ImportError:
        pass
    print(json.dumps({"peer": "numpy", "version": np.__version__, "threads": args.threads, "coretype": args.coretype,
                      "blas_libraries": libs,
                      "threadpools": limited, "show_config": cfg.getvalue().strip()}), flush=True)

    rng = np.random.default_rng(42)
    for s in args.shapes.split(","):
        m, n, k, trans_b = parse_shape(s)
        a = (rng.random((m, k), dtype=np.float32) - 0.5)
        b = (rng.random((n, k) if trans_b else (k, n), dtype=np.float32) - 0.5)
        c = np.empty((m, n), dtype=np.float32)
        bt = b.T if trans_b else b
        fn = lambda: np.matmul(a, bt, out=c)
        gflops, best, median = time_op(fn, args.seconds, 2.0 * m * n * k)
        print(json.dumps({"peer": "numpy", "shape": s, "m": m, "n": n, "k": k, "trans_b": trans_b, "threads": args.threads,
                          "coretype": args.coretype, "gflops": round(gflops, 2), "gflops_best": round(best, 2), "median_ms": round(median * 1e3, 4)}), flush=True)


if __name__ == "__main__":
    main()
