/* PostgreSQL keyring backend.
 *
 * Tables (schema version 2, created and migrated by jwtkit under the
 * keyring's advisory lock, in the connection's current schema):
 *   jwtkit_schema        one row: the schema version
 *   jwtkit_keyring       one row: the metadata document and a revision
 *   jwtkit_private_keys  one row per private key, sealed (below)
 * and, since version 2, beside them for `jwtkit serve` (its clients and
 * the client assertions its replicas have seen; services/serve/clients_pg.c):
 *   jwtkit_clients       one row per client: name, secret hash, settings
 *   jwtkit_client_set    one row: the clients' revision and MAC
 *   jwtkit_client_jti    one row per client assertion id until it expires
 * jk_pg_lock_migrate (pg.h) takes the lock and migrates for them too.
 *
 * Locking: an exclusive lock is a transaction holding
 * pg_advisory_xact_lock(hashtext('jwtkit-keyring:' || schema)), so every
 * read-modify-write of every replica is serialised and a mutation commits
 * as one transaction (a replica killed half-way commits nothing).  A shared
 * lock is a REPEATABLE READ READ ONLY transaction: one consistent snapshot,
 * no lock.  save_meta also sends NOTIFY jwtkit_keyring, delivered at
 * commit.
 *
 * Sealing: every private key PEM is encrypted here, before it leaves the
 * process, with AES-256-GCM under the first key-encryption key (KEK): a
 * fresh 96-bit random nonce per write, the 128-bit tag appended, and the
 * row's name and KEK id bound as associated data (a row copied onto
 * another name does not open).  The KEK id is the first 8 bytes of
 * SHA-256("jwtkit-kek" || KEK) in hex; every KEK in the list opens the rows
 * sealed under it, so a new KEK can be put first and the rows re-sealed
 * (rekey) while the old one still opens them.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/alloc.h"
#include "core/error_internal.h"
#include "crypto/key_internal.h" /* jk_random */
#include "crypto/seal.h"
#include "pg.h"
#include "store.h"

#define PG_SCHEMA_VERSION 2
#define PG_MAX_KEKS 16u
#define PG_NONCE JK_GCM_NONCE
#define PG_TAG JK_GCM_TAG
#define PG_MAX_SEALED (64u << 10) /* a 16384-bit RSA PKCS#8 PEM is ~13 KB */

typedef struct pg_store {
  jk_store base;
  char *url;
  unsigned char (*keks)[32];
  char (*kek_ids)[JK_KEK_ID_LEN + 1];
  size_t nkeks;
  PGconn *conn;
  int in_txn, exclusive;
  /* interrupt(), from another thread: cancel what conn is waiting for */
  pthread_mutex_t cancel_mu;
  PGcancel *cancel; /* of conn; under cancel_mu */
  int interrupted;  /* sticky; under cancel_mu */
  int no_schema; /* shared lock found no jwtkit tables */
  int borrowed;  /* conn is a caller's (jk_pg_lock_migrate): never closed here */
} pg_store;

/* ------------------------------------------------------------ helpers */

const char *jk_pg_msg(PGconn *c, char *buf, size_t cap) {
  const char *m = c ? PQerrorMessage(c) : "no connection";
  size_t n = strcspn(m, "\n");
  if (n >= cap) n = cap - 1;
  memcpy(buf, m, n);
  buf[n] = '\0';
  if (strncmp(buf, "ERROR:  ", 8) == 0) memmove(buf, buf + 8, strlen(buf + 8) + 1);
  return buf[0] ? buf : "connection lost";
}

static void drop_conn(pg_store *p) {
  pthread_mutex_lock(&p->cancel_mu);
  if (p->cancel) PQfreeCancel(p->cancel);
  p->cancel = NULL;
  pthread_mutex_unlock(&p->cancel_mu);
  if (p->conn && !p->borrowed) PQfinish(p->conn);
  p->conn = NULL;
  p->in_txn = 0;
}

