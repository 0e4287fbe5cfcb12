/*
 * The verify pane: the verdict of jwtkit_verify_at with everything the
 * page asked for, and every check on its own, each decided by the library.
 *
 * The verifier stops at its first failure and checks the signature before
 * any claim, so the checks are asked in stages, each a verifier of its own
 * over the same pinned algorithms and keys:
 *   1. the signature stage (no claim configured, audience ignored, exp
 *      optional) says whether the header, the algorithm, the key and the
 *      signature pass; a time or claim error there means they did;
 *   2. the time stage at now (exp required) says which of exp, nbf and iat
 *      fails first (the library checks them in that order, so the ones
 *      after a failure are "not reached");
 *   3. iss, aud, sub and typ each alone, at an instant the token's times
 *      allow (picked from them and confirmed by the library: when the
 *      signature stage fails there, they are not checked);
 *   4. the verdict: all of it at now.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "ui_internal.h"
#include "common/attr.h"

#define MAX_LIST 16

typedef struct vreq {
  ui_call *c;
  jwtkit_alg algs[JWTKIT_ALG_COUNT];
  size_t nalgs;
  ui_keyset keys;
  int64_t leeway;
  const char *iss[MAX_LIST], *aud[MAX_LIST], *sub, *typ;
  size_t niss, naud;
  int any_aud;
  const char *token;
  size_t len;
} vreq;

enum { W_EXP = 1, W_ISS = 2, W_AUD = 4, W_SUB = 8, W_TYP = 16, W_ALL = 31 };

/* One verifier with the parts `what` names, at `at`.  A policy the library
 * refuses (two keys with one kid) fails the call: *built = 0. */
static jwtkit_err stage(vreq *v, unsigned what, int64_t at, jwtkit_claims **claims, jwtkit_errinfo *info,
                        int *built) {
  memset(info, 0, sizeof *info);
  *built = 0;
  jwtkit_policy *p = jwtkit_policy_new();
  if (p == NULL) return JWTKIT_ERR_NOMEM;
  jwtkit_err rc = JWTKIT_OK;
  for (size_t i = 0; i < v->nalgs; i++)
    if (rc == JWTKIT_OK) rc = jwtkit_policy_allow_alg(p, v->algs[i]);
  for (size_t i = 0; i < v->keys.n; i++)
    if (rc == JWTKIT_OK) rc = jwtkit_policy_add_key(p, v->keys.v[i]);
  if (rc == JWTKIT_OK) rc = jwtkit_policy_set_leeway(p, v->leeway);
  if (rc == JWTKIT_OK) rc = jwtkit_policy_set_require_exp(p, (what & W_EXP) != 0);
  for (size_t i = 0; (what & W_ISS) && i < v->niss; i++)
    if (rc == JWTKIT_OK) rc = jwtkit_policy_add_issuer(p, v->iss[i]);
  if (!(what & W_AUD) || v->any_aud) {
    if (rc == JWTKIT_OK) rc = jwtkit_policy_ignore_audience(p);
  } else {
    for (size_t i = 0; i < v->naud; i++)
      if (rc == JWTKIT_OK) rc = jwtkit_policy_add_audience(p, v->aud[i]);
  }
  if (rc == JWTKIT_OK && (what & W_SUB) && v->sub != NULL) rc = jwtkit_policy_set_subject(p, v->sub);
  if (rc == JWTKIT_OK && (what & W_TYP) && v->typ != NULL) rc = jwtkit_policy_set_typ(p, v->typ);
  jwtkit_verifier *ver = NULL;
  rc = jwtkit_verifier_new(&ver, p, info); /* fails with a setter's error too */
  jwtkit_policy_free(p);
  if (rc != JWTKIT_OK) return rc;
  *built = 1;
  rc = jwtkit_verify_at(ver, v->token, v->len, at, claims, info);
  jwtkit_verifier_free(ver);
  return rc;
}

/* ------------------------------------------------------------- checks */

static void check(jk_buf *b, int *first, const char *name, const char *status, const char *detail) {
  jk_buf_puts(b, *first ? "{\"name\":" : ",{\"name\":");
  *first = 0;
  jk_buf_json_str(b, name, strlen(name));
  ui_out_cstr(b, "status", status);
  ui_out_cstr(b, "detail", detail);
  jk_buf_putc(b, '}');
}

static int time_field(const jwtkit_errinfo *info) {
  for (int i = 0; i < UI_T_COUNT; i++)
    if (strcmp(info->field, ui_time_names[i]) == 0) return i;
  return -1;
}

