#!/usr/bin/env bash
# tests/pg/selftest.sh - checks tests/pg/pglib.sh: start, psql over the Unix
# socket setup and over TCP with scram, fast restart, stop/start again, stop;
# then that a test shell killed by SIGTERM, Ctrl-C (SIGINT to its process
# group) or SIGKILL, or one that replaces the EXIT trap, leaves no server
# and no directory behind.  Prints the timings.  Exits 77 when no
# PostgreSQL server is installed (1 with CI=true).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jwtkit-pgself.XXXXXX")
CHILD_PIDS=()

cleanup() {
  local p
  for p in "${CHILD_PIDS[@]}"; do
    kill -KILL -- "-$p" 2>/dev/null || :
  done
  rm -rf -- "$WORK"
}
# set before pg_start: pglib.sh must chain its own cleanup after this one
trap cleanup EXIT

# shellcheck source=tests/pg/pglib.sh
. "$HERE/pglib.sh"

# shellcheck source=tests/lib/checks.sh
. "$HERE/../lib/checks.sh"
ms() { echo $(($(date +%s%N) / 1000000)); }
port_closed() { ! pg_port_in_use "$1"; }
pid_gone() { ! pg__pid_running "$1"; }
psql_fails() { ! pg_psql -c 'select 1' >/dev/null 2>&1; }
exported() {
  local v
  for v; do [[ $(declare -p "$v" 2>/dev/null) == "declare -x"* ]] || return 1; done
}
rejected() { [ "$1" -ne 0 ] && [[ $2 == *"password authentication failed"* ]]; }
stopped() { [ ! -e "$1" ] && port_closed "$2"; }
# gone_within SECONDS DIR PORT: the directory is removed and nothing listens
gone_within() {
  local i n=$(($1 * 10))
  for ((i = 0; i < n; i++)); do
    if stopped "$2" "$3"; then return 0; fi
    sleep 0.1
  done
  return 1
}
# no process still mentions DIR on its command line (pglib's watchdog)
no_process_mentions() {
  local i f
  for ((i = 0; i < 30; i++)); do
    if ! grep -lsF -- "$1" /proc/[0-9]*/cmdline >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  grep -lsF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null | while read -r f; do
    echo "  still running: ${f%/cmdline}: $(tr '\0' ' ' <"$f" | cut -c1-100)"
  done
  return 1
}

# ---- start ------------------------------------------------------------------

t0=$(ms)
pg_start
t_start=$(($(ms) - t0))
echo "# pg_start: ${t_start} ms (PostgreSQL $PG_VERSION, port $PG_PORT, $PG_DIR)"

DIR=$PG_DIR
PORT=$PG_PORT
check "PG_URL has the expected form" \
  test "$PG_URL" = "postgresql://jwtkit:$PG_PASSWORD@127.0.0.1:$PG_PORT/jwtkit"
check "PGPASSWORD is not set" test -z "${PGPASSWORD:-}"
check "exported: PG_URL PG_BIN PG_DIR PG_PORT" exported PG_URL PG_BIN PG_DIR PG_PORT
check "PG_BIN has postgres, PG_DIR exists" test -x "$PG_BIN/postgres" -a -d "$PG_DIR"
check "port $PORT in 20000-40000" test "$PORT" -ge 20000 -a "$PORT" -le 40000
check "something listens on 127.0.0.1:$PORT" pg_port_in_use "$PORT"
if command -v ss >/dev/null 2>&1; then
  expect "listens on 127.0.0.1 only" "127.0.0.1:$PORT" \
    "$(ss -Hltn "sport = :$PORT" | awk '{print $4}' | sort -u | tr '\n' ' ' | sed 's/ $//')"
fi
expect "pg_psql -c 'select 1'" 1 "$(pg_psql -c 'select 1')"

PMPID=$(pg__postmaster_pid "$PG_DATA")
if [ "$(id -u)" = 0 ]; then
  owner=$(stat -c %U "/proc/$PMPID")
  check "as root, the postmaster runs as an unprivileged user ($owner)" test "$owner" != root
fi

# ---- authentication and settings ---------------------------------------------

expect "TCP connection through PG_URL: user, database, address" \
  "jwtkit|jwtkit|127.0.0.1" \
  "$(pg_psql -c 'select current_user, current_database(), host(inet_server_addr())')"
expect "jwtkit's password is stored as SCRAM-SHA-256" t \
  "$(pg_psql -c "select rolpassword like 'SCRAM-SHA-256\$%' from pg_authid where rolname = 'jwtkit'")"
expect "every host rule of pg_hba.conf is scram-sha-256" 0 \
  "$(pg_psql -c "select count(*) from pg_hba_file_rules where type like 'host%' and auth_method <> 'scram-sha-256'")"
export PGPASSFILE=/dev/null
bad_url="postgresql://jwtkit:wrong-password@127.0.0.1:$PG_PORT/jwtkit"
out=$("$PG_PSQL" "$bad_url" -X -A -t -c 'select 1' 2>&1) && rc=0 || rc=$?
check "a wrong password is rejected" rejected "$rc" "$out"
out=$("$PG_PSQL" "postgresql://jwtkit@127.0.0.1:$PG_PORT/jwtkit" -X -A -t -w -c 'select 1' 2>&1) && rc=0 || rc=$?
check "no password over TCP is rejected" test "$rc" -ne 0
expect "database jwtkit is owned by jwtkit" jwtkit \
  "$(pg_psql -c "select pg_get_userbyid(datdba) from pg_database where datname = 'jwtkit'")"
