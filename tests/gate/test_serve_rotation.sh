#!/usr/bin/env bash
# An unknown kid before and after a rotation of the real issuer's keyring
# (`jwtkit serve --demo`), with the gate behind nginx (auth_request).
#
# Serve publishes a new key max_age (here 12 s) before it signs with it, so a
# gate that follows serve's Cache-Control always holds the key in time.
# This one does not: `jwks_min_ttl = 1h` keeps the set an hour (the case of
# docs/gateway.md, "An issuer whose max-age is below jwks_min_ttl"; the
# gate warns about it).  It fetched the set before the next key was
# published, and then serve signs with a kid it has never seen.  The
# keyring is rotated from outside with `jwtkit keyring rotate --force`
# while serve runs: the first call publishes the next key, the calls after
# it activate that key once it has been published for max_age (serve's own
# rules, its own clock).
#
# Checked: a serve token passes; forged unknown kids are refused with one
# refetch and then none (jwks_cooldown 10 s); the gate still holds the old
# set (its fetch counter, serve's count of JWK Set requests, one key); the
# new token passes after exactly one more fetch; another unknown kid right
# after is refused with no fetch; the old token still passes (its key is
# retiring, still published); 20 concurrent requests with the new token
# all pass with no further fetch.
#
# The cooldown has passed when the new token comes: the forged refetch ran
# before the next key was published, and the key signs max_age (12 s) later,
# more than the cooldown (10 s) plus the keyring's one-second granularity.
# Skipped (77) when serve or the jwtkit command is not built.
source "$(dirname "$0")/lib.sh"
source "$GATE_TESTS_DIR/serve_rotation.sh"
[ -x "$SERVE_BIN" ] || { echo "SKIP: jwtkit serve not built ($SERVE_BIN)"; exit 77; }
[ -x "$JWTKIT_CLI_BIN" ] || { echo "SKIP: the jwtkit command is not built ($JWTKIT_CLI_BIN)"; exit 77; }

MAX_AGE=12
COOLDOWN=10
start_serve --max-age ${MAX_AGE}s
cat >"$TMP/gate.conf" <<EOF
[gate]
jwks_min_ttl = 1h
jwks_max_ttl = 1h
jwks_cooldown = ${COOLDOWN}s

[route api]
match_path_prefix = /api/
issuer = $ISS
audience = demo-api
jwks_url = $JWKS
allow_http_jwks = true
algs = ES256
typ = at+jwt
header X-User = sub
EOF
start_gate
start_upstream
start_nginx
wait_for 10 gate_ready
check "gate ready with serve's set" gate_ready

src="source=\"$JWKS\""
# fetches of serve's set by the gate, whatever their result (ok, not_modified, ...)
fetches() {
  curl -s --max-time 5 "http://127.0.0.1:$GATE_PORT/metrics" |
    awk -v p="jwtkit_gate_jwks_fetch_total{$src," 'index($1, p) == 1 { n += $2 } END { print n + 0 }'
}
keys() { metric "jwtkit_gate_jwks_keys{$src}"; }
refetches() { metric "jwtkit_gate_jwks_refetch_total{outcome=\"$1\"}"; }

# ------------------------------------------------------ before the rotation
OLD_KID=$(serve_keys active)
check "serve signs with one key ($OLD_KID)" test "$(wc -w <<<"$OLD_KID")" = 1
serve_token "$TMP/old.tok"
old=$(cat "$TMP/old.tok")
check "serve's token is signed by it" test "$(kid_of "$old")" = "$OLD_KID"
call /api/x -H "$(bearer "$old")"
check "serve's token passes through nginx and the gate (got $STATUS)" test "$STATUS" = 200
check "... its sub reaches the upstream" body_has "X-User: demo"
check "one fetch of serve's set ($(fetches))" test "$(fetches)" = 1
check "serve answered one JWK Set request ($(serve_jwks_requests))" test "$(serve_jwks_requests)" = 1
check "the gate warns that serve's max-age ($MAX_AGE s) is below jwks_min_ttl" \
  grep -q "\"event\":\"jwks_max_age_below_min_ttl\".*\"issuer_max_age_s\":$MAX_AGE,\"jwks_min_ttl_s\":3600" "$TMP/gate.log"

bad=0
for i in 1 2 3; do
  call /api/x -H "$(bearer "$(forge_kid "$old" "not-a-serve-kid-$i")")"
  [ "$STATUS" = 401 ] || bad=$((bad + 1))
done
check "three tokens with a kid in no set: 401 ($bad not)" test "$bad" = 0
check "... as unknown_kid ($(decisions deny unknown_kid))" test "$(decisions deny unknown_kid)" = 3
check "... with one refetch, the two others in the ${COOLDOWN} s cooldown (gate: $(fetches) fetches)" test "$(fetches)" = 2
check "... serve saw exactly those fetches ($(serve_jwks_requests))" test "$(serve_jwks_requests)" = 2
check "... counted: $(refetches triggered) triggered, $(refetches cooldown) refused in the cooldown" \
  test "$(refetches triggered):$(refetches cooldown)" = 1:2
check_one_serve_key
check "the gate holds that set: one key" test "$(keys)" = 1

# -------------------------------------------------------------- the rotation
rotate_serve_checked
check "the gate still holds the old set: $(fetches) fetches, $(keys) key, serve answered $(serve_jwks_requests) JWK Set requests" \
  test "$(fetches):$(keys):$(serve_jwks_requests)" = 2:1:2

# ------------------------------------------------------- after the rotation
call /api/x -H "$(bearer "$new")"
new_status=$STATUS
# right after: the refetch for the new kid started the cooldown
call /api/x -H "$(bearer "$(forge_kid "$new" not-a-serve-kid-4)")"
forged_after=$STATUS
check "the first token of the new key passes (got $new_status)" test "$new_status" = 200
check "... after exactly one refetch (gate: $(fetches) fetches; serve: $(serve_jwks_requests))" \
  test "$(fetches):$(serve_jwks_requests)" = 3:3
check "... which the request waited for ($(refetches waited) waited)" test "$(refetches waited)" -ge 1
check "... and brought both keys ($(keys))" test "$(keys)" = 2
check "another unknown kid right after: 401 (got $forged_after), unknown_kid ($(decisions deny unknown_kid))" \
  test "$forged_after:$(decisions deny unknown_kid)" = 401:4
check "... with no fetch (cooldown): gate $(fetches), serve $(serve_jwks_requests), $(refetches cooldown) refused in the cooldown" \
  test "$(fetches):$(serve_jwks_requests):$(refetches cooldown)" = 3:3:3
call /api/x -H "$(bearer "$old")"
check "the old token still passes: its key is retiring, still published (got $STATUS)" test "$STATUS" = 200
check "... serve publishes both ($(serve_keys retiring) retiring)" test "$(serve_keys retiring)" = "$OLD_KID"

# 20 concurrent requests with the new token
urls=()
for i in $(seq 20); do urls+=(-o /dev/null "http://127.0.0.1:$NGINX_PORT/api/r$i"); done
codes=$(curl -s --max-time 20 --parallel --parallel-max 20 -H "$(bearer "$new")" -w '%{http_code}\n' "${urls[@]}")
check "20 concurrent requests with the new token: all 200 ($(sort <<<"$codes" | uniq -c | tr -s ' \n' ' '))" \
  test "$(grep -c '^200$' <<<"$codes")" = 20
check "... and no more fetches (gate $(fetches), serve $(serve_jwks_requests))" test "$(fetches):$(serve_jwks_requests)" = 3:3
finish
