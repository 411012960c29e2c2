# promptgen.sh - training instructions and evaluation queries on ML-100K (loo): counts, forms,
# determinism, task subsets, hints, templates, the token budget, and the leakage guard, which
# must pass on promptgen's own output and fail (exit 1, one line naming file, record and field)
# on leaking streams crafted with mp2json | sed | json2mp.
source "$ITREK_ROOT/tests/cli/lib.sh"
B=$BINDIR
ML=$SHARED/data/ml-100k
TOK=$SHARED/models/llama2-tokenizer/tokenizer.model
j() { "$B/mp2json" "$@"; }
body() { j "$1" | tail -n +2; }
hdr() { j --head 0 "$1"; }

"$B/split" --quiet --ml100k "$ML" --scheme loo --catalog "$T/items.mp" -o "$T/ia.mp"
"$B/mf-train" --quiet --threads 2 --epochs 10 --dim 16 "$T/ia.mp" -o "$T/mf.mp"
"$B/candgen" --quiet --mf "$T/mf.mp" "$T/ia.mp" -o "$T/cand-all.mp"
"$B/candgen" --quiet --mf "$T/mf.mp" --for valid "$T/ia.mp" -o "$T/cand-valid-all.mp"
# 25 users keep the eval tests fast
j --head 25 "$T/cand-all.mp" | "$B/json2mp" -o "$T/cand.mp"
j --head 25 "$T/cand-valid-all.mp" | "$B/json2mp" -o "$T/cand-valid.mp"
IN=(--interactions "$T/ia.mp" --catalog "$T/items.mp" --mf "$T/mf.mp")

# ---------- training ----------
expect_ok "train: adaptive, 200 draws" "$B/promptgen" --quiet --mode train "${IN[@]}" --draws 200 -o "$T/tr.mp"
h=$(hdr "$T/tr.mp")
[[ $h == *'"schema":"itrek.instructions"'* && $h == *'"draws":200'* && $h == *'"sampling":"adaptive"'* && $h == *'"penalty":0.92'* ]] \
    && pass "train: header params" || fail "train: header params" "$h"
