/* leakcheck.c - the leakage guard (see leakcheck.h). */
#include "rec/leakcheck.h"

#include "io/err.h"
#include "io/stream.h"

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

void leakcheck_stream(const char *path, const leak_inputs *in, leak_report *rep) {
    memset(rep, 0, sizeof *rep);
    const interactions *ia = in->ia;
    stream_reader *r = sr_open(path, NULL, 1);
    char *name = xstrdup(sr_name(r));
    const char *schema = sr_schema(r);
    bool queries;
    if (strcmp(schema, "itrek.instructions") == 0) queries = false;
    else if (strcmp(schema, "itrek.queries") == 0) queries = true;
    else die_at(name, 0, "field 'schema': '%s' is neither itrek.instructions nor itrek.queries", schema);
    snprintf(rep->schema, sizeof rep->schema, "%s", schema);
    const msgpack_object *lk = sr_header_param(r, "leaky");
    if (lk && lk->type != MSGPACK_OBJECT_BOOLEAN) die_at(name, 0, "field 'params.leaky': expected a boolean");
    rep->leaky = lk && lk->via.boolean;
    if (rep->leaky && !in->diagnostic)
        die_at(name, 0, "field 'params.leaky': made with promptgen --hints recranker-leaky, whose hints read held-out "
                        "ratings: a leak (give --diagnostic if this is the leak diagnostic)");
    part_t part = PART_TRAIN;
    if (queries) {
        const msgpack_object *p = sr_header_param(r, "part");
        int pp = p && p->type == MSGPACK_OBJECT_STR ? part_from_name(p->via.str.ptr, p->via.str.size) : -1;
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
    const msgpack_object *rec;
    while ((rec = sr_next(r))) {
        long ri = sr_index(r);
        rep->records++;
        if (n_ids == cap_ids) ids = xrealloc(ids, (cap_ids = cap_ids ? 2 * cap_ids : 4096) * sizeof *ids);
        ids[n_ids++] = (id_rec){sr_int(r, rec, "id"), ri};
        int64_t u64 = sr_int(r, rec, "user");
        if (u64 < 0 || u64 >= ia->n_users) sr_fail(r, "field 'user': user %lld has no interactions", (long long)u64);
        int32_t u = (int32_t)u64;
        if (!useen[u]) { useen[u] = 1; rep->users++; }
        uint32_t tl;
        const char *ts = sr_str(r, rec, "task", &tl);
        int task = rtask_from_name(ts, tl);
        if (task < 0) sr_fail(r, "field 'task': '%.*s' is not pointwise, pairwise or listwise", (int)(tl > 20 ? 20 : tl), ts);
        uint32_t plen;
        const char *prompt = sr_str(r, rec, "prompt", &plen);
        const msgpack_object_array *h = sr_array(r, rec, "history");
        const msgpack_object_array *it = sr_array(r, rec, "items");
        if (h->size > 4096) sr_fail(r, "field 'history': %u items, at most 4096 supported", h->size);
        if (it->size > PROMPT_MAX_ITEMS) sr_fail(r, "field 'items': %u items, at most %d supported", it->size, PROMPT_MAX_ITEMS);
        int nh = 0;
        for (uint32_t k = 0; k < h->size; k++) {
            int64_t x = sr_elem_int(r, h, k, "history");
            uint8_t b = part_bits(ia, pm, u, x);
            if (b & PART_BIT(PART_TEST)) sr_fail(r, "field 'history': test item %lld of user %d in the history", (long long)x, u);
            if ((b & PART_BIT(PART_VALID)) && !(allowed & PART_BIT(PART_VALID)))
                sr_fail(r, "field 'history': valid item %lld of user %d in the history", (long long)x, u);
            if (!(b & allowed))
                sr_fail(r, "field 'history': item %lld is not a %s interaction of user %d", (long long)x,
                        allowed & PART_BIT(PART_VALID) ? "train or valid" : "train", u);
            hist[nh++] = (int32_t)x;
            rep->history_ids++;
        }
        int n_shown = nh;
        for (uint32_t k = 0; k < it->size; k++) {
            int64_t x = sr_elem_int(r, it, k, "items");
            if (!queries) {
                for (int j = 0; j < nh; j++)
                    if (hist[j] == x) sr_fail(r, "field 'items': target item %lld is in its own history", (long long)x);
                uint8_t b = part_bits(ia, pm, u, x);
                if (b & PART_BIT(PART_TEST)) sr_fail(r, "field 'items': test item %lld of user %d in a training prompt", (long long)x, u);
                if (b & PART_BIT(PART_VALID)) sr_fail(r, "field 'items': valid item %lld of user %d in a training prompt", (long long)x, u);
                hist[n_shown++] = (int32_t)x; /* a training prompt shows its targets too */
            }
        }
        /* titles */
        size_t region = plen;
        if (queries) {
            int64_t pl = sr_int(r, rec, "prefix_len");
            if (pl < 0 || pl > plen) sr_fail(r, "field 'prefix_len': %lld is outside the prompt (%u bytes)", (long long)pl, plen);
            region = (size_t)pl;
        }
        char *blanked = NULL;
        if (in->cat && queries && task == RTASK_LISTWISE && it->size > 0) {
            /* A listwise instruction may show the candidates (rated-last.tmpl), before the
             * history: that list, rendered exactly as prompt.c renders it, is not history. */
            const char *sep = in->tmpl->text[T_LIST_SEP];
            size_t cap = 1, len = 0;
            for (uint32_t k = 0; k < it->size; k++) {
                int64_t x = sr_elem_int(r, it, k, "items");
                cap += (x >= 0 && x < in->cat->n_items && needles[x] ? strlen(needles[x]) : 0) + strlen(sep);
            }
            char *list = xmalloc(cap);
            bool whole = true;
            for (uint32_t k = 0; k < it->size && whole; k++) {
                int64_t x = sr_elem_int(r, it, k, "items");
                if (x < 0 || x >= in->cat->n_items || !needles[x]) { whole = false; break; }
                if (k) { memcpy(list + len, sep, strlen(sep)); len += strlen(sep); }
                memcpy(list + len, needles[x], strlen(needles[x]));
                len += strlen(needles[x]);
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
            uint32_t rl = 0;
            const char *resp = !queries ? sr_str(r, rec, "response", &rl) : NULL;
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
        const msgpack_object_array *rk = sr_array(r, rec, "ranks");
        if (rk->size != it->size) sr_fail(r, "field 'ranks': %u ranks for %u items", rk->size, it->size);
        int ranks[PROMPT_MAX_ITEMS];
        for (uint32_t k = 0; k < it->size; k++) {
            int64_t x = sr_elem_int(r, it, k, "items"), m = sr_elem_int(r, rk, k, "ranks");
            if (m < 0 || m >= nc) sr_fail(r, "field 'ranks': rank %lld outside user %d's %d candidates", (long long)m, u, nc);
            if (c[m] != x)
                sr_fail(r, "field 'items': item %lld is not user %d's candidate at rank %lld (%d is)", (long long)x, u, (long long)m,
                        c[m]);
            ranks[k] = (int)m;
        }
        if (task == RTASK_POINTWISE) {
            if (it->size != 1) sr_fail(r, "field 'items': a pointwise query shows 1 item, not %u", it->size);
            s->cover |= 1ull << ranks[0];
        } else if (task == RTASK_LISTWISE) {
            if ((int)it->size != nc) sr_fail(r, "field 'items': the listwise query shows %u of user %d's %d candidates", it->size, u, nc);
            for (int k = 0; k < nc; k++)
                if (ranks[k] != k) sr_fail(r, "field 'ranks': the listwise candidates are not in base order (rank %d at %d)", ranks[k], k);
        } else {
            if (it->size != 2 || ranks[0] == ranks[1]) sr_fail(r, "field 'items': a pairwise query shows 2 distinct candidates");
            int64_t p = sr_int(r, rec, "pair");
            const msgpack_object *sw = mp_find(rec, "swapped");
            if (!sw || sw->type != MSGPACK_OBJECT_BOOLEAN) sr_fail(r, "field 'swapped': missing or not a boolean");
            if (p < 0 || p >= nc / 2) sr_fail(r, "field 'pair': %lld outside 0..%d", (long long)p, nc / 2 - 1);
            int f = sw->via.boolean ? ranks[1] : ranks[0], g = sw->via.boolean ? ranks[0] : ranks[1];
            int bit = sw->via.boolean ? 2 : 1;
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
    free(name);
    free(pm);
}
