/*
 * jwtkit-bench: sign and verify throughput of jwtkit next to the raw
 * OpenSSL floor for the same crypto and next to libjwt, in one process.
 *
 * For every algorithm row: build the keys and one token of the fixed shape,
 * check that every contender gets the right answer, warm up, then run R
 * repetitions in which each contender gets a fixed time slice, handed out
 * in short alternating turns (rotating who goes first) so that machine
 * noise hits all of them alike.  Rates are per CPU second of the measuring
 * thread by default (--wall: per wall-clock second).  Reported: the median
 * rate of each contender and the median of the per-repetition ratios.
 * Then a 2-thread verify scaling run and a steady-state memory check.
 *
 * Exit status: 0 after a run (a missed target is not a failure: this is a
 * benchmark, not a test), 1 when a correctness check fails, 2 on a usage
 * error, 3 when setting up a row fails.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "bench.h"

#define MAX_RUNS 101
#define MAX_ROWS 32
#define TARGET_HMAC 0.30   /* HS*: jwtkit >= 30% of the floor */
#define TARGET_ASYM 0.95   /* RS/PS/ES/EdDSA: jwtkit >= 95% of the floor */
#define TARGET_LIBJWT 3.0  /* jwtkit >= 3x libjwt where libjwt has the alg */
#define TARGET_SCALING 1.8 /* 2-thread verify: total >= 1.8x one thread */
#define SUB_SLICE 0.01     /* seconds per turn when contenders alternate */

enum { EXIT_CHECK = 1, EXIT_USAGE = 2, EXIT_SETUP = 3 };
enum { C_JWTKIT, C_FLOOR, C_LIBJWT, C_COUNT };

typedef struct options {
  double seconds;
  unsigned runs;
  int json;
  int with_claims;
  int wall; /* rates per wall-clock second instead of per CPU second */
  int quick;
  int want[MAX_ROWS]; /* by index in bench_algs(); all when none given */
  int any_alg;
} options;

typedef struct row {
  const bench_alg *a;
  const char *op;          /* "sign" or "verify" */
  int present[C_COUNT];
  double runs[C_COUNT][MAX_RUNS];
  double med[C_COUNT];
  double ratio_floor;
  double ratio_libjwt;     /* 0 when libjwt has no such alg */
  double target_floor;
  int miss_floor, miss_libjwt;
} row;

typedef struct scaling {
  const bench_alg *a;
  double one, two, factor; /* jwtkit verify ops/s with 1 and 2 threads */
  double cpu_two;           /* CPU seconds per second the 2 threads got */
  double eff;               /* ops per CPU second, 2 threads / 1 thread */
  double blocked;           /* voluntary context switches per second, 2 threads */
  double floor_factor;      /* the same for the floor, for reference */
  double floor_eff;
} scaling;

typedef struct memory {
  long peak_before_kib, peak_after_kib;
  unsigned long verifies, signs;
  long rss1_kib, rss2_kib;
  long long heap1, heap2; /* bytes in use per mallinfo2, -1 if unknown */
} memory;

