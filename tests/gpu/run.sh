#!/usr/bin/env bash
# tests/gpu/run.sh - the one script for a lent GPU machine (H100 / H200), under 8 minutes:
#   1. build (make -j16) and tests/gpu/test_cuda.c;
#   2. correctness: every CUDA kernel, a batched forward and one whole LoRA training step
#      against the CPU backend (test_cuda check: PASS/FAIL with relative errors and bounds:
#      results stored as bf16 activations 1e-2, whole passes 3e-2, fp32 results from the
#      same inputs 1e-6..1e-4, AdamW, the dropout mask and the upload staging ring 0, i.e.
#      bit for bit; an INFO line says how many greedy tokens GPU and CPU share), twice: with the default staged (asynchronous) uploads
#      and with ITREK_CUDA_SYNC_UPLOAD=1 (every upload a synchronous cudaMemcpy, the previous
#      path); the checks include the graphed decode step (llm_decode_step with CUDA graphs)
#      against the same steps without graphs (logits bit for bit, greedy tokens the same)
#      and against the CPU; and tests/llm/cuda.sh (--device cuda in bin/llm on stories260K);
#   3. benchmarks on the LLaMA-7B shape (hidden 4096, 32 layers, 32 heads, intermediate 11008,
#      vocab 32000) with random weights made on the GPU: (a) a LoRA step, int8 base, batch
#      4 x 1024, recomputation on, with a profile of one step by operation, and again with
#      ITREK_CUDA_ATTN=warp (the warp-per-row training attention against cuBLAS's); (b) greedy decoding at batch 1, 32, 128; (c) Hugging Face
#      PEFT LoRA in bf16 on the same shape (tests/gpu/peft_bench.py); decoding at batch 1 and
#      32 is timed again with ITREK_CUDA_SYNC_UPLOAD=1 (staged vs synchronous uploads); every
#      decoding batch size is timed without and with the decode step's CUDA graphs;
#   4. a short table; the full log is $OUT/gpu.log (or /tmp/itrek-gpu/ when OUT is unset).
# Without a GPU it prints "SKIP no GPU" and exits 0. Each step has its own time limit.
# ITREK_GPU_PREBUILT=DIR runs binaries built on another machine, for a device machine that
# lacks the Debian -dev packages: DIR/bin (the programs), DIR/test_cuda, DIR/lib (shared
# libraries put first on LD_LIBRARY_PATH) and DIR/shared (as SHARED); dev/gpu/prebuild.sh
# makes DIR. ITREK_GPU_QUICK=1 leaves out the ITREK_CUDA_SYNC_UPLOAD=1 repetitions.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
QUICK=${ITREK_GPU_QUICK:-0}
OUT=${OUT:-${TMPDIR:-/tmp}/itrek-gpu}
mkdir -p "$OUT"
LOG=$OUT/gpu.log
: >"$LOG"
say() { echo "$@" | tee -a "$LOG"; }
step() { # NAME LIMIT_S CMD... : run with a time limit, output into the log
    local name=$1 lim=$2; shift 2
    say "=== $name (limit ${lim}s): $*"
    local a=$(date +%s.%N)
    timeout -k 5 "$lim" "$@" >>"$LOG" 2>&1
    local rc=$? b=$(date +%s.%N)
    say "=== $name: exit $rc after $(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.1f", b - a}') s"
    return $rc
}
T0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv >>"$LOG" 2>&1 || true

. tests/gpu/env.sh
if [ -z "$PREBUILT" ]; then
    step build 240 make -j16 || { say "build failed"; tail -30 "$LOG"; exit 1; }
    NV=/usr/local/cuda/lib64
    step build-test 60 cc -Icommon -D_GNU_SOURCE -I/usr/include/x86_64-linux-gnu/openblas-pthread -DITREK_HAVE_CUDA=1 \
        -std=c11 -O2 -g -Wall -Wextra -Werror -pthread -o build/rel/tests/test_cuda tests/gpu/test_cuda.c tests/gpu/bench_cuda.c \
        build/rel/libitrek.a -L$NV -Wl,-rpath,$NV -lcudart -lstdc++ -ldl -lmsgpackc -lzstd -ljansson -lpcre2-8 -ldnnl -lopenblas -lm ||
        { tail -30 "$LOG"; exit 1; }
fi

if timeout -k 5 150 "$TC" check >"$OUT/check.txt" 2>&1; then check_rc=0; else check_rc=$?; fi
cat "$OUT/check.txt" >>"$LOG"
if grep -q '^SKIP no GPU' "$OUT/check.txt"; then cat "$OUT/check.txt"; exit 0; fi
say "=== check: exit $check_rc"
check_sync_rc=0
if [ "$QUICK" != 1 ]; then
    if ITREK_CUDA_SYNC_UPLOAD=1 timeout -k 5 120 "$TC" check >"$OUT/check-sync.txt" 2>&1; then check_sync_rc=0; else check_sync_rc=$?; fi
    cat "$OUT/check-sync.txt" >>"$LOG"
    say "=== check with ITREK_CUDA_SYNC_UPLOAD=1: exit $check_sync_rc"
