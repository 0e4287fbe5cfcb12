#!/usr/bin/env bash
# With the real issuer (`jwtkit serve --demo`): its client-credentials
# tokens (ES256, typ at+jwt) pass the module, which fetches serve's JWK Set;
# auth_jwt_type and auth_jwt_require_claim apply to them; a tampered token
# and one for another audience are refused.  Skipped (77) when the serve
# binary is not built.
source "$(dirname "$0")/lib.sh"
SERVE_BIN=${SERVE_BIN:-}
[ -n "$SERVE_BIN" ] || SERVE_BIN=$GATE_TESTS_DIR/../../build/services/serve/jwtkit-serve
[ -x "$SERVE_BIN" ] || skip_or_fail "jwtkit serve not built ($SERVE_BIN)"

SERVE_PORT=$(free_port)
mkdir -p "$TMP/serve"
(cd "$TMP/serve" && exec "$SERVE_BIN" --demo --listen "127.0.0.1:$SERVE_PORT" >"$TMP/serve.out" 2>"$TMP/serve.log") &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
wait_for 30 curl -sf "http://127.0.0.1:$SERVE_PORT/healthz" || { echo "serve did not start"; cat "$TMP/serve.log"; exit 1; }
ISS=http://127.0.0.1:$SERVE_PORT
start_upstream
start_nginx_module <<EOC
    auth_jwt_algs ES256;
    auth_jwt_jwks $ISS/.well-known/jwks.json allow_http;
    auth_jwt_issuer $ISS;
    auth_jwt_audience demo-api;
    auth_jwt_type at+jwt;
    add_header X-Jwt-Error \$jwt_error always;
    location /api/ {
      auth_jwt "demo";
      proxy_set_header X-User \$jwt_claim_sub;
      proxy_set_header X-Scope \$jwt_claim_scope;
      proxy_pass http://app;
    }
    location /write/ {
      auth_jwt "demo";
      auth_jwt_require_claim scope contains write;
      auth_jwt_require_claim client_id equals demo;
      proxy_pass http://app;
    }
    location /admin/ {
      auth_jwt "demo";
      auth_jwt_require_claim scope contains admin;
      proxy_pass http://app;
    }
EOC
token_for() { # token_for CLIENT SECRETFILE
  curl -s --max-time 5 -u "$1:$(cat "$2")" -d grant_type=client_credentials "$ISS/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
tok=$(token_for demo "$TMP/serve/var/demo-client-secret")
check "jwtkit serve minted a token" test -n "$tok"
call /api/x -H "Authorization: Bearer $tok"
check "serve's token passes the module (got $STATUS)" test "$STATUS" = 200
check "sub reaches the upstream" body_has "X-User: demo"
check "scope reaches the upstream" body_has "X-Scope: read write"
call /write/x -H "Authorization: Bearer $tok"
check "scope contains write and client_id equals demo -> 200" test "$STATUS" = 200
call /admin/x -H "Authorization: Bearer $tok"
check "scope contains admin -> 403 insufficient_scope" \
  test "$STATUS:$(www_auth)" = '403:Bearer realm="demo", error="insufficient_scope"'
sig=${tok##*.}
[ "${sig:5:1}" = A ] && r=B || r=A
call /api/x -H "Authorization: Bearer ${tok%.*}.${sig:0:5}$r${sig:6}"
check "a tampered serve token -> 401 bad_signature" test "$STATUS:$(grep -i '^X-Jwt-Error:' <<<"$HEADERS" | sed 's/^[^:]*: *//')" = 401:bad_signature

(cd "$TMP/serve" && "$SERVE_BIN" client add other --audience other-api --clients var/clients.conf \
  >"$TMP/other.secret" 2>>"$TMP/serve.log")
chmod 600 "$TMP/other.secret"
kill -HUP "$SERVE_PID"
wait_for 10 bash -c "curl -s -u other:\$(cat '$TMP/other.secret') -d grant_type=client_credentials '$ISS/token' | grep -q access_token"
other=$(token_for other "$TMP/other.secret")
check "serve minted a token for another audience" test -n "$other"
call /api/x -H "Authorization: Bearer $other"
check "a token for another audience -> 401 claim_mismatch" \
  test "$STATUS:$(grep -i '^X-Jwt-Error:' <<<"$HEADERS" | sed 's/^[^:]*: *//')" = 401:claim_mismatch
finish
