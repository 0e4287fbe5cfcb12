#!/usr/bin/env bash
# auth_jwt_jwks: the module's JWK Set engine with two worker processes and
# the test issuer (tests/gate/issuer.c).  One fetch serves both workers
# (the set is in shared memory); a token signed with a rotated-in key waits
# for one refetch and passes; a flood of unknown kids causes at most one
# more fetch per cooldown; the set is kept while the issuer is down; a set
# that was never fetched answers 503; a worker killed with SIGKILL is
# replaced by one that uses the set in shared memory without fetching; an
# issuer that hangs blocks no worker, one that answers garbage gives 503.
source "$(dirname "$0")/lib.sh"

start_issuer --cache-control max-age=300 --keep 2
start_upstream
DEAD_PORT=$(free_port)
# a second issuer whose JWK Set answers hang, then garbage (its control file)
SLOW_PORT=$(free_port)
mkdir -p "$TMP/slow"
echo "hang 30" >"$TMP/slow.control"
"$ISSUER_BIN" --port "$SLOW_PORT" --state "$TMP/slow" --control "$TMP/slow.control" >>"$TMP/slow.log" 2>&1 &
PIDS+=("$!")
wait_for 20 test -f "$TMP/slow/ready" || { echo "the second issuer did not start"; exit 1; }
NGINX_WORKERS=2
start_nginx_module <<EOC
    auth_jwt_algs ES256 RS256;
    auth_jwt_issuer https://issuer.test;
    auth_jwt_audience api;
    add_header X-Worker \$pid always;
    add_header X-Jwt-Error \$jwt_error always;
    location /mod/ {
      auth_jwt "api";
      auth_jwt_jwks $(JWKS_URL) allow_http;
      proxy_set_header X-User \$jwt_claim_sub;
      proxy_pass http://app;
    }
    location = /status { auth_jwt_status; allow 127.0.0.1; deny all; }
    location = /status.json { auth_jwt_status json; allow 127.0.0.1; deny all; }
    location /slow/ {
      auth_jwt "api";
      auth_jwt_jwks http://127.0.0.1:$SLOW_PORT/jwks.json allow_http;
      proxy_pass http://app;
    }
    location /dead/ {
      auth_jwt "api";
      auth_jwt_jwks http://127.0.0.1:$DEAD_PORT/jwks.json allow_http;
      proxy_pass http://app;
    }
EOC
# reuseport: the kernel spreads new connections over both workers
sed -i "s#listen 127.0.0.1:$NGINX_PORT;#listen 127.0.0.1:$NGINX_PORT reuseport;#" "$NGINX_DIR/nginx.conf"
kill -HUP "$(cat "$NGINX_DIR/nginx.pid")"
sleep 1

