#include "json.h"

#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "jwtkit/jwt.h"

/* ------------------------------------------------------------- parser */

typedef struct jk_parser {
  const unsigned char *s;
  size_t n;
  size_t pos;
  jk_jnode *nodes;
  uint32_t cap;
  uint32_t count;
  unsigned depth;
  jwtkit_errinfo *info;
  jwtkit_err err;
} jk_parser;

static int perr(jk_parser *p, jwtkit_err code, const char *what) {
  if (p->err == JWTKIT_OK) {
    p->err = code;
    jk_fail(p->info, code, NULL, "JSON: %s at byte %zu", what, p->pos);
  }
  return -1;
}

static inline void skip_ws(jk_parser *p) {
  while (p->pos < p->n) {
    unsigned char c = p->s[p->pos];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
      p->pos++;
    else
      break;
  }
}

static int64_t new_node(jk_parser *p, jk_jtype t, size_t off) {
  if (p->count == UINT32_MAX) return perr(p, JWTKIT_ERR_TOO_LARGE, "too many values");
  uint32_t i = p->count++;
  if (i < p->cap) {
    jk_jnode *nd = &p->nodes[i];
    nd->type = (uint8_t)t;
    nd->esc = 0;
    nd->flags = 0;
    nd->off = (uint32_t)off;
    nd->len = 0;
    nd->end = i + 1;
  }
  return i;
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int read_u4(const unsigned char *s, size_t n, size_t at, unsigned *out) {
  if (at + 4 > n) return -1;
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    int h = hexval(s[at + (size_t)k]);
    if (h < 0) return -1;
    v = (v << 4) | (unsigned)h;
  }
  *out = v;
  return 0;
}

/* Scan a string starting at the opening quote.  Fills off/len/esc. */
static int parse_string(jk_parser *p, uint32_t *esc_out, size_t *off_out, size_t *len_out) {
  const unsigned char *s = p->s;
  size_t n = p->n;
  size_t i = p->pos + 1;
  size_t start = i;
  uint32_t esc = 0;
  for (;;) {
    /* fast path over plain ASCII */
    while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\') i++;
    if (i >= n) {
      p->pos = i;
      return perr(p, JWTKIT_ERR_MALFORMED, "unterminated string");
    }
    unsigned char c = s[i];
    if (c == '"') break;
    if (c < 0x20) {
      p->pos = i;
      return perr(p, JWTKIT_ERR_MALFORMED, "control character in string");
    }
    if (c == '\\') {
      esc = 1;
      if (i + 1 >= n) {
        p->pos = i;
        return perr(p, JWTKIT_ERR_MALFORMED, "unterminated escape");
      }
      unsigned char e = s[i + 1];
      switch (e) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
          i += 2;
          break;
        case 'u': {
          unsigned u;
          if (read_u4(s, n, i + 2, &u) != 0) {
            p->pos = i;
            return perr(p, JWTKIT_ERR_MALFORMED, "bad \\u escape");
          }
          if (u == 0) {
            p->pos = i;
            return perr(p, JWTKIT_ERR_MALFORMED, "\\u0000 in string");
          }
          if (u >= 0xDC00 && u <= 0xDFFF) {
            p->pos = i;
            return perr(p, JWTKIT_ERR_MALFORMED, "lone low surrogate");
          }
          if (u >= 0xD800 && u <= 0xDBFF) {
            unsigned lo;
            if (i + 11 >= n + 0 || s[i + 6] != '\\' || s[i + 7] != 'u' ||
                read_u4(s, n, i + 8, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF) {
              p->pos = i;
              return perr(p, JWTKIT_ERR_MALFORMED, "unpaired surrogate");
            }
            i += 12;
          } else {
            i += 6;
          }
          break;
        }
        default:
          p->pos = i;
          return perr(p, JWTKIT_ERR_MALFORMED, "bad escape");
      }
      continue;
    }
    /* non-ASCII */
    size_t k = jk_utf8_seq(s + i, n - i);
    if (k == 0) {
      p->pos = i;
      return perr(p, JWTKIT_ERR_MALFORMED, "invalid UTF-8");
    }
    i += k;
  }
  *off_out = start;
  *len_out = i - start;
  *esc_out = esc;
  p->pos = i + 1;
  return 0;
}

