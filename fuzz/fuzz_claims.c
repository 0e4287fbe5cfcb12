/*
 * claims: the claim checks, against an independent oracle.
 *
 * The first 8 bytes choose the policy and the clock, the rest is a claims
 * JSON text that is signed with a fixed HS256 key (jwtkit_sign) and
 * verified.  Knobs:
 *   b0  bit0 issuer "https://issuer.example"   bit1 audience "api"
 *       bit2 audience "https://api.example"    bit3 ignore_audience
 *       bit4 require_exp (else optional)       bit5 subject "alice"
 *       bit6 required claim "jti"              bit7 expected typ (see b1)
 *   b1  bits0-1 expected typ  {JWT, at+jwt, application/JWT, application/at+jwt}
 *       bits2-3 signed typ    {default (JWT), none, at+JWT, application/jwt}
 *       bit4    kid-less tokens refused (the token then carries a kid)
 *       bits5-7 max_age       {0, 1, 60, 300, 3600, 86400, 31536000, 0}
 *   b2  leeway = b2 * 300 / 255 seconds
 *   b3..b6 clock: 1700000000 + (int32, little endian)
 *   b7  bit0: verify through the policy clock instead of jwtkit_verify_at
 *
 * Signing must succeed exactly when the claims are a strict JSON object.
 * The oracle works out, from RFC 7519 and the documented rules, every check
 * the token fails; the verifier must accept exactly when that set is empty
 * and otherwise report one of its codes.  The claimset builder
 * (merge_json + to_json) must reproduce the same members.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec/json.h"
#include "common.h"
#include "core/alloc.h"

#define BASE_NOW 1700000000LL

static jwtkit_key *g_key;

static const char *const k_ptyp[4] = {"JWT", "at+jwt", "application/JWT", "application/at+jwt"};
static const char *const k_styp[4] = {NULL, "", "at+JWT", "application/jwt"};
static const int64_t k_max_age[8] = {0, 1, 60, 300, 3600, 86400, 31536000, 0};

static int64_t g_clock_now;
static int64_t clock_fn(void *ctx) {
  (void)ctx;
  return g_clock_now;
}

/* ------------------------------------------------------------ oracle */

/* A NumericDate as the docs define it: any JSON number whose value has
 * fewer than 16 integer digits (|value| < 1e15), exponent allowed.  Value =
 * sign * (ip + (frac ? something in (0,1) : 0)).  The oracle writes an
 * exponent form out as plain decimal text first (normalize_exponent), then
 * reads that, so it shares no code with the library's arithmetic. */
typedef struct ndate {
  int neg;
  int64_t ip;
  int frac;
} ndate;

static int parse_plain_ndate(const char *t, size_t n, ndate *d);

/* Plain decimal text for a JSON number: out gets [-]digits[.digits] with no
 * leading zeros in the integer part.  -1 when the value is certainly out of
 * range (too many integer digits to write). */
static int normalize_exponent(const char *t, size_t n, char *out, size_t cap) {
  const char *e = NULL;
  for (size_t i = 0; i < n; i++)
    if (t[i] == 'e' || t[i] == 'E') e = t + i;
  size_t mn = e ? (size_t)(e - t) : n;
  long ex = 0;
  if (e != NULL) {
    const char *p = e + 1;
    int eneg = 0;
    if (p < t + n && (*p == '+' || *p == '-')) eneg = *p++ == '-';
    for (; p < t + n; p++) ex = ex < 100000 ? ex * 10 + (*p - '0') : ex;
    if (eneg) ex = -ex;
  }
  static char dg[8192];
  size_t nd = 0, ip = 0;
  int neg = mn > 0 && t[0] == '-', seen_point = 0;
  for (size_t i = (size_t)neg; i < mn; i++) {
    if (t[i] == '.') {
      seen_point = 1;
      continue;
    }
    if (nd >= sizeof dg) abort(); /* inputs are at most 4096 bytes */
    dg[nd++] = t[i];
    if (!seen_point) ip++;
  }
  long point = (long)ip + ex;
  int nonzero = 0;
  for (size_t i = 0; i < nd; i++) nonzero |= dg[i] != '0';
  if (!nonzero) return snprintf(out, cap, "0") > 0 ? 0 : -1;
  size_t o = 0;
  if (neg) out[o++] = '-';
  if (point <= 0) {
    if (-point > 200) return snprintf(out + o, cap - o, "0.1") > 0 ? 0 : -1; /* tiny, non-zero */
    o += (size_t)snprintf(out + o, cap - o, "0.");
    for (long z = 0; z < -point; z++) out[o++] = '0';
    for (size_t i = 0; i < nd; i++) out[o++] = dg[i];
  } else {
    if (point > 200) return -1;
    for (long i = 0; i < point; i++) out[o++] = (size_t)i < nd ? dg[i] : '0';
    if ((size_t)point < nd) {
      out[o++] = '.';
      for (size_t i = (size_t)point; i < nd; i++) out[o++] = dg[i];
    }
  }
  out[o] = '\0';
  /* drop leading zeros of the integer part (keep one) */
  char *ipart = out + neg;
  size_t lead = 0;
  while (ipart[lead] == '0' && ipart[lead + 1] >= '0' && ipart[lead + 1] <= '9') lead++;
  memmove(ipart, ipart + lead, strlen(ipart + lead) + 1);
  return 0;
}

