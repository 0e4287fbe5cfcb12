/*
 * cli/cli.h - internals of the `jwtkit` command.
 *
 * Every command is one row of the table in commands.c: its name, synopsis,
 * options with their help text, and the function that runs it.  Help output
 * (`jwtkit help CMD`, `jwtkit CMD --help`) is generated from that row, so
 * the two cannot drift.  Adding a command = one row + one cli_cmd_* function.
 *
 * Exit codes (see jwtkit(1)):
 *   0 ok, 1 verification failed / a check found a problem,
 *   2 usage error or unreadable input, 3 internal or I/O error.
 */
#ifndef JWTKIT_CLI_H
#define JWTKIT_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "jwtkit/jwtkit.h"

enum {
  CLI_OK = 0,
  CLI_FAIL = 1,
  CLI_USAGE = 2,
  CLI_INTERNAL = 3
};

/* Input limits (bytes). */
/* Bytes read for a token argument: the token's own limit (64 KiB) is the
 * library's, applied after surrounding whitespace is trimmed. */
#define CLI_MAX_TOKEN_INPUT (1024u * 1024u)
#define CLI_MAX_CLAIMS (64u * 1024u)
#define CLI_MAX_KEYFILE (1024u * 1024u)
#define CLI_MAX_JWKS (1024u * 1024u)
#define CLI_MAX_SECRET 4096u
#define CLI_MAX_PASSPHRASE 1024u
#define CLI_MAX_SCAN_FILE (8u * 1024u * 1024u)
#define CLI_MAX_GIT_OUTPUT (64u * 1024u * 1024u)

/* ------------------------------------------------------------- table */

enum {
  CLI_OPT_MULTI = 1u << 0 /* may be repeated */
};

typedef struct cli_opt {
  const char *name; /* long name without "--"; NULL ends the list */
  const char *arg;  /* metavariable, NULL for a flag */
  unsigned flags;
  const char *help; /* may contain '\n' for more lines */
} cli_opt;

/* A sub-operation of a command whose first argument names it (`keyring
 * revoke DIR KID`): the exact number of positional arguments it takes, its
 * own name included, and their names for messages. */
typedef struct cli_sub {
  const char *name; /* NULL ends the list */
  size_t npos;
  const char *args; /* e.g. "DIR KID"; "" for none */
} cli_sub;

typedef struct cli_args cli_args;
typedef struct cli_cmd cli_cmd;
typedef int (*cli_run_fn)(cli_args *a);
/* Commands that parse their own arguments (the services): argv[0] is the
 * command name. */
typedef int (*cli_raw_fn)(int argc, char **argv);

struct cli_cmd {
  const char *name;
  cli_run_fn run;
  const char *synopsis;    /* after "jwtkit NAME " */
  size_t min_pos, max_pos; /* positional arguments accepted */
  const char *summary;     /* one line for the overview */
  const char *description; /* paragraphs printed after the options */
  const cli_opt *opts;     /* terminated by a row with name NULL */
  cli_raw_fn raw;          /* set: run gets no parsed options; raw(argc, argv) runs */
  const cli_sub *subs;     /* NULL, or the sub-operations named by the first argument */
};

/* The table (commands.c).  Ends with a row whose name is NULL. */
extern const cli_cmd cli_commands[];

const cli_cmd *cli_find_command(const char *name);
/* The sub-operation `name` of c, or NULL (also when c has none). */
const cli_sub *cli_find_sub(const cli_cmd *c, const char *name);
/* Help of one command on f (the same text for `help CMD` and `CMD --help`). */
void cli_print_command_help(FILE *f, const cli_cmd *c);
/* The overview: usage, commands, exit status. */
void cli_print_overview(FILE *f);

/* ----------------------------------------------------- parsed options */

