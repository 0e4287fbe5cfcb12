#!/usr/bin/env bash
# private_key_jwt clients whose keys are a jwks_uri (RFC 7591 §2), fetched
# from a loopback JWK Set server (tests/serve/jwks_server.py, which counts
# the fetches): a PyJWT assertion verified through the fetched set; the
# client's key rotated at its URL (a new kid) accepted after one refetch; a
# flood of unknown kids fetching at most once per cooldown; the server down
# with a set cached still verifying; a garbage set and a set over the size
# cap refused with the reason logged; the entry's errors at load (serve
# --check, FILE:LINE).
set -u
. "$(dirname "$0")/lib.sh"

if ! "$PY" -c 'import jwt, cryptography' 2>/dev/null; then
  echo "SKIP: python3-jwt (PyJWT) and python3-cryptography are needed"
  exit 77
fi
W=$WORK
J=$W/jwks
mkdir -p "$J"
JPID=""
stop_jwks() {
  if [ -n "$JPID" ]; then
    kill "$JPID" 2>/dev/null
    wait "$JPID" 2>/dev/null
    JPID=""
  fi
}
trap 'stop_jwks; cleanup' EXIT

# two key pairs of the client (P-256): svc-1 published first, svc-2 later
"$PY" - "$W" <<'PYEOF'
import json, sys
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm
w = sys.argv[1]
for kid in ("svc-1", "svc-2"):
    k = ec.generate_private_key(ec.SECP256R1())
    open(f"{w}/{kid}.pem", "wb").write(k.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    jwk = json.loads(ECAlgorithm.to_jwk(k.public_key()))
    jwk.update(kid=kid, alg="ES256", use="sig")
    open(f"{w}/{kid}.jwk", "w").write(json.dumps(jwk))
PYEOF
set_of() { # KID... -> a JWK Set of those public keys
  "$PY" -c 'import json,sys; print(json.dumps({"keys":[json.load(open(p)) for p in sys.argv[1:]]}))' \
    $(for k in "$@"; do printf '%s ' "$W/$k.jwk"; done)
}
set_of svc-1 >"$J/svc.json"
set_of svc-1 >"$J/flood.json"
printf '{"keys": [ this is not JSON' >"$J/bad.json"
"$PY" -c 'import json; print(json.dumps({"keys":[], "pad": "x" * 70000}))' >"$J/huge.json"
: >"$J/requests.log"
fetches() { grep -c -x "$1" "$J/requests.log"; }

JPORT=$(free_port)
"$PY" "$(dirname "$0")/jwks_server.py" "$J" "$JPORT" &
JPID=$!
for _ in $(seq 1 100); do
  "$CURL" -s -o /dev/null "http://127.0.0.1:$JPORT/svc.json" && break
  sleep 0.1
done
: >"$J/requests.log"
U=http://127.0.0.1:$JPORT
cat >"$W/clients.conf" <<CONF
[client svc]
jwks_uri = $U/svc.json
allow_http_jwks = true
assertion_algs = ES256
audience = api
scopes = read

[client flood]
jwks_uri = $U/flood.json
allow_http_jwks = true
assertion_algs = ES256
audience = api

[client bad]
jwks_uri = $U/bad.json
allow_http_jwks = true
assertion_algs = ES256
audience = api

[client huge]
jwks_uri = $U/huge.json
allow_http_jwks = true
assertion_algs = ES256
audience = api
CONF
chmod 600 "$W/clients.conf"
check "serve --check accepts the jwks_uri clients" "$SERVE_BIN" --check --clients "$W/clients.conf" --keyring "$W/ring"
expect "... and fetches nothing" 0 "$(wc -l <"$J/requests.log")"
check "start with them" start_server "$W/serve.log" --clients "$W/clients.conf" --keyring "$W/ring" --token-rate-ip off --token-rate-client off
TOKEN_URL=$BASE/token
# every set fetched once at start-up (or its failure logged)
for _ in $(seq 1 100); do
  [ "$(grep -c -E '"event":"jwks_(fetched|fetch_failed)"' "$W/serve.log")" -ge 4 ] && break
  sleep 0.1
done

mk() { # CLIENT KID [PEM]: a PyJWT ES256 assertion, signed with PEM (default: the kid's)
  "$PY" - "$1" "$2" "${3:-$W/$2.pem}" "$TOKEN_URL" <<'PYEOF'
import sys, time, uuid, jwt
client, kid, pem, aud = sys.argv[1:5]
now = int(time.time())
claims = {"iss": client, "sub": client, "aud": aud, "exp": now + 60, "iat": now, "jti": uuid.uuid4().hex}
print(jwt.encode(claims, open(pem).read(), algorithm="ES256", headers={"kid": kid}))
PYEOF
}
T=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
post() { # NAME ASSERTION -> status; body in $W/NAME.json
  "$CURL" -s -o "$W/$1.json" -w '%{http_code}' -d grant_type=client_credentials \
    --data-urlencode "client_assertion_type=$T" --data-urlencode "client_assertion=$2" "$TOKEN_URL"
}
# wait_fetches NAME N: until NAME was fetched N times (at most 5 s)
wait_fetches() {
  for _ in $(seq 1 50); do
    [ "$(fetches "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

expect "svc's set fetched once at start-up" 1 "$(fetches svc.json)"
expect "a PyJWT assertion verified through the fetched set: 200" 200 "$(post good "$(mk svc svc-1)")"
check "... a token for svc" json "$W/good.json" "d['token_type']=='Bearer' and d['scope']=='read'"

# rotation: svc-2 published at the URL; the first assertion with it is
# refused and asks for one refetch, the next one is accepted
set_of svc-1 svc-2 >"$J/svc.json"
expect "the new kid before the refetch: 401" 401 "$(post rot1 "$(mk svc svc-2)")"
check "... refused as verification failed (unknown kid)" grep -q -F '"client_id":"svc","reason":"verification failed"' "$W/serve.log"
check "... which refetches the set" wait_fetches svc.json 2
expect "the new kid after one refetch: 200" 200 "$(post rot2 "$(mk svc svc-2)")"
expect "... with no other fetch" 2 "$(fetches svc.json)"

# a flood of unknown kids: one refetch per cooldown (30 s), not one each
# (made first, in one go, so the 20 requests take well under the cooldown)
"$PY" - "$W/svc-2.pem" "$TOKEN_URL" >"$W/flood.jwts" <<'PYEOF'
import sys, time, uuid, jwt
pem, aud = open(sys.argv[1]).read(), sys.argv[2]
now = int(time.time())
for _ in range(20):
    claims = {"iss": "flood", "sub": "flood", "aud": aud, "exp": now + 60, "iat": now, "jti": uuid.uuid4().hex}
    print(jwt.encode(claims, pem, algorithm="ES256", headers={"kid": "nope"}))
PYEOF
: >"$W/flood.codes"
i=0
while read -r as; do
  i=$((i + 1))
  post "flood$i" "$as" >>"$W/flood.codes"
  echo >>"$W/flood.codes"
done <"$W/flood.jwts"
expect "20 assertions of an unknown kid: 401 each" "20 401" "$(sort "$W/flood.codes" | uniq -c | awk '{print $1, $2}')"
check "... one refetch" wait_fetches flood.json 2
sleep 1
expect "... and only one (2 fetches in all, start-up included)" 2 "$(fetches flood.json)"
check "... logged by the source" grep -q -F "\"unknown kid: refetching $U/flood.json\"" "$W/serve.log"

# a garbage set and one over the 64 KiB cap: no keys, the reason logged
expect "a client whose set is garbage: 401" 401 "$(post bad "$(mk bad svc-1)")"
check "... invalid_client" json "$W/bad.json" "d['error']=='invalid_client'"
check "... refused as no keys" grep -q -F '"client_id":"bad","reason":"jwks_uri keys not available"' "$W/serve.log"
check "... the fetch logged as invalid" grep -q -E "\"event\":\"jwks_fetch_failed\".*\"source\":\"$U/bad.json\",\"result\":\"invalid\"" "$W/serve.log"
expect "a client whose set is over the cap: 401" 401 "$(post huge "$(mk huge svc-1)")"
check "... the fetch logged as too_large" grep -q -E "\"event\":\"jwks_fetch_failed\".*\"source\":\"$U/huge.json\",\"result\":\"too_large\"" "$W/serve.log"

# /metrics counts every source's fetches by result, as the server saw them
metric() { "$CURL" -s "$BASE/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print (v == "" ? 0 : v) }'; }
ok_seen=$(($(fetches svc.json) + $(fetches flood.json)))
expect "jwtkit_client_jwks_fetches_total{result=ok}: svc's and flood's fetches" "$ok_seen" \
  "$(metric 'jwtkit_client_jwks_fetches_total{result="ok"}')"
# (bad's and huge's sources retry with a backoff: a fetch the server has
# logged may not have ended at the issuer yet, so until the two agree)
agree() { # FILE RESULT
  local i m
  for i in $(seq 1 50); do
    m=$(metric "jwtkit_client_jwks_fetches_total{result=\"$2\"}")
    [ "$m" = "$(fetches "$1")" ] && [ "$m" -ge 1 ] && return 0
    sleep 0.1
  done
  echo "metric $2: $m, the server's count of $1: $(fetches "$1")"
  return 1
}
check "... {result=invalid}: bad's" agree bad.json invalid
check "... {result=too_large}: huge's" agree huge.json too_large

# a reload (SIGHUP) builds the sources again: the issuer lives on (the
# signal is the main thread's, never a fetch thread's) and fetches again
# every thread but the main one blocks SIGHUP, SIGINT and SIGTERM (else the
# kernel may hand the signal to a fetch thread while the main thread is
# busy, and SIGHUP's default action ends the process)
unblocked=""
for t in /proc/"$SPID"/task/*; do
  [ "${t##*/}" = "$SPID" ] && continue
  blk=$(awk '/^SigBlk:/ {print $2}' "$t/status")
  [ $((0x$blk & 0x4003)) -eq $((0x4003)) ] || unblocked="$unblocked ${t##*/}($(cat "$t/comm"):$blk)"
done
expect "no thread but the main one takes SIGHUP/SIGINT/SIGTERM" "" "$unblocked"
n=$(fetches svc.json)
kill -HUP "$SPID"
check "SIGHUP with jwks_uri clients: svc's set fetched again" wait_fetches svc.json $((n + 1))
check "... the issuer still running" kill -0 "$SPID"
expect "... and verifying: 200" 200 "$(post hup "$(mk svc svc-2)")"

# the JWK Set server down: the cached set keeps verifying (within its
# lifetime, and past it up to the stale bound)
stop_jwks
expect "server down, cached set: svc-1 still 200" 200 "$(post down1 "$(mk svc svc-1)")"
expect "... svc-2 too" 200 "$(post down2 "$(mk svc svc-2)")"
stop_server
check "the issuer stopped cleanly with its fetch threads" test "$SEXIT" = 0

# the stale bound: a set of 1 s (Cache-Control: max-age=1 with
# client_jwks_min_ttl = 1s) keeps verifying 4 s past its lifetime while
# the server is down (client_jwks_stale_max = 4s), then it is dropped
set_of svc-1 >"$J/short.json"
echo "max-age=1" >"$J/short.json.cc"
JPORT=$(free_port)
"$PY" "$(dirname "$0")/jwks_server.py" "$J" "$JPORT" &
JPID=$!
for _ in $(seq 1 100); do
  "$CURL" -s -o /dev/null "http://127.0.0.1:$JPORT/none" && break
  sleep 0.1
done
printf '[client svc]\njwks_uri = http://127.0.0.1:%s/short.json\nallow_http_jwks = true\nassertion_algs = ES256\naudience = api\n' \
  "$JPORT" >"$W/short.conf"
chmod 600 "$W/short.conf"
check "start with client_jwks_min_ttl 1s, client_jwks_stale_max 4s" start_server "$W/short.log" --clients "$W/short.conf" \
  --keyring "$W/ring" --token-rate-ip off --token-rate-client off --client-jwks-min-ttl 1s --client-jwks-stale-max 4s
TOKEN_URL=$BASE/token
for _ in $(seq 1 100); do
  grep -q '"event":"jwks_fetched"' "$W/short.log" && break
  sleep 0.1
done
check "... its set fetched with a lifetime of 1 s" grep -q -E '"event":"jwks_fetched".*"ttl_s":1,' "$W/short.log"
A1=$(mk svc svc-1) A2=$(mk svc svc-1) A3=$(mk svc svc-1)
expect "the server up: 200" 200 "$(post s1 "$A1")"
stop_jwks
for _ in $(seq 1 100); do
  grep -q '"event":"jwks_stale"' "$W/short.log" && break
  sleep 0.1
done
check "the server down: the set goes stale (logged)" grep -q '"event":"jwks_stale"' "$W/short.log"
expect "... and still verifies within the bound: 200" 200 "$(post s2 "$A2")"
for _ in $(seq 1 100); do
  grep -q '"event":"jwks_dropped"' "$W/short.log" && break
  sleep 0.1
done
check "past the bound the set is dropped (logged)" grep -q '"event":"jwks_dropped"' "$W/short.log"
expect "... and the client refused: 401" 401 "$(post s3 "$A3")"
check "... as keys not available" grep -q -F '"client_id":"svc","reason":"jwks_uri keys not available"' "$W/short.log"
stop_server

# the entry's errors, at load, with FILE:LINE
entry() {
  local name=$1
  shift
  { printf '[client %s]\n' "$name"; printf '%s\n' "$@"; } >"$W/e-$name.conf"
  chmod 600 "$W/e-$name.conf"
}
chk() { "$SERVE_BIN" --check --clients "$W/e-$1.conf" --keyring "$W/ring" 2>"$W/e-$1.err" >/dev/null; }
entry both "jwks = $(set_of svc-1)" "jwks_uri = https://client.example/jwks.json" "assertion_algs = ES256" "audience = api"
chk both
expect "jwks and jwks_uri together: exit 2" 2 "$?"
check "... named: $(cat "$W/e-both.err")" grep -q -F 'e-both.conf:3: client both has both jwks and jwks_uri' "$W/e-both.err"
entry ftp "jwks_uri = ftp://client.example/jwks.json" "assertion_algs = ES256" "audience = api"
chk ftp
expect "a jwks_uri not https: exit 2" 2 "$?"
check "... named: $(cat "$W/e-ftp.err")" grep -q -F "e-ftp.conf:2: jwks_uri: 'ftp://client.example/jwks.json' is not an https:// URL" "$W/e-ftp.err"
entry remote "jwks_uri = http://client.example/jwks.json" "allow_http_jwks = true" "assertion_algs = ES256" "audience = api"
chk remote
expect "http:// to a host not loopback: exit 2" 2 "$?"
check "... named: $(cat "$W/e-remote.err")" grep -q -F "e-remote.conf:2: jwks_uri: 'http://client.example/jwks.json' is http:// to a host that is not a loopback address" "$W/e-remote.err"
entry noallow "jwks_uri = http://127.0.0.1:9/jwks.json" "assertion_algs = ES256" "audience = api"
chk noallow
expect "http:// without allow_http_jwks: exit 2" 2 "$?"
check "... named: $(cat "$W/e-noallow.err")" grep -q -F "e-noallow.conf:1: client noallow: jwks_uri http://127.0.0.1:9/jwks.json is http://: add allow_http_jwks = true" "$W/e-noallow.err"
entry space "jwks_uri = https://client.example/a b" "assertion_algs = ES256" "audience = api"
chk space
expect "a jwks_uri with a space: exit 2" 2 "$?"
entry noalgs "jwks_uri = https://client.example/jwks.json" "audience = api"
chk noalgs
expect "jwks_uri without assertion_algs: exit 2" 2 "$?"
check "... named: $(cat "$W/e-noalgs.err")" grep -q 'e-noalgs.conf:1: client noalgs has no assertion_algs' "$W/e-noalgs.err"

# client add --jwks-uri URL: the entry, no secret; its errors
out=$("$SERVE_BIN" client add partner --audience api --jwks-uri https://partner.example/jwks.json --assertion-alg ES256 \
  --clients "$W/added.conf" 2>"$W/add.err")
expect "client add --jwks-uri: exit 0" 0 "$?"
expect "... prints no secret" "" "$out"
check "... its entry: jwks_uri and assertion_algs, no secret_hash" "$PY" - "$W/added.conf" <<'PYEOF'
import sys
text = open(sys.argv[1]).read()
entry = text[text.index("[client partner]"):]
lines = dict(l.split(" = ", 1) for l in entry.splitlines()[1:] if " = " in l)
assert lines == {"jwks_uri": "https://partner.example/jwks.json", "assertion_algs": "ES256", "audience": "api"}, lines
PYEOF
check "... which --check loads without fetching" "$SERVE_BIN" --check --clients "$W/added.conf" --keyring "$W/ring"
"$SERVE_BIN" client add p2 --audience api --jwks-uri https://partner.example/jwks.json --clients "$W/added.conf" 2>"$W/add2.err"
expect "--jwks-uri without --assertion-alg: exit 2" 2 "$?"
check "... saying why" grep -q -F -- "--jwks-uri needs --assertion-alg ALG" "$W/add2.err"
"$SERVE_BIN" client add p3 --audience api --jwks-uri https://partner.example/jwks.json --jwks "$W/svc-1.jwk" \
  --assertion-alg ES256 --clients "$W/added.conf" 2>"$W/add3.err"
expect "--jwks and --jwks-uri: exit 2" 2 "$?"
check "... saying why" grep -q -F -- "--jwks FILE or --jwks-uri URL, not both" "$W/add3.err"
"$SERVE_BIN" client add p4 --audience api --jwks-uri ftp://partner.example/jwks.json --assertion-alg ES256 \
  --clients "$W/added.conf" 2>"$W/add4.err"
expect "--jwks-uri ftp://: exit 2" 2 "$?"
check "... saying why" grep -q -F "is not an https:// URL" "$W/add4.err"
expect "... and the file keeps only the first" 1 "$(grep -c '^\[client' "$W/added.conf")"
# at most 256 clients with a jwks_uri (a fetch thread each)
for i in $(seq 1000 1256); do
  printf '[client c%s]\njwks_uri = https://c%s.example/jwks.json\nassertion_algs = ES256\naudience = api\n\n' "$i" "$i"
done >"$W/e-many.conf"
chmod 600 "$W/e-many.conf"
chk many
expect "257 clients with a jwks_uri: exit 2" 2 "$?"
check "... named: $(cat "$W/e-many.err")" grep -q -F "client c1256 is client number 257 with a jwks_uri; at most 256" "$W/e-many.err"
head -n $((256 * 5)) "$W/e-many.conf" >"$W/e-256.conf"
chmod 600 "$W/e-256.conf"
chk 256
expect "256 of them: exit 0" 0 "$?"
echo "serve private_key_jwt jwks_uri tests: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