static row g_rows[2 * MAX_ROWS];
static size_t g_nrows;
static scaling g_scal[8];
static size_t g_nscal;
static memory g_mem;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3), noreturn))
#endif
static void die(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("jwtkit-bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(status);
}

static void usage(FILE *f) {
  fputs("usage: jwtkit-bench [--time SECONDS] [--runs N] [--quick] [--alg NAME]... [--with-claims] [--wall]\n"
        "                    [--json]\n"
        "  --time S       time slice per measurement (default 0.3)\n"
        "  --runs N       repetitions; the median is reported (default 5)\n"
        "  --quick        --time 0.05 --runs 3, smaller memory passes (smoke test)\n"
        "  --alg NAME     only this row (repeatable): HS256 HS384 HS512 RS256 RS384 RS512\n"
        "                 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA (Ed25519) Ed448\n"
        "  --with-claims  time jwtkit verify with the claims handed out and freed\n"
        "                 (default: claims = NULL)\n"
        "  --wall         slices and rates in wall-clock time (default: CPU time of the\n"
        "                 measuring thread, which other processes on the machine do not\n"
        "                 steal from; the 2-thread run always uses wall-clock time)\n"
        "  --json         print the results as one JSON object\n",
        f);
}

static void parse_args(int argc, char **argv, options *o) {
  size_t nalg;
  const bench_alg *algs = bench_algs(&nalg);
  int have_time = 0, have_runs = 0;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(s, "--") == 0) { /* ends the options; the benchmark takes no arguments */
      if (val != NULL) die(EXIT_USAGE, "unexpected argument '%s' (see --help)", val);
      break;
    } else if (strcmp(s, "--time") == 0 && val != NULL) {
      char *end;
      o->seconds = strtod(val, &end);
      if (*end != '\0' || !(o->seconds >= 0.001 && o->seconds <= 60)) die(EXIT_USAGE, "--time: 0.001..60 seconds");
      have_time = 1;
      i++;
    } else if (strcmp(s, "--runs") == 0 && val != NULL) {
      char *end;
      long n = strtol(val, &end, 10);
      if (*end != '\0' || n < 1 || n > MAX_RUNS) die(EXIT_USAGE, "--runs: 1..%d", MAX_RUNS);
      o->runs = (unsigned)n;
      have_runs = 1;
      i++;
    } else if (strcmp(s, "--alg") == 0 && val != NULL) {
      size_t k = 0;
      while (k < nalg && strcasecmp(algs[k].label, val) != 0) k++;
      if (k == nalg) die(EXIT_USAGE, "unknown algorithm \"%s\" (see --help)", val);
      o->want[k] = 1;
      o->any_alg = 1;
      i++;
    } else if (strcmp(s, "--quick") == 0) {
      o->quick = 1;
    } else if (strcmp(s, "--json") == 0) {
      o->json = 1;
    } else if (strcmp(s, "--wall") == 0) {
      o->wall = 1;
    } else if (strcmp(s, "--with-claims") == 0) {
      o->with_claims = 1;
    } else if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else {
      usage(stderr);
      die(EXIT_USAGE, "unknown or incomplete option \"%s\"", s);
    }
  }
  if (o->quick && !have_time) o->seconds = 0.05;
  if (o->quick && !have_runs) o->runs = 3;
}

/* In --json mode stdout carries only the JSON; say what runs on stderr. */
static void progress(const options *o, const char *what, const char *detail) {
  if (o->json) fprintf(stderr, "[jwtkit-bench] %s%s\n", what, detail);
}

/* ------------------------------------------------------ correctness */

/* Flip the first signature character to another alphabet character. */
static void tamper(char *tok, size_t len) {
  char *sig = memchr(tok, '.', len);
  if (sig != NULL) sig = memchr(sig + 1, '.', len - (size_t)(sig + 1 - tok));
  if (sig != NULL && sig[1] != '\0') sig[1] = sig[1] == 'A' ? 'B' : 'A';
}

/* Length of header "." payload: everything before the second dot. */
static size_t signing_input_len(const char *tok, size_t len) {
  const char *d = memchr(tok, '.', len);
  d = d ? memchr(d + 1, '.', len - (size_t)(d + 1 - tok)) : NULL;
  return d ? (size_t)(d - tok) : len;
}

static int deterministic(const bench_alg *a) {
  jwtkit_kty k = jwtkit_alg_kty(a->alg);
  return k == JWTKIT_KTY_OCT || k == JWTKIT_KTY_OKP ||
         a->alg == JWTKIT_ALG_RS256 || a->alg == JWTKIT_ALG_RS384 || a->alg == JWTKIT_ALG_RS512;
}

