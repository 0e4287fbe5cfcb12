#ifndef JK_ERROR_INTERNAL_H
#define JK_ERROR_INTERNAL_H

#include "jwtkit/error.h"

/* Fill info (if any) and return code.  field may be NULL; fmt may be NULL
 * (then the message is jwtkit_strerror(code)). */
jwtkit_err jk_fail(jwtkit_errinfo *info, jwtkit_err code, const char *field, const char *fmt,
                   ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
void jk_info_clear(jwtkit_errinfo *info);

#endif
