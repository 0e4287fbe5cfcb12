/* `jwtkit serve client ...`: the administration of the clients.
 *
 *   client add NAME --audience AUD [...]   a new client with a generated
 *                                          secret, shown once, stored hashed
 *   client list                            the clients, without secrets
 *   client remove NAME                     a client gone
 *   client rotate-secret NAME              a new secret, shown once; the old
 *                                          one stops working
 *
 * The clients file is read, changed and written back whole (temp file,
 * fsync, rename, fsync of the directory; mode 0600) under an exclusive
 * lock on FILE.lock, so two administrators never lose each other's change.
 * Comments and the other entries are kept as they are: a new entry is
 * appended, a removed one's lines are taken out, a rotated secret replaces
 * its secret_hash line.  What is written is parsed again by the issuer's
 * own parser before the file is touched.
 *
 * With a PostgreSQL keyring and no `clients` file named, the clients live
 * in the keyring's database (clients_pg.c): each subcommand is one
 * transaction under the keyring's lock, the set authenticated under the
 * first KEK, and the running issuers load the change when they hear it
 * (no SIGHUP). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/file.h"
#include "common/ini.h"
#include "core/alloc.h"
#include "serve.h"

static const char k_client_usage[] =
    "Usage: jwtkit serve client add NAME --audience AUD [--audience AUD2 ...] [--scopes \"S1 S2\"]\n"
    "                               [--ttl DURATION] [--alg ALG] [--jwks FILE [--assertion-alg ALG ...]]\n"
    "                               [--jwks-uri URL --assertion-alg ALG ...]\n"
    "                               [--clients FILE | --config FILE]\n"
    "       jwtkit serve client list [--clients FILE | --config FILE]\n"
    "       jwtkit serve client remove NAME [--clients FILE | --config FILE]\n"
    "       jwtkit serve client rotate-secret NAME [--clients FILE | --config FILE]\n"
    "\n"
    "The clients of the issuer, in the clients file (default ./var/clients.conf, or the `clients` of\n"
    "--config FILE), or, when --config names a PostgreSQL keyring and no `clients` file, in the\n"
    "keyring's database (the issuers load a change by themselves; the keyring's KEKs are needed).\n"
    "  add            registers a client: its secret is generated, printed once on stdout and\n"
    "                 stored only hashed; with --jwks or --jwks-uri it has no secret and signs its\n"
    "                 own JWTs (private_key_jwt)\n"
    "  list           prints every client (name, audiences, scopes, ttl, alg, state), never a secret\n"
    "  remove         deletes a client\n"
    "  rotate-secret  gives a client a new secret, printed once on stdout; the old one stops\n"
    "                 working when the issuer loads the change\n"
    "Options:\n"
    "  --audience AUD    add: the token's aud (required; repeatable)\n"
    "  --scopes \"S1 S2\"  add: the scopes the client may ask for\n"
    "  --ttl DURATION    add: its token lifetime (default: the keyring's token_ttl, which also caps it)\n"
    "  --alg ALG         add: one of the issuer's algorithms (default: the first)\n"
    "  --jwks FILE       add: the client's public JWK Set: it authenticates with JWTs signed by\n"
    "                    these keys (private_key_jwt) instead of a secret\n"
    "  --jwks-uri URL    add: where the client publishes its public JWK Set (https://); the issuer\n"
    "                    fetches and caches it; needs --assertion-alg\n"
    "  --assertion-alg ALG  add, with --jwks or --jwks-uri: an algorithm its JWTs may use (repeatable;\n"
    "                    default with --jwks: the keys' own; never HS* or none)\n"
    "  --clients FILE    the clients file\n"
    "  --config FILE     the issuer's configuration, for its `clients` (and keyring)\n"
    "  -h, --help        this text\n"
    "Send SIGHUP to a running issuer to load a change of the file.\n"
    "Exit status: 0 done, 2 usage error or no such client, 3 I/O error.\n";

static const char k_pg_where[] = "PostgreSQL clients table";

/* The options of a `client` subcommand. */
typedef struct admin_opts {
  const char *cmd;  /* add, list, remove, rotate-secret */
  const char *name; /* NULL for list */
  const char *aud[SV_MAX_AUDIENCES];
  size_t naud;
  const char *scopes, *ttl, *alg, *clients, *config, *jwks, *jwks_uri;
  const char *aalg[SV_MAX_ASSERTION_ALGS];
  size_t naalg;
} admin_opts;

