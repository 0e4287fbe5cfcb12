#!/usr/bin/env bash
# ngx_http_jwtkit_module end to end, against `jwtkit gate` through
# auth_request: one nginx serves /gate/ (auth_request to the gate, whose
# route fetches the issuer's JWK Set) and /mod/ (the module, with the same
# set as a key file).  One table of tokens runs against both; each row says
# what each front end answers (status and the challenge's error attribute)
# and the reason (the gate's decision counter, the module's $jwt_error and
# error log).  Then what only the module does: realm, empty 401 body, claim
# variables (percent-encoded, lazily verified in the rewrite and preaccess
# phases: if, map, limit_req keyed by a claim),
# auth_jwt_require_claim (403 insufficient_scope), satisfy any,
# limit_except, auth_request and error_page next to it.
source "$(dirname "$0")/lib.sh"

start_issuer --cache-control max-age=300
curl -sf "$(JWKS_URL)" -o "$TMP/keys.jwks" || { echo "cannot fetch the issuer's JWK Set"; exit 1; }
write_gate_conf <<'EOC'
[route gate]
match_path_prefix = /gate/
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = RS256, ES256, EdDSA
header X-User = sub
EOC
start_gate
start_upstream
# preaccess: limit_req keyed by a verified claim (one request a minute per sub)
NGINX_HTTP_EXTRA='limit_req_zone $jwt_claim_sub zone=per_sub:1m rate=1r/m;
  map $jwt_claim_sub $who { alice "the-alice"; default "someone"; }'
start_nginx_module <<'EOC'
    # the policy once, for every location that turns auth_jwt on
    auth_jwt_algs RS256 ES256 EdDSA;
    auth_jwt_key_file @TMP@/keys.jwks;
    auth_jwt_issuer https://issuer.test;
    auth_jwt_audience api;

    location = /_auth {
      internal;
      proxy_pass http://jwtkit_gate/auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Host $host;
    }
    location /gate/ {
      auth_request /_auth;
      auth_request_set $gate_user $upstream_http_x_user;
      proxy_set_header X-User $gate_user;
      proxy_pass http://app;
    }
    location /mod/ {
      auth_jwt "api";
      add_header X-Jwt-Error $jwt_error always;
      proxy_set_header X-User $jwt_claim_sub;
      proxy_set_header X-Roles $jwt_claim_roles;
      proxy_set_header X-Payload $jwt_payload;
      proxy_set_header X-Hdr-Alg $jwt_header_alg;
      proxy_set_header X-Hdr-Kid $jwt_header_kid;
      proxy_pass http://app;
    }
    location /scope/ {
      auth_jwt "api";
      auth_jwt_require_claim scope contains write;
      auth_jwt_require_claim tenant equals acme;
      add_header X-Jwt-Error $jwt_error always;
      proxy_set_header X-User $jwt_claim_sub;
      proxy_pass http://app;
    }
    location /cookie/ {
      auth_jwt "api";
      auth_jwt_token_cookie access_token;
      auth_jwt_token_header X-Access-Token;
      proxy_set_header X-User $jwt_claim_sub;
      proxy_pass http://app;
    }
    location /rewrite/ {
      auth_jwt "api";
      # a claim in the rewrite phase: verified on this first lookup
      if ($jwt_claim_sub = "bob") { return 418; }
      proxy_pass http://app;
    }
    location /limited/ {
      auth_jwt "api";
      limit_req zone=per_sub nodelay;
      proxy_set_header X-Who $who;
      proxy_pass http://app;
    }
    location /any/ {
      auth_jwt "api";
      satisfy any;
      allow 10.255.255.1;
      deny all;
      proxy_pass http://app;
    }
    location /any-local/ {
      auth_jwt "api";
      satisfy any;
      allow 127.0.0.1;
      deny all;
      proxy_pass http://app;
    }
    location /ro/ {
      auth_jwt "api";
      limit_except GET { deny all; }
      proxy_pass http://app;
    }
    location /withauth/ {
      auth_jwt "api";
      auth_request /_sub;
      proxy_pass http://app;
    }
    location = /_sub {
      internal;
      auth_jwt "api";
      # in the subrequest the claims of the main request's token
      if ($jwt_claim_sub = "carol") { return 403; }
      return 204;
    }
    location /page/ {
      auth_jwt "api";
      error_page 401 /denied.html;
      proxy_pass http://app;
    }
    location = /denied.html {
      internal;
      root @TMP@;
    }
    location /open/ {
      proxy_pass http://app;
    }
EOC
echo "custom denied page" >"$TMP/denied.html"
wait_for 10 gate_ready
check "the gate has fetched the issuer's JWK Set" gate_ready

