/* Durations ("15m"), times (Unix seconds, RFC 3339) and their display. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define MAX_DURATION (100LL * 366 * 86400) /* 100 years */
#define MAX_TIME 253402300799LL              /* 9999-12-31T23:59:59Z */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Decimal digits s[0..n) into *v (no sign).  -1 on overflow past `max`. */
static int digits(const char *s, size_t n, int64_t max, int64_t *v) {
  int64_t r = 0;
  if (n == 0) return -1;
  for (size_t i = 0; i < n; i++) {
    if (!is_digit(s[i])) return -1;
    if (r > (max - (s[i] - '0')) / 10) return -1;
    r = r * 10 + (s[i] - '0');
  }
  *v = r;
  return 0;
}

int cli_parse_duration(const char *s, int64_t *out) {
  size_t n = strlen(s);
  if (n == 0) return -1;
  int64_t unit = 1;
  switch (s[n - 1]) {
    case 's': unit = 1; n--; break;
    case 'm': unit = 60; n--; break;
    case 'h': unit = 3600; n--; break;
    case 'd': unit = 86400; n--; break;
    default: break;
  }
  int64_t v;
  if (digits(s, n, MAX_DURATION, &v) != 0 || v > MAX_DURATION / unit) return -1;
  *out = v * unit;
  return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
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

/* Fixed-width field: exactly n digits at s. */
static int field(const char *s, size_t n, int64_t *v) { return digits(s, n, 9999, v); }

int cli_parse_time(const char *s, int64_t *out) {
  size_t n = strlen(s);
  int64_t v;
  if (n > 0 && strspn(s, "0123456789") == n) {
    if (digits(s, n, MAX_TIME, &v) != 0) return -1;
    *out = v;
    return 0;
  }
  /* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm) */
  int64_t Y, M, D, h, mi, sec;
  if (n < 20 || field(s, 4, &Y) || s[4] != '-' || field(s + 5, 2, &M) || s[7] != '-' || field(s + 8, 2, &D) ||
      (s[10] != 'T' && s[10] != 't') || field(s + 11, 2, &h) || s[13] != ':' || field(s + 14, 2, &mi) ||
      s[16] != ':' || field(s + 17, 2, &sec))
    return -1;
  if (M < 1 || M > 12 || D < 1 || D > days_in_month(Y, M) || h > 23 || mi > 59 || sec > 60) return -1;
  size_t i = 19;
  if (s[i] == '.') {
    i++;
    size_t f = i;
    while (i < n && is_digit(s[i])) i++;
    if (i == f) return -1; /* fraction ignored: whole seconds */
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
  int64_t t = days_from_civil(Y, M, D) * 86400 + h * 3600 + mi * 60 + sec - off;
  if (t < 0 || t > MAX_TIME) return -1;
  *out = t;
  return 0;
}

void cli_format_time(int64_t t, char *buf, size_t cap) {
  int64_t days = t / 86400, rem = t % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  int64_t y;
  int m, d;
  civil_from_days(days, &y, &m, &d);
  snprintf(buf, cap, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d, (int)(rem / 3600),
           (int)(rem / 60 % 60), (int)(rem % 60));
}

void cli_format_relative(int64_t t, int64_t now, char *buf, size_t cap) {
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
