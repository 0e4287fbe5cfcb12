/* The RFC 7512 "pkcs11:" URI: a strict parser and a canonical formatter.
 *
 *   pkcs11:token=jwtkit;object=issuer-2026-12;id=%01%02?pin-source=/run/pin&module-path=/usr/lib/x.so
 *
 * Path attributes (separated by ';') select the token and the object;
 * query attributes (after '?', separated by '&') say how to reach them.
 * Every value is percent-decoded into one buffer of at most 2 * len + 1
 * bytes: the only allocation. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error_internal.h"
#include "p11.h"

/* Attributes, in the order the formatter writes them. */
enum {
  A_TOKEN,
  A_MANUFACTURER,
  A_SERIAL,
  A_MODEL,
  A_LIB_MANUFACTURER,
  A_LIB_DESCRIPTION,
  A_LIB_VERSION,
  A_SLOT_DESCRIPTION,
  A_SLOT_MANUFACTURER,
  A_SLOT_ID,
  A_OBJECT,
  A_ID,
  A_TYPE,
  A_PIN_SOURCE, /* query from here on */
  A_PIN_VALUE,
  A_MODULE_NAME,
  A_MODULE_PATH,
  A_COUNT
};
#define A_FIRST_QUERY A_PIN_SOURCE

static const struct {
  const char *name;
  size_t max; /* decoded bytes */
} k_attrs[A_COUNT] = {
    [A_TOKEN] = {"token", 32},
    [A_MANUFACTURER] = {"manufacturer", 32},
    [A_SERIAL] = {"serial", 16},
    [A_MODEL] = {"model", 16},
    [A_LIB_MANUFACTURER] = {"library-manufacturer", 32},
    [A_LIB_DESCRIPTION] = {"library-description", 32},
    [A_LIB_VERSION] = {"library-version", 7},
    [A_SLOT_DESCRIPTION] = {"slot-description", 64},
    [A_SLOT_MANUFACTURER] = {"slot-manufacturer", 32},
    [A_SLOT_ID] = {"slot-id", 20},
    [A_OBJECT] = {"object", 255},
    [A_ID] = {"id", 255},
    [A_TYPE] = {"type", 10},
    [A_PIN_SOURCE] = {"pin-source", 4096},
    [A_PIN_VALUE] = {"pin-value", 4096},
    [A_MODULE_NAME] = {"module-name", 255},
    [A_MODULE_PATH] = {"module-path", 4096},
};

static const char *const k_types[] = {[JK_P11_TYPE_PRIVATE] = "private", [JK_P11_TYPE_PUBLIC] = "public",
                                      [JK_P11_TYPE_CERT] = "cert", [JK_P11_TYPE_SECRET_KEY] = "secret-key",
                                      [JK_P11_TYPE_DATA] = "data"};

static int unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

/* pk11-res-avail: ":" "[" "]" "@" "!" "$" "'" "(" ")" "*" "+" "," "=" */
static int res_avail(unsigned char c) { return c != '\0' && strchr(":[]@!$'()*+,=", c) != NULL; }

/* A character that may stand unencoded in a path (query: 0) value. */
static int value_char(unsigned char c, int path) {
  if (unreserved(c) || res_avail(c)) return 1;
  return path ? c == '&' : (c == '/' || c == '?' || c == '|');
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int jk_p11_is_uri(const char *text, size_t len) {
  static const char scheme[] = "pkcs11:";
  if (text == NULL || len < sizeof scheme - 1) return 0;
  for (size_t i = 0; i < sizeof scheme - 1; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
    if (c != (unsigned char)scheme[i]) return 0;
  }
  return 1;
}

void jk_p11_uri_free(jk_p11_uri *u) {
  if (u == NULL) return;
  jk_free(u->buf);
  memset(u, 0, sizeof *u);
}

/* Decimal digits [lo, hi) into *v, at most max; 0 on success. */
static int parse_ulong(const char *s, size_t n, unsigned long max, unsigned long *v) {
  if (n == 0) return -1;
  unsigned long x = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    unsigned d = (unsigned)(s[i] - '0');
    if (x > (max - d) / 10) return -1;
    x = x * 10 + d;
  }
  *v = x;
  return 0;
}

