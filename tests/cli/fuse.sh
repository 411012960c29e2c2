# fuse.sh - fuse on a synthetic queries + answers pair (3 users; text answers, scored answers,
# unparsed answers), golden rankings derived by hand below, the parse counts, metrics end to
# end, and every bad input with its one-line message. Sourced helpers: tests/cli/lib.sh.
source "$ITREK_ROOT/tests/cli/lib.sh"
B=$BINDIR
mp() { "$B/json2mp" -o "$2" "$1"; }

# ---- queries: header, then per user 1 pointwise query per candidate, 2 orders per pair, 1 list.
QH='{"schema":"itrek.queries","version":1,"params":{"scheme":"loo","part":"test","scale":[1,5],"hint":true},"inputs":{"candidates":"cand.mp"},"candidates":4}'
q() { # id task user items ranks [extra json]
    printf '{"id":%s,"task":"%s","user":%s,"prompt":"p","prefix_len":0,"items":[%s],"ranks":[%s]%s}\n' "$1" "$2" "$3" "$4" "$5" "${6:-}"
}
queries_body() {
    # user 1: base order 11 Heat (1995), 12 White Heat (1949), 13 Toy Story (1995), 14 Fargo (1996)
    q 1 pointwise 1 11 0; q 2 pointwise 1 12 1; q 3 pointwise 1 13 2; q 4 pointwise 1 14 3
    q 5 pairwise 1 11,14 0,3 ',"pair":0,"swapped":false'; q 6 pairwise 1 14,11 3,0 ',"pair":0,"swapped":true'
    q 7 pairwise 1 13,12 2,1 ',"pair":1,"swapped":true';  q 8 pairwise 1 12,13 1,2 ',"pair":1,"swapped":false'
    q 9 listwise 1 11,12,13,14 0,1,2,3 ',"titles":["Heat (1995)","White Heat (1949)","Toy Story (1995)","Fargo (1996)"]'
    # user 2: 21 Alien (1979), 22 Aliens (1986), 23 Babe (1995), 24 Casablanca (1942)
    q 10 pointwise 2 21 0; q 11 pointwise 2 22 1; q 12 pointwise 2 23 2; q 13 pointwise 2 24 3
    q 14 pairwise 2 21,22 0,1 ',"pair":0,"swapped":false'; q 15 pairwise 2 22,21 1,0 ',"pair":0,"swapped":true'
    q 16 pairwise 2 23,24 2,3 ',"pair":1,"swapped":false'; q 17 pairwise 2 24,23 3,2 ',"pair":1,"swapped":true'
    q 18 listwise 2 21,22,23,24 0,1,2,3 ',"titles":["Alien (1979)","Aliens (1986)","Babe (1995)","Casablanca (1942)"]'
    # user 3: 31 Up (2009), 32 Jaws (1975)
    q 19 pointwise 3 31 0; q 20 pointwise 3 32 1
    q 21 pairwise 3 32,31 1,0 ',"pair":0,"swapped":false'; q 22 pairwise 3 31,32 0,1 ',"pair":0,"swapped":true'
    q 23 listwise 3 31,32 0,1 ',"titles":["Up (2009)","Jaws (1975)"]'
}
{ echo "$QH"; queries_body; } > "$T/q.json"
mp "$T/q.json" "$T/q.mp"

