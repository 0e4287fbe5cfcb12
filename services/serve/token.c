/* POST /token: the OAuth 2.0 client credentials grant (RFC 6749 §4.4)
 * minting RFC 9068 access tokens, without I/O: the request comes as header
 * fields (sv_headers) and the urlencoded body, the decision is an
 * sv_answer.  The order: the source address's token bucket, one
 * Authorization field at most, the form body, client authentication (Basic
 * or client_secret_post or private_key_jwt, never two), grant type, the
 * client's bucket, its secret or assertion, scope, then a token from the
 * snapshot's signer. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "codec/json.h"
#include "common/buf.h"
#include "common/log.h"
#include "core/alloc.h"
#include "serve.h"

static int count_each(void *cls, const char *key, const char *value) {
  (void)value;
  int *n = cls;
  if (key && strcasecmp(key, "Authorization") == 0) (*n)++;
  return 1;
}

/* The granted scope: the requested one (each token allowed), or every
 * allowed scope when none was requested.  Returns 0 or -1 (invalid_scope). */
static int grant_scope(const sv_client *cl, const char *req, jk_buf *out) {
  if (req == NULL) {
    for (size_t i = 0; i < cl->nscopes; i++) {
      if (i) jk_buf_putc(out, ' ');
      jk_buf_puts(out, cl->scopes[i]);
    }
    return 0;
  }
  const char *p = req;
  const char *granted[SV_MAX_SCOPES];
  size_t ng = 0;
  while (*p) {
    if (*p == ' ') {
      p++;
      continue;
    }
    const char *e = p;
    while (*e && *e != ' ') e++;
    size_t n = (size_t)(e - p);
    if (!sv_scope_token_ok(p, n)) return -1;
    const char *match = NULL;
    for (size_t i = 0; i < cl->nscopes; i++)
      if (strlen(cl->scopes[i]) == n && memcmp(cl->scopes[i], p, n) == 0) match = cl->scopes[i];
    if (match == NULL) return -1;
    int dup = 0;
    for (size_t i = 0; i < ng; i++) dup |= granted[i] == match;
    if (!dup) granted[ng++] = match; /* ng <= nscopes <= SV_MAX_SCOPES */
    p = e;
  }
  if (ng == 0) return -1;
  for (size_t i = 0; i < ng; i++) {
    if (i) jk_buf_putc(out, ' ');
    jk_buf_puts(out, granted[i]);
  }
  return 0;
}

/* Only the id of a registered client is logged: a secret pasted into the
 * client_id field by mistake must not end up in the logs. */
static void note_client(sv_answer *a, const sv_confsnap *cs, const char *id) {
  if (id && sv_clients_find(&cs->clients, id, strlen(id)) != NULL)
    snprintf(a->client_id, sizeof a->client_id, "%s", id);
}

static void throttled_answer(sv_answer *a, int by, int64_t retry_after) {
  sv_answer_token_error(a, 429, SV_TE_TEMPORARILY_UNAVAILABLE,
                        by == SV_RL_BY_ADDR
                            ? "too many token requests from this address; retry after the time in Retry-After"
                            : "too many token requests for this client; retry after the time in Retry-After",
                        NULL);
  a->throttled = by;
  a->retry_after = retry_after;
}

/* The token of an authenticated, enabled client with its granted scope:
 * signed by the snapshot's active key for the client's algorithm, with
 * that key's exp clamp. */
