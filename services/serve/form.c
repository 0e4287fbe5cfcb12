/* application/x-www-form-urlencoded bodies, Basic client credentials and
 * scope tokens, decoded strictly. */
#include <string.h>
#include <strings.h>

#include "common/b64.h"
#include "common/hex.h"
#include "common/utf8.h"
#include "serve.h"

long sv_form_decode(char *s, size_t len) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (c == '+') {
      s[o++] = ' ';
    } else if (c == '%') {
      unsigned char byte;
      if (i + 2 >= len || jk_hex_decode(s + i + 1, 2, &byte, 1) != 1) return -1;
      s[o++] = (char)byte;
      i += 2;
    } else {
      s[o++] = c;
    }
  }
  s[o] = '\0';
  /* decoded text: UTF-8, no NUL, no control characters */
  if (!jk_utf8_valid((const unsigned char *)s, o)) return -1;
  for (size_t i = 0; i < o; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return -1;
  return (long)o;
}

int sv_form_parse(char *body, size_t len, sv_form *f, const char **why) {
  f->n = 0;
  *why = NULL;
  body[len] = '\0';
  size_t i = 0;
  while (i <= len) {
    size_t end = i;
    while (end < len && body[end] != '&') end++;
    if (end > i) {
      char *pair = body + i;
      size_t plen = end - i;
      char *eq = memchr(pair, '=', plen);
      size_t nlen = eq ? (size_t)(eq - pair) : plen;
      char *val = eq ? eq + 1 : pair + plen;
      size_t vlen = eq ? plen - nlen - 1 : 0;
      if (nlen == 0) {
        *why = "a parameter without a name";
        return SV_FORM_MALFORMED;
      }
      if (f->n >= SV_MAX_FORM_PARAMS) {
        *why = "too many parameters";
        return SV_FORM_TOO_MANY;
      }
      /* terminate both parts in place: the '=' and the '&' (or the end)
       * become NULs, decoding only shrinks */
      pair[nlen] = '\0';
      val[vlen] = '\0';
      long dn = sv_form_decode(pair, nlen);
      long dv = sv_form_decode(val, vlen);
      if (dn < 0 || dv < 0) {
        *why = "bad percent-encoding or characters in a parameter";
        return SV_FORM_MALFORMED;
      }
      if (dn == 0) {
        *why = "a parameter without a name";
        return SV_FORM_MALFORMED;
      }
      for (size_t k = 0; k < f->n; k++)
        if (f->p[k].name_len == (size_t)dn && memcmp(f->p[k].name, pair, (size_t)dn) == 0) {
          *why = "a parameter is included more than once";
          return SV_FORM_DUPLICATE;
        }
      f->p[f->n].name = pair;
      f->p[f->n].name_len = (size_t)dn;
      f->p[f->n].value = val;
      f->p[f->n].value_len = (size_t)dv;
      f->n++;
    }
    i = end + 1;
  }
  return SV_FORM_OK;
}

int sv_form_has(const sv_form *f, const char *name) {
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->p[i].name, name) == 0) return 1;
  return 0;
}

const char *sv_form_get(const sv_form *f, const char *name) {
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->p[i].name, name) == 0) return f->p[i].value_len ? f->p[i].value : NULL;
  return NULL;
}

int sv_basic_parse(const char *header, char *buf, size_t cap, const char **id, const char **secret,
                   size_t *secret_len) {
  *id = *secret = NULL;
  *secret_len = 0;
  while (*header == ' ' || *header == '\t') header++;
  if (strncasecmp(header, "basic", 5) != 0 || (header[5] != ' ' && header[5] != '\t')) return -1;
  const char *p = header + 5;
  while (*p == ' ' || *p == '\t') p++;
  size_t n = strlen(p);
  while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
  size_t out = 0;
  if (n == 0 || jk_b64_dec_max(n) + 1 > cap || jk_b64_decode((unsigned char *)buf, &out, p, n) != 0) return -2;
  buf[out] = '\0';
  if (memchr(buf, '\0', out) != NULL) return -2;
  char *colon = memchr(buf, ':', out);
  if (colon == NULL) return -2;
  *colon = '\0';
  size_t il = (size_t)(colon - buf), sl = out - il - 1;
  long di = sv_form_decode(buf, il);
  long ds = sv_form_decode(colon + 1, sl);
  if (di <= 0 || ds < 0) return -2;
  *id = buf;
  *secret = colon + 1;
  *secret_len = (size_t)ds;
  return 0;
}

int sv_scope_token_ok(const char *s, size_t n) {
  if (n == 0 || n > SV_MAX_SCOPE_LEN) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    /* NQCHAR = %x21 / %x23-5B / %x5D-7E */
    if (!(c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E))) return 0;
  }
  return 1;
}
