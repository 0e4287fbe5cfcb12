/* Verifying a compact token against an immutable verifier: split, header
 * rules, key selection, signature first, then payload and claims. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "codec/b64url.h"
#include "codec/json.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "crypto/key_internal.h"
#include "jwt_internal.h"
#include "jwtkit/jwt.h"
#include "verify_internal.h"

/* ------------------------------------------------------------- verify */

/* RFC 7515 §4.1.9: media types compare case-insensitively, and a value
 * without '/' stands for "application/<value>". */
static int typ_equal(const char *want, const char *got, size_t got_len) {
  static const char app[] = "application/";
  size_t wl = strlen(want);
  if (wl >= sizeof app - 1 && strncasecmp(want, app, sizeof app - 1) == 0 && memchr(want + sizeof app - 1, '/', wl - (sizeof app - 1)) == NULL) {
    want += sizeof app - 1;
    wl -= sizeof app - 1;
  }
  if (got_len >= sizeof app - 1 && strncasecmp(got, app, sizeof app - 1) == 0 &&
      memchr(got + sizeof app - 1, '/', got_len - (sizeof app - 1)) == NULL) {
    got += sizeof app - 1;
    got_len -= sizeof app - 1;
  }
  return wl == got_len && strncasecmp(want, got, wl) == 0;
}

/* Select the key for this token (docs/security.md, invariants 1 and 3). */
static jwtkit_err select_key(const rules *r, const jk_jdoc *h, int kid_idx, jwtkit_alg alg, jwtkit_key **out,
                             jwtkit_errinfo *info) {
  jwtkit_key *cand = NULL;
  size_t fits = 0;
  if (kid_idx >= 0) {
    for (size_t i = 0; i < r->nkeys; i++) {
      jwtkit_key *k = r->keys[i];
      if (k->kid != NULL && jk_json_str_eq(h, (uint32_t)kid_idx, k->kid, k->kid_len)) {
        if (k->ai->id != alg)
          return jk_fail(info, JWTKIT_ERR_ALG_NOT_ALLOWED, "alg", "key \"%s\" is bound to %s, the token says %s",
                         k->kid, k->ai->name, jwtkit_alg_name(alg));
        *out = k;
        return JWTKIT_OK;
      }
    }
    /* no key carries this kid: keys loaded without a kid may still serve,
     * but only when exactly one of them fits the algorithm */
    for (size_t i = 0; i < r->nkeys; i++)
      if (r->keys[i]->kid == NULL && r->keys[i]->ai->id == alg) {
        cand = r->keys[i];
        fits++;
      }
    if (fits == 1) {
      *out = cand;
      return JWTKIT_OK;
    }
    return jk_fail(info, JWTKIT_ERR_UNKNOWN_KID, "kid", "no trusted key has the token's kid");
  }
  if (r->kidless == JWTKIT_KIDLESS_REJECT)
    return jk_fail(info, JWTKIT_ERR_UNKNOWN_KID, "kid", "the token has no kid and the policy requires one");
  for (size_t i = 0; i < r->nkeys; i++)
    if (r->keys[i]->ai->id == alg) {
      cand = r->keys[i];
      fits++;
    }
  if (fits == 1) {
    *out = cand;
    return JWTKIT_OK;
  }
  return jk_fail(info, JWTKIT_ERR_NO_KEY, "kid",
                 fits == 0 ? "no trusted key fits %s" : "several keys fit %s; the token must carry a kid",
                 jwtkit_alg_name(alg));
}

static jwtkit_err time_claim(const jk_jdoc *d, int v, const char *name, int *present, int64_t *fl, int64_t *ce,
                             jwtkit_errinfo *info) {
  *present = v >= 0;
  if (v < 0) return JWTKIT_OK;
  if (jk_json_seconds(d, (uint32_t)v, fl, ce) != 0)
    return jk_fail(info, JWTKIT_ERR_MALFORMED, name, "\"%s\" must be a NumericDate (a JSON number of seconds below 1e15)",
                   name);
  return JWTKIT_OK;
}

static int string_in(const jk_jdoc *d, uint32_t i, const strlist *l) {
  if (d->nodes[i].type != JK_J_STRING) return 0;
  for (size_t k = 0; k < l->n; k++)
    if (jk_json_str_eq(d, i, l->v[k], strlen(l->v[k]))) return 1;
  return 0;
}

