#!/usr/bin/env bash
# The gate behind Caddy (Debian's caddy package) with forward_auth and
# copy_headers, as docs/gateway.md and docs/install.md configure it: a good
# token reaches the upstream with its claim headers; bad ones get the
# gate's 401 and Bearer challenge, passed through by Caddy; a client-sent
# claim header (X-User, X-Roles) never reaches the upstream; a client-sent
# X-Forwarded-Uri, X-Forwarded-Host or X-Original-URI does not change the
# route decision (Caddy sets its own X-Forwarded-*, and the gate's listener
# trusts forwarded only: proxy_headers = forwarded).  Caddy stays on
# loopback: http:// site address, auto_https off, admin off, its state
# under $TMP.  Skipped (77) without caddy, failed under CI=true.
CADDY=${CADDY:-$(command -v caddy || echo /usr/bin/caddy)}
if [ ! -x "$CADDY" ]; then
  if [ "${CI:-}" = true ]; then echo "FAIL: caddy not installed (CI=true; apt-get install caddy)"; exit 1; fi
  echo "SKIP: caddy not installed (apt-get install caddy)"
  exit 77
fi
source "$(dirname "$0")/lib.sh"

start_issuer --cache-control max-age=300
write_gate_conf <<'EOF'
[gate]
threads = 2
proxy_headers = forwarded
[route admin]
match_host = admin.test
match_path_prefix = /api/
issuer = https://issuer.test
audience = admin
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = ES256
header X-User = sub
[route api]
match_path_prefix = /api/
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = ES256
header X-User = sub
optional_header X-Roles = roles
EOF
start_gate
start_upstream
wait_for 10 gate_ready
check "healthz ready once the JWKS is fetched" gate_ready

# --- Caddy: the Caddyfile of docs/gateway.md, on loopback ports
CADDY_PORT=$(free_port)
CADDY_PORT2=$(free_port)
mkdir -p "$TMP/caddy"
cat >"$TMP/Caddyfile" <<EOF
{
	admin off
	auto_https off
	storage file_system $TMP/caddy/data
}

http://127.0.0.1:$CADDY_PORT, http://admin.test:$CADDY_PORT {
	bind 127.0.0.1
	forward_auth 127.0.0.1:$GATE_PORT {
		uri /auth
		copy_headers X-User X-Roles
	}
	reverse_proxy 127.0.0.1:$UPSTREAM_PORT
}

# an API that must not see the token (docs/gateway.md, "The token at the upstream")
http://127.0.0.1:$CADDY_PORT2 {
	bind 127.0.0.1
	forward_auth 127.0.0.1:$GATE_PORT {
		uri /auth
		copy_headers X-User X-Roles
	}
	request_header -Authorization
	reverse_proxy 127.0.0.1:$UPSTREAM_PORT
}
EOF
export HOME=$TMP/caddy XDG_CONFIG_HOME=$TMP/caddy/config XDG_DATA_HOME=$TMP/caddy/data
check "caddy validate accepts the Caddyfile" \
  bash -c "'$CADDY' validate --adapter caddyfile --config '$TMP/Caddyfile' >>'$TMP/caddy.log' 2>&1"
"$CADDY" run --adapter caddyfile --config "$TMP/Caddyfile" >>"$TMP/caddy.log" 2>&1 &
PIDS+=("$!")
wait_for 20 curl -s -o /dev/null "http://127.0.0.1:$CADDY_PORT/" || {
  echo "caddy did not start"
  cat "$TMP/caddy.log"
  exit 1
}
via() { # via PATH [curl options]: through Caddy
  local path=$1
  shift
  _req "http://127.0.0.1:$CADDY_PORT$path" "$@"
}

