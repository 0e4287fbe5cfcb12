/* The assertion ids (jti) of private_key_jwt seen by this process, for
 * replay detection (RFC 7523 §3 item 7): a fixed table of SV_JTI_SLOTS
 * slots, each the first 16 bytes of SHA-256(client NUL jti) and the time it
 * may be forgotten (the assertion's exp plus the leeway: before that the
 * same assertion would still verify).  An id lives within a window of
 * PROBE slots from its home; a lookup scans the whole window (an expired
 * or empty slot does not end it), so a live id is always found, and a new
 * one takes the first free or expired slot.  A window with no room refuses
 * the assertion (fail closed): with assertions living at most
 * SV_ASSERTION_MAX_LIFETIME + SV_ASSERTION_LEEWAY seconds, that takes tens
 * of thousands of live assertions. */
#include <pthread.h>
#include <string.h>

#include "crypto/seal.h"
#include "serve.h"

#define PROBE 64u

typedef struct jti_slot {
  unsigned char h[16];
  int64_t until; /* 0: empty */
} jti_slot;

static jti_slot g_slots[SV_JTI_SLOTS];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

int sv_jti_remember(const char *client, const char *jti, size_t jti_len, int64_t until, int64_t now) {
  unsigned char d[32];
  if (jk_sha256_2(client, strlen(client) + 1, jti, jti_len, d) != 0) return -1;
  uint32_t home = ((uint32_t)d[16] | (uint32_t)d[17] << 8 | (uint32_t)d[18] << 16 | (uint32_t)d[19] << 24) %
                  SV_JTI_SLOTS;
  int rc = -1;
  pthread_mutex_lock(&g_mu);
  jti_slot *free_slot = NULL;
  for (uint32_t i = 0; i < PROBE; i++) {
    jti_slot *s = &g_slots[(home + i) % SV_JTI_SLOTS];
    int live = s->until > now;
    if (live && memcmp(s->h, d, sizeof s->h) == 0) {
      rc = 1;
      break;
    }
    if (!live && free_slot == NULL) free_slot = s;
  }
  if (rc != 1 && free_slot != NULL) {
    memcpy(free_slot->h, d, sizeof free_slot->h);
    free_slot->until = until > now ? until : now + 1;
    rc = 0;
  }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

void sv_jti_reset(void) {
  pthread_mutex_lock(&g_mu);
  memset(g_slots, 0, sizeof g_slots);
  pthread_mutex_unlock(&g_mu);
}
