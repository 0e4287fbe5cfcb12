#!/bin/bash
# Build the libFuzzer harnesses and run each for a while.
#
#   fuzz/run.sh [SECONDS_PER_HARNESS] [HARNESS...]
#
# SECONDS_PER_HARNESS defaults to 60; HARNESS names default to all of:
# token json jwk jwks pem claims keyring b64url p11uri, and (when libmicrohttpd and
# libcurl are installed) serve_config serve_clients serve_http gate_config
# gate_request ui_api; nginx_args (the nginx module's argument parsing).
# Environment: FUZZ_BUILD (build directory, default build-fuzz at the top of
# the checkout), FUZZ_JOBS (harnesses run at the same time, default 1),
# CC (default clang), JWTKIT_VECTORS (seed vectors, see make-corpus.sh).
#
# Corpora grow in fuzz/corpus-<harness>/ (git-ignored), crash inputs land in
# fuzz/artifacts/, logs in fuzz/logs/.  Prints one line per harness
# (executions, exec/s, corpus size, crash or not) and exits 1 when any
# harness found a crash, leak, timeout or out-of-memory input.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

secs="${1:-60}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
  echo "usage: fuzz/run.sh [SECONDS_PER_HARNESS] [HARNESS...]" >&2
  exit 2
fi
shift || true
all=(token json jwk jwks pem claims keyring b64url p11uri serve_config serve_clients serve_http gate_config gate_request
     ui_api nginx_args)
if [ $# -gt 0 ]; then harnesses=("$@"); else harnesses=("${all[@]}"); fi
for h in "${harnesses[@]}"; do
  [[ " ${all[*]} " == *" $h "* ]] || { echo "fuzz/run.sh: unknown harness '$h' (have: ${all[*]})" >&2; exit 2; }
done

build="${FUZZ_BUILD:-$root/build-fuzz}"
jobs="${FUZZ_JOBS:-1}"
cc="${CC:-clang}"
command -v "$cc" >/dev/null || { echo "fuzz/run.sh: $cc not found (libFuzzer needs clang)" >&2; exit 2; }

declare -A maxlen=([token]=8192 [json]=4096 [jwk]=8192 [jwks]=16384 [pem]=8192 [claims]=4096 [keyring]=16384
                   [b64url]=1024 [p11uri]=4200 [serve_config]=8192 [serve_clients]=16384 [serve_http]=8192 [gate_config]=8192
                   [gate_request]=8192 [ui_api]=16384 [nginx_args]=2048)
# the service harnesses have their own dictionary (HTTP fields, config keys)
dict_of() {
  case "$1" in
    serve_* | gate_*) echo "$here/services.dict" ;;
    p11uri) echo "$here/pkcs11.dict" ;;
    ui_*) echo "$here/ui.dict" ;;
    *) echo "$here/jose.dict" ;;
  esac
}

echo "== building the harnesses in $build"
cmake -S "$here" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

# the service harnesses are built only with libmicrohttpd (and libcurl)
selected=()
for h in "${harnesses[@]}"; do
  if [ -x "$build/fuzz_$h" ]; then
    selected+=("$h")
  else
    echo "fuzz/run.sh: skipping $h: not built (libmicrohttpd or libcurl missing?)" >&2
  fi
done
harnesses=("${selected[@]}")

echo "== seed corpora"
"$here/make-corpus.sh" || echo "fuzz/run.sh: warning: no seeds from the vectors; the corpora start from what they hold" >&2

mkdir -p "$here/artifacts" "$here/logs"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

artifacts_of() { find "$here/artifacts" -maxdepth 1 -type f -name "$1-*" 2>/dev/null | sort; }

run_one() {
  local h="$1" corpus="$here/corpus-$h" log="$here/logs/$h.log"
  mkdir -p "$corpus"
  local before; before="$(find "$corpus" -type f | wc -l)"
  artifacts_of "$h" >"$here/logs/$h.artifacts-before"
  local rc=0
  "$build/fuzz_$h" -max_total_time="$secs" -max_len="${maxlen[$h]}" -dict="$(dict_of "$h")" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$here/artifacts/$h-" \
    "$corpus" >"$log" 2>&1 || rc=$?
  local after; after="$(find "$corpus" -type f | wc -l)"
  local execs rate
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  local new; new="$(artifacts_of "$h" | comm -13 "$here/logs/$h.artifacts-before" - | tr '\n' ' ')"
  local verdict="no crash"
  if [ "$rc" -ne 0 ] || [ -n "$new" ]; then
    verdict="CRASH (exit $rc) ${new:-see $log}"
  fi
  printf '%-13s %6ss %12s %9s %7s -> %-7s %s\n' "$h" "$secs" "${execs:-?}" "${rate:-?}" "$before" "$after" \
    "$verdict" >"$here/logs/$h.summary"
  [ "$rc" -eq 0 ] && [ -z "$new" ]
}

echo "== fuzzing ${#harnesses[@]} harness(es), ${secs}s each, $jobs at a time (logs in fuzz/logs/)"
failed=0
running=0
for h in "${harnesses[@]}"; do
  run_one "$h" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done

printf '\n%-13s %7s %12s %9s %18s %s\n' harness time executions exec/s "corpus (start->end)" result
for h in "${harnesses[@]}"; do cat "$here/logs/$h.summary"; done
if [ "$failed" -ne 0 ]; then
  echo "fuzz: crash found: reproduce with $build/fuzz_<harness> fuzz/artifacts/<file>" >&2
  exit 1
fi
echo "fuzz: no crash"
