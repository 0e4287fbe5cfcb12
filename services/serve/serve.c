/* jwtkit_serve_main: options, configuration layers, demo mode, signals
 * (SIGTERM/SIGINT: graceful stop, SIGHUP: reload); `client ...` goes to
 * clients_admin.c. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/file.h"
#include "common/log.h"
#include "common/parse.h"
#include "core/alloc.h"
#include "fetch.h"
#include "jwtkit_serve.h"
#include "serve.h"

#define SHUTDOWN_GRACE_MS 3000
#define DEMO_AUDIENCE "demo-api"

static const char k_usage[] =
    "Usage: jwtkit serve [OPTIONS]\n"
    "       jwtkit serve client add NAME --audience AUD [--audience AUD2 ...] [--scopes \"S1 S2\"]\n"
    "                               [--ttl DURATION] [--alg ALG] [--jwks FILE [--assertion-alg ALG ...]]\n"
    "                               [--jwks-uri URL --assertion-alg ALG ...]\n"
    "                               [--clients FILE | --config FILE]\n"
    "\n"
    "The token issuer: OAuth 2.0 client credentials grant (RFC 6749 §4.4) minting RFC 9068\n"
    "access tokens signed by a rotating keyring, its JWKS and discovery documents.\n"
    "\n"
    "Options (each also a config-file key, with '_' for '-'):\n"
    "  --config FILE               read settings from FILE (command-line options win)\n"
    "  --listen ADDR:PORT          address to listen on (default 127.0.0.1:8080)\n"
    "  --issuer URL                the iss of minted tokens (default http://ADDR:PORT of --listen)\n"
    "  --keyring DIR|URL           keyring directory, or a postgres:// URL shared by several issuers;\n"
    "                              created on first start (default ./var/keyring)\n"
    "  --clients FILE              clients file (default ./var/clients.conf)\n"
    "  --alg ALG                   algorithm to mint and keep active (default ES256; repeatable;\n"
    "                              RS256..RS512, PS256..PS512, ES256..ES512, EdDSA); the first one\n"
    "                              signs unless a client names its own\n"
    "  --passphrase-file FILE      passphrase of an encrypted keyring (first line of FILE)\n"
    "  --passphrase-env NAME       ... or from the environment variable NAME\n"
    "  --kek-file FILE             PostgreSQL keyring: key-encryption keys, one per line, the first seals\n"
    "  --kek-env NAME              ... or from the environment variable NAME (default JWTKIT_KEK)\n"
    "  --rotate-check DURATION     how often the rotation runs (default 30s)\n"
    "  --max-age DURATION          JWKS Cache-Control max-age (default 5m)\n"
    "  --token-ttl DURATION        longest token lifetime (default 15m)\n"
    "  --rotate-every DURATION     active period of a signing key (default 30d)\n"
    "  --leeway DURATION           verifiers' clock leeway, 0..300s (default 60s)\n"
    "  --publish-ahead DURATION    publish the next key this long before the rotation\n"
    "                              (default max(2 x max-age, rotate-every/30)); these five are\n"
    "                              the keyring's timing, used when it is created and checked by its rules\n"
    "  --transition-ttl DURATION   cap the lifetime of minted tokens during a migration\n"
    "  --legacy-hs256-secret-file FILE  the HS256 secret being migrated away from: checked,\n"
    "                              never published, never used to mint\n"
    "  --thread-pool N             HTTP worker threads (default: number of cores)\n"
    "  --max-connections N         concurrent connections (default 1024; 16 more in reserve for /healthz)\n"
    "  --max-connections-per-ip N  concurrent connections from one address (default 64; 0: no limit)\n"
    "  --header-timeout DURATION   a request's line, headers and body must arrive within this (default 5s)\n"
    "  --token-rate-ip RATE        POST /token per source address: 20/s, 600/m, 100/h or off (default 20/s)\n"
    "  --token-burst-ip N          ... bucket size (default 100)\n"
    "  --token-rate-client RATE    POST /token per client (default 10/s)\n"
    "  --token-burst-client N      ... bucket size (default 100)\n"
    "  --token-fail-cost N         tokens a refused request takes from both buckets (default 10; a token: 1)\n"
    "  --client-jwks-min-ttl DURATION  a client's jwks_uri set is kept at least this long (1s..1h,\n"
    "                              default 30s; longer when its Cache-Control says so, at most 1h)\n"
    "  --client-jwks-stale-max DURATION  ... and used this long past its lifetime while fetches\n"
    "                              fail (0..30d, default 24h), then dropped\n"
    "  --log-level LEVEL           debug, info, warn or error (default info)\n"
    "  --demo                      quick start: create ./var with an ES256 keyring and a demo client\n"
    "  --check                     load the configuration, clients and keyring (read only), report a\n"
    "                              problem with where it is (FILE:LINE), then exit 0 (OK) or 2\n"
    "  -h, --help                  this text\n"
    "\n"
    "Durations: 90s, 15m, 1h, 7d, 2w or plain seconds.\n"
    "Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads the config, clients file and keyring.\n"
    "Exit status: 0 clean shutdown, 2 usage or configuration error, 3 runtime error.\n";

int sv_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "jwtkit serve: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nTry 'jwtkit serve --help'.\n");
  va_end(ap);
  return SV_EXIT_USAGE;
}

/* --name value / --name=value -> config key (dashes to underscores). */
static int parse_cli(int argc, char **argv, sv_settings *cli, int *help, int *check) {
  sv_settings_defaults(cli);
  *help = 0;
  *check = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      *help = 1;
      return 0;
    }
    if (strcmp(a, "--") == 0) { /* ends the options; serve takes no arguments */
      if (i + 1 < argc) return sv_usage_error("unexpected argument '%s'", argv[i + 1]);
      break;
    }
    if (strncmp(a, "--", 2) != 0) return sv_usage_error("unexpected argument '%s'", a);
    char key[64];
    const char *eq = strchr(a + 2, '=');
    size_t kl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
    if (kl == 0 || kl >= sizeof key) return sv_usage_error("unknown option '%s'", a);
    memcpy(key, a + 2, kl);
    key[kl] = '\0';
    for (char *p = key; *p; p++)
      if (*p == '-') *p = '_';
    if (strcmp(key, "threads") == 0) snprintf(key, sizeof key, "thread_pool");
    if (strcmp(key, "check") == 0) { /* not a config key: what this run does */
      if (eq) return sv_usage_error("--check takes no value (%s)", a);
      *check = 1;
      continue;
    }
    if (strcmp(key, "demo") == 0) {
      if (eq) return sv_usage_error("--demo takes no value (%s)", a);
      cli->demo = 1;
      cli->set |= SV_SET_DEMO;
      continue;
    }
    const char *value = eq ? eq + 1 : NULL;
    if (value == NULL) {
      if (i + 1 >= argc) return sv_usage_error("option '%s' needs a value", a);
      value = argv[++i];
    }
    if (strcmp(key, "config") == 0) {
      if (strlen(value) == 0 || strlen(value) >= sizeof cli->config) return sv_usage_error("bad --config '%s'", value);
      snprintf(cli->config, sizeof cli->config, "%s", value);
      cli->set |= SV_SET_CONFIG;
      continue;
    }
    char err[400];
    if (sv_settings_set(cli, key, value, 0, err, sizeof err) != 0) {
      if (strncmp(err, "unknown option", 14) == 0) return sv_usage_error("unknown option '%s'", a);
      return sv_usage_error("%s", err);
    }
  }
  return 0;
}

