# tests/gate/serve_rotation.sh - the real issuer (`jwtkit serve`) and its
# keyring rotated from outside, for the unknown-kid tests of the gate
# (tests/gate/test_serve_rotation.sh) and of the nginx module
# (tests/nginx/test_serve_rotation.sh).  Sourced after lib.sh.
#
#   start_serve [serve options]     # --demo in $TMP/serve; SERVE_PORT, ISS, JWKS
#   serve_token FILE                # a fresh demo token written to FILE
#   kid_of TOKEN                    # the kid of its header
#   forge_kid TOKEN KID             # the token with another kid, signature kept
#   serve_jwks_requests             # serve's own count of JWK Set requests
#   serve_keys STATE                # kids serve publishes in STATE (its /metrics)
#   rotate_publish                  # `jwtkit keyring rotate --force`: NEW_KID pending
#   rotate_activate                 # the same once max_age has passed: NEW_KID signs
#
# Needs SERVE_BIN and JWTKIT_CLI_BIN (ctest sets them; they default to the
# build directory next to the checkout).
SERVE_BIN=${SERVE_BIN:-}
[ -n "$SERVE_BIN" ] || SERVE_BIN=$GATE_TESTS_DIR/../../build/services/serve/jwtkit-serve
JWTKIT_CLI_BIN=${JWTKIT_CLI_BIN:-$GATE_TESTS_DIR/../../build/cli/jwtkit}

SERVE_PORT=
SERVE_PID=
ISS=
JWKS=
RING=$TMP/serve/var/keyring
start_serve() {
  SERVE_PORT=$(free_port)
  mkdir -p "$TMP/serve"
  (cd "$TMP/serve" && exec "$SERVE_BIN" --demo --listen "127.0.0.1:$SERVE_PORT" "$@" >"$TMP/serve.out" 2>"$TMP/serve.log") &
  SERVE_PID=$!
  PIDS+=("$SERVE_PID")
  wait_for 30 curl -sf "http://127.0.0.1:$SERVE_PORT/healthz" || { echo "serve did not start"; cat "$TMP/serve.log"; exit 1; }
  ISS=http://127.0.0.1:$SERVE_PORT
  JWKS=$ISS/.well-known/jwks.json
}

serve_token() { # serve_token FILE: the demo client's token, or fail
  curl -s --max-time 5 -u "demo:$(cat "$TMP/serve/var/demo-client-secret")" -d grant_type=client_credentials \
    "$ISS/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' >"$1" 2>/dev/null &&
    [ -s "$1" ]
}

kid_of() {
  python3 -c 'import base64,json,sys; h=sys.argv[1].split(".")[0]; print(json.loads(base64.urlsafe_b64decode(h+"="*(-len(h)%4)))["kid"])' "$1"
}

forge_kid() { # forge_kid TOKEN KID: the header's kid replaced, payload and signature kept
  python3 - "$1" "$2" <<'PYEOF'
import base64, json, sys
tok, kid = sys.argv[1], sys.argv[2]
h, rest = tok.split(".", 1)
hdr = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
hdr["kid"] = kid
h = base64.urlsafe_b64encode(json.dumps(hdr, separators=(",", ":")).encode()).rstrip(b"=").decode()
print(h + "." + rest)
PYEOF
}

serve_metrics() { curl -s --max-time 5 "$ISS/metrics"; }
# every answer serve gave to GET /.well-known/jwks.json (200 and 304)
serve_jwks_requests() {
  serve_metrics | awk 'index($1, "jwtkit_http_requests_total{path=\"/.well-known/jwks.json\",") == 1 { n += $2 } END { print n + 0 }'
}
# the kids serve publishes in STATE (pending, active, retiring), one a line
serve_keys() {
  serve_metrics | awk -v st="state=\"$1\"" 'index($1, "jwtkit_key_age_seconds{") == 1 && index($1, st) {
    s = $1; sub(/^[^"]*"/, "", s); sub(/".*/, "", s); print s }'
}

# `jwtkit keyring rotate --force` on serve's keyring while serve runs: the
# first publishes a pending key (NEW_KID) at once; it may sign only once it
# has been published for the keyring's max_age, so the activation is asked
# again until the keyring says it is done.  Serve picks each change up by
# itself (it watches keyring.json).
NEW_KID=
rotate_publish() {
  local out
  out=$("$JWTKIT_CLI_BIN" keyring rotate "$RING" --force 2>&1)
  echo "$out" >>"$TMP/rotate.log"
  NEW_KID=$(sed -n 's/^published pending key \([^ ]*\) .*/\1/p' <<<"$out")
  [ -n "$NEW_KID" ]
}
_activated() {
  local out
  out=$("$JWTKIT_CLI_BIN" keyring rotate "$RING" --force 2>&1)
  grep -q "^activated key $NEW_KID " <<<"$out" || return 1
  echo "$out" >>"$TMP/rotate.log"
}
rotate_activate() { # rotate_activate SECONDS: bound of the wait
  wait_for "$1" _activated
}

# Before the rotation: every set serve published so far held one key, OLD_KID.
check_one_serve_key() {
  check "every set serve published so far held one key, $OLD_KID (serve's generation 1)" \
    test "$(serve_keys active)|$(serve_keys pending)|$(serve_keys retiring)|$(serve_metrics | awk '$1 == "jwtkit_keyring_generation" { print $2 }')" = "$OLD_KID|||1"
}
# The rotation, each step checked: a pending key published, activated once
# published for MAX_AGE, and serve's /token signing with it; sets NEW_KID
# and `new` (a token of the new key).
new_token_signed() { serve_token "$TMP/new.tok" && [ "$(kid_of "$(cat "$TMP/new.tok")")" = "$NEW_KID" ]; }
rotate_serve_checked() {
  rotate_publish
  check "jwtkit keyring rotate --force published a pending key ($NEW_KID)" test -n "$NEW_KID"
  check "... a new kid" test "$NEW_KID" != "$OLD_KID"
  check "serve publishes it (pending)" wait_for 10 bash -c "[ \"\$(curl -s '$ISS/metrics' | grep -c 'kid=\"$NEW_KID\",alg=\"ES256\",state=\"pending\"')\" = 1 ]"
  check "the key signs once published for max_age ($MAX_AGE s)" rotate_activate $((MAX_AGE + 20))
  check "serve's /token signs with the new kid" wait_for 10 new_token_signed
  new=$(cat "$TMP/new.tok")
}
