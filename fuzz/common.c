/* Shared helpers of the libFuzzer harnesses; see common.h. */
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "core/alloc.h"

void jkf_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "\n*** jwtkit fuzz property violated at %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  abort();
}

jwtkit_key *jkf_key_from_jwk(const char *jwk, jwtkit_alg alg, const char *kid) {
  jwtkit_key *k = NULL;
  jwtkit_errinfo info;
  jwtkit_err rc = jwtkit_key_from_jwk(&k, alg, jwk, strlen(jwk), &info);
  JKF_CHECK(rc == JWTKIT_OK, "fixed key refused (%s: %s)", jwtkit_errname(rc), info.msg);
  if (kid != NULL) JKF_CHECK(jwtkit_key_set_kid(k, kid, strlen(kid)) == JWTKIT_OK, "set_kid");
  return k;
}

jwtkit_key *jkf_public_of(jwtkit_key *key) {
  if (jwtkit_key_kty(key) == JWTKIT_KTY_OCT) return jwtkit_key_ref(key);
  char *j = NULL;
  size_t jl = 0;
  JKF_CHECK(jwtkit_key_to_jwk(key, 0, &j, &jl) == JWTKIT_OK, "public JWK export");
  jwtkit_key *pub = NULL;
  jwtkit_errinfo info;
  jwtkit_err rc = jwtkit_key_from_jwk(&pub, jwtkit_key_alg(key), j, jl, &info);
  JKF_CHECK(rc == JWTKIT_OK, "public JWK re-import: %s (%s) of %s", jwtkit_errname(rc), info.msg, j);
  jwtkit_free(j);
  return pub;
}

int jkf_errinfo_sane(const jwtkit_errinfo *info) {
  return memchr(info->field, '\0', sizeof info->field) != NULL && memchr(info->msg, '\0', sizeof info->msg) != NULL;
}

int jkf_json_ok(const char *s, size_t n, int top_object) {
  jk_jdoc d;
  jwtkit_err rc = jk_json_parse_alloc(&d, s, n, top_object, NULL);
  if (rc != JWTKIT_OK) return 0;
  jk_free(d.nodes);
  return 1;
}

static void same_kid(const jwtkit_key *a, const jwtkit_key *b, const char *what) {
  const char *ka = jwtkit_key_kid(a), *kb = jwtkit_key_kid(b);
  JKF_CHECK((ka == NULL) == (kb == NULL) && (ka == NULL || strcmp(ka, kb) == 0), "%s: kid changed (%s -> %s)", what,
            ka ? ka : "(none)", kb ? kb : "(none)");
}

static void check_copy(const jwtkit_key *orig, const jwtkit_key *copy, int priv, const char *what) {
  JKF_CHECK(jwtkit_key_equal_public(orig, copy), "%s: re-imported key differs", what);
  JKF_CHECK(jwtkit_key_alg(orig) == jwtkit_key_alg(copy), "%s: algorithm changed", what);
  JKF_CHECK(jwtkit_key_can_sign(copy) == priv, "%s: can_sign %d, expected %d", what, jwtkit_key_can_sign(copy), priv);
  JKF_CHECK(jwtkit_key_bits(orig) == jwtkit_key_bits(copy), "%s: bits changed", what);
  char t1[44], t2[44];
  JKF_CHECK(jwtkit_key_thumbprint(orig, t1) == JWTKIT_OK && jwtkit_key_thumbprint(copy, t2) == JWTKIT_OK &&
                strcmp(t1, t2) == 0,
            "%s: thumbprint changed", what);
}

static jwtkit_key *via_jwk(jwtkit_key *key, int priv) {
  char *j = NULL;
  size_t jl = 0;
  jwtkit_err rc = jwtkit_key_to_jwk(key, priv, &j, &jl);
  JKF_CHECK(rc == JWTKIT_OK, "JWK export (private %d): %s", priv, jwtkit_errname(rc));
  JKF_CHECK(strlen(j) == jl, "JWK export: length %zu, strlen %zu", jl, strlen(j));
  JKF_CHECK(jkf_json_ok(j, jl, 1), "JWK export is not strict JSON: %s", j);
  jwtkit_key *copy = NULL;
  jwtkit_errinfo info;
  rc = jwtkit_key_from_jwk(&copy, JWTKIT_ALG_UNSPEC, j, jl, &info);
  JKF_CHECK(rc == JWTKIT_OK, "exported JWK (private %d) is refused on import: %s (%s): %s", priv, jwtkit_errname(rc),
            info.msg, j);
  jwtkit_free(j);
  check_copy(key, copy, priv, priv ? "private JWK round trip" : "public JWK round trip");
  same_kid(key, copy, "JWK round trip");
  return copy;
}

