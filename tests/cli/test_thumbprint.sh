#!/usr/bin/env bash
# jwtkit thumbprint: RFC 7638 and RFC 8037 vectors, PEM = JWK, --uri, secrets.
source "$(dirname "$0")/lib.sh" "$@"

# RFC 7638 section 3.1
cat >rfc7638.jwk <<'EOF'
{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}
EOF
run thumbprint rfc7638.jwk
assert_rc 0
assert_out_eq "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
assert_err_eq ""
run thumbprint --uri rfc7638.jwk
assert_out_eq "urn:ietf:params:oauth:jwk-thumbprint:sha-256:NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
run thumbprint - <rfc7638.jwk
assert_out_eq "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
# without "alg" (RSA keys are loaded as RS256 for this: the thumbprint
# does not depend on the algorithm)
sed 's/"alg":"RS256",//' rfc7638.jwk >noalg.jwk
run thumbprint noalg.jwk
assert_out_eq "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

# RFC 8037 A.3 (Ed25519), private and public forms
printf '{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}' >ed.pub.jwk
printf '{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}' >ed.jwk
chmod 600 ed.jwk
for f in ed.pub.jwk ed.jwk; do
  run thumbprint "$f"
  assert_rc 0
  assert_out_eq "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
done

# PEM, DER and JWK forms of one key agree; keygen's kid is the thumbprint
for alg in RS256 PS512 ES384 ES512 EdDSA; do
  "$JWTKIT" keygen --alg "$alg" --out "$alg.pem" --pub "$alg.pub.pem" 2>"$alg.log"
  kid=$(sed -n 's/^kid: //p' "$alg.log")
  run thumbprint "$alg.pem"
  assert_out_eq "$kid"
  run thumbprint "$alg.pub.pem"
  assert_out_eq "$kid"
  "$JWTKIT" jwk --alg "$alg" "$alg.pub.pem" >"$alg.pub.jwk"
  run thumbprint "$alg.pub.jwk"
  assert_out_eq "$kid"
done
if command -v openssl >/dev/null; then # DER forms
  openssl pkey -in ES384.pem -outform DER -out ES384.der 2>/dev/null
  run thumbprint ES384.der
  assert_rc 0
  assert_out_eq "$(sed -n 's/^kid: //p' ES384.log)"
  openssl pkey -in RS256.pem -outform DER -out RS256.der 2>/dev/null
  run thumbprint RS256.der
  assert_rc 0
  assert_out_eq "$(sed -n 's/^kid: //p' RS256.log)"
fi

# encrypted PEM
"$JWTKIT" keygen --alg ES256 --out enc.pem --passphrase-env PASS 2>/dev/null && { check; fail "no PASS set"; } || true
export PASS=s3cret
"$JWTKIT" keygen --alg ES256 --out enc.pem --passphrase-env PASS 2>enc.log
run thumbprint enc.pem
assert_rc 2
assert_err_contains "a passphrase is needed (use --passphrase-file or --passphrase-env)"
run thumbprint --passphrase-env PASS enc.pem
assert_rc 0
assert_out_eq "$(sed -n 's/^kid: //p' enc.log)"
PASS=wrong run thumbprint --passphrase-env PASS enc.pem
assert_rc 2
assert_err_contains "wrong or missing passphrase"

# a secret's thumbprint hashes the secret: printed with a warning
"$JWTKIT" keygen --alg HS256 --out hs.jwk 2>/dev/null
run thumbprint hs.jwk
assert_rc 0
assert_err_contains "derived from a secret; do not publish it"
check
[ "${#OUT}" -eq 43 ] || fail "thumbprint length"

# unreadable or not a key: exit 2
run thumbprint no-such-file
assert_rc 2
printf 'not a key' >junk
run thumbprint junk
assert_rc 2
assert_err_contains "not a key (expected PEM, DER or JWK)"
printf '{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}' >bad.jwk
run thumbprint bad.jwk
assert_rc 2
assert_err_contains "key bad.jwk: invalid key"
"$JWTKIT" jwks ed.pub.jwk >set.json
run thumbprint set.json
assert_rc 2
assert_err_contains "is a JWK Set"
if command -v openssl >/dev/null; then
  openssl genrsa 1024 2>/dev/null >weak.pem
  run thumbprint weak.pem
  assert_rc 2
  assert_err_contains "key too weak"
fi
assert_write_error thumbprint ed.jwk

finish
