/* optim.c - AdamW, warm-up + cosine schedule, gradient clipping. */
#include "llm/optim.h"

#include <math.h>
#include <stdlib.h>

#include "io/err.h"

llm_adamw *llm_adamw_new(const llm_param *p, int n) {
    llm_adamw *o = xcalloc(1, sizeof *o);
    o->n = n;
    o->m = xcalloc((size_t)(n ? n : 1), sizeof *o->m);
    o->v = xcalloc((size_t)(n ? n : 1), sizeof *o->v);
    for (int i = 0; i < n; i++) {
        o->m[i] = xcalloc(p[i].n ? p[i].n : 1, sizeof(float));
        o->v[i] = xcalloc(p[i].n ? p[i].n : 1, sizeof(float));
    }
    return o;
}

void llm_adamw_free(llm_adamw *o) {
    if (!o) return;
    for (int i = 0; i < o->n; i++) { free(o->m[i]); free(o->v[i]); }
    free(o->m);
    free(o->v);
    free(o);
}

void llm_adamw_step(llm_adamw *o, llm_param *p, int n, const llm_adamw_opts *h, float lr) {
    o->step++;
    double bc1 = 1.0 - pow(h->beta1, (double)o->step), bc2 = 1.0 - pow(h->beta2, (double)o->step);
    float step_size = (float)(lr / bc1), bc2s = (float)sqrt(bc2), b1 = h->beta1, b2 = h->beta2;
    for (int i = 0; i < n; i++) {
        float *w = p[i].w, *g = p[i].g, *m = o->m[i], *v = o->v[i];
        float decay = p[i].decay ? 1.0f - lr * h->weight_decay : 1.0f;
        for (size_t k = 0; k < p[i].n; k++) {
            w[k] *= decay;
            m[k] = b1 * m[k] + (1 - b1) * g[k];
            v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k];
            w[k] -= step_size * m[k] / (sqrtf(v[k]) / bc2s + h->eps);
        }
    }
}

float llm_lr_cosine(long k, float lr, long warmup, long total) {
    if (k < warmup) return lr * (float)k / (float)(warmup > 1 ? warmup : 1);
    double span = (double)(total - warmup > 1 ? total - warmup : 1);
    double prog = (double)(k - warmup) / span, f = 0.5 * (1.0 + cos(M_PI * prog));
    return f > 0 ? (float)(lr * f) : 0.0f;
}

double llm_grad_norm(const llm_param *p, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < p[i].n; k++) s += (double)p[i].g[k] * p[i].g[k];
    return sqrt(s);
}

double llm_clip_grad(llm_param *p, int n, double max_norm) {
    double norm = llm_grad_norm(p, n);
    if (max_norm > 0 && norm > max_norm) {
        float c = (float)(max_norm / (norm + 1e-6));
        for (int i = 0; i < n; i++)
            for (size_t k = 0; k < p[i].n; k++) p[i].g[k] *= c;
    }
    return norm;
}