static void mint(const sv_confsnap *cs, const sv_keysnap *ks, const sv_client *cl, const char *scope,
                 size_t scope_len, int64_t now, sv_answer *a) {
  jwtkit_alg alg = cl->alg != JWTKIT_ALG_UNSPEC ? cl->alg : cs->settings.algs[0];
  jwtkit_key *key = NULL;
  int64_t max_exp = 0;
  const sv_sig *sig = NULL;
  for (size_t i = 0; i < ks->nsig; i++)
    if (ks->sig[i].alg == alg) sig = &ks->sig[i];
  if (sig == NULL || sig->signer == NULL || jwtkit_keyring_signing_key(ks->kr, alg, now, &key, &max_exp) != JWTKIT_OK ||
      key != sig->key) {
    sv_answer_token_error(a, 503, SV_TE_TEMPORARILY_UNAVAILABLE, "no signing key is available right now", NULL);
    return;
  }
  int64_t ttl = cl->ttl > 0 ? cl->ttl : ks->timing.token_ttl;
  if (cs->settings.transition_ttl > 0 && cs->settings.transition_ttl < ttl) ttl = cs->settings.transition_ttl;
  int64_t exp = now + ttl;
  if (exp > max_exp) exp = max_exp;

  jwtkit_claimset *claims = jwtkit_claimset_new();
  jwtkit_err e = claims ? JWTKIT_OK : JWTKIT_ERR_NOMEM;
  if (e == JWTKIT_OK) e = jwtkit_claimset_set_string(claims, "iss", cs->settings.issuer);
  if (e == JWTKIT_OK) e = jwtkit_claimset_set_string(claims, "sub", cl->name);
  for (size_t i = 0; e == JWTKIT_OK && i < cl->naud; i++) e = jwtkit_claimset_add_audience(claims, cl->aud[i]);
  if (e == JWTKIT_OK) e = jwtkit_claimset_set_string(claims, "client_id", cl->name);
  if (e == JWTKIT_OK) e = jwtkit_claimset_set_lifetime(claims, now, exp - now);
  if (e == JWTKIT_OK) e = jwtkit_claimset_set_jti(claims);
  if (e == JWTKIT_OK && scope_len > 0) e = jwtkit_claimset_set_string(claims, "scope", scope);
  char *tok = NULL;
  size_t tl = 0;
  jwtkit_errinfo ei = {0};
  if (e == JWTKIT_OK) {
    e = jwtkit_signer_sign_claimset(sig->signer, claims, &tok, &tl, &ei);
    if (sv_keyhealth_signed(alg, key, e, &ei)) { /* a token key failed: it may come back */
      jwtkit_claimset_free(claims);
      sv_answer_token_error(a, 503, SV_TE_TEMPORARILY_UNAVAILABLE, "the signing key's token is unavailable; retry later",
                            NULL);
      a->retry_after = SV_TOKEN_RETRY_AFTER;
      return;
    }
  }
  jwtkit_claimset_free(claims);
  if (e != JWTKIT_OK) {
    jk_log(JK_LOG_ERROR, "signing_failed", "signing failed: %s", jwtkit_strerror(e));
    sv_answer_token_error(a, 500, SV_TE_SERVER_ERROR, "the token could not be signed", NULL);
    return;
  }
  snprintf(a->kid, sizeof a->kid, "%s", jwtkit_key_kid(key) ? jwtkit_key_kid(key) : "");
  jk_buf b;
  jk_buf_init_max(&b, 256 * 1024);
  jk_buf_puts(&b, "{\"access_token\":");
  jk_buf_json_str(&b, tok, tl);
  jk_buf_puts(&b, ",\"token_type\":\"Bearer\",\"expires_in\":");
  jk_buf_int(&b, exp - now);
  if (scope_len > 0) {
    jk_buf_puts(&b, ",\"scope\":");
    jk_buf_json_str(&b, scope, scope_len);
  }
  jk_buf_putc(&b, '}');
  jwtkit_free_secret(tok, tl);
  a->json = jk_buf_take(&b, NULL); /* wiped and freed when it failed */
  if (a->json == NULL) {
    sv_answer_token_error(a, 500, SV_TE_SERVER_ERROR, NULL, NULL);
    return;
  }
  sv_metrics_minted(sig->minted);
  a->status = 200;
}

/* 1 when the key that would sign for client cl is a token (PKCS#11) key:
 * its signature may have to wait for one of the token's sessions. */
static int token_key(const sv_confsnap *cs, const sv_keysnap *ks, const sv_client *cl) {
  jwtkit_alg alg = cl->alg != JWTKIT_ALG_UNSPEC ? cl->alg : cs->settings.algs[0];
  for (size_t i = 0; i < ks->nsig; i++)
    if (ks->sig[i].alg == alg && ks->sig[i].signer != NULL && ks->sig[i].key != NULL)
      return jwtkit_key_is_pkcs11(ks->sig[i].key);
  return 0;
}

void sv_mint_free(sv_mint *m) {
  if (m->scope != NULL) jk_free(m->scope);
  memset(m, 0, sizeof *m);
}

void sv_token_mint(const sv_confsnap *cs, const sv_keysnap *ks, sv_mint *m, sv_answer *a) {
  sv_answer_init(a);
  mint(cs, ks, m->cl, m->scope ? m->scope : "", m->scope_len, m->now, a);
  if (m->cl != NULL) note_client(a, cs, m->cl->name);
  sv_mint_free(m);
}

/* ------------------------------------------------------ private_key_jwt */

/* The client an assertion names: client_id when given, else its sub (read
 * before verification only to find whose keys verify it).  0 or -1. */
