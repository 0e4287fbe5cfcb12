/* Request parsing without I/O: URI and host normalisation, route
 * selection, bearer and cookie extraction, claim -> header rendering. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "gate_internal.h"

/* ------------------------------------------------------------ routing */

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int gate_normalize_path(const char *uri, size_t len, char *out, size_t cap, size_t *outlen) {
  const char *p = uri, *end = uri + len;
  if (len >= 7 && (strncasecmp(p, "http://", 7) == 0 || (len >= 8 && strncasecmp(p, "https://", 8) == 0))) {
    p += p[4] == ':' ? 7 : 8;
    while (p < end && *p != '/' && *p != '?' && *p != '#') p++;
    if (p == end || *p != '/') {
      if (cap < 2) return -1;
      out[0] = '/';
      out[1] = '\0';
      *outlen = 1;
      return 0;
    }
  }
  const char *q = p;
  while (q < end && *q != '?' && *q != '#') q++;
  end = q;
  if (p == end || *p != '/') return -1;
  /* percent-decode into out */
  size_t n = 0;
  while (p < end) {
    unsigned char c = (unsigned char)*p;
    if (c == '%') {
      if (end - p < 3) return -1;
      int h = hexval(p[1]), l = hexval(p[2]);
      if (h < 0 || l < 0) return -1;
      c = (unsigned char)(h * 16 + l);
      p += 3;
    } else {
      p++;
    }
    if (c < 0x20 || c == 0x7F) return -1;
    if (n + 2 >= cap) return -1;
    out[n++] = (char)c;
  }
  /* merge slashes and resolve dot segments in place (output never grows) */
  int dir = out[n - 1] == '/';
  size_t r = 0, w = 0;
  while (r < n) {
    while (r < n && out[r] == '/') r++;
    size_t s = r;
    while (r < n && out[r] != '/') r++;
    size_t sl = r - s;
    if (sl == 0) break;
    if (sl == 1 && out[s] == '.') {
      if (r >= n) dir = 1;
      continue;
    }
    if (sl == 2 && out[s] == '.' && out[s + 1] == '.') {
      while (w > 0 && out[w - 1] != '/') w--;
      if (w > 0) w--;
      if (r >= n) dir = 1;
      continue;
    }
    out[w++] = '/';
    memmove(out + w, out + s, sl);
    w += sl;
  }
  if (w == 0 || dir) out[w++] = '/';
  out[w] = '\0';
  *outlen = w;
  return 0;
}

int gate_normalize_host(const char *host, size_t len, char *out, size_t cap) {
  size_t n = len;
  if (n > 0 && host[0] == '[') {
    const char *rb = memchr(host, ']', len);
    if (rb == NULL) return -1;
    n = (size_t)(rb - host) + 1;
  } else {
    const char *colon = memchr(host, ':', len);
    if (colon != NULL) {
      for (const char *d = colon + 1; d < host + len; d++)
        if (*d < '0' || *d > '9') return -1;
      n = (size_t)(colon - host);
    }
  }
  while (n > 0 && host[n - 1] == '.') n--;
  if (n == 0 || n >= cap) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)host[i];
    if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']')) return -1;
    out[i] = (char)tolower(c);
  }
  out[n] = '\0';
  return 0;
}

int gate_host_matches(const char *pattern, const char *host) {
  if (pattern[0] == '*' && pattern[1] == '.') {
    size_t pl = strlen(pattern + 1), hl = strlen(host);
    return hl > pl && strcmp(host + hl - pl, pattern + 1) == 0;
  }
  return strcmp(pattern, host) == 0;
}

int gate_path_matches(const char *prefix, const char *path, size_t len) {
  size_t pl = strlen(prefix);
  return path != NULL && len >= pl && memcmp(path, prefix, pl) == 0;
}

const gate_route_cfg *gate_select_route(const gate_config *cfg, const char *host, const char *path, size_t path_len,
                                        size_t *index) {
  for (size_t i = 0; i < cfg->nroutes; i++) {
    const gate_route_cfg *r = &cfg->routes[i];
    int ok = r->hosts.n == 0;
    for (size_t k = 0; !ok && host != NULL && k < r->hosts.n; k++) ok = gate_host_matches(r->hosts.v[k], host);
    if (!ok) continue;
    ok = r->prefixes.n == 0;
    for (size_t k = 0; !ok && k < r->prefixes.n; k++) ok = gate_path_matches(r->prefixes.v[k], path, path_len);
    if (!ok) continue;
    *index = i;
    return r;
  }
  return NULL;
}

