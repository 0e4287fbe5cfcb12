#!/usr/bin/env bash
# The issuer's help, man page and bash completion agree: every option of
# `jwtkit serve --help` and `jwtkit serve client --help` is documented in
# docs/man/jwtkit-serve.1 and completed by completions/jwtkit.bash (and the
# completion offers nothing --help does not list); every key of the
# configuration table of docs/serve.md is in the man page, and every option
# that is a key is in that table; the completion offers the client
# subcommands --help names; the client keys of private_key_jwt are in the
# man page.  No server is started.
set -u
: "${SERVE_BIN:?SERVE_BIN is not set}"
SRC=${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
MAN=$SRC/docs/man/jwtkit-serve.1
COMP=$SRC/completions/jwtkit.bash
DOC=$SRC/docs/serve.md
# shellcheck source=tests/lib/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/checks.sh"

# the --options a help text lists, one per line, sorted (-h, --help included)
opts_of() { sed -n 's/^  \(-h, \)\{0,1\}--\([a-z0-9-]*\).*/\2/p' | sort -u; }
# what the completion offers for the words given (the last one completed)
complete_words() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _jwtkit; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$COMP" "$@" | sort -u
}

SERVE_OPTS=$("$SERVE_BIN" --help | opts_of)
CLIENT_OPTS=$("$SERVE_BIN" client --help | opts_of)
check "serve --help lists options" test "$(printf '%s\n' "$SERVE_OPTS" | wc -l)" -ge 20
check "serve client --help lists options" test "$(printf '%s\n' "$CLIENT_OPTS" | wc -l)" -ge 5

# an option is documented where a .B/.BI/.BR line names it exactly (not
# as the start of a longer one: --max-connections is not --max-connections-per-ip)
for opt in $SERVE_OPTS $CLIENT_OPTS; do
  roff=$(printf '%s' "--$opt" | sed 's/-/\\\\-/g') # --a-b -> \\-\\-a\\-b (an ERE)
  check "man page documents --$opt" grep -Eq -- "^\.B[IR]? (.* )?$roff([^a-z0-9\\]|$)" "$MAN"
done

got=$(complete_words jwtkit serve --)
expect "completion of 'serve --' is --help's options, no more, no fewer" \
  "$(printf '%s\n' "$SERVE_OPTS" | sed 's/^/--/' | sort -u)" "$got"
got=$(complete_words jwtkit serve client add --)
expect "completion of 'serve client add --' is client --help's options" \
  "$(printf '%s\n' "$CLIENT_OPTS" | sed 's/^/--/' | sort -u)" "$got"
SUBS=$("$SERVE_BIN" client --help | sed -n 's/^.*jwtkit serve client \([a-z-]*\) .*/\1/p' | sort -u)
check "client --help names four subcommands: $(echo $SUBS)" test "$(printf '%s\n' "$SUBS" | wc -l)" -eq 4
expect "completion of 'serve client ' is those subcommands" "$SUBS" "$(complete_words jwtkit serve client '')"
expect "completion of 'serve cl' is client" client "$(complete_words jwtkit serve cl)"
expect "completion of 'serve --log-level w'" warn "$(complete_words jwtkit serve --log-level w)"
expect "completion of 'serve --alg Ed'" EdDSA "$(complete_words jwtkit serve --alg Ed)"
# private_key_jwt keys: a file (completed as one) or a URL (nothing to offer)
check "client --help lists --jwks-uri" bash -c "printf '%s\n' '$CLIENT_OPTS' | grep -qx jwks-uri"
expect "completion of the value of --jwks-uri offers nothing (not the options)" "" "$(complete_words jwtkit serve client add x --jwks-uri --)"
expect "completion of 'client add x --assertion-alg ES2'" ES256 "$(complete_words jwtkit serve client add x --assertion-alg ES2)"
# the client entry's keys the man page names
for k in jwks jwks_uri allow_http_jwks assertion_algs; do
  check "man page names client key $k" grep -q -- "^\.BR\{0,1\} $k\b" "$MAN"
done

# configuration keys: the table of docs/serve.md (`key` or `a` / `b` in its first column)
KEYS=$(sed -n '/^| key | default | meaning |$/,/^$/p' "$DOC" | sed -n 's/^| \(`[a-z0-9_]*`\( \/ `[a-z0-9_]*`\)*\) |.*/\1/p' |
  tr -d '`' | tr '/' '\n' | tr -d ' ' | sort -u)
check "docs/serve.md's table lists keys" test "$(printf '%s\n' "$KEYS" | wc -l)" -ge 20
for k in $KEYS; do
  check "man page names config key $k" grep -q -- "^\.BR\{0,1\} $k\\b" "$MAN"
done
for opt in $SERVE_OPTS; do
  case $opt in config | demo | check | help) continue ;; esac # command line only
  k=${opt//-/_}
  check "option --$opt is in docs/serve.md's key table ($k)" bash -c "printf '%s\n' '$KEYS' | grep -qx '$k'"
done

echo "serve help tests: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
