#include "alloc.h"

#include <stdlib.h>

#include "jwtkit/key.h"

static void *(*g_malloc)(size_t) = malloc;
static void *(*g_realloc)(void *, size_t) = realloc;
static void (*g_free)(void *) = free;

void jwtkit_set_allocator(const jwtkit_allocator *a) {
  if (a == NULL || a->malloc_fn == NULL || a->realloc_fn == NULL || a->free_fn == NULL) {
    g_malloc = malloc;
    g_realloc = realloc;
    g_free = free;
    return;
  }
  g_malloc = a->malloc_fn;
  g_realloc = a->realloc_fn;
  g_free = a->free_fn;
}

void *jk_malloc(size_t n) { return g_malloc(n == 0 ? 1 : n); }

void *jk_calloc(size_t n, size_t size) {
  size_t total;
  if (!jk_mul_ok(n, size, &total)) return NULL;
  void *p = jk_malloc(total);
  if (p != NULL) memset(p, 0, total);
  return p;
}

void *jk_realloc(void *p, size_t n) { return g_realloc(p, n == 0 ? 1 : n); }

void jk_free(void *p) {
  if (p != NULL) g_free(p);
}

void jwtkit_free(void *p) { jk_free(p); }

char *jk_strndup(const char *s, size_t n) {
  size_t sz;
  if (!jk_add_ok(n, 1, &sz)) return NULL;
  char *d = jk_malloc(sz);
  if (d == NULL) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *jk_strdup(const char *s) { return jk_strndup(s, strlen(s)); }

void jk_free_secret(void *p, size_t n) {
  if (p == NULL) return;
  jk_wipe(p, n);
  jk_free(p);
}

