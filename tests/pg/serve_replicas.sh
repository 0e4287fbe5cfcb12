#!/usr/bin/env bash
# tests/pg/serve_replicas.sh BUILD_DIR - three `jwtkit serve` replicas
# sharing one PostgreSQL keyring, against a throwaway server on loopback
# (tests/pg/pglib.sh).  Helpers in tests/pg/serve_replicas.py.
#
#   1. started together on an empty database (one creates, the others open):
#      byte-identical JWKS, same ETag, every token verifies against every
#      replica's JWKS
#   2. rotation happens once: with --rotate-every 20s --max-age 2s
#      --token-ttl 5s --rotate-check 1s, every action appears once per kid in
#      the logs (at least two natural rotations and one retirement), every
#      sample of `keyring list` (1/s) has one active and at most one pending
#      key; three concurrent `keyring rotate --force` publish one pending key
#   3. convergence: the worst lag from the first to the last replica serving
#      a generation (HTTP polls and logs), at most 5 s; after the LISTEN
#      sessions are killed, an external change is served everywhere within
#      rotate-check + 2 s.  Lags are also printed without the moments when the
#      shared machine stalled (a ticker process could not run), and judged so
#   4. SIGKILL inside a rotation transaction (a replica, twice, at the moment a
#      rotation is due, and a CLI run; plus CLI runs killed at random): the
#      keyring stays consistent, the others keep serving, restarts rejoin
#   5. the database restarted under token + JWKS load (other replicas,
#      --rotate-every 1h): no failed request, outage tokens verify, keyring
#      unchanged, a forced rotation afterwards reaches every replica
#   6. rows hold only ciphertext; the metadata document has no private member
#   7. SIGTERM while another session holds the keyring lock: the replica
#      stops within 5 s, not after the 30 s lock timeout
#
# Prints ok/FAIL per check and a summary; exits 1 on any failure, 77 when
# no PostgreSQL server is installed (1 under CI=true) or jwtkit was built
# without the CLI.  Stops everything it started on exit (trap; replicas and
# helpers also get SIGKILL when this shell dies: setpriv --pdeathsig).
# KEEP_WORK=1 keeps the work directory (kept anyway on failure).
set -u -o pipefail

BUILD=${1:?usage: serve_replicas.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd) || exit 1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JWTKIT=$BUILD/cli/jwtkit
HELPER=$HERE/serve_replicas.py
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3 || :); fi
fi
if [ ! -x "$JWTKIT" ]; then
  echo "SKIP: $JWTKIT not built (JWTKIT_CLI=OFF)"
  exit 77
fi
for tool in curl "$PY"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "FAIL: $tool not found"
    exit 1
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/jwtkit-replicas.XXXXXX") || exit 1
mkdir -p "$WORK/logs" "$WORK/cli" "$WORK/c1" "$WORK/c4" "$WORK/c5" "$WORK/load"
EVENTS=$WORK/events.txt
: >"$EVENTS"
T_START=${EPOCHREALTIME/./}
declare -A RPID=() RPORT=() RLOG=() RINC=() RURL=() REVERY=() RTTL=()
BGPIDS=()
KILLED_LOGS=()
PDEATH=()
if command -v setpriv >/dev/null 2>&1 && setpriv --pdeathsig KILL -- true 2>/dev/null; then
  PDEATH=(setpriv --pdeathsig KILL --)
fi

cleanup() {
  local p
  touch "$WORK/stop" 2>/dev/null
  for p in "${RPID[@]}" "${BGPIDS[@]}"; do
    kill -KILL "$p" 2>/dev/null
  done
  wait 2>/dev/null
  if [ "${KEEP_WORK:-0}" = 1 ] || [ "$FAIL" -gt 0 ]; then
    echo "work directory kept: $WORK"
  else
    rm -rf -- "$WORK"
  fi
}
# set before pg_start: pglib appends its own cleanup (stop the server) after it
trap cleanup EXIT

# shellcheck source=tests/pg/pglib.sh
. "$HERE/pglib.sh"

# ---------------------------------------------------------------- helpers

