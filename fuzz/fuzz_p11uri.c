/*
 * p11uri: the RFC 7512 "pkcs11:" URI parser and formatter
 * (src/crypto/p11_uri.c), which every token key's URI goes through.
 *
 * Properties: a parse that fails returns the code its errinfo holds, with
 * NUL-terminated strings, and leaves the URI cleared; a parse that
 * succeeds only accepts text with the scheme, gives values within their
 * caps, and formats (with the query) to a canonical text that parses again
 * to the same attributes - unless it is longer than the URI limit, which
 * is then refused as TOO_LARGE - and formats again to the same text.
 * (pin-value= never parses, so no canonical text carries one.)
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "crypto/p11.h"

static int same_str(const char *a, const char *b) {
  return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int same_uri(const jk_p11_uri *a, const jk_p11_uri *b) {
  return same_str(a->token, b->token) && same_str(a->manufacturer, b->manufacturer) &&
         same_str(a->serial, b->serial) && same_str(a->model, b->model) &&
         same_str(a->lib_manufacturer, b->lib_manufacturer) && same_str(a->lib_description, b->lib_description) &&
         a->has_lib_version == b->has_lib_version && a->lib_major == b->lib_major && a->lib_minor == b->lib_minor &&
         same_str(a->slot_description, b->slot_description) && same_str(a->slot_manufacturer, b->slot_manufacturer) &&
         a->has_slot_id == b->has_slot_id && a->slot_id == b->slot_id && same_str(a->object, b->object) &&
         (a->id == NULL) == (b->id == NULL) && a->id_len == b->id_len &&
         (a->id == NULL || memcmp(a->id, b->id, a->id_len) == 0) && a->type == b->type &&
         same_str(a->pin_source, b->pin_source) && same_str(a->module_name, b->module_name) &&
         same_str(a->module_path, b->module_path);
}

static int cleared(const jk_p11_uri *u) {
  static const jk_p11_uri zero;
  return memcmp(u, &zero, sizeof zero) == 0;
}

int jkf_p11uri(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  jk_p11_uri u;
  jwtkit_errinfo info;
  memset(&u, 0x5a, sizeof u);
  memset(&info, 0x5a, sizeof info);
  jwtkit_err rc = jk_p11_uri_parse(&u, text, size, &info);
  if (rc != JWTKIT_OK) {
    JKF_CHECK(cleared(&u), "a failed parse left attributes");
    JKF_CHECK(jkf_errinfo_sane(&info), "errinfo not NUL-terminated");
    JKF_CHECK(info.code == rc, "parse returned %s, errinfo says %s", jwtkit_errname(rc), jwtkit_errname(info.code));
    JKF_CHECK(rc == JWTKIT_ERR_INVALID_ARG || rc == JWTKIT_ERR_TOO_LARGE, "parse failed with %s", jwtkit_errname(rc));
    return 0;
  }
  JKF_CHECK(jk_p11_is_uri(text, size), "parsed a text without the pkcs11: scheme");
  JKF_CHECK(size <= JK_P11_URI_MAX, "parsed %zu bytes", size);
  JKF_CHECK(u.token == NULL || strlen(u.token) <= 32, "token label over 32 bytes");
  JKF_CHECK(u.serial == NULL || strlen(u.serial) <= 16, "serial over 16 bytes");
  JKF_CHECK(u.object == NULL || strlen(u.object) <= 255, "object over 255 bytes");
  JKF_CHECK(u.id == NULL || (u.id_len >= 1 && u.id_len <= 255), "id of %zu bytes", u.id_len);
  JKF_CHECK(u.module_path == NULL || u.module_path[0] == '/', "relative module-path accepted");
  JKF_CHECK(u.type >= JK_P11_TYPE_ANY && u.type <= JK_P11_TYPE_DATA, "type %d", u.type);

  size_t need = jk_p11_uri_format(&u, 1, NULL, 0);
  char *t1 = malloc(need + 1), *t2 = malloc(need + 1);
  JKF_CHECK(t1 != NULL && t2 != NULL, "malloc");
  JKF_CHECK(jk_p11_uri_format(&u, 1, t1, need + 1) == need && strlen(t1) == need, "format is not stable in length");
  jk_p11_uri v;
  rc = jk_p11_uri_parse(&v, t1, need, &info);
  if (need > JK_P11_URI_MAX) {
    JKF_CHECK(rc == JWTKIT_ERR_TOO_LARGE, "a %zu-byte canonical URI gave %s", need, jwtkit_errname(rc));
  } else {
    JKF_CHECK(rc == JWTKIT_OK, "canonical URI %.200s does not parse: %s", t1, info.msg);
    JKF_CHECK(same_uri(&u, &v), "canonical URI %.200s parses to other attributes", t1);
    JKF_CHECK(jk_p11_uri_format(&v, 1, t2, need + 1) == need && memcmp(t1, t2, need) == 0,
              "formatting is not a fixed point: %.200s", t1);
    jk_p11_uri_free(&v);
  }
  free(t1);
  free(t2);
  jk_p11_uri_free(&u);
  return 0;
}

JKF_ENTRY(jkf_p11uri)
