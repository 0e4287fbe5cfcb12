/*
 * The parts of `jwtkit ui` (not installed):
 *
 *   ui.c       options, the per-start secret, start-up, the URL, --open
 *   http.c     libmicrohttpd with the services' connection guard and
 *              framing checks; turns a connection into a ui_req and sends
 *              the ui_resp back with the security headers
 *   route.c    ui_respond: Host, Origin and secret checks, the embedded
 *              assets, the API dispatch (pure: no socket, no global state,
 *              the fuzz harness fuzz/fuzz_ui_api.c calls it directly)
 *   in.c       the request's JSON body through the library's strict parser,
 *              and the answer's error form
 *   keys.c     keys from pasted text (PEM, JWK, JWK Set, secret)
 *   token.c    the decode pane, and the token description verify shares
 *   verify.c   the verify pane: every check through the library's verifier
 *   generate.c the generate pane
 *   inspect.c  the PEM check and JWK Set viewer panes
 *   plan.c     the rotation plan pane: a keyring's timeline, or one the
 *              library's rules make from parameters
 *   fetch.c    the one function that fetches a JWKS URL
 *   assets.c   generated at build time from assets/ (embed.cmake)
 */
#ifndef JWTKIT_UI_INTERNAL_H
#define JWTKIT_UI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "codec/json.h"
#include "common/attr.h"
#include "common/buf.h"
#include "common/parse.h"
#include "jwtkit/jwtkit.h"

#define UI_MAX_BODY (1u << 20)            /* request bodies (413 above) */
#define UI_MAX_ANSWER (8u << 20)          /* answers */
#define UI_MAX_JSON_VALUES 2048u          /* values in a request body */
#define UI_SECRET_HEADER "X-Jwtkit-Ui-Secret"
#define UI_SECRET_LEN 43                  /* base64url of 32 random bytes */
#define UI_MAX_HOSTS 4

/* An embedded file (assets.c, generated). */
typedef struct ui_asset {
  const char *path; /* "/index.html"; NULL ends the table */
  const char *ctype;
  const unsigned char *data;
  size_t len;
} ui_asset;
extern const ui_asset ui_assets[];

/* The headers every answer carries (name, value; NULL ends the list). */
extern const char *const ui_security_headers[][2];

/* Fetch a JWKS URL for the verify and JWK Set panes: 0 with the body (free
 * with jk_free), or an HTTP status for the page (400: a URL that may not be
 * fetched; 502: the fetch failed) with a sentence in
 * err. */
typedef int (*ui_fetch_fn)(const char *url, char **body, size_t *len, char *err, size_t cap);
int ui_fetch_jwks(const char *url, char **body, size_t *len, char *err, size_t cap);

/* What a running workbench knows; read-only while it serves. */
typedef struct ui_app {
  char secret[UI_SECRET_LEN + 1];       /* the per-start secret of the URL */
  char hosts[UI_MAX_HOSTS][112];        /* Host values accepted ("127.0.0.1:8080") */
  size_t nhosts;
  int loopback;                         /* bound to a loopback address */
  int any_ip;                           /* bound to a wildcard: any IP literal with our port */
  unsigned port;
  const char *keyring;                  /* --keyring location, or NULL */
  const unsigned char (*keks)[32];      /* its KEKs ($JWTKIT_KEK), for PostgreSQL */
  size_t nkeks;
  ui_fetch_fn fetch;                    /* ui_fetch_jwks, or a test's */
  const char *plan_dir;                 /* where plans from parameters are made (NULL: $TMPDIR or /tmp) */
} ui_app;

/* The Host values to accept for the address bound and its port (the one
 * picked when the address said 0): the address itself, localhost on
 * loopback, and on a wildcard address any IP literal with the port (a
 * rebinding attack needs a name). */
void ui_app_hosts(ui_app *app, const jk_listen *l, unsigned port);
/* The URL to print: http://HOST:PORT/?token=SECRET (a wildcard address
 * becomes the loopback address of its family). */
void ui_app_url(const ui_app *app, char *out, size_t cap);

/* A request as ui_respond sees it. */
typedef struct ui_req {
  const char *method;
  const char *path; /* without the query */
  const char *(*get)(void *ctx, const char *name); /* header field, case-insensitive; NULL when absent */
  void *ctx;
  const char *body; /* at most UI_MAX_BODY bytes (http.c answers 413 to more) */
  size_t body_len;
} ui_req;

/* The answer.  body is static (an asset, a fixed text) or owned (freed,
 * wiped first, by ui_resp_free). */
typedef struct ui_resp {
  unsigned status;
  const char *ctype;
  const unsigned char *body;
  size_t len;
  char *owned;
  const char *allow;   /* Allow header for 405 */
  const char *refused; /* 403: "host", "origin", "fetch-site" or "secret" (for the log) */
} ui_resp;

/* The whole decision for one request; never fails (500 with a fixed text
 * when memory runs out). */
void ui_respond(const ui_app *app, const ui_req *rq, int64_t now, ui_resp *out);
void ui_resp_free(ui_resp *r);
/* 1 for a path the page uses (an asset or an API endpoint): the only
 * paths the log names. */
int ui_known_path(const char *path);

/* The HTTP server (http.c) on a socket bound and listening (ui.c binds it
 * to learn the port before anything is served).  0, or -1 with err. */
typedef struct ui_server ui_server;
int ui_http_start(ui_server **out, const ui_app *app, int listen_fd, int v6, char *err, size_t cap);
/* Stop serving and free (the listening socket is closed with it). */
void ui_http_stop(ui_server *s);

/* ---------------------------------------------------------------- API */

