/* Prometheus text (prom.h). */
#include "common/prom.h"

#include <string.h>

void jk_prom_family(jk_buf *b, const char *name, const char *type, const char *help) {
  jk_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void labels_out(jk_buf *b, const char *const *labels) {
  if (labels == NULL || labels[0] == NULL) return;
  int first = 1;
  for (size_t i = 0; labels[i] != NULL; i += 2) {
    const char *v = labels[i + 1];
    if (v == NULL) continue;
    jk_buf_putc(b, first ? '{' : ',');
    first = 0;
    jk_buf_puts(b, labels[i]);
    jk_buf_puts(b, "=\"");
    for (const char *p = v; *p; p++) {
      if (*p == '\\' || *p == '"') {
        jk_buf_putc(b, '\\');
        jk_buf_putc(b, *p);
      } else if (*p == '\n') {
        jk_buf_puts(b, "\\n");
      } else {
        jk_buf_putc(b, *p);
      }
    }
    jk_buf_putc(b, '"');
  }
  if (!first) jk_buf_putc(b, '}');
}

void jk_prom_u64(jk_buf *b, const char *name, const char *const *labels, uint64_t v) {
  jk_buf_puts(b, name);
  labels_out(b, labels);
  jk_buf_printf(b, " %llu\n", (unsigned long long)v);
}

void jk_prom_i64(jk_buf *b, const char *name, const char *const *labels, int64_t v) {
  jk_buf_puts(b, name);
  labels_out(b, labels);
  jk_buf_printf(b, " %lld\n", (long long)v);
}

void jk_prom_f64(jk_buf *b, const char *name, const char *const *labels, double v) {
  jk_buf_puts(b, name);
  labels_out(b, labels);
  jk_buf_printf(b, " %.9g\n", v);
}
