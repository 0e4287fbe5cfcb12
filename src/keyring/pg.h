/* PostgreSQL pieces shared by the store and the change watch. */
#ifndef JK_PG_H
#define JK_PG_H

#include <libpq-fe.h>

#define JK_PG_CHANNEL "jwtkit_keyring"

/* Connect (5 s timeout unless the URI sets one, NOTICEs silenced); NULL
 * with libpq's first message line in err on failure. */
PGconn *jk_pg_connect(const char *url, char *err, size_t cap);

#endif
