#!/usr/bin/env python3
"""Loss-curve fixtures: a tiny CRATE and a tiny ViT trained for 224 AdamW steps in float64 PyTorch, for
tests/CrateIL.Crate.Tests/LossCurveParityTests.cs, which replays the same steps in CrateIL (float32) and compares
the loss step by step.

What the C# side must reproduce, and how this script pins it:
  * initial weights: drawn here with PyTorch's default initialisation, rounded to float32 (so both sides start from
    bit-identical values) and written as <model>_init.safetensors (F32, official state_dict names);
  * data: 256 smooth 3×16×16 images (float32-exact), 4 classes, label = the quadrant holding a bright blob
    (loss_curve_images.npy, labels in loss_curve.json); a learnable rule so the loss really falls;
  * batch order: 7 epochs of a seeded permutation of the 256 images, batch 8 → 224 steps (the index list is stored);
  * optimisation: CrateIL's Trainer step, i.e. label-smoothed (0.1) mean cross-entropy, AdamW (PyTorch semantics,
    β = (0.9, 0.999), ε = 1e-8, weight decay 0.05 on every parameter), no clipping, no dropout, no augmentation, and
    the per-step warm-up + cosine schedule of WarmupCosineSchedule: lr(t) = base·t/warmup for t < warmup, then
    base·½(1 + cos(π(t − warmup)/(total − warmup))), evaluated at the step index t = 0, 1, ... before each step.
The reference trains in float64; the recorded loss of step t is the loss of batch t before step t's update.

Run with Debian's python3-torch, never in CI:
    /usr/bin/python3 tools/reference/loss_curve_fixtures.py tests/CrateIL.Crate.Tests/Fixtures
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from crate_model import Crate  # noqa: E402  (our own CRATE reference, official names)

torch.set_num_threads(2)

IMAGES, CLASSES, SIZE, PATCH = 256, 4, 16, 4
BATCH, EPOCHS = 8, 7
STEPS = IMAGES // BATCH * EPOCHS  # 224
BASE_LR, WARMUP, WEIGHT_DECAY, SMOOTHING = 2e-3, 10, 0.05, 0.1


class VitAttentionHalf(nn.Module):
    """x ↦ MHSA(LN(x)) with timm's names and layout: norm1, attn.qkv (bias, output axis (3, heads, dh)), attn.proj."""

    def __init__(self, dim, heads, dim_head):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * heads * dim_head)
        self.attn.proj = nn.Linear(heads * dim_head, dim)
        self.heads, self.dim_head = heads, dim_head

    def forward(self, x):
        b, n, _ = x.shape
        qkv = self.attn.qkv(self.norm1(x)).view(b, n, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        probs = (torch.matmul(q, k.transpose(-1, -2)) * self.dim_head ** -0.5).softmax(dim=-1)
        o = torch.matmul(probs, v).transpose(1, 2).reshape(b, n, self.heads * self.dim_head)
        return self.attn.proj(o)


class VitMlp(nn.Module):
    """vit-pytorch's FeedForward (net = Linear, GELU (erf), Dropout, Linear, Dropout), ratio 4."""

    def __init__(self, dim):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(4 * dim, dim), nn.Dropout(0.0))

    def forward(self, x):
        return self.net(x)


class VitPreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.norm(x))


class VitTransformer(nn.Module):
    """CrateVariant.Vit's layers under CrateModel's names: layers.{l}.0 = MHSA half, layers.{l}.1 = PreNorm MLP half."""

    def __init__(self, dim, depth, heads, dim_head):
        super().__init__()
        self.layers = nn.ModuleList([nn.ModuleList([VitAttentionHalf(dim, heads, dim_head), VitPreNorm(dim, VitMlp(dim))])
                                     for _ in range(depth)])

    def forward(self, x):
        features = [x]
        for attn, mlp in self.layers:
            x = x + attn(x)
            x = x + mlp(x)
            features.append(x)
        return x, features


def make_model(case):
    model = Crate([SIZE, SIZE], PATCH, CLASSES, case["dim"], case["depth"], case["heads"], case["dim_head"], case["pool"])
    if case["variant"] == "vit":
        model.transformer = VitTransformer(case["dim"], case["depth"], case["heads"], case["dim_head"])
    return model