ok=(--iss https://issuer.test --aud api --sub alice)
worker() { grep -i '^X-Worker:' <<<"$HEADERS" | sed 's/^[^:]*: *//'; }

tok=$(mint ES256 "${ok[@]}")
call /mod/x -H "Authorization: Bearer $tok"
check "a good token passes (the set is fetched at start, or the request waits for it)" test "$STATUS" = 200
declare -A seen=()
for _ in $(seq 200); do
  call /mod/x -H "Authorization: Bearer $tok"
  [ "$STATUS" = 200 ] || break
  seen[$(worker)]=1
  [ "${#seen[@]}" -ge 2 ] && break
done
check "both workers answered 200 (got ${#seen[@]} worker(s), last status $STATUS)" test "${#seen[@]}" -ge 2 -a "$STATUS" = 200
check "one fetch for both workers (the issuer counted $(issuer_count))" test "$(issuer_count)" = 1

# rotation: the new key's kid is unknown until a refetch
issuer_rotate
new=$(mint ES256 "${ok[@]}")
call /mod/x -H "Authorization: Bearer $new"
check "after the issuer rotated: a token of the new key passes at once (one refetch)" test "$STATUS" = 200
check "... after exactly one more fetch (issuer: $(issuer_count))" test "$(issuer_count)" = 2
seen=()
for _ in $(seq 200); do
  call /mod/x -H "Authorization: Bearer $new"
  [ "$STATUS" = 200 ] || break
  seen[$(worker)]=1
  [ "${#seen[@]}" -ge 2 ] && break
done
check "both workers accept the new key without fetching it again (${#seen[@]} workers, status $STATUS)" \
  test "${#seen[@]}" -ge 2 -a "$STATUS" = 200
check "... still 2 fetches (issuer: $(issuer_count))" test "$(issuer_count)" = 2
call /mod/x -H "Authorization: Bearer $tok"
check "the old key is still in the set (--keep 2): its token passes" test "$STATUS" = 200

# unknown-kid flood: within the cooldown (30 s since the rotation's refetch) no fetch
before=$(issuer_count)
t0=$(now_ms)
fails=0
while read -r t; do
  call /mod/x -H "Authorization: Bearer $t"
  [ "$STATUS" = 401 ] || fails=$((fails + 1))
done < <(mint ES256 "${ok[@]}" --kid 'flood-{n}' --count 40)
t1=$(now_ms)
check "40 random kids: each refused 401 ($fails not)" test "$fails" = 0
check "... without waiting for a fetch (in $((t1 - t0)) ms, cooldown)" test $((t1 - t0)) -lt 20000
check "... and without any fetch (issuer: $before -> $(issuer_count))" test "$(issuer_count)" -le $((before + 1))
check "the reason is unknown_kid" grep -qix 'X-Jwt-Error: unknown_kid' <<<"$HEADERS"

# auth_jwt_status: the counters of both workers (shared memory) and the set
status() { curl -s --max-time 5 "http://127.0.0.1:$NGINX_PORT/status"; }
metric_of() { status | awk -v m="$1" '$1 == m { v = $2 } END { print (v == "" ? 0 : v) }'; }
src="source=\"$(JWKS_URL)\""
check "status: the 40 unknown kids and more counted over both workers ($(metric_of 'jwtkit_nginx_decisions_total{result="deny",reason="unknown_kid"}'))" \
  test "$(metric_of 'jwtkit_nginx_decisions_total{result="deny",reason="unknown_kid"}')" -ge 40
check "status: allows counted ($(metric_of 'jwtkit_nginx_decisions_total{result="allow",reason="verified"}'))" \
  test "$(metric_of 'jwtkit_nginx_decisions_total{result="allow",reason="verified"}')" -ge 5
check "status: refetches refused in the cooldown counted" test "$(metric_of 'jwtkit_nginx_refetch_total{outcome="cooldown"}')" -ge 40
check "status: the parked refetch counted" test "$(metric_of 'jwtkit_nginx_refetch_total{outcome="waited"}')" -ge 1
check "status: 2 good fetches of the issuer's set" test "$(metric_of "jwtkit_nginx_jwks_fetches_total{$src,result=\"ok\"}")" = 2
check "status: generation 2" test "$(metric_of "jwtkit_nginx_jwks_generation{$src}")" = 2
check "status: the set's keys" test "$(metric_of "jwtkit_nginx_jwks_keys{$src}")" -ge 2
check "status: not stale" test "$(metric_of "jwtkit_nginx_jwks_stale{$src}")" = 0
check "status: Prometheus text" bash -c "curl -sI 'http://127.0.0.1:$NGINX_PORT/status' | grep -qi '^Content-Type: text/plain; version=0.0.4'"
# the JSON form: the same numbers, read one after the other (no request in between)
curl -s --max-time 5 "http://127.0.0.1:$NGINX_PORT/status" >"$TMP/status.txt"
curl -s --max-time 5 -D "$TMP/status.hdr" "http://127.0.0.1:$NGINX_PORT/status.json" >"$TMP/status.json"
check "status json: application/json" grep -qi '^Content-Type: application/json' "$TMP/status.hdr"
check "status json: the same counters and set as the Prometheus page" python3 - "$TMP/status.txt" "$TMP/status.json" "$(JWKS_URL)" <<'PY'
import json, re, sys
prom = {}
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    name, value = line.rsplit(" ", 1)
    prom[name] = int(value)
j = json.load(open(sys.argv[2]))
url = sys.argv[3]
want = {}
for result, reasons in j["decisions"].items():
    for reason, n in reasons.items():
        if n:
            want['jwtkit_nginx_decisions_total{result="%s",reason="%s"}' % (result, reason)] = n
for o in ("waited", "cooldown"):
    want['jwtkit_nginx_refetch_total{outcome="%s"}' % o] = j["refetch"][o]
assert len(j["jwks"]) == 3 and url in [x["source"] for x in j["jwks"]], j["jwks"]
for x in j["jwks"]:
    for r, n in x["fetches"].items():
        if n or r == "ok":
            want['jwtkit_nginx_jwks_fetches_total{source="%s",result="%s"}' % (x["source"], r)] = n
    s = 'source="%s"' % x["source"]
    want["jwtkit_nginx_jwks_generation{%s}" % s] = x["generation"]
    want["jwtkit_nginx_jwks_keys{%s}" % s] = x["keys"]
    want["jwtkit_nginx_jwks_stale{%s}" % s] = int(x["stale"])
    if x["age_seconds"] is None:
        assert x["generation"] == 0, x
(src,) = [x for x in j["jwks"] if x["source"] == url]
assert src["generation"] == 2 and src["keys"] >= 2 and src["stale"] is False, src
assert j["decisions"]["deny"]["unknown_kid"] >= 40 and j["decisions"]["allow"]["verified"] >= 5, j["decisions"]
got = {k: v for k, v in prom.items() if "age_seconds" not in k}
assert got == want, (sorted(set(got.items()) ^ set(want.items())))
PY

# a worker killed with SIGKILL: nginx starts another, which takes the set
# from shared memory (no fetch)
victim=$(worker)
before=$(issuer_count)
kill -KILL "$victim"
seen=()
for _ in $(seq 300); do
  call /mod/x -H "Authorization: Bearer $new"
  w=$(worker)
  [ -n "$w" ] && [ "$w" != "$victim" ] && seen[$w]=1
  [ "${#seen[@]}" -ge 2 ] && break
  sleep 0.02
done
check "after SIGKILL of worker $victim: two workers answer again, the new one 200 (${#seen[@]} workers, status $STATUS)" \
  test "${#seen[@]}" -ge 2 -a "$STATUS" = 200
check "... with the set from shared memory: no fetch (issuer: $before -> $(issuer_count))" test "$(issuer_count)" = "$before"

# the issuer goes away: the set in memory keeps serving
stop_issuer
call /mod/x -H "Authorization: Bearer $new"
check "issuer down: the set held is still used (200)" test "$STATUS" = 200

# an issuer that hangs: the fetch waits in a thread, the workers keep
# serving; the request that needs that set waits for the end of a fetch
# that started after it (so at least one fetch timeout, 5 s; at most its
# bound, 2 x 5 s + 5 s) and gets 503
slow_tok=$("$MINT_BIN" --alg ES256 --key "$TMP/slow/ES256.key.pem" --kid-file "$TMP/slow/ES256.kid" "${ok[@]}")
t0=$(now_ms)
curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H "Authorization: Bearer $slow_tok" \
  "http://127.0.0.1:$NGINX_PORT/slow/x" >"$TMP/slow.status" &
SLOW_REQ=$!
sleep 0.5
fast=0
for _ in $(seq 20); do
  call /mod/x -H "Authorization: Bearer $new"
  [ "$STATUS" = 200 ] && fast=$((fast + 1))
done
t1=$(now_ms)
kill -0 "$SLOW_REQ" 2>/dev/null
pending=$?
check "while the JWK Set fetch hangs, both workers serve: 20 of 20 other requests 200 ($fast)" test "$fast" = 20
check "... all answered while the request that needs the set still waits (in $((t1 - t0)) ms: no worker blocked)" \
  test "$pending" = 0
wait "$SLOW_REQ"
t2=$(now_ms)
check "the request that needs the hanging set: 503 once a fetch after it timed out ($(cat "$TMP/slow.status") after $((t2 - t0)) ms)" \
  test "$(cat "$TMP/slow.status")" = 503 -a $((t2 - t0)) -ge 4000 -a $((t2 - t0)) -lt 25000
check "the timeout is in the error log" grep -q "auth_jwt_jwks: http://127.0.0.1:$SLOW_PORT/jwks.json: timeout" "$NGINX_DIR/logs/error.log"
echo garbage >"$TMP/slow.control"
wait_for 20 grep -q "auth_jwt_jwks: http://127.0.0.1:$SLOW_PORT/jwks.json: invalid" "$NGINX_DIR/logs/error.log"
check "an issuer answering garbage: the fetch is 'invalid' in the error log" \
  grep -q "auth_jwt_jwks: http://127.0.0.1:$SLOW_PORT/jwks.json: invalid" "$NGINX_DIR/logs/error.log"
call /slow/x -H "Authorization: Bearer $slow_tok"
check "... and the request is 503 (no set), not 401 or 500" test "$STATUS" = 503

# a source that was never fetched: 503, not 401 and not 500
call /dead/x -H "Authorization: Bearer $new"
check "no set could be fetched: 503 (got $STATUS)" test "$STATUS" = 503
check "... with \$jwt_error jwks_not_ready" grep -qix 'X-Jwt-Error: jwks_not_ready' <<<"$HEADERS"
check "the failed fetches are in the error log" grep -q "auth_jwt_jwks: http://127.0.0.1:$DEAD_PORT/jwks.json: connect_error" "$NGINX_DIR/logs/error.log"
check "no worker crashed but the one killed" \
  bash -c "! grep -E 'exited on signal|segfault' '$NGINX_DIR/logs/error.log' '$TMP/nginx.log' | grep -v 'signal 9'"
if [ "$FAILS" -ne 0 ]; then
  echo "--- nginx error log (auth_jwt lines, last 30)"
  grep auth_jwt "$NGINX_DIR/logs/error.log" | tail -30
fi
finish
