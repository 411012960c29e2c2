#!/usr/bin/env bash
# tests/llm/lora.sh - CLI tests of bin/lora-train and adapters in bin/llm on stories260K:
# conventions, PEFT output, determinism, resume = uninterrupted run, SIGTERM checkpoint,
# on-the-fly = merged logits, full-parameter training from `llm init` and --text.
. "$ITREK_ROOT/tests/cli/lib.sh"
LT=$BINDIR/lora-train
LLM=$BINDIR/llm
M=$SHARED/models/stories260K
"$LLM" convert-llama2c "$M/stories260K.bin" "$M/tok512.bin" "$T/hf" >/dev/null 2>&1 || fail convert

# a small itrek.instructions stream (JSON lines through json2mp)
W='Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.'
{
    echo '{"schema":"itrek.instructions","version":1,"params":{"scheme":"test"},"stats":{}}'
    for i in $(seq 1 24); do
        if [ $((i % 3)) = 0 ]; then r=Yes; else r=No; fi
        printf '{"id":%d,"task":"pointwise","user":%d,"prompt":"%s\\n\\n### Instruction:\\nWill user %d like the movie?\\n\\n### Input:\\nLily saw a dog %d times.\\n\\n### Response:\\n","response":"%s","items":[1]}\n' "$i" "$i" "$W" "$i" "$i" "$r"
    done
} >"$T/ins.jsonl"
"$BINDIR/json2mp" "$T/ins.jsonl" -o "$T/ins.mp" || fail json2mp
COMMON=(--model "$T/hf" --steps 4 --batch 2 --accum 2 --lr 1e-2 --warmup 1 --threads 2 --quiet)

# conventions
expect_ok help "$LT" --help
if grep -q '^usage: lora-train' "$T/out"; then pass help-stdout; else fail help-stdout; fi
expect_fail no-out 2 'out DIR is required' "$LT" --model "$T/hf" "$T/ins.mp"
expect_fail no-model 2 'exactly one of --model and --init' "$LT" --out "$T/x" "$T/ins.mp"
expect_fail bad-targets 2 "unknown target module 'x_proj'" "$LT" --model "$T/hf" --out "$T/x" --targets q_proj,x_proj "$T/ins.mp"
expect_fail bad-loss-on 2 'loss-on: expected response or all' "$LT" --model "$T/hf" --out "$T/x" --loss-on some "$T/ins.mp"
expect_fail full-int8 2 'full trains fp32' "$LT" --model "$T/hf" --out "$T/x" --full --int8 "$T/ins.mp"
expect_fail text-needs-full 2 'text is for --full' "$LT" --model "$T/hf" --out "$T/x" --text "$T/ins.jsonl"
expect_fail missing-model 1 '^lora-train: error: /nonexistent' "$LT" --model /nonexistent --out "$T/x" "$T/ins.mp"
expect_fail not-a-stream 1 '^lora-train: error: ' "$LT" --model "$T/hf" --out "$T/x" "$T/ins.jsonl"

# train: PEFT files, log, determinism
expect_ok train "$LT" "${COMMON[@]}" --out "$T/a1" --log "$T/a1.log" --eval-every 2 "$T/ins.mp"
for f in adapter_config.json adapter_model.safetensors; do
    if [ -s "$T/a1/$f" ]; then pass "writes-$f"; else fail "writes-$f"; fi
done
if grep -q '"peft_type": "LORA"' "$T/a1/adapter_config.json" && grep -q '"task_type": "CAUSAL_LM"' "$T/a1/adapter_config.json"; then
    pass peft-config; else fail peft-config; fi
if grep -q 'base_model.model.model.layers.4.self_attn.v_proj.lora_B.weight' "$T/a1/adapter_model.safetensors"; then
    pass peft-keys; else fail peft-keys; fi
if [ "$(wc -l <"$T/a1.log")" = 4 ] && grep -q '"val_loss"' "$T/a1.log" && grep -q '"tokens_per_s"' "$T/a1.log"; then
    pass log-lines; else fail log-lines "$(cat "$T/a1.log")"; fi
