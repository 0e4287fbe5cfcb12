/* PEM text for the validator: the lines of the input; armor lines (BEGIN
 * and END, and their damaged forms: indentation, wrong dashes, lower case,
 * stray characters in the label); the kind of key a label announces; and
 * the body of a closed block: its headers (legacy Proc-Type/DEK-Info or
 * stray ones) and its base64 (characters, line lengths, padding, canonical
 * last character), decoded to the DER that pem_der.c analyses.  Every
 * problem becomes a finding in the report. */
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "pem_internal.h"

/* ------------------------------------------------------------- lines */

int jk_pem_next_line(line_it *it, pline *l) {
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
void jk_pem_parse_armor(const pline *l, armor *a) {
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
dkind jk_pem_label_kind(const char *s, size_t n) {
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
    if (strcmp(norm, jk_pem_kinds[i].label) == 0) return (dkind)i;
  return K_NONE;
}

static const char *side(int kind) { return kind == ARMOR_BEGIN ? "BEGIN" : "END"; }

void jk_pem_armor_problems(file_ctx *fc, int bi, const armor *a, size_t no) {
  if (a->indent != 0)
    jk_pem_add(fc, JWTKIT_PEM_PROB_ARMOR_INDENTED, bi, no,
        "%s line %zu is indented by %zu characters; armor lines must start at column 0", side(a->kind), no,
        a->indent);
  if (a->lead != 5 || a->trail != 5)
    jk_pem_add(fc, JWTKIT_PEM_PROB_ARMOR_DASHES, bi, no,
        "%s line %zu has %zu leading and %zu trailing dashes; exactly 5 are required on each side",
        side(a->kind), no, a->lead, a->trail);
  if (a->bad != NULL)
    jk_pem_add(fc, JWTKIT_PEM_PROB_ARMOR_MALFORMED, bi, no, "%s line %zu is malformed: %s", side(a->kind), no, a->bad);
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

/* ------------------------------------------------------------- body */

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
void jk_pem_analyse_block(file_ctx *fc, int bi, dkind want, size_t indent, const char *content, size_t clen,
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

  while (jk_pem_next_line(&it, &l)) {
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
            jk_pem_add(fc, JWTKIT_PEM_PROB_UNEXPECTED_HEADER, bi, l.no,
                "line %zu: Proc-Type header without ENCRYPTED (RFC 1421 leftover)", l.no);
          }
        } else if (hn == 8 && ieq_prefix(l.p, hn, "DEK-Info")) {
          const char *comma = memchr(v, ',', vn);
          jk_pem_printable(dek, sizeof dek, v, comma ? (size_t)(comma - v) : vn);
        } else if (!other_hdr++) {
          char name[40];
          jk_pem_printable(name, sizeof name, l.p, hn);
          jk_pem_add(fc, JWTKIT_PEM_PROB_UNEXPECTED_HEADER, bi, l.no,
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
      jk_pem_add(fc, JWTKIT_PEM_PROB_BASE64_CHAR, bi, bad_no,
          "line %zu column %zu: %s is not a base64 character (and %zu more in this block)", bad_no, bad_col, what,
          bad - 1);
    else
      jk_pem_add(fc, JWTKIT_PEM_PROB_BASE64_CHAR, bi, bad_no, "line %zu column %zu: %s is not a base64 character",
          bad_no, bad_col, what);
  } else if (odd_line_no != 0) {
    jk_pem_add(fc, JWTKIT_PEM_PROB_BASE64_LINE, bi, odd_line_no,
        "line %zu has %zu base64 characters, not a multiple of 4: a character was lost or added", odd_line_no,
        odd_line_count);
  } else if (data % 4 == 1) {
    jk_pem_add(fc, JWTKIT_PEM_PROB_BASE64_LINE, bi, prev_no,
        "the body has %zu base64 characters; a lone one after the last group of 4 cannot be decoded", data);
  } else if (after_pad_no != 0) {
    jk_pem_add(fc, JWTKIT_PEM_PROB_BASE64_PADDING, bi, after_pad_no, "line %zu: base64 data after '=' padding",
        after_pad_no);
  } else if ((data + pads) % 4 != 0 || pads > 2) {
    size_t need = data % 4 == 0 ? 0 : 4 - data % 4;
    if (pads == 0)
      jk_pem_add(fc, JWTKIT_PEM_PROB_BASE64_PADDING, bi, prev_no,
          "missing '=' padding: the body ends with %zu characters, %zu '=' needed", data % 4, need);
    else
      jk_pem_add(fc, JWTKIT_PEM_PROB_BASE64_PADDING, bi, prev_no, "%zu '=' characters where %zu %s needed", pads, need,
          need == 1 ? "is" : "are");
  } else if ((accn == 2 && (last_val & 0x0f) != 0) || (accn == 3 && (last_val & 0x03) != 0)) {
    jk_pem_add(fc, JWTKIT_PEM_PROB_BASE64_PADDING, bi, prev_no,
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
      jk_pem_add(fc, JWTKIT_PEM_PROB_LEGACY_ENCRYPTION, bi, legacy_line,
          "legacy PEM encryption (%s, MD5-based key derivation); re-encrypt as PKCS#8 ENCRYPTED PRIVATE KEY",
          dek);
    else
      jk_pem_add(fc, JWTKIT_PEM_PROB_LEGACY_ENCRYPTION, bi, legacy_line,
          "legacy PEM encryption (Proc-Type ENCRYPTED without DEK-Info); re-encrypt as PKCS#8");
    if (jk_pem_kinds[want].priv) jk_pem_blk(fc, bi)->type = JWTKIT_PEM_ENCRYPTED_PRIVATE;
  }
  if (want != K_NONE && b64_ok && !fc->r->oom) {
    if (data == 0)
      jk_pem_add(fc, JWTKIT_PEM_PROB_DER_INVALID, bi, jk_pem_blk(fc, bi)->line, "the %s block has no base64 content",
          jk_pem_kinds[want].label);
    else if (legacy)
      jk_pem_analyse_legacy(fc, bi, want, out, outn, headers, hdr_overflow);
    else
      jk_pem_analyse_der(fc, bi, want, out, outn);
  }
  jk_free_secret(out, cap);
  ERR_clear_error();
}
