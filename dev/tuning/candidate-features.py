#!/usr/bin/env python3
# candidate-features.py - dev-only analysis of docs/results.md, tuning log 6 (not the product):
# how well do simple, model-free features of the train split rank MF's ten candidates? For every
# user with a positive in PART: popularity, popularity in a window around the user's last train
# rating, release year, and item-to-item transitions (how often a candidate follows the user's
# last L films within five positions in other users' train histories, also divided by the square
# root of its popularity). Prints H@3 and N@3 of each order, and of the base (MF) order.
#
#   dev/tuning/candidate-features.py ART_DIR PART      e.g. ... /tmp/x/loo valid
# ART_DIR needs interactions.mp, items.mp and cand-PART.mp (make ART=... ART_DIR/cand-PART.mp).
import json, os, subprocess, sys, math, collections
A=sys.argv[1]; part=sys.argv[2]
def rec(p):
    out=subprocess.run([os.environ.get('BINDIR', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'bin')) + '/mp2json',p],capture_output=True,text=True,check=True).stdout
    return [json.loads(l) for l in out.splitlines()[1:]]
inter=rec(A+'/interactions.mp'); items={r['item']:r for r in rec(A+'/items.mp')}
cand={r['user']:r['items'] for r in rec(A+'/cand-%s.mp'%part)}
hist=collections.defaultdict(list); pos={}; all_train=[]
for k,r in enumerate(inter):
    if r['part']=='train' or (part=='test' and r['part']=='valid'):
        hist[r['user']].append((r['ts'],k,r['item'],r['rating']))
        all_train.append((r['ts'],r['item'],r['user']))
    if r['part']==part: pos[r['user']]=(r['item'],r['ts'])
for u in hist: hist[u].sort()
pop=collections.Counter(i for _,i,_ in all_train)
all_train.sort()
import bisect
tss=[t for t,_,_ in all_train]
# transitions: item a followed (within next 5) by b
trans=collections.defaultdict(collections.Counter)
for u,h in hist.items():
    its=[i for _,_,i,_ in h]
    for a in range(len(its)):
        for b in range(a+1,min(len(its),a+6)):
            trans[its[a]][its[b]]+=1.0/(b-a)
def recentpop(t,W):
    lo=bisect.bisect_left(tss,t-W); hi=bisect.bisect_right(tss,t+W)
    return collections.Counter(all_train[j][1] for j in range(lo,hi))
feats={}
def evaluate(name,scorefn):
    n=h3=0; nd=0.0; reach=0
    for u,(p,t) in pos.items():
        c=cand.get(u)
        if not c: continue
        n+=1
        if p not in c: continue
        reach+=1
        s=scorefn(u,c)
        order=sorted(range(len(c)),key=lambda j:(-s[j],j))
        r=[c[j] for j in order].index(p)
        if r<3: h3+=1; nd+=1/math.log2(r+2)
    print('%-28s H@3 %.4f N@3 %.4f  (%d/%d reachable in top3)'%(name,h3/n,nd/n,h3,reach))
evaluate('base',lambda u,c:[-j for j in range(len(c))])
evaluate('popularity',lambda u,c:[pop[i] for i in c])
cache={}
for W in [86400*3,86400*14,86400*60]:
    def f(u,c,W=W):
        t=hist[u][-1][0]
        rp=recentpop(t,W)
        return [rp[i] for i in c]
    evaluate('recentpop W=%dd'%(W//86400),f)
    def g(u,c,W=W):
        t=hist[u][-1][0]; rp=recentpop(t,W)
        return [rp[i]/(pop[i]+5) for i in c]
    evaluate('recent/overall W=%dd'%(W//86400),g)
evaluate('year',lambda u,c:[items[i]['year'] or 0 for i in c])
for L in [1,3,5,10,20]:
    def tr(u,c,L=L):
        last=[i for _,_,i,_ in hist[u][-L:]]
        return [sum(trans[a][i] for a in last) for i in c]
    evaluate('transitions last %d'%L,tr)
    def trn(u,c,L=L):
        last=[i for _,_,i,_ in hist[u][-L:]]
        return [sum(trans[a][i] for a in last)/(pop[i]+10)**0.5 for i in c]
    evaluate('trans/sqrtpop last %d'%L,trn)
