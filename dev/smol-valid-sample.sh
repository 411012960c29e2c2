#!/bin/bash
# dev-only: the 40-user loo valid sample of docs/results.md "SmolLM2 (smol)". Needs the smol profile's
# base artifacts in /tmp/sm (make base PROFILE=smol ART=/tmp/sm SCHEMES=loo, then its queries-valid.mp and
# instructions.mp targets); writes /tmp/sv. Not part of the product or the tests.
set -e
cd "$(dirname "$0")/.."
mkdir -p /tmp/sv; echo "--decode score --batch 16 --listwise likelihood --seed 1 --threads 2" > /tmp/sm/loo/rank.params
B=bin; G=$(realpath ../shared/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf); A=/tmp/sm/loo; S=/tmp/sv
export OPENBLAS_CORETYPE=Haswell
$B/mp2json $A/cand-valid.mp | head -41 | $B/json2mp -o $S/c40.mp
$B/promptgen --quiet --templates data/prompts/chatml.tmpl --mode eval --for valid --candidates $S/c40.mp --interactions $A/interactions.mp --catalog $A/items.mp --mf $A/mf.mp --tokenizer $G $(cat $A/promptgen.params) -o $S/q40.mp
t0=$(date +%s); $B/rank --quiet --model $G $(cat $A/rank.params) $S/q40.mp -o $S/zs40.mp; t1=$(date +%s); echo "rank-zs $((t1-t0)) s" >> $S/times
$B/lora-train --quiet --model $G --out $S/ad --log $S/lora.jsonl --steps 40 --warmup 5 --lr 2e-4 --batch 4 --accum 1 --eval-every 20 --ctx 512 --seed 1 --threads 2 $A/instructions.mp; t2=$(date +%s); echo "lora-40x4 $((t2-t1)) s" >> $S/times
$B/rank --quiet --model $G --adapter $S/ad $(cat $A/rank.params) $S/q40.mp -o $S/tu.mp; t3=$(date +%s); echo "rank-tuned $((t3-t2)) s" >> $S/times
$B/fuse --queries $S/q40.mp $S/tu.mp -o $S/rt.mp 2> $S/ft.log
$B/fuse --queries $S/q40.mp $S/zs40.mp --label zero-shot --methods pointwise,pairwise,listwise,hybrid -o $S/rz.mp 2> $S/fz.log
$B/fuse --quiet --queries $S/q40.mp --label seed --methods hybrid $S/tu.mp -o $S/rs.mp
$B/metrics --part valid --bootstrap 1000 --interactions $A/interactions.mp --candidates $S/c40.mp $S/rt.mp $S/rz.mp $S/rs.mp -o $S/m.md
echo finished >> $S/times
