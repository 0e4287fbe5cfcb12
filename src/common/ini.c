/* The configuration dialect (ini.h). */
#include "common/ini.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static char *trim(char *s, size_t *n) {
  while (*n > 0 && is_blank(*s)) s++, (*n)--;
  while (*n > 0 && (is_blank(s[*n - 1]) || s[*n - 1] == '\r')) (*n)--;
  s[*n] = '\0';
  return s;
}

/* Drop a comment ('#' after whitespace) outside quotes; unquote a value
 * written in double quotes.  -1 on an unterminated quote or text after it. */
static int value_of(char *v, size_t *n, int lead_blank, const char **why) {
  if (*n > 0 && v[0] == '"') {
    size_t o = 0, i = 1;
    for (; i < *n && v[i] != '"'; i++) {
      if (v[i] == '\\' && i + 1 < *n && (v[i + 1] == '"' || v[i + 1] == '\\')) i++;
      v[o++] = v[i];
    }
    if (i >= *n) {
      *why = "unterminated quoted value";
      return -1;
    }
    size_t rest = i + 1;
    while (rest < *n && is_blank(v[rest])) rest++;
    if (rest < *n && v[rest] != '#') {
      *why = "text after a quoted value (a comment starts with '#')";
      return -1;
    }
    v[o] = '\0';
    *n = o;
    return 0;
  }
  for (size_t i = 0; i < *n; i++)
    if (v[i] == '#' && (i == 0 ? lead_blank : is_blank(v[i - 1]))) {
      *n = i;
      break;
    }
  trim(v, n);
  return 0;
}

int jk_ini_parse(const char *path, const char *text, size_t len, jk_ini_fn fn, void *ctx, char *err, size_t cap) {
  char line[JK_INI_MAX_LINE + 1], section[JK_INI_MAX_LINE + 1] = "";
  const char *name = NULL;
  char namebuf[JK_INI_MAX_LINE + 1];
  int lineno = 0;
  size_t i = 0;
  while (i < len) {
    lineno++;
    const char *nl = memchr(text + i, '\n', len - i);
    size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
    if (n > JK_INI_MAX_LINE) {
      snprintf(err, cap, "%s:%d: line longer than %u bytes", path, lineno, JK_INI_MAX_LINE);
      return -1;
    }
    if (memchr(text + i, '\0', n) != NULL) {
      snprintf(err, cap, "%s:%d: a NUL byte", path, lineno);
      return -1;
    }
    memcpy(line, text + i, n);
    i += n + (nl != NULL);
    char *s = trim(line, &n);
    if (n == 0 || s[0] == '#' || s[0] == ';') continue;
    char why[512] = "";
    jk_ini_item it = {path, lineno, section, name, NULL, NULL};
    if (s[0] == '[') {
      if (s[n - 1] != ']') {
        snprintf(err, cap, "%s:%d: unterminated section header", path, lineno);
        return -1;
      }
      s[--n] = '\0';
      s++, n--;
      s = trim(s, &n);
      size_t w = strcspn(s, " \t");
      memcpy(section, s, w);
      section[w] = '\0';
      size_t rn = n - w;
      char *rest = trim(s + w, &rn);
      name = NULL;
      if (rn > 0) {
        memcpy(namebuf, rest, rn + 1);
        name = namebuf;
      }
      if (section[0] == '\0') {
        snprintf(err, cap, "%s:%d: empty section header", path, lineno);
        return -1;
      }
      it.section = section;
      it.name = name;
    } else {
      char *eq = memchr(s, '=', n);
      if (eq == NULL) {
        snprintf(err, cap, "%s:%d: expected key = value", path, lineno);
        return -1;
      }
      size_t kl = (size_t)(eq - s), vl = n - kl - 1;
      char *k = trim(s, &kl), *v = eq + 1;
      int lead_blank = vl > 0 && is_blank(*v);
      while (vl > 0 && is_blank(*v)) v++, vl--;
      const char *bad = NULL;
      if (kl == 0) bad = "a line without a key";
      else if (value_of(v, &vl, lead_blank, &bad) == 0) bad = NULL;
      if (bad != NULL) {
        snprintf(err, cap, "%s:%d: %s", path, lineno, bad);
        return -1;
      }
      it.key = k;
      it.value = v;
    }
    if (fn(ctx, &it, why, sizeof why) != 0) {
      snprintf(err, cap, "%s:%d: %s", path, lineno, why[0] ? why : "invalid line");
      return -1;
    }
  }
  return 0;
}

int jk_ini_put_value(jk_buf *b, const char *v) {
  size_t n = strlen(v);
  if (memchr(v, '\n', n) != NULL) return -1;
  int quote = n > 0 && (v[0] == '"' || is_blank(v[0]) || is_blank(v[n - 1]) || v[n - 1] == '\r');
  for (size_t i = 0; i < n && !quote; i++)
    if (v[i] == '#' && (i == 0 || is_blank(v[i - 1]))) quote = 1;
  if (!quote) {
    jk_buf_put(b, v, n);
    return 0;
  }
  jk_buf_putc(b, '"');
  for (size_t i = 0; i < n; i++) {
    if (v[i] == '"' || v[i] == '\\') jk_buf_putc(b, '\\');
    jk_buf_putc(b, v[i]);
  }
  jk_buf_putc(b, '"');
  return 0;
}
