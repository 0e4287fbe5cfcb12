/*
 * jwtkit_gate_main: options, start-up, signals (SIGHUP reload, SIGTERM and
 * SIGINT graceful shutdown) and the main thread's housekeeping.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "jwtkit_gate.h"
#include "gate_internal.h"

#define DEFAULT_LISTEN "127.0.0.1:8081"

static void usage(FILE *f, const char *prog) {
  fprintf(f,
          "Usage: %s --config FILE [--listen ADDR:PORT] [--log-level LEVEL] [--check]\n"
          "\n"
          "Token verifier for nginx auth_request: GET /auth answers 204 with the\n"
          "configured claim headers, or 401 (WWW-Authenticate: Bearer ...).\n"
          "Also serves /metrics (Prometheus) and /healthz.\n"
          "\n"
          "Options:\n"
          "  --config FILE        configuration (required; see docs/gateway.md)\n"
          "  --listen ADDR:PORT   address to listen on (default " DEFAULT_LISTEN
          ";\n"
          "                       [::1]:PORT for IPv6); overrides the config\n"
          "  --log-level LEVEL    debug, info (default), warn or error\n"
          "  --check              load the configuration and its keys, then exit\n"
          "  -h, --help           show this help\n"
          "\n"
          "Signals: SIGHUP reloads the configuration (routes, policies, keys;\n"
          "not the listen address or thread count), SIGTERM/SIGINT stop gracefully.\n"
          "Logs: JSON lines on stderr.  Exit status: 0 after a clean stop, 2 usage\n"
          "or configuration error, 3 runtime error.\n",
          prog);
}

static int parse_listen(const char *s, struct sockaddr_storage *ss, int *v6) {
  memset(ss, 0, sizeof *ss);
  const char *colon;
  char host[64];
  if (s[0] == '[') {
    const char *rb = strchr(s, ']');
    if (rb == NULL || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof host) return -1;
    memcpy(host, s + 1, (size_t)(rb - s - 1));
    host[rb - s - 1] = '\0';
    colon = rb + 1;
    *v6 = 1;
  } else {
    colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof host) return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *v6 = 0;
  }
  uint64_t port;
  if (gate_parse_uint(colon + 1, 0, 65535, &port) != 0) return -1;
  if (*v6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return -1;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return -1;
  }
  return 0;
}

static void log_config_error(const char *event, const char *err) {
  gate_logline L;
  if (gl_begin(&L, GL_ERROR, event)) {
    gl_str(&L, "msg", err);
    gl_end(&L);
  }
}

static void log_routes(const gate_state *st) {
  for (size_t i = 0; i < st->nroutes; i++) {
    const gate_route *r = &st->routes[i];
    gate_logline L;
    if (!gl_begin(&L, GL_INFO, "route")) continue;
    gl_str(&L, "name", r->cfg->name);
    for (size_t k = 0; k < r->cfg->hosts.n && k < 4; k++) gl_str(&L, "match_host", r->cfg->hosts.v[k]);
    for (size_t k = 0; k < r->cfg->prefixes.n && k < 4; k++) gl_str(&L, "match_path_prefix", r->cfg->prefixes.v[k]);
    if (r->cfg->jwks_url) gl_str(&L, "jwks_url", r->cfg->jwks_url);
    gl_int(&L, "static_keys", (int64_t)r->nstatic);
    if (r->cfg->nheaders > 0) gl_str(&L, "claim_header_failure", r->cfg->claim_header_allow ? "allow" : "deny");
    char algs[160] = "";
    for (size_t k = 0; k < r->cfg->nalgs; k++) {
      size_t n = strlen(algs);
      snprintf(algs + n, sizeof algs - n, "%s%s", k ? "," : "", jwtkit_alg_name(r->cfg->algs[k]));
    }
    gl_str(&L, "algs", algs);
    if (r->legacy) {
      char when[32];
      gate_fmt_rfc3339(r->legacy_deadline, when, sizeof when);
      gl_str(&L, "legacy_hs256_until", when); /* never the secret or its file contents */
      gl_bool(&L, "legacy_deadline_passed", gate_now() >= r->legacy_deadline);
    }
    gl_end(&L);
  }
}

