#!/usr/bin/env bash
# auth_jwt_legacy_hs256 (migration mode, the core's): HS256 tokens signed
# with the legacy secret pass until the deadline, RS256 tokens from the JWK
# Set always; after the deadline HS256 is refused (legacy_deadline_passed);
# an HS256 token signed with another secret or with the issuer's public key
# never passes; the secret never reaches the log.
source "$(dirname "$0")/lib.sh"

start_issuer --cache-control max-age=300 --algs RS256
head -c 48 /dev/urandom | base64 -w0 | tr -d '\n' >"$TMP/legacy.raw"
{ cat "$TMP/legacy.raw"; echo; } >"$TMP/legacy.key" # one trailing newline: not part of the secret
head -c 48 /dev/urandom | base64 -w0 | tr -d '\n' >"$TMP/other.key"
chmod 600 "$TMP/legacy.key" "$TMP/legacy.raw" "$TMP/other.key"
start_upstream
deadline_epoch=$(($(date +%s) + 8))
deadline=$(date -u -d "@$deadline_epoch" +%Y-%m-%dT%H:%M:%SZ)
start_nginx_module <<EOC
    location /api/ {
      auth_jwt "api";
      auth_jwt_algs RS256;
      auth_jwt_jwks $(JWKS_URL) allow_http;
      auth_jwt_issuer https://issuer.test;
      auth_jwt_audience api;
      auth_jwt_legacy_hs256 secret_file=@TMP@/legacy.key deadline=$deadline;
      add_header X-Jwt-Error \$jwt_error always;
      proxy_set_header X-User \$jwt_claim_sub;
      proxy_pass http://app;
    }
EOC
claims=(--iss https://issuer.test --aud api)
legacy() { "$MINT_BIN" --alg HS256 --secret-file "$TMP/legacy.raw" "${claims[@]}" "$@"; }
err() { grep -i '^X-Jwt-Error:' <<<"$HEADERS" | sed 's/^[^:]*: *//'; }

tok=$(legacy --sub legacy-user)
call /api/x -H "Authorization: Bearer $tok"
check "before the deadline: a legacy HS256 token passes (got $STATUS)" test "$STATUS" = 200
check "its claims reach the upstream" body_has "X-User: legacy-user"
call /api/x -H "Authorization: Bearer $(mint RS256 "${claims[@]}" --sub alice)"
check "an RS256 token from the JWK Set passes" test "$STATUS" = 200
call /api/x -H "Authorization: Bearer $("$MINT_BIN" --alg HS256 --secret-file "$TMP/other.key" "${claims[@]}" --sub x)"
check "HS256 with another secret -> 401 bad_signature" test "$STATUS:$(err)" = 401:bad_signature
confused=$("$MINT_BIN" --alg HS256 --secret-file "$ISSUER_DIR/RS256.pub.pem" --kid "$(cat "$ISSUER_DIR/RS256.kid")" \
  "${claims[@]}" --sub x)
call /api/x -H "Authorization: Bearer $confused"
check "HS256 signed with the issuer's public key -> 401" test "$STATUS" = 401
call /api/x -H "Authorization: Bearer $(legacy --sub y --ttl -600)"
check "an expired legacy token -> 401 expired" test "$STATUS:$(err)" = 401:expired

while [ "$(date +%s)" -le "$deadline_epoch" ]; do sleep 0.2; done
call /api/x -H "Authorization: Bearer $tok"
check "after the deadline: the legacy token -> 401 legacy_deadline_passed" test "$STATUS:$(err)" = 401:legacy_deadline_passed
check "... with error=\"invalid_token\"" test "$(www_auth)" = 'Bearer realm="api", error="invalid_token"'
check "the refusal says why in the error log" grep -q "legacy_deadline_passed: valid legacy HS256 token after the migration deadline" "$NGINX_DIR/logs/error.log"
call /api/x -H "Authorization: Bearer $(mint RS256 "${claims[@]}" --sub alice)"
check "after the deadline RS256 still passes" test "$STATUS" = 200
check "the secret is not in the log" bash -c "! grep -qF '$(cat "$TMP/legacy.raw")' '$NGINX_DIR/logs/error.log'"
finish
