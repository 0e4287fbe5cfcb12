/*
 * bench/bench.h - shared pieces of jwtkit-bench.
 *
 * One "fixture" per algorithm row holds the jwtkit objects and the key
 * material every contender (jwtkit, the raw OpenSSL floor, libjwt) starts
 * from, plus the one token all three verify.  The floor and the libjwt peer
 * live in their own files so that only floor.c includes OpenSSL and only
 * peer_libjwt.c includes libjwt.
 */
#ifndef JWTKIT_BENCH_H
#define JWTKIT_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "jwtkit/jwtkit.h"

#define BENCH_KID "bench-key"
#define BENCH_SUB "user-1234567890"
#define BENCH_ISS "https://issuer.example.com"
#define BENCH_AUD "api.example.com"
#define BENCH_SCOPE "read:messages write:messages"
#define BENCH_TTL 3600
#define BENCH_LEEWAY 60 /* jwtkit's default; the libjwt peer applies the same */

#define BENCH_TOKEN_CAP 2048u /* RSA-2048 tokens of the fixed shape are ~700 bytes */

/* One row of the table. */
typedef struct bench_alg {
  const char *label; /* "HS256", ..., "EdDSA" (Ed25519), "Ed448" */
  jwtkit_alg alg;
  unsigned bits;     /* jwtkit_key_generate bits: RSA modulus, 448 for Ed448 */
} bench_alg;

/* Rows in table order; *count receives their number. */
const bench_alg *bench_algs(size_t *count);

/* 1 for HS256/384/512. */
int bench_alg_is_hmac(const bench_alg *a);

typedef struct bench_fixture {
  const bench_alg *a;
  int64_t now;                   /* iat, and the clock of every verify */
  char claims[256];              /* the fixed claims JSON text */
  size_t claims_len;
  char header[128];              /* the protected header JSON text */
  size_t header_len;
  unsigned char secret[64];      /* HMAC only */
  size_t secret_len;
  char *priv_pem;                /* PKCS#8 PEM (RSA/EC/OKP), jwtkit_free */
  size_t priv_pem_len;
  char *pub_pem;                 /* SPKI PEM (RSA/EC/OKP), jwtkit_free */
  size_t pub_pem_len;
  jwtkit_key *sign_key;          /* private key / secret, kid "bench-key" */
  jwtkit_key *verify_key;        /* public key from pub_pem / same secret */
  jwtkit_signer *signer;
  jwtkit_verifier *verifier;     /* allow alg, the key, iss, aud */
  char token[BENCH_TOKEN_CAP];   /* signed by jwtkit; every verify uses it */
  size_t token_len;
} bench_fixture;

/* Build the fixture and the token; 0 or -1 with a message in err. */
int fixture_init(bench_fixture *fx, const bench_alg *a, int64_t now, char *err, size_t errlen);
void fixture_free(bench_fixture *fx);
/* Release material cached across fixtures (the RSA key). */
void fixture_cleanup(void);

/* An operation under measurement: 0 on success, anything else aborts. */
typedef int (*bench_op)(void *ctx);

/* jwtkit operations on a fixture (ctx = bench_fixture *). */
int jk_op_sign(void *ctx);
int jk_op_verify(void *ctx);        /* jwtkit_verify_at, claims = NULL */
int jk_op_verify_claims(void *ctx); /* jwtkit_verify_at, claims out + free */
/* jwtkit verify of any token with the fixture's verifier: JWTKIT_OK or the error. */
jwtkit_err jk_verify_token(const bench_fixture *fx, const char *tok, size_t len, jwtkit_errinfo *info);

/* ------------------------------------------------------------ timing */

double bench_now(void);        /* monotonic seconds */
double bench_thread_cpu(void); /* CPU seconds of the calling thread */

typedef struct bench_meter {
  bench_op op;
  void *ctx;
  unsigned batch; /* ops between clock reads; set by bench_warmup */
} bench_meter;

typedef struct bench_sample {
  double ops;  /* operations completed */
  double wall; /* wall-clock seconds they took */
  double cpu;  /* CPU seconds the measuring thread used meanwhile */
} bench_sample;

/* Run the op for about `seconds` to warm caches and size the batch.
 * Returns ops/s, or a negative value when the op failed. */
double bench_warmup(bench_meter *m, double seconds);

/* Run the op for a slice of `seconds` of the thread's CPU time (cpu_slice)
 * or of wall-clock time, in whole batches.  0, or -1 when the op failed. */
int bench_measure(const bench_meter *m, double seconds, int cpu_slice, bench_sample *out);

/* Median of n values (n >= 1); the array is sorted in place. */
double bench_median(double *v, size_t n);

/* ------------------------------------------------------------- floor */

/* The raw OpenSSL floor for the same crypto: base64url + sign/verify, no
 * JSON (see floor.c). */
typedef struct floor_ctx floor_ctx;

/* share: NULL, or a context whose EVP_PKEYs this one uses too (the
 * contexts themselves are never shared; one per thread). */
floor_ctx *floor_new(const bench_fixture *fx, const floor_ctx *share, char *err, size_t errlen);
void floor_free(floor_ctx *f);
int floor_op_sign(void *ctx);   /* ctx = floor_ctx * */
int floor_op_verify(void *ctx); /* verifies fx->token */
/* Sign once into out (cap bytes); returns the token length or 0. */
size_t floor_sign_token(floor_ctx *f, char *out, size_t cap);
/* 1 when tok verifies under the floor's public key, else 0. */
int floor_verify_token(floor_ctx *f, const char *tok, size_t len);
const char *floor_openssl_version(void);
/* n bytes from OpenSSL's CSPRNG; 0 on success. */
int floor_random(unsigned char *out, size_t n);

/* ---------------------------------------------------------- libjwt peer */

typedef struct peer_ctx peer_ctx;

/* 1 when libjwt was found at build time. */
int peer_available(void);
const char *peer_version(void);
/* 1 when the peer implements the row's algorithm. */
int peer_supports(const bench_alg *a);
/* NULL with a message in err on failure. */
peer_ctx *peer_new(const bench_fixture *fx, char *err, size_t errlen);
void peer_free(peer_ctx *p);
int peer_op_sign(void *ctx);   /* ctx = peer_ctx * */
int peer_op_verify(void *ctx); /* decodes fx->token and checks exp/iat/iss/aud */
/* Sign once; the token is copied to out (cap bytes).  Length or 0. */
size_t peer_sign_token(peer_ctx *p, char *out, size_t cap);
/* 1 when libjwt accepts tok (signature, alg and the same claim checks). */
int peer_verify_token(peer_ctx *p, const char *tok);

#endif