else
    echo "SKIP (ITREK_GPU_QUICK=1)" >"$OUT/check-sync.txt"
fi
step cli-cuda 60 env BINDIR=$BIN UNITDIR=/nonexistent tests/run.sh llm/cuda

step roofline 60 "$TC" roofline
step train-bench 150 "$TC" train-bench 32
step train-bench-warp 150 env ITREK_CUDA_ATTN=warp "$TC" train-bench 32
step gen-bench 210 "$TC" gen-bench 32 128 128 1,32,128 both
[ "$QUICK" = 1 ] || step gen-bench-sync 90 env ITREK_CUDA_SYNC_UPLOAD=1 "$TC" gen-bench 32 128 128 1,32 off
if python3 -c 'import torch, transformers, peft' 2>/dev/null; then
    step peft-bench 170 python3 tests/gpu/peft_bench.py --layers 32
else
    say "SKIP peft-bench: no torch/transformers/peft"
fi

# ---- the table
r() { grep -h "^RESULT $1[ =]" "$LOG" | tail -1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }
{
    echo
    echo "device: $(grep -m1 '^device:' "$OUT/check.txt" | cut -d' ' -f2-)"
    echo "correctness: $(grep -c '^PASS' "$OUT/check.txt") PASS, $(grep -c '^FAIL' "$OUT/check.txt") FAIL (test_cuda check); $(grep -h '^llm/cuda.sh' "$LOG" | tail -1)"
    grep '^FAIL' "$OUT/check.txt" || true
    echo "correctness, synchronous uploads: $(grep -c '^PASS' "$OUT/check-sync.txt") PASS, $(grep -c '^FAIL' "$OUT/check-sync.txt") FAIL"
    grep '^FAIL' "$OUT/check-sync.txt" || true
    printf '%-44s %s\n' "measured copy bandwidth GB/s" "$(r roofline copy_bandwidth_gbs)"
    printf '%-44s %s\n' "measured int8->bf16 product TFLOPS" "$(r roofline int8_bf16_matmul_tflops)"
    printf '%-44s %s\n' "benchmark (LLaMA-7B shape)" "value"
    printf '%-44s %s\n' "ours: LoRA step tokens/s (int8, 4x1024, recompute)" "$(r train tokens_per_s)"
    printf '%-44s %s\n' "ours: step s (best) / MFU" "$(r train best_step_s) / $(r train mfu)"
    printf '%-44s %s\n' "ours: peak memory GiB (pool)" "$(r train_peak_gib train_peak_gib)"
    printf '%-44s %s\n' "ours, warp attention: LoRA step tokens/s" "$(r train-warp tokens_per_s)"
    printf '%-44s %s\n' "PEFT bf16: tokens/s (grad. checkpointing)" "$(r peft-gc tokens_per_s)"
    printf '%-44s %s\n' "PEFT bf16: peak memory GiB (gc)" "$(r peft-gc peak_gib)"
    printf '%-44s %s\n' "PEFT bf16: tokens/s (no checkpointing)" "$(r peft-nogc tokens_per_s)"
    awk '/^profile of one step/ {on = 1} on && /^=== train-bench/ {exit} on && !/^RESULT/' "$LOG"
    grep -h '^INFO' "$OUT/check.txt" "$LOG" | sort -u
    for b in 1 32 128; do
        printf '%-44s %s\n' "ours: decode tokens/s, batch $b" \
            "$(grep -h "^RESULT gen .* batch=$b .*uploads=staged graphs=off" "$LOG" | tail -1 | tr ' ' '\n' | sed -n 's/^decode_tokens_per_s=//p')"
    done
    for b in 1 32 128; do
        printf '%-44s %s\n' "ours: decode tokens/s, batch $b, CUDA graphs" \
            "$(grep -h "^RESULT gen .* batch=$b .*uploads=staged graphs=on" "$LOG" | tail -1 | tr ' ' '\n' | sed -n 's/^decode_tokens_per_s=//p')"
    done
    for b in 1 32; do
        printf '%-44s %s\n' "ours: decode tokens/s, batch $b, sync uploads" \
            "$(grep -h "^RESULT gen .* batch=$b .*uploads=sync graphs=off" "$LOG" | tail -1 | tr ' ' '\n' | sed -n 's/^decode_tokens_per_s=//p')"
    done
    echo "total wall time: $(( $(date +%s) - T0 )) s; full log: $LOG"
} | tee -a "$LOG" >"$OUT/table.txt"
cat "$OUT/table.txt"
[ "$check_rc" -eq 0 ] && [ "$check_sync_rc" -eq 0 ]
