# pipeline.sh - the base stages end to end: determinism, thread-count reproducibility,
# candidates' exclusions, metrics output formats, bad model / rankings inputs, and the
# Make DAG (`make base` into a temporary artifacts folder; a second run does nothing;
# changing one parameter reruns exactly what depends on it).
source "$ITREK_ROOT/tests/cli/lib.sh"
B=$BINDIR
ML=$SHARED/data/ml-100k
"$B/split" --quiet --ml100k "$ML" --scheme loo -o "$T/ia.mp"
"$B/mf-train" --quiet --threads 2 --epochs 20 "$T/ia.mp" -o "$T/mf1.mp"
"$B/mf-train" --quiet --threads 2 --epochs 20 "$T/ia.mp" -o "$T/mf2.mp"
same "mf-train: same seed and threads, identical bytes" "$T/mf1.mp" "$T/mf2.mp"
"$B/mf-train" --quiet --threads 1 --epochs 20 "$T/ia.mp" -o "$T/mf3.mp"
"$B/mf-train" --quiet --threads 1 --epochs 20 "$T/ia.mp" -o "$T/mf4.mp"
same "mf-train: one thread, identical bytes" "$T/mf3.mp" "$T/mf4.mp"
"$B/mf-train" --quiet --threads 2 --epochs 20 --seed 2 "$T/ia.mp" -o "$T/mf5.mp"
cmp -s "$T/mf1.mp" "$T/mf5.mp" && fail "mf-train: another seed, other bytes" || pass "mf-train: another seed, other bytes"
"$B/mf-train" --quiet --threads 2 --epochs 3 --batch 32 "$T/ia.mp" -o "$T/mfb.mp" && pass "mf-train: mini-batches" || fail "mf-train: mini-batches"
"$B/mf-train" --quiet --threads 2 --epochs 20 --recency 0 "$T/ia.mp" -o "$T/mf0.mp"
cmp -s "$T/mf0.mp" "$T/mf1.mp" && fail "mf-train: --recency changes the model" || pass "mf-train: --recency changes the model"
"$B/mp2json" --head 0 "$T/mf1.mp" | grep -q '"recency":5' && pass "mf-train: recency in the header params" || fail "mf-train: recency in the header params"
# Without a valid part (split --refit) mf-train trains exactly --epochs epochs and keeps the last.
"$B/split" --quiet --ml100k "$ML" --scheme loo --refit -o "$T/ia-refit.mp"
"$B/mf-train" --quiet --threads 2 --epochs 7 "$T/ia-refit.mp" -o "$T/mf-refit.mp" 2> "$T/mf-refit.err"
h=$("$B/mp2json" --head 0 "$T/mf-refit.mp")
[[ $h == *'"valid":{"best":null,"best_epoch":0,"epochs_run":7,'* ]] && pass "mf-train: no valid part, exactly --epochs" || fail "mf-train: no valid part, exactly --epochs" "$h $(cat "$T/mf-refit.err")"
"$B/mf-train" --quiet --threads 2 --epochs 6 "$T/ia-refit.mp" -o "$T/mf-refit6.mp"
cmp -s "$T/mf-refit.mp" "$T/mf-refit6.mp" && fail "mf-train: no valid part, the last epoch kept" || pass "mf-train: no valid part, the last epoch kept"
"$B/candgen" --quiet --threads 2 --mf "$T/mf1.mp" "$T/ia.mp" -o "$T/c1.mp"
"$B/candgen" --quiet --threads 1 --mf "$T/mf1.mp" "$T/ia.mp" -o "$T/c2.mp"
same "candgen: same result on 1 and 2 threads" "$T/c1.mp" "$T/c2.mp"
# Candidates never contain a train or valid item of their user (test), and are 10 distinct items.
"$B/mp2json" "$T/ia.mp" | tail -n +2 | grep -v '"part":"test"' | sed 's/.*"user":\([0-9]*\),"item":\([0-9]*\).*/\1 \2/' > "$T/seen"
"$B/mp2json" "$T/c1.mp" | tail -n +2 | sed 's/.*"user":\([0-9]*\),"items":\[\([0-9,]*\)\].*/\1 \2/' |
    awk '{n=split($2,a,","); if (n!=10) bad++; for(i=1;i<=n;i++){print $1, a[i]; for(j=1;j<i;j++) if(a[j]==a[i]) dup++}} END{if(bad+dup) print "BAD", bad+0, dup+0 > "/dev/stderr"}' > "$T/cand" 2>"$T/candbad"