/* Where the signature stage stopped: 0 header, 1 algorithm, 2 key,
 * 3 signature, 4 none of them (it passed them, maybe failing later). */
static int sig_step(jwtkit_err rc, const jwtkit_errinfo *info) {
  switch (rc) {
    case JWTKIT_OK:
    case JWTKIT_ERR_EXPIRED:
    case JWTKIT_ERR_NOT_YET_VALID:
    case JWTKIT_ERR_ISSUED_IN_FUTURE:
    case JWTKIT_ERR_CLAIM_MISSING:
    case JWTKIT_ERR_CLAIM_MISMATCH:
    case JWTKIT_ERR_TOO_OLD: return 4;
    case JWTKIT_ERR_ALG_NOT_ALLOWED: return 1;
    case JWTKIT_ERR_UNKNOWN_KID:
    case JWTKIT_ERR_NO_KEY: return 2;
    case JWTKIT_ERR_BAD_SIGNATURE: return 3;
    case JWTKIT_ERR_MALFORMED: /* a claim's value is read after the signature */
      if (strcmp(info->field, "signature") == 0) return 3;
      return time_field(info) >= 0 || strcmp(info->field, "aud") == 0 ? 4 : 0;
    default: return 0;
  }
}

/* An instant at which the token's times pass (from their values; the
 * library confirms it in the signature stage). */
static int64_t time_ok(const ui_times *t, int64_t now, int64_t lw) {
  int64_t at = now;
  if (t->t[UI_T_EXP].has && !t->t[UI_T_EXP].bad && at >= t->t[UI_T_EXP].ceil + lw) at = t->t[UI_T_EXP].ceil + lw - 1;
  if (t->t[UI_T_NBF].has && !t->t[UI_T_NBF].bad && at + lw < t->t[UI_T_NBF].ceil) at = t->t[UI_T_NBF].ceil - lw;
  if (t->t[UI_T_IAT].has && !t->t[UI_T_IAT].bad && t->t[UI_T_IAT].ceil > at + lw) at = t->t[UI_T_IAT].ceil - lw;
  return at;
}

static void time_detail(const ui_times *t, int i, int64_t now, char *out, size_t cap) {
  if (!t->t[i].has) {
    snprintf(out, cap, "no %s", ui_time_names[i]);
    return;
  }
  char when[40], rel[48];
  jk_format_rfc3339(t->t[i].floor, when, sizeof when);
  jk_format_relative(t->t[i].ceil, now, rel, sizeof rel);
  snprintf(out, cap, "%s %s (%s)", i == UI_T_EXP ? "expires" : i == UI_T_NBF ? "valid from" : "issued", rel, when);
}

/* Every check, in the verifier's order.  *signer: the key the signature
 * stage found (a reference), NULL when it did not verify. */
