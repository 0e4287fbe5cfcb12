/*
 * jwtkit/keyring.h - signing keys with a rotation lifecycle.
 *
 *   pending ──► active ──► retiring ──► retired
 *   (published,  (signs; one   (published,   (gone from the JWKS,
 *    not signing) per alg)      verify only)  private part destroyed)
 *
 * Timing rules (all in seconds, from jwtkit_keyring_timing):
 *  - a pending key activates only after it has been in the JWKS for at
 *    least max_age (the JWKS Cache-Control max-age), so every verifier
 *    already holds it;
 *  - the active key becomes retiring when the next key activates;
 *  - a retiring key is retired no earlier than
 *      retiring_at + token_ttl + leeway + max_age
 *    (its last token was signed at retiring_at at the latest);
 *  - no token is minted with an exp beyond the active key's planned end of
 *    signing + token_ttl: jwtkit_keyring_signing_key() returns that bound;
 *  - an emergency revoke removes a key from the JWKS at once.
 * Rotation does only what is safe at `now` and reports each step.
 *
 * Verify-only keys (jwtkit_keyring_add_verify_only) are public keys of
 * another keyring, published here so that tokens it signs keep verifying
 * while issuers move from one keyring to the other.  They are retiring
 * from the start and never sign; they are "held" (stay published) until
 * jwtkit_keyring_release, and then leave on the retiring schedule.
 *
 * Only asymmetric algorithms (RS*, PS*, ES*, EdDSA) live in a keyring:
 * secrets are never published.
 *
 * Storage: a directory with keyring.json (metadata and public JWKs) and one
 * PKCS#8 PEM per private key under keys/ (mode 0600, encrypted when a
 * passphrase is given).  Every change is written to a temporary file,
 * fsync'd, renamed over the old one and the directory fsync'd; mutations
 * hold an exclusive lock on the directory's .lock file, so concurrent
 * `jwtkit keyring rotate` runs and a running issuer never interleave.
 * A private key file readable by group or others is refused on load, and
 * so is a keyring directory, keys/ directory or keyring.json writable by
 * group or others: whoever can write them can replace the keys.
 *
 * The keyring document (keyring.json, or its PostgreSQL row: key list,
 * states, times, public JWKs) is authenticated with HMAC-SHA-256 when the
 * keyring has a secret to key it with: the first KEK of a PostgreSQL
 * keyring (every configured KEK verifies), or a directory keyring's
 * passphrase.  A document changed by someone without that secret is
 * refused on load with JWTKIT_ERR_BAD_SIGNATURE (field "auth"), one
 * authenticated under a KEK or passphrase the caller does not have with
 * JWTKIT_ERR_PASSPHRASE (field "auth").  Its generation is covered by the
 * MAC; a handle refuses a document older than the newest it has loaded or
 * committed (JWTKIT_ERR_STATE, field "generation"): someone who can write
 * the store put back an old authentic document.  A handle opened afresh has
 * no such memory (see jwtkit_keyring_open_seen).  The published JWKS is
 * built from the validated keys: each stored public JWK is parsed with its
 * key's algorithm, must be public and carry its key's kid, and is exported
 * again; pending and active keys must match their private keys.
 *
 * Time is always passed in (Unix seconds) so tests can drive the clock.
 * A jwtkit_keyring handle is a snapshot of the keyring (at open, or after
 * its own last mutation): jwtkit_keyring_open takes a shared lock, so it
 * never sees half of a concurrent rotation.  Read-only calls (jwks,
 * signing_key, count, get, plan, generation) on a handle that no thread is
 * mutating may run from many threads at once; mutations (add, rotate,
 * revoke) need the handle to themselves.  Mutations first re-read the
 * stored state under the exclusive lock, so several processes may share a
 * directory; they re-read private keys only when the metadata changed.
 */
#ifndef JWTKIT_KEYRING_H
#define JWTKIT_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "key.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum jwtkit_key_state {
  JWTKIT_KEY_PENDING = 1,
  JWTKIT_KEY_ACTIVE = 2,
  JWTKIT_KEY_RETIRING = 3,
  JWTKIT_KEY_RETIRED = 4,
  JWTKIT_KEY_REVOKED = 5
} jwtkit_key_state;