static int parse_opts(int argc, char **argv, admin_opts *o, int *help) {
  memset(o, 0, sizeof *o);
  *help = 0;
  o->cmd = argv[2];
  int is_add = strcmp(o->cmd, "add") == 0, is_list = strcmp(o->cmd, "list") == 0;
  /* --help wins wherever it is, before anything else is checked */
  for (int i = 3; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) break;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      *help = 1;
      return 0;
    }
  }
  int i = 3, dashdash = 0;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (!dashdash && strcmp(a, "--") == 0) {
      dashdash = 1;
      continue;
    }
    if (dashdash || strncmp(a, "--", 2) != 0) {
      if (is_list || o->name != NULL) return sv_usage_error("client %s: unexpected argument '%s'", o->cmd, a);
      o->name = a;
      continue;
    }
    if (i + 1 >= argc) return sv_usage_error("option '%s' needs a value", a);
    const char *v = argv[++i];
    if (strcmp(a, "--clients") == 0) {
      o->clients = v;
    } else if (strcmp(a, "--config") == 0) {
      o->config = v;
    } else if (is_add && strcmp(a, "--audience") == 0) {
      if (o->naud >= SV_MAX_AUDIENCES) return sv_usage_error("at most %u audiences", SV_MAX_AUDIENCES);
      o->aud[o->naud++] = v;
    } else if (is_add && (strcmp(a, "--scopes") == 0 || strcmp(a, "--scope") == 0)) {
      o->scopes = v;
    } else if (is_add && strcmp(a, "--ttl") == 0) {
      o->ttl = v;
    } else if (is_add && strcmp(a, "--alg") == 0) {
      o->alg = v;
    } else if (is_add && strcmp(a, "--jwks") == 0) {
      o->jwks = v;
    } else if (is_add && strcmp(a, "--jwks-uri") == 0) {
      o->jwks_uri = v;
    } else if (is_add && strcmp(a, "--assertion-alg") == 0) {
      if (o->naalg >= SV_MAX_ASSERTION_ALGS) return sv_usage_error("at most %u --assertion-alg", SV_MAX_ASSERTION_ALGS);
      o->aalg[o->naalg++] = v;
    } else {
      return sv_usage_error("client %s: unknown option '%s'", o->cmd, a);
    }
  }
  if (!is_list) {
    if (o->name == NULL) return sv_usage_error("client %s needs the client's NAME", o->cmd);
    if (!sv_client_name_ok(o->name))
      return sv_usage_error("client names are 1..%u characters of A-Z a-z 0-9 . _ ~ - ('%s')", SV_MAX_CLIENT_NAME,
                            o->name);
  }
  if (is_add && o->naud == 0) return sv_usage_error("client add: --audience is required");
  if (o->jwks != NULL && o->jwks_uri != NULL)
    return sv_usage_error("client add: --jwks FILE or --jwks-uri URL, not both (its keys are given one way)");
  if (o->naalg > 0 && o->jwks == NULL && o->jwks_uri == NULL)
    return sv_usage_error("client add: --assertion-alg goes with --jwks FILE or --jwks-uri URL");
  if (o->jwks_uri != NULL && o->naalg == 0)
    return sv_usage_error("client add: --jwks-uri needs --assertion-alg ALG (the algorithms of the keys it will publish)");
  if (o->clients != NULL && o->config != NULL)
    return sv_usage_error("give --clients FILE or --config FILE (whose `clients` names the file), not both");
  return 0;
}

/* `key = value` in the dialect; -1 when the value cannot be a line's. */
static int put_line(jk_buf *b, const char *key, const char *value) {
  jk_buf_puts(b, key);
  jk_buf_puts(b, " = ");
  if (jk_ini_put_value(b, value) != 0) return -1;
  jk_buf_putc(b, '\n');
  return 0;
}

