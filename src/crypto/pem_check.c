/* PEM validator (include/jwtkit/pem.h): one pass over the lines finds the
 * armor, then each closed block is analysed on its own: headers, base64,
 * DER structure, the key inside.  Nothing here refuses; every problem
 * becomes a finding in the report. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/json.h"
#include "core/alloc.h"
#include "jwtkit/pem.h"
#include "key_openssl.h"

#define PEM_MAX_PASSPHRASE 1024u
#define RSA_MIN_BITS 2048u
#define RSA_MAX_BITS 16384u

/* ------------------------------------------------------------- tables */

static const struct {
  const char *name, *desc;
} k_problems[] = {
#define PEM_PROBLEM_ROW_(n, num, sname, d) [num] = {sname, d},
    JWTKIT_PEM_PROBLEM_MAP(PEM_PROBLEM_ROW_)
#undef PEM_PROBLEM_ROW_
};

const char *jwtkit_pem_problem_name(jwtkit_pem_problem p) {
  size_t i = (size_t)p;
  if (i >= sizeof k_problems / sizeof *k_problems || k_problems[i].name == NULL) return "unknown";
  return k_problems[i].name;
}

const char *jwtkit_pem_problem_desc(jwtkit_pem_problem p) {
  size_t i = (size_t)p;
  if (i >= sizeof k_problems / sizeof *k_problems || k_problems[i].desc == NULL) return "unknown problem";
  return k_problems[i].desc;
}

const char *jwtkit_pem_type_name(jwtkit_pem_type type) {
  switch (type) {
    case JWTKIT_PEM_PUBLIC: return "public";
    case JWTKIT_PEM_PRIVATE: return "private";
    case JWTKIT_PEM_ENCRYPTED_PRIVATE: return "encrypted-private";
    case JWTKIT_PEM_CERTIFICATE: return "certificate";
    case JWTKIT_PEM_UNKNOWN: break;
  }
  return "unknown";
}

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

static const struct {
  const char *label;     /* the label that announces it */
  const char *structure; /* ASN.1 structure, for "is not a valid ..." */
  const char *what;      /* "a PKCS#8 private key" */
  jwtkit_pem_type type;
  int priv;
} k_kinds[K_COUNT] = {
    [K_NONE] = {"", "", "", JWTKIT_PEM_UNKNOWN, 0},
    [K_SPKI] = {"PUBLIC KEY", "SubjectPublicKeyInfo", "a SubjectPublicKeyInfo public key",
                JWTKIT_PEM_PUBLIC, 0},
    [K_RSA_PUB] = {"RSA PUBLIC KEY", "PKCS#1 RSAPublicKey", "a PKCS#1 RSA public key", JWTKIT_PEM_PUBLIC, 0},
    [K_PKCS8] = {"PRIVATE KEY", "PKCS#8 PrivateKeyInfo", "a PKCS#8 private key", JWTKIT_PEM_PRIVATE, 1},
    [K_RSA_PRIV] = {"RSA PRIVATE KEY", "PKCS#1 RSAPrivateKey", "a PKCS#1 RSA private key",
                    JWTKIT_PEM_PRIVATE, 1},
    [K_EC_PRIV] = {"EC PRIVATE KEY", "SEC1 ECPrivateKey", "a SEC1 EC private key", JWTKIT_PEM_PRIVATE, 1},
    [K_PKCS8_ENC] = {"ENCRYPTED PRIVATE KEY", "PKCS#8 EncryptedPrivateKeyInfo",
                     "an encrypted PKCS#8 private key", JWTKIT_PEM_ENCRYPTED_PRIVATE, 1},
    [K_CERT] = {"CERTIFICATE", "X.509 Certificate", "an X.509 certificate", JWTKIT_PEM_CERTIFICATE, 0},
};

/* Order in which content of a mislabeled block is identified. */
static const dkind k_identify_order[] = {K_PKCS8, K_PKCS8_ENC, K_SPKI, K_CERT, K_RSA_PRIV, K_EC_PRIV, K_RSA_PUB};

/* Labels that are common but not keys, with advice. */
static const struct {
  const char *label, *hint;
} k_label_hints[] = {
    {"OPENSSH PRIVATE KEY", "an OpenSSH key; convert it with ssh-keygen -p -m PKCS8"},
    {"EC PARAMETERS", "curve parameters, not a key (openssl ecparam output)"},
    {"CERTIFICATE REQUEST", "a certificate request, not a key or certificate"},
    {"NEW CERTIFICATE REQUEST", "a certificate request, not a key or certificate"},
    {"DSA PRIVATE KEY", "a DSA key; JWS has no DSA algorithm"},
};

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

size_t jwtkit_pem_report_files(const jwtkit_pem_report *r) { return r ? r->nfiles : 0; }
const char *jwtkit_pem_report_path(const jwtkit_pem_report *r, size_t file) {
  return (r != NULL && file < r->nfiles) ? r->paths[file] : NULL;
}
size_t jwtkit_pem_report_blocks(const jwtkit_pem_report *r) { return r ? r->nblocks : 0; }
const jwtkit_pem_block *jwtkit_pem_report_block(const jwtkit_pem_report *r, size_t i) {
  return (r != NULL && i < r->nblocks) ? &r->blocks[i] : NULL;
}
size_t jwtkit_pem_report_findings(const jwtkit_pem_report *r) { return r ? r->nfindings : 0; }
const jwtkit_pem_finding *jwtkit_pem_report_finding(const jwtkit_pem_report *r, size_t i) {
  return (r != NULL && i < r->nfindings) ? &r->findings[i] : NULL;
}
size_t jwtkit_pem_report_count(const jwtkit_pem_report *r, jwtkit_pem_problem p) {
  size_t n = 0;
  for (size_t i = 0; r != NULL && i < r->nfindings; i++) n += r->findings[i].problem == p;
  return n;
}

void jwtkit_pem_report_free(jwtkit_pem_report *r) {
  if (r == NULL) return;
  jk_free(r->blocks);
  jk_free(r->findings);
  jk_free(r->paths[0]);
  jk_free(r->paths[1]);
  jk_free(r);
}

/* Grow *arr (elements of elem bytes) so that one more fits, doubling up to
 * max elements.  0 on success, -1 when out of memory. */
static int grow(void **arr, size_t *cap, size_t used, size_t elem, size_t max) {
  if (used < *cap) return 0;
  size_t ncap = *cap ? *cap * 2 : 8, bytes;
  if (ncap > max) ncap = max;
  if (ncap <= used || !jk_mul_ok(ncap, elem, &bytes)) return -1;
  void *p = jk_realloc(*arr, bytes);
  if (p == NULL) return -1;
  *arr = p;
  *cap = ncap;
  return 0;
}

/* Copy n bytes as printable ASCII (other bytes become '?'), truncated with
 * "..." to fit cap (>= 4). */
static void printable(char *dst, size_t cap, const char *s, size_t n) {
  size_t k = n < cap ? n : cap - 4;
  for (size_t i = 0; i < k; i++) {
    unsigned char c = (unsigned char)s[i];
    dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  if (n >= cap) {
    memcpy(dst + k, "...", 3);
    k += 3;
  }
  dst[k] = '\0';
}

static void set_str(char *dst, size_t cap, const char *s) { printable(dst, cap, s, strlen(s)); }

/* ---------------------------------------------------------- per file */

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

static void file_ctx_release(file_ctx *fc) {
  EVP_PKEY_free(fc->key);
  EVP_PKEY_free(fc->cert_key);
  fc->key = fc->cert_key = NULL;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 5, 6)))
#endif
static void
add(file_ctx *fc, jwtkit_pem_problem p, int block, size_t line, const char *fmt, ...) {
  jwtkit_pem_report *r = fc->r;
  if (r->oom || r->nfindings >= JWTKIT_PEM_MAX_FINDINGS) return;
  if (grow((void **)&r->findings, &r->cap_findings, r->nfindings, sizeof *r->findings,
           JWTKIT_PEM_MAX_FINDINGS) != 0) {
    r->oom = 1;
    return;
  }
  jwtkit_pem_finding *f = &r->findings[r->nfindings++];
  memset(f, 0, sizeof *f);
  f->file = fc->file;
  if (r->nfindings == JWTKIT_PEM_MAX_FINDINGS) {
    f->problem = JWTKIT_PEM_PROB_TOO_MANY_PROBLEMS;
    f->block = -1;
    snprintf(f->msg, sizeof f->msg, "more than %u problems; the rest are not listed",
             JWTKIT_PEM_MAX_FINDINGS - 1);
    return;
  }
  f->problem = p;
  f->block = block;
  f->line = line;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->msg, sizeof f->msg, fmt, ap);
  va_end(ap);
}

