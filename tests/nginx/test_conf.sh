#!/usr/bin/env bash
# nginx -t with ngx_http_jwtkit_module: every refused configuration is
# reported with the file and line of the directive at fault (the auth_jwt
# line for what is missing), and says what is wrong; a good one passes.
source "$(dirname "$0")/lib.sh"

D=$TMP/conf
mkdir -p "$D"
[ -x "${JWTKIT_CLI_BIN:-}" ] || skip_or_fail "the jwtkit command is not built (JWTKIT_CLI_BIN)"
"$JWTKIT_CLI_BIN" keygen --alg ES256 --out "$D/ec.key" --pub "$D/ec.pub" >"$D/keygen.out" 2>&1 ||
  { echo "jwtkit keygen failed"; cat "$D/keygen.out"; exit 1; }
chmod 644 "$D/ec.key" "$D/ec.pub"

n=0
# try "what" EXPECTED-REGEX [MARK] <<< server lines: nginx -t must fail with
# the message, at the line holding MARK (a comment "# <-" on the line at fault)
try() {
  local what=$1 want=$2 conf line
  n=$((n + 1))
  conf=$D/t$n.conf
  {
    nginx_head "$D"
    echo "http {"
    nginx_http_head "$D"
    echo "  server {"
    echo "    listen 127.0.0.1:$(free_port);"
    sed -e "s#@D@#$D#g"
    echo "  }"
    echo "}"
  } >"$conf"
  if [ "$want" = ok ]; then
    nginx_t "$conf"
    check "$what: nginx -t passes" test $? = 0
    [ $? = 0 ] || echo "$NGINX_T_OUT"
    return
  fi
  line=$(grep -n '# <-' "$conf" | head -1 | cut -d: -f1)
  nginx_t "$conf" && { check "$what: nginx -t fails" false; return; }
  check "$what: says \"$want\"" grep -qE -- "$want" <<<"$NGINX_T_OUT"
  check "$what: at $conf:$line" grep -qF -- "in $conf:$line" <<<"$NGINX_T_OUT"
  grep -qF -- "in $conf:$line" <<<"$NGINX_T_OUT" && grep -qE -- "$want" <<<"$NGINX_T_OUT" || echo "$NGINX_T_OUT"
}

try "a good configuration" ok <<'EOC'
    auth_jwt_algs ES256;
    location / {
      auth_jwt "api";
      auth_jwt_key_file @D@/ec.pub;
      auth_jwt_issuer https://issuer.test;
      auth_jwt_audience api other;
      auth_jwt_leeway 30s;
      auth_jwt_type at+jwt;
      auth_jwt_require_claim scope contains read;
      auth_jwt_require_claim sub;
    }
    location /open/ { auth_jwt off; }
EOC
try "the token cache per location" ok <<'EOC'
    auth_jwt_algs ES256;
    auth_jwt_key_file @D@/ec.pub;
    auth_jwt_token_cache on;
    location / { auth_jwt "api"; }
    location /fresh/ { auth_jwt "api"; auth_jwt_token_cache off; }
EOC
try "a number of cache entries in a location" "a server or location takes on or off" <<'EOC'
    location / { auth_jwt "api"; auth_jwt_algs ES256; auth_jwt_key_file @D@/ec.pub;
      auth_jwt_token_cache 5000; # <-
    }
EOC
try "the token cache given twice at one level" "is duplicate" <<'EOC'
    location / { auth_jwt "api"; auth_jwt_algs ES256; auth_jwt_key_file @D@/ec.pub; auth_jwt_token_cache on;
      auth_jwt_token_cache off; # <-
    }
EOC
try "a key file relative to the configuration's directory" ok <<'EOC'
    location / { auth_jwt "api"; auth_jwt_algs ES256; auth_jwt_key_file ec.pub; }
EOC
try "auth_jwt_algs missing" "auth_jwt_algs is required where auth_jwt is on" <<'EOC'
    auth_jwt_key_file @D@/ec.pub;
    location / {
      auth_jwt "api"; # <-
    }
EOC
try "auth_jwt on at server level without algs, algs only in a location" "auth_jwt_algs is required" <<'EOC'
    auth_jwt "api"; # <-
    auth_jwt_key_file @D@/ec.pub;
    location / { auth_jwt_algs ES256; }
