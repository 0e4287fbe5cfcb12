/*
 * nginx/jwtkit_args.c - the module's own argument parsing and claim
 * requirements (jwtkit_args.h), without nginx types.
 */
#include "jwtkit_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "common/parse.h"
#include "core/alloc.h"

static int printable(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return 0;
  return 1;
}

int jka_claim_req_parse(const char *const *args, const size_t *lens, size_t nargs, jka_claim_req *out, char *err,
                        size_t cap) {
  memset(out, 0, sizeof *out);
  if (nargs != 1 && nargs != 3)
    return jk_errf(err, cap, "expected NAME, NAME equals VALUE or NAME contains VALUE (%zu arguments given)", nargs);
  const char *name = args[0];
  size_t nl = lens[0];
  if (nl == 0 || nl > JKA_MAX_CLAIM_NAME)
    return jk_errf(err, cap, "claim name of %zu bytes: 1..%u expected", nl, JKA_MAX_CLAIM_NAME);
  for (size_t i = 0; i < nl; i++)
    if ((unsigned char)name[i] <= 0x20 || (unsigned char)name[i] > 0x7e)
      return jk_errf(err, cap, "claim name: printable ASCII without spaces only (byte %zu is 0x%02x)", i,
                     (unsigned)(unsigned char)name[i]);
  out->name = name;
  out->name_len = nl;
  out->op = JKA_PRESENT;
  if (nargs == 1) return 0;
  if (lens[1] == 6 && memcmp(args[1], "equals", 6) == 0) out->op = JKA_EQUALS;
  else if (lens[1] == 8 && memcmp(args[1], "contains", 8) == 0) out->op = JKA_CONTAINS;
  else {
    char shown[40];
    jka_log_safe(shown, sizeof shown, args[1], lens[1]);
    return jk_errf(err, cap, "unknown check \"%s\" for claim %.*s: expected equals or contains", shown, (int)nl, name);
  }
  size_t vl = lens[2];
  if (vl == 0 || vl > JKA_MAX_VALUE) return jk_errf(err, cap, "value of %zu bytes: 1..%u expected", vl, JKA_MAX_VALUE);
  if (memchr(args[2], '\0', vl) != NULL) return jk_errf(err, cap, "value holds a NUL byte");
  if (out->op == JKA_CONTAINS && memchr(args[2], ' ', vl) != NULL)
    return jk_errf(err, cap, "contains: one word (\"%.*s\" holds a space); give one directive per word",
                   (int)(vl > 200 ? 200 : vl), args[2]);
  out->value = args[2];
  out->value_len = vl;
  return 0;
}

static int has_word(const char *s, size_t n, const char *w, size_t wl) {
  size_t i = 0;
  while (i < n) {
    while (i < n && s[i] == ' ') i++;
    size_t j = i;
    while (j < n && s[j] != ' ') j++;
    if (j > i && j - i == wl && memcmp(s + i, w, wl) == 0) return 1;
    i = j;
  }
  return 0;
}

/* The requirement on a parsed payload (doc, the object at node 0). */
static int holds_doc(const jka_claim_req *q, const jk_jdoc *doc) {
  int idx = jk_json_get(doc, 0, q->name, q->name_len);
  if (idx < 0) return 0;
  const jk_jnode *n = &doc->nodes[idx];
  if (n->type == JK_J_NULL) return 0;
  if (q->op == JKA_PRESENT) return 1;
  if (q->op == JKA_EQUALS) {
    if (n->type == JK_J_STRING) return jk_json_str_eq(doc, (uint32_t)idx, q->value, q->value_len);
    return n->len == q->value_len && memcmp(doc->src + n->off, q->value, n->len) == 0; /* the JSON text */
  }
  /* contains */
  if (n->type == JK_J_STRING) {
    char *s = malloc((size_t)n->len + 1);
    if (s == NULL) return 0;
    size_t sl = jk_json_unescape(doc, (uint32_t)idx, s);
    int r = has_word(s, sl, q->value, q->value_len);
    free(s);
    return r;
  }
  if (n->type != JK_J_ARRAY) return 0;
  int found = 0;
  for (uint32_t c = jk_json_first(doc, (uint32_t)idx); c < n->end; c = jk_json_next(doc, c)) {
    if (doc->nodes[c].type != JK_J_STRING) return 0; /* an array of strings only */
    if (jk_json_str_eq(doc, c, q->value, q->value_len)) found = 1;
  }
  return found;
}

int jka_claim_req_holds_json(const jka_claim_req *q, const char *json, size_t len) {
  jk_jdoc doc;
  if (q->name_len == 0 || q->name_len > JKA_MAX_CLAIM_NAME || json == NULL) return 0;
  if (jk_json_parse_alloc(&doc, json, len, 1, NULL) != JWTKIT_OK) return 0;
  int r = holds_doc(q, &doc);
  jk_free(doc.nodes);
  return r;
}

int jka_claim_req_holds(const jka_claim_req *q, const jwtkit_claims *cl) {
  size_t len = 0;
  const char *json = cl != NULL ? jwtkit_claims_json(cl, &len) : NULL;
  return json != NULL ? jka_claim_req_holds_json(q, json, len) : 0;
}

