#!/usr/bin/python3
"""Peer baseline for `crate bench ista`: CRATE's ISTA block, PreNorm(dim, FeedForward) exactly as the reference code
(CRATE/model/crate.py: LayerNorm, then relu(x + η(x·D − x·Dᵀ·D) − ηλ) with three F.linear GEMMs), float32, on
PyTorch's CPU path with a fixed thread count.

Run (Debian's python3-torch):
    /usr/bin/python3 benchmarks/peer/torch_ista.py --n 785 --dim 384 --batch 1 --threads 2 [--json]
Forward is timed with autograd recording (as in training); backward is y.backward(probe) on that graph, which
includes the LayerNorm backward and the accumulation into .grad. Medians (and best) of alternating timed steps
after a warm-up, and the mean process CPU time per call divided by the threads (as `crate bench ista` reports).
"""
import argparse
import json
import os
import platform
import sys
import time


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=785, help="tokens per image")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=3.0, help="timed duration after 1 s of warm-up")
    p.add_argument("--json", action="store_true")
    return p.parse_args()


args = parse()
# The OpenMP pool must be sized before torch loads.
os.environ["OMP_NUM_THREADS"] = str(args.threads)
os.environ["MKL_NUM_THREADS"] = str(args.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn import init  # noqa: E402

torch.set_num_threads(args.threads)


class FeedForward(nn.Module):
    """CRATE's ISTA step, as in CRATE/model/crate.py (hidden_dim and dropout unused there too)."""

    def __init__(self, dim, step_size=0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.Tensor(dim, dim))
        with torch.no_grad():
            init.kaiming_uniform_(self.weight)
        self.step_size = step_size
        self.lambd = 0.1

    def forward(self, x):
        x1 = F.linear(x, self.weight, bias=None)
        grad_1 = F.linear(x1, self.weight.t(), bias=None)
        grad_2 = F.linear(x, self.weight.t(), bias=None)
        grad_update = self.step_size * (grad_2 - grad_1) - self.step_size * self.lambd
        return F.relu(x + grad_update)


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x, **kwargs):
        return self.fn(self.norm(x), **kwargs)


def main():
    torch.manual_seed(1)
    block = PreNorm(args.dim, FeedForward(args.dim))
    x = (torch.rand(args.batch, args.n, args.dim) * 4 - 2).requires_grad_(True)
    probe = torch.rand(args.batch, args.n, args.dim) * 4 - 2

    cpu = [0.0, 0.0]

    def step():
        c0, t0 = time.process_time(), time.perf_counter()
        y = block(x)
        c1, t1 = time.process_time(), time.perf_counter()
        y.backward(probe)
        c2, t2 = time.process_time(), time.perf_counter()
        cpu[0] += c1 - c0
        cpu[1] += c2 - c1
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3

    warm = time.perf_counter()
    while time.perf_counter() - warm < 1.0:
        step()
    fwd, bwd = [], []
    cpu[0] = cpu[1] = 0.0
    start = time.perf_counter()
    while len(fwd) < 5 or time.perf_counter() - start < args.seconds:
        f, b = step()
        fwd.append(f)
        bwd.append(b)
    total = sorted(f + b for f, b in zip(fwd, bwd))
    fwd.sort()
    bwd.sort()
    r = {
        "n": args.n, "dim": args.dim, "batch": args.batch, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(), "iters": len(fwd),
        "forward_ms": fwd[len(fwd) // 2], "backward_ms": bwd[len(bwd) // 2], "total_ms": total[len(total) // 2],
        "forward_best_ms": fwd[0], "backward_best_ms": bwd[0],
        "forward_cpu_ms": cpu[0] * 1e3 / len(fwd) / torch.get_num_threads(),
        "backward_cpu_ms": cpu[1] * 1e3 / len(bwd) / torch.get_num_threads(),
    }
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"torch {r['torch']} ISTA block {args.batch}x{args.n}x{args.dim} ({r['threads']} threads): "
              f"forward {r['forward_ms']:.3f} ms, backward {r['backward_ms']:.3f} ms, total {r['total_ms']:.3f} ms "
              f"(medians of {r['iters']}; best {r['forward_best_ms']:.3f} / {r['backward_best_ms']:.3f}; "
              f"CPU time per thread {r['forward_cpu_ms']:.3f} / {r['backward_cpu_ms']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
