/* header.c - the common header keys (see header.h). */
#include "records/header.h"

#include "io/err.h"

#include <stdio.h>

void records_header_begin(pk_map *h, msgpack_packer *pk, const char *schema, int version) {
    char producer[128];
    snprintf(producer, sizeof producer, "%s %s", err_prog(), ITREK_VERSION);
    pkm_begin(h, pk);
    pkm_str(h, "schema", schema);
    pkm_int(h, "version", version);
    pkm_str(h, "producer", producer);
}