[ ! -s "$T/candbad" ] && pass "candgen: 10 distinct items per user" || fail "candgen: 10 distinct items per user" "$(cat "$T/candbad")"
[ -z "$(sort "$T/seen" "$T/cand" | uniq -d | head -1)" ] && pass "candgen: no train/valid item among test candidates" || fail "candgen: no train/valid item among test candidates"
n=$("$B/mp2json" "$T/c1.mp" | tail -n +2 | wc -l)
[ "$n" = 943 ] && pass "candgen: every user" || fail "candgen: every user" "$n"
"$B/candgen" --quiet --mf "$T/mf1.mp" --users eval --for valid "$T/ia.mp" -o "$T/cv.mp"
n=$("$B/mp2json" "$T/cv.mp" | tail -n +2 | wc -l)
[ "$n" = 942 ] && pass "candgen --users eval: users with a valid positive" || fail "candgen --users eval" "$n"

# metrics: formats and determinism
"$B/metrics" --interactions "$T/ia.mp" --candidates "$T/c1.mp" --format json -o "$T/m.json"
grep -q '"users": 942' "$T/m.json" && grep -q '"method": "base"' "$T/m.json" && pass "metrics json" || fail "metrics json"
"$B/metrics" --interactions "$T/ia.mp" --candidates "$T/c1.mp" --format csv > "$T/m.csv"
head -1 "$T/m.csv" | grep -q '^protocol,part,users,method,H@3,N@3,R@3,H@5,N@5,R@5,H@10,N@10,R@10,MRR$' && pass "metrics csv header" || fail "metrics csv header" "$(head -1 "$T/m.csv")"
# A ranking that is the candidates reversed: every user still counted; base vs it with intervals.
"$B/mp2json" "$T/c1.mp" | awk 'NR==1{print "{\"schema\":\"itrek.rankings\",\"version\":1,\"params\":{\"scheme\":\"loo\"}}"; next}
  { match($0,/"user":[0-9]+/); u=substr($0,RSTART+7,RLENGTH-7); match($0,/"items":\[[0-9,]*\]/); s=substr($0,RSTART+9,RLENGTH-10);
    n=split(s,a,","); r=""; for(i=n;i>=1;i--) r=r (r==""?"":",") a[i]; if (u % 2) print "{\"user\":" u ",\"method\":\"reversed\",\"items\":[" r "]}" }' |
    "$B/json2mp" > "$T/rev.mp"
"$B/metrics" --interactions "$T/ia.mp" --candidates "$T/c1.mp" "$T/rev.mp" > "$T/m.md"
grep -q '^| reversed |' "$T/m.md" && grep -q 'Improvement of reversed over base' "$T/m.md" && grep -q '^Protocol `loo`, part `test`: 942 users' "$T/m.md" \
    && pass "metrics md: methods, improvement row, user count" || fail "metrics md" "$(cat "$T/m.md")"
h10b=$(awk -F, '$4=="base"{print $11}' "$T/m.csv")
h10r=$("$B/metrics" --format csv --interactions "$T/ia.mp" "$T/rev.mp" | awk -F, '$4=="reversed"{print $11}')
# Half the users are missing from 'reversed' and count as misses: its H@10 is below base's.
awk -v a="$h10r" -v b="$h10b" 'BEGIN{exit !(a < b && a > 0)}' && pass "metrics: missing users count as misses" || fail "metrics: missing users count as misses" "$h10r vs $h10b"
"$B/metrics" --interactions "$T/ia.mp" --candidates "$T/c1.mp" "$T/rev.mp" > "$T/m2.md"
same "metrics: bootstrap is seeded" "$T/m.md" "$T/m2.md"

