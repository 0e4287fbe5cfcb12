/* Internal: keys in PKCS#11 tokens (src/crypto/p11*.c, p11_internal.h) and the RFC 7512
 * "pkcs11:" URI parser (src/crypto/p11_uri.c, which needs no PKCS#11
 * headers and is built with or without p11-kit). */
#ifndef JK_P11_H
#define JK_P11_H

#include <stddef.h>

#include "jwtkit/error.h"
#include "jwtkit/key.h"

/* ------------------------------------------------------------ the URI */

#define JK_P11_URI_MAX 4096u /* longest URI text accepted */

enum {
  JK_P11_TYPE_ANY = 0, /* no type= */
  JK_P11_TYPE_PRIVATE,
  JK_P11_TYPE_PUBLIC,
  JK_P11_TYPE_CERT,
  JK_P11_TYPE_SECRET_KEY,
  JK_P11_TYPE_DATA
};

/* A parsed URI.  Every string is percent-decoded, NUL-terminated and points
 * into `buf` (one allocation); NULL when the attribute is absent. */
typedef struct jk_p11_uri {
  char *buf;
  /* path: which token (and slot, and module by its info) */
  const char *token, *manufacturer, *serial, *model;
  const char *lib_manufacturer, *lib_description;
  int has_lib_version;
  unsigned lib_major, lib_minor;
  const char *slot_description, *slot_manufacturer;
  int has_slot_id;
  unsigned long slot_id;
  /* path: which object */
  const char *object;       /* CKA_LABEL */
  const unsigned char *id;  /* CKA_ID (binary), NULL when absent */
  size_t id_len;
  int type;                 /* JK_P11_TYPE_* */
  /* query */
  const char *pin_source;   /* a file path ("file:" removed) */
  const char *module_name;  /* a module of p11-kit's configuration */
  const char *module_path;  /* an absolute path to a PKCS#11 module */
} jk_p11_uri;

/* Parse text[0..len) strictly: the "pkcs11:" scheme (any letter case),
 * the path and query attributes of RFC 7512 (plus slot-description,
 * slot-manufacturer and slot-id), each at most once, values in the
 * characters the grammar allows or percent-encoded, no NUL or control
 * character in text values, bounded lengths.  Refused with
 * JWTKIT_ERR_INVALID_ARG and a message naming the attribute and the fix:
 * unknown attributes (vendor ones included: an ignored constraint could
 * select another key), pin-value= (a PIN in a URI ends up in process
 * lists, shell history and logs), pin-source=|program, a relative
 * module-path.  One allocation (JWTKIT_ERR_NOMEM).  On failure *u is
 * cleared. */
jwtkit_err jk_p11_uri_parse(jk_p11_uri *u, const char *text, size_t len, jwtkit_errinfo *info);

/* Release what jk_p11_uri_parse allocated (a cleared *u is fine). */
void jk_p11_uri_free(jk_p11_uri *u);

/* The canonical text of u (attributes in a fixed order, percent-encoding
 * where needed, id fully percent-encoded); with_query adds pin-source,
 * module-name and module-path.  Writes at most cap bytes including the NUL
 * and returns the length the full text needs (without the NUL): the text
 * is complete when the result is < cap. */
size_t jk_p11_uri_format(const jk_p11_uri *u, int with_query, char *out, size_t cap);

/* 1 when text starts with "pkcs11:" (any letter case). */
int jk_p11_is_uri(const char *text, size_t len);

/* ------------------------------------------------------- token keys */

struct jk_p11key;

/* Sign data with a token key (key->p11 != NULL): the session pool,
 * re-login and one retry after a lost session.  Fills info on failure. */
jwtkit_err jk_p11_sign(const jwtkit_key *key, const unsigned char *data, size_t len, unsigned char *sig,
                       size_t cap, size_t *sig_len, jwtkit_errinfo *info);

/* A key pair made in the token the URI names (no object=, id= or type=),
 * labelled with its kid: CKA_LABEL is the RFC 7638 thumbprint, CKA_ID its
 * 32 bytes (jwtkit_pkcs11_generate otherwise).  For keyrings, whose token
 * objects are named by their kids. */
jwtkit_err jk_p11_generate_kid(jwtkit_key **out, jwtkit_alg alg, unsigned bits, const char *token_uri,
                               jwtkit_errinfo *info);

/* Close the sessions and release the module (the key's last reference). */
void jk_p11_key_free(struct jk_p11key *p);

/* ------------------------------------------------------- test hooks */

/* Events at which the token code calls jk_p11_test_hook (when set).  The hook
 * returns 0 to go on, or a PKCS#11 return value (CKR_*) that the call
 * about to be made is taken to have returned, so tests can make a token
 * fail on purpose.  Not part of the public API. */
enum {
  JK_P11_EV_OPEN = 1, /* before C_OpenSession */
  JK_P11_EV_LOGIN,    /* before C_Login */
  JK_P11_EV_SIGN,     /* before C_SignInit, holding a session */
  JK_P11_EV_WAIT      /* a signer starts waiting for a session (return ignored) */
};
extern unsigned long (*volatile jk_p11_test_hook)(int event, const jwtkit_key *key);

/* A module that lost its token (a call failed in a way a fresh C_Initialize
 * may cure: the token not found, a session or login the module failed) is
 * re-initialised before its next use, at most once per this many
 * milliseconds (1000; tests lower it). */
extern volatile long jk_p11_reinit_ms;

/* Counters of one token key, for tests. */
typedef struct jk_p11_stats {
  unsigned long opens;    /* C_OpenSession calls that succeeded */
  unsigned long logins;   /* C_Login calls made */
  unsigned long waits;    /* times a signer waited for a session */
  unsigned long retries;  /* signatures retried after a lost session */
  unsigned open_now;      /* sessions open now */
  unsigned max_sessions;  /* the pool bound in force */
} jk_p11_stats;
int jk_p11_get_stats(const jwtkit_key *key, jk_p11_stats *out);

/* The module and slot a token key uses (CK_FUNCTION_LIST *, CK_SLOT_ID),
 * so tests can close its sessions or log it out behind its back. */
int jk_p11_test_module(const jwtkit_key *key, void **function_list, unsigned long *slot);

#endif
