#!/usr/bin/env python3
# item-embedding-init.py - dev-only experiment for docs/results.md, tuning log 11 (not the
# product): does the backbone learn a better sequence model when its film tokens start from
# collaborative item vectors instead of noise? Every film title is one token (a user-defined
# symbol, docs/tokenizer.md) and the embeddings are tied to the output head, so a title row
# serves both as input and as the next-title logit's weight vector.
#
# Reads a random initialisation (`lora-train --full --init CONFIG --steps 0 --out INIT_DIR`)
# and writes OUT_DIR, the same weights with the first 64 of each title token's embedding entries
# replaced by that film's item vector, rescaled to standard deviation STD over all films:
#   mf    the BPR-MF item factors of ART_DIR/mf.mp (64 dimensions; trained on train only);
#   ppmi  positive pointwise mutual information of train-split transitions (b within five
#         places after a in a user's time-ordered train history, weight 1/gap, made symmetric),
#         factorised by SVD: U_64 * sqrt(S_64), as word2vec-style embeddings.
# Only train-split data is read. Pretrain from OUT_DIR with `lora-train --full --model OUT_DIR`
# (dev/tuning/item-init-run.sh does the whole valid run).
#
#   dev/tuning/item-embedding-init.py mf|ppmi INIT_DIR ART_DIR OUT_DIR STD
# ART_DIR needs items.mp, interactions.mp, mf.mp and tok/tokenizer.vocab. Needs numpy.
import base64, collections, json, os, shutil, struct, subprocess, sys
import numpy as np
BIN = os.environ.get('BINDIR', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'bin'))
DIM = 64
def rec(p):
    out = subprocess.run([BIN + '/mp2json', p], capture_output=True, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines()[1:]]
if len(sys.argv) != 6 or sys.argv[1] not in ('mf', 'ppmi'):
    sys.exit('usage: item-embedding-init.py mf|ppmi INIT_DIR ART_DIR OUT_DIR STD')
mode, init, art, out, std = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
titles = {r['item']: r['title'] for r in rec(art + '/items.mp')}
if mode == 'mf':
    vecs = {r['item']: np.frombuffer(base64.b64decode(r['vec']['$bin']), dtype='<f4')[:DIM]
            for r in rec(art + '/mf.mp') if 'item' in r}
else:
    hist = collections.defaultdict(list)
    for k, r in enumerate(rec(art + '/interactions.mp')):
        if r['part'] == 'train': hist[r['user']].append((r['ts'], k, r['item']))
    n = max(titles) + 1
    follows = np.zeros((n, n))
    for h in hist.values():
        its = [i for _, _, i in sorted(h)]
        for a in range(len(its)):
            for b in range(a + 1, min(len(its), a + 6)):
                follows[its[a], its[b]] += 1.0 / (b - a)
    co = follows + follows.T
    row = co.sum(1)
    with np.errstate(divide='ignore', invalid='ignore'):
        pmi = np.log(co * row.sum() / np.outer(row, row))
    pmi[~np.isfinite(pmi)] = 0
    u, s, _ = np.linalg.svd(np.maximum(pmi, 0))
    v = u[:, :DIM] * np.sqrt(s[:DIM])
    vecs = {i: v[i] for i in titles if row[i] > 0}
piece = {l.split('\t')[0]: i for i, l in enumerate(open(art + '/tok/tokenizer.vocab', encoding='utf-8'))}
raw = open(init + '/model.safetensors', 'rb').read()
hlen = struct.unpack('<Q', raw[:8])[0]
meta = json.loads(raw[8:8 + hlen])['model.embed_tokens.weight']
a, b = (8 + hlen + o for o in meta['data_offsets'])
if meta['dtype'] != 'F32': sys.exit('%s: embed_tokens is %s, not F32' % (init, meta['dtype']))
emb = np.frombuffer(raw[a:b], dtype='<f4').reshape(meta['shape']).copy()   # (V, C)
scale = std / np.stack(list(vecs.values())).std()
placed = 0
for item, vec in vecs.items():
    tid = piece.get('"' + titles[item].replace(' ', '\u2581') + '"')   # the title symbol
    if tid is None: continue
    emb[tid, :DIM] = vec * scale
    placed += 1
os.makedirs(out, exist_ok=True)
for f in ('config.json', 'tokenizer.model'): shutil.copy(os.path.join(init, f), os.path.join(out, f))
with open(os.path.join(out, 'model.safetensors'), 'wb') as f:
    f.write(raw[:a] + emb.astype('<f4').tobytes() + raw[b:])
print('item-embedding-init: %s vectors for %d of %d title tokens, std %g' % (mode, placed, len(vecs), std), file=sys.stderr)
