/* Keys in PKCS#11 tokens, through p11-kit's module loading and the
 * PKCS#11 API itself (jwtkit/pkcs11.h).
 *
 * A token key is an ordinary jwtkit_key whose EVP_PKEY holds the public
 * half read from the token (verification, export and thumbprints work as
 * for any key) and whose `p11` member signs in the token.  Each key loads
 * its own p11-kit managed instance of the module (so keys, and other users
 * of the module in the process, never finalize each other) and keeps a
 * pool of sessions:
 *
 *   - a signer takes an idle session, or opens one (and logs in when the
 *     session is not logged in) while fewer than max_sessions are open,
 *     else waits on a condition variable, at most wait_ms;
 *   - a session that the token lost (CKR_SESSION_HANDLE_INVALID,
 *     CKR_SESSION_CLOSED, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT,
 *     CKR_USER_NOT_LOGGED_IN) is closed, every idle session of that
 *     generation is dropped, the token is looked up again when it went
 *     away, and the signature is retried once on a fresh session;
 *   - a PIN the token refused (CKR_PIN_INCORRECT, CKR_PIN_LOCKED, ...) is
 *     never tried again: the key fails fast with the first message, so a
 *     busy issuer cannot lock the token.  Logins are serialised.
 *
 * Without p11-kit (JWTKIT_WITH_PKCS11 undefined) the public functions
 * return JWTKIT_ERR_UNSUPPORTED. */
#include "p11.h"

#include <string.h>

#include "core/alloc.h"
#include "core/error_internal.h"
#include "jwtkit/pkcs11.h"

unsigned long (*volatile jk_p11_test_hook)(int event, const jwtkit_key *key);

int jwtkit_is_pkcs11_uri(const char *text) { return text != NULL && jk_p11_is_uri(text, strnlen(text, 8)); }

#ifndef JWTKIT_WITH_PKCS11

#define NO_P11 "this jwtkit was built without PKCS#11 support (rebuild with p11-kit: libp11-kit-dev, -DJWTKIT_PKCS11=ON)"

int jwtkit_pkcs11_available(void) { return 0; }

jwtkit_err jwtkit_key_from_pkcs11(jwtkit_key **out, jwtkit_alg alg, const char *uri, jwtkit_errinfo *info) {
  return jwtkit_key_from_pkcs11_opts(out, alg, uri, NULL, info);
}

jwtkit_err jwtkit_key_from_pkcs11_opts(jwtkit_key **out, jwtkit_alg alg, const char *uri,
                                       const jwtkit_pkcs11_opts *opts, jwtkit_errinfo *info) {
  (void)alg, (void)uri, (void)opts;
  if (out != NULL) *out = NULL;
  return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL, NO_P11);
}

jwtkit_err jwtkit_pkcs11_public_key(jwtkit_key **out, jwtkit_alg alg, const char *uri, jwtkit_errinfo *info) {
  return jwtkit_key_from_pkcs11_opts(out, alg, uri, NULL, info);
}

jwtkit_err jwtkit_pkcs11_generate(jwtkit_key **out, jwtkit_alg alg, unsigned bits, const char *uri,
                                  jwtkit_errinfo *info) {
  (void)bits;
  return jwtkit_key_from_pkcs11_opts(out, alg, uri, NULL, info);
}

jwtkit_err jwtkit_pkcs11_destroy(const char *uri, jwtkit_errinfo *info) {
  (void)uri;
  return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL, NO_P11);
}

int jwtkit_key_is_pkcs11(const jwtkit_key *key) {
  (void)key;
  return 0;
}

jwtkit_err jwtkit_pkcs11_key_uri(const jwtkit_key *key, char **uri, size_t *len) {
  (void)key, (void)len;
  if (uri != NULL) *uri = NULL;
  return JWTKIT_ERR_UNSUPPORTED;
}

jwtkit_err jk_p11_sign(const jwtkit_key *key, const unsigned char *data, size_t len, unsigned char *sig, size_t cap,
                       size_t *sig_len, jwtkit_errinfo *info) {
  (void)key, (void)data, (void)len, (void)sig, (void)cap, (void)sig_len;
  return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL, NO_P11);
}

void jk_p11_key_free(struct jk_p11key *p) { (void)p; }

int jk_p11_get_stats(const jwtkit_key *key, jk_p11_stats *out) {
  (void)key, (void)out;
  return -1;
}

int jk_p11_test_module(const jwtkit_key *key, void **function_list, unsigned long *slot) {
  (void)key, (void)function_list, (void)slot;
  return -1;
}

#else /* JWTKIT_WITH_PKCS11 */

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <p11-kit/p11-kit.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "codec/b64url.h"
#include "common/file.h"
#include "key_internal.h"
#include "key_openssl.h"

#define P11_DEFAULT_SESSIONS 8u
#define P11_MAX_SESSIONS 256u
#define P11_DEFAULT_WAIT_MS 10000u
#define P11_MAX_SLOTS 256u
#define P11_MAX_PIN 256u  /* bytes of a PIN */
#define P11_PIN_ENV "JWTKIT_PKCS11_PIN"

/* CKM_EDDSA's optional parameter (PKCS#11 3.0), not in every pkcs11.h. */
typedef struct p11_eddsa_params {
  CK_BBOOL ph_flag;
  CK_ULONG context_len;
  CK_BYTE_PTR context;
} p11_eddsa_params;

int jwtkit_pkcs11_available(void) { return 1; }

/* ------------------------------------------------------------ messages */

static const char *rv_name(CK_RV rv) {
  switch (rv) {
#define N(x) \
  case x:    \
    return #x;
    N(CKR_OK) N(CKR_CANCEL) N(CKR_HOST_MEMORY) N(CKR_SLOT_ID_INVALID) N(CKR_GENERAL_ERROR) N(CKR_FUNCTION_FAILED)
    N(CKR_ARGUMENTS_BAD) N(CKR_ATTRIBUTE_SENSITIVE) N(CKR_ATTRIBUTE_TYPE_INVALID) N(CKR_ATTRIBUTE_VALUE_INVALID)
    N(CKR_DATA_LEN_RANGE) N(CKR_DEVICE_ERROR) N(CKR_DEVICE_MEMORY) N(CKR_DEVICE_REMOVED) N(CKR_FUNCTION_CANCELED)
    N(CKR_FUNCTION_NOT_SUPPORTED) N(CKR_KEY_HANDLE_INVALID) N(CKR_KEY_SIZE_RANGE) N(CKR_KEY_TYPE_INCONSISTENT)
    N(CKR_KEY_FUNCTION_NOT_PERMITTED) N(CKR_MECHANISM_INVALID) N(CKR_MECHANISM_PARAM_INVALID)
    N(CKR_OBJECT_HANDLE_INVALID) N(CKR_OPERATION_ACTIVE) N(CKR_PIN_INCORRECT) N(CKR_PIN_INVALID) N(CKR_PIN_LEN_RANGE)
    N(CKR_PIN_EXPIRED) N(CKR_PIN_LOCKED) N(CKR_SESSION_CLOSED) N(CKR_SESSION_COUNT) N(CKR_SESSION_HANDLE_INVALID)
    N(CKR_SESSION_READ_ONLY) N(CKR_TEMPLATE_INCOMPLETE) N(CKR_TEMPLATE_INCONSISTENT) N(CKR_TOKEN_NOT_PRESENT)
    N(CKR_TOKEN_NOT_RECOGNIZED) N(CKR_TOKEN_WRITE_PROTECTED) N(CKR_USER_ALREADY_LOGGED_IN) N(CKR_USER_NOT_LOGGED_IN)
    N(CKR_USER_PIN_NOT_INITIALIZED) N(CKR_USER_TYPE_INVALID) N(CKR_BUFFER_TOO_SMALL)
    N(CKR_CRYPTOKI_NOT_INITIALIZED) N(CKR_CRYPTOKI_ALREADY_INITIALIZED)
#undef N
    default:
      return NULL;
  }
}

/* "CKR_X" or "CKR 0x..." in buf. */
static const char *rv_text(CK_RV rv, char buf[32]) {
  const char *n = rv_name(rv);
  if (n != NULL) return n;
  snprintf(buf, 32, "CKR 0x%lx", (unsigned long)rv);
  return buf;
}

/* A blank-padded PKCS#11 text field as a C string. */
static void padded_str(char *out, size_t cap, const CK_UTF8CHAR *f, size_t n) {
  while (n > 0 && (f[n - 1] == ' ' || f[n - 1] == '\0')) n--;
  if (n >= cap) n = cap - 1;
  memcpy(out, f, n);
  out[n] = '\0';
}

static int padded_eq(const CK_UTF8CHAR *f, size_t n, const char *want) {
  while (n > 0 && (f[n - 1] == ' ' || f[n - 1] == '\0')) n--;
  return strlen(want) == n && memcmp(f, want, n) == 0;
}

/* Errors of the module that mean the token is away or the session lost:
 * the token is looked up again / the session replaced. */
static int rv_lost(CK_RV rv) {
  return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED || rv == CKR_DEVICE_REMOVED ||
         rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_USER_NOT_LOGGED_IN ||
         /* a logout or a re-inserted token can invalidate the object's handle: find it again */
         rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID;
}

static int rv_gone(CK_RV rv) {
  return rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_SLOT_ID_INVALID;
}

static CK_RV hook(int ev, const jwtkit_key *key) {
  unsigned long (*h)(int, const jwtkit_key *) = jk_p11_test_hook;
  return h != NULL ? (CK_RV)h(ev, key) : CKR_OK;
}

/* ------------------------------------------------------------- modules */

/* A module and one token in it. */
typedef struct p11_token {
  CK_FUNCTION_LIST *fl;
  char *file; /* the module's file (jk_malloc) */
  CK_SLOT_ID slot;
  CK_FLAGS flags; /* CK_TOKEN_INFO flags when found */
  char label[33];
  char serial[17];
  char where[160]; /* "token jwtkit (serial ...)" for messages */
} p11_token;

static void module_release(CK_FUNCTION_LIST *fl) {
  if (fl == NULL) return;
  p11_kit_module_finalize(fl);
  p11_kit_module_release(fl);
}

static void token_close(p11_token *t) {
  module_release(t->fl);
  t->fl = NULL;
  jk_free(t->file);
  t->file = NULL;
}

