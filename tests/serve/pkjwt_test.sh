#!/usr/bin/env bash
# private_key_jwt at POST /token (RFC 7523 §2.2, RFC 7521 §4.2 and §5.2):
# client assertions made by PyJWT (python3-jwt), a client that interoperates
# and every refusal (replay, wrong aud, expired, exp too far ahead, HS256,
# none, missing jti, iss other than sub, client_id other than sub, a secret
# client, a keyed client by secret, two methods at once) answered
# invalid_client (or invalid_request) with the reason in the log; the
# client entry's errors at load (serve --check, FILE:LINE); discovery.
# Replicas of a PostgreSQL keyring sharing the ids: tests/pg/serve_ops.sh.
set -u
. "$(dirname "$0")/lib.sh"

if ! "$PY" -c 'import jwt, cryptography' 2>/dev/null; then
  echo "SKIP: python3-jwt (PyJWT) and python3-cryptography are needed"
  exit 77
fi
W=$WORK
# the client's key pair (P-256) and its public JWK Set on one line
"$PY" - "$W" <<'EOF'
import json, sys
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm
w = sys.argv[1]
k = ec.generate_private_key(ec.SECP256R1())
open(w + "/client.pem", "wb").write(k.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
jwk = json.loads(ECAlgorithm.to_jwk(k.public_key()))
jwk.update(kid="svc-1", alg="ES256", use="sig")
open(w + "/jwks.json", "w").write(json.dumps({"keys": [jwk]}, separators=(",", ":")))
EOF
SECRET=$("$SERVE_BIN" client add sec --audience api --clients "$W/clients.conf" 2>/dev/null)
# the keyed client, by `client add --jwks FILE`: no secret
out=$("$SERVE_BIN" client add svc --audience api --scopes read --jwks "$W/jwks.json" --clients "$W/clients.conf" 2>"$W/add.err")
expect "client add --jwks: exit 0" 0 "$?"
expect "... prints no secret" "" "$out"
check "... says how it authenticates: $(head -1 "$W/add.err")" grep -q 'client svc added to .*; it has no secret and authenticates with JWTs signed by the keys of' "$W/add.err"
check "... its entry: the keys on one line and their algorithm, no secret_hash" "$PY" - "$W/clients.conf" "$W/jwks.json" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
entry = text[text.index("[client svc]"):]
lines = dict(l.split(" = ", 1) for l in entry.splitlines()[1:] if " = " in l)
assert "secret_hash" not in lines, lines
assert lines["assertion_algs"] == "ES256", lines
want = json.load(open(sys.argv[2]))["keys"][0]
got = json.loads(lines["jwks"])["keys"][0]
assert all(got[k] == want[k] for k in ("kty", "crv", "x", "y", "kid", "alg")), (got, want)
assert "d" not in got
EOF
"$SERVE_BIN" client add svc3 --audience api --jwks "$W/jwks.json" --assertion-alg HS256 --clients "$W/clients.conf" >/dev/null 2>"$W/add-hs.err"
expect "client add --jwks --assertion-alg HS256: exit 2" 2 "$?"
check "... saying why" grep -q "assertion_algs: 'HS256' is not an asymmetric algorithm" "$W/add-hs.err"
"$SERVE_BIN" client add svc3 --audience api --assertion-alg ES256 --clients "$W/clients.conf" >/dev/null 2>"$W/add-na.err"
expect "--assertion-alg without --jwks: exit 2" 2 "$?"
"$SERVE_BIN" client rotate-secret svc --clients "$W/clients.conf" >"$W/rot.out" 2>"$W/rot.err"
expect "rotate-secret of a keyed client: exit 2" 2 "$?"
check "... saying it has no secret" grep -q "client svc has no secret: it authenticates with private_key_jwt" "$W/rot.err"
check "... printing none" test ! -s "$W/rot.out"
check "start with a private_key_jwt client" start_server "$W/serve.log" --clients "$W/clients.conf" --keyring "$W/ring" --token-rate-ip off --token-rate-client off
TOKEN_URL=$BASE/token

# mk [key=value ...]: an assertion by PyJWT; defaults iss=sub=svc, aud the
# token endpoint, exp now+60, a fresh jti, ES256 with the client's key.
# alg=HS256 signs with a shared secret, alg=none leaves it unsigned;
# drop=NAME leaves a claim out.
mk() {
  "$PY" - "$W/client.pem" "$TOKEN_URL" "$@" <<'EOF'
import sys, time, uuid, jwt
pem, aud, args = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3:]
now = int(time.time())
claims = {"iss": "svc", "sub": "svc", "aud": aud, "exp": now + 60, "iat": now, "jti": uuid.uuid4().hex}
alg, key, drop = "ES256", pem, []
for a in args:
    k, v = a.split("=", 1)
    if k == "alg":
        alg = v
    elif k == "drop":
        drop.append(v)
    elif k in ("exp", "iat"):
        claims[k] = now + int(v)
    else:
        claims[k] = v
for d in drop:
    claims.pop(d, None)
if alg == "HS256":
    key = "a shared secret that is long enough for HS256 use"
elif alg == "none":
    alg, key = None, None
print(jwt.encode(claims, key, algorithm=alg, headers={"kid": "svc-1"}))
EOF
}
T=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
post() { # NAME ASSERTION [curl args...] -> status; body in $W/NAME.json
  local name=$1 as=$2
  shift 2
  "$CURL" -s -o "$W/$name.json" -w '%{http_code}' -d grant_type=client_credentials \
    --data-urlencode "client_assertion_type=$T" --data-urlencode "client_assertion=$as" "$@" "$TOKEN_URL"
}
# refused NAME REASON ASSERTION [curl args...]: 401 invalid_client, reason logged
refused() {
  local name=$1 reason=$2 as=$3
  shift 3
  local before
  before=$(grep -c '"event":"client_assertion_refused"' "$W/serve.log")
  expect "$name: 401" 401 "$(post "$name" "$as" "$@")"
  check "... invalid_client" json "$W/$name.json" "d['error']=='invalid_client'"
  check "... logged with reason '$reason'" bash -c \
    "tail -n +1 '$W/serve.log' | grep '\"event\":\"client_assertion_refused\"' | tail -n +$((before + 1)) | grep -q -F -- '\"reason\":\"$reason\"'"
}

