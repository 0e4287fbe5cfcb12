/* The dynamic buffer and the JSON writer (buf.c). */
#ifndef JK_BUF_H
#define JK_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/attr.h"

typedef struct jk_buf {
  char *p;
  size_t len;
  size_t cap;
  size_t max; /* 0: no cap */
  int oom;    /* sticky: an append failed (memory or the cap) */
} jk_buf;

void jk_buf_init(jk_buf *b);
void jk_buf_init_max(jk_buf *b, size_t max); /* at most max bytes of content */
void jk_buf_free(jk_buf *b);                  /* frees (no wipe) */
void jk_buf_free_wipe(jk_buf *b);             /* wipes then frees */
int jk_buf_reserve(jk_buf *b, size_t extra);
void jk_buf_put(jk_buf *b, const void *s, size_t n);
void jk_buf_puts(jk_buf *b, const char *s);
void jk_buf_putc(jk_buf *b, char c);
void jk_buf_printf(jk_buf *b, const char *fmt, ...) JK_PRINTF(2, 3);
void jk_buf_int(jk_buf *b, int64_t v);
/* JSON string literal with quotes, strict: 0 on success; -1 when s is not
 * valid UTF-8 or holds a NUL; -2 when memory ran out.  Both poison the
 * buffer (a document that cannot be written correctly is not written). */
int jk_buf_json_str(jk_buf *b, const char *s, size_t n);
/* JSON string literal for logs and diagnostics: never fails on content;
 * bytes that are not valid UTF-8 become U+FFFD, control characters and DEL
 * are escaped. */
void jk_buf_json_str_lossy(jk_buf *b, const char *s, size_t n);
/* Take the NUL-terminated result (NULL when an append failed; the buffer
 * is then wiped and freed). */
char *jk_buf_take(jk_buf *b, size_t *len);

#endif