static jwtkit_err module_load_path(const char *path, CK_FUNCTION_LIST **out, jwtkit_errinfo *info) {
  *out = NULL;
  struct stat st;
  if (stat(path, &st) != 0)
    return jk_fail(info, JWTKIT_ERR_NOT_FOUND, "module-path",
                   "PKCS#11 module %s: %s (install the token's module, e.g. softhsm2, or fix module-path=)", path,
                   strerror(errno));
  if (!S_ISREG(st.st_mode))
    return jk_fail(info, JWTKIT_ERR_NOT_FOUND, "module-path", "PKCS#11 module %s is not a regular file", path);
  CK_FUNCTION_LIST *fl = p11_kit_module_load(path, 0);
  if (fl == NULL)
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "module-path", "cannot load %s as a PKCS#11 module: %s", path,
                   p11_kit_message() ? p11_kit_message() : "?");
  CK_RV rv = p11_kit_module_initialize(fl);
  if (rv != CKR_OK) {
    char b[32];
    p11_kit_module_release(fl);
    return jk_fail(info, JWTKIT_ERR_IO, "module-path", "PKCS#11 module %s failed to initialise: %s", path,
                   rv_text(rv, b));
  }
  *out = fl;
  return JWTKIT_OK;
}

/* Append "label" to the list of tokens seen (for messages). */
static void seen_add(char *seen, size_t cap, const char *label, const char *serial) {
  size_t n = strlen(seen);
  if (n + 4 >= cap) return;
  int w = snprintf(seen + n, cap - n, "%s\"%s\" (serial %s)", n ? ", " : "", label, serial[0] ? serial : "-");
  if (w < 0 || (size_t)w >= cap - n) strcpy(seen + (cap > 4 ? cap - 4 : 0), "...");
}

/* The token in module fl that the URI names: 1 found (t filled), 0 none,
 * 2 several; -1 with info set when the module fails. */
static int token_search(CK_FUNCTION_LIST *fl, const jk_p11_uri *u, p11_token *t, char *seen, size_t seen_cap,
                        jwtkit_errinfo *info) {
  char b[32];
  CK_INFO mi;
  CK_RV rv = fl->C_GetInfo(&mi);
  if (rv != CKR_OK) {
    jk_fail(info, JWTKIT_ERR_IO, NULL, "C_GetInfo failed: %s", rv_text(rv, b));
    return -1;
  }
  if ((u->lib_manufacturer && !padded_eq(mi.manufacturerID, sizeof mi.manufacturerID, u->lib_manufacturer)) ||
      (u->lib_description && !padded_eq(mi.libraryDescription, sizeof mi.libraryDescription, u->lib_description)) ||
      (u->has_lib_version &&
       (mi.libraryVersion.major != u->lib_major || mi.libraryVersion.minor != u->lib_minor)))
    return 0;
  CK_SLOT_ID slots[P11_MAX_SLOTS];
  CK_ULONG n = P11_MAX_SLOTS;
  rv = fl->C_GetSlotList(CK_TRUE, slots, &n);
  if (rv == CKR_BUFFER_TOO_SMALL) {
    jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "the PKCS#11 module has more than %u slots with a token", P11_MAX_SLOTS);
    return -1;
  }
  if (rv != CKR_OK) {
    jk_fail(info, JWTKIT_ERR_IO, NULL, "C_GetSlotList failed: %s", rv_text(rv, b));
    return -1;
  }
  int found = 0;
  for (CK_ULONG i = 0; i < n; i++) {
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    if (fl->C_GetSlotInfo(slots[i], &si) != CKR_OK || fl->C_GetTokenInfo(slots[i], &ti) != CKR_OK) continue;
    if (!(ti.flags & CKF_TOKEN_INITIALIZED)) continue;
    char label[33], serial[17];
    padded_str(label, sizeof label, ti.label, sizeof ti.label);
    padded_str(serial, sizeof serial, ti.serialNumber, sizeof ti.serialNumber);
    if (seen != NULL) seen_add(seen, seen_cap, label, serial);
    if ((u->token && !padded_eq(ti.label, sizeof ti.label, u->token)) ||
        (u->manufacturer && !padded_eq(ti.manufacturerID, sizeof ti.manufacturerID, u->manufacturer)) ||
        (u->serial && !padded_eq(ti.serialNumber, sizeof ti.serialNumber, u->serial)) ||
        (u->model && !padded_eq(ti.model, sizeof ti.model, u->model)) ||
        (u->slot_description && !padded_eq(si.slotDescription, sizeof si.slotDescription, u->slot_description)) ||
        (u->slot_manufacturer && !padded_eq(si.manufacturerID, sizeof si.manufacturerID, u->slot_manufacturer)) ||
        (u->has_slot_id && slots[i] != u->slot_id))
      continue;
    if (found++ == 0) {
      t->slot = slots[i];
      t->flags = ti.flags;
      memcpy(t->label, label, sizeof label);
      memcpy(t->serial, serial, sizeof serial);
      snprintf(t->where, sizeof t->where, "token \"%s\"", label);
    }
  }
  return found > 1 ? 2 : found;
}

static jwtkit_err token_not_found(const jk_p11_uri *u, const char *seen, const char *modules, jwtkit_errinfo *info) {
  if (seen[0] == '\0')
    return jk_fail(info, JWTKIT_ERR_NOT_FOUND, "token", "no initialised token in %s (softhsm2-util --init-token ...)",
                   modules);
  return jk_fail(info, JWTKIT_ERR_NOT_FOUND, "token", "no token matches%s%s; tokens seen: %s",
                 u->token ? " token=" : " the URI", u->token ? u->token : "", seen);
}

/* Find the token the URI names: in module-path=, else in the modules of
 * p11-kit's configuration (module-name= picks one).  On success t->fl is
 * a loaded, initialised module (release with module_release). */
static jwtkit_err token_open(const jk_p11_uri *u, p11_token *t, jwtkit_errinfo *info) {
  memset(t, 0, sizeof *t);
  char seen[120] = "";
  jwtkit_err rc;
  if (u->module_path != NULL) {
    if ((t->file = jk_strdup(u->module_path)) == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    if ((rc = module_load_path(u->module_path, &t->fl, info)) != JWTKIT_OK) {
      token_close(t);
      return rc;
    }
    int r = token_search(t->fl, u, t, seen, sizeof seen, info);
    if (r == 1) return JWTKIT_OK;
    token_close(t);
    if (r < 0) return info ? info->code : JWTKIT_ERR_IO;
    if (r == 2)
      return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "token",
                     "several tokens match (%s); add token= or serial= to the URI", seen);
    return token_not_found(u, seen, u->module_path, info);
  }
  CK_FUNCTION_LIST **mods = p11_kit_modules_load_and_initialize(0);
  if (mods == NULL || mods[0] == NULL) {
    if (mods != NULL) p11_kit_modules_finalize_and_release(mods);
    return jk_fail(info, JWTKIT_ERR_NOT_FOUND, "module-path",
                   "no PKCS#11 module: add module-path=/path/to/module.so to the URI (SoftHSM: "
                   "/usr/lib/softhsm/libsofthsm2.so) or register the module with p11-kit");
  }
  char *file = NULL, names[100] = "";
  int matches = 0, named = 0;
  rc = JWTKIT_OK;
  for (size_t i = 0; mods[i] != NULL && rc == JWTKIT_OK; i++) {
    char *name = p11_kit_module_get_name(mods[i]);
    if (name != NULL && strlen(names) + strlen(name) + 3 < sizeof names) {
      if (names[0]) strcat(names, ", ");
      strcat(names, name);
    }
    int skip = u->module_name != NULL && (name == NULL || strcmp(name, u->module_name) != 0);
    free(name);
    if (skip) continue;
    named++;
    p11_token cand;
    memset(&cand, 0, sizeof cand);
    jwtkit_errinfo ignore;
    int r = token_search(mods[i], u, &cand, seen, sizeof seen, &ignore);
    if (r > 0) {
      matches += r;
      if (file == NULL) {
        *t = cand;
        file = p11_kit_module_get_filename(mods[i]);
        if (file == NULL) rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
      }
    }
  }
  p11_kit_modules_finalize_and_release(mods);
  if (rc == JWTKIT_OK && u->module_name != NULL && named == 0)
    rc = jk_fail(info, JWTKIT_ERR_NOT_FOUND, "module-name",
                 "p11-kit has no module named %s (modules: %s); or give module-path=", u->module_name, names);
  else if (rc == JWTKIT_OK && matches == 0)
    rc = token_not_found(u, seen, "the modules p11-kit is configured with (or give module-path=)", info);
  else if (rc == JWTKIT_OK && matches > 1)
    rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, "token",
                 "several tokens match (%s); add token=, serial= or module-path= to the URI", seen);
  if (rc == JWTKIT_OK) {
    /* load the module on its own (the list above is gone) and find the slot again */
    CK_SLOT_ID want = t->slot;
    if ((t->file = jk_strdup(file)) == NULL)
      rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    else
      rc = module_load_path(file, &t->fl, info);
    if (rc == JWTKIT_OK) {
      p11_token again;
      memset(&again, 0, sizeof again);
      jk_p11_uri one = *u;
      one.has_slot_id = 1;
      one.slot_id = want;
      int r = token_search(t->fl, &one, &again, NULL, 0, info);
      if (r != 1) {
        token_close(t);
        rc = r < 0 ? (info ? info->code : JWTKIT_ERR_IO)
                   : jk_fail(info, JWTKIT_ERR_NOT_FOUND, "token", "the token went away while loading %s", file);
      }
    }
  }
  if (rc != JWTKIT_OK) token_close(t);
  free(file);
  return rc;
}