/* Store the decoded value of attribute `a` (already in u->buf at val,
 * vlen bytes) into u. */
static jwtkit_err store(jk_p11_uri *u, int a, const char *val, size_t vlen, jwtkit_errinfo *info) {
  const char *name = k_attrs[a].name;
  switch (a) {
    case A_TOKEN: u->token = val; break;
    case A_MANUFACTURER: u->manufacturer = val; break;
    case A_SERIAL: u->serial = val; break;
    case A_MODEL: u->model = val; break;
    case A_LIB_MANUFACTURER: u->lib_manufacturer = val; break;
    case A_LIB_DESCRIPTION: u->lib_description = val; break;
    case A_SLOT_DESCRIPTION: u->slot_description = val; break;
    case A_SLOT_MANUFACTURER: u->slot_manufacturer = val; break;
    case A_OBJECT: u->object = val; break;
    case A_ID:
      u->id = (const unsigned char *)val;
      u->id_len = vlen;
      break;
    case A_LIB_VERSION: {
      const char *dot = memchr(val, '.', vlen);
      unsigned long ma = 0, mi = 0;
      size_t ml = dot ? (size_t)(dot - val) : vlen;
      if (parse_ulong(val, ml, 255, &ma) != 0 || (dot && parse_ulong(dot + 1, vlen - ml - 1, 255, &mi) != 0))
        return jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "library-version=%s is not MAJOR[.MINOR] with numbers 0..255", val);
      u->has_lib_version = 1;
      u->lib_major = (unsigned)ma;
      u->lib_minor = (unsigned)mi;
      break;
    }
    case A_SLOT_ID: {
      unsigned long v;
      if (parse_ulong(val, vlen, ULONG_MAX, &v) != 0)
        return jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "slot-id=%s is not a decimal number", val);
      u->has_slot_id = 1;
      u->slot_id = v;
      break;
    }
    case A_TYPE: {
      int t = 0;
      for (int i = JK_P11_TYPE_PRIVATE; i <= JK_P11_TYPE_DATA; i++)
        if (strcmp(val, k_types[i]) == 0) t = i;
      if (t == 0)
        return jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "type=%s: the type is public, private, cert, secret-key or data", val);
      u->type = t;
      break;
    }
    case A_PIN_VALUE:
      /* never echo the value: it is a PIN */
      return jk_fail(info, JWTKIT_ERR_INVALID_ARG, name,
                     "pin-value= puts the PIN where process lists, shell history and logs keep it; use "
                     "pin-source=FILE (mode 0600) or the environment variable JWTKIT_PKCS11_PIN");
    case A_PIN_SOURCE: {
      if (val[0] == '|')
        return jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "pin-source=%s runs a program; jwtkit reads a PIN only from a file", val);
      if (strncmp(val, "file:", 5) == 0) {
        const char *p = val + 5;
        if (strncmp(p, "//", 2) == 0) {
          if (p[2] != '/')
            return jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "pin-source=%s: only local files (file:///PATH or a plain path)", val);
          p += 2;
        }
        val = p;
      }
      if (val[0] == '\0') return jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "pin-source= names no file");
      u->pin_source = val;
      break;
    }
    case A_MODULE_NAME:
      if (strchr(val, '/') != NULL)
        return jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "module-name=%s is a path; give it as module-path=", val);
      u->module_name = val;
      break;
    case A_MODULE_PATH:
      if (val[0] != '/')
        return jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "module-path=%s must be an absolute path (loading a module runs its code)", val);
      u->module_path = val;
      break;
  }
  return JWTKIT_OK;
}

