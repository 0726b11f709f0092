#!/usr/bin/env python3
"""Writes the small checkpoint fixtures the C# tests in tests/CrateIL.Crate.Tests read, and checks the files
CrateIL writes (safetensors, .npy) with PyTorch / NumPy.

Run with Debian's python3-torch (1.13) and python3-numpy, never in CI:
    /usr/bin/python3 tools/reference/make_pth_fixtures.py tests/CrateIL.Crate.Tests/Fixtures

Outputs (all small):
  *.pth / *.pth.tar       torch.save checkpoints: bare state_dict, {'state_dict'} wrapper with 'module.' prefixes
                          (CRATE main.py layout), {'model'} wrapper with a numpy best_acc1, dtypes, views with storage
                          offsets and strides, pickle protocols 4 and 5, a state_dict with a non-tensor entry
  malicious_os_system.pth a hand-made zip whose data.pkl is GLOBAL 'os system' + REDUCE('touch /tmp/crateil-pwned');
                          it is never unpickled here
  unknown_opcode.pth      data.pkl with an opcode byte (0xff) that pickle does not define
  corrupt_zip.pth         the first 300 bytes of a valid checkpoint (no central directory)
  python_written.safetensors  written by the hand-made writer below (F32, F64, F16, BF16, metadata)
  *.npy                   numpy-written arrays: dtypes, versions 1/2/3, fortran order, big-endian
  expected.json           every tensor's name, shape, dtype and float32 values; extras (epoch, arch, best_acc1)
  crateil_written.*.verified.json
                          when CrateIL-written files are present (crateil_written.safetensors / .npy, created by the
                          C# tests with CRATEIL_WRITE_FIXTURES=1), they are parsed here without CrateIL code, loaded
                          with torch.frombuffer / np.load, and their SHA-256 and values recorded as evidence
"""
import collections
import hashlib
import io
import json
import os
import struct
import sys
import zipfile

import numpy as np
import torch

torch.manual_seed(1234)


def values(t):
    return [float(v) for v in t.detach().to(torch.float32).reshape(-1).tolist()]


def describe(t):
    return {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""), "values": values(t)}


def tiny_model():
    """A few CRATE-named parameters (real nn.Module state_dict, so it carries _metadata → a BUILD opcode)."""
    m = torch.nn.Module()
    m.to_patch_embedding = torch.nn.Sequential(torch.nn.Identity(), torch.nn.LayerNorm(6), torch.nn.Linear(6, 4))
    m.cls_token = torch.nn.Parameter(torch.randn(1, 1, 4))
    m.mlp_head = torch.nn.Sequential(torch.nn.LayerNorm(4), torch.nn.Linear(4, 3))
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p))
    return m


def write_raw_zip(path, archive, pickle_bytes):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{archive}/data.pkl", pickle_bytes)
        z.writestr(f"{archive}/version", "3\n")


