#!/usr/bin/env bash
# tests/gpu/pipeline.sh SCHEME_DIR - the pipeline's two model stages on the GPU against a
# finished CPU run: for a lent GPU machine, after tests/gpu/run.sh (which checks the kernels).
#
# SCHEME_DIR is one scheme's artifacts of a CPU `make results` (e.g. artifacts/small/loo): its
# queries-test.mp, instructions.mp, adapter/, answers-test.mp, rank.params, lora.params,
# fuse.params, metrics.params, interactions.mp, cand-test.mp, llm.json, lora-log.jsonl and,
# for the own-backbone profiles, backbone/ (else BASE=DIR names the base model).
#   1. rank --device cuda with the CPU's adapter: every answer's scores against the CPU's
#      (max |diff| of the log-probabilities, the share of queries whose best option is the
#      same, the share of identical answer texts); then fuse and metrics, against llm.json;
#   2. lora-train --device cuda with the same parameters (dropout masks differ between the
#      backends, so the adapter is not the CPU's): final validation loss against the CPU's
#      log; rank, fuse and metrics with that adapter;
#   3. a table of stage times (the CPU's from the run's timings) and metrics.
# DEVICE=cpu runs the same steps on the CPU (the script's own test: every difference is 0).
# MAX_USERS=N ranks only the first N users (then no fuse / metrics: they need every answer);
# LORA_STEPS=N trains N steps instead of the run's (a quick look; the losses then differ).
# Output in $OUT (default /tmp/itrek-gpu-pipeline): the answers, adapters, logs, table.txt.
# Needs python3 for the comparisons (dev-only, as tests/gpu/peft_bench.py). With
# ITREK_GPU_PREBUILT=DIR it runs the binaries of dev/gpu/prebuild.sh (as run.sh does).
set -u
A=${1:?usage: tests/gpu/pipeline.sh SCHEME_DIR}
A=$(cd "$A" && pwd)
cd "$(dirname "$0")/../.."
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-${TMPDIR:-/tmp}/itrek-gpu-pipeline}
MAX_USERS=${MAX_USERS:-}
mkdir -p "$OUT"
LOG=$OUT/pipeline.log
: >"$LOG"
say() { echo "$@" | tee -a "$LOG"; }
. tests/gpu/env.sh # BIN; with ITREK_GPU_PREBUILT=DIR the carried binaries and libraries
die() { say "pipeline.sh: $*"; exit 1; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }
cpu_time() { cut -f2 "$A/times/$1" 2>/dev/null || echo "?"; } # a stage's time in the CPU run

MODEL=${BASE:-$A/backbone}
[ -f "$MODEL/config.json" ] || die "no base model: $MODEL/config.json (set BASE=DIR)"
for f in queries-test.mp instructions.mp adapter/adapter_config.json answers-test.mp rank.params lora.params \
    fuse.params metrics.params interactions.mp cand-test.mp llm.json lora-log.jsonl; do
    [ -e "$A/$f" ] || die "$A/$f: missing (a finished CPU run's scheme directory is needed)"
done
# the CPU run's parameters, with the device replaced and the threads set to this machine's
params() { sed -e 's/--device [a-z]*//g' -e 's/--threads [0-9]*//g' "$A/$1"; }
DEV_ARGS="--device $DEVICE --threads $(nproc)"
[ "$DEVICE" = cpu ] && DEV_ARGS="--threads $(nproc)"

compare_answers() { # CPU answers, device answers -> one line of differences
    "$BIN/mp2json" "$1" >"$OUT/cpu.jsonl" && "$BIN/mp2json" "$2" >"$OUT/dev.jsonl" || return 1
    python3 - "$OUT/cpu.jsonl" "$OUT/dev.jsonl" <<'EOF'
import json, sys
def load(p):
    lines = open(p).read().splitlines()[1:]  # the first line is the header
    return {r['id']: r for r in map(json.loads, lines)}
cpu, dev = load(sys.argv[1]), load(sys.argv[2])
ids = [i for i in dev if i in cpu]
same_text = sum(cpu[i]['text'] == dev[i]['text'] for i in ids)
scored = [i for i in ids if cpu[i].get('scores') and dev[i].get('scores')]
diff = max((abs(a - b) for i in scored for a, b in zip(cpu[i]['scores'], dev[i]['scores'])), default=0.0)
argmax = lambda s: max(range(len(s)), key=lambda k: s[k])
same_best = sum(argmax(cpu[i]['scores']) == argmax(dev[i]['scores']) for i in scored)
print('answers %d (of %d on the CPU); identical texts %d (%.4f); scored %d: max |diff| %.3e, same best option %d (%.4f)'
      % (len(ids), len(cpu), same_text, same_text / max(len(ids), 1), len(scored), diff, same_best,
         same_best / max(len(scored), 1)))
EOF
}