static jwtkit_pem_block *blk(file_ctx *fc, int bi) { return &fc->r->blocks[bi]; }

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

static int next_line(line_it *it, pline *l) {
  if (it->pos >= it->len) return 0;
  const char *s = it->text + it->pos;
  size_t rest = it->len - it->pos;
  const char *nl = memchr(s, '\n', rest);
  size_t raw = nl ? (size_t)(nl - s) : rest, n = raw;
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
  l->p = s;
  l->n = n;
  l->no = ++it->no;
  l->off = it->pos;
  it->pos += raw + (nl != NULL);
  return 1;
}

/* ------------------------------------------------------------- armor */

enum { ARMOR_NONE = 0, ARMOR_BEGIN = 1, ARMOR_END = 2 };

typedef struct armor {
  int kind;
  size_t indent, lead, trail; /* leading blanks, dashes on each side */
  const char *label;
  size_t label_len;
  const char *bad; /* what is malformed, or NULL */
} armor;

static int labelchar(unsigned char c) { return c >= 0x21 && c <= 0x7e && c != '-'; }

static int kw_at(const char *s, size_t n, const char *kw, int *exact) {
  size_t k = strlen(kw);
  if (n < k) return 0;
  int ex = 1;
  for (size_t i = 0; i < k; i++) {
    char c = s[i];
    if (c >= 'a' && c <= 'z') {
      c = (char)(c - 'a' + 'A');
      ex = 0;
    }
    if (c != kw[i]) return 0;
  }
  if (n > k && s[k] != ' ' && s[k] != '-') return 0; /* "ENDING" is text */
  *exact = ex;
  return 1;
}

/* Recognise "-----BEGIN LABEL-----" and its damaged forms: a line is armor
 * when, after blanks and dashes, it starts with BEGIN or END (any case) and
 * has dashes on at least one side. */
static void parse_armor(const pline *l, armor *a) {
  memset(a, 0, sizeof *a);
  const char *s = l->p;
  size_t n = l->n, i = 0;
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  a->indent = i;
  while (i < n && s[i] == '-') i++;
  a->lead = i - a->indent;
  size_t sp = i;
  while (i < n && s[i] == ' ') i++;
  int exact = 0, kind = ARMOR_NONE;
  size_t kw = 0;
  if (kw_at(s + i, n - i, "BEGIN", &exact)) {
    kind = ARMOR_BEGIN;
    kw = 5;
  } else if (kw_at(s + i, n - i, "END", &exact)) {
    kind = ARMOR_END;
    kw = 3;
  } else {
    return;
  }
  if (i > sp) a->bad = "blank between the dashes and the keyword";
  if (!exact) a->bad = "BEGIN and END must be upper case";
  i += kw;
  if (i < n && s[i] == ' ') i++;
  size_t ls = i;
  while (i < n && !(s[i] == '-' && i + 1 < n && s[i + 1] == '-') && !(s[i] == '-' && i + 1 == n)) i++;
  a->label = s + ls;
  a->label_len = i - ls;
  size_t ts = i;
  while (i < n && s[i] == '-') i++;
  a->trail = i - ts;
  if (a->lead == 0 && a->trail == 0) return; /* plain text such as "END of data" */
  a->kind = kind;
  if (i < n) a->bad = "text after the closing dashes";
  if (a->label_len == 0) {
    a->bad = "empty label";
  } else {
    const unsigned char *lb = (const unsigned char *)a->label;
    for (size_t k = 0; k < a->label_len; k++) {
      if (labelchar(lb[k])) continue;
      if ((lb[k] == ' ' || lb[k] == '-') && k > 0 && k + 1 < a->label_len && labelchar(lb[k - 1]) &&
          labelchar(lb[k + 1]))
        continue;
      a->bad = (lb[k] == ' ' || lb[k] == '-') ? "label has a stray space or hyphen"
                                              : "label has a character that is not printable ASCII";
      break;
    }
  }
}

/* The kind a label announces (K_NONE when unknown).  Blanks are trimmed and
 * runs of them collapsed, so a damaged label is still understood. */
static dkind label_kind(const char *s, size_t n) {
  char norm[64];
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == ' ' || s[i] == '\t') {
      if (k == 0 || norm[k - 1] == ' ') continue;
      if (k >= sizeof norm - 1) return K_NONE;
      norm[k++] = ' ';
    } else {
      if (k >= sizeof norm - 1) return K_NONE;
      norm[k++] = s[i];
    }
  }
  while (k > 0 && norm[k - 1] == ' ') k--;
  norm[k] = '\0';
  for (int i = 1; i < K_COUNT; i++)
    if (strcmp(norm, k_kinds[i].label) == 0) return (dkind)i;
  return K_NONE;
}

static const char *side(int kind) { return kind == ARMOR_BEGIN ? "BEGIN" : "END"; }

static void armor_problems(file_ctx *fc, int bi, const armor *a, size_t no) {
  if (a->indent != 0)
    add(fc, JWTKIT_PEM_PROB_ARMOR_INDENTED, bi, no,
        "%s line %zu is indented by %zu characters; armor lines must start at column 0", side(a->kind), no,
        a->indent);
  if (a->lead != 5 || a->trail != 5)
    add(fc, JWTKIT_PEM_PROB_ARMOR_DASHES, bi, no,
        "%s line %zu has %zu leading and %zu trailing dashes; exactly 5 are required on each side",
        side(a->kind), no, a->lead, a->trail);
  if (a->bad != NULL)
    add(fc, JWTKIT_PEM_PROB_ARMOR_MALFORMED, bi, no, "%s line %zu is malformed: %s", side(a->kind), no, a->bad);
}

/* ------------------------------------------------------------ base64 */

static int b64val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

static void describe_char(char *out, size_t cap, unsigned char c) {
  if (c == ' ')
    snprintf(out, cap, "a space");
  else if (c == '\t')
    snprintf(out, cap, "a tab");
  else if (c > 0x20 && c < 0x7f)
    snprintf(out, cap, "'%c'", (char)c);
  else
    snprintf(out, cap, "byte 0x%02x", (unsigned)c);
}

/* ------------------------------------------------------------- DER */

/* The outer TLV must be one SEQUENCE spanning exactly n bytes. */
static const char *der_outer_problem(const unsigned char *d, size_t n, char *buf, size_t cap) {
  if (n < 2 || d[0] != 0x30) return "the content is not DER (it does not start with a SEQUENCE)";
  size_t len, hdr;
  if (d[1] < 0x80) {
    len = d[1];
    hdr = 2;
  } else {
    size_t nb = d[1] & 0x7f;
    if (nb == 0) return "the content uses a BER indefinite length, not DER";
    if (nb > 4 || n < 2 + nb) return "the content is not DER (bad length field)";
    len = 0;
    for (size_t i = 0; i < nb; i++) len = (len << 8) | d[2 + i];
    hdr = 2 + nb;
  }
  if (len > n - hdr) {
    snprintf(buf, cap, "the DER structure is truncated: %zu bytes announced, %zu present", len, n - hdr);
    return buf;
  }
  if (len < n - hdr) {
    snprintf(buf, cap, "%zu bytes follow the DER structure", n - hdr - len);
    return buf;
  }
  return NULL;
}

/* Tags of the first elements of the outer SEQUENCE (which der_outer_problem
 * has checked); returns how many elements it holds (counting at most 16). */
