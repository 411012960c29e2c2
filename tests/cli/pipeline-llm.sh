# pipeline-llm.sh - `make results PROFILE=tiny` end to end on the real data (scheme loo) into
# temporary folders: own tokenizer and backbone, promptgen (with its leakage check), lora-train,
# rank, fuse, metrics. Checks the table's rows, the parse report, and that a second run does
# nothing. Skipped under SAN=1 (the sanitizer build would take most of CI's time here; the same
# stages' CLI tests run under the sanitizers).
source "$ITREK_ROOT/tests/cli/lib.sh"
[ "${SAN:-}" = 1 ] && exit 0
ML=$SHARED/data/ml-100k
mk() { make -C "$ITREK_ROOT" --no-print-directory "$@" ML100K="$ML" SHARED="$SHARED" ART="$T/art" RES="$T/res" PROFILE=tiny SCHEMES=loo BINDIR="$BINDIR"; }
if mk results > "$T/make1.log" 2>&1; then pass "make results PROFILE=tiny"; else fail "make results PROFILE=tiny" "$(tail -5 "$T/make1.log")"; fi
md=$T/res/loo.md
for m in base pointwise pairwise listwise hybrid; do
    grep -q "^| $m | 0\.[0-9]* |" "$md" && pass "table row $m" || fail "table row $m"
done
grep -q '^Protocol `loo`, part `test`: 942 users with a positive.' "$md" && pass "table counts 942 users" || fail "table counts 942 users"
grep -q 'Improvement of hybrid over base' "$md" && pass "improvement row" || fail "improvement row"
grep -q 'fuse: listwise: 942 answers' "$md" && pass "parse report in the table" || fail "parse report in the table"
grep -q 'no leakage' "$T/make1.log" && pass "leakage check ran" || fail "leakage check ran"
grep -q '"rows"' "$T/res/loo.json" && pass "json table" || fail "json table"
[ -s "$T/art/loo/backbone/model.safetensors" ] && [ -s "$T/art/loo/adapter/adapter_model.safetensors" ] \
    && pass "backbone and adapter written" || fail "backbone and adapter written"
mk results > "$T/make2.log" 2>&1
grep -E '^[^ ]*bin/(split|mf-train|candgen|promptgen|lora-train|rank|fuse|metrics) |^spm_train ' "$T/make2.log" > "$T/ran"
[ ! -s "$T/ran" ] && pass "second make results does nothing" || fail "second make results does nothing" "$(head -3 "$T/ran")"

# SHARDS=2: rank as two shard targets (make -j2) merged by rank --merge; the merge has the
# unsharded run's header, ids, order and texts (scores may differ in the last bits: docs/rank.md)
A=$T/art/loo
mv "$A/answers-test.mp" "$T/answers-unsharded.mp"
if mk -j2 SHARDS=2 "$A/answers-test.mp" > "$T/shards.log" 2>&1 && grep -q -- '--shard 1/2' "$T/shards.log" &&
    grep -q 'rank --merge' "$T/shards.log"; then pass "SHARDS=2: two rank shards and a merge"
else fail "SHARDS=2: two rank shards and a merge" "$(tail -3 "$T/shards.log")"; fi
strip_scores() { "$BINDIR/mp2json" "$1" | sed 's/,"scores":\[[^]]*\]//'; }
cmp -s <(strip_scores "$T/answers-unsharded.mp") <(strip_scores "$A/answers-test.mp") &&
    pass "SHARDS=2: header, ids, order and texts as unsharded" || fail "SHARDS=2: header, ids, order and texts as unsharded"
mv "$T/answers-unsharded.mp" "$A/answers-test.mp"

# issue 30: the seed's hybrid row, provenance without machine paths, and the leak audit
grep -q "^| seed hybrid | 0\.[0-9]* |" "$md" && pass "table row seed hybrid (the seed's lambda 1/3)" || fail "table row seed hybrid"
grep -q -- '- split: `--scheme loo --ml100k <ML-100K, u.data sha256 [0-9a-f]\{16\}…>`' "$md" && ! grep -q "$ML" "$md" \
    && pass "the table names the data set by checksum, not by its path" || fail "provenance" "$(grep -- '- split' "$md")"
if mk leak-audit > "$T/audit.log" 2>&1; then pass "make leak-audit PROFILE=tiny"; else fail "make leak-audit PROFILE=tiny" "$(tail -5 "$T/audit.log")"; fi
au=$T/res/loo-leak-audit.md
grep -q '^Protocol `loo`, part `test`, LEAKY: 942 users' "$au" && pass "audit: LEAKY in the title" || fail "audit: title" "$(grep Protocol "$au")"
for m in hybrid "LEAKY pointwise" "LEAKY hybrid" "hint-trained pointwise" "hint-trained hybrid"; do
    grep -q "^| $m | 0\.[0-9]* |" "$au" && pass "audit: row $m" || fail "audit: row $m"
done
"$BINDIR/mp2json" --head 0 "$T/art/loo/leaky/answers-recranker-leaky.mp" | grep -q '"leaky":true' \
    && ! "$BINDIR/mp2json" --head 0 "$T/art/loo/leaky/answers-base.mp" | grep -q '"leaky":' \
    && pass "audit: rank carries params.leaky into its answers (and only there)" || fail "audit: answers header"
grep -q 'LEAKY hints (the diagnostic' "$T/audit.log" && pass "audit: the check ran with --diagnostic" || fail "audit: check"
grep -q 'rank-recranker-leaky' "$au" && pass "audit: its wall times" || fail "audit: wall times"
