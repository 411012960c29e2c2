# candgen.sh - candgen on an MF model of ML-100K loo: header, users, exclusions (train; valid
# too for test), order, -n, --users eval, --for valid, thread-count independence, determinism,
# zstd in and out, stdin/stdout, and bad inputs. Sourced helpers: tests/cli/lib.sh.
source "$ITREK_ROOT/tests/cli/lib.sh"
B=$BINDIR
ML=$SHARED/data/ml-100k
hdr() { "$B/mp2json" --head 0 "$1"; }
recs() { "$B/mp2json" "$1" | tail -n +2; }
"$B/split" --quiet --ml100k "$ML" --scheme loo -o "$T/loo.mp"
"$B/mf-train" --quiet --threads 2 --dim 8 --epochs 10 "$T/loo.mp" -o "$T/mf.mp"
# user item part, one line per interaction
"$B/mp2json" "$T/loo.mp" | tail -n +2 | sed 's/.*"user":\([0-9]*\),"item":\([0-9]*\),.*"part":"\([a-z]*\)".*/\1 \2 \3/' > "$T/ia.txt"
# user item rank, one line per candidate
flat() { recs "$1" | sed 's/.*"user":\([0-9]*\),"items":\[\([0-9,]*\)\].*/\1 \2/' | awk '{n=split($2,a,","); for(i=1;i<=n;i++) print $1, a[i], i-1}'; }

# ---- a normal run
expect_ok "candidates for test" "$B/candgen" --mf "$T/mf.mp" "$T/loo.mp" -o "$T/c.mp"
[ ! -s "$T/out" ] && [ ! -s "$T/err" ] && pass "silent with -o" || fail "silent with -o" "$(cat "$T/err")"
h=$(hdr "$T/c.mp")
[[ $h == '{"schema":"itrek.candidates","version":1,"producer":"candgen '*'"params":{"for":"test","n":10,"users":"all","scheme":"loo"},"inputs":{"interactions":"'"$T"'/loo.mp","mf":"'"$T"'/mf.mp"},"users":943}' ]] \
    && pass "header: params, inputs, 943 users" || fail "header" "$h"
[ "$(recs "$T/c.mp" | wc -l)" = 943 ] && pass "one record per user" || fail "one record per user"
recs "$T/c.mp" | awk -F'"items":\\[' '{split($2,a,"]"); if (split(a[1],b,",") != 10) bad++} END{exit bad>0}' && pass "10 items each" || fail "10 items each"
recs "$T/c.mp" | sed 's/.*"scores":\[\([^]]*\)\].*/\1/' | awk -F, '{for(i=2;i<=NF;i++) if ($i+0 > $(i-1)+0) bad++} END{exit bad>0}' \
    && pass "scores descend" || fail "scores descend"
flat "$T/c.mp" > "$T/c.txt"
awk 'NR==FNR{if ($3!="test") seen[$1" "$2]=1; next} ($1" "$2) in seen{bad++} END{exit bad>0}' "$T/ia.txt" "$T/c.txt" \
    && pass "--for test: no train or valid item of the user" || fail "--for test: no train or valid item of the user"
awk '{print $1}' "$T/c.txt" | uniq | awk '$1 < p {bad++} {p=$1} END{exit bad>0}' && pass "users in increasing order" || fail "users in increasing order"

# ---- options
"$B/candgen" --mf "$T/mf.mp" -n 5 "$T/loo.mp" -o "$T/c5.mp"
hdr "$T/c5.mp" | grep -q '"params":{"for":"test","n":5,' && pass "-n 5 in the header" || fail "-n 5 in the header"
cmp -s <(flat "$T/c5.mp") <(awk '$3 < 5' "$T/c.txt") && pass "-n 5: the first 5 of the top 10" || fail "-n 5: the first 5 of the top 10"
"$B/candgen" --mf "$T/mf.mp" --top 5 "$T/loo.mp" -o "$T/c5b.mp"
same "--top equals -n" "$T/c5.mp" "$T/c5b.mp"
"$B/candgen" --mf "$T/mf.mp" --users eval "$T/loo.mp" -o "$T/ce.mp"
hdr "$T/ce.mp" | grep -q '"users":"eval",.*"users":942}$' && pass "--users eval: 942 users" || fail "--users eval: 942 users" "$(hdr "$T/ce.mp")"
"$B/mp2json" "$T/loo.mp" | grep '"part":"test","liked":true' | sed 's/.*"user":\([0-9]*\),.*/\1/' | sort -u > "$T/tu"; recs "$T/ce.mp" | sed 's/.*"user":\([0-9]*\),.*/\1/' | sort -u > "$T/cu"
same "--users eval: the users with a liked test item" "$T/tu" "$T/cu"
# (items only: the scores' last bits depend on the blocks of 64 users sgemm sees)
cmp -s <(recs "$T/ce.mp" | sed 's/,"scores".*//') <(recs "$T/c.mp" | grep -F -f <(sed 's/.*/{"user":&,/' "$T/tu") | sed 's/,"scores".*//') \
    && pass "--users eval: the same lists" || fail "--users eval: the same lists"