static size_t der_children(const unsigned char *d, size_t n, unsigned char *tags, size_t max,
                           unsigned char *first_int) {
  size_t i = (d[1] < 0x80) ? 2 : 2 + (size_t)(d[1] & 0x7f), count = 0;
  *first_int = 0xff;
  while (i + 2 <= n && count < 16) {
    unsigned char tag = d[i];
    size_t len, hdr;
    if (d[i + 1] < 0x80) {
      len = d[i + 1];
      hdr = 2;
    } else {
      size_t nb = d[i + 1] & 0x7f;
      if (nb == 0 || nb > 4 || i + 2 + nb > n) break;
      len = 0;
      for (size_t k = 0; k < nb; k++) len = (len << 8) | d[i + 2 + k];
      hdr = 2 + nb;
    }
    if (len > n - i - hdr) break;
    if (count < max) tags[count] = tag;
    if (count == 0 && tag == 0x02 && len == 1) *first_int = d[i + hdr];
    count++;
    i += hdr + len;
  }
  return count;
}

/* The type-specific structures have no OID, and OpenSSL's "type-specific"
 * decoders also accept PKCS#8 input: check their shape first.
 *   RSAPublicKey  ::= SEQUENCE { n INTEGER, e INTEGER }
 *   RSAPrivateKey ::= SEQUENCE { version 0, n, e, d, p, q, dp, dq, qinv (INTEGERs) ... }
 *   ECPrivateKey  ::= SEQUENCE { version 1, privateKey OCTET STRING, ... } */
static int type_specific_shape(dkind k, const unsigned char *d, size_t n) {
  unsigned char tags[9], v;
  size_t c = der_children(d, n, tags, sizeof tags, &v);
  switch (k) {
    case K_RSA_PUB:
      return c == 2 && tags[0] == 0x02 && tags[1] == 0x02;
    case K_RSA_PRIV:
      if (c < 9 || v > 1) return 0; /* version 1: multi-prime */
      for (size_t i = 0; i < 9; i++)
        if (tags[i] != 0x02) return 0;
      return 1;
    case K_EC_PRIV:
      return c >= 2 && v == 1 && tags[1] == 0x04;
    default:
      return 1;
  }
}

enum { DEC_FAIL = 0, DEC_OK, DEC_BAD_PASS, DEC_UNSUPPORTED };

static int ossl_decode(EVP_PKEY **pk, const char *structure, const char *keytype, int selection,
                       const unsigned char *d, size_t n) {
  *pk = NULL;
  OSSL_DECODER_CTX *ctx = OSSL_DECODER_CTX_new_for_pkey(pk, "DER", structure, keytype, selection, NULL, NULL);
  if (ctx == NULL) return 0;
  const unsigned char *p = d;
  size_t l = n;
  int ok = OSSL_DECODER_from_data(ctx, &p, &l) == 1 && *pk != NULL && l == 0;
  OSSL_DECODER_CTX_free(ctx);
  if (!ok) {
    EVP_PKEY_free(*pk);
    *pk = NULL;
  }
  return ok;
}

static void oid_text(const ASN1_OBJECT *obj, char *out, size_t cap) {
  char tmp[80];
  if (obj == NULL || OBJ_obj2txt(tmp, sizeof tmp, obj, 0) <= 0) snprintf(tmp, sizeof tmp, "?");
  set_str(out, cap, tmp);
}

static int is_pbe(const X509_SIG *sig) {
  const X509_ALGOR *alg = NULL;
  X509_SIG_get0(sig, &alg, NULL);
  const ASN1_OBJECT *obj = NULL;
  X509_ALGOR_get0(&obj, NULL, NULL, alg);
  int nid = OBJ_obj2nid(obj);
  return nid == NID_pbes2 || EVP_PBE_find(EVP_PBE_TYPE_OUTER, nid, NULL, NULL, NULL) == 1;
}

static EVP_PKEY *p8_to_pkey(PKCS8_PRIV_KEY_INFO *p8, char *oid, size_t cap) {
  EVP_PKEY *pk = EVP_PKCS82PKEY(p8);
  if (pk == NULL) {
    const ASN1_OBJECT *obj = NULL;
    PKCS8_pkey_get0(&obj, NULL, NULL, NULL, p8);
    oid_text(obj, oid, cap);
  }
  return pk;
}

/* Decode der as dkind k.  *pk gets the key when there is one (not for an
 * encrypted key without passphrase); oid names an algorithm OpenSSL cannot
 * read (DEC_UNSUPPORTED). */
static int decode_as(dkind k, const unsigned char *d, size_t n, const char *pass, EVP_PKEY **pk, char *oid,
                     size_t oidcap) {
  const unsigned char *p = d, *end = d + n;
  long ln = (long)n;
  *pk = NULL;
  if (!type_specific_shape(k, d, n)) return DEC_FAIL;
  switch (k) {
    case K_SPKI: {
      *pk = d2i_PUBKEY(NULL, &p, ln);
      if (*pk != NULL && p == end) return DEC_OK;
      EVP_PKEY_free(*pk);
      *pk = NULL;
      p = d;
      X509_PUBKEY *xp = d2i_X509_PUBKEY(NULL, &p, ln);
      int rc = DEC_FAIL;
      if (xp != NULL && p == end) {
        ASN1_OBJECT *obj = NULL;
        X509_PUBKEY_get0_param(&obj, NULL, NULL, NULL, xp);
        oid_text(obj, oid, oidcap);
        rc = DEC_UNSUPPORTED;
      }
      X509_PUBKEY_free(xp);
      return rc;
    }
    case K_PKCS8: {
      PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, ln);
      int rc = DEC_FAIL;
      if (p8 != NULL && p == end) rc = (*pk = p8_to_pkey(p8, oid, oidcap)) != NULL ? DEC_OK : DEC_UNSUPPORTED;
      PKCS8_PRIV_KEY_INFO_free(p8);
      return rc;
    }
    case K_PKCS8_ENC: {
      X509_SIG *sig = d2i_X509_SIG(NULL, &p, ln);
      int rc = DEC_FAIL;
      if (sig != NULL && p == end && is_pbe(sig)) {
        rc = DEC_OK;
        if (pass != NULL) {
          PKCS8_PRIV_KEY_INFO *p8 = PKCS8_decrypt(sig, pass, (int)strlen(pass));
          if (p8 == NULL)
            rc = DEC_BAD_PASS;
          else if ((*pk = p8_to_pkey(p8, oid, oidcap)) == NULL)
            rc = DEC_UNSUPPORTED;
          PKCS8_PRIV_KEY_INFO_free(p8);
        }
      }
      X509_SIG_free(sig);
      return rc;
    }
    case K_CERT: {
      X509 *x = d2i_X509(NULL, &p, ln);
      int rc = DEC_FAIL;
      if (x != NULL && p == end) {
        *pk = X509_get_pubkey(x);
        rc = DEC_OK;
        if (*pk == NULL) {
          ASN1_OBJECT *obj = NULL;
          X509_PUBKEY_get0_param(&obj, NULL, NULL, NULL, X509_get_X509_PUBKEY(x));
          oid_text(obj, oid, oidcap);
          rc = DEC_UNSUPPORTED;
        }
      }
      X509_free(x);
      return rc;
    }
    case K_RSA_PUB:
      if (ossl_decode(pk, "type-specific", "RSA", EVP_PKEY_PUBLIC_KEY, d, n) && !jk_pkey_has_private(*pk))
        return DEC_OK;
      break;
    case K_RSA_PRIV:
      if (ossl_decode(pk, "type-specific", "RSA", EVP_PKEY_KEYPAIR, d, n) && jk_pkey_has_private(*pk))
        return DEC_OK;
      break;
    case K_EC_PRIV:
      if (ossl_decode(pk, "type-specific", "EC", EVP_PKEY_KEYPAIR, d, n) && jk_pkey_has_private(*pk))
        return DEC_OK;
      break;
    case K_NONE:
    case K_COUNT:
      break;
  }
  EVP_PKEY_free(*pk);
  *pk = NULL;
  return DEC_FAIL;
}

/* ------------------------------------------------------------- keys */

static int pkey_check(EVP_PKEY *pk, int pairwise) {
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
  if (ctx == NULL) return 1; /* cannot tell: do not accuse */
  int rc = pairwise ? EVP_PKEY_pairwise_check(ctx) : EVP_PKEY_public_check(ctx);
  EVP_PKEY_CTX_free(ctx);
  return rc == 1 || rc == -2; /* -2: the check is not implemented for the type */
}

