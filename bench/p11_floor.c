/*
 * jwtkit-p11-floor: what the token itself signs per second, with 1, 2,
 * 4... threads, each on a session of its own, calling C_SignInit + C_Sign
 * in a loop (no jwtkit in between): the ceiling jwtkit-p11-bench's token
 * rows are measured against (bench/p11.sh prints both).
 *
 *   jwtkit-p11-floor [--seconds S] [--runs R] [--threads 1,2,4] MODULE TOKEN PINFILE LABEL ALG OBJECT...
 *
 * ALG is ES256 (CKM_ECDSA over a 32-byte digest) or RS256
 * (CKM_SHA256_RSA_PKCS over a 200-byte message); OBJECT the key's
 * CKA_LABEL.  Prints Markdown rows like jwtkit-p11-bench.  A benchmark,
 * not a test: exit 0 after a run, 2 on a usage error, 3 when the token or
 * a key cannot be used.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/p11-kit.h>

#define MAX_THREADS 8
#define MAX_RUNS 15

static CK_FUNCTION_LIST *g_fl;
static CK_SLOT_ID g_slot;

typedef struct run_ctx {
  CK_OBJECT_HANDLE key;
  CK_MECHANISM_TYPE mech;
  atomic_int go, stop, errors;
  atomic_ullong ops;
} run_ctx;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *worker(void *arg) {
  run_ctx *c = arg;
  CK_SESSION_HANDLE h;
  if (g_fl->C_OpenSession(g_slot, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK) {
    atomic_fetch_add(&c->errors, 1);
    return NULL;
  }
  unsigned char msg[200], sig[1024];
  memset(msg, 'j', sizeof msg);
  CK_MECHANISM m = {c->mech, NULL, 0};
  CK_ULONG inl = c->mech == CKM_ECDSA ? 32 : sizeof msg;
  unsigned long long n = 0;
  while (!atomic_load(&c->go)) {
  }
  while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
    CK_ULONG sl = sizeof sig;
    if (g_fl->C_SignInit(h, &m, c->key) != CKR_OK || g_fl->C_Sign(h, msg, inl, sig, &sl) != CKR_OK) {
      atomic_fetch_add(&c->errors, 1);
      break;
    }
    n++;
  }
  atomic_fetch_add(&c->ops, n);
  g_fl->C_CloseSession(h);
  return NULL;
}

static double measure(CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mech, int threads, double seconds, int *errors) {
  run_ctx c = {.key = key, .mech = mech};
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

static int usage(void) {
  fprintf(stderr, "usage: jwtkit-p11-floor [--seconds S] [--runs R] [--threads 1,2,4] MODULE TOKEN PINFILE "
                  "LABEL ALG OBJECT...\n");
  return 2;
}

/* The slot of the token labelled `label` (blank padded in CK_TOKEN_INFO). */
static int find_slot(const char *label) {
  CK_SLOT_ID slots[64];
  CK_ULONG n = 64;
  if (g_fl->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) return -1;
  for (CK_ULONG i = 0; i < n; i++) {
    CK_TOKEN_INFO ti;
    if (g_fl->C_GetTokenInfo(slots[i], &ti) != CKR_OK) continue;
    size_t l = sizeof ti.label;
    while (l > 0 && ti.label[l - 1] == ' ') l--;
    if (l == strlen(label) && memcmp(ti.label, label, l) == 0) {
      g_slot = slots[i];
      return 0;
    }
  }
  return -1;
}

int main(int argc, char **argv) {
  double seconds = 1.0;
  int runs = 3, threads[MAX_THREADS], nthreads = 0, i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    if (i + 1 >= argc) return usage();
    if (strcmp(argv[i], "--seconds") == 0) {
      seconds = atof(argv[i + 1]);
      if (seconds <= 0 || seconds > 60) return usage();
    } else if (strcmp(argv[i], "--runs") == 0) {
      runs = atoi(argv[i + 1]);
      if (runs < 1 || runs > MAX_RUNS) return usage();
    } else if (strcmp(argv[i], "--threads") == 0) {
      nthreads = 0;
      for (char *t = strtok(argv[i + 1], ","); t != NULL && nthreads < MAX_THREADS; t = strtok(NULL, ",")) {
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
  if (argc - i < 6 || (argc - i - 3) % 3 != 0) return usage();
  const char *module = argv[i], *token = argv[i + 1], *pinfile = argv[i + 2];
  char pin[256] = "";
  FILE *f = fopen(pinfile, "r");
  if (f == NULL || fgets(pin, sizeof pin, f) == NULL) {
    fprintf(stderr, "jwtkit-p11-floor: cannot read %s\n", pinfile);
    return 3;
  }
  fclose(f);
  pin[strcspn(pin, "\r\n")] = '\0';
  if ((g_fl = p11_kit_module_load(module, 0)) == NULL || p11_kit_module_initialize(g_fl) != CKR_OK ||
      find_slot(token) != 0) {
    fprintf(stderr, "jwtkit-p11-floor: no token %s in %s\n", token, module);
    return 3;
  }
  CK_SESSION_HANDLE login; /* held open: the token stays logged in for every session */
  if (g_fl->C_OpenSession(g_slot, CKF_SERIAL_SESSION, NULL, NULL, &login) != CKR_OK ||
      g_fl->C_Login(login, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin)) != CKR_OK) {
    fprintf(stderr, "jwtkit-p11-floor: cannot log in to %s\n", token);
    return 3;
  }
  for (int r = i + 3; r + 2 < argc; r += 3) {
    const char *label = argv[r], *alg = argv[r + 1], *object = argv[r + 2];
    CK_MECHANISM_TYPE mech = strcmp(alg, "ES256") == 0 ? CKM_ECDSA : strcmp(alg, "RS256") == 0 ? CKM_SHA256_RSA_PKCS : 0;
    if (mech == 0) return usage();
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)(uintptr_t)object, strlen(object)}};
    CK_OBJECT_HANDLE key;
    CK_ULONG n = 0;
    if (g_fl->C_FindObjectsInit(login, t, 2) != CKR_OK || g_fl->C_FindObjects(login, &key, 1, &n) != CKR_OK ||
        g_fl->C_FindObjectsFinal(login) != CKR_OK || n != 1) {
      fprintf(stderr, "jwtkit-p11-floor: no private key %s in %s\n", object, token);
      return 3;
    }
    int errors = 0;
    (void)measure(key, mech, 1, seconds / 4, &errors); /* warm up */
    printf("| %s | %s |", label, alg);
    for (int k = 0; k < nthreads; k++) {
      double v[MAX_RUNS];
      for (int m = 0; m < runs; m++) v[m] = measure(key, mech, threads[k], seconds, &errors);
      qsort(v, (size_t)runs, sizeof *v, cmp_double);
      printf(" %.0f/s |", v[runs / 2]);
      fflush(stdout);
    }
    printf("\n");
    if (errors) {
      fprintf(stderr, "jwtkit-p11-floor: %s: %d signing errors\n", label, errors);
      return 1;
    }
  }
  g_fl->C_CloseSession(login);
  p11_kit_module_finalize(g_fl);
  p11_kit_module_release(g_fl);
  return 0;
}
