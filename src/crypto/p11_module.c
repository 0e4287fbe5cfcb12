/* PKCS#11 modules and tokens: the messages of return values, loading a
 * module (module-path=, or p11-kit's configuration), finding the token a
 * URI names, the PIN (p11_internal.h lists the parts). */
#include "p11_internal.h"
#include "common/attr.h"

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

/* One p11-kit managed instance per module file, shared by every token key
 * and operation of the process (refs), so that a re-initialisation of the
 * module (jk_p11_module_recover) re-initialises the module itself: p11-kit
 * calls the module's C_Finalize only when its last managed instance is
 * finalized. */
struct p11_module {
  char *file;
  CK_FUNCTION_LIST *fl;
  unsigned refs;           /* under g_mods_mu */
  int initialized;         /* under the write lock, or before the module is shared */
  CK_RV init_rv;           /* what the last C_Initialize returned */
  atomic_ulong epoch;      /* bumped by each re-initialisation */
  atomic_int suspect;      /* a failure a re-initialisation may cure was seen */
  atomic_llong last_reinit; /* monotonic ms of the last re-initialisation */
  /* PINs a token of this module refused: never tried again while the
   * module is loaded (a process that opens keys again and again, an
   * issuer's rotation, cannot lock the token); under g_mods_mu */
  struct {
    char token[52];          /* label and serial */
    unsigned char pin[32];   /* SHA-256 of the PIN */
    CK_RV rv;
  } refused[8];
  unsigned nrefused;
  p11_module *next;
};

volatile long jk_p11_reinit_ms = 1000;

static pthread_mutex_t g_mods_mu = PTHREAD_MUTEX_INITIALIZER;
static p11_module *g_mods;

/* Every call into a shared module is made between jk_p11_enter and
 * jk_p11_leave (a read lock, re-entrant per thread); a re-initialisation
 * takes the write lock, after closing the gate to new outermost readers
 * so that a steady flow of signers cannot starve it. */
static pthread_rwlock_t g_rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t g_gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_gate_cv = PTHREAD_COND_INITIALIZER;
static atomic_int g_gate_closed;
static _Thread_local unsigned tl_depth;

void jk_p11_enter(void) {
  if (tl_depth++ == 0 && atomic_load(&g_gate_closed)) {
    pthread_mutex_lock(&g_gate_mu);
    while (atomic_load(&g_gate_closed)) pthread_cond_wait(&g_gate_cv, &g_gate_mu);
    pthread_mutex_unlock(&g_gate_mu);
  }
  pthread_rwlock_rdlock(&g_rw);
}

