#!/usr/bin/env python3
# lm-next-title.py - dev-only diagnostic of docs/results.md (not part of the product): how well
# does the pretrained backbone alone rank the MF candidates? For every user with a positive in
# PART it feeds the last H history entries in the pretraining corpus's rated-history format
# ("User's historical movie ratings: "T1": 5; ...; ") to `bin/llm logits` and ranks the
# candidates by the logit of their title token (every title is one token); prints H@3 and N@3
# of that order and of the base order. Also, as a lower-variance view of the same signal (every
# user counts, not only the ~110-170 whose film is among the ten): the held-out film's rank among
# all titles the user has not rated (HR@10, HR@50 over the catalogue) and its mean log-probability.
#
#   dev/tuning/lm-next-title.py ART_DIR PART MODEL_DIR H [MAX_USERS]
#   e.g. dev/tuning/lm-next-title.py artifacts/small/loo valid artifacts/small/loo/backbone 50
import json, math, os, subprocess, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
BIN = os.environ.get('BINDIR', os.path.join(ROOT, 'bin'))
A, part, model, H = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
max_users = int(sys.argv[5]) if len(sys.argv) > 5 else 10**9


def records(path):
    out = subprocess.run([BIN + '/mp2json', path], capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()[1:]]


titles = {r['item']: r['title'] for r in records(A + '/items.mp')}
# symbols.txt line k is token id k + 3 (unk, bos, eos come first), spaces written as U+2581
symbols = [line.rstrip('\n') for line in open(A + '/symbols.txt', encoding='utf-8')]
token_of = {s: k + 3 for k, s in enumerate(symbols)}


def title_token(item):
    return token_of['"' + titles[item].replace(' ', '\u2581') + '"']


history, positive = {}, {}
for k, r in enumerate(records(A + '/interactions.mp')):
    if r['part'] == 'train' or (part == 'test' and r['part'] == 'valid'):
        history.setdefault(r['user'], []).append((r['ts'], k, r['item'], r['rating']))
    if r['part'] == part:
        positive[r['user']] = r['item']
candidates = {r['user']: r['items'] for r in records(A + '/cand-%s.mp' % part)}


def run(*args):
    return subprocess.run([BIN + '/llm', *args], capture_output=True, text=True, check=True).stdout


n = hits_base = hits_lm = 0
ndcg_base = ndcg_lm = 0.0
full_n = full_10 = full_50 = 0
full_logp = 0.0
all_titles = sorted(titles)
for u in sorted(positive)[:max_users]:
    c = candidates.get(u)
    if not c:
        continue
    h = sorted(history.get(u, []))[-H:]
    text = "User's historical movie ratings: " + "; ".join('"%s": %d' % (titles[i], int(r)) for _, _, i, r in h) + "; "
    ids = [1] + [int(x) for x in run('tokenize', '--model', model, '--text', text).split()]
    logits = [float(x) for x in run('logits', '--threads', '2', '--model', model, '--ids', ' '.join(map(str, ids))).split()]
    lm_order = sorted(c, key=lambda i: -logits[title_token(i)])
    # the held-out film among every title the user has not rated before it
    seen = {i for _, _, i, _ in history.get(u, [])}
    pt = logits[title_token(positive[u])]
    above = sum(1 for i in all_titles if i not in seen and i != positive[u] and logits[title_token(i)] > pt)
    mx = max(logits)
    logz = mx + math.log(sum(math.exp(x - mx) for x in logits))
    full_n += 1
    full_10 += above < 10
    full_50 += above < 50
    full_logp += pt - logz
    n += 1
    p = positive[u]
    if p in c[:3]:
        hits_base += 1
        ndcg_base += 1 / math.log2(c.index(p) + 2)
    if p in lm_order[:3]:
        hits_lm += 1
        ndcg_lm += 1 / math.log2(lm_order.index(p) + 2)
print('%s, %d users: base H@3 %.4f N@3 %.4f; backbone next-title H@3 %.4f N@3 %.4f' %
      (part, n, hits_base / n, ndcg_base / n, hits_lm / n, ndcg_lm / n))
print('%s, %d users, among all unrated titles: HR@10 %.4f HR@50 %.4f, mean log p(film) %.3f' %
      (part, full_n, full_10 / full_n, full_50 / full_n, full_logp / full_n))
