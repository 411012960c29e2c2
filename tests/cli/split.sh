# split.sh - split counts on ML-100K and on a small synthetic table with hand-derived parts;
# bad rating inputs, each with its one-line message.
source "$ITREK_ROOT/tests/cli/lib.sh"
B=$BINDIR
ML=$SHARED/data/ml-100k
hdr() { "$B/mp2json" --head 0 "$1"; }
parts() { "$B/mp2json" "$1" | tail -n +2 | sed 's/.*"user":\([0-9]*\),"item":\([0-9]*\).*"part":"\([a-z]*\)".*/\1 \2 \3/'; }

"$B/split" --quiet --ml100k "$ML" --scheme loo --catalog "$T/items.mp" -o "$T/loo.mp"
h=$(hdr "$T/loo.mp")
[[ $h == *'"with_test_positive":942'* ]] && pass "loo: 942 users have a test item" || fail "loo: 942 users have a test item" "$h"
[[ $h == *'"valid":942,"test":942'* ]] && pass "loo: one valid and one test item per user" || fail "loo: one valid and one test item per user" "$h"
[[ $h == *'"train":69028'* && $h == *'"dropped":29088'* ]] && pass "loo: train and dropped counts" || fail "loo: train and dropped counts" "$h"
"$B/split" --quiet --ml100k "$ML" -o "$T/ratio.mp"
h=$(hdr "$T/ratio.mp")
[[ $h == *'"train":80000,"valid":10058,"test":9942,"dropped":0'* ]] && pass "ratio: part counts" || fail "ratio: part counts" "$h"
[[ $h == *'"all":943'* ]] && pass "ratio: 943 users" || fail "ratio: 943 users" "$h"
n=$("$B/mp2json" "$T/items.mp" | tail -n +2 | wc -l)
[ "$n" = 1682 ] && pass "catalogue: 1682 items" || fail "catalogue: 1682 items" "$n"
"$B/mp2json" "$T/items.mp" | grep -q '"item":1633,"title":"Á köldum klaka (Cold Fever) (1994)","year":1994' \
    && pass "catalogue: latin-1 title converted to UTF-8" || fail "catalogue: latin-1 title converted to UTF-8"
"$B/mp2json" "$T/items.mp" | grep -q '"item":1,"title":"Toy Story (1995)","year":1995,"genres":\["Animation","Children'"'"'s","Comedy"\]' \
    && pass "catalogue: genres" || fail "catalogue: genres"
# loo never lets valid/test information into train: every train rating of a user is dated
# no later than the user's valid item, and train holds no rating strictly between the thresholds.
"$B/mp2json" "$T/loo.mp" | tail -n +2 | sed 's/.*"user":\([0-9]*\),"item":\([0-9]*\),"rating":\([0-9.]*\),"ts":\([0-9]*\),"part":"\([a-z]*\)".*/\1 \2 \3 \4 \5/' |
    awk '$5=="valid"{v[$1]=$4} $5=="train"{t[$1]= ($1 in t && t[$1]>$4) ? t[$1] : $4; if ($3==3) bad3++} END{for(u in t) if ((u in v) && t[u]>v[u]) late++; print late+0, bad3+0}' > "$T/leak"
[ "$(cat "$T/leak")" = "0 0" ] && pass "loo: no train rating after the valid item, no 3s" || fail "loo: no train rating after the valid item, no 3s" "$(cat "$T/leak")"

