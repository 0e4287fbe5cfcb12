#!/usr/bin/env bash
# An unknown kid before and after a rotation of the real issuer's keyring
# (`jwtkit serve --demo`), with the module on two workers.
#
# Serve publishes a new key max_age (here 12 s) before it signs with it, so a
# verifier that follows serve's Cache-Control always holds the key in time.
# This one does not: `auth_jwt_jwks_settings min_ttl=1h` keeps the set an
# hour, as a verifier configured to hold sets longer than the issuer asks
# does.  It fetched the set before the next key was published, and then
# serve signs with a kid it has never seen.  The keyring is rotated from
# outside with `jwtkit keyring rotate --force` while serve runs: the first
# call publishes the next key, the calls after it activate that key once it
# has been published for max_age (serve's own rules, its own clock).
#
# Checked: a serve token passes; forged unknown kids are refused with one
# refetch and then none (cooldown 10 s); the module still holds the old set
# (its fetch counter, serve's count of JWK Set requests, generation 1); the
# new token passes after exactly one more fetch; another unknown kid right
# after is refused with no fetch; the old token still passes (its key is
# retiring, still published); both workers accept the new token.
#
# The cooldown has passed when the new token comes: the forged refetch ran
# before the next key was published, and the key signs max_age (12 s) later,
# more than the cooldown (10 s) plus the keyring's one-second granularity.
source "$(dirname "$0")/lib.sh"
source "$GATE_TESTS_DIR/serve_rotation.sh"
[ -x "$SERVE_BIN" ] || skip_or_fail "jwtkit serve not built ($SERVE_BIN)"
[ -x "$JWTKIT_CLI_BIN" ] || skip_or_fail "the jwtkit command is not built ($JWTKIT_CLI_BIN)"

MAX_AGE=12
COOLDOWN=10
start_serve --max-age ${MAX_AGE}s
start_upstream
NGINX_WORKERS=2
NGINX_HTTP_EXTRA="auth_jwt_jwks_settings min_ttl=1h max_ttl=1h cooldown=${COOLDOWN}s;"
start_nginx_module <<EOC
    auth_jwt_algs ES256;
    auth_jwt_jwks $JWKS allow_http;
    auth_jwt_issuer $ISS;
    auth_jwt_audience demo-api;
    auth_jwt_type at+jwt;
    add_header X-Worker \$pid always;
    add_header X-Jwt-Error \$jwt_error always;
    location /api/ {
      auth_jwt "demo";
      proxy_pass http://app;
    }
    location = /status { auth_jwt_status; allow 127.0.0.1; deny all; }
EOC
# reuseport: the kernel spreads new connections over both workers; wait
# until the workers of the reloaded configuration are the only ones
master=$(cat "$NGINX_DIR/nginx.pid")
old_workers=$(pgrep -P "$master" | sort | tr '\n' ' ')
sed -i "s#listen 127.0.0.1:$NGINX_PORT;#listen 127.0.0.1:$NGINX_PORT reuseport;#" "$NGINX_DIR/nginx.conf"
kill -HUP "$master"
reloaded() {
  local w n=0
  for w in $(pgrep -P "$master"); do
    case " $old_workers " in *" $w "*) return 1 ;; esac
    n=$((n + 1))
  done
  [ "$n" = 2 ]
}
wait_for 20 reloaded || { echo "nginx did not reload with reuseport"; tail "$NGINX_DIR/logs/error.log"; exit 1; }

status() { curl -s --max-time 5 "http://127.0.0.1:$NGINX_PORT/status"; }
metric_of() { status | awk -v m="$1" '$1 == m { v = $2 } END { print (v == "" ? 0 : v) }'; }
src="source=\"$JWKS\""
# fetches of serve's set by the module, whatever their result (ok, not_modified, ...)
fetches() { status | awk -v p="jwtkit_nginx_jwks_fetches_total{$src," 'index($1, p) == 1 { n += $2 } END { print n + 0 }'; }
generation() { metric_of "jwtkit_nginx_jwks_generation{$src}"; }
err() { grep -i '^X-Jwt-Error:' <<<"$HEADERS" | sed 's/^[^:]*: *//'; }
worker() { grep -i '^X-Worker:' <<<"$HEADERS" | sed 's/^[^:]*: *//'; }

