/*
 * The PEM check pane (the report of `jwtkit pem check --json`: the
 * library's jwtkit_pem_check and jwtkit_pem_report_to_json) and the JWK
 * Set viewer: one card per key of the set with what a verifier needs to
 * know, the warnings a reviewer would give, and what jwtkit_jwks_parse
 * itself makes of the set.
 */
#include <stdio.h>
#include <string.h>

#include "codec/b64url.h"
#include "core/alloc.h"
#include "ui_internal.h"
#include "common/attr.h"

#define MAX_SET_VALUES 16384u /* JSON values of a pasted JWK Set */

/* POST /api/pem {"pem", "passphrase"?, "name"?} */
int ui_api_pem(ui_call *c) {
  const char *pem, *pass, *name;
  size_t len;
  int r = ui_in_str(c, "pem", &pem, &len), rp, rn;
  if (r < 0 || (rp = ui_in_str(c, "passphrase", &pass, NULL)) < 0 || (rn = ui_in_str(c, "name", &name, NULL)) < 0)
    return -1;
  if (r == 0) return ui_fail(c, 400, "pem", "paste the PEM text, or drop a file on the field");
  jwtkit_pem_report *rep = NULL;
  jwtkit_err rc = jwtkit_pem_check(pem, len, rp > 0 && pass[0] ? pass : NULL, &rep);
  if (rc != JWTKIT_OK) return ui_fail(c, rc == JWTKIT_ERR_NOMEM ? 500 : 400, "passphrase", "%s", jwtkit_strerror(rc));
  char *json = NULL;
  size_t jl = 0;
  rc = jwtkit_pem_report_to_json(rep, rn > 0 && name[0] ? name : NULL, &json, &jl);
  if (rc != JWTKIT_OK) {
    jwtkit_pem_report_free(rep);
    return ui_fail(c, 500, NULL, "%s", jwtkit_strerror(rc));
  }
  jk_buf *b = c->out;
  jk_buf_puts(b, ",\"report\":");
  jk_buf_put(b, json, jl); /* the library's JSON */
  jwtkit_free(json);
  /* what each problem code means, for the page's legend */
  jk_buf_puts(b, ",\"descriptions\":{");
  int first = 1;
  for (size_t i = 0; i < jwtkit_pem_report_findings(rep); i++) {
    jwtkit_pem_problem p = jwtkit_pem_report_finding(rep, i)->problem;
    size_t j = 0;
    while (j < i && jwtkit_pem_report_finding(rep, j)->problem != p) j++;
    if (j < i) continue; /* described already */
    if (!first) jk_buf_putc(b, ',');
    first = 0;
    const char *code = jwtkit_pem_problem_name(p), *desc = jwtkit_pem_problem_desc(p);
    jk_buf_json_str(b, code, strlen(code));
    jk_buf_putc(b, ':');
    jk_buf_json_str(b, desc, strlen(desc));
  }
  jk_buf_putc(b, '}');
  jwtkit_pem_report_free(rep);
  return 0;
}

/* ------------------------------------------------------------ JWK Sets */

typedef struct card {
  jk_jdoc *d;
  uint32_t obj;
  jk_buf *b;
  int nwarn;
} card;

static void warn(card *k, const char *text) {
  jk_buf_puts(k->b, k->nwarn++ ? "," : "");
  jk_buf_json_str_lossy(k->b, text, strlen(text));
}

/* A member's value node, or -1. */
static int mem(card *k, const char *name) { return jk_json_get(k->d, k->obj, name, strlen(name)); }

/* ,"name":"value" for a string member (another type: its JSON text). */
static void out_member(card *k, const char *name) {
  int i = mem(k, name);
  if (i < 0) {
    ui_out_cstr(k->b, name, NULL);
    return;
  }
  const jk_jnode *n = &k->d->nodes[i];
  if (n->type == JK_J_STRING) {
    char *s = jk_json_strdup(k->d, (uint32_t)i, NULL);
    ui_out_cstr(k->b, name, s != NULL ? s : "");
    jk_free(s);
  } else {
    ui_out_str(k->b, name, k->d->src + n->off, n->len);
  }
}

static int str_is(card *k, const char *name, const char *want) {
  int i = mem(k, name);
  return i >= 0 && k->d->nodes[i].type == JK_J_STRING && jk_json_str_eq(k->d, (uint32_t)i, want, strlen(want));
}

