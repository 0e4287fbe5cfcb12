#!/usr/bin/env bash
# tests/pg/keyring_move.sh BUILD_DIR - the move from a directory keyring to
# PostgreSQL as docs/keyring.md ("How to move") tells it, end to end, with a
# `jwtkit serve` on each keyring (the same address: the issuers restart on
# the new keyring) and a `jwtkit gate` verifying a stream of fresh tokens
# throughout:
#   - the documented commands run as written (extracted from the doc);
#   - the gate never refuses a token and never meets an unknown kid
#     (jwtkit_gate_decisions_total deny = 0, refetches triggered = 0);
#   - after the switch the new issuer's JWKS holds the old keyring's keys,
#     and a fresh gate that knows only the new JWKS verifies tokens the old
#     issuer signed; the new keyring never activated an old key;
#   - after `release` the old keys leave on the retiring schedule.
# Prints ok/FAIL per check; exits 1 on a failure, 77 when no PostgreSQL
# server is installed (1 under CI=true).  Everything is stopped on exit.
set -u -o pipefail

BUILD=${1:?usage: keyring_move.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd) || exit 1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
JWTKIT=$BUILD/cli/jwtkit
PY=${PYTHON:-/usr/bin/python3}
if [ ! -x "$JWTKIT" ]; then
  echo "SKIP: $JWTKIT not built (JWTKIT_CLI=OFF)"
  exit 77
