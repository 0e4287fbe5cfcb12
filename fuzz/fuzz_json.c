/*
 * json: the strict parser (src/codec/json.h) on any bytes.
 *
 * jk_json_parse_alloc with top_object 0 and 1.  Properties when it accepts:
 *  - top_object 1 accepts exactly when top_object 0 accepts and the value
 *    is an object;
 *  - node tree: every node's subtree end lies inside the array, children
 *    come after their parent, strings and containers lie inside the text;
 *  - every string node unescapes to valid UTF-8 without NUL, never longer
 *    than its raw form, and jk_json_str_eq agrees with the unescaped bytes;
 *  - jk_json_get finds every member name of every object (the first, and
 *    only, member of that name);
 *  - a fixed-size node array gives TOO_LARGE with the same count, or the
 *    same document;
 *  - writing the document back with the jk_buf writer (strings re-escaped)
 *    gives text that parses to the same shape with the same strings;
 *  - integer and NumericDate accessors agree with the number text.
 * When it refuses, the errinfo is well formed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "common.h"
#include "core/alloc.h"

static char *unesc(const jk_jdoc *d, uint32_t i, size_t *n) {
  char *out = malloc((size_t)d->nodes[i].len + 1);
  JKF_CHECK(out != NULL, "malloc");
  *n = jk_json_unescape(d, i, out);
  return out;
}

static void check_tree(const jk_jdoc *d) {
  for (uint32_t i = 0; i < d->count; i++) {
    const jk_jnode *nd = &d->nodes[i];
    JKF_CHECK(nd->type >= JK_J_OBJECT && nd->type <= JK_J_NULL, "node %u type %u", i, nd->type);
    JKF_CHECK(nd->end > i && nd->end <= d->count, "node %u end %u of %u", i, nd->end, d->count);
    JKF_CHECK((size_t)nd->off + nd->len <= d->len, "node %u runs past the text", i);
    if (nd->type != JK_J_OBJECT && nd->type != JK_J_ARRAY) JKF_CHECK(nd->end == i + 1, "leaf %u has children", i);
    if (nd->type == JK_J_STRING) {
      JKF_CHECK(nd->off >= 1 && d->src[nd->off - 1] == '"' && d->src[nd->off + nd->len] == '"',
                "string node %u is not quoted", i);
      size_t n;
      char *s = unesc(d, i, &n);
      JKF_CHECK(n <= nd->len, "string %u grew when unescaped", i);
      JKF_CHECK(s[n] == '\0' && memchr(s, '\0', n) == NULL, "string %u holds a NUL", i);
      JKF_CHECK(jk_utf8_valid((const unsigned char *)s, n), "string %u unescapes to invalid UTF-8", i);
      JKF_CHECK(jk_json_str_eq(d, i, s, n), "str_eq disagrees with unescape for string %u", i);
      if (n > 0) JKF_CHECK(!jk_json_str_eq(d, i, s, n - 1), "str_eq matches a prefix of string %u", i);
      char *dup = jk_json_strdup(d, i, NULL);
      JKF_CHECK(dup != NULL && strcmp(dup, s) == 0, "strdup of string %u", i);
      jk_free(dup);
      free(s);
    } else if (nd->type == JK_J_NUMBER) {
      int64_t v, fl, ce;
      const char *t = d->src + nd->off;
      if (jk_json_int(d, i, &v) == 0) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%lld", (long long)v);
        JKF_CHECK((strlen(tmp) == nd->len && memcmp(tmp, t, nd->len) == 0) ||
                      (v == 0 && nd->len == 2 && memcmp(t, "-0", 2) == 0),
                  "jk_json_int gives %s for %.*s", tmp, (int)nd->len, t);
      }
      /* NumericDate: exact decimal evaluation, |value| < 1e15; compared
       * with strtod's nearest double, which is within 1 of it there */
      char num[128];
      double dv = 0;
      int have_dv = nd->len < sizeof num;
      if (have_dv) {
        memcpy(num, t, nd->len);
        num[nd->len] = '\0';
        dv = strtod(num, NULL);
      }
      if (jk_json_seconds(d, i, &fl, &ce) == 0) {
        JKF_CHECK(fl <= ce && ce - fl <= 1, "seconds floor %lld ceil %lld", (long long)fl, (long long)ce);
        if (have_dv)
          JKF_CHECK(dv >= (double)fl - 1 && dv <= (double)ce + 1, "seconds %lld..%lld for %s", (long long)fl,
                    (long long)ce, num);
        int64_t iv;
        if (jk_json_int(d, i, &iv) == 0) JKF_CHECK(fl == iv && ce == iv, "seconds of an integer differ");
      } else if (have_dv) {
        JKF_CHECK(!(dv > -1e14 && dv < 1e14), "seconds refused %s", num);
      }
    } else if (nd->type == JK_J_OBJECT) {
      for (uint32_t k = i + 1; k < nd->end; k = d->nodes[k + 1].end) {
        JKF_CHECK(d->nodes[k].type == JK_J_STRING && k + 1 < nd->end, "object %u member %u is not name:value", i, k);
        size_t n;
        char *name = unesc(d, k, &n);
        int got = jk_json_get(d, i, name, n);
        JKF_CHECK(got == (int)(k + 1), "jk_json_get(object %u, member %u) gives %d", i, k, got);
        free(name);
      }
    } else if (nd->type == JK_J_ARRAY) {
      for (uint32_t k = i + 1; k < nd->end; k = d->nodes[k].end) JKF_CHECK(d->nodes[k].end <= nd->end, "array child");
    }
  }
}

