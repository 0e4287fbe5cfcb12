/* Internal view of keys and the algorithm table.  Only files under
 * src/crypto/ include OpenSSL headers. */
#ifndef JK_KEY_INTERNAL_H
#define JK_KEY_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>

#include "crypto/seal.h" /* jk_random */
#include "jwtkit/key.h"

/* One row per JWA algorithm; "none" has no row. */
typedef struct jk_alg_info {
  jwtkit_alg id;
  const char *name;
  jwtkit_kty kty;
  const char *md;      /* digest name, NULL for EdDSA */
  unsigned hash_len;   /* digest output bytes; minimum HMAC key length */
  int pss;             /* RSASSA-PSS */
  const char *curve;   /* EC group name (OpenSSL) for ES*, NULL otherwise */
  unsigned ec_bytes;   /* field size in bytes for ES*: r and s each */
} jk_alg_info;

const jk_alg_info *jk_alg_get(jwtkit_alg alg);

/* Per-key pool of prepared OpenSSL contexts.  A thread takes a free slot
 * with one atomic exchange (no lock, no waiting); when every slot is busy
 * it works with temporary contexts instead. */
#define JK_SLOTS 8
struct jk_slot;

struct jwtkit_key {
  atomic_int refs;
  const jk_alg_info *ai;
  jwtkit_kty kty;
  void *pkey;                 /* EVP_PKEY*, NULL for HMAC */
  unsigned char *secret;      /* HMAC only */
  size_t secret_len;
  char *kid;
  size_t kid_len;
  int can_sign;
  unsigned bits;
  const char *curve;          /* JOSE curve name */
  size_t sig_len;             /* exact signature length in bytes */
  unsigned char order[66];    /* EC group order, big-endian, ec_bytes long */
  struct jk_slot *slots;
  struct jk_p11key *p11;      /* private key in a PKCS#11 token (p11_*.c): it signs; pkey is the public half */
};

/* Compute a signature over data.  sig must hold key->sig_len bytes (or 512
 * for RSA up to 4096; the caller passes the capacity).  Returns
 * JWTKIT_OK and sets *sig_len. */
jwtkit_err jk_sig_sign(const jwtkit_key *key, const unsigned char *data, size_t len,
                       unsigned char *sig, size_t cap, size_t *sig_len);
/* The same, with the reason of a failure in info (a token key's failures
 * say what the token did). */
jwtkit_err jk_sig_sign_info(const jwtkit_key *key, const unsigned char *data, size_t len, unsigned char *sig,
                            size_t cap, size_t *sig_len, jwtkit_errinfo *info);

/* 1 when sig is a valid signature of data under key, 0 when not, and a
 * negative value on internal error. */
int jk_sig_verify(const jwtkit_key *key, const unsigned char *data, size_t len,
                  const unsigned char *sig, size_t sig_len);

/* Allocate an empty context pool (NULL on OOM). */
struct jk_slot *jk_slots_new(void);

/* Release the context pool (called on the last reference). */
void jk_slots_free(struct jk_slot *slots);

#endif
