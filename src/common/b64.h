/* Strict standard base64 (RFC 4648 §4: A-Z a-z 0-9 + /, '=' padding), for
 * the places a protocol uses it instead of base64url: HTTP Basic
 * credentials (RFC 7617).  The strictness is base64url's (codec/b64url.h),
 * which this is built on: no whitespace, no characters outside the
 * alphabet, unused trailing bits zero; and the padding is mandatory. */
#ifndef JK_B64_H
#define JK_B64_H

#include <stddef.h>

/* Encoded length of n bytes, padding included (no NUL). */
static inline size_t jk_b64_enc_len(size_t n) { return (n + 2) / 3 * 4; }
/* Upper bound of the decoded length of n characters. */
static inline size_t jk_b64_dec_max(size_t n) { return n / 4 * 3; }

/* Encode; out must have jk_b64_enc_len(n) bytes.  Returns chars written. */
size_t jk_b64_encode(char *out, const unsigned char *in, size_t n);

/* Decode: the length a multiple of 4, '=' only as the last one or two
 * characters and exactly as many as the last group needs, the bits a
 * shorter last group leaves unused zero.  out must hold jk_b64_dec_max(n)
 * bytes.  Returns 0 and sets *outlen, or -1. */
int jk_b64_decode(unsigned char *out, size_t *outlen, const char *in, size_t n);

#endif
