#!/usr/bin/env bash
# bench/rank-bench.sh - rank throughput on stories260K: queries/s and tokens/s in both decode
# modes, prefix sharing on and off, and the on/off ratio. The queries follow the evaluation
# protocol's shape (per user: 10 pointwise, 10 pairwise, 1 listwise over 10 candidates; alpaca
# prompts whose history part, shared per user and task, is about half of each prompt).
# Usage: BINDIR=bin tests/bench/rank-bench.sh [USERS (16)] [MAX_NEW (32)] [THREADS (all)]
# Each figure is the best of 2 runs; tokens/s counts the prompt tokens as if unshared plus the
# generated and scored tokens, so on/off compare the same work.
set -euo pipefail
B=${BINDIR:-bin}
SHARED=${SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/../shared}
NU=${1:-16} MAXNEW=${2:-32} THR=${3:-}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
"$B/llm" convert-llama2c "$SHARED/models/stories260K/stories260K.bin" "$SHARED/models/stories260K/tok512.bin" "$t/m" >/dev/null

TITLES=("Toy Story (1995)" "Heat (1995)" "Fargo (1996)" "Babe (1995)" "Casino (1995)" "Sabrina (1995)"
        "Jumanji (1995)" "Balto (1995)" "Braveheart (1995)" "Apollo 13 (1995)" "Batman Forever (1995)" "Clueless (1995)")
W0='Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n'
gen() {
    local u k j id=0
    printf '{"schema":"itrek.queries","version":1,"producer":"bench","params":{"scheme":"loo","part":"test","scale":[1,5]},"inputs":{}}\n'
    for ((u = 0; u < NU; u++)); do
        local liked="" dis="" rated=""
        for ((j = 0; j < 6; j++)); do liked+="${liked:+, }\\\"${TITLES[$(((u + j) % 12))]}\\\""; done
        for ((j = 6; j < 8; j++)); do dis+="${dis:+, }\\\"${TITLES[$(((u + j) % 12))]}\\\""; done
        for ((j = 0; j < 8; j++)); do rated+="${rated:+; }\\\"${TITLES[$(((u + j) % 12))]}\\\": $((1 + (u + j) % 5))"; done
        local pre="${W0}Predict the relevance score between 1 and 5. Respond only with a number.\\n\\n### Input:\\nUser's historical movie ratings: $rated.\\n\\n" pl
        pl=$(printf "$pre" | wc -c)
        for ((k = 0; k < 10; k++)); do
            printf '{"id":%d,"task":"pointwise","user":%d,"prompt":"%sQuestion: predict the score of \\"%s\\".\\n\\n### Response:\\n","prefix_len":%d,"items":[%d],"ranks":[%d],"titles":["%s"]}\n' \
                $id $u "$pre" "${TITLES[$(((u + k) % 12))]}" $pl $k $k "${TITLES[$(((u + k) % 12))]}"
            id=$((id + 1))
        done
        pre="${W0}Respond only with \\\"Yes.\\\" or \\\"No.\\\".\\n\\n### Input:\\nUser's liked movies: $liked.\\nUser's disliked movies: $dis.\\n\\n"
        pl=$(printf "$pre" | wc -c)
        for ((k = 0; k < 10; k++)); do
            local x=${TITLES[$(((u + k / 2 * 2) % 12))]} y=${TITLES[$(((u + k / 2 * 2 + 1) % 12))]}
            [ $((k % 2)) = 1 ] && { local z=$x; x=$y; y=$z; }
            printf '{"id":%d,"task":"pairwise","user":%d,"prompt":"%sQuestion: Would the user prefer \\"%s\\" over \\"%s\\"?\\n\\n### Response:\\n","prefix_len":%d,"items":[0,1],"ranks":[0,1],"titles":["%s","%s"],"pair":%d,"swapped":%s}\n' \
                $id $u "$pre" "$x" "$y" $pl "$x" "$y" $((k / 2)) "$([ $((k % 2)) = 1 ] && echo true || echo false)"
            id=$((id + 1))
        done
        # (stories260K has a context of 512 tokens: a shorter history for the listwise prompt)
        pre="${W0}Rank the candidates.\\n\\n### Input:\\nUser's liked movies: ${liked%%, \\\"${TITLES[$(((u + 2) % 12))]}*}.\\n\\n"
        pl=$(printf "$pre" | wc -c)
        local tl="" cand=""
        for ((j = 0; j < 10; j++)); do
            tl+="${tl:+,}\"${TITLES[$(((u + j + 2) % 12))]}\""; cand+="${cand:+, }\\\"${TITLES[$(((u + j + 2) % 12))]}\\\""
        done
        printf '{"id":%d,"task":"listwise","user":%d,"prompt":"%sQuestion: How would the user rank the candidates: %s?\\n\\n### Response:\\n","prefix_len":%d,"items":[0,1,2,3,4,5,6,7,8,9],"ranks":[0,1,2,3,4,5,6,7,8,9],"titles":[%s]}\n' \
            $id $u "$pre" "$cand" $pl "$tl"
        id=$((id + 1))
    done
}
gen | "$B/json2mp" >"$t/q.mp"

# run MODE SHARE: prints "queries q/s tok/s prompt computed generated scored seconds" (best of 2 by q/s)
run() {
    local best="" line q ps cp g s sec qs ts
    for _ in 1 2; do
        "$B/rank" --model "$t/m" --decode "$1" $2 --max-new "$MAXNEW" ${THR:+--threads $THR} --log-every 1e9 "$t/q.mp" \
            -o "$t/a.mp" 2>"$t/err"
        line=$(grep -E '^rank: [0-9]+ queries' "$t/err")
        read -r q ps cp g s sec < <(echo "$line" | sed -E 's/^rank: ([0-9]+) queries.*prompt tokens ([0-9]+) \(computed ([0-9]+)\), generated ([0-9]+), scored ([0-9]+), ([0-9.]+) s,.*/\1 \2 \3 \4 \5 \6/')
        qs=$(awk -v q="$q" -v s="$sec" 'BEGIN { printf "%.1f", q / s }')
        ts=$(awk -v a="$ps" -v b="$g" -v c="$s" -v d="$sec" 'BEGIN { printf "%.0f", (a + b + c) / d }')
        if [ -z "$best" ] || awk -v a="$qs" -v b="${best%% *}" 'BEGIN { exit !(a > b) }'; then best="$qs $ts $q $ps $cp $g $s $sec"; fi
    done
    echo "$best"
}
printf '%s users, %s queries; stories260K fp32; max-new %s; %s\n' "$NU" "$(("$NU" * 21))" "$MAXNEW" "$(nproc) cores${THR:+, $THR threads}"
printf '%-10s %-8s %10s %10s %9s %11s %9s %8s %8s\n' mode sharing queries/s tokens/s queries prompt_tok computed gen scored
declare -A QS
for mode in score generate; do
    for share in on off; do
        flag=""; [ $share = off ] && flag=--no-prefix-sharing
        read -r qs ts q ps cp g s sec < <(run $mode "$flag")
        QS[$mode$share]=$qs
        printf '%-10s %-8s %10s %10s %9s %11s %9s %8s %8s\n' $mode $share "$qs" "$ts" "$q" "$ps" "$cp" "$g" "$s"
    done
done
for mode in score generate; do
    awk -v a="${QS[${mode}on]}" -v b="${QS[${mode}off]}" -v m=$mode 'BEGIN { printf "%s: prefix sharing speed-up (queries/s on / off) = %.2fx\n", m, a / b }'
done
