"""Shared set-up for the peer timing scripts: thread count and BLAS selection must be fixed before numpy/torch load."""
import json
import os
import statistics
import sys
import time


def setup_threads(threads: int) -> None:
    # OpenBLAS 0.3.21 does not recognise Zen 5 / recent Xeons and falls back to slow kernels; SkylakeX is the right path.
    os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    os.environ.pop("OPENBLAS_L2_SIZE", None)
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def median_ms(fn, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
        return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} ({i.get('filepath')})" for i in threadpool_info())
    except Exception:  # threadpoolctl is optional
        return os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")


if __name__ == "__main__":
    sys.exit("import this module")
