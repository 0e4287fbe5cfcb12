/* Clients in PostgreSQL, beside a PostgreSQL keyring.
 *
 * Tables (created by the keyring's migrations, schema version 2,
 * src/keyring/store_pg.c; every change here runs under the keyring's
 * advisory lock and migrates first, jk_pg_lock_migrate):
 *   jwtkit_clients     name, secret_hash (PBKDF2, never a secret), settings
 *                      (the client's other lines in the clients file's
 *                      dialect: audience, scopes, ttl, alg, disabled)
 *   jwtkit_client_set  one row: revision, kek_id, mac
 *   jwtkit_client_jti  the private_key_jwt assertion ids the replicas have
 *                      taken (client, jti, expires_at), each until its exp
 *
 * The clients decide who gets tokens, so a database writer without the
 * KEK must not be able to add one, change one or bring back one that was
 * removed or re-keyed (the keyring document's rule, docs/keyring.md):
 * the whole set is authenticated, HMAC-SHA-256 under
 * HMAC-SHA-256(KEK, "jwtkit-clients-mac/v1") over the revision and every
 * row, in name order.  The first KEK authenticates a change, every listed
 * KEK verifies.  A revision lower than one this process has served is
 * refused (a rollback), and so is a set that does not match its MAC; the
 * issuer then keeps serving the clients it has.
 *
 * A change raises the revision and sends NOTIFY jwtkit_keyring in its
 * transaction: the issuers' keyring watch (LISTEN) wakes their rotation
 * thread, which reads and authenticates the set and serves it when its
 * revision moved; the periodic keyring check does the same, so a lost
 * notification costs at most one rotate_check. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "core/alloc.h"
#include "crypto/seal.h"
#include "serve.h"

#ifdef JWTKIT_WITH_POSTGRES
#include <libpq-fe.h>

#include "keyring/pg.h"

#define MAC_LABEL "jwtkit-clients-mac/v1"
#define SET_LABEL "jwtkit-clients/v1"

/* ------------------------------------------------------------ helpers */

static int fail_db(PGconn *c, const char *what, char *err, size_t cap) {
  char m[300];
  snprintf(err, cap, "PostgreSQL clients: %s: %s", what, jk_pg_msg(c, m, sizeof m));
  return -1;
}

/* A statement without parameters; ok: the status expected. */
static int exec0(PGconn *c, const char *sql, ExecStatusType ok, const char *what, char *err, size_t cap) {
  PGresult *r = PQexec(c, sql);
  int rc = r != NULL && PQresultStatus(r) == ok ? 0 : fail_db(c, what, err, cap);
  PQclear(r);
  return rc;
}

static int exec_params(PGconn *c, const char *sql, int n, const char *const *params, const char *what, char *err,
                       size_t cap, int *affected) {
  PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
  int rc = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : fail_db(c, what, err, cap);
  if (rc == 0 && affected != NULL) *affected = atoi(PQcmdTuples(r));
  PQclear(r);
  return rc;
}

static void put_u32(jk_buf *b, uint32_t v) {
  unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                        (unsigned char)v};
  jk_buf_put(b, x, 4);
}

static void put_field(jk_buf *b, const char *s, size_t n) {
  put_u32(b, (uint32_t)n);
  jk_buf_put(b, s, n);
}

/* The MAC of the set: rows is the result of SELECT name, secret_hash,
 * settings ... ORDER BY name COLLATE "C". */
