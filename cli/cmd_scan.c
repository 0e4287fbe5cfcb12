/*
 * jwtkit scan: private key material in files tracked by git, as the work
 * tree holds them or as the index (what the next commit will hold) does.
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

/* ---------------------------------------------------------------- state */

#define SCAN_MAX_SIZE_CAP (1024u * 1024u * 1024u) /* largest --max-size */

typedef struct scan {
  cli_args *a;
  size_t max_size;
  size_t total;   /* findings */
  size_t skipped; /* files not scanned */
  size_t skipped_size; /* ... of them because of --max-size */
  findings f;
  char *buf; /* content of the file being scanned; wiped (it may hold keys) */
  size_t cap;
} scan;

static void scan_free(scan *sc) {
  if (sc->buf != NULL) jwtkit_wipe(sc->buf, sc->cap);
  free(sc->buf);
  free(sc->f.v);
}

/* A buffer for n bytes and a NUL. */
static char *scan_room(scan *sc, size_t n) {
  if (n + 1 <= sc->cap) return sc->buf;
  size_t nc = sc->cap ? sc->cap : 64 * 1024;
  while (nc < n + 1) nc *= 2;
  char *nb = malloc(nc);
  if (nb == NULL) return NULL;
  if (sc->buf != NULL) jwtkit_wipe(sc->buf, sc->cap);
  free(sc->buf);
  sc->buf = nb;
  sc->cap = nc;
  return nb;
}

/* Scan one file's content and print its findings.  -1: out of memory. */
static int scan_content(scan *sc, const char *shown, const char *p, size_t len) {
  sc->f.n = 0;
  scan_pem(p, len, &sc->f);
  scan_jwk(p, len, &sc->f);
  if (sc->f.oom) return -1;
  if (sc->f.n > 1) qsort(sc->f.v, sc->f.n, sizeof *sc->f.v, by_line);
  for (size_t i = 0; i < sc->f.n; i++) printf("%s:%zu: %s\n", shown, sc->f.v[i].line, sc->f.v[i].kind);
  sc->total += sc->f.n;
  return 0;
}

static void too_big(scan *sc, const char *shown, uint64_t size) {
  fprintf(stderr, "jwtkit: scan: %s: not scanned: %llu bytes, over --max-size (%zu bytes)\n", shown,
          (unsigned long long)size, sc->max_size);
  sc->skipped++;
  sc->skipped_size++;
}

/* "8388608", "512K", "8M", "1G" (binary units) -> bytes, 1 .. 1 GiB. */
static int parse_size(const char *s, size_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || errno != 0 || s[0] == '-' || s[0] == '+') return -1;
  unsigned shift = 0;
  if (*end == 'K' || *end == 'k') shift = 10, end++;
  else if (*end == 'M' || *end == 'm') shift = 20, end++;
  else if (*end == 'G' || *end == 'g') shift = 30, end++;
  if (*end != '\0' || v == 0 || v > (SCAN_MAX_SIZE_CAP >> shift)) return -1;
  *out = (size_t)(v << shift);
  return 0;
}

/* ------------------------------------------------------------ work tree */

/* A tracked file in the work tree: a regular file's bytes, a symbolic
 * link's target text (what git stores; never the file it points to).
 * Returns 1 scanned, 0 not there (deleted, a submodule), -1 out of memory. */