/* defaults <- config file <- command line */
static int load_settings(const sv_settings *cli, sv_settings *out, char *err, size_t cap) {
  sv_settings_defaults(out);
  if (cli->set & SV_SET_CONFIG) {
    sv_settings *file = malloc(sizeof *file);
    if (file == NULL) {
      snprintf(err, cap, "out of memory");
      return -1;
    }
    sv_settings_defaults(file);
    int rc = sv_settings_load(file, cli->config, err, cap);
    if (rc == 0) sv_settings_overlay(out, file);
    free(file);
    if (rc != 0) return -1;
  }
  sv_settings_overlay(out, cli);
  return sv_settings_finish(out, err, cap);
}

/* An error about what an option names (a file, a variable), after where
 * the option was given: "serve.conf:4: passphrase_file: ...". */
static void option_error(const sv_settings *s, uint32_t bit, const char *name, const char *msg, char *err,
                         size_t cap) {
  char o[SV_PATH_MAX + 16];
  sv_settings_origin(s, bit, name, o, sizeof o);
  snprintf(err, cap, "%.400s%s%s: %.560s", o, o[0] ? ": " : "", name, msg);
}

static int read_passphrase(const sv_settings *s, char **out, char *err, size_t cap) {
  *out = NULL;
  if (s->set & SV_SET_PASSFILE) {
    char *text = NULL;
    size_t len = 0;
    jwtkit_errinfo ei;
    memset(&ei, 0, sizeof ei);
    jwtkit_err rc = jk_read_secret_file(s->passphrase_file, SV_MAX_PASSPHRASE, &text, &len, &ei);
    if (rc != JWTKIT_OK) {
      option_error(s, SV_SET_PASSFILE, "passphrase_file", ei.msg[0] ? ei.msg : jwtkit_strerror(rc), err, cap);
      return -1;
    }
    size_t n = strcspn(text, "\r\n");
    if (n == 0) {
      jk_free_secret(text, len + 1);
      option_error(s, SV_SET_PASSFILE, "passphrase_file", "the first line of the file is empty", err, cap);
      return -1;
    }
    *out = jk_strndup(text, n);
    jk_free_secret(text, len + 1);
  } else if (s->set & SV_SET_PASSENV) {
    const char *v = getenv(s->passphrase_env);
    if (v == NULL || *v == '\0' || strlen(v) > SV_MAX_PASSPHRASE) {
      char m[200];
      snprintf(m, sizeof m, "the environment variable %.64s is unset, empty or longer than %u bytes", s->passphrase_env,
               SV_MAX_PASSPHRASE);
      option_error(s, SV_SET_PASSENV, "passphrase_env", m, err, cap);
      return -1;
    }
    *out = jk_strdup(v);
  } else {
    return 0;
  }
  if (*out == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  return 0;
}

/* The legacy HS256 secret: checked (private file, >= 32 bytes, a valid
 * HS256 key) and dropped.  It is never kept, published or used to mint. */
static int check_legacy(const sv_settings *s, int *loaded, char *err, size_t cap) {
  *loaded = 0;
  if (!(s->set & SV_SET_LEGACY)) return 0;
  /* the library's secret rule, as the command and the gate read the file */
  jwtkit_key *k = NULL;
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  jwtkit_err rc = jwtkit_key_from_secret_file(&k, JWTKIT_ALG_HS256, s->legacy_secret_file, &ei);
  jwtkit_key_free(k);
  if (rc != JWTKIT_OK) {
    option_error(s, SV_SET_LEGACY, "legacy_hs256_secret_file", ei.msg[0] ? ei.msg : jwtkit_strerror(rc), err, cap);
    return -1;
  }
  *loaded = 1;
  return 0;
}

/* KEKs of a PostgreSQL keyring: kek_file, kek_env, else $JWTKIT_KEK. */
static int read_keks(const sv_settings *s, sv_keycfg *kc, char *err, size_t cap) {
  if (!jwtkit_keyring_location_is_postgres(s->keyring)) return 0;
  char *text = NULL;
  size_t len = 0;
  const char *what = NULL;
  if (s->set & SV_SET_KEKFILE) {
    jwtkit_errinfo ei;
    memset(&ei, 0, sizeof ei);
    jwtkit_err rc = jk_read_secret_file(s->kek_file, SV_MAX_PASSPHRASE * 8, &text, &len, &ei);
    if (rc != JWTKIT_OK) {
      option_error(s, SV_SET_KEKFILE, "kek_file", ei.msg[0] ? ei.msg : jwtkit_strerror(rc), err, cap);
      return -1;
    }
    what = s->kek_file;
  } else {
    const char *name = (s->set & SV_SET_KEKENV) ? s->kek_env : "JWTKIT_KEK";
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
      snprintf(err, cap, "a PostgreSQL keyring needs its key-encryption keys: kek_file, kek_env or $JWTKIT_KEK "
                       "(environment variable %s is unset or empty)", name);
      return -1;
    }
    what = name;
  }
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  jwtkit_err rc;
  if (text != NULL) {
    rc = jwtkit_kek_parse(text, len, &kc->keks, &kc->nkeks, &ei);
    jk_free_secret(text, len + 1);
  } else {
    const char *v = getenv(what);
    rc = jwtkit_kek_parse(v, strlen(v), &kc->keks, &kc->nkeks, &ei);
  }
  if (rc != JWTKIT_OK) {
    snprintf(err, cap, "KEKs from %.512s: %.400s", what, ei.msg);
    return -1;
  }
  return 0;
}

