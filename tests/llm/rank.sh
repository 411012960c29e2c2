#!/usr/bin/env bash
# tests/llm/rank.sh - the rank stage on stories260K: score and generate modes, prefix sharing
# on/off, seeds, resume (--max-users, a torn .partial, SIGTERM), shards and --merge, bad input.
. "$(dirname "$0")/../cli/lib.sh"
R=$BINDIR/rank
J2M=$BINDIR/json2mp
M2J=$BINDIR/mp2json
M=$T/m
if ! "$BINDIR/llm" convert-llama2c "$SHARED/models/stories260K/stories260K.bin" "$SHARED/models/stories260K/tok512.bin" "$M" >/dev/null 2>&1; then
    fail "convert stories260K" "llm convert-llama2c failed"; exit 0
fi

TITLES=("Toy Story (1995)" "Heat (1995)" "Fargo (1996)" "Babe (1995)" "Casino (1995)" "Sabrina (1995)" "Jumanji (1995)" "Balto (1995)")
W0='Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n'

# gen_queries N_USERS: JSON lines of an itrek.queries stream (header first), alpaca prompts; per
# user 3 pointwise, 2 pairwise (one pair, both orders) and 1 listwise query over 7 candidates.
# prefix_len ends each prompt's history (shared by the user's queries of one task).
gen_queries() {
    local nu=$1 id=0 u k j
    printf '{"schema":"itrek.queries","version":1,"producer":"test","params":{"scheme":"loo","part":"test","scale":[1,5]},"inputs":{}}\n'
    for ((u = 0; u < nu; u++)); do
        local a=${TITLES[$((u % 8))]} b=${TITLES[$(((u + 3) % 8))]} c=${TITLES[$(((u + 5) % 8))]}
        local hist="User's liked movies: \\\"$a\\\", \\\"$b\\\".\\nUser's disliked movies: \\\"$c\\\".\\n\\n"
        local pre="${W0}Predict the score between 1 and 5.\\n\\n### Input:\\n$hist" pl
        pl=$(printf "$pre" | wc -c)
        for k in 1 2 3; do
            local t=${TITLES[$(((u + k) % 8))]}
            printf '{"id":%d,"task":"pointwise","user":%d,"prompt":"%s","prefix_len":%d,"items":[%d],"ranks":[%d],"titles":["%s"]}\n' \
                $id $u "${pre}Question: the score of \\\"$t\\\"?\\n\\n### Response:\\n" $pl $k $k "$t"
            id=$((id + 1))
        done
        pre="${W0}Respond only with \\\"Yes.\\\" or \\\"No.\\\".\\n\\n### Input:\\n$hist"
        pl=$(printf "$pre" | wc -c)
        for k in 0 1; do
            local x=${TITLES[$(((u + 1 + k) % 8))]} y=${TITLES[$(((u + 2 - k) % 8))]}
            printf '{"id":%d,"task":"pairwise","user":%d,"prompt":"%s","prefix_len":%d,"items":[1,2],"ranks":[0,1],"titles":["%s","%s"],"pair":0,"swapped":%s}\n' \
                $id $u "${pre}Question: Would the user prefer \\\"$x\\\" over \\\"$y\\\"?\\n\\n### Response:\\n" $pl "$x" "$y" \
                "$([ $k = 1 ] && echo true || echo false)"
            id=$((id + 1))
        done
        pre="${W0}Rank the candidates; answer the top five titles, one per line.\\n\\n### Input:\\n$hist"
        pl=$(printf "$pre" | wc -c)
        local tl="" cand=""
        for ((j = 0; j < 7; j++)); do
            local t=${TITLES[$(((u + j) % 8))]}
            tl+="${tl:+,}\"$t\""; cand+="${cand:+, }\\\"$t\\\""
        done
        printf '{"id":%d,"task":"listwise","user":%d,"prompt":"%s","prefix_len":%d,"items":[0,1,2,3,4,5,6],"ranks":[0,1,2,3,4,5,6],"titles":[%s]}\n' \
            $id $u "${pre}Question: How would the user rank the candidates: $cand?\\n\\n### Response:\\n" $pl "$tl"
        id=$((id + 1))
    done
}

gen_queries 4 >"$T/q.jsonl"
"$J2M" <"$T/q.jsonl" >"$T/q.mp" || { fail "json2mp queries"; exit 0; }
NQ=$(($(wc -l <"$T/q.jsonl") - 1))