# Synthetic table; expected parts derived by hand in the comments.
# user 1: ts 1..10, ratings 5 4 1 3 5 2 4 5 1 4 on items 101..110.
#   loo: liked 101 102 105 107 108 110 -> test 110, valid 108; dislikes 103 106 before ts 8 kept,
#        109 (after valid) and 104 (a 3) dropped.   ratio: 8 / 1 / 1.
# user 2: three 4s at the same ts on 203 202 201 (ties by item id) -> loo: test 203, valid 202.
#   ratio: round(2.4)=2 train, round(2.7)=3 -> 1 valid, 0 test.
# user 3: ratings 1 and 2 only -> loo: both kept in train (no valid item to be after).
cat > "$T/syn.tsv" <<'TSV'
user	item	rating	ts
1	101	5	1
1	102	4	2
1	103	1	3
1	104	3	4
1	105	5	5
1	106	2	6
1	107	4	7
1	108	5	8
1	109	1	9
1	110	4	10
2	203	4	5
2	202	4	5
2	201	4	5
3	301	1	1
3	302	2	2
TSV
"$B/split" --quiet --ratings "$T/syn.tsv" --scheme loo -o "$T/syn-loo.mp"
got=$(parts "$T/syn-loo.mp" | tr '\n' ' ')
want="1 101 train 1 102 train 1 103 train 1 105 train 1 106 train 1 107 train 1 108 valid 1 110 test 2 201 train 2 202 valid 2 203 test 3 301 train 3 302 train "
[ "$got" = "$want" ] && pass "synthetic loo parts" || fail "synthetic loo parts" "$got"
h=$(hdr "$T/syn-loo.mp")
[[ $h == *'"counts":{"train":9,"valid":2,"test":2,"dropped":2}'* && $h == *'"with_test_positive":2'* ]] && pass "synthetic loo header counts" || fail "synthetic loo header counts" "$h"
tr '\t' ',' < "$T/syn.tsv" > "$T/syn.csv"
"$B/split" --quiet --ratings "$T/syn.csv" -o "$T/syn-ratio.mp"
got=$(parts "$T/syn-ratio.mp" | awk '{c[$1" "$3]++} END{for(k in c) print k, c[k]}' | sort | tr '\n' ' ')
want="1 test 1 1 train 8 1 valid 1 2 train 2 2 valid 1 3 train 2 "
[ "$got" = "$want" ] && pass "synthetic ratio parts (CSV with header)" || fail "synthetic ratio parts (CSV with header)" "$got"
sed 1d "$T/syn.tsv" | tr '\t' '\n' | paste -d'::' - - - - | sed 's/:/::/g' > "$T/syn.dat"
"$B/split" --quiet --ratings "$T/syn.dat" --scheme loo -o "$T/syn-dat.mp"
cmp -s <(parts "$T/syn-dat.mp") <(parts "$T/syn-loo.mp") && pass "'::' separated input (MovieLens-1M style)" || fail "'::' separated input"
"$B/split" --quiet --ratings "$T/syn.tsv" --scheme loo -o "$T/syn-loo2.mp"
same "split is deterministic" "$T/syn-loo.mp" "$T/syn-loo2.mp"

