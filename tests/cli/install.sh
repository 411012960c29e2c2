# install.sh - `make install PREFIX=...` installs itrek-<stage> and the prompt templates, and an
# installed promptgen finds its templates without --templates.
source "$ITREK_ROOT/tests/cli/lib.sh"
make -C "$ITREK_ROOT" --no-print-directory install PREFIX="$T/inst" SAN="${SAN:-}" BINDIR="$BINDIR" > "$T/inst.log" 2>&1 \
    && pass "make install" || fail "make install" "$(tail -3 "$T/inst.log")"
for s in split mf-train candgen promptgen lora-train rank fuse metrics mp2json json2mp llm; do
    [ -x "$T/inst/bin/itrek-$s" ] || { fail "installed itrek-$s"; continue; }
    pass "installed itrek-$s"
done
[ -f "$T/inst/share/itrek/prompts/recranker.tmpl" ] && pass "installed templates" || fail "installed templates"
"$BINDIR/split" --quiet --ml100k "$SHARED/data/ml-100k" --scheme loo --catalog "$T/items.mp" -o "$T/ia.mp"
"$T/inst/bin/itrek-promptgen" --quiet --mode corpus --interactions "$T/ia.mp" --catalog "$T/items.mp" -o "$T/c.txt" \
    && [ -s "$T/c.txt" ] && pass "installed promptgen finds its templates" || fail "installed promptgen finds its templates"
expect_fail "installed program names itself without the prefix" 2 "^split: " "$T/inst/bin/itrek-split" --bogus
