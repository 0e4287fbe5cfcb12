/* The configuration dialect of jwtkit serve, jwtkit gate and the serve
 * clients file, parsed in one place:
 *
 *   # a comment line (also ';'); blank lines are ignored
 *   [section]            or  [section NAME]
 *   key = value          spaces around '=' and at both ends are dropped
 *   key = value  # note  '#' after a space or tab starts a comment
 *
 * A value that must hold " #" is written in double quotes ("a # b"); the
 * quotes are removed ("\"" and "\\" inside them stand for " and \).  Lines
 * are at most JK_INI_MAX_LINE bytes; every error is "FILE:LINE: reason". */
#ifndef JK_INI_H
#define JK_INI_H

#include <stddef.h>

#define JK_INI_MAX_LINE 4096u

typedef struct jk_ini_item {
  const char *path;
  int line;
  const char *section; /* the section word ("route"), "" before any section */
  const char *name;    /* the section's NAME, NULL when it has none */
  const char *key;     /* NULL for a section header */
  const char *value;
} jk_ini_item;

/* fn is called for each section header and each key = value, in order;
 * it returns 0, or -1 with err filled (the parser adds FILE:LINE). */
typedef int (*jk_ini_fn)(void *ctx, const jk_ini_item *it, char *err, size_t cap);

/* 0, or -1 with err = "PATH:LINE: reason". */
int jk_ini_parse(const char *path, const char *text, size_t len, jk_ini_fn fn, void *ctx, char *err, size_t cap);

/* Append v as the value of a `key = ` line that jk_ini_parse reads back
 * as v: as it is when it can be, else in double quotes (a value with " #",
 * a leading '#' or '"', blanks at either end).  -1 (nothing appended) when
 * v holds a newline, which no line can carry. */
typedef struct jk_buf jk_buf;
int jk_ini_put_value(jk_buf *b, const char *v);

#endif
