/* leakcheck.c - the leakage guard (see leakcheck.h). */
#include "rec/leakcheck.h"

#include "io/err.h"
#include "io/stream.h"
#include "records/instructions.h"
#include "records/queries.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_PAIRS = PROMPT_MAX_ITEMS / 2 };

typedef struct {
    bool has[RTASK_COUNT];
    uint64_t cover;                 /* pointwise: ranks seen */
    uint64_t prefix_hash[RTASK_COUNT];
    uint64_t prefix_len[RTASK_COUNT];
    int8_t pair_first[MAX_PAIRS], pair_second[MAX_PAIRS];
    uint8_t pair_seen[MAX_PAIRS];   /* bit 0: asked unswapped, bit 1: swapped */
    int8_t rank_pair[PROMPT_MAX_ITEMS];
    long last_record;
} user_state;

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

typedef struct {
    int32_t *ids;
    long *rec;
    size_t n, cap;
} id_list;

typedef struct { int64_t id; long rec; } id_rec;
static int cmp_id_rec(const void *a, const void *b) {
    const id_rec *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return (x->rec > y->rec) - (x->rec < y->rec);
}

static uint8_t part_bits(const interactions *ia, const uint8_t *pm, int32_t u, int64_t item) {
    if (u < 0 || u >= ia->n_users || item < 0 || item >= ia->n_items) return 0;
    return pm[(size_t)u * (size_t)ia->n_items + (size_t)item];
}

/* Is the title of forbidden item v (shown as `needle`) in text[0..n), not explained by a shown
 * item with the same title? */
static bool title_leaks(const catalog *cat, const char *needle, const char *title, const char *text, size_t n,
                        const int32_t *shown, int n_shown) {
    if (!memmem(text, n, needle, strlen(needle))) return false;
    for (int k = 0; k < n_shown; k++) {
        int32_t s = shown[k];
        if (s >= 0 && s < cat->n_items && cat->by_id[s].title && strcmp(cat->by_id[s].title, title) == 0) return false;
    }
    return true;
}

/* One record of either stream, as the checks see it. */
typedef struct {
    long rec;
    int64_t id, user;
    int task;
    const char *prompt, *response; /* response: instructions only, NULL when absent */
    size_t prompt_len, response_len;
    size_t region;                 /* bytes of the prompt checked: queries' prefix, else all */
    const int32_t *items, *history, *ranks; /* ranks: queries with candidates */
    int n_items, n_history;
    int64_t pair;                  /* pairwise queries with candidates */
    int swapped;
} leak_rec;

