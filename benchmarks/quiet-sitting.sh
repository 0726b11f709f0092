#!/usr/bin/env bash
# Quiet sitting (issue 10): every figure of the RESULTS sections "Issue 10, session 15/16/17/18". Build first:
#   dotnet build cli -c Release
# Run with nothing else on the machine; peers need /usr/bin/python3 with torch and libopenblas0-openmp.
# "AVX2 path" = DOTNET_EnableAVX512=0: the JIT uses no AVX-512 at all (GEMM picks vector256-6x16, TensorPrimitives and
# every Vector512 path fall back to 256 bits), the closest emulation of an AVX2-only CPU on this Zen 5.
cd "$(dirname "$0")/.."
C="dotnet cli/bin/Release/net10.0/crate.dll"
P=/usr/bin/python3
export OMP_NUM_THREADS=2
step() { echo "### $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg): $*"; "$@" 2>&1 | grep -v "^\s*iteration" | tail -${TAILN:-3}; }
A2="DOTNET_EnableAVX512=0"
CI="--model custom --image-size 32 --patch 4 --dim 192 --depth 6 --heads 3 --classes 10 --batch 32 --threads 2"
S="${*:-gemm mssa infer train ista crf peers}"
has() { [[ " $S " == *" $1 "* ]]; }
# The paired FMA peak is register-only; the copy bandwidth shows a neighbour contending for caches and memory.
probe() { TAILN=1 step $P benchmarks/host-probe.py; }
probe
if has gemm; then
  for sz in "1024 1024 1024" "197 384 384" "785 384 384" "2080 192 192" "192 192 2080"; do set -- $sz
    for mode in shared auto; do step env $A2 CRATEIL_GEMM_SPLIT=$mode CRATEIL_GEMM_DIRECT_A=0 $C bench gemm --m $1 --n $2 --k $3 --threads 2; done
    step env $A2 $C bench gemm --m $1 --n $2 --k $3 --threads 2   # op(A) read in place (session 16)
  done
  for mode in shared auto; do step env CRATEIL_GEMM_SPLIT=$mode CRATEIL_GEMM_DIRECT_A=0 $C bench gemm --threads 2; done
  step $C bench gemm --threads 2
fi
if has mssa; then
  step env $A2 $C bench mssa --threads 2 --attention both --iters 30
  step $C bench mssa --threads 2 --attention both --iters 30
fi
probe
if has infer; then
  step env $A2 $C bench model --model crate-t --mode infer --batch 1 --threads 2 --iters 60
  step env $A2 CRATEIL_GEMM_SPLIT=shared $C bench model --model crate-t --mode infer --batch 1 --threads 2 --iters 60
  step $C bench model --model crate-t --mode infer --batch 1 --threads 2 --iters 60
fi
probe
if has train; then
  step env $A2 $C bench model $CI --iters 30
  step env $A2 CRATEIL_GEMM_SPLIT=shared $C bench model $CI --iters 30
  step $C bench model $CI --iters 30
  step env $A2 $C bench model --model crate-t --batch 8 --threads 2 --iters 5
  step $C bench model --model crate-t --batch 8 --threads 2 --iters 5
fi
probe
if has ista; then
  step env $A2 $C bench ista --threads 2
  step $C bench ista --threads 2
fi
if has crf; then
  step env $A2 $C bench crf --size 480 --repeat 9
  step $C bench crf --size 480 --repeat 9
fi
probe
if has peers; then
  step $P benchmarks/peer/torch_mssa.py --n 785 --dim 384 --heads 6 --batch 1 --threads 2 --iters 20
  step $P benchmarks/peer/torch_model.py --model crate-t --mode infer --batch 1 --threads 2 --iters 20
  step $P benchmarks/peer/torch_model.py --model custom --dim 192 --depth 6 --heads 3 --patch 4 --image-size 32 --classes 10 --batch 32 --mode train --threads 2 --iters 10
  step $P benchmarks/peer/torch_model.py --model crate-t --batch 8 --mode train --threads 2 --iters 3
  step $P benchmarks/peer/torch_ista.py --threads 2
  step $P benchmarks/peer/numpy_sgemm.py --sizes 1024 --ops NN
fi
probe
echo "### done $(date -u +%T)"