/* The settings of --config (defaults without it); --clients names the
 * clients file.  *out is malloc'd. */
static int load_settings(const admin_opts *o, sv_settings **out) {
  sv_settings *s = malloc(sizeof *s);
  *out = NULL;
  if (s == NULL) return SV_EXIT_RUNTIME;
  sv_settings_defaults(s);
  char err[1024];
  if (o->config != NULL && sv_settings_load(s, o->config, err, sizeof err) != 0) {
    free(s);
    fprintf(stderr, "jwtkit serve: %s\n", err);
    return SV_EXIT_USAGE;
  }
  if (o->clients != NULL && sv_settings_set(s, "clients", o->clients, 0, err, sizeof err) != 0) {
    free(s);
    return sv_usage_error("--clients: %s", err);
  }
  *out = s;
  return 0;
}

/* ------------------------------------------------ PostgreSQL clients */

/* The keyring side of s, for the clients in its database; 0 or the exit
 * status. */
static int pg_keycfg(const sv_settings *s, sv_keycfg *kc) {
  char err[1400];
  if (sv_keycfg_make(s, kc, err, sizeof err) != 0) {
    fprintf(stderr, "jwtkit serve: %s\n", err);
    return SV_EXIT_USAGE;
  }
  return 0;
}

static int pg_change(const sv_settings *s, const sv_pg_change *ch) {
  sv_keycfg kc;
  int rc = pg_keycfg(s, &kc);
  if (rc != 0) return rc;
  char err[1400];
  rc = sv_clients_pg_change(&kc, ch, err, sizeof err);
  if (rc != SV_EXIT_OK) fprintf(stderr, "jwtkit serve: %s\n", err);
  sv_keycfg_free(&kc);
  return rc;
}

/* -------------------------------------------------------- the file */

/* Where each client's lines are in the file's text. */
typedef struct entry_lines {
  char name[SV_MAX_CLIENT_NAME + 1];
  int header;      /* its [client NAME] line */
  int secret_line; /* its secret_hash line (0: none) */
} entry_lines;

typedef struct scan_ctx {
  const char *want;
  entry_lines found;
  int cur_is_want;
  int next_header; /* the section header after the wanted one (0: none) */
} scan_ctx;

static int scan_item(void *ctx, const jk_ini_item *it, char *err, size_t cap) {
  (void)err;
  (void)cap;
  scan_ctx *x = ctx;
  if (it->key == NULL) {
    if (x->cur_is_want && x->next_header == 0) x->next_header = it->line;
    x->cur_is_want = it->name != NULL && strcmp(it->name, x->want) == 0;
    if (x->cur_is_want) {
      snprintf(x->found.name, sizeof x->found.name, "%s", it->name);
      x->found.header = it->line;
    }
  } else if (x->cur_is_want && strcmp(it->key, "secret_hash") == 0) {
    x->found.secret_line = it->line;
  }
  return 0;
}

/* Offset of the start of line n (1-based) in text; len when past the end. */
static size_t line_start(const char *text, size_t len, int n) {
  size_t o = 0;
  for (int l = 1; l < n && o < len; l++) {
    const char *nl = memchr(text + o, '\n', len - o);
    if (nl == NULL) return len;
    o = (size_t)(nl - text) + 1;
  }
  return o;
}

/* 1 when the line at [o, end) is blank or a comment. */
static int blank_or_comment(const char *text, size_t o, size_t end) {
  while (o < end && (text[o] == ' ' || text[o] == '\t')) o++;
  return o >= end || text[o] == '\n' || text[o] == '\r' || text[o] == '#' || text[o] == ';';
}

typedef enum { EDIT_ADD, EDIT_REMOVE, EDIT_SECRET } edit_kind;

typedef struct edit {
  edit_kind kind;
  const char *name;
  const jk_buf *entry; /* EDIT_ADD: the new section */
  const char *hash;    /* EDIT_SECRET: the new secret_hash value */
} edit;