# bad model and rankings inputs
"$B/mp2json" "$T/mf1.mp" | awk 'NR==2{sub(/"vec":\{"\$bin":"[^"]*"\}/,"\"vec\":{\"$bin\":\"AAAA\"}")} {print}' | "$B/json2mp" > "$T/badvec.mp"
expect_fail "mf: vector of the wrong size" 1 "badvec.mp:1: field 'vec': 3 bytes, expected 256" "$B/candgen" --mf "$T/badvec.mp" "$T/ia.mp"
"$B/mp2json" "$T/mf1.mp" | awk 'NR==2{sub(/"user":0/,"\"user\":5000")} {print}' | "$B/json2mp" > "$T/badid.mp"
expect_fail "mf: id outside the header's range" 1 "badid.mp:1: field 'user': id 5000 outside" "$B/candgen" --mf "$T/badid.mp" "$T/ia.mp"
{ "$B/mp2json" "$T/rev.mp"; "$B/mp2json" "$T/rev.mp" | sed -n 2p; } | "$B/json2mp" > "$T/dup.mp"
expect_fail "rankings: duplicate user" 1 "dup.mp:[0-9]+: field 'user': duplicate ranking for user 1 \(method reversed\)" "$B/metrics" --interactions "$T/ia.mp" "$T/dup.mp"
"$B/mp2json" "$T/rev.mp" | sed '1s/"loo"/"ratio"/' | "$B/json2mp" > "$T/other.mp"
expect_fail "rankings from another split" 1 "other.mp:0: field 'params.scheme': 'ratio' does not match the interactions' scheme 'loo'" "$B/metrics" --interactions "$T/ia.mp" "$T/other.mp"
"$B/mp2json" "$T/rev.mp" | sed '2s/"items":\[\([0-9]*\),/"items":[\1,\1,/' | "$B/json2mp" > "$T/twice.mp"
expect_fail "rankings: item twice" 1 "twice.mp:1: field 'items\[1\]': item [0-9]+ appears twice" "$B/metrics" --interactions "$T/ia.mp" "$T/twice.mp"
expect_fail "metrics: nothing to evaluate" 2 "nothing to evaluate" "$B/metrics" --interactions "$T/ia.mp"
expect_fail "candgen: --mf required" 2 "--mf MODEL is required" "$B/candgen" "$T/ia.mp"

# The Make DAG, on the real data, into temporary folders.
mk() { make -C "$ITREK_ROOT" --no-print-directory "$@" SAN="${SAN:-}" ML100K="$ML" ART="$T/art" RES="$T/res" PROFILE=tiny SCHEMES=loo BINDIR="$BINDIR"; }
# two `make results` on one ART: the second refuses while the first holds $ART/.lock
mkdir -p "$T/art"; exec 8> "$T/art/.lock"; flock 8
mk results > "$T/lock.out" 2> "$T/lock.err" 8>&-; rc=$?
exec 8>&-
[ $rc -ne 0 ] && grep -q "^make results: another make results is running on ART=$T/art (it holds $T/art/.lock)" "$T/lock.err" &&
    [ ! -e "$T/art/loo/interactions.mp" ] && pass "a second make results on one ART refuses" ||
    fail "a second make results on one ART refuses" "exit $rc; $(head -c 300 "$T/lock.err")"
