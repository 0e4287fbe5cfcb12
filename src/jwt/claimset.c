/* A small builder for claims objects (insertion ordered, names unique). */
#include <string.h>

#include "codec/b64url.h"
#include "codec/json.h"
#include "core/alloc.h"
#include "crypto/key_internal.h"
#include "jwt_internal.h"
#include "jwtkit/jwt.h"

#define JK_CLAIMSET_MAX 256

typedef struct member {
  char *name;
  char *value; /* JSON text */
  size_t value_len;
} member;

struct jwtkit_claimset {
  member *m;
  size_t n, cap;
  size_t aud_count;
  /* The first failed setter's error, kept: a claimset with a lost member
   * must not be signed as if the caller had checked (sticky, like
   * jwtkit_policy). */
  jwtkit_err err;
  const char *err_fn;
};

/* Remember the first failure of a setter. */
static jwtkit_err note(jwtkit_claimset *cs, jwtkit_err rc, const char *fn) {
  if (rc != JWTKIT_OK && cs != NULL && cs->err == JWTKIT_OK) {
    cs->err = rc;
    cs->err_fn = fn;
  }
  return rc;
}

jwtkit_err jk_claimset_error(const jwtkit_claimset *cs, const char **fn) {
  if (fn != NULL) *fn = cs != NULL ? cs->err_fn : NULL;
  return cs != NULL ? cs->err : JWTKIT_ERR_INVALID_ARG;
}

jwtkit_claimset *jwtkit_claimset_new(void) { return jk_calloc(1, sizeof(jwtkit_claimset)); }

void jwtkit_claimset_free(jwtkit_claimset *cs) {
  if (cs == NULL) return;
  for (size_t i = 0; i < cs->n; i++) {
    jk_free(cs->m[i].name);
    jk_free(cs->m[i].value);
  }
  jk_free(cs->m);
  jk_free(cs);
}

static member *find(jwtkit_claimset *cs, const char *name) {
  for (size_t i = 0; i < cs->n; i++)
    if (strcmp(cs->m[i].name, name) == 0) return &cs->m[i];
  return NULL;
}

/* Takes ownership of value. */
static jwtkit_err put(jwtkit_claimset *cs, const char *name, char *value, size_t len) {
  if (cs == NULL || name == NULL || value == NULL) {
    jk_free(value);
    return JWTKIT_ERR_INVALID_ARG;
  }
  size_t nl = strlen(name); /* "" is a valid member name */
  if (!jk_utf8_valid((const unsigned char *)name, nl)) {
    jk_free(value);
    return JWTKIT_ERR_INVALID_ARG;
  }
  member *m = find(cs, name);
  if (m != NULL) {
    jk_free(m->value);
    m->value = value;
    m->value_len = len;
    return JWTKIT_OK;
  }
  if (cs->n == JK_CLAIMSET_MAX) {
    jk_free(value);
    return JWTKIT_ERR_TOO_LARGE;
  }
  if (cs->n == cs->cap) {
    size_t nc = cs->cap ? cs->cap * 2 : 8;
    member *nm = jk_realloc(cs->m, nc * sizeof *nm);
    if (nm == NULL) {
      jk_free(value);
      return JWTKIT_ERR_NOMEM;
    }
    cs->m = nm;
    cs->cap = nc;
  }
  char *nc = jk_strdup(name);
  if (nc == NULL) {
    jk_free(value);
    return JWTKIT_ERR_NOMEM;
  }
  cs->m[cs->n++] = (member){nc, value, len};
  return JWTKIT_OK;
}

static jwtkit_err put_buf(jwtkit_claimset *cs, const char *name, jk_buf *b) {
  size_t len = 0;
  char *v = jk_buf_take(b, &len);
  if (v == NULL) return JWTKIT_ERR_NOMEM;
  return put(cs, name, v, len);
}

static jwtkit_err cs_set_string(jwtkit_claimset *cs, const char *name, const char *value) {
  if (value == NULL) return JWTKIT_ERR_INVALID_ARG;
  jk_buf b;
  jk_buf_init(&b);
  int r = jk_buf_json_str(&b, value, strlen(value));
  if (r != 0) {
    jk_buf_free(&b);
    return r == -1 ? JWTKIT_ERR_INVALID_ARG : JWTKIT_ERR_NOMEM;
  }
  if (strcmp(name ? name : "", "aud") == 0 && cs) cs->aud_count = 1;
  return put_buf(cs, name, &b);
}

static jwtkit_err cs_set_int(jwtkit_claimset *cs, const char *name, int64_t value) {
  jk_buf b;
  jk_buf_init(&b);
  jk_buf_int(&b, value);
  return put_buf(cs, name, &b);
}

static jwtkit_err cs_set_bool(jwtkit_claimset *cs, const char *name, int value) {
  jk_buf b;
  jk_buf_init(&b);
  jk_buf_puts(&b, value ? "true" : "false");
  return put_buf(cs, name, &b);
}

static jwtkit_err cs_set_json(jwtkit_claimset *cs, const char *name, const char *value, size_t len) {
  if (value == NULL) return JWTKIT_ERR_INVALID_ARG;
  jwtkit_err rc = jk_json_check(value, len, 0, NULL);
  if (rc != JWTKIT_OK) return rc;
  char *v = jk_strndup(value, len);
  if (v == NULL) return JWTKIT_ERR_NOMEM;
  if (strcmp(name ? name : "", "aud") == 0 && cs) cs->aud_count = 0; /* opaque now */
  return put(cs, name, v, len);
}

