/*
 * ngx_http_jwtkit_module: JWT verification inside nginx, on jwtkit's
 * gateway core (services/gatecore) - the same route policy, verification
 * and decision as `jwtkit gate`, without the auth_request round trip.
 *
 * Configuration: every directive's value is checked by the core's route
 * vocabulary (gw_route_set, as the gate's INI keys) when it is read, with
 * nginx's file:line in the message.  Each location where auth_jwt is on
 * becomes one route of a gw_config (a location that only inherits shares
 * its parent's route); postconfiguration builds the gw_state (key files
 * loaded, verifiers built) once per configuration load, in the master, and
 * the workers inherit it.  A reload builds a new state; the old one goes
 * with the old cycle's pool.
 *
 * Requests: the access phase decides with gw_decide on the location's
 * route; the $jwt_* variables decide lazily on their first lookup (so
 * rewrite-phase `if`/`map` can use claims) and the access phase reuses the
 * result.  Subrequests are not checked (nginx's access phase skips them).
 *
 * JWK Sets (auth_jwt_jwks): one slot per URL in a shared memory zone
 * holds the core's source state machine (gw_jwks_sm, under the zone's
 * mutex, which nginx's master releases when a worker dies holding it), the last good set as received and its generation.  Any worker may
 * run the fetch the machine asks for - one at a time, under a lease (the
 * lease's number and expiry) - in nginx's thread pool with jwtkit_fetch;
 * each worker parses the set again when the slot's generation changes and
 * publishes it to its own gw_source (gw_source_publish), so all workers
 * verify with the same set.  A token with an unknown kid waits (parked,
 * the worker keeps running) for one rate-limited refetch.
 *
 * Migration mode (auth_jwt_legacy_hs256) is the core's: HS256 tokens with
 * the legacy secret pass until the deadline, through a verifier of their own.
 *
 * Also: the core's token cache (auth_jwt_token_cache), the counters of all
 * workers (auth_jwt_status), $jwt_header_NAME.
 */
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/hex.h"
#include "common/log.h"
#include "crypto/seal.h"
#include "fetch.h"
#include "fetch_gw.h"
#include "gatecore.h"
#include "jwtkit_args.h"
#include "jwtkit_status.h"

#define JK_ERR 512
#define JK_CLAIM_MAX 4096 /* bytes of one rendered $jwt_claim_NAME */

/* A directive's value and where it was given (messages at merge time). */
typedef struct {
  ngx_str_t value;
  u_char *file; /* NUL-terminated copy */
  ngx_uint_t line;
} jk_val;

typedef struct {
  ngx_flag_t enable; /* auth_jwt: NGX_CONF_UNSET, 0 off, 1 on */
  ngx_str_t realm;
  jk_val *enable_at;
  jk_val *algs;           /* the names joined by ',' */
  jk_val *issuer;
  jk_val *leeway;
  jk_val *type;
  jk_val *token_cookie;   /* more token sources (core keys token_cookie, token_header) */
  jk_val *token_header;
  jk_val *jwks;           /* URL */
  jk_val *legacy_file;    /* auth_jwt_legacy_hs256 */
  jk_val *legacy_deadline;
  ngx_flag_t jwks_http;   /* allow_http */
  ngx_array_t *key_files; /* jk_val */
  ngx_array_t *audiences; /* jk_val */
  ngx_array_t *claims;    /* jka_claim_req */
  ngx_flag_t token_cache; /* auth_jwt_token_cache: the route uses the token cache */
  ngx_uint_t status_json; /* auth_jwt_status json */
  ngx_flag_t own;         /* a jwt directive was given at this level */
  ngx_int_t route;        /* in the main conf's gw_config; -1: off */
  ngx_str_t ch_missing, ch_invalid, ch_scope;
} jk_loc_conf;

/* One JWK Set URL in the shared zone. */
typedef struct {
  gw_jwks_sm sm;           /* the core's state machine, under the zone's mutex */
  uint64_t lease;          /* the running fetch's lease number (0: none) */
  uint64_t leases;         /* leases given */
  ngx_pid_t lease_pid;
  int64_t lease_until_ms;  /* monotonic: past it, the fetch counts as failed */
  uint64_t gen;            /* generation of the set below (sm.gen when published; 0: none) */
  uint64_t done;           /* fetches ended */
  size_t cap, len;
  char url[GW_MAX_URL + 1];
  u_char body[1];          /* cap bytes: the last good set as received */
} jk_slot;

#define JK_MAX_SLOTS GW_MAX_ROUTES
#define JK_R_SCOPE JKS_R_SCOPE /* the module's own reason: auth_jwt_require_claim not met */
/* Counters of all workers (auth_jwt_status); kept across reloads with the zone. */
typedef struct {
  ngx_atomic_t decisions[GW_R_COUNT + 1];
  ngx_atomic_t refetch_waited, refetch_cooldown;
} jk_stats;
typedef struct {
  ngx_uint_t nslots;
  jk_slot *slot[JK_MAX_SLOTS];
  jk_stats stats;
} jk_shm;

typedef struct jk_main_conf_s jk_main_conf;

/* A source in this process: the state's gw_source, its slot, its fetch. */
typedef struct {
  jk_main_conf *m;
  gw_source *src;
  const gw_jwks_def *def;
  jk_slot *slot;
  ngx_shmtx_t *mtx;     /* the zone's (slab pool's) mutex: nginx frees it when its holder dies */
  uint64_t local_gen;   /* generation published to src */
  ngx_thread_task_t *task;
  ngx_uint_t fetching;  /* this worker's task runs */
  uint64_t lease;       /* ... under this lease */
  ngx_queue_t waiters;  /* parked requests (jk_ctx.q) */
  ngx_uint_t nwaiters;
} jk_src;

typedef struct {
  jk_src *js;
  gw_fetch_req req;
  jk_fetch_resp resp;
} jk_task_ctx;

struct jk_main_conf_s {
  gw_config *cfg;  /* until postconfiguration hands it to the state */
  gw_state *state; /* NULL when no location uses auth_jwt */
  jk_src *src;     /* one per JWK Set source of the state */
  ngx_uint_t nsrc;
  ngx_shm_zone_t *zone;
  jk_stats *stats;  /* in the zone; NULL without one */
  ngx_uint_t status_used; /* auth_jwt_status appears */
  ngx_uint_t unavailable; /* the answer when no key set can be had: 503 (default) or 401 */
  ngx_uint_t cache_entries; /* auth_jwt_token_cache ENTRIES (http level); 0: the default */
  ngx_uint_t cache_on;      /* a route uses the token cache */
  ngx_str_t claim_vars[GW_MAX_HEADERS]; /* with the cache: claims the configuration's $jwt_claim_* name */
  ngx_uint_t nclaim_vars;
  ngx_thread_pool_t *tp;
  ngx_event_t timer;
};

/* The decision of one request, made once (access phase or first $jwt_*). */
typedef struct {
  ngx_int_t route;
  ngx_uint_t status; /* 0 allowed, 401, 403 */
  ngx_uint_t missing;
  jwtkit_claims *claims; /* verified (also when a claim requirement failed) */
  char reason[48];
  jk_src *refetch;       /* the decision asks for a refetch of this source */
  int counted;           /* its reason (GW_R_*, JK_R_SCOPE) for auth_jwt_status */
  ngx_uint_t cached;     /* allowed from the token cache: no claims object, but ... */
  ngx_str_t hv[GW_MAX_HEADERS]; /* ... the cached renderings of the claim variables (data NULL: none) */
  const char *token;     /* ... and the token, byte for byte the one verified ($jwt_payload) */
  size_t token_len;
  ngx_uint_t waiting, waited;
  uint64_t until_done;   /* parked until the slot's done count reaches this ... */
  int64_t deadline_ms;   /* ... or this passes */
  ngx_queue_t q;
  ngx_http_request_t *r;
} jk_ctx;