static int parse_ndate(const char *t, size_t n, ndate *d) {
  static char plain[8192 + 512];
  if (normalize_exponent(t, n, plain, sizeof plain) != 0) return -1;
  return parse_plain_ndate(plain, strlen(plain), d);
}

static int parse_plain_ndate(const char *t, size_t n, ndate *d) {
  size_t i = 0;
  d->neg = 0;
  d->ip = 0;
  d->frac = 0;
  if (i < n && t[i] == '-') {
    d->neg = 1;
    i++;
  }
  size_t digits = 0;
  while (i < n && t[i] >= '0' && t[i] <= '9') {
    d->ip = d->ip * 10 + (t[i] - '0');
    if (++digits > 15) return -1;
    i++;
  }
  if (digits == 0) return -1;
  if (i < n && t[i] == '.') {
    i++;
    while (i < n && t[i] >= '0' && t[i] <= '9') {
      if (t[i] != '0') d->frac = 1;
      i++;
    }
  }
  return i == n ? 0 : -1;
}

/* Compare the integer x with the date: -1 when x < v, 0 when equal, 1. */
static int cmp_int_date(int64_t x, const ndate *d) {
  if (!d->neg) {
    if (x <= d->ip) return x < d->ip ? -1 : (d->frac ? -1 : 0);
    return 1; /* x >= ip + 1 > v */
  }
  /* v = -(ip + f) */
  int64_t m = -d->ip;
  if (x >= m) return x > m ? 1 : (d->frac ? 1 : 0);
  return -1; /* x <= m - 1 < v */
}

typedef struct expect {
  unsigned set; /* bit per jwtkit_err */
  const char *why[32];
} expect;

static void want(expect *e, jwtkit_err code, const char *why) {
  e->set |= 1u << code;
  if (e->why[code] == NULL) e->why[code] = why;
}

/* Unescaped string member or NULL (caller frees); *type gets the node type
 * (0 when absent). */
static char *member(const jk_jdoc *d, const char *name, int *type, int *idx) {
  int i = jk_json_get(d, 0, name, strlen(name));
  *idx = i;
  *type = i < 0 ? 0 : d->nodes[i].type;
  if (i < 0 || d->nodes[i].type != JK_J_STRING) return NULL;
  char *s = malloc((size_t)d->nodes[i].len + 1);
  JKF_CHECK(s != NULL, "malloc");
  (void)jk_json_unescape(d, (uint32_t)i, s);
  return s;
}

