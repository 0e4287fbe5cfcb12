#!/usr/bin/env bash
# With the real issuer (`jwtkit serve`, services/serve): its client
# credentials tokens (ES256, typ at+jwt) pass the gate through nginx with
# their claims reaching the upstream; its JWKS Cache-Control is honoured;
# a token for another audience and a tampered token are refused.
# Skipped (77) when the serve binary is not built.
source "$(dirname "$0")/lib.sh"
SERVE_BIN=${SERVE_BIN:-}
[ -n "$SERVE_BIN" ] || SERVE_BIN=$GATE_TESTS_DIR/../../build/services/serve/jwtkit-serve
[ -x "$SERVE_BIN" ] || { echo "SKIP: jwtkit serve not built ($SERVE_BIN)"; exit 77; }

SERVE_PORT=$(free_port)
mkdir -p "$TMP/serve"
(cd "$TMP/serve" && exec "$SERVE_BIN" --demo --listen "127.0.0.1:$SERVE_PORT" >"$TMP/serve.out" 2>"$TMP/serve.log") &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
wait_for 30 curl -sf "http://127.0.0.1:$SERVE_PORT/healthz" || { echo "serve did not start"; cat "$TMP/serve.log"; exit 1; }
ISS=http://127.0.0.1:$SERVE_PORT
cat >"$TMP/gate.conf" <<EOF
[route api]
match_path_prefix = /api/
issuer = $ISS
audience = demo-api
jwks_url = $ISS/.well-known/jwks.json
allow_http_jwks = true
algs = ES256
typ = at+jwt
require = client_id
header X-User = sub
header X-Roles = scope
EOF
start_gate
start_upstream
start_nginx
wait_for 10 gate_ready
check "gate ready with the issuer's JWKS" gate_ready

token_for() { # token_for CLIENT SECRETFILE
  curl -s --max-time 5 -u "$1:$(cat "$2")" -d grant_type=client_credentials "$ISS/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
tok=$(token_for demo "$TMP/serve/var/demo-client-secret")
check "the issuer minted a token" test -n "$tok"
call /api/x -H "$(bearer "$tok")"
check "serve's token passes through nginx" test "$STATUS" = 200
check "sub reaches the upstream" body_has "X-User: demo"
check "scope reaches the upstream" body_has "X-Roles: read write"
left=$(metric "jwtkit_gate_jwks_expires_in_seconds{source=\"$ISS/.well-known/jwks.json\"}")
check "serve's Cache-Control max-age=300 is used ($left s left)" \
  python3 -c "import sys; sys.exit(0 if 200 < float('$left') <= 300 else 1)"
sig=${tok##*.}
[ "${sig:5:1}" = A ] && r=B || r=A
call /api/x -H "$(bearer "${tok%.*}.${sig:0:5}$r${sig:6}")"
check "tampered serve token -> 401" test "$STATUS" = 401

# a second client with another audience
(cd "$TMP/serve" && "$SERVE_BIN" client add other --audience other-api --clients var/clients.conf \
  >"$TMP/other.secret" 2>>"$TMP/serve.log")
chmod 600 "$TMP/other.secret"
kill -HUP "$SERVE_PID"
wait_for 10 bash -c "curl -s -u other:\$(cat '$TMP/other.secret') -d grant_type=client_credentials '$ISS/token' | grep -q access_token"
other=$(token_for other "$TMP/other.secret")
check "the issuer minted a token for the other client" test -n "$other"
call /api/x -H "$(bearer "$other")"
check "token for another audience -> 401" test "$STATUS" = 401
check "counted as claim_mismatch" test "$(decisions deny claim_mismatch)" -ge 1
finish