# shellcheck source=tests/lib/checks.sh
. "$HERE/../lib/checks.sh"
now() { echo "$EPOCHREALTIME"; }
elapsed() { # seconds since the start, one decimal
  local us=$((${EPOCHREALTIME/./} - T_START))
  printf '%d.%d' $((us / 1000000)) $((us / 100000 % 10))
}
say() { echo "[$(elapsed)s] $*"; }
helper() { "$PY" "$HELPER" "$@"; }
# sleep_until EPOCH (fractional)
sleep_until() {
  local d
  d=$("$PY" -c 'import sys,time;print(max(0.0,float(sys.argv[1])-time.time()))' "$1")
  sleep "$d"
}
event() { echo "$(now) $*" >>"$EVENTS"; }
fmt() { "$PY" -c 'import sys;print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; } # T0 T1 -> T1-T0

psql_url() { # URL SQL...
  local url=$1
  shift
  "$PG_PSQL" "$url" -X -A -t -q -v ON_ERROR_STOP=1 "$@"
}
doc_of() { psql_url "$1" -c "SELECT doc FROM jwtkit_keyring WHERE id = 1"; }
gen_of() { doc_of "$1" | helper doc-summary | sed -n 's/^generation //p'; }
list_json() { "$JWTKIT" keyring list "$1" --kek-file "$KEK" --json; }
kr() { "$JWTKIT" keyring "$1" "$2" --kek-file "$KEK" "${@:3}"; }
# count_state URL STATE: keys of the keyring in STATE
count_state() { doc_of "$1" | helper doc-summary | awk -v s="$2" '$3 == s' | wc -l; }
kid_in_state() { doc_of "$1" | helper doc-summary | awk -v s="$2" '$3 == s {print $1; exit}'; }
listen_count() { pg_psql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$1' AND query LIKE 'LISTEN%'"; }

# pick_ports N: N free loopback ports below Linux's ephemeral range
pick_ports() {
  "$PY" - "$1" <<'EOF'
import random, socket, sys
n, out = int(sys.argv[1]), []
while len(out) < n:
    p = random.randint(12000, 19999)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        if p not in out:
            out.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(" ".join(map(str, out)))
EOF
}

# start_replica NAME: (again) with its URL, timings and port; new log file.
# The load of check 5 is one client from one address at full speed, which
# the token buckets would answer with 429: they are off.
start_replica() {
  local name=$1 inc=${RINC[$1]:-0}
  RLOG[$name]=$WORK/logs/$name.$inc.log
  RINC[$name]=$((inc + 1))
  "${PDEATH[@]}" "$JWTKIT" serve --listen "127.0.0.1:${RPORT[$name]}" --issuer "$ISS" \
    --keyring "${RURL[$name]}" --kek-file "$KEK" --clients "$CLIENTS" --alg ES256 \
    --max-age 2s --token-ttl "${RTTL[$name]}" --rotate-every "${REVERY[$name]}" --rotate-check 1s \
    --token-rate-ip off --token-rate-client off --thread-pool 2 2>"${RLOG[$name]}" &
  RPID[$name]=$!
}
# wait_healthy NAME: /healthz answers 200 within 15 s
wait_healthy() {
  local name=$1 i
  for ((i = 0; i < 150; i++)); do
    if ! kill -0 "${RPID[$name]}" 2>/dev/null; then
      echo "    $name exited; log:"
      tail -5 "${RLOG[$name]}" | sed 's/^/    | /'
      return 1
    fi
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${RPORT[$name]}/healthz")" = 200 ]; then
      return 0
    fi
    sleep 0.1
  done
  echo "    $name not healthy after 15 s"
  return 1
}
stop_replica() { # NAME: SIGTERM, wait
  local name=$1 i
  [ -n "${RPID[$name]:-}" ] || return 0
  kill -TERM "${RPID[$name]}" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    kill -0 "${RPID[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "${RPID[$name]}" 2>/dev/null
  wait "${RPID[$name]}" 2>/dev/null
  unset "RPID[$name]"
}
logs_of() { # NAME...: LOGARGS=(--log NAME=CURRENT-LOG ...)
  local n
  LOGARGS=()
  for n; do LOGARGS+=(--log "$n=${RLOG[$n]}"); done
}
# get_token NAME OUTFILE: the access token of one token request
get_token() {
  curl -s -u "demo:$SECRET" -d grant_type=client_credentials "http://127.0.0.1:${RPORT[$1]}/token" |
    sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' >"$2"
  [ -s "$2" ]
}
verify_token() { # TOKENFILE JWKSFILE
  "$JWTKIT" verify --jwks "$2" --alg ES256 --iss "$ISS" --aud api "@$1" >/dev/null
}
bg() { # run a helper in the background, killed with this shell
  "${PDEATH[@]}" "$PY" "$HELPER" "$@" &
  BGPIDS+=($!)
}

# ------------------------------------------------------------------ setup

pg_start || {
  bad "PostgreSQL did not start"
  exit 1
}
# the machine is shared: lags are also reported without the moments when
# no process of the test could run at all
STALLS=$WORK/stalls.txt
bg ticker "$STALLS" "$WORK/stop-ticker"
read -r P1 P2 P3 P4 P5 P6 <<<"$(pick_ports 6)"
ISS="http://127.0.0.1:$P1"
KEK=$WORK/kek
CLIENTS=$WORK/clients.conf
"$JWTKIT" keyring kek-new >"$KEK" && chmod 600 "$KEK"
SECRET=$("$JWTKIT" serve client add demo --audience api --clients "$CLIENTS" 2>/dev/null | head -1)
if [ ${#SECRET} -ne 43 ]; then
  bad "setup: client add printed no secret"
  exit 1
fi
URL_A=$PG_URL
URL_B=${PG_URL%/*}/jwtkit_b
for n in A1 A2 A3; do RURL[$n]=$URL_A REVERY[$n]=20s RTTL[$n]=5s; done
for n in B1 B2 B3; do RURL[$n]=$URL_B REVERY[$n]=1h RTTL[$n]=5m; done
RPORT[A1]=$P1 RPORT[A2]=$P2 RPORT[A3]=$P3 RPORT[B1]=$P4 RPORT[B2]=$P5 RPORT[B3]=$P6
A=(A1 A2 A3)
B=(B1 B2 B3)
SPEC_A=("A1=$P1" "A2=$P2" "A3=$P3") # NAME=PORT for the helpers
SPEC_B=("B1=$P4" "B2=$P5" "B3=$P6")

# ------------------------------------------------- 1. start on an empty db

echo "== 1. three replicas start together on an empty database"
T0=$(now)
T1=$(elapsed)
for n in "${A[@]}"; do start_replica "$n"; done
ok=1
for n in "${A[@]}"; do wait_healthy "$n" || ok=0; done
if [ $ok = 0 ]; then
  bad "check 1: all three replicas become healthy"
  exit 1
fi
ok "check 1: three replicas started together are healthy (${T1}s -> $(elapsed)s)"
event mark started
creators=$(grep -l '"event":"keyring_created"' "$WORK"/logs/A?.0.log | wc -l)
expect "check 1: exactly one replica created the keyring, the others opened it" 1 "$creators"
errors=$(grep -h '"level":"error"' "$WORK"/logs/A?.0.log | head -3)
expect "check 1: no error logged during the start" "" "$errors"
for n in "${A[@]}"; do
  curl -s -D "$WORK/c1/$n.h" -o "$WORK/c1/$n.jwks" "http://127.0.0.1:${RPORT[$n]}/.well-known/jwks.json"
done
etags=$(for n in "${A[@]}"; do grep -i '^etag:' "$WORK/c1/$n.h" | tr -d '\r'; done | sort -u)
check "check 1: the three JWKS are byte-identical" \
  bash -c "cmp -s '$WORK/c1/A1.jwks' '$WORK/c1/A2.jwks' && cmp -s '$WORK/c1/A1.jwks' '$WORK/c1/A3.jwks' && test -s '$WORK/c1/A1.jwks'"
expect "check 1: the three ETags are the same (one distinct ETag: ${etags#*: })" 1 "$(printf '%s\n' "$etags" | grep -c .)"
verified=0
for n in "${A[@]}"; do
  get_token "$n" "$WORK/c1/$n.tok" || echo "    no token from $n"
  for m in "${A[@]}"; do
    if verify_token "$WORK/c1/$n.tok" "$WORK/c1/$m.jwks" 2>"$WORK/c1/verify.err"; then
      verified=$((verified + 1))
    else
      echo "    token of $n against the JWKS of $m: $(cat "$WORK/c1/verify.err")"
    fi
  done
done
expect "check 1: tokens of every replica verify against the JWKS of every replica (3 x 3)" 9 "$verified"

# background observers for 2-4
bg poll "$WORK/poll-A.txt" "$WORK/stop" "${SPEC_A[@]}"
bg sample "$WORK/samples-A.txt" "$WORK/stop" "$JWTKIT" "$URL_A" "$KEK"

# ---------------------------------------- 2b. three concurrent forced rotations

echo "== 2. concurrent rotation happens once"
before=$(list_json "$URL_A")
pend0=$(count_state "$URL_A" pending)
fifo=$WORK/barrier
mkfifo "$fifo"
cpids=()
for i in 1 2 3; do
  (
    : <"$fifo"
    exec "$JWTKIT" keyring rotate "$URL_A" --force --kek-file "$KEK" >"$WORK/cli/concurrent-$i.out" 2>&1
  ) &
  cpids+=($!)
done
sleep 0.2
: >"$fifo" # opens every reader at once
crc=0
for p in "${cpids[@]}"; do wait "$p" || crc=$((crc + 1)); done
T_CONC=$(now)
after=$(list_json "$URL_A")
newkids=$("$PY" -c '
import json,sys
b={k["kid"] for k in json.loads(sys.argv[1])}
a={k["kid"]:k["state"] for k in json.loads(sys.argv[2])}
print(" ".join(sorted(s for k,s in a.items() if k not in b)))' "$before" "$after")
npub=$(cat "$WORK"/cli/concurrent-*.out | grep -c '^published pending key')
say "concurrent rotate --force x3: exit failures $crc; new keys: ${newkids:-none}; outputs:"
sed 's/^/    | /' "$WORK"/cli/concurrent-*.out
expect "check 2: three concurrent 'keyring rotate --force' (no pending key before: $pend0) add exactly one key, pending" \
  "0 pending" "$crc $newkids"
expect "check 2: exactly one of them reports 'published pending key'" 1 "$npub"
helper wait-gen "$(gen_of "$URL_A")" 5 "${SPEC_A[@]}" >/dev/null

# --------------------------------------------------- 3b. lost notifications

echo "== 3. lost notifications"
# the pending key must have been published for max-age (2 s) to activate
sleep_until "$("$PY" -c 'import sys;print(float(sys.argv[1])+2.5)' "$T_CONC")"
nl=$(listen_count jwtkit)
killed=$(pg_psql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'" | grep -c '^t$')
expect "check 3: the LISTEN sessions of the three replicas were terminated (found $nl)" 3 "$killed"
active_before=$(kid_in_state "$URL_A" active)
# activate the pending key (the old one starts retiring), publish the next:
# both the signing key and the JWKS change
kr rotate "$URL_A" --force >"$WORK/cli/lost-1.out" 2>&1 &&
  kr rotate "$URL_A" --force >"$WORK/cli/lost-2.out" 2>&1
rrc=$?
T_EXT=$(now)
event mark external-change
G=$(gen_of "$URL_A")
logs_of "${A[@]}"
active_now=$(kid_in_state "$URL_A" active)
sed 's/^/    | /' "$WORK"/cli/lost-*.out
check "check 3: two external 'rotate --force' changed the signing key (exit $rrc)" \
  test "$rrc" = 0 -a "$active_now" != "$active_before" -a "$(count_state "$URL_A" pending)" = 1
check "check 3: with the notifications lost every replica serves generation $G within rotate-check + 2 s" \
  helper wait-gen "$G" 3.0 --since "$T_EXT" --stalls "$STALLS" "${LOGARGS[@]}" "${SPEC_A[@]}"
signing=0
for n in "${A[@]}"; do
  get_token "$n" "$WORK/c1/$n.tok2" && [ "$(helper token-kid "$WORK/c1/$n.tok2")" = "$active_now" ] &&
    signing=$((signing + 1))
done
expect "check 3: every replica now signs with the new active key ${active_now:0:12}..." 3 "$signing"
back=0
for ((i = 0; i < 80; i++)); do
  back=$(listen_count jwtkit)
  [ "$back" = 3 ] && break
  sleep 0.1
done
expect "check 3: the replicas LISTEN again (after $((i / 10)).$((i % 10)) s)" 3 "$back"

# ------------------------------------------ 2. natural rotations, replicas only

echo "== 2. natural rotations (rotate-every 20s), waiting for two"
nat=0
deadline=$((${EPOCHREALTIME%.*} + 55))
while [ "${EPOCHREALTIME%.*}" -lt "$deadline" ]; do
  nat=$(cat "$WORK"/logs/A?.*.log | grep -c '"action":"activated key')
  [ "$nat" -ge 2 ] && break
  sleep 0.5
done
say "activations by the replicas so far: $nat"
check "check 2: at least two rotations performed by the replicas themselves ($nat)" test "$nat" -ge 2

# --------------------------------------------------------- 4. SIGKILL chaos

echo "== 4. SIGKILL during rotation"
T4=$(now)
for round in 1 2; do
  read -r due kind <<<"$(doc_of "$URL_A" | helper next-due)"
  pids=()
  for n in "${A[@]}"; do pids+=("$n=${RPID[$n]}"); done
  say "next rotation step due at $(date -u -d "@$due" +%H:%M:%S) ($kind); holding the keyring row from 1.5 s before"
  res=$(helper kill-writer "$PG_PSQL" "$URL_A" "$due" 6 "${pids[@]}")
  read -r what victim vpid vt <<<"$res"
  if [ "$what" = KILLED ]; then
    echo "$vt kill $victim" >>"$EVENTS"
    wait "$vpid" 2>/dev/null
    KILLED_LOGS+=("${RLOG[$victim]}")
    tail_action=$(awk '/"event":"keyring_serving"/ {a = ""} /"event":"keyring_action"/ {a = a $0 "\n"} END {printf "%s", a}' "${RLOG[$victim]}" |
      sed -n 's/.*"action":"\([^ ]* [^ ]* [^ ]*\).*/\1/p' | tr '\n' ',')
    ok "check 4: $victim SIGKILLed inside its rotation transaction ($kind) after logging: ${tail_action%,}"
    start_replica "$victim"
    if wait_healthy "$victim"; then
      event up "$victim"
      ok "check 4: $victim restarted (killed $(fmt "$due" "$vt") s after the step was due, healthy again $(fmt "$vt" "$(now)") s later)"
    else
      bad "check 4: $victim restarted"
    fi
  else
    bad "check 4: no replica caught inside a rotation transaction (round $round: $res)"
  fi
done
C0=$(now)
res=$(helper kill-writer "$PG_PSQL" "$URL_A" "$(now)" 6 --cli "$JWTKIT" "$KEK")
check "check 4: a 'keyring rotate --force' SIGKILLed inside its transaction (${res% *})" test "${res%% *}" = KILLED
check "check 4: 'keyring rotate --force' SIGKILLed at random moments" \
  helper cli-chaos "$JWTKIT" "$URL_A" "$KEK" 8 "$WORK/cli"
C1=$(now)
# wait for the first retirement (K1: retiring + token-ttl + leeway + max-age)
rdue=$(doc_of "$URL_A" | helper retire-due)
say "first retirement due at $(date -u -d "@$rdue" +%H:%M:%S)"
deadline=$((rdue + 6))
[ "$deadline" -gt $((${EPOCHREALTIME%.*} + 40)) ] && deadline=$((${EPOCHREALTIME%.*} + 40))
while [ "${EPOCHREALTIME%.*}" -lt "$deadline" ]; do
  grep -q '"action":"retired key' "$WORK"/logs/A?.*.log && break
  sleep 0.5
done
sleep 1.5 # let the last change reach everyone

echo "== 4. consistency after the kills"
check "check 4: 'keyring list' works" bash -c "'$JWTKIT' keyring list '$URL_A' --kek-file '$KEK' >'$WORK/c4/list.txt'"
sed 's/^/    | /' "$WORK/c4/list.txt"
expect "check 4: exactly one active ES256 key" 1 "$(awk '$2 == "ES256" && $3 == "active"' "$WORK/c4/list.txt" | wc -l)"
check "check 4: at most one pending ES256 key" test "$(awk '$2 == "ES256" && $3 == "pending"' "$WORK/c4/list.txt" | wc -l)" -le 1
kr jwks "$URL_A" >"$WORK/c4/cli.jwks"
check "check 4: 'keyring jwks' parses, public keys only" helper jwks-ok "$WORK/c4/cli.jwks"
G=$(gen_of "$URL_A")
check "check 4: all replicas (two restarted) converge on generation $G" helper wait-gen "$G" 5 "${SPEC_A[@]}"
same=0
for n in "${A[@]}"; do
  curl -s -o "$WORK/c4/$n.jwks" "http://127.0.0.1:${RPORT[$n]}/.well-known/jwks.json"
  printf '%s\n' "$(cat "$WORK/c4/$n.jwks")" | cmp -s - "$WORK/c4/cli.jwks" && same=$((same + 1))
done
expect "check 4: every replica's JWKS is byte-identical to the keyring's ('keyring jwks')" 3 "$same"
live=$(doc_of "$URL_A" | helper doc-summary | awk '$3 == "pending" || $3 == "active" || $3 == "retiring" {print $1}' | sort)
rows=$(pg_psql -c "SELECT name FROM jwtkit_private_keys ORDER BY name" | sort)
check "check 4: one sealed private-key row per live key, no orphan, none missing ($(echo "$live" | wc -l) keys)" \
  test "$live" = "$rows" -a -n "$rows"
verified=0
for n in "${A[@]}"; do
  get_token "$n" "$WORK/c4/$n.tok"
  for m in "${A[@]}"; do verify_token "$WORK/c4/$n.tok" "$WORK/c4/$m.jwks" 2>/dev/null && verified=$((verified + 1)); done
done
expect "check 4: tokens of every replica verify against every replica's JWKS" 9 "$verified"

touch "$WORK/stop"
for p in "${BGPIDS[@]:1}"; do wait "$p" 2>/dev/null; done
BGPIDS=("${BGPIDS[0]}") # the ticker goes on
rm -f "$WORK/stop"

echo "== 2./3. analysis of the run ($(wc -l <"$WORK/samples-A.txt") keyring samples, $(wc -l <"$WORK/poll-A.txt") polls)"
check "check 2: every 'keyring list' sample: one active, at most one pending key; states only move forward" \
  helper check-samples "$WORK/samples-A.txt"
doc_of "$URL_A" >"$WORK/doc-A.json"
logspecs=()
for f in "$WORK"/logs/A?.*.log; do
  k=$f
  for x in "${KILLED_LOGS[@]}"; do [ "$x" = "$f" ] && k=$f:killed; done
  logspecs+=("$k")
done
check "check 2: every action (published/activated/retiring/retired) once per kid across the logs" \
  helper check-actions "$WORK/doc-A.json" 2 1 "$C0" "$C1" "${logspecs[@]}" -- "$WORK"/cli/*.out
logmap=()
for f in "$WORK"/logs/A?.*.log; do b=${f##*/}; logmap+=("$f=${b%%.*}"); done
check "check 3/4: convergence on every generation within a few (5) seconds; no failed request to a running replica" \
  helper check-converge "$WORK/poll-A.txt" "$EVENTS" 5.0 6 "$STALLS" "${logmap[@]}"

for n in "${A[@]}"; do stop_replica "$n"; done

# ------------------------------------------- 5. database restart under load

echo "== 5. database restarted under load"
T5=$(now)
pg_psql -c "CREATE DATABASE jwtkit_b" >/dev/null
for n in "${B[@]}"; do start_replica "$n"; done
ok=1
for n in "${B[@]}"; do wait_healthy "$n" || ok=0; done
check "check 5: three replicas (--rotate-every 1h) on a second database are healthy" test $ok = 1
helper wait-gen 1 5 "${SPEC_B[@]}" >/dev/null
doc_of "$URL_B" | helper doc-summary >"$WORK/c5/before.txt"
rev_before=$(psql_url "$URL_B" -c "SELECT revision FROM jwtkit_keyring")
bg load "$WORK/load" "$WORK/stop" "$SECRET" "${SPEC_B[@]}"
LOADPID=${BGPIDS[-1]}
sleep 2
say "stopping PostgreSQL"
pg_stop_only
src=$?
TD=$(now)
sleep 5
TU=$(now)
pg_start_again
urc=$?
say "PostgreSQL started again (stop exit $src, start exit $urc)"
check "check 5: the database was stopped and started again" test "$src" = 0 -a "$urc" = 0
sleep 3
touch "$WORK/stop"
wait "$LOADPID"
rm -f "$WORK/stop"
check "check 5: zero failed token and JWKS requests; every replica served both during the outage" \
  helper load-report "$WORK/load" "$TD" "$TU"
alive=0
for n in "${B[@]}"; do kill -0 "${RPID[$n]}" 2>/dev/null && alive=$((alive + 1)); done
expect "check 5: all replicas still running" 3 "$alive"
verified=0
total=0
while read -r name _ tok; do
  [ -n "$tok" ] || continue
  case $name in B1) other=B2 ;; B2) other=B3 ;; *) other=B1 ;; esac
  curl -s -o "$WORK/c5/$other.jwks" "http://127.0.0.1:${RPORT[$other]}/.well-known/jwks.json"
  printf '%s' "$tok" >"$WORK/c5/t.tok"
  total=$((total + 1))
  verify_token "$WORK/c5/t.tok" "$WORK/c5/$other.jwks" 2>/dev/null && verified=$((verified + 1))
