/* PEM validator (include/jwtkit/pem.h): one pass over the lines finds the
 * armor, then each closed block is analysed on its own: headers, base64,
 * DER structure, the key inside.  Nothing here refuses; every problem
 * becomes a finding in the report.  This file runs that pass over one
 * input or file (blocks opened and closed, text around them, unknown
 * labels, several keys in one file), reads a file and checks its mode,
 * compares a private and a public key file, and provides the public entry
 * points.  The text is read in pem_lex.c, the DER and keys in pem_der.c,
 * and the report lives in pem_report.c; pem_internal.h is what they share. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "jwtkit/pem.h"
#include "pem_internal.h"

#define PEM_MAX_PASSPHRASE 1024u

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

static void file_ctx_release(file_ctx *fc) {
  EVP_PKEY_free(fc->key);
  EVP_PKEY_free(fc->cert_key);
  fc->key = fc->cert_key = NULL;
}

/* --------------------------------------------------------- the pass */

static int is_key_type(jwtkit_pem_type t) {
  return t == JWTKIT_PEM_PUBLIC || t == JWTKIT_PEM_PRIVATE || t == JWTKIT_PEM_ENCRYPTED_PRIVATE;
}

static int start_block(file_ctx *fc, const armor *a, size_t no) {
  jwtkit_pem_report *r = fc->r;
  if (jk_pem_grow((void **)&r->blocks, &r->cap_blocks, r->nblocks, sizeof *r->blocks,
                  2 * JWTKIT_PEM_MAX_BLOCKS) != 0) {
    r->oom = 1;
    return -1;
  }
  int bi = (int)r->nblocks++;
  fc->nblocks++;
  jwtkit_pem_block *b = &r->blocks[bi];
  memset(b, 0, sizeof *b);
  b->file = fc->file;
  b->line = no;
  jk_pem_printable(b->label, sizeof b->label, a->label, a->label_len);
  dkind k = jk_pem_label_kind(a->label, a->label_len);
  b->type = jk_pem_kinds[k].type;
  jk_pem_armor_problems(fc, bi, a, no);
  if (k == K_NONE && a->label_len != 0) {
    const char *hint = NULL;
    for (size_t i = 0; i < sizeof k_label_hints / sizeof *k_label_hints; i++)
      if (a->label_len == strlen(k_label_hints[i].label) &&
          memcmp(a->label, k_label_hints[i].label, a->label_len) == 0)
        hint = k_label_hints[i].hint;
    char shown[48];
    jk_pem_printable(shown, sizeof shown, a->label, a->label_len);
    if (hint != NULL)
      jk_pem_add(fc, JWTKIT_PEM_PROB_UNKNOWN_LABEL, bi, no, "label \"%s\" is %s", shown, hint);
    else
      jk_pem_add(fc, JWTKIT_PEM_PROB_UNKNOWN_LABEL, bi, no, "label \"%s\" is not a key or certificate label", shown);
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
    jk_pem_add(fc, JWTKIT_PEM_PROB_NO_PEM, -1, 0, "no BEGIN line: the %s is binary (DER?), not PEM text", fc->noun);
  else if (i < len && (text[i] == '{' || text[i] == '['))
    jk_pem_add(fc, JWTKIT_PEM_PROB_NO_PEM, -1, 0, "no BEGIN line: the %s looks like JSON (a JWK?), not PEM", fc->noun);
  else
    jk_pem_add(fc, JWTKIT_PEM_PROB_NO_PEM, -1, 0, "no BEGIN line: the %s holds no PEM block", fc->noun);
}

static void check_text(file_ctx *fc, const char *text, size_t len) {
  fc->first_block = fc->r->nblocks;
  fc->key_block = fc->cert_block = -1;
  if (len > JWTKIT_PEM_MAX_INPUT) {
    jk_pem_add(fc, JWTKIT_PEM_PROB_TOO_LARGE, -1, 0, "the %s has %zu bytes; at most %u are checked", fc->noun, len,
        JWTKIT_PEM_MAX_INPUT);
    return;
  }
  size_t ws = 0;
  while (ws < len && (text[ws] == ' ' || text[ws] == '\t' || text[ws] == '\r' || text[ws] == '\n')) ws++;
  if (ws == len) {
    jk_pem_add(fc, JWTKIT_PEM_PROB_EMPTY, -1, 0, len == 0 ? "the %s is empty" : "the %s holds only whitespace",
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
  while (!stopped && jk_pem_next_line(&it, &l)) {
    last_line = l.no;
    jk_pem_parse_armor(&l, &a);
    if (cur >= 0) {
      if (a.kind == ARMOR_END) {
        jk_pem_armor_problems(fc, cur, &a, l.no);
        if (a.label_len != begin.label_len || memcmp(a.label, begin.label, a.label_len) != 0) {
          char bl[48], el[48];
          jk_pem_printable(bl, sizeof bl, begin.label, begin.label_len);
          jk_pem_printable(el, sizeof el, a.label, a.label_len);
          jk_pem_add(fc, JWTKIT_PEM_PROB_LABEL_MISMATCH, cur, l.no,
              "BEGIN %s (line %zu) is closed by END %s (line %zu)", bl, jk_pem_blk(fc, cur)->line, el, l.no);
        }
        jk_pem_analyse_block(fc, cur, cur_kind, begin.indent, text + content_off, l.off - content_off,
                             jk_pem_blk(fc, cur)->line);
        cur = -1;
        continue;
      }
      if (a.kind != ARMOR_BEGIN) continue;
      jk_pem_add(fc, JWTKIT_PEM_PROB_MISSING_END, cur, jk_pem_blk(fc, cur)->line,
          "BEGIN %s (line %zu) has no END line before the BEGIN line %zu", jk_pem_blk(fc, cur)->label,
          jk_pem_blk(fc, cur)->line, l.no);
      cur = -1;
    } else if (a.kind == ARMOR_END) {
      char el[48];
      jk_pem_printable(el, sizeof el, a.label, a.label_len);
      jk_pem_add(fc, JWTKIT_PEM_PROB_END_WITHOUT_BEGIN, -1, l.no, "line %zu: END %s without a BEGIN line", l.no, el);
      continue;
    } else if (a.kind == ARMOR_NONE) {
      if (l.n != 0 && text_no == 0) text_no = l.no;
      continue;
    }
    /* a BEGIN line */
    if (text_no != 0) {
      if (fc->nblocks == 0)
        jk_pem_add(fc, JWTKIT_PEM_PROB_LEADING_TEXT, -1, text_no, "text before the first BEGIN line (line %zu)",
            text_no);
      else
        jk_pem_add(fc, JWTKIT_PEM_PROB_LEADING_TEXT, -1, text_no, "text between blocks (line %zu)", text_no);
      text_no = 0;
    }
    if (fc->nblocks >= JWTKIT_PEM_MAX_BLOCKS) {
      jk_pem_add(fc, JWTKIT_PEM_PROB_TOO_MANY_BLOCKS, -1, l.no,
          "more than %u blocks; the rest of the %s from line %zu is not checked", JWTKIT_PEM_MAX_BLOCKS, fc->noun,
          l.no);
      stopped = 1;
      break;
    }
    if ((cur = start_block(fc, &a, l.no)) < 0) return;
    begin = a;
    cur_kind = jk_pem_label_kind(a.label, a.label_len);
    content_off = it.pos;
  }
  if (cur >= 0)
    jk_pem_add(fc, JWTKIT_PEM_PROB_MISSING_END, cur, jk_pem_blk(fc, cur)->line,
        "BEGIN %s (line %zu) has no END line (the %s ends at line %zu)", jk_pem_blk(fc, cur)->label,
        jk_pem_blk(fc, cur)->line, fc->noun, last_line);
  if (fc->nblocks == 0 && !stopped) {
    no_pem(fc, text, len);
    return;
  }
  if (text_no != 0 && cur < 0 && !stopped)
    jk_pem_add(fc, JWTKIT_PEM_PROB_TRAILING_TEXT, -1, text_no, "text after the last END line (line %zu)", text_no);

  size_t keys = 0, at[4] = {0};
  for (size_t i = fc->first_block; i < fc->r->nblocks; i++) {
    if (!is_key_type(fc->r->blocks[i].type)) continue;
    if (keys < 4) at[keys] = fc->r->blocks[i].line;
    keys++;
  }
  if (keys == 2)
    jk_pem_add(fc, JWTKIT_PEM_PROB_MULTIPLE_KEYS, -1, 0,
        "2 key blocks (BEGIN lines %zu and %zu); a key file should hold exactly one", at[0], at[1]);
  else if (keys > 2)
    jk_pem_add(fc, JWTKIT_PEM_PROB_MULTIPLE_KEYS, -1, 0,
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
    jk_pem_add(fc, JWTKIT_PEM_PROB_TOO_LARGE, -1, 0, "the file is over %u bytes; it is not checked",
        JWTKIT_PEM_MAX_INPUT);
  } else {
    check_text(fc, buf, len);
    if (S_ISREG(st.st_mode) && (st.st_mode & 077) != 0 && has_private_block(fc))
      jk_pem_add(fc, JWTKIT_PEM_PROB_FILE_MODE, -1, 0,
          "file mode %04o gives group or others access to a private key; use 0600", (unsigned)(st.st_mode & 07777));
  }
  jk_free_secret(buf, cap);
  ERR_clear_error();
  return r->oom ? JWTKIT_ERR_NOMEM : JWTKIT_OK;
}

static int pass_ok(const char *pass) {
  return pass == NULL || strnlen(pass, PEM_MAX_PASSPHRASE + 1) <= PEM_MAX_PASSPHRASE;
}

jwtkit_err jwtkit_pem_check(const char *text, size_t len, const char *passphrase, jwtkit_pem_report **out) {
  if (out == NULL) return JWTKIT_ERR_INVALID_ARG;
  *out = NULL;
  if ((text == NULL && len != 0) || !pass_ok(passphrase)) return JWTKIT_ERR_INVALID_ARG;
  jwtkit_pem_report *r = jk_pem_report_new();
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
  jwtkit_pem_report *r = jk_pem_report_new();
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
    jk_pem_add(pv, JWTKIT_PEM_PROB_PAIR_UNCHECKED, -1, 0, "cannot compare the pair: in the private key file %s", why);
  }
  if (pub == NULL) {
    const char *why = pb->encrypted_unread ? "it holds only an encrypted private key"
                                           : "it holds no readable public key or certificate";
    jk_pem_add(pb, JWTKIT_PEM_PROB_PAIR_UNCHECKED, -1, 0, "cannot compare the pair: in the public key file %s", why);
  }
  if (pb->key != NULL && pb->key_private)
    jk_pem_add(pb, JWTKIT_PEM_PROB_PAIR_PUBLIC_IS_PRIVATE, pb->key_block, pb->r->blocks[pb->key_block].line,
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
    jk_pem_add(pb, JWTKIT_PEM_PROB_PAIR_MISMATCH, pub_block, b->line,
        "the private key (%s) and the public key (%s) are different kinds of key", da, db);
  else
    jk_pem_add(pb, JWTKIT_PEM_PROB_PAIR_MISMATCH, pub_block, b->line,
        "the public key is not the public part of the private key");
}

jwtkit_err jwtkit_pem_check_pair(const char *priv_path, const char *pub_path, const char *passphrase,
                                 jwtkit_pem_report **out) {
  if (out == NULL) return JWTKIT_ERR_INVALID_ARG;
  *out = NULL;
  if (priv_path == NULL || pub_path == NULL || !pass_ok(passphrase)) return JWTKIT_ERR_INVALID_ARG;
  jwtkit_pem_report *r = jk_pem_report_new();
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