# ---- answers
AH='{"schema":"itrek.answers","version":1,"params":{"decode":"generate"},"inputs":{"queries":"q.mp"},"queries":{"scheme":"loo","part":"test","count":23}}'
a() { printf '{"id":%s,"task":"%s","user":%s,"text":"%s"%s}\n' "$1" "$2" "$3" "$4" "${5:-}"; }
L5='-2.302585092994046,-1.6094379124341003,-0.916290731874155,-1.6094379124341003,-2.302585092994046'
answers_body() {
    # user 1 (text). pointwise 3, "4 out of 5" -> 5 (last integer), 4, no integer -> fallback 3:
    #   U_point = score + 0.05 (4 - m) = 3.2, 5.15, 4.1, 3.05
    # pair 0 (11,14): Yes / No -> 11 wins 0.5; pair 1 (13,12) Yes, (12,13) Yes -> 0.25 each
    # list: White Heat, Toy Story, Toy Story again, Casablanca (not a candidate), Heat:
    #   m1 0.125, m2 0.1, m0 0.075 (3 of 4 named: partial)
    # hybrid = sums / 3: m0 3.775, m1 5.525, m2 4.45, m3 3.05 -> 12 13 11 14
    a 1 pointwise 1 "3"; a 2 pointwise 1 "I'd give it 4 out of 5"; a 3 pointwise 1 "4"; a 4 pointwise 1 "no idea"
    a 5 pairwise 1 "Yes."; a 6 pairwise 1 "No."; a 7 pairwise 1 "Yes"; a 8 pairwise 1 "yes, I think so"
    a 9 listwise 1 '1. White Heat (1949)\n2. Toy Story (1995)\n3. Toy Story (1995)\n4. Casablanca (1942)\n5. Heat (1995)'
    # user 2 (scores). pointwise expected ratings: {4,5} equally -> 4.5; .1 .2 .4 .2 .1 -> 3; 1; 5
    #   U_point = 4.7, 3.15, 1.1, 5.05
    # pair 0: (21,22) Yes, (22,21) No -> 21 wins 0.5; pair 1: (23,24) equal logp -> No,
    #   (24,23) "Maybe." unparsed -> 0.25 each, one pair fallback
    # list: Aliens, Alien -> m1 0.125, m0 0.1 (partial)
    # hybrid sums: m0 4.7+0.5+0.1 = 5.3, m1 3.275, m2 1.35, m3 5.05+0.25 = 5.3: a tie -> base order 21 24 22 23
    a 10 pointwise 2 "4" ',"scores":[-1000,-1000,-1000,-0.6931471805599453,-0.6931471805599453]'
    a 11 pointwise 2 "3" ",\"scores\":[$L5]"
    a 12 pointwise 2 "1" ',"scores":[0,-1000,-1000,-1000,-1000]'
    a 13 pointwise 2 "5" ',"scores":[-1000,-1000,-1000,-1000,0]'
    a 14 pairwise 2 "Yes" ',"scores":[-0.1,-2.3]'; a 15 pairwise 2 "No" ',"scores":[-2,-0.2]'
    a 16 pairwise 2 "No" ',"scores":[-1,-1]'; a 17 pairwise 2 "Maybe."
    a 18 listwise 2 'Aliens (1986), Alien (1979)'
    # user 3: pointwise 2, "Rating: 7" out of scale -> fallback 3: U_point 2.1, 3.05;
    # pair (32,31) yes, (31,32) No -> 32 wins; list names nothing (unparsed): hybrid 32 31
    a 19 pointwise 3 "2"; a 20 pointwise 3 "Rating: 7"
    a 21 pairwise 3 "yes"; a 22 pairwise 3 "No"
    a 23 listwise 3 "I recommend nothing."
}
{ echo "$AH"; answers_body; } > "$T/a.json"
mp "$T/a.json" "$T/a.mp"

# ---- the golden rankings
cat > "$T/want" <<'EOF'
1 base 11,12,13,14
1 pointwise 12,13,11,14
1 pairwise 11,12,13,14
1 listwise 12,13,11,14
1 hybrid 12,13,11,14
2 base 21,22,23,24
2 pointwise 24,21,22,23
2 pairwise 21,23,24,22
2 listwise 22,21,23,24
2 hybrid 21,24,22,23
3 base 31,32
3 pointwise 32,31
3 pairwise 32,31
3 listwise 31,32
3 hybrid 32,31
EOF
rankings() { "$B/mp2json" "$1" | tail -n +2 | sed 's/.*"user":\([0-9]*\),"method":"\([a-z]*\)","items":\[\([0-9,]*\)\].*/\1 \2 \3/'; }
expect_ok "fuse runs" "$B/fuse" --queries "$T/q.mp" "$T/a.mp" -o "$T/r.mp"
rankings "$T/r.mp" > "$T/got"
same "golden rankings (users by id, methods in fixed order)" "$T/got" "$T/want"
h=$("$B/mp2json" --head 0 "$T/r.mp")
[[ $h == *'"schema":"itrek.rankings","version":1'* ]] && pass "header schema" || fail "header schema" "$h"
[[ $h == *'"params":{"scheme":"loo","part":"test","c1":0.050000000000000003,"c2":0.5,"c3":0.025000000000000001,"lambda":[0.33333333333333331,0.33333333333333331,0.33333333333333331],"point_score":"expected"}'* ]] \
    && pass "header params" || fail "header params" "$h"
