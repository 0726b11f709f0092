#!/usr/bin/env python3
"""Our own PyTorch reference for CrateIL's embedding layers, written from crate-reference.md §1.2, §1.4 and §8.
It writes tests/CrateIL.Nn.Tests/Fixtures/embedding_reference.json with:
  - bicubic: F.interpolate(mode='bicubic', align_corners=False) cases, size mode and scale-factor mode
    (recompute_scale_factor=False), on channels-last grids (the layout of a positional-embedding table);
  - positions: DINO-style interpolate_pos_encoding of a [1, N0+1, dim] table (CLS row kept) for other grids;
  - patch_embedding: Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)') -> LayerNorm -> Linear -> LayerNorm on a
    non-square image, with the gradients of a probe loss for every parameter and the image.
All values are float64 (the bicubic cases also carry PyTorch's float32 result).

Run with Debian's python3-torch, never in CI:
    /usr/bin/python3 tools/reference/embedding_reference.py tests/CrateIL.Nn.Tests/Fixtures
"""
import json
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def channels_last(grid_nchw):
    """[1, C, R, K] -> [R*K, C] (token-major, channel innermost), as CrateIL stores tables."""
    _, c, r, k = grid_nchw.shape
    return grid_nchw[0].permute(1, 2, 0).reshape(r * k, c)


def bicubic_case(name, gen, in_rows, in_cols, channels, size=None, scale=None):
    src = torch.randn(1, channels, in_rows, in_cols, generator=gen, dtype=torch.float64)
    kw = dict(mode='bicubic', align_corners=False)
    if size is not None:
        out64 = F.interpolate(src, size=size, **kw)
        out32 = F.interpolate(src.float(), size=size, **kw)
    else:
        kw['recompute_scale_factor'] = False
        out64 = F.interpolate(src, scale_factor=scale, **kw)
        out32 = F.interpolate(src.float(), scale_factor=scale, **kw)
    return {
        'name': name, 'mode': 'size' if size is not None else 'scale',
        'in_rows': in_rows, 'in_cols': in_cols, 'channels': channels,
        'out_rows': out64.shape[2], 'out_cols': out64.shape[3],
        'scale_rows': scale[0] if scale else 0.0, 'scale_cols': scale[1] if scale else 0.0,
        'src': flat(channels_last(src)), 'out64': flat(channels_last(out64)), 'out32': flat(channels_last(out32)),
    }


def dino_positions(name, gen, grid0, dim, rows, cols):
    """DINO's interpolate_pos_encoding with the grid rows taken from the image height (DINO's 'w')."""
    n0 = grid0 * grid0
    pos = torch.randn(1, n0 + 1, dim, generator=gen, dtype=torch.float64)
    cls_pos, patch_pos = pos[:, 0], pos[:, 1:]
    r0, c0 = rows + 0.1, cols + 0.1
    patch_pos = F.interpolate(
        patch_pos.reshape(1, grid0, grid0, dim).permute(0, 3, 1, 2),
        scale_factor=(r0 / math.sqrt(n0), c0 / math.sqrt(n0)), mode='bicubic', align_corners=False,
        recompute_scale_factor=False)
    assert int(r0) == patch_pos.shape[-2] and int(c0) == patch_pos.shape[-1]
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, -1, dim)
    table = torch.cat((cls_pos.unsqueeze(0), patch_pos), dim=1)
    size_pos = F.interpolate(pos[:, 1:].reshape(1, grid0, grid0, dim).permute(0, 3, 1, 2), size=(rows, cols),
                             mode='bicubic', align_corners=False).permute(0, 2, 3, 1).reshape(1, -1, dim)
    size_table = torch.cat((cls_pos.unsqueeze(0), size_pos), dim=1)
    return {'name': name, 'grid0': grid0, 'dim': dim, 'rows': rows, 'cols': cols, 'pos': flat(pos),
            'scale_table': flat(table), 'size_table': flat(size_table)}


def patch_embedding(gen, batch, channels, height, width, patch, dim):
    pd = patch * patch * channels
    h, w = height // patch, width // patch
    image = torch.randn(batch, channels, height, width, generator=gen, dtype=torch.float64, requires_grad=True)
    ln1, lin, ln3 = nn.LayerNorm(pd).double(), nn.Linear(pd, dim).double(), nn.LayerNorm(dim).double()
    with torch.no_grad():  # non-trivial affine parameters so their gradients matter
        for p in (ln1.weight, ln3.weight):
            p.copy_(1 + 0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
        for p in (ln1.bias, ln3.bias, lin.weight, lin.bias):
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    # einops Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)') written with reshape/permute
    patches = image.reshape(batch, channels, h, patch, w, patch).permute(0, 2, 4, 3, 5, 1).reshape(batch, h * w, pd)
    tokens = ln3(lin(ln1(patches)))
    probe = torch.randn(tokens.shape, generator=gen, dtype=torch.float64)
    loss = (tokens * probe).sum()
    loss.backward()
    named = {'to_patch_embedding.1.weight': ln1.weight, 'to_patch_embedding.1.bias': ln1.bias,
             'to_patch_embedding.2.weight': lin.weight, 'to_patch_embedding.2.bias': lin.bias,
             'to_patch_embedding.3.weight': ln3.weight, 'to_patch_embedding.3.bias': ln3.bias}
    return {
        'config': {'batch': batch, 'channels': channels, 'height': height, 'width': width, 'patch': patch, 'dim': dim},
        'image': flat(image), 'patches': flat(patches), 'tokens': flat(tokens), 'probe': flat(probe),
        'params': {k: flat(v) for k, v in named.items()},
        'grads': {k: flat(v.grad) for k, v in named.items()},
        'dimage': flat(image.grad),
    }


def main(out_dir):
    gen = torch.Generator().manual_seed(20240607)
    bicubic = [
        bicubic_case('size_up_5x5_to_7x9', gen, 5, 5, 3, size=(7, 9)),
        bicubic_case('size_down_6x7_to_4x3', gen, 6, 7, 2, size=(4, 3)),
        bicubic_case('size_identity_4x4', gen, 4, 4, 2, size=(4, 4)),
        bicubic_case('scale_dino_4x4_to_6x3', gen, 4, 4, 3, scale=((6 + 0.1) / 4, (3 + 0.1) / 4)),
        bicubic_case('scale_same_size_5x5', gen, 5, 5, 2, scale=(5.1 / 5, 5.1 / 5)),
        bicubic_case('scale_down_6x6_to_2x5', gen, 6, 6, 1, scale=(2.1 / 6, 5.1 / 6)),
        bicubic_case('size_1x1_to_3x2', gen, 1, 1, 2, size=(3, 2)),
    ]
    positions = [dino_positions('dino_4x4_to_6x3', gen, 4, 5, 6, 3),
                 dino_positions('dino_3x3_to_3x3', gen, 3, 4, 3, 3)]
    fixture = {'bicubic': bicubic, 'positions': positions,
               'patch_embedding': patch_embedding(gen, 2, 3, 8, 12, 4, 5),
               'torch_version': torch.__version__}
    path = f'{out_dir}/embedding_reference.json'
    with open(path, 'w') as f:
        json.dump(fixture, f, separators=(',', ':'))
    print('wrote', path)


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'tests/CrateIL.Nn.Tests/Fixtures')
