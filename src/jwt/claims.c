/* Verified claims and their accessors; decoding without verifying. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "codec/b64url.h"
#include "codec/json.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "crypto/key_internal.h"
#include "jwt_internal.h"
#include "jwtkit/jwt.h"
#include "verify_internal.h"

/* -------------------------------------------------------------- claims */

void jwtkit_claims_free(jwtkit_claims *c) {
  if (c == NULL) return;
  jwtkit_key_free(c->key);
  jk_free(c->heap_nodes);
  jk_free(c);
}

static int claim_index(const jwtkit_claims *c, const char *name) {
  if (c == NULL || name == NULL) return -1;
  return jk_json_get(&c->doc, 0, name, strlen(name));
}

jwtkit_err jwtkit_claims_get_string(const jwtkit_claims *c, const char *name, const char **value, size_t *len) {
  int i = claim_index(c, name);
  if (i < 0) return c && name ? JWTKIT_ERR_NOT_FOUND : JWTKIT_ERR_INVALID_ARG;
  const jk_jnode *nd = &c->doc.nodes[i];
  if (nd->type != JK_J_STRING) return JWTKIT_ERR_TYPE;
  if (value != NULL) *value = c->strings + nd->off;
  if (len != NULL) *len = strlen(c->strings + nd->off);
  return JWTKIT_OK;
}

jwtkit_err jwtkit_claims_get_int(const jwtkit_claims *c, const char *name, int64_t *value) {
  int i = claim_index(c, name);
  if (i < 0) return c && name ? JWTKIT_ERR_NOT_FOUND : JWTKIT_ERR_INVALID_ARG;
  int64_t v;
  if (jk_json_int(&c->doc, (uint32_t)i, &v) != 0) return JWTKIT_ERR_TYPE;
  if (value != NULL) *value = v;
  return JWTKIT_OK;
}

jwtkit_err jwtkit_claims_get_bool(const jwtkit_claims *c, const char *name, int *value) {
  int i = claim_index(c, name);
  if (i < 0) return c && name ? JWTKIT_ERR_NOT_FOUND : JWTKIT_ERR_INVALID_ARG;
  uint8_t t = c->doc.nodes[i].type;
  if (t != JK_J_TRUE && t != JK_J_FALSE) return JWTKIT_ERR_TYPE;
  if (value != NULL) *value = t == JK_J_TRUE;
  return JWTKIT_OK;
}

jwtkit_err jwtkit_claims_get_json(const jwtkit_claims *c, const char *name, const char **json, size_t *len) {
  int i = claim_index(c, name);
  if (i < 0) return c && name ? JWTKIT_ERR_NOT_FOUND : JWTKIT_ERR_INVALID_ARG;
  const jk_jnode *nd = &c->doc.nodes[i];
  size_t off = nd->type == JK_J_STRING ? nd->off - 1 : nd->off;
  size_t n = nd->type == JK_J_STRING ? (size_t)nd->len + 2 : nd->len;
  if (json != NULL) *json = c->doc.src + off;
  if (len != NULL) *len = n;
  return JWTKIT_OK;
}

const char *jwtkit_claims_json(const jwtkit_claims *c, size_t *len) {
  if (c == NULL) return NULL;
  if (len != NULL) *len = c->doc.len;
  return c->doc.src;
}

const char *jwtkit_claims_header_json(const jwtkit_claims *c, size_t *len) {
  if (c == NULL) return NULL;
  if (len != NULL) *len = c->header_len;
  return c->header;
}

jwtkit_alg jwtkit_claims_alg(const jwtkit_claims *c) { return c ? c->alg : JWTKIT_ALG_UNSPEC; }
const char *jwtkit_claims_kid(const jwtkit_claims *c) { return c ? c->kid : NULL; }
const jwtkit_key *jwtkit_claims_key(const jwtkit_claims *c) { return c ? c->key : NULL; }

jwtkit_err jwtkit_claims_get_numericdate(const jwtkit_claims *c, const char *name, int64_t *floor_s, int64_t *ceil_s) {
  int i = claim_index(c, name);
  if (i < 0) return c && name ? JWTKIT_ERR_NOT_FOUND : JWTKIT_ERR_INVALID_ARG;
  int64_t fl, ce;
  if (c->doc.nodes[i].type != JK_J_NUMBER) return JWTKIT_ERR_TYPE;
  if (jk_json_seconds(&c->doc, (uint32_t)i, &fl, &ce) != 0) return JWTKIT_ERR_TOO_LARGE;
  if (floor_s != NULL) *floor_s = fl;
  if (ceil_s != NULL) *ceil_s = ce;
  return JWTKIT_OK;
}

jwtkit_err jwtkit_claims_get_string_list(const jwtkit_claims *c, const char *name, size_t *count) {
  int i = claim_index(c, name);
  if (i < 0) return c && name ? JWTKIT_ERR_NOT_FOUND : JWTKIT_ERR_INVALID_ARG;
  const jk_jnode *nd = &c->doc.nodes[i];
  size_t n = 0;
  if (nd->type == JK_J_STRING) {
    n = 1;
  } else if (nd->type == JK_J_ARRAY) {
    for (uint32_t k = (uint32_t)i + 1; k < nd->end; k = c->doc.nodes[k].end, n++)
      if (c->doc.nodes[k].type != JK_J_STRING) return JWTKIT_ERR_TYPE;
  } else {
    return JWTKIT_ERR_TYPE;
  }
  if (count != NULL) *count = n;
  return JWTKIT_OK;
}

jwtkit_err jwtkit_claims_get_string_item(const jwtkit_claims *c, const char *name, size_t index, const char **value,
                                         size_t *len) {
  size_t n;
  jwtkit_err rc = jwtkit_claims_get_string_list(c, name, &n);
  if (rc != JWTKIT_OK) return rc;
  if (index >= n) return JWTKIT_ERR_NOT_FOUND;
  uint32_t k = (uint32_t)claim_index(c, name);
  if (c->doc.nodes[k].type == JK_J_ARRAY) {
    k++;
    for (size_t j = 0; j < index; j++) k = c->doc.nodes[k].end;
  }
  const char *s = c->strings + c->doc.nodes[k].off;
  if (value != NULL) *value = s;
  if (len != NULL) *len = strlen(s);
  return JWTKIT_OK;
}

jwtkit_err jwtkit_claims_next(const jwtkit_claims *c, size_t *cursor, const char **name, const char **json,
                              size_t *json_len) {
  if (c == NULL || cursor == NULL) return JWTKIT_ERR_INVALID_ARG;
  const jk_jdoc *d = &c->doc;
  uint32_t k = *cursor == 0 ? 1 : (uint32_t)*cursor; /* the next member's name node */
  if (*cursor > d->nodes[0].end || k + 1 >= d->nodes[0].end) return JWTKIT_ERR_NOT_FOUND;
  const jk_jnode *v = &d->nodes[k + 1];
  if (name != NULL) *name = c->strings + d->nodes[k].off;
  if (json != NULL) *json = d->src + (v->type == JK_J_STRING ? v->off - 1 : v->off);
  if (json_len != NULL) *json_len = v->type == JK_J_STRING ? (size_t)v->len + 2 : v->len;
  *cursor = v->end;
  return JWTKIT_OK;
}

