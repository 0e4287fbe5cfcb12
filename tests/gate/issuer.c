/*
 * gate_issuer - a JWKS publisher for the gate tests (library-only; the
 * real issuer is `jwtkit serve`).
 *
 *   gate_issuer --port N --state DIR [--algs RS256,ES256,EdDSA]
 *               [--cache-control VALUE] [--no-etag] [--control FILE]
 *               [--keep N]
 *
 * At start it generates one key per algorithm (kid "<alg>-1", lowercase)
 * and writes for each ALG into DIR: ALG.key.pem (private, 0600), ALG.kid,
 * ALG.pub.pem, ALG.pub.jwk; then "DIR/ready".  SIGUSR1 rotates: a new key
 * per algorithm ("<alg>-2", ...) becomes current, the set keeps the last
 * --keep keys per algorithm (default 2; 1 = the old key leaves the set at
 * once), and DIR/generation is rewritten last.
 *
 * HTTP (thread per connection, so a hanging answer blocks nobody):
 *   GET /jwks.json, /.well-known/jwks.json   the set, behaviour from the
 *       first word of the control file (read on every request):
 *       ok (default) | 500 | garbage | empty | big (10 MB, Content-Length)
 *       | bigchunked (10 MB, chunked) | hang [SECONDS] (default 10, or until
 *       the control file says otherwise; then the set) | close (Content-Length larger than what is sent, connection
 *       closed mid-body)
 *       With ETag (unless --no-etag) and If-None-Match -> 304.
 *   GET /count    number of JWKS requests so far ("N\n"); /count304: 304s
 * SIGTERM / SIGINT: exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jwtkit/jwtkit.h"

#define MAXALG 8
#define MAXKEEP 8

static struct {
  const char *state;
  const char *cache_control;
  const char *control;
  int etag;
  int keep;
  jwtkit_alg algs[MAXALG];
  size_t nalgs;
  jwtkit_key *keys[MAXALG][MAXKEEP]; /* [alg][0] = current */
  size_t nkeys[MAXALG];
  unsigned generation;
  pthread_mutex_t mu;
  char *jwks;
  size_t jwks_len;
  char etagv[32];
} g = {.cache_control = "max-age=300", .etag = 1, .keep = 2, .mu = PTHREAD_MUTEX_INITIALIZER};

static atomic_ulong n_jwks, n_304;
static volatile sig_atomic_t g_stop, g_rotate;

static void on_signal(int s) {
  if (s == SIGUSR1) g_rotate = 1;
  else g_stop = 1;
}

static void die(const char *msg) {
  fprintf(stderr, "gate_issuer: %s\n", msg);
  exit(1);
}

static void write_file(const char *name, const char *data, size_t len, int mode) {
  char path[4096], tmp[4200];
  snprintf(path, sizeof path, "%s/%s", g.state, name);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) die("cannot write to the state directory");
  if (write(fd, data, len) != (ssize_t)len) die("short write");
  close(fd);
  if (rename(tmp, path) != 0) die("rename failed");
}

static void lower(const char *s, char *out, size_t cap) {
  size_t i = 0;
  for (; s[i] && i + 1 < cap; i++) out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
  out[i] = '\0';
}

static void new_key(size_t ai) {
  jwtkit_alg alg = g.algs[ai];
  jwtkit_key *k = NULL;
  jwtkit_errinfo info;
  if (jwtkit_key_generate(&k, alg, 0, &info) != JWTKIT_OK) die(info.msg);
  char la[16], kid[64];
  lower(jwtkit_alg_name(alg), la, sizeof la);
  snprintf(kid, sizeof kid, "%s-%u", la, g.generation);
  if (jwtkit_key_set_kid(k, kid, strlen(kid)) != JWTKIT_OK) die("kid");
  /* files for the minting helper */
  char name[64];
  char *pem;
  size_t len;
  if (jwtkit_key_to_pem(k, 1, NULL, &pem, &len) != JWTKIT_OK) die("pem");
  snprintf(name, sizeof name, "%s.key.pem", jwtkit_alg_name(alg));
  write_file(name, pem, len, 0600);
  jwtkit_free(pem);
  if (jwtkit_key_to_pem(k, 0, NULL, &pem, &len) != JWTKIT_OK) die("pem");
  snprintf(name, sizeof name, "%s.pub.pem", jwtkit_alg_name(alg));
  write_file(name, pem, len, 0644);
  jwtkit_free(pem);
  if (jwtkit_key_to_jwk(k, 0, &pem, &len) != JWTKIT_OK) die("jwk");
  snprintf(name, sizeof name, "%s.pub.jwk", jwtkit_alg_name(alg));
  write_file(name, pem, len, 0644);
  jwtkit_free(pem);
  snprintf(name, sizeof name, "%s.kid", jwtkit_alg_name(alg));
  write_file(name, kid, strlen(kid), 0644);
  /* current first; drop beyond --keep */
  if (g.nkeys[ai] == (size_t)g.keep) jwtkit_key_free(g.keys[ai][--g.nkeys[ai]]);
  memmove(&g.keys[ai][1], &g.keys[ai][0], g.nkeys[ai] * sizeof(jwtkit_key *));
  g.keys[ai][0] = k;
  g.nkeys[ai]++;
}