int sv_keycfg_make(const sv_settings *s, sv_keycfg *kc, char *err, size_t cap) {
  memset(kc, 0, sizeof *kc);
  snprintf(kc->dir, sizeof kc->dir, "%s", s->keyring);
  jwtkit_keyring_location_redact(s->keyring, kc->where, sizeof kc->where);
  memcpy(kc->algs, s->algs, sizeof kc->algs);
  kc->nalgs = s->nalgs;
  kc->rotate_check = s->rotate_check;
  jwtkit_keyring_timing_default(&kc->timing);
  kc->timing.max_age = s->max_age;
  kc->timing.token_ttl = s->token_ttl;
  kc->timing.rotate_every = s->rotate_every;
  kc->timing.leeway = s->leeway;
  kc->timing.publish_ahead = s->publish_ahead;
  kc->timing_set = s->set & (SV_SET_MAX_AGE | SV_SET_TOKEN_TTL | SV_SET_ROTATE_EVERY | SV_SET_LEEWAY | SV_SET_PUBLISH_AHEAD);
  kc->clients_pg = sv_settings_clients_in_pg(s);
  if (read_keks(s, kc, err, cap) != 0) return -1;
  if (read_passphrase(s, &kc->passphrase, err, cap) != 0) {
    sv_keycfg_free(kc);
    return -1;
  }
  return 0;
}

