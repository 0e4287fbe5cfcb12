/* PEM validator: one fixture per problem code, generated at run time (keys
 * from OpenSSL, damage by string surgery, modes by chmod), and every good
 * key kind passing clean with the right description. */
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* ------------------------------------------------------------ fixtures */

static char g_dir[64];
static char g_paths[128][128];
static size_t g_npaths;

/* RSA 4096 keygen takes 1..7 s: it runs on a thread from the start of the
 * run, and test_good_keys (its only user) runs last. */
static pthread_t g_rsa4096_thread;
static int g_rsa4096_started;
static EVP_PKEY *g_rsa4096;

static void *gen_rsa4096(void *arg) {
  (void)arg;
  g_rsa4096 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
  return NULL;
}

static EVP_PKEY *join_rsa4096(void) {
  if (g_rsa4096_started) {
    pthread_join(g_rsa4096_thread, NULL);
    g_rsa4096_started = 0;
  }
  return g_rsa4096;
}

static int setup_dir(void **state) {
  (void)state;
  g_rsa4096_started = pthread_create(&g_rsa4096_thread, NULL, gen_rsa4096, NULL) == 0;
  snprintf(g_dir, sizeof g_dir, "/tmp/jwtkit-pem-XXXXXX");
  return mkdtemp(g_dir) == NULL ? -1 : 0;
}

static void free_keys(void);

static int teardown_dir(void **state) {
  (void)state;
  for (size_t i = 0; i < g_npaths; i++) unlink(g_paths[i]);
  free_keys();
  EVP_PKEY_free(join_rsa4096()); /* NULL when the key cache took it */
  return rmdir(g_dir);
}

/* Write a file in the test directory with the given mode; returns its path
 * (valid until the end of the run). */
static const char *write_file(const char *name, const char *data, size_t len, mode_t mode) {
  assert_true(g_npaths < sizeof g_paths / sizeof *g_paths);
  char *path = g_paths[g_npaths];
  snprintf(path, sizeof g_paths[0], "%s/%s", g_dir, name);
  int known = 0;
  for (size_t i = 0; i < g_npaths; i++) known |= strcmp(g_paths[i], path) == 0;
  if (!known) g_npaths++;
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(chmod(path, mode), 0);
  return path;
}

static const char *write_text(const char *name, const char *text, mode_t mode) {
  return write_file(name, text, strlen(text), mode);
}

/* Keys are generated once per run (RSA 4096 is slow). */
static struct {
  char type[16], arg[24];
  EVP_PKEY *pk;
} g_keys[32];
static size_t g_nkeys;

static void free_keys(void) {
  for (size_t i = 0; i < g_nkeys; i++) EVP_PKEY_free(g_keys[i].pk);
  g_nkeys = 0;
}

static EVP_PKEY *rsa_with_e(const char *type, unsigned bits, unsigned long e) {
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
  assert_non_null(ctx);
  assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
  assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits), 1);
  BIGNUM *bn = BN_new();
  assert_int_equal(BN_set_word(bn, e), 1);
  assert_int_equal(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, bn), 1);
  BN_free(bn);
  EVP_PKEY *pk = NULL;
  assert_int_equal(EVP_PKEY_keygen(ctx, &pk), 1);
  EVP_PKEY_CTX_free(ctx);
  return pk;
}

/* type "RSA" (arg = bits), "RSA-E3" (arg = bits), "RSA-PSS", "EC" (arg =
 * curve), "ED25519", ...; arg may carry a suffix to get a second key. */
static EVP_PKEY *key(const char *type, const char *arg) {
  for (size_t i = 0; i < g_nkeys; i++)
    if (strcmp(g_keys[i].type, type) == 0 && strcmp(g_keys[i].arg, arg ? arg : "") == 0) return g_keys[i].pk;
  assert_true(g_nkeys < sizeof g_keys / sizeof *g_keys);
  EVP_PKEY *pk;
  if (strcmp(type, "RSA") == 0 && strcmp(arg, "4096") == 0) {
    pk = join_rsa4096();
    g_rsa4096 = NULL; /* the cache owns it now */
  } else if (strcmp(type, "RSA") == 0)
    pk = EVP_PKEY_Q_keygen(NULL, NULL, type, (size_t)atoi(arg));
  else if (strcmp(type, "RSA-PSS") == 0)
    pk = rsa_with_e("RSA-PSS", (unsigned)atoi(arg), 65537);
  else if (strcmp(type, "RSA-E3") == 0)
    pk = rsa_with_e("RSA", (unsigned)atoi(arg), 3);
  else if (strcmp(type, "EC") == 0) {
    char curve[24];
    snprintf(curve, sizeof curve, "%s", arg);
    char *hash = strchr(curve, '#'); /* "P-256#2": a second P-256 key */
    if (hash) *hash = '\0';
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
  } else {
    pk = EVP_PKEY_Q_keygen(NULL, NULL, type);
  }
  assert_non_null(pk);
  snprintf(g_keys[g_nkeys].type, sizeof g_keys[0].type, "%s", type);
  snprintf(g_keys[g_nkeys].arg, sizeof g_keys[0].arg, "%s", arg ? arg : "");
  g_keys[g_nkeys++].pk = pk;
  return pk;
}

static char *pem(EVP_PKEY *pk, int sel, const char *structure, const char *pass) {
  return tu_pkey_encode(pk, sel, "PEM", structure, pass, NULL);
}
static char *spki(EVP_PKEY *pk) { return pem(pk, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo", NULL); }
static char *pkcs8(EVP_PKEY *pk) { return pem(pk, EVP_PKEY_KEYPAIR, "PrivateKeyInfo", NULL); }

/* Self-signed certificate for pk, PEM. */
static char *cert(EVP_PKEY *pk, const char *cn) {
  X509 *x = X509_new();
  assert_non_null(x);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(x, name);
  assert_int_equal(X509_set_pubkey(x, pk), 1);
  int base = EVP_PKEY_get_base_id(pk);
  assert_true(X509_sign(x, pk, base == EVP_PKEY_ED25519 || base == EVP_PKEY_ED448 ? NULL : EVP_sha256()) > 0);
  BIO *bio = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_X509(bio, x), 1);
  char *data = NULL;
  long n = BIO_get_mem_data(bio, &data);
  char *out = malloc((size_t)n + 1);
  memcpy(out, data, (size_t)n);
  out[n] = '\0';
  BIO_free(bio);
  X509_free(x);
  return out;
}

/* ------------------------------------------------------ string surgery */

/* New string with the first occurrence of `from` replaced by `to`. */
static char *replace(const char *s, const char *from, const char *to) {
  const char *at = strstr(s, from);
  if (at == NULL) fail_msg("replace: \"%s\" not found in:\n%s", from, s);
  size_t a = (size_t)(at - s), fl = strlen(from), tl = strlen(to), n = strlen(s);
  char *out = malloc(n - fl + tl + 1);
  memcpy(out, s, a);
  memcpy(out + a, to, tl);
  memcpy(out + a + tl, at + fl, n - a - fl + 1);
  return out;
}

static char *replace_free(char *s, const char *from, const char *to) {
  char *r = replace(s, from, to);
  free(s);
  return r;
}

static char *concat(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *out = malloc(la + lb + 1);
  memcpy(out, a, la);
  memcpy(out + la, b, lb + 1);
  return out;
}

/* Pointer to the start of line k (1-based). */
static char *line_at(char *s, int k) {
  for (int i = 1; i < k; i++) {
    s = strchr(s, '\n');
    assert_non_null(s);
    s++;
  }
  return s;
}

/* Delete the character at line k, column c (1-based). */
static void delete_char(char *s, int k, int c) {
  char *p = line_at(s, k) + c - 1;
  memmove(p, p + 1, strlen(p + 1) + 1);
}

/* A PEM block from a label and raw DER-or-not bytes. */
static char *wrap(const char *label, const unsigned char *der, size_t n) {
  BIO *bio = BIO_new(BIO_s_mem());
  assert_true(PEM_write_bio(bio, label, "", der, (long)n) > 0);
  char *data = NULL;
  long len = BIO_get_mem_data(bio, &data);
  char *out = malloc((size_t)len + 1);
  memcpy(out, data, (size_t)len);
  out[len] = '\0';
  BIO_free(bio);
  return out;
}

/* ------------------------------------------------------------- checks */

static const char *dump(const jwtkit_pem_report *r) {
  static char buf[8192];
  size_t o = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < jwtkit_pem_report_blocks(r) && o < sizeof buf - 200; i++) {
    const jwtkit_pem_block *b = jwtkit_pem_report_block(r, i);
    o += (size_t)snprintf(buf + o, sizeof buf - o, "  block %zu: file %u line %zu %s [%s] %s %u %s\n", i, b->file,
                          b->line, jwtkit_pem_type_name(b->type), b->label, b->family, b->bits, b->curve);
  }
  for (size_t i = 0; i < jwtkit_pem_report_findings(r) && o < sizeof buf - 300; i++) {
    const jwtkit_pem_finding *f = jwtkit_pem_report_finding(r, i);
    o += (size_t)snprintf(buf + o, sizeof buf - o, "  %s (file %u block %d line %zu): %s\n",
                          jwtkit_pem_problem_name(f->problem), f->file, f->block, f->line, f->msg);
  }
  return buf;
}

