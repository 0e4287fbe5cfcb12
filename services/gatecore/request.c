/* The request as plain data: URI and host normalisation, route
 * selection, the token from Authorization: Bearer, the route's token
 * header and cookie (no I/O). */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "gw_internal.h"

/* ------------------------------------------------------------ routing */

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int gw_normalize_path(const char *uri, size_t len, char *out, size_t cap, size_t *outlen) {
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

int gw_normalize_host(const char *host, size_t len, char *out, size_t cap) {
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

int gw_host_matches(const char *pattern, const char *host) {
  if (pattern[0] == '*' && pattern[1] == '.') {
    size_t pl = strlen(pattern + 1), hl = strlen(host);
    return hl > pl && strcmp(host + hl - pl, pattern + 1) == 0;
  }
  return strcmp(pattern, host) == 0;
}

int gw_path_matches(const char *prefix, const char *path, size_t len) {
  size_t pl = strlen(prefix);
  return path != NULL && len >= pl && memcmp(path, prefix, pl) == 0;
}

size_t gw_route_select(const gw_config *cfg, const char *host, const char *path, size_t path_len) {
  for (size_t i = 0; i < cfg->nroutes; i++) {
    const gw_route_cfg *r = &cfg->routes[i];
    int ok = r->hosts.n == 0;
    for (size_t k = 0; !ok && host != NULL && k < r->hosts.n; k++) ok = gw_host_matches(r->hosts.v[k], host);
    if (!ok) continue;
    ok = r->prefixes.n == 0;
    for (size_t k = 0; !ok && k < r->prefixes.n; k++) ok = gw_path_matches(r->prefixes.v[k], path, path_len);
    if (ok) return i;
  }
  return GW_NO_ROUTE;
}

/* ------------------------------------------------------------- tokens */

int gw_parse_bearer(const char *v, const char **tok, size_t *len) {
  while (*v == ' ' || *v == '\t') v++;
  if (strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t' && v[6] != '\0')) return 0;
  v += 6;
  while (*v == ' ' || *v == '\t') v++;
  size_t n = strcspn(v, " \t,"); /* the token: up to a space, a tab or a comma (strcspn is vectorised) */
  if (n == 0) return -1;
  for (const char *rest = v + n; *rest; rest++) /* after it: only trailing blanks */
    if (*rest != ' ' && *rest != '\t') return -1;
  *tok = v;
  *len = n;
  return 1;
}

int gw_find_cookie(const char *h, const char *name, const char **val, size_t *len, int *conflict) {
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

int gw_token_chars_ok(const char *t, size_t n) {
  unsigned ok = 1;
  for (size_t i = 0; i < n; i++) ok &= tchar[(unsigned char)t[i]];
  return (int)ok;
}

/* ------------------------------------------------------------ request */

static void offer(gw_token *t, const char *tok, size_t len) {
  if (t->p == NULL) {
    t->p = tok;
    t->len = len;
  } else if (len != t->len || memcmp(tok, t->p, len) != 0) {
    t->ambiguous = 1;
  }
}

void gw_token_field(gw_token *t, const gw_route_cfg *rc, const char *key, const char *value) {
  if (key == NULL || value == NULL) return;
  const char *tok;
  size_t len;
  if (strcasecmp(key, "Authorization") == 0) {
    int r = gw_parse_bearer(value, &tok, &len);
    if (r == 1) offer(t, tok, len);
    else if (r < 0) t->bad = 1;
  } else if (rc->token_header != NULL && strcasecmp(key, rc->token_header) == 0) {
    int r = gw_parse_bearer(value, &tok, &len);
    if (r == 0) { /* the bare token */
      tok = value;
      while (*tok == ' ' || *tok == '\t') tok++;
      len = strlen(tok);
      while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t')) len--;
      r = len > 0 ? 1 : -1;
    }
    if (r == 1) offer(t, tok, len);
    else t->bad = 1;
  } else if (rc->token_cookie != NULL && strcasecmp(key, "Cookie") == 0) {
    int conflict = 0;
    if (gw_find_cookie(value, rc->token_cookie, &tok, &len, &conflict)) {
      if (len == 0) t->bad = 1;
      else offer(t, tok, len);
    }
    if (conflict) t->ambiguous = 1;
  }
}

typedef struct scan {
  gw_token *t;
  const gw_route_cfg *rc;
} scan;

static int scan_field(void *cls, const char *name, const char *value) {
  scan *s = cls;
  gw_token_field(s->t, s->rc, name, value);
  return 1;
}

void gw_request_read_as(gw_request *rq, const gw_state *st, const gw_fields *f, gw_proxy_headers conv) {
  rq->method = NULL;
  rq->host = rq->path = NULL;
  rq->path_len = 0;
  rq->bad_uri = 0;
  rq->route = GW_NO_ROUTE;
  rq->token = (gw_token){0};
  const char *uri, *host;
  if (conv == GW_PROXY_FORWARDED) {
    /* Host is the gate's own address behind Traefik: never the site's */
    uri = f->get(f->ctx, "X-Forwarded-Uri");
    host = f->get(f->ctx, "X-Forwarded-Host");
    rq->method = f->get(f->ctx, "X-Forwarded-Method");
  } else {
    uri = f->get(f->ctx, "X-Original-URI");
    host = f->get(f->ctx, "X-Original-Host");
    if (host == NULL) host = f->get(f->ctx, "Host");
  }
  if (host != NULL && gw_normalize_host(host, strlen(host), rq->hostbuf, sizeof rq->hostbuf) == 0)
    rq->host = rq->hostbuf;
  if (uri != NULL) {
    size_t ul = strlen(uri);
    if (ul > GW_MAX_URI || gw_normalize_path(uri, ul, rq->pathbuf, sizeof rq->pathbuf, &rq->path_len) != 0) {
      rq->bad_uri = 1;
      return;
    }
    rq->path = rq->pathbuf;
  }
  const gw_config *c = gw_state_config(st);
  rq->route = gw_route_select(c, rq->host, rq->path, rq->path_len);
  if (rq->route == GW_NO_ROUTE) return;
  scan s = {&rq->token, &c->routes[rq->route]};
  f->each(f->ctx, scan_field, &s);
}

void gw_request_read(gw_request *rq, const gw_state *st, const gw_fields *f) {
  gw_request_read_as(rq, st, f, gw_state_config(st)->proxy_headers);
}
