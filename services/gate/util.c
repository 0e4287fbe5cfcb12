/* Time, durations, RFC 3339, bounded file reads, SHA-256. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gate_internal.h"

int64_t gate_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec;
}

int64_t gate_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int gate_parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
  if (s == NULL || *s == '\0') return -1;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    if (v > (UINT64_MAX - 9) / 10) return -1;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  if (v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int gate_parse_bool(const char *s, int *out) {
  if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0 || strcmp(s, "1") == 0) {
    *out = 1;
    return 0;
  }
  if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0 || strcmp(s, "0") == 0) {
    *out = 0;
    return 0;
  }
  return -1;
}

int gate_parse_duration(const char *s, int64_t *out) {
  if (s == NULL || *s < '0' || *s > '9') return -1;
  int64_t v = 0;
  const char *p = s;
  while (*p >= '0' && *p <= '9') {
    if (v > 400000000) return -1;
    v = v * 10 + (*p++ - '0');
  }
  int64_t mul = 1;
  if (*p == 's') mul = 1, p++;
  else if (*p == 'm') mul = 60, p++;
  else if (*p == 'h') mul = 3600, p++;
  else if (*p == 'd') mul = 86400, p++;
  if (*p != '\0') return -1;
  if (v > (int64_t)10 * 366 * 86400 / mul) return -1;
  *out = v * mul;
  return 0;
}

/* days since 1970-01-01 of a civil date (H. Hinnant's algorithm) */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *p, int n, int *v) {
  int r = 0;
  for (int i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return -1;
    r = r * 10 + (p[i] - '0');
  }
  *v = r;
  return 0;
}

int gate_parse_rfc3339(const char *s, int64_t *out) {
  int Y, M, D, h, m, sec;
  if (strlen(s) < 20) return -1;
  if (digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' || digits(s + 8, 2, &D) ||
      (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &m) ||
      s[16] != ':' || digits(s + 17, 2, &sec))
    return -1;
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || m > 59 || sec > 60) return -1;
  int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
  if (M == 2 && D == 29 && !leap) return -1;
  const char *p = s + 19;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9') p++;
  }
  int64_t off = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int oh, om;
    if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59) return -1;
    off = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
    p += 6;
  } else {
    return -1;
  }
  if (*p != '\0') return -1;
  if (sec == 60) sec = 59; /* leap second: the instant before */
  *out = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + m * 60 + sec - off;
  return 0;
}

void gate_fmt_rfc3339(int64_t t, char *buf, size_t cap) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec);
}

void gate_wipe(void *p, size_t n) {
  if (p != NULL && n > 0) OPENSSL_cleanse(p, n);
}

void gate_free_secret(char *p, size_t len) {
  if (p == NULL) return;
  gate_wipe(p, len + 1);
  free(p);
}

int gate_read_file(const char *path, size_t cap, int secret, char **buf, size_t *len, char *err, size_t errcap) {
  *buf = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    snprintf(err, errcap, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errcap, "%s is not a regular file", path);
    close(fd);
    return -1;
  }
  if (secret && (st.st_mode & 077) != 0) {
    snprintf(err, errcap, "%s is readable by group or others (mode %03o); chmod 600 it", path,
             (unsigned)(st.st_mode & 0777));
    close(fd);
    return -1;
  }
  if ((uint64_t)st.st_size > cap) {
    snprintf(err, errcap, "%s is over %zu bytes", path, cap);
    close(fd);
    return -1;
  }
  size_t want = (size_t)st.st_size;
  char *p = malloc(want + 2);
  if (p == NULL) {
    snprintf(err, errcap, "out of memory reading %s", path);
    close(fd);
    return -1;
  }
  size_t got = 0;
  for (;;) {
    if (got > want) break; /* grew while reading: refuse below */
    ssize_t r = read(fd, p + got, want + 1 - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      snprintf(err, errcap, "cannot read %s: %s", path, strerror(errno));
      close(fd);
      if (secret) gate_wipe(p, want + 2);
      free(p);
      return -1;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (got > want) {
    snprintf(err, errcap, "%s changed while being read", path);
    if (secret) gate_wipe(p, want + 2);
    free(p);
    return -1;
  }
  p[got] = '\0';
  *buf = p;
  *len = got;
  return 0;
}

int gate_sha256(const void *a, size_t alen, unsigned char out[32]) {
  unsigned int n = 32;
  if (EVP_Digest(a, alen, out, &n, EVP_sha256(), NULL) != 1 || n != 32) return -1;
  return 0;
}

char *gate_strndup(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p == NULL) return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}
