# tests/cli/lib.sh - a tiny assertion library for the jwtkit command tests.
#
#   source "$(dirname "$0")/lib.sh" "$@"     # $1 = path to the jwtkit binary
#   run sign --alg HS256 ...                 # sets RC, OUT, ERR
#   assert_rc 0
#   assert_out_contains "eyJ"                # also: assert_err_contains,
#   assert_out_eq "text"                     #  assert_out_not_contains, ...
#   assert_golden decode_hs256.txt           # compare OUT with golden/FILE
#   finish                                   # exit status of the test
#
# Every test runs in a fresh temporary directory (removed on exit).  Set
# UPDATE_GOLDEN=1 to rewrite golden files from the current output.
set -euo pipefail

JWTKIT=${1:?usage: $0 /path/to/jwtkit}
case $JWTKIT in /*) ;; *) JWTKIT=$PWD/$JWTKIT ;; esac
[ -x "$JWTKIT" ] || { echo "not executable: $JWTKIT" >&2; exit 2; }
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GOLDEN=$TESTS_DIR/golden
TEST_NAME=$(basename "$0" .sh)

# Sanitizer builds: make their reports impossible to miss.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:exitcode=97}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=98}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/jwtkit-$TEST_NAME.XXXXXX")
CLEANUP_PIDS=()
cleanup() {
  local p
  for p in "${CLEANUP_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
cd "$TMP"
# git must work in temp repos whatever the user's configuration is (and
# wherever the tests run: a git hook exports GIT_INDEX_FILE and others)
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_PREFIX
export GIT_CONFIG_NOSYSTEM=1 HOME=$TMP GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid \
  GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid

CHECKS=0
FAILS=0
RC=0
OUT=
ERR=
LAST=

# run ARGS...: run jwtkit with ARGS (stdin inherited: use < or <<<).
run() {
  LAST="jwtkit $*"
  set +e
  "$JWTKIT" "$@" >"$TMP/.out" 2>"$TMP/.err"
  RC=$?
  set -e
  OUT=$(<"$TMP/.out") # builtins only: PATH may be empty here
  ERR=$(<"$TMP/.err")
  if [[ "$ERR" == *Sanitizer* || "$ERR" == *"runtime error:"* ]]; then
    fail "sanitizer report"
  fi
}

fail() {
  FAILS=$((FAILS + 1))
  {
    echo "FAIL [$TEST_NAME line ${BASH_LINENO[${#BASH_LINENO[@]} - 2]:-?}]: $1"
    echo "  command: $LAST"
    echo "  exit:    $RC"
    echo "  stdout:  $(printf '%s' "$OUT" | head -c 600)"
    echo "  stderr:  $(printf '%s' "$ERR" | head -c 600)"
  } >&2
}

check() { CHECKS=$((CHECKS + 1)); }

assert_rc() {
  check
  [ "$RC" -eq "$1" ] || fail "expected exit $1, got $RC"
}
assert_out_eq() {
  check
  [ "$OUT" == "$1" ] || fail "stdout is not: $1"
}
assert_err_eq() {
  check
  [ "$ERR" == "$1" ] || fail "stderr is not: $1"
}
assert_out_contains() {
  check
  [[ "$OUT" == *"$1"* ]] || fail "stdout does not contain: $1"
}
assert_err_contains() {
  check
  [[ "$ERR" == *"$1"* ]] || fail "stderr does not contain: $1"
}
assert_out_not_contains() {
  check
  [[ "$OUT" != *"$1"* ]] || fail "stdout contains: $1"
}
assert_err_not_contains() {
  check
  [[ "$ERR" != *"$1"* ]] || fail "stderr contains: $1"
}
assert_out_empty() {
  check
  [ -z "$OUT" ] || fail "stdout is not empty"
}
# One line on stderr (verify's failure contract).
assert_err_one_line() {
  check
  [ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] || fail "stderr is not exactly one line"
}
# assert_golden FILE: stdout equals golden/FILE.
assert_golden() {
  check
  local g=$GOLDEN/$1
  if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
    mkdir -p "$GOLDEN"
    printf '%s\n' "$OUT" >"$g"
    return 0
  fi
  if [ ! -f "$g" ]; then
    fail "golden file $1 is missing (run with UPDATE_GOLDEN=1)"
  elif ! diff -u "$g" <(printf '%s\n' "$OUT") >"$TMP/.diff"; then
    fail "stdout differs from golden/$1: $(head -c 1500 "$TMP/.diff")"
  fi
}
# assert_true DESC CMD...: a shell condition.
assert_true() {
  check
  local d=$1
  shift
  "$@" || fail "$d"
}

# assert_write_error ARGS...: with stdout on /dev/full, jwtkit exits 3.
assert_write_error() {
  check
  [ -w /dev/full ] || return 0
  LAST="jwtkit $* >/dev/full"
  set +e
  "$JWTKIT" "$@" >/dev/full 2>"$TMP/.err"
  RC=$?
  set -e
  ERR=$(<"$TMP/.err")
  OUT=
  [ "$RC" -eq 3 ] && [[ "$ERR" == *"write error"* ]] || fail "expected exit 3 and a write error"
}

# b64url: base64url without padding of stdin.
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# serve_dir DIR: serve DIR on 127.0.0.1; sets PORT.  Stopped on exit.
serve_dir() {
  PORT=$(free_port)
  (cd "$1" && exec python3 -m http.server "$PORT" --bind 127.0.0.1 >/dev/null 2>&1) &
  CLEANUP_PIDS+=($!)
  local i
  for i in $(seq 1 100); do
    if python3 -c "import urllib.request,sys;urllib.request.urlopen('http://127.0.0.1:$PORT/',timeout=1)" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "http.server did not start" >&2
  return 1
}

finish() {
  if [ "$FAILS" -gt 0 ]; then
    echo "$TEST_NAME: $FAILS of $CHECKS checks failed" >&2
    exit 1
  fi
  echo "$TEST_NAME: all $CHECKS checks passed"
}
