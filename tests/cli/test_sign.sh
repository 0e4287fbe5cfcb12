#!/usr/bin/env bash
# jwtkit sign: keygen -> sign -> verify for every algorithm, claims and
# header building, key and secret sources, deterministic golden tokens.
source "$(dirname "$0")/lib.sh" "$@"

payload() { # payload JSON of a token, via decode --json
  "$JWTKIT" decode --json "$1" | sed 's/.*"payload":\(.*\),"verified":false}$/\1/'
}
header() {
  "$JWTKIT" decode --json "$1" | sed 's/^{"header":\(.*\),"payload":.*/\1/'
}

# --- round trip for every algorithm: keygen -> sign -> verify (PEM, JWK, JWKS)
for spec in HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA EdDSA:448; do
  alg=${spec%%:*}
  bits=
  [ "$spec" != "$alg" ] && bits=${spec#*:}
  name=$(echo "$spec" | tr 'A-Z:' 'a-z_')
  case $alg in
    HS*)
      run keygen --alg "$alg" --out "$name.jwk"
      assert_rc 0
      run sign --key "$name.jwk" --alg "$alg" --sub "rt-$name"
      assert_rc 0
      tok=$OUT
      run verify --key "$name.jwk" --alg "$alg" "$tok"
      assert_rc 0
      assert_out_contains "\"sub\":\"rt-$name\""
      ;;
    *)
      run keygen --alg "$alg" ${bits:+--bits "$bits"} --out "$name.pem" --pub "$name.pub.pem"
      assert_rc 0
      run sign --key "$name.pem" --alg "$alg" --sub "rt-$name" --aud api
      assert_rc 0
      tok=$OUT
      assert_true "$alg header" test "$(header "$tok" | grep -c "\"alg\":\"$alg\"")" = 1
      run verify --key "$name.pub.pem" --alg "$alg" --aud api "$tok"
      assert_rc 0
      assert_out_contains "\"sub\":\"rt-$name\""
      "$JWTKIT" jwk --alg "$alg" "$name.pub.pem" >"$name.pub.jwk"
      run verify --key "$name.pub.jwk" --alg "$alg" --aud api "$tok"
      assert_rc 0
      "$JWTKIT" jwks --alg "$alg" "$name.pub.pem" >"$name.jwks"
      run verify --jwks "$name.jwks" --alg "$alg" --aud api "$tok"
      assert_rc 0
      # the private key verifies too, and a token for another alg does not
      run verify --key "$name.pem" --alg "$alg" --aud api "$tok"
      assert_rc 0
      ;;
  esac
done
run decode "$(  "$JWTKIT" sign --key eddsa_448.pem --alg EdDSA)"
assert_rc 0

# --- a deterministic HS256 token (golden)
printf '%s' 'jwtkit-test-secret-0123456789abcdef' >secret.txt
chmod 600 secret.txt
run sign --secret-file secret.txt --alg HS256 --at 1700000000 --iss https://issuer.example --sub alice --aud api
assert_rc 0
assert_golden sign_hs256.txt
hs_token=$OUT
run verify --secret-file secret.txt --alg HS256 --aud api --at 1700000100 "$hs_token"
assert_rc 0
assert_out_eq '{"iss":"https://issuer.example","sub":"alice","aud":"api","iat":1700000000,"exp":1700000900}'
# same secret from the environment and from stdin
JWTKIT_TEST_SECRET=$(<secret.txt) run sign --secret-env JWTKIT_TEST_SECRET --alg HS256 --at 1700000000 \
  --iss https://issuer.example --sub alice --aud api
export JWTKIT_TEST_SECRET
assert_golden sign_hs256.txt
run sign --secret-file - --alg HS256 --at 1700000000 --iss https://issuer.example --sub alice --aud api <secret.txt
assert_golden sign_hs256.txt
# the secret rule (the same in jwtkit serve and jwtkit gate): one trailing
# "\n" or "\r\n" is not part of the secret, from a file, stdin or the
# environment; anything else is
for ending in '\n' '\r\n'; do
  printf "%s$ending" "$(<secret.txt)" >secret_nl.txt
  chmod 600 secret_nl.txt
  run sign --secret-file secret_nl.txt --alg HS256 --at 1700000000 --iss https://issuer.example --sub alice --aud api
  assert_rc 0
  assert_golden sign_hs256.txt
  run sign --secret-file - --alg HS256 --at 1700000000 --iss https://issuer.example --sub alice --aud api <secret_nl.txt
  assert_golden sign_hs256.txt
done
JWTKIT_TEST_SECRET_NL=$(<secret.txt)$'\n' run sign --secret-env JWTKIT_TEST_SECRET_NL --alg HS256 --at 1700000000 \
  --iss https://issuer.example --sub alice --aud api
assert_golden sign_hs256.txt
for ending in '\n\n' ' ' '\t' '\r'; do
  printf "%s$ending" "$(<secret.txt)" >secret_other.txt
  chmod 600 secret_other.txt
  run sign --secret-file secret_other.txt --alg HS256 --at 1700000000 --iss https://issuer.example --sub alice --aud api
  assert_rc 0
  assert_true "only one newline is dropped (ending $ending)" test "$OUT" != "$hs_token"
