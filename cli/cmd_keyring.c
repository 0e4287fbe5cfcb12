/* jwtkit keyring: init, add, rotate, plan, revoke, list, jwks, rekey, trust-document, kek-new. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>


#include "cli.h"
#include "common/buf.h"
#include "common/parse.h"
#include "core/alloc.h"

static int64_t now_or_at(cli_args *a, int *rc) {
  const char *at = cli_opt_str(a, "at");
  int64_t t = (int64_t)time(NULL);
  *rc = CLI_OK;
  if (at != NULL) *rc = cli_opt_time(a, "at", &t);
  return t;
}

static void print_line(void *ctx, const char *line) {
  (void)ctx;
  printf("%s\n", line);
}

static int lib_fail(const cli_args *a, jwtkit_err rc, const jwtkit_errinfo *ei) {
  char buf[300];
  int code = rc == JWTKIT_ERR_IO || rc == JWTKIT_ERR_NOMEM || rc == JWTKIT_ERR_CRYPTO ? CLI_INTERNAL : CLI_USAGE;
  /* a check found a problem (exit 1): a keyring document changed by someone
   * without its KEK or passphrase, or an old one put back; unsafe
   * permissions are unreadable input (2), as for every secret file */
  if (rc == JWTKIT_ERR_BAD_SIGNATURE || (rc == JWTKIT_ERR_STATE && ei != NULL && strcmp(ei->field, "generation") == 0))
    code = CLI_FAIL;
  return cli_fail(a, code, "%s", cli_errtext(rc, ei, buf, sizeof buf));
}

/* The passphrase and KEKs given on the command line. */
typedef struct ring_secrets {
  cli_buf pass;
  unsigned char (*keks)[32];
  size_t nkeks;
  jwtkit_keyring_secrets sec;
} ring_secrets;

static void secrets_free(ring_secrets *r) {
  cli_buf_free(&r->pass);
  jwtkit_kek_free(r->keks, r->nkeks);
  memset(r, 0, sizeof *r);
}

/* optional_kek: a PostgreSQL keyring may be read without a KEK (keyring
 * list shows its public metadata, unauthenticated). */
static int secrets_read_ex(cli_args *a, const char *where, int optional_kek, ring_secrets *r) {
  memset(r, 0, sizeof *r);
  int rc = cli_read_passphrase(a, &r->pass);
  if (rc != CLI_OK) return rc;
  if (jwtkit_keyring_location_is_postgres(where)) {
    if ((rc = cli_read_keks(a, &r->keks, &r->nkeks)) != CLI_OK) {
      secrets_free(r);
      return rc;
    }
    if (r->nkeks == 0 && !optional_kek) {
      secrets_free(r);
      return cli_usage(a, "a PostgreSQL keyring needs its key-encryption keys: --kek-file FILE, --kek-env NAME or "
                          "$JWTKIT_KEK (make one with `jwtkit keyring kek-new`)");
    }
  }
  r->sec.passphrase = r->pass.p;
  r->sec.keks = (const unsigned char(*)[32])r->keks;
  r->sec.nkeks = r->nkeks;
  return CLI_OK;
}

static int secrets_read(cli_args *a, const char *where, ring_secrets *r) { return secrets_read_ex(a, where, 0, r); }

static int open_ring(cli_args *a, const char *dir, jwtkit_keyring **kr) {
  ring_secrets r;
  int rc = secrets_read(a, dir, &r);
  if (rc != CLI_OK) return rc;
  jwtkit_errinfo ei = {0};
  jwtkit_err e = jwtkit_keyring_open_ex(kr, dir, &r.sec, &ei);
  secrets_free(&r);
  return e == JWTKIT_OK ? CLI_OK : lib_fail(a, e, &ei);
}

static int duration_opt(cli_args *a, const char *name, int64_t *out) { return cli_opt_duration(a, name, 0, out); }