/* The request's JSON object; strings read from it are unescaped copies,
 * wiped and freed with it (they may hold keys and tokens). */
#define UI_IN_MAX_STRINGS 64
typedef struct ui_in {
  jk_jdoc d;
  jk_jnode nodes[UI_MAX_JSON_VALUES];
  char *s[UI_IN_MAX_STRINGS];
  size_t slen[UI_IN_MAX_STRINGS];
  size_t ns;
} ui_in;

/* One API call: the handler writes the answer's members (each starting
 * with ',') after {"ok":true, or fails with ui_fail. */
typedef struct ui_call {
  const ui_app *app;
  ui_in *in;
  int64_t now;
  jk_buf *out;
  unsigned status;
  char field[32];
  char err[512];
} ui_call;

/* Set the failure (status, the request member at fault or NULL, a
 * sentence); returns -1. */
int ui_fail(ui_call *c, unsigned status, const char *field, const char *fmt, ...) JK_PRINTF(4, 5);
/* The library's failure as a sentence: "strerror: detail". */
void ui_errtext(jwtkit_err rc, const jwtkit_errinfo *info, char *buf, size_t cap);
/* ui_fail with "WHAT: the library's sentence": 500 when memory, I/O or the
 * crypto library failed, else 422.  info may be NULL. */
int ui_fail_lib(ui_call *c, const char *field, const char *what, jwtkit_err rc, const jwtkit_errinfo *info);

/* Members of the request object.  Each returns 1 when present, 0 when
 * absent (or null), -1 after ui_fail when it has another type or an
 * invalid value. */
int ui_in_str(ui_call *c, const char *name, const char **s, size_t *len);
int ui_in_bool(ui_call *c, const char *name, int *v);
int ui_in_int(ui_call *c, const char *name, int64_t lo, int64_t hi, int64_t *v);
/* A string or an array of strings (at most max). */
int ui_in_strs(ui_call *c, const char *name, size_t max, const char **v, size_t *n);
/* A number of seconds or a duration text (common/parse.h). */
int ui_in_duration(ui_call *c, const char *name, int64_t *v);
/* Unix seconds or an RFC 3339 text. */
int ui_in_time(ui_call *c, const char *name, int64_t *v);
/* The algorithms of "algs" (required, at least one); "none" is refused. */
int ui_in_algs(ui_call *c, jwtkit_alg *algs, size_t *n);

/* Answer writing over common/buf: ,"name":"value" and friends. */
void ui_out_str(jk_buf *b, const char *name, const char *s, size_t n);
void ui_out_cstr(jk_buf *b, const char *name, const char *s); /* NULL: null */
void ui_out_int(jk_buf *b, const char *name, int64_t v);
void ui_out_bool(jk_buf *b, const char *name, int v);
/* A library error: ,"name":{"code":"BAD_SIGNATURE","field":"..","message":".."} */
void ui_out_error(jk_buf *b, const char *name, jwtkit_err rc, const jwtkit_errinfo *info);

/* Handlers (one per pane, and the page's start-up information). */
int ui_api_info(ui_call *c);
int ui_api_decode(ui_call *c);
int ui_api_verify(ui_call *c);
int ui_api_generate(ui_call *c);
int ui_api_pem(ui_call *c);
int ui_api_jwks(ui_call *c);
int ui_api_plan(ui_call *c);

/* exp, nbf and iat as the verifier reads them (any JSON number, exact,
 * |value| < 1e15): has 1 when present, bad 1 when present but not such a
 * number (the verifier refuses the token). */
enum { UI_T_EXP, UI_T_NBF, UI_T_IAT, UI_T_COUNT };
typedef struct ui_times {
  struct {
    int has, bad;
    int64_t floor, ceil;
  } t[UI_T_COUNT];
} ui_times;
extern const char *const ui_time_names[UI_T_COUNT];

/* The token's description (decode, verify): ,"header_text", "payload_text"
 * (the library's decode), "header" and "claims" (every member explained),
 * "times".  Returns 0; 1 when the token does not decode (*rc, *info set,
 * nothing written); -1 after ui_fail. */
int ui_token_describe(ui_call *c, const char *token, size_t len, ui_times *times, jwtkit_err *rc,
                      jwtkit_errinfo *info);
/* The token text of the request's "token" member: surrounding blanks and a
 * "Bearer " prefix dropped.  1, 0 when absent or empty, -1 after ui_fail. */
int ui_in_token(ui_call *c, const char **token, size_t *len);

/* Keys for a verifier. */
#define UI_MAX_KEYS 260u
typedef struct ui_keyset {
  jwtkit_key *v[UI_MAX_KEYS];
  size_t n;
} ui_keyset;
void ui_keyset_free(ui_keyset *s);
/* The keys of pasted text (one PEM or JWK key, or a JWK Set) that serve the
 * pinned algorithms, added to s; a key the verifier would not use is
 * listed in notes (JSON string items, each after a ',').  0, or -1 after
 * ui_fail. */
int ui_keys_trust(ui_call *c, const char *field, const char *text, size_t len, const jwtkit_alg *algs, size_t nalgs,
                  ui_keyset *s, jk_buf *notes);
/* One key for alg from pasted text: PEM, JWK, or (HS*) the secret itself
 * by the library's secret rule.  want_private: it must be able to sign.
 * 0, or -1 after ui_fail. */
int ui_key_for(ui_call *c, const char *field, const char *text, size_t len, jwtkit_alg alg, int want_private,
               jwtkit_key **out);
/* ,"name":{"kid","alg","kty","bits","curve","thumbprint","private"}
 * (no thumbprint for a secret: it is a hash of the secret). */
void ui_out_key(jk_buf *b, const char *name, const jwtkit_key *k);

#endif
