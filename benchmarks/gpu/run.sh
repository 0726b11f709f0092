#!/usr/bin/env bash
# The GPU check, runnable where only a driver exists (no .NET SDK): one command, under 10 minutes, that
#   1. unpacks the runtime and app made by benchmarks/gpu/pack.sh into a temp dir (xz and tar, or Python's tarfile)
#      and points DOTNET_ROOT at it,
#   2. runs `crate selftest --device cuda --json` (every op, block and a model step against the float64 references),
#   3. times SGEMM 1024³, 2048³, 4096³ (NN, NT, TN), the MSSA and ISTA blocks (dim 768, N 785 and 3137, batch 64)
#      and a CRATE-B/8 @224 training step (`crate bench ... --json`),
#   4. times the PyTorch peer of the same model step in strict fp32 (TF32 off) and, for information, TF32 and bf16
#      autocast (when python3 has torch with CUDA),
#   5. writes at most 8 files to the results folder and prints one summary table with % of the fp32 peak.
#
# Usage:  benchmarks/gpu/run.sh [--device cuda|cpu|opencl|ilgpu-cpu[:i]] [--smoke] [--pack DIR] [OUT_DIR]
#   OUT_DIR   results folder (default: $OUT, else a new temp dir)
#   --smoke   tiny shapes and `selftest --quick`: proves the pack and this script (e.g. --device cpu, no GPU)
#   --pack    the folder pack.sh wrote (default: artifacts/gpu-pack)
# Environment: PEAK_TFLOPS (fp32 non-tensor peak; default from the card's name), BENCH_ITERS (timed calls per
#   benchmark), MODEL_BATCH (default 32), RUN_BUDGET_S (default 540: later steps are skipped, not cut, past it).
# Results: selftest.json gemm.json mssa.json ista.json model.json torch.json summary.txt run.log
# Exit: 0 all passed and ran; 1 a check failed or a step did not run; 2 bad arguments or no pack.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.." || exit 2
repo=$(pwd)

device=cuda; smoke=0; pack=artifacts/gpu-pack; results=${OUT:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --device) [ $# -ge 2 ] || { echo "run.sh: --device needs a value" >&2; exit 2; }; device=$2; shift 2 ;;
    --device=*) device=${1#*=}; shift ;;
    --smoke) smoke=1; shift ;;
    --pack) [ $# -ge 2 ] || { echo "run.sh: --pack needs a folder" >&2; exit 2; }; pack=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) results=$1; shift ;;
  esac
done
case "$device" in cuda*|cpu*|opencl*|ilgpu-cpu*) ;; *) echo "run.sh: --device must be cuda, cpu, opencl or ilgpu-cpu[:index], not '$device'" >&2; exit 2 ;; esac
if [ ! -f "$pack/crate-app.tar.xz" ] || [ ! -f "$pack/dotnet-runtime.tar.xz" ]; then
  echo "run.sh: no pack in $pack: run benchmarks/gpu/pack.sh on a machine with the .NET SDK first" >&2; exit 2
fi
# unpack ARCHIVE DIR: with xz and tar, or else Python's tarfile (lzma is in its standard library).
if command -v xz >/dev/null 2>&1 && command -v tar >/dev/null 2>&1; then
  unpack() { xz -dc "$1" | tar -C "$2" -xf -; }
