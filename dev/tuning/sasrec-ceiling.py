#!/usr/bin/env python3
# sasrec-ceiling.py - dev-only ceiling estimate (not the product): how well does a standard
# sequential recommender, SASRec (Kang & McAuley 2018), rerank the same ten MF candidates per
# user that the language-model reranker sees? Item embeddings (tied to the output layer) plus
# learned positional embeddings, causal self-attention blocks (pre-LayerNorm, point-wise
# feed-forward), next-item prediction with full softmax cross-entropy over all items. Trains on
# the train part only (each user's time-ordered train history, ties in time kept in file order,
# cut into windows of MAXLEN+1); never on valid or test items.
# Evaluation, every EVAL epochs: input = the user's last MAXLEN train films; the ten candidates of
# ART_DIR/cand-valid.mp are reordered by the next-item logit (ties by MF rank); prints H@3, N@3,
# H@5, N@5 over the users with a valid positive, the MF-order numbers, and full-catalogue HR@10 /
# NDCG@10 (train films excluded) as a sanity check. Stops after PATIENCE evaluations without a
# better valid SELECT metric; the best checkpoint is then scored on TEST_CAND (input = train
# history + the valid film appended; train and valid films excluded from the full catalogue).
# Also prints the valid (and test) fusion log_softmax_10(logits) + w * (-log(MF rank + 1)),
# rank 1..10, w in {0, 0.25, 0.5, 1} (a diagnostic).
#
#   dev/tuning/sasrec-ceiling.py ART_DIR TEST_CAND [--seq liked|all] [--dim 64] [--drop 0.2]
#       [--maxlen 50] [--blocks 2] [--heads 1] [--lr 1e-3] [--bs 128] [--epochs 300] [--eval 5]
#       [--patience 8] [--select ndcg10|h3] [--seed 0] [--json OUT.json]
#   e.g. ... /tmp/d1/loo /tmp/sas/cand-test.mp --seq liked --seed 0
# ART_DIR needs interactions.mp and cand-valid.mp; TEST_CAND is `bin/candgen --mf ART_DIR/mf.mp
# --for test ART_DIR/interactions.mp -o TEST_CAND`. Needs a venv with jax[cpu], optax and numpy
# (python3 -m venv V && V/bin/pip install 'jax[cpu]' optax). mp2json: $BINDIR/mp2json (bin/).
import argparse, collections, json, math, os, subprocess, sys, time
import numpy as np
import jax, jax.numpy as jnp, optax

BIN = os.environ.get('BINDIR', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'bin'))
def rec(p):
    out = subprocess.run([BIN + '/mp2json', p], capture_output=True, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines()[1:]]

ap = argparse.ArgumentParser()
ap.add_argument('art'); ap.add_argument('test_cand')
ap.add_argument('--seq', default='liked', choices=['liked', 'all'])
ap.add_argument('--dim', type=int, default=64); ap.add_argument('--drop', type=float, default=0.2)
ap.add_argument('--maxlen', type=int, default=50); ap.add_argument('--blocks', type=int, default=2)
ap.add_argument('--heads', type=int, default=1); ap.add_argument('--lr', type=float, default=1e-3)
ap.add_argument('--bs', type=int, default=128); ap.add_argument('--epochs', type=int, default=300)
ap.add_argument('--eval', type=int, default=5); ap.add_argument('--patience', type=int, default=8)
ap.add_argument('--select', default='ndcg10', choices=['ndcg10', 'h3'])
ap.add_argument('--seed', type=int, default=0); ap.add_argument('--json')
a = ap.parse_args()
t0 = time.time()

# ---- data
inter = rec(a.art + '/interactions.mp')
hist = collections.defaultdict(list); valid = {}; test = {}
for k, r in enumerate(inter):
    if r['part'] == 'train' and (a.seq == 'all' or r['liked']):
        hist[r['user']].append((r['ts'], k, r['item']))
    elif r['part'] == 'valid': valid[r['user']] = (r['ts'], k, r['item'])
    elif r['part'] == 'test': test[r['user']] = r['item']
NI = max(r['item'] for r in inter)            # items 1..NI, 0 = padding
seqs = {u: [i for _, _, i in sorted(h)] for u, h in hist.items()}
cval = {r['user']: r['items'] for r in rec(a.art + '/cand-valid.mp')}
ctest = {r['user']: r['items'] for r in rec(a.test_cand)}
L = a.maxlen

def windows(rng):
    # every user's train sequence cut into windows of L+1 (inputs L, targets L), from the end,
    # with a random shift per epoch so the cut points move
    X, Y = [], []
    for u, s in seqs.items():
        if len(s) < 2: continue
        end = len(s) - int(rng.integers(0, L)) if len(s) > L + 1 else len(s)
        ends = [len(s)] if end == len(s) else [len(s), end]
        e = end
        while e - L - 1 > 0:
            e -= L; ends.append(e)
        for e in sorted(set(ends)):
            w = s[max(0, e - L - 1):e]
            x = [0] * (L + 1 - len(w)) + w
            X.append(x[:-1]); Y.append(x[1:])
    return np.array(X, np.int32), np.array(Y, np.int32)

