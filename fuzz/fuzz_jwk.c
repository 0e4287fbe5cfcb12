/*
 * jwk: jwtkit_key_from_jwk with JWTKIT_ALG_UNSPEC and with every algorithm.
 *
 * Properties when an import succeeds: the key is bound to the requested
 * algorithm (or, for UNSPEC, to one of the family the JWK names); its public
 * JWK (and private JWK and PEMs, when it can sign) export and re-import to
 * an equal key with the same algorithm, kid and thumbprint; a key that can
 * sign produces a token its public half verifies (jkf_key_roundtrip, done
 * once per input).  An import that fails leaves *out NULL with a sane
 * errinfo.
 */
#include <string.h>

#include "common.h"

/* Every algorithm besides UNSPEC. */
static const jwtkit_alg k_algs[] = {JWTKIT_ALG_HS256, JWTKIT_ALG_HS384, JWTKIT_ALG_HS512, JWTKIT_ALG_RS256,
                                    JWTKIT_ALG_RS384, JWTKIT_ALG_RS512, JWTKIT_ALG_PS256, JWTKIT_ALG_PS384,
                                    JWTKIT_ALG_PS512, JWTKIT_ALG_ES256, JWTKIT_ALG_ES384, JWTKIT_ALG_ES512,
                                    JWTKIT_ALG_EDDSA};

/* Import with alg; 1 on success (after the per-key checks). */
static int import(const char *json, size_t size, jwtkit_alg alg, jwtkit_alg *got, int *checked) {
  jwtkit_key *k = (jwtkit_key *)&k;
  jwtkit_errinfo info;
  memset(&info, 0x5a, sizeof info);
  jwtkit_err rc = jwtkit_key_from_jwk(&k, alg, json, size, &info);
  if (rc != JWTKIT_OK) {
    JKF_CHECK(k == NULL, "failed import left a key");
    JKF_CHECK(jkf_errinfo_sane(&info), "errinfo not NUL-terminated");
    JKF_CHECK(info.code == rc, "import returned %s, errinfo says %s", jwtkit_errname(rc), jwtkit_errname(info.code));
    return 0;
  }
  JKF_CHECK(k != NULL, "import OK without a key");
  *got = jwtkit_key_alg(k);
  if (alg != JWTKIT_ALG_UNSPEC)
    JKF_CHECK(*got == alg, "asked for %s, got %s", jwtkit_alg_name(alg), jwtkit_alg_name(*got));
  if (!*checked) {
    jkf_key_roundtrip(k);
    *checked = 1;
  }
  jwtkit_key_free(k);
  return 1;
}

int jkf_jwk(const uint8_t *data, size_t size) {
  const char *json = (const char *)data;
  int checked = 0;
  jwtkit_alg unspec = JWTKIT_ALG_UNSPEC, got = JWTKIT_ALG_UNSPEC;
  int unspec_ok = import(json, size, JWTKIT_ALG_UNSPEC, &unspec, &checked);
  int explicit_ok = 0;
  for (size_t i = 0; i < sizeof k_algs / sizeof *k_algs; i++)
    if (import(json, size, k_algs[i], &got, &checked) && k_algs[i] == unspec) explicit_ok = 1;
  /* what UNSPEC picks must also be accepted when asked for explicitly */
  JKF_CHECK(!unspec_ok || explicit_ok, "UNSPEC import gave %s, an explicit %s import failed", jwtkit_alg_name(unspec),
            jwtkit_alg_name(unspec));
  return 0;
}

JKF_ENTRY(jkf_jwk)
