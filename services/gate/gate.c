/*
 * jwtkit_gate_main: options, start-up, signals (SIGHUP reload, SIGTERM and
 * SIGINT graceful stop) and the main thread's housekeeping: states whose
 * last reference went are destroyed here, because destroying one stops
 * and joins fetcher threads.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "fetch.h"
#include "gate_internal.h"
#include "jwtkit_gate.h"

typedef struct gate_opts {
  const char *prog, *config, *listen, *level;
  int check, fetch;
} gate_opts;

static void usage(FILE *f, const char *prog) {
  fprintf(f,
          "Usage: %s --config FILE [--listen ADDR:PORT] [--log-level LEVEL] [--check [--fetch]]\n"
          "\n"
          "Token verifier for nginx auth_request: GET /auth answers 204 with the\n"
          "configured claim headers, or 401 (WWW-Authenticate: Bearer ...).\n"
          "Also serves /metrics (Prometheus) and /healthz.\n"
          "\n"
          "Options:\n"
          "  --config FILE        configuration (required; see docs/gateway.md)\n"
          "  --listen ADDR:PORT   address to listen on (default " GATE_DEFAULT_LISTEN
          ";\n"
          "                       [::1]:PORT for IPv6, localhost:PORT); overrides the config\n"
          "  --log-level LEVEL    debug, info (default), warn or error\n"
          "  --check              load the configuration and its keys, then exit\n"
          "  --fetch              with --check: also fetch every JWK Set once and report\n"
          "                       per route (reachable, keys, kids for its algs)\n"
          "  -h, --help           show this help\n"
          "\n"
          "Signals: SIGHUP reloads the configuration (routes, policies, keys;\n"
          "not the listen address or thread count), SIGTERM/SIGINT stop gracefully.\n"
          "Logs: JSON lines on stderr.  Exit status: 0 after a clean stop, 1 a JWK\n"
          "Set failed (--check --fetch), 2 usage or configuration error, 3 runtime\n"
          "error.\n",
          prog);
}

/* -1: go on; else the exit status. */
static int parse_args(int argc, char **argv, gate_opts *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **dst = NULL;
    const char *name = NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout, o->prog);
      return 0;
    }
    if (strcmp(a, "--") == 0) { /* ends the options; the gate takes no arguments */
      if (i + 1 < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\nTry '%s --help'.\n", o->prog, argv[i + 1], o->prog);
        return 2;
      }
      break;
    }
    if (strcmp(a, "--check") == 0) {
      o->check = 1;
      continue;
    }
    if (strcmp(a, "--fetch") == 0) {
      o->fetch = 1;
      continue;
    }
    if (strncmp(a, "--config", 8) == 0) dst = &o->config, name = "--config";
    else if (strncmp(a, "--listen", 8) == 0) dst = &o->listen, name = "--listen";
    else if (strncmp(a, "--log-level", 11) == 0) dst = &o->level, name = "--log-level";
    size_t nl = name ? strlen(name) : 0;
    if (dst == NULL || (a[nl] != '\0' && a[nl] != '=')) {
      fprintf(stderr, "%s: unknown option '%s'\nTry '%s --help'.\n", o->prog, a, o->prog);
      return 2;
    }
    if (*dst != NULL) {
      fprintf(stderr, "%s: %s given twice\n", o->prog, name);
      return 2;
    }
    if (a[nl] == '=') {
      *dst = a + nl + 1;
    } else {
      if (i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", o->prog, name);
        return 2;
      }
      *dst = argv[++i];
    }
  }
  if (o->config == NULL) {
    fprintf(stderr, "%s: --config FILE is required\nTry '%s --help'.\n", o->prog, o->prog);
    return 2;
  }
  if (o->fetch && !o->check) {
    fprintf(stderr, "%s: --fetch goes with --check (the running gate fetches by itself)\n", o->prog);
    return 2;
  }
  jk_log_level lvl = JK_LOG_INFO;
  if (o->level != NULL && jk_log_parse_level(o->level, &lvl) != 0) {
    fprintf(stderr, "%s: --log-level: expected debug, info, warn or error\n", o->prog);
    return 2;
  }
  const char *why = NULL;
  jk_listen l;
  if (o->listen != NULL && jk_parse_listen(o->listen, 0, &l, &why) != 0) {
    fprintf(stderr, "%s: --listen %s: %s (%s)\n", o->prog, o->listen, why, JK_LISTEN_HELP);
    return 2;
  }
  jk_log_set_level(lvl);
  return -1;
}