def lastL(s):
    s = s[-L:]; return [0] * (L - len(s)) + s

# ---- model
def init(key):
    ks = jax.random.split(key, 2 + 6 * a.blocks); d = a.dim
    g = lambda k, sh, sc: jax.random.normal(k, sh) * sc
    p = {'item': g(ks[0], (NI + 1, d), d ** -0.5), 'pos': g(ks[1], (L, d), d ** -0.5),
         'lnf': (jnp.ones(d), jnp.zeros(d)), 'blocks': []}
    for b in range(a.blocks):
        k = ks[2 + 6 * b:8 + 6 * b]
        p['blocks'].append({'ln1': (jnp.ones(d), jnp.zeros(d)), 'ln2': (jnp.ones(d), jnp.zeros(d)),
            'wq': g(k[0], (d, d), d ** -0.5), 'wk': g(k[1], (d, d), d ** -0.5), 'wv': g(k[2], (d, d), d ** -0.5),
            'wo': g(k[3], (d, d), d ** -0.5), 'f1': g(k[4], (d, d), d ** -0.5), 'b1': jnp.zeros(d),
            'f2': g(k[5], (d, d), d ** -0.5), 'b2': jnp.zeros(d)})
    return p

def ln(x, gb):
    m = x.mean(-1, keepdims=True); v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / jnp.sqrt(v + 1e-8) * gb[0] + gb[1]

def drop(x, key, train):
    if not train or a.drop == 0: return x
    keep = jax.random.bernoulli(key, 1 - a.drop, x.shape)
    return jnp.where(keep, x / (1 - a.drop), 0)

