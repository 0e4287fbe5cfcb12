/* jwtkit-gate: the stand-alone executable of `jwtkit gate`. */
#include "jwtkit_gate.h"

int main(int argc, char **argv) { return jwtkit_gate_main(argc, argv); }
