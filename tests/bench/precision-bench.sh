#!/usr/bin/env bash
# bench/precision-bench.sh - the CPU's fp32 (OpenBLAS) against its bf16 products (oneDNN,
# --precision bf16), side by side in one invocation, on a random model of SmolLM2-135M's shape
# (hidden 576, 30 layers, 9 heads / 3 KV heads, head_dim 64, FFN 1536, vocab 49152, tied):
#   - LoRA training tokens/s: q,k,v,o r16, context 512, batch 4 x accum 2 (8 x 512 tokens an
#     update: instructions long enough to fill the context), best per-update figure over
#     updates 2..STEPS of REPS runs, the two precisions interleaved;
#   - prefill tokens/s at 128 and 512 tokens, and greedy decoding at batch 1 and 64
#     (`llm bench`, best of 3 inside each run).
# A third column, "bf16 fp32-att", is bf16 with the attention left in fp32
# (ITREK_BF16_ATTENTION=0): what the bf16 attention adds, measured.
# Prints each figure for both precisions and the ratios to fp32. The bf16 figures mean
# something only where the CPU multiplies bf16 in hardware (AMX, avx512_bf16): elsewhere
# oneDNN emulates it and the script says so (the warning line of the stages).
#
# Usage: BINDIR=bin tests/bench/precision-bench.sh [THREADS (2)] [STEPS (3)] [REPS (2)]
#   MODEL=DIR   a model directory to use instead of the random one (needs tokenizer.model)
#   SHAPE="hidden ffn layers heads kv_heads vocab"   another random shape (a quick check:
#               SHAPE="128 384 4 4 2 4096")
#   PHASES="train prefill"   what to measure (default both)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${BINDIR:-$ROOT/bin}
THR=${1:-2} STEPS=${2:-3} REPS=${3:-2}
PHASES=${PHASES:-train prefill}
read -r H FFN L NH NKV V <<<"${SHAPE:-576 1536 30 9 3 49152}"
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT

