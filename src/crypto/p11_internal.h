/* Internal to the PKCS#11 token keys (jwtkit/pkcs11.h): what the parts
 * share.
 *   p11.c          the public entry points of a build without p11-kit, and
 *                  the accessors
 *   p11_module.c   messages, module loading, token lookup, the PIN
 *   p11_session.c  login, the session pool, a token key's state
 *   p11_object.c   key objects, attributes, the public key read from the
 *                  token, loading a key (signing or public only)
 *   p11_sign.c     mechanisms and signing
 *   p11_gen.c      generation and destruction of key pairs in the token
 * p11_uri.c (the RFC 7512 URI) needs no PKCS#11 header: p11.h. */
#ifndef JK_P11_INTERNAL_H
#define JK_P11_INTERNAL_H

#include <string.h>

#include "core/alloc.h"
#include "core/error_internal.h"
#include "jwtkit/pkcs11.h"
#include "p11.h"

#ifdef JWTKIT_WITH_PKCS11

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <p11-kit/p11-kit.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "codec/b64url.h"
#include "common/file.h"
#include "key_internal.h"
#include "key_openssl.h"

#define P11_DEFAULT_SESSIONS 8u
#define P11_MAX_SESSIONS 256u
#define P11_DEFAULT_WAIT_MS 10000u
#define P11_MAX_SLOTS 256u
#define P11_MAX_PIN 256u  /* bytes of a PIN */
#define P11_PIN_ENV "JWTKIT_PKCS11_PIN"

/* CKM_EDDSA's optional parameter (PKCS#11 3.0), not in every pkcs11.h. */
typedef struct p11_eddsa_params {
  CK_BBOOL ph_flag;
  CK_ULONG context_len;
  CK_BYTE_PTR context;
} p11_eddsa_params;

/* ------------------------------------------------------------ messages */

/* "CKR_X" or "CKR 0x..." in buf. */
const char *jk_p11_rv_text(CK_RV rv, char buf[32]);
/* The token is away or the session lost: the token is looked up again /
 * the session replaced. */
int jk_p11_rv_lost(CK_RV rv);
int jk_p11_rv_gone(CK_RV rv);
/* jk_p11_test_hook, when set. */
CK_RV jk_p11_hook(int ev, const jwtkit_key *key);

/* ------------------------------------------------------------- modules */

/* A module file loaded once per process and shared (p11_module.c). */
typedef struct p11_module p11_module;

/* Module calls are made between jk_p11_enter and jk_p11_leave (re-entrant
 * in a thread): a re-initialisation waits for them. */
void jk_p11_enter(void);
void jk_p11_leave(void);
/* Bumped by each re-initialisation: sessions of an older epoch are gone. */
unsigned long jk_p11_module_epoch(const p11_module *m);
/* A failure that a re-initialisation of the module may cure (the token
 * vanished, the module lost its state). */
void jk_p11_module_suspect(p11_module *m);
/* Re-initialise a suspect module (C_Finalize, C_Initialize): only outside
 * any jk_p11_enter of this thread, at most once per jk_p11_reinit_ms
 * (p11.h).  1 when it did. */
int jk_p11_module_recover(p11_module *m);
void jk_p11_module_put(p11_module *m);
/* 0 when the module's last initialisation failed (*rv: its answer). */
int jk_p11_module_ready(const p11_module *m, CK_RV *rv);

struct p11_token;
/* The answer the token gave this PIN before (CKR_PIN_INCORRECT, ...), or
 * CKR_OK: never asked with it while the module stays loaded. */
CK_RV jk_p11_pin_refused(const struct p11_token *t, const char *pin, size_t pin_len);
void jk_p11_pin_note_refused(const struct p11_token *t, const char *pin, size_t pin_len, CK_RV rv);

/* A module and one token in it. */
typedef struct p11_token {
  p11_module *mod; /* a reference */
  CK_FUNCTION_LIST *fl; /* mod's function list */
  int entered;     /* jk_p11_enter was called for this token (token_open) */
  CK_SLOT_ID slot;
  CK_FLAGS flags; /* CK_TOKEN_INFO flags when found */
  char label[33];
  char serial[17];
  char where[160]; /* "token jwtkit (serial ...)" for messages */
} p11_token;

/* Leave (if entered) and drop the module reference. */
void jk_p11_token_close(p11_token *t);
/* The token in module fl that the URI names: 1 found (t filled), 0 none,
 * 2 several; -1 with info set when the module fails. */
int jk_p11_token_search(CK_FUNCTION_LIST *fl, const jk_p11_uri *u, p11_token *t, char *seen, size_t seen_cap,
                        jwtkit_errinfo *info);
/* Find the token the URI names: in module-path=, else in the modules of
 * p11-kit's configuration (module-name= picks one).  On success t->mod is
 * the module's shared instance and the caller is entered (jk_p11_enter);
 * jk_p11_token_close leaves and releases. */
jwtkit_err jk_p11_token_open(const jk_p11_uri *u, p11_token *t, jwtkit_errinfo *info);
/* Another reference to t's module, on the same slot (kt owns it; not
 * entered). */
void jk_p11_token_again(const p11_token *t, p11_token *kt);

/* The PIN for a login: pin-source= (first line of the file, secret-file
 * rule) or $JWTKIT_PKCS11_PIN.  *pin NULL when neither is given. */
jwtkit_err jk_p11_pin_read(const jk_p11_uri *u, char **pin, size_t *pin_len, jwtkit_errinfo *info);
/* The PIN (jk_p11_pin_read), then the token (jk_p11_token_open): what every
 * entry point that names a key by URI does first.  On failure u is freed
 * (jk_p11_uri_free) and so is the PIN. */
