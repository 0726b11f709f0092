#!/usr/bin/env python3
"""Our own PyTorch reference of the whole CRATE classifier (crate-reference §1.1–1.2): patch embedding
(LN → Linear → LN, channel-innermost patchify), CLS + positional embedding, `depth` layers of PreNorm MSSA + residual
and PreNorm ISTA, pooling (cls or mean over all N + 1 tokens) and the LN + Linear head. Module names reproduce the
official state_dict keys. It writes, for tiny configurations:

  <name>.json  float64 ground truth: config, images, parameters under official names, logits, labels, loss,
               parameters after one AdamW step,
               (mean cross-entropy), dlogits, all parameter gradients, per-layer features, attention
               probabilities and qkv "key" features of one layer;
  <name>.pth   the same parameters as a float32 checkpoint the way CRATE's main.py saves them
               ({'state_dict': {'module.' + key: tensor}, 'epoch': ...}), plus <name>_pth_logits.json: the logits
               PyTorch computes in float32 from that checkpoint.

Run with Debian's python3-torch, never in CI:
    /usr/bin/python3 tools/reference/crate_model.py tests/CrateIL.Crate.Tests/Fixtures
"""
import copy
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)


class Attention(nn.Module):
    def __init__(self, dim, heads, dim_head):
        super().__init__()
        inner = heads * dim_head
        self.heads, self.dim_head = heads, dim_head
        self.qkv = nn.Linear(dim, inner, bias=False)
        project_out = not (heads == 1 and dim_head == dim)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0)) if project_out else nn.Identity()

    def probs_and_w(self, y):
        b, n, _ = y.shape
        w = self.qkv(y).view(b, n, self.heads, self.dim_head).transpose(1, 2)
        return (torch.matmul(w, w.transpose(-1, -2)) * self.dim_head ** -0.5).softmax(dim=-1), w

    def forward(self, y):
        b, n, _ = y.shape
        probs, w = self.probs_and_w(y)
        o = torch.matmul(probs, w).transpose(1, 2).reshape(b, n, self.heads * self.dim_head)
        return self.to_out(o)


class FeedForward(nn.Module):
    def __init__(self, dim, eta=0.1, lambd=0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, dim))
        nn.init.kaiming_uniform_(self.weight)
        self.eta, self.lambd = eta, lambd

    def forward(self, z):
        grad_1 = F.linear(F.linear(z, self.weight), self.weight.t())
        grad_2 = F.linear(z, self.weight.t())
        return F.relu(z + self.eta * (grad_2 - grad_1) - self.eta * self.lambd)


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.norm(x))


class Transformer(nn.Module):
    def __init__(self, dim, depth, heads, dim_head):
        super().__init__()
        self.layers = nn.ModuleList([
            nn.ModuleList([PreNorm(dim, Attention(dim, heads, dim_head)), PreNorm(dim, FeedForward(dim))])
            for _ in range(depth)])

    def forward(self, x):
        features = [x]
        for attn, ff in self.layers:
            x = ff(attn(x) + x)
            features.append(x)
        return x, features


