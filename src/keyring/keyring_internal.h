/* The keyring's parts share this: the in-memory keyring, its keys, a
 * change in progress, and the functions one part offers another.
 *   keyring.c      the lifecycle rules: timing, states, rotation, revocation,
 *                  import, the JWKS, the signing key, the plan
 *   keyring_doc.c  the stored document: writing it, reading and checking it,
 *                  loading the private keys
 *   keyring_txn.c  changes: lock, reload, apply, commit, unlock, report
 *   keyring_open.c locations, opening and creating keyrings, trust, rekey
 *   keyring_token.c keys that live in a PKCS#11 token */
#ifndef JK_KEYRING_INTERNAL_H
#define JK_KEYRING_INTERNAL_H

#include <stdint.h>

#include "common/attr.h"
#include "common/buf.h"
#include "docauth.h"
#include "jwtkit/keyring.h"
#include "store.h"

#define KR_MAX_KEYS 256u
#define KR_KEEP_RETIRED 32u
#define KR_FORMAT "jwtkit-keyring"
/* version 1: not authenticated; version 2: with its MAC (docauth.h) */

typedef struct kr_key {
  char *kid;
  char file[48]; /* RFC 7638 thumbprint: the private key's file name */
  jwtkit_alg alg;
  jwtkit_key_state state;
  int64_t created, published, activated, retiring, retired;
  char *jwk;        /* public JWK text, with kid */
  jwtkit_key *pub;  /* parsed from jwk */
  jwtkit_key *priv; /* pending and active keys only */
  int verify_only;  /* a public key of another keyring: no private part, never signs */
  int held;         /* verify-only, retiring, published until released */
  int token;        /* the private part is in the keyring's PKCS#11 token (object = kid); on a
                       retired or revoked key: not destroyed there yet */
} kr_key;

struct jwtkit_keyring {
  jk_store *store;
  char *passphrase;
  jwtkit_keyring_timing t;
  uint64_t generation;
  int encrypted;
  kr_key *keys;
  size_t n;
  char *meta; /* the metadata text the keys were loaded from */
  size_t meta_len;
  int pg;          /* a PostgreSQL keyring */
  jk_docauth auth; /* how its document is authenticated */
  uint64_t seen;   /* newest generation loaded or committed: older documents are refused */
  int review;      /* opened by jwtkit_keyring_open_review: read and trust only */
  int public_only; /* no private key is loaded: a review of a PostgreSQL keyring without a KEK, or
                      jwtkit_keyring_open_public */
  char *pkcs11;    /* keys live in this PKCS#11 token (canonical URI, no object, no PIN value), or NULL */
  jwtkit_errinfo verdict; /* review: why the document is not authentic (code OK: it is) */
};

/* How messages name the stored document. */
static inline const char *jk_kr_doc_name(const jwtkit_keyring *kr) {
  return kr->pg ? "the keyring document" : "keyring.json";
}


typedef struct jk_kr_txn {
  jwtkit_keyring_report_fn report;
  void *ctx;
  int changed;
  jk_buf lines; /* report lines (NUL-terminated each), given out after the commit */
  char doomed[KR_MAX_KEYS][48]; /* private files to destroy after commit */
  size_t ndoomed;
  char created[KR_MAX_KEYS][48]; /* private files written by this change: removed if it fails */
  size_t ncreated;
  char created_token[KR_MAX_KEYS][48]; /* token keys made by this change: destroyed if it is not stored */
  size_t ncreated_token;
} jk_kr_txn;

/* keyring.c */
jwtkit_key_state jk_kr_state_from(const char *s, size_t n);
jwtkit_err jk_kr_check_timing(const jwtkit_keyring_timing *t, jwtkit_errinfo *info);
void jk_kr_key_clear(kr_key *k);
void jk_kr_keys_clear(jwtkit_keyring *kr);
kr_key *jk_kr_push_key(jwtkit_keyring *kr);
kr_key *jk_kr_find_state(jwtkit_keyring *kr, jwtkit_alg alg, jwtkit_key_state st);
void jk_kr_entry_of(const jwtkit_keyring *kr, const kr_key *k, jwtkit_keyring_entry *e);

