/* The PostgreSQL keyring against a real server (tests/pg/run_unit.sh starts
 * one and passes its URL in JWTKIT_TEST_PG_URL): sealing at rest, KEK
 * rotation, tampering, the schema, concurrent rotation from several
 * processes, SIGKILL during rotation, and change notifications. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "testutil.h"

#define T0 1800000000LL

static const char *g_url;
static char g_schema_url[1024];
static unsigned char g_k1[1][32], g_k2[1][32], g_k21[2][32];
static int g_schema_no;

static PGconn *db(void) {
  PGconn *c = PQconnectdb(g_schema_url);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  return c;
}

static void sql(const char *q) {
  PGconn *c = db();
  PGresult *r = PQexec(c, q);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", q, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

/* Each test gets a schema of its own (search_path in the URL). */
static int setup(void **state) {
  (void)state;
  char name[32];
  snprintf(name, sizeof name, "t%d_%ld", ++g_schema_no, (long)getpid());
  snprintf(g_schema_url, sizeof g_schema_url, "%s%soptions=-csearch_path%%3D%s", g_url,
           strchr(g_url, '?') ? "&" : "?", name);
  PGconn *c = PQconnectdb(g_url);
  if (PQstatus(c) != CONNECTION_OK) return -1;
  char q[96];
  snprintf(q, sizeof q, "CREATE SCHEMA %s", name);
  PGresult *r = PQexec(c, q);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  PQfinish(c);
  return ok ? 0 : -1;
}

static jwtkit_keyring_secrets with(const unsigned char (*keks)[32], size_t n) {
  jwtkit_keyring_secrets s = {.passphrase = NULL, .keks = keks, .nkeks = n};
  return s;
}

static jwtkit_keyring_timing timing(void) {
  jwtkit_keyring_timing t;
  jwtkit_keyring_timing_default(&t);
  t.max_age = 300;
  t.token_ttl = 600;
  t.rotate_every = 3600;
  t.publish_ahead = 900;
  return t;
}

static void make_ring(const jwtkit_alg *algs, size_t n) {
  jwtkit_keyring_secrets s = with((const unsigned char(*)[32])g_k1, 1);
  jwtkit_keyring_timing t = timing();
  jwtkit_errinfo ei;
  jwtkit_err rc = jwtkit_keyring_init_ex(g_schema_url, algs, n, &t, &s, T0, NULL, NULL, &ei);
  if (rc != JWTKIT_OK) fail_msg("init: %s", ei.msg);
}

static jwtkit_keyring *open_with(const unsigned char (*keks)[32], size_t n, jwtkit_err want) {
  jwtkit_keyring *kr = NULL;
  jwtkit_keyring_secrets s = with(keks, n);
  jwtkit_errinfo ei;
  jwtkit_err rc = jwtkit_keyring_open_ex(&kr, g_schema_url, &s, &ei);
  if (rc != want) fail_msg("open: want %s, got %s (%s)", jwtkit_strerror(want), jwtkit_strerror(rc), ei.msg);
  return kr;
}

static void sleep_ms(long ms) {
  struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&d, NULL);
}

static void keep_line(void *ctx, const char *line) { snprintf(ctx, 256, "%s", line); }

/* report lines into a pipe, one per line */
static void write_line(void *ctx, const char *line) {
  int fd = *(int *)ctx;
  char buf[300];
  int n = snprintf(buf, sizeof buf, "%s\n", line);
  if (n > 0 && write(fd, buf, (size_t)n) != n) _exit(4);
}

/* -------------------------------------------------------------- basics */

static void test_init_open_sign(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA};
  make_ring(algs, 2);
  jwtkit_keyring *kr = open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_count(kr), 2);
  jwtkit_key *k = NULL;
  int64_t max_exp = 0;
  assert_int_equal(jwtkit_keyring_signing_key(kr, JWTKIT_ALG_ES256, T0 + 10, &k, &max_exp), JWTKIT_OK);
  assert_true(jwtkit_key_can_sign(k));
  /* a second init on the same database is refused */
  jwtkit_keyring_secrets s = with((const unsigned char(*)[32])g_k1, 1);
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_init_ex(g_schema_url, algs, 1, NULL, &s, T0, NULL, NULL, &ei), JWTKIT_ERR_STATE);
  /* the same handle can mutate, and the change is stored */
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 3600 - 900, 0, NULL, NULL, &ei), JWTKIT_OK);
  jwtkit_keyring *again = open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_count(again), 4);
  assert_int_equal(jwtkit_keyring_generation(again), jwtkit_keyring_generation(kr));
  jwtkit_keyring_free(again);
  jwtkit_keyring_free(kr);
}

