/* The public helpers of jwtkit/util.h, over the internal ones. */
#include "jwtkit/util.h"

#include "codec/b64url.h"
#include "core/alloc.h"
#include "common/file.h"
#include "crypto/seal.h"

jwtkit_err jwtkit_read_secret_file(const char *path, size_t max, char **data, size_t *len, jwtkit_errinfo *info) {
  return jk_read_secret_file(path, max, data, len, info);
}

jwtkit_err jwtkit_check_secret_mode(const char *path, unsigned mode, jwtkit_errinfo *info) {
  return jk_check_secret_mode(path ? path : "the file", (mode_t)mode, info);
}

int jwtkit_random(void *buf, size_t n) { return buf == NULL ? -1 : jk_random(buf, n); }

void jwtkit_free_secret(void *p, size_t n) { jk_free_secret(p, n); }
void jwtkit_wipe(void *p, size_t n) {
  if (p != NULL) jk_wipe(p, n);
}
int jwtkit_memeq(const void *a, const void *b, size_t n) { return jk_ct_equal(a, b, n); }

size_t jwtkit_b64url_encoded_len(size_t n) { return jk_b64url_enc_len(n); }
size_t jwtkit_b64url_decoded_max(size_t n) { return jk_b64url_dec_max(n); }
size_t jwtkit_b64url_encode(char *out, const void *in, size_t n) { return jk_b64url_encode(out, in, n); }
int jwtkit_b64url_decode(void *out, size_t *out_len, const char *in, size_t n) {
  return jk_b64url_decode(out, out_len, in, n);
}
