/* Small helpers: durations, base64, UTF-8, files. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "serve.h"

void sv_fmt(char *out, size_t cap, const char *fmt, ...) {
  if (cap == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out, cap, fmt, ap);
  va_end(ap);
}

int sv_parse_int(const char *s, long long lo, long long hi, long long *out) {
  if (s == NULL || *s == '\0') return -1;
  long long v = 0;
  const char *p = s;
  int neg = 0;
  if (*p == '-') {
    neg = 1;
    p++;
  }
  if (*p == '\0') return -1;
  for (; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    if (v > (LLONG_MAX - 9) / 10) return -1;
    v = v * 10 + (*p - '0');
  }
  if (neg) v = -v;
  if (v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int sv_parse_duration(const char *s, int64_t *out) {
  if (s == NULL) return -1;
  size_t n = strlen(s);
  if (n == 0 || n > 24) return -1;
  int64_t mult = 1;
  char num[32];
  memcpy(num, s, n + 1);
  switch (num[n - 1]) {
    case 's': mult = 1; break;
    case 'm': mult = 60; break;
    case 'h': mult = 3600; break;
    case 'd': mult = 86400; break;
    case 'w': mult = 7 * 86400; break;
    default: mult = 0; break;
  }
  if (mult != 0) num[--n] = '\0';
  else mult = 1;
  long long v;
  const long long ten_years = 10LL * 366 * 86400;
  if (n == 0 || num[0] == '-' || sv_parse_int(num, 0, ten_years, &v) != 0) return -1;
  if (v > ten_years / mult) return -1;
  *out = (int64_t)v * mult;
  return 0;
}

static const char k_b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t sv_b64url_encode(const unsigned char *in, size_t n, char *out) {
  size_t o = 0, i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = k_b64url[v >> 18 & 63];
    out[o++] = k_b64url[v >> 12 & 63];
    out[o++] = k_b64url[v >> 6 & 63];
    out[o++] = k_b64url[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = k_b64url[v >> 18 & 63];
    out[o++] = k_b64url[v >> 12 & 63];
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = k_b64url[v >> 18 & 63];
    out[o++] = k_b64url[v >> 12 & 63];
    out[o++] = k_b64url[v >> 6 & 63];
  }
  out[o] = '\0';
  return o;
}

static int b64_val(const char *alphabet, char c) {
  const char *p = c ? strchr(alphabet, c) : NULL;
  return p ? (int)(p - alphabet) : -1;
}

/* Shared decoder: `padded` requires '=' padding to a multiple of 4. */
static int b64_decode(const char *alphabet, int padded, const char *in, size_t n, unsigned char *out, size_t cap,
                      size_t *outlen) {
  if (padded) {
    if (n % 4 != 0) return -1;
    size_t pad = 0;
    while (pad < 2 && n > pad && in[n - 1 - pad] == '=') pad++;
    n -= pad;
    if (pad > 0 && (n % 4) + pad != 4) return -1;
  }
  if (n % 4 == 1) return -1;
  size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
  if (need > cap) return -1;
  size_t o = 0, i = 0;
  for (; i + 4 <= n; i += 4) {
    int a = b64_val(alphabet, in[i]), b = b64_val(alphabet, in[i + 1]), c = b64_val(alphabet, in[i + 2]),
        d = b64_val(alphabet, in[i + 3]);
    if ((a | b | c | d) < 0) return -1;
    uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
    out[o++] = (unsigned char)(v >> 16);
    out[o++] = (unsigned char)(v >> 8);
    out[o++] = (unsigned char)v;
  }
  if (n - i == 2) {
    int a = b64_val(alphabet, in[i]), b = b64_val(alphabet, in[i + 1]);
    if ((a | b) < 0 || (b & 15) != 0) return -1; /* non-canonical trailing bits */
    out[o++] = (unsigned char)(a << 2 | b >> 4);
  } else if (n - i == 3) {
    int a = b64_val(alphabet, in[i]), b = b64_val(alphabet, in[i + 1]), c = b64_val(alphabet, in[i + 2]);
    if ((a | b | c) < 0 || (c & 3) != 0) return -1;
    out[o++] = (unsigned char)(a << 2 | b >> 4);
    out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
  }
  *outlen = o;
  return 0;
}

int sv_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen) {
  return b64_decode(k_b64url, 0, in, n, out, cap, outlen);
}

