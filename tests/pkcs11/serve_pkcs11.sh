#!/usr/bin/env bash
# jwtkit serve on a keyring whose keys live in a PKCS#11 token (SoftHSM2),
# ctest serve_pkcs11, label pkcs11:
#   - the `bash` blocks of docs/pkcs11.md "The issuer", with a free port in
#     place of 8443: tokens minted by the token key verify against the
#     served JWKS, /healthz and /metrics say the key is up;
#   - the token's directory moved away while serve runs: /healthz 503 with
#     the reason, POST /token 503 temporarily_unavailable with Retry-After,
#     jwtkit_serve_signing_key_up 0 and failures counted, the JWKS still
#     served, no crash; moved back: ready again by itself, tokens verify;
#   - serve rotating a token keyring by itself (seconds-long periods): the
#     next keys made in the token, the retired one destroyed there, a key
#     made in the token for an algorithm configured later, no key file;
#   - a token that holds few sessions (tests/pkcs11/p11shim.c in front of
#     SoftHSM, slow signatures so signers overlap): every request answered,
#     the token's refusals seen, no signing failure; with C_Sign held by
#     the shim, a GET on the one HTTP thread answered while three
#     signatures wait (serve's signer queue), then every token given; a
#     SIGTERM with signatures held: all answered, exit 0;
#   - start-up: the token missing (an error naming it), a wrong PIN (one
#     C_Login, counted by OpenSC's pkcs11-spy, and an error).
# Skipped (exit 77) without SoftHSM2, OpenSC's tools, curl or a jwtkit with
# serve; a failure under CI=true.  Bounded: every wait has a deadline.
#
#   tests/pkcs11/serve_pkcs11.sh /path/to/jwtkit /path/to/p11shim.so
source "$(dirname "$0")/../cli/lib.sh" "$1"
SHIM=${2:?usage: $0 JWTKIT SHIM}
case $SHIM in /*) ;; *) SHIM=$OLDPWD/$SHIM ;; esac # lib.sh moved to $TMP
SRC=$(cd "$TESTS_DIR/../.." && pwd)
MODULE=${JWTKIT_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
PY=/usr/bin/python3

skip() {
  case ${CI:-} in
    true | TRUE | 1 | yes)
      echo "FAIL: $1; CI=true requires it" >&2
      exit 1
      ;;
  esac
  echo "SKIP: $1"
  exit 77
}
[ -r "$MODULE" ] || skip "SoftHSM2 module $MODULE not installed"
command -v softhsm2-util >/dev/null || skip "softhsm2-util not installed"
command -v pkcs11-tool >/dev/null || skip "pkcs11-tool (OpenSC) not installed"
command -v curl >/dev/null || skip "curl not installed"
[ -x "$PY" ] || skip "python3 not installed"
SPY=
for d in /usr/lib/x86_64-linux-gnu/pkcs11 /usr/lib/*/pkcs11 /usr/lib/pkcs11 /usr/lib64/pkcs11; do
  [ -r "$d/pkcs11-spy.so" ] && SPY=$d/pkcs11-spy.so && break
done
[ -n "$SPY" ] || skip "pkcs11-spy.so (OpenSC) not installed"
"$JWTKIT" serve --help >/dev/null 2>&1 || skip "this jwtkit has no serve (libmicrohttpd)"
probe=$("$JWTKIT" keyring init probe --alg ES256 --pkcs11 "pkcs11:token=x?module-path=/nonexistent.so" 2>&1 || true)
[[ "$probe" == *"No such file"* ]] || skip "this jwtkit is built without PKCS#11 support"
export PATH="$(dirname "$JWTKIT"):$PATH"
unset JWTKIT_PKCS11_PIN

