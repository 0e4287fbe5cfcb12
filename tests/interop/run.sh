#!/bin/bash
# Cross-implementation interop suite (ctest: interop).
#
#   tests/interop/run.sh PATH_TO_jwtkit_interop
#
# Peers: PyJWT and jwcrypto (Debian python3-jwt, python3-jwcrypto, always
# through /usr/bin/python3) and node jose 5 (installed here into
# tests/interop/node/node_modules with `npm ci` from the committed
# package-lock.json when missing).  A peer that cannot be set up is reported
# as SKIP; under CI=true that is a failure.  The last line of the output is
# "interop: N passed, M failed"; the exit status is non-zero on any failure.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
driver="${1:-}"
if [ -z "$driver" ] || [ ! -x "$driver" ]; then
  echo "usage: tests/interop/run.sh PATH_TO_jwtkit_interop" >&2
  exit 2
fi
ci=0
case "${CI:-}" in true | TRUE | 1 | yes) ci=1 ;; esac

py=/usr/bin/python3
if [ ! -x "$py" ]; then
  echo "SKIP: $py not found: no Python peers (PyJWT, jwcrypto) and no driver script"
  if [ "$ci" = 1 ]; then
    echo "interop: 0 passed, 1 failed"
    exit 1
  fi
  echo "interop: 0 passed, 0 failed"
  exit 0
fi

# ------------------------------------------------------------- node jose
node_dir="$here/node"
node_args=()
setup_node() {
  command -v node >/dev/null 2>&1 || { echo "node is not installed"; return 1; }
  if [ ! -f "$node_dir/node_modules/jose/package.json" ]; then
    command -v npm >/dev/null 2>&1 || { echo "npm is not installed"; return 1; }
    echo "interop: installing node jose (npm ci in $node_dir)" >&2
    # one installer at a time (ctest -j, or make test and make test-asan together)
    (
      flock 9
      if [ ! -f "$node_dir/node_modules/jose/package.json" ]; then
        cd "$node_dir" && timeout 180 npm ci --no-audit --no-fund --loglevel=error >&2
      fi
    ) 9>"${TMPDIR:-/tmp}/jwtkit-interop-npm.lock"
    [ -f "$node_dir/node_modules/jose/package.json" ] ||
      { echo "npm ci failed (no network or registry?)"; return 1; }
  fi
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' ||
    { echo "node $(node --version) is older than 18 (jose 5 needs 18+)"; return 1; }
  return 0
}
if why="$(setup_node)"; then
  node_args=(--node-dir "$node_dir")
else
  node_args=(--node-skip "${why:-node setup failed}")
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/jwtkit-interop-XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$py" "$here/interop.py" --driver "$driver" --work "$work" "${node_args[@]}"
