/*
 * Shared helpers of the libFuzzer harnesses (fuzz/fuzz_*.c).
 *
 * Every harness defines one entry point, jkf_<name>(data, size), and - unless
 * JKF_NO_FUZZER_ENTRY is defined - LLVMFuzzerTestOneInput calling it.  The
 * regression test (tests/regress/regress_cases.c) compiles the same files
 * with JKF_NO_FUZZER_ENTRY and feeds the saved inputs through the same code.
 *
 * A property violation calls jkf_fail(), which prints what broke and
 * abort()s, so libFuzzer records the input as a crash.
 */
#ifndef JKF_COMMON_H
#define JKF_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "jwtkit/jwtkit.h"

#if defined(__GNUC__) || defined(__clang__)
#define JKF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define JKF_PRINTF(a, b)
#endif

_Noreturn void jkf_fail(const char *file, int line, const char *fmt, ...) JKF_PRINTF(3, 4);

/* Abort with a message when cond is false. */
#define JKF_CHECK(cond, ...)                                        \
  do {                                                              \
    if (!(cond)) jkf_fail(__FILE__, __LINE__, __VA_ARGS__);         \
  } while (0)

/* A fixed key from JWK text; aborts when the library refuses it (the
 * harness would be meaningless).  kid may be NULL. */
jwtkit_key *jkf_key_from_jwk(const char *jwk, jwtkit_alg alg, const char *kid);

/* The public half of key (a copy via its public JWK; HMAC keys: a new
 * reference to the same key). */
jwtkit_key *jkf_public_of(jwtkit_key *key);

/* 1 when the errinfo strings are NUL-terminated inside their arrays. */
int jkf_errinfo_sane(const jwtkit_errinfo *info);

/* 1 when s[0..n) parses as strict JSON (top_object: an object). */
int jkf_json_ok(const char *s, size_t n, int top_object);

/* Export key as public (and, if it can sign, private) JWK and PEM, import
 * each again with the key's algorithm and check that the result equals the
 * original; then sign "{}" with key (when it can sign) and verify with the
 * public copy.  Aborts on any violation. */
void jkf_key_roundtrip(jwtkit_key *key);

/* The fixed RFC keys (JWK text without kid/use). */
extern const char jkf_rfc7515_a1_hs256[];
extern const char jkf_rfc7515_a2_rs256_pub[];
extern const char jkf_rfc7515_a3_es256[];
extern const char jkf_rfc7515_a4_es512_pub[];
extern const char jkf_rfc8037_ed25519[];
extern const char jkf_rfc7520_rsa[];
extern const char jkf_rfc7520_ec[];
extern const char jkf_rfc7520_hmac[];

/* Entry points (one per harness). */
int jkf_token(const uint8_t *data, size_t size);
int jkf_json(const uint8_t *data, size_t size);
int jkf_jwk(const uint8_t *data, size_t size);
int jkf_jwks(const uint8_t *data, size_t size);
int jkf_pem(const uint8_t *data, size_t size);
int jkf_claims(const uint8_t *data, size_t size);
int jkf_keyring(const uint8_t *data, size_t size);
int jkf_b64url(const uint8_t *data, size_t size);
int jkf_p11uri(const uint8_t *data, size_t size);
/* The services (services/serve, services/gate; helpers in svc.h), built
 * when libmicrohttpd (and libcurl for the gate) are installed. */
int jkf_serve_config(const uint8_t *data, size_t size);
int jkf_serve_clients(const uint8_t *data, size_t size);
int jkf_serve_http(const uint8_t *data, size_t size);
int jkf_gate_config(const uint8_t *data, size_t size);
int jkf_gate_request(const uint8_t *data, size_t size);
/* jwtkit ui's request handling (services/ui), built with libmicrohttpd. */
int jkf_ui_api(const uint8_t *data, size_t size);
/* ngx_http_jwtkit_module's own argument parsing (nginx/jwtkit_args.c). */
int jkf_nginx_args(const uint8_t *data, size_t size);

#ifdef JKF_NO_FUZZER_ENTRY
#define JKF_ENTRY(fn)
#else
#define JKF_ENTRY(fn)                                                   \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);         \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fn(data, size); }
#endif

#endif
