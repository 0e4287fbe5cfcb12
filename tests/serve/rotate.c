/* serve_rotate: a stand-in for `jwtkit keyring` while the CLI command is
 * being written, acting on a keyring directory through the public API.
 *
 *   serve_rotate DIR rotate FORCE OFFSET   jwtkit_keyring_rotate(now + OFFSET, FORCE)
 *   serve_rotate DIR dump                  generation, then "kid alg state" per key
 *   serve_rotate DIR jwks                  the public JWK Set
 *   serve_rotate DIR retirement KID        planned retirement (Unix seconds) of KID
 *
 * A passphrase, if any, comes from $SERVE_PASSPHRASE.  Exit 0 on success. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jwtkit/jwtkit.h"

static void report(void *ctx, const char *line) {
  (void)ctx;
  printf("%s\n", line);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: serve_rotate DIR rotate FORCE OFFSET | dump | jwks | retirement KID\n");
    return 2;
  }
  jwtkit_keyring *kr = NULL;
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  if (jwtkit_keyring_open(&kr, argv[1], getenv("SERVE_PASSPHRASE"), &ei) != JWTKIT_OK) {
    fprintf(stderr, "open %s: %s\n", argv[1], ei.msg);
    return 1;
  }
  int rc = 0;
  if (strcmp(argv[2], "rotate") == 0 && argc == 5) {
    int64_t now = (int64_t)time(NULL) + atoll(argv[4]);
    if (jwtkit_keyring_rotate(kr, now, atoi(argv[3]), report, NULL, &ei) != JWTKIT_OK) {
      fprintf(stderr, "rotate: %s\n", ei.msg);
      rc = 1;
    }
  } else if (strcmp(argv[2], "dump") == 0) {
    printf("generation %llu\n", (unsigned long long)jwtkit_keyring_generation(kr));
    for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
      jwtkit_keyring_entry e;
      if (jwtkit_keyring_get(kr, i, &e) == JWTKIT_OK)
        printf("%s %s %s\n", e.kid, jwtkit_alg_name(e.alg), jwtkit_key_state_name(e.state));
    }
  } else if (strcmp(argv[2], "jwks") == 0) {
    char *j = NULL;
    if (jwtkit_keyring_jwks(kr, &j, NULL) != JWTKIT_OK) rc = 1;
    else printf("%s\n", j);
    jwtkit_free(j);
  } else if (strcmp(argv[2], "retirement") == 0 && argc == 4) {
    rc = 1;
    for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
      jwtkit_keyring_entry e;
      if (jwtkit_keyring_get(kr, i, &e) == JWTKIT_OK && strcmp(e.kid, argv[3]) == 0) {
        printf("%lld\n", (long long)e.planned_retirement);
        rc = 0;
      }
    }
  } else {
    fprintf(stderr, "unknown command\n");
    rc = 2;
  }
  jwtkit_keyring_free(kr);
  return rc;
}
