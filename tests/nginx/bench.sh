#!/usr/bin/env bash
# The module's throughput next to no authentication and to jwtkit gate
# behind auth_request, through one nginx serving one static file (wrk on
# loopback): 1 s warm-up each, then BENCH_ROUNDS rounds of BENCH_SECONDS s
# alternating the kinds, the median per kind, printed as a table with each
# kind's share of "none".  The machine's speed drifts between rounds by
# more than the module costs, so the module with its token cache is also
# compared with "none" round by round (the two run one after the other) and
# the median of those paired ratios is printed.  A benchmark, not a test: nothing is asserted
# about speed; the ctest nginx_bench runs it for 1 s per kind and checks
# only that every answer was a 200 (docs/performance.md).
#
#   none            no authentication
#   module ES256    auth_jwt with an ES256 key file, no token cache
#   module RS256    auth_jwt with an RS256 key file, no token cache
#   module + cache  auth_jwt (ES256) with auth_jwt_token_cache on in its
#                   location (every kind is a location of the same nginx)
#   gate+cache      auth_request to jwtkit gate with its token cache
#
# Needs what tests/nginx/lib.sh needs (ctest sets it): NGINX_MODULE,
# GATE_BIN, ISSUER_BIN, MINT_BIN, GATE_TESTS_DIR.
source "$(dirname "$0")/lib.sh"
command -v wrk >/dev/null || skip_or_fail "wrk is not installed (apt-get install wrk)"
DUR=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CONN=${BENCH_CONNECTIONS:-32}
NGINX_WORKERS=${NGINX_WORKERS:-auto}

start_issuer --cache-control max-age=3600 --algs RS256,ES256
curl -sf "$(JWKS_URL)" -o "$TMP/keys.jwks" || { echo "cannot fetch the issuer's JWK Set"; exit 1; }
write_gate_conf <<'EOC'
[gate]
token_cache = 10000
[route api]
issuer = https://issuer.test
audience = api
jwks_url = @ISSUER@/jwks.json
allow_http_jwks = true
algs = RS256, ES256
header X-User = sub
EOC
start_gate
wait_for 10 gate_ready
mkdir -p "$TMP/static"
echo "hello from the protected static file" >"$TMP/static/index.txt"
start_nginx_module <<'EOC'
    error_log /dev/null crit;
    auth_jwt_issuer https://issuer.test;
    auth_jwt_audience api;
    auth_jwt_key_file @TMP@/keys.jwks;
    location /b/none/ { alias @TMP@/static/; }
    location /b/es256/ { auth_jwt "api"; auth_jwt_algs ES256 RS256; add_header X-User $jwt_claim_sub; alias @TMP@/static/; }
    location /b/cache/ {
      auth_jwt "api";
      auth_jwt_algs ES256 RS256;
      auth_jwt_token_cache on;
      add_header X-User $jwt_claim_sub;
      alias @TMP@/static/;
    }
    location /b/rs256/ { auth_jwt "api"; auth_jwt_algs ES256 RS256; add_header X-User $jwt_claim_sub; alias @TMP@/static/; }
    location = /_auth {
      internal;
      proxy_pass http://jwtkit_gate/auth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Host $host;
    }
    location /b/gate/ {
      auth_request /_auth;
      auth_request_set $gate_user $upstream_http_x_user;
      add_header X-User $gate_user;
      alias @TMP@/static/;
    }
EOC
es=$(mint ES256 --iss https://issuer.test --aud api --sub bench --ttl 3600)
rs=$(mint RS256 --iss https://issuer.test --aud api --sub bench --ttl 3600)
KINDS=(none cache es256 rs256 gate) # none and cache side by side: their ratio is taken per round
declare -A TOK=([none]=$es [es256]=$es [rs256]=$rs [cache]=$es [gate]=$es)
declare -A LABEL=([none]="none" [es256]="module ES256" [rs256]="module RS256" [cache]="module ES256 + token cache"
  [gate]="gate+cache (auth_request)")
for k in "${KINDS[@]}"; do
  _req "http://127.0.0.1:$NGINX_PORT/b/$k/index.txt" -H "Authorization: Bearer ${TOK[$k]}"
  check "/b/$k/ serves the file with the token" test "$STATUS" = 200
done
call /b/es256/index.txt -H "Authorization: Bearer ${es}x"
check "/b/es256/ refuses a bad token" test "$STATUS" = 401

run() { # run KIND SECONDS -> "rps non2xx errors"
  local out=$TMP/bench-$1-$2.txt
  wrk -t2 -c"$CONN" -d"$2s" --timeout 5s -H "Authorization: Bearer ${TOK[$1]}" \
    "http://127.0.0.1:$NGINX_PORT/b/$1/index.txt" >"$out" 2>&1
  local rps non2xx errs
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
  errs=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$out")
  echo "${rps:-0} ${non2xx:-0} ${errs:-0}"
}
for k in "${KINDS[@]}"; do run "$k" 1 >/dev/null; done
declare -A RPS BAD ALL
for k in "${KINDS[@]}"; do RPS[$k]=""; BAD[$k]=0; done
for _ in $(seq "$ROUNDS"); do
  for k in "${KINDS[@]}"; do
    read -r rps non2xx errs < <(run "$k" "$DUR")
    RPS[$k]="${RPS[$k]} $rps"
    BAD[$k]=$((BAD[$k] + non2xx + errs))
  done
done
median() { python3 -c "import statistics, sys; print(f'{statistics.median(map(float, sys.argv[1:])):.0f}')" $1; }
for k in "${KINDS[@]}"; do
  all=${RPS[$k]}
  ALL[$k]=$all
  RPS[$k]=$(median "$all")
  log "$k: requests/s per round:$all -> median ${RPS[$k]}"
  check "$k: every answer a 200 (${BAD[$k]} not, or socket errors)" test "${BAD[$k]}" = 0
done
echo
printf '%-28s %12s %10s\n' "nginx $(nproc) CPU(s), wrk -c$CONN" "requests/s" "of none"
for k in "${KINDS[@]}"; do
  printf '%-28s %12s %9s%%\n' "${LABEL[$k]}" "${RPS[$k]}" \
    "$(python3 -c "print(f'{100 * float(${RPS[$k]}) / max(1.0, float(${RPS[none]})):.0f}')")"
done
printf '%-28s %12s\n' "module+cache / none, paired" "$(python3 -c "
import statistics, sys
n, c = sys.argv[1].split(), sys.argv[2].split()
r = [float(b) / max(1.0, float(a)) for a, b in zip(n, c)]
print(f'{statistics.median(r):.2f} (rounds {min(r):.2f}..{max(r):.2f})')" "${ALL[none]}" "${ALL[cache]}")"
printf '%-28s %12s\n' "module ES256 / gate+cache" "$(python3 -c "print(f'{float(${RPS[es256]}) / max(1.0, float(${RPS[gate]})):.2f}x')")"
printf '%-28s %12s\n' "module+cache / gate+cache" "$(python3 -c "print(f'{float(${RPS[cache]}) / max(1.0, float(${RPS[gate]})):.2f}x')")"
echo
finish