static int assertion_client(const char *assertion, const char *post_id, char *out, size_t cap) {
  if (post_id != NULL) {
    snprintf(out, cap, "%s", post_id);
    return strlen(post_id) < cap ? 0 : -1;
  }
  char *header = NULL, *payload = NULL;
  size_t hl = 0, pl = 0;
  jwtkit_errinfo ei;
  int rc = -1;
  if (jwtkit_decode_unverified(assertion, strlen(assertion), &header, &hl, &payload, &pl, &ei) == JWTKIT_OK) {
    jk_jnode nodes[256];
    jk_jdoc doc;
    uint32_t needed = 0;
    if (jk_json_parse(&doc, payload, pl, nodes, 256, 1, &needed, &ei) == JWTKIT_OK) {
      int i = jk_json_get(&doc, 0, "sub", 3);
      if (i >= 0 && doc.nodes[i].type == JK_J_STRING && doc.nodes[i].len < cap) {
        jk_json_unescape(&doc, (uint32_t)i, out); /* out holds len + 1 bytes; unescaping never lengthens */
        rc = 0;
      }
    }
  }
  jwtkit_free(header);
  jwtkit_free(payload);
  return rc;
}

/* A refused assertion: logged with the reason, answered invalid_client
 * (RFC 6749 §5.2) without it. */
static void assertion_refused(sv_answer *a, const char *client, const char *reason, const char *detail) {
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_INFO, "client_assertion_refused")) {
    if (client != NULL) jk_log_str(&L, "client_id", client);
    jk_log_str(&L, "reason", reason);
    if (detail != NULL && detail[0]) jk_log_str(&L, "detail", detail);
    jk_log_end(&L);
  }
  sv_answer_token_error(a, 401, SV_TE_INVALID_CLIENT, "client authentication failed", NULL);
}

/* RFC 7523 §3 / RFC 7521 §5.2 on the assertion of client cl (NULL: no
 * such client): signature under its keys and pinned algorithms, iss = sub
 * = the client, aud the token endpoint or the issuer, exp present and at
 * most SV_ASSERTION_MAX_LIFETIME ahead, jti present and not seen before.
 * 1 when it authenticates the client, else the answer is set. */
static int assertion_ok(const sv_confsnap *cs, const sv_client *cl, const char *assertion, int64_t now, sv_answer *a) {
  if (cl == NULL || (cl->assertion == NULL && cl->remote == NULL)) {
    assertion_refused(a, cl ? cl->name : NULL,
                      cl == NULL ? "unknown client"
                      : cl->jwks_uri != NULL ? "jwks_uri is not fetched by this process"
                                             : "client has no jwks (it authenticates with a secret)",
                      NULL);
    return 0;
  }
  /* keys from a jwks_uri: the set published now (never fetched here); an
   * unknown kid or no set asks the client's source for a refetch, and this
   * request is refused (the client retries) */
  const jwtkit_verifier *v = cl->assertion;
  sv_remote_verifier *held = NULL;
  if (cl->remote != NULL) {
    const char *why = NULL;
    held = sv_remote_verifier_get(cl->remote, &v, &why);
    if (held == NULL) {
      sv_remote_refetch(cl->remote);
      assertion_refused(a, cl->name, "jwks_uri keys not available", why);
      return 0;
    }
  }
  jwtkit_claims *claims = NULL;
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  jwtkit_err rc = jwtkit_verify_at(v, assertion, strlen(assertion), now, &claims, &ei);
  sv_remote_verifier_release(held);
  if (rc != JWTKIT_OK) {
    if (cl->remote != NULL && (rc == JWTKIT_ERR_UNKNOWN_KID || rc == JWTKIT_ERR_NO_KEY)) sv_remote_refetch(cl->remote);
    assertion_refused(a, cl->name, "verification failed", ei.msg[0] ? ei.msg : jwtkit_strerror(rc));
    return 0;
  }
  int ok = 0;
  int64_t exp_floor = 0, exp_ceil = 0;
  const char *jti = NULL;
  size_t jti_len = 0;
  char detail[160];
  if (jwtkit_claims_get_numericdate(claims, "exp", &exp_floor, &exp_ceil) != JWTKIT_OK) {
    assertion_refused(a, cl->name, "exp is missing or not a number", NULL);
  } else if (exp_ceil > now + SV_ASSERTION_MAX_LIFETIME) {
    snprintf(detail, sizeof detail, "exp is %lld s ahead; at most %d s", (long long)(exp_ceil - now),
             SV_ASSERTION_MAX_LIFETIME);
    assertion_refused(a, cl->name, "exp too far ahead", detail);
  } else if (jwtkit_claims_get_string(claims, "jti", &jti, &jti_len) != JWTKIT_OK || jti_len == 0 ||
             jti_len > SV_MAX_JTI) {
    assertion_refused(a, cl->name, "jti is missing or not a string of 1..256 bytes", NULL);
  } else {
    /* replicas of a PostgreSQL keyring share the ids in its database */
    int64_t until = exp_ceil + SV_ASSERTION_LEEWAY;
    int seen = jwtkit_keyring_location_is_postgres(cs->settings.keyring)
                   ? sv_pg_jti_remember(cs->settings.keyring, cl->name, jti, jti_len, until, now)
                   : sv_jti_remember(cl->name, jti, jti_len, until, now);
    if (seen == 1) {
      assertion_refused(a, cl->name, "jti replayed", NULL);
    } else if (seen < 0) {
      jk_log(JK_LOG_WARN, "assertion_ids_full", "a client assertion id cannot be remembered (no room, or the database "
                                                "is unreachable); refusing it");
      sv_answer_token_error(a, 503, SV_TE_TEMPORARILY_UNAVAILABLE, "client assertions cannot be checked right now", NULL);
    } else {
      ok = 1;
    }
  }
  jwtkit_claims_free(claims);
  return ok;
}

