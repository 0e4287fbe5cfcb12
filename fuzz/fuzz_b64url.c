/*
 * b64url: the strict base64url codec (src/codec/b64url.h).
 *
 * Properties: whatever decodes re-encodes to exactly the input (only the
 * canonical form is accepted), within jk_b64url_dec_max; the input taken as
 * bytes encodes to jk_b64url_enc_len characters of the URL-safe alphabet
 * that decode back to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/b64url.h"
#include "common.h"

int jkf_b64url(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  size_t max = jk_b64url_dec_max(size);
  unsigned char *dec = malloc(max ? max : 1);
  JKF_CHECK(dec != NULL, "malloc");
  size_t dl = 0;
  if (jk_b64url_decode(dec, &dl, in, size) == 0) {
    JKF_CHECK(dl <= max, "decoded %zu bytes, bound %zu", dl, max);
    JKF_CHECK(size % 4 != 1, "accepted a length of 1 mod 4");
    size_t el = jk_b64url_enc_len(dl);
    JKF_CHECK(el == size, "decoded %zu bytes re-encode to %zu chars, input had %zu", dl, el, size);
    char *enc = malloc(el ? el : 1);
    JKF_CHECK(enc != NULL, "malloc");
    JKF_CHECK(jk_b64url_encode(enc, dec, dl) == el && memcmp(enc, in, el) == 0,
              "accepted a non-canonical encoding");
    free(enc);
  }
  free(dec);

  size_t el = jk_b64url_enc_len(size);
  char *enc = malloc(el ? el : 1);
  JKF_CHECK(enc != NULL, "malloc");
  JKF_CHECK(jk_b64url_encode(enc, data, size) == el, "encode length");
  for (size_t i = 0; i < el; i++) {
    char c = enc[i];
    JKF_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_',
              "encoder wrote %#x", (unsigned)(unsigned char)c);
  }
  unsigned char *back = malloc(jk_b64url_dec_max(el));
  JKF_CHECK(back != NULL, "malloc");
  size_t bl = 0;
  JKF_CHECK(jk_b64url_decode(back, &bl, enc, el) == 0, "own encoding refused");
  JKF_CHECK(bl == size && memcmp(back, data, size) == 0, "encode/decode round trip differs");
  free(back);
  free(enc);
  return 0;
}

JKF_ENTRY(jkf_b64url)
