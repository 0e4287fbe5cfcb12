/* The verification module's shared types: the policy's rules, the
 * policy, the immutable verifier and verified claims.
 *   policy.c   policies (sticky setters) and building verifiers
 *   verify.c   verifying a token: split, header, key, signature, claims
 *   claims.c   verified claims and their accessors; decoding unverified */
#ifndef JK_VERIFY_INTERNAL_H
#define JK_VERIFY_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/json.h"
#include "jwtkit/jwt.h"

#define JK_HEADER_STACK 2048u /* encoded headers up to this size are decoded on the stack */
#define JK_HEADER_NODES 64u   /* header JSON values parsed into a stack array; more go to the heap */
#define JK_MAX_SIG_B64 2732u  /* base64url of a 2048-byte signature */
#define JK_MAX_LIST 64u       /* issuers, audiences, required claims */
#define JK_MAX_KEYS 4096u
#define JK_CLAIM_NODES 48u    /* nodes reserved inline for a typical payload */
#define JK_STACK_PAYLOAD 2048u /* decoded payloads up to this size need no heap when no claims are wanted */
#define JK_TIME_BOUND 100000000000000LL /* |now| bound: ~3 million years */


typedef struct strlist {
  char **v;
  size_t n;
} strlist;

typedef struct rules {
  unsigned allowed; /* bit (1u << alg) */
  jwtkit_key **keys;
  size_t nkeys;
  strlist iss, aud, req;
  int ignore_aud;
  char *typ;
  char *sub;
  int64_t leeway;
  int require_exp;
  int64_t max_age;
  jwtkit_clock_fn clock;
  void *clock_ctx;
  size_t max_token;
  size_t max_header;        /* encoded header bytes */
  uint32_t max_header_values; /* JSON values in the header */
  jwtkit_kidless kidless;
} rules;

struct jwtkit_policy {
  rules r;
  /* The first failed setter's error, kept: a verifier must never be built
   * from a policy that silently lost an issuer, audience or key because the
   * caller did not check a setter (the verifier would fail open). */
  jwtkit_err err;
  const char *err_fn;
};
struct jwtkit_verifier {
  atomic_int refs;
  rules r;
};

struct jwtkit_claims {
  jwtkit_alg alg;
  jwtkit_key *key;     /* the trusted key that verified the token (a reference) */
  const char *kid;     /* NUL-terminated, or NULL */
  const char *header;  /* header JSON */
  size_t header_len;
  char *strings;       /* payload copy with strings unescaped in place */
  jk_jdoc doc;         /* payload */
  jk_jnode *heap_nodes;
};

#endif
