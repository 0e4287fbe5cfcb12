#!/usr/bin/env bash
# tests/serve/pkjwt_bench.sh BUILD_DIR - the throughput of POST /token by
# private_key_jwt (distinct PyJWT ES256 assertions) against a secret, with
# a directory keyring and, when PostgreSQL is installed, a PostgreSQL one
# (the assertion ids then go to the database).  Prints the figures
# docs/serve.md quotes; a benchmark, not a test: not under ctest, bounded
# (about 40 s), stops everything it starts.
set -u -o pipefail
BUILD=$(cd "${1:?usage: pkjwt_bench.sh BUILD_DIR}" && pwd) || exit 1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
J=$BUILD/cli/jwtkit
PY=/usr/bin/python3
SECS=${BENCH_SECONDS:-3}
command -v wrk >/dev/null || { echo "wrk is needed (Debian package wrk)"; exit 1; }
"$PY" -c 'import jwt, cryptography' || { echo "python3-jwt and python3-cryptography are needed"; exit 1; }
WORK=$(mktemp -d /tmp/jwtkit-pkjwt-bench.XXXXXX)
SP=""
stop() { [ -n "$SP" ] && kill -TERM "$SP" 2>/dev/null && wait "$SP" 2>/dev/null; SP=""; }
cleanup() { stop; rm -rf "$WORK"; }
trap cleanup EXIT
cd "$WORK" || exit 1
"$PY" - <<'EOF'
import json
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm
k = ec.generate_private_key(ec.SECP256R1())
open("client.pem", "wb").write(k.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
jwk = json.loads(ECAlgorithm.to_jwk(k.public_key()))
jwk.update(kid="b-1", alg="ES256")
open("jwks.json", "w").write(json.dumps({"keys": [jwk]}))
EOF
"$J" serve client add bench --audience api --jwks jwks.json --clients clients.conf 2>/dev/null
SECRET=$("$J" serve client add sec --audience api --clients clients.conf 2>/dev/null)
ISS=https://auth.bench.example
# bodies N: N distinct assertions, one request body a line (each used once)
bodies() {
  "$PY" - "$1" "$ISS/token" >bodies.txt <<'EOF'
import sys, time, uuid, jwt
pem, n, aud = open("client.pem").read(), int(sys.argv[1]), sys.argv[2]
now = int(time.time())
t = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
for i in range(n):
    a = jwt.encode({"iss": "bench", "sub": "bench", "aud": aud, "exp": now + 240, "jti": uuid.uuid4().hex},
                   pem, algorithm="ES256", headers={"kid": "b-1"})
    print("grant_type=client_credentials&client_assertion_type=%s&client_assertion=%s" % (t, a))
EOF
}
cat >assert.lua <<'EOF'
local bodies = {}
for line in io.lines("bodies.txt") do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i + 1
  if i > #bodies then i = 1 end -- past the end: replays (non-2xx, reported)
  return wrk.format("POST", "/token", {["Content-Type"] = "application/x-www-form-urlencoded"}, bodies[i])
end
EOF
cat >secret.lua <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf 'sec:%s' "$SECRET" | base64 -w0)"
wrk.body = "grant_type=client_credentials"
EOF
# measure LABEL SCRIPT: one wrk thread, 8 connections
measure() {
  local out
  out=$(wrk -t1 -c8 -d"${SECS}s" -s "$2" "http://127.0.0.1:$PORT/token" 2>&1)
  printf '%-44s %s req/s%s\n' "$1" "$(printf '%s\n' "$out" | sed -n 's/^Requests\/sec: *//p')" \
    "$(printf '%s\n' "$out" | sed -n 's/^ *Non-2xx.*: */, non-2xx: /p')"
}
# start ARGS...: the issuer on a free port
start() {
  PORT=$("$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  "$J" serve --listen "127.0.0.1:$PORT" --issuer "$ISS" --clients clients.conf --token-rate-ip off \
    --token-rate-client off --thread-pool 2 --log-level warn "$@" 2>>serve.log &
  SP=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0; sleep 0.1; done
  echo "the issuer did not start: $(tail -3 serve.log)"
  exit 1
}
bodies $((SECS * 9000))
start --keyring ring
measure "directory keyring, private_key_jwt" assert.lua
measure "directory keyring, client secret" secret.lua
stop
if . "$HERE/../pg/pglib.sh" && pg_start >/dev/null 2>&1; then
  (umask 077 && "$J" keyring kek-new >kek)
  bodies $((SECS * 9000))
  start --keyring "$PG_URL" --kek-file kek
  measure "PostgreSQL keyring, private_key_jwt" assert.lua
  stop
else
  echo "PostgreSQL keyring: skipped (no PostgreSQL server installed)"
fi
