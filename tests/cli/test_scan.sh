#!/usr/bin/env bash
# jwtkit scan: private key material in files tracked by git.
source "$(dirname "$0")/lib.sh" "$@"

mkdir repo
git -C repo init -q
cd repo
"$JWTKIT" keygen --alg ES256 --out k.pem --pub k.pub.pem --force 2>/dev/null
"$JWTKIT" jwk --private k.pem >k.jwk
"$JWTKIT" jwk k.pem >k.pub.jwk
"$JWTKIT" keygen --alg HS256 --out hs.jwk --force 2>/dev/null
mkdir -p config docs
# a JWK with "d" inside a larger JSON document, pretty-printed
{
  echo '{'
  echo '  "service": "api",'
  echo '  "signing": {'
  echo '    "kty": "EC",'
  echo '    "crv": "P-256",'
  sed 's/.*"x":"\([^"]*\)".*/    "x": "\1",/' k.jwk
  sed 's/.*"y":"\([^"]*\)".*/    "y": "\1",/' k.jwk
  sed 's/.*"d":"\([^"]*\)".*/    "d": "\1"/' k.jwk
  echo '  }'
  echo '}'
} >config/app.json
# PEM blocks of other kinds, embedded in text
{
  echo 'Some notes.'
  echo ''
  echo '-----BEGIN RSA PRIVATE KEY-----'
  echo 'MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu'
  echo '-----END RSA PRIVATE KEY-----'
  echo 'and'
  echo '    -----BEGIN OPENSSH PRIVATE KEY-----'
  echo '-----BEGIN ENCRYPTED PRIVATE KEY-----'
  echo '-----BEGIN EC PRIVATE KEY-----'
} >docs/notes.md
# not findings: public keys, a "d" without "kty", a kty without "d"
printf '{"d":"secret-looking","x":1}\n{"kty":"EC","x":"a","d":1}\n' >docs/other.json
printf 'int main(void) { return 0; } /* "d": { "kty" */\n' >docs/code.c
cp k.pem untracked.pem
git add k.pem k.pub.pem k.jwk k.pub.jwk hs.jwk config docs
git commit -qm keys

run scan
assert_rc 1
assert_golden scan_repo.txt
assert_err_contains "8 findings: private key material is tracked by git"
assert_out_not_contains "untracked.pem"
assert_out_not_contains "k.pub"
assert_out_not_contains "other.json"
assert_out_not_contains "code.c"
run scan .
assert_rc 1
assert_golden scan_repo.txt
# a subdirectory, a file, and from outside: paths are shown as given
run scan docs
assert_rc 1
assert_out_contains "docs/notes.md:3: PEM RSA PRIVATE KEY"
assert_out_not_contains "k.pem"
cd ..
run scan repo
assert_rc 1
assert_out_contains "repo/config/app.json:8: JWK private key (kty EC)"
assert_out_contains "repo/k.pem:1: PEM PRIVATE KEY"
run scan repo/docs/notes.md
assert_rc 1
assert_out_contains "repo/docs/notes.md:8: PEM ENCRYPTED PRIVATE KEY"
run scan repo/k.pub.pem
assert_rc 0
assert_out_empty
run scan repo/untracked.pem
assert_rc 0

# symbolic links are not followed: their target text is what git stores
ln -s "$TMP/repo/k.pem" repo/link.pem
git -C repo add link.pem
git -C repo commit -qm link
run scan --verbose repo
assert_rc 1
assert_out_not_contains "link.pem"
assert_err_contains "link.pem: symbolic link: its target text is scanned, not the file it points to"

# a clean repository
mkdir clean
git -C clean init -q
printf 'hello\n' >clean/readme.txt
"$JWTKIT" keygen --alg ES256 --out clean/key.pub.pem.priv --pub clean/pub.pem --force 2>/dev/null
git -C clean add readme.txt pub.pem
git -C clean commit -qm clean
run scan clean
assert_rc 0
assert_out_empty
assert_err_eq ""
mkdir empty
git -C empty init -q
run scan empty
assert_rc 0

assert_write_error scan repo

