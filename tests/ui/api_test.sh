#!/usr/bin/env bash
# jwtkit ui's HTTP API with curl on a free loopback port: the start-up
# (the URL line, the per-start secret, --listen, --keyring, --open), the
# page's security (Host, Origin, Sec-Fetch-Site, the secret, headers, body
# limits, strict JSON), every pane's endpoint with good and bad input, and
# the log (never a secret, token or key).  Needs JWTKIT_CLI_BIN (ctest sets
# it), curl, jq, openssl.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/checks.sh"
: "${JWTKIT_CLI_BIN:?JWTKIT_CLI_BIN not set (run through ctest)}"
J=$JWTKIT_CLI_BIN
for t in curl jq openssl; do
  command -v $t >/dev/null && continue
  [ "${CI:-}" = true ] && { echo "FAIL: $t not installed (CI=true)"; exit 1; }
  echo "SKIP: $t not installed"; exit 77
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:exitcode=23}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/jwtkit-ui-api.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  if [ "$FAIL" -eq 0 ]; then rm -rf "$WORK"; else echo "--- kept $WORK"; fi
}
trap cleanup EXIT
cd "$WORK" || exit 1

# start_ui NAME ARGS...: runs `jwtkit ui ARGS` in the background; URL, HP
# (host:port), SECRET and UI_PID describe it (the URL is the first line of
# its stdout, read within 10 s)
start_ui() {
  local name=$1
  shift
  "$J" ui "$@" >"$name.out" 2>"$name.err" &
  UI_PID=$!
  PIDS+=("$UI_PID")
  URL=
  for _ in $(seq 100); do
    URL=$(head -n 1 "$name.out" 2>/dev/null)
    [ -n "$URL" ] && break
    kill -0 "$UI_PID" 2>/dev/null || break
    sleep 0.1
  done
  HP=${URL#http://}
  HP=${HP%%/*}
  SECRET=${URL#*token=}
}

# req METHOD PATH [curl options]: STATUS, BODY (file body), HEADERS (file hdrs)
req() {
  local m=$1 p=$2
  shift 2
  STATUS=$(curl -s -o body -D hdrs -w '%{http_code}' -X "$m" --max-time 20 "$@" "http://$HP$p")
}
# api NAME JSON [curl options]: POST /api/NAME with the secret
api() {
  local n=$1 d=$2
  shift 2
  req POST "/api/$n" -H "Content-Type: application/json" -H "X-Jwtkit-Ui-Secret: $SECRET" --data-binary "$d" "$@"
}
jb() { jq -r "$1" body; } # a value of the last answer
json_str() { jq -Rs . <"$1"; } # a file's content as a JSON string

# --------------------------------------------------------------- fixtures
"$J" keygen --alg ES256 --out es.pem --pub es.pub.pem 2>/dev/null
"$J" keygen --alg RS256 --out rs.pem --pub rs.pub.pem 2>/dev/null
"$J" jwks es.pub.pem >es.jwks
KID=$(jq -r '.keys[0].kid' es.jwks)
TOKEN=$("$J" sign --key es.pem --alg ES256 --iss https://issuer.example --aud api --sub alice --ttl 1h)
# the same token with its subject changed: its signature no longer fits
TAMPERED=$(python3 -c '
import base64, sys
h, p, s = sys.argv[1].split(".")
raw = base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)).replace(b"alice", b"mallo")
print(h + "." + base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + s)' "$TOKEN")
"$J" keygen --alg EdDSA --out ed.pem --pub ed.pub.pem 2>/dev/null
openssl genrsa -out rsa1024.pem 1024 2>/dev/null
chmod 600 rsa1024.pem
RING=$WORK/ring
"$J" keyring init "$RING" --alg ES256 --at 2026-11-28T09:00:00Z >/dev/null 2>&1
"$J" keyring rotate "$RING" --at 2026-12-27T09:00:00Z >/dev/null 2>&1

# ---------------------------------------------------------- the command
"$J" ui --listen nonsense >/dev/null 2>usage.err
expect "a bad --listen exits 2" 2 $?
check "... naming the grammar" grep -q "ADDRESS:PORT with a numeric IPv4 address" usage.err
"$J" ui --keyring "$WORK/none" >/dev/null 2>usage.err
expect "a keyring that cannot be read exits 2" 2 $?
check "... saying why" grep -q -- "--keyring $WORK/none" usage.err
"$J" ui extra >/dev/null 2>usage.err
expect "an argument exits 2" 2 $?
"$J" ui --help >help.out
expect "--help exits 0" 0 $?
check "--help names the options" grep -q -- "--keyring DIR|URL" help.out

mkdir tmp # plans from parameters are made (and removed) under $TMPDIR
TMPDIR=$WORK/tmp start_ui main --listen 127.0.0.1:0 --keyring "$RING" --log-level debug
check "the first line on stdout is the URL with a 256-bit secret" \
  grep -Eq '^http://127\.0\.0\.1:[0-9]+/\?token=[A-Za-z0-9_-]{43}$' <<<"$URL"
check "port 0 picked a free port" test "${HP##*:}" -gt 0

# ------------------------------------------------------------- the page
req GET /
expect "GET / answers the page" 200 "$STATUS"
check "... as HTML" grep -qi '^Content-Type: text/html' hdrs
check "... with a strict CSP" grep -qi "^Content-Security-Policy: default-src 'self';.*frame-ancestors 'none'" hdrs
check "... nosniff" grep -qi '^X-Content-Type-Options: nosniff' hdrs
check "... no referrer" grep -qi '^Referrer-Policy: no-referrer' hdrs
check "... not framed" grep -qi '^X-Frame-Options: DENY' hdrs
check "... not stored" grep -qi '^Cache-Control: no-store' hdrs
check "the page loads nothing from elsewhere" bash -c "! grep -Eqi '(src|href)=\"(https?:)?//' body"
req GET /app.js
expect "the page's script is served" 200 "$STATUS"
check "... as JavaScript" grep -qi '^Content-Type: text/javascript' hdrs
req GET /nothing-here
expect "an unknown path is 404" 404 "$STATUS"
req POST /
expect "POST on the page is 405" 405 "$STATUS"
check "... with Allow" grep -qi '^Allow: GET, HEAD' hdrs

# ------------------------------------------------------- the secret
req POST /api/info -H "Content-Type: application/json" --data-binary '{}'
expect "the API without the secret is 403" 403 "$STATUS"
check "... every answer has the security headers" grep -qi '^X-Content-Type-Options: nosniff' hdrs
WRONG=$(printf '%s' "$SECRET" | tr 'A-Za-z' 'B-ZAb-za')
JSON=(-H "Content-Type: application/json" --data-binary '{}')
req POST /api/info "${JSON[@]}" -H "X-Jwtkit-Ui-Secret: $WRONG"
expect "a wrong secret of the right length is 403" 403 "$STATUS"
req POST /api/info "${JSON[@]}" -H "X-Jwtkit-Ui-Secret: ${SECRET:0:20}"
expect "a prefix of the secret is 403" 403 "$STATUS"
req POST /api/info "${JSON[@]}" -H "X-Jwtkit-Ui-Secret: ${SECRET}x"
expect "the secret and one more character is 403" 403 "$STATUS"
req POST "/api/info?token=$SECRET" -H "Content-Type: application/json" --data-binary '{}'
expect "the secret in the query instead of the header is 403" 403 "$STATUS"
api info '{}'
expect "the secret opens the API" 200 "$STATUS"
expect "... info names the keyring" "$RING" "$(jb .keyring)"
check "... and carries no secret" bash -c "! grep -q '$SECRET' body"

# --------------------------------------------- Host, Origin, fetch site
req GET / -H "Host: evil.example:${HP##*:}"
expect "a foreign Host is 403 (DNS rebinding)" 403 "$STATUS"
api info '{}' -H "Host: evil.example:${HP##*:}"
expect "... on the API too, secret or not" 403 "$STATUS"
api info '{}' -H "Host: 127.0.0.1:1"
expect "our address with another port is 403" 403 "$STATUS"
api info '{}' -H "Host: localhost:${HP##*:}"
expect "localhost with our port is accepted" 200 "$STATUS"
req GET / -H "Host:"
check "no Host at all is refused ($STATUS)" bash -c "[ $STATUS = 400 ] || [ $STATUS = 403 ]"
api info '{}' -H "Origin: http://evil.example"
expect "a cross-site Origin is 403" 403 "$STATUS"
api info '{}' -H "Origin: null"
expect "Origin null is 403" 403 "$STATUS"
api info '{}' -H "Origin: https://$HP"
expect "another scheme on our Origin is 403" 403 "$STATUS"
api info '{}' -H "Origin: http://$HP"
expect "our own Origin is accepted" 200 "$STATUS"
api info '{}' -H "Sec-Fetch-Site: cross-site"
expect "Sec-Fetch-Site cross-site is 403" 403 "$STATUS"
api info '{}' -H "Sec-Fetch-Site: same-origin"
expect "Sec-Fetch-Site same-origin is accepted" 200 "$STATUS"

# -------------------------------------------------- bodies and JSON
req POST /api/info -H "Content-Type: text/plain" -H "X-Jwtkit-Ui-Secret: $SECRET" --data-binary '{}'
expect "a body that is not application/json is 415" 415 "$STATUS"
req GET /api/info -H "X-Jwtkit-Ui-Secret: $SECRET"
expect "GET on the API is 405" 405 "$STATUS"
head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >big
api decode @big
expect "a 10 MB body is 413" 413 "$STATUS"
api decode @big -H "Transfer-Encoding: chunked"
expect "a 10 MB chunked body is 413" 413 "$STATUS"
api decode '{"token": "a.b.c"'
expect "truncated JSON is 400" 400 "$STATUS"
check "... saying where" grep -q 'the request body: JSON: unterminated container at byte 17' body
printf '{"token":"\xff\xfe"}' >latin
api decode @latin
expect "a body that is not UTF-8 is 400" 400 "$STATUS"
api decode '["a"]'
expect "a JSON array is 400" 400 "$STATUS"
api decode '{"token":"x","token":"y"}'
expect "duplicate member names are 400" 400 "$STATUS"
python3 -c 'print("{\"x\":[" + ",".join(["1"] * 5000) + "]}")' >many
api decode @many
expect "more JSON values than read is 400" 400 "$STATUS"
api decode '{"token": 5}'
expect "a member of the wrong type is 400" 400 "$STATUS"
expect "... naming it" token "$(jb .field)"
api nothing '{}'
expect "an unknown endpoint is 404" 404 "$STATUS"

# --------------------------------------------------------------- decode
IAT=$("$J" decode --json - <<<"$TOKEN" | jq .payload.iat)
api decode "{\"token\":\"Bearer $TOKEN\",\"at\":$((IAT + 60))}"
expect "decode: a token (Bearer prefix and all)" 200 "$STATUS"
expect "... is UNVERIFIED" false "$(jb .verified)"
expect "... its header, as the library decodes it" ES256 "$(jb '.header_text | fromjson | .alg')"
expect "... every claim, explained" true "$(jb '[.claims[] | select(.name == "aud") | .about | test("Audience")] | any')"
expect "... exp on the time axis, relative to now" "in 59m" "$(jb '.times[] | select(.name == "exp") | .relative')"
api decode '{"token":"not a token"}'
expect "decode: garbage is 422" 422 "$STATUS"
check "... with the library's reason" grep -q 'malformed token' body
# a NumericDate as the verifier reads it: exponent form, and a string
H=$(printf '{"alg":"ES256"}' | basenc --base64url | tr -d '=')
P=$(printf '{"exp":1.7000036e+09,"nbf":"1700000000"}' | basenc --base64url | tr -d '=')
api decode "{\"token\":\"$H.$P.AAAA\",\"at\":1700000000}"
expect "decode: exp 1.7000036e+09 is exactly 1700003600" 1700003600 "$(jb '.times[] | select(.name == "exp") | .floor')"
check "... a string nbf is not a NumericDate" bash -c "jq -e '.times[] | select(.name == \"nbf\") | .error | test(\"malformed\")' body >/dev/null"

# --------------------------------------------------------------- verify
api verify "{\"token\":\"$TOKEN\",\"algs\":[\"ES256\"],\"keys\":$(json_str es.pub.pem),\"iss\":\"https://issuer.example\",\"aud\":\"api\"}"
expect "verify: a good token" true "$(jb .valid)"
expect "... every check passed or was not configured" 0 "$(jb '[.checks[] | select(.status == "fail")] | length')"
expect "... the key that verified" "$KID" "$(jb .key.thumbprint)"
api verify "{\"token\":\"$TOKEN\",\"algs\":[\"ES256\"],\"keys\":$(json_str es.jwks),\"aud\":\"api\"}"
expect "verify: with a JWK Set, the kid that verified" "$KID" "$(jb .key.kid)"
api verify "{\"token\":\"$TAMPERED\",\"algs\":[\"ES256\"],\"keys\":$(json_str es.jwks),\"aud\":\"api\"}"
expect "verify: a tampered token is invalid" false "$(jb .valid)"
expect "... the failed check is the signature" fail "$(jb '.checks[] | select(.name == "signature") | .status')"
expect "... with the library's error" BAD_SIGNATURE "$(jb .error.code)"
expect "... the claims are not checked" skip "$(jb '.checks[] | select(.name == "aud") | .status')"
"$J" jwks es.pub.pem ed.pub.pem >es-ed.jwks
api verify "{\"token\":\"$TOKEN\",\"algs\":[\"EdDSA\"],\"keys\":$(json_str es-ed.jwks)}"
expect "verify: ES256 not pinned: the algorithm check fails" fail "$(jb '.checks[] | select(.name == "algorithm") | .status')"
check "... and the set's key is listed as not used" bash -c "jq -e '.notes[0] | test(\"not pinned\")' body >/dev/null"
api verify "{\"token\":\"$TOKEN\",\"keys\":$(json_str es.jwks)}"
expect "verify: no pinned algorithm is 400" 400 "$STATUS"
api verify "{\"token\":\"$TOKEN\",\"algs\":[\"none\"],\"keys\":$(json_str es.jwks)}"
expect "verify: none is never an algorithm" 400 "$STATUS"
api verify "{\"token\":\"$TOKEN\",\"algs\":[\"RS256\",\"PS256\"],\"keys\":$(json_str rs.pub.pem)}"
expect "verify: an RSA PEM with RS256 and PS256 pinned is 422" 422 "$STATUS"
check "... asking to pin one" grep -q 'pin only one of' body
api verify "{\"token\":\"$TOKEN\",\"algs\":[\"ES256\"],\"keys\":$(json_str es.jwks),\"aud\":\"other\",\"at\":2000000000}"
expect "verify: expired, checked at a later time: exp fails" fail "$(jb '.checks[] | select(.name == "exp") | .status')"
expect "... the verdict is the library's" EXPIRED "$(jb .error.code)"
expect "... the audience is still checked, at a time the token was valid" fail "$(jb '.checks[] | select(.name == "aud") | .status')"
api verify "{\"token\":\"$TOKEN\",\"algs\":[\"ES256\"],\"keys\":$(json_str es.jwks)}"
expect "verify: aud in the token, none configured: refused as everywhere" CLAIM_MISMATCH "$(jb .error.code)"
api verify "{\"token\":\"$TOKEN\",\"algs\":[\"ES256\"],\"keys\":$(json_str es.jwks),\"insecure_any_aud\":true}"
expect "... unless any audience is accepted" true "$(jb .valid)"
printf '%s' 'correct horse battery staple, correct horse battery' >hs.secret
chmod 600 hs.secret
HS=$("$J" sign --secret-file hs.secret --alg HS256 --sub bob)
api verify "{\"token\":\"$HS\",\"algs\":[\"HS256\"],\"secret\":$(json_str hs.secret)}"
expect "verify: an HS256 token under its secret" true "$(jb .valid)"
api verify "{\"token\":\"$HS\",\"algs\":[\"HS256\",\"HS512\"],\"secret\":$(json_str hs.secret)}"
expect "verify: a secret with two HS algorithms pinned is 422" 422 "$STATUS"
# a JWKS URL, fetched by the project's one HTTP client: http to loopback
# only, anything else refused before a connection is made
mkdir -p www && cp es.jwks www/jwks.json
WWW_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
python3 -m http.server "$WWW_PORT" --bind 127.0.0.1 --directory www >www.log 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$WWW_PORT/jwks.json" && break; sleep 0.1; done
api verify "{\"token\":\"$TOKEN\",\"algs\":[\"ES256\"],\"jwks_url\":\"http://127.0.0.1:$WWW_PORT/jwks.json\",\"insecure_any_aud\":true}"
expect "verify: a JWKS URL on loopback is fetched and verifies" true "$(jb .valid)"
api jwks "{\"url\":\"http://127.0.0.1:$WWW_PORT/jwks.json\"}"
expect "jwks viewer: a URL on loopback is fetched" 200 "$STATUS"
api verify "{\"token\":\"$TOKEN\",\"algs\":[\"ES256\"],\"jwks_url\":\"http://192.0.2.1:9/jwks.json\"}"
expect "verify: http:// to another address is refused (400)" 400 "$STATUS"
check "... before connecting, saying why" grep -q 'loopback address only' body
api verify "{\"token\":\"$TOKEN\",\"algs\":[\"ES256\"],\"jwks_url\":\"http://127.0.0.1:$WWW_PORT/missing.json\"}"
expect "verify: a 404 from the JWKS server is 502" 502 "$STATUS"
check "... naming the status" grep -q 'HTTP 404' body
api verify "{\"token\":\"$TOKEN\",\"algs\":[\"ES256\"]}"
expect "verify: no key at all is 400" 400 "$STATUS"

# ------------------------------------------------------------- generate
api generate '{"alg":"ES256","iss":"https://issuer.example","sub":"carol","aud":["api","b"],"scope":"read","ttl":"10m","jti":true}'
expect "generate: an ES256 token with a fresh key" 200 "$STATUS"
jb .token >gen.token
jq '.jwks' body >gen.jwks
check "... its JWK Set holds no private member" bash -c "! jq -e '.keys[0].d' gen.jwks >/dev/null"
check "... the private key is in the answer, once, with a warning" bash -c "jq -e '(.private | test(\"BEGIN PRIVATE KEY\")) and (.warnings[0] | test(\"stored nowhere\"))' body >/dev/null"
check "... and the command verifies the token with that set" \
  bash -c "'$J' verify --jwks gen.jwks --alg ES256 --iss https://issuer.example --aud api @gen.token >/dev/null"
expect "... with the claims asked for" "read" "$("$J" decode --json @gen.token | jq -r .payload.scope)"
api generate "{\"alg\":\"ES256\",\"key\":$(json_str es.pem),\"sub\":\"dave\"}"
expect "generate: with a pasted key" 200 "$STATUS"
expect "... which is not echoed back" null "$(jb .private)"
jb .token >pasted.token
check "... and signs as that key" bash -c "'$J' verify --key es.pub.pem --alg ES256 @pasted.token >/dev/null"
api generate '{"alg":"HS256","sub":"erin"}'
expect "generate: HS256 gives the secret as an oct JWK" oct "$(jb '.private | fromjson | .kty')"
check "... with a warning that it verifies and mints" bash -c "jq -e '.warnings[1] | test(\"HMAC secret signs and verifies\")' body >/dev/null"
expect "... and no JWK Set (secrets are never published)" null "$(jb .jwks)"
api generate '{"alg":"RS256","bits":16384}'
expect "generate: RSA 16384 here is 400 (jwtkit keygen makes them)" 400 "$STATUS"
api generate '{"alg":"none"}'
expect "generate: none is 400" 400 "$STATUS"
api generate '{"alg":"ES256","claims":"{\"a\":1,\"a\":2}"}'
expect "generate: claims with a duplicate name are refused" 422 "$STATUS"
api generate "{\"alg\":\"ES256\",\"key\":$(json_str es.pub.pem)}"
expect "generate: a public key cannot sign (422)" 422 "$STATUS"

# ------------------------------------------------------------------ pem
api pem "{\"pem\":$(json_str rsa1024.pem),\"name\":\"rsa1024.pem\"}"
expect "pem: an RSA 1024 key is a problem" rsa-too-small "$(jb '.report.problems[0].code')"
"$J" pem check --json rsa1024.pem | jq -c '.[0] | del(.problems[] | select(.code == "file-mode"))' >cli.report
jq -c '.report' body >ui.report
expect "... the report is the one jwtkit pem check --json gives" "$(cat cli.report)" "$(cat ui.report)"
check "... with what the code means" bash -c "jq -e '.descriptions[\"rsa-too-small\"] | test(\"2048\")' body >/dev/null"
head -c 200 es.pem >cut.pem
api pem "{\"pem\":$(json_str cut.pem)}"
expect "pem: a cut file: not ok" false "$(jb .report.ok)"
check "... missing its END line" bash -c "jq -e '[.report.problems[].code] | index(\"missing-end\")' body >/dev/null"
api pem '{}'
expect "pem: nothing to check is 400" 400 "$STATUS"

# ----------------------------------------------------------------- jwks
"$J" jwk --private es.pem >es.private.jwk
python3 - "$WORK/es.jwks" "$WORK/es.private.jwk" >viewer.jwks <<'EOF'
import json, sys
k = json.load(open(sys.argv[1]))["keys"][0]
d = json.load(open(sys.argv[2]))
print(json.dumps({"keys": [k, d, {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},
                           {"kty": "RSA", "n": "sXch", "e": "AQAB"}]}))
EOF
api jwks "{\"jwks\":$(json_str viewer.jwks)}"
expect "jwks: one card per key" 4 "$(jb '.keys | length')"
check "... private members are flagged" bash -c "jq -e '.keys[1].warnings | map(test(\"private key material\")) | any' body >/dev/null"
check "... duplicate kids are flagged" bash -c "jq -e '.keys[0].warnings | map(test(\"kid shared by 2 keys\")) | any' body >/dev/null"
check "... an oct key is flagged" bash -c "jq -e '.keys[2].warnings | map(test(\"secret \\\\(oct\\\\)\")) | any' body >/dev/null"
check "... a missing kid is flagged" bash -c "jq -e '.keys[3].warnings | map(test(\"no kid\")) | any' body >/dev/null"
check "... a small RSA key is flagged" bash -c "jq -e '.keys[3].warnings | map(test(\"RSA key of 24 bits\")) | any' body >/dev/null"
expect "... the thumbprint of a good key" "$KID" "$(jb '.keys[0].thumbprint')"
expect "... and the library refuses the set for its duplicate kid" INVALID_KEY "$(jb .library.error.code)"
api jwks "{\"jwks\":$(json_str es.jwks)}"
expect "jwks: a clean set loads whole" "1 1" "$(jb '"\(.library.loaded) \(.total)"')"
api jwks '{"jwks":"{\"keys\":5}"}'
expect "jwks: not a set is 422" 422 "$STATUS"

# ----------------------------------------------------------------- plan
api plan '{"source":"params","max_age":"5m","token_ttl":"15m","leeway":"60s","rotate_every":"30d","keys":4,"at":"2026-12-01T00:00:00Z"}'
expect "plan: four keys from parameters" 4 "$(jb '.keys | length')"
expect "... the guarantee holds" true "$(jb .holds)"
expect "... the library's default publish-ahead (a thirtieth of 30 days)" 86400 "$(jb .timing.publish_ahead)"
expect "... the second key signs when the first stops" "$(jb '.keys[0].retiring')" "$(jb '.keys[1].activated')"
expect "... and the first leaves TTL + leeway + max-age later" 1260 "$(jb '.keys[0].retired - .keys[0].retiring')"
expect "... the second was published a day before it signed" 86400 "$(jb '.keys[1].activated - .keys[1].published')"
check "... no temporary keyring is left behind" test -z "$(ls -A tmp)"
api plan '{"source":"params","rotate_every":"1h","publish_ahead":"2h"}'
expect "plan: a timing the rules refuse is 422" 422 "$STATUS"
check "... with the library's reason" grep -q 'rotate_every (3600s) must be more than publish_ahead (7200s)' body
api plan '{"source":"keyring"}'
expect "plan: the --keyring" keyring "$(jb .source)"
expect "... its keys are the keyring's" "$("$J" keyring list "$RING" --json | jq -r '[.[].kid] | sort | join(" ")')" \
  "$(jb '[.keys[].kid] | sort | join(" ")')"
expect "... one active, one pending" "active pending" "$(jb '[.keys[].state] | sort | join(" ")')"

# ------------------------------------------------------------------ log
kill -TERM "$UI_PID"
wait "$UI_PID"
expect "SIGTERM stops it cleanly" 0 $?
check "the log is JSON lines" bash -c "jq -e . main.err >/dev/null"
check "... says it started" grep -q '"event":"ui_started"' main.err
check "... records refused requests with the reason" grep -q '"reason":"secret"' main.err
check "... never holds the secret" bash -c "! grep -q -- '$SECRET' main.err"
check "... nor a token" bash -c "! grep -q -e '${TOKEN:0:40}' -e 'eyJ' main.err"
check "... nor key material" bash -c "! grep -q -e 'PRIVATE' -e '\"d\"' main.err"
check "... nor a path it does not serve" bash -c "! grep -q 'api/info?token' main.err"
check "no sanitizer report" bash -c "! grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error:' -e 'LeakSanitizer' main.err"

# ---------------------------------------------------- --listen and --open
start_ui wide --listen 0.0.0.0:0
check "a non-loopback address is served with a warning" grep -q 'warning: listening on 0.0.0.0' wide.err
check "... the URL names loopback" grep -Eq '^http://127\.0\.0\.1:[0-9]+/' <<<"$URL"
api info '{}' -H "Host: 10.1.2.3:${HP##*:}"
expect "... an IP literal with its port is accepted there" 200 "$STATUS"
api info '{}' -H "Host: rebind.example:${HP##*:}"
expect "... a name is not" 403 "$STATUS"
kill -TERM "$UI_PID"
wait "$UI_PID"
mkdir bin
cat >bin/xdg-open <<EOF
#!/bin/sh
printf '%s\n' "\$@" >"$WORK/xdg.args"
cp "\$1" "$WORK/xdg.file"
stat -c %a "\$1" >"$WORK/xdg.mode"
EOF
chmod +x bin/xdg-open
PATH="$WORK/bin:$PATH" DISPLAY=:99 start_ui open --open
for _ in $(seq 50); do [ -s xdg.mode ] && break; sleep 0.1; done
check "--open runs xdg-open" test -s xdg.args
check "... without the secret in its arguments" bash -c "! grep -q -- '$SECRET' xdg.args"
expect "... through a file only the user can read" 600 "$(cat xdg.mode 2>/dev/null)"
check "... that redirects to the URL" grep -q -- "url=$URL" xdg.file
OPENED=$(cat xdg.args)
kill -TERM "$UI_PID"
wait "$UI_PID"
check "... and is removed at exit" test ! -e "$OPENED"
env -u DISPLAY -u WAYLAND_DISPLAY "$J" ui --open >noshow.out 2>noshow.err &
PID=$!
PIDS+=("$PID")
for _ in $(seq 50); do [ -s noshow.out ] && break; sleep 0.1; done
kill -TERM "$PID"
wait "$PID"
check "--open without a display says so" grep -q 'no display' noshow.err

# ------------------------------------------- the docs' scripted use
python3 "$HERE/../lib/doc_block.py" "$HERE/../../docs/ui.md" 'This block is run by `tests/ui/api_test.sh`' >doc.sh
echo "$TOKEN" >token
PATH="$(dirname "$J"):$PATH" timeout 60 bash doc.sh >doc.out 2>doc.err
expect "docs/ui.md: the API from a script runs" 0 $?
check "... and prints the token's exp" grep -q '"name":"exp"' doc.out

echo "ui api: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
