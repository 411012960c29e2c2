#!/usr/bin/env python3
# listwise-transitions.py - dev-only analysis for docs/results.md, tuning log 10 (not the product):
# does the tuned listwise likelihood add to a model-free item-to-item transition table, or the
# table to it? The table is candidate-features.py's (log 6): t(i) = sum over the user's last L
# films a of how often i follows a within five positions in the train histories (weight 1/gap),
# divided by sqrt(popularity(i) + 10). For every user with a positive in PART, the ten candidates
# are ranked by
#     s_j = log softmax(listwise scores)_j + w * log(t_j + 0.001)
# for a grid of w (w = 0: the listwise ranking alone; "table alone": t only), ties by the base
# rank. Prints H@3 and N@3 of each run and their mean over the runs.
#
#   dev/tuning/listwise-transitions.py PART ART_DIR [ART_DIR ...]   e.g. valid /tmp/d1/loo /tmp/d2/loo
# Each ART_DIR needs interactions.mp, queries-PART.mp and answers-PART.mp; the runs must share
# the split and the candidates (same SEED).
import json, os, subprocess, sys, math, collections
BIN = os.environ.get('BINDIR', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'bin'))
def rec(p):
    out = subprocess.run([BIN + '/mp2json', p], capture_output=True, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines()[1:]]
if len(sys.argv) < 3: sys.exit('usage: listwise-transitions.py PART ART_DIR [ART_DIR ...]')
part, runs = sys.argv[1], sys.argv[2:]
hist = collections.defaultdict(list); truth = {}
for k, r in enumerate(rec(runs[0] + '/interactions.mp')):
    if r['part'] == 'train' or (part == 'test' and r['part'] == 'valid'):
        hist[r['user']].append((r['ts'], k, r['item']))
    if r['part'] == part: truth[r['user']] = r['item']
for u in hist: hist[u].sort()
pop = collections.Counter(i for h in hist.values() for _, _, i in h)
follows = collections.defaultdict(collections.Counter)   # a -> b: b came 1..5 places after a
for h in hist.values():
    its = [i for _, _, i in h]
    for a in range(len(its)):
        for b in range(a + 1, min(len(its), a + 6)):
            follows[its[a]][its[b]] += 1.0 / (b - a)
def table(u, item, L):
    return sum(follows[a][item] for _, _, a in hist[u][-L:]) / (pop[item] + 10) ** 0.5
listwise = []   # per run: user -> (items, log softmax, base ranks)
for art in runs:
    queries = {r['id']: r for r in rec(art + '/queries-%s.mp' % part)}
    per_user = {}
    for a in rec(art + '/answers-%s.mp' % part):
        if a['task'] != 'listwise': continue
        q = queries[a['id']]; sc = a['scores']
        mx = max(sc); z = math.log(sum(math.exp(x - mx) for x in sc)) + mx
        per_user[q['user']] = (q['items'], [s - z for s in sc], q['ranks'])
    listwise.append(per_user)
def evaluate(per_user, w, L):
    hits = ndcg = 0.0
    for u, t in truth.items():
        if u not in per_user: continue
        items, ls, ranks = per_user[u]
        tab = [math.log(table(u, i, L) + 0.001) for i in items]
        s = tab if w is None else [l + w * x for l, x in zip(ls, tab)]
        order = [items[j] for j in sorted(range(len(items)), key=lambda j: (-s[j], ranks[j]))]
        if t in order[:3]:
            hits += 1; ndcg += 1 / math.log2(order.index(t) + 2)
    return hits / len(truth), ndcg / len(truth)
print('%-22s %s  mean H@3' % ('ranking', '  '.join('%-15s' % os.path.basename(os.path.dirname(r.rstrip('/'))) for r in runs)))
for L in (3, 5):
    for w in (0, 0.1, 0.2, 0.5, 1, 2, None):
        res = [evaluate(p, w, L) for p in listwise]
        name = ('L=%d table alone' % L) if w is None else ('L=%d w=%g' % (L, w))
        print('%-22s %s  %.4f' % (name, '  '.join('%.4f (%.4f)' % x for x in res), sum(x[0] for x in res) / len(res)))
