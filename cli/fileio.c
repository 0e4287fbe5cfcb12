/* Bounded reads of files, stdin, secrets and passphrases; atomic writes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common/file.h"

void cli_buf_free(cli_buf *b) {
  if (b->p != NULL && b->secret) jwtkit_wipe(b->p, b->len);
  free(b->p);
  b->p = NULL;
  b->len = 0;
}

static const char *size_text(size_t n, char *buf, size_t cap) {
  if (n >= (1u << 20) && n % (1u << 20) == 0)
    snprintf(buf, cap, "%zu MiB", n >> 20);
  else if (n >= 1024 && n % 1024 == 0)
    snprintf(buf, cap, "%zu KiB", n >> 10);
  else
    snprintf(buf, cap, "%zu bytes", n);
  return buf;
}

/* Grow b to at least `need` bytes of capacity, wiping the old block of a
 * secret buffer (no realloc: it could leave a copy behind). */
static int grow(cli_buf *b, size_t *cap, size_t need) {
  size_t nc = *cap ? *cap : 4096;
  while (nc < need) nc *= 2;
  char *np = malloc(nc);
  if (np == NULL) return -1;
  if (b->p != NULL) {
    memcpy(np, b->p, b->len);
    if (b->secret) jwtkit_wipe(b->p, *cap);
    free(b->p);
  }
  b->p = np;
  *cap = nc;
  return 0;
}

int cli_read_file(cli_args *a, const char *what, const char *path, size_t limit, int secret, cli_buf *out) {
  memset(out, 0, sizeof *out);
  out->secret = secret;
  int is_stdin = strcmp(path, "-") == 0;
  const char *name = is_stdin ? "stdin" : path;
  char sz[32];
  if (is_stdin) {
    if (a->stdin_used) return cli_usage(a, "stdin (-) can only be read once (%s)", what);
    a->stdin_used = 1;
  }
  int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return cli_fail(a, CLI_USAGE, "cannot read %s %s: %s", what, name, strerror(errno));
  struct stat st;
  int have_st = fstat(fd, &st) == 0;
  if (have_st && S_ISDIR(st.st_mode)) {
    if (!is_stdin) close(fd);
    return cli_fail(a, CLI_USAGE, "cannot read %s %s: is a directory", what, name);
  }
  if (!is_stdin && have_st && S_ISREG(st.st_mode)) {
    out->has_mode = 1;
    out->mode = (unsigned)(st.st_mode & 07777);
  }
  size_t cap = 0;
  int rc = CLI_OK;
  for (;;) {
    if (out->len + 1 >= cap) {
      size_t need = out->len + 4096 > limit + 2 ? limit + 2 : out->len + 4096;
      if (need <= out->len + 1) need = out->len + 2;
      if (grow(out, &cap, need) != 0) {
        rc = cli_fail(a, CLI_INTERNAL, "out of memory reading %s %s", what, name);
        break;
      }
    }
    ssize_t r = read(fd, out->p + out->len, cap - 1 - out->len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rc = cli_fail(a, CLI_USAGE, "cannot read %s %s: %s", what, name, strerror(errno));
      break;
    }
    if (r == 0) break;
    out->len += (size_t)r;
    if (out->len > limit) {
      rc = cli_fail(a, CLI_USAGE, "%s %s exceeds the limit of %s", what, name, size_text(limit, sz, sizeof sz));
      break;
    }
  }
  if (!is_stdin) close(fd);
  if (rc != CLI_OK) {
    cli_buf_free(out);
    return rc;
  }
  if (out->p == NULL && grow(out, &cap, 1) != 0) return cli_fail(a, CLI_INTERNAL, "out of memory");
  out->p[out->len] = '\0';
  return CLI_OK;
}

int cli_check_secret_mode(const cli_args *a, const char *path, const cli_buf *b) {
  if (!b->has_mode) return CLI_OK;
  jwtkit_errinfo info = {0};
  jwtkit_err e = jwtkit_check_secret_mode(path, b->mode, &info);
  return e == JWTKIT_OK ? CLI_OK : cli_fail(a, CLI_USAGE, "%s", info.msg);
}