static void test_needs_a_kek(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256};
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_init(g_schema_url, algs, 1, NULL, NULL, T0, NULL, NULL, &ei), JWTKIT_ERR_KEK);
  assert_non_null(strstr(ei.msg, "key-encryption key"));
  make_ring(algs, 1);
  jwtkit_keyring *kr = NULL;
  assert_int_equal(jwtkit_keyring_open(&kr, g_schema_url, NULL, &ei), JWTKIT_ERR_KEK);
  assert_null(kr);
  /* a KEK that sealed nothing */
  open_with((const unsigned char(*)[32])g_k2, 1, JWTKIT_ERR_KEK);
}

/* Every column of every jwtkit table, as text. */
static char *dump_tables(void) {
  PGconn *c = db();
  PGresult *r = PQexec(c,
                       "SELECT coalesce(string_agg(t, E'\\n'), '') FROM ("
                       " SELECT doc AS t FROM jwtkit_keyring UNION ALL"
                       " SELECT name || ' ' || kek_id || ' ' || encode(nonce, 'hex') || ' ' || encode(sealed, 'escape')"
                       "  FROM jwtkit_private_keys) x");
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  char *s = strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return s;
}

static int contains(const char *hay, const void *needle, size_t n) {
  size_t h = strlen(hay);
  for (size_t i = 0; n <= h && i + n <= h; i++)
    if (memcmp(hay + i, needle, n) == 0) return 1;
  return 0;
}

static void test_rows_hold_only_ciphertext(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256, JWTKIT_ALG_RS256};
  make_ring(algs, 2);
  jwtkit_keyring *kr = open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_OK);
  char *rows = dump_tables();
  assert_true(strlen(rows) > 1000);
  assert_false(contains(rows, "PRIVATE KEY", 11));
  assert_false(contains(rows, "\"d\"", 3));
  /* the private parts themselves, in every encoding the rows could show */
  const jwtkit_alg both[] = {JWTKIT_ALG_ES256, JWTKIT_ALG_RS256};
  for (size_t i = 0; i < 2; i++) {
    jwtkit_key *k = NULL;
    assert_int_equal(jwtkit_keyring_signing_key(kr, both[i], T0 + 1, &k, NULL), JWTKIT_OK);
    char *jwk = NULL, *pem = NULL;
    size_t jl = 0, pl = 0;
    assert_int_equal(jwtkit_key_to_jwk(k, 1, &jwk, &jl), JWTKIT_OK);
    const char *d = strstr(jwk, "\"d\":\"");
    assert_non_null(d);
    d += 5;
    assert_false(contains(rows, d, 24)); /* base64url of the private scalar/exponent */
    assert_int_equal(jwtkit_key_to_pem(k, 1, NULL, &pem, &pl), JWTKIT_OK);
    const char *body = strchr(pem, '\n') + 1;
    assert_false(contains(rows, body, 40)); /* the PEM body */
    size_t rl = 0;
    const char *end = strchr(d, '"');
    unsigned char *raw = tu_b64url_dec(d, (size_t)(end - d), &rl);
    assert_non_null(raw);
    assert_false(contains(rows, raw, rl < 24 ? rl : 24)); /* the raw bytes */
    free(raw);
    jwtkit_free(jwk);
    jwtkit_free(pem);
  }
  free(rows);
  jwtkit_keyring_free(kr);
}

/* --------------------------------------------------------- tampering */

static void test_swapped_rows_do_not_open(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA};
  make_ring(algs, 2);
  /* move one key's sealed bytes onto the other's row: the name is bound as
   * associated data, so the swap is detected instead of loading a key
   * under another kid */
  sql("UPDATE jwtkit_private_keys a SET nonce = b.nonce, sealed = b.sealed FROM jwtkit_private_keys b "
      "WHERE a.name = (SELECT min(name) FROM jwtkit_private_keys) AND b.name = (SELECT max(name) FROM jwtkit_private_keys)");
  jwtkit_keyring *kr = NULL;
  jwtkit_keyring_secrets s = with((const unsigned char(*)[32])g_k1, 1);
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_open_ex(&kr, g_schema_url, &s, &ei), JWTKIT_ERR_KEK);
  assert_non_null(strstr(ei.msg, "altered"));
  /* a flipped bit in a ciphertext */
  sql("UPDATE jwtkit_private_keys SET sealed = set_byte(sealed, 5, get_byte(sealed, 5) # 1)");
  assert_int_equal(jwtkit_keyring_open_ex(&kr, g_schema_url, &s, &ei), JWTKIT_ERR_KEK);
}

/* ------------------------------------- the document, changed without a KEK */

/* What someone with write access to the table but no KEK can do. */
static char *get_doc(void) {
  PGconn *c = db();
  PGresult *r = PQexec(c, "SELECT doc FROM jwtkit_keyring WHERE id = 1");
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  assert_int_equal(PQntuples(r), 1);
  char *s = strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return s;
}

