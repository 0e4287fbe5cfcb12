#ifndef JK_JWT_INTERNAL_H
#define JK_JWT_INTERNAL_H

#include <stddef.h>

#include "jwtkit/error.h"

/* The first error a claimset setter returned (JWTKIT_OK if none) and the
 * setter's name; INVALID_ARG for NULL. */
typedef struct jwtkit_claimset jwtkit_claimset;
jwtkit_err jk_claimset_error(const jwtkit_claimset *cs, const char **fn);

#endif
