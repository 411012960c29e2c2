# metrics.sh - metrics on a hand-built loo split of 3 users (values derived by hand below) in
# csv, json and md; --part valid, --k, --baseline, the bootstrap's determinism on ML-100K,
# -o, zstd and stdin inputs, and bad inputs. Sourced helpers: tests/cli/lib.sh.
source "$ITREK_ROOT/tests/cli/lib.sh"
B=$BINDIR
ML=$SHARED/data/ml-100k
mp() { "$B/json2mp" -o "$2" "$1"; }

# users 1..3; liked test items 106, 102, 103; liked valid items 105, 107, 107
cat > "$T/syn.tsv" <<'TSV'
1	101	5	1
1	102	4	2
1	103	1	3
1	104	5	4
1	105	4	5
1	106	5	6
2	101	4	1
2	103	5	2
2	105	2	3
2	107	4	4
2	102	5	5
3	104	4	1
3	106	5	2
3	107	4	3
3	101	1	4
3	103	5	5
TSV
"$B/split" --quiet --ratings "$T/syn.tsv" --scheme loo -o "$T/ia.mp"
# base (candidates): user 1 hits at rank 1, user 2 at rank 3, user 3 misses.
#   H@1 1/3, H@3 2/3; N@3 (1 + 1/log2 4)/3 = 0.5; R@3 2/3; MRR (1 + 1/3)/3 = 0.44444
CH='{"schema":"itrek.candidates","version":1,"params":{"for":"test","n":3,"users":"all","scheme":"loo"},"inputs":{},"users":3}'
{ echo "$CH"
  echo '{"user":1,"items":[106,107,108],"scores":[3,2,1]}'
  echo '{"user":2,"items":[104,106,102],"scores":[3,2,1]}'
  echo '{"user":3,"items":[101,102,108],"scores":[3,2,1]}'; } > "$T/cand.json"
mp "$T/cand.json" "$T/cand.mp"
# method m: user 1 hits at rank 2, user 2 at rank 1, user 3 has no ranking (a miss).
#   H@1 1/3, H@3 2/3; N@3 (1/log2 3 + 1)/3 = 0.54364; R@3 2/3; MRR (1/2 + 1)/3 = 0.5
# method n: every user's positive at rank 1 (all 1), user 3's list also names a valid item.
RH='{"schema":"itrek.rankings","version":1,"params":{"scheme":"loo"},"inputs":{}}'
{ echo "$RH"
  echo '{"user":1,"method":"m","items":[107,106]}'
  echo '{"user":2,"method":"m","items":[102]}'
  echo '{"user":1,"method":"n","items":[106,107]}'
  echo '{"user":2,"method":"n","items":[102,104]}'
  echo '{"user":3,"method":"n","items":[103,107]}'; } > "$T/r.json"
mp "$T/r.json" "$T/r.mp"

# ---- csv: every column, values by hand
expect_ok "csv" "$B/metrics" --interactions "$T/ia.mp" --candidates "$T/cand.mp" --k 1,3 --bootstrap 0 --format csv "$T/r.mp"
want='protocol,part,users,method,H@1,N@1,R@1,H@3,N@3,R@3,MRR'
[ "$(head -1 "$T/out")" = "$want" ] && pass "csv: header row" || fail "csv: header row" "$(head -1 "$T/out")"
[ "$(cut -d, -f1-4 "$T/out" | tail -n +2 | tr '\n' ' ')" = "loo,test,3,base loo,test,3,m loo,test,3,n " ] \
    && pass "csv: one row per method, base first" || fail "csv: rows" "$(cat "$T/out")"
