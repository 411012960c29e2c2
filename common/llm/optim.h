/* optim.h - AdamW (PyTorch's torch.optim.AdamW), the learning-rate schedule (linear warm-up
 * then cosine decay, as transformers' get_cosine_schedule_with_warmup) and global-norm
 * gradient clipping (torch.nn.utils.clip_grad_norm_). */
#ifndef ITREK_LLM_OPTIM_H
#define ITREK_LLM_OPTIM_H

#include "llm/train.h"

typedef struct {
    float beta1, beta2, eps, weight_decay;
} llm_adamw_opts;

typedef struct {
    int n;
    float **m, **v; /* per parameter: first and second moments */
    long step;      /* updates done */
} llm_adamw;

llm_adamw *llm_adamw_new(const llm_param *p, int n);
void llm_adamw_free(llm_adamw *o);
/* One update with learning rate lr: w -= lr wd w (params with decay), then the Adam step with
 * bias correction for update number step + 1. */
void llm_adamw_step(llm_adamw *o, llm_param *p, int n, const llm_adamw_opts *h, float lr);

/* lr for 0-based update k: lr k / warmup during warm-up, then
 * lr 0.5 (1 + cos(pi (k - warmup) / (total - warmup))), never below 0. */
float llm_lr_cosine(long k, float lr, long warmup, long total);
/* Global L2 norm of every gradient (in double). */
double llm_grad_norm(const llm_param *p, int n);
/* Scale every gradient by max_norm / (norm + 1e-6) when norm > max_norm; returns norm. */
double llm_clip_grad(llm_param *p, int n, double max_norm);

#endif
