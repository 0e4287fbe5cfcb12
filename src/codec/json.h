/*
 * The JSON seam.  Everything jwtkit parses (headers, claims, JWKs, keyring
 * metadata) goes through jk_json_parse; everything it writes goes through
 * jk_buf.
 *
 * The parser is strict RFC 8259: one value, no trailing bytes, valid UTF-8
 * (no overlongs, no surrogates), escapes well formed with surrogate pairs
 * matched, no "\u0000" (it would truncate C strings and split names that
 * compare equal), no control characters in strings, the RFC number grammar,
 * nesting at most JWTKIT_MAX_JSON_DEPTH, and no duplicate member names in any
 * object (compared after unescaping).
 *
 * It does not allocate: it fills a caller-provided node array in document
 * order and reports how many nodes it needed when the array is too small.
 * Strings are not copied; accessors unescape on demand.
 */
#ifndef JK_JSON_H
#define JK_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/utf8.h"

#include "jwtkit/error.h"

typedef enum jk_jtype {
  JK_J_OBJECT = 1,
  JK_J_ARRAY = 2,
  JK_J_STRING = 3,
  JK_J_NUMBER = 4,
  JK_J_TRUE = 5,
  JK_J_FALSE = 6,
  JK_J_NULL = 7
} jk_jtype;

typedef struct jk_jnode {
  uint8_t type;
  uint8_t esc;   /* string contains escapes */
  uint16_t flags;
  uint32_t off;  /* string: first byte after the quote; others: first byte */
  uint32_t len;  /* string: raw content bytes; object/array: whole text */
  uint32_t end;  /* index of the first node after this subtree */
} jk_jnode;

#define JK_JSON_MAX_INPUT 0x7FFFFFFFu

typedef struct jk_jdoc {
  const char *src;
  size_t len;
  jk_jnode *nodes;
  uint32_t count;
} jk_jdoc;

/*
 * Parse src[0..len).  nodes has room for cap entries.  top_object: the value
 * must be an object.  On success doc is filled and JWTKIT_OK returned.  When
 * the document is valid but needs more than cap nodes: JWTKIT_ERR_TOO_LARGE
 * with *needed set (call again with a larger array).  Syntax errors:
 * JWTKIT_ERR_MALFORMED with a detail naming the byte offset.
 */
jwtkit_err jk_json_parse(jk_jdoc *doc, const char *src, size_t len, jk_jnode *nodes, uint32_t cap,
                         int top_object, uint32_t *needed, jwtkit_errinfo *info);

/* Parse into a heap node array (freed with jk_free(doc->nodes)). */
jwtkit_err jk_json_parse_alloc(jk_jdoc *doc, const char *src, size_t len, int top_object,
                               jwtkit_errinfo *info);

/* Member lookup in the object at index obj: index of the value or -1. */
int jk_json_get(const jk_jdoc *doc, uint32_t obj, const char *name, size_t name_len);

/* One pass over the members of object obj: idx[i] = value index of the
 * member named names[i] (n <= 16), or -1. */
void jk_json_get_many(const jk_jdoc *doc, uint32_t obj, const char *const *names, size_t n, int *idx);

/* Iterate: first child index of an object/array (or end when empty), next sibling. */
static inline uint32_t jk_json_first(const jk_jdoc *doc, uint32_t i) { (void)doc; return i + 1; }
static inline uint32_t jk_json_next(const jk_jdoc *doc, uint32_t i) { return doc->nodes[i].end; }

/* Unescape the string node i into out (capacity >= node len + 1).  Writes a
 * NUL, returns the length. */
size_t jk_json_unescape(const jk_jdoc *doc, uint32_t i, char *out);

/* Compare the string node i with bytes s[0..n) after unescaping. */
int jk_json_str_eq(const jk_jdoc *doc, uint32_t i, const char *s, size_t n);

/* Unescaped heap copy of the string node (NUL terminated), or NULL. */
char *jk_json_strdup(const jk_jdoc *doc, uint32_t i, size_t *len);

/* Integer value of a number node without fraction or exponent. 0 or -1. */
int jk_json_int(const jk_jdoc *doc, uint32_t i, int64_t *v);

/* Strict JSON validation without keeping the tree (a stack node array,
 * the heap for large documents). */
jwtkit_err jk_json_check(const char *json, size_t len, int top_object, jwtkit_errinfo *info);

/* NumericDate (RFC 7519 §2): any JSON number (fraction and exponent
 * allowed, evaluated exactly in decimal) with |value| < 1e15.
 * *floor_v = floor(value), *ceil_v = ceil(value).  0 or -1. */
int jk_json_seconds(const jk_jdoc *doc, uint32_t i, int64_t *floor_v, int64_t *ceil_v);


/* The writer: jk_buf and jk_buf_json_str (common/buf.h). */
#endif
