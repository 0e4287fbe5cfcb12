/*
 * services/gatecore/gw_internal.h - what the core's files share (and its
 * unit tests reach); front ends use gatecore.h only.
 *
 *   config.c   the policy vocabulary: gw_config_set, gw_route_set, checks
 *   request.c  normalisation, route selection, token extraction
 *   render.c   claim -> header value (the claims accessors, percent-encoding)
 *   keys.c     key files, the routes' verifiers
 *   state.c    gw_state: routes, snapshots, sources, cache
 *   decide.c   gw_decide and its log line
 *   cache.c    the verified-token cache
 *   jwks.c     the JWK Set source state machine and answer evaluation
 *   source.c   gw_source: the state machine behind a lock, published sets,
 *              parked requests, the transport
 *   metrics.c  gw_stats, reasons
 */
#ifndef JWTKIT_GW_INTERNAL_H
#define JWTKIT_GW_INTERNAL_H

#include <pthread.h>

#include "gatecore.h"

/* ------------------------------------------------------------ cache.c */

typedef struct gw_tcache gw_tcache;

/* One cached allow decision (immutable but for gen, which is only touched
 * under its stripe lock). */
typedef struct gw_tc_entry {
  struct gw_tc_entry *hnext, *prev, *next;
  atomic_uint refs;
  unsigned char key[32];
  uint32_t route;
  int64_t expires; /* valid while now < expires */
  uint64_t gen;    /* JWK Set generation it was verified against */
  uint8_t legacy;
  uint8_t nhdr;
  uint16_t kid_len; /* 0: the token had no kid */
  size_t data_len;
  /* data: kid bytes, then per header: u8 map index, u16 len (LE), bytes */
  unsigned char data[];
} gw_tc_entry;

/* Under the stripe lock when the entry's generation is not the current
 * one: 1 keeps it (gen becomes *new_gen), 0 drops it. */
typedef int (*gw_tc_check_fn)(void *ctx, const gw_tc_entry *e, uint64_t *new_gen);

gw_tcache *gw_tcache_new(size_t capacity); /* NULL for capacity 0 */
void gw_tcache_free(gw_tcache *c);
size_t gw_tcache_capacity(const gw_tcache *c);
size_t gw_tcache_count(const gw_tcache *c);
/* A hit returns a referenced entry (gw_tc_entry_release). */
gw_tc_entry *gw_tcache_get(gw_tcache *c, const unsigned char key[32], uint32_t route, int64_t now,
                           gw_tc_check_fn check, void *ctx);
void gw_tc_entry_release(gw_tc_entry *e);
void gw_tcache_put(gw_tcache *c, const unsigned char key[32], uint32_t route, int64_t expires, uint64_t gen,
                   int legacy, const char *kid, size_t kid_len, const gw_header *hv, size_t nhv);
/* An entry's headers in order (map, val, len; name left NULL): 0 at the end. */
int gw_tc_entry_header(const gw_tc_entry *e, size_t *pos, gw_header *out);
const char *gw_tc_entry_kid(const gw_tc_entry *e, size_t *len);

/* ------------------------------------------------------------ state.c */

/* A route's verifier over one JWK Set generation. */
typedef struct gw_route_snap {
  jk_snap_obj obj;
  jwtkit_verifier *v; /* NULL: no usable key yet */
  gw_keyset *ks;      /* the set it was built from (NULL without jwks_url) */
  uint64_t gen;
  size_t nkeys;
} gw_route_snap;

typedef struct gw_route {
  const gw_route_cfg *cfg; /* owned by the state's config */
  const gw_config *gcfg;
  uint32_t index;
  jwtkit_key **static_keys;
  size_t nstatic;
  gw_source *src;          /* NULL without jwks_url */
  jwtkit_verifier *legacy; /* HS256-only verifier, NULL unless migration mode */
  int64_t legacy_deadline;
  pthread_mutex_t build_mu;
  jk_snap snap;            /* gw_route_snap */
} gw_route;

struct gw_state {
  jk_snap_obj obj;
  uint64_t generation;
  gw_config *cfg;
  gw_route *routes;
  size_t nroutes;
  gw_source **sources; /* distinct, each referenced once here */
  size_t nsources;
  gw_tcache *cache;
  void (*retire)(gw_state *st);
};

/* The current verifier of a route, rebuilt when its source published a new
 * set; never NULL.  Release with gw_route_snap_release. */
gw_route_snap *gw_route_snap_get(gw_route *r);
void gw_route_snap_release(gw_route_snap *s);
/* 1 when the snapshot trusts a key with this kid (key file or JWK Set). */
int gw_route_snap_has_kid(const gw_route *r, const gw_route_snap *s, const char *kid, size_t len);

/* ------------------------------------------------------------- keys.c */

/* Key file text (PEM, JWK or JWK Set) for a route; appended to keys.  -1
 * with err. */
int gw_load_key_text(const gw_route_cfg *rc, const char *src, const char *text, size_t len, jwtkit_key ***keys,
                     size_t *nkeys, char *err, size_t cap);
/* The main verifier: the key files and the set's keys for the route's algs
 * (*v NULL when there is no key). */
jwtkit_err gw_build_main(const gw_route *r, const jwtkit_jwks *jwks, jwtkit_verifier **v, size_t *nkeys,
                         jwtkit_errinfo *info);
/* Migration mode: the HS256-only verifier with the legacy secret. */
int gw_build_legacy(gw_route *r, char *err, size_t cap);

/* ----------------------------------------------------------- jwks.c */

/* The refresh interval for a lifetime (a refresh runs this long after a
 * good fetch). */
int64_t gw_refresh_after(const gw_jwks_opts *o, int64_t ttl);

#endif