ok=(--iss https://issuer.test --aud api --sub alice)
tok=$(mint ES256 "${ok[@]}" --claim 'roles=["dev","ops"]')
via /api/hello -H "$(bearer "$tok")"
check "good token: 200 from the upstream (got $STATUS)" test "$STATUS" = 200
check "good token: X-User reaches the upstream" body_has "X-User: alice"
check "good token: X-Roles (array joined) reaches the upstream" body_has "X-Roles: dev,ops"
check "by default the upstream gets the client's Authorization" body_has "Authorization: Bearer $tok"
_req "http://127.0.0.1:$CADDY_PORT2/api/hello" -H "$(bearer "$tok")"
check "request_header -Authorization after forward_auth: 200 with X-User (got $STATUS)" body_has "X-User: alice"
check "request_header -Authorization after forward_auth: no Authorization upstream" \
  bash -c "! grep -qi '^Authorization:' <<<'$BODY'"
_req "http://127.0.0.1:$CADDY_PORT2/api/hello"
check "request_header -Authorization runs after the check: no token is still 401 (got $STATUS)" test "$STATUS" = 401
check "the decision came from the gate (verified, route api)" test "$(decisions allow verified)" -ge 1

# the request's method reaches the gate as X-Forwarded-Method (Caddy asks with GET)
via /api/post -X POST --data 'a=1' -H "$(bearer "$tok")"
check "POST through forward_auth passes (got $STATUS)" test "$STATUS" = 200

# client-sent claim headers never reach the upstream
plain=$(mint ES256 "${ok[@]}")
via /api/hello -H "$(bearer "$plain")" -H "X-User: mallory" -H "X-Roles: root"
check "client X-User replaced by the verified sub (got $STATUS)" body_has "X-User: alice"
check "client X-User never reaches the upstream" bash -c "! grep -qi 'mallory' <<<'$BODY'"
check "client X-Roles dropped when the token has no roles" bash -c "! grep -qi 'root' <<<'$BODY'"
# Caddy 2.6 sets a copied header the gate did not send to its placeholder's
# text (docs/gateway.md says so); any other value would be news
roles=$(sed -n 's/^X-Roles: *//p' <<<"$BODY")
check "X-Roles the gate did not send: absent, empty or Caddy's placeholder (got '$roles')" \
  test -z "$roles" -o "$roles" = '{http.reverse_proxy.header.X-Roles}'

# bad tokens: the gate's 401 and challenge, passed through; upstream not reached
expect_401() { # expect_401 "what" CHALLENGE [curl options]
  local what=$1 want=$2
  shift 2
  via /api/x "$@"
  check "$what -> 401 (got $STATUS)" test "$STATUS" = 401
  check "$what: WWW-Authenticate: $want" test "$(www_auth)" = "$want"
  check "$what: upstream not reached" bash -c "! grep -q 'upstream ok' <<<'$BODY'"
}
expect_401 "no token" "Bearer"
expect_401 "expired token" 'Bearer error="invalid_token"' -H "$(bearer "$(mint ES256 "${ok[@]}" --ttl -600)")"
expect_401 "wrong audience" 'Bearer error="invalid_token"' \
  -H "$(bearer "$(mint ES256 --iss https://issuer.test --aud other --sub a)")"
expect_401 "garbage token" 'Bearer error="invalid_token"' -H "$(bearer abc.def)"
expect_401 "client X-User without a token" "Bearer" -H "X-User: mallory"

# the route comes from Caddy's X-Forwarded-Uri / -Host, never the client's
via /other -H "$(bearer "$plain")" -H "X-Forwarded-Uri: /api/x" -H "X-Original-URI: /api/x"
check "client X-Forwarded-Uri: /api/x on /other: still no route (403, got $STATUS)" test "$STATUS" = 403
check "... counted as no_route" test "$(decisions deny no_route)" -ge 1
via /api/x -H "$(bearer "$plain")" -H "X-Forwarded-Uri: /other" -H "X-Original-URI: /other"
check "client X-Forwarded-Uri: /other on /api/x: the api route decides (200, got $STATUS)" test "$STATUS" = 200
# admin.test needs aud admin: a client's X-Forwarded-Host does not pick a route
via /api/x -H "$(bearer "$plain")" -H "X-Forwarded-Host: 127.0.0.1" -H "Host: admin.test"
check "Host admin.test with client X-Forwarded-Host: 127.0.0.1: the admin route refuses aud api (got $STATUS)" \
  test "$STATUS" = 401
admin=$(mint ES256 --iss https://issuer.test --aud admin --sub root)
via /api/x -H "$(bearer "$admin")" -H "X-Forwarded-Host: admin.test"
check "Host 127.0.0.1 with client X-Forwarded-Host: admin.test: the api route refuses aud admin (got $STATUS)" \
  test "$STATUS" = 401
via /api/x -H "$(bearer "$admin")" -H "Host: admin.test"
check "Host admin.test, aud admin: allowed (got $STATUS)" test "$STATUS" = 200
check "Caddy tried no certificate (no ACME, nothing obtained or stored)" \
  bash -c "! grep -qiE 'acme|obtain' '$TMP/caddy.log' && ! test -d '$TMP/caddy/data/certificates'"
finish
