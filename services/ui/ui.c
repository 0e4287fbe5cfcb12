/*
 * jwtkit ui [--listen ADDR:PORT] [--keyring DIR|URL] [--open] [--log-level LEVEL]
 *
 * Binds (loopback and a free port by default), makes the per-start secret
 * (32 bytes from the CSPRNG, base64url), prints the URL with it as the
 * first line on stdout, serves until SIGINT or SIGTERM.  --open hands the
 * URL to xdg-open when a display is there -- through a 0600 file that
 * redirects to it, so the secret never appears in a process's arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>

#include "codec/b64url.h"
#include "common/log.h"
#include "core/alloc.h"
#include "crypto/seal.h"
#include "fetch.h"
#include "jwtkit_ui.h"
#include "ui_internal.h"

extern char **environ;

#define PROG "jwtkit ui"

static const char k_usage[] =
    "Usage: jwtkit ui [--listen ADDR:PORT] [--keyring DIR|URL] [--open] [--log-level LEVEL]\n"
    "\n"
    "A token workbench in the browser, on this machine only: decode, verify,\n"
    "generate, PEM check, rotation plan and JWK Set viewer, every operation done\n"
    "by libjwtkit.  The first line on stdout is the URL to open; it carries a\n"
    "secret made at start, without which the page's API answers 403.\n"
    "\n"
    "Options:\n"
    "  --listen ADDR:PORT    where to listen (default 127.0.0.1:0: loopback, a free\n"
    "                        port); another address is served with a warning\n"
    "  --keyring DIR|URL     a keyring whose rotation plan the page draws (a\n"
    "                        PostgreSQL keyring reads its KEKs from $JWTKIT_KEK)\n"
    "  --open                open the URL with xdg-open when $DISPLAY or\n"
    "                        $WAYLAND_DISPLAY is set\n"
    "  --log-level LEVEL     debug, info (default), warn or error\n"
    "  -h, --help            show this help\n"
    "\n"
    "Nothing is stored: pasted tokens and keys live in one request and are wiped.\n"
    "docs/ui.md says what the page promises about privacy.\n";

static int usage(const char *fmt, ...) JK_PRINTF(1, 2);
static int usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, PROG ": ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\nTry 'jwtkit ui --help'.\n");
  va_end(ap);
  return 2;
}

typedef struct opts {
  const char *listen, *keyring, *level;
  int open;
} opts;

static int parse(int argc, char **argv, opts *o, int *help) {
  *help = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = strcmp(a, "--listen") == 0    ? &o->listen
                        : strcmp(a, "--keyring") == 0 ? &o->keyring
                        : strcmp(a, "--log-level") == 0 ? &o->level
                                                          : NULL;
    if (slot != NULL) {
      if (*slot != NULL) return usage("option %s given twice", a);
      if (i + 1 >= argc) return usage("option %s needs a value", a);
      *slot = argv[++i];
    } else if (strcmp(a, "--open") == 0) {
      o->open = 1;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      *help = 1;
      return 0;
    } else if (strcmp(a, "--") == 0) {
      if (i + 1 < argc) return usage("unexpected argument '%s'", argv[i + 1]);
    } else {
      return a[0] == '-' ? usage("unknown option %s", a) : usage("unexpected argument '%s'", a);
    }
  }
  return 0;
}

/* ------------------------------------------------------------ start-up */

