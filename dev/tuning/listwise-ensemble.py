#!/usr/bin/env python3
# listwise-ensemble.py - dev-only analysis for docs/results.md, tuning log 9 (not the product):
# would an ensemble of backbones rank better than one? For every user with a positive in PART,
# the ten candidates are ranked by the sum over runs of log softmax(listwise scores), ties by
# the base rank; prints H@3 and N@3 (over all users of PART, as metrics counts them). The runs
# must share the split, the candidates and the queries (same SEED; PRETRAIN_SEED or the tuning
# may differ), which the script checks.
#
#   dev/tuning/listwise-ensemble.py PART ART_DIR [ART_DIR ...]   e.g. valid /tmp/d1/loo /tmp/d2/loo
# Each ART_DIR needs interactions.mp, queries-PART.mp and answers-PART.mp.
import json, os, subprocess, sys, math
BIN = os.environ.get('BINDIR', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'bin'))
def rec(p):
    out = subprocess.run([BIN + '/mp2json', p], capture_output=True, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines()[1:]]
if len(sys.argv) < 3: sys.exit('usage: listwise-ensemble.py PART ART_DIR [ART_DIR ...]')
part, runs = sys.argv[1], sys.argv[2:]
truth = {r['user']: r['item'] for r in rec(runs[0] + '/interactions.mp') if r['part'] == part}
total = {}   # user -> {item: [sum of log softmax, base rank]}
for art in runs:
    queries = {r['id']: r for r in rec(art + '/queries-%s.mp' % part)}
    for a in rec(art + '/answers-%s.mp' % part):
        if a['task'] != 'listwise': continue
        q = queries[a['id']]; sc = a['scores']
        mx = max(sc); z = math.log(sum(math.exp(x - mx) for x in sc)) + mx
        per_user = total.setdefault(q['user'], {})
        if per_user and set(per_user) != set(q['items']):
            sys.exit('%s: user %d has other candidates than in %s' % (art, q['user'], runs[0]))
        for item, s, m in zip(q['items'], sc, q['ranks']):
            per_user.setdefault(item, [0.0, m])[0] += s - z
hits = ndcg = 0.0
for u, t in truth.items():
    if u not in total: continue
    order = sorted(total[u], key=lambda it: (-total[u][it][0], total[u][it][1]))
    if t in order[:3]:
        hits += 1; ndcg += 1 / math.log2(order.index(t) + 2)
print('%s  H@3 %.4f  N@3 %.4f' % (' + '.join(runs), hits / len(truth), ndcg / len(truth)))
