#!/usr/bin/python3
"""Peer timing for `crate bench mssa`: CRATE's PreNorm MSSA block in PyTorch (CPU, fp32).

Block (CRATE/model/crate.py, Attention + PreNorm + residual):
    y = LayerNorm(x); w = y @ qkv.weight.T; per head S = softmax(w_k w_k^T / sqrt(dh)); O_k = S w_k;
    out = concat(O) @ to_out.weight.T + to_out.bias; return x + out
Forward runs with autograd on (it saves what backward needs, as the C# block does);
backward is `out.backward(dy)` with a fixed upstream gradient; medians after a 1 s warm-up.

    /usr/bin/python3 benchmarks/peer/torch_mssa.py --n 785 --dim 384 --heads 6 --batch 1 --threads 2 [--json]
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn


class Mssa(nn.Module):
    def __init__(self, dim, heads, dim_head):
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale = heads, dim_head ** -0.5
        self.qkv = nn.Linear(dim, inner, bias=False)
        project_out = not (heads == 1 and dim_head == dim)
        self.to_out = nn.Sequential(nn.Linear(inner, dim)) if project_out else nn.Identity()

    def forward(self, y):
        b, n, _ = y.shape
        w = self.qkv(y).view(b, n, self.heads, -1).transpose(1, 2)      # b h n d
        attn = torch.softmax(torch.matmul(w, w.transpose(-1, -2)) * self.scale, dim=-1)
        o = torch.matmul(attn, w).transpose(1, 2).reshape(b, n, -1)
        return self.to_out(o)


class MssaBlock(nn.Module):
    def __init__(self, dim, heads, dim_head):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = Mssa(dim, heads, dim_head)

    def forward(self, x):
        return x + self.fn(self.norm(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=785)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--dim-head", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dh = a.dim_head or a.dim // a.heads
    block = MssaBlock(a.dim, a.heads, dh)
    x = torch.rand(a.batch, a.n, a.dim) * 2 - 1
    x.requires_grad_(True)
    dy = torch.rand(a.batch, a.n, a.dim) * 2 - 1

    def step():
        t0 = time.perf_counter()
        out = block(x)
        t1 = time.perf_counter()
        block.zero_grad(set_to_none=False)
        x.grad = None
        out.backward(dy)
        t2 = time.perf_counter()
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3

    warm = time.perf_counter()
    while time.perf_counter() - warm < 1.0:
        step()
    fwd, bwd = zip(*(step() for _ in range(a.iters)))
    r = {
        "peer": f"torch {torch.__version__}", "n": a.n, "dim": a.dim, "heads": a.heads, "dim_head": dh,
        "batch": a.batch, "threads": torch.get_num_threads(), "iters": a.iters,
        "forward_ms": statistics.median(fwd), "backward_ms": statistics.median(bwd),
        "forward_ms_best": min(fwd), "backward_ms_best": min(bwd),
    }
    r["total_ms"] = r["forward_ms"] + r["backward_ms"]
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"torch MSSA block b{a.batch} n{a.n} dim{a.dim} heads{a.heads}: forward {r['forward_ms']:.2f} ms, "
              f"backward {r['backward_ms']:.2f} ms (medians of {a.iters}, {r['threads']} threads)")


if __name__ == "__main__":
    main()
