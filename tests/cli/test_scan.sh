#!/usr/bin/env bash
# jwtkit scan: private key material in files tracked by git.
source "$(dirname "$0")/lib.sh" "$@"

mkdir repo
git -C repo init -q
cd repo
"$JWTKIT" keygen --alg ES256 --out k.pem --pub k.pub.pem --force 2>/dev/null
"$JWTKIT" jwk --private k.pem >k.jwk
"$JWTKIT" jwk k.pem >k.pub.jwk
"$JWTKIT" keygen --alg HS256 --out hs.jwk --force 2>/dev/null
mkdir -p config docs
# a JWK with "d" inside a larger JSON document, pretty-printed
{
  echo '{'
  echo '  "service": "api",'
  echo '  "signing": {'
  echo '    "kty": "EC",'
  echo '    "crv": "P-256",'
  sed 's/.*"x":"\([^"]*\)".*/    "x": "\1",/' k.jwk
  sed 's/.*"y":"\([^"]*\)".*/    "y": "\1",/' k.jwk
  sed 's/.*"d":"\([^"]*\)".*/    "d": "\1"/' k.jwk
  echo '  }'
  echo '}'
} >config/app.json
# PEM blocks of other kinds, embedded in text
{
  echo 'Some notes.'
  echo ''
  echo '-----BEGIN RSA PRIVATE KEY-----'
  echo 'MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu'
  echo '-----END RSA PRIVATE KEY-----'
  echo 'and'
  echo '    -----BEGIN OPENSSH PRIVATE KEY-----'
  echo '-----BEGIN ENCRYPTED PRIVATE KEY-----'
  echo '-----BEGIN EC PRIVATE KEY-----'
} >docs/notes.md
# not findings: public keys, a "d" without "kty", a kty without "d"
printf '{"d":"secret-looking","x":1}\n{"kty":"EC","x":"a","d":1}\n' >docs/other.json
printf 'int main(void) { return 0; } /* "d": { "kty" */\n' >docs/code.c
cp k.pem untracked.pem
git add k.pem k.pub.pem k.jwk k.pub.jwk hs.jwk config docs
git commit -qm keys

run scan
assert_rc 1
assert_golden scan_repo.txt
assert_err_contains "8 findings: private key material is tracked by git"
assert_out_not_contains "untracked.pem"
assert_out_not_contains "k.pub"
assert_out_not_contains "other.json"
assert_out_not_contains "code.c"
run scan .
assert_rc 1
assert_golden scan_repo.txt
# a subdirectory, a file, and from outside: paths are shown as given
run scan docs
assert_rc 1
assert_out_contains "docs/notes.md:3: PEM RSA PRIVATE KEY"
assert_out_not_contains "k.pem"
cd ..
run scan repo
assert_rc 1
assert_out_contains "repo/config/app.json:8: JWK private key (kty EC)"
assert_out_contains "repo/k.pem:1: PEM PRIVATE KEY"
run scan repo/docs/notes.md
assert_rc 1
assert_out_contains "repo/docs/notes.md:8: PEM ENCRYPTED PRIVATE KEY"
run scan repo/k.pub.pem
assert_rc 0
assert_out_empty
run scan repo/untracked.pem
assert_rc 0

# symbolic links are not followed
ln -s "$TMP/repo/k.pem" repo/link.pem
git -C repo add link.pem
git -C repo commit -qm link
run scan --verbose repo
assert_rc 1
assert_out_not_contains "link.pem"
assert_err_contains "link.pem: symbolic link not followed"

# a clean repository
mkdir clean
git -C clean init -q
printf 'hello\n' >clean/readme.txt
"$JWTKIT" keygen --alg ES256 --out clean/key.pub.pem.priv --pub clean/pub.pem --force 2>/dev/null
git -C clean add readme.txt pub.pem
git -C clean commit -qm clean
run scan clean
assert_rc 0
assert_out_empty
assert_err_eq ""
mkdir empty
git -C empty init -q
run scan empty
assert_rc 0

assert_write_error scan repo

# not a work tree: exit 2
mkdir plain
run scan plain
assert_rc 2
assert_err_contains "plain is not inside a git work tree"
run scan no-such-dir
assert_rc 2
assert_err_contains "cannot access no-such-dir"
run scan repo/.git
assert_rc 2
# git missing: exit 3
PATH=/nonexistent run scan repo
assert_rc 3
assert_err_contains "git is not installed"

finish
