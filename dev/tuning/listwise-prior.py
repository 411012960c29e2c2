#!/usr/bin/env python3
# listwise-prior.py - dev-only analysis for docs/results.md, tuning log 8 (not the product):
# does the MF order add to the listwise likelihood? For every user with a positive in PART, the
# ten candidates are ranked by
#     s_j = log softmax(listwise scores)_j + w * prior(m_j)      (m_j = the base rank, 0..9)
# for a grid of w, with prior(m) = -log(m + 1) ("log") or -m ("lin"); also the pairwise
# utility when the answers hold pairwise scores (RecRanker's U_pair, c2 = 0.5). w = 0 is the
# listwise ranking by likelihood alone (fuse's listwise: the top five of it, then base order).
# Prints H@3 and N@3 of each.
#
#   dev/tuning/listwise-prior.py ART_DIR PART     e.g. ... /tmp/v1/loo valid
# ART_DIR needs interactions.mp, queries-PART.mp and answers-PART.mp.
import json, os, subprocess, sys, math, collections
A = sys.argv[1]; part = sys.argv[2]
BIN = os.environ.get('BINDIR', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'bin'))
def rec(p):
    out = subprocess.run([BIN + '/mp2json', p], capture_output=True, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines()[1:]]
truth = {r['user']: r['item'] for r in rec(A + '/interactions.mp') if r['part'] == part}
queries = {r['id']: r for r in rec(A + '/queries-%s.mp' % part)}
answers = rec(A + '/answers-%s.mp' % part)
lst = {}; pair = collections.defaultdict(lambda: collections.defaultdict(float)); cands = {}
for a in answers:
    q = queries[a['id']]; u = q['user']
    if a['task'] == 'listwise':
        sc = a['scores']; mx = max(sc); z = math.log(sum(math.exp(x - mx) for x in sc)) + mx
        lst[u] = {it: (s - z, m) for it, s, m in zip(q['items'], sc, q['ranks'])}
        cands[u] = {it: m for it, m in zip(q['items'], q['ranks'])}
    elif a['task'] == 'pairwise' and a.get('scores'):
        # scores: log p of answering the first / second shown item
        s = a['scores']; i0, i1 = q['items'][0], q['items'][1]
        win = i0 if s[0] >= s[1] else i1
        pair[u][win] += 0.5 / 2  # asked twice; a consistent winner gets 0.5 in all
users = [u for u in lst if u in truth]
def evaluate(name, score):
    h3 = 0; nd = 0.0
    for u in users:
        c = lst[u]
        order = sorted(c, key=lambda it: (-score(u, it), c[it][1]))
        if truth[u] in order[:3]:
            r = order.index(truth[u]); h3 += 1; nd += 1 / math.log2(r + 2)
    print('%-34s H@3 %.4f N@3 %.4f' % (name, h3 / len(users), nd / len(users)))
print('%d users with a %s positive' % (len(users), part))
evaluate('base', lambda u, it: -lst[u][it][1])
for w in [0, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2]:
    evaluate('listwise + %.2f * log prior' % w, lambda u, it, w=w: lst[u][it][0] - w * math.log(lst[u][it][1] + 1))
for w in [0.05, 0.1, 0.2, 0.3]:
    evaluate('listwise + %.2f * lin prior' % w, lambda u, it, w=w: lst[u][it][0] - w * lst[u][it][1])
if pair:
    for w in [0.5, 1, 2, 4]:
        evaluate('listwise + %.1f * U_pair' % w, lambda u, it, w=w: lst[u][it][0] + w * pair[u][it])