int64_t sv_keyring_token_ttl(const sv_settings *s, int *from_keyring) {
  *from_keyring = 0;
  sv_keycfg kc;
  char err[1024];
  if (sv_keycfg_make(s, &kc, err, sizeof err) != 0) return s->token_ttl;
  jwtkit_keyring_secrets sec = {.passphrase = kc.passphrase, .keks = (const unsigned char(*)[32])kc.keks, .nkeks = kc.nkeks};
  jwtkit_keyring *kr = NULL;
  jwtkit_errinfo verdict, ei;
  memset(&verdict, 0, sizeof verdict);
  memset(&ei, 0, sizeof ei);
  int64_t ttl = s->token_ttl;
  if (jwtkit_keyring_open_review(&kr, kc.dir, &sec, &verdict, &ei) == JWTKIT_OK) {
    jwtkit_keyring_timing t;
    jwtkit_keyring_get_timing(kr, &t);
    ttl = t.token_ttl;
    *from_keyring = 1;
  }
  jwtkit_keyring_free(kr);
  sv_keycfg_free(&kc);
  return ttl;
}

/* The directory part of path ("." when none). */
static void dir_of(const char *path, char *out, size_t cap) {
  snprintf(out, cap, "%s", path);
  char *slash = strrchr(out, '/');
  if (slash == NULL) snprintf(out, cap, ".");
  else if (slash == out) out[1] = '\0';
  else *slash = '\0';
}

/* "./var/x" -> "var/x" for the printed commands. */
static const char *display_path(const char *p) { return strncmp(p, "./", 2) == 0 ? p + 2 : p; }

static void demo_secret_path(const sv_settings *s, char *out, size_t cap) {
  char dir[SV_PATH_MAX];
  dir_of(s->clients, dir, sizeof dir);
  snprintf(out, cap, "%s/demo-client-secret", dir);
}

