#!/usr/bin/env bash
# jwtkit keygen: formats, modes, atomic no-overwrite, the git guard.
source "$(dirname "$0")/lib.sh" "$@"
umask 022
mode() { stat -c %a "$1"; }

# --- PEM pair, kid = thumbprint, modes
run keygen --alg ES256 --out k.pem --pub k.pub.pem
assert_rc 0
assert_out_empty
assert_err_contains "private key: k.pem (ES256 PEM PKCS#8)"
assert_err_contains "public key: k.pub.pem"
kid=$(printf '%s\n' "$ERR" | sed -n 's/^kid: //p')
assert_true "private key is 0600" test "$(mode k.pem)" = 600
assert_true "public key is 0644" test "$(mode k.pub.pem)" = 644
assert_true "PKCS#8 PEM" grep -q "BEGIN PRIVATE KEY" k.pem
assert_true "SPKI PEM" grep -q "BEGIN PUBLIC KEY" k.pub.pem
run thumbprint k.pub.pem
assert_out_eq "$kid"
assert_true "no temporary files left" test -z "$(ls -A | grep tmp || true)"

# --- never overwrite without --force (exit 2), file untouched
sum=$(sha256sum k.pem)
run keygen --alg ES256 --out k.pem
assert_rc 2
assert_err_contains "k.pem exists (use --force to replace it)"
assert_true "k.pem unchanged" test "$(sha256sum k.pem)" = "$sum"
run keygen --alg ES256 --out new.pem --pub k.pub.pem
assert_rc 2
assert_err_contains "k.pub.pem exists"
assert_true "nothing written when --pub exists" test ! -e new.pem
run keygen --alg ES256 --out k.pem --force
assert_rc 0
assert_true "k.pem replaced" test "$(sha256sum k.pem)" != "$sum"
assert_true "replaced key still 0600" test "$(mode k.pem)" = 600

# --- JWK format, explicit kid
run keygen --alg EdDSA --bits 448 --format jwk --kid my-key --out ed448.jwk --pub ed448.pub.jwk
assert_rc 0
assert_err_contains "kid: my-key"
assert_true "private JWK has d" grep -q '"d":' ed448.jwk
assert_true "Ed448" grep -q '"crv":"Ed448"' ed448.jwk
assert_true "kid kept" grep -q '"kid":"my-key"' ed448.jwk
assert_true "public JWK has no d" sh -c '! grep -q "\"d\":" ed448.pub.jwk'
assert_true "JWK 0600" test "$(mode ed448.jwk)" = 600

