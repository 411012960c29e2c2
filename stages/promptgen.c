/* promptgen - RecRanker's pointwise / pairwise / listwise prompts in the alpaca wrapper:
 * training instructions (itrek.instructions) for adaptively sampled users, evaluation queries
 * (itrek.queries) over the candidates, and a leakage check of either. See docs/promptgen.md. */
#include "io/atomic.h"
#include "io/cli.h"
#include "io/err.h"
#include "io/progress.h"
#include "io/stream.h"
#include "llm/tokenizer.h"
#include "rec/leakcheck.h"
#include "rec/corpus.h"
#include "rec/itemvec.h"
#include "rec/prompt.h"
#include "rec/sampling.h"
#include "records/instructions.h"
#include "records/queries.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: promptgen --mode train|eval --interactions F --catalog F --mf F [options] [-o OUT]\n"
    "       promptgen --mode corpus --interactions F --catalog F [--symbols F] [--item-vectors F] [-o OUT]\n"
    "       promptgen --check --interactions F [--candidates F] [--catalog F] STREAM\n"
    "Writes RecRanker's pointwise, pairwise and listwise prompts (alpaca-wrapped): training\n"
    "instructions for sampled users (itrek.instructions), or evaluation queries over each user's\n"
    "candidates (itrek.queries); --check verifies that a stream of either leaks nothing.\n"
    "  --mode M           train (instructions), eval (queries) or corpus (text, below)\n"
    "  --interactions F   itrek.interactions (required)\n"
    "  --catalog F        itrek.items: titles (required; with --check: also checks titles)\n"
    "  --mf F             itrek.mf: hints and clustering (required)\n"
    "  --candidates F     itrek.candidates (eval: required; --check: also checks candidates)\n"
    "  --for PART         eval: test or valid (default: the candidates' part)\n"
    "  --templates F      prompt templates (default: data/prompts/recranker.tmpl of the tree)\n"
    "  --tokenizer F      the model's tokenizer for the token budget: a SentencePiece\n"
    "                     tokenizer.model or a .gguf's vocabulary (default: estimate 1 + bytes/2)\n"
    "  --context N        token budget of prompt + response (default 1024)\n"
    "  --reserve N        tokens kept for the response (default 128; training: at least the\n"
    "                     response's own length)\n"
    "  --history H        most recent rated / liked items shown (default 50)\n"
    "  --max-dislikes D   most recent disliked items shown (default 10)\n"
    "  --dislike R        ratings <= R are dislikes (default 2)\n"
    "  --scale MIN,MAX    rating scale (default: the data's, rounded outwards)\n"
    "  --tasks LIST       comma-separated subset of pointwise,pairwise,listwise (default all)\n"
    "  --no-hint          no hint from the base model\n"
    "  --hints SOURCE     base (default: the base model's scores) or recranker-leaky: RecRanker's\n"
    "                     published hints, read from a rating matrix of train, valid AND test\n"
    "                     ratings (0 when unrated), which shows held-out items; a labelled\n"
    "                     diagnostic (params.leaky; --check rejects it without --diagnostic)\n"
    "  --draws N          train: users drawn (default 5000)\n"
    "  --sampling S       train: adaptive (default) or uniform\n"
    "  --penalty C        train: repetition penalty C^(copies-1) (default 0.92)\n"
    "  --clusters K       train: k-means clusters (default 10)\n"
    "  --pool R           train: each pool list holds R * draws draws (default 0.6)\n"
    "  --positives P      train: random (default; RecRanker: random train items, the rest of the\n"
    "                     history shown) or next (the items after a random cut in time, only the\n"
    "                     history before the cut shown: the shape of a leave-one-out query)\n"
    "  --hard-negatives N train: negatives from the user's N best-scored MF items the user never\n"
    "                     interacted with, like the candidates (default 0: uniform)\n"
    "  --check            check STREAM for leakage instead of writing prompts\n"
    "  --diagnostic       with --check: accept a stream made with --hints recranker-leaky (the leak\n"
    "                     diagnostic); every other check still runs\n"
    "Corpus mode (--mode corpus --interactions F --catalog F): plain text for the backbone's\n"
    "tokenizer and pretraining, from the train part and the catalogue, one document per line.\n"
    "  --symbols F        also write each item's text (spaces as U+2581) for spm_train's\n"
    "                     --user_defined_symbols_file\n"
    "  --entry-symbols    with --symbols: also the rated history's text after each title\n"
    "                     (\": 5; \" and \": 5\" per rating) and the list separator, so that\n"
    "                     a history entry costs 2 tokens instead of 6\n"
    "  --item-vectors F   also write itrek.itemvecs: each item's PPMI vector of train-split\n"
    "                     transitions (docs/backbone.md), for lora-train --init-embeddings\n"
    "  --item-dim N       their length (default 64)\n"
    "  --window N         history items per document (default 50)\n"
    "  --stride N         step between history windows (default 25)\n"
    "  --repeat N         passes over the users, each at another window offset (default 2)\n"
    "  -o, --output PATH  output (default stdout); a .zst name compresses\n"
    "  -z, --zstd         compress the output\n" CLI_COMMON_USAGE;

