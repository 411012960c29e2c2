#!/usr/bin/env bash
# bench/run.sh - `make bench`: wall time of each base stage on ML-100K (loo), MF throughput,
# and measured ratios against a reference run made in the same invocation:
#   - mf-train on 2 threads vs 1 thread (the parallel speed-up of the DSGD strata)
#   - candgen through BLAS blocks vs a one-thread run
#   - zstd-compressed vs plain streams (size and read time)
# Each timing is the best of 3 runs. Needs ML-100K: ML100K=DIR (default ../shared/data/ml-100k).
# Then tests/bench/precision-bench.sh: the CPU's fp32 (OpenBLAS) against bf16 (oneDNN) products,
# LoRA training and prefill tokens/s on a SmolLM2-135M-shaped model (about 20 minutes on 2
# cores; PRECISION_BENCH=0 skips it), and tests/bench/smol-rank-bench.sh: rank on SmolLM2 with the
# CPU's inference kernel against the OpenBLAS paths (a few minutes; SMOL_RANK_BENCH=0 skips it).
set -euo pipefail
B=${BINDIR:-bin}
ML=${ML100K:-$(cd "$(dirname "$0")/../.." && pwd)/../shared/data/ml-100k}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
best() { # best of 3 wall times of a command, in seconds
    local b=1e9 s e
    for _ in 1 2 3; do
        s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
        b=$(awk -v b="$b" -v d="$(awk -v s="$s" -v e="$e" 'BEGIN{print e-s}')" 'BEGIN{print (d<b)?d:b}')
    done; echo "$b"
}
"$B/split" --quiet --ml100k "$ML" --scheme loo -o "$t/ia.mp"
"$B/split" --quiet --ml100k "$ML" --scheme loo -o "$t/ia.mp.zst"
t_split=$(best "$B/split" --quiet --ml100k "$ML" --scheme loo -o "$t/x.mp")
# fixed epochs (no early stop) so both thread counts do the same work
t_mf1=$(best "$B/mf-train" --quiet --threads 1 --epochs 20 --eval-every 1000 "$t/ia.mp" -o "$t/mf1.mp")
t_mf2=$(best "$B/mf-train" --quiet --threads 2 --epochs 20 --eval-every 1000 "$t/ia.mp" -o "$t/mf.mp")
t_mfdef=$(best "$B/mf-train" --quiet --threads 2 "$t/ia.mp" -o "$t/mfd.mp")
pos=$("$B/mp2json" "$t/ia.mp" | grep -c '"part":"train","liked":true')
neg=$("$B/mp2json" --head 0 "$t/mfd.mp" | sed 's/.*"negatives":\([0-9]*\).*/\1/')
t_c1=$(best "$B/candgen" --quiet --threads 1 --mf "$t/mf.mp" "$t/ia.mp" -o "$t/c.mp")
t_c2=$(best "$B/candgen" --quiet --threads 2 --mf "$t/mf.mp" "$t/ia.mp" -o "$t/c.mp")
t_m=$(best "$B/metrics" --interactions "$t/ia.mp" --candidates "$t/c.mp" -o "$t/m.md")
t_rp=$(best "$B/mp2json" "$t/ia.mp")
t_rz=$(best "$B/mp2json" "$t/ia.mp.zst")
sp=$(stat -c %s "$t/ia.mp"); sz=$(stat -c %s "$t/ia.mp.zst")
awk -v s="$t_split" -v m1="$t_mf1" -v m2="$t_mf2" -v md="$t_mfdef" -v c1="$t_c1" -v c2="$t_c2" -v mt="$t_m" \
    -v pos="$pos" -v neg="$neg" -v rp="$t_rp" -v rz="$t_rz" -v sp="$sp" -v sz="$sz" 'BEGIN{
  printf "%-46s %10s\n", "stage (ML-100K loo, best of 3)", "wall s"
  printf "%-46s %10.3f\n", "split", s
  printf "%-46s %10.3f\n", "mf-train, defaults with early stopping, 2 thr", md
  printf "%-46s %10.3f\n", "mf-train, 20 epochs, 1 thread", m1
  printf "%-46s %10.3f\n", "mf-train, 20 epochs, 2 threads", m2
  printf "%-46s %10.3f\n", "candgen, 943 users x 1682 items, 2 threads", c2
  printf "%-46s %10.3f\n", "metrics (1000 bootstrap resamples)", mt
  printf "\n%-46s %10s\n", "measure", "value"
  printf "%-46s %10.0f\n", "mf-train ratings/s (20 epochs, 2 thr)", pos*20/m2
  printf "%-46s %10.0f\n", "mf-train triples/s (x negatives)", pos*20*neg/m2
  printf "%-46s %10.3f\n", "mf-train time per 10 epochs, s", m2/2
  printf "%-46s %10.2fx\n", "ratio mf-train 1 thr / 2 thr", m1/m2
  printf "%-46s %10.2fx\n", "ratio candgen 1 thr / 2 thr", c1/c2
  printf "%-46s %10.2fx\n", "ratio stream size plain / zstd", sp/sz
  printf "%-46s %10.2fx\n", "ratio read time zstd / plain (mp2json)", rz/rp
}'

if [ "${PRECISION_BENCH:-1}" != 0 ]; then
    echo
    BINDIR=$B "$(dirname "$0")/precision-bench.sh"
fi

if [ "${SMOL_RANK_BENCH:-1}" != 0 ]; then
    echo
    BINDIR=$B "$(dirname "$0")/smol-rank-bench.sh"
fi
