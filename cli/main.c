/* jwtkit: entry point, option parser, help output and messages. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "common/parse.h"

#define PROG "jwtkit"

/* ------------------------------------------------------------ messages */

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 0)))
#endif
static void vmsg(const cli_args *a, const char *prefix, const char *fmt, va_list ap) {
  fprintf(stderr, PROG ": ");
  if (a != NULL && a->cmd != NULL) fprintf(stderr, "%s: ", a->cmd->name);
  if (prefix != NULL) fputs(prefix, stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

int cli_fail(const cli_args *a, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg(a, NULL, fmt, ap);
  va_end(ap);
  return code;
}

int cli_usage(const cli_args *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg(a, NULL, fmt, ap);
  va_end(ap);
  if (a != NULL && a->cmd != NULL)
    fprintf(stderr, "Try '" PROG " help %s'.\n", a->cmd->name);
  else
    fprintf(stderr, "Try '" PROG " help'.\n");
  return CLI_USAGE;
}

void cli_note(const cli_args *a, const char *fmt, ...) {
  if (!cli_opt_flag(a, "verbose")) return;
  va_list ap;
  va_start(ap, fmt);
  vmsg(a, "note: ", fmt, ap);
  va_end(ap);
}

const char *cli_errtext(jwtkit_err rc, const jwtkit_errinfo *info, char *buf, size_t cap) {
  const char *base = jwtkit_strerror(rc);
  if (info == NULL || info->msg[0] == '\0' || strcmp(info->msg, base) == 0)
    snprintf(buf, cap, "%s", base);
  else
    snprintf(buf, cap, "%s: %s", base, info->msg);
  return buf;
}

int cli_opt_duration(const cli_args *a, const char *name, int64_t min, int64_t *out) {
  const char *s = cli_opt_str(a, name);
  int64_t v;
  if (s == NULL) return CLI_OK;
  if (jk_parse_duration(s, &v) != 0 || v < min)
    return cli_usage(a, "bad --%s \"%s\": %s%s", name, s, JK_DURATION_HELP, min > 0 ? ", more than 0" : "");
  *out = v;
  return CLI_OK;
}

int cli_opt_time(const cli_args *a, const char *name, int64_t *out) {
  const char *s = cli_opt_str(a, name);
  if (s != NULL && jk_parse_time(s, out) != 0) return cli_usage(a, "bad --%s \"%s\": %s", name, s, JK_TIME_HELP);
  return CLI_OK;
}

int cli_exit_for(jwtkit_err rc) {
  switch (rc) {
    case JWTKIT_ERR_NOMEM:
    case JWTKIT_ERR_CRYPTO:
    case JWTKIT_ERR_IO:
      return CLI_INTERNAL;
    default:
      return CLI_USAGE;
  }
}

/* ------------------------------------------------------------- table */

const cli_cmd *cli_find_command(const char *name) {
  for (const cli_cmd *c = cli_commands; c->name != NULL; c++)
    if (strcmp(c->name, name) == 0) return c;
  return NULL;
}

const cli_sub *cli_find_sub(const cli_cmd *c, const char *name) {
  if (c->subs == NULL) return NULL;
  for (const cli_sub *s = c->subs; s->name != NULL; s++)
    if (strcmp(s->name, name) == 0) return s;
  return NULL;
}

static void print_lines(FILE *f, const char *text, int indent) {
  /* first line already positioned; continuation lines indented */
  for (const char *p = text; *p != '\0'; p++) {
    fputc(*p, f);
    if (*p == '\n' && p[1] != '\0') fprintf(f, "%*s", indent, "");
  }
}

void cli_print_command_help(FILE *f, const cli_cmd *c) {
  enum { COL = 28 };
  int ind = fprintf(f, "Usage: " PROG " %s ", c->name);
  print_lines(f, c->synopsis, ind);
  fputs("\n\n", f);
  fprintf(f, "%c%s.\n", c->summary[0] >= 'a' && c->summary[0] <= 'z' ? c->summary[0] - 'a' + 'A' : c->summary[0],
          c->summary + 1);
  fprintf(f, "\nOptions:\n");
  for (const cli_opt *o = c->opts; o->name != NULL; o++) {
    int n = fprintf(f, "  --%s", o->name);
    if (o->arg != NULL) n += fprintf(f, " %s", o->arg);
    if (n >= COL - 1) {
      fputc('\n', f);
      n = 0;
    }
    fprintf(f, "%*s", COL - n, "");
    print_lines(f, o->help, COL);
    if (o->flags & CLI_OPT_MULTI && strstr(o->help, "repeat") == NULL) fputs(" (repeatable)", f);
    fputc('\n', f);
  }
  int n = fprintf(f, "  -h, --help");
  fprintf(f, "%*sshow this help\n", COL - n, "");
  if (c->description != NULL) fprintf(f, "\n%s\n", c->description);
}

void cli_print_overview(FILE *f) {
  fprintf(f,
          "Usage: " PROG " <command> [options] [ARG|-]\n"
          "       " PROG " help [COMMAND]  |  " PROG " COMMAND --help  |  " PROG " --version\n"
          "\nCommands:\n");
  for (const cli_cmd *c = cli_commands; c->name != NULL; c++) fprintf(f, "  %-12s%s\n", c->name, c->summary);
  fprintf(f,
          "\n'-' stands for stdin (stdout for --out).  Data goes to stdout, diagnostics\n"
          "to stderr.  Secrets are read from files or environment variables only.\n"
          "\nExit status:\n"
          "  0  success\n"
          "  1  verification failed, or a check found a problem\n"
          "  2  usage error, or unreadable input\n"
          "  3  internal or I/O error\n");
}

/* ----------------------------------------------------- option parser */

static size_t opt_count(const cli_cmd *c) {
  size_t n = 0;
  while (c->opts[n].name != NULL) n++;
  return n;
}

static long opt_index(const cli_cmd *c, const char *name, size_t len) {
  for (size_t i = 0; c->opts[i].name != NULL; i++)
    if (strlen(c->opts[i].name) == len && strncmp(c->opts[i].name, name, len) == 0) return (long)i;
  return -1;
}

void cli_args_free(cli_args *a) {
  if (a->vals != NULL) {
    size_t n = opt_count(a->cmd);
    for (size_t i = 0; i < n; i++) free(a->vals[i].v);
  }
  free(a->vals);
  free(a->pos);
  a->vals = NULL;
  a->pos = NULL;
}

/* A word that begins with '-' is an argument only where cli_args_parse
 * can tell it is one (cli.h); elsewhere this message says how to pass it. */
static int unknown_option(const cli_args *a, const char *shown, int len) {
  return cli_usage(a, "unknown option %.*s; if this is a kid or a file name, put -- before it", len, shown);
}

int cli_args_parse(cli_args *a, const cli_cmd *cmd, int argc, char **argv, int *help) {
  memset(a, 0, sizeof *a);
  a->cmd = cmd;
  *help = 0;
  size_t nopt = opt_count(cmd);
  a->vals = calloc(nopt + 1, sizeof *a->vals);
  a->pos = calloc((size_t)argc + 1, sizeof *a->pos);
  if (a->vals == NULL || a->pos == NULL) return cli_fail(a, CLI_INTERNAL, "out of memory");
  int options = 1;
  size_t literal = (size_t)argc; /* arguments from this index on came after "--" */
  for (int i = 0; i < argc; i++) {
    char *s = argv[i];
    if (options && strcmp(s, "--") == 0) {
      options = 0;
      literal = a->npos;
      continue;
    }
    if (options && (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0)) {
      *help = 1;
      return CLI_OK;
    }
    if (options && s[0] == '-' && s[1] == '-') {
      const char *name = s + 2;
      const char *eq = strchr(name, '=');
      size_t nl = eq ? (size_t)(eq - name) : strlen(name);
      long k = opt_index(cmd, name, nl);
      if (k < 0) return unknown_option(a, s, (int)(nl + 2));
      const cli_opt *o = &cmd->opts[k];
      const char *val;
      if (o->arg == NULL) {
        if (eq != NULL) return cli_usage(a, "option --%s takes no value", o->name);
        val = "";
      } else if (eq != NULL) {
        val = eq + 1;
      } else {
        if (i + 1 >= argc) return cli_usage(a, "option --%s needs a value (%s)", o->name, o->arg);
        val = argv[++i];
      }
      struct cli_optval *ov = &a->vals[k];
      if (ov->n > 0 && !(o->flags & CLI_OPT_MULTI)) return cli_usage(a, "option --%s given twice", o->name);
      if (ov->v == NULL && (ov->v = calloc((size_t)argc, sizeof *ov->v)) == NULL)
        return cli_fail(a, CLI_INTERNAL, "out of memory");
      ov->v[ov->n++] = val;
      continue;
    }
    a->pos[a->npos++] = s; /* a word with one '-' is settled below */
  }
  /* Single-dash words before "--": arguments where the command requires
   * one (its first min_pos, or the npos of the sub-operation named by the
   * first argument, which itself never begins with '-'). */
  const cli_sub *sub = a->npos > 0 ? cli_find_sub(cmd, a->pos[0]) : NULL;
  size_t required = sub != NULL ? sub->npos : cmd->min_pos;
  for (size_t j = 0; j < a->npos && j < literal; j++) {
    const char *s = a->pos[j];
    if (s[0] != '-' || s[1] == '\0') continue;
    if (j >= required || (j == 0 && cmd->subs != NULL)) return unknown_option(a, s, (int)strlen(s));
  }
  if (a->npos < cmd->min_pos) return cli_usage(a, "missing argument (%s)", cmd->synopsis);
  if (a->npos > cmd->max_pos) return cli_usage(a, "unexpected argument '%s'", a->pos[cmd->max_pos]);
  return CLI_OK;
}

static long opt_lookup(const cli_args *a, const char *name) {
  long k = opt_index(a->cmd, name, strlen(name));
  if (k < 0) {
    fprintf(stderr, PROG ": internal error: option --%s is not declared for %s\n", name, a->cmd->name);
    abort();
  }
  return k;
}

const char *cli_opt_str(const cli_args *a, const char *name) {
  const struct cli_optval *ov = &a->vals[opt_lookup(a, name)];
  return ov->n ? ov->v[ov->n - 1] : NULL;
}

const char *const *cli_opt_all(const cli_args *a, const char *name, size_t *n) {
  const struct cli_optval *ov = &a->vals[opt_lookup(a, name)];
  *n = ov->n;
  return ov->v;
}

int cli_opt_flag(const cli_args *a, const char *name) { return a->vals[opt_lookup(a, name)].n > 0; }

/* ------------------------------------------------------- algorithms */

int cli_alg_parse(const cli_args *a, const char *name, jwtkit_alg *out) {
  *out = jwtkit_alg_from_name(name, strlen(name));
  if (*out != JWTKIT_ALG_UNSPEC) return CLI_OK;
  if (strcasecmp(name, "none") == 0) return cli_usage(a, "algorithm \"none\" is never accepted");
  return cli_usage(a,
                   "unknown algorithm \"%s\" (HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 "
                   "ES256 ES384 ES512 EdDSA)",
                   name);
}

int cli_algset_has(const cli_algset *set, jwtkit_alg alg) {
  for (size_t i = 0; i < set->n; i++)
    if (set->v[i] == alg) return 1;
  return 0;
}

size_t cli_algset_family(const cli_algset *set, jwtkit_kty kty, jwtkit_alg *one) {
  size_t n = 0;
  for (size_t i = 0; i < set->n; i++)
    if (jwtkit_alg_kty(set->v[i]) == kty && n++ == 0 && one != NULL) *one = set->v[i];
  return n;
}

int cli_algset_parse(const cli_args *a, const char *opt, cli_algset *set) {
  set->n = 0;
  size_t n;
  const char *const *v = cli_opt_all(a, opt, &n);
  for (size_t i = 0; i < n; i++) {
    const char *s = v[i];
    for (;;) {
      const char *comma = strchr(s, ',');
      size_t len = comma ? (size_t)(comma - s) : strlen(s);
      char name[32];
      if (len == 0 || len >= sizeof name) return cli_usage(a, "bad --%s value \"%s\"", opt, v[i]);
      memcpy(name, s, len);
      name[len] = '\0';
      jwtkit_alg alg;
      int rc = cli_alg_parse(a, name, &alg);
      if (rc != CLI_OK) return rc;
      if (!cli_algset_has(set, alg)) set->v[set->n++] = alg;
      if (comma == NULL) break;
      s = comma + 1;
    }
  }
  return CLI_OK;
}

/* --------------------------------------------------- help, stubs */

int cli_cmd_help(cli_args *a) {
  if (a->npos == 0) {
    cli_print_overview(stdout);
    return CLI_OK;
  }
  const cli_cmd *c = cli_find_command(a->pos[0]);
  if (c == NULL) return cli_usage(a, "unknown command '%s'", a->pos[0]);
  cli_print_command_help(stdout, c);
  return CLI_OK;
}

int cli_cmd_unavailable(cli_args *a) { return cli_fail(a, CLI_INTERNAL, "not yet available"); }

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
  if (argc < 2) {
    cli_print_overview(stderr);
    return CLI_USAGE;
  }
  const char *name = argv[1];
  if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
    printf(PROG " %s (libjwtkit %s)\n", JWTKIT_VERSION, jwtkit_version());
    if (fflush(stdout) == 0 && !ferror(stdout)) return CLI_OK;
    fprintf(stderr, PROG ": write error on stdout\n");
    return CLI_INTERNAL;
  }
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) name = "help";
  const cli_cmd *cmd = cli_find_command(name);
  if (cmd == NULL) {
    fprintf(stderr, PROG ": unknown command '%s'\nTry '" PROG " help'.\n", name);
    return CLI_USAGE;
  }
  if (cmd->raw != NULL) return cmd->raw(argc - 1, argv + 1);
  cli_args a;
  int help = 0;
  int rc = cli_args_parse(&a, cmd, argc - 2, argv + 2, &help);
  if (rc == CLI_OK) {
    if (help)
      cli_print_command_help(stdout, cmd);
    else
      rc = cmd->run(&a);
  }
  cli_args_free(&a);
  if ((fflush(stdout) != 0 || ferror(stdout)) && rc != CLI_INTERNAL) { /* 3: already reported */
    fprintf(stderr, PROG ": %s: write error on stdout\n", cmd->name);
    if (rc == CLI_OK || rc == CLI_FAIL) rc = CLI_INTERNAL; /* the result was not delivered */
  }
  return rc;
}