static int kr_init(cli_args *a, const char *dir, int64_t now) {
  cli_algset algs;
  int rc = cli_algset_parse(a, "alg", &algs);
  if (rc != CLI_OK) return rc;
  if (algs.n == 0) return cli_usage(a, "keyring init needs --alg (e.g. --alg ES256)");
  jwtkit_keyring_timing t;
  jwtkit_keyring_timing_default(&t);
  if ((rc = duration_opt(a, "max-age", &t.max_age)) != CLI_OK || (rc = duration_opt(a, "token-ttl", &t.token_ttl)) != CLI_OK ||
      (rc = duration_opt(a, "leeway", &t.leeway)) != CLI_OK || (rc = duration_opt(a, "rotate-every", &t.rotate_every)) != CLI_OK ||
      (rc = duration_opt(a, "publish-ahead", &t.publish_ahead)) != CLI_OK)
    return rc;
  const char *bits = cli_opt_str(a, "bits");
  if (bits != NULL) {
    char *end = NULL;
    unsigned long b = strtoul(bits, &end, 10);
    if (end == bits || *end != '\0' || b < 2048 || b > 16384) return cli_usage(a, "--bits must be 2048..16384");
    t.rsa_bits = (unsigned)b;
  }
  const char *token = cli_opt_str(a, "pkcs11");
  if (token != NULL && !jwtkit_is_pkcs11_uri(token))
    return cli_usage(a, "--pkcs11 wants a pkcs11: URI naming the token (pkcs11:token=LABEL?module-path=...&pin-source=FILE)");
  if (jwtkit_keyring_location_is_postgres(dir) || token != NULL) {
    /* keys in the token: nothing private is written under DIR (no git guard) */
    ring_secrets r;
    if ((rc = secrets_read(a, dir, &r)) != CLI_OK) return rc;
    r.sec.pkcs11 = token;
    jwtkit_errinfo ei = {0};
    jwtkit_err e = jwtkit_keyring_init_ex(dir, algs.v, algs.n, &t, &r.sec, now, print_line, NULL, &ei);
    secrets_free(&r);
    return e == JWTKIT_OK ? CLI_OK : lib_fail(a, e, &ei);
  }
  /* private keys will live under DIR: the git guard applies.  It asks git
   * from inside DIR, so DIR must exist; one we create is removed again when
   * the guard refuses. */
  char probe[4096];
  if (snprintf(probe, sizeof probe, "%s/key.pem", dir) >= (int)sizeof probe) return cli_usage(a, "path too long");
  int created = mkdir(dir, 0700) == 0;
  if (!created && errno != EEXIST) return cli_fail(a, CLI_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
  if ((rc = cli_git_guard_private(a, probe, cli_opt_flag(a, "force"))) != CLI_OK) {
    if (created) rmdir(dir);
    return rc;
  }
  cli_buf pass;
  if ((rc = cli_read_passphrase(a, &pass)) != CLI_OK) return rc;
  jwtkit_errinfo ei = {0};
  jwtkit_err e = jwtkit_keyring_init(dir, algs.v, algs.n, &t, pass.p, now, print_line, NULL, &ei);
  cli_buf_free(&pass);
  return e == JWTKIT_OK ? CLI_OK : lib_fail(a, e, &ei);
}

/* --verify-only: each key of a PEM, JWK or JWK Set file (private keys give
 * their public half); a key the keyring already holds is skipped. */
static int kr_add_verify_only(cli_args *a, jwtkit_keyring *kr, const char *file, const cli_algset *algs, int64_t now) {
  cli_buf b;
  int rc = cli_read_file(a, "key file", file, CLI_MAX_JWKS, 1, &b);
  if (rc != CLI_OK) return rc;
  const char *src = strcmp(file, "-") == 0 ? "stdin" : file;
  jwtkit_jwks *set = NULL;
  jwtkit_key *one = NULL;
  jwtkit_errinfo ei = {0};
  char msg[300];
  if (cli_key_format(b.p, b.len) == CLI_KEYFMT_JWKS) {
    jwtkit_alg rsa = algs->n == 1 && jwtkit_alg_kty(algs->v[0]) == JWTKIT_KTY_RSA ? algs->v[0] : JWTKIT_ALG_UNSPEC;
    jwtkit_err e = jwtkit_jwks_parse(&set, b.p, b.len, rsa, NULL, NULL, &ei);
    if (e != JWTKIT_OK) rc = cli_fail(a, cli_exit_for(e), "%s: %s", src, cli_errtext(e, &ei, msg, sizeof msg));
  } else {
    rc = cli_key_import(a, src, b.p, b.len, NULL, algs, 1, &one);
  }
  size_t n = set ? jwtkit_jwks_count(set) : one ? 1 : 0;
  if (rc == CLI_OK && n == 0) rc = cli_fail(a, CLI_USAGE, "%s holds no key", src);
  for (size_t i = 0; rc == CLI_OK && i < n; i++) {
    jwtkit_key *k = set ? jwtkit_jwks_get(set, i) : one;
    memset(&ei, 0, sizeof ei);
    jwtkit_err e = jwtkit_keyring_add_verify_only(kr, k, now, print_line, NULL, &ei);
    if (e == JWTKIT_ERR_STATE && strcmp(ei.field, "kid") == 0)
      printf("skipped key %s: %s\n", jwtkit_key_kid(k) ? jwtkit_key_kid(k) : "(no kid)", ei.msg);
    else if (e != JWTKIT_OK)
      rc = lib_fail(a, e, &ei);
  }
  jwtkit_jwks_free(set);
  jwtkit_key_free(one);
  cli_buf_free(&b);
  return rc;
}

static int kr_release(cli_args *a, const char *dir, int64_t now) {
  jwtkit_keyring *kr = NULL;
  int rc = open_ring(a, dir, &kr);
  if (rc != CLI_OK) return rc;
  jwtkit_errinfo ei = {0};
  jwtkit_err e = jwtkit_keyring_release(kr, now, print_line, NULL, &ei);
  if (e != JWTKIT_OK) rc = lib_fail(a, e, &ei);
  jwtkit_keyring_free(kr);
  return rc;
}

static int kr_add(cli_args *a, const char *dir, const char *file, int64_t now) {
  cli_algset algs;
  int rc = cli_algset_parse(a, "alg", &algs);
  if (rc != CLI_OK) return rc;
  jwtkit_keyring *kr = NULL;
  if ((rc = open_ring(a, dir, &kr)) != CLI_OK) return rc;
  if (cli_opt_flag(a, "verify-only")) {
    if (cli_opt_str(a, "kid") != NULL) rc = cli_usage(a, "--kid applies to an imported private key, not to --verify-only");
    else rc = kr_add_verify_only(a, kr, file, &algs, now);
    jwtkit_keyring_free(kr);
    return rc;
  }
  cli_buf pass;
  jwtkit_key *key = NULL;
  if ((rc = cli_read_passphrase(a, &pass)) == CLI_OK) {
    rc = cli_key_load(a, file, pass.p, &algs, 1, &key);
    cli_buf_free(&pass);
  }
  const char *kid = cli_opt_str(a, "kid");
  if (rc == CLI_OK && kid != NULL && jwtkit_key_set_kid(key, kid, strlen(kid)) != JWTKIT_OK)
    rc = cli_usage(a, "bad --kid (1..255 bytes)");
  if (rc == CLI_OK) {
    jwtkit_errinfo ei = {0};
    jwtkit_err e = jwtkit_keyring_add(kr, key, now, print_line, NULL, &ei);
    if (e != JWTKIT_OK) rc = lib_fail(a, e, &ei);
  }
  jwtkit_key_free(key);
  jwtkit_keyring_free(kr);
  return rc;
}

static int kr_rotate(cli_args *a, const char *dir, int64_t now) {
  jwtkit_keyring *kr = NULL;
  int rc = open_ring(a, dir, &kr);
  if (rc != CLI_OK) return rc;
  uint64_t before = jwtkit_keyring_generation(kr);
  jwtkit_errinfo ei = {0};
  jwtkit_err e = jwtkit_keyring_rotate(kr, now, cli_opt_flag(a, "force"), print_line, NULL, &ei);
  if (e != JWTKIT_OK)
    rc = lib_fail(a, e, &ei);
  else if (jwtkit_keyring_generation(kr) == before) {
    char where[512];
    jwtkit_keyring_location_redact(dir, where, sizeof where);
    printf("nothing to do: every key is where the rules want it (see `jwtkit keyring plan %s`)\n", where);
  }
  jwtkit_keyring_free(kr);
  return rc;
}

static int kr_revoke(cli_args *a, const char *dir, const char *kid, int64_t now) {
  jwtkit_keyring *kr = NULL;
  int rc = open_ring(a, dir, &kr);
  if (rc != CLI_OK) return rc;
  jwtkit_errinfo ei = {0};
  jwtkit_err e = jwtkit_keyring_revoke(kr, kid, now, print_line, NULL, &ei);
  if (e != JWTKIT_OK) rc = e == JWTKIT_ERR_NOT_FOUND ? cli_fail(a, CLI_FAIL, "%s", ei.msg) : lib_fail(a, e, &ei);
  jwtkit_keyring_free(kr);
  return rc;
}

/* Where a key's private part is: its keyring's token, a file, a sealed
 * row, or nowhere (verify-only, retired, revoked). */
static const char *private_of(const jwtkit_keyring_entry *en, int pg) {
  if (en->in_token) return "token";
  if (en->verify_only || en->state >= JWTKIT_KEY_RETIRED) return "none";
  return pg ? "sealed" : "file";
}

static int print_list(const cli_args *a, const char *where, const jwtkit_keyring *kr, int json) {
  jk_buf b;
  jk_buf_init(&b);
  int pg = jwtkit_keyring_location_is_postgres(where);
  const char *token = jwtkit_keyring_pkcs11(kr);
  if (json) {
    jk_buf_putc(&b, '[');
  } else {
    char loc[512];
    jwtkit_keyring_location_redact(where, loc, sizeof loc);
    if (token != NULL)
      jk_buf_printf(&b, "private keys: in the PKCS#11 token %s (metadata: %s)\n", token, pg ? "PostgreSQL" : loc);
    else if (pg)
      jk_buf_printf(&b, "private keys: sealed rows in PostgreSQL (AES-256-GCM under the KEK)\n");
    else
      jk_buf_printf(&b, "private keys: files in %s/keys\n", loc);
    jk_buf_printf(&b, "%-44s %-6s %-9s %-20s %s\n", "KID", "ALG", "STATE", "SINCE", "PRIVATE");
  }
  for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
    jwtkit_keyring_entry en;
    if (jwtkit_keyring_get(kr, i, &en) != JWTKIT_OK) break;
    int64_t since = en.state == JWTKIT_KEY_PENDING    ? en.published
                    : en.state == JWTKIT_KEY_ACTIVE   ? en.activated
                    : en.state == JWTKIT_KEY_RETIRING ? en.retiring
                                                      : en.retired;
    if (json) {
      jk_buf_puts(&b, i ? ",{\"kid\":" : "{\"kid\":");
      jk_buf_json_str(&b, en.kid, strlen(en.kid));
      jk_buf_printf(&b, ",\"alg\":\"%s\",\"state\":\"%s\",\"since\":%lld,\"private\":\"%s\"}", jwtkit_alg_name(en.alg),
                    jwtkit_key_state_name(en.state), (long long)since, private_of(&en, pg));
    } else {
      char ts[40];
      jk_format_rfc3339(since, ts, sizeof ts);
      jk_buf_printf(&b, "%-44s %-6s %-9s %-20s %s\n", en.kid, jwtkit_alg_name(en.alg), jwtkit_key_state_name(en.state), ts,
                    private_of(&en, pg));
    }
  }
  if (json) jk_buf_puts(&b, "]\n");
  size_t len = 0;
  char *out = jk_buf_take(&b, &len);
  if (out == NULL) return cli_fail(a, CLI_INTERNAL, "out of memory");
  int rc = cli_write_stdout(a, out, len);
  jk_free(out);
  return rc;
}