static int scan_worktree_file(scan *sc, const char *path, const char *shown) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      cli_note(sc->a, "%s: deleted in the work tree (--staged scans what the index holds)", shown);
      return 0;
    }
    fprintf(stderr, "jwtkit: scan: %s: not scanned: %s\n", shown, strerror(errno));
    sc->skipped++;
    return 0;
  }
  if (S_ISLNK(st.st_mode)) {
    char *b = scan_room(sc, 4096);
    if (b == NULL) return -1;
    ssize_t n = readlink(path, b, 4096);
    if (n < 0) {
      fprintf(stderr, "jwtkit: scan: %s: not scanned: %s\n", shown, strerror(errno));
      sc->skipped++;
      return 0;
    }
    cli_note(sc->a, "%s: symbolic link: its target text is scanned, not the file it points to", shown);
    b[n] = '\0';
    return scan_content(sc, shown, b, (size_t)n) == 0 ? 1 : -1;
  }
  if (!S_ISREG(st.st_mode)) return 0; /* a submodule's directory */
  if ((uint64_t)st.st_size > sc->max_size) {
    too_big(sc, shown, (uint64_t)st.st_size);
    return 0;
  }
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int e = fd < 0 ? errno : EINVAL;
    if (fd >= 0) close(fd);
    fprintf(stderr, "jwtkit: scan: %s: not scanned: %s\n", shown, strerror(e));
    sc->skipped++;
    return 0;
  }
  /* read at most max_size + 1 bytes: a file that grew meanwhile is skipped */
  size_t want = (uint64_t)st.st_size < sc->max_size ? (size_t)st.st_size + 1 : sc->max_size + 1;
  char *b = scan_room(sc, want);
  if (b == NULL) {
    close(fd);
    return -1;
  }
  size_t len = 0;
  int err = 0;
  while (len < want) {
    ssize_t r = read(fd, b + len, want - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) err = errno;
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  if (err != 0) {
    fprintf(stderr, "jwtkit: scan: %s: not scanned: %s\n", shown, strerror(err));
    sc->skipped++;
    return 0;
  }
  if (len > sc->max_size) {
    too_big(sc, shown, len);
    return 0;
  }
  b[len] = '\0';
  return scan_content(sc, shown, b, len) == 0 ? 1 : -1;
}

/* ---------------------------------------------------------------- index */

/* Buffered reading of a child's stdout. */
typedef struct reader {
  int fd;
  char b[65536];
  size_t pos, len;
  int eof, err;
} reader;

static int rd_fill(reader *r) {
  if (r->pos < r->len) return 1;
  if (r->eof || r->err) return 0;
  for (;;) {
    ssize_t n = read(r->fd, r->b, sizeof r->b);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) r->err = 1;
    if (n <= 0) {
      r->eof = 1;
      return 0;
    }
    r->pos = 0;
    r->len = (size_t)n;
    return 1;
  }
}

/* One line without its newline; -1 at the end or when longer than cap-1. */
static int rd_line(reader *r, char *out, size_t cap) {
  size_t n = 0;
  while (rd_fill(r)) {
    char c = r->b[r->pos++];
    if (c == '\n') {
      out[n] = '\0';
      return 0;
    }
    if (n + 1 >= cap) return -1;
    out[n++] = c;
  }
  return -1;
}

static int rd_exact(reader *r, char *out, size_t n) {
  size_t got = 0;
  while (got < n && rd_fill(r)) {
    size_t k = r->len - r->pos < n - got ? r->len - r->pos : n - got;
    memcpy(out + got, r->b + r->pos, k);
    r->pos += k;
    got += k;
  }
  return got == n ? 0 : -1;
}

typedef struct entry {
  unsigned mode;
  char oid[72];
  uint64_t size;
  const char *name; /* into the ls-files output */
} entry;

/* "<oid> <type> <size>" as cat-file prints it; 0 when it is a blob. */
static int parse_header(const char *line, const char *oid, uint64_t *size) {
  size_t ol = strlen(oid);
  if (strncmp(line, oid, ol) != 0 || line[ol] != ' ') return -1;
  const char *t = line + ol + 1;
  if (strncmp(t, "blob ", 5) != 0) return -1;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(t + 5, &end, 10);
  if (end == t + 5 || *end != '\0' || errno != 0) return -1;
  *size = v;
  return 0;
}

/* `git cat-file ARG` over the object ids of ents[i] for which pick[i]. */
static int cat_file(cli_proc *pr, const char *dir, const char *arg, const entry *ents, size_t n, const char *pick,
                    char **input) {
  size_t need = 1;
  for (size_t i = 0; i < n; i++)
    if (pick == NULL || pick[i]) need += strlen(ents[i].oid) + 1;
  char *in = malloc(need), *q = in;
  if (in == NULL) return -1;
  for (size_t i = 0; i < n; i++)
    if (pick == NULL || pick[i]) q += sprintf(q, "%s\n", ents[i].oid);
  *input = in;
  const char *argv[] = {"git", "-C", dir, "cat-file", arg, NULL};
  return cli_proc_start(pr, argv, in, (size_t)(q - in));
}

