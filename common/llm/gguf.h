/* gguf.h - read GGUF (version 2 and 3) files: metadata and tensors of types F32, F16, BF16 and
 * the GGML block-quantised Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (what
 * llama.cpp's Q4_K_M, Q5_K_M, Q6_K, Q8_0 ... files hold); llm_tensor_to_f32 dequantises them.
 *
 * The file is memory-mapped; tensors are handed out as llm_tensor views with their shape
 * reversed to row-major order (GGUF lists ne0, the innermost dimension, first). Every
 * offset and count is checked against the file size, so a truncated file gives a reason; a
 * tensor of another type (the IQ* types, Q8_1, I8 ...) gives one line naming the tensor and the
 * GGUF type code and name, and a block-quantised tensor whose innermost dimension is not a
 * multiple of its block (32 or 256 values) is refused with its name.
 * Note on LLaMA q/k layout: llama.cpp's GGUF keeps Meta's interleaved RoPE rows (its
 * converters undo Hugging Face's permutation); model_load.c permutes them back to HF order.
 */
#ifndef ITREK_LLM_GGUF_H
#define ITREK_LLM_GGUF_H

#include "llm/tensor.h"

typedef struct gguf_file gguf_file;

gguf_file *gguf_open(const char *path, char *err, size_t errlen);
void gguf_close(gguf_file *g);

int gguf_count(const gguf_file *g);
const llm_tensor *gguf_find(const gguf_file *g, const char *name);

/* Metadata look-ups; return 1 when the key exists with a usable type, else 0. */
int gguf_get_int(const gguf_file *g, const char *key, int64_t *out);   /* any integer or bool */
int gguf_get_float(const gguf_file *g, const char *key, double *out); /* float or integer */
const char *gguf_get_str(const gguf_file *g, const char *key);        /* NULL if absent */
/* Length of an array value, or -1. */
long gguf_get_arr_len(const gguf_file *g, const char *key);
/* GGUF element type code of an array value (8: string, 0-7 and 10-12: numbers), or -1. */
int gguf_get_arr_type(const gguf_file *g, const char *key);
/* The first n strings of a string array as views into the file (not NUL-terminated): s[i],
 * len[i]. Returns how many were written, or -1 when key is not a string array. */
long gguf_get_arr_strs(const gguf_file *g, const char *key, const char **s, size_t *len, long n);
/* The first n elements of a numeric array, converted to double. How many, or -1. */
long gguf_get_arr_f64(const gguf_file *g, const char *key, double *out, long n);

#endif
