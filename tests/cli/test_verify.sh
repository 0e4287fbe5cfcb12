#!/usr/bin/env bash
# jwtkit verify: key sources (PEM, JWK, JWKS file and http URL), algorithm
# binding and confusion attacks, dual verification, claim checks, and the
# one-line failure contract.
source "$(dirname "$0")/lib.sh" "$@"

"$JWTKIT" keygen --alg RS256 --out rs.pem --pub rs.pub.pem 2>/dev/null
"$JWTKIT" keygen --alg ES256 --out es.pem --pub es.pub.pem 2>/dev/null
# a fixed binary secret (a NUL inside, no trailing newline): random bytes
# would end in a newline once in 256 runs, and one trailing newline is not
# part of a secret
printf 'bin\000ary-secret-0123456789abcdef\377\001' >s.bin
chmod 600 s.bin
NOW=1800000000 # 2027-01-15T08:00:00Z

# hs_forge KEYFILE HEADER PAYLOAD: a token HMAC-SHA256'd with KEYFILE's bytes
hs_forge() {
  python3 - "$@" <<'EOF'
import base64, hashlib, hmac, sys
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
key = open(sys.argv[1], "rb").read()
si = b(sys.argv[2].encode()) + "." + b(sys.argv[3].encode())
print(si + "." + b(hmac.new(key, si.encode(), hashlib.sha256).digest()))
EOF
}

# --- the basic contract
tok=$("$JWTKIT" sign --key rs.pem --alg RS256 --at $NOW --sub alice)
run verify --key rs.pub.pem --alg RS256 --at $NOW "$tok"
assert_rc 0
assert_out_contains '"sub":"alice"'
assert_err_eq ""
run verify --key rs.pub.pem --alg RS256 --at $NOW - <<<"$tok"
assert_rc 0
run verify --key rs.pub.pem --alg RS256 --at $NOW <<<"$tok"
assert_rc 0
printf '%s\n' "$tok" >tok.txt
run verify --key rs.pub.pem --alg RS256 --at $NOW @tok.txt
assert_rc 0
assert_out_eq "$(printf '{"sub":"alice","iat":%s,"exp":%s}' $NOW $((NOW + 900)))"
run verify --key rs.pub.pem --alg RS256 --at $NOW --verbose "$tok"
assert_rc 0
assert_err_contains "note: key rs.pub.pem bound to RS256"
assert_err_contains "note: verified: RS256, kid "

# --- the same token through a JWK, a JWK Set file, and an http:// JWKS URL
"$JWTKIT" jwk --alg RS256 rs.pub.pem >rs.pub.jwk
"$JWTKIT" jwks --alg RS256 rs.pub.pem es.pub.pem >set.json
run verify --key rs.pub.jwk --alg RS256 --at $NOW "$tok"
assert_rc 0
run verify --jwks set.json --alg RS256 --at $NOW "$tok"
assert_rc 0
run verify --key set.json --alg RS256 --at $NOW "$tok"
assert_rc 0
run verify --jwks - --alg RS256 --at $NOW "$tok" <set.json
assert_rc 0
mkdir -p www/dir
cp set.json www/jwks.json
head -c 1100000 /dev/zero | tr '\0' ' ' >www/big.json
serve_dir www
URL=http://127.0.0.1:$PORT
run verify --jwks "$URL/jwks.json" --allow-http --alg RS256,ES256 --at $NOW "$tok"
assert_rc 0
assert_out_contains '"sub":"alice"'
run verify --jwks "$URL/jwks.json" --alg RS256 --at $NOW "$tok"
assert_rc 2
assert_err_contains "plain http is refused; use https:// or --allow-http"
run verify --jwks "$URL/missing.json" --allow-http --alg RS256 --at $NOW "$tok"
assert_rc 3
assert_err_contains "HTTP status 404"
run verify --jwks "$URL/dir" --allow-http --alg RS256 --at $NOW "$tok"
assert_rc 3
assert_err_contains "redirects are not followed"
run verify --jwks "$URL/big.json" --allow-http --alg RS256 --at $NOW "$tok"
assert_rc 2
assert_err_contains "the response exceeds the limit of 1024 KiB"
run verify --jwks "https://127.0.0.1:$PORT/jwks.json" --alg RS256 --at $NOW "$tok"
assert_rc 3
assert_err_contains "cannot fetch https://127.0.0.1:$PORT/jwks.json"
run verify --jwks "ftp://127.0.0.1/jwks.json" --alg RS256 "$tok"
assert_rc 2