static void rebuild(void) {
  g.generation++;
  for (size_t i = 0; i < g.nalgs; i++) new_key(i);
  jwtkit_jwks *set = jwtkit_jwks_new();
  for (size_t i = 0; i < g.nalgs; i++)
    for (size_t j = 0; j < g.nkeys[i]; j++)
      if (jwtkit_jwks_add(set, g.keys[i][j]) != JWTKIT_OK) die("jwks add");
  char *json;
  size_t len;
  if (jwtkit_jwks_to_json(set, &json, &len) != JWTKIT_OK) die("jwks json");
  jwtkit_jwks_free(set);
  pthread_mutex_lock(&g.mu);
  jwtkit_free(g.jwks);
  g.jwks = json;
  g.jwks_len = len;
  snprintf(g.etagv, sizeof g.etagv, "\"g%u\"", g.generation);
  pthread_mutex_unlock(&g.mu);
  char gen[32];
  int n = snprintf(gen, sizeof gen, "%u\n", g.generation);
  write_file("generation", gen, (size_t)n, 0644);
}

static void control(char *word, size_t cap, int *arg) {
  snprintf(word, cap, "ok");
  *arg = 0;
  if (g.control == NULL) return;
  FILE *f = fopen(g.control, "r");
  if (f == NULL) return;
  char line[128];
  if (fgets(line, sizeof line, f) != NULL) {
    char w[64];
    int a = 0;
    int n = sscanf(line, "%63s %d", w, &a);
    if (n >= 1) snprintf(word, cap, "%s", w);
    if (n == 2) *arg = a;
  }
  fclose(f);
}

#define BIG (10u * 1024u * 1024u)

static ssize_t big_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)cls;
  if (pos >= BIG) return MHD_CONTENT_READER_END_OF_STREAM;
  size_t n = BIG - pos < max ? (size_t)(BIG - pos) : max;
  memset(buf, ' ', n);
  if (pos == 0 && n > 0) buf[0] = '{';
  return (ssize_t)n;
}

typedef struct half {
  char *data;
  size_t len;
} half;

static ssize_t half_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  half *h = cls;
  size_t stop = h->len / 2;
  if (pos >= stop) return MHD_CONTENT_READER_END_WITH_ERROR; /* closes the connection */
  size_t n = stop - pos < max ? (size_t)(stop - pos) : max;
  memcpy(buf, h->data + pos, n);
  return (ssize_t)n;
}

