/*
 * services/ui/jwtkit_ui.h - entry point of `jwtkit ui`, the local token
 * workbench: a single-page app on loopback whose every token and key
 * operation is done by libjwtkit (docs/ui.md).
 *
 * argv[0] is the command name ("ui"); the rest are its options.  Returns
 * the exit status: 0 after a clean shutdown (SIGINT, SIGTERM), 2 for usage
 * errors, 3 for runtime errors.
 */
#ifndef JWTKIT_UI_H
#define JWTKIT_UI_H

#ifdef __cplusplus
extern "C" {
#endif

int jwtkit_ui_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
