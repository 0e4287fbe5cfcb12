/* Counters and the Prometheus text exposition format (version 0.0.4).
 * Request threads only touch atomics; the per-kid mint counters are slots
 * looked up once per keyring snapshot.
 *
 * The per-kid series are bounded by the keyring, not by the run: a mint
 * slot is held by every snapshot that signs with its key (a reference
 * count) and lives on while its kid is published; once neither holds, it
 * is freed (sv_metrics_mint_prune, after each snapshot and at each
 * exposition), so jwtkit_tokens_issued_total{kid} leaves /metrics with its
 * key, as jwtkit_key_age_seconds{kid} does. */
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/prom.h"
#include "serve.h"

static const unsigned k_statuses[] = {200, 304, 400, 401, 404, 405, 413, 415, 429, 500, 501, 503};
#define NSTATUS (sizeof k_statuses / sizeof k_statuses[0])
#define OTHER_STATUS NSTATUS

static const char *const k_routes[SV_R_COUNT] = {"/.well-known/jwks.json", "/.well-known/openid-configuration",
                                                 "/.well-known/oauth-authorization-server", "/token", "/healthz",
                                                 "/metrics", "other"};

static const char *const k_token_errors[SV_TE_COUNT] = {
    "invalid_request", "invalid_client", "invalid_grant",      "unauthorized_client", "unsupported_grant_type",
    "invalid_scope",   "server_error",   "temporarily_unavailable"};

static const char *const k_actions[] = {"created", "published", "activated", "retiring", "retired",
                                        "revoked", "added",     "waiting",   "reloaded", "failed", "other"};
#define NACTIONS (sizeof k_actions / sizeof k_actions[0])

/* Why a stored keyring document was refused (keys.c). */
static const char *const k_rejections[] = {"unauthenticated", "rollback", "missing"};
#define NREJECTIONS (sizeof k_rejections / sizeof k_rejections[0])

#define MAX_MINT_SLOTS 64u

struct sv_mint_counter {
  char kid[128];
  jwtkit_alg alg;
  atomic_ullong n;
  unsigned refs; /* snapshots holding it (under mint_mu) */
  int used;      /* 0: free */
};

static struct {
  atomic_ullong requests[SV_R_COUNT][NSTATUS + 1];
  atomic_ullong token_errors[SV_TE_COUNT];
  atomic_ullong rotations[NACTIONS];
  atomic_ullong rejected[NREJECTIONS];
  atomic_uint rejecting; /* 1 while the stored document is refused */
  pthread_mutex_t mint_mu;
  struct sv_mint_counter mint[MAX_MINT_SLOTS + 1]; /* last: kid "other" */
  int64_t started;
} g_m = {.mint_mu = PTHREAD_MUTEX_INITIALIZER};

const char *sv_route_path(enum sv_route r) { return r < SV_R_COUNT ? k_routes[r] : "other"; }
const char *sv_token_error_name(enum sv_token_error e) { return e < SV_TE_COUNT ? k_token_errors[e] : "server_error"; }

void sv_metrics_init(void) {
  for (size_t r = 0; r < SV_R_COUNT; r++)
    for (size_t s = 0; s <= NSTATUS; s++) atomic_store(&g_m.requests[r][s], 0);
  for (size_t e = 0; e < SV_TE_COUNT; e++) atomic_store(&g_m.token_errors[e], 0);
  for (size_t a = 0; a < NACTIONS; a++) atomic_store(&g_m.rotations[a], 0);
  for (size_t a = 0; a < NREJECTIONS; a++) atomic_store(&g_m.rejected[a], 0);
  atomic_store(&g_m.rejecting, 0);
  pthread_mutex_lock(&g_m.mint_mu);
  for (size_t i = 0; i <= MAX_MINT_SLOTS; i++) {
    g_m.mint[i].kid[0] = '\0';
    g_m.mint[i].refs = 0;
    g_m.mint[i].used = 0;
    atomic_store(&g_m.mint[i].n, 0);
  }
  snprintf(g_m.mint[MAX_MINT_SLOTS].kid, sizeof g_m.mint[0].kid, "other");
  pthread_mutex_unlock(&g_m.mint_mu);
  g_m.started = jk_now();
}