# ---------------------------------------------------------------- helpers
free_port() { "$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
# wait_for SECONDS WHAT CMD...: until CMD succeeds; a failure when it never does
wait_for() {
  local limit=$1 what=$2 i
  shift 2
  check
  for ((i = 0; i < limit * 5; i++)); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  fail "$what: not within ${limit}s"
  return 1
}
healthz_is() { [ "$(code "$BASE/healthz")" = "$1" ]; }
# start_serve LOG ARGS...: jwtkit serve in the background on a free port (SPID, BASE)
start_serve() {
  local log=$1
  shift
  PORT=$(free_port)
  BASE=http://127.0.0.1:$PORT
  "$JWTKIT" serve --listen "127.0.0.1:$PORT" --issuer "$BASE" "$@" 2>>"$log" &
  SPID=$!
  CLEANUP_PIDS+=("$SPID")
  wait_for 30 "serve on port $PORT ready ($(tail -3 "$log" 2>/dev/null))" healthz_is 200
}
stop_serve() {
  kill -TERM "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
}
alive() { kill -0 "$SPID" 2>/dev/null; }
# mint: an access token for the demo client into $TOKEN (and the HTTP code into $CODE)
mint() {
  curl -s -D "$TMP/h.txt" -o "$TMP/b.txt" -u "demo:$(head -1 "$TMP/work/demo.secret")" \
    -d grant_type=client_credentials "$BASE/token" || true
  CODE=$(sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' "$TMP/h.txt")
  TOKEN=$(sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' "$TMP/b.txt")
}
# run_cmd CMD...: like run, for any command
run_cmd() {
  LAST="$*"
  set +e
  "$@" >"$TMP/.out" 2>"$TMP/.err"
  RC=$?
  set -e
  OUT=$(<"$TMP/.out")
  ERR=$(<"$TMP/.err")
}
verify_minted() {
  run verify --jwks "$BASE/.well-known/jwks.json" --allow-http --alg "${1:-ES256}" --iss "$BASE" --aud api "$TOKEN"
  assert_rc 0
  assert_out_contains '"client_id":"demo"'
}
token_labels() { pkcs11-tool --module "$MODULE" --login --pin 1234 --list-objects --type privkey 2>/dev/null | sed -n 's/^ *label: *//p'; }
listed() { "$JWTKIT" keyring list "$1" --json; }

# ------------------------------------------------- a token, as the docs make it
mkdir -p "$TMP/work/softhsm/tokens"
cd "$TMP/work"
printf 'directories.tokendir = %s/softhsm/tokens\nobjectstore.backend = file\n' "$PWD" >softhsm/softhsm2.conf
export SOFTHSM2_CONF=$PWD/softhsm/softhsm2.conf
softhsm2-util --init-token --free --label jwtkit --pin 1234 --so-pin 5678 >/dev/null
(umask 077 && echo 1234 >jwtkit.pin)
run keyring init ring --alg ES256 --pkcs11 "pkcs11:token=jwtkit?module-path=$MODULE&pin-source=$PWD/jwtkit.pin"
assert_rc 0
kid=$(listed ring | sed -n 's/.*"kid":"\([^"]*\)","alg":"ES256","state":"active".*/\1/p')

# ------------------------------------------- docs/pkcs11.md, "The issuer"
doc_block() { "$PY" "$SRC/tests/lib/doc_block.py" "$SRC/docs/pkcs11.md" "$1"; }
doc_block "with a free port in place of 8443" >start.sh
doc_block "and the issuer is ready without a restart." >probe.sh
check
grep -q '^jwtkit serve --keyring ring ' start.sh || fail "docs/pkcs11.md: no serve command in the issuer block"
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
sed -i "s/8443/$PORT/g" start.sh probe.sh
head -n -1 start.sh >client.sh
bash -euo pipefail client.sh
serve_line=$(tail -1 start.sh)
(eval "exec $serve_line" 2>>"$TMP/serve1.log") &
SPID=$!
CLEANUP_PIDS+=("$SPID")
wait_for 30 "the docs' issuer ready" healthz_is 200
mint
check
[ "$CODE" = 200 ] || fail "POST /token with the token key: $CODE $(cat "$TMP/b.txt")"
verify_minted
run_cmd bash -euo pipefail probe.sh
assert_rc 0
assert_out_contains "ok"
assert_out_contains "jwtkit_serve_signing_key_up{alg=\"ES256\",kid=\"$kid\",store=\"pkcs11\"} 1"
assert_out_contains 'jwtkit_serve_sign_failures_total{reason="token_absent"} 0'

# ------------------------------------------------ the token away and back
mv softhsm/tokens softhsm/tokens.away
wait_for 15 "/healthz 503 with the token away" healthz_is 503
run_cmd bash -c "curl -s '$BASE/healthz'"
assert_out_contains "signing key for ES256 unavailable: token_absent"
assert_out_contains 'token "jwtkit"'
mint
check
[ "$CODE" = 503 ] || fail "POST /token with the token away: $CODE"
grep -qi '^Retry-After: 2' "$TMP/h.txt" || fail "no Retry-After: 2 on the 503: $(cat "$TMP/h.txt")"
grep -q '"error":"temporarily_unavailable"' "$TMP/b.txt" || fail "503 body: $(cat "$TMP/b.txt")"
[ -z "$TOKEN" ] || fail "a token was minted with the token away"
run_cmd bash -c "curl -s '$BASE/.well-known/jwks.json'"
assert_out_contains "\"kid\":\"$kid\"" # the JWKS needs no token
run_cmd bash -c "curl -s '$BASE/metrics'"
assert_out_contains "jwtkit_serve_signing_key_up{alg=\"ES256\",kid=\"$kid\",store=\"pkcs11\"} 0"
check
fails=$(printf '%s\n' "$OUT" | awk '/^jwtkit_serve_sign_failures_total/ {s += $2} END {print s + 0}')
[ "$fails" -ge 2 ] || fail "sign failures counted with the token away: $fails"
alive || fail "serve died with the token away"
mv softhsm/tokens.away softhsm/tokens
wait_for 15 "/healthz 200 once the token is back" healthz_is 200
mint
check
[ "$CODE" = 200 ] || fail "POST /token after the token came back: $CODE $(cat "$TMP/b.txt")"
verify_minted
run_cmd bash -c "curl -s '$BASE/metrics'"
assert_out_contains "jwtkit_serve_signing_key_up{alg=\"ES256\",kid=\"$kid\",store=\"pkcs11\"} 1"
check
grep -q '"msg":"signing key unavailable"' "$TMP/serve1.log" || fail "no log line for the key going away"
grep -q '"msg":"signing key available again"' "$TMP/serve1.log" || fail "no log line for the key coming back"
stop_serve

# --------------------------- serve rotates a token keyring by itself
run keyring init auto --alg ES256 --pkcs11 "pkcs11:token=jwtkit?module-path=$MODULE&pin-source=$PWD/jwtkit.pin" \
  --rotate-every 12s --max-age 2s --token-ttl 2s --leeway 0s
assert_rc 0
first=$(listed auto | sed -n 's/.*"kid":"\([^"]*\)","alg":"ES256","state":"active".*/\1/p')
start_serve "$TMP/serve2.log" --keyring auto --clients clients.conf --alg ES256 --alg EdDSA --rotate-check 1s
# EdDSA was configured after the keyring was made: its key is made in the
# token (pending, and active once published for max-age: /healthz waited)
ed=$(listed auto | sed -n 's/.*"kid":"\([^"]*\)","alg":"EdDSA","state":"[a-z]*","since":[0-9]*,"private":"token".*/\1/p')
check
[ -n "$ed" ] || fail "no EdDSA key in the token: $(listed auto)"
grep -q "added pending key $ed (EdDSA), made in the token" "$TMP/serve2.log" || fail "serve did not say it made $ed"
token_labels | grep -qx -- "$ed" || fail "the EdDSA key $ed is not in the token"
retired_first() { listed auto | grep -q "\"kid\":\"$first\",\"alg\":\"ES256\",\"state\":\"retired\""; }
wait_for 60 "serve retiring the first ES256 key $first" retired_first
check
! token_labels | grep -qx -- "$first" || fail "the retired key $first is still in the token"
now_active=$(listed auto | sed -n 's/.*"kid":"\([^"]*\)","alg":"ES256","state":"active","since":[0-9]*,"private":"token".*/\1/p')
[ -n "$now_active" ] && [ "$now_active" != "$first" ] || fail "no new active ES256 key in the token: $(listed auto)"
token_labels | grep -qx -- "$now_active" || fail "the active key $now_active is not in the token"
[ -z "$(ls -A auto/keys)" ] || fail "auto/keys holds files: $(ls auto/keys)"
mint
check
[ "$CODE" = 200 ] || fail "POST /token after serve's rotation: $CODE"
verify_minted
grep -q "published pending key" "$TMP/serve2.log" || fail "serve did not log its rotation"
stop_serve

# ------------------------- a token with few sessions (the shim in front)
export JWTKIT_SHIM_MODULE=$MODULE JWTKIT_SHIM_CTL=$TMP/shim.ctl JWTKIT_SHIM_LOG=$TMP/shim.log JWTKIT_SHIM_SIGN_MS=60
echo 8 >"$JWTKIT_SHIM_CTL"
run keyring init limited --alg ES256 --pkcs11 "pkcs11:token=jwtkit?module-path=$SHIM&pin-source=$PWD/jwtkit.pin"
assert_rc 0
# serve holds two handles (rotation and serving), each key one session: two,
# and not one more while it signs
echo 2 >"$JWTKIT_SHIM_CTL"
# (--header-timeout 60: the first requests each check the client secret,
# 50,000 PBKDF2 iterations on an HTTP thread, which take seconds under the
# sanitizers on a loaded machine; a connection waiting for a thread then
# passed the default 5 s.  A signature no longer waits on an HTTP thread:
# that is checked in the next section, whatever the timeouts)
start_serve "$TMP/serve3.log" --keyring limited --clients clients.conf --thread-pool 4 --header-timeout 60
secret=$(head -1 demo.secret)
# (a curl that fails prints 000 and makes xargs exit 123: reported by the
# check below, not a silent end of the script under set -e)
seq 24 | xargs -P 6 -I{} curl -s -o /dev/null -w '%{http_code} %{exitcode} %{time_total}s\n' -u "demo:$secret" \
  -d grant_type=client_credentials "$BASE/token" >"$TMP/codes.txt" || true
check
[ "$(grep -c '^200 ' "$TMP/codes.txt")" = 24 ] || fail "with a session limit: $(sort "$TMP/codes.txt" | tr '\n' ' ')"
[ -s "$JWTKIT_SHIM_LOG" ] || fail "the token's session limit was never reached"
run_cmd bash -c "curl -s '$BASE/metrics'"
assert_out_contains 'jwtkit_serve_sign_failures_total{reason="session"} 0'
assert_out_contains 'store="pkcs11"} 1'
alive || fail "serve died at its session limit"
stop_serve

# ------------- the HTTP thread does not wait for a token session meanwhile
# One HTTP thread for every connection, one session for the key, and C_Sign
# held by the shim until the test opens its gate: three token requests are
# decided and handed to the signer threads (serve's gauge
# jwtkit_serve_sign_queue reaches 3), and while no signature can end, a GET
# on the same thread is answered.  Before, the thread itself signed: the GET
# could not be read until the signature ended (here: never, the gate being
# closed).  Then the gate opens and every token request gets its token.
# Nothing here depends on the machine's speed: the order is forced.
GATE=$TMP/sign.gate
touch "$GATE" # open while serve starts (it signs once to check its keys)
export JWTKIT_SHIM_SIGN_MS=0 JWTKIT_SHIM_SIGN_GATE=$GATE
start_serve "$TMP/serve4.log" --keyring limited --clients clients.conf --thread-pool 1 --header-timeout 30
rm -f "$GATE"
# post_token N: a token request in the background, its code into post.N
post_token() {
  curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 -u "demo:$secret" -d grant_type=client_credentials \
    "$BASE/token" >"$TMP/post.$1" 2>/dev/null &
  POSTS+=($!)
}
sign_queue() { curl -s --max-time 20 "$BASE/metrics" | awk '$1 == "jwtkit_serve_sign_queue" { print $2 }'; }
queue_is() { [ "$(sign_queue)" = "$1" ]; }
rm -f "$TMP"/post.*
POSTS=()
for i in 1 2 3; do post_token "$i"; done
wait_for 60 "the three signatures handed to the signer threads (queue: $(sign_queue))" queue_is 3
for path in /healthz /.well-known/jwks.json; do
  got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$BASE$path" || true)
  check
  [ "$got" = 200 ] || fail "GET $path while every signature waits: $got (the HTTP thread waited for a signature)"
done
check
[ "$(cat "$TMP"/post.* 2>/dev/null | grep -c .)" = 0 ] || fail "a token was answered while the gate was closed"
touch "$GATE"
wait "${POSTS[@]}" || true
check
[ "$(cat "$TMP"/post.* | grep -c '^200$')" = 3 ] ||
  fail "token requests queued for the session: $(cat "$TMP"/post.* | tr '\n' ' '); serve: $(tail -8 "$TMP/serve4.log")"
wait_for 20 "the signer queue drained (queue: $(sign_queue))" queue_is 0
# SIGTERM with signatures held: serve stops taking work, and once the
# signatures may end, every request held is answered (its token, or 503
# for one no signer thread had started) and serve exits 0
rm -f "$GATE" "$TMP"/post.*
POSTS=()
for i in 1 2 3 4; do post_token "$i"; done
wait_for 60 "four signatures handed to the signer threads (queue: $(sign_queue))" queue_is 4
kill -TERM "$SPID"
wait_for 20 "serve saying it stops" grep -q '"event":"shutdown"' "$TMP/serve4.log"
touch "$GATE"
rc=0
wait "$SPID" || rc=$?
wait "${POSTS[@]}" || true
check
[ "$rc" = 0 ] || fail "serve stopped with signatures queued: exit $rc ($(tail -3 "$TMP/serve4.log"))"
codes=$(cat "$TMP"/post.* | sort | tr '\n' ' ')
[ "$(cat "$TMP"/post.* | grep -cE '^(200|503)$')" = 4 ] ||
  fail "token requests at SIGTERM: $codes; serve: $(tail -8 "$TMP/serve4.log")"
unset JWTKIT_SHIM_MODULE JWTKIT_SHIM_CTL JWTKIT_SHIM_LOG JWTKIT_SHIM_SIGN_MS JWTKIT_SHIM_SIGN_GATE

# ------------------------------------------------------- start-up faults
mv softhsm/tokens softhsm/tokens.away
PORT=$(free_port)
run serve --keyring ring --clients clients.conf --listen "127.0.0.1:$PORT"
check
[ "$RC" -ne 0 ] || fail "serve started without its token"
assert_err_contains 'token \"jwtkit\"' # in a JSON log line
assert_err_contains "this keyring's keys are only in that token"
mv softhsm/tokens.away softhsm/tokens
# a wrong PIN: one login, then an exit with the reason
run keyring init spied --alg ES256 --pkcs11 "pkcs11:token=jwtkit?module-path=$SPY&pin-source=$PWD/spied.pin"
assert_rc 2 # no PIN file yet: said so, nothing made
(umask 077 && echo 1234 >spied.pin)
PKCS11SPY=$MODULE PKCS11SPY_OUTPUT=$TMP/spy0.log run keyring init spied --alg ES256 \
  --pkcs11 "pkcs11:token=jwtkit?module-path=$SPY&pin-source=$PWD/spied.pin"
assert_rc 0
echo 9999 >spied.pin
PKCS11SPY=$MODULE PKCS11SPY_OUTPUT=$TMP/spy1.log run serve --keyring spied --clients clients.conf \
  --listen "127.0.0.1:$PORT"
check
[ "$RC" -ne 0 ] || fail "serve started with a wrong PIN"
assert_err_contains "refused the PIN (CKR_PIN_INCORRECT); not retried"
n=$(grep -c ' C_Login$' "$TMP/spy1.log" || true)
[ "$n" = 1 ] || fail "serve with a wrong PIN: $n C_Login calls (one expected)"
cd "$TMP"
finish