texts() { "$M2J" "$1" | tail -n +2 | sed 's/,"scores":\[[^]]*\]//'; }
ids() { "$M2J" "$1" | tail -n +2 | sed 's/^{"id":\([0-9]*\),.*/\1/'; }
# max |score difference| between two answer files (same records in the same order)
score_diff() {
    paste -d'|' <("$M2J" "$1" | tail -n +2 | sed -n 's/.*"scores":\[\([^]]*\)\].*/\1/p') \
                <("$M2J" "$2" | tail -n +2 | sed -n 's/.*"scores":\[\([^]]*\)\].*/\1/p') |
        awk -F'|' '{ n = split($1, a, ","); split($2, b, ","); for (i = 1; i <= n; i++) { d = a[i] - b[i]; if (d < 0) d = -d; if (d > m) m = d } } END { printf "%.3g\n", m + 0 }'
}

# ---------- score mode
expect_ok "score mode runs" "$R" --model "$M" --decode score -o "$T/s.mp" --quiet "$T/q.mp"
n=$(ids "$T/s.mp" | wc -l)
[ "$n" = "$NQ" ] && pass "score: one answer per query ($n)" || fail "score: one answer per query" "$n of $NQ"
"$M2J" "$T/s.mp" | head -1 >"$T/hdr"
grep -q '"decode":"score"' "$T/hdr" && grep -q '"queries":{"scheme":"loo","part":"test","count":'"$NQ"'}' "$T/hdr" &&
    grep -q '"schema":"itrek.answers","version":1' "$T/hdr" && grep -q '"inputs":{"queries":' "$T/hdr" &&
    pass "score: header (schema, params, queries copied)" || fail "score: header" "$(cat "$T/hdr")"
# pointwise: 5 scores and the argmax as text; pairwise: 2 scores, Yes./No.
bad=$("$M2J" "$T/s.mp" | grep '"task":"pointwise"' | awk '{ if ($0 !~ /"text":"[1-5]","scores":\[[^],]*,[^],]*,[^],]*,[^],]*,[^],]*\]/) n++ } END { print n + 0 }')
[ "$bad" = 0 ] && pass "score: pointwise answers are a rating and 5 log-probabilities" || fail "score: pointwise format" "$bad bad"
bad=$("$M2J" "$T/s.mp" | grep '"task":"pointwise"' | sed 's/.*"text":"\([1-5]\)","scores":\[\(.*\)\]}/\1 \2/' |
    awk '{ split($2, s, ","); b = 1; for (i = 2; i <= 5; i++) if (s[i] + 0 > s[b] + 0) b = i; if (b != $1) n++ } END { print n + 0 }')