static int set_mac(const unsigned char kek[32], uint64_t revision, PGresult *rows, unsigned char out[32]) {
  unsigned char key[32];
  if (jk_hmac_sha256_2(kek, 32, MAC_LABEL, strlen(MAC_LABEL), NULL, 0, key) != 0) return -1;
  jk_buf all;
  jk_buf_init_max(&all, (size_t)SV_MAX_CLIENTS * 32 + 64);
  jk_buf_put(&all, SET_LABEL, strlen(SET_LABEL) + 1);
  put_u32(&all, (uint32_t)(revision >> 32));
  put_u32(&all, (uint32_t)revision);
  int n = PQntuples(rows);
  put_u32(&all, (uint32_t)n);
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    jk_buf row;
    jk_buf_init_max(&row, 1u << 20);
    put_field(&row, PQgetvalue(rows, i, 0), (size_t)PQgetlength(rows, i, 0));
    jk_buf_putc(&row, PQgetisnull(rows, i, 1) ? 0 : 1);
    put_field(&row, PQgetvalue(rows, i, 1), (size_t)PQgetlength(rows, i, 1));
    put_field(&row, PQgetvalue(rows, i, 2), (size_t)PQgetlength(rows, i, 2));
    unsigned char d[32];
    if (row.oom || jk_sha256_2(row.p, row.len, NULL, 0, d) != 0) rc = -1;
    else jk_buf_put(&all, d, sizeof d);
    jk_buf_free(&row);
  }
  if (rc == 0 && (all.oom || jk_hmac_sha256_2(key, sizeof key, all.p, all.len, NULL, 0, out) != 0)) rc = -1;
  jk_buf_free(&all);
  jk_wipe(key, sizeof key);
  return rc;
}

static void hex32(const unsigned char d[32], char out[65]) {
  static const char k[] = "0123456789abcdef";
  for (size_t i = 0; i < 32; i++) {
    out[2 * i] = k[d[i] >> 4];
    out[2 * i + 1] = k[d[i] & 15];
  }
  out[64] = '\0';
}

/* The stored set as read in one snapshot. */
typedef struct stored_set {
  int have_tables; /* schema 2 or later */
  int have_set;    /* a jwtkit_client_set row */
  uint64_t revision;
  char kek_id[17], mac[65];
  PGresult *rows; /* name, secret_hash, settings */
} stored_set;

static void stored_free(stored_set *st) {
  PQclear(st->rows);
  st->rows = NULL;
}

static int read_set(PGconn *c, stored_set *st, char *err, size_t cap) {
  memset(st, 0, sizeof *st);
  PGresult *r = PQexec(c, "SELECT to_regclass('jwtkit_client_set') IS NOT NULL");
  if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    PQclear(r);
    return fail_db(c, "looking for the clients tables", err, cap);
  }
  st->have_tables = PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (!st->have_tables) return 0;
  r = PQexec(c, "SELECT revision, kek_id, mac FROM jwtkit_client_set WHERE id = 1");
  if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
    PQclear(r);
    return fail_db(c, "reading the clients' revision", err, cap);
  }
  if (PQntuples(r) == 1) {
    st->have_set = 1;
    st->revision = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    snprintf(st->kek_id, sizeof st->kek_id, "%.16s", PQgetvalue(r, 0, 1));
    snprintf(st->mac, sizeof st->mac, "%.64s", PQgetvalue(r, 0, 2));
  }
  PQclear(r);
  st->rows = PQexec(c, "SELECT name, secret_hash, settings FROM jwtkit_clients ORDER BY name COLLATE \"C\"");
  if (st->rows == NULL || PQresultStatus(st->rows) != PGRES_TUPLES_OK) {
    int rc = fail_db(c, "reading the clients", err, cap);
    stored_free(st);
    return rc;
  }
  if (PQntuples(st->rows) > (int)SV_MAX_CLIENTS) {
    snprintf(err, cap, "PostgreSQL clients: more than %u clients", SV_MAX_CLIENTS);
    stored_free(st);
    return -1;
  }
  return 0;
}

/* 0 when the stored set is authentic under one of the KEKs (or holds no
 * client and was never authenticated: a new database), else -1 with why. */
static int verify_set(const sv_keycfg *kc, const stored_set *st, char *err, size_t cap) {
  if (!st->have_set) {
    if (st->rows == NULL || PQntuples(st->rows) == 0) return 0;
    snprintf(err, cap,
             "the PostgreSQL clients table holds %d clients but no MAC: written by someone without the KEK; refused",
             PQntuples(st->rows));
    return -1;
  }
  for (size_t i = 0; i < kc->nkeks; i++) {
    char id[17];
    jwtkit_kek_id(kc->keks[i], id);
    if (strcmp(id, st->kek_id) != 0) continue;
    unsigned char mac[32];
    char hex[65];
    if (set_mac(kc->keks[i], st->revision, st->rows, mac) != 0) {
      snprintf(err, cap, "PostgreSQL clients: cannot compute the MAC (out of memory)");
      return -1;
    }
    hex32(mac, hex);
    int ok = strlen(st->mac) == 64 && jk_ct_equal(hex, st->mac, 64);
    jk_wipe(mac, sizeof mac);
    if (ok) return 0;
    snprintf(err, cap,
             "the PostgreSQL clients table does not match its MAC under KEK %s: changed by someone without the KEK; "
             "refused",
             st->kek_id);
    return -1;
  }
  snprintf(err, cap,
           "the PostgreSQL clients table is authenticated under KEK %s, which is not among the configured KEKs",
           st->kek_id);
  return -1;
}

