#!/usr/bin/env bash
# jwtkit help, --help, --version, the command table, and that the man pages
# and bash completion cover every option the table declares.
source "$(dirname "$0")/lib.sh" "$@"
SRC=$(cd "$TESTS_DIR/../.." && pwd)

run
assert_rc 2
assert_err_contains "Usage: jwtkit <command>"

run --version
assert_rc 0
assert_out_contains "jwtkit 0.1.0"

run help
assert_rc 0
assert_golden help.txt
run --help
assert_rc 0
assert_out_contains "Exit status:"

COMMANDS="keygen sign verify decode jwk jwks thumbprint scan pem keyring"
# the services and the benchmark print their own help (help X shows it too)
DOCUMENTED="$COMMANDS ui bench"
for c in $COMMANDS help; do
  run help "$c"
  assert_rc 0
  assert_out_contains "Usage: jwtkit $c "
  help_out=$OUT
  run "$c" --help
  assert_rc 0
  check
  [ "$OUT" == "$help_out" ] || fail "'help $c' and '$c --help' differ"
  run "$c" -h
  assert_out_eq "$help_out"
done
run help verify
assert_golden help_verify.txt

# options are parsed before the command runs: --help wins
run sign --alg HS256 --help
assert_rc 0
assert_out_contains "Usage: jwtkit sign"

# usage errors
run frobnicate
assert_rc 2
assert_err_contains "unknown command 'frobnicate'"
run help frobnicate
assert_rc 2
assert_err_contains "unknown command 'frobnicate'"
run sign --no-such-option
assert_rc 2
assert_err_contains "unknown option --no-such-option"
assert_err_contains "Try 'jwtkit help sign'."
run sign --alg
assert_rc 2
assert_err_contains "option --alg needs a value"
run sign --no-iat=1
assert_rc 2
assert_err_contains "takes no value"
run sign --alg HS256 --alg HS384
assert_rc 2
assert_err_contains "given twice"
run decode a b
assert_rc 2
assert_err_contains "unexpected argument 'b'"
run thumbprint
assert_rc 2
assert_err_contains "missing argument"
run decode -x
assert_rc 2
assert_err_contains "unknown option -x; if this is a kid or a file name, put -- before it"

# words that begin with '-': "--" makes them arguments everywhere; without
# it a single-dash word is an argument only in a slot the command requires
"$JWTKIT" keygen --alg ES256 --out -k.pem --pub -k.pub.pem 2>/dev/null
kid=$("$JWTKIT" thumbprint ./-k.pub.pem)
run thumbprint -k.pub.pem
assert_rc 0
assert_out_eq "$kid"
run thumbprint -- -k.pub.pem
assert_rc 0
assert_out_eq "$kid"
run jwk -- -k.pub.pem
assert_rc 0
run jwk -k.pub.pem -x
assert_rc 2
assert_err_contains "unknown option -x; if this is a kid or a file name, put -- before it"
run decode -- -x
assert_rc 2
assert_err_not_contains "unknown option"
run thumbprint --k.pub.pem
assert_rc 2
assert_err_contains "unknown option --k.pub.pem; if this is a kid or a file name, put -- before it"
run sign --alg ES256 --key -k.pem --sub x -- extra
assert_rc 2
assert_err_contains "unexpected argument 'extra'"
run sign --alg ES256 --key -k.pem --sub x --
assert_rc 0
# the services and the benchmark take no arguments: "--" ends their options
printf '[route r]\nkey_file = %s/-k.pub.pem\nalgs = ES256\n' "$TMP" >gate.conf
if "$JWTKIT" help gate | grep -q "Usage: jwtkit gate --config"; then
  run gate --config gate.conf --check --
  assert_rc 0
  assert_out_contains "configuration OK"
  run gate --config gate.conf -- --check
  assert_rc 2
  assert_err_contains "unexpected argument '--check'"
fi
for c in serve ui bench; do
  "$JWTKIT" "$c" --help >/dev/null 2>&1 || continue # not built here
  run "$c" -- extra
  assert_rc 2
  assert_err_contains "unexpected argument 'extra'"
done

# the services and the benchmark parse their own options
for c in serve gate ui bench; do
  run help "$c"
  assert_rc 0
  assert_out_contains "Usage: jwtkit $c "
done

# every option of each command, service and the benchmark is documented in
# its man page and completed
for c in $DOCUMENTED; do
  man=$SRC/docs/man/jwtkit-$c.1
  assert_true "man page for $c exists" test -f "$man"
  grep -q "^\.B jwtkit $c\|jwtkit-$c" "$SRC/docs/man/jwtkit.1" || { check; fail "jwtkit.1 does not list $c"; }
  run help "$c"
  for opt in $(printf '%s\n' "$OUT" | sed -n 's/^  --\([a-z0-9-]*\).*/\1/p'); do
    [ "$opt" = help ] && continue
    check
    roff=$(printf '%s' "--$opt" | sed 's/-/\\\\-/g') # --a-b -> \\-\\-a\\-b (a grep pattern)
    grep -q -- "$roff\\b" "$man" || fail "jwtkit-$c.1 does not document --$opt"
    check
    grep -q -- "--$opt\\b" "$SRC/completions/jwtkit.bash" || fail "completion lacks --$opt ($c)"
  done
done
# the man pages are well-formed roff
if command -v groff >/dev/null; then
  for m in "$SRC"/docs/man/*.1; do
    check
    w=$(groff -man -Tutf8 -ww -z "$m" 2>&1 || true)
    [ -z "$w" ] || fail "groff warnings in $(basename "$m"): $w"
  done
fi

# the completion script loads and completes commands and options
check
comp=$(bash -c 'source "$1"; COMP_WORDS=(jwtkit ve); COMP_CWORD=1; _jwtkit; printf "%s\n" "${COMPREPLY[@]}"' _ "$SRC/completions/jwtkit.bash")
[ "$comp" = verify ] || fail "completion of 've' gave: $comp"
check
comp=$(bash -c 'source "$1"; COMP_WORDS=(jwtkit verify --al); COMP_CWORD=2; _jwtkit; printf "%s\n" "${COMPREPLY[@]}"' _ "$SRC/completions/jwtkit.bash")
[[ "$comp" == *--alg* && "$comp" == *--allow-http* ]] || fail "completion of 'verify --al' gave: $comp"
check
comp=$(bash -c 'source "$1"; COMP_WORDS=(jwtkit sign --alg E); COMP_CWORD=3; _jwtkit; printf "%s\n" "${COMPREPLY[@]}"' _ "$SRC/completions/jwtkit.bash")
[[ "$comp" == *ES256* && "$comp" == *EdDSA* ]] || fail "completion of '--alg E' gave: $comp"

# exit 3 on a write error (stdout is /dev/full)
assert_write_error help
assert_write_error help sign
assert_write_error --version

finish
