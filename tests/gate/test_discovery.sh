#!/usr/bin/env bash
# issuer_discovery = true: the gate reads jwks_uri from the issuer's
# metadata (/.well-known/openid-configuration, then RFC 8414's
# /.well-known/oauth-authorization-server after a 404).  With the real
# `jwtkit serve` (it publishes OpenID discovery) its tokens pass; hostile
# documents (another issuer, an http:// jwks_uri off loopback, a huge one,
# garbage, none at all) are refused, named, by --check --fetch and by the
# running gate; the document is read again on the set's schedule (a new
# jwks_uri is followed and logged).
source "$(dirname "$0")/lib.sh"

# --- the real issuer
SERVE_BIN=${SERVE_BIN:-}
[ -n "$SERVE_BIN" ] || SERVE_BIN=$GATE_TESTS_DIR/../../build/services/serve/jwtkit-serve
if [ -x "$SERVE_BIN" ]; then
  SERVE_PORT=$(free_port)
  mkdir -p "$TMP/serve"
  (cd "$TMP/serve" && exec "$SERVE_BIN" --demo --listen "127.0.0.1:$SERVE_PORT" >"$TMP/serve.out" 2>"$TMP/serve.log") &
  PIDS+=("$!")
  wait_for 30 curl -sf "http://127.0.0.1:$SERVE_PORT/healthz" || { echo "serve did not start"; cat "$TMP/serve.log"; exit 1; }
  ISS=http://127.0.0.1:$SERVE_PORT
  cat >"$TMP/serve-gate.conf" <<EOF