/* --demo: a clients file with one client "demo" when there is none. */
static int demo_prepare(const sv_settings *s, char *err, size_t cap) {
  struct stat st;
  if (stat(s->clients, &st) == 0) return 0; /* second start: reuse var/ */
  if (jk_mkdirs(s->clients, 0700, 0) != 0) {
    snprintf(err, cap, "cannot create the directory of %.512s: %s", s->clients, strerror(errno));
    return -1;
  }
  char secret[SV_SECRET_CHARS + 1], hash[SV_SECRET_HASH_MAX], path[SV_PATH_MAX + 32];
  if (sv_secret_generate(secret) != 0 || sv_secret_hash_new(secret, strlen(secret), hash, sizeof hash) != 0) {
    snprintf(err, cap, "cannot generate the demo client secret");
    return -1;
  }
  demo_secret_path(s, path, sizeof path);
  char line[SV_SECRET_CHARS + 2];
  snprintf(line, sizeof line, "%s\n", secret);
  jk_wipe(secret, sizeof secret);
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  jwtkit_err rc = jk_write_file_atomic(path, line, strlen(line), 0600, &ei);
  jk_wipe(line, sizeof line);
  if (rc != JWTKIT_OK) {
    snprintf(err, cap, "%s", ei.msg);
    return -1;
  }
  char text[1024];
  snprintf(text, sizeof text,
           "# Clients of jwtkit serve, created by --demo.  Secrets are stored hashed:\n"
           "# pbkdf2-sha256$<iterations>$<salt>$<hash>.  Add clients with\n"
           "#   jwtkit serve client add NAME --audience AUD [--scopes \"a b\"] [--ttl 15m]\n"
           "# and send SIGHUP to the issuer to load them.\n"
           "\n"
           "[client demo]\n"
           "secret_hash = %s\n"
           "audience = " DEMO_AUDIENCE "\n"
           "scopes = read write\n"
           "ttl = 15m\n",
           hash);
  if (jk_write_file_atomic(s->clients, text, strlen(text), 0600, &ei) != JWTKIT_OK) {
    snprintf(err, cap, "%s", ei.msg);
    return -1;
  }
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_INFO, "demo_client_created")) {
    jk_log_str(&L, "client_id", "demo");
    jk_log_str(&L, "clients", s->clients);
    jk_log_str(&L, "secret_file", path);
    jk_log_end(&L);
  }
  return 0;
}

static void demo_print(const sv_settings *s, const sv_confsnap *cs) {
  char path[SV_PATH_MAX + 32];
  demo_secret_path(s, path, sizeof path);
  const sv_client *demo = sv_clients_find(&cs->clients, "demo", 4);
  const char *aud = demo && demo->naud ? demo->aud[0] : DEMO_AUDIENCE;
  const char *alg = jwtkit_alg_name(demo && demo->alg ? demo->alg : s->algs[0]);
  int http = strncmp(s->issuer, "http://", 7) == 0;
  fprintf(stderr,
          "\njwtkit serve --demo: demo client 'demo' (its secret is in %s; demo only, never do this in "
          "production)\n"
          "get a token:\n"
          "  curl -s -u demo:$(cat %s) -d grant_type=client_credentials %s\n"
          "check it (pipe the access_token in):\n"
          "  jwtkit verify --jwks %s%s --alg %s --iss %s --aud %s -\n\n",
          display_path(path), display_path(path), cs->token_endpoint, cs->jwks_uri, http ? " --allow-http" : "", alg,
          s->issuer, aud);
  fflush(stderr);
}

/* With a PostgreSQL keyring, private_key_jwt clients need the table of
 * assertion ids (schema version 2): made sure of before they are served
 * (a replica on a database no mutation has migrated yet).  0 or -1. */
static int prepare_jti_table(const sv_confsnap *cs, const sv_keycfg *kc, char *err, size_t cap) {
  if (!jwtkit_keyring_location_is_postgres(kc->dir)) return 0;
  for (size_t i = 0; i < cs->clients.n; i++)
    if (cs->clients.v[i].jwks != NULL || cs->clients.v[i].jwks_uri != NULL) return sv_pg_migrate(kc, err, cap);
  return 0;
}