"$B/candgen" --mf "$T/mf.mp" --for valid "$T/loo.mp" -o "$T/cv.mp"
hdr "$T/cv.mp" | grep -q '"params":{"for":"valid",' && pass "--for valid in the header" || fail "--for valid in the header"
flat "$T/cv.mp" > "$T/cv.txt"
awk 'NR==FNR{if ($3=="train") seen[$1" "$2]=1; next} ($1" "$2) in seen{bad++} END{exit bad>0}' "$T/ia.txt" "$T/cv.txt" \
    && pass "--for valid: no train item" || fail "--for valid: no train item"
awk 'NR==FNR{if ($3=="valid") v[$1" "$2]=1; next} ($1" "$2) in v{hit++} END{exit !(hit>0)}' "$T/ia.txt" "$T/cv.txt" \
    && pass "--for valid: valid items may appear" || fail "--for valid: valid items may appear"

# ---- determinism and threads
"$B/candgen" --mf "$T/mf.mp" "$T/loo.mp" -o "$T/c2.mp"
same "same inputs: byte-identical" "$T/c.mp" "$T/c2.mp"
"$B/candgen" --threads 1 --mf "$T/mf.mp" "$T/loo.mp" -o "$T/ct1.mp"
"$B/candgen" --threads 3 --mf "$T/mf.mp" "$T/loo.mp" -o "$T/ct3.mp"
same "--threads 1 equals the default" "$T/c.mp" "$T/ct1.mp"
same "--threads 3 equals the default" "$T/c.mp" "$T/ct3.mp"
"$B/candgen" --seed 9 --mf "$T/mf.mp" "$T/loo.mp" -o "$T/cs.mp"
same "--seed does not matter" "$T/c.mp" "$T/cs.mp"

# ---- stdin / stdout / zstd
"$B/candgen" --mf "$T/mf.mp" < "$T/loo.mp" > "$T/p.mp" && pass "stdin to stdout" || fail "stdin to stdout"
hdr "$T/p.mp" | grep -q '"inputs":{"interactions":"<stdin>",' && pass "stdin is named <stdin>" || fail "stdin is named <stdin>"
cmp -s <(recs "$T/p.mp") <(recs "$T/c.mp") && pass "stdin: the same candidates" || fail "stdin: the same candidates"
"$B/mp2json" "$T/loo.mp" | "$B/json2mp" -z > "$T/loo.zst.pipe"
"$B/candgen" --mf "$T/mf.mp" < "$T/loo.zst.pipe" > "$T/pz.mp"
same "zstd interactions on stdin" "$T/p.mp" "$T/pz.mp"
"$B/mp2json" "$T/mf.mp" | "$B/json2mp" -o "$T/mf.zst"
"$B/candgen" --mf "$T/mf.zst" "$T/loo.mp" > "$T/cmz.mp"
cmp -s <(recs "$T/cmz.mp") <(recs "$T/c.mp") && pass "a zstd model" || fail "a zstd model"
"$B/candgen" --mf "$T/mf.mp" -z "$T/loo.mp" > "$T/cz.pipe"
head -c 4 "$T/cz.pipe" | od -An -tx1 | grep -q '28 b5 2f fd' && pass "-z writes zstd to stdout" || fail "-z writes zstd to stdout"
"$B/candgen" --mf "$T/mf.mp" "$T/loo.mp" -o "$T/c.zst"
head -c 4 "$T/c.zst" | od -An -tx1 | grep -q '28 b5 2f fd' && pass "a .zst name compresses" || fail "a .zst name compresses"
cmp -s <("$B/mp2json" < "$T/cz.pipe") <("$B/mp2json" "$T/c.mp") && cmp -s <("$B/mp2json" "$T/c.zst") <("$B/mp2json" "$T/c.mp") \
    && pass "compressed candidates read back the same" || fail "compressed candidates read back the same"