/* RFC 7515 4.1.9 typ comparison, written independently. */
static void typ_norm(const char *s, char *out, size_t cap) {
  static const char app[] = "application/";
  size_t n = strlen(s);
  if (n >= sizeof app - 1 && strncasecmp(s, app, sizeof app - 1) == 0 && strchr(s + sizeof app - 1, '/') == NULL)
    s += sizeof app - 1;
  size_t i = 0;
  for (; s[i] != '\0' && i + 1 < cap; i++) out[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
  out[i] = '\0';
}

typedef struct knobs {
  int iss, aud1, aud2, ignore_aud, require_exp, sub, jti, typ;
  int ptyp, styp, kidless_reject;
  int64_t max_age, leeway, now;
  int use_clock;
} knobs;

static void time_checks(const jk_jdoc *d, const knobs *k, expect *e) {
  static const char *const names[3] = {"exp", "nbf", "iat"};
  for (int t = 0; t < 3; t++) {
    int i = jk_json_get(d, 0, names[t], 3);
    if (i < 0) {
      if (t == 0 && k->require_exp) want(e, JWTKIT_ERR_CLAIM_MISSING, "exp required and absent");
      if (t == 2 && k->max_age > 0) want(e, JWTKIT_ERR_CLAIM_MISSING, "max_age needs iat");
      continue;
    }
    ndate v;
    if (d->nodes[i].type != JK_J_NUMBER || parse_ndate(d->src + d->nodes[i].off, d->nodes[i].len, &v) != 0) {
      want(e, JWTKIT_ERR_MALFORMED, "time claim is not a NumericDate");
      continue;
    }
    switch (t) {
      case 0: /* valid while now < exp + leeway */
        if (cmp_int_date(k->now - k->leeway, &v) >= 0) want(e, JWTKIT_ERR_EXPIRED, "now >= exp + leeway");
        break;
      case 1: /* refused while now + leeway < nbf */
        if (cmp_int_date(k->now + k->leeway, &v) < 0) want(e, JWTKIT_ERR_NOT_YET_VALID, "now + leeway < nbf");
        break;
      default: /* refused when iat > now + leeway; too old when now - iat > max_age + leeway */
        if (cmp_int_date(k->now + k->leeway, &v) < 0) want(e, JWTKIT_ERR_ISSUED_IN_FUTURE, "iat > now + leeway");
        if (k->max_age > 0 && cmp_int_date(k->now - k->max_age - k->leeway, &v) > 0)
          want(e, JWTKIT_ERR_TOO_OLD, "now - iat > max_age + leeway");
        break;
    }
  }
}

static void oracle(const jk_jdoc *d, const knobs *k, expect *e) {
  int type, idx;
  char *s;
  time_checks(d, k, e);
  if (k->iss) {
    s = member(d, "iss", &type, &idx);
    if (type == 0)
      want(e, JWTKIT_ERR_CLAIM_MISSING, "iss required");
    else if (s == NULL || strcmp(s, "https://issuer.example") != 0)
      want(e, JWTKIT_ERR_CLAIM_MISMATCH, "iss differs");
    free(s);
  }
  int naud = k->aud1 + k->aud2;
  s = member(d, "aud", &type, &idx);
  if (naud > 0) {
    if (type == 0) {
      want(e, JWTKIT_ERR_CLAIM_MISSING, "aud required");
    } else if (type == JK_J_STRING) {
      if (!((k->aud1 && strcmp(s, "api") == 0) || (k->aud2 && strcmp(s, "https://api.example") == 0)))
        want(e, JWTKIT_ERR_CLAIM_MISMATCH, "aud string differs");
    } else if (type == JK_J_ARRAY) {
      int match = 0, bad = 0;
      for (uint32_t i = (uint32_t)idx + 1; i < d->nodes[idx].end; i = d->nodes[i].end) {
        if (d->nodes[i].type != JK_J_STRING) {
          bad = 1;
          continue;
        }
        char *v = malloc((size_t)d->nodes[i].len + 1);
        JKF_CHECK(v != NULL, "malloc");
        size_t n = jk_json_unescape(d, i, v);
        if ((k->aud1 && n == 3 && memcmp(v, "api", 3) == 0) ||
            (k->aud2 && n == 19 && memcmp(v, "https://api.example", 19) == 0))
          match = 1;
        free(v);
      }
      if (bad) want(e, JWTKIT_ERR_MALFORMED, "aud array holds a non-string");
      if (!match) want(e, JWTKIT_ERR_CLAIM_MISMATCH, "no aud entry matches");
    } else {
      want(e, JWTKIT_ERR_MALFORMED, "aud is neither string nor array");
    }
  } else if (type != 0 && !k->ignore_aud) {
    want(e, JWTKIT_ERR_CLAIM_MISMATCH, "aud present, none configured");
  }
  free(s);
  if (k->sub) {
    s = member(d, "sub", &type, &idx);
    if (type == 0)
      want(e, JWTKIT_ERR_CLAIM_MISSING, "sub required");
    else if (s == NULL || strcmp(s, "alice") != 0)
      want(e, JWTKIT_ERR_CLAIM_MISMATCH, "sub differs");
    free(s);
  }
  if (k->jti && jk_json_get(d, 0, "jti", 3) < 0) want(e, JWTKIT_ERR_CLAIM_MISSING, "jti required");
  if (k->typ) {
    const char *st = k_styp[k->styp] ? k_styp[k->styp] : "JWT";
    if (st[0] == '\0') {
      want(e, JWTKIT_ERR_CLAIM_MISSING, "typ header required");
    } else {
      char a[64], b[64];
      typ_norm(st, a, sizeof a);
      typ_norm(k_ptyp[k->ptyp], b, sizeof b);
      if (strcmp(a, b) != 0) want(e, JWTKIT_ERR_CLAIM_MISMATCH, "typ differs");
    }
  }
}

/* The claimset builder on the same claims: merge_json of the object and
 * to_json must give an object with the same members in the same order,
 * names equal after unescaping and values byte for byte. */
static void claimset_check(const jk_jdoc *d, const char *claims, size_t clen) {
  jwtkit_claimset *cs = jwtkit_claimset_new();
  JKF_CHECK(cs != NULL, "claimset_new");
  jwtkit_err rc = jwtkit_claimset_merge_json(cs, claims, clen);
  uint32_t members = d->nodes[0].flags;
  if (members > 256) {
    JKF_CHECK(rc == JWTKIT_ERR_TOO_LARGE, "merge of %u members gives %s", members, jwtkit_errname(rc));
    jwtkit_claimset_free(cs);
    return;
  }
  JKF_CHECK(rc == JWTKIT_OK, "merge_json refuses a strict object: %s", jwtkit_errname(rc));
  char *out = NULL;
  size_t ol = 0;
  JKF_CHECK(jwtkit_claimset_to_json(cs, &out, &ol) == JWTKIT_OK, "claimset_to_json");
  jk_jdoc o;
  JKF_CHECK(jk_json_parse_alloc(&o, out, ol, 1, NULL) == JWTKIT_OK, "claimset JSON does not parse: %s", out);
  JKF_CHECK(o.nodes[0].flags == members, "claimset has %u members, the claims %u", o.nodes[0].flags, members);
  for (uint32_t a = 1, b = 1; a < d->nodes[0].end; a = d->nodes[a + 1].end, b = o.nodes[b + 1].end) {
    char *na = malloc((size_t)d->nodes[a].len + 1), *nb = malloc((size_t)o.nodes[b].len + 1);
    JKF_CHECK(na != NULL && nb != NULL, "malloc");
    size_t la = jk_json_unescape(d, a, na), lb = jk_json_unescape(&o, b, nb);
    JKF_CHECK(la == lb && memcmp(na, nb, la) == 0, "member name %s became %s", na, nb);
    const jk_jnode *va = &d->nodes[a + 1], *vb = &o.nodes[b + 1];
    size_t offa = va->type == JK_J_STRING ? va->off - 1 : va->off, lena = va->type == JK_J_STRING ? va->len + 2u : va->len;
    size_t offb = vb->type == JK_J_STRING ? vb->off - 1 : vb->off, lenb = vb->type == JK_J_STRING ? vb->len + 2u : vb->len;
    JKF_CHECK(lena == lenb && memcmp(claims + offa, out + offb, lena) == 0, "value of %s changed", na);
    free(na);
    free(nb);
  }
  jk_free(o.nodes);
  jwtkit_free(out);
  jwtkit_claimset_free(cs);
}

/* --------------------------------------------------------------- run */

int jkf_claims(const uint8_t *data, size_t size) {
  if (g_key == NULL) {
    static const unsigned char secret[32] = "jwtkit-fuzz-claims-hs256-secret";
    JKF_CHECK(jwtkit_key_from_secret(&g_key, JWTKIT_ALG_HS256, secret, sizeof secret, NULL) == JWTKIT_OK, "key");
  }
  if (size < 8) return 0;
  knobs k;
  memset(&k, 0, sizeof k);
  uint8_t b0 = data[0], b1 = data[1];
  k.iss = b0 & 1;
  k.aud1 = (b0 >> 1) & 1;
  k.aud2 = (b0 >> 2) & 1;
  k.ignore_aud = (b0 >> 3) & 1;
  k.require_exp = (b0 >> 4) & 1;
  k.sub = (b0 >> 5) & 1;
  k.jti = (b0 >> 6) & 1;
  k.typ = (b0 >> 7) & 1;
  k.ptyp = b1 & 3;
  k.styp = (b1 >> 2) & 3;
  k.kidless_reject = (b1 >> 4) & 1;
  k.max_age = k_max_age[(b1 >> 5) & 7];
  k.leeway = (int64_t)data[2] * 300 / 255;
  uint32_t off = (uint32_t)data[3] | (uint32_t)data[4] << 8 | (uint32_t)data[5] << 16 | (uint32_t)data[6] << 24;
  k.now = BASE_NOW + (int32_t)off;
  k.use_clock = data[7] & 1;
  const char *claims = (const char *)data + 8;
  size_t clen = size - 8;

  jwtkit_sign_opts opts = {k_styp[k.styp], k.kidless_reject ? "fuzz-kid" : NULL, NULL};
  char *tok = NULL;
  size_t tl = 0;
  jwtkit_errinfo info;
  jwtkit_err rc = jwtkit_sign(g_key, &opts, claims, clen, &tok, &tl, &info);
  int strict = jkf_json_ok(claims, clen, 1);
  JKF_CHECK((rc == JWTKIT_OK) == (strict && clen <= JWTKIT_DEFAULT_MAX_TOKEN),
            "sign gives %s (%s) for claims that are%s a strict JSON object", jwtkit_errname(rc), info.msg,
            strict ? "" : " not");
  if (rc != JWTKIT_OK) return 0;

  jwtkit_policy *p = jwtkit_policy_new();
  JKF_CHECK(p != NULL, "policy_new");
  JKF_CHECK(jwtkit_policy_allow_alg(p, JWTKIT_ALG_HS256) == JWTKIT_OK && jwtkit_policy_add_key(p, g_key) == JWTKIT_OK,
            "policy key");
  if (k.iss) JKF_CHECK(jwtkit_policy_add_issuer(p, "https://issuer.example") == JWTKIT_OK, "issuer");
  if (k.aud1) JKF_CHECK(jwtkit_policy_add_audience(p, "api") == JWTKIT_OK, "aud1");
  if (k.aud2) JKF_CHECK(jwtkit_policy_add_audience(p, "https://api.example") == JWTKIT_OK, "aud2");
  if (k.ignore_aud) JKF_CHECK(jwtkit_policy_ignore_audience(p) == JWTKIT_OK, "ignore_aud");
  JKF_CHECK(jwtkit_policy_set_require_exp(p, k.require_exp) == JWTKIT_OK, "require_exp");
  if (k.sub) JKF_CHECK(jwtkit_policy_set_subject(p, "alice") == JWTKIT_OK, "sub");
  if (k.jti) JKF_CHECK(jwtkit_policy_require_claim(p, "jti") == JWTKIT_OK, "jti");
  if (k.typ) JKF_CHECK(jwtkit_policy_set_typ(p, k_ptyp[k.ptyp]) == JWTKIT_OK, "typ");
  if (k.kidless_reject) JKF_CHECK(jwtkit_policy_set_kidless(p, JWTKIT_KIDLESS_REJECT) == JWTKIT_OK, "kidless");
  JKF_CHECK(jwtkit_policy_set_max_age(p, k.max_age) == JWTKIT_OK, "max_age");
  JKF_CHECK(jwtkit_policy_set_leeway(p, k.leeway) == JWTKIT_OK, "leeway");
  JKF_CHECK(jwtkit_policy_set_max_token(p, 1u << 20) == JWTKIT_OK, "max_token");
  g_clock_now = k.now;
  if (k.use_clock) JKF_CHECK(jwtkit_policy_set_clock(p, clock_fn, NULL) == JWTKIT_OK, "clock");
  jwtkit_verifier *v = NULL;
  rc = jwtkit_verifier_new(&v, p, &info);
  JKF_CHECK(rc == JWTKIT_OK, "verifier_new: %s", info.msg);
  jwtkit_policy_free(p);

  jwtkit_claims *c = NULL;
  memset(&info, 0, sizeof info);
  rc = k.use_clock ? jwtkit_verify(v, tok, tl, &c, &info) : jwtkit_verify_at(v, tok, tl, k.now, &c, &info);
  JKF_CHECK((rc == JWTKIT_OK) == (c != NULL), "claims handed out on %s", jwtkit_errname(rc));

  jk_jdoc d;
  JKF_CHECK(jk_json_parse_alloc(&d, claims, clen, 1, NULL) == JWTKIT_OK, "claims parse");
  expect e;
  memset(&e, 0, sizeof e);
  oracle(&d, &k, &e);
  claimset_check(&d, claims, clen);
  jk_free(d.nodes);

  if (e.set == 0) {
    JKF_CHECK(rc == JWTKIT_OK, "verifier refuses with %s (field %s: %s); the oracle expects acceptance",
              jwtkit_errname(rc), info.field, info.msg);
  } else {
    int first = 0;
    while (!(e.set & (1u << first))) first++;
    JKF_CHECK(rc != JWTKIT_OK, "verifier accepts; the oracle expects %s (%s)", jwtkit_errname((jwtkit_err)first),
              e.why[first]);
    JKF_CHECK(rc < 32 && (e.set & (1u << rc)), "verifier says %s (field %s: %s); the oracle expects %s (%s)",
              jwtkit_errname(rc), info.field, info.msg, jwtkit_errname((jwtkit_err)first), e.why[first]);
  }
  if (c != NULL) {
    size_t pl = 0;
    const char *pj = jwtkit_claims_json(c, &pl);
    JKF_CHECK(pl == clen && memcmp(pj, claims, clen) == 0, "verified claims differ from the signed ones");
  }
  jwtkit_claims_free(c);
  jwtkit_verifier_free(v);
  jwtkit_free(tok);
  return 0;
}

JKF_ENTRY(jkf_claims)
