/*
 * keyring: keyring metadata.  The input is written as keyring.json into a
 * private temporary directory with an empty keys/ and jwtkit_keyring_open
 * reads it (without and with a passphrase).  Any error code is fine; it
 * must not crash.  When a keyring opens, everything read-only runs on it:
 * every entry (with its planned times), the timing, the JWK Set (which
 * must be strict JSON), the plan, and signing_key for every algorithm.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define NOW 1700000000LL

static char g_dir[256];
static char g_meta[300];

/* Remove the files of dir (one level), then dir. */
static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char p[600];
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

static void cleanup(void) {
  char keys[300];
  snprintf(keys, sizeof keys, "%s/keys", g_dir);
  remove_dir(keys);
  remove_dir(g_dir);
}

static void init(void) {
  if (g_dir[0] != '\0') return;
  const char *tmp = getenv("TMPDIR");
  if (tmp == NULL || tmp[0] == '\0' || strlen(tmp) > 200) tmp = "/tmp";
  snprintf(g_dir, sizeof g_dir, "%s/jwtkit-fuzz-keyring-XXXXXX", tmp);
  JKF_CHECK(mkdtemp(g_dir) != NULL, "mkdtemp %s", g_dir);
  char keys[300];
  snprintf(keys, sizeof keys, "%s/keys", g_dir);
  JKF_CHECK(mkdir(keys, 0700) == 0, "mkdir %s", keys);
  snprintf(g_meta, sizeof g_meta, "%s/keyring.json", g_dir);
  atexit(cleanup);
}

static void use(jwtkit_keyring *kr) {
  size_t n = jwtkit_keyring_count(kr);
  for (size_t i = 0; i < n; i++) {
    jwtkit_keyring_entry e;
    JKF_CHECK(jwtkit_keyring_get(kr, i, &e) == JWTKIT_OK, "get(%zu)", i);
    JKF_CHECK(e.kid != NULL && jwtkit_alg_name(e.alg) != NULL, "entry %zu", i);
    JKF_CHECK(strcmp(jwtkit_key_state_name(e.state), "unknown") != 0, "entry %zu state %d", i, (int)e.state);
  }
  jwtkit_keyring_entry e;
  JKF_CHECK(jwtkit_keyring_get(kr, n, &e) == JWTKIT_ERR_NOT_FOUND, "get past the end");
  jwtkit_keyring_timing t;
  jwtkit_keyring_get_timing(kr, &t);
  (void)jwtkit_keyring_generation(kr);
  char *json = NULL;
  size_t jl = 0;
  JKF_CHECK(jwtkit_keyring_jwks(kr, &json, &jl) == JWTKIT_OK, "keyring_jwks");
  JKF_CHECK(strlen(json) == jl && jkf_json_ok(json, jl, 1), "keyring JWKS is not strict JSON: %s", json);
  jwtkit_jwks *set = NULL;
  if (jwtkit_jwks_parse(&set, json, jl, JWTKIT_ALG_UNSPEC, NULL, NULL, NULL) == JWTKIT_OK) jwtkit_jwks_free(set);
  jwtkit_free(json);
  char *plan = NULL;
  size_t pl = 0;
  JKF_CHECK(jwtkit_keyring_plan(kr, NOW, &plan, &pl) == JWTKIT_OK, "keyring_plan");
  JKF_CHECK(strlen(plan) == pl, "plan length");
  jwtkit_free(plan);
  for (int a = 1; a < JWTKIT_ALG_COUNT; a++) {
    jwtkit_key *k = NULL;
    int64_t max_exp = 0;
    jwtkit_err rc = jwtkit_keyring_signing_key(kr, (jwtkit_alg)a, NOW, &k, &max_exp);
    if (rc == JWTKIT_OK) JKF_CHECK(k != NULL && jwtkit_key_can_sign(k) && max_exp > NOW, "signing_key");
  }
}

int jkf_keyring(const uint8_t *data, size_t size) {
  init();
  FILE *f = fopen(g_meta, "wb");
  JKF_CHECK(f != NULL, "open %s", g_meta);
  JKF_CHECK(fwrite(data, 1, size, f) == size && fclose(f) == 0, "write %s", g_meta);
  /* a group-writable keyring.json (umask 002) would be refused before it is parsed */
  JKF_CHECK(chmod(g_meta, 0600) == 0, "chmod %s", g_meta);
  for (int pass = 0; pass < 2; pass++) {
    jwtkit_keyring *kr = NULL;
    jwtkit_errinfo info;
    memset(&info, 0x5a, sizeof info);
    jwtkit_err rc = jwtkit_keyring_open(&kr, g_dir, pass ? "fuzz-pass" : NULL, &info);
    if (rc != JWTKIT_OK) {
      JKF_CHECK(kr == NULL, "failed open left a keyring");
      JKF_CHECK(jkf_errinfo_sane(&info), "errinfo");
      continue;
    }
    use(kr);
    jwtkit_keyring_free(kr);
  }
  return 0;
}

JKF_ENTRY(jkf_keyring)