static ngx_int_t jk_preconf(ngx_conf_t *cf);
static ngx_int_t jk_postconf(ngx_conf_t *cf);
static void *jk_create_main(ngx_conf_t *cf);
static void *jk_create_loc(ngx_conf_t *cf);
static char *jk_merge_loc(ngx_conf_t *cf, void *parent, void *child);
static char *jk_set_auth_jwt(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *jk_set_route_value(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *jk_set_route_list(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *jk_set_algs(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *jk_set_claim(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *jk_set_jwks(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *jk_set_legacy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *jk_set_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *jk_set_settings(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *jk_set_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static ngx_int_t jk_init_process(ngx_cycle_t *cycle);

/* cmd->post: the core's key for a directive */
static char k_issuer[] = "issuer", k_leeway[] = "leeway", k_typ[] = "typ", k_key_file[] = "key_file",
            k_audience[] = "audience", k_token_cookie[] = "token_cookie", k_token_header[] = "token_header";

static ngx_command_t jk_commands[] = {
    {ngx_string("auth_jwt"), NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     jk_set_auth_jwt, NGX_HTTP_LOC_CONF_OFFSET, 0, NULL},
    {ngx_string("auth_jwt_algs"), NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_1MORE,
     jk_set_algs, NGX_HTTP_LOC_CONF_OFFSET, 0, NULL},
    {ngx_string("auth_jwt_key_file"), NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     jk_set_route_list, NGX_HTTP_LOC_CONF_OFFSET, offsetof(jk_loc_conf, key_files), k_key_file},
    {ngx_string("auth_jwt_issuer"), NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     jk_set_route_value, NGX_HTTP_LOC_CONF_OFFSET, offsetof(jk_loc_conf, issuer), k_issuer},
    {ngx_string("auth_jwt_audience"), NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_1MORE,
     jk_set_route_list, NGX_HTTP_LOC_CONF_OFFSET, offsetof(jk_loc_conf, audiences), k_audience},
    {ngx_string("auth_jwt_leeway"), NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     jk_set_route_value, NGX_HTTP_LOC_CONF_OFFSET, offsetof(jk_loc_conf, leeway), k_leeway},
    {ngx_string("auth_jwt_token_cookie"), NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     jk_set_route_value, NGX_HTTP_LOC_CONF_OFFSET, offsetof(jk_loc_conf, token_cookie), k_token_cookie},
    {ngx_string("auth_jwt_token_header"), NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     jk_set_route_value, NGX_HTTP_LOC_CONF_OFFSET, offsetof(jk_loc_conf, token_header), k_token_header},
    {ngx_string("auth_jwt_type"), NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     jk_set_route_value, NGX_HTTP_LOC_CONF_OFFSET, offsetof(jk_loc_conf, type), k_typ},
    {ngx_string("auth_jwt_jwks"), NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE12,
     jk_set_jwks, NGX_HTTP_LOC_CONF_OFFSET, 0, NULL},
    {ngx_string("auth_jwt_legacy_hs256"), NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE2,
     jk_set_legacy, NGX_HTTP_LOC_CONF_OFFSET, 0, NULL},
    {ngx_string("auth_jwt_jwks_settings"), NGX_HTTP_MAIN_CONF | NGX_CONF_1MORE, jk_set_settings, NGX_HTTP_MAIN_CONF_OFFSET,
     0, NULL},
    {ngx_string("auth_jwt_token_cache"), NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE1,
     jk_set_cache, NGX_HTTP_LOC_CONF_OFFSET, 0, NULL},
    {ngx_string("auth_jwt_status"), NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS | NGX_CONF_TAKE1, jk_set_status,
     NGX_HTTP_LOC_CONF_OFFSET, 0, NULL},
    {ngx_string("auth_jwt_require_claim"),
     NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF | NGX_CONF_TAKE13, jk_set_claim,
     NGX_HTTP_LOC_CONF_OFFSET, 0, NULL},
    ngx_null_command};

static ngx_http_module_t jk_module_ctx = {
    jk_preconf,  jk_postconf, /* pre/postconfiguration */
    jk_create_main, NULL,     /* main */
    NULL,        NULL,        /* server */
    jk_create_loc, jk_merge_loc /* location */
};

ngx_module_t ngx_http_jwtkit_module = {NGX_MODULE_V1,
                                       &jk_module_ctx,
                                       jk_commands,
                                       NGX_HTTP_MODULE,
                                       NULL,
                                       NULL,
                                       jk_init_process,
                                       NULL,
                                       NULL,
                                       NULL,
                                       NULL,
                                       NGX_MODULE_V1_PADDING};

/* ================================================================ config */

static char *jk_cstr(ngx_pool_t *p, const u_char *s, size_t n) {
  char *c = ngx_pnalloc(p, n + 1);
  if (c != NULL) {
    ngx_memcpy(c, s, n);
    c[n] = '\0';
  }
  return c;
}

static jk_val *jk_val_here(ngx_conf_t *cf, ngx_str_t *v) {
  jk_val *x = ngx_pcalloc(cf->pool, sizeof *x);
  if (x == NULL) return NULL;
  x->value = *v; /* the parser's copies live in the cycle's pool, NUL-terminated */
  x->file = (u_char *)jk_cstr(cf->pool, cf->conf_file->file.name.data, cf->conf_file->file.name.len);
  x->line = cf->conf_file->line;
  return x->file ? x : NULL;
}

/* An error at a recorded place (merge time: cf points at the end of the block). */
static char *jk_error_at(ngx_conf_t *cf, const jk_val *at, const char *msg) {
  if (at == NULL) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", msg);
    return NGX_CONF_ERROR;
  }
  ngx_conf_file_t *saved = cf->conf_file, here = *saved;
  here.file.name.data = at->file;
  here.file.name.len = ngx_strlen(at->file);
  here.line = at->line;
  cf->conf_file = &here;
  ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", msg);
  cf->conf_file = saved;
  return NGX_CONF_ERROR;
}

/* A route key's value checked by the core's vocabulary on a scratch route. */
static int jk_check_value(const char *key, const char *value, char *err, size_t cap) {
  gw_config *c = gw_config_new();
  if (c == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  gw_route_cfg *r = gw_config_add_route(c, "check", 0, err, cap);
  int rc = r ? gw_route_set(r, key, value, err, cap) : -1;
  gw_config_free(c);
  return rc;
}

static void jk_state_cleanup(void *data);

static void *jk_create_main(ngx_conf_t *cf) {
  jk_main_conf *m = ngx_pcalloc(cf->pool, sizeof *m);
  ngx_pool_cleanup_t *cln = ngx_pool_cleanup_add(cf->pool, 0);
  if (m == NULL || cln == NULL) return NULL;
  /* the configuration's policy and state go with its pool (reload, nginx -t) */
  cln->handler = jk_state_cleanup;
  cln->data = m;
  return m;
}

static void *jk_create_loc(ngx_conf_t *cf) {
  jk_loc_conf *c = ngx_pcalloc(cf->pool, sizeof *c);
  if (c == NULL) return NULL;
  c->enable = NGX_CONF_UNSET;
  c->enable_at = NGX_CONF_UNSET_PTR;
  c->algs = NGX_CONF_UNSET_PTR;
  c->issuer = NGX_CONF_UNSET_PTR;
  c->leeway = NGX_CONF_UNSET_PTR;
  c->type = NGX_CONF_UNSET_PTR;
  c->token_cookie = NGX_CONF_UNSET_PTR;
  c->token_header = NGX_CONF_UNSET_PTR;
  c->jwks = NGX_CONF_UNSET_PTR;
  c->legacy_file = NGX_CONF_UNSET_PTR;
  c->legacy_deadline = NGX_CONF_UNSET_PTR;
  c->jwks_http = NGX_CONF_UNSET;
  c->key_files = NGX_CONF_UNSET_PTR;
  c->audiences = NGX_CONF_UNSET_PTR;
  c->claims = NGX_CONF_UNSET_PTR;
  c->token_cache = NGX_CONF_UNSET;
  c->route = -1;
  return c;
}

static char *jk_set_auth_jwt(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
  jk_loc_conf *c = conf;
  ngx_str_t *a = cf->args->elts;
  char err[JK_ERR];
  (void)cmd;
  if (c->enable != NGX_CONF_UNSET) return "is duplicate";
  c->own = 1;
  if (a[1].len == 3 && ngx_strncmp(a[1].data, "off", 3) == 0) {
    c->enable = 0;
    return NGX_CONF_OK;
  }
  if (jka_realm_check((const char *)a[1].data, a[1].len, err, sizeof err) != 0) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt: %s", err);
    return NGX_CONF_ERROR;
  }
  c->enable = 1;
  c->realm = a[1];
  if ((c->enable_at = jk_val_here(cf, &a[1])) == NULL) return NGX_CONF_ERROR;
  return NGX_CONF_OK;
}

static char *jk_set_route_value(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
  jk_val **slot = (jk_val **)((char *)conf + cmd->offset);
  ngx_str_t *a = cf->args->elts;
  char err[JK_ERR];
  if (*slot != NGX_CONF_UNSET_PTR) return "is duplicate";
  if (jk_check_value(cmd->post, (const char *)a[1].data, err, sizeof err) != 0) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V: %s", &cmd->name, err);
    return NGX_CONF_ERROR;
  }
  ((jk_loc_conf *)conf)->own = 1;
  return (*slot = jk_val_here(cf, &a[1])) ? NGX_CONF_OK : NGX_CONF_ERROR;
}

/* Repeatable keys (each argument one value): key_file, audience. */
static char *jk_set_route_list(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
  ngx_array_t **slot = (ngx_array_t **)((char *)conf + cmd->offset);
  ngx_str_t *a = cf->args->elts;
  char err[JK_ERR];
  if (*slot == NGX_CONF_UNSET_PTR && (*slot = ngx_array_create(cf->pool, 2, sizeof(jk_val))) == NULL)
    return NGX_CONF_ERROR;
  for (ngx_uint_t i = 1; i < cf->args->nelts; i++) {
    if (a[i].len == 0 || jk_check_value(cmd->post, (const char *)a[i].data, err, sizeof err) != 0) {
      ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V: %s", &cmd->name, a[i].len ? err : "an empty value");
      return NGX_CONF_ERROR;
    }
    if ((*slot)->nelts >= GW_MAX_LIST) {
      ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V: at most %ui values", &cmd->name, (ngx_uint_t)GW_MAX_LIST);
      return NGX_CONF_ERROR;
    }
    /* a relative key file is relative to the configuration's prefix, as nginx's own files */
    if (cmd->post == k_key_file && ngx_conf_full_name(cf->cycle, &a[i], 1) != NGX_OK) return NGX_CONF_ERROR;
    jk_val *v = ngx_array_push(*slot), *h = jk_val_here(cf, &a[i]);
    if (v == NULL || h == NULL) return NGX_CONF_ERROR;
    *v = *h;
  }
  ((jk_loc_conf *)conf)->own = 1;
  return NGX_CONF_OK;
}

/* auth_jwt_algs ES256 RS256;  ->  algs = ES256,RS256 (the core refuses none and HS*) */
static char *jk_set_algs(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
  jk_loc_conf *c = conf;
  ngx_str_t *a = cf->args->elts, joined;
  char err[JK_ERR];
  (void)cmd;
  if (c->algs != NGX_CONF_UNSET_PTR) return "is duplicate";
  size_t n = 0;
  for (ngx_uint_t i = 1; i < cf->args->nelts; i++) n += a[i].len + 1;
  if ((joined.data = ngx_pnalloc(cf->pool, n + 1)) == NULL) return NGX_CONF_ERROR;
  u_char *p = joined.data;
  for (ngx_uint_t i = 1; i < cf->args->nelts; i++) {
    if (a[i].len == 0 || ngx_strlchr(a[i].data, a[i].data + a[i].len, ',') != NULL) {
      ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt_algs: one algorithm per argument, separated by spaces");
      return NGX_CONF_ERROR;
    }
    if (i > 1) *p++ = ',';
    p = ngx_cpymem(p, a[i].data, a[i].len);
  }
  *p = '\0';
  joined.len = (size_t)(p - joined.data);
  if (jk_check_value("algs", (const char *)joined.data, err, sizeof err) != 0) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt_algs: %s", err);
    return NGX_CONF_ERROR;
  }
  c->own = 1;
  return (c->algs = jk_val_here(cf, &joined)) ? NGX_CONF_OK : NGX_CONF_ERROR;
}

static char *jk_set_claim(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
  jk_loc_conf *c = conf;
  ngx_str_t *a = cf->args->elts;
  const char *args[3];
  size_t lens[3];
  char err[JK_ERR];
  (void)cmd;
  size_t n = cf->args->nelts - 1;
  for (size_t i = 0; i < n && i < 3; i++) {
    args[i] = (const char *)a[i + 1].data;
    lens[i] = a[i + 1].len;
  }
  if (c->claims == NGX_CONF_UNSET_PTR && (c->claims = ngx_array_create(cf->pool, 2, sizeof(jka_claim_req))) == NULL)
    return NGX_CONF_ERROR;
  if (c->claims->nelts >= GW_MAX_LIST) return "is given too often (at most 64 per level)";
  jka_claim_req *q = ngx_array_push(c->claims);
  if (q == NULL) return NGX_CONF_ERROR;
  if (jka_claim_req_parse(args, lens, n, q, err, sizeof err) != 0) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt_require_claim: %s", err);
    return NGX_CONF_ERROR;
  }
  c->own = 1;
  return NGX_CONF_OK;
}

/* auth_jwt_jwks URL [allow_http]; */
static char *jk_set_jwks(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
  jk_loc_conf *c = conf;
  ngx_str_t *a = cf->args->elts;
  char err[JK_ERR];
  (void)cmd;
  if (c->jwks != NGX_CONF_UNSET_PTR) return "is duplicate";
  c->jwks_http = 0;
  if (cf->args->nelts == 3) {
    if (!(a[2].len == 10 && ngx_strncmp(a[2].data, "allow_http", 10) == 0)) {
      ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt_jwks: unknown option \"%V\" (allow_http is the only one)",
                         &a[2]);
      return NGX_CONF_ERROR;
    }
    c->jwks_http = 1;
  }
  if (jk_check_value("jwks_url", (const char *)a[1].data, err, sizeof err) != 0) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt_jwks: %s", err);
    return NGX_CONF_ERROR;
  }
  if (!c->jwks_http && ngx_strncasecmp(a[1].data, (u_char *)"http://", 7) == 0) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "auth_jwt_jwks: %V is plain http://; use https:// or add allow_http (test set-ups only)",
                       &a[1]);
    return NGX_CONF_ERROR;
  }
  c->own = 1;
  return (c->jwks = jk_val_here(cf, &a[1])) ? NGX_CONF_OK : NGX_CONF_ERROR;
}

