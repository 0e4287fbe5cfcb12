#!/usr/bin/env bash
# ctest nginx_build (fixture nginx_so of the nginx tests): builds
# ngx_http_jwtkit_module.so with nginx/build.sh, so that `make test` from a
# fresh clone runs the module's tests.  It runs what `make nginx-module`
# runs (docs/nginx.md).  Without nginx-dev it says so and
# exits 0: the tests that need the module then skip (77); under CI=true a
# missing nginx-dev is a failure.
src=$1 build=$2
sh "$src/nginx/build.sh" "$src" "$build"
rc=$?
if [ "$rc" = 77 ]; then
  if [ "${CI:-}" = true ]; then
    echo "FAIL: nginx-dev is not installed (scripts/install-deps installs it)"
    exit 1
  fi
  echo "SKIP: nginx-dev is not installed: the nginx tests will skip"
  exit 0
fi
exit "$rc"
