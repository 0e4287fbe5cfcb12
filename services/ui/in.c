/* The request's JSON body (the library's strict parser, a fixed node
 * budget), its members, and the answer's small writers. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/parse.h"
#include "core/alloc.h"
#include "ui_internal.h"

int ui_fail(ui_call *c, unsigned status, const char *field, const char *fmt, ...) {
  c->status = status;
  snprintf(c->field, sizeof c->field, "%s", field != NULL ? field : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
  return -1;
}

void ui_errtext(jwtkit_err rc, const jwtkit_errinfo *info, char *buf, size_t cap) {
  const char *base = jwtkit_strerror(rc);
  if (info == NULL || info->msg[0] == '\0' || strcmp(info->msg, base) == 0)
    snprintf(buf, cap, "%s", base);
  else
    snprintf(buf, cap, "%s: %s", base, info->msg);
}

int ui_fail_lib(ui_call *c, const char *field, const char *what, jwtkit_err rc, const jwtkit_errinfo *info) {
  char msg[300];
  ui_errtext(rc, info, msg, sizeof msg);
  unsigned status = rc == JWTKIT_ERR_NOMEM || rc == JWTKIT_ERR_IO || rc == JWTKIT_ERR_CRYPTO ? 500 : 422;
  return ui_fail(c, status, field, "%s: %s", what, msg);
}

/* ------------------------------------------------------------- members */

static int member(ui_call *c, const char *name) {
  int i = jk_json_get(&c->in->d, 0, name, strlen(name));
  if (i >= 0 && c->in->d.nodes[i].type == JK_J_NULL) return -1;
  return i;
}

static const char *type_name(uint8_t t) {
  switch (t) {
    case JK_J_OBJECT: return "an object";
    case JK_J_ARRAY: return "an array";
    case JK_J_STRING: return "a string";
    case JK_J_NUMBER: return "a number";
    case JK_J_NULL: return "null";
    default: return "a boolean";
  }
}

static int wrong(ui_call *c, const char *name, uint32_t i, const char *want) {
  return ui_fail(c, 400, name, "\"%s\" must be %s, not %s", name, want, type_name(c->in->d.nodes[i].type));
}

/* An unescaped copy of string node i, kept (and wiped) with the request. */
static const char *keep(ui_call *c, uint32_t i, size_t *len) {
  ui_in *in = c->in;
  if (in->ns >= UI_IN_MAX_STRINGS) {
    ui_fail(c, 400, NULL, "the request holds more than %u strings", UI_IN_MAX_STRINGS);
    return NULL;
  }
  size_t n;
  char *s = jk_json_strdup(&in->d, i, &n);
  if (s == NULL) {
    ui_fail(c, 500, NULL, "out of memory");
    return NULL;
  }
  in->s[in->ns] = s;
  in->slen[in->ns++] = n + 1;
  if (len != NULL) *len = n;
  return s;
}

int ui_in_str(ui_call *c, const char *name, const char **s, size_t *len) {
  int i = member(c, name);
  if (i < 0) return 0;
  if (c->in->d.nodes[i].type != JK_J_STRING) return wrong(c, name, (uint32_t)i, "a string");
  *s = keep(c, (uint32_t)i, len);
  return *s != NULL ? 1 : -1;
}

int ui_in_bool(ui_call *c, const char *name, int *v) {
  int i = member(c, name);
  if (i < 0) return 0;
  uint8_t t = c->in->d.nodes[i].type;
  if (t != JK_J_TRUE && t != JK_J_FALSE) return wrong(c, name, (uint32_t)i, "true or false");
  *v = t == JK_J_TRUE;
  return 1;
}

int ui_in_int(ui_call *c, const char *name, int64_t lo, int64_t hi, int64_t *v) {
  int i = member(c, name);
  if (i < 0) return 0;
  if (c->in->d.nodes[i].type != JK_J_NUMBER) return wrong(c, name, (uint32_t)i, "a number");
  if (jk_json_int(&c->in->d, (uint32_t)i, v) != 0 || *v < lo || *v > hi)
    return ui_fail(c, 400, name, "\"%s\" must be a whole number from %lld to %lld", name, (long long)lo, (long long)hi);
  return 1;
}

