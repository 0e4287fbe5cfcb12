/* Token buckets for POST /token, keyed by source address and by client.
 *
 * Two tables of SV_RL_SETS sets of SV_RL_WAYS entries each (8192 entries,
 * about 400 KiB per table, allocated once): a key hashes to one set
 * (keyed hash, random per process, so a client cannot aim at a set); a new
 * key takes an empty way or the least recently used one.  A key that loses
 * its entry starts again with a full bucket, which is what a bucket that
 * has been idle long enough holds anyway.  IPv6 addresses are keyed by
 * their /64 (one subscriber usually holds a whole /64).
 *
 * Tokens are kept in millionths.  A request is admitted when both of its
 * buckets hold at least one token; afterwards it is charged: 1 for a
 * token issued or a server error, token_fail_cost for any other refusal
 * (failed authentication first of all), nothing for a 429.  A bucket may
 * go below zero, down to minus its burst: failures are paid for in
 * waiting time. */
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/seal.h"
#include "serve.h"
#include "common/attr.h"

#define SV_RL_SETS 1024u
#define SV_RL_WAYS 8u
#define SV_RL_LOCKS 64u
#define MICRO 1000000LL

typedef struct rl_entry {
  unsigned char key[16];
  int64_t tokens;     /* millionths */
  int64_t updated_ms; /* 0: empty */
} rl_entry;

typedef struct rl_table {
  rl_entry *e; /* SV_RL_SETS * SV_RL_WAYS */
  pthread_mutex_t mu[SV_RL_LOCKS];
} rl_table;

struct sv_limiter {
  rl_table t[2]; /* 0: addresses, 1: clients */
  uint64_t seed[2];
  atomic_ulong throttled[2];
};

static uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

static uint64_t keyed_hash(uint64_t seed, const unsigned char *p, size_t n) {
  uint64_t h = seed ^ (0x9e3779b97f4a7c15ULL * (n + 1));
  for (size_t i = 0; i < n; i++) h = mix(h ^ p[i]) + i;
  return mix(h);
}

sv_limiter *sv_limiter_new(void) {
  sv_limiter *l = calloc(1, sizeof *l);
  if (l == NULL) return NULL;
  for (int k = 0; k < 2; k++) {
    l->t[k].e = calloc((size_t)SV_RL_SETS * SV_RL_WAYS, sizeof(rl_entry));
    if (l->t[k].e == NULL) {
      free(l->t[0].e);
      free(l);
      return NULL;
    }
    for (unsigned i = 0; i < SV_RL_LOCKS; i++) pthread_mutex_init(&l->t[k].mu[i], NULL);
    atomic_init(&l->throttled[k], 0);
  }
  if (jk_random((unsigned char *)l->seed, sizeof l->seed) != 0) {
    sv_limiter_free(l);
    return NULL;
  }
  return l;
}

void sv_limiter_free(sv_limiter *l) {
  if (l == NULL) return;
  for (int k = 0; k < 2; k++) {
    if (l->t[k].e == NULL) continue;
    for (unsigned i = 0; i < SV_RL_LOCKS; i++) pthread_mutex_destroy(&l->t[k].mu[i]);
    free(l->t[k].e);
  }
  free(l);
}

uint64_t sv_limiter_throttled(const sv_limiter *l, int which) {
  return l ? atomic_load(&((sv_limiter *)JK_UNCONST(l))->throttled[which ? 1 : 0]) : 0;
}

void sv_limiter_key_addr(const void *sockaddr, unsigned char key[16]) {
  memset(key, 0, 16);
  const struct sockaddr *sa = sockaddr;
  if (sa == NULL) return;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = sockaddr;
    key[10] = key[11] = 0xff; /* the IPv4-mapped form */
    memcpy(key + 12, &a->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = sockaddr;
    memcpy(key, &a->sin6_addr, 16);
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(key, mapped, 12) != 0) memset(key + 8, 0, 8); /* the /64 */
  }
}

/* Refill e for `now` (under the lock). */
static void refill(rl_entry *e, const sv_rate *r, long long burst, int64_t now) {
  int64_t cap = burst * MICRO;
  int64_t el = now - e->updated_ms;
  if (el > 0) {
    if (el > 1000000000LL) el = 1000000000LL;
    /* count per `per` seconds = count * 1000 / per millionths per ms */
    int64_t add = el * r->count * 1000 / r->per;
    e->tokens = e->tokens + add > cap ? cap : e->tokens + add;
    e->updated_ms = now;
  }
}