"$LT" "${COMMON[@]}" --out "$T/a2" "$T/ins.mp" 2>/dev/null
same same-seed-same-bytes "$T/a1/adapter_model.safetensors" "$T/a2/adapter_model.safetensors"
"$LT" "${COMMON[@]}" --out "$T/a3" --seed 2 "$T/ins.mp" 2>/dev/null
if cmp -s "$T/a1/adapter_model.safetensors" "$T/a3/adapter_model.safetensors"; then fail seed-changes-adapter; else pass seed-changes-adapter; fi
"$LT" "${COMMON[@]}" --out "$T/a4" --recompute "$T/ins.mp" 2>/dev/null
same recompute-same-bytes "$T/a1/adapter_model.safetensors" "$T/a4/adapter_model.safetensors"

# checkpoints and resume: 2 updates + resume to 4 = 4 straight
"$LT" "${COMMON[@]}" --out "$T/c" --ckpt-every 2 "$T/ins.mp" 2>/dev/null
if [ -s "$T/c/checkpoint-2/trainer_state.safetensors" ] && [ -s "$T/c/checkpoint-4/adapter_config.json" ]; then
    pass checkpoints; else fail checkpoints "$(ls "$T/c")"; fi
expect_ok resume "$LT" "${COMMON[@]}" --out "$T/r" --resume "$T/c/checkpoint-2" "$T/ins.mp"
same resume-same-bytes "$T/a1/adapter_model.safetensors" "$T/r/adapter_model.safetensors"
expect_fail resume-other-seed 1 'checkpoint was made with seed 1' "$LT" "${COMMON[@]}" --out "$T/r2" --seed 3 --resume "$T/c/checkpoint-2" "$T/ins.mp"

# SIGTERM: a checkpoint is written and the exit status is 1
"$LT" --model "$T/hf" --steps 100000 --batch 2 --accum 1 --threads 1 --quiet --out "$T/sig" "$T/ins.mp" 2>"$T/sig.err" &
pid=$!
for _ in $(seq 1 50); do sleep 0.1; done
kill -TERM $pid
wait $pid; rc=$?
if [ $rc = 1 ] && grep -q 'interrupted by signal 15' "$T/sig.err" && ls -d "$T"/sig/checkpoint-* >/dev/null 2>&1; then
    pass sigterm-checkpoint; else fail sigterm-checkpoint "rc $rc $(cat "$T/sig.err")"; fi

# adapters at inference: on the fly = merged (to 1e-4), and they change the logits
"$LLM" logits --model "$T/hf" --adapter "$T/a1" --ids "1 403 407 261" >"$T/fly" 2>"$T/err" || fail logits-adapter "$(cat "$T/err")"
"$LLM" logits --model "$T/hf" --adapter "$T/a1" --merge --ids "1 403 407 261" >"$T/merged" 2>"$T/err"
"$LLM" logits --model "$T/hf" --ids "1 403 407 261" >"$T/base" 2>"$T/err"
d=$(paste "$T/fly" "$T/merged" | awk '{d=$1-$2; if (d<0) d=-d; if (d>m) m=d} END {print m+0}')
if awk -v d="$d" 'BEGIN { exit !(d < 1e-4) }'; then pass fly-equals-merged; else fail fly-equals-merged "max diff $d"; fi
if cmp -s "$T/fly" "$T/base"; then fail adapter-changes-logits; else pass adapter-changes-logits; fi
expect_ok generate-adapter "$LLM" generate --model "$T/hf" --adapter "$T/a1" --int8 --ids 1 -n 5 --print-ids
expect_fail adapter-missing 1 '^llm: error: .*adapter_config.json' "$LLM" generate --model "$T/hf" --ids 1 --adapter "$T"
expect_fail merge-needs-adapter 2 'merge needs --adapter' "$LLM" generate --model "$T/hf" --ids 1 --merge

