/* Fetching a JWK Set over HTTP(S) with libcurl: bounded, no redirects. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define FETCH_TIMEOUT_MS 5000L

typedef struct sink {
  cli_buf *buf;
  size_t cap, limit;
  int over;
} sink;

static size_t on_data(char *data, size_t size, size_t nmemb, void *ctx) {
  sink *s = ctx;
  size_t n = size * nmemb;
  if (n > s->limit - s->buf->len) {
    s->over = 1;
    return 0; /* aborts the transfer (CURLE_WRITE_ERROR) */
  }
  if (s->buf->len + n + 1 > s->cap) {
    size_t nc = s->cap ? s->cap : 16384;
    while (nc < s->buf->len + n + 1) nc *= 2;
    char *np = realloc(s->buf->p, nc);
    if (np == NULL) return 0;
    s->buf->p = np;
    s->cap = nc;
  }
  memcpy(s->buf->p + s->buf->len, data, n);
  s->buf->len += n;
  s->buf->p[s->buf->len] = '\0';
  return n;
}

int cli_fetch(cli_args *a, const char *url, int allow_http, size_t limit, cli_buf *out) {
  memset(out, 0, sizeof *out);
  int https = strncmp(url, "https://", 8) == 0;
  if (!https && !(strncmp(url, "http://", 7) == 0))
    return cli_usage(a, "%s: only http:// and https:// URLs can be fetched", url);
  if (!https && !allow_http) return cli_usage(a, "%s: plain http is refused; use https:// or --allow-http", url);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return cli_fail(a, CLI_INTERNAL, "cannot initialise libcurl");
  CURL *c = curl_easy_init();
  if (c == NULL) {
    curl_global_cleanup();
    return cli_fail(a, CLI_INTERNAL, "cannot initialise libcurl");
  }
  char errbuf[CURL_ERROR_SIZE] = "";
  sink s = {out, 0, limit, 0};
  int rc = CLI_OK;
  CURLcode cr = CURLE_OK;
  if ((cr = curl_easy_setopt(c, CURLOPT_URL, url)) != CURLE_OK ||
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: the string form */
      (cr = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, allow_http ? "https,http" : "https")) != CURLE_OK ||
#else
      (cr = curl_easy_setopt(c, CURLOPT_PROTOCOLS, allow_http ? (long)(CURLPROTO_HTTPS | CURLPROTO_HTTP) : (long)CURLPROTO_HTTPS)) != CURLE_OK ||
#endif
      (cr = curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L)) != CURLE_OK ||
      (cr = curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, FETCH_TIMEOUT_MS)) != CURLE_OK ||
      (cr = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK ||
      (cr = curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)limit)) != CURLE_OK ||
      (cr = curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf)) != CURLE_OK ||
      (cr = curl_easy_setopt(c, CURLOPT_USERAGENT, "jwtkit/" JWTKIT_VERSION)) != CURLE_OK ||
      (cr = curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data)) != CURLE_OK ||
      (cr = curl_easy_setopt(c, CURLOPT_WRITEDATA, &s)) != CURLE_OK) {
    rc = cli_fail(a, CLI_INTERNAL, "%s: libcurl: %s", url, curl_easy_strerror(cr));
    goto out;
  }
  cr = curl_easy_perform(c);
  if (s.over || cr == CURLE_FILESIZE_EXCEEDED) {
    rc = cli_fail(a, CLI_USAGE, "%s: the response exceeds the limit of %zu KiB", url, limit >> 10);
    goto out;
  }
  if (cr != CURLE_OK) {
    rc = cli_fail(a, CLI_INTERNAL, "cannot fetch %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cr));
    goto out;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    rc = cli_fail(a, CLI_INTERNAL, "cannot fetch %s: HTTP status %ld%s", url, status,
                  status >= 300 && status < 400 ? " (redirects are not followed)" : "");
    goto out;
  }
  if (out->p == NULL && (out->p = calloc(1, 1)) == NULL) rc = cli_fail(a, CLI_INTERNAL, "out of memory");
out:
  curl_easy_cleanup(c);
  curl_global_cleanup();
  if (rc != CLI_OK) cli_buf_free(out);
  return rc;
}
