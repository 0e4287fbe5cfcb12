#!/usr/bin/env bash
# Hostile clients against the gate, on loopback (tests/lib/hostile_client.py
# and tests/lib/raw_http.py), each attack a few seconds:
#   1. connection slots: 1,100 connections at a time that send half a
#      request line and close (bursts, one after the other), that stay
#      idle, or that send a header line a second (slowloris), against the
#      default connection_limit of 1024.  Legitimate requests on new
#      connections (/healthz, /auth) and through nginx (keep-alive upstream)
#      all succeed during the attack and in the second after it; the
#      attack's connections are gone at once after it; libmicrohttpd's
#      messages about them stay a handful of lines.
#   2. framing: two Content-Length fields, "Content-Length: 29, 4", an
#      unknown transfer coding, both framings, whitespace before the colon:
#      one answer (400 or 501) with Connection: close, the connection
#      closed, and the request smuggled behind never answered.
#   3. bodies: /auth takes none: a Content-Length body and a chunked stream
#      get 413 and the connection is closed at once.
#   4. the reserve: with connection_limit 16, an established keep-alive
#      peer and 15 requests parked on a hanging JWKS refetch fill it; a new
#      connection still gets /healthz (200) and /metrics, /auth on it gets
#      503 with Retry-After, and the peer keeps getting its answers.
# Needs about 2,300 file descriptors: the soft limit is raised (skipped, 77,
# when it cannot be).
source "$(dirname "$0")/lib.sh"
NEED_FDS=3000
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$NEED_FDS" ]; then
  ulimit -Sn "$NEED_FDS" 2>/dev/null || ulimit -n "$NEED_FDS" 2>/dev/null || {
    echo "SKIP: cannot raise the open file limit to $NEED_FDS (ulimit -n is $(ulimit -n))"
    exit 77
  }
fi
HC=$GATE_TESTS_DIR/../lib/hostile_client.py
RAW=$GATE_TESTS_DIR/../lib/raw_http.py
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
open_at_most() { [ "$(metric jwtkit_gate_connections_open)" -le "$1" ]; } # nginx keeps up to 32