want_parse='"parse":{"pointwise":{"answers":10,"unparsed":2,"fallbacks":2,"missing":0},"pairwise":{"answers":10,"unparsed":1,"fallbacks":1,"missing":0},"listwise":{"answers":3,"unparsed":1,"fallbacks":1,"missing":0,"partial":2}}'
[[ $h == *"$want_parse"* ]] && pass "header parse counts" || fail "header parse counts" "$h"
[[ $h == *'"inputs":{"queries":"'*'/q.mp","answers":"'*'/a.mp"},"users":3'* ]] && pass "header inputs" || fail "header inputs" "$h"
grep -q '^fuse: pointwise: 10 answers, 2 unparsed (0 missing), 2 fallbacks$' "$T/err" && \
grep -q '^fuse: pairwise: 10 answers, 1 unparsed (0 missing), 1 fallbacks$' "$T/err" && \
grep -q '^fuse: listwise: 3 answers, 1 unparsed (0 missing), 1 fallbacks, 2 partial$' "$T/err" \
    && pass "parse summary on stderr, one line per task" || fail "parse summary on stderr" "$(cat "$T/err")"
"$B/mp2json" "$T/r.mp" | grep -q '"user":1,"method":"hybrid","items":\[12,13,11,14\],"scores":\[1.84166666666666' \
    && pass "hybrid records carry their utilities" || fail "hybrid records carry their utilities"
"$B/fuse" --quiet --queries "$T/q.mp" < "$T/a.mp" > "$T/r2.mp" 2>/dev/null
"$B/mp2json" "$T/r2.mp" | sed 's|"answers":"<stdin>"|"answers":"A"|' > "$T/r2.json"
"$B/mp2json" "$T/r.mp" | sed 's|"answers":"[^"]*/a.mp"|"answers":"A"|' > "$T/r1.json"
same "answers on stdin, output on stdout (same records; inputs.answers <stdin>)" "$T/r1.json" "$T/r2.json"
"$B/fuse" --quiet --queries "$T/q.mp" "$T/a.mp" -o "$T/r3.mp"
same "deterministic" "$T/r.mp" "$T/r3.mp"
"$B/fuse" --quiet --queries "$T/q.mp" "$T/a.mp" -o "$T/r.zst"
"$B/mp2json" "$T/r.zst" | cmp -s - <("$B/mp2json" "$T/r.mp") && pass "zstd output" || fail "zstd output"

