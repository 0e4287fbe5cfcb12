/* Unit tests of the issuer's parsers and encoders (services/serve). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/b64url.h"
#include "common/ini.h"
#include "crypto/seal.h"
#include "connguard.h"
#include "serve.h"

static int g_fail, g_checks;

#define CHECK(cond)                                                  \
  do {                                                               \
    g_checks++;                                                      \
    if (!(cond)) {                                                   \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      g_fail++;                                                      \
    }                                                                \
  } while (0)

static void test_form(void) {
  sv_form f;
  const char *why;
  char b1[] = "grant_type=client_credentials&scope=a+b%20c&client_id=x%2Fy&&empty=";
  CHECK(sv_form_parse(b1, strlen(b1), &f, &why) == SV_FORM_OK);
  CHECK(f.n == 4);
  CHECK(strcmp(sv_form_get(&f, "grant_type"), "client_credentials") == 0);
  CHECK(strcmp(sv_form_get(&f, "scope"), "a b c") == 0);
  CHECK(strcmp(sv_form_get(&f, "client_id"), "x/y") == 0);
  CHECK(sv_form_get(&f, "empty") == NULL && sv_form_has(&f, "empty"));
  char b2[] = "grant_type=a&grant_type=b";
  CHECK(sv_form_parse(b2, strlen(b2), &f, &why) == SV_FORM_DUPLICATE);
  char b3[] = "grant_type=a&grant%5Ftype=b"; /* same name once decoded */
  CHECK(sv_form_parse(b3, strlen(b3), &f, &why) == SV_FORM_DUPLICATE);
  char b4[] = "a=%zz";
  CHECK(sv_form_parse(b4, strlen(b4), &f, &why) == SV_FORM_MALFORMED);
  char b5[] = "a=%4";
  CHECK(sv_form_parse(b5, strlen(b5), &f, &why) == SV_FORM_MALFORMED);
  char b6[] = "a=%00";
  CHECK(sv_form_parse(b6, strlen(b6), &f, &why) == SV_FORM_MALFORMED);
  char b7[] = "=x";
  CHECK(sv_form_parse(b7, strlen(b7), &f, &why) == SV_FORM_MALFORMED);
  char b8[] = "a=%C3%28"; /* invalid UTF-8 */
  CHECK(sv_form_parse(b8, strlen(b8), &f, &why) == SV_FORM_MALFORMED);
  char b9[400];
  b9[0] = '\0';
  for (int i = 0; i < 40; i++) sprintf(b9 + strlen(b9), "p%d=1&", i);
  CHECK(sv_form_parse(b9, strlen(b9), &f, &why) == SV_FORM_TOO_MANY);
  char b10[] = "";
  CHECK(sv_form_parse(b10, 0, &f, &why) == SV_FORM_OK && f.n == 0);
}

static void test_basic(void) {
  char buf[256];
  const char *id, *secret;
  size_t sl;
  /* "a%3Ab:p%40ss+word" -> id "a:b", secret "p@ss word" (RFC 6749 §2.3.1) */
  CHECK(sv_basic_parse("Basic YSUzQWI6cCU0MHNzK3dvcmQ=", buf, sizeof buf, &id, &secret, &sl) == 0);
  CHECK(strcmp(id, "a:b") == 0 && strcmp(secret, "p@ss word") == 0 && sl == 9);
  CHECK(sv_basic_parse("basic   ZGVtbzpzZWNyZXQ=  ", buf, sizeof buf, &id, &secret, &sl) == 0);
  CHECK(strcmp(id, "demo") == 0 && strcmp(secret, "secret") == 0);
  CHECK(sv_basic_parse("Bearer abc", buf, sizeof buf, &id, &secret, &sl) == -1);
  CHECK(sv_basic_parse("Basic", buf, sizeof buf, &id, &secret, &sl) == -1);
  CHECK(sv_basic_parse("Basic !!!!", buf, sizeof buf, &id, &secret, &sl) == -2);
  CHECK(sv_basic_parse("Basic ZGVtbw==", buf, sizeof buf, &id, &secret, &sl) == -2); /* no colon */
  CHECK(sv_basic_parse("Basic OnNlY3JldA==", buf, sizeof buf, &id, &secret, &sl) == -2); /* empty id */
}

static void test_etag(void) {
  char tag[48];
  sv_etag("hello", 5, tag);
  CHECK(strlen(tag) == 45 && tag[0] == '"' && tag[44] == '"');
  char field[200];
  CHECK(sv_if_none_match(tag, tag) == 1);
  snprintf(field, sizeof field, "W/%s", tag);
  CHECK(sv_if_none_match(field, tag) == 1); /* weak comparison */
  snprintf(field, sizeof field, "\"other\", %s", tag);
  CHECK(sv_if_none_match(field, tag) == 1);
  snprintf(field, sizeof field, " ,\"other\" ,, W/%s , ", tag);
  CHECK(sv_if_none_match(field, tag) == 1);
  CHECK(sv_if_none_match("*", tag) == 1);
  CHECK(sv_if_none_match(" * ", tag) == 1);
  CHECK(sv_if_none_match("\"other\"", tag) == 0);
  CHECK(sv_if_none_match("", tag) == 0);
  snprintf(field, sizeof field, "%.44s", tag); /* unterminated */
  CHECK(sv_if_none_match(field, tag) == 0);
  snprintf(field, sizeof field, "%s x", tag); /* junk after a tag */
  CHECK(sv_if_none_match(field, tag) == 0);
  snprintf(field, sizeof field, "w/%s", tag); /* W is case-sensitive */
  CHECK(sv_if_none_match(field, tag) == 0);
  CHECK(sv_if_none_match("\"a b\"", "\"a b\"") == 0); /* space is not an etagc */
}

/* The stored form of a secret, in the earlier fast form (still read). */
static void legacy_hash(const char *secret, char *out, size_t cap) {
  unsigned char salt[16], mac[32];
  for (size_t i = 0; i < sizeof salt; i++) salt[i] = (unsigned char)(i * 7 + 1);
  jk_hmac_sha256_2(salt, sizeof salt, secret, strlen(secret), NULL, 0, mac);
  char s64[32], m64[48];
  s64[jk_b64url_encode(s64, salt, sizeof salt)] = '\0';
  m64[jk_b64url_encode(m64, mac, sizeof mac)] = '\0';
  snprintf(out, cap, "sha256$%s$%s", s64, m64);
}