/* The file's new text from its current text and the edit, or an error. */
static int apply_edit(const char *path, const char *text, size_t len, const edit *e, jk_buf *out) {
  char err[1024];
  sv_clients cur;
  if (text != NULL && sv_clients_parse(&cur, text, len, path, err, sizeof err) != 0) {
    fprintf(stderr, "jwtkit serve: %s\n", err);
    return SV_EXIT_USAGE;
  }
  int exists = text != NULL && sv_clients_find(&cur, e->name, strlen(e->name)) != NULL;
  if (text != NULL) sv_clients_free(&cur);
  if (e->kind == EDIT_ADD) {
    if (exists) {
      fprintf(stderr, "jwtkit serve: client %s already exists in %s (rotate its secret with `jwtkit serve client "
                      "rotate-secret %s`, or remove it first)\n",
              e->name, path, e->name);
      return SV_EXIT_USAGE;
    }
    if (text != NULL) {
      jk_buf_put(out, text, len);
      if (len > 0 && text[len - 1] != '\n') jk_buf_putc(out, '\n');
    } else {
      jk_buf_puts(out, "# Clients of jwtkit serve (jwtkit serve client add|list|remove|rotate-secret).\n"
                       "# Secrets are stored hashed, never in plaintext.\n");
    }
    jk_buf_put(out, e->entry->p, e->entry->len);
    return 0;
  }
  if (!exists) {
    fprintf(stderr, "jwtkit serve: no client %s in %s (`jwtkit serve client list` shows them)\n", e->name,
            text != NULL ? path : "(no clients file)");
    return SV_EXIT_USAGE;
  }
  scan_ctx x;
  memset(&x, 0, sizeof x);
  x.want = e->name;
  if (jk_ini_parse(path, text, len, scan_item, &x, err, sizeof err) != 0 || x.found.header == 0) {
    fprintf(stderr, "jwtkit serve: %s\n", err);
    return SV_EXIT_USAGE;
  }
  if (e->kind == EDIT_REMOVE) {
    /* its header up to the next section; comment and blank lines right
     * before the next section stay: they belong to it */
    size_t from = line_start(text, len, x.found.header);
    size_t to = x.next_header ? line_start(text, len, x.next_header) : len;
    size_t keep = to;
    while (keep > from) {
      size_t ls = keep - 1; /* the start of the line that ends at keep */
      while (ls > from && text[ls - 1] != '\n') ls--;
      if (ls == from || !blank_or_comment(text, ls, keep)) break;
      keep = ls;
    }
    /* and the blank line `client add` wrote before its header */
    if (from > 0 && from >= 2 && text[from - 1] == '\n' && text[from - 2] == '\n') from--;
    jk_buf_put(out, text, from);
    jk_buf_put(out, text + keep, len - keep);
    return 0;
  }
  /* EDIT_SECRET: its secret_hash line replaced */
  if (x.found.secret_line == 0) {
    fprintf(stderr,
            "jwtkit serve: client %s has no secret: it authenticates with private_key_jwt (to change its keys, "
            "remove it and add it again with --jwks)\n",
            e->name);
    return SV_EXIT_USAGE;
  }
  size_t from = line_start(text, len, x.found.secret_line);
  size_t to = line_start(text, len, x.found.secret_line + 1);
  jk_buf_put(out, text, from);
  put_line(out, "secret_hash", e->hash);
  jk_buf_put(out, text + to, len - to);
  return 0;
}