jwtkit_err jk_p11_uri_parse(jk_p11_uri *u, const char *text, size_t len, jwtkit_errinfo *info) {
  if (u == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  memset(u, 0, sizeof *u);
  if (text == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "no PKCS#11 URI");
  if (len > JK_P11_URI_MAX)
    return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "PKCS#11 URI of %zu bytes; at most %u are accepted", len,
                   JK_P11_URI_MAX);
  if (!jk_p11_is_uri(text, len))
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "not a PKCS#11 URI (RFC 7512: pkcs11:token=...;object=...)");
  /* decoded values are never longer than their text; one NUL each */
  if ((u->buf = jk_malloc(2 * len + 1)) == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  char *o = u->buf;
  unsigned seen = 0;
  size_t i = 7;
  int path = 1;
  jwtkit_err rc = JWTKIT_OK;
  if (i == len) goto done; /* "pkcs11:" alone: any token, any object */
  if (text[i] == '?') {
    path = 0;
    i++;
    if (i == len) goto done;
  }
  for (;;) {
    /* one attribute: NAME=VALUE up to ';' (path), '&' (query), '?' (end of path) or the end */
    size_t ns = i;
    while (i < len && text[i] != '=' && text[i] != ';' && text[i] != '&' && text[i] != '?') i++;
    size_t nl = i - ns;
    if (nl == 0) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "empty attribute at offset %zu of the PKCS#11 URI", ns);
      goto done;
    }
    if (i == len || text[i] != '=') {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "PKCS#11 URI attribute \"%.*s\" has no '=' and value",
                   (int)(nl > 40 ? 40 : nl), text + ns);
      goto done;
    }
    int a = -1;
    for (int k = 0; k < A_COUNT; k++)
      if (strlen(k_attrs[k].name) == nl && memcmp(k_attrs[k].name, text + ns, nl) == 0) a = k;
    if (a < 0) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL,
                   "unknown PKCS#11 URI attribute \"%.*s\" (jwtkit knows token, manufacturer, serial, model, "
                   "library-*, slot-*, object, id, type; pin-source, module-name, module-path)",
                   (int)(nl > 32 ? 32 : nl), text + ns);
      goto done;
    }
    const char *name = k_attrs[a].name;
    if ((a >= A_FIRST_QUERY) != !path) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "%s= belongs in the %s of a PKCS#11 URI (%s)", name,
                   path ? "query" : "path", path ? "after '?', separated by '&'" : "before '?', separated by ';'");
      goto done;
    }
    if (seen & (1u << a)) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "%s= given twice in the PKCS#11 URI", name);
      goto done;
    }
    seen |= 1u << a;
    i++; /* '=' */
    char *val = o;
    size_t vl = 0;
    while (i < len && text[i] != (path ? ';' : '&') && !(path && text[i] == '?')) {
      unsigned char c = (unsigned char)text[i];
      if (c == '%') {
        int h = i + 2 < len ? hexval((unsigned char)text[i + 1]) : -1;
        int l = h >= 0 ? hexval((unsigned char)text[i + 2]) : -1;
        if (l < 0) {
          rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "bad percent-encoding at offset %zu (%%XX expected)", i);
          goto done;
        }
        c = (unsigned char)(h * 16 + l);
        i += 3;
      } else if (value_char(c, path)) {
        i++;
      } else {
        if (c == ' ')
          rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "a space at offset %zu must be written %%20", i);
        else if (c < 0x20 || c >= 0x7f)
          rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "byte 0x%02x at offset %zu must be percent-encoded", c,
                       i);
        else
          rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "'%c' at offset %zu must be written %%%02X", c, i, c);
        goto done;
      }
      if (a != A_ID && (c < 0x20 || c == 0x7f)) {
        rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "%s= holds a control character (0x%02x)", name, c);
        goto done;
      }
      if (vl == k_attrs[a].max) {
        rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "%s= is longer than %zu bytes", name, k_attrs[a].max);
        goto done;
      }
      val[vl++] = (char)c;
    }
    val[vl] = '\0';
    o += vl + 1;
    if (vl == 0 && a != A_PIN_VALUE) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "%s= has an empty value", name);
      goto done;
    }
    if (a != A_ID && memchr(val, '\0', vl) != NULL) { /* unreachable: %00 is a control character */
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, name, "%s= holds a NUL byte", name);
      goto done;
    }
    if ((rc = store(u, a, val, vl, info)) != JWTKIT_OK) goto done;
    if (i == len) break;
    if (path && text[i] == '?') {
      path = 0;
      i++;
      if (i == len) break;
      continue;
    }
    i++; /* ';' or '&' */
    if (i == len) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "the PKCS#11 URI ends with a separator");
      goto done;
    }
  }
