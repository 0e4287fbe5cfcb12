#!/bin/bash
# Run the PostgreSQL keyring unit tests (tests/test_keyring_pg.c) against a
# throwaway server on loopback; the server is stopped on exit.
#   run_unit.sh PATH/TO/test_keyring_pg
set -euo pipefail
. "$(dirname "$0")/pglib.sh"
pg_start
JWTKIT_TEST_PG_URL="$PG_URL" "$1"