/* Read-modify-write of the clients file under its lock. */
static int file_edit(const char *path, const edit *e) {
  char err[1024];
  if (e->kind == EDIT_ADD && jk_mkdirs(path, 0700, 0) != 0) {
    fprintf(stderr, "jwtkit serve: cannot create the directory of %s: %s\n", path, strerror(errno));
    return SV_EXIT_RUNTIME;
  }
  char lockp[SV_PATH_MAX + 8];
  snprintf(lockp, sizeof lockp, "%s.lock", path);
  int lfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lfd < 0 || flock(lfd, LOCK_EX) != 0) {
    fprintf(stderr, "jwtkit serve: cannot lock %s: %s\n", lockp, strerror(errno));
    if (lfd >= 0) close(lfd);
    return SV_EXIT_RUNTIME;
  }
  int rc = SV_EXIT_OK;
  char *text = NULL;
  size_t len = 0;
  jk_buf all;
  jk_buf_init_max(&all, SV_MAX_CLIENTS_FILE);
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  jwtkit_err code = jk_read_secret_file(path, SV_MAX_CLIENTS_FILE, &text, &len, &ei);
  if (code != JWTKIT_OK && !(code == JWTKIT_ERR_NOT_FOUND && e->kind == EDIT_ADD)) {
    if (code == JWTKIT_ERR_NOT_FOUND)
      fprintf(stderr, "jwtkit serve: clients file: %s does not exist; register a client with `jwtkit serve client add "
                      "NAME --audience AUD --clients %s`\n", path, path);
    else
      fprintf(stderr, "jwtkit serve: clients file: %s\n", ei.msg[0] ? ei.msg : jwtkit_strerror(code));
    rc = code == JWTKIT_ERR_IO || code == JWTKIT_ERR_NOMEM ? SV_EXIT_RUNTIME : SV_EXIT_USAGE;
    goto out;
  }
  if ((rc = apply_edit(path, text, len, e, &all)) != 0) goto out;
  if (all.oom) {
    fprintf(stderr, "jwtkit serve: the clients file would exceed %u bytes\n", SV_MAX_CLIENTS_FILE);
    rc = SV_EXIT_USAGE;
    goto out;
  }
  /* what is written is what the issuer will read */
  sv_clients check;
  if (sv_clients_parse(&check, all.p ? all.p : "", all.len, path, err, sizeof err) != 0) {
    fprintf(stderr, "jwtkit serve: the changed file would not load, left as it was: %s\n", err);
    rc = SV_EXIT_RUNTIME;
    goto out;
  }
  sv_clients_free(&check);
  memset(&ei, 0, sizeof ei);
  if (jk_write_file_atomic(path, all.p ? all.p : "", all.len, 0600, &ei) != JWTKIT_OK) {
    fprintf(stderr, "jwtkit serve: %s\n", ei.msg);
    rc = SV_EXIT_RUNTIME;
  }
out:
  if (text != NULL) jk_free_secret(text, len + 1);
  jk_buf_free_wipe(&all);
  close(lfd); /* releases the lock */
  return rc;
}

/* ---------------------------------------------------- subcommands */

/* A new secret and its stored form; 0 or the exit status. */
static int new_secret(char secret[SV_SECRET_CHARS + 1], char *hash, size_t cap) {
  if (sv_secret_generate(secret) != 0 || sv_secret_hash_new(secret, strlen(secret), hash, cap) != 0) {
    fprintf(stderr, "jwtkit serve: cannot generate a secret\n");
    jk_wipe(secret, SV_SECRET_CHARS + 1);
    return SV_EXIT_RUNTIME;
  }
  return 0;
}

/* The secret on stdout, once, then what to do on stderr. */
static void print_secret(const char *secret, const char *what, const char *name, const char *where) {
  printf("%s\n", secret);
  fflush(stdout);
  fprintf(stderr,
          "jwtkit serve: client %s %s %s; its secret (above) is shown once and stored only hashed.\n"
          "%s\n",
          name, what, where,
          where == k_pg_where ? "The running issuers load the change by themselves."
                              : "Send SIGHUP to a running issuer to load it.");
}

/* --jwks FILE as the entry's lines: the set on one line, public members
 * only (jwtkit_jwks_to_json), and its assertion_algs.  0 or the status. */