static int parse_number(jk_parser *p) {
  const unsigned char *s = p->s;
  size_t n = p->n, i = p->pos;
  if (i < n && s[i] == '-') i++;
  if (i >= n) goto bad;
  if (s[i] == '0') {
    i++;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
  } else {
    goto bad;
  }
  if (i < n && s[i] == '.') {
    i++;
    if (i >= n || s[i] < '0' || s[i] > '9') goto bad;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    if (i >= n || s[i] < '0' || s[i] > '9') goto bad;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
  }
  p->pos = i;
  return 0;
bad:
  p->pos = i;
  return perr(p, JWTKIT_ERR_MALFORMED, "bad number");
}

static int keys_equal(const jk_jdoc *d, uint32_t a, uint32_t b);

typedef struct name_ref {
  const char *s;
  size_t n;
} name_ref;

static int name_cmp(const void *a, const void *b) {
  const name_ref *x = a, *y = b;
  size_t m = x->n < y->n ? x->n : y->n;
  int c = memcmp(x->s, y->s, m);
  return c != 0 ? c : (x->n > y->n) - (x->n < y->n);
}

/* Duplicate member names: pairwise for small objects, sorted for large
 * ones (a 100,000-member object must not cost n^2 comparisons). */
#define JK_DUP_PAIRWISE 16u
static int check_duplicates(jk_parser *p, uint32_t obj, uint32_t members) {
  if (p->count > p->cap) return 0; /* counting pass: nodes not stored */
  jk_jdoc d = {(const char *)p->s, p->n, p->nodes, p->count};
  uint32_t end = p->nodes[obj].end;
  if (members <= JK_DUP_PAIRWISE) {
    for (uint32_t k = obj + 1; k < end; k = p->nodes[k + 1].end) {
      for (uint32_t j = obj + 1; j < k; j = p->nodes[j + 1].end) {
        if (keys_equal(&d, j, k)) {
          p->pos = p->nodes[k].off;
          return perr(p, JWTKIT_ERR_MALFORMED, "duplicate member name");
        }
      }
    }
    return 0;
  }
  /* unescaped names point into one scratch buffer (never longer than the raw text) */
  size_t scratch_len = 0;
  for (uint32_t k = obj + 1; k < end; k = p->nodes[k + 1].end)
    if (p->nodes[k].esc) scratch_len += (size_t)p->nodes[k].len + 1;
  name_ref *refs = jk_malloc((size_t)members * sizeof *refs);
  char *scratch = scratch_len ? jk_malloc(scratch_len) : NULL;
  if (refs == NULL || (scratch_len && scratch == NULL)) {
    jk_free(refs);
    jk_free(scratch);
    return perr(p, JWTKIT_ERR_NOMEM, "out of memory");
  }
  size_t i = 0, used = 0;
  for (uint32_t k = obj + 1; k < end && i < members; k = p->nodes[k + 1].end, i++) {
    if (p->nodes[k].esc) {
      size_t m = jk_json_unescape(&d, k, scratch + used);
      refs[i] = (name_ref){scratch + used, m};
      used += m + 1;
    } else {
      refs[i] = (name_ref){(const char *)p->s + p->nodes[k].off, p->nodes[k].len};
    }
  }
  qsort(refs, i, sizeof *refs, name_cmp);
  int dup = 0;
  for (size_t k = 1; k < i && !dup; k++) dup = name_cmp(&refs[k - 1], &refs[k]) == 0;
  jk_free(refs);
  jk_free(scratch);
  if (dup) return perr(p, JWTKIT_ERR_MALFORMED, "duplicate member name");
  return 0;
}

static int parse_value(jk_parser *p);

