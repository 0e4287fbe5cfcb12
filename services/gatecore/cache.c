/*
 * Verified-token cache.
 *
 * Keyed by SHA-256 of the whole compact token (plus the route index, so a
 * token allowed by one route's policy is never an allow for another).
 * Only allow decisions are cached: a denial depends on state that changes
 * (a kid not fetched yet, nbf, a JWK Set not ready), and caching garbage
 * would let anyone flush the good entries.  An entry holds the header
 * values to emit, the token's exp (the entry dies at exp, without leeway),
 * the kid and the JWKS generation it was verified against; when the
 * generation moved, the caller's check drops it unless its kid is still
 * trusted.  Bounded: `capacity` entries in total, spread over up to 64
 * stripes, each with its own mutex, hash table and LRU list, so threads
 * rarely contend.  Entries are refcounted so a hit is used outside the lock.
 */
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"
#include "common/attr.h"

typedef struct stripe {
  pthread_mutex_t mu;
  gw_tc_entry **buckets;
  size_t mask;
  gw_tc_entry *head, *tail; /* head = most recently used */
  size_t count, cap;
  char pad[64];
} stripe;

struct gw_tcache {
  size_t nstripes;
  size_t capacity;
  atomic_long count;
  stripe *st;
};

static size_t pow2_at_least(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

gw_tcache *gw_tcache_new(size_t capacity) {
  if (capacity == 0) return NULL;
  gw_tcache *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  size_t ns = 64;
  while (ns > 1 && capacity / ns < 16) ns >>= 1; /* small caches: fewer, fuller stripes */
  c->nstripes = ns;
  c->capacity = capacity;
  c->st = calloc(ns, sizeof *c->st);
  if (c->st == NULL) {
    free(c);
    return NULL;
  }
  for (size_t i = 0; i < ns; i++) {
    stripe *s = &c->st[i];
    s->cap = capacity / ns + (i < capacity % ns ? 1 : 0);
    size_t nb = pow2_at_least(s->cap < 16 ? 16 : s->cap);
    s->buckets = calloc(nb, sizeof *s->buckets);
    s->mask = nb - 1;
    if (s->buckets == NULL || pthread_mutex_init(&s->mu, NULL) != 0) {
      free(s->buckets);
      for (size_t j = 0; j < i; j++) {
        free(c->st[j].buckets);
        pthread_mutex_destroy(&c->st[j].mu);
      }
      free(c->st);
      free(c);
      return NULL;
    }
  }
  return c;
}

void gw_tc_entry_release(gw_tc_entry *e) {
  if (e != NULL && atomic_fetch_sub(&e->refs, 1) == 1) free(e);
}

void gw_tcache_free(gw_tcache *c) {
  if (c == NULL) return;
  for (size_t i = 0; i < c->nstripes; i++) {
    stripe *s = &c->st[i];
    gw_tc_entry *e = s->head;
    while (e != NULL) {
      gw_tc_entry *n = e->next;
      gw_tc_entry_release(e);
      e = n;
    }
    free(s->buckets);
    pthread_mutex_destroy(&s->mu);
  }
  free(c->st);
  free(c);
}

size_t gw_tcache_capacity(const gw_tcache *c) { return c ? c->capacity : 0; }
size_t gw_tcache_count(const gw_tcache *c) {
  long n = c ? atomic_load(&((gw_tcache *)JK_UNCONST(c))->count) : 0;
  return n > 0 ? (size_t)n : 0;
}

static uint64_t rd64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static stripe *stripe_of(gw_tcache *c, const unsigned char key[32]) {
  return &c->st[rd64(key) & (c->nstripes - 1)];
}

static size_t bucket_of(const stripe *s, const unsigned char key[32], uint32_t route) {
  return (size_t)((rd64(key + 8) ^ route) & s->mask);
}

/* unlink from the LRU list and the hash chain (under the stripe lock) */
static void unlink_entry(gw_tcache *c, stripe *s, gw_tc_entry *e) {
  gw_tc_entry **pp = &s->buckets[bucket_of(s, e->key, e->route)];
  while (*pp != NULL && *pp != e) pp = &(*pp)->hnext;
  if (*pp == e) *pp = e->hnext;
  if (e->prev) e->prev->next = e->next;
  else s->head = e->next;
  if (e->next) e->next->prev = e->prev;
  else s->tail = e->prev;
  e->prev = e->next = e->hnext = NULL;
  s->count--;
  atomic_fetch_sub(&c->count, 1);
}

static void push_front(stripe *s, gw_tc_entry *e) {
  e->prev = NULL;
  e->next = s->head;
  if (s->head) s->head->prev = e;
  s->head = e;
  if (s->tail == NULL) s->tail = e;
}

static gw_tc_entry *find(stripe *s, const unsigned char key[32], uint32_t route) {
  for (gw_tc_entry *e = s->buckets[bucket_of(s, key, route)]; e != NULL; e = e->hnext)
    if (e->route == route && memcmp(e->key, key, 32) == 0) return e;
  return NULL;
}

gw_tc_entry *gw_tcache_get(gw_tcache *c, const unsigned char key[32], uint32_t route, int64_t now,
                           gw_tc_check_fn check, void *ctx) {
  if (c == NULL) return NULL;
  stripe *s = stripe_of(c, key);
  pthread_mutex_lock(&s->mu);
  gw_tc_entry *e = find(s, key, route);
  if (e == NULL) {
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&gw_stats.tc_misses, 1);
    return NULL;
  }
  uint64_t ng = e->gen;
  int expired = now >= e->expires;
  if (expired || (check != NULL && !check(ctx, e, &ng))) {
    unlink_entry(c, s, e);
    pthread_mutex_unlock(&s->mu);
    gw_tc_entry_release(e);
    atomic_fetch_add(expired ? &gw_stats.tc_expired : &gw_stats.tc_invalidated, 1);
    atomic_fetch_add(&gw_stats.tc_misses, 1);
    return NULL;
  }
  e->gen = ng;
  if (s->head != e) {
    if (e->prev) e->prev->next = e->next;
    if (e->next) e->next->prev = e->prev;
    else s->tail = e->prev;
    push_front(s, e);
  }
  atomic_fetch_add(&e->refs, 1);
  pthread_mutex_unlock(&s->mu);
  atomic_fetch_add(&gw_stats.tc_hits, 1);
  return e;
}

