#!/usr/bin/env bash
# strip_authorization through a real nginx with the map of docs/gateway.md
# ("The token at the upstream"): by default the upstream gets the client's
# Authorization (the gate passes it on); on a route with
# strip_authorization = true the gate's 204 says X-Strip-Authorization: true
# and nginx sends the upstream no Authorization; a client cannot make nginx
# drop or keep it by sending that header itself.
source "$(dirname "$0")/lib.sh"
DOC=$GATE_TESTS_DIR/../../docs/gateway.md

start_issuer --cache-control max-age=300
write_gate_conf <<'EOF'
[route strip]
match_path_prefix = /api/strip/
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = ES256
header X-User = sub
strip_authorization = true
[route keep]
match_path_prefix = /api/
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = ES256
header X-User = sub
EOF
# the map and the location's two lines, as docs/gateway.md writes them
block=$(python3 "$GATE_TESTS_DIR/../lib/doc_block.py" "$DOC" 'nginx acts on it with a') || exit 1
NGINX_HTTP_EXTRA=$(awk '/^map /{f=1} f{print} f && /^}/{exit}' <<<"$block")
lines=$(grep -E 'auth_request_set \$gate_strip_authorization|proxy_set_header Authorization' <<<"$block")
check "docs/gateway.md: the map and two location lines found" \
  test "$(grep -c . <<<"$NGINX_HTTP_EXTRA")" -ge 4 -a "$(grep -c . <<<"$lines")" = 2
NGINX_EXTRA="
    location /api/strip/ {
      auth_request /_auth;
      auth_request_set \$gate_user \$upstream_http_x_user;
      proxy_set_header X-User \$gate_user;
      $lines
      proxy_pass http://app;
    }"
# the keep route goes through lib.sh's /api/ location with the same two lines
NGINX_EXTRA="$NGINX_EXTRA
    location /api/keep/ {
      auth_request /_auth;
      $lines
      proxy_pass http://app;
    }"
start_gate
start_upstream
start_nginx
wait_for 10 gate_ready
check "healthz ready" gate_ready
check "the route log line says strip_authorization" \
  grep -q '"event":"route","name":"strip".*"strip_authorization":true' "$TMP/gate.log"

tok=$(mint ES256 --iss https://issuer.test --aud api --sub alice)
call /api/keep/x -H "$(bearer "$tok")"
check "default route (with the map): 200 (got $STATUS)" test "$STATUS" = 200
check "default route: the upstream gets the client's Authorization" body_has "Authorization: Bearer $tok"
call /api/x -H "$(bearer "$tok")"
check "lib.sh's plain location (no map): the upstream gets Authorization" body_has "Authorization: Bearer $tok"
call /api/keep/x -H "$(bearer "$tok")" -H "X-Strip-Authorization: true"
check "a client's X-Strip-Authorization: true changes nothing" body_has "Authorization: Bearer $tok"

call /api/strip/x -H "$(bearer "$tok")"
check "strip route: 200 (got $STATUS)" test "$STATUS" = 200
check "strip route: claim headers still reach the upstream" body_has "X-User: alice"
check "strip route: the upstream gets no Authorization" bash -c "! grep -qi '^Authorization:' <<<'$BODY'"
AUTH_URI=/api/strip/x auth -H "$(bearer "$tok")"
check "the gate's 204 for it says X-Strip-Authorization: true" header_is X-Strip-Authorization true
AUTH_URI=/api/keep/x auth -H "$(bearer "$tok")"
check "the gate's 204 on the default route has no X-Strip-Authorization" \
  bash -c "! grep -qi '^X-Strip-Authorization' <<<'$HEADERS'"
call /api/strip/x
check "strip route without a token: 401 as always (got $STATUS)" test "$STATUS" = 401

printf '[route a]\nkey_file = /nonexistent\nalgs = ES256\nheader X-Strip-Authorization = sub\n' >"$TMP/reserved.conf"
"$GATE_BIN" --config "$TMP/reserved.conf" --check >"$TMP/check.out" 2>&1
check "a claim header cannot be named X-Strip-Authorization" grep -q 'X-Strip-Authorization.*reserved' "$TMP/check.out"
finish
