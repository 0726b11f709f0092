#!/usr/bin/env python3
"""Float32 re-derivation of pydensecrf's dense CRF (Krähenbühl & Koltun 2011, permutohedral lattice of Adams, Baek &
Davis 2010), written for CrateIL from the published algorithm and pydensecrf's documented semantics, to produce
fixtures for CrateIL.Segmentation.Crf where pydensecrf itself cannot be installed (no PyPI access here).

It reproduces the reference's float32 arithmetic and order of operations, as x86-64 builds of pydensecrf run it:
  * lattice construction as in the SSE build (x86-64 always has SSE): every step in float32 —
    scale_i = float(1/sqrt((i+1)(i+2)) · float(sqrt(2/3)(d+1))), cf = f·scale, elevated_j = sm − j·cf, sm += cf;
    v = float(1/(d+1))·elevated rounded half-to-even; rem0 = v·(d+1); ranks from float comparisons; barycentric
    v = (elevated − rem0)·float(1/(d+1)) accumulated in float32 in coordinate order, then b0 += 1 + b_{d+1};
  * filtering of value size ≤ 2 (the two-label CRF, and the normaliser) by the scalar path: splat
    values[o] += w·in (points in order), blur new = old + 0.5·(n1 + n2) evaluated in double and stored as float
    (0.5 is a double literal there), slice out += (w·value)·α with α = 1/(1 + 2^−d) in float32;
    value size > 2 by the SSE path: blur new = old + 0.5f·(n1 + n2) in float32, slice out += float(w·α)·value;
  * normalisation n_i = float(1/sqrt(double(K·1)_i + 1e−20)); message −w·(n ∘ K(n ∘ Q)) subtracted from −U per
    term in order; expAndNormalize: b − max, exp, b / Σb (division, not a reciprocal) per pixel.
Deliberate, documented differences: exp is computed in float64 and rounded to float32 (glibc's expf, which the
reference calls for 2-label columns, is within 1 ulp of that); the lattice vertices are numbered differently (the
numbering does not change any sum: a vertex receives at most one term per point, added in point order).

Writes one binary fixture per case (little-endian): int32 W, H, L, iterations-count K, then K int32 iteration
counts; float32 gaussian sxy, compat, bilateral sxy, srgb, compat; uint8 rgb [H·W·3]; float32 unary [L, H·W];
then for each iteration count float32 Q [L, H·W].

    /usr/bin/python3 tools/reference/densecrf_float32.py tests/CrateIL.Segmentation.Tests/CrfFixtures
"""
import struct
import sys

import numpy as np

f32 = np.float32


def lattice_build(feat):
    """feat: float32 [N, d]. Returns (offsets [N, d+1] vertex ids + 1, weights [N, d+1] float32, blur [d+1, M, 2], M)."""
    n, d = feat.shape
    d1 = d + 1
    inv_std = f32(np.sqrt(2.0 / 3.0) * d1)
    scale = np.array([1.0 / np.sqrt((i + 2) * (i + 1)) * np.float64(inv_std) for i in range(d)]).astype(f32)
    elevated = np.zeros((n, d1), f32)
    sm = np.zeros(n, f32)
    for j in range(d, 0, -1):
        cf = (feat[:, j - 1] * scale[j - 1]).astype(f32)
        elevated[:, j] = sm - f32(j) * cf
        sm = (sm + cf).astype(f32)
    elevated[:, 0] = sm
    inv_d1 = f32(f32(1.0) / f32(d1))
    v = np.rint(inv_d1 * elevated).astype(f32)          # half to even, as cvtps2dq / roundps(nearest)
    rem0 = (v * f32(d1)).astype(f32)
    total = np.zeros(n, f32)
    for i in range(d1):
        total = (total + v[:, i]).astype(f32)
    rank = np.zeros((n, d1), f32)
    for i in range(d):
        di = (elevated[:, i] - rem0[:, i]).astype(f32)
        for j in range(i + 1, d1):
            dj = (elevated[:, j] - rem0[:, j]).astype(f32)
            c = (di < dj).astype(f32)
            rank[:, i] += c
            rank[:, j] += f32(1) - c
    for i in range(d1):
        rank[:, i] += total
        add = np.where(rank[:, i] < 0, f32(d1), f32(0))
        sub = np.where(rank[:, i] >= f32(d1), f32(d1), f32(0))
        rank[:, i] += add - sub
        rem0[:, i] += add - sub
    bary = np.zeros((n, d + 2), f32)
    rows = np.arange(n)
    for i in range(d1):
        vv = ((elevated[:, i] - rem0[:, i]) * inv_d1).astype(f32)
        p = d - rank[:, i].astype(np.int64)
        bary[rows, p] = (bary[rows, p] + vv).astype(f32)
        bary[rows, p + 1] = (bary[rows, p + 1] - vv).astype(f32)
    bary[:, 0] = (bary[:, 0] + (f32(1) + bary[:, d + 1])).astype(f32)
    irank = rank.astype(np.int64)
    irem0 = rem0.astype(np.int64)
    keys = np.zeros((n, d1, d), np.int64)
    for r in range(d1):
        canon = np.where(irank[:, :d] <= d - r, r, r - d1)
        keys[:, r, :] = irem0[:, :d] + canon
    flat = keys.reshape(-1, d)
    uniq, inverse = np.unique(flat, axis=0, return_inverse=True)
    m = uniq.shape[0]
    offsets = inverse.reshape(n, d1) + 1
    index = {tuple(k): i for i, k in enumerate(uniq.tolist())}
    blur = np.zeros((d1, m, 2), np.int64)
    for j in range(d1):
        for vid, k in enumerate(uniq.tolist()):
            n1 = [c - 1 for c in k]
            n2 = [c + 1 for c in k]
            if j < d:
                n1[j] = k[j] + d
                n2[j] = k[j] - d
            blur[j, vid, 0] = index.get(tuple(n1), -1) + 1
            blur[j, vid, 1] = index.get(tuple(n2), -1) + 1
    return offsets, bary[:, :d1].copy(), blur, m


