#!/usr/bin/env bash
# Bounded load test of `jwtkit serve` (30 s at most): /.well-known/jwks.json
# and POST /token under concurrent keep-alive connections, with wrk when it
# is installed (Debian package wrk), else xargs + curl.  Asserts zero errors
# and flat memory: VmRSS after the run is within 10% of VmRSS after the
# warm-up.  Prints the throughput of both endpoints.
#
# LOAD_SECONDS (default 5) is the measuring time per endpoint.
set -u
. "$(dirname "$0")/lib.sh"

SECS=${LOAD_SECONDS:-5}
CONNS=${LOAD_CONNECTIONS:-32}
LOG=$WORK/server.log
CLIENTS=$WORK/clients.conf
SECRET=$("$SERVE_BIN" client add loadtest --audience https://api.example --scopes "read write" --clients "$CLIENTS" 2>/dev/null)
check "load client registered" test ${#SECRET} -eq 43
# info-level logs go to a file, as they would in production (successful
# requests are logged at debug, so they write nothing); one client from one
# address at full speed is what the token buckets exist to stop: they are
# off here (tests/serve/hostile_test.sh tests them)
check "server starts" start_server "$LOG" --keyring "$WORK/ring" --clients "$CLIENTS" --log-level info \
  --token-rate-ip off --token-rate-client off
AUTH=$(printf 'loadtest:%s' "$SECRET" | base64 -w0)

RSS0=$(rss_kb "$SPID")

have_wrk=0
command -v wrk >/dev/null 2>&1 && have_wrk=1

cat >"$WORK/token.lua" <<EOF
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $AUTH"
EOF
cat >"$WORK/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d p99_us=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(99)))
end
EOF
cat "$WORK/report.lua" >>"$WORK/token.lua"

# run NAME SECONDS: sets REQS, ERRS, RPS, P99
run() {
  local name=$1 secs=$2 out=$WORK/$1.out
  if [ $have_wrk = 1 ]; then
    if [ "$name" = "${name#token}" ]; then
      wrk -t2 -c"$CONNS" -d"${secs}s" -s "$WORK/report.lua" "$BASE/.well-known/jwks.json" >"$out" 2>&1
    else
      wrk -t2 -c"$CONNS" -d"${secs}s" -s "$WORK/token.lua" "$BASE/token" >"$out" 2>&1
    fi
    local line
    line=$(grep '^RESULT' "$out")
    REQS=$(echo "$line" | sed 's/.*requests=\([0-9]*\).*/\1/')
    local dur
    dur=$(echo "$line" | sed 's/.*duration_us=\([0-9]*\).*/\1/')
    ERRS=$(echo "$line" | awk '{n=0; for (i=4;i<=8;i++) {split($i,a,"="); n+=a[2]} print n}')
    P99=$(echo "$line" | sed 's/.*p99_us=\([0-9]*\).*/\1/')
    RPS=$((REQS * 1000000 / (dur > 0 ? dur : 1)))
  else
    # fallback: 8 parallel curl processes, 2000 requests (slower: process start-up dominates)
    local n=2000 t0 t1
    t0=$(date +%s%N)
    if [ "$name" = "${name#token}" ]; then
      seq 1 $n | xargs -P8 -I{} "$CURL" -s -o /dev/null -w '%{http_code}\n' "$BASE/.well-known/jwks.json" >"$out"
    else
      seq 1 $n | xargs -P8 -I{} "$CURL" -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Basic $AUTH" -d grant_type=client_credentials "$BASE/token" >"$out"
    fi
    t1=$(date +%s%N)
    REQS=$(wc -l <"$out")
    ERRS=$(grep -vc '^200$' "$out")
    RPS=$((REQS * 1000000000 / (t1 - t0)))
    P99=0
  fi
}

# warm-up: thread pools, allocator arenas, connection structures
run jwks-warm 2
run token-warm 2
check "warm-up without errors" test "$ERRS" -eq 0
RSS1=$(rss_kb "$SPID")

run jwks "$SECS"
J_REQS=$REQS J_ERRS=$ERRS J_RPS=$RPS J_P99=$P99
run token "$SECS"
T_REQS=$REQS T_ERRS=$ERRS T_RPS=$RPS T_P99=$P99
RSS2=$(rss_kb "$SPID")

echo "load: JWKS  $J_REQS requests, $J_RPS req/s, p99 ${J_P99} us, $J_ERRS errors ($CONNS connections, ${SECS}s)"
echo "load: token $T_REQS requests, $T_RPS req/s, p99 ${T_P99} us, $T_ERRS errors ($CONNS connections, ${SECS}s)"
echo "load: VmRSS start ${RSS0} kB, after warm-up ${RSS1} kB, after the run ${RSS2} kB"
check "JWKS: zero errors" test "$J_ERRS" -eq 0
check "token: zero errors" test "$T_ERRS" -eq 0
check "JWKS: at least 1000 requests served" test "$J_REQS" -ge 1000
check "token: at least 1000 requests served" test "$T_REQS" -ge 1000
check "memory flat: VmRSS growth after warm-up < 10% ($RSS1 -> $RSS2 kB)" test $((RSS2 * 100)) -lt $((RSS1 * 110))
"$CURL" -s "$BASE/metrics" >"$WORK/metrics.txt"
check "metrics: no 5xx during the run" bash -c "! grep -q 'status=\"5' '$WORK/metrics.txt'"
check "metrics: tokens minted match (>= token requests)" "$PY" - "$WORK/metrics.txt" "$T_REQS" <<'EOF'
import sys
n = sum(int(l.split()[-1]) for l in open(sys.argv[1]) if l.startswith("jwtkit_tokens_issued_total{"))
sys.exit(0 if n >= int(sys.argv[2]) else 1)
EOF
stop_server TERM
check "clean shutdown after the load (exit 0, no leaks under ASan)" test "$SEXIT" -eq 0
check "shutdown within 5 s (${SSTOP_MS} ms)" test "$SSTOP_MS" -lt 5000
echo "load tests: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