struct cli_args {
  const cli_cmd *cmd;
  char **pos; /* positional arguments (point into argv) */
  size_t npos;
  struct cli_optval {
    const char **v; /* values (point into argv); flags store "" */
    size_t n;
  } *vals;        /* parallel to cmd->opts */
  int stdin_used; /* stdin can be read once: second use is an error */
};

/* Parse argv (after the command name).  Returns CLI_OK, or CLI_USAGE with a
 * message printed.  *help is set when --help/-h was given.
 *
 * Options are long (--name, --name=value, --name value) plus -h; "--" ends
 * them.  A word that begins with "--" is always an option.  A word that
 * begins with a single '-' (not "-" itself, not "-h") is an argument when
 * it fills a slot the command requires -- one of the first min_pos
 * arguments, or of a sub-operation's npos, the operation's name excepted --
 * such as the KID of `keyring revoke DIR KID`; anywhere else it is an
 * unknown option and the message says to put "--" before it. */
int cli_args_parse(cli_args *a, const cli_cmd *cmd, int argc, char **argv, int *help);
void cli_args_free(cli_args *a);

/* Value of a single-valued option or NULL.  `name` must be declared in the
 * command's row (an undeclared name is a programming error: abort). */
const char *cli_opt_str(const cli_args *a, const char *name);
/* All values of a repeatable option. */
const char *const *cli_opt_all(const cli_args *a, const char *name, size_t *n);
int cli_opt_flag(const cli_args *a, const char *name);

/* --------------------------------------------------------- messages */

