#!/usr/bin/env bash
# One secret rule in the command, jwtkit serve and jwtkit gate: the same
# secret files get the same answer from all three.  The seed scenario: an
# HS256 token made by `jwtkit sign --secret-file F` passes `jwtkit gate` in
# migration mode with legacy_hs256_secret_file = F, whatever F's line ending.
#   - one trailing "\n" or "\r\n" is not part of the secret, anything else is;
#   - a file that gives group or others any access is refused (checked on the
#     opened file), naming the mode and "chmod 600";
#   - a key (PEM, JWK, DER) is never a secret;
#   - a secret shorter than the hash is refused.
source "$(dirname "$0")/lib.sh"
JWTKIT=${JWTKIT_CLI_BIN:?}
[ -x "$JWTKIT" ] || { echo "SKIP: the jwtkit command is not built"; exit 77; }

start_issuer --algs RS256
GATE_PORT=$(free_port)
deadline=$(date -u -d "@$(($(date +%s) + 3600))" +%Y-%m-%dT%H:%M:%SZ)
gate_conf() { # gate_conf SECRETFILE
  write_gate_conf <<CONF
[route api]
match_path_prefix = /
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = RS256
legacy_hs256_secret_file = $1
legacy_deadline = $deadline
CONF
}
serve_check() { # serve_check SECRETFILE: start jwtkit serve with it; "ok" when it serves, else its error
  local port conf=$TMP/serve.conf
  port=$(free_port)
  cat >"$conf" <<CONF
listen = 127.0.0.1:$port
keyring = $TMP/serve-ring
clients = $TMP/serve-clients.conf
legacy_hs256_secret_file = $1
CONF
  "$JWTKIT" serve --config "$conf" >"$TMP/serve.out" 2>"$TMP/serve.err" &
  local pid=$! tries=0
  while kill -0 "$pid" 2>/dev/null && [ $tries -lt 100 ]; do # until it serves, stops or 10 s passed
    if curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; then
      kill -TERM "$pid"
      wait "$pid" 2>/dev/null
      echo ok
      return
    fi
    sleep 0.1
    tries=$((tries + 1))
  done
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  echo "exit $? $(cat "$TMP/serve.err")"
}
gate_check() { # gate_check SECRETFILE: "ok" or exit status and message of --check
  gate_conf "$1"
  if "$GATE_BIN" --config "$TMP/gate.conf" --check >"$TMP/check.out" 2>&1; then echo ok; else echo "exit $? $(cat "$TMP/check.out")"; fi
}
sign_check() { # sign_check SECRETFILE: "ok" or exit status and message
  if "$JWTKIT" sign --secret-file "$1" --alg HS256 --iss https://issuer.test --aud api --sub s \
    >"$TMP/tok" 2>"$TMP/sign.err"; then echo ok; else echo "exit $? $(cat "$TMP/sign.err")"; fi
}
"$JWTKIT" serve client add demo --audience api --clients "$TMP/serve-clients.conf" >/dev/null 2>&1

base=jwtkit-secret-rule-0123456789-abcdef
# --- accepted, and the same key in all three: sign with the command, pass the gate
for ending in none lf crlf; do
  f=$TMP/secret-$ending
  case $ending in none) printf '%s' "$base" >"$f" ;; lf) printf '%s\n' "$base" >"$f" ;; crlf) printf '%s\r\n' "$base" >"$f" ;; esac
  chmod 600 "$f"
  check "ending $ending: jwtkit sign takes it" test "$(sign_check "$f")" = ok
  check "ending $ending: jwtkit serve takes it" test "$(serve_check "$f")" = ok
  gate_conf "$f"
  start_gate
  tok=$(cat "$TMP/tok")
  auth -H "$(bearer "$tok")"
  check "ending $ending: the gate accepts the command's HS256 token (legacy mode)" test "$STATUS" = 204
  # a token made from the bare secret passes too: one key for every ending
  tok2=$("$JWTKIT" sign --secret-file "$TMP/secret-none" --alg HS256 --iss https://issuer.test --aud api --sub s2)
  auth -H "$(bearer "$tok2")"
  check "ending $ending: the same key as the bare secret" test "$STATUS" = 204
  stop_gate
done

# --- refused, with the same reason from all three
refuse() { # refuse WHAT FILE PATTERN
  local s g v
  s=$(sign_check "$2")
  v=$(serve_check "$2")
  g=$(gate_check "$2")
  check "$1: jwtkit sign refuses (exit 2): ${s:0:150}" grep -q "^exit 2 .*$3" <<<"$s"
  check "$1: jwtkit serve refuses (exit 2): ${v:0:150}" grep -q "^exit 2 .*$3" <<<"$v"
  check "$1: jwtkit gate --check refuses (exit 2): ${g:0:150}" grep -q "^exit 2 .*$3" <<<"$g"
}
for mode in 644 640 604; do
  cp "$TMP/secret-lf" "$TMP/open-$mode"
  chmod "$mode" "$TMP/open-$mode"
  refuse "mode $mode" "$TMP/open-$mode" "has mode 0$mode.*chmod 600"
done
cp "$ISSUER_DIR/RS256.pub.pem" "$TMP/pem-as-secret"
chmod 600 "$TMP/pem-as-secret"
refuse "a PEM public key" "$TMP/pem-as-secret" "the secret is a PEM block: a key is never an HMAC secret"
"$JWTKIT" jwk --alg RS256 "$ISSUER_DIR/RS256.pub.pem" >"$TMP/jwk-as-secret"
chmod 600 "$TMP/jwk-as-secret"
refuse "a JWK" "$TMP/jwk-as-secret" "the secret is a JWK"
printf 'short-secret-0123456789\n' >"$TMP/short"
chmod 600 "$TMP/short"
refuse "a 23-byte secret" "$TMP/short" "at least 32 bytes"
# 31 bytes and a newline: the newline does not count toward the length
printf '%s\n' "0123456789012345678901234567890" >"$TMP/short31"
chmod 600 "$TMP/short31"
refuse "31 bytes and a newline" "$TMP/short31" "at least 32 bytes.*got 31"

finish
