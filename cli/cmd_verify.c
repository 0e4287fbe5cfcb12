/* jwtkit verify */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "fetch.h"

typedef struct verify_ctx {
  cli_args *a;
  jwtkit_policy *p;
  const cli_algset *algs;
  size_t keys;                        /* keys trusted so far */
  const char *src;                    /* set being imported, for notes */
  size_t kidless[JWTKIT_ALG_COUNT];   /* keys without kid, per algorithm */
  jwtkit_key **files;                 /* keys from --key files, trusted last */
  size_t nfiles;
} verify_ctx;

/* Trust a key (takes the caller's reference). */
static int add_key(verify_ctx *v, jwtkit_key *key) {
  if (jwtkit_key_kid(key) == NULL) v->kidless[jwtkit_key_alg(key)]++;
  jwtkit_err e = jwtkit_policy_add_key(v->p, key);
  jwtkit_key_free(key);
  if (e != JWTKIT_OK) return cli_fail(v->a, cli_exit_for(e), "cannot add a key: %s", jwtkit_strerror(e));
  v->keys++;
  return CLI_OK;
}

/* Keep a key from a --key file (takes the reference) until every source is
 * read: see add_file_keys. */
static int keep_key(verify_ctx *v, jwtkit_key *key) {
  jwtkit_key **n = realloc(v->files, (v->nfiles + 1) * sizeof *n);
  if (n == NULL) {
    jwtkit_key_free(key);
    return cli_fail(v->a, CLI_INTERNAL, "out of memory");
  }
  v->files = n;
  v->files[v->nfiles++] = key;
  return CLI_OK;
}

/*
 * A key without kid serves tokens whose kid no key has, but only while it is
 * the one kid-less key of its algorithm.  When there are several (two PEM
 * files during a rotation), PEM/DER/JWK keys get their thumbprint as kid:
 * the kid `jwtkit sign` puts in tokens.
 */
static int add_file_keys(verify_ctx *v) {
  size_t kidless[JWTKIT_ALG_COUNT];
  memcpy(kidless, v->kidless, sizeof kidless);
  for (size_t i = 0; i < v->nfiles; i++) kidless[jwtkit_key_alg(v->files[i])] += jwtkit_key_kid(v->files[i]) == NULL;
  int rc = CLI_OK;
  for (size_t i = 0; i < v->nfiles; i++) {
    jwtkit_key *k = v->files[i];
    v->files[i] = NULL;
    if (rc != CLI_OK) {
      jwtkit_key_free(k);
      continue;
    }
    jwtkit_alg alg = jwtkit_key_alg(k);
    if (jwtkit_key_kid(k) == NULL && jwtkit_key_kty(k) != JWTKIT_KTY_OCT && kidless[alg] > 1) {
      char tp[44];
      if (jwtkit_key_thumbprint(k, tp) != JWTKIT_OK || jwtkit_key_set_kid(k, tp, strlen(tp)) != JWTKIT_OK) {
        jwtkit_key_free(k);
        rc = cli_fail(v->a, CLI_INTERNAL, "cannot compute a key's thumbprint");
        continue;
      }
      cli_note(v->a, "several %s keys without kid: one is known by its thumbprint %s", jwtkit_alg_name(alg), tp);
    }
    rc = add_key(v, k);
  }
  return rc;
}

static void on_skip(void *ctx, size_t index, const jwtkit_errinfo *why) {
  verify_ctx *v = ctx;
  cli_note(v->a, "%s: key %zu skipped: %s", v->src, index, why->msg);
}

/* Trust the keys of a JWK Set whose algorithm --alg allows.  The library
 * never takes secret (oct) keys from a set. */