void sv_metrics_request(enum sv_route r, unsigned status) {
  size_t s = OTHER_STATUS;
  for (size_t i = 0; i < NSTATUS; i++)
    if (k_statuses[i] == status) s = i;
  if (r >= SV_R_COUNT) r = SV_R_OTHER;
  atomic_fetch_add_explicit(&g_m.requests[r][s], 1, memory_order_relaxed);
}

void sv_metrics_token_error(enum sv_token_error e) {
  if (e < SV_TE_COUNT) atomic_fetch_add_explicit(&g_m.token_errors[e], 1, memory_order_relaxed);
}

sv_mint_counter *sv_metrics_mint_slot(const char *kid, jwtkit_alg alg) {
  pthread_mutex_lock(&g_m.mint_mu);
  sv_mint_counter *slot = NULL, *free_slot = NULL;
  for (size_t i = 0; i < MAX_MINT_SLOTS; i++) {
    sv_mint_counter *m = &g_m.mint[i];
    if (m->used && m->alg == alg && strcmp(m->kid, kid) == 0) slot = m;
    if (!m->used && free_slot == NULL) free_slot = m;
  }
  if (slot == NULL && free_slot != NULL && strlen(kid) < sizeof free_slot->kid) {
    slot = free_slot;
    snprintf(slot->kid, sizeof slot->kid, "%s", kid);
    slot->alg = alg;
    slot->used = 1;
    slot->refs = 0;
    atomic_store(&slot->n, 0);
  }
  if (slot == NULL) slot = &g_m.mint[MAX_MINT_SLOTS]; /* "other": never freed */
  else slot->refs++;
  pthread_mutex_unlock(&g_m.mint_mu);
  return slot;
}

void sv_metrics_mint_release(sv_mint_counter *slot) {
  if (slot == NULL || slot == &g_m.mint[MAX_MINT_SLOTS]) return;
  pthread_mutex_lock(&g_m.mint_mu);
  if (slot->refs > 0) slot->refs--;
  pthread_mutex_unlock(&g_m.mint_mu);
}

/* 1 when kid is published (pending, active or retiring) in ks. */
static int published(const sv_keysnap *ks, const char *kid) {
  for (size_t i = 0; i < jwtkit_keyring_count(ks->kr); i++) {
    jwtkit_keyring_entry e;
    if (jwtkit_keyring_get(ks->kr, i, &e) == JWTKIT_OK && e.state <= JWTKIT_KEY_RETIRING && strcmp(e.kid, kid) == 0)
      return 1;
  }
  return 0;
}

/* Free the slots no snapshot signs with whose key ks does not publish. */
static void prune_locked(const sv_keysnap *ks) {
  for (size_t i = 0; i < MAX_MINT_SLOTS; i++) {
    sv_mint_counter *m = &g_m.mint[i];
    if (m->used && m->refs == 0 && !published(ks, m->kid)) {
      m->used = 0;
      m->kid[0] = '\0';
      atomic_store(&m->n, 0);
    }
  }
}

void sv_metrics_mint_prune(const sv_keysnap *ks) {
  if (ks == NULL) return;
  pthread_mutex_lock(&g_m.mint_mu);
  prune_locked(ks);
  pthread_mutex_unlock(&g_m.mint_mu);
}

void sv_metrics_minted(sv_mint_counter *slot) {
  if (slot) atomic_fetch_add_explicit(&slot->n, 1, memory_order_relaxed);
}

void sv_metrics_rotation_action(const char *action) {
  size_t a = NACTIONS - 1;
  for (size_t i = 0; i < NACTIONS; i++)
    if (strcmp(k_actions[i], action) == 0) a = i;
  atomic_fetch_add_explicit(&g_m.rotations[a], 1, memory_order_relaxed);
}

void sv_metrics_keyring_rejected(const char *reason) {
  for (size_t i = 0; i < NREJECTIONS; i++)
    if (strcmp(k_rejections[i], reason) == 0) atomic_fetch_add_explicit(&g_m.rejected[i], 1, memory_order_relaxed);
  atomic_store(&g_m.rejecting, 1);
}