/* Open the connection; fails at once once the store was interrupted. */
static jwtkit_err open_conn(pg_store *p, jwtkit_errinfo *info) {
  char m[200];
  PGconn *c = jk_pg_connect(p->url, m, sizeof m);
  if (c == NULL) return jk_fail(info, JWTKIT_ERR_IO, NULL, "PostgreSQL keyring: cannot connect: %s", m);
  pthread_mutex_lock(&p->cancel_mu);
  int stop = p->interrupted;
  if (!stop) p->cancel = PQgetCancel(c);
  pthread_mutex_unlock(&p->cancel_mu);
  if (stop) {
    PQfinish(c);
    return jk_fail(info, JWTKIT_ERR_STATE, NULL, "PostgreSQL keyring: interrupted");
  }
  p->conn = c;
  return JWTKIT_OK;
}

static jwtkit_err db_fail(pg_store *p, jwtkit_errinfo *info, const char *what) {
  char m[200];
  jwtkit_err rc =
      jk_fail(info, JWTKIT_ERR_IO, NULL, "PostgreSQL keyring: %s: %s", what, jk_pg_msg(p->conn, m, sizeof m));
  /* a broken connection (server restarted, network) is opened afresh by
   * the next lock; a failed statement leaves the transaction aborted,
   * which unlock rolls back */
  if (p->conn && PQstatus(p->conn) != CONNECTION_OK) drop_conn(p);
  return rc;
}

static void quiet(void *arg, const char *msg) {
  (void)arg;
  (void)msg; /* NOTICEs ("relation already exists, skipping") are not ours to print */
}

PGconn *jk_pg_connect(const char *url, char *err, size_t cap) {
  /* the URI comes last so its own connect_timeout wins */
  const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
  const char *const vals[] = {"5", "jwtkit", url, NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (c == NULL || PQstatus(c) != CONNECTION_OK) {
    jk_pg_msg(c, err, cap);
    if (c) PQfinish(c);
    return NULL;
  }
  PQsetNoticeProcessor(c, quiet, NULL);
  return c;
}

/* Run a statement without parameters; ok: the result status expected. */
static jwtkit_err exec0(pg_store *p, const char *sql, ExecStatusType ok, jwtkit_errinfo *info, const char *what) {
  PGresult *r = PQexec(p->conn, sql);
  jwtkit_err rc = r != NULL && PQresultStatus(r) == ok ? JWTKIT_OK : db_fail(p, info, what);
  PQclear(r);
  return rc;
}

/* A write with parameters (NULL lens/fmts: all text). */
static jwtkit_err exec_write(pg_store *p, const char *sql, int n, const char *const *params, const int *lens,
                             const int *fmts, jwtkit_errinfo *info, const char *what) {
  PGresult *r = PQexecParams(p->conn, sql, n, NULL, params, lens, fmts, 0);
  jwtkit_err rc = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK ? JWTKIT_OK : db_fail(p, info, what);
  PQclear(r);
  return rc;
}

/* --------------------------------------------------------- migrations */

static const char *const k_migrations[PG_SCHEMA_VERSION] = {
    /* 1: the keyring and its sealed private keys */
    "CREATE TABLE jwtkit_keyring ("
    " id smallint PRIMARY KEY CHECK (id = 1),"
    " revision bigint NOT NULL,"
    " doc text NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE jwtkit_private_keys ("
    " name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_-]{1,128}$'),"
    " kek_id text NOT NULL,"
    " nonce bytea NOT NULL CHECK (length(nonce) = 12),"
    " sealed bytea NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now());",
    /* 2: the issuer's clients (secret hashes only, never secrets), their
     * MAC under the KEK, and the client assertion ids seen (replay) */
    "CREATE TABLE IF NOT EXISTS jwtkit_clients ("
    " name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._~-]{1,128}$'),"
    " secret_hash text,"
    " settings text NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS jwtkit_client_set ("
    " id smallint PRIMARY KEY CHECK (id = 1),"
    " revision bigint NOT NULL,"
    " kek_id text NOT NULL,"
    " mac text NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS jwtkit_client_jti ("
    " client text NOT NULL,"
    " jti bytea NOT NULL,"
    " expires_at bigint NOT NULL,"
    " PRIMARY KEY (client, jti));"
    "CREATE INDEX IF NOT EXISTS jwtkit_client_jti_expires ON jwtkit_client_jti (expires_at);",
};

/* Called under the exclusive lock: create or upgrade the tables. */
static jwtkit_err migrate(pg_store *p, jwtkit_errinfo *info) {
  jwtkit_err rc = exec0(p,
                        "CREATE TABLE IF NOT EXISTS jwtkit_schema ("
                        " id smallint PRIMARY KEY CHECK (id = 1), version integer NOT NULL)",
                        PGRES_COMMAND_OK, info, "creating jwtkit_schema");
  if (rc != JWTKIT_OK) return rc;
  PGresult *r = PQexec(p->conn, "SELECT version FROM jwtkit_schema WHERE id = 1");
  if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
    PQclear(r);
    return db_fail(p, info, "reading the schema version");
  }
  long v = PQntuples(r) == 1 ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : 0;
  PQclear(r);
  if (v > PG_SCHEMA_VERSION)
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL,
                   "PostgreSQL keyring: schema version %ld is newer than this jwtkit knows (%d); upgrade jwtkit", v,
                   PG_SCHEMA_VERSION);
  for (long i = v; i < PG_SCHEMA_VERSION; i++) {
    char what[64];
    snprintf(what, sizeof what, "migrating to schema version %ld", i + 1);
    if ((rc = exec0(p, k_migrations[i], PGRES_COMMAND_OK, info, what)) != JWTKIT_OK) return rc;
  }
  if (v < PG_SCHEMA_VERSION) {
    char sql[160];
    snprintf(sql, sizeof sql,
             "INSERT INTO jwtkit_schema (id, version) VALUES (1, %d) ON CONFLICT (id) DO UPDATE SET version = %d",
             PG_SCHEMA_VERSION, PG_SCHEMA_VERSION);
    rc = exec0(p, sql, PGRES_COMMAND_OK, info, "recording the schema version");
  }
  return rc;
}

