/* The keyring: lifecycle rules over a storage backend. */
#include "jwtkit/keyring.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "codec/json.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "docauth.h"
#include "jwtkit/jwks.h"
#include "store.h"

#define KR_MAX_KEYS 256u
#define KR_KEEP_RETIRED 32u
#define KR_FORMAT "jwtkit-keyring"
/* version 1: not authenticated; version 2: with its MAC (docauth.h) */

typedef struct kr_key {
  char *kid;
  char file[48]; /* RFC 7638 thumbprint: the private key's file name */
  jwtkit_alg alg;
  jwtkit_key_state state;
  int64_t created, published, activated, retiring, retired;
  char *jwk;        /* public JWK text, with kid */
  jwtkit_key *pub;  /* parsed from jwk */
  jwtkit_key *priv; /* pending and active keys only */
} kr_key;

struct jwtkit_keyring {
  jk_store *store;
  char *passphrase;
  jwtkit_keyring_timing t;
  uint64_t generation;
  int encrypted;
  kr_key *keys;
  size_t n;
  char *meta; /* the metadata text the keys were loaded from */
  size_t meta_len;
  int pg;          /* a PostgreSQL keyring */
  jk_docauth auth; /* how its document is authenticated */
  uint64_t seen;   /* newest generation loaded or committed: older documents are refused */
  int review;      /* opened by jwtkit_keyring_open_review: read and trust only */
  jwtkit_errinfo verdict; /* review: why the document is not authentic (code OK: it is) */
};

/* How messages name the stored document. */
static const char *doc_name(const jwtkit_keyring *kr) { return kr->pg ? "the keyring document" : "keyring.json"; }

static const char *const k_state_names[] = {NULL, "pending", "active", "retiring", "retired", "revoked"};

const char *jwtkit_key_state_name(jwtkit_key_state s) {
  return (s >= JWTKIT_KEY_PENDING && s <= JWTKIT_KEY_REVOKED) ? k_state_names[s] : "unknown";
}

static jwtkit_key_state state_from(const char *s, size_t n) {
  for (int i = 1; i <= 5; i++)
    if (strlen(k_state_names[i]) == n && memcmp(k_state_names[i], s, n) == 0) return (jwtkit_key_state)i;
  return (jwtkit_key_state)0;
}

void jwtkit_keyring_timing_default(jwtkit_keyring_timing *t) {
  t->max_age = 300;
  t->token_ttl = 900;
  t->leeway = 60;
  t->rotate_every = 30 * 86400;
  t->publish_ahead = 0;
  t->rsa_bits = 2048;
}

static int64_t publish_ahead(const jwtkit_keyring_timing *t) {
  if (t->publish_ahead > 0) return t->publish_ahead;
  int64_t a = 2 * t->max_age, b = t->rotate_every / 30;
  return a > b ? a : b;
}

static jwtkit_err check_timing(const jwtkit_keyring_timing *t, jwtkit_errinfo *info) {
  const int64_t year = 366 * 86400LL;
  if (t->max_age < 0 || t->max_age > 86400 || t->token_ttl <= 0 || t->token_ttl > year || t->leeway < 0 ||
      t->leeway > 300 || t->rotate_every <= 0 || t->rotate_every > 10 * year || t->publish_ahead < 0 ||
      t->publish_ahead >= t->rotate_every)
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "timing",
                   "timing out of range (max_age 0..86400, ttl 1..1y, leeway 0..300, rotation 1s..10y, "
                   "publish_ahead < rotation)");
  if (publish_ahead(t) < t->max_age || publish_ahead(t) >= t->rotate_every)
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "timing",
                   "the next key must be published at least max_age before the rotation and within the period");
  if (t->rsa_bits != 0 && (t->rsa_bits < 2048 || t->rsa_bits > 16384))
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "rsa_bits", "RSA size 2048..16384");
  return JWTKIT_OK;
}

/* ------------------------------------------------------------ memory */

static void key_clear(kr_key *k) {
  jk_free(k->kid);
  jk_free(k->jwk);
  jwtkit_key_free(k->pub);
  jwtkit_key_free(k->priv);
  memset(k, 0, sizeof *k);
}

static void keys_clear(jwtkit_keyring *kr) {
  for (size_t i = 0; i < kr->n; i++) key_clear(&kr->keys[i]);
  jk_free(kr->keys);
  kr->keys = NULL;
  kr->n = 0;
}

void jwtkit_keyring_free(jwtkit_keyring *kr) {
  if (kr == NULL) return;
  keys_clear(kr);
  jk_free(kr->meta);
  if (kr->store) kr->store->ops->close(kr->store);
  if (kr->passphrase) jk_free_secret(kr->passphrase, strlen(kr->passphrase));
  jk_docauth_wipe(&kr->auth);
  jk_free(kr);
}

static kr_key *push_key(jwtkit_keyring *kr) {
  if (kr->n >= KR_MAX_KEYS) return NULL;
  kr_key *nk = jk_realloc(kr->keys, (kr->n + 1) * sizeof *nk);
  if (nk == NULL) return NULL;
  kr->keys = nk;
  memset(&kr->keys[kr->n], 0, sizeof(kr_key));
  return &kr->keys[kr->n++];
}

/* ------------------------------------------------------------ timing */

static kr_key *find_state(jwtkit_keyring *kr, jwtkit_alg alg, jwtkit_key_state st) {
  kr_key *best = NULL;
  for (size_t i = 0; i < kr->n; i++) {
    kr_key *k = &kr->keys[i];
    if (k->alg == alg && k->state == st && (best == NULL || k->published < best->published)) best = k;
  }
  return best;
}

static int64_t planned_end(const jwtkit_keyring *kr, const kr_key *active) {
  return active->activated + kr->t.rotate_every;
}

static int64_t retire_after(const jwtkit_keyring *kr, int64_t stop_signing) {
  return stop_signing + kr->t.token_ttl + kr->t.leeway + kr->t.max_age;
}

static void entry_of(const jwtkit_keyring *kr, const kr_key *k, jwtkit_keyring_entry *e) {
  memset(e, 0, sizeof *e);
  e->kid = k->kid;
  e->alg = k->alg;
  e->state = k->state;
  e->created = k->created;
  e->published = k->published;
  e->activated = k->activated;
  e->retiring = k->retiring;
  e->retired = k->retired;
  switch (k->state) {
    case JWTKIT_KEY_PENDING: {
      int64_t at = k->published + kr->t.max_age;
      const kr_key *a = find_state((jwtkit_keyring *)kr, k->alg, JWTKIT_KEY_ACTIVE);
      if (a != NULL && planned_end(kr, a) > at) at = planned_end(kr, a);
      e->planned_activation = at;
      e->planned_retiring = at + kr->t.rotate_every;
      e->planned_retirement = retire_after(kr, e->planned_retiring);
      break;
    }
    case JWTKIT_KEY_ACTIVE:
      e->planned_retiring = planned_end(kr, k);
      e->planned_retirement = retire_after(kr, e->planned_retiring);
      break;
    case JWTKIT_KEY_RETIRING:
      e->planned_retirement = retire_after(kr, k->retiring);
      break;
    default:
      break;
  }
}

/* ------------------------------------------------------ serialisation */

static void put_i(jk_buf *b, const char *name, int64_t v, int comma) {
  if (comma) jk_buf_putc(b, ',');
  jk_buf_putc(b, '"');
  jk_buf_puts(b, name);
  jk_buf_puts(b, "\":");
  jk_buf_int(b, v);
}

/* The document as stored: authenticated (docauth.h) when the keyring has a
 * secret.  *json is NULL on failure (NOMEM, or CRYPTO when the MAC could
 * not be computed). */
