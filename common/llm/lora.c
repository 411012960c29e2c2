/* lora.c - LoRA adapters: creation, PEFT save/load, on-the-fly application, merging. */
#include "llm/lora.h"

#include "io/atomic.h"
#include "io/jsonview.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"
#include "io/rng.h"
#include "llm/safetensors.h"

static const char *const MOD_NAME[LLM_N_MODS] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
static const char *const MOD_PATH[LLM_N_MODS] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                 "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                                 "mlp.down_proj"};

const char *llm_mod_name(int mod) { return mod >= 0 && mod < LLM_N_MODS ? MOD_NAME[mod] : NULL; }
const char *llm_mod_path(int mod) { return mod >= 0 && mod < LLM_N_MODS ? MOD_PATH[mod] : NULL; }

void llm_mod_shape(const llm_config *c, int mod, int *out, int *in) {
    int C = c->dim, H = c->hidden_dim, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    switch (mod) {
    case LLM_MOD_Q: *out = qd, *in = C; break;
    case LLM_MOD_K:
    case LLM_MOD_V: *out = kvd, *in = C; break;
    case LLM_MOD_O: *out = C, *in = qd; break;
    case LLM_MOD_GATE:
    case LLM_MOD_UP: *out = H, *in = C; break;
    default: *out = C, *in = H; break;
    }
}

static int mod_by_name(const char *s, size_t n) {
    for (int i = 0; i < LLM_N_MODS; i++)
        if (strlen(MOD_NAME[i]) == n && strncmp(MOD_NAME[i], s, n) == 0) return i;
    return -1;
}

int llm_lora_parse_targets(const char *list, unsigned *mask, char *err, size_t errlen) {
    *mask = 0;
    if (strcmp(list, "all") == 0) { *mask = LLM_MODS_ALL; return 0; }
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int m = mod_by_name(p, n);
        if (m < 0) {
            snprintf(err, errlen, "unknown target module '%.*s' (expected q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)", (int)n, p);
            return -1;
        }
        *mask |= 1u << m;
        p += n;
        if (*p == ',') p++;
    }
    if (!*mask) { snprintf(err, errlen, "no target modules"); return -1; }
    return 0;
}

static llm_lora *lora_alloc(const llm_config *c, int r, float alpha, float dropout, unsigned targets, int rslora) {
    llm_lora *a = xcalloc(1, sizeof *a);
    a->n_layers = c->n_layers;
    a->r = r;
    a->alpha = alpha;
    a->dropout = dropout;
    a->use_rslora = rslora;
    a->scale = rslora ? alpha / sqrtf((float)r) : alpha / (float)r;
    a->targets = targets;
    a->ab = xcalloc((size_t)c->n_layers * LLM_N_MODS, sizeof *a->ab);
    for (int l = 0; l < c->n_layers; l++)
        for (int m = 0; m < LLM_N_MODS; m++) {
            llm_lora_ab *p = llm_lora_at(a, l, m);
            llm_mod_shape(c, m, &p->out, &p->in);
            if (!(targets & (1u << m))) continue;
            p->A = xcalloc((size_t)r * p->in, sizeof(float));
            p->B = xcalloc((size_t)p->out * r, sizeof(float));
        }
    return a;
}

llm_lora *llm_lora_new(const llm_config *c, int r, float alpha, float dropout, unsigned targets, uint64_t seed) {
    llm_lora *a = lora_alloc(c, r, alpha, dropout, targets, 0);
    for (int l = 0; l < c->n_layers; l++)
        for (int m = 0; m < LLM_N_MODS; m++) {
            llm_lora_ab *p = llm_lora_at(a, l, m);
            if (!p->A) continue;
            rng_t g;
            rng_init(&g, seed, (uint64_t)l * LLM_N_MODS + (uint64_t)m);
            double bound = 1.0 / sqrt((double)p->in);
            for (size_t i = 0; i < (size_t)r * p->in; i++) p->A[i] = (float)((2.0 * rng_uniform(&g) - 1.0) * bound);
        }
    return a;
}

void llm_lora_free(llm_lora *a) {
    if (!a) return;
    for (int i = 0; i < a->n_layers * LLM_N_MODS; i++) { free(a->ab[i].A); free(a->ab[i].B); }
    free(a->ab);
    free(a->base_model);
    free(a->scratch);
    free(a);
}