static void put_doc(const char *doc) {
  PGconn *c = db();
  const char *params[1] = {doc};
  PGresult *r = PQexecParams(c, "UPDATE jwtkit_keyring SET doc = $1 WHERE id = 1", 1, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("UPDATE: %s", PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

/* text with the first `from` replaced by `to` (malloc'd) */
static char *replace1(const char *text, const char *from, const char *to) {
  const char *at = strstr(text, from);
  if (at == NULL) fail_msg("\"%s\" not found in the keyring document", from);
  size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
  char *out = malloc(n);
  assert_non_null(out);
  snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
  return out;
}

/* The first key entry of the document removed (it has several). */
static char *drop_first_key(const char *doc) {
  const char *start = strstr(doc, "\"keys\":[");
  assert_non_null(start);
  start += 8;
  const char *end = strstr(start, "}},{"); /* the first entry's JWK and entry close */
  assert_non_null(end);
  end += 3;
  size_t n = strlen(doc) + 1;
  char *out = malloc(n);
  assert_non_null(out);
  snprintf(out, n, "%.*s%s", (int)(start - doc), doc, end);
  return out;
}

/* The document without its MAC, as jwtkit wrote it before it
 * authenticated documents (version 1, no auth member). */
static char *unauthenticated(const char *doc) {
  char *v1 = replace1(doc, "\"version\":2", "\"version\":1");
  char *auth = strstr(v1, ",\"auth\":");
  assert_non_null(auth);
  strcpy(auth, "}\n");
  return v1;
}

/* An entry for a retiring key with the attacker's own public JWK: it needs
 * no sealed row. */
static char *attacker_entry(void) {
  jwtkit_key *k = NULL;
  assert_int_equal(jwtkit_key_generate(&k, JWTKIT_ALG_ES256, 0, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_key_set_kid(k, "attacker", 8), JWTKIT_OK);
  char *jwk = NULL;
  assert_int_equal(jwtkit_key_to_jwk(k, 0, &jwk, NULL), JWTKIT_OK);
  char *out = malloc(strlen(jwk) + 512);
  assert_non_null(out);
  sprintf(out,
          "\"keys\":[{\"kid\":\"attacker\",\"alg\":\"ES256\",\"state\":\"retiring\",\"file\":\"attacker\","
          "\"created\":1800000000,\"published\":1800000000,\"activated\":1800000000,\"retiring\":1800000500,"
          "\"retired\":0,\"jwk\":%s},",
          jwk);
  jwtkit_free(jwk);
  jwtkit_key_free(k);
  return out;
}

static int jwks_has(jwtkit_keyring *kr, const char *needle) {
  char *jwks = NULL;
  assert_int_equal(jwtkit_keyring_jwks(kr, &jwks, NULL), JWTKIT_OK);
  int has = strstr(jwks, needle) != NULL;
  jwtkit_free(jwks);
  return has;
}

static void test_document_changed_without_kek(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256};
  make_ring(algs, 1);
  jwtkit_errinfo ei;
  /* a revoked key and a retiring one beside the active key */
  jwtkit_keyring *kr = open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_OK);
  jwtkit_key *imp = NULL;
  assert_int_equal(jwtkit_key_generate(&imp, JWTKIT_ALG_ES256, 0, NULL), JWTKIT_OK);
  assert_int_equal(jwtkit_key_set_kid(imp, "imported-revoked", 16), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_add(kr, imp, T0 + 10, NULL, NULL, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_revoke(kr, "imported-revoked", T0 + 20, NULL, NULL, &ei), JWTKIT_OK);
  jwtkit_key_free(imp);
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 3600 - 900, 0, NULL, NULL, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 3600, 0, NULL, NULL, &ei), JWTKIT_OK); /* one retiring now */
  char *saved = get_doc();
  char *jwks0 = NULL;
  assert_int_equal(jwtkit_keyring_jwks(kr, &jwks0, NULL), JWTKIT_OK);
  assert_non_null(strstr(saved, "\"state\":\"revoked\""));
  assert_non_null(strstr(saved, "\"state\":\"retiring\""));
  assert_non_null(strstr(saved, "\"auth\":{\"kek\":\""));

  char *entry = attacker_entry();
  const char *x = strstr(entry, "\"x\":\"");
  char attacker_x[64];
  snprintf(attacker_x, sizeof attacker_x, "%.48s", x);
  const char *y = strstr(saved, "\"x\":\"");
  char stored_x[64];
  snprintf(stored_x, sizeof stored_x, "%.48s", y);
  char tamper_time[64];
  snprintf(tamper_time, sizeof tamper_time, "\"activated\":%lld", (long long)T0 + 3600);
  struct {
    const char *what;
    char *doc;
    const char *says;
  } cases[] = {
      {"a retiring key with the attacker's JWK", replace1(saved, "\"keys\":[", entry), "does not match its MAC"},
      {"a state changed", replace1(saved, "\"state\":\"active\"", "\"state\":\"pending\""), "does not match its MAC"},
      {"a time changed", replace1(saved, tamper_time, "\"activated\":1800999999"), "does not match its MAC"},
      {"a revoked key brought back", replace1(saved, "\"state\":\"revoked\"", "\"state\":\"retiring\""),
       "does not match its MAC"},
      {"a public key swapped", replace1(saved, stored_x, attacker_x), "does not match its MAC"},
      {"a key removed", drop_first_key(saved), "does not match its MAC"},
      {"a field edited", replace1(saved, "\"token_ttl\":600", "\"token_ttl\":86400"), "does not match its MAC"},
      {"the MAC stripped (version 1)", unauthenticated(saved), "is not authenticated"},
      {"the MAC's KEK id changed", NULL, "not among the configured KEKs"},
  };
  char id1[17];
  jwtkit_kek_id(g_k1[0], id1);
  char from[40];
  snprintf(from, sizeof from, "\"kek\":\"%s\"", id1);
  cases[8].doc = replace1(saved, from, "\"kek\":\"0123456789abcdef\"");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    put_doc(cases[i].doc);
    /* a new reader refuses it */
    jwtkit_keyring *fresh = NULL;
    jwtkit_keyring_secrets s = with((const unsigned char(*)[32])g_k1, 1);
    jwtkit_err rc = jwtkit_keyring_open_ex(&fresh, g_schema_url, &s, &ei);
    jwtkit_err want = i == 8 ? JWTKIT_ERR_KEK : JWTKIT_ERR_BAD_SIGNATURE;
    if (rc != want) fail_msg("%s: open gave %s (%s)", cases[i].what, jwtkit_strerror(rc), ei.msg);
    assert_null(fresh);
    assert_string_equal(ei.field, "auth");
    if (strstr(ei.msg, cases[i].says) == NULL) fail_msg("%s: %s", cases[i].what, ei.msg);
    /* the running handle's next mutation too, and it never publishes the
     * attacker's key */
    rc = jwtkit_keyring_rotate(kr, T0 + 3601, 0, NULL, NULL, &ei);
    if (rc != want) fail_msg("%s: rotate gave %s (%s)", cases[i].what, jwtkit_strerror(rc), ei.msg);
    assert_false(jwks_has(kr, "attacker"));
    assert_false(jwks_has(kr, attacker_x));
    /* rekey does not authenticate it under a new KEK either */
    jwtkit_keyring *both = NULL;
    jwtkit_keyring_secrets s21 = with((const unsigned char(*)[32])g_k21, 2);
    assert_int_equal(jwtkit_keyring_open_ex(&both, g_schema_url, &s21, &ei), want);
    free(cases[i].doc);
    put_doc(saved);
  }
  /* the stored document back: the handle serves what it served */
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 3601, 0, NULL, NULL, &ei), JWTKIT_OK);
  char *jwks1 = NULL;
  assert_int_equal(jwtkit_keyring_jwks(kr, &jwks1, NULL), JWTKIT_OK);
  assert_string_equal(jwks1, jwks0);
  jwtkit_free(jwks1);
  jwtkit_free(jwks0);
  free(entry);
  free(saved);
  jwtkit_keyring_free(kr);
}