/* The clients of the rows, parsed by the clients file's parser. */
static int parse_rows(PGresult *rows, sv_clients *out, char *err, size_t cap) {
  memset(out, 0, sizeof *out);
  int n = PQntuples(rows);
  if (n == 0) return 0;
  out->v = jk_calloc((size_t)n, sizeof *out->v);
  if (out->v == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  for (int i = 0; i < n; i++) {
    const char *name = PQgetvalue(rows, i, 0);
    jk_buf t;
    jk_buf_init_max(&t, 1u << 20);
    jk_buf_printf(&t, "[client %s]\n", name);
    if (!PQgetisnull(rows, i, 1)) jk_buf_printf(&t, "secret_hash = %s\n", PQgetvalue(rows, i, 1));
    jk_buf_put(&t, PQgetvalue(rows, i, 2), (size_t)PQgetlength(rows, i, 2));
    char where[200];
    snprintf(where, sizeof where, "PostgreSQL clients table, client %.128s", name);
    sv_clients one;
    int rc = t.oom ? -1 : sv_clients_parse(&one, t.p, t.len, where, err, cap);
    if (t.oom) snprintf(err, cap, "%s: too large", where);
    jk_buf_free_wipe(&t);
    if (rc != 0 || one.n != 1) {
      if (rc == 0) {
        snprintf(err, cap, "%s: not one client", where);
        sv_clients_free(&one);
      }
      sv_clients_free(out);
      return -1;
    }
    out->v[out->n] = one.v[0];
    out->v[out->n].line = 0; /* not a file's line */
    out->n++;
    jk_free(one.v);
  }
  return 0;
}

static PGconn *connect_db(const sv_keycfg *kc, char *err, size_t cap) {
  char m[300];
  PGconn *c = jk_pg_connect(kc->dir, m, sizeof m);
  if (c == NULL) snprintf(err, cap, "PostgreSQL clients: cannot connect to %s: %s", kc->where, m);
  return c;
}

/* ---------------------------------------------------------- reading */

int sv_clients_pg_load(const sv_keycfg *kc, uint64_t seen, sv_clients *out, uint64_t *revision, const char **reason,
                       char *err, size_t cap) {
  memset(out, 0, sizeof *out);
  *revision = 0;
  if (reason) *reason = NULL;
  PGconn *c = connect_db(kc, err, cap);
  if (c == NULL) return -1;
  stored_set st;
  int rc = exec0(c, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", PGRES_COMMAND_OK, "beginning", err, cap);
  if (rc == 0) rc = read_set(c, &st, err, cap);
  if (rc == 0) {
    if (!st.have_tables) {
      rc = 0; /* no clients yet: the first keyring mutation creates the tables */
    } else if (verify_set(kc, &st, err, cap) != 0) {
      if (reason) *reason = "unauthenticated";
      rc = -1;
    } else if (st.revision < seen) {
      snprintf(err, cap,
               "the PostgreSQL clients table is revision %llu, older than revision %llu seen before: an old state was "
               "put back; refused",
               (unsigned long long)st.revision, (unsigned long long)seen);
      if (reason) *reason = "rollback";
      rc = -1;
    } else {
      rc = parse_rows(st.rows, out, err, cap);
      *revision = st.revision;
    }
    stored_free(&st);
  }
  PQclear(PQexec(c, "ROLLBACK"));
  PQfinish(c);
  return rc;
}

/* --------------------------------------------------------- changing */

int sv_clients_pg_change(const sv_keycfg *kc, const sv_pg_change *ch, char *err, size_t cap) {
  if (kc->nkeks == 0) {
    snprintf(err, cap,
             "changing the PostgreSQL clients needs the keyring's key-encryption keys (kek_file, kek_env or "
             "$JWTKIT_KEK): the clients are authenticated under the first one");
    return SV_EXIT_USAGE;
  }
  PGconn *c = connect_db(kc, err, cap);
  if (c == NULL) return SV_EXIT_RUNTIME;
  int status = SV_EXIT_RUNTIME;
  stored_set st;
  memset(&st, 0, sizeof st);
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  if (exec0(c, "BEGIN", PGRES_COMMAND_OK, "beginning", err, cap) != 0) goto out;
  if (jk_pg_lock_migrate(c, &ei) != JWTKIT_OK) {
    snprintf(err, cap, "PostgreSQL clients: %s", ei.msg[0] ? ei.msg : jwtkit_strerror(ei.code));
    status = ei.code == JWTKIT_ERR_UNSUPPORTED ? SV_EXIT_USAGE : SV_EXIT_RUNTIME;
    goto out;
  }
  if (read_set(c, &st, err, cap) != 0) goto out;
  /* a change is made only to an authentic set: never authenticate what
   * someone without the KEK wrote */
  if (verify_set(kc, &st, err, cap) != 0) {
    status = SV_EXIT_USAGE;
    goto out;
  }
  uint64_t rev = st.have_set ? st.revision + 1 : 1;
  stored_free(&st);
  int affected = 0;
  const char *name = ch->name;
  if (ch->kind == SV_PG_ADD) {
    const char *p[3] = {name, ch->secret_hash, ch->settings};
    if (exec_params(c,
                    "INSERT INTO jwtkit_clients (name, secret_hash, settings) VALUES ($1, $2, $3)"
                    " ON CONFLICT (name) DO NOTHING",
                    3, p, "adding the client", err, cap, &affected) != 0)
      goto out;
    if (affected != 1) {
      snprintf(err, cap,
               "client %s already exists in the PostgreSQL clients table (rotate its secret with `jwtkit serve client "
               "rotate-secret %s`, or remove it first)",
               name, name);
      status = SV_EXIT_USAGE;
      goto out;
    }
  } else if (ch->kind == SV_PG_REMOVE) {
    const char *p[1] = {name};
    if (exec_params(c, "DELETE FROM jwtkit_clients WHERE name = $1", 1, p, "removing the client", err, cap, &affected) !=
        0)
      goto out;
  } else {
    const char *p[2] = {name, ch->secret_hash};
    if (exec_params(c,
                    "UPDATE jwtkit_clients SET secret_hash = $2, updated_at = now() WHERE name = $1"
                    " AND secret_hash IS NOT NULL",
                    2, p, "replacing the secret", err, cap, &affected) != 0)
      goto out;
    if (affected == 0) { /* no such client, or one without a secret */
      int keyed = 0;
      const char *q[1] = {name};
      PGresult *r = PQexecParams(c, "SELECT 1 FROM jwtkit_clients WHERE name = $1", 1, NULL, q, NULL, NULL, 0);
      keyed = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
      PQclear(r);
      if (keyed) {
        snprintf(err, cap,
                 "client %s has no secret: it authenticates with private_key_jwt (to change its keys, remove it and "
                 "add it again with --jwks)",
                 name);
        status = SV_EXIT_USAGE;
        goto out;
      }
    }
  }
  if (ch->kind != SV_PG_ADD && affected != 1) {
    snprintf(err, cap, "no client %s in the PostgreSQL clients table (`jwtkit serve client list` shows them)", name);
    status = SV_EXIT_USAGE;
    goto out;
  }
  /* the new set, authenticated under the first KEK at the next revision */
  if (read_set(c, &st, err, cap) != 0) goto out;
  unsigned char mac[32];
  char hex[65], revs[24], id[17];
  if (set_mac(kc->keks[0], rev, st.rows, mac) != 0) {
    snprintf(err, cap, "PostgreSQL clients: cannot compute the MAC (out of memory)");
    goto out;
  }
  hex32(mac, hex);
  jk_wipe(mac, sizeof mac);
  jwtkit_kek_id(kc->keks[0], id);
  snprintf(revs, sizeof revs, "%llu", (unsigned long long)rev);
  const char *p[3] = {revs, id, hex};
  if (exec_params(c,
                  "INSERT INTO jwtkit_client_set (id, revision, kek_id, mac) VALUES (1, $1, $2, $3)"
                  " ON CONFLICT (id) DO UPDATE SET revision = EXCLUDED.revision, kek_id = EXCLUDED.kek_id,"
                  " mac = EXCLUDED.mac, updated_at = now()",
                  3, p, "authenticating the clients", err, cap, NULL) != 0)
    goto out;
  /* the replicas' keyring watch hears it at commit */
  if (exec0(c, "SELECT pg_notify('" JK_PG_CHANNEL "', coalesce(current_schema(), ''))", PGRES_TUPLES_OK,
            "notifying the replicas", err, cap) != 0)
    goto out;
  PGresult *r = PQexec(c, "COMMIT");
  int committed = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0;
  PQclear(r);
  if (!committed) {
    fail_db(c, "committing", err, cap);
    goto out;
  }
  status = SV_EXIT_OK;
out:
  stored_free(&st);
  if (status != SV_EXIT_OK) PQclear(PQexec(c, "ROLLBACK"));
  PQfinish(c);
  return status;
}

/* ------------------------------------------- client assertion ids */

/* Each HTTP worker thread keeps one connection for the ids (made on its
 * first private_key_jwt request, closed when the thread ends or after an
 * error, made again on the next request). */
typedef struct jti_conn {
  PGconn *conn;
  char url[SV_PATH_MAX];
} jti_conn;

static pthread_key_t g_jti_key;
static pthread_once_t g_jti_once = PTHREAD_ONCE_INIT;

static void jti_conn_free(void *p) {
  jti_conn *c = p;
  if (c == NULL) return;
  if (c->conn) PQfinish(c->conn);
  free(c);
}

static void jti_key_make(void) { (void)pthread_key_create(&g_jti_key, jti_conn_free); }

static PGconn *jti_conn_get(const char *url) {
  pthread_once(&g_jti_once, jti_key_make);
  jti_conn *c = pthread_getspecific(g_jti_key);
  if (c == NULL) {
    c = calloc(1, sizeof *c);
    if (c == NULL || pthread_setspecific(g_jti_key, c) != 0) {
      free(c);
      return NULL;
    }
  }
  if (c->conn != NULL && (strcmp(c->url, url) != 0 || PQstatus(c->conn) != CONNECTION_OK)) {
    PQfinish(c->conn);
    c->conn = NULL;
  }
  if (c->conn == NULL) {
    char m[300];
    c->conn = jk_pg_connect(url, m, sizeof m);
    if (c->conn == NULL) {
      jk_log(JK_LOG_ERROR, "assertion_ids_unavailable", "cannot reach the keyring's database for client assertion ids: %s",
             m);
      return NULL;
    }
    snprintf(c->url, sizeof c->url, "%s", url);
    /* an id is visible to every replica at commit either way; waiting for
     * its WAL flush would only keep it across a crash of the database,
     * and it lives minutes: not waiting lifts the insert rate from the
     * disk's flush rate to the server's (docs/serve.md) */
    PQclear(PQexec(c->conn, "SET synchronous_commit = off"));
  }
  return c->conn;
}

static void jti_conn_drop(void) {
  jti_conn *c = pthread_getspecific(g_jti_key);
  if (c != NULL && c->conn != NULL) {
    PQfinish(c->conn);
    c->conn = NULL;
  }
}

int sv_pg_jti_remember(const char *url, const char *client, const char *jti, size_t jti_len, int64_t until,
                       int64_t now) {
  PGconn *c = jti_conn_get(url);
  if (c == NULL) return -1;
  char us[24], ns[24];
  snprintf(us, sizeof us, "%lld", (long long)until);
  snprintf(ns, sizeof ns, "%lld", (long long)now);
  const char *params[4] = {client, jti, us, ns};
  int lens[4] = {0, (int)jti_len, 0, 0};
  int formats[4] = {0, 1, 0, 0};
  /* new: inserted; seen and not expired: nothing (a replay); seen but
   * expired (not yet cleaned up): taken over */
  PGresult *r = PQexecParams(c,
                             "INSERT INTO jwtkit_client_jti (client, jti, expires_at) VALUES ($1, $2, $3)"
                             " ON CONFLICT (client, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at"
                             " WHERE jwtkit_client_jti.expires_at <= $4::bigint",
                             4, NULL, params, lens, formats, 0);
  int rc;
  if (r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK) {
    rc = atoi(PQcmdTuples(r)) == 1 ? 0 : 1;
  } else {
    char m[300];
    jk_log(JK_LOG_ERROR, "assertion_ids_unavailable", "recording a client assertion id failed: %s",
           jk_pg_msg(c, m, sizeof m));
    jti_conn_drop();
    rc = -1;
  }
  PQclear(r);
  return rc;
}

void sv_pg_jti_cleanup(const sv_keycfg *kc, int64_t now) {
  /* only while a private_key_jwt client is served: no connection else */
  sv_confsnap *cs = sv_confsnap_acquire();
  int keyed = 0;
  for (size_t i = 0; cs != NULL && i < cs->clients.n && !keyed; i++)
    keyed = cs->clients.v[i].jwks != NULL || cs->clients.v[i].jwks_uri != NULL;
  sv_confsnap_release(cs);
  if (!keyed) return;
  char err[1400];
  PGconn *c = connect_db(kc, err, sizeof err);
  if (c == NULL) return; /* the keyring's own checks log an unreachable database */
  char ns[24];
  snprintf(ns, sizeof ns, "%lld", (long long)now);
  const char *params[1] = {ns};
  PGresult *r = PQexecParams(c,
                             "DELETE FROM jwtkit_client_jti WHERE expires_at <= $1::bigint",
                             1, NULL, params, NULL, NULL, 0);
  PQclear(r); /* a missing table (no migration yet): nothing to clean */
  PQfinish(c);
}

int sv_pg_migrate(const sv_keycfg *kc, char *err, size_t cap) {
  PGconn *c = connect_db(kc, err, cap);
  if (c == NULL) return -1;
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  int rc = exec0(c, "BEGIN", PGRES_COMMAND_OK, "beginning", err, cap);
  if (rc == 0 && jk_pg_lock_migrate(c, &ei) != JWTKIT_OK) {
    snprintf(err, cap, "PostgreSQL keyring tables: %s", ei.msg[0] ? ei.msg : jwtkit_strerror(ei.code));
    rc = -1;
  }
  if (rc == 0) rc = exec0(c, "COMMIT", PGRES_COMMAND_OK, "committing the migration", err, cap);
  else PQclear(PQexec(c, "ROLLBACK"));
  PQfinish(c);
  return rc;
}

/* ------------------------------------------------------- the issuer */

static struct {
  pthread_mutex_t mu;
  uint64_t seen;            /* the newest revision served */
  const char *rejecting;    /* the reason the stored set is refused, or NULL */
} g_pgc = {.mu = PTHREAD_MUTEX_INITIALIZER};

uint64_t sv_clients_pg_seen(void) {
  pthread_mutex_lock(&g_pgc.mu);
  uint64_t s = g_pgc.seen;
  pthread_mutex_unlock(&g_pgc.mu);
  return s;
}

void sv_clients_pg_served(uint64_t revision) {
  pthread_mutex_lock(&g_pgc.mu);
  if (revision > g_pgc.seen) g_pgc.seen = revision;
  int was = g_pgc.rejecting != NULL;
  g_pgc.rejecting = NULL;
  pthread_mutex_unlock(&g_pgc.mu);
  if (was) jk_log(JK_LOG_INFO, "clients_accepted", "the PostgreSQL clients table is accepted again (revision %llu)",
                  (unsigned long long)revision);
}

/* A refused set: logged once when the refusal begins. */
static void rejected(const char *reason, const char *msg) {
  pthread_mutex_lock(&g_pgc.mu);
  int again = g_pgc.rejecting != NULL && strcmp(g_pgc.rejecting, reason) == 0;
  g_pgc.rejecting = reason;
  uint64_t seen = g_pgc.seen;
  pthread_mutex_unlock(&g_pgc.mu);
  if (again) return;
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_ERROR, "clients_rejected")) {
    jk_log_str(&L, "msg", "PostgreSQL clients refused; still serving the clients loaded before");
    jk_log_str(&L, "reason", reason);
    jk_log_int(&L, "serving_revision", (int64_t)seen);
    jk_log_str(&L, "detail", msg);
    jk_log_end(&L);
  }
}