# ------------------------------------------------------ before the rotation
wait_for 20 bash -c "[ \"\$(curl -s 'http://127.0.0.1:$NGINX_PORT/status' | grep -c '^jwtkit_nginx_jwks_generation{$src} 1')\" = 1 ]" ||
  { echo "the module did not fetch serve's set"; tail "$NGINX_DIR/logs/error.log"; exit 1; }
OLD_KID=$(serve_keys active)
check "serve signs with one key ($OLD_KID)" test "$(wc -w <<<"$OLD_KID")" = 1
serve_token "$TMP/old.tok"
old=$(cat "$TMP/old.tok")
check "serve's token is signed by it" test "$(kid_of "$old")" = "$OLD_KID"
call /api/x -H "Authorization: Bearer $old"
check "serve's token passes (got $STATUS)" test "$STATUS" = 200
check "one fetch of serve's set, fetched in the background at start ($(fetches))" test "$(fetches)" = 1
check "serve answered one JWK Set request ($(serve_jwks_requests))" test "$(serve_jwks_requests)" = 1

bad=0
for i in 1 2 3; do
  call /api/x -H "Authorization: Bearer $(forge_kid "$old" "not-a-serve-kid-$i")"
  [ "$STATUS:$(err)" = 401:unknown_kid ] || bad=$((bad + 1))
done
check "three tokens with a kid in no set: 401 unknown_kid ($bad not)" test "$bad" = 0
check "... with one refetch, the two others in the ${COOLDOWN} s cooldown (module: $(fetches) fetches)" test "$(fetches)" = 2
check "... serve saw exactly those fetches ($(serve_jwks_requests))" test "$(serve_jwks_requests)" = 2
check "... counted as refused in the cooldown ($(metric_of 'jwtkit_nginx_refetch_total{outcome="cooldown"}'))" \
  test "$(metric_of 'jwtkit_nginx_refetch_total{outcome="cooldown"}')" = 2
check_one_serve_key
check "the module holds that set: generation 1" test "$(generation)" = 1

# -------------------------------------------------------------- the rotation
rotate_serve_checked
check "the module still holds the old set: $(fetches) fetches, generation $(generation), serve answered $(serve_jwks_requests) JWK Set requests" \
  test "$(fetches):$(generation):$(serve_jwks_requests)" = 2:1:2

# ------------------------------------------------------- after the rotation
call /api/x -H "Authorization: Bearer $new"
new_status=$STATUS
# right after: the refetch for the new kid started the cooldown
call /api/x -H "Authorization: Bearer $(forge_kid "$new" not-a-serve-kid-4)"
forged_after=$STATUS:$(err)
check "the first token of the new key passes (got $new_status)" test "$new_status" = 200
check "... after exactly one refetch (module: $(fetches) fetches; serve: $(serve_jwks_requests))" \
  test "$(fetches):$(serve_jwks_requests)" = 3:3
check "... which the module waited for ($(metric_of 'jwtkit_nginx_refetch_total{outcome="waited"}') parked)" \
  test "$(metric_of 'jwtkit_nginx_refetch_total{outcome="waited"}')" -ge 1
check "... and brought a new set: generation 2" test "$(generation)" = 2
check "another unknown kid right after: 401 unknown_kid (got $forged_after)" test "$forged_after" = 401:unknown_kid
check "... with no fetch (cooldown): module $(fetches), serve $(serve_jwks_requests)" \
  test "$(fetches):$(serve_jwks_requests)" = 3:3
call /api/x -H "Authorization: Bearer $old"
check "the old token still passes: its key is retiring, still published (got $STATUS)" test "$STATUS" = 200
check "... serve publishes both ($(serve_keys retiring) retiring)" test "$(serve_keys retiring)" = "$OLD_KID"

# both workers: 20 requests or more with the new token, until each worker answered
declare -A seen=()
n=0
bad=0
while [ "$n" -lt 200 ]; do
  call /api/x -H "Authorization: Bearer $new"
  n=$((n + 1))
  [ "$STATUS" = 200 ] || bad=$((bad + 1))
  seen[$(worker)]=1
  [ "$n" -ge 20 ] && [ "${#seen[@]}" -ge 2 ] && break
done
check "$n requests with the new token on ${#seen[@]} workers: all 200 ($bad not)" test "$bad" = 0 -a "${#seen[@]}" = 2
check "... and no more fetches (module $(fetches), serve $(serve_jwks_requests))" test "$(fetches):$(serve_jwks_requests)" = 3:3
finish
