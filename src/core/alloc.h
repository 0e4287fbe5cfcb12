/* Internal allocation and safety helpers.  Every allocation goes through
 * jk_malloc/jk_realloc/jk_free so the allocator hook can fail any of them. */
#ifndef JK_ALLOC_H
#define JK_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

void *jk_malloc(size_t n);
void *jk_calloc(size_t n, size_t size);
void *jk_realloc(void *p, size_t n);
void jk_free(void *p);
char *jk_strndup(const char *s, size_t n);
char *jk_strdup(const char *s);

/* Wipe then free a buffer that held secret material. */
void jk_free_secret(void *p, size_t n);

/* Wipe (never optimised away) and constant-time compare, one place each;
 * implemented in src/crypto/mem.c over OPENSSL_cleanse and CRYPTO_memcmp
 * (only src/crypto includes OpenSSL). */
void jk_wipe(void *p, size_t n);
int jk_ct_equal(const void *a, const void *b, size_t n); /* 1 if equal */
#define JK_WIPE_OBJ(x) jk_wipe(&(x), sizeof(x))

/* Overflow-checked size arithmetic: returns 0 on overflow. */
static inline int jk_add_ok(size_t a, size_t b, size_t *r) {
  if (a > SIZE_MAX - b) return 0;
  *r = a + b;
  return 1;
}
static inline int jk_mul_ok(size_t a, size_t b, size_t *r) {
  if (b != 0 && a > SIZE_MAX / b) return 0;
  *r = a * b;
  return 1;
}

#endif
