# mf-train.sh - mf-train on ML-100K loo (small dims and few epochs): the header's params and
# counts, every documented option reaching the header, early stopping and --refit (no valid
# part), determinism, zstd in and out, stdin/stdout, the summary line, and bad inputs.
# Sourced helpers: tests/cli/lib.sh.
source "$ITREK_ROOT/tests/cli/lib.sh"
B=$BINDIR
ML=$SHARED/data/ml-100k
hdr() { "$B/mp2json" --head 0 "$1"; }
has() { # NAME FILE SUBSTRING... : the header of FILE holds every SUBSTRING
    local n=$1 f=$2 h; shift 2; h=$(hdr "$f")
    for s in "$@"; do [[ $h == *"$s"* ]] || { fail "$n" "no '$s' in $h"; return; }; done
    pass "$n"
}
"$B/split" --quiet --ml100k "$ML" --scheme loo -o "$T/loo.mp"
"$B/split" --quiet --ml100k "$ML" --scheme loo --refit -o "$T/refit.mp"
F=(--threads 2 --dim 8 --epochs 10)

# ---- a normal run: header, records, summary line
expect_ok "train on loo" "$B/mf-train" "${F[@]}" "$T/loo.mp" -o "$T/m.mp"
# the summary is the last line; before it only progress lines (a run of a second or more, as
# under the sanitizers, draws a final progress line: io/progress.c)
tail -1 "$T/err" | grep -Eq '^mf-train: 10 epochs, best epoch (5|10), valid NDCG@10 0\.[0-9]{5}, [0-9.]+ s, [0-9]+ triples/s$' &&
    ! head -n -1 "$T/err" | grep -Evq '^mf-train: [0-9]+/[0-9]+ \(' \
    && pass "summary line on stderr" || fail "summary line on stderr" "$(cat "$T/err")"
[ ! -s "$T/out" ] && pass "nothing on stdout with -o" || fail "nothing on stdout with -o"
has "header: schema, dim, users, items" "$T/m.mp" '"schema":"itrek.mf","version":1,"producer":"mf-train ' '"dim":8,"users":944,"items":1681,'
has "header: default params" "$T/m.mp" '"params":{"loss":"bpr","lr":0.10000000000000001,"reg":0.01,"reg_bias":0.01,"init_std":0.10000000000000001,"epochs":10,"batch":1,"negatives":4,"eval_every":5,"patience":4,"metric":"ndcg10","positives":"liked","recency":5.0,"recency_floor":0.050000000000000003,"seed":1,"threads":2}' \
    '"inputs":{"interactions":"'"$T"'/loo.mp"}' '"epochs_run":10,"metric":"NDCG@10"}'
# one record per user id (0..943, user 0 unused) and one per item seen in the data
nu=$("$B/mp2json" "$T/m.mp" | grep -c '^{"user":'); ni=$("$B/mp2json" "$T/m.mp" | grep -c '^{"item":')
[ "$nu" = 944 ] && [ "$ni" -ge 1600 ] && [ "$ni" -le 1680 ] && pass "records: 944 users, the catalogue's items" || fail "records" "$nu users, $ni items"
"$B/mp2json" "$T/m.mp" | sed -n 2p | grep -Eq '^\{"user":0,"vec":\{"\$bin":"[A-Za-z0-9+/=]{44}"\},"bias":0\.0\}$' \
    && pass "user record: 8 float32 in a bin, bias 0" || fail "user record" "$("$B/mp2json" --head 1 "$T/m.mp" | tail -1)"
best=$(hdr "$T/m.mp" | sed 's/.*"best":\([0-9.]*\),.*/\1/')
grep -q "NDCG@10 ${best:0:7}" "$T/err" && pass "summary names the header's best value" || fail "summary names the header's best value" "$best vs $(cat "$T/err")"

# ---- determinism: same inputs, seed and threads -> same bytes; another seed -> other bytes
"$B/mf-train" --quiet "${F[@]}" "$T/loo.mp" -o "$T/m2.mp"
same "same seed and threads: byte-identical" "$T/m.mp" "$T/m2.mp"
"$B/mf-train" --quiet "${F[@]}" --seed 7 "$T/loo.mp" -o "$T/m7.mp"
cmp -s "$T/m.mp" "$T/m7.mp" && fail "--seed 7 gives another model" || pass "--seed 7 gives another model"
has "--seed in the header" "$T/m7.mp" '"seed":7,'
"$B/mf-train" --quiet "${F[@]}" --seed 7 "$T/loo.mp" -o "$T/m7b.mp"
same "--seed 7 twice: byte-identical" "$T/m7.mp" "$T/m7b.mp"
"$B/mf-train" --quiet --threads 1 --dim 8 --epochs 10 "$T/loo.mp" -o "$T/t1a.mp"
"$B/mf-train" --quiet --threads 1 --dim 8 --epochs 10 "$T/loo.mp" -o "$T/t1b.mp"
same "one thread: byte-identical" "$T/t1a.mp" "$T/t1b.mp"
has "--threads in the header" "$T/t1a.mp" '"threads":1}'