/* "pending", "active", ... */
const char *jwtkit_key_state_name(jwtkit_key_state s);

typedef struct jwtkit_keyring_timing {
  int64_t max_age;       /* JWKS Cache-Control max-age (default 300) */
  int64_t token_ttl;     /* longest token lifetime minted (default 900) */
  int64_t leeway;        /* verifiers' clock leeway (default 60) */
  int64_t rotate_every;  /* active period of a key (default 30 days) */
  int64_t publish_ahead; /* publish the next key this long before the
                            rotation (default: max(2 * max_age, rotate_every / 30)) */
  unsigned rsa_bits;     /* RSA modulus for generated keys (default 2048) */
} jwtkit_keyring_timing;

/* Defaults as documented above. */
void jwtkit_keyring_timing_default(jwtkit_keyring_timing *t);
/* The rules a keyring's timing must keep (the ranges of each value,
 * publish_ahead >= max_age, publish_ahead < rotate_every), checked as
 * jwtkit_keyring_init_ex checks them: JWTKIT_ERR_INVALID_ARG with a message
 * naming the rule and the values.  For programs that take timings from
 * their users and want to refuse them before any keyring is touched. */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_timing_check(const jwtkit_keyring_timing *t, jwtkit_errinfo *info);

typedef struct jwtkit_keyring jwtkit_keyring;

/* One line per action taken ("created pending key ... (ES256)"), given
 * only after the change is stored: a mutation that fails reports nothing. */
typedef void (*jwtkit_keyring_report_fn)(void *ctx, const char *line);

/* Create a keyring in dir (created 0700 if missing; must not hold a
 * keyring yet) with one active key per algorithm in algs.  The first keys
 * activate at once: no verifier can hold an older set.  passphrase may be
 * NULL (private keys then rely on file permissions alone). */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_init(const char *dir, const jwtkit_alg *algs, size_t nalgs,
                                                const jwtkit_keyring_timing *timing, const char *passphrase,
                                                int64_t now, jwtkit_keyring_report_fn report, void *ctx,
                                                jwtkit_errinfo *info);

/* Load a keyring (metadata, public keys, and the private keys of pending
 * and active keys). */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_open(jwtkit_keyring **out, const char *dir, const char *passphrase,
                                                jwtkit_errinfo *info);
void jwtkit_keyring_free(jwtkit_keyring *kr);

/* ------------------------------------------------- where a keyring lives
 *
 * Every function taking a keyring location accepts a directory path or a
 * PostgreSQL connection URI (postgres://... or postgresql://..., libpq
 * syntax; the tables live in the connection's current schema, so one
 * database can hold several keyrings through search_path).  Several issuer
 * hosts can share a PostgreSQL keyring: mutations are serialised by a
 * transaction-scoped advisory lock and commit as one transaction, and each
 * commit sends NOTIFY jwtkit_keyring (see jwtkit_keyring_watch_*).
 *
 * In PostgreSQL the private keys are sealed with AES-256-GCM under a
 * key-encryption key (KEK) before they leave the process; the database
 * never sees a plaintext private key.  KEKs are 32 random bytes; in a list
 * the first seals and every one opens, so a KEK is replaced by putting the
 * new one first, running jwtkit_keyring_rekey, then dropping the old one. */
typedef struct jwtkit_keyring_secrets {
  const char *passphrase;          /* PKCS#8 passphrase of the private keys, or NULL */
  const unsigned char (*keks)[32]; /* KEKs: required for PostgreSQL, ignored for a directory */
  size_t nkeks;                    /* 0..16 */
  const char *pkcs11;              /* init only: make and keep the private keys in this
                                      PKCS#11 token (below); NULL: files or sealed rows */
} jwtkit_keyring_secrets;

