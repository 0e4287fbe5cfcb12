#!/usr/bin/env bash
# jwtkit jwks: public JWK Sets from key files; secrets refused.
source "$(dirname "$0")/lib.sh" "$@"

cat >rfc7638.jwk <<'EOF'
{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}
EOF
printf '{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}' >ed.jwk
chmod 600 ed.jwk

run jwks rfc7638.jwk ed.jwk
assert_rc 0
assert_golden jwks_rfc.txt
assert_out_not_contains '"d":'
printf '%s\n' "$OUT" >set.json

# sets merge; the same key twice is a duplicate kid
run jwks set.json
assert_rc 0
assert_golden jwks_rfc.txt
run jwks set.json ed.jwk
assert_rc 2
assert_err_contains 'kid "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" is already in the set'

# PEM keys: public only, kid = thumbprint, RSA needs --alg
"$JWTKIT" keygen --alg PS256 --out ps.pem --pub ps.pub.pem 2>ps.log
"$JWTKIT" keygen --alg ES256 --out es.pem 2>es.log
run jwks --alg PS256 ps.pem es.pem
assert_rc 0
assert_out_not_contains '"d":'
assert_out_contains "\"kid\":\"$(sed -n 's/^kid: //p' ps.log)\""
assert_out_contains "\"kid\":\"$(sed -n 's/^kid: //p' es.log)\""
assert_out_contains '"alg":"PS256"'
printf '%s\n' "$OUT" >mixed.json
tok=$("$JWTKIT" sign --key es.pem --alg ES256)
run verify --jwks mixed.json --alg ES256 "$tok"
assert_rc 0
run jwks ps.pem
assert_rc 2
assert_err_contains "give --alg"

# RSA keys without "alg" in a set take --alg; others are left out with a warning
sed 's/"alg":"RS256",//' set.json >noalg.json
run jwks noalg.json
assert_rc 0
assert_err_contains 'warning: noalg.json: key 0 left out: RSA key without "alg"'
run jwks --alg RS384 noalg.json
assert_rc 0
assert_err_eq ""
assert_out_contains '"alg":"RS384"'

# secrets are never published
"$JWTKIT" keygen --alg HS256 --out hs.jwk 2>/dev/null
run jwks es.pem hs.jwk
assert_rc 2
assert_out_empty
assert_err_contains "hs.jwk holds a secret (oct) key: secrets are never published in a JWK Set"
printf '{"keys":[%s,%s]}' "$(<hs.jwk)" "$("$JWTKIT" jwk es.pem)" >octset.json
run jwks octset.json
assert_rc 0
assert_err_contains "warning: octset.json: key 0 left out: secret (oct) keys are never taken from a JWK Set"
assert_out_not_contains '"oct"'
assert_out_contains '"kty":"EC"'

# input errors
run jwks
assert_rc 2
run jwks no-such-file
assert_rc 2
printf '{"keys":{}}' >bad.json
run jwks bad.json
assert_rc 2
assert_err_contains "invalid key"
assert_write_error jwks ed.jwk

finish