# options: --point-score argmax (user 2: {4,5} tie -> 4, .1 .2 .4 .2 .1 -> 3; U_point 4.2 3.15 1.1 5.05
# -> pointwise 24 21 22 23, hybrid sums m0 4.8, m3 5.3 -> 24 21 22 23)
"$B/fuse" --quiet --point-score argmax --queries "$T/q.mp" "$T/a.mp" -o "$T/am.mp"
rankings "$T/am.mp" | grep '^2 hybrid' | grep -q '^2 hybrid 24,21,22,23$' && pass "--point-score argmax" || fail "--point-score argmax" "$(rankings "$T/am.mp" | grep '^2 ')"
"$B/mp2json" --head 0 "$T/am.mp" | grep -q '"point_score":"argmax"' && pass "argmax in header" || fail "argmax in header"
# --lambda 0,0,1: hybrid = listwise; --c2 0: pairwise = base order
"$B/fuse" --quiet --lambda 0,0,1 --c2 0 --queries "$T/q.mp" "$T/a.mp" -o "$T/l.mp"
rankings "$T/l.mp" > "$T/l.txt"
cmp -s <(grep hybrid "$T/l.txt" | sed 's/hybrid/X/') <(grep listwise "$T/l.txt" | sed 's/listwise/X/') && pass "--lambda 0,0,1: hybrid = listwise" || fail "--lambda 0,0,1"
cmp -s <(grep pairwise "$T/l.txt" | sed 's/pairwise/X/') <(grep base "$T/l.txt" | sed 's/base/X/') && pass "--c2 0: pairwise = base" || fail "--c2 0"
# --label / --methods: the same rankings under other names, only the methods asked for
"$B/fuse" --quiet --label zero-shot --queries "$T/q.mp" "$T/a.mp" -o "$T/lab.mp"
"$B/mp2json" "$T/lab.mp" | tail -n +2 | sed 's/.*"user":\([0-9]*\),"method":"\([a-z -]*\)","items":\[\([0-9,]*\)\].*/\1 \2 \3/' > "$T/lab.txt"
cmp -s <(sed 's/ zero-shot / /' "$T/lab.txt") "$T/want" && pass "--label: same rankings, names prefixed" || fail "--label" "$(head -3 "$T/lab.txt")"
grep -q '^1 base ' "$T/lab.txt" && ! grep -q 'zero-shot base' "$T/lab.txt" && pass "--label: base keeps its name" || fail "--label base"
"$B/fuse" --quiet --methods hybrid --label seed --queries "$T/q.mp" "$T/a.mp" -o "$T/hy.mp"
"$B/mp2json" "$T/hy.mp" | tail -n +2 | grep -vc '"method":"seed hybrid"' | grep -qx 0 && pass "--methods hybrid: only hybrid records" || fail "--methods hybrid"
"$B/mp2json" --head 0 "$T/hy.mp" | grep -q '"label":"seed","methods":\["hybrid"\]' && pass "--label, --methods in the header" || fail "--label/--methods header" "$("$B/mp2json" --head 0 "$T/hy.mp")"
"$B/mp2json" --head 0 "$T/r.mp" | grep -q '"label"' && fail "default header has no label" || pass "default header has no label"
# --c1 1 makes base rank dominate pointwise for user 1: U_point 3+4, 5+3, 4+2, 3+1 -> 12 11 13 14
"$B/fuse" --quiet --c1 1 --queries "$T/q.mp" "$T/a.mp" -o "$T/c1.mp"
rankings "$T/c1.mp" | grep -q '^1 pointwise 12,11,13,14$' && pass "--c1 1" || fail "--c1 1" "$(rankings "$T/c1.mp" | grep '^1 pointwise')"

# ---- metrics end to end: test positives 13 (user 1), 24 (user 2), 32 (user 3)
{
    echo '{"schema":"itrek.interactions","version":1,"params":{"scheme":"loo","like":4}}'
    for u in 1 2 3; do printf '{"user":%d,"item":%d,"rating":5,"ts":1,"part":"train","liked":true}\n' $u $((u * 10 + 9)); done
    echo '{"user":1,"item":13,"rating":5,"ts":2,"part":"test","liked":true}'
    echo '{"user":2,"item":24,"rating":4,"ts":2,"part":"test","liked":true}'
    echo '{"user":3,"item":32,"rating":5,"ts":2,"part":"test","liked":true}'
} > "$T/ia.json"
mp "$T/ia.json" "$T/ia.mp"
{
    echo '{"schema":"itrek.candidates","version":1,"params":{"for":"test","n":4,"users":"all","scheme":"loo"},"users":3}'
    echo '{"user":1,"items":[11,12,13,14],"scores":[4,3,2,1]}'
    echo '{"user":2,"items":[21,22,23,24],"scores":[4,3,2,1]}'
    echo '{"user":3,"items":[31,32],"scores":[2,1]}'
} > "$T/cand.json"
mp "$T/cand.json" "$T/cand.mp"
# The rankings carry method base themselves; metrics --candidates adds a second 'base' (from the
# candidates), which metrics rejects as a duplicate, so the rankings go in alone here and the
# candidates' base row is checked to equal fuse's base row.
expect_ok "metrics reads the rankings" "$B/metrics" --interactions "$T/ia.mp" --k 1,2 --bootstrap 0 --format csv "$T/r.mp"
cp "$T/out" "$T/metrics.csv"
"$B/metrics" --interactions "$T/ia.mp" --candidates "$T/cand.mp" --k 1,2 --bootstrap 0 --format csv > "$T/mcand.csv"
[ "$(grep ',base,' "$T/mcand.csv")" = "$(grep ',base,' "$T/metrics.csv")" ] && pass "metrics: fuse's base equals the candidates' base" \
    || fail "metrics: fuse's base equals the candidates' base" "$(cat "$T/mcand.csv" "$T/metrics.csv")"
