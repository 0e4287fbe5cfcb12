/* The connection guard of the services (connguard.h has the design). */
#include "connguard.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 50               /* sweep period of the guard's thread */
#define PEER_CLOSE_GRACE_MS 50   /* a request sent with its FIN gets this long to be parsed */
#define PEER_CLOSE_MAX_MS 1000   /* ... and a peer-closed socket with unread bytes at most this */
#define RESERVE_HEADER_MS 1000   /* header deadline of a reserve connection */
#define IDLE_EVICT_MS 1000       /* a keep-alive peer idle for less is not closed for room */
#define NO_SLOT UINT32_MAX

enum { S_FREE = 0, S_AWAIT, S_BODY, S_BUSY, S_IDLE, S_DOOMED };

typedef struct slot {
  struct MHD_Connection *conn;
  pthread_t owner;     /* the libmicrohttpd thread that serves it */
  int fd;
  uint32_t gen;        /* bumped when the slot is freed: stale epoll events are ignored */
  uint32_t next_free;
  uint8_t state;
  uint8_t reserve;     /* admitted into the reserve */
  uint8_t served;      /* completed at least one request */
  uint8_t rdhup;       /* the peer closed its sending side */
  int64_t since_ms;    /* start of the current state */
  int64_t deadline_ms; /* 0: none */
  int64_t rdhup_ms;
} slot;

struct svc_guard {
  svc_guard_opts o;
  pthread_mutex_t mu;
  slot *slots;
  uint32_t nslots, free_head;
  int epfd;
  pthread_t thread;
  int thread_started;
  int stop; /* under mu */
  svc_guard_stats st; /* under mu */
};

static const char *const k_reasons[SVC_GC_COUNT] = {
    [SVC_GC_PEER_CLOSED] = "peer_closed",       [SVC_GC_HEADER_TIMEOUT] = "header_timeout",
    [SVC_GC_IDLE_DEADLINE] = "idle_deadline",   [SVC_GC_EVICTED] = "evicted",
    [SVC_GC_RESERVE_DONE] = "reserve_done",     [SVC_GC_REJECTED] = "rejected",
    [SVC_GC_NO_SLOT] = "no_slot",
};

const char *svc_guard_reason_name(int reason) {
  return reason >= 0 && reason < SVC_GC_COUNT ? k_reasons[reason] : "unknown";
}

int64_t svc_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

unsigned svc_guard_mhd_limit(const svc_guard_opts *o) { return o->limit + o->reserve; }

/* Shut the socket down (under mu): libmicrohttpd sees the hang-up and
 * closes the connection; the slot waits for the CLOSED notification. */
static void doom(svc_guard *g, slot *s, int reason) {
  if (s->state == S_DOOMED || s->state == S_FREE) return;
  s->state = S_DOOMED;
  shutdown(s->fd, SHUT_RDWR);
  g->st.closed[reason]++;
}

/* The connection to close for room (under mu), or NULL: a connection whose
 * peer closed, then the oldest that never completed a request, then the
 * longest-idle keep-alive one that has been idle for IDLE_EVICT_MS, then
 * the oldest still waiting for its body.  Reserve connections, connections
 * with a request in progress and keep-alive peers that used their
 * connection within IDLE_EVICT_MS are never chosen. */
static slot *pick_victim(svc_guard *g, const slot *except, int64_t now) {
  slot *best = NULL;
  int best_rank = 4;
  for (uint32_t i = 0; i < g->nslots; i++) {
    slot *s = &g->slots[i];
    if (s == except || s->reserve) continue;
    int rank;
    if (s->state == S_AWAIT || s->state == S_IDLE) {
      rank = s->rdhup ? 0 : !s->served ? 1 : 2;
      if (rank == 2 && now - s->since_ms < IDLE_EVICT_MS) continue;
    } else if (s->state == S_BODY) {
      rank = 3;
    } else {
      continue;
    }
    if (rank < best_rank || (rank == best_rank && s->since_ms < best->since_ms)) {
      best = s;
      best_rank = rank;
    }
  }
  return best;
}

