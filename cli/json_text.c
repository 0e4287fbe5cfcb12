/*
 * JSON for the command line, without a JSON library: strict validation is
 * the library's (through its public claimset API), and the two helpers
 * below only walk text that has been validated already.
 */
#include <string.h>

#include "cli.h"

jwtkit_err cli_json_check_object(const char *json, size_t len) { return jwtkit_json_validate(json, len, 1, NULL); }

jwtkit_err cli_json_check_value(const char *json, size_t len) { return jwtkit_json_validate(json, len, 0, NULL); }

static size_t skip_ws(const char *p, size_t i, size_t n) {
  while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) i++;
  return i;
}

/* p[i] == '"': index after the closing quote. */
static size_t skip_string(const char *p, size_t i, size_t n) {
  for (i++; i < n; i++) {
    if (p[i] == '\\')
      i++;
    else if (p[i] == '"')
      return i + 1;
  }
  return n;
}

static size_t skip_value(const char *p, size_t i, size_t n) {
  if (i >= n) return n;
  if (p[i] == '"') return skip_string(p, i, n);
  if (p[i] == '{' || p[i] == '[') {
    int depth = 0;
    while (i < n) {
      char c = p[i];
      if (c == '"') {
        i = skip_string(p, i, n);
        continue;
      }
      if (c == '{' || c == '[') depth++;
      if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      i++;
    }
    return n;
  }
  while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' && p[i] != '\t' && p[i] != '\r' &&
         p[i] != '\n')
    i++;
  return i;
}

int cli_json_member(const char *json, size_t len, const char *name, const char **val, size_t *vlen) {
  size_t nl = strlen(name);
  size_t i = skip_ws(json, 0, len);
  if (i >= len || json[i] != '{') return 0;
  i++;
  for (;;) {
    i = skip_ws(json, i, len);
    if (i >= len || json[i] != '"') return 0;
    size_t ks = i + 1, ke = skip_string(json, i, len) - 1;
    i = skip_ws(json, ke + 1, len);
    if (i >= len || json[i] != ':') return 0;
    i = skip_ws(json, i + 1, len);
    size_t ve = skip_value(json, i, len);
    if (ke - ks == nl && memcmp(json + ks, name, nl) == 0) {
      *val = json + i;
      *vlen = ve - i;
      return 1;
    }
    i = skip_ws(json, ve, len);
    if (i >= len || json[i] != ',') return 0;
    i++;
  }
}

static void newline(FILE *f, int indent, int depth) {
  fputc('\n', f);
  for (int k = 0; k < indent * depth; k++) fputc(' ', f);
}

void cli_json_pretty(FILE *f, const char *json, size_t len, int indent) {
  int depth = 0;
  size_t i = 0;
  while (i < len) {
    char c = json[i];
    switch (c) {
      case ' ':
      case '\t':
      case '\r':
      case '\n':
        i++;
        break;
      case '"': {
        size_t e = skip_string(json, i, len);
        fwrite(json + i, 1, e - i, f);
        i = e;
        break;
      }
      case '{':
      case '[': {
        size_t nx = skip_ws(json, i + 1, len);
        fputc(c, f);
        if (nx < len && (json[nx] == '}' || json[nx] == ']')) {
          fputc(json[nx], f);
          i = nx + 1;
        } else {
          newline(f, indent, ++depth);
          i++;
        }
        break;
      }
      case '}':
      case ']':
        newline(f, indent, --depth);
        fputc(c, f);
        i++;
        break;
      case ',':
        fputc(',', f);
        newline(f, indent, depth);
        i++;
        break;
      case ':':
        fputs(": ", f);
        i++;
        break;
      default:
        fputc(c, f);
        i++;
        break;
    }
  }
}