static jwtkit_err meta_json(jwtkit_keyring *kr, char **json, size_t *len) {
  jk_buf b;
  jk_buf_init(&b);
  *json = NULL;
  jk_buf_puts(&b, "{\"format\":\"" KR_FORMAT "\"");
  put_i(&b, "version", jk_docauth_version(&kr->auth), 1);
  put_i(&b, "generation", (int64_t)kr->generation, 1);
  jk_buf_puts(&b, kr->encrypted ? ",\"encrypted\":true" : ",\"encrypted\":false");
  jk_buf_puts(&b, ",\"timing\":{");
  put_i(&b, "max_age", kr->t.max_age, 0);
  put_i(&b, "token_ttl", kr->t.token_ttl, 1);
  put_i(&b, "leeway", kr->t.leeway, 1);
  put_i(&b, "rotate_every", kr->t.rotate_every, 1);
  put_i(&b, "publish_ahead", kr->t.publish_ahead, 1);
  put_i(&b, "rsa_bits", kr->t.rsa_bits, 1);
  jk_buf_puts(&b, "},\"keys\":[");
  for (size_t i = 0; i < kr->n; i++) {
    const kr_key *k = &kr->keys[i];
    if (i) jk_buf_putc(&b, ',');
    jk_buf_puts(&b, "{\"kid\":");
    jk_buf_json_str(&b, k->kid, strlen(k->kid));
    jk_buf_puts(&b, ",\"alg\":\"");
    jk_buf_puts(&b, jwtkit_alg_name(k->alg));
    jk_buf_puts(&b, "\",\"state\":\"");
    jk_buf_puts(&b, jwtkit_key_state_name(k->state));
    jk_buf_puts(&b, "\",\"file\":\"");
    jk_buf_puts(&b, k->file);
    jk_buf_putc(&b, '"');
    put_i(&b, "created", k->created, 1);
    put_i(&b, "published", k->published, 1);
    put_i(&b, "activated", k->activated, 1);
    put_i(&b, "retiring", k->retiring, 1);
    put_i(&b, "retired", k->retired, 1);
    jk_buf_puts(&b, ",\"jwk\":");
    jk_buf_puts(&b, k->jwk);
    jk_buf_putc(&b, '}');
  }
  jk_buf_putc(&b, ']');
  jwtkit_err rc = b.oom ? JWTKIT_ERR_NOMEM : jk_docauth_close(&kr->auth, &b);
  if (rc != JWTKIT_OK) {
    jk_buf_free(&b);
    return rc;
  }
  *json = jk_buf_take(&b, len);
  return *json ? JWTKIT_OK : JWTKIT_ERR_NOMEM;
}

static int get_int(const jk_jdoc *d, uint32_t obj, const char *name, int64_t *v) {
  int i = jk_json_get(d, obj, name, strlen(name));
  return i >= 0 && jk_json_int(d, (uint32_t)i, v) == 0 ? 0 : -1;
}

static jwtkit_err corrupt_in(const jwtkit_keyring *kr, jwtkit_errinfo *info, const char *what) {
  return jk_fail(info, JWTKIT_ERR_MALFORMED, "keyring.json", "%s: %s", doc_name(kr), what);
}
#define corrupt(info, what) corrupt_in(kr, info, what)

/* A published key's stored JWK, parsed with the key's algorithm bound
 * (k->pub): it must be public and name the key's kid.  k->jwk becomes the
 * key's canonical export, so nothing else the stored text carried (extra
 * members) is published or written back. */
static jwtkit_err check_public(jwtkit_keyring *kr, kr_key *k, jwtkit_errinfo *info) {
  if (jwtkit_key_can_sign(k->pub))
    return jk_fail(info, JWTKIT_ERR_MALFORMED, "jwk",
                   "%s: the JWK of key %s holds private key material; a keyring document holds public keys only",
                   doc_name(kr), k->kid);
  const char *kid = jwtkit_key_kid(k->pub);
  if (kid == NULL) {
    jwtkit_err rc = jwtkit_key_set_kid(k->pub, k->kid, strlen(k->kid));
    if (rc != JWTKIT_OK) return jk_fail(info, rc, "kid", NULL);
  } else if (strcmp(kid, k->kid) != 0) {
    return jk_fail(info, JWTKIT_ERR_MALFORMED, "kid", "%s: key %.64s has a JWK that names kid %.64s", doc_name(kr),
                   k->kid, kid);
  }
  char *canon = NULL;
  size_t cl = 0;
  jwtkit_err rc = jwtkit_key_to_jwk(k->pub, 0, &canon, &cl);
  if (rc != JWTKIT_OK) return jk_fail(info, rc, NULL, NULL);
  jk_free(k->jwk);
  k->jwk = canon;
  return JWTKIT_OK;
}

/* Parse metadata into kr (keys, timing, generation); private keys are
 * loaded separately. */
static jwtkit_err meta_parse(jwtkit_keyring *kr, const char *json, size_t len, jwtkit_errinfo *info) {
  jk_jdoc d;
  jwtkit_err rc = jk_json_parse_alloc(&d, json, len, 1, info);
  if (rc != JWTKIT_OK) return rc == JWTKIT_ERR_MALFORMED ? corrupt(info, "not valid JSON") : rc;
  int64_t v;
  int f = jk_json_get(&d, 0, "format", 6);
  if (f < 0 || !jk_json_str_eq(&d, (uint32_t)f, KR_FORMAT, strlen(KR_FORMAT))) {
    rc = corrupt(info, "not a jwtkit keyring");
    goto out;
  }
  /* who wrote it: before anything else of it is believed */
  int authenticated = 0;
  jk_info_clear(&kr->verdict);
  rc = jk_docauth_check(&kr->auth, &d, doc_name(kr), &authenticated, &kr->verdict);
  if (rc != JWTKIT_OK) {
    /* a review reads the document anyway (and says why it is not
     * authentic); everything else refuses it */
    if (!(kr->review && (rc == JWTKIT_ERR_BAD_SIGNATURE || rc == JWTKIT_ERR_PASSPHRASE))) {
      if (info != NULL) *info = kr->verdict;
      goto out;
    }
    rc = JWTKIT_OK;
  }
  if (get_int(&d, 0, "version", &v) != 0 || (v != 1 && v != 2)) {
    rc = corrupt(info, "unsupported version (written by a newer jwtkit?)");
    goto out;
  }
  if ((authenticated && v != 2) || (kr->auth.mode == JK_DOCAUTH_NONE && v != 1)) {
    rc = corrupt(info, "version and authentication disagree");
    goto out;
  }
  if (get_int(&d, 0, "generation", &v) != 0 || v < 0) {
    rc = corrupt(info, "bad generation");
    goto out;
  }
  /* rollback: an authentic but older document than one already seen */
  if ((uint64_t)v < kr->seen) {
    rc = jk_fail(info, JWTKIT_ERR_STATE, "generation",
                 "%s is generation %lld, older than generation %llu seen before: an old document was put back; "
                 "refused (restart to accept a restore)",
                 doc_name(kr), (long long)v, (unsigned long long)kr->seen);
    goto out;
  }
  kr->generation = (uint64_t)v;
  int enc = jk_json_get(&d, 0, "encrypted", 9);
  kr->encrypted = enc >= 0 && d.nodes[enc].type == JK_J_TRUE;
  int t = jk_json_get(&d, 0, "timing", 6);
  int64_t bits = 0;
  if (t < 0 || get_int(&d, (uint32_t)t, "max_age", &kr->t.max_age) || get_int(&d, (uint32_t)t, "token_ttl", &kr->t.token_ttl) ||
      get_int(&d, (uint32_t)t, "leeway", &kr->t.leeway) || get_int(&d, (uint32_t)t, "rotate_every", &kr->t.rotate_every) ||
      get_int(&d, (uint32_t)t, "publish_ahead", &kr->t.publish_ahead) || get_int(&d, (uint32_t)t, "rsa_bits", &bits) ||
      bits < 0 || bits > 16384) {
    rc = corrupt(info, "bad timing");
    goto out;
  }
  kr->t.rsa_bits = (unsigned)bits;
  if ((rc = check_timing(&kr->t, info)) != JWTKIT_OK) goto out;
  int ka = jk_json_get(&d, 0, "keys", 4);
  if (ka < 0 || d.nodes[ka].type != JK_J_ARRAY) {
    rc = corrupt(info, "no keys array");
    goto out;
  }
  for (uint32_t i = (uint32_t)ka + 1; i < d.nodes[ka].end; i = d.nodes[i].end) {
    if (d.nodes[i].type != JK_J_OBJECT) {
      rc = corrupt(info, "key entry is not an object");
      goto out;
    }
    if (kr->n >= KR_MAX_KEYS) {
      rc = jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "more than %u keys", KR_MAX_KEYS);
      goto out;
    }
    kr_key *k = push_key(kr);
    if (k == NULL) {
      rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
      goto out;
    }
    int kid = jk_json_get(&d, i, "kid", 3), alg = jk_json_get(&d, i, "alg", 3), st = jk_json_get(&d, i, "state", 5),
        file = jk_json_get(&d, i, "file", 4), jwk = jk_json_get(&d, i, "jwk", 3);
    if (kid < 0 || alg < 0 || st < 0 || file < 0 || jwk < 0 || d.nodes[kid].type != JK_J_STRING ||
        d.nodes[alg].type != JK_J_STRING || d.nodes[st].type != JK_J_STRING || d.nodes[file].type != JK_J_STRING ||
        d.nodes[file].len >= sizeof k->file || d.nodes[jwk].type != JK_J_OBJECT) {
      rc = corrupt(info, "key entry misses a member");
      goto out;
    }
    k->kid = jk_json_strdup(&d, (uint32_t)kid, NULL); /* a string: NULL only when out of memory */
    if (k->kid == NULL) {
      rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
      goto out;
    }
    char tmp[64];
    size_t tl = d.nodes[alg].len < sizeof tmp ? jk_json_unescape(&d, (uint32_t)alg, tmp) : 0;
    k->alg = jwtkit_alg_from_name(tmp, tl);
    tl = d.nodes[st].len < sizeof tmp ? jk_json_unescape(&d, (uint32_t)st, tmp) : 0;
    k->state = state_from(tmp, tl);
    jk_json_unescape(&d, (uint32_t)file, k->file);
    if (k->kid == NULL || k->alg == JWTKIT_ALG_UNSPEC || k->state == 0 ||
        get_int(&d, i, "created", &k->created) || get_int(&d, i, "published", &k->published) ||
        get_int(&d, i, "activated", &k->activated) || get_int(&d, i, "retiring", &k->retiring) ||
        get_int(&d, i, "retired", &k->retired)) {
      rc = corrupt(info, "bad key entry");
      goto out;
    }
    /* times are Unix seconds before the year 5000: the planning sums below
     * (time + ttl + leeway + max-age, time + rotation period) cannot overflow */
    const int64_t tmax = 95617584000LL;
    if (k->created < 0 || k->created > tmax || k->published < 0 || k->published > tmax || k->activated < 0 ||
        k->activated > tmax || k->retiring < 0 || k->retiring > tmax || k->retired < 0 || k->retired > tmax) {
      rc = corrupt(info, "key time out of range");
      goto out;
    }
    k->jwk = jk_strndup(json + d.nodes[jwk].off, d.nodes[jwk].len);
    if (k->jwk == NULL) {
      rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
      goto out;
    }
    if (k->state <= JWTKIT_KEY_RETIRING) {
      rc = jwtkit_key_from_jwk(&k->pub, k->alg, k->jwk, strlen(k->jwk), info);
      if (rc == JWTKIT_OK) rc = check_public(kr, k, info);
      if (rc != JWTKIT_OK) goto out;
    }
  }