# --- alg "none" never verifies
hn=$(printf '{"alg":"none","typ":"JWT"}' | b64url)
pn=$(printf '{"sub":"mallory","exp":%s}' $((NOW + 600)) | b64url)
for t in "$hn.$pn." "$hn.$pn"; do
  run verify --key rs.pub.pem --alg RS256 --at $NOW "$t"
  assert_rc 1
  assert_out_empty
  assert_err_one_line
done
run verify --key rs.pub.pem --alg RS256 --at $NOW "$hn.$pn."
assert_err_eq "jwtkit: verify: algorithm not allowed: algorithm not accepted by this verifier"
hN=$(printf '{"alg":"nOnE"}' | b64url)
run verify --secret-file s.bin --alg HS256 --at $NOW "$hN.$pn."
assert_rc 1
run verify --key rs.pub.pem --alg RS256,none "$hn.$pn."
assert_rc 2
assert_err_contains 'algorithm "none" is never accepted'

# --- RS256 -> HS256 confusion: HMAC keyed with the public key PEM bytes
forged=$(hs_forge rs.pub.pem '{"alg":"HS256","typ":"JWT"}' "{\"sub\":\"mallory\",\"exp\":$((NOW + 600))}")
run verify --key rs.pub.pem --alg RS256 --at $NOW "$forged"
assert_rc 1
assert_err_eq "jwtkit: verify: algorithm not allowed: algorithm not accepted by this verifier"
run verify --key rs.pub.pem --alg HS256,RS256 --at $NOW "$forged"
assert_rc 1
assert_err_contains "no trusted key fits HS256"
assert_out_empty
run verify --key rs.pub.jwk --alg HS256,RS256 --at $NOW "$forged"
assert_rc 1
run verify --jwks set.json --alg HS256,RS256 --at $NOW "$forged"
assert_rc 1
run verify --secret-file rs.pub.pem --alg HS256 --at $NOW "$forged"
assert_rc 2
assert_err_contains "the secret is a PEM block: a key is never an HMAC secret"
run verify --key rs.pub.pem --alg HS256 --at $NOW "$forged"
assert_rc 2
assert_err_contains "no algorithm of --alg fits it"

# --- dual verification: one call, a secret for HS256 and a public key for RS256
hs_tok=$("$JWTKIT" sign --secret-file s.bin --alg HS256 --at $NOW --sub hs)
rs_tok=$("$JWTKIT" sign --key rs.pem --alg RS256 --at $NOW --sub rs)
for t in "$hs_tok" "$rs_tok"; do
  run verify --secret-file s.bin --key rs.pub.pem --alg HS256,RS256 --at $NOW "$t"
  assert_rc 0
done
run verify --secret-file s.bin --key rs.pub.pem --alg HS256 --alg RS256 --at $NOW "$hs_tok"
assert_out_contains '"sub":"hs"'
run verify --secret-file s.bin --key rs.pub.pem --alg HS256,RS256 --at $NOW "$rs_tok"
assert_out_contains '"sub":"rs"'
run verify --secret-file s.bin --key rs.pub.pem --alg HS256,RS256 --at $NOW "$forged"
assert_rc 1
assert_err_eq "jwtkit: verify: bad signature"
# a token signed with the RSA key but relabelled HS256 keeps failing
relabelled="$(printf '{"alg":"HS256","typ":"JWT"}' | b64url).${rs_tok#*.}"
run verify --secret-file s.bin --key rs.pub.pem --alg HS256,RS256 --at $NOW "$relabelled"
assert_rc 1

