#!/usr/bin/env python3
"""Our own PyTorch reference of one CRATE layer (PreNorm MSSA + residual, PreNorm ISTA), written from the
semantics in shared/reference/crate-reference.md §1.2. It writes small JSON fixtures (inputs, parameters under the
official state_dict names, per-stage outputs, gradients of a probe loss) that the C# tests compare against.

Run with Debian's python3-torch, never in CI:
    /usr/bin/python3 tools/reference/crate_layer.py tests/CrateIL.Nn.Tests/Fixtures
"""
import json
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)


class Mssa(nn.Module):
    def __init__(self, dim, heads, dim_head):
        super().__init__()
        inner = heads * dim_head
        self.heads, self.dim_head = heads, dim_head
        self.qkv = nn.Linear(dim, inner, bias=False)
        self.project_out = not (heads == 1 and dim_head == dim)
        self.to_out = nn.Sequential(nn.Linear(inner, dim)) if self.project_out else nn.Identity()

    def forward(self, y):
        b, n, _ = y.shape
        w = self.qkv(y).view(b, n, self.heads, self.dim_head).transpose(1, 2)  # [b, h, n, d]
        scores = torch.matmul(w, w.transpose(-1, -2)) * self.dim_head ** -0.5
        probs = scores.softmax(dim=-1)
        o = torch.matmul(probs, w).transpose(1, 2).reshape(b, n, self.heads * self.dim_head)
        return self.to_out(o), probs


class Ista(nn.Module):
    def __init__(self, dim, eta=0.1, lambd=0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, dim))
        nn.init.kaiming_uniform_(self.weight)
        self.eta, self.lambd = eta, lambd

    def forward(self, z):
        x1 = F.linear(z, self.weight)              # Z·Dwᵀ
        grad_1 = F.linear(x1, self.weight.t())     # Z·Dwᵀ·Dw
        grad_2 = F.linear(z, self.weight.t())      # Z·Dw
        return F.relu(z + self.eta * (grad_2 - grad_1) - self.eta * self.lambd)


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn


class Layer(nn.Module):
    def __init__(self, dim, heads, dim_head):
        super().__init__()
        self.attn = PreNorm(dim, Mssa(dim, heads, dim_head))
        self.ista = PreNorm(dim, Ista(dim))

    def forward(self, x):
        a, probs = self.attn.fn(self.attn.norm(x))
        half = x + a
        return self.ista.fn(self.ista.norm(half)), half, probs


def names(layer):
    # Official names inside transformer.layers.{l}: 0 = PreNorm(MSSA), 1 = PreNorm(ISTA).
    out = {}
    for k, v in layer.state_dict().items():
        k = k.replace("attn.", "0.", 1).replace("ista.", "1.", 1)
        out[k] = v
    return out


def run(case, dtype):
    torch.manual_seed(case["seed"])
    dim, heads, dh, n, b = case["dim"], case["heads"], case["dim_head"], case["n"], case["batch"]
    layer = Layer(dim, heads, dh).to(dtype)
    with torch.no_grad():  # non-trivial affine parameters so their gradients are exercised
        for norm in (layer.attn.norm, layer.ista.norm):
            norm.weight.add_(0.1 * torch.randn_like(norm.weight))
            norm.bias.add_(0.1 * torch.randn_like(norm.bias))
    x = torch.randn(b, n, dim, dtype=dtype, requires_grad=True)
    probe = torch.randn(b, n, dim, dtype=dtype)
    y, half, probs = layer(x)
    loss = (y * probe).sum()
    loss.backward()
    flat = lambda t: t.detach().reshape(-1).tolist()
    params = {k: flat(v) for k, v in names(layer).items()}
    grads = {}
    for k, p in layer.named_parameters():
        grads[k.replace("attn.", "0.", 1).replace("ista.", "1.", 1)] = flat(p.grad)
    return {
        "config": dict(case, dtype=str(dtype).replace("torch.", ""), eta=0.1, lambd=0.1, eps=1e-5),
        "x": flat(x), "probe": flat(probe),
        "params": params, "shapes": {k: list(v.shape) for k, v in names(layer).items()},
        "half": flat(half), "y": flat(y), "probs": flat(probs), "loss": loss.item(),
        "dx": flat(x.grad), "grads": grads,
    }


CASES = [
    {"name": "layer_n7_d10_h3_dh6", "seed": 1, "n": 7, "dim": 10, "heads": 3, "dim_head": 6, "batch": 2},
    {"name": "layer_n65_d12_h1_dh12", "seed": 2, "n": 65, "dim": 12, "heads": 1, "dim_head": 12, "batch": 1},
]

if __name__ == "__main__":
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
    for case in CASES:
        for dtype in (torch.float64, torch.float32):
            data = run(case, dtype)
            path = f"{out_dir}/{case['name']}_{data['config']['dtype']}.json"
            with open(path, "w") as f:
                json.dump(data, f)
            print(path, "loss", data["loss"])