static jwtkit_pem_report *check(const char *text, const char *pass) {
  jwtkit_pem_report *r = NULL;
  assert_int_equal(jwtkit_pem_check(text, strlen(text), pass, &r), JWTKIT_OK);
  assert_non_null(r);
  return r;
}

static jwtkit_pem_report *check_file(const char *path, const char *pass) {
  jwtkit_pem_report *r = NULL;
  assert_int_equal(jwtkit_pem_check_file(path, pass, &r), JWTKIT_OK);
  assert_non_null(r);
  return r;
}

static jwtkit_pem_report *check_pair(const char *priv, const char *pub, const char *pass) {
  jwtkit_pem_report *r = NULL;
  assert_int_equal(jwtkit_pem_check_pair(priv, pub, pass, &r), JWTKIT_OK);
  assert_non_null(r);
  return r;
}

/* The report has `total` findings (-1: any number) and one with code p
 * whose message contains `needle`; returns that finding. */
static const jwtkit_pem_finding *expect(const jwtkit_pem_report *r, int total, jwtkit_pem_problem p,
                                        const char *needle) {
  if (total >= 0 && jwtkit_pem_report_findings(r) != (size_t)total)
    fail_msg("expected %d finding(s) including %s, got:\n%s", total, jwtkit_pem_problem_name(p), dump(r));
  for (size_t i = 0; i < jwtkit_pem_report_findings(r); i++) {
    const jwtkit_pem_finding *f = jwtkit_pem_report_finding(r, i);
    if (f->problem == p && strstr(f->msg, needle) != NULL) return f;
  }
  fail_msg("no %s finding saying \"%s\" in:\n%s", jwtkit_pem_problem_name(p), needle, dump(r));
  return NULL;
}

static void expect_clean(const jwtkit_pem_report *r, const char *what) {
  if (jwtkit_pem_report_findings(r) != 0) fail_msg("%s: expected no findings, got:\n%s", what, dump(r));
}

static void expect_block(const jwtkit_pem_report *r, size_t i, jwtkit_pem_type type, const char *family,
                         unsigned bits, const char *curve) {
  const jwtkit_pem_block *b = jwtkit_pem_report_block(r, i);
  if (b == NULL) fail_msg("no block %zu:\n%s", i, dump(r));
  if (b->type != type || strcmp(b->family, family) != 0 || b->bits != bits || strcmp(b->curve, curve) != 0)
    fail_msg("block %zu: expected %s %s %u %s, got:\n%s", i, jwtkit_pem_type_name(type), family, bits, curve,
             dump(r));
}

/* ------------------------------------------------------------ good keys */

static void test_good_keys(void **state) {
  (void)state;
  static const struct {
    const char *type, *arg, *family, *curve;
    unsigned bits;
  } kinds[] = {
      {"RSA", "2048", "RSA", "", 2048},      {"RSA", "3072", "RSA", "", 3072},
      {"RSA", "4096", "RSA", "", 4096},      {"EC", "P-256", "EC", "P-256", 256},
      {"EC", "P-384", "EC", "P-384", 384},   {"EC", "P-521", "EC", "P-521", 521},
      {"ED25519", NULL, "OKP", "Ed25519", 255}, {"ED448", NULL, "OKP", "Ed448", 448},
  };
  static const struct {
    int sel;
    const char *structure, *pass, *label;
    jwtkit_pem_type type;
    int described; /* family/bits/curve known */
  } forms[] = {
      {EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo", NULL, "PUBLIC KEY", JWTKIT_PEM_PUBLIC, 1},
      {EVP_PKEY_KEYPAIR, "PrivateKeyInfo", NULL, "PRIVATE KEY", JWTKIT_PEM_PRIVATE, 1},
      {EVP_PKEY_KEYPAIR, "EncryptedPrivateKeyInfo", "s3cret pass", "ENCRYPTED PRIVATE KEY",
       JWTKIT_PEM_ENCRYPTED_PRIVATE, 1},
      {EVP_PKEY_KEYPAIR, "EncryptedPrivateKeyInfo", "s3cret pass", "ENCRYPTED PRIVATE KEY",
       JWTKIT_PEM_ENCRYPTED_PRIVATE, 0},
      {EVP_PKEY_KEYPAIR, "type-specific", NULL, NULL, JWTKIT_PEM_PRIVATE, 1},
      {EVP_PKEY_PUBLIC_KEY, "type-specific", NULL, "RSA PUBLIC KEY", JWTKIT_PEM_PUBLIC, 1},
  };
  for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
    EVP_PKEY *pk = key(kinds[k].type, kinds[k].arg);
    int rsa = strcmp(kinds[k].family, "RSA") == 0, ec = strcmp(kinds[k].family, "EC") == 0;
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
      int ts = strcmp(forms[f].structure, "type-specific") == 0;
      if (ts && !(rsa || (ec && forms[f].sel == EVP_PKEY_KEYPAIR))) continue;
      char *text = pem(pk, forms[f].sel, forms[f].structure, forms[f].pass);
      /* form 3: the same encrypted key, checked without its passphrase */
      const char *pass = forms[f].described ? forms[f].pass : NULL;
      jwtkit_pem_report *r = check(text, pass);
      char what[96];
      snprintf(what, sizeof what, "%s %s %s%s", kinds[k].type, kinds[k].arg ? kinds[k].arg : "",
               forms[f].structure, pass ? " +pass" : "");
      expect_clean(r, what);
      assert_int_equal(jwtkit_pem_report_blocks(r), 1);
      const char *label = forms[f].label ? forms[f].label : rsa ? "RSA PRIVATE KEY" : "EC PRIVATE KEY";
      assert_string_equal(jwtkit_pem_report_block(r, 0)->label, label);
      assert_int_equal(jwtkit_pem_report_block(r, 0)->line, 1);
      if (forms[f].described)
        expect_block(r, 0, forms[f].type, kinds[k].family, kinds[k].bits, kinds[k].curve);
      else
        expect_block(r, 0, forms[f].type, "", 0, "");
      jwtkit_pem_report_free(r);
      free(text);
    }
  }
  /* CRLF line ends and trailing blanks are fine */
  char *text = spki(key("EC", "P-256"));
  char *crlf = malloc(strlen(text) * 2 + 1), *o = crlf;
  for (const char *p = text; *p; p++) {
    if (*p == '\n') *o++ = ' ', *o++ = '\r';
    *o++ = *p;
  }
  *o = '\0';
  jwtkit_pem_report *r = check(crlf, NULL);
  expect_clean(r, "CRLF");
  jwtkit_pem_report_free(r);
  free(crlf);
  free(text);
}