jwtkit_err jk_p11_open_uri(jk_p11_uri *u, p11_token *t, char **pin, size_t *pin_len, jwtkit_errinfo *info);

/* ------------------------------------------------------------- sessions */

/* Log in if the session is not logged in yet (a new session of a token
 * that requires a login; a token's login holds for all its sessions).
 * Sets *refused for a PIN the token refused (never to be tried again). */
jwtkit_err jk_p11_login_if_needed(const p11_token *t, CK_SESSION_HANDLE h, const char *pin, size_t pin_len,
                                  const jwtkit_key *key, atomic_ulong *count, int *refused, jwtkit_errinfo *info);

typedef struct p11_sess {
  CK_SESSION_HANDLE h;
  CK_OBJECT_HANDLE obj;
  unsigned long gen;
} p11_sess;

struct jk_p11key {
  p11_token tok;           /* module (owned), slot, label; slot changes only under mu */
  jk_p11_uri uri;          /* to find the token and the object again */
  CK_MECHANISM mech;
  CK_RSA_PKCS_PSS_PARAMS pss;
  int prehash;
  const jk_alg_info *ai;
  size_t sig_len;
  char *pin;               /* wiped on free */
  size_t pin_len;
  pthread_mutex_t mu;      /* the pool */
  pthread_cond_t cv;
  pthread_mutex_t login_mu; /* one login (and one token lookup) at a time */
  unsigned max, cap, open, nidle, wait_ms;
  p11_sess *idle;          /* cap entries */
  unsigned long gen;       /* bumped when sessions were lost: older idle ones are closed */
  unsigned long epoch;     /* the module's epoch of the idle sessions (re-initialised: forgotten) */
  int rescan;              /* the token went away: look it up again before opening */
  int refused;             /* the PIN was refused: fail fast with refused_info */
  jwtkit_errinfo refused_info;
  atomic_ulong opens, logins, waits, retries;
};

/* Open a session on the key's token, log in if needed, find the key. */
jwtkit_err jk_p11_sess_open(struct jk_p11key *p, const jwtkit_key *key, p11_sess *s, CK_RV *rv_out,
                            jwtkit_errinfo *info);
/* Take a session: an idle one, a new one while fewer than max are open,
 * else wait for one (at most wait_ms). */
jwtkit_err jk_p11_sess_get(struct jk_p11key *p, const jwtkit_key *key, p11_sess *s, jwtkit_errinfo *info);
/* Give a session back: kept when it still works, else closed. */
void jk_p11_sess_put(struct jk_p11key *p, const p11_sess *s, CK_RV rv);
/* A new key state owning tok.fl (also on failure: *out NULL, module released). */
jwtkit_err jk_p11_key_new(p11_token *tok, jk_p11_uri *uri, const jwtkit_pkcs11_opts *opts, struct jk_p11key **out,
                             jwtkit_errinfo *info);

/* ------------------------------------------------------------- objects */

/* Objects of class cls with the label and/or id: up to 2 handles (2 means
 * "several"). */
jwtkit_err jk_p11_find_objects(const p11_token *t, CK_SESSION_HANDLE h, CK_OBJECT_CLASS cls, const char *label,
                               const unsigned char *id, size_t id_len, CK_OBJECT_HANDLE found[2], CK_ULONG *n,
                               jwtkit_errinfo *info);
/* One attribute into buf (cap bytes).  0 with *len; 1 when the object
 * does not have it (or it is sensitive); -1 on other errors. */
int jk_p11_get_attr(const p11_token *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, void *buf,
                    size_t cap, size_t *len, CK_RV *rv_out);
int jk_p11_get_bool(const p11_token *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, int dflt);

/* CKA_EC_PARAMS of the curves (DER OIDs) */
extern const unsigned char jk_p11_oid_p256[10], jk_p11_oid_p384[7], jk_p11_oid_p521[7], jk_p11_oid_ed25519[5],
    jk_p11_oid_ed448[5];

typedef struct curve_info {
  const char *ossl;        /* OpenSSL group or key type */
  size_t point;            /* raw public point length */
  int edwards;
} curve_info;

/* The EVP_PKEY of the public half: the attributes of `o` (a public key, or
 * a private key that carries its public members), else of `pub`. */
jwtkit_err jk_p11_read_public(const p11_token *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_OBJECT_HANDLE pub,
                              const char *what, EVP_PKEY **out, jwtkit_errinfo *info);

/* Build the jwtkit_key of the private key the (owned) URI names, on the
 * token tok (its module owned too): read the public half, check the key
 * and the mechanism, sign once.  Everything is released on failure. */
jwtkit_err jk_p11_load_key(p11_token *tok, jk_p11_uri *uri, char **pin, size_t pin_len, jwtkit_alg alg,
                           const jwtkit_pkcs11_opts *opts, jwtkit_key **out, jwtkit_errinfo *info);
/* Parse a URI that names a key (object= and/or id=). */
jwtkit_err jk_p11_uri_for_key(const char *text, jk_p11_uri *u, jwtkit_errinfo *info);

/* Any object with this label (or this id). */
int jk_p11_object_exists(const p11_token *t, CK_SESSION_HANDLE h, const char *label, const unsigned char *id,
                         size_t id_len);

/* ---------------------------------------------------------- mechanisms */

typedef struct p11_mech {
  CK_MECHANISM_TYPE type;
  const char *name;
  int prehash; /* ECDSA: the token signs our digest */
} p11_mech;

p11_mech jk_p11_mech_for(const jk_alg_info *ai);
jwtkit_err jk_p11_mech_check(const p11_token *t, CK_MECHANISM_TYPE m, const char *name, CK_FLAGS need,
                             const char *why, jwtkit_errinfo *info);

#endif /* JWTKIT_WITH_PKCS11 */
#endif