int sv_b64_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen) {
  return b64_decode(k_b64, 1, in, n, out, cap, outlen);
}

size_t sv_utf8_seq(const unsigned char *s, size_t i, size_t n) {
  unsigned c = s[i];
  size_t len;
  unsigned cp;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > n) return 0;
  for (size_t k = 1; k < len; k++) {
    if ((s[i + k] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (s[i + k] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

int sv_utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    if (p[i] == 0) return 0;
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    size_t len = sv_utf8_seq(p, i, n);
    if (len == 0) return 0;
    i += len;
  }
  return 1;
}

int sv_read_secret_file(const char *path, size_t max, char **data, size_t *len, jwtkit_err *code, char *err,
                        size_t errcap) {
  jwtkit_errinfo info;
  memset(&info, 0, sizeof info);
  *len = 0;
  jwtkit_err e = jwtkit_read_secret_file(path, max, data, len, &info);
  if (code != NULL) *code = e;
  if (e == JWTKIT_OK) return 0;
  snprintf(err, errcap, "%s", info.msg[0] ? info.msg : jwtkit_strerror(e));
  return -1;
}

int sv_read_file(const char *path, size_t max, char **data, size_t *len, int *errno_out, char *err,
                 size_t errcap) {
  *data = NULL;
  if (errno_out) *errno_out = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno_out) *errno_out = errno;
    snprintf(err, errcap, "%s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    if (errno_out) *errno_out = EINVAL;
    snprintf(err, errcap, "%s: not a regular file", path);
    return -1;
  }
  if ((uintmax_t)st.st_size > max) {
    close(fd);
    if (errno_out) *errno_out = EFBIG;
    snprintf(err, errcap, "%s: larger than %zu bytes", path, max);
    return -1;
  }
  size_t cap = (size_t)st.st_size + 1, n = 0;
  char *buf = malloc(cap);
  if (buf == NULL) {
    close(fd);
    if (errno_out) *errno_out = ENOMEM;
    snprintf(err, errcap, "%s: out of memory", path);
    return -1;
  }
  while (n < cap - 1) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      sv_free_secret(buf, cap);
      if (errno_out) *errno_out = e;
      snprintf(err, errcap, "%s: %s", path, strerror(e));
      return -1;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  *data = buf;
  if (len) *len = n;
  return 0;
}

static int fsync_dir_of(const char *path) {
  char dir[SV_PATH_MAX + 8];
  size_t n = strlen(path);
  if (n >= sizeof dir) return -1;
  memcpy(dir, path, n + 1);
  char *slash = strrchr(dir, '/');
  if (slash == NULL) {
    strcpy(dir, ".");
  } else if (slash == dir) {
    slash[1] = '\0';
  } else {
    *slash = '\0';
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

int sv_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode, char *err,
                         size_t errcap) {
  char tmp[SV_PATH_MAX + 64];
  if (strlen(path) >= SV_PATH_MAX) {
    snprintf(err, errcap, "path too long");
    return -1;
  }
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%d", path, (long)getpid(), attempt);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (mode_t)mode);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    snprintf(err, errcap, "cannot create a temporary file next to %s: %s", path, strerror(errno));
    return -1;
  }
  const char *p = data;
  size_t left = len;
  if (fchmod(fd, (mode_t)mode) != 0) goto fail;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) goto fail;
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0) goto fail;
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) != 0) goto fail;
  if (fsync_dir_of(path) != 0) {
    snprintf(err, errcap, "fsync of the directory of %s: %s", path, strerror(errno));
    return -1;
  }
  return 0;
fail:
  snprintf(err, errcap, "writing %s: %s", path, strerror(errno));
  if (fd >= 0) close(fd);
  unlink(tmp);
  return -1;
}

void sv_free_secret(void *p, size_t n) {
  if (p == NULL) return;
  OPENSSL_cleanse(p, n);
  free(p);
}

int64_t sv_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int sv_mkdirs(const char *path, unsigned mode, int create_last) {
  char buf[SV_PATH_MAX];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) return -1;
  memcpy(buf, path, n + 1);
  if (!create_last) {
    char *slash = strrchr(buf, '/');
    if (slash == NULL) return 0;
    *slash = '\0';
  }
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (buf[0] != '\0' && mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST) return -1;
  return 0;
}
