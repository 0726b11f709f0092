#!/usr/bin/python3
"""Peer baseline for `crate bench gemm`: OpenBLAS SGEMM through Debian's numpy, row-major float32, C = op(A)·op(B).

Run (the thread count must be fixed before numpy loads OpenBLAS):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 \
        /usr/bin/python3 benchmarks/peer/numpy_sgemm.py --sizes 256 512 1024 [--json]
Prints GFLOP/s (best and median of timed calls after a warm-up) and the OpenBLAS build and core it runs.
"""
import argparse
import ctypes
import ctypes.util
import glob
import json
import os
import time

import numpy as np


def openblas_info():
    """Config string and core name of the OpenBLAS that numpy loaded (None when not found)."""
    candidates = glob.glob("/usr/lib/x86_64-linux-gnu/openblas*/libopenblas*.so*") + [ctypes.util.find_library("openblas") or ""]
    with open("/proc/self/maps") as maps:
        loaded = {line.split()[-1] for line in maps if "openblas" in line.lower() and line.split()[-1].startswith("/")}
    for path in sorted(loaded) + candidates:
        if not path:
            continue
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_config.restype = ctypes.c_char_p
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return {"library": path, "config": lib.openblas_get_config().decode(),
                    "core": lib.openblas_get_corename().decode(), "threads": lib.openblas_get_num_threads()}
        except (OSError, AttributeError):
            continue
    return None


def bench(m, n, k, trans_a, trans_b, seconds, threads):
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, k) if trans_b else (k, n)).astype(np.float32)
    c = np.empty((m, n), dtype=np.float32)
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    warm = time.perf_counter()
    while time.perf_counter() - warm < 0.5:
        np.matmul(opa, opb, out=c)
    times, cpu_times = [], []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < seconds:
        c0 = time.process_time()
        t0 = time.perf_counter()
        np.matmul(opa, opb, out=c)
        times.append(time.perf_counter() - t0)
        cpu_times.append((time.process_time() - c0) / threads)
    times.sort()
    flops = 2.0 * m * n * k
    best_cpu = min(t for t in cpu_times if t > 0) if any(t > 0 for t in cpu_times) else None
    # cpu_time_gflops: flops over the process CPU time per thread, i.e. the rate had the threads run undisturbed
    # (comparable with `crate bench gemm`'s cpu_time_gflops on a shared machine).
    return {"m": m, "n": n, "k": k, "transa": trans_a, "transb": trans_b, "iters": len(times),
            "ms": times[0] * 1e3, "ms_median": times[len(times) // 2] * 1e3,
            "gflops": flops / times[0] / 1e9, "gflops_median": flops / times[len(times) // 2] / 1e9,
            "cpu_time_gflops": flops / best_cpu / 1e9 if best_cpu else None}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--ops", nargs="+", default=["NN", "NT", "TN"], help="transpose combinations, e.g. NN NT TN")
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per case")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    info = openblas_info()
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or os.cpu_count())
    results = [bench(s, s, s, op[0] == "T", op[1] == "T", args.seconds, threads) for s in args.sizes for op in args.ops]
    if args.json:
        print(json.dumps({"numpy": np.__version__, "openblas": info,
                          "env": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE")},
                          "results": results}, indent=2))
        return
    print(f"numpy {np.__version__}; OpenBLAS: {info}")
    for r in results:
        op = ("T" if r["transa"] else "N") + ("T" if r["transb"] else "N")
        print(f"sgemm {r['m']}x{r['n']}x{r['k']} {op}: {r['ms']:.3f} ms best, {r['ms_median']:.3f} ms median of {r['iters']} "
              f"= {r['gflops']:.1f} GFLOP/s best, {r['gflops_median']:.1f} median; by CPU time {r['cpu_time_gflops'] or 0:.1f}")


if __name__ == "__main__":
    main()