/* RSA private/public consistency by a signature round trip: the private
 * half signs, the public half (n, e) verifies.  EVP_PKEY_pairwise_check
 * would also test p and q for primality, which costs ~0.5 s at 4096 bits. */
static int rsa_roundtrip_ok(EVP_PKEY *pk) {
  static const unsigned char digest[32] = "jwtkit pem check: rsa roundtrip";
  unsigned char sig[RSA_MAX_BITS / 8];
  size_t sl = sizeof sig;
  int ok = 1; /* cannot tell: do not accuse */
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
  if (ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
      EVP_PKEY_sign(ctx, sig, &sl, digest, sizeof digest) == 1) {
    ok = EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
         EVP_PKEY_verify(ctx, sig, sl, digest, sizeof digest) == 1;
  }
  EVP_PKEY_CTX_free(ctx);
  return ok;
}

static void analyse_key(file_ctx *fc, int bi, EVP_PKEY *pk, int priv) {
  size_t line = blk(fc, bi)->line;
  int base = EVP_PKEY_get_base_id(pk);
  int check = 1;
  switch (base) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS: {
      unsigned bits = (unsigned)EVP_PKEY_get_bits(pk);
      set_str(blk(fc, bi)->family, sizeof blk(fc, bi)->family, "RSA");
      blk(fc, bi)->bits = bits;
      if (base == EVP_PKEY_RSA_PSS)
        add(fc, JWTKIT_PEM_PROB_UNSUPPORTED_KEY, bi, line,
            "RSASSA-PSS-restricted RSA key (id-RSASSA-PSS); JWS needs an rsaEncryption key");
      if (bits < RSA_MIN_BITS)
        add(fc, JWTKIT_PEM_PROB_RSA_TOO_SMALL, bi, line, "RSA key has %u bits; at least %u are required", bits,
            RSA_MIN_BITS);
      else if (bits > RSA_MAX_BITS)
        add(fc, JWTKIT_PEM_PROB_RSA_TOO_LARGE, bi, line, "RSA key has %u bits; at most %u are accepted", bits,
            RSA_MAX_BITS);
      BIGNUM *e = NULL;
      if (EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
        add(fc, JWTKIT_PEM_PROB_KEY_INVALID, bi, line, "RSA key without a public exponent");
      } else if (!BN_is_word(e, 65537)) {
        char *dec = BN_bn2dec(e);
        char shown[24];
        set_str(shown, sizeof shown, dec ? dec : "?");
        add(fc, JWTKIT_PEM_PROB_RSA_EXPONENT, bi, line, "RSA public exponent is %s; it must be 65537", shown);
        OPENSSL_free(dec);
      }
      BN_free(e);
      check = 0;
      if (priv && bits <= RSA_MAX_BITS && !rsa_roundtrip_ok(pk))
        add(fc, JWTKIT_PEM_PROB_KEY_INVALID, bi, line, "the RSA private key does not match its own public key");
      break;
    }
    case EVP_PKEY_EC: {
      char group[64] = "", nist[16] = "";
      size_t gl = 0;
      set_str(blk(fc, bi)->family, sizeof blk(fc, bi)->family, "EC");
      int bits = EVP_PKEY_get_bits(pk);
      blk(fc, bi)->bits = bits > 0 ? (unsigned)bits : 0;
      if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &gl) != 1) {
        add(fc, JWTKIT_PEM_PROB_UNAPPROVED_CURVE, bi, line,
            "EC key with explicit curve parameters; only the named curves P-256, P-384 and P-521 are approved");
        break;
      }
      const char *nn = EC_curve_nid2nist(OBJ_sn2nid(group));
      if (nn != NULL) set_str(nist, sizeof nist, nn);
      set_str(blk(fc, bi)->curve, sizeof blk(fc, bi)->curve, nist[0] ? nist : group);
      if (strcmp(nist, "P-256") != 0 && strcmp(nist, "P-384") != 0 && strcmp(nist, "P-521") != 0) {
        char shown[40];
        set_str(shown, sizeof shown, group);
        add(fc, JWTKIT_PEM_PROB_UNAPPROVED_CURVE, bi, line,
            "EC curve %s%s%s is not approved; use P-256, P-384, P-521, Ed25519 or Ed448", shown,
            nist[0] ? " = " : "", nist);
      }
      if (!priv && !pkey_check(pk, 0))
        add(fc, JWTKIT_PEM_PROB_KEY_INVALID, bi, line, "EC public point is not on curve %s", blk(fc, bi)->curve);
      break;
    }
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448:
      set_str(blk(fc, bi)->family, sizeof blk(fc, bi)->family, "OKP");
      set_str(blk(fc, bi)->curve, sizeof blk(fc, bi)->curve, base == EVP_PKEY_ED25519 ? "Ed25519" : "Ed448");
      blk(fc, bi)->bits = base == EVP_PKEY_ED25519 ? 255 : 448;
      break;
    case EVP_PKEY_X25519:
    case EVP_PKEY_X448:
      set_str(blk(fc, bi)->family, sizeof blk(fc, bi)->family, "OKP");
      set_str(blk(fc, bi)->curve, sizeof blk(fc, bi)->curve, base == EVP_PKEY_X25519 ? "X25519" : "X448");
      blk(fc, bi)->bits = base == EVP_PKEY_X25519 ? 255 : 448;
      add(fc, JWTKIT_PEM_PROB_UNAPPROVED_CURVE, bi, line,
          "%s is a key-agreement curve, not a signature curve; use Ed25519 or Ed448", blk(fc, bi)->curve);
      check = 0;
      break;
    default: {
      const char *tn = EVP_PKEY_get0_type_name(pk);
      if (tn == NULL) tn = OBJ_nid2sn(base);
      char shown[32];
      set_str(shown, sizeof shown, tn ? tn : "unknown");
      add(fc, JWTKIT_PEM_PROB_UNSUPPORTED_KEY, bi, line,
          "%s key: JWS signature keys are RSA, EC (P-256/384/521) or EdDSA (Ed25519/Ed448)", shown);
      check = 0;
      break;
    }
  }
  if (priv && check && !pkey_check(pk, 1))
    add(fc, JWTKIT_PEM_PROB_KEY_INVALID, bi, line, "the private key does not match its own public key");
  ERR_clear_error();
}

/* Keep the first key and first certificate key for the pair check. */
static void keep_key(file_ctx *fc, int bi, EVP_PKEY *pk, int priv) {
  jwtkit_pem_type t = blk(fc, bi)->type;
  if (t == JWTKIT_PEM_CERTIFICATE && fc->cert_key == NULL) {
    fc->cert_key = pk;
    fc->cert_block = bi;
  } else if (t != JWTKIT_PEM_CERTIFICATE && t != JWTKIT_PEM_UNKNOWN && fc->key == NULL) {
    fc->key = pk;
    fc->key_private = priv;
    fc->key_block = bi;
  } else {
    EVP_PKEY_free(pk);
  }
}

/* The DER of a block whose label announces `want`. */
static void analyse_der(file_ctx *fc, int bi, dkind want, const unsigned char *der, size_t n) {
  size_t line = blk(fc, bi)->line;
  char buf[128], oid[64] = "";
  const char *why = der_outer_problem(der, n, buf, sizeof buf);
  if (why != NULL) {
    add(fc, JWTKIT_PEM_PROB_DER_INVALID, bi, line, "%s block: %s", k_kinds[want].label, why);
    return;
  }
  EVP_PKEY *pk = NULL;
  dkind got = want;
  int rc = decode_as(want, der, n, fc->pass, &pk, oid, sizeof oid);
  if (rc == DEC_FAIL) {
    for (size_t i = 0; i < sizeof k_identify_order / sizeof *k_identify_order && rc == DEC_FAIL; i++) {
      if (k_identify_order[i] == want) continue;
      got = k_identify_order[i];
      rc = decode_as(got, der, n, fc->pass, &pk, oid, sizeof oid);
    }
    ERR_clear_error();
    if (rc == DEC_FAIL) {
      add(fc, JWTKIT_PEM_PROB_DER_INVALID, bi, line, "the content of the %s block is not a valid %s",
          k_kinds[want].label, k_kinds[want].structure);
      return;
    }
    add(fc, JWTKIT_PEM_PROB_LABEL_CONTENT, bi, line, "the block labeled %s holds %s (label %s)",
        k_kinds[want].label, k_kinds[got].what, k_kinds[got].label);
    blk(fc, bi)->type = k_kinds[got].type;
  }
  ERR_clear_error();
  switch (rc) {
    case DEC_BAD_PASS:
      add(fc, JWTKIT_PEM_PROB_WRONG_PASSPHRASE, bi, line,
          "the passphrase does not decrypt this encrypted private key");
      break;
    case DEC_UNSUPPORTED:
      add(fc, JWTKIT_PEM_PROB_UNSUPPORTED_KEY, bi, line,
          "key algorithm %s is not supported; JWS keys are RSA, EC or EdDSA", oid);
      break;
    default:
      if (pk == NULL) {
        if (got == K_PKCS8_ENC) fc->encrypted_unread = 1;
        break;
      }
      analyse_key(fc, bi, pk, k_kinds[got].priv);
      keep_key(fc, bi, pk, k_kinds[got].priv);
      break;
  }
}

