#!/bin/bash
# `jwtkit keyring` against a PostgreSQL keyring: init, list, rotate, jwks,
# rekey, kek-new, and the errors a user meets (no KEK, wrong KEK, a KEK
# option on a directory keyring, a password in a message).
#   cli_keyring.sh PATH/TO/jwtkit
. "$(dirname "$0")/../cli/lib.sh" "$@"
. "$TESTS_DIR/../pg/pglib.sh"
pg_start
URL=$PG_URL
T0=2026-11-28T09:00:00Z

run keyring kek-new
assert_rc 0
assert_out_contains "# jwtkit KEK "
printf '%s\n' "$OUT" > kek1
chmod 600 kek1
run keyring kek-new
printf '%s\n' "$OUT" > kek2
chmod 600 kek2
id1=$(sed -n 's/^# jwtkit KEK \([0-9a-f]*\):.*/\1/p' kek1)
id2=$(sed -n 's/^# jwtkit KEK \([0-9a-f]*\):.*/\1/p' kek2)

# no KEK at all
run keyring init "$URL" --alg ES256 --at $T0
assert_rc 2
assert_err_contains "key-encryption keys"
assert_err_not_contains "$PG_PASSWORD"
# KEK options belong to PostgreSQL keyrings
run keyring init ./ring --alg ES256 --kek-file kek1
assert_rc 2
assert_err_contains "KEKs apply to a PostgreSQL keyring"

run keyring init "$URL" --alg ES256 --alg EdDSA --kek-file kek1 --at $T0
assert_rc 0
assert_out_contains "created active key"
# without a KEK, list shows the public metadata, said to be unauthenticated;
# everything else still needs the KEK
run keyring list "$URL" --kek-file kek1 --json
listed=$OUT
run keyring list "$URL" --json
assert_rc 0
assert_out_eq "$listed"
assert_err_contains "no KEK given: the public key list as the database holds it, NOT authenticated"
run keyring jwks "$URL"
assert_rc 2
assert_err_contains "key-encryption keys"
run keyring trust-document "$URL"
assert_rc 2
run keyring init "$URL" --alg ES256 --kek-file kek1 --at $T0
assert_rc 2
assert_err_contains "already holds a keyring"
assert_err_contains ":***@"
assert_err_not_contains "$PG_PASSWORD"

# a KEK file others can read is refused
cp kek1 kek-open
chmod 644 kek-open
run keyring list "$URL" --kek-file kek-open
assert_rc 2
assert_err_contains "kek-open has mode 0644"
assert_err_contains "chmod 600 kek-open"
run serve client add demo --audience api --clients clients.conf
assert_rc 0
run serve --keyring "$URL" --kek-file kek-open --listen 127.0.0.1:1 --issuer https://auth.example --clients clients.conf
assert_rc 2
assert_err_contains "kek-open has mode 0644"

# the KEK from the environment (the default) or a named variable
JWTKIT_KEK=$(tail -1 kek1) run keyring list "$URL" --json
assert_rc 0
assert_out_contains '"state":"active"'
MYKEK=$(tail -1 kek1) run keyring list "$URL" --kek-env MYKEK
assert_rc 0
# a KEK that sealed nothing here
run keyring list "$URL" --kek-file kek2
assert_rc 2
assert_err_contains "not among the configured KEKs"

run keyring rotate "$URL" --kek-file kek1 --at 2026-12-27T09:00:00Z
assert_rc 0
assert_out_contains "published pending key"
run keyring jwks "$URL" --kek-file kek1
assert_rc 0
[ "$(printf '%s' "$OUT" | grep -o '"kid"' | wc -l)" = 4 ] && check || fail "the JWKS has 4 keys"

# rotate the KEK: new first, old second; rekey; then the new one alone
cat kek2 kek1 > both
chmod 600 both
run keyring rekey "$URL" --kek-file both
assert_rc 0
assert_out_contains "re-authenticated the keyring document (generation 2) under the first KEK $id2"
assert_out_contains "re-sealed 4 of 4 private keys under the first KEK"
[ "$(pg_psql -c "select string_agg(distinct kek_id, ',') from jwtkit_private_keys")" = "$id2" ] && check ||
  fail "every row is sealed under the new KEK $id2"