/* auth_jwt_legacy_hs256 secret_file=PATH deadline=TIME; (migration mode) */
static char *jk_set_legacy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
  jk_loc_conf *c = conf;
  ngx_str_t *a = cf->args->elts, file, dl;
  const char *args[2] = {(const char *)a[1].data, (const char *)a[2].data}, *f, *d;
  size_t lens[2] = {a[1].len, a[2].len}, fl, dll;
  char err[JK_ERR];
  (void)cmd;
  if (c->legacy_file != NGX_CONF_UNSET_PTR) return "is duplicate";
  if (jka_legacy_parse(args, lens, 2, &f, &fl, &d, &dll, err, sizeof err) != 0) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt_legacy_hs256: %s", err);
    return NGX_CONF_ERROR;
  }
  file.len = fl;
  dl.len = dll;
  if ((file.data = (u_char *)jk_cstr(cf->pool, (const u_char *)f, fl)) == NULL ||
      (dl.data = (u_char *)jk_cstr(cf->pool, (const u_char *)d, dll)) == NULL ||
      ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK)
    return NGX_CONF_ERROR;
  if (jk_check_value("legacy_deadline", (const char *)dl.data, err, sizeof err) != 0) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt_legacy_hs256: %s", err);
    return NGX_CONF_ERROR;
  }
  /* the library's secret-file rule, as the core applies it: owner-only mode
   * on the opened file, never a PEM or JWK key taken as a secret */
  jwtkit_key *k = NULL;
  jwtkit_errinfo info = {0};
  jwtkit_err e = jwtkit_key_from_secret_file(&k, JWTKIT_ALG_HS256, (const char *)file.data, &info);
  jwtkit_key_free(k);
  if (e != JWTKIT_OK) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt_legacy_hs256: %s (%s)", info.msg, jwtkit_strerror(e));
    return NGX_CONF_ERROR;
  }
  c->own = 1;
  if ((c->legacy_file = jk_val_here(cf, &file)) == NULL || (c->legacy_deadline = jk_val_here(cf, &dl)) == NULL)
    return NGX_CONF_ERROR;
  return NGX_CONF_OK;
}

/* The configuration of the core, made by the first directive that needs it. */
static gw_config *jk_cfg(jk_main_conf *m) {
  if (m->cfg == NULL) m->cfg = gw_config_new(); /* token_cache: set in postconfiguration */
  return m->cfg;
}

/* auth_jwt_token_cache on | off; (http, server, location: the routes below
 * use the cache or not) or ENTRIES (http only: on, with that many entries
 * per worker).  One cache per worker, shared by the routes that use it. */
static char *jk_set_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
  jk_loc_conf *c = conf;
  jk_main_conf *m = ngx_http_conf_get_module_main_conf(cf, ngx_http_jwtkit_module);
  ngx_str_t *a = cf->args->elts;
  char err[JK_ERR];
  (void)cmd;
  if (c->token_cache != NGX_CONF_UNSET) return "is duplicate";
  const char *v = (const char *)a[1].data;
  if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0) {
    c->token_cache = v[1] == 'n';
  } else if (!(cf->cmd_type & NGX_HTTP_MAIN_CONF)) {
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "auth_jwt_token_cache: \"%s\" here: a server or location takes on or off (a number of "
                       "entries is an http-level setting)", v);
    return NGX_CONF_ERROR;
  } else {
    gw_config *scratch = gw_config_new(); /* the core's check of the number */
    int bad = scratch == NULL || gw_config_set(scratch, "token_cache", v, err, sizeof err) != 0;
    size_t n = bad ? 0 : scratch->token_cache;
    gw_config_free(scratch);
    if (bad || n == 0) {
      ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt_token_cache: on, off or a number of entries: %s",
                         bad ? err : "0 entries (use off)");
      return NGX_CONF_ERROR;
    }
    m->cache_entries = n;
    c->token_cache = 1;
  }
  c->own = 1; /* a location that only changes this has a route of its own */
  return NGX_CONF_OK;
}

/* auth_jwt_jwks_settings timeout=5s cooldown=30s ... unavailable=503; (http) */
static char *jk_set_settings(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
  jk_main_conf *m = conf;
  ngx_str_t *a = cf->args->elts;
  char err[JK_ERR], key[64];
  (void)cmd;
  if (jk_cfg(m) == NULL) return NGX_CONF_ERROR;
  for (ngx_uint_t i = 1; i < cf->args->nelts; i++) {
    const char *k, *v;
    size_t kl, vl;
    if (jka_setting_split((const char *)a[i].data, a[i].len, &k, &kl, &v, &vl, err, sizeof err) != 0) {
      ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt_jwks_settings: %s", err);
      return NGX_CONF_ERROR;
    }
    if (kl == 11 && memcmp(k, "unavailable", 11) == 0) {
      unsigned st;
      if (jka_unavailable(v, vl, &st, err, sizeof err) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt_jwks_settings: %s", err);
        return NGX_CONF_ERROR;
      }
      m->unavailable = st;
      continue;
    }
    snprintf(key, sizeof key, "jwks_%.*s", (int)kl, k); /* the core's key, its checks (given twice: refused) */
    int rc = gw_config_set(m->cfg, key, v, err, sizeof err);
    if (rc != 0) {
      ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt_jwks_settings: %s", rc > 0 ? "unknown setting" : err);
      return NGX_CONF_ERROR;
    }
  }
  char scratch[JK_ERR];
  if (m->cfg->jwks.min_ttl > m->cfg->jwks.max_ttl) {
    snprintf(scratch, sizeof scratch, "min_ttl (%lld s) is larger than max_ttl (%lld s)",
             (long long)m->cfg->jwks.min_ttl, (long long)m->cfg->jwks.max_ttl);
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt_jwks_settings: %s", scratch);
    return NGX_CONF_ERROR;
  }
  return NGX_CONF_OK;
}

static char *jk_challenge_str(ngx_conf_t *cf, ngx_str_t *out, const ngx_str_t *realm, jka_challenge_kind k) {
  char buf[JKA_MAX_REALM + 64];
  long n = jka_challenge(buf, sizeof buf, (const char *)realm->data, realm->len, k);
  if (n < 0 || (out->data = ngx_pnalloc(cf->pool, (size_t)n)) == NULL) return NGX_CONF_ERROR;
  ngx_memcpy(out->data, buf, (size_t)n);
  out->len = (size_t)n;
  return NGX_CONF_OK;
}

/* Each key file on its own, with the route's algorithms: an unreadable
 * file or a private key is reported where auth_jwt_key_file names it. */
static char *jk_check_key_files(ngx_conf_t *cf, const gw_route_cfg *rc, ngx_array_t *files) {
  jk_val *f = files->elts;
  char err[JK_ERR];
  for (ngx_uint_t i = 0; i < files->nelts; i++) {
    gw_config *c = gw_config_new();
    gw_route_cfg *r = c ? gw_config_add_route(c, rc->name, 0, err, sizeof err) : NULL;
    if (r == NULL) {
      gw_config_free(c);
      return NGX_CONF_ERROR;
    }
    r->nalgs = rc->nalgs;
    memcpy(r->algs, rc->algs, sizeof r->algs);
    gw_state *st = NULL;
    gw_build b = {.generation = 1};
    if (gw_config_set(c, "token_cache", "0", err, sizeof err) != 0 ||
        gw_route_set(r, "key_file", (const char *)f[i].value.data, err, sizeof err) != 0 ||
        gw_state_build(c, &b, &st, err, sizeof err) != 0) {
      gw_config_free(c);
      char msg[JK_ERR + 32];
      snprintf(msg, sizeof msg, "auth_jwt_key_file: %s", err);
      return jk_error_at(cf, &f[i], msg);
    }
    gw_state_release(st); /* frees c */
  }
  return NGX_CONF_OK;
}

