#!/usr/bin/env bash
# A flood of tokens with unknown kids must not become a flood of JWKS
# fetches: at most one refetch per cooldown (5 s here), counted at the
# issuer; valid tokens keep passing meanwhile.
source "$(dirname "$0")/lib.sh"

start_issuer --cache-control max-age=3600 --algs ES256
write_gate_conf <<'EOF'
[gate]
jwks_cooldown = 5s
[route api]
match_path_prefix = /api/
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = ES256
EOF
start_gate
start_upstream
start_nginx
wait_for 10 gate_ready
good=$(mint ES256 --iss https://issuer.test --aud api --sub alice)
mint ES256 --iss https://issuer.test --aud api --sub x --count 200 --kid "unknown-{n}-$RANDOM" >"$TMP/flood.tokens"
check "200 unknown-kid tokens minted" test "$(sort -u "$TMP/flood.tokens" | wc -l)" = 200
sleep 5.2 # the start-up fetch's cooldown is over: the flood may trigger one fetch

flood() { # flood FILE PARALLEL: one request per token line (one curl, --parallel), codes to stdout
  local tok first=1
  while read -r tok; do
    [ $first = 1 ] || echo next
    first=0
    printf 'url = "http://127.0.0.1:%s/api/flood"\nheader = "Authorization: Bearer %s"\n' "$NGINX_PORT" "$tok"
    printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nsilent\nmax-time = 10\n'
  done <"$1" >"$TMP/flood.curl"
  curl -s --parallel --parallel-max "$2" --config "$TMP/flood.curl"
}

before=$(issuer_count)
t0=$(now_ms)
flood "$TMP/flood.tokens" 16 >"$TMP/burst1.codes"
t1=$(now_ms)
after=$(issuer_count)
log "burst of 200 in $((t1 - t0)) ms: $((after - before)) fetch(es)"
check "burst: all 200 refused with 401" test "$(grep -c '^401$' "$TMP/burst1.codes")" = 200
check "burst: at most one JWKS fetch ($((after - before)))" test $((after - before)) -le 1
check "burst: answered quickly (no request waited a cooldown)" test $((t1 - t0)) -lt 8000
call /api/ok -H "$(bearer "$good")"
check "valid token still passes" test "$STATUS" = 200

# a slower flood over ~12 s: at most one fetch per 5 s window
before=$(issuer_count)
t0=$(now_ms)
for round in 1 2 3 4 5 6; do
  sed -n "$((round * 30 - 29)),$((round * 30))p" "$TMP/flood.tokens" >"$TMP/round.tokens"
  flood "$TMP/round.tokens" 8 >>"$TMP/burst2.codes"
  call /api/ok -H "$(bearer "$good")"
  [ "$STATUS" = 200 ] || echo "valid token got $STATUS in round $round" >>"$TMP/burst2.bad"
  sleep 2
done
t1=$(now_ms)
after=$(issuer_count)
allowed=$(((t1 - t0) / 5000 + 1))
log "spread flood of 180 over $((t1 - t0)) ms: $((after - before)) fetch(es), bound $allowed"
check "spread flood: all refused" test "$(grep -c '^401$' "$TMP/burst2.codes")" = 180
check "spread flood: fetches ($((after - before))) <= one per cooldown ($allowed)" test $((after - before)) -le "$allowed"
check "spread flood: but refetching is not blocked for good (>= 1 fetch)" test $((after - before)) -ge 1
check "spread flood: valid token passed in every round" test ! -e "$TMP/burst2.bad"
check "refetches refused by the cooldown are counted" \
  test "$(metric 'jwtkit_gate_jwks_refetch_total{outcome="cooldown"}')" -ge 300
check "unknown_kid denials counted" test "$(decisions deny unknown_kid)" = 380
finish
