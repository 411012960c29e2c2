#!/usr/bin/env bash
# hint-check.sh - the valid-part comparison of docs/results.md: run 1's adapter (hints) against an
# adapter trained and queried with --no-hint, on the small profile's backbone. Needs
# `make results PROFILE=small SCHEMES=loo` (or at least its backbone and adapter) first.
set -e
cd "$(dirname "$0")/../.."
B=${BINDIR:-bin}; A=${A:-artifacts/small/loo}; E=${E:-$(mktemp -d)}
P="--templates data/prompts/recranker.tmpl --interactions $A/interactions.mp --catalog $A/items.mp --mf $A/mf.mp --tokenizer $A/backbone/tokenizer.model --draws 2000 --history 20 --max-dislikes 5 --context 512 --seed 1 --threads 2"
t0=$(date +%s)
# valid queries with and without the hint
$B/promptgen --quiet --mode eval --for valid --candidates $A/cand-valid.mp $P -o $E/qv-hint.mp
$B/promptgen --quiet --mode eval --for valid --candidates $A/cand-valid.mp $P --no-hint -o $E/qv-nohint.mp
# the existing adapter (trained with hints) on valid
$B/rank --quiet --model $A/backbone --adapter $A/adapter --decode score --batch 16 --threads 2 $E/qv-hint.mp -o $E/av-hint.mp
$B/fuse --quiet --queries $E/qv-hint.mp $E/av-hint.mp -o $E/rv-hint.mp
# an adapter trained without hints
$B/promptgen --quiet --mode train $P --no-hint -o $E/instr-nohint.mp
$B/lora-train --quiet --model $A/backbone --out $E/adapter-nohint --steps 300 --warmup 30 --lr 1e-3 --eval-every 100 --ctx 512 --seed 1 --threads 2 --log $E/lora-nohint.jsonl $E/instr-nohint.mp
$B/rank --quiet --model $A/backbone --adapter $E/adapter-nohint --decode score --batch 16 --threads 2 $E/qv-nohint.mp -o $E/av-nohint.mp
$B/fuse --quiet --queries $E/qv-nohint.mp $E/av-nohint.mp -o $E/rv-nohint.mp
for v in hint nohint; do echo "== $v"; $B/metrics --part valid --bootstrap 1000 --interactions $A/interactions.mp --candidates $A/cand-valid.mp $E/rv-$v.mp; done
echo "elapsed $(($(date +%s) - t0)) s"