enum {
    O_MODE = OPT_FIRST_STAGE, O_IA, O_CAT, O_MF, O_CAND, O_FOR, O_TMPL, O_TOK, O_CONTEXT, O_RESERVE, O_HISTORY,
    O_MAXDIS, O_DISLIKE, O_SCALE, O_TASKS, O_NOHINT, O_DRAWS, O_SAMPLING, O_PENALTY, O_CLUSTERS, O_POOL, O_POSITIVES, O_HARD, O_CHECK, O_HINTS, O_DIAGNOSTIC,
    O_SYMBOLS, O_ENTRY_SYMBOLS, O_WINDOW, O_STRIDE, O_REPEAT, O_ITEMVECS, O_ITEMDIM
};

static int tok_count(void *ctx, const char *text, size_t n) {
    if (text[n] == 0) return tok_encode(ctx, text, 1, 0, NULL, 0);
    char *s = strndup(text, n);
    if (!s) die("out of memory");
    int c = tok_encode(ctx, s, 1, 0, NULL, 0);
    free(s);
    return c;
}

/* data/prompts/recranker.tmpl relative to the executable: bin/ (../data), build/san/bin/
 * (../../../data), or an installed prefix (../share/itrek). */
static char *default_templates(void) {
    static const char *rel[] = {"../data/prompts/recranker.tmpl", "../../../data/prompts/recranker.tmpl",
                                "../share/itrek/prompts/recranker.tmpl"};
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    char *dir = dirname(exe);
    for (size_t k = 0; k < sizeof rel / sizeof rel[0]; k++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/%s", dir, rel[k]);
        if (access(p, R_OK) == 0) return realpath(p, NULL);
    }
    return NULL;
}

/* Everything the command line sets; main parses it, the modes below run on it. */
typedef struct {
    cli_common cc;
    const char *ia_path, *cat_path, *mf_path, *cand_path, *tmpl_path, *tok_path, *out;
    int mode; /* 0 train, 1 eval, 2 corpus, -1 none */
    const char *symbols_path, *itemvecs_path;
    bool entry_symbols;
    itemvec_params ivp;
    corpus_params cp;
    int for_part;
    bool zstd, hint, next_positives, diagnostic;
    hint_source hints;
    int hard_negatives;
    int context, reserve, history, max_dislikes;
    double dislike;
    int scale[2];
    bool have_scale;
    bool tasks[RTASK_COUNT];
    sampling_params sp;
    const char *stream; /* --check: the stream to check */
} pg_opts;

#define PG_LOCALS                                                                                                          \
    cli_common cc = o->cc;                                                                                                 \
    const char *ia_path = o->ia_path, *cat_path = o->cat_path, *mf_path = o->mf_path, *cand_path = o->cand_path,          \
               *tmpl_path = o->tmpl_path, *tok_path = o->tok_path, *out = o->out;                                         \
    (void)cc; (void)ia_path; (void)cat_path; (void)mf_path; (void)cand_path; (void)tmpl_path; (void)tok_path; (void)out

/* The token statistics of the records, for the header. */
static void stats_add(prompt_token_stats *s, size_t *cap, const prompt_record *r) {
    if (r->dropped > 0) s->shortened++;
    if (r->overlong) s->overlong++;
    s->per_task[r->task]++;
    if (s->n_tokens == *cap) s->tokens = xrealloc(s->tokens, (*cap = *cap ? 2 * *cap : 4096) * sizeof *s->tokens);
    s->tokens[s->n_tokens++] = r->text.tokens;
}

