/* test_fuse.c - answer parsing and the hybrid ranking against hand-computed cases. */
#include "../unit/harness.h"
#include "rec/fuse.h"

#include <string.h>

static bool point(const char *s, int lo, int hi, int want) {
    int r = -999;
    bool ok = fuse_parse_point_text(s, strlen(s), lo, hi, &r);
    return want < 0 ? !ok : (ok && r == want);
}
static int pair(const char *s) { return fuse_parse_pair_text(s, strlen(s)); }

/* Parses text against titles; true when the result is exactly want[0..n_want). */
static bool list(const char *text, const char *const *titles, int k, const int *want, int n_want) {
    size_t len[16];
    int order[16];
    for (int i = 0; i < k; i++) len[i] = strlen(titles[i]);
    int n = fuse_parse_list_text(text, strlen(text), titles, len, k, order);
    if (n != n_want) return false;
    for (int i = 0; i < n; i++)
        if (order[i] != want[i]) return false;
    return true;
}

static bool same_order(const int *got, const int *want, int n) {
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) return false;
    return true;
}

int main(void) {
    fuse_params p;
    fuse_params_default(&p);

    /* ---- pointwise text: RecRanker's rule is "the last integer" */
    CHECK("point: plain digit", point("4", 1, 5, 4));
    CHECK("point: sentence", point("The user would rate it 3.", 1, 5, 3));
    /* "I'd give it 4 out of 5": the last integer is 5, so the rating is 5 (not 4). */
    CHECK("point: last integer wins ('4 out of 5' -> 5)", point("I'd give it 4 out of 5", 1, 5, 5));
    CHECK("point: no integer -> fallback", point("I cannot tell.", 1, 5, -1));
    CHECK("point: empty text -> fallback", point("", 1, 5, -1));
    CHECK("point: out of scale -> fallback", point("7", 1, 5, -1));
    CHECK("point: zero below scale -> fallback", point("0", 1, 5, -1));
    CHECK("point: a year as last integer -> fallback", point("4 for Heat (1995)", 1, 5, -1));
    CHECK("point: 10 on a 1..10 scale", point("10", 1, 10, 10));
    CHECK("point: leading zeros", point("rating: 05", 1, 5, 5));
    CHECK("point: huge number -> fallback", point("123456789012345678901234567890", 1, 5, -1));
    CHECK("point: '4.5' -> last integer 5", point("4.5", 1, 5, 5));

    /* ---- pointwise log-probabilities, ratings 1..5 */
    double s = 0;
    /* probabilities .1 .2 .4 .2 .1: E = .1 + .4 + 1.2 + .8 + .5 = 3.0 */
    double lp1[5] = {log(0.1), log(0.2), log(0.4), log(0.2), log(0.1)};
    CHECK("logp expected: symmetric", fuse_point_from_logp(lp1, 5, 1, FUSE_SCORE_EXPECTED, &s));
    CHECK_NEAR("logp expected: symmetric = 3", s, 3.0, 1e-12);
    /* only 4 and 5 possible, equally: E = 4.5; argmax ties take the lower rating: 4 */
    double lp2[5] = {-INFINITY, -INFINITY, -INFINITY, log(0.5), log(0.5)};
    fuse_point_from_logp(lp2, 5, 1, FUSE_SCORE_EXPECTED, &s);
    CHECK_NEAR("logp expected: -inf entries ignored, E = 4.5", s, 4.5, 1e-12);
    fuse_point_from_logp(lp2, 5, 1, FUSE_SCORE_ARGMAX, &s);
    CHECK_NEAR("logp argmax: tie -> lower rating 4", s, 4.0, 0);
    /* unnormalised: weights 1 : 3 for ratings 1, 2 (logits shifted by +7): E = (1 + 6) / 4 = 1.75 */
    double lp3[2] = {7 + log(1.0), 7 + log(3.0)};
    fuse_point_from_logp(lp3, 2, 1, FUSE_SCORE_EXPECTED, &s);
    CHECK_NEAR("logp expected: unnormalised logits, E = 1.75", s, 1.75, 1e-12);
    fuse_point_from_logp(lp3, 2, 1, FUSE_SCORE_ARGMAX, &s);
    CHECK_NEAR("logp argmax = 2", s, 2.0, 0);
    /* 1..5 with ln p = [-3, -2, -1, -0.5, -4]; weights e^-3, e^-2, e^-1, e^-0.5, e^-4:
     * 0.049787, 0.135335, 0.367879, 0.606531, 0.018316 (sum 1.177848);
     * E = (0.049787 + 0.270671 + 1.103638 + 2.426123 + 0.091578) / 1.177848 = 3.941797 / 1.177848 = 3.346609 */
    double lp4[5] = {-3, -2, -1, -0.5, -4};
    fuse_point_from_logp(lp4, 5, 1, FUSE_SCORE_EXPECTED, &s);
    CHECK_NEAR("logp expected: hand example 3.346609", s, 3.346609, 1e-6);
    double lp5[3] = {-INFINITY, -INFINITY, -INFINITY};
    CHECK("logp: every option impossible -> unparsed", !fuse_point_from_logp(lp5, 3, 1, FUSE_SCORE_EXPECTED, &s));

    /* ---- pairwise text */
    CHECK("pair: 'Yes.'", pair("Yes.") == 1);
    CHECK("pair: 'No.'", pair("No.") == 0);
    CHECK("pair: case-insensitive 'YES, definitely'", pair("YES, definitely") == 1);
    CHECK("pair: 'no' in lower case", pair("no") == 0);
    CHECK("pair: 'Yesterday' is not yes", pair("Yesterday") == -1);
    CHECK("pair: 'Nobody knows' is unparsed", pair("Nobody knows") == -1);
    CHECK("pair: 'not' is not no", pair("I think not.") == -1);
    CHECK("pair: yes anywhere wins over no", pair("No doubt: yes") == 1);
    CHECK("pair: empty is unparsed", pair("") == -1);
    CHECK("pair: 'maybe' is unparsed", pair("maybe") == -1);
    double y1[2] = {-0.1, -2.3}, y2[2] = {-2, -0.2}, y3[2] = {-1, -1}, y4[2] = {-INFINITY, -INFINITY}, y5[2] = {-INFINITY, -5};
    CHECK("pair logp: Yes more likely", fuse_pair_from_logp(y1) == 1);
    CHECK("pair logp: No more likely", fuse_pair_from_logp(y2) == 0);
    CHECK("pair logp: equal -> No (Yes needs >)", fuse_pair_from_logp(y3) == 0);
    CHECK("pair logp: both impossible -> unparsed", fuse_pair_from_logp(y4) == -1);
    CHECK("pair logp: Yes impossible -> No", fuse_pair_from_logp(y5) == 0);

    /* ---- listwise text */
    const char *t1[] = {"Heat (1995)", "White Heat (1949)", "Toy Story (1995)", "Fargo (1996)"};
    {
        int want[] = {1, 2, 0};
        CHECK("list: order of first appearance; a title twice counts once; non-candidate ignored",
              list("1. White Heat (1949)\n2. Toy Story (1995)\n3. Heat (1995)\n4. Toy Story (1995)\n5. Casablanca (1942)",
                   t1, 4, want, 3));
    }
    {
        int want[] = {1};
        CHECK("list: 'White Heat (1949)' alone does not name 'Heat (1995)'", list("White Heat (1949)", t1, 4, want, 1));
    }
    {
        int want[] = {1, 0};
        CHECK("list: 'White Heat (1949), Heat (1995)'", list("White Heat (1949), Heat (1995)", t1, 4, want, 2));
    }
    /* a title that is a substring of another candidate's title: the longer one matches first */
    const char *t2[] = {"Heat (1995)", "White Heat (1995)"};
    {
        int want[] = {1};
        CHECK("list: substring title inside a longer candidate does not double-match", list("White Heat (1995)", t2, 2, want, 1));
        int want2[] = {0, 1};
        CHECK("list: substring title named on its own", list("Heat (1995) then White Heat (1995)", t2, 2, want2, 2));
    }
    {
        int want[] = {2, 3};
        CHECK("list: case-insensitive", list("toy story (1995), FARGO (1996)", t1, 4, want, 2));
    }
    CHECK("list: no candidate named", list("Casablanca (1942)", t1, 4, NULL, 0));
    CHECK("list: word boundary ('PreHeat (1995)' is not 'Heat (1995)')", list("PreHeat (1995)", t1, 4, NULL, 0));
    const char *t3[] = {"Chasing Amy (1997)", "Fargo (1996)", "Chasing Amy (1997)"};
    {
        int want1[] = {1, 0};
        CHECK("list: identical titles, named once -> first such candidate", list("Fargo (1996); Chasing Amy (1997)", t3, 3, want1, 2));
        int want2[] = {0, 1, 2};
        CHECK("list: identical titles, named twice -> both, in turn",
              list("Chasing Amy (1997); Fargo (1996); Chasing Amy (1997)", t3, 3, want2, 3));
    }
    const char *t5[] = {"\"Fargo (1996)\"", " 'Babe (1995)' ", "'Til There Was You (1997)"};
    {
        int want[] = {2, 1, 0};
        CHECK("list: quoted titles match unquoted text; a leading apostrophe is kept",
              list("'Til There Was You (1997), Babe (1995), Fargo (1996)", t5, 3, want, 3));
    }
    const char *t4[] = {"", "Fargo (1996)"};
    {
        int want[] = {1};
        CHECK("list: empty title never matches", list("Fargo (1996)", t4, 2, want, 1));
    }

    /* ---- fusion: n = 4 candidates (base ranks 0..3), default constants.
     * scores 3, 4, 4, 2 -> U_point = score + 0.05 (4 - m) = 3.20, 4.15, 4.10, 2.05
     * pair (0,3): "0 over 3?" Yes, "3 over 0?" No -> consistent, 0 wins: U_pair[0] += 0.5
     * pair (1,2): "1 over 2?" Yes, "2 over 1?" Yes -> inconsistent: 0.25 each
     * list [2, 0]: U_list[2] = 0.025 * 5 = 0.125, U_list[0] = 0.025 * 4 = 0.1
     * U = (U_point + U_pair + U_list) / 3:
     *   m0 (3.20 + 0.50 + 0.100) / 3 = 1.266667   m1 (4.15 + 0.25) / 3 = 1.466667
     *   m2 (4.10 + 0.25 + 0.125) / 3 = 1.491667   m3 2.05 / 3 = 0.683333
     * hybrid: 2 1 0 3; pointwise: 1 2 0 3; pairwise: 0 (0.5), 1 = 2 (0.25, base order), 3;
     * listwise: 2, 0, then 1 3 (0, base order). */
    double sc[4] = {3, 4, 4, 2};
    fuse_pair pr[2] = {{0, 3, 1, 0}, {1, 2, 1, 1}};
    int ls[2] = {2, 0};
    double b[16];
    fuse_utils u = {b, b + 4, b + 8, b + 12, 0};
    int ord[4];
    fuse_utilities(4, sc, pr, 2, ls, 2, &p, &u);
    CHECK_NEAR("fuse: U_point[0] = 3.2", u.point[0], 3.2, 1e-12);
    CHECK_NEAR("fuse: U_point[1] = 4.15", u.point[1], 4.15, 1e-12);
    CHECK_NEAR("fuse: U_point[3] = 2.05", u.point[3], 2.05, 1e-12);
    CHECK_NEAR("fuse: consistent pair winner gets c2", u.pair[0], 0.5, 1e-12);
    CHECK_NEAR("fuse: consistent pair loser gets 0", u.pair[3], 0, 0);
    CHECK_NEAR("fuse: inconsistent pair gives c2/2 (1)", u.pair[1], 0.25, 1e-12);
    CHECK_NEAR("fuse: inconsistent pair gives c2/2 (2)", u.pair[2], 0.25, 1e-12);
    CHECK("fuse: answered pairs are no fallbacks", u.pair_fallbacks == 0);
    CHECK_NEAR("fuse: U_list top = 5 c3", u.list[2], 0.125, 1e-12);
    CHECK_NEAR("fuse: U_list second = 4 c3", u.list[0], 0.1, 1e-12);
    CHECK_NEAR("fuse: U_list unnamed = 0", u.list[1], 0, 0);
    CHECK_NEAR("fuse: hybrid m0", u.hybrid[0], 1.266667, 1e-6);
    CHECK_NEAR("fuse: hybrid m1", u.hybrid[1], 1.466667, 1e-6);
    CHECK_NEAR("fuse: hybrid m2", u.hybrid[2], 1.491667, 1e-6);
    CHECK_NEAR("fuse: hybrid m3", u.hybrid[3], 0.683333, 1e-6);
    fuse_sort(4, u.hybrid, ord);
    CHECK("fuse: hybrid order 2 1 0 3", same_order(ord, (int[]){2, 1, 0, 3}, 4));
    fuse_sort(4, u.point, ord);
    CHECK("fuse: pointwise order 1 2 0 3", same_order(ord, (int[]){1, 2, 0, 3}, 4));
    fuse_sort(4, u.pair, ord);
    CHECK("fuse: pairwise order 0 1 2 3 (tie 1 = 2 keeps base order)", same_order(ord, (int[]){0, 1, 2, 3}, 4));
    fuse_sort(4, u.list, ord);
    CHECK("fuse: listwise order 2 0 1 3 (unnamed keep base order)", same_order(ord, (int[]){2, 0, 1, 3}, 4));

    /* The same pair answered the other way round consistently: "1 over 2?" No, "2 over 1?" Yes
     * -> 2 wins alone; and a pair with an unparsed answer is split c2/2 and counted. */
    fuse_pair pr2[2] = {{1, 2, 0, 1}, {0, 3, -1, 0}};
    fuse_utilities(4, sc, pr2, 2, ls, 2, &p, &u);
    CHECK_NEAR("fuse: consistent 'No'/'Yes' -> second item wins", u.pair[2], 0.5, 1e-12);
    CHECK_NEAR("fuse: ... and the first gets 0", u.pair[1], 0, 0);
    CHECK_NEAR("fuse: unparsed answer -> c2/2 each (a)", u.pair[0], 0.25, 1e-12);
    CHECK_NEAR("fuse: unparsed answer -> c2/2 each (b)", u.pair[3], 0.25, 1e-12);
    CHECK("fuse: unparsed pair counted as a fallback", u.pair_fallbacks == 1);
    /* both answers No: inconsistent (each said the other item loses) -> c2/2 each, no fallback */
    fuse_pair pr3[1] = {{0, 1, 0, 0}};
    fuse_utilities(4, sc, pr3, 1, ls, 0, &p, &u);
    CHECK("fuse: No/No is inconsistent", u.pair[0] == 0.25 && u.pair[1] == 0.25 && u.pair_fallbacks == 0);

    /* Ties. c1 = 0, scores 3 4 3: U_point 3 4 3 -> order 1 0 2 (0 and 2 tied keep base order). */
    fuse_params p0 = p;
    p0.c1 = 0;
    double sc2[3] = {3, 4, 3};
    fuse_utilities(3, sc2, NULL, 0, NULL, 0, &p0, &u);
    fuse_sort(3, u.point, ord);
    CHECK("tie: equal U keeps base order", same_order(ord, (int[]){1, 0, 2}, 3));
    /* Ties equal on paper but not in floating point: n = 2, scores 0.7 and 0.75:
     * U_point = 0.7 + 0.05 * 2 = 0.8 and 0.75 + 0.05 * 1 = 0.8; in doubles the first is
     * 0.7999999999999999 and the second 0.8, so a raw comparison would put 1 first. */
    double sc3[2] = {0.7, 0.75};
    fuse_utilities(2, sc3, NULL, 0, NULL, 0, &p, &u);
    CHECK("tie: rounding noise is not a preference", u.point[1] > u.point[0]);
    fuse_sort(2, u.point, ord);
    CHECK("tie: U equal to 1e-9 keeps base order", same_order(ord, (int[]){0, 1}, 2));
    /* No pointwise answers at all: U_point = 0 for every candidate. */
    fuse_utilities(3, NULL, NULL, 0, NULL, 0, &p, &u);
    CHECK("no pointwise task: U_point = 0", u.point[0] == 0 && u.point[2] == 0 && u.hybrid[1] == 0);
    /* Only the top five list positions count: a 7-long answer gives positions 5, 6 nothing. */
    int ls7[7] = {6, 5, 4, 3, 2, 1, 0};
    double b7[28];
    fuse_utils u7 = {b7, b7 + 7, b7 + 14, b7 + 21, 0};
    fuse_utilities(7, NULL, NULL, 0, ls7, 7, &p, &u7);
    CHECK_NEAR("list: position 4 gets c3", u7.list[2], 0.025, 1e-12);
    CHECK("list: positions past the top five get 0", u7.list[1] == 0 && u7.list[0] == 0);
    /* Custom lambda: only the listwise term -> hybrid equals listwise. */
    fuse_params pl = p;
    pl.lambda[0] = 0, pl.lambda[1] = 0, pl.lambda[2] = 1;
    fuse_utilities(4, sc, pr, 2, ls, 2, &pl, &u);
    fuse_sort(4, u.hybrid, ord);
    CHECK("lambda 0,0,1: hybrid = listwise", same_order(ord, (int[]){2, 0, 1, 3}, 4));
    return 0;
}