# ---- stdin / stdout / zstd
"$B/mf-train" --quiet "${F[@]}" < "$T/loo.mp" > "$T/pipe.mp" && pass "stdin to stdout" || fail "stdin to stdout"
has "stdin is named <stdin>" "$T/pipe.mp" '"inputs":{"interactions":"<stdin>"}'
"$B/mf-train" --quiet "${F[@]}" -o "$T/pipe-o.mp" < "$T/loo.mp"
same "stdout and -o write the same bytes" "$T/pipe.mp" "$T/pipe-o.mp"
"$B/mp2json" "$T/loo.mp" | "$B/json2mp" -z > "$T/loo.zst.pipe"
"$B/mf-train" --quiet "${F[@]}" < "$T/loo.zst.pipe" > "$T/pipez.mp"
same "zstd input gives the same model" "$T/pipe.mp" "$T/pipez.mp"
"$B/mf-train" --quiet "${F[@]}" -z < "$T/loo.mp" > "$T/out.zst.pipe"
head -c 4 "$T/out.zst.pipe" | od -An -tx1 | grep -q '28 b5 2f fd' && pass "-z writes zstd to stdout" || fail "-z writes zstd to stdout"
"$B/mf-train" --quiet "${F[@]}" -o "$T/m.zst" < "$T/loo.mp"
head -c 4 "$T/m.zst" | od -An -tx1 | grep -q '28 b5 2f fd' && pass "a .zst name compresses" || fail "a .zst name compresses"
cmp -s <("$B/mp2json" "$T/m.zst") <("$B/mp2json" "$T/pipe.mp") && cmp -s <("$B/mp2json" < "$T/out.zst.pipe") <("$B/mp2json" "$T/pipe.mp") \
    && pass "compressed models read back the same" || fail "compressed models read back the same"
"$B/mf-train" --quiet "${F[@]}" -o "$T/mzz.mp" -z < "$T/loo.mp"
head -c 4 "$T/mzz.mp" | od -An -tx1 | grep -q '28 b5 2f fd' && pass "-z compresses a plain -o name" || fail "-z compresses a plain -o name"
"$B/candgen" --mf "$T/m.zst" "$T/loo.mp" -o "$T/cz.mp" && "$B/candgen" --mf "$T/pipe.mp" "$T/loo.mp" -o "$T/cp.mp" \
    && cmp -s <("$B/mp2json" "$T/cz.mp" | tail -n +2) <("$B/mp2json" "$T/cp.mp" | tail -n +2) \
    && pass "candgen reads a compressed model" || fail "candgen reads a compressed model"

# ---- options reach the header (and training)
"$B/mf-train" --quiet --threads 2 --dim 4 --lr 0.05 --reg 0.02 --reg-bias 0.03 --init-std 0.2 --epochs 4 --batch 16 \
    --negatives 2 --eval-every 2 --patience 3 --metric hr10 --positives all --recency 0 --recency-floor 0.1 --seed 3 "$T/loo.mp" -o "$T/o.mp"
has "every option in the header" "$T/o.mp" '"dim":4,' '"params":{"loss":"bpr","lr":0.050000000000000003,"reg":0.02,"reg_bias":0.029999999999999999,"init_std":0.20000000000000001,"epochs":4,"batch":16,"negatives":2,"eval_every":2,"patience":3,"metric":"hr10","positives":"all","recency":0.0,"recency_floor":0.10000000000000001,"seed":3,"threads":2}' \
    '"epochs_run":4,"metric":"HR@10"}'
"$B/mf-train" "${F[@]}" --metric hr10 "$T/loo.mp" -o "$T/hr.mp" 2> "$T/hr.err"
grep -q 'valid HR@10 0\.' "$T/hr.err" && pass "--metric hr10 in the summary line" || fail "--metric hr10 in the summary line" "$(cat "$T/hr.err")"
for o in "--lr 0.05" "--reg 0.1" "--reg-bias 0.5" "--init-std 0.01" "--batch 8" "--negatives 1" "--positives all" "--recency 0" "--recency-floor 0.5"; do
    # shellcheck disable=SC2086
    "$B/mf-train" --quiet "${F[@]}" $o "$T/loo.mp" -o "$T/opt.mp"
    cmp -s <("$B/mp2json" "$T/opt.mp" | tail -n +2) <("$B/mp2json" "$T/m.mp" | tail -n +2) && fail "$o changes the vectors" || pass "$o changes the vectors"