mk base > "$T/make1.log" 2>&1 && [ -s "$T/res/loo-base.md" ] && [ -s "$T/res/loo-base.json" ] && pass "make base writes results" || fail "make base writes results" "$(tail -5 "$T/make1.log")"
mk base 2>&1 | grep -E 'bin/(split|mf-train|candgen|metrics) ' > "$T/make2.log"
[ ! -s "$T/make2.log" ] && pass "second make base does nothing" || fail "second make base does nothing" "$(cat "$T/make2.log")"
mk base CAND_N=20 2>&1 | grep -oE 'bin/(split|mf-train|candgen|metrics) ' | sort -u | awk '{printf "%s ", $1}' > "$T/make3.log"
[ "$(cat "$T/make3.log")" = "bin/candgen bin/metrics " ] && pass "changing CAND_N reruns candgen and metrics only" || fail "changing CAND_N reruns candgen and metrics only" "$(cat "$T/make3.log")"
# PRETRAIN_SEED varies the backbone alone: the pretraining stamp gets it, MF and LoRA keep SEED
# (docs/results.md, log 5).
mk -n results PRETRAIN_SEED=7 > "$T/seeds.log" 2>&1
grep -E '/mf\.params$' "$T/seeds.log" | grep -q -- '--seed 1 ' && grep -E '/lora\.params$' "$T/seeds.log" | grep -q -- '--seed 1 ' &&
    grep -E '/backbone\.params$' "$T/seeds.log" | grep -q -- '--seed 7 --threads' &&
    pass "PRETRAIN_SEED reaches pretraining, not MF or LoRA" || fail "PRETRAIN_SEED reaches pretraining, not MF or LoRA" "$(grep -E 'params$' "$T/seeds.log" | cut -c1-200)"
# REFIT=1: the test run's split gets --refit, model selection's does not, and the refit MF
# trains for the selection MF's best epoch count; by default no stamp mentions refit.
mk -n results REFIT=1 > "$T/refit.log" 2>&1
grep -qE "'--scheme loo --ml100k [^']* --refit' > [^ ]*/art/loo/split.params" "$T/refit.log" &&
    grep -qE "'--scheme loo --ml100k [^']*' > [^ ]*/art/loo/select/split.params" "$T/refit.log" &&
    grep -E 'bin/mf-train ' "$T/refit.log" | grep -q -- '--epochs $(.*mp2json --head 0 [^ ]*/select/mf.mp .*best_epoch' &&
    pass "REFIT=1: refit split, selection split, MF epochs from selection" || fail "REFIT=1: refit split, selection split, MF epochs from selection" "$(grep -E 'split|mf-train' "$T/refit.log" | cut -c1-200)"
mk -n results > "$T/norefit.log" 2>&1
! grep -q -- '--refit\|/select/' "$T/norefit.log" && pass "REFIT=0 (default): nothing refit" || fail "REFIT=0 (default): nothing refit"
# small (the default profile) keeps docs/DESIGN.md's protocol (3 "Protocols"): no refit unless asked for
make -C "$ITREK_ROOT" --no-print-directory -n results PROFILE=small SCHEMES=loo ML100K="$ML" ART="$T/sart" RES="$T/sres" BINDIR="$BINDIR" > "$T/srefit.log" 2>&1
grep -q "/sart/loo/split.params" "$T/srefit.log" && ! grep -q -- '--refit\|/select/' "$T/srefit.log" &&
    pass "small: no refit by default" || fail "small: no refit by default" "$(grep split.params "$T/srefit.log" | cut -c1-200)"
expect_fail "make valid with REFIT=1" 2 "make valid needs REFIT=0" mk valid REFIT=1
! grep -q -- '--item-vectors\|--init-embeddings' "$T/srefit.log" && pass "small: title embeddings from noise by default" ||
    fail "small: title embeddings from noise by default" "$(grep -- '--init-embeddings' "$T/srefit.log" | cut -c1-200)"
make -C "$ITREK_ROOT" --no-print-directory -n results PROFILE=small SCHEMES=loo ML100K="$ML" ART="$T/iart" RES="$T/ires" BINDIR="$BINDIR" \
    ITEM_INIT_STD=0.05 > "$T/iinit.log" 2>&1
grep -q -- "--item-vectors $T/iart/loo/itemvecs.mp" "$T/iinit.log" &&
    grep -q -- "--init-embeddings $T/iart/loo/itemvecs.mp --init-embeddings-std 0.05 --text" "$T/iinit.log" &&
    grep -q "item-init 0.05" "$T/iinit.log" &&
    pass "ITEM_INIT_STD=0.05: item vectors made, given to the pretraining, stamped" || fail "ITEM_INIT_STD=0.05" "$(grep -- 'init-embeddings\|item-vectors' "$T/iinit.log" | cut -c1-300)"
