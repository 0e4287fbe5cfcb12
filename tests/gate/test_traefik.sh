#!/usr/bin/env bash
# The gate behind Traefik's forwardAuth (Traefik is not in Debian): the
# requests Traefik sends (GET to the middleware's address, Host = the
# gate's address, X-Forwarded-Method, -Proto, -Host, -Uri, -For set by
# Traefik, and -Port, -Server, X-Real-Ip, the client's Authorization), sent to a gate with
# proxy_headers = forwarded.  The forwarded fields decide the route; Host
# and a client's X-Original-* never do; the claim headers Traefik copies
# (authResponseHeaders) come back; a denial carries the challenge.  Also
# checks the forwardAuth block of docs/gateway.md against what this test
# relies on (the address's /auth, trustForwardHeader false, the claim
# headers listed), and docs/install.md's Traefik and Caddy blocks against
# the shipped debian/conf/gate.conf (every claim header of its route listed).
source "$(dirname "$0")/lib.sh"
SRC=$GATE_TESTS_DIR/../..
DOC=$SRC/docs/gateway.md

start_issuer --cache-control max-age=300
write_gate_conf <<'EOF'
[gate]
threads = 2
proxy_headers = forwarded
[route api]
match_host = api.example.test
match_path_prefix = /api/
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = ES256
header X-User = sub
header X-Scope = scope
EOF
start_gate "$TMP/gate.conf" --log-level debug
wait_for 10 gate_ready
check "healthz ready once the JWKS is fetched" gate_ready

# the block in docs/gateway.md: what Traefik is told
yaml=$(awk '/^```yaml/{f=1;next} /^```/{f=0} f' "$DOC")
check "docs: forwardAuth address is the gate's /auth" grep -q 'address: "http://127.0.0.1:8081/auth"' <<<"$yaml"
check "docs: trustForwardHeader: false" grep -q 'trustForwardHeader: false' <<<"$yaml"
check "docs: authResponseHeaders lists X-User and X-Scope" \
  bash -c "grep -q -- '- X-User' <<<'$yaml' && grep -q -- '- X-Scope' <<<'$yaml'"

# docs/install.md: the proxies' blocks list exactly the shipped route's claim headers
shipped=$(sed -n 's/^\(optional_\)\{0,1\}header \([A-Za-z0-9_-]*\) = .*/\2/p' "$SRC/debian/conf/gate.conf" | sort | tr '\n' ' ')
iyaml=$(awk '/^```yaml/{f=1;next} /^```/{f=0} f' "$SRC/docs/install.md")
listed=$(awk '/authResponseHeaders:/{f=1;next} f && /^ *- /{print $2; next} {f=0}' <<<"$iyaml" | sort | tr '\n' ' ')
check "docs/install.md: authResponseHeaders ($listed) = the shipped claim headers ($shipped)" \
  test -n "$shipped" -a "$listed" = "$shipped"
check "docs/install.md: the same address and trustForwardHeader: false" \
  bash -c "grep -q 'address: \"http://127.0.0.1:8081/auth\"' <<<'$iyaml' && grep -q 'trustForwardHeader: false' <<<'$iyaml'"
copied=$(awk '/^```caddyfile/{f=1;next} /^```/{f=0} f' "$SRC/docs/install.md" | sed -n 's/^[[:space:]]*copy_headers //p' |
  tr ' ' '\n' | sort | tr '\n' ' ')
check "docs/install.md: copy_headers ($copied) = the shipped claim headers" test "$copied" = "$shipped"
check "docs/install.md's gate.conf block is the shipped one plus proxy_headers = forwarded" \
  bash -c "diff <(grep -v '^#' '$SRC/debian/conf/gate.conf' | grep -v '^\$') \
    <(python3 '$SRC/tests/lib/doc_block.py' '$SRC/docs/install.md' 'section of \`/etc/jwtkit/gate.conf\`, which then reads' |
      grep -v '^proxy_headers = forwarded\$' | grep -v '^\$')"

traefik() { # traefik METHOD HOST URI [curl options]: what forwardAuth sends the gate
  local method=$1 host=$2 uri=$3
  shift 3
  _req "http://127.0.0.1:$GATE_PORT/auth" -H "User-Agent: Go-http-client/1.1" -H "Accept-Encoding: gzip" \
    -H "X-Forwarded-Method: $method" -H "X-Forwarded-Proto: https" -H "X-Forwarded-Host: $host" \
    -H "X-Forwarded-Uri: $uri" -H "X-Forwarded-For: 203.0.113.7" -H "X-Forwarded-Port: 443" \
    -H "X-Forwarded-Server: traefik-1" -H "X-Real-Ip: 203.0.113.7" "$@"
}

tok=$(mint ES256 --iss https://issuer.test --aud api --sub alice --claim 'scope="read write"')
traefik POST api.example.test '/api/orders?id=1' -H "$(bearer "$tok")"
check "Traefik's request with a good token -> 204 (got $STATUS)" test "$STATUS" = 204
check "204 carries X-User (authResponseHeaders)" header_is X-User alice
check "204 carries X-Scope" header_is X-Scope "read write"
check "the method logged is X-Forwarded-Method (POST), not the GET Traefik asks with" \
  grep -q '"result":"allow".*"method":"POST","host":"api.example.test","path":"/api/orders"' "$TMP/gate.log"

# a client's X-Original-* passed on by Traefik (no authRequestHeaders) change nothing
traefik GET api.example.test /api/x -H "$(bearer "$tok")" -H "X-Original-URI: /other" -H "X-Original-Host: evil.test"
check "client X-Original-URI / -Host beside Traefik's fields: ignored (204, got $STATUS)" test "$STATUS" = 204
before=$(decisions deny no_route)
traefik GET api.example.test /other -H "$(bearer "$tok")" -H "X-Original-URI: /api/x"
check "X-Forwarded-Uri /other with a client X-Original-URI /api/x: no route (403, got $STATUS)" test "$STATUS" = 403
traefik GET other.test /api/x -H "$(bearer "$tok")" -H "X-Original-Host: api.example.test"
check "X-Forwarded-Host other.test with a client X-Original-Host: no route (403, got $STATUS)" test "$STATUS" = 403
check "both counted as no_route" test "$(decisions deny no_route)" -ge $((before + 2))

# Host names the gate behind Traefik: never the site
_req "http://127.0.0.1:$GATE_PORT/auth" -H "Host: api.example.test" -H "X-Forwarded-Uri: /api/x" -H "$(bearer "$tok")"
check "Host: api.example.test without X-Forwarded-Host: no route (403, got $STATUS)" test "$STATUS" = 403

# denials: the challenge Traefik passes back to the client
traefik GET api.example.test /api/x
check "no token -> 401 Bearer (got $STATUS $(www_auth))" test "$STATUS:$(www_auth)" = "401:Bearer"
traefik GET api.example.test /api/x -H "$(bearer "$(mint ES256 --iss https://issuer.test --aud other --sub a)")"
check "wrong audience -> 401 invalid_token" test "$STATUS:$(www_auth)" = '401:Bearer error="invalid_token"'
traefik GET api.example.test '/api/%zz' -H "$(bearer "$tok")"
check "a bad X-Forwarded-Uri -> 403 (got $STATUS)" test "$STATUS" = 403
finish