/* ------------------------------------------------------------- tokens */

int gate_parse_bearer(const char *v, const char **tok, size_t *len) {
  while (*v == ' ' || *v == '\t') v++;
  if (strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t' && v[6] != '\0')) return 0;
  v += 6;
  while (*v == ' ' || *v == '\t') v++;
  size_t n = strlen(v);
  while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
  if (n == 0) return -1;
  for (size_t i = 0; i < n; i++)
    if (v[i] == ' ' || v[i] == '\t' || v[i] == ',') return -1;
  *tok = v;
  *len = n;
  return 1;
}

int gate_find_cookie(const char *h, const char *name, const char **val, size_t *len, int *conflict) {
  size_t nl = strlen(name);
  int found = 0;
  const char *p = h;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ';') p++;
    const char *ks = p;
    while (*p && *p != '=' && *p != ';') p++;
    const char *ke = p;
    while (ke > ks && (ke[-1] == ' ' || ke[-1] == '\t')) ke--;
    const char *vs = p, *ve = p;
    if (*p == '=') {
      p++;
      while (*p == ' ' || *p == '\t') p++;
      vs = p;
      while (*p && *p != ';') p++;
      ve = p;
      while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') vs++, ve--;
    }
    if ((size_t)(ke - ks) == nl && memcmp(ks, name, nl) == 0) {
      size_t vl = (size_t)(ve - vs);
      if (!found) {
        *val = vs;
        *len = vl;
        found = 1;
      } else if (vl != *len || memcmp(vs, *val, vl) != 0) {
        (*conflict)++;
      }
    }
  }
  return found;
}

/* token68 (RFC 7235) characters plus '.', as a table: this runs over every
 * byte of every token */
static const unsigned char tchar[256] = {
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,
    ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1,
    ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1,
    ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,
    ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1, ['0'] = 1, ['1'] = 1,
    ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['-'] = 1,
    ['_'] = 1, ['.'] = 1, ['='] = 1, ['+'] = 1, ['/'] = 1, ['~'] = 1};

int gate_token_chars_ok(const char *t, size_t n) {
  unsigned ok = 1;
  for (size_t i = 0; i < n; i++) ok &= tchar[(unsigned char)t[i]];
  return (int)ok;
}

/* ------------------------------------------------- claims -> headers */

static int put_utf8(char *out, size_t cap, size_t *o, uint32_t cp) {
  unsigned char b[4];
  size_t n;
  if (cp < 0x80) b[0] = (unsigned char)cp, n = 1;
  else if (cp < 0x800) b[0] = (unsigned char)(0xC0 | (cp >> 6)), b[1] = (unsigned char)(0x80 | (cp & 0x3F)), n = 2;
  else if (cp < 0x10000)
    b[0] = (unsigned char)(0xE0 | (cp >> 12)), b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)),
    b[2] = (unsigned char)(0x80 | (cp & 0x3F)), n = 3;
  else
    b[0] = (unsigned char)(0xF0 | (cp >> 18)), b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F)),
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (unsigned char)(0x80 | (cp & 0x3F)), n = 4;
  if (*o + n > cap) return -1;
  memcpy(out + *o, b, n);
  *o += n;
  return 0;
}

static int hex4(const char *p, uint32_t *v) {
  uint32_t r = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(p[i]);
    if (h < 0) return -1;
    r = r * 16 + (uint32_t)h;
  }
  *v = r;
  return 0;
}

/* Unescape the JSON string starting at s[*i] == '"' into out; *i ends after
 * the closing quote.  0, or R_CONTROL (CR, LF, NUL, tab, DEL...), R_COMMA
 * (a ',' when `no_comma`), R_LONG (over cap), R_BAD (malformed). */
enum { R_CONTROL = -1, R_LONG = -2, R_COMMA = -3, R_BAD = -4 };

