#!/usr/bin/env python3
"""The summary table of benchmarks/gpu/run.sh: reads the JSON files it wrote to a results folder and prints one
table (selftest verdict, kernel compilation cost, GEMM / MSSA / ISTA throughput with % of the fp32 peak, the model
step beside its PyTorch peer). Exit status 1 when the selftest did not pass or a step failed.

    python3 benchmarks/gpu/summarize.py RESULTS_DIR --card NAME --driver VER --device SPEC --peak-tflops P \
        [--elapsed S] [--status RUN_STATUS]
"""
import argparse
import datetime
import json
import os
import sys


def load(folder, name):
    path = os.path.join(folder, name)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"what": name, "failed": True, "error": f"unreadable: {e}"}


def as_list(x):
    return x if isinstance(x, list) else [x]


def bad(obj):
    """Why a step has no figures (failed or skipped), or None."""
    if not isinstance(obj, dict):
        return "not an object"
    if obj.get("failed"):
        return "FAILED: " + str(obj.get("error", ""))[:120]
    if obj.get("skipped"):
        return "skipped: " + str(obj["skipped"])
    return None


def pct(tflops, peak):
    return f"{100 * tflops / peak:5.1f} %" if peak and peak > 0 else "    —"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results")
    p.add_argument("--card", default="?")
    p.add_argument("--driver", default="-")
    p.add_argument("--device", default="cuda")
    p.add_argument("--peak-tflops", type=float, default=0.0, help="fp32 non-tensor peak; 0: unknown (CPU: measured)")
    p.add_argument("--elapsed", type=float, default=0.0)
    p.add_argument("--status", type=int, default=0)
    a = p.parse_args()
    failed = a.status != 0
    rows = []

    def row(what, time, tflops=None, peak=None, note=""):
        rows.append((what, time, "" if tflops is None else f"{tflops:8.2f}", pct(tflops, peak) if tflops is not None else "", note))

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"CrateIL GPU check: {a.card}, driver {a.driver}, device {a.device}, {now}; "
           f"fp32 peak {a.peak_tflops:g} TFLOP/s" if a.peak_tflops > 0 else
           f"CrateIL GPU check: {a.card}, driver {a.driver}, device {a.device}, {now}; fp32 peak: measured per GEMM (CPU) or unknown"]

    st = load(a.results, "selftest.json")
    why = bad(st)
    if why or "checks" not in st:
        out.append(f"selftest: {why or 'no report'}")
        failed = True
    else:
        ok = st["checks"] - st["failed"]
        jit = ""
        if st.get("first_kernel_ms") is not None:
            jit = (f"; first kernel call {st['first_kernel_ms']:.0f} ms, compiling all kernels "
                   f"{(st.get('all_kernels_compile_ms') or 0) / 1000:.1f} s")
        arch = st.get("device", {}).get("properties", {}).get("architecture")
        out.append(f"selftest: {ok} of {st['checks']} checks passed on {st['device']['spec']} {st['device']['name']}"
                   f"{' (' + arch + ')' if arch else ''}{jit}; {st['elapsed_s']:.0f} s"
                   f"{' (quick)' if st.get('quick') else ''}")
        if not st.get("passed"):
            failed = True
            for r in st.get("rows", []):
                if not r.get("passed"):
                    out.append(f"   FAIL {r['check']} {r['shape']} {r['output']}: max abs {r['max_abs_error']}, "
                               f"/bound {r['worst_ratio']}{' ' + r['error'] if r.get('error') else ''}")

    for g in as_list(load(a.results, "gemm.json")):
        why = bad(g)
        if why:
            row(g.get("what", "gemm"), why); failed = True; continue
        op = ("T" if g["trans_a"] else "N") + ("T" if g["trans_b"] else "N")
        peak = a.peak_tflops or (g.get("peak_gflops") or 0) / 1000
        row(f"sgemm {g['m']}x{g['n']}x{g['k']} {op}", f"{g['ms']:9.3f} ms", g["gflops"] / 1000, peak,
            f"median {g['gflops_median'] / 1000:.2f} TFLOP/s; {g['kernel']}")

    for m in as_list(load(a.results, "mssa.json")):
        why = bad(m)
        if why:
            row(m.get("what", "mssa"), why); failed = True; continue
        shape = f"N{m['n']} d{m['dim']} h{m['heads']} b{m['batch']}"
        row(f"mssa fwd {shape}", f"{m['forward_ms']:9.2f} ms", m["forward_tflops"], a.peak_tflops, "nominal FLOPs")
        row(f"mssa bwd {shape}", f"{m['backward_ms']:9.2f} ms", m["backward_tflops"], a.peak_tflops, "nominal FLOPs")

    for i in as_list(load(a.results, "ista.json")):
        why = bad(i)
        if why:
            row(i.get("what", "ista"), why); failed = True; continue
        # Nominal: the two-GEMM form is two n×d×d products forward and four backward.
        flops = 4.0 * i["n"] * i["dim"] ** 2 * i["batch"]
        shape = f"N{i['n']} d{i['dim']} b{i['batch']}"
        row(f"ista fwd {shape}", f"{i['forward_ms']:9.2f} ms", flops / i["forward_ms"] / 1e9, a.peak_tflops, f"nominal; {i['form']}")
        row(f"ista bwd {shape}", f"{i['backward_ms']:9.2f} ms", 2 * flops / i["backward_ms"] / 1e9, a.peak_tflops, "nominal")

    model = load(a.results, "model.json")
    why = bad(model)
    crate_ms = None
    if why:
        row("crateil model step", why); failed = True
    else:
        crate_ms = model["ms_per_step"]
        row(f"CrateIL {model['model']} p{model['patch']} @{model['image_size']} train b{model['batch']}",
            f"{crate_ms:9.1f} ms", None, None, f"{model['images_per_s']:.1f} img/s")
    for t in as_list(load(a.results, "torch.json")):
        why = bad(t)
        if why:
            row(t.get("what", "pytorch"), why)
            if t.get("failed"):
                failed = True
            continue
        prec = t.get("precision", "fp32")
        vs = f"; CrateIL/PyTorch time {crate_ms / t['ms_per_step']:.3g}x" if crate_ms else ""
        info = "" if prec == "fp32" else " (information)"
        row(f"PyTorch {t['torch']} {prec}{info} train b{t['batch']}", f"{t['ms_per_step']:9.1f} ms", None, None,
            f"{t['images_per_s']:.1f} img/s{vs}")

    w = max([len(r[0]) for r in rows] + [9])
    out.append("")
    out.append(f"{'benchmark':<{w}}  {'time':>12}  {'TFLOP/s':>8}  {'% peak':>7}  note")
    for what, time, tf, pc, note in rows:
        out.append(f"{what:<{w}}  {time:>12}  {tf:>8}  {pc:>7}  {note}")
    out.append("")
    out.append(f"{'FAILED' if failed else 'passed'}; {a.elapsed:.0f} s in all; files in {a.results}")
    print("\n".join(out))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