int cli_read_arg(cli_args *a, const char *what, const char *arg, size_t limit, cli_buf *out) {
  if (strcmp(arg, "-") == 0) return cli_read_file(a, what, "-", limit, 0, out);
  if (arg[0] == '@') return cli_read_file(a, what, arg + 1, limit, 0, out);
  memset(out, 0, sizeof *out);
  size_t n = strlen(arg);
  char sz[32];
  if (n > limit) return cli_usage(a, "%s exceeds the limit of %s", what, size_text(limit, sz, sizeof sz));
  if ((out->p = malloc(n + 1)) == NULL) return cli_fail(a, CLI_INTERNAL, "out of memory");
  memcpy(out->p, arg, n + 1);
  out->len = n;
  return CLI_OK;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

void cli_buf_trim(cli_buf *b) {
  size_t s = 0, e = b->len;
  while (s < e && is_ws(b->p[s])) s++;
  while (e > s && is_ws(b->p[e - 1])) e--;
  if (s > 0) memmove(b->p, b->p + s, e - s);
  b->len = e - s;
  b->p[b->len] = '\0';
}

/* Copy an environment variable into a wiped-on-free buffer. */
static int from_env(cli_args *a, const char *opt, const char *var, size_t limit, cli_buf *out) {
  memset(out, 0, sizeof *out);
  out->secret = 1;
  const char *v = getenv(var);
  if (v == NULL) return cli_usage(a, "--%s: environment variable %s is not set", opt, var);
  size_t n = strlen(v);
  if (n == 0) return cli_usage(a, "--%s: environment variable %s is empty", opt, var);
  if (n > limit) return cli_usage(a, "--%s: environment variable %s exceeds %zu bytes", opt, var, limit);
  if ((out->p = malloc(n + 1)) == NULL) return cli_fail(a, CLI_INTERNAL, "out of memory");
  memcpy(out->p, v, n + 1);
  out->len = n;
  return CLI_OK;
}

int cli_read_secret(cli_args *a, cli_buf *out, int *have) {
  const char *file = cli_opt_str(a, "secret-file"), *env = cli_opt_str(a, "secret-env");
  memset(out, 0, sizeof *out);
  *have = 0;
  if (file == NULL && env == NULL) return CLI_OK;
  if (file != NULL && env != NULL) return cli_usage(a, "give either --secret-file or --secret-env, not both");
  int rc = file ? cli_read_file(a, "secret file", file, CLI_MAX_SECRET, 1, out)
                : from_env(a, "secret-env", env, CLI_MAX_SECRET, out);
  if (rc != CLI_OK) {
    cli_buf_free(out);
    return rc;
  }
  if (out->len == 0) {
    cli_buf_free(out);
    return cli_usage(a, "the secret is empty");
  }
  *have = 1;
  return CLI_OK;
}


int cli_read_passphrase(cli_args *a, cli_buf *out) {
  const char *file = cli_opt_str(a, "passphrase-file"), *env = cli_opt_str(a, "passphrase-env");
  memset(out, 0, sizeof *out);
  if (file == NULL && env == NULL) return CLI_OK;
  if (file != NULL && env != NULL) return cli_usage(a, "give either --passphrase-file or --passphrase-env, not both");
  int rc = file ? cli_read_file(a, "passphrase file", file, CLI_MAX_PASSPHRASE, 1, out)
                : from_env(a, "passphrase-env", env, CLI_MAX_PASSPHRASE, out);
  if (rc == CLI_OK && file != NULL) rc = cli_check_secret_mode(a, file, out);
  if (rc != CLI_OK) {
    cli_buf_free(out);
    return rc;
  }
  char *nl = memchr(out->p, '\n', out->len); /* first line only */
  if (nl != NULL) {
    size_t keep = (size_t)(nl - out->p);
    if (keep > 0 && out->p[keep - 1] == '\r') keep--;
    jwtkit_wipe(out->p + keep, out->len - keep);
    out->len = keep;
  }
  if (out->len == 0 || memchr(out->p, '\0', out->len) != NULL) {
    cli_buf_free(out);
    return cli_usage(a, "the passphrase is empty or contains a NUL byte");
  }
  return CLI_OK;
}

int cli_read_keks(cli_args *a, unsigned char (**keks)[32], size_t *n) {
  const char *file = cli_opt_str(a, "kek-file"), *env = cli_opt_str(a, "kek-env");
  *keks = NULL;
  *n = 0;
  if (file != NULL && env != NULL) return cli_usage(a, "give either --kek-file or --kek-env, not both");
  if (file == NULL && env == NULL) {
    if (getenv("JWTKIT_KEK") == NULL) return CLI_OK;
    env = "JWTKIT_KEK"; /* the default */
  }
  cli_buf text;
  int rc = file ? cli_read_file(a, "KEK file", file, CLI_MAX_SECRET * 32, 1, &text)
                : from_env(a, "kek-env", env, CLI_MAX_SECRET * 32, &text);
  if (rc == CLI_OK && file != NULL) rc = cli_check_secret_mode(a, file, &text);
  if (rc != CLI_OK) {
    cli_buf_free(&text);
    return rc;
  }
  jwtkit_errinfo ei = {0};
  jwtkit_err e = jwtkit_kek_parse(text.p, text.len, keks, n, &ei);
  cli_buf_free(&text);
  if (e != JWTKIT_OK) return cli_usage(a, "%s %s: %s", file ? "KEK file" : "environment variable", file ? file : env, ei.msg);
  return CLI_OK;
}

/* -------------------------------------------------------------- output */

int cli_write_stdout(const cli_args *a, const void *data, size_t len) {
  if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
    return cli_fail(a, CLI_INTERNAL, "write error on stdout: %s", strerror(errno));
  return CLI_OK;
}

int cli_write_atomic(const cli_args *a, const char *path, const void *data, size_t len, unsigned mode,
                     int force) {
  if (strcmp(path, "-") == 0) return cli_write_stdout(a, data, len);
  jwtkit_errinfo info = {0};
  jwtkit_err e = jk_write_file_atomic_ex(path, data, len, mode, JK_WRITE_UMASK | (force ? JK_WRITE_REPLACE : 0), &info);
  if (e == JWTKIT_OK) return CLI_OK;
  if (e == JWTKIT_ERR_STATE) return cli_fail(a, CLI_USAGE, "%s exists (use --force to replace it)", path);
  if (e == JWTKIT_ERR_INVALID_ARG) return cli_usage(a, "%s", info.msg);
  return cli_fail(a, CLI_INTERNAL, "%s", info.msg);
}