void llm_lora_apply(llm_lora *a, const llm_backend *be, int layer, int mod, llm_act y, llm_cact x, int T) {
    const llm_lora_ab *p = llm_lora_at(a, layer, mod);
    if (!p->A || T <= 0) return;
    size_t need = (size_t)T * a->r;
    if (need > a->scratch_cap) {
        a->scratch = xrealloc(a->scratch, need * sizeof(float));
        a->scratch_cap = need;
    }
    /* fp32 A, B and u against activations x, y (on the host, where this runs, both are fp32) */
    llm_be_gemm_act(be, LLM_ACT_A, 0, 1, T, a->r, p->in, 1.0f, x, p->in, p->A, p->in, 0.0f, a->scratch, a->r); // u (T,r) = x A^T
    llm_be_gemm_act(be, LLM_ACT_C, 0, 1, T, p->out, a->r, a->scale, a->scratch, a->r, p->B, a->r, 1.0f, y,
                    p->out);                                                                       // y += s u B^T
}

void llm_lora_merge_weight(const llm_lora *a, int layer, int mod, llm_weight *w) {
    const llm_lora_ab *p = llm_lora_at(a, layer, mod);
    if (!p->A || !w->f) return;
    for (int o = 0; o < p->out; o++)
        for (int k = 0; k < a->r; k++) {
            float b = a->scale * p->B[(size_t)o * a->r + k];
            if (b == 0) continue;
            const float *Ar = p->A + (size_t)k * p->in;
            float *Wr = w->f + (size_t)o * p->in;
            for (int i = 0; i < p->in; i++) Wr[i] += b * Ar[i];
        }
}

/* ---------------------------------------------------------------- PEFT files */


static void key(char *buf, size_t n, int l, int mod, char ab) {
    snprintf(buf, n, "base_model.model.model.layers.%d.%s.lora_%c.weight", l, MOD_PATH[mod], ab);
}