/* Every path that will be timed must give the right answer first. */
static void check_row(bench_fixture *fx, floor_ctx *fl, peer_ctx *pj) {
  const char *L = fx->a->label;
  jwtkit_errinfo info = {0};
  char tok[BENCH_TOKEN_CAP];
  if (!floor_verify_token(fl, fx->token, fx->token_len))
    die(EXIT_CHECK, "%s: the floor rejects jwtkit's token", L);
  size_t n = floor_sign_token(fl, tok, sizeof tok);
  if (n == 0) die(EXIT_CHECK, "%s: the floor failed to sign", L);
  /* same bytes as jwtkit's token; ECDSA and PSS signatures are randomised,
   * so there only the signing input must match */
  size_t si = signing_input_len(fx->token, fx->token_len);
  if (deterministic(fx->a) ? n != fx->token_len || memcmp(tok, fx->token, n) != 0
                           : signing_input_len(tok, n) != si || memcmp(tok, fx->token, si) != 0)
    die(EXIT_CHECK, "%s: the floor's token differs from jwtkit's", L);
  if (!floor_verify_token(fl, tok, n)) die(EXIT_CHECK, "%s: the floor rejects its own token", L);
  jwtkit_err rc = jk_verify_token(fx, tok, n, &info);
  if (rc != JWTKIT_OK) die(EXIT_CHECK, "%s: jwtkit rejects the floor's token: %s (%s)", L, jwtkit_errname(rc), info.msg);
  if (jk_op_sign(fx) != 0 || jk_op_verify(fx) != 0 || jk_op_verify_claims(fx) != 0 || floor_op_sign(fl) != 0 ||
      floor_op_verify(fl) != 0)
    die(EXIT_CHECK, "%s: a timed operation fails", L);

  memcpy(tok, fx->token, fx->token_len + 1);
  tamper(tok, fx->token_len);
  if (jk_verify_token(fx, tok, fx->token_len, NULL) == JWTKIT_OK) die(EXIT_CHECK, "%s: jwtkit accepts a forgery", L);
  if (floor_verify_token(fl, tok, fx->token_len)) die(EXIT_CHECK, "%s: the floor accepts a forgery", L);

  if (pj == NULL) return;
  if (!peer_verify_token(pj, fx->token)) die(EXIT_CHECK, "%s: libjwt rejects jwtkit's token", L);
  if (peer_verify_token(pj, tok)) die(EXIT_CHECK, "%s: libjwt accepts a forgery", L);
  n = peer_sign_token(pj, tok, sizeof tok);
  if (n == 0) die(EXIT_CHECK, "%s: libjwt failed to sign", L);
  if (!peer_verify_token(pj, tok)) die(EXIT_CHECK, "%s: libjwt rejects its own token", L);
  rc = jk_verify_token(fx, tok, n, &info);
  if (rc != JWTKIT_OK) die(EXIT_CHECK, "%s: jwtkit rejects libjwt's token: %s (%s)", L, jwtkit_errname(rc), info.msg);
  if (peer_op_sign(pj) != 0 || peer_op_verify(pj) != 0) die(EXIT_CHECK, "%s: a timed libjwt operation fails", L);
}

/* ------------------------------------------------------------ timing */

/* One repetition: every contender gets `seconds` in total, handed out in
 * alternating sub-slices of SUB_SLICE so that a burst of outside load lands
 * on all of them alike. */
static void time_rep(row *r, bench_meter m[C_COUNT], const options *o, unsigned rep) {
  bench_sample acc[C_COUNT] = {{0, 0, 0}};
  for (unsigned round = rep, busy = 1; busy; round++) {
    busy = 0;
    for (unsigned k = 0; k < C_COUNT; k++) {
      int c = (int)((round + k) % C_COUNT);
      double used = o->wall ? acc[c].wall : acc[c].cpu;
      if (!r->present[c] || used >= o->seconds) continue;
      double left = o->seconds - used;
      bench_sample smp;
      if (bench_measure(&m[c], left < SUB_SLICE ? left : SUB_SLICE, !o->wall, &smp) != 0)
        die(EXIT_CHECK, "%s %s: an operation failed while timed", r->a->label, r->op);
      acc[c].ops += smp.ops;
      acc[c].wall += smp.wall;
      acc[c].cpu += smp.cpu;
      busy = 1;
    }
  }
  for (int c = 0; c < C_COUNT; c++)
    if (r->present[c]) r->runs[c][rep] = acc[c].ops / (o->wall ? acc[c].wall : acc[c].cpu);
}

/* Median of a[i] / b[i]: each repetition compares contenders that ran side
 * by side, so slow drifts of the machine cancel out. */
static double median_ratio(const double *a, const double *b, unsigned n) {
  double q[MAX_RUNS];
  for (unsigned i = 0; i < n; i++) q[i] = a[i] / b[i];
  return bench_median(q, n);
}

