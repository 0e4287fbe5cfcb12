/* Strict base64url without padding (RFC 7515 §2, RFC 4648 §5). */
#ifndef JK_B64URL_H
#define JK_B64URL_H

#include <stddef.h>

/* Encoded length of n bytes (no padding, no NUL). */
static inline size_t jk_b64url_enc_len(size_t n) { return (n / 3) * 4 + ((n % 3) ? (n % 3) + 1 : 0); }
/* Upper bound of decoded length of an encoded string of n chars. */
static inline size_t jk_b64url_dec_max(size_t n) { return (n / 4) * 3 + 2; }

/* Encode; out must have jk_b64url_enc_len(n) bytes.  Returns chars written. */
size_t jk_b64url_encode(char *out, const unsigned char *in, size_t n);

/* Decode canonical base64url: alphabet A-Z a-z 0-9 - _ only, no padding, no
 * whitespace, length % 4 != 1, unused trailing bits zero.  out must hold
 * jk_b64url_dec_max(n) bytes.  Returns 0 and sets *outlen, or -1. */
int jk_b64url_decode(unsigned char *out, size_t *outlen, const char *in, size_t n);

/* Append the base64url of s[0..n) to a buffer. */
typedef struct jk_buf jk_buf;
void jk_buf_b64url(jk_buf *b, const unsigned char *s, size_t n);

#endif