/* In a transaction: the keyring's advisory lock (at most 30 s of waiting
 * for it), then the tables created or upgraded. */
static jwtkit_err lock_and_migrate(pg_store *p, jwtkit_errinfo *info) {
  jwtkit_err rc = exec0(p, "SET LOCAL lock_timeout = '30s'", PGRES_COMMAND_OK, info, "setting lock_timeout");
  if (rc == JWTKIT_OK)
    rc = exec0(p, "SELECT pg_advisory_xact_lock(hashtext('jwtkit-keyring:' || coalesce(current_schema(), '')))",
               PGRES_TUPLES_OK, info, "taking the keyring lock");
  if (rc == JWTKIT_OK) rc = migrate(p, info);
  return rc;
}

int jk_pg_schema_version(void) { return PG_SCHEMA_VERSION; }

jwtkit_err jk_pg_lock_migrate(PGconn *conn, jwtkit_errinfo *info) {
  /* a store of its own for the helpers above; the connection is the
   * caller's and stays open */
  pg_store p;
  memset(&p, 0, sizeof p);
  pthread_mutex_init(&p.cancel_mu, NULL);
  p.conn = conn;
  p.borrowed = 1;
  jwtkit_err rc = lock_and_migrate(&p, info);
  pthread_mutex_destroy(&p.cancel_mu);
  return rc;
}

