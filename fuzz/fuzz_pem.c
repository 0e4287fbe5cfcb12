/*
 * pem: jwtkit_key_from_pem and jwtkit_key_from_der on any bytes, without
 * and with a passphrase, for UNSPEC and the algorithms that can make a
 * difference (HS256 must always be refused: a PEM or DER can never become
 * an HMAC key; another family's algorithm must be refused).
 * DER is tried only on inputs that start with a SEQUENCE tag (0x30).
 * Properties when an import succeeds: the key is bound as asked and
 * survives the export/re-import round trip (jkf_key_roundtrip, once per
 * input).  When the library has the PEM validator (jwtkit_pem_check,
 * include/jwtkit/pem.h), it runs on the text too: the report's strings are
 * printable ASCII, its counts agree, and its JSON form is strict JSON.
 */
#include <string.h>

#include "common.h"
#ifdef JKF_HAVE_PEM_CHECK
#include "jwtkit/pem.h"
#endif

static void after(jwtkit_err rc, jwtkit_key *k, const jwtkit_errinfo *info, jwtkit_alg alg, int *checked,
                  const char *what) {
  if (rc != JWTKIT_OK) {
    JKF_CHECK(k == NULL, "%s: failed import left a key", what);
    JKF_CHECK(jkf_errinfo_sane(info), "%s: errinfo", what);
    return;
  }
  JKF_CHECK(k != NULL, "%s: OK without a key", what);
  JKF_CHECK(jwtkit_key_kty(k) != JWTKIT_KTY_OCT, "%s produced an HMAC key", what);
  if (alg != JWTKIT_ALG_UNSPEC) JKF_CHECK(jwtkit_key_alg(k) == alg, "%s: bound to another algorithm", what);
  JKF_CHECK(jwtkit_key_kid(k) == NULL, "%s: a kid out of nowhere", what);
  if (!*checked) {
    jkf_key_roundtrip(k);
    *checked = 1;
  }
  jwtkit_key_free(k);
}

#ifdef JKF_HAVE_PEM_CHECK
static int printable(const char *s, size_t cap) {
  const char *end = memchr(s, '\0', cap);
  if (end == NULL) return 0;
  for (; s < end; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) return 0;
  return 1;
}

static void pem_check(const char *text, size_t size, const char *pass) {
  jwtkit_pem_report *r = NULL;
  jwtkit_err rc = jwtkit_pem_check(text, size, pass, &r);
  JKF_CHECK(rc == JWTKIT_OK || rc == JWTKIT_ERR_NOMEM, "pem_check: %s", jwtkit_errname(rc));
  if (rc != JWTKIT_OK) return;
  JKF_CHECK(jwtkit_pem_report_files(r) == 1 && jwtkit_pem_report_path(r, 0) == NULL, "text report files");
  size_t nb = jwtkit_pem_report_blocks(r), nf = jwtkit_pem_report_findings(r);
  JKF_CHECK(nb <= JWTKIT_PEM_MAX_BLOCKS + 1 && nf <= JWTKIT_PEM_MAX_FINDINGS, "report sizes %zu/%zu", nb, nf);
  for (size_t i = 0; i < nb; i++) {
    const jwtkit_pem_block *b = jwtkit_pem_report_block(r, i);
    JKF_CHECK(b != NULL && b->file == 0, "block %zu", i);
    JKF_CHECK(printable(b->label, sizeof b->label) && printable(b->family, sizeof b->family) &&
                  printable(b->curve, sizeof b->curve),
              "block %zu strings are not printable ASCII", i);
    JKF_CHECK(strcmp(jwtkit_pem_type_name(b->type), "unknown") != 0 || b->type == JWTKIT_PEM_UNKNOWN,
              "block %zu type %d", i, (int)b->type);
  }
  JKF_CHECK(jwtkit_pem_report_block(r, nb) == NULL, "block past the end");
  size_t total = 0;
  for (size_t i = 0; i < nf; i++) {
    const jwtkit_pem_finding *f = jwtkit_pem_report_finding(r, i);
    JKF_CHECK(f != NULL && f->file == 0, "finding %zu", i);
    JKF_CHECK(printable(f->msg, sizeof f->msg), "finding %zu message is not printable ASCII", i);
    JKF_CHECK(f->block >= -1 && (f->block < 0 || (size_t)f->block < nb), "finding %zu block %d of %zu", i, f->block,
              nb);
    JKF_CHECK(strcmp(jwtkit_pem_problem_name(f->problem), "unknown") != 0, "finding %zu problem %d", i,
              (int)f->problem);
  }
  for (int p = 1; p <= 64; p++) total += jwtkit_pem_report_count(r, (jwtkit_pem_problem)p);
  JKF_CHECK(total == nf, "per-problem counts add up to %zu, %zu findings", total, nf);
  JKF_CHECK(jwtkit_pem_report_finding(r, nf) == NULL, "finding past the end");
  char *json = NULL;
  size_t jl = 0;
  rc = jwtkit_pem_report_to_json(r, NULL, &json, &jl);
  JKF_CHECK(rc == JWTKIT_OK, "report_to_json: %s", jwtkit_errname(rc));
  JKF_CHECK(strlen(json) == jl && jkf_json_ok(json, jl, 1), "report JSON is not strict JSON: %s", json);
  jwtkit_free(json);
  jwtkit_pem_report_free(r);
}
#endif