/* A second instance of t's module on the same slot (kt owns it). */
static jwtkit_err token_again(const p11_token *t, p11_token *kt, jwtkit_errinfo *info) {
  *kt = *t;
  kt->fl = NULL;
  if ((kt->file = jk_strdup(t->file)) == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  jwtkit_err rc = module_load_path(t->file, &kt->fl, info);
  if (rc != JWTKIT_OK) token_close(kt);
  return rc;
}

/* ----------------------------------------------------------------- PIN */

/* The PIN for a login: pin-source= (first line of the file, secret-file
 * rule) or $JWTKIT_PKCS11_PIN.  *pin NULL when neither is given. */
static jwtkit_err pin_read(const jk_p11_uri *u, char **pin, size_t *pin_len, jwtkit_errinfo *info) {
  *pin = NULL;
  *pin_len = 0;
  const char *src;
  size_t n;
  char *data = NULL;
  size_t dlen = 0;
  if (u->pin_source != NULL) {
    jwtkit_err rc = jk_read_secret_file(u->pin_source, 4096, &data, &dlen, info);
    if (rc != JWTKIT_OK) {
      if (info != NULL) {
        char m[sizeof info->msg];
        memcpy(m, info->msg, sizeof m);
        snprintf(info->msg, sizeof info->msg, "pin-source: %.186s", m);
        snprintf(info->field, sizeof info->field, "pin-source");
      }
      return rc;
    }
    src = data;
    const char *nl = memchr(data, '\n', dlen);
    n = nl ? (size_t)(nl - data) : dlen;
    if (n > 0 && src[n - 1] == '\r') n--;
    if (n == 0) {
      jk_free_secret(data, dlen + 1);
      return jk_fail(info, JWTKIT_ERR_PASSPHRASE, "pin-source", "pin-source %s: the first line (the PIN) is empty",
                     u->pin_source);
    }
  } else if ((src = getenv(P11_PIN_ENV)) != NULL && src[0] != '\0') {
    n = strlen(src);
  } else {
    return JWTKIT_OK;
  }
  jwtkit_err rc = JWTKIT_OK;
  if (n > P11_MAX_PIN)
    rc = jk_fail(info, JWTKIT_ERR_TOO_LARGE, "pin-source", "the PIN is longer than %u bytes", P11_MAX_PIN);
  else if ((*pin = jk_malloc(n + 1)) == NULL)
    rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  else {
    memcpy(*pin, src, n);
    (*pin)[n] = '\0';
    *pin_len = n;
  }
  if (data != NULL) jk_free_secret(data, dlen + 1);
  return rc;
}

/* Log the session's user in, once.  Sets *refused for a PIN the token
 * refused (never to be tried again). */
static jwtkit_err login(const p11_token *t, CK_SESSION_HANDLE h, const char *pin, size_t pin_len,
                        const jwtkit_key *key, atomic_ulong *count, int *refused, jwtkit_errinfo *info) {
  char b[32];
  CK_TOKEN_INFO ti;
  CK_FLAGS flags = t->fl->C_GetTokenInfo(t->slot, &ti) == CKR_OK ? ti.flags : t->flags;
  if (flags & CKF_USER_PIN_LOCKED) {
    *refused = 1;
    return jk_fail(info, JWTKIT_ERR_PASSPHRASE, "pin",
                   "the user PIN of %s is locked: the security officer must unblock it (pkcs11-tool --init-pin "
                   "--login --login-type so); not tried",
                   t->where);
  }
  int protected_path = (flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
  if (pin == NULL && !protected_path)
    return jk_fail(info, JWTKIT_ERR_PASSPHRASE, "pin",
                   "%s needs the user PIN: add pin-source=FILE to the URI (first line, mode 0600) or set " P11_PIN_ENV,
                   t->where);
  CK_RV rv = hook(JK_P11_EV_LOGIN, key);
  if (count != NULL) atomic_fetch_add(count, 1);
  if (rv == CKR_OK)
    rv = t->fl->C_Login(h, CKU_USER, pin ? (CK_UTF8CHAR_PTR)pin : NULL_PTR, pin ? (CK_ULONG)pin_len : 0);
  if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) return JWTKIT_OK;
  switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE: {
      *refused = 1;
      CK_FLAGS after = t->fl->C_GetTokenInfo(t->slot, &ti) == CKR_OK ? ti.flags : 0;
      return jk_fail(info, JWTKIT_ERR_PASSPHRASE, "pin",
                     "%s refused the PIN (%s); not retried%s: check pin-source= or " P11_PIN_ENV, t->where,
                     rv_text(rv, b),
                     (after & CKF_USER_PIN_LOCKED)       ? ", the PIN is now locked"
                     : (after & CKF_USER_PIN_FINAL_TRY) ? ", one more wrong PIN locks it"
                                                         : "");
    }
    case CKR_PIN_LOCKED:
      *refused = 1;
      return jk_fail(info, JWTKIT_ERR_PASSPHRASE, "pin",
                     "the user PIN of %s is locked (CKR_PIN_LOCKED): the security officer must unblock it "
                     "(pkcs11-tool --init-pin --login --login-type so)",
                     t->where);
    case CKR_PIN_EXPIRED:
      *refused = 1;
      return jk_fail(info, JWTKIT_ERR_PASSPHRASE, "pin", "the user PIN of %s has expired: set a new one (pkcs11-tool --change-pin)",
                     t->where);
    case CKR_USER_PIN_NOT_INITIALIZED:
      *refused = 1;
      return jk_fail(info, JWTKIT_ERR_STATE, "pin", "%s has no user PIN yet: initialise it (softhsm2-util --init-token, pkcs11-tool --init-pin)",
                     t->where);
    default:
      return jk_fail(info, JWTKIT_ERR_IO, "pin", "login to %s failed: %s", t->where, rv_text(rv, b));
  }
}

/* Log in if the session is not logged in yet (a new session of a token
 * that requires a login; a token's login holds for all its sessions). */
static jwtkit_err login_if_needed(const p11_token *t, CK_SESSION_HANDLE h, const char *pin, size_t pin_len,
                                  const jwtkit_key *key, atomic_ulong *count, int *refused, jwtkit_errinfo *info) {
  if (!(t->flags & CKF_LOGIN_REQUIRED)) return JWTKIT_OK;
  CK_SESSION_INFO si;
  char b[32];
  CK_RV rv = t->fl->C_GetSessionInfo(h, &si);
  if (rv != CKR_OK) return jk_fail(info, JWTKIT_ERR_IO, NULL, "C_GetSessionInfo on %s: %s", t->where, rv_text(rv, b));
  if (si.state != CKS_RO_PUBLIC_SESSION && si.state != CKS_RW_PUBLIC_SESSION) return JWTKIT_OK;
  return login(t, h, pin, pin_len, key, count, refused, info);
}

/* ------------------------------------------------------------- objects */

/* Objects of class cls with the label and/or id: up to 2 handles (2 means
 * "several"). */
static jwtkit_err find_objects(const p11_token *t, CK_SESSION_HANDLE h, CK_OBJECT_CLASS cls, const char *label,
                               const unsigned char *id, size_t id_len, CK_OBJECT_HANDLE found[2], CK_ULONG *n,
                               jwtkit_errinfo *info) {
  CK_ATTRIBUTE tmpl[3];
  CK_ULONG k = 0;
  tmpl[k++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof cls};
  if (label != NULL) tmpl[k++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
  if (id != NULL) tmpl[k++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, id_len};
  char b[32];
  CK_RV rv = t->fl->C_FindObjectsInit(h, tmpl, k);
  *n = 0;
  if (rv == CKR_OK) {
    rv = t->fl->C_FindObjects(h, found, 2, n);
    CK_RV r2 = t->fl->C_FindObjectsFinal(h);
    if (rv == CKR_OK) rv = r2;
  }
  if (rv != CKR_OK) return jk_fail(info, JWTKIT_ERR_IO, NULL, "searching %s: %s", t->where, rv_text(rv, b));
  return JWTKIT_OK;
}

/* One attribute into buf (cap bytes).  0 with *len; 1 when the object
 * does not have it (or it is sensitive); -1 on other errors. */
static int get_attr(const p11_token *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, void *buf,
                    size_t cap, size_t *len, CK_RV *rv_out) {
  CK_ATTRIBUTE a = {type, buf, (CK_ULONG)cap};
  CK_RV rv = t->fl->C_GetAttributeValue(h, o, &a, 1);
  if (rv_out != NULL) *rv_out = rv;
  if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
      (rv == CKR_OK && a.ulValueLen == CK_UNAVAILABLE_INFORMATION))
    return 1;
  if (rv != CKR_OK) return -1;
  *len = a.ulValueLen;
  return 0;
}

static int get_bool(const p11_token *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, int dflt) {
  CK_BBOOL v = CK_FALSE;
  size_t n = 0;
  if (get_attr(t, h, o, type, &v, sizeof v, &n, NULL) != 0 || n != sizeof v) return dflt;
  return v == CK_TRUE;
}

/* ------------------------------------------------- public key material */

static const unsigned char k_oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char k_oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const unsigned char k_oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const unsigned char k_oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
static const unsigned char k_oid_ed448[] = {0x06, 0x03, 0x2b, 0x65, 0x71};
static const unsigned char k_name_ed25519[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9'};
static const unsigned char k_name_ed448[] = {0x13, 0x0a, 'e', 'd', 'w', 'a', 'r', 'd', 's', '4', '4', '8'};

typedef struct curve_info {
  const char *ossl;        /* OpenSSL group or key type */
  size_t point;            /* raw public point length */
  int edwards;
} curve_info;

static int same(const unsigned char *a, size_t an, const unsigned char *b, size_t bn) {
  return an == bn && memcmp(a, b, an) == 0;
}

static int curve_of(const unsigned char *p, size_t n, curve_info *c) {
  if (same(p, n, k_oid_p256, sizeof k_oid_p256)) *c = (curve_info){"prime256v1", 65, 0};
  else if (same(p, n, k_oid_p384, sizeof k_oid_p384)) *c = (curve_info){"secp384r1", 97, 0};
  else if (same(p, n, k_oid_p521, sizeof k_oid_p521)) *c = (curve_info){"secp521r1", 133, 0};
  else if (same(p, n, k_oid_ed25519, sizeof k_oid_ed25519) || same(p, n, k_name_ed25519, sizeof k_name_ed25519))
    *c = (curve_info){"ED25519", 32, 1};
  else if (same(p, n, k_oid_ed448, sizeof k_oid_ed448) || same(p, n, k_name_ed448, sizeof k_name_ed448))
    *c = (curve_info){"ED448", 57, 1};
  else
    return -1;
  return 0;
}

/* CKA_EC_POINT: a DER OCTET STRING around the point (PKCS#11), or the bare
 * point (some tokens).  Returns the point or NULL. */
static const unsigned char *ec_point(const unsigned char *p, size_t n, size_t want) {
  if (n == want && (want != 65 && want != 97 && want != 133 ? 1 : p[0] == 0x04)) return p;
  if (n < 2 || p[0] != 0x04) return NULL;
  size_t hdr, len;
  if (p[1] < 0x80) {
    len = p[1];
    hdr = 2;
  } else if (p[1] == 0x81 && n >= 3) {
    len = p[2];
    hdr = 3;
  } else {
    return NULL;
  }
  if (hdr + len != n || len != want) return NULL;
  if (want == 65 || want == 97 || want == 133) return p[hdr] == 0x04 ? p + hdr : NULL;
  return p + hdr;
}

static EVP_PKEY *pkey_rsa(const unsigned char *n, size_t nl, const unsigned char *e, size_t el) {
  EVP_PKEY *pkey = NULL;
  BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *ctx = NULL;
  if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1 && (params = OSSL_PARAM_BLD_to_param(bld)) &&
      (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) && EVP_PKEY_fromdata_init(ctx) == 1 &&
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    pkey = NULL;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn);
  BN_free(be);
  ERR_clear_error();
  return pkey;
}

