#!/usr/bin/env bash
# The JWKS endpoint fails in every way we know (500, garbage, 10 MB with
# and without Content-Length, a hang past the timeout, a connection closed
# mid-body, an empty set, the issuer gone): the last good set keeps working,
# and the stale state shows in /metrics; past jwks_stale_max the set is
# dropped and tokens are refused (healthz 503).
source "$(dirname "$0")/lib.sh"

start_issuer --cache-control max-age=300 --algs RS256
write_gate_conf <<'EOF'
[gate]
jwks_min_ttl = 1s
jwks_max_ttl = 2s
jwks_refresh_ahead = 1s
jwks_cooldown = 1s
jwks_timeout = 1s
[route api]
match_path_prefix = /api/
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = RS256
header X-User = sub
EOF
start_gate
start_upstream
start_nginx
wait_for 10 gate_ready
fresh() { mint RS256 --iss https://issuer.test --aud api --sub user --claim "jti=\"$(date +%s%N)\""; } # a new token each time

wait_metric_gt() { # wait_metric_gt SECONDS value-command... ; previous value in $PREV
  local limit=$1
  shift
  wait_for "$limit" bash -c "[ \"\$($*)\" -gt \"$PREV\" ]"
}
fetch_result() { jwks_metric jwtkit_gate_jwks_fetch_total ",result=\"$1\""; }
export -f metric jwks_metric fetch_result JWKS_URL
export GATE_PORT ISSUER_PORT

call /api/x -H "$(bearer "$(fresh)")"
check "healthy issuer: token passes" test "$STATUS" = 200

for case in "500:http_error" "garbage:invalid" "big:too_large" "bigchunked:too_large" "hang 3:timeout" \
  "close:truncated" "empty:empty"; do
  mode=${case%%:*}
  result=${case##*:}
  issuer_mode "$mode"
  PREV=$(fetch_result "$result")
  wait_metric_gt 10 fetch_result "$result"
  check "issuer '$mode': fetch counted as result=\"$result\"" test "$(fetch_result "$result")" -gt "$PREV"
  wait_for 5 bash -c '[ "$(jwks_metric jwtkit_gate_jwks_stale)" = 1 ]'
  check "issuer '$mode': jwtkit_gate_jwks_stale 1" test "$(jwks_metric jwtkit_gate_jwks_stale)" = 1
  call /api/x -H "$(bearer "$(fresh)")"
  check "issuer '$mode': a new token still passes with the cached keys" test "$STATUS" = 200
done
sv=$(metric jwtkit_gate_jwks_stale_verifications_total)
check "stale verifications counted ($sv)" test "$sv" -ge 7
check "healthz still ready while stale" gate_ready
check "stale serving logged" grep -q '"event":"jwks_stale"' "$TMP/gate.log"
check "failures logged with their result" grep -q '"event":"jwks_fetch_failed".*"result":"timeout"' "$TMP/gate.log"

issuer_mode ok
ok_or_304() { echo $(($(fetch_result ok) + $(fetch_result not_modified))); }
export -f ok_or_304
PREV=$(ok_or_304)
wait_metric_gt 10 ok_or_304
check "issuer healthy again: the set is revalidated (304 to If-None-Match)" test "$(ok_or_304)" -gt "$PREV"
wait_for 5 bash -c '[ "$(jwks_metric jwtkit_gate_jwks_stale)" = 0 ]'
check "issuer healthy again: stale back to 0" test "$(jwks_metric jwtkit_gate_jwks_stale)" = 0

stop_issuer
PREV=$(fetch_result connect_error)
wait_metric_gt 10 fetch_result connect_error
check "issuer stopped: connect_error counted" test "$(fetch_result connect_error)" -gt "$PREV"
wait_for 5 bash -c '[ "$(jwks_metric jwtkit_gate_jwks_stale)" = 1 ]'
call /api/x -H "$(bearer "$(fresh)")"
check "issuer stopped: new token still passes (stale set)" test "$STATUS:$(jwks_metric jwtkit_gate_jwks_stale)" = 200:1
stop_gate

# --- past the stale bound the set is dropped
log "phase 2: jwks_stale_max"
start_issuer --cache-control max-age=300 --algs RS256
GATE_PORT=
sed -e 's/^jwks_cooldown = 1s$/jwks_cooldown = 1s\njwks_stale_max = 2s/' "$TMP/gate.conf" >"$TMP/gate2.conf"
sed -i "s#127.0.0.1:[0-9]*/jwks.json#127.0.0.1:$ISSUER_PORT/jwks.json#" "$TMP/gate2.conf"
start_gate "$TMP/gate2.conf"
wait_for 10 gate_ready
tok=$(fresh)
auth -H "$(bearer "$tok")"
check "phase 2: token passes" test "$STATUS" = 204
stop_issuer
wait_for 10 bash -c '[ "$(jwks_metric jwtkit_gate_jwks_ready)" = 0 ]'
check "after lifetime + stale_max the set is dropped (jwks_ready 0)" test "$(jwks_metric jwtkit_gate_jwks_ready)" = 0
auth -H "$(bearer "$tok")"
check "dropped set: even a cached token is refused" test "$STATUS" = 401
auth -H "$(bearer "$(fresh)")"
check "dropped set: new token refused" test "$STATUS" = 401
check "healthz 503 without a set" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GATE_PORT/healthz")" = 503
check "the drop is logged as an error" grep -q '"level":"error","event":"jwks_dropped"' "$TMP/gate.log"
finish
