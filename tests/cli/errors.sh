#!/usr/bin/env bash
# errors.sh - golden error messages: every stage's error cases, each compared EXACTLY (exit code,
# stdout, stderr) with the files committed under tests/cli/golden/<stage>/<case>.{rc,out,err}.
#
# The cases are the lines of tests/cli/golden/cases.txt:
#     STAGE/CASE[:allow,...]  COMMAND
# COMMAND is a bash command line run in a fresh, empty scratch directory that holds only `in`
# (a link to the prepared inputs: tests/cli/golden/inputs/*.jsonl converted with json2mp to
# in/NAME.mp, every other file there copied as is, plus the few built below), with the stages
# first on PATH, so messages name stable relative paths (in/ia.mp) and nothing is normalised.
# Besides the golden comparison each case must: exit non-zero; with exit 1, print exactly one
# line on stderr; with exit 2 (usage), print one line and then the stage's --help text; leave
# nothing behind in the scratch directory (no output, no temporary). A known deviation is
# allowed per case by a flag after the name (reported, not fixed, here): multiline (stderr may
# hold more than one line), leftover (files may be left), rc0 (may exit 0).
#
# Regenerate the goldens after an intended change of a message (then review `git diff`):
#     UPDATE_GOLDEN=1 make test TESTS=cli/errors SHARED=/work/shared
# or, without make: UPDATE_GOLDEN=1 BINDIR=bin SHARED=/work/shared bash tests/cli/errors.sh
# One case only: ONLY=split/no-input (a substring of STAGE/CASE) in the environment.
set -u
ITREK_ROOT=${ITREK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BINDIR=$(cd "${BINDIR:-$ITREK_ROOT/bin}" && pwd)
SHARED=${SHARED:-$(cd "$ITREK_ROOT/.." && pwd)/shared}
TMPROOT=${TMPROOT:-${TMPDIR:-/tmp}}
export ITREK_ROOT BINDIR SHARED TMPROOT
source "$ITREK_ROOT/tests/cli/lib.sh"
# Under the sanitizers (make SAN=1 test) a stage that fails exits from die() with its
# allocations still live; LeakSanitizer would append its report to the one line compared here.
# That is not a leak of a running program, so leak detection is off for these failing runs
# only (every other test keeps it on, and their runs end normally).
[ -n "${SAN:-}" ] && export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
G=$ITREK_ROOT/tests/cli/golden
UPDATE=${UPDATE_GOLDEN:-0}
ONLY=${ONLY:-}
B=$BINDIR

# ---- inputs
IN=$T/in
mkdir -p "$IN"
for f in "$G"/inputs/*; do
    n=$(basename "$f")
    case $n in
    *.jsonl) "$B/json2mp" -o "$IN/${n%.jsonl}.mp" "$f" || { fail "inputs: json2mp $n"; exit 0; } ;;
    *) cp "$f" "$IN/$n" ;;
    esac
done
"$B/json2mp" -o "$IN/ia.zst" "$G/inputs/ia.jsonl"
sz=$(stat -c %s "$IN/ia.mp"); head -c $((sz - 7)) "$IN/ia.mp" > "$IN/trunc.mp"
sz=$(stat -c %s "$IN/ia.zst"); head -c $((sz - 20)) "$IN/ia.zst" > "$IN/trunc.zst"
head -c 40 "$IN/mf.mp" > "$IN/mf-trunc.mp"
for x in r q a cand; do sz=$(stat -c %s "$IN/$x.mp"); head -c $((sz - 7)) "$IN/$x.mp" > "$IN/trunc-$x.mp"; done
printf '\xc1\xc1\xc1\xc1garbage' > "$IN/garbage"
printf '\x28\xb5\x2f\xfd\x00\x00garbage' > "$IN/badzstd.zst"
: > "$IN/empty"
printf '\x82\xa4user\x01\xa4item\x02' > "$IN/nohdr.mp"
# headers json2mp refuses to write: {"schema":"itrek.interactions","version":"1"}, {"version":1}
printf '\x82\xa6schema\xb2itrek.interactions\xa7version\xa11' > "$IN/ia-strversion.mp"
printf '\x81\xa7version\x01' > "$IN/noschema.mp"
{ echo '{"schema":"itrek.interactions","version":1}'; printf '{"user":1,"item":2,"rating":4,"ts":1,"part":"train","s":"%01000d"}\n' 0; } | "$B/json2mp" -o "$IN/big.mp"
# ML-100K-shaped directories: u.data only; u.item with a short line
mkdir -p "$IN/ml-noitem" "$IN/ml-short"
printf '1\t101\t5\t1\n' > "$IN/ml-noitem/u.data"; cp "$IN/ml-noitem/u.data" "$IN/ml-short/u.data"
printf '101|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n102|Broken|\n' > "$IN/ml-short/u.item"
# models: stories260K as GGUF (a link) and converted to the Hugging Face layout; a truncated copy
ln -s "$SHARED/models/stories260K-gguf/stories260K.gguf" "$IN/model.gguf"
"$B/llm" convert-llama2c "$SHARED/models/stories260K/stories260K.bin" "$SHARED/models/stories260K/tok512.bin" "$IN/hf" >/dev/null 2>&1 \
    || fail "inputs: llm convert-llama2c stories260K"
mkdir -p "$IN/hf-trunc"; cp "$IN/hf/config.json" "$IN/hf/tokenizer.model" "$IN/hf-trunc/" 2>/dev/null
head -c 5000 "$IN/hf/model.safetensors" > "$IN/hf-trunc/model.safetensors" 2>/dev/null
mkdir -p "$IN/hf-badcfg"; cp "$IN/hf/model.safetensors" "$IN/hf/tokenizer.model" "$IN/hf-badcfg/" 2>/dev/null; echo '{"dim": ' > "$IN/hf-badcfg/config.json"
head -c 3000 "$IN/model.gguf" > "$IN/trunc.gguf" 2>/dev/null
mkdir -p "$IN/noadapter"
# instructions for lora-train: a header and one example
printf '{"schema":"itrek.instructions","version":1,"params":{}}\n{"task":"pointwise","user":1,"prompt":"Rate it.","response":"4"}\n' | "$B/json2mp" -o "$IN/ins.mp"

# ---- the stages' --help, for the usage errors' second part
declare -A HELP
for s in $(ls "$B"); do HELP[$s]=$("$B/$s" --help 2>/dev/null; echo x); done

# ---- cases
export PATH="$B:$PATH"
n_cases=0
declare -A seen
while IFS= read -r line || [ -n "$line" ]; do
    [[ -z ${line// } || $line == \#* ]] && continue
    id=${line%% *}; cmd=${line#* }
    flags=""; [[ $id == *:* ]] && { flags=${id#*:}; id=${id%%:*}; }
    stage=${id%%/*}; case_=${id#*/}
    [ -n "$ONLY" ] && [[ $id != *"$ONLY"* ]] && continue
    if [ -n "${seen[$id]:-}" ]; then fail "$id" "case named twice in cases.txt"; continue; fi
    seen[$id]=1; n_cases=$((n_cases + 1))
    d=$T/run/$stage/$case_; mkdir -p "$d"; ln -s "$IN" "$d/in"
    ( cd "$d" && exec bash -c "$cmd" ) > "$T/case.out" 2> "$T/case.err" < /dev/null
    rc=$?
    echo "$rc" > "$T/case.rc"
    left=$(cd "$d" && ls -A | grep -vx in)
    g=$G/$stage/$case_
    if [ "$UPDATE" = 1 ]; then
        mkdir -p "$G/$stage"
        cp "$T/case.rc" "$g.rc"; cp "$T/case.out" "$g.out"; cp "$T/case.err" "$g.err"
    fi
    why=()
    for x in rc out err; do
        if [ ! -f "$g.$x" ]; then why+=("no golden $stage/$case_.$x (UPDATE_GOLDEN=1 writes it)")
        elif ! cmp -s "$g.$x" "$T/case.$x"; then
            # the diff: in full on stderr, its first lines in the FAIL line (tests/run.sh shows those)
            echo "--- $id: $x: golden (-) vs now (+)" >&2
            diff -u "$g.$x" "$T/case.$x" | tail -n +3 | sed 's/^/    /' >&2
            why+=("$x differs from the golden: $(diff -u "$g.$x" "$T/case.$x" | tail -n +4 | grep '^[-+]' | head -4 | cut -c1-160 | tr '\n' '|')")
        fi
    done
    if [ "$rc" = 0 ] && [[ ,$flags, != *,rc0,* ]]; then why+=("exit 0 on a bad input"); fi
    nl=$(wc -l < "$T/case.err")
    if [[ ,$flags, != *,multiline,* ]]; then
        if [ "$rc" = 2 ]; then
            if [ "$(tail -n +2 "$T/case.err"; echo x)" != "${HELP[$stage]:-}" ]; then why+=("a usage error: stderr is not one line and then the --help text"); fi
        elif [ "$rc" != 0 ] && [ "$nl" != 1 ]; then why+=("stderr has $nl lines, not one"); fi
        [ -n "$(tail -c 1 "$T/case.err")" ] && why+=("stderr does not end with a newline")
    fi
    if [ -n "$left" ] && [[ ,$flags, != *,leftover,* ]]; then why+=("left behind: $(echo $left)"); fi
    if [ ${#why[@]} -eq 0 ]; then pass "$id"; else fail "$id" "$(IFS=';'; echo "${why[*]}") [$(head -c 200 "$T/case.err" | head -1)]"; fi
    rm -rf "$d"
done < "$G/cases.txt"

# every golden file belongs to a case
if [ -z "$ONLY" ]; then
    for f in "$G"/*/*.rc "$G"/*/*.out "$G"/*/*.err; do
        [ -e "$f" ] || continue
        rel=${f#$G/}; id=${rel%.*}
        [[ $rel == inputs/* ]] && continue
        [ -n "${seen[$id]:-}" ] || fail "orphan golden $rel" "no case $id in cases.txt (delete the file)"
    done
    [ "$n_cases" -gt 0 ] && pass "golden cases: $n_cases" || fail "golden cases: none found"
fi
