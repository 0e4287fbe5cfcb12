/*
 * jwtkit/error.h - one error enum with stable numbers, one string table.
 *
 * Numbers never change once released; new codes are appended.  Every
 * function that can fail returns a jwtkit_err and may fill an optional
 * jwtkit_errinfo with the failing field and a human-readable detail.
 */
#ifndef JWTKIT_ERROR_H
#define JWTKIT_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, number, "message") */
#define JWTKIT_ERROR_MAP(X)                                                  \
  X(OK, 0, "success")                                                        \
  X(MALFORMED, 1, "malformed token")                                         \
  X(BAD_SIGNATURE, 2, "bad signature")                                       \
  X(ALG_NOT_ALLOWED, 3, "algorithm not allowed")                             \
  X(UNKNOWN_KID, 4, "unknown key id")                                        \
  X(EXPIRED, 5, "token expired")                                             \
  X(NOT_YET_VALID, 6, "token not yet valid")                                 \
  X(CLAIM_MISMATCH, 7, "claim mismatch")                                     \
  X(CLAIM_MISSING, 8, "required claim missing")                              \
  X(WEAK_KEY, 9, "key too weak")                                             \
  X(INVALID_KEY, 10, "invalid key")                                          \
  X(IO, 11, "I/O error")                                                     \
  X(NOMEM, 12, "out of memory")                                              \
  X(INVALID_ARG, 13, "invalid argument")                                     \
  X(TOO_LARGE, 14, "input exceeds a size or nesting limit")                  \
  X(UNSUPPORTED, 15, "unsupported")                                          \
  X(CRYPTO, 16, "cryptographic library error")                               \
  X(NO_KEY, 17, "no single key fits the token")                              \
  X(TOO_OLD, 18, "token older than the maximum age")                         \
  X(ISSUED_IN_FUTURE, 19, "token issued in the future")                      \
  X(CRIT, 20, "unsupported critical header")                                 \
  X(NOT_FOUND, 21, "not found")                                              \
  X(PASSPHRASE, 22, "wrong or missing passphrase")                           \
  X(TYPE, 23, "value has another JSON type")                                 \
  X(STATE, 24, "operation not allowed in the current state")                 \
  X(PERMISSION, 25, "unsafe file permissions")                              \
  X(KEK, 26, "wrong or missing key-encryption key")

typedef enum jwtkit_err {
#define JWTKIT_ERR_ENUM_(name, num, msg) JWTKIT_ERR_##name = num,
  JWTKIT_ERROR_MAP(JWTKIT_ERR_ENUM_)
#undef JWTKIT_ERR_ENUM_
} jwtkit_err;

#define JWTKIT_OK JWTKIT_ERR_OK

/* Detail of a failure.  Fixed size, no allocation: safe to keep on the stack.
 * `field` names the failing claim, header member or key member when there is
 * one ("exp", "aud", "kid", "n", ...); `msg` is a sentence for humans. */
typedef struct jwtkit_errinfo {
  jwtkit_err code;
  char field[32];
  char msg[200];
} jwtkit_errinfo;

/* Static string for an error code; never NULL ("unknown error" for numbers
 * outside the table). */
const char *jwtkit_strerror(jwtkit_err err);

/* The enum name without prefix ("BAD_SIGNATURE"), for logs and metrics. */
const char *jwtkit_errname(jwtkit_err err);

#ifdef __cplusplus
}
#endif
#endif
