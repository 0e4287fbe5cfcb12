/* Compiler attributes, one place: every printf-like function of the
 * project is declared with JK_PRINTF so -Wformat checks its callers. */
#ifndef JK_ATTR_H
#define JK_ATTR_H

#if defined(__GNUC__) || defined(__clang__)
#define JK_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))
#else
#define JK_PRINTF(fmt, first)
#endif

#endif
