#!/usr/bin/env bash
# jwtkit decode: the unverified human view and --json, inputs, failures.
source "$(dirname "$0")/lib.sh" "$@"

printf '%s' 'jwtkit-test-secret-0123456789abcdef' >secret.txt
chmod 600 secret.txt
tok=$("$JWTKIT" sign --secret-file secret.txt --alg HS256 --at 1700000000 --iss https://issuer.example \
  --sub alice --aud api --nbf 1700000060 --claims '{"roles":["a","b"],"meta":{"n":1.5,"ok":true,"none":null,"e":{}}}')

run decode --at 1700000300 "$tok"
assert_rc 0
assert_golden decode_human.txt
check
[ "$(printf '%s\n' "$OUT" | head -n 1)" = "UNVERIFIED: signature not checked" ] || fail "first line"
run decode --json "$tok"
assert_rc 0
assert_golden decode_json.txt
check
python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["verified"] is False and d["header"]["alg"]=="HS256" and d["payload"]["sub"]=="alice"' <<<"$OUT" ||
  fail "--json output is not the expected JSON"

# stdin, "-", @FILE, surrounding whitespace
run decode --at 1700000300 <<<"  $tok  "
assert_golden decode_human.txt
run decode --at 1700000300 - <<<"$tok"
assert_golden decode_human.txt
printf '\n%s\n\n' "$tok" >tok.txt
run decode --at 1700000300 @tok.txt
assert_golden decode_human.txt

# relative times
run decode --at 2023-11-14T22:13:20Z "$tok"
assert_out_contains "exp  2023-11-14T22:28:20Z  (in 15m)"
assert_out_contains "iat  2023-11-14T22:13:20Z  (now)"
assert_out_contains "nbf  2023-11-14T22:14:20Z  (in 1m)"
run decode --at 1700100000 "$tok"
assert_out_contains "(1d ago)"
run decode --at 1700010000 "$tok"
assert_out_contains "(2h ago)"
run decode --at 1700000930 "$tok"
assert_out_contains "exp  2023-11-14T22:28:20Z  (30s ago)"

# a forged signature still decodes: decode never verifies
run decode "${tok%.*}.AAAA"
assert_rc 0
assert_out_contains "UNVERIFIED"
# ... and a token without times shows none
plain="$(printf '{"alg":"none"}' | b64url).$(printf '{"x":"\\u00e9\\n"}' | b64url)."
run decode "$plain"
assert_rc 0
assert_out_contains '"x": "\u00e9\n"'
assert_out_not_contains "times"

# malformed input: exit 2 with the library's reason
for bad in "" abc a.b "$(printf '{"a":1,"a":2}' | b64url).$(printf '{}' | b64url)." \
  "$(printf '[1]' | b64url).$(printf '{}' | b64url).x" "eyJ.eyJ.x"; do
  run decode "$bad"
  assert_rc 2
  assert_out_empty
  assert_err_contains "jwtkit: decode: malformed token"
done
run decode - < <(head -c 66000 /dev/zero | tr '\0' a)
assert_rc 2
assert_err_contains "token over 65536 bytes"
run decode - < <(head -c 1100000 /dev/zero | tr '\0' a)
assert_rc 2
assert_err_contains "exceeds the limit of 1 MiB"
run decode @no-such-file
assert_rc 2
assert_err_contains "cannot read token no-such-file"
run decode --at never "$tok"
assert_rc 2
assert_write_error decode "$tok"
assert_write_error decode --json "$tok"

# NumericDates are shown as the verifier reads them: exponent forms too
b64u() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
etok="$(printf '{"alg":"HS256"}' | b64u).$(printf '{"exp":1.7000036e+09,"iat":17000000005e-1}' | b64u).c2ln"
run decode --at 1700000000 "$etok"
assert_rc 0
assert_out_contains "exp  2023-11-14T23:13:20Z  (in 1h)"
assert_out_contains "iat  2023-11-14T22:13:20Z  (now)"

finish
