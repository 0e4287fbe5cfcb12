/* Helpers of the service harnesses; see svc.h. */
#include "svc.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static char *dup_n(const char *s, size_t n) {
  const char *nul = memchr(s, '\0', n);
  if (nul != NULL) n = (size_t)(nul - s);
  char *d = malloc(n + 1);
  JKF_CHECK(d != NULL, "out of memory");
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

void jkf_fields_parse(jkf_fields *f, const char *text, size_t len, size_t *rest) {
  memset(f, 0, sizeof *f);
  size_t i = 0;
  while (i < len) {
    const char *nl = memchr(text + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - text) : len;
    size_t n = end - i;
    const char *line = text + i;
    i = nl ? end + 1 : len;
    if (n > 0 && line[n - 1] == '\r') n--;
    if (n == 0) {
      *rest = i;
      return;
    }
    const char *colon = memchr(line, ':', n);
    if (colon == NULL || f->n >= JKF_MAX_FIELDS) continue;
    size_t nl_ = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vl = n - nl_ - 1;
    while (vl > 0 && (*v == ' ' || *v == '\t')) v++, vl--;
    while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
    f->name[f->n] = dup_n(line, nl_);
    f->value[f->n] = dup_n(v, vl);
    f->n++;
  }
  *rest = len;
}

void jkf_fields_free(jkf_fields *f) {
  for (size_t i = 0; i < f->n; i++) {
    free(f->name[i]);
    free(f->value[i]);
  }
  f->n = 0;
}

const char *jkf_fields_get(void *fields, const char *name) {
  const jkf_fields *f = fields;
  for (size_t i = 0; i < f->n; i++)
    if (strcasecmp(f->name[i], name) == 0) return f->value[i];
  return NULL;
}

void jkf_fields_each(void *fields, int (*fn)(void *cls, const char *name, const char *value), void *cls) {
  const jkf_fields *f = fields;
  for (size_t i = 0; i < f->n; i++)
    if (!fn(cls, f->name[i], f->value[i])) return;
}

/* ------------------------------------------------------------ files */

static char g_tmp[256];

static void remove_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    if (d != NULL) {
      struct dirent *e;
      while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        remove_tree(p);
      }
      closedir(d);
    }
    rmdir(path);
  } else {
    unlink(path);
  }
}

static void cleanup(void) {
  if (g_tmp[0] != '\0') remove_tree(g_tmp);
}

const char *jkf_tmpdir(void) {
  if (g_tmp[0] != '\0') return g_tmp;
  const char *tmp = getenv("TMPDIR");
  if (tmp == NULL || tmp[0] == '\0' || strlen(tmp) > 200) tmp = "/tmp";
  snprintf(g_tmp, sizeof g_tmp, "%s/jwtkit-fuzz-svc-XXXXXX", tmp);
  JKF_CHECK(mkdtemp(g_tmp) != NULL, "mkdtemp %s", g_tmp);
  atexit(cleanup);
  return g_tmp;
}

const char *jkf_write_file(const char *name, const void *data, size_t len, unsigned mode) {
  static char path[600];
  const char *slash = strchr(name, '/');
  if (slash != NULL) {
    snprintf(path, sizeof path, "%s/%.*s", jkf_tmpdir(), (int)(slash - name), name);
    mkdir(path, 0700);
  }
  snprintf(path, sizeof path, "%s/%s", jkf_tmpdir(), name);
  unlink(path);
  FILE *fp = fopen(path, "wb");
  JKF_CHECK(fp != NULL, "cannot create %s", path);
  JKF_CHECK(fwrite(data, 1, len, fp) == len && fclose(fp) == 0, "cannot write %s", path);
  JKF_CHECK(chmod(path, mode) == 0, "chmod %s", path);
  return path;
}

int jkf_contains(const char *s, size_t n, const char *needle) {
  size_t m = strlen(needle);
  if (m == 0) return 1;
  for (size_t i = 0; i + m <= n; i++)
    if (memcmp(s + i, needle, m) == 0) return 1;
  return 0;
}

static void text_room(jkf_text *t, size_t n) {
  if (t->len + n + 1 <= t->cap) return;
  size_t cap = t->cap ? t->cap : 256;
  while (cap < t->len + n + 1) cap *= 2;
  char *p = realloc(t->p, cap);
  JKF_CHECK(p != NULL, "out of memory");
  t->p = p;
  t->cap = cap;
}

void jkf_text_put(jkf_text *t, const char *s, size_t n) {
  text_room(t, n);
  memcpy(t->p + t->len, s, n);
  t->len += n;
  t->p[t->len] = '\0';
}

void jkf_text_printf(jkf_text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  JKF_CHECK(n >= 0, "vsnprintf");
  text_room(t, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  t->len += (size_t)n;
}

void jkf_text_free(jkf_text *t) {
  free(t->p);
  t->p = NULL;
  t->len = t->cap = 0;
}
