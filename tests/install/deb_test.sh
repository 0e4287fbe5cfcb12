#!/usr/bin/env bash
# Build the Debian packages, install them, use them, purge them
# (docs/install.md). Runs the shell blocks of docs/install.md marked
# `<!-- deb_install: NAME -->` word for word; only the ports 8080 and 8081 are
# changed to free ones (in /etc/jwtkit/*.conf, as an administrator would, and
# in the readiness block).
#
# Usage: deb_test.sh SOURCE_DIR          (as root; ctest -L deb)
# Exits 77 (skipped) when not root or when a tool is missing, except under
# CI=true where that is a failure. Refuses to run when the packages are
# installed already. Serialised with other runs of itself by a lock.
set -uo pipefail
src=$(realpath "$1")
. "$src/tests/lib/checks.sh"
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
unset PKG_CONFIG_PATH LD_LIBRARY_PATH CMAKE_PREFIX_PATH

skip() {
  if [ "${CI:-}" = true ]; then
    echo "FAIL: $* (required under CI)"
    exit 1
  fi
  echo "SKIP: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "installs packages: run as root"
for tool in dpkg-buildpackage dpkg-parsechangelog dh lintian fakeroot apt-get systemd-analyze make cmake cc \
  pkg-config curl python3 setpriv runuser flock nginx; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/install-deps installs what is needed)"
done

PKGS="jwtkit libjwtkit-dev libjwtkit0 libnginx-mod-http-jwtkit"
# (no `| grep -q` under pipefail: grep exiting early would fail the writer with SIGPIPE)
status_of() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null; }
installed() { [[ "$(status_of "$1")" == *" installed" ]]; }
now() { date +%s; }
t_start=$(now)

exec 9>"${TMPDIR:-/tmp}/jwtkit-deb-test.lock"
flock -w 1500 9 || { echo "FAIL: another deb_install run holds ${TMPDIR:-/tmp}/jwtkit-deb-test.lock"; exit 1; }
for p in $PKGS jwtkit-dbgsym libjwtkit0-dbgsym libnginx-mod-http-jwtkit-dbgsym; do
  st=$(status_of "$p")
  if [ -n "$st" ] && [[ "$st" != *" not-installed" ]]; then
    echo "FAIL: $p is on this system already; the test installs and purges it, and compares the system" \
      "before and after. Purge it first: apt-get purge -y $PKGS"
    exit 1
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/jwtkit-deb.XXXXXX")
chmod 755 "$tmp" # apt's _apt user reads the .debs, the jwtkit user runs with it as cwd
# apt waits for the dpkg lock instead of failing when something else holds it
printf 'DPkg::Lock::Timeout "600";\n' >"$tmp/apt.conf"
export APT_CONFIG=$tmp/apt.conf
BG=() # shells started in the background
we_installed=0