/* keyring list of a PostgreSQL keyring without its KEK: the public
 * metadata as the database holds it, said to be unauthenticated. */
static int open_public(cli_args *a, const char *dir, jwtkit_keyring **kr, int *done) {
  *done = 0;
  if (!jwtkit_keyring_location_is_postgres(dir)) return CLI_OK;
  ring_secrets r;
  int rc = secrets_read_ex(a, dir, 1, &r);
  if (rc != CLI_OK || r.nkeks > 0) {
    secrets_free(&r);
    return rc;
  }
  jwtkit_errinfo ei = {0}, verdict = {0};
  jwtkit_err e = jwtkit_keyring_open_review(kr, dir, &r.sec, &verdict, &ei);
  secrets_free(&r);
  if (e != JWTKIT_OK) return lib_fail(a, e, &ei);
  fprintf(stderr,
          "jwtkit: keyring: no KEK given: the public key list as the database holds it, NOT authenticated "
          "(give --kek-file to check it)\n");
  *done = 1;
  return CLI_OK;
}

/* list, plan, jwks of a keyring whose keys live in a PKCS#11 token: its
 * authenticated document alone (the public keys were read from the token
 * when the keys were made), so they work while the token is away.  Other
 * keyrings are opened in full, their private keys checked. */
static int open_token_public(cli_args *a, const char *dir, jwtkit_keyring **kr) {
  ring_secrets r;
  int rc = secrets_read(a, dir, &r);
  if (rc != CLI_OK) return rc;
  jwtkit_errinfo ei = {0};
  jwtkit_err e = jwtkit_keyring_open_public(kr, dir, &r.sec, &ei);
  secrets_free(&r);
  if (e != JWTKIT_OK) return lib_fail(a, e, &ei);
  if (jwtkit_keyring_pkcs11(*kr) == NULL) {
    jwtkit_keyring_free(*kr);
    *kr = NULL;
  }
  return CLI_OK;
}