def lattice_filter(lat, values_in):
    """values_in: float32 [N, vs]; the reference's seqCompute (vs ≤ 2) or sseCompute (vs > 2)."""
    offsets, w, blur, m = lat
    n, vs = values_in.shape
    d1 = offsets.shape[1]
    d = d1 - 1
    values = np.zeros((m + 1, vs), f32)
    # Splat in point order, vertex order within a point (np.add.at applies repeated indices sequentially).
    idx = offsets.reshape(-1)
    contrib = (w.reshape(-1, 1) * np.repeat(values_in, d1, axis=0)).astype(f32)
    np.add.at(values, idx, contrib)
    for j in range(d1):
        n1 = values[blur[j, :, 0]]
        n2 = values[blur[j, :, 1]]
        s = (n1 + n2).astype(f32)
        new = np.zeros_like(values)
        if vs <= 2:
            new[1:] = (values[1:].astype(np.float64) + 0.5 * s.astype(np.float64)).astype(f32)
        else:
            new[1:] = (values[1:] + f32(0.5) * s).astype(f32)
        values = new
    alpha = f32(f32(1.0) / (f32(1.0) + f32(2.0 ** -d)))
    out = np.zeros((n, vs), f32)
    for r in range(d1):
        vals = values[offsets[:, r]]
        if vs <= 2:
            out = (out + ((w[:, r:r + 1] * vals).astype(f32) * alpha).astype(f32)).astype(f32)
        else:
            wa = (w[:, r:r + 1] * alpha).astype(f32)
            out = (out + (wa * vals).astype(f32)).astype(f32)
    return out


class Term:
    def __init__(self, feat, compat):
        self.lat = lattice_build(feat)
        n = feat.shape[0]
        ones = np.ones((n, 1), f32)
        k1 = lattice_filter(self.lat, ones)[:, 0]
        self.norm = (1.0 / np.sqrt(k1.astype(np.float64) + 1e-20)).astype(f32)
        self.compat = f32(compat)

    def message(self, q):
        """q: float32 [N, L] point-major → −w·(n ∘ K(n ∘ q))."""
        inp = (q * self.norm[:, None]).astype(f32)
        out = lattice_filter(self.lat, inp)
        out = (out * self.norm[:, None]).astype(f32)
        return ((-self.compat) * out).astype(f32)


def exp_and_normalize(e):
    """e: float32 [N, L] → per-pixel softmax as expAndNormalize (max shift, exp, divide by the sequential sum)."""
    b = (e - e.max(axis=1, keepdims=True)).astype(f32)
    b = np.exp(b.astype(np.float64)).astype(f32)
    s = b[:, 0].copy()
    for l in range(1, b.shape[1]):
        s = (s + b[:, l]).astype(f32)
    return (b / s[:, None]).astype(f32)


def gaussian_features(w, h, sxy):
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([xs.reshape(-1).astype(f32) / f32(sxy), ys.reshape(-1).astype(f32) / f32(sxy)], axis=1).astype(f32)


def bilateral_features(w, h, sxy, srgb, rgb):
    g = gaussian_features(w, h, sxy)
    c = rgb.reshape(-1, 3).astype(f32) / f32(srgb)
    return np.concatenate([g, c.astype(f32)], axis=1).astype(f32)