static int jwks_lines(const admin_opts *o, jk_buf *sec) {
  char *text = NULL, *json = NULL;
  size_t len = 0, jl = 0;
  jwtkit_errinfo ei;
  memset(&ei, 0, sizeof ei);
  jwtkit_jwks *set = NULL;
  int rc = SV_EXIT_USAGE;
  jwtkit_err e = jk_read_file(o->jwks, JWTKIT_MAX_JWKS_BYTES, &text, &len, &ei);
  if (e != JWTKIT_OK) {
    fprintf(stderr, "jwtkit serve: --jwks %s: %s\n", o->jwks, ei.msg[0] ? ei.msg : jwtkit_strerror(e));
    return e == JWTKIT_ERR_IO || e == JWTKIT_ERR_NOMEM ? SV_EXIT_RUNTIME : SV_EXIT_USAGE;
  }
  if (jwtkit_jwks_parse(&set, text, len, JWTKIT_ALG_UNSPEC, NULL, NULL, &ei) != JWTKIT_OK ||
      jwtkit_jwks_to_json(set, &json, &jl) != JWTKIT_OK) {
    fprintf(stderr, "jwtkit serve: --jwks %s: not a JWK Set: %s\n", o->jwks, ei.msg[0] ? ei.msg : "malformed");
    goto out;
  }
  if (jl > 3800) {
    fprintf(stderr,
            "jwtkit serve: --jwks %s: the set is %zu bytes on one line; a clients file line holds at most 4096: "
            "register fewer or smaller keys\n",
            o->jwks, jl);
    goto out;
  }
  put_line(sec, "jwks", json);
  jk_buf_puts(sec, "assertion_algs =");
  if (o->naalg > 0) {
    for (size_t i = 0; i < o->naalg; i++) {
      jk_buf_putc(sec, ' ');
      jk_buf_puts(sec, o->aalg[i]);
    }
  } else { /* the keys' own algorithms */
    for (size_t i = 0; i < jwtkit_jwks_count(set); i++) {
      jwtkit_alg a = jwtkit_key_alg(jwtkit_jwks_get(set, i));
      int dup = 0;
      for (size_t j = 0; j < i; j++) dup |= jwtkit_key_alg(jwtkit_jwks_get(set, j)) == a;
      if (!dup) {
        jk_buf_putc(sec, ' ');
        jk_buf_puts(sec, jwtkit_alg_name(a));
      }
    }
  }
  jk_buf_putc(sec, '\n');
  rc = 0; /* the issuer's parser checks the rest (every key usable, algorithms) */
out:
  jwtkit_free(json);
  jwtkit_jwks_free(set);
  jk_free_secret(text, len + 1);
  return rc;
}