/* sv_token_respond behind the token buckets (rl NULL: none). */
static void token_respond(const sv_confsnap *cs, const sv_keysnap *ks, const sv_headers *h, char *body, size_t len,
                          int64_t now, sv_limiter *rl, const unsigned char *addr, int64_t now_ms, sv_mint *defer,
                          sv_answer *a) {
  sv_answer_init(a);
  int64_t wait = 0;
  int by = rl ? sv_limiter_admit(rl, &cs->settings, addr, NULL, now_ms, &wait) : 0;
  if (by != 0) {
    throttled_answer(a, by, wait);
    return;
  }
  /* at most one Authorization field */
  int nauth = 0;
  h->each(h->ctx, count_each, &nauth);
  if (nauth > 1) {
    sv_answer_token_error(a, 400, SV_TE_INVALID_REQUEST, "more than one Authorization field", NULL);
    return;
  }
  const char *authz = h->get(h->ctx, "Authorization");

  sv_form f;
  const char *why = NULL;
  char empty[1];
  if (body == NULL) {
    body = empty;
    len = 0;
  }
  if (sv_form_parse(body, len, &f, &why) != SV_FORM_OK) {
    sv_answer_token_error(a, 400, SV_TE_INVALID_REQUEST, why, NULL);
    return;
  }
  const char *grant = sv_form_get(&f, "grant_type");
  const char *post_id = sv_form_get(&f, "client_id");
  const char *post_secret = sv_form_get(&f, "client_secret");
  if (grant == NULL) {
    sv_answer_token_error(a, 400, SV_TE_INVALID_REQUEST, "grant_type is missing", NULL);
    return;
  }

  char cred[1024];
  const char *id = NULL, *secret = NULL;
  size_t secret_len = 0;
  const char *atype = sv_form_get(&f, "client_assertion_type");
  const char *assertion = sv_form_get(&f, "client_assertion");
  char aname[SV_MAX_CLIENT_NAME + 1];
  cred[0] = '\0';
  if (atype != NULL || assertion != NULL) {
    if (authz != NULL || post_secret != NULL) {
      sv_answer_token_error(a, 400, SV_TE_INVALID_REQUEST,
                            "more than one client authentication method (a client assertion and a secret)", NULL);
      goto out;
    }
    if (atype == NULL || assertion == NULL) {
      sv_answer_token_error(a, 400, SV_TE_INVALID_REQUEST, "client_assertion and client_assertion_type go together",
                            NULL);
      goto out;
    }
    if (strcmp(atype, SV_ASSERTION_TYPE) != 0) {
      assertion_refused(a, NULL, "unsupported client_assertion_type", NULL);
      goto out;
    }
    if (assertion_client(assertion, post_id, aname, sizeof aname) != 0) {
      assertion_refused(a, NULL, "the assertion names no client (no client_id, no sub)", NULL);
      goto out;
    }
    id = aname;
  } else if (authz != NULL) {
    if (post_secret != NULL) {
      sv_answer_token_error(a, 400, SV_TE_INVALID_REQUEST,
                            "more than one client authentication method (Authorization and client_secret)", NULL);
      goto out;
    }
    int br = sv_basic_parse(authz, cred, sizeof cred, &id, &secret, &secret_len);
    if (br != 0) {
      sv_answer_token_error(a, 401, SV_TE_INVALID_CLIENT,
                            br == -1 ? "unsupported authentication scheme: use Basic or client_secret_post"
                                     : "malformed Basic credentials",
                            NULL);
      goto out;
    }
    if (post_id != NULL && strcmp(post_id, id) != 0) {
      note_client(a, cs, id);
      sv_answer_token_error(a, 400, SV_TE_INVALID_REQUEST, "client_id differs from the authenticated client", NULL);
      goto out;
    }
  } else if (post_secret != NULL) {
    if (post_id == NULL) {
      sv_answer_token_error(a, 400, SV_TE_INVALID_REQUEST, "client_secret without client_id", NULL);
      goto out;
    }
    id = post_id;
    secret = post_secret;
    secret_len = strlen(post_secret);
  } else {
    note_client(a, cs, post_id);
    sv_answer_token_error(a, 401, SV_TE_INVALID_CLIENT, "client authentication is required", NULL);
    goto out;
  }
  note_client(a, cs, id);
  if (strcmp(grant, "client_credentials") != 0) {
    sv_answer_token_error(a, 400, SV_TE_UNSUPPORTED_GRANT_TYPE, "only client_credentials is supported", NULL);
    goto out;
  }
  const sv_client *cl = sv_clients_find(&cs->clients, id, strlen(id));
  if (rl != NULL && cl != NULL && (by = sv_limiter_admit(rl, &cs->settings, NULL, cl->name, now_ms, &wait)) != 0) {
    throttled_answer(a, by, wait);
    goto out;
  }
  if (assertion != NULL) {
    if (!assertion_ok(cs, cl, assertion, now, a)) goto out;
  } else if (cl != NULL && (cl->jwks != NULL || cl->jwks_uri != NULL)) {
    /* a private_key_jwt client has no secret: the dummy hash keeps the
     * time of the answer the same as for a wrong secret */
    (void)sv_secret_verify(NULL, NULL, secret, secret_len);
    sv_answer_token_error(a, 401, SV_TE_INVALID_CLIENT, "client authentication failed", NULL);
    goto out;
  } else if (!sv_secret_verify(cl ? cl->name : NULL, cl ? &cl->hash : NULL, secret, secret_len) || cl == NULL) {
    sv_answer_token_error(a, 401, SV_TE_INVALID_CLIENT, "client authentication failed", NULL);
    goto out;
  }
  if (cl->disabled) {
    sv_answer_token_error(a, 400, SV_TE_UNAUTHORIZED_CLIENT, "the client is disabled", NULL);
    goto out;
  }
  jk_buf scope;
  jk_buf_init_max(&scope, 16 * 1024);
  if (grant_scope(cl, sv_form_get(&f, "scope"), &scope) != 0 || scope.oom)
    sv_answer_token_error(a, 400, SV_TE_INVALID_SCOPE, "the requested scope is not allowed for this client", NULL);
  else if (defer != NULL && token_key(cs, ks, cl)) {
    defer->scope = jk_buf_take(&scope, &defer->scope_len);
    if (defer->scope == NULL) {
      sv_answer_token_error(a, 500, SV_TE_SERVER_ERROR, NULL, NULL);
    } else {
      defer->cl = cl;
      defer->now = now;
      defer->pending = 1;
    }
  } else
    mint(cs, ks, cl, scope.p ? scope.p : "", scope.len, now, a);
  jk_buf_free(&scope);
out:
  jk_wipe(cred, sizeof cred);
}

void sv_token_respond(const sv_confsnap *cs, const sv_keysnap *ks, const sv_headers *h, char *body, size_t len,
                      int64_t now, sv_answer *a) {
  token_respond(cs, ks, h, body, len, now, NULL, NULL, 0, NULL, a);
}

void sv_token_respond_limited(const sv_confsnap *cs, const sv_keysnap *ks, const sv_headers *h, char *body,
                              size_t len, int64_t now, sv_limiter *l, const unsigned char *addr, int64_t now_ms,
                              sv_mint *defer, sv_answer *a) {
  if (defer != NULL) memset(defer, 0, sizeof *defer);
  token_respond(cs, ks, h, body, len, now, l, addr, now_ms, defer, a);
  /* a token or a server error costs 1, any other refusal token_fail_cost,
   * a 429 nothing (it did no work); a signature left to the caller ends
   * in a token or a server error */
  int pending = defer != NULL && defer->pending;
  long long cost = pending ? 1
                   : a->status == 429                    ? 0
                   : a->status == 200 || a->status >= 500 ? 1
                                                          : cs->settings.fail_cost;
  sv_limiter_charge(l, &cs->settings, addr, a->client_id[0] ? a->client_id : NULL, cost, now_ms);
}
