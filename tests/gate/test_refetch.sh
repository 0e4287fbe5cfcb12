#!/usr/bin/env bash
# An issuer whose JWKS max-age is below the gate's jwks_min_ttl, rotating
# fast: the real `jwtkit serve` with the smallest timings it allows that
# the gate can follow at every rotation: max_age 0 (the smallest; a key
# signs the moment it is published, so the gate can never have fetched it
# before its first token) and rotate_every 3s with rotate_check 1s.  The
# keyring keeps whole seconds, so two rotations come 2 to 4 s apart (with
# rotate_every 2s, 1 to 3 s: no more than the gate's smallest
# jwks_cooldown, 1 s).  The gate keeps the set jwks_min_ttl = 2 s and
# refreshes it every second, as often as its cooldown.  The background
# refresh must not hold back the unknown-kid refetch: every fresh token,
# of every key, passes (zero 401 over about 30 s and eight rotations or
# more).  The gate warns about the max-age at start and again at reload,
# in /metrics and in /healthz.
# Skipped (77) when the serve binary is not built.
source "$(dirname "$0")/lib.sh"
SERVE_BIN=${SERVE_BIN:-}
[ -n "$SERVE_BIN" ] || SERVE_BIN=$GATE_TESTS_DIR/../../build/services/serve/jwtkit-serve
[ -x "$SERVE_BIN" ] || { echo "SKIP: jwtkit serve not built ($SERVE_BIN)"; exit 77; }

SERVE_PORT=$(free_port)
mkdir -p "$TMP/serve"
# tokens are asked for 20 times a second: the token buckets are raised
(cd "$TMP/serve" && exec "$SERVE_BIN" --demo --listen "127.0.0.1:$SERVE_PORT" --max-age 0 --rotate-every 3s \
  --rotate-check 1s --token-ttl 30s --token-rate-ip 100/s --token-rate-client 100/s >"$TMP/serve.out" \
  2>"$TMP/serve.log") &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
wait_for 30 curl -sf "http://127.0.0.1:$SERVE_PORT/healthz" || { echo "serve did not start"; cat "$TMP/serve.log"; exit 1; }
ISS=http://127.0.0.1:$SERVE_PORT
JWKS=$ISS/.well-known/jwks.json
# the [gate] section is the block of docs/gateway.md that says it runs here
python3 "$GATE_TESTS_DIR/../lib/doc_block.py" "$GATE_TESTS_DIR/../../docs/gateway.md" \
  'behind a gate with this `[gate]`' >"$TMP/gate.conf" || exit 1
check "docs/gateway.md has the [gate] block" grep -qx 'jwks_min_ttl = 2s' "$TMP/gate.conf"
cat >>"$TMP/gate.conf" <<EOF
[route api]
issuer = $ISS
audience = demo-api
jwks_url = $JWKS
allow_http_jwks = true
algs = ES256
typ = at+jwt
EOF
start_gate
wait_for 10 gate_ready
check "gate ready with the issuer's JWKS" gate_ready
check "serve publishes max-age=0" bash -c "curl -s -D - -o /dev/null '$JWKS' | grep -qi '^Cache-Control: public, max-age=0'"

# fresh tokens for about 30 s, each asked of the gate at once, every 50 ms:
# the first token of a new key comes before the gate's next background
# refresh unless that refresh falls in the few milliseconds between the
# key's activation and the token (once a refetch has aligned the refresh
# with the issuer's rotation, it often does: the count of refetches is
# reported, not checked).  Before the fix every background refresh
# restarted the cooldown, so those first tokens got 401.
python3 - "$ISS" "$GATE_PORT" "$TMP/serve/var/demo-client-secret" "$TMP/results.txt" <<'PYEOF'
import base64, http.client, json, sys, time
iss, gate_port, secret_file, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
secret = open(secret_file).read().strip()
auth = "Basic " + base64.b64encode(("demo:" + secret).encode()).decode()
host, port = iss.split("//")[1].split(":")
end = time.monotonic() + 30
with open(out, "w") as f:
    while time.monotonic() < end:
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        c.request("POST", "/token", body="grant_type=client_credentials",
                  headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status != 200:
            f.write("token-error %d -\n" % r.status)
            time.sleep(0.05)
            continue
        tok = json.loads(body)["access_token"]
        kid = json.loads(base64.urlsafe_b64decode(tok.split(".")[0] + "=="))["kid"]
        g = http.client.HTTPConnection("127.0.0.1", gate_port, timeout=10)
        g.request("GET", "/auth", headers={"Authorization": "Bearer " + tok, "X-Original-URI": "/api/x"})
        gr = g.getresponse()
        gr.read()
        g.close()
        f.write("%d %s\n" % (gr.status, kid))
        time.sleep(0.05)
PYEOF
total=$(grep -c '' "$TMP/results.txt")
allowed=$(grep -c '^204 ' "$TMP/results.txt")
refused=$(grep -c '^401 ' "$TMP/results.txt")
kids=$(awk '$1 == 204 || $1 == 401 { print $2 }' "$TMP/results.txt" | sort -u | wc -l)
triggered=$(metric 'jwtkit_gate_jwks_refetch_total{outcome="triggered"}')
log "$total fresh tokens of $kids keys: $allowed allowed, $refused refused (401); $triggered unknown-kid refetches"
check "the issuer rotated at least eight times during the run ($kids keys)" test "$kids" -ge 9
check "no token request failed at the issuer" test "$(grep -c '^token-error' "$TMP/results.txt")" = 0
check "zero 401 for fresh tokens across the rotations ($refused of $total)" test "$refused" = 0 -a "$allowed" = "$total"
check "no unknown_kid denial" test "$(decisions deny unknown_kid)" = 0

# the warning: log line, metric, /healthz
check "start: the max-age below jwks_min_ttl is logged" \
  test "$(grep -c '"event":"jwks_max_age_below_min_ttl"' "$TMP/gate.log")" = 1
check "the warning names both values" grep -q '"issuer_max_age_s":0,"jwks_min_ttl_s":2' "$TMP/gate.log"
check "metric: jwtkit_gate_jwks_max_age_below_min_ttl 1" \
  test "$(metric "jwtkit_gate_jwks_max_age_below_min_ttl{source=\"$JWKS\"}")" = 1
check "metric: the issuer's max-age (0)" test "$(metric "jwtkit_gate_jwks_issuer_max_age_seconds{source=\"$JWKS\"}")" = 0
check "/healthz carries the warning" bash -c "curl -s 'http://127.0.0.1:$GATE_PORT/healthz' | grep -q 'below jwks_min_ttl'"
kill -HUP "$GATE_PID"
wait_for 5 grep -q '"event":"reloaded"' "$TMP/gate.log"
check "reload: the warning is logged again" \
  wait_for 5 bash -c "test \"\$(grep -c '\"event\":\"jwks_max_age_below_min_ttl\"' '$TMP/gate.log')\" = 2"
finish
