# tests/nginx/lib.sh - helpers of the ngx_http_jwtkit_module tests, on top
# of tests/gate/lib.sh (issuer, mint, gate, upstream, check, finish).
# nginx_head writes the load_module line of docs/nginx.md.
#
#   source "$(dirname "$0")/lib.sh"
#   start_nginx_module <<'EOF' ... EOF   # server{} lines; @TMP@ replaced
#   nginx_t FILE                          # nginx -t of a whole configuration
#
# NGINX_MODULE is the built .so (ctest sets it).  Without nginx, nginx-dev
# or the .so the test is skipped (77) - a failure under CI=true.
source "${GATE_TESTS_DIR:?}/lib.sh"

skip_or_fail() {
  if [ "${CI:-}" = true ]; then
    echo "FAIL (CI): $*"
    exit 1
  fi
  echo "SKIP: $*"
  exit 77
}
[ -x "$NGINX" ] || skip_or_fail "nginx not installed (apt-get install nginx)"
[ -x /usr/share/nginx/src/configure ] || skip_or_fail "nginx-dev not installed (apt-get install nginx-dev)"
[ -f "${NGINX_MODULE:-}" ] || skip_or_fail "the module is not built: ${NGINX_MODULE:-NGINX_MODULE unset} (make nginx-module)"

NGINX_USER=""
[ "$(id -u)" = 0 ] && NGINX_USER="user root;"

# the main and http lines every test configuration starts with
nginx_head() { # nginx_head DIR
  local d=$1
  mkdir -p "$d/tmp" "$d/logs"
  cat <<EOC
load_module $NGINX_MODULE;
$NGINX_USER
worker_processes ${NGINX_WORKERS:-1};
pid $d/nginx.pid;
error_log $d/logs/error.log info;
events { worker_connections 1024; }
EOC
}
nginx_http_head() { # nginx_http_head DIR
  local d=$1
  cat <<EOC
  access_log off;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
EOC
}

# nginx -t of FILE: NGINX_T_OUT gets what it said, returns its exit status
NGINX_T_OUT=
nginx_t() {
  NGINX_T_OUT=$("$NGINX" -t -p "$(dirname "$1")" -c "$1" 2>&1)
}

# start nginx (daemon off) with the server{} lines from stdin; NGINX_PORT
NGINX_DIR=
start_nginx_module() {
  NGINX_PORT=${NGINX_PORT:-$(free_port)}
  NGINX_DIR=$TMP/${NGINX_NAME:-nginx} # NGINX_NAME: a second nginx of the same test
  local d=$NGINX_DIR
  mkdir -p "$d"
  {
    nginx_head "$d"
    echo "http {"
    nginx_http_head "$d"
    echo "  upstream app { server 127.0.0.1:${UPSTREAM_PORT:-9}; keepalive 8; }"
    [ -n "${GATE_PORT:-}" ] && echo "  upstream jwtkit_gate { server 127.0.0.1:$GATE_PORT; keepalive 8; }"
    echo "  ${NGINX_HTTP_EXTRA:-}"
    echo "  server {"
    echo "    listen 127.0.0.1:$NGINX_PORT;"
    sed -e "s#@TMP@#$TMP#g"
    echo "  }"
    echo "}"
  } >"$d/nginx.conf"
  nginx_t "$d/nginx.conf" || { echo "nginx -t refused the test configuration:"; echo "$NGINX_T_OUT"; exit 1; }
  "$NGINX" -p "$d" -c "$d/nginx.conf" -g "daemon off;" >>"$TMP/nginx.log" 2>&1 &
  PIDS+=("$!")
  wait_for 20 curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" || {
    echo "nginx did not start"
    cat "$TMP/nginx.log" "$d/logs/error.log"
    exit 1
  }
}
# lines of nginx's error log
nginx_log_count() { grep -c -- "$1" "$NGINX_DIR/logs/error.log"; }