static void time_op(row *r, bench_meter m[C_COUNT], const options *o) {
  double warm = o->seconds < 0.1 ? o->seconds : 0.1;
  for (int c = 0; c < C_COUNT; c++)
    if (r->present[c] && bench_warmup(&m[c], warm) < 0) die(EXIT_CHECK, "%s %s: an operation failed", r->a->label, r->op);
  for (unsigned rep = 0; rep < o->runs; rep++) time_rep(r, m, o, rep);
  for (int c = 0; c < C_COUNT; c++) {
    if (!r->present[c]) continue;
    double tmp[MAX_RUNS];
    memcpy(tmp, r->runs[c], o->runs * sizeof tmp[0]);
    r->med[c] = bench_median(tmp, o->runs);
  }
  r->target_floor = bench_alg_is_hmac(r->a) ? TARGET_HMAC : TARGET_ASYM;
  r->ratio_floor = median_ratio(r->runs[C_JWTKIT], r->runs[C_FLOOR], o->runs);
  r->miss_floor = r->ratio_floor < r->target_floor;
  if (r->present[C_LIBJWT]) {
    r->ratio_libjwt = median_ratio(r->runs[C_JWTKIT], r->runs[C_LIBJWT], o->runs);
    r->miss_libjwt = r->ratio_libjwt < TARGET_LIBJWT;
  }
}

static const char *status_of(const row *r) {
  if (r->miss_floor && r->miss_libjwt) return "MISS(floor,libjwt)";
  if (r->miss_floor) return "MISS(floor)";
  if (r->miss_libjwt) return "MISS(libjwt)";
  return "PASS";
}

/* 1-minute load average (other work on this machine), -1 if unknown. */
static double load_avg(void) {
  FILE *f = fopen("/proc/loadavg", "r");
  double v = -1;
  if (f == NULL) return -1;
  if (fscanf(f, "%lf", &v) != 1) v = -1;
  fclose(f);
  return v;
}

static double g_load_start, g_load_end;

static void print_table_head(const options *o) {
  printf("jwtkit-bench %s | %s | libjwt %s\n", jwtkit_version(), floor_openssl_version(),
         peer_available() ? peer_version() : "not found");
  printf("median of %u runs x %.2f s per contender, contenders alternating every %.0f ms; ratios = median of\n"
         "per-run ratios; jwtkit verify = jwtkit_verify_at(claims=%s)\n",
         o->runs, o->seconds, SUB_SLICE * 1e3, o->with_claims ? "out+free" : "NULL");
  printf("%s\n", o->wall ? "ops/s = operations per wall-clock second"
                         : "ops/s = operations per CPU second of the measuring thread (--wall: per wall-clock second)");
  printf("%ld CPUs online, load average %.2f at start\n", sysconf(_SC_NPROCESSORS_ONLN), g_load_start);
  printf("targets: ratio_floor >= %.2f (HS*) / %.2f (others); ratio_libjwt >= %.1f where libjwt has the alg\n\n",
         TARGET_HMAC, TARGET_ASYM, TARGET_LIBJWT);
  printf("%-6s %-6s %12s %12s %11s %12s %12s  %s\n", "alg", "op", "jwtkit_ops", "floor_ops", "ratio_floor",
         "libjwt_ops", "ratio_libjwt", "status");
}

static void print_row(const row *r) {
  printf("%-6s %-6s %12.0f %12.0f %11.3f ", r->a->label, r->op, r->med[C_JWTKIT], r->med[C_FLOOR], r->ratio_floor);
  if (r->present[C_LIBJWT])
    printf("%12.0f %12.2f", r->med[C_LIBJWT], r->ratio_libjwt);
  else
    printf("%12s %12s", "n/a", "n/a");
  printf("  %s\n", status_of(r));
  fflush(stdout);
}

static void run_row(const bench_alg *a, const options *o) {
  progress(o, a->label, "");
  bench_fixture *fx = malloc(sizeof *fx);
  char err[256];
  if (fx == NULL) die(EXIT_SETUP, "out of memory");
  if (fixture_init(fx, a, (int64_t)time(NULL), err, sizeof err) != 0) die(EXIT_SETUP, "%s: %s", a->label, err);
  floor_ctx *fl = floor_new(fx, NULL, err, sizeof err);
  if (fl == NULL) die(EXIT_SETUP, "%s: %s", a->label, err);
  peer_ctx *pj = NULL;
  if (peer_supports(a) && (pj = peer_new(fx, err, sizeof err)) == NULL) die(EXIT_SETUP, "%s: %s", a->label, err);
  check_row(fx, fl, pj);

  static const char *const ops[2] = {"sign", "verify"};
  for (int op = 0; op < 2; op++) {
    row *r = &g_rows[g_nrows++];
    memset(r, 0, sizeof *r);
    r->a = a;
    r->op = ops[op];
    bench_meter m[C_COUNT] = {
        {op == 0 ? jk_op_sign : o->with_claims ? jk_op_verify_claims : jk_op_verify, fx, 0},
        {op == 0 ? floor_op_sign : floor_op_verify, fl, 0},
        {op == 0 ? peer_op_sign : peer_op_verify, pj, 0},
    };
    r->present[C_JWTKIT] = r->present[C_FLOOR] = 1;
    r->present[C_LIBJWT] = pj != NULL;
    time_op(r, m, o);
    if (!o->json) print_row(r);
  }
  peer_free(pj);
  floor_free(fl);
  fixture_free(fx);
  free(fx);
}