/* Keys in a PKCS#11 token (jwtkit/pkcs11.h, docs/pkcs11.md).  Given to
 * init, `pkcs11` is a URI naming the token and how to reach it, never a key
 * and never a PIN:
 *
 *   pkcs11:token=jwtkit?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/jwtkit/pin
 *
 * (object=, id=, type= and pin-value= are refused).  The keyring document
 * records it, authenticated like the rest of the document, and every key
 * of the keyring is then made in that token (jwtkit_pkcs11_generate):
 * CKA_LABEL the kid, CKA_ID its 32 bytes, sensitive and not extractable.
 * The metadata stays where it was (the directory, or PostgreSQL) and holds
 * no private key material for them: no key file, no sealed row.  Each
 * key's public JWK is read from the token when the key is made and kept in
 * the document, so jwtkit_keyring_jwks never needs the token.  Opening the
 * keyring loads its pending and active keys from the token
 * (jwtkit_key_from_pkcs11; the PIN from pin-source= or $JWTKIT_PKCS11_PIN):
 * a token that is missing fails the open with an error naming it, never a
 * fallback to key files.  Retired keys are destroyed in the token when
 * they leave the JWKS (a token that refuses keeps them published until a
 * later rotation), revoked ones as soon as the revocation is stored.
 * Private keys cannot be imported into a token keyring
 * (jwtkit_keyring_add: JWTKIT_ERR_UNSUPPORTED). */

/* 1 when location names a PostgreSQL keyring. */
int jwtkit_keyring_location_is_postgres(const char *location);

/* location with any password replaced by "***" (for logs and messages). */
void jwtkit_keyring_location_redact(const char *location, char *out, size_t cap);

/* jwtkit_keyring_init / jwtkit_keyring_open for any location.  In
 * PostgreSQL, init creates (or migrates) the tables and fails with
 * JWTKIT_ERR_STATE when the database already holds a keyring, so replicas
 * starting together can each try init and then open. */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_init_ex(const char *location, const jwtkit_alg *algs, size_t nalgs,
                                                   const jwtkit_keyring_timing *timing,
                                                   const jwtkit_keyring_secrets *secrets, int64_t now,
                                                   jwtkit_keyring_report_fn report, void *ctx, jwtkit_errinfo *info);
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_open_ex(jwtkit_keyring **out, const char *location,
                                                   const jwtkit_keyring_secrets *secrets, jwtkit_errinfo *info);

/* jwtkit_keyring_open_ex for a process that has already seen generation
 * `seen` of this keyring (in a handle it freed, a snapshot it serves): a
 * stored document older than that is refused (JWTKIT_ERR_STATE, field
 * "generation") as the handle that saw it would refuse it; the new handle
 * keeps refusing older documents than the newest it sees.  0: no memory,
 * the newest authentic document is trusted. */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_open_seen(jwtkit_keyring **out, const char *location,
                                                     const jwtkit_keyring_secrets *secrets, uint64_t seen,
                                                     jwtkit_errinfo *info);

/* The keyring's document, authenticated and checked as by
 * jwtkit_keyring_open_ex, with its public keys validated, but no private
 * key loaded (no key file, sealed row or token is read): for listing and
 * publishing the JWKS where the private keys are not at hand (a token
 * keyring's token away).  jwtkit_keyring_signing_key finds no key in it;
 * mutations refuse it (JWTKIT_ERR_STATE). */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_open_public(jwtkit_keyring **out, const char *location,
                                                       const jwtkit_keyring_secrets *secrets, jwtkit_errinfo *info);

/* For an operator, never for serving: open the stored keyring whether or
 * not its document is authentic (one written by a jwtkit that did not
 * authenticate documents yet, or changed by someone without the KEK or
 * passphrase), so it can be listed and reviewed.  A PostgreSQL keyring may
 * be opened so without any KEK: its public metadata only (no private key
 * is read; *verdict says the document could not be authenticated).  Everything else is
 * checked as usual (the JWKs, the private keys of pending and active keys
 * with the given KEKs or passphrase).  *verdict: code JWTKIT_OK when the
 * document is authentic, else the error jwtkit_keyring_open_ex gives.  The
 * handle can be read and passed to jwtkit_keyring_trust; every mutation
 * and rekey refuse it (JWTKIT_ERR_STATE). */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_open_review(jwtkit_keyring **out, const char *location,
                                                       const jwtkit_keyring_secrets *secrets,
                                                       jwtkit_errinfo *verdict, jwtkit_errinfo *info);