done
"$B/mf-train" --quiet --threads 2 --dim 8 --epochs 20 --eval-every 1 --patience 1 --lr 2 "$T/loo.mp" -o "$T/es.mp"
h=$(hdr "$T/es.mp"); run=$(sed 's/.*"epochs_run":\([0-9]*\).*/\1/' <<<"$h"); be=$(sed 's/.*"best_epoch":\([0-9]*\).*/\1/' <<<"$h")
[ "$run" -lt 20 ] && [ "$run" = $((be + 1)) ] && pass "early stopping: --patience 1 stops one evaluation after the best" || fail "early stopping" "$h"
"$B/mf-train" --quiet --threads 2 --dim 8 --epochs 7 --eval-every 3 "$T/loo.mp" -o "$T/ev.mp"
has "--eval-every 3 of 7 epochs: all 7 run" "$T/ev.mp" '"epochs_run":7,'
hdr "$T/ev.mp" | grep -Eq '"best_epoch":[367],' && pass "--eval-every 3: evaluated at epochs 3, 6 and the last" || fail "--eval-every 3: best epoch" "$(hdr "$T/ev.mp")"

# ---- no valid part (split --refit): exactly --epochs epochs, best null
expect_ok "train on a refit split" "$B/mf-train" --threads 2 --dim 8 --epochs 3 "$T/refit.mp" -o "$T/r.mp"
grep -Eq '^mf-train: 3 epochs, no valid part \(last epoch kept\), [0-9.]+ s, [0-9]+ triples/s$' "$T/err" && pass "refit: summary line" || fail "refit: summary line" "$(cat "$T/err")"
has "refit: best null, best_epoch 0, all epochs run" "$T/r.mp" '"valid":{"best":null,"best_epoch":0,"epochs_run":3,"metric":"NDCG@10"}'

# ---- --quiet, --help, --version
expect_ok "--quiet" "$B/mf-train" --quiet "${F[@]}" "$T/loo.mp" -o "$T/q.mp"
[ ! -s "$T/err" ] && pass "--quiet: nothing on stderr" || fail "--quiet: nothing on stderr" "$(cat "$T/err")"
expect_ok "--help" "$B/mf-train" --help
grep -q '^usage: mf-train \[options\] \[INTERACTIONS\] \[-o OUT\]$' "$T/out" && grep -q -- '--recency-floor F' "$T/out" && pass "--help: usage on stdout" || fail "--help: usage on stdout"
expect_ok "--version" "$B/mf-train" --version
grep -Eq '^mf-train [0-9]+\.[0-9]+\.[0-9]+$' "$T/out" && pass "--version prints name and version" || fail "--version" "$(cat "$T/out")"

# ---- bad inputs (exact messages: tests/cli/golden/mf-train)
mkdir -p "$T/art"
expect_fail "wrong schema" 1 "^mf-train: error: .*/m.mp:0: field 'schema': expected itrek.interactions, got itrek.mf$" "$B/mf-train" "$T/m.mp" -o "$T/art/x.mp"
expect_fail "missing input" 1 "^mf-train: error: .*/nope.mp: cannot open: No such file or directory$" "$B/mf-train" "$T/nope.mp" -o "$T/art/x.mp"
head -c 3000 "$T/loo.mp" > "$T/trunc.mp"
expect_fail "truncated input" 1 "^mf-train: error: .*/trunc.mp:[0-9]+: truncated stream" "$B/mf-train" "$T/trunc.mp" -o "$T/art/x.mp"
[ -z "$(ls -A "$T/art")" ] && pass "no output left after errors" || fail "no output left after errors" "$(ls -A "$T/art")"
expect_fail "unwritable output" 1 "^mf-train: error: $T/nodir/x.mp: cannot create: No such file or directory$" "$B/mf-train" --quiet --epochs 1 --dim 2 "$T/loo.mp" -o "$T/nodir/x.mp"
expect_fail "--dim 0" 2 "^mf-train: --dim: 0 is outside \[1, 4096\]$" "$B/mf-train" --dim 0 "$T/loo.mp"
expect_fail "--lr not a number" 2 "^mf-train: --lr: not a number: 'fast'$" "$B/mf-train" --lr fast "$T/loo.mp"
expect_fail "--metric unknown" 2 "^mf-train: --metric: expected ndcg10 or hr10, got 'auc'$" "$B/mf-train" --metric auc "$T/loo.mp"
expect_fail "--positives unknown" 2 "^mf-train: --positives: expected liked or all, got 'some'$" "$B/mf-train" --positives some "$T/loo.mp"
expect_fail "--recency-floor above 1" 2 "^mf-train: --recency-floor: 2 is outside \[0, 1\]$" "$B/mf-train" --recency-floor 2 "$T/loo.mp"
expect_fail "two inputs" 2 "^mf-train: at most one input file$" "$B/mf-train" "$T/loo.mp" "$T/loo.mp"
expect_fail "unknown option" 2 "^mf-train: unknown option '--frob'$" "$B/mf-train" --frob