done:
  if (rc != JWTKIT_OK) jk_p11_uri_free(u);
  return rc;
}

/* ---------------------------------------------------------- formatting */

typedef struct outbuf {
  char *p;
  size_t cap, len;
} outbuf;

static void put_c(outbuf *b, char c) {
  if (b->len + 1 < b->cap) b->p[b->len] = c;
  b->len++;
}

static void put_s(outbuf *b, const char *s) {
  while (*s) put_c(b, *s++);
}

static void put_val(outbuf *b, const unsigned char *v, size_t n, int path, int encode_all) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = v[i];
    /* '&' is allowed in a path value, but encoding it is always safe */
    if (!encode_all && c != '&' && value_char(c, path)) {
      put_c(b, (char)c);
    } else {
      put_c(b, '%');
      put_c(b, hex[c >> 4]);
      put_c(b, hex[c & 15]);
    }
  }
}

static void put_attr(outbuf *b, int *first, char sep, const char *name, const char *val, int path) {
  if (val == NULL) return;
  if (!*first) put_c(b, sep);
  *first = 0;
  put_s(b, name);
  put_c(b, '=');
  put_val(b, (const unsigned char *)val, strlen(val), path, 0);
}

size_t jk_p11_uri_format(const jk_p11_uri *u, int with_query, char *out, size_t cap) {
  outbuf b = {out, cap, 0};
  put_s(&b, "pkcs11:");
  int first = 1;
  put_attr(&b, &first, ';', "token", u->token, 1);
  put_attr(&b, &first, ';', "manufacturer", u->manufacturer, 1);
  put_attr(&b, &first, ';', "serial", u->serial, 1);
  put_attr(&b, &first, ';', "model", u->model, 1);
  put_attr(&b, &first, ';', "library-manufacturer", u->lib_manufacturer, 1);
  put_attr(&b, &first, ';', "library-description", u->lib_description, 1);
  if (u->has_lib_version) {
    char v[24];
    snprintf(v, sizeof v, "%u.%u", u->lib_major, u->lib_minor);
    put_attr(&b, &first, ';', "library-version", v, 1);
  }
  put_attr(&b, &first, ';', "slot-description", u->slot_description, 1);
  put_attr(&b, &first, ';', "slot-manufacturer", u->slot_manufacturer, 1);
  if (u->has_slot_id) {
    char v[24];
    snprintf(v, sizeof v, "%lu", u->slot_id);
    put_attr(&b, &first, ';', "slot-id", v, 1);
  }
  put_attr(&b, &first, ';', "object", u->object, 1);
  if (u->id != NULL) {
    if (!first) put_c(&b, ';');
    first = 0;
    put_s(&b, "id=");
    put_val(&b, u->id, u->id_len, 1, 1);
  }
  if (u->type > 0 && u->type <= JK_P11_TYPE_DATA) put_attr(&b, &first, ';', "type", k_types[u->type], 1);
  if (with_query && (u->pin_source || u->module_name || u->module_path)) {
    put_c(&b, '?');
    first = 1;
    if (u->pin_source != NULL && (strncmp(u->pin_source, "file:", 5) == 0 || u->pin_source[0] == '|')) {
      /* a path that would read as a file: URI or a program: keep the
       * file: prefix the parser took off, so the text means the same */
      if (!first) put_c(&b, '&');
      first = 0;
      put_s(&b, "pin-source=file:");
      put_val(&b, (const unsigned char *)u->pin_source, strlen(u->pin_source), 0, 0);
    } else {
      put_attr(&b, &first, '&', "pin-source", u->pin_source, 0);
    }
    put_attr(&b, &first, '&', "module-name", u->module_name, 0);
    put_attr(&b, &first, '&', "module-path", u->module_path, 0);
  }
  if (cap > 0) out[b.len < cap ? b.len : cap - 1] = '\0';
  return b.len;
}
