/*
 * nginx/jwtkit_status.h - the page of auth_jwt_status, in plain C without
 * nginx types (unit-tested on its own): the module copies its counters and
 * the state of every JWK Set into a jks_status, and one of these renders
 * it, in the Prometheus text format or as one JSON object.  Both show the
 * same numbers; the JSON lists every reason, also those still at 0.
 */
#ifndef JWTKIT_NGX_STATUS_H
#define JWTKIT_NGX_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "gatecore.h"

#define JKS_R_SCOPE GW_R_COUNT /* the module's own reason: auth_jwt_require_claim not met */

typedef struct jks_source {
  const char *url;
  int have_set;
  uint64_t gen;  /* of the set in shared memory; 0: none */
  size_t keys;   /* in the set this worker parsed */
  int stale;     /* used past its lifetime */
  int64_t age_s; /* since the last good fetch or 304; -1: none */
  uint64_t fetches[GW_FETCH_COUNT];
} jks_source;

typedef struct jks_status {
  int have_counters; /* the decision and refetch counters exist (a shared zone) */
  uint64_t decisions[JKS_R_SCOPE + 1];
  uint64_t refetch_waited, refetch_cooldown;
  const jks_source *src;
  size_t nsrc;
} jks_status;

/* Append the page to b (b->oom is set when it did not fit). */
void jks_render_prom(jk_buf *b, const jks_status *s);
void jks_render_json(jk_buf *b, const jks_status *s);

#endif