/* Everything a SIGHUP reloads; nothing is applied unless all of it loads. */
static int load_conf(const sv_settings *cli, sv_settings *s, sv_confsnap **cs, sv_keycfg *kc, char *err, size_t cap) {
  sv_clients clients;
  int legacy = 0;
  uint64_t revision = 0;
  if (load_settings(cli, s, err, cap) != 0) return SV_EXIT_USAGE;
  if (check_legacy(s, &legacy, err, cap) != 0) return SV_EXIT_USAGE;
  if (sv_keycfg_make(s, kc, err, cap) != 0) return SV_EXIT_USAGE;
  int rc = 0;
  if (kc->clients_pg) {
    const char *reason = NULL;
    if (sv_clients_pg_load(kc, sv_clients_pg_seen(), &clients, &revision, &reason, err, cap) != 0) {
      rc = reason != NULL ? SV_EXIT_USAGE : SV_EXIT_RUNTIME;
    }
  } else if (sv_clients_load(&clients, s->clients, err, cap) != 0) {
    rc = SV_EXIT_USAGE;
  }
  if (rc == 0 && sv_confsnap_build(cs, s, &clients, legacy, err, cap) != 0) {
    sv_clients_free(&clients);
    rc = SV_EXIT_USAGE;
  }
  if (rc != 0) {
    sv_keycfg_free(kc);
    return rc;
  }
  (*cs)->clients_pg = kc->clients_pg;
  (*cs)->clients_revision = revision;
  return 0;
}

static void log_config(const sv_settings *s, const sv_confsnap *cs) {
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_INFO, "configuration")) {
    jk_log_str(&L, "issuer", s->issuer);
    char where[SV_PATH_MAX];
    jwtkit_keyring_location_redact(s->keyring, where, sizeof where);
    jk_log_str(&L, "keyring", where);
    jk_log_str(&L, "clients", cs->clients_pg ? "PostgreSQL clients table" : s->clients);
    if (cs->clients_pg) jk_log_int(&L, "clients_revision", (int64_t)cs->clients_revision);
    jk_log_uint(&L, "clients_loaded", cs->clients.n);
    char algs[128] = "";
    for (size_t i = 0; i < s->nalgs; i++) {
      if (i) strncat(algs, " ", sizeof algs - strlen(algs) - 1);
      strncat(algs, jwtkit_alg_name(s->algs[i]), sizeof algs - strlen(algs) - 1);
    }
    jk_log_str(&L, "algs", algs);
    if (cs->legacy_loaded) jk_log_str(&L, "legacy_hs256", "configured (never published, never minted)");
    if (s->transition_ttl > 0) jk_log_int(&L, "transition_ttl", s->transition_ttl);
    jk_log_end(&L);
  }
  /* clients whose ttl the keyring's token_ttl cuts */
  sv_keysnap *ks = sv_keysnap_acquire();
  if (ks != NULL) sv_clients_warn_ttl(&cs->clients, ks->timing.token_ttl, cs->clients_pg ? "PostgreSQL clients table" : s->clients);
  sv_keysnap_release(ks);
  if (cs->legacy_loaded && s->transition_ttl == 0)
    jk_log(JK_LOG_WARN, "legacy_without_transition_ttl",
           "a legacy HS256 secret is configured without transition_ttl: set transition_ttl (e.g. 5m) to keep tokens "
           "short-lived during the migration");
}

static void reload(const sv_settings *cli, const sv_settings *running) {
  sv_settings *s = malloc(sizeof *s);
  sv_confsnap *cs = NULL;
  sv_keycfg kc;
  char err[1024];
  memset(&kc, 0, sizeof kc);
  if (s == NULL) return;
  int rc = load_conf(cli, s, &cs, &kc, err, sizeof err);
  if (rc != 0) {
    jk_log(JK_LOG_ERROR, "reload_failed", "reload failed; the running configuration stays: %s", err);
    free(s);
    return;
  }
  if (prepare_jti_table(cs, &kc, err, sizeof err) != 0) {
    jk_log(JK_LOG_ERROR, "reload_failed", "reload failed; the running configuration stays: %s", err);
    sv_confsnap_release(cs);
    sv_keycfg_free(&kc);
    free(s);
    return;
  }
  if (strcmp(s->listen, running->listen) != 0 || s->threads != running->threads ||
      s->max_connections != running->max_connections || s->max_connections_ip != running->max_connections_ip ||
      s->header_timeout != running->header_timeout)
    jk_log(JK_LOG_WARN, "restart_needed",
           "listen, thread_pool, max_connections, max_connections_per_ip and header_timeout change only on restart");
  jk_log_set_level(s->log_level);
  if (cs->clients_pg) sv_clients_pg_served(cs->clients_revision);
  sv_confsnap_replace(cs);
  sv_rotation_reload(&kc);
  jk_log(JK_LOG_INFO, "reloaded", "reloaded configuration and clients; re-opening the keyring");
  log_config(s, cs);
  free(s);
}