EOC
try "none in auth_jwt_algs" '"none" is never accepted' <<'EOC'
    location / {
      auth_jwt "api";
      auth_jwt_algs ES256 none; # <-
      auth_jwt_key_file @D@/ec.pub;
    }
EOC
try "HS256 in auth_jwt_algs" "HS256 is not accepted" <<'EOC'
    location / {
      auth_jwt "api";
      auth_jwt_algs HS256; # <-
      auth_jwt_key_file @D@/ec.pub;
    }
EOC
try "an unknown algorithm" 'unknown algorithm "ES257"' <<'EOC'
    auth_jwt_algs ES257; # <-
EOC
try "a key file that cannot be read" "auth_jwt_key_file: key_file $D/missing.pem: " <<'EOC'
    location / {
      auth_jwt "api";
      auth_jwt_algs ES256;
      auth_jwt_key_file @D@/ec.pub;
      auth_jwt_key_file @D@/missing.pem; # <-
    }
EOC
if [ "$(id -u)" != 0 ]; then
  cp "$D/ec.pub" "$D/noread.pub" && chmod 000 "$D/noread.pub"
  try "a key file without read permission" "auth_jwt_key_file: key_file $D/noread.pub" <<'EOC'
    location / { auth_jwt "api"; auth_jwt_algs ES256;
      auth_jwt_key_file @D@/noread.pub; # <-
    }
EOC
fi
try "a private key as key file" "holds a private key" <<'EOC'
    location / {
      auth_jwt "api";
      auth_jwt_algs ES256;
      auth_jwt_key_file @D@/ec.key; # <-
    }
EOC
try "a key for an algorithm not in auth_jwt_algs" "is for ES256, which route .* does not allow" <<'EOC'
    location / {
      auth_jwt "api";
      auth_jwt_algs RS256;
      auth_jwt_key_file @D@/ec.pub; # <-
    }
EOC
try "no key source" "auth_jwt needs auth_jwt_key_file .* or auth_jwt_jwks URL" <<'EOC'
    location / {
      auth_jwt "api"; # <-
      auth_jwt_algs ES256;
    }
EOC
try "a realm with a quote" "realm: printable ASCII without" <<'EOC'
    location / { auth_jwt 'a"b'; } # <-
EOC
try "a bad cookie name" "'token_cookie': bad cookie name" <<'EOC'
    auth_jwt_token_cookie "a b"; # <-
EOC
try "Cookie as the token header" "'token_header' cannot be Cookie" <<'EOC'
    auth_jwt_token_header Cookie; # <-
EOC
try "a bad leeway" "'leeway': bad duration \"5parsecs\"" <<'EOC'
    auth_jwt_leeway 5parsecs; # <-
EOC
try "an unknown claim check" 'unknown check "has" for claim scope' <<'EOC'
    auth_jwt_require_claim scope has read; # <-
EOC
try "contains with two words" "contains: one word" <<'EOC'
    auth_jwt_require_claim scope contains "read write"; # <-
EOC
try "auth_jwt_algs given twice" '"auth_jwt_algs" directive is duplicate' <<'EOC'
    auth_jwt_algs ES256;
    auth_jwt_algs RS256; # <-
EOC
try "algs separated by a comma" "one algorithm per argument" <<'EOC'
    auth_jwt_algs ES256,RS256; # <-