expect_fail "REFIT must be 0 or 1" 2 "REFIT must be 0 or 1, not 'yes'" mk base REFIT=yes
make -C "$ITREK_ROOT" --no-print-directory -n results PROFILE=tiny SCHEMES=loo SHARDS=3 ML100K="$ML" ART="$T/hart" RES="$T/hres" BINDIR="$BINDIR" > "$T/shards.log" 2>&1
[ "$(grep -c -- "--shard [0-2]/3 $T/hart/loo/queries-test.mp -o $T/hart/loo/shards/answers-test.[0-2]-of-3.mp" "$T/shards.log")" = 3 ] &&
    grep -q "rank --merge $T/hart/loo/shards/answers-test.0-of-3.mp $T/hart/loo/shards/answers-test.1-of-3.mp $T/hart/loo/shards/answers-test.2-of-3.mp -o $T/hart/loo/answers-test.mp" "$T/shards.log" &&
    pass "SHARDS=3: three rank shard targets and one merge" || fail "SHARDS=3" "$(grep -- '--shard\|--merge' "$T/shards.log" | cut -c1-200)"
expect_fail "SHARDS must be a positive whole number" 2 "SHARDS must be a positive whole number, not '0'" mk base SHARDS=0
# A method may come from two inputs when they agree (fuse's base and the candidates), not otherwise.
"$B/mp2json" "$T/c1.mp" | awk 'NR==1{print "{\"schema\":\"itrek.rankings\",\"version\":1,\"params\":{\"scheme\":\"loo\"}}"; next}
  {sub(/,"scores":\[[^]]*\]/,""); sub(/\{"user"/,"{\"method\":\"base\",\"user\""); print}' | "$B/json2mp" > "$T/fusedbase.mp"
expect_ok "metrics: base from candidates and from rankings, identical" "$B/metrics" --interactions "$T/ia.mp" --candidates "$T/c1.mp" "$T/fusedbase.mp"
"$B/mp2json" "$T/fusedbase.mp" | sed '2s/"items":\[\([0-9]*\),\([0-9]*\)/"items":[\2,\1/' | "$B/json2mp" > "$T/fusedbase2.mp"
expect_fail "metrics: base from two inputs that differ" 1 "fusedbase2.mp:1: field 'items': the base ranking of user 1 differs from the one in an earlier input" "$B/metrics" --interactions "$T/ia.mp" --candidates "$T/c1.mp" "$T/fusedbase2.mp"
# promptgen --mode corpus: the backbone's text and the title symbols for spm_train.
"$B/split" --quiet --ml100k "$ML" --catalog "$T/items.mp" > /dev/null
"$B/promptgen" --quiet --templates "$ITREK_ROOT/data/prompts/recranker.tmpl" --mode corpus --interactions "$T/ia.mp" \
    --catalog "$T/items.mp" --symbols "$T/sym.txt" -o "$T/corpus.txt" 2> "$T/corpus.err"