check_row() { # NAME METHOD H1 N1 R1 H3 N3 R3 MRR (to 4 decimals)
    local n=$1 m=$2; shift 2
    local got; got=$(awk -F, -v m="$m" '$4==m{for(i=5;i<=NF;i++) printf "%.4f ", $i}' "$T/out")
    [ "$got" = "$* " ] && pass "$n" || fail "$n" "got '$got' want '$* '"
}
check_row "csv: base's values" base 0.3333 0.3333 0.3333 0.6667 0.5000 0.6667 0.4444
check_row "csv: m's values (a missing user is a miss)" m 0.3333 0.3333 0.3333 0.6667 0.5436 0.6667 0.5000
check_row "csv: n's values" n 1.0000 1.0000 1.0000 1.0000 1.0000 1.0000 1.0000
expect_ok "rankings alone" "$B/metrics" --interactions "$T/ia.mp" --k 1,3 --bootstrap 0 --format csv "$T/r.mp"
[ "$(cut -d, -f4 "$T/out" | tail -n +2 | tr '\n' ' ')" = "m n " ] && pass "rankings alone: no base row" || fail "rankings alone" "$(cat "$T/out")"
expect_ok "candidates alone" "$B/metrics" --interactions "$T/ia.mp" --candidates "$T/cand.mp" --k 1,3 --bootstrap 0 --format csv
check_row "candidates alone: base's values" base 0.3333 0.3333 0.3333 0.6667 0.5000 0.6667 0.4444
expect_ok "default cut-offs" "$B/metrics" --interactions "$T/ia.mp" --candidates "$T/cand.mp" --bootstrap 0 --format csv
[ "$(head -1 "$T/out")" = 'protocol,part,users,method,H@3,N@3,R@3,H@5,N@5,R@5,H@10,N@10,R@10,MRR' ] && pass "default --k 3,5,10" || fail "default --k 3,5,10" "$(head -1 "$T/out")"

# ---- --part valid: positives 105, 107, 107
{ echo "${CH/\"for\":\"test\"/\"for\":\"valid\"}"
  echo '{"user":1,"items":[105,107],"scores":[2,1]}'
  echo '{"user":2,"items":[104,107],"scores":[2,1]}'
  echo '{"user":3,"items":[101,102],"scores":[2,1]}'; } > "$T/cv.json"
mp "$T/cv.json" "$T/cv.mp"
expect_ok "--part valid" "$B/metrics" --interactions "$T/ia.mp" --candidates "$T/cv.mp" --part valid --k 1,2 --bootstrap 0 --format csv
# H@1 1/3, N@1 1/3, R@1 1/3; H@2 2/3, N@2 (1 + 1/log2 3)/3 = 0.54364, R@2 2/3; MRR (1 + 1/2)/3 = 0.5
check_row "--part valid: values" base 0.3333 0.3333 0.3333 0.6667 0.5436 0.6667 0.5000
grep -q '^loo,valid,3,base,' "$T/out" && pass "--part valid: the part column" || fail "--part valid: the part column"

# ---- json and md
expect_ok "json" "$B/metrics" --interactions "$T/ia.mp" --candidates "$T/cand.mp" --k 1,3 --bootstrap 100 --format json "$T/r.mp"
jq -e '.protocol == "loo" and .part == "test" and .users == 3 and ([.rows[].method] == ["base","m","n"])
       and (.rows[1]["N@3"] * 10000 | round) == 5436 and (.rows[0].MRR * 10000 | round) == 4444' "$T/out" >/dev/null \
    && pass "json: protocol, part, users, rows" || fail "json: protocol, part, users, rows" "$(head -c 300 "$T/out")"
jq -e '[.bootstrap[] | select(.against == "base")] | length > 0 and all(.lo <= .diff and .diff <= .hi)' "$T/out" >/dev/null \
    && pass "json: bootstrap rows against base, lo <= diff <= hi" || fail "json: bootstrap rows" "$(jq -c '.bootstrap[0]' "$T/out")"
jq -e '[.bootstrap[] | select(.method == "n" and .metric == "H@1")][0].diff | (. * 10000 | round) == 6667' "$T/out" >/dev/null \
    && pass "json: n - base on H@1 is 2/3" || fail "json: n - base on H@1" "$(jq -c '.bootstrap' "$T/out" | head -c 300)"
