#!/usr/bin/env bash
# fetch-ml100k.sh DEST - put MovieLens-100K into DEST (u.data, u.item, ...), verified.
#
# Source: GroupLens (https://files.grouplens.org/datasets/movielens/ml-100k.zip). The
# checksums are those of the files inside the official release; the same values are pinned
# in ../shared/data/ml-100k/SOURCE.txt and by several independent projects.
# The data are for research use and may not be redistributed: they are never committed here.
set -euo pipefail
dest=${1:-data/ml-100k}
url=${ML100K_URL:-https://files.grouplens.org/datasets/movielens/ml-100k.zip}
declare -A SHA256=(
    [u.data]=06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490
    [u.item]=553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701
)
verify() { # dir -> 0 when every pinned file matches
    local d=$1 f
    for f in "${!SHA256[@]}"; do
        [ -f "$d/$f" ] || { echo "fetch-ml100k: $d/$f: missing" >&2; return 1; }
        echo "${SHA256[$f]}  $d/$f" | sha256sum --check --quiet - >/dev/null 2>&1 ||
            { echo "fetch-ml100k: $d/$f: sha256 does not match the GroupLens release" >&2; return 1; }
    done
}
if [ -f "$dest/u.data" ] && verify "$dest"; then exit 0; fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ml100k.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
echo "fetch-ml100k: downloading $url" >&2
if ! curl -fsSL --retry 2 --connect-timeout 20 -o "$tmp/ml-100k.zip" "$url"; then
    cat >&2 <<MSG
fetch-ml100k: error: could not download $url (no network?).
  Either download ml-100k.zip on a machine with network access and unzip it so that
  $dest/u.data exists, or point the pipeline at an existing copy:  make results ML100K=/path/to/ml-100k
MSG
    exit 1
fi
(cd "$tmp" && unzip -q ml-100k.zip)
verify "$tmp/ml-100k"
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.part"; mv "$tmp/ml-100k" "$dest.part"; rm -rf "$dest"; mv "$dest.part" "$dest"
echo "fetch-ml100k: $dest ready (checksums verified)" >&2