/* keyring_doc.c */
/* The document as stored: authenticated (docauth.h) when the keyring has a
 * secret.  *json is NULL on failure (NOMEM, or CRYPTO when the MAC could
 * not be computed). */
jwtkit_err jk_kr_meta_json(jwtkit_keyring *kr, char **json, size_t *len);
jwtkit_err jk_kr_load_private(jwtkit_keyring *kr, kr_key *k, jwtkit_errinfo *info);
/* (Re)load the whole keyring from the store, unless the stored document is
 * exactly what kr was loaded from. */
jwtkit_err jk_kr_reload(jwtkit_keyring *kr, jwtkit_errinfo *info);

/* keyring_token.c */
/* The token URI given to init, checked (a pkcs11: URI naming a token, no
 * object=, id=, type=), as canonical text (jk_malloc). */
jwtkit_err jk_kr_token_canon(const char *uri, char **out, jwtkit_errinfo *info);
/* UNSUPPORTED (said so) when this build has no PKCS#11 support. */
jwtkit_err jk_kr_token_available(jwtkit_errinfo *info);
/* A new key pair for alg in the keyring's token, labelled with its kid. */
jwtkit_err jk_kr_token_generate(jwtkit_keyring *kr, jwtkit_alg alg, unsigned bits, jwtkit_key **out,
                                jwtkit_errinfo *info);
/* k->priv from the token (k->token set). */
jwtkit_err jk_kr_token_load(jwtkit_keyring *kr, kr_key *k, jwtkit_errinfo *info);
/* Destroy the key pair of kid in the token; one that is not there counts
 * as destroyed. */
jwtkit_err jk_kr_token_destroy(const jwtkit_keyring *kr, const char *kid, jwtkit_errinfo *info);
/* Retired and revoked keys whose private part may still be in the token:
 * destroyed now (marked changed), or a note when the token refuses. */
void jk_kr_token_sweep(jwtkit_keyring *kr, jk_kr_txn *x);

/* keyring_txn.c */
/* A line to report, once the change is stored, that changes nothing. */
void jk_kr_note(jk_kr_txn *x, const char *fmt, ...) JK_PRINTF(2, 3);
/* An action: marks the keyring changed and reports it once stored. */
void jk_kr_say(jk_kr_txn *x, const char *fmt, ...) JK_PRINTF(2, 3);
void jk_kr_fmt_time(int64_t t, char out[32]);
/* Create a fresh key for alg (or take `given`), store its private part,
 * append it. */
jwtkit_err jk_kr_new_key(jwtkit_keyring *kr, jk_kr_txn *x, jwtkit_alg alg, jwtkit_key *given, jwtkit_key_state st,
                         int64_t now, kr_key **out, jwtkit_errinfo *info);
/* Take a key out of the JWKS (retired or revoked); its private part is
 * destroyed once the change is stored. */
void jk_kr_retire(jk_kr_txn *x, kr_key *k, jwtkit_key_state st, int64_t now);
/* Clock values the planning arithmetic can take. */
int jk_kr_time_ok(int64_t now);
jk_kr_txn *jk_kr_txn_new(jwtkit_keyring_report_fn report, void *ctx);
/* Commit (rc OK) or undo, unlock, report; returns the outcome; frees x. */
jwtkit_err jk_kr_txn_end(jwtkit_keyring *kr, jk_kr_txn *x, jwtkit_err rc, jwtkit_errinfo *info);
typedef jwtkit_err (*jk_kr_mutation_fn)(jwtkit_keyring *kr, jk_kr_txn *x, void *arg, int64_t now,
                                        jwtkit_errinfo *info);
/* lock, reload the latest state, apply fn, commit, unlock */
jwtkit_err jk_kr_mutate(jwtkit_keyring *kr, jk_kr_mutation_fn fn, void *arg, int64_t now,
                        jwtkit_keyring_report_fn report, void *ctx, jwtkit_errinfo *info);

#endif
