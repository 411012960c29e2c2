#!/usr/bin/env bash
# bench/train-bench.sh - training throughput (tokens/s: forward + backward + AdamW update, all
# tokens of an update) of small random LLaMA models as the default profile trains them: full-
# parameter pretraining on text and LoRA (q,k,v,o r16) on instructions, context 256 and 512.
# Models: 4 layers, 4 heads, intermediate 3 x hidden, vocab 4096 (a BPE tokenizer trained with
# spm_train on the repository's docs and sources), hidden 128 and 256 (1.4M and 4.5M params).
#
# Usage: BINDIR=bin [REFDIR=DIR | REFCORE=NAME] tests/bench/train-bench.sh [THREADS (2)] [STEPS (4)] [REPS (2)]
#   REFDIR: a directory with another build's lora-train (e.g. a copy of bin/ made before a
#   change); each figure is then compared with it, run interleaved in the same invocation.
#   REFCORE: the reference is the same binary, same threads, with OPENBLAS_CORETYPE=REFCORE
#   (e.g. Prescott, the SSE3 fallback Debian's OpenBLAS picks on CPUs it does not know; the
#   measured side keeps the environment's choice, the Makefile's Haswell under `make`).
#   Without either the reference is the same binary at --threads 1 (the threading gain).
# A figure is the best per-update tokens/s over updates 2..STEPS of REPS runs (the first
# update grows the buffers). Prints one line per configuration and the ratio new / reference.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${BINDIR:-$ROOT/bin}
REF=${REFDIR:-}
REFCORE=${REFCORE:-}
THR=${1:-2} STEPS=${2:-4} REPS=${3:-2}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT

# tokenizer (vocab 4096) and text: the repository's prose and sources, one document per line
cat "$ROOT"/docs/*.md "$ROOT"/common/*/*.c "$ROOT"/stages/*.c | grep -v '^[[:space:]]*$' >"$t/text.txt"
spm_train --input="$t/text.txt" --model_prefix="$t/tok" --vocab_size=4096 --model_type=bpe --character_coverage=1.0 \
    --byte_fallback=true --bos_id=1 --eos_id=2 --unk_id=0 --pad_id=-1 --minloglevel=2 >/dev/null 2>&1

# instructions (TALLRec-like prompts, 150-450 tokens) as an itrek.instructions stream
awk 'BEGIN {
    srand(1)
    W = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request."
    print "{\"schema\":\"itrek.instructions\",\"version\":1,\"params\":{\"scheme\":\"bench\"},\"stats\":{}}"
    split("Toy Story|Heat|Fargo|Babe|Casino|Sabrina|Jumanji|Balto|Braveheart|Apollo 13|Batman Forever|Clueless|Richard III|Dead Man Walking|Seven|The Usual Suspects|Mighty Aphrodite|Postino|Mr. Hollands Opus|French Twist", T, "|")
    for (i = 1; i <= 400; i++) {
        h = ""; n = 10 + int(rand() * 30)
        for (j = 0; j < n; j++) h = h (j ? ", " : "") "\\\"" T[1 + int(rand() * 20)] " (" 1990 + int(rand() * 8) ")\\\""
        printf "{\"id\":%d,\"task\":\"pointwise\",\"user\":%d,\"prompt\":\"%s\\n\\n### Instruction:\\nGiven the user'"'"'s liked movies, will the user like the target movie? Answer Yes or No.\\n\\n### Input:\\nUser preference: %s\\nTarget movie: \\\"%s\\\"\\n\\n### Response:\\n\",\"response\":\"%s\",\"items\":[1]}\n", i, i, W, h, T[1 + int(rand() * 20)], (i % 3 ? "No" : "Yes")
    }
}' >"$t/ins.jsonl"
"$B/json2mp" "$t/ins.jsonl" -o "$t/ins.mp"

for h in 128 256; do
    cat >"$t/cfg$h.json" <<JSON
{"model_type": "llama", "hidden_size": $h, "intermediate_size": $((3 * h)), "num_hidden_layers": 4, "num_attention_heads": 4,
 "num_key_value_heads": 4, "vocab_size": 4096, "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
 "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2}
JSON
    "$B/llm" init --config "$t/cfg$h.json" --tokenizer "$t/tok.model" "$t/m$h" >/dev/null
done

# best tokens/s over updates >= 2 of one run: run BIN THREADS MODEL MODE CTX
run() {
    local args=(--model "$t/$3" --out "$t/out" --steps "$STEPS" --warmup 1 --lr 1e-4 --ctx "$5" --threads "$2"
                --eval-every 1000000 --val-frac 0.01 --quiet --log "$t/log")
    if [ "$4" = full ]; then args+=(--full --text "$t/text.txt"); else args+=("$t/ins.mp"); fi
    rm -rf "$t/out"
    env ${CORE:+OPENBLAS_CORETYPE=$CORE} "$1/lora-train" "${args[@]}" 2>/dev/null
    awk -F'"tokens_per_s":' 'NR > 1 { split($2, a, /[,}]/); if (a[1] > m) m = a[1] } END { printf "%.0f", m }' "$t/log"
}

if [ -n "$REF" ]; then echo "reference: $REF/lora-train at --threads $THR"
elif [ -n "$REFCORE" ]; then echo "reference: the same binary at --threads $THR with OPENBLAS_CORETYPE=$REFCORE (measured: ${OPENBLAS_CORETYPE:-the detected kernels})"
else echo "reference: the same binary at --threads 1"; fi
printf '%-6s %-5s %4s %10s %10s %6s\n' model mode ctx "tok/s" "ref tok/s" ratio
for m in m128 m256; do
    for mode in full lora; do
        for ctx in 256 512; do
            best=0 rbest=0
            for ((r = 0; r < REPS; r++)); do
                if [ -n "$REF" ]; then x=$(run "$REF" "$THR" $m $mode $ctx)
                elif [ -n "$REFCORE" ]; then x=$(CORE=$REFCORE run "$B" "$THR" $m $mode $ctx)
                else x=$(run "$B" 1 $m $mode $ctx); fi
                [ "$x" -gt "$rbest" ] && rbest=$x
                x=$(run "$B" "$THR" $m $mode $ctx)
                [ "$x" -gt "$best" ] && best=$x
            done
            printf '%-6s %-5s %4d %10d %10d %6.2f\n' $m $mode $ctx "$best" "$rbest" "$(awk -v a="$best" -v b="$rbest" 'BEGIN { print (b > 0 ? a / b : 0) }')"
        done
    done
done