static EVP_PKEY *pkey_ec(const char *group, const unsigned char *pt, size_t ptl) {
  EVP_PKEY *pkey = NULL;
  OSSL_PARAM params[3];
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
  params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, ptl);
  params[2] = OSSL_PARAM_construct_end();
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    pkey = NULL;
  EVP_PKEY_CTX_free(ctx);
  ERR_clear_error();
  return pkey;
}

/* The EVP_PKEY of the public half: the attributes of `o` (a public key, or
 * a private key that carries its public members), else of `pub`. */
static jwtkit_err read_public(const p11_token *t, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_OBJECT_HANDLE pub,
                              const char *what, EVP_PKEY **out, jwtkit_errinfo *info) {
  *out = NULL;
  CK_KEY_TYPE kt = 0;
  size_t n = 0;
  if (get_attr(t, h, o, CKA_KEY_TYPE, &kt, sizeof kt, &n, NULL) != 0 || n != sizeof kt)
    return jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL, "%s has no CKA_KEY_TYPE", what);
  if (kt == CKK_RSA) {
    unsigned char mod[2048 + 8], exp[16];
    size_t ml = 0, el = 0;
    CK_OBJECT_HANDLE src = o;
    int r = get_attr(t, h, src, CKA_MODULUS, mod, sizeof mod, &ml, NULL);
    if (r == 1 && pub != CK_INVALID_HANDLE) r = get_attr(t, h, src = pub, CKA_MODULUS, mod, sizeof mod, &ml, NULL);
    if (r == 0) r = get_attr(t, h, src, CKA_PUBLIC_EXPONENT, exp, sizeof exp, &el, NULL);
    if (r != 0 || ml == 0 || el == 0)
      return jk_fail(info, JWTKIT_ERR_INVALID_KEY, "n", "cannot read the RSA public key of %s (CKA_MODULUS, CKA_PUBLIC_EXPONENT; at most 16384 bits)", what);
    if ((*out = pkey_rsa(mod, ml, exp, el)) == NULL)
      return jk_fail(info, JWTKIT_ERR_INVALID_KEY, "n", "the RSA public key of %s is not valid", what);
    return JWTKIT_OK;
  }
  if (kt != CKK_EC && kt != CKK_EC_EDWARDS)
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "kty",
                   "%s is not an RSA, EC or Edwards key (CKK 0x%lx): no JOSE signature algorithm", what,
                   (unsigned long)kt);
  unsigned char params[64], point[160];
  size_t pl = 0, ptl = 0;
  int r = get_attr(t, h, o, CKA_EC_PARAMS, params, sizeof params, &pl, NULL);
  if (r == 1 && pub != CK_INVALID_HANDLE) r = get_attr(t, h, pub, CKA_EC_PARAMS, params, sizeof params, &pl, NULL);
  curve_info c;
  if (r != 0 || curve_of(params, pl, &c) != 0)
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "crv",
                   "the curve of %s (CKA_EC_PARAMS) is not P-256, P-384, P-521, Ed25519 or Ed448", what);
  r = get_attr(t, h, o, CKA_EC_POINT, point, sizeof point, &ptl, NULL);
  if (r == 1 && pub != CK_INVALID_HANDLE) r = get_attr(t, h, pub, CKA_EC_POINT, point, sizeof point, &ptl, NULL);
  const unsigned char *pt = r == 0 ? ec_point(point, ptl, c.point) : NULL;
  if (pt == NULL && r == 1 && pub == CK_INVALID_HANDLE)
    return jk_fail(info, JWTKIT_ERR_NOT_FOUND, "x",
                   "%s has no public key object with its CKA_ID (or label), and only that holds the public point", what);
  if (pt == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_KEY, "x", "cannot read the public point of %s (CKA_EC_POINT)", what);
  if (c.edwards)
    *out = EVP_PKEY_new_raw_public_key(c.point == 32 ? EVP_PKEY_ED25519 : EVP_PKEY_ED448, NULL, pt, c.point);
  else
    *out = pkey_ec(c.ossl, pt, c.point);
  ERR_clear_error();
  if (*out == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_KEY, "x", "the public key of %s is not valid", what);
  return JWTKIT_OK;
}

/* ---------------------------------------------------------- mechanisms */

typedef struct p11_mech {
  CK_MECHANISM_TYPE type;
  const char *name;
  int prehash; /* ECDSA: the token signs our digest */
} p11_mech;

static p11_mech mech_for(const jk_alg_info *ai) {
  switch (ai->id) {
    case JWTKIT_ALG_RS256: return (p11_mech){CKM_SHA256_RSA_PKCS, "CKM_SHA256_RSA_PKCS", 0};
    case JWTKIT_ALG_RS384: return (p11_mech){CKM_SHA384_RSA_PKCS, "CKM_SHA384_RSA_PKCS", 0};
    case JWTKIT_ALG_RS512: return (p11_mech){CKM_SHA512_RSA_PKCS, "CKM_SHA512_RSA_PKCS", 0};
    case JWTKIT_ALG_PS256: return (p11_mech){CKM_SHA256_RSA_PKCS_PSS, "CKM_SHA256_RSA_PKCS_PSS", 0};
    case JWTKIT_ALG_PS384: return (p11_mech){CKM_SHA384_RSA_PKCS_PSS, "CKM_SHA384_RSA_PKCS_PSS", 0};
    case JWTKIT_ALG_PS512: return (p11_mech){CKM_SHA512_RSA_PKCS_PSS, "CKM_SHA512_RSA_PKCS_PSS", 0};
    case JWTKIT_ALG_ES256:
    case JWTKIT_ALG_ES384:
    case JWTKIT_ALG_ES512: return (p11_mech){CKM_ECDSA, "CKM_ECDSA", 1};
    case JWTKIT_ALG_EDDSA: return (p11_mech){CKM_EDDSA, "CKM_EDDSA", 0};
    default: return (p11_mech){0, NULL, 0};
  }
}

#define P11_MAX_MECHS 512u

static jwtkit_err mech_check(const p11_token *t, CK_MECHANISM_TYPE m, const char *name, CK_FLAGS need,
                             const char *why, jwtkit_errinfo *info) {
  CK_MECHANISM_INFO mi;
  char b[32];
  /* the list first: some tokens answer C_GetMechanismInfo for mechanisms
   * they do not offer (SoftHSM with slots.mechanisms) */
  CK_MECHANISM_TYPE list[P11_MAX_MECHS];
  CK_ULONG n = P11_MAX_MECHS;
  CK_RV rv = t->fl->C_GetMechanismList(t->slot, list, &n);
  if (rv == CKR_OK) {
    int listed = 0;
    for (CK_ULONG i = 0; i < n && !listed; i++) listed = list[i] == m;
    if (!listed)
      return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "alg", "%s does not offer %s (needed %s)", t->where, name, why);
  } else if (rv != CKR_BUFFER_TOO_SMALL) { /* more than we list: C_GetMechanismInfo decides */
    return jk_fail(info, JWTKIT_ERR_IO, "alg", "C_GetMechanismList on %s: %s", t->where, rv_text(rv, b));
  }
  rv = t->fl->C_GetMechanismInfo(t->slot, m, &mi);
  if (rv == CKR_MECHANISM_INVALID || (rv == CKR_OK && (mi.flags & need) != need))
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "alg", "%s does not offer %s (needed %s)", t->where, name, why);
  if (rv != CKR_OK) return jk_fail(info, JWTKIT_ERR_IO, "alg", "C_GetMechanismInfo(%s) on %s: %s", name, t->where, rv_text(rv, b));
  return JWTKIT_OK;
}

static pthread_once_t g_md_once = PTHREAD_ONCE_INIT;
static EVP_MD *g_md[3];
static void md_fetch(void) {
  g_md[0] = EVP_MD_fetch(NULL, "SHA256", NULL);
  g_md[1] = EVP_MD_fetch(NULL, "SHA384", NULL);
  g_md[2] = EVP_MD_fetch(NULL, "SHA512", NULL);
}

/* ------------------------------------------------------------ the key */

typedef struct p11_sess {
  CK_SESSION_HANDLE h;
  CK_OBJECT_HANDLE obj;
  unsigned long gen;
} p11_sess;

struct jk_p11key {
  p11_token tok;           /* module (owned), slot, label; slot changes only under mu */
  jk_p11_uri uri;          /* to find the token and the object again */
  CK_MECHANISM mech;
  CK_RSA_PKCS_PSS_PARAMS pss;
  int prehash;
  const jk_alg_info *ai;
  size_t sig_len;
  char *pin;               /* wiped on free */
  size_t pin_len;
  pthread_mutex_t mu;      /* the pool */
  pthread_cond_t cv;
  pthread_mutex_t login_mu; /* one login (and one token lookup) at a time */
  unsigned max, cap, open, nidle, wait_ms;
  p11_sess *idle;          /* cap entries */
  unsigned long gen;       /* bumped when sessions were lost: older idle ones are closed */
  int rescan;              /* the token went away: look it up again before opening */
  int refused;             /* the PIN was refused: fail fast with refused_info */
  jwtkit_errinfo refused_info;
  atomic_ulong opens, logins, waits, retries;
};