int jka_legacy_parse(const char *const *args, const size_t *lens, size_t nargs, const char **file, size_t *file_len,
                     const char **deadline, size_t *deadline_len, char *err, size_t cap) {
  *file = *deadline = NULL;
  *file_len = *deadline_len = 0;
  if (nargs != 2) return jk_errf(err, cap, "expected secret_file=PATH deadline=TIME (%zu arguments given)", nargs);
  for (size_t i = 0; i < nargs; i++) {
    const char *a = args[i];
    size_t n = lens[i];
    if (memchr(a, '\0', n) != NULL) return jk_errf(err, cap, "argument %zu holds a NUL byte", i + 1);
    const char **dst = NULL;
    size_t *dl = NULL, pre = 0;
    if (n >= 12 && memcmp(a, "secret_file=", 12) == 0) dst = file, dl = file_len, pre = 12;
    else if (n >= 9 && memcmp(a, "deadline=", 9) == 0) dst = deadline, dl = deadline_len, pre = 9;
    else {
      char shown[40];
      jka_log_safe(shown, sizeof shown, a, n);
      return jk_errf(err, cap, "unknown argument \"%s\": expected secret_file=PATH and deadline=TIME", shown);
    }
    if (*dst != NULL) return jk_errf(err, cap, "%.*s given twice", (int)(pre - 1), a);
    if (n == pre) return jk_errf(err, cap, "%.*s needs a value", (int)(pre - 1), a);
    *dst = a + pre;
    *dl = n - pre;
  }
  if (*file == NULL || *deadline == NULL) return jk_errf(err, cap, "both secret_file=PATH and deadline=TIME are needed");
  return 0;
}

static const char *const k_settings[] = {"timeout", "max_bytes", "min_ttl",   "max_ttl",     "default_ttl",
                                         "refresh_ahead", "cooldown", "stale_max", "ca_file", "unavailable", NULL};

int jka_setting_split(const char *arg, size_t len, const char **key, size_t *key_len, const char **value,
                      size_t *value_len, char *err, size_t cap) {
  const char *eq = memchr(arg, '=', len);
  char shown[40];
  jka_log_safe(shown, sizeof shown, arg, len);
  if (eq == NULL || eq == arg) return jk_errf(err, cap, "\"%s\": expected KEY=VALUE", shown);
  if (memchr(arg, '\0', len) != NULL) return jk_errf(err, cap, "\"%s\" holds a NUL byte", shown);
  size_t kl = (size_t)(eq - arg);
  for (size_t i = 0; k_settings[i]; i++)
    if (strlen(k_settings[i]) == kl && memcmp(k_settings[i], arg, kl) == 0) {
      if (eq + 1 == arg + len) return jk_errf(err, cap, "%s needs a value", k_settings[i]);
      *key = arg;
      *key_len = kl;
      *value = eq + 1;
      *value_len = len - kl - 1;
      return 0;
    }
  return jk_errf(err, cap,
                 "unknown setting \"%.*s\" (timeout, max_bytes, min_ttl, max_ttl, default_ttl, refresh_ahead, cooldown, "
                 "stale_max, ca_file, unavailable)",
                 (int)(kl > 40 ? 40 : kl), shown);
}

int jka_unavailable(const char *v, size_t n, unsigned *status, char *err, size_t cap) {
  if (n == 3 && memcmp(v, "401", 3) == 0) *status = 401;
  else if (n == 3 && memcmp(v, "503", 3) == 0) *status = 503;
  else {
    char shown[40];
    jka_log_safe(shown, sizeof shown, v, n);
    return jk_errf(err, cap, "unavailable: expected 401 or 503, got \"%s\"", shown);
  }
  return 0;
}

int jka_realm_check(const char *s, size_t n, char *err, size_t cap) {
  if (n == 0 || n > JKA_MAX_REALM) return jk_errf(err, cap, "realm of %zu bytes: 1..%u expected", n, JKA_MAX_REALM);
  if (!printable(s, n) || memchr(s, '"', n) != NULL || memchr(s, '\\', n) != NULL)
    return jk_errf(err, cap, "realm: printable ASCII without '\"' or '\\' only (it is sent in WWW-Authenticate)");
  return 0;
}

long jka_challenge(char *out, size_t cap, const char *realm, size_t realm_len, jka_challenge_kind k) {
  static const char *const tail[] = {"", ", error=\"invalid_token\"", ", error=\"insufficient_scope\""};
  if (realm_len > JKA_MAX_REALM || (unsigned)k > JKA_CH_SCOPE) return -1;
  int n = snprintf(out, cap, "Bearer realm=\"%.*s\"%s", (int)realm_len, realm, tail[k]);
  if (n < 0 || (size_t)n >= cap) return -1;
  return n;
}

int jka_loglimit_allow(jka_loglimit *l, int64_t now_ms) {
  if (l->window_ms == 0 || now_ms - l->window_ms >= l->interval_ms) {
    l->window_ms = now_ms;
    l->used = 0;
  }
  if (l->used < l->burst) {
    l->used++;
    return 1;
  }
  l->suppressed++;
  return 0;
}

uint64_t jka_loglimit_take(jka_loglimit *l, int64_t now_ms) {
  if (l->suppressed == 0 || now_ms - l->window_ms < l->interval_ms) return 0;
  uint64_t n = l->suppressed;
  l->suppressed = 0;
  return n;
}

size_t jka_log_safe(char *out, size_t cap, const char *s, size_t n) {
  if (cap == 0) return 0;
  size_t o = 0;
  for (size_t i = 0; i < n && o + 1 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    out[o++] = c >= 0x20 && c <= 0x7e ? (char)c : '?';
  }
  out[o] = '\0';
  return o;
}