static void test_good_certificates(void **state) {
  (void)state;
  char *ec = cert(key("EC", "P-256"), "ec"), *rsa = cert(key("RSA", "2048"), "rsa"),
       *ed = cert(key("ED25519", NULL), "ed");
  jwtkit_pem_report *r = check(ec, NULL);
  expect_clean(r, "EC certificate");
  assert_string_equal(jwtkit_pem_report_block(r, 0)->label, "CERTIFICATE");
  expect_block(r, 0, JWTKIT_PEM_CERTIFICATE, "EC", 256, "P-256");
  jwtkit_pem_report_free(r);

  /* a chain file holds several certificates: not "multiple keys" */
  char *chain = concat(rsa, ed), *chain3 = concat(ec, chain);
  r = check(chain3, NULL);
  expect_clean(r, "certificate chain");
  assert_int_equal(jwtkit_pem_report_blocks(r), 3);
  expect_block(r, 1, JWTKIT_PEM_CERTIFICATE, "RSA", 2048, "");
  expect_block(r, 2, JWTKIT_PEM_CERTIFICATE, "OKP", 255, "Ed25519");
  jwtkit_pem_report_free(r);

  /* one key plus its chain (a server bundle) is still one key */
  char *p8 = pkcs8(key("EC", "P-256")), *bundle = concat(p8, chain3);
  r = check(bundle, NULL);
  expect_clean(r, "key + chain");
  expect_block(r, 0, JWTKIT_PEM_PRIVATE, "EC", 256, "P-256");
  jwtkit_pem_report_free(r);
  free(ec), free(rsa), free(ed), free(chain), free(chain3), free(p8), free(bundle);
}

/* ---------------------------------------------------- file-level problems */

static void test_empty(void **state) {
  (void)state;
  jwtkit_pem_report *r = check("", NULL);
  expect(r, 1, JWTKIT_PEM_PROB_EMPTY, "is empty");
  jwtkit_pem_report_free(r);
  r = check(" \n\t\r\n\n", NULL);
  expect(r, 1, JWTKIT_PEM_PROB_EMPTY, "only whitespace");
  jwtkit_pem_report_free(r);
  r = NULL;
  assert_int_equal(jwtkit_pem_check(NULL, 0, NULL, &r), JWTKIT_OK);
  expect(r, 1, JWTKIT_PEM_PROB_EMPTY, "empty");
  jwtkit_pem_report_free(r);
  const char *path = write_text("empty.pem", "", 0600);
  r = check_file(path, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_EMPTY, "the file is empty");
  assert_string_equal(jwtkit_pem_report_path(r, 0), path);
  jwtkit_pem_report_free(r);
}

static void test_no_pem(void **state) {
  (void)state;
  jwtkit_pem_report *r = check("just some text\nand more\n", NULL);
  expect(r, 1, JWTKIT_PEM_PROB_NO_PEM, "no PEM block");
  assert_int_equal(jwtkit_pem_report_blocks(r), 0);
  jwtkit_pem_report_free(r);
  r = check("{\"kty\":\"EC\",\"crv\":\"P-256\"}\n", NULL);
  expect(r, 1, JWTKIT_PEM_PROB_NO_PEM, "JSON");
  jwtkit_pem_report_free(r);
  size_t n;
  char *der = tu_pkey_encode(key("EC", "P-256"), EVP_PKEY_PUBLIC_KEY, "DER", "SubjectPublicKeyInfo", NULL, &n);
  r = NULL;
  assert_int_equal(jwtkit_pem_check(der, n, NULL, &r), JWTKIT_OK);
  expect(r, 1, JWTKIT_PEM_PROB_NO_PEM, "binary (DER?)");
  jwtkit_pem_report_free(r);
  free(der);
}

static void test_leading_text(void **state) {
  (void)state;
  char *p = spki(key("EC", "P-256"));
  char *t = concat("Bag Attributes\n    localKeyID: 01\n", p);
  jwtkit_pem_report *r = check(t, NULL);
  const jwtkit_pem_finding *f = expect(r, 1, JWTKIT_PEM_PROB_LEADING_TEXT, "before the first BEGIN line (line 1)");
  assert_int_equal(f->block, -1);
  assert_int_equal(f->line, 1);
  expect_block(r, 0, JWTKIT_PEM_PUBLIC, "EC", 256, "P-256");
  assert_int_equal(jwtkit_pem_report_block(r, 0)->line, 3);
  jwtkit_pem_report_free(r);
  /* text between two certificates */
  char *c1 = cert(key("EC", "P-256"), "a"), *c2 = cert(key("EC", "P-384"), "b");
  char *mid = concat(c1, "subject=CN=b\n"), *chain = concat(mid, c2);
  r = check(chain, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_LEADING_TEXT, "between blocks");
  jwtkit_pem_report_free(r);
  free(p), free(t), free(c1), free(c2), free(mid), free(chain);
}

static void test_trailing_text(void **state) {
  (void)state;
  char *p = spki(key("EC", "P-256"));
  char *t = concat(p, "\ngarbage after the key\n");
  jwtkit_pem_report *r = check(t, NULL);
  const jwtkit_pem_finding *f = expect(r, 1, JWTKIT_PEM_PROB_TRAILING_TEXT, "after the last END line (line 6)");
  assert_int_equal(f->line, 6);
  jwtkit_pem_report_free(r);
  /* whitespace after END is fine */
  char *ws = concat(p, "\n\n   \n");
  r = check(ws, NULL);
  expect_clean(r, "blank lines after END");
  jwtkit_pem_report_free(r);
  free(p), free(t), free(ws);
}

static void test_multiple_keys(void **state) {
  (void)state;
  char *a = spki(key("EC", "P-256")), *b = pkcs8(key("EC", "P-384"));
  char *two = concat(a, b);
  jwtkit_pem_report *r = check(two, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_MULTIPLE_KEYS, "2 key blocks (BEGIN lines 1 and 5)");
  assert_int_equal(jwtkit_pem_report_blocks(r), 2);
  expect_block(r, 1, JWTKIT_PEM_PRIVATE, "EC", 384, "P-384");
  jwtkit_pem_report_free(r);
  free(a), free(b), free(two);
}

/* ---------------------------------------------------------- armor problems */

static void test_armor_malformed(void **state) {
  (void)state;
  char *p = spki(key("ED25519", NULL));
  char *t = replace(p, "-----BEGIN PUBLIC KEY-----", "-----BEGIN PUBLIC KEY----- x");
  jwtkit_pem_report *r = check(t, NULL);
  const jwtkit_pem_finding *f =
      expect(r, 1, JWTKIT_PEM_PROB_ARMOR_MALFORMED, "BEGIN line 1 is malformed: text after the closing dashes");
  assert_int_equal(f->block, 0);
  expect_block(r, 0, JWTKIT_PEM_PUBLIC, "OKP", 255, "Ed25519"); /* still described */
  jwtkit_pem_report_free(r);
  free(t);
  t = replace(p, "-----BEGIN PUBLIC KEY-----", "-----begin PUBLIC KEY-----");
  r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_ARMOR_MALFORMED, "upper case");
  jwtkit_pem_report_free(r);
  free(t);
  free(p);
}

static void test_armor_dashes(void **state) {
  (void)state;
  char *p = spki(key("ED25519", NULL));
  char *t = replace(p, "-----BEGIN", "----BEGIN");
  jwtkit_pem_report *r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_ARMOR_DASHES, "BEGIN line 1 has 4 leading and 5 trailing dashes");
  jwtkit_pem_report_free(r);
  free(t);
  t = replace(p, "END PUBLIC KEY-----", "END PUBLIC KEY------");
  r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_ARMOR_DASHES, "END line 3 has 5 leading and 6 trailing");
  jwtkit_pem_report_free(r);
  free(t);
  free(p);
}

