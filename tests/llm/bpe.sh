#!/usr/bin/env bash
# tests/llm/bpe.sh - the byte-level BPE tokenizer (common/llm/bpe.c) against Hugging Face.
#
# The expected ids in tests/llm/fixtures/bpe/ come from Hugging Face `tokenizers` with
# SmolLM2-135M-Instruct's vocabulary and merges (dev/fixtures/gen_bpe.py; version in
# fixtures/bpe/SOURCE.txt). Every comparison is of whole files, one line of ids (or text, or
# pre-tokens) per input line: every line must be identical. The tokenizer is read both from
# the GGUF in $SHARED and from the committed tokenizer.json. The C side is
# tests/llm/test_tokenizer in its command-line mode.
source "$ITREK_ROOT/tests/cli/lib.sh"

TOK=${UNITDIR:-$ITREK_ROOT/build/rel/tests}/llm/test_tokenizer
FIX=$ITREK_ROOT/tests/llm/fixtures/bpe
GGUF=$SHARED/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -x "$TOK" ]; then fail "tokenizer cli" "$TOK not built"; exit 0; fi
command -v jq >/dev/null || { fail "jq" "not installed (Debian package jq)"; exit 0; }

# same_lines NAME EXPECTED GOT: identical files; says how many lines matched either way
same_lines() {
    local n m
    n=$(wc -l <"$2")
    m=$(awk 'NR == FNR { a[FNR] = $0; next } FNR in a && a[FNR] == $0 { m++ } END { print m + 0 }' "$2" "$3")
    if cmp -s "$2" "$3"; then pass "$1 ($m/$n lines identical)"
    else fail "$1" "$m/$n lines identical; first difference: $(diff "$2" "$3" | head -3 | cut -c1-160 | tr '\n' '|')"; fi
}
# expect_err1 NAME REGEX CMD...: exit 1 and exactly one line on stderr matching REGEX
expect_err1() {
    local n=$1 re=$2; shift 2
    expect_fail "$n" 1 "$re" "$@"
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "$n: one line" "$(wc -l <"$T/err") lines: $(head -c 300 "$T/err")"
}

# ---------- the tokenizers under test ----------
JSON=$T/smollm2-tokenizer.json
if [ -f "$FIX/smollm2-tokenizer.json.zst" ]; then zstd -q -d -c "$FIX/smollm2-tokenizer.json.zst" >"$JSON"
else cp "$FIX/smollm2-tokenizer.json" "$JSON"; fi
cp "$FIX/smollm2-tokenizer_config.json" "$T/smollm2-tokenizer_config.json"
MODELS=("$JSON")
if [ -f "$GGUF" ]; then MODELS+=("$GGUF"); else fail "SmolLM2 GGUF" "$GGUF missing: GGUF checks skipped"; fi