static int client_add(const admin_opts *o, const sv_settings *s) {
  const char *path = s->clients;
  char secret[SV_SECRET_CHARS + 1] = "", hash[SV_SECRET_HASH_MAX] = "";
  const char *keys = o->jwks != NULL ? o->jwks : o->jwks_uri; /* private_key_jwt: no secret */
  int rc = keys != NULL ? 0 : new_secret(secret, hash, sizeof hash);
  if (rc != 0) return rc;
  /* the entry, checked by the issuer's parser */
  jk_buf sec;
  jk_buf_init_max(&sec, 64 * 1024);
  jk_buf_puts(&sec, "\n[client ");
  jk_buf_puts(&sec, o->name);
  jk_buf_puts(&sec, "]\n");
  if (o->jwks != NULL) {
    rc = jwks_lines(o, &sec);
  } else if (o->jwks_uri != NULL) {
    if (put_line(&sec, "jwks_uri", o->jwks_uri) != 0) {
      rc = sv_usage_error("'%s' holds a line break, which no value can", o->jwks_uri);
    } else {
      jk_buf_puts(&sec, "assertion_algs =");
      for (size_t i = 0; i < o->naalg; i++) {
        jk_buf_putc(&sec, ' ');
        jk_buf_puts(&sec, o->aalg[i]);
      }
      jk_buf_putc(&sec, '\n');
    }
  } else {
    put_line(&sec, "secret_hash", hash);
  }
  if (rc != 0) {
    jk_buf_free(&sec);
    return rc;
  }
  const char *bad = NULL;
  for (size_t i = 0; i < o->naud && bad == NULL; i++)
    if (put_line(&sec, "audience", o->aud[i]) != 0) bad = o->aud[i];
  if (bad == NULL && o->scopes != NULL && put_line(&sec, "scopes", o->scopes) != 0) bad = o->scopes;
  if (bad == NULL && o->ttl != NULL && put_line(&sec, "ttl", o->ttl) != 0) bad = o->ttl;
  if (bad == NULL && o->alg != NULL && put_line(&sec, "alg", o->alg) != 0) bad = o->alg;
  char err[1024];
  sv_clients check;
  if (bad != NULL) {
    rc = sv_usage_error("'%s' holds a line break, which no value can", bad);
  } else if (sec.oom) {
    fprintf(stderr, "jwtkit serve: client entry too long\n");
    rc = SV_EXIT_USAGE;
  } else if (sv_clients_parse(&check, sec.p, sec.len, "(new client)", err, sizeof err) != 0) {
    fprintf(stderr, "jwtkit serve: %s\n", err);
    rc = SV_EXIT_USAGE;
  } else {
    /* a ttl the keyring cuts: said now, and again when the issuer loads it */
    int from_keyring = 0;
    int64_t token_ttl = sv_keyring_token_ttl(s, &from_keyring);
    char warn[1200], where[SV_PATH_MAX + 64];
    snprintf(where, sizeof where, "%s%s", path, from_keyring ? "" : "; no keyring to read yet");
    if (sv_client_ttl_warning(&check.v[0], token_ttl, from_keyring ? "the keyring's" : "the configured", where, warn,
                              sizeof warn))
      fprintf(stderr, "jwtkit serve: warning: %s\n", warn);
    sv_clients_free(&check);
    if (sv_settings_clients_in_pg(s)) {
      /* the entry's lines after its header (and its secret_hash line) */
      const char *settings = strchr(sec.p + 1, '\n') + 1;
      if (keys == NULL) settings = strchr(settings, '\n') + 1;
      sv_pg_change ch = {SV_PG_ADD, o->name, keys == NULL ? hash : NULL, settings};
      rc = pg_change(s, &ch);
      path = k_pg_where;
    } else {
      edit e = {EDIT_ADD, o->name, &sec, NULL};
      rc = file_edit(path, &e);
    }
  }
  if (rc == SV_EXIT_OK && keys != NULL)
    fprintf(stderr,
            "jwtkit serve: client %s added to %s; it has no secret and authenticates with JWTs signed by the keys of "
            "%s (private_key_jwt).\n%s\n",
            o->name, path, keys,
            path == k_pg_where ? "The running issuers load the change by themselves."
                               : "Send SIGHUP to a running issuer to load it.");
  else if (rc == SV_EXIT_OK)
    print_secret(secret, "added to", o->name, path);
  jk_wipe(secret, sizeof secret);
  jk_buf_free(&sec);
  return rc;
}

static int client_remove(const admin_opts *o, const sv_settings *s) {
  if (sv_settings_clients_in_pg(s)) {
    sv_pg_change ch = {SV_PG_REMOVE, o->name, NULL, NULL};
    int rc = pg_change(s, &ch);
    if (rc == SV_EXIT_OK)
      fprintf(stderr, "jwtkit serve: client %s removed from the %s; the running issuers load the change.\n", o->name,
              k_pg_where);
    return rc;
  }
  edit e = {EDIT_REMOVE, o->name, NULL, NULL};
  int rc = file_edit(s->clients, &e);
  if (rc == SV_EXIT_OK)
    fprintf(stderr, "jwtkit serve: client %s removed from %s.\nSend SIGHUP to a running issuer to load the change.\n",
            o->name, s->clients);
  return rc;
}

static int client_rotate(const admin_opts *o, const sv_settings *s) {
  char secret[SV_SECRET_CHARS + 1], hash[SV_SECRET_HASH_MAX];
  int rc = new_secret(secret, hash, sizeof hash);
  if (rc != 0) return rc;
  int pg = sv_settings_clients_in_pg(s);
  if (pg) {
    sv_pg_change ch = {SV_PG_SECRET, o->name, hash, NULL};
    rc = pg_change(s, &ch);
  } else {
    edit e = {EDIT_SECRET, o->name, NULL, hash};
    rc = file_edit(s->clients, &e);
  }
  if (rc == SV_EXIT_OK) print_secret(secret, "has a new secret in", o->name, pg ? k_pg_where : s->clients);
  jk_wipe(secret, sizeof secret);
  return rc;
}

