/* The PEM validator's report (include/jwtkit/pem.h): the tables (problem
 * names and descriptions, block type names, and the DER kinds a label can
 * announce); the report object, its accessors and the helpers that add
 * blocks and findings to it (a finding's text made printable, the number of
 * findings capped); and the report written as JSON for jwtkit pem check
 * --json.  Nothing here reads PEM text or DER. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec/json.h"
#include "core/alloc.h"
#include "jwtkit/pem.h"
#include "pem_internal.h"

/* ------------------------------------------------------------- tables */

static const struct {
  const char *name, *desc;
} k_problems[] = {
#define PEM_PROBLEM_ROW_(n, num, sname, d) [num] = {sname, d},
    JWTKIT_PEM_PROBLEM_MAP(PEM_PROBLEM_ROW_)
#undef PEM_PROBLEM_ROW_
};

const char *jwtkit_pem_problem_name(jwtkit_pem_problem p) {
  size_t i = (size_t)p;
  if (i >= sizeof k_problems / sizeof *k_problems || k_problems[i].name == NULL) return "unknown";
  return k_problems[i].name;
}

const char *jwtkit_pem_problem_desc(jwtkit_pem_problem p) {
  size_t i = (size_t)p;
  if (i >= sizeof k_problems / sizeof *k_problems || k_problems[i].desc == NULL) return "unknown problem";
  return k_problems[i].desc;
}

const char *jwtkit_pem_type_name(jwtkit_pem_type type) {
  switch (type) {
    case JWTKIT_PEM_PUBLIC: return "public";
    case JWTKIT_PEM_PRIVATE: return "private";
    case JWTKIT_PEM_ENCRYPTED_PRIVATE: return "encrypted-private";
    case JWTKIT_PEM_CERTIFICATE: return "certificate";
    case JWTKIT_PEM_UNKNOWN: break;
  }
  return "unknown";
}

/* What each DER kind is called and which label announces it. */
const jk_pem_kind jk_pem_kinds[K_COUNT] = {
    [K_NONE] = {"", "", "", JWTKIT_PEM_UNKNOWN, 0},
    [K_SPKI] = {"PUBLIC KEY", "SubjectPublicKeyInfo", "a SubjectPublicKeyInfo public key",
                JWTKIT_PEM_PUBLIC, 0},
    [K_RSA_PUB] = {"RSA PUBLIC KEY", "PKCS#1 RSAPublicKey", "a PKCS#1 RSA public key", JWTKIT_PEM_PUBLIC, 0},
    [K_PKCS8] = {"PRIVATE KEY", "PKCS#8 PrivateKeyInfo", "a PKCS#8 private key", JWTKIT_PEM_PRIVATE, 1},
    [K_RSA_PRIV] = {"RSA PRIVATE KEY", "PKCS#1 RSAPrivateKey", "a PKCS#1 RSA private key",
                    JWTKIT_PEM_PRIVATE, 1},
    [K_EC_PRIV] = {"EC PRIVATE KEY", "SEC1 ECPrivateKey", "a SEC1 EC private key", JWTKIT_PEM_PRIVATE, 1},
    [K_PKCS8_ENC] = {"ENCRYPTED PRIVATE KEY", "PKCS#8 EncryptedPrivateKeyInfo",
                     "an encrypted PKCS#8 private key", JWTKIT_PEM_ENCRYPTED_PRIVATE, 1},
    [K_CERT] = {"CERTIFICATE", "X.509 Certificate", "an X.509 certificate", JWTKIT_PEM_CERTIFICATE, 0},
};

/* ------------------------------------------------------------- report */

size_t jwtkit_pem_report_files(const jwtkit_pem_report *r) { return r ? r->nfiles : 0; }
const char *jwtkit_pem_report_path(const jwtkit_pem_report *r, size_t file) {
  return (r != NULL && file < r->nfiles) ? r->paths[file] : NULL;
}
size_t jwtkit_pem_report_blocks(const jwtkit_pem_report *r) { return r ? r->nblocks : 0; }
const jwtkit_pem_block *jwtkit_pem_report_block(const jwtkit_pem_report *r, size_t i) {
  return (r != NULL && i < r->nblocks) ? &r->blocks[i] : NULL;
}
size_t jwtkit_pem_report_findings(const jwtkit_pem_report *r) { return r ? r->nfindings : 0; }
const jwtkit_pem_finding *jwtkit_pem_report_finding(const jwtkit_pem_report *r, size_t i) {
  return (r != NULL && i < r->nfindings) ? &r->findings[i] : NULL;
}
size_t jwtkit_pem_report_count(const jwtkit_pem_report *r, jwtkit_pem_problem p) {
  size_t n = 0;
  for (size_t i = 0; r != NULL && i < r->nfindings; i++) n += r->findings[i].problem == p;
  return n;
}

void jwtkit_pem_report_free(jwtkit_pem_report *r) {
  if (r == NULL) return;
  jk_free(r->blocks);
  jk_free(r->findings);
  jk_free(r->paths[0]);
  jk_free(r->paths[1]);
  jk_free(r);
}

jwtkit_pem_report *jk_pem_report_new(void) { return jk_calloc(1, sizeof(jwtkit_pem_report)); }

/* Grow *arr (elements of elem bytes) so that one more fits, doubling up to
 * max elements.  0 on success, -1 when out of memory. */
int jk_pem_grow(void **arr, size_t *cap, size_t used, size_t elem, size_t max) {
  if (used < *cap) return 0;
  size_t ncap = *cap ? *cap * 2 : 8, bytes;
  if (ncap > max) ncap = max;
  if (ncap <= used || !jk_mul_ok(ncap, elem, &bytes)) return -1;
  void *p = jk_realloc(*arr, bytes);
  if (p == NULL) return -1;
  *arr = p;
  *cap = ncap;
  return 0;
}

