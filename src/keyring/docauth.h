/* The keyring document's authentication (docauth.c).
 *
 * A keyring that has a secret authenticates its metadata document (key
 * list, states, times, public JWKs) with HMAC-SHA-256, so that whoever can
 * write the store without that secret (a database writer without the KEK,
 * a directory writer without the passphrase) cannot change it unnoticed:
 *
 *  - PostgreSQL: the MAC key is HMAC-SHA-256(KEK, "jwtkit-keyring-doc-mac/v1"),
 *    never the KEK itself (which seals the private keys); the first KEK
 *    authenticates, every configured KEK verifies;
 *  - a directory keyring used with a passphrase: the MAC key is
 *    PBKDF2-HMAC-SHA-256(passphrase, "jwtkit-keyring-doc-mac/v1" || salt,
 *    200000 iterations), the 16-byte random salt kept in the document
 *    (keyring.json may be shown to people: guessing the passphrase from it
 *    costs what guessing it from a private key file costs, or more);
 *  - a directory keyring without a passphrase has nothing to key a MAC
 *    with: its file permissions are its trust boundary.
 *
 * The MAC is the document's last member, after the keys:
 *
 *   {"format":"jwtkit-keyring","version":2,...,"keys":[...],"auth":{"kek":"<KEK id>","mac":"<43 base64url>"}}\n
 *   {"format":"jwtkit-keyring","version":2,...,"keys":[...],"auth":{"salt":"<22 base64url>","mac":"<43>"}}\n
 *
 * It covers every byte before the MAC value; the four bytes after it are
 * fixed ("}}\n), so nothing in the document is left uncovered.  Document
 * and MAC are stored by one write (one rename, one UPDATE): they cannot
 * disagree after a crash.  An unauthenticated document has version 1 and no
 * "auth" member (directory keyrings without a passphrase, and documents
 * written before jwtkit authenticated them).
 */
#ifndef JK_DOCAUTH_H
#define JK_DOCAUTH_H

#include <stddef.h>

#include "codec/json.h"
#include "jwtkit/error.h"
#include "store.h"

#define JK_DOC_MAC_LABEL "jwtkit-keyring-doc-mac/v1"
#define JK_DOC_PBKDF2_ITER 200000u
#define JK_DOC_MAX_KEKS 16u

typedef enum jk_docauth_mode {
  JK_DOCAUTH_NONE = 0, /* no secret: documents are not authenticated */
  JK_DOCAUTH_KEK = 1,  /* PostgreSQL: KEKs */
  JK_DOCAUTH_PASS = 2  /* directory with a passphrase */
} jk_docauth_mode;

typedef struct jk_docauth {
  jk_docauth_mode mode;
  size_t nkeys; /* KEK: the MAC key of each configured KEK, in order */
  char ids[JK_DOC_MAX_KEKS][JK_KEK_ID_LEN + 1];
  unsigned char keys[JK_DOC_MAX_KEKS][32];
  const char *pass; /* PASS: borrowed from the keyring handle */
  int have_salt;    /* PASS: salt and the key derived for it */
  unsigned char salt[16];
  unsigned char pkey[32];
  int verified_by; /* KEK index that verified the last document checked, or -1 */
} jk_docauth;

/* KEK mode from the configured KEKs (1..16). */
jwtkit_err jk_docauth_set_keks(jk_docauth *a, const unsigned char (*keks)[32], size_t n, jwtkit_errinfo *info);
/* Passphrase mode; pass stays owned by the caller and must outlive a. */
void jk_docauth_set_pass(jk_docauth *a, const char *pass);
/* Wipe the keys. */
void jk_docauth_wipe(jk_docauth *a);

/* The document version to write: 2 when authenticated, else 1. */
int jk_docauth_version(const jk_docauth *a);

/* b holds a document whose top-level object is still open: append the
 * auth member (authenticated modes: under the first KEK, or the
 * passphrase with the document's salt, a fresh one if it has none), then
 * "}\n".  NOMEM when b ran out of memory, CRYPTO when a MAC failed. */
jwtkit_err jk_docauth_close(jk_docauth *a, jk_buf *b);

/* Check the parsed document d against the mode: an authenticated mode
 * needs an "auth" member whose MAC verifies (JWTKIT_ERR_BAD_SIGNATURE,
 * field "keyring", otherwise: not authenticated, unknown KEK, MAC
 * mismatch); without a secret an authenticated document is
 * JWTKIT_ERR_PASSPHRASE.  *authenticated: 1 when the document carries an
 * auth member (verified), else 0.  what names the store in messages. */
jwtkit_err jk_docauth_check(jk_docauth *a, const jk_jdoc *d, const char *what, int *authenticated,
                            jwtkit_errinfo *info);

#endif
