/*
 * The command table: every command with its synopsis, options and help
 * text, declared together.  `jwtkit help CMD` and `jwtkit CMD --help` print
 * what is written here; nothing else describes the options.
 *
 * To add a command: add its option list and one row below, and write its
 * cli_cmd_* function (declared in cli.h).
 */
#include <stdint.h>

#include "cli.h"
#ifdef JWTKIT_HAVE_SERVE
#include "jwtkit_serve.h"
#endif
#ifdef JWTKIT_HAVE_GATE
#include "jwtkit_gate.h"
#endif
#ifdef JWTKIT_HAVE_UI
#include "jwtkit_ui.h"
#endif

#define ANY_POS SIZE_MAX

#define ALG_LIST "HS256 HS384 HS512 RS256 RS384 RS512\nPS256 PS384 PS512 ES256 ES384 ES512 EdDSA"

#define OPT_PASSPHRASE_IN                                                                   \
  {"passphrase-file", "FILE", 0, "passphrase of an encrypted PEM key: the first\nline of FILE (- = stdin)"}, \
  {"passphrase-env", "NAME", 0, "passphrase of an encrypted PEM key: the value\nof environment variable NAME"}

#define OPT_SECRET                                                                        \
  {"secret-file", "FILE", 0, "HMAC secret: the raw bytes of FILE (- = stdin);\n"          \
                             "a trailing newline is part of the secret"},                \
  {"secret-env", "NAME", 0, "HMAC secret: the value of environment variable NAME"}

/* ---------------------------------------------------------- keygen */

static const cli_opt keygen_opts[] = {
    {"alg", "ALG", 0, "algorithm the key is for (required):\n" ALG_LIST},
    {"bits", "N", 0, "RSA: modulus bits, 2048..16384 (default 2048);\nEdDSA: 255 = Ed25519 (default), 448 = Ed448"},
    {"kid", "KID", 0, "key id (default: RFC 7638 thumbprint; HS*: random)"},
    {"out", "FILE", 0, "private key file (- = stdout); or --pkcs11"},
    {"pkcs11", "URI", 0, "generate the key inside a PKCS#11 token instead:\npkcs11:token=T;object=NAME (docs/pkcs11.md);\nthe private key never leaves it"},
    {"pub", "FILE", 0, "also write the public key to FILE (not for HS*)"},
    {"format", "FMT", 0, "pem (default) or jwk; HS*: jwk (default) or raw"},
    {"passphrase-file", "FILE", 0, "encrypt the PEM private key with the first line\nof FILE (- = stdin)"},
    {"passphrase-env", "NAME", 0, "encrypt the PEM private key with the value of\nenvironment variable NAME"},
    {"force", NULL, 0, "overwrite existing files, and write inside a git\nwork tree even where git does not ignore the path"},
    {NULL, NULL, 0, NULL}};

/* ------------------------------------------------------------- sign */

static const cli_opt sign_opts[] = {
    {"key", "FILE|URI", 0, "private key: PEM (PKCS#8, PKCS#1, SEC1, encrypted\nPKCS#8), DER or JWK (oct JWK for HS*), or a\npkcs11: URI of a key in a token (docs/pkcs11.md)"},
    {"keyring", "DIR|URL", 0, "sign with the keyring's active key for --alg\n(test tokens: with --at, --ttl, --nbf, --aud they\ncan be expired, not yet valid, for another\naudience)"},
    {"kek-file", "FILE", 0, "--keyring on PostgreSQL: key-encryption keys\n(default: $JWTKIT_KEK)"},
    {"kek-env", "NAME", 0, "--keyring on PostgreSQL: KEKs from environment\nvariable NAME"},
    OPT_SECRET,
    {"alg", "ALG", 0, "signature algorithm (required)"},
    {"kid", "KID", 0, "kid header (default: the JWK's kid; PEM and DER:\nthe key's thumbprint; secrets: none; \"\" = none)"},
    {"claims", "JSON|@FILE|-", 0, "claims object to start from; the options below\noverride its members"},
    {"iss", "S", 0, "issuer claim"},
    {"sub", "S", 0, "subject claim"},
    {"aud", "S", CLI_OPT_MULTI, "audience (repeat for several; replaces \"aud\"\nfrom --claims)"},
    {"ttl", "DURATION", 0, "lifetime: exp = now + DURATION (default 15m)"},
    {"nbf", "TIME", 0, "not-before time (Unix seconds or RFC 3339)"},
    {"at", "TIME", 0, "sign as if now were TIME (for iat and exp)"},
    {"typ", "T", 0, "typ header (default JWT; \"\" = no typ)"},
    {"header", "NAME=VALUE", CLI_OPT_MULTI, "extra protected header member; VALUE is JSON\nif it parses as JSON, else a string"},
    {"no-iat", NULL, 0, "do not add \"iat\""},
    {"jti", NULL, 0, "add a random \"jti\" (128 bits)"},
    OPT_PASSPHRASE_IN,
    {NULL, NULL, 0, NULL}};

