#!/usr/bin/env bash
# Key rotation at the issuer, followed without a restart:
#  1. unknown kid -> one refetch; the request that triggered it waits for it
#     (suspended, no thread blocked) and passes;
#  2. a key that leaves the set takes its cached tokens with it;
#  3. with a short cache lifetime the background refresh (ETag, 304) picks
#     up new keys before any token needs them.
source "$(dirname "$0")/lib.sh"

start_issuer --cache-control max-age=300 --keep 2 --algs RS256,ES256
write_gate_conf <<'EOF'
[gate]
jwks_cooldown = 2s
[route api]
match_path_prefix = /api/
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = RS256,ES256
header X-User = sub
EOF
start_gate
start_upstream
start_nginx
wait_for 10 gate_ready
claims=(--iss https://issuer.test --aud api)

old=$(mint RS256 "${claims[@]}" --sub old-key-user)
call /api/a -H "$(bearer "$old")"
check "token of the first key passes" test "$STATUS" = 200
call /api/a -H "$(bearer "$old")"
check "and is cached" test "$(metric jwtkit_gate_token_cache_hits_total)" -ge 1
sleep 2.2 # past the cooldown of the start-up fetch

fetches=$(issuer_count)
issuer_rotate
check "issuer rotated to rs256-2" test "$(cat "$ISSUER_DIR/RS256.kid")" = rs256-2
new=$(mint RS256 "${claims[@]}" --sub new-key-user)
call /api/b -H "$(bearer "$new")"
check "first token of the new key passes at once (waited for the refetch)" test "$STATUS" = 200
check "X-User of the new token reaches the upstream" body_has "X-User: new-key-user"
check "exactly one fetch for it" test "$(issuer_count)" = $((fetches + 1))
check "refetch counted as triggered" test "$(metric 'jwtkit_gate_jwks_refetch_total{outcome="triggered"}')" = 1
check "the request waited for it" test "$(metric 'jwtkit_gate_jwks_refetch_total{outcome="waited"}')" -ge 1
call /api/a -H "$(bearer "$old")"
check "old key still published: its token still passes" test "$STATUS" = 200

sleep 2.2
issuer_rotate # rs256-3 in, rs256-1 out
newer=$(mint RS256 "${claims[@]}" --sub newest-user)
call /api/c -H "$(bearer "$newer")"
check "token of rs256-3 passes" test "$STATUS" = 200
inv=$(metric jwtkit_gate_token_cache_invalidated_total)
call /api/a -H "$(bearer "$old")"
check "cached token of the removed key rs256-1 -> 401" test "$STATUS" = 401
check "its cache entry was invalidated" test "$(metric jwtkit_gate_token_cache_invalidated_total)" -gt "$inv"
call /api/b -H "$(bearer "$new")"
check "rs256-2 (still published) keeps passing" test "$STATUS" = 200
check "ES256 key rotated too and works" bash -c "
  t=\$('$MINT_BIN' --alg ES256 --key '$ISSUER_DIR/ES256.key.pem' --kid-file '$ISSUER_DIR/ES256.kid' ${claims[*]} --sub e)
  [ \"\$(curl -s -o /dev/null -w '%{http_code}' -H \"Authorization: Bearer \$t\" http://127.0.0.1:$NGINX_PORT/api/e)\" = 200 ]"
stop_gate

# --- phase 2: background refresh with a short lifetime (no refetch needed)
log "phase 2: background refresh"
GATE_PORT=
write_gate_conf "$TMP/gate2.conf" <<'EOF'
[gate]
jwks_min_ttl = 1s
jwks_max_ttl = 3s
jwks_refresh_ahead = 1s
jwks_cooldown = 60s
[route api]
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = RS256
EOF
start_gate "$TMP/gate2.conf"
wait_for 10 gate_ready
left=$(jwks_metric jwtkit_gate_jwks_expires_in_seconds)
check "Cache-Control max-age=300 clamped to jwks_max_ttl = 3 s (expires in $left s)" \
  python3 -c "import sys; sys.exit(0 if 0 <= float('$left') <= 3 else 1)"
sleep 3.5
check "revalidated with If-None-Match: 304s counted" test "$(jwks_metric jwtkit_gate_jwks_fetch_total ',result="not_modified"')" -ge 1
issuer_rotate
sleep 3.5 # one lifetime: the refresh has brought the new key
tok=$(mint RS256 "${claims[@]}" --sub refreshed)
auth -H "$(bearer "$tok")"
check "new key known from the background refresh alone" test "$STATUS" = 204
check "no unknown-kid refetch was needed" test "$(metric 'jwtkit_gate_jwks_refetch_total{outcome="triggered"}')" = 0
check "set fetched again after the rotation" test "$(jwks_metric jwtkit_gate_jwks_fetch_total ',result="ok"')" -ge 2
finish
