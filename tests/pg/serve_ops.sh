#!/usr/bin/env bash
# tests/pg/serve_ops.sh BUILD_DIR - `jwtkit serve` replicas sharing a
# PostgreSQL keyring (a throwaway server, tests/pg/pglib.sh), for operators:
#
#   issuer   two replicas without `issuer` are refused (each would mint the
#            iss of its own listen address); with it, both mint one iss
#   clients  without a `clients` file the clients live in the keyring's
#            database: `serve client add|rotate-secret|remove` there, two
#            running replicas (periodic check 10 minutes away, so only the
#            change notification can tell them) follow each change without a
#            restart; only PBKDF2 hashes are stored; a row changed or a state
#            put back by a writer without the KEK is refused and the replicas
#            keep serving what they had
#   pkjwt    a private_key_jwt assertion (PyJWT) accepted by one replica is
#            a replay at the other (the ids are shared in the database);
#            expired ids are cleaned up
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

# ------------------------------------------------------ clients in PostgreSQL
printf 'keyring = %s\nissuer = %s\nkek_file = kek\n' "$URL" "$ISS" >pgc.conf
# the keyring made above, as a jwtkit of schema version 1 left it
pg_psql -c "DROP TABLE jwtkit_clients, jwtkit_client_set, jwtkit_client_jti" -c "UPDATE jwtkit_schema SET version = 1" >/dev/null
out=$("$JWTKIT" serve client list --config pgc.conf 2>pgc.err)
expect "clients: list on a database without clients exits 0" 0 "$?"
expect "... and lists none" 1 "$(printf '%s\n' "$out" | grep -c .)"
S1=$("$JWTKIT" serve client add pgapp --audience api --scopes "read" --config pgc.conf 2>pgc.err)
expect "clients: add into the keyring's database exits 0" 0 "$?"
check "... printing the secret once" test "${#S1}" -ge 32
check "... saying the issuers load it by themselves" grep -q 'added to PostgreSQL clients table' pgc.err
expect "clients: the first change migrated the schema to version 2" 2 "$(pg_psql -c "SELECT version FROM jwtkit_schema")"
"$JWTKIT" serve client add pgapp --audience api --config pgc.conf >/dev/null 2>pgc.err
expect "clients: adding pgapp again exits 2" 2 "$?"
check "... saying it exists and what to do" grep -q 'client pgapp already exists in the PostgreSQL clients table (rotate its secret' pgc.err
expect "clients: stored only as a PBKDF2 hash" 1 \
  "$(pg_psql -c "SELECT count(*) FROM jwtkit_clients WHERE name = 'pgapp' AND secret_hash LIKE 'pbkdf2-sha256\$%'")"
check "... the secret appears nowhere in the tables" bash -c \
  "! { '$PG_PSQL' '$URL' -X -A -t -c 'SELECT * FROM jwtkit_clients' -c 'SELECT * FROM jwtkit_client_set'; } | grep -qF -- '$S1'"
# replicas whose periodic check is far away: only NOTIFY can tell them
cstart() {
  RPORT[$1]=$(free_port)
  "$JWTKIT" serve --config pgc.conf --listen "127.0.0.1:${RPORT[$1]}" --rotate-check 10m --thread-pool 2 \
    --token-rate-ip off 2>>"$1.log" &
  RPID[$1]=$!
}
code() { # NAME CLIENT SECRET -> the HTTP status of POST /token
  curl -s -o /dev/null -w '%{http_code}' -u "$2:$3" -d grant_type=client_credentials "http://127.0.0.1:${RPORT[$1]}/token"
}
for n in c d; do cstart "$n"; done
for n in c d; do check "clients: replica $n starts on the database's clients" wait_for 30 healthy "$n"; done
for n in c d; do expect "clients: replica $n gives pgapp a token" 200 "$(code "$n" pgapp "$S1")"; done
check "... and logs where its clients come from" grep -q '"clients":"PostgreSQL clients table","clients_revision":1' c.log
S2=$("$JWTKIT" serve client add second --audience api --config pgc.conf 2>pgc.err)
expect "clients: a second client added while they run" 0 "$?"
for n in c d; do check "clients: replica $n serves it within 10 s, without restart or SIGHUP" wait_for 10 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -u 'second:$S2' -d grant_type=client_credentials http://127.0.0.1:${RPORT[$n]}/token)\" = 200 ]"; done
S3=$("$JWTKIT" serve client rotate-secret pgapp --config pgc.conf 2>pgc.err)
expect "clients: rotate-secret exits 0" 0 "$?"
check "... with a new secret" test "${#S3}" -ge 32 -a "$S3" != "$S1"
for n in c d; do
  check "clients: replica $n refuses the old secret within 10 s" wait_for 10 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -u 'pgapp:$S1' -d grant_type=client_credentials http://127.0.0.1:${RPORT[$n]}/token)\" = 401 ]"
  expect "... and takes the new one" 200 "$(code "$n" pgapp "$S3")"
