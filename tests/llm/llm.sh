#!/usr/bin/env bash
# tests/llm/llm.sh - CLI tests of bin/llm on stories260K (see SOURCE.txt for the references).
. "$ITREK_ROOT/tests/cli/lib.sh"
LLM=$BINDIR/llm
M=$SHARED/models/stories260K
G=$SHARED/models/stories260K-gguf/stories260K.gguf
REF=$(grep -A1 '^Greedy token ids' "$M/SOURCE.txt" | tail -n 1)

# conventions: --help, usage errors (2), data errors (1)
expect_ok help "$LLM" --help
if grep -q '^usage: llm' "$T/out"; then pass help-stdout; else fail help-stdout; fi
expect_fail no-command 2 '^llm: missing command' "$LLM"
expect_fail unknown-command 2 "unknown command 'frob'" "$LLM" frob
expect_fail unknown-option 2 "unknown option '--frob'" "$LLM" generate --frob
expect_fail missing-value 2 "needs a value" "$LLM" generate --model
expect_fail no-model 2 'model is required' "$LLM" generate --ids 1
expect_fail convert-args 2 'convert-llama2c takes' "$LLM" convert-llama2c a b
expect_fail bad-temperature 2 'temperature' "$LLM" generate --model "$G" --ids 1 --temperature x
expect_fail bad-ids 2 'not a list of token ids' "$LLM" generate --model "$G" --ids "1 x"
expect_fail ids-out-of-vocab 2 'outside the vocabulary' "$LLM" generate --model "$G" --ids "1 512"
expect_fail prompt-and-ids 2 'exactly one of' "$LLM" generate --model "$G" --ids 1 --prompt hi
expect_fail missing-model 1 '^llm: error: /nonexistent: ' "$LLM" generate --model /nonexistent --ids 1
expect_fail adapter-missing 1 '^llm: error: .*adapter_config.json' "$LLM" generate --model "$G" --ids 1 --adapter "$T"

# convert and the reference greedy ids / text
expect_ok convert "$LLM" convert-llama2c "$M/stories260K.bin" "$M/tok512.bin" "$T/hf"
for f in config.json model.safetensors tokenizer.model; do
    if [ -s "$T/hf/$f" ]; then pass "convert-writes-$f"; else fail "convert-writes-$f"; fi
done
expect_fail convert-bad-model 1 '^llm: error: .*tok512.bin: ' "$LLM" convert-llama2c "$M/tok512.bin" "$M/tok512.bin" "$T/x"
echo "$REF" >"$T/ref"
"$LLM" generate --model "$T/hf" --ids 1 -n 200 --print-ids >"$T/hf.ids" 2>"$T/err"
same greedy-200-hf "$T/ref" "$T/hf.ids"
"$LLM" generate --model "$G" --ids 1 -n 200 --print-ids >"$T/gguf.ids" 2>"$T/err"
same greedy-200-gguf "$T/ref" "$T/gguf.ids"
"$LLM" generate --model "$M/stories260K.bin" --ids 1 -n 200 --print-ids --threads 1 >"$T/bin.ids" 2>"$T/err"
same greedy-200-llama2c "$T/ref" "$T/bin.ids"
"$LLM" generate --model "$T/hf" --ids 1 -n 200 --int8 --print-ids >"$T/int8.ids" 2>"$T/err"
if [ "$(wc -w <"$T/int8.ids")" = 200 ]; then pass int8-generate; else fail int8-generate; fi
sed -n '/^---$/,/^---$/p' "$M/SOURCE.txt" | sed '1d;$d' >"$T/ref.txt"
"$LLM" generate --model "$T/hf" --prompt "" -n 200 >"$T/gen.txt" 2>"$T/err"
same greedy-200-text "$T/ref.txt" "$T/gen.txt"