/* Rollback: an older but authentic document put back is refused by a
 * handle that has seen a newer one (and by one opened with that memory);
 * a handle starting from nothing cannot tell (docs/keyring.md). */
static void test_rollback_refused(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256};
  make_ring(algs, 1);
  char *old = get_doc();
  jwtkit_keyring *kr = open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_generation(kr), 1);
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 3600 - 900, 0, NULL, NULL, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_generation(kr), 2);
  put_doc(old);
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 3600, 0, NULL, NULL, &ei), JWTKIT_ERR_STATE);
  assert_string_equal(ei.field, "generation");
  assert_non_null(strstr(ei.msg, "generation 1, older than generation 2"));
  /* the handle stays refusing (it does not forget what it saw) */
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 3601, 0, NULL, NULL, &ei), JWTKIT_ERR_STATE);
  jwtkit_keyring *again = NULL;
  jwtkit_keyring_secrets s = with((const unsigned char(*)[32])g_k1, 1);
  assert_int_equal(jwtkit_keyring_open_seen(&again, g_schema_url, &s, 2, &ei), JWTKIT_ERR_STATE);
  assert_null(again);
  /* the limit: a reader with no memory takes the old authentic document */
  assert_int_equal(jwtkit_keyring_open_seen(&again, g_schema_url, &s, 0, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_generation(again), 1);
  jwtkit_keyring_free(again);
  free(old);
  jwtkit_keyring_free(kr);
}