static jwtkit_err cs_merge_json(jwtkit_claimset *cs, const char *object, size_t len) {
  if (cs == NULL || object == NULL) return JWTKIT_ERR_INVALID_ARG;
  jk_jdoc d;
  jwtkit_err rc = jk_json_parse_alloc(&d, object, len, 1, NULL);
  if (rc != JWTKIT_OK) return rc;
  for (uint32_t k = 1; k < d.nodes[0].end && rc == JWTKIT_OK; k = d.nodes[k + 1].end) {
    char *name = jk_json_strdup(&d, k, NULL);
    const jk_jnode *v = &d.nodes[k + 1];
    size_t off = v->type == JK_J_STRING ? v->off - 1 : v->off;
    size_t vl = v->type == JK_J_STRING ? (size_t)v->len + 2 : v->len;
    char *val = jk_strndup(object + off, vl);
    if (name == NULL || val == NULL) {
      jk_free(val);
      rc = JWTKIT_ERR_NOMEM;
    } else {
      rc = put(cs, name, val, vl);
      if (strcmp(name, "aud") == 0) cs->aud_count = 0;
    }
    jk_free(name);
  }
  jk_free(d.nodes);
  return rc;
}

static jwtkit_err cs_add_audience(jwtkit_claimset *cs, const char *aud) {
  if (cs == NULL || aud == NULL) return JWTKIT_ERR_INVALID_ARG;
  member *m = find(cs, "aud");
  if (m == NULL || cs->aud_count == 0) return cs_set_string(cs, "aud", aud);
  jk_buf b;
  jk_buf_init(&b);
  if (cs->aud_count == 1) {
    jk_buf_putc(&b, '[');
    jk_buf_put(&b, m->value, m->value_len);
  } else {
    jk_buf_put(&b, m->value, m->value_len - 1); /* drop ']' */
  }
  jk_buf_putc(&b, ',');
  int r = jk_buf_json_str(&b, aud, strlen(aud));
  if (r != 0) {
    jk_buf_free(&b);
    return r == -1 ? JWTKIT_ERR_INVALID_ARG : JWTKIT_ERR_NOMEM;
  }
  jk_buf_putc(&b, ']');
  size_t count = cs->aud_count + 1;
  jwtkit_err rc = put_buf(cs, "aud", &b);
  if (rc == JWTKIT_OK) cs->aud_count = count;
  return rc;
}

static jwtkit_err cs_set_lifetime(jwtkit_claimset *cs, int64_t now, int64_t ttl) {
  if (ttl <= 0 || now < 0 || now > INT64_MAX - ttl) return JWTKIT_ERR_INVALID_ARG;
  jwtkit_err rc = cs_set_int(cs, "iat", now);
  return rc == JWTKIT_OK ? cs_set_int(cs, "exp", now + ttl) : rc;
}

static jwtkit_err cs_set_jti(jwtkit_claimset *cs) {
  unsigned char r[16];
  char enc[24];
  if (jk_random(r, sizeof r) != 0) return JWTKIT_ERR_CRYPTO;
  size_t n = jk_b64url_encode(enc, r, sizeof r);
  enc[n] = '\0';
  return cs_set_string(cs, "jti", enc);
}


/* ------------------------------------------------ public setters (sticky) */

jwtkit_err jwtkit_claimset_set_string(jwtkit_claimset *cs, const char *name, const char *value) {
  return note(cs, cs_set_string(cs, name, value), "jwtkit_claimset_set_string");
}

jwtkit_err jwtkit_claimset_set_int(jwtkit_claimset *cs, const char *name, int64_t value) {
  return note(cs, cs_set_int(cs, name, value), "jwtkit_claimset_set_int");
}

jwtkit_err jwtkit_claimset_set_bool(jwtkit_claimset *cs, const char *name, int value) {
  return note(cs, cs_set_bool(cs, name, value), "jwtkit_claimset_set_bool");
}

jwtkit_err jwtkit_claimset_set_json(jwtkit_claimset *cs, const char *name, const char *value, size_t len) {
  return note(cs, cs_set_json(cs, name, value, len), "jwtkit_claimset_set_json");
}

jwtkit_err jwtkit_claimset_merge_json(jwtkit_claimset *cs, const char *object, size_t len) {
  return note(cs, cs_merge_json(cs, object, len), "jwtkit_claimset_merge_json");
}

jwtkit_err jwtkit_claimset_add_audience(jwtkit_claimset *cs, const char *aud) {
  return note(cs, cs_add_audience(cs, aud), "jwtkit_claimset_add_audience");
}

jwtkit_err jwtkit_claimset_set_lifetime(jwtkit_claimset *cs, int64_t now, int64_t ttl) {
  return note(cs, cs_set_lifetime(cs, now, ttl), "jwtkit_claimset_set_lifetime");
}

jwtkit_err jwtkit_claimset_set_jti(jwtkit_claimset *cs) {
  return note(cs, cs_set_jti(cs), "jwtkit_claimset_set_jti");
}

jwtkit_err jwtkit_claimset_to_json(const jwtkit_claimset *cs, char **json, size_t *len) {
  if (json != NULL) *json = NULL;
  if (cs == NULL || json == NULL) return JWTKIT_ERR_INVALID_ARG;
  if (cs->err != JWTKIT_OK) return cs->err; /* a setter failed: refuse to serialise what is left */
  jk_buf b;
  jk_buf_init(&b);
  jk_buf_putc(&b, '{');
  for (size_t i = 0; i < cs->n; i++) {
    if (i) jk_buf_putc(&b, ',');
    jk_buf_json_str(&b, cs->m[i].name, strlen(cs->m[i].name));
    jk_buf_putc(&b, ':');
    jk_buf_put(&b, cs->m[i].value, cs->m[i].value_len);
  }
  jk_buf_putc(&b, '}');
  *json = jk_buf_take(&b, len);
  return *json ? JWTKIT_OK : JWTKIT_ERR_NOMEM;
}
