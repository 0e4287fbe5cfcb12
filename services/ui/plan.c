/*
 * The rotation plan pane: each key's pending -> active -> retiring ->
 * retired spans, from the --keyring the workbench was started with, or
 * from timing parameters alone.
 *
 * A plan from parameters is made by the library's own rules, never a copy
 * of them: a throwaway keyring (one ES256 key) is created with that timing
 * in a private temporary directory and rotated by jwtkit_keyring_rotate at
 * each instant something can happen -- the instants the library itself
 * reports: each key's planned activation, end of signing and retirement
 * (jwtkit_keyring_get), and when the next key is published (the "next:"
 * line of jwtkit_keyring_plan) -- until the asked number of keys exists.
 * Then the directory is removed.  Times still ahead are the library's
 * planned ones and marked so.
 *
 * For every key the answer also says whether the guarantee holds: each
 * token it signed, valid at some time t, verifies against any JWKS
 * published max-age before t -- the key was published max-age before it
 * signed (the first keys of a keyring excepted: no older JWKS exists), and
 * stays published until its last token expired (+ leeway).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "ui_internal.h"

#define MAX_STEPS 64

/* -------------------------------------------------- the throwaway ring */

static void remove_dir(const char *dir) {
  static const char *const subs[] = {"/keys", ""};
  for (size_t s = 0; s < 2; s++) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s", dir, subs[s]);
    DIR *d = opendir(path);
    if (d == NULL) continue;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char f[4400];
      snprintf(f, sizeof f, "%s/%s", path, e->d_name);
      if (unlink(f) != 0) rmdir(f); /* keys/, already emptied */
    }
    closedir(d);
    rmdir(path);
  }
}

/* When the library will publish the next key (the "next:" line of its
 * plan), or 0 when it says nothing. */
static int64_t next_publish(const jwtkit_keyring *kr, int64_t now) {
  char *text = NULL;
  size_t len = 0;
  int64_t at = 0;
  if (jwtkit_keyring_plan(kr, now, &text, &len) != JWTKIT_OK) return 0;
  static const char mark[] = " key will be published at ";
  for (const char *p = strstr(text, "\nnext: "); p != NULL; p = strstr(p + 1, "\nnext: ")) {
    const char *m = strstr(p, mark), *eol = strchr(p + 1, '\n');
    if (m == NULL || (eol != NULL && m > eol)) continue;
    char when[40];
    size_t n = eol != NULL ? (size_t)(eol - m) - (sizeof mark - 1) : strlen(m + sizeof mark - 1);
    if (n >= sizeof when) continue;
    memcpy(when, m + sizeof mark - 1, n);
    when[n] = '\0';
    int64_t t;
    if (jk_parse_rfc3339(when, &t) == 0 && (at == 0 || t < at)) at = t;
  }
  jwtkit_free(text);
  return at;
}

/* The earliest instant after `now` at which a rotation can change
 * something, or 0. */
static int64_t next_event(const jwtkit_keyring *kr, int64_t now) {
  int64_t best = next_publish(kr, now);
  if (best <= now) best = 0;
  for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
    jwtkit_keyring_entry e;
    if (jwtkit_keyring_get(kr, i, &e) != JWTKIT_OK) continue;
    int64_t t = e.state == JWTKIT_KEY_PENDING    ? e.planned_activation
                : e.state == JWTKIT_KEY_ACTIVE   ? e.planned_retiring
                : e.state == JWTKIT_KEY_RETIRING ? e.planned_retirement
                                                 : 0;
    if (t > now && (best == 0 || t < best)) best = t;
  }
  return best;
}

/* How long before an active key's planned end the library publishes the
 * next one: from its "next:" line, while an active key has no successor. */
static int64_t publish_ahead_of(const jwtkit_keyring *kr, int64_t now) {
  int64_t pub = next_publish(kr, now);
  for (size_t i = 0; pub != 0 && i < jwtkit_keyring_count(kr); i++) {
    jwtkit_keyring_entry e;
    if (jwtkit_keyring_get(kr, i, &e) == JWTKIT_OK && e.state == JWTKIT_KEY_ACTIVE && e.planned_retiring >= pub)
      return e.planned_retiring - pub;
  }
  return 0;
}