/* A document from before documents were authenticated: refused until an
 * operator reviews it and trusts it; trust refuses a published key that
 * has no sealed private key (nobody with the KEK made it). */
static void test_trust_document(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA};
  make_ring(algs, 2);
  char *doc = get_doc();
  char *legacy = unauthenticated(doc);
  put_doc(legacy);
  open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_ERR_BAD_SIGNATURE);
  jwtkit_keyring_secrets s = with((const unsigned char(*)[32])g_k1, 1);
  jwtkit_keyring *kr = NULL;
  jwtkit_errinfo verdict, ei;
  /* with a foreign retiring key in it: reviewable, not trusted */
  char *entry = attacker_entry();
  char *foreign = replace1(legacy, "\"keys\":[", entry);
  put_doc(foreign);
  assert_int_equal(jwtkit_keyring_open_review(&kr, g_schema_url, &s, &verdict, &ei), JWTKIT_OK);
  assert_int_equal(verdict.code, JWTKIT_ERR_BAD_SIGNATURE);
  assert_int_equal(jwtkit_keyring_count(kr), 3);
  assert_int_equal(jwtkit_keyring_trust(kr, NULL, NULL, &ei), JWTKIT_ERR_STATE);
  assert_non_null(strstr(ei.msg, "key attacker (retiring) has no matching private key here"));
  jwtkit_keyring_free(kr);
  /* the document as it was: trusted, then an ordinary keyring */
  put_doc(legacy);
  assert_int_equal(jwtkit_keyring_open_review(&kr, g_schema_url, &s, &verdict, &ei), JWTKIT_OK);
  /* changed between the review and the trust: refused */
  char *other = replace1(legacy, "\"token_ttl\":600", "\"token_ttl\":601");
  put_doc(other);
  assert_int_equal(jwtkit_keyring_trust(kr, NULL, NULL, &ei), JWTKIT_ERR_STATE);
  assert_non_null(strstr(ei.msg, "changed since it was reviewed"));
  put_doc(legacy);
  char line[256] = "";
  assert_int_equal(jwtkit_keyring_trust(kr, keep_line, line, &ei), JWTKIT_OK);
  char id1[17], want[128];
  jwtkit_kek_id(g_k1[0], id1);
  snprintf(want, sizeof want, "authenticated the keyring document as generation 2 under KEK %s", id1);
  assert_string_equal(line, want);
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 3600 - 900, 0, NULL, NULL, &ei), JWTKIT_OK);
  jwtkit_keyring_free(kr);
  kr = open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_generation(kr), 3);
  jwtkit_keyring_free(kr);
  free(other);
  free(foreign);
  free(entry);
  free(legacy);
  free(doc);
}

/* ------------------------------------------------------------ rekey */

static void test_rekey(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA};
  make_ring(algs, 2); /* sealed under K1 */
  char id1[17], id2[17];
  jwtkit_kek_id(g_k1[0], id1);
  jwtkit_kek_id(g_k2[0], id2);
  /* new KEK first, old one still listed */
  jwtkit_keyring *kr = open_with((const unsigned char(*)[32])g_k21, 2, JWTKIT_OK);
  char line[256] = "";
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_rekey(kr, keep_line, line, &ei), JWTKIT_OK);
  assert_string_equal(line, "re-sealed 2 of 2 private keys under the first KEK (0 were already under it)");
  /* the document too, under the new KEK, its generation unchanged */
  char *doc = get_doc();
  char want[40];
  snprintf(want, sizeof want, "\"auth\":{\"kek\":\"%s\"", id2);
  assert_non_null(strstr(doc, want));
  assert_non_null(strstr(doc, "\"generation\":1,"));
  free(doc);
  PGconn *c = db();
  PGresult *r = PQexec(c, "SELECT kek_id, count(*) FROM jwtkit_private_keys GROUP BY kek_id");
  assert_int_equal(PQntuples(r), 1);
  assert_string_equal(PQgetvalue(r, 0, 0), id2);
  assert_string_equal(PQgetvalue(r, 0, 1), "2");
  PQclear(r);
  PQfinish(c);
  jwtkit_keyring_free(kr);
  /* the old KEK alone no longer opens anything; the new one alone does */
  open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_ERR_KEK);
  jwtkit_keyring_free(open_with((const unsigned char(*)[32])g_k2, 1, JWTKIT_OK));
}

/* Rekey all or nothing: a handle opened with K1+K2, one row made
 * unreadable, rekey fails and no row moved to K2. */