static int kr_show(cli_args *a, const char *what, const char *dir, int64_t now) {
  jwtkit_keyring *kr = NULL;
  int rc = CLI_OK, public_only = 0;
  if (strcmp(what, "list") == 0 && (rc = open_public(a, dir, &kr, &public_only)) != CLI_OK) return rc;
  if (!public_only && (rc = open_token_public(a, dir, &kr)) != CLI_OK) return rc;
  if (!public_only && kr == NULL && (rc = open_ring(a, dir, &kr)) != CLI_OK) return rc;
  char *text = NULL;
  size_t len = 0;
  jwtkit_err e = JWTKIT_OK;
  if (strcmp(what, "plan") == 0) {
    e = jwtkit_keyring_plan(kr, now, &text, &len);
  } else if (strcmp(what, "jwks") == 0) {
    e = jwtkit_keyring_jwks(kr, &text, &len);
  } else { /* list */
    rc = print_list(a, dir, kr, cli_opt_flag(a, "json"));
  }
  if (e != JWTKIT_OK) rc = lib_fail(a, e, NULL);
  if (text != NULL) {
    rc = cli_write_stdout(a, text, len);
    if (rc == CLI_OK && (len == 0 || text[len - 1] != '\n')) rc = cli_write_stdout(a, "\n", 1);
  }
  jwtkit_free(text);
  jwtkit_keyring_free(kr);
  return rc;
}

