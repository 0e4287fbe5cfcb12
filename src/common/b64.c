/* Standard base64 (b64.h) over the strict base64url codec: the two
 * alphabets differ only in the characters for 62 and 63, so the text is
 * translated and base64url does the work, a bounded chunk at a time. */
#include "common/b64.h"

#include "codec/b64url.h"
#include "core/alloc.h"

#define CHUNK 256 /* characters translated at a time (a multiple of 4) */

size_t jk_b64_encode(char *out, const unsigned char *in, size_t n) {
  size_t m = jk_b64url_encode(out, in, n);
  for (size_t i = 0; i < m; i++) {
    if (out[i] == '-') out[i] = '+';
    else if (out[i] == '_') out[i] = '/';
  }
  while (m % 4 != 0) out[m++] = '=';
  return m;
}

int jk_b64_decode(unsigned char *out, size_t *outlen, const char *in, size_t n) {
  if (n % 4 != 0) return -1;
  size_t pad = 0;
  while (pad < 2 && n > pad && in[n - 1 - pad] == '=') pad++;
  size_t m = n - pad; /* 4k, 4k + 3 (one '=') or 4k + 2 (two) characters of data */
  char tmp[CHUNK];
  size_t o = 0;
  int rc = 0;
  for (size_t i = 0; i < m && rc == 0; i += CHUNK) {
    size_t k = m - i < CHUNK ? m - i : CHUNK;
    for (size_t j = 0; j < k; j++) {
      char c = in[i + j];
      /* '-' and '_' are base64url's, never base64's; '=' inside is refused
       * by the base64url decoder */
      if (c == '-' || c == '_') rc = -1;
      tmp[j] = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    size_t got = 0;
    if (rc == 0 && jk_b64url_decode(out + o, &got, tmp, k) != 0) rc = -1;
    o += got;
  }
  jk_wipe(tmp, sizeof tmp); /* Basic credentials hold secrets */
  if (rc != 0) return -1;
  *outlen = o;
  return 0;
}