/* A keyring made with timing t at `start` and rotated until it has nkeys
 * keys; *ahead: the publish-ahead its first key's successor gets.  *kr
 * stays open after the directory is removed (a handle is a snapshot). */
static int simulate(ui_call *c, const jwtkit_keyring_timing *t, int64_t start, size_t nkeys, jwtkit_keyring **kr,
                    int64_t *ahead) {
  const char *base = c->app->plan_dir;
  if (base == NULL && (base = getenv("TMPDIR")) == NULL) base = "/tmp";
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/jwtkit-ui-plan.XXXXXX", base);
  if (mkdtemp(dir) == NULL) return ui_fail(c, 500, NULL, "cannot make a temporary directory under %s", base);
  static const jwtkit_alg alg = JWTKIT_ALG_ES256;
  jwtkit_errinfo info = {0};
  jwtkit_err rc = jwtkit_keyring_init(dir, &alg, 1, t, NULL, start, NULL, NULL, &info);
  if (rc == JWTKIT_OK) rc = jwtkit_keyring_open(kr, dir, NULL, &info);
  if (rc == JWTKIT_OK) *ahead = publish_ahead_of(*kr, start);
  int64_t now = start;
  for (int step = 0; rc == JWTKIT_OK && step < MAX_STEPS && jwtkit_keyring_count(*kr) < nkeys; step++) {
    int64_t at = next_event(*kr, now);
    if (at == 0) break;
    now = at;
    rc = jwtkit_keyring_rotate(*kr, now, 0, NULL, NULL, &info);
  }
  remove_dir(dir);
  if (rc != JWTKIT_OK) {
    jwtkit_keyring_free(*kr);
    *kr = NULL;
    return ui_fail_lib(c, "timing", "the library refuses this plan", rc, &info);
  }
  return 0;
}

/* --------------------------------------------------------------- answer */

static void out_time(jk_buf *b, const char *name, int64_t t) {
  if (t == 0) {
    ui_out_cstr(b, name, NULL);
    return;
  }
  ui_out_int(b, name, t);
}

/* Every key's spans, and whether the guarantee holds for it. */
static int keys_out(ui_call *c, const jwtkit_keyring *kr, const jwtkit_keyring_timing *t, int64_t pub_ahead) {
  jk_buf *b = c->out;
  int holds = 1;
  jk_buf_puts(b, ",\"keys\":[");
  for (size_t i = 0; i < jwtkit_keyring_count(kr); i++) {
    jwtkit_keyring_entry e;
    if (jwtkit_keyring_get(kr, i, &e) != JWTKIT_OK) return ui_fail(c, 500, NULL, "the keyring changed");
    int64_t act = e.activated ? e.activated : e.planned_activation;
    int64_t ret = e.retiring ? e.retiring : e.planned_retiring;
    int64_t gone = e.retired ? e.retired : e.planned_retirement;
    int first = e.activated != 0 && e.activated == e.published; /* signed at once: a keyring's first key */
    int revoked = e.state == JWTKIT_KEY_REVOKED;
    jk_buf_puts(b, i ? ",{\"kid\":" : "{\"kid\":");
    jk_buf_json_str_lossy(b, e.kid, strlen(e.kid));
    ui_out_cstr(b, "alg", jwtkit_alg_name(e.alg));
    ui_out_cstr(b, "state", jwtkit_key_state_name(e.state));
    out_time(b, "published", e.published);
    out_time(b, "activated", act);
    out_time(b, "retiring", revoked ? e.retired : ret);
    out_time(b, "retired", gone);
    /* which of them are the library's plan rather than what happened */
    jk_buf_printf(b, ",\"planned\":{\"activated\":%s,\"retiring\":%s,\"retired\":%s}",
                  e.activated == 0 && act != 0 ? "true" : "false",
                  e.retiring == 0 && ret != 0 && !revoked ? "true" : "false",
                  e.retired == 0 && gone != 0 ? "true" : "false");
    ui_out_bool(b, "first", first);
    if (revoked || act == 0 || ret == 0 || gone == 0) {
      ui_out_cstr(b, "guarantee", revoked ? "revoked: removed from the JWKS at once; verifiers refetch" : NULL);
      jk_buf_putc(b, '}');
      continue;
    }
    int64_t held = first ? e.published : e.published + t->max_age; /* every verifier's JWKS has it */
    int64_t last = ret + t->token_ttl + t->leeway;                  /* its last token is accepted until */
    int ok = held <= act && gone >= last;
    holds &= ok;
    ui_out_int(b, "held_from", held);
    ui_out_int(b, "tokens_until", last);
    ui_out_bool(b, "holds", ok);
    jk_buf_putc(b, '}');
  }
  jk_buf_putc(b, ']');
  ui_out_bool(b, "holds", holds);
  jk_buf_puts(b, ",\"timing\":{\"max_age\":");
  jk_buf_int(b, t->max_age);
  ui_out_int(b, "token_ttl", t->token_ttl);
  ui_out_int(b, "leeway", t->leeway);
  ui_out_int(b, "rotate_every", t->rotate_every);
  out_time(b, "publish_ahead", pub_ahead);
  jk_buf_putc(b, '}');
  return 0;
}

