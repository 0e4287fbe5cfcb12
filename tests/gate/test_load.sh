#!/usr/bin/env bash
# A bounded load run through nginx (wrk; at most 30 s): the gate with its
# token cache, the gate without it, and nginx auth_request to a location
# that answers 204 itself (the ideal auth backend), measured in the same
# run: 1 s warm-up each, then 3 rounds of 3 s alternating the three, the
# median per backend (the machine's noise hits all three alike).  Zero
# errors, flat memory (VmRSS before/after), and the throughput table.
# under ASan a small quarantine, or freed blocks held back look like growth
# (appended: `make test-asan` exports its own ASAN_OPTIONS)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:exitcode=97}:quarantine_size_mb=8:thread_local_quarantine_size_kb=64"
source "$(dirname "$0")/lib.sh"
need_nginx
DUR=${LOAD_SECONDS:-3}
ROUNDS=${LOAD_ROUNDS:-3}
CONN=${LOAD_CONNECTIONS:-32}
if command -v wrk >/dev/null; then
  TOOL=wrk
elif command -v ab >/dev/null; then
  TOOL=ab
else
  echo "SKIP: neither wrk (apt-get install wrk) nor ab (apache2-utils) is installed"
  exit 77
fi

start_issuer --cache-control max-age=3600 --algs RS256
write_gate_conf <<'EOF'
[gate]
token_cache = 10000
[route api]
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = RS256
header X-User = sub
EOF
sed 's/^token_cache = 10000$/token_cache = 0/' "$TMP/gate.conf" >"$TMP/nocache.conf"
start_gate
NOCACHE_PORT=$(free_port)
"$GATE_BIN" --config "$TMP/nocache.conf" --listen "127.0.0.1:$NOCACHE_PORT" >/dev/null 2>>"$TMP/gate-nocache.log" &
NOCACHE_PID=$!
PIDS+=("$NOCACHE_PID")
wait_for 10 gate_ready
wait_for 10 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$NOCACHE_PORT/healthz)\" = 200 ]"

mkdir -p "$TMP/static"
echo "hello from the protected static file" >"$TMP/static/index.txt"
NGINX_HTTP_EXTRA="upstream gate_nocache { server 127.0.0.1:$NOCACHE_PORT; keepalive 32; }"
auth_loc() { # auth_loc NAME UPSTREAM
  cat <<EOF
    location = /_auth_$1 {
      internal;
      proxy_pass http://$2/auth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI \$request_uri;
      proxy_set_header X-Original-Host \$host;
    }
    location /bench/$1/ {
      auth_request /_auth_$1;
      auth_request_set \$gate_user \$upstream_http_x_user;
      add_header X-Seen-User \$gate_user;
      alias $TMP/static/;
    }
EOF
}
NGINX_EXTRA="$(auth_loc cache jwtkit_gate)
$(auth_loc nocache gate_nocache)
    location = /_auth_ideal { internal; return 204; }
    location /bench/ideal/ { auth_request /_auth_ideal; alias $TMP/static/; }"