/* --check: the leakage check of one stream (rec/leakcheck). */
static void run_check(const pg_opts *o) {
    PG_LOCALS;
    if (cat_path && !tmpl_path) die_usage(USAGE, "no default templates found: give --templates F");
    interactions ia;
    interactions_load(&ia, ia_path);
    catalog cat;
    prompt_templates tm;
    cand_set cs;
    if (cat_path) { catalog_load(&cat, cat_path); templates_load(&tm, tmpl_path); }
    if (cand_path) cand_set_load(&cs, cand_path, PROMPT_MAX_ITEMS);
    leak_inputs in = {&ia, cat_path ? &cat : NULL, cat_path ? &tm : NULL, cand_path ? &cs : NULL, o->diagnostic};
    leak_report rep;
    leakcheck_stream(o->stream, &in, &rep);
    if (!cc.quiet)
        fprintf(stderr, "promptgen: %s: %ld %s records of %ld users: %ld history ids, %ld title searches%s: %s\n",
                o->stream, rep.records, rep.schema, rep.users, rep.history_ids, rep.title_checks,
                cand_path ? ", candidates match" : "",
                rep.leaky ? "LEAKY hints (the diagnostic, accepted by --diagnostic); nothing else leaks" : "no leakage");
    if (cand_path) cand_set_free(&cs);
    if (cat_path) { catalog_free(&cat); templates_free(&tm); }
    interactions_free(&ia);
}

/* --mode corpus: plain text for the tokenizer and pretraining, symbols, item vectors. */
static void run_corpus(const pg_opts *o) {
    PG_LOCALS;
    corpus_params cp = o->cp;
    itemvec_params ivp = o->ivp;
    const char *symbols_path = o->symbols_path, *itemvecs_path = o->itemvecs_path;
    bool entry_symbols = o->entry_symbols, zstd = o->zstd;
    if (!cat_path) die_usage(USAGE, "--catalog F is required");
    if (entry_symbols && !symbols_path) die_usage(USAGE, "--entry-symbols needs --symbols F");
    if (!tmpl_path) die_usage(USAGE, "no default templates found next to the program: give --templates F");
    interactions ia;
    interactions_load(&ia, ia_path);
    catalog cat;
    catalog_load(&cat, cat_path);
    prompt_templates tm;
    templates_load(&tm, tmpl_path);
    float *ivec = NULL;
    unsigned char *ivpresent = NULL;
    if (itemvecs_path) { /* computed before anything is written, so a failure leaves no file */
        char err[256];
        if (!(ivec = itemvec_ppmi(&ia, &ivp, &ivpresent, err, sizeof err))) die_at(ia_path, -1, "--item-vectors: %s", err);
    }
    if (entry_symbols) { /* checked before anything is written */
        char *suffix = prompt_rated_suffix(&tm, "5");
        if (!suffix) die_at(tmpl_path, -1, "field 'rated_item': --entry-symbols needs it to begin with {item}");
        free(suffix);
    }
    cp.seed = cc.seed;
    corpus_stats st;
    atomic_file of;
    atomic_open_or_die(&of, out);
    corpus_write(of.fp, atomic_name(&of), &ia, &cat, &tm, &cp, &st);
    atomic_commit_or_die(&of);
    long nsym = 0;
    if (symbols_path) {
        atomic_file so;
        atomic_open_or_die(&so, symbols_path);
        nsym = corpus_write_symbols(so.fp, atomic_name(&so), &cat, &tm, entry_symbols ? &ia : NULL);
        atomic_commit_or_die(&so);
    }
    if (itemvecs_path) {
        itemvec_write(itemvecs_path, zstd, ivec, ivpresent, ia.n_items, &cat, &tm, &ivp, ia_path);
        free(ivec);
        free(ivpresent);
    }
    if (!cc.quiet)
        fprintf(stderr, "promptgen: corpus: %ld documents (%ld catalogue, %ld rated windows, %ld liked windows), %ld bytes%s",
                st.docs, st.catalog_docs, st.rated_docs, st.liked_docs, st.bytes, symbols_path ? "" : "\n");
    if (!cc.quiet && symbols_path) fprintf(stderr, "; %ld symbols\n", nsym);
    templates_free(&tm);
    catalog_free(&cat);
    interactions_free(&ia);
}

