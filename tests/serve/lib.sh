# Shared helpers of the jwtkit serve tests (sourced by serve_test.sh and
# load_test.sh).  Everything talks to 127.0.0.1 only and cleans up after
# itself.
#
# Environment (set by services/CMakeLists.txt):
#   SERVE_BIN, VERIFY_BIN, ROTATE_BIN, PYTHON (/usr/bin/python3), CURL,
#   JWTKIT_CLI_BIN (optional), SOURCE_DIR (optional)

: "${SERVE_BIN:?SERVE_BIN is not set}"
: "${VERIFY_BIN:?VERIFY_BIN is not set}"
: "${ROTATE_BIN:?ROTATE_BIN is not set}"
PY=${PYTHON:-/usr/bin/python3}
CURL=${CURL:-curl}

WORK=$(mktemp -d /tmp/jwtkit-serve-test.XXXXXX)
SPID=""
cleanup() {
  if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
    kill -KILL "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
  fi
  if [ "${KEEP_WORK:-0}" = 1 ] || [ "$FAIL" -gt 0 ]; then
    echo "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

# shellcheck source=tests/lib/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/checks.sh"

free_port() {
  "$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# start_server LOGFILE ARGS... : sets SPID, PORT, BASE; waits for /healthz
start_server() {
  local log=$1
  shift
  PORT=$(free_port)
  BASE="http://127.0.0.1:$PORT"
  "$SERVE_BIN" --listen "127.0.0.1:$PORT" "$@" 2>>"$log" &
  SPID=$!
  local i
  for i in $(seq 1 200); do
    if ! kill -0 "$SPID" 2>/dev/null; then
      echo "server exited during start-up; log:"
      tail -20 "$log"
      SPID=""
      return 1
    fi
    if [ "$("$CURL" -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ]; then return 0; fi
    sleep 0.1
  done
  echo "server did not become healthy; log:"
  tail -20 "$log"
  return 1
}

# launch_server LOGFILE ARGS... : like start_server, but only waits until
# the server answers at all (any status)
launch_server() {
  local log=$1
  shift
  PORT=$(free_port)
  BASE="http://127.0.0.1:$PORT"
  "$SERVE_BIN" --listen "127.0.0.1:$PORT" "$@" 2>>"$log" &
  SPID=$!
  local i
  for i in $(seq 1 200); do
    kill -0 "$SPID" 2>/dev/null || { SPID=""; return 1; }
    [ "$("$CURL" -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" != 000 ] && return 0
    sleep 0.1
  done
  return 1
}

# stop_server [SIGNAL]: TERM by default; sets SEXIT and SSTOP_MS
stop_server() {
  local sig=${1:-TERM}
  local t0 t1
  t0=$(date +%s%N)
  kill "-$sig" "$SPID"
  local i
  for i in $(seq 1 100); do
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$SPID" 2>/dev/null; then
    # still running after 5 s: record the failure, then make sure it ends
    sleep 1
    kill -0 "$SPID" 2>/dev/null && kill -KILL "$SPID"
  fi
  wait "$SPID"
  SEXIT=$?
  t1=$(date +%s%N)
  SSTOP_MS=$(((t1 - t0) / 1000000))
  SPID=""
}

# json FILE 'python expression over d' : true when the expression is
json() {
  "$PY" - "$1" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2])
sys.exit(0 if ok else 1)
EOF
}

# jget FILE 'python expression over d' : print it
jget() {
  "$PY" - "$1" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))
EOF
}

# header FILE NAME : value of a response header (curl -D dump), CR stripped
header() {
  grep -i "^$2:" "$1" | head -1 | sed -e 's/^[^:]*:[ ]*//' -e 's/\r$//'
}

status_of() { head -1 "$1" | awk '{print $2}'; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