# service_pid SHELL_PID: the service a by-hand line started (bash execs the
# last command of the line itself, or runs it as its child)
service_pid() {
  local c
  for _ in $(seq 50); do
    [ "$(cat "/proc/$1/comm" 2>/dev/null)" = jwtkit ] && { echo "$1"; return; }
    c=$(pgrep -P "$1" -x jwtkit | head -n1)
    [ -n "$c" ] && { echo "$c"; return; }
    sleep 0.1
  done
}
STOPPED= # stop_bg SHELL_PID: SIGTERM to the service, wait; its exit status in STOPPED
stop_bg() {
  local sh=$1 svc
  svc=$(service_pid "$sh")
  [ -n "$svc" ] && kill -TERM "$svc" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$sh" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$sh" 2>/dev/null; then
    [ -n "$svc" ] && kill -KILL "$svc" 2>/dev/null
    kill -KILL "$sh" 2>/dev/null
  fi
  wait "$sh" 2>/dev/null
  STOPPED=$?
}
cleanup() {
  local sh
  for sh in "${BG[@]}"; do kill -0 "$sh" 2>/dev/null && stop_bg "$sh"; done
  if [ "$we_installed" = 1 ]; then
    for p in $PKGS; do
      if installed "$p"; then
        echo "cleanup: purging the packages"
        apt-get purge -y -q $PKGS >/dev/null 2>&1
        break
      fi
    done
  fi
  if [ "$FAIL" -ne 0 ] || [ -n "${KEEP_TMP:-}" ]; then echo "--- files kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# doc_block NAME: the code block after <!-- deb_install: NAME --> in docs/install.md
doc_block() {
  awk -v m="<!-- deb_install: $1 -->" '
    $0 == m { found = 1; next }
    found == 1 && /^```/ { found = 2; next }
    found == 2 && /^```/ { exit }
    found == 2 { print }' "$src/docs/install.md"
}
# run_block NAME DIR [SED]: run the block's lines with bash -e in DIR (after the
# sed expression, if any); output in $tmp/NAME.out
run_block() {
  local name=$1 dir=$2 sedexpr=${3:-}
  local text
  text=$(doc_block "$name")
  [ -n "$sedexpr" ] && text=$(printf '%s\n' "$text" | sed "$sedexpr")
  if [ -z "$text" ]; then
    echo "docs/install.md has no block '$name'" >"$tmp/$name.out"
    return 1
  fi
  printf '%s\n' "$text" >"$tmp/$name.sh"
  (cd "$dir" && bash -e "$tmp/$name.sh") >"$tmp/$name.out" 2>&1
}
show() { sed 's/^/    | /' "$1"; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_for() { # wait_for SECONDS command...
  local end=$(($(now) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(now)" -lt "$end" ] || return 1
    sleep 0.2
  done
}
# a list of the files on this system, without what changes for other reasons
snapshot() {
  find / \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /var/tmp \
    -o -path /var/log -o -path /var/cache -o -path /var/lib/apt -o -path /var/lib/dpkg \
    -o -path /work -o -path /root -o -path /home -o -path "$src" -o -path "${TMPDIR:-/tmp}" \) -prune \
    -o -print 2>/dev/null | sort
}
user_state() { echo "user:$(getent passwd jwtkit | cut -d: -f1) group:$(getent group jwtkit | cut -d: -f1)"; }

version=$(cd "$src" && dpkg-parsechangelog -S Version)
upstream=${version%-*}
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
echo "== jwtkit $version ($arch) in $tmp"

echo "== the system before"
snapshot >"$tmp/before.list"
users_before=$(user_state)

# ------------------------------------------------------------------ build
echo "== make deb"
tree_before=$(git -C "$src" status --porcelain 2>/dev/null)
t0=$(now)
export DEB_OUT=$tmp/build/deb
if run_block build "$src"; then ok "make deb"; else
  bad "make deb failed:"
  tail -n 40 "$tmp/build.out" | show /dev/stdin
  exit 1
fi
t_build=$(($(now) - t0))
unset DEB_OUT
expect "make deb leaves the work tree as it was" "$tree_before" "$(git -C "$src" status --porcelain 2>/dev/null)"
deb=$tmp/build/deb
for p in $PKGS; do
  check "built ${p}_${version}_$arch.deb" test -f "$deb/${p}_${version}_$arch.deb"
done

contents() { dpkg-deb -c "$deb/${1}_${version}_$arch.deb" | awk '{print $6}' | sed 's#^\./#/#'; }
has() { # has PACKAGE PATH...
  local p=$1 f list missing=""
  shift
  list=$(contents "$p")
  for f in "$@"; do grep -qxF "$f" <<<"$list" || missing="$missing $f"; done
  expect "$p holds $*" "" "$missing"
}
has libjwtkit0 "/usr/lib/$multiarch/libjwtkit.so.$upstream" "/usr/lib/$multiarch/libjwtkit.so.0"
has libjwtkit-dev /usr/include/jwtkit/jwtkit.h "/usr/lib/$multiarch/libjwtkit.so" "/usr/lib/$multiarch/libjwtkit.a" \
  "/usr/lib/$multiarch/pkgconfig/jwtkit.pc" "/usr/lib/$multiarch/cmake/jwtkit/jwtkitConfig.cmake"
has jwtkit /usr/bin/jwtkit /lib/systemd/system/jwtkit-serve.service /lib/systemd/system/jwtkit-gate.service \
  /etc/jwtkit/serve.conf /etc/jwtkit/gate.conf /usr/share/man/man1/jwtkit-serve.1.gz \
  /usr/share/bash-completion/completions/jwtkit /usr/share/doc/jwtkit/install.md.gz
has libnginx-mod-http-jwtkit /usr/lib/nginx/modules/ngx_http_jwtkit_module.so \
  /usr/share/nginx/modules-available/mod-http-jwtkit.conf
check "the module package depends on the nginx ABI it was built for" \
  sh -c "dpkg-deb -f '$deb/libnginx-mod-http-jwtkit_${version}_$arch.deb' Depends | grep -q 'nginx-abi-'"
ctrl_files=$(dpkg-deb --ctrl-tarfile "$deb/libjwtkit0_${version}_$arch.deb" | tar -t)
check "libjwtkit0 has a symbols file" grep -qx './symbols' <<<"$ctrl_files"
mkdir "$tmp/ctrl"
dpkg-deb -e "$deb/jwtkit_${version}_$arch.deb" "$tmp/ctrl"
for u in serve gate; do
  for page in $(sed -n 's/^Documentation=//p' "$src/debian/jwtkit.jwtkit-$u.service"); do
    case $page in
      man:*) has jwtkit "/usr/share/man/man1/$(echo "${page#man:}" | sed 's/(1)$//').1.gz" ;;
      *) bad "jwtkit-$u.service: Documentation=$page is not a man page the package ships" ;;
    esac
  done
  check "removing jwtkit stops jwtkit-$u.service (prerm)" \
    grep -qF "deb-systemd-invoke stop 'jwtkit-$u.service'" "$tmp/ctrl/prerm"
done
expect "the library's files are only in libjwtkit0 and libjwtkit-dev" "" \
  "$(contents jwtkit | grep -E 'libjwtkit|/include/' | paste -sd' ')"

echo "== lintian"
t0=$(now)
lintian --fail-on error,warning --tag-display-limit 0 "$deb"/jwtkit_"${version}"_"$arch".changes >"$tmp/lintian.out" 2>&1
rc=$?
t_lintian=$(($(now) - t0))
if [ "$rc" -eq 0 ] && ! grep -q '^[EW]: ' "$tmp/lintian.out"; then
  ok "lintian: no error, no warning"
else
  bad "lintian (exit $rc):"
  show "$tmp/lintian.out"
fi

# ------------------------------------------------------------------ install
echo "== install"
we_installed=1
if run_block install "$tmp"; then ok "apt-get install of the three packages"; else
  bad "apt-get install failed:"
  show "$tmp/install.out"
  exit 1
fi
for p in $PKGS; do check "$p is installed" installed "$p"; done

pw=$(getent passwd jwtkit)
check "the system user jwtkit exists" test -n "$pw"
uid=$(echo "$pw" | cut -d: -f3)
check "jwtkit is a system user (uid $uid < 1000)" test "${uid:-1000}" -lt 1000
expect "jwtkit's home" /var/lib/jwtkit "$(echo "$pw" | cut -d: -f6)"
expect "jwtkit's shell" /usr/sbin/nologin "$(echo "$pw" | cut -d: -f7)"
if [ "$users_before" = "user: group:" ]; then
  expect "jwtkit's comment marks it as created by the package" "jwtkit token services" \
    "$(echo "$pw" | cut -d: -f5 | cut -d, -f1)"
fi
check "the group jwtkit exists" test -n "$(getent group jwtkit)"
expect "/var/lib/jwtkit: owner and mode" "jwtkit:jwtkit 700" "$(stat -c '%U:%G %a' /var/lib/jwtkit)"
expect "/var/lib/jwtkit/clients.conf: owner and mode" "jwtkit:jwtkit 600" "$(stat -c '%U:%G %a' /var/lib/jwtkit/clients.conf)"
expect "no unit is enabled" "" "$(ls /etc/systemd/system/*.wants/jwtkit-* 2>/dev/null)"
expect "/etc/jwtkit/*.conf are conffiles" "/etc/jwtkit/gate.conf /etc/jwtkit/serve.conf" \
  "$(dpkg-query -W -f='${Conffiles}\n' jwtkit | awk 'NF {print $1}' | sort | paste -sd' ')"
expect "ldconfig knows libjwtkit.so.0" "/usr/lib/$multiarch/libjwtkit.so.$upstream" \
  "$(readlink -f "$(ldconfig -p | sed -n 's/^[[:space:]]*libjwtkit\.so\.0 (.*) => \(.*\)$/\1/p' | head -n1)")"

# ------------------------------------------------------------------ nginx module
echo "== the nginx module"
expect "the module is enabled (modules-enabled link)" /usr/share/nginx/modules-available/mod-http-jwtkit.conf \
  "$(readlink /etc/nginx/modules-enabled/50-mod-http-jwtkit.conf)"
expect "the load file" "load_module modules/ngx_http_jwtkit_module.so;" \
  "$(cat /usr/share/nginx/modules-available/mod-http-jwtkit.conf)"
if run_block nginx-module "$tmp"; then ok "nginx -t with the module enabled"; else
  bad "nginx -t failed with the module enabled:"
  show "$tmp/nginx-module.out"
fi
# a configuration that uses the module: valid with the modules-enabled
# include, "unknown directive" without it (so the directives are the module's)
# (nginx's default prefix, as the load files name modules/ relative to it)
/usr/bin/jwtkit keygen --alg ES256 --out "$tmp/ngx.pem" --pub "$tmp/ngx.pub.pem" >/dev/null 2>&1
mkdir -p "$tmp/ngx/logs"
ngx_conf() { # ngx_conf INCLUDE_LINE
  cat <<NGX
$1
error_log $tmp/ngx/logs/error.log;
pid $tmp/ngx/nginx.pid;
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:$(free_port);
    location / {
      auth_jwt "api";
      auth_jwt_algs ES256;
      auth_jwt_key_file $tmp/ngx.pub.pem;
      auth_jwt_issuer https://issuer.example;
      auth_jwt_audience api;
      return 204;
    }
  }
}
NGX
}
ngx_conf "include /etc/nginx/modules-enabled/*.conf;" >"$tmp/ngx/with.conf"
ngx_conf "" >"$tmp/ngx/without.conf"
check "nginx -t: auth_jwt directives with the installed module" nginx -q -t -c "$tmp/ngx/with.conf"
out=$(nginx -t -c "$tmp/ngx/without.conf" 2>&1)
check "nginx -t: the same without it is an unknown directive" grep -q 'unknown directive "auth_jwt' <<<"$out"