/* The timing of the request: the library's defaults, then each member. */
static int timing_in(ui_call *c, jwtkit_keyring_timing *t) {
  jwtkit_keyring_timing_default(t);
  return ui_in_duration(c, "max_age", &t->max_age) < 0 || ui_in_duration(c, "token_ttl", &t->token_ttl) < 0 ||
                 ui_in_duration(c, "leeway", &t->leeway) < 0 || ui_in_duration(c, "rotate_every", &t->rotate_every) < 0 ||
                 ui_in_duration(c, "publish_ahead", &t->publish_ahead) < 0
             ? -1
             : 0;
}

static int from_keyring(ui_call *c, jwtkit_keyring **kr) {
  if (c->app->keyring == NULL)
    return ui_fail(c, 400, "source", "no keyring: start the workbench with jwtkit ui --keyring DIR|URL");
  jwtkit_keyring_secrets sec = {.keks = c->app->keks, .nkeks = c->app->nkeks};
  jwtkit_errinfo info = {0};
  jwtkit_err rc = jwtkit_keyring_open_ex(kr, c->app->keyring, &sec, &info);
  if (rc != JWTKIT_OK) return ui_fail_lib(c, "source", "the keyring cannot be read", rc, &info);
  return 0;
}

/* POST /api/plan {"source": "params" | "keyring", "max_age"?, "token_ttl"?,
 * "leeway"?, "rotate_every"?, "publish_ahead"?, "keys"? (2..8), "at"?} */
int ui_api_plan(ui_call *c) {
  const char *source = "params";
  int64_t nkeys = 4;
  jwtkit_keyring_timing t;
  if (ui_in_str(c, "source", &source, NULL) < 0 || ui_in_int(c, "keys", 2, 8, &nkeys) < 0 ||
      ui_in_time(c, "at", &c->now) < 0 || timing_in(c, &t) < 0)
    return -1;
  int keyring = strcmp(source, "keyring") == 0;
  if (!keyring && strcmp(source, "params") != 0)
    return ui_fail(c, 400, "source", "\"source\" is \"params\" or \"keyring\"");
  jwtkit_keyring *kr = NULL;
  int64_t ahead = 0;
  if (keyring) {
    if (from_keyring(c, &kr) < 0) return -1;
    jwtkit_keyring_get_timing(kr, &t);
    ahead = publish_ahead_of(kr, c->now);
  } else {
    if (simulate(c, &t, c->now, (size_t)nkeys, &kr, &ahead) < 0) return -1;
  }
  jk_buf *b = c->out;
  ui_out_cstr(b, "source", keyring ? "keyring" : "params");
  ui_out_int(b, "now", c->now);
  if (keyring) {
    char where[512];
    jwtkit_keyring_location_redact(c->app->keyring, where, sizeof where);
    ui_out_cstr(b, "keyring", where);
    ui_out_int(b, "generation", (int64_t)jwtkit_keyring_generation(kr));
  }
  int r = keys_out(c, kr, &t, ahead);
  jwtkit_keyring_free(kr);
  return r;
}
