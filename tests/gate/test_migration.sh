#!/usr/bin/env bash
# Migration mode HS256 -> RS256: HS256 tokens with the legacy secret pass
# until legacy_deadline (counted, also per minute), RS256 from the JWKS
# always; after the deadline HS256 is refused; an HS256 token signed with
# the issuer's public key never passes; the secret never reaches the logs.
source "$(dirname "$0")/lib.sh"

start_issuer --cache-control max-age=300 --algs RS256
# the gate ignores one trailing newline (as jwtkit serve does); the old
# token service signed with the bare secret
head -c 48 /dev/urandom | base64 -w0 | tr -d '\n' >"$TMP/legacy.raw"
{ cat "$TMP/legacy.raw"; echo; } >"$TMP/legacy.key"
chmod 600 "$TMP/legacy.key" "$TMP/legacy.raw"
head -c 48 /dev/urandom | base64 -w0 | tr -d '\n' >"$TMP/other.key"
GATE_PORT=$(free_port)
start_upstream
start_nginx # before the gate: the deadline below must not be eaten by start-up time
deadline_epoch=$(($(date +%s) + 7))
deadline=$(date -u -d "@$deadline_epoch" +%Y-%m-%dT%H:%M:%SZ)
write_gate_conf <<EOF
[route api]
match_path_prefix = /api/
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = RS256
header X-User = sub
legacy_hs256_secret_file = @TMP@/legacy.key
legacy_deadline = $deadline
EOF
start_gate
wait_for 10 gate_ready
claims=(--iss https://issuer.test --aud api)
legacy() { "$MINT_BIN" --alg HS256 --secret-file "$TMP/legacy.raw" "${claims[@]}" "$@"; }

tok=$(legacy --sub legacy-user)
call /api/x -H "$(bearer "$tok")"
check "before the deadline: legacy HS256 token passes (secret file with a trailing newline)" test "$STATUS" = 200
check "its claims reach the upstream" body_has "X-User: legacy-user"
call /api/x -H "$(bearer "$tok")"
check "again (from the cache): passes" test "$STATUS" = 200
check "legacy acceptances counted, cached ones too" test "$(metric jwtkit_gate_legacy_hs256_accepted_total)" = 2
check "per-minute gauge sees them" test "$(metric jwtkit_gate_legacy_hs256_accepted_last_minute)" = 2
check "deadline exported" test "$(metric 'jwtkit_gate_legacy_hs256_deadline_seconds{route="api"}')" = "$deadline_epoch"
rs=$(mint RS256 "${claims[@]}" --sub rs-user)
call /api/x -H "$(bearer "$rs")"
check "RS256 from the JWKS passes" test "$STATUS" = 200
confused=$("$MINT_BIN" --alg HS256 --secret-file "$ISSUER_DIR/RS256.pub.pem" --kid "$(cat "$ISSUER_DIR/RS256.kid")" \
  "${claims[@]}" --sub mallory)
call /api/x -H "$(bearer "$confused")"
check "HS256 signed with the RSA public key (with its kid) -> 401" test "$STATUS" = 401
confused2=$("$MINT_BIN" --alg HS256 --secret-file "$ISSUER_DIR/RS256.pub.pem" "${claims[@]}" --sub mallory)
call /api/x -H "$(bearer "$confused2")"
check "HS256 signed with the RSA public key (no kid) -> 401" test "$STATUS" = 401
call /api/x -H "$(bearer "$("$MINT_BIN" --alg HS256 --secret-file "$TMP/other.key" "${claims[@]}" --sub x)")"
check "HS256 with another secret -> 401" test "$STATUS" = 401
check "they failed as bad signatures" test "$(decisions deny bad_signature)" = 3
call /api/x -H "$(bearer "$("$MINT_BIN" --alg HS256 --secret-file "$TMP/legacy.raw" --iss https://issuer.test \
  --aud other --sub x)")"
check "legacy tokens get the same claim checks (wrong aud -> 401)" test "$STATUS" = 401

now=$(date +%s)
[ "$now" -le "$deadline_epoch" ] && sleep $((deadline_epoch - now + 1))
call /api/x -H "$(bearer "$tok")"
check "after the deadline: the same (cached) legacy token -> 401" test "$STATUS" = 401
call /api/x -H "$(bearer "$(legacy --sub late)")"
check "after the deadline: a fresh legacy token -> 401" test "$STATUS" = 401
check "refusals say legacy_deadline_passed" test "$(decisions deny legacy_deadline_passed)" -ge 1
check "and are counted" test "$(metric jwtkit_gate_legacy_hs256_refused_after_deadline_total)" -ge 1
call /api/x -H "$(bearer "$rs")"
check "after the deadline: RS256 still passes" test "$STATUS" = 200
check "acceptances stopped at 2" test "$(metric jwtkit_gate_legacy_hs256_accepted_total)" = 2
check "the secret never appears in the logs" bash -c "! grep -qF '$(head -c 20 "$TMP/legacy.key")' '$TMP/gate.log'"
stop_gate

# --- a deadline in the past
log "phase 2: deadline in the past"
GATE_PORT=
sed "s/^legacy_deadline = .*/legacy_deadline = 2020-01-01T00:00:00Z/" "$TMP/gate.conf" >"$TMP/past.conf"
start_gate "$TMP/past.conf"
wait_for 10 gate_ready
auth -H "$(bearer "$(legacy --sub y)")"
check "deadline in the past: legacy token -> 401" test "$STATUS" = 401
check "route log says the deadline passed" grep -q '"legacy_deadline_passed":true' "$TMP/gate.log"
auth -H "$(bearer "$rs")"
check "deadline in the past: RS256 passes" test "$STATUS" = 204
stop_gate

# --- the secret file is checked
chmod 640 "$TMP/legacy.key"
"$GATE_BIN" --config "$TMP/past.conf" --check >"$TMP/check.out" 2>&1
check "group-readable secret file refused (exit 2)" test $? = 2
check "with a message naming the file mode and the fix" grep -q 'has mode 0640.*chmod 600' "$TMP/check.out"
chmod 600 "$TMP/legacy.key"
cp "$ISSUER_DIR/RS256.pub.pem" "$TMP/legacy.key"
chmod 600 "$TMP/legacy.key"
"$GATE_BIN" --config "$TMP/past.conf" --check >"$TMP/check.out" 2>&1
check "a PEM file as the legacy secret is refused" test $? = 2
check "saying why" grep -q 'the secret is a PEM block: a key is never an HMAC secret' "$TMP/check.out"
printf 'short' >"$TMP/legacy.key"
"$GATE_BIN" --config "$TMP/past.conf" --check >"$TMP/check.out" 2>&1
check "a secret shorter than 32 bytes is refused" test $? = 2

# --- the route of docs/gateway.md's migration steps, with this test's secret
cp "$TMP/legacy.raw" "$TMP/legacy.key"
python3 "$GATE_TESTS_DIR/../lib/doc_block.py" "$GATE_TESTS_DIR/../../docs/gateway.md" \
  'minting plus its longest token lifetime — and configure it:' >"$TMP/doc.conf" || exit 1
check "docs/gateway.md's migration route names the secret file" grep -q '^legacy_hs256_secret_file = /etc/jwtkit/legacy-hs256.key$' "$TMP/doc.conf"
sed -i "s#^legacy_hs256_secret_file = .*#legacy_hs256_secret_file = $TMP/legacy.key#" "$TMP/doc.conf"
"$GATE_BIN" --config "$TMP/doc.conf" --check >"$TMP/check.out" 2>&1
check "docs/gateway.md's migration route passes --check" test $? = 0
finish