# ------------------------------------------------------------ --staged
# What the next commit holds is the index, not the work tree: a key that is
# staged and then deleted or overwritten in the work tree is still found.
mkdir st
git -C st init -q
cd st
printf 'hello\n' >readme.txt
cp ../repo/k.pem committed.pem
git add readme.txt committed.pem
git commit -qm base
cp ../repo/k.pem deleted.pem
cp ../repo/k.pem overwritten.pem
cp ../repo/k.jwk new.jwk
git add deleted.pem overwritten.pem new.jwk
rm deleted.pem
printf 'nothing secret here\n' >overwritten.pem
git mv committed.pem renamed.pem
run scan --staged
assert_rc 1
assert_golden scan_staged.txt
assert_err_contains "4 findings: private key material is staged for commit (git rm --cached FILE takes it out of the index)"
# the work tree alone misses the deleted and the overwritten key
run scan --worktree
assert_rc 1
assert_out_not_contains "deleted.pem"
assert_out_not_contains "overwritten.pem"
assert_out_contains "renamed.pem:1: PEM PRIVATE KEY"
# inside a git hook (GIT_INDEX_FILE set, as git sets it) --staged is the default
GIT_INDEX_FILE=.git/index run scan
assert_rc 1
assert_golden scan_staged.txt
GIT_INDEX_FILE=.git/index run scan --verbose
assert_err_contains "GIT_INDEX_FILE is set (a git hook): scanning the index"
GIT_INDEX_FILE=.git/index run scan --worktree
assert_rc 1
assert_out_not_contains "deleted.pem"
# a file deleted from the work tree, named as PATH; from another directory
run scan --staged deleted.pem
assert_rc 1
assert_out_eq "deleted.pem:1: PEM PRIVATE KEY"
cd ..
run scan --staged st/deleted.pem
assert_rc 1
assert_out_eq "st/deleted.pem:1: PEM PRIVATE KEY"
run scan --staged st
assert_rc 1
assert_out_contains "st/overwritten.pem:1: PEM PRIVATE KEY"
run scan --staged st/nothing-here.pem
assert_rc 0
assert_out_empty
# a directory deleted from the work tree, its files still staged
mkdir st/gone
cp repo/k.pem st/gone/a.pem
git -C st add gone/a.pem
rm -r st/gone
run scan --staged st/gone
assert_rc 1
assert_out_eq "st/gone/a.pem:1: PEM PRIVATE KEY"
cd st
run scan --staged gone
assert_rc 1
assert_out_eq "gone/a.pem:1: PEM PRIVATE KEY"
cd ..
git -C st rm -q --cached gone/a.pem
run scan --staged --worktree st
assert_rc 2
assert_err_contains "either --staged or --worktree"
# once unstaged, nothing is left to find
git -C st rm -q -f --cached deleted.pem overwritten.pem new.jwk renamed.pem
run scan --staged st
assert_rc 0
assert_out_empty
assert_err_eq ""

# a symbolic link is staged as its target text: that text is scanned, the
# file it points to is not
mkdir ln
git -C ln init -q
ln -s ../repo/k.pem ln/to-key.pem
ln -s -- '-----BEGIN EC PRIVATE KEY-----' ln/odd.link
git -C ln add to-key.pem odd.link
for mode in --staged --worktree; do
  run scan $mode --verbose ln
  assert_rc 1
  assert_out_eq "ln/odd.link:1: PEM EC PRIVATE KEY"
  assert_err_contains "to-key.pem: symbolic link: its target text is scanned"
done

# binary blobs are scanned as bytes
mkdir bin
git -C bin init -q
python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 64)' >bin/noise.bin
python3 -c 'import sys; sys.stdout.buffer.write(b"\x00\xff\x7f" * 100 + b"\n-----BEGIN PRIVATE KEY-----\n\x00")' >bin/embedded.bin
git -C bin add noise.bin embedded.bin
for mode in --staged --worktree; do
  run scan $mode bin
  assert_rc 1
  assert_out_eq "bin/embedded.bin:2: PEM PRIVATE KEY"
done

# a custom index file: GIT_INDEX_FILE selects it, as git does
mkdir alt
git -C alt init -q
cp repo/k.pem alt/only-in-alt.pem
GIT_INDEX_FILE=$TMP/alt.index git -C alt add only-in-alt.pem
GIT_INDEX_FILE=$TMP/alt.index run scan alt
assert_rc 1
assert_out_eq "alt/only-in-alt.pem:1: PEM PRIVATE KEY"
run scan --staged alt
assert_rc 0
GIT_INDEX_FILE=$TMP/no-such.index run scan alt
assert_rc 2
assert_err_contains "GIT_INDEX_FILE names $TMP/no-such.index, which does not exist"