/* Under a shared lock: is there a schema this build can read? */
static jwtkit_err check_schema(pg_store *p, jwtkit_errinfo *info) {
  /* two statements: a missing table fails the whole statement naming it */
  PGresult *r = PQexec(p->conn, "SELECT to_regclass('jwtkit_schema') IS NOT NULL");
  if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    PQclear(r);
    return db_fail(p, info, "looking for the jwtkit tables");
  }
  int have = PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  long v = -1;
  if (have) {
    r = PQexec(p->conn, "SELECT coalesce((SELECT version FROM jwtkit_schema WHERE id = 1), 0)");
    if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
      PQclear(r);
      return db_fail(p, info, "reading the schema version");
    }
    v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
  }
  p->no_schema = v < 1;
  if (v > PG_SCHEMA_VERSION)
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL,
                   "PostgreSQL keyring: schema version %ld is newer than this jwtkit knows (%d); upgrade jwtkit", v,
                   PG_SCHEMA_VERSION);
  /* an older schema is upgraded by the next mutation; version 1 is the
   * first, so there is nothing older to read yet */
  return JWTKIT_OK;
}

/* ---------------------------------------------------------- the store */

static jwtkit_err pg_lock(jk_store *s, int exclusive, jwtkit_errinfo *info) {
  pg_store *p = (pg_store *)s;
  if (p->in_txn) return jk_fail(info, JWTKIT_ERR_STATE, NULL, "PostgreSQL keyring: already locked");
  pthread_mutex_lock(&p->cancel_mu);
  int stop = p->interrupted;
  pthread_mutex_unlock(&p->cancel_mu);
  if (stop) return jk_fail(info, JWTKIT_ERR_STATE, NULL, "PostgreSQL keyring: interrupted");
  if (p->conn != NULL && PQstatus(p->conn) != CONNECTION_OK) drop_conn(p);
  jwtkit_err rc;
  if (p->conn == NULL && (rc = open_conn(p, info)) != JWTKIT_OK) return rc;
  rc = exec0(p, exclusive ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", PGRES_COMMAND_OK,
                        info, "beginning a transaction");
  if (rc != JWTKIT_OK) {
    /* a connection kept from an earlier lock may have died with a server
     * restart without libpq noticing until now: one fresh attempt */
    drop_conn(p);
    if ((rc = open_conn(p, info)) != JWTKIT_OK) return rc;
    rc = exec0(p, exclusive ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", PGRES_COMMAND_OK, info,
               "beginning a transaction");
    if (rc != JWTKIT_OK) return rc;
  }
  p->in_txn = 1;
  p->exclusive = exclusive;
  if (exclusive) {
    /* a replica stuck while holding the lock (stopped, not dead: a dead
     * one's transaction ends with its connection) delays the others for
     * at most lock_timeout; their rotation fails and is retried */
    rc = lock_and_migrate(p, info);
    p->no_schema = 0;
  } else {
    rc = check_schema(p, info);
  }
  if (rc != JWTKIT_OK) {
    jwtkit_errinfo ignore;
    (void)s->ops->unlock(s, 0, &ignore);
  }
  return rc;
}

static jwtkit_err pg_unlock(jk_store *s, int commit, jwtkit_errinfo *info) {
  pg_store *p = (pg_store *)s;
  if (!p->in_txn || p->conn == NULL) {
    p->in_txn = 0;
    return commit && p->exclusive ? jk_fail(info, JWTKIT_ERR_IO, NULL, "PostgreSQL keyring: connection lost before commit")
                                  : JWTKIT_OK;
  }
  jwtkit_err rc = JWTKIT_OK;
  PGresult *r = PQexec(p->conn, commit && p->exclusive ? "COMMIT" : "ROLLBACK");
  /* COMMIT of a transaction with a failed statement reports ROLLBACK */
  if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK ||
      (commit && p->exclusive && strcmp(PQcmdStatus(r), "COMMIT") != 0))
    rc = commit && p->exclusive ? db_fail(p, info, "committing") : JWTKIT_OK;
  PQclear(r);
  p->in_txn = 0;
  if (p->conn && PQstatus(p->conn) != CONNECTION_OK) drop_conn(p);
  /* read-only handles (a snapshot being served) do not hold a connection
   * open; the handle that mutates keeps its own for the next round */
  if (!p->exclusive) drop_conn(p);
  return rc;
}

static jwtkit_err need_txn(pg_store *p, int exclusive, jwtkit_errinfo *info) {
  if (!p->in_txn || p->conn == NULL || (exclusive && !p->exclusive))
    return jk_fail(info, JWTKIT_ERR_STATE, NULL, "PostgreSQL keyring: write outside the keyring lock");
  return JWTKIT_OK;
}

