/* header.h - the keys every stream header starts with, packed into a counted map.
 *
 * Every ITREK stream's header map begins with schema, version and producer ("<prog> <version>");
 * the records layer builds headers as counted maps (io/pack.h), and this is where they start.
 */
#ifndef ITREK_RECORDS_HEADER_H
#define ITREK_RECORDS_HEADER_H

#include "io/pack.h"

/* Begins the header map H on PK with schema, version and producer ("<prog> <version>"). */
void records_header_begin(pk_map *h, msgpack_packer *pk, const char *schema, int version);

#endif
