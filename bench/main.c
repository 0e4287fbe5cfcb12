/*
 * jwtkit-bench: sign and verify throughput of jwtkit next to the raw
 * OpenSSL floor for the same crypto and next to libjwt, in one process.
 *
 * For every algorithm row: build the keys and one token of the fixed shape,
 * check that every contender gets the right answer, warm up, then time
 * fixed slices R times, interleaving the contenders (and rotating who goes
 * first) within each repetition so that machine noise hits all of them.
 * Medians and their ratios are reported.  Then a 2-thread verify scaling run
 * and a steady-state memory check.
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

enum { EXIT_CHECK = 1, EXIT_USAGE = 2, EXIT_SETUP = 3 };
enum { C_JWTKIT, C_FLOOR, C_LIBJWT, C_COUNT };

typedef struct options {
  double seconds;
  unsigned runs;
  int json;
  int with_claims;
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
  double one, two, factor;
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
  fputs("usage: jwtkit-bench [--time SECONDS] [--runs N] [--quick] [--alg NAME]... [--with-claims] [--json]\n"
        "  --time S       time slice per measurement (default 0.3)\n"
        "  --runs N       repetitions; the median is reported (default 5)\n"
        "  --quick        --time 0.05 --runs 3, smaller memory passes (smoke test)\n"
        "  --alg NAME     only this row (repeatable): HS256 HS384 HS512 RS256 RS384 RS512\n"
        "                 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA (Ed25519) Ed448\n"
        "  --with-claims  time jwtkit verify with the claims handed out and freed\n"
        "                 (default: claims = NULL)\n"
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
    if (strcmp(s, "--time") == 0 && val != NULL) {
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

static void time_op(row *r, bench_meter m[C_COUNT], const options *o) {
  double warm = o->seconds < 0.1 ? o->seconds : 0.1;
  for (int c = 0; c < C_COUNT; c++)
    if (r->present[c] && bench_warmup(&m[c], warm) < 0) die(EXIT_CHECK, "%s %s: an operation failed", r->a->label, r->op);
  for (unsigned rep = 0; rep < o->runs; rep++)
    for (int k = 0; k < C_COUNT; k++) {
      int c = (int)((rep + (unsigned)k) % C_COUNT);
      if (!r->present[c]) continue;
      double v = bench_measure(&m[c], o->seconds);
      if (v < 0) die(EXIT_CHECK, "%s %s: an operation failed while timed", r->a->label, r->op);
      r->runs[c][rep] = v;
    }
  for (int c = 0; c < C_COUNT; c++) {
    if (!r->present[c]) continue;
    double tmp[MAX_RUNS];
    memcpy(tmp, r->runs[c], o->runs * sizeof tmp[0]);
    r->med[c] = bench_median(tmp, o->runs);
  }
  r->target_floor = bench_alg_is_hmac(r->a) ? TARGET_HMAC : TARGET_ASYM;
  r->ratio_floor = r->med[C_JWTKIT] / r->med[C_FLOOR];
  r->miss_floor = r->ratio_floor < r->target_floor;
  if (r->present[C_LIBJWT]) {
    r->ratio_libjwt = r->med[C_JWTKIT] / r->med[C_LIBJWT];
    r->miss_libjwt = r->ratio_libjwt < TARGET_LIBJWT;
  }
}

static const char *status_of(const row *r) {
  if (r->miss_floor && r->miss_libjwt) return "MISS(floor,libjwt)";
  if (r->miss_floor) return "MISS(floor)";
  if (r->miss_libjwt) return "MISS(libjwt)";
  return "PASS";
}

static void print_table_head(const options *o) {
  printf("jwtkit-bench %s | %s | libjwt %s\n", jwtkit_version(), floor_openssl_version(),
         peer_available() ? peer_version() : "not found");
  printf("median ops/s of %u runs x %.2f s, contenders interleaved; jwtkit verify = jwtkit_verify_at(claims=%s)\n",
         o->runs, o->seconds, o->with_claims ? "out+free" : "NULL");
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
  floor_ctx *fl = floor_new(fx, err, sizeof err);
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
  double seconds, warm;
  pthread_barrier_t *bar;
  double rate;
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  bench_meter warm = w->m;
  if (bench_warmup(&warm, w->warm) < 0) {
    w->rate = -1;
  }
  if (w->bar != NULL) pthread_barrier_wait(w->bar);
  if (w->rate >= 0) w->rate = bench_measure(&w->m, w->seconds);
  return NULL;
}

/* Total verify ops/s of n threads sharing the fixture's verifier. */
static double threads_run(bench_fixture *fx, unsigned batch, int n, const options *o) {
  pthread_t t[2];
  worker w[2];
  pthread_barrier_t bar;
  if (n > 1 && pthread_barrier_init(&bar, NULL, (unsigned)n) != 0) die(EXIT_SETUP, "pthread_barrier_init failed");
  for (int i = 0; i < n; i++) {
    w[i] = (worker){{jk_op_verify, fx, batch}, o->seconds, 0.02, n > 1 ? &bar : NULL, 0};
    if (pthread_create(&t[i], NULL, worker_main, &w[i]) != 0) die(EXIT_SETUP, "pthread_create failed");
  }
  double total = 0;
  int bad = 0;
  for (int i = 0; i < n; i++) {
    pthread_join(t[i], NULL);
    bad |= w[i].rate < 0;
    total += w[i].rate;
  }
  if (n > 1) pthread_barrier_destroy(&bar);
  if (bad) die(EXIT_CHECK, "%s: verify failed in a thread", fx->a->label);
  return total;
}