# a file too large to scan is never a silent "clean"
mkdir big
git -C big init -q
{ head -c $((9 * 1024 * 1024)) /dev/zero; printf '\n-----BEGIN RSA PRIVATE KEY-----\n'; } >big/dump.bin
head -c $((9 * 1024 * 1024)) /dev/zero >big/zeros.bin
printf 'small\n' >big/small.txt
git -C big add dump.bin zeros.bin small.txt
run scan big # once silently "clean" (exit 0)
assert_rc 1
assert_err_contains "big/dump.bin: not scanned"
for mode in --staged --worktree; do
  run scan $mode big
  assert_rc 1
  assert_out_empty
  assert_err_contains "big/dump.bin: not scanned: 9437217 bytes, over --max-size (8388608 bytes)"
  assert_err_contains "big/zeros.bin: not scanned: 9437184 bytes"
  assert_err_contains "2 files not scanned, so the result is not clean: raise --max-size (at most 1G) to scan them, or pass --allow-skipped to accept them unscanned"
  run scan $mode --max-size 16M big
  assert_rc 1
  assert_out_eq "big/dump.bin:2: PEM RSA PRIVATE KEY"
  assert_err_not_contains "not scanned"
  run scan $mode --max-size 16M big/zeros.bin
  assert_rc 0
  assert_err_eq ""
  run scan $mode --allow-skipped big
  assert_rc 0
  assert_err_contains "2 files not scanned (--allow-skipped)"
  run scan $mode --max-size 6 big/small.txt
  assert_rc 0
  run scan $mode --max-size 5 big/small.txt
  assert_rc 1
  assert_err_contains "1 file not scanned, so the result is not clean: raise --max-size (at most 1G) to scan it"
done
for bad in 0 -1 2G 1025M 1.5M 8X "" 99999999999999999999; do
  run scan --max-size "$bad" big
  assert_rc 2
  assert_err_contains "bad --max-size"
done
run scan --max-size 1G --staged big/small.txt
assert_rc 0

# an unreadable file is not scanned either (root reads everything)
if [ "$(id -u)" != 0 ]; then
  cp repo/k.pem big/locked.pem
  git -C big add locked.pem
  chmod 000 big/locked.pem
  run scan --worktree --max-size 16M big
  assert_rc 1
  assert_err_contains "big/locked.pem: not scanned: Permission denied"
  assert_err_contains "make it readable"
  chmod 600 big/locked.pem
fi

# the pre-commit hook of the README, run as written: git runs it with
# GIT_INDEX_FILE set, so `jwtkit scan` reads what the commit would record
mkdir hook
git -C hook init -q
sed -n '/example: pre-commit-hook/,/^```$/p' "$TESTS_DIR/../../README.md" | sed '1,2d;$d' >hook.sh
check
grep -q 'jwtkit scan' hook.sh || fail "README: the pre-commit hook example was not found"
(cd hook && bash ../hook.sh)
check
[ -x hook/.git/hooks/pre-commit ] || fail "the README snippet did not install an executable hook"
export PATH="$(dirname "$JWTKIT"):$PATH"
printf 'hello\n' >hook/readme.txt
git -C hook add readme.txt
check
git -C hook commit -qm first >/dev/null 2>&1 || fail "the hook refused a clean commit"
cp repo/k.pem hook/key.pem
git -C hook add key.pem
rm hook/key.pem
check
if git -C hook commit -qm key >"$TMP/.hook" 2>&1; then fail "the hook let a staged key (deleted from the work tree) be committed"; fi
check
grep -q "key.pem:1: PEM PRIVATE KEY" "$TMP/.hook" || fail "the hook did not name key.pem: $(cat "$TMP/.hook")"
check
[ "$(git -C hook log --format=%s)" = first ] || fail "a commit was recorded"
git -C hook rm -q --cached key.pem
# git commit -a: the temporary index the hook sees holds the work tree's key
cp repo/k.pem hook/readme.txt
check
if git -C hook commit -qam "key via -a" >"$TMP/.hook" 2>&1; then fail "the hook let commit -a record a key"; fi
check
grep -q "readme.txt:1: PEM PRIVATE KEY" "$TMP/.hook" || fail "commit -a: not found: $(cat "$TMP/.hook")"
printf 'hello again\n' >hook/readme.txt
check
git -C hook commit -qam second >/dev/null 2>&1 || fail "the hook refused a clean commit -a"

# not a work tree: exit 2
mkdir plain
run scan plain
assert_rc 2
assert_err_contains "plain is not inside a git work tree"
run scan no-such-dir
assert_rc 2
assert_err_contains "cannot access no-such-dir"
run scan repo/.git
assert_rc 2
# git missing: exit 3
PATH=/nonexistent run scan repo
assert_rc 3
assert_err_contains "git is not installed"

finish