/* ------------------------------------------------------- 2 threads */

typedef struct worker {
  bench_meter m;
  double seconds;
  pthread_barrier_t *bar;
  int failed;
  bench_sample s;
  long blocked; /* voluntary context switches while measured */
} worker;

/* Voluntary context switches of the calling thread so far (it blocked on a
 * lock or in the kernel), or -1 if unknown. */
static long voluntary_switches(void) {
  FILE *f = fopen("/proc/thread-self/status", "r");
  char line[128];
  long v = -1;
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1) break;
  fclose(f);
  return v;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  bench_meter warm = w->m; /* keep the calibrated batch */
  w->failed = bench_warmup(&warm, 0.02) < 0; /* this thread's first use sets up its contexts */
  if (w->bar != NULL) pthread_barrier_wait(w->bar);
  long v0 = voluntary_switches();
  if (!w->failed) w->failed = bench_measure(&w->m, w->seconds, 0, &w->s) != 0;
  long v1 = voluntary_switches();
  w->blocked = v0 >= 0 && v1 >= 0 ? v1 - v0 : 0;
  return NULL;
}

typedef struct trun {
  double rate;        /* total ops/s (wall clock) */
  double cpu_per_s;   /* CPU seconds used per wall second (ideal: n) */
  double ops_per_cpu; /* ops per CPU second: falls only with contention */
  double blocked;     /* voluntary context switches per second, all threads */
} trun;

/* n threads, thread i running m[i], started together. */
static trun threads_run(const bench_meter *m, int n, double seconds, const char *label) {
  pthread_t t[2];
  worker w[2];
  pthread_barrier_t bar;
  if (n > 1 && pthread_barrier_init(&bar, NULL, (unsigned)n) != 0) die(EXIT_SETUP, "pthread_barrier_init failed");
  for (int i = 0; i < n; i++) {
    w[i] = (worker){m[i], seconds, n > 1 ? &bar : NULL, 0, {0, 0, 0}, 0};
    if (pthread_create(&t[i], NULL, worker_main, &w[i]) != 0) die(EXIT_SETUP, "pthread_create failed");
  }
  trun r = {0, 0, 0, 0};
  long blocked = 0;
  double ops = 0, cpu = 0, wall = 0;
  int bad = 0;
  for (int i = 0; i < n; i++) {
    pthread_join(t[i], NULL);
    bad |= w[i].failed;
    r.rate += w[i].s.ops / w[i].s.wall;
    ops += w[i].s.ops;
    cpu += w[i].s.cpu;
    blocked += w[i].blocked;
    wall += w[i].s.wall / n;
  }
  if (n > 1) pthread_barrier_destroy(&bar);
  if (bad) die(EXIT_CHECK, "%s: verify failed in a thread", label);
  r.cpu_per_s = cpu / wall;
  r.ops_per_cpu = ops / cpu;
  r.blocked = (double)blocked / wall;
  return r;
}

/* jwtkit: both threads share the fixture's verifier.  The floor, for
 * reference, shares one EVP_PKEY the same way but has one context per
 * thread: its scaling is what the machine and OpenSSL allow. */