# --- HMAC: oct JWK by default, raw on request, never a public part
run keygen --alg HS256 --out hs.jwk
assert_rc 0
assert_err_contains "kid: hs-"
assert_true "oct JWK" grep -q '"kty":"oct"' hs.jwk
assert_true "HS256" grep -q '"alg":"HS256"' hs.jwk
# --format raw: a secret file as sign --secret-file, serve and gate read it:
# one line of base64url text for 32/48/64 random bytes (the newline is not
# part of the secret)
for spec in HS256:43 HS384:64 HS512:86; do
  alg=${spec%:*} chars=${spec#*:}
  run keygen --alg "$alg" --format raw --out "$alg.secret"
  assert_rc 0
  assert_true "$alg: $chars base64url characters and a newline" \
    test "$(wc -c <"$alg.secret")" = $((chars + 1)) -a "$(tr -d 'A-Za-z0-9_\n-' <"$alg.secret" | wc -c)" = 0
  assert_true "$alg: owner only" test "$(stat -c %a "$alg.secret")" = 600
  tok=$("$JWTKIT" sign --secret-file "$alg.secret" --alg "$alg" --sub raw)
  run verify --secret-file "$alg.secret" --alg "$alg" "$tok"
  assert_rc 0
  run verify --secret-env HOME --alg "$alg" "$tok"
  assert_rc 2
done
JWTKIT_RAW=$(<HS256.secret) run verify --secret-env JWTKIT_RAW --alg HS256 "$("$JWTKIT" sign --secret-file HS256.secret --alg HS256)"
assert_rc 0
run keygen --alg HS256 --out x.jwk --pub x.pub
assert_rc 2
assert_err_contains "--pub is invalid for HS256"
run keygen --alg HS256 --format pem --out x.pem
assert_rc 2
assert_err_contains "HS* keys have no PEM form"
run keygen --alg ES256 --format raw --out x.bin
assert_rc 2
assert_true "nothing written on usage errors" test ! -e x.jwk -a ! -e x.pem -a ! -e x.bin -a ! -e x.pub

# --- argument checks
run keygen --out y.pem
assert_rc 2
assert_err_contains "--alg is required"
run keygen --alg ES256
assert_rc 2
assert_err_contains "--out is required"
run keygen --alg none --out y.pem
assert_rc 2
assert_err_contains 'algorithm "none" is never accepted'
run keygen --alg hs256 --out y.pem
assert_rc 2
assert_err_contains 'unknown algorithm "hs256"'
run keygen --alg RS256 --bits 1024 --out y.pem
assert_rc 2
assert_err_contains "RSA size must be"
run keygen --alg ES256 --bits 384 --out y.pem
assert_rc 2
assert_err_contains "--bits applies to"
run keygen --alg EdDSA --bits 300 --out y.pem
assert_rc 2
run keygen --alg ES256 --format xml --out y.pem
assert_rc 2
run keygen --alg ES256 --out y.pem --pub y.pem
assert_rc 2
assert_err_contains "same file"
assert_true "no y.pem" test ! -e y.pem

# --- RSA sizes
run keygen --alg PS256 --bits 3072 --out rsa3072.pem
assert_rc 0
run jwk --alg PS256 rsa3072.pem
assert_rc 0
check
n=$(printf '%s' "$OUT" | sed 's/.*"n":"\([^"]*\)".*/\1/')
[ "${#n}" -eq 512 ] || fail "3072-bit modulus expected, n has ${#n} base64url chars"

# --- encrypted PEM
printf 'correct horse\n' >pass.txt
chmod 600 pass.txt
run keygen --alg ES384 --out enc.pem --pub enc.pub.pem --passphrase-file pass.txt
assert_rc 0
assert_err_contains "encrypted"
assert_true "encrypted PKCS#8" grep -q "BEGIN ENCRYPTED PRIVATE KEY" enc.pem
run sign --key enc.pem --alg ES384
assert_rc 2
assert_err_contains "passphrase"
run sign --key enc.pem --alg ES384 --passphrase-file pass.txt
assert_rc 0
run sign --key enc.pem --alg ES384 --passphrase-file - <<<"correct horse"
assert_rc 0
run keygen --alg ES256 --format jwk --out e.jwk --passphrase-file pass.txt
assert_rc 2
assert_err_contains "only encrypts PEM"

# --- stdout
run keygen --alg EdDSA --out -
assert_rc 0
assert_out_contains "-----BEGIN PRIVATE KEY-----"
assert_err_contains "private key: stdout"

# --- I/O error: exit 3
run keygen --alg ES256 --out "$TMP/no/such/dir/k.pem"
assert_rc 3
assert_err_contains "cannot create a file in"

# --- the git guard
mkdir repo
git -C repo init -q
run keygen --alg ES256 --out repo/k.pem --pub repo/k.pub.pem
assert_rc 2
assert_err_contains "refusing to write a private key to repo/k.pem"
assert_err_contains "git work tree"
assert_true "nothing written in the work tree" test ! -e repo/k.pem -a ! -e repo/k.pub.pem
mkdir -p repo/deep/er
run keygen --alg HS256 --out repo/deep/er/s.jwk
assert_rc 2
printf '*.pem\nsecrets/\n' >repo/.gitignore
run keygen --alg ES256 --out repo/k.pem --pub repo/k.pub.pem
assert_rc 0
assert_true "ignored path written" test -f repo/k.pem
mkdir repo/secrets
run keygen --alg HS256 --out repo/secrets/s.jwk
assert_rc 0
run keygen --alg HS256 --out repo/deep/er/s.jwk --force
assert_rc 0
assert_err_contains "warning: repo/deep/er/s.jwk is inside a git work tree and not ignored by git"
cd repo
run keygen --alg ES256 --out here.jwk --format jwk
cd ..
assert_rc 2
assert_true "relative path in the work tree refused" test ! -e repo/here.jwk
# without git there is no guard
mkdir nogit
cp -r repo/.git nogit/.git
PATH=/nonexistent run keygen --alg ES256 --out nogit/k.jwk --format jwk
assert_rc 0
assert_true "written when git is not installed" test -f nogit/k.jwk

finish
