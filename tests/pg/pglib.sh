# tests/pg/pglib.sh - a throwaway PostgreSQL server for the jwtkit tests.
#
#   set -euo pipefail
#   . "$(dirname "$0")/../pg/pglib.sh"
#   pg_start                       # exits 77 (SKIP) when no server is installed
#   pg_psql -c 'select 1'          # psql "$PG_URL" -X -A -t -v ON_ERROR_STOP=1
#   pg_restart_fast                # stop -m fast + start, same port and data
#   pg_stop_only; sleep 3; pg_start_again   # keep the database down a while
#   pg_stop                        # optional: also runs from the EXIT trap
#
# Functions
#   pg_start         find the binaries, initdb, start, create database jwtkit
#   pg_psql ARGS     psql through PG_URL (TCP + scram), unaligned, tuples only
#   pg_stop          stop (-m fast, escalating), delete the directory; never
#                    fails, idempotent, also called from the EXIT trap
#   pg_stop_only     stop the server, keep the data directory (returns 1 if it
#                    could not be stopped)
#   pg_start_again   start the stopped server again on the same port
#   pg_restart_fast  pg_stop_only + pg_start_again
#   pg_trap_add CMD SIG...  append CMD to the existing trap of each SIG
#   pg_port_in_use PORT     something listens on 127.0.0.1:PORT
#
# Exported after pg_start
#   PG_URL       postgresql://jwtkit:<password>@127.0.0.1:<port>/jwtkit
#   PG_HOST=127.0.0.1  PG_PORT  PG_USER=jwtkit  PG_DATABASE=jwtkit
#   PG_PASSWORD  random, 32 hex digits (PGPASSWORD is never set)
#   PG_DIR       the private temporary directory: data/, server.log, socket
#   PG_DATA      $PG_DIR/data      PG_LOG  $PG_DIR/server.log
#   PG_BIN       the server's bin directory      PG_PSQL  the psql used
#   PG_VERSION   major version of the server
#
# The server listens on 127.0.0.1 only (plus a Unix socket in $PG_DIR with
# trust authentication, used for setup); TCP logins use scram-sha-256.
# fsync and synchronous_commit stay on (durability is tested); only initdb
# runs with --no-sync (set PGLIB_INITDB_SYNC=1 to drop that).
#
# Cleanup.  pg_start adds pg_stop to the EXIT trap with pg_trap_add, after
# any EXIT trap already set.  bash also runs the EXIT trap when it is killed
# by an untrapped SIGTERM, SIGINT or SIGHUP, at once, even in the middle of
# a foreground command, so no separate signal traps are installed (a trap
# on TERM would be deferred until the foreground command ends).  A caller
# that sets its own EXIT trap after pg_start must use pg_trap_add or call
# pg_stop from it.  In any case a detached watchdog stops the server and
# deletes the directory within a second of the test shell's death, even
# after SIGKILL (a ctest timeout) or a replaced trap.
#
# As root (CI), initdb and postgres, which refuse to run as root, run as the
# `postgres` user (or a system user jwtkit-pgtest, created if needed).
# pg_start must be called from the main shell, not in $(...) or ( ... );
# one server per shell.  If no server is installed it prints "SKIP: ..."
# and exits 77, or fails (exit 1) when CI=true.  PG_BIN may be preset to a
# directory holding initdb, pg_ctl and postgres.

if [ -z "${BASH_VERSION:-}" ]; then
  echo "pglib.sh: needs bash" >&2
  # shellcheck disable=SC2317 # exit when executed instead of sourced
  return 1 2>/dev/null || exit 1
fi

PGLIB_PORT_MIN=${PGLIB_PORT_MIN:-20000}
# 32767 and below stays out of Linux's default ephemeral range (32768-60999)
PGLIB_PORT_MAX=${PGLIB_PORT_MAX:-32767}

pg__dir=""      # the directory this shell owns and must remove
pg__owner=""    # user running initdb/postgres when we are root
pg__owner_gid=""
pg__trap_pid="" # $BASHPID that has the EXIT trap installed
pg__newlog=""

pg__err() { echo "pglib: $*" >&2; }

# ---- traps ------------------------------------------------------------------

# pg__trap_parse "$(trap -p SIG)": sets pg__trap_cmd to the trap's command
pg__trap_parse() {
  pg__trap_cmd=""
  if [ -n "$1" ]; then
    eval "set -- $1"
    pg__trap_cmd=$3
  fi
}

