/*
 * jwtkit scan: private key material in files tracked by git.
 *
 * Two simple scanners, no regular expressions:
 *  - PEM: "-----BEGIN <label>-----" where the label contains "PRIVATE KEY"
 *    (PKCS#8, RSA, EC, DSA, ENCRYPTED, OPENSSH, PGP ... BLOCK);
 *  - JWK: a JSON-ish walk that tracks objects; an object with a "kty" member
 *    and a string "d" (RSA, EC, OKP private key) or, for kty "oct", a string
 *    "k" (a secret) is a finding.  Strings end at a newline, so text that is
 *    not JSON cannot swallow the rest of a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

typedef struct finding {
  size_t line, seq; /* seq keeps findings of one line in scan order */
  char kind[80];
} finding;

typedef struct findings {
  finding *v;
  size_t n, cap;
  int oom;
} findings;

static void add_finding(findings *f, size_t line, const char *kind) {
  if (f->n == f->cap) {
    size_t nc = f->cap ? f->cap * 2 : 8;
    finding *nv = realloc(f->v, nc * sizeof *nv);
    if (nv == NULL) {
      f->oom = 1;
      return;
    }
    f->v = nv;
    f->cap = nc;
  }
  f->v[f->n].line = line;
  f->v[f->n].seq = f->n;
  snprintf(f->v[f->n].kind, sizeof f->v[f->n].kind, "%s", kind);
  f->n++;
}

/* ----------------------------------------------------------------- PEM */

static void scan_pem(const char *p, size_t len, findings *f) {
  static const char begin[] = "-----BEGIN ";
  size_t line = 1;
  for (size_t i = 0; i < len; i++) {
    if (p[i] == '\n') {
      line++;
      continue;
    }
    if (p[i] != '-' || len - i < sizeof begin - 1 || memcmp(p + i, begin, sizeof begin - 1) != 0) continue;
    size_t ls = i + sizeof begin - 1, le = ls;
    while (le < len && le - ls < 64 && ((p[le] >= 'A' && p[le] <= 'Z') || (p[le] >= '0' && p[le] <= '9') || p[le] == ' '))
      le++;
    if (len - le < 5 || memcmp(p + le, "-----", 5) != 0) continue;
    char label[72];
    memcpy(label, p + ls, le - ls);
    label[le - ls] = '\0';
    if (strstr(label, "PRIVATE KEY") == NULL) continue;
    char kind[80];
    snprintf(kind, sizeof kind, "PEM %s", label);
    add_finding(f, line, kind);
    i = le + 4;
  }
}

/* ----------------------------------------------------------------- JWK */

#define SCAN_DEPTH 64

typedef struct frame {
  char type; /* '{' or '[' */
  char kty[8];
  int has_kty;
  size_t d_line, k_line; /* line of a string "d" / "k" member, 0 if none */
} frame;

static void close_object(const frame *fr, findings *f) {
  if (!fr->has_kty) return;
  char kind[80];
  if (strcmp(fr->kty, "oct") == 0) {
    if (fr->k_line) add_finding(f, fr->k_line, "JWK secret key (kty oct)");
  } else if (fr->d_line) {
    snprintf(kind, sizeof kind, "JWK private key (kty %s)", fr->kty);
    add_finding(f, fr->d_line, kind);
  }
}

