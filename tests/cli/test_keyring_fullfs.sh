#!/usr/bin/env bash
# jwtkit keyring on a full filesystem: every write that runs out of space
# fails with a clear error, and the keyring stays as it was (same `list
# --json` and `jwks` output, byte for byte; no temporary file left behind);
# with the space back, the same command succeeds.
#
# The test mounts a small tmpfs of its own (1 MiB) inside its temporary
# directory, so it needs root (CI runs as root); otherwise it is skipped
# (exit 77).  The tmpfs is unmounted on exit, whatever happens.
#
# A failed command reports no action (the keyring reports what it did only
# once it is stored) and leaves no file behind: a private key file written
# before keyring.json failed is removed again.
#
# For each operation that writes (rotate --force: a new key file and
# keyring.json; rotate: activation, keyring.json only; add: an imported
# key; revoke; init of a second keyring), with an ES256 keyring and an RSA
# keyring (larger key files), the filesystem is filled up to 0, 4 KiB,
# 8 KiB, ... of free space until the operation fits.
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root for a tmpfs mount"
  exit 77
fi
source "$(dirname "$0")/lib.sh" "$@"

MNT=$TMP/fs
mkdir "$MNT"
if ! mount -t tmpfs -o size=1m,mode=0700 jwtkit-fullfs-test "$MNT" 2>"$TMP/.mount"; then
  echo "SKIP: needs root for a tmpfs mount ($(cat "$TMP/.mount"))"
  exit 77
fi
unmount() {
  umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
}
trap 'unmount; cleanup' EXIT

T0=2026-11-28T12:00:00Z
STEP=4096
MAX_FREE=$((256 * 1024))

# fill LEAVE: fill the filesystem, then give LEAVE bytes back.
fill() {
  rm -f "$MNT/filler"
  dd if=/dev/zero of="$MNT/filler" bs=64k 2>/dev/null || true
  dd if=/dev/zero of="$MNT/filler" bs=4k oflag=append conv=notrunc 2>/dev/null || true
  if [ "$1" -gt 0 ]; then truncate -s "-$1" "$MNT/filler"; fi
}
unfill() { rm -f "$MNT/filler"; }

# state DIR: what must not change when a write fails.
state() {
  "$JWTKIT" keyring list "$1" --json 2>&1
  echo "-- jwks"
  "$JWTKIT" keyring jwks "$1" 2>&1
}
files() { (cd "$1" && find . -print | LC_ALL=C sort); }

# try_write NAME DIR ARGS...: run `jwtkit ARGS` at growing free space until
# it succeeds; every failure must be clean.  Sets TRIES.
try_write() {
  local name=$1 dir=$2
  shift 2
  local before after free=0 fbefore fafter
  before=$(state "$dir")
  fbefore=$(files "$dir")
  TRIES=0
  while [ "$free" -le "$MAX_FREE" ]; do
    fill "$free"
    run "$@"
    TRIES=$((TRIES + 1))
    if [ "$RC" -eq 0 ]; then
      unfill
      echo "$name: fails cleanly with less than $((free / 1024 + 1)) KiB free, succeeds with $((free / 1024)) KiB ($TRIES tries)"
      return 0
    fi
    check
    [[ "$ERR" == *"No space left on device"* ]] || fail "$name at $free bytes free: the error does not say what went wrong"
    unfill
    after=$(state "$dir")
    check
    [ "$before" == "$after" ] ||
      fail "$name at $free bytes free: the keyring changed: $(diff <(echo "$before") <(echo "$after") | head -20)"
    check
    ! find "$dir" -name '*.tmp*' | grep -q . || fail "$name at $free bytes free: temporary files left: $(find "$dir" -name '*.tmp*')"
    fafter=$(files "$dir")
    check
    [ "$fbefore" == "$fafter" ] ||
      fail "$name at $free bytes free: files changed: $(diff <(echo "$fbefore") <(echo "$fafter") | head -10)"
    check
    [ -z "$OUT" ] || fail "$name at $free bytes free: reported actions that were not stored: $OUT"
    free=$((free + STEP))
  done
  fail "$name: still failing with $MAX_FREE bytes free"
  # with all the space back it must work
  run "$@"
  assert_rc 0
}

exercise() {
  local alg=$1 ring=$MNT/ring-$1
  run keyring init "$ring" --alg "$alg" --at "$T0" --rotate-every 1h --max-age 5m --token-ttl 10m --publish-ahead 15m
  assert_rc 0

  # rotate --force: a new pending key (key file + keyring.json)
  try_write "$alg rotate --force" "$ring" keyring rotate "$ring" --force --at 2026-11-28T12:10:00Z
  assert_out_contains "published pending key"
  local pending
  pending=$(printf '%s\n' "$OUT" | sed -n 's/^published pending key \([^ ]*\) .*/\1/p')
  check
  [ -n "$pending" ] || fail "$alg: no pending key"

  # max-age later, forced again: the pending key activates, the active one
  # retires (keyring.json only)
  try_write "$alg rotate --force (activation)" "$ring" keyring rotate "$ring" --force --at 2026-11-28T12:20:00Z
  assert_out_contains "activated key $pending"

  # import a key
  run keygen --alg "$alg" --out "$TMP/imp-$alg.pem"
  assert_rc 0
  local bind=()
  [[ $alg == RS* || $alg == PS* ]] && bind=(--alg "$alg")
  try_write "$alg add" "$ring" keyring add "$ring" "$TMP/imp-$alg.pem" --kid "imported-$alg" "${bind[@]}" \
    --at 2026-11-28T12:21:00Z
  assert_out_contains "imported-$alg"

  # revoke
  try_write "$alg revoke" "$ring" keyring revoke "$ring" "imported-$alg" --at 2026-11-28T12:22:00Z

  # the keyring is whole: it opens, lists and publishes
  run keyring list "$ring"
  assert_rc 0
  assert_out_contains "$pending"
  run keyring jwks "$ring"
  assert_rc 0
  assert_out_contains "\"kid\":\"$pending\""
}

exercise ES256
exercise RS256

# init on a full filesystem: fails, and a retry with space succeeds
fill 0
run keyring init "$MNT/new" --alg ES256 --at "$T0"
check
[ "$RC" -ne 0 ] || fail "init succeeded on a full filesystem"
assert_err_contains "No space left on device"
unfill
check
! find "$MNT" -name '*.tmp*' | grep -q . || fail "init left temporary files: $(find "$MNT" -name '*.tmp*')"
run keyring init "$MNT/new" --alg ES256 --at "$T0"
assert_rc 0
run keyring list "$MNT/new"
assert_rc 0

finish
