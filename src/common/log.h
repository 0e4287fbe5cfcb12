/* JSON-lines logs for the services: one object per line on stderr (or the
 * fd set), built in a fixed-size line on the stack and written with one
 * write(2), so lines from different threads never interleave and logging
 * never allocates.  Every line starts
 *   {"ts":"2026-12-03T09:00:00.000Z","level":"info","event":"NAME"
 * Values are escaped; bytes that are not UTF-8 become U+FFFD.  A line that
 * would pass the size limit is cut at a field boundary and marked
 * "truncated":true.  Tokens, secrets and keys are never logged: callers log
 * a token's hash prefix at most. */
#ifndef JK_LOG_H
#define JK_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/attr.h"

typedef enum jk_log_level { JK_LOG_DEBUG = 0, JK_LOG_INFO, JK_LOG_WARN, JK_LOG_ERROR } jk_log_level;

#define JK_LOG_LINE 4096

typedef struct jk_logline {
  char buf[JK_LOG_LINE];
  size_t len;
  int truncated;
} jk_logline;

void jk_log_set_level(jk_log_level l);
jk_log_level jk_log_get_level(void);
int jk_log_enabled(jk_log_level l);
void jk_log_set_fd(int fd);
/* debug, info, warn (or warning), error.  0 or -1. */
int jk_log_parse_level(const char *s, jk_log_level *out);
const char *jk_log_level_name(jk_log_level l);

/* Start a line; 0 when the level is disabled (then skip the rest). */
int jk_log_begin(jk_logline *L, jk_log_level l, const char *event);
void jk_log_strn(jk_logline *L, const char *key, const char *val, size_t n);
void jk_log_str(jk_logline *L, const char *key, const char *val); /* NULL: left out */
void jk_log_int(jk_logline *L, const char *key, int64_t v);
void jk_log_uint(jk_logline *L, const char *key, uint64_t v);
void jk_log_bool(jk_logline *L, const char *key, int v);
void jk_log_end(jk_logline *L);

/* One line with a "msg" field. */
void jk_log(jk_log_level l, const char *event, const char *fmt, ...) JK_PRINTF(3, 4);

#endif