# --- binding rules (usage errors)
run verify --secret-file s.bin --alg RS256 "$hs_tok"
assert_rc 2
assert_err_contains "a secret needs an HS256, HS384 or HS512 algorithm in --alg"
run verify --secret-file s.bin --alg HS256,HS512 "$hs_tok"
assert_rc 2
assert_err_contains "several"
run verify --key rs.pub.pem --alg RS256,PS256 "$rs_tok"
assert_rc 2
assert_err_contains "fits both RS256 and PS256"
run verify --key es.pub.pem --alg RS256 "$rs_tok"
assert_rc 2
assert_err_contains "bound to ES256, which --alg does not allow"
run verify --key rs.pub.pem "$rs_tok"
assert_rc 2
assert_err_contains "--alg is required"
run verify --alg RS256 "$rs_tok"
assert_rc 2
assert_err_contains "no trusted key"
run verify --jwks set.json --alg HS256 "$rs_tok"
assert_rc 2
assert_err_contains "no trusted key"
run verify --key rs.pub.pem --jwks set.json --alg RS256 --at $NOW "$rs_tok"
assert_rc 0
"$JWTKIT" jwk --alg RS256 --kid dup rs.pub.pem >dup1.jwk
"$JWTKIT" jwk --kid dup es.pub.pem >dup2.jwk
run verify --key dup1.jwk --key dup2.jwk --alg RS256,ES256 "$rs_tok"
assert_rc 2
assert_err_contains 'two keys share the kid "dup"'
run verify --key rs.pub.jwk --jwks rs.pub.jwk --alg RS256 "$rs_tok"
assert_rc 2
assert_err_contains "is not a JWK Set"

# --- rotation: two PEM keys for one algorithm; tokens name theirs by thumbprint
"$JWTKIT" keygen --alg RS256 --out rs2.pem --pub rs2.pub.pem 2>/dev/null
rs2_tok=$("$JWTKIT" sign --key rs2.pem --alg RS256 --at $NOW --sub rs2)
for t in "$rs_tok" "$rs2_tok"; do
  run verify --key rs.pub.pem --key rs2.pub.pem --alg RS256 --at $NOW --verbose "$t"
  assert_rc 0
  assert_err_contains "several RS256 keys without kid"
done
run verify --key rs.pub.pem --key rs2.pub.pem --alg RS256 --at $NOW "$rs2_tok"
assert_out_contains '"sub":"rs2"'
nokid=$("$JWTKIT" sign --key rs2.pem --alg RS256 --at $NOW --kid "")
run verify --key rs.pub.pem --key rs2.pub.pem --alg RS256 --at $NOW "$nokid"
assert_rc 1
assert_err_contains "several keys fit RS256; the token must carry a kid"
run verify --key rs2.pub.pem --alg RS256 --at $NOW "$nokid"
assert_rc 0
foreign=$("$JWTKIT" sign --key rs2.pem --alg RS256 --at $NOW --kid some-other-kid)
run verify --key rs2.pub.pem --alg RS256 --at $NOW "$foreign"
assert_rc 0

# --- JWK Sets: filtering by --alg, RSA keys without "alg", unknown kid
run verify --jwks set.json --alg RS256 --verbose --at $NOW "$rs_tok"
assert_rc 0
assert_err_contains "ignored: ES256 is not in --alg"
sed 's/"alg":"RS256",//' set.json >noalg.json
run verify --jwks noalg.json --alg RS256 --at $NOW "$rs_tok"
assert_rc 0
run verify --jwks noalg.json --alg RS256,PS256 --verbose --at $NOW "$rs_tok"
assert_rc 2
assert_err_contains 'key 0 skipped: RSA key without "alg"'
assert_err_contains "no trusted key"
other=$("$JWTKIT" sign --key rs.pem --alg RS256 --at $NOW --kid not-in-set)
run verify --jwks set.json --alg RS256 --at $NOW "$other"
assert_rc 1
assert_err_contains "unknown key id"
printf '{"keys":[{"kty":"oct","k":"%s","alg":"HS256","kid":"pub-secret"}]}' "$(b64url <s.bin)" >www/oct.json
run verify --jwks "$URL/oct.json" --allow-http --alg HS256 --verbose "$hs_tok"
assert_rc 2
assert_err_contains "key 0 skipped: secret (oct) keys are never taken from a JWK Set"
assert_err_contains "no trusted key"
cp www/oct.json oct.json
run verify --key oct.json --alg HS256 --at $NOW "$hs_tok"
assert_rc 2