/* --------------------------------------------------------------- states */

/* States whose last reference went, destroyed by the main thread. */
static pthread_mutex_t g_reap_mu = PTHREAD_MUTEX_INITIALIZER;
static gw_state **g_reap;
static size_t g_nreap, g_reap_cap;

static void retire(gw_state *st) {
  pthread_mutex_lock(&g_reap_mu);
  if (g_nreap == g_reap_cap) {
    size_t nc = g_reap_cap ? g_reap_cap * 2 : 8;
    gw_state **n = realloc(g_reap, nc * sizeof *n);
    if (n != NULL) {
      g_reap = n;
      g_reap_cap = nc;
    }
  }
  int queued = g_nreap < g_reap_cap;
  if (queued) g_reap[g_nreap++] = st;
  pthread_mutex_unlock(&g_reap_mu);
  if (!queued) gw_state_destroy(st); /* out of memory: here and now rather than never */
}

static void reap(void) {
  for (;;) {
    pthread_mutex_lock(&g_reap_mu);
    gw_state *st = g_nreap ? g_reap[--g_nreap] : NULL;
    pthread_mutex_unlock(&g_reap_mu);
    if (st == NULL) break;
    jk_log(JK_LOG_DEBUG, "state_freed", "configuration generation %llu released",
           (unsigned long long)gw_state_generation(st));
    gw_state_destroy(st);
  }
  pthread_mutex_lock(&g_reap_mu);
  free(g_reap);
  g_reap = NULL;
  g_nreap = g_reap_cap = 0;
  pthread_mutex_unlock(&g_reap_mu);
}

/* Build a state from cfg's core settings (handed over on success). */
static gw_state *build(gate_config *cfg, const gw_state *prev, uint64_t generation, int fetch, char *err, size_t cap) {
  gw_transport t = {0};
  gate_fetcher_transport(&t);
  gate_http_transport(&t);
  gw_build b = {.prev = prev, .generation = generation, .transport = fetch ? &t : NULL, .retire = retire};
  gw_state *st = NULL;
  if (gw_state_build(cfg->core, &b, &st, err, cap) != 0) return NULL;
  cfg->core = NULL; /* the state's now */
  return st;
}

static void log_error(const char *event, const char *err) {
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_ERROR, event)) {
    jk_log_str(&L, "msg", err);
    jk_log_end(&L);
  }
}

static void log_routes(gw_state *st) {
  const gw_config *c = gw_state_config(st);
  for (size_t i = 0; i < c->nroutes; i++) {
    gw_route_info ri;
    gw_state_route_info(st, i, &ri);
    const gw_route_cfg *rc = ri.cfg;
    jk_logline L;
    if (!jk_log_begin(&L, JK_LOG_INFO, "route")) continue;
    jk_log_str(&L, "name", rc->name);
    for (size_t k = 0; k < rc->hosts.n && k < 4; k++) jk_log_str(&L, "match_host", rc->hosts.v[k]);
    for (size_t k = 0; k < rc->prefixes.n && k < 4; k++) jk_log_str(&L, "match_path_prefix", rc->prefixes.v[k]);
    jk_log_str(&L, "jwks_url", rc->jwks_url);
    if (rc->issuer_discovery) jk_log_bool(&L, "issuer_discovery", 1);
    jk_log_uint(&L, "static_keys", ri.static_keys);
    if (rc->nheaders > 0) jk_log_str(&L, "claim_header_failure", rc->claim_header_allow ? "allow" : "deny");
    jk_log_bool(&L, "strip_authorization", rc->strip_authorization);
    char algs[160] = "";
    for (size_t k = 0; k < rc->nalgs; k++) {
      size_t n = strlen(algs);
      snprintf(algs + n, sizeof algs - n, "%s%s", k ? "," : "", jwtkit_alg_name(rc->algs[k]));
    }
    jk_log_str(&L, "algs", algs);
    if (ri.legacy) {
      char when[32];
      jk_format_rfc3339(ri.legacy_deadline, when, sizeof when);
      jk_log_str(&L, "legacy_hs256_until", when); /* never the secret or its file contents */
      jk_log_bool(&L, "legacy_deadline_passed", jk_now() >= ri.legacy_deadline);
    }
    jk_log_end(&L);
  }
}

/* -------------------------------------------------------------- running */