/* Bits of a base64url big-endian integer member, 0 when absent or bad. */
static unsigned b64_bits(card *k, const char *name) {
  int i = mem(k, name);
  if (i < 0 || k->d->nodes[i].type != JK_J_STRING || k->d->nodes[i].esc) return 0;
  const jk_jnode *n = &k->d->nodes[i];
  unsigned char *raw = jk_malloc(jk_b64url_dec_max(n->len) + 1);
  size_t rl = 0;
  unsigned bits = 0;
  if (raw != NULL && jk_b64url_decode(raw, &rl, k->d->src + n->off, n->len) == 0) {
    size_t z = 0;
    while (z < rl && raw[z] == 0) z++;
    if (z < rl) {
      bits = (unsigned)(rl - z - 1) * 8;
      for (unsigned v = raw[z]; v != 0; v >>= 1) bits++;
    }
  }
  if (raw != NULL) jk_free_secret(raw, jk_b64url_dec_max(n->len) + 1);
  return bits;
}

/* One key of the set: its members, the library's import of it alone, the
 * warnings. */
static void key_card(card *k, const char *const *kids_seen, size_t nkids, size_t index) {
  jk_buf *b = k->b;
  jk_buf_puts(b, index ? ",{\"index\":" : "{\"index\":");
  jk_buf_int(b, (int64_t)index);
  if (k->d->nodes[k->obj].type != JK_J_OBJECT) {
    jk_buf_puts(b, ",\"warnings\":[\"not a JSON object: not a key\"]}");
    return;
  }
  static const char *const shown[] = {"kty", "crv", "alg", "use", "kid"};
  for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++) out_member(k, shown[i]);
  int oct = str_is(k, "kty", "oct"), rsa = str_is(k, "kty", "RSA");
  unsigned bits = rsa ? b64_bits(k, "n") : oct ? b64_bits(k, "k") : 0;
  if (bits) ui_out_int(b, "bits", bits);

  /* the key alone, as jwtkit_key_from_jwk reads it (an RSA key without
   * alg as RS256, only to describe it) */
  const jk_jnode *n = &k->d->nodes[k->obj];
  jwtkit_key *key = NULL;
  jwtkit_errinfo info = {0};
  jwtkit_alg as = rsa && mem(k, "alg") < 0 ? JWTKIT_ALG_RS256 : oct && mem(k, "alg") < 0 ? JWTKIT_ALG_HS256 : 0;
  jwtkit_err rc = jwtkit_key_from_jwk(&key, as, k->d->src + n->off, n->len, &info);
  if (rc == JWTKIT_OK) {
    char tp[44];
    if (!oct && jwtkit_key_thumbprint(key, tp) == JWTKIT_OK) ui_out_cstr(b, "thumbprint", tp);
    jwtkit_key_free(key);
  } else {
    ui_out_error(b, "error", rc, &info);
  }

  jk_buf_puts(b, ",\"warnings\":[");
  static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
  for (size_t i = 0; i < sizeof priv / sizeof priv[0]; i++)
    if (mem(k, priv[i]) >= 0) {
      char w[160];
      snprintf(w, sizeof w, "holds private key material (\"%s\"): a JWK Set is public; remove it and replace the key",
               priv[i]);
      warn(k, w);
      break;
    }
  if (oct)
    warn(k, "a secret (oct) key: a JWK Set is public, so this secret is not one any more; jwtkit never loads "
            "secrets from a set");
  if (rsa && bits > 0 && bits < 2048) {
    char w[120];
    snprintf(w, sizeof w, "RSA key of %u bits: jwtkit refuses keys under 2048 bits", bits);
    warn(k, w);
  }
  int kid = mem(k, "kid");
  if (kid < 0) {
    warn(k, "no kid: tokens cannot name this key, and with several keys a verifier cannot choose");
  } else if (k->d->nodes[kid].type == JK_J_STRING) {
    char *s = jk_json_strdup(k->d, (uint32_t)kid, NULL);
    size_t same = 0;
    for (size_t i = 0; s != NULL && i < nkids; i++) same += kids_seen[i] != NULL && strcmp(kids_seen[i], s) == 0;
    if (same > 1) {
      char w[200];
      snprintf(w, sizeof w, "kid shared by %zu keys: jwtkit refuses the whole set", same);
      warn(k, w);
    }
    jk_free(s);
  }
  if (mem(k, "use") >= 0 && !str_is(k, "use", "sig")) warn(k, "\"use\" is not \"sig\": verifiers skip it");
  if (rsa && mem(k, "alg") < 0) warn(k, "no alg: RS* and PS* cannot be told apart; a verifier must pin one");
  jk_buf_puts(b, "]}");
}

static void on_skip(void *ctx, size_t index, const jwtkit_errinfo *why) {
  jk_buf *b = ctx;
  char msg[300];
  snprintf(msg, sizeof msg, "key %zu: %s", index, why->msg);
  jk_buf_putc(b, ',');
  jk_buf_json_str_lossy(b, msg, strlen(msg));
}