static int add_set(verify_ctx *v, const char *src, const char *text, size_t len) {
  jwtkit_alg rsa_default = JWTKIT_ALG_UNSPEC;
  if (cli_algset_family(v->algs, JWTKIT_KTY_RSA, &rsa_default) != 1) rsa_default = JWTKIT_ALG_UNSPEC;
  jwtkit_jwks *set = NULL;
  jwtkit_errinfo info = {0};
  char msg[300];
  v->src = src;
  jwtkit_err e = jwtkit_jwks_parse(&set, text, len, rsa_default, on_skip, v, &info);
  if (e != JWTKIT_OK) return cli_fail(v->a, cli_exit_for(e), "JWK Set %s: %s", src, cli_errtext(e, &info, msg, sizeof msg));
  int rc = CLI_OK;
  for (size_t i = 0; i < jwtkit_jwks_count(set) && rc == CLI_OK; i++) {
    jwtkit_key *k = jwtkit_jwks_get(set, i);
    const char *kid = jwtkit_key_kid(k) ? jwtkit_key_kid(k) : "(none)";
    if (!cli_algset_has(v->algs, jwtkit_key_alg(k))) {
      cli_note(v->a, "%s: key kid %s ignored: %s is not in --alg", src, kid, jwtkit_alg_name(jwtkit_key_alg(k)));
    } else {
      cli_note(v->a, "%s: trusting key kid %s (%s)", src, kid, jwtkit_alg_name(jwtkit_key_alg(k)));
      rc = add_key(v, jwtkit_key_ref(k));
    }
  }
  jwtkit_jwks_free(set);
  return rc;
}

static int add_secret(verify_ctx *v) {
  cli_buf secret;
  int have = 0;
  int rc = cli_read_secret(v->a, &secret, &have);
  if (rc != CLI_OK || !have) return rc;
  jwtkit_alg alg = JWTKIT_ALG_UNSPEC;
  size_t n = cli_algset_family(v->algs, JWTKIT_KTY_OCT, &alg);
  if (n != 1) {
    cli_buf_free(&secret);
    return cli_usage(v->a, n == 0 ? "a secret needs an HS256, HS384 or HS512 algorithm in --alg"
                                  : "a secret binds to one HS* algorithm, but --alg names several");
  }
  jwtkit_key *key = NULL;
  rc = cli_secret_key(v->a, &secret, alg, &key);
  cli_buf_free(&secret);
  if (rc != CLI_OK) return rc;
  cli_note(v->a, "secret bound to %s", jwtkit_alg_name(alg));
  return add_key(v, key);
}

static int add_key_files(verify_ctx *v, const char *passphrase) {
  size_t n;
  const char *const *paths = cli_opt_all(v->a, "key", &n);
  for (size_t i = 0; i < n; i++) {
    cli_buf b;
    int rc = cli_read_file(v->a, "key file", paths[i], CLI_MAX_KEYFILE, 1, &b);
    if (rc != CLI_OK) return rc;
    const char *src = strcmp(paths[i], "-") == 0 ? "stdin" : paths[i];
    if (cli_key_format(b.p, b.len) == CLI_KEYFMT_JWKS) {
      rc = add_set(v, src, b.p, b.len);
    } else {
      jwtkit_key *key = NULL;
      rc = cli_key_import(v->a, src, b.p, b.len, passphrase, v->algs, 1, &key);
      if (rc == CLI_OK && jwtkit_key_can_sign(key) && (rc = cli_check_secret_mode(v->a, paths[i], &b)) != CLI_OK)
        jwtkit_key_free(key);
      if (rc == CLI_OK) {
        cli_note(v->a, "key %s bound to %s", src, jwtkit_alg_name(jwtkit_key_alg(key)));
        rc = keep_key(v, key);
      }
    }
    cli_buf_free(&b);
    if (rc != CLI_OK) return rc;
  }
  return CLI_OK;
}

/* A JWK Set from a URL through the shared fetcher (services/fetch): 5 s,
 * at most CLI_MAX_JWKS bytes, no redirects, https:// unless --allow-http. */
static int fetch_set(cli_args *a, const char *url, jk_fetch_resp *r) {
  int allow_http = cli_opt_flag(a, "allow-http");
  memset(r, 0, sizeof *r);
  if (strncmp(url, "http://", 7) == 0 && !allow_http)
    return cli_usage(a, "%s: plain http is refused; use https:// or --allow-http", url);
  if (jk_fetch_global_init() != 0) return cli_fail(a, CLI_INTERNAL, "cannot initialise libcurl");
  jk_fetch_opts o = {.http = allow_http ? JK_FETCH_HTTP_ANY : JK_FETCH_HTTPS_ONLY,
                     .timeout_ms = 5000,
                     .max_bytes = CLI_MAX_JWKS,
                     .agent = "jwtkit",
                     .accept = "application/jwk-set+json, application/json"};
  jk_fetch_result fr = jk_fetch_get(url, &o, r);
  jk_fetch_global_cleanup();
  int rc = CLI_OK;
  if (fr == JK_FETCH_TOO_LARGE)
    rc = cli_fail(a, CLI_USAGE, "%s: the response exceeds the limit of %u KiB", url, CLI_MAX_JWKS >> 10);
  else if (fr != JK_FETCH_OK)
    rc = cli_fail(a, CLI_INTERNAL, "cannot fetch %s: %s", url, r->detail);
  else if (r->status != 200)
    rc = cli_fail(a, CLI_INTERNAL, "cannot fetch %s: HTTP status %ld%s", url, r->status,
                  r->status >= 300 && r->status < 400 ? " (redirects are not followed)" : "");
  if (rc != CLI_OK) jk_fetch_resp_free(r);
  return rc;
}