/* Legacy "Proc-Type: 4,ENCRYPTED" body: decrypt with the DEK-Info cipher and
 * analyse the plaintext as the label says. */
static void analyse_legacy(file_ctx *fc, int bi, dkind want, unsigned char *data, size_t n, char *headers,
                           int overflow) {
  size_t line = blk(fc, bi)->line;
  if (fc->pass == NULL) {
    fc->encrypted_unread = 1;
    return;
  }
  EVP_CIPHER_INFO ci;
  long len = (long)n;
  if (overflow || PEM_get_EVP_CIPHER_INFO(headers, &ci) != 1) {
    ERR_clear_error();
    add(fc, JWTKIT_PEM_PROB_WRONG_PASSPHRASE, bi, line,
        "cannot decrypt: the DEK-Info header names no usable cipher and IV");
    return;
  }
  if (PEM_do_header(&ci, data, &len, NULL, (void *)fc->pass) != 1 || len <= 0) {
    ERR_clear_error();
    add(fc, JWTKIT_PEM_PROB_WRONG_PASSPHRASE, bi, line, "the passphrase does not decrypt this private key");
    return;
  }
  EVP_PKEY *pk = NULL;
  char oid[64] = "";
  int rc = want == K_PKCS8_ENC ? DEC_FAIL : decode_as(want, data, (size_t)len, NULL, &pk, oid, sizeof oid);
  ERR_clear_error();
  if (rc != DEC_OK || pk == NULL) {
    EVP_PKEY_free(pk);
    add(fc, JWTKIT_PEM_PROB_WRONG_PASSPHRASE, bi, line,
        "the decrypted data is not %s: wrong passphrase or damaged key", k_kinds[want].what);
    return;
  }
  analyse_key(fc, bi, pk, k_kinds[want].priv);
  keep_key(fc, bi, pk, k_kinds[want].priv);
}

static int ieq_prefix(const char *s, size_t n, const char *p) {
  size_t k = strlen(p);
  if (n < k) return 0;
  for (size_t i = 0; i < k; i++) {
    char c = s[i];
    if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
    char d = p[i];
    if (d >= 'a' && d <= 'z') d = (char)(d - 'a' + 'A');
    if (c != d) return 0;
  }
  return 1;
}

/* Length of a "Name:" header name, 0 when the line is not a header. */
static size_t header_name(const pline *l) {
  size_t i = 0;
  while (i < l->n && ((l->p[i] >= 'A' && l->p[i] <= 'Z') || (l->p[i] >= 'a' && l->p[i] <= 'z') ||
                      (l->p[i] >= '0' && l->p[i] <= '9') || l->p[i] == '-'))
    i++;
  return (i > 0 && i < l->n && l->p[i] == ':') ? i : 0;
}

/* Everything between the BEGIN and END lines of a closed block. */
static void analyse_block(file_ctx *fc, int bi, dkind want, size_t indent, const char *content, size_t clen,
                          size_t begin_no) {
  line_it it = {content, clen, 0, begin_no};
  pline l;
  char headers[512];
  size_t hlen = 0;
  int hdr_overflow = 0, in_headers = 1, last_hdr = 0, legacy = 0, other_hdr = 0;
  size_t legacy_line = 0;
  char dek[40] = "";
  /* base64 state */
  size_t data = 0, pads = 0, bad = 0, bad_no = 0, bad_col = 0, after_pad_no = 0;
  size_t prev_count = 0, prev_no = 0, odd_line_no = 0, odd_line_count = 0;
  int have_prev = 0;
  unsigned char bad_c = 0;
  unsigned acc = 0, accn = 0, last_val = 0;
  size_t cap = clen / 4 * 3 + 3, outn = 0;
  unsigned char *out = jk_malloc(cap);
  if (out == NULL) {
    fc->r->oom = 1;
    return;
  }

  while (next_line(&it, &l)) {
    if (l.n == 0) {
      if (last_hdr) in_headers = 0;
      last_hdr = 0;
      continue;
    }
    if (in_headers) {
      if (last_hdr && (l.p[0] == ' ' || l.p[0] == '\t')) { /* continuation */
        if (!hdr_overflow && hlen + l.n + 1 < sizeof headers) {
          memcpy(headers + hlen, l.p, l.n);
          hlen += l.n;
          headers[hlen++] = '\n';
        } else {
          hdr_overflow = 1;
        }
        continue;
      }
      size_t hn = header_name(&l);
      if (hn != 0) {
        last_hdr = 1;
        const char *v = l.p + hn + 1;
        size_t vn = l.n - hn - 1;
        while (vn > 0 && *v == ' ') v++, vn--;
        if (hn == 9 && ieq_prefix(l.p, hn, "Proc-Type")) {
          if (ieq_prefix(v, vn, "4,ENCRYPTED")) {
            legacy = 1;
            legacy_line = l.no;
          } else if (!other_hdr++) {
            add(fc, JWTKIT_PEM_PROB_UNEXPECTED_HEADER, bi, l.no,
                "line %zu: Proc-Type header without ENCRYPTED (RFC 1421 leftover)", l.no);
          }
        } else if (hn == 8 && ieq_prefix(l.p, hn, "DEK-Info")) {
          const char *comma = memchr(v, ',', vn);
          printable(dek, sizeof dek, v, comma ? (size_t)(comma - v) : vn);
        } else if (!other_hdr++) {
          char name[40];
          printable(name, sizeof name, l.p, hn);
          add(fc, JWTKIT_PEM_PROB_UNEXPECTED_HEADER, bi, l.no,
              "line %zu: header \"%s\"; PEM bodies have no headers except legacy Proc-Type/DEK-Info", l.no,
              name);
        }
        if (!hdr_overflow && hlen + l.n + 1 < sizeof headers) {
          memcpy(headers + hlen, l.p, l.n);
          hlen += l.n;
          headers[hlen++] = '\n';
        } else {
          hdr_overflow = 1;
        }
        continue;
      }
    }
    in_headers = 0;
    last_hdr = 0;
    /* a body line; blanks up to the BEGIN line's indentation are its */
    size_t i = 0, count = 0;
    while (i < indent && i < l.n && (l.p[i] == ' ' || l.p[i] == '\t')) i++;
    for (; i < l.n; i++) {
      unsigned char c = (unsigned char)l.p[i];
      int v = b64val(c);
      if (v >= 0) {
        if (pads != 0) {
          if (after_pad_no == 0) after_pad_no = l.no;
          count++;
          continue;
        }
        acc = (acc << 6) | (unsigned)v;
        last_val = (unsigned)v;
        if (++accn == 4) {
          out[outn++] = (unsigned char)(acc >> 16);
          out[outn++] = (unsigned char)(acc >> 8);
          out[outn++] = (unsigned char)acc;
          acc = accn = 0;
        }
        data++;
        count++;
      } else if (c == '=') {
        pads++;
        count++;
      } else if (bad++ == 0) {
        bad_no = l.no;
        bad_col = i + 1;
        bad_c = c;
      }
    }
    if (have_prev && prev_count % 4 != 0 && odd_line_no == 0) {
      odd_line_no = prev_no;
      odd_line_count = prev_count;
    }
    have_prev = 1;
    prev_count = count;
    prev_no = l.no;
  }
  if (hlen < sizeof headers) headers[hlen] = '\0';

  int b64_ok = 0;
  if (bad != 0) {
    char what[16];
    describe_char(what, sizeof what, bad_c);
    if (bad > 1)
      add(fc, JWTKIT_PEM_PROB_BASE64_CHAR, bi, bad_no,
          "line %zu column %zu: %s is not a base64 character (and %zu more in this block)", bad_no, bad_col, what,
          bad - 1);
    else
      add(fc, JWTKIT_PEM_PROB_BASE64_CHAR, bi, bad_no, "line %zu column %zu: %s is not a base64 character",
          bad_no, bad_col, what);
  } else if (odd_line_no != 0) {
    add(fc, JWTKIT_PEM_PROB_BASE64_LINE, bi, odd_line_no,
        "line %zu has %zu base64 characters, not a multiple of 4: a character was lost or added", odd_line_no,
        odd_line_count);
  } else if (data % 4 == 1) {
    add(fc, JWTKIT_PEM_PROB_BASE64_LINE, bi, prev_no,
        "the body has %zu base64 characters; a lone one after the last group of 4 cannot be decoded", data);
  } else if (after_pad_no != 0) {
    add(fc, JWTKIT_PEM_PROB_BASE64_PADDING, bi, after_pad_no, "line %zu: base64 data after '=' padding",
        after_pad_no);
  } else if ((data + pads) % 4 != 0 || pads > 2) {
    size_t need = data % 4 == 0 ? 0 : 4 - data % 4;
    if (pads == 0)
      add(fc, JWTKIT_PEM_PROB_BASE64_PADDING, bi, prev_no,
          "missing '=' padding: the body ends with %zu characters, %zu '=' needed", data % 4, need);
    else
      add(fc, JWTKIT_PEM_PROB_BASE64_PADDING, bi, prev_no, "%zu '=' characters where %zu %s needed", pads, need,
          need == 1 ? "is" : "are");
  } else if ((accn == 2 && (last_val & 0x0f) != 0) || (accn == 3 && (last_val & 0x03) != 0)) {
    add(fc, JWTKIT_PEM_PROB_BASE64_PADDING, bi, prev_no,
        "the character before the '=' padding has non-zero unused bits (not canonical base64)");
  } else {
    b64_ok = 1;
    if (accn == 2) out[outn++] = (unsigned char)(acc >> 4);
    if (accn == 3) {
      out[outn++] = (unsigned char)(acc >> 10);
      out[outn++] = (unsigned char)(acc >> 2);
    }
  }

  if (legacy) {
    if (dek[0])
      add(fc, JWTKIT_PEM_PROB_LEGACY_ENCRYPTION, bi, legacy_line,
          "legacy PEM encryption (%s, MD5-based key derivation); re-encrypt as PKCS#8 ENCRYPTED PRIVATE KEY",
          dek);
    else
      add(fc, JWTKIT_PEM_PROB_LEGACY_ENCRYPTION, bi, legacy_line,
          "legacy PEM encryption (Proc-Type ENCRYPTED without DEK-Info); re-encrypt as PKCS#8");
    if (k_kinds[want].priv) blk(fc, bi)->type = JWTKIT_PEM_ENCRYPTED_PRIVATE;
  }
  if (want != K_NONE && b64_ok && !fc->r->oom) {
    if (data == 0)
      add(fc, JWTKIT_PEM_PROB_DER_INVALID, bi, blk(fc, bi)->line, "the %s block has no base64 content",
          k_kinds[want].label);
    else if (legacy)
      analyse_legacy(fc, bi, want, out, outn, headers, hdr_overflow);
    else
      analyse_der(fc, bi, want, out, outn);
  }
  jk_free_secret(out, cap);
  ERR_clear_error();
}

