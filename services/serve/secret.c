/* Client secrets.
 *
 * A secret is 32 bytes from the CSPRNG in base64url (43 characters).  Only
 * a slow salted hash of it is stored:
 *   pbkdf2-sha256$<iterations>$<salt b64url>$<PBKDF2-HMAC-SHA-256 b64url>
 * with a fresh 16-byte salt per secret and SV_PBKDF2_ITER iterations (the
 * count is stored, so it can be raised later).  The earlier fast form
 *   sha256$<salt>$<HMAC-SHA256(key=salt, secret)>
 * is still read, so existing clients files keep working; every secret made
 * now is PBKDF2.  Nothing is ever stored in a form that can be decrypted.
 *
 * The slow hash must not cap token throughput: a verification cache
 * remembers (client, stored hash, presented secret) triples that matched,
 * as HMAC-SHA-256 under a per-process random key, in a fixed table.  The
 * stored hash is part of what is remembered, so when a secret is rotated
 * (a new salt and hash) or a client removed, no entry matches any more:
 * the old secret has to go through PBKDF2 again against the new hash, and
 * fails.  Only successes are cached; a wrong secret always costs the full
 * PBKDF2, which the token buckets make the caller pay for
 * (token_fail_cost). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/b64url.h"
#include "core/alloc.h"
#include "crypto/seal.h"
#include "serve.h"

#define SALT_BYTES 16u
#define PBKDF2_PREFIX "pbkdf2-sha256$"
#define LEGACY_PREFIX "sha256$"

int sv_secret_generate(char out[SV_SECRET_CHARS + 1]) {
  unsigned char raw[32];
  if (jk_random(raw, sizeof raw) != 0) return -1;
  out[jk_b64url_encode(out, raw, sizeof raw)] = '\0';
  jk_wipe(raw, sizeof raw);
  return 0;
}

/* The stored hash of secret under h's salt (and iterations). */
static int derive(const sv_secret_hash *h, const char *secret, size_t len, unsigned char out[32]) {
  if (h->iter == 0) return jk_hmac_sha256_2(h->salt, h->salt_len, secret, len, NULL, 0, out);
  return jk_pbkdf2_sha256(secret, len, h->salt, h->salt_len, h->iter, out);
}

int sv_secret_hash_new_iter(const char *secret, size_t len, unsigned iter, char *out, size_t cap) {
  sv_secret_hash h;
  memset(&h, 0, sizeof h);
  if (len < SV_MIN_SECRET_LEN || len > SV_MAX_SECRET_LEN || cap < SV_SECRET_HASH_MAX || iter < 1 ||
      iter > SV_PBKDF2_ITER_MAX)
    return -1;
  h.salt_len = SALT_BYTES;
  h.iter = iter;
  if (jk_random(h.salt, SALT_BYTES) != 0 || derive(&h, secret, len, h.mac) != 0) return -1;
  char s64[32], m64[48];
  s64[jk_b64url_encode(s64, h.salt, SALT_BYTES)] = '\0';
  m64[jk_b64url_encode(m64, h.mac, sizeof h.mac)] = '\0';
  snprintf(out, cap, PBKDF2_PREFIX "%u$%s$%s", iter, s64, m64);
  jk_wipe(&h, sizeof h);
  return 0;
}

int sv_secret_hash_new(const char *secret, size_t len, char *out, size_t cap) {
  return sv_secret_hash_new_iter(secret, len, SV_PBKDF2_ITER, out, cap);
}

int sv_secret_hash_parse(const char *s, sv_secret_hash *h) {
  memset(h, 0, sizeof h[0]);
  const char *salt;
  if (strncmp(s, PBKDF2_PREFIX, strlen(PBKDF2_PREFIX)) == 0) {
    const char *it = s + strlen(PBKDF2_PREFIX);
    size_t n = strspn(it, "0123456789");
    if (n == 0 || n > 8 || it[n] != '$' || it[0] == '0') return -1;
    unsigned long v = strtoul(it, NULL, 10);
    if (v < 1 || v > SV_PBKDF2_ITER_MAX) return -1;
    h->iter = (unsigned)v;
    salt = it + n + 1;
  } else if (strncmp(s, LEGACY_PREFIX, strlen(LEGACY_PREFIX)) == 0) {
    salt = s + strlen(LEGACY_PREFIX);
  } else {
    return -1;
  }
  const char *dollar = strchr(salt, '$');
  if (dollar == NULL) return -1;
  const char *m = dollar + 1;
  size_t sl = (size_t)(dollar - salt), ml = strlen(m);
  /* the decoder needs jk_b64url_dec_max(n) bytes: 2 more than the most
   * that is kept */
  unsigned char sb[sizeof h->salt + 2], mb[sizeof h->mac + 2];
  size_t sn = 0, mn = 0;
  if (jk_b64url_dec_max(sl) > sizeof sb || jk_b64url_decode(sb, &sn, salt, sl) != 0 || sn < 16 ||
      sn > sizeof h->salt || jk_b64url_dec_max(ml) > sizeof mb || jk_b64url_decode(mb, &mn, m, ml) != 0 ||
      mn != sizeof h->mac) {
    memset(h, 0, sizeof h[0]);
    return -1;
  }
  memcpy(h->salt, sb, sn);
  h->salt_len = sn;
  memcpy(h->mac, mb, sizeof h->mac);
  return 0;
}

/* ------------------------------------------------- verification cache */

#define CACHE_SETS 1024u /* x CACHE_WAYS entries: 4096 verified triples */
#define CACHE_WAYS 4u
#define CACHE_STRIPES 64u

