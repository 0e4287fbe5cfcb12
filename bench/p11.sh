#!/bin/bash
# Sign throughput of keys in a PKCS#11 token (SoftHSM2) next to key files,
# ES256 and RS256, with 1, 2 and 4 threads sharing one signer, and the
# token's own ceiling (C_Sign in a loop, a session per thread, no jwtkit:
# build/bench/jwtkit-p11-floor).
#
#   bench/p11.sh [BUILD_DIR] [SECONDS] [RUNS]     (defaults: build 1 3)
#
# Makes a SoftHSM token in a temporary directory (removed on exit), keys in
# it with `jwtkit keygen --pkcs11` and key files with `jwtkit keygen`, then
# runs BUILD_DIR/bench/jwtkit-p11-bench and prints a Markdown table
# (docs/performance.md).  A benchmark: it asserts no speed.  Exit 77
# without SoftHSM.
set -euo pipefail
build=${1:-build}
secs=${2:-1}
runs=${3:-3}
module=${JWTKIT_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
jwtkit=$build/cli/jwtkit
bench=$build/bench/jwtkit-p11-bench
for f in "$jwtkit" "$bench"; do
  [ -x "$f" ] || { echo "bench/p11.sh: $f not built (cmake --build $build)" >&2; exit 2; }
done
[ -r "$module" ] && command -v softhsm2-util >/dev/null ||
  { echo "SKIP: bench/p11.sh: SoftHSM2 is not installed (apt-get install softhsm2)" >&2; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/jwtkit-p11-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$tmp" >"$tmp/softhsm2.conf"
export SOFTHSM2_CONF=$tmp/softhsm2.conf
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 5678 >/dev/null
(umask 077 && echo 1234 >"$tmp/pin")
unset JWTKIT_PKCS11_PIN

rows=()
for alg in ES256 RS256; do
  uri="pkcs11:token=bench;object=$alg?pin-source=$tmp/pin&module-path=$module"
  "$jwtkit" keygen --alg "$alg" --out "$tmp/$alg.pem" 2>/dev/null
  "$jwtkit" keygen --alg "$alg" --pkcs11 "$uri" 2>/dev/null
  rows+=("$alg file" "$alg" "$tmp/$alg.pem" "$alg SoftHSM" "$alg" "$uri")
done
echo "SoftHSM $(softhsm2-util --version), $(nproc) CPUs, ${secs}s x $runs runs per cell (median), signatures per second:"
"$bench" --seconds "$secs" --runs "$runs" --threads 1,2,4 "${rows[@]}"
floor=$build/bench/jwtkit-p11-floor
if [ -x "$floor" ]; then
  "$floor" --seconds "$secs" --runs "$runs" --threads 1,2,4 "$module" bench "$tmp/pin" \
    "ES256 SoftHSM, C_Sign alone" ES256 ES256 "RS256 SoftHSM, C_Sign alone" RS256 RS256
fi