[ "$bad" = 0 ] && pass "score: pointwise text is the most likely rating" || fail "score: pointwise argmax" "$bad bad"
bad=$("$M2J" "$T/s.mp" | grep '"task":"pairwise"' | awk '{ if ($0 !~ /"text":"(Yes\.|No\.)","scores":\[[^],]*,[^],]*\]/) n++ } END { print n + 0 }')
[ "$bad" = 0 ] && pass "score: pairwise answers are Yes./No. with 2 log-probabilities" || fail "score: pairwise format" "$bad bad"
# listwise: 5 distinct candidate titles, quoted, one per line
bad=$("$M2J" "$T/s.mp" | grep '"task":"listwise"' | sed 's/.*"text":"\(.*\)"}$/\1/' |
    awk -v titles="$(printf '%s|' "${TITLES[@]}")" '
        BEGIN { split(titles, t, "|"); for (i in t) if (t[i] != "") ok["\\\"" t[i] "\\\""] = 1 }
        { n = split($0, p, /\\n/); delete seen; good = (n == 5)
          for (i = 1; i <= n; i++) { if (!(p[i] in ok) || (p[i] in seen)) good = 0; seen[p[i]] = 1 }
          if (!good) { bad++; print "bad: " $0 > "/dev/stderr" } }
        END { print bad + 0 }')
nl=$("$M2J" "$T/s.mp" | grep -c '"task":"listwise"')
[ "$bad" = 0 ] && [ "$nl" = 4 ] && pass "score: every listwise answer names 5 distinct candidates ($nl answers)" || fail "score: listwise" "$bad bad of $nl"
# listwise candidates must be this query's: a query with 2 titles gets both and only them
printf '%s\n' '{"schema":"itrek.queries","version":1,"params":{"scheme":"loo","part":"test"}}' \
    '{"id":1,"task":"listwise","user":3,"prompt":"### Response:\n","prefix_len":0,"titles":["Heat (1995)","Babe (1995)"]}' | "$J2M" >"$T/q2.mp"
"$R" --model "$M" --decode score --quiet "$T/q2.mp" | "$M2J" | tail -1 >"$T/a2"
grep -Eq '"text":"(\\"Heat \(1995\)\\"\\n\\"Babe \(1995\)\\"|\\"Babe \(1995\)\\"\\n\\"Heat \(1995\)\\")"' "$T/a2" &&
    pass "score: listwise with 2 candidates names both" || fail "score: listwise with 2 candidates" "$(cat "$T/a2")"

# listwise likelihood: every title scored as the answer's first item; text = the best five by score
expect_ok "score, --listwise likelihood" "$R" --model "$M" --decode score --listwise likelihood -o "$T/sl.mp" --quiet "$T/q.mp"
grep -q '"listwise":"likelihood"' <("$M2J" "$T/sl.mp" | head -1) && grep -q '"listwise":"greedy"' "$T/hdr" &&
    pass "likelihood: header names the listwise order" || fail "likelihood: header" "$("$M2J" "$T/sl.mp" | head -1)"
# user u's candidates are TITLES[(u + j) % 8], j = 0..6: rebuild the expected top five from the scores
bad=$("$M2J" "$T/sl.mp" | grep '"task":"listwise"' | sed 's/.*"user":\([0-9]*\),"text":"\(.*\)","scores":\[\(.*\)\]}$/\1|\2|\3/' |
    awk -F'|' -v titles="$(printf '%s|' "${TITLES[@]}")" '
        BEGIN { split(titles, t, "|") }
        { u = $1; n = split($3, s, ","); if (n != 7) { bad++; next }
          delete used; want = ""
          for (r = 1; r <= 5; r++) { b = 0
              for (i = 1; i <= n; i++) if (!(i in used) && (b == 0 || s[i] + 0 > s[b] + 0)) b = i
              used[b] = 1; want = want (r > 1 ? "\\n" : "") "\\\"" t[(u + b - 1) % 8 + 1] "\\\"" }
          if (want != $2) { bad++; print "want " want " got " $2 > "/dev/stderr" } }
        END { print bad + 0 }')
nl=$("$M2J" "$T/sl.mp" | grep -c '"task":"listwise"')
[ "$bad" = 0 ] && [ "$nl" = 4 ] && pass "likelihood: 7 scores per listwise answer, text = the best five by score" || fail "likelihood: listwise" "$bad bad of $nl"
diff <(texts "$T/s.mp" | grep -v '"task":"listwise"') <(texts "$T/sl.mp" | grep -v '"task":"listwise"') >/dev/null &&
    pass "likelihood: pointwise and pairwise answers unchanged" || fail "likelihood: other tasks changed"
expect_ok "likelihood, no prefix sharing, batch 3" "$R" --model "$M" --decode score --listwise likelihood --no-prefix-sharing --batch 3 -o "$T/sl_np.mp" --quiet "$T/q.mp"
d=$(score_diff "$T/sl.mp" "$T/sl_np.mp")
diff <(texts "$T/sl.mp") <(texts "$T/sl_np.mp") >/dev/null && awk -v d="$d" 'BEGIN { exit !(d < 1e-3) }' &&
    pass "likelihood: same answers and scores without prefix sharing (max diff $d)" || fail "likelihood: prefix sharing" "max diff $d"
"$R" --model "$M" --decode score --listwise likelihood --quiet "$T/q2.mp" | "$M2J" | tail -1 >"$T/a2l"
grep -Eq '"text":"(\\"Heat \(1995\)\\"\\n\\"Babe \(1995\)\\"|\\"Babe \(1995\)\\"\\n\\"Heat \(1995\)\\")","scores":\[[^],]*,[^],]*\]' "$T/a2l" &&
    pass "likelihood: 2 candidates, 2 scores, both named" || fail "likelihood: 2 candidates" "$(cat "$T/a2l")"
printf '%s\n' '{"schema":"itrek.queries","version":1,"params":{"scheme":"loo","part":"test"}}' \
    '{"id":1,"task":"listwise","user":3,"prompt":"### Response:\n","prefix_len":0,"titles":["Heat (1995)"]}' | "$J2M" >"$T/q1.mp"
"$R" --model "$M" --decode score --listwise likelihood --quiet "$T/q1.mp" | "$M2J" | tail -1 >"$T/a1l"
grep -Eq '"text":"\\"Heat \(1995\)\\"","scores":\[[^],]*\]' "$T/a1l" && pass "likelihood: one candidate (title + EOS), one score" || fail "likelihood: one candidate" "$(cat "$T/a1l")"
expect_fail "usage: --listwise likelihood in generate mode" 2 "--listwise likelihood needs --decode score" "$R" --model "$M" --listwise likelihood "$T/q.mp"
expect_fail "usage: --listwise beam" 2 "--listwise: expected greedy or likelihood" "$R" --model "$M" --decode score --listwise beam "$T/q.mp"

# ---------- prefix sharing on/off
expect_ok "score, no prefix sharing" "$R" --model "$M" --decode score --no-prefix-sharing -o "$T/s_np.mp" --quiet "$T/q.mp"
if diff <(texts "$T/s.mp") <(texts "$T/s_np.mp") >/dev/null; then pass "score: same answers with and without prefix sharing"; else fail "score: prefix sharing changes answers"; fi
d=$(score_diff "$T/s.mp" "$T/s_np.mp")
awk -v d="$d" 'BEGIN { exit !(d < 1e-3) }' && pass "score: scores agree without prefix sharing (max diff $d)" || fail "score: scores differ without prefix sharing" "max diff $d"
expect_ok "generate greedy" "$R" --model "$M" --temperature 0 --max-new 16 -o "$T/g0.mp" --quiet "$T/q.mp"
expect_ok "generate greedy, no prefix sharing" "$R" --model "$M" --temperature 0 --max-new 16 --no-prefix-sharing -o "$T/g0_np.mp" --quiet "$T/q.mp"
same "generate greedy: identical with and without prefix sharing" "$T/g0.mp" "$T/g0_np.mp"
n=$(ids "$T/g0.mp" | wc -l)
[ "$n" = "$NQ" ] && grep -q '"text":"..' <("$M2J" "$T/g0.mp") && pass "generate: an answer text per query" || fail "generate: answers" "$n"
# batch size does not change greedy answers (text)
expect_ok "generate greedy, batch 3" "$R" --model "$M" --temperature 0 --max-new 16 --batch 3 -o "$T/g0_b3.mp" --quiet "$T/q.mp"
if diff <(texts "$T/g0.mp") <(texts "$T/g0_b3.mp") >/dev/null; then pass "generate greedy: batch 3 gives the same texts"; else fail "generate greedy: batch changes texts"; fi

# ---------- seeds
expect_ok "generate seed 7 (a)" "$R" --model "$M" --seed 7 --temperature 1 --top-k 0 --top-p 1 --max-new 16 -o "$T/r7a.mp" --quiet "$T/q.mp"
expect_ok "generate seed 7 (b)" "$R" --model "$M" --seed 7 --temperature 1 --top-k 0 --top-p 1 --max-new 16 -o "$T/r7b.mp" --quiet "$T/q.mp"
"$R" --model "$M" --seed 8 --temperature 1 --top-k 0 --top-p 1 --max-new 16 -o "$T/r8.mp" --quiet "$T/q.mp"
same "generate: same seed, identical bytes" "$T/r7a.mp" "$T/r7b.mp"
if diff <(texts "$T/r7a.mp") <(texts "$T/r8.mp") >/dev/null; then fail "generate: another seed changes the samples"; else pass "generate: another seed changes the samples"; fi
"$R" --model "$M" --seed 7 --temperature 1 --top-k 0 --top-p 1 --max-new 16 --quiet "$T/q.mp" >"$T/r7c.mp"
same "generate: stdout and -o give the same bytes" "$T/r7a.mp" "$T/r7c.mp"

# ---------- resume
expect_ok "resume: first part (--max-users 2)" "$R" --model "$M" --decode score --batch 2 --max-users 2 -o "$T/p.mp" --quiet "$T/q.mp"
[ ! -e "$T/p.mp" ] && [ -s "$T/p.mp.partial" ] && pass "resume: a stopped run leaves only OUT.partial" || fail "resume: partial files" "$(ls "$T")"
expect_ok "resume: full run, batch 2" "$R" --model "$M" --decode score --batch 2 -o "$T/full2.mp" --quiet "$T/q.mp"
"$R" --model "$M" --decode score --batch 2 --resume -o "$T/p.mp" "$T/q.mp" 2>"$T/err" >/dev/null
grep -q "12 queries (2 users, 12 kept" "$T/err" && pass "resume: answers only the missing users" || fail "resume: summary" "$(cat "$T/err")"
same "resume: same output as an uninterrupted run" "$T/full2.mp" "$T/p.mp"
[ ! -e "$T/p.mp.partial" ] && pass "resume: .partial removed at the end" || fail "resume: .partial left"
# a torn record at the end of the partial (a run killed mid-write) is dropped
"$R" --model "$M" --decode score --batch 2 --max-users 2 -o "$T/t.mp" --quiet "$T/q.mp"
printf '\x85\xa2id\x07\xa4ta' >>"$T/t.mp.partial"
expect_ok "resume: torn partial accepted" "$R" --model "$M" --decode score --batch 2 --resume -o "$T/t.mp" --quiet "$T/q.mp"
same "resume: torn partial, same output" "$T/full2.mp" "$T/t.mp"
# resume of a complete output changes nothing; sampled generation resumes byte-identically too
expect_ok "resume: complete output" "$R" --model "$M" --decode score --batch 2 --resume -o "$T/t.mp" --quiet "$T/q.mp"
same "resume: complete output unchanged" "$T/full2.mp" "$T/t.mp"
"$R" --model "$M" --batch 2 --max-new 16 -o "$T/gfull.mp" --quiet "$T/q.mp"
"$R" --model "$M" --batch 2 --max-new 16 --max-users 1 -o "$T/gp.mp" --quiet "$T/q.mp"
"$R" --model "$M" --batch 2 --max-new 16 --resume -o "$T/gp.mp" --quiet "$T/q.mp"
same "resume: sampled generation, same output" "$T/gfull.mp" "$T/gp.mp"
# other parameters than the partial's: refused
"$R" --model "$M" --decode score --batch 2 --max-users 2 -o "$T/x.mp" --quiet "$T/q.mp"
expect_fail "resume: other parameters refused" 1 "x.mp.partial:0: .*header differs" "$R" --model "$M" --decode score --seed 9 --batch 2 --resume -o "$T/x.mp" "$T/q.mp"
# SIGTERM: the partial keeps what was written; --resume completes it
gen_queries 8 | "$J2M" >"$T/q16.mp"
"$R" --model "$M" --batch 2 --max-new 32 -o "$T/k_full.mp" --quiet "$T/q16.mp"
"$R" --model "$M" --batch 2 --max-new 32 -o "$T/k.mp" --quiet "$T/q16.mp" &
pid=$!
for i in $(seq 200); do
    sz=$(stat -c %s "$T/k.mp.partial" 2>/dev/null || echo 0)
    [ "$sz" -gt 600 ] && break
    sleep 0.02
done
kill -TERM $pid 2>/dev/null; wait $pid; rc=$?
if [ -e "$T/k.mp" ]; then
    pass "SIGTERM: (the run finished before the signal)"
else
    [ $rc -ne 0 ] && [ -s "$T/k.mp.partial" ] && pass "SIGTERM: .partial kept" || fail "SIGTERM: .partial kept" "rc $rc"
    expect_ok "SIGTERM: resume" "$R" --model "$M" --batch 2 --max-new 32 --resume -o "$T/k.mp" --quiet "$T/q16.mp"
fi
same "SIGTERM: resumed output equals an uninterrupted run" "$T/k_full.mp" "$T/k.mp"

# ---------- shards
expect_ok "shard 0/2" "$R" --model "$M" --decode score --shard 0/2 -o "$T/sh0.mp" --quiet "$T/q.mp"
expect_ok "shard 1/2" "$R" --model "$M" --decode score --shard 1/2 -o "$T/sh1.mp" --quiet "$T/q.mp"
if diff <(sort -n <(ids "$T/sh0.mp") <(ids "$T/sh1.mp")) <(ids "$T/s.mp" | sort -n) >/dev/null; then
    pass "shards: 0/2 and 1/2 cover every query once"; else fail "shards: coverage"; fi
u0=$("$M2J" "$T/sh0.mp" | tail -n +2 | grep -c '"user":[13],')
[ "$u0" = 0 ] && pass "shards: 0/2 holds only even users" || fail "shards: 0/2 users" "$u0 odd"
expect_ok "merge" "$R" --merge -o "$T/merged.mp" "$T/sh1.mp" "$T/sh0.mp"
if diff <(texts "$T/merged.mp") <(texts "$T/s.mp") >/dev/null; then pass "merge: same answers as one unsharded run"; else fail "merge: answers differ"; fi
cmp -s <("$M2J" "$T/merged.mp" | head -1) <("$M2J" "$T/s.mp" | head -1) && pass "merge: header equals the unsharded header" || fail "merge: header"
expect_fail "merge: a missing shard" 1 "shard 1/2 is missing" "$R" --merge -o "$T/m1.mp" "$T/sh0.mp"
expect_fail "merge: a shard twice" 1 "given twice" "$R" --merge -o "$T/m1.mp" "$T/sh0.mp" "$T/sh0.mp"
"$R" --model "$M" --decode score --shard 1/2 --seed 9 -o "$T/sh1s9.mp" --quiet "$T/q.mp"
expect_fail "merge: other parameters" 1 "sh1s9.mp:0: header differs" "$R" --merge -o "$T/m1.mp" "$T/sh0.mp" "$T/sh1s9.mp"

# ---------- bad input: exit 1, FILE:RECORD: field, no output
bad() { # name, regex, record JSON
    printf '%s\n' '{"schema":"itrek.queries","version":1,"params":{"scheme":"loo","part":"test"}}' \
        '{"id":0,"task":"pointwise","user":1,"prompt":"### Response:\n","prefix_len":3}' "$3" | "$J2M" >"$T/bad.mp"
    rm -f "$T/bad_out.mp" "$T/bad_out.mp.partial"
    expect_fail "bad input: $1" 1 "^rank: error: .*bad.mp:2: .*$2" "$R" --model "$M" --decode score -o "$T/bad_out.mp" "$T/bad.mp"
    [ ! -e "$T/bad_out.mp" ] && [ ! -e "$T/bad_out.mp.partial" ] && [ -z "$(ls "$T" | grep bad_out)" ] &&
        pass "bad input: $1: no output" || fail "bad input: $1: output left" "$(ls "$T" | grep bad_out)"
}
bad "missing prompt" "field 'prompt'" '{"id":1,"task":"pointwise","user":1,"prefix_len":0}'
bad "mistyped prompt" "field 'prompt': expected string" '{"id":1,"task":"pointwise","user":1,"prompt":5,"prefix_len":0}'
bad "missing id" "field 'id'" '{"task":"pointwise","user":1,"prompt":"x","prefix_len":0}'
bad "mistyped user" "field 'user': expected integer" '{"id":1,"task":"pointwise","user":"u","prompt":"x","prefix_len":0}'
bad "unknown task" "field 'task': unknown task 'ranking'" '{"id":1,"task":"ranking","user":1,"prompt":"x","prefix_len":0}'
bad "prefix_len beyond the prompt" "field 'prefix_len': 9 is outside the prompt's 1 bytes" '{"id":1,"task":"pointwise","user":1,"prompt":"x","prefix_len":9}'
bad "negative prefix_len" "field 'prefix_len'" '{"id":1,"task":"pointwise","user":1,"prompt":"x","prefix_len":-1}'
bad "listwise without titles" "field 'titles': a listwise query needs at least one title" '{"id":1,"task":"listwise","user":1,"prompt":"x","prefix_len":0,"titles":[]}'
bad "listwise, titles missing" "field 'titles'" '{"id":1,"task":"listwise","user":1,"prompt":"x","prefix_len":0}'
bad "listwise, a title not a string" "field 'titles\[1\]': expected string" '{"id":1,"task":"listwise","user":1,"prompt":"x","prefix_len":0,"titles":["a",3]}'
bad "repeated id" "field 'id': 0 repeats the id of record 1" '{"id":0,"task":"pairwise","user":1,"prompt":"x","prefix_len":0}'
long=$(printf 'word %.0s' $(seq 400))
bad "prompt over the context" "field 'prompt': .*context of 512" '{"id":1,"task":"pointwise","user":1,"prompt":"'"$long"'","prefix_len":0}'
printf '%s\n' '{"schema":"itrek.answers","version":1}' | "$J2M" >"$T/ans.mp"
expect_fail "bad input: another schema" 1 "^rank: error: .*ans.mp:0: .*schema" "$R" --model "$M" "$T/ans.mp"
printf '%s\n' '{"schema":"itrek.queries","version":1,"params":{"scale":[5]}}' '{"id":0,"task":"pointwise","user":1,"prompt":"x","prefix_len":0}' | "$J2M" >"$T/sc.mp"
expect_fail "bad input: params.scale" 1 "sc.mp:0: field 'params.scale'" "$R" --model "$M" --decode score "$T/sc.mp"
head -c 300 "$T/q.mp" >"$T/trunc.mp"
expect_fail "bad input: truncated stream" 1 "^rank: error: .*trunc.mp:" "$R" --model "$M" --decode score -o "$T/trunc_out.mp" "$T/trunc.mp"
[ ! -e "$T/trunc_out.mp" ] && pass "bad input: truncated stream: no output" || fail "truncated stream: output left"

# ---------- options
expect_fail "device cuda" 1 "^rank: error: --device cuda: (no usable CUDA device|built without CUDA|CUDA backend not built)" "$R" --model "$M" --device cuda "$T/q.mp"
expect_fail "adapter (not supported yet, or missing)" 1 "^rank: error: " "$R" --model "$M" --adapter "$T/nonexistent" "$T/q.mp"
expect_fail "missing model" 1 "^rank: error: " "$R" --model "$T/nonexistent" "$T/q.mp"
expect_fail "usage: no --model" 2 "--model is required" "$R" "$T/q.mp"
expect_fail "usage: --resume without -o" 2 "--resume needs -o" "$R" --model "$M" --resume "$T/q.mp"
expect_fail "usage: --shard 2/2" 2 "--shard: expected I/N" "$R" --model "$M" --shard 2/2 "$T/q.mp"
expect_fail "usage: --decode beam" 2 "--decode: expected generate or score" "$R" --model "$M" --decode beam "$T/q.mp"
expect_fail "usage: --top-p 0" 2 "--top-p" "$R" --model "$M" --top-p 0 "$T/q.mp"
expect_ok "--help" "$R" --help
grep -q "^usage: rank" "$T/out" && pass "--help prints usage to stdout" || fail "--help output"
# the answer format follows the queries header's params.format, and the options
printf '%s\n' '{"schema":"itrek.queries","version":1,"params":{"format":{"item":"<{title}>","sep":"; "}}}' \
    '{"id":1,"task":"listwise","user":3,"prompt":"### Response:\n","prefix_len":0,"titles":["Heat (1995)","Babe (1995)"]}' | "$J2M" >"$T/q3.mp"
"$R" --model "$M" --decode score --quiet "$T/q3.mp" | "$M2J" | tail -1 >"$T/a3"
grep -Eq '"text":"(<Heat \(1995\)>; <Babe \(1995\)>|<Babe \(1995\)>; <Heat \(1995\)>)"' "$T/a3" &&
    pass "format: header's item and separator" || fail "format: header's item and separator" "$(cat "$T/a3")"
"$R" --model "$M" --decode score --quiet --item-format '{title}' --answer-sep '\n' "$T/q3.mp" | "$M2J" | tail -1 >"$T/a3"
grep -Eq '"text":"(Heat \(1995\)\\nBabe \(1995\)|Babe \(1995\)\\nHeat \(1995\))"' "$T/a3" &&
    pass "format: --item-format and --answer-sep" || fail "format: options" "$(cat "$T/a3")"
# progress and summary on stderr
"$R" --model "$M" --decode score --log-every 0 "$T/q.mp" >/dev/null 2>"$T/err"
grep -Eq "^rank: $NQ queries \(4 users, 0 kept from an earlier run\), prompt tokens [0-9]+ \(computed [0-9]+\), generated [0-9]+, scored [0-9]+, [0-9.]+ s, [0-9.]+ queries/s, [0-9.]+ tokens/s$" "$T/err" &&
    pass "summary line" || fail "summary line" "$(cat "$T/err")"
grep -q "queries/s" <(head -1 "$T/err") && pass "progress lines with rates" || fail "progress lines" "$(head -2 "$T/err")"