static int parse_container(jk_parser *p, int is_obj) {
  size_t open = p->pos;
  int64_t idx = new_node(p, is_obj ? JK_J_OBJECT : JK_J_ARRAY, open);
  if (idx < 0) return -1;
  if (++p->depth > JWTKIT_MAX_JSON_DEPTH) return perr(p, JWTKIT_ERR_TOO_LARGE, "nesting too deep");
  p->pos++;
  skip_ws(p);
  unsigned char close = is_obj ? '}' : ']';
  uint32_t members = 0;
  if (p->pos < p->n && p->s[p->pos] == close) {
    p->pos++;
  } else {
    for (;;) {
      skip_ws(p);
      if (is_obj) {
        if (p->pos >= p->n || p->s[p->pos] != '"')
          return perr(p, JWTKIT_ERR_MALFORMED, "expected member name");
        size_t off, len;
        uint32_t esc;
        int64_t k = new_node(p, JK_J_STRING, p->pos + 1);
        if (k < 0 || parse_string(p, &esc, &off, &len) != 0) return -1;
        if ((uint32_t)k < p->cap) {
          p->nodes[k].len = (uint32_t)len;
          p->nodes[k].esc = (uint8_t)esc;
        }
        skip_ws(p);
        if (p->pos >= p->n || p->s[p->pos] != ':') return perr(p, JWTKIT_ERR_MALFORMED, "expected ':'");
        p->pos++;
        skip_ws(p);
      }
      if (parse_value(p) != 0) return -1;
      members++;
      skip_ws(p);
      if (p->pos >= p->n) return perr(p, JWTKIT_ERR_MALFORMED, "unterminated container");
      unsigned char c = p->s[p->pos];
      if (c == ',') {
        p->pos++;
        continue;
      }
      if (c == close) {
        p->pos++;
        break;
      }
      return perr(p, JWTKIT_ERR_MALFORMED, "expected ',' or end of container");
    }
  }
  p->depth--;
  if ((uint32_t)idx < p->cap) {
    p->nodes[idx].len = (uint32_t)(p->pos - open);
    p->nodes[idx].end = p->count;
    p->nodes[idx].flags = (uint16_t)(members > 0xFFFF ? 0xFFFF : members);
  }
  if (is_obj && members > 1) return check_duplicates(p, (uint32_t)idx, members);
  return 0;
}

static int match_lit(jk_parser *p, const char *lit, size_t n) {
  if (p->n - p->pos < n || memcmp(p->s + p->pos, lit, n) != 0)
    return perr(p, JWTKIT_ERR_MALFORMED, "unexpected character");
  p->pos += n;
  return 0;
}

static int parse_value(jk_parser *p) {
  if (p->pos >= p->n) return perr(p, JWTKIT_ERR_MALFORMED, "unexpected end");
  unsigned char c = p->s[p->pos];
  size_t start = p->pos;
  int64_t idx;
  switch (c) {
    case '{':
      return parse_container(p, 1);
    case '[':
      return parse_container(p, 0);
    case '"': {
      size_t off, len;
      uint32_t esc;
      idx = new_node(p, JK_J_STRING, start + 1);
      if (idx < 0 || parse_string(p, &esc, &off, &len) != 0) return -1;
      if ((uint32_t)idx < p->cap) {
        p->nodes[idx].len = (uint32_t)len;
        p->nodes[idx].esc = (uint8_t)esc;
      }
      return 0;
    }
    case 't':
      idx = new_node(p, JK_J_TRUE, start);
      if (idx < 0 || match_lit(p, "true", 4) != 0) return -1;
      break;
    case 'f':
      idx = new_node(p, JK_J_FALSE, start);
      if (idx < 0 || match_lit(p, "false", 5) != 0) return -1;
      break;
    case 'n':
      idx = new_node(p, JK_J_NULL, start);
      if (idx < 0 || match_lit(p, "null", 4) != 0) return -1;
      break;
    default:
      if (c == '-' || (c >= '0' && c <= '9')) {
        idx = new_node(p, JK_J_NUMBER, start);
        if (idx < 0 || parse_number(p) != 0) return -1;
        break;
      }
      return perr(p, JWTKIT_ERR_MALFORMED, "unexpected character");
  }
  if ((uint32_t)idx < p->cap) p->nodes[idx].len = (uint32_t)(p->pos - start);
  return 0;
}

