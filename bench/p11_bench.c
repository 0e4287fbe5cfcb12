/*
 * jwtkit-p11-bench: sign throughput of keys in a PKCS#11 token next to the
 * same algorithms from key files, with 1, 2, 4... threads sharing one
 * signer (bench/p11.sh sets up a SoftHSM token and runs it).
 *
 *   jwtkit-p11-bench [--seconds S] [--runs R] [--threads 1,2,4] LABEL ALG KEY...
 *
 * KEY is a PEM file or a pkcs11: URI.  For every row and thread count: R
 * runs of S wall-clock seconds, the median signatures per second of all
 * threads together.  Before timing, a token of each key is verified with
 * its public half (exit 1 when not).  A benchmark, not a test: exit 0
 * after a run, 2 on a usage error, 3 when a key cannot be loaded.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jwtkit/jwtkit.h"

#define MAX_ROWS 16
#define MAX_THREADS 8
#define MAX_RUNS 15
#define CLAIMS "{\"iss\":\"https://issuer.example.com\",\"sub\":\"user-1234567890\",\"aud\":\"api.example.com\",\"iat\":1800000000,\"exp\":1800003600,\"scope\":\"read:messages write:messages\"}"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct run_ctx {
  jwtkit_signer *signer;
  atomic_int go, stop;
  atomic_ullong ops;
  atomic_int errors;
} run_ctx;

static void *worker(void *arg) {
  run_ctx *c = arg;
  char tok[4096];
  unsigned long long n = 0;
  while (!atomic_load(&c->go)) {
  }
  while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
    size_t tl = sizeof tok;
    if (jwtkit_signer_sign_buf(c->signer, CLAIMS, strlen(CLAIMS), tok, &tl, NULL) != JWTKIT_OK) {
      atomic_fetch_add(&c->errors, 1);
      break;
    }
    n++;
  }
  atomic_fetch_add(&c->ops, n);
  return NULL;
}

/* Signatures per second of `threads` threads over `seconds`. */
static double measure(jwtkit_signer *s, int threads, double seconds, int *errors) {
  run_ctx c = {.signer = s};
  pthread_t th[MAX_THREADS];
  for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, worker, &c);
  double t0 = now_s();
  atomic_store(&c.go, 1);
  struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  nanosleep(&ts, NULL);
  atomic_store(&c.stop, 1);
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  double el = now_s() - t0;
  *errors += atomic_load(&c.errors);
  return (double)atomic_load(&c.ops) / el;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static jwtkit_key *load(const char *alg_s, const char *src) {
  jwtkit_alg alg = jwtkit_alg_from_name(alg_s, strlen(alg_s));
  jwtkit_errinfo e = {0};
  jwtkit_key *k = NULL;
  jwtkit_err rc;
  if (jwtkit_is_pkcs11_uri(src)) {
    rc = jwtkit_key_from_pkcs11(&k, alg, src, &e);
  } else {
    FILE *f = fopen(src, "rb");
    char buf[16384];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    rc = jwtkit_key_from_pem(&k, alg, buf, n, NULL, &e);
  }
  if (rc != JWTKIT_OK) fprintf(stderr, "jwtkit-p11-bench: %s: %s: %s\n", src, jwtkit_strerror(rc), e.msg);
  return k;
}

