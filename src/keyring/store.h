/* Keyring storage interface: the keyring logic talks only to this, so a
 * database backend can stand beside the directory one. */
#ifndef JK_STORE_H
#define JK_STORE_H

#include <stddef.h>

#include "jwtkit/error.h"

typedef struct jk_store jk_store;

typedef struct jk_store_ops {
  /* Lock: exclusive for a read-modify-write cycle, shared for a consistent
   * read (blocks until held).  A shared lock that cannot be taken because
   * the store is read-only for this process is skipped. */
  jwtkit_err (*lock)(jk_store *s, int exclusive, jwtkit_errinfo *info);
  /* End what lock began.  commit: make the changes since lock durable (a
   * database backend commits its transaction here; the directory backend
   * has already made each write durable).  !commit: discard what can be
   * discarded.  Returns the commit's outcome. */
  jwtkit_err (*unlock)(jk_store *s, int commit, jwtkit_errinfo *info);
  /* Metadata document; JWTKIT_ERR_NOT_FOUND when none exists. */
  jwtkit_err (*load_meta)(jk_store *s, char **json, size_t *len, jwtkit_errinfo *info);
  /* Replace the metadata atomically (all or nothing, durable on return). */
  jwtkit_err (*save_meta)(jk_store *s, const char *json, size_t len, jwtkit_errinfo *info);
  /* Private key PEM by file name (name is [A-Za-z0-9_-]+). */
  jwtkit_err (*put_key)(jk_store *s, const char *name, const char *pem, size_t len, jwtkit_errinfo *info);
  jwtkit_err (*get_key)(jk_store *s, const char *name, char **pem, size_t *len, jwtkit_errinfo *info);
  jwtkit_err (*del_key)(jk_store *s, const char *name);
  /* Names of every stored private key (for orphan cleanup); *names is one
   * allocation of NUL-separated names. */
  jwtkit_err (*list_keys)(jk_store *s, char **names, size_t *count);
  /* Re-encrypt every stored private key under the first key-encryption
   * key (exclusive lock held); NULL when the backend has no KEKs. */
  jwtkit_err (*rekey)(jk_store *s, size_t *resealed, size_t *total, jwtkit_errinfo *info);
  /* From another thread: make a wait in progress (lock, query) fail soon
   * and every later lock fail at once.  NULL: nothing waits for long. */
  void (*interrupt)(jk_store *s);
  void (*close)(jk_store *s);
} jk_store_ops;

/* A private key name every backend accepts: 1..128 of [A-Za-z0-9_-]. */
int jk_store_name_ok(const char *name);

/* Largest metadata document a backend accepts. */
#define JK_MAX_META (4u << 20)

struct jk_store {
  const jk_store_ops *ops;
};

/* Directory backend.  create: make the directory (0700) if missing. */
jwtkit_err jk_store_dir_open(jk_store **out, const char *dir, int create, jwtkit_errinfo *info);

/* Hex id of a key-encryption key: the first 8 bytes of
 * SHA-256("jwtkit-kek" || kek) (kek.c). */
#define JK_KEK_ID_LEN 16
void jk_kek_id(const unsigned char kek[32], char out[JK_KEK_ID_LEN + 1]);

/* PostgreSQL backend (store_pg.c): url is a libpq connection URI; keks are
 * the key-encryption keys (the first seals, all open).  Connects lazily. */
jwtkit_err jk_store_pg_open(jk_store **out, const char *url, const unsigned char (*keks)[32], size_t nkeks,
                            jwtkit_errinfo *info);

/* Files: common/file.h (bounded reads, the secret-file rule, atomic writes). */
#include "common/file.h"

#endif
