#!/usr/bin/env bash
# tests/llm/precision.sh - --precision fp32|bf16 on llm, lora-train and rank (stories260K):
# usage errors, the refusal without AVX-512 (DNNL_MAX_CPU_ISA=AVX2), bf16 greedy ids against
# fp32, a bf16 LoRA run and a bf16 full-parameter run, rank in bf16. The products themselves
# are checked by tests/llm/test_dnnl.c.
. "$ITREK_ROOT/tests/cli/lib.sh"
LLM=$BINDIR/llm
LT=$BINDIR/lora-train
M=$SHARED/models/stories260K
"$LLM" convert-llama2c "$M/stories260K.bin" "$M/tok512.bin" "$T/hf" >/dev/null 2>&1 || fail convert

# usage
expect_fail llm-bad-precision 2 "precision: expected fp32 or bf16, not 'fp16'" "$LLM" generate --model "$T/hf" --ids 1 --precision fp16
expect_fail lt-bad-precision 2 "precision: expected fp32 or bf16, not 'fp16'" "$LT" --model "$T/hf" --out "$T/x" --precision fp16
expect_fail rank-bad-precision 2 "precision: expected fp32 or bf16, not 'fp16'" "$BINDIR/rank" --model "$T/hf" --precision fp16
expect_fail llm-cuda-fp32 2 'precision fp32: --device cuda computes in bf16' "$LLM" generate --model "$T/hf" --ids 1 --device cuda --precision fp32
expect_fail lt-cuda-fp32 2 'precision fp32: --device cuda computes in bf16' "$LT" --model "$T/hf" --out "$T/x" --device cuda --precision fp32 "$T/x"
expect_fail rank-cuda-fp32 2 'precision fp32: --device cuda computes in bf16' "$BINDIR/rank" --model "$T/hf" --device cuda --precision fp32

# no bf16 product in oneDNN below AVX-512: one line, exit 1
expect_fail no-avx512 1 '^llm: error: --precision bf16: oneDNN .* has no bf16 matrix product on this CPU \(instruction set avx2' \
    env DNNL_MAX_CPU_ISA=AVX2 "$LLM" generate --model "$T/hf" --ids 1 --precision bf16
if ! "$LLM" logits --model "$T/hf" --ids 1 --precision bf16 >/dev/null 2>"$T/probe"; then
    echo "# cpu-bf16 unavailable here: $(cat "$T/probe")"
    exit 0
fi
if grep -q 'no avx512_bf16 or AMX' "$T/probe"; then
    if [ "$(wc -l <"$T/probe")" = 1 ]; then pass emulation-warns-one-line; else fail emulation-warns-one-line; fi
fi

# greedy decoding: bf16 logits are within 1e-2 of fp32, so the first 20 ids agree on this model
"$LLM" generate --model "$T/hf" --ids 1 -n 20 --print-ids --threads 2 >"$T/f.ids" 2>/dev/null
"$LLM" generate --model "$T/hf" --ids 1 -n 20 --print-ids --threads 2 --precision bf16 --quiet >"$T/b.ids" 2>"$T/err"
same bf16-greedy-20-ids "$T/f.ids" "$T/b.ids"
if [ ! -s "$T/err" ]; then pass quiet-no-warning; else fail quiet-no-warning "$(head -c 200 "$T/err")"; fi
"$LLM" generate --model "$T/hf" --ids 1 -n 20 --print-ids --threads 2 --precision bf16 --int8 --quiet >"$T/b8.ids" 2>/dev/null
if [ "$(wc -w <"$T/b8.ids")" = 20 ]; then pass bf16-int8-generate; else fail bf16-int8-generate; fi
"$LLM" bench --model "$T/hf" --precision bf16 --threads 2 --quiet >"$T/bench" 2>/dev/null
if grep -q 'cpu-bf16 device' "$T/bench" && grep -q '^prefill' "$T/bench"; then pass bf16-bench; else fail bf16-bench; fi

# lora-train: a bf16 LoRA run and a bf16 full-parameter run train (the loss falls)
W='Below is an instruction. Write a response.'
{
    echo '{"schema":"itrek.instructions","version":1,"params":{"scheme":"test"},"stats":{}}'
    for i in $(seq 1 16); do
        printf '{"id":%d,"task":"pointwise","user":%d,"prompt":"%s\\n\\n### Instruction:\\nWill user %d like it?\\n\\n### Response:\\n","response":"%s","items":[1]}\n' "$i" "$i" "$W" "$i" "$([ $((i % 2)) = 0 ] && echo Yes || echo No)"
    done
} | "$BINDIR/json2mp" -o "$T/ins.mp"
for mode in lora full; do
    extra=(); [ $mode = full ] && extra=(--full)
    expect_ok "lt-bf16-$mode" "$LT" --model "$T/hf" --out "$T/o-$mode" --precision bf16 "${extra[@]}" --steps 6 --batch 2 --accum 1 \
        --lr 5e-3 --warmup 1 --threads 2 --quiet --val-frac 0 --log "$T/$mode.log" "$T/ins.mp"
    first=$(head -n 1 "$T/$mode.log" | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
    last=$(tail -n 1 "$T/$mode.log" | sed 's/.*"loss":\([0-9.e+-]*\).*/\1/')
    if awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }'; then pass "lt-bf16-$mode-loss-falls"; else fail "lt-bf16-$mode-loss-falls" "$first -> $last"; fi
done
if [ -s "$T/o-lora/adapter_model.safetensors" ]; then pass lt-bf16-writes-adapter; else fail lt-bf16-writes-adapter; fi

# rank in bf16: answers every query
{
    printf '{"schema":"itrek.queries","version":1,"producer":"test","params":{"scheme":"loo","part":"test","scale":[1,5]},"inputs":{}}\n'
    for i in 0 1 2 3; do
        printf '{"id":%d,"task":"pointwise","user":%d,"prompt":"Lily saw a dog.\\n\\n### Response:\\n","prefix_len":0,"items":[1],"ranks":[1],"titles":["Heat (1995)"]}\n' $i $i
    done
} | "$BINDIR/json2mp" -o "$T/q.mp"
expect_ok rank-bf16 "$BINDIR/rank" --model "$T/hf" --decode score --precision bf16 --threads 2 -o "$T/a.mp" "$T/q.mp"
if [ "$("$BINDIR/mp2json" "$T/a.mp" | grep -c '"scores"')" = 4 ]; then pass rank-bf16-answers; else fail rank-bf16-answers; fi
if grep -q 'no product ran in bf16' "$T/err"; then
    echo "# rank --precision bf16 ran on fp32: llm_load keeps host models on the fp32 backend (model.c's llm_model_to_backend)"
fi