NGINX_WORKERS=${NGINX_WORKERS:-auto}
start_nginx
tok=$(mint RS256 --iss https://issuer.test --aud api --sub loadtest --ttl 3600)
for k in cache nocache ideal; do
  call "/bench/$k/index.txt" -H "$(bearer "$tok")"
  check "/bench/$k/ serves the file with the token" test "$STATUS" = 200
done
call /bench/cache/index.txt -H "$(bearer "${tok}x")"
check "/bench/cache/ refuses a bad token" test "$STATUS" = 401

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# run KIND SECONDS -> "rps non2xx errors"
run() {
  local url="http://127.0.0.1:$NGINX_PORT/bench/$1/index.txt" out=$TMP/load-$1-$2.txt
  if [ $TOOL = wrk ]; then
    wrk -t2 -c"$CONN" -d"$2s" --timeout 5s -H "Authorization: Bearer $tok" "$url" >"$out" 2>&1
    local rps non2xx errs
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    errs=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$out")
    echo "${rps:-0} ${non2xx:-0} ${errs:-0}"
  else
    ab -q -k -c "$CONN" -t "$2" -n 10000000 -H "Authorization: Bearer $tok" "$url" >"$out" 2>&1
    awk '/^Requests per second:/ { r = $4 } /^Non-2xx responses:/ { n = $3 } /^Failed requests:/ { f = $3 }
         END { print (r ? r : 0), (n ? n : 0), (f ? f : 0) }' "$out"
  fi
}

for k in cache nocache ideal; do run "$k" 1 >/dev/null; done # warm-up: connections, pools, cache
rss_cache0=$(rss "$GATE_PID")
rss_nocache0=$(rss "$NOCACHE_PID")
declare -A RPS NON2XX ERRS
for k in cache nocache ideal; do RPS[$k]=""; NON2XX[$k]=0; ERRS[$k]=0; done
for round in $(seq "$ROUNDS"); do
  for k in cache nocache ideal; do
    read -r rps non2xx errs < <(run "$k" "$DUR")
    RPS[$k]="${RPS[$k]} $rps"
    NON2XX[$k]=$((NON2XX[$k] + non2xx))
    ERRS[$k]=$((ERRS[$k] + errs))
  done
done
median() { python3 -c "import statistics, sys; print(f'{statistics.median(map(float, sys.argv[1:])):.0f}')" $1; }
for k in cache nocache ideal; do
  all=${RPS[$k]}
  RPS[$k]=$(median "$all")
  log "$k: requests/s per round:$all -> median ${RPS[$k]}"
  check "$k: zero non-2xx responses (${NON2XX[$k]})" test "${NON2XX[$k]}" = 0
  check "$k: zero socket errors (${ERRS[$k]})" test "${ERRS[$k]}" = 0
  check "$k: requests were served (${RPS[$k]}/s)" test "${RPS[$k]}" -gt 100
done
rss_cache1=$(rss "$GATE_PID")
rss_nocache1=$(rss "$NOCACHE_PID")
check "gate (cache) memory flat: VmRSS $rss_cache0 -> $rss_cache1 kB" test $((rss_cache1 - rss_cache0)) -lt 8192
check "gate (no cache) memory flat: VmRSS $rss_nocache0 -> $rss_nocache1 kB" test $((rss_nocache1 - rss_nocache0)) -lt 8192
denied=$(curl -s "http://127.0.0.1:$GATE_PORT/metrics" | awk '/^jwtkit_gate_decisions_total\{result="deny"/ { s += $2 } END { print s + 0 }')
check "gate (cache): no denial but the one bad token ($denied)" test "$denied" = 1
check "gate (cache): cache hits dominate" python3 -c "
import sys; h=float('$(metric jwtkit_gate_token_cache_hits_total)'); m=float('$(metric jwtkit_gate_token_cache_misses_total)')
sys.exit(0 if h > 100 * m else 1)"

pct() { python3 -c "print(f'{100.0 * float(\"$1\") / float(\"$2\"):.0f}%')"; }
echo
echo "=== throughput through nginx auth_request ($TOOL, $CONN connections, median of $ROUNDS x ${DUR}s, nginx workers $NGINX_WORKERS, $(nproc) CPUs) ==="
printf '%-34s %12s %8s\n' "auth backend" "requests/s" "of ideal"
printf '%-34s %12s %8s\n' "nginx 204 location (ideal)" "${RPS[ideal]}" "100%"
printf '%-34s %12s %8s\n' "jwtkit gate, token cache on" "${RPS[cache]}" "$(pct "${RPS[cache]}" "${RPS[ideal]}")"
printf '%-34s %12s %8s\n' "jwtkit gate, token cache off" "${RPS[nocache]}" "$(pct "${RPS[nocache]}" "${RPS[ideal]}")"
echo "gate VmRSS (kB): cache $rss_cache0 -> $rss_cache1, no cache $rss_nocache0 -> $rss_nocache1"
echo

kill -TERM "$NOCACHE_PID"
wait "$NOCACHE_PID"
check "second gate exits 0 on SIGTERM" test $? = 0
check "second gate: no sanitizer report" bash -c "! grep -qE 'Sanitizer|runtime error:' '$TMP/gate-nocache.log'"
finish