/* "jwtkit: CMD: message\n" on stderr; returns code. */
int cli_fail(const cli_args *a, int code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Same, for usage errors: adds "Try 'jwtkit help CMD'." */
int cli_usage(const cli_args *a, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* "strerror: detail" for a library failure (detail omitted when empty or the
 * same as the strerror text). */
const char *cli_errtext(jwtkit_err rc, const jwtkit_errinfo *info, char *buf, size_t cap);
/* Exit code for a library failure while loading input: 3 for out of memory,
 * crypto and I/O failures, else 2. */
int cli_exit_for(jwtkit_err rc);
/* Verbose note on stderr ("jwtkit: CMD: note: ...") when --verbose is set. */
void cli_note(const cli_args *a, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* -------------------------------------------------------------- input */

/* A buffer read from a file or stdin.  Always NUL-terminated (len excludes
 * the NUL).  `secret` buffers are wiped when freed. */
typedef struct cli_buf {
  char *p;
  size_t len;
  int secret;
  int has_mode;  /* read from a file: mode holds its permission bits, from the opened descriptor */
  unsigned mode;
} cli_buf;

void cli_buf_free(cli_buf *b);

/* Read all of `path` ("-" = stdin) up to `limit` bytes.  On failure prints
 * "jwtkit: CMD: WHAT PATH: reason" and returns CLI_USAGE (unreadable or over
 * the limit) or CLI_INTERNAL. */
int cli_read_file(cli_args *a, const char *what, const char *path, size_t limit, int secret,
                  cli_buf *out);
/* The secret-file rule (jwtkit_check_secret_mode) on a buffer read from a
 * file: group or others may have no access.  CLI_OK for stdin. */
int cli_check_secret_mode(const cli_args *a, const char *path, const cli_buf *b);
/* Read a data argument: "-" = stdin, "@FILE" = file, else the text itself. */
int cli_read_arg(cli_args *a, const char *what, const char *arg, size_t limit, cli_buf *out);
/* Trim ASCII whitespace at both ends in place. */
void cli_buf_trim(cli_buf *b);

/* Secret from --secret-file / --secret-env (exactly one may be given).
 * Returns CLI_OK with *have = 0 when neither option is set. */
int cli_read_secret(cli_args *a, cli_buf *out, int *have);
/* The HMAC key for alg from a secret read by cli_read_secret, by the
 * library's secret rule (jwtkit_key_from_secret_text), and the file mode
 * rule for --secret-file.  Prints the error. */
int cli_secret_key(cli_args *a, const cli_buf *secret, jwtkit_alg alg, jwtkit_key **key);
/* Passphrase from --passphrase-file (first line) / --passphrase-env.
 * out->p stays NULL when neither is given. */
int cli_read_passphrase(cli_args *a, cli_buf *out);
/* Key-encryption keys of a PostgreSQL keyring from --kek-file / --kek-env,
 * else the environment variable JWTKIT_KEK; *n = 0 when none is given.
 * Free with jwtkit_kek_free. */
int cli_read_keks(cli_args *a, unsigned char (**keks)[32], size_t *n);

/* ------------------------------------------------------------- output */

/* Write a file atomically: temp file in the same directory (O_CREAT|O_EXCL,
 * 0600), fsync, then link (no overwrite) or rename (force), fsync of the
 * directory.  mode is applied before the file appears.  Returns CLI_OK,
 * CLI_USAGE when the file exists and !force, CLI_INTERNAL on I/O errors
 * (messages printed). */
int cli_write_atomic(const cli_args *a, const char *path, const void *data, size_t len,
                     unsigned mode, int force);
/* Write to stdout; CLI_INTERNAL on error. */
int cli_write_stdout(const cli_args *a, const void *data, size_t len);

/* ---------------------------------------------------------- time */

/* The option's value as a duration (common/parse.h: the same grammar as
 * the services) of at least `min` seconds; CLI_OK when absent (*out kept)
 * or valid, else CLI_USAGE with the grammar in the message. */
int cli_opt_duration(const cli_args *a, const char *name, int64_t min, int64_t *out);
/* The option's value as a time (Unix seconds or RFC 3339). */
int cli_opt_time(const cli_args *a, const char *name, int64_t *out);

/* ----------------------------------------------------------- algorithms */

/* Parse every --alg value (repeatable, comma separated) into a set.
 * Returns CLI_OK or CLI_USAGE (message printed). */
typedef struct cli_algset {
  jwtkit_alg v[JWTKIT_ALG_COUNT];
  size_t n;
} cli_algset;
int cli_algset_parse(const cli_args *a, const char *opt, cli_algset *set);
int cli_algset_has(const cli_algset *set, jwtkit_alg alg);
/* The algorithms of one family in the set; returns how many (first in *one). */
size_t cli_algset_family(const cli_algset *set, jwtkit_kty kty, jwtkit_alg *one);
/* One algorithm name; CLI_USAGE if unknown ("none" included). */
int cli_alg_parse(const cli_args *a, const char *name, jwtkit_alg *out);

/* ----------------------------------------------------------- keys */

typedef enum cli_keyfmt {
  CLI_KEYFMT_UNKNOWN = 0,
  CLI_KEYFMT_PEM,
  CLI_KEYFMT_DER,
  CLI_KEYFMT_JWK,
  CLI_KEYFMT_JWKS
} cli_keyfmt;

/* Sniff the content of a key file. */
cli_keyfmt cli_key_format(const char *p, size_t len);

/*
 * Import one key (PEM, DER or JWK text) from `src` (a name for messages).
 * Binding: the key's own algorithm (JWK "alg", EC curve, OKP) when it has
 * one; with `strict` it must then be in `allowed` (when allowed->n > 0).
 * Keys that need an explicit algorithm (RSA, oct without "alg", DER RSA)
 * take the single algorithm of `allowed` they import with; none or several
 * is a usage error.  Returns CLI_OK or an exit code with the message printed.
 */
int cli_key_import(const cli_args *a, const char *src, const char *text, size_t len,
                   const char *passphrase, const cli_algset *allowed, int strict, jwtkit_key **out);
/* Read FILE ("-" = stdin) and import as above (a JWK Set is refused).  A
 * "pkcs11:" URI (RFC 7512) instead of FILE loads the public half of that
 * token key (cli_key_load_pkcs11 with sign = 0). */
int cli_key_load(cli_args *a, const char *path, const char *passphrase,
                 const cli_algset *allowed, int strict, jwtkit_key **out);
/* A key in a PKCS#11 token: the signing key (sign = 1) or its public half.
 * Bound like cli_key_import: the curve's algorithm, or the one RS* or PS*
 * algorithm of `allowed` for RSA.  Messages name the URI without its
 * query.  Returns CLI_OK or an exit code with the message printed. */
int cli_key_load_pkcs11(const cli_args *a, const char *uri, const cli_algset *allowed, int strict, int sign,
                        jwtkit_key **out);
/* The URI up to '?' (for messages), in buf. */
const char *cli_uri_shown(const char *uri, char *buf, size_t cap);

/* --------------------------------------------------------------- JSON */

/* Strict validation through the library (public API only). */
jwtkit_err cli_json_check_object(const char *json, size_t len);
jwtkit_err cli_json_check_value(const char *json, size_t len);
/* Top-level member of an already validated object: value text span.
 * Returns 1 when found. */
int cli_json_member(const char *json, size_t len, const char *name, const char **val,
                    size_t *vlen);
/* A NumericDate member (any JSON number, as the verifier reads it),
 * rounded down to whole seconds.  Returns 1 when found and valid. */
int cli_json_seconds(const char *json, size_t len, const char *name, int64_t *out);
/* Indented printing of already validated JSON text. */
void cli_json_pretty(FILE *f, const char *json, size_t len, int indent);

/* --------------------------------------------------------------- git */

typedef enum cli_git_state {
  CLI_GIT_MISSING = 0, /* git is not installed */
  CLI_GIT_OUTSIDE,     /* not inside a work tree */
  CLI_GIT_INSIDE
} cli_git_state;

/* Whether directory `dir` is inside a git work tree. */
cli_git_state cli_git_worktree(const char *dir);
/*
 * The private-key guard: writing secret material to `path` is allowed when
 * git is not installed, the directory is not in a work tree, git ignores the
 * path, or `force` is set.  Returns CLI_OK or CLI_USAGE (message printed).
 * Reusable by every command that writes private keys.
 */
int cli_git_guard_private(const cli_args *a, const char *path, int force);
/* Run a command (no shell) and capture stdout (at most `limit` bytes).
 * stdin and stderr go to /dev/null.  Returns the exit status, 127 when the
 * program cannot be run, -1 on other failures. */
int cli_run_capture(const char *const argv[], size_t limit, cli_buf *out);

/* A child process fed `in` on its stdin (by a writer process of its own,
 * so that neither pipe can block the other) whose stdout the caller reads
 * from `fd`; stderr goes to /dev/null.  cli_proc_start returns 0 or -1;
 * cli_proc_finish closes fd, stops the children when `stop` is set (then
 * returns -1), waits for them and returns the program's exit status (127:
 * it could not be run; -1: killed or not waited for). */
typedef struct cli_proc {
  pid_t pid, writer;
  int fd;
} cli_proc;
int cli_proc_start(cli_proc *p, const char *const argv[], const void *in, size_t in_len);
int cli_proc_finish(cli_proc *p, int stop);

/* ---------------------------------------------------------- commands */

int cli_cmd_keygen(cli_args *a);
int cli_cmd_sign(cli_args *a);
int cli_cmd_verify(cli_args *a);
int cli_cmd_decode(cli_args *a);
int cli_cmd_jwk(cli_args *a);
int cli_cmd_jwks(cli_args *a);
int cli_cmd_thumbprint(cli_args *a);
int cli_cmd_scan(cli_args *a);
int cli_cmd_pem(cli_args *a);
int cli_cmd_keyring(cli_args *a);
int cli_bench_main(int argc, char **argv);
int cli_cmd_help(cli_args *a);
int cli_cmd_unavailable(cli_args *a);

#endif
