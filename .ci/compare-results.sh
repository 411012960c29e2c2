#!/usr/bin/env bash
# compare-results.sh COMMITTED.json REGENERATED.json [TOL]
# Fails when any metric of any method differs by more than TOL (absolute, default 0.01, i.e.
# about 9 of 942 users at HR@K) between the committed table and the one CI regenerated, or when
# the methods or the user count differ. On one machine type the pipeline is deterministic (same
# seed, 2 threads); the tolerance covers OpenBLAS choosing other kernels on another CPU.
set -euo pipefail
a=$1 b=$2 tol=${3:-0.01}
compare() {
    # metrics --format json writes one "key": value per line, so awk reads it directly.
    awk -v tol="$tol" '
        FNR == 1 { f++; m = ""; inboot = 0 }
        /"method":/ { gsub(/[",]/, "", $2); m = $2 }
        /"users":/ && !m { gsub(/,/, "", $2); users[f] = $2 }
        /"(H|N|R)@[0-9]+":|"MRR":/ && m && !inboot {
            k = $1; gsub(/[":]/, "", k); v = $2; gsub(/,/, "", v); val[f, m "/" k] = v; keys[m "/" k] = 1 }
        /"bootstrap": \[/ { inboot = 1 }
        /^ "bootstrap_resamples"/ { inboot = 0 }
        END {
            bad = 0
            if (users[1] != users[2]) { printf "users: %s vs %s\n", users[1], users[2]; bad = 1 }
            for (k in keys) {
                if (!((1, k) in val) || !((2, k) in val)) { printf "%s: missing in one table\n", k; bad = 1; continue }
                d = val[1, k] - val[2, k]; if (d < 0) d = -d
                if (d > tol) { printf "%s: committed %s, regenerated %s (|diff| %.5f > %s)\n", k, val[1, k], val[2, k], d, tol; bad = 1 }
            }
            exit bad
        }' "$a" "$b"
}
compare
echo "compare-results: $b matches $a within $tol"
