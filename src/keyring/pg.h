/* PostgreSQL pieces shared by the store and the change watch. */
#ifndef JK_PG_H
#define JK_PG_H

#include <libpq-fe.h>

#define JK_PG_CHANNEL "jwtkit_keyring"

/* Connect (5 s timeout unless the URI sets one, NOTICEs silenced); NULL
 * with libpq's first message line in err on failure. */
PGconn *jk_pg_connect(const char *url, char *err, size_t cap);

/* The first line of libpq's last message on c, without libpq's "ERROR:  "
 * prefix ("no connection" for NULL); buf holds it. */
const char *jk_pg_msg(PGconn *c, char *buf, size_t cap);

/* Inside a transaction the caller began on conn: take the keyring's
 * advisory lock (what every keyring mutation holds; lock_timeout 30 s)
 * and create or upgrade the tables to this build's schema, as a keyring
 * mutation does.  For the tables that live beside the keyring's (the
 * issuer's clients, services/serve/clients_pg.c).  A schema newer than
 * the build is JWTKIT_ERR_UNSUPPORTED.  The caller commits or rolls back. */
#include "jwtkit/error.h"
jwtkit_err jk_pg_lock_migrate(PGconn *conn, jwtkit_errinfo *info);
/* The schema version this build creates (store_pg.c). */
int jk_pg_schema_version(void);

#endif