# the error attribute of the challenge: "-" (none sent), "bearer" (no error), or the error
challenge() {
  local w
  w=$(www_auth)
  if [ -z "$w" ]; then echo -; elif [[ $w =~ error=\"([a-z_]+)\" ]]; then echo "${BASH_REMATCH[1]}"; else echo bearer; fi
}

ok=(--iss https://issuer.test --aud api --sub alice)
now=$(date +%s)
payload=$(b64url "{\"iss\":\"https://issuer.test\",\"aud\":\"api\",\"sub\":\"alice\",\"exp\":$((now + 600))}")
good=$(mint RS256 "${ok[@]}")
sig=${good##*.}
mid=$((${#sig} / 2))
[ "${sig:mid:1}" = A ] && r=B || r=A
confused=$("$MINT_BIN" --alg HS256 --secret-file "$ISSUER_DIR/RS256.pub.pem" --kid "$(cat "$ISSUER_DIR/RS256.kid")" "${ok[@]}")

# name | Authorization value ("" none) | gate: status challenge | module: status challenge | reason
CASES=(
  "good RS256|Bearer $good|200 -|200 -|"
  "good ES256|Bearer $(mint ES256 "${ok[@]}")|200 -|200 -|"
  "good EdDSA|Bearer $(mint EdDSA "${ok[@]}")|200 -|200 -|"
  "missing token||401 bearer|401 bearer|missing_token"
  "Basic credentials only|Basic dXNlcjpwYXNz|401 bearer|401 bearer|missing_token"
  "Bearer without a token|Bearer|401 invalid_token|401 invalid_token|bad_authorization"
  "expired|Bearer $(mint ES256 "${ok[@]}" --ttl -600)|401 invalid_token|401 invalid_token|expired"
  "not yet valid|Bearer $(mint ES256 "${ok[@]}" --nbf $((now + 3600)))|401 invalid_token|401 invalid_token|not_yet_valid"
  "wrong audience|Bearer $(mint ES256 --iss https://issuer.test --aud other --sub alice)|401 invalid_token|401 invalid_token|claim_mismatch"
  "wrong issuer|Bearer $(mint ES256 --iss https://evil.test --aud api --sub alice)|401 invalid_token|401 invalid_token|claim_mismatch"
  "alg none|Bearer $(b64url '{"alg":"none","typ":"JWT"}').$payload.|401 invalid_token|401 invalid_token|alg_not_allowed"
  "HS256 signed with the RSA public key|Bearer $confused|401 invalid_token|401 invalid_token|alg_not_allowed"
  "unknown kid|Bearer $(mint ES256 "${ok[@]}" --kid no-such-kid)|401 invalid_token|401 invalid_token|unknown_kid"
  "tampered signature|Bearer ${good%.*}.${sig:0:mid}$r${sig:mid+1}|401 invalid_token|401 invalid_token|bad_signature"
  "malformed|Bearer abc.d!f.ghi|401 invalid_token|401 invalid_token|malformed"
)
for row in "${CASES[@]}"; do
  IFS='|' read -r name authz gate_want mod_want reason <<<"$row"
  hdr=()
  [ -n "$authz" ] && hdr=(-H "Authorization: $authz")
  before=0
  [ -n "$reason" ] && before=$(decisions deny "$reason")
  call /gate/x "${hdr[@]}"
  check "gate:   $name -> $gate_want (got $STATUS $(challenge))" test "$STATUS $(challenge)" = "$gate_want"
  [ -n "$reason" ] && check "gate:   $name counted as $reason" test "$(decisions deny "$reason")" -gt "$before"
  call /mod/x "${hdr[@]}"
  check "module: $name -> $mod_want (got $STATUS $(challenge))" test "$STATUS $(challenge)" = "$mod_want"
  got=$(grep -i '^X-Jwt-Error:' <<<"$HEADERS" | sed 's/^[^:]*: *//')
  check "module: $name: \$jwt_error is '$reason' (got '$got')" test "$got" = "$reason"
  if [ "${mod_want%% *}" = 200 ]; then
    check "module: $name: the upstream answered with X-User: alice" body_has "X-User: alice"
  else
    check "module: $name: upstream not reached, empty body" test "$(grep -c 'upstream ok' <<<"$BODY"):${#BODY}" = "0:0"
    check "module: $name: the reason is in the error log" grep -q "auth_jwt: denied 401 $reason" "$NGINX_DIR/logs/error.log"
  fi
done

# claim injection: a sub with CR LF.  The gate refuses to emit the header
# (claim_header_failure = deny); the module renders claims as the core does
# and the core never renders control characters: the variable is not found
# (empty), so nginx sends no X-User.  No header is injected either way.
crlf=$(mint ES256 --iss https://issuer.test --aud api --claim 'sub="eve\r\nX-Admin: 1"')
call /gate/x -H "Authorization: Bearer $crlf"
check "gate:   sub with CR LF -> 401 invalid_token" test "$STATUS $(challenge)" = "401 invalid_token"
check "gate:   no X-Admin at the upstream" bash -c "! grep -qi '^X-Admin' <<<'$BODY'"
call /mod/x -H "Authorization: Bearer $crlf"
check "module: sub with CR LF -> 200 (the token is valid)" test "$STATUS" = 200
check "module: \$jwt_claim_sub with CR LF is empty: no X-User at the upstream" bash -c "! grep -qi '^X-User' <<<'$BODY'"
check "module: no X-Admin header at the upstream" bash -c "! grep -qi '^X-Admin' <<<'$BODY'"

# --- what only the module says
call /mod/x
check "401 challenge names the realm (no error attribute without a token)" test "$(www_auth)" = 'Bearer realm="api"'
check "401 has Content-Length: 0" grep -qix 'Content-Length: 0' <<<"$HEADERS"
call /mod/x -H "Authorization: Bearer $(mint ES256 "${ok[@]}" --ttl -600)"
check "401 for a bad token: Bearer realm=\"api\", error=\"invalid_token\"" \
  test "$(www_auth)" = 'Bearer realm="api", error="invalid_token"'
tok=$(mint ES256 "${ok[@]}" --claim 'roles=["admin","dev"]')
call /mod/x -H "Authorization: Bearer $tok" -H "X-User: mallory"
check "client-sent X-User is replaced by the verified claim" \
  test "$(grep -c '^X-User:' <<<"$BODY"):$(grep '^X-User:' <<<"$BODY")" = "1:X-User: alice"
check "\$jwt_claim_roles: an array of strings joined with ','" body_has "X-Roles: admin,dev"
check "\$jwt_payload: the verified payload" body_has '"sub":"alice"'
check "\$jwt_header_alg: ES256" body_has "X-Hdr-Alg: ES256"
check "\$jwt_header_kid: the issuer's ES256 kid" body_has "X-Hdr-Kid: $(cat "$ISSUER_DIR/ES256.kid")"
call /mod/x -H "Authorization: Bearer $(mint ES256 "${ok[@]}" --claim 'sub=" Zo\u00eb 100% "')"
check "\$jwt_claim_sub: non-ASCII, '%' and end spaces percent-encoded" body_has "X-User: %20Zo%C3%AB 100%25%20"

# auth_jwt_require_claim: 403 insufficient_scope
sc=(--iss https://issuer.test --aud api --sub alice)
call /scope/x -H "Authorization: Bearer $(mint ES256 "${sc[@]}" --claim 'scope="read write"' --claim 'tenant="acme"')"
check "require_claim: scope contains write and tenant equals acme -> 200" test "$STATUS" = 200
call /scope/x -H "Authorization: Bearer $(mint ES256 "${sc[@]}" --claim 'scope="read"' --claim 'tenant="acme"')"
check "require_claim: scope without write -> 403" test "$STATUS" = 403
check "403: Bearer realm=\"api\", error=\"insufficient_scope\"" \
  test "$(www_auth)" = 'Bearer realm="api", error="insufficient_scope"'
check "403: \$jwt_error is insufficient_scope" grep -qix 'X-Jwt-Error: insufficient_scope' <<<"$HEADERS"
check "403: upstream not reached" bash -c "! grep -q 'upstream ok' <<<'$BODY'"
check "403: the unmet requirement is in the error log" \
  grep -q 'denied 403 insufficient_scope: auth_jwt_require_claim scope contains write not met' "$NGINX_DIR/logs/error.log"
call /scope/x -H "Authorization: Bearer $(mint ES256 "${sc[@]}" --claim 'scope="read write"' --claim 'tenant="acme2"')"
check "require_claim: tenant acme2 -> 403" test "$STATUS" = 403
call /scope/x -H "Authorization: Bearer $(mint ES256 "${sc[@]}" --claim 'scope="write"' --claim 'tenant="acme"' --ttl -600)"
check "require_claim: an expired token is 401, not 403" test "$STATUS $(challenge)" = "401 invalid_token"

# more token sources (the core's scan, as the gate's token_cookie and token_header)
call /cookie/x -b "access_token=$good"
check "token in the configured cookie passes" test "$STATUS" = 200
call /cookie/x -H "X-Access-Token: $good"
check "token in the configured header passes" test "$STATUS" = 200
call /cookie/x -b "access_token=$good" -H "Authorization: Bearer $good"
check "the same token in cookie and Authorization passes" test "$STATUS" = 200
call /cookie/x -b "access_token=$good" -H "Authorization: Bearer $(mint ES256 "${ok[@]}")"
check "cookie and Authorization disagree -> 401 ambiguous_token" test "$STATUS $(challenge)" = "401 invalid_token"
check "... reason ambiguous_token in the log" grep -q "auth_jwt: denied 401 ambiguous_token" "$NGINX_DIR/logs/error.log"
call /mod/x -b "access_token=$good"
check "a location without auth_jwt_token_cookie ignores the cookie -> 401 (no token)" test "$STATUS $(challenge)" = "401 bearer"

# rewrite phase: if ($jwt_claim_sub ...) sees the verified claim
call /rewrite/x -H "Authorization: Bearer $(mint ES256 "${ok[@]}")"
check "rewrite phase: alice passes" test "$STATUS" = 200
call /rewrite/x -H "Authorization: Bearer $(mint ES256 --iss https://issuer.test --aud api --sub bob)"
check "rewrite phase: if (\$jwt_claim_sub = bob) returns 418" test "$STATUS" = 418
call /rewrite/x -H "Authorization: Bearer $(mint ES256 --iss https://evil.test --aud api --sub bob)"
check "rewrite phase: an unverified token's sub is not seen (401 in the access phase)" test "$STATUS" = 401
call /rewrite/x
check "rewrite phase: no token -> 401" test "$STATUS" = 401

# preaccess: limit_req keyed by $jwt_claim_sub (verified on that lookup,
# before the access phase); map on a claim
call /limited/x -H "Authorization: Bearer $(mint ES256 "${ok[@]}")"
check "limit_req by sub: alice's first request passes" test "$STATUS" = 200
check "map \$jwt_claim_sub: alice -> the-alice" body_has "X-Who: the-alice"
call /limited/x -H "Authorization: Bearer $(mint ES256 "${ok[@]}")"
check "limit_req by sub: alice's second request in the minute -> 503 (limited)" test "$STATUS" = 503
call /limited/x -H "Authorization: Bearer $(mint ES256 --iss https://issuer.test --aud api --sub bob)"
check "limit_req by sub: bob has his own budget -> 200" test "$STATUS" = 200
check "map \$jwt_claim_sub: bob -> someone" body_has "X-Who: someone"
call /limited/x -H "Authorization: Bearer $(mint ES256 --iss https://evil.test --aud api --sub alice)"
check "limit_req by sub: a bad token claiming alice is not limited as alice but refused -> 401" test "$STATUS" = 401

# satisfy any: either the address or the token
call /any/x -H "Authorization: Bearer $good"
check "satisfy any: a good token passes where the address is denied" test "$STATUS" = 200
check "satisfy any: no WWW-Authenticate on the 200" test "$(challenge)" = -
call /any/x
check "satisfy any: neither -> 401 with the challenge" test "$STATUS $(challenge)" = "401 bearer"
call /any-local/x
check "satisfy any: the allowed address passes without a token" test "$STATUS" = 200
check "satisfy any: and gets no challenge header" test "$(challenge)" = -

# limit_except
call /ro/x -H "Authorization: Bearer $good"
check "limit_except: GET with a good token -> 200" test "$STATUS" = 200
call /ro/x -X POST --data x=1 -H "Authorization: Bearer $good"
check "limit_except: POST with a good token -> 403 (deny all)" test "$STATUS" = 403
call /ro/x -X POST --data x=1
check "limit_except: POST without a token is refused" test "$STATUS" != 200

# auth_request next to auth_jwt; the subrequest sees the main request's claims
call /withauth/x -H "Authorization: Bearer $good"
check "auth_jwt + auth_request: both allow -> 200" test "$STATUS" = 200
call /withauth/x -H "Authorization: Bearer $(mint ES256 --iss https://issuer.test --aud api --sub carol)"
check "auth_jwt + auth_request: the subrequest refuses carol -> 403" test "$STATUS" = 403
call /withauth/x
check "auth_jwt + auth_request: no token -> 401" test "$STATUS $(challenge)" = "401 bearer"

# error_page takes over the 401's body
call /page/x
check "error_page 401: status 401 with the custom page" test "$STATUS:$(body_has 'custom denied page' && echo y)" = "401:y"
check "error_page 401: the challenge is kept" test "$(challenge)" = bearer

call /open/x
check "auth_jwt off (not set) -> the upstream answers" test "$STATUS" = 200

check "no token in nginx's error log" bash -c "! grep -qF '$good' '$NGINX_DIR/logs/error.log' && ! grep -qF '${sig:0:20}' '$NGINX_DIR/logs/error.log'"
check "the error log holds token hash prefixes" grep -q 'token_sha256 [0-9a-f]\{16\}' "$NGINX_DIR/logs/error.log"
check "no worker crashed" bash -c "! grep -qE 'exited on signal|segfault' '$NGINX_DIR/logs/error.log' '$TMP/nginx.log'"
if [ "$FAILS" -ne 0 ]; then
  echo "--- nginx error log (last 30 lines)"
  tail -30 "$NGINX_DIR/logs/error.log"
fi
finish