# --- time: expired, not yet valid, --at, leeway, max age
run verify --key rs.pub.pem --alg RS256 --at $((NOW + 1020)) "$rs_tok"
assert_rc 1
assert_err_one_line
assert_err_eq "jwtkit: verify: token expired: expired 120 s ago (leeway 60 s)"
run verify --key rs.pub.pem --alg RS256 --at $((NOW + 930)) "$rs_tok"
assert_rc 0
run verify --key rs.pub.pem --alg RS256 --at $((NOW + 930)) --leeway 0 "$rs_tok"
assert_rc 1
assert_err_contains "expired"
run verify --key rs.pub.pem --alg RS256 --at $((NOW + 1020)) --leeway 5m "$rs_tok"
assert_rc 0
run verify --key rs.pub.pem --alg RS256 --leeway 301 "$rs_tok"
assert_rc 2
assert_err_contains "bad --leeway"
run verify --key rs.pub.pem --alg RS256 "$rs_tok" # real clock: 2027 token is ahead
assert_rc 1
assert_err_contains "issued"
run verify --key rs.pub.pem --alg RS256 --at 2027-01-15T08:05:00Z "$rs_tok"
assert_rc 0
run verify --key rs.pub.pem --alg RS256 --at 2027-01-15T10:05:00+02:00 "$rs_tok"
assert_rc 0
nbf_tok=$("$JWTKIT" sign --key rs.pem --alg RS256 --at $NOW --nbf $((NOW + 600)))
run verify --key rs.pub.pem --alg RS256 --at $NOW "$nbf_tok"
assert_rc 1
assert_err_eq "jwtkit: verify: token not yet valid: valid only in 600 s"
run verify --key rs.pub.pem --alg RS256 --at $((NOW + 600)) "$nbf_tok"
assert_rc 0
run verify --key rs.pub.pem --alg RS256 --at $((NOW + 600)) --max-age 5m "$rs_tok"
assert_rc 1
assert_err_contains "token older than the maximum age"
run verify --key rs.pub.pem --alg RS256 --at $((NOW + 60)) --max-age 5m "$rs_tok"
assert_rc 0
run verify --key rs.pub.pem --alg RS256 --at yesterday "$rs_tok"
assert_rc 2
assert_err_contains "bad --at"