out:
  jk_free(d.nodes);
  return rc;
}

static jwtkit_err load_private(jwtkit_keyring *kr, kr_key *k, jwtkit_errinfo *info) {
  char *pem = NULL;
  size_t len = 0;
  jwtkit_err rc = kr->store->ops->get_key(kr->store, k->file, &pem, &len, info);
  if (rc != JWTKIT_OK) return rc;
  rc = jwtkit_key_from_pem(&k->priv, k->alg, pem, len, kr->passphrase, info);
  jk_free_secret(pem, len);
  if (rc == JWTKIT_OK && (rc = jwtkit_key_set_kid(k->priv, k->kid, strlen(k->kid))) != JWTKIT_OK)
    rc = jk_fail(info, rc, "kid", NULL);
  if (rc == JWTKIT_OK && !jwtkit_key_equal_public(k->priv, k->pub))
    rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "kid", "private key file of %s does not match its public key", k->kid);
  return rc;
}

/* (Re)load the whole keyring from the store into kr, unless the stored
 * metadata is exactly what kr was loaded from (then the private keys, which
 * may be encrypted, are not read and decrypted again). */
static jwtkit_err reload(jwtkit_keyring *kr, jwtkit_errinfo *info) {
  char *json = NULL;
  size_t len = 0;
  jwtkit_err rc = kr->store->ops->load_meta(kr->store, &json, &len, info);
  if (rc != JWTKIT_OK) {
    keys_clear(kr);
    return rc;
  }
  if (kr->meta != NULL && kr->meta_len == len && memcmp(kr->meta, json, len) == 0) {
    jk_free(json);
    return JWTKIT_OK;
  }
  keys_clear(kr);
  jk_free(kr->meta);
  kr->meta = NULL;
  rc = meta_parse(kr, json, len, info);
  if (rc == JWTKIT_OK) {
    kr->meta = json;
    kr->meta_len = len;
  } else {
    jk_free(json);
  }
  if (rc == JWTKIT_OK && kr->encrypted && kr->passphrase == NULL)
    rc = jk_fail(info, JWTKIT_ERR_PASSPHRASE, NULL, "the keyring's private keys are encrypted; a passphrase is needed");
  for (size_t i = 0; rc == JWTKIT_OK && i < kr->n; i++)
    if (kr->keys[i].state == JWTKIT_KEY_PENDING || kr->keys[i].state == JWTKIT_KEY_ACTIVE)
      rc = load_private(kr, &kr->keys[i], info);
  if (rc != JWTKIT_OK) {
    keys_clear(kr);
    jk_free(kr->meta);
    kr->meta = NULL;
  } else if (kr->generation > kr->seen) {
    kr->seen = kr->generation;
  }
  return rc;
}

/* ----------------------------------------------------------- mutation */

typedef struct txn {
  jwtkit_keyring_report_fn report;
  void *ctx;
  int changed;
  jk_buf lines; /* report lines (NUL-terminated each), given out after the commit */
  char doomed[KR_MAX_KEYS][48]; /* private files to destroy after commit */
  size_t ndoomed;
  char created[KR_MAX_KEYS][48]; /* private files written by this change: removed if it fails */
  size_t ncreated;
} txn;

static void vnote(txn *x, const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 0)))
#endif
    ;
static void vnote(txn *x, const char *fmt, va_list ap) {
  if (x->report == NULL) return;
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  jk_buf_put(&x->lines, line, strlen(line) + 1);
}

