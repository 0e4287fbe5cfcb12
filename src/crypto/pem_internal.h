/* Internal interface of the PEM validator (include/jwtkit/pem.h), split by
 * responsibility: pem_lex.c reads the text (lines, armor, labels, and the
 * headers and base64 of a block body), pem_der.c analyses the DER of a
 * block and the key inside it, pem_report.c holds the tables and the report
 * object and writes the report as JSON, and pem_check.c runs the pass over
 * one input or file, reads files, compares a key pair and provides the
 * public entry points.  This header declares only what those files share. */
#ifndef JK_PEM_INTERNAL_H
#define JK_PEM_INTERNAL_H

#include <openssl/types.h>
#include <stddef.h>

#include "jwtkit/pem.h"

/* What the DER of a block is (or should be). */
typedef enum dkind {
  K_NONE = 0,
  K_SPKI,
  K_RSA_PUB,
  K_PKCS8,
  K_RSA_PRIV,
  K_EC_PRIV,
  K_PKCS8_ENC,
  K_CERT,
  K_COUNT
} dkind;

/* One row per kind (pem_report.c), indexed by dkind. */
typedef struct jk_pem_kind {
  const char *label;     /* the label that announces it */
  const char *structure; /* ASN.1 structure, for "is not a valid ..." */
  const char *what;      /* "a PKCS#8 private key" */
  jwtkit_pem_type type;
  int priv;
} jk_pem_kind;

extern const jk_pem_kind jk_pem_kinds[K_COUNT];

/* ------------------------------------------------------------- report */

struct jwtkit_pem_report {
  jwtkit_pem_block *blocks;
  size_t nblocks, cap_blocks;
  jwtkit_pem_finding *findings;
  size_t nfindings, cap_findings;
  char *paths[2];
  size_t nfiles;
  int oom;
};

/* The pass over one input or file: where its blocks are in the report, and
 * the keys kept for the pair check. */
typedef struct file_ctx {
  jwtkit_pem_report *r;
  unsigned file;
  const char *pass;
  const char *noun;   /* "file" or "input" */
  size_t first_block; /* index of this file's first block */
  size_t nblocks;     /* blocks of this file */
  EVP_PKEY *key;      /* first key found in a key block (owned) */
  int key_private;
  int key_block;
  EVP_PKEY *cert_key; /* public key of the first certificate (owned) */
  int cert_block;
  int encrypted_unread; /* an encrypted private key left undecrypted */
} file_ctx;

/* Block bi of the report. */
static inline jwtkit_pem_block *jk_pem_blk(file_ctx *fc, int bi) { return &fc->r->blocks[bi]; }

/* An empty report (pem_report.c); NULL when out of memory. */
jwtkit_pem_report *jk_pem_report_new(void);

/* Make room for one more element in *arr, up to max elements (pem_report.c);
 * 0 on success, -1 when out of memory. */
int jk_pem_grow(void **arr, size_t *cap, size_t used, size_t elem, size_t max);

/* Copy n bytes as printable ASCII, truncated with "..." (pem_report.c). */
void jk_pem_printable(char *dst, size_t cap, const char *s, size_t n);

/* Append a finding to fc's report (pem_report.c); the last one the cap
 * allows says that more were left out. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 5, 6)))
#endif
void jk_pem_add(file_ctx *fc, jwtkit_pem_problem p, int block, size_t line, const char *fmt, ...);

/* ------------------------------------------------------------- lines */

typedef struct line_it {
  const char *text;
  size_t len, pos, no;
} line_it;

typedef struct pline {
  const char *p;
  size_t n;  /* without the newline and trailing spaces, tabs and CRs */
  size_t no; /* 1-based */
  size_t off;
} pline;

/* The next line of it into *l; 0 at the end (pem_lex.c). */
int jk_pem_next_line(line_it *it, pline *l);

/* ------------------------------------------------------------- armor */

enum { ARMOR_NONE = 0, ARMOR_BEGIN = 1, ARMOR_END = 2 };

typedef struct armor {
  int kind;
  size_t indent, lead, trail; /* leading blanks, dashes on each side */
  const char *label;
  size_t label_len;
  const char *bad; /* what is malformed, or NULL */
} armor;

/* Parse one line as armor (pem_lex.c); a->kind is ARMOR_NONE for text. */
void jk_pem_parse_armor(const pline *l, armor *a);

/* The kind a label announces, K_NONE when unknown (pem_lex.c). */
dkind jk_pem_label_kind(const char *s, size_t n);

/* Findings for a damaged BEGIN or END line (pem_lex.c). */
void jk_pem_armor_problems(file_ctx *fc, int bi, const armor *a, size_t no);

/* Everything between the BEGIN and END lines of block bi: headers and
 * base64, then the decoded DER handed to pem_der.c (pem_lex.c). */
void jk_pem_analyse_block(file_ctx *fc, int bi, dkind want, size_t indent, const char *content, size_t clen,
                          size_t begin_no);

/* ------------------------------------------------------------- DER */

/* The DER of block bi, whose label announces want (pem_der.c). */
void jk_pem_analyse_der(file_ctx *fc, int bi, dkind want, const unsigned char *der, size_t n);

/* The body of a legacy "Proc-Type: 4,ENCRYPTED" block, decrypted with the
 * DEK-Info headers when a passphrase is given (pem_der.c). */
void jk_pem_analyse_legacy(file_ctx *fc, int bi, dkind want, unsigned char *data, size_t n, char *headers,
                           int overflow);

#endif