static void test_armor_indented(void **state) {
  (void)state;
  char *p = spki(key("EC", "P-256"));
  char *t = replace(p, "-----BEGIN", "  -----BEGIN");
  jwtkit_pem_report *r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_ARMOR_INDENTED, "BEGIN line 1 is indented by 2 characters");
  expect_block(r, 0, JWTKIT_PEM_PUBLIC, "EC", 256, "P-256");
  jwtkit_pem_report_free(r);
  free(t);
  /* a whole block indented (as in YAML): armor reported, body accepted */
  size_t n = strlen(p);
  char *ind = malloc(n * 2 + 8), *o = ind;
  for (const char *s = p; *s; s++) {
    if (s == p || s[-1] == '\n') *o++ = ' ', *o++ = ' ';
    *o++ = *s;
  }
  *o = '\0';
  r = check(ind, NULL);
  expect(r, 2, JWTKIT_PEM_PROB_ARMOR_INDENTED, "END line 4 is indented");
  jwtkit_pem_report_free(r);
  free(ind);
  free(p);
}

static void test_missing_end(void **state) {
  (void)state;
  char *p = spki(key("EC", "P-256"));
  char *t = replace(p, "-----END PUBLIC KEY-----\n", "");
  jwtkit_pem_report *r = check(t, NULL);
  const jwtkit_pem_finding *f = expect(r, 1, JWTKIT_PEM_PROB_MISSING_END, "BEGIN PUBLIC KEY (line 1) has no END line");
  assert_int_equal(f->block, 0);
  jwtkit_pem_report_free(r);
  /* a BEGIN inside a block */
  char *nested = concat(t, p);
  r = check(nested, NULL);
  expect(r, 2, JWTKIT_PEM_PROB_MISSING_END, "before the BEGIN line 4");
  expect(r, 2, JWTKIT_PEM_PROB_MULTIPLE_KEYS, "2 key blocks");
  jwtkit_pem_report_free(r);
  free(p), free(t), free(nested);
}

static void test_end_without_begin(void **state) {
  (void)state;
  char *p = spki(key("EC", "P-256"));
  char *t = concat(p, "-----END PUBLIC KEY-----\n");
  jwtkit_pem_report *r = check(t, NULL);
  const jwtkit_pem_finding *f = expect(r, 1, JWTKIT_PEM_PROB_END_WITHOUT_BEGIN, "line 5: END PUBLIC KEY without");
  assert_int_equal(f->block, -1);
  jwtkit_pem_report_free(r);
  r = check("-----END PRIVATE KEY-----\n", NULL);
  expect(r, 2, JWTKIT_PEM_PROB_END_WITHOUT_BEGIN, "END PRIVATE KEY");
  expect(r, 2, JWTKIT_PEM_PROB_NO_PEM, "no BEGIN line");
  jwtkit_pem_report_free(r);
  free(p), free(t);
}

static void test_label_mismatch(void **state) {
  (void)state;
  char *p = spki(key("EC", "P-256"));
  char *t = replace(p, "END PUBLIC KEY", "END PRIVATE KEY");
  jwtkit_pem_report *r = check(t, NULL);
  const jwtkit_pem_finding *f =
      expect(r, 1, JWTKIT_PEM_PROB_LABEL_MISMATCH, "BEGIN PUBLIC KEY (line 1) is closed by END PRIVATE KEY (line 4)");
  assert_int_equal(f->line, 4);
  jwtkit_pem_report_free(r);
  free(p), free(t);
}

static void test_unknown_label(void **state) {
  (void)state;
  char *p = spki(key("EC", "P-256"));
  char *t = replace_free(replace(p, "BEGIN PUBLIC KEY", "BEGIN KEY"), "END PUBLIC KEY", "END KEY");
  jwtkit_pem_report *r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_UNKNOWN_LABEL, "label \"KEY\" is not a key or certificate label");
  expect_block(r, 0, JWTKIT_PEM_UNKNOWN, "", 0, "");
  jwtkit_pem_report_free(r);
  free(t);
  t = replace_free(replace(p, "BEGIN PUBLIC KEY", "BEGIN OPENSSH PRIVATE KEY"), "END PUBLIC KEY",
                   "END OPENSSH PRIVATE KEY");
  r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_UNKNOWN_LABEL, "ssh-keygen -p -m PKCS8");
  jwtkit_pem_report_free(r);
  free(t);
  free(p);
}

/* --------------------------------------------------------- body problems */

static void test_base64_char(void **state) {
  (void)state;
  char *p = spki(key("EC", "P-256"));
  line_at(p, 2)[4] = '*';
  jwtkit_pem_report *r = check(p, NULL);
  const jwtkit_pem_finding *f =
      expect(r, 1, JWTKIT_PEM_PROB_BASE64_CHAR, "line 2 column 5: '*' is not a base64 character");
  assert_int_equal(f->line, 2);
  expect_block(r, 0, JWTKIT_PEM_PUBLIC, "", 0, ""); /* not decoded */
  jwtkit_pem_report_free(r);
  /* base64url is not PEM's alphabet */
  line_at(p, 2)[4] = '-';
  line_at(p, 3)[0] = '_';
  r = check(p, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_BASE64_CHAR, "'-' is not a base64 character (and 1 more in this block)");
  jwtkit_pem_report_free(r);
  free(p);
}

static void test_base64_padding(void **state) {
  (void)state;
  /* a P-256 SPKI is 91 bytes: its body ends with "==" */
  char *p = spki(key("EC", "P-256"));
  assert_non_null(strstr(p, "==\n-----END"));
  char *t = replace(p, "==\n-----END", "\n-----END");
  jwtkit_pem_report *r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_BASE64_PADDING, "missing '=' padding: the body ends with 2 characters, 2 '=' needed");
  jwtkit_pem_report_free(r);
  free(t);
  t = replace(p, "==\n-----END", "===\n-----END");
  r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_BASE64_PADDING, "3 '=' characters where 2 are needed");
  jwtkit_pem_report_free(r);
  free(t);
  /* '=' in the middle of the body */
  line_at(p, 2)[20] = '=';
  r = check(p, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_BASE64_PADDING, "line 2: base64 data after '=' padding");
  jwtkit_pem_report_free(r);
  free(p);
}

static void test_base64_line(void **state) {
  (void)state;
  char *p = spki(key("EC", "P-256"));
  delete_char(p, 2, 11); /* the first body line loses a character */
  jwtkit_pem_report *r = check(p, NULL);
  const jwtkit_pem_finding *f =
      expect(r, 1, JWTKIT_PEM_PROB_BASE64_LINE, "line 2 has 63 base64 characters, not a multiple of 4");
  assert_int_equal(f->line, 2);
  jwtkit_pem_report_free(r);
  free(p);
  /* a lone character at the end of the body */
  p = spki(key("ED25519", NULL)); /* 44 bytes: "....=" */
  char *t = replace(p, "=\n-----END", "=\nA\n-----END");
  r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_BASE64_PADDING, "data after '=' padding");
  jwtkit_pem_report_free(r);
  free(t);
  t = replace(p, "=\n-----END", "\n-----END");
  char *t2 = replace(t, "\n-----END", "AA\n-----END");
  r = check(t2, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_BASE64_LINE, "a lone one after the last group of 4");
  jwtkit_pem_report_free(r);
  free(t), free(t2), free(p);
}

static void test_unexpected_header(void **state) {
  (void)state;
  char *p = spki(key("EC", "P-256"));
  char *t = replace(p, "-----\n", "-----\nComment: made by hand\n\n");
  jwtkit_pem_report *r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_UNEXPECTED_HEADER, "line 2: header \"Comment\"");
  expect_block(r, 0, JWTKIT_PEM_PUBLIC, "EC", 256, "P-256");
  jwtkit_pem_report_free(r);
  free(p), free(t);
}

