#!/usr/bin/env bash
# dev/tuning/tune-mf.sh - grid search of mf-train's hyper-parameters on the VALID part only (never test).
# Usage: dev/tuning/tune-mf.sh INTERACTIONS OUT.tsv [threads]
# Each line: params, then valid H@3 H@5 N@10 from `metrics --part valid`, and the epochs run.
# The grid is the one recorded in docs/results.md; edit GRID_* to search elsewhere.
set -euo pipefail
ia=$1 out=$2 threads=${3:-2}
bin=${BINDIR:-bin}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
GRID_DIM=${GRID_DIM:-"32 64 128"}
GRID_LR=${GRID_LR:-"0.02 0.05 0.1"}
GRID_REG=${GRID_REG:-"0.001 0.01 0.03"}
GRID_NEG=${GRID_NEG:-"1 4"}
GRID_POS=${GRID_POS:-"liked all"}
GRID_REC=${GRID_REC:-"0"}          # --recency TAU (0: off)
GRID_FLOOR=${GRID_FLOOR:-"0.1"}    # --recency-floor
GRID_SEED=${GRID_SEED:-"1"}
printf 'dim\tlr\treg\tneg\tpositives\tvalid_H@3\tvalid_H@5\tvalid_N@10\tepochs\trecency\tfloor\tseed\n' > "$out"
for seed in $GRID_SEED; do for rec in $GRID_REC; do for fl in $GRID_FLOOR; do
for pos in $GRID_POS; do for d in $GRID_DIM; do for lr in $GRID_LR; do for reg in $GRID_REG; do for neg in $GRID_NEG; do
    "$bin/mf-train" --quiet --threads "$threads" --dim "$d" --lr "$lr" --reg "$reg" --negatives "$neg" \
        --positives "$pos" --recency "$rec" --recency-floor "$fl" --seed "$seed" "$ia" -o "$tmp/mf" 2>/dev/null
    ep=$("$bin/mp2json" --head 0 "$tmp/mf" | sed 's/.*"epochs_run":\([0-9]*\).*/\1/')
    "$bin/candgen" --quiet --mf "$tmp/mf" --for valid "$ia" -o "$tmp/cand"
    row=$("$bin/metrics" --interactions "$ia" --candidates "$tmp/cand" --part valid --bootstrap 0 --format csv | tail -1)
    IFS=, read -r _ _ _ _ h3 n3 r3 h5 n5 r5 h10 n10 r10 mrr <<<"$row"
    printf '%s\t%s\t%s\t%s\t%s\t%.5f\t%.5f\t%.5f\t%s\t%s\t%s\t%s\n' "$d" "$lr" "$reg" "$neg" "$pos" "$h3" "$h5" "$n10" "$ep" "$rec" "$fl" "$seed" | tee -a "$out"
done; done; done; done; done; done; done; done