expect_ok "json without bootstrap" "$B/metrics" --interactions "$T/ia.mp" --candidates "$T/cand.mp" --bootstrap 0 --format json "$T/r.mp"
jq -e '(.bootstrap // []) | length == 0' "$T/out" >/dev/null && pass "--bootstrap 0: no intervals" || fail "--bootstrap 0: no intervals" "$(jq -c .bootstrap "$T/out")"
expect_ok "--baseline m" "$B/metrics" --interactions "$T/ia.mp" --candidates "$T/cand.mp" --k 1,3 --bootstrap 50 --baseline m --format json "$T/r.mp"
jq -e '[.bootstrap[].against] | unique == ["m"]' "$T/out" >/dev/null && pass "--baseline m: intervals against m" || fail "--baseline m" "$(jq -c '[.bootstrap[].against] | unique' "$T/out")"
expect_ok "md" "$B/metrics" --interactions "$T/ia.mp" --candidates "$T/cand.mp" --k 1,3 --bootstrap 0 "$T/r.mp"
grep -q '^Protocol `loo`, part `test`: 3 users with a positive\.$' "$T/out" && pass "md: title line" || fail "md: title line" "$(head -3 "$T/out")"
grep -q '^| Method | H@1 | N@1 | H@3 | N@3 |$' "$T/out" && grep -q '^| base | 0\.33333 | 0\.33333 | 0\.66667 | 0\.50000 |$' "$T/out" \
    && grep -q '^| m | 0\.33333 | 0\.33333 | 0\.66667 | 0\.54364 |$' "$T/out" && pass "md: table rows" || fail "md: table rows" "$(cat "$T/out")"

# ---- determinism of the bootstrap (ML-100K), -o
"$B/split" --quiet --ml100k "$ML" --scheme loo -o "$T/loo.mp"
"$B/mf-train" --quiet --threads 2 --dim 8 --epochs 5 "$T/loo.mp" -o "$T/mf.mp"
"$B/candgen" --mf "$T/mf.mp" "$T/loo.mp" -o "$T/c.mp"
"$B/mf-train" --quiet --threads 2 --dim 8 --epochs 5 --seed 2 "$T/loo.mp" -o "$T/mf2.mp"
"$B/candgen" --mf "$T/mf2.mp" "$T/loo.mp" | "$B/mp2json" | sed '1s/"itrek.candidates"/"itrek.rankings"/; 1!s/^{"user":\([0-9]*\),/{"user":\1,"method":"seed2",/' | "$B/json2mp" -o "$T/r2.mp"
M=(--interactions "$T/loo.mp" --candidates "$T/c.mp" --bootstrap 200)
"$B/metrics" "${M[@]}" "$T/r2.mp" > "$T/b1.md"; "$B/metrics" "${M[@]}" "$T/r2.mp" > "$T/b2.md"
same "bootstrap: same seed, same output" "$T/b1.md" "$T/b2.md"
"$B/metrics" "${M[@]}" --seed 5 "$T/r2.mp" > "$T/b5.md"
cmp -s "$T/b1.md" "$T/b5.md" && fail "bootstrap: --seed 5 moves the intervals" || pass "bootstrap: --seed 5 moves the intervals"
grep -q '^| base | ' "$T/b1.md" && grep -q '^| seed2 | ' "$T/b1.md" && pass "md on ML-100K: base and the ranking" || fail "md on ML-100K" "$(head -8 "$T/b1.md")"
expect_ok "-o" "$B/metrics" "${M[@]}" "$T/r2.mp" -o "$T/b.md"
[ ! -s "$T/out" ] && pass "-o: nothing on stdout" || fail "-o: nothing on stdout"
same "-o writes what stdout gets" "$T/b1.md" "$T/b.md"
[ "$(ls "$T" | grep -c '^b\.md')" = 1 ] && pass "-o: no temporary left" || fail "-o: no temporary left" "$(ls "$T")"

# ---- zstd and stdin inputs
"$B/mp2json" "$T/loo.mp" | "$B/json2mp" -o "$T/loo.zst"; "$B/mp2json" "$T/c.mp" | "$B/json2mp" -o "$T/c.zst"
"$B/metrics" --interactions "$T/loo.zst" --candidates "$T/c.zst" --bootstrap 200 "$T/r2.mp" > "$T/bz.md"
same "zstd inputs: the same table" "$T/b1.md" "$T/bz.md"
"$B/metrics" --interactions "$T/loo.mp" --candidates - --bootstrap 200 "$T/r2.mp" < "$T/c.zst" > "$T/bs.md"
same "candidates on stdin (-)" "$T/b1.md" "$T/bs.md"
"$B/mp2json" "$T/r2.mp" | "$B/json2mp" | "$B/metrics" "${M[@]}" - > "$T/bp.md"
same "rankings piped in (-)" "$T/b1.md" "$T/bp.md"

