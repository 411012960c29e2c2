#!/usr/bin/env bash
# tests/llm/cuda.sh - `--device` in bin/llm and bin/lora-train. Without a usable GPU (or in a
# build without nvcc) `--device cuda` must fail with one clear line and exit 1; with one, the
# CUDA backend must reproduce the CPU's greedy tokens and logits on stories260K (the kernel
# by kernel comparison and the benchmarks are tests/gpu/run.sh).
. "$ITREK_ROOT/tests/cli/lib.sh"
LLM=$BINDIR/llm
LT=$BINDIR/lora-train
M=$SHARED/models/stories260K
"$LLM" convert-llama2c "$M/stories260K.bin" "$M/tok512.bin" "$T/hf" >/dev/null 2>&1 || fail convert

# usage errors do not depend on the machine
expect_fail device-unknown 2 "^llm: --device: expected cpu or cuda, not 'gpu'" "$LLM" generate --model "$T/hf" --ids 1 -n 2 --device gpu
expect_fail lt-device-unknown 2 "^lora-train: --device: expected cpu or cuda" "$LT" --model "$T/hf" --out "$T/x" --device tpu /dev/null
expect_fail lt-full-cuda 2 'full runs on the CPU only' "$LT" --model "$T/hf" --out "$T/x" --full --device cuda /dev/null
expect_ok device-cpu "$LLM" generate --model "$T/hf" --ids 1 -n 5 --print-ids --device cpu
if [ "$(cat "$T/out")" = "403 407 261 378 432" ]; then pass device-cpu-output; else fail device-cpu-output "$(cat "$T/out")"; fi

"$LLM" generate --model "$T/hf" --ids 1 -n 20 --print-ids --device cuda >"$T/cuda.out" 2>"$T/cuda.err"
rc=$?
if [ $rc -ne 0 ]; then
    # no GPU here: one line, exit 1, naming the device and the reason
    if [ $rc -eq 1 ] && [ "$(wc -l <"$T/cuda.err")" -eq 1 ] &&
        grep -Eq '^llm: error: --device cuda: (no usable CUDA device|built without CUDA|cannot load cuBLAS|cannot use CUDA device)' "$T/cuda.err"; then
        pass cuda-unavailable-message
    else
        fail cuda-unavailable-message "exit $rc: $(head -c 300 "$T/cuda.err")"
    fi
    expect_fail cuda-logits-unavailable 1 '^llm: error: --device cuda: ' "$LLM" logits --model "$T/hf" --ids 1 --device cuda
    expect_fail cuda-bench-unavailable 1 '^llm: error: --device cuda: ' "$LLM" bench --model "$T/hf" --device cuda
    expect_fail cuda-lora-unavailable 1 '^lora-train: error: --device cuda: ' "$LT" --model "$T/hf" --out "$T/x" --device cuda /dev/null
    echo "SKIP cuda-runs (no GPU: $(cat "$T/cuda.err"))"
    exit 0
fi

# a GPU: the same greedy tokens, and logits within the bound tests/gpu/test_cuda.c gives a
# whole pass with bf16 activations (the CUDA backend's; the CPU's are fp32): relative error
# max|cuda - cpu| / max|cpu| under 3e-2
"$LLM" generate --model "$T/hf" --ids 1 -n 20 --print-ids --device cpu >"$T/cpu.out" 2>/dev/null
same cuda-greedy-tokens "$T/cpu.out" "$T/cuda.out"
"$LLM" logits --model "$T/hf" --ids "1 403 407 261" --device cpu >"$T/l.cpu" 2>/dev/null
"$LLM" logits --model "$T/hf" --ids "1 403 407 261" --device cuda >"$T/l.cuda" 2>/dev/null
rel=$(paste "$T/l.cpu" "$T/l.cuda" | awk '{d=$1-$2; if (d<0) d=-d; if (d>m) m=d; a=$1<0?-$1:$1; if (a>r) r=a}
    END {if (NR != 512 || r == 0) print "nan"; else printf "%.3e", m / r}')
echo "INFO cuda-logits: relative error $rel over $(wc -l <"$T/l.cuda") logits"
if awk -v r="$rel" 'BEGIN {exit !(r != "nan" && r + 0 < 3e-2)}'; then
    pass cuda-logits
else
    fail cuda-logits "relative error $rel over $(wc -l <"$T/l.cuda") logits (bound 3e-2)"
fi
expect_ok cuda-int8 "$LLM" generate --model "$T/hf" --ids 1 -n 8 --print-ids --int8 --device cuda
expect_ok cuda-bench "$LLM" bench --model "$T/hf" --device cuda --threads 1