int ui_in_strs(ui_call *c, const char *name, size_t max, const char **v, size_t *n) {
  *n = 0;
  int i = member(c, name);
  if (i < 0) return 0;
  const jk_jdoc *d = &c->in->d;
  if (d->nodes[i].type == JK_J_STRING) {
    if ((v[0] = keep(c, (uint32_t)i, NULL)) == NULL) return -1;
    *n = v[0][0] != '\0'; /* an empty field of the form is no entry */
    return 1;
  }
  if (d->nodes[i].type != JK_J_ARRAY) return wrong(c, name, (uint32_t)i, "a string or an array of strings");
  for (uint32_t k = (uint32_t)i + 1; k < d->nodes[i].end; k = d->nodes[k].end) {
    if (d->nodes[k].type != JK_J_STRING) return wrong(c, name, k, "an array of strings; an item");
    if (*n >= max) return ui_fail(c, 400, name, "\"%s\" holds more than %zu items", name, max);
    if ((v[*n] = keep(c, k, NULL)) == NULL) return -1;
    if (v[*n][0] != '\0') (*n)++;
  }
  return 1;
}

/* A number of 0..hi, or a text that parse reads (help says what it takes). */
static int number_or_text(ui_call *c, const char *name, int64_t hi, int (*parse)(const char *s, int64_t *out),
                          const char *help, int64_t *v) {
  int i = member(c, name);
  if (i < 0) return 0;
  if (c->in->d.nodes[i].type == JK_J_NUMBER) return ui_in_int(c, name, 0, hi, v);
  const char *s;
  int r = ui_in_str(c, name, &s, NULL);
  if (r <= 0 || s[0] == '\0') return r < 0 ? -1 : 0;
  if (parse(s, v) != 0) return ui_fail(c, 400, name, "\"%s\": \"%s\" is not %s", name, s, help);
  return 1;
}

int ui_in_duration(ui_call *c, const char *name, int64_t *v) {
  return number_or_text(c, name, JK_MAX_DURATION, jk_parse_duration, JK_DURATION_HELP, v);
}

int ui_in_time(ui_call *c, const char *name, int64_t *v) {
  return number_or_text(c, name, JK_MAX_TIME, jk_parse_time, JK_TIME_HELP, v);
}

int ui_in_algs(ui_call *c, jwtkit_alg *algs, size_t *n) {
  const char *v[JWTKIT_ALG_COUNT + 2];
  size_t k;
  *n = 0;
  if (ui_in_strs(c, "algs", JWTKIT_ALG_COUNT, v, &k) < 0) return -1;
  for (size_t i = 0; i < k; i++) {
    jwtkit_alg a = jwtkit_alg_from_name(v[i], strlen(v[i]));
    if (a == JWTKIT_ALG_UNSPEC)
      return ui_fail(c, 400, "algs", "\"%s\" is not an algorithm jwtkit accepts (\"none\" never is)", v[i]);
    size_t j = 0;
    while (j < *n && algs[j] != a) j++;
    if (j == *n) algs[(*n)++] = a;
  }
  if (*n == 0)
    return ui_fail(c, 400, "algs", "pin the accepted algorithms: a verifier never takes the token's word for it");
  return 0;
}

/* -------------------------------------------------------------- output */

static void name_of(jk_buf *b, const char *name) {
  jk_buf_putc(b, ',');
  jk_buf_json_str(b, name, strlen(name));
  jk_buf_putc(b, ':');
}

void ui_out_str(jk_buf *b, const char *name, const char *s, size_t n) {
  name_of(b, name);
  jk_buf_json_str_lossy(b, s, n);
}

void ui_out_cstr(jk_buf *b, const char *name, const char *s) {
  if (s == NULL) {
    name_of(b, name);
    jk_buf_puts(b, "null");
    return;
  }
  ui_out_str(b, name, s, strlen(s));
}

void ui_out_int(jk_buf *b, const char *name, int64_t v) {
  name_of(b, name);
  jk_buf_int(b, v);
}

void ui_out_bool(jk_buf *b, const char *name, int v) {
  name_of(b, name);
  jk_buf_puts(b, v ? "true" : "false");
}

void ui_out_error(jk_buf *b, const char *name, jwtkit_err rc, const jwtkit_errinfo *info) {
  char text[300];
  ui_errtext(rc, info, text, sizeof text);
  name_of(b, name);
  jk_buf_puts(b, "{\"code\":");
  jk_buf_json_str(b, jwtkit_errname(rc), strlen(jwtkit_errname(rc)));
  ui_out_cstr(b, "field", info != NULL && info->field[0] ? info->field : NULL);
  ui_out_cstr(b, "message", text);
  jk_buf_putc(b, '}');
}
