/* A PKCS#11 module for tests that stands in front of a real one (SoftHSM)
 * and gives it a session limit, the way a hardware token has one.
 *
 *   JWTKIT_SHIM_MODULE  the real module (default: SoftHSM's)
 *   JWTKIT_SHIM_CTL     a file whose first number is the most sessions the
 *                       token holds at once (read at every C_OpenSession;
 *                       missing or not a number: no limit)
 *   JWTKIT_SHIM_LOG     a file that gets a line "CKR_SESSION_COUNT open=N"
 *                       for every session refused
 *   JWTKIT_SHIM_SIGN_MS milliseconds C_Sign takes at least (a slow token:
 *                       concurrent signers then surely overlap)
 *   JWTKIT_SHIM_SIGN_GATE  a path: while nothing exists there, C_Sign
 *                       waits (the test decides when signatures end)
 *
 * Every other call goes to the real module unchanged. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST g_shim;
static CK_FUNCTION_LIST *g_real;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static long g_open;

static long limit(void) {
  const char *ctl = getenv("JWTKIT_SHIM_CTL");
  FILE *f = ctl ? fopen(ctl, "r") : NULL;
  long n = -1;
  if (f != NULL) {
    if (fscanf(f, "%ld", &n) != 1) n = -1;
    fclose(f);
  }
  return n;
}

static void note(long open) {
  const char *log = getenv("JWTKIT_SHIM_LOG");
  FILE *f = log ? fopen(log, "a") : NULL;
  if (f == NULL) return;
  fprintf(f, "CKR_SESSION_COUNT open=%ld\n", open);
  fclose(f);
}

static CK_RV shim_open(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR ph) {
  pthread_mutex_lock(&g_mu);
  long max = limit();
  if (max >= 0 && g_open >= max) {
    long open = g_open;
    pthread_mutex_unlock(&g_mu);
    note(open);
    return CKR_SESSION_COUNT;
  }
  CK_RV rv = g_real->C_OpenSession(slot, flags, app, notify, ph);
  if (rv == CKR_OK) g_open++;
  pthread_mutex_unlock(&g_mu);
  return rv;
}

static CK_RV shim_close(CK_SESSION_HANDLE h) {
  pthread_mutex_lock(&g_mu);
  CK_RV rv = g_real->C_CloseSession(h);
  if (rv == CKR_OK && g_open > 0) g_open--;
  pthread_mutex_unlock(&g_mu);
  return rv;
}

static CK_RV shim_close_all(CK_SLOT_ID slot) {
  pthread_mutex_lock(&g_mu);
  CK_RV rv = g_real->C_CloseAllSessions(slot);
  if (rv == CKR_OK) g_open = 0; /* the tests use one slot */
  pthread_mutex_unlock(&g_mu);
  return rv;
}

static CK_RV shim_finalize(CK_VOID_PTR reserved) {
  pthread_mutex_lock(&g_mu);
  CK_RV rv = g_real->C_Finalize(reserved);
  if (rv == CKR_OK) g_open = 0;
  pthread_mutex_unlock(&g_mu);
  return rv;
}

static CK_RV shim_sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len) {
  const char *ms = getenv("JWTKIT_SHIM_SIGN_MS");
  long n = ms ? strtol(ms, NULL, 10) : 0;
  if (n > 0 && sig != NULL) {
    struct timespec d = {n / 1000, (n % 1000) * 1000000L};
    while (nanosleep(&d, &d) != 0) {
    }
  }
  const char *gate = getenv("JWTKIT_SHIM_SIGN_GATE");
  while (gate != NULL && sig != NULL && access(gate, F_OK) != 0) {
    struct timespec d = {0, 10 * 1000000L};
    nanosleep(&d, NULL);
  }
  return g_real->C_Sign(h, data, len, sig, sig_len);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out) {
  if (out == NULL) return CKR_ARGUMENTS_BAD;
  pthread_mutex_lock(&g_mu);
  if (g_real == NULL) {
    const char *path = getenv("JWTKIT_SHIM_MODULE");
    void *h = dlopen(path ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
    CK_C_GetFunctionList get = h ? (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList") : NULL;
    CK_FUNCTION_LIST_PTR real = NULL;
    if (get == NULL || get(&real) != CKR_OK || real == NULL) {
      pthread_mutex_unlock(&g_mu);
      return CKR_GENERAL_ERROR;
    }
    g_real = real;
    g_shim = *real;
    g_shim.C_OpenSession = shim_open;
    g_shim.C_CloseSession = shim_close;
    g_shim.C_CloseAllSessions = shim_close_all;
    g_shim.C_Finalize = shim_finalize;
    g_shim.C_Sign = shim_sign;
  }
  pthread_mutex_unlock(&g_mu);
  *out = &g_shim;
  return CKR_OK;
}