static jwtkit_err pg_load_meta(jk_store *s, char **json, size_t *len, jwtkit_errinfo *info) {
  pg_store *p = (pg_store *)s;
  *json = NULL;
  jwtkit_err rc = need_txn(p, 0, info);
  if (rc != JWTKIT_OK) return rc;
  if (p->no_schema) return jk_fail(info, JWTKIT_ERR_NOT_FOUND, NULL, "no keyring in this database");
  PGresult *r = PQexec(p->conn, "SELECT doc FROM jwtkit_keyring WHERE id = 1");
  if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
    PQclear(r);
    return db_fail(p, info, "reading the keyring");
  }
  if (PQntuples(r) != 1) {
    PQclear(r);
    return jk_fail(info, JWTKIT_ERR_NOT_FOUND, NULL, "no keyring in this database");
  }
  size_t n = (size_t)PQgetlength(r, 0, 0);
  if (n > JK_MAX_META) {
    PQclear(r);
    return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "PostgreSQL keyring: metadata larger than %u bytes", JK_MAX_META);
  }
  *json = jk_strndup(PQgetvalue(r, 0, 0), n);
  PQclear(r);
  if (*json == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  if (len) *len = n;
  return JWTKIT_OK;
}

static jwtkit_err pg_save_meta(jk_store *s, const char *json, size_t len, jwtkit_errinfo *info) {
  pg_store *p = (pg_store *)s;
  jwtkit_err rc = need_txn(p, 1, info);
  if (rc != JWTKIT_OK) return rc;
  if (len > JK_MAX_META || memchr(json, '\0', len) != NULL)
    return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "PostgreSQL keyring: metadata too large or not text");
  char *doc = jk_strndup(json, len);
  if (doc == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  const char *params[1] = {doc};
  rc = exec_write(p,
                  "INSERT INTO jwtkit_keyring (id, revision, doc) VALUES (1, 1, $1)"
                  " ON CONFLICT (id) DO UPDATE SET revision = jwtkit_keyring.revision + 1,"
                  " doc = EXCLUDED.doc, updated_at = now()",
                  1, params, NULL, NULL, info, "writing the keyring");
  jk_free(doc);
  /* delivered to every listener when (and only if) the transaction commits */
  if (rc == JWTKIT_OK)
    rc = exec0(p, "SELECT pg_notify('" JK_PG_CHANNEL "', coalesce(current_schema(), ''))", PGRES_TUPLES_OK, info,
               "notifying the replicas");
  return rc;
}

/* ------------------------------------------------------------ sealing */

static void aad_of(const char *name, const char *kek_id, unsigned char *aad, size_t *n) {
  /* "jwtkit-key/v1" NUL name NUL kek_id: unambiguous, names are <= 128 */
  size_t o = 0;
  memcpy(aad, "jwtkit-key/v1", 14);
  o += 14;
  size_t nl = strlen(name) + 1;
  memcpy(aad + o, name, nl);
  o += nl;
  memcpy(aad + o, kek_id, JK_KEK_ID_LEN);
  o += JK_KEK_ID_LEN;
  *n = o;
}

/* Seal pem for the row name under KEK 0 into a fresh buffer. */
static jwtkit_err seal(pg_store *p, const char *name, const unsigned char *pem, size_t len, unsigned char nonce[PG_NONCE],
                       unsigned char **sealed, size_t *slen, jwtkit_errinfo *info) {
  *sealed = NULL;
  if (len > PG_MAX_SEALED - PG_TAG) return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "private key too large");
  unsigned char aad[14 + 129 + JK_KEK_ID_LEN];
  size_t an = 0;
  aad_of(name, p->kek_ids[0], aad, &an);
  unsigned char *out = jk_malloc(len + PG_TAG);
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  if (jk_random(nonce, PG_NONCE) != 0 || jk_aes256gcm(1, p->keks[0], nonce, aad, an, pem, len, out) != 0) {
    jk_free(out);
    return jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, "sealing a private key failed");
  }
  *sealed = out;
  *slen = len + PG_TAG;
  return JWTKIT_OK;
}

