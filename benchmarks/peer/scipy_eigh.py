#!/usr/bin/python3
"""Peer timing for `crate bench maskcut`: CutLER's eigen-solve with SciPy.

Builds the same kind of synthetic features as CrateIL's SyntheticFeatures.Planted (orthonormal object and
background directions, smoothly varying background, Gaussian noise; not bit-identical numbers), the CutLER
affinity (cosine > tau -> 1, else eps = 1e-5) and times the dense generalized solve CutLER uses,
scipy.linalg.eigh(D - A, D, subset_by_index=[1, 2]), once per MaskCut iteration (objects' tokens zeroed).
Threads: 2 (set before NumPy loads). Install: apt-get install -y python3-scipy.
Usage: /usr/bin/python3 benchmarks/peer/scipy_eigh.py [--size 480 --patch 8 --dim 384 --objects 3 --repeat 1] -> JSON.
"""
import os
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(v, "2")
import argparse, json, time
import numpy as np
import scipy, scipy.linalg


def boxes(g, count):
    anchors = [(0.08, 0.1), (0.55, 0.55), (0.12, 0.6), (0.6, 0.08), (0.35, 0.35), (0.8, 0.8)]
    out = []
    for k in range(count):
        ax, ay = anchors[k % len(anchors)]
        side = max(2, int(g * (0.3 - 0.04 * (k % 4))))
        x0 = min(int(ax * g), g - side); y0 = min(int(ay * g), g - side)
        out.append((x0, y0, x0 + side, y0 + side))
    return out


def planted(g, dim, bxs, noise, waves, rng):
    dirs, _ = np.linalg.qr(rng.standard_normal((dim, len(bxs) + 3)))
    dirs = dirs.T
    ys, xs = np.mgrid[0:g, 0:g]
    owner = np.zeros((g, g), dtype=int)
    for k, (x0, y0, x1, y1) in enumerate(bxs):
        owner[y0:y1, x0:x1] = k + 1
    a = np.cos(2 * np.pi * waves * xs / g); b = np.sin(2 * np.pi * waves * ys / g)
    bg = (dirs[0][None, None] + a[..., None] * dirs[-2] + b[..., None] * dirs[-1]) / np.sqrt(1 + a * a + b * b)[..., None]
    f = np.where(owner[..., None] == 0, bg, dirs[owner])
    f = f.reshape(g * g, dim) + noise / np.sqrt(dim) * rng.standard_normal((g * g, dim))
    return f.astype(np.float32), owner.reshape(-1)


def affinity(feats, tau, eps=1e-5):
    f = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    A = (f @ f.T) > np.float32(tau)
    A = A.astype(np.float64)
    A[A == 0] = eps
    return A, np.diag(A.sum(axis=1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=480); p.add_argument("--patch", type=int, default=8)
    p.add_argument("--dim", type=int, default=384); p.add_argument("--objects", type=int, default=3)
    p.add_argument("--tau", type=float, default=0.15); p.add_argument("--noise", type=float, default=0.5)
    p.add_argument("--waves", type=float, default=1.5); p.add_argument("--repeat", type=int, default=1)
    a = p.parse_args()
    g = a.size // a.patch
    rng = np.random.default_rng(1)
    feats, _ = planted(g, a.dim, boxes(g, a.objects), a.noise, a.waves, rng)
    eigh_ms, image_ms = [], []
    for _ in range(a.repeat):
        f = feats.copy()
        t_img = time.perf_counter()
        painting = np.zeros(g * g, dtype=bool)
        for it in range(a.objects):
            A, D = affinity(f, a.tau)
            t = time.perf_counter()
            _, vecs = scipy.linalg.eigh(D - A, D, subset_by_index=[1, 2])
            eigh_ms.append((time.perf_counter() - t) * 1e3)
            v = vecs[:, 0]
            bip = v > v.mean()
            seed = np.argmax(np.abs(v))
            if not bip[seed]:
                bip = ~bip
            if bip.sum() > g * g / 2:   # crude stand-in for the corner rule: mask the smaller side
                bip = ~bip
            painting |= bip
            f[painting] = 0
        image_ms.append((time.perf_counter() - t_img) * 1e3)
    print(json.dumps({"peer": "scipy.linalg.eigh(D-A, D, subset_by_index=[1,2])", "scipy": scipy.__version__,
                      "numpy": np.__version__, "threads": int(os.environ["OMP_NUM_THREADS"]), "tokens": g * g,
                      "dim": a.dim, "objects": a.objects, "eigh_ms": round(float(np.median(eigh_ms)), 1),
                      "image_ms": round(float(np.median(image_ms)), 1), "repeat": a.repeat}))


if __name__ == "__main__":
    main()