static struct {
  pthread_once_t once;
  int ready;
  unsigned char key[32]; /* per process, random */
  pthread_mutex_t mu[CACHE_STRIPES];
  struct {
    unsigned char d[CACHE_WAYS][32];
    unsigned char used[CACHE_WAYS];
    unsigned next; /* the way replaced next (round robin) */
  } set[CACHE_SETS];
  atomic_ullong hits, misses;
} g_cache = {.once = PTHREAD_ONCE_INIT};

static void cache_init(void) {
  for (size_t i = 0; i < CACHE_STRIPES; i++) pthread_mutex_init(&g_cache.mu[i], NULL);
  g_cache.ready = jk_random(g_cache.key, sizeof g_cache.key) == 0;
}

/* What is remembered of a triple: HMAC-SHA-256(process key, name NUL
 * iterations salt stored-hash NUL secret). */
static int cache_digest(const char *name, const sv_secret_hash *h, const char *secret, size_t len,
                        unsigned char out[32]) {
  unsigned char rec[SV_MAX_CLIENT_NAME + 1 + 4 + sizeof h->salt + sizeof h->mac + 1];
  size_t nl = strlen(name), o = 0;
  if (nl > SV_MAX_CLIENT_NAME) return -1;
  memcpy(rec, name, nl + 1);
  o = nl + 1;
  rec[o++] = (unsigned char)(h->iter >> 24);
  rec[o++] = (unsigned char)(h->iter >> 16);
  rec[o++] = (unsigned char)(h->iter >> 8);
  rec[o++] = (unsigned char)h->iter;
  memcpy(rec + o, h->salt, h->salt_len);
  o += h->salt_len;
  memcpy(rec + o, h->mac, sizeof h->mac);
  o += sizeof h->mac;
  rec[o++] = 0;
  int rc = jk_hmac_sha256_2(g_cache.key, sizeof g_cache.key, rec, o, secret, len, out);
  jk_wipe(rec, sizeof rec);
  return rc;
}

static size_t set_of(const unsigned char d[32]) {
  return ((size_t)d[0] | ((size_t)d[1] << 8)) % CACHE_SETS;
}

/* 1 when d is remembered (every way compared in constant time). */
static int cache_has(const unsigned char d[32]) {
  size_t si = set_of(d);
  pthread_mutex_t *mu = &g_cache.mu[si % CACHE_STRIPES];
  int found = 0;
  pthread_mutex_lock(mu);
  for (size_t w = 0; w < CACHE_WAYS; w++) found |= g_cache.set[si].used[w] & jk_ct_equal(g_cache.set[si].d[w], d, 32);
  pthread_mutex_unlock(mu);
  return found;
}

static void cache_put(const unsigned char d[32]) {
  size_t si = set_of(d);
  pthread_mutex_t *mu = &g_cache.mu[si % CACHE_STRIPES];
  pthread_mutex_lock(mu);
  unsigned w = g_cache.set[si].next % CACHE_WAYS;
  memcpy(g_cache.set[si].d[w], d, 32);
  g_cache.set[si].used[w] = 1;
  g_cache.set[si].next = w + 1;
  pthread_mutex_unlock(mu);
}

void sv_secret_cache_clear(void) {
  pthread_once(&g_cache.once, cache_init);
  for (size_t si = 0; si < CACHE_SETS; si++) {
    pthread_mutex_t *mu = &g_cache.mu[si % CACHE_STRIPES];
    pthread_mutex_lock(mu);
    jk_wipe(&g_cache.set[si], sizeof g_cache.set[si]);
    pthread_mutex_unlock(mu);
  }
  atomic_store(&g_cache.hits, 0);
  atomic_store(&g_cache.misses, 0);
}

void sv_secret_cache_stats(uint64_t *hits, uint64_t *misses) {
  *hits = atomic_load(&g_cache.hits);
  *misses = atomic_load(&g_cache.misses);
}

/* ---------------------------------------------------------- checking */

static atomic_uint g_dummy_iter = SV_PBKDF2_ITER;

void sv_secret_set_dummy_iter(unsigned iter) { atomic_store(&g_dummy_iter, iter ? iter : SV_PBKDF2_ITER); }

int sv_secret_check(const sv_secret_hash *h, const char *secret, size_t len) {
  sv_secret_hash dummy = {.salt_len = SALT_BYTES, .iter = atomic_load(&g_dummy_iter)};
  unsigned char m[32];
  int ok_len = len >= SV_MIN_SECRET_LEN && len <= SV_MAX_SECRET_LEN;
  /* the hash is computed for unknown clients too (as slow as a real one),
   * so the response time does not tell which client names exist */
  if (derive(h ? h : &dummy, secret, len > SV_MAX_SECRET_LEN ? SV_MAX_SECRET_LEN : len, m) != 0) return 0;
  int eq = h != NULL && jk_ct_equal(m, h->mac, sizeof m);
  jk_wipe(m, sizeof m);
  return eq && ok_len;
}

int sv_secret_verify(const char *name, const sv_secret_hash *h, const char *secret, size_t len) {
  pthread_once(&g_cache.once, cache_init);
  unsigned char d[32];
  int cacheable = h != NULL && name != NULL && g_cache.ready && len >= SV_MIN_SECRET_LEN && len <= SV_MAX_SECRET_LEN &&
                  cache_digest(name, h, secret, len, d) == 0;
  if (cacheable && cache_has(d)) {
    atomic_fetch_add_explicit(&g_cache.hits, 1, memory_order_relaxed);
    jk_wipe(d, sizeof d);
    return 1;
  }
  atomic_fetch_add_explicit(&g_cache.misses, 1, memory_order_relaxed);
  int ok = sv_secret_check(h, secret, len);
  if (ok && cacheable) cache_put(d);
  jk_wipe(d, sizeof d);
  return ok;
}