#define JK_MERGE(f) ngx_conf_merge_ptr_value(conf->f, prev->f, NULL)

static char *jk_merge_loc(ngx_conf_t *cf, void *parent, void *child) {
  jk_loc_conf *prev = parent, *conf = child;
  jk_main_conf *m = ngx_http_conf_get_module_main_conf(cf, ngx_http_jwtkit_module);
  char err[JK_ERR];

  if (conf->enable == NGX_CONF_UNSET) {
    conf->enable = prev->enable == NGX_CONF_UNSET ? 0 : prev->enable;
    conf->realm = prev->realm;
    conf->enable_at = prev->enable_at;
  }
  ngx_conf_merge_ptr_value(conf->enable_at, prev->enable_at, NULL);
  JK_MERGE(algs);
  JK_MERGE(issuer);
  JK_MERGE(leeway);
  JK_MERGE(type);
  JK_MERGE(token_cookie);
  JK_MERGE(token_header);
  if (conf->jwks == NGX_CONF_UNSET_PTR) {
    conf->jwks = prev->jwks == NGX_CONF_UNSET_PTR ? NULL : prev->jwks;
    conf->jwks_http = prev->jwks_http;
  }
  ngx_conf_merge_value(conf->jwks_http, prev->jwks_http, 0);
  JK_MERGE(key_files);
  JK_MERGE(legacy_file);
  JK_MERGE(legacy_deadline);
  JK_MERGE(audiences);
  JK_MERGE(claims);
  ngx_conf_merge_value(conf->token_cache, prev->token_cache, 0);
  if (!conf->enable) return NGX_CONF_OK;

  if (!conf->own && prev->route >= 0) { /* everything inherited: the parent's route */
    conf->route = prev->route;
    conf->ch_missing = prev->ch_missing;
    conf->ch_invalid = prev->ch_invalid;
    conf->ch_scope = prev->ch_scope;
    return NGX_CONF_OK;
  }
  if (conf->algs == NULL)
    return jk_error_at(cf, conf->enable_at,
                       "auth_jwt_algs is required where auth_jwt is on (there is no default algorithm; "
                       "e.g. auth_jwt_algs ES256;)");
  if (conf->key_files == NULL && conf->jwks == NULL)
    return jk_error_at(cf, conf->enable_at,
                       "auth_jwt needs auth_jwt_key_file (a PEM public key, JWK or JWK Set file) or auth_jwt_jwks URL");
  if (jk_cfg(m) == NULL) return NGX_CONF_ERROR;
  /* the route's name in the core's messages: where auth_jwt turned it on */
  char name[48];
  snprintf(name, sizeof name, "line%lu", (unsigned long)conf->enable_at->line);
  for (size_t i = 0; i < m->cfg->nroutes; i++)
    if (strcmp(m->cfg->routes[i].name, name) == 0) {
      snprintf(name, sizeof name, "line%lu.%zu", (unsigned long)conf->enable_at->line, m->cfg->nroutes);
      break;
    }
  gw_route_cfg *rc = gw_config_add_route(m->cfg, name, (int)conf->enable_at->line, err, sizeof err);
  if (rc == NULL) return jk_error_at(cf, conf->enable_at, err);
  conf->route = (ngx_int_t)m->cfg->nroutes - 1;

  int bad = gw_route_set(rc, "algs", (const char *)conf->algs->value.data, err, sizeof err);
  if (!bad && conf->issuer) bad = gw_route_set(rc, "issuer", (const char *)conf->issuer->value.data, err, sizeof err);
  if (!bad && conf->leeway) bad = gw_route_set(rc, "leeway", (const char *)conf->leeway->value.data, err, sizeof err);
  if (!bad && conf->type) bad = gw_route_set(rc, "typ", (const char *)conf->type->value.data, err, sizeof err);
  if (!bad && !conf->token_cache) bad = gw_route_set(rc, "token_cache", "off", err, sizeof err);
  if (conf->token_cache) m->cache_on = 1;
  if (!bad && conf->token_cookie)
    bad = gw_route_set(rc, "token_cookie", (const char *)conf->token_cookie->value.data, err, sizeof err);
  if (!bad && conf->token_header)
    bad = gw_route_set(rc, "token_header", (const char *)conf->token_header->value.data, err, sizeof err);
  if (!bad && conf->jwks) bad = gw_route_set(rc, "jwks_url", (const char *)conf->jwks->value.data, err, sizeof err);
  if (!bad && conf->jwks && conf->jwks_http) bad = gw_route_set(rc, "allow_http_jwks", "true", err, sizeof err);
  if (!bad && conf->legacy_file) {
    bad = gw_route_set(rc, "legacy_hs256_secret_file", (const char *)conf->legacy_file->value.data, err, sizeof err);
    if (!bad) bad = gw_route_set(rc, "legacy_deadline", (const char *)conf->legacy_deadline->value.data, err, sizeof err);
  }
  jk_val *v = conf->audiences ? conf->audiences->elts : NULL;
  for (ngx_uint_t i = 0; !bad && conf->audiences && i < conf->audiences->nelts; i++)
    bad = gw_route_set(rc, "audience", (const char *)v[i].value.data, err, sizeof err);
  v = conf->key_files ? conf->key_files->elts : NULL;
  for (ngx_uint_t i = 0; !bad && conf->key_files && i < conf->key_files->nelts; i++)
    bad = gw_route_set(rc, "key_file", (const char *)v[i].value.data, err, sizeof err);
  if (bad) return jk_error_at(cf, conf->enable_at, err);
  if (conf->key_files && jk_check_key_files(cf, rc, conf->key_files) != NGX_CONF_OK) return NGX_CONF_ERROR;

  if (jk_challenge_str(cf, &conf->ch_missing, &conf->realm, JKA_CH_MISSING) != NGX_CONF_OK ||
      jk_challenge_str(cf, &conf->ch_invalid, &conf->realm, JKA_CH_INVALID) != NGX_CONF_OK ||
      jk_challenge_str(cf, &conf->ch_scope, &conf->realm, JKA_CH_SCOPE) != NGX_CONF_OK)
    return NGX_CONF_ERROR;
  return NGX_CONF_OK;
}

static void jk_state_cleanup(void *data) {
  jk_main_conf *m = data;
  if (m->state != NULL) gw_state_release(m->state);
  else gw_config_free(m->cfg);
  m->state = NULL;
  m->cfg = NULL;
}


/* ============================================================ JWK Sets */

#define JK_LEASE_SLACK_MS 5000 /* a fetch's lease: its timeout and this */

static size_t jk_slot_size(size_t cap) { return offsetof(jk_slot, body) + cap + 1; }

/* The zone: a slot per URL, found again by URL when a reload keeps the
 * zone, so a reload neither forgets the set nor refetches it. */
static ngx_int_t jk_zone_init(ngx_shm_zone_t *zone, void *odata) {
  jk_main_conf *m = zone->data;
  ngx_slab_pool_t *sp = (ngx_slab_pool_t *)zone->shm.addr;
  jk_shm *h = odata != NULL ? sp->data : NULL;
  (void)odata;
  if (h == NULL) {
    if ((h = ngx_slab_calloc(sp, sizeof *h)) == NULL) return NGX_ERROR;
    sp->data = h;
  }
  m->stats = &h->stats;
  for (ngx_uint_t i = 0; i < m->nsrc; i++) {
    jk_src *js = &m->src[i];
    size_t cap = js->def->o.max_bytes;
    jk_slot *sl = NULL;
    for (ngx_uint_t k = 0; k < h->nslots; k++)
      if (strcmp(h->slot[k]->url, js->def->url) == 0 && h->slot[k]->cap >= cap) sl = h->slot[k];
    if (sl == NULL) {
      if (h->nslots >= JK_MAX_SLOTS || (sl = ngx_slab_calloc(sp, jk_slot_size(cap))) == NULL) {
        ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0, "auth_jwt_jwks: the shared zone is full");
        return NGX_ERROR;
      }
      sl->cap = cap;
      ngx_cpystrn((u_char *)sl->url, (u_char *)js->def->url, sizeof sl->url);
      gw_sm_init(&sl->sm);
      h->slot[h->nslots++] = sl;
    }
    js->slot = sl;
    js->mtx = &sp->mutex;
  }
  return NGX_OK;
}

/* In a thread of nginx's pool: the blocking fetch. */
static void jk_fetch_thread(void *data, ngx_log_t *log) {
  jk_task_ctx *t = data;
  (void)log;
  jk_fetch_opts o = {.http = t->req.allow_http ? JK_FETCH_HTTP_ANY : JK_FETCH_HTTPS_ONLY,
                     .timeout_ms = t->req.timeout_ms,
                     .max_bytes = t->req.max_bytes,
                     .ca_file = t->req.ca_file,
                     .agent = "jwtkit-nginx",
                     .accept = "application/jwk-set+json, application/json",
                     .if_none_match = t->req.if_none_match};
  jk_fetch_get(t->req.url, &o, &t->resp);
}

/* Under the slot's lock, when the machine asked for a fetch: this worker
 * runs it (1), or - its fetch thread still busy with a fetch whose lease
 * ran out - takes a lease that is already over, so the next tick counts it
 * as failed and the machine retries (0). */
static int jk_lease_take(jk_src *js, int64_t now) {
  jk_slot *sl = js->slot;
  sl->lease = ++sl->leases;
  sl->lease_pid = ngx_pid;
  sl->lease_until_ms = js->fetching ? now : now + js->def->o.timeout_ms + JK_LEASE_SLACK_MS;
  js->lease = sl->lease;
  return !js->fetching;
}

