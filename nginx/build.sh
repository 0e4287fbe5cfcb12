#!/bin/sh
# nginx/build.sh SRC BUILD: build ngx_http_jwtkit_module.so against the
# nginx-dev source copy (/usr/share/nginx/src, or $NGINX_SRC) into
# BUILD/nginx/.  BUILD is the CMake build directory holding libjwtkit.a,
# services/gatecore/libjwtkit_gatecore.a and services/fetch/libjwtkit_fetch.a
# (position-independent).  nginx's
# tree is copied to BUILD/nginx/src and configured once, with Debian's own
# configure flags (conf_flags) and --with-compat, so the module loads into
# Debian's nginx; later runs only recompile the module (make modules).
# Exit 77 when nginx-dev is not installed.
set -eu
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
NGX_SRC=${NGINX_SRC:-/usr/share/nginx/src}
OUT=$BUILD/nginx
if [ ! -x "$NGX_SRC/configure" ]; then
  echo "nginx/build.sh: $NGX_SRC/configure not found: install nginx-dev (scripts/install-deps)" >&2
  exit 77
fi
for lib in "$BUILD/libjwtkit.a" "$BUILD/services/gatecore/libjwtkit_gatecore.a" "$BUILD/services/fetch/libjwtkit_fetch.a"; do
  [ -f "$lib" ] || { echo "nginx/build.sh: $lib missing: build jwtkit_static, jwtkit_gatecore and jwtkit_fetch first" >&2; exit 1; }
done
# what libjwtkit.a was built with (PKCS#11 through p11-kit, PostgreSQL):
# the objects the module pulls in may need them
extra="-lcurl -lcrypto -lpthread"
if nm "$BUILD/libjwtkit.a" 2>/dev/null | grep -q ' U p11_kit_'; then extra="$extra -lp11-kit"; fi
if nm "$BUILD/libjwtkit.a" 2>/dev/null | grep -q ' U PQ'; then extra="$extra -lpq"; fi
mkdir -p "$OUT"
W=$OUT/src
# a change of those libraries needs a new configure (they are in its Makefile)
if [ -f "$W/.jwtkit-libs" ] && [ "$(cat "$W/.jwtkit-libs")" != "$extra" ]; then rm -f "$W/.jwtkit-configured"; fi
stamp=$W/.jwtkit-configured
if [ ! -f "$stamp" ] || [ "$SRC/nginx/config" -nt "$stamp" ] || [ "$0" -nt "$stamp" ]; then
  rm -rf "$W"
  cp -R "$NGX_SRC" "$W"
  flags=""
  if [ -f "$NGX_SRC/conf_flags" ]; then
    # NGX_CONF_FLAGS=( --prefix=... ): Debian's own flags, one word each
    flags=$(sed -n 's/^NGX_CONF_FLAGS=( *\(.*\) *)$/\1/p' "$NGX_SRC/conf_flags")
  fi
  # shellcheck disable=SC2086
  (cd "$W" && JWTKIT_SRC=$SRC JWTKIT_BUILD=$BUILD JWTKIT_LIBS=$extra ./configure $flags --with-compat --with-threads \
    --add-dynamic-module="$SRC/nginx" >"$OUT/configure.log" 2>&1) || {
    echo "nginx/build.sh: nginx's configure failed (log: $OUT/configure.log)" >&2
    tail -20 "$OUT/configure.log" >&2
    exit 1
  }
  echo "$extra" >"$W/.jwtkit-libs"
  touch "$stamp"
fi
# the module's objects depend on the static libraries: relink when they change
for lib in "$BUILD/libjwtkit.a" "$BUILD/services/gatecore/libjwtkit_gatecore.a" "$BUILD/services/fetch/libjwtkit_fetch.a"; do
  if [ -f "$W/objs/ngx_http_jwtkit_module.so" ] && [ "$lib" -nt "$W/objs/ngx_http_jwtkit_module.so" ]; then
    rm -f "$W/objs/ngx_http_jwtkit_module.so"
  fi
done
make -s -C "$W" -f objs/Makefile modules >"$OUT/make.log" 2>&1 || {
  echo "nginx/build.sh: building the module failed (log: $OUT/make.log)" >&2
  tail -40 "$OUT/make.log" >&2
  exit 1
}
cp "$W/objs/ngx_http_jwtkit_module.so" "$OUT/ngx_http_jwtkit_module.so.tmp"
mv "$OUT/ngx_http_jwtkit_module.so.tmp" "$OUT/ngx_http_jwtkit_module.so"
echo "nginx/build.sh: $OUT/ngx_http_jwtkit_module.so"
