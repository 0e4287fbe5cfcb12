# tests/gate/lib.sh - shared helpers of the gate end-to-end tests.
#
#   source "$(dirname "$0")/lib.sh"
#   start_issuer [ISSUER OPTIONS]        # ISSUER_PORT, $TMP/issuer/ (keys, kids)
#   write_gate_conf <<EOF ... EOF        # $TMP/gate.conf; @ISSUER@ @TMP@ replaced
#   start_gate                           # GATE_PORT
#   start_upstream; start_nginx          # NGINX_PORT, UPSTREAM_PORT
#   mint RS256 --aud api ...             # prints a token
#   call /api/x [curl options]           # through nginx: STATUS, BODY, HEADERS
#   auth [curl options]                  # straight to the gate's /auth
#   check "what" test-expression ; finish
#
# Everything listens on 127.0.0.1 with free ports; every process started
# here is stopped on exit.  Needs GATE_BIN, ISSUER_BIN, MINT_BIN (set by
# ctest); exits 77 (skipped) when nginx or curl is missing.
set -uo pipefail

: "${GATE_BIN:?GATE_BIN not set (run through ctest)}"
: "${ISSUER_BIN:?}"
: "${MINT_BIN:?}"
GATE_TESTS_DIR=${GATE_TESTS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
TEST_NAME=$(basename "$0" .sh)
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:exitcode=97}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=98}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/jwtkit-gate-$TEST_NAME.XXXXXX")
chmod 755 "$TMP"
PIDS=()
CHECKS=0
FAILS=0
GATE_PID=
GATE_EXIT_CHECKED=0

cleanup() {
  local i p
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    p=${PIDS[i]}
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ "$FAILS" -ne 0 ] || [ -n "${KEEP_TMP:-}" ]; then
    echo "--- logs kept in $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT

log() { echo "[$TEST_NAME] $*"; }

check() { # check "description" command...
  local what=$1
  shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then
    echo "ok   $what"
  else
    echo "FAIL $what"
    FAILS=$((FAILS + 1))
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
wait_for() { # wait_for SECONDS command...: poll every 0.1 s until true or SECONDS passed
  local end=$(($(now_ms) + $1 * 1000))
  shift
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ "$(now_ms)" -lt "$end" ] || return 1
    sleep 0.1
  done
}

# ---------------------------------------------------------------- issuer
ISSUER_DIR=$TMP/issuer
ISSUER_PORT=
ISSUER_PID=
start_issuer() {
  mkdir -p "$ISSUER_DIR"
  ISSUER_PORT=${ISSUER_PORT:-$(free_port)}
  rm -f "$ISSUER_DIR/ready"
  "$ISSUER_BIN" --port "$ISSUER_PORT" --state "$ISSUER_DIR" --control "$TMP/issuer.control" "$@" \
    >>"$TMP/issuer.log" 2>&1 &
  ISSUER_PID=$!
  PIDS+=("$ISSUER_PID")
  wait_for 20 test -f "$ISSUER_DIR/ready" || { echo "issuer did not start"; cat "$TMP/issuer.log"; exit 1; }
  wait_for 5 curl -sf "http://127.0.0.1:$ISSUER_PORT/healthz" || { echo "issuer not answering"; exit 1; }
}
stop_issuer() {
  kill -TERM "$ISSUER_PID" 2>/dev/null
  wait "$ISSUER_PID" 2>/dev/null
}
issuer_mode() { echo "$*" >"$TMP/issuer.control"; }
issuer_count() { curl -s --max-time 5 "http://127.0.0.1:$ISSUER_PORT/count"; }
issuer_rotate() { # rotate and wait for the new generation
  local g
  g=$(cat "$ISSUER_DIR/generation")
  kill -USR1 "$ISSUER_PID"
  wait_for 10 bash -c "[ \"\$(cat '$ISSUER_DIR/generation')\" != '$g' ]"
}
JWKS_URL() { echo "http://127.0.0.1:$ISSUER_PORT/jwks.json"; }

# mint ALG [gate_mint options]: a token signed with the issuer's current key
mint() {
  local alg=$1
  shift
  "$MINT_BIN" --alg "$alg" --key "$ISSUER_DIR/$alg.key.pem" --kid-file "$ISSUER_DIR/$alg.kid" "$@"
}

# ------------------------------------------------------------------ gate
GATE_PORT=
write_gate_conf() { # stdin -> $TMP/gate.conf (or $1), with @ISSUER@ and @TMP@ expanded
  local out=${1:-$TMP/gate.conf}
  sed -e "s#@ISSUER@#http://127.0.0.1:${ISSUER_PORT:-1}#g" -e "s#@TMP@#$TMP#g" >"$out"
}
start_gate() { # start_gate [CONF] [extra options]
  local conf=${1:-$TMP/gate.conf}
  shift || true
  GATE_PORT=${GATE_PORT:-$(free_port)}
  "$GATE_BIN" --config "$conf" --listen "127.0.0.1:$GATE_PORT" "$@" >>"$TMP/gate.out" 2>>"$TMP/gate.log" &
  GATE_PID=$!
  GATE_EXIT_CHECKED=0
  PIDS+=("$GATE_PID")
  wait_for 20 curl -s -o /dev/null "http://127.0.0.1:$GATE_PORT/healthz" || {
    echo "gate did not start"
    cat "$TMP/gate.log"
    exit 1
  }
}
gate_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$GATE_PORT/healthz")" = 200 ]; }
# metric 'name{labels}' -> value (0 when absent)
metric() {
  curl -s --max-time 5 "http://127.0.0.1:$GATE_PORT/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print (v == "" ? 0 : v) }'
}
jwks_metric() { metric "$1{source=\"$(JWKS_URL)\"${2:-}}"; }
decisions() { metric "jwtkit_gate_decisions_total{result=\"$1\",reason=\"$2\"}"; }

