/* Timing: fixed time slices, ops counted in batches between clock reads. */
#include <stdlib.h>
#include <time.h>

#include "bench.h"

#define BATCH_SECONDS 0.0005 /* aim for ~0.5 ms between clock reads */
#define WALL_CAP 20.0        /* a CPU-time slice gives up after this many times its length in wall time */

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_now(void) { return clock_s(CLOCK_MONOTONIC); }

double bench_thread_cpu(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

static int run_batch(const bench_meter *m, unsigned n) {
  for (unsigned i = 0; i < n; i++)
    if (m->op(m->ctx) != 0) return -1;
  return 0;
}

double bench_warmup(bench_meter *m, double seconds) {
  /* doubling batches until the slice is used up, then size the batch from
   * the observed rate */
  unsigned n = 1;
  unsigned long long ops = 0;
  double t0 = bench_now(), el = 0;
  do {
    if (run_batch(m, n) != 0) return -1;
    ops += n;
    if (n < (1u << 16)) n *= 2;
    el = bench_now() - t0;
  } while (el < seconds);
  double rate = (double)ops / el;
  double b = rate * BATCH_SECONDS;
  m->batch = b < 1 ? 1u : b > 1e6 ? 1000000u : (unsigned)b;
  return rate;
}

int bench_measure(const bench_meter *m, double seconds, int cpu_slice, bench_sample *out) {
  unsigned n = m->batch ? m->batch : 1;
  unsigned long long ops = 0;
  double t0 = bench_now(), c0 = bench_thread_cpu(), wall = 0, cpu = 0;
  do {
    if (run_batch(m, n) != 0) return -1;
    ops += n;
    wall = bench_now() - t0;
    cpu = bench_thread_cpu() - c0;
  } while ((cpu_slice ? cpu : wall) < seconds && wall < WALL_CAP * seconds);
  out->ops = (double)ops;
  out->wall = wall;
  out->cpu = cpu > 0 ? cpu : wall;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_median(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