static void sess_close(struct jk_p11key *p, CK_SESSION_HANDLE h) { (void)p->tok.fl->C_CloseSession(h); }

/* Open a session on the key's token, log in if needed, find the key. */
static jwtkit_err sess_open(struct jk_p11key *p, const jwtkit_key *key, p11_sess *s, CK_RV *rv_out,
                            jwtkit_errinfo *info) {
  char b[32];
  *rv_out = CKR_OK;
  pthread_mutex_lock(&p->login_mu);
  pthread_mutex_lock(&p->mu);
  int rescan = p->rescan;
  unsigned long gen = p->gen;
  pthread_mutex_unlock(&p->mu);
  jwtkit_err rc = JWTKIT_OK;
  p11_token t = p->tok;
  if (rescan) {
    p11_token fresh;
    memset(&fresh, 0, sizeof fresh);
    int r = token_search(p->tok.fl, &p->uri, &fresh, NULL, 0, info);
    if (r != 1) {
      pthread_mutex_unlock(&p->login_mu);
      if (r < 0) return info ? info->code : JWTKIT_ERR_IO;
      return jk_fail(info, JWTKIT_ERR_IO, "token", "%s is not present (removed?); insert it, signing resumes then",
                     p->tok.where);
    }
    pthread_mutex_lock(&p->mu);
    p->tok.slot = fresh.slot;
    p->tok.flags = fresh.flags;
    p->rescan = 0;
    t = p->tok;
    pthread_mutex_unlock(&p->mu);
  }
  CK_RV rv = hook(JK_P11_EV_OPEN, key);
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  if (rv == CKR_OK) rv = t.fl->C_OpenSession(t.slot, CKF_SERIAL_SESSION, NULL, NULL, &h);
  *rv_out = rv;
  if (rv != CKR_OK) {
    if (rv_gone(rv)) {
      pthread_mutex_lock(&p->mu);
      p->rescan = 1;
      pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&p->login_mu);
    if (rv == CKR_SESSION_COUNT)
      return jk_fail(info, JWTKIT_ERR_IO, "session", "%s opens no more sessions (CKR_SESSION_COUNT): its session limit is reached",
                     t.where);
    return jk_fail(info, JWTKIT_ERR_IO, "session", "cannot open a session on %s: %s", t.where, rv_text(rv, b));
  }
  int refused = 0;
  jwtkit_errinfo why = {0};
  rc = login_if_needed(&t, h, p->pin, p->pin_len, key, &p->logins, &refused, &why);
  if (rc != JWTKIT_OK && info != NULL) *info = why;
  if (refused) { /* every later signature fails with this, without asking the token */
    pthread_mutex_lock(&p->mu);
    p->refused = 1;
    p->refused_info = why;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
  pthread_mutex_unlock(&p->login_mu);
  if (rc == JWTKIT_OK) {
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    rc = find_objects(&t, h, CKO_PRIVATE_KEY, p->uri.object, p->uri.id, p->uri.id_len, found, &n, info);
    if (rc == JWTKIT_OK && n == 0)
      rc = jk_fail(info, JWTKIT_ERR_NOT_FOUND, "object",
                   "%s has no private key object=%s%s (list them: pkcs11-tool --list-objects --login)", t.where,
                   p->uri.object ? p->uri.object : "(any)", p->uri.id ? " with that id" : "");
    else if (rc == JWTKIT_OK && n > 1)
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object", "several private keys in %s match the URI; add id=",
                   t.where);
    if (rc == JWTKIT_OK) {
      s->h = h;
      s->obj = found[0];
      s->gen = gen;
      atomic_fetch_add(&p->opens, 1);
      return JWTKIT_OK;
    }
  }
  sess_close(p, h);
  return rc;
}

static void add_ms(struct timespec *ts, unsigned ms) {
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* Take a session: an idle one, a new one while fewer than max are open,
 * else wait for one (at most wait_ms). */
static jwtkit_err sess_get(struct jk_p11key *p, const jwtkit_key *key, p11_sess *s, jwtkit_errinfo *info) {
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  add_ms(&deadline, p->wait_ms);
  int waited = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    if (p->refused) {
      jwtkit_errinfo why = p->refused_info;
      pthread_mutex_unlock(&p->mu);
      return jk_fail(info, why.code, why.field, "%s", why.msg);
    }
    while (p->nidle > 0) {
      p11_sess c = p->idle[--p->nidle];
      if (c.gen == p->gen) {
        pthread_mutex_unlock(&p->mu);
        *s = c;
        return JWTKIT_OK;
      }
      p->open--; /* lost with its generation */
      sess_close(p, c.h);
    }
    if (p->open < p->max) {
      p->open++;
      pthread_mutex_unlock(&p->mu);
      CK_RV rv;
      jwtkit_err rc = sess_open(p, key, s, &rv, info);
      if (rc == JWTKIT_OK) return rc;
      pthread_mutex_lock(&p->mu);
      p->open--;
      pthread_cond_broadcast(&p->cv);
      if (rv == CKR_SESSION_COUNT && p->open > 0) {
        /* the token's own limit: wait for one of ours */
        p->max = p->open;
        continue;
      }
      pthread_mutex_unlock(&p->mu);
      return rc;
    }
    if (!waited) {
      waited = 1;
      atomic_fetch_add(&p->waits, 1);
      pthread_mutex_unlock(&p->mu);
      (void)hook(JK_P11_EV_WAIT, key);
      pthread_mutex_lock(&p->mu);
      continue;
    }
    int w = pthread_cond_timedwait(&p->cv, &p->mu, &deadline);
    if (w == ETIMEDOUT && p->nidle == 0 && !p->refused && p->open >= p->max) {
      unsigned max = p->max;
      pthread_mutex_unlock(&p->mu);
      return jk_fail(info, JWTKIT_ERR_IO, "session",
                     "all %u sessions of the key in %s stayed busy for %u ms (raise max_sessions or wait_ms)", max,
                     p->tok.where, p->wait_ms);
    }
  }
}

/* Give a session back: kept when it still works, else closed. */
static void sess_put(struct jk_p11key *p, const p11_sess *s, CK_RV rv) {
  pthread_mutex_lock(&p->mu);
  int keep = rv == CKR_OK && s->gen == p->gen && p->nidle < p->cap && !p->refused;
  if (keep) {
    p->idle[p->nidle++] = *s;
  } else {
    p->open--;
    if (rv_lost(rv)) {
      p->gen++; /* the other idle sessions are as lost as this one */
      if (rv_gone(rv)) p->rescan = 1;
    }
  }
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  if (!keep) sess_close(p, s->h);
}

static CK_RV sign_once(struct jk_p11key *p, const jwtkit_key *key, const p11_sess *s, const unsigned char *in,
                       size_t inl, unsigned char *sig, size_t cap, size_t *sig_len) {
  CK_RV rv = hook(JK_P11_EV_SIGN, key);
  if (rv != CKR_OK) return rv;
  CK_MECHANISM m = p->mech;
  rv = p->tok.fl->C_SignInit(s->h, &m, s->obj);
  if (rv != CKR_OK) return rv;
  CK_ULONG n = (CK_ULONG)cap;
  rv = p->tok.fl->C_Sign(s->h, (CK_BYTE_PTR)in, (CK_ULONG)inl, sig, &n);
  if (rv == CKR_OK) *sig_len = n;
  return rv;
}

jwtkit_err jk_p11_sign(const jwtkit_key *key, const unsigned char *data, size_t len, unsigned char *sig, size_t cap,
                       size_t *sig_len, jwtkit_errinfo *info) {
  struct jk_p11key *p = key->p11;
  unsigned char dg[64];
  const unsigned char *in = data;
  size_t inl = len;
  if (p->prehash) {
    pthread_once(&g_md_once, md_fetch);
    const EVP_MD *md = p->ai->hash_len == 32 ? g_md[0] : p->ai->hash_len == 48 ? g_md[1] : g_md[2];
    unsigned dl = 0;
    if (md == NULL || EVP_Digest(data, len, dg, &dl, md, NULL) != 1) {
      ERR_clear_error();
      return jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, "digest failed");
    }
    in = dg;
    inl = dl;
  }
  char b[32];
  for (int attempt = 0;; attempt++) {
    p11_sess s;
    jwtkit_err rc = sess_get(p, key, &s, info);
    if (rc != JWTKIT_OK) return rc;
    size_t n = 0;
    CK_RV rv = sign_once(p, key, &s, in, inl, sig, cap, &n);
    sess_put(p, &s, rv);
    if (rv == CKR_OK) {
      if (n != p->sig_len)
        return jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, "%s returned a %zu-byte %s signature; %zu expected", p->tok.where,
                       n, p->ai->name, p->sig_len);
      *sig_len = n;
      return JWTKIT_OK;
    }
    if (rv_lost(rv) && attempt == 0) {
      atomic_fetch_add(&p->retries, 1);
      continue;
    }
    if (rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_KEY_TYPE_INCONSISTENT ||
        rv == CKR_KEY_FUNCTION_NOT_PERMITTED)
      return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "alg", "%s refused to sign %s with this key: %s", p->tok.where,
                     p->ai->name, rv_text(rv, b));
    return jk_fail(info, JWTKIT_ERR_IO, "sign", "%s failed to sign: %s%s", p->tok.where, rv_text(rv, b),
                   attempt ? " (after re-opening the session)" : "");
  }
}

void jk_p11_key_free(struct jk_p11key *p) {
  if (p == NULL) return;
  if (p->tok.fl != NULL)
    for (unsigned i = 0; i < p->nidle; i++) sess_close(p, p->idle[i].h);
  token_close(&p->tok);
  pthread_mutex_destroy(&p->mu);
  pthread_mutex_destroy(&p->login_mu);
  pthread_cond_destroy(&p->cv);
  jk_free(p->idle);
  jk_free_secret(p->pin, p->pin_len + 1);
  jk_p11_uri_free(&p->uri);
  jk_wipe(p, sizeof *p);
  jk_free(p);
}