def write_safetensors(path, tensors, metadata):
    """Hand-made safetensors writer (the safetensors package is not installed): header padded to 8 bytes."""
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    codes = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16"}
    for name, t in tensors.items():
        raw = t.contiguous().view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.contiguous().numpy().tobytes()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Hand-made safetensors reader: parse the header, then torch.frombuffer each tensor's bytes."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    assert (8 + n) % 8 == 0, "header not padded to 8 bytes"
    body = data[8 + n:]
    dtypes = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16}
    metadata = header.pop("__metadata__", {})
    out, end = {}, 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e = info["data_offsets"]
        assert b == end, f"{name}: gap or overlap"
        end = e
        if e == b:  # torch.frombuffer refuses empty buffers
            t = torch.zeros(info["shape"], dtype=dtypes[info["dtype"]])
        else:
            t = torch.frombuffer(bytearray(body[b:e]), dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        out[name] = t
    assert end == len(body), "data section not fully covered"
    return out, metadata, hashlib.sha256(data).hexdigest()


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    expected = {}

    # 1. Bare state_dict of a real module.
    model = tiny_model()
    sd = model.state_dict()
    torch.save(sd, os.path.join(out_dir, "bare_state_dict.pth"))
    expected["bare_state_dict.pth"] = {"tensors": {k: describe(v) for k, v in sd.items()}}

    # 2. CRATE main.py layout: DataParallel 'module.' prefixes under 'state_dict', plus training state.
    dp = torch.nn.DataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.mlp_head(torch.randn(2, 4)).sum().backward()
    opt.step()
    best = torch.tensor(12.5)
    wrapped = {"epoch": 3, "arch": "CRATE_tiny", "state_dict": dp.state_dict(), "best_acc1": best,
               "optimizer": opt.state_dict()}
    torch.save(wrapped, os.path.join(out_dir, "wrapped_state_dict.pth.tar"))
    expected["wrapped_state_dict.pth.tar"] = {
        "tensors": {k: describe(v) for k, v in dp.state_dict().items()},
        "extras": {"epoch": 3, "arch": "CRATE_tiny", "best_acc1": float(best)}}

    # 3. {'model': ...} wrapper (the demo checkpoint's layout) with a numpy float64 best accuracy.
    plain = collections.OrderedDict((k, v.clone()) for k, v in sd.items())
    torch.save({"model": plain, "best_acc1": np.float64(71.25), "args": {"lr": 5e-4, "name": "demo"}},
               os.path.join(out_dir, "model_wrapper.pth"))
    expected["model_wrapper.pth"] = {"tensors": {k: describe(v) for k, v in plain.items()},
                                     "extras": {"best_acc1": 71.25}}

    # 4. Element types converted to float32.
    base = torch.randn(2, 3)
    dtypes = collections.OrderedDict([
        ("f64", base.double() * 1e-3), ("f16", base.half()), ("bf16", base.bfloat16()),
        ("i64", torch.tensor([-3, 0, 7, 1 << 20])), ("i32", torch.tensor([5, -6], dtype=torch.int32)),
        ("u8", torch.tensor([0, 255, 17], dtype=torch.uint8)), ("flag", torch.tensor([True, False])),
        ("scalar", torch.tensor(2.5)), ("empty", torch.zeros(0, 3))])
    torch.save(dtypes, os.path.join(out_dir, "dtypes.pth"))
    expected["dtypes.pth"] = {"tensors": {k: describe(v) for k, v in dtypes.items()}}

    # 5. Views sharing one storage: offsets, a row, a column (strided), a transpose (non-contiguous).
    x = torch.arange(24, dtype=torch.float32) * 0.5 - 3
    m46 = x.view(4, 6)
    views = collections.OrderedDict([
        ("slice", x[5:11]), ("matrix", m46), ("row", m46[2]), ("column", m46[:, 1]),
        ("transposed", m46.t()), ("block", m46[1:3, 2:5]), ("expanded", torch.ones(3, 1).expand(3, 4))])
    torch.save(views, os.path.join(out_dir, "views.pth"))
    expected["views.pth"] = {"tensors": {k: describe(v) for k, v in views.items()}}

    # 6. Newer pickle protocols: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, SHORT_BINBYTES.
    for protocol in (4, 5):
        name = f"protocol{protocol}.pth"
        obj = {"model": plain, "blob": b"\x00\x01crate", "tags": {"a", "b"}, "ratio": 0.75, "big": 1 << 70,
               "neg": -(1 << 40), "pair": (1, "two")}
        torch.save(obj, os.path.join(out_dir, name), pickle_protocol=protocol)
        expected[name] = {"tensors": {k: describe(v) for k, v in plain.items()}}

    # 6b. A state_dict holding a non-tensor entry (strict import refuses it, non-strict skips it).
    mixed = collections.OrderedDict([("weight", torch.randn(2, 2)), ("note", "not a tensor"), ("bias", torch.randn(2))])
    torch.save(mixed, os.path.join(out_dir, "mixed_state_dict.pth"))
    expected["mixed_state_dict.pth"] = {"tensors": {k: describe(v) for k, v in mixed.items() if torch.is_tensor(v)}}

    # 7. Hostile and broken pickles (written by hand; never unpickled here).
    command = "touch /tmp/crateil-pwned"
    evil = (b"\x80\x02" + b"cos\nsystem\n" + b"X" + struct.pack("<I", len(command)) + command.encode()
            + b"\x85" + b"R" + b".")
    write_raw_zip(os.path.join(out_dir, "malicious_os_system.pth"), "malicious_os_system", evil)
    write_raw_zip(os.path.join(out_dir, "unknown_opcode.pth"), "unknown_opcode", b"\x80\x02}q\x00\xff.")
    valid = open(os.path.join(out_dir, "bare_state_dict.pth"), "rb").read()
    open(os.path.join(out_dir, "corrupt_zip.pth"), "wb").write(valid[:300])

    # 8. A safetensors file written by the hand-made writer.
    st = collections.OrderedDict([
        ("a.f32", torch.randn(3, 5)), ("b.f64", torch.randn(4).double()), ("c.f16", torch.randn(2, 2).half()),
        ("d.bf16", torch.randn(5).bfloat16()), ("e.scalar", torch.tensor(4.0)), ("f.empty", torch.zeros(2, 0))])
    meta = {"crateil.config": json.dumps({"dim": 4, "depth": 1}), "note": "written by make_pth_fixtures.py"}
    write_safetensors(os.path.join(out_dir, "python_written.safetensors"), st, meta)
    back, back_meta, _ = read_safetensors(os.path.join(out_dir, "python_written.safetensors"))
    assert back_meta == meta and all(torch.equal(back[k], v) for k, v in st.items())
    expected["python_written.safetensors"] = {"tensors": {k: describe(v) for k, v in st.items()}, "metadata": meta}

    # 9. NumPy arrays.
    rng = np.random.default_rng(7)
    arrays = {
        "f4_v1.npy": (rng.standard_normal((2, 3, 4)).astype("<f4"), (1, 0)),
        "f8_v1.npy": (rng.standard_normal(5).astype("<f8"), (1, 0)),
        "i8_v1.npy": (np.array([[-2, 9], [1 << 40, 0]], dtype="<i8"), (1, 0)),
        "i4_v1.npy": (np.array([7, -1, 3], dtype="<i4"), (1, 0)),
        "u1_images.npy": (rng.integers(0, 256, size=(2, 3, 4, 4), dtype=np.uint8), (1, 0)),
        "f4_v2.npy": (rng.standard_normal((3, 2)).astype("<f4"), (2, 0)),
        "f4_v3.npy": (rng.standard_normal((2, 2)).astype("<f4"), (3, 0)),
        "f4_scalar.npy": (np.array(1.5, dtype="<f4"), (1, 0)),
    }
    for name, (array, version) in arrays.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            np.lib.format.write_array(f, array, version=version)
        expected[name] = {"shape": list(array.shape), "descr": array.dtype.str,
                          "values": [float(v) for v in array.astype(np.float32).reshape(-1)]}
    np.save(os.path.join(out_dir, "fortran_order.npy"), np.asfortranarray(rng.standard_normal((3, 2)).astype("<f4")))
    np.save(os.path.join(out_dir, "big_endian.npy"), np.arange(4, dtype=">f4"))

    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)

    # 10. Evidence that files CrateIL wrote load in PyTorch / NumPy.
    written = os.path.join(out_dir, "crateil_written.safetensors")
    if os.path.exists(written):
        tensors, metadata, sha = read_safetensors(written)
        evidence = {"sha256": sha, "metadata": metadata,
                    "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype), "values": values(v)} for k, v in tensors.items()}}
        with open(written + ".verified.json", "w") as f:
            json.dump(evidence, f, indent=1)
        print(f"verified {written}: {len(tensors)} tensors, sha256 {sha}")
    written = os.path.join(out_dir, "crateil_written.npy")
    if os.path.exists(written):
        array = np.load(written)
        sha = hashlib.sha256(open(written, "rb").read()).hexdigest()
        evidence = {"sha256": sha, "shape": list(array.shape), "descr": array.dtype.str,
                    "values": [float(v) for v in array.reshape(-1)]}
        with open(written + ".verified.json", "w") as f:
            json.dump(evidence, f, indent=1)
        print(f"verified {written}: shape {array.shape}, sha256 {sha}")

    total = sum(os.path.getsize(os.path.join(out_dir, n)) for n in os.listdir(out_dir))
    print(f"fixtures in {out_dir}: {len(os.listdir(out_dir))} files, {total} bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/CrateIL.Crate.Tests/Fixtures")
