#!/usr/bin/env bash
# tests/llm/tokenizer.sh - common/llm/tokenizer.c against Debian's spm_encode / spm_decode.
#
# Every comparison is byte-for-byte on whole outputs: one line of ids (or text) per input
# line. Models: the LLaMA-2 tokenizer (.model and llama2.c .bin), stories260K's tok512.bin,
# and BPE models trained here with spm_train (byte fallback on/off, NFKC and identity
# normalisation, user-defined and control symbols, no dummy prefix, split digits, pad id).
# The C side is tests/llm/test_tokenizer in its command-line mode.
source "$ITREK_ROOT/tests/cli/lib.sh"

TOK=${UNITDIR:-$ITREK_ROOT/build/rel/tests}/llm/test_tokenizer
LLAMA=$SHARED/models/llama2-tokenizer
STORIES=$SHARED/models/stories260K
if [ ! -x "$TOK" ]; then fail "tokenizer cli" "$TOK not built"; exit 0; fi
if ! command -v spm_encode >/dev/null; then fail "spm_encode" "not installed (Debian package sentencepiece)"; exit 0; fi

# same_out NAME EXPECTED GOT: identical files, else the first differing lines
same_out() {
    if cmp -s "$2" "$3"; then pass "$1"
    else fail "$1" "$(diff "$2" "$3" | head -4 | cut -c1-200 | tr '\n' '|')"; fi
}

# ---------- inputs ----------
iconv -f latin1 -t utf-8 "$SHARED/data/ml-100k/u.item" | cut -d'|' -f2 >"$T/titles.txt"
# sentences like the ones the pipeline builds: user histories of titles
iconv -f latin1 -t utf-8 "$SHARED/data/ml-100k/u.item" | cut -d'|' -f1,2 >"$T/id_title"
head -n 3000 "$SHARED/data/ml-100k/u.data" | awk -F'\t' 'NR==FNR { split($0, a, "|"); t[a[1]] = substr($0, length(a[1]) + 2); next }
    { printf "User %d rated %s with %d stars.\n", $1, t[$2], $3 }' "$T/id_title" - >"$T/history.txt"
{
    echo ""
    echo " "
    echo "   "
    echo "  leading spaces"
    echo "trailing spaces   "
    echo "a  b   c    d     e"
    printf '\ttab\tseparated\t\n'
    printf 'tab\t \tmixed \t\n'
    printf 'windows line\r\n'
    printf 'NBSP\xc2\xa0here and\xc2\xa0\xc2\xa0two\n'
    printf 'ideographic\xe3\x80\x80space\n'
    echo "full-width ＡＢＣ１２３ ｶﾀｶﾅ"
    echo "ligature ﬁ ﬂ ① Ⅻ ㍿ ½ ²"
    printf 'combining e\xcc\x81 vs \xc3\xa9\n'
    echo "CJK 日本語のテキスト 中文字符 한국어"
    echo "emoji 😀👍🏽 🇫🇷 👨‍👩‍👧 ✨"
    printf 'invalid \xff\xfe bytes \xc3 end\n'
    printf 'lone continuation \x80\x80 x\n'
    printf 'surrogate \xed\xa0\x80 overlong \xc0\xaf\n'
    echo "<s> </s> <unk> <pad> <0x41> <sep>"
    echo "▁already▁escaped ▁ ▁▁"
    printf 'zero\xe2\x80\x8bwidth\n'
    echo "Ünïcödé Äpfel Straße ÀÉÎÕÜ"
    echo "Русский текст, Ελληνικά"
    echo "العربية עברית"
    echo "x"
    echo "1234567890 3.14 1,000,000 (1995) 19"
    echo "((((((((((((((((((((((("
    echo "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    echo "Star Wars (1977)Star Wars (1977)  Star Wars"
    echo "<movie>Toy Story (1995)</movie> <movie> <sep>"
    awk 'BEGIN { for (i = 0; i < 300; i++) printf "Toy Story (1995), "; print "" }'
} >"$T/tricky.txt"
# random lines from a pool of troublesome fragments (spaces, NFKC-sensitive and multi-byte
# characters, user-defined symbols, invalid UTF-8 bytes)
awk 'BEGIN { srand(5);
    n = split("  |   |\t|a|e|t|h|the|Star|(19|19|9|0|)|<movie>|</movie>|ab|é|e\314\201|ß|ﬁ|Ａ|１|中|文|日本|😀|👍🏽|\302\240|\343\200\200|\342\200\213|▁|<s>|<0x41>|\r|x|Y|Toy Story|,|.|-|'"'"'|▁▁|ｶ|Ⅻ|½|\357\277\275|\377|\303|\200|\355\240\200|\300\257|\360\237", pool, "|");
    for (l = 0; l < 2000; l++) { k = int(rand() * 31); s = "";
        for (i = 0; i < k; i++) s = s pool[1 + int(rand() * n)];
        print s } }' >"$T/fuzz.txt"