done

# the file rule: a secret, passphrase or private key file gives group and
# others no access, checked on the opened file
for mode in 644 640 604 660 606; do
  cp secret.txt secret_open.txt
  chmod "$mode" secret_open.txt
  run sign --secret-file secret_open.txt --alg HS256
  assert_rc 2
  assert_err_contains "secret_open.txt has mode 0$mode"
  assert_err_contains "chmod 600 secret_open.txt"
  assert_out_empty
done
chmod 400 secret_open.txt
run sign --secret-file secret_open.txt --alg HS256 --at 1700000000 --iss https://issuer.example --sub alice --aud api
assert_golden sign_hs256.txt

# --- a deterministic EdDSA token: RFC 8037 A.1 test key
cat >ed25519.jwk <<'EOF'
{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
EOF
# a private key file readable by others is refused like any secret file
chmod 644 ed25519.jwk
run sign --key ed25519.jwk --alg EdDSA --sub rfc8037
assert_rc 2
assert_err_contains "ed25519.jwk has mode 0644"
run jwk ed25519.jwk
assert_rc 2
assert_err_contains "chmod 600 ed25519.jwk"
chmod 600 ed25519.jwk
run sign --key ed25519.jwk --alg EdDSA --at 2026-11-28T12:00:00Z --ttl 1h --sub rfc8037
assert_rc 0
assert_golden sign_eddsa.txt
assert_true "PEM/JWK without kid signs with the thumbprint" \
  test "$(header "$OUT")" = '{"alg":"EdDSA","typ":"JWT","kid":"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"}'
run sign --key ed25519.jwk --alg EdDSA --kid "" --typ ""
assert_rc 0
assert_true "no kid, no typ" test "$(header "$OUT")" = '{"alg":"EdDSA"}'
run sign --key ed25519.jwk --alg EdDSA --kid k1 --typ at+jwt
assert_true "kid and typ" test "$(header "$OUT")" = '{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}'

# --- claims: --claims first, flags override
run sign --secret-file secret.txt --alg HS256 --at 1700000000 \
  --claims '{"sub":"x","role":"admin","aud":"old","n":[1,2]}' --sub y --aud b --aud c
assert_rc 0
assert_true "merged claims" test "$(payload "$OUT")" = \
  '{"sub":"y","role":"admin","aud":["b","c"],"n":[1,2],"iat":1700000000,"exp":1700000900}'
printf '{"scope":"read write"}' >claims.json
run sign --secret-file secret.txt --alg HS256 --at 1700000000 --claims @claims.json --no-iat --ttl 1h
assert_true "@FILE, --no-iat, --ttl" test "$(payload "$OUT")" = '{"scope":"read write","exp":1700003600}'
run sign --secret-file secret.txt --alg HS256 --at 1700000000 --claims - --ttl 7d --nbf 2023-11-14T22:13:20Z <claims.json
assert_true "stdin, --ttl 7d, --nbf" test "$(payload "$OUT")" = \
  '{"scope":"read write","iat":1700000000,"exp":1700604800,"nbf":1700000000}'
run sign --secret-file secret.txt --alg HS256 --jti
assert_rc 0
assert_true "jti" sh -c "printf '%s' '$(payload "$OUT")' | grep -Eq '\"jti\":\"[A-Za-z0-9_-]{22}\"'"
run sign --secret-file secret.txt --alg HS256 --ttl 90s --at 100
assert_true "--ttl 90s" test "$(payload "$OUT")" = '{"iat":100,"exp":190}'
run sign --secret-file secret.txt --alg HS256 --ttl 2h --at 2026-11-28T12:00:00+01:00
assert_true "RFC 3339 with offset" test "$(payload "$OUT")" = '{"iat":1795863600,"exp":1795870800}'

# --- extra header members
run sign --secret-file secret.txt --alg HS256 --header x5t=abc --header n=5 --header 'o={"a":true}' --header s='"q"'
assert_rc 0
assert_true "extra header" test "$(header "$OUT")" = '{"alg":"HS256","typ":"JWT","x5t":"abc","n":5,"o":{"a":true},"s":"q"}'
run sign --secret-file secret.txt --alg HS256 --header alg=none
assert_rc 2
assert_err_contains "alg"
run sign --secret-file secret.txt --alg HS256 --header crit='["exp"]'
assert_rc 2
run sign --secret-file secret.txt --alg HS256 --header novalue
assert_rc 2
assert_err_contains "NAME=VALUE"

# --- usage errors and unreadable input: exit 2
run sign --secret-file secret.txt
assert_rc 2
assert_err_contains "--alg is required"
run sign --alg HS256
assert_rc 2
assert_err_contains "give exactly one of --key, --keyring, --secret-file, --secret-env"
run sign --key ed25519.jwk --secret-file secret.txt --alg HS256
assert_rc 2
run sign --secret-file secret.txt --secret-env X --alg HS256
assert_rc 2
run sign --secret-env JWTKIT_NO_SUCH_VARIABLE --alg HS256
assert_rc 2
assert_err_contains "is not set"
printf 'short-secret-16b' >short.txt
chmod 600 short.txt
run sign --secret-file short.txt --alg HS256
assert_rc 2
assert_err_contains "at least 32 bytes"
run sign --secret-file secret.txt --alg RS256
assert_rc 2
assert_err_contains "a secret signs HS256, HS384 or HS512 only"
# a key is never an HMAC secret, in any form, whatever the file's mode
run sign --secret-file rs256.pub.pem --alg HS256
assert_rc 2
assert_err_contains "the secret is a PEM block: a key is never an HMAC secret"
run sign --secret-file hs256.jwk --alg HS256
assert_rc 2
assert_err_contains "the secret is a JWK"
openssl pkey -in es256.pem -pubout -outform DER -out es256.pub.der 2>/dev/null
run sign --secret-file es256.pub.der --alg HS256
assert_rc 2
assert_err_contains "the secret is a DER key"
run sign --secret-file - --alg HS256 <rs256.pub.pem
assert_rc 2
assert_err_contains "the secret is a PEM block"
run sign --key rs256.pub.pem --alg RS256
assert_rc 2
assert_err_contains "is a public key; signing needs the private key"
run sign --key es256.pem --alg ES384
assert_rc 2
assert_err_contains "bound to ES256"
run sign --key rs256.pem --alg HS256
assert_rc 2
run sign --key rs256.pem --alg PS256
assert_rc 0
run sign --key no-such-file --alg HS256
assert_rc 2
assert_err_contains "cannot read key file no-such-file"
run sign --key . --alg HS256
assert_rc 2
assert_err_contains "is a directory"
printf 'hello' >garbage
run sign --key garbage --alg HS256
assert_rc 2
assert_err_contains "not a key"
run sign --secret-file secret.txt --alg HS256 --claims '{"a":1,"a":2}'
assert_rc 2
assert_err_contains "not a strict JSON object"
run sign --secret-file secret.txt --alg HS256 --claims '[1]'
assert_rc 2
run sign --secret-file secret.txt --alg HS256 --claims @no-such-file
assert_rc 2
head -c 70000 /dev/zero | tr '\0' ' ' >big.json
run sign --secret-file secret.txt --alg HS256 --claims @big.json
assert_rc 2
assert_err_contains "exceeds the limit of 64 KiB"
head -c 1100000 /dev/zero | tr '\0' ' ' >big.pem
run sign --key big.pem --alg ES256
assert_rc 2
assert_err_contains "exceeds the limit of 1 MiB"
run sign --secret-file - --claims - --alg HS256 <<<'{}'
assert_rc 2
assert_err_contains "stdin (-) can only be read once"
for bad in 0 -5 15x 1.5h ""; do
  run sign --secret-file secret.txt --alg HS256 --ttl "$bad"
  assert_rc 2
  assert_err_contains "bad --ttl"
done
for bad in 2026-13-01T00:00:00Z 2026-02-30T00:00:00Z 2026-11-28 2026-11-28T12:00:00 2026-11-28T12:00:00+1:00 x; do
  run sign --secret-file secret.txt --alg HS256 --nbf "$bad"
  assert_rc 2
  assert_err_contains "bad --nbf"
done
run sign --secret-file secret.txt --alg HS256 --iss "$(printf 'a\xffb')"
assert_rc 2
assert_err_contains "UTF-8"

# --- I/O error: exit 3
assert_write_error sign --secret-file secret.txt --alg HS256

# --- test tokens from a keyring's active key: valid, expired, not yet
# valid, for another audience (verified against the keyring's own JWKS)
"$JWTKIT" keyring init ring --alg ES256 >/dev/null 2>&1
"$JWTKIT" keyring jwks ring >ring.jwks
run sign --keyring ring --alg ES256 --iss https://i --aud api --sub t
assert_rc 0
run verify --jwks ring.jwks --alg ES256 --iss https://i --aud api "$OUT"
assert_rc 0
run sign --keyring ring --alg ES256 --iss https://i --aud api --at 2020-01-01T00:00:00Z --ttl 5m
run verify --jwks ring.jwks --alg ES256 --iss https://i --aud api "$OUT"
assert_rc 1
assert_err_contains "token expired"
run sign --keyring ring --alg ES256 --iss https://i --aud api --nbf "$(($(date +%s) + 3600))"
run verify --jwks ring.jwks --alg ES256 --iss https://i --aud api "$OUT"
assert_rc 1
assert_err_contains "not yet valid"
run sign --keyring ring --alg ES256 --iss https://i --aud other
run verify --jwks ring.jwks --alg ES256 --iss https://i --aud api "$OUT"
assert_rc 1
assert_err_contains "audience not accepted"
run sign --keyring ring --alg RS256
assert_rc 2
assert_err_contains "the keyring has no active RS256 key now"
run sign --keyring ring --key ring.jwks --alg ES256
assert_rc 2
assert_err_contains "give exactly one of --key, --keyring, --secret-file, --secret-env"

finish