static void scan_jwk(const char *p, size_t len, findings *f) {
  frame st[SCAN_DEPTH];
  size_t depth = 0, overflow = 0, line = 1;
  char key[8] = ""; /* pending member name (short names only) */
  int pending = 0;
  for (size_t i = 0; i < len; i++) {
    char c = p[i];
    frame *top = depth > 0 && overflow == 0 ? &st[depth - 1] : NULL;
    switch (c) {
      case '\n':
        line++;
        break;
      case '"': {
        size_t j = i + 1;
        while (j < len && p[j] != '"' && p[j] != '\n') j += p[j] == '\\' && j + 1 < len && p[j + 1] != '\n' ? 2 : 1;
        if (j >= len || p[j] == '\n') { /* not a JSON string */
          i = j - 1;
          pending = 0;
          break;
        }
        const char *s = p + i + 1;
        size_t sl = j - i - 1;
        size_t k = j + 1;
        while (k < len && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r')) k++;
        if (top != NULL && top->type == '{' && k < len && p[k] == ':') {
          pending = 1; /* a member name */
          if (sl < sizeof key) {
            memcpy(key, s, sl);
            key[sl] = '\0';
          } else {
            key[0] = '\0';
          }
        } else if (pending && top != NULL && top->type == '{') {
          if (strcmp(key, "kty") == 0 && sl < sizeof top->kty) {
            memcpy(top->kty, s, sl);
            top->kty[sl] = '\0';
            top->has_kty = 1;
          } else if (strcmp(key, "d") == 0 && sl > 0) {
            top->d_line = line;
          } else if (strcmp(key, "k") == 0 && sl > 0) {
            top->k_line = line;
          }
          pending = 0;
        }
        i = j;
        break;
      }
      case '{':
      case '[':
        pending = 0;
        if (overflow > 0 || depth == SCAN_DEPTH) {
          overflow++;
        } else {
          memset(&st[depth], 0, sizeof st[depth]);
          st[depth++].type = c;
        }
        break;
      case '}':
      case ']':
        pending = 0;
        if (overflow > 0) {
          overflow--;
        } else if (top != NULL && top->type == (c == '}' ? '{' : '[')) {
          if (c == '}') close_object(top, f);
          depth--;
        }
        break;
      case ',':
        pending = 0;
        break;
      default:
        break;
    }
  }
}

static int by_line(const void *x, const void *y) {
  const finding *a = x, *b = y;
  if (a->line != b->line) return a->line < b->line ? -1 : 1;
  return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* ---------------------------------------------------------------- files */

/* Read a tracked file: regular files only, no symbolic links, bounded. */
static int read_tracked(const cli_args *a, const char *path, const char *shown, cli_buf *out) {
  memset(out, 0, sizeof *out);
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ELOOP)
      cli_note(a, "%s: symbolic link not followed", shown);
    else if (errno != ENOENT && errno != EISDIR) /* deleted in the work tree; submodule */
      cli_note(a, "%s: %s", shown, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return -1;
  }
  if ((uint64_t)st.st_size > CLI_MAX_SCAN_FILE) {
    fprintf(stderr, "jwtkit: scan: %s: not scanned (over %u MiB)\n", shown, CLI_MAX_SCAN_FILE >> 20);
    close(fd);
    return -1;
  }
  size_t cap = (size_t)st.st_size + 1;
  if ((out->p = malloc(cap)) == NULL) {
    close(fd);
    return -1;
  }
  while (out->len + 1 < cap) {
    ssize_t r = read(fd, out->p + out->len, cap - 1 - out->len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    out->len += (size_t)r;
  }
  close(fd);
  out->p[out->len] = '\0';
  return 0;
}

int cli_cmd_scan(cli_args *a) {
  const char *path = a->npos ? a->pos[0] : ".";
  struct stat st;
  if (stat(path, &st) != 0) return cli_fail(a, CLI_USAGE, "cannot access %s: %s", path, strerror(errno));
  /* git -C DIR ls-files [-- FILE] */
  size_t pl = strlen(path);
  while (pl > 1 && path[pl - 1] == '/') pl--;
  char *dir = malloc(pl + 2);
  if (dir == NULL) return cli_fail(a, CLI_INTERNAL, "out of memory");
  const char *spec = NULL;
  if (S_ISDIR(st.st_mode)) {
    memcpy(dir, path, pl);
    dir[pl] = '\0';
  } else {
    const char *slash = memchr(path, '/', pl) ? strrchr(path, '/') : NULL;
    if (slash == NULL) {
      strcpy(dir, ".");
    } else {
      size_t dl = slash == path ? 1 : (size_t)(slash - path);
      memcpy(dir, path, dl);
      dir[dl] = '\0';
    }
    spec = slash ? slash + 1 : path;
  }
  int rc = CLI_OK;
  cli_buf list = {0};
  findings f = {0};
  cli_git_state gs = cli_git_worktree(dir);
  if (gs == CLI_GIT_MISSING) {
    rc = cli_fail(a, CLI_INTERNAL, "git is not installed");
    goto done;
  }
  if (gs == CLI_GIT_OUTSIDE) {
    rc = cli_fail(a, CLI_USAGE, "%s is not inside a git work tree", path);
    goto done;
  }
  const char *argv[] = {"git", "-C", dir, "ls-files", "-z", "--", spec, NULL};
  if (spec == NULL) argv[5] = NULL;
  if (cli_run_capture(argv, CLI_MAX_GIT_OUTPUT, &list) != 0) {
    rc = cli_fail(a, CLI_INTERNAL, "git ls-files failed in %s", dir);
    goto done;
  }
  int show_prefix = S_ISDIR(st.st_mode) && strcmp(dir, ".") != 0;
  size_t total = 0;
  for (size_t off = 0; off < list.len;) {
    const char *name = list.p + off;
    size_t nl = strlen(name);
    off += nl + 1;
    if (nl == 0) continue;
    char *full = malloc(strlen(dir) + nl + 2);
    if (full == NULL) {
      rc = cli_fail(a, CLI_INTERNAL, "out of memory");
      goto done;
    }
    sprintf(full, "%s/%s", dir, name);
    const char *shown = spec != NULL ? path : show_prefix ? full : name;
    cli_buf b;
    if (read_tracked(a, full, shown, &b) == 0) {
      f.n = 0;
      scan_pem(b.p, b.len, &f);
      scan_jwk(b.p, b.len, &f);
      if (f.n > 1) qsort(f.v, f.n, sizeof *f.v, by_line);
      for (size_t i = 0; i < f.n; i++) printf("%s:%zu: %s\n", shown, f.v[i].line, f.v[i].kind);
      total += f.n;
      cli_buf_free(&b);
    }
    free(full);
    if (f.oom) {
      rc = cli_fail(a, CLI_INTERNAL, "out of memory");
      goto done;
    }
  }
  if (total > 0) {
    fprintf(stderr, "jwtkit: scan: %zu finding%s: private key material is tracked by git\n", total,
            total == 1 ? "" : "s");
    rc = CLI_FAIL;
  }
done:
  free(f.v);
  cli_buf_free(&list);
  free(dir);
  return rc;
}
