/*
 * services/serve/jwtkit_serve.h - entry point of `jwtkit serve`, the token
 * issuer (OAuth 2.0 client credentials grant, RFC 9068 access tokens, JWKS
 * and discovery documents, automatic key rotation).
 *
 * argv[0] is the command name ("serve"); the rest are its options, or
 * "client add NAME ..." to register a client.  Returns the exit status:
 * 0 clean shutdown, 2 usage or configuration error, 3 runtime error.
 * See docs/serve.md.
 */
#ifndef JWTKIT_SERVE_H
#define JWTKIT_SERVE_H

#ifdef __cplusplus
extern "C" {
#endif

int jwtkit_serve_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