static int kr_rekey(cli_args *a, const char *where) {
  if (!jwtkit_keyring_location_is_postgres(where))
    return cli_usage(a, "rekey applies to a PostgreSQL keyring (postgres://...); a directory keyring's private keys "
                        "are protected by its passphrase");
  jwtkit_keyring *kr = NULL;
  int rc = open_ring(a, where, &kr);
  if (rc != CLI_OK) return rc;
  jwtkit_errinfo ei = {0};
  jwtkit_err e = jwtkit_keyring_rekey(kr, print_line, NULL, &ei);
  if (e != JWTKIT_OK) rc = lib_fail(a, e, &ei);
  jwtkit_keyring_free(kr);
  return rc;
}

/* Review the stored keyring document whether or not it is authentic;
 * with --force, authenticate what was shown. */
static int kr_trust(cli_args *a, const char *where) {
  ring_secrets r;
  int rc = secrets_read(a, where, &r);
  if (rc != CLI_OK) return rc;
  jwtkit_keyring *kr = NULL;
  jwtkit_errinfo verdict = {0}, ei = {0};
  jwtkit_err e = jwtkit_keyring_open_review(&kr, where, &r.sec, &verdict, &ei);
  secrets_free(&r);
  if (e != JWTKIT_OK) return lib_fail(a, e, &ei);
  if (verdict.code != JWTKIT_OK) {
    char buf[300];
    printf("NOT AUTHENTIC: %s\n\n", cli_errtext(verdict.code, &verdict, buf, sizeof buf));
    fflush(stdout);
    int prc = print_list(a, where, kr, 0);
    if (prc != CLI_OK) {
      jwtkit_keyring_free(kr);
      return prc;
    }
    if (!cli_opt_flag(a, "force")) {
      printf("\nReview these keys. If every one is yours and in the state you expect, run again with --force\n"
             "to authenticate this document as it is; otherwise restore the keyring from a backup.\n");
      jwtkit_keyring_free(kr);
      return fflush(stdout) == 0 ? CLI_FAIL : cli_fail(a, CLI_INTERNAL, "write error on stdout");
    }
    printf("\n");
  }
  e = jwtkit_keyring_trust(kr, print_line, NULL, &ei);
  jwtkit_keyring_free(kr);
  if (e != JWTKIT_OK) return e == JWTKIT_ERR_STATE ? cli_fail(a, CLI_FAIL, "%s", ei.msg) : lib_fail(a, e, &ei);
  return fflush(stdout) == 0 ? CLI_OK : cli_fail(a, CLI_INTERNAL, "write error on stdout");
}