static int add_jwks(verify_ctx *v) {
  size_t n;
  const char *const *srcs = cli_opt_all(v->a, "jwks", &n);
  for (size_t i = 0; i < n; i++) {
    cli_buf b = {0};
    jk_fetch_resp r = {0};
    int remote = strncmp(srcs[i], "http://", 7) == 0 || strncmp(srcs[i], "https://", 8) == 0;
    int rc = remote ? fetch_set(v->a, srcs[i], &r) : cli_read_file(v->a, "JWK Set", srcs[i], CLI_MAX_JWKS, 0, &b);
    if (rc != CLI_OK) return rc;
    const char *src = strcmp(srcs[i], "-") == 0 ? "stdin" : srcs[i];
    const char *text = remote ? r.body : b.p;
    size_t len = remote ? r.len : b.len;
    if (cli_key_format(text, len) != CLI_KEYFMT_JWKS)
      rc = cli_fail(v->a, CLI_USAGE, "%s is not a JWK Set ({\"keys\":[...]})", src);
    else
      rc = add_set(v, src, text, len);
    cli_buf_free(&b);
    jk_fetch_resp_free(&r);
    if (rc != CLI_OK) return rc;
  }
  return CLI_OK;
}

static int add_list(cli_args *a, jwtkit_policy *p, const char *opt, jwtkit_err (*fn)(jwtkit_policy *, const char *)) {
  size_t n;
  const char *const *v = cli_opt_all(a, opt, &n);
  for (size_t i = 0; i < n; i++) {
    jwtkit_err e = fn(p, v[i]);
    if (e == JWTKIT_ERR_NOMEM) return cli_fail(a, CLI_INTERNAL, "out of memory");
    if (e != JWTKIT_OK) return cli_usage(a, "bad --%s \"%s\": %s", opt, v[i], jwtkit_strerror(e));
  }
  return CLI_OK;
}

/* Claim rules from the options. */
static int set_rules(cli_args *a, jwtkit_policy *p) {
  int rc;
  if ((rc = add_list(a, p, "iss", jwtkit_policy_add_issuer)) != CLI_OK ||
      (rc = add_list(a, p, "aud", jwtkit_policy_add_audience)) != CLI_OK ||
      (rc = add_list(a, p, "require", jwtkit_policy_require_claim)) != CLI_OK)
    return rc;
  size_t naud;
  cli_opt_all(a, "aud", &naud);
  if (cli_opt_flag(a, "insecure-no-aud")) {
    if (naud > 0) return cli_usage(a, "--aud and --insecure-no-aud exclude each other");
    if (jwtkit_policy_ignore_audience(p) != JWTKIT_OK) return cli_fail(a, CLI_INTERNAL, "out of memory");
  }
  const char *s;
  if ((s = cli_opt_str(a, "sub")) != NULL && jwtkit_policy_set_subject(p, s) != JWTKIT_OK)
    return cli_usage(a, "bad --sub");
  if ((s = cli_opt_str(a, "typ")) != NULL && jwtkit_policy_set_typ(p, s) != JWTKIT_OK) return cli_usage(a, "bad --typ");
  int64_t d = -1;
  if ((rc = cli_opt_duration(a, "leeway", 0, &d)) != CLI_OK) return rc;
  if (d >= 0 && (d > JWTKIT_MAX_LEEWAY || jwtkit_policy_set_leeway(p, d) != JWTKIT_OK))
    return cli_usage(a, "bad --leeway \"%s\": at most %d seconds", cli_opt_str(a, "leeway"), JWTKIT_MAX_LEEWAY);
  d = -1;
  if ((rc = cli_opt_duration(a, "max-age", 1, &d)) != CLI_OK) return rc;
  if (d > 0 && jwtkit_policy_set_max_age(p, d) != JWTKIT_OK)
    return cli_usage(a, "bad --max-age \"%s\"", cli_opt_str(a, "max-age"));
  return CLI_OK;
}

