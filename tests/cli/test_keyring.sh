#!/usr/bin/env bash
# jwtkit keyring: init, plan, rotate through a full cycle with --at, jwks,
# list, add, revoke, permissions, the git guard.
source "$(dirname "$0")/lib.sh" "$@"

T0=2026-11-28T12:00:00Z
run keyring init ring --alg ES256 --at "$T0" --rotate-every 1h --max-age 5m --token-ttl 10m --publish-ahead 15m
assert_rc 0
assert_out_contains "created active key"
[ "$(stat -c %a ring/keys/*.pem)" = 600 ] || { check; fail "private key file is not 0600"; }
run keyring init ring --alg ES256
assert_rc 2
assert_err_contains "already holds a keyring"
run keyring init other --alg HS256
assert_rc 2
assert_err_contains "RS*, PS*, ES* and EdDSA"

run keyring list ring
assert_rc 0
first=$(printf '%s\n' "$OUT" | awk '$3 == "active" {print $1}')
[ -n "$first" ] || { check; fail "no active key listed"; }

run keyring plan ring --at "$T0"
assert_rc 0
assert_out_contains "$first"
assert_out_contains "~2026-11-28T13:00:00Z"
assert_out_contains "next: a new ES256 key will be published at 2026-11-28T12:45:00Z"

# nothing is due yet
run keyring rotate ring --at 2026-11-28T12:30:00Z
assert_rc 0
assert_out_contains "nothing to do"
# 15 minutes ahead: the next key is published, not yet signing
run keyring rotate ring --at 2026-11-28T12:45:00Z
assert_rc 0
assert_out_contains "published pending key"
second=$(printf '%s\n' "$OUT" | sed -n 's/^published pending key \([^ ]*\) .*/\1/p')
run keyring jwks ring
assert_out_contains "\"kid\":\"$first\""
assert_out_contains "\"kid\":\"$second\""
assert_out_not_contains '"d":'
# at the rotation: the new key signs, the old one is retiring
run keyring rotate ring --at 2026-11-28T13:00:00Z
assert_out_contains "activated key $second"
assert_out_contains "key $first (ES256) stopped signing and is retiring; it stays published until 2026-11-28T13:16:00Z"
# the old key leaves the JWKS only after ttl + leeway + max-age
run keyring rotate ring --at 2026-11-28T13:15:59Z
assert_out_contains "nothing to do"
run keyring rotate ring --at 2026-11-28T13:16:00Z
assert_out_contains "retired key $first"
run keyring jwks ring
assert_out_not_contains "\"kid\":\"$first\""
[ ! -e "ring/keys/$first.pem" ] || { check; fail "the retired key's private file is still there"; }

# a token signed with the active key verifies with the published JWKS
"$JWTKIT" keyring jwks ring >jwks.json
run keyring list ring --json
assert_out_contains "\"state\":\"active\""

# import, then emergency revoke
"$JWTKIT" keygen --alg ES256 --kid imported --out imp.pem 2>/dev/null
run keyring add ring imp.pem --kid imported --at 2026-11-28T13:20:00Z
assert_rc 0
assert_out_contains "added pending key imported"
# "--": a thumbprint begins with '-' (1 in 64) or "--" (1 in 4096) by chance
run keyring revoke ring --at 2026-11-28T13:21:00Z -- "$second"
assert_rc 0
assert_out_contains "revoked key $second"
assert_out_contains "activated key imported"
run keyring jwks ring
assert_out_not_contains "\"kid\":\"$second\""
run keyring revoke ring nosuchkid
assert_rc 1