static int unescape(const char *s, size_t len, size_t *i, char *out, size_t cap, size_t *o, int no_comma) {
  size_t k = *i + 1;
  while (k < len && s[k] != '"') {
    unsigned char c = (unsigned char)s[k];
    uint32_t cp;
    if (c == '\\') {
      if (k + 1 >= len) return R_BAD;
      char e = s[k + 1];
      k += 2;
      switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': case 'f': case 'n': case 'r': case 't': return R_CONTROL;
        case 'u':
          if (k + 4 > len || hex4(s + k, &cp) != 0) return R_BAD;
          k += 4;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (k + 6 > len || s[k] != '\\' || s[k + 1] != 'u' || hex4(s + k + 2, &lo) != 0 || lo < 0xDC00 ||
                lo > 0xDFFF)
              return R_BAD;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            k += 6;
          }
          break;
        default:
          return R_BAD;
      }
      if (cp < 0x20 || cp == 0x7F) return R_CONTROL;
      if (no_comma && cp == ',') return R_COMMA;
      if (put_utf8(out, cap, o, cp) != 0) return R_LONG;
    } else {
      if (c < 0x20 || c == 0x7F) return R_CONTROL;
      if (no_comma && c == ',') return R_COMMA;
      if (*o + 1 > cap) return R_LONG;
      out[(*o)++] = (char)c;
      k++;
    }
  }
  if (k >= len) return R_BAD;
  *i = k + 1;
  return 0;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* JSON text without insignificant whitespace: the length or R_*. */
static long compact(const char *s, size_t len, char *out, size_t cap) {
  size_t o = 0;
  int in_str = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\' && i + 1 < len) {
        if (o + 2 > cap) return R_LONG;
        out[o++] = c;
        out[o++] = s[++i];
        continue;
      }
      if (c == '"') in_str = 0;
    } else if (is_ws(c)) {
      continue;
    } else if (c == '"') {
      in_str = 1;
    }
    if ((unsigned char)c < 0x20 || c == 0x7F) return R_CONTROL;
    if (o + 1 > cap) return R_LONG;
    out[o++] = c;
  }
  return (long)o;
}

/* The raw text of the value (before percent-encoding): length or R_*. */
static long render_raw(const char *json, size_t len, char *out, size_t cap) {
  size_t o = 0;
  if (len == 0) return R_BAD;
  if (json[0] == '"') {
    size_t i = 0;
    int r = unescape(json, len, &i, out, cap, &o, 0);
    return r != 0 ? r : (long)o;
  }
  if (json[0] == '[') {
    size_t i = 1;
    int first = 1, ok = 1;
    for (;;) {
      while (i < len && is_ws(json[i])) i++;
      if (i < len && json[i] == ']' && first) break;
      if (i >= len || json[i] != '"') {
        ok = 0;
        break;
      }
      if (!first) {
        if (o + 1 > cap) return R_LONG;
        out[o++] = ',';
      }
      if (unescape(json, len, &i, out, cap, &o, 1) != 0) {
        /* a comma or a control character in an element, or too long:
         * fall back to the (escaped, single-line) JSON form */
        ok = 0;
        break;
      }
      first = 0;
      while (i < len && is_ws(json[i])) i++;
      if (i < len && json[i] == ',') {
        i++;
        continue;
      }
      if (i < len && json[i] == ']') break;
      ok = 0;
      break;
    }
    if (ok) return (long)o;
  }
  return compact(json, len, out, cap);
}

/* Bytes written as %XX: outside printable ASCII (UTF-8 text), '%' itself,
 * and spaces at either end, which HTTP would strip. */
static int needs_pct(const unsigned char *p, size_t n, size_t i, size_t lead, size_t trail) {
  unsigned char c = p[i];
  return c >= 0x80 || c == '%' || (c == ' ' && (i < lead || i >= n - trail));
}

long gate_render_claim(const char *json, size_t len, char *out, size_t cap) {
  long r = render_raw(json, len, out, cap);
  if (r == R_LONG) return GATE_RENDER_TOO_LONG;
  if (r < 0) return GATE_RENDER_BAD_BYTES; /* control characters (header injection) */
  const unsigned char *p = (const unsigned char *)out;
  size_t n = (size_t)r, lead = 0, trail = 0, extra = 0;
  while (lead < n && p[lead] == ' ') lead++;
  while (trail < n - lead && p[n - 1 - trail] == ' ') trail++;
  for (size_t i = 0; i < n; i++) extra += needs_pct(p, n, i, lead, trail) ? 2 : 0;
  if (n + extra > cap) return GATE_RENDER_TOO_LONG;
  /* expand in place from the end */
  static const char hx[] = "0123456789ABCDEF";
  size_t w = n + extra;
  for (size_t i = n; i-- > 0;) {
    unsigned char c = p[i];
    if (needs_pct(p, n, i, lead, trail)) {
      out[--w] = hx[c & 15];
      out[--w] = hx[c >> 4];
      out[--w] = '%';
    } else {
      out[--w] = (char)c;
    }
  }
  return (long)(n + extra);
}
