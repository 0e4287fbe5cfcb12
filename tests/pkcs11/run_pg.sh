#!/bin/bash
# A test program against a throwaway PostgreSQL server (tests/pg/pglib.sh):
# its URL in JWTKIT_TEST_PG_URL; the server is stopped on exit.  Exits 77
# (skipped) without a server, a failure under CI=true.
#   run_pg.sh PATH/TO/test_keyring_p11
set -euo pipefail
. "$(dirname "$0")/../pg/pglib.sh"
pg_start
JWTKIT_TEST_PG_URL="$PG_URL" "$1"