/* --------------------------------------------------------- the pass */

static int is_key_type(jwtkit_pem_type t) {
  return t == JWTKIT_PEM_PUBLIC || t == JWTKIT_PEM_PRIVATE || t == JWTKIT_PEM_ENCRYPTED_PRIVATE;
}

static int start_block(file_ctx *fc, const armor *a, size_t no) {
  jwtkit_pem_report *r = fc->r;
  if (grow((void **)&r->blocks, &r->cap_blocks, r->nblocks, sizeof *r->blocks, 2 * JWTKIT_PEM_MAX_BLOCKS) != 0) {
    r->oom = 1;
    return -1;
  }
  int bi = (int)r->nblocks++;
  fc->nblocks++;
  jwtkit_pem_block *b = &r->blocks[bi];
  memset(b, 0, sizeof *b);
  b->file = fc->file;
  b->line = no;
  printable(b->label, sizeof b->label, a->label, a->label_len);
  dkind k = label_kind(a->label, a->label_len);
  b->type = k_kinds[k].type;
  armor_problems(fc, bi, a, no);
  if (k == K_NONE && a->label_len != 0) {
    const char *hint = NULL;
    for (size_t i = 0; i < sizeof k_label_hints / sizeof *k_label_hints; i++)
      if (a->label_len == strlen(k_label_hints[i].label) &&
          memcmp(a->label, k_label_hints[i].label, a->label_len) == 0)
        hint = k_label_hints[i].hint;
    char shown[48];
    printable(shown, sizeof shown, a->label, a->label_len);
    if (hint != NULL)
      add(fc, JWTKIT_PEM_PROB_UNKNOWN_LABEL, bi, no, "label \"%s\" is %s", shown, hint);
    else
      add(fc, JWTKIT_PEM_PROB_UNKNOWN_LABEL, bi, no, "label \"%s\" is not a key or certificate label", shown);
  }
  return bi;
}

static void no_pem(file_ctx *fc, const char *text, size_t len) {
  size_t i = 0, probe = len < 64 ? len : 64;
  int binary = 0;
  for (size_t k = 0; k < probe; k++) {
    unsigned char c = (unsigned char)text[k];
    if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') binary = 1;
  }
  while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')) i++;
  if (binary)
    add(fc, JWTKIT_PEM_PROB_NO_PEM, -1, 0, "no BEGIN line: the %s is binary (DER?), not PEM text", fc->noun);
  else if (i < len && (text[i] == '{' || text[i] == '['))
    add(fc, JWTKIT_PEM_PROB_NO_PEM, -1, 0, "no BEGIN line: the %s looks like JSON (a JWK?), not PEM", fc->noun);
  else
    add(fc, JWTKIT_PEM_PROB_NO_PEM, -1, 0, "no BEGIN line: the %s holds no PEM block", fc->noun);
}