def encode(p, x, key, train):
    B, T = x.shape; d = a.dim; H = a.heads
    mask = (x > 0)[..., None]
    h = p['item'][x] * math.sqrt(d) + p['pos'][None]
    keys = jax.random.split(key, 1 + 3 * a.blocks)
    h = drop(h, keys[0], train) * mask
    causal = jnp.tril(jnp.ones((T, T), bool))
    for b, q in enumerate(p['blocks']):
        z = ln(h, q['ln1'])
        Q = (z @ q['wq']).reshape(B, T, H, d // H); K = (z @ q['wk']).reshape(B, T, H, d // H)
        V = (z @ q['wv']).reshape(B, T, H, d // H)
        att = jnp.einsum('bthd,bshd->bhts', Q, K) / math.sqrt(d // H)
        att = jnp.where(causal[None, None] & (x > 0)[:, None, None, :], att, -1e9)
        att = drop(jax.nn.softmax(att, -1), keys[1 + 3 * b], train)
        o = jnp.einsum('bhts,bshd->bthd', att, V).reshape(B, T, d) @ q['wo']
        h = h + drop(o, keys[2 + 3 * b], train)
        z = ln(h, q['ln2'])
        f = jax.nn.relu(z @ q['f1'] + q['b1']) @ q['f2'] + q['b2']
        h = (h + drop(f, keys[3 + 3 * b], train)) * mask
    return ln(h, p['lnf'])

def loss_fn(p, x, y, idx, key):
    # full softmax over all items, computed only at the (padded-to-a-bucket) real target positions
    h = encode(p, x, key, True).reshape(-1, a.dim)[idx]
    yf = y.reshape(-1)[idx]
    lg = (h @ p['item'].T).at[:, 0].set(-1e9)
    nll = jax.nn.logsumexp(lg, -1) - jnp.take_along_axis(lg, yf[:, None], -1)[:, 0]
    m = (yf > 0)
    return (nll * m).sum() / m.sum()

opt = optax.adam(a.lr, b2=0.98)
@jax.jit
def step(p, s, x, y, idx, key):
    l, g = jax.value_and_grad(loss_fn)(p, x, y, idx, key)
    u, s = opt.update(g, s, p)
    return optax.apply_updates(p, u), s, l

@jax.jit
def next_logits(p, x):
    h = encode(p, x, jax.random.PRNGKey(0), False)[:, -1]
    return h @ p['item'].T

# ---- evaluation
def rank_metrics(users, inputs, cands, pos, excl, p, ws=(0.0,)):
    X = np.array([lastL(inputs[u]) for u in users], np.int32)
    lg = np.concatenate([np.asarray(next_logits(p, X[i:i + 512])) for i in range(0, len(X), 512)])
    res = {}
    for w in ws:
        h3 = n3 = h5 = n5 = 0.0
        for j, u in enumerate(users):
            c = cands[u]; sc = lg[j, c]
            ls = sc - (sc.max() + np.log(np.exp(sc - sc.max()).sum()))
            f = ls + w * -np.log(np.arange(1, len(c) + 1) + 1.0)
            order = sorted(range(len(c)), key=lambda i: (-f[i], i))   # ties by MF rank
            if pos[u] in c:
                r = order.index(c.index(pos[u])) + 1
                if r <= 3: h3 += 1; n3 += 1 / math.log2(r + 1)
                if r <= 5: h5 += 1; n5 += 1 / math.log2(r + 1)
        n = len(users); res[w] = dict(H3=h3 / n, N3=n3 / n, H5=h5 / n, N5=n5 / n)
    hr = nd = 0.0
    for j, u in enumerate(users):
        s = lg[j].copy(); s[0] = -np.inf; s[list(excl[u])] = -np.inf
        t = s[pos[u]]; r = int((s > t).sum()) + 1
        if r <= 10: hr += 1; nd += 1 / math.log2(r + 1)
    res['HR10'] = hr / len(users); res['NDCG10'] = nd / len(users)
    return res

def mf_metrics(users, cands, pos):
    h3 = n3 = h5 = n5 = 0.0
    for u in users:
        c = cands[u]
        if pos[u] in c:
            r = c.index(pos[u]) + 1
            if r <= 3: h3 += 1; n3 += 1 / math.log2(r + 1)
            if r <= 5: h5 += 1; n5 += 1 / math.log2(r + 1)
    n = len(users); return dict(H3=h3 / n, N3=n3 / n, H5=h5 / n, N5=n5 / n)

# users are evaluated with their train films under the chosen --seq; train films excluded from
# the full catalogue are all train records (liked or not), as MF's candidates exclude them
alltrain = collections.defaultdict(set)
for r in inter:
    if r['part'] == 'train': alltrain[r['user']].add(r['item'])
vusers = sorted(u for u in valid if u in cval)
vpos = {u: valid[u][2] for u in vusers}
vin = {u: seqs.get(u, []) for u in vusers}
tusers = sorted(u for u in test if u in ctest)
tpos = dict(test)
tin = {}
for u in tusers:
    h = list(hist.get(u, []))
    if u in valid: h.append(valid[u])
    tin[u] = [i for _, _, i in sorted(h)]
texcl = {u: alltrain[u] | ({valid[u][2]} if u in valid else set()) for u in tusers}
print('items %d, train users %d, train films %d (seq=%s), valid users %d, test users %d' % (
    NI, len(seqs), sum(map(len, seqs.values())), a.seq, len(vusers), len(tusers)), flush=True)
print('MF valid', mf_metrics(vusers, cval, vpos), 'MF test', mf_metrics(tusers, ctest, tpos), flush=True)

# ---- train
rng = np.random.default_rng(a.seed); key = jax.random.PRNGKey(a.seed)
key, k0 = jax.random.split(key); p = init(k0); s = opt.init(p)
best = None; bad = 0; log = []
for ep in range(1, a.epochs + 1):
    X, Y = windows(rng); perm = rng.permutation(len(X)); tl = 0.0; nb = 0
    for i in range(0, len(X), a.bs):
        b = perm[i:i + a.bs]
        if len(b) < a.bs: b = np.concatenate([b, perm[:a.bs - len(b)]])   # fixed shapes for jit
        key, k = jax.random.split(key)
        yb = Y[b]; idx = np.flatnonzero(yb.reshape(-1) > 0)
        P = -(-len(idx) // 512) * 512                      # bucket: few jit variants
        idx = np.concatenate([idx, np.flatnonzero(yb.reshape(-1) == 0)[:P - len(idx)]]).astype(np.int32)
        p, s, l = step(p, s, jnp.asarray(X[b]), jnp.asarray(yb), jnp.asarray(idx), k); tl += float(l); nb += 1
    if ep % a.eval == 0:
        m = rank_metrics(vusers, vin, cval, vpos, alltrain, p)
        row = dict(epoch=ep, loss=tl / nb, sec=round(time.time() - t0, 1), HR10=m['HR10'], NDCG10=m['NDCG10'], **m[0.0])
        log.append(row); print(json.dumps(row), flush=True)
        sel = row['NDCG10'] if a.select == 'ndcg10' else row['H3']
        if best is None or sel > best[0]:
            best = (sel, ep, jax.tree_util.tree_map(lambda z: z, p), row); bad = 0
        else:
            bad += 1
            if bad >= a.patience: break
train_sec = time.time() - t0
_, bep, bp, brow = best
ws = (0.0, 0.25, 0.5, 1.0)
vm = rank_metrics(vusers, vin, cval, vpos, alltrain, bp, ws)
tm = rank_metrics(tusers, tin, ctest, tpos, texcl, bp, ws)
print('best epoch %d (select %s), train+eval %.0f s' % (bep, a.select, train_sec))
for name, m in (('valid', vm), ('test', tm)):
    print('%s  HR@10 %.4f NDCG@10 %.4f' % (name, m['HR10'], m['NDCG10']))
    for w in ws:
        print('%s  w=%-4g H@3 %.4f N@3 %.4f H@5 %.4f N@5 %.4f' % (name, w, m[w]['H3'], m[w]['N3'], m[w]['H5'], m[w]['N5']))
if a.json:
    json.dump(dict(args=vars(a), best_epoch=bep, train_sec=train_sec, log=log,
                   valid={str(k): v for k, v in vm.items()}, test={str(k): v for k, v in tm.items()}),
              open(a.json, 'w'), indent=1)