static void via_pem(jwtkit_key *key, int priv) {
  char *pem = NULL;
  size_t pl = 0;
  jwtkit_err rc = jwtkit_key_to_pem(key, priv, NULL, &pem, &pl);
  JKF_CHECK(rc == JWTKIT_OK, "PEM export (private %d): %s", priv, jwtkit_errname(rc));
  jwtkit_key *copy = NULL;
  jwtkit_errinfo info;
  rc = jwtkit_key_from_pem(&copy, jwtkit_key_alg(key), pem, pl, NULL, &info);
  JKF_CHECK(rc == JWTKIT_OK, "exported PEM (private %d) is refused on import: %s (%s)", priv, jwtkit_errname(rc),
            info.msg);
  jwtkit_free(pem);
  check_copy(key, copy, priv, priv ? "private PEM round trip" : "public PEM round trip");
  jwtkit_key_free(copy);
}

void jkf_key_roundtrip(jwtkit_key *key) {
  jwtkit_alg alg = jwtkit_key_alg(key);
  jwtkit_kty kty = jwtkit_key_kty(key);
  JKF_CHECK(alg != JWTKIT_ALG_UNSPEC && jwtkit_alg_kty(alg) == kty, "key family %d does not fit its alg %d", (int)kty,
            (int)alg);
  JKF_CHECK((kty == JWTKIT_KTY_EC || kty == JWTKIT_KTY_OKP) == (jwtkit_key_curve(key) != NULL), "curve name");
  char tp[44];
  JKF_CHECK(jwtkit_key_thumbprint(key, tp) == JWTKIT_OK && strlen(tp) == 43, "thumbprint");
  int can_sign = jwtkit_key_can_sign(key);
  jwtkit_key *pub;
  if (kty == JWTKIT_KTY_OCT) {
    char *j = NULL;
    size_t jl;
    JKF_CHECK(jwtkit_key_to_jwk(key, 0, &j, &jl) == JWTKIT_ERR_INVALID_ARG && j == NULL,
              "an HMAC key was exported as a public JWK");
    JKF_CHECK(jwtkit_key_to_pem(key, 0, NULL, &j, &jl) == JWTKIT_ERR_UNSUPPORTED && j == NULL, "HMAC key as PEM");
    jwtkit_key_free(via_jwk(key, 1));
    pub = jwtkit_key_ref(key);
  } else {
    pub = via_jwk(key, 0);
    via_pem(key, 0);
    if (can_sign) {
      jwtkit_key_free(via_jwk(key, 1));
      via_pem(key, 1);
    }
  }
  if (can_sign) {
    static const char claims[] = "{\"sub\":\"fuzz\",\"n\":[1,2.5,\"\\u00e9\"]}";
    char *tok = NULL;
    size_t tl = 0;
    jwtkit_errinfo info;
    jwtkit_err rc = jwtkit_sign(key, NULL, claims, sizeof claims - 1, &tok, &tl, &info);
    JKF_CHECK(rc == JWTKIT_OK, "a key that can sign does not sign: %s (%s)", jwtkit_errname(rc), info.msg);
    jwtkit_policy *p = jwtkit_policy_new();
    JKF_CHECK(p != NULL, "policy_new");
    JKF_CHECK(jwtkit_policy_allow_alg(p, alg) == JWTKIT_OK && jwtkit_policy_add_key(p, pub) == JWTKIT_OK &&
                  jwtkit_policy_set_require_exp(p, 0) == JWTKIT_OK,
              "policy setup");
    jwtkit_verifier *v = NULL;
    rc = jwtkit_verifier_new(&v, p, &info);
    JKF_CHECK(rc == JWTKIT_OK, "verifier_new: %s (%s)", jwtkit_errname(rc), info.msg);
    rc = jwtkit_verify(v, tok, tl, NULL, &info);
    JKF_CHECK(rc == JWTKIT_OK, "a token signed by the key does not verify with its public key: %s (%s)",
              jwtkit_errname(rc), info.msg);
    jwtkit_verifier_free(v);
    jwtkit_policy_free(p);
    jwtkit_free(tok);
  }
  jwtkit_key_free(pub);
}
const char jkf_rfc7515_a1_hs256[] =
    "{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUu"
    "TwjAzZr1Z9CAow\"}"
    ;
const char jkf_rfc7515_a2_rs256_pub[] =
    "{\"kty\":\"RSA\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qP"
    "CJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LO"
    "L-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5Zw"
    "Kh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"
    "\",\"e\":\"AQAB\"}"
    ;
