/* Hexadecimal (hex.h). */
#include "common/hex.h"

static int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void jk_hex_encode(const void *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  const unsigned char *p = in;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

long jk_hex_decode(const char *s, size_t len, unsigned char *out, size_t cap) {
  if (len % 2 != 0 || len / 2 > cap) return -1;
  for (size_t i = 0; i < len / 2; i++) {
    int h = nibble(s[2 * i]), l = nibble(s[2 * i + 1]);
    if (h < 0 || l < 0) return -1;
    out[i] = (unsigned char)(h << 4 | l);
  }
  return (long)(len / 2);
}