d=$(sed 's/.*"distinct":\([0-9]*\).*/\1/' <<<"$h")
[[ $h =~ \"per_user\":\{\"min\":[0-9]+,\"mean\":[0-9.]+,\"max\":[0-9]+\} && $d -gt 50 && $d -le 200 ]] \
    && pass "train: distinct users and draws per user in the header" || fail "train: distinct users and draws per user" "$h"
n=$(body "$T/tr.mp" | wc -l)
skipped=$(sed 's/.*"skipped":{"pointwise":\([0-9]*\),"pairwise":\([0-9]*\),"listwise":\([0-9]*\)}.*/\1 \2 \3/' <<<"$h")
[ "$n" = $((600 - ($(tr ' ' '+' <<<"$skipped")))) ] && [[ $h == *"\"records\":$n"* ]] \
    && pass "train: one instruction per task per draw, less the skipped" || fail "train: record count" "$n ($skipped)"
for t in pointwise pairwise listwise; do
    c=$(body "$T/tr.mp" | grep -c "\"task\":\"$t\"")
    [ "$c" -gt 150 ] && pass "train: $t instructions" || fail "train: $t instructions" "$c"
done
body "$T/tr.mp" | grep '"task":"pointwise"' | grep -vqE '"response":"[1-5]",' && fail "train: pointwise responses are 1..5" || pass "train: pointwise responses are 1..5"
body "$T/tr.mp" | grep '"task":"pairwise"' | grep -vqE '"response":"(Yes|No)\.",' && fail "train: pairwise responses" || pass "train: pairwise responses"
y=$(body "$T/tr.mp" | grep -c '"response":"Yes\."'); no=$(body "$T/tr.mp" | grep -c '"response":"No\."')
[ "$y" -gt 50 ] && [ "$no" -gt 50 ] && pass "train: position shifting (both answers common: $y Yes, $no No)" || fail "train: position shifting" "$y/$no"
body "$T/tr.mp" | grep '"task":"listwise"' | grep -vqE '"response":"(\\"[^"]+\\"\\n){4}\\"[^"]+\\"",' && fail "train: listwise responses: five titles, one per line" || pass "train: listwise responses: five titles, one per line"
body "$T/tr.mp" | grep '"task":"listwise"' | grep -vqE '"items":\[[0-9]+(,[0-9]+){9}\]' && fail "train: listwise shows 10 candidates" || pass "train: listwise shows 10 candidates"
body "$T/tr.mp" | grep -q '### Response:\\n","response"' && pass "train: prompt ends with the alpaca response header" || fail "train: prompt ends with the alpaca response header"
c=$(body "$T/tr.mp" | grep -c 'Hint: Another recommender')
[ "$c" = "$n" ] && pass "train: every prompt has the hint" || fail "train: every prompt has the hint" "$c of $n"

"$B/promptgen" --quiet --mode train "${IN[@]}" --draws 200 -o "$T/tr2.mp"
same "train: same inputs and seed, identical bytes" "$T/tr.mp" "$T/tr2.mp"
"$B/promptgen" --quiet --threads 1 --mode train "${IN[@]}" --draws 200 -o "$T/tr3.mp"
same "train: 1 thread gives the same bytes" "$T/tr.mp" "$T/tr3.mp"
"$B/promptgen" --quiet --mode train "${IN[@]}" --draws 200 --seed 2 -o "$T/tr4.mp"
cmp -s "$T/tr.mp" "$T/tr4.mp" && fail "train: another seed, other prompts" || pass "train: another seed, other prompts"

"$B/promptgen" --quiet --mode train "${IN[@]}" --draws 200 --tasks pairwise -o "$T/trp.mp"
[ "$(body "$T/trp.mp" | grep -vc '"task":"pairwise"')" = 0 ] && pass "train --tasks pairwise: only pairwise" || fail "train --tasks pairwise: only pairwise"
cmp -s <(body "$T/trp.mp" | sed 's/^{"id":[0-9]*,//') <(body "$T/tr.mp" | grep '"task":"pairwise"' | sed 's/^{"id":[0-9]*,//') \
    && pass "train --tasks: the other tasks' prompts do not change" || fail "train --tasks: the other tasks' prompts do not change"
"$B/promptgen" --quiet --mode train "${IN[@]}" --draws 100 --no-hint --sampling uniform -o "$T/tru.mp"
[[ $(hdr "$T/tru.mp") == *'"sampling":"uniform"'* ]] && pass "train --sampling uniform" || fail "train --sampling uniform"
body "$T/tru.mp" | grep -q 'Hint:' && fail "train --no-hint: no hint" || pass "train --no-hint: no hint"
"$B/promptgen" --quiet --mode train "${IN[@]}" --draws 50 -z -o "$T/trz.mp"
head -c 4 "$T/trz.mp" | od -An -tx1 | grep -q '28 b5 2f fd' && pass "train -z: zstd output" || fail "train -z: zstd output"

# --positives next: every shown train item of the user (pointwise target, pairwise positive,
# listwise positives) comes at or after every history item shown with it; random breaks that.
"$B/mp2json" "$T/ia.mp" | tail -n +2 > "$T/ia.jsonl"
after_history() { # STREAM -> number of records that show a train item dated before a history item
    awk '
    FNR == 1 { f++ }
    f == 1 { match($0, /"user":[0-9]+/); u = substr($0, RSTART + 7, RLENGTH - 7)
             match($0, /"item":[0-9]+/); i = substr($0, RSTART + 7, RLENGTH - 7)
             match($0, /"ts":[0-9]+/); t = substr($0, RSTART + 5, RLENGTH - 5)
             if ($0 ~ /"part":"train"/) ts[u "," i] = t; next }
    FNR > 1 { match($0, /"user":[0-9]+/); u = substr($0, RSTART + 7, RLENGTH - 7)
              match($0, /"items":\[[0-9,]*\]/); ni = split(substr($0, RSTART + 9, RLENGTH - 10), it, ",")
              match($0, /"history":\[[0-9,]*\]/); nh = split(substr($0, RSTART + 11, RLENGTH - 12), hi, ",")
              hmax = -1; for (k = 1; k <= nh; k++) if (ts[u "," hi[k]] + 0 > hmax) hmax = ts[u "," hi[k]] + 0
              bad = 0; for (k = 1; k <= ni; k++) if ((u "," it[k]) in ts && ts[u "," it[k]] + 0 < hmax) bad = 1
              n += bad }
    END { print n + 0 }' "$T/ia.jsonl" <(body "$1")
}
expect_ok "train --positives next --hard-negatives 20" "$B/promptgen" --quiet --mode train "${IN[@]}" --draws 200 \
    --positives next --hard-negatives 20 -o "$T/trn.mp"
h=$(hdr "$T/trn.mp")
[[ $h == *'"positives":"next","hard_negatives":20'* ]] && pass "train --positives next: header params" || fail "train --positives next: header params" "$h"
[[ $(hdr "$T/tr.mp") == *'"positives":"random","hard_negatives":0'* ]] && pass "train: default positives random, uniform negatives" || fail "train: default params"
c=$(after_history "$T/trn.mp")
[ "$c" = 0 ] && pass "train --positives next: answers never precede the history shown" || fail "train --positives next: answers precede the history" "$c records"
c=$(after_history "$T/tr.mp")
[ "$c" -gt 100 ] && pass "train --positives random: answers from anywhere in the history ($c records)" || fail "train --positives random" "$c"
"$B/promptgen" --quiet --mode train "${IN[@]}" --draws 200 --positives next --hard-negatives 20 --threads 1 -o "$T/trn1.mp"
same "train --positives next: 1 thread gives the same bytes" "$T/trn.mp" "$T/trn1.mp"
"$B/promptgen" --check "${IN[@]:0:4}" "$T/trn.mp" 2>/dev/null && pass "train --positives next: no leakage (--check)" || fail "train --positives next: --check"
body "$T/trn.mp" | grep '"task":"listwise"' | head -1 | grep -qE '"response":"(\\"[^"]+\\"\\n){4}\\"[^"]+\\"",' \
    && pass "train --positives next: listwise responses: five titles" || fail "train --positives next: listwise responses"
# --hard-negatives N: every negative (an item the user never rated) is among the user's N best
# MF items not rated (candgen's top N + 3 for test: it leaves only train and valid out).
"$B/candgen" --quiet --mf "$T/mf.mp" -n 23 "$T/ia.mp" -o "$T/cand23.mp"
outside_pool() { # STREAM -> negatives shown that are not in the user's top 23
    awk '
    FNR == 1 { f++ }
    f == 1 { match($0, /"user":[0-9]+/); u = substr($0, RSTART + 7, RLENGTH - 7)
             match($0, /"item":[0-9]+/); seen[u "," substr($0, RSTART + 7, RLENGTH - 7)] = 1; next }
    f == 2 && FNR > 1 { match($0, /"user":[0-9]+/); u = substr($0, RSTART + 7, RLENGTH - 7)
             match($0, /"items":\[[0-9,]*\]/); n = split(substr($0, RSTART + 9, RLENGTH - 10), it, ",")
             for (k = 1; k <= n; k++) top[u "," it[k]] = 1; next }
    f == 3 && FNR > 1 { match($0, /"user":[0-9]+/); u = substr($0, RSTART + 7, RLENGTH - 7)
             match($0, /"items":\[[0-9,]*\]/); n = split(substr($0, RSTART + 9, RLENGTH - 10), it, ",")
             for (k = 1; k <= n; k++) if (!((u "," it[k]) in seen) && !((u "," it[k]) in top)) bad++ }
    END { print bad + 0 }' "$T/ia.jsonl" <(body "$T/cand23.mp") <(body "$1")
}
c=$(outside_pool "$T/trn.mp")
[ "$c" = 0 ] && pass "train --hard-negatives 20: negatives from the user's best-scored unseen items" || fail "train --hard-negatives 20: negatives outside the pool" "$c"
c=$(outside_pool "$T/tr.mp")
[ "$c" -gt 100 ] && pass "train: uniform negatives mostly outside that pool ($c)" || fail "train: uniform negatives" "$c"
expect_fail "eval --positives: train only" 2 "^promptgen: --positives and --hard-negatives belong to --mode train" \
    "$B/promptgen" --mode eval "${IN[@]}" --candidates "$T/cand.mp" --positives next -o "$T/x.mp"
expect_fail "train --positives other: usage error" 2 "^promptgen: --positives: expected random or next, got 'later'" \
    "$B/promptgen" --mode train "${IN[@]}" --positives later -o "$T/x.mp"

# templates from a file
sed 's/You are a movie recommender system\./You are a film critic./' "$ITREK_ROOT/data/prompts/recranker.tmpl" > "$T/film.tmpl"
"$B/promptgen" --quiet --mode train "${IN[@]}" --draws 20 --templates "$T/film.tmpl" -o "$T/trf.mp"
[ "$(body "$T/trf.mp" | grep -c 'You are a film critic\.')" = "$(body "$T/trf.mp" | wc -l)" ] && pass "--templates: wording from the file" || fail "--templates: wording from the file"
printf 'wrapper = {instruction}{input}\nitme = "{title}"\n' > "$T/bad1.tmpl"
expect_fail "templates: unknown key, with file and line" 1 "^promptgen: error: .*bad1.tmpl:2: unknown key 'itme'$" \
    "$B/promptgen" --mode train "${IN[@]}" --draws 5 --templates "$T/bad1.tmpl" -o "$T/x.mp"
sed 's/^pairwise.query = .*/pairwise.query = {first} over {third}?/' "$ITREK_ROOT/data/prompts/recranker.tmpl" > "$T/bad2.tmpl"
expect_fail "templates: a placeholder the key does not offer" 1 "bad2.tmpl:[0-9]+: key 'pairwise.query': placeholder \{third\} is not offered" \
    "$B/promptgen" --mode train "${IN[@]}" --draws 5 --templates "$T/bad2.tmpl" -o "$T/x.mp"
grep -v '^listwise.hint' "$ITREK_ROOT/data/prompts/recranker.tmpl" > "$T/bad3.tmpl"
expect_fail "templates: a missing key" 1 "bad3.tmpl: key 'listwise.hint' is missing" \
    "$B/promptgen" --mode train "${IN[@]}" --draws 5 --templates "$T/bad3.tmpl" -o "$T/x.mp"
[ ! -e "$T/x.mp" ] && pass "templates: no output after an error" || fail "templates: no output after an error"

# token budget with the LLaMA-2 tokenizer
if [ -f "$TOK" ]; then
    "$B/promptgen" --mode train "${IN[@]}" --draws 40 --tokenizer "$TOK" --context 700 --reserve 100 -o "$T/trt.mp" 2>"$T/trt.err"
    h=$(hdr "$T/trt.mp")
    s=$(sed 's/.*"shortened":\([0-9]*\).*/\1/' <<<"$h")
    [ "$s" -gt 0 ] && grep -q "$s shortened" "$T/trt.err" && pass "budget: shortened count in header and stderr ($s)" || fail "budget: shortened count" "$h"
    mx=$(sed 's/.*"tokens":{"from":"tokenizer","min":[0-9]*,"median":[0-9]*,"p90":[0-9]*,"max":\([0-9]*\)}.*/\1/' <<<"$h")
    [ "$mx" -le 600 ] && pass "budget: every prompt within context - reserve ($mx <= 600)" || fail "budget: prompts within budget" "$mx"
    body "$T/trt.mp" | grep -q '"dropped":[1-9]' && pass "budget: records say how many history items were dropped" || fail "budget: dropped field"
fi

# ---------- evaluation ----------
expect_ok "eval: test queries" "$B/promptgen" --quiet --mode eval "${IN[@]}" --candidates "$T/cand.mp" -o "$T/q.mp"
h=$(hdr "$T/q.mp")
[[ $h == *'"schema":"itrek.queries"'* && $h == *'"part":"test"'* && $h == *'"scale":[1,5]'* && $h == *'"candidates":10'* ]] \
    && pass "eval: header" || fail "eval: header" "$h"
n=$(body "$T/q.mp" | wc -l)
[ "$n" = $((25 * 21)) ] && pass "eval: 21 queries per user (10 + 10 + 1)" || fail "eval: 21 queries per user" "$n"
[ "$(body "$T/q.mp" | grep '"task":"pairwise"' | grep -c '"swapped":true')" = $((25 * 5)) ] && pass "eval: each pair in both orders" || fail "eval: each pair in both orders"
body "$T/q.mp" | grep '"task":"listwise"' | grep -qvE '"ranks":\[0,1,2,3,4,5,6,7,8,9\]' && fail "eval: listwise in base order" || pass "eval: listwise in base order"
body "$T/q.mp" | grep -q '"response"' && fail "eval: queries carry no response" || pass "eval: queries carry no response"
body "$T/q.mp" | grep -vqE '"prefix_len":[0-9]+,"items"' && fail "eval: prefix_len on every query" || pass "eval: prefix_len on every query"
"$B/promptgen" --quiet --mode eval "${IN[@]}" --candidates "$T/cand.mp" --threads 1 -o "$T/q2.mp"
same "eval: identical bytes on 1 thread" "$T/q.mp" "$T/q2.mp"
expect_ok "eval: valid queries" "$B/promptgen" --quiet --mode eval "${IN[@]}" --candidates "$T/cand-valid.mp" --for valid -o "$T/qv.mp"
expect_fail "eval: --for disagrees with the candidates" 1 "cand-valid.mp:0: field 'params.for'" \
    "$B/promptgen" --mode eval "${IN[@]}" --candidates "$T/cand-valid.mp" --for test -o "$T/x.mp"

# ---------- leakage guard ----------
CHK=(--interactions "$T/ia.mp" --catalog "$T/items.mp")
expect_ok "check: training instructions pass" "$B/promptgen" --check "${CHK[@]}" "$T/tr.mp"
grep -q "no leakage" "$T/err" && pass "check: says so" || fail "check: says so" "$(cat "$T/err")"
expect_ok "check: test queries pass (with candidates)" "$B/promptgen" --check "${CHK[@]}" --candidates "$T/cand.mp" "$T/q.mp"
expect_ok "check: valid queries pass (with candidates)" "$B/promptgen" --check "${CHK[@]}" --candidates "$T/cand-valid.mp" "$T/qv.mp"

# user -> test / valid item, from the interactions
body "$T/ia.mp" | sed -n 's/.*"user":\([0-9]*\),"item":\([0-9]*\).*"part":"test".*/\1 \2/p' > "$T/test-items"
body "$T/ia.mp" | sed -n 's/.*"user":\([0-9]*\),"item":\([0-9]*\).*"part":"valid".*/\1 \2/p' > "$T/valid-items"
title_of() { body "$T/items.mp" | sed -n "s/^{\"item\":$1,\"title\":\"\\([^\"]*\\)\".*/\\1/p"; }
# craft STREAM OUT LINE SED-EXPR: apply SED-EXPR to data record LINE (1-based) only
craft() { j "$1" | sed "$(( $3 + 1 ))s$4" | "$B/json2mp" -o "$2"; }

rec=$(body "$T/tr.mp" | sed -n 1p); u=$(sed 's/.*"user":\([0-9]*\),.*/\1/' <<<"$rec"); ti=$(awk -v u="$u" '$1==u{print $2}' "$T/test-items")
craft "$T/tr.mp" "$T/leak1.mp" 1 "/\"history\":\[[0-9]*/\"history\":[$ti/"
expect_fail "leak: a test item in a training history" 1 "^promptgen: error: .*leak1.mp:1: field 'history': test item $ti of user $u in the history$" \
    "$B/promptgen" --check "${CHK[@]}" "$T/leak1.mp"
vi=$(awk -v u="$u" '$1==u{print $2}' "$T/valid-items")
craft "$T/tr.mp" "$T/leak2.mp" 1 "/\"history\":\[[0-9]*/\"history\":[$vi/"
expect_fail "leak: a valid item in a training history" 1 "leak2.mp:1: field 'history': valid item $vi of user $u in the history$" \
    "$B/promptgen" --check "${CHK[@]}" "$T/leak2.mp"
tgt=$(sed 's/.*"items":\[\([0-9]*\)\].*/\1/' <<<"$rec")
craft "$T/tr.mp" "$T/leak3.mp" 1 "/\"history\":\[/\"history\":[$tgt,/"
expect_fail "leak: a training target in its own history" 1 "leak3.mp:1: field 'items': target item $tgt is in its own history$" \
    "$B/promptgen" --check "${CHK[@]}" "$T/leak3.mp"
craft "$T/tr.mp" "$T/leak4.mp" 1 "/\"items\":\[[0-9]*\]/\"items\":[$ti]/"
expect_fail "leak: a test item as a training target" 1 "leak4.mp:1: field 'items': test item $ti of user $u in a training prompt$" \
    "$B/promptgen" --check "${CHK[@]}" "$T/leak4.mp"
tt=$(title_of "$ti" | sed 's/[&/\]/\\&/g')
craft "$T/tr.mp" "$T/leak5.mp" 1 "/User's historical movie ratings: /User's historical movie ratings: \\\\\"$tt\\\\\": 5; /"
expect_fail "leak: a test item's title in a training prompt (ids clean)" 1 "leak5.mp:1: field 'prompt': the title of test item $ti of user $u .* is in the prompt$" \
    "$B/promptgen" --check "${CHK[@]}" "$T/leak5.mp"

qrec=$(body "$T/q.mp" | sed -n 1p); qu=$(sed 's/.*"user":\([0-9]*\),.*/\1/' <<<"$qrec"); qt=$(awk -v u="$qu" '$1==u{print $2}' "$T/test-items")
craft "$T/q.mp" "$T/leak6.mp" 1 "/\"history\":\[[0-9]*/\"history\":[$qt/"
expect_fail "leak: a test item in a query history" 1 "leak6.mp:1: field 'history': test item $qt of user $qu in the history$" \
    "$B/promptgen" --check "${CHK[@]}" "$T/leak6.mp"
qtt=$(title_of "$qt" | sed 's/[&/\]/\\&/g')
# the title in every pointwise query of the user (so the prefix stays shared), ids untouched
j "$T/q.mp" | sed "2,11s/User's historical movie ratings: /User's historical movie ratings: \\\\\"$qtt\\\\\": 5; /" | "$B/json2mp" -o "$T/leak7.mp"
expect_fail "leak: a test item's title in a query's history section" 1 "leak7.mp:1: field 'prompt': the title of test item $qt of user $qu .* is in the history$" \
    "$B/promptgen" --check "${CHK[@]}" "$T/leak7.mp"
qvrec=$(body "$T/qv.mp" | sed -n 1p); qvu=$(sed 's/.*"user":\([0-9]*\),.*/\1/' <<<"$qvrec"); qv=$(awk -v u="$qvu" '$1==u{print $2}' "$T/valid-items")
craft "$T/qv.mp" "$T/leak8.mp" 1 "/\"history\":\[[0-9]*/\"history\":[$qv/"
expect_fail "leak: a valid item in a valid query's history" 1 "leak8.mp:1: field 'history': valid item $qv of user $qvu in the history$" \
    "$B/promptgen" --check "${CHK[@]}" "$T/leak8.mp"
craft "$T/q.mp" "$T/leak9.mp" 1 "/\"items\":\[[0-9]*\]/\"items\":[$qt]/"
expect_fail "check: a candidate that is not the user's" 1 "leak9.mp:1: field 'items': item $qt is not user $qu's candidate at rank 0" \
    "$B/promptgen" --check "${CHK[@]}" --candidates "$T/cand.mp" "$T/leak9.mp"
craft "$T/q.mp" "$T/leak10.mp" 2 "/Below is an/Above is an/"
expect_fail "check: one query's prefix differs from the user's others" 1 "leak10.mp:2: field 'prefix_len': the prompt's first [0-9]+ bytes differ" \
    "$B/promptgen" --check "${CHK[@]}" "$T/leak10.mp"
j "$T/q.mp" | sed '2d' | "$B/json2mp" -o "$T/leak11.mp"
expect_fail "check: a candidate without its pointwise query" 1 "user $qu: the pointwise queries cover 9 of the 10 candidates" \
    "$B/promptgen" --check "${CHK[@]}" --candidates "$T/cand.mp" "$T/leak11.mp"
expect_fail "check: candidates for another part" 1 "cand-valid.mp:0: field 'params.for'" \
    "$B/promptgen" --check "${CHK[@]}" --candidates "$T/cand-valid.mp" "$T/q.mp"

# ---------- rated history in pairwise / listwise (data/prompts/rated.tmpl) ----------
RT=(--templates "$ITREK_ROOT/data/prompts/rated.tmpl")
body "$T/items.mp" > "$T/items.jsonl"
rated_history() { # RECORDS "PARTS" N -> records (JSON lines) whose history is not the user's last N
                  # interactions in PARTS, oldest first, shown as "User's historical movie ratings: ..."
    awk -v parts=" $2 " -v N="$3" '
    function num(name) { if (!match($0, "\"" name "\":[-0-9.]+")) return ""; return substr($0, RSTART + length(name) + 3, RLENGTH - length(name) - 3) }
    FNR == 1 { f++ }
    f == 1 { match($0, /"part":"[a-z]+"/); p = substr($0, RSTART + 8, RLENGTH - 9)
             if (!index(parts, " " p " ")) next
             u = num("user"); i = num("item"); n[u]++; it[u, n[u]] = i; ts[u "," i] = num("ts") + 0; rt[u "," i] = num("rating") + 0; next }
    f == 2 { i = num("item"); match($0, /"title":"([^"\\]|\\.)*"/); title[i] = substr($0, RSTART + 9, RLENGTH - 10); next }
    f == 3 { u = num("user")
             match($0, /"history":\[[0-9,]*\]/); nh = split(substr($0, RSTART + 11, RLENGTH - 12), hi, ",")
             bad = nh != (n[u] < N ? n[u] : N)
             delete shown
             text = "User\047s historical movie ratings: "
             for (k = 1; k <= nh; k++) {
                 shown[hi[k]] = 1
                 if (k > 1 && ts[u "," hi[k]] < ts[u "," hi[k - 1]]) bad = 1
                 text = text (k > 1 ? "; " : "") "\\\"" title[hi[k]] "\\\": " rt[u "," hi[k]]
             }
             if (nh == 0) text = text "None"
             for (k = 1; k <= n[u]; k++) if (nh > 0 && !(it[u, k] in shown) && ts[u "," it[u, k]] > ts[u "," hi[1]]) bad = 1
             if (!index($0, text ".\\n\\n")) bad = 1
             nbad += bad }
    END { print nbad + 0 }' "$T/ia.jsonl" "$T/items.jsonl" "$1"
}
expect_ok "rated.tmpl: test queries" "$B/promptgen" --quiet --mode eval "${IN[@]}" "${RT[@]}" --history 10 --candidates "$T/cand.mp" -o "$T/qr.mp"
body "$T/qr.mp" > "$T/qr.jsonl"
for t in pairwise listwise; do
    grep "\"task\":\"$t\"" "$T/qr.jsonl" > "$T/qr-$t.jsonl"
    c=$(wc -l < "$T/qr-$t.jsonl"); b=$(rated_history "$T/qr-$t.jsonl" "train valid" 10)
    [ "$c" -gt 0 ] && [ "$b" = 0 ] && pass "rated.tmpl: $t test queries show the last 10 train/valid ratings in time order ($c)" \
        || fail "rated.tmpl: $t test queries: rated history" "$b of $c records wrong"
done
c=$(rated_history "$T/qr.jsonl" "train valid" 10)
[ "$c" = 0 ] && pass "rated.tmpl: pointwise, pairwise and listwise share that history" || fail "rated.tmpl: the tasks share the history" "$c"
body "$T/qr.mp" | grep -q "User's liked movies" && fail "rated.tmpl: no liked/disliked lists" || pass "rated.tmpl: no liked/disliked lists"
"$B/promptgen" --quiet --mode eval "${IN[@]}" --history 10 --candidates "$T/cand.mp" -o "$T/q10.mp"
cmp -s <(body "$T/qr.mp" | grep '"task":"pointwise"') <(body "$T/q10.mp" | grep '"task":"pointwise"') \
    && pass "rated.tmpl: pointwise queries as with recranker.tmpl" || fail "rated.tmpl: pointwise queries as with recranker.tmpl"
expect_ok "rated.tmpl: test queries pass --check" "$B/promptgen" --check "${CHK[@]}" "${RT[@]}" --candidates "$T/cand.mp" "$T/qr.mp"
expect_ok "rated.tmpl: valid queries" "$B/promptgen" --quiet --mode eval "${IN[@]}" "${RT[@]}" --history 10 --candidates "$T/cand-valid.mp" -o "$T/qrv.mp"
c=$(rated_history <(body "$T/qrv.mp") "train" 10)
[ "$c" = 0 ] && pass "rated.tmpl: valid queries show the last 10 train ratings only" || fail "rated.tmpl: valid queries' history" "$c"
expect_ok "rated.tmpl: valid queries pass --check" "$B/promptgen" --check "${CHK[@]}" "${RT[@]}" --candidates "$T/cand-valid.mp" "$T/qrv.mp"
# rated-last.tmpl: the listwise candidates in the instruction, the history last before the question
RL=(--templates "$ITREK_ROOT/data/prompts/rated-last.tmpl")
expect_ok "rated-last.tmpl: valid queries" "$B/promptgen" --quiet --mode eval "${IN[@]}" "${RL[@]}" --history 10 --candidates "$T/cand-valid.mp" -o "$T/qlv.mp"
body "$T/qlv.mp" | grep '"task":"listwise"' > "$T/qlv-list.jsonl"
c=$(awk '{ p = index($0, "Candidate movies: "); h = index($0, "User'"'"'s historical movie ratings: "); q = index($0, "\\n\\nQuestion: ")
           if (!(p > 0 && p < h && h < q)) bad++ } END { print bad + 0 }' "$T/qlv-list.jsonl")
[ -s "$T/qlv-list.jsonl" ] && [ "$c" = 0 ] && pass "rated-last.tmpl: listwise shows candidates, then the history, then the question" || fail "rated-last.tmpl: listwise layout" "$c"
cmp -s <(body "$T/qlv.mp" | grep -v '"task":"listwise"') <(body "$T/qrv.mp" | grep -v '"task":"listwise"') &&
    pass "rated-last.tmpl: pointwise and pairwise as rated.tmpl's" || fail "rated-last.tmpl: pointwise and pairwise as rated.tmpl's"
# valid films among the candidates (in the instruction, before the history) are no leak
n=$(awk 'NR==FNR { v[$1] = $2; next } { u = $0; sub(/.*"user":/, "", u); sub(/,.*/, "", u); it = $0; sub(/.*"items":\[/, "", it); sub(/\].*/, "", it)
         if (("," it ",") ~ ("," v[u] ",")) n++ } END { print n + 0 }' "$T/valid-items" "$T/qlv-list.jsonl")
[ "$n" -gt 0 ] && pass "rated-last.tmpl: $n listwise queries list their valid film" || fail "rated-last.tmpl: some listwise query lists its valid film"
expect_ok "rated-last.tmpl: valid queries pass --check" "$B/promptgen" --check "${CHK[@]}" "${RL[@]}" --candidates "$T/cand-valid.mp" "$T/qlv.mp"
# ... but the same title inside the history is one
lrec=$(grep -n '"task":"listwise"' <(body "$T/qlv.mp") | head -1 | cut -d: -f1)
lu=$(sed -n "${lrec}p" <(body "$T/qlv.mp") | sed 's/.*"user":\([0-9]*\),.*/\1/'); lv=$(awk -v u="$lu" '$1==u{print $2}' "$T/valid-items")
lvt=$(title_of "$lv" | sed 's/[&/\]/\\&/g')
craft "$T/qlv.mp" "$T/leak-rl.mp" "$lrec" "/User's historical movie ratings: /User's historical movie ratings: \\\\\"$lvt\\\\\": 5; /"
expect_fail "rated-last.tmpl: a valid film's title in a listwise query's history" 1 "leak-rl.mp:$lrec: field 'prompt': the title of valid item $lv of user $lu .* is in the history$" \
    "$B/promptgen" --check "${CHK[@]}" "${RL[@]}" "$T/leak-rl.mp"
# rated-next.tmpl: the listwise question names no candidate; the record still carries them
RN=(--templates "$ITREK_ROOT/data/prompts/rated-next.tmpl")
# (without hints: the listwise hint lists the base's top five)
expect_ok "rated-next.tmpl: valid queries" "$B/promptgen" --quiet --mode eval "${IN[@]}" "${RN[@]}" --history 10 --no-hint --candidates "$T/cand-valid.mp" -o "$T/qnv.mp"
"$B/promptgen" --quiet --mode eval "${IN[@]}" "${RT[@]}" --history 10 --no-hint --candidates "$T/cand-valid.mp" -o "$T/qrv-nohint.mp"
body "$T/qnv.mp" | grep '"task":"listwise"' > "$T/qnv-list.jsonl"
c=$(awk '{ p = $0; sub(/.*"prompt":"/, "", p); sub(/","prefix_len".*/, "", p)
           t = $0; sub(/.*"titles":\["/, "", t); sub(/"\].*/, "", t); n = split(t, a, "\",\"")
           if (n != 10 || index(p, "\\n\\nQuestion: Which movies will the user watch next?\\n\\n### Response:\\n") == 0) bad++
           for (k = 1; k <= n; k++) if (index(p, a[k]) > 0) bad++ } END { print bad + 0 }' "$T/qnv-list.jsonl")
[ -s "$T/qnv-list.jsonl" ] && [ "$c" = 0 ] && pass "rated-next.tmpl: listwise asks for the next films, lists no candidate, carries 10 titles" || fail "rated-next.tmpl: listwise layout" "$c"
cmp -s <(body "$T/qnv.mp" | grep -v '"task":"listwise"') <(body "$T/qrv-nohint.mp" | grep -v '"task":"listwise"') &&
    pass "rated-next.tmpl: pointwise and pairwise as rated.tmpl's" || fail "rated-next.tmpl: pointwise and pairwise as rated.tmpl's"
expect_ok "rated-next.tmpl: valid queries pass --check" "$B/promptgen" --check "${CHK[@]}" "${RN[@]}" --candidates "$T/cand-valid.mp" "$T/qnv.mp"
expect_ok "rated-next.tmpl: train --positives next" "$B/promptgen" --quiet --mode train "${IN[@]}" "${RN[@]}" --draws 100 --positives next \
    --hard-negatives 20 -o "$T/trn.mp"
expect_ok "rated-next.tmpl: train --positives next passes --check" "$B/promptgen" --check "${CHK[@]}" "${RN[@]}" "$T/trn.mp"
expect_ok "rated.tmpl: train --positives next" "$B/promptgen" --quiet --mode train "${IN[@]}" "${RT[@]}" --draws 100 --positives next \
    --hard-negatives 20 -o "$T/trr.mp"
c=$(after_history "$T/trr.mp")
[ "$c" = 0 ] && pass "rated.tmpl: train --positives next: answers never precede the rated history" || fail "rated.tmpl: train next: answers precede the history" "$c"
expect_ok "rated.tmpl: train --positives next passes --check" "$B/promptgen" --check "${CHK[@]}" "${RT[@]}" "$T/trr.mp"
expect_ok "rated.tmpl: train (random positives)" "$B/promptgen" --quiet --mode train "${IN[@]}" "${RT[@]}" --draws 100 -o "$T/trr2.mp"
expect_ok "rated.tmpl: train: targets left out of their rated history (--check)" "$B/promptgen" --check "${CHK[@]}" "${RT[@]}" "$T/trr2.mp"
# per task: pairwise rated, listwise liked/disliked
sed 's/^pairwise.history = .*/pairwise.history = User'"'"'s historical movie ratings: {history}.\\n\\n/' \
    "$ITREK_ROOT/data/prompts/recranker.tmpl" > "$T/pair-rated.tmpl"
"$B/promptgen" --quiet --mode eval "${IN[@]}" --history 10 --templates "$T/pair-rated.tmpl" --candidates "$T/cand.mp" -o "$T/qpr.mp"
cmp -s <(body "$T/qpr.mp" | grep -v '"task":"pairwise"') <(body "$T/q10.mp" | grep -v '"task":"pairwise"') \
    && [ "$(body "$T/qpr.mp" | grep '"task":"pairwise"' | grep -c "User's liked movies")" = 0 ] \
    && pass "templates: {history} in pairwise.history only: listwise keeps liked/disliked" || fail "templates: per-task rated history"
sed 's/^listwise.history = .*/listwise.history = Rated: {history}. Liked: {liked}.\\n\\n/' "$ITREK_ROOT/data/prompts/recranker.tmpl" > "$T/mix.tmpl"
rm -f "$T/x.mp"
expect_fail "templates: {history} with {liked} in one history" 1 \
    "^promptgen: error: .*mix.tmpl:[0-9]+: key 'listwise.history': \{history\} \(the rated history\) cannot be combined with \{liked\} or \{disliked\}$" \
    "$B/promptgen" --mode train "${IN[@]}" --draws 5 --templates "$T/mix.tmpl" -o "$T/x.mp"
[ "$(wc -l < "$T/err")" = 1 ] && [ ! -e "$T/x.mp" ] && pass "templates: mixed history: one line, no output" || fail "templates: mixed history: one line, no output" "$(cat "$T/err")"

# ---------- the hint-leak diagnostic (--hints recranker-leaky, issue 30) ----------
# RecRanker's hints from a rating matrix of every part's ratings (0 when unrated): the held-out
# item shows its rating. Labelled in the header, rejected by --check without --diagnostic.
expect_ok "leaky: eval queries" "$B/promptgen" --quiet --mode eval "${IN[@]}" --hints recranker-leaky --candidates "$T/cand.mp" -o "$T/ql.mp"
[[ $(hdr "$T/ql.mp") == *'"leaky":true'* && $(hdr "$T/ql.mp") == *"rating matrix"* ]] && pass "leaky: header says leaky" || fail "leaky: header says leaky" "$(hdr "$T/ql.mp")"
[[ $(hdr "$T/q.mp") != *'leaky'* ]] && pass "leaky: honest queries carry no leaky key" || fail "leaky: honest header"
# every pointwise hint is the user's rating of the candidate in any part, else 0.0
body "$T/ia.mp" | sed -n 's/.*"user":\([0-9]*\),"item":\([0-9]*\),"rating":\([0-9.]*\).*"part":"\(train\|valid\|test\)".*/\1 \2 \3/p' > "$T/ratings"
body "$T/ql.mp" | grep '"task":"pointwise"' | sed -n 's/.*"user":\([0-9]*\),.*answer is \([0-9.]*\)\..*"items":\[\([0-9]*\)\].*/\1 \3 \2/p' > "$T/hints"
bad=$(awk 'NR==FNR{r[$1" "$2]=$3; next} {want=($1" "$2 in r) ? sprintf("%.1f", r[$1" "$2]) : "0.0"; if ($3 != want) n++} END{print n+0}' "$T/ratings" "$T/hints")
[ "$(wc -l < "$T/hints")" = 250 ] && [ "$bad" = 0 ] && pass "leaky: pointwise hints are the rating matrix (250 checked)" || fail "leaky: pointwise hints" "$bad of $(wc -l < "$T/hints")"
nz=$(awk '$3 != "0.0"' "$T/hints" | wc -l)
[ "$nz" -ge 1 ] && pass "leaky: some held-out candidates show their rating ($nz)" || fail "leaky: no candidate shows a rating"
# listwise: the first hinted title is a rated candidate whenever the user has one
lw=$(body "$T/ql.mp" | grep '"task":"listwise"' | wc -l)
[ "$lw" = 25 ] && pass "leaky: listwise queries" || fail "leaky: listwise queries" "$lw"
# a user whose candidates hold a rated item: its listwise hint names that item first
hu=$(awk '$3 != "0.0" {print $1, $2; exit}' "$T/hints")
if [ -n "$hu" ]; then
    set -- $hu; ht=$(title_of "$2")
    body "$T/ql.mp" | grep '"task":"listwise"' | grep "\"user\":$1," | grep -qF "Another recommender model suggests \\\"$ht\\\"" \
        && pass "leaky: listwise hint names the rated candidate first" || fail "leaky: listwise hint order" "user $1 item $2"
else fail "leaky: no rated candidate to check the listwise hint with"; fi
cmp -s <(body "$T/ql.mp" | grep -v '"task":"pointwise"' | grep -v '"task":"listwise"') <(body "$T/q.mp" | grep -v '"task":"pointwise"' | grep -v '"task":"listwise"') \
    && pass "leaky: pairwise queries keep the base model's hint (as RecRanker's)" || fail "leaky: pairwise queries differ"
expect_fail "leaky: --check rejects the stream" 1 "^promptgen: error: .*ql.mp:0: field 'params.leaky': made with promptgen --hints recranker-leaky.*--diagnostic" \
    "$B/promptgen" --check "${CHK[@]}" --candidates "$T/cand.mp" "$T/ql.mp"
expect_ok "leaky: --check --diagnostic accepts it" "$B/promptgen" --check --diagnostic "${CHK[@]}" --candidates "$T/cand.mp" "$T/ql.mp"
grep -q "LEAKY hints" "$T/err" && pass "leaky: --check --diagnostic says LEAKY" || fail "leaky: --diagnostic message" "$(cat "$T/err")"
# --diagnostic does not switch the other checks off
j "$T/ql.mp" | sed "2s/\"history\":\[[0-9]*/\"history\":[$qt/" | "$B/json2mp" -o "$T/leak12.mp"
expect_fail "leaky: --diagnostic still finds a test item in a history" 1 "leak12.mp:1: field 'history': test item $qt" \
    "$B/promptgen" --check --diagnostic "${CHK[@]}" "$T/leak12.mp"
expect_ok "leaky: train instructions" "$B/promptgen" --quiet --mode train "${IN[@]}" --hints recranker-leaky --draws 100 -o "$T/trl.mp"
# training: the pointwise hint is the target's own rating, i.e. the answer (what the model learns to copy)
c=$(body "$T/trl.mp" | grep '"task":"pointwise"' | sed -n 's/.*answer is \([0-9]\)\.0\..*"response":"\([0-9]\)".*/\1 \2/p' | awk '$1 == $2' | wc -l)
t=$(body "$T/trl.mp" | grep -c '"task":"pointwise"')
[ "$c" = "$t" ] && [ "$t" -gt 50 ] && pass "leaky: train: the pointwise hint equals the answer ($t)" || fail "leaky: train pointwise hint" "$c of $t"
expect_fail "leaky: train --check rejects" 1 "field 'params.leaky'" "$B/promptgen" --check "${CHK[@]}" "$T/trl.mp"
expect_ok "leaky: train --check --diagnostic" "$B/promptgen" --check --diagnostic "${CHK[@]}" "$T/trl.mp"
craft "$T/q.mp" "$T/leak13.mp" 0 '/"hint":true/"hint":true,"leaky":1/'
expect_fail "leaky: a non-boolean params.leaky" 1 "leak13.mp:0: field 'params.leaky': expected a boolean" \
    "$B/promptgen" --check "${CHK[@]}" "$T/leak13.mp"
expect_fail "usage: --hints unknown" 2 "--hints: expected base or recranker-leaky, got 'oracle'" \
    "$B/promptgen" --mode eval "${IN[@]}" --hints oracle --candidates "$T/cand.mp"
expect_fail "usage: --hints recranker-leaky with --no-hint" 2 "drop --no-hint" \
    "$B/promptgen" --mode eval "${IN[@]}" --hints recranker-leaky --no-hint --candidates "$T/cand.mp"
expect_fail "usage: --check with --hints" 2 "--check takes no --hints" \
    "$B/promptgen" --check --hints recranker-leaky "${CHK[@]}" "$T/ql.mp"
expect_fail "usage: --hints with --mode corpus" 2 "--hints goes with --mode train or eval" \
    "$B/promptgen" --mode corpus --hints recranker-leaky --interactions "$T/ia.mp" --catalog "$T/items.mp"
expect_fail "usage: --diagnostic without --check" 2 "--diagnostic goes with --check" \
    "$B/promptgen" --mode eval "${IN[@]}" --diagnostic --candidates "$T/cand.mp"

# ---------- usage ----------
expect_ok "--help" "$B/promptgen" --help
expect_fail "usage: --mode is required" 2 "mode" "$B/promptgen" "${IN[@]}"
expect_fail "usage: unknown task" 2 "unknown task 'foo'" "$B/promptgen" --mode train "${IN[@]}" --tasks pairwise,foo
expect_fail "usage: bad sampling" 2 "sampling" "$B/promptgen" --mode train "${IN[@]}" --sampling random
expect_fail "usage: eval needs candidates" 2 "candidates" "$B/promptgen" --mode eval "${IN[@]}"
expect_fail "usage: --check needs a stream" 2 "STREAM" "$B/promptgen" --check --interactions "$T/ia.mp"
expect_fail "check: not a prompt stream" 1 "neither itrek.instructions nor itrek.queries" "$B/promptgen" --check --interactions "$T/ia.mp" "$T/cand.mp"
