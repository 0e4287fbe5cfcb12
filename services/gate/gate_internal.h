/*
 * services/gate/gate_internal.h - jwtkit gate: the gateway core
 * (services/gatecore) behind libmicrohttpd.
 *
 *   config.c   the configuration file (common/ini.h) -> gate_config: the
 *              server's own settings and the core's gw_config
 *   fetcher.c  the core's JWK Set transport: a thread per source fetching
 *              with the shared libcurl client (services/fetch)
 *   http.c     libmicrohttpd: /auth (the core's decision; requests parked
 *              on a refetch are suspended), /healthz, bounded logs
 *   metrics.c  the Prometheus text (common/prom.h)
 *   gate.c     jwtkit_gate_main: options, start-up, signals, reload, stop
 *
 * Threads: libmicrohttpd's pool decides; one fetcher thread per JWK Set
 * source; the main thread waits for signals and destroys retired states
 * (their last reference may go in any thread, and destroying a state joins
 * fetcher threads).
 */
#ifndef JWTKIT_GATE_INTERNAL_H
#define JWTKIT_GATE_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"
#include "common/parse.h"
#include "fetch.h"
#include "gatecore.h"

#define GATE_MAX_CONFIG (1u << 20) /* configuration file bytes */
#define GATE_DEFAULT_LISTEN "127.0.0.1:8081"

/* ---------------------------------------------------------- config.c */

typedef struct gate_config {
  char *path;
  int has_listen;
  jk_listen listen;
  int has_log_level;
  jk_log_level log_level;
  unsigned threads;          /* 0 = number of CPUs */
  unsigned connection_limit; /* 1024 */
  unsigned idle_timeout;     /* seconds (120) */
  unsigned header_timeout;   /* seconds (5): a request's line and headers from the connection's start */
  unsigned seen;             /* [gate] keys given */
  gw_config *core;           /* NULL once handed to a state */
} gate_config;

/* Parse `path`.  -1 with "FILE:LINE: message" in err. */
int gate_config_load(const char *path, gate_config **out, char *err, size_t cap);
/* The same from text; `name` is used in messages. */
int gate_config_parse(const char *name, const char *text, size_t len, gate_config **out, char *err, size_t cap);
void gate_config_free(gate_config *c);
/* The [gate] keys the server reads itself (NULL-terminated). */
const char *const *gate_server_keys(void);

/* --------------------------------------------------------- fetcher.c */

/* The transport's open, start, cancel and close (park and resume are
 * http.c's). */
void gate_fetcher_transport(gw_transport *t);
/* The fetch options of a request (no abort flag); the core's name of the
 * client's result is jk_fetch_gw_result (services/fetch/fetch_gw.h). */
void gate_fetch_opts(const gw_fetch_req *req, jk_fetch_opts *o);
/* One fetch of req as the transport makes it: for a discovery source the
 * issuer's metadata first (OpenID Connect, then RFC 8414 after a 404), then
 * the jwks_uri it names.  http NULL: a one-off connection.  last_uri
 * (GW_MAX_URL + 1 bytes, or NULL): the jwks_uri of the previous fetch; an
 * If-None-Match goes only to the same one, a change is logged
 * (jwks_discovered).  g->gr is the answer for the core (gate_fetched_free
 * after it is used). */
typedef struct gate_fetched {
  gw_fetch_resp gr;
  jk_fetch_resp raw;
  int have_raw;
  char uri[GW_MAX_URL + 1];
  char detail[640];
} gate_fetched;
void gate_fetch(jk_fetcher *http, const gw_fetch_req *req, atomic_int *abort, char *last_uri, gate_fetched *g);
void gate_fetched_free(gate_fetched *g);

/* ---------------------------------------------------------- check.c */

/* --check --fetch: fetch every JWK Set of st once (no cache, no retry) and
 * report per route on out: reachable, keys, kids, the keys for the route's
 * algs.  Returns the number of routes whose set failed (unreachable, not a
 * set, or no key for the route's algs). */
size_t gate_check_fetch(gw_state *st, FILE *out);

/* ------------------------------------------------------------ http.c */

typedef struct gate_counters {
  atomic_ulong reloads_ok, reloads_failed;
  atomic_long suspended; /* connections parked on a refetch right now */
  int64_t started_at;
} gate_counters;
extern gate_counters g_gate;

typedef struct gate_app gate_app;
struct svc_guard;

/* The HTTP front: holds the current state (takes the caller's reference). */
gate_app *gate_http_new(gw_state *st);
/* Park and resume of the transport (MHD suspend / resume). */
void gate_http_transport(gw_transport *t);
/* Start libmicrohttpd on cfg's address; *port gets the bound port.  -1 with
 * err. */
int gate_http_start(gate_app *a, const gate_config *cfg, const jk_listen *l, unsigned *port, char *err, size_t cap);
/* The current state with a reference. */
gw_state *gate_http_state(gate_app *a);
/* Publish a new state (takes its reference). */
void gate_http_swap(gate_app *a, gw_state *st);
/* Stop accepting connections (keep serving those open). */
void gate_http_quiesce(gate_app *a);
/* Stop the daemon (every parked connection must have been resumed). */
void gate_http_stop(gate_app *a);
void gate_http_free(gate_app *a);
/* The running connection guard (services/common/connguard.h), NULL when none. */
struct svc_guard *gate_http_guard(gate_app *a);

/* --------------------------------------------------------- metrics.c */

/* Prometheus text for st (may be NULL) and guard (may be NULL); free *out
 * with jk_free. */
int gate_metrics_render(gw_state *st, struct svc_guard *guard, char **out, size_t *len);

#endif