static slot *slot_of(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

static void on_started(svc_guard *g, struct MHD_Connection *c, void **ctx) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  int fd = ci ? ci->connect_fd : -1;
  int64_t now = svc_mono_ms();
  *ctx = NULL;
  pthread_mutex_lock(&g->mu);
  g->st.opened++;
  if (fd < 0 || g->free_head == NO_SLOT) {
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
    g->st.closed[SVC_GC_NO_SLOT]++;
    pthread_mutex_unlock(&g->mu);
    return;
  }
  uint32_t idx = g->free_head;
  slot *s = &g->slots[idx];
  g->free_head = s->next_free;
  s->conn = c;
  s->owner = pthread_self();
  s->fd = fd;
  s->state = S_AWAIT;
  s->reserve = s->served = s->rdhup = 0;
  s->since_ms = now;
  s->deadline_ms = now + g->o.header_timeout_ms;
  s->rdhup_ms = 0;
  g->st.open++;
  if (g->st.open > g->st.open_max) g->st.open_max = g->st.open;
  if (g->st.open > g->o.limit) {
    slot *v = pick_victim(g, s, now);
    if (v != NULL) {
      doom(g, v, SVC_GC_EVICTED);
    } else {
      s->reserve = 1;
      g->st.reserve_admitted++;
      g->st.reserve_open++;
      int64_t d = g->o.header_timeout_ms < RESERVE_HEADER_MS ? g->o.header_timeout_ms : RESERVE_HEADER_MS;
      s->deadline_ms = now + d;
    }
  }
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLRDHUP | EPOLLONESHOT;
  ev.data.u64 = ((uint64_t)s->gen << 32) | idx;
  epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev); /* on failure the deadlines still apply */
  *ctx = s;
  pthread_mutex_unlock(&g->mu);
}

static void on_closed(svc_guard *g, void **ctx) {
  slot *s = *ctx;
  if (s == NULL) return;
  pthread_mutex_lock(&g->mu);
  epoll_ctl(g->epfd, EPOLL_CTL_DEL, s->fd, NULL);
  if (s->reserve) g->st.reserve_open--;
  s->gen++;
  s->state = S_FREE;
  s->conn = NULL;
  s->fd = -1;
  s->next_free = g->free_head;
  g->free_head = (uint32_t)(s - g->slots);
  g->st.open--;
  pthread_mutex_unlock(&g->mu);
  *ctx = NULL;
}

void svc_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code) {
  svc_guard *g = cls;
  if (g == NULL) return;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) on_started(g, c, socket_context);
  else if (code == MHD_CONNECTION_NOTIFY_CLOSED) on_closed(g, socket_context);
}

int svc_guard_request_begin(svc_guard *g, struct MHD_Connection *c, int expect_body) {
  slot *s = slot_of(c);
  if (g == NULL || s == NULL) return 0;
  int64_t now = svc_mono_ms();
  pthread_mutex_lock(&g->mu);
  int reserve = s->reserve;
  if (s->state != S_DOOMED && s->state != S_FREE) {
    s->state = expect_body ? S_BODY : S_BUSY;
    s->since_ms = now;
    s->deadline_ms = expect_body ? now + g->o.header_timeout_ms : 0;
  }
  pthread_mutex_unlock(&g->mu);
  return reserve;
}

void svc_guard_body_done(svc_guard *g, struct MHD_Connection *c) {
  slot *s = slot_of(c);
  if (g == NULL || s == NULL) return;
  pthread_mutex_lock(&g->mu);
  if (s->state == S_BODY) {
    s->state = S_BUSY;
    s->deadline_ms = 0;
  }
  pthread_mutex_unlock(&g->mu);
}

void svc_guard_request_end(svc_guard *g, struct MHD_Connection *c) {
  slot *s = slot_of(c);
  if (g == NULL || s == NULL) return;
  int64_t now = svc_mono_ms();
  pthread_mutex_lock(&g->mu);
  if (s->state != S_DOOMED && s->state != S_FREE) {
    s->served = 1;
    if (s->reserve) {
      doom(g, s, SVC_GC_RESERVE_DONE);
    } else if (s->rdhup) {
      doom(g, s, SVC_GC_PEER_CLOSED);
    } else {
      s->state = S_IDLE;
      s->since_ms = now;
      s->deadline_ms = now + g->o.idle_timeout_ms + g->o.header_timeout_ms;
    }
  }
  pthread_mutex_unlock(&g->mu);
}

void svc_guard_rejected(svc_guard *g, struct MHD_Connection *c) {
  slot *s = slot_of(c);
  if (g == NULL || s == NULL) return;
  pthread_mutex_lock(&g->mu);
  if (s->state != S_DOOMED && s->state != S_FREE) {
    s->state = S_DOOMED; /* the caller closes it */
    g->st.closed[SVC_GC_REJECTED]++;
  }
  pthread_mutex_unlock(&g->mu);
}