/* A line to report, once the change is stored, that changes nothing. */
static void note(txn *x, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void note(txn *x, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vnote(x, fmt, ap);
  va_end(ap);
}

/* An action: marks the keyring changed and reports it once stored. */
static void say(txn *x, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void say(txn *x, const char *fmt, ...) {
  x->changed = 1;
  va_list ap;
  va_start(ap, fmt);
  vnote(x, fmt, ap);
  va_end(ap);
}

static void fmt_time(int64_t t, char out[32]) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (gmtime_r(&tt, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) snprintf(out, 32, "%lld", (long long)t);
}

/* Create a fresh key for alg, store its private part, append it. */
static jwtkit_err new_key(jwtkit_keyring *kr, txn *x, jwtkit_alg alg, jwtkit_key *given, jwtkit_key_state st,
                          int64_t now, kr_key **out, jwtkit_errinfo *info) {
  jwtkit_key *key = given ? jwtkit_key_ref(given) : NULL;
  jwtkit_err rc = JWTKIT_OK;
  if (key == NULL) {
    unsigned bits = jwtkit_alg_kty(alg) == JWTKIT_KTY_RSA ? kr->t.rsa_bits : 0;
    rc = jwtkit_key_generate(&key, alg, bits, info);
    if (rc != JWTKIT_OK) return rc;
  }
  char tp[44];
  char *pem = NULL, *jwk = NULL;
  size_t pl = 0, jl = 0;
  kr_key *k = NULL;
  if ((rc = jwtkit_key_thumbprint(key, tp)) != JWTKIT_OK) goto fail;
  const char *kid = jwtkit_key_kid(key) ? jwtkit_key_kid(key) : tp;
  for (size_t i = 0; i < kr->n; i++)
    if (strcmp(kr->keys[i].kid, kid) == 0 || strcmp(kr->keys[i].file, tp) == 0) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, "kid", "the keyring already holds key %s", kid);
      goto fail;
    }
  /* the stored copies carry the kid */
  jwtkit_key *pub = NULL;
  if ((rc = jwtkit_key_to_jwk(key, 0, &jwk, &jl)) != JWTKIT_OK) goto fail;
  if ((rc = jwtkit_key_from_jwk(&pub, alg, jwk, jl, info)) != JWTKIT_OK) goto fail;
  jk_free(jwk);
  jwk = NULL;
  if ((rc = jwtkit_key_set_kid(pub, kid, strlen(kid))) != JWTKIT_OK || (rc = jwtkit_key_to_jwk(pub, 0, &jwk, &jl)) != JWTKIT_OK) {
    jwtkit_key_free(pub);
    goto fail;
  }
  if ((rc = jwtkit_key_to_pem(key, 1, kr->passphrase, &pem, &pl)) != JWTKIT_OK) {
    jwtkit_key_free(pub);
    goto fail;
  }
  if (kr->n >= KR_MAX_KEYS) {
    jwtkit_key_free(pub);
    rc = jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "a keyring holds at most %u keys", KR_MAX_KEYS);
    goto fail;
  }
  if ((rc = kr->store->ops->put_key(kr->store, tp, pem, pl, info)) != JWTKIT_OK) {
    jwtkit_key_free(pub);
    goto fail;
  }
  if (x->ncreated < KR_MAX_KEYS) snprintf(x->created[x->ncreated++], sizeof x->created[0], "%s", tp);
  k = push_key(kr);
  if (k == NULL || (k->kid = jk_strdup(kid)) == NULL) {
    jwtkit_key_free(pub);
    if (k) kr->n--;
    rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    goto fail;
  }
  /* the private key handle: a fresh import so it can take the kid */
  jwtkit_key *priv = NULL;
  rc = jwtkit_key_from_pem(&priv, alg, pem, pl, kr->passphrase, info);
  if (rc == JWTKIT_OK) rc = jwtkit_key_set_kid(priv, kid, strlen(kid));
  if (rc != JWTKIT_OK) {
    jwtkit_key_free(priv);
    jwtkit_key_free(pub);
    key_clear(k);
    kr->n--;
    goto fail;
  }
  snprintf(k->file, sizeof k->file, "%s", tp);
  k->alg = alg;
  k->state = st;
  k->created = k->published = now;
  k->activated = st == JWTKIT_KEY_ACTIVE ? now : 0;
  k->jwk = jwk;
  jwk = NULL;
  k->pub = pub;
  k->priv = priv;
  *out = k;
fail:
  if (pem) jk_free_secret(pem, pl);
  jk_free(jwk);
  jwtkit_key_free(key);
  return rc;
}

/* Drop the oldest retired entries beyond the history we keep. */
static void prune(jwtkit_keyring *kr) {
  size_t retired = 0;
  for (size_t i = 0; i < kr->n; i++)
    if (kr->keys[i].state >= JWTKIT_KEY_RETIRED) retired++;
  while (retired > KR_KEEP_RETIRED) {
    size_t oldest = kr->n;
    for (size_t i = 0; i < kr->n; i++)
      if (kr->keys[i].state >= JWTKIT_KEY_RETIRED && (oldest == kr->n || kr->keys[i].retired < kr->keys[oldest].retired))
        oldest = i;
    key_clear(&kr->keys[oldest]);
    memmove(&kr->keys[oldest], &kr->keys[oldest + 1], (kr->n - oldest - 1) * sizeof(kr_key));
    kr->n--;
    retired--;
  }
}

static void retire(txn *x, kr_key *k, jwtkit_key_state st, int64_t now) {
  k->state = st;
  k->retired = now;
  jwtkit_key_free(k->priv);
  k->priv = NULL;
  if (x->ndoomed < KR_MAX_KEYS) snprintf(x->doomed[x->ndoomed++], sizeof x->doomed[0], "%s", k->file);
}

/* Persist: metadata first (atomic), then destroy doomed private files. */
static jwtkit_err commit(jwtkit_keyring *kr, txn *x, jwtkit_errinfo *info) {
  if (!x->changed) return JWTKIT_OK;
  prune(kr);
  kr->generation++;
  size_t len = 0;
  char *json = NULL;
  jwtkit_err rc = meta_json(kr, &json, &len);
  if (rc != JWTKIT_OK) return jk_fail(info, rc, NULL, rc == JWTKIT_ERR_NOMEM ? NULL : "authenticating the keyring document failed");
  rc = kr->store->ops->save_meta(kr->store, json, len, info);
  if (rc != JWTKIT_OK) {
    jk_free(json);
    return rc;
  }
  jk_free(kr->meta); /* the in-memory state is what was just stored */
  kr->meta = json;
  kr->meta_len = len;
  if (kr->auth.mode == JK_DOCAUTH_KEK) kr->auth.verified_by = 0; /* just authenticated under the first KEK */
  for (size_t i = 0; i < x->ndoomed; i++) kr->store->ops->del_key(kr->store, x->doomed[i]);
  /* orphans: private files no live key references (a crash between writing
   * a key file and the metadata leaves one) */
  char *names = NULL;
  size_t count = 0;
  if (kr->store->ops->list_keys(kr->store, &names, &count) == JWTKIT_OK) {
    const char *nm = names;
    for (size_t i = 0; i < count; i++, nm += strlen(nm) + 1) {
      int live = 0;
      for (size_t j = 0; j < kr->n; j++)
        if (kr->keys[j].state <= JWTKIT_KEY_RETIRING && strcmp(kr->keys[j].file, nm) == 0) live = 1;
      if (!live) kr->store->ops->del_key(kr->store, nm);
    }
    jk_free(names);
  }
  return JWTKIT_OK;
}

/* Clock values the planning arithmetic can take (see meta_parse). */
static int time_ok(int64_t now) { return now >= 0 && now <= 95617584000LL; }

typedef jwtkit_err (*mutation_fn)(jwtkit_keyring *kr, txn *x, void *arg, int64_t now, jwtkit_errinfo *info);

static txn *txn_new(jwtkit_keyring_report_fn report, void *ctx) {
  txn *x = jk_calloc(1, sizeof *x);
  if (x == NULL) return NULL;
  x->report = report;
  x->ctx = ctx;
  jk_buf_init(&x->lines);
  return x;
}

/* End a change begun under the exclusive lock: commit it (rc OK) or undo
 * what the store cannot roll back (private files this change wrote), then
 * unlock; report the actions only once they are stored.  Returns the
 * final outcome.  Frees x. */
static jwtkit_err txn_end(jwtkit_keyring *kr, txn *x, jwtkit_err rc, jwtkit_errinfo *info) {
  if (rc == JWTKIT_OK) rc = commit(kr, x, info);
  if (rc != JWTKIT_OK)
    for (size_t i = 0; i < x->ncreated; i++) (void)kr->store->ops->del_key(kr->store, x->created[i]);
  /* a database backend commits here: only now is the change stored */
  jwtkit_err urc = kr->store->ops->unlock(kr->store, rc == JWTKIT_OK, info);
  if (rc == JWTKIT_OK) rc = urc;
  /* only a committed generation counts as seen: a failed commit's is reused */
  if (rc == JWTKIT_OK && kr->generation > kr->seen) kr->seen = kr->generation;
  if (rc == JWTKIT_OK && x->report != NULL && !x->lines.oom) {
    for (size_t o = 0; o < x->lines.len; o += strlen(x->lines.p + o) + 1) x->report(x->ctx, x->lines.p + o);
  }
  jk_buf_free(&x->lines);
  jk_free(x);
  return rc;
}