cat "$T/titles.txt" "$T/history.txt" "$T/tricky.txt" "$T/fuzz.txt" >"$T/corpus.txt"
echo "corpus: $(wc -l <"$T/corpus.txt") lines" >&2

# Random id lines (1..24 ids; a third of them byte pieces, some control/unk) for decode tests.
rand_ids() { # VOCAB SEED
    awk -v V="$1" -v S="$2" 'BEGIN { srand(S); for (l = 0; l < 400; l++) { n = 1 + int(rand() * 24); s = "";
        for (i = 0; i < n; i++) { r = rand();
            if (r < 0.05) id = int(rand() * 3); else if (r < 0.35) id = 3 + int(rand() * 256);
            else id = int(rand() * V);
            if (id >= V) id = V - 1;
            s = s (i ? " " : "") id }
        print s } }'
}

# check_model NAME SPMMODEL [OURSPEC]: our encode (from OURSPEC, default the same .model)
# equals spm_encode on the corpus; our decode equals spm_decode on spm's ids and on random
# ids; writing the tokenizer back out gives a model spm_encode agrees with.
check_model() {
    local name=$1 model=$2 spec=${3:-$2}
    spm_encode --model="$model" --output_format=id <"$T/corpus.txt" >"$T/$name.spm.ids" 2>"$T/spm.err" ||
        { fail "$name: spm_encode" "$(head -c 200 "$T/spm.err")"; return; }
    "$TOK" encode "$spec" <"$T/corpus.txt" >"$T/$name.ids" 2>"$T/tok.err" ||
        { fail "$name: encode" "$(head -c 200 "$T/tok.err")"; return; }
    same_out "$name: encode == spm_encode ($(wc -l <"$T/corpus.txt") lines)" "$T/$name.spm.ids" "$T/$name.ids"
    # pieces: spm_encode prints an <unk>'s source text where we print "<unk>" (the ids agree,
    # checked above), so lines with an <unk> are left out of this comparison
    spm_encode --model="$model" --output_format=piece <"$T/tricky.txt" >"$T/$name.spm.pieces"
    "$TOK" pieces "$spec" <"$T/tricky.txt" >"$T/$name.pieces"
    awk 'NR == FNR { unk[FNR] = index($0, "<unk>") > 0; next } !unk[FNR]' "$T/$name.pieces" "$T/$name.spm.pieces" >"$T/$name.spm.pk"
    grep -v -F '<unk>' "$T/$name.pieces" >"$T/$name.pk" || true
    same_out "$name: pieces == spm_encode pieces ($(wc -l <"$T/$name.pk") lines)" "$T/$name.spm.pk" "$T/$name.pk"

    spm_decode --model="$model" --input_format=id <"$T/$name.spm.ids" >"$T/$name.spm.txt"
    "$TOK" decode "$spec" <"$T/$name.spm.ids" >"$T/$name.txt"
    same_out "$name: decode == spm_decode" "$T/$name.spm.txt" "$T/$name.txt"
    local vocab
    vocab=$("$TOK" load "$spec" | awk '{ print $2 }')
    rand_ids "$vocab" 7 >"$T/$name.rand"
    spm_decode --model="$model" --input_format=id <"$T/$name.rand" >"$T/$name.spm.rtxt"
    "$TOK" decode "$spec" <"$T/$name.rand" >"$T/$name.rtxt"
    same_out "$name: decode == spm_decode on random ids" "$T/$name.spm.rtxt" "$T/$name.rtxt"

    expect_ok "$name: save" "$TOK" save "$spec" "$T/$name.saved.model"
    spm_encode --model="$T/$name.saved.model" --output_format=id <"$T/corpus.txt" >"$T/$name.saved.spm.ids" 2>"$T/spm.err"
    same_out "$name: spm_encode with saved model" "$T/$name.spm.ids" "$T/$name.saved.spm.ids"
    "$TOK" encode "$T/$name.saved.model" <"$T/corpus.txt" >"$T/$name.saved.ids"
    same_out "$name: reloaded saved model" "$T/$name.spm.ids" "$T/$name.saved.ids"
}

