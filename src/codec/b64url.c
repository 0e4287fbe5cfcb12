#include "b64url.h"

#include "common/buf.h"

#include <stdint.h>

static const char k_enc[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0..63 for alphabet characters, 0xFF otherwise. */
static const uint8_t k_dec[256] = {
#define X 0xFF
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0x00 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  /* 0x10 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  62, X,  X,  /* 0x20 '-' */
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X,  X,  X,  X,  X,  X,  /* 0x30 digits */
    X,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, /* 0x40 */
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X,  X,  X,  X,  63, /* 0x50 '_' */
    X,  26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, /* 0x60 */
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X,  X,  X,  X,  X,  /* 0x70 */
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
#undef X
};

size_t jk_b64url_encode(char *out, const unsigned char *in, size_t n) {
  char *o = out;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
    o[0] = k_enc[(v >> 18) & 63];
    o[1] = k_enc[(v >> 12) & 63];
    o[2] = k_enc[(v >> 6) & 63];
    o[3] = k_enc[v & 63];
    o += 4;
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    *o++ = k_enc[(v >> 18) & 63];
    *o++ = k_enc[(v >> 12) & 63];
  } else if (n - i == 2) {
    uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
    *o++ = k_enc[(v >> 18) & 63];
    *o++ = k_enc[(v >> 12) & 63];
    *o++ = k_enc[(v >> 6) & 63];
  }
  return (size_t)(o - out);
}

int jk_b64url_decode(unsigned char *out, size_t *outlen, const char *in, size_t n) {
  const unsigned char *s = (const unsigned char *)in;
  size_t rem = n % 4;
  if (rem == 1) return -1;
  size_t full = n - rem;
  unsigned char *o = out;
  for (size_t i = 0; i < full; i += 4) {
    uint32_t a = k_dec[s[i]], b = k_dec[s[i + 1]], c = k_dec[s[i + 2]], d = k_dec[s[i + 3]];
    if ((a | b | c | d) & 0xC0) return -1;
    uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
    o[0] = (unsigned char)(v >> 16);
    o[1] = (unsigned char)(v >> 8);
    o[2] = (unsigned char)v;
    o += 3;
  }
  if (rem == 2) {
    uint32_t a = k_dec[s[full]], b = k_dec[s[full + 1]];
    if ((a | b) & 0xC0) return -1;
    if (b & 0x0F) return -1; /* non-canonical: unused bits set */
    *o++ = (unsigned char)((a << 2) | (b >> 4));
  } else if (rem == 3) {
    uint32_t a = k_dec[s[full]], b = k_dec[s[full + 1]], c = k_dec[s[full + 2]];
    if ((a | b | c) & 0xC0) return -1;
    if (c & 0x03) return -1;
    uint32_t v = (a << 10) | (b << 4) | (c >> 2);
    *o++ = (unsigned char)(v >> 8);
    *o++ = (unsigned char)v;
  }
  *outlen = (size_t)(o - out);
  return 0;
}

void jk_buf_b64url(jk_buf *b, const unsigned char *s, size_t n) {
  size_t m = jk_b64url_enc_len(n);
  if (jk_buf_reserve(b, m) != 0) return;
  jk_b64url_encode(b->p + b->len, s, n);
  b->len += m;
  b->p[b->len] = '\0';
}

