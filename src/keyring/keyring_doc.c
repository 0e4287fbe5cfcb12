/* The keyring document: written (jk_kr_meta_json), read and checked
 * (meta_parse: format, authentication, rollback, every key), and the
 * private keys loaded (jk_kr_reload). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "codec/json.h"
#include "core/alloc.h"
#include "core/error_internal.h"
#include "jwtkit/jwks.h"
#include "keyring_internal.h"

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
jwtkit_err jk_kr_meta_json(jwtkit_keyring *kr, char **json, size_t *len) {
  jk_buf b;
  jk_buf_init(&b);
  *json = NULL;
  jk_buf_puts(&b, "{\"format\":\"" KR_FORMAT "\"");
  put_i(&b, "version", jk_docauth_version(&kr->auth), 1);
  put_i(&b, "generation", (int64_t)kr->generation, 1);
  jk_buf_puts(&b, kr->encrypted ? ",\"encrypted\":true" : ",\"encrypted\":false");
  if (kr->pkcs11 != NULL) { /* the keys' token (covered by the MAC like the rest) */
    jk_buf_puts(&b, ",\"pkcs11\":");
    jk_buf_json_str(&b, kr->pkcs11, strlen(kr->pkcs11));
  }
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
    if (k->token) jk_buf_puts(&b, ",\"token\":true");
    put_i(&b, "created", k->created, 1);
    put_i(&b, "published", k->published, 1);
    put_i(&b, "activated", k->activated, 1);
    put_i(&b, "retiring", k->retiring, 1);
    put_i(&b, "retired", k->retired, 1);
    if (k->verify_only) jk_buf_puts(&b, k->held ? ",\"verify_only\":true,\"held\":true" : ",\"verify_only\":true");
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
  return jk_fail(info, JWTKIT_ERR_MALFORMED, "keyring.json", "%s: %s", jk_kr_doc_name(kr), what);
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
                   jk_kr_doc_name(kr), k->kid);
  const char *kid = jwtkit_key_kid(k->pub);
  if (kid == NULL) {
    jwtkit_err rc = jwtkit_key_set_kid(k->pub, k->kid, strlen(k->kid));
    if (rc != JWTKIT_OK) return jk_fail(info, rc, "kid", NULL);
  } else if (strcmp(kid, k->kid) != 0) {
    return jk_fail(info, JWTKIT_ERR_MALFORMED, "kid", "%s: key %.64s has a JWK that names kid %.64s", jk_kr_doc_name(kr),
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
  rc = jk_docauth_check(&kr->auth, &d, jk_kr_doc_name(kr), &authenticated, &kr->verdict);
  if (rc != JWTKIT_OK) {
    /* a review reads the document anyway (and says why it is not
     * authentic); everything else refuses it */
    if (!(kr->review && (rc == JWTKIT_ERR_BAD_SIGNATURE || rc == JWTKIT_ERR_PASSPHRASE || rc == JWTKIT_ERR_KEK))) {
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
                 jk_kr_doc_name(kr), (long long)v, (unsigned long long)kr->seen);
    goto out;
  }
  kr->generation = (uint64_t)v;
  int enc = jk_json_get(&d, 0, "encrypted", 9);
  kr->encrypted = enc >= 0 && d.nodes[enc].type == JK_J_TRUE;
  /* a token keyring: where its keys are */
  jk_free(kr->pkcs11);
  kr->pkcs11 = NULL;
  int p11 = jk_json_get(&d, 0, "pkcs11", 6);
  if (p11 >= 0) {
    char *text = d.nodes[p11].type == JK_J_STRING ? jk_json_strdup(&d, (uint32_t)p11, NULL) : NULL;
    if (text == NULL && d.nodes[p11].type == JK_J_STRING) {
      rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
      goto out;
    }
    jwtkit_errinfo why;
    rc = text != NULL ? jk_kr_token_canon(text, &kr->pkcs11, &why) : JWTKIT_ERR_MALFORMED;
    jk_free(text);
    if (rc == JWTKIT_ERR_NOMEM) {
      rc = jk_fail(info, rc, NULL, NULL);
      goto out;
    }
    if (rc != JWTKIT_OK) {
      rc = corrupt(info, "bad pkcs11 token URI");
      goto out;
    }
  }
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
  if ((rc = jk_kr_check_timing(&kr->t, info)) != JWTKIT_OK) goto out;
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
    kr_key *k = jk_kr_push_key(kr);
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
    k->state = jk_kr_state_from(tmp, tl);
    jk_json_unescape(&d, (uint32_t)file, k->file);
    if (k->kid == NULL || k->alg == JWTKIT_ALG_UNSPEC || k->state == 0 ||
        get_int(&d, i, "created", &k->created) || get_int(&d, i, "published", &k->published) ||
        get_int(&d, i, "activated", &k->activated) || get_int(&d, i, "retiring", &k->retiring) ||
        get_int(&d, i, "retired", &k->retired)) {
      rc = corrupt(info, "bad key entry");
      goto out;
    }
    /* verify-only keys (optional members) are retiring or gone, never sign */
    int vo = jk_json_get(&d, i, "verify_only", 11), held = jk_json_get(&d, i, "held", 4);
    if ((vo >= 0 && d.nodes[vo].type != JK_J_TRUE) || (held >= 0 && d.nodes[held].type != JK_J_TRUE) ||
        (held >= 0 && vo < 0) || (vo >= 0 && k->state < JWTKIT_KEY_RETIRING) ||
        (held >= 0 && k->state != JWTKIT_KEY_RETIRING)) {
      rc = corrupt(info, "bad verify-only key entry");
      goto out;
    }
    k->verify_only = vo >= 0;
    k->held = held >= 0;
    /* a key whose private part is in the keyring's token: no file, not verify-only */
    int tok = jk_json_get(&d, i, "token", 5);
    if ((tok >= 0 && (d.nodes[tok].type != JK_J_TRUE || kr->pkcs11 == NULL || k->file[0] != '\0' || vo >= 0)) ||
        (tok < 0 && vo < 0 && k->state <= JWTKIT_KEY_ACTIVE && !jk_store_name_ok(k->file))) {
      rc = corrupt(info, "bad token key entry");
      goto out;
    }
    k->token = tok >= 0;
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

jwtkit_err jk_kr_load_private(jwtkit_keyring *kr, kr_key *k, jwtkit_errinfo *info) {
  if (k->token) return jk_kr_token_load(kr, k, info); /* never from a file: the token or nothing */
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
jwtkit_err jk_kr_reload(jwtkit_keyring *kr, jwtkit_errinfo *info) {
  char *json = NULL;
  size_t len = 0;
  jwtkit_err rc = kr->store->ops->load_meta(kr->store, &json, &len, info);
  if (rc != JWTKIT_OK) {
    jk_kr_keys_clear(kr);
    return rc;
  }
  if (kr->meta != NULL && kr->meta_len == len && memcmp(kr->meta, json, len) == 0) {
    jk_free(json);
    return JWTKIT_OK;
  }
  jk_kr_keys_clear(kr);
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
  /* a review of a document that is not authentic does not load the module
   * its token URI names (whoever wrote the document chose it) */
  int untrusted = kr->review && kr->verdict.code != JWTKIT_OK;
  for (size_t i = 0; rc == JWTKIT_OK && !kr->public_only && i < kr->n; i++)
    if ((kr->keys[i].state == JWTKIT_KEY_PENDING || kr->keys[i].state == JWTKIT_KEY_ACTIVE) &&
        !(kr->keys[i].token && untrusted))
      rc = jk_kr_load_private(kr, &kr->keys[i], info);
  if (rc != JWTKIT_OK) {
    jk_kr_keys_clear(kr);
    jk_free(kr->meta);
    kr->meta = NULL;
  } else if (kr->generation > kr->seen) {
    kr->seen = kr->generation;
  }
  return rc;
}