static void jk_fetch_post(jk_src *js, const gw_fetch_req *req) {
  jk_task_ctx *t = js->task->ctx;
  t->req = *req;
  ngx_memzero(&t->resp, sizeof t->resp);
  js->fetching = 1;
  if (ngx_thread_task_post(js->m->tp, js->task) != NGX_OK) {
    /* the queue is full: the fetch fails at once (retried by the machine) */
    t->resp.result = JK_FETCH_NETWORK;
    ngx_cpystrn((u_char *)t->resp.detail, (u_char *)"nginx's thread pool queue is full", sizeof t->resp.detail);
    js->task->event.handler(&js->task->event);
  }
}

/* A new generation in the slot: parse it here and publish it to this
 * process's source (the routes rebuild their verifiers on it). */
static void jk_sync(jk_src *js) {
  jk_slot *sl = js->slot;
  if (sl == NULL || __atomic_load_n(&sl->gen, __ATOMIC_ACQUIRE) == js->local_gen) return;
  ngx_shmtx_lock(js->mtx);
  uint64_t gen = sl->gen;
  size_t len = sl->len;
  char *body = len ? ngx_alloc(len + 1, ngx_cycle->log) : NULL;
  if (body != NULL) ngx_memcpy(body, sl->body, len);
  ngx_shmtx_unlock(js->mtx);
  if (len != 0 && body == NULL) return; /* out of memory: try again later */
  jwtkit_jwks *set = NULL;
  if (body != NULL) {
    gw_fetch_resp r = {GW_FETCH_OK, 200, body, len, NULL, NULL, 0, NULL};
    gw_fetch_outcome o;
    gw_fetch_evaluate(js->def, 0, &r, &o);
    set = o.jwks;
    o.jwks = NULL;
    gw_fetch_outcome_clear(&o);
    ngx_free(body);
  }
  gw_source_publish(js->src, set, gen, INT64_MAX);
  js->local_gen = gen;
}

/* Resume the parked requests whose refetch ended (or whose bound passed). */
static void jk_wake(jk_src *js, int64_t now) {
  uint64_t done = __atomic_load_n(&js->slot->done, __ATOMIC_ACQUIRE);
  ngx_queue_t *q = ngx_queue_head(&js->waiters);
  while (q != ngx_queue_sentinel(&js->waiters)) {
    jk_ctx *ctx = ngx_queue_data(q, jk_ctx, q);
    q = ngx_queue_next(q);
    if (done < ctx->until_done && now < ctx->deadline_ms) continue;
    ngx_queue_remove(&ctx->q);
    js->nwaiters--;
    ctx->waiting = 0;
    ctx->waited = 1;
    ctx->route = -2; /* decide again */
    ngx_http_request_t *r = ctx->r;
    ngx_connection_t *c = r->connection;
    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
    ngx_http_run_posted_requests(c);
  }
}

static void jk_log_fetch(jk_src *js, const gw_fetch_outcome *o) {
  ngx_uint_t level = o->r == GW_FETCH_OK || o->r == GW_FETCH_NOT_MODIFIED ? NGX_LOG_INFO : NGX_LOG_WARN;
  char detail[200];
  jka_log_safe(detail, sizeof detail, o->detail, strnlen(o->detail, sizeof o->detail));
  ngx_log_error(level, ngx_cycle->log, 0, "auth_jwt_jwks: %s: %s%s%s, generation %uL", js->def->url,
                gw_fetch_result_name(o->r), detail[0] ? ": " : "", detail, (uint64_t)js->slot->sm.gen);
}

static void jk_fetch_done(ngx_event_t *ev) {
  ngx_thread_task_t *task = ev->data;
  jk_task_ctx *t = task->ctx;
  jk_src *js = t->js;
  jk_slot *sl = js->slot;
  int64_t now = jk_mono_ms();
  js->fetching = 0;
  gw_fetch_resp gr = {jk_fetch_gw_result(t->resp.result), t->resp.status, t->resp.body, t->resp.len,
                      t->resp.cache_control, t->resp.etag, t->resp.age, t->resp.detail};
  ngx_shmtx_lock(js->mtx);
  int sent_etag = sl->sm.sent_etag;
  ngx_shmtx_unlock(js->mtx);
  gw_fetch_outcome o;
  gw_fetch_evaluate(js->def, sent_etag, &gr, &o); /* parsing: outside the lock */
  gw_fetch_req req;
  int64_t wake;
  int start = 0, mine;
  ngx_shmtx_lock(js->mtx);
  mine = sl->lease == js->lease && sl->sm.fetching;
  if (mine) {
    int rr = gw_sm_done(&sl->sm, js->def, now, &o);
    sl->lease = 0;
    sl->lease_pid = 0;
    if (rr & GW_SM_PUBLISH) {
      size_t n = gr.len <= sl->cap ? gr.len : 0;
      if (n > 0) ngx_memcpy(sl->body, gr.body, n);
      sl->len = n;
      __atomic_store_n(&sl->gen, sl->sm.gen, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&sl->done, sl->done + 1, __ATOMIC_RELEASE);
    if ((rr & GW_SM_AGAIN) && (gw_sm_poll(&sl->sm, js->def, now, &req, &wake) & GW_SM_FETCH))
      start = jk_lease_take(js, now);
  }
  ngx_shmtx_unlock(js->mtx);
  if (mine) jk_log_fetch(js, &o);
  else
    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "auth_jwt_jwks: %s: a fetch ended after its lease; its answer is dropped", js->def->url);
  gw_fetch_outcome_clear(&o);
  jk_fetch_resp_free(&t->resp);
  if (start) jk_fetch_post(js, &req);
  jk_sync(js);
  jk_wake(js, now);
}

/* Timers of every source: a fetch due, a lease that ran out (its worker
 * died), new generations, parked requests; again within a second. */
static void jk_tick(ngx_event_t *ev) {
  jk_main_conf *m = ev->data;
  int64_t now = jk_mono_ms(), next = now + 1000;
  ngx_uint_t waiting = 0;
  for (ngx_uint_t i = 0; i < m->nsrc; i++) {
    jk_src *js = &m->src[i];
    jk_slot *sl = js->slot;
    gw_fetch_req req;
    int64_t wake = next;
    int start = 0;
    ngx_pid_t dead = 0;
    ngx_shmtx_lock(js->mtx);
    if (sl->sm.fetching && (sl->lease == 0 || now >= sl->lease_until_ms)) {
      gw_fetch_outcome o;
      ngx_memzero(&o, sizeof o);
      o.r = GW_FETCH_NETWORK;
      snprintf(o.detail, sizeof o.detail, "the fetch of worker %ld did not end within its lease", (long)sl->lease_pid);
      dead = sl->lease_pid;
      gw_sm_done(&sl->sm, js->def, now, &o);
      sl->lease = 0;
      sl->lease_pid = 0;
      __atomic_store_n(&sl->done, sl->done + 1, __ATOMIC_RELEASE);
    }
    int rr = gw_sm_poll(&sl->sm, js->def, now, &req, &wake);
    if (rr & GW_SM_DROPPED) {
      sl->len = 0;
      __atomic_store_n(&sl->gen, sl->sm.gen, __ATOMIC_RELEASE);
    }
    if (rr & GW_SM_FETCH) start = jk_lease_take(js, now);
    ngx_shmtx_unlock(js->mtx);
    if (dead)
      ngx_log_error(NGX_LOG_WARN, ev->log, 0, "auth_jwt_jwks: %s: the fetch of worker %P did not end within its lease",
                    js->def->url, dead);
    if (start) jk_fetch_post(js, &req);
    jk_sync(js);
    jk_wake(js, now);
    if (wake < next) next = wake;
    if (js->nwaiters > 0 && now + 20 < next) next = now + 20;
    waiting += js->nwaiters;
  }
  int64_t d = next - now;
  if (d < 10) d = 10;
  /* parked requests have no timer of their own: while they wait, this one
   * must not be cancelable, or a worker shutting down would drop them */
  ev->cancelable = waiting == 0;
  if (!ngx_exiting || waiting > 0) ngx_add_timer(ev, (ngx_msec_t)d);
}

static ngx_int_t jk_init_process(ngx_cycle_t *cycle) {
  jk_main_conf *m = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_jwtkit_module);
  if (m == NULL || m->nsrc == 0) return NGX_OK;
  if (jk_fetch_global_init() != 0) {
    ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "auth_jwt_jwks: libcurl cannot be initialised");
    return NGX_ERROR;
  }
  for (ngx_uint_t i = 0; i < m->nsrc; i++) {
    jk_src *js = &m->src[i];
    if ((js->task = ngx_thread_task_alloc(cycle->pool, sizeof(jk_task_ctx))) == NULL) return NGX_ERROR;
    ((jk_task_ctx *)js->task->ctx)->js = js;
    js->task->handler = jk_fetch_thread;
    js->task->event.handler = jk_fetch_done;
    js->task->event.data = js->task;
    js->task->event.log = cycle->log;
    ngx_queue_init(&js->waiters);
  }
  m->timer.handler = jk_tick;
  m->timer.data = m;
  m->timer.log = cycle->log;
  m->timer.cancelable = 1;
  ngx_add_timer(&m->timer, 1);
  return NGX_OK;
}

/* Count a decision that jk_decide left uncounted (it was to be parked). */
static void jk_count(jk_main_conf *m, const jk_ctx *ctx) {
  if (m->stats != NULL && ctx->counted >= 0 && ctx->counted <= JK_R_SCOPE)
    ngx_atomic_fetch_add(&m->stats->decisions[ctx->counted], 1);
}

/* The decision asks for a refetch (unknown kid, no set yet): ask the
 * machine; park the request until that fetch ends.  1 when parked. */
