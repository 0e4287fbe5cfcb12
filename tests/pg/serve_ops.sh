#!/usr/bin/env bash
# tests/pg/serve_ops.sh BUILD_DIR - `jwtkit serve` replicas sharing a
# PostgreSQL keyring (a throwaway server, tests/pg/pglib.sh), for operators:
#
#   issuer   two replicas without `issuer` are refused (each would mint the
#            iss of its own listen address); with it, both mint one iss
#
# Prints ok/FAIL per check; exits 1 on a failure, 77 when no PostgreSQL
# server is installed (1 under CI=true) or the CLI was not built.  Every
# wait is bounded; the replicas and the server are stopped on exit.
set -u -o pipefail

BUILD=${1:?usage: serve_ops.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd) || exit 1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JWTKIT=$BUILD/cli/jwtkit
VERIFY=$BUILD/services/serve_verify_jwks
PY=${PYTHON:-/usr/bin/python3}
if [ ! -x "$JWTKIT" ]; then
  echo "SKIP: $JWTKIT not built (JWTKIT_CLI=OFF)"
  exit 77
fi

# shellcheck source=tests/lib/checks.sh
. "$HERE/../lib/checks.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jwtkit-serve-ops-pg.XXXXXX") || exit 1
declare -A RPID RPORT
cleanup() {
  local n
  for n in "${!RPID[@]}"; do
    kill -KILL "${RPID[$n]}" 2>/dev/null
    wait "${RPID[$n]}" 2>/dev/null
  done
  if [ "${KEEP_WORK:-0}" = 1 ] || [ "$FAIL" -gt 0 ]; then
    echo "work directory kept: $WORK"
  else
    rm -rf -- "$WORK"
  fi
}
# set before pg_start: pglib appends its own cleanup (stop the server) after it
trap cleanup EXIT
# shellcheck source=tests/pg/pglib.sh
. "$HERE/pglib.sh"
pg_start
cd "$WORK" || exit 1
URL=$PG_URL

free_port() { "$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# wait_for SECONDS CMD...: until CMD succeeds
wait_for() {
  local n=$(($1 * 10))
  shift
  for ((i = 0; i < n; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${RPORT[$1]}/healthz")" = 200 ]; }
# replica NAME ARGS...: a replica on a port of its own, logging to NAME.log
replica() {
  local name=$1
  shift
  RPORT[$name]=$(free_port)
  "$JWTKIT" serve --listen "127.0.0.1:${RPORT[$name]}" --keyring "$URL" --kek-file kek --rotate-check 1s \
    --thread-pool 2 --token-rate-ip off "$@" 2>>"$name.log" &
  RPID[$name]=$!
}
# stop NAME: SIGTERM, wait (bounded); the exit status in $STOPPED
stop() {
  kill -TERM "${RPID[$1]}" 2>/dev/null
  wait_for 10 bash -c "! kill -0 ${RPID[$1]} 2>/dev/null" || kill -KILL "${RPID[$1]}" 2>/dev/null
  wait "${RPID[$1]}" 2>/dev/null
  STOPPED=$?
  unset "RPID[$1]"
}
token() { # NAME CLIENT SECRET -> the access token on stdout
  curl -s -u "$2:$3" -d grant_type=client_credentials "http://127.0.0.1:${RPORT[$1]}/token" |
    "$PY" -c 'import json,sys;print(json.load(sys.stdin).get("access_token",""))'
}
claim() { # TOKEN NAME -> the claim's value
  "$PY" - "$1" "$2" <<'EOF'
import base64, json, sys
p = sys.argv[1].split(".")[1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))[sys.argv[2]])
EOF
}

(umask 077 && "$JWTKIT" keyring kek-new >kek)
SECRET=$("$JWTKIT" serve client add app --audience api --clients clients.conf 2>/dev/null | head -1)

# ------------------------------------------------------------ one issuer
for n in a b; do
  replica "$n" --clients clients.conf
  wait_for 20 bash -c "! kill -0 ${RPID[$n]} 2>/dev/null" # bounded: a replica that starts is stopped below
  stop "$n"
  expect "issuer: replica $n without issuer on a PostgreSQL keyring exits 2" 2 "$STOPPED"
  check "... naming the key, why, and an example" grep -q \
    "issuer: required with a PostgreSQL keyring, which replicas share: without it each replica would mint the iss of its own listen address; set the one URL every replica answers for, e.g. \`issuer = https://auth.example\`" \
    "$n.log"
done
# the error line docs/serve.md shows ("Without it the replica exits 2")
mkdir -p noiss
printf 'keyring = %s\nclients = ../clients.conf\n' "$URL" >noiss/serve.conf
(cd noiss && exec "$JWTKIT" serve --config serve.conf --kek-file ../kek 2>serve.err)
expect "issuer: the same from a config file: exit 2" 2 "$?"
check "... with the config line of keyring" grep -q 'serve.conf:1: issuer: required with a PostgreSQL keyring' noiss/serve.err
"$PY" "$HERE/../lib/doc_block.py" "$HERE/../../docs/serve.md" "Without it the replica exits 2" >noiss/doc.block
check "... the line docs/serve.md shows, but for the time" "$PY" - noiss/doc.block noiss/serve.err <<'EOF'
import json, sys
want = json.loads(open(sys.argv[1]).read())
got = json.loads(open(sys.argv[2]).read())
del want["ts"], got["ts"]
assert got == want, (got, want)
EOF
expect "... and no keyring was created" t "$(pg_psql -c "SELECT to_regclass('jwtkit_keyring') IS NULL")"
ISS=https://auth.test.example
for n in a b; do replica "$n" --clients clients.conf --issuer "$ISS"; done
for n in a b; do check "issuer: replica $n starts with --issuer" wait_for 30 healthy "$n"; done
TA=$(token a app "$SECRET")
TB=$(token b app "$SECRET")
expect "issuer: replica a mints iss $ISS" "$ISS" "$(claim "$TA" iss)"
expect "issuer: replica b mints the same iss" "$ISS" "$(claim "$TB" iss)"
curl -s "http://127.0.0.1:${RPORT[a]}/.well-known/jwks.json" >jwks.json
for t in "$TA" "$TB"; do
  printf '%s' "$t" >t.tok
  out=$("$VERIFY" jwks.json t.tok --iss "$ISS" --aud api)
  check "issuer: a token of either replica verifies with the one issuer: $out" test "${out:0:2}" = ok
done
for n in a b; do
  curl -s "http://127.0.0.1:${RPORT[$n]}/.well-known/openid-configuration" >"disc-$n.json"
  check "issuer: replica $n's discovery names $ISS" "$PY" -c \
    "import json,sys;d=json.load(open('disc-$n.json'));assert d['issuer']=='$ISS' and d['token_endpoint']=='$ISS/token'"
done
for n in a b; do
  stop "$n"
  expect "issuer: replica $n stops cleanly" 0 "$STOPPED"
done

check "no sanitizer report in the replicas' logs" bash -c "! grep -q 'Sanitizer\|runtime error' ./*.log"
echo "serve_ops (pg): $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
