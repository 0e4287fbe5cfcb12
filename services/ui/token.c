/*
 * The decode pane, and the token description the verify pane shares:
 * header and payload as the library decodes them (jwtkit_decode_unverified,
 * strict JSON), every member with what it means, and exp/nbf/iat read by
 * the verifier's own rule (codec/json.h jk_json_seconds, the function
 * behind jwtkit_claims_get_numericdate) with their UTC time and the time
 * relative to now.  Nothing here decides anything: the answer says
 * "verified": false, and the verify pane asks the verifier.
 */
#include <string.h>

#include "core/alloc.h"
#include "ui_internal.h"

const char *const ui_time_names[UI_T_COUNT] = {"exp", "nbf", "iat"};

/* What a member means: header members, then claims. */
typedef struct about {
  const char *name;
  const char *text;
} about;

static const about k_header[] = {
    {"alg", "Algorithm the token says it was signed with. A verifier pins the algorithms it accepts and never "
            "takes this value on trust; jwtkit has no \"none\"."},
    {"typ", "Type (RFC 7515): JWT, or at+jwt for OAuth access tokens (RFC 9068). A verifier can require it so one "
            "kind of token is never taken for another."},
    {"kid", "Key ID: which of the issuer's keys signed the token; the verifier looks it up among the keys it "
            "trusts."},
    {"cty", "Content type (RFC 7515), for nested tokens."},
    {"crit", "Extensions the verifier must understand (RFC 7515): jwtkit understands none and refuses any token "
             "that has crit."},
    {"b64", "Unencoded payload (RFC 7797): jwtkit refuses any value other than true."},
    {"jku", "A URL of keys chosen by the token: jwtkit never reads it (keys come from the verifier's "
            "configuration, never from the token)."},
    {"jwk", "A key carried by the token itself: jwtkit never reads it (a token cannot vouch for itself)."},
    {"x5u", "A URL of certificates chosen by the token: jwtkit never reads it."},
    {"x5c", "A certificate chain carried by the token: jwtkit never reads it."},
    {"x5t", "SHA-1 thumbprint of a certificate (informational)."},
    {"x5t#S256", "SHA-256 thumbprint of a certificate (informational)."},
    {"enc", "A JWE member: this is an encrypted token's header; jwtkit refuses it as a JWS."},
    {"zip", "A JWE member (compression): jwtkit refuses it in a JWS."},
};

static const about k_claims[] = {
    {"iss", "Issuer (RFC 7519): who created and signed the token. A verifier accepts a fixed list of issuers."},
    {"sub", "Subject (RFC 7519): whom the token is about, unique within its issuer."},
    {"aud", "Audience (RFC 7519): the recipients the token is for. A verifier must refuse a token whose aud does "
            "not name it."},
    {"exp", "Expiration time (RFC 7519): the token must not be accepted at or after this instant (plus the "
            "verifier's leeway). jwtkit requires it by default."},
    {"nbf", "Not before (RFC 7519): the token must not be accepted before this instant (minus the leeway)."},
    {"iat", "Issued at (RFC 7519): when the token was made. A verifier refuses one issued in the future, and may "
            "bound its age."},
    {"jti", "JWT ID (RFC 7519): a unique identifier, which lets a verifier refuse a token it has seen."},
    {"scope", "Scopes granted (RFC 8693, RFC 9068): a space-separated list."},
    {"client_id", "The OAuth client the token was issued to (RFC 9068)."},
    {"azp", "Authorized party (OpenID Connect): the client the token was issued to."},
    {"auth_time", "When the user authenticated (OpenID Connect)."},
    {"nonce", "A value that ties an ID token to the request that asked for it (OpenID Connect)."},
    {"acr", "Authentication context class (OpenID Connect)."},
    {"amr", "Authentication methods used (RFC 8176)."},
    {"sid", "Session ID (OpenID Connect)."},
    {"cnf", "Confirmation (RFC 7800): the key the presenter must prove it holds."},
    {"act", "Actor (RFC 8693): who acts on the subject's behalf."},
    {"roles", "Roles (RFC 9068 §2.2.3.1)."},
    {"groups", "Groups (RFC 9068 §2.2.3.1)."},
    {"entitlements", "Entitlements (RFC 9068 §2.2.3.1)."},
    {"email", "E-mail address (OpenID Connect)."},
    {"name", "Full name (OpenID Connect)."},
    {"preferred_username", "Username (OpenID Connect)."},
};

static const char *about_of(const about *t, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(t[i].name, name) == 0) return t[i].text;
  return NULL;
}

/* [{"name":..,"value":<raw JSON>,"about":..|null},...] for an object text
 * the library has already checked. */
