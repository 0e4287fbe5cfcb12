#!/usr/bin/env bash
# The packaging agrees with the tree, without building packages:
#   - one version: project(VERSION) = the generated jwtkit/version.h = what
#     the command and the library report = debian/changelog;
#   - debian/libjwtkit0.symbols = the exported symbols of the built library,
#     all jwtkit_*, none newer than the version; the SONAME is libjwtkit.so.0;
#   - both systemd units carry the hardening of docs/install.md, pass
#     `systemd-analyze verify` and rate as docs/install.md records.
# Usage: deb_meta.sh SOURCE_DIR LIBJWTKIT_SO JWTKIT_CLI
# Exits 77 (skipped) when readelf, nm or systemd-analyze is missing, except
# under CI=true where that is a failure.
set -uo pipefail
src=$1
lib=$(realpath "$2")
cli=$(realpath "$3")
. "$src/tests/lib/checks.sh"

skip() {
  if [ "${CI:-}" = true ]; then
    echo "FAIL: $* (required under CI)"
    exit 1
  fi
  echo "SKIP: $*"
  exit 77
}
for tool in readelf nm systemd-analyze; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install binutils systemd)"
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/jwtkit-deb-meta.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ------------------------------------------------------------------ version
cmake_version=$(sed -n 's/^project(jwtkit VERSION \([0-9][0-9.]*\) .*/\1/p' "$src/CMakeLists.txt")
header=$(dirname "$lib")/include/jwtkit/version.h # generated from project(VERSION)
h_version=$(sed -n 's/^#define JWTKIT_VERSION "\(.*\)"$/\1/p' "$header")
cli_version=$("$cli" --version 2>/dev/null)
h_parts=$(for p in MAJOR MINOR PATCH; do sed -n "s/^#define JWTKIT_VERSION_$p \([0-9]*\)$/\1/p" "$header"; done |
  paste -sd.)
deb_version=$(sed -n '1s/^jwtkit (\([^)]*\)) .*/\1/p' "$src/debian/changelog")
deb_upstream=${deb_version%-*}
check "CMakeLists.txt has project(jwtkit VERSION x.y.z) ($cmake_version)" test -n "$cmake_version"
expect "jwtkit/version.h JWTKIT_VERSION = project(VERSION)" "$cmake_version" "$h_version"
expect "jwtkit/version.h JWTKIT_VERSION_MAJOR.MINOR.PATCH = project(VERSION)" "$cmake_version" "$h_parts"
expect "jwtkit --version reports it (command and library)" "jwtkit $cmake_version (libjwtkit $cmake_version)" "$cli_version"
expect "debian/changelog upstream version = project(VERSION)" "$cmake_version" "$deb_upstream"
check "debian/changelog has a Debian revision ($deb_version)" test "$deb_version" != "$deb_upstream"
real=$(basename "$(readlink -f "$lib")")
expect "the shared library's file name carries the version" "libjwtkit.so.$cmake_version" "$real"

# ------------------------------------------------------------------ symbols
symbols=$src/debian/libjwtkit0.symbols
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p')
expect "SONAME" "libjwtkit.so.0" "$soname"
expect "symbols file header names the SONAME and libjwtkit0" "libjwtkit.so.0 libjwtkit0 #MINVER#" "$(head -n1 "$symbols")"
nm -D --defined-only "$lib" | awk '{print $3}' | LC_ALL=C sort >"$tmp/exported"
sed -n 's/^ \([^@ ]*\)@Base .*/\1/p' "$symbols" | LC_ALL=C sort >"$tmp/listed"
check "the library exports symbols" test -s "$tmp/exported"
if diff -u "$tmp/listed" "$tmp/exported" >"$tmp/symdiff"; then
  ok "debian/libjwtkit0.symbols lists exactly the exported symbols ($(wc -l <"$tmp/exported"))"
else
  bad "debian/libjwtkit0.symbols differs from the library's exports (- listed only, + exported only;" \
    "add a new symbol with the version that adds it, see docs/install.md):"
  sed -n '3,$p' "$tmp/symdiff" | grep '^[-+]'
fi
others=$(grep -v '^jwtkit_' "$tmp/exported" | paste -sd' ')
expect "only jwtkit_* symbols are exported" "" "$others"
newer=""
while read -r sym ver; do
  dpkg --compare-versions "$ver" le "$cmake_version" 2>/dev/null || newer="$newer ${sym%@Base}=$ver"
