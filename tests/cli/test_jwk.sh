#!/usr/bin/env bash
# jwtkit jwk: PEM/DER/JWK in, JWK out; public unless --private.
source "$(dirname "$0")/lib.sh" "$@"

cat >rfc7638.jwk <<'EOF'
{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}
EOF
run jwk rfc7638.jwk
assert_rc 0
assert_golden jwk_rfc7638.txt
run jwk --kid other rfc7638.jwk
assert_out_contains '"kid":"other"'
run jwk --alg PS256 rfc7638.jwk
assert_rc 2
assert_err_contains "is bound to RS256, which --alg does not allow"

# RFC 8037 private key: public by default, private on request, kid = thumbprint
printf '{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}' >ed.jwk
chmod 600 ed.jwk # a private key: owner only (the secret-file rule)
run jwk ed.jwk
assert_rc 0
assert_out_eq '{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"EdDSA","use":"sig","kid":"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"}'
run jwk --private ed.jwk
assert_out_eq '{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","alg":"EdDSA","use":"sig","kid":"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"}'
run jwk - <ed.jwk
assert_rc 0

# PEM in: RSA needs --alg; EC/OKP do not
"$JWTKIT" keygen --alg RS384 --out rs.pem --pub rs.pub.pem 2>/dev/null
"$JWTKIT" keygen --alg ES512 --out es.pem --pub es.pub.pem 2>/dev/null
run jwk rs.pub.pem
assert_rc 2
assert_err_contains "RSA keys need an explicit RS* or PS* algorithm (give --alg)"
run jwk --alg RS384 rs.pub.pem
assert_rc 0
assert_out_contains '"alg":"RS384"'
assert_out_not_contains '"d":'
run jwk --alg RS384 --private rs.pem
assert_rc 0
for m in '"d":' '"p":' '"q":' '"dp":' '"dq":' '"qi":'; do assert_out_contains "$m"; done
printf '%s\n' "$OUT" >rs.jwk
chmod 600 rs.jwk
# round trip: the private JWK signs, the public PEM verifies
tok=$("$JWTKIT" sign --key rs.jwk --alg RS384)
run verify --key rs.pub.pem --alg RS384 "$tok"
assert_rc 0
run jwk es.pem
assert_rc 0
assert_out_contains '"crv":"P-521"'
assert_out_not_contains '"d":'
run jwk --alg ES256 es.pem
assert_rc 2
assert_err_contains "bound to ES512, which --alg does not allow"
run jwk --private es.pub.pem
assert_rc 2
assert_err_contains "holds a public key; --private needs a private key"

# oct keys: secrets have no public form
"$JWTKIT" keygen --alg HS384 --out hs.jwk 2>/dev/null
run jwk hs.jwk
assert_rc 2
assert_err_contains "an oct key is a secret"
run jwk --private hs.jwk
assert_rc 0
assert_out_contains '"kty":"oct"'
assert_out_contains '"kid":"hs-'

# encrypted PEM
printf 'pw\n' >pw
chmod 600 pw
"$JWTKIT" keygen --alg EdDSA --out enc.pem --passphrase-file pw 2>/dev/null
run jwk enc.pem
assert_rc 2
assert_err_contains "passphrase"
run jwk --passphrase-file pw enc.pem
assert_rc 0
run jwk --passphrase-file pw --passphrase-env X enc.pem
assert_rc 2

# usage and input errors
run jwk
assert_rc 2
run jwk a b
assert_rc 2
run jwk --kid "" ed.jwk
assert_rc 2
run jwk --alg none ed.jwk
assert_rc 2
run jwk no-such-file
assert_rc 2
printf '{"kty":"oct","k":"c2hvcnQ","alg":"HS256"}' >weak.jwk
run jwk --private weak.jwk
assert_rc 2
assert_err_contains "key too weak"
printf '{"kty":"EC","crv":"P-256","x":"1","y":"2","use":"enc"}' >enc.jwk
run jwk enc.jwk
assert_rc 2
printf '{"kty":"RSA",' >trunc.jwk
run jwk trunc.jwk
assert_rc 2
assert_err_contains "invalid key"
assert_write_error jwk ed.jwk

finish
