#!/usr/bin/env bash
# jwtkit pem check: good keys pass, every kind of problem is reported with its
# name and exit 1, --pair, --json, unreadable files exit 2.
source "$(dirname "$0")/lib.sh" "$@"

"$JWTKIT" keygen --alg ES256 --out es.pem --pub es.pub.pem 2>/dev/null
"$JWTKIT" keygen --alg RS256 --out rs.pem --pub rs.pub.pem 2>/dev/null
"$JWTKIT" keygen --alg EdDSA --out ed.pem --pub ed.pub.pem 2>/dev/null

run pem check es.pem es.pub.pem rs.pub.pem ed.pem
assert_rc 0
assert_out_contains "es.pem: block at line 1: private, EC P-256 (PRIVATE KEY)"
assert_out_contains "rs.pub.pem: block at line 1: public, RSA 2048 bits (PUBLIC KEY)"
assert_out_contains "ed.pem: ok"
assert_err_eq ""

# problems: trailing text, a private key readable by others, two keys, bad base64
cp es.pem trailing.pem && echo "leftover" >>trailing.pem
run pem check trailing.pem
assert_rc 1
assert_out_contains "problem: trailing-text"
cp es.pem loose.pem && chmod 0644 loose.pem
run pem check loose.pem
assert_rc 1
assert_out_contains "problem: file-mode"
cat es.pub.pem rs.pub.pem >two.pem
run pem check two.pem
assert_rc 1
assert_out_contains "problem: multiple-keys"
sed '2s/^./*/' es.pub.pem >badb64.pem
run pem check badb64.pem
assert_rc 1
assert_out_contains "problem: base64-char"
sed 's/END PUBLIC KEY/END PRIVATE KEY/' es.pub.pem >labels.pem
run pem check labels.pem
assert_rc 1
assert_out_contains "problem: label-mismatch"
# a weak RSA key made outside jwtkit
if command -v openssl >/dev/null; then
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out small.pem 2>/dev/null
  chmod 0600 small.pem
  run pem check small.pem
  assert_rc 1
  assert_out_contains "problem: rsa-too-small"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out k1.pem 2>/dev/null
  chmod 0600 k1.pem
  run pem check k1.pem
  assert_rc 1
  assert_out_contains "problem: unapproved-curve"
fi
# clean files beside bad ones: exit 1, every file reported
run pem check es.pem trailing.pem
assert_rc 1
assert_out_contains "es.pem: ok"

# --pair
run pem check --pair es.pem es.pub.pem
assert_rc 0
assert_out_contains "the keys match"
run pem check --pair es.pem rs.pub.pem
assert_rc 1
assert_out_contains "problem: pair-mismatch"
run pem check --pair es.pem
assert_rc 2

# --json
run pem check --json es.pem trailing.pem
assert_rc 1
assert_out_contains '"ok":true'
assert_out_contains '"code":"trailing-text"'
printf '%s' "$OUT" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d)==2' || { check; fail "--json is not a JSON array of two reports"; }

# encrypted keys: checked in full with the passphrase
printf 'pw\n' >pass.txt
chmod 600 pass.txt
"$JWTKIT" keygen --alg ES384 --out enc.pem --passphrase-file pass.txt 2>/dev/null
run pem check enc.pem
assert_rc 0
assert_out_contains "encrypted-private"
run pem check --passphrase-file pass.txt enc.pem
assert_rc 0
assert_out_contains "P-384"
printf 'wrong\n' >wrong.txt
chmod 600 wrong.txt
run pem check --passphrase-file wrong.txt enc.pem
assert_rc 1
assert_out_contains "problem: wrong-passphrase"

# usage and I/O
run pem check missing.pem
assert_rc 2
assert_err_eq "jwtkit: pem: cannot read missing.pem: No such file or directory"
run pem check .
assert_rc 2
assert_err_contains "cannot read .: Is a directory"
run pem frobnicate es.pem
assert_rc 2
run pem check
assert_rc 2

finish