# --refit (the test run's split once model selection is done): valid joins train. Synthetic,
# by hand: user 1 under loo keeps test 110, 108 becomes train, and every dislike dated before
# the test item (103 106 109) stays; 104 (a 3) is still dropped. user 2: 201 202 train, 203
# test. ratio: user 1 9 / 0 / 1; user 2 round(2.7)=3 train, 0 test; user 3 2 train.
"$B/split" --quiet --ratings "$T/syn.tsv" --scheme loo --refit -o "$T/syn-loo-refit.mp"
got=$(parts "$T/syn-loo-refit.mp" | tr '\n' ' ')
want="1 101 train 1 102 train 1 103 train 1 105 train 1 106 train 1 107 train 1 108 train 1 109 train 1 110 test 2 201 train 2 202 train 2 203 test 3 301 train 3 302 train "
[ "$got" = "$want" ] && pass "synthetic loo --refit parts" || fail "synthetic loo --refit parts" "$got"
h=$(hdr "$T/syn-loo-refit.mp")
[[ $h == *'"refit":true'* && $h == *'"counts":{"train":12,"valid":0,"test":2,"dropped":1}'* ]] && pass "synthetic loo --refit header" || fail "synthetic loo --refit header" "$h"
[[ $(hdr "$T/syn-loo.mp") != *refit* ]] && pass "no refit key without --refit" || fail "no refit key without --refit"
"$B/split" --quiet --ratings "$T/syn.tsv" --refit -o "$T/syn-ratio-refit.mp"
got=$(parts "$T/syn-ratio-refit.mp" | awk '{c[$1" "$3]++} END{for(k in c) print k, c[k]}' | sort | tr '\n' ' ')
want="1 test 1 1 train 9 2 train 3 3 train 2 "
[ "$got" = "$want" ] && pass "synthetic ratio --refit parts" || fail "synthetic ratio --refit parts" "$got"
# On ML-100K: train = train + valid (+ the 702 loo dislikes dated between valid and test items).
h=$("$B/split" --quiet --ml100k "$ML" --scheme loo --refit | "$B/mp2json" --head 0)
[[ $h == *'"counts":{"train":70672,"valid":0,"test":942,"dropped":28386}'* ]] && pass "loo --refit: ML-100K counts" || fail "loo --refit: ML-100K counts" "$h"
h=$("$B/split" --quiet --ml100k "$ML" --refit | "$B/mp2json" --head 0)
[[ $h == *'"counts":{"train":90058,"valid":0,"test":9942,"dropped":0}'* ]] && pass "ratio --refit: ML-100K counts" || fail "ratio --refit: ML-100K counts" "$h"
# Test items and parts other than valid are the same with and without --refit.
cmp -s <(parts "$T/loo.mp" | grep -v ' train$' | sed 's/ valid$/ train/' | grep test) <(parts <("$B/split" --quiet --ml100k "$ML" --scheme loo --refit) | grep test) &&
    pass "loo --refit: the same test items" || fail "loo --refit: the same test items"

# Bad inputs.
printf '1\t2\tfive\t3\n' > "$T/bad1.tsv"
expect_fail "non-numeric rating" 1 "^split: error: .*bad1.tsv:1: field 'rating': not a number: 'five'$" "$B/split" --ratings "$T/bad1.tsv"
printf '1\t2\t5\t3\n1\t3\t4\n' > "$T/bad2.tsv"
expect_fail "missing timestamp" 1 "bad2.tsv:2: field 'ts': missing" "$B/split" --ratings "$T/bad2.tsv"
printf '1\t2\t5\t3\n1\t2\t4\t9\n' > "$T/bad3.tsv"
expect_fail "duplicate rating" 1 "bad3.tsv: duplicate rating: user 1 item 2 rated twice$" "$B/split" --ratings "$T/bad3.tsv"
printf '1.5\t2\t5\t3\n' > "$T/bad4.tsv"
expect_fail "fractional user id" 1 "bad4.tsv:1: field 'user': not an id" "$B/split" --ratings "$T/bad4.tsv"
printf 'just text\n' > "$T/bad5.tsv"
expect_fail "no separator" 1 "bad5.tsv:1: no separator" "$B/split" --ratings "$T/bad5.tsv"
: > "$T/empty.tsv"
expect_fail "empty ratings" 1 "empty.tsv: no ratings$" "$B/split" --ratings "$T/empty.tsv"
expect_fail "missing ML-100K directory" 1 "nowhere/u.data: cannot open: No such file or directory$" "$B/split" --ml100k "$T/nowhere"
mkdir -p "$T/ml"; cp "$ML/u.data" "$T/ml/"; head -3 "$ML/u.item" > "$T/ml/u.item"; echo '4|Broken|' >> "$T/ml/u.item"
expect_fail "short u.item line" 1 "ml/u.item:4: field 'genres': expected 24" "$B/split" --ml100k "$T/ml" --catalog "$T/ml/items.mp"
[ ! -e "$T/ml/items.mp" ] && pass "no catalogue left after a failure" || fail "no catalogue left after a failure"
expect_fail "bad scheme" 2 "^split: --scheme: expected ratio or loo, got 'kfold'" "$B/split" --ml100k "$ML" --scheme kfold
expect_fail "ratio must sum to 1" 2 "sum to 1" "$B/split" --ml100k "$ML" --ratio 0.5,0.1,0.1
expect_fail "one input" 2 "exactly one of" "$B/split"