/* lock, reload the latest state, apply, commit, unlock */
static jwtkit_err mutate(jwtkit_keyring *kr, mutation_fn fn, void *arg, int64_t now, jwtkit_keyring_report_fn report,
                         void *ctx, jwtkit_errinfo *info) {
  if (!time_ok(now)) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "clock out of range");
  if (kr->review)
    return jk_fail(info, JWTKIT_ERR_STATE, NULL, "a keyring opened for review can only be listed and trusted");
  jwtkit_err rc = kr->store->ops->lock(kr->store, 1, info);
  if (rc != JWTKIT_OK) return rc;
  txn *x = txn_new(report, ctx);
  if (x == NULL) {
    (void)kr->store->ops->unlock(kr->store, 0, info);
    return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  rc = reload(kr, info);
  if (rc == JWTKIT_OK) rc = fn(kr, x, arg, now, info);
  rc = txn_end(kr, x, rc, info);
  if (rc != JWTKIT_OK) {
    jwtkit_errinfo ignore;
    jk_free(kr->meta); /* the in-memory keys were changed: force a real reload */
    kr->meta = NULL;
    /* back to what is stored (if the store is unreachable the handle is
     * left empty and the next mutation or open tries again) */
    if (kr->store->ops->lock(kr->store, 0, &ignore) == JWTKIT_OK) {
      (void)reload(kr, &ignore);
      (void)kr->store->ops->unlock(kr->store, 0, &ignore);
    } else {
      keys_clear(kr);
    }
  }
  return rc;
}

/* ---------------------------------------------------------------- API */

int jwtkit_keyring_location_is_postgres(const char *location) {
  return location != NULL && (strncmp(location, "postgres://", 11) == 0 || strncmp(location, "postgresql://", 13) == 0);
}

void jwtkit_keyring_location_redact(const char *location, char *out, size_t cap) {
  if (out == NULL || cap == 0) return;
  out[0] = '\0';
  if (location == NULL) return;
  if (!jwtkit_keyring_location_is_postgres(location)) {
    snprintf(out, cap, "%s", location);
    return;
  }
  /* scheme://[user[:password]@]host...[?...password=...&...] */
  jk_buf b;
  jk_buf_init(&b);
  const char *p = strstr(location, "://") + 3;
  jk_buf_put(&b, location, (size_t)(p - location));
  const char *at = strchr(p, '@'), *slash = strchr(p, '/'), *q = strchr(p, '?');
  const char *end_auth = slash ? slash : q;
  if (at != NULL && (end_auth == NULL || at < end_auth)) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon != NULL) {
      jk_buf_put(&b, p, (size_t)(colon - p));
      jk_buf_puts(&b, ":***");
      p = at;
    }
  }
  while (*p) {
    /* a password=... query parameter */
    if ((*p == '?' || *p == '&') && strncmp(p + 1, "password=", 9) == 0) {
      jk_buf_put(&b, p, 10);
      jk_buf_puts(&b, "***");
      p += 10;
      while (*p && *p != '&') p++;
      continue;
    }
    jk_buf_putc(&b, *p++);
  }
  size_t n = 0;
  char *s = jk_buf_take(&b, &n);
  snprintf(out, cap, "%s", s ? s : "(PostgreSQL keyring)");
  jk_free(s);
}

static jwtkit_err open_store(jwtkit_keyring **out, const char *dir, const jwtkit_keyring_secrets *sec, int create,
                             jwtkit_errinfo *info) {
  *out = NULL;
  if (dir == NULL || dir[0] == '\0') return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "no keyring location");
  jwtkit_keyring *kr = jk_calloc(1, sizeof *kr);
  if (kr == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  const char *passphrase = sec ? sec->passphrase : NULL;
  jwtkit_err rc;
  if (jwtkit_keyring_location_is_postgres(dir)) {
#ifdef JWTKIT_WITH_POSTGRES
    rc = jk_store_pg_open(&kr->store, dir, sec ? sec->keks : NULL, sec ? sec->nkeks : 0, info);
#else
    rc = jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL, "this jwtkit was built without PostgreSQL support");
#endif
  } else {
    rc = jk_store_dir_open(&kr->store, dir, create, info);
  }
  if (rc == JWTKIT_OK && passphrase != NULL && (kr->passphrase = jk_strdup(passphrase)) == NULL)
    rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  /* the document is authenticated with the keyring's secret: the KEKs, or
   * a directory keyring's passphrase */
  kr->pg = jwtkit_keyring_location_is_postgres(dir);
  if (rc == JWTKIT_OK && kr->pg)
    rc = jk_docauth_set_keks(&kr->auth, sec->keks, sec->nkeks, info); /* the store checked them */
  else if (rc == JWTKIT_OK && kr->passphrase != NULL)
    jk_docauth_set_pass(&kr->auth, kr->passphrase);
  if (rc != JWTKIT_OK) {
    jwtkit_keyring_free(kr);
    return rc;
  }
  *out = kr;
  return JWTKIT_OK;
}

typedef struct init_arg {
  const jwtkit_alg *algs;
  size_t n;
} init_arg;

static jwtkit_err do_init(jwtkit_keyring *kr, txn *x, void *arg, int64_t now, jwtkit_errinfo *info) {
  init_arg *a = arg;
  for (size_t i = 0; i < a->n; i++) {
    kr_key *k = NULL;
    jwtkit_err rc = new_key(kr, x, a->algs[i], NULL, JWTKIT_KEY_ACTIVE, now, &k, info);
    if (rc != JWTKIT_OK) return rc;
    say(x, "created active key %s (%s): first key of a new keyring, signs at once", k->kid, jwtkit_alg_name(k->alg));
  }
  return JWTKIT_OK;
}

jwtkit_err jwtkit_keyring_init(const char *dir, const jwtkit_alg *algs, size_t nalgs, const jwtkit_keyring_timing *timing,
                               const char *passphrase, int64_t now, jwtkit_keyring_report_fn report, void *ctx,
                               jwtkit_errinfo *info) {
  jwtkit_keyring_secrets sec = {.passphrase = passphrase, .keks = NULL, .nkeks = 0};
  return jwtkit_keyring_init_ex(dir, algs, nalgs, timing, &sec, now, report, ctx, info);
}

jwtkit_err jwtkit_keyring_init_ex(const char *dir, const jwtkit_alg *algs, size_t nalgs,
                                  const jwtkit_keyring_timing *timing, const jwtkit_keyring_secrets *sec, int64_t now,
                                  jwtkit_keyring_report_fn report, void *ctx, jwtkit_errinfo *info) {
  const char *passphrase = sec ? sec->passphrase : NULL;
  if (dir == NULL || algs == NULL || nalgs == 0 || nalgs > 16) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "name 1..16 algorithms");
  if (!time_ok(now)) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "clock out of range");
  jwtkit_keyring_timing t;
  if (timing)
    t = *timing;
  else
    jwtkit_keyring_timing_default(&t);
  if (t.rsa_bits == 0) t.rsa_bits = 2048;
  jwtkit_err rc = check_timing(&t, info);
  if (rc != JWTKIT_OK) return rc;
  for (size_t i = 0; i < nalgs; i++) {
    jwtkit_kty kty = jwtkit_alg_kty(algs[i]);
    if (kty == 0 || kty == JWTKIT_KTY_OCT)
      return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "a keyring holds RS*, PS*, ES* and EdDSA keys only");
    for (size_t j = 0; j < i; j++)
      if (algs[j] == algs[i]) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "algorithm named twice");
  }
  jwtkit_keyring *kr = NULL;
  if ((rc = open_store(&kr, dir, sec, 1, info)) != JWTKIT_OK) return rc;
  if ((rc = kr->store->ops->lock(kr->store, 1, info)) != JWTKIT_OK) {
    jwtkit_keyring_free(kr);
    return rc;
  }
  char *existing = NULL;
  size_t el;
  jwtkit_errinfo probe;
  rc = kr->store->ops->load_meta(kr->store, &existing, &el, &probe);
  jk_free(existing);
  if (rc != JWTKIT_ERR_NOT_FOUND) {
    (void)kr->store->ops->unlock(kr->store, 0, &probe);
    jwtkit_keyring_free(kr);
    char where[512];
    jwtkit_keyring_location_redact(dir, where, sizeof where);
    return rc == JWTKIT_OK ? jk_fail(info, JWTKIT_ERR_STATE, NULL, "%s already holds a keyring", where)
                           : jk_fail(info, rc, NULL, "%s", probe.msg);
  }
  kr->t = t;
  kr->encrypted = passphrase != NULL;
  txn *x = txn_new(report, ctx);
  if (x == NULL) {
    (void)kr->store->ops->unlock(kr->store, 0, info);
    rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  } else {
    init_arg a = {algs, nalgs};
    rc = txn_end(kr, x, do_init(kr, x, &a, now, info), info);
  }
  jwtkit_keyring_free(kr);
  return rc;
}

