#!/usr/bin/env bash
# 50 reloads (SIGHUP to the master) under load, with a key-file location
# and a JWK Set location and two workers: no failed request, no growth of
# the open file descriptors of master and workers, the master's memory
# within a bound (each reload builds the configuration's state in the
# master and frees the old one with the old cycle), and the JWK Set is not
# fetched again (the shared zone and its slot are kept across reloads).
source "$(dirname "$0")/lib.sh"

RELOADS=${RELOADS:-50}
start_issuer --cache-control max-age=3600 --algs ES256
curl -sf "$(JWKS_URL)" -o "$TMP/keys.jwks" || { echo "cannot fetch the issuer's JWK Set"; exit 1; }
start_upstream
NGINX_WORKERS=2
start_nginx_module <<EOC
    auth_jwt_algs ES256;
    auth_jwt_issuer https://issuer.test;
    auth_jwt_audience api;
    location /file/ { auth_jwt "api"; auth_jwt_key_file @TMP@/keys.jwks; proxy_set_header X-User \$jwt_claim_sub; proxy_pass http://app; }
    location /jwks/ { auth_jwt "api"; auth_jwt_jwks $(JWKS_URL) allow_http; proxy_set_header X-User \$jwt_claim_sub; proxy_pass http://app; }
EOC
MASTER=$(cat "$NGINX_DIR/nginx.pid")
tok=$(mint ES256 --iss https://issuer.test --aud api --sub reload --ttl 3600)
for p in /file/x /jwks/x; do
  call "$p" -H "Authorization: Bearer $tok"
  check "$p: 200 before the reloads" test "$STATUS" = 200
done

# the master's children (from /proc: procps may not be installed)
workers() {
  local f pid ppid
  for f in /proc/[0-9]*/stat; do
    read -r pid _ _ ppid _ <"$f" 2>/dev/null || continue
    [ "$ppid" = "$MASTER" ] && grep -q '^Name:.*nginx' "/proc/$pid/status" 2>/dev/null && echo "$pid"
  done
}
# two workers of the current generation only (old ones gone)
settled() { [ "$(workers | wc -l)" = 2 ] && ! grep -q 'shutting down' /proc/$(workers | head -1)/cmdline 2>/dev/null; }
fds() { local n=0 p; for p in "$MASTER" $(workers); do n=$((n + $(ls "/proc/$p/fd" | wc -l))); done; echo "$n"; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$MASTER/status"; }
reload() {
  kill -HUP "$MASTER"
  local gen
  gen=$(grep -c 'reconfiguring' "$NGINX_DIR/logs/error.log")
  wait_for 10 bash -c "[ \$(grep -c 'reconfiguring' '$NGINX_DIR/logs/error.log') -ge $gen ]"
}

# one reload first: the steady state after the first reconfiguration is the baseline
reload
wait_for 20 settled
fd0=$(fds)
rss0=$(rss)
fetch0=$(issuer_count)
python3 "$(dirname "$0")/loader.py" "$NGINX_PORT" "$tok" "$TMP/stop" 4 /file/x /jwks/x >"$TMP/loader.out" 2>&1 &
LOADER=$!
PIDS+=("$LOADER")
sleep 0.5
for i in $(seq "$RELOADS"); do
  kill -HUP "$MASTER"
  sleep 0.15
done
wait_for 20 bash -c "[ \$(grep -c 'reconfiguring' '$NGINX_DIR/logs/error.log') -ge $((RELOADS + 1)) ]"
sleep 1
touch "$TMP/stop"
wait "$LOADER"
read -r _ ok _ bad <"$TMP/loader.out"
check "$RELOADS reloads under load: every request answered 200 ($ok ok, $bad failed)" test "$bad" = 0 -a "$ok" -gt 100
[ "$bad" = 0 ] || cat "$TMP/loader.out"
check "the master reconfigured $RELOADS more times" test "$(grep -c 'reconfiguring' "$NGINX_DIR/logs/error.log")" -ge $((RELOADS + 1))
wait_for 30 settled
check "two workers again (the old generations exited)" settled
fd1=$(fds)
rss1=$(rss)
check "no file descriptor growth in master + workers ($fd0 -> $fd1)" test "$fd1" -le "$fd0"
check "the master's memory within 8 MiB of before ($rss0 -> $rss1 KiB)" test $((rss1 - rss0)) -lt 8192
check "the JWK Set was not fetched again across the reloads (issuer: $fetch0 -> $(issuer_count))" \
  test "$(issuer_count)" = "$fetch0"
for p in /file/x /jwks/x; do
  call "$p" -H "Authorization: Bearer $tok"
  check "$p: 200 after the reloads" test "$STATUS" = 200
done
check "no worker crashed" bash -c "! grep -qE 'exited on signal|segfault|alert' '$NGINX_DIR/logs/error.log' '$TMP/nginx.log'"
log "fds $fd0 -> $fd1, master RSS $rss0 -> $rss1 KiB, $ok requests"
finish