void jk_p11_leave(void) {
  pthread_rwlock_unlock(&g_rw);
  tl_depth--;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int jk_p11_module_ready(const p11_module *m, CK_RV *rv) {
  *rv = m->init_rv;
  return m->initialized;
}

unsigned long jk_p11_module_epoch(const p11_module *m) { return atomic_load(&((p11_module *)JK_UNCONST(m))->epoch); }

void jk_p11_module_suspect(p11_module *m) {
  if (m != NULL) atomic_store(&m->suspect, 1);
}

int jk_p11_module_recover(p11_module *m) {
  if (m == NULL || tl_depth != 0 || !atomic_load(&m->suspect)) return 0;
  if (mono_ms() - atomic_load(&m->last_reinit) < jk_p11_reinit_ms) return 0;
  pthread_mutex_lock(&g_gate_mu);
  atomic_fetch_add(&g_gate_closed, 1);
  pthread_mutex_unlock(&g_gate_mu);
  pthread_rwlock_wrlock(&g_rw);
  int done = 0;
  int64_t now = mono_ms();
  if (atomic_load(&m->suspect) && now - atomic_load(&m->last_reinit) >= jk_p11_reinit_ms) {
    /* every session of every key on it ends here: the keys notice the new
     * epoch, forget their sessions, look the token up again, log in */
    if (m->initialized) (void)p11_kit_module_finalize(m->fl);
    m->init_rv = p11_kit_module_initialize(m->fl);
    m->initialized = m->init_rv == CKR_OK;
    atomic_fetch_add(&m->epoch, 1);
    atomic_store(&m->suspect, 0);
    atomic_store(&m->last_reinit, now);
    done = 1;
  }
  pthread_rwlock_unlock(&g_rw);
  pthread_mutex_lock(&g_gate_mu);
  atomic_fetch_sub(&g_gate_closed, 1);
  pthread_cond_broadcast(&g_gate_cv);
  pthread_mutex_unlock(&g_gate_mu);
  return done;
}

static void token_id(const p11_token *t, char out[52]) { snprintf(out, 52, "%s/%s", t->label, t->serial); }

CK_RV jk_p11_pin_refused(const p11_token *t, const char *pin, size_t pin_len) {
  unsigned char d[32];
  char id[52];
  if (pin == NULL || jk_sha256_2(pin, pin_len, "", 0, d) != 0) return CKR_OK;
  token_id(t, id);
  CK_RV rv = CKR_OK;
  pthread_mutex_lock(&g_mods_mu);
  for (unsigned i = 0; i < t->mod->nrefused && rv == CKR_OK; i++)
    if (strcmp(t->mod->refused[i].token, id) == 0 && memcmp(t->mod->refused[i].pin, d, 32) == 0) rv = t->mod->refused[i].rv;
  pthread_mutex_unlock(&g_mods_mu);
  jk_wipe(d, sizeof d);
  return rv;
}

void jk_p11_pin_note_refused(const p11_token *t, const char *pin, size_t pin_len, CK_RV rv) {
  unsigned char d[32];
  if (pin == NULL || jk_sha256_2(pin, pin_len, "", 0, d) != 0) return;
  pthread_mutex_lock(&g_mods_mu);
  p11_module *m = t->mod;
  unsigned i = m->nrefused < 8 ? m->nrefused++ : 7; /* the newest replaces the last when full */
  token_id(t, m->refused[i].token);
  memcpy(m->refused[i].pin, d, 32);
  m->refused[i].rv = rv;
  pthread_mutex_unlock(&g_mods_mu);
  jk_wipe(d, sizeof d);
}

void jk_p11_module_put(p11_module *m) {
  if (m == NULL) return;
  pthread_mutex_lock(&g_mods_mu);
  int last = --m->refs == 0;
  if (last)
    for (p11_module **pp = &g_mods; *pp != NULL; pp = &(*pp)->next)
      if (*pp == m) {
        *pp = m->next;
        break;
      }
  pthread_mutex_unlock(&g_mods_mu);
  if (!last) return;
  if (m->initialized) p11_kit_module_finalize(m->fl);
  p11_kit_module_release(m->fl);
  jk_free(m->file);
  jk_wipe(m->refused, sizeof m->refused);
  jk_free(m);
}

void jk_p11_token_close(p11_token *t) {
  if (t->entered) jk_p11_leave();
  t->entered = 0;
  jk_p11_module_put(t->mod);
  t->mod = NULL;
  t->fl = NULL;
}

/* The shared instance of the module in path (a reference), loaded and
 * initialised when it is the first.  A module a failure made suspect is
 * re-initialised first (when no module call is in progress in this
 * thread, at most once a second). */
static jwtkit_err module_get(const char *path, p11_module **out, jwtkit_errinfo *info) {
  *out = NULL;
  struct stat st;
  if (stat(path, &st) != 0)
    return jk_fail(info, JWTKIT_ERR_NOT_FOUND, "module-path",
                   "PKCS#11 module %s: %s (install the token's module, e.g. softhsm2, or fix module-path=)", path,
                   strerror(errno));
  if (!S_ISREG(st.st_mode))
    return jk_fail(info, JWTKIT_ERR_NOT_FOUND, "module-path", "PKCS#11 module %s is not a regular file", path);
  pthread_mutex_lock(&g_mods_mu);
  p11_module *m = g_mods;
  while (m != NULL && strcmp(m->file, path) != 0) m = m->next;
  if (m != NULL) {
    m->refs++;
    pthread_mutex_unlock(&g_mods_mu);
    (void)jk_p11_module_recover(m);
    *out = m;
    return JWTKIT_OK;
  }
  jwtkit_err rc = JWTKIT_OK;
  if ((m = jk_calloc(1, sizeof *m)) == NULL || (m->file = jk_strdup(path)) == NULL) {
    rc = jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  } else if ((m->fl = p11_kit_module_load(path, 0)) == NULL) {
    rc = jk_fail(info, JWTKIT_ERR_UNSUPPORTED, "module-path", "cannot load %s as a PKCS#11 module: %s", path,
                 p11_kit_message() ? p11_kit_message() : "?");
  } else {
    CK_RV rv = p11_kit_module_initialize(m->fl);
    if (rv != CKR_OK) {
      char b[32];
      p11_kit_module_release(m->fl);
      rc = jk_fail(info, JWTKIT_ERR_IO, "module-path",
                   "PKCS#11 module %s failed to initialise: %s (its token or configuration missing? SoftHSM: the "
                   "directories.tokendir of SOFTHSM2_CONF)",
                   path, jk_p11_rv_text(rv, b));
    }
  }
  if (rc != JWTKIT_OK) {
    pthread_mutex_unlock(&g_mods_mu);
    if (m != NULL) jk_free(m->file);
    jk_free(m);
    return rc;
  }
  m->initialized = 1;
  m->refs = 1;
  atomic_init(&m->epoch, 1);
  atomic_init(&m->suspect, 0);
  atomic_init(&m->last_reinit, mono_ms());
  m->next = g_mods;
  g_mods = m;
  pthread_mutex_unlock(&g_mods_mu);
  *out = m;
  return JWTKIT_OK;
}

/* t->mod: the module in path, entered (jk_p11_enter). */
static jwtkit_err token_module(const char *path, p11_token *t, jwtkit_errinfo *info) {
  jwtkit_err rc = module_get(path, &t->mod, info);
  if (rc != JWTKIT_OK) return rc;
  t->fl = t->mod->fl;
  jk_p11_enter();
  t->entered = 1;
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
    if ((rc = token_module(u->module_path, t, info)) != JWTKIT_OK) return rc;
    CK_RV irv;
    if (!jk_p11_module_ready(t->mod, &irv)) {
      char b[32];
      jk_p11_module_suspect(t->mod);
      jk_p11_token_close(t);
      return jk_fail(info, JWTKIT_ERR_NOT_FOUND, "token",
                     "PKCS#11 module %s does not initialise now (%s): is the token there? (tried again at the next use)",
                     u->module_path, jk_p11_rv_text(irv, b));
    }
    int r = jk_p11_token_search(t->fl, u, t, seen, sizeof seen, info);
    if (r == 1) return JWTKIT_OK;
    if (r == 0) jk_p11_module_suspect(t->mod); /* a module that lost the token may find it once re-initialised */
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
    rc = token_module(file, t, info);
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

/* Another reference to t's module, on the same slot (kt owns it; not
 * entered: t's caller is). */
void jk_p11_token_again(const p11_token *t, p11_token *kt) {
  *kt = *t;
  kt->entered = 0;
  pthread_mutex_lock(&g_mods_mu);
  kt->mod->refs++;
  pthread_mutex_unlock(&g_mods_mu);
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

jwtkit_err jk_p11_open_uri(jk_p11_uri *u, p11_token *t, char **pin, size_t *pin_len, jwtkit_errinfo *info) {
  jwtkit_err rc = jk_p11_pin_read(u, pin, pin_len, info);
  if (rc == JWTKIT_OK && (rc = jk_p11_token_open(u, t, info)) != JWTKIT_OK) {
    jk_free_secret(*pin, *pin_len + 1);
    *pin = NULL;
    *pin_len = 0;
  }
  if (rc != JWTKIT_OK) jk_p11_uri_free(u);
  return rc;
}

#endif /* JWTKIT_WITH_PKCS11 */