static void check_text(file_ctx *fc, const char *text, size_t len) {
  fc->first_block = fc->r->nblocks;
  fc->key_block = fc->cert_block = -1;
  if (len > JWTKIT_PEM_MAX_INPUT) {
    add(fc, JWTKIT_PEM_PROB_TOO_LARGE, -1, 0, "the %s has %zu bytes; at most %u are checked", fc->noun, len,
        JWTKIT_PEM_MAX_INPUT);
    return;
  }
  size_t ws = 0;
  while (ws < len && (text[ws] == ' ' || text[ws] == '\t' || text[ws] == '\r' || text[ws] == '\n')) ws++;
  if (ws == len) {
    add(fc, JWTKIT_PEM_PROB_EMPTY, -1, 0, len == 0 ? "the %s is empty" : "the %s holds only whitespace",
        fc->noun);
    return;
  }

  line_it it = {text, len, 0, 0};
  pline l;
  armor a, begin = {0};
  int cur = -1; /* open block */
  dkind cur_kind = K_NONE;
  size_t content_off = 0, text_no = 0, last_line = 0;
  int stopped = 0;
  while (!stopped && next_line(&it, &l)) {
    last_line = l.no;
    parse_armor(&l, &a);
    if (cur >= 0) {
      if (a.kind == ARMOR_END) {
        armor_problems(fc, cur, &a, l.no);
        if (a.label_len != begin.label_len || memcmp(a.label, begin.label, a.label_len) != 0) {
          char bl[48], el[48];
          printable(bl, sizeof bl, begin.label, begin.label_len);
          printable(el, sizeof el, a.label, a.label_len);
          add(fc, JWTKIT_PEM_PROB_LABEL_MISMATCH, cur, l.no, "BEGIN %s (line %zu) is closed by END %s (line %zu)",
              bl, blk(fc, cur)->line, el, l.no);
        }
        analyse_block(fc, cur, cur_kind, begin.indent, text + content_off, l.off - content_off,
                      blk(fc, cur)->line);
        cur = -1;
        continue;
      }
      if (a.kind != ARMOR_BEGIN) continue;
      add(fc, JWTKIT_PEM_PROB_MISSING_END, cur, blk(fc, cur)->line,
          "BEGIN %s (line %zu) has no END line before the BEGIN line %zu", blk(fc, cur)->label,
          blk(fc, cur)->line, l.no);
      cur = -1;
    } else if (a.kind == ARMOR_END) {
      char el[48];
      printable(el, sizeof el, a.label, a.label_len);
      add(fc, JWTKIT_PEM_PROB_END_WITHOUT_BEGIN, -1, l.no, "line %zu: END %s without a BEGIN line", l.no, el);
      continue;
    } else if (a.kind == ARMOR_NONE) {
      if (l.n != 0 && text_no == 0) text_no = l.no;
      continue;
    }
    /* a BEGIN line */
    if (text_no != 0) {
      if (fc->nblocks == 0)
        add(fc, JWTKIT_PEM_PROB_LEADING_TEXT, -1, text_no, "text before the first BEGIN line (line %zu)", text_no);
      else
        add(fc, JWTKIT_PEM_PROB_LEADING_TEXT, -1, text_no, "text between blocks (line %zu)", text_no);
      text_no = 0;
    }
    if (fc->nblocks >= JWTKIT_PEM_MAX_BLOCKS) {
      add(fc, JWTKIT_PEM_PROB_TOO_MANY_BLOCKS, -1, l.no,
          "more than %u blocks; the rest of the %s from line %zu is not checked", JWTKIT_PEM_MAX_BLOCKS, fc->noun,
          l.no);
      stopped = 1;
      break;
    }
    if ((cur = start_block(fc, &a, l.no)) < 0) return;
    begin = a;
    cur_kind = label_kind(a.label, a.label_len);
    content_off = it.pos;
  }
  if (cur >= 0)
    add(fc, JWTKIT_PEM_PROB_MISSING_END, cur, blk(fc, cur)->line,
        "BEGIN %s (line %zu) has no END line (the %s ends at line %zu)", blk(fc, cur)->label, blk(fc, cur)->line,
        fc->noun, last_line);
  if (fc->nblocks == 0 && !stopped) {
    no_pem(fc, text, len);
    return;
  }
  if (text_no != 0 && cur < 0 && !stopped)
    add(fc, JWTKIT_PEM_PROB_TRAILING_TEXT, -1, text_no, "text after the last END line (line %zu)", text_no);

  size_t keys = 0, at[4] = {0};
  for (size_t i = fc->first_block; i < fc->r->nblocks; i++) {
    if (!is_key_type(fc->r->blocks[i].type)) continue;
    if (keys < 4) at[keys] = fc->r->blocks[i].line;
    keys++;
  }
  if (keys == 2)
    add(fc, JWTKIT_PEM_PROB_MULTIPLE_KEYS, -1, 0,
        "2 key blocks (BEGIN lines %zu and %zu); a key file should hold exactly one", at[0], at[1]);
  else if (keys > 2)
    add(fc, JWTKIT_PEM_PROB_MULTIPLE_KEYS, -1, 0,
        "%zu key blocks (BEGIN lines %zu, %zu, %zu%s); a key file should hold exactly one", keys, at[0], at[1],
        at[2], keys > 3 ? ", ..." : "");
}

/* ------------------------------------------------------------- files */

static int has_private_block(const file_ctx *fc) {
  for (size_t i = fc->first_block; i < fc->r->nblocks; i++)
    if (fc->r->blocks[i].type == JWTKIT_PEM_PRIVATE || fc->r->blocks[i].type == JWTKIT_PEM_ENCRYPTED_PRIVATE)
      return 1;
  return 0;
}

