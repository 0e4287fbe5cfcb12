#include "error_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *jwtkit_strerror(jwtkit_err err) {
  switch (err) {
#define JK_STR_(name, num, msg) \
  case JWTKIT_ERR_##name:       \
    return msg;
    JWTKIT_ERROR_MAP(JK_STR_)
#undef JK_STR_
  }
  return "unknown error";
}

const char *jwtkit_errname(jwtkit_err err) {
  switch (err) {
#define JK_NAME_(name, num, msg) \
  case JWTKIT_ERR_##name:        \
    return #name;
    JWTKIT_ERROR_MAP(JK_NAME_)
#undef JK_NAME_
  }
  return "UNKNOWN";
}

jwtkit_err jk_fail(jwtkit_errinfo *info, jwtkit_err code, const char *field, const char *fmt,
                   ...) {
  if (info == NULL) return code;
  info->code = code;
  info->field[0] = '\0';
  if (field != NULL) snprintf(info->field, sizeof info->field, "%s", field);
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(info->msg, sizeof info->msg, fmt, ap);
    va_end(ap);
  } else {
    snprintf(info->msg, sizeof info->msg, "%s", jwtkit_strerror(code));
  }
  return code;
}

void jk_info_clear(jwtkit_errinfo *info) {
  if (info == NULL) return;
  info->code = JWTKIT_OK;
  info->field[0] = '\0';
  info->msg[0] = '\0';
}

#include "jwtkit/jwtkit.h"

const char *jwtkit_version(void) { return JWTKIT_VERSION; }