/* --mode train|eval: the prompts, written as itrek.instructions or itrek.queries. */
static void run_prompts(const pg_opts *o) {
    PG_LOCALS;
    int mode = o->mode, for_part = o->for_part, hard_negatives = o->hard_negatives, context = o->context, reserve = o->reserve;
    int history = o->history, max_dislikes = o->max_dislikes, scale[2] = {o->scale[0], o->scale[1]};
    bool zstd = o->zstd, hint = o->hint, next_positives = o->next_positives, have_scale = o->have_scale;
    hint_source hints = o->hints;
    double dislike = o->dislike;
    bool tasks[RTASK_COUNT];
    memcpy(tasks, o->tasks, sizeof tasks);
    sampling_params sp = o->sp;
    if (!cat_path) die_usage(USAGE, "--catalog F is required");
    if (!mf_path) die_usage(USAGE, "--mf F is required");
    if (mode == 1 && !cand_path) die_usage(USAGE, "--mode eval needs --candidates F");
    if (mode == 0 && (cand_path || for_part >= 0)) die_usage(USAGE, "--candidates and --for belong to --mode eval");
    if (mode == 1 && (next_positives || hard_negatives > 0))
        die_usage(USAGE, "--positives and --hard-negatives belong to --mode train");
    if (!tmpl_path) die_usage(USAGE, "no default templates found next to the program: give --templates F");
    if (!tasks[0] && !tasks[1] && !tasks[2]) die_usage(USAGE, "--tasks: no task");

    interactions ia;
    interactions_load(&ia, ia_path);
    catalog cat;
    catalog_load(&cat, cat_path);
    mf_model mf;
    mf_read(&mf, mf_path);
    prompt_templates tm;
    templates_load(&tm, tmpl_path);
    llm_tokenizer *tok = NULL;
    if (tok_path) {
        char err[512];
        tok = tok_load(tok_path, err, sizeof err);
        if (!tok) die_at(tok_path, -1, "%s", err);
    }
    if (ia.n == 0) die_at(ia.source, -1, "no interactions");
    if (!have_scale) {
        double lo = ia.v[0].rating, hi = ia.v[0].rating;
        for (size_t k = 0; k < ia.n; k++) {
            if (ia.v[k].rating < lo) lo = ia.v[k].rating;
            if (ia.v[k].rating > hi) hi = ia.v[k].rating;
        }
        scale[0] = (int)floor(lo);
        scale[1] = (int)ceil(hi);
        if (scale[0] == scale[1]) scale[1]++;
    }
    for (size_t k = 0; k < ia.n; k++)
        if (ia.v[k].part != PART_DROP && ia.v[k].item < cat.n_items && !cat.by_id[ia.v[k].item].title)
            die_at(cat_path, -1, "item %d (user %d's interaction) has no title", ia.v[k].item, ia.v[k].user);
    for (size_t k = 0; k < ia.n; k++)
        if (ia.v[k].item >= cat.n_items)
            die_at(cat_path, -1, "item %d (user %d's interaction) is not in the catalogue", ia.v[k].item, ia.v[k].user);

    promptset ps;
    memset(&ps, 0, sizeof ps);
    ps.ia = &ia;
    ps.cat = &cat;
    ps.mf = &mf;
    bool leaky = hint && hints == HINTS_RECRANKER_LEAKY;
    ps.env = (prompt_env){&tm, &cat, scale[0], scale[1], hint, tok ? tok_count : NULL, tok, context, reserve, leaky};
    ps.hints = hints;
    ps.history = history;
    ps.max_dislikes = max_dislikes;
    ps.dislike = dislike;
    memcpy(ps.tasks, tasks, sizeof tasks);
    ps.seed = cc.seed;
    ps.threads = cc.threads;
    ps.next = next_positives;
    ps.hard = hard_negatives;

    cand_set cs;
    memset(&cs, 0, sizeof cs);
    if (mode == 1) {
        cand_set_load(&cs, cand_path, PROMPT_MAX_ITEMS);
        int cp = part_from_name(cs.part, strlen(cs.part));
        if (cp != PART_TEST && cp != PART_VALID) die_at(cand_path, 0, "field 'params.for': expected test or valid");
        if (for_part < 0) for_part = cp;
        if (cp != for_part)
            die_at(cand_path, 0, "field 'params.for': the candidates are for '%s', --for asks for '%s'", cs.part,
                   part_name((part_t)for_part));
        for (int k = 0; k < cs.n_order; k++) {
            int32_t u = cs.order[k];
            for (int j = 0; j < cs.len[u]; j++)
                if (cs.items[u][j] >= cat.n_items || !cat.by_id[cs.items[u][j]].title)
                    die_at(cand_path, k + 1, "field 'items': item %d has no title in %s", cs.items[u][j], cat_path);
        }
    }
    promptset_init(&ps, mode == 1, mode == 1 ? (part_t)for_part : PART_TRAIN);
    if (mf.n_users < ia.n_users)
        die_at(mf_path, 0, "field 'users': the model covers %d users, the interactions need %d", mf.n_users, ia.n_users);

    double t0 = now_seconds();
    prompt_token_stats os;
    memset(&os, 0, sizeof os);
    size_t os_cap = 0;
    prompt_record *recs = NULL;
    int n_recs = 0;
    sampling_result sr;
    memset(&sr, 0, sizeof sr);
    long skipped[RTASK_COUNT] = {0, 0, 0};
    int n_eval_users = 0;
    progress pg;
    if (mode == 0) {
        sampling_draw(&sr, &sp, ps.n_liked, ia.n_users, mf.P, mf.dim, cc.seed);
        recs = xmalloc(sizeof *recs * ((size_t)sr.n * RTASK_COUNT + 1));
        progress_start(&pg, "promptgen", (uint64_t)sr.n, cc.quiet, cc.log_every);
        enum { CHUNK = 256 };
        for (int s = 0; s < sr.n; s += CHUNK) {
            int n = sr.n - s < CHUNK ? sr.n - s : CHUNK, m;
            prompt_record *part = promptset_train(&ps, sr.users + s, n, s, &m, skipped);
            memcpy(recs + n_recs, part, sizeof *recs * (size_t)m);
            n_recs += m;
            free(part);
            progress_update(&pg, (uint64_t)(s + n), NULL);
        }
        progress_done(&pg, (uint64_t)sr.n, NULL);
    } else {
        int32_t *users = xmalloc(sizeof *users * (size_t)(cs.n_order + 1));
        for (int k = 0; k < cs.n_order; k++) {
            int32_t u = cs.order[k];
            if (u < ia.n_users && ul_len(&ps.target_pos, u) > 0 && cs.len[u] > 0) users[n_eval_users++] = u;
        }
        size_t cap = 0;
        progress_start(&pg, "promptgen", (uint64_t)n_eval_users, cc.quiet, cc.log_every);
        enum { CHUNK = 64 };
        for (int s = 0; s < n_eval_users; s += CHUNK) {
            int n = n_eval_users - s < CHUNK ? n_eval_users - s : CHUNK, m;
            prompt_record *part = promptset_eval(&ps, &cs, users + s, n, &m);
            if ((size_t)(n_recs + m) > cap) {
                while ((size_t)(n_recs + m) > cap) cap = cap ? 2 * cap : 4096;
                recs = xrealloc(recs, sizeof *recs * cap);
            }
            memcpy(recs + n_recs, part, sizeof *recs * (size_t)m);
            n_recs += m;
            free(part);
            progress_update(&pg, (uint64_t)(s + n), NULL);
        }
        progress_done(&pg, (uint64_t)n_eval_users, NULL);
        free(users);
    }
    for (int k = 0; k < n_recs; k++) stats_add(&os, &os_cap, &recs[k]);
    double secs = now_seconds() - t0;

    /* ---------- output ---------- */
    prompt_params pp = {
        .scheme = ia.scheme, .part = mode == 1 ? part_name((part_t)for_part) : NULL, .scale = {scale[0], scale[1]},
        .hint = hint, .history = history, .max_dislikes = max_dislikes, .like = ia.like, .dislike = dislike,
        .context = context, .reserve = reserve, .tokenizer = tok != NULL, .leaky = leaky, .cal_a = ps.cal_a, .cal_b = ps.cal_b,
        .cal_n = ps.cal_n, .seed = cc.seed, .item = tm.text[T_ITEM], .sep = tm.text[T_ANSWER_SEP], .yes = tm.text[T_PAIR_YES],
        .no = tm.text[T_PAIR_NO], .interactions = ia_path, .catalog = cat_path, .mf = mf_path,
        .candidates = mode == 1 ? cand_path : NULL, .templates = tmpl_path, .tokenizer_path = tok_path};
    memcpy(pp.tasks, tasks, sizeof pp.tasks);
    stream_writer *w = sw_open(out, zstd);
    if (mode == 0) {
        instructions_sampling is = {
            .uniform = sp.uniform, .draws = sp.draws, .pool = sp.pool, .penalty = sp.penalty, .clusters = sp.clusters,
            .next_positives = next_positives, .hard_negatives = hard_negatives, .records = n_recs, .eligible = sr.eligible,
            .n_draws = sr.n, .distinct = sr.distinct, .min_per_user = sr.min_per_user, .max_per_user = sr.max_per_user,
            .mean_per_user = sr.mean_per_user, .n_importance = sr.n_importance, .n_cluster = sr.n_cluster,
            .kmeans_iters = sr.kmeans_iters, .kmeans_inertia = sr.kmeans_inertia, .cluster_sizes = sr.cluster_sizes,
            .n_cluster_sizes = sp.uniform ? 0 : sp.clusters};
        memcpy(is.skipped, skipped, sizeof is.skipped);
        instructions_write_header(w, &pp, &is, &os);
        for (int k = 0; k < n_recs; k++) {
            const prompt_record *r = &recs[k];
            instruction_rec ir = {k, r->user, (int)r->task, r->text.prompt, r->text.response, r->text.prefix_len, r->items,
                                  r->history, r->n_items, r->n_history, r->text.tokens, r->dropped};
            instructions_write(w, &ir);
        }
    } else {
        queries_write_header(w, &pp, cs.n, n_recs, n_eval_users, &os);
        char *titles[PROMPT_MAX_ITEMS];
        for (int k = 0; k < n_recs; k++) {
            prompt_record *r = &recs[k];
            for (int i = 0; i < r->n_items; i++) titles[i] = (char *)prompt_title(&cat, r->items[i]);
            query_rec q = {.id = k, .user = r->user, .task = (int)r->task, .prompt = r->text.prompt,
                           .prefix_len = r->text.prefix_len, .items = r->items, .ranks = r->ranks, .n_items = r->n_items,
                           .titles = titles, .history = r->history, .n_history = r->n_history, .pair = r->pair,
                           .swapped = r->swapped, .tokens = r->text.tokens, .dropped = r->dropped};
            queries_write(w, &q);
        }
    }
    sw_close(w);
    if (!cc.quiet) {
        if (mode == 0)
            fprintf(stderr,
                    "promptgen: %d draws of %d eligible users (%s): %d distinct, %d..%d per user (mean %.2f); %d instructions "
                    "(%ld pointwise, %ld pairwise, %ld listwise; skipped %ld listwise); %ld shortened, %ld over budget; "
                    "tokens median %d max %d (%s); %.1f s\n",
                    sr.n, sr.eligible, sp.uniform ? "uniform" : "adaptive", sr.distinct, sr.min_per_user, sr.max_per_user,
                    sr.mean_per_user, n_recs, os.per_task[0], os.per_task[1], os.per_task[2], skipped[2], os.shortened,
                    os.overlong, os.n_tokens ? os.tokens[os.n_tokens / 2] : 0, os.n_tokens ? os.tokens[os.n_tokens - 1] : 0,
                    tok ? "tokenizer" : "estimate", secs);
        else
            fprintf(stderr,
                    "promptgen: %s queries for %d users: %d (%ld pointwise, %ld pairwise, %ld listwise); %ld shortened, %ld "
                    "over budget; tokens median %d max %d (%s); %.1f s\n",
                    part_name((part_t)for_part), n_eval_users, n_recs, os.per_task[0], os.per_task[1], os.per_task[2],
                    os.shortened, os.overlong, os.n_tokens ? os.tokens[os.n_tokens / 2] : 0,
                    os.n_tokens ? os.tokens[os.n_tokens - 1] : 0, tok ? "tokenizer" : "estimate", secs);
    }
    prompt_records_free(recs, n_recs);
    free(os.tokens);
    sampling_result_free(&sr);
    if (mode == 1) cand_set_free(&cs);
    promptset_free(&ps);
    if (tok) tok_free(tok);
    templates_free(&tm);
    mf_free(&mf);
    catalog_free(&cat);
    interactions_free(&ia);
}
int main(int argc, char **argv) {
    err_set_prog(argv[0]);
    cli_common cc;
    cli_common_init(&cc, argv);
    const char *ia_path = NULL, *cat_path = NULL, *mf_path = NULL, *cand_path = NULL, *tmpl_path = NULL, *tok_path = NULL,
               *out = NULL;
    int mode = -1; /* 0 train, 1 eval, 2 corpus */
    const char *symbols_path = NULL, *itemvecs_path = NULL;
    bool entry_symbols = false;
    itemvec_params ivp = {.window = 5, .dim = 64};
    corpus_params cp = {.window = 50, .stride = 25, .repeat = 2};
    int for_part = -1;
    bool zstd = false, check = false, hint = true, next_positives = false, diagnostic = false;
    hint_source hints = HINTS_BASE;
    int hard_negatives = 0;
    int context = 1024, reserve = 128, history = 50, max_dislikes = 10;
    double dislike = 2;
    int scale[2] = {0, 0};
    bool have_scale = false;
    bool tasks[RTASK_COUNT] = {true, true, true};
    sampling_params sp;
    sampling_params_default(&sp);
    static const struct option opts[] = {
        {"mode", 1, 0, O_MODE},         {"symbols", 1, 0, O_SYMBOLS}, {"entry-symbols", 0, 0, O_ENTRY_SYMBOLS}, {"window", 1, 0, O_WINDOW},
        {"stride", 1, 0, O_STRIDE},     {"repeat", 1, 0, O_REPEAT},         {"interactions", 1, 0, O_IA}, {"catalog", 1, 0, O_CAT},
        {"item-vectors", 1, 0, O_ITEMVECS}, {"item-dim", 1, 0, O_ITEMDIM},
        {"mf", 1, 0, O_MF},             {"candidates", 1, 0, O_CAND}, {"for", 1, 0, O_FOR},
        {"templates", 1, 0, O_TMPL},    {"tokenizer", 1, 0, O_TOK},   {"context", 1, 0, O_CONTEXT},
        {"reserve", 1, 0, O_RESERVE},   {"history", 1, 0, O_HISTORY}, {"max-dislikes", 1, 0, O_MAXDIS},
        {"dislike", 1, 0, O_DISLIKE},   {"scale", 1, 0, O_SCALE},     {"tasks", 1, 0, O_TASKS},
        {"no-hint", 0, 0, O_NOHINT},    {"draws", 1, 0, O_DRAWS},     {"sampling", 1, 0, O_SAMPLING},
        {"penalty", 1, 0, O_PENALTY},   {"clusters", 1, 0, O_CLUSTERS}, {"pool", 1, 0, O_POOL},
        {"positives", 1, 0, O_POSITIVES}, {"hard-negatives", 1, 0, O_HARD},
        {"hints", 1, 0, O_HINTS},       {"diagnostic", 0, 0, O_DIAGNOSTIC},
        {"check", 0, 0, O_CHECK},       {"output", 1, 0, 'o'},        {"zstd", 0, 0, 'z'},
        CLI_COMMON_OPTIONS,             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":ho:z", opts, NULL)) != -1) {
        switch (c) {
        case O_MODE:
            if (strcmp(optarg, "train") == 0) mode = 0;
            else if (strcmp(optarg, "eval") == 0) mode = 1;
            else if (strcmp(optarg, "corpus") == 0) mode = 2;
            else die_usage(USAGE, "--mode: expected train, eval or corpus, got '%s'", optarg);
            break;
        case O_IA: ia_path = optarg; break;
        case O_CAT: cat_path = optarg; break;
        case O_MF: mf_path = optarg; break;
        case O_CAND: cand_path = optarg; break;
        case O_FOR:
            if (strcmp(optarg, "test") == 0) for_part = PART_TEST;
            else if (strcmp(optarg, "valid") == 0) for_part = PART_VALID;
            else die_usage(USAGE, "--for: expected test or valid, got '%s'", optarg);
            break;
        case O_TMPL: tmpl_path = optarg; break;
        case O_TOK: tok_path = optarg; break;
        case O_CONTEXT: context = (int)cli_long("--context", optarg, 16, 1 << 24, USAGE); break;
        case O_RESERVE: reserve = (int)cli_long("--reserve", optarg, 0, 1 << 24, USAGE); break;
        case O_HISTORY: history = (int)cli_long("--history", optarg, 0, 4000, USAGE); break;
        case O_MAXDIS: max_dislikes = (int)cli_long("--max-dislikes", optarg, 0, 4000, USAGE); break;
        case O_DISLIKE: dislike = cli_double("--dislike", optarg, -1e9, 1e9, USAGE); break;
        case O_SCALE:
            if (cli_ints("--scale", optarg, scale, 2, USAGE) != 2 || scale[0] >= scale[1])
                die_usage(USAGE, "--scale: expected MIN,MAX with MIN < MAX");
            have_scale = true;
            break;
        case O_TASKS: {
            memset(tasks, 0, sizeof tasks);
            const char *p = optarg;
            for (;;) {
                const char *e = strchr(p, ',');
                size_t n = e ? (size_t)(e - p) : strlen(p);
                int t = rtask_from_name(p, n);
                if (t < 0) die_usage(USAGE, "--tasks: unknown task '%.*s'", (int)n, p);
                tasks[t] = true;
                if (!e) break;
                p = e + 1;
            }
            break;
        }
        case O_NOHINT: hint = false; break;
        case O_HINTS:
            if (strcmp(optarg, "base") == 0) hints = HINTS_BASE;
            else if (strcmp(optarg, "recranker-leaky") == 0) hints = HINTS_RECRANKER_LEAKY;
            else die_usage(USAGE, "--hints: expected base or recranker-leaky, got '%s'", optarg);
            break;
        case O_DIAGNOSTIC: diagnostic = true; break;
        case O_DRAWS: sp.draws = (int)cli_long("--draws", optarg, 1, 100000000, USAGE); break;
        case O_SAMPLING:
            if (strcmp(optarg, "adaptive") == 0) sp.uniform = false;
            else if (strcmp(optarg, "uniform") == 0) sp.uniform = true;
            else die_usage(USAGE, "--sampling: expected adaptive or uniform, got '%s'", optarg);
            break;
        case O_PENALTY: sp.penalty = cli_double("--penalty", optarg, 1e-9, 1, USAGE); break;
        case O_CLUSTERS: sp.clusters = (int)cli_long("--clusters", optarg, 1, 10000, USAGE); break;
        case O_POOL: sp.pool = cli_double("--pool", optarg, 1e-9, 100, USAGE); break;
        case O_POSITIVES:
            if (strcmp(optarg, "random") == 0) next_positives = false;
            else if (strcmp(optarg, "next") == 0) next_positives = true;
            else die_usage(USAGE, "--positives: expected random or next, got '%s'", optarg);
            break;
        case O_HARD: hard_negatives = (int)cli_long("--hard-negatives", optarg, 0, 100000, USAGE); break;
        case O_CHECK: check = true; break;
        case O_SYMBOLS: symbols_path = optarg; break;
        case O_ENTRY_SYMBOLS: entry_symbols = true; break;
        case O_WINDOW: cp.window = (int)cli_long("--window", optarg, 2, 100000, USAGE); break;
        case O_STRIDE: cp.stride = (int)cli_long("--stride", optarg, 1, 100000, USAGE); break;
        case O_REPEAT: cp.repeat = (int)cli_long("--repeat", optarg, 1, 1000, USAGE); break;
        case O_ITEMVECS: itemvecs_path = optarg; break;
        case O_ITEMDIM: ivp.dim = (int)cli_long("--item-dim", optarg, 1, 4096, USAGE); break;
        case 'o': out = optarg; break;
        case 'z': zstd = true; break;
        default: cli_common_opt(c, optarg, &cc, USAGE);
        }
    }
    if (!ia_path) die_usage(USAGE, "--interactions F is required");
    if (diagnostic && !check) die_usage(USAGE, "--diagnostic goes with --check");
    if (hints != HINTS_BASE && mode == 2) die_usage(USAGE, "--hints goes with --mode train or eval (the corpus has no hints)");
    if (hints != HINTS_BASE && !hint) die_usage(USAGE, "--hints %s needs hints: drop --no-hint", "recranker-leaky");
    char *tmpl_found = NULL;
    if (!tmpl_path) {
        tmpl_found = default_templates();
        tmpl_path = tmpl_found;
    }

    pg_opts o = {cc, ia_path, cat_path, mf_path, cand_path, tmpl_path, tok_path, out, mode, symbols_path, itemvecs_path,
                 entry_symbols, ivp, cp, for_part, zstd, hint, next_positives, diagnostic, hints, hard_negatives, context,
                 reserve, history, max_dislikes, dislike, {scale[0], scale[1]}, have_scale, {tasks[0], tasks[1], tasks[2]}, sp,
                 NULL};
    if (check) {
        if (mode >= 0) die_usage(USAGE, "--check takes no --mode");
        if (hints != HINTS_BASE) die_usage(USAGE, "--check takes no --hints (give --diagnostic to accept a leaky stream)");
        if (argc - optind != 1) die_usage(USAGE, "--check needs exactly one STREAM");
        o.stream = argv[optind];
        run_check(&o);
    } else {
        if (mode < 0) die_usage(USAGE, "--mode train|eval|corpus is required");
        if (optind < argc) die_usage(USAGE, "unexpected argument '%s'", argv[optind]);
        if (mode == 2) run_corpus(&o);
        else run_prompts(&o);
    }
    free(tmpl_found);
    close_stdout();
    return 0;
}