/* Store the reviewed document, unchanged but for a new generation,
 * authenticated under the first KEK (PostgreSQL) or the passphrase
 * (directory).  Refused (JWTKIT_ERR_STATE) when the stored document
 * changed since kr was opened, or when a published key has no matching
 * private key in the store (a key this keyring did not make: remove it
 * first, or restore a backup); JWTKIT_ERR_UNSUPPORTED for a directory
 * keyring without a passphrase.  Nothing else is changed or removed.  An
 * authentic document: nothing to do, reported as such.  Afterwards kr is
 * an ordinary handle. */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_trust(jwtkit_keyring *kr, jwtkit_keyring_report_fn report, void *ctx,
                                                 jwtkit_errinfo *info);

/* Re-seal every stored private key under the first KEK (PostgreSQL
 * keyrings; JWTKIT_ERR_UNSUPPORTED for a directory), and re-authenticate
 * the keyring document under it (same content, same generation).  All or
 * nothing: a key no configured KEK opens, or a document that is not
 * authentic, fails the whole rekey. */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_rekey(jwtkit_keyring *kr, jwtkit_keyring_report_fn report, void *ctx,
                                                 jwtkit_errinfo *info);

/* KEKs from text: entries separated by newlines or commas, each 32 bytes
 * as 64 hex digits or base64/base64url (43 or 44 characters); blank lines
 * and lines starting with '#' are skipped; at most 16, no duplicates.
 * Free *keks with jwtkit_kek_free (which wipes them). */
JWTKIT_NODISCARD jwtkit_err jwtkit_kek_parse(const char *text, size_t len, unsigned char (**keks)[32], size_t *n,
                                             jwtkit_errinfo *info);
void jwtkit_kek_free(unsigned char (*keks)[32], size_t n);
/* The 16-hex-digit id stored next to every row a KEK seals. */
void jwtkit_kek_id(const unsigned char kek[32], char out[17]);
/* A fresh random KEK as 43 base64url characters (out: 44 bytes). */
JWTKIT_NODISCARD jwtkit_err jwtkit_kek_generate(char out[44]);

/* Change notifications for processes that serve a keyring.  Directory:
 * keyring.json is compared by inode, size and times.  PostgreSQL: a
 * connection of its own LISTENs on jwtkit_keyring; when it breaks it is
 * re-opened (at most every 2 s) and that reconnection counts as a change,
 * since notifications sent meanwhile are lost.  Callers still re-read
 * periodically: a notification can be lost in other ways. */
typedef struct jwtkit_keyring_watch jwtkit_keyring_watch;
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_watch_open(jwtkit_keyring_watch **out, const char *location,
                                                      jwtkit_errinfo *info);
/* 1: something changed (or may have) since the last call; 0: nothing
 * seen.  Never waits for a notification; may block for a reconnection
 * (up to the connection timeout). */
int jwtkit_keyring_watch_poll(jwtkit_keyring_watch *w);
void jwtkit_keyring_watch_free(jwtkit_keyring_watch *w);

/* Import an existing private key (bound to its algorithm) as pending; it
 * activates through rotation like a generated one.  kid: the key's kid or
 * its RFC 7638 thumbprint. */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_add(jwtkit_keyring *kr, jwtkit_key *private_key, int64_t now,
                                               jwtkit_keyring_report_fn report, void *ctx,
                                               jwtkit_errinfo *info);

/* Publish the public half of key (which may be public or private; no
 * private part is kept) as a verify-only key: retiring from the start,
 * never activated, held in the JWKS until jwtkit_keyring_release.  For
 * moving issuers between keyrings without a verifier ever meeting an
 * unknown kid (docs/keyring.md "How to move").  A key whose kid the
 * keyring already holds is refused with JWTKIT_ERR_STATE (field "kid"). */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_add_verify_only(jwtkit_keyring *kr, jwtkit_key *key, int64_t now,
                                                           jwtkit_keyring_report_fn report, void *ctx,
                                                           jwtkit_errinfo *info);

/* A fresh key for alg, made where the keyring keeps its keys (a file,
 * a sealed row, or its PKCS#11 token), added as pending: for an algorithm
 * the keyring has no key for yet. */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_add_generated(jwtkit_keyring *kr, jwtkit_alg alg, int64_t now,
                                                         jwtkit_keyring_report_fn report, void *ctx,
                                                         jwtkit_errinfo *info);

/* The PKCS#11 token a token keyring keeps its keys in (the URI recorded at
 * init: token attributes, module, PIN source), or NULL for a keyring whose
 * private keys are files or sealed rows.  Valid while kr lives. */
