#ifndef JK_JWT_INTERNAL_H
#define JK_JWT_INTERNAL_H

#include <stddef.h>

#include "jwtkit/error.h"

/* Strict JSON validation without keeping the tree. */
jwtkit_err jk_json_check(const char *json, size_t len, int top_object, jwtkit_errinfo *info);

#endif