/* Write node i (and its subtree) with the jk_buf writer. */
static void write_node(const jk_jdoc *d, uint32_t i, jk_buf *b) {
  const jk_jnode *nd = &d->nodes[i];
  switch (nd->type) {
    case JK_J_OBJECT:
    case JK_J_ARRAY: {
      int obj = nd->type == JK_J_OBJECT;
      jk_buf_putc(b, obj ? '{' : '[');
      int first = 1;
      for (uint32_t k = i + 1; k < nd->end;) {
        if (!first) jk_buf_putc(b, ',');
        first = 0;
        if (obj) {
          write_node(d, k, b);
          jk_buf_putc(b, ':');
          k++;
        }
        write_node(d, k, b);
        k = d->nodes[k].end;
      }
      jk_buf_putc(b, obj ? '}' : ']');
      break;
    }
    case JK_J_STRING: {
      size_t n;
      char *s = unesc(d, i, &n);
      int r = jk_buf_json_str(b, s, n);
      JKF_CHECK(r == 0, "writer refuses a string the parser accepted (%d)", r);
      free(s);
      break;
    }
    default:
      jk_buf_put(b, d->src + nd->off, nd->len);
  }
}

static void check_rewrite(const jk_jdoc *d, int top_object) {
  jk_buf b;
  jk_buf_init(&b);
  write_node(d, 0, &b);
  size_t len = 0;
  char *text = jk_buf_take(&b, &len);
  JKF_CHECK(text != NULL, "writer out of memory");
  jk_jdoc e;
  jwtkit_errinfo info;
  jwtkit_err rc = jk_json_parse_alloc(&e, text, len, top_object, &info);
  JKF_CHECK(rc == JWTKIT_OK, "rewritten document does not parse: %s (%s): %s", jwtkit_errname(rc), info.msg, text);
  JKF_CHECK(e.count == d->count, "rewritten document has %u nodes, not %u", e.count, d->count);
  for (uint32_t i = 0; i < d->count; i++) {
    JKF_CHECK(e.nodes[i].type == d->nodes[i].type && e.nodes[i].end == d->nodes[i].end, "node %u changed shape", i);
    if (d->nodes[i].type == JK_J_STRING) {
      size_t n1, n2;
      char *s1 = unesc(d, i, &n1), *s2 = unesc(&e, i, &n2);
      JKF_CHECK(n1 == n2 && memcmp(s1, s2, n1) == 0, "string %u changed in the rewrite", i);
      free(s1);
      free(s2);
    }
  }
  jk_free(e.nodes);
  jk_free(text);
}

static jwtkit_err parse_and_check(const char *src, size_t size, int top_object, uint32_t *count) {
  jk_jdoc d;
  jwtkit_errinfo info;
  memset(&info, 0x5a, sizeof info);
  jwtkit_err rc = jk_json_parse_alloc(&d, src, size, top_object, &info);
  if (rc != JWTKIT_OK) {
    JKF_CHECK(rc == JWTKIT_ERR_MALFORMED || rc == JWTKIT_ERR_TOO_LARGE, "parse failed with %s", jwtkit_errname(rc));
    JKF_CHECK(jkf_errinfo_sane(&info), "errinfo not NUL-terminated");
    return rc;
  }
  JKF_CHECK(d.count >= 1 && d.src == src && d.len == size, "document header");
  if (top_object) JKF_CHECK(d.nodes[0].type == JK_J_OBJECT, "top_object accepted a non-object");
  *count = d.count;
  check_tree(&d);
  check_rewrite(&d, top_object);

  /* a small fixed array: TOO_LARGE with the same count, or the same result */
  jk_jnode small[4];
  jk_jdoc s;
  uint32_t needed = 0;
  rc = jk_json_parse(&s, src, size, small, 4, top_object, &needed, NULL);
  JKF_CHECK(needed == d.count, "counting pass needs %u nodes, the document has %u", needed, d.count);
  if (d.count <= 4)
    JKF_CHECK(rc == JWTKIT_OK && memcmp(small, d.nodes, d.count * sizeof *small) == 0, "small parse differs");
  else
    JKF_CHECK(rc == JWTKIT_ERR_TOO_LARGE, "small parse of %u nodes gives %s", d.count, jwtkit_errname(rc));
  jk_free(d.nodes);
  return JWTKIT_OK;
}

int jkf_json(const uint8_t *data, size_t size) {
  const char *src = (const char *)data;
  uint32_t c0 = 0, c1 = 0;
  jwtkit_err r0 = parse_and_check(src, size, 0, &c0);
  jwtkit_err r1 = parse_and_check(src, size, 1, &c1);
  size_t i = 0;
  while (i < size && (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r')) i++;
  int is_obj = i < size && src[i] == '{';
  if (r0 == JWTKIT_OK) {
    JKF_CHECK((r1 == JWTKIT_OK) == is_obj, "top_object 1 gives %s for a document top_object 0 accepts",
              jwtkit_errname(r1));
    if (r1 == JWTKIT_OK) JKF_CHECK(c0 == c1, "node counts differ");
  } else {
    JKF_CHECK(r1 != JWTKIT_OK, "top_object 1 accepts what top_object 0 refuses");
  }
  return 0;
}

JKF_ENTRY(jkf_json)