# H@1: base 0 (11, 21, 31); hybrid 1/3 (only 32 for user 3); pointwise 2/3 (24, 32)
[ "$(cut -d, -f1-4 "$T/metrics.csv" | tail -n +2 | tr '\n' ' ')" = "loo,test,3,base loo,test,3,pointwise loo,test,3,pairwise loo,test,3,listwise loo,test,3,hybrid " ] \
    && pass "metrics: 3 users, the five methods" || fail "metrics: 3 users, the five methods" "$(cat "$T/metrics.csv")"
hr1() { awk -F, -v m="$1" 'NR==1{for(i=1;i<=NF;i++) if($i=="H@1") c=i} $4==m{print $c}' "$T/metrics.csv"; }
awk -v b="$(hr1 base)" -v h="$(hr1 hybrid)" -v p="$(hr1 pointwise)" 'BEGIN{exit !(b == 0 && h > 0.333 && h < 0.334 && p > 0.666 && p < 0.667)}' \
    && pass "metrics: H@1 base 0, pointwise 2/3, hybrid 1/3" || fail "metrics: H@1" "$(cat "$T/metrics.csv")"

# ---- leaky queries (promptgen --hints recranker-leaky): the label LEAKY on every reranked
# method, params.leaky in the header, and metrics says LEAKY in the title and the rows
{ sed 's/"hint":true}/"hint":true,"leaky":true}/' <<<"$QH"; queries_body; } > "$T/ql.json"; mp "$T/ql.json" "$T/ql.mp"
{ sed 's/"count":23}/"count":23,"leaky":true}/' <<<"$AH"; answers_body; } > "$T/al.json"; mp "$T/al.json" "$T/al.mp"
expect_ok "leaky: fuse" "$B/fuse" --quiet --queries "$T/ql.mp" "$T/al.mp" -o "$T/rl.mp"
"$B/mp2json" "$T/rl.mp" | tail -n +2 | sed 's/.*"user":\([0-9]*\),"method":"\([A-Za-z -]*\)","items":\[\([0-9,]*\)\].*/\1 \2 \3/' > "$T/rl.txt"
cmp -s <(sed 's/ LEAKY / /' "$T/rl.txt") "$T/want" && ! grep -v '^[0-9]* base ' "$T/rl.txt" | grep -vq '^[0-9]* LEAKY ' \
    && [ "$(grep -c '^[0-9]* base ' "$T/rl.txt")" = 3 ] \
    && pass "leaky: same rankings, every reranked method named LEAKY" || fail "leaky: names" "$(head -3 "$T/rl.txt")"
"$B/mp2json" --head 0 "$T/rl.mp" | grep -q '"label":"LEAKY","leaky":true' && pass "leaky: header label and leaky" || fail "leaky: header" "$("$B/mp2json" --head 0 "$T/rl.mp")"
"$B/fuse" --quiet --label seed --methods hybrid --queries "$T/ql.mp" "$T/al.mp" -o "$T/rls.mp"
"$B/mp2json" "$T/rls.mp" | tail -n +2 | grep -vc '"method":"LEAKY seed hybrid"' | grep -qx 0 && pass "leaky: --label seed gives 'LEAKY seed hybrid'" || fail "leaky: LEAKY seed"
expect_fail "leaky: answers to honest queries given leaky ones" 1 "al.mp:0: field 'queries.leaky': the answers are for leaky queries but .*q.mp is honest" \
    "$B/fuse" --queries "$T/q.mp" "$T/al.mp" -o "$T/out.mp"
[ ! -e "$T/out.mp" ] && pass "leaky: mismatch leaves no output" || fail "leaky: mismatch left output"
expect_fail "leaky: honest answers given leaky queries" 1 "a.mp:0: field 'queries.leaky': the answers are for honest queries" \
    "$B/fuse" --queries "$T/ql.mp" "$T/a.mp" -o "$T/out.mp"
expect_fail "leaky: --label over 15 bytes with leaky queries" 1 "ql.mp:0: field 'params.leaky': .*--label may have 15 bytes at most here, not 16" \
    "$B/fuse" --label abcdefghijklmnop --queries "$T/ql.mp" "$T/al.mp" -o "$T/out.mp"
