/*
 * A verified claim as a response header value.  The claim is read through
 * the library's claims accessors (strings unescaped by the strict parser
 * that verified the token), never parsed again here: a string goes as its
 * text, an array of strings joined with ',' (unless an element holds ',' or
 * a control character), anything else as its JSON text without the
 * whitespace between tokens.  Then every byte outside printable ASCII (the
 * UTF-8 of non-ASCII text), '%' itself and spaces at either end become %XX,
 * so the value is printable ASCII that decodes to the claim's exact text.
 * ASCII control characters in a string are never emitted (header
 * injection): GW_RENDER_BAD_BYTES.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "core/alloc.h"
#include "gw_internal.h"

static int is_control(unsigned char c) { return c < 0x20 || c == 0x7F; }

/* Append s[0..n) at out[*o]; GW_RENDER_* when it cannot be emitted. */
static int put_text(const char *s, size_t n, char *out, size_t cap, size_t *o) {
  for (size_t i = 0; i < n; i++)
    if (is_control((unsigned char)s[i])) return GW_RENDER_BAD_BYTES;
  if (n > cap - *o) return GW_RENDER_TOO_LONG;
  memcpy(out + *o, s, n);
  *o += n;
  return 0;
}

/* Strings of an array joined with ','; 1 when an element cannot be joined
 * (a ',' or a control character in it: the JSON form is used instead). */
static int join(const jwtkit_claims *cl, const char *name, size_t count, char *out, size_t cap, size_t *o) {
  for (size_t i = 0; i < count; i++) {
    const char *s;
    size_t n;
    if (jwtkit_claims_get_string_item(cl, name, i, &s, &n) != JWTKIT_OK || memchr(s, ',', n) != NULL) return 1;
    if (i > 0 && put_text(",", 1, out, cap, o) != 0) return GW_RENDER_TOO_LONG;
    int r = put_text(s, n, out, cap, o);
    if (r == GW_RENDER_BAD_BYTES) return 1;
    if (r != 0) return r;
  }
  return 0;
}

/* JSON text of a verified value without insignificant whitespace (the
 * verifier's strict parser already accepted it: only the blanks between
 * tokens go; escapes inside strings stay text).  JSON lets a string hold
 * a raw DEL (0x7F): such a value is GW_RENDER_BAD_BYTES like any control
 * character (found by fuzz/fuzz_gate_request.c). */
static long compact(const char *s, size_t len, char *out, size_t cap) {
  size_t o = 0;
  int in_str = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\' && i + 1 < len) {
        if (cap - o < 2) return GW_RENDER_TOO_LONG;
        out[o++] = c;
        out[o++] = s[++i];
        continue;
      }
      if (c == '"') in_str = 0;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      continue;
    } else if (c == '"') {
      in_str = 1;
    }
    if (is_control((unsigned char)c)) return GW_RENDER_BAD_BYTES;
    if (o >= cap) return GW_RENDER_TOO_LONG;
    out[o++] = c;
  }
  return (long)o;
}

/* The text before percent-encoding: the length or GW_RENDER_*. */
static long raw_text(const jwtkit_claims *cl, const char *name, char *out, size_t cap) {
  const char *s;
  size_t n, o = 0, count;
  jwtkit_err e = jwtkit_claims_get_string(cl, name, &s, &n);
  if (e == JWTKIT_ERR_NOT_FOUND) return GW_RENDER_MISSING;
  if (e == JWTKIT_OK) {
    int r = put_text(s, n, out, cap, &o);
    return r != 0 ? r : (long)o;
  }
  if (jwtkit_claims_get_string_list(cl, name, &count) == JWTKIT_OK) {
    int r = join(cl, name, count, out, cap, &o);
    if (r == 0) return (long)o;
    if (r < 0) return r;
  }
  if (jwtkit_claims_get_json(cl, name, &s, &n) != JWTKIT_OK) return GW_RENDER_MISSING;
  return compact(s, n, out, cap);
}