/* A new key state owning tok.fl (also on failure: *out NULL, module released). */
static jwtkit_err p11key_new(p11_token *tok, jk_p11_uri *uri, const jwtkit_pkcs11_opts *opts, struct jk_p11key **out,
                             jwtkit_errinfo *info) {
  *out = NULL;
  unsigned max = opts && opts->max_sessions ? opts->max_sessions : P11_DEFAULT_SESSIONS;
  if (max > P11_MAX_SESSIONS) {
    token_close(tok);
    jk_p11_uri_free(uri);
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "max_sessions", "max_sessions %u is over %u", max, P11_MAX_SESSIONS);
  }
  struct jk_p11key *p = jk_calloc(1, sizeof *p);
  if (p == NULL || (p->idle = jk_calloc(max, sizeof *p->idle)) == NULL) {
    jk_free(p);
    token_close(tok);
    jk_p11_uri_free(uri);
    return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&p->mu, NULL);
  pthread_mutex_init(&p->login_mu, NULL);
  p->tok = *tok;
  tok->fl = NULL;
  tok->file = NULL;
  p->uri = *uri;
  memset(uri, 0, sizeof *uri);
  p->max = p->cap = max;
  p->wait_ms = opts && opts->wait_ms ? opts->wait_ms : P11_DEFAULT_WAIT_MS;
  *out = p;
  return JWTKIT_OK;
}

/* ---------------------------------------------------------- key loading */

/* Build the jwtkit_key of the private key the (owned) URI names, on the
 * token tok (its module owned too): read the public half, check the key
 * and the mechanism, sign once.  `first` is a logged-in session to use for
 * the lookups when the caller has one (CK_INVALID_HANDLE: open one).
 * Everything is released on failure. */
static jwtkit_err load_key(p11_token *tok, jk_p11_uri *uri, char **pin, size_t pin_len, jwtkit_alg alg,
                           const jwtkit_pkcs11_opts *opts, jwtkit_key **out, jwtkit_errinfo *info) {
  *out = NULL;
  char what[200];
  struct jk_p11key *p = NULL;
  jwtkit_err rc = p11key_new(tok, uri, opts, &p, info);
  if (rc != JWTKIT_OK) {
    jk_free_secret(*pin, pin_len + 1);
    *pin = NULL;
    return rc;
  }
  p->pin = *pin;
  p->pin_len = pin_len;
  *pin = NULL;
  snprintf(what, sizeof what, "the key%s%s in %s", p->uri.object ? " " : "", p->uri.object ? p->uri.object : "",
           p->tok.where);

  /* a first session: logs in, finds the object */
  p11_sess s;
  p->open = 1;
  CK_RV orv;
  if ((rc = sess_open(p, NULL, &s, &orv, info)) != JWTKIT_OK) {
    p->open = 0;
    jk_p11_key_free(p);
    return rc;
  }
  CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
  EVP_PKEY *pkey = NULL;
  if (rc == JWTKIT_OK) {
    if (!get_bool(&p->tok, s.h, s.obj, CKA_SIGN, 0))
      rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, "key_ops", "%s may not sign (CKA_SIGN is false)", what);
    else if (get_bool(&p->tok, s.h, s.obj, CKA_ALWAYS_AUTHENTICATE, 0))
      rc = jk_fail(info, JWTKIT_ERR_UNSUPPORTED, NULL,
                   "%s wants the PIN for every signature (CKA_ALWAYS_AUTHENTICATE); jwtkit cannot use such keys", what);
  }
  if (rc == JWTKIT_OK) {
    /* its public key object: the same CKA_ID, else the same label */
    unsigned char id[256];
    size_t idl = 0;
    int have_id = get_attr(&p->tok, s.h, s.obj, CKA_ID, id, sizeof id, &idl, NULL) == 0 && idl > 0;
    char label[256];
    size_t ll = 0;
    int have_label = !have_id && get_attr(&p->tok, s.h, s.obj, CKA_LABEL, label, sizeof label - 1, &ll, NULL) == 0 && ll > 0;
    if (have_label) label[ll] = '\0';
    if (have_id || have_label) {
      CK_OBJECT_HANDLE pf[2];
      CK_ULONG pn = 0;
      if (find_objects(&p->tok, s.h, CKO_PUBLIC_KEY, have_label ? label : NULL, have_id ? id : NULL, idl, pf, &pn,
                       NULL) == JWTKIT_OK &&
          pn == 1)
        pub = pf[0];
    }
    rc = read_public(&p->tok, s.h, s.obj, pub, what, &pkey, info);
  }
  jwtkit_key *key = NULL;
  if (rc == JWTKIT_OK) {
    rc = jk_key_from_pkey(&key, alg, pkey, info); /* takes pkey: every check of a public key */
    pkey = NULL;
  }
  if (rc == JWTKIT_OK) {
    p->ai = key->ai;
    p->sig_len = key->sig_len;
    p11_mech m = mech_for(p->ai);
    p->prehash = m.prehash;
    p->mech = (CK_MECHANISM){m.type, NULL, 0};
    if (p->ai->pss) {
      CK_MECHANISM_TYPE h = p->ai->hash_len == 32 ? CKM_SHA256 : p->ai->hash_len == 48 ? CKM_SHA384 : CKM_SHA512;
      CK_RSA_PKCS_MGF_TYPE g = p->ai->hash_len == 32 ? CKG_MGF1_SHA256 : p->ai->hash_len == 48 ? CKG_MGF1_SHA384 : CKG_MGF1_SHA512;
      p->pss = (CK_RSA_PKCS_PSS_PARAMS){h, g, p->ai->hash_len};
      p->mech.pParameter = &p->pss;
      p->mech.ulParameterLen = sizeof p->pss;
    }
    char why[32];
    snprintf(why, sizeof why, "for %s", p->ai->name);
    rc = mech_check(&p->tok, m.type, m.name, CKF_SIGN, why, info);
  }
  /* the first session joins the pool */
  pthread_mutex_lock(&p->mu);
  p->idle[p->nidle++] = s;
  pthread_mutex_unlock(&p->mu);
  if (rc == JWTKIT_OK) {
    key->p11 = p;
    key->can_sign = 1;
    p = NULL;
    /* the token's key and the public key read are a pair */
    static const unsigned char msg[] = "jwtkit pkcs11 pairwise check";
    unsigned char sig[2048];
    size_t sl = 0;
    rc = jk_p11_sign(key, msg, sizeof msg - 1, sig, sizeof sig, &sl, info);
    if (rc == JWTKIT_OK && jk_sig_verify(key, msg, sizeof msg - 1, sig, sl) != 1)
      rc = jk_fail(info, JWTKIT_ERR_INVALID_KEY, NULL,
                   "%s does not match the public key read from the token (CKA_ID of the public object?)", what);
  }
  EVP_PKEY_free(pkey);
  jk_p11_key_free(p);
  if (rc != JWTKIT_OK) {
    jwtkit_key_free(key);
    return rc;
  }
  *out = key;
  return JWTKIT_OK;
}

static jwtkit_err uri_for_key(const char *text, jk_p11_uri *u, jwtkit_errinfo *info) {
  if (text == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "no PKCS#11 URI");
  jwtkit_err rc = jk_p11_uri_parse(u, text, strlen(text), info);
  if (rc != JWTKIT_OK) return rc;
  if (u->object == NULL && u->id == NULL) {
    jk_p11_uri_free(u);
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object",
                   "the PKCS#11 URI names no key: add object=LABEL and/or id=%%XX... (pkcs11:token=T;object=NAME)");
  }
  return JWTKIT_OK;
}

jwtkit_err jwtkit_key_from_pkcs11_opts(jwtkit_key **out, jwtkit_alg alg, const char *uri,
                                       const jwtkit_pkcs11_opts *opts, jwtkit_errinfo *info) {
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  if (opts != NULL && opts->max_sessions > P11_MAX_SESSIONS)
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "max_sessions", "max_sessions %u is over %u", opts->max_sessions,
                   P11_MAX_SESSIONS);
  jk_p11_uri u;
  jwtkit_err rc = uri_for_key(uri, &u, info);
  if (rc != JWTKIT_OK) return rc;
  if (u.type != JK_P11_TYPE_ANY && u.type != JK_P11_TYPE_PRIVATE) {
    jk_p11_uri_free(&u);
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "type",
                   "signing needs the private key: drop type= from the URI or write type=private");
  }
  if (alg != JWTKIT_ALG_UNSPEC && jwtkit_alg_kty(alg) == JWTKIT_KTY_OCT) {
    jk_p11_uri_free(&u);
    return jk_fail(info, JWTKIT_ERR_INVALID_KEY, "alg", "%s needs a secret; a token key is RS*, PS*, ES* or EdDSA",
                   jwtkit_alg_name(alg));
  }
  char *pin = NULL;
  size_t pin_len = 0;
  p11_token t;
  if ((rc = pin_read(&u, &pin, &pin_len, info)) != JWTKIT_OK) {
    jk_p11_uri_free(&u);
    return rc;
  }
  if ((rc = token_open(&u, &t, info)) != JWTKIT_OK) {
    jk_free_secret(pin, pin_len + 1);
    jk_p11_uri_free(&u);
    return rc;
  }
  return load_key(&t, &u, &pin, pin_len, alg, opts, out, info);
}

jwtkit_err jwtkit_key_from_pkcs11(jwtkit_key **out, jwtkit_alg alg, const char *uri, jwtkit_errinfo *info) {
  return jwtkit_key_from_pkcs11_opts(out, alg, uri, NULL, info);
}

/* -------------------------------------------------------- public only */

