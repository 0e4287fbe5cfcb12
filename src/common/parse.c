/* One parser per kind of value (parse.h). */
#include "common/parse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* n decimal digits at s into *v, at most max.  0 or -1. */
static int digits_n(const char *s, size_t n, uint64_t max, uint64_t *v) {
  uint64_t r = 0;
  if (n == 0) return -1;
  for (size_t i = 0; i < n; i++) {
    if (!is_digit(s[i])) return -1;
    unsigned d = (unsigned)(s[i] - '0');
    if (r > (max - d) / 10) return -1;
    r = r * 10 + d;
  }
  *v = r;
  return 0;
}

int jk_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
  uint64_t v;
  if (s == NULL || digits_n(s, strlen(s), UINT64_MAX, &v) != 0 || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int jk_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
  if (s == NULL) return -1;
  int neg = s[0] == '-';
  uint64_t v;
  if (digits_n(s + neg, strlen(s + neg), neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v) != 0) return -1;
  int64_t r = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
  if (r < lo || r > hi) return -1;
  *out = r;
  return 0;
}

int jk_parse_duration(const char *s, int64_t *out) {
  if (s == NULL) return -1;
  size_t n = strlen(s);
  if (n == 0) return -1;
  uint64_t unit = 1;
  switch (s[n - 1]) {
    case 's': unit = 1; n--; break;
    case 'm': unit = 60; n--; break;
    case 'h': unit = 3600; n--; break;
    case 'd': unit = 86400; n--; break;
    case 'w': unit = 7 * 86400; n--; break;
    default: break;
  }
  uint64_t v;
  if (digits_n(s, n, (uint64_t)JK_MAX_DURATION, &v) != 0 || v > (uint64_t)JK_MAX_DURATION / unit) return -1;
  *out = (int64_t)(v * unit);
  return 0;
}

int jk_errf(char *err, size_t cap, const char *fmt, ...) {
  if (err != NULL && cap > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
  }
  return -1;
}

int jk_parse_bool(const char *s, int *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
  if (s == NULL) return -1;
  for (size_t i = 0; i < 4; i++) {
    if (strcmp(s, yes[i]) == 0) {
      *out = 1;
      return 0;
    }
    if (strcmp(s, no[i]) == 0) {
      *out = 0;
      return 0;
    }
  }
  return -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * algorithm, public domain description). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int64_t m) {
  static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : dm[m - 1];
}

static int field(const char *s, size_t n, int64_t *v) {
  uint64_t u;
  if (digits_n(s, n, 9999, &u) != 0) return -1;
  *v = (int64_t)u;
  return 0;
}

int jk_parse_rfc3339(const char *s, int64_t *out) {
  if (s == NULL) return -1;
  size_t n = strlen(s);
  int64_t Y, M, D, h, mi, sec;
  if (n < 20 || field(s, 4, &Y) || s[4] != '-' || field(s + 5, 2, &M) || s[7] != '-' || field(s + 8, 2, &D) ||
      (s[10] != 'T' && s[10] != 't') || field(s + 11, 2, &h) || s[13] != ':' || field(s + 14, 2, &mi) ||
      s[16] != ':' || field(s + 17, 2, &sec))
    return -1;
  if (M < 1 || M > 12 || D < 1 || D > days_in_month(Y, M) || h > 23 || mi > 59 || sec > 60) return -1;
  size_t i = 19;
  if (s[i] == '.') {
    size_t f = ++i;
    while (i < n && is_digit(s[i])) i++;
    if (i == f) return -1;
  }
  int64_t off = 0;
  if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
    off = 0;
  } else if ((s[i] == '+' || s[i] == '-') && i + 6 == n) {
    int64_t oh, om;
    if (field(s + i + 1, 2, &oh) || s[i + 3] != ':' || field(s + i + 4, 2, &om) || oh > 23 || om > 59) return -1;
    off = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
  } else {
    return -1;
  }
  if (sec == 60) sec = 59; /* a leap second: the instant before */
  int64_t t = days_from_civil(Y, M, D) * 86400 + h * 3600 + mi * 60 + sec - off;
  if (t < 0 || t > JK_MAX_TIME) return -1;
  *out = t;
  return 0;
}

