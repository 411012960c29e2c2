# streams.sh - every reader rejection, through mp2json and the stages, case by case;
# round trips through pipes, zstd and the JSON view. Sourced helpers: tests/cli/lib.sh.
source "$ITREK_ROOT/tests/cli/lib.sh"
B=$BINDIR
ML=$SHARED/data/ml-100k

"$B/split" --quiet --ml100k "$ML" --scheme loo -o "$T/ia.mp"
# --- round trips
"$B/split" --quiet --ml100k "$ML" --scheme loo -z > "$T/ia.zst.pipe"
head -c 4 "$T/ia.zst.pipe" | od -An -tx1 | grep -q '28 b5 2f fd' && pass "-z writes zstd to a pipe" || fail "-z writes zstd to a pipe"
cat "$T/ia.zst.pipe" | "$B/mp2json" > "$T/a.json"
"$B/mp2json" "$T/ia.mp" > "$T/b.json"
same "zstd stream read from a pipe equals the plain one" "$T/a.json" "$T/b.json"
"$B/json2mp" "$T/b.json" | cmp -s - "$T/ia.mp" && pass "mp2json | json2mp is byte-identical" || fail "mp2json | json2mp is byte-identical"
"$B/json2mp" -o "$T/c.zst" "$T/b.json" && "$B/mp2json" "$T/c.zst" | cmp -s - "$T/b.json" && pass "json2mp .zst round trip" || fail "json2mp .zst round trip"
"$B/mf-train" --quiet --epochs 5 < "$T/ia.zst.pipe" > "$T/mf.mp" && pass "stage reads zstd on stdin" || fail "stage reads zstd on stdin"

# --- rejections: exit 1 and one line naming program, file, record and field
: > "$T/empty"
expect_fail "empty stream" 1 '^mp2json: error: .*/empty:0: empty stream: no header record$' "$B/mp2json" "$T/empty"
printf '{"schema":"itrek.items","version":1}\n' | "$B/json2mp" > "$T/items.mp"
expect_fail "wrong schema" 1 "^mf-train: error: .*/items.mp:0: field 'schema': expected itrek.interactions, got itrek.items$" "$B/mf-train" "$T/items.mp"
printf '{"schema":"itrek.interactions","version":2}\n' | "$B/json2mp" > "$T/v2.mp"
expect_fail "unknown major version" 1 "v2.mp:0: field 'version': unsupported major version 2" "$B/mf-train" "$T/v2.mp"
printf '{"user":1,"item":2}\n' | "$B/json2mp" > "$T/nohdr.mp" 2>/dev/null || printf '\x82\xa4user\x01\xa4item\x02' > "$T/nohdr.mp"
expect_fail "missing header" 1 "nohdr.mp:0: missing header: field 'schema' absent" "$B/mp2json" "$T/nohdr.mp"
sz=$(stat -c %s "$T/ia.mp"); head -c $((sz - 7)) "$T/ia.mp" > "$T/trunc.mp"
expect_fail "truncated plain stream" 1 'trunc.mp:[0-9]+: truncated stream \(' "$B/mp2json" "$T/trunc.mp"
sz=$(stat -c %s "$T/ia.zst.pipe"); head -c $((sz - 100)) "$T/ia.zst.pipe" > "$T/trunc.zst"
expect_fail "truncated zstd stream" 1 'trunc.zst:[0-9]+: truncated stream \(zstd frame unfinished\)' "$B/mp2json" "$T/trunc.zst"
expect_fail "truncated stream on a pipe" 1 '<stdin>:[0-9]+: truncated stream' bash -c "cat '$T/trunc.zst' | '$B/mp2json'"
{ echo '{"schema":"itrek.x","version":1}'; echo '{"a":1}'; printf '{"s":"%01000d"}\n' 0; } | "$B/json2mp" > "$T/big.mp"
expect_fail "oversized record" 1 'big.mp:2: record over the size cap of 500 bytes$' env ITREK_MAX_RECORD=500 "$B/mp2json" "$T/big.mp"
expect_ok "record under the cap" env ITREK_MAX_RECORD=1100 "$B/mp2json" "$T/big.mp"
"$B/json2mp" -z "$T/b.json" > "$T/big.zst"; { echo '{"schema":"itrek.x","version":1}'; printf '{"s":"%0100000d"}\n' 0; } | "$B/json2mp" -z > "$T/big.zst"
expect_fail "oversized record, zstd" 1 'big.zst:1: record over the size cap of 50000 bytes$' env ITREK_MAX_RECORD=50000 "$B/mp2json" "$T/big.zst"
printf '\xc1\xc1\xc1\xc1garbage' > "$T/garbage"
expect_fail "not msgpack" 1 'garbage:0: not a msgpack record' "$B/mp2json" "$T/garbage"
hdr=$(head -1 "$T/b.json")
mk() { { echo "$hdr"; echo "$1"; } | "$B/json2mp" > "$T/$2"; }
mk '{"user":"x","item":2,"rating":4,"ts":1,"part":"train"}' badtype.mp
expect_fail "mistyped field" 1 "badtype.mp:1: field 'user': expected integer, got string$" "$B/mf-train" "$T/badtype.mp"
mk '{"user":1,"item":2,"rating":4,"part":"train"}' missing.mp
expect_fail "missing field" 1 "missing.mp:1: missing field 'ts'$" "$B/mf-train" "$T/missing.mp"
mk '{"user":1,"item":2,"rating":4,"ts":5,"part":"later"}' badpart.mp
expect_fail "bad part value" 1 "badpart.mp:1: field 'part': 'later' is not train, valid or test$" "$B/mf-train" "$T/badpart.mp"
mk '{"user":-3,"item":2,"rating":4,"ts":5,"part":"train"}' negid.mp
expect_fail "negative id" 1 "negid.mp:1: field 'user': id -3 out of range" "$B/mf-train" "$T/negid.mp"
mk '{"user":1,"item":2,"rating":"four","ts":5,"part":"train"}' badrating.mp
expect_fail "mistyped rating" 1 "badrating.mp:1: field 'rating': expected number, got string$" "$B/candgen" --mf "$T/mf.mp" "$T/badrating.mp"
# no half-written artifact: a failing stage leaves neither the output nor a temporary file
mkdir -p "$T/art"; "$B/mf-train" --quiet "$T/missing.mp" -o "$T/art/mf.mp" 2>/dev/null
[ -z "$(ls -A "$T/art")" ] && pass "failed run leaves no artifact" || fail "failed run leaves no artifact" "$(ls "$T/art")"
"$B/mf-train" --quiet --epochs 2 "$T/ia.mp" -o "$T/art/mf.mp" && [ "$(ls -A "$T/art")" = mf.mp ] && pass "successful run leaves only its output" || fail "successful run leaves only its output"
# usage errors: exit 2, a reason and the usage
expect_fail "unknown option" 2 'usage: mp2json' "$B/mp2json" --frobnicate
expect_fail "bad option value" 2 "^mf-train: --dim: not an integer: 'big'" "$B/mf-train" --dim big
expect_ok "--help exits 0" "$B/metrics" --help
grep -q '^usage: metrics' "$T/out" && pass "--help prints usage to stdout" || fail "--help prints usage to stdout"
expect_ok "--version" "$B/split" --version
# a full disk must not look like success
if [ -w /dev/full ]; then expect_fail "write error on stdout" 1 'error' bash -c "'$B/mp2json' '$T/ia.mp' > /dev/full"; fi