# --- claims: audience (safe by default), issuer, subject, typ, required claims
aud_tok=$("$JWTKIT" sign --key rs.pem --alg RS256 --at $NOW --aud other --aud more --iss https://a.example --sub bob)
run verify --key rs.pub.pem --alg RS256 --at $NOW "$aud_tok"
assert_rc 1
assert_err_eq "jwtkit: verify: claim mismatch: the token names an audience but the verifier has none configured"
run verify --key rs.pub.pem --alg RS256 --at $NOW --aud api "$aud_tok"
assert_rc 1
assert_err_eq "jwtkit: verify: claim mismatch: audience not accepted"
run verify --key rs.pub.pem --alg RS256 --at $NOW --aud api --aud more "$aud_tok"
assert_rc 0
assert_out_contains '"aud":["other","more"]'
run verify --key rs.pub.pem --alg RS256 --at $NOW --insecure-no-aud "$aud_tok"
assert_rc 0
run verify --key rs.pub.pem --alg RS256 --at $NOW --insecure-no-aud --aud api "$aud_tok"
assert_rc 2
run verify --key rs.pub.pem --alg RS256 --at $NOW --aud api "$rs_tok"
assert_rc 1
assert_err_contains "required claim missing"
run verify --key rs.pub.pem --alg RS256 --at $NOW --aud other --iss https://a.example "$aud_tok"
assert_rc 0
run verify --key rs.pub.pem --alg RS256 --at $NOW --aud other --iss https://b.example "$aud_tok"
assert_rc 1
assert_err_contains "issuer not accepted"
run verify --key rs.pub.pem --alg RS256 --at $NOW --aud other --iss https://b.example --iss https://a.example "$aud_tok"
assert_rc 0
run verify --key rs.pub.pem --alg RS256 --at $NOW --aud other --sub bob "$aud_tok"
assert_rc 0
run verify --key rs.pub.pem --alg RS256 --at $NOW --aud other --sub alice "$aud_tok"
assert_rc 1
assert_err_contains "subject not accepted"
run verify --key rs.pub.pem --alg RS256 --at $NOW --aud other --typ jwt "$aud_tok"
assert_rc 0
run verify --key rs.pub.pem --alg RS256 --at $NOW --aud other --typ at+jwt "$aud_tok"
assert_rc 1
run verify --key rs.pub.pem --alg RS256 --at $NOW --aud other --require iss --require sub "$aud_tok"
assert_rc 0
run verify --key rs.pub.pem --alg RS256 --at $NOW --aud other --require jti "$aud_tok"
assert_rc 1
assert_err_eq 'jwtkit: verify: required claim missing: required claim "jti" is missing'

# --- broken tokens: exit 1, one line, nothing on stdout
tampered="${rs_tok%?}A"
[ "$tampered" = "$rs_tok" ] && tampered="${rs_tok%?}B"
run verify --key rs.pub.pem --alg RS256 --at $NOW "$tampered"
assert_rc 1
assert_out_empty
assert_err_one_line
swapped="${rs_tok%%.*}.$(printf '{"sub":"admin","exp":%s}' $((NOW + 600)) | b64url).${rs_tok##*.}"
run verify --key rs.pub.pem --alg RS256 --at $NOW "$swapped"
assert_rc 1
assert_err_eq "jwtkit: verify: bad signature"
for bad in abc a.b a.b.c.d "" "$(printf '%s' "$rs_tok" | tr '.' ' ')"; do
  run verify --key rs.pub.pem --alg RS256 --at $NOW "$bad"
  assert_rc 1
  assert_err_contains "malformed token"
  assert_err_one_line
done
# a token over 64 KiB fails verification (exit 1), like any token the
# library refuses; surrounding whitespace does not count toward the limit
run verify --key rs.pub.pem --alg RS256 --at $NOW - < <(head -c 70000 /dev/zero | tr '\0' a)
assert_rc 1
assert_err_contains "token over 65536 bytes"
pad=65000
for _ in 1 2 3 4 5 6 7 8; do # a payload padded until the token is exactly 64 KiB
  printf '{"pad":"%s"}' "$(head -c "$pad" /dev/zero | tr '\0' p)" >big.json
  big=$("$JWTKIT" sign --secret-file s.bin --alg HS256 --at $NOW --claims @big.json)
  [ ${#big} -eq 65536 ] && break
  pad=$((pad + (65536 - ${#big}) * 3 / 4))
  [ ${#big} -lt 65536 ] && [ $(((65536 - ${#big}) * 3 / 4)) -eq 0 ] && pad=$((pad + 1))
done
assert_true "a token of exactly 65536 bytes was made" test ${#big} -eq 65536
printf '\n%s\r\n' "$big" >big.tok
run verify --secret-file s.bin --alg HS256 --at $NOW @big.tok
assert_rc 0
printf '%sA\n' "$big" >big1.tok
run verify --secret-file s.bin --alg HS256 --at $NOW @big1.tok
assert_rc 1
assert_err_contains "token over 65536 bytes"
run verify --key rs.pub.pem --alg RS256 --at $NOW - < <(head -c 1100000 /dev/zero | tr '\0' a)
assert_rc 2
assert_err_contains "token stdin exceeds the limit of 1 MiB"
run verify --key rs.pub.pem --alg RS256 @no-such-file
assert_rc 2
# a file name where the token goes: the message says how to pass a file
printf '%s\n' "$rs_tok" >tok.file
run verify --key rs.pub.pem --alg RS256 --at $NOW tok.file
assert_rc 1
assert_err_contains '"tok.file" is a file: give @FILE to read the token from it, or - for stdin'
run verify --key rs.pub.pem --alg RS256 --at $NOW @tok.file
assert_rc 0
run verify --key - --alg RS256 - <rs.pub.pem
assert_rc 2
assert_err_contains "stdin (-) can only be read once"
assert_write_error verify --key rs.pub.pem --alg RS256 --at $NOW "$rs_tok"

finish