# tokenizer (vocab 4096): the repository's prose and sources
cat "$ROOT"/docs/*.md "$ROOT"/common/*/*.c "$ROOT"/stages/*.c | grep -v '^[[:space:]]*$' >"$t/text.txt"
if [ -n "${MODEL:-}" ]; then
    M=$MODEL
else
    spm_train --input="$t/text.txt" --model_prefix="$t/tok" --vocab_size=4096 --model_type=bpe --character_coverage=1.0 \
        --byte_fallback=true --bos_id=1 --eos_id=2 --unk_id=0 --pad_id=-1 --minloglevel=2 >/dev/null 2>&1
    cat >"$t/config.json" <<JSON
{"model_type": "llama", "hidden_size": $H, "intermediate_size": $FFN, "num_hidden_layers": $L,
 "num_attention_heads": $NH, "num_key_value_heads": $NKV, "vocab_size": $V, "max_position_embeddings": 2048,
 "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2}
JSON
    "$B/llm" init --config "$t/config.json" --tokenizer "$t/tok.model" "$t/m" >/dev/null
    M=$t/m
fi

# instructions whose prompts (60-90 titles of history) fill the 512-token context: every
# example is cut to 512 tokens, so a micro-batch is 4 x 512 rows through every product
awk 'BEGIN {
    srand(1)
    W = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request."
    print "{\"schema\":\"itrek.instructions\",\"version\":1,\"params\":{\"scheme\":\"bench\"},\"stats\":{}}"
    split("Toy Story|Heat|Fargo|Babe|Casino|Sabrina|Jumanji|Balto|Braveheart|Apollo 13|Batman Forever|Clueless|Richard III|Dead Man Walking|Seven|The Usual Suspects|Mighty Aphrodite|Postino|Mr. Hollands Opus|French Twist", T, "|")
    for (i = 1; i <= 64; i++) {
        h = ""; n = 60 + int(rand() * 30)
        for (j = 0; j < n; j++) h = h (j ? ", " : "") "\\\"" T[1 + int(rand() * 20)] " (" 1990 + int(rand() * 8) ")\\\""
        printf "{\"id\":%d,\"task\":\"pointwise\",\"user\":%d,\"prompt\":\"%s\\n\\n### Instruction:\\nGiven the user'"'"'s liked movies, will the user like the target movie? Answer Yes or No.\\n\\n### Input:\\nUser preference: %s\\nTarget movie: \\\"%s\\\"\\n\\n### Response:\\n\",\"response\":\"%s\",\"items\":[1]}\n", i, i, W, h, T[1 + int(rand() * 20)], (i % 3 ? "No" : "Yes")
    }
}' | "$B/json2mp" -o "$t/ins.mp"

note=$("$B/llm" logits --model "$M" --ids "1 2 3" --precision bf16 --threads "$THR" 2>&1 >/dev/null | grep -m1 'warning' || true)
echo "model: ${MODEL:-random, hidden $H, FFN $FFN, $L layers, $NH/$NKV heads, vocab $V}; $THR threads; $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
echo "bf16 hardware: $(grep -qw amx_bf16 /proc/cpuinfo && echo AMX || { grep -qw avx512_bf16 /proc/cpuinfo && echo avx512_bf16 || echo none; })${note:+ (${note#*warning: })}"

# best tokens/s over updates >= 2 of one LoRA run: train PRECISION [ATTENTION 0|1]
train() {
    rm -rf "$t/out"
    ITREK_BF16_ATTENTION=${2:-1} "$B/lora-train" --model "$M" --out "$t/out" --precision "$1" --steps "$STEPS" --warmup 1 --lr 1e-4 --ctx 512 --batch 4 \
        --accum 2 --rank 16 --threads "$THR" --eval-every 1000000 --val-frac 0 --quiet --log "$t/log" "$t/ins.mp" 2>/dev/null
    awk -F'"tokens_per_s":' 'NR > 1 { split($2, a, /[,}]/); if (a[1] > m) m = a[1] } END { printf "%.0f", m }' "$t/log"
}
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
row() {
    printf '%-40s %9.0f %9.0f %13.0f %7s %7s\n' "$1" "$2" "$3" "$4" "$(ratio "$3" "$2")" "$(ratio "$4" "$2")"
}

printf '%-40s %9s %9s %13s %7s %7s\n' "tokens/s" fp32 bf16 "bf16 fp32-att" "ratio" "ratio"
if [[ " $PHASES " == *" train "* ]]; then
    f=0 b=0 ba=0
    for ((r = 0; r < REPS; r++)); do
        f=$(max "$f" "$(train fp32)")
        b=$(max "$b" "$(train bf16)")
        ba=$(max "$ba" "$(train bf16 0)")
    done
    row "LoRA q,k,v,o r16 train, ctx 512, 4 x 2" "$f" "$b" "$ba"
fi
if [[ " $PHASES " == *" prefill "* ]]; then
    declare -A R
    for p in fp32 bf16 bf16att0; do
        ITREK_BF16_ATTENTION=$([ $p = bf16att0 ] && echo 0 || echo 1) \
            "$B/llm" bench --model "$M" --precision "${p%att0}" --threads "$THR" --quiet >"$t/bench-$p" 2>/dev/null
        while read -r phase batch tokens _ tps; do
            case $phase in
            prefill) R[$p,prefill$tokens]=$tps ;;
            decode) R[$p,decode$batch]=$tps ;;
            esac
        done <"$t/bench-$p"
    done
    for k in prefill128 prefill512; do
        [ -n "${R[fp32,$k]:-}" ] && row "prefill ${k#prefill} tokens" "${R[fp32,$k]}" "${R[bf16,$k]}" "${R[bf16att0,$k]}"
    done
    for k in decode1 decode64; do
        [ -n "${R[fp32,$k]:-}" ] && row "greedy decode, batch ${k#decode}" "${R[fp32,$k]}" "${R[bf16,$k]}" "${R[bf16att0,$k]}"
    done
fi