void gw_tcache_put(gw_tcache *c, const unsigned char key[32], uint32_t route, int64_t expires, uint64_t gen,
                   int legacy, const char *kid, size_t kid_len, const gw_header *hv, size_t nhv) {
  if (c == NULL || nhv > 255 || kid_len > 0xFFFF) return;
  size_t data = kid_len;
  for (size_t i = 0; i < nhv; i++) {
    if (hv[i].len > 0xFFFF) return;
    data += 3 + hv[i].len;
  }
  gw_tc_entry *e = malloc(sizeof *e + data);
  if (e == NULL) return;
  memset(e, 0, sizeof *e);
  atomic_init(&e->refs, 1);
  memcpy(e->key, key, 32);
  e->route = route;
  e->expires = expires;
  e->gen = gen;
  e->legacy = legacy ? 1 : 0;
  e->nhdr = (uint8_t)nhv;
  e->kid_len = (uint16_t)kid_len;
  e->data_len = data;
  unsigned char *p = e->data;
  if (kid_len) memcpy(p, kid, kid_len);
  p += kid_len;
  for (size_t i = 0; i < nhv; i++) {
    *p++ = hv[i].map;
    *p++ = (unsigned char)(hv[i].len & 0xFF);
    *p++ = (unsigned char)(hv[i].len >> 8);
    memcpy(p, hv[i].val, hv[i].len);
    p += hv[i].len;
  }

  gw_tc_entry *victim[2] = {NULL, NULL};
  size_t nv = 0;
  stripe *s = stripe_of(c, key);
  pthread_mutex_lock(&s->mu);
  gw_tc_entry *old = find(s, key, route);
  if (old != NULL) {
    unlink_entry(c, s, old);
    victim[nv++] = old;
  }
  size_t b = bucket_of(s, key, route);
  e->hnext = s->buckets[b];
  s->buckets[b] = e;
  push_front(s, e);
  s->count++;
  atomic_fetch_add(&c->count, 1);
  if (s->count > s->cap) {
    gw_tc_entry *t = s->tail;
    unlink_entry(c, s, t);
    victim[nv++] = t;
    atomic_fetch_add(&gw_stats.tc_evictions, 1);
  }
  pthread_mutex_unlock(&s->mu);
  atomic_fetch_add(&gw_stats.tc_inserts, 1);
  for (size_t i = 0; i < nv; i++) gw_tc_entry_release(victim[i]);
}

const char *gw_tc_entry_kid(const gw_tc_entry *e, size_t *len) {
  *len = e->kid_len;
  return e->kid_len ? (const char *)e->data : NULL;
}

int gw_tc_entry_header(const gw_tc_entry *e, size_t *pos, gw_header *out) {
  size_t p = *pos == 0 ? e->kid_len : *pos;
  if (p + 3 > e->data_len) return 0;
  out->map = e->data[p];
  out->len = (size_t)e->data[p + 1] | ((size_t)e->data[p + 2] << 8);
  out->val = (const char *)e->data + p + 3;
  out->name = NULL;
  *pos = p + 3 + out->len;
  return 1;
}
