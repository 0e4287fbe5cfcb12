/* Compiler attributes, one place: every printf-like function of the
 * project is declared with JK_PRINTF so -Wformat checks its callers. */
#ifndef JK_ATTR_H
#define JK_ATTR_H

#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define JK_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))
#else
#define JK_PRINTF(fmt, first)
#endif

/* A const pointer handed to an interface that takes a plain pointer and does
 * not write through it (libmicrohttpd's persistent buffers, PKCS#11
 * templates, OSSL_PARAM constructors, execvp): the one sanctioned way to
 * drop const, so -Wcast-qual flags every other. */
#define JK_UNCONST(p) ((void *)(uintptr_t)(const void *)(p))

#endif