elif command -v python3 >/dev/null 2>&1; then
  unpack() { python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"; }
else
  echo "run.sh: neither xz and tar nor python3 here: cannot unpack" >&2; exit 2
fi
if [ "${device%%:*}" = cuda ] && ! nvidia-smi -L >/dev/null 2>&1; then
  echo "run.sh: no NVIDIA GPU here (nvidia-smi finds none); --device cpu checks the pack and this script" >&2; exit 2
fi

[ -n "$results" ] || results=$(mktemp -d -t crateil-gpu-XXXXXX)
mkdir -p "$results" || exit 2
results=$(cd "$results" && pwd)
tmp=$(mktemp -d -t crateil-run-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
parts=$tmp/parts; mkdir -p "$parts"
log=$results/run.log
start=$(date +%s)
budget=${RUN_BUDGET_S:-540}
status=0
: >"$log"
note() { echo "$*" | tee -a "$log"; }

# ---- runtime and app ----------------------------------------------------------------------------------------------
mkdir -p "$tmp/dotnet" "$tmp/app"
if ! unpack "$pack/dotnet-runtime.tar.xz" "$tmp/dotnet" || ! unpack "$pack/crate-app.tar.xz" "$tmp/app"; then
  echo "run.sh: unpacking $pack failed" >&2; exit 2
fi
export DOTNET_ROOT=$tmp/dotnet
unset DOTNET_HOST_PATH MSBuildExtensionsPath MSBuildSDKsPath
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the repo
crate=("$DOTNET_ROOT/dotnet" "$tmp/app/crate.dll")   # an array, not a function: `timeout` runs it

{
  echo "== run.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname 2>/dev/null), device $device$([ $smoke = 1 ] && echo ', smoke shapes')"
  echo "== pack: $(tr '\n' ';' <"$pack/manifest.txt" 2>/dev/null)"
  echo "== runtime (from the pack, DOTNET_ROOT=$DOTNET_ROOT):"; "$DOTNET_ROOT/dotnet" --list-runtimes
  echo "== dotnet on the PATH: $(command -v dotnet || echo none)"
  uname -a
  nvidia-smi 2>/dev/null || true
} >>"$log" 2>&1

card="$device"; driver="-"
if [ "${device%%:*}" = cuda ]; then
  card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
fi
peak=${PEAK_TFLOPS:-}
if [ -z "$peak" ]; then
  # fp32 FMA peak without tensor cores (vendor figures).
  case "$card" in
    *H100*PCIe*) peak=51.2 ;; *H100*NVL*|*H200*NVL*) peak=60 ;; *H100*|*H200*) peak=67 ;;
    *A100*) peak=19.5 ;; *L40S*) peak=91.6 ;; *) peak="" ;;
  esac
fi
note "== device $device: $card, driver $driver, fp32 peak ${peak:-unknown} TFLOP/s; results in $results"

# step NAME PART_FILE TIMEOUT_S CMD...: runs CMD with its stdout as PART_FILE, within the remaining budget.
step() {
  local name=$1 out=$2 limit=$3; shift 3
  local left=$((budget - ($(date +%s) - start)))
  if [ "$left" -lt 20 ]; then
    note "   $name: skipped (run budget of ${budget}s spent)"
    printf '{"what": "%s", "skipped": "run budget spent"}\n' "$name" >"$out"; status=1; return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0; t0=$(date +%s)
  local err; err=$tmp/$(basename "$out").err
  timeout "$limit" "$@" >"$out" 2>"$err"
  local rc=$?
  if [ "$rc" = 0 ]; then
    note "   $name: ok ($(( $(date +%s) - t0 )) s)"; cat "$err" >>"$log"; return 0
  fi
  cat "$err" >>"$log"
  if [ "$rc" = 1 ] && [ "$(head -c1 "$out" 2>/dev/null)" = "{" ]; then
    # A complete report of failed checks (selftest exits 1): keep it.
    note "   $name: ran, with FAILED checks (exit 1; see $(basename "$out"))"; status=1; return 1
  fi
  local why; why=$(tail -3 "$err" | tr '\n"\\' '   ' | cut -c1-300)
  [ "$rc" = 124 ] && why="timed out after ${limit}s; $why"
  note "   $name: FAILED (exit $rc): $why"
  printf '{"what": "%s", "failed": true, "exit": %d, "error": "%s"}\n' "$name" "$rc" "$why" >"$out"
  status=1; return 1
}
merge() { # merge OUT FILES...: a JSON array of the objects in FILES
  local out=$1 first=1; shift
  { echo "["; for f in "$@"; do [ -s "$f" ] || continue; [ $first = 1 ] || echo ","; cat "$f"; first=0; done; echo "]"; } >"$out"
}
iters=(); [ -n "${BENCH_ITERS:-}" ] && iters=(--iters "$BENCH_ITERS")

# ---- 1. selftest --------------------------------------------------------------------------------------------------
note "== selftest"
selftest_args=(selftest --device "$device" --json); [ $smoke = 1 ] && selftest_args+=(--quick)
step "selftest" "$results/selftest.json" 420 "${crate[@]}" "${selftest_args[@]}"