# logits
"$LLM" logits --model "$T/hf" --ids 1 >"$T/logits" 2>"$T/err"
if [ "$(wc -l <"$T/logits")" = 512 ] && awk 'NR==404 { exit !($1 > 17.0235 && $1 < 17.0236) }' "$T/logits"; then
    pass logits-pos0; else fail logits-pos0 "$(sed -n 404p "$T/logits")"; fi
"$LLM" logits --model "$G" --ids "1 403" >"$T/logits1" 2>"$T/err"
if awk 'NR==408 { exit !($1 > 18.4599 && $1 < 18.4600) }' "$T/logits1"; then pass logits-pos1-gguf; else fail logits-pos1-gguf; fi

# sampling: seeded runs repeat, other seeds differ
"$LLM" generate --model "$T/hf" --ids 1 -n 50 --temperature 1 --top-k 40 --top-p 0.9 --seed 5 --print-ids >"$T/s1" 2>"$T/err"
"$LLM" generate --model "$T/hf" --ids 1 -n 50 --temperature 1 --top-k 40 --top-p 0.9 --seed 5 --print-ids >"$T/s2" 2>"$T/err"
"$LLM" generate --model "$T/hf" --ids 1 -n 50 --temperature 1 --top-k 40 --top-p 0.9 --seed 6 --print-ids >"$T/s3" 2>"$T/err"
same seeded-repeat "$T/s1" "$T/s2"
if cmp -s "$T/s1" "$T/s3"; then fail seed-changes-output; else pass seed-changes-output; fi

# tokenize
expect_ok tokenize-text "$LLM" tokenize --model "$T/hf" --text $'Once upon a time\nLily' --bos
if [ "$(wc -l <"$T/out")" = 2 ] && [ "$(cut -d' ' -f1 <"$T/out" | head -n 1)" = 1 ]; then pass tokenize-lines; else fail tokenize-lines "$(cat "$T/out")"; fi
printf 'a b\nc\n\nd\n' >"$T/lines"
expect_ok tokenize-file "$LLM" tokenize --model "$T/hf" --file "$T/lines"
if [ "$(wc -l <"$T/out")" = 4 ]; then pass tokenize-file-lines; else fail tokenize-file-lines; fi
expect_fail tokenize-no-tokenizer 1 'no tokenizer' "$LLM" tokenize --model "$G" --text hi
expect_fail tokenize-missing-file 1 '^llm: error: /nonexistent/f: ' "$LLM" tokenize --model "$T/hf" --file /nonexistent/f

# bad checkpoints: clear one-line errors, exit 1
mkdir -p "$T/bad"
cp "$T/hf/config.json" "$T/bad/"
head -c 5000 "$T/hf/model.safetensors" >"$T/bad/model.safetensors"
expect_fail truncated-safetensors 1 '^llm: error: .*model.safetensors: .*truncated' "$LLM" logits --model "$T/bad" --ids 1
echo '{"hidden_size": 64,' >"$T/bad/config.json"
expect_fail bad-config 1 '^llm: error: .*config.json:.*bad JSON' "$LLM" logits --model "$T/bad" --ids 1
head -c 3000 "$G" >"$T/bad.gguf"
expect_fail truncated-gguf 1 '^llm: error: .*bad.gguf: truncated' "$LLM" logits --model "$T/bad.gguf" --ids 1
echo garbage >"$T/g.gguf"
expect_fail garbage-gguf 1 '^llm: error: .*g.gguf: not a GGUF file' "$LLM" logits --model "$T/g.gguf" --ids 1

# bench prints a table
expect_ok bench "$LLM" bench --model "$T/hf" --threads 1
if grep -q '^shared prefix' "$T/out" && grep -q '^decode' "$T/out"; then pass bench-table; else fail bench-table; fi

# a full stdout is an error
if [ -w /dev/full ]; then
    "$LLM" logits --model "$G" --ids 1 >/dev/full 2>"$T/err"; rc=$?
    if [ $rc = 1 ] && grep -q 'write failed' "$T/err"; then pass stdout-full; else fail stdout-full "exit $rc"; fi
fi
exit 0