static ngx_int_t jk_park(ngx_http_request_t *r, jk_ctx *ctx) {
  jk_src *js = ctx->refetch;
  jk_slot *sl = js->slot;
  int64_t now = jk_mono_ms(), wake;
  gw_fetch_req req;
  int start = 0;
  if (js->nwaiters >= GW_MAX_WAITERS) {
    jk_count(js->m, ctx); /* answered now */
    return 0;
  }
  ngx_shmtx_lock(js->mtx);
  int running = sl->sm.fetching;
  uint64_t done = sl->done;
  gw_refetch rr = gw_sm_refetch(&sl->sm, js->def, now);
  if (rr == GW_REFETCH_KICKED && (gw_sm_poll(&sl->sm, js->def, now, &req, &wake) & GW_SM_FETCH))
    start = jk_lease_take(js, now);
  ngx_shmtx_unlock(js->mtx);
  if (start) jk_fetch_post(js, &req);
  jk_stats *stats = js->m->stats;
  if (rr == GW_REFETCH_NO) {
    atomic_fetch_add(&gw_stats.refetch_cooldown, 1);
    if (stats != NULL) ngx_atomic_fetch_add(&stats->refetch_cooldown, 1);
    jk_count(js->m, ctx); /* answered now */
    return 0;
  }
  atomic_fetch_add(&gw_stats.refetch_waited, 1);
  if (stats != NULL) ngx_atomic_fetch_add(&stats->refetch_waited, 1);
  ctx->until_done = done + (running ? 2 : 1); /* the end of a fetch that starts after this request */
  ctx->deadline_ms = now + 2 * js->def->o.timeout_ms + JK_LEASE_SLACK_MS;
  ctx->waiting = 1;
  ctx->r = r;
  ngx_queue_insert_tail(&js->waiters, &ctx->q);
  js->nwaiters++;
  if (js->m->timer.timer_set) ngx_del_timer(&js->m->timer);
  js->m->timer.cancelable = 0;
  ngx_add_timer(&js->m->timer, 20);
  return 1;
}

/* ============================================================= requests */

static void jk_ctx_cleanup(void *data) {
  jk_ctx *ctx = data;
  if (ctx->waiting) {
    ngx_queue_remove(&ctx->q);
    ctx->refetch->nwaiters--;
    ctx->waiting = 0;
  }
  jwtkit_claims_free(ctx->claims);
  ctx->claims = NULL;
}

static void jk_copy(char *dst, size_t cap, const u_char *s, size_t n) {
  if (n >= cap) n = cap - 1;
  if (n > 0) ngx_memcpy(dst, s, n);
  dst[n] = '\0';
}

/* Denial lines, per worker: at most 100 per 10 s, as the gate; the rest are
 * counted and summarised with the next line after the window (every
 * decision is still counted for auth_jwt_status). */
#define JK_DENY_LINES 100
#define JK_DENY_WINDOW_MS 10000
static jka_loglimit jk_deny_lines = {.interval_ms = JK_DENY_WINDOW_MS, .burst = JK_DENY_LINES};

static void jk_log_denial(ngx_http_request_t *r, const jk_ctx *ctx, const gw_decision *d, const gw_request *rq) {
  if (r->connection->log->log_level < NGX_LOG_INFO) return;
  int64_t now = jk_mono_ms();
  uint64_t more = jka_loglimit_take(&jk_deny_lines, now);
  if (more > 0)
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0, "auth_jwt: %uL more denials in the last %d s were not logged",
                  more, JK_DENY_WINDOW_MS / 1000);
  if (!jka_loglimit_allow(&jk_deny_lines, now)) return;
  char detail[160], field[40], hash[17] = "-";
  jka_log_safe(detail, sizeof detail, d->info.msg, strnlen(d->info.msg, sizeof d->info.msg));
  jka_log_safe(field, sizeof field, d->info.field, strnlen(d->info.field, sizeof d->info.field));
  if (rq->token.p != NULL) {
    unsigned char dg[32];
    if (jk_sha256_2(rq->token.p, rq->token.len, NULL, 0, dg) == 0) jk_hex_encode(dg, 8, hash);
  }
  ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                "auth_jwt: %s %ui %s%s%s%s%s, token_sha256 %s",
                ctx->refetch != NULL && !ctx->waited ? "may refetch the JWK Set before answering" : "denied",
                ctx->status, ctx->reason, field[0] ? " field " : "", field, detail[0] ? ": " : "", detail, hash);
}

/* The request's decision for the location's route (computed once). */
static jk_ctx *jk_decide(ngx_http_request_t *r, const jk_loc_conf *lc) {
  jk_main_conf *m = ngx_http_get_module_main_conf(r, ngx_http_jwtkit_module);
  jk_ctx *ctx = ngx_http_get_module_ctx(r, ngx_http_jwtkit_module);
  if (ctx != NULL && ctx->route == lc->route) return ctx;
  if (ctx == NULL) {
    ngx_pool_cleanup_t *cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL || (ctx = ngx_pcalloc(r->pool, sizeof *ctx)) == NULL) return NULL;
    cln->handler = jk_ctx_cleanup;
    cln->data = ctx;
    ngx_http_set_ctx(r, ctx, ngx_http_jwtkit_module);
  }
  jwtkit_claims_free(ctx->claims);
  ngx_uint_t waited = ctx->waited;
  ngx_memzero(ctx, sizeof *ctx);
  ctx->waited = waited;
  ctx->route = lc->route;
  if (m->state == NULL) return NULL;
  for (ngx_uint_t i = 0; i < m->nsrc; i++) jk_sync(&m->src[i]);

  gw_request rqs; /* ~8.5 KiB, only for this call: on the stack, not a large pool block per request */
  gw_request *rq = &rqs;
  ngx_memzero(rq, offsetof(gw_request, hostbuf));
  char method[16];
  jk_copy(method, sizeof method, r->method_name.data, r->method_name.len);
  jk_copy(rq->hostbuf, sizeof rq->hostbuf, r->headers_in.server.data, r->headers_in.server.len);
  jk_copy(rq->pathbuf, sizeof rq->pathbuf, r->uri.data, r->uri.len);
  rq->method = method;
  rq->host = rq->hostbuf;
  rq->path = rq->pathbuf;
  rq->path_len = strlen(rq->pathbuf);
  rq->route = (size_t)lc->route;
  const gw_route_cfg *rc = &gw_state_config(m->state)->routes[lc->route];
  ngx_list_part_t *part = &r->headers_in.headers.part;
  ngx_table_elt_t *h = part->elts;
  for (ngx_uint_t i = 0;; i++) {
    if (i >= part->nelts) {
      if ((part = part->next) == NULL) break;
      h = part->elts;
      i = 0;
      if (part->nelts == 0) continue;
    }
    /* nginx NUL-terminates header names and values */
    gw_token_field(&rq->token, rc, (const char *)h[i].key.data, (const char *)h[i].value.data);
  }

  gw_decision d;
  gw_decide(m->state, rq, (int64_t)ngx_time(), jk_mono_ms(), &d);
  gw_decision_count(&d);
  int counted = d.reason;
  char lb[48];
  const char *label = gw_reason_label(d.reason, lb, sizeof lb); /* copied without printf: this runs per request */
  size_t ll = strnlen(label, sizeof ctx->reason - 1);
  ngx_memcpy(ctx->reason, label, ll);
  ctx->reason[ll] = '\0';
  if (d.reason < GW_R_ALLOW_COUNT) {
    ctx->claims = d.claims;
    d.claims = NULL;
    if (ctx->claims == NULL) { /* from the token cache */
      ctx->cached = 1;
      ctx->token = rq->token.p;
      ctx->token_len = rq->token.len;
      for (size_t i = 0; i < d.nhv; i++) {
        u_char *p = ngx_pnalloc(r->pool, d.hv[i].len ? d.hv[i].len : 1);
        if (p == NULL || d.hv[i].map >= GW_MAX_HEADERS) continue;
        ngx_memcpy(p, d.hv[i].val, d.hv[i].len);
        ctx->hv[d.hv[i].map].data = p;
        ctx->hv[d.hv[i].map].len = d.hv[i].len;
      }
    }
    jka_claim_req *q = lc->claims ? lc->claims->elts : NULL;
    /* the requirements read the payload: the verified claims', or on a
     * cache hit the token's own, byte for byte the one verified */
    char *hdr = NULL, *pl = NULL;
    size_t hl = 0, pll = 0;
    const char *payload = NULL;
    if (lc->claims != NULL && lc->claims->nelts > 0) {
      if (ctx->claims != NULL) payload = jwtkit_claims_json(ctx->claims, &pll);
      else if (jwtkit_decode_unverified(ctx->token, ctx->token_len, &hdr, &hl, &pl, &pll, NULL) == JWTKIT_OK)
        payload = pl;
    }
    for (ngx_uint_t i = 0; lc->claims && i < lc->claims->nelts; i++)
      if (payload == NULL || !jka_claim_req_holds_json(&q[i], payload, pll)) {
        ctx->status = NGX_HTTP_FORBIDDEN;
        snprintf(ctx->reason, sizeof ctx->reason, "insufficient_scope");
        counted = JK_R_SCOPE;
        snprintf(d.info.msg, sizeof d.info.msg, "auth_jwt_require_claim %.*s %s%.*s not met", (int)q[i].name_len,
                 q[i].name, q[i].op == JKA_PRESENT ? "" : q[i].op == JKA_EQUALS ? "equals " : "contains ",
                 q[i].op == JKA_PRESENT ? 0 : (int)(q[i].value_len > 60 ? 60 : q[i].value_len),
                 q[i].value ? q[i].value : "");
        jk_log_denial(r, ctx, &d, rq);
        break;
      }
    jwtkit_free(hdr);
    jwtkit_free(pl);
  } else {
    ctx->status = d.status;
    ctx->missing = d.reason == GW_R_MISSING_TOKEN;
    for (ngx_uint_t i = 0; d.refetch != NULL && i < m->nsrc; i++)
      if (m->src[i].src == d.refetch && m->src[i].slot != NULL) ctx->refetch = &m->src[i];
    /* keys that cannot be had are not the client's fault: 503 (or 401 when configured) */
    if (d.reason == GW_R_JWKS_NOT_READY && m->unavailable != 401) ctx->status = NGX_HTTP_SERVICE_UNAVAILABLE;
    jk_log_denial(r, ctx, &d, rq);
  }
  /* a request parked for a refetch is counted when it is decided again */
  ctx->counted = counted;
  if (m->stats != NULL && !(ctx->refetch != NULL && !ctx->waited) && counted >= 0 && counted <= JK_R_SCOPE)
    ngx_atomic_fetch_add(&m->stats->decisions[counted], 1);
  gw_decision_free(&d);
  return ctx;
}