static int bind_listen(const jk_listen *l, unsigned *port, char *err, size_t cap) {
  int fd = socket(l->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, cap, "socket: %s", strerror(errno));
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (l->family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (bind(fd, (const struct sockaddr *)&l->ss, l->len) != 0 || listen(fd, 64) != 0 ||
      getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
    snprintf(err, cap, "cannot listen on %s: %s", l->text, strerror(errno));
    close(fd);
    return -1;
  }
  *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                         : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

/* --open: a 0600 file that redirects to the URL, given to xdg-open (no
 * shell, and the secret is not in its arguments).  The path is kept for
 * removal at exit. */
static void open_browser(const char *url, char *file, size_t cap) {
  file[0] = '\0';
  if (getenv("DISPLAY") == NULL && getenv("WAYLAND_DISPLAY") == NULL) {
    fprintf(stderr, PROG ": --open: no display ($DISPLAY and $WAYLAND_DISPLAY are unset); open the URL yourself\n");
    return;
  }
  const char *dir = getenv("XDG_RUNTIME_DIR");
  if (dir == NULL || *dir == '\0') dir = getenv("TMPDIR");
  if (dir == NULL || *dir == '\0') dir = "/tmp";
  snprintf(file, cap, "%s/jwtkit-ui-%ld-open.html", dir, (long)getpid());
  int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    fprintf(stderr, PROG ": --open: cannot write %s: %s; open the URL yourself\n", file, strerror(errno));
    file[0] = '\0';
    return;
  }
  char html[512];
  int n = snprintf(html, sizeof html,
                   "<!DOCTYPE html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url=%s\">"
                   "<title>jwtkit ui</title><p><a href=\"%s\">jwtkit ui</a></p>\n",
                   url, url);
  int ok = n > 0 && (size_t)n < sizeof html && write(fd, html, (size_t)n) == n;
  jk_wipe(html, sizeof html);
  close(fd);
  if (!ok) {
    fprintf(stderr, PROG ": --open: cannot write %s; open the URL yourself\n", file);
    return;
  }
  signal(SIGCHLD, SIG_IGN); /* xdg-open is not waited for */
  pid_t pid;
  char *const args[] = {(char *)"xdg-open", file, NULL};
  int rc = posix_spawnp(&pid, "xdg-open", NULL, NULL, args, environ);
  if (rc != 0) fprintf(stderr, PROG ": --open: cannot run xdg-open: %s; open the URL yourself\n", strerror(rc));
}

/* The keyring given with --keyring is read once now, so a wrong location
 * is a start-up error rather than a message in the page. */
static int check_keyring(ui_app *app, unsigned char (**keks)[32]) {
  const char *env = getenv("JWTKIT_KEK");
  if (jwtkit_keyring_location_is_postgres(app->keyring) && env != NULL && *env != '\0') {
    jwtkit_errinfo info = {0};
    if (jwtkit_kek_parse(env, strlen(env), keks, &app->nkeks, &info) != JWTKIT_OK) {
      fprintf(stderr, PROG ": $JWTKIT_KEK: %s\n", info.msg[0] ? info.msg : "not a list of KEKs");
      return 2;
    }
    app->keks = (const unsigned char (*)[32]) * keks;
  }
  jwtkit_keyring_secrets sec = {.keks = app->keks, .nkeks = app->nkeks};
  jwtkit_keyring *kr = NULL;
  jwtkit_errinfo info = {0};
  jwtkit_err rc = jwtkit_keyring_open_ex(&kr, app->keyring, &sec, &info);
  jwtkit_keyring_free(kr);
  if (rc == JWTKIT_OK) return 0;
  char where[512], msg[300];
  jwtkit_keyring_location_redact(app->keyring, where, sizeof where);
  ui_errtext(rc, &info, msg, sizeof msg);
  fprintf(stderr, PROG ": --keyring %s: %s\n", where, msg);
  return 2;
}

static int serve(const opts *o) {
  jk_listen l;
  const char *why = NULL;
  if (jk_parse_listen(o->listen ? o->listen : "127.0.0.1:0", 1, &l, &why) != 0) {
    fprintf(stderr, PROG ": bad --listen \"%s\": %s (%s)\nTry 'jwtkit ui --help'.\n", o->listen, why,
            JK_LISTEN_HELP);
    return 2;
  }
  ui_app *app = calloc(1, sizeof *app);
  unsigned char (*keks)[32] = NULL;
  if (app == NULL) return 3;
  if (jk_fetch_global_init() != 0) {
    fprintf(stderr, PROG ": cannot initialise libcurl\n");
    free(app);
    return 3;
  }
  app->fetch = ui_fetch_jwks;
  app->keyring = o->keyring;
  int rc = o->keyring != NULL ? check_keyring(app, &keks) : 0;
  char err[300], url[256], file[4200] = "";
  unsigned port = 0;
  int fd = -1;
  ui_server *srv = NULL;
  unsigned char rnd[32];
  if (rc == 0 && jk_random(rnd, sizeof rnd) != 0) {
    fprintf(stderr, PROG ": no random bytes for the secret\n");
    rc = 3;
  }
  if (rc == 0) {
    app->secret[jk_b64url_encode(app->secret, rnd, sizeof rnd)] = '\0';
    jk_wipe(rnd, sizeof rnd);
    if ((fd = bind_listen(&l, &port, err, sizeof err)) < 0) {
      fprintf(stderr, PROG ": %s\n", err);
      rc = 3;
    }
  }
  if (rc == 0) {
    ui_app_hosts(app, &l, port);
    if (ui_http_start(&srv, app, fd, l.family == AF_INET6, err, sizeof err) != 0) {
      fprintf(stderr, PROG ": %s\n", err);
      close(fd);
      rc = 3;
    }
  }
  if (rc == 0) {
    if (!app->loopback)
      fprintf(stderr,
              PROG ": warning: listening on %s, not on loopback: anyone who can reach it and learns the URL can "
                   "use the workbench, over plain HTTP\n",
              l.text);
    ui_app_url(app, url, sizeof url);
    printf("%s\n", url);
    fflush(stdout);
    jk_logline L;
    if (jk_log_begin(&L, JK_LOG_INFO, "ui_started")) {
      jk_log_str(&L, "listen", app->hosts[0]);
      if (o->keyring != NULL) {
        char where[512];
        jwtkit_keyring_location_redact(o->keyring, where, sizeof where);
        jk_log_str(&L, "keyring", where);
      }
      jk_log_str(&L, "msg", "open the URL printed on stdout; Ctrl-C stops");
      jk_log_end(&L);
    }
    if (o->open) open_browser(url, file, sizeof file);
    jk_wipe(url, sizeof url);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    jk_log(JK_LOG_INFO, "ui_stopping", "signal %d", sig);
    ui_http_stop(srv);
  }
  if (file[0] != '\0') unlink(file);
  jk_wipe(app->secret, sizeof app->secret);
  if (keks != NULL) jwtkit_kek_free(keks, app->nkeks);
  free(app);
  jk_fetch_global_cleanup();
  return rc;
}

int jwtkit_ui_main(int argc, char **argv) {
  opts o = {0};
  int help;
  int rc = parse(argc, argv, &o, &help);
  if (rc != 0) return rc;
  if (help) {
    fputs(k_usage, stdout);
    return 0;
  }
  if (o.level != NULL) {
    jk_log_level lv;
    if (jk_log_parse_level(o.level, &lv) != 0) return usage("bad --log-level \"%s\": debug, info, warn or error", o.level);
    jk_log_set_level(lv);
  }
  /* the signals are taken by sigwait: blocked before any thread starts */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  return serve(&o);
}
