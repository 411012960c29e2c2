#!/usr/bin/env bash
# valid-run.sh - one tuning run of docs/results.md on the valid part (never test): training
# instructions, an adapter (or --full weights), valid queries, rank, fuse, metrics --part valid.
#
#   dev/tuning/valid-run.sh NAME "TRAIN_PROMPT_ARGS" "LORA_ARGS" ["FUSE_ARGS"]
#
# Uses the small profile's artifacts of the loo scheme (A=artifacts/small/loo: split, MF,
# candidates, backbone; `make results PROFILE=small SCHEMES=loo` or at least its backbone
# first); writes to E=/tmp/itrek-tuning/NAME and prints the valid table. Prompt options shared
# by instructions and queries: P (default: the small profile's, without hints).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=$1 TP=$2 LA=$3 FA=${4:-}
B=${BINDIR:-bin} A=${A:-artifacts/small/loo}
M=${M:-$A/backbone} E=${E:-/tmp/itrek-tuning/$N}
P=${P:---history 20 --max-dislikes 5 --context 512 --no-hint}
mkdir -p "$E"
C="--templates data/prompts/recranker.tmpl --interactions $A/interactions.mp --catalog $A/items.mp --mf $A/mf.mp --tokenizer $M/tokenizer.model --seed 1 --threads 2"
t0=$(date +%s)
[ -f "$E/ins.mp" ] || $B/promptgen --quiet $C --mode train --draws 2000 $P $TP -o "$E/ins.mp"
[ -f "$E/q-valid.mp" ] || $B/promptgen --quiet $C --mode eval --for valid --candidates $A/cand-valid.mp $P -o "$E/q-valid.mp"
t1=$(date +%s)
if [[ "$LA" == *--full* ]]; then
    RM="--model $E/full"
    [ -f "$E/full/model.safetensors" ] || $B/lora-train --quiet --model "$M" --out "$E/full" --log "$E/lora-log.jsonl" --ctx 512 --seed 1 --threads 2 $LA "$E/ins.mp"
else
    RM="--model $M --adapter $E/adapter"
    [ -f "$E/adapter/adapter_model.safetensors" ] || $B/lora-train --quiet --model "$M" --out "$E/adapter" --log "$E/lora-log.jsonl" --ctx 512 --seed 1 --threads 2 $LA "$E/ins.mp"
fi
t2=$(date +%s)
[ -f "$E/ans.mp" ] || $B/rank --quiet $RM --decode score --batch 16 --seed 1 --threads 2 "$E/q-valid.mp" -o "$E/ans.mp"
t3=$(date +%s)
$B/fuse --quiet --queries "$E/q-valid.mp" $FA "$E/ans.mp" -o "$E/rk.mp"
$B/metrics --part valid --bootstrap 200 --interactions $A/interactions.mp --candidates $A/cand-valid.mp "$E/rk.mp" -o "$E/valid.md"
echo "$N: promptgen $((t1 - t0)) s, training $((t2 - t1)) s, rank $((t3 - t2)) s"
sed -n '/^| Method/,/^$/p' "$E/valid.md" | head -7
