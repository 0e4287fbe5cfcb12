/*
 * regress_cases: every file under CASES/<harness>/ goes through the same
 * code as the libFuzzer harness of that name (fuzz/fuzz_<harness>.c, built
 * here without libFuzzer).  A property violation aborts, so a case that
 * breaks again fails the test.
 *
 *   regress_cases [CASES_DIR]     (default: tests/regress/cases)
 *
 * Built with JKR_SERVE, JKR_GATE or JKR_UI (regress_serve, regress_gate,
 * regress_ui: see jwtkit_regress() in CMakeLists.txt) it runs the cases of
 * the service harnesses (serve_*, gate_*, ui_*) instead, linked with the
 * service's code; with JKR_NGINX (regress_nginx, nginx/CMakeLists.txt) the
 * nginx module's argument parsing (nginx_args).
 *
 * tests/regress/pending/ holds inputs that still fail (library bugs not yet
 * fixed); ctest does not run them:
 *   regress_cases tests/regress/pending
 * (in a -DJWTKIT_SANITIZE=ON build for the cases that only UBSan/ASan see).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

/* The library's harnesses, or (JKR_SERVE / JKR_GATE, built by
 * services/CMakeLists.txt and services/gate/CMakeLists.txt) a service's. */
static const struct {
  const char *name;
  int (*fn)(const uint8_t *, size_t);
} k_harness[] = {
#if !defined(JKR_SERVE) && !defined(JKR_GATE) && !defined(JKR_UI) && !defined(JKR_NGINX)
    {"token", jkf_token}, {"json", jkf_json},       {"jwk", jkf_jwk},       {"jwks", jkf_jwks},
    {"pem", jkf_pem},     {"claims", jkf_claims},   {"keyring", jkf_keyring}, {"b64url", jkf_b64url},
    {"p11uri", jkf_p11uri},
#endif
#ifdef JKR_SERVE
    {"serve_config", jkf_serve_config}, {"serve_clients", jkf_serve_clients}, {"serve_http", jkf_serve_http},
#endif
#ifdef JKR_GATE
    {"gate_config", jkf_gate_config}, {"gate_request", jkf_gate_request},
#endif
#ifdef JKR_UI
    {"ui_api", jkf_ui_api},
#endif
#ifdef JKR_NGINX
    {"nginx_args", jkf_nginx_args},
#endif
};

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 1024, n = 0;
  unsigned char *buf = malloc(cap);
  while (buf != NULL) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    unsigned char *nb = realloc(buf, cap * 2);
    if (nb == NULL) {
      free(buf);
      buf = NULL;
    }
    buf = nb;
    cap *= 2;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

int main(int argc, char **argv) {
  const char *root = argc > 1 ? argv[1] : JKR_CASES_DIR;
  size_t total = 0, harnesses = 0, failed = 0;
  for (size_t h = 0; h < sizeof k_harness / sizeof *k_harness; h++) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", root, k_harness[h].name);
    DIR *d = opendir(dir);
    if (d == NULL) continue;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.') continue;
      char **nn = realloc(names, (n + 1) * sizeof *nn);
      if (nn == NULL || (nn[n] = strdup(e->d_name)) == NULL) {
        fprintf(stderr, "regress_cases: out of memory\n");
        return 2;
      }
      names = nn;
      n++;
    }
    closedir(d);
    if (n > 0) qsort(names, n, sizeof *names, cmp);
    size_t ran = 0;
    for (size_t i = 0; i < n; i++) {
      char path[8192];
      snprintf(path, sizeof path, "%s/%s", dir, names[i]);
      struct stat st;
      if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        free(names[i]);
        continue;
      }
      size_t len = 0;
      unsigned char *data = slurp(path, &len);
      if (data == NULL) {
        fprintf(stderr, "regress_cases: cannot read %s\n", path);
        return 2;
      }
      printf("%s/%s (%zu bytes)\n", k_harness[h].name, names[i], len);
      fflush(stdout);
      fflush(stderr);
      pid_t pid = fork();
      if (pid < 0) {
        perror("regress_cases: fork");
        return 2;
      }
      if (pid == 0) {
        k_harness[h].fn(data, len);
        exit(0); /* atexit: the keyring and service harnesses remove their directories */
      }
      int status = 0;
      while (waitpid(pid, &status, 0) < 0) {
      }
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFSIGNALED(status))
          printf("  FAILED: %s/%s (signal %d)\n", k_harness[h].name, names[i], WTERMSIG(status));
        else
          printf("  FAILED: %s/%s (exit %d)\n", k_harness[h].name, names[i], WEXITSTATUS(status));
        failed++;
      }
      free(data);
      free(names[i]);
      ran++;
    }
    free(names);
    if (ran > 0) harnesses++;
    total += ran;
  }
  printf("regress_cases: %zu inputs through %zu harnesses, %zu failed\n", total, harnesses, failed);
  return failed ? 1 : 0;
}
