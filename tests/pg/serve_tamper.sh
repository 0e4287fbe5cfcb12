#!/usr/bin/env bash
# tests/pg/serve_tamper.sh BUILD_DIR - a `jwtkit serve` replica on a
# PostgreSQL keyring (a throwaway server, tests/pg/pglib.sh) while someone
# with write access to the table but no KEK changes the keyring document:
#
#   1. a retiring key with the attacker's own public JWK is appended, the
#      generation raised and NOTIFY sent (as any writer can): the replica
#      refuses the document,
#      logs it once, counts jwtkit_keyring_rejected_total{reason=
#      "unauthenticated"}, keeps serving the last good JWKS byte for byte
#      and keeps minting; the attacker's kid never appears
#   2. the document restored: accepted again (logged, gauge back to 0)
#   3. rollback: after a real rotation (generation 2) the generation-1
#      document, authentic, is put back: refused as reason="rollback", the
#      generation-2 JWKS stays
#
# Prints ok/FAIL per check; exits 1 on a failure, 77 when no PostgreSQL
# server is installed (1 under CI=true) or the CLI was not built.  Every
# wait is bounded; the replica and the server are stopped on exit.
set -u -o pipefail

BUILD=${1:?usage: serve_tamper.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd) || exit 1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JWTKIT=$BUILD/cli/jwtkit
PY=${PYTHON:-/usr/bin/python3}
if [ ! -x "$JWTKIT" ]; then
  echo "SKIP: $JWTKIT not built (JWTKIT_CLI=OFF)"
  exit 77
fi

# shellcheck source=tests/lib/checks.sh
. "$HERE/../lib/checks.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jwtkit-serve-tamper.XXXXXX") || exit 1
SPID=""
cleanup() {
  if [ -n "$SPID" ]; then
    kill -KILL "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
  fi
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
LOG=$WORK/serve.log
"$JWTKIT" keyring kek-new >kek && chmod 600 kek
"$JWTKIT" keyring init "$URL" --alg ES256 --kek-file kek >/dev/null || { bad "keyring init"; exit 1; }
SECRET=$("$JWTKIT" serve client add demo --audience api --clients clients.conf 2>/dev/null | head -1)
PORT=$("$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
"$JWTKIT" serve --listen "127.0.0.1:$PORT" --issuer "$BASE" --keyring "$URL" --kek-file kek --clients clients.conf \
  --alg ES256 --rotate-check 1s --thread-pool 2 2>"$LOG" &
SPID=$!
for _ in $(seq 1 150); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ] && break
  kill -0 "$SPID" 2>/dev/null || break
  sleep 0.1
done
check "the replica is healthy" test "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200

jwks() { curl -s "$BASE/.well-known/jwks.json"; }
metric() { curl -s "$BASE/metrics" | sed -n "s/^$1 //p"; }
rejected_lines() { grep -c '"event":"keyring_rejected"' "$LOG"; }
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
serving_gen() { [ "$(metric jwtkit_keyring_generation)" = "$1" ]; }
mint() { curl -s -o /dev/null -w '%{http_code}' -u "demo:$SECRET" -d grant_type=client_credentials "$BASE/token"; }

J0=$(jwks)
check "JWKS served" test -n "$J0"
expect "no rejection counted at start" 0 "$(metric 'jwtkit_keyring_rejected_total{reason="unauthenticated"}')"
pg_psql -c "CREATE TABLE saved AS SELECT doc FROM jwtkit_keyring" >/dev/null

# 1. the attacker's retiring key
"$JWTKIT" keygen --alg ES256 --out attacker.pem --pub attacker.pub >/dev/null 2>&1
AJWK=$("$JWTKIT" jwk --kid attacker attacker.pub)
ENTRY='{"kid":"attacker","alg":"ES256","state":"retiring","file":"attacker","created":1800000000,"published":1800000000,"activated":1800000000,"retiring":1800000500,"retired":0,"jwk":'$AJWK'}'
# (with a new generation, so that a replica without authentication would
# take it in)
pg_psql -c "UPDATE jwtkit_keyring SET doc = replace(replace(doc, '\"keys\":[', '\"keys\":[' || '$ENTRY' || ','),
  '\"generation\":1,', '\"generation\":7,')" >/dev/null
pg_psql -c "NOTIFY jwtkit_keyring" >/dev/null
check "1: the replica logs the rejection" wait_for 10 grep -q '"event":"keyring_rejected","msg":"keyring document rejected' "$LOG"
sleep 3 # three more checks of the same document
expect "1: logged once, not once per check" 1 "$(rejected_lines)"
check "1: the log line names the reason" grep -q '"reason":"unauthenticated"' "$LOG"
check "1: and says what is wrong" grep -q 'does not match its MAC under KEK' "$LOG"
expect "1: counted in jwtkit_keyring_rejected_total" 1 "$(metric 'jwtkit_keyring_rejected_total{reason="unauthenticated"}')"
expect "1: jwtkit_keyring_document_rejected is 1" 1 "$(metric jwtkit_keyring_document_rejected)"
J1=$(jwks)
expect "1: the last good JWKS, byte-identical" "$J0" "$J1"
case $J1 in *attacker*) bad "1: the attacker's key is published" ;; *) ok "1: the attacker's key is not published" ;; esac
expect "1: tokens are still minted" 200 "$(mint)"

# 2. the document back as it was
pg_psql -c "UPDATE jwtkit_keyring SET doc = (SELECT doc FROM saved)" >/dev/null
pg_psql -c "NOTIFY jwtkit_keyring" >/dev/null
check "2: accepted again (logged)" wait_for 10 grep -q '"event":"keyring_accepted","msg":"keyring document accepted again' "$LOG"
expect "2: jwtkit_keyring_document_rejected back to 0" 0 "$(metric jwtkit_keyring_document_rejected)"
expect "2: the same JWKS" "$J0" "$(jwks)"

# 3. rollback: a real change (generation 2), then generation 1 put back
"$JWTKIT" keyring rotate "$URL" --kek-file kek --force >/dev/null || bad "3: keyring rotate --force"
check "3: the replica serves generation 2" wait_for 10 serving_gen 2
J2=$(jwks)
check "3: generation 2 publishes one more key" test "$(printf '%s' "$J2" | grep -o '"kid"' | wc -l)" = 2
pg_psql -c "UPDATE jwtkit_keyring SET doc = (SELECT doc FROM saved)" >/dev/null
pg_psql -c "NOTIFY jwtkit_keyring" >/dev/null
check "3: the rollback is refused and logged" wait_for 10 grep -q '"reason":"rollback"' "$LOG"
check "3: the log says which generations" grep -q 'generation 1, older than generation 2' "$LOG"
expect "3: counted as reason=rollback" 1 "$(metric 'jwtkit_keyring_rejected_total{reason="rollback"}')"
expect "3: the generation-2 JWKS stays, byte-identical" "$J2" "$(jwks)"
expect "3: generation 2 is still served" 2 "$(metric jwtkit_keyring_generation)"

kill -TERM "$SPID" 2>/dev/null
wait_for 5 bash -c "! kill -0 $SPID 2>/dev/null" || bad "the replica did not stop on SIGTERM"
wait "$SPID" 2>/dev/null
expect "the replica stopped cleanly on SIGTERM" 0 "$?"
SPID=""
check "no sanitizer report in the replica's log" bash -c "! grep -q 'Sanitizer\|runtime error' '$LOG'"
echo "serve_tamper: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
