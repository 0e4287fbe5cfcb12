#!/usr/bin/env bash
# The jwtkit command with keys in a PKCS#11 token (SoftHSM2), ctest
# cli_pkcs11, label pkcs11:
#   - every `sh` block of docs/pkcs11.md, in order, in a fresh directory;
#   - keygen --pkcs11 / sign --key URI for every algorithm SoftHSM offers,
#     the tokens verified by PyJWT and jwcrypto (tests/interop/peers.py),
#     and by node jose when tests/interop has it installed;
#   - the private key cannot be read out (pkcs11-tool);
#   - faults: wrong PIN (exactly one C_Login, counted by OpenSC's
#     pkcs11-spy), PIN file with mode 0644, pin-value=, a missing module, a
#     token or object that is not there, a mechanism the token does not
#     offer, an existing label, options that do not go together;
#   - keyrings whose keys live in the token (keyring init --pkcs11): the
#     objects pkcs11-tool lists are the keyring's kids, retired keys leave
#     the token at rotation (--at), no key file exists; with the token away
#     list and jwks still work and rotate, sign and open fail naming it;
#     a wrong PIN is one C_Login; URIs naming a key are refused.
# Skipped (exit 77) without SoftHSM2 or OpenSC's tools; a failure under CI=true.
#
#   tests/pkcs11/cli_pkcs11.sh /path/to/jwtkit
source "$(dirname "$0")/../cli/lib.sh" "$@"
SRC=$(cd "$TESTS_DIR/../.." && pwd)
MODULE=${JWTKIT_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

skip() {
  case ${CI:-} in
    true | TRUE | 1 | yes)
      echo "FAIL: $1; CI=true requires it (apt-get install softhsm2 opensc)" >&2
      exit 1
      ;;
  esac
  echo "SKIP: $1"
  exit 77
}
[ -r "$MODULE" ] || skip "SoftHSM2 module $MODULE not installed"
command -v softhsm2-util >/dev/null || skip "softhsm2-util not installed"
command -v pkcs11-tool >/dev/null || skip "pkcs11-tool (OpenSC) not installed"
SPY=
for d in /usr/lib/x86_64-linux-gnu/pkcs11 /usr/lib/*/pkcs11 /usr/lib/pkcs11 /usr/lib64/pkcs11; do
  [ -r "$d/pkcs11-spy.so" ] && SPY=$d/pkcs11-spy.so && break
done
[ -n "$SPY" ] || skip "pkcs11-spy.so (OpenSC) not installed"
probe=$("$JWTKIT" keygen --alg ES256 --pkcs11 'pkcs11:object=probe?module-path=/nonexistent.so' 2>&1 || true)
[[ "$probe" == *"No such file"* ]] || skip "this jwtkit is built without PKCS#11 support"
export PATH="$(dirname "$JWTKIT"):$PATH"
unset JWTKIT_PKCS11_PIN

# ------------------------------------------------- docs/pkcs11.md, verbatim
mkdir "$TMP/docs"
awk '/^```sh$/ {on=1; n++; print "# block " n; next} /^```$/ {on=0; next} on {print}' \
  "$SRC/docs/pkcs11.md" >"$TMP/docs.sh"
blocks=$(grep -c '^# block ' "$TMP/docs.sh")
check
[ "$blocks" -ge 6 ] || fail "docs/pkcs11.md: only $blocks sh blocks found"
LAST="the sh blocks of docs/pkcs11.md"
set +e
(cd "$TMP/docs" && bash -euo pipefail "$TMP/docs.sh") >"$TMP/.out" 2>"$TMP/.err"
RC=$?
set -e
OUT=$(<"$TMP/.out")
ERR=$(<"$TMP/.err")
assert_rc 0
assert_err_contains "private key: pkcs11:token=jwtkit;serial="
assert_err_contains "(ES256, in the token: sensitive, not extractable)"
assert_out_contains '"sub":"alice"'
assert_out_contains "sensitive, always sensitive, never extractable"
assert_out_contains "label:      issuer-2026-12"
assert_true "the docs' token, jwks.json and token2 exist" test -s "$TMP/docs/token" -a -s "$TMP/docs/jwks.json" \
  -a -s "$TMP/docs/token2"
# the keyring blocks: the private keys are in the token, none in ring/keys
assert_out_contains "private keys: in the PKCS#11 token pkcs11:token=jwtkit?pin-source=$TMP/docs/jwtkit.pin&module-path="
assert_out_contains '"sub":"carol"'
assert_true "ring/keys holds no file" test -z "$(ls -A "$TMP/docs/ring/keys")"
# what the blocks made is right: the kid printed is the thumbprint and the JWKS's kid
kid=$(sed -n 's/^kid: //p' "$TMP/.err")
check
grep -q "\"kid\":\"$kid\"" "$TMP/docs/jwks.json" || fail "jwks.json does not carry kid $kid"
assert_out_contains "$kid"
export SOFTHSM2_CONF=$TMP/docs/softhsm/softhsm2.conf
PIN=$TMP/docs/jwtkit.pin
uri() { echo "pkcs11:token=jwtkit;object=$1?pin-source=$PIN&module-path=$MODULE"; }
for t in token token2; do
  run verify --key "$TMP/docs/issuer.pub.pem" --alg ES256 --insecure-no-aud @"$TMP/docs/$t"
  assert_rc 0
done
# jwk of the URI and of the public file: the same JWK
run jwk "pkcs11:token=jwtkit;object=issuer-2026-12?module-path=$MODULE"
assert_rc 0
from_token=$OUT
run jwk "$TMP/docs/issuer.pub.pem"
assert_out_eq "$from_token"

# ---------------------------------------------- every algorithm, interop
py=/usr/bin/python3
NODE_DIR=$SRC/tests/interop/node
have_node=0
if command -v node >/dev/null && [ -f "$NODE_DIR/node_modules/jose/package.json" ]; then
  have_node=1
else
  echo "note: node jose is not installed in tests/interop/node (tests/interop/run.sh does it): node skipped"
fi
requests=$TMP/requests.json
echo '[' >"$requests"
sep=
for spec in ES256 ES384 ES512 RS256 RS384:3072 RS512 PS256 PS384 PS512 EdDSA EdDSA:448; do
  alg=${spec%%:*}
  bits=
  [ "$spec" != "$alg" ] && bits=${spec#*:}
  name=io-${spec/:/-}
  dir=$TMP/io/$name
  mkdir -p "$dir"
  run keygen --alg "$alg" ${bits:+--bits $bits} --pkcs11 "$(uri "$name")" --pub "$dir/pub.pem"
  assert_rc 0
  run jwks --alg "$alg" "pkcs11:token=jwtkit;object=$name?module-path=$MODULE"
  assert_rc 0
  printf '%s\n' "$OUT" >"$dir/jwks.json"
  run sign --key "$(uri "$name")" --alg "$alg" --iss https://issuer.example --sub "$name" --ttl 1h
  assert_rc 0
  tok=$OUT
  run verify --key "$dir/pub.pem" --alg "$alg" --iss https://issuer.example --insecure-no-aud "$tok"
  assert_rc 0
  peer_alg=$alg
  [ "$bits" = 448 ] && peer_alg=Ed448
  for op in verify verify_jwks; do
    printf '%s{"op":"%s","alg":"%s","dir":"%s","token":"%s","name":"%s"}\n' "$sep" "$op" "$peer_alg" "$dir" "$tok" \
      "$name" >>"$requests"
    sep=,
  done
done
echo ']' >>"$requests"
LAST="PyJWT and jwcrypto verify the token-signed tokens"
set +e
"$py" - "$SRC/tests/interop" "$requests" >"$TMP/.out" 2>"$TMP/.err" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import peers
reqs = json.load(open(sys.argv[2]))
bad = 0
for peer in (peers.PyJWT(), peers.Jwcrypto()):
    for r in reqs:
        res = peer.handle(r)
        ok = res.get("ok") and res["claims"].get("sub") == r["name"]
        if not ok:
            bad += 1
            print("FAIL %s %s %s: %s" % (peer.name, r["op"], r["name"], res.get("error")))
    print("%s %s: %d tokens checked" % (peer.name, peer.version, len(reqs)))
sys.exit(1 if bad else 0)
PY
RC=$?
set -e
OUT=$(<"$TMP/.out")
ERR=$(<"$TMP/.err")
assert_rc 0
assert_out_contains "PyJWT"
assert_out_contains "jwcrypto"
assert_out_contains ": 22 tokens checked"
echo "$OUT"
if [ "$have_node" = 1 ]; then
  LAST="node jose verifies the token-signed tokens"
  set +e
  (cd "$NODE_DIR" && node peer.mjs "$requests") >"$TMP/.out" 2>"$TMP/.err"
  RC=$?
  set -e
  OUT=$(<"$TMP/.out")
  ERR=$(<"$TMP/.err")
  assert_rc 0
  check
  "$py" -c 'import json,sys; r=json.load(open(sys.argv[1])); q=json.load(open(sys.argv[2]));
sys.exit(0 if len(r)==len(q) and all(x.get("ok") and x["claims"]["sub"]==y["name"] for x,y in zip(r,q)) else 1)' \
    "$TMP/.out" "$requests" || fail "node jose refused a token: $(head -c 600 "$TMP/.out")"
  echo "node jose: $(grep -o '"ok":true' "$TMP/.out" | wc -l) tokens checked"
fi

# ------------------------------------------- the private key stays inside
for name in issuer-2026-12 io-RS256 io-EdDSA; do
  LAST="pkcs11-tool --read-object --type privkey --label $name"
  set +e
  pkcs11-tool --module "$MODULE" --login --pin 1234 --read-object --type privkey --label "$name" \
    -o "$TMP/priv-$name.der" >"$TMP/.out" 2>"$TMP/.err"
  RC=$?
  set -e
  OUT=$(<"$TMP/.out")
  ERR=$(<"$TMP/.err")
  assert_true "pkcs11-tool wrote the private key $name" test ! -s "$TMP/priv-$name.der"
  # the same command reads the public key (so the refusal is about the private key)
  pkcs11-tool --module "$MODULE" --login --pin 1234 --read-object --type pubkey --label "$name" \
    -o "$TMP/pub-$name.der" >/dev/null 2>&1 || true
  assert_true "pkcs11-tool could not read the public key $name" test -s "$TMP/pub-$name.der"
done
run jwk --private "$(uri io-ES256)"
assert_rc 2
assert_err_contains "the private key stays in the token"

# ------------------------------------------------------------------ faults
spy() { # spy LOG ARGS...: jwtkit through pkcs11-spy, which logs every call to the module
  local log=$1
  shift
  rm -f "$log"
  PKCS11SPY=$MODULE PKCS11SPY_OUTPUT=$log run "$@"
}
spied() { echo "pkcs11:token=jwtkit;object=$1?${2:+$2&}module-path=$SPY"; }
(umask 077 && echo 9999 >"$TMP/wrong.pin")
# wrong PIN: refused, said so, exactly one login attempt
spy "$TMP/spy1.log" sign --key "$(spied io-ES256 "pin-source=$TMP/wrong.pin")" --alg ES256 --sub x
assert_rc 2
assert_err_contains "refused the PIN (CKR_PIN_INCORRECT); not retried"
assert_out_empty
check
n=$(grep -c ' C_Login$' "$TMP/spy1.log" || true)
[ "$n" = 1 ] || fail "wrong PIN: $n C_Login calls (one expected)"
# the same through the environment
JWTKIT_PKCS11_PIN=0000 spy "$TMP/spy2.log" sign --key "$(spied io-ES256)" --alg ES256 --sub x
assert_rc 2
assert_err_contains "CKR_PIN_INCORRECT"
check
n=$(grep -c ' C_Login$' "$TMP/spy2.log" || true)
[ "$n" = 1 ] || fail "wrong PIN from the environment: $n C_Login calls (one expected)"
# the right PIN: one login, one token
spy "$TMP/spy3.log" sign --key "$(spied io-ES256 "pin-source=$PIN")" --alg ES256 --sub x
assert_rc 0
check
n=$(grep -c ' C_Login$' "$TMP/spy3.log" || true)
[ "$n" = 1 ] || fail "right PIN: $n C_Login calls (one expected)"
# no PIN: what to do, and no login
spy "$TMP/spy4.log" sign --key "$(spied io-ES256)" --alg ES256
assert_rc 2
assert_err_contains "needs the user PIN: add pin-source=FILE"
assert_err_contains "JWTKIT_PKCS11_PIN"
check
! grep -q ' C_Login$' "$TMP/spy4.log" || fail "a login without a PIN"
# a PIN file others can read
cp "$PIN" "$TMP/wide.pin"
chmod 0644 "$TMP/wide.pin"
run sign --key "pkcs11:token=jwtkit;object=io-ES256?pin-source=$TMP/wide.pin&module-path=$MODULE" --alg ES256
assert_rc 2
assert_err_contains "mode 0644"
assert_err_contains "chmod 600 $TMP/wide.pin"
# pin-value=: refused, why, what instead; the PIN is not echoed
run sign --key "pkcs11:token=jwtkit;object=io-ES256?pin-value=97531&module-path=$MODULE" --alg ES256
assert_rc 2
assert_err_contains "pin-value= puts the PIN where process lists, shell history and logs keep it"
assert_err_contains "pin-source=FILE"
assert_err_not_contains "97531"
# a missing module
run sign --key "pkcs11:token=jwtkit;object=io-ES256?pin-source=$PIN&module-path=$TMP/none/libp11.so" --alg ES256
assert_rc 2
assert_err_contains "PKCS#11 module $TMP/none/libp11.so: No such file or directory"
assert_err_contains "module-path="
# a token that is not there
run sign --key "pkcs11:token=absent;object=io-ES256?pin-source=$PIN&module-path=$MODULE" --alg ES256
assert_rc 2
assert_err_contains 'no token matches token=absent; tokens seen: "jwtkit"'
# an object that is not there
run sign --key "$(uri no-such-key)" --alg ES256
assert_rc 2
assert_err_contains "has no private key object=no-such-key"
run jwk "pkcs11:token=jwtkit;object=no-such-key?module-path=$MODULE"
assert_rc 2
assert_err_contains "no-such-key"
# the key's algorithm, not another
run sign --key "$(uri io-ES256)" --alg ES384
assert_rc 2
assert_err_contains "does not match ES384"
run sign --key "$(uri io-ES256)" --alg HS256
assert_rc 2
assert_err_contains "a token key signs RS*, PS*, ES* or EdDSA"
# a mechanism the token does not offer: SoftHSM told to offer only these
# (its "-CKM_..." form has no effect in SoftHSM 2.6.1)
{ cat "$SOFTHSM2_CONF"; echo "slots.mechanisms = CKM_EC_KEY_PAIR_GEN,CKM_RSA_PKCS_KEY_PAIR_GEN,CKM_SHA256_RSA_PKCS"; } \
  >"$TMP/noecdsa.conf"
SOFTHSM2_CONF=$TMP/noecdsa.conf run sign --key "$(uri io-ES256)" --alg ES256
assert_rc 2
assert_err_contains 'token "jwtkit" does not offer CKM_ECDSA (needed for ES256)'
SOFTHSM2_CONF=$TMP/noecdsa.conf run sign --key "$(uri io-RS256)" --alg RS256
assert_rc 0
# keygen: an existing label, options that do not go together
run keygen --alg ES256 --pkcs11 "$(uri io-ES256)"
assert_rc 2
assert_err_contains 'already holds an object labelled "io-ES256"'
run keygen --alg ES256 --pkcs11 "$(uri new)" --out new.pem
assert_rc 2
assert_err_contains "--out and --pkcs11 exclude each other"
run keygen --alg HS256 --pkcs11 "$(uri new)"
assert_rc 2
run keygen --alg ES256 --pkcs11 /tmp/key.pem
assert_rc 2
assert_err_contains "wants a pkcs11: URI"
echo pass >"$TMP/pass"
run keygen --alg ES256 --pkcs11 "$(uri new)" --passphrase-file "$TMP/pass"
assert_rc 2
run sign --key "$(uri io-ES256)" --alg ES256 --passphrase-file "$TMP/pass"
assert_rc 2
assert_err_contains "a token key needs its PIN"
run keygen --alg ES256 --pkcs11 "pkcs11:token=jwtkit;object=new?pin-value=1234&module-path=$MODULE"
assert_rc 2
assert_err_not_contains "new?pin-value=1234"
# nothing was made by the refused commands
run jwk "pkcs11:token=jwtkit;object=new?module-path=$MODULE"
assert_rc 2
# --pub: JWK form, an existing file is kept
run keygen --alg EdDSA --pkcs11 "$(uri with-jwk)" --pub "$TMP/with.jwk" --format jwk --kid my-kid
assert_rc 0
assert_err_contains "kid: my-kid"
assert_true "public JWK written with the kid" grep -q '"kid":"my-kid"' "$TMP/with.jwk"
run keygen --alg EdDSA --pkcs11 "$(uri with-jwk2)" --pub "$TMP/with.jwk"
assert_rc 2
assert_err_contains "exists (use --force"
run jwk "pkcs11:token=jwtkit;object=with-jwk2?module-path=$MODULE"
assert_rc 2 # checked before anything was generated

# ----------------------------------------------- keyrings in the token
cd "$TMP/docs"
listed_kid() { "$JWTKIT" keyring list "$1" --json | sed -n 's/.*"kid":"\([^"]*\)","alg":"ES256","state":"'"$2"'".*/\1/p'; }
token_labels() { pkcs11-tool --module "$MODULE" --login --pin 1234 --list-objects --type privkey 2>/dev/null | sed -n 's/^ *label: *//p'; }
# the docs' keyring: its active key is an object of the token named by its kid
kid=$(listed_kid ring active)
check
[ -n "$kid" ] || fail "no active key in the docs' keyring"
token_labels | grep -qx -- "$kid" || fail "the token has no object labelled $kid"
grep -q '"token":true' ring/keyring.json || fail "keyring.json does not say the key is in the token"
! grep -q 'pin-value\|"d":' ring/keyring.json || fail "keyring.json holds a PIN or private key member"
# rotation with a clock: a new key made in the token, the old one gone from it
T0=2026-11-28T12:00:00Z
RURI="pkcs11:token=jwtkit?module-path=$MODULE&pin-source=$PIN"
run keyring init rot --alg ES256 --pkcs11 "$RURI" --at $T0 --rotate-every 1h --max-age 5m --token-ttl 10m --publish-ahead 15m
assert_rc 0
first=$(listed_kid rot active)
run keyring rotate rot --at 2026-11-28T12:45:00Z
assert_out_contains "published pending key"
second=$(listed_kid rot pending)
check
token_labels | grep -qx -- "$second" || fail "the pending key $second is not in the token"
run keyring rotate rot --at 2026-11-28T13:00:00Z
assert_out_contains "activated key $second"
check
token_labels | grep -qx -- "$first" || fail "the retiring key $first left the token before its retirement"
run keyring rotate rot --at 2026-11-28T13:16:00Z
assert_out_contains "retired key $first"
check
! token_labels | grep -qx -- "$first" || fail "the retired key $first is still in the token"
run keyring list rot
assert_out_contains "$first  ES256  retired"
assert_out_contains "none"
assert_true "rot/keys holds no file" test -z "$(ls -A rot/keys)"
# the token away: the document alone lists and publishes; what needs the key says which token
mv softhsm/tokens softhsm/tokens.away
run keyring list ring
assert_rc 0
assert_out_contains "$kid"
run keyring jwks ring
assert_rc 0
assert_out_contains "\"kid\":\"$kid\""
run keyring rotate ring --force
check
[ "$RC" -ne 0 ] || fail "rotate without the token succeeded"
assert_err_contains 'token "jwtkit"'
assert_err_contains "this keyring's keys are only in that token"
run sign --keyring ring --alg ES256 --sub x
check
[ "$RC" -ne 0 ] || fail "sign --keyring without the token succeeded"
assert_err_contains "this keyring's keys are only in that token"
assert_out_empty
mv softhsm/tokens.away softhsm/tokens
run keyring rotate ring --force
assert_rc 0
# a wrong PIN: one login, one clear error, nothing made
(umask 077 && echo 9999 >"$TMP/wrong.pin")
spy "$TMP/spy5.log" keyring init spyring --alg ES256 --pkcs11 "pkcs11:token=jwtkit?module-path=$SPY&pin-source=$TMP/wrong.pin"
assert_rc 2
assert_err_contains "refused the PIN (CKR_PIN_INCORRECT); not retried"
check
n=$(grep -c ' C_Login$' "$TMP/spy5.log" || true)
[ "$n" = 1 ] || fail "keyring init with a wrong PIN: $n C_Login calls (one expected)"
# URIs that name a key or carry a PIN, --pkcs11 elsewhere than init, imports
run keyring init bad1 --alg ES256 --pkcs11 "pkcs11:token=jwtkit;object=mine?module-path=$MODULE"
assert_rc 2
assert_err_contains "names the token only"
run keyring init bad2 --alg ES256 --pkcs11 "pkcs11:token=jwtkit?pin-value=24680&module-path=$MODULE"
assert_rc 2
assert_err_not_contains "24680"
run keyring init bad3 --alg ES256 --pkcs11 /etc/key.pem
assert_rc 2
assert_err_contains "wants a pkcs11: URI"
run keyring rotate ring --pkcs11 "$RURI"
assert_rc 2
assert_err_contains "--pkcs11 applies to init"
"$JWTKIT" keygen --alg ES256 --out "$TMP/plain.pem" >/dev/null 2>&1
run keyring add ring "$TMP/plain.pem"
assert_rc 2
assert_err_contains "makes its keys in its PKCS#11 token"
cd "$TMP"

finish