done <"$WORK/load/outage-tokens.txt"
check "check 5: tokens minted during the outage verify against the JWKS after it ($verified of $total)" \
  test "$total" -ge 3 -a "$verified" = "$total"
doc_of "$URL_B" | helper doc-summary >"$WORK/c5/after.txt"
rev_after=$(psql_url "$URL_B" -c "SELECT revision FROM jwtkit_keyring")
check "check 5: the keyring is unchanged (same generation, kids and states; revision $rev_before -> $rev_after)" \
  bash -c "cmp -s '$WORK/c5/before.txt' '$WORK/c5/after.txt' && test '$rev_before' = '$rev_after' -a -n '$rev_before'"
kr rotate "$URL_B" --force >"$WORK/cli/B-force.out" 2>&1
T_EXT=$(now)
G=$(gen_of "$URL_B")
logs_of "${B[@]}"
check "check 5: after the restart a forced rotation (generation $G) reaches every replica within rotate-check + 2 s" \
  helper wait-gen "$G" 3.0 --since "$T_EXT" --stalls "$STALLS" "${LOGARGS[@]}" "${SPEC_B[@]}"
back=0
for ((i = 0; i < 100; i++)); do
  back=$(listen_count jwtkit_b)
  [ "$back" = 3 ] && break
  sleep 0.1