static void test_legacy_encryption(void **state) {
  (void)state;
  char *p = pem(key("EC", "P-256"), EVP_PKEY_KEYPAIR, "type-specific", "legacy pw");
  assert_non_null(strstr(p, "Proc-Type: 4,ENCRYPTED"));
  jwtkit_pem_report *r = check(p, NULL);
  const jwtkit_pem_finding *f = expect(r, 1, JWTKIT_PEM_PROB_LEGACY_ENCRYPTION, "legacy PEM encryption (AES-256-CBC");
  assert_int_equal(f->line, 2);
  expect_block(r, 0, JWTKIT_PEM_ENCRYPTED_PRIVATE, "", 0, "");
  assert_string_equal(jwtkit_pem_report_block(r, 0)->label, "EC PRIVATE KEY");
  jwtkit_pem_report_free(r);
  /* with the passphrase it is decrypted and described */
  r = check(p, "legacy pw");
  expect(r, 1, JWTKIT_PEM_PROB_LEGACY_ENCRYPTION, "PKCS#8");
  expect_block(r, 0, JWTKIT_PEM_ENCRYPTED_PRIVATE, "EC", 256, "P-256");
  jwtkit_pem_report_free(r);
  r = check(p, "not it");
  expect(r, 2, JWTKIT_PEM_PROB_WRONG_PASSPHRASE, "passphrase");
  jwtkit_pem_report_free(r);
  free(p);
}

/* ------------------------------------------------------- content problems */

static void test_der_invalid(void **state) {
  (void)state;
  static const unsigned char seq_int[] = {0x30, 0x03, 0x02, 0x01, 0x05}; /* SEQUENCE { INTEGER 5 } */
  char *t = wrap("PUBLIC KEY", seq_int, sizeof seq_int);
  jwtkit_pem_report *r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_DER_INVALID, "the content of the PUBLIC KEY block is not a valid SubjectPublicKeyInfo");
  expect_block(r, 0, JWTKIT_PEM_PUBLIC, "", 0, "");
  jwtkit_pem_report_free(r);
  free(t);
  t = wrap("PRIVATE KEY", (const unsigned char *)"hello world", 11);
  r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_DER_INVALID, "not DER");
  jwtkit_pem_report_free(r);
  free(t);
  /* truncated and trailing bytes */
  size_t n;
  char *der = tu_pkey_encode(key("EC", "P-256"), EVP_PKEY_PUBLIC_KEY, "DER", "SubjectPublicKeyInfo", NULL, &n);
  t = wrap("PUBLIC KEY", (unsigned char *)der, n - 1);
  r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_DER_INVALID, "truncated");
  jwtkit_pem_report_free(r);
  free(t);
  unsigned char more[256];
  memcpy(more, der, n);
  more[n] = 0;
  t = wrap("PUBLIC KEY", more, n + 1);
  r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_DER_INVALID, "1 bytes follow the DER structure");
  jwtkit_pem_report_free(r);
  free(t), free(der);
  /* an empty body */
  r = check("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n", NULL);
  expect(r, 1, JWTKIT_PEM_PROB_DER_INVALID, "no base64 content");
  jwtkit_pem_report_free(r);
}

static void test_label_content(void **state) {
  (void)state;
  /* a private key labeled PUBLIC KEY: described as what it is */
  char *p = pkcs8(key("EC", "P-256"));
  char *t = replace_free(replace(p, "BEGIN PRIVATE KEY", "BEGIN PUBLIC KEY"), "END PRIVATE KEY", "END PUBLIC KEY");
  jwtkit_pem_report *r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_LABEL_CONTENT, "labeled PUBLIC KEY holds a PKCS#8 private key (label PRIVATE KEY)");
  expect_block(r, 0, JWTKIT_PEM_PRIVATE, "EC", 256, "P-256");
  jwtkit_pem_report_free(r);
  free(t);
  /* a certificate labeled PUBLIC KEY */
  char *c = cert(key("EC", "P-384"), "x");
  t = replace_free(replace(c, "BEGIN CERTIFICATE", "BEGIN PUBLIC KEY"), "END CERTIFICATE", "END PUBLIC KEY");
  r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_LABEL_CONTENT, "holds an X.509 certificate");
  expect_block(r, 0, JWTKIT_PEM_CERTIFICATE, "EC", 384, "P-384");
  jwtkit_pem_report_free(r);
  free(t), free(c), free(p);
  /* PKCS#8 under the SEC1 label */
  p = pkcs8(key("EC", "P-256"));
  t = replace_free(replace(p, "BEGIN PRIVATE KEY", "BEGIN EC PRIVATE KEY"), "END PRIVATE KEY", "END EC PRIVATE KEY");
  r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_LABEL_CONTENT, "labeled EC PRIVATE KEY holds a PKCS#8");
  jwtkit_pem_report_free(r);
  free(t), free(p);
}

static void test_unsupported_key(void **state) {
  (void)state;
  /* SPKI with algorithm 1.2.3.4 */
  static const unsigned char odd[] = {0x30, 0x0c, 0x30, 0x05, 0x06, 0x03, 0x2a, 0x03, 0x04,
                                      0x03, 0x03, 0x00, 0x01, 0x02};
  char *t = wrap("PUBLIC KEY", odd, sizeof odd);
  jwtkit_pem_report *r = check(t, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_UNSUPPORTED_KEY, "key algorithm 1.2.3.4 is not supported");
  jwtkit_pem_report_free(r);
  free(t);
  /* an RSASSA-PSS-restricted key */
  char *p = spki(key("RSA-PSS", "2048"));
  r = check(p, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_UNSUPPORTED_KEY, "RSASSA-PSS");
  expect_block(r, 0, JWTKIT_PEM_PUBLIC, "RSA", 2048, "");
  jwtkit_pem_report_free(r);
  free(p);
}

static void test_rsa_too_small(void **state) {
  (void)state;
  char *p = pkcs8(key("RSA", "1024"));
  jwtkit_pem_report *r = check(p, NULL);
  const jwtkit_pem_finding *f =
      expect(r, 1, JWTKIT_PEM_PROB_RSA_TOO_SMALL, "RSA key has 1024 bits; at least 2048 are required");
  assert_int_equal(f->block, 0);
  expect_block(r, 0, JWTKIT_PEM_PRIVATE, "RSA", 1024, "");
  jwtkit_pem_report_free(r);
  free(p);
  /* also as PKCS#1 public and in a certificate */
  p = pem(key("RSA", "1024"), EVP_PKEY_PUBLIC_KEY, "type-specific", NULL);
  r = check(p, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_RSA_TOO_SMALL, "1024 bits");
  jwtkit_pem_report_free(r);
  free(p);
  p = cert(key("RSA", "1024"), "small");
  r = check(p, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_RSA_TOO_SMALL, "1024 bits");
  expect_block(r, 0, JWTKIT_PEM_CERTIFICATE, "RSA", 1024, "");
  jwtkit_pem_report_free(r);
  free(p);
}

static void test_rsa_exponent(void **state) {
  (void)state;
  char *p = pem(key("RSA-E3", "2048"), EVP_PKEY_KEYPAIR, "type-specific", NULL);
  jwtkit_pem_report *r = check(p, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_RSA_EXPONENT, "RSA public exponent is 3; it must be 65537");
  expect_block(r, 0, JWTKIT_PEM_PRIVATE, "RSA", 2048, "");
  jwtkit_pem_report_free(r);
  free(p);
  p = spki(key("RSA-E3", "2048"));
  r = check(p, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_RSA_EXPONENT, "is 3");
  jwtkit_pem_report_free(r);
  free(p);
}