EOC
try "a JWK Set URL (nothing is fetched by nginx -t)" ok <<'EOC'
    location / { auth_jwt "api"; auth_jwt_algs ES256; auth_jwt_jwks https://id.example.com/jwks.json; }
    location /local/ { auth_jwt "api"; auth_jwt_algs ES256; auth_jwt_jwks http://127.0.0.1:1/jwks.json allow_http; }
EOC
try "a plain http:// JWK Set URL without allow_http" "is plain http://; use https:// or add allow_http" <<'EOC'
    auth_jwt_jwks http://id.example.com/jwks.json; # <-
EOC
try "a JWK Set URL that is not http(s)" "'jwks_url' must be an https:// URL" <<'EOC'
    auth_jwt_jwks ftp://id.example.com/jwks.json; # <-
EOC
try "an unknown auth_jwt_jwks option" 'unknown option "allow_ftp"' <<'EOC'
    auth_jwt_jwks https://id.example.com/jwks.json allow_ftp; # <-
EOC
# auth_jwt_jwks_settings (http level): the core's jwks_* keys, unavailable=401|503
try_settings() { # try_settings "what" EXPECTED "SETTINGS"
  local what=$1 want=$2 conf
  n=$((n + 1))
  conf=$D/t$n.conf
  {
    nginx_head "$D"
    echo "http {"
    nginx_http_head "$D"
    echo "  auth_jwt_jwks_settings $3;"
    echo "  server { listen 127.0.0.1:$(free_port); location / { auth_jwt \"api\"; auth_jwt_algs ES256; auth_jwt_key_file ec.pub; } }"
    echo "}"
  } >"$conf"
  local line
  line=$(grep -n 'auth_jwt_jwks_settings' "$conf" | cut -d: -f1)
  if [ "$want" = ok ]; then
    nginx_t "$conf"
    check "$what: nginx -t passes" test $? = 0
    return
  fi
  nginx_t "$conf" && { check "$what: nginx -t fails" false; return; }
  check "$what: says \"$want\"" grep -qE -- "$want" <<<"$NGINX_T_OUT"
  check "$what: at $conf:$line" grep -qF -- "in $conf:$line" <<<"$NGINX_T_OUT"
}
try_settings "the token cache" ok "cooldown=5s; auth_jwt_token_cache 5000"
try_settings "a bad token cache size" "auth_jwt_token_cache: on, off or a number of entries" "cooldown=5s; auth_jwt_token_cache lots"
try_settings "a token cache of 0 entries" "0 entries \\(use off\\)" "cooldown=5s; auth_jwt_token_cache 0"
try_settings "every JWK Set setting" ok \
  "timeout=2s max_bytes=32768 min_ttl=10s max_ttl=2h default_ttl=10m refresh_ahead=1m cooldown=5s stale_max=12h unavailable=401"
try_settings "a timeout in ms" ok "timeout=500ms"
try_settings "a bad duration" "'jwks_cooldown': bad duration \"soon\"" "cooldown=soon"
try_settings "an unknown setting" 'unknown setting "speed"' "speed=9"
try_settings "unavailable=500" "unavailable: expected 401 or 503" "unavailable=500"
try_settings "a setting given twice" "'jwks_cooldown' given twice" "cooldown=1s cooldown=2s"
try_settings "min_ttl above max_ttl" "min_ttl \(600 s\) is larger than max_ttl \(60 s\)" "min_ttl=10m max_ttl=1m"
# migration mode: the secret-file rule on the opened file, never a key as a secret
head -c 32 /dev/urandom | base64 -w0 >"$D/legacy.secret"
chmod 600 "$D/legacy.secret"
cp "$D/legacy.secret" "$D/open.secret" && chmod 644 "$D/open.secret"
cp "$D/ec.pub" "$D/pem.secret" && chmod 600 "$D/pem.secret"
try "migration mode" ok <<'EOC'
    location / { auth_jwt "api"; auth_jwt_algs ES256; auth_jwt_key_file ec.pub;
      auth_jwt_legacy_hs256 secret_file=legacy.secret deadline=2030-01-01T00:00:00Z; }
EOC
try "a legacy secret readable by others" "auth_jwt_legacy_hs256: $D/open.secret has mode 0644" <<'EOC'
    auth_jwt_legacy_hs256 secret_file=@D@/open.secret deadline=2030-01-01T00:00:00Z; # <-
EOC
try "a PEM key as the legacy secret" "auth_jwt_legacy_hs256: $D/pem.secret: the secret is a PEM block" <<'EOC'
    auth_jwt_legacy_hs256 secret_file=@D@/pem.secret deadline=2030-01-01T00:00:00Z; # <-
EOC
try "a deadline that is not RFC 3339" "expected an RFC 3339 time" <<'EOC'
    auth_jwt_legacy_hs256 secret_file=@D@/legacy.secret deadline=tomorrow; # <-
EOC
try "an unknown migration argument" 'unknown argument "secret=x"' <<'EOC'
    auth_jwt_legacy_hs256 secret=x deadline=2030-01-01T00:00:00Z; # <-
EOC
finish