# ------------------------------------------------------------------ library
echo "== the library from the package"
expect "pkg-config: libdir" "/usr/lib/$multiarch" "$(pkg-config --variable=libdir jwtkit)"
expect "pkg-config: includedir" /usr/include "$(pkg-config --variable=includedir jwtkit)"
expect "pkg-config --libs jwtkit (the system directory left out)" "-ljwtkit" "$(pkg-config --libs jwtkit | xargs)"
# the only flags are those of libcrypto (Requires.private); libpq and p11-kit
# are Libs.private: their headers are not in ours
expect "pkg-config --cflags jwtkit adds nothing of its own (no -I/usr/include)" \
  "$(pkg-config --cflags libcrypto | xargs)" "$(pkg-config --cflags jwtkit | xargs)"
expect "pkg-config --static --libs jwtkit has what a static link needs" \
  "-ljwtkit -lpthread -lpq -lp11-kit $(pkg-config --static --libs libcrypto | xargs)" "$(pkg-config --static --libs jwtkit | xargs)"
expect "pkg-config --modversion jwtkit" "$upstream" "$(pkg-config --modversion jwtkit)"
# PKCS#11 token keys are built into every package (debian/rules), not only
# where the builder happened to have p11-kit
check "the packaged library links p11-kit (keys in PKCS#11 tokens)" \
  sh -c "ldd /usr/lib/$multiarch/libjwtkit.so.0 | grep -q libp11-kit"