typedef struct gate_run {
  const gate_opts *o;
  gate_config *cfg; /* the server's settings in use (core handed to the state) */
  gate_app *app;
  sigset_t sigs;
} gate_run;

static int settings_differ(const gate_config *a, const gate_config *b) {
  return a->has_listen != b->has_listen || (a->has_listen && strcmp(a->listen.text, b->listen.text) != 0) ||
         a->threads != b->threads || a->connection_limit != b->connection_limit ||
         a->idle_timeout != b->idle_timeout || a->header_timeout != b->header_timeout;
}

/* SIGHUP: a whole new state, or the running one kept. */
static void reload(gate_run *g) {
  char err[1024];
  gate_config *nc = NULL;
  gw_state *cur = gate_http_state(g->app);
  gw_state *ns = NULL;
  if (gate_config_load(g->o->config, &nc, err, sizeof err) != 0 ||
      (ns = build(nc, cur, gw_state_generation(cur) + 1, 1, err, sizeof err)) == NULL) {
    gate_config_free(nc);
    atomic_fetch_add(&g_gate.reloads_failed, 1);
    log_error("reload_failed", err);
    jk_log(JK_LOG_WARN, "reload_failed", "keeping configuration generation %llu",
           (unsigned long long)gw_state_generation(cur));
    gw_state_release(cur);
    return;
  }
  if (settings_differ(nc, g->cfg))
    jk_log(JK_LOG_WARN, "reload_partial",
           "listen, threads, connection_limit, idle_timeout and header_timeout changes need a restart; the rest is "
           "applied");
  if (g->o->level == NULL) jk_log_set_level(nc->has_log_level ? nc->log_level : JK_LOG_INFO);
  gate_http_swap(g->app, ns);
  atomic_fetch_add(&g_gate.reloads_ok, 1);
  gw_state_release(cur);
  cur = gate_http_state(g->app);
  jk_log(JK_LOG_INFO, "reloaded", "configuration generation %llu with %zu route(s)",
         (unsigned long long)gw_state_generation(cur), gw_state_config(cur)->nroutes);
  log_routes(cur);
  for (size_t i = 0; i < gw_state_nsources(cur); i++) gw_source_warn_max_age(gw_state_source(cur, i));
  gw_state_release(cur);
  /* the server's settings stay those it started with: a restart applies
   * the new ones */
  gate_config_free(nc);
}

/* Until SIGTERM or SIGINT. */
static void wait_signals(gate_run *g) {
  for (;;) {
    struct timespec tmo = {1, 0};
    siginfo_t si;
    int sig = sigtimedwait(&g->sigs, &si, &tmo);
    if (sig < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        reap();
        continue;
      }
      jk_log(JK_LOG_ERROR, "signal_wait_failed", "%s", strerror(errno));
      return;
    }
    if (sig == SIGHUP) {
      reload(g);
      reap();
      continue;
    }
    jk_log(JK_LOG_INFO, "shutdown", "%s received: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return;
  }
}

/* Graceful stop: no new connections; parked requests woken (answered with
 * what is there); the open ones finish; then the threads stop. */
static void stop(gate_run *g) {
  gate_http_quiesce(g->app);
  gw_state *cur = gate_http_state(g->app);
  int64_t limit = gw_state_config(cur)->jwks.timeout_ms + 2000;
  gw_state_stop_sources(cur);
  gw_state_release(cur);
  int64_t t0 = jk_mono_ms();
  while (atomic_load(&g_gate.suspended) > 0 && jk_mono_ms() - t0 < limit) {
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
  }
  struct timespec grace = {0, 100 * 1000000};
  nanosleep(&grace, NULL);
  gate_http_stop(g->app);
  gate_http_free(g->app);
  g->app = NULL;
  reap();
  jk_log(JK_LOG_INFO, "stopped", "bye");
}