for m in "${MODELS[@]}"; do
    k=${m##*.}   # json | gguf
    expect_ok "$k: loads" "$TOK" load "$m"
    grep -qx "vocab 49152 bos 1 eos 2 unk 0 pad 2 add_bos 0 kind bpe" "$T/out" &&
        pass "$k: vocabulary and special ids" || fail "$k: vocabulary and special ids" "$(cat "$T/out")"

    # ---------- ids identical to Hugging Face's ----------
    "$TOK" encode "$m" <"$FIX/titles.txt" >"$T/titles.$k.ids"
    same_lines "$k: ML-100K titles" "$FIX/titles.smollm.ids" "$T/titles.$k.ids"
    "$TOK" encode "$m" <"$FIX/mixed.txt" >"$T/mixed.$k.ids"
    same_lines "$k: mixed corpus" "$FIX/mixed.smollm.ids" "$T/mixed.$k.ids"
    "$TOK" encode-escaped "$m" <"$FIX/prompts.txt" >"$T/prompts.$k.ids"
    same_lines "$k: prompts (pointwise, pairwise, listwise, ChatML)" "$FIX/prompts.smollm.ids" "$T/prompts.$k.ids"
    "$TOK" encode "$m" <"$FIX/edge.txt" >"$T/edge.$k.ids"
    same_lines "$k: edge cases (long runs, glued specials, bytes without a token)" "$FIX/edge.smollm.ids" "$T/edge.$k.ids"
    head -n 1000 "$FIX/mixed.txt" | "$TOK" pretok "$m" >"$T/pre.$k"
    same_lines "$k: smollm pre-tokens" "$FIX/mixed1k.smollm.pre" "$T/pre.$k"

    # ---------- decoding ----------
    "$TOK" decode-escaped "$m" <"$FIX/decode.ids" >"$T/decode.$k.txt"
    same_lines "$k: decode of random ids == HF decode" "$FIX/decode.txt" "$T/decode.$k.txt"
    "$TOK" decode "$m" <"$T/titles.$k.ids" >"$T/titles.$k.txt"
    same_lines "$k: decode(encode(titles)) == titles" "$FIX/titles.txt" "$T/titles.$k.txt"
    "$TOK" decode "$m" <"$T/mixed.$k.ids" >"$T/mixed.$k.txt"
    same_lines "$k: decode(encode(mixed)) == mixed" "$FIX/mixed.txt" "$T/mixed.$k.txt"
    "$TOK" decode-escaped "$m" <"$T/prompts.$k.ids" >"$T/prompts.$k.txt"
    same_lines "$k: decode(encode(prompts)) == prompts" "$FIX/prompts.txt" "$T/prompts.$k.txt"
    "$TOK" stream "$m" <"$T/mixed.$k.ids" >"$T/stream.$k.txt"
    same_lines "$k: streamed decode (tok_decode_piece) of mixed == mixed" "$FIX/mixed.txt" "$T/stream.$k.txt"

    expect_err1 "$k: tok_save_model refused" "cannot be written as a SentencePiece model" \
        "$TOK" save "$m" "$T/out.model"
done

# ---------- SOURCE.txt's reference ids (llama.cpp) ----------
printf '%s\n' "Toy Story (1995)" "GoldenEye (1995)" "Four Rooms (1995)" \
    '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nA user watched these movies in this order: Toy Story (1995); Star Wars (1977); Fargo (1996). Which movie should they watch next?<|im_end|>\n<|im_start|>assistant\n' \
    >"$T/source.txt"
cat >"$T/source.ids" <<'EOF'
68 922 10124 365 33 41 41 37 25
40726 36307 365 33 41 41 37 25
19622 11849 1388 365 33 41 41 37 25
1 9690 198 2683 359 253 5356 5646 11173 3365 3511 308 34519 28 7018 411 407 19712 8182 2 198 1 4093 198 49 2914 12635 623 10026 281 451 1686 42 25399 10124 365 33 41 41 37 4258 9901 12208 365 33 41 39 39 4258 426 12864 365 33 41 41 38 595 10366 7704 868 502 4126 1867 47 2 198 1 520 9531 198
EOF
for m in "${MODELS[@]}"; do
    "$TOK" encode-escaped "$m" <"$T/source.txt" >"$T/source.got"
    same_lines "${m##*.}: SOURCE.txt titles and 70-id ChatML prompt (llama.cpp)" "$T/source.ids" "$T/source.got"
done

# ---------- the same tokenizer.json in other spellings ----------
jq -c '.model.merges |= map(if type == "array" then join(" ") else . end)' "$JSON" >"$T/strmerges-tokenizer.json"
"$TOK" encode "$T/strmerges-tokenizer.json" <"$FIX/mixed.txt" >"$T/strmerges.ids"
same_lines "json with \"a b\" merges: mixed corpus" "$FIX/mixed.smollm.ids" "$T/strmerges.ids"
mkdir -p "$T/hfdir"
cp "$JSON" "$T/hfdir/tokenizer.json"
cp "$FIX/smollm2-tokenizer_config.json" "$T/hfdir/tokenizer_config.json"
expect_ok "directory with tokenizer.json loads" "$TOK" load "$T/hfdir"
grep -q "bos 1 eos 2 unk 0 pad 2 add_bos 0 kind bpe" "$T/out" && pass "directory: special ids from tokenizer_config.json" ||
    fail "directory: special ids from tokenizer_config.json" "$(cat "$T/out")"
"$TOK" encode "$T/hfdir" <"$FIX/titles.txt" >"$T/dir.ids"
same_lines "directory: ML-100K titles" "$FIX/titles.smollm.ids" "$T/dir.ids"

# ---------- the other pre-tokenizers: Llama 3's and Qwen2's regexes, GPT-2's ----------
head -n 1000 "$FIX/mixed.txt" >"$T/mixed1k.txt"
for p in gpt2 llama-bpe qwen2; do
    jq -c --slurpfile pt "$FIX/pre-$p.json" '.pre_tokenizer = $pt[0]' "$JSON" >"$T/$p-tokenizer.json"
    "$TOK" pretok "$T/$p-tokenizer.json" <"$T/mixed1k.txt" >"$T/$p.pre"
    same_lines "$p (tokenizer.json): pre-tokens" "$FIX/mixed1k.$p.pre" "$T/$p.pre"
    if [ -f "$GGUF" ]; then   # the GGUF name tokenizer.ggml.pre selects the same regexes
        "$TOK" gguf-tok "$GGUF" "$T/$p.gguf" pre="$p"
        "$TOK" pretok "$T/$p.gguf" <"$T/mixed1k.txt" >"$T/$p.gguf.pre"
        same_lines "$p (GGUF tokenizer.ggml.pre): pre-tokens" "$FIX/mixed1k.$p.pre" "$T/$p.gguf.pre"
    fi
    [ -f "$FIX/mixed.$p.ids" ] || continue
    "$TOK" encode "$T/$p-tokenizer.json" <"$FIX/mixed.txt" >"$T/$p.ids"
    same_lines "$p (tokenizer.json): mixed corpus ids" "$FIX/mixed.$p.ids" "$T/$p.ids"
    if [ -f "$GGUF" ]; then   # llama-bpe from GGUF also sets ignore_merges, as llama.cpp does
        "$TOK" encode "$T/$p.gguf" <"$FIX/mixed.txt" >"$T/$p.gguf.ids"
        same_lines "$p (GGUF): mixed corpus ids" "$FIX/mixed.$p.ids" "$T/$p.gguf.ids"
    fi
done

# ---------- bad inputs: one-line reasons, exit 1 ----------
KNOWN="known: gpt2 \(gpt-2\), smollm, llama-bpe \(llama3, llama-v3\), qwen2"
jq -c '.pre_tokenizer.pretokenizers[0].individual_digits = false' "$JSON" >"$T/digits-tokenizer.json"
expect_err1 "json: unknown pre-tokenizer" "^error: .*digits-tokenizer.json: pre_tokenizer Sequence\[Digits, ByteLevel\] is not a known pre-tokenizer \($KNOWN\)$" \
    "$TOK" load "$T/digits-tokenizer.json"
jq -c '.pre_tokenizer.pretokenizers[0].pattern.Regex |= sub("1,3"; "1,4")' "$T/llama-bpe-tokenizer.json" >"$T/regex-tokenizer.json"
expect_err1 "json: unknown Split regex" "^error: .*regex-tokenizer.json: pre_tokenizer Sequence\[Split.*is not a known pre-tokenizer" \
    "$TOK" load "$T/regex-tokenizer.json"
jq -c '.model.merges[5] = ["Ġ", "no-such-token"]' "$JSON" >"$T/merge-tokenizer.json"
expect_err1 "json: merge naming an unknown token" "^error: .*merge-tokenizer.json: model.merges\[5\] \"Ġ no-such-token\": unknown token \"no-such-token\"$" \
    "$TOK" load "$T/merge-tokenizer.json"
jq -c '.normalizer = {"type": "NFC"}' "$JSON" >"$T/nfc-tokenizer.json"
expect_err1 "json: normalizer refused" "normalizer NFC is not supported" "$TOK" load "$T/nfc-tokenizer.json"
jq -c '.model.type = "WordPiece"' "$JSON" >"$T/wp-tokenizer.json"
expect_err1 "json: non-BPE model refused" "model.type is \"WordPiece\"; only BPE" "$TOK" load "$T/wp-tokenizer.json"
jq -c 'del(.model.merges)' "$JSON" >"$T/nomerges-tokenizer.json"
expect_err1 "json: missing merges" "model.merges is missing" "$TOK" load "$T/nomerges-tokenizer.json"
head -c 5000 "$JSON" >"$T/trunc-tokenizer.json"
expect_err1 "json: truncated file" "^error: .*trunc-tokenizer.json: line 1: not JSON" "$TOK" load "$T/trunc-tokenizer.json"
echo '{"bos_token": "<|no-such|>"}' >"$T/badcfg-tokenizer_config.json"
cp "$JSON" "$T/badcfg-tokenizer.json"
expect_err1 "json: tokenizer_config naming an unknown token" "badcfg-tokenizer_config.json: bos_token \"<\|no-such\|>\" is not a token" \
    "$TOK" load "$T/badcfg-tokenizer.json"
expect_err1 "json: missing file" "^error: .*nope.json: cannot open" "$TOK" load "$T/nope.json"

if [ -f "$GGUF" ]; then
    # metadata-only GGUFs written from the real one, with one field changed
    "$TOK" gguf-tok "$GGUF" "$T/meta.gguf"
    "$TOK" encode "$T/meta.gguf" <"$FIX/titles.txt" >"$T/meta.ids"
    same_lines "gguf: rewritten tokenizer metadata gives the same ids" "$FIX/titles.smollm.ids" "$T/meta.ids"
    bad() { # NAME REGEX EDIT
        "$TOK" gguf-tok "$GGUF" "$T/bad.gguf" "$3"
        expect_err1 "gguf: $1" "^error: .*bad.gguf: $2" "$TOK" load "$T/bad.gguf"
    }
    bad "unknown pre-tokenizer" "tokenizer.ggml.pre \"nosuch\" is not a known pre-tokenizer \($KNOWN\)$" pre=nosuch
    bad "missing pre-tokenizer" "tokenizer.ggml.pre is missing" drop=pre
    bad "merge naming an unknown token" "tokenizer.ggml.merges\[0\] \"Ġ zzz\": unknown token \"zzz\"$" merge0="Ġ zzz"
    bad "merge without a space" "tokenizer.ggml.merges\[0\] \"Ġt\": not two tokens" merge0="Ġt"
    bad "merge of an unknown result" "tokenizer.ggml.merges\[0\] \"Q <\|im_end\|>\": the merged token is not in the vocabulary" merge0="Q <|im_end|>"
    bad "token_type count" "tokenizer.ggml.token_type has 100 entries, tokenizer.ggml.tokens 49152" types=100
    bad "missing merges" "tokenizer.ggml.merges is missing" drop=merges
    bad "missing tokens" "tokenizer.ggml.tokens is missing" drop=tokens
    bad "no tokenizer" "tokenizer.ggml.model is missing" drop=model
    bad "SentencePiece GGUF refused" "tokenizer.ggml.model is \"llama\" \(SentencePiece in GGUF\): not supported yet" model=llama
    bad "other model refused" "tokenizer.ggml.model \"bert\" is not supported" model=bert
    # truncated: the real file inside its metadata, and the metadata-only one at several lengths
    head -c 1000000 "$GGUF" >"$T/trunc.gguf"
    expect_err1 "gguf: truncated file" "^error: .*trunc.gguf: truncated or corrupt GGUF metadata" "$TOK" load "$T/trunc.gguf"
    sz=$(stat -c %s "$T/meta.gguf")
    all=1
    for cut in 0 3 4 20 24 100 1000 100000 $((sz / 2)) $((sz - 1)); do
        head -c "$cut" "$T/meta.gguf" >"$T/cut.gguf"
        if "$TOK" load "$T/cut.gguf" >/dev/null 2>"$T/err" || [ "$(wc -l <"$T/err")" -ne 1 ] ||
            ! grep -q "^error: .*cut.gguf" "$T/err"; then
            all=0; fail "gguf: cut at $cut bytes" "$(head -c 200 "$T/err")"
        fi
    done
    [ $all = 1 ] && pass "gguf: metadata cut at 10 lengths: each a one-line error"
fi
exit 0
