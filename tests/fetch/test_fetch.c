/*
 * The shared HTTP(S) client (services/fetch) against a small HTTP server on
 * 127.0.0.1 in a thread of this test: answers and their headers, the body
 * cap (by Content-Length and while reading), the time limit, truncation,
 * no redirects, the scheme rules (https only, http anywhere, http to
 * loopback only: judged on the address connected to), If-None-Match, the
 * User-Agent, abort.  Every case is bounded by the fetch's own timeout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/attr.h"
#include "fetch.h"
#include "jwtkit/version.h"

static int g_listen = -1;
static unsigned g_port;
static pthread_t g_thread;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_last[4096]; /* the last request's head */
static int g_requests;

static void send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

static void sendf(int fd, const char *fmt, ...) JK_PRINTF(2, 3);
static void sendf(int fd, const char *fmt, ...) {
  char buf[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) send_all(fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void serve_one(int fd) {
  char req[4096];
  size_t n = 0;
  while (n < sizeof req - 1) {
    ssize_t r = recv(fd, req + n, sizeof req - 1 - n, 0);
    if (r <= 0) break;
    n += (size_t)r;
    req[n] = '\0';
    if (strstr(req, "\r\n\r\n") != NULL) break;
  }
  req[n] = '\0';
  pthread_mutex_lock(&g_mu);
  snprintf(g_last, sizeof g_last, "%s", req);
  g_requests++;
  pthread_mutex_unlock(&g_mu);
  char path[256] = "";
  sscanf(req, "GET %255s", path);
  static char big[2000];
  memset(big, 'x', sizeof big);
  if (strcmp(path, "/ok") == 0) {
    sendf(fd, "HTTP/1.1 200 OK\r\nCache-Control: public, max-age=60\r\nETag: \"v1\"\r\nAge: 5\r\n"
              "Content-Length: 5\r\nConnection: close\r\n\r\nhello");
  } else if (strcmp(path, "/etag") == 0) {
    if (strstr(req, "If-None-Match: \"v1\"") != NULL)
      sendf(fd, "HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=30\r\nConnection: close\r\n\r\n");
    else
      sendf(fd, "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
  } else if (strcmp(path, "/continue") == 0) {
    sendf(fd, "HTTP/1.1 100 Continue\r\nETag: \"early\"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
              "Connection: close\r\n\r\nx");
  } else if (strcmp(path, "/redirect") == 0) {
    sendf(fd, "HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  } else if (strcmp(path, "/big-length") == 0) {
    sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", sizeof big);
    send_all(fd, big, sizeof big);
  } else if (strcmp(path, "/big-chunked") == 0) {
    sendf(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    for (int i = 0; i < 4; i++) {
      sendf(fd, "%x\r\n", 500);
      send_all(fd, big, 500);
      sendf(fd, "\r\n");
    }
    sendf(fd, "0\r\n\r\n");
  } else if (strcmp(path, "/truncated") == 0) {
    sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n0123456789");
  } else if (strcmp(path, "/hang") == 0) {
    struct timespec ts = {1, 0}; /* longer than the fetches' 300 ms */
    nanosleep(&ts, NULL);
  } else {
    sendf(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  }
  shutdown(fd, SHUT_WR);
  char drain[256];
  struct timeval tv = {0, 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (recv(fd, drain, sizeof drain, 0) > 0) {
  }
  close(fd);
}

static void *conn_thread(void *arg) {
  serve_one((int)(intptr_t)arg);
  return NULL;
}

/* A thread per connection, so a hanging answer delays no other case. */
static void *server(void *arg) {
  (void)arg;
  for (;;) {
    int fd = accept(g_listen, NULL, NULL);
    if (fd < 0) return NULL; /* the listening socket was shut down */
    pthread_t t;
    if (pthread_create(&t, NULL, conn_thread, (void *)(intptr_t)fd) == 0)
      pthread_detach(t);
    else
      close(fd);
  }
}

static int setup(void **state) {
  (void)state;
  g_listen = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (g_listen < 0 || bind(g_listen, (struct sockaddr *)&a, sizeof a) != 0 || listen(g_listen, 16) != 0 ||
      getsockname(g_listen, (struct sockaddr *)&a, &al) != 0)
    return -1;
  g_port = ntohs(a.sin_port);
  if (jk_fetch_global_init() != 0) return -1;
  return pthread_create(&g_thread, NULL, server, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  shutdown(g_listen, SHUT_RDWR);
  pthread_join(g_thread, NULL);
  close(g_listen);
  jk_fetch_global_cleanup();
  return 0;
}

static const char *url(const char *path) {
  static char u[128];
  snprintf(u, sizeof u, "http://127.0.0.1:%u%s", g_port, path);
  return u;
}

static int requests(void) {
  pthread_mutex_lock(&g_mu);
  int n = g_requests;
  pthread_mutex_unlock(&g_mu);
  return n;
}

static int last_has(const char *s) {
  pthread_mutex_lock(&g_mu);
  int r = strstr(g_last, s) != NULL;
  pthread_mutex_unlock(&g_mu);
  return r;
}

static jk_fetch_opts opts(jk_fetch_http http) {
  jk_fetch_opts o = {.http = http, .timeout_ms = 300, .max_bytes = 1000, .agent = "jwtkit-test"};
  return o;
}

static void test_answers(void **state) {
  (void)state;
  jk_fetch_opts o = opts(JK_FETCH_HTTP_ANY);
  o.accept = "application/jwk-set+json";
  jk_fetch_resp r;
  assert_int_equal(jk_fetch_get(url("/ok"), &o, &r), JK_FETCH_OK);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.len, 5);
  assert_string_equal(r.body, "hello");
  assert_string_equal(r.cache_control, "public, max-age=60");
  assert_string_equal(r.etag, "\"v1\"");
  assert_int_equal(r.age, 5);
  jk_fetch_resp_free(&r);
  assert_true(last_has("\r\nUser-Agent: jwtkit-test/" JWTKIT_VERSION "\r\n"));
  assert_true(last_has("\r\nAccept: application/jwk-set+json\r\n"));
  assert_false(last_has("If-None-Match"));

  /* revalidation with a fetcher that is reused */
  jk_fetcher *f = jk_fetcher_new();
  assert_non_null(f);
  assert_int_equal(jk_fetcher_get(f, url("/etag"), &o, &r), JK_FETCH_OK);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.etag, "\"v1\"");
  jk_fetch_resp_free(&r);
  o.if_none_match = "\"v1\"";
  assert_int_equal(jk_fetcher_get(f, url("/etag"), &o, &r), JK_FETCH_OK);
  assert_int_equal(r.status, 304);
  assert_int_equal(r.len, 0);
  assert_string_equal(r.cache_control, "max-age=30");
  jk_fetch_resp_free(&r);
  assert_true(last_has("\r\nIf-None-Match: \"v1\"\r\n"));
  jk_fetcher_free(f);

  /* the headers of a 1xx are forgotten */
  o.if_none_match = NULL;
  assert_int_equal(jk_fetch_get(url("/continue"), &o, &r), JK_FETCH_OK);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.etag, "");
  jk_fetch_resp_free(&r);

  /* no redirects: the 302 is the answer */
  assert_int_equal(jk_fetch_get(url("/redirect"), &o, &r), JK_FETCH_OK);
  assert_int_equal(r.status, 302);
  jk_fetch_resp_free(&r);
  assert_true(last_has("GET /redirect "));
}

static void test_bounds(void **state) {
  (void)state;
  jk_fetch_opts o = opts(JK_FETCH_HTTP_ANY);
  jk_fetch_resp r;
  assert_int_equal(jk_fetch_get(url("/big-length"), &o, &r), JK_FETCH_TOO_LARGE);
  assert_null(r.body);
  assert_non_null(strstr(r.detail, "over 1000 bytes"));
  jk_fetch_resp_free(&r);
  assert_int_equal(jk_fetch_get(url("/big-chunked"), &o, &r), JK_FETCH_TOO_LARGE);
  assert_null(r.body);
  jk_fetch_resp_free(&r);
  o.max_bytes = 2000; /* exactly the body: fits */
  assert_int_equal(jk_fetch_get(url("/big-chunked"), &o, &r), JK_FETCH_OK);
  assert_int_equal(r.len, 2000);
  jk_fetch_resp_free(&r);
  o.max_bytes = 1000;
  assert_int_equal(jk_fetch_get(url("/truncated"), &o, &r), JK_FETCH_TRUNCATED);
  jk_fetch_resp_free(&r);
  assert_int_equal(jk_fetch_get(url("/hang"), &o, &r), JK_FETCH_TIMEOUT);
  jk_fetch_resp_free(&r);
  atomic_int stop = 1;
  o.abort = &stop;
  o.timeout_ms = 5000;
  assert_int_equal(jk_fetch_get(url("/hang"), &o, &r), JK_FETCH_ABORTED);
  jk_fetch_resp_free(&r);
}

static void test_schemes(void **state) {
  (void)state;
  jk_fetch_resp r;
  int before = requests();
  jk_fetch_opts o = opts(JK_FETCH_HTTPS_ONLY);
  assert_int_equal(jk_fetch_get(url("/ok"), &o, &r), JK_FETCH_REFUSED);
  assert_non_null(strstr(r.detail, "https:// only"));
  assert_int_equal(jk_fetch_get("ftp://127.0.0.1/x", &o, &r), JK_FETCH_REFUSED);
  o.http = JK_FETCH_HTTP_ANY;
  assert_int_equal(jk_fetch_get("file:///etc/passwd", &o, &r), JK_FETCH_REFUSED);
  assert_int_equal(requests(), before); /* nothing was sent */

  /* loopback only: the address connected to decides */
  o.http = JK_FETCH_HTTP_LOOPBACK;
  assert_int_equal(jk_fetch_get(url("/ok"), &o, &r), JK_FETCH_OK);
  assert_int_equal(r.status, 200);
  jk_fetch_resp_free(&r);
  char u[128];
  snprintf(u, sizeof u, "http://localhost:%u/ok", g_port);
  assert_int_equal(jk_fetch_get(u, &o, &r), JK_FETCH_OK);
  jk_fetch_resp_free(&r);
  /* 192.0.2.1 (TEST-NET-1) answers nobody: a connection attempt would end
   * in a timeout or a connect error, the refusal comes before it */
  assert_int_equal(jk_fetch_get("http://192.0.2.1:9/jwks.json", &o, &r), JK_FETCH_REFUSED);
  assert_non_null(strstr(r.detail, "loopback address only, not 192.0.2.1"));
  jk_fetch_resp_free(&r);
  assert_string_equal(jk_fetch_result_name(JK_FETCH_TOO_LARGE), "too_large");
  assert_string_equal(jk_fetch_result_name(JK_FETCH_COUNT), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_answers),
      cmocka_unit_test(test_bounds),
      cmocka_unit_test(test_schemes),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