static int scan_index(scan *sc, const char *dir, const char *spec, const char *path, int show_prefix) {
  cli_args *a = sc->a;
  int rc = CLI_OK;
  cli_buf list = {0};
  entry *ents = NULL;
  char *pick = NULL, *input = NULL;
  size_t n = 0;
  cli_proc pr = {.pid = -1, .writer = -1, .fd = -1};

  /* a GIT_INDEX_FILE that does not exist would read as an empty index */
  if (getenv("GIT_INDEX_FILE") != NULL) {
    const char *gp[] = {"git", "-C", dir, "rev-parse", "--git-path", "index", NULL};
    cli_buf where = {0};
    if (cli_run_capture(gp, 64 * 1024, &where) != 0 || where.len == 0) {
      cli_buf_free(&where);
      return cli_fail(a, CLI_INTERNAL, "git rev-parse --git-path index failed in %s", dir);
    }
    where.p[strcspn(where.p, "\n")] = '\0';
    size_t fl = strlen(dir) + where.len + 2;
    char *f = malloc(fl);
    if (f == NULL) {
      cli_buf_free(&where);
      return cli_fail(a, CLI_INTERNAL, "out of memory");
    }
    if (where.p[0] == '/')
      snprintf(f, fl, "%s", where.p);
    else
      snprintf(f, fl, "%s/%s", dir, where.p);
    struct stat st;
    int missing = stat(f, &st) != 0;
    if (missing)
      rc = cli_fail(a, CLI_USAGE,
                    "GIT_INDEX_FILE names %s, which does not exist: there is no index to scan (unset "
                    "GIT_INDEX_FILE, or name an index file that exists)",
                    f);
    free(f);
    cli_buf_free(&where);
    if (missing) return rc;
  }

  const char *ls[] = {"git", "--literal-pathspecs", "-C", dir, "ls-files", "-s", "-z", "--", spec, NULL};
  if (spec == NULL) ls[7] = NULL;
  if (cli_run_capture(ls, CLI_MAX_GIT_OUTPUT, &list) != 0) {
    rc = cli_fail(a, CLI_INTERNAL, "git ls-files failed in %s", dir);
    goto done;
  }
  /* "<mode> <oid> <stage>\t<path>\0" per index entry */
  size_t cap = 0;
  for (size_t off = 0; off < list.len;) {
    char *e = list.p + off;
    size_t el = strlen(e);
    off += el + 1;
    if (el == 0) continue;
    char *tab = strchr(e, '\t');
    entry en = {0};
    char oid[80];
    unsigned stage;
    if (tab == NULL || sscanf(e, "%o %79s %u", &en.mode, oid, &stage) != 3 || strlen(oid) >= sizeof en.oid ||
        strspn(oid, "0123456789abcdef") != strlen(oid)) {
      rc = cli_fail(a, CLI_INTERNAL, "unexpected git ls-files output in %s", dir);
      goto done;
    }
    if (en.mode == 0160000) { /* a submodule: its commit, not content */
      cli_note(a, "%s: submodule not scanned", tab + 1);
      continue;
    }
    memcpy(en.oid, oid, strlen(oid) + 1);
    en.name = tab + 1;
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 64;
      entry *ne = realloc(ents, nc * sizeof *ne);
      if (ne == NULL) {
        rc = cli_fail(a, CLI_INTERNAL, "out of memory");
        goto done;
      }
      ents = ne;
      cap = nc;
    }
    ents[n++] = en;
  }
  if (n == 0) goto done;

  /* sizes first, so that no blob over --max-size is ever read */
  if (cat_file(&pr, dir, "--batch-check", ents, n, NULL, &input) != 0) {
    rc = cli_fail(a, CLI_INTERNAL, "cannot run git cat-file");
    goto done;
  }
  reader *r = malloc(sizeof *r);
  if (r == NULL) {
    rc = cli_fail(a, CLI_INTERNAL, "out of memory");
    goto done;
  }
  char line[256];
  r->fd = pr.fd;
  r->pos = r->len = 0;
  r->eof = r->err = 0;
  for (size_t i = 0; i < n && rc == CLI_OK; i++)
    if (rd_line(r, line, sizeof line) != 0 || parse_header(line, ents[i].oid, &ents[i].size) != 0)
      rc = cli_fail(a, CLI_INTERNAL, "git cat-file --batch-check: no blob %s for %s", ents[i].oid, ents[i].name);
  if (cli_proc_finish(&pr, rc != CLI_OK) != 0 && rc == CLI_OK) rc = cli_fail(a, CLI_INTERNAL, "git cat-file failed");
  free(input);
  input = NULL;
  if (rc != CLI_OK) {
    free(r);
    goto done;
  }

  if ((pick = calloc(n, 1)) == NULL) {
    free(r);
    rc = cli_fail(a, CLI_INTERNAL, "out of memory");
    goto done;
  }
  size_t npick = 0;
  for (size_t i = 0; i < n; i++) {
    pick[i] = ents[i].size <= sc->max_size;
    npick += pick[i] ? 1u : 0u;
  }
  if (npick > 0 && cat_file(&pr, dir, "--batch", ents, n, pick, &input) != 0) {
    free(r);
    rc = cli_fail(a, CLI_INTERNAL, "cannot run git cat-file");
    goto done;
  }
  r->fd = pr.fd;
  r->pos = r->len = 0;
  r->eof = r->err = 0;
  for (size_t i = 0; i < n && rc == CLI_OK; i++) {
    const char *shown = ents[i].name;
    char *fullname = NULL;
    if (spec != NULL && strcmp(ents[i].name, spec) == 0) {
      shown = path;
    } else if (show_prefix || (spec != NULL && strcmp(dir, ".") != 0)) { /* spec: a deleted directory */
      if ((fullname = malloc(strlen(dir) + strlen(ents[i].name) + 2)) == NULL) {
        rc = cli_fail(a, CLI_INTERNAL, "out of memory");
        break;
      }
      sprintf(fullname, "%s/%s", dir, ents[i].name);
      shown = fullname;
    }
    if (!pick[i]) {
      too_big(sc, shown, ents[i].size);
    } else {
      uint64_t size = 0;
      char *b = scan_room(sc, (size_t)ents[i].size);
      if (b == NULL)
        rc = cli_fail(a, CLI_INTERNAL, "out of memory");
      else if (rd_line(r, line, sizeof line) != 0 || parse_header(line, ents[i].oid, &size) != 0 ||
               size != ents[i].size || rd_exact(r, b, (size_t)size) != 0 || rd_exact(r, line, 1) != 0 ||
               line[0] != '\n')
        rc = cli_fail(a, CLI_INTERNAL, "git cat-file --batch: bad output for %s", ents[i].name);
      else {
        if (ents[i].mode == 0120000)
          cli_note(a, "%s: symbolic link: its target text is scanned, not the file it points to", shown);
        b[size] = '\0';
        if (scan_content(sc, shown, b, (size_t)size) != 0) rc = cli_fail(a, CLI_INTERNAL, "out of memory");
      }
    }
    free(fullname);
  }
  free(r);
  if (npick > 0 && cli_proc_finish(&pr, rc != CLI_OK) != 0 && rc == CLI_OK)
    rc = cli_fail(a, CLI_INTERNAL, "git cat-file failed");