expect "settings" "127.0.0.1|$PORT|on|on|100|UTF8|C|$PG_DIR" \
  "$(pg_psql -F '|' -c "select current_setting('listen_addresses'), current_setting('port'),
       current_setting('fsync'), current_setting('synchronous_commit'),
       current_setting('max_connections'), current_setting('server_encoding'),
       current_setting('lc_collate'), current_setting('unix_socket_directories')")"
check "the server logs to \$PG_DIR/server.log" test -s "$PG_DIR/server.log"

pg_psql -q -c "create table durable (v text); insert into durable values ('committed')"

# ---- restart ----------------------------------------------------------------

t0=$(ms)
pg_restart_fast
t_restart=$(($(ms) - t0))
echo "# pg_restart_fast: ${t_restart} ms"
expect "answers again after pg_restart_fast" 1 "$(pg_psql -c 'select 1')"
expect "committed row survived the restart" committed "$(pg_psql -c 'select v from durable')"
expect "same port after restart" "$PORT" "$PG_PORT"
PMPID2=$(pg__postmaster_pid "$PG_DATA")
check "a new postmaster ($PMPID -> $PMPID2)" test "$PMPID" != "$PMPID2"
check "the old postmaster is gone" pid_gone "$PMPID"

pg_stop_only
check "pg_stop_only: port closed" port_closed "$PORT"
check "pg_stop_only: connections fail" psql_fails
check "pg_stop_only: data directory kept" test -f "$PG_DATA/PG_VERSION"
sleep 1
pg_start_again
expect "pg_start_again: answers" committed "$(pg_psql -c 'select v from durable')"

# ---- stop -------------------------------------------------------------------

PMPID=$(pg__postmaster_pid "$PG_DATA")
t0=$(ms)
pg_stop
t_stop=$(($(ms) - t0))
echo "# pg_stop: ${t_stop} ms"
check "pg_stop: port $PORT closed" port_closed "$PORT"
check "pg_stop: $DIR removed" test ! -e "$DIR"
check "pg_stop: postmaster $PMPID gone" pid_gone "$PMPID"
check "pg_stop: watchdog gone" no_process_mentions "$DIR"
pg_stop
ok "pg_stop twice is harmless"

# ---- a test shell that dies -------------------------------------------------

# child KIND: a test script that starts a server, reports it, then sleeps
cat >"$WORK/child.sh" <<'EOF'
set -euo pipefail
. "$1"
info=$2
kind=$3
if [ "$kind" = chained ]; then trap 'echo caller-trap-ran' EXIT; fi
pg_start 2>/dev/null
if [ "$kind" = overwrite ]; then trap 'echo replaced-trap-ran' EXIT; fi
echo "$PG_DIR $PG_PORT" >"$info.tmp"
mv "$info.tmp" "$info"
case $kind in
  chained | overwrite) exit 3 ;;
esac
sleep 60
EOF

# run_child KIND: starts it in its own session, waits for the server;
# sets CPID CDIR CPORT
run_child() {
  local info=$WORK/info.$1 i
  rm -f "$info"
  setsid env --default-signal=INT,TERM,HUP bash "$WORK/child.sh" "$HERE/pglib.sh" "$info" "$1" \
    >"$WORK/out.$1" 2>&1 &
  CPID=$!
  CHILD_PIDS+=("$CPID")
  for ((i = 0; i < 300; i++)); do
    if [ -f "$info" ]; then break; fi
    if ! kill -0 "$CPID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if [ ! -f "$info" ]; then
    bad "$1: child did not start a server"
    cat "$WORK/out.$1"
    return 1
  fi
  read -r CDIR CPORT <"$info"
}

if run_child term; then
  kill -TERM "$CPID"
  t0=$(ms)
  wait "$CPID" && rc=0 || rc=$?
  check "SIGTERM during a foreground command: server stopped, dir removed" gone_within 5 "$CDIR" "$CPORT"
  echo "#   (cleanup finished $(($(ms) - t0)) ms after SIGTERM)"
  expect "SIGTERM: exit status" 143 "$rc"
  kill -KILL -- "-$CPID" 2>/dev/null || : # its orphaned sleep
fi

if run_child int; then
  kill -INT -- "-$CPID" # Ctrl-C: the whole foreground process group
  wait "$CPID" && rc=0 || rc=$?
  check "SIGINT to the process group: server stopped, dir removed" gone_within 5 "$CDIR" "$CPORT"
  expect "SIGINT: exit status" 130 "$rc"
fi

if run_child kill; then
  kill -KILL "$CPID"
  t0=$(ms)
  { wait "$CPID"; } 2>/dev/null || : # no "Killed" job message
  check "SIGKILL: the watchdog stopped the server and removed the dir" gone_within 5 "$CDIR" "$CPORT"
  echo "#   (watchdog finished within $(($(ms) - t0)) ms of SIGKILL)"
  kill -KILL -- "-$CPID" 2>/dev/null || :
fi

if run_child chained; then
  wait "$CPID" && rc=0 || rc=$?
  check "EXIT trap chained: stopped by the time the shell is gone" stopped "$CDIR" "$CPORT"
  expect "EXIT trap chained: exit status kept" 3 "$rc"
  check "EXIT trap chained: the caller's trap ran too" grep -q caller-trap-ran "$WORK/out.chained"
fi

if run_child overwrite; then
  wait "$CPID" && rc=0 || rc=$?
  check "EXIT trap replaced by the test: the watchdog stopped the server" gone_within 5 "$CDIR" "$CPORT"
fi

echo "# $PASS passed, $FAIL failed; startup ${t_start} ms, restart ${t_restart} ms, stop ${t_stop} ms"
[ "$FAIL" -eq 0 ]
