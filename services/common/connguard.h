/*
 * services/common/connguard.h - the connection guard of `jwtkit serve` and
 * `jwtkit gate` (not installed).
 *
 * libmicrohttpd 0.9.75 has one timeout per connection (inactivity, which a
 * client resets with every byte it sends) and, in its epoll mode, does not
 * notice a peer that sent a partial request together with its FIN (the
 * short read clears the read-ready flag; the edge-triggered epoll never
 * reports the FIN again), so such a socket stays in CLOSE-WAIT, counted
 * against the connection limit, until that timeout.  The guard adds what
 * is missing, next to the library and without changing how it serves:
 *
 *   - it learns every connection (MHD_OPTION_NOTIFY_CONNECTION) and where
 *     each request is (svc_guard_request_begin / _body_done / _end);
 *   - a thread of its own watches the sockets for a peer close (EPOLLRDHUP
 *     in an epoll set of its own) and closes a connection that has no
 *     request in progress about 50 ms after its peer went away;
 *   - a request must arrive whole (line and headers, and a body the
 *     service reads) within `header_timeout` of the connection's start (or
 *     of the headers, for the body); an idle keep-alive connection must
 *     start its next request within idle_timeout + header_timeout;
 *   - past `limit` open connections, each new one makes the guard close the
 *     connection least likely to be a working client: first one whose peer
 *     already closed, then the oldest that never completed a request, then
 *     the longest-idle keep-alive one idle for a second or more, then the
 *     oldest still sending its body; a connection whose request is being
 *     handled, and a keep-alive peer that used its connection within the
 *     last second, are never chosen;
 *   - when nothing can be closed, the connection is admitted into a
 *     reserve of `reserve` connections (libmicrohttpd's own limit is
 *     limit + reserve): one request, a 1 s header deadline, and the service
 *     answers only its health and metrics endpoints there.
 *
 * "Closing" a connection is shutdown(2) of its socket: libmicrohttpd sees
 * the hang-up in its own event loop and closes the connection itself, so
 * it keeps owning every file descriptor.  The guard's mutex is held across
 * every shutdown and across the CLOSED notification, after which
 * libmicrohttpd closes the descriptor: a descriptor is never shut down
 * after it was closed and reused.
 */
#ifndef JWTKIT_SVC_CONNGUARD_H
#define JWTKIT_SVC_CONNGUARD_H

#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

typedef struct svc_guard svc_guard;

typedef struct svc_guard_opts {
  unsigned limit;            /* open connections before closing or reserve (>= 1) */
  unsigned reserve;          /* connections beyond limit (libmicrohttpd gets limit + reserve) */
  int64_t header_timeout_ms; /* a request's line, headers (and body) within this */
  int64_t idle_timeout_ms;   /* libmicrohttpd's inactivity timeout (the idle deadline adds header_timeout) */
  /* called from the guard's thread about once a second (may be NULL) */
  void (*tick)(void *ctx, int64_t now_ms);
  void *tick_ctx;
} svc_guard_opts;

/* Why the guard closed connections, counters since start. */
enum {
  SVC_GC_PEER_CLOSED = 0, /* the peer closed while no request was in progress */
  SVC_GC_HEADER_TIMEOUT,  /* no complete request (or body) within the deadline */
  SVC_GC_IDLE_DEADLINE,   /* keep-alive: no next request within idle + header timeout */
  SVC_GC_EVICTED,         /* closed to make room above the limit */
  SVC_GC_RESERVE_DONE,    /* a reserve connection after its one request */
  SVC_GC_REJECTED,        /* the request's framing was refused (svc_reject) */
  SVC_GC_NO_SLOT,         /* no tracking slot (not expected: the table has libmicrohttpd's limit) */
  SVC_GC_COUNT
};
const char *svc_guard_reason_name(int reason);

typedef struct svc_guard_stats {
  uint64_t opened;                /* connections seen */
  uint64_t closed[SVC_GC_COUNT];  /* closed by the guard, by reason */
  uint64_t reserve_admitted;      /* admitted into the reserve */
  uint64_t reserve_refused;       /* reserve requests answered 503 (counted by the service) */
  unsigned open, open_max;        /* open now (reserve included), highest seen */
  unsigned reserve_open;          /* reserve connections open now */
} svc_guard_stats;

/* Start the guard and its thread.  0, or -1 with a sentence in err. */
int svc_guard_new(svc_guard **out, const svc_guard_opts *o, char *err, size_t cap);
/* Stop the thread and free; call after MHD_stop_daemon. */
void svc_guard_free(svc_guard *g);
/* libmicrohttpd's hard connection limit for these options. */
unsigned svc_guard_mhd_limit(const svc_guard_opts *o);