void leakcheck_stream(const char *path, const leak_inputs *in, leak_report *rep) {
    memset(rep, 0, sizeof *rep);
    const interactions *ia = in->ia;
    stream_reader *r = sr_open(path, NULL, 1);
    char *name = xstrdup(sr_name(r));
    const char *schema = sr_schema(r);
    bool queries;
    if (strcmp(schema, INSTRUCTIONS_SCHEMA) == 0) queries = false;
    else if (strcmp(schema, QUERIES_SCHEMA) == 0) queries = true;
    else die_at(name, 0, "field 'schema': '%s' is neither itrek.instructions nor itrek.queries", schema);
    snprintf(rep->schema, sizeof rep->schema, "%s", schema);
    queries_header qh = {0};
    instructions_header ih = {0};
    if (queries) queries_header_read(r, &qh, 0);
    else instructions_header_read(r, &ih);
    rep->leaky = queries ? qh.leaky : ih.leaky;
    if (rep->leaky && !in->diagnostic)
        die_at(name, 0, "field 'params.leaky': made with promptgen --hints recranker-leaky, whose hints read held-out "
                        "ratings: a leak (give --diagnostic if this is the leak diagnostic)");
    part_t part = PART_TRAIN;
    if (queries) {
        int pp = qh.part ? part_from_name(qh.part, strlen(qh.part)) : -1;
        if (pp != PART_TEST && pp != PART_VALID) die_at(name, 0, "field 'params.part': expected \"test\" or \"valid\"");
        part = (part_t)pp;
        if (in->cands && strcmp(in->cands->part, part_name(part)) != 0)
            die_at(in->cands->source, 0, "field 'params.for': the candidates are for '%s', the queries for '%s'", in->cands->part,
                   part_name(part));
    }
    /* which parts each (user, item) is in */
    size_t ni = (size_t)ia->n_items;
    uint8_t *pm = xcalloc((size_t)ia->n_users * ni + 1, 1);
    for (size_t k = 0; k < ia->n; k++) pm[(size_t)ia->v[k].user * ni + ia->v[k].item] |= (uint8_t)PART_BIT(ia->v[k].part);
    /* per user: items whose title must not show (test; valid too for training and valid queries) */
    unsigned forbid = PART_BIT(PART_TEST) | (!queries || part == PART_VALID ? PART_BIT(PART_VALID) : 0);
    unsigned allowed = PART_BIT(PART_TRAIN) | (queries && part == PART_TEST ? PART_BIT(PART_VALID) : 0);
    user_lists fl;
    user_lists_build(&fl, ia, forbid, -INFINITY);
    char **needles = NULL;
    if (in->cat) {
        needles = xcalloc((size_t)in->cat->n_items + 1, sizeof *needles);
        for (int32_t i = 0; i < in->cat->n_items; i++)
            if (in->cat->by_id[i].title) needles[i] = prompt_item_text(in->tmpl, in->cat->by_id[i].title);
    }
    user_state *st = queries ? xcalloc((size_t)ia->n_users + 1, sizeof *st) : NULL;
    id_rec *ids = NULL;
    size_t n_ids = 0, cap_ids = 0;
    int32_t hist[4096 + PROMPT_MAX_ITEMS];
    uint8_t *useen = xcalloc((size_t)ia->n_users + 1, 1);
    unsigned qneed = QR_PROMPT | QR_ITEMS | QR_HISTORY | (in->cands ? QR_RANKS | QR_PAIR | QR_SWAPPED : 0);
    unsigned ineed = IR_PROMPT | IR_ITEMS | IR_HISTORY | (in->cat ? IR_RESPONSE : 0);
    query_rec q = {0};
    instruction_read ir = {0};
    for (;;) {
        leak_rec x;
        if (queries) {
            if (!queries_next(r, qneed, &q)) break;
            x = (leak_rec){q.rec, q.id, q.user, q.task, q.prompt, NULL, q.prompt_len, 0, q.prefix_len, q.items,
                           q.history, q.ranks, q.n_items, q.n_history, q.pair, q.swapped};
        } else {
            if (!instructions_next(r, ineed, &ir)) break;
            x = (leak_rec){ir.rec, ir.id, ir.user, ir.task, ir.prompt, ir.response, ir.prompt_len, ir.response_len,
                           ir.prompt_len, ir.items, ir.history, NULL, ir.n_items, ir.n_history, -1, -1};
        }
        long ri = x.rec;
        rep->records++;
        if (n_ids == cap_ids) ids = xrealloc(ids, (cap_ids = cap_ids ? 2 * cap_ids : 4096) * sizeof *ids);
        ids[n_ids++] = (id_rec){x.id, ri};
        if (x.user < 0 || x.user >= ia->n_users) sr_fail(r, "field 'user': user %lld has no interactions", (long long)x.user);
        int32_t u = (int32_t)x.user;
        if (!useen[u]) { useen[u] = 1; rep->users++; }
        int task = x.task;
        const char *prompt = x.prompt;
        if (x.n_history > 4096) sr_fail(r, "field 'history': %d items, at most 4096 supported", x.n_history);
        if (x.n_items > PROMPT_MAX_ITEMS) sr_fail(r, "field 'items': %d items, at most %d supported", x.n_items, PROMPT_MAX_ITEMS);
        int nh = 0;
        for (int k = 0; k < x.n_history; k++) {
            int64_t v = x.history[k];
            uint8_t b = part_bits(ia, pm, u, v);
            if (b & PART_BIT(PART_TEST)) sr_fail(r, "field 'history': test item %lld of user %d in the history", (long long)v, u);
            if ((b & PART_BIT(PART_VALID)) && !(allowed & PART_BIT(PART_VALID)))
                sr_fail(r, "field 'history': valid item %lld of user %d in the history", (long long)v, u);
            if (!(b & allowed))
                sr_fail(r, "field 'history': item %lld is not a %s interaction of user %d", (long long)v,
                        allowed & PART_BIT(PART_VALID) ? "train or valid" : "train", u);
            hist[nh++] = (int32_t)v;
            rep->history_ids++;
        }
        int n_shown = nh;
        if (!queries)
            for (int k = 0; k < x.n_items; k++) {
                int64_t v = x.items[k];
                for (int j = 0; j < nh; j++)
                    if (hist[j] == v) sr_fail(r, "field 'items': target item %lld is in its own history", (long long)v);
                uint8_t b = part_bits(ia, pm, u, v);
                if (b & PART_BIT(PART_TEST)) sr_fail(r, "field 'items': test item %lld of user %d in a training prompt", (long long)v, u);
                if (b & PART_BIT(PART_VALID)) sr_fail(r, "field 'items': valid item %lld of user %d in a training prompt", (long long)v, u);
                hist[n_shown++] = (int32_t)v; /* a training prompt shows its targets too */
            }
        /* titles */
        size_t region = x.region;
        char *blanked = NULL;
        if (in->cat && queries && task == RTASK_LISTWISE && x.n_items > 0) {
            /* A listwise instruction may show the candidates (rated-last.tmpl), before the
             * history: that list, rendered exactly as prompt.c renders it, is not history. */
            const char *sep = in->tmpl->text[T_LIST_SEP];
            size_t cap = 1, len = 0;
            for (int k = 0; k < x.n_items; k++) {
                int32_t v = x.items[k];
                cap += (v < in->cat->n_items && needles[v] ? strlen(needles[v]) : 0) + strlen(sep);
            }
            char *list = xmalloc(cap);
            bool whole = true;
            for (int k = 0; k < x.n_items && whole; k++) {
                int32_t v = x.items[k];
                if (v >= in->cat->n_items || !needles[v]) { whole = false; break; }
                if (k) { memcpy(list + len, sep, strlen(sep)); len += strlen(sep); }
                memcpy(list + len, needles[v], strlen(needles[v]));
                len += strlen(needles[v]);
            }
            const char *at = whole ? memmem(prompt, region, list, len) : NULL;
            if (at) {
                blanked = xmalloc(region + 1);
                memcpy(blanked, prompt, region);
                memset(blanked + (at - prompt), ' ', len);
            }
            free(list);
        }
        const char *checked = blanked ? blanked : prompt;
        if (in->cat) {
            const char *resp = x.response;
            size_t rl = x.response_len;
            for (int j = fl.off[u]; j < fl.off[u + 1]; j++) {
                int32_t v = fl.item[j];
                if (v >= in->cat->n_items || !needles[v]) continue;
                rep->title_checks++;
                const char *title = in->cat->by_id[v].title;
                const char *what = part_bits(ia, pm, u, v) & PART_BIT(PART_TEST) ? "test" : "valid";
                if (title_leaks(in->cat, needles[v], title, checked, region, hist, n_shown))
                    sr_fail(r, "field 'prompt': the title of %s item %d of user %d (%s) is in the %s", what, v, u, needles[v],
                            queries ? "history" : "prompt");
                if (resp && title_leaks(in->cat, needles[v], title, resp, rl, hist, n_shown))
                    sr_fail(r, "field 'response': the title of %s item %d of user %d (%s) is in the response", what, v, u, needles[v]);
            }
        }
        free(blanked);
        if (!queries) continue;
        /* queries: one prefix per user and task */
        user_state *s = &st[u];
        uint64_t hp = fnv1a(prompt, region);
        if (s->has[task] && (s->prefix_len[task] != region || s->prefix_hash[task] != hp))
            sr_fail(r, "field 'prefix_len': the prompt's first %zu bytes differ from user %d's other %s queries", region, u,
                    rtask_name((prompt_task)task));
        if (!s->has[task]) {
            s->prefix_len[task] = region;
            s->prefix_hash[task] = hp;
            if (task == RTASK_PAIRWISE) {
                memset(s->rank_pair, -1, sizeof s->rank_pair);
                memset(s->pair_seen, 0, sizeof s->pair_seen);
            }
        }
        s->has[task] = true;
        s->last_record = ri;
        if (!in->cands) continue;
        const cand_set *cs = in->cands;
        if (u >= cs->n_users || !cs->items[u]) sr_fail(r, "field 'user': user %d has no candidates in %s", u, cs->source);
        const int32_t *c = cs->items[u];
        int nc = cs->len[u];
        /* the reader has checked: ranks as many as items, pointwise 1 item, pairwise 2 distinct */
        int ranks[PROMPT_MAX_ITEMS];
        for (int k = 0; k < x.n_items; k++) {
            int32_t v = x.items[k], m = x.ranks[k];
            if (m >= nc) sr_fail(r, "field 'ranks': rank %d outside user %d's %d candidates", m, u, nc);
            if (c[m] != v) sr_fail(r, "field 'items': item %d is not user %d's candidate at rank %d (%d is)", v, u, m, c[m]);
            ranks[k] = m;
        }
        if (task == RTASK_POINTWISE) {
            s->cover |= 1ull << ranks[0];
        } else if (task == RTASK_LISTWISE) {
            if (x.n_items != nc) sr_fail(r, "field 'items': the listwise query shows %d of user %d's %d candidates", x.n_items, u, nc);
            for (int k = 0; k < nc; k++)
                if (ranks[k] != k) sr_fail(r, "field 'ranks': the listwise candidates are not in base order (rank %d at %d)", ranks[k], k);
        } else {
            if (ranks[0] == ranks[1]) sr_fail(r, "field 'items': a pairwise query shows 2 distinct candidates");
            int64_t p = x.pair;
            if (p < 0 || p >= nc / 2) sr_fail(r, "field 'pair': %lld outside 0..%d", (long long)p, nc / 2 - 1);
            int f = x.swapped ? ranks[1] : ranks[0], g = x.swapped ? ranks[0] : ranks[1];
            int bit = x.swapped ? 2 : 1;
            if (s->pair_seen[p] & bit) sr_fail(r, "field 'pair': pair %lld of user %d asked twice in the same order", (long long)p, u);
            if (s->pair_seen[p] && (s->pair_first[p] != f || s->pair_second[p] != g))
                sr_fail(r, "field 'items': pair %lld of user %d shows other candidates than its other order", (long long)p, u);
            for (int k = 0; k < 2; k++) {
                int m = k ? g : f;
                if (s->rank_pair[m] >= 0 && s->rank_pair[m] != p)
                    sr_fail(r, "field 'items': candidate %d of user %d is in pairs %d and %lld", c[m], u, s->rank_pair[m], (long long)p);
                s->rank_pair[m] = (int8_t)p;
            }
            s->pair_first[p] = (int8_t)f;
            s->pair_second[p] = (int8_t)g;
            s->pair_seen[p] |= (uint8_t)bit;
        }
    }
    query_rec_free(&q);
    instruction_read_free(&ir);
    sr_close(r);
    /* unique ids */
    qsort(ids, n_ids, sizeof *ids, cmp_id_rec);
    for (size_t k = 1; k < n_ids; k++)
        if (ids[k].id == ids[k - 1].id)
            die_at(name, ids[k].rec, "field 'id': id %lld already used by record %ld", (long long)ids[k].id, ids[k - 1].rec);
    /* per-user completeness */
    if (queries) {
        user_lists pos;
        user_lists_build(&pos, ia, PART_BIT(part), ia->like);
        for (int32_t u = 0; u < ia->n_users; u++) {
            user_state *s = &st[u];
            bool any = s->has[0] || s->has[1] || s->has[2];
            if (!in->cands) continue;
            const cand_set *cs = in->cands;
            bool has_c = u < cs->n_users && cs->items[u];
            if (!any) {
                if (has_c && ul_len(&pos, u) > 0 && cs->len[u] > 0)
                    die_at(name, -1, "user %d has candidates and a %s positive but no queries", u, part_name(part));
                continue;
            }
            int nc = cs->len[u];
            uint64_t full = nc >= 64 ? ~0ull : (1ull << nc) - 1;
            if (s->has[RTASK_POINTWISE] && s->cover != full)
                die_at(name, s->last_record, "user %d: the pointwise queries cover %d of the %d candidates", u,
                       __builtin_popcountll(s->cover), nc);
            if (s->has[RTASK_PAIRWISE])
                for (int p = 0; p < nc / 2; p++)
                    if (s->pair_seen[p] != 3)
                        die_at(name, s->last_record, "user %d: pair %d is not asked in both orders", u, p);
        }
        user_lists_free(&pos);
    }
    if (needles) {
        for (int32_t i = 0; i < in->cat->n_items; i++) free(needles[i]);
        free(needles);
    }
    user_lists_free(&fl);
    free(st);
    free(useen);
    free(ids);
    queries_header_free(&qh);
    instructions_header_free(&ih);
    free(name);
    free(pm);
}