void svc_guard_reserve_refused(svc_guard *g) {
  if (g == NULL) return;
  pthread_mutex_lock(&g->mu);
  g->st.reserve_refused++;
  pthread_mutex_unlock(&g->mu);
}

void svc_guard_get_stats(svc_guard *g, svc_guard_stats *st) {
  if (g == NULL) {
    memset(st, 0, sizeof *st);
    return;
  }
  pthread_mutex_lock(&g->mu);
  *st = g->st;
  pthread_mutex_unlock(&g->mu);
}

/* ------------------------------------------------------- the thread */

static size_t unread_bytes(int fd) {
  int n = 0;
  if (ioctl(fd, FIONREAD, &n) != 0 || n < 0) return 0;
  return (size_t)n;
}

static void sweep(svc_guard *g, int64_t now) {
  for (uint32_t i = 0; i < g->nslots; i++) {
    slot *s = &g->slots[i];
    if (s->state == S_FREE || s->state == S_DOOMED) continue;
    if (s->rdhup && (s->state == S_AWAIT || s->state == S_IDLE)) {
      /* a request that came with its FIN is parsed within the grace
       * (libmicrohttpd has read it when nothing is left unread) */
      int64_t age = now - s->rdhup_ms;
      if ((age >= PEER_CLOSE_GRACE_MS && unread_bytes(s->fd) == 0) || age >= PEER_CLOSE_MAX_MS) {
        doom(g, s, SVC_GC_PEER_CLOSED);
        continue;
      }
    }
    if (s->deadline_ms != 0 && now >= s->deadline_ms &&
        (s->state == S_AWAIT || s->state == S_BODY || s->state == S_IDLE))
      doom(g, s, s->state == S_IDLE ? SVC_GC_IDLE_DEADLINE : SVC_GC_HEADER_TIMEOUT);
  }
}

static void *guard_main(void *arg) {
  svc_guard *g = arg;
  struct epoll_event evs[64];
  int64_t last_tick = svc_mono_ms();
  for (;;) {
    int n = epoll_wait(g->epfd, evs, 64, TICK_MS);
    int64_t now = svc_mono_ms();
    pthread_mutex_lock(&g->mu);
    if (g->stop) {
      pthread_mutex_unlock(&g->mu);
      break;
    }
    for (int i = 0; i < n; i++) {
      uint32_t idx = (uint32_t)(evs[i].data.u64 & 0xffffffffu);
      uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
      if (idx >= g->nslots) continue;
      slot *s = &g->slots[idx];
      if (s->gen != gen || s->state == S_FREE) continue; /* closed since */
      if (!s->rdhup) {
        s->rdhup = 1;
        s->rdhup_ms = now;
      }
    }
    sweep(g, now);
    pthread_mutex_unlock(&g->mu);
    if (now - last_tick >= 1000) {
      last_tick = now;
      if (g->o.tick) g->o.tick(g->o.tick_ctx, now);
    }
  }
  return NULL;
}

int svc_guard_new(svc_guard **out, const svc_guard_opts *o, char *err, size_t cap) {
  *out = NULL;
  if (o->limit == 0 || o->header_timeout_ms <= 0) {
    snprintf(err, cap, "connection guard: limit and header timeout must be positive");
    return -1;
  }
  svc_guard *g = calloc(1, sizeof *g);
  if (g == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  g->o = *o;
  g->nslots = svc_guard_mhd_limit(o) + 16; /* libmicrohttpd never exceeds its limit; a margin all the same */
  g->slots = calloc(g->nslots, sizeof *g->slots);
  g->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (g->slots == NULL || g->epfd < 0 || pthread_mutex_init(&g->mu, NULL) != 0) {
    snprintf(err, cap, "connection guard: %s", g->slots == NULL ? "out of memory" : strerror(errno));
    if (g->epfd >= 0) close(g->epfd);
    free(g->slots);
    free(g);
    return -1;
  }
  for (uint32_t i = 0; i < g->nslots; i++) {
    g->slots[i].fd = -1;
    g->slots[i].next_free = i + 1 < g->nslots ? i + 1 : NO_SLOT;
  }
  g->free_head = 0;
  if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
    snprintf(err, cap, "connection guard: cannot start its thread");
    pthread_mutex_destroy(&g->mu);
    close(g->epfd);
    free(g->slots);
    free(g);
    return -1;
  }
  g->thread_started = 1;
  *out = g;
  return 0;
}

