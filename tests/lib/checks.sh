# tests/lib/checks.sh - counted checks for the shell tests that print one
# line per check and a summary from PASS and FAIL:
#   . tests/lib/checks.sh
#   check "description" command...        # passes when the command succeeds
#   expect "description" EXPECTED ACTUAL
#   ok "description" / bad "description"  # record a result directly
PASS=0
FAIL=0
ok() {
  PASS=$((PASS + 1))
  echo "ok   - $*"
}
bad() {
  FAIL=$((FAIL + 1))
  echo "FAIL - $*"
}
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
expect() {
  if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (expected '$2', got '$3')"; fi
}
