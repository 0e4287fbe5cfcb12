#!/usr/bin/env bash
# End to end through nginx auth_request: a valid token passes with its
# claim headers reaching the upstream; every kind of bad token is refused
# with 401 and the RFC 6750 challenge; the reason shows in /metrics only; a
# claim header that cannot be emitted denies (claim_header_failure = deny,
# the default) or is left out (allow); non-ASCII is percent-encoded.
source "$(dirname "$0")/lib.sh"

start_issuer --cache-control max-age=300
write_gate_conf <<'EOF'
[gate]
threads = 2
[route admin]
match_host = admin.test
match_path_prefix = /api/admin/
issuer = https://issuer.test
audience = admin
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = ES256
header X-User = sub
token_header = X-Access-Token
[route strict]
match_path_prefix = /api/strict/
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = ES256
header X-User = sub
header X-Scope = scope
[route lenient]
match_path_prefix = /api/lenient/
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = ES256
claim_header_failure = allow
header X-User = sub
header X-Scope = scope
[route api]
match_path_prefix = /api/
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = RS256, ES256, EdDSA
require = sub
header X-User = sub
optional_header X-Roles = roles
token_cookie = access_token
EOF
# the strict and lenient routes pass X-User and X-Scope on, as docs/gateway.md says
NGINX_EXTRA='
    location ~ ^/api/(strict|lenient)/ {
      auth_request /_auth;
      auth_request_set $gate_user $upstream_http_x_user;
      auth_request_set $gate_scope $upstream_http_x_scope;
      proxy_set_header X-User $gate_user;
      proxy_set_header X-Scope $gate_scope;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }'
start_gate
start_upstream
start_nginx
wait_for 10 gate_ready
check "healthz ready once the JWKS is fetched" gate_ready

