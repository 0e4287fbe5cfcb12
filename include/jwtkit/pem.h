/*
 * jwtkit/pem.h - PEM validator: describe what a PEM file holds and every
 * problem in it.
 *
 * Unlike jwtkit_key_from_pem(), which refuses, the validator describes: it
 * reads every block of a file, says per block what it is (public key,
 * private key, encrypted private key, certificate), its family (RSA, EC,
 * OKP) and size or curve, and lists each problem it finds with a stable
 * code.  Keys jwtkit would refuse (RSA 1024, secp256k1, e = 3, ...) are
 * still described, with the reason as a finding.
 *
 * What is checked (codes in JWTKIT_PEM_PROBLEM_MAP below):
 *  - armor: BEGIN/END lines at column 0 with five dashes on each side and a
 *    well-formed label (RFC 7468 §3), every BEGIN closed by an END with the
 *    same label, no END without a BEGIN;
 *  - labels: "PUBLIC KEY", "RSA PUBLIC KEY", "PRIVATE KEY", "RSA PRIVATE
 *    KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY" and "CERTIFICATE" are
 *    known, anything else is reported;
 *  - body: standard base64 with '=' padding, every line but the last a
 *    multiple of 4 characters; no headers except the legacy "Proc-Type" /
 *    "DEK-Info" pair, which is reported as legacy encryption;
 *  - text before a BEGIN line and after the last END line;
 *  - more than one key block in a file (certificates are not counted, so a
 *    chain file is fine);
 *  - content: the DER must decode as the label says; keys must be RSA
 *    2048..16384 bits with e = 65537, EC on P-256/P-384/P-521, or
 *    Ed25519/Ed448; private keys must match their own public part;
 *  - encrypted private keys: without a passphrase only the structure is
 *    checked (family and size are unknown, which is not a problem); with
 *    one they are decrypted and checked like any private key;
 *  - file variant: a private key file accessible to group or others;
 *  - pair variant: the private key's public part must equal the public key.
 *
 * A report is immutable once returned and may be read from any thread.
 * Strings in blocks and findings are printable ASCII (bytes from the input
 * that are not are shown as '?' or \xNN), so they are safe to print and to
 * put in JSON.
 */
#ifndef JWTKIT_PEM_H
#define JWTKIT_PEM_H

#include <stddef.h>

#include "error.h"
#include "key.h"