start_issuer --cache-control max-age=3600 --algs ES256
write_gate_conf <<'EOF'
[route api]
match_path_prefix = /api/
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = ES256
header X-User = sub
EOF
start_gate
start_upstream
start_nginx
wait_for 10 gate_ready
good=$(mint ES256 --iss https://issuer.test --aud api --sub alice)
call /api/x -H "$(bearer "$good")"
check "a valid token passes through nginx" test "$STATUS" = 200

# ------------------------------------------------ 1. connection slots
: >"$TMP/figures.txt"
for mode in half idle slowloris; do
  python3 "$HC" --port "$GATE_PORT" --mode "$mode" --conns 1100 --duration 3 --after 1 \
    --probe "$GATE_PORT GET /healthz 200" \
    --probe "$GATE_PORT GET /auth 204 Authorization: Bearer $good|X-Original-URI: /api/x" \
    --probe "$NGINX_PORT GET /api/x 200 Authorization: Bearer $good" >"$TMP/$mode.json"
  during=$(jget "$TMP/$mode.json" '"%d/%d" % (d["during"]["ok"], d["during"]["total"])')
  after=$(jget "$TMP/$mode.json" '"%d/%d" % (d["after"]["ok"], d["after"]["total"])')
  slow=$(jget "$TMP/$mode.json" 'max(d["during"]["slowest_ms"], d["after"]["slowest_ms"])')
  opened=$(jget "$TMP/$mode.json" 'd["opened"]')
  echo "$mode: $opened attacking connections in 3 s; legitimate during $during, after $after, slowest ${slow} ms" |
    tee -a "$TMP/figures.txt"
  check "$mode: the attacker opened 1,100 connections or more ($opened)" test "$opened" -ge 1100
  check "$mode: every legitimate request during the attack succeeded ($during)" \
    jget "$TMP/$mode.json" 'exit(0 if d["during"]["ok"] == d["during"]["total"] >= 20 else 1)'
  check "$mode: and every one in the second after it ($after)" \
    jget "$TMP/$mode.json" 'exit(0 if d["after"]["ok"] == d["after"]["total"] >= 5 else 1)'
  check "$mode: the attack's connections are gone within a second (open: $(metric jwtkit_gate_connections_open))" \
    wait_for 1 open_at_most 40
done
check "half requests: closed as their peers went away (peer_closed counted)" \
  test "$(metric 'jwtkit_gate_connections_closed_total{reason="peer_closed"}')" -ge 1000
check "past the limit, connections that never sent a request were closed for room (evicted counted)" \
  test "$(metric 'jwtkit_gate_connections_closed_total{reason="evicted"}')" -ge 100
lines=$(grep -c '"event":"http_server"' "$TMP/gate.log")
check "libmicrohttpd's messages about the attacks stay bounded ($lines lines)" test "$lines" -le 30

# ----------------------------------------------------------- 2. framing
raw() { python3 "$RAW" send "$GATE_PORT" "$@"; }
SMUGGLED='GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
framing() { # NAME EXPECTED-STATUS REQUEST-HEAD
  raw "$3$SMUGGLED" >"$TMP/f.json"
  local got
  got=$(jget "$TMP/f.json" '"%s responses=%d close=%s closed=%s %.2fs" % (d["status"], d["responses"], d["connection_close"], d["closed"], d["seconds"])')
  check "$1 -> $2, Connection: close, closed, the request behind it never answered ($got)" \
    jget "$TMP/f.json" "exit(0 if d['status'] == '$2' and d['responses'] == 1 and d['connection_close'] and d['closed'] and d['seconds'] < 2 else 1)"
}
H='GET /auth HTTP/1.1\r\nHost: x\r\nX-Original-URI: /api/x\r\n'
framing "two different Content-Length fields" 400 "${H}Content-Length: 5\r\nContent-Length: 0\r\n\r\nabcde"
framing "two equal Content-Length fields" 400 "${H}Content-Length: 0\r\nContent-Length: 0\r\n\r\n"
framing "Content-Length: 29, 4 (libmicrohttpd's own answer, written once)" 400 "${H}Content-Length: 29, 4\r\n\r\n"
framing "Content-Length: +5" 400 "${H}Content-Length: +5\r\n\r\nabcde"
framing "Transfer-Encoding: xchunked" 501 "${H}Transfer-Encoding: xchunked\r\n\r\n"
framing "Transfer-Encoding: gzip, chunked" 501 "${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
framing "Transfer-Encoding and Content-Length" 400 "${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
framing "whitespace before the colon" 400 "${H}Content-Length : 5\r\n\r\nabcde"
raw "${H}Authorization: Bearer $good\r\n\r\n${H}Authorization: Bearer $good\r\n\r\n" >"$TMP/f.json"
check "a well-framed pipelined pair still gets two answers" \
  jget "$TMP/f.json" 'exit(0 if d["status"] == "204" and d["responses"] == 2 else 1)'

# ------------------------------------------------------------ 3. bodies
framing "a body by Content-Length" 413 "POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"
python3 "$RAW" stream "$GATE_PORT" 'POST /auth HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' 5 \
  >"$TMP/stream.json"
got=$(jget "$TMP/stream.json" '"%s, %d body bytes sent, closed after %.2f s" % (d["status"], d["body_bytes_sent"], d["seconds"])')
echo "chunked body stream: $got" | tee -a "$TMP/figures.txt"
check "a chunked body stream gets 413 and is cut off at once ($got)" \
  jget "$TMP/stream.json" 'exit(0 if d["status"] == "413" and d["closed"] and d["seconds"] < 2 and d["body_bytes_sent"] < 64 * 2**20 else 1)'
check "the gate still answers" gate_ready
n=$(grep -c '"event":"request_refused"' "$TMP/gate.log")
check "the 11 refused requests wrote at most 5 lines per 10 s ($n)" test "$n" -le 10

# ----------------------------------------------------------- 4. reserve
stop_gate
write_gate_conf "$TMP/gate2.conf" <<'EOF'
[gate]
connection_limit = 16
jwks_timeout = 60s
jwks_cooldown = 1s
[route api]
match_path_prefix = /api/
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = ES256
EOF
GATE_PORT=
start_gate "$TMP/gate2.conf"
wait_for 10 gate_ready
unknown=$(mint ES256 --iss https://issuer.test --aud api --sub x --kid not-in-the-set)
# the peer: one keep-alive connection, a request every 200 ms until the
# reserve checks are done (the file peer.stop), at least 1 s
rm -f "$TMP/peer.stop"
python3 - "$GATE_PORT" "$good" "$TMP/peer.stop" >"$TMP/peer.txt" <<'PYEOF' &
import http.client, os, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
start = time.monotonic()
while time.monotonic() < start + 1 or not os.path.exists(sys.argv[3]):
    try:
        c.request("GET", "/auth", headers={"Authorization": "Bearer " + sys.argv[2], "X-Original-URI": "/api/x"})
        r = c.getresponse()
        r.read()
        print(r.status, flush=True)
    except Exception as e:
        print("error:" + type(e).__name__, flush=True)
    time.sleep(0.2)
PYEOF
PEER=$!
wait_for 10 test -s "$TMP/peer.txt"
# held until the checks below are done (issuer_mode ok lets it go)
issuer_mode hang 120
# 15 requests with an unknown kid, parked on the refetch the issuer holds
python3 - "$GATE_PORT" "$unknown" >"$TMP/parked.txt" <<'PYEOF' &
import socket, sys, time
req = ("GET /auth HTTP/1.1\r\nHost: x\r\nX-Original-URI: /api/x\r\nAuthorization: Bearer %s\r\n\r\n" % sys.argv[2]).encode()
socks = []
for _ in range(15):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=120)
    s.sendall(req)
    socks.append(s)
for s in socks:
    try:
        print(s.recv(100).split(b"\r\n")[0].decode(), flush=True)
    except OSError as e:
        print("error:" + type(e).__name__, flush=True)
PYEOF
PARKED=$!
wait_for 30 test "$(metric jwtkit_gate_suspended_requests)" = 15
check "15 requests parked on the hanging refetch (with the peer: the limit of 16)" \
  test "$(metric jwtkit_gate_suspended_requests)" = 15
sleep 0.3 # the connections of the checks above are gone
python3 "$RAW" send "$GATE_PORT" 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >"$TMP/r1.json"
check "reserve: /healthz on a new connection -> 200" jget "$TMP/r1.json" 'exit(0 if d["status"] == "200" else 1)'
python3 "$RAW" send "$GATE_PORT" 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n' >"$TMP/r2.json"
check "reserve: /metrics on a new connection -> 200" jget "$TMP/r2.json" 'exit(0 if d["status"] == "200" else 1)'
python3 "$RAW" send "$GATE_PORT" "GET /auth HTTP/1.1\r\nHost: x\r\nX-Original-URI: /api/x\r\nAuthorization: Bearer $good\r\n\r\n" >"$TMP/r3.json"
check "reserve: /auth on a new connection -> 503, Retry-After, Connection: close" \
  jget "$TMP/r3.json" 'exit(0 if d["status"] == "503" and d["retry_after"] and d["connection_close"] and d["closed"] else 1)'
check "reserve admissions counted" test "$(metric 'jwtkit_gate_connections_reserve_total{outcome="admitted"}')" -ge 3
check "reserve refusals counted" test "$(metric 'jwtkit_gate_connections_reserve_total{outcome="refused"}')" = 1
touch "$TMP/peer.stop"
wait "$PEER"
issuer_mode ok
wait "$PARKED"
check "the established keep-alive peer got every answer meanwhile ($(sort "$TMP/peer.txt" | uniq -c | tr '\n' ' '))" \
  test "$(grep -c '^204$' "$TMP/peer.txt")" -ge 3 -a "$(grep -vc '^204$' "$TMP/peer.txt")" = 0
check "the parked requests were answered once the fetch ended" test "$(grep -c ' 401 ' "$TMP/parked.txt")" = 15
cat "$TMP/figures.txt"
finish