static void test_unapproved_curve(void **state) {
  (void)state;
  static const struct {
    const char *type, *curve, *shown, *needle;
    unsigned bits;
  } c[] = {{"EC", "secp256k1", "secp256k1", "EC curve secp256k1 is not approved", 256},
           {"EC", "brainpoolP256r1", "brainpoolP256r1", "brainpoolP256r1 is not approved", 256},
           {"EC", "P-224", "P-224", "secp224r1 = P-224 is not approved", 224},
           {"X25519", NULL, "X25519", "X25519 is a key-agreement curve", 255}};
  for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
    EVP_PKEY *pk = key(c[i].type, c[i].curve);
    const char *fam = strcmp(c[i].type, "EC") == 0 ? "EC" : "OKP";
    char *p = pkcs8(pk);
    jwtkit_pem_report *r = check(p, NULL);
    expect(r, 1, JWTKIT_PEM_PROB_UNAPPROVED_CURVE, c[i].needle);
    expect_block(r, 0, JWTKIT_PEM_PRIVATE, fam, c[i].bits, c[i].shown);
    jwtkit_pem_report_free(r);
    free(p);
    p = spki(pk);
    r = check(p, NULL);
    expect(r, 1, JWTKIT_PEM_PROB_UNAPPROVED_CURVE, c[i].needle);
    expect_block(r, 0, JWTKIT_PEM_PUBLIC, fam, c[i].bits, c[i].shown);
    jwtkit_pem_report_free(r);
    free(p);
  }
}

/* An EC private key whose embedded public point belongs to another key. */
static void test_key_invalid(void **state) {
  (void)state;
  EVP_PKEY *a = key("EC", "P-256"), *b = key("EC", "P-256#2");
  BIGNUM *priv = NULL;
  unsigned char pub[133];
  size_t pl = 0;
  assert_int_equal(EVP_PKEY_get_bn_param(a, OSSL_PKEY_PARAM_PRIV_KEY, &priv), 1);
  assert_int_equal(EVP_PKEY_get_octet_string_param(b, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &pl), 1);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, pl);
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  EVP_PKEY *bad = NULL;
  assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
  assert_int_equal(EVP_PKEY_fromdata(ctx, &bad, EVP_PKEY_KEYPAIR, params), 1);
  char *p = pkcs8(bad);
  jwtkit_pem_report *r = check(p, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_KEY_INVALID, "does not match its own public key");
  expect_block(r, 0, JWTKIT_PEM_PRIVATE, "EC", 256, "P-256");
  jwtkit_pem_report_free(r);
  free(p);
  EVP_PKEY_free(bad);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_clear_free(priv);

  /* an RSA private key (d, p, q, CRT values) grafted onto another modulus */
  static const char *const names[] = {OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
                                      OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
                                      OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                                      OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
  EVP_PKEY *ra = key("RSA", "2048"), *rb = key("RSA-PSS", "2048");
  BIGNUM *bn[8] = {0};
  bld = OSSL_PARAM_BLD_new();
  for (size_t i = 0; i < 8; i++) {
    assert_int_equal(EVP_PKEY_get_bn_param(i == 0 ? rb : ra, names[i], &bn[i]), 1);
    OSSL_PARAM_BLD_push_BN(bld, names[i], bn[i]);
  }
  params = OSSL_PARAM_BLD_to_param(bld);
  ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
  bad = NULL;
  assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
  assert_int_equal(EVP_PKEY_fromdata(ctx, &bad, EVP_PKEY_KEYPAIR, params), 1);
  p = pem(bad, EVP_PKEY_KEYPAIR, "type-specific", NULL);
  r = check(p, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_KEY_INVALID, "RSA private key does not match its own public key");
  expect_block(r, 0, JWTKIT_PEM_PRIVATE, "RSA", 2048, "");
  jwtkit_pem_report_free(r);
  free(p);
  EVP_PKEY_free(bad);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  for (size_t i = 0; i < 8; i++) BN_clear_free(bn[i]);
}

static void test_wrong_passphrase(void **state) {
  (void)state;
  char *p = pem(key("ED25519", NULL), EVP_PKEY_KEYPAIR, "EncryptedPrivateKeyInfo", "right");
  jwtkit_pem_report *r = check(p, "wrong");
  const jwtkit_pem_finding *f =
      expect(r, 1, JWTKIT_PEM_PROB_WRONG_PASSPHRASE, "does not decrypt this encrypted private key");
  assert_int_equal(f->block, 0);
  expect_block(r, 0, JWTKIT_PEM_ENCRYPTED_PRIVATE, "", 0, "");
  jwtkit_pem_report_free(r);
  /* without a passphrase: described, not a problem */
  r = check(p, NULL);
  expect_clean(r, "encrypted, no passphrase");
  jwtkit_pem_report_free(r);
  free(p);
}

/* ----------------------------------------------------------- file checks */

static void test_file_mode(void **state) {
  (void)state;
  char *priv = pkcs8(key("EC", "P-256")), *pub = spki(key("EC", "P-256"));
  char *enc = pem(key("EC", "P-256"), EVP_PKEY_KEYPAIR, "EncryptedPrivateKeyInfo", "pw");
  jwtkit_pem_report *r = check_file(write_text("open.pem", priv, 0644), NULL);
  const jwtkit_pem_finding *f = expect(r, 1, JWTKIT_PEM_PROB_FILE_MODE, "file mode 0644 gives group or others access to a private key");
  assert_int_equal(f->block, -1);
  jwtkit_pem_report_free(r);
  r = check_file(write_text("enc-open.pem", enc, 0640), NULL);
  expect(r, 1, JWTKIT_PEM_PROB_FILE_MODE, "0640");
  jwtkit_pem_report_free(r);
  r = check_file(write_text("closed.pem", priv, 0600), NULL);
  expect_clean(r, "private key 0600");
  jwtkit_pem_report_free(r);
  r = check_file(write_text("pub.pem", pub, 0644), NULL);
  expect_clean(r, "public key 0644");
  jwtkit_pem_report_free(r);
  free(priv), free(pub), free(enc);
}

static void test_file_errors(void **state) {
  (void)state;
  jwtkit_pem_report *r = (jwtkit_pem_report *)1;
  char path[128];
  snprintf(path, sizeof path, "%s/does-not-exist.pem", g_dir);
  assert_int_equal(jwtkit_pem_check_file(path, NULL, &r), JWTKIT_ERR_IO);
  assert_null(r);
  r = (jwtkit_pem_report *)1;
  assert_int_equal(jwtkit_pem_check_file(g_dir, NULL, &r), JWTKIT_ERR_IO);
  assert_null(r);
  const char *ok = write_text("ok.pem", "x", 0600);
  r = (jwtkit_pem_report *)1;
  assert_int_equal(jwtkit_pem_check_pair(ok, path, NULL, &r), JWTKIT_ERR_IO);
  assert_null(r);
  /* arguments */
  assert_int_equal(jwtkit_pem_check("x", 1, NULL, NULL), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_pem_check(NULL, 1, NULL, &r), JWTKIT_ERR_INVALID_ARG);
  assert_null(r);
  assert_int_equal(jwtkit_pem_check_file(NULL, NULL, &r), JWTKIT_ERR_INVALID_ARG);
  assert_int_equal(jwtkit_pem_check_pair(ok, NULL, NULL, &r), JWTKIT_ERR_INVALID_ARG);
  char longpass[1100];
  memset(longpass, 'p', sizeof longpass - 1);
  longpass[sizeof longpass - 1] = '\0';
  assert_int_equal(jwtkit_pem_check("x", 1, longpass, &r), JWTKIT_ERR_INVALID_ARG);
  /* accessors on NULL and out of range */
  assert_int_equal(jwtkit_pem_report_blocks(NULL), 0);
  assert_null(jwtkit_pem_report_block(NULL, 0));
  assert_null(jwtkit_pem_report_finding(NULL, 0));
  assert_null(jwtkit_pem_report_path(NULL, 0));
  jwtkit_pem_report_free(NULL);
  char *json = (char *)1;
  assert_int_equal(jwtkit_pem_report_to_json(NULL, NULL, &json, NULL), JWTKIT_ERR_INVALID_ARG);
  assert_null(json);
}