run keyring list "$URL" --kek-file kek2
assert_rc 0
run keyring list "$URL" --kek-file kek1
assert_rc 2
run keyring rekey ./ring
assert_rc 2
assert_err_contains "PostgreSQL keyring"

# no plaintext private key anywhere in the tables
rows=$(pg_psql -c "select doc from jwtkit_keyring" -c "select encode(sealed, 'escape') from jwtkit_private_keys")
case $rows in *"PRIVATE KEY"*|*'"d":'*) fail "plaintext private key material in the database" ;; *) check ;; esac
[ "$id1" != "$id2" ] && check || fail "two KEKs, two ids"

# a private key imported from a directory keyring is published at once as
# pending, and can be revoked (the move itself uses verify-only keys:
# tests/pg/keyring_move.sh)
run keyring init ./ring --alg ES256 --at $T0
assert_rc 0
old_kid=$(printf '%s' "$OUT" | sed -n 's/^created active key \([^ ]*\) .*/\1/p')
run keyring add "$URL" "ring/keys/$old_kid.pem" --kek-file kek2 --at 2026-12-27T10:00:00Z
assert_rc 0
assert_out_contains "added pending key $old_kid"
run keyring jwks "$URL" --kek-file kek2
assert_out_contains "\"kid\":\"$old_kid\""
run keyring revoke "$URL" --kek-file kek2 --at 2026-12-27T11:00:00Z -- "$old_kid" # a kid may begin with a dash
assert_rc 0
run keyring jwks "$URL" --kek-file kek2
assert_out_not_contains "$old_kid"

# someone with write access to the table but no KEK changes the keyring
# document: every command refuses it (docs/keyring.md, Threat model)
run keyring jwks "$URL" --kek-file kek2
assert_rc 0
good_jwks=$OUT
pg_psql -c "CREATE TABLE saved_doc AS SELECT doc FROM jwtkit_keyring" >/dev/null
pg_psql -c "UPDATE jwtkit_keyring SET doc = replace(doc, '\"state\":\"pending\"', '\"state\":\"active\"')" >/dev/null
run keyring jwks "$URL" --kek-file kek2
assert_rc 1
assert_err_contains "the keyring document does not match its MAC under KEK $id2"
assert_err_contains "changed by someone without the KEK; refused"
assert_out_eq ""
run keyring rotate "$URL" --kek-file kek2 --at 2026-12-27T12:00:00Z
assert_rc 1
assert_err_contains "does not match its MAC"
pg_psql -c "UPDATE jwtkit_keyring SET doc = (SELECT doc FROM saved_doc)" >/dev/null
run keyring jwks "$URL" --kek-file kek2
assert_rc 0
assert_out_eq "$good_jwks"

# a document written before jwtkit authenticated documents (version 1, no
# MAC) is refused until reviewed and trusted (docs/keyring.md, Upgrading)
pg_psql -c "UPDATE jwtkit_keyring SET doc = regexp_replace(replace(doc, '\"version\":2', '\"version\":1'), ',\"auth\":\{[^}]*\}\}\n\$', E'}\n')" >/dev/null
run keyring jwks "$URL" --kek-file kek2
assert_rc 1
assert_err_contains "the keyring document is not authenticated"
assert_err_contains "jwtkit keyring trust-document"
cp kek2 kek # the commands of docs/keyring.md, as written there
chmod 600 kek
run keyring trust-document "$URL" --kek-file kek
assert_rc 1
assert_out_contains "NOT AUTHENTIC"
assert_out_contains "run again with --force"
gen=$(pg_psql -c "SELECT (doc::json->>'generation')::int + 1 FROM jwtkit_keyring")
run keyring trust-document "$URL" --kek-file kek --force
assert_rc 0
assert_out_contains "authenticated the keyring document as generation $gen under KEK $id2"
run keyring jwks "$URL" --kek-file kek2
assert_rc 0
assert_out_eq "$good_jwks"

# the database is down: a clear error, no crash
pg_stop_only
run keyring list "$URL" --kek-file kek2
assert_rc 3
assert_err_contains "cannot connect"
assert_err_not_contains "$PG_PASSWORD"
finish