# kids that begin with '-', chosen on purpose: an argument in a slot the
# operation requires (revoke DIR KID), or after "--"; "--x" is always an
# option, so such a kid needs "--" and the message says so
"$JWTKIT" keygen --alg ES256 --out dash1.pem 2>/dev/null
"$JWTKIT" keygen --alg ES256 --out dash2.pem 2>/dev/null
"$JWTKIT" keygen --alg ES256 --out -dash3.pem 2>/dev/null
run keyring add ring dash1.pem --kid -Xk1 --at 2026-11-28T13:22:00Z
assert_rc 0
assert_out_contains "added pending key -Xk1"
run keyring revoke ring -Xk1 --at 2026-11-28T13:23:00Z
assert_rc 0
assert_out_contains "revoked key -Xk1"
assert_err_eq ""
mkdir doc # jwtkit(1) shows the revoke below
cd doc
"$JWTKIT" keyring init ring --alg ES256 >/dev/null
run keyring add ring ../dash2.pem --kid=--Xk1
assert_rc 0
assert_out_contains "added pending key --Xk1"
run keyring revoke ring --Xk1
assert_rc 2
assert_err_contains "unknown option --Xk1; if this is a kid or a file name, put -- before it"
run keyring revoke ring -- --Xk1
assert_rc 0
assert_out_contains "revoked key --Xk1"
cd ..
# a key file whose name begins with '-' fills the KEYFILE slot of add
run keyring add ring -dash3.pem --kid dash3 --at 2026-11-28T13:26:00Z
assert_rc 0
assert_out_contains "added pending key dash3"
run keyring revoke ring -- -nosuchkid
assert_rc 1
assert_err_contains "-nosuchkid"
# not in a required slot: an unknown option, with the way out
run keyring list ring -x
assert_rc 2
assert_err_contains "unknown option -x; if this is a kid or a file name, put -- before it"
run keyring -x ring
assert_rc 2
assert_err_contains "unknown option -x"
run keyring revoke ring dash3 -extra
assert_rc 2
assert_err_contains "unknown option -extra"

# a timing the rules cannot keep says which rule and the values
run keyring init badtiming --alg ES256 --max-age 10m --rotate-every 15m
assert_rc 2
assert_err_contains "rotate_every (900s) must be more than max(2 x max_age, rotate_every/30) (1200s)"
run keyring init badtiming --alg ES256 --max-age 10m --publish-ahead 5m
assert_rc 2
assert_err_contains "publish_ahead (300s) must be at least max_age (600s)"
assert_true "nothing written" test ! -e badtiming/keyring.json

# a private key readable by the group is refused
chmod 0640 ring/keys/*.pem
run keyring list ring
assert_rc 2
assert_err_contains "has mode 0640"
assert_err_contains "chmod 600 ring/keys/"
chmod 0600 ring/keys/*.pem
# so is a keyring directory, keys/ or keyring.json others can write to
for f in ring ring/keys ring/keyring.json; do
  mode=$(stat -c %a "$f")
  chmod go+w "$f"
  run keyring jwks ring
  assert_rc 2
  assert_err_contains "writable by group or others"
  chmod "$mode" "$f"
done
run keyring jwks ring
assert_rc 0
# a keyring without a passphrase has nothing to authenticate its document with
run keyring trust-document ring
assert_rc 2
assert_err_contains "file permissions protect it"

# with a passphrase, keyring.json carries a MAC keyed from it
printf 'correct horse\n' >pass
chmod 600 pass
run keyring init sealed --alg ES256 --passphrase-file pass --at "$T0"
assert_rc 0
sed -i 's/"token_ttl":900/"token_ttl":9000/' sealed/keyring.json
run keyring jwks sealed --passphrase-file pass
assert_rc 1
assert_err_contains "keyring.json does not match its MAC: changed by someone without the passphrase"
sed -i 's/"token_ttl":9000/"token_ttl":900/' sealed/keyring.json
run keyring jwks sealed --passphrase-file pass
assert_rc 0
# one written before documents were authenticated: reviewed, then trusted
sed -i 's/,"auth":{[^}]*}}$/}/; s/"version":2/"version":1/' sealed/keyring.json
run keyring list sealed --passphrase-file pass
assert_rc 1
assert_err_contains "keyring.json is not authenticated"
run keyring trust-document sealed --passphrase-file pass
assert_rc 1
assert_out_contains "NOT AUTHENTIC"
assert_out_contains "active"
assert_out_contains "run again with --force"
run keyring trust-document sealed --passphrase-file pass --force
assert_rc 0
assert_out_contains "authenticated keyring.json as generation 2 with the passphrase"
run keyring list sealed --passphrase-file pass
assert_rc 0
run keyring trust-document sealed --passphrase-file pass
assert_rc 0
assert_out_contains "already authenticated; nothing to do"

# usage
run keyring frob ring
assert_rc 2
run keyring plan
assert_rc 2
run keyring plan nowhere
assert_rc 2

# the git guard: no keyring inside a work tree unless ignored
if command -v git >/dev/null; then
  mkdir repo && git -C repo init -q
  run keyring init repo/ring --alg ES256
  assert_rc 2
  assert_err_contains "inside a git work tree"
  [ ! -e repo/ring ] || { check; fail "the refused keyring directory was left behind"; }
  printf 'ring/\n' >repo/.gitignore
  run keyring init repo/ring --alg ES256
  assert_rc 0
fi

finish
