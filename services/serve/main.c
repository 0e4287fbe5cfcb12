/* jwtkit-serve: the issuer as a standalone program (until `jwtkit serve`
 * is wired to the same entry point). */
#include "jwtkit_serve.h"

int main(int argc, char **argv) {
  static char name[] = "serve";
  if (argc > 0) argv[0] = name;
  return jwtkit_serve_main(argc, argv);
}