done:
  if (pr.pid > 0) cli_proc_finish(&pr, 1);
  free(input);
  free(pick);
  free(ents);
  cli_buf_free(&list);
  return rc;
}

/* ----------------------------------------------------------------- main */

static int scan_tree(scan *sc, const char *dir, const char *spec, const char *path, int show_prefix) {
  cli_args *a = sc->a;
  cli_buf list = {0};
  const char *argv[] = {"git", "--literal-pathspecs", "-C", dir, "ls-files", "-z", "--", spec, NULL};
  if (spec == NULL) argv[6] = NULL;
  if (cli_run_capture(argv, CLI_MAX_GIT_OUTPUT, &list) != 0) return cli_fail(a, CLI_INTERNAL, "git ls-files failed in %s", dir);
  int rc = CLI_OK;
  for (size_t off = 0; off < list.len && rc == CLI_OK;) {
    const char *name = list.p + off;
    size_t nl = strlen(name);
    off += nl + 1;
    if (nl == 0) continue;
    char *full = malloc(strlen(dir) + nl + 2);
    if (full == NULL) {
      rc = cli_fail(a, CLI_INTERNAL, "out of memory");
      break;
    }
    sprintf(full, "%s/%s", dir, name);
    const char *shown = spec != NULL ? path : show_prefix ? full : name;
    if (scan_worktree_file(sc, full, shown) < 0) rc = cli_fail(a, CLI_INTERNAL, "out of memory");
    free(full);
  }
  cli_buf_free(&list);
  return rc;
}