jwtkit_err jk_json_parse(jk_jdoc *doc, const char *src, size_t len, jk_jnode *nodes, uint32_t cap,
                         int top_object, uint32_t *needed, jwtkit_errinfo *info) {
  if (len > JK_JSON_MAX_INPUT) return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "JSON text too large");
  jk_parser p = {(const unsigned char *)src, len, 0, nodes, cap, 0, 0, info, JWTKIT_OK};
  skip_ws(&p);
  if (top_object && (p.pos >= p.n || p.s[p.pos] != '{')) {
    perr(&p, JWTKIT_ERR_MALFORMED, "expected a JSON object");
    return p.err;
  }
  if (parse_value(&p) != 0) return p.err;
  skip_ws(&p);
  if (p.pos != p.n) {
    perr(&p, JWTKIT_ERR_MALFORMED, "trailing bytes after JSON value");
    return p.err;
  }
  if (needed != NULL) *needed = p.count;
  if (p.count > cap) return JWTKIT_ERR_TOO_LARGE;
  doc->src = src;
  doc->len = len;
  doc->nodes = nodes;
  doc->count = p.count;
  return JWTKIT_OK;
}

jwtkit_err jk_json_parse_alloc(jk_jdoc *doc, const char *src, size_t len, int top_object,
                               jwtkit_errinfo *info) {
  uint32_t cap = 32, needed = 0;
  for (int attempt = 0; attempt < 2; attempt++) {
    jk_jnode *nodes = jk_malloc((size_t)cap * sizeof *nodes);
    if (nodes == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    jwtkit_err e = jk_json_parse(doc, src, len, nodes, cap, top_object, &needed, info);
    if (e == JWTKIT_OK) return e;
    jk_free(nodes);
    if (e != JWTKIT_ERR_TOO_LARGE || needed <= cap) return e;
    cap = needed;
  }
  return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, NULL);
}

/* ---------------------------------------------------------- accessors */

size_t jk_json_unescape(const jk_jdoc *doc, uint32_t i, char *out) {
  const jk_jnode *nd = &doc->nodes[i];
  const unsigned char *s = (const unsigned char *)doc->src + nd->off;
  size_t n = nd->len;
  if (!nd->esc) {
    memcpy(out, s, n);
    out[n] = '\0';
    return n;
  }
  size_t o = 0;
  for (size_t k = 0; k < n;) {
    if (s[k] != '\\') {
      out[o++] = (char)s[k++];
      continue;
    }
    unsigned char e = s[k + 1];
    k += 2;
    switch (e) {
      case 'b': out[o++] = '\b'; break;
      case 'f': out[o++] = '\f'; break;
      case 'n': out[o++] = '\n'; break;
      case 'r': out[o++] = '\r'; break;
      case 't': out[o++] = '\t'; break;
      case 'u': {
        unsigned u = 0, lo = 0;
        (void)read_u4(s, n, k, &u); /* validated by the parser */
        k += 4;
        if (u >= 0xD800 && u <= 0xDBFF) {
          (void)read_u4(s, n, k + 2, &lo);
          k += 6;
          u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
        }
        o += jk_utf8_encode(u, out + o); /* validated by the parser: a scalar value */
        break;
      }
      default: out[o++] = (char)e; break; /* " \ / */
    }
  }
  out[o] = '\0';
  return o;
}