const char jkf_rfc7515_a3_es256[] =
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\"x_FEzRu9m"
    "36HLN_tue659LNpXW6pCyStikYjKIWI5a0\",\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"}"
    ;
const char jkf_rfc7515_a4_es512_pub[] =
    "{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjF"
    "Z6OvLFV1jSfS9tsz4qUxcWceqwQGk\",\"y\":\"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhj"
    "Dly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2\"}"
    ;
const char jkf_rfc8037_ed25519[] =
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\",\"x\":\"11qYAY"
    "KxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}"
    ;
const char jkf_rfc7520_rsa[] =
    "{\"kty\":\"RSA\",\"n\":\"n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTD"
    "vNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ"
    "6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVb"
    "b9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw"
    "\",\"e\":\"AQAB\",\"d\":\"bWUC9B-EFRIo8kpGfh0ZuyGPvMNKvYWNtB_ikiH9k20eT-O1q_I78eiZkpXxXQ0UTEs2LsNR"
    "S-8uJbvQ-A1irkwMSMkK1J3XTGgdrhCku9gRldY7sNA_AKZGh-Q661_42rINLRCe8W-nZ34ui_qOfkLnK9QWDDqpaI"
    "sA-bMwWWSDFu2MUBYwkHTMEzLYGqOe04noqeq1hExBTHBOBdkMXiuFhUq1BU6l-DqEiWxqg82sXt2h-LMnT3046AOY"
    "JoRioz75tSUQfGCshWTBnP5uDjd18kKhyv07lhfSJdrPdM5Plyl21hsFf4L_mHCuoFau7gdsPfHPxxjVOcOpBrQzwQ"
    "\",\"p\":\"3Slxg_DwTXJcb6095RoXygQCAZ5RnAvZlno1yhHtnUex_fp7AZ_9nRaO7HX_-SFfGQeutao2TDjDAWU4Vup"
    "k8rw9JR0AzZ0N2fvuIAmr_WCsmGpeNqQnev1T7IyEsnh8UMt-n5CafhkikzhEsrmndH6LxOrvRJlsPp6Zv8bUq0k\","
    "\"q\":\"uKE2dh-cTf6ERF4k4e_jy78GfPYUIaUyoSSJuBzp3Cubk3OCqs6grT8bR_cu0Dm1MZwWmtdqDyI95HrUeq3MP"
    "15vMMON8lHTeZu2lmKvwqW7anV5UzhM1iZ7z4yMkuUwFWoBvyY898EXvRD-hdqRxHlSqAZ192zB3pVFJ0s7pFc\",\"d"
    "p\":\"B8PVvXkvJrj2L-GYQ7v3y9r6Kw5g9SahXBwsWUzp19TVlgI-YV85q1NIb1rxQtD-IsXXR3-TanevuRPRt5OBOd"
    "iMGQp8pbt26gljYfKU_E9xn-RULHz0-ed9E9gXLKD4VGngpz-PfQ_q29pk5xWHoJp009Qf1HvChixRX59ehik\",\"dq"
    "\":\"CLDmDGduhylc9o7r84rEUVn7pzQ6PF83Y-iBZx5NT-TpnOZKF1pErAMVeKzFEl41DlHHqqBLSM0W1sOFbwTxYWZ"
    "Dm6sI6og5iTbwQGIC3gnJKbi_7k_vJgGHwHxgPaX2PnvP-zyEkDERuf-ry4c_Z11Cq9AqC2yeL6kdKT1cYF8\",\"qi\""
    ":\"3PiqvXQN0zwMeE-sBvZgi289XP9XCQF3VWqPzMKnIgQp7_Tugo6-NZBKCQsMf3HaEGBjTVJs_jcK8-TRXvaKe-7Z"
    "MaQj8VfBdYkssbu0NKDDhjJ-GtiseaDVWt7dcH0cfwxgFUHpQh7FoCrjFJ6h6ZEpMF6xmujs4qMpPz8aaI4\"}"
    ;
const char jkf_rfc7520_ec[] =
    "{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkT"
    "KqjqvjyekWF-7ytDyRXYgCF5cj0Kt\",\"y\":\"AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVy"
    "SsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1\",\"d\":\"AAhRON2r9cqXX1hg-RoI6R1tX5p2rUAYdmpHZoC1XNM56Ktsc"
    "rX6zbKipQrCW9CGZH3T4ubpnoTKLDYJ_fF3_rJt\"}"
    ;
const char jkf_rfc7520_hmac[] =
    "{\"kty\":\"oct\",\"k\":\"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg\"}"
    ;
