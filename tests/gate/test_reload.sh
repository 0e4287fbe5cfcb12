#!/usr/bin/env bash
# Start-up without a JWKS (not ready, 401, then ready once the issuer is
# up), SIGHUP reload (new policy swapped atomically, token cache flushed,
# JWKS not refetched, a bad file keeps the old config), SIGTERM under
# load, and the command line (--check, --help, usage errors).
source "$(dirname "$0")/lib.sh"

ISSUER_PORT=$(free_port)
write_gate_conf <<'EOF'
[gate]
jwks_cooldown = 2s
[route api]
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = ES256
header X-User = sub
EOF
start_gate
check "no JWKS yet: healthz 503" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GATE_PORT/healthz")" = 503
curl -s "http://127.0.0.1:$GATE_PORT/healthz" >"$TMP/health.json"
check "healthz body says not_ready" grep -q '"status":"not_ready"' "$TMP/health.json"
fake="$(b64url '{"alg":"ES256","kid":"k"}').$(b64url '{"sub":"a"}').$(b64url xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx)"
auth -H "$(bearer "$fake")"
check "no JWKS yet: 401 invalid_token" test "$STATUS:$(www_auth)" = '401:Bearer error="invalid_token"'
check "reason jwks_not_ready" test "$(decisions deny jwks_not_ready)" -ge 1
check "connect errors counted while the issuer is down" test "$(jwks_metric jwtkit_gate_jwks_fetch_total ',result="connect_error"')" -ge 1
start_issuer --algs ES256
wait_for 15 gate_ready
check "issuer up: the gate becomes ready by itself" gate_ready
tok=$(mint ES256 --iss https://issuer.test --aud api --sub alice)
auth -H "$(bearer "$tok")"
check "token passes" test "$STATUS" = 204
tok2=$(mint ES256 --iss https://issuer.test --aud api2 --sub bob --claim 'email="bob@example.test"')
auth -H "$(bearer "$tok2")"
check "aud api2 refused by the first config" test "$STATUS" = 401

# --- reload with another audience and one more header
fetches=$(issuer_count)
sed -i -e 's/^audience = api$/audience = api2/' -e 's/^header X-User = sub$/header X-User = sub\nheader X-Email = email/' \
  "$TMP/gate.conf"
kill -HUP "$GATE_PID"
wait_for 10 bash -c "grep -q '\"event\":\"reloaded\"' '$TMP/gate.log'"
check "reload logged" grep -q '"event":"reloaded"' "$TMP/gate.log"
check "reload counted" test "$(metric 'jwtkit_gate_config_reloads_total{result="ok"}')" = 1
check "config generation 2" test "$(metric jwtkit_gate_config_generation)" = 2
auth -H "$(bearer "$tok2")"
check "after reload: aud api2 passes" test "$STATUS" = 204
check "after reload: the new header is emitted" header_is X-Email bob@example.test
auth -H "$(bearer "$tok")"
check "after reload: aud api refused (the cache did not keep the old allow)" test "$STATUS" = 401
check "the JWKS source was kept: no refetch for the reload" test "$(issuer_count)" = "$fetches"

# --- a broken file: the running config stays
cp "$TMP/gate.conf" "$TMP/gate.conf.good"
echo "this is not = valid" >>"$TMP/gate.conf"
kill -HUP "$GATE_PID"
wait_for 10 bash -c "grep -q '\"event\":\"reload_failed\"' '$TMP/gate.log'"
check "bad reload counted" test "$(metric 'jwtkit_gate_config_reloads_total{result="error"}')" = 1
check "bad reload logged with FILE:LINE" grep -q "reload_failed.*gate.conf:[0-9]*: unknown key" "$TMP/gate.log"
auth -H "$(bearer "$tok2")"
check "old config still serving" test "$STATUS" = 204
cp "$TMP/gate.conf.good" "$TMP/gate.conf"

# --- SIGTERM while requests are running
for i in $(seq 4); do
  (for j in $(seq 300); do
    curl -s -o /dev/null --max-time 5 -H "$(bearer "$tok2")" -H "X-Original-URI: /x" "http://127.0.0.1:$GATE_PORT/auth" || true
  done) &
  PIDS+=("$!")
done
sleep 1
stop_gate

# --- the command line
"$GATE_BIN" --config "$TMP/gate.conf" --check >"$TMP/check.out" 2>&1
check "--check on a good config: exit 0" test $? = 0
check "--check prints OK" grep -q "configuration OK (1 route)" "$TMP/check.out"
printf '[route a]\njwks_url = https://x.test/j\nalgs = HS256\n' >"$TMP/bad.conf"
"$GATE_BIN" --config "$TMP/bad.conf" --check >"$TMP/check.out" 2>&1
check "--check on a bad config: exit 2" test $? = 2
check "the error names the line" grep -q 'bad.conf:3:' "$TMP/check.out"
"$GATE_BIN" --help >"$TMP/help.out" 2>&1
check "--help: exit 0 with usage" bash -c "[ $? = 0 ] && grep -q 'Usage:' '$TMP/help.out'"
"$GATE_BIN" >/dev/null 2>&1
check "no --config: exit 2" test $? = 2
"$GATE_BIN" --config "$TMP/gate.conf" --bogus >/dev/null 2>&1
check "unknown option: exit 2" test $? = 2
"$GATE_BIN" --config "$TMP/gate.conf" --listen nonsense >/dev/null 2>&1
check "bad --listen: exit 2" test $? = 2
# (bounded: a gate that took port 0 would serve until stopped)
timeout 10 "$GATE_BIN" --config "$TMP/gate.conf" --listen 127.0.0.1:0 >"$TMP/port0.out" 2>&1
check "--listen with port 0: exit 2, saying why" bash -c "[ $? = 2 ] && grep -q 'the port must be 1..65535' '$TMP/port0.out'"
# listen in the file: checked when the file is read, with its line
printf '[gate]\nlisten = 127.0.0.1:0\n[route a]\njwks_url = https://x.test/j\nalgs = ES256\n' >"$TMP/port0.conf"
"$GATE_BIN" --config "$TMP/port0.conf" --check >"$TMP/check.out" 2>&1
check "listen = ADDR:0 in the file: exit 2 with FILE:LINE" \
  bash -c "[ $? = 2 ] && grep -q 'port0.conf:2: .listen.: the port must be 1..65535' '$TMP/check.out'"
# localhost works, as in jwtkit serve
GATE_PORT=$(free_port)
"$GATE_BIN" --config "$TMP/gate.conf" --listen "localhost:$GATE_PORT" >>"$TMP/gate.out" 2>>"$TMP/gate.log" &
GATE_PID=$!
PIDS+=("$GATE_PID")
wait_for 20 curl -s -o /dev/null "http://127.0.0.1:$GATE_PORT/healthz"
check "--listen localhost:PORT serves on 127.0.0.1" \
  test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GATE_PORT/healthz")" = 200
stop_gate
finish