GOOD=$(mk)
expect "a PyJWT ES256 assertion gets a token" 200 "$(post good "$GOOD" -d client_id=svc)"
jget "$W/good.json" "d['access_token']" | tr -d '\n' >"$W/good.tok"
"$CURL" -s "$BASE/.well-known/jwks.json" >"$W/jwks-served.json"
out=$("$VERIFY_BIN" "$W/jwks-served.json" "$W/good.tok" --iss "$BASE" --aud api)
check "... which verifies, for sub svc: $out" test "${out:0:2}" = ok
check "... with sub and client_id svc" "$PY" - "$W/good.tok" <<'EOF'
import base64, json, sys
p = open(sys.argv[1]).read().split(".")[1]
c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
assert c["sub"] == "svc" and c["client_id"] == "svc" and c["scope"] == "read", c
EOF
refused replay "jti replayed" "$GOOD" -d client_id=svc
expect "without client_id (sub names the client): 200" 200 "$(post nocid "$(mk)")"
expect "aud the issuer: 200" 200 "$(post audiss "$(mk aud="$BASE")")"
refused wrong-aud "verification failed" "$(mk aud=https://elsewhere.example/token)"
refused expired "verification failed" "$(mk exp=-120 iat=-300)"
refused far-exp "exp too far ahead" "$(mk exp=3600)"
refused hs256 "verification failed" "$(mk alg=HS256)"
refused none "verification failed" "$(mk alg=none)"
refused no-jti "verification failed" "$(mk drop=jti)"
refused no-exp "verification failed" "$(mk drop=exp)"
refused iss-other "verification failed" "$(mk iss=sec)"
refused cid-other "client has no jwks (it authenticates with a secret)" "$(mk)" -d client_id=sec
check "... the log says which check failed (missing jti)" \
  grep -q -F '"reason":"verification failed","detail":"required claim \"jti\" is missing"' "$W/serve.log"