/* Open a row; *pem is NUL-terminated, free with jk_free_secret(pem, len). */
static jwtkit_err unseal(pg_store *p, const char *name, const char *kek_id, const unsigned char *nonce, size_t nlen,
                         const unsigned char *sealed, size_t slen, char **pem, size_t *len, jwtkit_errinfo *info) {
  *pem = NULL;
  size_t k = p->nkeks;
  for (size_t i = 0; i < p->nkeks; i++)
    if (strcmp(p->kek_ids[i], kek_id) == 0) k = i;
  if (k == p->nkeks)
    return jk_fail(info, JWTKIT_ERR_KEK, NULL,
                   "private key %s is sealed under KEK %.16s, which is not among the configured KEKs", name, kek_id);
  if (nlen != PG_NONCE || slen < PG_TAG || slen > PG_MAX_SEALED)
    return jk_fail(info, JWTKIT_ERR_MALFORMED, NULL, "private key %s: malformed sealed row", name);
  unsigned char aad[14 + 129 + JK_KEK_ID_LEN];
  size_t an = 0;
  aad_of(name, p->kek_ids[k], aad, &an);
  size_t n = slen - PG_TAG;
  unsigned char *out = jk_malloc(n + 1);
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  if (jk_aes256gcm(0, p->keks[k], nonce, aad, an, sealed, n, out) != 0) {
    jk_free_secret(out, n + 1);
    return jk_fail(info, JWTKIT_ERR_KEK, NULL,
                   "private key %s does not open under KEK %s (wrong KEK, or the row was altered)", name, kek_id);
  }
  out[n] = '\0';
  *pem = (char *)out;
  *len = n;
  return JWTKIT_OK;
}

static jwtkit_err put_sealed(pg_store *p, const char *name, const unsigned char *pem, size_t len, jwtkit_errinfo *info) {
  unsigned char nonce[PG_NONCE], *sealed = NULL;
  size_t slen = 0;
  jwtkit_err rc = seal(p, name, pem, len, nonce, &sealed, &slen, info);
  if (rc != JWTKIT_OK) return rc;
  const char *params[4] = {name, p->kek_ids[0], (const char *)nonce, (const char *)sealed};
  const int lens[4] = {0, 0, PG_NONCE, (int)slen};
  const int fmts[4] = {0, 0, 1, 1};
  rc = exec_write(p,
                  "INSERT INTO jwtkit_private_keys (name, kek_id, nonce, sealed) VALUES ($1, $2, $3, $4)"
                  " ON CONFLICT (name) DO UPDATE SET kek_id = EXCLUDED.kek_id, nonce = EXCLUDED.nonce,"
                  " sealed = EXCLUDED.sealed, updated_at = now()",
                  4, params, lens, fmts, info, "writing a private key");
  jk_free(sealed);
  return rc;
}

static jwtkit_err pg_put_key(jk_store *s, const char *name, const char *pem, size_t len, jwtkit_errinfo *info) {
  pg_store *p = (pg_store *)s;
  jwtkit_err rc = need_txn(p, 1, info);
  if (rc != JWTKIT_OK) return rc;
  if (!jk_store_name_ok(name)) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "bad key name");
  if (p->nkeks == 0) return jk_fail(info, JWTKIT_ERR_KEK, NULL, "a private key cannot be sealed without a KEK");
  return put_sealed(p, name, (const unsigned char *)pem, len, info);
}

