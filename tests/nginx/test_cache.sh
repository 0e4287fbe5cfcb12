#!/usr/bin/env bash
# auth_jwt_token_cache: the core's verified-token cache in the module.  A
# token seen again is allowed from the cache (counted as "cached") with the
# same $jwt_claim_* values (the core's rendering kept in the entry) and the
# same $jwt_payload and $jwt_header_* (decoded from the token, byte for
# byte the one verified); a claim that cannot be rendered stays empty on a hit too; a
# cached token whose key left the JWK Set is refused; an expired token is
# never served from the cache; auth_jwt_require_claim is checked on hits
# too (on the token's payload), so a cached token never skips it.  Per
# location: auth_jwt_token_cache on|off at server and location level, and
# a nested location's off, each with the counts that show it.
source "$(dirname "$0")/lib.sh"

start_issuer --cache-control max-age=300 --keep 1 --algs ES256
start_upstream
NGINX_WORKERS=1 # one worker: one cache
NGINX_HTTP_EXTRA="auth_jwt_token_cache on; auth_jwt_jwks_settings cooldown=1s;"
start_nginx_module <<EOC
    auth_jwt_algs ES256;
    auth_jwt_issuer https://issuer.test;
    auth_jwt_audience api;
    location = /status { auth_jwt_status; }
    location /scope/ {
      auth_jwt "api";
      auth_jwt_jwks $(JWKS_URL) allow_http;
      auth_jwt_require_claim scope contains write;
      auth_jwt_require_claim level equals 3;
      proxy_pass http://app;
    }
    location /mod/ {
      auth_jwt "api";
      auth_jwt_jwks $(JWKS_URL) allow_http;
      add_header X-Jwt-Error \$jwt_error always;
      proxy_set_header X-User \$jwt_claim_sub;
      proxy_set_header X-Roles \$jwt_claim_roles;
      proxy_set_header X-Payload \$jwt_payload;
      proxy_set_header X-Hdr-Kid \$jwt_header_kid;
      proxy_pass http://app;
    }
