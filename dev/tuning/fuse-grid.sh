#!/usr/bin/env bash
# fuse-grid.sh - dev-only tuning of docs/results.md (valid part only, never test): fuse's hybrid
# weights --lambda l1,l2,l3 over a grid, on one set of valid queries and answers. Prints one
# line per weighting: valid H@3, N@3, H@5, N@5 of the hybrid, best H@3 first.
#
#   dev/tuning/fuse-grid.sh ART_DIR QUERIES ANSWERS [FUSE_ARGS]
#   e.g. dev/tuning/fuse-grid.sh artifacts/small/loo artifacts/small/loo/queries-valid.mp \
#          artifacts/small/loo/answers-valid.mp
set -euo pipefail
A=$1 Q=$2 ANS=$3 FA=${4:-}
B=${BINDIR:-bin}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for l1 in 0 1; do for l2 in 0 1; do for l3 in 0 1 3 10; do
    [ "$l1$l2$l3" = 000 ] && continue
    "$B/fuse" --quiet --queries "$Q" $FA --lambda "$l1,$l2,$l3" "$ANS" -o "$W/rk.mp" 2>/dev/null
    "$B/metrics" --part valid --bootstrap 0 --format json --interactions "$A/interactions.mp" --candidates "$A/cand-valid.mp" \
        "$W/rk.mp" -o "$W/m.json"
    printf '%s\t' "$l1,$l2,$l3"
    # the hybrid row's H@3, N@3, H@5, N@5
    tr -d ' \n' < "$W/m.json" | grep -o '"method":"hybrid"[^}]*}' | head -1 |
        sed 's/.*"H@3":\([0-9.e-]*\).*"N@3":\([0-9.e-]*\).*"H@5":\([0-9.e-]*\).*"N@5":\([0-9.e-]*\).*/\1\t\2\t\3\t\4/'
done; done; done | sort -t$'\t' -k2,2gr -k3,3gr