def make_images(seed):
    """Smooth float32 images: bilinearly upsampled 4×4 noise plus a Gaussian blob in the label's quadrant."""
    g = torch.Generator().manual_seed(seed)
    coarse = 0.5 * torch.randn(IMAGES, 3, 4, 4, generator=g, dtype=torch.float64)
    images = F.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    labels = torch.randint(0, CLASSES, (IMAGES,), generator=g)
    jitter = torch.rand(IMAGES, 2, generator=g, dtype=torch.float64) * 4 - 2  # ±2 pixels inside the quadrant
    ys, xs = torch.meshgrid(torch.arange(SIZE, dtype=torch.float64), torch.arange(SIZE, dtype=torch.float64), indexing="ij")
    for i in range(IMAGES):
        cy = (4 if labels[i] < 2 else 12) + jitter[i, 0] - 0.5
        cx = (4 if labels[i] % 2 == 0 else 12) + jitter[i, 1] - 0.5
        blob = torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * 2.0 ** 2))
        images[i] += 1.2 * blob
    return images.float(), labels


def lr_at(t):
    if t < WARMUP:
        return BASE_LR * t / WARMUP
    return BASE_LR * 0.5 * (1 + math.cos(math.pi * (t - WARMUP) / (STEPS - WARMUP)))


def write_safetensors(path, state):
    """safetensors by hand (F32, little-endian, header JSON padded with spaces to a multiple of 8 bytes)."""
    header, blobs, offset = {}, [], 0
    for name, tensor in state.items():
        data = tensor.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def train(case, images, labels, order, out_dir):
    torch.manual_seed(case["seed"])
    model = make_model(case)
    # The model is built in float32 (PyTorch's default dtype), so the weights written here are exactly the float64
    # reference's starting point after .double(): both sides start from bit-identical values.
    write_safetensors(f"{out_dir}/{case['name']}_init.safetensors", model.state_dict())
    model = model.double()
    x64 = images.double()
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, betas=(0.9, 0.999), eps=1e-8, weight_decay=WEIGHT_DECAY)
    losses, rates = [], []
    for t in range(STEPS):
        idx = order[t * BATCH:(t + 1) * BATCH]
        logits, _ = model(x64[idx])
        loss = F.cross_entropy(logits, labels[idx], label_smoothing=SMOOTHING)
        opt.zero_grad()
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = lr_at(t)
        opt.step()
        losses.append(loss.item())
        rates.append(lr_at(t))
    with torch.no_grad():
        train_top1 = (model(x64)[0].argmax(dim=1) == labels).double().mean().item()
    config = {"image_size": SIZE, "patch_size": PATCH, "num_classes": CLASSES, "dim": case["dim"], "depth": case["depth"],
              "heads": case["heads"], "dim_head": case["dim_head"], "pool": case["pool"], "variant": case["variant"]}
    print(case["name"], "first", losses[0], "last-20 mean", sum(losses[-20:]) / 20, "train top-1", train_top1)
    return {"config": config, "losses": losses, "learning_rates": rates, "final_train_top1": train_top1}


CASES = [
    {"name": "loss_curve_crate", "variant": "crate", "seed": 21, "dim": 24, "depth": 2, "heads": 2, "dim_head": 12, "pool": "cls"},
    {"name": "loss_curve_vit", "variant": "vit", "seed": 22, "dim": 24, "depth": 2, "heads": 2, "dim_head": 12, "pool": "mean"},
]

if __name__ == "__main__":
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
    images, labels = make_images(seed=20)
    with open(f"{out_dir}/loss_curve_images.npy", "wb") as f:
        np.save(f, images.numpy().astype("<f4"))
    g = torch.Generator().manual_seed(23)
    order = torch.cat([torch.randperm(IMAGES, generator=g) for _ in range(EPOCHS)])
    doc = {"batch": BATCH, "steps": STEPS, "base_lr": BASE_LR, "warmup_steps": WARMUP, "weight_decay": WEIGHT_DECAY,
           "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "label_smoothing": SMOOTHING, "precision": "float64",
           "labels": labels.tolist(), "order": order.tolist(), "runs": {}}
    for case in CASES:
        doc["runs"][case["name"]] = train(case, images, labels, order, out_dir)
    with open(f"{out_dir}/loss_curve.json", "w") as f:
        json.dump(doc, f)
