/* ETags and If-None-Match (RFC 9110 §8.8.3, §13.1.2). */
#include <string.h>

#include "codec/b64url.h"
#include "crypto/seal.h"
#include "serve.h"

void sv_etag(const void *body, size_t len, char out[48]) {
  unsigned char md[32];
  out[0] = '"';
  if (jk_sha256_2(body, len, NULL, 0, md) != 0) memset(md, 0, sizeof md); /* cannot happen with the default provider */
  size_t n = jk_b64url_encode(out + 1, md, sizeof md);
  out[1 + n] = '"';
  out[2 + n] = '\0';
}

static int ows(char c) { return c == ' ' || c == '\t'; }

/* etagc = %x21 / %x23-7E / obs-text */
static int etagc(unsigned char c) { return c == 0x21 || (c >= 0x23 && c <= 0x7E) || c >= 0x80; }

int sv_if_none_match(const char *field, const char *etag) {
  if (field == NULL || etag == NULL) return 0;
  const char *p = field;
  while (ows(*p)) p++;
  size_t n = strlen(p);
  while (n > 0 && ows(p[n - 1])) n--;
  if (n == 1 && p[0] == '*') return 1; /* any current representation */
  /* opaque part of our own tag (between the quotes) */
  size_t el = strlen(etag);
  if (el < 2 || etag[0] != '"' || etag[el - 1] != '"') return 0;
  const char *eo = etag + 1;
  size_t eol = el - 2;
  const char *end = p + n;
  int matched = 0, elements = 0;
  while (p < end) {
    /* #rule: empty list elements are allowed */
    while (p < end && (ows(*p) || *p == ',')) p++;
    if (p >= end) break;
    if (end - p >= 2 && p[0] == 'W' && p[1] == '/') p += 2; /* weak comparison ignores W/ */
    if (p >= end || *p != '"') return 0;
    const char *o = ++p;
    while (p < end && *p != '"') {
      if (!etagc((unsigned char)*p)) return 0;
      p++;
    }
    if (p >= end) return 0; /* unterminated */
    size_t ol = (size_t)(p - o);
    p++;
    if (ol == eol && memcmp(o, eo, ol) == 0) matched = 1;
    elements++;
    while (p < end && ows(*p)) p++;
    if (p < end && *p != ',') return 0;
  }
  return elements > 0 && matched;
}