/* Bytes written as %XX: outside printable ASCII (UTF-8 text), '%' itself,
 * and spaces at either end, which HTTP would strip. */
static int needs_pct(const unsigned char *p, size_t n, size_t i, size_t lead, size_t trail) {
  unsigned char c = p[i];
  return c >= 0x80 || c == '%' || (c == ' ' && (i < lead || i >= n - trail));
}

/* The text in out[0..r) percent-encoded in place: the length or GW_RENDER_*. */
static long pct_encode(char *out, size_t cap, long r) {
  if (r < 0) return r;
  const unsigned char *p = (const unsigned char *)out;
  size_t n = (size_t)r, lead = 0, trail = 0, extra = 0;
  while (lead < n && p[lead] == ' ') lead++;
  while (trail < n - lead && p[n - 1 - trail] == ' ') trail++;
  for (size_t i = 0; i < n; i++) extra += needs_pct(p, n, i, lead, trail) ? 2 : 0;
  if (n + extra > cap) return GW_RENDER_TOO_LONG;
  /* expand in place from the end */
  static const char hx[] = "0123456789ABCDEF";
  size_t w = n + extra;
  for (size_t i = n; i-- > 0;) {
    unsigned char c = p[i];
    if (needs_pct(p, n, i, lead, trail)) {
      out[--w] = hx[c & 15];
      out[--w] = hx[c >> 4];
      out[--w] = '%';
    } else {
      out[--w] = (char)c;
    }
  }
  return (long)(n + extra);
}

long gw_render_claim(const jwtkit_claims *cl, const char *name, char *out, size_t cap) {
  return pct_encode(out, cap, raw_text(cl, name, out, cap));
}

/* raw_text for a member of a parsed object (node 0). */
static long raw_member(const jk_jdoc *doc, const char *name, char *out, size_t cap) {
  int idx = jk_json_get(doc, 0, name, strlen(name));
  if (idx < 0) return GW_RENDER_MISSING;
  const jk_jnode *n = &doc->nodes[idx];
  size_t o = 0;
  if (n->type == JK_J_STRING) {
    char *s = malloc((size_t)n->len + 1);
    if (s == NULL) return GW_RENDER_TOO_LONG;
    size_t sl = jk_json_unescape(doc, (uint32_t)idx, s);
    int r = put_text(s, sl, out, cap, &o);
    free(s);
    return r != 0 ? r : (long)o;
  }
  if (n->type == JK_J_ARRAY) {
    int joinable = 1;
    for (uint32_t c = jk_json_first(doc, (uint32_t)idx); c < n->end && joinable; c = jk_json_next(doc, c)) {
      const jk_jnode *it = &doc->nodes[c];
      if (it->type != JK_J_STRING) {
        joinable = 0;
        break;
      }
      char *s = malloc((size_t)it->len + 1);
      if (s == NULL) return GW_RENDER_TOO_LONG;
      size_t sl = jk_json_unescape(doc, c, s);
      int r = memchr(s, ',', sl) != NULL ? 1 : 0;
      if (r == 0 && o > 0 && put_text(",", 1, out, cap, &o) != 0) r = GW_RENDER_TOO_LONG;
      if (r == 0) r = put_text(s, sl, out, cap, &o);
      free(s);
      if (r == GW_RENDER_BAD_BYTES || r == 1) joinable = 0;
      else if (r != 0) return r;
    }
    if (joinable) return (long)o;
  }
  return compact(doc->src + n->off, n->len, out, cap);
}

long gw_render_json_member(const char *json, size_t len, const char *name, char *out, size_t cap) {
  jk_jdoc doc;
  if (jk_json_parse_alloc(&doc, json, len, 1, NULL) != JWTKIT_OK) return GW_RENDER_MISSING;
  long r = pct_encode(out, cap, raw_member(&doc, name, out, cap));
  jk_free(doc.nodes);
  return r;
}