[route api]
issuer = $ISS
issuer_discovery = true
allow_http_jwks = true
audience = demo-api
algs = ES256
typ = at+jwt
header X-User = sub
EOF
  "$GATE_BIN" --config "$TMP/serve-gate.conf" --check --fetch >"$TMP/check.out" 2>&1
  check "jwtkit serve: --check --fetch finds the set through discovery (exit $?)" \
    grep -q "route api: $ISS: jwks_uri $ISS/.well-known/jwks.json: reachable" "$TMP/check.out"
  start_gate "$TMP/serve-gate.conf"
  wait_for 10 gate_ready
  check "jwtkit serve: the gate is ready with the discovered set" gate_ready
  check "jwtkit serve: jwks_discovered logged" \
    grep -q "\"event\":\"jwks_discovered\",\"issuer\":\"$ISS\",\"jwks_uri\":\"$ISS/.well-known/jwks.json\"" "$TMP/gate.log"
  tok=$(curl -s --max-time 5 -u "demo:$(cat "$TMP/serve/var/demo-client-secret")" -d grant_type=client_credentials \
    "$ISS/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  auth -H "$(bearer "$tok")"
  check "jwtkit serve's token passes (got $STATUS)" test "$STATUS" = 204
  check "... with its claim header" header_is X-User demo
  stop_gate
  GATE_PORT=
else
  echo "note: jwtkit serve not built: its part is left out"
fi

# --- a metadata server under the test's control (a directory served by python)
start_issuer --cache-control max-age=1
DOCS=$TMP/docs
mkdir -p "$DOCS/.well-known"
META_PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$DOCS" "$META_PORT" >>"$TMP/meta.log" 2>&1 &
PIDS+=("$!")
wait_for 20 curl -s -o /dev/null "http://127.0.0.1:$META_PORT/" || { echo "metadata server did not start"; exit 1; }
META=http://127.0.0.1:$META_PORT
OIDC=$DOCS/.well-known/openid-configuration
doc() { printf '{"issuer":"%s","jwks_uri":"%s","token_endpoint":"%s/token"}' "$1" "$2" "$META" >"$OIDC"; }
write_gate_conf <<EOF
[gate]
jwks_max_bytes = 4096
jwks_min_ttl = 1s
jwks_cooldown = 1s
[route api]
issuer = $META
issuer_discovery = true
allow_http_jwks = true
audience = api
algs = ES256
header X-User = sub
EOF
check_fetch() { # RC and OUT of --check --fetch
  "$GATE_BIN" --config "$TMP/gate.conf" --check --fetch >"$TMP/check.out" 2>&1
  RC=$?
  OUT=$(cat "$TMP/check.out")
}
refused() { # refused "what" "expected text"
  check_fetch
  check "$1: --check --fetch exit 1 (got $RC)" test "$RC" = 1
  check "$1: the reason: $2" grep -qF -- "$2" <<<"$OUT"
}

doc "$META" "$(JWKS_URL)"
check_fetch
check "a good document: exit 0 (got $RC)" test "$RC" = 0
check "a good document: jwks_uri followed" grep -qF "route api: $META: jwks_uri $(JWKS_URL): reachable, 3 keys; for algs ES256: kid es256-1 (ES256)" <<<"$OUT"

doc "https://evil.test" "$(JWKS_URL)"
refused "another issuer" "the metadata document names issuer \"https://evil.test\", not the configured \"$META\""
doc "$META/" "$(JWKS_URL)"
refused "the issuer with a trailing slash" "names issuer \"$META/\", not the configured \"$META\""
doc "$META" "http://issuer.example/jwks.json"
refused "an http:// jwks_uri off loopback" "jwks_uri \"http://issuer.example/jwks.json\" is not https://"
python3 -c "import json; print(json.dumps({'issuer': '$META', 'jwks_uri': '$(JWKS_URL)', 'pad': 'x' * 100000}))" >"$OIDC"
refused "a huge document (100 kB > jwks_max_bytes)" "FAILED (too_large"
printf '<html>not json</html>' >"$OIDC"
refused "garbage" "not a JSON object"
printf '{"issuer":"%s"}' "$META" >"$OIDC"
refused "no jwks_uri" "has no \"jwks_uri\" string"
rm -f "$OIDC"
refused "no document at either location" "no metadata document (HTTP 404 at $META/.well-known/openid-configuration and at $META/.well-known/oauth-authorization-server)"
printf '{"issuer":"%s","jwks_uri":"%s"}' "$META" "$(JWKS_URL)" >"$DOCS/.well-known/oauth-authorization-server"
check_fetch
check "RFC 8414's document after the OpenID one's 404: exit 0 (got $RC)" test "$RC" = 0
rm -f "$DOCS/.well-known/oauth-authorization-server"

# --- the running gate: tokens pass; a bad document later keeps the set
# (stale rules) and is logged; a new jwks_uri is followed
doc "$META" "$(JWKS_URL)"
start_gate
wait_for 10 gate_ready
check "running gate ready through discovery" gate_ready
tok=$(mint ES256 --iss "$META" --aud api --sub alice)
auth -H "$(bearer "$tok")"
check "a token of the discovered set passes (got $STATUS)" test "$STATUS" = 204
doc "https://evil.test" "$(JWKS_URL)"
wait_for 10 grep -q 'names issuer \\"https://evil.test\\"' "$TMP/gate.log"
check "a document turned hostile: the fetch fails, logged with both issuers" \
  grep -q "jwks_fetch_failed.*names issuer .*https://evil.test.*not the configured .*$META" "$TMP/gate.log"
auth -H "$(bearer "$tok")"
check "... and the set fetched before still serves (got $STATUS)" test "$STATUS" = 204
doc "$META" "http://127.0.0.1:$ISSUER_PORT/.well-known/jwks.json"
wait_for 10 grep -q '"event":"jwks_discovered".*"jwks_uri":"http://127.0.0.1:'"$ISSUER_PORT"'/.well-known/jwks.json","changed":true' "$TMP/gate.log"
check "the document is read again on the set's schedule: the new jwks_uri is followed" \
  grep -q '"event":"jwks_discovered".*"jwks_uri":"http://127.0.0.1:'"$ISSUER_PORT"'/.well-known/jwks.json","changed":true' "$TMP/gate.log"
finish
