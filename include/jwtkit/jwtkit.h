/*
 * jwtkit/jwtkit.h - umbrella header of libjwtkit.
 *
 * Conventions, stated once:
 *  - Every fallible function returns jwtkit_err (0 = JWTKIT_OK) and takes an
 *    optional jwtkit_errinfo* for the failing field and a sentence.
 *  - Inputs are (pointer, length) pairs; strings passed as plain `const
 *    char *` are NUL-terminated UTF-8.  NULL where a value is required is
 *    JWTKIT_ERR_INVALID_ARG, never a crash.
 *  - Objects are opaque handles with _new/_free (or _ref/_free for shared
 *    ones); every _free(NULL) is a no-op.  Memory returned to you as char*
 *    is released with jwtkit_free().  Pointers returned as const are owned
 *    by the object they came from and live as long as it.
 *  - On failure, out-parameters are set to NULL: no unauthenticated data
 *    ever leaves jwtkit_verify().
 *  - Thread safety: keys, signers and verifiers are immutable once built and
 *    may be used from any number of threads at once.  Policies, claimsets
 *    and claims objects belong to one thread at a time.
 *    jwtkit_set_allocator() must be called before any other function.
 *  - Limits: tokens 64 KiB by default (jwtkit_policy_set_max_token), headers
 *    16 KiB and 128 JSON values (jwtkit_policy_set_max_header), JSON nesting
 *    32, JWK text 64 KiB, PEM/DER 1 MiB, RSA 2048..16384 bits, secret files
 *    64 KiB.
 *  - Setters of policies and claimsets keep their first error: the
 *    verifier or the signed token is refused with it.
 */
#ifndef JWTKIT_H
#define JWTKIT_H

#include "error.h"
#include "jwks.h"
#include "jwt.h"
#include "key.h"
#include "keyring.h"
#include "pem.h"
#include "pkcs11.h"
#include "util.h"

#include "jwtkit/version.h" /* JWTKIT_VERSION_*, generated from project(VERSION) */

#ifdef __cplusplus
extern "C" {
#endif

/* Runtime version string. */
const char *jwtkit_version(void);

#ifdef __cplusplus
}
#endif
#endif