void sv_metrics_keyring_accepted(void) { atomic_store(&g_m.rejecting, 0); }

void sv_metrics_rotation_line(const char *line) {
  /* keyring report lines start with the action: "created active key",
   * "published pending key", "activated key", "key X ... stopped signing and
   * is retiring", "retired key", "revoked key", "added pending key",
   * "waiting: ..." */
  const char *action = "other";
  if (strncmp(line, "created", 7) == 0) action = "created";
  else if (strncmp(line, "published", 9) == 0) action = "published";
  else if (strncmp(line, "activated", 9) == 0) action = "activated";
  else if (strncmp(line, "retired", 7) == 0) action = "retired";
  else if (strncmp(line, "revoked", 7) == 0) action = "revoked";
  else if (strncmp(line, "added", 5) == 0) action = "added";
  else if (strncmp(line, "waiting", 7) == 0) action = "waiting";
  else if (strstr(line, "stopped signing") != NULL) action = "retiring";
  sv_metrics_rotation_action(action);
}

/* The exposition, written with the shared Prometheus writer (label
 * values escaped there). */
char *sv_metrics_render(const sv_keysnap *ks, const sv_conn_metrics *conn, int64_t now, size_t *len) {
  jk_buf b;
  jk_buf_init_max(&b, 2u << 20);
  jk_prom_family(&b, "jwtkit_http_requests_total", "counter", "HTTP requests by path and status.");
  for (size_t r = 0; r < SV_R_COUNT; r++)
    for (size_t s = 0; s <= NSTATUS; s++) {
      unsigned long long v = atomic_load_explicit(&g_m.requests[r][s], memory_order_relaxed);
      if (v == 0) continue;
      char st[16] = "other";
      if (s != OTHER_STATUS) snprintf(st, sizeof st, "%u", k_statuses[s]);
      const char *labels[] = {"path", k_routes[r], "status", st, NULL};
      jk_prom_u64(&b, "jwtkit_http_requests_total", labels, v);
    }
  jk_prom_family(&b, "jwtkit_tokens_issued_total", "counter", "Access tokens minted, by signing key.");
  pthread_mutex_lock(&g_m.mint_mu);
  if (ks != NULL) prune_locked(ks);
  for (size_t i = 0; i <= MAX_MINT_SLOTS; i++) {
    if (i != MAX_MINT_SLOTS && !g_m.mint[i].used) continue;
    unsigned long long v = atomic_load_explicit(&g_m.mint[i].n, memory_order_relaxed);
    if (i == MAX_MINT_SLOTS && v == 0) continue;
    const char *an = jwtkit_alg_name(g_m.mint[i].alg);
    const char *labels[] = {"kid", g_m.mint[i].kid, "alg", an ? an : "other", NULL};
    jk_prom_u64(&b, "jwtkit_tokens_issued_total", labels, v);
  }
  pthread_mutex_unlock(&g_m.mint_mu);
  jk_prom_family(&b, "jwtkit_token_errors_total", "counter", "Token endpoint errors by OAuth error code.");
  for (size_t e = 0; e < SV_TE_COUNT; e++) {
    const char *labels[] = {"error", k_token_errors[e], NULL};
    jk_prom_u64(&b, "jwtkit_token_errors_total", labels, atomic_load_explicit(&g_m.token_errors[e], memory_order_relaxed));
  }
  jk_prom_family(&b, "jwtkit_keyring_rotation_events_total", "counter",
                 "Keyring lifecycle steps taken by the issuer, and snapshots reloaded after external changes.");
  for (size_t a = 0; a < NACTIONS; a++) {
    const char *labels[] = {"action", k_actions[a], NULL};
    jk_prom_u64(&b, "jwtkit_keyring_rotation_events_total", labels,
                atomic_load_explicit(&g_m.rotations[a], memory_order_relaxed));
  }
  jk_prom_family(&b, "jwtkit_keyring_rejected_total", "counter",
                 "Stored keyring documents refused while serving the last good snapshot: changed without the KEK or "
                 "passphrase (unauthenticated), older than one served (rollback), gone (missing).");
  for (size_t a = 0; a < NREJECTIONS; a++) {
    const char *labels[] = {"reason", k_rejections[a], NULL};
    jk_prom_u64(&b, "jwtkit_keyring_rejected_total", labels, atomic_load_explicit(&g_m.rejected[a], memory_order_relaxed));
  }
  jk_prom_family(&b, "jwtkit_keyring_document_rejected", "gauge",
                 "1 while the stored keyring document is refused and the last good snapshot is served.");
  jk_prom_u64(&b, "jwtkit_keyring_document_rejected", NULL, atomic_load(&g_m.rejecting));
  if (ks != NULL) {
    jk_prom_family(&b, "jwtkit_key_age_seconds", "gauge", "Seconds since each published key was created, by state.");
    for (size_t i = 0; i < jwtkit_keyring_count(ks->kr); i++) {
      jwtkit_keyring_entry e;
      if (jwtkit_keyring_get(ks->kr, i, &e) != JWTKIT_OK || e.state > JWTKIT_KEY_RETIRING) continue;
      const char *labels[] = {"kid", e.kid, "alg", jwtkit_alg_name(e.alg), "state", jwtkit_key_state_name(e.state), NULL};
      jk_prom_i64(&b, "jwtkit_key_age_seconds", labels, now - e.created);
    }
    jk_prom_family(&b, "jwtkit_keyring_generation", "gauge", "Generation of the keyring being served.");
    jk_prom_u64(&b, "jwtkit_keyring_generation", NULL, ks->generation);
    jk_prom_family(&b, "jwtkit_jwks_max_age_seconds", "gauge", "Cache-Control max-age of the JWKS.");
    jk_prom_i64(&b, "jwtkit_jwks_max_age_seconds", NULL, ks->timing.max_age);
  }
  sv_keyhealth_render(&b, ks);
  jk_prom_family(&b, "jwtkit_client_jwks_fetches_total", "counter",
                 "Fetches of private_key_jwt clients' jwks_uri sets, by result.");
  uint64_t fetches[SV_REMOTE_RESULTS];
  const char *results[SV_REMOTE_RESULTS];
  sv_remote_fetch_counts(fetches, results);
  for (size_t r = 0; r < SV_REMOTE_RESULTS; r++) {
    const char *labels[] = {"result", results[r], NULL};
    jk_prom_u64(&b, "jwtkit_client_jwks_fetches_total", labels, fetches[r]);
  }
  jk_prom_family(&b, "jwtkit_process_start_time_seconds", "gauge", "Start time of the issuer (Unix seconds).");
  jk_prom_i64(&b, "jwtkit_process_start_time_seconds", NULL, g_m.started);
  if (conn != NULL) {
    jk_prom_family(&b, "jwtkit_connections_open", "gauge", "Open HTTP connections (reserve included).");
    jk_prom_u64(&b, "jwtkit_connections_open", NULL, conn->open);
    jk_prom_family(&b, "jwtkit_connections_closed_total", "counter",
                   "Connections closed by the connection guard, by reason.");
    for (size_t i = 0; i < conn->nreasons; i++) {
      const char *labels[] = {"reason", conn->reasons[i], NULL};
      jk_prom_u64(&b, "jwtkit_connections_closed_total", labels, conn->closed[i]);
    }
    jk_prom_family(&b, "jwtkit_connections_reserve_total", "counter",
                   "Connections admitted into the reserve, and their requests refused (503).");
    const char *admitted[] = {"outcome", "admitted", NULL}, *refused[] = {"outcome", "refused", NULL};
    jk_prom_u64(&b, "jwtkit_connections_reserve_total", admitted, conn->reserve_admitted);
    jk_prom_u64(&b, "jwtkit_connections_reserve_total", refused, conn->reserve_refused);
    jk_prom_family(&b, "jwtkit_token_throttled_total", "counter",
                   "Token requests refused with 429, by the bucket that was empty.");
    const char *by_addr[] = {"by", "address", NULL}, *by_client[] = {"by", "client", NULL};
    jk_prom_u64(&b, "jwtkit_token_throttled_total", by_addr, conn->throttled[0]);
    jk_prom_u64(&b, "jwtkit_token_throttled_total", by_client, conn->throttled[1]);
  }
  return jk_buf_take(&b, len);
}