static int members(ui_call *c, const char *key, const char *json, size_t len, const about *t, size_t nt) {
  jk_jdoc d;
  jwtkit_errinfo info = {0};
  jwtkit_err rc = jk_json_parse_alloc(&d, json, len, 1, &info);
  if (rc != JWTKIT_OK) {
    char msg[300];
    ui_errtext(rc, &info, msg, sizeof msg);
    return ui_fail(c, 500, NULL, "the decoded %s does not parse again: %s", key, msg);
  }
  jk_buf *b = c->out;
  jk_buf_putc(b, ',');
  jk_buf_json_str(b, key, strlen(key));
  jk_buf_puts(b, ":[");
  int first = 1;
  for (uint32_t k = 1; k < d.nodes[0].end; k = d.nodes[k + 1].end) {
    char *name = jk_json_strdup(&d, k, NULL);
    if (name == NULL) {
      jk_free(d.nodes);
      return ui_fail(c, 500, NULL, "out of memory");
    }
    const jk_jnode *v = &d.nodes[k + 1];
    const char *vp = d.src + (v->type == JK_J_STRING ? v->off - 1 : v->off);
    size_t vl = v->type == JK_J_STRING ? (size_t)v->len + 2 : v->len;
    jk_buf_puts(b, first ? "{\"name\":" : ",{\"name\":");
    first = 0;
    jk_buf_json_str(b, name, strlen(name));
    jk_buf_puts(b, ",\"value\":");
    jk_buf_put(b, vp, vl); /* strict JSON already */
    ui_out_cstr(b, "about", about_of(t, nt, name));
    jk_buf_putc(b, '}');
    jk_free(name);
  }
  jk_buf_putc(b, ']');
  jk_free(d.nodes);
  return 0;
}

/* exp, nbf, iat by the verifier's rule, and ,"times":[...] */
static int times_of(ui_call *c, const char *payload, size_t len, ui_times *t) {
  memset(t, 0, sizeof *t);
  jk_jdoc d;
  if (jk_json_parse_alloc(&d, payload, len, 1, NULL) != JWTKIT_OK) return ui_fail(c, 500, NULL, "out of memory");
  jk_buf *b = c->out;
  jk_buf_puts(b, ",\"times\":[");
  int first = 1;
  for (int i = 0; i < UI_T_COUNT; i++) {
    int v = jk_json_get(&d, 0, ui_time_names[i], strlen(ui_time_names[i]));
    if (v < 0) continue;
    t->t[i].has = 1;
    t->t[i].bad = jk_json_seconds(&d, (uint32_t)v, &t->t[i].floor, &t->t[i].ceil) != 0;
    jk_buf_puts(b, first ? "{\"name\":" : ",{\"name\":");
    first = 0;
    jk_buf_json_str(b, ui_time_names[i], strlen(ui_time_names[i]));
    if (t->t[i].bad) {
      ui_out_cstr(b, "error",
                  "not a NumericDate (a JSON number below 1e15 in magnitude): the verifier refuses this token as "
                  "malformed");
    } else {
      char when[40], rel[48];
      jk_format_rfc3339(t->t[i].floor, when, sizeof when);
      jk_format_relative(t->t[i].ceil, c->now, rel, sizeof rel);
      ui_out_int(b, "floor", t->t[i].floor);
      ui_out_int(b, "ceil", t->t[i].ceil);
      ui_out_cstr(b, "utc", when);
      ui_out_cstr(b, "relative", rel);
    }
    jk_buf_putc(b, '}');
  }
  jk_buf_putc(b, ']');
  jk_free(d.nodes);
  return 0;
}

int ui_in_token(ui_call *c, const char **token, size_t *len) {
  const char *s;
  size_t n;
  int r = ui_in_str(c, "token", &s, &n);
  if (r <= 0) return r;
  while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) s++, n--;
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) n--;
  if (n >= 7 && strncmp(s, "Bearer ", 7) == 0) {
    s += 7;
    n -= 7;
    while (n > 0 && *s == ' ') s++, n--;
  }
  *token = s;
  *len = n;
  return n > 0;
}

int ui_token_describe(ui_call *c, const char *token, size_t len, ui_times *times, jwtkit_err *rc,
                      jwtkit_errinfo *info) {
  char *hdr = NULL, *pay = NULL;
  size_t hl = 0, pl = 0;
  memset(info, 0, sizeof *info);
  *rc = jwtkit_decode_unverified(token, len, &hdr, &hl, &pay, &pl, info);
  if (*rc != JWTKIT_OK) return 1;
  jk_buf *b = c->out;
  ui_out_str(b, "header_text", hdr, hl);
  ui_out_str(b, "payload_text", pay, pl);
  int r = members(c, "header", hdr, hl, k_header, sizeof k_header / sizeof k_header[0]);
  if (r == 0) r = members(c, "claims", pay, pl, k_claims, sizeof k_claims / sizeof k_claims[0]);
  if (r == 0) r = times_of(c, pay, pl, times);
  jwtkit_free_secret(hdr, hl + 1); /* a pasted token: wiped like everything it came in */
  jwtkit_free_secret(pay, pl + 1);
  return r;
}

/* POST /api/decode {"token", "leeway"?, "at"?} */
int ui_api_decode(ui_call *c) {
  const char *token;
  size_t len;
  int64_t leeway = JWTKIT_DEFAULT_LEEWAY;
  int r = ui_in_token(c, &token, &len);
  if (r < 0 || ui_in_int(c, "leeway", 0, JWTKIT_MAX_LEEWAY, &leeway) < 0 || ui_in_time(c, "at", &c->now) < 0)
    return -1;
  if (r == 0) return ui_fail(c, 400, "token", "paste a token (three base64url parts separated by dots)");
  ui_out_bool(c->out, "verified", 0);
  ui_out_int(c->out, "now", c->now);
  ui_out_int(c->out, "leeway", leeway);
  ui_times t;
  jwtkit_err rc;
  jwtkit_errinfo info;
  r = ui_token_describe(c, token, len, &t, &rc, &info);
  return r == 1 ? ui_fail_lib(c, "token", "the token does not decode", rc, &info) : r;
}
