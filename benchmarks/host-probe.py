#!/usr/bin/env python3
"""Host state for a sitting (issue 10): one-thread copy bandwidth at 1, 8 and 64 MB (L2, L3, DRAM on Zen 5).

The FMA peak that `crate bench` pairs with every figure is register-only, so it does not see a neighbour that
contends for the caches and memory; this probe does. Best of several copies, read + write bytes counted.
Usage: /usr/bin/python3 benchmarks/host-probe.py
"""
import time
import numpy as np

parts = []
for mb in (1, 8, 64):
    n = mb * 1024 * 1024 // 4
    a = np.ones(n, np.float32)
    b = np.empty_like(a)
    np.copyto(b, a)
    best = float("inf")
    for _ in range(max(5, 256 // mb)):
        t = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t)
    parts.append(f"{mb} MB {2 * mb / 1024 / best:.0f} GB/s")
print("host copy bandwidth, 1 thread: " + ", ".join(parts))