static ngx_int_t jk_has_error_page(ngx_http_request_t *r, ngx_uint_t status) {
  ngx_http_core_loc_conf_t *clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
  if (clcf->error_pages == NULL || r->uri_changes == 0) return 0;
  ngx_http_err_page_t *ep = clcf->error_pages->elts;
  for (ngx_uint_t i = 0; i < clcf->error_pages->nelts; i++)
    if (ep[i].status == (ngx_int_t)status) return 1;
  return 0;
}

/* The answer itself: the status (and the challenge set before), an empty body. */
static ngx_int_t jk_send_empty(ngx_http_request_t *r, ngx_uint_t status) {
  ngx_int_t rc = ngx_http_discard_request_body(r);
  if (rc != NGX_OK) return rc;
  r->headers_out.status = status;
  r->headers_out.content_length_n = 0;
  rc = ngx_http_send_header(r);
  if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
    ngx_http_finalize_request(r, rc);
    return NGX_DONE;
  }
  ngx_http_finalize_request(r, ngx_http_send_special(r, NGX_HTTP_LAST));
  return NGX_DONE;
}

static ngx_int_t jk_access(ngx_http_request_t *r) {
  jk_loc_conf *lc = ngx_http_get_module_loc_conf(r, ngx_http_jwtkit_module);
  if (lc->route < 0) return NGX_DECLINED;
  jk_ctx *ctx = ngx_http_get_module_ctx(r, ngx_http_jwtkit_module);
  if (ctx != NULL && ctx->waiting) return NGX_AGAIN; /* a wake-up before the refetch ended */
  ctx = jk_decide(r, lc);
  if (ctx == NULL) return NGX_HTTP_INTERNAL_SERVER_ERROR;
  if (ctx->status == 0) return NGX_OK;
  if (ctx->refetch != NULL && !ctx->waited && jk_park(r, ctx)) return NGX_AGAIN;
  if (ctx->status == NGX_HTTP_SERVICE_UNAVAILABLE) {
    if (jk_has_error_page(r, ctx->status)) return NGX_HTTP_SERVICE_UNAVAILABLE;
    return jk_send_empty(r, ctx->status);
  }

  ngx_table_elt_t *h = ngx_list_push(&r->headers_out.headers);
  if (h == NULL) return NGX_HTTP_INTERNAL_SERVER_ERROR;
  h->hash = 1;
  ngx_str_set(&h->key, "WWW-Authenticate");
  h->value = ctx->status == NGX_HTTP_FORBIDDEN ? lc->ch_scope : ctx->missing ? lc->ch_missing : lc->ch_invalid;
  r->headers_out.www_authenticate = h;

  ngx_http_core_loc_conf_t *clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
  if (clcf->satisfy != NGX_HTTP_SATISFY_ALL || jk_has_error_page(r, ctx->status))
    return (ngx_int_t)ctx->status; /* satisfy any may still allow; error_page answers */

  return jk_send_empty(r, ctx->status);
}


/* ============================================================== status */

/* auth_jwt_status: the counters of all workers and the state of every JWK
 * Set, in the Prometheus text format or as JSON (jwtkit_status.c). */
static ngx_int_t jk_status_handler(ngx_http_request_t *r) {
  jk_main_conf *m = ngx_http_get_module_main_conf(r, ngx_http_jwtkit_module);
  jk_loc_conf *lc = ngx_http_get_module_loc_conf(r, ngx_http_jwtkit_module);
  if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) return NGX_HTTP_NOT_ALLOWED;
  ngx_int_t rc = ngx_http_discard_request_body(r);
  if (rc != NGX_OK) return rc;
  jks_status st;
  ngx_memzero(&st, sizeof st);
  if (m->stats != NULL) {
    st.have_counters = 1;
    for (int i = 0; i <= JK_R_SCOPE; i++) st.decisions[i] = m->stats->decisions[i];
    st.refetch_waited = m->stats->refetch_waited;
    st.refetch_cooldown = m->stats->refetch_cooldown;
  }
  jks_source *src = m->nsrc > 0 ? ngx_pcalloc(r->pool, m->nsrc * sizeof *src) : NULL;
  if (m->nsrc > 0 && src == NULL) return NGX_HTTP_INTERNAL_SERVER_ERROR;
  int64_t now = jk_mono_ms();
  for (ngx_uint_t i = 0; i < m->nsrc; i++) {
    jk_src *js = &m->src[i];
    if (js->slot == NULL) continue;
    gw_source_status ss;
    ngx_shmtx_lock(js->mtx);
    gw_sm_status(&js->slot->sm, js->def, now, &ss);
    ngx_shmtx_unlock(js->mtx);
    jk_sync(js);
    gw_keyset *ks = gw_source_keyset(js->src);
    jks_source *o = &src[st.nsrc++];
    o->url = js->def->url;
    o->have_set = ss.have_set;
    o->gen = ss.gen;
    o->keys = ks->jwks ? jwtkit_jwks_count(ks->jwks) : 0;
    gw_keyset_release(ks);
    o->stale = ss.stale;
    o->age_s = ss.age_ms < 0 ? -1 : ss.age_ms / 1000;
    memcpy(o->fetches, ss.fetches, sizeof o->fetches);
  }
  st.src = src;
  jk_buf b;
  jk_buf_init_max(&b, 1u << 20);
  if (lc->status_json) jks_render_json(&b, &st);
  else jks_render_prom(&b, &st);
  if (b.oom) {
    jk_buf_free(&b);
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
  }
  ngx_buf_t *out = ngx_create_temp_buf(r->pool, b.len ? b.len : 1);
  if (out == NULL) {
    jk_buf_free(&b);
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
  }
  if (b.len) out->last = ngx_cpymem(out->pos, b.p, b.len);
  jk_buf_free(&b);
  out->last_buf = (r == r->main) ? 1 : 0;
  out->last_in_chain = 1;
  r->headers_out.status = NGX_HTTP_OK;
  r->headers_out.content_length_n = (off_t)(out->last - out->pos);
  static ngx_str_t ct_json = ngx_string("application/json"), ct_prom = ngx_string("text/plain; version=0.0.4");
  r->headers_out.content_type = lc->status_json ? ct_json : ct_prom;
  r->headers_out.content_type_len = r->headers_out.content_type.len;
  rc = ngx_http_send_header(r);
  if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) return rc;
  ngx_chain_t cl = {out, NULL};
  return ngx_http_output_filter(r, &cl);
}

static char *jk_set_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) {
  ngx_http_core_loc_conf_t *clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
  jk_main_conf *m = ngx_http_conf_get_module_main_conf(cf, ngx_http_jwtkit_module);
  jk_loc_conf *lc = conf;
  ngx_str_t *a = cf->args->elts;
  (void)cmd;
  if (clcf->handler == jk_status_handler) return "is duplicate";
  if (cf->args->nelts > 1) {
    if (ngx_strcmp(a[1].data, "json") == 0) lc->status_json = 1;
    else if (ngx_strcmp(a[1].data, "prometheus") != 0) {
      ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "auth_jwt_status: \"%V\": expected json or prometheus (the default)",
                         &a[1]);
      return NGX_CONF_ERROR;
    }
  }
  clcf->handler = jk_status_handler;
  m->status_used = 1;
  return NGX_CONF_OK;
}

/* ============================================================ variables */

static jk_ctx *jk_var_ctx(ngx_http_request_t *r) {
  jk_loc_conf *lc = ngx_http_get_module_loc_conf(r, ngx_http_jwtkit_module);
  if (lc->route < 0) return NULL;
  return jk_decide(r, lc);
}

static ngx_int_t jk_var_set(ngx_http_variable_value_t *v, u_char *p, size_t n) {
  v->data = p;
  v->len = n;
  v->valid = 1;
  v->no_cacheable = 0;
  v->not_found = 0;
  return NGX_OK;
}

/* $jwt_claim_NAME: as the gate renders a claim header (strings as they
 * are, arrays of strings joined with ',', others as compact JSON; bytes
 * outside printable ASCII and '%' percent-encoded, so it is safe in a
 * header). */
static ngx_int_t jk_var_claim(ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data) {
  ngx_str_t *name = (ngx_str_t *)data;
  static const size_t pre = sizeof "jwt_claim_" - 1;
  jk_ctx *ctx = jk_var_ctx(r);
  char cname[JKA_MAX_CLAIM_NAME + 1];
  v->not_found = 1;
  if (ctx == NULL || name->len <= pre || name->len - pre > JKA_MAX_CLAIM_NAME) return NGX_OK;
  if (ctx->claims == NULL && ctx->cached) { /* the rendering the cache kept */
    jk_main_conf *m = ngx_http_get_module_main_conf(r, ngx_http_jwtkit_module);
    for (ngx_uint_t i = 0; i < m->nclaim_vars; i++)
      if (m->claim_vars[i].len == name->len - pre &&
          ngx_strncmp(m->claim_vars[i].data, name->data + pre, name->len - pre) == 0 && ctx->hv[i].data != NULL)
        return jk_var_set(v, ctx->hv[i].data, ctx->hv[i].len);
    return NGX_OK;
  }
  if (ctx->claims == NULL) return NGX_OK;
  jk_copy(cname, sizeof cname, name->data + pre, name->len - pre);
  u_char *buf = ngx_pnalloc(r->pool, JK_CLAIM_MAX);
  if (buf == NULL) return NGX_ERROR;
  long n = gw_render_claim(ctx->claims, cname, (char *)buf, JK_CLAIM_MAX);
  if (n < 0) return NGX_OK;
  return jk_var_set(v, buf, (size_t)n);
}

/* $jwt_header_NAME: a member of the verified token's protected header,
 * rendered as $jwt_claim_NAME (the core's gw_render_json_member). */
