/* header.h - the keys every stream header starts with, packed into a counted map.
 *
 * sw_header_common packs schema, version and producer straight into the writer; the records
 * layer builds its headers as counted maps (io/pack.h), so it needs the same three keys there.
 */
#ifndef ITREK_RECORDS_HEADER_H
#define ITREK_RECORDS_HEADER_H

#include "io/pack.h"

/* Begins the header map H on PK with schema, version and producer ("<prog> <version>"). */
void records_header_begin(pk_map *h, msgpack_packer *pk, const char *schema, int version);

#endif