fi
# shellcheck source=tests/lib/checks.sh
. "$HERE/../lib/checks.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jwtkit-keyring-move.XXXXXX") || exit 1
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  if [ "${KEEP_WORK:-0}" = 1 ] || [ "$FAIL" -gt 0 ]; then echo "work directory kept: $WORK"; else rm -rf -- "$WORK"; fi
}
trap cleanup EXIT
# shellcheck source=tests/pg/pglib.sh
. "$HERE/pglib.sh"
pg_start
cd "$WORK" || exit 1
export PATH="$BUILD/cli:$PATH" # the documented commands call `jwtkit`
export URL=$PG_URL OLD_DIR=$WORK/old # the documented commands use both
free_port() { "$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_for() { # SECONDS CMD...
  local n=$(($1 * 10))
  shift
  for ((i = 0; i < n; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
doc_block() { "$PY" "$SRC/tests/lib/doc_block.py" "$SRC/docs/keyring.md" "$1"; }

# --- the old world: a directory keyring with a short max-age, its issuer, a gate
jwtkit keyring init "$OLD_DIR" --alg ES256 --max-age 2s --token-ttl 60s >/dev/null || { bad "old keyring"; exit 1; }
old_kid=$(jwtkit keyring list "$OLD_DIR" --json | sed -n 's/.*"kid":"\([^"]*\)".*/\1/p')
SECRET=$(jwtkit serve client add demo --audience api --clients clients.conf 2>/dev/null | head -1)
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
SPID=""
start_serve() { # KEYRING [options]
  "$JWTKIT" serve --listen "127.0.0.1:$PORT" --issuer "$BASE" --keyring "$@" --clients clients.conf --alg ES256 \
    --rotate-check 1s --thread-pool 2 2>>serve.log &
  SPID=$!
  PIDS+=("$SPID")
  wait_for 15 curl -sf "$BASE/healthz"
}
stop_serve() { kill -TERM "$SPID"; wait "$SPID" 2>/dev/null; }
check "the issuer starts on the directory keyring" start_serve "$OLD_DIR"

GPORT=$(free_port)
cat >gate.conf <<CONF
[gate]
jwks_min_ttl = 1s
[route api]
match_path_prefix = /
issuer = $BASE
audience = api
jwks_url = $BASE/.well-known/jwks.json
allow_http_jwks = true
algs = ES256
CONF
GPID=""
start_gate() {
  "$JWTKIT" gate --config gate.conf --listen "127.0.0.1:$GPORT" 2>>gate.log &
  GPID=$!
  PIDS+=("$GPID")
  wait_for 15 curl -sf "http://127.0.0.1:$GPORT/healthz"
}
check "the gate starts" start_gate
gmetric() { curl -s "http://127.0.0.1:$GPORT/metrics" | awk -v m="$1" 'index($0, m) == 1 {s += $NF} END {print s + 0}'; }

# --- a stream of fresh tokens through the gate, until told to stop
cat >stream.py <<'PY'
import base64, json, os, sys, time, urllib.request, urllib.error
base, gate, secret, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
auth = "Basic " + base64.b64encode(("demo:" + secret).encode()).decode()
counts = {"tokens": 0, "issuer_down": 0, "allowed": 0, "refused": 0}
kids, kept = set(), []
while not os.path.exists("stop"):
    try:
        req = urllib.request.Request(base + "/token", data=b"grant_type=client_credentials",
                                     headers={"Authorization": auth})
        tok = json.load(urllib.request.urlopen(req, timeout=5))["access_token"]
    except (urllib.error.URLError, OSError, ValueError):
        counts["issuer_down"] += 1
        time.sleep(0.05)
        continue
    counts["tokens"] += 1
    hdr = json.loads(base64.urlsafe_b64decode(tok.split(".")[0] + "=="))
    kids.add(hdr["kid"])
    if len(kept) < 5:
        kept.append(tok)
    req = urllib.request.Request(gate + "/auth", headers={"Authorization": "Bearer " + tok, "X-Original-URI": "/x"})
    try:
        st = urllib.request.urlopen(req, timeout=5).status
    except urllib.error.HTTPError as e:
        st = e.code
    counts["allowed" if st == 204 else "refused"] += 1
    time.sleep(0.02)
json.dump({"counts": counts, "kids": sorted(kids), "kept": kept}, open(out, "w"))
PY
"$PY" stream.py "$BASE" "http://127.0.0.1:$GPORT" "$SECRET" stream.json &
STREAM=$!
PIDS+=("$STREAM")
sleep 2

# --- steps 2 and 3, the commands as docs/keyring.md writes them
doc_block "Steps 2 and 3, as" >steps23.sh
check "docs/keyring.md has the commands of steps 2 and 3" test -s steps23.sh
check "the documented commands run (steps 2 and 3)" bash -e steps23.sh
check "the KEK file was private from the start" test "$(stat -c %a kek)" = 600
new_kid=$(jwtkit keyring list "$URL" --kek-file kek --json | sed -n 's/.*"kid":"\([^"]*\)","alg":"ES256","state":"active".*/\1/p')
check "the new keyring has its own active key" test -n "$new_kid"
# the old issuer serves the new key (its keyring check is 1 s), then the
# gate holds it (max-age 2 s, jwks_min_ttl 1 s): wait for both, with margin
check "the old issuer publishes the new keyring's key" wait_for 10 \
  bash -c "curl -s '$BASE/.well-known/jwks.json' | grep -q '\"kid\":\"$new_kid\"'"
sleep 4

# --- step 4: the issuer restarts on the new keyring
stop_serve
check "the issuer starts on the PostgreSQL keyring" start_serve "$URL" --kek-file kek
jwks_new=$(curl -s "$BASE/.well-known/jwks.json")
check "the new issuer's JWKS holds the old keyring's key" grep -q "\"kid\":\"$old_kid\"" <<<"$jwks_new"
check "and its own" grep -q "\"kid\":\"$new_kid\"" <<<"$jwks_new"
sleep 3

# --- step 5: release, as documented
doc_block "let the old keys go" >step5.sh
check "the documented release runs" bash -e step5.sh
touch stop
wait "$STREAM"
read -r tokens down allowed refused kids < <("$PY" -c '
import json; d = json.load(open("stream.json")); c = d["counts"]
print(c["tokens"], c["issuer_down"], c["allowed"], c["refused"], ",".join(d["kids"]))')
echo "    stream: $tokens tokens ($down requests while the issuer restarted), $allowed allowed, $refused refused; kids $kids"
check "tokens of both keyrings went through the gate" test "$kids" = "$(printf '%s\n' "$old_kid" "$new_kid" | sort | paste -sd,)"
check "the gate allowed every token ($allowed of $tokens)" test "$refused" = 0 -a "$allowed" = "$tokens" -a "$tokens" -gt 50
check "the gate refused nothing (metrics)" test "$(gmetric 'jwtkit_gate_decisions_total{result="deny"')" = 0
check "the gate never met an unknown kid (no refetch)" test "$(gmetric 'jwtkit_gate_jwks_refetch_total{outcome="triggered"}')" = 0

# a gate that only ever saw the new issuer's JWKS verifies the old issuer's tokens
kill -TERM "$GPID"
wait "$GPID" 2>/dev/null
check "a fresh gate starts" start_gate
old_tok=$("$PY" -c 'import json; print(json.load(open("stream.json"))["kept"][0])')
st=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $old_tok" -H 'X-Original-URI: /x' \
  "http://127.0.0.1:$GPORT/auth")
check "a token the old issuer signed passes a gate that knows only the new JWKS ($st)" test "$st" = 204

# the new keyring never activated the old key; released keys leave on schedule
list=$(jwtkit keyring list "$URL" --kek-file kek --json)
check "the old key is retiring in the new keyring, never active" grep -q "\"kid\":\"$old_kid\",\"alg\":\"ES256\",\"state\":\"retiring\"" <<<"$list"
plan=$(jwtkit keyring plan "$URL" --kek-file kek)
check "the plan shows the released old key leaving" grep -q "^$old_kid .*verify-only" <<<"$plan"
check "nothing is held any more" bash -c '! grep -q "held (release)" <<<"$0"' "$plan"
check "no sanitizer report in the logs" bash -c "! grep -q 'Sanitizer\|runtime error' serve.log gate.log"
echo "keyring_move: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