static void run_scaling(const bench_alg *a, const options *o) {
  progress(o, a->label, " 2-thread verify");
  bench_fixture *fx = malloc(sizeof *fx);
  char err[256];
  if (fx == NULL) die(EXIT_SETUP, "out of memory");
  if (fixture_init(fx, a, (int64_t)time(NULL), err, sizeof err) != 0) die(EXIT_SETUP, "%s: %s", a->label, err);
  floor_ctx *fl[2] = {floor_new(fx, NULL, err, sizeof err), NULL};
  if (fl[0] == NULL || (fl[1] = floor_new(fx, fl[0], err, sizeof err)) == NULL) die(EXIT_SETUP, "%s: %s", a->label, err);
  bench_meter jk[2] = {{jk_op_verify, fx, 0}, {jk_op_verify, fx, 0}};
  bench_meter fm[2] = {{floor_op_verify, fl[0], 0}, {floor_op_verify, fl[1], 0}};
  double warm = o->seconds < 0.1 ? o->seconds : 0.1;
  if (bench_warmup(&jk[0], warm) < 0 || bench_warmup(&fm[0], warm) < 0) die(EXIT_CHECK, "%s: verify failed", a->label);
  jk[1].batch = jk[0].batch;
  fm[1].batch = fm[0].batch;
  /* jwtkit 1t, jwtkit 2t, floor 1t, floor 2t; rotated per repetition */
  double rate[4][MAX_RUNS], cps[4][MAX_RUNS], opc[4][MAX_RUNS], blk[4][MAX_RUNS];
  for (unsigned rep = 0; rep < o->runs; rep++)
    for (int k = 0; k < 4; k++) {
      int c = (int)((rep + (unsigned)k) % 4);
      trun r = threads_run(c < 2 ? jk : fm, c % 2 + 1, o->seconds, a->label);
      rate[c][rep] = r.rate;
      cps[c][rep] = r.cpu_per_s;
      opc[c][rep] = r.ops_per_cpu;
      blk[c][rep] = r.blocked;
    }
  scaling *s = &g_scal[g_nscal++];
  s->a = a;
  s->one = bench_median(rate[0], o->runs);
  s->two = bench_median(rate[1], o->runs);
  s->factor = s->two / s->one;
  s->cpu_two = bench_median(cps[1], o->runs);
  s->eff = bench_median(opc[1], o->runs) / bench_median(opc[0], o->runs);
  s->blocked = bench_median(blk[1], o->runs);
  s->floor_factor = bench_median(rate[3], o->runs) / bench_median(rate[2], o->runs);
  s->floor_eff = bench_median(opc[3], o->runs) / bench_median(opc[2], o->runs);
  floor_free(fl[0]);
  floor_free(fl[1]);
  fixture_free(fx);
  free(fx);
}

/* ----------------------------------------------------------- memory */

