#!/usr/bin/env bash
# tests/run.sh - the one test runner. Runs every unit-test program ($UNITDIR/**/test_*)
# and every CLI script (tests/cli/*.sh, tests/llm/*.sh), counts the "PASS name" /
# "FAIL name" lines they print, and ends with "N passed, N failed".
# A program or script that exits non-zero (a crash, a sanitizer report) counts as one failure.
# Usage: BINDIR=... UNITDIR=... tests/run.sh [FILTER]   (FILTER: substring of the test path)
set -u
here=$(cd "$(dirname "$0")" && pwd)
export ITREK_ROOT=$(cd "$here/.." && pwd)
export BINDIR=${BINDIR:-$ITREK_ROOT/bin}
UNITDIR=${UNITDIR:-$ITREK_ROOT/build/rel/tests}
export SHARED=${SHARED:-$(cd "$ITREK_ROOT/.." && pwd)/shared}
export TMPROOT=$(mktemp -d "${TMPDIR:-/tmp}/itrek-test.XXXXXX")
trap 'rm -rf "$TMPROOT"' EXIT
filter=${1:-}
passed=0 failed=0
failures=()

run_one() { # name, command...
    local name=$1; shift
    local out rc
    out=$("$@" 2>"$TMPROOT/stderr"); rc=$?
    local p f
    p=$(grep -c '^PASS ' <<<"$out"); f=$(grep -c '^FAIL ' <<<"$out")
    grep '^FAIL ' <<<"$out" | while read -r line; do echo "$name: $line"; done
    passed=$((passed + p)); failed=$((failed + f))
    while read -r line; do [ -n "$line" ] && failures+=("$name: ${line#FAIL }"); done < <(grep '^FAIL ' <<<"$out")
    if [ $rc -ne 0 ]; then
        failed=$((failed + 1)); failures+=("$name: exited $rc")
        echo "$name: exited $rc; stderr:"; tail -n 20 "$TMPROOT/stderr"
    fi
    printf '%-40s %3d passed, %d failed\n' "$name" "$p" "$f"
}

for t in $(find "$UNITDIR" -type f -name 'test_*' -perm -u+x 2>/dev/null | sort); do
    [ -n "$filter" ] && [[ $t != *"$filter"* ]] && continue
    run_one "${t#$UNITDIR/}" "$t"
done
for t in "$here"/cli/*.sh "$here"/llm/*.sh; do
    [ "$(basename "$t")" = lib.sh ] && continue
    [ -f "$t" ] || continue
    [ -n "$filter" ] && [[ $t != *"$filter"* ]] && continue
    run_one "${t#$here/}" bash "$t"
done

if [ ${#failures[@]} -gt 0 ]; then
    echo; echo "Failures:"; printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
