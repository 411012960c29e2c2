/* convert.h - llama2.c checkpoint + tokenizer to a Hugging Face model directory. */
#ifndef ITREK_LLM_CONVERT_H
#define ITREK_LLM_CONVERT_H

#include <stddef.h>

/* Write OUTDIR/config.json, OUTDIR/model.safetensors (F32, Hugging Face names, q/k rows in
 * rotate-half order) and OUTDIR/tokenizer.model. OUTDIR is created when missing.
 * 0, or -1 with a reason. */
int llm_convert_llama2c(const char *model_bin, const char *tok_bin, const char *outdir, char *err, size_t errlen);

#endif