# ---- 2. GEMM ------------------------------------------------------------------------------------------------------
note "== SGEMM"
if [ $smoke = 1 ]; then sizes=(128); gemm_iters=(--iters "${BENCH_ITERS:-2}"); else sizes=(1024 2048 4096); gemm_iters=("${iters[@]}"); fi
gemm_parts=()
for size in "${sizes[@]}"; do
  for op in NN NT TN; do
    flags=(); [ "${op:0:1}" = T ] && flags+=(--transa); [ "${op:1:1}" = T ] && flags+=(--transb)
    f=$parts/gemm-$size-$op.json; gemm_parts+=("$f")
    step "gemm $size³ $op" "$f" 90 "${crate[@]}" bench gemm --device "$device" --m "$size" --n "$size" --k "$size" "${flags[@]}" "${gemm_iters[@]}" --json
  done
done
merge "$results/gemm.json" "${gemm_parts[@]}"

# ---- 3. MSSA and ISTA blocks --------------------------------------------------------------------------------------
note "== MSSA and ISTA blocks"
if [ $smoke = 1 ]; then ns=(65 197); dim=64; heads=2; batch=2; block_iters=(--iters "${BENCH_ITERS:-2}"); ista_time=(--seconds 0.2)
else ns=(785 3137); dim=768; heads=12; batch=64; block_iters=("${iters[@]}"); ista_time=(); fi
mssa_parts=(); ista_parts=()
for n in "${ns[@]}"; do
  f=$parts/mssa-$n.json; mssa_parts+=("$f")
  step "mssa N$n" "$f" 240 "${crate[@]}" bench mssa --device "$device" --n "$n" --dim "$dim" --heads "$heads" --batch "$batch" "${block_iters[@]}" --json
  f=$parts/ista-$n.json; ista_parts+=("$f")
  step "ista N$n" "$f" 120 "${crate[@]}" bench ista --device "$device" --n "$n" --dim "$dim" --batch "$batch" "${ista_time[@]}" --json
done
merge "$results/mssa.json" "${mssa_parts[@]}"
merge "$results/ista.json" "${ista_parts[@]}"

# ---- 4. CRATE-B/8 training step, CrateIL and PyTorch ----------------------------------------------------------------
if [ $smoke = 1 ]; then
  model_args=(--model custom --dim 64 --depth 2 --heads 2 --patch 16 --image-size 64 --classes 10 --batch 2)
  peer_args=(--model custom --dim 64 --depth 2 --heads 2 --patch 16 --image-size 64 --classes 10 --batch 2)
  model_iters=(--warmup 1 --iters "${BENCH_ITERS:-2}")
else
  model_args=(--model crate-b --patch 8 --image-size 224 --batch "${MODEL_BATCH:-32}")
  peer_args=(--model crate-b --patch 8 --image-size 224 --classes 1000 --batch "${MODEL_BATCH:-32}")
  model_iters=("${iters[@]}")
fi
note "== model training step (${model_args[*]})"
step "crateil model" "$results/model.json" 300 "${crate[@]}" bench model --device "$device" "${model_args[@]}" --mode train "${model_iters[@]}" --json

torch_device=cpu; [ "${device%%:*}" = cuda ] && torch_device=cuda
precisions=(fp32); [ "$torch_device" = cuda ] && precisions=(fp32 tf32 bf16)
torch_parts=()
if command -v python3 >/dev/null 2>&1 && python3 -c 'import torch' >/dev/null 2>&1; then
  for precision in "${precisions[@]}"; do
    f=$parts/torch-$precision.json; torch_parts+=("$f")
    step "pytorch $precision" "$f" 240 python3 benchmarks/peer/torch_model.py --device "$torch_device" "${peer_args[@]}" \
      --mode train --precision "$precision" --threads "$(nproc 2>/dev/null || echo 2)" "${model_iters[@]}" --json
  done
else
  note "   pytorch: skipped (no python3 with torch here)"
  f=$parts/torch-none.json; torch_parts+=("$f")
  echo '{"what": "pytorch", "skipped": "no python3 with torch"}' >"$f"
fi
merge "$results/torch.json" "${torch_parts[@]}"

# ---- 5. summary ---------------------------------------------------------------------------------------------------
elapsed=$(( $(date +%s) - start ))
if command -v python3 >/dev/null 2>&1; then
  python3 "$here/summarize.py" "$results" --card "$card" --driver "$driver" --device "$device" --peak-tflops "${peak:-0}" \
    --elapsed "$elapsed" --status "$status" | tee "$results/summary.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
else
  echo "python3 missing: no summary table; the figures are in $results/*.json" | tee "$results/summary.txt"
fi
exit $status
