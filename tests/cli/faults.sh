#!/usr/bin/env bash
# tests/cli/faults.sh - injected I/O faults (issue 27, item 2; io/fault.h). For each stage, a
# small run first counts its I/O calls (ITREK_FAULT_COUNT); then every call N in turn
#   - fails with ENOSPC, then EIO: the stage exits 1 with one line, and leaves nothing under its
#     output's name and no temporary beside it;
#   - is interrupted (EINTR), then moves half its bytes (short): the stage succeeds and writes
#     the same bytes as the undisturbed run.
# The undisturbed rerun is that first run: nothing a failed run left can change it.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
B=$BINDIR
# under SAN=1: a stage that dies exits with live allocations (see tests/cli/errors.sh)
[ -n "${SAN:-}" ] && export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
cd "$T" || exit 1
printf '1\t1\t5\t100\n1\t2\t4\t200\n1\t4\t2\t250\n2\t1\t3\t100\n2\t3\t5\t300\n2\t4\t4\t310\n3\t2\t4\t50\n3\t3\t1\t60\n3\t1\t5\t70\n4\t4\t5\t10\n4\t2\t4\t20\n4\t3\t4\t30\n' > r.tsv
"$B/split" --quiet --scheme loo --ratings r.tsv -o ia.mp || fail "setup: split"
"$B/mf-train" --quiet --epochs 2 --dim 4 --threads 1 ia.mp -o mf.mp || fail "setup: mf-train"
"$B/candgen" --quiet --threads 1 --mf mf.mp -n 3 ia.mp -o cand.mp || fail "setup: candgen"

# sweep NAME OUT CMD...: CMD writes OUT
sweep() {
    local name=$1 out=$2; shift 2
    rm -f count "$out"
    ITREK_FAULT_COUNT=$PWD/count "$@" 2> err || { fail "$name: undisturbed run" "$(head -c 300 err)"; return; }
    mv "$out" ref.out
    local calls; calls=$(cat count)
    local bad=() n kind rc
    for ((n = 1; n <= calls; n++)); do
        for kind in enospc eio eintr short; do
            rm -f "$out"
            ITREK_FAULT=$n:$kind "$@" > /dev/null 2> err; rc=$?
            case $kind in
            enospc|eio)
                [ $rc -eq 1 ] || bad+=("$n:$kind exit $rc")
                [ "$(wc -l < err)" -eq 1 ] && grep -q ': error: ' err || bad+=("$n:$kind stderr: $(head -c 200 err)")
                [ ! -e "$out" ] || bad+=("$n:$kind left $out")
                ! ls "$out".tmp.* > /dev/null 2>&1 || bad+=("$n:$kind left a temporary") ;;
            *)
                [ $rc -eq 0 ] && cmp -s ref.out "$out" || bad+=("$n:$kind exit $rc or other bytes: $(head -c 200 err)") ;;
            esac
        done
    done
    [ ${#bad[@]} -eq 0 ] && pass "$name: all $calls I/O calls failed, interrupted and shortened in turn" ||
        fail "$name" "${bad[*]:0:3}"
}

sweep "split" ia2.mp "$B/split" --quiet --scheme loo --ratings r.tsv -o ia2.mp
sweep "split, zstd output" ia2.mp.zst "$B/split" --quiet --scheme loo --ratings r.tsv -o ia2.mp.zst
sweep "mf-train" mf2.mp "$B/mf-train" --quiet --epochs 2 --dim 4 --threads 1 ia.mp -o mf2.mp
sweep "candgen" cand2.mp "$B/candgen" --quiet --threads 1 --mf mf.mp -n 3 ia.mp -o cand2.mp
sweep "metrics (a text table)" m.md "$B/metrics" --bootstrap 20 --interactions ia.mp --candidates cand.mp -o m.md
"$B/mp2json" cand.mp > cand.jsonl
sweep "json2mp" c2.mp "$B/json2mp" -o c2.mp cand.jsonl
# the prompt side, on the golden tests' small inputs
G=$ITREK_ROOT/tests/cli/golden/inputs
for f in q a ia items mf cand; do "$B/json2mp" < "$G/$f.jsonl" > "g-$f.mp" || fail "setup: $f"; done
TM=$ITREK_ROOT/data/prompts/recranker.tmpl
sweep "fuse" rk.mp "$B/fuse" --quiet --queries g-q.mp g-a.mp -o rk.mp
sweep "promptgen --mode eval" qq.mp "$B/promptgen" --quiet --mode eval --interactions g-ia.mp --catalog g-items.mp --mf g-mf.mp \
    --candidates g-cand.mp --templates "$TM" -o qq.mp
sweep "promptgen --mode train" ins.mp "$B/promptgen" --quiet --mode train --draws 20 --interactions g-ia.mp --catalog g-items.mp \
    --mf g-mf.mp --templates "$TM" -o ins.mp
