/* Running git: work tree detection, the private-key guard, captured output. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "common/attr.h"

int cli_run_capture(const char *const argv[], size_t limit, cli_buf *out) {
  memset(out, 0, sizeof *out);
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(null, STDERR_FILENO) < 0 ||
        dup2(fds[1], STDOUT_FILENO) < 0)
      _exit(127);
    close(fds[0]);
    close(fds[1]);
    if (null > STDERR_FILENO) close(null);
    execvp(argv[0], JK_UNCONST(argv));
    _exit(127);
  }
  close(fds[1]);
  size_t cap = 0;
  int failed = 0;
  for (;;) {
    if (!failed && out->len + 4096 + 1 > cap) {
      size_t nc = cap ? cap * 2 : 8192;
      char *np = realloc(out->p, nc);
      if (np == NULL) {
        failed = 1;
      } else {
        out->p = np;
        cap = nc;
      }
    }
    char sink[4096];
    char *dst = failed ? sink : out->p + out->len;
    size_t room = failed ? sizeof sink : cap - 1 - out->len;
    ssize_t r = read(fds[0], dst, room);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (!failed) {
      out->len += (size_t)r;
      if (out->len > limit) {
        failed = 1; /* too much output: stop the child */
        kill(pid, SIGTERM);
      }
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      failed = 1;
      break;
    }
  }
  if (failed || out->p == NULL) {
    free(out->p);
    out->p = NULL;
    out->len = 0;
    if (failed) return -1;
    if ((out->p = malloc(1)) == NULL) return -1;
  }
  out->p[out->len] = '\0';
  if (!WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

int cli_proc_start(cli_proc *p, const char *const argv[], const void *in, size_t in_len) {
  memset(p, 0, sizeof *p);
  p->pid = p->writer = -1;
  p->fd = -1;
  int ip[2], op[2];
  if (pipe(ip) != 0) return -1;
  if (pipe(op) != 0) {
    close(ip[0]);
    close(ip[1]);
    return -1;
  }
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null < 0 || dup2(ip[0], STDIN_FILENO) < 0 || dup2(op[1], STDOUT_FILENO) < 0 ||
        dup2(null, STDERR_FILENO) < 0)
      _exit(127);
    close(ip[0]);
    close(ip[1]);
    close(op[0]);
    close(op[1]);
    if (null > STDERR_FILENO) close(null);
    execvp(argv[0], JK_UNCONST(argv));
    _exit(127);
  }
  /* the writer: a process of its own, so that neither side of the two
   * pipes can wait for the other */
  pid_t writer = pid < 0 ? -1 : fork();
  if (writer == 0) {
    close(ip[0]);
    close(op[0]);
    close(op[1]);
    const char *q = in;
    size_t left = in_len;
    while (left > 0) {
      ssize_t w = write(ip[1], q, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) _exit(1); /* the reader is gone */
      q += w;
      left -= (size_t)w;
    }
    _exit(0);
  }
  close(ip[0]);
  close(ip[1]);
  close(op[1]);
  p->pid = pid;
  p->writer = writer;
  p->fd = op[0];
  if (pid < 0 || writer < 0) {
    cli_proc_finish(p, 1);
    return -1;
  }
  return 0;
}

static int reap(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int cli_proc_finish(cli_proc *p, int stop) {
  if (p->fd >= 0) close(p->fd);
  p->fd = -1;
  int st = -1;
  if (p->pid > 0) {
    if (stop) kill(p->pid, SIGTERM);
    st = reap(p->pid);
  }
  if (p->writer > 0) {
    if (stop) kill(p->writer, SIGTERM);
    reap(p->writer);
  }
  p->pid = p->writer = -1;
  return stop ? -1 : st;
}

cli_git_state cli_git_worktree(const char *dir) {
  const char *const argv[] = {"git", "-C", dir, "rev-parse", "--is-inside-work-tree", NULL};
  cli_buf out;
  int st = cli_run_capture(argv, 4096, &out);
  cli_git_state s = CLI_GIT_OUTSIDE;
  if (st == 127)
    s = CLI_GIT_MISSING;
  else if (st == 0 && strncmp(out.p, "true", 4) == 0)
    s = CLI_GIT_INSIDE;
  cli_buf_free(&out);
  return s;
}

int cli_git_guard_private(const cli_args *a, const char *path, int force) {
  if (strcmp(path, "-") == 0) return CLI_OK;
  const char *slash = strrchr(path, '/');
  size_t dl = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
  char *dir = malloc(dl + 1);
  if (dir == NULL) return cli_fail(a, CLI_INTERNAL, "out of memory");
  if (slash == NULL)
    memcpy(dir, ".", 2);
  else {
    memcpy(dir, slash == path ? "/" : path, dl);
    dir[dl] = '\0';
  }
  const char *base = slash ? slash + 1 : path;
  int rc = CLI_OK;
  if (cli_git_worktree(dir) == CLI_GIT_INSIDE) {
    const char *const argv[] = {"git", "-C", dir, "check-ignore", "-q", "--", base, NULL};
    cli_buf out;
    int ignored = cli_run_capture(argv, 4096, &out) == 0;
    cli_buf_free(&out);
    if (!ignored) {
      if (force)
        fprintf(stderr, "jwtkit: %s: warning: %s is inside a git work tree and not ignored by git\n",
                a->cmd->name, path);
      else
        rc = cli_fail(a, CLI_USAGE,
                      "refusing to write a private key to %s: it is inside a git work tree and git does "
                      "not ignore it (add it to .gitignore, or use --force)",
                      path);
    }
  }
  free(dir);
  return rc;
}