static int serve(const sv_settings *cli) {
  char err[1024];
  sv_settings *s = malloc(sizeof *s);
  if (s == NULL) return SV_EXIT_RUNTIME;
  sv_metrics_init();
  /* demo: create var/ before loading the clients file */
  if (load_settings(cli, s, err, sizeof err) != 0) {
    jk_log(JK_LOG_ERROR, "config_error", "%s", err);
    free(s);
    return SV_EXIT_USAGE;
  }
  jk_log_set_level(s->log_level);
  if (s->demo && demo_prepare(s, err, sizeof err) != 0) {
    jk_log(JK_LOG_ERROR, "demo_setup_failed", "%s", err);
    free(s);
    return SV_EXIT_RUNTIME;
  }
  /* clients with a jwks_uri fetch their keys (a thread each) */
  if (jk_fetch_global_init() != 0) {
    jk_log(JK_LOG_ERROR, "startup_failed", "cannot initialise libcurl");
    free(s);
    return SV_EXIT_RUNTIME;
  }
  sv_remote_set_live(1);
  sv_confsnap *cs = NULL;
  sv_keycfg kc;
  memset(&kc, 0, sizeof kc);
  int rc = load_conf(cli, s, &cs, &kc, err, sizeof err);
  if (rc != 0) {
    jk_log(JK_LOG_ERROR, "config_error", "%s", err);
    free(s);
    return rc;
  }
  jwtkit_keyring *kr = NULL;
  rc = sv_keyring_prepare(&kc, &kr, err, sizeof err);
  if (rc == 0 && prepare_jti_table(cs, &kc, err, sizeof err) != 0) {
    jwtkit_keyring_free(kr);
    rc = SV_EXIT_RUNTIME;
  }
  if (rc != 0) {
    jk_log(JK_LOG_ERROR, "keyring_error", "%s", err);
    sv_keycfg_free(&kc);
    sv_confsnap_release(cs);
    free(s);
    return rc;
  }
  uint64_t gen = 0;
  if (sv_keysnap_reload(&kc, &gen) != 0) {
    jwtkit_keyring_free(kr);
    sv_keycfg_free(&kc);
    sv_confsnap_release(cs);
    free(s);
    return SV_EXIT_RUNTIME;
  }
  if (cs->clients_pg) sv_clients_pg_served(cs->clients_revision);
  sv_confsnap_replace(cs);
  log_config(s, cs);
  if (s->demo) demo_print(s, cs);

  /* every thread started from here on inherits the blocked signals; the
   * main thread takes them with sigwait */
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  struct sigaction ign, old_pipe;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &old_pipe);

  int exit_code = SV_EXIT_OK;
  sv_server *srv = NULL;
  if (sv_rotation_start(&kc, kr) != 0) {
    jk_log(JK_LOG_ERROR, "start_failed", "cannot start the rotation thread");
    jwtkit_keyring_free(kr);
    sv_keycfg_free(&kc);
    exit_code = SV_EXIT_RUNTIME;
    goto done;
  }
  if (sv_http_start(&srv, s, err, sizeof err) != 0) {
    jk_log(JK_LOG_ERROR, "start_failed", "cannot start the HTTP server: %s", err);
    exit_code = SV_EXIT_RUNTIME;
    goto done;
  }
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      jk_log(JK_LOG_INFO, "sighup", "SIGHUP: reloading");
      reload(cli, s);
      continue;
    }
    jk_log(JK_LOG_INFO, "shutdown", "%s: no new connections, finishing requests in flight",
           sig == SIGTERM ? "SIGTERM" : "SIGINT");
    break;
  }
  sv_http_stop(srv, SHUTDOWN_GRACE_MS);
  srv = NULL;