/* ----------------------------------------------------------- verify */

static const cli_opt verify_opts[] = {
    {"key", "FILE", CLI_OPT_MULTI, "trusted key: PEM, DER, JWK or JWK Set"},
    {"jwks", "FILE|URL", CLI_OPT_MULTI, "trusted JWK Set: file, or https:// URL"},
    OPT_SECRET,
    {"alg", "ALG", CLI_OPT_MULTI, "accepted algorithm(s), repeatable or comma\nseparated (required)"},
    {"iss", "S", CLI_OPT_MULTI, "accepted issuer (repeatable)"},
    {"aud", "S", CLI_OPT_MULTI, "accepted audience (repeatable)"},
    {"sub", "S", 0, "required subject"},
    {"typ", "T", 0, "required typ header (RFC 7515 comparison)"},
    {"leeway", "SECONDS", 0, "clock skew allowance, 0..300 (default 60)"},
    {"at", "TIME", 0, "verify as if now were TIME"},
    {"max-age", "DURATION", 0, "reject tokens whose iat is older than DURATION"},
    {"require", "CLAIM", CLI_OPT_MULTI, "claim that must be present (repeatable)"},
    {"insecure-no-aud", NULL, 0, "accept a token's \"aud\" without checking it"},
    {"allow-http", NULL, 0, "allow a plain http:// JWKS URL"},
    OPT_PASSPHRASE_IN,
    {"verbose", NULL, 0, "report key selection and skipped keys on stderr"},
    {NULL, NULL, 0, NULL}};

/* ----------------------------------------------------------- decode */

static const cli_opt decode_opts[] = {
    {"json", NULL, 0, "print {\"header\":...,\"payload\":...,\"verified\":false}"},
    {"at", "TIME", 0, "reference time for the relative times (default now)"},
    {NULL, NULL, 0, NULL}};

/* ---------------------------------------------- jwk, jwks, thumbprint */

static const cli_opt jwk_opts[] = {
    {"private", NULL, 0, "include the private members (required for oct keys)"},
    {"kid", "KID", 0, "kid to set (default: the JWK's kid, else the\nthumbprint; oct keys: none)"},
    {"alg", "ALG", 0, "algorithm (required for RSA PEM/DER keys)"},
    OPT_PASSPHRASE_IN,
    {NULL, NULL, 0, NULL}};

static const cli_opt jwks_opts[] = {
    {"alg", "ALG", 0, "algorithm for keys that need one (RSA PEM/DER)"},
    OPT_PASSPHRASE_IN,
    {NULL, NULL, 0, NULL}};

static const cli_opt thumbprint_opts[] = {
    {"uri", NULL, 0, "print the RFC 9278 URI form"},
    OPT_PASSPHRASE_IN,
    {NULL, NULL, 0, NULL}};

static const cli_opt scan_opts[] = {
    {"staged", NULL, 0, "scan what the index holds (the next commit), not\nthe work tree; the default in a git hook"},
    {"worktree", NULL, 0, "scan the files in the work tree, even in a hook"},
    {"max-size", "SIZE", 0, "largest file scanned (default 8M; K, M, G units;\nat most 1G)"},
    {"allow-skipped", NULL, 0, "exit 0 even when files were not scanned"},
    {"verbose", NULL, 0, "report symbolic links, submodules and files\ndeleted from the work tree"},
    {NULL, NULL, 0, NULL}};

static const cli_opt pem_opts[] = {
    {"pair", NULL, 0, "the two FILEs are a PRIVATE and a PUBLIC key that\nmust match"},
    {"json", NULL, 0, "print a JSON array with one report per file"},
    OPT_PASSPHRASE_IN,
    {NULL, NULL, 0, NULL}};