# full-parameter training: llm init, then --text pretraining; the result loads and generates
cat >"$T/cfg.json" <<'JSON'
{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
 "num_key_value_heads": 2, "vocab_size": 512, "max_position_embeddings": 128, "rms_norm_eps": 1e-5,
 "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2}
JSON
expect_ok llm-init "$LLM" init --config "$T/cfg.json" --tokenizer "$T/hf/tokenizer.model" "$T/init"
for i in $(seq 1 40); do echo "Once upon a time there was a little girl named Lily. She liked dogs number $i."; done >"$T/text.txt"
expect_ok pretrain "$LT" --full --model "$T/init" --text "$T/text.txt" --out "$T/pre" --steps 6 --lr 3e-3 --warmup 1 --ctx 64 --threads 2 --quiet --log "$T/pre.log"
for f in config.json model.safetensors tokenizer.model; do
    if [ -s "$T/pre/$f" ]; then pass "full-writes-$f"; else fail "full-writes-$f"; fi
done
if awk -F'"loss":' 'NR==1 {split($2,a,","); first=a[1]} END {split($2,b,","); exit !(b[1] < first)}' "$T/pre.log"; then
    pass pretrain-loss-falls; else fail pretrain-loss-falls "$(cat "$T/pre.log")"; fi
expect_ok pretrained-generates "$LLM" generate --model "$T/pre" --prompt "Once" -n 5
expect_ok full-init-direct "$LT" --full --init "$T/cfg.json" --tokenizer "$T/hf/tokenizer.model" --text "$T/text.txt" --out "$T/pre2" --steps 2 --ctx 64 --threads 2 --quiet
# --init-embeddings: vectors (itrek.itemvecs) become the first entries of their tokens' rows,
# rescaled to --init-embeddings-std over all entries: [1,0,-1,2] twice has sd sqrt(1.25), so at
# std 0.05 the row of "▁the" starts 0.0447214 0 -0.0447214 0.0894427 and the rest stays random
V4=$(printf '\x00\x00\x80\x3f\x00\x00\x00\x00\x00\x00\x80\xbf\x00\x00\x00\x40' | base64 -w0)
ivecs() { # DIM SYMBOL1 [VEC]
    echo "{\"schema\":\"itrek.itemvecs\",\"version\":1,\"method\":\"test\",\"dim\":$1,\"params\":{\"window\":5},\"inputs\":{}}"
    echo "{\"item\":1,\"symbol\":\"$2\",\"vec\":{\"\$bin\":\"${3:-$V4}\"}}"
    echo "{\"item\":2,\"symbol\":\"▁a\",\"vec\":{\"\$bin\":\"${3:-$V4}\"}}"
}
ivecs 4 ▁the | "$BINDIR/json2mp" -o "$T/iv.mp"
IE=(--full --init "$T/cfg.json" --tokenizer "$T/hf/tokenizer.model" --text "$T/text.txt" --steps 0 --ctx 64 --threads 2)
expect_ok init-embeddings "$LT" "${IE[@]}" --init-embeddings "$T/iv.mp" --out "$T/ie"
grep -q '2 token embeddings from' "$T/err" && pass init-embeddings-count || fail init-embeddings-count "$(cat "$T/err")"
row_of() { # MODEL_DIR TOKEN_ID N: the first N floats of the token's embedding row
    local hl; hl=$(od -An -t u8 -N8 "$1/model.safetensors" | tr -d ' ')
    local start; start=$(dd if="$1/model.safetensors" bs=1 skip=8 count="$hl" 2>/dev/null | jq '."model.embed_tokens.weight".data_offsets[0]')
    od -An -t f4 -j $((8 + hl + start + $2 * 32 * 4)) -N $((4 * $3)) "$1/model.safetensors" | xargs
}
the=$("$LLM" tokenize --model "$T/hf" --text "the")
got=$(row_of "$T/ie" "$the" 4)
if awk -v g="$got" 'BEGIN { split(g, v, " "); w[1] = 0.0447214; w[2] = 0; w[3] = -0.0447214; w[4] = 0.0894427
    for (k = 1; k <= 4; k++) if ((v[k] - w[k]) ^ 2 > 1e-12) exit 1 }'; then pass init-embeddings-row; else fail init-embeddings-row "got $got"; fi
