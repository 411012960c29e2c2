#!/usr/bin/env bash
# bench/smol-rank-bench.sh - rank on the real model (SmolLM2-135M-Instruct, the smol profile's
# queries for a few loo valid users, score decoding as the profile ranks): the CPU backend's
# inference kernel (common/llm/gemm.c, AVX-512) against the OpenBLAS paths it replaces
# (ITREK_CPU_GEMM=blas), in one invocation, alternating, best of RUNS each; also whether the two
# give the same answers and by how much their scores differ.
# Usage: BINDIR=bin tests/bench/smol-rank-bench.sh [USERS (5)] [RUNS (2)] [THREADS (2)]
set -euo pipefail
B=${BINDIR:-bin}
SHARED=${SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/../shared}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NU=${1:-5} RUNS=${2:-2} THR=${3:-2}
G=$SHARED/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
"$B/split" --quiet --ml100k "$SHARED/data/ml-100k" --scheme loo --catalog "$t/items.mp" -o "$t/ia.mp"
"$B/mf-train" --quiet --threads "$THR" "$t/ia.mp" -o "$t/mf.mp"
"$B/candgen" --quiet --mf "$t/mf.mp" --for valid "$t/ia.mp" -o "$t/call.mp"
"$B/mp2json" --head "$NU" "$t/call.mp" | "$B/json2mp" -o "$t/c.mp"
"$B/promptgen" --quiet --templates "$ROOT/data/prompts/chatml.tmpl" --mode eval --for valid --candidates "$t/c.mp" \
    --interactions "$t/ia.mp" --catalog "$t/items.mp" --mf "$t/mf.mp" --tokenizer "$G" --history 10 --max-dislikes 5 \
    --no-hint --context 512 -o "$t/q.mp"
run() { # label env -> seconds; answers in $t/a-label.mp
    local s e; s=$(date +%s.%N)
    env $2 "$B/rank" --quiet --model "$G" --decode score --batch 16 --listwise likelihood --threads "$THR" "$t/q.mp" -o "$t/a-$1.mp"
    e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN{print e-s}'
}
bk=1e9 bb=1e9
for ((r = 0; r < RUNS; r++)); do
    x=$(run kernel ITREK_CPU_GEMM=kernel); bk=$(awk -v a="$bk" -v b="$x" 'BEGIN{print (b<a)?b:a}')
    x=$(run blas ITREK_CPU_GEMM=blas); bb=$(awk -v a="$bb" -v b="$x" 'BEGIN{print (b<a)?b:a}')
done
nq=$("$B/mp2json" "$t/q.mp" | tail -n +2 | wc -l)
same=$(cmp -s <("$B/mp2json" "$t/a-kernel.mp" | tail -n +2 | sed 's/"scores":\[[^]]*\]//') \
              <("$B/mp2json" "$t/a-blas.mp" | tail -n +2 | sed 's/"scores":\[[^]]*\]//') && echo yes || echo no)
dmax=$(paste <("$B/mp2json" "$t/a-kernel.mp" | tail -n +2 | sed -n 's/.*"scores":\[\([^]]*\)\].*/\1/p' | tr ',' '\n') \
             <("$B/mp2json" "$t/a-blas.mp" | tail -n +2 | sed -n 's/.*"scores":\[\([^]]*\)\].*/\1/p' | tr ',' '\n') |
       awk '{d=$1-$2; if (d<0) d=-d; m=($2<0?-$2:$2); r=(m>0)?d/m:d; if (r>x) x=r} END{printf "%.2e", x+0}')
awk -v k="$bk" -v b="$bb" -v n="$NU" -v q="$nq" -v same="$same" -v d="$dmax" -v thr="$THR" 'BEGIN{
  printf "%-52s %10s\n", "rank, SmolLM2-135M, score decoding (best of runs)", "value"
  printf "%-52s %10.2f\n", sprintf("OpenBLAS paths (ITREK_CPU_GEMM=blas), %d users, s", n), b
  printf "%-52s %10.2f\n", sprintf("gemm.c kernel, %d users (%d queries), %d thr, s", n, q, thr), k
  printf "%-52s %10.2f\n", "s per user, kernel", k / n
  printf "%-52s %10.2fx\n", "ratio OpenBLAS / kernel", b / k
  printf "%-52s %10s\n", "answer texts identical", same
  printf "%-52s %10s\n", "max relative score difference", d
}'