EOC
metric_of() { curl -s --max-time 5 "http://127.0.0.1:$NGINX_PORT/status" | awk -v m="$1" '$1 == m { v = $2 } END { print (v == "" ? 0 : v) }'; }
cached() { metric_of 'jwtkit_nginx_decisions_total{result="allow",reason="cached"}'; }
ok=(--iss https://issuer.test --aud api --sub alice)

tok=$(mint ES256 "${ok[@]}" --claim 'roles=["admin","dev"]')
call /mod/x -H "Authorization: Bearer $tok"
check "first request: 200, verified" test "$STATUS" = 200
first=$BODY
c0=$(cached)
call /mod/x -H "Authorization: Bearer $tok"
check "second request: 200" test "$STATUS" = 200
check "... from the cache ($c0 -> $(cached))" test "$(cached)" = $((c0 + 1))
check "... with the same claim variables and payload at the upstream" test "$BODY" = "$first"
check "... X-User: alice, X-Roles: admin,dev" bash -c "grep -q '^X-User: alice' <<<'$BODY' && grep -q '^X-Roles: admin,dev' <<<'$BODY'"
check "... X-Payload holds the verified payload" body_has '"sub":"alice"'
check "... X-Hdr-Kid holds the token's kid (\$jwt_header_kid, decoded from the token on a hit)" \
  body_has "X-Hdr-Kid: $(cat "$ISSUER_DIR/ES256.kid")"

crlf=$(mint ES256 --iss https://issuer.test --aud api --claim 'sub="eve\r\nX-Admin: 1"')
call /mod/x -H "Authorization: Bearer $crlf"
call /mod/x -H "Authorization: Bearer $crlf"
check "a sub with CR LF, from the cache: 200, no X-User, no X-Admin" \
  bash -c "[ '$STATUS' = 200 ] && ! grep -qiE '^(X-User|X-Admin)' <<<'$BODY'"

# claim requirements on hits
w=$(mint ES256 "${ok[@]}" --claim 'scope="read write"' --claim 'level=3')
r=$(mint ES256 "${ok[@]}" --claim 'scope="read"' --claim 'level=3')
c0=$(cached)
call /scope/x -H "Authorization: Bearer $w"
call /scope/x -H "Authorization: Bearer $w"
check "require_claim met: 200 from the cache ($c0 -> $(cached))" test "$STATUS:$(cached)" = "200:$((c0 + 1))"
# the core caches a verified token before the module checks its claims, so
# the second request below is a cache hit (counted as insufficient_scope)
call /scope/x -H "Authorization: Bearer $r"
check "require_claim not met: 403" test "$STATUS" = 403
s0=$(metric_of 'jwtkit_nginx_decisions_total{result="deny",reason="insufficient_scope"}')
call /scope/x -H "Authorization: Bearer $r"
check "... and 403 insufficient_scope again when the token comes from the cache" \
  test "$STATUS:$(www_auth)" = '403:Bearer realm="api", error="insufficient_scope"'
check "... counted as insufficient_scope ($s0 -> $(metric_of 'jwtkit_nginx_decisions_total{result="deny",reason="insufficient_scope"}'))" \
  test "$(metric_of 'jwtkit_nginx_decisions_total{result="deny",reason="insufficient_scope"}')" = $((s0 + 1))

# the key leaves the set (--keep 1): the cached token goes with it
issuer_rotate
call /mod/x -H "Authorization: Bearer $(mint ES256 "${ok[@]}")"
check "a token of the new key passes (refetch)" test "$STATUS" = 200
call /mod/x -H "Authorization: Bearer $tok"
check "the cached token of the removed key: 401 unknown_kid" \
  test "$STATUS:$(grep -i '^X-Jwt-Error:' <<<"$HEADERS" | sed 's/^[^:]*: *//')" = 401:unknown_kid

# expiry: a token cached until its exp is refused after it
short_exp=$(($(date +%s) + 4))
short=$(mint ES256 "${ok[@]}" --exp "$short_exp")
call /mod/x -H "Authorization: Bearer $short"
call /mod/x -H "Authorization: Bearer $short"
check "a token valid for 4 s: 200 twice" test "$STATUS" = 200
while [ "$(date +%s)" -le "$short_exp" ]; do sleep 0.2; done
call /mod/x -H "Authorization: Bearer $short"
# within the default 60 s leeway it still verifies: the cache entry ends at
# exp and the token is verified again, not served from the cache
c1=$(cached)
call /mod/x -H "Authorization: Bearer $short"
check "past its exp the token is not served from the cache (cached stays $c1)" test "$(cached)" = "$c1"
# per location: a second nginx without an http-level cache
NGINX_PORT=$(free_port)
NGINX_NAME=percache
NGINX_HTTP_EXTRA=""
start_nginx_module <<EOC
    auth_jwt_algs ES256;
    auth_jwt_issuer https://issuer.test;
    auth_jwt_audience api;
    auth_jwt_jwks $(JWKS_URL) allow_http;
    location = /status { auth_jwt_status; }
    location /on/ { auth_jwt "api"; auth_jwt_token_cache on; proxy_set_header X-User \$jwt_claim_sub; proxy_pass http://app; }
    location /plain/ { auth_jwt "api"; proxy_set_header X-User \$jwt_claim_sub; proxy_pass http://app; }
    location /nest/ {
      auth_jwt "api";
      auth_jwt_token_cache on;
      proxy_pass http://app;
      location /nest/off/ { auth_jwt_token_cache off; proxy_pass http://app; }
    }
EOC
verified() { metric_of 'jwtkit_nginx_decisions_total{result="allow",reason="verified"}'; }
twice() { # twice PATH TOKEN: TWICE="STATUS STATUS cached+ verified+" (BODY: the second's)
  local c v s1
  c=$(cached) v=$(verified)
  call "$1" -H "Authorization: Bearer $2"
  s1=$STATUS
  call "$1" -H "Authorization: Bearer $2"
  TWICE="$s1 $STATUS +$(($(cached) - c)) +$(($(verified) - v))"
}
t1=$(mint ES256 "${ok[@]}" --sub carol)
twice /on/x "$t1"
check "a location with auth_jwt_token_cache on: verified once, then cached ($TWICE)" test "$TWICE" = "200 200 +1 +1"
check "... and the claim variable is the same on the hit (X-User: carol)" body_has "X-User: carol"
t2=$(mint ES256 "${ok[@]}" --sub dave)
twice /plain/x "$t2"
check "its sibling without it: verified twice, nothing cached ($TWICE)" test "$TWICE" = "200 200 +0 +2"
check "... X-User: dave" body_has "X-User: dave"
t3=$(mint ES256 "${ok[@]}")
twice /nest/x "$t3"
check "a location with the cache on: cached ($TWICE)" test "$TWICE" = "200 200 +1 +1"
t4=$(mint ES256 "${ok[@]}")
twice /nest/off/x "$t4"
check "a nested location that turns it off: verified twice ($TWICE)" test "$TWICE" = "200 200 +0 +2"
finish