# ---- --help, --version
expect_ok "--help" "$B/metrics" --help
grep -q '^usage: metrics --interactions FILE \[--candidates FILE\] \[options\] \[RANKINGS...\]$' "$T/out" && pass "--help: usage on stdout" || fail "--help: usage on stdout"
expect_ok "--version" "$B/metrics" --version
grep -Eq '^metrics [0-9]+\.[0-9]+\.[0-9]+$' "$T/out" && pass "--version prints name and version" || fail "--version" "$(cat "$T/out")"

# ---- bad inputs (exact messages: tests/cli/golden/metrics)
mkdir -p "$T/art"
bad() { { echo "$RH"; printf '%s\n' "${@:2}"; } > "$T/$1.json"; mp "$T/$1.json" "$T/$1.mp"; }
bad dup '{"user":1,"method":"m","items":[106]}' '{"user":1,"method":"m","items":[107]}'
expect_fail "duplicate user in a method" 1 "^metrics: error: $T/dup.mp:2: field 'user': duplicate ranking for user 1 \(method m\)$" \
    "$B/metrics" --interactions "$T/ia.mp" "$T/dup.mp" -o "$T/art/m.md"
bad twice '{"user":1,"method":"m","items":[106,107,106]}'
expect_fail "an item twice in a ranking" 1 "^metrics: error: $T/twice.mp:1: field 'items\[2\]': item 106 appears twice$" \
    "$B/metrics" --interactions "$T/ia.mp" "$T/twice.mp" -o "$T/art/m.md"
bad unknown '{"user":7,"method":"m","items":[106]}'
expect_fail "a user unknown to the interactions" 1 "^metrics: error: $T/unknown.mp:1: field 'user': 7 is not a user of $T/ia.mp$" \
    "$B/metrics" --interactions "$T/ia.mp" "$T/unknown.mp" -o "$T/art/m.md"
sed '1s/"scheme":"loo"/"scheme":"ratio"/' "$T/r.json" > "$T/other.json"; mp "$T/other.json" "$T/other.mp"
expect_fail "rankings of another scheme" 1 "^metrics: error: $T/other.mp:0: field 'params.scheme': 'ratio' does not match the interactions' scheme 'loo' \($T/ia.mp\)$" \
    "$B/metrics" --interactions "$T/ia.mp" "$T/other.mp" -o "$T/art/m.md"
expect_fail "candidates given as rankings" 1 "^metrics: error: $T/cand.mp:0: field 'schema': expected itrek.rankings, got itrek.candidates$" \
    "$B/metrics" --interactions "$T/ia.mp" "$T/cand.mp" -o "$T/art/m.md"
expect_fail "missing rankings file" 1 "^metrics: error: $T/nope.mp: cannot open: No such file or directory$" \
    "$B/metrics" --interactions "$T/ia.mp" "$T/nope.mp" -o "$T/art/m.md"
[ -z "$(ls -A "$T/art")" ] && pass "no output left after errors" || fail "no output left after errors" "$(ls -A "$T/art")"
expect_fail "unwritable -o" 1 "^metrics: error: $T/nodir/m.md: cannot create: No such file or directory$" \
    "$B/metrics" --interactions "$T/ia.mp" "$T/r.mp" -o "$T/nodir/m.md"
expect_fail "--interactions is required" 2 "^metrics: --interactions FILE is required$" "$B/metrics" "$T/r.mp"
expect_fail "nothing to evaluate" 2 "^metrics: nothing to evaluate: give --candidates and/or rankings files$" "$B/metrics" --interactions "$T/ia.mp"
expect_fail "--format unknown" 2 "^metrics: --format: expected md, csv or json, got 'tsv'$" "$B/metrics" --interactions "$T/ia.mp" --format tsv "$T/r.mp"
expect_fail "--part unknown" 2 "^metrics: --part: expected test or valid, got 'train'$" "$B/metrics" --interactions "$T/ia.mp" --part train "$T/r.mp"
expect_fail "--k 0" 2 "^metrics: --k: cut-offs must be positive$" "$B/metrics" --interactions "$T/ia.mp" --k 3,0 "$T/r.mp"
expect_fail "--bootstrap negative" 2 "^metrics: --bootstrap: -1 is outside \[0, 1000000\]$" "$B/metrics" --interactions "$T/ia.mp" --bootstrap -1 "$T/r.mp"