static void test_too_large(void **state) {
  (void)state;
  size_t n = JWTKIT_PEM_MAX_INPUT + 1;
  char *big = malloc(n);
  memset(big, 'A', n);
  jwtkit_pem_report *r = NULL;
  assert_int_equal(jwtkit_pem_check(big, n, NULL, &r), JWTKIT_OK);
  expect(r, 1, JWTKIT_PEM_PROB_TOO_LARGE, "1048577 bytes; at most 1048576");
  jwtkit_pem_report_free(r);
  r = check_file(write_file("big.pem", big, n, 0600), NULL);
  expect(r, 1, JWTKIT_PEM_PROB_TOO_LARGE, "over 1048576 bytes");
  jwtkit_pem_report_free(r);
  /* exactly at the cap is read */
  r = check_file(write_file("cap.pem", big, n - 1, 0600), NULL);
  expect(r, 1, JWTKIT_PEM_PROB_NO_PEM, "no BEGIN line");
  jwtkit_pem_report_free(r);
  free(big);
}

static void test_too_many_blocks(void **state) {
  (void)state;
  char *c = cert(key("EC", "P-256"), "many");
  size_t cl = strlen(c), n = JWTKIT_PEM_MAX_BLOCKS + 2;
  char *all = malloc(cl * n + 1);
  for (size_t i = 0; i < n; i++) memcpy(all + i * cl, c, cl);
  all[cl * n] = '\0';
  jwtkit_pem_report *r = check(all, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_TOO_MANY_BLOCKS, "more than 64 blocks");
  assert_int_equal(jwtkit_pem_report_blocks(r), JWTKIT_PEM_MAX_BLOCKS);
  jwtkit_pem_report_free(r);
  free(all), free(c);
}

static void test_too_many_problems(void **state) {
  (void)state;
  static const char endl[] = "-----END X-----\n";
  size_t n = 300;
  char *all = malloc(sizeof endl * n + 1), *o = all;
  for (size_t i = 0; i < n; i++, o += sizeof endl - 1) memcpy(o, endl, sizeof endl - 1);
  *o = '\0';
  jwtkit_pem_report *r = check(all, NULL);
  assert_int_equal(jwtkit_pem_report_findings(r), JWTKIT_PEM_MAX_FINDINGS);
  assert_int_equal(jwtkit_pem_report_count(r, JWTKIT_PEM_PROB_END_WITHOUT_BEGIN), JWTKIT_PEM_MAX_FINDINGS - 1);
  const jwtkit_pem_finding *last = jwtkit_pem_report_finding(r, JWTKIT_PEM_MAX_FINDINGS - 1);
  assert_int_equal(last->problem, JWTKIT_PEM_PROB_TOO_MANY_PROBLEMS);
  assert_non_null(strstr(last->msg, "more than 127 problems"));
  jwtkit_pem_report_free(r);
  free(all);
}

/* ----------------------------------------------------------------- pairs */

static void test_pair(void **state) {
  (void)state;
  EVP_PKEY *a = key("EC", "P-256"), *b = key("EC", "P-256#2");
  char *priv = pkcs8(a), *pub = spki(a), *other = spki(b), *rsa = spki(key("RSA", "2048"));
  char *crt = cert(a, "pair"), *enc = pem(a, EVP_PKEY_KEYPAIR, "EncryptedPrivateKeyInfo", "pair pw");
  const char *privp = write_text("pair.key", priv, 0600), *pubp = write_text("pair.pub", pub, 0644);
  const char *otherp = write_text("other.pub", other, 0644), *rsap = write_text("rsa.pub", rsa, 0644);
  const char *crtp = write_text("pair.crt", crt, 0644), *encp = write_text("pair-enc.key", enc, 0600);

  jwtkit_pem_report *r = check_pair(privp, pubp, NULL);
  expect_clean(r, "matching pair");
  assert_int_equal(jwtkit_pem_report_files(r), 2);
  assert_string_equal(jwtkit_pem_report_path(r, 1), pubp);
  assert_int_equal(jwtkit_pem_report_blocks(r), 2);
  assert_int_equal(jwtkit_pem_report_block(r, 1)->file, 1);
  jwtkit_pem_report_free(r);

  r = check_pair(privp, otherp, NULL);
  const jwtkit_pem_finding *f =
      expect(r, 1, JWTKIT_PEM_PROB_PAIR_MISMATCH, "the public key is not the public part of the private key");
  assert_int_equal(f->file, 1);
  assert_int_equal(f->block, 1);
  jwtkit_pem_report_free(r);

  r = check_pair(privp, rsap, NULL);
  expect(r, 1, JWTKIT_PEM_PROB_PAIR_MISMATCH, "the private key (EC P-256) and the public key (RSA 2048)");
  jwtkit_pem_report_free(r);

  r = check_pair(privp, crtp, NULL); /* a certificate may stand for the public key */
  expect_clean(r, "key and its certificate");
  jwtkit_pem_report_free(r);

  r = check_pair(encp, pubp, "pair pw");
  expect_clean(r, "encrypted key with passphrase");
  jwtkit_pem_report_free(r);
  free(priv), free(pub), free(other), free(rsa), free(crt), free(enc);
}

static void test_pair_unchecked(void **state) {
  (void)state;
  EVP_PKEY *a = key("EC", "P-256");
  char *pub = spki(a), *enc = pem(a, EVP_PKEY_KEYPAIR, "EncryptedPrivateKeyInfo", "pair pw");
  const char *pubp = write_text("pu.pub", pub, 0644), *encp = write_text("pu-enc.key", enc, 0600);
  jwtkit_pem_report *r = check_pair(encp, pubp, NULL);
  const jwtkit_pem_finding *f =
      expect(r, 1, JWTKIT_PEM_PROB_PAIR_UNCHECKED, "encrypted and no passphrase was given");
  assert_int_equal(f->file, 0);
  jwtkit_pem_report_free(r);
  r = check_pair(encp, pubp, "bad pw");
  expect(r, 2, JWTKIT_PEM_PROB_WRONG_PASSPHRASE, "does not decrypt");
  expect(r, 2, JWTKIT_PEM_PROB_PAIR_UNCHECKED, "no readable private key");
  jwtkit_pem_report_free(r);
  r = check_pair(pubp, pubp, NULL); /* the private side is public */
  expect(r, 1, JWTKIT_PEM_PROB_PAIR_UNCHECKED, "holds a public key, not a private key");
  jwtkit_pem_report_free(r);
  free(pub), free(enc);
}

static void test_pair_public_is_private(void **state) {
  (void)state;
  char *priv = pkcs8(key("EC", "P-256"));
  const char *privp = write_text("pp.key", priv, 0600);
  jwtkit_pem_report *r = check_pair(privp, privp, NULL);
  const jwtkit_pem_finding *f =
      expect(r, 1, JWTKIT_PEM_PROB_PAIR_PUBLIC_IS_PRIVATE, "the public key file holds a private key");
  assert_int_equal(f->file, 1);
  jwtkit_pem_report_free(r);
  free(priv);
}

/* ------------------------------------------------------------ reporting */

static void test_names(void **state) {
  (void)state;
  static const jwtkit_pem_problem all[] = {
#define ROW_(n, num, s, d) JWTKIT_PEM_PROB_##n,
      JWTKIT_PEM_PROBLEM_MAP(ROW_)
#undef ROW_
  };
  size_t count = sizeof all / sizeof *all;
  assert_int_equal(count, 33);
  for (size_t i = 0; i < count; i++) {
    assert_int_equal(all[i], (int)i + 1); /* numbers are dense and stable */
    const char *n = jwtkit_pem_problem_name(all[i]);
    assert_string_not_equal(n, "unknown");
    assert_string_not_equal(jwtkit_pem_problem_desc(all[i]), "unknown problem");
    for (size_t j = 0; j < i; j++) assert_string_not_equal(n, jwtkit_pem_problem_name(all[j]));
  }
  assert_string_equal(jwtkit_pem_problem_name(JWTKIT_PEM_PROB_RSA_TOO_SMALL), "rsa-too-small");
  assert_string_equal(jwtkit_pem_problem_name(JWTKIT_PEM_PROB_RSA_EXPONENT), "rsa-exponent");
  assert_string_equal(jwtkit_pem_problem_name((jwtkit_pem_problem)0), "unknown");
  assert_string_equal(jwtkit_pem_problem_name((jwtkit_pem_problem)999), "unknown");
  assert_string_equal(jwtkit_pem_type_name(JWTKIT_PEM_ENCRYPTED_PRIVATE), "encrypted-private");
  assert_string_equal(jwtkit_pem_type_name((jwtkit_pem_type)77), "unknown");
}