const char *jwtkit_keyring_pkcs11(const jwtkit_keyring *kr);

/* Release every held verify-only key: it stops being held and leaves the
 * JWKS at now + token_ttl + leeway + max_age, at a rotation after that
 * (tokens signed by the other keyring until now stay valid that long). */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_release(jwtkit_keyring *kr, int64_t now,
                                                   jwtkit_keyring_report_fn report, void *ctx,
                                                   jwtkit_errinfo *info);

/* Do what is safe at `now`: publish the next key ahead of the rotation,
 * activate a pending key whose max_age has passed once the active key is
 * due, retire retiring keys whose window has closed, destroy their private
 * parts.  force: treat the active keys as due now (still waiting for the
 * pending key's max_age).  Writes the result atomically. */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_rotate(jwtkit_keyring *kr, int64_t now, int force,
                                                  jwtkit_keyring_report_fn report, void *ctx,
                                                  jwtkit_errinfo *info);

/* Emergency: remove kid from the JWKS now and destroy its private part.
 * If it was active, a pending key of the same algorithm is activated at
 * once, or a new key is generated and activated (verifiers refetch on the
 * unknown kid). */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_revoke(jwtkit_keyring *kr, const char *kid, int64_t now,
                                                  jwtkit_keyring_report_fn report, void *ctx,
                                                  jwtkit_errinfo *info);

/* For shutting down: may be called from another thread while kr is in
 * use (not while it is being freed).  A mutation of a PostgreSQL keyring
 * waiting for the database (the keyring lock of another replica, a slow
 * query) fails soon instead of waiting up to the 30 s lock timeout, and
 * every later mutation of kr fails at once.  No effect on a directory
 * keyring, whose waits are short. */
void jwtkit_keyring_interrupt(jwtkit_keyring *kr);

/* The public JWK Set: pending, active and retiring keys, each exported from
 * its validated key (never the stored JWK text).  Free with jwtkit_free(). */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_jwks(const jwtkit_keyring *kr, char **json, size_t *len);

/* The active key for alg (borrowed, valid while kr lives) and the latest
 * exp a token signed now may carry (min(now + token_ttl, planned end of
 * signing + token_ttl)).  JWTKIT_ERR_NOT_FOUND: no active key for alg;
 * JWTKIT_ERR_STATE: the key is so far past its rotation that no token may
 * be minted (run rotate). */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_signing_key(const jwtkit_keyring *kr, jwtkit_alg alg, int64_t now,
                                                       jwtkit_key **key, int64_t *max_exp);

/* Introspection. */
typedef struct jwtkit_keyring_entry {
  const char *kid;
  jwtkit_alg alg;
  jwtkit_key_state state;
  int64_t created, published, activated, retiring, retired; /* 0: not (yet) */
  int64_t planned_activation; /* pending: earliest activation; else 0 */
  int64_t planned_retiring;   /* active: planned end of signing; pending: planned_activation + rotate_every */
  int64_t planned_retirement; /* earliest time it may leave the JWKS (0 once retired, or held) */
  int verify_only;            /* a public key of another keyring: never signs here */
  int held;                   /* verify-only and held: stays published until released */
  int in_token;               /* its private key is in the keyring's PKCS#11 token (retired or
                                 revoked: not destroyed there yet) */
} jwtkit_keyring_entry;

size_t jwtkit_keyring_count(const jwtkit_keyring *kr);
/* Entry i (pointers valid while kr lives); JWTKIT_ERR_NOT_FOUND past the end. */
jwtkit_err jwtkit_keyring_get(const jwtkit_keyring *kr, size_t i, jwtkit_keyring_entry *e);
void jwtkit_keyring_get_timing(const jwtkit_keyring *kr, jwtkit_keyring_timing *t);
/* Incremented by every committed change. */
uint64_t jwtkit_keyring_generation(const jwtkit_keyring *kr);

/* The timeline of every key, with UTC dates, as printed by `jwtkit keyring
 * plan`.  Free with jwtkit_free(). */
JWTKIT_NODISCARD jwtkit_err jwtkit_keyring_plan(const jwtkit_keyring *kr, int64_t now, char **text, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