/* MHD_OPTION_NOTIFY_CONNECTION callback (cls: the guard). */
void svc_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);

/* The request hooks take the guard (NULL: no-op). */

/* From the access handler's first call for a request (headers in):
 * expect_body 1 when the service is going to read a body.  Returns 1 when
 * the connection is in the reserve (answer only health/metrics, with
 * Connection: close), else 0. */
int svc_guard_request_begin(svc_guard *g, struct MHD_Connection *c, int expect_body);
/* The whole body is in. */
void svc_guard_body_done(svc_guard *g, struct MHD_Connection *c);
/* From MHD_OPTION_NOTIFY_COMPLETED: the response went out (or the
 * request ended otherwise). */
void svc_guard_request_end(svc_guard *g, struct MHD_Connection *c);
/* The service refused the request's framing and closes the connection. */
void svc_guard_rejected(svc_guard *g, struct MHD_Connection *c);
/* Count a reserve request answered 503. */
void svc_guard_reserve_refused(svc_guard *g);

/* libmicrohttpd 0.9.75 answers a bad Content-Length (and a missing Host,
 * in strict mode) itself, before the access handler, and writes that
 * response's header block twice: a client reads the second copy as the
 * answer to its next request.  Call this from the external logger with the
 * message format: for those messages it writes one clean response with
 * Connection: close on the connection this thread is parsing and shuts
 * the socket's sending side, so libmicrohttpd's copy is never sent.
 * Returns 1 when it did. */
int svc_guard_mhd_message(svc_guard *g, const char *fmt);

void svc_guard_get_stats(svc_guard *g, svc_guard_stats *st);

/* Write a complete minimal response (status, Connection: close, text/plain
 * body of `text` and a newline) straight to the connection's socket, read
 * and drop what the client already sent (so the close is a FIN, not a
 * reset), and shut the sending side.  For the access handler when
 * libmicrohttpd takes no response (in the middle of a body); the caller
 * then returns MHD_NO.  0, or -1 when the socket is gone. */
int svc_reject_raw(svc_guard *g, struct MHD_Connection *c, unsigned status, const char *text);

/* ------------------------------------------------------------- framing */

/* Request framing (RFC 9112 §6): one Content-Length of digits only, or
 * Transfer-Encoding exactly "chunked" in an HTTP/1.1 request, never both;
 * field names are tokens (no whitespace before the colon).  Anything else
 * is refused and the connection closed, because a proxy in front may frame
 * the request differently (request smuggling). */
typedef struct svc_framing {
  unsigned status;     /* 0: acceptable; else 400, 413 or 501 */
  const char *why;     /* static sentence for the log and the body */
  long long length;    /* Content-Length, -1 when absent */
  int chunked;         /* Transfer-Encoding: chunked */
} svc_framing;

/* `each` walks the header fields in order (the services' header iterator
 * shape); max_body: a larger Content-Length is 413.  http10: the request
 * line said HTTP/1.0. */
void svc_framing_check(void (*each)(void *ctx, int (*fn)(void *cls, const char *name, const char *value), void *cls),
                       void *ctx, int http10, unsigned long long max_body, svc_framing *out);

/* The `each` of a libmicrohttpd connection (ctx: the struct MHD_Connection):
 * fn(cls, name, value) for every request header field in order, until fn
 * returns 0. */
void svc_each_header(void *ctx, int (*fn)(void *cls, const char *name, const char *value), void *cls);

/* -------------------------------------------------------- rate-limited logs */

/* At most `burst` lines per `interval_ms`; the rest are counted. */
typedef struct svc_loglimit {
  int64_t interval_ms;
  unsigned burst;
  /* state, under an internal lock */
  int64_t window_ms;
  unsigned used;
  uint64_t suppressed;
} svc_loglimit;

/* 1: log this line now; 0: counted as suppressed. */
int svc_loglimit_allow(svc_loglimit *l, int64_t now_ms);
/* Suppressed lines since the last call, when the window they fell in is
 * over (or `force`); 0 otherwise. */
uint64_t svc_loglimit_take(svc_loglimit *l, int64_t now_ms, int force);

/* ----------------------------------------------------------------- misc */

int64_t svc_mono_ms(void);
/* Raise RLIMIT_NOFILE's soft limit to at least `need` (up to the hard
 * limit).  Returns the soft limit now in effect. */
unsigned long svc_raise_nofile(unsigned long need);

#endif
