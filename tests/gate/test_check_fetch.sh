#!/usr/bin/env bash
# jwtkit gate --check --fetch: every JWK Set fetched once and reported per
# route (reachable, keys, the kids serving the route's algs); a set that
# cannot be fetched or read, or has no key for the route's algs, fails
# with exit 1 naming the URL and the reason (the sample output of
# docs/gateway.md is the EdDSA case below); --check alone says the remote
# sets were not fetched; --fetch without --check is a usage error.
source "$(dirname "$0")/lib.sh"

start_issuer --cache-control max-age=300 --algs RS256,ES256
DEAD=$(free_port) # nothing listens there
write_gate_conf <<EOF
[gate]
jwks_timeout = 2s
[route es]
match_path_prefix = /es/
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = ES256
[route rsa]
match_path_prefix = /rsa/
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = RS256, PS256
EOF
es_kid=$(cat "$ISSUER_DIR/ES256.kid")
rs_kid=$(cat "$ISSUER_DIR/RS256.kid")

run_check() { # run_check [options]: RC, OUT
  "$GATE_BIN" --config "$TMP/gate.conf" --check "$@" >"$TMP/check.out" 2>"$TMP/check.err"
  RC=$?
  OUT=$(cat "$TMP/check.out")
}
has() { grep -qF -- "$1" <<<"$OUT"; }

run_check
check "--check alone: exit 0 (got $RC)" test "$RC" = 0
check "--check alone says the remote sets were not fetched" has "1 remote JWK Set not fetched (--check --fetch fetches them)"
check "--check alone fetched nothing" test "$(issuer_count)" = 0

run_check --fetch
check "--check --fetch, a good set: exit 0 (got $RC)" test "$RC" = 0
check "route es: reachable, 2 keys, kid $es_kid for ES256" has "route es: $(JWKS_URL): reachable, 2 keys; for algs ES256: kid $es_kid (ES256)"
check "route rsa: kid $rs_kid serves RS256" has "route rsa: $(JWKS_URL): reachable, 2 keys; for algs RS256,PS256: kid $rs_kid (RS256)"
check "one fetch for the two routes of one set" test "$(issuer_count)" = 1
check "the summary" has "every JWK Set fetched (1)"

# a route whose algs no key of the set serves
sed -i 's/^algs = ES256$/algs = EdDSA/' "$TMP/gate.conf"
run_check --fetch
check "no key for the route's algs: exit 1 (got $RC)" test "$RC" = 1
check "... names the route, the URL and the reason, and lists the set's keys" \
  has "route es: $(JWKS_URL): reachable, 2 keys; for algs EdDSA: none: FAILED (no key of the set serves the route's algs; the other keys: "
check "... the other route still reported good" has "kid $rs_kid (RS256)"
check "... the summary counts one route" has "1 route failed: its JWK Set cannot be used"
sed -i 's/^algs = EdDSA$/algs = ES256/' "$TMP/gate.conf"

# the issuer failing
for case in "500:http_error, HTTP 500" "garbage:invalid" "empty:empty" "big:too_large"; do
  issuer_mode "${case%%:*}"
  run_check --fetch
  check "issuer '${case%%:*}': exit 1 (got $RC)" test "$RC" = 1
  check "issuer '${case%%:*}': FAILED (${case#*:}) for both routes" \
    test "$(grep -c "$(JWKS_URL): FAILED (${case#*:}" <<<"$OUT")" = 2
done
issuer_mode ok

# nothing listening, and http:// without allow_http_jwks cannot be set up: an
# https:// URL to a plain-HTTP port fails in TLS
cat >"$TMP/dead.conf" <<EOF
[route dead]
jwks_url = http://127.0.0.1:$DEAD/jwks.json
allow_http_jwks = true
algs = ES256
[route tls]
jwks_url = https://127.0.0.1:$ISSUER_PORT/jwks.json
algs = ES256
EOF
"$GATE_BIN" --config "$TMP/dead.conf" --check --fetch >"$TMP/check.out" 2>&1
RC=$?
OUT=$(cat "$TMP/check.out")
check "nothing listening: exit 1 (got $RC)" test "$RC" = 1
check "nothing listening: FAILED (connect: ...) with the URL" has "route dead: http://127.0.0.1:$DEAD/jwks.json: FAILED (connect"
check "https to a plain-HTTP port: FAILED (tls or network)" \
  grep -qE "route tls: https://127.0.0.1:$ISSUER_PORT/jwks.json: FAILED \((tls|network|connect)" <<<"$OUT"
check "two routes failed" has "2 routes failed"

"$GATE_BIN" --config "$TMP/gate.conf" --fetch >"$TMP/check.out" 2>&1
RC=$?
check "--fetch without --check: usage error (exit 2, got $RC)" test "$RC" = 2
check "... saying so" grep -q -- "--fetch goes with --check" "$TMP/check.out"
GATE_EXIT_CHECKED=1
finish