int llm_lora_save(const llm_lora *a, const char *dir, char *err, size_t errlen) {
    char path[4096];
    json_t *o = json_object();
    json_t *tm = json_array();
    for (int m = 0; m < LLM_N_MODS; m++)
        if (a->targets & (1u << m)) json_array_append_new(tm, json_string(MOD_NAME[m]));
    json_object_set_new(o, "peft_type", json_string("LORA"));
    json_object_set_new(o, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(o, "base_model_name_or_path", a->base_model ? json_string(a->base_model) : json_null());
    json_object_set_new(o, "r", json_integer(a->r));
    json_object_set_new(o, "lora_alpha", json_f32_number(a->alpha));
    json_object_set_new(o, "lora_dropout", json_f32_number(a->dropout));
    json_object_set_new(o, "target_modules", tm);
    json_object_set_new(o, "bias", json_string("none"));
    json_object_set_new(o, "fan_in_fan_out", json_false());
    json_object_set_new(o, "inference_mode", json_true());
    json_object_set_new(o, "init_lora_weights", json_true());
    json_object_set_new(o, "modules_to_save", json_null());
    json_object_set_new(o, "layers_to_transform", json_null());
    json_object_set_new(o, "use_rslora", json_boolean(a->use_rslora));
    json_object_set_new(o, "use_dora", json_false());
    json_object_set_new(o, "revision", json_null());
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    int rc = json_dump_atomic(o, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (rc != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    int cap = 2 * a->n_layers * LLM_N_MODS, n = 0;
    llm_tensor *ts = xcalloc((size_t)cap, sizeof *ts);
    char **names = xcalloc((size_t)cap, sizeof *names);
    for (int l = 0; l < a->n_layers; l++)
        for (int m = 0; m < LLM_N_MODS; m++) {
            const llm_lora_ab *p = llm_lora_at(a, l, m);
            if (!p->A) continue;
            char nm[256];
            key(nm, sizeof nm, l, m, 'A');
            names[n] = xstrdup(nm);
            ts[n] = (llm_tensor){.name = names[n], .dtype = LLM_F32, .ndim = 2, .shape = {a->r, p->in}, .data = p->A,
                                 .nbytes = (size_t)a->r * p->in * 4};
            n++;
            key(nm, sizeof nm, l, m, 'B');
            names[n] = xstrdup(nm);
            ts[n] = (llm_tensor){.name = names[n], .dtype = LLM_F32, .ndim = 2, .shape = {p->out, a->r}, .data = p->B,
                                 .nbytes = (size_t)p->out * a->r * 4};
            n++;
        }
    const char *meta[] = {"format", "pt"};
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    rc = st_write(path, ts, n, meta, 1, err, errlen);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(ts);
    return rc;
}

static int read_tensor(st_file *st, const char *src, const char *name, int rows, int cols, float *out, char *err,
                       size_t errlen) {
    const llm_tensor *t = st_find(st, name);
    if (!t) { snprintf(err, errlen, "%s: tensor %s is missing", src, name); return -1; }
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols) {
        snprintf(err, errlen, "%s: tensor %s has the wrong shape (expected [%d,%d])", src, name, rows, cols);
        return -1;
    }
    char e2[512];
    if (llm_tensor_to_f32(t, out, (uint64_t)rows * cols, e2, sizeof e2) != 0) {
        snprintf(err, errlen, "%s: %s", src, e2);
        return -1;
    }
    return 0;
}

llm_lora *llm_lora_load(const char *dir, const llm_config *c, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o) {
        FILE *fp = fopen(path, "r");
        if (!fp) snprintf(err, errlen, "%s: %s", path, strerror(errno));
        else { fclose(fp); snprintf(err, errlen, "%s:%d: bad JSON: %s", path, je.line, je.text); }
        return NULL;
    }
    llm_lora *a = NULL;
    const char *why = NULL;
    json_t *pt = json_object_get(o, "peft_type"), *r = json_object_get(o, "r"), *al = json_object_get(o, "lora_alpha"),
           *dr = json_object_get(o, "lora_dropout"), *tm = json_object_get(o, "target_modules"),
           *bias = json_object_get(o, "bias"), *ff = json_object_get(o, "fan_in_fan_out"),
           *dora = json_object_get(o, "use_dora"), *rs = json_object_get(o, "use_rslora"),
           *ltt = json_object_get(o, "layers_to_transform"), *rp = json_object_get(o, "rank_pattern"),
           *ap = json_object_get(o, "alpha_pattern"), *bm = json_object_get(o, "base_model_name_or_path");
    unsigned targets = 0;
    if (!json_is_object(o)) why = "not a JSON object";
    else if (!json_is_string(pt) || strcmp(json_string_value(pt), "LORA")) why = "peft_type is not LORA";
    else if (!json_is_integer(r) || json_integer_value(r) < 1 || json_integer_value(r) > 65536) why = "r is not a positive integer";
    else if (!json_is_number(al)) why = "lora_alpha is not a number";
    else if (bias && !json_is_null(bias) && (!json_is_string(bias) || strcmp(json_string_value(bias), "none"))) why = "bias must be \"none\"";
    else if (json_is_true(ff)) why = "fan_in_fan_out is not supported";
    else if (json_is_true(dora)) why = "DoRA (use_dora) is not supported";
    else if (ltt && !json_is_null(ltt)) why = "layers_to_transform is not supported";
    else if ((rp && json_is_object(rp) && json_object_size(rp)) || (ap && json_is_object(ap) && json_object_size(ap)))
        why = "rank_pattern/alpha_pattern are not supported";
    else if (!json_is_array(tm) || json_array_size(tm) == 0) why = "target_modules must be a non-empty list";
    else {
        for (size_t i = 0; i < json_array_size(tm) && !why; i++) {
            json_t *v = json_array_get(tm, i);
            int m = json_is_string(v) ? mod_by_name(json_string_value(v), strlen(json_string_value(v))) : -1;
            if (m < 0) why = "target_modules names an unsupported module";
            else targets |= 1u << m;
        }
    }
    if (why) {
        snprintf(err, errlen, "%s: %s", path, why);
        json_decref(o);
        return NULL;
    }
    a = lora_alloc(c, (int)json_integer_value(r), (float)json_number_value(al),
                   json_is_number(dr) ? (float)json_number_value(dr) : 0.0f, targets, json_is_true(rs));
    if (json_is_string(bm)) a->base_model = xstrdup(json_string_value(bm));
    json_decref(o);
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    st_file *st = st_open(path, err, errlen);
    if (!st) { llm_lora_free(a); return NULL; }
    int expect = 0;
    for (int l = 0; l < a->n_layers; l++)
        for (int m = 0; m < LLM_N_MODS; m++) {
            llm_lora_ab *p = llm_lora_at(a, l, m);
            if (!p->A) continue;
            char nm[256];
            key(nm, sizeof nm, l, m, 'A');
            if (read_tensor(st, path, nm, a->r, p->in, p->A, err, errlen) != 0) goto fail;
            key(nm, sizeof nm, l, m, 'B');
            if (read_tensor(st, path, nm, p->out, a->r, p->B, err, errlen) != 0) goto fail;
            expect += 2;
        }
    for (int i = 0; i < st_count(st); i++) { /* tensors we would silently ignore are an error */
        const char *nm = st_at(st, i)->name;
        int l;
        if (sscanf(nm, "base_model.model.model.layers.%d.", &l) != 1 || l < 0 || l >= a->n_layers || !strstr(nm, ".lora_")) {
            snprintf(err, errlen, "%s: unexpected tensor %s (this model has %d layers)", path, nm, a->n_layers);
            goto fail;
        }
    }
    if (st_count(st) != expect) {
        snprintf(err, errlen, "%s: %d tensors, expected %d for the target modules", path, st_count(st), expect);
        goto fail;
    }
    st_close(st);
    return a;
fail:
    st_close(st);
    llm_lora_free(a);
    return NULL;
}