jwtkit_err jwtkit_keyring_open(jwtkit_keyring **out, const char *dir, const char *passphrase, jwtkit_errinfo *info) {
  jwtkit_keyring_secrets sec = {.passphrase = passphrase, .keks = NULL, .nkeks = 0};
  return jwtkit_keyring_open_ex(out, dir, &sec, info);
}

jwtkit_err jwtkit_keyring_open_ex(jwtkit_keyring **out, const char *dir, const jwtkit_keyring_secrets *sec,
                                  jwtkit_errinfo *info) {
  return jwtkit_keyring_open_seen(out, dir, sec, 0, info);
}

/* open_seen and open_review */
static jwtkit_err open_as(jwtkit_keyring **out, const char *dir, const jwtkit_keyring_secrets *sec, uint64_t seen,
                          int review, jwtkit_errinfo *info) {
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  jwtkit_err rc = open_store(out, dir, sec, 0, info);
  if (rc != JWTKIT_OK) return rc;
  (*out)->seen = seen;
  (*out)->review = review;
  /* a shared lock: a concurrent rotation never shows half its files */
  if ((rc = (*out)->store->ops->lock((*out)->store, 0, info)) == JWTKIT_OK) {
    rc = reload(*out, info);
    jwtkit_errinfo ignore;
    (void)(*out)->store->ops->unlock((*out)->store, 0, &ignore);
  }
  if (rc != JWTKIT_OK) {
    jwtkit_keyring_free(*out);
    *out = NULL;
  }
  return rc;
}

jwtkit_err jwtkit_keyring_open_seen(jwtkit_keyring **out, const char *location, const jwtkit_keyring_secrets *secrets,
                                    uint64_t seen, jwtkit_errinfo *info) {
  return open_as(out, location, secrets, seen, 0, info);
}

jwtkit_err jwtkit_keyring_open_review(jwtkit_keyring **out, const char *location,
                                      const jwtkit_keyring_secrets *secrets, jwtkit_errinfo *verdict,
                                      jwtkit_errinfo *info) {
  jwtkit_err rc = open_as(out, location, secrets, 0, 1, info);
  if (rc == JWTKIT_OK && verdict != NULL) *verdict = (*out)->verdict;
  return rc;
}

/* trust: a published key whose private part is not in the store, or does
 * not match, was not made by this keyring */
static jwtkit_err check_private_parts(jwtkit_keyring *kr, jwtkit_errinfo *info) {
  for (size_t i = 0; i < kr->n; i++) {
    kr_key *k = &kr->keys[i];
    if (k->state > JWTKIT_KEY_RETIRING || k->priv != NULL) continue; /* pending and active ones were loaded */
    kr_key tmp = *k;
    tmp.priv = NULL;
    jwtkit_errinfo why;
    jwtkit_err rc = load_private(kr, &tmp, &why);
    jwtkit_key_free(tmp.priv);
    if (rc == JWTKIT_ERR_NOMEM) return jk_fail(info, rc, NULL, NULL);
    if (rc != JWTKIT_OK)
      return jk_fail(info, JWTKIT_ERR_STATE, "kid",
                     "key %.64s (%s) has no matching private key here (%.60s): not made by this keyring; remove it "
                     "or restore a backup",
                     k->kid, jwtkit_key_state_name(k->state), why.msg);
  }
  return JWTKIT_OK;
}

jwtkit_err jwtkit_keyring_trust(jwtkit_keyring *kr, jwtkit_keyring_report_fn report, void *ctx, jwtkit_errinfo *info) {
  if (kr == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  if (kr->auth.mode == JK_DOCAUTH_NONE)
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL,
                   "a directory keyring without a passphrase has no key to authenticate its document with; its "
                   "file permissions protect it");
  if (kr->meta == NULL) return jk_fail(info, JWTKIT_ERR_STATE, NULL, "no keyring document loaded");
  char line[200];
  if (!kr->review || kr->verdict.code == JWTKIT_OK) {
    snprintf(line, sizeof line, "%s (generation %llu) is already authenticated; nothing to do", doc_name(kr),
             (unsigned long long)kr->generation);
    if (report != NULL) report(ctx, line);
    return JWTKIT_OK;
  }
  jwtkit_err rc = kr->store->ops->lock(kr->store, 1, info);
  if (rc != JWTKIT_OK) return rc;
  /* exactly what was reviewed, and every published key made here */
  char *stored = NULL, *json = NULL;
  size_t sl = 0, len = 0;
  rc = kr->store->ops->load_meta(kr->store, &stored, &sl, info);
  if (rc == JWTKIT_OK && (sl != kr->meta_len || memcmp(stored, kr->meta, sl) != 0))
    rc = jk_fail(info, JWTKIT_ERR_STATE, NULL, "%s changed since it was reviewed; review it again", doc_name(kr));
  jk_free(stored);
  if (rc == JWTKIT_OK) rc = check_private_parts(kr, info);
  uint64_t gen = kr->generation;
  if (rc == JWTKIT_OK) {
    /* a new generation, authenticated; nothing else is changed or removed */
    kr->generation++;
    rc = meta_json(kr, &json, &len);
    if (rc != JWTKIT_OK) rc = jk_fail(info, rc, NULL, rc == JWTKIT_ERR_NOMEM ? NULL : "authenticating the keyring document failed");
  }
  if (rc == JWTKIT_OK) rc = kr->store->ops->save_meta(kr->store, json, len, info);
  jwtkit_err urc = kr->store->ops->unlock(kr->store, rc == JWTKIT_OK, info);
  if (rc == JWTKIT_OK) rc = urc;
  if (rc != JWTKIT_OK) {
    kr->generation = gen;
    jk_free(json);
    return rc;
  }
  jk_free(kr->meta);
  kr->meta = json;
  kr->meta_len = len;
  kr->review = 0;
  jk_info_clear(&kr->verdict);
  kr->auth.verified_by = 0;
  kr->seen = kr->generation;
  if (kr->auth.mode == JK_DOCAUTH_KEK)
    snprintf(line, sizeof line, "authenticated %s as generation %llu under KEK %s", doc_name(kr),
             (unsigned long long)kr->generation, kr->auth.ids[0]);
  else
    snprintf(line, sizeof line, "authenticated %s as generation %llu with the passphrase", doc_name(kr),
             (unsigned long long)kr->generation);
  if (report != NULL) report(ctx, line);
  return JWTKIT_OK;
}

static jwtkit_err do_add(jwtkit_keyring *kr, txn *x, void *arg, int64_t now, jwtkit_errinfo *info) {
  jwtkit_key *key = arg;
  kr_key *k = NULL;
  jwtkit_err rc = new_key(kr, x, jwtkit_key_alg(key), key, JWTKIT_KEY_PENDING, now, &k, info);
  if (rc != JWTKIT_OK) return rc;
  char when[32];
  jwtkit_keyring_entry e;
  entry_of(kr, k, &e);
  fmt_time(e.planned_activation, when);
  say(x, "added pending key %s (%s): published now, can sign from %s", k->kid, jwtkit_alg_name(k->alg), when);
  return JWTKIT_OK;
}

jwtkit_err jwtkit_keyring_add(jwtkit_keyring *kr, jwtkit_key *private_key, int64_t now, jwtkit_keyring_report_fn report,
                              void *ctx, jwtkit_errinfo *info) {
  if (kr == NULL || private_key == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  jwtkit_kty kty = jwtkit_key_kty(private_key);
  if (!jwtkit_key_can_sign(private_key) || kty == JWTKIT_KTY_OCT)
    return jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL, "a keyring takes RSA, EC or OKP private keys");
  return mutate(kr, do_add, private_key, now, report, ctx, info);
}

