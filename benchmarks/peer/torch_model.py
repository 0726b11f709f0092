#!/usr/bin/python3
"""Peer baseline for `crate bench model`: a whole CRATE classifier step in PyTorch (float32, CPU, fixed thread count).
The model is our PyTorch reference (tools/reference/crate_model.py: patch embedding LN → Linear → LN, CLS +
positions, PreNorm MSSA + residual and PreNorm ISTA per layer, CLS pooling, LN + Linear head), the same semantics
as CrateIL's CrateModel.

  train: zero_grad, forward, cross-entropy, backward, AdamW step (lr 1e-4, weight decay 0.05)
  infer: forward under torch.inference_mode()

Run (Debian's python3-torch):
    /usr/bin/python3 benchmarks/peer/torch_model.py --model crate-t --patch 16 --image-size 224 --batch 8 \
        --mode train --threads 2 [--iters 5] [--json]
    /usr/bin/python3 benchmarks/peer/torch_model.py --dim 192 --depth 6 --heads 3 --patch 4 --image-size 32 \
        --classes 10 --batch 32 --mode train --json
Median (and best) of --iters timed steps after --warmup untimed ones.
"""
import argparse
import contextlib
import json
import os
import platform
import sys
import time

PRESETS = {"crate-t": (384, 12, 6), "crate-s": (576, 12, 12), "crate-b": (768, 12, 12), "crate-l": (1024, 24, 16)}


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="crate-t", help="preset or 'custom' (dim/depth/heads given explicitly)")
    p.add_argument("--patch", type=int, default=16)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--dim", type=int)
    p.add_argument("--depth", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--mode", choices=["train", "infer"], default="train")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32",
                   help="fp32: strict float32 (TF32 off, CrateIL's arithmetic); tf32: TF32 tensor-core matmuls; "
                        "bf16: bfloat16 autocast of forward and loss (CUDA only; for information beside fp32)")
    p.add_argument("--json", action="store_true")
    return p.parse_args()


args = parse()
# The OpenMP pool must be sized before torch loads.
os.environ["OMP_NUM_THREADS"] = str(args.threads)
os.environ["MKL_NUM_THREADS"] = str(args.threads)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "reference"))
from crate_model import Crate  # noqa: E402

torch.set_num_threads(args.threads)
# Strict fp32 unless asked otherwise: PyTorch may default matmuls on CUDA to TF32 (10-bit mantissa), which would not
# be the arithmetic CrateIL does.
_tf32 = args.precision == "tf32"
torch.backends.cuda.matmul.allow_tf32 = _tf32
torch.backends.cudnn.allow_tf32 = _tf32
torch.set_float32_matmul_precision("high" if _tf32 else "highest")
if args.precision == "bf16" and not args.device.startswith("cuda"):
    raise SystemExit("--precision bf16 is for CUDA only")


def autocast():
    # Only built for bf16: on a CPU-only torch, even a disabled CUDA autocast initialises CUDA and fails.
    if args.precision == "bf16":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def sync():
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()


def main():
    if args.model in PRESETS:
        dim, depth, heads = PRESETS[args.model]
    elif args.model == "custom" or args.dim is not None:
        dim, depth, heads = 384, 12, 6
    else:
        raise SystemExit(f"unknown --model {args.model} (known: {', '.join(PRESETS)}, custom)")
    dim = args.dim or dim
    depth = args.depth or depth
    heads = args.heads or heads
    name = args.model if (dim, depth, heads) == PRESETS.get(args.model) else "custom"
    torch.manual_seed(1)
    s = args.image_size
    model = Crate([s, s], args.patch, args.classes, dim, depth, heads, dim // heads, "cls").to(args.device)
    images = (torch.rand(args.batch, 3, s, s) * 4 - 2).to(args.device)
    labels = torch.randint(0, args.classes, (args.batch,)).to(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    train = args.mode == "train"
    model.train(train)

    def step():
        t0 = time.perf_counter()
        if train:
            optimizer.zero_grad(set_to_none=False)
            with autocast():
                logits, _ = model(images)
                loss = F.cross_entropy(logits, labels)
            loss.backward()
            optimizer.step()
        else:
            with torch.inference_mode(), autocast():
                model(images)
        sync()
        return (time.perf_counter() - t0) * 1e3

    for _ in range(args.warmup):
        step()
    times = sorted(step() for _ in range(args.iters))
    median = times[len(times) // 2]
    r = {
        "model": name, "dim": dim, "depth": depth, "heads": heads, "patch": args.patch, "image_size": s,
        "classes": args.classes, "mode": args.mode, "batch": args.batch, "threads": torch.get_num_threads(),
        "device": args.device, "precision": args.precision, "torch": torch.__version__, "python": platform.python_version(),
        "parameters": sum(p.numel() for p in model.parameters()), "iters": args.iters,
        "ms_per_step": median, "images_per_s": args.batch * 1e3 / median, "best_ms": times[0],
    }
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"torch {r['torch']} {name} dim {dim} depth {depth} heads {heads} patch {args.patch} @{s} {args.mode} "
              f"batch {args.batch} ({r['threads']} threads): {median:.1f} ms/step, {r['images_per_s']:.1f} img/s "
              f"(median of {args.iters}; best {times[0]:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
