/* The gate's C unit tests: CHECK counts and reports, and works under NDEBUG
 * (main prints the totals and fails when any check failed). */
#ifndef JWTKIT_GATE_TEST_CHECK_H
#define JWTKIT_GATE_TEST_CHECK_H

#include <stdio.h>

static int fails, checks;
#define CHECK(c)                                                           \
  do {                                                                     \
    checks++;                                                              \
    if (!(c)) {                                                            \
      fails++;                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
    }                                                                      \
  } while (0)

#endif
