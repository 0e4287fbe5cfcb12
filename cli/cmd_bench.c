/* jwtkit bench: runs the benchmark program, jwtkit-bench, installed beside
 * jwtkit (or found in the build tree).  The benchmark links libjwt as a
 * peer, which the command itself must not depend on. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_bench_main(int argc, char **argv) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  char path[PATH_MAX + 32];
  argv[0] = (char *)"jwtkit-bench";
  if (n > 0) {
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash != NULL) {
      *slash = '\0';
      static const char *const rel[] = {"/jwtkit-bench", "/../bench/jwtkit-bench"};
      for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
        snprintf(path, sizeof path, "%s%s", self, rel[i]);
        if (access(path, X_OK) == 0) {
          execv(path, argv);
          break;
        }
      }
    }
  }
  execvp("jwtkit-bench", argv); /* from PATH */
  fprintf(stderr, "jwtkit: bench: cannot run jwtkit-bench: %s (build it with `make bench`)\n", strerror(errno));
  (void)argc;
  return CLI_INTERNAL;
}