/* Copy n bytes as printable ASCII (other bytes become '?'), truncated with
 * "..." to fit cap (>= 4). */
void jk_pem_printable(char *dst, size_t cap, const char *s, size_t n) {
  size_t k = n < cap ? n : cap - 4;
  for (size_t i = 0; i < k; i++) {
    unsigned char c = (unsigned char)s[i];
    dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  if (n >= cap) {
    memcpy(dst + k, "...", 3);
    k += 3;
  }
  dst[k] = '\0';
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 5, 6)))
#endif
void
jk_pem_add(file_ctx *fc, jwtkit_pem_problem p, int block, size_t line, const char *fmt, ...) {
  jwtkit_pem_report *r = fc->r;
  if (r->oom || r->nfindings >= JWTKIT_PEM_MAX_FINDINGS) return;
  if (jk_pem_grow((void **)&r->findings, &r->cap_findings, r->nfindings, sizeof *r->findings,
                  JWTKIT_PEM_MAX_FINDINGS) != 0) {
    r->oom = 1;
    return;
  }
  jwtkit_pem_finding *f = &r->findings[r->nfindings++];
  memset(f, 0, sizeof *f);
  f->file = fc->file;
  if (r->nfindings == JWTKIT_PEM_MAX_FINDINGS) {
    f->problem = JWTKIT_PEM_PROB_TOO_MANY_PROBLEMS;
    f->block = -1;
    snprintf(f->msg, sizeof f->msg, "more than %u problems; the rest are not listed",
             JWTKIT_PEM_MAX_FINDINGS - 1);
    return;
  }
  f->problem = p;
  f->block = block;
  f->line = line;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->msg, sizeof f->msg, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------- JSON */

static void json_path(jk_buf *b, const char *path) {
  if (path == NULL) {
    jk_buf_puts(b, "null");
    return;
  }
  size_t n = strlen(path);
  if (jk_utf8_valid((const unsigned char *)path, n)) {
    jk_buf_json_str(b, path, n);
    return;
  }
  char *copy = jk_strndup(path, n);
  if (copy == NULL) {
    b->oom = 1;
    return;
  }
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)copy[i] >= 0x80) copy[i] = '?';
  jk_buf_json_str(b, copy, n);
  jk_free(copy);
}

static void json_str_or_null(jk_buf *b, const char *s) {
  if (s[0] == '\0')
    jk_buf_puts(b, "null");
  else
    jk_buf_json_str(b, s, strlen(s));
}

jwtkit_err jwtkit_pem_report_to_json(const jwtkit_pem_report *r, const char *path, char **json, size_t *len) {
  if (json == NULL) return JWTKIT_ERR_INVALID_ARG;
  *json = NULL;
  if (r == NULL) return JWTKIT_ERR_INVALID_ARG;
  jk_buf b;
  jk_buf_init(&b);
  jk_buf_puts(&b, r->nfindings == 0 ? "{\"ok\":true,\"files\":[" : "{\"ok\":false,\"files\":[");
  for (size_t i = 0; i < r->nfiles; i++) {
    if (i) jk_buf_putc(&b, ',');
    json_path(&b, i == 0 && path != NULL ? path : r->paths[i]);
  }
  jk_buf_puts(&b, "],\"blocks\":[");
  for (size_t i = 0; i < r->nblocks; i++) {
    const jwtkit_pem_block *k = &r->blocks[i];
    jk_buf_puts(&b, i ? ",{\"file\":" : "{\"file\":");
    jk_buf_int(&b, k->file);
    jk_buf_puts(&b, ",\"line\":");
    jk_buf_int(&b, (int64_t)k->line);
    jk_buf_puts(&b, ",\"label\":");
    jk_buf_json_str(&b, k->label, strlen(k->label));
    jk_buf_puts(&b, ",\"type\":");
    jk_buf_json_str(&b, jwtkit_pem_type_name(k->type), strlen(jwtkit_pem_type_name(k->type)));
    jk_buf_puts(&b, ",\"family\":");
    json_str_or_null(&b, k->family);
    jk_buf_puts(&b, ",\"bits\":");
    if (k->bits)
      jk_buf_int(&b, k->bits);
    else
      jk_buf_puts(&b, "null");
    jk_buf_puts(&b, ",\"curve\":");
    json_str_or_null(&b, k->curve);
    jk_buf_putc(&b, '}');
  }
  jk_buf_puts(&b, "],\"problems\":[");
  for (size_t i = 0; i < r->nfindings; i++) {
    const jwtkit_pem_finding *f = &r->findings[i];
    const char *name = jwtkit_pem_problem_name(f->problem);
    jk_buf_puts(&b, i ? ",{\"code\":" : "{\"code\":");
    jk_buf_json_str(&b, name, strlen(name));
    jk_buf_puts(&b, ",\"file\":");
    jk_buf_int(&b, f->file);
    jk_buf_puts(&b, ",\"block\":");
    if (f->block >= 0)
      jk_buf_int(&b, f->block);
    else
      jk_buf_puts(&b, "null");
    jk_buf_puts(&b, ",\"line\":");
    if (f->line)
      jk_buf_int(&b, (int64_t)f->line);
    else
      jk_buf_puts(&b, "null");
    jk_buf_puts(&b, ",\"message\":");
    jk_buf_json_str(&b, f->msg, strlen(f->msg));
    jk_buf_putc(&b, '}');
  }
  jk_buf_puts(&b, "]}");
  size_t n = 0;
  char *s = jk_buf_take(&b, &n);
  if (s == NULL) return JWTKIT_ERR_NOMEM;
  *json = s;
  if (len != NULL) *len = n;
  return JWTKIT_OK;
}