check "... (HS256)" grep -q -F '"detail":"algorithm not accepted by this verifier"' "$W/serve.log"
check "... (wrong aud)" grep -q -F '"detail":"audience not accepted"' "$W/serve.log"
refused unknown "unknown client" "$(mk iss=ghost sub=ghost)"
before=$(grep -c '"reason":"unsupported client_assertion_type"' "$W/serve.log")
expect "another client_assertion_type: 401" 401 "$("$CURL" -s -o "$W/bad-type.json" -w '%{http_code}' \
  -d grant_type=client_credentials -d client_assertion_type=urn:other --data-urlencode "client_assertion=$(mk)" "$TOKEN_URL")"
check "... invalid_client" json "$W/bad-type.json" "d['error']=='invalid_client'"
expect "... logged" $((before + 1)) "$(grep -c '"reason":"unsupported client_assertion_type"' "$W/serve.log")"
expect "an assertion with a secret as well: 400" 400 "$(post both "$(mk)" -u "sec:$SECRET")"
check "... invalid_request" json "$W/both.json" "d['error']=='invalid_request'"
expect "the keyed client by a secret: 401" 401 \
  "$("$CURL" -s -o "$W/bysecret.json" -w '%{http_code}' -u "svc:$SECRET" -d grant_type=client_credentials "$TOKEN_URL")"
expect "the secret client still gets tokens by its secret" 200 \
  "$("$CURL" -s -o /dev/null -w '%{http_code}' -u "sec:$SECRET" -d grant_type=client_credentials "$TOKEN_URL")"
"$CURL" -s "$BASE/.well-known/oauth-authorization-server" >"$W/disc.json"
check "discovery names private_key_jwt and ES256" json "$W/disc.json" \
  "d['token_endpoint_auth_methods_supported']==['client_secret_basic','client_secret_post','private_key_jwt'] and d['token_endpoint_auth_signing_alg_values_supported']==['ES256']"
stop_server TERM
check "clean exit" test "$SEXIT" -eq 0

# the client entry, checked at load: serve --check names FILE:LINE
entry() { # NAME LINES... -> a clients file $W/e-NAME.conf with one client
  local name=$1
  shift
  { printf '[client %s]\n' "$name"; printf '%s\n' "$@"; } >"$W/e-$name.conf"
  chmod 600 "$W/e-$name.conf"
}
chk() { "$SERVE_BIN" --check --clients "$W/e-$1.conf" --keyring "$W/ring" 2>"$W/e-$1.err" >/dev/null; }
J=$(cat "$W/jwks.json")
entry hs "jwks = $J" "assertion_algs = HS256" "audience = api"
chk hs
expect "assertion_algs HS256: exit 2" 2 "$?"
check "... named with FILE:LINE: $(cat "$W/e-hs.err")" grep -q -F "e-hs.conf:3: assertion_algs: 'HS256' is not an asymmetric algorithm" "$W/e-hs.err"
entry both "secret_hash = $(grep -m1 '^secret_hash' "$W/clients.conf" | cut -d' ' -f3)" "jwks = $J" "assertion_algs = ES256" "audience = api"
chk both
expect "secret_hash and jwks together: exit 2" 2 "$?"
check "... named: $(cat "$W/e-both.err")" grep -q 'e-both.conf:1: client both has both secret_hash and jwks' "$W/e-both.err"
entry noalgs "jwks = $J" "audience = api"
chk noalgs
expect "jwks without assertion_algs: exit 2" 2 "$?"
check "... named: $(cat "$W/e-noalgs.err")" grep -q 'e-noalgs.conf:1: client noalgs has no assertion_algs' "$W/e-noalgs.err"
entry otheralg "jwks = $J" "assertion_algs = EdDSA" "audience = api"
chk otheralg
expect "a key outside assertion_algs: exit 2" 2 "$?"
check "... named: $(cat "$W/e-otheralg.err")" grep -q 'e-otheralg.conf:1: client otheralg: jwks key svc-1 is for ES256, which is not in its assertion_algs' "$W/e-otheralg.err"
entry oct "jwks = {\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\",\"alg\":\"HS256\"}]}" "assertion_algs = ES256" "audience = api"
chk oct
expect "a secret (oct) key in jwks: exit 2" 2 "$?"
check "... named: $(cat "$W/e-oct.err")" grep -q 'e-oct.conf:2: jwks: key 0 cannot verify client assertions' "$W/e-oct.err"
entry good "jwks = $J" "assertion_algs = ES256" "audience = api"
chk good
expect "the same entries done right: exit 0" 0 "$?"
echo "serve private_key_jwt tests: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