int jk_json_str_eq(const jk_jdoc *doc, uint32_t i, const char *s, size_t n) {
  const jk_jnode *nd = &doc->nodes[i];
  if (nd->type != JK_J_STRING) return 0;
  if (!nd->esc) return nd->len == n && memcmp(doc->src + nd->off, s, n) == 0;
  if (n > nd->len) return 0; /* unescaping never grows */
  char stackbuf[256];
  char *tmp = nd->len < sizeof stackbuf ? stackbuf : jk_malloc((size_t)nd->len + 1);
  if (tmp == NULL) return 0;
  size_t m = jk_json_unescape(doc, i, tmp);
  int eq = (m == n && memcmp(tmp, s, n) == 0);
  if (tmp != stackbuf) jk_free(tmp);
  return eq;
}

static int keys_equal(const jk_jdoc *d, uint32_t a, uint32_t b) {
  const jk_jnode *na = &d->nodes[a], *nb = &d->nodes[b];
  if (!na->esc && !nb->esc)
    return na->len == nb->len && memcmp(d->src + na->off, d->src + nb->off, na->len) == 0;
  char stackbuf[256];
  char *tmp = na->len < sizeof stackbuf ? stackbuf : jk_malloc((size_t)na->len + 1);
  if (tmp == NULL) return 1; /* fail closed: treat as duplicate */
  size_t m = jk_json_unescape(d, a, tmp);
  int eq = jk_json_str_eq(d, b, tmp, m);
  if (tmp != stackbuf) jk_free(tmp);
  return eq;
}

int jk_json_get(const jk_jdoc *doc, uint32_t obj, const char *name, size_t name_len) {
  const jk_jnode *o = &doc->nodes[obj];
  if (o->type != JK_J_OBJECT) return -1;
  for (uint32_t k = obj + 1; k < o->end; k = doc->nodes[k + 1].end) {
    const jk_jnode *kn = &doc->nodes[k];
    if (!kn->esc) {
      if (kn->len == name_len && memcmp(doc->src + kn->off, name, name_len) == 0) return (int)(k + 1);
    } else if (jk_json_str_eq(doc, k, name, name_len)) {
      return (int)(k + 1);
    }
  }
  return -1;
}

void jk_json_get_many(const jk_jdoc *doc, uint32_t obj, const char *const *names, size_t n, int *idx) {
  size_t lens[16];
  for (size_t i = 0; i < n && i < 16; i++) {
    idx[i] = -1;
    lens[i] = strlen(names[i]);
  }
  const jk_jnode *o = &doc->nodes[obj];
  if (o->type != JK_J_OBJECT || n > 16) return;
  for (uint32_t k = obj + 1; k < o->end; k = doc->nodes[k + 1].end) {
    const jk_jnode *kn = &doc->nodes[k];
    const char *ks = doc->src + kn->off;
    for (size_t i = 0; i < n; i++) {
      if (idx[i] >= 0) continue;
      int eq = kn->esc ? jk_json_str_eq(doc, k, names[i], lens[i])
                       : (kn->len == lens[i] && memcmp(ks, names[i], lens[i]) == 0);
      if (eq) {
        idx[i] = (int)(k + 1);
        break;
      }
    }
  }
}

char *jk_json_strdup(const jk_jdoc *doc, uint32_t i, size_t *len) {
  if (doc->nodes[i].type != JK_J_STRING) return NULL;
  char *out = jk_malloc((size_t)doc->nodes[i].len + 1);
  if (out == NULL) return NULL;
  size_t m = jk_json_unescape(doc, i, out);
  if (len != NULL) *len = m;
  return out;
}

int jk_json_int(const jk_jdoc *doc, uint32_t i, int64_t *v) {
  const jk_jnode *nd = &doc->nodes[i];
  if (nd->type != JK_J_NUMBER) return -1;
  const char *s = doc->src + nd->off;
  size_t n = nd->len, k = 0;
  int neg = 0;
  if (s[0] == '-') {
    neg = 1;
    k = 1;
  }
  uint64_t acc = 0;
  const uint64_t lim = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
  for (; k < n; k++) {
    if (s[k] < '0' || s[k] > '9') return -1; /* fraction or exponent */
    uint64_t d = (uint64_t)(s[k] - '0');
    if (acc > (lim - d) / 10) return -1;
    acc = acc * 10 + d;
  }
  *v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
  return 0;
}