metrics_of() { # answers -> OUT/NAME.json (fuse + metrics as the pipeline runs them)
    local answers=$1 name=$2
    "$BIN/fuse" --queries "$A/queries-test.mp" $(cat "$A/fuse.params") "$answers" -o "$OUT/rankings-$name.mp" \
        2>>"$LOG" || return 1
    "$BIN/metrics" --format json $(cat "$A/metrics.params") --interactions "$A/interactions.mp" \
        --candidates "$A/cand-test.mp" "$OUT/rankings-$name.mp" -o "$OUT/$name.json" 2>>"$LOG"
}

h3() { # metrics' JSON, method -> H@3
    python3 -c 'import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
print(next("%.5f" % r["H@3"] for r in rows if r["method"] == sys.argv[2]))' "$1" "$2" 2>/dev/null || echo "?"
}

max_users_arg=${MAX_USERS:+--max-users $MAX_USERS}
say "device $DEVICE; scheme directory $A; model $MODEL${MAX_USERS:+; first $MAX_USERS users}"

# 1. rank with the CPU's adapter
t0=$(date +%s.%N)
"$BIN/rank" --model "$MODEL" --adapter "$A/adapter" $(params rank.params) $DEV_ARGS $max_users_arg \
    "$A/queries-test.mp" -o "$OUT/answers-cpu-adapter.mp" >>"$LOG" 2>&1 || die "rank failed (see $LOG)"
t1=$(date +%s.%N)
ans1=$OUT/answers-cpu-adapter.mp
[ -n "$MAX_USERS" ] && ans1=$ans1.partial
say "rank, CPU adapter: $(secs "$t0" "$t1") s (CPU run: $(cpu_time rank-test) s); $(compare_answers "$A/answers-test.mp" "$ans1")"
if [ -z "$MAX_USERS" ]; then
    metrics_of "$ans1" rank-cpu-adapter || die "fuse / metrics failed (see $LOG)"
fi

# 2. LoRA training on the device, then rank with its adapter
rm -rf "$OUT/adapter"
t2=$(date +%s.%N)
"$BIN/lora-train" --model "$MODEL" --out "$OUT/adapter" --log "$OUT/lora-log.jsonl" $(params lora.params) $DEV_ARGS \
    ${LORA_STEPS:+--steps $LORA_STEPS} \
    "$A/instructions.mp" >>"$LOG" 2>&1 || die "lora-train failed (see $LOG)"
t3=$(date +%s.%N)
last_valid() { grep '"val_loss"' "$1" | tail -1 | sed 's/.*"val_loss": *\([^,}]*\).*/\1/'; }
say "lora-train: $(secs "$t2" "$t3") s (CPU run: $(cpu_time lora-train) s); final validation loss $(last_valid "$OUT/lora-log.jsonl") (CPU run: $(last_valid "$A/lora-log.jsonl"))"
"$BIN/rank" --model "$MODEL" --adapter "$OUT/adapter" $(params rank.params) $DEV_ARGS $max_users_arg \
    "$A/queries-test.mp" -o "$OUT/answers-own-adapter.mp" >>"$LOG" 2>&1 || die "rank (own adapter) failed (see $LOG)"
t4=$(date +%s.%N)
say "rank, own adapter: $(secs "$t3" "$t4") s"
if [ -z "$MAX_USERS" ]; then
    metrics_of "$OUT/answers-own-adapter.mp" rank-own-adapter || die "fuse / metrics failed (see $LOG)"
    {
        printf '%-10s %10s %16s %16s\n' method "CPU H@3" "dev, CPU adapter" "dev, own adapter"
        for m in base pointwise pairwise listwise hybrid; do
            printf '%-10s %10s %16s %16s\n' "$m" "$(h3 "$A/llm.json" $m)" "$(h3 "$OUT/rank-cpu-adapter.json" $m)" \
                "$(h3 "$OUT/rank-own-adapter.json" $m)"
        done
    } | tee -a "$LOG" >"$OUT/table.txt"
    cat "$OUT/table.txt"
fi