/* The entry of key in table k, created full when absent (under the set's lock). */
static rl_entry *find(sv_limiter *l, int k, const unsigned char key[16], long long burst, int64_t now,
                      pthread_mutex_t **mu) {
  uint64_t h = keyed_hash(l->seed[k], key, 16);
  unsigned set = (unsigned)(h % SV_RL_SETS);
  *mu = &l->t[k].mu[set % SV_RL_LOCKS];
  pthread_mutex_lock(*mu);
  rl_entry *ways = &l->t[k].e[(size_t)set * SV_RL_WAYS], *victim = &ways[0];
  for (unsigned w = 0; w < SV_RL_WAYS; w++) {
    if (ways[w].updated_ms != 0 && memcmp(ways[w].key, key, 16) == 0) return &ways[w];
    if (ways[w].updated_ms < victim->updated_ms) victim = &ways[w];
  }
  memcpy(victim->key, key, 16);
  victim->tokens = burst * MICRO;
  victim->updated_ms = now > 0 ? now : 1;
  return victim;
}

static void client_key(sv_limiter *l, const char *client, unsigned char key[16]) {
  size_t n = strlen(client);
  uint64_t a = keyed_hash(l->seed[1] ^ 0x5151515151515151ULL, (const unsigned char *)client, n);
  uint64_t b = keyed_hash(~l->seed[1], (const unsigned char *)client, n);
  memcpy(key, &a, 8);
  memcpy(key + 8, &b, 8);
}

/* 0 when the bucket holds a token, else the seconds until it does. */
static int64_t check(sv_limiter *l, int k, const unsigned char key[16], const sv_rate *r, long long burst,
                     int64_t now) {
  pthread_mutex_t *mu;
  rl_entry *e = find(l, k, key, burst, now, &mu);
  refill(e, r, burst, now);
  int64_t wait = 0;
  if (e->tokens < MICRO) {
    int64_t rate = r->count * 1000; /* millionths per `per` ms */
    int64_t ms = ((MICRO - e->tokens) * r->per + rate - 1) / rate;
    wait = (ms + 999) / 1000;
    if (wait < 1) wait = 1;
  }
  pthread_mutex_unlock(mu);
  return wait;
}

static void charge(sv_limiter *l, int k, const unsigned char key[16], const sv_rate *r, long long burst,
                   long long cost, int64_t now) {
  pthread_mutex_t *mu;
  rl_entry *e = find(l, k, key, burst, now, &mu);
  refill(e, r, burst, now);
  e->tokens -= cost * MICRO;
  if (e->tokens < -burst * MICRO) e->tokens = -burst * MICRO;
  pthread_mutex_unlock(mu);
}

int sv_limiter_admit(sv_limiter *l, const sv_settings *s, const unsigned char addr[16], const char *client,
                     int64_t now_ms, int64_t *retry_after) {
  *retry_after = 0;
  if (l == NULL) return 0;
  if (addr != NULL && s->rate_ip.count > 0) {
    int64_t w = check(l, 0, addr, &s->rate_ip, s->burst_ip, now_ms);
    if (w > 0) {
      *retry_after = w;
      atomic_fetch_add(&l->throttled[0], 1);
      return SV_RL_BY_ADDR;
    }
  }
  if (client != NULL && s->rate_client.count > 0) {
    unsigned char key[16];
    client_key(l, client, key);
    int64_t w = check(l, 1, key, &s->rate_client, s->burst_client, now_ms);
    if (w > 0) {
      *retry_after = w;
      atomic_fetch_add(&l->throttled[1], 1);
      return SV_RL_BY_CLIENT;
    }
  }
  return 0;
}

void sv_limiter_charge(sv_limiter *l, const sv_settings *s, const unsigned char addr[16], const char *client,
                       long long cost, int64_t now_ms) {
  if (l == NULL || cost <= 0) return;
  if (addr != NULL && s->rate_ip.count > 0) charge(l, 0, addr, &s->rate_ip, s->burst_ip, cost, now_ms);
  if (client != NULL && client[0] != '\0' && s->rate_client.count > 0) {
    unsigned char key[16];
    client_key(l, client, key);
    charge(l, 1, key, &s->rate_client, s->burst_client, cost, now_ms);
  }
}