expect_ok init-plain "$LT" "${IE[@]}" --out "$T/ip"
[ "$(row_of "$T/ip" 300 6)" = "$(row_of "$T/ie" 300 6)" ] && [ "$(row_of "$T/ip" "$the" 8 | cut -d' ' -f5-)" = "$(row_of "$T/ie" "$the" 8 | cut -d' ' -f5-)" ] &&
    pass init-embeddings-rest-unchanged || fail init-embeddings-rest-unchanged
ivecs 4 ▁zzqx | "$BINDIR/json2mp" -o "$T/iv-bad1.mp"
expect_fail init-embeddings-unknown-symbol 1 "iv-bad1.mp:1: field 'symbol': '▁zzqx' is not a token" "$LT" "${IE[@]}" --init-embeddings "$T/iv-bad1.mp" --out "$T/ieb1"
[ ! -e "$T/ieb1" ] && pass init-embeddings-bad-no-output || fail init-embeddings-bad-no-output "$T/ieb1 exists"
ivecs 40 ▁the | "$BINDIR/json2mp" -o "$T/iv-bad2.mp"
expect_fail init-embeddings-too-wide 1 "iv-bad2.mp.*header field 'dim': 40 is more than the model's hidden size 32" "$LT" "${IE[@]}" --init-embeddings "$T/iv-bad2.mp" --out "$T/ieb2"
ivecs 5 ▁the | "$BINDIR/json2mp" -o "$T/iv-bad3.mp"
expect_fail init-embeddings-short-vector 1 "iv-bad3.mp:1: field 'vec': 16 bytes, expected 5 float32" "$LT" "${IE[@]}" --init-embeddings "$T/iv-bad3.mp" --out "$T/ieb3"
expect_fail init-embeddings-needs-init 2 'init-embeddings needs --init' "$LT" --full --model "$T/hf" --init-embeddings "$T/iv.mp" --text "$T/text.txt" --out "$T/ieb4"
# --text with an instructions file: each record (prompt + response) is one more document
tokens_of() { sed -n 's/^lora-train: [0-9]* training examples (\([0-9]*\) tokens.*/\1/p' "$T/err"; }
expect_ok text-only "$LT" --full --model "$T/hf" --text "$T/text.txt" --out "$T/to" --steps 1 --ctx 64 --threads 2
n_text=$(tokens_of)
expect_ok text-plus-instructions "$LT" --full --model "$T/hf" --text "$T/text.txt" "$T/ins.mp" --out "$T/ti" --steps 1 --ctx 64 --threads 2
n_both=$(tokens_of)
# 24 instructions of ~60 tokens each: at least 24 x 40 more tokens than the text alone
if [ -n "$n_text" ] && [ -n "$n_both" ] && [ "$n_both" -gt $((n_text + 960)) ]; then pass text-plus-instructions-tokens
else fail text-plus-instructions-tokens "text $n_text, text + instructions $n_both"; fi
expect_fail text-plus-bad-stream 1 "^lora-train: error: $T/ins.jsonl" "$LT" --full --model "$T/hf" --text "$T/text.txt" "$T/ins.jsonl" --out "$T/tb" --steps 1 --ctx 64
if [ ! -e "$T/tb" ]; then pass text-plus-bad-stream-no-output; else fail text-plus-bad-stream-no-output "$T/tb exists"; fi
expect_ok full-instructions "$LT" --full --model "$T/hf" --out "$T/fi" --steps 2 --batch 2 --accum 1 --threads 2 --quiet "$T/ins.mp"
