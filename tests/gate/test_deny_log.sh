#!/usr/bin/env bash
# Denied decisions are logged one line each, but at most 100 per 10 s: the
# rest are counted and summarised ("decision_suppressed" with the count),
# so a client sending thousands of bad tokens cannot grow the log without
# bound.  Every denial is still in /metrics, and lines + summaries account
# for each one.
source "$(dirname "$0")/lib.sh"

: "${JWTKIT_CLI_BIN:=}"
[ -x "$JWTKIT_CLI_BIN" ] || { echo "SKIP: the jwtkit command is not built"; exit 77; }
"$JWTKIT_CLI_BIN" keygen --alg ES256 --out "$TMP/k.pem" --pub "$TMP/k.pub.pem" >"$TMP/keygen.out" 2>&1 ||
  { echo "keygen failed"; exit 1; }
write_gate_conf <<'EOF'
[route api]
key_file = @TMP@/k.pub.pem
algs = ES256
EOF
start_gate

N=3000
# three kinds of denial, one curl process ("next": each URL its own options)
{
  for ((i = 0; i < N; i++)); do
    [ "$i" = 0 ] || echo next
    echo 'url = "http://127.0.0.1:'"$GATE_PORT"'/auth"'
    echo 'output = "/dev/null"'
    echo 'write-out = "%{http_code}\n"'
    case $((i % 3)) in
      0) echo 'header = "X-Original-URI: /api/x"' ;;
      1) echo 'header = "Authorization: Bearer not-a-token"' ;;
      2) echo 'header = "Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"' ;;
    esac
  done
} >"$TMP/requests.curl"
t0=$(now_ms)
curl -s -K "$TMP/requests.curl" >"$TMP/codes.txt"
t1=$(now_ms)
check "all $N requests answered 401" test "$(grep -c '^401$' "$TMP/codes.txt")" = "$N"
denied=$(curl -s "http://127.0.0.1:$GATE_PORT/metrics" |
  awk '/^jwtkit_gate_decisions_total\{result="deny"/ { s += $2 } END { print s + 0 }')
check "every denial counted in /metrics ($denied)" test "$denied" = "$N"

stop_gate # the last summary is written at the stop
lines=$(grep -c '"event":"decision"' "$TMP/gate.log")
suppressed=$(grep '"event":"decision_suppressed"' "$TMP/gate.log" | sed 's/.*"count":\([0-9]*\).*/\1/' |
  awk '{ s += $1 } END { print s + 0 }')
windows=$(((t1 - t0) / 10000 + 1))
log "$N denials in $((t1 - t0)) ms: $lines lines, $suppressed summarised"
check "at most 100 lines per 10 s ($lines lines for $windows interval(s))" test "$lines" -le $((100 * windows))
check "some denials got a line of their own" test "$lines" -ge 1
check "the summaries count the rest: $lines + $suppressed = $N" test $((lines + suppressed)) = "$N"
check "the summary says what it counts" \
  grep -q '"event":"decision_suppressed","count":[0-9]*,"msg":"[0-9]* more denied decisions in the last 10 s"' \
  "$TMP/gate.log"
finish
