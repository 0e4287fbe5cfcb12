/*
 * jwtkit/util.h - the small helpers jwtkit's own programs use, for yours:
 * the secret-file rule, wiping, constant-time comparison, strict base64url.
 */
#ifndef JWTKIT_UTIL_H
#define JWTKIT_UTIL_H

#include <stddef.h>

#include "error.h"
#include "key.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Read a file that holds a secret (an HMAC secret, a passphrase, a list of
 * key-encryption keys, a client list, a private key) with the one rule
 * every jwtkit program applies: the file is opened, and the OPENED
 * descriptor must be a regular file that gives group and others no access
 * at all (mode & 077 == 0; JWTKIT_ERR_PERMISSION otherwise, with the mode and
 * "chmod 600" in the message), of at most max bytes (JWTKIT_ERR_TOO_LARGE).
 * *data is NUL-terminated (len + 1 bytes); release it with
 * jwtkit_free_secret(*data, *len + 1).  len may be NULL. */
JWTKIT_NODISCARD jwtkit_err jwtkit_read_secret_file(const char *path, size_t max, char **data,
                                                    size_t *len, jwtkit_errinfo *info);

/* The same rule for a file you have already read, knowing only now that it
 * holds a secret (a private key PEM among public ones): mode is the
 * st_mode of the opened descriptor (fstat).  JWTKIT_OK or
 * JWTKIT_ERR_PERMISSION. */
JWTKIT_NODISCARD jwtkit_err jwtkit_check_secret_mode(const char *path, unsigned mode,
                                                     jwtkit_errinfo *info);

/* n bytes from the operating system's CSPRNG (through OpenSSL).  0, or -1
 * when it failed (never partial output). */
JWTKIT_NODISCARD int jwtkit_random(void *buf, size_t n);

/* Wipe n bytes (never optimised away), then free p (from jwtkit). */
void jwtkit_free_secret(void *p, size_t n);
/* Wipe n bytes of your own memory. */
void jwtkit_wipe(void *p, size_t n);
/* 1 when the n bytes at a and b are equal; the time taken does not depend
 * on where they differ. */
int jwtkit_memeq(const void *a, const void *b, size_t n);

/* Base64url without padding (RFC 7515 §2).  Encoding writes
 * jwtkit_b64url_encoded_len(n) characters (no NUL) and returns that count.
 * Decoding is strict (alphabet only, no padding or whitespace, unused bits
 * zero) and needs room for jwtkit_b64url_decoded_max(n) bytes; it returns 0
 * and sets *out_len, or -1 for text that is not canonical base64url. */
size_t jwtkit_b64url_encoded_len(size_t n);
size_t jwtkit_b64url_decoded_max(size_t n);
size_t jwtkit_b64url_encode(char *out, const void *in, size_t n);
int jwtkit_b64url_decode(void *out, size_t *out_len, const char *in, size_t n);

#ifdef __cplusplus
}
#endif
#endif