static void test_rekey_all_or_nothing(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA};
  make_ring(algs, 2);
  jwtkit_keyring *kr = open_with((const unsigned char(*)[32])g_k21, 2, JWTKIT_OK);
  sql("UPDATE jwtkit_private_keys SET sealed = set_byte(sealed, 3, get_byte(sealed, 3) # 1) "
      "WHERE name = (SELECT max(name) FROM jwtkit_private_keys)");
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_rekey(kr, NULL, NULL, &ei), JWTKIT_ERR_KEK);
  PGconn *c = db();
  char id1[17];
  jwtkit_kek_id(g_k1[0], id1);
  PGresult *r = PQexec(c, "SELECT DISTINCT kek_id FROM jwtkit_private_keys");
  assert_int_equal(PQntuples(r), 1);
  assert_string_equal(PQgetvalue(r, 0, 0), id1);
  PQclear(r);
  PQfinish(c);
  jwtkit_keyring_free(kr);
}

/* ------------------------------------------------------------ schema */

static void test_schema_versions(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256};
  /* an empty schema: open says there is no keyring (and creates nothing) */
  open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_ERR_NOT_FOUND);
  make_ring(algs, 1);
  PGconn *c = db();
  PGresult *r = PQexec(c, "SELECT version FROM jwtkit_schema");
  assert_string_equal(PQgetvalue(r, 0, 0), "2"); /* 2: with the issuer's clients tables */
  PQclear(r);
  PQfinish(c);
  /* a database migrated by a newer jwtkit is refused, not misread */
  sql("UPDATE jwtkit_schema SET version = 99");
  jwtkit_keyring *kr = NULL;
  jwtkit_keyring_secrets s = with((const unsigned char(*)[32])g_k1, 1);
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_open_ex(&kr, g_schema_url, &s, &ei), JWTKIT_ERR_UNSUPPORTED);
  assert_non_null(strstr(ei.msg, "newer"));
  sql("UPDATE jwtkit_schema SET version = 2");
  kr = open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_OK);
  sql("UPDATE jwtkit_schema SET version = 99");
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 1, 1, NULL, NULL, &ei), JWTKIT_ERR_UNSUPPORTED);
  sql("UPDATE jwtkit_schema SET version = 2");
  jwtkit_keyring_free(kr);
}

/* ------------------------------------------------------- concurrency */

/* n processes each open the keyring and rotate at `now`; returns the
 * number of report lines starting with `prefix` over all of them. */
static int rotate_in_parallel(int n, int64_t now, int force, const char *prefix) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  for (int i = 0; i < n; i++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      jwtkit_keyring *kr = NULL;
      jwtkit_keyring_secrets s = with((const unsigned char(*)[32])g_k1, 1);
      jwtkit_errinfo ei;
      if (jwtkit_keyring_open_ex(&kr, g_schema_url, &s, &ei) != JWTKIT_OK) _exit(2);
      int fd = fds[1];
      if (jwtkit_keyring_rotate(kr, now, force, write_line, &fd, &ei) != JWTKIT_OK) _exit(3);
      jwtkit_keyring_free(kr);
      _exit(0);
    }
  }
  close(fds[1]);
  char buf[16384];
  size_t got = 0;
  ssize_t r;
  while (got < sizeof buf - 1 && (r = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)r;
  buf[got] = '\0';
  close(fds[0]);
  for (int i = 0; i < n; i++) {
    int st = 0;
    wait(&st);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  int count = 0;
  for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
    if (strncmp(line, prefix, strlen(prefix)) == 0) count++;
  return count;
}

static void test_concurrent_rotation_happens_once(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256};
  make_ring(algs, 1);
  /* publish time: four replicas, one new pending key */
  assert_int_equal(rotate_in_parallel(4, T0 + 3600 - 900, 0, "published pending key"), 1);
  /* rotation time: one activation */
  assert_int_equal(rotate_in_parallel(4, T0 + 3600, 0, "activated key"), 1);
  /* forced by four operators at once: still one new pending key */
  assert_int_equal(rotate_in_parallel(4, T0 + 3700, 1, "published pending key"), 1);
  jwtkit_keyring *kr = open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_OK);
  int active = 0, pending = 0;
  for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
    jwtkit_keyring_entry e;
    assert_int_equal(jwtkit_keyring_get(kr, i, &e), JWTKIT_OK);
    active += e.state == JWTKIT_KEY_ACTIVE;
    pending += e.state == JWTKIT_KEY_PENDING;
  }
  assert_int_equal(active, 1);
  assert_int_equal(pending, 1);
  assert_int_equal(jwtkit_keyring_count(kr), 3);
  jwtkit_keyring_free(kr);
}

