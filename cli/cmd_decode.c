/* jwtkit decode: show a token without verifying it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "common/parse.h"

static void print_times(const char *payload, size_t len, int64_t now) {
  static const char *const names[] = {"exp", "nbf", "iat"};
  int header = 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    int64_t t;
    if (!cli_json_seconds(payload, len, names[i], &t)) continue; /* as the verifier reads it */
    if (!header) {
      printf("times (UTC):\n");
      header = 1;
    }
    char when[40], rel[48];
    jk_format_rfc3339(t, when, sizeof when);
    jk_format_relative(t, now, rel, sizeof rel);
    printf("  %s  %s  (%s)\n", names[i], when, rel);
  }
}

int cli_cmd_decode(cli_args *a) {
  int64_t now = (int64_t)time(NULL);
  int rc = cli_opt_time(a, "at", &now);
  if (rc != CLI_OK) return rc;
  cli_buf token;
  rc = cli_read_arg(a, "token", a->npos ? a->pos[0] : "-", CLI_MAX_TOKEN_INPUT, &token);
  if (rc != CLI_OK) return rc;
  cli_buf_trim(&token);
  char *hdr = NULL, *pay = NULL;
  size_t hl = 0, pl = 0;
  jwtkit_errinfo info = {0};
  char msg[300];
  jwtkit_err e = jwtkit_decode_unverified(token.p, token.len, &hdr, &hl, &pay, &pl, &info);
  cli_buf_free(&token);
  if (e != JWTKIT_OK) return cli_fail(a, cli_exit_for(e), "%s", cli_errtext(e, &info, msg, sizeof msg));
  if (cli_opt_flag(a, "json")) {
    printf("{\"header\":%s,\"payload\":%s,\"verified\":false}\n", hdr, pay);
  } else {
    printf("UNVERIFIED: signature not checked\nheader:\n");
    cli_json_pretty(stdout, hdr, hl, 2);
    printf("\npayload:\n");
    cli_json_pretty(stdout, pay, pl, 2);
    printf("\n");
    print_times(pay, pl, now);
  }
  jwtkit_free(hdr);
  jwtkit_free(pay);
  return CLI_OK;
}
