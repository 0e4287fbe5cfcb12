#!/usr/bin/env bash
# Denial lines in nginx's error log are bounded as the gate's are: at most
# 100 per worker per 10 s; the rest are counted and summarised ("N more
# denials in the last 10 s were not logged") with the next line after the
# window, so a client sending thousands of bad tokens cannot grow the log
# without bound.  Every denial is still counted (auth_jwt_status), and
# lines + summaries account for each one.
source "$(dirname "$0")/lib.sh"

D=$TMP/keys
mkdir -p "$D"
[ -x "${JWTKIT_CLI_BIN:-}" ] || skip_or_fail "the jwtkit command is not built (JWTKIT_CLI_BIN)"
"$JWTKIT_CLI_BIN" keygen --alg ES256 --out "$D/ec.key" --pub "$D/ec.pub" >"$D/keygen.out" 2>&1 ||
  { echo "jwtkit keygen failed"; cat "$D/keygen.out"; exit 1; }
chmod 644 "$D/ec.pub"
NGINX_WORKERS=1
start_nginx_module <<'EOC'
    location = /status { auth_jwt_status; }
    location /api/ {
      auth_jwt "api";
      auth_jwt_algs ES256;
      auth_jwt_key_file @TMP@/keys/ec.pub;
      try_files /nonexistent =204; # after the access phase (a return would answer before it)
    }
EOC
N=250
{
  for ((i = 0; i < N; i++)); do
    [ "$i" = 0 ] || echo next
    echo "url = \"http://127.0.0.1:$NGINX_PORT/api/x\""
    echo 'header = "Authorization: Bearer abc.d!f.ghi"'
    echo 'output = "/dev/null"'
    echo 'write-out = "%{http_code}\\n"'
  done
} >"$TMP/flood.curl"
t0=$(now_ms)
curl -s -K "$TMP/flood.curl" >"$TMP/flood.codes"
t1=$(now_ms)
check "$N bad tokens: every one refused with 401 ($(sort -u "$TMP/flood.codes" | tr '\n' ' '))" \
  test "$(grep -c '^401$' "$TMP/flood.codes")" = "$N"
lines=$(grep -c 'auth_jwt: denied 401 malformed' "$NGINX_DIR/logs/error.log")
if [ $((t1 - t0)) -lt 10000 ]; then
  check "at most 100 denial lines in the window ($lines)" test "$lines" = 100
fi
# after the window, the next denial brings the summary of the rest
sleep_until=$((t0 + 10500))
while [ "$(now_ms)" -lt "$sleep_until" ]; do sleep 0.2; done
call /api/x -H "Authorization: Bearer abc.d!f.ghi"
check "one more denial after the window: 401" test "$STATUS" = 401
summary=$(sed -n 's/.*auth_jwt: \([0-9]*\) more denials in the last 10 s were not logged.*/\1/p' "$NGINX_DIR/logs/error.log" |
  awk '{ n += $1 } END { print n + 0 }')
lines=$(grep -c 'auth_jwt: denied 401 malformed' "$NGINX_DIR/logs/error.log")
check "lines + summaries account for every denial ($lines lines + ${summary:-0} summarised = $((N + 1)))" \
  test $((lines + ${summary:-0})) = $((N + 1))
counted=$(curl -s "http://127.0.0.1:$NGINX_PORT/status" | awk '$1 == "jwtkit_nginx_decisions_total{result=\"deny\",reason=\"malformed\"}" { print $2 }')
check "every denial counted for auth_jwt_status ($counted)" test "$counted" = $((N + 1))
finish
