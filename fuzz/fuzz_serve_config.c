/*
 * serve_config: the configuration file of `jwtkit serve`
 * (sv_settings_parse, services/serve/config.c), then what the issuer does
 * with a layer: sv_settings_overlay onto the defaults and
 * sv_settings_finish.
 *
 * Properties: an error names the file ("serve.conf:LINE: ..." or
 * "serve.conf: ...") in a NUL-terminated message; a file that parses is
 * written back as one `key = value` line per option it set (values
 * written by jk_ini_put_value, quoted where the dialect needs it) and
 * parses again to the same settings (same set bits, lines, strings,
 * algorithms, durations, numbers); the command-line-only keys (demo,
 * config) never get set from a file; when finish accepts the settings,
 * the listen address parses, the issuer passes sv_issuer_ok and there is
 * an algorithm; when it refuses them, the message names where the option
 * was given ("serve.conf:LINE").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common.h"
#include "common/buf.h"
#include "common/ini.h"
#include "common/parse.h"
#include "core/alloc.h"
#include "serve.h"

#define NAME "serve.conf"

static int msg_ok(const char *err, size_t cap) {
  if (memchr(err, '\0', cap) == NULL) return 0;
  return strncmp(err, NAME ":", sizeof NAME) == 0 || strcmp(err, "out of memory") == 0;
}

/* One line per option, on the line the option came from (blank lines
 * before it), so the lines read back the same too. */
static int g_line;

static void to_line(jk_buf *b, const sv_settings *s, uint32_t bit) {
  int i = 0;
  while ((1u << i) != bit) i++;
  while (g_line + 1 < s->line[i]) {
    jk_buf_putc(b, '\n');
    g_line++;
  }
}

static void put(jk_buf *b, const char *key, const char *value) {
  jk_buf_puts(b, key);
  jk_buf_puts(b, " = ");
  JKF_CHECK(jk_ini_put_value(b, value) == 0, "%s: a value that cannot be written back", key);
  jk_buf_putc(b, '\n');
  g_line++;
}

static void put_int(jk_buf *b, const char *key, long long v) {
  char n[32];
  snprintf(n, sizeof n, "%lld", v);
  put(b, key, n);
}

static void put_rate(jk_buf *b, const char *key, const sv_rate *r) {
  char v[48];
  snprintf(v, sizeof v, "%lld/%s", r->count, r->per == 1 ? "s" : r->per == 60 ? "m" : "h");
  put(b, key, v);
}

/* The settings of one layer as a config file, the options in the order
 * of the lines they came from. */