static jwtkit_err rotate_alg(jwtkit_keyring *kr, txn *x, jwtkit_alg alg, int64_t now, int force, jwtkit_errinfo *info) {
  char when[32];
  kr_key *a = find_state(kr, alg, JWTKIT_KEY_ACTIVE);
  kr_key *p = find_state(kr, alg, JWTKIT_KEY_PENDING);
  int due = a == NULL || force || now >= planned_end(kr, a);
  if (p == NULL && (due || now >= planned_end(kr, a) - publish_ahead(&kr->t))) {
    jwtkit_err rc = new_key(kr, x, alg, NULL, JWTKIT_KEY_PENDING, now, &p, info);
    if (rc != JWTKIT_OK) return rc;
    a = find_state(kr, alg, JWTKIT_KEY_ACTIVE); /* the array may have moved */
    jwtkit_keyring_entry e;
    entry_of(kr, p, &e);
    fmt_time(e.planned_activation, when);
    say(x, "published pending key %s (%s); it can sign from %s", p->kid, jwtkit_alg_name(alg), when);
  }
  if (p != NULL && due) {
    if (now >= p->published + kr->t.max_age) {
      p->state = JWTKIT_KEY_ACTIVE;
      p->activated = now;
      say(x, "activated key %s (%s): published for %lld s >= max-age %lld s", p->kid, jwtkit_alg_name(alg),
          (long long)(now - p->published), (long long)kr->t.max_age);
      if (a != NULL) {
        a->state = JWTKIT_KEY_RETIRING;
        a->retiring = now;
        jwtkit_key_free(a->priv);
        a->priv = NULL;
        fmt_time(retire_after(kr, now), when);
        say(x, "key %s (%s) stopped signing and is retiring; it stays published until %s", a->kid, jwtkit_alg_name(alg),
            when);
      }
    } else if (force) {
      fmt_time(p->published + kr->t.max_age, when);
      note(x, "waiting: pending key %s (%s) cannot sign before %s (max-age)", p->kid, jwtkit_alg_name(alg), when);
    }
  }
  return JWTKIT_OK;
}

static jwtkit_err do_rotate(jwtkit_keyring *kr, txn *x, void *arg, int64_t now, jwtkit_errinfo *info) {
  int force = *(int *)arg;
  char when[32];
  for (size_t i = 0; i < kr->n; i++) {
    kr_key *k = &kr->keys[i];
    if (k->state == JWTKIT_KEY_RETIRING && now >= retire_after(kr, k->retiring)) {
      retire(x, k, JWTKIT_KEY_RETIRED, now);
      fmt_time(k->retiring, when);
      say(x, "retired key %s (%s): no token it signed (last at %s) can still be valid; private key destroyed", k->kid,
          jwtkit_alg_name(k->alg), when);
    }
  }
  /* every algorithm that has a live key */
  jwtkit_alg seen[JWTKIT_ALG_COUNT] = {0};
  for (size_t i = 0; i < kr->n; i++) {
    kr_key *k = &kr->keys[i];
    if ((k->state == JWTKIT_KEY_ACTIVE || k->state == JWTKIT_KEY_PENDING) && !seen[k->alg]) {
      seen[k->alg] = k->alg;
    }
  }
  for (int a = 1; a < JWTKIT_ALG_COUNT; a++) {
    if (!seen[a]) continue;
    jwtkit_err rc = rotate_alg(kr, x, (jwtkit_alg)a, now, force, info);
    if (rc != JWTKIT_OK) return rc;
  }
  return JWTKIT_OK;
}