static void half_free(void *cls) {
  half *h = cls;
  free(h->data);
  free(h);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body, size_t len) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
  enum MHD_Result rc = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  (void)cls, (void)method, (void)version, (void)upload;
  static char seen;
  if (*con_cls == NULL) {
    *con_cls = &seen;
    return MHD_YES;
  }
  *upload_size = 0;
  char num[32];
  if (strcmp(url, "/count") == 0) {
    int n = snprintf(num, sizeof num, "%lu\n", atomic_load(&n_jwks));
    return reply(c, 200, num, (size_t)n);
  }
  if (strcmp(url, "/count304") == 0) {
    int n = snprintf(num, sizeof num, "%lu\n", atomic_load(&n_304));
    return reply(c, 200, num, (size_t)n);
  }
  if (strcmp(url, "/healthz") == 0) return reply(c, 200, "ok\n", 3);
  if (strcmp(url, "/jwks.json") != 0 && strcmp(url, "/.well-known/jwks.json") != 0) return reply(c, 404, "", 0);
  atomic_fetch_add(&n_jwks, 1);
  char word[64];
  int arg;
  control(word, sizeof word, &arg);
  if (strcmp(word, "500") == 0) return reply(c, 500, "internal error\n", 15);
  if (strcmp(word, "garbage") == 0) {
    struct MHD_Response *r = MHD_create_response_from_buffer(19, (void *)"<html>nope</html>\n\n", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
  }
  if (strcmp(word, "empty") == 0) return reply(c, 200, "{\"keys\":[]}", 11);
  if (strcmp(word, "big") == 0 || strcmp(word, "bigchunked") == 0) {
    struct MHD_Response *r = MHD_create_response_from_callback(strcmp(word, "big") == 0 ? BIG : MHD_SIZE_UNKNOWN,
                                                               64 * 1024, big_reader, NULL, NULL);
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
  }
  if (strcmp(word, "hang") == 0) {
    /* until SECONDS passed or the control file says something else, so a
     * test can hold a fetch as long as its checks take and then let go */
    int secs = arg > 0 ? arg : 10;
    for (int i = 0; i < secs * 10 && !g_stop; i++) {
      struct timespec ts = {0, 100 * 1000000};
      nanosleep(&ts, NULL);
      char now[64];
      int na;
      control(now, sizeof now, &na);
      if (strcmp(now, "hang") != 0) break;
    }
  }
  pthread_mutex_lock(&g.mu);
  char *body = malloc(g.jwks_len + 1);
  size_t len = g.jwks_len;
  if (body) memcpy(body, g.jwks, len + 1);
  char etag[32];
  snprintf(etag, sizeof etag, "%s", g.etagv);
  pthread_mutex_unlock(&g.mu);
  if (body == NULL) return MHD_NO;
  if (strcmp(word, "close") == 0) {
    half *h = malloc(sizeof *h);
    h->data = body;
    h->len = len;
    struct MHD_Response *r = MHD_create_response_from_callback(len, 1024, half_reader, h, half_free);
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
  }
  const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
  struct MHD_Response *r;
  unsigned status = 200;
  if (g.etag && inm != NULL && strcmp(inm, etag) == 0) {
    free(body);
    r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    status = 304;
    atomic_fetch_add(&n_304, 1);
  } else {
    r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/jwk-set+json");
  }
  if (g.cache_control[0]) MHD_add_response_header(r, "Cache-Control", g.cache_control);
  if (g.etag) MHD_add_response_header(r, "ETag", etag);
  enum MHD_Result rc = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return rc;
}

int main(int argc, char **argv) {
  int port = 0;
  const char *algs = "RS256,ES256,EdDSA";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--no-etag") == 0) {
      g.etag = 0;
      continue;
    }
    if (v == NULL) die("option needs a value");
    i++;
    if (strcmp(a, "--port") == 0) port = atoi(v);
    else if (strcmp(a, "--state") == 0) g.state = v;
    else if (strcmp(a, "--algs") == 0) algs = v;
    else if (strcmp(a, "--cache-control") == 0) g.cache_control = v;
    else if (strcmp(a, "--control") == 0) g.control = v;
    else if (strcmp(a, "--keep") == 0) g.keep = atoi(v);
    else die("unknown option");
  }
  if (port <= 0 || g.state == NULL) die("usage: gate_issuer --port N --state DIR [options]");
  if (g.keep < 1 || g.keep > MAXKEEP) die("--keep: 1..8");
  char list[256];
  snprintf(list, sizeof list, "%s", algs);
  for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (g.nalgs == MAXALG) die("too many algorithms");
    jwtkit_alg a = jwtkit_alg_from_name(t, strlen(t));
    if (a == JWTKIT_ALG_UNSPEC) die("unknown algorithm");
    g.algs[g.nalgs++] = a;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  rebuild();
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                                          (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
                                          (struct sockaddr *)&sin, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                                          MHD_OPTION_END);
  if (d == NULL) die("cannot listen");
  write_file("ready", "1\n", 2, 0644);
  while (!g_stop) {
    if (g_rotate) {
      g_rotate = 0;
      rebuild();
      fprintf(stderr, "gate_issuer: rotated to generation %u\n", g.generation);
    }
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
  }
  MHD_stop_daemon(d);
  for (size_t i = 0; i < g.nalgs; i++)
    for (size_t j = 0; j < g.nkeys[i]; j++) jwtkit_key_free(g.keys[i][j]);
  jwtkit_free(g.jwks);
  return 0;
}