/* One client per line, never a secret. */
static void print_clients(const sv_clients *cs) {
  printf("%-24s %-8s %-6s %-6s %-36s %s\n", "NAME", "STATE", "TTL", "ALG", "AUDIENCES", "SCOPES");
  for (size_t i = 0; i < cs->n; i++) {
    const sv_client *c = &cs->v[i];
    char ttl[32] = "-", auds[1024] = "", scopes[1024] = "";
    if (c->ttl > 0) sv_fmt_duration(c->ttl, ttl, sizeof ttl);
    for (size_t a = 0; a < c->naud; a++) {
      size_t l = strlen(auds);
      snprintf(auds + l, sizeof auds - l, "%s%s", a ? "," : "", c->aud[a]);
    }
    for (size_t a = 0; a < c->nscopes; a++) {
      size_t l = strlen(scopes);
      snprintf(scopes + l, sizeof scopes - l, "%s%s", a ? " " : "", c->scopes[a]);
    }
    printf("%-24s %-8s %-6s %-6s %-36s %s\n", c->name, c->disabled ? "disabled" : "enabled", ttl,
           c->alg ? jwtkit_alg_name(c->alg) : "-", auds, scopes[0] ? scopes : "-");
  }
}

static int client_list(const sv_settings *s) {
  sv_clients cs;
  char err[1400];
  if (sv_settings_clients_in_pg(s)) {
    sv_keycfg kc;
    int rc = pg_keycfg(s, &kc);
    if (rc != 0) return rc;
    uint64_t rev = 0;
    const char *reason = NULL;
    if (sv_clients_pg_load(&kc, 0, &cs, &rev, &reason, err, sizeof err) != 0) {
      fprintf(stderr, "jwtkit serve: %s\n", err);
      sv_keycfg_free(&kc);
      return reason != NULL ? SV_EXIT_USAGE : SV_EXIT_RUNTIME;
    }
    sv_keycfg_free(&kc);
  } else if (sv_clients_load(&cs, s->clients, err, sizeof err) != 0) {
    fprintf(stderr, "jwtkit serve: %s\n", err);
    return SV_EXIT_USAGE;
  }
  print_clients(&cs);
  sv_clients_free(&cs);
  return SV_EXIT_OK;
}

int sv_client_admin_main(int argc, char **argv) {
  /* argv: serve client SUBCOMMAND ... */
  if (argc < 3 || strcmp(argv[2], "-h") == 0 || strcmp(argv[2], "--help") == 0) {
    fputs(k_client_usage, argc < 3 ? stderr : stdout);
    return argc < 3 ? SV_EXIT_USAGE : SV_EXIT_OK;
  }
  static const char *const k_cmds[] = {"add", "list", "remove", "rotate-secret"};
  int known = 0;
  for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++) known |= strcmp(argv[2], k_cmds[i]) == 0;
  if (!known) return sv_usage_error("unknown client command '%s' (add, list, remove, rotate-secret)", argv[2]);
  admin_opts o;
  int help = 0;
  int rc = parse_opts(argc, argv, &o, &help);
  if (rc != 0) return rc;
  if (help) {
    fputs(k_client_usage, stdout);
    return SV_EXIT_OK;
  }
  sv_settings *s = NULL;
  if ((rc = load_settings(&o, &s)) != 0) return rc;
  if (strcmp(o.cmd, "add") == 0) rc = client_add(&o, s);
  else if (strcmp(o.cmd, "list") == 0) rc = client_list(s);
  else if (strcmp(o.cmd, "remove") == 0) rc = client_remove(&o, s);
  else rc = client_rotate(&o, s);
  free(s);
  return rc;
}
