/* Hexadecimal, lowercase out, either case in. */
#ifndef JK_HEX_H
#define JK_HEX_H

#include <stddef.h>

/* out gets 2n characters and a NUL (room for 2n + 1). */
void jk_hex_encode(const void *in, size_t n, char *out);
/* Decodes s[0..len) (len
 * even, at most 2 * cap digits) into out; the byte count, or -1. */
long jk_hex_decode(const char *s, size_t len, unsigned char *out, size_t cap);

#endif
