/* config.c - config.json through jansson. */
#include "llm/config.h"

#include "io/atomic.h"
#include "io/jsonview.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int llm_config_check(const llm_config *c, char *err, size_t errlen) {
    const char *why = NULL;
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->vocab_size <= 0 ||
        c->n_kv_heads <= 0 || c->head_dim <= 0 || c->max_seq_len <= 0)
        why = "sizes must be positive";
    else if (c->n_heads % c->n_kv_heads) why = "num_attention_heads is not a multiple of num_key_value_heads";
    else if (c->head_dim % 2) why = "head dimension must be even for rotary embeddings";
    else if (!(c->norm_eps > 0) || !(c->rope_theta > 0)) why = "rms_norm_eps and rope_theta must be positive";
    else if (c->bos_id >= c->vocab_size || c->eos_id >= c->vocab_size) why = "bos/eos id outside the vocabulary";
    if (why) { snprintf(err, errlen, "bad model configuration: %s", why); return -1; }
    return 0;
}

static int get_int(json_t *o, const char *k, int *out, int required, const char *path, char *err, size_t errlen) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) {
        if (required) { snprintf(err, errlen, "%s: missing \"%s\"", path, k); return -1; }
        return 0;
    }
    if (json_is_array(v) && json_array_size(v) > 0) v = json_array_get(v, 0); /* eos_token_id may be a list */
    if (!json_is_integer(v) || json_integer_value(v) < -1 || json_integer_value(v) > 1000000000) {
        snprintf(err, errlen, "%s: \"%s\" is not a valid integer", path, k);
        return -1;
    }
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_num(json_t *o, const char *k, float *out, const char *path, char *err, size_t errlen) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) { snprintf(err, errlen, "%s: \"%s\" is not a number", path, k); return -1; }
    *out = (float)json_number_value(v);
    return 0;
}

int llm_config_load(const char *path, llm_config *c, char *err, size_t errlen) {
    char buf[4096];
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(buf, sizeof buf, "%s/config.json", path);
    else snprintf(buf, sizeof buf, "%s", path);
    json_error_t je;
    json_t *o = json_load_file(buf, 0, &je);
    if (!o) {
        if (access(buf, R_OK) != 0) snprintf(err, errlen, "%s: %s", buf, strerror(errno));
        else snprintf(err, errlen, "%s:%d: bad JSON: %s", buf, je.line, je.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(o)) { snprintf(err, errlen, "%s: not a JSON object", buf); goto out; }
    json_t *mt = json_object_get(o, "model_type"), *act = json_object_get(o, "hidden_act"),
           *rs = json_object_get(o, "rope_scaling"), *tie = json_object_get(o, "tie_word_embeddings");
    if (mt && (!json_is_string(mt) || (strcmp(json_string_value(mt), "llama") && strcmp(json_string_value(mt), "mistral")))) {
        snprintf(err, errlen, "%s: model_type %s is not supported (llama only)", buf, json_is_string(mt) ? json_string_value(mt) : "?");
        goto out;
    }
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu"))) {
        snprintf(err, errlen, "%s: hidden_act must be \"silu\"", buf);
        goto out;
    }
    if (rs && !json_is_null(rs)) { snprintf(err, errlen, "%s: rope_scaling is not supported", buf); goto out; }
    memset(c, 0, sizeof *c);
    c->n_kv_heads = -1;
    c->head_dim = -1;
    c->max_seq_len = 2048;
    c->norm_eps = 1e-6f;
    c->rope_theta = 10000.0f;
    c->tie_embeddings = 0;
    c->bos_id = c->eos_id = -1;
    if (get_int(o, "hidden_size", &c->dim, 1, buf, err, errlen) || get_int(o, "intermediate_size", &c->hidden_dim, 1, buf, err, errlen) ||
        get_int(o, "num_hidden_layers", &c->n_layers, 1, buf, err, errlen) ||
        get_int(o, "num_attention_heads", &c->n_heads, 1, buf, err, errlen) ||
        get_int(o, "num_key_value_heads", &c->n_kv_heads, 0, buf, err, errlen) ||
        get_int(o, "head_dim", &c->head_dim, 0, buf, err, errlen) || get_int(o, "vocab_size", &c->vocab_size, 1, buf, err, errlen) ||
        get_int(o, "max_position_embeddings", &c->max_seq_len, 0, buf, err, errlen) ||
        get_int(o, "bos_token_id", &c->bos_id, 0, buf, err, errlen) || get_int(o, "eos_token_id", &c->eos_id, 0, buf, err, errlen) ||
        get_num(o, "rms_norm_eps", &c->norm_eps, buf, err, errlen) || get_num(o, "rope_theta", &c->rope_theta, buf, err, errlen))
        goto out;
    if (tie && !json_is_boolean(tie)) { snprintf(err, errlen, "%s: tie_word_embeddings is not a boolean", buf); goto out; }
    c->tie_embeddings = tie ? json_is_true(tie) : 0;
    if (c->n_kv_heads < 0) c->n_kv_heads = c->n_heads;
    if (c->head_dim < 0 && c->n_heads > 0) c->head_dim = c->dim / c->n_heads;
    if (llm_config_check(c, err, errlen) != 0) {
        char tmp[4400];
        snprintf(tmp, sizeof tmp, "%s: %s", buf, err);
        snprintf(err, errlen, "%s", tmp);
        goto out;
    }
    rc = 0;
out:
    json_decref(o);
    return rc;
}


int llm_config_save(const char *path, const llm_config *c, char *err, size_t errlen) {
    json_t *o = json_object();
    json_object_set_new(o, "architectures", json_pack("[s]", "LlamaForCausalLM"));
    json_object_set_new(o, "model_type", json_string("llama"));
    json_object_set_new(o, "hidden_act", json_string("silu"));
    json_object_set_new(o, "hidden_size", json_integer(c->dim));
    json_object_set_new(o, "intermediate_size", json_integer(c->hidden_dim));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->n_layers));
    json_object_set_new(o, "num_attention_heads", json_integer(c->n_heads));
    json_object_set_new(o, "num_key_value_heads", json_integer(c->n_kv_heads));
    if (c->head_dim != c->dim / c->n_heads) json_object_set_new(o, "head_dim", json_integer(c->head_dim));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_seq_len));
    json_object_set_new(o, "rms_norm_eps", json_f32_real(c->norm_eps));
    json_object_set_new(o, "rope_theta", json_f32_real(c->rope_theta));
    json_object_set_new(o, "rope_scaling", json_null());
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_embeddings));
    if (c->bos_id >= 0) json_object_set_new(o, "bos_token_id", json_integer(c->bos_id));
    if (c->eos_id >= 0) json_object_set_new(o, "eos_token_id", json_integer(c->eos_id));
    json_object_set_new(o, "torch_dtype", json_string("float32"));
    json_object_set_new(o, "attention_bias", json_false());
    json_object_set_new(o, "mlp_bias", json_false());
    int rc = json_dump_atomic(o, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (rc != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