done < <(sed -n 's/^ \([^ ]*\) \([^ ]*\)$/\1 \2/p' "$symbols")
expect "no symbol has a version newer than project(VERSION)" "" "$newer"

# ------------------------------------------------------------------ units
required="NoNewPrivileges=yes CapabilityBoundingSet= AmbientCapabilities= UMask=0077 ProtectSystem=strict
ProtectHome=yes PrivateTmp=yes PrivateDevices=yes PrivateMounts=yes ProtectClock=yes ProtectHostname=yes
ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes ProtectControlGroups=yes
ProtectProc=invisible ProcSubset=pid LockPersonality=yes MemoryDenyWriteExecute=yes RestrictRealtime=yes
RestrictSUIDSGID=yes RestrictNamespaces=yes RemoveIPC=yes SystemCallArchitectures=native
SystemCallFilter=@system-service Type=exec User=jwtkit Group=jwtkit ConfigurationDirectory=jwtkit"
# the hardening block of docs/install.md: directives separated by two spaces
documented=$(awk '$0 == "<!-- deb_meta: hardening -->" { f = 1; next } f == 1 && /^```/ { f = 2; next }
  f == 2 && /^```/ { exit } f == 2 { print }' "$src/docs/install.md" | sed 's/  \+/\n/g' | sed '/^$/d')
check "docs/install.md lists the hardening directives ($(wc -l <<<"$documented"))" test "$(wc -l <<<"$documented")" -ge 25
for d in $required; do
  case $d in Type=* | User=* | Group=* | ConfigurationDirectory=*) continue ;; esac
  grep -qxF -- "$d" <<<"$documented" || bad "docs/install.md's hardening block lacks $d"
done
for unit in serve gate; do
  file=$src/debian/jwtkit.jwtkit-$unit.service
  missing=""
  for d in $required; do grep -qxF "$d" "$file" || missing="$missing $d"; done
  while IFS= read -r d; do grep -qxF -- "$d" "$file" || missing="$missing [$d]"; done <<<"$documented"
  grep -qxF "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" "$file" ||
    missing="$missing RestrictAddressFamilies=AF_INET_AF_INET6_AF_UNIX"
  grep -qxF 'ExecReload=/bin/kill -HUP $MAINPID' "$file" || missing="$missing ExecReload=kill-HUP"
  grep -qxF "ExecStart=/usr/bin/jwtkit $unit --config /etc/jwtkit/$unit.conf" "$file" || missing="$missing ExecStart"
  expect "jwtkit-$unit.service has every directive docs/install.md lists" "" "$missing"
done
check "jwtkit-serve.service keeps its keyring in StateDirectory=jwtkit" \
  grep -qxF "StateDirectory=jwtkit" "$src/debian/jwtkit.jwtkit-serve.service"

# systemd-analyze verify checks that the commands exist: copies of the units
# run the built command instead of /usr/bin/jwtkit
for unit in serve gate; do
  sed "s#/usr/bin/jwtkit#$cli#g" "$src/debian/jwtkit.jwtkit-$unit.service" >"$tmp/jwtkit-$unit.service"
  if out=$(cd "$tmp" && systemd-analyze verify --man=no "$tmp/jwtkit-$unit.service" 2>&1) && [ -z "$out" ]; then
    ok "systemd-analyze verify jwtkit-$unit.service"
  else
    bad "systemd-analyze verify jwtkit-$unit.service: $out"
  fi
  score=$(cd "$tmp" && systemd-analyze security --offline=true "$tmp/jwtkit-$unit.service" 2>/dev/null |
    sed -n 's/^.*Overall exposure level for [^:]*: \([0-9.]*\) \([A-Z]*\).*$/\1 \2/p')
  case ${score#* } in
    PERFECT | SAFE | OK) ok "jwtkit-$unit.service is rated OK or better ($score)" ;;
    *) bad "jwtkit-$unit.service is rated '$score', worse than OK" ;;
  esac
  recorded=$(sed -n "s/^| \`jwtkit-$unit.service\` | \([0-9.]* [A-Z]*\) |$/\1/p" "$src/docs/install.md")
  expect "docs/install.md records the exposure of jwtkit-$unit.service" "$score" "$recorded"
done

echo "deb_meta: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