/* Registered claims looked up in one pass over the payload's members. */
enum { C_EXP, C_NBF, C_IAT, C_ISS, C_AUD, C_SUB, C_COUNT };
static const char *const k_claim_names[C_COUNT] = {"exp", "nbf", "iat", "iss", "aud", "sub"};
/* Header members, likewise.  From H_JWE on: members defined only for JWE
 * (RFC 7516 §4.1, RFC 7518 §4.6-4.8); a header that carries one of them is
 * not a JWS header (RFC 7516 §9 tells the two apart by "enc"). */
enum { H_ALG, H_CRIT, H_B64, H_KID, H_TYP, H_JWE, H_COUNT = H_JWE + 9 };
static const char *const k_header_names[H_COUNT] = {"alg", "crit", "b64", "kid", "typ", "enc", "zip",
                                                    "epk", "apu", "apv", "iv",  "tag", "p2s", "p2c"};

static jwtkit_err check_claims(const rules *r, const jk_jdoc *d, const jk_jdoc *h, int typ_idx, int64_t now,
                               jwtkit_errinfo *info) {
  int has;
  int64_t fl, ce;
  jwtkit_err rc;
  int64_t lw = r->leeway;
  int ci[C_COUNT];
  jk_json_get_many(d, 0, k_claim_names, C_COUNT, ci);

  if ((rc = time_claim(d, ci[C_EXP], "exp", &has, &fl, &ce, info)) != JWTKIT_OK) return rc;
  if (!has && r->require_exp) return jk_fail(info, JWTKIT_ERR_CLAIM_MISSING, "exp", "the token has no \"exp\"");
  if (has && now >= ce + lw)
    return jk_fail(info, JWTKIT_ERR_EXPIRED, "exp", "expired %lld s ago (leeway %lld s)", (long long)(now - ce),
                   (long long)lw);
  if ((rc = time_claim(d, ci[C_NBF], "nbf", &has, &fl, &ce, info)) != JWTKIT_OK) return rc;
  if (has && now + lw < ce)
    return jk_fail(info, JWTKIT_ERR_NOT_YET_VALID, "nbf", "valid only in %lld s", (long long)(ce - now));
  if ((rc = time_claim(d, ci[C_IAT], "iat", &has, &fl, &ce, info)) != JWTKIT_OK) return rc;
  if (has && ce > now + lw)
    return jk_fail(info, JWTKIT_ERR_ISSUED_IN_FUTURE, "iat", "issued %lld s in the future", (long long)(ce - now));
  if (r->max_age > 0) {
    if (!has) return jk_fail(info, JWTKIT_ERR_CLAIM_MISSING, "iat", "a maximum age needs \"iat\"");
    if (now - fl > r->max_age + lw)
      return jk_fail(info, JWTKIT_ERR_TOO_OLD, "iat", "issued %lld s ago, maximum age %lld s", (long long)(now - fl),
                     (long long)r->max_age);
  }
  if (r->iss.n > 0) {
    int v = ci[C_ISS];
    if (v < 0) return jk_fail(info, JWTKIT_ERR_CLAIM_MISSING, "iss", "the token has no \"iss\"");
    if (!string_in(d, (uint32_t)v, &r->iss)) return jk_fail(info, JWTKIT_ERR_CLAIM_MISMATCH, "iss", "issuer not accepted");
  }
  int av = ci[C_AUD];
  if (r->aud.n > 0) {
    if (av < 0) return jk_fail(info, JWTKIT_ERR_CLAIM_MISSING, "aud", "the token has no \"aud\"");
    const jk_jnode *a = &d->nodes[av];
    int ok = 0;
    if (a->type == JK_J_STRING) {
      ok = string_in(d, (uint32_t)av, &r->aud);
    } else if (a->type == JK_J_ARRAY) {
      for (uint32_t i = (uint32_t)av + 1; i < a->end; i = d->nodes[i].end) {
        if (d->nodes[i].type != JK_J_STRING)
          return jk_fail(info, JWTKIT_ERR_MALFORMED, "aud", "\"aud\" array must hold strings");
        ok |= string_in(d, i, &r->aud);
      }
    } else {
      return jk_fail(info, JWTKIT_ERR_MALFORMED, "aud", "\"aud\" must be a string or an array of strings");
    }
    if (!ok) return jk_fail(info, JWTKIT_ERR_CLAIM_MISMATCH, "aud", "audience not accepted");
  } else if (av >= 0 && !r->ignore_aud) {
    return jk_fail(info, JWTKIT_ERR_CLAIM_MISMATCH, "aud",
                   "the token names an audience but the verifier has none configured");
  }
  if (r->sub != NULL) {
    int v = ci[C_SUB];
    if (v < 0) return jk_fail(info, JWTKIT_ERR_CLAIM_MISSING, "sub", "the token has no \"sub\"");
    if (!jk_json_str_eq(d, (uint32_t)v, r->sub, strlen(r->sub)))
      return jk_fail(info, JWTKIT_ERR_CLAIM_MISMATCH, "sub", "subject not accepted");
  }
  for (size_t i = 0; i < r->req.n; i++)
    if (jk_json_get(d, 0, r->req.v[i], strlen(r->req.v[i])) < 0)
      return jk_fail(info, JWTKIT_ERR_CLAIM_MISSING, r->req.v[i], "required claim \"%s\" is missing", r->req.v[i]);
  if (r->typ != NULL) {
    int v = typ_idx;
    if (v < 0) return jk_fail(info, JWTKIT_ERR_CLAIM_MISSING, "typ", "the token has no \"typ\" header");
    if (h->nodes[v].type != JK_J_STRING) return jk_fail(info, JWTKIT_ERR_CLAIM_MISMATCH, "typ", "\"typ\" not accepted");
    /* compared after unescaping: the raw length may be up to six times the value's */
    char stackbuf[256];
    char *tmp = h->nodes[v].len < sizeof stackbuf ? stackbuf : jk_malloc((size_t)h->nodes[v].len + 1);
    if (tmp == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    size_t tl = jk_json_unescape(h, (uint32_t)v, tmp);
    int eq = typ_equal(r->typ, tmp, tl);
    if (tmp != stackbuf) jk_free(tmp);
    if (!eq) return jk_fail(info, JWTKIT_ERR_CLAIM_MISMATCH, "typ", "\"typ\" not accepted");
  }
  return JWTKIT_OK;
}

/* Split and decode the header; shared by verify and decode. */
typedef struct parts {
  const char *hdr, *pay, *sig;
  size_t hdr_len, pay_len, sig_len;
} parts;

static jwtkit_err split(const char *token, size_t len, size_t max_header, parts *p, jwtkit_errinfo *info) {
  const char *d1 = memchr(token, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
  if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL)
    return jk_fail(info, JWTKIT_ERR_MALFORMED, NULL, "a compact JWS has exactly three segments");
  p->hdr = token;
  p->hdr_len = (size_t)(d1 - token);
  p->pay = d1 + 1;
  p->pay_len = (size_t)(d2 - p->pay);
  p->sig = d2 + 1;
  p->sig_len = len - (size_t)(p->sig - token);
  if (p->hdr_len == 0) return jk_fail(info, JWTKIT_ERR_MALFORMED, "header", "empty header segment");
  if (p->hdr_len > max_header)
    return jk_fail(info, JWTKIT_ERR_TOO_LARGE, "header", "encoded header of %zu bytes, over the limit of %zu (jwtkit_policy_set_max_header)",
                   p->hdr_len, max_header);
  return JWTKIT_OK;
}

/* The decoded header: on the stack for typical sizes, on the heap beyond
 * (bounded by the policy's max_header and max_header_values). */
typedef struct hdr_space {
  char sbuf[JK_HEADER_STACK / 4 * 3 + 4];
  jk_jnode snodes[JK_HEADER_NODES];
  char *heap_buf;
  jk_jnode *heap_nodes;
} hdr_space;

static void hdr_space_free(hdr_space *sp) {
  jk_free(sp->heap_buf);
  jk_free(sp->heap_nodes);
}

static jwtkit_err parse_header(const rules *r, const parts *p, hdr_space *sp, jk_jdoc *h, jwtkit_errinfo *info) {
  char *buf = sp->sbuf;
  sp->heap_buf = NULL;
  sp->heap_nodes = NULL;
  if (p->hdr_len > JK_HEADER_STACK) {
    if ((sp->heap_buf = jk_malloc(jk_b64url_dec_max(p->hdr_len) + 1)) == NULL)
      return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    buf = sp->heap_buf;
  }
  size_t hl;
  if (jk_b64url_decode((unsigned char *)buf, &hl, p->hdr, p->hdr_len) != 0)
    return jk_fail(info, JWTKIT_ERR_MALFORMED, "header", "header is not canonical base64url");
  uint32_t needed = 0;
  jwtkit_err rc = jk_json_parse(h, buf, hl, sp->snodes, JK_HEADER_NODES, 1, &needed, info);
  if (rc == JWTKIT_ERR_TOO_LARGE && needed > JK_HEADER_NODES) {
    if (needed > r->max_header_values)
      return jk_fail(info, JWTKIT_ERR_TOO_LARGE, "header",
                     "header has %u JSON values, over the limit of %u (jwtkit_policy_set_max_header)", needed,
                     r->max_header_values);
    if ((sp->heap_nodes = jk_malloc((size_t)needed * sizeof(jk_jnode))) == NULL)
      return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    rc = jk_json_parse(h, buf, hl, sp->heap_nodes, needed, 1, &needed, info);
  }
  if (rc != JWTKIT_OK && info != NULL) snprintf(info->field, sizeof info->field, "header");
  return rc;
}

static size_t claims_header_size(size_t hl) { return (hl + 16) & ~(size_t)7; }

/* Decode the payload into buf (room for jk_b64url_dec_max + 1) and parse it
 * with the inline nodes, or a heap array (*heap, caller frees) when more are
 * needed. */
static jwtkit_err parse_payload(const parts *p, char *buf, jk_jnode *inl, jk_jnode **heap, jk_jdoc *d,
                                jwtkit_errinfo *info) {
  size_t pl;
  *heap = NULL;
  if (jk_b64url_decode((unsigned char *)buf, &pl, p->pay, p->pay_len) != 0)
    return jk_fail(info, JWTKIT_ERR_MALFORMED, "payload", "payload is not canonical base64url");
  buf[pl] = '\0';
  uint32_t needed = 0;
  jwtkit_err rc = jk_json_parse(d, buf, pl, inl, JK_CLAIM_NODES, 1, &needed, info);
  if (rc == JWTKIT_ERR_TOO_LARGE && needed > JK_CLAIM_NODES) {
    if ((*heap = jk_malloc((size_t)needed * sizeof(jk_jnode))) == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    rc = jk_json_parse(d, buf, pl, *heap, needed, 1, &needed, info);
  }
  if (rc != JWTKIT_OK && info != NULL && info->field[0] == '\0') snprintf(info->field, sizeof info->field, "payload");
  return rc;
}

/* Everything after the header is parsed: header rules, key, signature,
 * payload, claims. */
static jwtkit_err verify_parsed(const rules *r, const char *token, const parts *p, const jk_jdoc *h, int64_t now,
                                jwtkit_claims **claims, jwtkit_errinfo *info) {
  jwtkit_err rc;
  int hi[H_COUNT];
  jk_json_get_many(h, 0, k_header_names, H_COUNT, hi);
  int ai = hi[H_ALG];
  if (ai < 0 || h->nodes[ai].type != JK_J_STRING)
    return jk_fail(info, JWTKIT_ERR_MALFORMED, "alg", "the header has no \"alg\" string");
  for (int j = H_JWE; j < H_COUNT; j++)
    if (hi[j] >= 0)
      return jk_fail(info, JWTKIT_ERR_MALFORMED, k_header_names[j],
                     "the header carries \"%s\", a member defined only for JWE (RFC 7516): this is not a JWS",
                     k_header_names[j]);
  /* the longest name, five characters, written with \u escapes takes 30
   * bytes; the raw (escaped) length decides only whether it fits here */
  char algname[40];
  jwtkit_alg alg = JWTKIT_ALG_UNSPEC;
  if (h->nodes[ai].len < sizeof algname) {
    size_t an = jk_json_unescape(h, (uint32_t)ai, algname);
    alg = jwtkit_alg_from_name(algname, an);
  }
  if (alg == JWTKIT_ALG_UNSPEC || !(r->allowed & (1u << alg)))
    return jk_fail(info, JWTKIT_ERR_ALG_NOT_ALLOWED, "alg", "algorithm not accepted by this verifier");
  if (hi[H_CRIT] >= 0)
    return jk_fail(info, JWTKIT_ERR_CRIT, "crit", "no critical header extension is supported");
  int b64 = hi[H_B64];
  if (b64 >= 0 && h->nodes[b64].type != JK_J_TRUE)
    return jk_fail(info, JWTKIT_ERR_CRIT, "b64", "unencoded payloads (b64:false) are not supported");
  int kid = hi[H_KID];
  if (kid >= 0 && (h->nodes[kid].type != JK_J_STRING || h->nodes[kid].len == 0))
    return jk_fail(info, JWTKIT_ERR_MALFORMED, "kid", "\"kid\" must be a non-empty string");
  jwtkit_key *key = NULL;
  if ((rc = select_key(r, h, kid, alg, &key, info)) != JWTKIT_OK) return rc;

  /* signature first */
  if (p->sig_len > JK_MAX_SIG_B64) return jk_fail(info, JWTKIT_ERR_BAD_SIGNATURE, "signature", "signature too long");
  unsigned char sig[JK_MAX_SIG_B64 / 4 * 3 + 4];
  size_t sl;
  if (jk_b64url_decode(sig, &sl, p->sig, p->sig_len) != 0)
    return jk_fail(info, JWTKIT_ERR_MALFORMED, "signature", "signature is not canonical base64url");
  int ok = jk_sig_verify(key, (const unsigned char *)token, (size_t)(p->sig - 1 - token), sig, sl);
  if (ok < 0) return jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, "signature check failed internally");
  if (ok == 0) return jk_fail(info, JWTKIT_ERR_BAD_SIGNATURE, "signature", NULL);

  /* payload */
  size_t pmax = jk_b64url_dec_max(p->pay_len);
  if (claims == NULL && pmax <= JK_STACK_PAYLOAD) {
    /* the caller wants the verdict only: no allocation for a typical token.
     * parse_payload writes a NUL after the decoded bytes, hence the + 1. */
    char pbuf[JK_STACK_PAYLOAD + 1];
    jk_jnode pnodes[JK_CLAIM_NODES];
    jk_jnode *heap = NULL;
    jk_jdoc d;
    rc = parse_payload(p, pbuf, pnodes, &heap, &d, info);
    if (rc == JWTKIT_OK) rc = check_claims(r, &d, h, hi[H_TYP], now, info);
    jk_free(heap);
    return rc;
  }
  /* one allocation for the claims object, header copy, payload, unescaped
   * strings and a typical node array */
  size_t hsz = claims_header_size(2 * h->len + 2); /* header + kid */
  size_t psz = (pmax + 8) & ~(size_t)7;
  size_t total = sizeof(jwtkit_claims) + hsz + 2 * psz + JK_CLAIM_NODES * sizeof(jk_jnode);
  unsigned char *mem = jk_malloc(total);
  if (mem == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  jwtkit_claims *c = (jwtkit_claims *)mem;
  jk_jnode *inl = (jk_jnode *)(mem + sizeof *c);
  char *hcopy = (char *)(inl + JK_CLAIM_NODES);
  char *pay = hcopy + hsz;
  char *strs = pay + psz;
  memset(c, 0, sizeof *c);
  if ((rc = parse_payload(p, pay, inl, &c->heap_nodes, &c->doc, info)) != JWTKIT_OK) goto fail;
  size_t pl = c->doc.len;
  if ((rc = check_claims(r, &c->doc, h, hi[H_TYP], now, info)) != JWTKIT_OK) goto fail;
  if (claims == NULL) {
    jk_free(c->heap_nodes);
    jk_free(mem);
    return JWTKIT_OK;
  }

  /* hand out: header copy, kid, and strings unescaped in place */
  memcpy(hcopy, h->src, h->len);
  hcopy[h->len] = '\0';
  c->header = hcopy;
  c->header_len = h->len;
  c->alg = alg;
  c->key = jwtkit_key_ref(key);
  if (kid >= 0) {
    char *kcopy = hcopy + h->len + 1; /* room reserved past the header */
    jk_json_unescape(h, (uint32_t)kid, kcopy);
    c->kid = kcopy;
  }
  memcpy(strs, pay, pl + 1);
  for (uint32_t i = 0; i < c->doc.count; i++) {
    const jk_jnode *nd = &c->doc.nodes[i];
    if (nd->type == JK_J_STRING) {
      jk_jdoc tmp = c->doc;
      size_t n = jk_json_unescape(&tmp, i, strs + nd->off);
      strs[nd->off + n] = '\0';
    }
  }
  c->strings = strs;
  *claims = c;
  return JWTKIT_OK;
fail:
  jk_free(c->heap_nodes);
  jk_free(mem);
  return rc;
}

jwtkit_err jwtkit_verify_at(const jwtkit_verifier *v, const char *token, size_t len, int64_t now,
                            jwtkit_claims **claims, jwtkit_errinfo *info) {
  if (claims != NULL) *claims = NULL;
  if (v == NULL || token == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  if (now < -JK_TIME_BOUND || now > JK_TIME_BOUND) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "clock out of range");
  const rules *r = &v->r;
  if (len > r->max_token) return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "token over %zu bytes", r->max_token);
  parts p = {0};
  jwtkit_err rc = split(token, len, r->max_header, &p, info);
  if (rc != JWTKIT_OK) return rc;
  hdr_space sp;
  jk_jdoc h;
  rc = parse_header(r, &p, &sp, &h, info);
  if (rc == JWTKIT_OK) rc = verify_parsed(r, token, &p, &h, now, claims, info);
  hdr_space_free(&sp);
  return rc;
}

jwtkit_err jwtkit_verify(const jwtkit_verifier *v, const char *token, size_t len, jwtkit_claims **claims,
                         jwtkit_errinfo *info) {
  if (claims != NULL) *claims = NULL;
  if (v == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  return jwtkit_verify_at(v, token, len, v->r.clock(v->r.clock_ctx), claims, info);
}


/* ------------------------------------------------------------- decode */

jwtkit_err jwtkit_decode_unverified(const char *token, size_t len, char **header, size_t *header_len,
                                    char **payload, size_t *payload_len, jwtkit_errinfo *info) {
  if (header) *header = NULL;
  if (payload) *payload = NULL;
  if (token == NULL || header == NULL || payload == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  if (len > JWTKIT_DEFAULT_MAX_TOKEN) return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "token over %u bytes", JWTKIT_DEFAULT_MAX_TOKEN);
  parts p = {0};
  jwtkit_err rc = split(token, len, JWTKIT_DEFAULT_MAX_HEADER, &p, info);
  if (rc != JWTKIT_OK) return rc;
  char *h = jk_malloc(jk_b64url_dec_max(p.hdr_len) + 1);
  char *y = jk_malloc(jk_b64url_dec_max(p.pay_len) + 1);
  size_t hl = 0, yl = 0;
  if (h == NULL || y == NULL) {
    rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  } else if (jk_b64url_decode((unsigned char *)h, &hl, p.hdr, p.hdr_len) != 0) {
    rc = jk_fail(info, JWTKIT_ERR_MALFORMED, "header", "header is not canonical base64url");
  } else if (jk_b64url_decode((unsigned char *)y, &yl, p.pay, p.pay_len) != 0) {
    rc = jk_fail(info, JWTKIT_ERR_MALFORMED, "payload", "payload is not canonical base64url");
  } else if ((rc = jk_json_check(h, hl, 1, info)) != JWTKIT_OK) {
    if (info) snprintf(info->field, sizeof info->field, "header");
  } else if ((rc = jk_json_check(y, yl, 1, info)) != JWTKIT_OK) {
    if (info) snprintf(info->field, sizeof info->field, "payload");
  }
  if (rc != JWTKIT_OK) {
    jk_free(h);
    jk_free(y);
    return rc;
  }
  h[hl] = '\0';
  y[yl] = '\0';
  *header = h;
  *payload = y;
  if (header_len) *header_len = hl;
  if (payload_len) *payload_len = yl;
  return JWTKIT_OK;
}