[ ! -e "$T/out.mp" ] && pass "leaky: long label leaves no output" || fail "leaky: long label left output"
{ sed 's/"hint":true}/"hint":true,"leaky":"yes"}/' <<<"$QH"; queries_body; } > "$T/qlb.json"; mp "$T/qlb.json" "$T/qlb.mp"
expect_fail "leaky: a non-boolean params.leaky in the queries" 1 "qlb.mp:0: field 'params.leaky': expected a boolean" \
    "$B/fuse" --queries "$T/qlb.mp" "$T/al.mp" -o "$T/out.mp"
{ sed 's/"count":23}/"count":23,"leaky":1}/' <<<"$AH"; answers_body; } > "$T/alb.json"; mp "$T/alb.json" "$T/alb.mp"
expect_fail "leaky: a non-boolean queries.leaky in the answers" 1 "alb.mp:0: field 'queries.leaky': expected a boolean" \
    "$B/fuse" --queries "$T/ql.mp" "$T/alb.mp" -o "$T/out.mp"
expect_ok "leaky: metrics" "$B/metrics" --interactions "$T/ia.mp" --k 1,2 --bootstrap 0 "$T/r.mp" "$T/rl.mp"
grep -q '^\*\*LEAKY\*\* diagnostic' "$T/out" && grep -q '^Protocol `loo`, part `test`, LEAKY: 3 users' "$T/out" && grep -q '^| LEAKY hybrid |' "$T/out" \
    && grep -q '^| hybrid |' "$T/out" && pass "leaky: metrics title and rows say LEAKY, honest rows beside them" || fail "leaky: metrics md" "$(head -8 "$T/out")"
"$B/mp2json" "$T/r.mp" | sed '1s/"point_score":"expected"/"point_score":"expected","leaky":0/' | "$B/json2mp" -o "$T/rlb.mp"
expect_fail "leaky: metrics rejects a non-boolean params.leaky" 1 "rlb.mp:0: field 'params.leaky': expected a boolean" \
    "$B/metrics" --interactions "$T/ia.mp" --bootstrap 0 "$T/rlb.mp"
# a rankings stream that says leaky but whose names do not: metrics names them LEAKY itself
"$B/mp2json" "$T/r.mp" | sed '1s/"point_score":"expected"/"point_score":"expected","leaky":true/' | "$B/json2mp" -o "$T/rl2.mp"
expect_ok "leaky: metrics marks unlabelled leaky rankings" "$B/metrics" --interactions "$T/ia.mp" --k 1,2 --bootstrap 0 --format json "$T/rl2.mp"
grep -q '"method": "LEAKY pointwise"' "$T/out" && grep -q '"leaky": true' "$T/out" && grep -q '"method": "base"' "$T/out" \
    && pass "leaky: json rows named LEAKY, base kept, leaky: true" || fail "leaky: metrics json" "$(head -c 400 "$T/out")"

# ---- bad inputs: each exits 1 with one line naming file, record and field; -o leaves nothing
bad_answers() { # name, jq-free edit: a sed expression on the answers JSON lines
    { echo "$AH"; answers_body; } | sed "$2" > "$T/$1.json"
    mp "$T/$1.json" "$T/$1.mp"
}
bad_answers unknown 's/^{"id":23,/{"id":999,/'
expect_fail "unknown query id" 1 "^fuse: error: .*/unknown.mp:23: field 'id': no query with id 999 in .*/q.mp$" \
    "$B/fuse" --queries "$T/q.mp" "$T/unknown.mp" -o "$T/out.mp"
bad_answers dup 's/^{"id":23,/{"id":22,/'
expect_fail "duplicated answer id" 1 "dup.mp:23: field 'id': a second answer to query 22 \(first at record 22\)$" \
    "$B/fuse" --queries "$T/q.mp" "$T/dup.mp" -o "$T/out.mp"
bad_answers task 's/^{"id":4,"task":"pointwise"/{"id":4,"task":"pairwise"/'
expect_fail "answer task differs from its query's" 1 "task.mp:4: field 'task': 'pairwise', but query 4 \(.*/q.mp:4\) is pointwise$" \
    "$B/fuse" --queries "$T/q.mp" "$T/task.mp" -o "$T/out.mp"