class Patchify(nn.Module):
    """'b c (h p1) (w p2) -> b (h w) (p1 p2 c)' without einops."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, img):
        b, c, hh, ww = img.shape
        p = self.p
        x = img.reshape(b, c, hh // p, p, ww // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (hh // p) * (ww // p), p * p * c)


class Crate(nn.Module):
    def __init__(self, image_hw, patch, classes, dim, depth, heads, dim_head, pool, channels=3):
        super().__init__()
        n = (image_hw[0] // patch) * (image_hw[1] // patch)
        pd = channels * patch * patch
        self.to_patch_embedding = nn.Sequential(Patchify(patch), nn.LayerNorm(pd), nn.Linear(pd, dim), nn.LayerNorm(dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, n + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.transformer = Transformer(dim, depth, heads, dim_head)
        self.pool = pool
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, classes))

    def embed(self, img):
        x = self.to_patch_embedding(img)
        b, n, _ = x.shape
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
        return x + self.pos_embedding[:, :n + 1]

    def forward(self, img):
        x, features = self.transformer(self.embed(img))
        x = x.mean(dim=1) if self.pool == "mean" else x[:, 0]
        return self.mlp_head(x), features


def perturb_norms(model):
    with torch.no_grad():  # non-trivial affine parameters so that their gradients are exercised
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.add_(0.1 * torch.randn_like(m.weight))
                m.bias.add_(0.1 * torch.randn_like(m.bias))


def flat(t):
    return t.detach().reshape(-1).tolist()


def run(case, out_dir):
    torch.manual_seed(case["seed"])
    hw = case["image_size"] if isinstance(case["image_size"], list) else [case["image_size"]] * 2
    model = Crate(hw, case["patch_size"], case["num_classes"], case["dim"], case["depth"], case["heads"],
                  case["dim_head"], case["pool"]).double()
    perturb_norms(model)
    b = case["batch"]
    img = torch.randn(b, 3, hw[0], hw[1], dtype=torch.float64)
    labels = torch.randint(0, case["num_classes"], (b,))
    logits, features = model(img)
    for f in features:
        f.retain_grad()
    logits.retain_grad()
    loss = F.cross_entropy(logits, labels)
    loss.backward()

    probe = case["probe_layer"]
    with torch.no_grad():
        y = model.transformer.layers[probe][0].norm(features[probe])
        attn = model.transformer.layers[probe][0].fn
        probs, _ = attn.probs_and_w(y)
        keys = attn.qkv(y)

    state = model.state_dict()
    config = {k: case[k] for k in ("image_size", "patch_size", "num_classes", "dim", "depth", "heads", "dim_head", "pool")}
    data = {
        "config": config, "batch": b, "probe_layer": probe,
        "images": flat(img), "labels": labels.tolist(),
        "params": {k: flat(v) for k, v in state.items()},
        "shapes": {k: list(v.shape) for k, v in state.items()},
        "logits": flat(logits), "loss": loss.item(), "dlogits": flat(logits.grad),
        "grads": {k: flat(p.grad) for k, p in model.named_parameters()},
        "features": [flat(f) for f in features],
        "probs": flat(probs), "keys": flat(keys),
    }
    # One AdamW step (PyTorch semantics) from these gradients, on a copy so the checkpoint below is unchanged.
    stepped = copy.deepcopy(model)  # deepcopy does not carry .grad: copy the gradients explicitly
    for dst, src in zip(stepped.parameters(), model.parameters()):
        dst.grad = src.grad.clone()
    opt = torch.optim.AdamW(stepped.parameters(), lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)
    opt.step()
    data["adamw"] = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.05,
                     "params_after": {k: flat(v) for k, v in stepped.state_dict().items()}}
    with open(f"{out_dir}/{case['name']}.json", "w") as f:
        json.dump(data, f)

    # The float32 checkpoint as CRATE's main.py writes it (DataParallel prefix, wrapper dict with extras).
    model32 = model.float()
    torch.save({"state_dict": {"module." + k: v for k, v in model32.state_dict().items()}, "epoch": 7, "arch": "tiny"},
               f"{out_dir}/{case['name']}.pth")
    with torch.no_grad():
        logits32, _ = model32(img.float())
    with open(f"{out_dir}/{case['name']}_pth_logits.json", "w") as f:
        json.dump({"images": flat(img.float()), "logits": flat(logits32)}, f)
    print(case["name"], "loss", loss.item())


CASES = [
    # Square image, CLS pooling, inner = heads·dim_head = dim.
    {"name": "crate_tiny_square_cls", "seed": 11, "image_size": 16, "patch_size": 4, "num_classes": 5, "dim": 12,
     "depth": 2, "heads": 3, "dim_head": 4, "pool": "cls", "batch": 2, "probe_layer": 1},
    # Non-square 8×12 image, mean pooling, inner = 2·5 = 10 ≠ dim.
    {"name": "crate_tiny_rect_mean", "seed": 12, "image_size": [8, 12], "patch_size": 4, "num_classes": 5, "dim": 12,
     "depth": 2, "heads": 2, "dim_head": 5, "pool": "mean", "batch": 3, "probe_layer": 0},
]

if __name__ == "__main__":
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
    for case in CASES:
        run(case, out_dir)