static void run_scaling(const bench_alg *a, const options *o) {
  progress(o, a->label, " 2-thread verify");
  bench_fixture *fx = malloc(sizeof *fx);
  char err[256];
  if (fx == NULL) die(EXIT_SETUP, "out of memory");
  if (fixture_init(fx, a, (int64_t)time(NULL), err, sizeof err) != 0) die(EXIT_SETUP, "%s: %s", a->label, err);
  bench_meter m = {jk_op_verify, fx, 0};
  if (bench_warmup(&m, o->seconds < 0.1 ? o->seconds : 0.1) < 0) die(EXIT_CHECK, "%s: verify failed", a->label);
  double one[MAX_RUNS], two[MAX_RUNS];
  for (unsigned rep = 0; rep < o->runs; rep++) {
    if (rep % 2 == 0) {
      one[rep] = threads_run(fx, m.batch, 1, o);
      two[rep] = threads_run(fx, m.batch, 2, o);
    } else {
      two[rep] = threads_run(fx, m.batch, 2, o);
      one[rep] = threads_run(fx, m.batch, 1, o);
    }
  }
  scaling *s = &g_scal[g_nscal++];
  s->a = a;
  s->one = bench_median(one, o->runs);
  s->two = bench_median(two, o->runs);
  s->factor = s->two / s->one;
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
  return (long long)mi.uordblks;
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
    printf("%-6s %12s %12s %8s  %s\n", "alg", "1t_ops", "2t_ops", "scaling", "status");
    for (size_t i = 0; i < g_nscal; i++) {
      const scaling *s = &g_scal[i];
      printf("%-6s %12.0f %12.0f %8.2f  %s\n", s->a->label, s->one, s->two, s->factor,
             s->factor >= TARGET_SCALING ? "PASS" : "MISS");
      misses += s->factor < TARGET_SCALING;
    }
  }
  printf("\nmemory: peak RSS %ld KiB before the runs, %ld KiB after\n", g_mem.peak_before_kib, g_mem.peak_after_kib);
  printf("steady state (HS256; a pass = %lu verifies with claims + %lu with claims=NULL + %lu signs):\n",
         g_mem.verifies, g_mem.verifies, g_mem.signs);
  printf("  RSS after pass 1 %ld KiB, after pass 2 %ld KiB (%+ld KiB)", g_mem.rss1_kib, g_mem.rss2_kib,
         g_mem.rss2_kib - g_mem.rss1_kib);
  if (g_mem.heap1 >= 0)
    printf("; heap in use %lld -> %lld bytes (%+lld)", g_mem.heap1, g_mem.heap2, g_mem.heap2 - g_mem.heap1);
  printf("\n\n%d target(s) missed\n", misses);
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
    printf("\"status\":\"%s\"}", r->miss_floor || r->miss_libjwt ? "MISS" : "PASS");
  }
  printf("],\"scaling\":[");
  for (size_t i = 0; i < g_nscal; i++) {
    const scaling *s = &g_scal[i];
    printf("%s{\"alg\":\"%s\",\"op\":\"verify\",\"threads\":2,", i ? "," : "", s->a->label);
    json_num("one_thread_ops", s->one, 1);
    json_num("two_threads_ops", s->two, 1);
    json_num("factor", s->factor, 1);
    printf("\"status\":\"%s\"}", s->factor >= TARGET_SCALING ? "PASS" : "MISS");
  }
  printf("],\"memory\":{\"peak_rss_before_kib\":%ld,\"peak_rss_after_kib\":%ld,", g_mem.peak_before_kib,
         g_mem.peak_after_kib);
  printf("\"pass_verifies\":%lu,\"pass_signs\":%lu,\"rss_pass1_kib\":%ld,\"rss_pass2_kib\":%ld,", g_mem.verifies,
         g_mem.signs, g_mem.rss1_kib, g_mem.rss2_kib);
  if (g_mem.heap1 >= 0)
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

  if (o.json)
    print_json(&o);
  else
    print_text_tail();
  return 0;
}