bad_answers user 's/^{"id":4,"task":"pointwise","user":1/{"id":4,"task":"pointwise","user":2/'
expect_fail "answer user differs from its query's" 1 "user.mp:4: field 'user': 2, but query 4 \(.*/q.mp:4\) is for user 1$" \
    "$B/fuse" --queries "$T/q.mp" "$T/user.mp" -o "$T/out.mp"
bad_answers scheme '1s/"scheme":"loo"/"scheme":"ratio"/'
expect_fail "answers for another split scheme" 1 "scheme.mp:0: field 'queries.scheme': the answers are for scheme 'ratio' but .*/q.mp has scheme 'loo'$" \
    "$B/fuse" --queries "$T/q.mp" "$T/scheme.mp" -o "$T/out.mp"
bad_answers part '1s/"part":"test"/"part":"valid"/'
expect_fail "answers for another part" 1 "part.mp:0: field 'queries.part': the answers are for part 'valid' but .*/q.mp has part 'test'$" \
    "$B/fuse" --queries "$T/q.mp" "$T/part.mp" -o "$T/out.mp"
bad_answers count '1s/"count":23/"count":24/'
expect_fail "answers for another number of queries" 1 "count.mp:0: field 'queries.count': the answers are for 24 queries but .*/q.mp has 23$" \
    "$B/fuse" --queries "$T/q.mp" "$T/count.mp" -o "$T/out.mp"
bad_answers noqueries '1s/,"queries":{[^}]*}//'
expect_fail "answers header without 'queries'" 1 "noqueries.mp:0: field 'queries': missing" \
    "$B/fuse" --queries "$T/q.mp" "$T/noqueries.mp" -o "$T/out.mp"
bad_answers scores '/^{"id":11,/s/"scores":\[[^]]*\]/"scores":[-1,-2]/'
expect_fail "pointwise scores of the wrong length" 1 "scores.mp:11: field 'scores': 2 entries, expected 5 \(log-probabilities of the ratings 1..5\)$" \
    "$B/fuse" --queries "$T/q.mp" "$T/scores.mp" -o "$T/out.mp"
bad_answers missing '/^{"id":\(4\|9\|17\),/d'
expect_fail "missing answers" 1 "missing.mp: field 'id': 3 of 23 queries have no answer \(the first: query 4, user 1, pointwise\); --allow-missing counts them as unparsed$" \
    "$B/fuse" --queries "$T/q.mp" "$T/missing.mp" -o "$T/out.mp"
[ -z "$(ls "$T" | grep '^out\.mp')" ] && pass "no output file (nor temporary) left after errors" || fail "no output file left" "$(ls "$T" | grep out)"
# --allow-missing: query 4 was unparsed anyway; 9 (user 1's list) and 17 (pair answer, already unparsed) missing
expect_ok "--allow-missing" "$B/fuse" --allow-missing --queries "$T/q.mp" "$T/missing.mp" -o "$T/am2.mp"
h=$("$B/mp2json" --head 0 "$T/am2.mp")
want_parse='"parse":{"pointwise":{"answers":10,"unparsed":2,"fallbacks":2,"missing":1},"pairwise":{"answers":10,"unparsed":1,"fallbacks":1,"missing":1},"listwise":{"answers":3,"unparsed":2,"fallbacks":2,"missing":1,"partial":1}}'
[[ $h == *"$want_parse"* ]] && pass "--allow-missing counts missing answers as unparsed" || fail "--allow-missing counts" "$h"
rankings "$T/am2.mp" | grep -q '^1 listwise 11,12,13,14$' && pass "a missing list answer gives the base order" || fail "missing list answer" "$(rankings "$T/am2.mp" | grep '^1 listwise')"

bad_queries() { # name, sed expression on the queries JSON lines; answers header count adjusted
    { echo "$QH"; queries_body; } | sed "$2" > "$T/$1.json"
    mp "$T/$1.json" "$T/$1.mp"
}
bad_queries pair1 '/^{"id":8,/d'
{ echo "$AH" | sed 's/"count":23/"count":22/'; answers_body | grep -v '^{"id":8,'; } > "$T/pair1a.json"; mp "$T/pair1a.json" "$T/pair1a.mp"
expect_fail "a pair asked in one order only" 1 "pair1.mp:7: field 'pair': user 1 pair 1 is asked in one order only \(a pair must be asked in both orders\)$" \
    "$B/fuse" --queries "$T/pair1.mp" "$T/pair1a.mp" -o "$T/out.mp"