static int checks(vreq *v, const ui_times *t, jwtkit_key **signer) {
  ui_call *c = v->c;
  jk_buf *b = c->out;
  char msg[300], d[200];
  int first = 1, built;
  jwtkit_errinfo info;
  jwtkit_claims *cl = NULL;
  *signer = NULL;
  int64_t at = time_ok(t, c->now, v->leeway);
  jwtkit_err rc = stage(v, 0, at, &cl, &info, &built);
  if (!built) return ui_fail_lib(c, "keys", "the verifier cannot be built", rc, &info);
  if (cl != NULL) *signer = jwtkit_key_ref(JK_UNCONST(jwtkit_claims_key(cl))); /* the set's key, kept */
  jwtkit_claims_free(cl);
  int step = sig_step(rc, &info);
  int at_ok = rc == JWTKIT_OK; /* the token's times pass at `at` */

  jk_buf_puts(b, ",\"checks\":[");
  check(b, &first, "format", "pass", "three base64url parts; header and payload are strict JSON objects");
  ui_errtext(rc, &info, msg, sizeof msg);
  static const char *const steps[4] = {"header", "algorithm", "key", "signature"};
  static const char *const passed[4] = {"no member jwtkit refuses (crit, b64, JWE members)",
                                        "the token's alg is pinned", "one trusted key fits the token's kid and alg",
                                        "verifies under that key"};
  for (int i = 0; i < 4; i++) {
    const char *detail = passed[i];
    if (i == 2 && *signer != NULL) {
      if (jwtkit_key_kid(*signer) != NULL)
        snprintf(d, sizeof d, "the key with kid %s (%s)", jwtkit_key_kid(*signer),
                 jwtkit_alg_name(jwtkit_key_alg(*signer)));
      else
        snprintf(d, sizeof d, "the one %s key without kid", jwtkit_alg_name(jwtkit_key_alg(*signer)));
      detail = d;
    }
    if (i < step)
      check(b, &first, steps[i], "pass", detail);
    else
      check(b, &first, steps[i], i == step ? "fail" : "skip", i == step ? msg : "not reached");
  }

  /* exp, nbf, iat at now */
  int tfail = -1;
  if (step == 4 && (rc = stage(v, W_EXP, c->now, NULL, &info, &built)) != JWTKIT_OK) {
    ui_errtext(rc, &info, msg, sizeof msg);
    tfail = rc == JWTKIT_ERR_EXPIRED           ? UI_T_EXP
            : rc == JWTKIT_ERR_NOT_YET_VALID    ? UI_T_NBF
            : rc == JWTKIT_ERR_ISSUED_IN_FUTURE ? UI_T_IAT
                                                : time_field(&info);
  }
  for (int i = 0; i < UI_T_COUNT; i++) {
    if (step < 4) {
      check(b, &first, ui_time_names[i], "skip", "not checked: the signature did not verify");
    } else if (tfail < 0 || i < tfail) {
      time_detail(t, i, c->now, d, sizeof d);
      check(b, &first, ui_time_names[i], "pass", d);
    } else {
      check(b, &first, ui_time_names[i], i == tfail ? "fail" : "skip",
            i == tfail ? msg : "not reached: the verifier stops at the first failed time check");
    }
  }

  /* iss, aud, sub, typ: each alone at `at` */
  static const struct {
    const char *name;
    unsigned what;
  } k_claim[] = {{"iss", W_ISS}, {"aud", W_AUD}, {"sub", W_SUB}, {"typ", W_TYP}};
  for (size_t i = 0; i < sizeof k_claim / sizeof k_claim[0]; i++) {
    unsigned w = k_claim[i].what;
    const char *name = k_claim[i].name;
    int configured = w == W_AUD || (w == W_ISS && v->niss > 0) || (w == W_SUB && v->sub != NULL) ||
                     (w == W_TYP && v->typ != NULL);
    if (!configured) {
      check(b, &first, name, "skip", "not configured");
    } else if (step < 4) {
      check(b, &first, name, "skip", "not checked: the signature did not verify");
    } else if (!at_ok) {
      check(b, &first, name, "skip", "not checked: no instant passes the token's time checks");
    } else if (w == W_AUD && v->any_aud) {
      check(b, &first, name, "skip", "any audience accepted (the insecure option)");
    } else {
      rc = stage(v, w, at, NULL, &info, &built);
      ui_errtext(rc, &info, msg, sizeof msg);
      check(b, &first, name, rc == JWTKIT_OK ? "pass" : "fail", rc == JWTKIT_OK ? "accepted" : msg);
    }
  }
  jk_buf_putc(b, ']');
  return 0;
}

/* ------------------------------------------------------------ request */

/* The keys: pasted text, a secret for the one pinned HS* algorithm, a
 * JWKS URL fetched by the server. */
static int load_keys(vreq *v, jk_buf *notes) {
  ui_call *c = v->c;
  const char *text, *secret, *url;
  size_t tl, sl;
  int r = ui_in_str(c, "keys", &text, &tl);
  if (r < 0) return -1;
  if (r > 0 && ui_keys_trust(c, "keys", text, tl, v->algs, v->nalgs, &v->keys, notes) < 0) return -1;
  if ((r = ui_in_str(c, "secret", &secret, &sl)) < 0) return -1;
  if (r > 0 && sl > 0) {
    jwtkit_alg hs = JWTKIT_ALG_UNSPEC;
    size_t n = 0;
    for (size_t i = 0; i < v->nalgs; i++)
      if (jwtkit_alg_kty(v->algs[i]) == JWTKIT_KTY_OCT && n++ == 0) hs = v->algs[i];
    if (n != 1)
      return ui_fail(c, 422, "secret", "a secret serves one HS* algorithm: pin exactly one of HS256, HS384, HS512");
    jwtkit_key *k = NULL;
    jwtkit_errinfo info = {0};
    jwtkit_err rc = jwtkit_key_from_secret_text(&k, hs, secret, sl, &info);
    if (rc != JWTKIT_OK) return ui_fail_lib(c, "secret", "the secret", rc, &info);
    if (v->keys.n >= UI_MAX_KEYS) {
      jwtkit_key_free(k);
      return ui_fail(c, 422, "secret", "more than %u keys", UI_MAX_KEYS);
    }
    v->keys.v[v->keys.n++] = k;
  }
  if ((r = ui_in_str(c, "jwks_url", &url, NULL)) < 0) return -1;
  if (r > 0 && url[0] != '\0') {
    char *body = NULL, err[300];
    size_t bl = 0;
    int st = c->app->fetch(url, &body, &bl, err, sizeof err);
    if (st != 0) return ui_fail(c, (unsigned)st, "jwks_url", "%s", err);
    r = ui_keys_trust(c, "jwks_url", body, bl, v->algs, v->nalgs, &v->keys, notes);
    jk_free(body);
    if (r < 0) return -1;
  }
  if (v->keys.n == 0)
    return ui_fail(c, 400, "keys",
                   "give the verifier a key the pinned algorithms use: a PEM key, a JWK or a JWK Set, a secret, or "
                   "a JWKS URL");
  return 0;
}

