/* convert.c - llama2.c -> Hugging Face directory. */
#include "llm/convert.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "llm/model.h"
#include "llm/tokenizer.h"

int llm_convert_llama2c(const char *model_bin, const char *tok_bin, const char *outdir, char *err, size_t errlen) {
    llm_load_opts o = {.threads = 1};
    llm_model *m = llm_load_llama2c(model_bin, &o, err, errlen);
    if (!m) return -1;
    int rc = -1;
    llm_tokenizer *t = tok_load_llama2c(tok_bin, m->cfg.vocab_size, err, errlen);
    if (!t) goto out;
    if (tok_vocab_size(t) != m->cfg.vocab_size) {
        snprintf(err, errlen, "%s: %d tokens, the model has %d", tok_bin, tok_vocab_size(t), m->cfg.vocab_size);
        goto out;
    }
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", outdir, strerror(errno));
        goto out;
    }
    if (tok_bos(t) >= 0) m->cfg.bos_id = tok_bos(t);
    if (tok_eos(t) >= 0) m->cfg.eos_id = tok_eos(t);
    if (llm_save_hf(m, outdir, err, errlen) != 0) goto out;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.model", outdir);
    if (tok_save_model(t, path, err, errlen) != 0) goto out;
    rc = 0;
out:
    if (t) tok_free(t);
    llm_free(m);
    return rc;
}
