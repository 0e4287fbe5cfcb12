/* The Prometheus text exposition format (version 0.0.4), written into a
 * jk_buf: one family header, then samples whose label values are escaped
 * (\\, " and newline) so no input can break the page. */
#ifndef JK_PROM_H
#define JK_PROM_H

#include <stdint.h>

#include "common/buf.h"

/* # HELP name help / # TYPE name type ("counter", "gauge"). */
void jk_prom_family(jk_buf *b, const char *name, const char *type, const char *help);
/* name{k1="v1",k2="v2"} value.  labels: NULL, or key/value pairs ending
 * with a NULL key; a pair whose value is NULL is left out. */
void jk_prom_u64(jk_buf *b, const char *name, const char *const *labels, uint64_t v);
void jk_prom_i64(jk_buf *b, const char *name, const char *const *labels, int64_t v);
void jk_prom_f64(jk_buf *b, const char *name, const char *const *labels, double v);

#endif