static int run(vreq *v) {
  ui_call *c = v->c;
  int any = 0;
  if (ui_in_token(c, &v->token, &v->len) < 0 || ui_in_algs(c, v->algs, &v->nalgs) < 0 ||
      ui_in_int(c, "leeway", 0, JWTKIT_MAX_LEEWAY, &v->leeway) < 0 || ui_in_time(c, "at", &c->now) < 0 ||
      ui_in_strs(c, "iss", MAX_LIST, v->iss, &v->niss) < 0 || ui_in_strs(c, "aud", MAX_LIST, v->aud, &v->naud) < 0 ||
      ui_in_str(c, "sub", &v->sub, NULL) < 0 || ui_in_str(c, "typ", &v->typ, NULL) < 0 ||
      ui_in_bool(c, "insecure_any_aud", &any) < 0)
    return -1;
  if (v->token == NULL || v->len == 0) return ui_fail(c, 400, "token", "paste the token to verify");
  if (v->sub != NULL && v->sub[0] == '\0') v->sub = NULL;
  if (v->typ != NULL && v->typ[0] == '\0') v->typ = NULL;
  v->any_aud = any;
  jk_buf notes;
  jk_buf_init_max(&notes, 64 * 1024);
  if (load_keys(v, &notes) < 0) {
    jk_buf_free(&notes);
    return -1;
  }
  jk_buf *b = c->out;
  ui_out_int(b, "now", c->now);
  ui_out_int(b, "leeway", v->leeway);
  ui_out_int(b, "keys", (int64_t)v->keys.n);
  jk_buf_puts(b, ",\"notes\":[");
  if (notes.len > 1) jk_buf_put(b, notes.p + 1, notes.len - 1);
  jk_buf_putc(b, ']');
  int oom = notes.oom;
  jk_buf_free(&notes);
  if (oom) return ui_fail(c, 500, NULL, "too many notes, or out of memory");

  ui_times t;
  jwtkit_err rc;
  jwtkit_errinfo info;
  int r = ui_token_describe(c, v->token, v->len, &t, &rc, &info);
  if (r < 0) return -1;
  if (r == 1) { /* the verdict is the decoder's */
    char msg[300];
    ui_errtext(rc, &info, msg, sizeof msg);
    ui_out_bool(b, "valid", 0);
    ui_out_error(b, "error", rc, &info);
    jk_buf_puts(b, ",\"checks\":[{\"name\":\"format\",\"status\":\"fail\"");
    ui_out_cstr(b, "detail", msg);
    jk_buf_puts(b, "}]");
    return 0;
  }
  jwtkit_key *signer = NULL;
  if (checks(v, &t, &signer) < 0) return -1;
  int built;
  jwtkit_claims *cl = NULL;
  rc = stage(v, W_ALL, c->now, &cl, &info, &built);
  ui_out_bool(b, "valid", rc == JWTKIT_OK);
  if (rc != JWTKIT_OK) ui_out_error(b, "error", rc, &info);
  if (cl != NULL) ui_out_cstr(b, "kid", jwtkit_claims_kid(cl));
  if (signer != NULL) ui_out_key(b, "key", signer);
  jwtkit_claims_free(cl);
  jwtkit_key_free(signer);
  return 0;
}

/* POST /api/verify {"token", "algs", "keys"?, "secret"?, "jwks_url"?,
 * "iss"?, "aud"?, "sub"?, "typ"?, "leeway"?, "insecure_any_aud"?, "at"?} */
int ui_api_verify(ui_call *c) {
  vreq *v = jk_calloc(1, sizeof *v);
  if (v == NULL) return ui_fail(c, 500, NULL, "out of memory");
  v->c = c;
  v->leeway = JWTKIT_DEFAULT_LEEWAY;
  int r = run(v);
  ui_keyset_free(&v->keys);
  jk_free(v);
  return r;
}
