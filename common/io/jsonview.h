/* jsonview.h - the JSON-lines view of a stream, for people (mp2json, json2mp).
 * Conversion goes through jansson. msgpack bin values (e.g. float32 vectors) appear as
 * {"$bin": "<base64>"} and convert back to bin. */
#ifndef ITREK_IO_JSONVIEW_H
#define ITREK_IO_JSONVIEW_H

#include <jansson.h>
#include <msgpack.h>

json_t *json_from_msgpack(const msgpack_object *o);
/* Packs a JSON value; returns 0, or -1 with a reason in err for values msgpack cannot hold. */
int json_to_msgpack(msgpack_packer *pk, const json_t *j, char *err, size_t errlen);

/* The shortest decimal that reads back as the same float (1e-05, not 9.99999975e-06), as a JSON
 * real; json_f32_number gives an integer when F is one (PEFT's adapter_config.json style). */
json_t *json_f32_real(float f);
json_t *json_f32_number(float f);

#endif
