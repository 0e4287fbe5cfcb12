#!/usr/bin/env bash
# `jwtkit serve` for operators: settable timing, client administration,
# warnings about client TTLs, `serve --check`.  The real binary on a free
# loopback port with curl; see tests/serve/lib.sh for the environment.
set -u
. "$(dirname "$0")/lib.sh"

SRC=${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
CLIENTS=$WORK/clients.conf
add_client() { # NAME ARGS... -> prints the secret
  "$SERVE_BIN" client add "$@" --clients "$CLIENTS" 2>>"$WORK/client-add.log"
}
tok() { # NAME CURL-ARGS... -> status; body in $WORK/NAME.json
  local name=$1
  shift
  "$CURL" -s -D "$WORK/$name.h" -o "$WORK/$name.json" "$@" "$BASE/token"
  status_of "$WORK/$name.h"
}
# ring_timing DIR KEY : a timing value of a directory keyring
ring_timing() { jget "$1/keyring.json" "d['timing']['$2']"; }

ALICE=$(add_client alice --audience https://api.example --scopes read)

# ------------------------------------------------------------ 1. timing
# leeway and publish_ahead are given to the keyring the issuer creates
RING=$WORK/ring
check "start with --leeway 90s --publish-ahead 20m --rotate-every 1h" \
  start_server "$WORK/timing.log" --keyring "$RING" --clients "$CLIENTS" --leeway 90s --publish-ahead 20m --rotate-every 1h
expect "the keyring created holds leeway 90" 90 "$(ring_timing "$RING" leeway)"
expect "... and publish_ahead 1200" 1200 "$(ring_timing "$RING" publish_ahead)"
expect "... and rotate_every 3600" 3600 "$(ring_timing "$RING" rotate_every)"
stop_server TERM
check "clean exit" test "$SEXIT" -eq 0
# an existing keyring keeps its timing, and the issuer says so with the values
check "restart with another leeway" start_server "$WORK/timing2.log" --keyring "$RING" --clients "$CLIENTS" --leeway 30s
check "... warns that the keyring keeps its own (leeway 90, publish_ahead 1200)" \
  grep -q '"event":"keyring_timing_kept".*"leeway":90,"publish_ahead":1200' "$WORK/timing2.log"
expect "... and the keyring is unchanged" 90 "$(ring_timing "$RING" leeway)"
stop_server TERM
# the keyring's rules, checked before anything is created
mkdir -p "$WORK/badtiming"
printf '# timing\nmax_age = 10m\npublish_ahead = 5m\n' >"$WORK/badtiming/serve.conf"
(cd "$WORK/badtiming" && exec "$SERVE_BIN" --config serve.conf --keyring "$WORK/never" --clients "$CLIENTS" 2>serve.err)
check "publish_ahead below max_age: exit 2" test $? -eq 2
check "... naming the rule, the values and the lines" grep -q -F \
  "serve.conf:3: timing: publish_ahead (300s) must be at least max_age (600s): a key is published max_age before it signs (the keyring's rule; given: publish_ahead at serve.conf:3, max_age at serve.conf:2)" \
  "$WORK/badtiming/serve.err"
check "... and no keyring was created" test ! -e "$WORK/never"
"$PY" "$SRC/tests/lib/doc_block.py" "$SRC/docs/serve.md" 'tests/serve/ops_test.sh "publish_ahead below max_age' >"$WORK/badtiming/doc.block"
check "... the line docs/serve.md shows, but for the time" "$PY" - "$WORK/badtiming/doc.block" "$WORK/badtiming/serve.err" <<'EOF'
import json, sys
want = json.loads(open(sys.argv[1]).read())
got = json.loads(open(sys.argv[2]).read())
del want["ts"], got["ts"]
assert got == want, (got, want)
EOF
"$SERVE_BIN" --rotate-every 1h --publish-ahead 1h --keyring "$WORK/never" --clients "$CLIENTS" 2>"$WORK/timing-bad2.log"
check "publish_ahead not below rotate_every: exit 2" test $? -eq 2
check "... with the values and the options" grep -q \
  "rotate_every (3600s) must be more than publish_ahead (3600s), so the next key is published within the period" \
  "$WORK/timing-bad2.log"
"$SERVE_BIN" --leeway 301 2>"$WORK/timing-bad3.log"
check "--leeway over 300 s: exit 2" test $? -eq 2
check "... with the range" grep -q "leeway: '301' is not a duration from 0s to 300s" "$WORK/timing-bad3.log"

# ------------------------------------------- 3. a client's ttl over token_ttl
# RING was created with the default token_ttl (15m): a client asking for 2h
# is warned about at `client add` and at load, and its tokens are cut
printf 'keyring = %s\nclients = %s\nlog_level = info\ntoken_rate_ip = off\n' "$RING" "$CLIENTS" >"$WORK/ttl.conf"
LONG=$("$SERVE_BIN" client add long --audience https://api.example --ttl 2h --config "$WORK/ttl.conf" 2>"$WORK/long.err")
check "client add with a ttl over the keyring's token_ttl succeeds" test ${#LONG} -eq 43
check "... and warns, naming the client, both values and the fix" grep -q -F \
  "warning: client long ($CLIENTS): ttl 2h exceeds the keyring's token_ttl 15m, so its tokens are cut to 15m (expires_in says 900); give it a ttl of 15m or less" \
  "$WORK/long.err"
"$SERVE_BIN" client add short --audience https://api.example --ttl 10m --config "$WORK/ttl.conf" >/dev/null 2>"$WORK/short.err"
check "a ttl within token_ttl: no warning" bash -c "! grep -q warning '$WORK/short.err'"
"$SERVE_BIN" client add early --audience x --ttl 1h --clients "$WORK/other-clients.conf" >/dev/null 2>"$WORK/early.err"
check "without a keyring yet, the warning names the configured token_ttl" grep -q \
  "client early (.*other-clients.conf; no keyring to read yet): ttl 1h exceeds the configured token_ttl 15m" "$WORK/early.err"
LONG_LINE=$(grep -n '^\[client long\]' "$CLIENTS" | cut -d: -f1)
check "the issuer loads it" start_server "$WORK/ttl.log" --config "$WORK/ttl.conf"
check "... and warns at load with FILE:LINE (client_ttl_cut)" grep -q -F \
  "\"event\":\"client_ttl_cut\",\"msg\":\"client long ($CLIENTS:$LONG_LINE): ttl 2h exceeds the keyring's token_ttl 15m" "$WORK/ttl.log"
check "... with the values as fields" grep -q '"client_id":"long","ttl":7200,"token_ttl":900' "$WORK/ttl.log"
expect "... for that client only" 1 "$(grep -c '"event":"client_ttl_cut"' "$WORK/ttl.log")"
s=$(tok long -u "long:$LONG" -d grant_type=client_credentials)
check "its token is issued ($s)" test "$s" = 200
check "... cut to token_ttl: expires_in 900, exp - iat 900" "$PY" - "$WORK/long.json" <<'EOF'
import base64, json, sys
d = json.load(open(sys.argv[1]))
assert d["expires_in"] == 900, d
p = d["access_token"].split(".")[1]
c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
assert c["exp"] - c["iat"] == 900, c
EOF
kill -HUP "$SPID"
for i in $(seq 1 50); do grep -q '"event":"reloaded"' "$WORK/ttl.log" && break; sleep 0.1; done
expect "SIGHUP: the warning again with the reloaded clients" 2 "$(grep -c '"event":"client_ttl_cut"' "$WORK/ttl.log")"
stop_server TERM

# ------------------------------------------------ 5. client administration
ADM=$WORK/adm
mkdir -p "$ADM"
C5=$ADM/clients.conf
"$SERVE_BIN" client add --help >"$ADM/help.out" 2>&1
check "client add --help works without --audience (exit 0)" test $? -eq 0
check "... and shows every subcommand" bash -c "grep -q 'client add NAME' '$ADM/help.out' && grep -q 'client list' '$ADM/help.out' && grep -q 'client remove NAME' '$ADM/help.out' && grep -q 'client rotate-secret NAME' '$ADM/help.out'"
"$SERVE_BIN" client rotate-secret --help >/dev/null 2>&1
check "client rotate-secret --help: exit 0" test $? -eq 0
"$SERVE_BIN" client add zed --clients "$C5" >/dev/null 2>"$ADM/noaud.err"
check "client add without --audience: exit 2" test $? -eq 2
check "... saying it is required" grep -q 'client add: --audience is required' "$ADM/noaud.err"
"$SERVE_BIN" client list --clients "$C5" >/dev/null 2>"$ADM/nofile.err"
check "client list without a clients file: exit 2" test $? -eq 2
check "... pointing to client add" grep -q "clients file: $C5 does not exist; register a client with \`jwtkit serve client add NAME --audience AUD --clients $C5\`" "$ADM/nofile.err"
"$SERVE_BIN" --clients "$C5" --keyring "$ADM/ring" --listen 127.0.0.1:1 2>"$ADM/nofile-serve.err"
check "the issuer without its clients file: exit 2" test $? -eq 2
check "... pointing to client add" grep -q "clients file: $C5 does not exist; register a client with \`jwtkit serve client add NAME --audience AUD --clients $C5\`" "$ADM/nofile-serve.err"
S1=$("$SERVE_BIN" client add one --audience https://api.example --scopes "read write" --ttl 10m --clients "$C5" 2>/dev/null)
S2=$("$SERVE_BIN" client add two --audience https://api.example --audience urn:other --clients "$C5" 2>/dev/null)
printf '# the third one: kept when two goes\n' >>"$C5"
S3=$("$SERVE_BIN" client add three --audience https://api.example --alg ES256 --clients "$C5" 2>/dev/null)
check "clients file mode 0600" test "$(stat -c %a "$C5")" = 600
"$SERVE_BIN" client list --clients "$C5" >"$ADM/list.out" 2>&1
check "client list: exit 0" test $? -eq 0
check "... a header and one line per client" test "$(wc -l <"$ADM/list.out")" -eq 4
check "... with name, state, ttl, alg, audiences, scopes" grep -Eq '^one +enabled +10m +- +https://api.example +read write$' "$ADM/list.out"
check "... several audiences comma separated" grep -Eq '^two +enabled +- +- +https://api.example,urn:other +-$' "$ADM/list.out"
check "... never a secret or its hash" bash -c "! grep -q -e '$S1' -e '$S2' -e '$S3' -e 'sha256\\$' -e 'pbkdf2' '$ADM/list.out'"
# a running issuer sees each change on SIGHUP
RING5=$ADM/ring
check "the issuer starts" start_server "$ADM/serve.log" --keyring "$RING5" --clients "$C5" --token-rate-ip off --token-rate-client off
reload() {
  local n
  n=$(grep -c '"event":"reloaded"' "$ADM/serve.log")
  kill -HUP "$SPID"
  for i in $(seq 1 50); do [ "$(grep -c '"event":"reloaded"' "$ADM/serve.log")" -gt "$n" ] && return 0; sleep 0.1; done
  return 1
}
expect "client one gets a token" 200 "$(tok a1 -u "one:$S1" -d grant_type=client_credentials)"
NEW1=$("$SERVE_BIN" client rotate-secret one --clients "$C5" 2>"$ADM/rot.err")
check "rotate-secret prints a new 43-character secret once" test ${#NEW1} -eq 43 -a "$NEW1" != "$S1"
check "... says it is shown once" grep -q "client one has a new secret in $C5; its secret (above) is shown once and stored only hashed" "$ADM/rot.err"
check "... the file holds neither secret" bash -c "! grep -q -e '$S1' -e '$NEW1' '$C5'"
check "... keeps mode 0600" test "$(stat -c %a "$C5")" = 600
check "... and the client's other settings" grep -Eq '^one +enabled +10m +- +https://api.example +read write$' <("$SERVE_BIN" client list --clients "$C5" 2>/dev/null)
check "SIGHUP" reload
expect "after rotate-secret the old secret is refused" 401 "$(tok a2 -u "one:$S1" -d grant_type=client_credentials)"
expect "... and the new one works" 200 "$(tok a3 -u "one:$NEW1" -d grant_type=client_credentials)"
cp "$C5" "$ADM/before-remove"
"$SERVE_BIN" client remove two --clients "$C5" 2>"$ADM/rm.err"
check "client remove: exit 0" test $? -eq 0
check "... two is gone from the list" bash -c "! '$SERVE_BIN' client list --clients '$C5' 2>/dev/null | grep -q '^two '"
check "... the others stay, byte for byte, with the comment before three" "$PY" - "$ADM/before-remove" "$C5" <<'EOF'
import sys
before, after = open(sys.argv[1]).read(), open(sys.argv[2]).read()
start = before.index("\n[client two]")
end = before.index("# the third one")
assert after == before[:start] + before[end:], (before, after)
EOF
check "SIGHUP" reload
expect "a removed client is refused" 401 "$(tok a4 -u "two:$S2" -d grant_type=client_credentials)"
expect "the others still get tokens" 200 "$(tok a5 -u "three:$S3" -d grant_type=client_credentials)"
stop_server TERM
"$SERVE_BIN" client remove two --clients "$C5" 2>"$ADM/rm2.err"
check "removing a client that is not there: exit 2" test $? -eq 2
check "... saying so" grep -q "no client two in $C5" "$ADM/rm2.err"
"$SERVE_BIN" client rotate-secret nobody --clients "$C5" >"$ADM/rot2.out" 2>/dev/null
check "rotate-secret of an unknown client: exit 2, no secret printed" test $? -eq 2 -a ! -s "$ADM/rot2.out"
"$SERVE_BIN" client list extra --clients "$C5" >/dev/null 2>&1
check "client list takes no NAME: exit 2" test $? -eq 2
# concurrent administrators never lose each other's change (the lock)
for i in $(seq 1 8); do "$SERVE_BIN" client add "par$i" --audience x --clients "$C5" >/dev/null 2>&1 & done
wait
expect "eight concurrent client add: all eight are there" 8 "$("$SERVE_BIN" client list --clients "$C5" 2>/dev/null | grep -c '^par')"
check "no temporary file is left beside the clients file" bash -c "! ls -A '$ADM' | grep -q '^\\.clients.conf.tmp'"

# ---------------------------------------------------------- 8. serve --check
# everything a start loads, read only: exit 0 with a summary, or 2 with the
# problem and where it is
CHK=$WORK/check
mkdir -p "$CHK"
printf '# issuer\nkeyring = %s\nclients = %s\n' "$RING" "$C5" >"$CHK/ok.conf"
out=$("$SERVE_BIN" --check --config "$CHK/ok.conf" 2>"$CHK/ok.err")
expect "--check of a good configuration and an existing keyring: exit 0" 0 "$?"
NCL=$("$SERVE_BIN" client list --clients "$C5" 2>/dev/null | tail -n +2 | wc -l)
check "... summing up clients ($NCL, as client list counts) and keyring: $out" bash -c "printf '%s' '$out' | grep -q -F '$CHK/ok.conf: configuration OK ($NCL clients from $C5; keyring $RING: generation '"
check "... nothing on stderr" test ! -s "$CHK/ok.err"
printf 'keyring = %s\nclients = %s\n' "$CHK/ring-to-be" "$C5" >"$CHK/new.conf"
out=$("$SERVE_BIN" --check --config "$CHK/new.conf" 2>&1)
expect "--check before the first start: exit 0" 0 "$?"
check "... saying the first start creates the keyring" bash -c "printf '%s' '$out' | grep -q 'keyring $CHK/ring-to-be: none yet, the first start creates it'"
check "... and creating nothing" test ! -e "$CHK/ring-to-be"
printf 'keyring = %s\nclients = %s\n\ntoken_ttl = 15 min\n' "$RING" "$C5" >"$CHK/bad.conf"
"$SERVE_BIN" --check --config "$CHK/bad.conf" >"$CHK/bad.out" 2>"$CHK/bad.err"
expect "--check of a bad value: exit 2" 2 "$?"
check "... with FILE:LINE and the key" grep -q -F "$CHK/bad.conf:4: token_ttl: '15 min' is not a duration" "$CHK/bad.err"
check "... and nothing on stdout" test ! -s "$CHK/bad.out"
printf 'keyring = %s\nclients = %s\nlisten = 127.0.0.1:8080\nlistn = 127.0.0.1:8081\n' "$RING" "$C5" >"$CHK/typo.conf"
"$SERVE_BIN" --check --config "$CHK/typo.conf" >/dev/null 2>"$CHK/typo.err"
expect "--check of an unknown key: exit 2" 2 "$?"
check "... with FILE:LINE: $(head -c 300 "$CHK/typo.err")" grep -q -F "$CHK/typo.conf:4:" "$CHK/typo.err"
cp "$C5" "$CHK/clients.conf"
printf '\n[client plain]\nsecret = hunter2hunter2\naudience = x\n' >>"$CHK/clients.conf"
BADLINE=$(grep -n '^secret = hunter2' "$CHK/clients.conf" | cut -d: -f1)
printf 'keyring = %s\nclients = %s\n' "$RING" "$CHK/clients.conf" >"$CHK/cl.conf"
"$SERVE_BIN" --check --config "$CHK/cl.conf" >/dev/null 2>"$CHK/cl.err"
expect "--check of a bad clients file: exit 2" 2 "$?"
check "... with the clients file's FILE:LINE" grep -q -F "$CHK/clients.conf:$BADLINE:" "$CHK/cl.err"
printf 'keyring = %s\nclients = %s\n' "$RING" "$CHK/none.conf" >"$CHK/nocl.conf"
"$SERVE_BIN" --check --config "$CHK/nocl.conf" >/dev/null 2>"$CHK/nocl.err"
expect "--check without the clients file: exit 2" 2 "$?"
check "... pointing to client add" grep -q 'does not exist; register a client with `jwtkit serve client add' "$CHK/nocl.err"
mkdir -p "$CHK/notring"
printf 'not json\n' >"$CHK/notring/keyring.json"
chmod 600 "$CHK/notring/keyring.json"
printf 'clients = %s\n# the keyring\nkeyring = %s\n' "$C5" "$CHK/notring" >"$CHK/kr.conf"
"$SERVE_BIN" --check --config "$CHK/kr.conf" >/dev/null 2>"$CHK/kr.err"
expect "--check of a keyring that does not open: exit 2" 2 "$?"
check "... naming where keyring was given: $(head -c 300 "$CHK/kr.err")" grep -q -F "$CHK/kr.conf:3: keyring: opening $CHK/notring:" "$CHK/kr.err"
check "... and leaving it as it was" bash -c "[ \"\$(cat '$CHK/notring/keyring.json')\" = 'not json' ]"

echo "serve ops tests: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