static const cli_opt keyring_opts[] = {
    {"alg", "ALG", CLI_OPT_MULTI, "init: algorithms to keep an active key for\n(RS*, PS*, ES*, EdDSA; repeatable or comma\nseparated); add: bind an RSA key to RS* or PS*"},
    {"max-age", "DURATION", 0, "init: JWKS Cache-Control max-age (default 5m)"},
    {"token-ttl", "DURATION", 0, "init: longest token lifetime (default 15m)"},
    {"leeway", "DURATION", 0, "init: verifiers' clock leeway (default 60s)"},
    {"rotate-every", "DURATION", 0, "init: how long a key signs (default 30d)"},
    {"publish-ahead", "DURATION", 0, "init: publish the next key this long before\nthe rotation (default max(2 x max-age, period/30))"},
    {"bits", "N", 0, "init: RSA modulus of generated keys (default 2048)"},
    {"pkcs11", "URI", 0, "init: make and keep the keys in this PKCS#11\ntoken (pkcs11:token=LABEL?module-path=...&\npin-source=FILE), never in files or rows"},
    {"kid", "KID", 0, "add: the kid of the imported key (default: its\nown, else its thumbprint)"},
    {"verify-only", NULL, 0, "add: publish public keys (a PEM, JWK or JWK Set;\nprivate keys give their public half) that another\nkeyring signs with: never activated here, held in\nthe JWKS until `release`"},
    {"force", NULL, 0, "rotate: treat active keys as due now (still waits\nfor max-age); init: write keys inside a git work\ntree that does not ignore DIR; trust-document:\nauthenticate the document shown"},
    {"at", "TIME", 0, "use TIME (Unix seconds or RFC 3339) as now"},
    {"json", NULL, 0, "list: print JSON"},
    {"kek-file", "FILE", 0, "PostgreSQL keyring: key-encryption keys, one per\nline, the first seals (default: $JWTKIT_KEK)"},
    {"kek-env", "NAME", 0, "PostgreSQL keyring: KEKs from environment\nvariable NAME (comma separated)"},
    OPT_PASSPHRASE_IN,
    {NULL, NULL, 0, NULL}};

static const cli_opt no_opts[] = {{NULL, NULL, 0, NULL}};

/* keyring OPERATION ...: how many arguments each operation takes */
static const cli_sub keyring_subs[] = {
    {"init", 2, "DIR"},     {"add", 3, "DIR KEYFILE"}, {"rotate", 2, "DIR"}, {"plan", 2, "DIR"},
    {"revoke", 3, "DIR KID"}, {"list", 2, "DIR"},      {"jwks", 2, "DIR"},   {"rekey", 2, "URL"},
    {"trust-document", 2, "DIR|URL"}, {"release", 2, "DIR"}, {"kek-new", 1, ""}, {NULL, 0, NULL}};

/* ------------------------------------------------------------ table */