def inference(unary, terms, iterations):
    """unary: float32 [L, N]; returns {k: Q [L, N]} for each k in iterations."""
    neg_u = (-unary.T).astype(f32)
    q = exp_and_normalize(neg_u)
    result = {}
    if 0 in iterations:
        result[0] = q.T.copy()
    for it in range(1, max(iterations) + 1):
        tmp = neg_u.copy()
        for t in terms:
            tmp = (tmp - t.message(q)).astype(f32)
        q = exp_and_normalize(tmp)
        if it in iterations:
            result[it] = q.T.copy()
    return result


def scene(w, h, labels, seed):
    """A shaded image with blobs and pixel noise, and smooth, unsaturated softmax unaries (so Q is not pinned at 0/1)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = xs / w, ys / h
    region = np.where((u - 0.4) ** 2 + (v - 0.5) ** 2 < 0.06, 1, np.where((u > 0.7) & (v < 0.4), 2, 0)) % labels
    shade = 40 * np.sin(6 * u + 3 * v)
    noise = rng.integers(-12, 13, size=(h, w, 3))
    rgb = np.stack([80 + 90 * region + shade, 120 - 30 * region + shade / 2, 60 + 50 * (region % 2) + 0 * shade], axis=2)
    rgb = np.clip(rgb + noise, 0, 255).astype(np.uint8)
    logits = rng.normal(0, 0.6, size=(labels, h, w))
    for l in range(labels):
        logits[l] += 1.2 * (region == l)
    logits -= logits.max(axis=0, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=0, keepdims=True)
    unary = (-np.log(np.clip(p, 1e-5, 1.0))).astype(f32).reshape(labels, -1)
    return rgb, unary


def cutler_scene(w, h, labels, seed):
    """The same image with CutLER-style unaries: softmax of a one-hot (p = 0.7311) on the label of each pixel's 8×8
    block centre, clipped −log (what MaskCut's refinement feeds the CRF; the blocky edges make the CRF work hard)."""
    rgb, _ = scene(w, h, labels, seed)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    cy = np.minimum(h - 1, ys // 8 * 8 + 4).astype(np.int64)
    cx = np.minimum(w - 1, xs // 8 * 8 + 4).astype(np.int64)
    u, v = cx / w, cy / h
    region = np.where((u - 0.4) ** 2 + (v - 0.5) ** 2 < 0.06, 1, np.where((u > 0.7) & (v < 0.4), 2, 0)) % labels
    hi = np.float32(1.0 / (1.0 + (labels - 1) * np.exp(-1.0)))
    lo = np.float32((1 - hi) / (labels - 1))
    p = np.stack([np.where(region == l, hi, lo) for l in range(labels)]).astype(np.float32)
    unary = (-np.log(np.clip(p, 1e-5, 1.0))).astype(f32).reshape(labels, -1)
    return rgb, unary


def write_case(path, w, h, labels, seed, gsxy, gw, bsxy, bsrgb, bw, iterations, make=None):
    rgb, unary = (make or scene)(w, h, labels, seed)
    terms = [Term(gaussian_features(w, h, gsxy), gw), Term(bilateral_features(w, h, bsxy, bsrgb, rgb), bw)]
    qs = inference(unary, terms, iterations)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<4i", w, h, labels, len(iterations)))
        fh.write(struct.pack(f"<{len(iterations)}i", *iterations))
        fh.write(struct.pack("<5f", gsxy, gw, bsxy, bsrgb, bw))
        fh.write(rgb.tobytes())
        fh.write(unary.astype("<f4").tobytes())
        for k in iterations:
            fh.write(qs[k].astype("<f4").tobytes())
    print(f"{path}: {w}x{h}, {labels} labels, lattice vertices {[t.lat[3] for t in terms]}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    if size:
        # A one-off large case (not committed): the bench size, CutLER parameters.
        write_case(f"{out}/crf_{size}_2labels.bin", size, size, 2, 11, 3, 7, 50, 5, 10, [1, 10])
        write_case(f"{out}/crf_{size}_2labels_cutler.bin", size, size, 2, 11, 3, 7, 50, 5, 10, [1, 10], cutler_scene)
        return
    write_case(f"{out}/crf_97x83_2labels.bin", 97, 83, 2, 3, 3, 7, 50, 5, 10, [1, 10])
    write_case(f"{out}/crf_61x47_3labels.bin", 61, 47, 3, 5, 3, 5, 13, 10, 8, [1, 10])
    write_case(f"{out}/crf_97x83_2labels_cutler.bin", 97, 83, 2, 3, 3, 7, 50, 5, 10, [1, 10], cutler_scene)


if __name__ == "__main__":
    main()
