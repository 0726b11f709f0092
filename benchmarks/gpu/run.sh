#!/usr/bin/env bash
# GPU check for CrateIL on a machine with an NVIDIA GPU (made for one H100; finishes in under 5 minutes):
#   1. builds Release,
#   2. runs the Compute kernel tests; their "cuda" theory rows run because a CUDA device exists (a skipped
#      CUDA row is reported as a failure here),
#   3. times SGEMM at 1024³, 2048³ and 4096³ for (N,N), (N,T) and (T,N) with `crate bench gemm --device cuda`
#      and reports TFLOP/s against the fp32 (non-tensor-core) peak, 67 TFLOP/s for an H100 SXM.
# Without a GPU it says so and exits 0. Results (one JSON object per GEMM) go to $RESULTS_DIR (default: a temp dir).
# Environment: PEAK_TFLOPS (default 67), BENCH_ITERS (timed calls per shape; default: the bench's own ~3 s rule),
#              SKIP_TESTS=1 (benchmarks only).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "benchmarks/gpu/run.sh: nvidia-smi not found: no NVIDIA GPU on this machine, nothing to do"
  exit 0
fi
if ! gpus=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null) || [ -z "$gpus" ]; then
  echo "benchmarks/gpu/run.sh: nvidia-smi finds no usable GPU, nothing to do"
  exit 0
fi

peak_tflops=${PEAK_TFLOPS:-67}
results=${RESULTS_DIR:-$(mktemp -d -t crateil-gpu-XXXXXX)}
mkdir -p "$results"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
start=$(date +%s)
status=0

echo "== GPU: $gpus"
echo "== results: $results"

echo "== build (Release)"
if ! timeout 180 dotnet build CrateIL.sln -c Release -nologo -v q >"$results/build.log" 2>&1; then
  tail -30 "$results/build.log"
  echo "build failed"
  exit 1
fi

if [ "${SKIP_TESTS:-0}" != "1" ]; then
  echo "== Compute kernel tests (cuda rows included)"
  log="$results/tests.log"
  timeout 240 dotnet test tests/CrateIL.Compute.Tests -c Release --no-build --nologo \
    --logger "console;verbosity=normal" >"$log" 2>&1
  rc=$?
  grep -E '^\s+(Failed|Skipped) |Error Message|Total tests|^\s+(Passed|Failed|Skipped):' "$log" | head -80
  cuda_passed=$(grep -cE '^\s+Passed .*"cuda"' "$log")
  cuda_skipped=$(grep -cE '^\s+Skipped .*"cuda"' "$log")
  echo "cuda rows: $cuda_passed passed, $cuda_skipped skipped"
  if [ "$rc" -ne 0 ]; then echo "tests FAILED (exit $rc; log: $log)"; status=1; fi
  if [ "$cuda_skipped" -gt 0 ] || [ "$cuda_passed" -eq 0 ]; then
    echo "CUDA rows did not run although nvidia-smi sees a GPU (see the skip reasons above)"; status=1
  fi
fi

echo "== SGEMM on cuda (peak ${peak_tflops} TFLOP/s fp32)"
printf '%-6s %-5s %10s %10s %9s %8s  %s\n' size op ms_best TFLOP/s median %peak kernel
iters_flag=()
[ -n "${BENCH_ITERS:-}" ] && iters_flag=(--iters "$BENCH_ITERS")
field() { # field NAME FILE: a number or string value of "name": ... in the bench's JSON
  sed -nE "s/^[[:space:]]*\"$1\":[[:space:]]*\"?([^\",]*)\"?,?[[:space:]]*$/\1/p" "$2" | head -1
}
for size in 1024 2048 4096; do
  for op in NN NT TN; do
    flags=()
    [ "${op:0:1}" = T ] && flags+=(--transa)
    [ "${op:1:1}" = T ] && flags+=(--transb)
    out="$results/gemm-$size-$op.json"
    if ! timeout 60 dotnet run --no-build --project cli -c Release -- bench gemm --device cuda \
        --m "$size" --n "$size" --k "$size" "${flags[@]}" "${iters_flag[@]}" --json >"$out" 2>"$out.err"; then
      printf '%-6s %-5s  failed: %s\n' "$size" "$op" "$(tail -3 "$out.err" | tr '\n' ' ')"
      status=1
      continue
    fi
    gflops=$(field gflops "$out"); median=$(field gflops_median "$out"); ms=$(field ms "$out"); kernel=$(field kernel "$out")
    if [ -z "$gflops" ]; then
      printf '%-6s %-5s  no "gflops" in the output (%s)\n' "$size" "$op" "$out"; status=1; continue
    fi
    awk -v s="$size" -v o="$op" -v g="$gflops" -v md="${median:-0}" -v ms="$ms" -v p="$peak_tflops" -v k="$kernel" \
      'BEGIN { printf "%-6s %-5s %10.3f %10.2f %9.2f %7.1f%%  %s\n", s, o, ms, g / 1000, md / 1000, 100 * g / 1000 / p, k }'
  done