bad_queries pair2 's/^{"id":8,"task":"pairwise","user":1,"prompt":"p","prefix_len":0,"items":\[12,13\],"ranks":\[1,2\]/{"id":8,"task":"pairwise","user":1,"prompt":"p","prefix_len":0,"items":[12,14],"ranks":[1,3]/'
expect_fail "a pair's two queries show different items" 1 "pair2.mp:8: field 'items': user 1 pair 1: the two queries do not show the same two items in opposite orders$" \
    "$B/fuse" --queries "$T/pair2.mp" "$T/a.mp" -o "$T/out.mp"
bad_queries pair3 's/^{"id":8,\(.*\)"pair":1,/{"id":8,\1"pair":0,/'
expect_fail "a pair asked three times" 1 "pair3.mp:8: field 'pair': user 1 pair 0 is asked 3 times" \
    "$B/fuse" --queries "$T/pair3.mp" "$T/a.mp" -o "$T/out.mp"
bad_queries dupq 's/^{"id":23,/{"id":22,/'
expect_fail "duplicated query id" 1 "dupq.mp:23: field 'id': 22 repeats the id of record 22$" \
    "$B/fuse" --queries "$T/dupq.mp" "$T/a.mp" -o "$T/out.mp"
bad_queries noscale '1s/"scale":\[1,5\],//'
expect_fail "queries without a rating scale" 1 "noscale.mp:0: field 'params.scale': missing" \
    "$B/fuse" --queries "$T/noscale.mp" "$T/a.mp" -o "$T/out.mp"
bad_queries nopoint '/^{"id":3,/d'
expect_fail "a candidate without a pointwise query" 1 "nopoint.mp:[0-9]+: field 'items': user 1 has no pointwise query for candidate item 13 \(base rank 2\)$" \
    "$B/fuse" --queries "$T/nopoint.mp" "$T/a.mp" -o "$T/out.mp"
bad_queries rank 's/^{"id":2,\(.*\)"ranks":\[1\]/{"id":2,\1"ranks":[2]/'
expect_fail "a base rank given to two items" 1 "rank.mp:[0-9]+: field 'ranks\[0\]': user 1: base rank 2 is item 1[23] here but item 1[23] in record [0-9]+$" \
    "$B/fuse" --queries "$T/rank.mp" "$T/a.mp" -o "$T/out.mp"
bad_queries notitles 's/,"titles":\[[^]]*\]//'
expect_fail "a listwise query without titles" 1 "notitles.mp:9: missing field 'titles'$" \
    "$B/fuse" --queries "$T/notitles.mp" "$T/a.mp" -o "$T/out.mp"
expect_fail "answers given as queries" 1 "field 'schema': expected itrek.queries, got itrek.answers" \
    "$B/fuse" --queries "$T/a.mp" "$T/a.mp" -o "$T/out.mp"
[ -z "$(ls "$T" | grep '^out\.mp')" ] && pass "still no output file after query errors" || fail "no output file left (queries)" "$(ls "$T" | grep out)"

# ---- usage errors: exit 2
expect_fail "--queries is required" 2 '^fuse: --queries FILE is required$' "$B/fuse" "$T/a.mp"
expect_fail "bad --point-score" 2 "^fuse: --point-score: expected 'expected' or 'argmax', got 'mean'$" "$B/fuse" --queries "$T/q.mp" --point-score mean
expect_fail "bad --lambda" 2 '^fuse: --lambda: expected three weights' "$B/fuse" --queries "$T/q.mp" --lambda 0.5,0.5
expect_fail "bad --methods" 2 "^fuse: --methods: unknown method 'best'" "$B/fuse" --queries "$T/q.mp" --methods hybrid,best
expect_fail "empty --label" 2 "^fuse: --label: 1 to 20 bytes" "$B/fuse" --queries "$T/q.mp" --label ''
expect_ok "--help" "$B/fuse" --help
grep -q '^usage: fuse --queries FILE' "$T/out" && pass "--help prints usage to stdout" || fail "--help prints usage to stdout"