static int kr_kek_new(cli_args *a) {
  char kek[44];
  if (jwtkit_kek_generate(kek) != JWTKIT_OK) return cli_fail(a, CLI_INTERNAL, "no randomness");
  char id[17];
  unsigned char (*k)[32] = NULL;
  size_t n = 0;
  jwtkit_errinfo ei = {0};
  if (jwtkit_kek_parse(kek, strlen(kek), &k, &n, &ei) != JWTKIT_OK) return cli_fail(a, CLI_INTERNAL, "%s", ei.msg);
  jwtkit_kek_id(k[0], id);
  jwtkit_kek_free(k, n);
  printf("# jwtkit KEK %s: keep it out of the database and out of git\n%s\n", id, kek);
  jwtkit_wipe(kek, sizeof kek);
  return fflush(stdout) == 0 ? CLI_OK : cli_fail(a, CLI_INTERNAL, "write error on stdout");
}

int cli_cmd_keyring(cli_args *a) {
  const char *sub = a->pos[0];
  int rc;
  int64_t now = now_or_at(a, &rc);
  if (rc != CLI_OK) return rc;
  const cli_sub *op = cli_find_sub(a->cmd, sub);
  if (op == NULL) return cli_usage(a, "unknown keyring operation \"%s\"", sub);
  if (a->npos != op->npos)
    return cli_usage(a, "keyring %s takes %s", sub, op->npos == 1 ? "no argument" : op->args);
  if (op->npos == 1) return kr_kek_new(a);
  const char *dir = a->pos[1];
  if (!jwtkit_keyring_location_is_postgres(dir) && (cli_opt_str(a, "kek-file") != NULL || cli_opt_str(a, "kek-env") != NULL))
    return cli_usage(a, "KEKs apply to a PostgreSQL keyring; a directory keyring uses --passphrase-file");
  if (cli_opt_str(a, "pkcs11") != NULL && strcmp(sub, "init") != 0)
    return cli_usage(a, "--pkcs11 applies to init: the keyring records its token and uses it from then on");
  if (strcmp(sub, "rekey") == 0) return kr_rekey(a, dir);
  if (strcmp(sub, "trust-document") == 0) return kr_trust(a, dir);
  if (strcmp(sub, "init") == 0) return kr_init(a, dir, now);
  if (strcmp(sub, "add") == 0) return kr_add(a, dir, a->pos[2], now);
  if (strcmp(sub, "release") == 0) return kr_release(a, dir, now);
  if (strcmp(sub, "rotate") == 0) return kr_rotate(a, dir, now);
  if (strcmp(sub, "revoke") == 0) return kr_revoke(a, dir, a->pos[2], now);
  return kr_show(a, sub, dir, now);
}