jwtkit_err jwtkit_pkcs11_public_key(jwtkit_key **out, jwtkit_alg alg, const char *uri, jwtkit_errinfo *info) {
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  jk_p11_uri u;
  jwtkit_err rc = uri_for_key(uri, &u, info);
  if (rc != JWTKIT_OK) return rc;
  if (u.type != JK_P11_TYPE_ANY && u.type != JK_P11_TYPE_PRIVATE && u.type != JK_P11_TYPE_PUBLIC) {
    jk_p11_uri_free(&u);
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "type", "type= must be public or private for a key");
  }
  p11_token t;
  if ((rc = token_open(&u, &t, info)) != JWTKIT_OK) {
    jk_p11_uri_free(&u);
    return rc;
  }
  char b[32], what[200];
  snprintf(what, sizeof what, "the key%s%s in %s", u.object ? " " : "", u.object ? u.object : "", t.where);
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  CK_RV rv = t.fl->C_OpenSession(t.slot, CKF_SERIAL_SESSION, NULL, NULL, &h);
  char *pin = NULL;
  size_t pin_len = 0;
  EVP_PKEY *pkey = NULL;
  if (rv != CKR_OK) rc = jk_fail(info, JWTKIT_ERR_IO, "session", "cannot open a session on %s: %s", t.where, rv_text(rv, b));
  CK_OBJECT_HANDLE f[2];
  CK_ULONG n = 0;
  int logged_in = 0;
  for (int pass = 0; rc == JWTKIT_OK && pass < 2; pass++) {
    /* a public key object visible now; then (private key) after a login */
    if (u.type != JK_P11_TYPE_PRIVATE &&
        (rc = find_objects(&t, h, CKO_PUBLIC_KEY, u.object, u.id, u.id_len, f, &n, info)) == JWTKIT_OK && n > 0) {
      rc = n == 1 ? read_public(&t, h, f[0], CK_INVALID_HANDLE, what, &pkey, info)
                  : jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object", "several public keys in %s match the URI; add id=", t.where);
      break;
    }
    /* private keys are visible once logged in, or at once on a token without logins */
    if (rc == JWTKIT_OK && u.type != JK_P11_TYPE_PUBLIC && (logged_in || !(t.flags & CKF_LOGIN_REQUIRED)) &&
        (rc = find_objects(&t, h, CKO_PRIVATE_KEY, u.object, u.id, u.id_len, f, &n, info)) == JWTKIT_OK && n > 0) {
      rc = n == 1 ? read_public(&t, h, f[0], CK_INVALID_HANDLE, what, &pkey, info)
                  : jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object", "several private keys in %s match the URI; add id=", t.where);
      break;
    }
    if (rc != JWTKIT_OK) break;
    if (pass == 0 && (t.flags & CKF_LOGIN_REQUIRED) && u.type != JK_P11_TYPE_PUBLIC) {
      int refused = 0;
      if ((rc = pin_read(&u, &pin, &pin_len, info)) != JWTKIT_OK) break;
      if (pin == NULL && !(t.flags & CKF_PROTECTED_AUTHENTICATION_PATH)) {
        rc = jk_fail(info, JWTKIT_ERR_NOT_FOUND, "object",
                     "%s has no public key object; its private key needs the user PIN (pin-source= or " P11_PIN_ENV ")",
                     what);
        break;
      }
      if ((rc = login_if_needed(&t, h, pin, pin_len, NULL, NULL, &refused, info)) != JWTKIT_OK) break;
      logged_in = 1;
      continue;
    }
    rc = jk_fail(info, JWTKIT_ERR_NOT_FOUND, "object", "%s has no key object=%s%s", t.where, u.object ? u.object : "(any)",
                 u.id ? " with that id" : "");
    break;
  }
  if (h != CK_INVALID_HANDLE) (void)t.fl->C_CloseSession(h);
  token_close(&t);
  jk_free_secret(pin, pin_len + 1);
  jk_p11_uri_free(&u);
  if (rc != JWTKIT_OK) {
    EVP_PKEY_free(pkey);
    return rc;
  }
  return jk_key_from_pkey(out, alg, pkey, info);
}

/* ----------------------------------------------------------- generation */

/* A session that may write, logged in. */
static jwtkit_err rw_session(const p11_token *t, const char *pin, size_t pin_len, CK_SESSION_HANDLE *h,
                             jwtkit_errinfo *info) {
  char b[32];
  if (t->flags & CKF_WRITE_PROTECTED)
    return jk_fail(info, JWTKIT_ERR_PERMISSION, "token", "%s is write-protected", t->where);
  CK_RV rv = t->fl->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, h);
  if (rv != CKR_OK) return jk_fail(info, JWTKIT_ERR_IO, "session", "cannot open a read-write session on %s: %s", t->where, rv_text(rv, b));
  int refused = 0;
  jwtkit_err rc = login_if_needed(t, *h, pin, pin_len, NULL, NULL, &refused, info);
  if (rc != JWTKIT_OK) {
    (void)t->fl->C_CloseSession(*h);
    *h = CK_INVALID_HANDLE;
  }
  return rc;
}

/* Any key object with this label (or this id). */
static int object_exists(const p11_token *t, CK_SESSION_HANDLE h, const char *label, const unsigned char *id,
                         size_t id_len) {
  static const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_SECRET_KEY, CKO_CERTIFICATE, CKO_DATA};
  for (size_t i = 0; i < sizeof classes / sizeof *classes; i++) {
    CK_OBJECT_HANDLE f[2];
    CK_ULONG n = 0;
    if (find_objects(t, h, classes[i], label, id, id_len, f, &n, NULL) != JWTKIT_OK || n > 0) return 1;
  }
  return 0;
}

jwtkit_err jwtkit_pkcs11_generate(jwtkit_key **out, jwtkit_alg alg, unsigned bits, const char *uri,
                                  jwtkit_errinfo *info) {
  if (out == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *out = NULL;
  const jk_alg_info *ai = jk_alg_get(alg);
  if (ai == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "alg", "unknown algorithm");
  if (ai->kty == JWTKIT_KTY_OCT)
    return jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "alg", "%s keys are secrets; jwtkit makes token keys for RS*, PS*, ES* and EdDSA", ai->name);
  if (ai->kty == JWTKIT_KTY_RSA) {
    if (bits == 0) bits = 2048;
    if (bits < 2048 || bits > 16384 || bits % 8 != 0)
      return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "bits", "RSA size must be a multiple of 8 in 2048..16384");
  } else if (ai->kty == JWTKIT_KTY_OKP && bits != 0 && bits != 255 && bits != 448) {
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "bits", "EdDSA: 255 (Ed25519) or 448 (Ed448)");
  }
  jk_p11_uri u;
  jwtkit_err rc = uri == NULL ? jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "no PKCS#11 URI")
                              : jk_p11_uri_parse(&u, uri, strlen(uri), info);
  if (rc != JWTKIT_OK) return rc;
  if (u.object == NULL || (u.type != JK_P11_TYPE_ANY && u.type != JK_P11_TYPE_PRIVATE)) {
    jk_p11_uri_free(&u);
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object",
                   "a new key needs its label: pkcs11:token=T;object=NAME (and no type= other than private)");
  }
  char *pin = NULL;
  size_t pin_len = 0;
  p11_token t;
  if ((rc = pin_read(&u, &pin, &pin_len, info)) != JWTKIT_OK) {
    jk_p11_uri_free(&u);
    return rc;
  }
  if ((rc = token_open(&u, &t, info)) != JWTKIT_OK) {
    jk_free_secret(pin, pin_len + 1);
    jk_p11_uri_free(&u);
    return rc;
  }
  p11_mech sm = mech_for(ai);
  CK_MECHANISM_TYPE gm = ai->kty == JWTKIT_KTY_RSA ? CKM_RSA_PKCS_KEY_PAIR_GEN
                         : ai->kty == JWTKIT_KTY_EC ? CKM_EC_KEY_PAIR_GEN
                                                    : CKM_EC_EDWARDS_KEY_PAIR_GEN;
  const char *gname = ai->kty == JWTKIT_KTY_RSA ? "CKM_RSA_PKCS_KEY_PAIR_GEN"
                      : ai->kty == JWTKIT_KTY_EC ? "CKM_EC_KEY_PAIR_GEN"
                                                 : "CKM_EC_EDWARDS_KEY_PAIR_GEN";
  char why[40];
  snprintf(why, sizeof why, "for %s keys", ai->name);
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
  EVP_PKEY *pkey = NULL;
  jwtkit_key *pubkey = NULL;
  if ((rc = mech_check(&t, gm, gname, CKF_GENERATE_KEY_PAIR, why, info)) == JWTKIT_OK &&
      (rc = mech_check(&t, sm.type, sm.name, CKF_SIGN, why, info)) == JWTKIT_OK)
    rc = rw_session(&t, pin, pin_len, &h, info);
  if (rc == JWTKIT_OK && object_exists(&t, h, u.object, NULL, 0))
    rc = jk_fail(info, JWTKIT_ERR_STATE, "object", "%s already holds an object labelled \"%s\": choose another object= (or destroy it)",
                 t.where, u.object);
  if (rc == JWTKIT_OK && u.id != NULL && object_exists(&t, h, NULL, u.id, u.id_len))
    rc = jk_fail(info, JWTKIT_ERR_STATE, "id", "%s already holds an object with that id=: choose another", t.where);
  if (rc == JWTKIT_OK) {
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG mbits = bits;
    static const CK_BYTE e65537[] = {0x01, 0x00, 0x01};
    const unsigned char *params = ai->id == JWTKIT_ALG_ES256   ? k_oid_p256
                                  : ai->id == JWTKIT_ALG_ES384 ? k_oid_p384
                                  : ai->id == JWTKIT_ALG_ES512 ? k_oid_p521
                                  : bits == 448                ? k_oid_ed448
                                                               : k_oid_ed25519;
    size_t params_len = ai->id == JWTKIT_ALG_ES256   ? sizeof k_oid_p256
                        : ai->id == JWTKIT_ALG_ES384 ? sizeof k_oid_p384
                        : ai->id == JWTKIT_ALG_ES512 ? sizeof k_oid_p521
                        : bits == 448                ? sizeof k_oid_ed448
                                                     : sizeof k_oid_ed25519;
    CK_ULONG ll = strlen(u.object);
    CK_ATTRIBUTE pt[10], kt[12];
    CK_ULONG pn = 0, kn = 0;
    pt[pn++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof yes};
    pt[pn++] = (CK_ATTRIBUTE){CKA_PRIVATE, &no, sizeof no};
    pt[pn++] = (CK_ATTRIBUTE){CKA_VERIFY, &yes, sizeof yes};
    pt[pn++] = (CK_ATTRIBUTE){CKA_ENCRYPT, &no, sizeof no};
    pt[pn++] = (CK_ATTRIBUTE){CKA_WRAP, &no, sizeof no};
    pt[pn++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)u.object, ll};
    if (u.id != NULL) pt[pn++] = (CK_ATTRIBUTE){CKA_ID, (void *)u.id, u.id_len};
    if (ai->kty == JWTKIT_KTY_RSA) {
      pt[pn++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &mbits, sizeof mbits};
      pt[pn++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, (void *)e65537, sizeof e65537};
    } else {
      pt[pn++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)params, params_len};
    }
    kt[kn++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof yes};
    kt[kn++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof yes};
    kt[kn++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &yes, sizeof yes};
    kt[kn++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &no, sizeof no};
    kt[kn++] = (CK_ATTRIBUTE){CKA_SIGN, &yes, sizeof yes};
    kt[kn++] = (CK_ATTRIBUTE){CKA_DECRYPT, &no, sizeof no};
    kt[kn++] = (CK_ATTRIBUTE){CKA_UNWRAP, &no, sizeof no};
    kt[kn++] = (CK_ATTRIBUTE){CKA_DERIVE, &no, sizeof no};
    kt[kn++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)u.object, ll};
    if (u.id != NULL) kt[kn++] = (CK_ATTRIBUTE){CKA_ID, (void *)u.id, u.id_len};
    CK_MECHANISM m = {gm, NULL, 0};
    char b[32];
    CK_RV rv = t.fl->C_GenerateKeyPair(h, &m, pt, pn, kt, kn, &pub, &priv);
    if (rv != CKR_OK)
      rc = jk_fail(info, rv == CKR_KEY_SIZE_RANGE ? JWTKIT_ERR_UNSUPPORTED : JWTKIT_ERR_IO, "alg",
                   "%s could not generate the %s key pair: %s", t.where, ai->name, rv_text(rv, b));
  }
  /* the private key must have come out as asked, whatever the token's defaults */
  if (rc == JWTKIT_OK && (!get_bool(&t, h, priv, CKA_SENSITIVE, 0) || get_bool(&t, h, priv, CKA_EXTRACTABLE, 1) ||
                          !get_bool(&t, h, priv, CKA_TOKEN, 0)))
    rc = jk_fail(info, JWTKIT_ERR_STATE, NULL, "%s made the key extractable or not sensitive; it was destroyed", t.where);
  if (rc == JWTKIT_OK && (rc = read_public(&t, h, pub, CK_INVALID_HANDLE, "the new key", &pkey, info)) == JWTKIT_OK) {
    rc = jk_key_from_pkey(&pubkey, alg, pkey, info);
    pkey = NULL;
  }
  char tp[44];
  if (rc == JWTKIT_OK && jwtkit_key_thumbprint(pubkey, tp) != JWTKIT_OK) rc = jk_fail(info, JWTKIT_ERR_CRYPTO, NULL, "thumbprint failed");
  /* without id=: the 32 bytes of the thumbprint identify the pair */
  unsigned char tpb[33];
  size_t tpl = 0;
  if (rc == JWTKIT_OK && u.id == NULL) {
    char b[32];
    CK_RV rv = CKR_FUNCTION_FAILED;
    if (jk_b64url_decode(tpb, &tpl, tp, strlen(tp)) == 0) {
      CK_ATTRIBUTE a = {CKA_ID, tpb, tpl};
      rv = t.fl->C_SetAttributeValue(h, priv, &a, 1);
      if (rv == CKR_OK) rv = t.fl->C_SetAttributeValue(h, pub, &a, 1);
    }
    if (rv != CKR_OK) rc = jk_fail(info, JWTKIT_ERR_IO, "id", "%s could not set the new key's CKA_ID: %s", t.where, rv_text(rv, b));
    else {
      u.id = tpb; /* into the canonical URI below */
      u.id_len = tpl;
    }
  }
  /* the signing key, through the same path as every token key */
  if (rc == JWTKIT_OK) {
    char text[JK_P11_URI_MAX + 1];
    size_t tl = jk_p11_uri_format(&u, 1, text, sizeof text);
    jk_p11_uri key_uri;
    if (tl >= sizeof text)
      rc = jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "the key's URI is too long");
    else if ((rc = jk_p11_uri_parse(&key_uri, text, tl, info)) == JWTKIT_OK) {
      /* a second instance of the module for the key; this session stays
       * logged in meanwhile, so the key needs no second login */
      p11_token kt;
      if ((rc = token_again(&t, &kt, info)) == JWTKIT_OK) {
        char *kpin = NULL;
        size_t kpin_len = 0;
        if (pin != NULL && (kpin = jk_strndup(pin, pin_len)) == NULL) {
          token_close(&kt);
          jk_p11_uri_free(&key_uri);
          rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
        } else {
          kpin_len = kpin ? pin_len : 0;
          rc = load_key(&kt, &key_uri, &kpin, kpin_len, alg, NULL, out, info);
        }
      } else {
        jk_p11_uri_free(&key_uri);
      }
    }
  }
  if (rc == JWTKIT_OK && (rc = jwtkit_key_set_kid(*out, tp, strlen(tp))) != JWTKIT_OK) {
    jwtkit_key_free(*out);
    *out = NULL;
    rc = jk_fail(info, rc, NULL, NULL);
  }
  if (rc != JWTKIT_OK && priv != CK_INVALID_HANDLE) {
    (void)t.fl->C_DestroyObject(h, priv);
    (void)t.fl->C_DestroyObject(h, pub);
  }
  jwtkit_key_free(pubkey);
  EVP_PKEY_free(pkey);
  if (h != CK_INVALID_HANDLE) (void)t.fl->C_CloseSession(h);
  token_close(&t);
  jk_free_secret(pin, pin_len + 1);
  u.id = NULL;
  jk_p11_uri_free(&u);
  return rc;
}