void svc_guard_free(svc_guard *g) {
  if (g == NULL) return;
  pthread_mutex_lock(&g->mu);
  g->stop = 1;
  pthread_mutex_unlock(&g->mu);
  if (g->thread_started) pthread_join(g->thread, NULL);
  pthread_mutex_destroy(&g->mu);
  close(g->epfd);
  free(g->slots);
  free(g);
}

/* --------------------------------------------- raw responses, early errors */

static const char *reason_phrase(unsigned status) {
  switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

static int write_reject(int fd, unsigned status, const char *text) {
  char buf[768];
  size_t tl = strlen(text);
  if (tl > 400) tl = 400;
  int n = snprintf(buf, sizeof buf,
                   "HTTP/1.1 %u %s\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
                   "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nContent-Length: %zu\r\n\r\n%.*s\n",
                   status, reason_phrase(status), tl + 1, (int)tl, text);
  if (n < 0 || (size_t)n >= sizeof buf) return -1;
  size_t off = 0;
  while (off < (size_t)n) {
    ssize_t w = send(fd, buf + off, (size_t)n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1; /* the send buffer of a fresh connection holds this; otherwise give up */
    off += (size_t)w;
  }
  /* drop what the client sent already, so that the close is a FIN and
   * not a reset that could destroy the response at the client */
  char sink[4096];
  for (int i = 0; i < 16; i++) {
    ssize_t r = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (r <= 0) break;
  }
  shutdown(fd, SHUT_WR);
  return 0;
}

int svc_reject_raw(svc_guard *g, struct MHD_Connection *c, unsigned status, const char *text) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  svc_guard_rejected(g, c);
  if (ci == NULL || ci->connect_fd < 0) return -1;
  return write_reject(ci->connect_fd, status, text);
}

int svc_guard_mhd_message(svc_guard *g, const char *fmt) {
  static const struct {
    const char *prefix;
    unsigned status;
    const char *text;
  } k_early[] = {
      {"Failed to parse `Content-Length' header", 400, "bad Content-Length: one field of digits only"},
      {"Too large value of 'Content-Length' header", 413, "Content-Length too large"},
      {"Received HTTP/1.1 request without `Host' header", 400, "a request without a Host field"},
  };
  if (g == NULL || fmt == NULL) return 0;
  size_t k = 0;
  for (; k < sizeof k_early / sizeof k_early[0]; k++)
    if (strncmp(fmt, k_early[k].prefix, strlen(k_early[k].prefix)) == 0) break;
  if (k == sizeof k_early / sizeof k_early[0]) return 0;
  /* The connection is the one this thread is parsing: of the connections
   * this thread serves, the only one past its headers (libmicrohttpd
   * knows their size) whose request the service has not seen. */
  pthread_t self = pthread_self();
  int done = 0;
  pthread_mutex_lock(&g->mu);
  for (uint32_t i = 0; i < g->nslots && !done; i++) {
    slot *s = &g->slots[i];
    if ((s->state != S_AWAIT && s->state != S_IDLE) || !pthread_equal(s->owner, self)) continue;
    /* headers in and no response queued yet: the one being parsed (one
     * that got libmicrohttpd's own answer to another error has one) */
    if (MHD_get_connection_info(s->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE) == NULL ||
        MHD_get_connection_info(s->conn, MHD_CONNECTION_INFO_HTTP_STATUS) != NULL)
      continue;
    write_reject(s->fd, k_early[k].status, k_early[k].text);
    s->state = S_DOOMED;
    g->st.closed[SVC_GC_REJECTED]++;
    done = 1;
  }
  pthread_mutex_unlock(&g->mu);
  return done;
}

/* ---------------------------------------------------------------- framing */

typedef struct framing_ctx {
  int ncl, nte, bad_name, bad_cl, cl_overflow;
  unsigned long long cl;
  const char *te;
} framing_ctx;

static int is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int framing_each(void *cls, const char *name, const char *value) {
  framing_ctx *x = cls;
  if (name == NULL || *name == '\0') {
    x->bad_name = 1;
    return 1;
  }
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    if (!is_tchar(*p)) x->bad_name = 1; /* e.g. "Content-Length " (space before the colon) */
  if (strcasecmp(name, "Content-Length") == 0) {
    x->ncl++;
    const char *v = value ? value : "";
    if (*v == '\0') x->bad_cl = 1;
    unsigned long long n = 0;
    for (const char *p = v; *p; p++) {
      if (*p < '0' || *p > '9') {
        x->bad_cl = 1;
        break;
      }
      if (n > (~0ULL - 9) / 10) x->cl_overflow = 1;
      else n = n * 10 + (unsigned long long)(*p - '0');
    }
    x->cl = n;
  } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
    x->nte++;
    x->te = value ? value : "";
  }
  return 1;
}