/* The mantissa's digits (integer and fraction parts, without the point) as
 * one sequence: the k-th digit, or '0' past the end. */
typedef struct digits {
  const char *ip, *fp;
  size_t in, fn;
} digits;

static char digit_at(const digits *d, int64_t k) {
  if (k < 0) return '0';
  size_t u = (size_t)k;
  if (u < d->in) return d->ip[u];
  u -= d->in;
  return u < d->fn ? d->fp[u] : '0';
}

int jk_json_seconds(const jk_jdoc *doc, uint32_t i, int64_t *floor_v, int64_t *ceil_v) {
  const jk_jnode *nd = &doc->nodes[i];
  if (nd->type != JK_J_NUMBER) return -1;
  const char *s = doc->src + nd->off;
  size_t n = nd->len, k = 0;
  int neg = 0;
  if (k < n && s[k] == '-') {
    neg = 1;
    k++;
  }
  digits d = {s + k, NULL, 0, 0};
  while (k < n && s[k] >= '0' && s[k] <= '9') k++;
  d.in = (size_t)(s + k - d.ip);
  if (k < n && s[k] == '.') {
    d.fp = s + ++k;
    while (k < n && s[k] >= '0' && s[k] <= '9') k++;
    d.fn = (size_t)(s + k - d.fp);
  }
  /* exponent: the parser has checked the grammar; clamp the magnitude (a
   * value like 1e999999 is out of range either way, 1e-999999 rounds) */
  int64_t e = 0;
  if (k < n && (s[k] == 'e' || s[k] == 'E')) {
    k++;
    int eneg = 0;
    if (k < n && (s[k] == '+' || s[k] == '-')) eneg = s[k++] == '-';
    for (; k < n && s[k] >= '0' && s[k] <= '9'; k++)
      if (e < 1000000) e = e * 10 + (s[k] - '0');
    if (eneg) e = -e;
  }
  if (k != n || d.in == 0) return -1;
  /* the decimal point sits after digit number `point` of the mantissa */
  int64_t point = (int64_t)d.in + e;
  int64_t total = (int64_t)(d.in + d.fn);
  int64_t first = -1; /* first non-zero digit */
  for (int64_t j = 0; j < total; j++)
    if (digit_at(&d, j) != '0') {
      first = j;
      break;
    }
  int64_t acc = 0;
  int frac = 0;
  if (first >= 0) {
    /* integer part: digits first .. point-1; at most 15 of them (< 1e15) */
    if (point - first > 15) return -1;
    for (int64_t j = first; j < point; j++) acc = acc * 10 + (digit_at(&d, j) - '0');
    /* a fraction: any non-zero digit at or after the point */
    for (int64_t j = point > first ? point : first; j < total && !frac; j++) frac = digit_at(&d, j) != '0';
  }
  if (neg) acc = -acc;
  if (!frac) {
    *floor_v = *ceil_v = acc;
  } else if (neg) {
    *floor_v = acc - 1;
    *ceil_v = acc;
  } else {
    *floor_v = acc;
    *ceil_v = acc + 1;
  }
  return 0;
}


/* Validate JSON text strictly with a stack node array, falling back to the
 * heap for large documents. */
jwtkit_err jk_json_check(const char *json, size_t len, int top_object, jwtkit_errinfo *info) {
  jk_jnode stack[64];
  jk_jdoc doc;
  uint32_t needed = 0;
  jwtkit_err rc = jk_json_parse(&doc, json, len, stack, 64, top_object, &needed, info);
  if (rc != JWTKIT_ERR_TOO_LARGE || needed <= 64) return rc;
  rc = jk_json_parse_alloc(&doc, json, len, top_object, info);
  if (rc == JWTKIT_OK) jk_free(doc.nodes);
  return rc;
}

jwtkit_err jwtkit_json_validate(const char *json, size_t len, int object_only, jwtkit_errinfo *info) {
  if (json == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  return jk_json_check(json, len, object_only != 0, info);
}