# ---------- LLaMA-2 and stories260K ----------
check_model llama "$LLAMA/tokenizer.model"
check_model llama2c "$LLAMA/tokenizer.model" "$LLAMA/tokenizer.bin:32000"
# tok512.bin has no .model of its own: the one we write must make spm_encode agree with us
"$TOK" save "$STORIES/tok512.bin:512" "$T/tok512.model" 2>"$T/err" && pass "tok512: save" || fail "tok512: save" "$(cat "$T/err")"
check_model tok512 "$T/tok512.model" "$STORIES/tok512.bin:512"

# streaming decode (tok_decode_piece) gives the same text as tok_decode for valid text
"$TOK" encode "$LLAMA/tokenizer.model" <"$T/titles.txt" | "$TOK" stream "$LLAMA/tokenizer.model" >"$T/stream.txt"
same_out "llama: stream decode of titles == titles" "$T/titles.txt" "$T/stream.txt"

# ---------- models trained here ----------
train() { # NAME OPTIONS...
    local name=$1; shift
    if spm_train --input="$T/train.txt" --model_prefix="$T/$name" --model_type=bpe \
        --num_threads=2 --minloglevel=2 "$@" >"$T/$name.log" 2>&1; then
        pass "train $name"; return 0
    fi
    fail "train $name" "$(tail -n 2 "$T/$name.log" | tr '\n' ' ' | cut -c1-300)"; return 1
}
cat "$T/titles.txt" "$T/history.txt" "$T/tricky.txt" >"$T/train.txt"
# default normalisation (nmt_nfkc, remove_extra_whitespaces) with byte fallback
train nfkc_bytes --vocab_size=800 --byte_fallback=true && check_model nfkc_bytes "$T/nfkc_bytes.model"
# no byte fallback, low character coverage: rare characters become <unk>
train nfkc_unk --vocab_size=600 --character_coverage=0.98 && check_model nfkc_unk "$T/nfkc_unk.model"
# LLaMA-like: identity normalisation, spaces kept, digits split, byte fallback, pad id
train ident --vocab_size=700 --normalization_rule_name=identity --remove_extra_whitespaces=false \
    --byte_fallback=true --split_digits=true --allow_whitespace_only_pieces=true --pad_id=3 &&
    check_model ident "$T/ident.model"
# user-defined and control symbols, no dummy prefix
train user --vocab_size=700 --byte_fallback=true --add_dummy_prefix=false \
    --user_defined_symbols='<movie>,</movie>,(19,Star Wars,▁the,ab' --control_symbols='<sep>' &&
    check_model user "$T/user.model"
# case-folding NFKC
train nfkc_cf --vocab_size=600 --normalization_rule_name=nfkc_cf && check_model nfkc_cf "$T/nfkc_cf.model"

# a unigram model is refused with a reason, not mis-encoded
if spm_train --input="$T/train.txt" --model_prefix="$T/uni" --model_type=unigram --vocab_size=500 \
    --minloglevel=2 >"$T/uni.log" 2>&1; then
    expect_fail "unigram model refused" 1 "^error: .*uni.model: unsupported SentencePiece model_type unigram" \
        "$TOK" load "$T/uni.model"
fi

# ---------- bad files ----------
head -c 250000 "$LLAMA/tokenizer.model" >"$T/trunc.model"
expect_fail "truncated model: one-line error" 1 "^error: .*trunc.model: .+" "$TOK" load "$T/trunc.model"
[ "$(wc -l <"$T/err")" -eq 1 ] && pass "truncated model: exactly one line" || fail "truncated model: exactly one line" "$(cat "$T/err")"
head -c 3000 "$STORIES/tok512.bin" >"$T/trunc.bin"
expect_fail "truncated tok512.bin: one-line error" 1 "^error: .*trunc.bin:512: truncated" "$TOK" load "$T/trunc.bin:512"
expect_fail "missing model" 1 "^error: .*nope.model: cannot open" "$TOK" load "$T/nope.model"
exit 0