static long peak_rss_kib(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1; /* KiB on Linux */
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = -1;
  if (f == NULL) return -1;
  if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
  fclose(f);
  return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

static long long heap_in_use(void) {
#ifdef __GLIBC__
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks > 0 ? (long long)mi.uordblks : -1; /* 0 under a sanitizer's allocator */
#else
  return -1;
#endif
}

static void memory_pass(bench_fixture *fx, unsigned long verifies, unsigned long signs) {
  for (unsigned long i = 0; i < verifies; i++)
    if (jk_op_verify_claims(fx) != 0 || jk_op_verify(fx) != 0) die(EXIT_CHECK, "verify failed in the memory pass");
  for (unsigned long i = 0; i < signs; i++)
    if (jk_op_sign(fx) != 0) die(EXIT_CHECK, "sign failed in the memory pass");
}

static void run_memory(const options *o) {
  progress(o, "steady-state memory", "");
  size_t nalg;
  const bench_alg *hs = bench_algs(&nalg); /* row 0 is HS256 */
  bench_fixture *fx = malloc(sizeof *fx);
  char err[256];
  if (fx == NULL) die(EXIT_SETUP, "out of memory");
  if (fixture_init(fx, hs, (int64_t)time(NULL), err, sizeof err) != 0) die(EXIT_SETUP, "HS256: %s", err);
  g_mem.verifies = o->quick ? 10000 : 100000;
  g_mem.signs = g_mem.verifies;
  memory_pass(fx, g_mem.verifies, g_mem.signs);
  g_mem.rss1_kib = rss_kib();
  g_mem.heap1 = heap_in_use();
  memory_pass(fx, g_mem.verifies, g_mem.signs);
  g_mem.rss2_kib = rss_kib();
  g_mem.heap2 = heap_in_use();
  fixture_free(fx);
  free(fx);
}

/* ------------------------------------------------------------ output */

static void print_text_tail(void) {
  int misses = 0;
  for (size_t i = 0; i < g_nrows; i++) misses += g_rows[i].miss_floor || g_rows[i].miss_libjwt;
  if (g_nscal > 0) {
    printf("\n2-thread verify scaling (one shared verifier, one loop per thread; target >= %.2f)\n", TARGET_SCALING);
    printf("scaling = 2-thread ops/s / 1-thread ops/s; cpu_2t = CPU s/s the two threads got (2.00 on an idle\n"
           "machine); eff = ops per CPU second, 2 threads / 1 thread (1.00 = no spinning or cache-line\n"
           "contention); blk/s = times per second a thread blocked (0 = no lock waits); floor_* = the raw\n"
           "OpenSSL floor, one shared key and one context per thread, for reference\n");
    printf("%-6s %11s %11s %8s %7s %6s %6s %14s %10s  %s\n", "alg", "1t_ops", "2t_ops", "scaling", "cpu_2t", "eff",
           "blk/s", "floor_scaling", "floor_eff", "status");
    for (size_t i = 0; i < g_nscal; i++) {
      const scaling *s = &g_scal[i];
      printf("%-6s %11.0f %11.0f %8.2f %7.2f %6.2f %6.0f %14.2f %10.2f  %s\n", s->a->label, s->one, s->two,
             s->factor, s->cpu_two, s->eff, s->blocked, s->floor_factor, s->floor_eff,
             s->factor >= TARGET_SCALING ? "PASS" : "MISS");
      misses += s->factor < TARGET_SCALING;
    }
  }
  printf("\nmemory: peak RSS %ld KiB before the runs, %ld KiB after\n", g_mem.peak_before_kib, g_mem.peak_after_kib);
  printf("steady state (HS256; a pass = %lu verifies with claims + %lu with claims=NULL + %lu signs):\n",
         g_mem.verifies, g_mem.verifies, g_mem.signs);
  printf("  RSS after pass 1 %ld KiB, after pass 2 %ld KiB (%+ld KiB)", g_mem.rss1_kib, g_mem.rss2_kib,
         g_mem.rss2_kib - g_mem.rss1_kib);
  if (g_mem.heap1 >= 0 && g_mem.heap2 >= 0)
    printf("; heap in use %lld -> %lld bytes (%+lld)", g_mem.heap1, g_mem.heap2, g_mem.heap2 - g_mem.heap1);
  printf("\n");
  for (size_t i = 0; i < g_nrows; i++) {
    const row *r = &g_rows[i];
    double floor_vs_libjwt = r->present[C_LIBJWT] ? r->med[C_FLOOR] / r->med[C_LIBJWT] : 0;
    if (r->miss_libjwt && floor_vs_libjwt < TARGET_LIBJWT)
      printf("note: %s %s: the raw OpenSSL floor itself is only %.2fx libjwt, so %.1fx is out of reach\n",
             r->a->label, r->op, floor_vs_libjwt, TARGET_LIBJWT);
  }
  printf("\nload average %.2f at start, %.2f at the end\n", g_load_start, g_load_end);
  printf("%d target(s) missed\n", misses);
}

static void json_num(const char *name, double v, int comma) {
  printf("\"%s\":%.6g%s", name, v, comma ? "," : "");
}

static void print_json(const options *o) {
  static const char *const cname[C_COUNT] = {"jwtkit", "floor", "libjwt"};
  printf("{\"jwtkit_version\":\"%s\",\"openssl\":\"%s\",", jwtkit_version(), floor_openssl_version());
  if (peer_available())
    printf("\"libjwt_version\":\"%s\",", peer_version());
  else
    printf("\"libjwt_version\":null,");
  printf("\"cpus\":%ld,\"load_start\":%.2f,\"load_end\":%.2f,", sysconf(_SC_NPROCESSORS_ONLN), g_load_start,
         g_load_end);
  printf("\"clock\":\"%s\",", o->wall ? "wall" : "thread_cpu");
  printf("\"time\":%.6g,\"runs\":%u,\"verify_claims\":%s,", o->seconds, o->runs, o->with_claims ? "true" : "false");
  printf("\"targets\":{\"ratio_floor_hmac\":%.2f,\"ratio_floor_other\":%.2f,\"ratio_libjwt\":%.1f,\"scaling\":%.2f},",
         TARGET_HMAC, TARGET_ASYM, TARGET_LIBJWT, TARGET_SCALING);
  printf("\"rows\":[");
  for (size_t i = 0; i < g_nrows; i++) {
    const row *r = &g_rows[i];
    printf("%s{\"alg\":\"%s\",\"op\":\"%s\",", i ? "," : "", r->a->label, r->op);
    for (int c = 0; c < C_COUNT; c++) {
      if (!r->present[c]) {
        printf("\"%s_ops\":null,\"%s_runs\":null,", cname[c], cname[c]);
        continue;
      }
      printf("\"%s_ops\":%.0f,\"%s_runs\":[", cname[c], r->med[c], cname[c]);
      for (unsigned k = 0; k < o->runs; k++) printf("%s%.0f", k ? "," : "", r->runs[c][k]);
      printf("],");
    }
    json_num("ratio_floor", r->ratio_floor, 1);
    if (r->present[C_LIBJWT])
      json_num("ratio_libjwt", r->ratio_libjwt, 1);
    else
      printf("\"ratio_libjwt\":null,");
    json_num("target_floor", r->target_floor, 1);
    if (r->present[C_LIBJWT])
      printf("\"libjwt_target_reachable\":%s,", r->med[C_FLOOR] / r->med[C_LIBJWT] >= TARGET_LIBJWT ? "true" : "false");
    printf("\"status\":\"%s\"}", r->miss_floor || r->miss_libjwt ? "MISS" : "PASS");
  }
  printf("],\"scaling\":[");
  for (size_t i = 0; i < g_nscal; i++) {
    const scaling *s = &g_scal[i];
    printf("%s{\"alg\":\"%s\",\"op\":\"verify\",\"threads\":2,", i ? "," : "", s->a->label);
    json_num("one_thread_ops", s->one, 1);
    json_num("two_threads_ops", s->two, 1);
    json_num("factor", s->factor, 1);
    json_num("cpu_two_threads", s->cpu_two, 1);
    json_num("cpu_efficiency", s->eff, 1);
    json_num("blocked_per_s", s->blocked, 1);
    json_num("floor_factor", s->floor_factor, 1);
    json_num("floor_cpu_efficiency", s->floor_eff, 1);
    printf("\"status\":\"%s\"}", s->factor >= TARGET_SCALING ? "PASS" : "MISS");
  }
  printf("],\"memory\":{\"peak_rss_before_kib\":%ld,\"peak_rss_after_kib\":%ld,", g_mem.peak_before_kib,
         g_mem.peak_after_kib);
  printf("\"pass_verifies\":%lu,\"pass_signs\":%lu,\"rss_pass1_kib\":%ld,\"rss_pass2_kib\":%ld,", g_mem.verifies,
         g_mem.signs, g_mem.rss1_kib, g_mem.rss2_kib);
  if (g_mem.heap1 >= 0 && g_mem.heap2 >= 0)
    printf("\"heap_pass1\":%lld,\"heap_pass2\":%lld}}\n", g_mem.heap1, g_mem.heap2);
  else
    printf("\"heap_pass1\":null,\"heap_pass2\":null}}\n");
}

int main(int argc, char **argv) {
  options o = {.seconds = 0.3, .runs = 5};
  parse_args(argc, argv, &o);
  size_t nalg;
  const bench_alg *algs = bench_algs(&nalg);
  g_mem.peak_before_kib = peak_rss_kib();
  g_load_start = load_avg();

  if (!o.json) print_table_head(&o);
  for (size_t i = 0; i < nalg; i++)
    if (!o.any_alg || o.want[i]) run_row(&algs[i], &o);
  for (size_t i = 0; i < nalg; i++) {
    jwtkit_alg al = algs[i].alg;
    int scaled = (al == JWTKIT_ALG_HS256 || al == JWTKIT_ALG_ES256 || al == JWTKIT_ALG_RS256 ||
                  (al == JWTKIT_ALG_EDDSA && algs[i].bits == 0));
    if (scaled && (!o.any_alg || o.want[i])) run_scaling(&algs[i], &o);
  }
  g_mem.peak_after_kib = peak_rss_kib();
  run_memory(&o);
  fixture_cleanup();
  g_load_end = load_avg();

  if (o.json)
    print_json(&o);
  else
    print_text_tail();
  return 0;
}