mkdir -p "$tmp/c" "$tmp/cm"
awk '/^<!-- snippet: by tests\/CMakeLists.txt "example: sign_verify" -->$/ { f = 1; next } f == 1 && /^```c$/ { f = 2; next }
     f == 2 && /^```$/ { exit } f == 2 { print }' "$src/README.md" >"$tmp/c/example.c"
check "README.md has the example" test -s "$tmp/c/example.c"
cp "$tmp/c/example.c" "$tmp/cm/example.c"
if run_block pkg-config "$tmp/c"; then
  expect "the README example built with pkg-config runs" "verified, sub=alice" "$(tail -n1 "$tmp/pkg-config.out")"
else
  bad "the pkg-config block failed:"
  show "$tmp/pkg-config.out"
fi
expect "it uses the installed shared library" "/usr/lib/$multiarch/libjwtkit.so.$upstream" \
  "$(readlink -f "$(ldd "$tmp/c/example" 2>/dev/null | sed -n 's/^[[:space:]]*libjwtkit\.so\.0 => \([^ ]*\) .*/\1/p')")"
readme_cc='cc example.c $(pkg-config --cflags --libs jwtkit)'
check "README.md shows '$readme_cc'" grep -qF "\`$readme_cc\`" "$src/README.md"
(cd "$tmp/c" && eval "$readme_cc") >"$tmp/readme-cc.out" 2>&1
expect "the README's own command builds it (a.out runs)" "verified, sub=alice" "$(cd "$tmp/c" && ./a.out 2>&1)"
doc_block cmake >"$tmp/cm/CMakeLists.txt"
if (cmake -S "$tmp/cm" -B "$tmp/cm/b" && cmake --build "$tmp/cm/b") >"$tmp/cmake.out" 2>&1; then
  expect "a find_package(jwtkit) project (docs/install.md) runs" "verified, sub=alice" "$("$tmp/cm/b/example" 2>&1)"
else
  bad "the find_package(jwtkit) project does not build:"
  show "$tmp/cmake.out"
fi

# ------------------------------------------------------------------ command
echo "== the command from /usr/bin"
expect "jwtkit is /usr/bin/jwtkit" /usr/bin/jwtkit "$(command -v jwtkit)"
expect "jwtkit --version" "jwtkit $upstream (libjwtkit $upstream)" "$(/usr/bin/jwtkit --version)"
check "bash completion parses" bash -n /usr/share/bash-completion/completions/jwtkit
mkdir "$tmp/demo"
P0=$(free_port)
(cd "$tmp/demo" && exec /usr/bin/jwtkit serve --demo --listen "127.0.0.1:$P0") >"$tmp/demo.log" 2>&1 &
demo=$!
if wait_for 30 curl -fsS "http://127.0.0.1:$P0/healthz"; then
  ok "jwtkit serve --demo answers /healthz"
  jwks=$(curl -fsS "http://127.0.0.1:$P0/.well-known/jwks.json")
  check "its JWKS has an ES256 key with a kid" grep -q '"alg":"ES256".*"kid":"' <<<"$jwks"
  token=$(curl -fsS -u "demo:$(cat "$tmp/demo/var/demo-client-secret")" -d grant_type=client_credentials \
    "http://127.0.0.1:$P0/token" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  printf '%s' "$token" | /usr/bin/jwtkit verify --jwks "http://127.0.0.1:$P0/.well-known/jwks.json" --allow-http \
    --alg ES256 --iss "http://127.0.0.1:$P0" --aud demo-api --typ at+jwt - >"$tmp/demo-verify.out" 2>&1
  check "a demo token verifies against its JWKS" test $? -eq 0
else
  bad "jwtkit serve --demo did not answer /healthz:"
  show "$tmp/demo.log"
fi
kill -TERM "$demo" 2>/dev/null
wait "$demo"
expect "jwtkit serve --demo stops on SIGTERM with status 0" 0 $?

# ------------------------------------------------------------------ services
echo "== the units' commands as the jwtkit user"
unit_get() { sed -n "s/^$2=//p" "/lib/systemd/system/jwtkit-$1.service"; }
P1=$(free_port)
P2=$(free_port)
sed -i "s/127\.0\.0\.1:8080/127.0.0.1:$P1/g; s/127\.0\.0\.1:8081/127.0.0.1:$P2/g" /etc/jwtkit/serve.conf /etc/jwtkit/gate.conf
if run_block client "$tmp"; then ok "the client block adds a client"; else bad "the client block failed"; fi
secret=$(head -n1 "$tmp/client.out")
check "it printed the client's secret" grep -qE '^[A-Za-z0-9_-]{43}$' <<<"$secret"
expect "clients.conf stays jwtkit's, mode 0600" "jwtkit:jwtkit 600" "$(stat -c '%U:%G %a' /var/lib/jwtkit/clients.conf)"
(umask 077 && jwtkit keyring kek-new >"$tmp/kek")
if run_block kek "$tmp"; then ok "the KEK block installs a KEK"; else bad "the KEK block failed"; show "$tmp/kek.out"; fi
expect "the installed KEK is jwtkit's, mode 0600" "jwtkit:jwtkit 600" "$(stat -c '%U:%G %a' /etc/jwtkit/kek 2>&1)"
rm -f /etc/jwtkit/kek   # an administrator's file: purge leaves it (as the docs say)
if run_block gate-check "$tmp"; then ok "jwtkit gate --check accepts the shipped gate.conf"; else
  bad "jwtkit gate --check:"
  show "$tmp/gate-check.out"
fi

mapfile -t byhand < <(doc_block by-hand)
expect "the by-hand block has one line per unit" 2 "${#byhand[@]}"
for i in 0 1; do
  u=$([ "$i" = 0 ] && echo serve || echo gate)
  line=${byhand[$i]:-}
  want_cmd=$(unit_get "$u" ExecStart | sed 's#^/usr/bin/##')
  want_dir=$(unit_get "$u" WorkingDirectory)
  case $line in
    "cd $want_dir && umask 0077 && setpriv "*" $want_cmd") ok "by-hand line $((i + 1)) runs jwtkit-$u.service's ExecStart in its WorkingDirectory" ;;
    *) bad "by-hand line $((i + 1)) should be 'cd $want_dir && umask 0077 && setpriv ... $want_cmd': $line" ;;
  esac
done
token_for() { # token_for NAME SECRET: prints the access token (empty on failure)
  curl -sS -u "$1:$2" -d grant_type=client_credentials "http://127.0.0.1:$P1/token" |
    sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}
proc_field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status"; }

(cd "$tmp" && exec bash -c "${byhand[0]}") >"$tmp/serve.log" 2>&1 &
serve_sh=$!
BG+=("$serve_sh")
if run_block readiness "$tmp" "s/:8080/:$P1/g"; then
  ok "the readiness block sees jwtkit serve ready"
else
  bad "jwtkit serve did not become ready:"
  show "$tmp/serve.log"
fi
serve_pid=$(service_pid "$serve_sh")
expect "jwtkit serve runs as jwtkit" jwtkit "$(ps -o user= -p "$serve_pid" 2>/dev/null)"
expect "... with no new privileges" 1 "$(proc_field "$serve_pid" NoNewPrivs)"
expect "... and an empty capability bounding set" 0000000000000000 "$(proc_field "$serve_pid" CapBnd)"
check "it created its keyring in /var/lib/jwtkit" test -f /var/lib/jwtkit/keyring/keyring.json
expect "everything in /var/lib/jwtkit is jwtkit's" "" "$(find /var/lib/jwtkit ! -user jwtkit)"
expect "nothing in /var/lib/jwtkit is writable by group or others" "" "$(find /var/lib/jwtkit -perm /022)"
expect "the private keys are mode 0600" "" "$(find /var/lib/jwtkit/keyring/keys -type f ! -perm 600)"
check "there is a private key" test -n "$(find /var/lib/jwtkit/keyring/keys -type f)"
token=$(token_for billing "$secret")
check "the client gets a token" test -n "$token"

(cd "$tmp" && exec bash -c "${byhand[1]}") >"$tmp/gate.log" 2>&1 &
gate_sh=$!
BG+=("$gate_sh")
if wait_for 30 curl -fsS "http://127.0.0.1:$P2/healthz"; then ok "jwtkit gate is ready (/healthz: JWKS fetched from the issuer)"; else
  bad "jwtkit gate did not become ready:"
  show "$tmp/gate.log"
fi
gate_pid=$(service_pid "$gate_sh")
expect "jwtkit gate runs as jwtkit" jwtkit "$(ps -o user= -p "$gate_pid" 2>/dev/null)"
auth() { curl -sS -o /dev/null -D "$tmp/auth.headers" -w '%{http_code}' -H 'X-Original-URI: /orders' "$@" \
  "http://127.0.0.1:$P2/auth"; }
expect "the gate allows the issuer's token" 204 "$(auth -H "Authorization: Bearer $token")"
expect "... and passes its client_id" "billing" \
  "$(sed -n 's/^X-Client-Id: \(.*\)\r$/\1/Ip' "$tmp/auth.headers")"
expect "the gate refuses a request without a token" 401 "$(auth)"

echo "== ExecReload"
runuser -u jwtkit -- jwtkit serve client add second --audience api --config /etc/jwtkit/serve.conf \
  >"$tmp/second.out" 2>/dev/null
secret2=$(head -n1 "$tmp/second.out")
expect "a client added after the start is unknown before the reload" "" "$(token_for second "$secret2")"
reload_serve=$(unit_get serve ExecReload)
expect "jwtkit-serve.service reloads with SIGHUP" '/bin/kill -HUP $MAINPID' "$reload_serve"
# ExecReload runs as the unit's user
MAINPID=$serve_pid setpriv --reuid=jwtkit --regid=jwtkit --init-groups --no-new-privs bash -c "$reload_serve"
second_ok() { [ -n "$(token_for second "$secret2")" ]; }
check "after ExecReload the new client gets a token" wait_for 10 second_ok
token2=$(token_for second "$secret2")
mapfile -t reload_gate < <(unit_get gate ExecReload)
ok_reload=1
for cmd in "${reload_gate[@]}"; do
  # ExecReload runs as the unit's user
  MAINPID=$gate_pid setpriv --reuid=jwtkit --regid=jwtkit --init-groups --no-new-privs bash -c "$cmd" \
    >>"$tmp/gate-reload.out" 2>&1 || ok_reload=0
done
expect "jwtkit-gate.service's ExecReload lines succeed (--check, then SIGHUP)" 1 "$ok_reload"
check "the gate logged the reload" wait_for 10 grep -q '"event":"reloaded"' "$tmp/gate.log"
expect "the gate still allows the token after the reload" 204 "$(auth -H "Authorization: Bearer $token2")"

echo "== systemd-analyze on the installed units"
if run_block verify "$tmp"; then ok "the verify block passes"; else
  bad "the verify block failed:"
  show "$tmp/verify.out"
fi
expect "systemd-analyze verify of the installed units has nothing to say" "" \
  "$(cd "$tmp" && systemd-analyze verify --man=no /lib/systemd/system/jwtkit-serve.service \
    /lib/systemd/system/jwtkit-gate.service 2>&1)"

stop_bg "$gate_sh"
expect "jwtkit gate stops on SIGTERM with status 0" 0 "$STOPPED"
stop_bg "$serve_sh"
expect "jwtkit serve stops on SIGTERM with status 0" 0 "$STOPPED"

# ------------------------------------------------------------------ purge
echo "== purge"
if run_block purge "$tmp"; then ok "apt-get purge"; else
  bad "apt-get purge failed:"
  show "$tmp/purge.out"
fi
for p in $PKGS; do
  expect "$p is gone from dpkg's database" "" "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -v 'not-installed$')"
done
expect "the purge removed the module's modules-enabled link" "" "$(ls /etc/nginx/modules-enabled/ | grep jwtkit)"
we_installed=0
expect "the jwtkit user and group are as before the install" "$users_before" "$(user_state)"
snapshot >"$tmp/after.list"
if diff "$tmp/before.list" "$tmp/after.list" >"$tmp/files.diff"; then
  ok "after the purge the system has the same files as before the install ($(wc -l <"$tmp/after.list") files)"
else
  bad "files differ after the purge (< before only, > after only):"
  show "$tmp/files.diff"
fi

t_total=$(($(now) - t_start))
echo "deb_install: package build ${t_build} s, lintian ${t_lintian} s, whole test ${t_total} s"
echo "deb_install: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
