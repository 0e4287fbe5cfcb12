#!/usr/bin/env bash
# The options of `jwtkit gate --help` are the man page's, docs/gateway.md's
# and the bash completion's (exactly, for the completion); `jwtkit pem`
# completes its subcommand and exactly the options of `jwtkit pem --help`.
# (The configuration keys against the core's vocabulary: gate_units.)
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
JWTKIT=${JWTKIT_CLI_BIN:?JWTKIT_CLI_BIN not set (run through ctest)}
[ -x "$JWTKIT" ] || { echo "SKIP: the jwtkit command is not built"; exit 77; }
FAILS=0
CHECKS=0
check() {
  local what=$1
  shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; FAILS=$((FAILS + 1)); fi
}
opts_of() { "$JWTKIT" "$@" --help | sed -n 's/^  \(-h, \)\{0,1\}\(--[a-z][a-z0-9-]*\).*/\2/p' | sort -u; }
complete_words() { # complete_words WORD...: what the completion offers for the last word
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _jwtkit; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$SRC/completions/jwtkit.bash" "$@" | sort -u
}

gate_opts=$(opts_of gate)
check "jwtkit gate --help lists options (--config, --check, --fetch)" \
  bash -c "grep -qx -- --config <<<'$gate_opts' && grep -qx -- --check <<<'$gate_opts' && grep -qx -- --fetch <<<'$gate_opts'"
for o in $gate_opts; do
  m=${o//-/\\\\-}
  check "gate $o in docs/man/jwtkit-gate.1" grep -q -- "$m" "$SRC/docs/man/jwtkit-gate.1"
  [ "$o" = --help ] && continue
  check "gate $o in docs/gateway.md's options table" grep -q -- "^| \`$o" "$SRC/docs/gateway.md"
done
check "completion of 'jwtkit gate --' is exactly the --help options" \
  test "$(complete_words jwtkit gate --)" = "$gate_opts"
check "completion of 'jwtkit gate --config' completes files" \
  bash -c "cd '$SRC' && [ \"\$(bash -c 'source completions/jwtkit.bash; COMP_WORDS=(jwtkit gate --config CMakeL); COMP_CWORD=3; _jwtkit; printf \"%s\n\" \"\${COMPREPLY[@]}\"')\" = CMakeLists.txt ]"
check "completion of 'jwtkit gate --log-level' gives the levels" \
  test "$(complete_words jwtkit gate --log-level '' | tr '\n' ' ')" = "debug error info warn "

pem_opts=$(opts_of pem)
check "completion of 'jwtkit pem' gives its subcommand" test "$(complete_words jwtkit pem '')" = check
check "completion of 'jwtkit pem check --' is exactly the --help options" \
  test "$(complete_words jwtkit pem check --)" = "$pem_opts"
check "jwtkit pem --help names the check subcommand" bash -c "'$JWTKIT' pem --help | grep -q '^Usage: jwtkit pem check'"
echo "test_options_documented: $CHECKS checks, $FAILS failed"
[ "$FAILS" = 0 ]
