#!/usr/bin/env python3
"""Checks that a file written by `crate export` loads into our PyTorch reference CRATE (crate_model.py) with
`load_state_dict(strict=True)`: the safetensors header is parsed by hand (no safetensors package needed), the model
is built from the `crate_config` metadata, and a forward pass on a fixed image must give finite logits. Prints one
JSON line: keys, parameters, the logits of the all-0.5 image; exit status 1 on any mismatch.

Run with Debian's python3-torch, by hand (never in CI):
    /usr/bin/python3 tools/reference/check_export.py model.safetensors [logits.json]
With a second argument, the logits are also written there (to compare with `crate infer` on the same image).
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crate_model import Crate  # noqa: E402

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        t = torch.frombuffer(bytearray(body[begin:end]), dtype=DTYPES[entry["dtype"]])
        tensors[name] = t.reshape(entry["shape"]).clone()
    return tensors, metadata


def main():
    path = sys.argv[1]
    tensors, metadata = read_safetensors(path)
    config = json.loads(metadata["crate_config"])
    if config.get("variant", "crate") != "crate":
        raise SystemExit(f"{path}: variant {config['variant']} is not the CRATE reference")
    size = config["image_size"]
    hw = size if isinstance(size, list) else [size, size]
    model = Crate(hw, config["patch_size"], config["num_classes"], config["dim"], config["depth"], config["heads"],
                  config["dim_head"], config["pool"], config.get("channels", 3))
    result = model.load_state_dict(tensors, strict=True)  # raises on any missing/unexpected key or shape
    model.eval()
    with torch.no_grad():
        logits, _ = model(torch.full((1, config.get("channels", 3), hw[0], hw[1]), 0.5))
    if not torch.isfinite(logits).all():
        raise SystemExit(f"{path}: non-finite logits")
    report = {
        "file": path,
        "strict_load": "ok",
        "missing": list(result.missing_keys),
        "unexpected": list(result.unexpected_keys),
        "keys": len(tensors),
        "parameters": sum(t.numel() for t in tensors.values()),
        "metadata": sorted(metadata),
        "logits_half_grey": [round(v, 6) for v in logits[0].tolist()],
    }
    print(json.dumps(report))
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            json.dump(report, f)


if __name__ == "__main__":
    main()