int jwtkit_gate_main(int argc, char **argv) {
  const char *prog = argc > 0 && argv[0] ? argv[0] : "gate";
  if (strcmp(prog, "gate") == 0) prog = "jwtkit gate"; /* run as the CLI subcommand */
  const char *config = NULL, *listen = NULL, *level = NULL;
  int check = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **dst = NULL;
    const char *name = NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout, prog);
      return 0;
    }
    if (strcmp(a, "--") == 0) { /* ends the options; the gate takes no arguments */
      if (i + 1 < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\nTry '%s --help'.\n", prog, argv[i + 1], prog);
        return 2;
      }
      break;
    }
    if (strcmp(a, "--check") == 0) {
      check = 1;
      continue;
    }
    if (strncmp(a, "--config", 8) == 0) dst = &config, name = "--config";
    else if (strncmp(a, "--listen", 8) == 0) dst = &listen, name = "--listen";
    else if (strncmp(a, "--log-level", 11) == 0) dst = &level, name = "--log-level";
    size_t nl = name ? strlen(name) : 0;
    if (dst == NULL || (a[nl] != '\0' && a[nl] != '=')) {
      fprintf(stderr, "%s: unknown option '%s'\nTry '%s --help'.\n", prog, a, prog);
      return 2;
    }
    if (*dst != NULL) {
      fprintf(stderr, "%s: %s given twice\n", prog, name);
      return 2;
    }
    if (a[nl] == '=') {
      *dst = a + nl + 1;
    } else {
      if (i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", prog, name);
        return 2;
      }
      *dst = argv[++i];
    }
  }
  if (config == NULL) {
    fprintf(stderr, "%s: --config FILE is required\nTry '%s --help'.\n", prog, prog);
    return 2;
  }
  gate_level lvl = GL_INFO;
  if (level != NULL && gate_log_parse_level(level, &lvl) != 0) {
    fprintf(stderr, "%s: --log-level: expected debug, info, warn or error\n", prog);
    return 2;
  }
  gate_log_set_level(lvl);
  gate_metrics_init();

  /* signals are taken synchronously by this thread; every thread started
   * later inherits the mask */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  sigset_t oldmask;
  pthread_sigmask(SIG_BLOCK, &sigs, &oldmask);
  struct sigaction ign;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, NULL);

  int rc = 0;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    gate_log(GL_ERROR, "start_failed", "libcurl initialisation failed");
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    return 3;
  }
  char err[1024];
  gate_config *cfg = NULL;
  gate_state *st = NULL;
  gate_app *app = NULL;
  if (gate_config_load(config, &cfg, err, sizeof err) != 0) {
    log_config_error("config_error", err);
    rc = 2;
    goto done;
  }
  if (level == NULL && cfg->has_log_level) gate_log_set_level(cfg->log_level);
  const char *addr = listen ? listen : cfg->listen ? cfg->listen : DEFAULT_LISTEN;
  struct sockaddr_storage ss;
  int v6;
  if (parse_listen(addr, &ss, &v6) != 0) {
    snprintf(err, sizeof err, "bad listen address \"%s\" (expected IPv4:PORT or [IPv6]:PORT)", addr);
    log_config_error("config_error", err);
    gate_config_free(cfg);
    rc = 2;
    goto done;
  }
  if (gate_state_build(cfg, NULL, 1, !check, &st, err, sizeof err) != 0) {
    log_config_error("config_error", err);
    gate_config_free(cfg);
    rc = 2;
    goto done;
  }
  if (check) {
    printf("%s: configuration OK (%zu route%s)\n", config, st->nroutes, st->nroutes == 1 ? "" : "s");
    gate_state_destroy(st);
    goto done;
  }
  log_routes(st);
  app = gate_http_new(st);
  if (app == NULL) {
    gate_state_destroy(st);
    rc = 3;
    goto done;
  }
  unsigned port = 0;
  if (gate_http_start(app, (struct sockaddr *)&ss, v6, st->cfg, &port, err, sizeof err) != 0) {
    gate_logline L;
    if (gl_begin(&L, GL_ERROR, "start_failed")) {
      gl_str(&L, "listen", addr);
      gl_str(&L, "msg", err);
      gl_end(&L);
    }
    gate_state_stop_sources(st);
    gate_http_free(app);
    gate_state_reap();
    rc = 3;
    goto done;
  }
  {
    gate_logline L;
    if (gl_begin(&L, GL_INFO, "listening")) {
      gl_str(&L, "listen", addr);
      gl_int(&L, "port", port);
      gl_int(&L, "routes", (int64_t)st->nroutes);
      gl_int(&L, "token_cache", (int64_t)st->cfg->token_cache);
      gl_str(&L, "version", jwtkit_version());
      gl_int(&L, "pid", (int64_t)getpid());
      gl_end(&L);
    }
  }

  for (;;) {
    struct timespec tmo = {1, 0};
    siginfo_t si;
    int sig = sigtimedwait(&sigs, &si, &tmo);
    if (sig < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        gate_state_reap();
        continue;
      }
      gate_log(GL_ERROR, "signal_wait_failed", "%s", strerror(errno));
      break;
    }
    if (sig == SIGHUP) {
      gate_config *nc = NULL;
      gate_state *cur = gate_http_state(app);
      gate_state *ns = NULL;
      if (gate_config_load(config, &nc, err, sizeof err) != 0 ||
          gate_state_build(nc, cur, cur->generation + 1, 1, &ns, err, sizeof err) != 0) {
        gate_config_free(nc);
        atomic_fetch_add(&g_metrics.reloads_failed, 1);
        log_config_error("reload_failed", err);
        gate_log(GL_WARN, "reload_failed", "keeping configuration generation %llu", (unsigned long long)cur->generation);
      } else {
        if ((nc->listen == NULL) != (cur->cfg->listen == NULL) ||
            (nc->listen && strcmp(nc->listen, cur->cfg->listen) != 0) || nc->threads != cur->cfg->threads ||
            nc->connection_limit != cur->cfg->connection_limit || nc->idle_timeout != cur->cfg->idle_timeout ||
            nc->header_timeout != cur->cfg->header_timeout)
          gate_log(GL_WARN, "reload_partial",
                   "listen, threads, connection_limit, idle_timeout and header_timeout changes need a restart; the "
                   "rest is applied");
        if (level == NULL) gate_log_set_level(nc->has_log_level ? nc->log_level : GL_INFO);
        gate_http_swap(app, ns);
        atomic_fetch_add(&g_metrics.reloads_ok, 1);
        gate_log(GL_INFO, "reloaded", "configuration generation %llu with %zu route(s)",
                 (unsigned long long)ns->generation, ns->nroutes);
        log_routes(ns);
        for (size_t i = 0; i < ns->nsources; i++) gate_source_warn_max_age(ns->sources[i]);
      }
      gate_state_release(cur);
      gate_state_reap();
      continue;
    }
    gate_log(GL_INFO, "shutdown", "%s received: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    break;
  }

  /* graceful stop: no new connections; wake parked requests; let the open
   * ones finish; then stop the threads */
  gate_http_quiesce(app);
  {
    gate_state *cur = gate_http_state(app);
    int64_t limit = cur->cfg->jwks_timeout_ms + 2000;
    gate_state_stop_sources(cur);
    gate_state_release(cur);
    int64_t t0 = gate_mono_ms();
    while (atomic_load(&g_metrics.suspended) > 0 && gate_mono_ms() - t0 < limit) {
      struct timespec ts = {0, 20 * 1000000};
      nanosleep(&ts, NULL);
    }
    struct timespec grace = {0, 100 * 1000000};
    nanosleep(&grace, NULL);
  }
  gate_http_stop(app);
  gate_http_free(app);
  gate_state_reap();
  gate_log(GL_INFO, "stopped", "bye");
done:
  curl_global_cleanup();
  pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
  return rc;
}
