/*
 * services/gate/jwtkit_gate.h - entry point of `jwtkit gate`, the nginx
 * auth_request verifier (docs/gateway.md).
 *
 * jwtkit_gate_main() is what both the stand-alone jwtkit-gate executable
 * and the `jwtkit gate` subcommand call; argv[0] is the command name
 * ("gate" or the program path), options follow:
 *   --config FILE        (required) INI-like configuration
 *   --listen ADDR:PORT   default 127.0.0.1:8081 (overrides the config)
 *   --log-level LEVEL    debug|info|warn|error (overrides the config)
 *   --check              load the configuration and its keys, then exit
 *   --help
 * Returns the process exit status: 0 after a clean shutdown (SIGTERM or
 * SIGINT), 2 for usage and configuration errors, 3 for runtime failures.
 * The function blocks SIGTERM, SIGINT and SIGHUP in the calling thread and
 * waits for them itself (SIGHUP reloads the configuration).
 */
#ifndef JWTKIT_GATE_H
#define JWTKIT_GATE_H

#ifdef __cplusplus
extern "C" {
#endif

int jwtkit_gate_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
