/* The values people type into jwtkit's configuration files and options,
 * parsed by one set of rules for the command, jwtkit serve and jwtkit gate:
 * numbers, durations, booleans, times and listen addresses. */
#ifndef JK_PARSE_H
#define JK_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/attr.h"

/* Longest duration accepted anywhere: ten years. */
#define JK_MAX_DURATION (10LL * 366 * 86400)
/* Latest time accepted: 9999-12-31T23:59:59Z. */
#define JK_MAX_TIME 253402300799LL

/* What the grammars are, for error messages. */
#define JK_DURATION_HELP "a number of seconds, or a number followed by s, m, h, d or w (90s, 15m, 1h, 7d, 2w)"
#define JK_BOOL_HELP "true, false, yes, no, on, off, 1 or 0"
#define JK_TIME_HELP "Unix seconds or an RFC 3339 time (2026-12-31T00:00:00Z)"
#define JK_LISTEN_HELP "ADDRESS:PORT with a numeric IPv4 address, [IPv6]:PORT, or localhost:PORT"

/* Write a refusal into err (cap bytes, always terminated) and return -1:
 * `return jk_errf(err, cap, "...", ...);` in the checkers of values. */
int jk_errf(char *err, size_t cap, const char *fmt, ...) JK_PRINTF(3, 4);

/* Decimal digits only (no sign, no spaces), lo <= value <= hi.  0 or -1. */
int jk_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
/* An optional '-' then digits, lo <= value <= hi.  0 or -1. */
int jk_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
/* Duration in seconds: digits with an optional unit s, m, h, d or w;
 * 0 .. JK_MAX_DURATION.  0 or -1. */
int jk_parse_duration(const char *s, int64_t *out);
/* true/yes/on/1 or false/no/off/0.  0 or -1. */
int jk_parse_bool(const char *s, int *out);
/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm), the
 * fraction dropped, a leap second read as :59; 0 .. JK_MAX_TIME.  0 or -1. */
int jk_parse_rfc3339(const char *s, int64_t *out);
/* Unix seconds (digits) or RFC 3339.  0 or -1. */
int jk_parse_time(const char *s, int64_t *out);
/* "2026-12-31T00:00:00Z" (buf of at least 21 bytes; longer years fit in 32). */
void jk_format_rfc3339(int64_t t, char *buf, size_t cap);
/* "2026-12-31T00:00:00.123Z" from seconds and milliseconds. */
void jk_format_rfc3339_ms(int64_t t, int ms, char *buf, size_t cap);
/* "in 14m", "7s ago", "now": the largest unit, rounded down. */
void jk_format_relative(int64_t t, int64_t now, char *buf, size_t cap);

/* A listen address.  `text` is the canonical form (127.0.0.1:8080,
 * [::1]:8443); `localhost` means 127.0.0.1. */
typedef struct jk_listen {
  struct sockaddr_storage ss;
  socklen_t len;
  int family;
  unsigned port;
  char text[96];
} jk_listen;
/* Port 1..65535, or 0 too when allow_port0 ("pick a free port").  On
 * failure *why (may be NULL) says what is wrong.  0 or -1. */
int jk_parse_listen(const char *s, int allow_port0, jk_listen *out, const char **why);

#endif
