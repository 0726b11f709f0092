#!/usr/bin/env python3
"""PyTorch fixtures for CrateIL.Nn.Optim and CrateIL.Nn.Losses: three steps of torch.optim.AdamW, torch.optim.SGD
(momentum with dampening, and Nesterov) and Lion written as the CRATE reference implements it (crate-reference §1.7),
on two float32 parameters — "w" (weight decay) and "b" (no weight decay, the norm/bias parameter group) — plus
clip_grad_norm_ and timm's LabelSmoothingCrossEntropy next to F.cross_entropy(label_smoothing=...).

Run with Debian's python3-torch, never in CI:
    /usr/bin/python3 tools/reference/optim_fixtures.py tests/CrateIL.Nn.Tests/Fixtures
"""
import json
import sys

import torch
import torch.nn.functional as F

torch.set_num_threads(2)


class Lion(torch.optim.Optimizer):
    """Lion as in the CRATE reference: decoupled decay, sign of the interpolated momentum, then the momentum update."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["exp_avg"] = torch.zeros_like(p)
                exp_avg = state["exp_avg"]
                p.data.mul_(1 - lr * wd)
                update = exp_avg.clone().mul_(beta1).add(p.grad, alpha=1 - beta1).sign_()
                p.add_(update, alpha=-lr)
                exp_avg.mul_(beta2).add_(p.grad, alpha=1 - beta2)


def label_smoothing_cross_entropy(logits, target, smoothing):
    """timm.loss.LabelSmoothingCrossEntropy.forward."""
    confidence = 1.0 - smoothing
    logprobs = F.log_softmax(logits, dim=-1)
    nll_loss = -logprobs.gather(dim=-1, index=target.unsqueeze(1)).squeeze(1)
    smooth_loss = -logprobs.mean(dim=-1)
    return (confidence * nll_loss + smoothing * smooth_loss).mean()


def flat(*tensors):
    return torch.cat([t.detach().reshape(-1) for t in tensors]).tolist()


def main(out_dir):
    g = torch.Generator().manual_seed(7)
    w0 = torch.randn(3, 4, generator=g, dtype=torch.float32)
    b0 = torch.randn(5, generator=g, dtype=torch.float32)
    steps = 3
    grads = []
    for s in range(steps):
        gw = torch.randn(3, 4, generator=g, dtype=torch.float32) * 0.5
        gb = torch.randn(5, generator=g, dtype=torch.float32) * 0.5
        # Exact zeros where the momentum is still zero: Lion's sign(0) = 0 leaves those entries alone.
        if s == 0:
            gw[0, 0] = 0.0
            gb[1] = 0.0
        grads.append((gw, gb))

    def run(name, make, grouped):
        w = w0.clone().requires_grad_(True)
        b = b0.clone().requires_grad_(True)
        opt = make([{"params": [w]}, {"params": [b], "weight_decay": 0.0}] if grouped else [w, b])
        after = []
        for gw, gb in grads:
            w.grad = gw.clone()
            b.grad = gb.clone()
            opt.step()
            after.append(flat(w, b))
        return after

    cases = []

    def case(name, optimizer, grouped, make, **hyper):
        cases.append(dict(name=name, optimizer=optimizer, grouped=grouped, hyper=hyper, after=run(name, make, grouped)))

    case("adamw_grouped", "adamw", True, lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
         lr=0.01, wd=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    case("adamw_all", "adamw", False, lambda p: torch.optim.AdamW(p, lr=0.03, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.5),
         lr=0.03, wd=0.5, beta1=0.8, beta2=0.99, eps=1e-6)
    case("sgd_momentum_grouped", "sgd", True, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
         lr=0.1, wd=0.01, momentum=0.9, dampening=0.1, nesterov=False)
    case("sgd_nesterov_all", "sgd", False, lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05),
         lr=0.05, wd=0.05, momentum=0.9, dampening=0.0, nesterov=True)
    case("sgd_plain_all", "sgd", False, lambda p: torch.optim.SGD(p, lr=0.2, weight_decay=0.1),
         lr=0.2, wd=0.1, momentum=0.0, dampening=0.0, nesterov=False)
    case("lion_grouped", "lion", True, lambda p: Lion(p, lr=0.01, betas=(0.9, 0.99), weight_decay=0.5),
         lr=0.01, wd=0.5, beta1=0.9, beta2=0.99)
    case("lion_all", "lion", False, lambda p: Lion(p, lr=0.02, betas=(0.9, 0.99), weight_decay=0.05),
         lr=0.02, wd=0.05, beta1=0.9, beta2=0.99)

    # clip_grad_norm_: one case below and one above the max norm, over both parameters together.
    clips = []
    for max_norm in (10.0, 0.5):
        w = w0.clone().requires_grad_(True)
        b = b0.clone().requires_grad_(True)
        w.grad, b.grad = grads[0][0].clone(), grads[0][1].clone()
        norm = torch.nn.utils.clip_grad_norm_([w, b], max_norm)
        clips.append(dict(max_norm=max_norm, norm=float(norm), grads=flat(w.grad, b.grad)))

    # Loss: timm's form and PyTorch's target-distribution form, float64, with dlogits of the mean loss.
    rows, classes, smoothing = 5, 7, 0.1
    logits = (torch.randn(rows, classes, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    labels = torch.tensor([3, 0, 6, 2, 3])
    timm = label_smoothing_cross_entropy(logits, labels, smoothing)
    torch_form = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    timm.backward()
    loss = dict(rows=rows, classes=classes, smoothing=smoothing, logits=flat(logits), labels=labels.tolist(),
                timm=float(timm), torch=float(torch_form), dlogits=flat(logits.grad))

    fixture = dict(
        torch_version=torch.__version__,
        params=dict(w=dict(shape=list(w0.shape), decay=True), b=dict(shape=list(b0.shape), decay=False)),
        initial=flat(w0, b0),
        grads=[flat(gw, gb) for gw, gb in grads],
        cases=cases,
        clip=clips,
        loss=loss,
    )
    path = f"{out_dir}/optim_torch.json"
    with open(path, "w") as f:
        json.dump(fixture, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