typedef struct each_ctx {
  int (*fn)(void *cls, const char *name, const char *value);
  void *cls;
} each_ctx;

static enum MHD_Result each_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
  (void)kind;
  each_ctx *x = cls;
  return x->fn(x->cls, key, value) ? MHD_YES : MHD_NO;
}

void svc_each_header(void *ctx, int (*fn)(void *cls, const char *name, const char *value), void *cls) {
  each_ctx x = {fn, cls};
  MHD_get_connection_values((struct MHD_Connection *)ctx, MHD_HEADER_KIND, each_cb, &x);
}

void svc_framing_check(void (*each)(void *ctx, int (*fn)(void *cls, const char *name, const char *value), void *cls),
                       void *ctx, int http10, unsigned long long max_body, svc_framing *out) {
  framing_ctx x;
  memset(&x, 0, sizeof x);
  each(ctx, framing_each, &x);
  out->status = 0;
  out->why = NULL;
  out->length = -1;
  out->chunked = 0;
  if (x.bad_name) {
    out->status = 400;
    out->why = "a header field name is not a token (whitespace before the colon?)";
  } else if (x.nte > 0 && x.ncl > 0) {
    out->status = 400;
    out->why = "Transfer-Encoding and Content-Length together";
  } else if (x.nte > 0 && http10) {
    out->status = 400;
    out->why = "Transfer-Encoding in an HTTP/1.0 request";
  } else if (x.nte > 1) {
    out->status = 501;
    out->why = "more than one Transfer-Encoding field: only a single \"chunked\" is supported";
  } else if (x.nte == 1 && strcasecmp(x.te, "chunked") != 0) {
    out->status = 501;
    out->why = "unsupported transfer coding: only \"chunked\" is supported";
  } else if (x.ncl > 1) {
    out->status = 400;
    out->why = "more than one Content-Length field";
  } else if (x.ncl == 1 && x.bad_cl) {
    out->status = 400;
    out->why = "bad Content-Length: one field of digits only";
  } else if (x.ncl == 1 && (x.cl_overflow || x.cl > max_body)) {
    out->status = 413;
    out->why = "the body is larger than this endpoint takes";
  } else {
    out->length = x.ncl == 1 ? (long long)x.cl : -1;
    out->chunked = x.nte == 1;
  }
}

/* ------------------------------------------------------- rate-limited logs */

static pthread_mutex_t g_ll_mu = PTHREAD_MUTEX_INITIALIZER;

int svc_loglimit_allow(svc_loglimit *l, int64_t now_ms) {
  pthread_mutex_lock(&g_ll_mu);
  if (l->window_ms == 0 || now_ms - l->window_ms >= l->interval_ms) {
    l->window_ms = now_ms;
    l->used = 0;
  }
  int ok = l->used < l->burst;
  if (ok) l->used++;
  else l->suppressed++;
  pthread_mutex_unlock(&g_ll_mu);
  return ok;
}

uint64_t svc_loglimit_take(svc_loglimit *l, int64_t now_ms, int force) {
  pthread_mutex_lock(&g_ll_mu);
  uint64_t n = 0;
  if (l->suppressed > 0 && (force || now_ms - l->window_ms >= l->interval_ms)) {
    n = l->suppressed;
    l->suppressed = 0;
  }
  pthread_mutex_unlock(&g_ll_mu);
  return n;
}

unsigned long svc_raise_nofile(unsigned long need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    rlim_t want = need;
    if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) want = rl.rlim_max;
    struct rlimit nr = {want, rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &nr) == 0) rl.rlim_cur = want;
  }
  return rl.rlim_cur == RLIM_INFINITY ? ~0UL : (unsigned long)rl.rlim_cur;
}