done

# ---- MSSA block (nn-mssa): CUDA rows of the MSSA/MHSA tests, then forward/backward TFLOP/s --------------------
# `crate bench mssa --device cuda` at dim 768 (12 heads of 64), batch 64, N = 785 and 3137. TFLOP/s are nominal
# (GEMM-equivalent FLOPs of projections, scores and P·V; backward counted as twice the forward, the flash
# recomputation of the probabilities not counted).
if [ "${SKIP_TESTS:-0}" != "1" ]; then
  echo "== Nn attention tests (cuda rows included)"
  log="$results/nn-mssa-tests.log"
  timeout 300 dotnet test tests/CrateIL.Nn.Tests -c Release --no-build --nologo \
    --filter "FullyQualifiedName~Mssa|FullyQualifiedName~Mhsa|FullyQualifiedName~KernelCompilationTests" \
    --logger "console;verbosity=normal" >"$log" 2>&1
  rc=$?
  grep -E '^\s+(Failed|Skipped) |Error Message|Total tests|^\s+(Passed|Failed|Skipped):' "$log" | head -60
  if [ "$rc" -ne 0 ]; then echo "Nn attention tests FAILED (exit $rc; log: $log)"; status=1; fi
  if [ "$(grep -cE '^\s+Skipped .*"cuda"' "$log")" -gt 0 ]; then echo "CUDA rows of the Nn attention tests were skipped"; status=1; fi
fi
echo "== MSSA block on cuda (dim 768, heads 12, batch 64)"
printf '%-6s %12s %12s %12s %12s\n' N fwd_ms bwd_ms fwd_TFLOP/s bwd_TFLOP/s
for n in 785 3137; do
  out="$results/mssa-$n.json"
  if ! timeout 240 dotnet run --no-build --project cli -c Release -- bench mssa --device cuda \
      --n "$n" --dim 768 --heads 12 --batch 64 "${iters_flag[@]}" --json >"$out" 2>"$out.err"; then
    printf '%-6s  failed: %s\n' "$n" "$(tail -3 "$out.err" | tr '\n' ' ')"
    status=1
    continue
  fi
  printf '%-6s %12s %12s %12s %12s\n' "$n" "$(field forward_ms "$out")" "$(field backward_ms "$out")" \
    "$(field forward_tflops "$out")" "$(field backward_tflops "$out")"
done
# ---- end MSSA block ---------------------------------------------------------------------------------------------

# ---- CRATE-B/8 model step ---------------------------------------------------------------------------------------
# A full training step (forward, cross-entropy, backward, AdamW) of CRATE-B/8 at 224² (785 tokens, 1000 classes)
# with `crate bench model --device cuda`; a PyTorch peer line (TF32 off, i.e. the same fp32 arithmetic) only when
# torch with CUDA exists on this machine.
echo "== CRATE-B/8 @224 training step on cuda (batch ${MODEL_BATCH:-32})"
printf '%-10s %12s %12s\n' who ms/step img/s
out="$results/model-crate-b8.json"
if timeout 300 dotnet run --no-build --project cli -c Release -- bench model --device cuda --model crate-b --patch 8 \
    --image-size 224 --batch "${MODEL_BATCH:-32}" --mode train "${iters_flag[@]}" --json >"$out" 2>"$out.err"; then
  printf '%-10s %12s %12s\n' CrateIL "$(field ms_per_step "$out")" "$(field images_per_s "$out")"
else
  printf '%-10s  failed: %s\n' CrateIL "$(tail -3 "$out.err" | tr '\n' ' ')"
  status=1
fi
if command -v python3 >/dev/null 2>&1 && python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  out="$results/model-crate-b8-torch.json"
  if timeout 300 python3 -c 'import torch; torch.backends.cuda.matmul.allow_tf32 = False; torch.backends.cudnn.allow_tf32 = False
import runpy, sys; sys.argv = ["torch_model.py"] + sys.argv[1:]; runpy.run_path("benchmarks/peer/torch_model.py", run_name="__main__")' \
      --device cuda --model crate-b --patch 8 --image-size 224 --batch "${MODEL_BATCH:-32}" --mode train \
      ${BENCH_ITERS:+--iters "$BENCH_ITERS"} --json >"$out" 2>"$out.err"; then
    printf '%-10s %12s %12s\n' "PyTorch" "$(field ms_per_step "$out")" "$(field images_per_s "$out")"
  else
    printf '%-10s  failed: %s\n' PyTorch "$(tail -3 "$out.err" | tr '\n' ' ')"
  fi
else
  echo "(no torch with CUDA here: PyTorch peer line skipped)"
fi
# ---- end CRATE-B/8 model step -----------------------------------------------------------------------------------

echo "== done in $(( $(date +%s) - start )) s; status $status"
exit $status
