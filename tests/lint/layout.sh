#!/usr/bin/env bash
# The map in docs/ARCHITECTURE.md, checked on the tree:
#   - only src/crypto/ includes OpenSSL headers (the library's other layers,
#     the command and the services go through libjwtkit and src/common);
#   - no source file of src/, cli/ or services/ is over 800 lines (files are
#     split by responsibility; a file that grows past this wants splitting);
#   - nothing in the repository cites a design document it does not hold.
# Usage: layout.sh SRCDIR
set -u
src=${1:?usage: layout.sh SRCDIR}
cd "$src" || exit 2
fail=0 pass=0
ok() { echo "ok   - $1"; pass=$((pass + 1)); }
bad() { echo "FAIL - $1"; fail=$((fail + 1)); }

outside=$(grep -rlE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<openssl/' src cli services \
  --include='*.c' --include='*.h' | grep -v '^src/crypto/' || true)
if [ -z "$outside" ]; then
  ok "only src/crypto/ includes OpenSSL headers"
else
  bad "OpenSSL headers included outside src/crypto/ (move the call behind src/crypto or libjwtkit):"
  printf '    %s\n' $outside
fi

big=$(find src cli services -name '*.[ch]' -exec wc -l {} + | awk '$2 != "total" && $1 > 800 {print $2 " (" $1 " lines)"}')
if [ -z "$big" ]; then
  ok "no file in src/, cli/ or services/ is over 800 lines"
else
  bad "files over 800 lines (split them by responsibility):"
  printf '    %s\n' "$big"
fi

cites=$(grep -rnE 'DESIGN\.md|DESIGN invariant' --include='*.c' --include='*.h' --include='*.md' --include='*.sh' \
  --include='*.py' --include='*.txt' src cli services include tests docs bench fuzz README.md 2>/dev/null |
  grep -v '^tests/lint/layout.sh:' || true)
if [ -z "$cites" ]; then
  ok "no file cites a design document outside the repository"
else
  bad "citations of a document the repository does not hold (docs/security.md holds the invariants):"
  printf '    %s\n' "$cites"
fi

echo "layout: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