done:
  sv_rotation_stop();
  sv_confsnap_install(NULL);
  /* drop what arrived meanwhile before restoring the mask */
  struct timespec zero = {0, 0};
  while (sigtimedwait(&set, NULL, &zero) > 0) {
  }
  sigaction(SIGPIPE, &old_pipe, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  jk_logline L;
  if (exit_code == SV_EXIT_OK && jk_log_begin(&L, JK_LOG_INFO, "stopped")) jk_log_end(&L);
  free(s);
  return exit_code;
}

/* --check: everything a start loads, read only (no keyring is created,
 * no demo files written, nothing listens).  A problem is reported as at
 * start, with where it is; 0 or 2 (3: out of memory). */
static int check_only(const sv_settings *cli) {
  if (cli->set & SV_SET_DEMO)
    return sv_usage_error("--check reads only, and --demo writes its files: check without --demo");
  sv_settings *s = malloc(sizeof *s);
  if (s == NULL) return SV_EXIT_RUNTIME;
  char err[1600];
  sv_confsnap *cs = NULL;
  sv_keycfg kc;
  memset(&kc, 0, sizeof kc);
  if (load_conf(cli, s, &cs, &kc, err, sizeof err) != 0) {
    fprintf(stderr, "jwtkit serve: %s\n", err);
    free(s);
    return SV_EXIT_USAGE;
  }
  const char *what = cli->set & SV_SET_CONFIG ? cli->config : "the command line";
  char from[SV_PATH_MAX + 40];
  snprintf(from, sizeof from, "%s", cs->clients_pg ? "the PostgreSQL clients table" : s->clients);
  /* the keyring, opened as it is: never created or changed here */
  jwtkit_keyring_secrets sec = {
      .passphrase = kc.passphrase, .keks = (const unsigned char(*)[32])kc.keks, .nkeks = kc.nkeks};
  jwtkit_keyring *kr = NULL;
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  jwtkit_err rc = jwtkit_keyring_open_ex(&kr, kc.dir, &sec, &ei);
  int status = SV_EXIT_OK;
  if (rc == JWTKIT_OK) {
    jwtkit_keyring_timing t;
    jwtkit_keyring_get_timing(kr, &t);
    sv_clients_warn_ttl(&cs->clients, t.token_ttl, from);
    printf("%s: configuration OK (%zu client%s from %s; keyring %s: generation %llu, %zu key%s)\n", what,
           cs->clients.n, cs->clients.n == 1 ? "" : "s", from, kc.where,
           (unsigned long long)jwtkit_keyring_generation(kr), jwtkit_keyring_count(kr),
           jwtkit_keyring_count(kr) == 1 ? "" : "s");
    jwtkit_keyring_free(kr);
  } else if (rc == JWTKIT_ERR_NOT_FOUND) {
    sv_clients_warn_ttl(&cs->clients, s->token_ttl, from);
    printf("%s: configuration OK (%zu client%s from %s; keyring %s: none yet, the first start creates it)\n", what,
           cs->clients.n, cs->clients.n == 1 ? "" : "s", from, kc.where);
  } else {
    char o[SV_PATH_MAX + 16];
    sv_settings_origin(s, SV_SET_KEYRING, "keyring", o, sizeof o);
    fprintf(stderr, "jwtkit serve: %s%skeyring: opening %s: %s\n", o, o[0] ? ": " : "", kc.where,
            ei.msg[0] ? ei.msg : jwtkit_strerror(rc));
    status = rc == JWTKIT_ERR_NOMEM ? SV_EXIT_RUNTIME : SV_EXIT_USAGE;
  }
  sv_keycfg_free(&kc);
  sv_confsnap_release(cs);
  free(s);
  return status;
}

/* ------------------------------------------------------------ entry */

int jwtkit_serve_main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "client") == 0) return sv_client_admin_main(argc, argv);
  sv_settings *cli = malloc(sizeof *cli);
  if (cli == NULL) return SV_EXIT_RUNTIME;
  int help = 0, check = 0;
  int rc = parse_cli(argc, argv, cli, &help, &check);
  if (rc == 0 && help) fputs(k_usage, stdout);
  else if (rc == 0 && check) rc = check_only(cli);
  else if (rc == 0) rc = serve(cli);
  free(cli);
  return rc;
}