done
expect "check 5: the replicas LISTEN again" 3 "$back"
errs=$(grep -h '"level":"error"' "$WORK"/logs/B?.*.log | sed -n 's/.*"event":"\([^"]*\)".*/\1/p' |
  sort | uniq -c | sed 's/^/     /' | head -5)
if [ -n "$errs" ]; then
  echo "    errors logged during the outage (expected):"
  echo "$errs"
fi
T5E=$(now)

# ------------------------------------------------------ 6. only ciphertext

echo "== 6. rows hold only ciphertext"
for url in "$URL_A" "$URL_B"; do
  db=${url##*/}
  n=$(psql_url "$url" -c "SELECT count(*) FROM jwtkit_private_keys WHERE length(sealed) >= 100")
  plain=$(psql_url "$url" -c "SELECT name, kek_id, encode(nonce, 'escape'), encode(sealed, 'escape'), updated_at::text FROM jwtkit_private_keys" |
    grep -c -e 'PRIVATE KEY' -e 'BEGIN')
  inbytes=$(psql_url "$url" -c "SELECT count(*) FROM jwtkit_private_keys WHERE
      position(convert_to('PRIVATE KEY', 'UTF8') in sealed) > 0 OR position(convert_to('-----', 'UTF8') in sealed) > 0
      OR position('\\x2a8648ce3d0201'::bytea in sealed) > 0 OR position(convert_to('PRIVATE', 'UTF8') in nonce) > 0")
  check "check 6 ($db): $n sealed rows, no 'PRIVATE KEY'/PEM text in any column, no EC key DER inside" \
    test "$n" -ge 1 -a "$plain" = 0 -a "$inbytes" = 0
  check "check 6 ($db): the jwtkit_keyring doc has no \"d\" (or other private) member" \
    bash -c "'$PG_PSQL' '$url' -X -A -t -q -c 'SELECT doc FROM jwtkit_keyring' | '$PY' '$HELPER' no-private-members"
  if "$PG_BIN/pg_dump" -d "$url" >"$WORK/dump-$db.sql" 2>"$WORK/dump-$db.err"; then
    expect "check 6 ($db): pg_dump of the database has no 'PRIVATE KEY' and no \"d\" member" 0 \
      "$(grep -c -e 'PRIVATE KEY' -e '"d":' "$WORK/dump-$db.sql")"
  else
    bad "check 6 ($db): pg_dump: $(head -1 "$WORK/dump-$db.err")"
  fi
done

# ------------------------------------- 7. SIGTERM while the lock is held

echo "== 7. SIGTERM while another session holds the keyring lock"
# a session stuck inside a rotation (holding the advisory lock): B1's
# rotation thread waits for it; SIGTERM must not wait for the 30 s
# lock_timeout (jwtkit_keyring_interrupt cancels the wait)
"${PDEATH[@]}" "$PG_PSQL" "$URL_B" -X -q -c "BEGIN; SELECT pg_advisory_xact_lock(hashtext('jwtkit-keyring:' || current_schema())); SELECT pg_sleep(60); COMMIT" >/dev/null 2>&1 &
HOLDER=$!
waiting=0
for ((i = 0; i < 50; i++)); do
  waiting=$(psql_url "$URL_B" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'jwtkit' AND wait_event_type = 'Lock'")
  [ "$waiting" -ge 3 ] && break
  sleep 0.1
done
expect "check 7: the three replicas' rotations wait for the held lock" 3 "$waiting"
t7=$(now)
kill -TERM "${RPID[B1]}" 2>/dev/null
for ((i = 0; i < 300; i++)); do
  kill -0 "${RPID[B1]}" 2>/dev/null || break
  sleep 0.05
done
took=$(fmt "$t7" "$(now)")
st=0
if kill -0 "${RPID[B1]}" 2>/dev/null; then st=running; else wait "${RPID[B1]}" || st=$?; fi
unset "RPID[B1]"
check "check 7: B1 stopped on SIGTERM within 5 s while waiting for the lock (took ${took}s, exit $st)" \
  "$PY" -c "import sys; sys.exit(0 if '$st' == '0' and float('$took') < 5 else 1)"
kill "$HOLDER" 2>/dev/null
wait "$HOLDER" 2>/dev/null

for n in "${B[@]}"; do stop_replica "$n"; done

# ----------------------------------------------------------------- summary

echo
echo "timings: phases 1-4 $(fmt "$T0" "$T5")s (SIGKILL rounds $(fmt "$T4" "$C0")s), phase 5 $(fmt "$T5" "$T5E")s" \
  "(database down $(fmt "$TD" "$TU")s), total $(elapsed)s"
stalls=$("$PY" -c '
import sys
st = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
print("%d, %.1f s in all, longest %.1f s" % (len(st), sum(b - a for a, b in st), max([b - a for a, b in st] or [0])))' "$STALLS")
echo "machine stalls (the ticker could not run for > 0.25 s): $stalls"
echo "summary: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