/* The set as jwtkit_jwks_parse reads it (RSA keys without alg: skipped,
 * as a verifier that pins no single RS* or PS* algorithm would). */
static void library_view(ui_call *c, const char *text, size_t len) {
  jk_buf skipped;
  jk_buf_init_max(&skipped, 64 * 1024);
  jwtkit_jwks *set = NULL;
  jwtkit_errinfo info = {0};
  jwtkit_err rc = jwtkit_jwks_parse(&set, text, len, JWTKIT_ALG_UNSPEC, on_skip, &skipped, &info);
  jk_buf *b = c->out;
  jk_buf_puts(b, ",\"library\":{\"loaded\":");
  jk_buf_int(b, rc == JWTKIT_OK ? (int64_t)jwtkit_jwks_count(set) : 0);
  if (rc != JWTKIT_OK) ui_out_error(b, "error", rc, &info);
  jk_buf_puts(b, ",\"skipped\":[");
  if (!skipped.oom && skipped.len > 1) jk_buf_put(b, skipped.p + 1, skipped.len - 1);
  jk_buf_puts(b, "]}");
  jk_buf_free(&skipped);
  jwtkit_jwks_free(set);
}

/* POST /api/jwks {"jwks"} or {"url"} */
int ui_api_jwks(ui_call *c) {
  const char *text, *url;
  size_t len = 0;
  char *fetched = NULL;
  int r = ui_in_str(c, "jwks", &text, &len), ru = ui_in_str(c, "url", &url, NULL);
  if (r < 0 || ru < 0) return -1;
  if (ru > 0 && url[0] != '\0') {
    char err[300];
    int st = c->app->fetch(url, &fetched, &len, err, sizeof err);
    if (st != 0) return ui_fail(c, (unsigned)st, "url", "%s", err);
    text = fetched;
  } else if (r == 0 || len == 0) {
    return ui_fail(c, 400, "jwks", "paste a JWK Set, or give its URL");
  }
  jk_jdoc d;
  jk_jnode *nodes = jk_malloc(MAX_SET_VALUES * sizeof *nodes);
  jwtkit_errinfo info = {0};
  uint32_t needed = 0;
  jwtkit_err rc = nodes == NULL ? JWTKIT_ERR_NOMEM
                                : jk_json_parse(&d, text, len, nodes, MAX_SET_VALUES, 1, &needed, &info);
  int keys = rc == JWTKIT_OK ? jk_json_get(&d, 0, "keys", 4) : -1;
  if (rc != JWTKIT_OK || keys < 0 || d.nodes[keys].type != JK_J_ARRAY) {
    char msg[300];
    if (rc == JWTKIT_OK)
      snprintf(msg, sizeof msg, "a JWK Set is an object with a \"keys\" array");
    else
      ui_errtext(rc, &info, msg, sizeof msg);
    const char *field = fetched != NULL ? "url" : "jwks";
    jk_free(nodes);
    jk_free(fetched);
    return ui_fail(c, 422, field, "not a JWK Set: %s", msg);
  }
  /* every kid, for the duplicate check */
  const char *kids[JWTKIT_MAX_JWKS_KEYS];
  size_t nk = 0;
  for (uint32_t i = (uint32_t)keys + 1; i < d.nodes[keys].end && nk < JWTKIT_MAX_JWKS_KEYS; i = d.nodes[i].end) {
    int v = d.nodes[i].type == JK_J_OBJECT ? jk_json_get(&d, i, "kid", 3) : -1;
    kids[nk++] = v >= 0 && d.nodes[v].type == JK_J_STRING ? jk_json_strdup(&d, (uint32_t)v, NULL) : NULL;
  }
  jk_buf *b = c->out;
  jk_buf_puts(b, ",\"keys\":[");
  card k = {.d = &d, .b = b};
  size_t index = 0;
  for (uint32_t i = (uint32_t)keys + 1; i < d.nodes[keys].end && index < JWTKIT_MAX_JWKS_KEYS; i = d.nodes[i].end) {
    k.obj = i;
    k.nwarn = 0;
    key_card(&k, kids, nk, index++);
  }
  jk_buf_putc(b, ']');
  size_t total = 0;
  for (uint32_t i = (uint32_t)keys + 1; i < d.nodes[keys].end; i = d.nodes[i].end) total++;
  ui_out_int(b, "total", (int64_t)total);
  for (size_t i = 0; i < nk; i++) jk_free(JK_UNCONST(kids[i]));
  library_view(c, text, len);
  jk_free(nodes);
  if (fetched != NULL) jk_free(fetched);
  return 0;
}