/* The stored keyring is consistent: it opens (every pending and active
 * private key unseals and matches its public key), one active key per
 * algorithm, and no private key row without a live key. */
static void check_consistent(const jwtkit_alg *algs, size_t n) {
  jwtkit_keyring *kr = open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_OK);
  size_t live = 0;
  for (size_t a = 0; a < n; a++) {
    int active = 0;
    for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
      jwtkit_keyring_entry e;
      assert_int_equal(jwtkit_keyring_get(kr, i, &e), JWTKIT_OK);
      if (e.alg == algs[a] && e.state == JWTKIT_KEY_ACTIVE) active++;
      if (a == 0 && (e.state == JWTKIT_KEY_PENDING || e.state == JWTKIT_KEY_ACTIVE)) live++;
    }
    assert_int_equal(active, 1);
  }
  char *jwks = NULL;
  size_t jl = 0;
  assert_int_equal(jwtkit_keyring_jwks(kr, &jwks, &jl), JWTKIT_OK);
  jwtkit_jwks *set = NULL;
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_jwks_parse(&set, jwks, jl, JWTKIT_ALG_UNSPEC, NULL, NULL, &ei), JWTKIT_OK);
  jwtkit_jwks_free(set);
  jwtkit_free(jwks);
  /* private rows: at least the live ones; orphans (a crash after a
   * commit's key write cannot leave any: writes and metadata commit
   * together) are not expected either */
  PGconn *c = db();
  PGresult *r = PQexec(c, "SELECT count(*) FROM jwtkit_private_keys");
  size_t rows = (size_t)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  PQfinish(c);
  assert_true(rows >= live);
  jwtkit_keyring_free(kr);
}

static void test_sigkill_during_rotation(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA};
  make_ring(algs, 2);
  srand((unsigned)getpid());
  int64_t now = T0;
  for (int round = 0; round < 25; round++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      jwtkit_keyring *kr = NULL;
      jwtkit_keyring_secrets s = with((const unsigned char(*)[32])g_k1, 1);
      jwtkit_errinfo ei;
      if (jwtkit_keyring_open_ex(&kr, g_schema_url, &s, &ei) != JWTKIT_OK) _exit(2);
      for (int64_t t = now;; t += 400) /* every step publishes, activates or retires something */
        if (jwtkit_keyring_rotate(kr, t, 1, NULL, NULL, &ei) != JWTKIT_OK) _exit(3);
    }
    struct timespec d = {0, (long)(rand() % 40 + 1) * 1000000L};
    nanosleep(&d, NULL);
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st)); /* killed mid-loop, never failed by itself */
    check_consistent(algs, 2);
    now += 40000;
  }
}

/* ------------------------------------------------------------ watch */

static void test_watch_sees_commits(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256};
  make_ring(algs, 1);
  jwtkit_keyring_watch *w = NULL;
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_watch_open(&w, g_schema_url, &ei), JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_watch_poll(w), 0);
  jwtkit_keyring *kr = open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 1, 1, NULL, NULL, &ei), JWTKIT_OK);
  int seen = 0;
  for (int i = 0; i < 100 && !seen; i++) {
    seen = jwtkit_keyring_watch_poll(w);
    if (!seen) sleep_ms(20000 / 1000);
  }
  assert_true(seen);
  assert_int_equal(jwtkit_keyring_watch_poll(w), 0);
  /* a rotation with nothing to do commits nothing and notifies nobody */
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 2, 0, NULL, NULL, &ei), JWTKIT_OK);
  sleep_ms(200000 / 1000);
  assert_int_equal(jwtkit_keyring_watch_poll(w), 0);
  /* a failed mutation (rolled back) does not notify either */
  sql("UPDATE jwtkit_schema SET version = 99");
  assert_int_equal(jwtkit_keyring_rotate(kr, T0 + 3, 1, NULL, NULL, &ei), JWTKIT_ERR_UNSUPPORTED);
  sql("UPDATE jwtkit_schema SET version = 2");
  sleep_ms(200000 / 1000);
  assert_int_equal(jwtkit_keyring_watch_poll(w), 0);
  /* the listening session is killed: the watch reconnects and reports a
   * possible change, since notifications may have been lost meanwhile */
  sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'");
  seen = 0;
  for (int i = 0; i < 200 && !seen; i++) {
    seen = jwtkit_keyring_watch_poll(w);
    if (!seen) sleep_ms(20000 / 1000);
  }
  assert_true(seen);
  jwtkit_keyring_free(kr);
  jwtkit_keyring_watch_free(w);
}

/* ------------------------------------------------------- interrupt */

typedef struct rot_arg {
  jwtkit_keyring *kr;
  jwtkit_err rc;
} rot_arg;