static ngx_int_t jk_var_header(ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data) {
  ngx_str_t *name = (ngx_str_t *)data;
  static const size_t pre = sizeof "jwt_header_" - 1;
  jk_ctx *ctx = jk_var_ctx(r);
  char hname[JKA_MAX_CLAIM_NAME + 1], *hdr = NULL, *pl = NULL;
  size_t hl = 0, pll = 0;
  const char *h;
  v->not_found = 1;
  if (ctx == NULL || (ctx->claims == NULL && !ctx->cached) || name->len <= pre || name->len - pre > JKA_MAX_CLAIM_NAME)
    return NGX_OK;
  if (ctx->claims != NULL) {
    h = jwtkit_claims_header_json(ctx->claims, &hl);
  } else { /* a cache hit: the token is the verified one, byte for byte */
    if (jwtkit_decode_unverified(ctx->token, ctx->token_len, &hdr, &hl, &pl, &pll, NULL) != JWTKIT_OK) {
      jwtkit_free(hdr);
      jwtkit_free(pl);
      return NGX_OK;
    }
    h = hdr;
  }
  jk_copy(hname, sizeof hname, name->data + pre, name->len - pre);
  u_char *buf = ngx_pnalloc(r->pool, JK_CLAIM_MAX);
  long n = buf != NULL ? gw_render_json_member(h, hl, hname, (char *)buf, JK_CLAIM_MAX) : -1;
  jwtkit_free(hdr);
  jwtkit_free(pl);
  if (buf == NULL) return NGX_ERROR;
  if (n < 0) return NGX_OK;
  return jk_var_set(v, buf, (size_t)n);
}

/* $jwt_payload: the verified payload JSON without raw CR, LF and tab (in
 * valid JSON they can only be whitespace between tokens). */
static ngx_int_t jk_var_payload(ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data) {
  jk_ctx *ctx = jk_var_ctx(r);
  size_t len = 0;
  (void)data;
  v->not_found = 1;
  if (ctx == NULL || (ctx->claims == NULL && !ctx->cached)) return NGX_OK;
  char *hdr = NULL, *pl = NULL;
  size_t hl = 0;
  const char *j;
  if (ctx->claims != NULL) {
    j = jwtkit_claims_json(ctx->claims, &len);
  } else {
    /* a cache hit: the token is byte for byte one that was verified (its
     * SHA-256 is the cache key), so its payload is the verified payload */
    if (jwtkit_decode_unverified(ctx->token, ctx->token_len, &hdr, &hl, &pl, &len, NULL) != JWTKIT_OK) {
      jwtkit_free(hdr);
      jwtkit_free(pl);
      return NGX_OK;
    }
    j = pl;
  }
  u_char *p = ngx_pnalloc(r->pool, len ? len : 1), *o = p;
  if (p != NULL)
    for (size_t i = 0; i < len; i++)
      if (j[i] != '\r' && j[i] != '\n' && j[i] != '\t') *o++ = (u_char)j[i];
  jwtkit_free(hdr);
  jwtkit_free(pl);
  if (p == NULL) return NGX_ERROR;
  return jk_var_set(v, p, (size_t)(o - p));
}

/* $jwt_error: why the token was refused (the core's reason label), empty
 * when it was accepted. */
static ngx_int_t jk_var_error(ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data) {
  jk_ctx *ctx = jk_var_ctx(r);
  (void)data;
  v->not_found = 1;
  if (ctx == NULL) return NGX_OK;
  if (ctx->status == 0) return jk_var_set(v, (u_char *)"", 0);
  return jk_var_set(v, (u_char *)ctx->reason, strlen(ctx->reason));
}

static ngx_http_variable_t jk_vars[] = {
    {ngx_string("jwt_claim_"), NULL, jk_var_claim, 0, NGX_HTTP_VAR_PREFIX | NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("jwt_header_"), NULL, jk_var_header, 0, NGX_HTTP_VAR_PREFIX | NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("jwt_payload"), NULL, jk_var_payload, 0, NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("jwt_error"), NULL, jk_var_error, 0, NGX_HTTP_VAR_NOCACHEABLE, 0},
    ngx_http_null_variable};

static ngx_int_t jk_preconf(ngx_conf_t *cf) {
  for (ngx_http_variable_t *v = jk_vars; v->name.len; v++) {
    ngx_http_variable_t *var = ngx_http_add_variable(cf, &v->name, v->flags);
    if (var == NULL) return NGX_ERROR;
    var->get_handler = v->get_handler;
    var->data = v->data;
  }
  return NGX_OK;
}

/* With the token cache, a hit has no claims object: every claim that a
 * $jwt_claim_* variable of the configuration names becomes an optional
 * claim header of every route that uses the cache (the core renders it as for the gate and
 * keeps the rendering in the cache entry; a value it cannot render is left
 * out, as the variable would be). */
static ngx_int_t jk_cache_claims(ngx_conf_t *cf, jk_main_conf *m) {
  ngx_http_core_main_conf_t *cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
  ngx_http_variable_t *v = cmcf->variables.elts;
  static const size_t pre = sizeof "jwt_claim_" - 1;
  char err[JK_ERR], key[64], claim[JKA_MAX_CLAIM_NAME + 1];
  for (ngx_uint_t i = 0; i < cmcf->variables.nelts; i++) {
    if (v[i].name.len <= pre || ngx_strncmp(v[i].name.data, "jwt_claim_", pre) != 0) continue;
    if (m->nclaim_vars >= GW_MAX_HEADERS || v[i].name.len - pre > JKA_MAX_CLAIM_NAME) {
      ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                    "auth_jwt_token_cache: at most %ui $jwt_claim_* variables of at most %ui bytes (\"%V\")",
                    (ngx_uint_t)GW_MAX_HEADERS, (ngx_uint_t)JKA_MAX_CLAIM_NAME, &v[i].name);
      return NGX_ERROR;
    }
    m->claim_vars[m->nclaim_vars].data = v[i].name.data + pre;
    m->claim_vars[m->nclaim_vars].len = v[i].name.len - pre;
    m->nclaim_vars++;
  }
  if (m->nclaim_vars > 0 && gw_config_set(m->cfg, "header_max", "4096", err, sizeof err) != 0) goto fail;
  for (size_t r = 0; r < m->cfg->nroutes; r++) {
    gw_route_cfg *rc = &m->cfg->routes[r];
    if (rc->token_cache_off) continue; /* a miss every time: the variables read the claims */
    if (m->nclaim_vars > 0 && gw_route_set(rc, "claim_header_failure", "allow", err, sizeof err) != 0) goto fail;
    for (ngx_uint_t i = 0; i < m->nclaim_vars; i++) {
      snprintf(key, sizeof key, "optional_header X-Jwtkit-Claim-%lu", (unsigned long)i);
      jk_copy(claim, sizeof claim, m->claim_vars[i].data, m->claim_vars[i].len);
      if (gw_route_set(rc, key, claim, err, sizeof err) != 0) goto fail;
    }
  }
  return NGX_OK;
fail:
  ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "auth_jwt_token_cache: %s", err);
  return NGX_ERROR;
}

static ngx_int_t jk_postconf(ngx_conf_t *cf) {
  jk_main_conf *m = ngx_http_conf_get_module_main_conf(cf, ngx_http_jwtkit_module);
  char err[JK_ERR];
  int line = 0;
  jk_log_set_level(JK_LOG_ERROR); /* the module logs through nginx */
  if (m->cfg == NULL && !m->status_used) return NGX_OK; /* the module is not used */
  gw_build b = {.generation = 1};
  if (m->cfg != NULL && m->cfg->nroutes == 0) { /* settings, but auth_jwt is not on anywhere */
    gw_config_free(m->cfg);
    m->cfg = NULL;
    if (!m->status_used) return NGX_OK;
  }
  if (m->cfg != NULL && (!m->cache_on || m->cache_entries > 0)) {
    /* one cache per worker when a route uses it: the core's default size,
     * or the http level's number of entries; none when no route uses it */
    char n[24];
    snprintf(n, sizeof n, "%lu", (unsigned long)(m->cache_on ? m->cache_entries : 0));
    if (gw_config_set(m->cfg, "token_cache", n, err, sizeof err) != 0) {
      ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "auth_jwt: %s", err);
      return NGX_ERROR;
    }
  }
  if (m->cfg != NULL && m->cache_on && jk_cache_claims(cf, m) != NGX_OK) return NGX_ERROR;
  if (m->cfg != NULL) {
    if (gw_config_check(m->cfg, &line, err, sizeof err) != 0 ||
        gw_state_build(m->cfg, &b, &m->state, err, sizeof err) != 0) {
      ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "auth_jwt: %s", err);
      return NGX_ERROR;
    }
    m->cfg = NULL; /* the state owns it */
    m->nsrc = gw_state_nsources(m->state);
  }
  /* the zone: the counters of all workers, and a slot per JWK Set URL */
  {
    size_t size = 8 * ngx_pagesize;
    if (m->nsrc > 0 && (m->src = ngx_pcalloc(cf->pool, m->nsrc * sizeof *m->src)) == NULL) return NGX_ERROR;
    for (ngx_uint_t i = 0; i < m->nsrc; i++) {
      m->src[i].m = m;
      m->src[i].src = gw_state_source(m->state, i);
      m->src[i].def = gw_source_def(m->src[i].src);
      size += 2 * ngx_align(jk_slot_size(m->src[i].def->o.max_bytes), ngx_pagesize);
    }
    static ngx_str_t zone_name = ngx_string("jwtkit_jwks");
    m->zone = ngx_shared_memory_add(cf, &zone_name, size, &ngx_http_jwtkit_module);
    if (m->zone == NULL) return NGX_ERROR;
    m->zone->init = jk_zone_init;
    m->zone->data = m;
    if (m->nsrc > 0 && (m->tp = ngx_thread_pool_add(cf, NULL)) == NULL) return NGX_ERROR;
  }
  if (m->state == NULL) return NGX_OK; /* auth_jwt_status only */
  ngx_http_core_main_conf_t *cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
  ngx_http_handler_pt *h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
  if (h == NULL) return NGX_ERROR;
  *h = jk_access;
  return NGX_OK;
}
