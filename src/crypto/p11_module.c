/* PKCS#11 modules and tokens: the messages of return values, loading a
 * module (module-path=, or p11-kit's configuration), finding the token a
 * URI names, the PIN (p11_internal.h lists the parts). */
#include "p11_internal.h"

#ifdef JWTKIT_WITH_PKCS11

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
const char *jk_p11_rv_text(CK_RV rv, char buf[32]) {
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
int jk_p11_rv_lost(CK_RV rv) {
  return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED || rv == CKR_DEVICE_REMOVED ||
         rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_USER_NOT_LOGGED_IN ||
         /* a logout or a re-inserted token can invalidate the object's handle: find it again */
         rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID;
}

int jk_p11_rv_gone(CK_RV rv) {
  return rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_SLOT_ID_INVALID;
}

CK_RV jk_p11_hook(int ev, const jwtkit_key *key) {
  unsigned long (*h)(int, const jwtkit_key *) = jk_p11_test_hook;
  return h != NULL ? (CK_RV)h(ev, key) : CKR_OK;
}

/* ------------------------------------------------------------- modules */

static void module_release(CK_FUNCTION_LIST *fl) {
  if (fl == NULL) return;
  p11_kit_module_finalize(fl);
  p11_kit_module_release(fl);
}

void jk_p11_token_close(p11_token *t) {
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
                   jk_p11_rv_text(rv, b));
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
int jk_p11_token_search(CK_FUNCTION_LIST *fl, const jk_p11_uri *u, p11_token *t, char *seen, size_t seen_cap,
                        jwtkit_errinfo *info) {
  char b[32];
  CK_INFO mi;
  CK_RV rv = fl->C_GetInfo(&mi);
  if (rv != CKR_OK) {
    jk_fail(info, JWTKIT_ERR_IO, NULL, "C_GetInfo failed: %s", jk_p11_rv_text(rv, b));
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
    jk_fail(info, JWTKIT_ERR_IO, NULL, "C_GetSlotList failed: %s", jk_p11_rv_text(rv, b));
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
jwtkit_err jk_p11_token_open(const jk_p11_uri *u, p11_token *t, jwtkit_errinfo *info) {
  memset(t, 0, sizeof *t);
  char seen[120] = "";
  jwtkit_err rc;
  if (u->module_path != NULL) {
    if ((t->file = jk_strdup(u->module_path)) == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    if ((rc = module_load_path(u->module_path, &t->fl, info)) != JWTKIT_OK) {
      jk_p11_token_close(t);
      return rc;
    }
    int r = jk_p11_token_search(t->fl, u, t, seen, sizeof seen, info);
    if (r == 1) return JWTKIT_OK;
    jk_p11_token_close(t);
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
    int r = jk_p11_token_search(mods[i], u, &cand, seen, sizeof seen, &ignore);
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
      int r = jk_p11_token_search(t->fl, &one, &again, NULL, 0, info);
      if (r != 1) {
        jk_p11_token_close(t);
        rc = r < 0 ? (info ? info->code : JWTKIT_ERR_IO)
                   : jk_fail(info, JWTKIT_ERR_NOT_FOUND, "token", "the token went away while loading %s", file);
      }
    }
  }
  if (rc != JWTKIT_OK) jk_p11_token_close(t);
  free(file);
  return rc;
}

/* A second instance of t's module on the same slot (kt owns it). */
jwtkit_err jk_p11_token_again(const p11_token *t, p11_token *kt, jwtkit_errinfo *info) {
  *kt = *t;
  kt->fl = NULL;
  if ((kt->file = jk_strdup(t->file)) == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  jwtkit_err rc = module_load_path(t->file, &kt->fl, info);
  if (rc != JWTKIT_OK) jk_p11_token_close(kt);
  return rc;
}

/* ----------------------------------------------------------------- PIN */

/* The PIN for a login: pin-source= (first line of the file, secret-file
 * rule) or $JWTKIT_PKCS11_PIN.  *pin NULL when neither is given. */
jwtkit_err jk_p11_pin_read(const jk_p11_uri *u, char **pin, size_t *pin_len, jwtkit_errinfo *info) {
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

#endif /* JWTKIT_WITH_PKCS11 */