int jk_parse_time(const char *s, int64_t *out) {
  if (s == NULL) return -1;
  size_t n = strlen(s);
  if (n > 0 && strspn(s, "0123456789") == n) {
    uint64_t v;
    if (digits_n(s, n, (uint64_t)JK_MAX_TIME, &v) != 0) return -1;
    *out = (int64_t)v;
    return 0;
  }
  return jk_parse_rfc3339(s, out);
}

static void split_time(int64_t t, int64_t *days, int64_t *rem) {
  *days = t / 86400;
  *rem = t % 86400;
  if (*rem < 0) {
    *rem += 86400;
    (*days)--;
  }
}

void jk_format_rfc3339(int64_t t, char *buf, size_t cap) {
  int64_t days, rem, y;
  int m, d;
  split_time(t, &days, &rem);
  civil_from_days(days, &y, &m, &d);
  snprintf(buf, cap, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d, (int)(rem / 3600), (int)(rem / 60 % 60),
           (int)(rem % 60));
}

void jk_format_rfc3339_ms(int64_t t, int ms, char *buf, size_t cap) {
  int64_t days, rem, y;
  int m, d;
  split_time(t, &days, &rem);
  civil_from_days(days, &y, &m, &d);
  snprintf(buf, cap, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d, (int)(rem / 3600),
           (int)(rem / 60 % 60), (int)(rem % 60), ms < 0 ? 0 : ms > 999 ? 999 : ms);
}

void jk_format_relative(int64_t t, int64_t now, char *buf, size_t cap) {
  int64_t d = t - now;
  int future = d > 0;
  uint64_t a = future ? (uint64_t)d : (uint64_t)0 - (uint64_t)d;
  if (a == 0) {
    snprintf(buf, cap, "now");
    return;
  }
  char amount[48];
  if (a < 60)
    snprintf(amount, sizeof amount, "%llus", (unsigned long long)a);
  else if (a < 3600)
    snprintf(amount, sizeof amount, "%llum", (unsigned long long)(a / 60));
  else if (a < 86400)
    snprintf(amount, sizeof amount, "%lluh", (unsigned long long)(a / 3600));
  else
    snprintf(amount, sizeof amount, "%llud", (unsigned long long)(a / 86400));
  snprintf(buf, cap, future ? "in %s" : "%s ago", amount);
}

int jk_parse_listen(const char *s, int allow_port0, jk_listen *out, const char **why) {
  const char *dummy;
  if (why == NULL) why = &dummy;
  *why = NULL;
  memset(out, 0, sizeof *out);
  if (s == NULL || *s == '\0') {
    *why = "the address is empty";
    return -1;
  }
  char host[48];
  const char *port;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (close == NULL || close[1] != ':' || (size_t)(close - s - 1) >= sizeof host) {
      *why = "an IPv6 address is written [ADDRESS]:PORT";
      return -1;
    }
    memcpy(host, s + 1, (size_t)(close - s - 1));
    host[close - s - 1] = '\0';
    port = close + 2;
  } else {
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof host) {
      *why = "expected ADDRESS:PORT";
      return -1;
    }
    if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
      *why = "an IPv6 address is written [ADDRESS]:PORT";
      return -1;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    port = colon + 1;
  }
  uint64_t p;
  if (jk_parse_u64(port, allow_port0 ? 0 : 1, 65535, &p) != 0) {
    *why = allow_port0 ? "the port must be 0..65535 (0: any free port)" : "the port must be 1..65535";
    return -1;
  }
  out->port = (unsigned)p;
  if (s[0] != '[' && strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
  struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
  if (s[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)p);
    out->family = AF_INET;
    out->len = sizeof *v4;
    snprintf(out->text, sizeof out->text, "%s:%u", host, out->port);
    return 0;
  }
  if (s[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)p);
    out->family = AF_INET6;
    out->len = sizeof *v6;
    snprintf(out->text, sizeof out->text, "[%s]:%u", host, out->port);
    return 0;
  }
  *why = "the address must be a numeric IPv4 address, a bracketed IPv6 address or localhost (no host names)";
  return -1;
}