/* One PEM import; returns the result and the bound algorithm in *got. */
static jwtkit_err pem_one(const char *text, size_t size, const char *pass, jwtkit_alg alg, jwtkit_alg *got,
                          int *checked) {
  jwtkit_key *k = (jwtkit_key *)&k;
  jwtkit_errinfo info;
  memset(&info, 0x5a, sizeof info);
  jwtkit_err rc = jwtkit_key_from_pem(&k, alg, text, size, pass, &info);
  *got = rc == JWTKIT_OK ? jwtkit_key_alg(k) : JWTKIT_ALG_UNSPEC;
  after(rc, k, &info, alg, checked, pass ? "from_pem with passphrase" : "from_pem");
  return rc;
}

/* OpenSSL's decoder costs about a millisecond per call (ten under ASan),
 * so after the UNSPEC import only what can differ is tried: the key's own
 * algorithm (must be accepted), another family's (must be refused), and
 * HS256 (must be refused); RSA (INVALID_ARG without an algorithm) gets
 * RS256 and PS384. */
static void pem_all(const char *text, size_t size, const char *pass, int *checked) {
  jwtkit_alg got = JWTKIT_ALG_UNSPEC, g2;
  jwtkit_err rc = pem_one(text, size, pass, JWTKIT_ALG_UNSPEC, &got, checked);
  if (rc == JWTKIT_ERR_PASSPHRASE && pass == NULL) {
    pem_all(text, size, "fuzz-pass", checked);
    return;
  }
  if (rc == JWTKIT_OK) {
    JKF_CHECK(pem_one(text, size, pass, got, &g2, checked) == JWTKIT_OK, "UNSPEC gives %s, explicit %s fails",
              jwtkit_alg_name(got), jwtkit_alg_name(got));
    jwtkit_alg other = jwtkit_alg_kty(got) == JWTKIT_KTY_EC ? JWTKIT_ALG_EDDSA : JWTKIT_ALG_ES256;
    JKF_CHECK(pem_one(text, size, pass, other, &g2, checked) != JWTKIT_OK, "%s key bound to %s",
              jwtkit_alg_name(got), jwtkit_alg_name(other));
  } else if (rc == JWTKIT_ERR_INVALID_ARG) {
    (void)pem_one(text, size, pass, JWTKIT_ALG_RS256, &g2, checked);
    (void)pem_one(text, size, pass, JWTKIT_ALG_PS384, &g2, checked);
    JKF_CHECK(pem_one(text, size, pass, JWTKIT_ALG_ES256, &g2, checked) != JWTKIT_OK, "RSA key bound to ES256");
  } else {
    return;
  }
  JKF_CHECK(pem_one(text, size, pass, JWTKIT_ALG_HS256, &g2, checked) != JWTKIT_OK, "PEM became an HMAC key");
}

static const jwtkit_alg k_der_algs[] = {JWTKIT_ALG_UNSPEC, JWTKIT_ALG_RS256, JWTKIT_ALG_PS384, JWTKIT_ALG_ES256,
                                        JWTKIT_ALG_EDDSA, JWTKIT_ALG_HS256};

static void der_all(const uint8_t *data, size_t size, int *checked) {
  /* DER keys are SEQUENCEs: skip the decoders for anything else */
  if (size == 0 || data[0] != 0x30) return;
  for (size_t i = 0; i < sizeof k_der_algs / sizeof *k_der_algs; i++) {
    jwtkit_alg alg = k_der_algs[i];
    jwtkit_key *k = (jwtkit_key *)&k;
    jwtkit_errinfo info;
    memset(&info, 0x5a, sizeof info);
    jwtkit_err rc = jwtkit_key_from_der(&k, alg, data, size, &info);
    after(rc, k, &info, alg, checked, "from_der");
    if (alg == JWTKIT_ALG_HS256) JKF_CHECK(rc != JWTKIT_OK, "DER became an HMAC key");
  }
}

int jkf_pem(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  int checked = 0;
  pem_all(text, size, NULL, &checked);
  der_all(data, size, &checked);
#ifdef JKF_HAVE_PEM_CHECK
  pem_check(text, size, NULL);
  pem_check(text, size, "fuzz-pass");
#endif
  return 0;
}

JKF_ENTRY(jkf_pem)