const cli_cmd cli_commands[] = {
    {"keygen", cli_cmd_keygen, "--alg ALG (--out FILE | --pkcs11 URI) [--pub FILE]\n[--format pem|jwk|raw] [options]", 0, 0,
     "generate a signing key",
     "Generates a key from the system CSPRNG.  The private key is written with\n"
     "mode 0600 through a temporary file in the same directory, fsync and rename,\n"
     "so FILE is either absent or complete.  An existing file is never replaced\n"
     "without --force.  Inside a git work tree the private key is only written\n"
     "where git ignores the path (git check-ignore), or with --force.\n"
     "\n"
     "PEM output is PKCS#8 (encrypted with AES-256-CBC and PBKDF2 when a\n"
     "passphrase is given) and SPKI for --pub.  HS* keys are written as an oct\n"
     "JWK, or with --format raw as a secret file (a line of base64url text for\n"
     "the random bytes): the form --secret-file, jwtkit serve and jwtkit gate's\n"
     "legacy_hs256_secret_file take; they have no public\n"
     "part.  The kid and the paths are reported on stderr.\n"
     "\n"
     "With --pkcs11 the key pair is generated inside a PKCS#11 token, labelled\n"
     "with the URI's object= (id=: its CKA_ID, default the thumbprint), private\n"
     "key sensitive and not extractable; the URI to sign with is printed.  The\n"
     "PIN comes from pin-source= in the URI or $JWTKIT_PKCS11_PIN, never from\n"
     "the command line.",
     keygen_opts, NULL, NULL},
    {"sign", cli_cmd_sign,
     "(--key FILE|URI | --keyring DIR|URL | --secret-file FILE |\n --secret-env NAME) --alg ALG [options]", 0, 0,
     "sign claims and print a compact JWT",
     "Claims are built in this order: the --claims object, then --iss, --sub,\n"
     "--aud, then iat = now and exp = now + ttl (--ttl, default 15m), --nbf and\n"
     "--jti; later values replace earlier ones.  The token and a newline are\n"
     "printed on stdout.\n"
     "\n"
     "Keys are recognised by their content: PEM, DER, or a JSON JWK.  Secrets\n"
     "are never taken from the command line.  --secret-file uses the file's\n"
     "bytes unchanged (a trailing newline is part of the secret: write it with\n"
     "printf %s or head -c); a secret that looks like a PEM key or a JWK is\n"
     "refused.  A PEM or DER key without --kid signs with its RFC 7638\n"
     "thumbprint as kid, so tokens always name their key.\n"
     "\n"
     "--key pkcs11:token=T;object=NAME signs with a key in a PKCS#11 token\n"
     "(the PIN from pin-source= in the URI or $JWTKIT_PKCS11_PIN; pin-value= is\n"
     "refused); its kid is its thumbprint too.",
     sign_opts, NULL, NULL},
    {"verify", cli_cmd_verify,
     "(--key FILE | --jwks FILE|URL | --secret-file FILE |\n --secret-env NAME)... --alg ALG... [options]\n[TOKEN|@FILE|-]",
     0, 1, "verify a JWT and print its claims",
     "Prints the verified claims JSON on stdout and exits 0, or prints one line\n"
     "\"jwtkit: verify: REASON\" on stderr and exits 1.  Without TOKEN the token\n"
     "is read from stdin.\n"
     "\n"
     "Every key is bound to exactly one algorithm of --alg: a secret to the one\n"
     "HS* algorithm (several HS* algorithms with a secret is an error); an RSA\n"
     "key to the one RS*/PS* algorithm; EC and EdDSA keys by their curve, which\n"
     "must be allowed.  JWK Sets add the keys whose algorithm is allowed (RSA\n"
     "keys without \"alg\" take the one RS*/PS* algorithm of --alg, if there is\n"
     "exactly one); secret (oct) keys in a set are ignored.  So one call can\n"
     "accept HS256 tokens under a secret and RS256 tokens under a public key:\n"
     "  jwtkit verify --secret-file s --key rsa.pub.pem --alg HS256,RS256\n"
     "Several PEM keys for one algorithm are told apart by their thumbprint,\n"
     "the kid `jwtkit sign` gives tokens of PEM keys.\n"
     "\n"
     "Safe by default: a token with \"aud\" is rejected unless --aud names one\n"
     "of its audiences (or --insecure-no-aud); \"exp\" is required.  A JWKS URL\n"
     "must be https:// (unless --allow-http); it is fetched with a 5 s timeout,\n"
     "at most 1 MiB, without following redirects.",
     verify_opts, NULL, NULL},
    {"decode", cli_cmd_decode, "[--json] [--at TIME] [TOKEN|@FILE|-]", 0, 1,
     "show a JWT's header and claims WITHOUT verifying it",
     "The first line of the output is \"UNVERIFIED: signature not checked\";\n"
     "then the header and the payload, indented, and exp/nbf/iat as RFC 3339\n"
     "times in UTC with the time relative to now.  Never base a decision on\n"
     "this output: use `jwtkit verify`.  Without TOKEN it is read from stdin.",
     decode_opts, NULL, NULL},
    {"jwk", cli_cmd_jwk, "[--private] [--kid KID] [--alg ALG] FILE|URI|-", 1, 1,
     "convert a PEM, DER or JWK key to a JWK",
     "Prints the public JWK of the key (with --private: the private JWK).  The\n"
     "JWK carries \"alg\", \"use\":\"sig\" and a kid (the thumbprint unless the\n"
     "input JWK or --kid names one).  A pkcs11: URI prints the public half of\n"
     "a key in a token (never its private half).",
     jwk_opts, NULL, NULL},
    {"jwks", cli_cmd_jwks, "[--alg ALG] FILE|URI...", 1, ANY_POS, "build a public JWK Set from key files",
     "Each FILE is a PEM, DER or JWK key, or a JWK Set whose keys are merged,\n"
     "or a pkcs11: URI of a key in a token (its public half).\n"
     "Only public members are written.  Secrets (oct keys) are refused: they\n"
     "must never be published.  Keys without kid get their thumbprint; two keys\n"
     "with one kid are an error.",
     jwks_opts, NULL, NULL},
    {"thumbprint", cli_cmd_thumbprint, "[--uri] FILE|URI|-", 1, 1, "print a key's RFC 7638 thumbprint",
     "The SHA-256 JWK thumbprint, base64url.  For an oct (HMAC) key the\n"
     "thumbprint is derived from the secret: do not publish it.  A pkcs11:\n"
     "URI names a key in a token (its public half is read).",
     thumbprint_opts, NULL, NULL},
    {"scan", cli_cmd_scan, "[PATH]", 0, 1, "find private keys in files tracked by git",
     "Lists every file tracked by git under PATH (default .) that holds private\n"
     "key material: PEM private key blocks (PKCS#8, RSA, EC, ENCRYPTED,\n"
     "OPENSSH, ...) and JWKs with a private \"d\" member or an oct \"k\".  One\n"
     "line \"path:line: kind\" per finding.\n"
     "\n"
     "--staged reads the blobs in the index -- what `git commit` will record,\n"
     "whatever the work tree holds now -- and is the default when\n"
     "GIT_INDEX_FILE is set, as git sets it for the pre-commit hook.  Without\n"
     "it the files in the work tree are read.  A symbolic link's target text is\n"
     "scanned, never the file it points to.\n"
     "\n"
     "Exits 1 when something was found, and also when a file was not scanned\n"
     "(over --max-size, unreadable) unless --allow-skipped is given; 0 when\n"
     "every file was scanned and nothing was found; 2 when PATH is not inside\n"
     "a git work tree.",
     scan_opts, NULL, NULL},
    {"help", cli_cmd_help, "[COMMAND]", 0, 1, "show help for jwtkit or one command", NULL, no_opts, NULL, NULL},
    {"pem", cli_cmd_pem, "check [--json] FILE... | check --pair PRIVATE PUBLIC", 2, ANY_POS,
     "validate PEM files before deploy",
     "Reports, per file and per PEM block, the type (public, private, encrypted\n"
     "private, certificate), the family (RSA, EC, OKP) and size or curve, then\n"
     "every problem found: bad armor, wrong or mismatched labels, bad base64,\n"
     "text before or after the blocks, several keys in one file, RSA below 2048\n"
     "bits or with e != 65537, curves other than P-256/384/521 and Ed25519/448,\n"
     "content that is not what its label says, a private key file readable by\n"
     "group or others, and (--pair) a private and public key that do not match.\n"
     "An encrypted key is checked in full when a passphrase is given.\n"
     "Exits 1 when any problem is found, 0 when every file is clean, 2 when a\n"
     "file cannot be read.",
     pem_opts, NULL, NULL},
    {"keyring", cli_cmd_keyring, "init|add|rotate|plan|revoke|release|list|jwks|rekey|trust-document|kek-new [DIR|URL] [KEYFILE|KID] [options]", 1, 3,
     "manage signing keys with a rotation lifecycle",
     "A keyring is a directory: keyring.json (metadata and public keys) and\n"
     "keys/*.pem (PKCS#8 private keys, mode 0600, encrypted with a passphrase\n"
     "if one is given); or a PostgreSQL database, named by a postgres:// URL\n"
     "in place of DIR, shared by several issuers, with every private key\n"
     "sealed (AES-256-GCM) under a key-encryption key (--kek-file, --kek-env\n"
     "or $JWTKIT_KEK).  Keys go pending -> active -> retiring -> retired:\n"
     "a new key is published before it signs (at least max-age), one key per\n"
     "algorithm signs, an old key stays published until every token it signed\n"
     "has expired (+ leeway + max-age).  Every change is atomic.  The\n"
     "keyring document (keys, states, times, public keys) is authenticated\n"
     "under the first KEK, or a directory keyring's passphrase: a document\n"
     "changed without it, or an older one put back, is refused (exit 1).\n"
     "With init --pkcs11 URI the private keys are made and kept in a PKCS#11\n"
     "token instead (docs/pkcs11.md): none is ever written to DIR or the\n"
     "database, and a missing token is an error, never a fallback to files.\n"
     "\n"
     "  init DIR --alg ES256     create a keyring; its first keys sign at once\n"
     "  add DIR KEYFILE          import a private key as pending\n"
     "  add DIR KEYFILE --verify-only\n"
     "                           publish another keyring's public keys while\n"
     "                           issuers move (held until release)\n"
     "  release DIR              let held verify-only keys leave on schedule\n"
     "  rotate DIR [--force]     do what is safe now and say what was done\n"
     "  plan DIR                 the timeline of every key, with dates\n"
     "  revoke DIR KID           emergency: drop a key from the JWKS now\n"
     "  list DIR [--json]        keys and states\n"
     "  jwks DIR                 the public JWK Set to publish\n"
     "  rekey URL                re-seal every private key (and the document)\n"
     "                           under the first KEK\n"
     "  trust-document DIR       review a document that is not authenticated\n"
     "                           (written by an older jwtkit); --force: trust it\n"
     "  kek-new                  print a fresh random KEK\n"
     "\n"
     "Run `rotate` regularly (the issuer does it by itself); it never does\n"
     "anything early.",
     keyring_opts, NULL, keyring_subs},
#ifdef JWTKIT_HAVE_SERVE
    {"serve", cli_cmd_unavailable, "[--demo] [--config FILE] [options]  (jwtkit serve --help)", 0, ANY_POS,
     "token issuer: publishes the JWKS, mints tokens, rotates keys",
     "An OAuth 2.0 client-credentials issuer over a keyring: GET\n"
     "/.well-known/jwks.json, the discovery documents, POST /token, /healthz,\n"
     "/metrics.  `jwtkit serve --demo` starts one on 127.0.0.1:8080 with a\n"
     "keyring and a demo client under ./var.  `jwtkit serve --help` lists its\n"
     "options; docs/serve.md has the configuration reference.",
     no_opts, jwtkit_serve_main, NULL},
#else
    {"serve", cli_cmd_unavailable, "...", 0, ANY_POS, "token issuer (not built: libmicrohttpd missing)", NULL,
     no_opts, NULL, NULL},
#endif
#ifdef JWTKIT_HAVE_GATE
    {"gate", cli_cmd_unavailable, "--config FILE [--listen ADDR:PORT] [--log-level LEVEL] [--check]", 0, ANY_POS,
     "token verifier for nginx auth_request",
     "Verifies bearer tokens for nginx auth_request against cached remote JWK\n"
     "Sets and key files: GET /auth answers 204 with the configured claim\n"
     "headers or 401 (WWW-Authenticate: Bearer); /metrics, /healthz.  SIGHUP\n"
     "reloads the configuration.  `jwtkit gate --help` lists the options;\n"
     "docs/gateway.md has the configuration and the nginx setup.",
     no_opts, jwtkit_gate_main, NULL},
#else
    {"gate", cli_cmd_unavailable, "...", 0, ANY_POS,
     "token verifier for nginx auth_request (not built: libmicrohttpd or libcurl missing)", NULL, no_opts, NULL, NULL},
#endif
#ifdef JWTKIT_HAVE_UI
    {"ui", cli_cmd_unavailable, "[--listen ADDR:PORT] [--keyring DIR|URL] [--open]  (jwtkit ui --help)", 0, ANY_POS,
     "token workbench in the browser, on this machine only",
     "Serves a page on loopback (a free port by default) that decodes, verifies\n"
     "and generates tokens, checks PEM files, draws a keyring's rotation plan\n"
     "and shows JWK Sets, every operation done by libjwtkit.  The first line on\n"
     "stdout is the URL to open; it carries a secret made at start.\n"
     "`jwtkit ui --help` lists the options; docs/ui.md says what the page\n"
     "promises about privacy.",
     no_opts, jwtkit_ui_main, NULL},
#else
    {"ui", cli_cmd_unavailable, "...", 0, ANY_POS, "token workbench in the browser (not built: libmicrohttpd missing)",
     NULL, no_opts, NULL, NULL},
#endif
    {"bench", cli_cmd_unavailable, "[--runs N] [--time SECONDS] [--alg ALG]... [--json]  (jwtkit bench --help)", 0,
     ANY_POS, "sign/verify throughput next to raw OpenSSL and libjwt",
     "Runs jwtkit-bench: single-threaded sign and verify for every algorithm,\n"
     "side by side with the raw OpenSSL floor and libjwt, with ratios, a\n"
     "2-thread verify run and steady-state memory.  docs/performance.md has a\n"
     "real run and how to read it.",
     no_opts, cli_bench_main, NULL},
    {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL}};
