#!/usr/bin/env bash
# item-init-run.sh - dev-only valid run of docs/results.md, tuning log 11 (never test): the small
# backbone pretrained from item-vector title embeddings (item-embedding-init.py), then the
# default's LoRA, rank, fuse and metrics --part valid, the commands `make valid` runs.
#
#   dev/tuning/item-init-run.sh mf|ppmi STD SEED SRC_DIR OUT_DIR
# SRC_DIR: the loo folder of a default `make valid PROFILE=small SCHEMES=loo ART=... [PRETRAIN_SEED=SEED]`
# run (its tokenizer, corpus, prompts, instructions, queries and parameters are reused, so only
# the initialisation differs); OUT_DIR gets init0/ (the plain random initialisation), init/,
# backbone/, adapter/, answers and llm-valid.md. Prints the stage times and the valid table.
# PYTHON: a python3 with numpy (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=$1 STD=$2 SEED=$3 S=$4 D=$5 B=${BINDIR:-bin}
mkdir -p "$D"
for f in tok corpus.txt pretrain-prompts.mp backbone-config.json instructions.mp lora.params rank.params \
         queries-valid.mp fuse.params metrics.params interactions.mp cand-valid.mp mf.mp items.mp; do
    ln -sfn "$S/$f" "$D/$f"
done
read -r -a PRETRAIN <<< "$(sed 's/.* pretrain \(.*\) --seed .*/\1/' "$S/backbone.params")"
t0=$(date +%s)
$B/lora-train --quiet --full --init "$D/backbone-config.json" --tokenizer "$D/tok/tokenizer.model" \
    --text "$D/corpus.txt" --out "$D/init0" --steps 0 --seed "$SEED" --threads 2
${PYTHON:-python3} dev/tuning/item-embedding-init.py "$MODE" "$D/init0" "$D" "$D/init" "$STD"
$B/lora-train --log-every 100 --full --model "$D/init" --text "$D/corpus.txt" "$D/pretrain-prompts.mp" \
    --out "$D/backbone" --log "$D/pretrain-log.jsonl" "${PRETRAIN[@]}" --seed "$SEED" --threads 2
t1=$(date +%s)
$B/lora-train --log-every 100 --model "$D/backbone" --out "$D/adapter" --log "$D/lora-log.jsonl" $(cat "$D/lora.params") "$D/instructions.mp"
t2=$(date +%s)
$B/rank --log-every 100 --model "$D/backbone" --adapter "$D/adapter" $(cat "$D/rank.params") "$D/queries-valid.mp" -o "$D/answers-valid.mp"
t3=$(date +%s)
$B/fuse --queries "$D/queries-valid.mp" $(cat "$D/fuse.params") "$D/answers-valid.mp" -o "$D/rankings-valid.mp" 2> "$D/fuse-valid.log"
$B/metrics --part valid $(cat "$D/metrics.params") --interactions "$D/interactions.mp" --candidates "$D/cand-valid.mp" \
    "$D/rankings-valid.mp" -o "$D/llm-valid.md"
echo "pretrain $((t1 - t0)) s, lora $((t2 - t1)) s, rank $((t3 - t2)) s"
sed -n '/^| Method/,/^$/p' "$D/llm-valid.md" | head -7