n=$(wc -l < "$T/sym.txt"); u=$(sort -u "$T/sym.txt" | wc -l)
[ "$n" = 1664 ] && [ "$u" = 1664 ] && pass "corpus: one symbol per distinct title (1664)" || fail "corpus: one symbol per distinct title" "$n lines, $u unique"
grep -q '^"Toy▁Story▁(1995)"$' "$T/sym.txt" && pass "corpus: symbols use U+2581 for spaces" || fail "corpus: symbols use U+2581 for spaces"
[ "$(grep -c '^"' "$T/corpus.txt")" = 1682 ] && pass "corpus: one catalogue line per item" || fail "corpus: one catalogue line per item"
"$B/promptgen" --quiet --templates "$ITREK_ROOT/data/prompts/recranker.tmpl" --mode corpus --interactions "$T/ia.mp" \
    --catalog "$T/items.mp" -o "$T/corpus2.txt"
same "corpus: deterministic" "$T/corpus.txt" "$T/corpus2.txt"
# Only the train part reaches the corpus: under loo it holds no rating of 3 (those are dropped).
! grep -qE '": 3(; |\.)' "$T/corpus.txt" && pass "corpus: train part only (no dropped 3s under loo)" || fail "corpus: train part only"
grep -qE '": 5(; |\.)' "$T/corpus.txt" && pass "corpus: rated windows present" || fail "corpus: rated windows present"
# With every history rated (rated.tmpl) the corpus is the catalogue and the rated windows only:
# exactly recranker.tmpl's corpus without its liked-list documents.
"$B/promptgen" --quiet --templates "$ITREK_ROOT/data/prompts/rated.tmpl" --mode corpus --interactions "$T/ia.mp" \
    --catalog "$T/items.mp" -o "$T/corpus3.txt"
grep -c "^User's liked movies" "$T/corpus.txt" > "$T/nl1"
[ "$(cat "$T/nl1")" -gt 0 ] && ! grep -q "liked movies" "$T/corpus3.txt" &&
    cmp -s <(grep -v "^User's liked movies" "$T/corpus.txt") "$T/corpus3.txt" &&
    pass "corpus: rated.tmpl writes no liked-list documents, the rest unchanged" || fail "corpus: rated.tmpl" "$(head -c 300 "$T/corpus3.txt")"
# --item-vectors: PPMI vectors of the train transitions (rec/itemvec.h; numbers checked in
# tests/unit/test_itemvec.c), one per item with a train transition, each symbol one of
# --symbols' lines; an impossible --item-dim fails before any file is written.
"$B/promptgen" --quiet --templates "$ITREK_ROOT/data/prompts/recranker.tmpl" --mode corpus --interactions "$T/ia.mp" \
    --catalog "$T/items.mp" --item-vectors "$T/iv.mp" > /dev/null
"$B/mp2json" "$T/iv.mp" > "$T/iv.jsonl"
head -1 "$T/iv.jsonl" | grep -q '"schema":"itrek.itemvecs".*"method":"ppmi-transitions","dim":64,"params":{"window":5}' &&
    pass "corpus --item-vectors: header" || fail "corpus --item-vectors: header" "$(head -c 300 "$T/iv.jsonl")"
nv=$(($(wc -l < "$T/iv.jsonl") - 1))
[ "$nv" -gt 1500 ] && [ "$nv" -le 1682 ] && pass "corpus --item-vectors: one per item in a train history ($nv)" || fail "corpus --item-vectors: count" "$nv"
sed -n '2,$s/.*"symbol":"\(.*\)","vec".*/\1/p' "$T/iv.jsonl" | sed 's/\\"/"/g' | sort -u > "$T/iv.sym"
[ "$(comm -23 "$T/iv.sym" <(sort "$T/sym.txt") | wc -l)" = 0 ] && [ -s "$T/iv.sym" ] &&
    pass "corpus --item-vectors: every symbol is a --symbols line" || fail "corpus --item-vectors: symbols" "$(comm -23 "$T/iv.sym" <(sort "$T/sym.txt") | head -3)"
expect_fail "corpus --item-vectors: more dimensions than items" 1 "ia.mp: --item-vectors: $nv items with a train transition, fewer than the 4000 dimensions" \
    "$B/promptgen" --templates "$ITREK_ROOT/data/prompts/recranker.tmpl" --mode corpus --interactions "$T/ia.mp" --catalog "$T/items.mp" \
    --item-vectors "$T/iv2.mp" --item-dim 4000 -o "$T/corpus-iv2.txt"
[ ! -e "$T/iv2.mp" ] && [ ! -e "$T/corpus-iv2.txt" ] && pass "corpus --item-vectors: failure leaves no file" || fail "corpus --item-vectors: failure leaves no file"
# --entry-symbols: the rated history's fixed text per rating of the train part (loo: 1, 2, 4,
# 5; no 3s) with and without the separator, and the list separator; the items as before.
"$B/promptgen" --quiet --templates "$ITREK_ROOT/data/prompts/rated.tmpl" --mode corpus --interactions "$T/ia.mp" \
    --catalog "$T/items.mp" --symbols "$T/sym2.txt" --entry-symbols -o "$T/corpus4.txt"
printf '%s\n' ':▁1' ':▁1;▁' ':▁2' ':▁2;▁' ':▁4' ':▁4;▁' ':▁5' ':▁5;▁' ',▁' | sort > "$T/entry.want"
grep -v '^"' "$T/sym2.txt" | sort > "$T/entry.got"
same "corpus --entry-symbols: ': R; ', ': R' per train rating and ', '" "$T/entry.want" "$T/entry.got"
cmp -s <(grep '^"' "$T/sym2.txt") "$T/sym.txt" && same "corpus --entry-symbols: corpus unchanged" "$T/corpus3.txt" "$T/corpus4.txt" ||
    fail "corpus --entry-symbols: item symbols unchanged"
if command -v spm_train > /dev/null; then
    # With them a rated entry is 2 tokens (title, ": 5; "); our tokenizer agrees with spm_encode.
    spm_train --input="$T/corpus4.txt" --model_prefix="$T/es" --model_type=bpe --vocab_size=2000 --byte_fallback=true \
        --character_coverage=1.0 --normalization_rule_name=identity --remove_extra_whitespaces=false --split_digits=true \
        --user_defined_symbols_file="$T/sym2.txt" --max_sentence_length=100000 --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
        --num_threads=1 --minloglevel=2 > "$T/es.log" 2>&1
    line='User'"'"'s historical movie ratings: "Babe (1995)": 4; "Annie Hall (1977)": 5; "Heat (1995)": 1.'
    spm_encode --model "$T/es.model" <<< "$line" > "$T/es.pieces"
    grep -q '"Babe▁(1995)" :▁4;▁ "Annie▁Hall▁(1977)" :▁5;▁ "Heat▁(1995)" :▁1 \.$' "$T/es.pieces" &&
        pass "corpus --entry-symbols: an entry is 2 tokens" || fail "corpus --entry-symbols: an entry is 2 tokens" "$(cat "$T/es.pieces")"
    printf '{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":16,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":2,"intermediate_size":32,"vocab_size":2000,"max_position_embeddings":64,"rms_norm_eps":1e-5,"rope_theta":10000.0,"tie_word_embeddings":true,"bos_token_id":1,"eos_token_id":2}\n' > "$T/es.json"
    "$B/llm" init --config "$T/es.json" --tokenizer "$T/es.model" "$T/esm" > /dev/null 2>&1
    if "$B/llm" tokenize --model "$T/esm" --text "$line" > "$T/es.ours" 2> "$T/es.err"; then
        spm_encode --model "$T/es.model" --output_format=id <<< "$line" > "$T/es.ref"
        cmp -s <(tr -s ' \n' '  ' < "$T/es.ours" | sed 's/ $//') <(tr -s ' \n' '  ' < "$T/es.ref" | sed 's/ $//') &&
            pass "corpus --entry-symbols: bin/llm tokenize = spm_encode" || fail "corpus --entry-symbols: bin/llm tokenize = spm_encode" "$(cat "$T/es.ours") vs $(cat "$T/es.ref")"
    else
        fail "corpus --entry-symbols: bin/llm tokenize" "$(cat "$T/es.err")"
    fi
fi
sed 's/^rated_item = .*/rated_item = {rating} stars for {item}/' "$ITREK_ROOT/data/prompts/rated.tmpl" > "$T/stars.tmpl"
expect_fail "promptgen: --entry-symbols with a rated_item not beginning with {item}" 1 "stars.tmpl: field 'rated_item': --entry-symbols needs it to begin with \{item\}" \
    "$B/promptgen" --templates "$T/stars.tmpl" --mode corpus --interactions "$T/ia.mp" --catalog "$T/items.mp" --symbols "$T/sym3.txt" --entry-symbols -o "$T/x.txt"
[ ! -e "$T/x.txt" ] && [ ! -e "$T/sym3.txt" ] && pass "promptgen: nothing written after that error" || fail "promptgen: nothing written after that error"
expect_fail "promptgen: --entry-symbols without --symbols" 2 "--entry-symbols needs --symbols F" \
    "$B/promptgen" --templates "$ITREK_ROOT/data/prompts/rated.tmpl" --mode corpus --interactions "$T/ia.mp" --catalog "$T/items.mp" --entry-symbols -o "$T/x.txt"