int cli_cmd_verify(cli_args *a) {
  cli_algset algs;
  int rc = cli_algset_parse(a, "alg", &algs);
  if (rc != CLI_OK) return rc;
  if (algs.n == 0) return cli_usage(a, "--alg is required: name the algorithm(s) you accept");
  int64_t now = (int64_t)time(NULL);
  if ((rc = cli_opt_time(a, "at", &now)) != CLI_OK) return rc;

  jwtkit_policy *p = jwtkit_policy_new();
  jwtkit_verifier *ver = NULL;
  jwtkit_claims *claims = NULL;
  cli_buf pass = {0}, token = {0};
  if (p == NULL) return cli_fail(a, CLI_INTERNAL, "out of memory");
  for (size_t i = 0; i < algs.n; i++)
    if (jwtkit_policy_allow_alg(p, algs.v[i]) != JWTKIT_OK) {
      rc = cli_fail(a, CLI_INTERNAL, "cannot allow %s", jwtkit_alg_name(algs.v[i]));
      goto done;
    }
  verify_ctx v = {.a = a, .p = p, .algs = &algs};
  if ((rc = set_rules(a, p)) != CLI_OK || (rc = cli_read_passphrase(a, &pass)) != CLI_OK ||
      (rc = add_secret(&v)) != CLI_OK || (rc = add_key_files(&v, pass.p)) != CLI_OK || (rc = add_jwks(&v)) != CLI_OK ||
      (rc = add_file_keys(&v)) != CLI_OK)
    goto done;
  if (v.keys == 0) {
    rc = cli_usage(a, "no trusted key for --alg: give --key, --jwks, --secret-file or --secret-env");
    goto done;
  }
  jwtkit_errinfo info = {0};
  char msg[300];
  jwtkit_err e = jwtkit_verifier_new(&ver, p, &info);
  if (e != JWTKIT_OK) {
    rc = cli_fail(a, cli_exit_for(e), "%s", cli_errtext(e, &info, msg, sizeof msg));
    goto done;
  }
  if ((rc = cli_read_arg(a, "token", a->npos ? a->pos[0] : "-", CLI_MAX_TOKEN_INPUT, &token)) != CLI_OK) goto done;
  cli_buf_trim(&token);
  memset(&info, 0, sizeof info);
  e = jwtkit_verify_at(ver, token.p, token.len, now, &claims, &info);
  if (e != JWTKIT_OK) {
    /* a file name where the token goes: say how to pass a file */
    const char *arg = a->npos ? a->pos[0] : "-";
    struct stat st;
    int is_file = e == JWTKIT_ERR_MALFORMED && strcmp(arg, "-") != 0 && arg[0] != '@' && stat(arg, &st) == 0;
    rc = cli_fail(a, e == JWTKIT_ERR_NOMEM || e == JWTKIT_ERR_CRYPTO ? CLI_INTERNAL : CLI_FAIL, "%s%s%s%s",
                  cli_errtext(e, &info, msg, sizeof msg), is_file ? " (\"" : "", is_file ? arg : "",
                  is_file ? "\" is a file: give @FILE to read the token from it, or - for stdin)" : "");
    goto done;
  }
  const char *kid = jwtkit_claims_kid(claims);
  cli_note(a, "verified: %s, kid %s", jwtkit_alg_name(jwtkit_claims_alg(claims)), kid ? kid : "(none)");
  size_t len;
  const char *json = jwtkit_claims_json(claims, &len);
  if ((rc = cli_write_stdout(a, json, len)) == CLI_OK) rc = cli_write_stdout(a, "\n", 1);
done:
  for (size_t i = 0; i < v.nfiles; i++) jwtkit_key_free(v.files[i]);
  free(v.files);
  jwtkit_claims_free(claims);
  jwtkit_verifier_free(ver);
  jwtkit_policy_free(p);
  cli_buf_free(&pass);
  cli_buf_free(&token);
  return rc;
}
