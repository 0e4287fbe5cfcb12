#!/usr/bin/env bash
# auth_jwt_jwks_settings: the core's JWK Set settings from nginx (here a
# cooldown of 2 s between unknown-kid refetches) and unavailable=401 (no
# key set: 401 invalid_token instead of 503).
source "$(dirname "$0")/lib.sh"

start_issuer --cache-control max-age=300 --algs ES256
start_upstream
DEAD_PORT=$(free_port)
NGINX_HTTP_EXTRA="auth_jwt_jwks_settings cooldown=2s timeout=1s unavailable=401;"
start_nginx_module <<EOC
    auth_jwt_algs ES256;
    auth_jwt_issuer https://issuer.test;
    auth_jwt_audience api;
    add_header X-Jwt-Error \$jwt_error always;
    location /mod/ { auth_jwt "api"; auth_jwt_jwks $(JWKS_URL) allow_http; proxy_pass http://app; }
    location /dead/ { auth_jwt "api"; auth_jwt_jwks http://127.0.0.1:$DEAD_PORT/jwks.json allow_http; proxy_pass http://app; }
EOC
ok=(--iss https://issuer.test --aud api --sub alice)
err() { grep -i '^X-Jwt-Error:' <<<"$HEADERS" | sed 's/^[^:]*: *//'; }
call /mod/x -H "Authorization: Bearer $(mint ES256 "${ok[@]}")"
check "a good token passes" test "$STATUS" = 200
n0=$(issuer_count)
call /mod/x -H "Authorization: Bearer $(mint ES256 "${ok[@]}" --kid unknown-1)"
check "an unknown kid: 401 unknown_kid" test "$STATUS:$(err)" = 401:unknown_kid
check "... after one refetch ($n0 -> $(issuer_count))" test "$(issuer_count)" = $((n0 + 1))
call /mod/x -H "Authorization: Bearer $(mint ES256 "${ok[@]}" --kid unknown-2)"
check "another unknown kid within the 2 s cooldown: no fetch ($(issuer_count))" test "$(issuer_count)" = $((n0 + 1))
sleep 2.3
call /mod/x -H "Authorization: Bearer $(mint ES256 "${ok[@]}" --kid unknown-3)"
check "after the cooldown: one more refetch ($(issuer_count))" test "$(issuer_count)" = $((n0 + 2))
call /dead/x -H "Authorization: Bearer $(mint ES256 "${ok[@]}")"
check "no key set with unavailable=401: 401 invalid_token, jwks_not_ready" \
  test "$STATUS:$(err):$(www_auth)" = '401:jwks_not_ready:Bearer realm="api", error="invalid_token"'
check "the 1 s timeout is the fetch's (connect_error logged)" \
  grep -q "auth_jwt_jwks: http://127.0.0.1:$DEAD_PORT/jwks.json: connect_error" "$NGINX_DIR/logs/error.log"
finish
