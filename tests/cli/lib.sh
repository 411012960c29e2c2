# tests/cli/lib.sh - helpers for CLI test scripts (sourced). Each check prints PASS/FAIL.
# Environment from tests/run.sh: BINDIR, SHARED, TMPROOT, ITREK_ROOT.
set -u
T=$(mktemp -d "$TMPROOT/cli.XXXXXX")
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; }
# expect_ok NAME CMD...   : command exits 0
expect_ok() { local n=$1; shift; if "$@" >"$T/out" 2>"$T/err"; then pass "$n"; else fail "$n" "exit $? $(head -c 300 "$T/err")"; fi; }
# expect_fail NAME CODE REGEX CMD... : exits CODE, stderr is one line matching REGEX
expect_fail() {
    local n=$1 code=$2 re=$3; shift 3
    "$@" >"$T/out" 2>"$T/err"; local rc=$?
    if [ $rc -ne "$code" ]; then fail "$n" "exit $rc, want $code; stderr: $(head -c 300 "$T/err")"; return; fi
    if ! grep -Eq -- "$re" "$T/err"; then fail "$n" "stderr '$(head -c 300 "$T/err")' does not match '$re'"; return; fi
    pass "$n"
}
# same NAME A B : files identical
same() { if cmp -s "$2" "$3"; then pass "$1"; else fail "$1" "$2 and $3 differ"; fi; }
