/* jwtkit pem check: the PEM validator. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static void describe_block(const char *path, const jwtkit_pem_block *b) {
  printf("%s: block at line %zu: %s", path, b->line, jwtkit_pem_type_name(b->type));
  if (b->family[0] != '\0') printf(", %s", b->family);
  if (b->curve[0] != '\0')
    printf(" %s", b->curve);
  else if (b->bits != 0)
    printf(" %u bits", b->bits);
  printf(" (%s)\n", b->label);
}

/* Human report of one report (one file, or a pair).  Returns the number of
 * problems. */
static size_t print_report(const jwtkit_pem_report *r, const char *const paths[2]) {
  for (size_t i = 0; i < jwtkit_pem_report_blocks(r); i++) {
    const jwtkit_pem_block *b = jwtkit_pem_report_block(r, i);
    describe_block(paths[b->file ? 1 : 0], b);
  }
  size_t n = jwtkit_pem_report_findings(r);
  for (size_t i = 0; i < n; i++) {
    const jwtkit_pem_finding *f = jwtkit_pem_report_finding(r, i);
    const char *p = paths[f->file ? 1 : 0];
    if (f->line != 0)
      printf("%s:%zu: problem: %s: %s\n", p, f->line, jwtkit_pem_problem_name(f->problem), f->msg);
    else
      printf("%s: problem: %s: %s\n", p, jwtkit_pem_problem_name(f->problem), f->msg);
  }
  if (n == 0) {
    if (paths[1] != NULL)
      printf("%s + %s: ok, the keys match\n", paths[0], paths[1]);
    else
      printf("%s: ok\n", paths[0]);
  }
  return n;
}

int cli_cmd_pem(cli_args *a) {
  if (strcmp(a->pos[0], "check") != 0) return cli_usage(a, "unknown pem operation \"%s\" (only: check)", a->pos[0]);
  size_t nfiles = a->npos - 1;
  int pair = cli_opt_flag(a, "pair");
  if (nfiles == 0) return cli_usage(a, "pem check needs at least one FILE");
  if (pair && nfiles != 2) return cli_usage(a, "--pair takes exactly two files: PRIVATE PUBLIC");
  int json = cli_opt_flag(a, "json");
  cli_buf pass;
  int rc = cli_read_passphrase(a, &pass);
  if (rc != CLI_OK) return rc;
  size_t problems = 0;
  int io_error = 0;
  if (json) printf("[");
  size_t runs = pair ? 1 : nfiles;
  for (size_t i = 0; i < runs; i++) {
    const char *paths[2] = {a->pos[1 + i], pair ? a->pos[2] : NULL};
    jwtkit_pem_report *r = NULL;
    jwtkit_err e = pair ? jwtkit_pem_check_pair(paths[0], paths[1], pass.p, &r)
                        : jwtkit_pem_check_file(paths[0], pass.p, &r);
    if (e != JWTKIT_OK) {
      if (e == JWTKIT_ERR_IO) { /* say why: the library reports only that it could not read */
        const char *bad = paths[0];
        struct stat st;
        int eno = 0;
        for (int k = 0; k < 2 && paths[k] != NULL && eno == 0; k++) {
          int fd = open(paths[k], O_RDONLY | O_CLOEXEC | O_NOCTTY);
          if (fd < 0) eno = errno;
          else if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) eno = EISDIR;
          if (fd >= 0) close(fd);
          if (eno != 0) bad = paths[k];
        }
        fprintf(stderr, "jwtkit: pem: cannot read %s: %s\n", bad, eno ? strerror(eno) : "read error");
      } else {
        fprintf(stderr, "jwtkit: pem: %s: %s\n", paths[0], jwtkit_strerror(e));
      }
      io_error = e == JWTKIT_ERR_IO ? 2 : 3;
      continue;
    }
    if (json) {
      char *text = NULL;
      size_t len = 0;
      if (jwtkit_pem_report_to_json(r, paths[0], &text, &len) == JWTKIT_OK) {
        printf("%s%.*s", i ? "," : "", (int)len, text);
        jwtkit_free(text);
      } else {
        io_error = 3;
      }
      problems += jwtkit_pem_report_findings(r);
    } else {
      problems += print_report(r, paths);
    }
    jwtkit_pem_report_free(r);
  }
  if (json) printf("]\n");
  cli_buf_free(&pass);
  if (io_error) return io_error == 2 ? CLI_USAGE : CLI_INTERNAL;
  return problems ? CLI_FAIL : CLI_OK;
}
