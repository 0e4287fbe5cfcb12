/* Change notifications for a keyring location (see jwtkit/keyring.h). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error_internal.h"
#include "jwtkit/keyring.h"
#ifdef JWTKIT_WITH_POSTGRES
#include "pg.h"
#endif

#define WATCH_RECONNECT_EVERY 2 /* seconds between reconnection attempts */

typedef struct file_id {
  int ok;
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime, ctime;
} file_id;

struct jwtkit_keyring_watch {
  int pg;
  char *location; /* directory: its keyring.json path; PostgreSQL: the URI */
  file_id seen;
#ifdef JWTKIT_WITH_POSTGRES
  PGconn *conn;
  time_t last_attempt;
#endif
};

static file_id file_id_of(const char *path) {
  file_id f;
  memset(&f, 0, sizeof f);
  struct stat st;
  if (stat(path, &st) == 0) {
    f.ok = 1;
    f.dev = st.st_dev;
    f.ino = st.st_ino;
    f.size = st.st_size;
    f.mtime = st.st_mtim;
    f.ctime = st.st_ctim;
  }
  return f;
}

static int same_id(const file_id *a, const file_id *b) {
  return a->ok == b->ok && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
         a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

#ifdef JWTKIT_WITH_POSTGRES
/* Connect and LISTEN; 0 on success. */
static int listen_start(jwtkit_keyring_watch *w) {
  char err[200];
  w->last_attempt = time(NULL);
  w->conn = jk_pg_connect(w->location, err, sizeof err);
  if (w->conn == NULL) return -1;
  PGresult *r = PQexec(w->conn, "LISTEN " JK_PG_CHANNEL);
  int ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  if (!ok) {
    PQfinish(w->conn);
    w->conn = NULL;
    return -1;
  }
  return 0;
}
#endif

jwtkit_err jwtkit_keyring_watch_open(jwtkit_keyring_watch **out, const char *location, jwtkit_errinfo *info) {
  if (out == NULL || location == NULL || location[0] == '\0') return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  jwtkit_keyring_watch *w = jk_calloc(1, sizeof *w);
  if (w == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  w->pg = jwtkit_keyring_location_is_postgres(location);
  if (w->pg) {
#ifdef JWTKIT_WITH_POSTGRES
    w->location = jk_strdup(location);
#else
    jk_free(w);
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL, "this jwtkit was built without PostgreSQL support");
#endif
  } else {
    size_t n = strlen(location) + sizeof "/keyring.json";
    if ((w->location = jk_malloc(n)) != NULL) snprintf(w->location, n, "%s/keyring.json", location);
  }
  if (w->location == NULL) {
    jk_free(w);
    return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  if (!w->pg) w->seen = file_id_of(w->location);
#ifdef JWTKIT_WITH_POSTGRES
  /* an unreachable database is not an error here: poll keeps trying */
  if (w->pg) (void)listen_start(w);
#endif
  *out = w;
  return JWTKIT_OK;
}

int jwtkit_keyring_watch_poll(jwtkit_keyring_watch *w) {
  if (w == NULL) return 0;
  if (!w->pg) {
    file_id now = file_id_of(w->location);
    int changed = !same_id(&now, &w->seen);
    w->seen = now;
    return changed;
  }
#ifdef JWTKIT_WITH_POSTGRES
  if (w->conn != NULL && (PQconsumeInput(w->conn) != 1 || PQstatus(w->conn) != CONNECTION_OK)) {
    PQfinish(w->conn);
    w->conn = NULL;
  }
  if (w->conn == NULL) {
    if (time(NULL) - w->last_attempt < WATCH_RECONNECT_EVERY) return 0;
    /* back: whatever was notified meanwhile is lost, so report a change */
    return listen_start(w) == 0 ? 1 : 0;
  }
  int changed = 0;
  PGnotify *n;
  while ((n = PQnotifies(w->conn)) != NULL) {
    changed = 1;
    PQfreemem(n);
  }
  return changed;
#else
  return 0;
#endif
}

void jwtkit_keyring_watch_free(jwtkit_keyring_watch *w) {
  if (w == NULL) return;
#ifdef JWTKIT_WITH_POSTGRES
  if (w->conn) PQfinish(w->conn);
#endif
  if (w->location) jk_free_secret(w->location, strlen(w->location));
  jk_free(w);
}