/* One token of the key verifies with its public half. */
static int check(jwtkit_key *k) {
  char *jwk = NULL, *tok = NULL;
  size_t jl = 0, tl = 0;
  jwtkit_key *pub = NULL;
  jwtkit_policy *p = jwtkit_policy_new();
  jwtkit_verifier *v = NULL;
  int ok = p != NULL && jwtkit_key_to_jwk(k, 0, &jwk, &jl) == JWTKIT_OK &&
           jwtkit_key_from_jwk(&pub, jwtkit_key_alg(k), jwk, jl, NULL) == JWTKIT_OK &&
           jwtkit_sign(k, NULL, CLAIMS, strlen(CLAIMS), &tok, &tl, NULL) == JWTKIT_OK &&
           jwtkit_policy_allow_alg(p, jwtkit_key_alg(k)) == JWTKIT_OK && jwtkit_policy_add_key(p, pub) == JWTKIT_OK &&
           jwtkit_policy_add_issuer(p, "https://issuer.example.com") == JWTKIT_OK &&
           jwtkit_policy_add_audience(p, "api.example.com") == JWTKIT_OK &&
           jwtkit_verifier_new(&v, p, NULL) == JWTKIT_OK && jwtkit_verify_at(v, tok, tl, 1800000001, NULL, NULL) == JWTKIT_OK;
  jwtkit_verifier_free(v);
  jwtkit_policy_free(p);
  jwtkit_key_free(pub);
  jwtkit_free(jwk);
  jwtkit_free(tok);
  return ok;
}

static int usage(void) {
  fprintf(stderr, "usage: jwtkit-p11-bench [--seconds S] [--runs R] [--threads 1,2,4] LABEL ALG KEY...\n"
                  "  KEY: a PEM file or a pkcs11: URI\n");
  return 2;
}

int main(int argc, char **argv) {
  double seconds = 1.0;
  int runs = 3, threads[MAX_THREADS], nthreads = 0;
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    if (i + 1 >= argc) return usage();
    if (strcmp(argv[i], "--seconds") == 0) {
      seconds = atof(argv[i + 1]);
      if (seconds <= 0 || seconds > 60) return usage();
    } else if (strcmp(argv[i], "--runs") == 0) {
      runs = atoi(argv[i + 1]);
      if (runs < 1 || runs > MAX_RUNS) return usage();
    } else if (strcmp(argv[i], "--threads") == 0) {
      char *s = argv[i + 1];
      nthreads = 0;
      for (char *t = strtok(s, ","); t != NULL && nthreads < MAX_THREADS; t = strtok(NULL, ",")) {
        int n = atoi(t);
        if (n < 1 || n > MAX_THREADS) return usage();
        threads[nthreads++] = n;
      }
    } else {
      return usage();
    }
  }
  if (nthreads == 0) {
    threads[0] = 1, threads[1] = 2, threads[2] = 4;
    nthreads = 3;
  }
  int nrows = (argc - i) / 3;
  if (nrows < 1 || (argc - i) % 3 != 0 || nrows > MAX_ROWS) return usage();

  printf("| key | alg |");
  for (int t = 0; t < nthreads; t++) printf(" %d thread%s |", threads[t], threads[t] > 1 ? "s" : "");
  printf("\n|---|---|");
  for (int t = 0; t < nthreads; t++) printf("---:|");
  printf("\n");
  for (int r = 0; r < nrows; r++) {
    const char *label = argv[i + 3 * r], *alg = argv[i + 3 * r + 1], *src = argv[i + 3 * r + 2];
    jwtkit_key *k = load(alg, src);
    if (k == NULL) return 3;
    if (!check(k)) {
      fprintf(stderr, "jwtkit-p11-bench: %s: a token of this key does not verify\n", label);
      return 1;
    }
    jwtkit_signer *s = NULL;
    if (jwtkit_signer_new(&s, k, NULL, NULL) != JWTKIT_OK) return 3;
    (void)measure(s, 1, seconds / 4, &(int){0}); /* warm up: sessions, contexts */
    printf("| %s | %s |", label, alg);
    int errors = 0;
    for (int t = 0; t < nthreads; t++) {
      double v[MAX_RUNS];
      for (int n = 0; n < runs; n++) v[n] = measure(s, threads[t], seconds, &errors);
      qsort(v, (size_t)runs, sizeof *v, cmp_double);
      printf(" %.0f/s |", v[runs / 2]);
      fflush(stdout);
    }
    printf("\n");
    jwtkit_signer_free(s);
    jwtkit_key_free(k);
    if (errors) {
      fprintf(stderr, "jwtkit-p11-bench: %s: %d signing errors\n", label, errors);
      return 1;
    }
  }
  return 0;
}