void sv_clients_pg_refresh(const sv_keycfg *kc) {
  char err[1200];
  sv_confsnap *cur = sv_confsnap_acquire();
  if (cur == NULL || !cur->clients_pg) {
    sv_confsnap_release(cur);
    return;
  }
  /* the whole set is read and authenticated each time (at most
   * SV_MAX_CLIENTS rows, once per notification or rotate_check): a row
   * changed without the KEK is noticed even when the revision did not move */
  sv_clients clients;
  uint64_t rev = 0;
  const char *reason = NULL;
  if (sv_clients_pg_load(kc, sv_clients_pg_seen(), &clients, &rev, &reason, err, sizeof err) != 0) {
    if (reason != NULL) rejected(reason, err);
    else jk_log(JK_LOG_ERROR, "clients_reload_failed", "reloading the PostgreSQL clients failed; keeping them: %s", err);
    sv_confsnap_release(cur);
    return;
  }
  if (rev == cur->clients_revision) { /* authentic and unchanged */
    sv_clients_free(&clients);
    sv_confsnap_release(cur);
    sv_clients_pg_served(rev);
    return;
  }
  sv_confsnap *cs = NULL;
  if (sv_confsnap_rebuild_clients(cur, &clients, rev, &cs, err, sizeof err) != 0) {
    jk_log(JK_LOG_ERROR, "clients_reload_failed", "the PostgreSQL clients do not fit the configuration; keeping the ones "
                                                  "loaded before: %s", err);
    sv_clients_free(&clients);
    sv_confsnap_release(cur);
    return;
  }
  int installed = sv_confsnap_install_if(cs, cur) == 0; /* cur still held: no other snapshot can take its address */
  sv_confsnap_release(cur);
  if (installed) {
    sv_clients_pg_served(rev);
    jk_logline L;
    if (jk_log_begin(&L, JK_LOG_INFO, "clients_reloaded")) {
      jk_log_str(&L, "msg", "PostgreSQL clients changed; serving them");
      jk_log_int(&L, "revision", (int64_t)rev);
      jk_log_uint(&L, "clients_loaded", cs->clients.n);
      jk_log_end(&L);
    }
    sv_keysnap *ks = sv_keysnap_acquire();
    if (ks != NULL) sv_clients_warn_ttl(&cs->clients, ks->timing.token_ttl, "PostgreSQL clients table");
    sv_keysnap_release(ks);
  }
}