/* Read at most JWTKIT_PEM_MAX_INPUT + 1 bytes. */
static jwtkit_err read_all(int fd, char **buf, size_t *len, size_t *cap_out) {
  size_t cap = 4096, n = 0;
  char *b = jk_malloc(cap);
  if (b == NULL) return JWTKIT_ERR_NOMEM;
  for (;;) {
    if (n == cap) {
      if (cap > JWTKIT_PEM_MAX_INPUT) break;
      size_t ncap = cap * 2 > JWTKIT_PEM_MAX_INPUT + 1 ? JWTKIT_PEM_MAX_INPUT + 1 : cap * 2;
      char *nb = jk_malloc(ncap); /* grow by copy and wipe: it may be a private key */
      if (nb == NULL) {
        jk_free_secret(b, cap);
        return JWTKIT_ERR_NOMEM;
      }
      memcpy(nb, b, n);
      jk_free_secret(b, cap);
      b = nb;
      cap = ncap;
    }
    ssize_t r = read(fd, b + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      jk_free_secret(b, cap);
      return JWTKIT_ERR_IO;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  *buf = b;
  *len = n;
  *cap_out = cap;
  return JWTKIT_OK;
}

static jwtkit_err check_file_into(file_ctx *fc, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return JWTKIT_ERR_IO;
  struct stat st;
  if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    close(fd);
    return JWTKIT_ERR_IO;
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  jwtkit_err rc = read_all(fd, &buf, &len, &cap);
  close(fd);
  if (rc != JWTKIT_OK) return rc;
  jwtkit_pem_report *r = fc->r;
  if ((r->paths[fc->file] = jk_strdup(path)) == NULL) {
    jk_free_secret(buf, cap);
    return JWTKIT_ERR_NOMEM;
  }
  r->nfiles = fc->file + 1;
  fc->noun = "file";
  if (len > JWTKIT_PEM_MAX_INPUT) {
    fc->first_block = r->nblocks;
    add(fc, JWTKIT_PEM_PROB_TOO_LARGE, -1, 0, "the file is over %u bytes; it is not checked", JWTKIT_PEM_MAX_INPUT);
  } else {
    check_text(fc, buf, len);
    if (S_ISREG(st.st_mode) && (st.st_mode & 077) != 0 && has_private_block(fc))
      add(fc, JWTKIT_PEM_PROB_FILE_MODE, -1, 0,
          "file mode %04o gives group or others access to a private key; use 0600", (unsigned)(st.st_mode & 07777));
  }
  jk_free_secret(buf, cap);
  ERR_clear_error();
  return r->oom ? JWTKIT_ERR_NOMEM : JWTKIT_OK;
}

static jwtkit_pem_report *report_new(void) { return jk_calloc(1, sizeof(jwtkit_pem_report)); }

static int pass_ok(const char *pass) {
  return pass == NULL || strnlen(pass, PEM_MAX_PASSPHRASE + 1) <= PEM_MAX_PASSPHRASE;
}

jwtkit_err jwtkit_pem_check(const char *text, size_t len, const char *passphrase, jwtkit_pem_report **out) {
  if (out == NULL) return JWTKIT_ERR_INVALID_ARG;
  *out = NULL;
  if ((text == NULL && len != 0) || !pass_ok(passphrase)) return JWTKIT_ERR_INVALID_ARG;
  jwtkit_pem_report *r = report_new();
  if (r == NULL) return JWTKIT_ERR_NOMEM;
  r->nfiles = 1;
  file_ctx fc = {.r = r, .file = 0, .pass = passphrase, .noun = "input"};
  check_text(&fc, text ? text : "", len);
  file_ctx_release(&fc);
  ERR_clear_error();
  if (r->oom) {
    jwtkit_pem_report_free(r);
    return JWTKIT_ERR_NOMEM;
  }
  *out = r;
  return JWTKIT_OK;
}

jwtkit_err jwtkit_pem_check_file(const char *path, const char *passphrase, jwtkit_pem_report **out) {
  if (out == NULL) return JWTKIT_ERR_INVALID_ARG;
  *out = NULL;
  if (path == NULL || !pass_ok(passphrase)) return JWTKIT_ERR_INVALID_ARG;
  jwtkit_pem_report *r = report_new();
  if (r == NULL) return JWTKIT_ERR_NOMEM;
  file_ctx fc = {.r = r, .file = 0, .pass = passphrase};
  jwtkit_err rc = check_file_into(&fc, path);
  file_ctx_release(&fc);
  if (rc != JWTKIT_OK) {
    jwtkit_pem_report_free(r);
    return rc;
  }
  *out = r;
  return JWTKIT_OK;
}

/* "RSA 2048", "EC P-256", "OKP Ed25519" */
static void describe_key(const jwtkit_pem_block *b, char *out, size_t cap) {
  if (b->curve[0])
    snprintf(out, cap, "%s %s", b->family, b->curve);
  else
    snprintf(out, cap, "%s %u", b->family[0] ? b->family : "?", b->bits);
}

static void compare_pair(file_ctx *pv, file_ctx *pb) {
  EVP_PKEY *priv = pv->key != NULL && pv->key_private ? pv->key : NULL;
  EVP_PKEY *pub = pb->key != NULL ? pb->key : pb->cert_key;
  int pub_block = pb->key != NULL ? pb->key_block : pb->cert_block;
  if (priv == NULL) {
    const char *why = pv->key != NULL         ? "it holds a public key, not a private key"
                      : pv->encrypted_unread ? "its private key is encrypted and no passphrase was given"
                                             : "it holds no readable private key";
    add(pv, JWTKIT_PEM_PROB_PAIR_UNCHECKED, -1, 0, "cannot compare the pair: in the private key file %s", why);
  }
  if (pub == NULL) {
    const char *why = pb->encrypted_unread ? "it holds only an encrypted private key"
                                           : "it holds no readable public key or certificate";
    add(pb, JWTKIT_PEM_PROB_PAIR_UNCHECKED, -1, 0, "cannot compare the pair: in the public key file %s", why);
  }
  if (pb->key != NULL && pb->key_private)
    add(pb, JWTKIT_PEM_PROB_PAIR_PUBLIC_IS_PRIVATE, pb->key_block, pb->r->blocks[pb->key_block].line,
        "the public key file holds a private key; publish only the public key");
  if (priv == NULL || pub == NULL) return;
  int eq = EVP_PKEY_eq(priv, pub);
  ERR_clear_error();
  if (eq == 1) return;
  const jwtkit_pem_block *a = &pv->r->blocks[pv->key_block], *b = &pb->r->blocks[pub_block];
  char da[32], db[32];
  describe_key(a, da, sizeof da);
  describe_key(b, db, sizeof db);
  if (strcmp(da, db) != 0)
    add(pb, JWTKIT_PEM_PROB_PAIR_MISMATCH, pub_block, b->line,
        "the private key (%s) and the public key (%s) are different kinds of key", da, db);
  else
    add(pb, JWTKIT_PEM_PROB_PAIR_MISMATCH, pub_block, b->line,
        "the public key is not the public part of the private key");
}

jwtkit_err jwtkit_pem_check_pair(const char *priv_path, const char *pub_path, const char *passphrase,
                                 jwtkit_pem_report **out) {
  if (out == NULL) return JWTKIT_ERR_INVALID_ARG;
  *out = NULL;
  if (priv_path == NULL || pub_path == NULL || !pass_ok(passphrase)) return JWTKIT_ERR_INVALID_ARG;
  jwtkit_pem_report *r = report_new();
  if (r == NULL) return JWTKIT_ERR_NOMEM;
  file_ctx pv = {.r = r, .file = 0, .pass = passphrase};
  file_ctx pb = {.r = r, .file = 1, .pass = passphrase};
  jwtkit_err rc = check_file_into(&pv, priv_path);
  if (rc == JWTKIT_OK) rc = check_file_into(&pb, pub_path);
  if (rc == JWTKIT_OK) {
    compare_pair(&pv, &pb);
    if (r->oom) rc = JWTKIT_ERR_NOMEM;
  }
  file_ctx_release(&pv);
  file_ctx_release(&pb);
  if (rc != JWTKIT_OK) {
    jwtkit_pem_report_free(r);
    return rc;
  }
  *out = r;
  return JWTKIT_OK;
}

/* ------------------------------------------------------------- JSON */

static void json_path(jk_buf *b, const char *path) {
  if (path == NULL) {
    jk_buf_puts(b, "null");
    return;
  }
  size_t n = strlen(path);
  if (jk_utf8_valid((const unsigned char *)path, n)) {
    jk_buf_json_str(b, path, n);
    return;
  }
  char *copy = jk_strndup(path, n);
  if (copy == NULL) {
    b->oom = 1;
    return;
  }
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)copy[i] >= 0x80) copy[i] = '?';
  jk_buf_json_str(b, copy, n);
  jk_free(copy);
}

static void json_str_or_null(jk_buf *b, const char *s) {
  if (s[0] == '\0')
    jk_buf_puts(b, "null");
  else
    jk_buf_json_str(b, s, strlen(s));
}

jwtkit_err jwtkit_pem_report_to_json(const jwtkit_pem_report *r, const char *path, char **json, size_t *len) {
  if (json == NULL) return JWTKIT_ERR_INVALID_ARG;
  *json = NULL;
  if (r == NULL) return JWTKIT_ERR_INVALID_ARG;
  jk_buf b;
  jk_buf_init(&b);
  jk_buf_puts(&b, r->nfindings == 0 ? "{\"ok\":true,\"files\":[" : "{\"ok\":false,\"files\":[");
  for (size_t i = 0; i < r->nfiles; i++) {
    if (i) jk_buf_putc(&b, ',');
    json_path(&b, i == 0 && path != NULL ? path : r->paths[i]);
  }
  jk_buf_puts(&b, "],\"blocks\":[");
  for (size_t i = 0; i < r->nblocks; i++) {
    const jwtkit_pem_block *k = &r->blocks[i];
    jk_buf_puts(&b, i ? ",{\"file\":" : "{\"file\":");
    jk_buf_int(&b, k->file);
    jk_buf_puts(&b, ",\"line\":");
    jk_buf_int(&b, (int64_t)k->line);
    jk_buf_puts(&b, ",\"label\":");
    jk_buf_json_str(&b, k->label, strlen(k->label));
    jk_buf_puts(&b, ",\"type\":");
    jk_buf_json_str(&b, jwtkit_pem_type_name(k->type), strlen(jwtkit_pem_type_name(k->type)));
    jk_buf_puts(&b, ",\"family\":");
    json_str_or_null(&b, k->family);
    jk_buf_puts(&b, ",\"bits\":");
    if (k->bits)
      jk_buf_int(&b, k->bits);
    else
      jk_buf_puts(&b, "null");
    jk_buf_puts(&b, ",\"curve\":");
    json_str_or_null(&b, k->curve);
    jk_buf_putc(&b, '}');
  }
  jk_buf_puts(&b, "],\"problems\":[");
  for (size_t i = 0; i < r->nfindings; i++) {
    const jwtkit_pem_finding *f = &r->findings[i];
    const char *name = jwtkit_pem_problem_name(f->problem);
    jk_buf_puts(&b, i ? ",{\"code\":" : "{\"code\":");
    jk_buf_json_str(&b, name, strlen(name));
    jk_buf_puts(&b, ",\"file\":");
    jk_buf_int(&b, f->file);
    jk_buf_puts(&b, ",\"block\":");
    if (f->block >= 0)
      jk_buf_int(&b, f->block);
    else
      jk_buf_puts(&b, "null");
    jk_buf_puts(&b, ",\"line\":");
    if (f->line)
      jk_buf_int(&b, (int64_t)f->line);
    else
      jk_buf_puts(&b, "null");
    jk_buf_puts(&b, ",\"message\":");
    jk_buf_json_str(&b, f->msg, strlen(f->msg));
    jk_buf_putc(&b, '}');
  }
  jk_buf_puts(&b, "]}");
  size_t n = 0;
  char *s = jk_buf_take(&b, &n);
  if (s == NULL) return JWTKIT_ERR_NOMEM;
  *json = s;
  if (len != NULL) *len = n;
  return JWTKIT_OK;
}
