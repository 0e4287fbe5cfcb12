#!/usr/bin/env bash
# One set of rules for the command, jwtkit serve and jwtkit gate: the same
# duration strings and listen addresses get the same answer from each
# (secret files: tests/gate/test_secret_rule.sh).  Before the shared layer
# they drifted: `1w` was a duration only in serve, serve took `localhost` as
# a listen address and gate did not, gate took port 0.
#   durations: jwtkit sign --ttl, jwtkit serve client add --ttl, and a
#              gate route's max_age (through jwtkit gate --check);
#   listen:    jwtkit serve --listen (followed by a setting that stops it, so
#              an accepted address is one whose error names something else),
#              jwtkit gate --listen and the gate file's listen key (--check).
# Each value also has the answer the rules document (docs/serve.md,
# docs/gateway.md): the programs must agree with each other AND with it.
set -u
J=${1:?usage: test_rules.sh JWTKIT}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cd "$t" || exit 2
pass=0 fail=0
check() { # check NAME WANT GOT
  if [ "$2" = "$3" ]; then pass=$((pass + 1)); else echo "FAIL - $1: want $2, got $3"; fail=$((fail + 1)); fi
}

"$J" keygen --alg ES256 --out es.pem >/dev/null 2>&1 || { echo "FAIL - keygen"; exit 1; }
"$J" jwk es.pem >es.jwk 2>/dev/null
[ -s es.jwk ] || { echo "FAIL - jwtkit jwk es.pem made no JWK"; exit 1; }

gate_conf() { # gate_conf FILE LISTEN MAXAGE
  {
    [ -n "$2" ] && printf '[gate]\nlisten = %s\n\n' "$2"
    printf '[route api]\nmatch_path_prefix = /\nissuer = https://issuer.test\naudience = api\nalgs = ES256\n'
    printf 'key_file = %s/es.jwk\n' "$t"
    [ -n "$3" ] && printf 'max_age = %s\n' "$3"
  } >"$1"
}

# --- durations --------------------------------------------------------------
# value / accepted (1) or refused (0); all within every key's range (1s..7d)
durations=(
  "90s 1" "15m 1" "2h 1" "1d 1" "1w 1" "3600 1" "1s 1"
  "1.5h 0" "-5m 0" "1y 0" "15 m 0" "m 0" "1h30m 0" "15M 0" "0x10 0" "+5m 0" "9999999999999999999999 0"
)
for d in "${durations[@]}"; do
  v=${d% *} want=${d##* }
  "$J" sign --key es.pem --alg ES256 --iss i --sub s --aud a --ttl "$v" >/dev/null 2>&1 && got=1 || got=0
  check "jwtkit sign --ttl '$v'" "$want" "$got"
  rm -f clients.conf
  "$J" serve client add c1 --clients clients.conf --audience api --ttl "$v" >/dev/null 2>&1 && got=1 || got=0
  check "jwtkit serve client add --ttl '$v'" "$want" "$got"
  gate_conf g.conf "" "$v"
  "$J" gate --config g.conf --check >/dev/null 2>&1 && got=1 || got=0
  check "jwtkit gate max_age = '$v'" "$want" "$got"
done

# --- listen addresses -------------------------------------------------------
listens=(
  "127.0.0.1:8080 1" "localhost:8080 1" "[::1]:8080 1" "0.0.0.0:65535 1" "127.0.0.1:1 1"
  "127.0.0.1:0 0" "127.0.0.1 0" ":8080 0" "0.0.0.0:65536 0" "host.example:80 0" "[::1 0"
  "127.0.0.1:80x 0" "127.0.0.1:-1 0" "256.0.0.1:80 0" "LOCALHOST:80 0"
)
for d in "${listens[@]}"; do
  v=${d% *} want=${d##* }
  # serve: an accepted address lets it go on to --token-ttl, which stops it
  out=$(timeout 10 "$J" serve --listen "$v" --token-ttl not-a-duration --keyring kr 2>&1)
  case $out in *token_ttl*) got=1 ;; *listen*) got=0 ;; *) got="?($out)" ;; esac
  check "jwtkit serve --listen '$v'" "$want" "$got"
  gate_conf g.conf "" ""
  "$J" gate --config g.conf --listen "$v" --check >/dev/null 2>&1 && got=1 || got=0
  check "jwtkit gate --listen '$v'" "$want" "$got"
  gate_conf g.conf "$v" ""
  "$J" gate --config g.conf --check >/dev/null 2>&1 && got=1 || got=0
  check "jwtkit gate listen = '$v'" "$want" "$got"
done

echo "rules: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