int cli_cmd_scan(cli_args *a) {
  const char *path = a->npos ? a->pos[0] : ".";
  scan sc = {.a = a, .max_size = CLI_MAX_SCAN_FILE};
  int staged = cli_opt_flag(a, "staged"), worktree = cli_opt_flag(a, "worktree");
  if (staged && worktree) return cli_usage(a, "give either --staged or --worktree, not both");
  const char *gi = getenv("GIT_INDEX_FILE");
  if (!staged && !worktree && gi != NULL && gi[0] != '\0') {
    staged = 1; /* inside a git hook: what the commit will hold */
    cli_note(a, "GIT_INDEX_FILE is set (a git hook): scanning the index, as --staged does");
  }
  const char *ms = cli_opt_str(a, "max-size");
  if (ms != NULL && parse_size(ms, &sc.max_size) != 0)
    return cli_usage(a, "bad --max-size \"%s\": bytes, or a number with K, M or G (binary units), 1 .. 1G", ms);

  struct stat st;
  int is_dir;
  if (stat(path, &st) == 0) {
    is_dir = S_ISDIR(st.st_mode);
  } else if (staged && errno == ENOENT) {
    is_dir = 0; /* a file deleted from the work tree may still be staged */
  } else {
    return cli_fail(a, CLI_USAGE, "cannot access %s: %s", path, strerror(errno));
  }
  /* git -C DIR ls-files [-- FILE] */
  size_t pl = strlen(path);
  while (pl > 1 && path[pl - 1] == '/') pl--;
  char *dir = malloc(pl + 2);
  if (dir == NULL) return cli_fail(a, CLI_INTERNAL, "out of memory");
  const char *spec = NULL;
  if (is_dir) {
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
  cli_git_state gs = cli_git_worktree(dir);
  if (gs == CLI_GIT_MISSING) {
    rc = cli_fail(a, CLI_INTERNAL, "git is not installed");
    goto done;
  }
  if (gs == CLI_GIT_OUTSIDE) {
    rc = cli_fail(a, CLI_USAGE, "%s is not inside a git work tree", path);
    goto done;
  }
  int show_prefix = is_dir && strcmp(dir, ".") != 0;
  rc = staged ? scan_index(&sc, dir, spec, path, show_prefix) : scan_tree(&sc, dir, spec, path, show_prefix);
  if (rc != CLI_OK) goto done;
  if (sc.total > 0) {
    fprintf(stderr, "jwtkit: scan: %zu finding%s: private key material is %s\n", sc.total, sc.total == 1 ? "" : "s",
            staged ? "staged for commit (git rm --cached FILE takes it out of the index)" : "tracked by git");
    rc = CLI_FAIL;
  }
  if (sc.skipped > 0) {
    if (cli_opt_flag(a, "allow-skipped")) {
      fprintf(stderr, "jwtkit: scan: %zu file%s not scanned (--allow-skipped)\n", sc.skipped,
              sc.skipped == 1 ? "" : "s");
    } else {
      const char *them = sc.skipped == 1 ? "it" : "them";
      fprintf(stderr, "jwtkit: scan: %zu file%s not scanned, so the result is not clean: ", sc.skipped,
              sc.skipped == 1 ? "" : "s");
      if (sc.skipped_size == sc.skipped)
        fprintf(stderr, "raise --max-size (at most 1G) to scan %s", them);
      else if (sc.skipped_size > 0)
        fprintf(stderr, "make the unreadable ones readable and raise --max-size (at most 1G) for the large ones");
      else
        fprintf(stderr, "make %s readable", them);
      fprintf(stderr, ", or pass --allow-skipped to accept %s unscanned\n", them);
      rc = CLI_FAIL;
    }
  }
done:
  scan_free(&sc);
  free(dir);
  return rc;
}