jwtkit_err jwtkit_keyring_rotate(jwtkit_keyring *kr, int64_t now, int force, jwtkit_keyring_report_fn report, void *ctx,
                                 jwtkit_errinfo *info) {
  if (kr == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  return mutate(kr, do_rotate, &force, now, report, ctx, info);
}

static jwtkit_err do_revoke(jwtkit_keyring *kr, txn *x, void *arg, int64_t now, jwtkit_errinfo *info) {
  const char *kid = arg;
  kr_key *k = NULL;
  for (size_t i = 0; i < kr->n; i++)
    if (strcmp(kr->keys[i].kid, kid) == 0) k = &kr->keys[i];
  if (k == NULL) return jk_fail(info, JWTKIT_ERR_NOT_FOUND, "kid", "no key %s in the keyring", kid);
  if (k->state >= JWTKIT_KEY_RETIRED) return jk_fail(info, JWTKIT_ERR_STATE, "kid", "key %s is already %s", kid, jwtkit_key_state_name(k->state));
  jwtkit_alg alg = k->alg;
  int was_active = k->state == JWTKIT_KEY_ACTIVE;
  retire(x, k, JWTKIT_KEY_REVOKED, now);
  say(x, "revoked key %s (%s): removed from the JWKS now, private key destroyed", kid, jwtkit_alg_name(alg));
  if (!was_active) return JWTKIT_OK;
  kr_key *p = find_state(kr, alg, JWTKIT_KEY_PENDING);
  if (p == NULL) {
    jwtkit_err rc = new_key(kr, x, alg, NULL, JWTKIT_KEY_PENDING, now, &p, info);
    if (rc != JWTKIT_OK) return rc;
  }
  p->state = JWTKIT_KEY_ACTIVE;
  p->activated = now;
  say(x, "activated key %s (%s) at once (emergency: verifiers holding an older JWKS refetch on the unknown kid)", p->kid,
      jwtkit_alg_name(alg));
  return JWTKIT_OK;
}

jwtkit_err jwtkit_keyring_revoke(jwtkit_keyring *kr, const char *kid, int64_t now, jwtkit_keyring_report_fn report,
                                 void *ctx, jwtkit_errinfo *info) {
  if (kr == NULL || kid == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  return mutate(kr, do_revoke, (void *)kid, now, report, ctx, info);
}

jwtkit_err jwtkit_keyring_rekey(jwtkit_keyring *kr, jwtkit_keyring_report_fn report, void *ctx, jwtkit_errinfo *info) {
  if (kr == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  if (kr->store->ops->rekey == NULL || kr->auth.mode != JK_DOCAUTH_KEK)
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL,
                   "rekey applies to a PostgreSQL keyring (KEKs); a directory keyring's keys use its passphrase");
  if (kr->review)
    return jk_fail(info, JWTKIT_ERR_STATE, NULL, "a keyring opened for review can only be listed and trusted");
  jwtkit_err rc = kr->store->ops->lock(kr->store, 1, info);
  if (rc != JWTKIT_OK) return rc;
  /* the document as stored, authenticated by one of the KEKs */
  rc = reload(kr, info);
  int remac = rc == JWTKIT_OK && kr->auth.verified_by != 0;
  size_t resealed = 0, total = 0;
  if (rc == JWTKIT_OK) rc = kr->store->ops->rekey(kr->store, &resealed, &total, info);
  /* and its MAC under the first KEK: same content, same generation */
  char *json = NULL;
  size_t len = 0;
  if (rc == JWTKIT_OK && remac) {
    rc = meta_json(kr, &json, &len);
    if (rc != JWTKIT_OK) rc = jk_fail(info, rc, NULL, rc == JWTKIT_ERR_NOMEM ? NULL : "authenticating the keyring document failed");
    if (rc == JWTKIT_OK) rc = kr->store->ops->save_meta(kr->store, json, len, info);
  }
  jwtkit_err urc = kr->store->ops->unlock(kr->store, rc == JWTKIT_OK, info);
  if (rc == JWTKIT_OK) rc = urc;
  if (rc == JWTKIT_OK && remac) {
    jk_free(kr->meta);
    kr->meta = json;
    kr->meta_len = len;
    kr->auth.verified_by = 0;
    json = NULL;
  }
  jk_free(json);
  if (rc == JWTKIT_OK && report != NULL) {
    char line[160];
    if (remac) {
      snprintf(line, sizeof line, "re-authenticated the keyring document (generation %llu) under the first KEK %s",
               (unsigned long long)kr->generation, kr->auth.ids[0]);
      report(ctx, line);
    }
    snprintf(line, sizeof line, "re-sealed %zu of %zu private keys under the first KEK (%zu were already under it)",
             resealed, total, total - resealed);
    report(ctx, line);
  }
  return rc;
}

void jwtkit_keyring_interrupt(jwtkit_keyring *kr) {
  if (kr != NULL && kr->store->ops->interrupt != NULL) kr->store->ops->interrupt(kr->store);
}

jwtkit_err jwtkit_keyring_jwks(const jwtkit_keyring *kr, char **json, size_t *len) {
  if (kr == NULL || json == NULL) return JWTKIT_ERR_INVALID_ARG;
  *json = NULL;
  jk_buf b;
  jk_buf_init(&b);
  jk_buf_puts(&b, "{\"keys\":[");
  int first = 1;
  for (size_t i = 0; i < kr->n; i++) {
    const kr_key *k = &kr->keys[i];
    if (k->state > JWTKIT_KEY_RETIRING) continue;
    /* from the key the stored JWK was validated into (public, its kid,
     * its algorithm), exported again: never the stored text */
    char *jwk = NULL;
    size_t jl = 0;
    jwtkit_err rc = jwtkit_key_to_jwk(k->pub, 0, &jwk, &jl);
    if (rc != JWTKIT_OK) {
      jk_buf_free(&b);
      return rc;
    }
    if (!first) jk_buf_putc(&b, ',');
    jk_buf_put(&b, jwk, jl);
    jk_free(jwk);
    first = 0;
  }
  jk_buf_puts(&b, "]}");
  *json = jk_buf_take(&b, len);
  return *json ? JWTKIT_OK : JWTKIT_ERR_NOMEM;
}

jwtkit_err jwtkit_keyring_signing_key(const jwtkit_keyring *kr, jwtkit_alg alg, int64_t now, jwtkit_key **key,
                                      int64_t *max_exp) {
  if (kr == NULL || key == NULL) return JWTKIT_ERR_INVALID_ARG;
  *key = NULL;
  if (!time_ok(now)) return JWTKIT_ERR_INVALID_ARG;
  kr_key *a = find_state((jwtkit_keyring *)kr, alg, JWTKIT_KEY_ACTIVE);
  if (a == NULL || a->priv == NULL) return JWTKIT_ERR_NOT_FOUND;
  int64_t limit = planned_end(kr, a) + kr->t.token_ttl;
  int64_t exp = now + kr->t.token_ttl;
  if (exp > limit) exp = limit;
  if (exp <= now) return JWTKIT_ERR_STATE;
  *key = a->priv;
  if (max_exp != NULL) *max_exp = exp;
  return JWTKIT_OK;
}

size_t jwtkit_keyring_count(const jwtkit_keyring *kr) { return kr ? kr->n : 0; }

jwtkit_err jwtkit_keyring_get(const jwtkit_keyring *kr, size_t i, jwtkit_keyring_entry *e) {
  if (kr == NULL || e == NULL) return JWTKIT_ERR_INVALID_ARG;
  if (i >= kr->n) return JWTKIT_ERR_NOT_FOUND;
  entry_of(kr, &kr->keys[i], e);
  return JWTKIT_OK;
}

void jwtkit_keyring_get_timing(const jwtkit_keyring *kr, jwtkit_keyring_timing *t) {
  if (kr != NULL && t != NULL) *t = kr->t;
}

uint64_t jwtkit_keyring_generation(const jwtkit_keyring *kr) { return kr ? kr->generation : 0; }

static void dur(int64_t s, char out[24]) {
  if (s % 86400 == 0)
    snprintf(out, 24, "%lldd", (long long)(s / 86400));
  else if (s % 3600 == 0)
    snprintf(out, 24, "%lldh", (long long)(s / 3600));
  else if (s % 60 == 0)
    snprintf(out, 24, "%lldm", (long long)(s / 60));
  else
    snprintf(out, 24, "%llds", (long long)s);
}

jwtkit_err jwtkit_keyring_plan(const jwtkit_keyring *kr, int64_t now, char **text, size_t *len) {
  if (kr == NULL || text == NULL) return JWTKIT_ERR_INVALID_ARG;
  jk_buf b;
  jk_buf_init(&b);
  char line[512], t0[32], t1[32], t2[32], t3[32], d1[24], d2[24], d3[24], d4[24], d5[24];
  fmt_time(now, t0);
  dur(kr->t.max_age, d1);
  dur(kr->t.token_ttl, d2);
  dur(kr->t.leeway, d3);
  dur(kr->t.rotate_every, d4);
  dur(publish_ahead(&kr->t), d5);
  snprintf(line, sizeof line,
           "keyring plan at %s (generation %llu)\n"
           "rules: JWKS max-age %s, token TTL %s, leeway %s, rotation every %s, next key published %s ahead\n\n",
           t0, (unsigned long long)kr->generation, d1, d2, d3, d4, d5);
  jk_buf_puts(&b, line);
  snprintf(line, sizeof line, "%-44s %-6s %-9s %-21s %-22s %-22s %s\n", "KID", "ALG", "STATE", "PUBLISHED", "SIGNS FROM",
           "SIGNS UNTIL", "LEAVES JWKS");
  jk_buf_puts(&b, line);
  for (size_t i = 0; i < kr->n; i++) {
    jwtkit_keyring_entry e;
    entry_of(kr, &kr->keys[i], &e);
    const char *mark_from = "", *mark_until = "", *mark_leave = "";
    fmt_time(e.published, t0);
    switch (e.state) {
      case JWTKIT_KEY_PENDING:
        fmt_time(e.planned_activation, t1);
        fmt_time(e.planned_retiring, t2);
        fmt_time(e.planned_retirement, t3);
        mark_from = mark_until = mark_leave = "~";
        break;
      case JWTKIT_KEY_ACTIVE:
        fmt_time(e.activated, t1);
        fmt_time(e.planned_retiring, t2);
        fmt_time(e.planned_retirement, t3);
        mark_until = mark_leave = "~";
        break;
      case JWTKIT_KEY_RETIRING:
        if (e.activated) fmt_time(e.activated, t1); else snprintf(t1, sizeof t1, "-");
        fmt_time(e.retiring, t2);
        fmt_time(e.planned_retirement, t3);
        mark_leave = "~";
        break;
      default:
        if (e.activated) fmt_time(e.activated, t1); else snprintf(t1, sizeof t1, "-");
        if (e.retiring) fmt_time(e.retiring, t2); else if (e.state == JWTKIT_KEY_REVOKED) fmt_time(e.retired, t2); else snprintf(t2, sizeof t2, "-");
        fmt_time(e.retired, t3);
        break;
    }
    char c1[40], c2[40], c3[40];
    snprintf(c1, sizeof c1, "%s%s", mark_from, t1);
    snprintf(c2, sizeof c2, "%s%s", mark_until, t2);
    snprintf(c3, sizeof c3, "%s%s", mark_leave, t3);
    snprintf(line, sizeof line, "%-44s %-6s %-9s %-21s %-22s %-22s %s\n", e.kid, jwtkit_alg_name(e.alg),
             jwtkit_key_state_name(e.state), t0, c1, c2, c3);
    jk_buf_puts(&b, line);
  }
  jk_buf_puts(&b, "\n~ planned: the earliest the rules allow; a late rotation moves them later,\n"
                  "  `rotate --force` and `revoke` sooner.\n");
  for (int a = 1; a < JWTKIT_ALG_COUNT; a++) {
    kr_key *act = find_state((jwtkit_keyring *)kr, (jwtkit_alg)a, JWTKIT_KEY_ACTIVE);
    if (act == NULL) continue;
    if (find_state((jwtkit_keyring *)kr, (jwtkit_alg)a, JWTKIT_KEY_PENDING) == NULL) {
      fmt_time(planned_end(kr, act) - publish_ahead(&kr->t), t1);
      snprintf(line, sizeof line, "next: a new %s key will be published at %s\n", jwtkit_alg_name((jwtkit_alg)a), t1);
      jk_buf_puts(&b, line);
    }
  }
  *text = jk_buf_take(&b, len);
  return *text ? JWTKIT_OK : JWTKIT_ERR_NOMEM;
}
