/* `jwtkit serve client ...`: the administration of the clients file.
 *
 *   client add NAME --audience AUD [...]   a new client with a generated
 *                                          secret, shown once, stored hashed
 *
 * The file is read, changed and written back whole (temp file, fsync,
 * rename, fsync of the directory; mode 0600) under an exclusive lock on
 * FILE.lock, so two administrators never lose each other's change.  The
 * new entry is written in the configuration dialect (values quoted where
 * they must be) and parsed again by the issuer's own parser before the
 * file is touched. */
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
    "                               [--ttl DURATION] [--alg ALG] [--clients FILE | --config FILE]\n"
    "\n"
    "Registers a client in the clients file (default ./var/clients.conf, or the `clients` of\n"
    "--config FILE): its secret is generated, printed once on stdout and stored only hashed.\n"
    "Send SIGHUP to a running issuer to load it.\n";

/* The options of `client add`. */
typedef struct add_opts {
  const char *name;
  const char *aud[SV_MAX_AUDIENCES];
  size_t naud;
  const char *scopes, *ttl, *alg, *clients, *config;
} add_opts;

static int parse_add(int argc, char **argv, add_opts *o, int *help) {
  memset(o, 0, sizeof *o);
  *help = 0;
  o->name = argv[3];
  if (!sv_client_name_ok(o->name))
    return sv_usage_error("client names are 1..%u characters of A-Z a-z 0-9 . _ ~ - ('%s')", SV_MAX_CLIENT_NAME,
                          o->name);
  for (int i = 4; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      *help = 1;
      return 0;
    }
    if (i + 1 >= argc) return sv_usage_error("option '%s' needs a value", a);
    const char *v = argv[++i];
    if (strcmp(a, "--audience") == 0) {
      if (o->naud >= SV_MAX_AUDIENCES) return sv_usage_error("at most %u audiences", SV_MAX_AUDIENCES);
      o->aud[o->naud++] = v;
    } else if (strcmp(a, "--scopes") == 0 || strcmp(a, "--scope") == 0) {
      o->scopes = v;
    } else if (strcmp(a, "--ttl") == 0) {
      o->ttl = v;
    } else if (strcmp(a, "--alg") == 0) {
      o->alg = v;
    } else if (strcmp(a, "--clients") == 0) {
      o->clients = v;
    } else if (strcmp(a, "--config") == 0) {
      o->config = v;
    } else {
      return sv_usage_error("unknown option '%s'", a);
    }
  }
  if (o->naud == 0) return sv_usage_error("--audience is required");
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
static int load_settings(const add_opts *o, sv_settings **out) {
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

/* Read-modify-write of the clients file under its lock: the entry sec is
 * appended unless the client exists. */
static int append_locked(const char *path, const char *name, const jk_buf *sec) {
  char err[1024];
  if (jk_mkdirs(path, 0700, 0) != 0) {
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
  if (code != JWTKIT_OK && code != JWTKIT_ERR_NOT_FOUND) {
    fprintf(stderr, "jwtkit serve: clients file: %s\n", ei.msg[0] ? ei.msg : jwtkit_strerror(code));
    rc = code == JWTKIT_ERR_IO || code == JWTKIT_ERR_NOMEM ? SV_EXIT_RUNTIME : SV_EXIT_USAGE;
    goto out;
  }
  if (text != NULL) {
    sv_clients cur;
    if (sv_clients_parse(&cur, text, len, path, err, sizeof err) != 0) {
      fprintf(stderr, "jwtkit serve: %s\n", err);
      rc = SV_EXIT_USAGE;
      goto out;
    }
    int exists = sv_clients_find(&cur, name, strlen(name)) != NULL;
    sv_clients_free(&cur);
    if (exists) {
      fprintf(stderr, "jwtkit serve: client %s already exists in %s\n", name, path);
      rc = SV_EXIT_USAGE;
      goto out;
    }
    jk_buf_put(&all, text, len);
    if (len > 0 && text[len - 1] != '\n') jk_buf_putc(&all, '\n');
  } else {
    jk_buf_puts(&all, "# Clients of jwtkit serve.  Secrets are stored hashed: sha256$<salt>$<HMAC-SHA256(salt, secret)>.\n");
  }
  jk_buf_put(&all, sec->p, sec->len);
  if (all.oom) {
    fprintf(stderr, "jwtkit serve: the clients file would exceed %u bytes\n", SV_MAX_CLIENTS_FILE);
    rc = SV_EXIT_USAGE;
    goto out;
  }
  memset(&ei, 0, sizeof ei);
  if (jk_write_file_atomic(path, all.p, all.len, 0600, &ei) != JWTKIT_OK) {
    fprintf(stderr, "jwtkit serve: %s\n", ei.msg);
    rc = SV_EXIT_RUNTIME;
  }
out:
  if (text != NULL) jk_free_secret(text, len + 1);
  jk_buf_free_wipe(&all);
  close(lfd); /* releases the lock */
  return rc;
}

static int client_add(int argc, char **argv) {
  add_opts o;
  int help = 0;
  int rc = parse_add(argc, argv, &o, &help);
  if (rc != 0) return rc;
  if (help) {
    fputs(k_client_usage, stdout);
    return SV_EXIT_OK;
  }
  sv_settings *s = NULL;
  if ((rc = load_settings(&o, &s)) != 0) return rc;
  const char *path = s->clients;

  /* the entry, checked by the issuer's parser */
  char secret[SV_SECRET_CHARS + 1], hash[128];
  if (sv_secret_generate(secret) != 0 || sv_secret_hash_new(secret, strlen(secret), hash, sizeof hash) != 0) {
    fprintf(stderr, "jwtkit serve: cannot generate a secret\n");
    jk_wipe(secret, sizeof secret);
    return SV_EXIT_RUNTIME;
  }
  jk_buf sec;
  jk_buf_init_max(&sec, 64 * 1024);
  jk_buf_puts(&sec, "\n[client ");
  jk_buf_puts(&sec, o.name);
  jk_buf_puts(&sec, "]\n");
  put_line(&sec, "secret_hash", hash);
  const char *bad = NULL;
  for (size_t i = 0; i < o.naud && bad == NULL; i++)
    if (put_line(&sec, "audience", o.aud[i]) != 0) bad = o.aud[i];
  if (bad == NULL && o.scopes != NULL && put_line(&sec, "scopes", o.scopes) != 0) bad = o.scopes;
  if (bad == NULL && o.ttl != NULL && put_line(&sec, "ttl", o.ttl) != 0) bad = o.ttl;
  if (bad == NULL && o.alg != NULL && put_line(&sec, "alg", o.alg) != 0) bad = o.alg;
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
    char warn[1200];
    char where[SV_PATH_MAX + 64];
    snprintf(where, sizeof where, "%s%s", path, from_keyring ? "" : "; no keyring to read yet");
    if (sv_client_ttl_warning(&check.v[0], token_ttl, from_keyring ? "the keyring's" : "the configured", where, warn,
                              sizeof warn))
      fprintf(stderr, "jwtkit serve: warning: %s\n", warn);
    sv_clients_free(&check);
    rc = append_locked(path, o.name, &sec);
  }
  if (rc == SV_EXIT_OK) {
    printf("%s\n", secret);
    fflush(stdout);
    fprintf(stderr,
            "jwtkit serve: client %s added to %s; its secret (above) is shown once and stored only hashed.\n"
            "Send SIGHUP to a running issuer to load it.\n",
            o.name, path);
  }
  jk_wipe(secret, sizeof secret);
  jk_buf_free(&sec);
  free(s);
  return rc;
}

int sv_client_admin_main(int argc, char **argv) {
  /* argv: serve client SUBCOMMAND ... */
  if (argc >= 4 && strcmp(argv[2], "add") == 0) return client_add(argc, argv);
  if (argc >= 3 && (strcmp(argv[2], "-h") == 0 || strcmp(argv[2], "--help") == 0)) {
    fputs(k_client_usage, stdout);
    return SV_EXIT_OK;
  }
  fputs(k_client_usage, stderr);
  return SV_EXIT_USAGE;
}