static jwtkit_err pg_get_key(jk_store *s, const char *name, char **pem, size_t *len, jwtkit_errinfo *info) {
  pg_store *p = (pg_store *)s;
  *pem = NULL;
  jwtkit_err rc = need_txn(p, 0, info);
  if (rc != JWTKIT_OK) return rc;
  if (!jk_store_name_ok(name)) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "bad key name");
  const char *params[1] = {name};
  PGresult *r = PQexecParams(p->conn, "SELECT kek_id, nonce, sealed FROM jwtkit_private_keys WHERE name = $1", 1, NULL,
                             params, NULL, NULL, 1);
  if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
    PQclear(r);
    return db_fail(p, info, "reading a private key");
  }
  if (PQntuples(r) != 1) {
    PQclear(r);
    return jk_fail(info, JWTKIT_ERR_NOT_FOUND, NULL, "private key %s is missing from the database", name);
  }
  char kid[JK_KEK_ID_LEN + 1];
  int kl = PQgetlength(r, 0, 0);
  if (kl != JK_KEK_ID_LEN) {
    PQclear(r);
    return jk_fail(info, JWTKIT_ERR_MALFORMED, NULL, "private key %s: malformed KEK id", name);
  }
  memcpy(kid, PQgetvalue(r, 0, 0), JK_KEK_ID_LEN);
  kid[JK_KEK_ID_LEN] = '\0';
  rc = unseal(p, name, kid, (const unsigned char *)PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1),
              (const unsigned char *)PQgetvalue(r, 0, 2), (size_t)PQgetlength(r, 0, 2), pem, len, info);
  PQclear(r);
  return rc;
}

static jwtkit_err pg_del_key(jk_store *s, const char *name) {
  pg_store *p = (pg_store *)s;
  if (need_txn(p, 1, NULL) != JWTKIT_OK || !jk_store_name_ok(name)) return JWTKIT_ERR_STATE;
  const char *params[1] = {name};
  return exec_write(p, "DELETE FROM jwtkit_private_keys WHERE name = $1", 1, params, NULL, NULL, NULL,
                    "deleting a private key");
}

static jwtkit_err pg_list_keys(jk_store *s, char **names, size_t *count) {
  pg_store *p = (pg_store *)s;
  *names = NULL;
  *count = 0;
  if (need_txn(p, 0, NULL) != JWTKIT_OK) return JWTKIT_ERR_STATE;
  PGresult *r = PQexec(p->conn, "SELECT name FROM jwtkit_private_keys ORDER BY name");
  if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
    PQclear(r);
    return JWTKIT_ERR_IO;
  }
  int n = PQntuples(r);
  size_t total = 1;
  for (int i = 0; i < n; i++) total += (size_t)PQgetlength(r, i, 0) + 1;
  char *out = jk_malloc(total);
  if (out == NULL) {
    PQclear(r);
    return JWTKIT_ERR_NOMEM;
  }
  size_t o = 0;
  for (int i = 0; i < n; i++) {
    size_t l = (size_t)PQgetlength(r, i, 0);
    memcpy(out + o, PQgetvalue(r, i, 0), l);
    out[o + l] = '\0';
    o += l + 1;
  }
  out[o] = '\0';
  PQclear(r);
  *names = out;
  *count = (size_t)n;
  return JWTKIT_OK;
}