static void test_json(void **state) {
  (void)state;
  char *p = pkcs8(key("RSA", "1024"));
  const char *path = write_text("weak.pem", p, 0644);
  jwtkit_pem_report *r = check_file(path, NULL);
  char *js = NULL;
  size_t n = 0;
  assert_int_equal(jwtkit_pem_report_to_json(r, NULL, &js, &n), JWTKIT_OK);
  assert_int_equal(strlen(js), n);
  json_error_t err;
  json_t *doc = json_loads(js, 0, &err);
  if (doc == NULL) fail_msg("bad JSON (%s): %s", err.text, js);
  assert_true(json_is_false(json_object_get(doc, "ok")));
  assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "files"), 0)), path);
  json_t *b0 = json_array_get(json_object_get(doc, "blocks"), 0);
  assert_string_equal(json_string_value(json_object_get(b0, "type")), "private");
  assert_string_equal(json_string_value(json_object_get(b0, "family")), "RSA");
  assert_int_equal(json_integer_value(json_object_get(b0, "bits")), 1024);
  assert_true(json_is_null(json_object_get(b0, "curve")));
  json_t *probs = json_object_get(doc, "problems");
  assert_int_equal(json_array_size(probs), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(probs, 0), "code")), "rsa-too-small");
  assert_int_equal(json_integer_value(json_object_get(json_array_get(probs, 0), "block")), 0);
  assert_string_equal(json_string_value(json_object_get(json_array_get(probs, 1), "code")), "file-mode");
  assert_true(json_is_null(json_object_get(json_array_get(probs, 1), "block")));
  json_decref(doc);
  jwtkit_free(js);
  /* the path may be overridden, and is made valid UTF-8; quotes are escaped */
  assert_int_equal(jwtkit_pem_report_to_json(r, "we\"ird\xff.pem", &js, NULL), JWTKIT_OK);
  doc = json_loads(js, 0, &err);
  if (doc == NULL) fail_msg("bad JSON (%s): %s", err.text, js);
  assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "files"), 0)), "we\"ird?.pem");
  json_decref(doc);
  jwtkit_free(js);
  jwtkit_pem_report_free(r);
  /* clean text report: ok true, file null */
  char *pub = spki(key("EC", "P-256"));
  r = check(pub, NULL);
  assert_int_equal(jwtkit_pem_report_to_json(r, NULL, &js, NULL), JWTKIT_OK);
  doc = json_loads(js, 0, &err);
  assert_non_null(doc);
  assert_true(json_is_true(json_object_get(doc, "ok")));
  assert_true(json_is_null(json_array_get(json_object_get(doc, "files"), 0)));
  assert_int_equal(json_array_size(json_object_get(doc, "problems")), 0);
  json_decref(doc);
  jwtkit_free(js);
  jwtkit_pem_report_free(r);
  /* bytes from the input are printable in messages and labels */
  r = check("-----BEGIN K\x01\xc3-----\nAAAA\n-----END K\x01\xc3-----\n", NULL);
  assert_int_equal(jwtkit_pem_report_to_json(r, NULL, &js, NULL), JWTKIT_OK);
  doc = json_loads(js, 0, &err);
  if (doc == NULL) fail_msg("bad JSON (%s): %s", err.text, js);
  json_decref(doc);
  jwtkit_free(js);
  assert_string_equal(jwtkit_pem_report_block(r, 0)->label, "K??");
  jwtkit_pem_report_free(r);
  free(p), free(pub);
}

/* Every allocation the validator makes can fail: the result is then
 * JWTKIT_ERR_NOMEM with nothing leaked (LeakSanitizer checks). */
static long g_fail_at = -1, g_count;
static void *f_malloc(size_t n) { return g_count++ == g_fail_at ? NULL : malloc(n); }
static void *f_realloc(void *p, size_t n) { return g_count++ == g_fail_at ? NULL : realloc(p, n); }

static void test_allocation_failures(void **state) {
  (void)state;
  static const jwtkit_allocator fail = {f_malloc, f_realloc, free};
  char *a = pkcs8(key("RSA", "1024")), *b = spki(key("EC", "P-256"));
  char *two = concat(a, b), *text = concat("lead\n", two);
  const char *pa = write_text("oom.key", a, 0644), *pb = write_text("oom.pub", b, 0644);
  int done = 0;
  for (long n = 0; !done && n < 1000; n++) {
    jwtkit_set_allocator(&fail);
    g_count = 0;
    g_fail_at = n;
    jwtkit_pem_report *r = NULL, *q = NULL;
    char *js = NULL;
    jwtkit_err rc = jwtkit_pem_check(text, strlen(text), NULL, &r);
    if (rc == JWTKIT_OK) rc = jwtkit_pem_report_to_json(r, "x", &js, NULL);
    if (rc == JWTKIT_OK) rc = jwtkit_pem_check_pair(pa, pb, NULL, &q);
    g_fail_at = -1;
    jwtkit_set_allocator(NULL);
    if (rc == JWTKIT_OK) {
      done = 1;
      assert_true(jwtkit_pem_report_findings(r) >= 3);
      assert_int_equal(jwtkit_pem_report_count(q, JWTKIT_PEM_PROB_PAIR_MISMATCH), 1);
    } else {
      assert_int_equal(rc, JWTKIT_ERR_NOMEM);
    }
    jwtkit_free(js);
    jwtkit_pem_report_free(r);
    jwtkit_pem_report_free(q);
  }
  assert_true(done);
  free(a), free(b), free(two), free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_certificates), cmocka_unit_test(test_empty),
      cmocka_unit_test(test_no_pem),
      cmocka_unit_test(test_leading_text),      cmocka_unit_test(test_trailing_text),
      cmocka_unit_test(test_multiple_keys),     cmocka_unit_test(test_armor_malformed),
      cmocka_unit_test(test_armor_dashes),      cmocka_unit_test(test_armor_indented),
      cmocka_unit_test(test_missing_end),       cmocka_unit_test(test_end_without_begin),
      cmocka_unit_test(test_label_mismatch),    cmocka_unit_test(test_unknown_label),
      cmocka_unit_test(test_base64_char),       cmocka_unit_test(test_base64_padding),
      cmocka_unit_test(test_base64_line),       cmocka_unit_test(test_unexpected_header),
      cmocka_unit_test(test_legacy_encryption), cmocka_unit_test(test_der_invalid),
      cmocka_unit_test(test_label_content),     cmocka_unit_test(test_unsupported_key),
      cmocka_unit_test(test_rsa_too_small),     cmocka_unit_test(test_rsa_exponent),
      cmocka_unit_test(test_unapproved_curve),  cmocka_unit_test(test_key_invalid),
      cmocka_unit_test(test_wrong_passphrase),  cmocka_unit_test(test_file_mode),
      cmocka_unit_test(test_file_errors),       cmocka_unit_test(test_too_large),
      cmocka_unit_test(test_too_many_blocks),   cmocka_unit_test(test_too_many_problems),
      cmocka_unit_test(test_pair),              cmocka_unit_test(test_pair_unchecked),
      cmocka_unit_test(test_pair_public_is_private), cmocka_unit_test(test_names),
      cmocka_unit_test(test_json),              cmocka_unit_test(test_allocation_failures),
      cmocka_unit_test(test_good_keys), /* last: it waits for the RSA 4096 thread */
  };
  return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
