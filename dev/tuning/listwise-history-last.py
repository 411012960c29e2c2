# listwise-history-last.py - dev-only tuning experiment of docs/results.md (not the product):
# rewrites listwise instructions or queries so that the candidates sit in the instruction and the
# user's rated history comes last, in the pretraining corpus's format (the answer then follows
# the history closely). Usage: listwise-history-last.py ART_DIR IN.mp OUT.mp (other tasks dropped).
import json, os, subprocess, sys
A, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
B = os.environ.get('BINDIR', os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'bin'))
def jl(p): return subprocess.run([B + '/mp2json', p], capture_output=True, text=True, check=True).stdout.splitlines()
rating = {}
for line in jl(A + '/interactions.mp')[1:]:
    r = json.loads(line)
    if r['part'] in ('train', 'valid'): rating[(r['user'], r['item'])] = (r['rating'], r['part'])
titles = {json.loads(l)['item']: json.loads(l)['title'] for l in jl(A + '/items.mp')[1:]}
W0 = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
INSTR = ("You are a movie recommender system. Your task is to rank a given list of candidate movies based on user "
         "preferences and return the top five recommendations. Respond only with the titles of the top five, best first, one per line.\n"
         "Candidate movies: %s.")
lines = jl(src)
out = [lines[0]]
for line in lines[1:]:
    r = json.loads(line)
    if r['task'] != 'listwise': continue
    u = r['user']
    cands = ', '.join('"%s"' % titles[i] for i in r['items'])
    hist = '; '.join('"%s": %d' % (titles[i], int(rating[(u, i)][0])) for i in r['history'])
    prompt = W0 + (INSTR % cands) + "\n\n### Input:\nUser's historical movie ratings: " + hist + "; \n\n### Response:\n"
    r['prompt'] = prompt
    r['prefix_len'] = len(W0.encode())
    out.append(json.dumps(r, ensure_ascii=False))
subprocess.run([B + '/json2mp', '-o', dst], input='\n'.join(out) + '\n', text=True, check=True)
print(len(out) - 1, 'records')