ok_claims=(--iss https://issuer.test --aud api --sub alice)

# --- valid tokens, claim headers at the upstream
for alg in RS256 ES256 EdDSA; do
  tok=$(mint $alg "${ok_claims[@]}" --claim 'roles=["admin","dev"]')
  call /api/hello -H "$(bearer "$tok")"
  check "$alg token passes (200 from the upstream)" test "$STATUS" = 200
  check "$alg: X-User reaches the upstream" body_has "X-User: alice"
  check "$alg: X-Roles (array joined) reaches the upstream" body_has "X-Roles: admin,dev"
done
tok=$(mint ES256 "${ok_claims[@]}")
call /api/hello -H "$(bearer "$tok")" -H "X-User: mallory" -H "X-Roles: root"
check "client-sent X-User is replaced by the verified one" body_has "X-User: alice"
check "client-sent X-Roles is dropped when the token has no roles" bash -c "! grep -q 'X-Roles' <<<'$BODY'"
call /api/post -X POST --data 'hello=1' -H "$(bearer "$tok")"
check "POST through auth_request passes" test "$STATUS" = 200

auth -H "$(bearer "$tok")"
check "gate answers 204 directly" test "$STATUS" = 204
check "204 carries X-User" header_is X-User alice
auth -H "$(bearer "$tok")"
check "second identical request: 204 (from the token cache)" test "$STATUS" = 204
check "token cache hit counted" test "$(metric jwtkit_gate_token_cache_hits_total)" -ge 1

# --- refusals through nginx
expect_401() { # expect_401 "what" reason [curl options]; the path is $E401_PATH (/api/x)
  local what=$1 reason=$2
  shift 2
  local before
  before=$(decisions deny "$reason")
  call "${E401_PATH:-/api/x}" "$@"
  check "$what -> 401" test "$STATUS" = 401
  check "$what: WWW-Authenticate: Bearer error=\"invalid_token\"" test "$(www_auth)" = 'Bearer error="invalid_token"'
  check "$what: upstream not reached" bash -c "! grep -q 'upstream ok' <<<'$BODY'"
  check "$what: counted as $reason" test "$(decisions deny "$reason")" -gt "$before"
}

expect_401 "expired token" expired -H "$(bearer "$(mint RS256 "${ok_claims[@]}" --ttl -600)")"
expect_401 "not yet valid (nbf in an hour)" not_yet_valid \
  -H "$(bearer "$(mint RS256 "${ok_claims[@]}" --nbf $(($(date +%s) + 3600)))")"
expect_401 "wrong audience" claim_mismatch -H "$(bearer "$(mint RS256 --iss https://issuer.test --aud other --sub a)")"
expect_401 "wrong issuer" claim_mismatch -H "$(bearer "$(mint RS256 --iss https://evil.test --aud api --sub a)")"
expect_401 "missing required sub" claim_missing -H "$(bearer "$(mint RS256 --iss https://issuer.test --aud api)")"
payload=$(b64url "{\"iss\":\"https://issuer.test\",\"aud\":\"api\",\"sub\":\"alice\",\"exp\":$(($(date +%s) + 600))}")
expect_401 'alg "none"' alg_not_allowed -H "$(bearer "$(b64url '{"alg":"none","typ":"JWT"}').$payload.")"
expect_401 'alg "NoNe"' alg_not_allowed -H "$(bearer "$(b64url '{"alg":"NoNe"}').$payload.")"
confused=$("$MINT_BIN" --alg HS256 --secret-file "$ISSUER_DIR/RS256.pub.pem" --kid "$(cat "$ISSUER_DIR/RS256.kid")" \
  "${ok_claims[@]}")
expect_401 "HS256 signed with the RSA public key (alg confusion)" alg_not_allowed -H "$(bearer "$confused")"
expect_401 "unknown kid" unknown_kid -H "$(bearer "$(mint RS256 "${ok_claims[@]}" --kid no-such-kid)")"
good=$(mint RS256 "${ok_claims[@]}")
sig=${good##*.}
mid=$((${#sig} / 2))
c=${sig:mid:1}
[ "$c" = A ] && r=B || r=A
forged="${good%.*}.${sig:0:mid}$r${sig:mid+1}"
expect_401 "tampered signature" bad_signature -H "$(bearer "$forged")"
hdr=${good%%.*}
expect_401 "payload swapped (signature of another payload)" bad_signature \
  -H "$(bearer "$hdr.$(b64url '{"iss":"https://issuer.test","aud":"api","sub":"root","exp":9999999999}').$sig")"
expect_401 "malformed: two segments" malformed -H "$(bearer abc.def)"
expect_401 "malformed: not base64url" malformed -H "$(bearer 'abc.d!f.ghi')"
expect_401 "malformed: JSON garbage" malformed -H "$(bearer "$(b64url 'nope').$(b64url 'x').abc")"
big=$(head -c 9000 /dev/zero | tr '\0' 'A')
expect_401 "oversized token (9000 bytes > 8 KiB)" token_too_large -H "$(bearer "$hdr.$big.$sig")"
call /api/x -H "$(bearer "$good")" -H "$(bearer "$tok")"
check "two Authorization headers through nginx: refused (nginx itself answers 400)" test "$STATUS" = 400 -o "$STATUS" = 401
before=$(decisions deny ambiguous_token)
auth -H "$(bearer "$good")" -H "$(bearer "$tok")"
check "two different Authorization headers at the gate -> 401 invalid_token" \
  test "$STATUS:$(www_auth)" = '401:Bearer error="invalid_token"'
check "two different Authorization headers: counted as ambiguous_token" test "$(decisions deny ambiguous_token)" -gt "$before"
expect_401 "Authorization and cookie disagree" ambiguous_token -H "$(bearer "$good")" -b "access_token=$tok"
expect_401 "two cookies disagree" ambiguous_token -H "Cookie: access_token=$good; access_token=$tok"
expect_401 "Bearer without a token" bad_authorization -H "Authorization: Bearer"

call /api/x
check "no token -> 401" test "$STATUS" = 401
check "no token: WWW-Authenticate: Bearer (no error, RFC 6750 3.1)" test "$(www_auth)" = "Bearer"
call /api/x -H "Authorization: Basic dXNlcjpwYXNz"
check "Basic credentials only -> 401 Bearer" test "$STATUS:$(www_auth)" = "401:Bearer"

call /api/cookie -b "access_token=$good"
check "token in the configured cookie passes (got $STATUS)" test "$STATUS" = 200
call /api/cookie -b "access_token=$good" -H "$(bearer "$good")"
check "same token in header and cookie passes" test "$STATUS" = 200
auth -H "$(bearer "$good")" -H "$(bearer "$good")"
check "two identical Authorization headers at the gate: 204" test "$STATUS" = 204

# --- routes by host and path (X-Original-Host, X-Original-URI from nginx)
adm=$(mint ES256 --iss https://issuer.test --aud admin --sub root)
call /api/admin/x -H "Host: admin.test" -H "$(bearer "$good")"
check "admin.test/api/admin/: a token for the api audience -> 401" test "$STATUS" = 401
call /api/admin/x -H "Host: admin.test" -H "$(bearer "$adm")"
check "admin.test/api/admin/: the admin token passes" test "$STATUS:$(grep -c 'X-User: root' <<<"$BODY")" = 200:1
call /api/admin/x -H "Host: www.test" -H "$(bearer "$good")"
check "another host on /api/admin/ takes the api route" test "$STATUS" = 200
call /api/admin/x -H "Host: admin.test" -H "X-Access-Token: $adm"
check "token in the route's token_header passes" test "$STATUS" = 200
call /api/admin/x -H "Host: admin.test" -H "X-Access-Token: $adm" -H "$(bearer "$good")"
check "token_header and Authorization disagree -> 401" test "$STATUS" = 401
call /api/admin/x -H "Host: ADMIN.test:443" -H "$(bearer "$adm")"
check "host compared lowercase without port" test "$STATUS" = 200

# --- the gate's own answers: nothing beyond the challenge
auth -H "$(bearer "$forged")"
check "gate 401 has an empty body" test "$STATUS:${#BODY}" = "401:0"
check "gate 401 says nothing but the challenge" bash -c "! grep -qiE 'signature|reason|error_description' <<<'$HEADERS'"
AUTH_URI=/elsewhere auth -H "$(bearer "$good")"
check "no route for the URI -> 403" test "$STATUS" = 403
AUTH_URI=/api/../admin auth -H "$(bearer "$good")"
check "dot segments are resolved before matching (/api/../admin -> no route)" test "$STATUS" = 403
AUTH_URI=/api/%zz auth -H "$(bearer "$good")"
check "bad percent escape in X-Original-URI -> 403" test "$STATUS" = 403

# --- claim headers that cannot be emitted
# deny (the default): the upstream never sees a request whose mapped claim
# header is missing, empty, too long or holds control characters
sc=(--iss https://issuer.test --aud api --sub alice)
E401_PATH=/api/strict/x
tok=$(mint ES256 "${sc[@]}" --claim 'scope="read write"')
call /api/strict/x -H "$(bearer "$tok")" -H "X-Scope: admin"
check "strict: a token with its scope passes" test "$STATUS" = 200
check "strict: X-Scope reaches the upstream (the client's is replaced)" \
  test "$(grep -c '^X-Scope:' <<<"$BODY"):$(grep '^X-Scope:' <<<"$BODY")" = "1:X-Scope: read write"
expect_401 "strict: no scope claim (the upstream would see no X-Scope)" claim_header \
  -H "$(bearer "$(mint ES256 "${sc[@]}")")" -H "X-Scope: admin"
check "strict: the client's X-Scope did not reach the upstream either" bash -c "! grep -q 'X-Scope' <<<'$BODY'"
expect_401 "strict: empty scope" claim_header -H "$(bearer "$(mint ES256 "${sc[@]}" --claim 'scope=""')")"
expect_401 "strict: empty scope array" claim_header -H "$(bearer "$(mint ES256 "${sc[@]}" --claim 'scope=[]')")"
long=$(head -c 1100 /dev/zero | tr '\0' 'a')
expect_401 "strict: scope over header_max (1100 > 1024 bytes)" claim_header \
  -H "$(bearer "$(mint ES256 "${sc[@]}" --claim "scope=\"$long\"")")"
wide=$(for _ in $(seq 400); do printf '\\u00e9'; done)
expect_401 "strict: 400 x U+00E9 is 800 bytes, 2400 once percent-encoded (> 1024)" claim_header \
  -H "$(bearer "$(mint ES256 "${sc[@]}" --claim "scope=\"$wide\"")")"
crlf=$(mint ES256 --iss https://issuer.test --aud api --claim 'sub="eve\r\nX-Admin: 1"' --claim 'scope="read"')
expect_401 "strict: sub with CR LF (header injection)" claim_header -H "$(bearer "$crlf")"
check "strict: no X-Admin at the upstream" bash -c "! grep -qi 'X-Admin' <<<'$BODY'"
AUTH_URI=/api/strict/x auth -H "$(bearer "$crlf")"
check "strict: the gate's 401 carries no claim header and no injected one" \
  bash -c "[ '$STATUS' = 401 ] && ! grep -qiE '^(X-Admin|X-User|X-Scope)' <<<'$HEADERS'"
tab=$(mint ES256 "${sc[@]}" --claim 'scope="read\tadmin"')
expect_401 "strict: scope with a tab" claim_header -H "$(bearer "$tab")"
check "the denial is logged with reason claim_header and the claim" \
  grep -q '"reason":"claim_header".*"route":"strict".*"field":"scope"' "$TMP/gate.log"
check "the route line says claim_header_failure deny" \
  grep -q '"event":"route","name":"strict".*"claim_header_failure":"deny"' "$TMP/gate.log"
unset E401_PATH

# non-ASCII, '%' and spaces at either end are percent-encoded: the upstream
# gets printable ASCII only, whatever charset it decodes headers with
tok=$(mint ES256 --iss https://issuer.test --aud api --claim 'sub=" Zo\u00eb 100% "' \
  --claim 'scope="read\u2028admin"')
call /api/strict/x -H "$(bearer "$tok")"
check "strict: non-ASCII claims pass" test "$STATUS" = 200
check "X-User: %20Zo%C3%AB 100%25%20 (UTF-8 and '%' encoded, end spaces kept)" body_has "X-User: %20Zo%C3%AB 100%25%20"
check "X-Scope: read%E2%80%A8admin (U+2028 encoded)" body_has "X-Scope: read%E2%80%A8admin"
AUTH_URI=/api/strict/x auth -H "$(bearer "$tok")"
check "the gate's 204 headers are printable ASCII" \
  python3 -c "import sys; d=open('$TMP/.headers','rb').read(); sys.exit(any(b > 126 for b in d))"

# allow: the header is left out, the request passes, the drop is counted
before=$(metric jwtkit_gate_claim_headers_dropped_total)
call /api/lenient/x -H "$(bearer "$crlf")" -H "X-User: mallory"
check "lenient: sub with CR LF passes (claim_header_failure = allow)" test "$STATUS" = 200
check "lenient: no X-User and no X-Admin at the upstream" bash -c "! grep -qiE 'X-User|X-Admin' <<<'$BODY'"
check "lenient: X-Scope still passed" body_has "X-Scope: read"
check "lenient: the dropped header is counted" test "$(metric jwtkit_gate_claim_headers_dropped_total)" -gt "$before"
call /api/lenient/x -H "$(bearer "$(mint ES256 "${sc[@]}")")" -H "X-Scope: admin"
check "lenient: a token without scope passes, with no X-Scope at the upstream" \
  bash -c "[ '$STATUS' = 200 ] && ! grep -q 'X-Scope' <<<'$BODY'"
# optional_header: an absent claim is fine on any route (api: X-Roles above)
call /api/x -H "$(bearer "$(mint ES256 "${ok_claims[@]}" --claim 'roles="a\r\nX-Admin: 1"')")"
check "api: optional X-Roles with CR LF is still refused (only absence is optional)" test "$STATUS" = 401

check "metrics: verified allows counted" test "$(decisions allow verified)" -ge 3
check "metrics: missing_token counted" test "$(decisions deny missing_token)" -ge 2
check "no token or secret in the log" bash -c "! grep -qF '$good' '$TMP/gate.log' && ! grep -qF '${sig:0:20}' '$TMP/gate.log'"
check "log lines are JSON" python3 -c "
import json,sys
for l in open('$TMP/gate.log'):
    if l.startswith('{'): json.loads(l)
"
finish