"$B/split" --quiet --ml100k "$ML" --scheme loo | "$B/candgen" --mf "$T/mf.mp" | "$B/metrics" --interactions "$T/loo.mp" --candidates /dev/stdin --bootstrap 0 --format csv > "$T/m.csv" \
    && grep -q '^loo,test,942,base,' "$T/m.csv" && pass "split | candgen | metrics" || fail "split | candgen | metrics" "$(cat "$T/m.csv")"

# ---- --help, --version
expect_ok "--help" "$B/candgen" --help
grep -q '^usage: candgen --mf MODEL \[options\] \[INTERACTIONS\] \[-o OUT\]$' "$T/out" && pass "--help: usage on stdout" || fail "--help: usage on stdout"
expect_ok "--version" "$B/candgen" --version
grep -Eq '^candgen [0-9]+\.[0-9]+\.[0-9]+$' "$T/out" && pass "--version prints name and version" || fail "--version" "$(cat "$T/out")"

# ---- bad inputs (exact messages: tests/cli/golden/candgen)
mkdir -p "$T/art"
printf '1\t1\t5\t1\n1\t2\t4\t2\n1\t3\t5\t3\n2\t1\t5\t1\n' > "$T/tiny.tsv"
"$B/split" --quiet --ratings "$T/tiny.tsv" --scheme loo -o "$T/tiny.mp"; "$B/mf-train" --quiet --dim 2 --epochs 1 "$T/tiny.mp" -o "$T/tinymf.mp"
expect_fail "a model smaller than the interactions" 1 "^candgen: error: $T/tinymf.mp:0: field 'users'/'items': the model covers 3 users and 4 items, the interactions need 944 and 1681$" \
    "$B/candgen" --mf "$T/tinymf.mp" "$T/loo.mp" -o "$T/art/c.mp"
expect_fail "interactions as the model" 1 "^candgen: error: $T/loo.mp:0: field 'schema': expected itrek.mf, got itrek.interactions$" "$B/candgen" --mf "$T/loo.mp" "$T/loo.mp" -o "$T/art/c.mp"
expect_fail "a model as the interactions" 1 "^candgen: error: $T/mf.mp:0: field 'schema': expected itrek.interactions, got itrek.mf$" "$B/candgen" --mf "$T/mf.mp" "$T/mf.mp" -o "$T/art/c.mp"
expect_fail "missing model" 1 "^candgen: error: $T/nope.mp: cannot open: No such file or directory$" "$B/candgen" --mf "$T/nope.mp" "$T/loo.mp" -o "$T/art/c.mp"
head -c 2000 "$T/mf.mp" > "$T/mftrunc.mp"
expect_fail "truncated model" 1 "^candgen: error: $T/mftrunc.mp:[0-9]+: truncated stream" "$B/candgen" --mf "$T/mftrunc.mp" "$T/loo.mp" -o "$T/art/c.mp"
[ -z "$(ls -A "$T/art")" ] && pass "no output left after errors" || fail "no output left after errors" "$(ls -A "$T/art")"
expect_fail "--mf is required" 2 "^candgen: --mf MODEL is required$" "$B/candgen" "$T/loo.mp"
expect_fail "--for unknown" 2 "^candgen: --for: expected test or valid, got 'train'$" "$B/candgen" --mf "$T/mf.mp" --for train "$T/loo.mp"
expect_fail "--users unknown" 2 "^candgen: --users: expected all or eval, got 'some'$" "$B/candgen" --mf "$T/mf.mp" --users some "$T/loo.mp"
expect_fail "-n 0" 2 "^candgen: --top: 0 is outside \[1, 100000\]$" "$B/candgen" --mf "$T/mf.mp" -n 0 "$T/loo.mp"
expect_fail "two inputs" 2 "^candgen: at most one input file$" "$B/candgen" --mf "$T/mf.mp" "$T/loo.mp" "$T/loo.mp"