/* Listen and serve until a stop signal; the exit status. */
static int serve(gate_run *g, gw_state *st) {
  jk_listen l;
  if (g->o->listen != NULL)
    jk_parse_listen(g->o->listen, 0, &l, NULL); /* checked in parse_args */
  else if (g->cfg->has_listen)
    l = g->cfg->listen;
  else
    jk_parse_listen(GATE_DEFAULT_LISTEN, 0, &l, NULL);
  log_routes(st);
  char err[1024];
  unsigned port = 0;
  int64_t cache = (int64_t)gw_state_config(st)->token_cache;
  size_t nroutes = gw_state_config(st)->nroutes;
  if ((g->app = gate_http_new(st)) == NULL) {
    gw_state_destroy(st);
    return 3;
  }
  if (gate_http_start(g->app, g->cfg, &l, &port, err, sizeof err) != 0) {
    jk_logline L;
    if (jk_log_begin(&L, JK_LOG_ERROR, "start_failed")) {
      jk_log_str(&L, "listen", l.text);
      jk_log_str(&L, "msg", err);
      jk_log_end(&L);
    }
    gw_state_stop_sources(st);
    gate_http_free(g->app);
    reap();
    return 3;
  }
  jk_logline L;
  if (jk_log_begin(&L, JK_LOG_INFO, "listening")) {
    jk_log_str(&L, "listen", l.text);
    jk_log_uint(&L, "port", port);
    jk_log_uint(&L, "routes", nroutes);
    jk_log_int(&L, "token_cache", cache);
    jk_log_str(&L, "version", jwtkit_version());
    jk_log_int(&L, "pid", (int64_t)getpid());
    jk_log_end(&L);
  }
  wait_signals(g);
  stop(g);
  return 0;
}

/* Distinct JWK Set URLs (two routes may read one set as two sources). */
static size_t count_urls(gw_state *st) {
  size_t ns = gw_state_nsources(st), n = 0;
  for (size_t i = 0; i < ns; i++) {
    const char *u = gw_source_def(gw_state_source(st, i))->url;
    size_t j = 0;
    while (j < i && strcmp(gw_source_def(gw_state_source(st, j))->url, u) != 0) j++;
    n += j == i;
  }
  return n;
}

/* Load, check or serve; the exit status. */
static int run(gate_run *g) {
  char err[1024];
  if (gate_config_load(g->o->config, &g->cfg, err, sizeof err) != 0) {
    log_error("config_error", err);
    return 2;
  }
  if (g->o->level == NULL && g->cfg->has_log_level) jk_log_set_level(g->cfg->log_level);
  gw_state *st = build(g->cfg, NULL, 1, !g->o->check, err, sizeof err);
  if (st == NULL) {
    log_error("config_error", err);
    return 2;
  }
  if (g->o->check) {
    size_t n = gw_state_config(st)->nroutes, ns = count_urls(st);
    printf("%s: configuration OK (%zu route%s)\n", g->o->config, n, n == 1 ? "" : "s");
    int rc = 0;
    if (!g->o->fetch && ns > 0) {
      printf("%s: %zu remote JWK Set%s not fetched (--check --fetch fetches them)\n", g->o->config, ns,
             ns == 1 ? "" : "s");
    } else if (g->o->fetch) {
      size_t failed = gate_check_fetch(st, stdout);
      if (failed > 0) {
        printf("%s: %zu route%s failed: its JWK Set cannot be used\n", g->o->config, failed, failed == 1 ? "" : "s");
        rc = 1;
      } else {
        printf("%s: every JWK Set fetched (%zu)\n", g->o->config, ns);
      }
    }
    fflush(stdout);
    gw_state_destroy(st);
    return rc;
  }
  return serve(g, st);
}

int jwtkit_gate_main(int argc, char **argv) {
  gate_opts o = {.prog = argc > 0 && argv[0] ? argv[0] : "gate"};
  if (strcmp(o.prog, "gate") == 0) o.prog = "jwtkit gate"; /* run as the CLI subcommand */
  int rc = parse_args(argc, argv, &o);
  if (rc >= 0) return rc;
  gw_metrics_init();
  g_gate.started_at = jk_now();

  /* signals are taken synchronously by this thread; every thread started
   * later inherits the mask */
  gate_run g = {.o = &o};
  sigemptyset(&g.sigs);
  sigaddset(&g.sigs, SIGTERM);
  sigaddset(&g.sigs, SIGINT);
  sigaddset(&g.sigs, SIGHUP);
  sigset_t oldmask;
  pthread_sigmask(SIG_BLOCK, &g.sigs, &oldmask);
  struct sigaction ign;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, NULL);

  if (jk_fetch_global_init() != 0) {
    jk_log(JK_LOG_ERROR, "start_failed", "libcurl initialisation failed");
    rc = 3;
  } else {
    rc = run(&g);
    jk_fetch_global_cleanup();
  }
  gate_config_free(g.cfg);
  pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
  return rc;
}