# stop the gate with SIGTERM and check it exits 0 (ASan: no leak) within 10 s
stop_gate() {
  [ -n "$GATE_PID" ] || return 0
  kill -TERM "$GATE_PID"
  local n=100 rc
  while [ $n -gt 0 ] && kill -0 "$GATE_PID" 2>/dev/null; do sleep 0.1; n=$((n - 1)); done
  wait "$GATE_PID"
  rc=$?
  check "gate exits 0 on SIGTERM within 10 s (got $rc)" test "$rc" = 0
  GATE_PID=
  GATE_EXIT_CHECKED=1
}

# ----------------------------------------------------- upstream and nginx
UPSTREAM_PORT=
start_upstream() {
  UPSTREAM_PORT=$(free_port)
  python3 "$GATE_TESTS_DIR/upstream.py" "$UPSTREAM_PORT" >>"$TMP/upstream.log" 2>&1 &
  PIDS+=("$!")
  wait_for 20 curl -s -o /dev/null "http://127.0.0.1:$UPSTREAM_PORT/" || { echo "upstream did not start"; exit 1; }
}

NGINX_PORT=
NGINX_EXTRA=${NGINX_EXTRA:-}           # more server-level lines
NGINX_HTTP_EXTRA=${NGINX_HTTP_EXTRA:-} # more http-level lines (upstreams)
need_nginx() {
  [ -x "$NGINX" ] || { echo "SKIP: nginx not installed (apt-get install nginx-light)"; exit 77; }
}
start_nginx() {
  need_nginx
  NGINX_PORT=${NGINX_PORT:-$(free_port)}
  local d=$TMP/nginx user=""
  mkdir -p "$d/tmp" "$d/logs" "$d/html"
  [ "$(id -u)" = 0 ] && user="user root;"
  cat >"$d/nginx.conf" <<EOF
$user
worker_processes ${NGINX_WORKERS:-1};
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  large_client_header_buffers 4 32k;

  upstream jwtkit_gate {
    server 127.0.0.1:$GATE_PORT;
    keepalive 32;
  }
  upstream app { server 127.0.0.1:${UPSTREAM_PORT:-9}; keepalive 8; }
  $NGINX_HTTP_EXTRA

  server {
    listen 127.0.0.1:$NGINX_PORT;

    location = /_auth {
      internal;
      proxy_pass http://jwtkit_gate/auth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI \$request_uri;
      proxy_set_header X-Original-Host \$host;
    }

    location /api/ {
      auth_request /_auth;
      auth_request_set \$gate_user \$upstream_http_x_user;
      auth_request_set \$gate_roles \$upstream_http_x_roles;
      proxy_set_header X-User \$gate_user;
      proxy_set_header X-Roles \$gate_roles;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }
    $NGINX_EXTRA
  }
}
EOF
  "$NGINX" -p "$d" -c "$d/nginx.conf" -g "daemon off; pid $d/nginx.pid; error_log stderr;" \
    >>"$TMP/nginx.log" 2>&1 &
  PIDS+=("$!")
  wait_for 20 curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" || {
    echo "nginx did not start"
    cat "$TMP/nginx.log"
    exit 1
  }
}

# ---------------------------------------------------------------- requests
STATUS=
BODY=
HEADERS=
_req() { # URL [curl options]
  local url=$1
  shift
  STATUS=$(curl -s --max-time "${REQ_TIMEOUT:-10}" -o "$TMP/.body" -D "$TMP/.headers" -w '%{http_code}' "$@" "$url")
  BODY=$(cat "$TMP/.body" 2>/dev/null)
  HEADERS=$(tr -d '\r' <"$TMP/.headers" 2>/dev/null)
}
call() { # call PATH [curl options]: through nginx
  local path=$1
  shift
  _req "http://127.0.0.1:$NGINX_PORT$path" "$@"
}
auth() { # auth [curl options]: the gate directly, as nginx would ask it
  _req "http://127.0.0.1:$GATE_PORT/auth" -H "X-Original-URI: ${AUTH_URI:-/api/x}" "$@"
}
bearer() { echo "Authorization: Bearer $1"; }
header_is() { grep -qix "$1: $2" <<<"$HEADERS"; }
body_has() { grep -qF -- "$1" <<<"$BODY"; }
www_auth() { grep -i '^WWW-Authenticate:' <<<"$HEADERS" | sed 's/^[^:]*: *//'; }

# b64url of a string
b64url() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }

finish() {
  [ "$GATE_EXIT_CHECKED" = 1 ] || stop_gate
  if grep -qE 'Sanitizer|runtime error:' "$TMP/gate.log" 2>/dev/null; then
    echo "FAIL sanitizer report in the gate's log:"
    grep -E -A30 'Sanitizer|runtime error:' "$TMP/gate.log" | head -60
    FAILS=$((FAILS + 1))
  fi
  echo "$TEST_NAME: $CHECKS checks, $FAILS failed"
  if [ "$FAILS" -ne 0 ]; then
    echo "--- gate log (last 40 lines)"
    tail -40 "$TMP/gate.log" 2>/dev/null
    exit 1
  fi
  exit 0
}