static void test_secret(void) {
  char secret[SV_SECRET_CHARS + 1], hash[SV_SECRET_HASH_MAX], hash2[SV_SECRET_HASH_MAX];
  CHECK(sv_secret_generate(secret) == 0 && strlen(secret) == 43);
  /* new secrets: PBKDF2-HMAC-SHA-256, SV_PBKDF2_ITER iterations, a salt of their own */
  CHECK(sv_secret_hash_new(secret, strlen(secret), hash, sizeof hash) == 0);
  char want[64];
  snprintf(want, sizeof want, "pbkdf2-sha256$%u$", SV_PBKDF2_ITER);
  CHECK(strncmp(hash, want, strlen(want)) == 0 && strstr(hash, secret) == NULL);
  CHECK(sv_secret_hash_new(secret, strlen(secret), hash2, sizeof hash2) == 0 && strcmp(hash, hash2) != 0);
  sv_secret_hash h;
  CHECK(sv_secret_hash_parse(hash, &h) == 0 && h.salt_len == 16 && h.iter == SV_PBKDF2_ITER);
  /* the stored hash is PBKDF2 exactly, not something else of the secret */
  unsigned char d[32];
  CHECK(jk_pbkdf2_sha256(secret, strlen(secret), h.salt, h.salt_len, SV_PBKDF2_ITER, d) == 0 &&
        memcmp(d, h.mac, 32) == 0);
  CHECK(sv_secret_check(&h, secret, strlen(secret)) == 1);
  secret[5] ^= 1;
  CHECK(sv_secret_check(&h, secret, strlen(secret)) == 0);
  secret[5] ^= 1;
  CHECK(sv_secret_check(&h, secret, 31) == 0);
  CHECK(sv_secret_check(NULL, secret, strlen(secret)) == 0);
  CHECK(sv_secret_hash_new("short", 5, hash, sizeof hash) != 0);
  CHECK(sv_secret_hash_new(secret, strlen(secret), hash, 100) != 0); /* too small a buffer */
  /* the earlier fast form is still read */
  char old[SV_SECRET_HASH_MAX];
  legacy_hash(secret, old, sizeof old);
  CHECK(sv_secret_hash_parse(old, &h) == 0 && h.iter == 0 && sv_secret_check(&h, secret, strlen(secret)) == 1);
  CHECK(sv_secret_hash_parse("sha256$AAAA$AAAA", &h) != 0);
  CHECK(sv_secret_hash_parse("plaintext", &h) != 0);
  CHECK(sv_secret_hash_parse("sha256$AAAAAAAAAAAAAAAAAAAAAA", &h) != 0);
  CHECK(sv_secret_hash_parse("pbkdf2-sha256$0$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &h) != 0);
  CHECK(sv_secret_hash_parse("pbkdf2-sha256$99999999$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &h) != 0);
  CHECK(sv_secret_hash_parse("pbkdf2-sha256$x$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &h) != 0);
  CHECK(sv_secret_hash_parse("pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &h) == 0 &&
        h.iter == 1000);
}

/* The verification cache: a secret that matched is not hashed again; a
 * rotated secret (another stored hash) never matches an old entry, nor
 * does another client's name or a wrong secret. */
static void test_secret_cache(void) {
  char secret[SV_SECRET_CHARS + 1], other[SV_SECRET_CHARS + 1], hash[SV_SECRET_HASH_MAX], hash2[SV_SECRET_HASH_MAX];
  sv_secret_generate(secret);
  sv_secret_generate(other);
  sv_secret_hash h, h2;
  CHECK(sv_secret_hash_new(secret, strlen(secret), hash, sizeof hash) == 0 && sv_secret_hash_parse(hash, &h) == 0);
  sv_secret_cache_clear();
  uint64_t hits, misses;
  CHECK(sv_secret_verify("a", &h, secret, strlen(secret)) == 1);
  sv_secret_cache_stats(&hits, &misses);
  CHECK(hits == 0 && misses == 1);
  for (int i = 0; i < 100; i++) CHECK(sv_secret_verify("a", &h, secret, strlen(secret)) == 1);
  sv_secret_cache_stats(&hits, &misses);
  CHECK(hits == 100 && misses == 1); /* 100 checks, one slow hash */
  CHECK(sv_secret_verify("a", &h, other, strlen(other)) == 0); /* a wrong secret: never from the cache */
  CHECK(sv_secret_verify("b", &h, secret, strlen(secret)) == 1); /* another name: its own entry */
  sv_secret_cache_stats(&hits, &misses);
  CHECK(hits == 100 && misses == 3);
  /* rotate-secret: a new stored hash for "a"; the old secret fails against it */
  CHECK(sv_secret_hash_new(other, strlen(other), hash2, sizeof hash2) == 0 && sv_secret_hash_parse(hash2, &h2) == 0);
  CHECK(sv_secret_verify("a", &h2, secret, strlen(secret)) == 0);
  CHECK(sv_secret_verify("a", &h2, other, strlen(other)) == 1);
  CHECK(sv_secret_verify("a", &h2, secret, strlen(secret)) == 0); /* still not, after the new one was cached */
  CHECK(sv_secret_verify(NULL, NULL, secret, strlen(secret)) == 0); /* unknown client */
  sv_secret_cache_clear();
}

static int write_tmp(char *path, const char *text) {
  snprintf(path, 64, "/tmp/serve-units-XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  ssize_t w = write(fd, text, strlen(text));
  close(fd);
  return w == (ssize_t)strlen(text) ? 0 : -1;
}

static void test_settings(void) {
  char path[64], err[600];
  sv_settings s;
  sv_settings_defaults(&s);
  /* the project's dialect: comment lines (# and ;), a comment after a
   * value, a quoted value keeping " #", CRLF */
  CHECK(write_tmp(path, "# comment\n; other\n\nlisten = 127.0.0.1:9000   # the port\nalg = ES256\nalg = EdDSA\n"
                        "max_age = 2m\ntransition_ttl = 5m\nlog_level = debug\r\n"
                        "keyring = \"/srv/ring #1\"  # quoted\nrotate_every = 2w\n") == 0);
  CHECK(sv_settings_load(&s, path, err, sizeof err) == 0);
  CHECK(strcmp(s.listen, "127.0.0.1:9000") == 0 && s.nalgs == 2 && s.algs[1] == JWTKIT_ALG_EDDSA);
  CHECK(s.max_age == 120 && s.transition_ttl == 300 && s.log_level == JK_LOG_DEBUG);
  CHECK(strcmp(s.keyring, "/srv/ring #1") == 0 && s.rotate_every == 14 * 86400);
  CHECK(sv_settings_finish(&s, err, sizeof err) == 0 && strcmp(s.issuer, "http://127.0.0.1:9000") == 0);
  unlink(path);
  struct {
    const char *text, *want;
  } bad[] = {{"listen = 1.2.3.4:99\nbogus = 1\n", ":2: unknown option 'bogus'"},
             {"alg = HS256\n", ":1: alg: HS256 is never minted"},
             {"alg = none\n", ":1: alg: unknown algorithm 'none'"},
             {"max_age = 2 days\n", ":1: max_age: '2 days' is not a duration from 0s to 86400s"},
             {"token_ttl = 0\n", ":1: token_ttl"},
             {"[client x]\n", ":1: sections are not used"},
             {"listen\n", ":1: expected key = value"},
             {"thread_pool = 1000\n", ":1: thread_pool: '1000' is not an integer in 1..256"},
             {"demo = true\n", ":1: 'demo' is a command-line option only"},
             {"\n\nlisten = 127.0.0.1:0\n", ":3: listen: the port must be 1..65535"},
             {"listen = example.com:80\n", ":1: listen: the address must be a numeric IPv4 address"},
             {"issuer = ftp://x.example\n", ":1: issuer: must be an http:// or https:// URL"},
             {"log_level = loud\n", ":1: log_level: 'loud' is not debug, info, warn or error"},
             {"keyring = \"open\n", ":1: unterminated quoted value"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    sv_settings_defaults(&s);
    CHECK(write_tmp(path, bad[i].text) == 0);
    err[0] = '\0';
    int rc = sv_settings_load(&s, path, err, sizeof err);
    CHECK(rc != 0);
    CHECK(strstr(err, path) != NULL && strstr(err, bad[i].want) != NULL);
    if (rc == 0 || strstr(err, bad[i].want) == NULL) fprintf(stderr, "  got: %s\n", err);
    unlink(path);
  }
  /* a line over the cap */
  char *longline = malloc(JK_INI_MAX_LINE + 100);
  memset(longline, 'a', JK_INI_MAX_LINE + 50);
  memcpy(longline, "issuer = ", 9);
  longline[JK_INI_MAX_LINE + 50] = '\0';
  sv_settings_defaults(&s);
  CHECK(write_tmp(path, longline) == 0);
  CHECK(sv_settings_load(&s, path, err, sizeof err) != 0 && strstr(err, ":1: line longer than") != NULL);
  unlink(path);
  free(longline);
  /* listen: IPv6, localhost (port 0 and host names are refused above) */
  sv_settings_defaults(&s);
  CHECK(sv_settings_set(&s, "listen", "[::1]:8443", 0, err, sizeof err) == 0);
  CHECK(sv_settings_finish(&s, err, sizeof err) == 0 && strcmp(s.issuer, "http://[::1]:8443") == 0);
  sv_settings_defaults(&s);
  CHECK(sv_settings_set(&s, "listen", "localhost:8080", 0, err, sizeof err) == 0);
  CHECK(sv_settings_finish(&s, err, sizeof err) == 0 && strcmp(s.issuer, "http://localhost:8080") == 0);
  CHECK(sv_settings_set(&s, "listen", "localhost:0", 0, err, sizeof err) != 0 && strstr(err, "1..65535") != NULL);
  /* checks across options name where each was given: FILE:LINE, or the
   * command-line option */
  sv_settings_defaults(&s);
  CHECK(write_tmp(path, "# KEKs\n\nkek_file = /etc/kek\n") == 0);
  CHECK(sv_settings_load(&s, path, err, sizeof err) == 0);
  CHECK(sv_settings_finish(&s, err, sizeof err) != 0);
  char want[200];
  snprintf(want, sizeof want, "%s:3: kek_file applies to a PostgreSQL keyring", path);
  CHECK(strstr(err, want) == err);
  if (strstr(err, want) != err) fprintf(stderr, "  got: %s\n", err);
  sv_settings cli2;
  sv_settings_defaults(&cli2);
  CHECK(sv_settings_set(&cli2, "passphrase_env", "PASS", 0, err, sizeof err) == 0);
  sv_settings_defaults(&s);
  CHECK(write_tmp(path, "passphrase_file = /etc/pass\n") == 0);
  sv_settings file2;
  sv_settings_defaults(&file2);
  CHECK(sv_settings_load(&file2, path, err, sizeof err) == 0);
  sv_settings_overlay(&s, &file2);
  sv_settings_overlay(&s, &cli2);
  CHECK(sv_settings_finish(&s, err, sizeof err) != 0);
  snprintf(want, sizeof want, "--passphrase-env: passphrase_env: give passphrase_file (%s:1) or passphrase_env, not both",
           path);
  CHECK(strcmp(err, want) == 0);
  if (strcmp(err, want) != 0) fprintf(stderr, "  got: %s\n", err);
  unlink(path);
  /* a PostgreSQL keyring is shared by replicas: one issuer, required */
  sv_settings_defaults(&s);
  CHECK(write_tmp(path, "# replicas\nkeyring = postgresql://db.example/keys\n") == 0);
  CHECK(sv_settings_load(&s, path, err, sizeof err) == 0);
  CHECK(sv_settings_finish(&s, err, sizeof err) != 0);
  snprintf(want, sizeof want, "%s:2: issuer: required with a PostgreSQL keyring", path);
  CHECK(strstr(err, want) == err && strstr(err, "e.g. `issuer = https://auth.example`") != NULL);
  CHECK(sv_settings_set(&s, "issuer", "https://auth.example", 0, err, sizeof err) == 0);
  CHECK(sv_settings_finish(&s, err, sizeof err) == 0 && strcmp(s.issuer, "https://auth.example") == 0);
  unlink(path);
  CHECK(sv_issuer_ok("https://issuer.example/tenant1", err, sizeof err) == 0);
  CHECK(sv_issuer_ok("https://issuer.example/?q=1", err, sizeof err) != 0);
  CHECK(sv_issuer_ok("https://user@issuer.example", err, sizeof err) != 0);
  CHECK(sv_issuer_ok("ftp://issuer.example", err, sizeof err) != 0);
  CHECK(sv_issuer_ok("https://", err, sizeof err) != 0);
  /* overlay: command line wins, algs replaced as a whole */
  sv_settings file, cli;
  sv_settings_defaults(&file);
  sv_settings_defaults(&cli);
  CHECK(sv_settings_set(&file, "alg", "ES256, RS256", 1, err, sizeof err) == 0 && file.nalgs == 2);
  CHECK(sv_settings_set(&file, "issuer", "https://a.example", 2, err, sizeof err) == 0);
  CHECK(sv_settings_set(&cli, "alg", "EdDSA", 0, err, sizeof err) == 0);
  sv_settings_defaults(&s);
  sv_settings_overlay(&s, &file);
  sv_settings_overlay(&s, &cli);
  CHECK(s.nalgs == 1 && s.algs[0] == JWTKIT_ALG_EDDSA && strcmp(s.issuer, "https://a.example") == 0);
}

/* leeway and publish_ahead are settable, and the timing is checked by the
 * keyring's rules, the error naming the rule, the values and where each
 * value was given */
static void test_timing_settings(void) {
  char path[64], err[800];
  sv_settings s;
  sv_settings_defaults(&s);
  CHECK(s.leeway == 60 && s.publish_ahead == 0);
  CHECK(write_tmp(path, "leeway = 90s\npublish_ahead = 2h\nrotate_every = 1d\n") == 0);
  CHECK(sv_settings_load(&s, path, err, sizeof err) == 0);
  CHECK(s.leeway == 90 && s.publish_ahead == 7200 && s.rotate_every == 86400);
  CHECK(sv_settings_finish(&s, err, sizeof err) == 0);
  unlink(path);
  /* publish_ahead below max_age: the keyring's rule, with values and lines */
  sv_settings_defaults(&s);
  CHECK(write_tmp(path, "# timing\nmax_age = 10m\npublish_ahead = 5m\n") == 0);
  CHECK(sv_settings_load(&s, path, err, sizeof err) == 0);
  CHECK(sv_settings_finish(&s, err, sizeof err) != 0);
  char want[400];
  snprintf(want, sizeof want,
           "%s:3: timing: publish_ahead (300s) must be at least max_age (600s): a key is published max_age before it "
           "signs (the keyring's rule; given: publish_ahead at %s:3, max_age at %s:2)",
           path, path, path);
  CHECK(strcmp(err, want) == 0);
  if (strcmp(err, want) != 0) fprintf(stderr, "  got: %s\n", err);
  unlink(path);
  /* publish_ahead not below rotate_every, given on the command line */
  sv_settings_defaults(&s);
  CHECK(sv_settings_set(&s, "rotate_every", "1h", 0, err, sizeof err) == 0);
  CHECK(sv_settings_set(&s, "publish_ahead", "2h", 0, err, sizeof err) == 0);
  CHECK(sv_settings_finish(&s, err, sizeof err) != 0);
  CHECK(strstr(err, "--publish-ahead: timing: rotate_every (3600s) must be more than publish_ahead (7200s)") == err);
  CHECK(strstr(err, "given: publish_ahead at --publish-ahead, rotate_every at --rotate-every") != NULL);
  /* the default publish-ahead rule against a short period */
  sv_settings_defaults(&s);
  CHECK(sv_settings_set(&s, "max_age", "1h", 0, err, sizeof err) == 0);
  CHECK(sv_settings_set(&s, "rotate_every", "90m", 0, err, sizeof err) == 0);
  CHECK(sv_settings_finish(&s, err, sizeof err) != 0);
  CHECK(strstr(err, "rotate_every (5400s) must be more than max(2 x max_age, rotate_every/30) (7200s)") != NULL);
  /* each value's own range */
  sv_settings_defaults(&s);
  CHECK(sv_settings_set(&s, "leeway", "301", 0, err, sizeof err) != 0 && strstr(err, "leeway: '301' is not a duration from 0s to 300s") == err);
  CHECK(sv_settings_set(&s, "publish_ahead", "0", 0, err, sizeof err) != 0 && strstr(err, "publish_ahead:") == err);
  /* overlay: the command line's leeway wins */
  sv_settings file, cli;
  sv_settings_defaults(&file);
  sv_settings_defaults(&cli);
  CHECK(sv_settings_set(&file, "leeway", "10s", 1, err, sizeof err) == 0);
  CHECK(sv_settings_set(&file, "publish_ahead", "3d", 2, err, sizeof err) == 0);
  CHECK(sv_settings_set(&cli, "leeway", "20s", 0, err, sizeof err) == 0);
  sv_settings_defaults(&s);
  sv_settings_overlay(&s, &file);
  sv_settings_overlay(&s, &cli);
  CHECK(s.leeway == 20 && s.publish_ahead == 3 * 86400);
}

static void test_clients(void) {
  char secret[SV_SECRET_CHARS + 1], hash[SV_SECRET_HASH_MAX], text[2048], err[600];
  sv_secret_generate(secret);
  sv_secret_hash_new(secret, strlen(secret), hash, sizeof hash);
  snprintf(text, sizeof text,
           "# clients\n[client zeta]\nsecret_hash = %s\naudience = https://api.example\naudience = other\n"
           "scopes = read write read\nttl = 10m\n\n[ client alpha ]\nsecret_hash = %s\naudience = a\nalg = EdDSA\n"
           "disabled = true\n",
           hash, hash);
  sv_clients c;
  CHECK(sv_clients_parse(&c, text, strlen(text), "clients.conf", err, sizeof err) == 0);
  CHECK(c.n == 2 && strcmp(c.v[0].name, "alpha") == 0); /* sorted */
  const sv_client *z = sv_clients_find(&c, "zeta", 4);
  CHECK(z && z->naud == 2 && z->nscopes == 2 && z->ttl == 600 && !z->disabled);
  const sv_client *a = sv_clients_find(&c, "alpha", 5);
  CHECK(a && a->alg == JWTKIT_ALG_EDDSA && a->disabled);
  CHECK(sv_clients_find(&c, "nobody", 6) == NULL);
  CHECK(sv_clients_find(&c, "zet", 3) == NULL);
  CHECK(sv_secret_check(&z->hash, secret, strlen(secret)) == 1);
  sv_clients_free(&c);
  struct {
    const char *text, *want;
  } bad[] = {
      {"audience = x\n", "clients.conf:1: 'audience' outside a [client NAME] section"},
      {"[client a b]\n", "clients.conf:1: client names"},
      {"[clients a]\n", "clients.conf:1: expected [client NAME]"},
      {"[client a]\nttl = 2 w\n", "clients.conf:2: ttl: '2 w' is not a duration"},
      {"[client a]\ndisabled = maybe\n", "clients.conf:2: disabled: 'maybe' is not true, false"},
      {"[client a]\nsecret_hash = hunter2hunter2hunter2hunter2hunter2\n", "clients.conf:2: secret_hash: expected pbkdf2-sha256$"},
      {"[client a]\naudience = x\n", "clients.conf:1: client a has no secret_hash"},
      {"# two\n[client b]\nsecret_hash = sha256$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
       "clients.conf:2: client b has no audience"},
      {"[client]\n", "clients.conf:1: expected [client NAME]"},
      {"[client a]\nscopes = a\"b\n", "clients.conf:2: scopes:"},
      {"[client a]\nttl = forever\n", "clients.conf:2: ttl:"},
      {"[client a]\nalg = HS256\n", "clients.conf:2: alg:"},
      {"[client a]\ncolour = blue\n", "clients.conf:2: unknown client setting 'colour'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    int rc = sv_clients_parse(&c, bad[i].text, strlen(bad[i].text), "clients.conf", err, sizeof err);
    CHECK(rc != 0 && strstr(err, bad[i].want) != NULL);
    if (rc == 0 || strstr(err, bad[i].want) == NULL) fprintf(stderr, "  case %zu got: %s\n", i, err);
  }
  snprintf(text, sizeof text, "[client a]\nsecret_hash = %s\naudience = x\n[client a]\nsecret_hash = %s\naudience = y\n",
           hash, hash);
  CHECK(sv_clients_parse(&c, text, strlen(text), "clients.conf", err, sizeof err) != 0 &&
        strstr(err, "clients.conf:4: client a is already defined at line 1") != NULL);
  snprintf(text, sizeof text, "[client a]\nsecret_hash = %s\nsecret_hash = %s\naudience = y\n", hash, hash);
  CHECK(sv_clients_parse(&c, text, strlen(text), "clients.conf", err, sizeof err) != 0 &&
        strstr(err, "clients.conf:3: secret_hash given twice") != NULL);
}

static void test_rates(void) {
  sv_rate r;
  CHECK(sv_parse_rate("20/s", &r) == 0 && r.count == 20 && r.per == 1);
  CHECK(sv_parse_rate("600/m", &r) == 0 && r.count == 600 && r.per == 60);
  CHECK(sv_parse_rate("5/h", &r) == 0 && r.count == 5 && r.per == 3600);
  CHECK(sv_parse_rate("off", &r) == 0 && r.count == 0);
  CHECK(sv_parse_rate("0", &r) == 0 && r.count == 0);
  CHECK(sv_parse_rate("0/m", &r) == 0 && r.count == 0 && r.per == 1);
  CHECK(sv_parse_rate("20", &r) != 0);
  CHECK(sv_parse_rate("20/d", &r) != 0);
  CHECK(sv_parse_rate("/s", &r) != 0);
  CHECK(sv_parse_rate("-1/s", &r) != 0);
  CHECK(sv_parse_rate("1000001/s", &r) != 0);
  CHECK(sv_parse_rate("1.5/s", &r) != 0);
  char err[300];
  sv_settings s;
  sv_settings_defaults(&s);
  CHECK(s.header_timeout == 5 && s.max_connections_ip == 64 && s.rate_ip.count == 20 && s.burst_ip == 100 &&
        s.rate_client.count == 10 && s.burst_client == 100 && s.fail_cost == 10);
  CHECK(sv_settings_set(&s, "token_rate_ip", "off", 0, err, sizeof err) == 0 && s.rate_ip.count == 0);
  CHECK(sv_settings_set(&s, "token_rate_client", "2/m", 0, err, sizeof err) == 0 && s.rate_client.count == 2 &&
        s.rate_client.per == 60);
  CHECK(sv_settings_set(&s, "token_rate_client", "fast", 0, err, sizeof err) != 0 &&
        strstr(err, "token_rate_client: 'fast' is not a rate like 20/s") != NULL);
  CHECK(sv_settings_set(&s, "header_timeout", "0", 0, err, sizeof err) != 0 && strstr(err, "from 1s to 300s") != NULL);
  CHECK(sv_settings_set(&s, "max_connections_per_ip", "0", 0, err, sizeof err) == 0 && s.max_connections_ip == 0);
  CHECK(sv_settings_set(&s, "token_fail_cost", "0", 0, err, sizeof err) != 0);
  CHECK(sv_settings_set(&s, "token_burst_ip", "0", 0, err, sizeof err) != 0);
}

/* The token buckets at chosen times: nothing depends on the clock. */
static void test_limiter(void) {
  sv_limiter *l = sv_limiter_new();
  CHECK(l != NULL);
  if (l == NULL) return;
  sv_settings s;
  sv_settings_defaults(&s);
  s.rate_ip.count = 1; /* 1 per second, 5 at once */
  s.rate_ip.per = 1;
  s.burst_ip = 5;
  s.rate_client.count = 0; /* off */
  struct sockaddr_in a4;
  memset(&a4, 0, sizeof a4);
  a4.sin_family = AF_INET;
  inet_pton(AF_INET, "192.0.2.1", &a4.sin_addr);
  unsigned char k1[16], k2[16];
  sv_limiter_key_addr(&a4, k1);
  inet_pton(AF_INET, "192.0.2.2", &a4.sin_addr);
  sv_limiter_key_addr(&a4, k2);
  CHECK(memcmp(k1, k2, 16) != 0);
  int64_t t = 1000000, wait = 0;
  /* a burst of 5 successes, then a refusal that says 1 s */
  for (int i = 0; i < 5; i++) {
    CHECK(sv_limiter_admit(l, &s, k1, "alice", t, &wait) == 0 && wait == 0);
    sv_limiter_charge(l, &s, k1, "alice", 1, t);
  }
  CHECK(sv_limiter_admit(l, &s, k1, "alice", t, &wait) == SV_RL_BY_ADDR && wait == 1);
  CHECK(sv_limiter_throttled(l, 0) == 1 && sv_limiter_throttled(l, 1) == 0);
  CHECK(sv_limiter_admit(l, &s, k2, NULL, t, &wait) == 0); /* another address has its own bucket */
  CHECK(sv_limiter_admit(l, &s, k1, NULL, t + 999, &wait) == SV_RL_BY_ADDR);
  CHECK(sv_limiter_admit(l, &s, k1, NULL, t + 1000, &wait) == 0); /* refilled */
  /* a failure costs fail_cost: 1 - 3 = -2 tokens, 3 s until one is back */
  s.fail_cost = 3;
  sv_limiter_charge(l, &s, k1, NULL, s.fail_cost, t + 1000);
  CHECK(sv_limiter_admit(l, &s, k1, NULL, t + 1000, &wait) == SV_RL_BY_ADDR && wait == 3);
  CHECK(sv_limiter_admit(l, &s, k1, NULL, t + 3999, &wait) == SV_RL_BY_ADDR && wait == 1);
  CHECK(sv_limiter_admit(l, &s, k1, NULL, t + 4000, &wait) == 0);
  /* the debt stops at minus the burst: 5 + 1 s whatever was charged */
  sv_limiter_charge(l, &s, k2, NULL, 1000, t);
  CHECK(sv_limiter_admit(l, &s, k2, NULL, t, &wait) == SV_RL_BY_ADDR && wait == 6);
  /* client buckets */
  s.rate_client.count = 2;
  s.rate_client.per = 60; /* 2 a minute */
  s.burst_client = 2;
  CHECK(sv_limiter_admit(l, &s, NULL, "bob", t, &wait) == 0);
  sv_limiter_charge(l, &s, NULL, "bob", 2, t);
  CHECK(sv_limiter_admit(l, &s, NULL, "bob", t, &wait) == SV_RL_BY_CLIENT && wait == 30);
  CHECK(sv_limiter_admit(l, &s, NULL, "bobby", t, &wait) == 0);
  CHECK(sv_limiter_admit(l, &s, NULL, "bob", t + 30000, &wait) == 0);
  /* rates off: never refused */
  s.rate_ip.count = 0;
  s.rate_client.count = 0;
  CHECK(sv_limiter_admit(l, &s, k2, "bob", t, &wait) == 0);
  /* IPv6 by its /64 */
  s.rate_ip.count = 1;
  struct sockaddr_in6 a6;
  memset(&a6, 0, sizeof a6);
  a6.sin6_family = AF_INET6;
  unsigned char k6a[16], k6b[16], k6c[16];
  inet_pton(AF_INET6, "2001:db8:1:2::1", &a6.sin6_addr);
  sv_limiter_key_addr(&a6, k6a);
  inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &a6.sin6_addr);
  sv_limiter_key_addr(&a6, k6b);
  inet_pton(AF_INET6, "2001:db8:1:3::1", &a6.sin6_addr);
  sv_limiter_key_addr(&a6, k6c);
  CHECK(memcmp(k6a, k6b, 16) == 0 && memcmp(k6a, k6c, 16) != 0);
  /* the tables are bounded: 100,000 addresses, then the first one starts
   * over with a full bucket (its entry was reused) */
  sv_limiter_charge(l, &s, k1, NULL, 1000, t + 20000);
  CHECK(sv_limiter_admit(l, &s, k1, NULL, t + 20000, &wait) == SV_RL_BY_ADDR);
  for (uint32_t i = 0; i < 100000; i++) {
    unsigned char k[16] = {0};
    memcpy(k, &i, sizeof i);
    k[15] = 7;
    sv_limiter_charge(l, &s, k, NULL, 1, t + 20001 + i);
  }
  CHECK(sv_limiter_admit(l, &s, k1, NULL, t + 20000 + 100001, &wait) == 0);
  sv_limiter_free(l);
}

/* Request framing (services/common): header fields as a list. */
typedef struct hlist {
  const char *const *kv; /* name, value, ..., NULL */
} hlist;

static void hlist_each(void *ctx, int (*fn)(void *cls, const char *name, const char *value), void *cls) {
  const hlist *h = ctx;
  for (size_t i = 0; h->kv[i]; i += 2)
    if (!fn(cls, h->kv[i], h->kv[i + 1])) return;
}

static unsigned framing(int http10, unsigned long long max, const char *const *kv, long long *len, int *chunked) {
  hlist h = {kv};
  svc_framing f;
  svc_framing_check(hlist_each, &h, http10, max, &f);
  if (len) *len = f.length;
  if (chunked) *chunked = f.chunked;
  CHECK(f.status == 0 ? f.why == NULL : f.why != NULL);
  return f.status;
}

static void test_framing(void) {
  long long len;
  int ch;
  CHECK(framing(0, 100, (const char *const[]){"Host", "x", NULL}, &len, &ch) == 0 && len == -1 && ch == 0);
  CHECK(framing(0, 100, (const char *const[]){"content-length", "29", NULL}, &len, &ch) == 0 && len == 29);
  CHECK(framing(0, 100, (const char *const[]){"Transfer-Encoding", "Chunked", NULL}, &len, &ch) == 0 && ch == 1);
  CHECK(framing(0, 28, (const char *const[]){"Content-Length", "29", NULL}, NULL, NULL) == 413);
  CHECK(framing(0, ~0ULL, (const char *const[]){"Content-Length", "99999999999999999999999", NULL}, NULL, NULL) ==
        413);
  CHECK(framing(0, 100, (const char *const[]){"Content-Length", "29", "Content-Length", "4", NULL}, NULL, NULL) ==
        400);
  CHECK(framing(0, 100, (const char *const[]){"Content-Length", "4", "content-length", "4", NULL}, NULL, NULL) ==
        400);
  CHECK(framing(0, 100, (const char *const[]){"Content-Length", "29, 4", NULL}, NULL, NULL) == 400);
  CHECK(framing(0, 100, (const char *const[]){"Content-Length", "+4", NULL}, NULL, NULL) == 400);
  CHECK(framing(0, 100, (const char *const[]){"Content-Length", "", NULL}, NULL, NULL) == 400);
  CHECK(framing(0, 100, (const char *const[]){"Content-Length", "0x10", NULL}, NULL, NULL) == 400);
  CHECK(framing(0, 100, (const char *const[]){"Transfer-Encoding", "xchunked", NULL}, NULL, NULL) == 501);
  CHECK(framing(0, 100, (const char *const[]){"Transfer-Encoding", "gzip, chunked", NULL}, NULL, NULL) == 501);
  CHECK(framing(0, 100, (const char *const[]){"Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked", NULL},
                NULL, NULL) == 501);
  CHECK(framing(0, 100, (const char *const[]){"Transfer-Encoding", "chunked", "Content-Length", "5", NULL}, NULL,
                NULL) == 400);
  CHECK(framing(1, 100, (const char *const[]){"Transfer-Encoding", "chunked", NULL}, NULL, NULL) == 400);
  CHECK(framing(0, 100, (const char *const[]){"Content-Length ", "5", NULL}, NULL, NULL) == 400);
  CHECK(framing(0, 100, (const char *const[]){"Transfer-Encoding\t", "chunked", NULL}, NULL, NULL) == 400);
  CHECK(framing(0, 100, (const char *const[]){"X(y)", "1", NULL}, NULL, NULL) == 400);
  CHECK(framing(0, 100, (const char *const[]){"", "1", NULL}, NULL, NULL) == 400);
  CHECK(framing(0, 100, (const char *const[]){"X-Weird_Name.~!", "1", NULL}, NULL, NULL) == 0);
}

/* Lines of the exposition text that are series of `family` ("name{" or
 * "name "), and whether each one's kid label is in jwks. */
static size_t series_of(const char *text, const char *family, const char *jwks, int *foreign_kid) {
  size_t n = 0, fl = strlen(family);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    if (strncmp(p, family, fl) != 0 || (p[fl] != '{' && p[fl] != ' ')) continue;
    n++;
    const char *k = strstr(p, "kid=\"");
    const char *eol = strchr(p, '\n');
    if (k != NULL && (eol == NULL || k < eol)) {
      char kid[160];
      size_t kl = strcspn(k + 5, "\"");
      if (kl >= sizeof kid) kl = sizeof kid - 1;
      memcpy(kid, k + 5, kl);
      kid[kl] = '\0';
      char want[200];
      snprintf(want, sizeof want, "\"kid\":\"%s\"", kid);
      if (strstr(jwks, want) == NULL) *foreign_kid = 1;
    }
  }
  return n;
}

static size_t count_str(const char *s, const char *needle) {
  size_t n = 0;
  for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

/* Many rotations with the clock passed in: the JWKS holds a bounded number
 * of keys, and /metrics a bounded number of series, for any run length.
 * The timing: max_age 60 s, token_ttl 300 s, leeway 60 s, rotation every
 * 600 s, rotate_check (the step) 97 s.  Per algorithm the JWKS holds at
 * most one pending key, the active one, and the keys retired within
 * token_ttl + leeway + max_age + one step of their last token:
 * 2 + ceil((300 + 60 + 60 + 97) / 600) = 3 keys; with two algorithms 6.
 * Each jwtkit_tokens_issued_total and jwtkit_key_age_seconds series names
 * a published key, so each family has at most 6 series, and the number of
 * lines of the exposition does not grow. */
static void test_bounded_keys_and_series(void) {
  char dir[64];
  snprintf(dir, sizeof dir, "/tmp/serve-units-ring-XXXXXX");
  CHECK(mkdtemp(dir) != NULL);
  char ring[128];
  snprintf(ring, sizeof ring, "%s/ring", dir);
  jwtkit_keyring_timing t;
  jwtkit_keyring_timing_default(&t);
  t.max_age = 60;
  t.token_ttl = 300;
  t.leeway = 60;
  t.rotate_every = 600;
  const jwtkit_alg algs[2] = {JWTKIT_ALG_ES256, JWTKIT_ALG_EDDSA};
  const int64_t t0 = 1800000000, step = 97;
  const size_t bound = 6;
  jwtkit_errinfo ei;
  CHECK(jwtkit_keyring_init(ring, algs, 2, &t, NULL, t0, NULL, NULL, &ei) == JWTKIT_OK);
  jwtkit_keyring *kr = NULL;
  CHECK(jwtkit_keyring_open(&kr, ring, NULL, &ei) == JWTKIT_OK);
  if (kr == NULL) return;
  sv_metrics_init();
  uint64_t served = 0;
  size_t max_keys = 0, max_tokens = 0, max_ages = 0, first_lines = 0, max_lines = 0, rotations = 0;
  int foreign = 0, failed = 0;
  for (int i = 0; i < 2000 && !failed; i++) { /* 2000 steps of 97 s: 54 hours, 320 rotations */
    int64_t now = t0 + (int64_t)i * step;
    if (jwtkit_keyring_rotate(kr, now, 0, NULL, NULL, &ei) != JWTKIT_OK) {
      fprintf(stderr, "  rotate: %s\n", ei.msg);
      failed = 1;
      break;
    }
    if (jwtkit_keyring_generation(kr) != served) {
      /* what the rotation thread does: a fresh read-only handle, a
       * snapshot, installed */
      jwtkit_keyring *ro = NULL;
      sv_keysnap *ks = NULL;
      if (jwtkit_keyring_open(&ro, ring, NULL, &ei) != JWTKIT_OK || sv_keysnap_build(&ks, ro, algs, 2, now) != 0) {
        failed = 1;
        break;
      }
      served = ks->generation;
      rotations++;
      sv_keysnap_install(ks);
      sv_metrics_mint_prune(ks);
    }
    /* a token per algorithm at every step, by the served snapshot */
    sv_keysnap *ks = sv_keysnap_acquire();
    for (size_t a = 0; a < ks->nsig; a++) {
      if (ks->sig[a].signer == NULL) failed = 1;
      sv_metrics_minted(ks->sig[a].minted);
    }
    size_t len = 0;
    char *text = sv_metrics_render(ks, NULL, now, &len);
    if (text == NULL) {
      failed = 1;
      sv_keysnap_release(ks);
      break;
    }
    size_t keys = count_str(ks->jwks, "\"kid\":");
    size_t toks = series_of(text, "jwtkit_tokens_issued_total", ks->jwks, &foreign);
    size_t ages = series_of(text, "jwtkit_key_age_seconds", ks->jwks, &foreign);
    size_t lines = count_str(text, "\n");
    if (keys > max_keys) max_keys = keys;
    if (toks > max_tokens) max_tokens = toks;
    if (ages > max_ages) max_ages = ages;
    if (i == 0) first_lines = lines - toks - ages;
    if (lines - toks - ages > max_lines) max_lines = lines - toks - ages;
    free(text);
    sv_keysnap_release(ks);
  }
  CHECK(!failed);
  CHECK(rotations > 300); /* the clock really went through hundreds of rotations */
  CHECK(max_keys >= 4 && max_keys <= bound); /* pending and retiring keys were seen, never more than the bound */
  CHECK(max_tokens <= bound && max_ages <= bound);
  CHECK(!foreign); /* every per-kid series names a key of the JWKS being served */
  CHECK(max_lines == first_lines); /* the other families do not grow */
  CHECK(jwtkit_keyring_count(kr) <= 32 + bound); /* the document keeps at most 32 retired entries */
  if (max_keys > bound || max_tokens > bound || max_ages > bound || foreign)
    fprintf(stderr, "  keys %zu, tokens_issued series %zu, key_age series %zu, foreign kid %d (bound %zu)\n", max_keys,
            max_tokens, max_ages, foreign, bound);
  sv_keysnap_install(NULL);
  jwtkit_keyring_free(kr);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}

/* The replay table of private_key_jwt assertion ids (assertion.c), at
 * chosen instants: new, replayed, per client, forgotten only after its
 * time, and when full it refuses new ids without ever forgetting a live
 * one (fail closed). */
static void test_jti(void) {
  const int64_t t0 = 1800000000;
  sv_jti_reset();
  CHECK(sv_jti_remember("a", "j1", 2, t0 + 100, t0) == 0);
  CHECK(sv_jti_remember("a", "j1", 2, t0 + 100, t0 + 1) == 1);   /* replay */
  CHECK(sv_jti_remember("a", "j1", 2, t0 + 100, t0 + 99) == 1);  /* still remembered */
  CHECK(sv_jti_remember("b", "j1", 2, t0 + 100, t0 + 1) == 0);   /* another client's id */
  CHECK(sv_jti_remember("a", "j1x", 3, t0 + 100, t0 + 1) == 0);  /* another id */
  CHECK(sv_jti_remember("a", "j1", 2, t0 + 300, t0 + 100) == 0); /* past its time: new again */
  CHECK(sv_jti_remember("a", "j1", 2, t0 + 300, t0 + 101) == 1); /* ... and remembered anew */
  /* fill the table with live ids until one finds no room */
  sv_jti_reset();
  char id[32];
  size_t stored = 0;
  int rc = 0;
  while (stored <= SV_JTI_SLOTS) {
    int n = snprintf(id, sizeof id, "id-%zu", stored);
    rc = sv_jti_remember("c", id, (size_t)n, t0 + 600, t0);
    if (rc != 0) break;
    stored++;
  }
  CHECK(rc == -1);
  CHECK(stored >= SV_JTI_SLOTS / 2 && stored <= SV_JTI_SLOTS); /* most of the table is usable */
  int replays = 0;
  for (size_t i = 0; i < stored; i++) {
    int n = snprintf(id, sizeof id, "id-%zu", i);
    replays += sv_jti_remember("c", id, (size_t)n, t0 + 600, t0 + 1) == 1;
  }
  CHECK(replays == (int)stored); /* no live id was dropped to make room */
  int n = snprintf(id, sizeof id, "id-%zu", stored);
  CHECK(sv_jti_remember("c", id, (size_t)n, t0 + 1200, t0 + 600) == 0); /* room again once they expire */
  sv_jti_reset();
}

static void test_scope_tokens(void) {
  CHECK(sv_scope_token_ok("read", 4));
  CHECK(sv_scope_token_ok("api:read/x", 10));
  CHECK(!sv_scope_token_ok("a\"b", 3));
  CHECK(!sv_scope_token_ok("a\\b", 3));
  CHECK(!sv_scope_token_ok("", 0));
  CHECK(!sv_scope_token_ok("a b", 3));
}

/* jwks_uri values: https anywhere; http only to a loopback host (a name
 * that merely starts like one is not); no spaces, fragment, userinfo. */
static void test_jwks_uri(void) {
  char err[600];
  CHECK(sv_jwks_uri_ok("https://client.example/jwks.json", err, sizeof err) == 0);
  CHECK(sv_jwks_uri_ok("https://client.example:8443/a/b?c=d", err, sizeof err) == 0);
  CHECK(sv_jwks_uri_ok("http://127.0.0.1:8080/jwks.json", err, sizeof err) == 0);
  CHECK(sv_jwks_uri_ok("http://127.1.2.3/jwks.json", err, sizeof err) == 0);
  CHECK(sv_jwks_uri_ok("http://localhost:9/jwks.json", err, sizeof err) == 0);
  CHECK(sv_jwks_uri_ok("http://localhost", err, sizeof err) == 0);
  CHECK(sv_jwks_uri_ok("http://[::1]:9/x", err, sizeof err) == 0);
  CHECK(sv_jwks_uri_ok("http://127.evil.example/jwks.json", err, sizeof err) != 0);
  CHECK(strstr(err, "not a loopback address") != NULL);
  CHECK(sv_jwks_uri_ok("http://localhost.evil.example/", err, sizeof err) != 0);
  CHECK(sv_jwks_uri_ok("http://[::1]evil/", err, sizeof err) != 0);
  CHECK(sv_jwks_uri_ok("http://128.0.0.1/", err, sizeof err) != 0);
  CHECK(sv_jwks_uri_ok("http://client.example/", err, sizeof err) != 0);
  CHECK(sv_jwks_uri_ok("ftp://client.example/", err, sizeof err) != 0);
  CHECK(sv_jwks_uri_ok("https:///jwks.json", err, sizeof err) != 0);
  CHECK(sv_jwks_uri_ok("https://user@client.example/", err, sizeof err) != 0);
  CHECK(sv_jwks_uri_ok("https://client.example/a b", err, sizeof err) != 0);
  CHECK(sv_jwks_uri_ok("https://client.example/#k", err, sizeof err) != 0);
  char long_url[SV_MAX_JWKS_URI + 2];
  memset(long_url, 'a', sizeof long_url - 1);
  memcpy(long_url, "https://", 8);
  long_url[sizeof long_url - 1] = '\0';
  CHECK(sv_jwks_uri_ok(long_url, err, sizeof err) != 0);
  long_url[SV_MAX_JWKS_URI] = '\0';
  CHECK(sv_jwks_uri_ok(long_url, err, sizeof err) == 0);
}

int main(void) {
  test_form();
  test_basic();
  test_etag();
  test_secret();
  test_secret_cache();
  test_settings();
  test_timing_settings();
  test_clients();
  test_scope_tokens();
  test_rates();
  test_limiter();
  test_framing();
  test_bounded_keys_and_series();
  test_jti();
  test_jwks_uri();
  printf("serve units: %d checks, %d failed\n", g_checks, g_fail);
  return g_fail ? 1 : 0;
}
