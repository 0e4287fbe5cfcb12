/*
 * Helpers of the service harnesses (fuzz_serve_*.c, fuzz_gate_*.c): header
 * fields from "Name: value" lines, and a private temporary directory for
 * the files a service reads (keyrings, key files, secrets).
 */
#ifndef JKF_SVC_H
#define JKF_SVC_H

#include <stddef.h>

#include "common.h"

/* Header fields parsed from the input (names and values are copies). */
#define JKF_MAX_FIELDS 64
typedef struct jkf_fields {
  char *name[JKF_MAX_FIELDS];
  char *value[JKF_MAX_FIELDS];
  size_t n;
} jkf_fields;

/* Parse "Name: value" lines of text[0..len) up to an empty line (or the
 * end); *rest gets the offset after the empty line (len when there is
 * none).  A line without ':' is skipped.  The value loses its leading and
 * trailing blanks and a trailing CR, as an HTTP parser does; a NUL byte
 * ends a name or value early (C strings, as libmicrohttpd hands them). */
void jkf_fields_parse(jkf_fields *f, const char *text, size_t len, size_t *rest);
void jkf_fields_free(jkf_fields *f);
/* The first value of name (ASCII case-insensitive), or NULL. */
const char *jkf_fields_get(void *fields, const char *name);
/* fn(cls, name, value) for every field in order until fn returns 0. */
void jkf_fields_each(void *fields, int (*fn)(void *cls, const char *name, const char *value), void *cls);

/* A private temporary directory, created on the first call and removed
 * with its contents at exit. */
const char *jkf_tmpdir(void);
/* Write data to <tmpdir>/<name> (name may contain one level of
 * subdirectory, created) with mode; returns the path in a static buffer
 * (overwritten by the next call). */
const char *jkf_write_file(const char *name, const void *data, size_t len, unsigned mode);

/* A growing text buffer (aborts when out of memory). */
typedef struct jkf_text {
  char *p;
  size_t len, cap;
} jkf_text;
void jkf_text_put(jkf_text *t, const char *s, size_t n);
void jkf_text_printf(jkf_text *t, const char *fmt, ...) JKF_PRINTF(2, 3);
void jkf_text_free(jkf_text *t);

/* 1 when s[0..n) contains needle. */
int jkf_contains(const char *s, size_t n, const char *needle);

#endif