#else /* built without PostgreSQL: no such keyring can be opened either */

static const char k_no_pg[] = "PostgreSQL clients: this build has no PostgreSQL support";

int sv_clients_pg_load(const sv_keycfg *kc, uint64_t seen, sv_clients *out, uint64_t *revision, const char **reason,
                       char *err, size_t cap) {
  (void)kc;
  (void)seen;
  memset(out, 0, sizeof *out);
  *revision = 0;
  if (reason) *reason = NULL;
  snprintf(err, cap, "%s", k_no_pg);
  return -1;
}
int sv_clients_pg_change(const sv_keycfg *kc, const sv_pg_change *ch, char *err, size_t cap) {
  (void)kc;
  (void)ch;
  snprintf(err, cap, "%s", k_no_pg);
  return SV_EXIT_USAGE;
}
uint64_t sv_clients_pg_seen(void) { return 0; }
int sv_pg_jti_remember(const char *url, const char *client, const char *jti, size_t jti_len, int64_t until,
                       int64_t now) {
  (void)url;
  (void)client;
  (void)jti;
  (void)jti_len;
  (void)until;
  (void)now;
  return -1;
}
void sv_pg_jti_cleanup(const sv_keycfg *kc, int64_t now) {
  (void)kc;
  (void)now;
}
int sv_pg_migrate(const sv_keycfg *kc, char *err, size_t cap) {
  (void)kc;
  snprintf(err, cap, "%s", k_no_pg);
  return -1;
}
void sv_clients_pg_served(uint64_t revision) { (void)revision; }
void sv_clients_pg_refresh(const sv_keycfg *kc) { (void)kc; }
#endif