/* -------------------------------------------------------------- destroy */

jwtkit_err jwtkit_pkcs11_destroy(const char *uri, jwtkit_errinfo *info) {
  jk_p11_uri u;
  jwtkit_err rc = uri_for_key(uri, &u, info);
  if (rc != JWTKIT_OK) return rc;
  char *pin = NULL;
  size_t pin_len = 0;
  p11_token t;
  if ((rc = pin_read(&u, &pin, &pin_len, info)) != JWTKIT_OK) {
    jk_p11_uri_free(&u);
    return rc;
  }
  if ((rc = token_open(&u, &t, info)) != JWTKIT_OK) {
    jk_free_secret(pin, pin_len + 1);
    jk_p11_uri_free(&u);
    return rc;
  }
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE pf[2], kf[2];
  CK_ULONG pn = 0, kn = 0;
  unsigned char id[256];
  size_t idl = 0;
  if ((rc = rw_session(&t, pin, pin_len, &h, info)) == JWTKIT_OK &&
      (rc = find_objects(&t, h, CKO_PRIVATE_KEY, u.object, u.id, u.id_len, kf, &kn, info)) == JWTKIT_OK) {
    if (kn > 1) {
      rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object", "several private keys in %s match the URI; add id=", t.where);
    } else {
      /* the public partner: by the private key's CKA_ID when the URI has none */
      const unsigned char *pid = u.id;
      size_t pidl = u.id_len;
      if (kn == 1 && pid == NULL && get_attr(&t, h, kf[0], CKA_ID, id, sizeof id, &idl, NULL) == 0 && idl > 0) {
        pid = id;
        pidl = idl;
      }
      rc = find_objects(&t, h, CKO_PUBLIC_KEY, pid == u.id ? u.object : NULL, pid, pidl, pf, &pn, info);
      if (rc == JWTKIT_OK && kn == 0 && pn == 0)
        rc = jk_fail(info, JWTKIT_ERR_NOT_FOUND, "object", "%s has no key object=%s%s", t.where,
                     u.object ? u.object : "(any)", u.id ? " with that id" : "");
      if (rc == JWTKIT_OK && pn > 1)
        rc = jk_fail(info, JWTKIT_ERR_INVALID_ARG, "object", "several public keys in %s match; add id=", t.where);
    }
  }
  char b[32];
  CK_RV rv = CKR_OK;
  if (rc == JWTKIT_OK && kn == 1) rv = t.fl->C_DestroyObject(h, kf[0]);
  if (rc == JWTKIT_OK && rv == CKR_OK && pn == 1) rv = t.fl->C_DestroyObject(h, pf[0]);
  if (rc == JWTKIT_OK && rv != CKR_OK) rc = jk_fail(info, JWTKIT_ERR_IO, "object", "%s could not destroy the key: %s", t.where, rv_text(rv, b));
  if (h != CK_INVALID_HANDLE) (void)t.fl->C_CloseSession(h);
  token_close(&t);
  jk_free_secret(pin, pin_len + 1);
  jk_p11_uri_free(&u);
  return rc;
}

/* ---------------------------------------------------------- accessors */

int jwtkit_key_is_pkcs11(const jwtkit_key *key) { return key != NULL && key->p11 != NULL; }

jwtkit_err jwtkit_pkcs11_key_uri(const jwtkit_key *key, char **uri, size_t *len) {
  if (uri == NULL) return JWTKIT_ERR_INVALID_ARG;
  *uri = NULL;
  if (key == NULL || key->p11 == NULL) return JWTKIT_ERR_INVALID_ARG;
  const struct jk_p11key *p = key->p11;
  jk_p11_uri u = p->uri;
  u.token = p->tok.label;
  if (p->tok.serial[0]) u.serial = p->tok.serial;
  size_t n = jk_p11_uri_format(&u, 1, NULL, 0);
  char *s = jk_malloc(n + 1);
  if (s == NULL) return JWTKIT_ERR_NOMEM;
  jk_p11_uri_format(&u, 1, s, n + 1);
  *uri = s;
  if (len != NULL) *len = n;
  return JWTKIT_OK;
}

int jk_p11_get_stats(const jwtkit_key *key, jk_p11_stats *out) {
  if (key == NULL || key->p11 == NULL) return -1;
  struct jk_p11key *p = key->p11;
  out->opens = atomic_load(&p->opens);
  out->logins = atomic_load(&p->logins);
  out->waits = atomic_load(&p->waits);
  out->retries = atomic_load(&p->retries);
  pthread_mutex_lock(&p->mu);
  out->open_now = p->open;
  out->max_sessions = p->max;
  pthread_mutex_unlock(&p->mu);
  return 0;
}

int jk_p11_test_module(const jwtkit_key *key, void **function_list, unsigned long *slot) {
  if (key == NULL || key->p11 == NULL) return -1;
  struct jk_p11key *p = key->p11;
  pthread_mutex_lock(&p->mu);
  *function_list = p->tok.fl;
  *slot = p->tok.slot;
  pthread_mutex_unlock(&p->mu);
  return 0;
}

#endif /* JWTKIT_WITH_PKCS11 */