static jwtkit_err pg_rekey(jk_store *s, size_t *resealed, size_t *total, jwtkit_errinfo *info) {
  pg_store *p = (pg_store *)s;
  *resealed = *total = 0;
  jwtkit_err rc = need_txn(p, 1, info);
  if (rc != JWTKIT_OK) return rc;
  PGresult *r = PQexecParams(p->conn, "SELECT name, kek_id, nonce, sealed FROM jwtkit_private_keys ORDER BY name", 0,
                             NULL, NULL, NULL, NULL, 1);
  if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
    PQclear(r);
    return db_fail(p, info, "reading the private keys");
  }
  int n = PQntuples(r);
  *total = (size_t)n;
  for (int i = 0; i < n && rc == JWTKIT_OK; i++) {
    char name[129], kid[JK_KEK_ID_LEN + 1];
    int nl = PQgetlength(r, i, 0), kl = PQgetlength(r, i, 1);
    if (nl < 1 || nl > 128 || kl != JK_KEK_ID_LEN) {
      rc = jk_fail(info, JWTKIT_ERR_MALFORMED, NULL, "a private key row is malformed");
      break;
    }
    memcpy(name, PQgetvalue(r, i, 0), (size_t)nl);
    name[nl] = '\0';
    memcpy(kid, PQgetvalue(r, i, 1), JK_KEK_ID_LEN);
    kid[JK_KEK_ID_LEN] = '\0';
    char *pem = NULL;
    size_t len = 0;
    /* every row is opened, even those already under KEK 0: a rekey that
     * succeeds proves every key is readable with the configured KEKs */
    rc = unseal(p, name, kid, (const unsigned char *)PQgetvalue(r, i, 2), (size_t)PQgetlength(r, i, 2),
                (const unsigned char *)PQgetvalue(r, i, 3), (size_t)PQgetlength(r, i, 3), &pem, &len, info);
    if (rc != JWTKIT_OK) break;
    if (strcmp(kid, p->kek_ids[0]) != 0) {
      rc = put_sealed(p, name, (const unsigned char *)pem, len, info);
      if (rc == JWTKIT_OK) (*resealed)++;
    }
    jk_free_secret(pem, len + 1);
  }
  PQclear(r);
  return rc;
}

static void pg_interrupt(jk_store *s) {
  pg_store *p = (pg_store *)s;
  pthread_mutex_lock(&p->cancel_mu);
  p->interrupted = 1;
  char err[256];
  if (p->cancel) (void)PQcancel(p->cancel, err, sizeof err); /* best effort */
  pthread_mutex_unlock(&p->cancel_mu);
}

static void pg_close(jk_store *s) {
  pg_store *p = (pg_store *)s;
  if (p == NULL) return;
  if (p->in_txn && p->conn) PQclear(PQexec(p->conn, "ROLLBACK"));
  drop_conn(p);
  pthread_mutex_destroy(&p->cancel_mu);
  if (p->url) jk_free_secret(p->url, strlen(p->url)); /* may hold a password */
  if (p->keks) jk_free_secret(p->keks, p->nkeks * sizeof *p->keks);
  jk_free(p->kek_ids);
  jk_free(p);
}

static const jk_store_ops k_pg_ops = {
    .lock = pg_lock,
    .unlock = pg_unlock,
    .load_meta = pg_load_meta,
    .save_meta = pg_save_meta,
    .put_key = pg_put_key,
    .get_key = pg_get_key,
    .del_key = pg_del_key,
    .list_keys = pg_list_keys,
    .rekey = pg_rekey,
    .interrupt = pg_interrupt,
    .close = pg_close,
};

jwtkit_err jk_store_pg_open(jk_store **out, const char *url, const unsigned char (*keks)[32], size_t nkeks,
                            jwtkit_errinfo *info) {
  *out = NULL;
  if (keks == NULL) nkeks = 0; /* public metadata only: nothing can be sealed or opened */
  if (nkeks > PG_MAX_KEKS) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "at most %u KEKs", PG_MAX_KEKS);
  pg_store *p = jk_calloc(1, sizeof *p);
  if (p == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  p->base.ops = &k_pg_ops;
  pthread_mutex_init(&p->cancel_mu, NULL);
  p->url = jk_strdup(url);
  p->keks = jk_malloc((nkeks ? nkeks : 1) * sizeof *p->keks);
  p->kek_ids = jk_malloc((nkeks ? nkeks : 1) * sizeof *p->kek_ids);
  if (p->url == NULL || p->keks == NULL || p->kek_ids == NULL) {
    pg_close(&p->base);
    return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  p->nkeks = nkeks;
  for (size_t i = 0; i < nkeks; i++) {
    memcpy(p->keks[i], keks[i], 32);
    jk_kek_id(keks[i], p->kek_ids[i]);
    for (size_t j = 0; j < i; j++)
      if (strcmp(p->kek_ids[i], p->kek_ids[j]) == 0) {
        pg_close(&p->base);
        return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "the same KEK is listed twice");
      }
  }
  *out = &p->base;
  return JWTKIT_OK;
}