done
out=$("$JWTKIT" serve client list --config pgc.conf 2>pgc.err)
check "clients: list shows both, without secrets" bash -c "printf '%s\n' '$out' | grep -q '^pgapp ' && printf '%s\n' '$out' | grep -q '^second ' && ! printf '%s\n' '$out' | grep -qF -- '$S3'"
"$JWTKIT" serve client remove second --config pgc.conf 2>pgc.err
expect "clients: remove exits 0" 0 "$?"
for n in c d; do check "clients: replica $n refuses the removed client within 10 s" wait_for 10 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -u 'second:$S2' -d grant_type=client_credentials http://127.0.0.1:${RPORT[$n]}/token)\" = 401 ]"; done
"$JWTKIT" serve client remove second --config pgc.conf 2>pgc.err
expect "clients: removing it again exits 2" 2 "$?"
check "... saying there is no such client" grep -q 'no client second in the PostgreSQL clients table' pgc.err

# a keyed client (private_key_jwt) in the database: no secret, served by
# the replicas like any other, and no secret to rotate
if "$PY" -c 'import jwt, cryptography' 2>/dev/null; then
  "$PY" - "$WORK" <<'EOF'
import json, sys
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm
w = sys.argv[1]
k = ec.generate_private_key(ec.SECP256R1())
open(w + "/keyed.pem", "wb").write(k.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
jwk = json.loads(ECAlgorithm.to_jwk(k.public_key()))
jwk.update(kid="keyed-1", alg="ES256")
open(w + "/keyed.jwks", "w").write(json.dumps({"keys": [jwk]}))
EOF
  out=$("$JWTKIT" serve client add keyed --audience api --jwks keyed.jwks --config pgc.conf 2>pgc.err)
  expect "clients: client add --jwks into the database: exit 0, nothing on stdout" "0:" "$?:$out"
  expect "... stored without a secret hash" 1 \
    "$(pg_psql -c "SELECT count(*) FROM jwtkit_clients WHERE name = 'keyed' AND secret_hash IS NULL")"
  KA=$("$PY" -c 'import sys,time,uuid,jwt; n=int(time.time()); print(jwt.encode({"iss":"keyed","sub":"keyed","aud":sys.argv[2],"exp":n+60,"jti":uuid.uuid4().hex}, open(sys.argv[1]).read(), algorithm="ES256", headers={"kid":"keyed-1"}))' keyed.pem "$ISS/token")
  check "clients: replica c serves it within 10 s (a token for its assertion)" wait_for 10 bash -c \
    "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -d grant_type=client_credentials --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer --data-urlencode 'client_assertion=$KA' http://127.0.0.1:${RPORT[c]}/token)\" = 200 ]"
  "$JWTKIT" serve client rotate-secret keyed --config pgc.conf >/dev/null 2>pgc.err
  expect "clients: rotate-secret of the keyed client: exit 2" 2 "$?"
  check "... saying it has no secret" grep -q 'client keyed has no secret: it authenticates with private_key_jwt' pgc.err
  expect "... and its row unchanged (no secret hash)" 1 \
    "$(pg_psql -c "SELECT count(*) FROM jwtkit_clients WHERE name = 'keyed' AND secret_hash IS NULL")"
fi

# a writer without the KEK: a client's scopes widened, with a notification
pg_psql -c "CREATE TABLE saved_clients AS SELECT * FROM jwtkit_clients" \
  -c "CREATE TABLE saved_set AS SELECT * FROM jwtkit_client_set" >/dev/null
pg_psql -c "UPDATE jwtkit_clients SET settings = replace(settings, 'scopes = read', 'scopes = read admin') WHERE name = 'pgapp'" \
  -c "NOTIFY jwtkit_keyring" >/dev/null
for n in c d; do check "tamper: replica $n refuses the changed set" wait_for 10 grep -q '"event":"clients_rejected".*"reason":"unauthenticated"' "$n.log"; done
adm=$(curl -s -u "pgapp:$S3" -d grant_type=client_credentials -d scope=admin "http://127.0.0.1:${RPORT[c]}/token")
check "... and keeps the clients it had (scope admin still refused): $adm" bash -c "printf '%s' '$adm' | grep -q invalid_scope"
expect "... still serving pgapp" 200 "$(code d pgapp "$S3")"
"$JWTKIT" serve client list --config pgc.conf >/dev/null 2>pgc.err
expect "tamper: client list refuses it too (exit 2)" 2 "$?"
check "... saying why" grep -q 'does not match its MAC under KEK' pgc.err
"$JWTKIT" serve client add third --audience api --config pgc.conf >/dev/null 2>pgc.err
expect "tamper: and no change is authenticated on top of it (exit 2)" 2 "$?"
# the state before the last change put back: authentic, but older
pg_psql -c "UPDATE jwtkit_clients SET settings = replace(settings, 'scopes = read admin', 'scopes = read') WHERE name = 'pgapp'" >/dev/null
S4=$("$JWTKIT" serve client add fourth --audience api --config pgc.conf 2>pgc.err)
expect "tamper: the set restored, changes work again" 0 "$?"
for n in c d; do check "... replica $n accepts it again and serves the new client" wait_for 10 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -u 'fourth:$S4' -d grant_type=client_credentials http://127.0.0.1:${RPORT[$n]}/token)\" = 200 ]"; done
pg_psql -c "BEGIN" -c "DELETE FROM jwtkit_clients" -c "INSERT INTO jwtkit_clients SELECT * FROM saved_clients" \
  -c "DELETE FROM jwtkit_client_set" -c "INSERT INTO jwtkit_client_set SELECT * FROM saved_set" -c "COMMIT" \
  -c "NOTIFY jwtkit_keyring" >/dev/null
for n in c d; do check "rollback: replica $n refuses an older revision" wait_for 10 grep -q '"event":"clients_rejected".*"reason":"rollback"' "$n.log"; done
expect "... and keeps serving the newer clients" 200 "$(code c fourth "$S4")"
for n in c d; do
  stop "$n"
  expect "clients: replica $n stops cleanly" 0 "$STOPPED"
done

# ------------------------------------------- private_key_jwt across replicas
if "$PY" -c 'import jwt, cryptography' 2>/dev/null; then
  "$PY" - "$WORK" <<'EOF'
import json, sys
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm
w = sys.argv[1]
k = ec.generate_private_key(ec.SECP256R1())
open(w + "/svc.pem", "wb").write(k.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
jwk = json.loads(ECAlgorithm.to_jwk(k.public_key()))
jwk.update(kid="svc-1", alg="ES256")
open(w + "/pk.conf", "w").write("[client svc]\njwks = %s\nassertion_algs = ES256\naudience = api\n"
                                % json.dumps({"keys": [jwk]}, separators=(",", ":")))
EOF
  chmod 600 pk.conf
  assertion() { # AUD -> a fresh assertion of svc for AUD
    "$PY" -c 'import sys,time,uuid,jwt; n=int(time.time()); print(jwt.encode({"iss":"svc","sub":"svc","aud":sys.argv[2],"exp":n+60,"jti":uuid.uuid4().hex}, open(sys.argv[1]).read(), algorithm="ES256", headers={"kid":"svc-1"}))' svc.pem "$1"
  }
  pk() { # NAME ASSERTION -> HTTP status of POST /token at replica NAME
    curl -s -o "pk-$1.json" -w '%{http_code}' -d grant_type=client_credentials \
      --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
      --data-urlencode "client_assertion=$2" "http://127.0.0.1:${RPORT[$1]}/token"
  }
  for n in e f; do replica "$n" --clients pk.conf --issuer "$ISS"; done
  for n in e f; do check "pkjwt: replica $n starts with a private_key_jwt client" wait_for 30 healthy "$n"; done
  A=$(assertion "$ISS/token")
  expect "pkjwt: replica e takes the assertion" 200 "$(pk e "$A")"
  expect "pkjwt: replica f refuses it: a replay across replicas" 401 "$(pk f "$A")"
  check "... logged there as a replay" grep -q '"event":"client_assertion_refused","client_id":"svc","reason":"jti replayed"' f.log
  expect "... and replica e too" 401 "$(pk e "$A")"
  expect "pkjwt: a fresh assertion at replica f: 200" 200 "$(pk f "$(assertion "$ISS")")"
  expect "pkjwt: both ids are in the shared table" 2 "$(pg_psql -c "SELECT count(*) FROM jwtkit_client_jti WHERE client = 'svc'")"
  pg_psql -c "INSERT INTO jwtkit_client_jti VALUES ('svc', 'old'::bytea, 1)" >/dev/null
  check "pkjwt: an expired id is cleaned up by the periodic check" wait_for 10 bash -c \
    "[ \"\$('$PG_PSQL' '$URL' -X -A -t -c \"SELECT count(*) FROM jwtkit_client_jti WHERE jti = 'old'::bytea\")\" = 0 ]"
  expect "... the live ones stay" 2 "$(pg_psql -c "SELECT count(*) FROM jwtkit_client_jti WHERE client = 'svc'")"
  for n in e f; do
    stop "$n"
    expect "pkjwt: replica $n stops cleanly" 0 "$STOPPED"
  done
else
  echo "SKIP: private_key_jwt across replicas (python3-jwt and python3-cryptography are needed)"
fi

check "no sanitizer report in the replicas' logs" bash -c "! grep -q 'Sanitizer\|runtime error' ./*.log"
echo "serve_ops (pg): $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
