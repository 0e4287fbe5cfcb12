/* The core's counters (lock-free atomics) and the decision reasons. */
#include <ctype.h>
#include <string.h>

#include "gw_internal.h"

gw_metrics gw_stats;

void gw_metrics_init(void) {
  for (size_t i = 0; i < GW_R_COUNT; i++) atomic_init(&gw_stats.decisions[i], 0);
  for (size_t i = 0; i < 60; i++) atomic_init(&gw_stats.legacy_minute[i], 0);
}

static const char *const k_reasons[GW_R_LIB_BASE] = {
    [GW_R_VERIFIED] = "verified",
    [GW_R_CACHED] = "cached",
    [GW_R_LEGACY] = "legacy_hs256",
    [GW_R_LEGACY_CACHED] = "legacy_hs256_cached",
    [GW_R_MISSING_TOKEN] = "missing_token",
    [GW_R_AMBIGUOUS_TOKEN] = "ambiguous_token",
    [GW_R_TOKEN_TOO_LARGE] = "token_too_large",
    [GW_R_BAD_AUTHORIZATION] = "bad_authorization",
    [GW_R_NO_ROUTE] = "no_route",
    [GW_R_BAD_URI] = "bad_uri",
    [GW_R_JWKS_NOT_READY] = "jwks_not_ready",
    [GW_R_LEGACY_DEADLINE_PASSED] = "legacy_deadline_passed",
    [GW_R_CLAIM_HEADER] = "claim_header",
    [GW_R_INTERNAL] = "internal",
};

int gw_reason_for_err(jwtkit_err e) {
  if ((int)e <= 0 || (int)e >= GW_NLIBERR) return GW_R_INTERNAL;
  return GW_R_LIB_BASE + (int)e;
}

const char *gw_reason_label(int reason, char *buf, size_t cap) {
  if (reason >= 0 && reason < GW_R_LIB_BASE) return k_reasons[reason];
  const char *n = jwtkit_errname((jwtkit_err)(reason - GW_R_LIB_BASE));
  size_t i = 0;
  for (; n[i] && i + 1 < cap; i++) buf[i] = (char)tolower((unsigned char)n[i]);
  buf[i] = '\0';
  return buf;
}

/* The legacy stream of the last minute: one slot per second of the minute,
 * holding (second << 24) | count, so a slot from another minute reads as
 * empty without a reset. */
#define SEC_SHIFT 24
#define CNT_MASK ((UINT64_C(1) << SEC_SHIFT) - 1)

void gw_metrics_legacy_accept(int64_t now) {
  atomic_fetch_add(&gw_stats.legacy_accepted, 1);
  atomic_uint_fast64_t *slot = &gw_stats.legacy_minute[(uint64_t)now % 60];
  uint64_t old = atomic_load(slot), nv;
  do {
    if ((old >> SEC_SHIFT) == (uint64_t)now)
      nv = (old & CNT_MASK) == CNT_MASK ? old : old + 1;
    else
      nv = ((uint64_t)now << SEC_SHIFT) | 1;
  } while (!atomic_compare_exchange_weak(slot, &old, nv));
}

uint64_t gw_metrics_legacy_last_minute(int64_t now) {
  uint64_t sum = 0;
  for (size_t i = 0; i < 60; i++) {
    uint64_t v = atomic_load(&gw_stats.legacy_minute[i]);
    int64_t sec = (int64_t)(v >> SEC_SHIFT);
    if (v != 0 && sec <= now && now - sec < 60) sum += v & CNT_MASK;
  }
  return sum;
}