static char *write_back(const sv_settings *s, size_t *len) {
  jk_buf b;
  jk_buf_init_max(&b, 1u << 20);
  g_line = 0;
  int order[SV_SET_BITS], n = 0;
  for (int i = 0; i < SV_SET_BITS; i++) {
    if (!(s->set & (1u << i))) continue;
    JKF_CHECK(s->line[i] > 0, "option %d set from the file without a line", i);
    int k = n++;
    while (k > 0 && s->line[order[k - 1]] > s->line[i]) {
      order[k] = order[k - 1];
      k--;
    }
    order[k] = i;
  }
  for (int o = 0; o < n; o++) {
    uint32_t bit = 1u << order[o];
    to_line(&b, s, bit);
    switch (bit) {
      case SV_SET_LISTEN: put(&b, "listen", s->listen); break;
      case SV_SET_ISSUER: put(&b, "issuer", s->issuer); break;
      case SV_SET_KEYRING: put(&b, "keyring", s->keyring); break;
      case SV_SET_CLIENTS: put(&b, "clients", s->clients); break;
      case SV_SET_PASSFILE: put(&b, "passphrase_file", s->passphrase_file); break;
      case SV_SET_PASSENV: put(&b, "passphrase_env", s->passphrase_env); break;
      case SV_SET_KEKFILE: put(&b, "kek_file", s->kek_file); break;
      case SV_SET_KEKENV: put(&b, "kek_env", s->kek_env); break;
      case SV_SET_LEGACY: put(&b, "legacy_hs256_secret_file", s->legacy_secret_file); break;
      case SV_SET_ALGS: {
        jk_buf a;
        jk_buf_init(&a);
        for (size_t k = 0; k < s->nalgs; k++) {
          if (k) jk_buf_puts(&a, ", ");
          jk_buf_puts(&a, jwtkit_alg_name(s->algs[k]));
        }
        char *t = jk_buf_take(&a, NULL);
        JKF_CHECK(t != NULL, "algs");
        put(&b, "algs", t);
        jk_free(t);
        break;
      }
      case SV_SET_ROTATE_CHECK: put_int(&b, "rotate_check", s->rotate_check); break;
      case SV_SET_MAX_AGE: put_int(&b, "max_age", s->max_age); break;
      case SV_SET_TOKEN_TTL: put_int(&b, "token_ttl", s->token_ttl); break;
      case SV_SET_ROTATE_EVERY: put_int(&b, "rotate_every", s->rotate_every); break;
      case SV_SET_TRANSITION: put_int(&b, "transition_ttl", s->transition_ttl); break;
      case SV_SET_THREADS: put_int(&b, "thread_pool", s->threads); break;
      case SV_SET_MAXCONN: put_int(&b, "max_connections", s->max_connections); break;
      case SV_SET_MAXCONN_IP: put_int(&b, "max_connections_per_ip", s->max_connections_ip); break;
      case SV_SET_HEADER_TIMEOUT: put_int(&b, "header_timeout", s->header_timeout); break;
      case SV_SET_RATE_IP: put_rate(&b, "token_rate_ip", &s->rate_ip); break;
      case SV_SET_BURST_IP: put_int(&b, "token_burst_ip", s->burst_ip); break;
      case SV_SET_RATE_CLIENT: put_rate(&b, "token_rate_client", &s->rate_client); break;
      case SV_SET_BURST_CLIENT: put_int(&b, "token_burst_client", s->burst_client); break;
      case SV_SET_FAIL_COST: put_int(&b, "token_fail_cost", s->fail_cost); break;
      case SV_SET_LEEWAY: put_int(&b, "leeway", s->leeway); break;
      case SV_SET_PUBLISH_AHEAD: put_int(&b, "publish_ahead", s->publish_ahead); break;
      case SV_SET_CLIENT_JWKS_MIN_TTL: put_int(&b, "client_jwks_min_ttl", s->client_jwks_min_ttl); break;
      case SV_SET_CLIENT_JWKS_STALE_MAX: put_int(&b, "client_jwks_stale_max", s->client_jwks_stale_max); break;
      case SV_SET_LOGLEVEL: put(&b, "log_level", jk_log_level_name(s->log_level)); break;
      default: JKF_CHECK(0, "option bit %#x set from a file", bit);
    }
  }
  JKF_CHECK(!b.oom, "write-back buffer");
  return jk_buf_take(&b, len);
}

static void same(const sv_settings *a, const sv_settings *b) {
  JKF_CHECK(a->set == b->set, "set bits %#x became %#x", a->set, b->set);
  for (int i = 0; i < SV_SET_BITS; i++)
    JKF_CHECK(a->line[i] == b->line[i], "option %d: line %d became %d", i, a->line[i], b->line[i]);
#define SAME_STR(f) JKF_CHECK(strcmp(a->f, b->f) == 0, #f ": '%s' became '%s'", a->f, b->f)
#define SAME_INT(f) JKF_CHECK(a->f == b->f, #f ": %lld became %lld", (long long)a->f, (long long)b->f)
  SAME_STR(listen);
  SAME_STR(issuer);
  SAME_STR(keyring);
  SAME_STR(clients);
  SAME_STR(passphrase_file);
  SAME_STR(passphrase_env);
  SAME_STR(kek_file);
  SAME_STR(kek_env);
  SAME_STR(legacy_secret_file);
  SAME_INT(nalgs);
  for (size_t i = 0; i < a->nalgs; i++) SAME_INT(algs[i]);
  SAME_INT(rotate_check);
  SAME_INT(max_age);
  SAME_INT(token_ttl);
  SAME_INT(rotate_every);
  SAME_INT(transition_ttl);
  SAME_INT(threads);
  SAME_INT(max_connections);
  SAME_INT(max_connections_ip);
  SAME_INT(header_timeout);
  SAME_INT(rate_ip.count);
  SAME_INT(rate_ip.per);
  SAME_INT(burst_ip);
  SAME_INT(rate_client.count);
  SAME_INT(rate_client.per);
  SAME_INT(burst_client);
  SAME_INT(fail_cost);
  SAME_INT(leeway);
  SAME_INT(publish_ahead);
  SAME_INT(client_jwks_min_ttl);
  SAME_INT(client_jwks_stale_max);
  SAME_INT(log_level);
  SAME_INT(demo);
#undef SAME_STR
#undef SAME_INT
}

