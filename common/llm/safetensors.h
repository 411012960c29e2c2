/* safetensors.h - read and write Hugging Face safetensors files.
 *
 * Format: an 8-byte little-endian header length N, N bytes of JSON
 * {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [BEGIN, END]}, "__metadata__": {..}},
 * then the tensor bytes (offsets relative to the end of the header).
 *
 * Reading maps the files (mmap) and checks every entry against the file size before a
 * tensor is handed out; a truncated or garbled file gives a one-line reason, never a crash.
 * st_open accepts a .safetensors file or a directory holding model.safetensors or shards
 * listed by model.safetensors.index.json ({"weight_map": {"NAME": "FILE", ...}}).
 */
#ifndef ITREK_LLM_SAFETENSORS_H
#define ITREK_LLM_SAFETENSORS_H

#include "llm/tensor.h"

typedef struct st_file st_file;

st_file *st_open(const char *path, char *err, size_t errlen);
void st_close(st_file *f);
int st_count(const st_file *f);
const llm_tensor *st_at(const st_file *f, int i);
const llm_tensor *st_find(const st_file *f, const char *name);
/* Value of a string entry of "__metadata__" (first file that has it), or NULL. */
const char *st_metadata(const st_file *f, const char *key);

/* Write n tensors (any dtype; data/nbytes as given, nbytes must match dtype x shape) and
 * optional metadata given as n_meta key/value string pairs meta[2i], meta[2i+1].
 * Written to PATH.tmp and renamed, so a failure never leaves a partial file. 0 or -1. */
int st_write(const char *path, const llm_tensor *tensors, int n, const char *const *meta, int n_meta,
             char *err, size_t errlen);

#endif