static void *rotate_thread(void *p) {
  rot_arg *a = p;
  jwtkit_errinfo ei;
  a->rc = jwtkit_keyring_rotate(a->kr, T0 + 1, 1, NULL, NULL, &ei);
  return NULL;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Another session holds the keyring lock (a replica stuck in its
 * rotation): a rotation waits for it, and jwtkit_keyring_interrupt from
 * another thread ends the wait at once instead of after the 30 s lock
 * timeout (what `jwtkit serve` does on SIGTERM). */
static void test_interrupt_a_lock_wait(void **state) {
  (void)state;
  const jwtkit_alg algs[] = {JWTKIT_ALG_ES256};
  make_ring(algs, 1);
  PGconn *holder = db();
  PQclear(PQexec(holder, "BEGIN"));
  PGresult *r = PQexec(holder, "SELECT pg_advisory_xact_lock(hashtext('jwtkit-keyring:' || current_schema()))");
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  PQclear(r);
  rot_arg a = {open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_OK), JWTKIT_OK};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, rotate_thread, &a), 0);
  sleep_ms(700); /* the rotation is now waiting for the lock */
  double t0 = now_s();
  jwtkit_keyring_interrupt(a.kr);
  pthread_join(th, NULL);
  double waited = now_s() - t0;
  assert_int_not_equal(a.rc, JWTKIT_OK);
  assert_true(waited < 5.0);
  /* later mutations fail at once, without waiting for the lock */
  jwtkit_errinfo ei;
  t0 = now_s();
  assert_int_equal(jwtkit_keyring_rotate(a.kr, T0 + 2, 1, NULL, NULL, &ei), JWTKIT_ERR_STATE);
  assert_true(now_s() - t0 < 1.0);
  PQclear(PQexec(holder, "ROLLBACK"));
  PQfinish(holder);
  jwtkit_keyring_free(a.kr);
  /* nothing was changed */
  jwtkit_keyring *kr = open_with((const unsigned char(*)[32])g_k1, 1, JWTKIT_OK);
  assert_int_equal(jwtkit_keyring_count(kr), 1);
  jwtkit_keyring_free(kr);
}

/* ------------------------------------------------- unreachable database */

static void test_unreachable_database(void **state) {
  (void)state;
  /* port 1 on loopback: refused at once */
  const char *url = "postgresql://jwtkit:secretpw@127.0.0.1:1/jwtkit";
  jwtkit_keyring *kr = NULL;
  jwtkit_keyring_secrets s = with((const unsigned char(*)[32])g_k1, 1);
  jwtkit_errinfo ei;
  assert_int_equal(jwtkit_keyring_open_ex(&kr, url, &s, &ei), JWTKIT_ERR_IO);
  assert_null(kr);
  assert_non_null(strstr(ei.msg, "cannot connect"));
  assert_null(strstr(ei.msg, "secretpw"));
  jwtkit_keyring_watch *w = NULL;
  assert_int_equal(jwtkit_keyring_watch_open(&w, url, &ei), JWTKIT_OK); /* keeps trying in poll */
  assert_int_equal(jwtkit_keyring_watch_poll(w), 0);
  jwtkit_keyring_watch_free(w);
}

int main(void) {
  g_url = getenv("JWTKIT_TEST_PG_URL");
  if (g_url == NULL || g_url[0] == '\0') {
    printf("SKIP: JWTKIT_TEST_PG_URL is not set (run through tests/pg/run_unit.sh)\n");
    return 77;
  }
  memset(g_k1[0], 0x11, 32);
  g_k1[0][31] = 1;
  memset(g_k2[0], 0x22, 32);
  memcpy(g_k21[0], g_k2[0], 32);
  memcpy(g_k21[1], g_k1[0], 32);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_init_open_sign, setup),
      cmocka_unit_test_setup(test_needs_a_kek, setup),
      cmocka_unit_test_setup(test_rows_hold_only_ciphertext, setup),
      cmocka_unit_test_setup(test_swapped_rows_do_not_open, setup),
      cmocka_unit_test_setup(test_document_changed_without_kek, setup),
      cmocka_unit_test_setup(test_rollback_refused, setup),
      cmocka_unit_test_setup(test_trust_document, setup),
      cmocka_unit_test_setup(test_rekey, setup),
      cmocka_unit_test_setup(test_rekey_all_or_nothing, setup),
      cmocka_unit_test_setup(test_schema_versions, setup),
      cmocka_unit_test_setup(test_concurrent_rotation_happens_once, setup),
      cmocka_unit_test_setup(test_sigkill_during_rotation, setup),
      cmocka_unit_test_setup(test_watch_sees_commits, setup),
      cmocka_unit_test_setup(test_interrupt_a_lock_wait, setup),
      cmocka_unit_test(test_unreachable_database),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