# pg_trap_add CMD SIG...: append CMD (on its own line) to the current trap
# of each SIG; a CMD that is already one of the trap's lines is not added
# twice.  Call it from the shell whose trap it is (not inside $(...)).
pg_trap_add() {
  local cmd=$1 sig old new
  shift
  for sig in "$@"; do
    old=$(trap -p "$sig")
    pg__trap_parse "$old"
    old=$pg__trap_cmd
    case $'\n'"$old"$'\n' in
      *$'\n'"$cmd"$'\n'*) continue ;;
    esac
    if [ -n "$old" ]; then new=$old$'\n'$cmd; else new=$cmd; fi
    # shellcheck disable=SC2064
    trap -- "$new" "$sig"
  done
}

# never fails, so it cannot abort an EXIT trap running under set -e
pg__on_exit() {
  pg_stop || :
}

# ---- processes --------------------------------------------------------------

# pg__proc_start PID: the kernel start time of PID (guards against reuse)
pg__proc_start() {
  local s f
  { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
  s=${s##*) }
  read -r -a f <<<"$s"
  printf '%s\n' "${f[19]}"
}

# pg__proc_alive PID START: PID runs (not a zombie) and started at START
pg__proc_alive() {
  local s f
  { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
  s=${s##*) }
  read -r -a f <<<"$s"
  [ "${f[0]}" != Z ] && [ "${f[19]}" = "$2" ]
}

# pg__pid_running PID: PID exists and is not a zombie (an exited postmaster
# whose new parent has not reaped it yet holds no port or file)
pg__pid_running() {
  local s
  { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
  s=${s##*) }
  [ "${s%% *}" != Z ]
}

# pg__wait_gone PID: wait up to 10 s for PID to exit
pg__wait_gone() {
  local i
  for ((i = 0; i < 100; i++)); do
    pg__pid_running "$1" || return 0
    sleep 0.1
  done
  return 1
}

# pg__postmaster_pid DATADIR: print the pid of the postmaster running in
# DATADIR (checked against /proc/PID/cwd, the postmaster chdirs there)
pg__postmaster_pid() {
  local pid real cwd
  { read -r pid <"$1/postmaster.pid"; } 2>/dev/null || return 1
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  real=$(cd "$1" 2>/dev/null && pwd -P) || return 1
  cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || return 1
  [ "$cwd" = "$real" ] || return 1
  printf '%s\n' "$pid"
}

# pg__kill_postmaster DATADIR SIGNAL: signal the postmaster, wait up to 10 s
# for it to go, then SIGKILL it.  Returns 0 when no postmaster is left.
pg__kill_postmaster() {
  local pid i=0
  pid=$(pg__postmaster_pid "$1") || return 0
  kill -s "$2" "$pid" 2>/dev/null || :
  while pg__pid_running "$pid"; do
    i=$((i + 1))
    if [ "$i" -eq 100 ]; then kill -s KILL "$pid" 2>/dev/null || :; fi
    if [ "$i" -gt 150 ]; then return 1; fi
    sleep 0.1
  done
  return 0
}

# close every fd above 2 (so a daemon does not hold the test's pipes)
pg__close_fds() {
  local f
  for f in "/proc/$BASHPID/fd/"*; do
    f=${f##*/}
    case $f in 0 | 1 | 2 | *[!0-9]*) ;; *) eval "exec $f>&-" 2>/dev/null || : ;; esac
  done
}

# detached: waits for the test shell to die, then stops the server
pg__watchdog() {
  local parent=$1 start=$2 dir=$3
  cd / || :
  while [ -d "$dir" ] && pg__proc_alive "$parent" "$start"; do
    sleep 0.5
  done
  if [ -d "$dir" ]; then
    pg__kill_postmaster "$dir/data" QUIT || :
    rm -rf -- "$dir"
  fi
}

pg__start_watchdog() {
  local start script
  start=$(pg__proc_start "$$") || return 0
  script="$(declare -f pg__proc_alive pg__pid_running pg__postmaster_pid pg__kill_postmaster pg__close_fds pg__watchdog)"'
pg__close_fds
trap "" INT TERM HUP
pg__watchdog "$@"'
  if command -v setsid >/dev/null 2>&1; then
    setsid -f bash -c "$script" pglib-watchdog "$$" "$start" "$1" </dev/null >/dev/null 2>&1 || :
  else
    (bash -c "$script" pglib-watchdog "$$" "$start" "$1" </dev/null >/dev/null 2>&1 &) || :
  fi
}

# ---- running as the server's owner ----------------------------------------

pg__resolve_owner() {
  pg__owner=""
  pg__owner_gid=""
  [ "$(id -u)" = 0 ] || return 0
  local u
  for u in postgres jwtkit-pgtest; do
    if id -u "$u" >/dev/null 2>&1; then
      pg__owner=$u
      break
    fi
  done
  if [ -z "$pg__owner" ]; then
    # two tests may race to create it: accept "already exists"
    useradd -r -M -d /nonexistent -s /usr/sbin/nologin -c "jwtkit PostgreSQL tests" \
      jwtkit-pgtest >/dev/null 2>&1 || :
    if ! id -u jwtkit-pgtest >/dev/null 2>&1; then
      pg__err "running as root and cannot create the system user jwtkit-pgtest"
      return 1
    fi
    pg__owner=jwtkit-pgtest
  fi
  pg__owner_gid=$(id -g "$pg__owner")
}

# pg__as_owner CMD...: run CMD in $pg__dir as the server's owner
pg__as_owner() {
  (
    cd "$pg__dir" || exit 1
    pg__close_fds
    if [ -z "$pg__owner" ]; then
      exec "$@"
    elif command -v setpriv >/dev/null 2>&1; then
      exec setpriv --reuid="$pg__owner" --regid="$pg__owner_gid" --init-groups -- "$@"
    else
      exec runuser -u "$pg__owner" -- "$@"
    fi
  )
}

# ---- finding the server -----------------------------------------------------

pg__find_bin() {
  local d best="" v bestv=""
  if [ -n "${PG_BIN:-}" ]; then
    if [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] && [ -x "$PG_BIN/postgres" ]; then
      return 0
    fi
    pg__err "PG_BIN=$PG_BIN has no initdb/pg_ctl/postgres; searching /usr/lib/postgresql"
  fi
  for d in /usr/lib/postgresql/*/bin; do
    if [ ! -x "$d/initdb" ] || [ ! -x "$d/pg_ctl" ] || [ ! -x "$d/postgres" ]; then
      continue
    fi
    v=${d#/usr/lib/postgresql/}
    v=${v%/bin}
    case $v in '' | *[!0-9.]*) continue ;; esac
    # compare as major*1000+minor (9.6 -> 9006, 15 -> 15000)
    case $v in
      *.*) v=$((${v%%.*} * 1000 + ${v#*.})) ;;
      *) v=$((v * 1000)) ;;
    esac
    if [ -z "$bestv" ] || [ "$v" -gt "$bestv" ]; then
      best=$d
      bestv=$v
    fi
  done
  if [ -z "$best" ]; then
    return 1
  fi
  PG_BIN=$best
}

# ---- ports ------------------------------------------------------------------

# pg_port_in_use PORT: something accepts connections on 127.0.0.1:PORT
pg_port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    if [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; then
      return 0
    fi
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pg__pick_port() {
  local i p span=$((PGLIB_PORT_MAX - PGLIB_PORT_MIN + 1))
  for i in $(seq 1 50); do
    p=$((PGLIB_PORT_MIN + (RANDOM * 32768 + RANDOM) % span))
    if ! pg_port_in_use "$p"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# ---- server control ---------------------------------------------------------

pg__log_tail() {
  local f
  for f in "$@"; do
    if [ -s "$f" ]; then
      echo "pglib: --- last lines of $f ---" >&2
      tail -n 40 "$f" | sed 's/^/  | /' >&2 || :
    fi
  done
}

pg__write_conf() {
  local q=${pg__dir//\'/\'\'}
  cat >"$PG_DATA/pglib.conf" <<EOF || return 1
# written by tests/pg/pglib.sh
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$q'
max_connections = 100
password_encryption = 'scram-sha-256'
ssl = off
fsync = on
synchronous_commit = on
full_page_writes = on
logging_collector = off
log_destination = 'stderr'
lc_messages = 'C'
EOF
  if [ -n "$pg__owner" ]; then chown "$pg__owner:$pg__owner_gid" "$PG_DATA/pglib.conf"; fi
}

# what the server logged during the last failed start
pg__show_newlog() {
  if [ -n "$pg__newlog" ]; then
    echo "pglib: --- $PG_LOG ---" >&2
    printf '%s\n' "$pg__newlog" | tail -n 40 | sed 's/^/  | /' >&2 || :
  fi
}

# pg__ctl_start: 0 started, 2 the port was taken (nothing printed), 1 other
# failure (log printed); the server is not running after a failure
pg__ctl_start() {
  local before out
  pg__newlog=""
  before=$(stat -c %s "$PG_LOG" 2>/dev/null || echo 0)
  if out=$(pg__as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 30 -s start 2>&1); then
    return 0
  fi
  # after a timeout the server may still be coming up: make sure it is gone
  pg__kill_postmaster "$PG_DATA" QUIT || :
  pg__newlog=$(tail -c +"$((before + 1))" "$PG_LOG" 2>/dev/null || :)
  case $pg__newlog in
    *"Address already in use"*) return 2 ;; # lc_messages is C
  esac
  pg__err "pg_ctl start failed${out:+: $out}"
  pg__show_newlog
  return 1
}

pg__fail_start() {
  pg__err "$1"
  shift
  pg__log_tail "$@"
  pg_stop
  return 1
}

pg_start() {
  local base dir rc i out

  if [ -n "$pg__dir" ] && [ -d "$pg__dir" ]; then
    pg__err "pg_start: a server of this shell is already running ($pg__dir)"
    return 1
  fi
  if ! pg__find_bin; then
    case ${CI:-} in
      true | TRUE | True | 1 | yes)
        echo "FAIL: PostgreSQL server not installed (no /usr/lib/postgresql/*/bin/postgres); CI=true requires it (apt-get install postgresql)" >&2
        exit 1
        ;;
    esac
    echo "SKIP: PostgreSQL server not installed"
    exit 77
  fi
  PG_PSQL=$PG_BIN/psql
  [ -x "$PG_PSQL" ] || PG_PSQL=$(command -v psql || :)
  if [ -z "$PG_PSQL" ]; then
    pg__err "psql not found (neither $PG_BIN/psql nor in PATH)"
    return 1
  fi
  pg__resolve_owner || return 1

  # the EXIT trap first, so a kill during initdb cleans up too
  if [ "$pg__trap_pid" != "$BASHPID" ]; then
    pg_trap_add pg__on_exit EXIT
    pg__trap_pid=$BASHPID
  fi

  # private directory; it also holds the socket (path limit ~107 bytes) and
  # must be reachable by the owner: fall back to /tmp when TMPDIR is not
  base=${TMPDIR:-/tmp}
  base=${base%/}
  for i in 1 2; do
    if [ "${#base}" -gt 60 ]; then base=/tmp; fi
    dir=$(mktemp -d "$base/jwtkit-pg.XXXXXX") || return 1
    pg__dir=$dir
    pg__start_watchdog "$dir"
    if [ -n "$pg__owner" ]; then chown "$pg__owner:$pg__owner_gid" "$dir"; fi
    if pg__as_owner test -w "$dir"; then break; fi
    pg_stop
    if [ "$base" = /tmp ]; then
      pg__err "user ${pg__owner:-$(id -un)} cannot use a directory under /tmp"
      return 1
    fi
    base=/tmp
  done

  PG_DIR=$dir
  PG_DATA=$dir/data
  PG_LOG=$dir/server.log
  PG_HOST=127.0.0.1
  PG_USER=jwtkit
  PG_DATABASE=jwtkit
  PG_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  if [ "${#PG_PASSWORD}" -ne 32 ]; then
    pg__fail_start "could not read /dev/urandom"
    return 1
  fi
  if ! (umask 077 && printf '%s\n' "$PG_PASSWORD" >"$dir/pwfile"); then
    pg__fail_start "cannot write $dir/pwfile"
    return 1
  fi
  if [ -n "$pg__owner" ]; then chown "$pg__owner:$pg__owner_gid" "$dir/pwfile"; fi

  local nosync=--no-sync
  if [ "${PGLIB_INITDB_SYNC:-0}" = 1 ]; then nosync=""; fi
  if ! pg__as_owner "$PG_BIN/initdb" -D "$PG_DATA" \
    --auth-local=trust --auth-host=scram-sha-256 \
    --username=jwtkit --pwfile="$dir/pwfile" \
    -E UTF8 --no-locale ${nosync:+"$nosync"} >"$dir/initdb.log" 2>&1; then
    pg__fail_start "initdb failed" "$dir/initdb.log"
    return 1
  fi
  rm -f "$dir/pwfile"
  read -r PG_VERSION <"$PG_DATA/PG_VERSION" || :
  if ! printf "\ninclude 'pglib.conf'\n" >>"$PG_DATA/postgresql.conf"; then
    pg__fail_start "cannot write $PG_DATA/postgresql.conf"
    return 1
  fi

  rc=2
  for i in $(seq 1 20); do
    if ! PG_PORT=$(pg__pick_port); then
      pg__fail_start "no free port in $PGLIB_PORT_MIN-$PGLIB_PORT_MAX"
      return 1
    fi
    if ! pg__write_conf; then
      pg__fail_start "cannot write $PG_DATA/pglib.conf"
      return 1
    fi
    rc=0
    pg__ctl_start || rc=$?
    [ "$rc" -eq 2 ] || break
  done
  if [ "$rc" -eq 2 ]; then
    pg__err "20 ports were free when tried but already in use when bound"
    pg__show_newlog
  fi
  if [ "$rc" -ne 0 ]; then
    pg__fail_start "PostgreSQL did not start on 127.0.0.1:$PG_PORT"
    return 1
  fi

  if ! out=$("$PG_PSQL" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$PG_PORT" -U jwtkit -d postgres \
    -c "CREATE DATABASE jwtkit OWNER jwtkit" 2>&1); then
    pg__fail_start "CREATE DATABASE jwtkit failed: $out" "$PG_LOG"
    return 1
  fi

  PG_URL="postgresql://jwtkit:$PG_PASSWORD@127.0.0.1:$PG_PORT/jwtkit"
  export PG_URL PG_HOST PG_PORT PG_USER PG_DATABASE PG_PASSWORD \
    PG_DIR PG_DATA PG_LOG PG_BIN PG_PSQL PG_VERSION
  echo "pglib: PostgreSQL $PG_VERSION on 127.0.0.1:$PG_PORT ($PG_DIR${pg__owner:+, as $pg__owner})" >&2
}

pg_psql() {
  "$PG_PSQL" "$PG_URL" -X -A -t -v ON_ERROR_STOP=1 "$@"
}

pg_stop_only() {
  local pid
  if [ -z "$pg__dir" ] || [ ! -d "$PG_DATA" ]; then
    pg__err "pg_stop_only: no server"
    return 1
  fi
  if [ ! -f "$PG_DATA/postmaster.pid" ]; then
    return 0
  fi
  pid=$(pg__postmaster_pid "$PG_DATA") || pid=""
  if ! pg__as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 -s stop >/dev/null; then
    pg__err "pg_ctl stop -m fast failed; shutting down immediately"
    pg__kill_postmaster "$PG_DATA" QUIT || {
      pg__err "could not stop the postmaster in $PG_DATA"
      return 1
    }
  fi
  # pg_ctl returns once postmaster.pid is gone, a moment before the
  # process has exited
  if [ -n "$pid" ] && ! pg__wait_gone "$pid"; then
    pg__err "postmaster $pid still running after shutdown"
    return 1
  fi
}

pg_start_again() {
  local rc=0
  if [ -z "$pg__dir" ] || [ ! -d "$PG_DATA" ]; then
    pg__err "pg_start_again: no data directory (call pg_start first)"
    return 1
  fi
  if pg__postmaster_pid "$PG_DATA" >/dev/null; then
    pg__err "pg_start_again: the server is running"
    return 1
  fi
  pg__ctl_start || rc=$?
  if [ "$rc" -eq 2 ]; then
    pg__err "pg_start_again: port $PG_PORT was taken while the server was down"
    pg__show_newlog
  fi
  [ "$rc" -eq 0 ]
}

pg_restart_fast() {
  pg_stop_only && pg_start_again
}

pg_stop() {
  local dir=$pg__dir pid
  [ -n "$dir" ] || return 0
  if [ -d "$dir/data" ] && [ -f "$dir/data/postmaster.pid" ]; then
    pid=$(pg__postmaster_pid "$dir/data") || pid=""
    if ! pg__as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 -s stop >/dev/null 2>&1; then
      pg__kill_postmaster "$dir/data" QUIT || pg__err "could not stop the postmaster in $dir/data"
    fi
    if [ -n "$pid" ]; then pg__wait_gone "$pid" || :; fi
  fi
  rm -rf -- "$dir" || :
  pg__dir=""
  return 0
}