int jkf_serve_config(const uint8_t *data, size_t size) {
  sv_settings *s = malloc(sizeof *s), *again = malloc(sizeof *again), *eff = malloc(sizeof *eff);
  JKF_CHECK(s != NULL && again != NULL && eff != NULL, "out of memory");
  char err[1024];
  memset(err, 0x5a, sizeof err);
  sv_settings_defaults(s);
  if (sv_settings_parse(s, (const char *)data, size, NAME, err, sizeof err) != 0) {
    JKF_CHECK(msg_ok(err, sizeof err), "error message does not name the file: %.200s", err);
    goto out;
  }
  JKF_CHECK(!(s->set & (SV_SET_DEMO | SV_SET_CONFIG)), "a command-line-only option was set from the file");
  JKF_CHECK(s->nalgs >= 1 && s->nalgs <= SV_MAX_ALGS, "%zu algorithms", s->nalgs);
  for (size_t i = 0; i < s->nalgs; i++)
    JKF_CHECK(jwtkit_alg_kty(s->algs[i]) != JWTKIT_KTY_OCT && s->algs[i] != JWTKIT_ALG_UNSPEC, "alg %d",
              (int)s->algs[i]);

  /* written back, it reads the same */
  size_t tl = 0;
  char *text = write_back(s, &tl);
  JKF_CHECK(text != NULL, "write back");
  sv_settings_defaults(again);
  int rc = sv_settings_parse(again, text, tl, NAME, err, sizeof err);
  JKF_CHECK(rc == 0, "written-back settings refused: %s\n%s", err, text);
  same(s, again);
  jk_free(text);

  /* the issuer's view: defaults overridden by this layer, then checked */
  sv_settings_defaults(eff);
  sv_settings_overlay(eff, s);
  memset(err, 0x5a, sizeof err);
  if (sv_settings_finish(eff, err, sizeof err) == 0) {
    jk_listen l;
    char e2[256];
    JKF_CHECK(jk_parse_listen(eff->listen, 0, &l, NULL) == 0 && l.len > 0 && l.port > 0, "listen %s", eff->listen);
    JKF_CHECK(sv_issuer_ok(eff->issuer, e2, sizeof e2) == 0, "issuer %s: %s", eff->issuer, e2);
    JKF_CHECK(eff->nalgs >= 1, "no algorithm after finish");
    JKF_CHECK(!((eff->set & SV_SET_PASSFILE) && (eff->set & SV_SET_PASSENV)), "two passphrase sources");
    JKF_CHECK(!((eff->set & SV_SET_KEKFILE) && (eff->set & SV_SET_KEKENV)), "two KEK sources");
  } else {
    JKF_CHECK(memchr(err, '\0', sizeof err) != NULL && strncmp(err, NAME ":", sizeof NAME) == 0,
              "finish: the message does not name the file: %.200s", err);
  }
out:
  free(s);
  free(again);
  free(eff);
  return 0;
}

JKF_ENTRY(jkf_serve_config)
