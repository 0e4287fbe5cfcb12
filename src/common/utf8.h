/* UTF-8: strict validation (RFC 3629: no overlongs, no surrogates, nothing
 * above U+10FFFF) and encoding of one code point. */
#ifndef JK_UTF8_H
#define JK_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* 1 when s[0..n) is valid UTF-8. */
int jk_utf8_valid(const unsigned char *s, size_t n);
/* Length (1..4) of the valid UTF-8 sequence at s[0..n), 0 when not valid. */
size_t jk_utf8_seq(const unsigned char *s, size_t n);
/* Encode cp (<= 0x10FFFF, not a surrogate) into out (4 bytes); the length,
 * or 0 for a value that is not a scalar value. */
size_t jk_utf8_encode(uint32_t cp, char out[4]);

#endif