#ifdef __cplusplus
extern "C" {
#endif

#define JWTKIT_PEM_MAX_INPUT (1u << 20)  /* bytes read from one file */
#define JWTKIT_PEM_MAX_BLOCKS 64u        /* blocks described per file */
#define JWTKIT_PEM_MAX_FINDINGS 128u     /* findings per report, the last
                                            being "too-many-problems" */

/* What a block is.  Taken from the content when it decodes as something
 * other than its label says (a private key labeled "PUBLIC KEY" is
 * JWTKIT_PEM_PRIVATE), else from the label. */
typedef enum jwtkit_pem_type {
  JWTKIT_PEM_PUBLIC = 1,            /* SPKI or PKCS#1 public key */
  JWTKIT_PEM_PRIVATE = 2,           /* PKCS#8, PKCS#1 or SEC1 private key */
  JWTKIT_PEM_ENCRYPTED_PRIVATE = 3, /* PKCS#8 encrypted, or legacy
                                       Proc-Type encryption */
  JWTKIT_PEM_CERTIFICATE = 4,       /* X.509 certificate */
  JWTKIT_PEM_UNKNOWN = 5            /* unknown label */
} jwtkit_pem_type;

/* "public", "private", "encrypted-private", "certificate", "unknown";
 * "unknown" for values outside the enum too. */
const char *jwtkit_pem_type_name(jwtkit_pem_type type);

/* X(NAME, number, "short-name", "description").  Numbers and short names
 * never change once released; new problems are appended. */
#define JWTKIT_PEM_PROBLEM_MAP(X)                                                          \
  X(EMPTY, 1, "empty", "the input is empty or only whitespace")                            \
  X(NO_PEM, 2, "no-pem", "no PEM block (no BEGIN line)")                                   \
  X(ARMOR_MALFORMED, 3, "armor-malformed", "malformed BEGIN or END line")                  \
  X(ARMOR_DASHES, 4, "armor-dashes", "BEGIN or END line without five dashes on each side") \
  X(ARMOR_INDENTED, 5, "armor-indented", "BEGIN or END line not starting at column 0")     \
  X(MISSING_END, 6, "missing-end", "BEGIN line without an END line")                       \
  X(END_WITHOUT_BEGIN, 7, "end-without-begin", "END line without a BEGIN line")            \
  X(LABEL_MISMATCH, 8, "label-mismatch", "END label differs from the BEGIN label")         \
  X(UNKNOWN_LABEL, 9, "unknown-label", "label is not a key or certificate label")          \
  X(BASE64_CHAR, 10, "base64-char", "invalid character in the base64 body")                \
  X(BASE64_PADDING, 11, "base64-padding", "missing, extra or misplaced base64 padding")    \
  X(BASE64_LINE, 12, "base64-line", "base64 line that cannot be decoded")                  \
  X(UNEXPECTED_HEADER, 13, "unexpected-header", "header line other than Proc-Type/DEK-Info") \
  X(LEGACY_ENCRYPTION, 14, "legacy-encryption", "legacy PEM encryption (Proc-Type/DEK-Info)") \
  X(LEADING_TEXT, 15, "leading-text", "text before a BEGIN line")                          \
  X(TRAILING_TEXT, 16, "trailing-text", "text after the last END line")                    \
  X(MULTIPLE_KEYS, 17, "multiple-keys", "more than one key block in the file")             \
  X(DER_INVALID, 18, "der-invalid", "block content does not decode as its label says")     \
  X(LABEL_CONTENT, 19, "label-content-mismatch", "block content is another kind than its label") \
  X(UNSUPPORTED_KEY, 20, "unsupported-key-type", "key type is not RSA, EC or EdDSA")       \
  X(RSA_TOO_SMALL, 21, "rsa-too-small", "RSA key shorter than 2048 bits")                  \
  X(RSA_TOO_LARGE, 22, "rsa-too-large", "RSA key longer than 16384 bits")                  \
  X(RSA_EXPONENT, 23, "rsa-exponent", "RSA public exponent is not 65537")                  \
  X(UNAPPROVED_CURVE, 24, "unapproved-curve", "curve is not P-256, P-384, P-521, Ed25519 or Ed448") \
  X(KEY_INVALID, 25, "key-invalid", "key fails its consistency check")                     \
  X(WRONG_PASSPHRASE, 26, "wrong-passphrase", "the passphrase does not decrypt the key")   \
  X(FILE_MODE, 27, "file-mode", "private key file accessible to group or others")          \
  X(PAIR_MISMATCH, 28, "pair-mismatch", "private and public key do not match")             \
  X(PAIR_UNCHECKED, 29, "pair-unchecked", "the key pair could not be compared")            \
  X(PAIR_PUBLIC_IS_PRIVATE, 30, "pair-public-is-private", "the public side holds a private key") \
  X(TOO_LARGE, 31, "too-large", "input over 1 MiB, not checked")                           \
  X(TOO_MANY_BLOCKS, 32, "too-many-blocks", "more than 64 blocks, the rest not checked")   \
  X(TOO_MANY_PROBLEMS, 33, "too-many-problems", "more problems than a report holds")

typedef enum jwtkit_pem_problem {
#define JWTKIT_PEM_PROBLEM_ENUM_(name, num, sname, desc) JWTKIT_PEM_PROB_##name = num,
  JWTKIT_PEM_PROBLEM_MAP(JWTKIT_PEM_PROBLEM_ENUM_)
#undef JWTKIT_PEM_PROBLEM_ENUM_
} jwtkit_pem_problem;

/* Short name ("rsa-too-small"), for scripts and JSON; "unknown" for numbers
 * outside the table.  Never NULL. */
const char *jwtkit_pem_problem_name(jwtkit_pem_problem p);

/* Generic description of the problem ("RSA key shorter than 2048 bits");
 * the finding's msg has the specifics.  Never NULL. */
const char *jwtkit_pem_problem_desc(jwtkit_pem_problem p);

/* One PEM block, in file order. */
typedef struct jwtkit_pem_block {
  jwtkit_pem_type type;
  unsigned file;   /* 0, or 1 for the public-key file of a pair report */
  size_t line;     /* 1-based line of its BEGIN line */
  char label[48];  /* the BEGIN label as written (truncated, printable) */
  char family[8];  /* "RSA", "EC", "OKP", or "" when unknown (encrypted,
                      undecodable, other key types) */
  unsigned bits;   /* RSA modulus bits, EC field bits (256/384/521, 256 for
                      secp256k1, ...), 255 / 448 for Ed25519 / Ed448; 0 when
                      unknown */
  char curve[16];  /* "P-256", "Ed25519", "secp256k1", "brainpoolP256r1",
                      ...; "" for RSA and when unknown */
} jwtkit_pem_block;

/* One problem. */
typedef struct jwtkit_pem_finding {
  jwtkit_pem_problem problem;
  unsigned file;  /* as in jwtkit_pem_block */
  int block;      /* index of the block (jwtkit_pem_report_block), -1 when it
                     is about the file as a whole or the pair */
  size_t line;    /* 1-based line it is on, 0 when none */
  char msg[160];  /* specific sentence ("RSA key has 1024 bits; at least 2048
                     are required") */
} jwtkit_pem_finding;

typedef struct jwtkit_pem_report jwtkit_pem_report;

/*
 * Check PEM text.  passphrase may be NULL (encrypted keys are then
 * described without being decrypted); it is not copied.  On success *out
 * holds a report to release with jwtkit_pem_report_free(): JWTKIT_OK means
 * a report was produced, not that the text is clean (see
 * jwtkit_pem_report_findings()).  Errors: JWTKIT_ERR_INVALID_ARG (out NULL,
 * text NULL with len > 0, passphrase over 1024 bytes), JWTKIT_ERR_NOMEM.
 * Text over JWTKIT_PEM_MAX_INPUT is not parsed; the report says so.
 */
JWTKIT_NODISCARD jwtkit_err jwtkit_pem_check(const char *text, size_t len, const char *passphrase,
                                             jwtkit_pem_report **out);

/* Check a file: as jwtkit_pem_check() plus the file's permissions (a
 * private or encrypted private key must give group and others no access:
 * mode & 077 == 0).  Reads at most JWTKIT_PEM_MAX_INPUT bytes; a bigger
 * file gives a report with one "too-large" finding.  JWTKIT_ERR_IO when the
 * file cannot be opened or read, or is a directory. */
JWTKIT_NODISCARD jwtkit_err jwtkit_pem_check_file(const char *path, const char *passphrase,
                                                  jwtkit_pem_report **out);

/* Check a private key file (file 0, decrypted with passphrase if needed)
 * and a public key file (file 1: a public key, or a certificate whose key is
 * used) as jwtkit_pem_check_file() does, then compare them: the private
 * key's public part must equal the public key ("pair-mismatch"); when
 * either side has no usable key the report says why ("pair-unchecked"). */
JWTKIT_NODISCARD jwtkit_err jwtkit_pem_check_pair(const char *priv_path, const char *pub_path,
                                                  const char *passphrase, jwtkit_pem_report **out);

/* Files the report covers (1, or 2 for a pair) and their paths (NULL for
 * jwtkit_pem_check() text and past the end; owned by the report). */
size_t jwtkit_pem_report_files(const jwtkit_pem_report *r);
const char *jwtkit_pem_report_path(const jwtkit_pem_report *r, size_t file);

/* Blocks of all files in order; NULL past the end.  Owned by the report. */
size_t jwtkit_pem_report_blocks(const jwtkit_pem_report *r);
const jwtkit_pem_block *jwtkit_pem_report_block(const jwtkit_pem_report *r, size_t i);

/* Findings in the order found; 0 findings means the input is clean. */
size_t jwtkit_pem_report_findings(const jwtkit_pem_report *r);
const jwtkit_pem_finding *jwtkit_pem_report_finding(const jwtkit_pem_report *r, size_t i);

/* Number of findings with code p (0 when none). */
size_t jwtkit_pem_report_count(const jwtkit_pem_report *r, jwtkit_pem_problem p);

void jwtkit_pem_report_free(jwtkit_pem_report *r);

/*
 * The report as one JSON object (for `jwtkit pem check --json`):
 *   {"ok":false,"files":["key.pem"],
 *    "blocks":[{"file":0,"line":1,"label":"PRIVATE KEY","type":"private",
 *               "family":"RSA","bits":1024,"curve":null}],
 *    "problems":[{"code":"rsa-too-small","file":0,"block":0,"line":1,
 *                 "message":"RSA key has 1024 bits; ..."}]}
 * "ok" is true when there are no problems; unknown family, bits and curve
 * are null, and so is "block" for file-level problems.  path, when not
 * NULL, names file 0 instead of the report's own path (text reports have
 * none: null).  Paths that are not UTF-8 have their bad bytes replaced by
 * '?'.  The text is NUL-terminated, allocated with the jwtkit allocator and
 * released with jwtkit_free(); len may be NULL.  Errors: INVALID_ARG,
 * NOMEM. */
JWTKIT_NODISCARD jwtkit_err jwtkit_pem_report_to_json(const jwtkit_pem_report *r, const char *path,
                                                      char **json, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
