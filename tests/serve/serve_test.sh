#!/usr/bin/env bash
# End-to-end tests of `jwtkit serve` (the jwtkit-serve binary) with real
# curl on a free loopback port.  See tests/serve/lib.sh for the environment.
set -u
. "$(dirname "$0")/lib.sh"

LOG=$WORK/server.log
RING=$WORK/ring
CLIENTS=$WORK/clients.conf
CONF=$WORK/serve.conf

# ---------------------------------------------------------------- setup
add_client() { # NAME ARGS... -> prints the secret
  "$SERVE_BIN" client add "$@" --clients "$CLIENTS" 2>>"$WORK/client-add.log"
}
"$SERVE_BIN" client add nl --audience "$(printf 'a\nb')" --clients "$CLIENTS" >/dev/null 2>"$WORK/nl.log"
check "client add refuses an audience with a line break (exit 2)" test $? -eq 2
ALICE=$(add_client alice --audience https://api.example --audience other-api --scopes "read write" --ttl 15m)
check "client add prints a 43-character secret" test ${#ALICE} -eq 43
BOB=$(add_client bob --audience https://api.example --scopes "read" --ttl 1m)
CAROL=$(add_client carol --audience https://api.example)
echo "disabled = true" >>"$CLIENTS" # carol is the last section
check "clients file is mode 0600" test "$(stat -c %a "$CLIENTS")" = 600
check "clients file holds no plaintext secret" bash -c "! grep -q -e '$ALICE' -e '$BOB' -e '$CAROL' '$CLIENTS'"
check "client add refuses an existing name (exit 2)" bash -c "'$SERVE_BIN' client add alice --audience x --clients '$CLIENTS' 2>/dev/null >/dev/null; test \$? -eq 2"
check "client add refuses a bad name (exit 2)" bash -c "'$SERVE_BIN' client add 'a b' --audience x --clients '$CLIENTS' 2>/dev/null >/dev/null; test \$? -eq 2"
check "client add needs an audience (exit 2)" bash -c "'$SERVE_BIN' client add zed --clients '$CLIENTS' 2>/dev/null >/dev/null; test \$? -eq 2"

# the legacy HS256 secret of a migration: must never be published
LEGACY=$WORK/legacy-hs256.secret
head -c 48 /dev/urandom | base64 | tr -d '\n=' | head -c 48 >"$LEGACY"
chmod 600 "$LEGACY"
LEGACY_B64URL=$("$PY" -c 'import base64,sys;print(base64.urlsafe_b64encode(open(sys.argv[1],"rb").read()).decode().rstrip("="))' "$LEGACY")

cat >"$CONF" <<EOF
# test configuration
keyring = $RING
clients = $CLIENTS
alg = ES256
rotate_check = 1s
max_age = 5s
token_ttl = 10m
rotate_every = 1h
legacy_hs256_secret_file = $LEGACY
transition_ttl = 5m
# debug: successful requests are logged at debug, and the checks below
# read their lines (and look for secrets in every line written)
log_level = debug
# the error cases below come faster than the default token buckets allow;
# tests/serve/hostile_test.sh tests the buckets
token_rate_ip = off
token_rate_client = off
EOF

# -------------------------------------------------------- exit statuses
"$SERVE_BIN" --help >/dev/null 2>&1
check "--help exits 0" test $? -eq 0
"$SERVE_BIN" --bogus 2>/dev/null
check "unknown option exits 2" test $? -eq 2
printf 'listen = 127.0.0.1:1\nfrobnicate = yes\n' >"$WORK/bad.conf"
"$SERVE_BIN" --config "$WORK/bad.conf" 2>"$WORK/bad.log"
check "bad config exits 2" test $? -eq 2
check "bad config error names file:line" grep -q "bad.conf:2: unknown option 'frobnicate'" "$WORK/bad.log"
"$SERVE_BIN" --config "$CONF" --alg HS256 2>/dev/null
check "--alg HS256 is refused (exit 2)" test $? -eq 2
"$SERVE_BIN" --config "$CONF" --listen 127.0.0.1:0 2>"$WORK/port0.log"
check "--listen with port 0 is refused (exit 2)" test $? -eq 2
check "... saying which ports are allowed" grep -q "listen: the port must be 1..65535" "$WORK/port0.log"
printf '# no free-port pick here\nlisten = 127.0.0.1:0\n' >"$WORK/port0.conf"
"$SERVE_BIN" --config "$WORK/port0.conf" 2>"$WORK/port0c.log"
check "listen = ...:0 in a config file is refused (exit 2)" test $? -eq 2
check "... with file:line" grep -q 'port0.conf:2: listen: the port must be 1..65535' "$WORK/port0c.log"
# the example of docs/serve.md: max_age = 2 days on line 7 of serve.conf
DOC=${SOURCE_DIR:-$(dirname "$0")/../..}/docs/serve.md
mkdir -p "$WORK/doccfg"
printf '# 1\n# 2\n# 3\n# 4\n# 5\n# 6\nmax_age = 2 days\n' >"$WORK/doccfg/serve.conf"
(cd "$WORK/doccfg" && exec "$SERVE_BIN" --config serve.conf 2>serve.err)
check "the config error example of docs/serve.md: exit 2" test $? -eq 2
"$PY" "$(dirname "$0")/../lib/doc_block.py" "$DOC" 'tests/serve/serve_test.sh` writes' >"$WORK/doccfg/doc.block"
check "... and the line it shows, but for the time" "$PY" - "$WORK/doccfg/doc.block" "$WORK/doccfg/serve.err" <<'EOF'
import json, sys
block = open(sys.argv[1]).read().split("\n")
assert block[0] == "$ jwtkit serve --config serve.conf", block
want = json.loads(block[1])
got = json.loads(open(sys.argv[2]).read())
del want["ts"], got["ts"]
assert got == want, (got, want)
EOF
printf 'clients = %s\nkek_file = %s\n' "$CLIENTS" "$WORK/kek" >"$WORK/kek.conf"
"$SERVE_BIN" --config "$WORK/kek.conf" 2>"$WORK/kek.log"
check "kek_file for a directory keyring is refused (exit 2)" test $? -eq 2
check "... with file:line" grep -q 'kek.conf:2: kek_file applies to a PostgreSQL keyring' "$WORK/kek.log"
"$SERVE_BIN" --config "$CONF" --clients "$WORK/missing.conf" --listen 127.0.0.1:1 2>/dev/null
check "missing clients file exits 2" test $? -eq 2

# ------------------------------------------------------------- start
check "server starts with the config file" start_server "$LOG" --config "$CONF"
ISS=$BASE
check "keyring created with mode 0700" test "$(stat -c %a "$RING")" = 700

# ---------------------------------------------------------------- JWKS
"$CURL" -s -D "$WORK/jwks.h" -o "$WORK/jwks.json" "$BASE/.well-known/jwks.json"
check "JWKS: 200" test "$(status_of "$WORK/jwks.h")" = 200
check "JWKS: Content-Type application/jwk-set+json" test "$(header "$WORK/jwks.h" Content-Type)" = "application/jwk-set+json"
check "JWKS: Cache-Control public, max-age=5 (the keyring's max_age)" test "$(header "$WORK/jwks.h" Cache-Control)" = "public, max-age=5"
ETAG=$(header "$WORK/jwks.h" ETag)
WANT_ETAG=\"$("$PY" -c 'import hashlib,base64,sys;print(base64.urlsafe_b64encode(hashlib.sha256(open(sys.argv[1],"rb").read()).digest()).decode().rstrip("="))' "$WORK/jwks.json")\"
check "JWKS: strong ETag = quoted base64url SHA-256 of the body" test "$ETAG" = "$WANT_ETAG"
check "JWKS: one ES256 key with kid, use sig" json "$WORK/jwks.json" 'len(d["keys"])==1 and d["keys"][0]["kty"]=="EC" and d["keys"][0]["alg"]=="ES256" and d["keys"][0]["use"]=="sig" and len(d["keys"][0]["kid"])==43'
check "JWKS: no private members" json "$WORK/jwks.json" 'all(not (set(k) & {"d","p","q","dp","dq","qi","k","oth"}) for k in d["keys"])'
check "JWKS: no oct key (secrets are never published)" json "$WORK/jwks.json" 'all(k["kty"]!="oct" for k in d["keys"])'
check "JWKS: the legacy HS256 secret is not in it" bash -c "! grep -q -F '$LEGACY_B64URL' '$WORK/jwks.json'"
KID_A=$(jget "$WORK/jwks.json" 'd["keys"][0]["kid"]')

inm() { # If-None-Match value -> status
  "$CURL" -s -D "$WORK/inm.h" -o "$WORK/inm.b" -H "If-None-Match: $1" "$BASE/.well-known/jwks.json"
  status_of "$WORK/inm.h"
}
check "If-None-Match: same tag -> 304" test "$(inm "$ETAG")" = 304
check "304 has no body" test ! -s "$WORK/inm.b"
check "304 carries ETag" test "$(header "$WORK/inm.h" ETag)" = "$ETAG"
check "304 carries Cache-Control" test "$(header "$WORK/inm.h" Cache-Control)" = "public, max-age=5"
check "If-None-Match: weak form W/ matches (weak comparison)" test "$(inm "W/$ETAG")" = 304
check "If-None-Match: list containing the tag -> 304" test "$(inm "\"abc\", $ETAG")" = 304
check "If-None-Match: * -> 304" test "$(inm '*')" = 304
check "If-None-Match: a different tag -> 200" test "$(inm '"not-the-tag"')" = 200
check "If-None-Match: malformed value is ignored -> 200" test "$(inm "${ETAG:0:10}")" = 200
"$CURL" -s -I -o /dev/null -w '%{http_code}' "$BASE/.well-known/jwks.json" >"$WORK/head.code"
check "HEAD /.well-known/jwks.json -> 200" test "$(cat "$WORK/head.code")" = 200
code=$("$CURL" -s -o /dev/null -w '%{http_code}' -D "$WORK/m.h" -X POST -d x=1 "$BASE/.well-known/jwks.json")
check "POST on the JWKS -> 405 with Allow: GET, HEAD" test "$code" = 405 -a "$(header "$WORK/m.h" Allow)" = "GET, HEAD"
code=$("$CURL" -s -o /dev/null -w '%{http_code}' "$BASE/nope")
check "unknown path -> 404" test "$code" = 404

# ----------------------------------------------------------- discovery
"$CURL" -s -D "$WORK/oidc.h" -o "$WORK/oidc.json" "$BASE/.well-known/openid-configuration"
"$CURL" -s -D "$WORK/as.h" -o "$WORK/as.json" "$BASE/.well-known/oauth-authorization-server"
for doc in oidc as; do
  check "discovery ($doc): issuer, endpoints, grant and auth methods" json "$WORK/$doc.json" \
    "d['issuer']=='$ISS' and d['jwks_uri']=='$ISS/.well-known/jwks.json' and d['token_endpoint']=='$ISS/token' and d['grant_types_supported']==['client_credentials'] and d['token_endpoint_auth_methods_supported']==['client_secret_basic','client_secret_post'] and d['response_types_supported']==[]"
  check "discovery ($doc): no token_endpoint_auth_signing_alg_values_supported (no JWT client auth)" json "$WORK/$doc.json" "'token_endpoint_auth_signing_alg_values_supported' not in d"
  check "discovery ($doc): application/json with ETag" test "$(header "$WORK/$doc.h" Content-Type)" = application/json -a -n "$(header "$WORK/$doc.h" ETag)"
done
check "openid-configuration: id_token algs, subject types" json "$WORK/oidc.json" "d['id_token_signing_alg_values_supported']==['ES256'] and d['subject_types_supported']==['public']"
check "oauth-authorization-server: no OpenID-only members" json "$WORK/as.json" "'id_token_signing_alg_values_supported' not in d and 'subject_types_supported' not in d"

# --------------------------------------------------------------- tokens
# tok NAME CURL-ARGS... -> status; headers in NAME.h, body in NAME.json
tok() {
  local name=$1
  shift
  "$CURL" -s -D "$WORK/$name.h" -o "$WORK/$name.json" "$@" "$BASE/token"
  status_of "$WORK/$name.h"
}
access_token() { jget "$WORK/$1.json" 'd["access_token"]' >"$WORK/$1.tok"; }
verify() { # TOKFILE AUD [JWKS] [extra args]
  local t=$1 aud=$2 j=${3:-$WORK/jwks.json}
  shift 3 2>/dev/null || shift $#
  "$VERIFY_BIN" "$j" "$t" --iss "$ISS" --aud "$aud" "$@"
}

s=$(tok basic -u "alice:$ALICE" -d grant_type=client_credentials)
check "token (client_secret_basic): 200" test "$s" = 200
check "token: Cache-Control no-store" test "$(header "$WORK/basic.h" Cache-Control)" = no-store
check "token: Pragma no-cache" test "$(header "$WORK/basic.h" Pragma)" = no-cache
check "token: JSON with Bearer, scope, expires_in = transition_ttl (5m < client ttl 15m)" json "$WORK/basic.json" \
  "d['token_type']=='Bearer' and d['scope']=='read write' and d['expires_in']==300 and len(d['access_token'])>100"
access_token basic
out=$(verify "$WORK/basic.tok" https://api.example "$WORK/jwks.json" --kid "$KID_A")
check "token verifies against the served JWKS (typ at+jwt, iss, aud, kid): $out" test "${out:0:2}" = ok
out=$(verify "$WORK/basic.tok" other-api)
check "token carries every audience of the client" test "${out:0:2}" = ok
check "token claims: iss sub aud client_id iat exp jti scope (RFC 9068)" "$PY" - "$WORK/basic.tok" "$ISS" <<'EOF'
import base64, json, sys
t = open(sys.argv[1]).read().strip().split(".")
pad = lambda s: s + "=" * (-len(s) % 4)
h = json.loads(base64.urlsafe_b64decode(pad(t[0])))
p = json.loads(base64.urlsafe_b64decode(pad(t[1])))
assert h["typ"] == "at+jwt" and h["alg"] == "ES256" and "kid" in h, h
assert p["iss"] == sys.argv[2] and p["sub"] == "alice" and p["client_id"] == "alice", p
assert p["aud"] == ["https://api.example", "other-api"], p
assert p["exp"] - p["iat"] == 300 and len(p["jti"]) == 22 and p["scope"] == "read write", p
EOF
s=$(tok post -d grant_type=client_credentials -d client_id=bob --data-urlencode "client_secret=$BOB")
check "token (client_secret_post): 200" test "$s" = 200
check "client ttl 1m applies (expires_in 60), scope = all allowed (read)" json "$WORK/post.json" "d['expires_in']==60 and d['scope']=='read'"
access_token post
out=$(verify "$WORK/post.tok" https://api.example)
check "client_secret_post token verifies: $out" test "${out:0:2}" = ok
s=$(tok enc -u "al%69ce:$ALICE" -d grant_type=client_credentials)
check "Basic credentials are form-urldecoded (RFC 6749 §2.3.1)" test "$s" = 200
s=$(tok scope -u "alice:$ALICE" -d grant_type=client_credentials -d "scope=write")
check "requested scope subset is granted" test "$s" = 200 && check "granted scope = requested" json "$WORK/scope.json" "d['scope']=='write'"
s=$(tok scope2 -u "alice:$ALICE" -d grant_type=client_credentials --data-urlencode "scope=write read write")
check "repeated scope tokens are granted once" json "$WORK/scope2.json" "d['scope']=='write read'"
s=$(tok ctype -u "alice:$ALICE" -H "Content-Type: application/x-www-form-urlencoded; charset=UTF-8" -d grant_type=client_credentials)
check "Content-Type with a charset parameter is accepted" test "$s" = 200

# ----------------------------------------------------------- token errors
err_case() { # DESCRIPTION STATUS ERROR NAME CURL-ARGS...
  local what=$1 want=$2 code=$3 name=$4
  shift 4
  local s
  s=$(tok "$name" "$@")
  if [ "$s" = "$want" ] && json "$WORK/$name.json" "d['error']=='$code'" &&
    [ "$(header "$WORK/$name.h" Cache-Control)" = no-store ]; then
    ok "$what -> $want $code"
  else
    bad "$what -> got $s $(cat "$WORK/$name.json" 2>/dev/null), want $want $code"
  fi
}
err_case "unknown client" 401 invalid_client e1 -u "mallory:$ALICE" -d grant_type=client_credentials
check "401 carries WWW-Authenticate: Basic realm=\"jwtkit\"" bash -c "grep -qi '^WWW-Authenticate: Basic realm=\"jwtkit\"' '$WORK/e1.h'"
err_case "wrong secret (Basic)" 401 invalid_client e2 -u "alice:${BOB}" -d grant_type=client_credentials
err_case "wrong secret (post)" 401 invalid_client e3 -d grant_type=client_credentials -d client_id=alice -d "client_secret=$BOB"
err_case "secret shorter than 32 characters" 401 invalid_client e4 -u "alice:${ALICE:0:20}" -d grant_type=client_credentials
err_case "no client authentication" 401 invalid_client e5 -d grant_type=client_credentials -d client_id=alice
err_case "Bearer instead of Basic" 401 invalid_client e6 -H "Authorization: Bearer abc" -d grant_type=client_credentials
err_case "malformed Basic credentials" 401 invalid_client e7 -H "Authorization: Basic !!!" -d grant_type=client_credentials
err_case "wrong grant type" 400 unsupported_grant_type e8 -u "alice:$ALICE" -d grant_type=password
err_case "missing grant_type" 400 invalid_request e9 -u "alice:$ALICE" -d scope=read
err_case "malformed body (bad percent-encoding)" 400 invalid_request e10 -u "alice:$ALICE" --data-binary 'grant_type=client_credentials&scope=%zz'
err_case "duplicate parameter (RFC 6749 §3.2)" 400 invalid_request e11 -u "alice:$ALICE" --data-binary 'grant_type=client_credentials&grant_type=client_credentials'
err_case "both auth methods at once" 400 invalid_request e12 -u "alice:$ALICE" -d grant_type=client_credentials -d client_id=alice --data-urlencode "client_secret=$ALICE"
err_case "client_id in the body differs from Basic" 400 invalid_request e13 -u "alice:$ALICE" -d grant_type=client_credentials -d client_id=bob
err_case "scope outside the allowed set" 400 invalid_scope e14 -u "bob:$BOB" -d grant_type=client_credentials -d scope=write
err_case "scope with characters outside NQCHAR" 400 invalid_scope e15 -u "alice:$ALICE" -d grant_type=client_credentials --data-urlencode 'scope=re"ad'
err_case "disabled client" 400 unauthorized_client e16 -u "carol:$CAROL" -d grant_type=client_credentials
err_case "two Authorization fields" 400 invalid_request e17 -H "Authorization: Basic $(printf 'alice:%s' "$ALICE" | base64 -w0)" -H "Authorization: Basic eDp5" -d grant_type=client_credentials
err_case "wrong content type" 415 invalid_request e18 -u "alice:$ALICE" -H "Content-Type: application/json" --data-binary '{"grant_type":"client_credentials"}'
head -c 20000 /dev/zero | tr '\0' 'a' >"$WORK/big.body"
err_case "oversized body (Content-Length)" 413 invalid_request e19 -u "alice:$ALICE" --data-binary "@$WORK/big.body"
err_case "oversized body (chunked)" 413 invalid_request e20 -u "alice:$ALICE" -H "Transfer-Encoding: chunked" --data-binary "@$WORK/big.body"
err_case "wrong method (GET /token)" 405 invalid_request e21 -X GET
check "405 carries Allow: POST" test "$(header "$WORK/e21.h" Allow)" = POST
check "no error response reflects the secret" bash -c "! grep -q -F -e '$ALICE' -e '$BOB' $WORK/e*.json"

# ------------------------------------------------------ jwtkit verify (CLI)
CLI=""
for c in "${JWTKIT_CLI_BIN:-}" "${SOURCE_DIR:-/nonexistent}/build/cli/jwtkit"; do
  if [ -n "$c" ] && [ -x "$c" ] && "$c" verify --help 2>&1 | grep -q -- --allow-http; then
    CLI=$c
    break
  fi
done
if [ -n "$CLI" ]; then
  out=$("$CLI" verify --jwks "$BASE/.well-known/jwks.json" --allow-http --alg ES256 --iss "$ISS" --aud https://api.example - <"$WORK/basic.tok" 2>&1)
  check "jwtkit verify --jwks URL --allow-http accepts the token ($CLI)" test $? -eq 0
else
  echo "skip - jwtkit verify --jwks URL --allow-http (the CLI is not built here)"
fi

# ------------------------------------------------------- healthz, metrics
s=$("$CURL" -s -o "$WORK/health.txt" -w '%{http_code}' "$BASE/healthz")
check "/healthz: 200 ok" test "$s" = 200 -a "$(cat "$WORK/health.txt")" = ok
"$CURL" -s -D "$WORK/metrics.h" -o "$WORK/metrics.txt" "$BASE/metrics"
check "/metrics: Prometheus text format" bash -c "grep -q '^text/plain; version=0.0.4' <(grep -i '^Content-Type:' '$WORK/metrics.h' | sed 's/^[^:]*: //')"
check "/metrics: requests by path and status" grep -q '^jwtkit_http_requests_total{path="/token",status="200"} [1-9]' "$WORK/metrics.txt"
check "/metrics: 401s counted" grep -q '^jwtkit_http_requests_total{path="/token",status="401"} 7$' "$WORK/metrics.txt"
check "/metrics: tokens minted per kid and alg" grep -q "^jwtkit_tokens_issued_total{kid=\"$KID_A\",alg=\"ES256\"} [1-9]" "$WORK/metrics.txt"
check "/metrics: token errors by code" grep -q '^jwtkit_token_errors_total{error="invalid_client"} 7$' "$WORK/metrics.txt"
check "/metrics: rotation events by action" grep -q '^jwtkit_keyring_rotation_events_total{action="created"} 1$' "$WORK/metrics.txt"
check "/metrics: key ages by kid and state" grep -q "^jwtkit_key_age_seconds{kid=\"$KID_A\",alg=\"ES256\",state=\"active\"} [0-9]" "$WORK/metrics.txt"
check "/metrics: keyring generation" grep -q '^jwtkit_keyring_generation 1$' "$WORK/metrics.txt"
check "/metrics: every sample line is well formed" "$PY" - "$WORK/metrics.txt" <<'EOF'
import re, sys
pat = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? -?[0-9]+(\.[0-9]+)?$')
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# HELP ") or line.startswith("# TYPE "):
        continue
    assert pat.match(line), line
EOF

# ------------------------------------------------- rotation while serving
served_generation() { "$CURL" -s "$BASE/metrics" | awk '/^jwtkit_keyring_generation / {print $2}'; }
wait_generation() { # wait until the server serves the keyring's generation
  local want i
  want=$("$ROTATE_BIN" "$RING" dump | awk '/^generation/ {print $2}')
  for i in $(seq 1 100); do
    [ "$(served_generation)" = "$want" ] && return 0
    sleep 0.1
  done
  return 1
}
fetch_jwks() { "$CURL" -s -o "$WORK/$1" "$BASE/.well-known/jwks.json"; }

"$ROTATE_BIN" "$RING" rotate 1 0 >"$WORK/rot1.txt"
check "external rotation (force): a pending key is published" grep -q "published pending key" "$WORK/rot1.txt"
check "the server picks up the external change without restart" wait_generation
fetch_jwks jwks2.json
check "JWKS now lists the active and the pending key" json "$WORK/jwks2.json" 'len(d["keys"])==2'
KID_B=$(jget "$WORK/jwks2.json" '[k["kid"] for k in d["keys"] if k["kid"]!="'"$KID_A"'"][0]')
s=$(tok t2 -u "alice:$ALICE" -d grant_type=client_credentials)
access_token t2
out=$(verify "$WORK/t2.tok" https://api.example "$WORK/jwks2.json" --kid "$KID_A")
check "a pending key does not sign yet (new tokens still carry the old kid): $out" test "${out:0:2}" = ok
NEW_ETAG=$("$CURL" -s -D - -o /dev/null "$BASE/.well-known/jwks.json" | header /dev/stdin ETag)
check "the ETag changed with the JWKS" test "$NEW_ETAG" != "$ETAG"
check "If-None-Match with the old tag -> 200" test "$(inm "$ETAG")" = 200

# activation: the pending key has been published for max_age (clock offset)
"$ROTATE_BIN" "$RING" rotate 1 6 >"$WORK/rot2.txt"
check "external rotation: the pending key activates after max_age" grep -q "activated key $KID_B" "$WORK/rot2.txt"
check "the server swaps in the new signing key" wait_generation
fetch_jwks jwks3.json
s=$(tok t3 -u "alice:$ALICE" -d grant_type=client_credentials)
access_token t3
out=$(verify "$WORK/t3.tok" https://api.example "$WORK/jwks3.json" --kid "$KID_B")
check "new tokens carry the new kid after activation: $out" test "${out:0:2}" = ok
out=$(verify "$WORK/basic.tok" https://api.example "$WORK/jwks3.json" --kid "$KID_A")
check "old tokens keep verifying against the new JWKS (retiring key still published): $out" test "${out:0:2}" = ok

# retirement: not before its planned time, then gone from the JWKS
RET=$("$ROTATE_BIN" "$RING" retirement "$KID_A")
NOW=$(date +%s)
"$ROTATE_BIN" "$RING" rotate 0 $((RET - NOW - 3)) >"$WORK/rot3.txt"
check "the retiring key is not retired before its planned retirement" bash -c "! grep -q 'retired key' '$WORK/rot3.txt'"
wait_generation
fetch_jwks jwks4.json
out=$(verify "$WORK/basic.tok" https://api.example "$WORK/jwks4.json")
check "old tokens still verify until the planned retirement: $out" test "${out:0:2}" = ok
"$ROTATE_BIN" "$RING" rotate 0 $((RET - NOW + 2)) >"$WORK/rot4.txt"
check "the retiring key is retired at its planned retirement" grep -q "retired key $KID_A" "$WORK/rot4.txt"
check "the server serves the keyring without the retired key" wait_generation
fetch_jwks jwks5.json
check "the retired key left the JWKS" json "$WORK/jwks5.json" "len(d['keys'])==1 and d['keys'][0]['kid']=='$KID_B'"
out=$(verify "$WORK/t3.tok" https://api.example "$WORK/jwks5.json" --kid "$KID_B")
check "tokens of the active key still verify: $out" test "${out:0:2}" = ok
out=$(verify "$WORK/basic.tok" https://api.example "$WORK/jwks5.json")
check "a token of the retired key no longer verifies: $out" test "${out%%:*}" = UNKNOWN_KID
check "/metrics counted the external changes" bash -c "'$CURL' -s '$BASE/metrics' | grep -q '^jwtkit_keyring_rotation_events_total{action=\"reloaded\"} [1-9]'"

# ------------------------------------------------------------- SIGHUP
s=$(tok hup0 -u "alice:$ALICE" -d grant_type=client_credentials)
DAVE=$(add_client dave --audience https://api.example --scopes "read")
s=$(tok hup1 -u "dave:$DAVE" -d grant_type=client_credentials)
check "a client added to the file is unknown before SIGHUP" test "$s" = 401
# a keep-alive connection opened before the reload keeps working after it
"$PY" - "$PORT" "$SPID" >"$WORK/keepalive.txt" 2>&1 <<'EOF' &
import http.client, os, signal, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("GET", "/.well-known/jwks.json"); r = c.getresponse(); r.read()
a = r.status
os.kill(int(sys.argv[2]), signal.SIGHUP)
time.sleep(1.5)
c.request("GET", "/healthz"); r = c.getresponse(); r.read()
print(a, r.status, "same-connection")
EOF
KPID=$!
wait $KPID
check "SIGHUP does not drop an open keep-alive connection" grep -q "^200 200 same-connection" "$WORK/keepalive.txt"
s=$(tok hup2 -u "dave:$DAVE" -d grant_type=client_credentials)
check "after SIGHUP the new client gets a token" test "$s" = 200
check "SIGHUP logged the reload" grep -q '"event":"reloaded","msg":"reloaded configuration and clients; re-opening the keyring"' "$LOG"
cp "$CLIENTS" "$WORK/clients.good"
echo "this line is not valid" >>"$CLIENTS"
kill -HUP "$SPID"
sleep 1
check "a broken clients file on SIGHUP is refused and logged with file:line" grep -q '"event":"reload_failed".*clients.conf:[0-9]*: expected key = value' "$LOG"
s=$(tok hup3 -u "dave:$DAVE" -d grant_type=client_credentials)
check "... and the running configuration stays" test "$s" = 200
cp "$WORK/clients.good" "$CLIENTS"
check "the server is still healthy after the reloads" test "$("$CURL" -s "$BASE/healthz")" = ok

# --------------------------------------------------------------- logs
check "every log line is a JSON object starting ts, level, event" "$PY" - "$LOG" <<'EOF'
import json, sys
n = 0
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue  # the demo banner is plain text; there is none here
    d = json.loads(line)
    assert list(d)[:3] == ["ts", "level", "event"], d
    n += 1
assert n > 20
EOF
check "request lines carry method, path, status, duration_us, client_id, kid" grep -q "\"event\":\"request\",\"method\":\"POST\",\"path\":\"/token\",\"status\":200,\"duration_us\":[0-9]*,\"remote\":\"127.0.0.1\",\"client_id\":\"alice\",\"kid\":\"$KID_A\"" "$LOG"
check "no secret or token is ever logged" bash -c "! grep -q -F -e '$ALICE' -e '$BOB' -e '$CAROL' -e '$DAVE' -e \"\$(cat '$LEGACY')\" -e \"\$(cat '$WORK/basic.tok')\" '$LOG'"

# ------------------------------------------------------- request limits
BIGH=$("$PY" -c 'print("x" * 40000)')
code=$("$CURL" -s -o /dev/null -w '%{http_code}' -H "X-Big: $BIGH" "$BASE/healthz")
check "request headers over the 32 KiB connection limit are refused by MHD ($code)" test "$code" = 431 -o "$code" = 413
code=$("$CURL" -s -o /dev/null -w '%{http_code}' "$BASE/$BIGH")
check "an overlong URL is refused ($code)" test "$code" = 414 -o "$code" = 431
check "the server is healthy after oversized requests" test "$("$CURL" -s "$BASE/healthz")" = ok

# ------------------------------------------------------------- SIGTERM
"$ROTATE_BIN" "$RING" dump >"$WORK/ring.before"
# a request in flight when SIGTERM arrives is finished: headers and part of
# the body are sent, then SIGTERM, then the rest of the body
"$PY" - "$PORT" "$(printf 'alice:%s' "$ALICE" | base64 -w0)" >"$WORK/inflight.txt" 2>&1 <<'PYEOF' &
import socket, sys, time
body = b"grant_type=client_credentials&scope=read"
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST /token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + sys.argv[2].encode() +
          b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
          str(len(body)).encode() + b"\r\n\r\n" + body[:10])
time.sleep(1.0)
s.sendall(body[10:])
resp = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    resp += chunk
    if b"access_token" in resp and resp.rstrip().endswith(b"}"):
        break
print(resp.split(b"\r\n")[0].decode())
PYEOF
INFLIGHT=$!
sleep 0.5
stop_server TERM
wait $INFLIGHT
check "a request in flight at SIGTERM is completed (200)" grep -q "^HTTP/1.1 200" "$WORK/inflight.txt"
code=$("$CURL" -s -o /dev/null -w '%{http_code}' "$BASE/healthz")
check "no connection is accepted after shutdown" test "$code" = 000
check "SIGTERM: exit status 0 (ASan: no leak at shutdown)" test "$SEXIT" -eq 0
check "SIGTERM: stopped within 5 s (${SSTOP_MS} ms)" test "$SSTOP_MS" -lt 5000
"$ROTATE_BIN" "$RING" dump >"$WORK/ring.after"
check "the keyring loads after shutdown and is unchanged" cmp -s "$WORK/ring.before" "$WORK/ring.after"
check "shutdown logged" grep -q '"event":"stopped"' "$LOG"

# port in use -> runtime error 3
PORT2=$(free_port)
"$PY" -c 'import socket,sys,time;s=socket.socket();s.bind(("127.0.0.1",int(sys.argv[1])));s.listen();time.sleep(3)' "$PORT2" &
HOLD=$!
sleep 0.3
"$SERVE_BIN" --config "$CONF" --listen "127.0.0.1:$PORT2" 2>"$WORK/inuse.log"
check "address in use exits 3" test $? -eq 3
kill $HOLD 2>/dev/null
wait $HOLD 2>/dev/null

# ------------------------------------------------- encrypted keyring
echo "correct horse battery staple" >"$WORK/pass"
chmod 600 "$WORK/pass"
# this instance also has an issuer with a path (as behind a reverse proxy)
check "start with --passphrase-file creates an encrypted keyring" start_server "$WORK/enc.log" --keyring "$WORK/encring" --clients "$CLIENTS" --passphrase-file "$WORK/pass" --issuer "http://issuer.test/tenant1"
ISS_E="http://issuer.test/tenant1"
check "private keys are encrypted PKCS#8" bash -c "grep -q 'BEGIN ENCRYPTED PRIVATE KEY' '$WORK'/encring/keys/*.pem"
"$CURL" -s -o "$WORK/as-path.json" "$BASE/.well-known/oauth-authorization-server/tenant1"
check "issuer with a path: RFC 8414 metadata at /.well-known/oauth-authorization-server/tenant1" json "$WORK/as-path.json" "d['issuer']=='$ISS_E' and d['token_endpoint']=='$ISS_E/token' and d['jwks_uri']=='$ISS_E/.well-known/jwks.json'"
"$CURL" -s -o "$WORK/oidc-path.json" "$BASE/tenant1/.well-known/openid-configuration"
check "issuer with a path: OpenID metadata at /tenant1/.well-known/openid-configuration" json "$WORK/oidc-path.json" "d['issuer']=='$ISS_E'"
code=$("$CURL" -s -o /dev/null -w '%{http_code}' "$BASE/tenant1/.well-known/jwks.json")
check "issuer with a path: the JWKS is served under the path too" test "$code" = 200
s=$(tok encok -u "alice:$ALICE" -d grant_type=client_credentials)
check "the encrypted keyring signs" test "$s" = 200
access_token encok
"$CURL" -s -o "$WORK/enc-jwks.json" "$BASE/.well-known/jwks.json"
out=$("$VERIFY_BIN" "$WORK/enc-jwks.json" "$WORK/encok.tok" --iss "$ISS_E" --aud https://api.example)
check "its token verifies with iss $ISS_E: $out" test "${out:0:2}" = ok
stop_server TERM
check "clean exit (encrypted keyring)" test "$SEXIT" -eq 0
"$SERVE_BIN" --keyring "$WORK/encring" --clients "$CLIENTS" --listen 127.0.0.1:1 2>"$WORK/nopass.log"
check "an encrypted keyring without passphrase exits 2" test $? -eq 2

# ---------------------------------------------- an algorithm added later
EVE=$(add_client eve --audience https://api.example --alg EdDSA)
check "server starts with an algorithm the keyring lacks" launch_server "$WORK/alg.log" --config "$CONF" --alg ES256 --alg EdDSA
ISS=$BASE
s=$("$CURL" -s -o "$WORK/alg-health.txt" -w '%{http_code}' "$BASE/healthz")
check "/healthz: 503 until the new algorithm's key may sign" test "$s" = 503 -a "$(cat "$WORK/alg-health.txt")" = "no signing key for EdDSA"
err_case "a client of that algorithm meanwhile" 503 temporarily_unavailable alg0 -u "eve:$EVE" -d grant_type=client_credentials
check "the new key is published at once (pending)" bash -c "'$CURL' -s '$BASE/.well-known/jwks.json' | grep -q '\"alg\":\"EdDSA\"'"
for i in $(seq 1 150); do
  [ "$("$CURL" -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ] && break
  sleep 0.1
done
check "/healthz: 200 once it activated (after max_age)" test "$("$CURL" -s "$BASE/healthz")" = ok
s=$(tok alg1 -u "eve:$EVE" -d grant_type=client_credentials)
access_token alg1
"$CURL" -s -o "$WORK/alg-jwks.json" "$BASE/.well-known/jwks.json"
out=$(verify "$WORK/alg1.tok" https://api.example "$WORK/alg-jwks.json")
check "a client with alg = EdDSA gets an EdDSA token: $out" test "${out:0:2}" = ok -a "$(echo "$out" | sed 's/.* alg=\([^ ]*\).*/\1/')" = EdDSA
s=$(tok alg2 -u "alice:$ALICE" -d grant_type=client_credentials)
access_token alg2
out=$(verify "$WORK/alg2.tok" https://api.example "$WORK/alg-jwks.json")
check "other clients keep the first algorithm (ES256): $out" test "$(echo "$out" | sed 's/.* alg=\([^ ]*\).*/\1/')" = ES256
stop_server TERM
check "clean exit" test "$SEXIT" -eq 0

# ------------------------------------------------ the configuration dialect
# The migration block of docs/serve.md, as it stands: " # mode 0600" after
# the path is a comment, not part of the path.
"$PY" "$(dirname "$0")/../lib/doc_block.py" "$DOC" 'tests/serve/serve_test.sh` runs this block' >"$WORK/migration.block"
check "docs/serve.md has the migration block with its '# mode 0600' comment" \
  grep -qx 'legacy_hs256_secret_file = /etc/jwtkit/legacy-hs256.key *# mode 0600' "$WORK/migration.block"
if [ ! -e /etc/jwtkit/legacy-hs256.key ]; then
  { printf 'keyring = %s\nclients = %s\n' "$WORK/migring" "$CLIENTS"; cat "$WORK/migration.block"; } >"$WORK/migration.conf"
  "$SERVE_BIN" --config "$WORK/migration.conf" --listen 127.0.0.1:1 2>"$WORK/migration.log"
  check "the block as it stands is read (exit 2: this machine has no /etc/jwtkit/legacy-hs256.key)" test $? -eq 2
  check "... and names the secret file without the comment, after the line that named it" \
    grep -q 'migration.conf:4: legacy_hs256_secret_file: /etc/jwtkit/legacy-hs256.key does not exist"' "$WORK/migration.log"
fi
# values the dialect reads as a comment unless quoted: client add quotes them
MCLIENTS=$WORK/mig-clients.conf
HASHY=$("$SERVE_BIN" client add hashy --audience "urn:api #1" --scopes "read #admin" --clients "$MCLIENTS" 2>/dev/null)
check "client add writes an audience holding ' #' quoted" grep -qx 'audience = "urn:api #1"' "$MCLIENTS"
check "... and scopes holding ' #'" grep -qx 'scopes = "read #admin"' "$MCLIENTS"
# the same block with the secret file of this test, on a `localhost` listen
# address, serving that client
MPORT=$(free_port)
{
  printf 'listen = localhost:%s   # 127.0.0.1\nkeyring = %s\nclients = %s\n' "$MPORT" "$WORK/migring" "$MCLIENTS"
  sed "s|/etc/jwtkit/legacy-hs256.key|$LEGACY|" "$WORK/migration.block"
} >"$WORK/migration-here.conf"
"$SERVE_BIN" --config "$WORK/migration-here.conf" 2>"$WORK/mig.log" &
SPID=$!
PORT=$MPORT
BASE="http://127.0.0.1:$MPORT"
for i in $(seq 1 300); do
  [ "$("$CURL" -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ] && break
  kill -0 "$SPID" 2>/dev/null || break
  sleep 0.1
done
check "the migration block serves (listen = localhost:PORT)" test "$("$CURL" -s "$BASE/healthz")" = ok
check "localhost means 127.0.0.1" grep -q "\"event\":\"listening\",\"listen\":\"127.0.0.1:$MPORT\"" "$WORK/mig.log"
check "the legacy secret is configured (never published, never minted)" \
  grep -q '"legacy_hs256":"configured (never published, never minted)","transition_ttl":300' "$WORK/mig.log"
ISS=http://localhost:$MPORT
s=$(tok mig -u "hashy:$HASHY" -d grant_type=client_credentials)
check "an RS256 token for the client with ' #' in its values: $s" json "$WORK/mig.json" \
  "d['expires_in']==300 and d['scope']=='read #admin'"
access_token mig
"$CURL" -s -o "$WORK/mig-jwks.json" "$BASE/.well-known/jwks.json"
check "the JWKS holds RS256 keys only (no oct key)" json "$WORK/mig-jwks.json" \
  'd["keys"] and all(k["kty"]=="RSA" and k["alg"]=="RS256" for k in d["keys"])'
out=$(verify "$WORK/mig.tok" "urn:api #1" "$WORK/mig-jwks.json")
check "its aud is exactly 'urn:api #1' (iss $ISS): $out" test "${out:0:2}" = ok -a "$(echo "$out" | sed 's/.* alg=\([^ ]*\).*/\1/')" = RS256
stop_server TERM
check "clean exit (migration block)" test "$SEXIT" -eq 0

# ---------------------------------------------------------------- demo
DEMO=$WORK/demo
mkdir -p "$DEMO"
DPORT=$(free_port)
(cd "$DEMO" && exec "$SERVE_BIN" --demo --listen "127.0.0.1:$DPORT" 2>"$DEMO/demo.log") &
SPID=$!
PORT=$DPORT
BASE="http://127.0.0.1:$DPORT"
for i in $(seq 1 200); do
  [ "$("$CURL" -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ] && break
  sleep 0.1
done
check "--demo creates var/keyring, var/clients.conf, var/demo-client-secret" test -f "$DEMO/var/keyring/keyring.json" -a -f "$DEMO/var/clients.conf" -a -f "$DEMO/var/demo-client-secret"
check "demo files are private (0600)" test "$(stat -c %a "$DEMO/var/clients.conf") $(stat -c %a "$DEMO/var/demo-client-secret")" = "600 600"
CURL_LINE="curl -s -u demo:\$(cat var/demo-client-secret) -d grant_type=client_credentials $BASE/token"
VERIFY_LINE="jwtkit verify --jwks $BASE/.well-known/jwks.json --allow-http --alg ES256 --iss $BASE --aud demo-api -"
check "demo prints the curl line" grep -q -x -F "  $CURL_LINE" "$DEMO/demo.log"
check "demo prints the jwtkit verify line" grep -q -x -F "  $VERIFY_LINE" "$DEMO/demo.log"
(cd "$DEMO" && eval "$CURL_LINE") >"$WORK/demo.json"
check "the printed curl line gets a token" json "$WORK/demo.json" "d['token_type']=='Bearer'"
jget "$WORK/demo.json" 'd["access_token"]' >"$WORK/demo.tok"
"$CURL" -s -o "$WORK/demo-jwks.json" "$BASE/.well-known/jwks.json"
out=$("$VERIFY_BIN" "$WORK/demo-jwks.json" "$WORK/demo.tok" --iss "$BASE" --aud demo-api)
check "the demo token verifies: $out" test "${out:0:2}" = ok
if [ -n "$CLI" ]; then
  out=$(cd "$DEMO" && eval "$CURL_LINE" | "$PY" -c 'import json,sys;print(json.load(sys.stdin)["access_token"])' | eval "${VERIFY_LINE/jwtkit/$CLI}" 2>&1)
  check "the printed jwtkit verify line accepts it" test $? -eq 0
fi
DEMO_SECRET=$(cat "$DEMO/var/demo-client-secret")
DEMO_KID=$(jget "$WORK/demo-jwks.json" 'd["keys"][0]["kid"]')
stop_server TERM
check "demo: clean exit" test "$SEXIT" -eq 0
(cd "$DEMO" && exec "$SERVE_BIN" --demo --listen "127.0.0.1:$DPORT" 2>"$DEMO/demo2.log") &
SPID=$!
for i in $(seq 1 200); do
  [ "$("$CURL" -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ] && break
  sleep 0.1
done
check "demo second start reuses var/ (same secret)" test "$(cat "$DEMO/var/demo-client-secret")" = "$DEMO_SECRET"
"$CURL" -s -o "$WORK/demo-jwks2.json" "$BASE/.well-known/jwks.json"
check "demo second start reuses the keyring (same kid)" json "$WORK/demo-jwks2.json" "d['keys'][0]['kid']=='$DEMO_KID'"
s=$(cd "$DEMO" && eval "$CURL_LINE" -o /dev/null -w '%{http_code}')
check "demo second start: the same curl line works" test "$s" = 200
stop_server INT
check "SIGINT: exit status 0" test "$SEXIT" -eq 0

echo "serve tests: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
