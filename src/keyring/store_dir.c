/* The directory keyring store: keyring.json + keys/<name>.pem.
 *
 * Its trust boundary is the file permissions: whoever can write the
 * directory can replace keyring.json and every private key file, so the
 * directory and keys/ must not be writable by group or others, nor
 * keyring.json, and a private key file must not be readable by them.  Each
 * is checked on the opened descriptor (fstat), so what is checked is what
 * is read. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error_internal.h"
#include "common/file.h"
#include "store.h"

#define JK_MAX_PEM (1u << 20)

typedef struct dir_store {
  jk_store base;
  char *dir;
  int lock_fd;
} dir_store;

static char *path_join(const char *a, const char *b, const char *c) {
  size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
  char *p = jk_malloc(n);
  if (p != NULL) snprintf(p, n, "%s/%s%s", a, b, c ? c : "");
  return p;
}

/* keyring.json: whoever can write it can publish keys, so group and others
 * may not (checked on the opened descriptor). */
static jwtkit_err read_meta_file(const char *path, char **data, size_t *len, jwtkit_errinfo *info) {
  mode_t mode = 0;
  size_t n = 0;
  jwtkit_err rc = jk_read_file_mode(path, JK_MAX_META, data, &n, &mode, info);
  if (rc != JWTKIT_OK) return rc;
  if (mode & 022) {
    jk_free(*data);
    *data = NULL;
    return jk_fail(info, JWTKIT_ERR_PERMISSION, NULL,
                   "%s is writable by group or others (mode %04o): whoever can write it can publish keys; chmod go-w it",
                   path, (unsigned)mode);
  }
  if (len != NULL) *len = n;
  return JWTKIT_OK;
}

/* A directory of the keyring must not be writable by group or others. */
static jwtkit_err check_dir_mode(const char *path, jwtkit_errinfo *info) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return jk_fail(info, errno == ENOENT ? JWTKIT_ERR_NOT_FOUND : JWTKIT_ERR_IO, NULL, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  int r = fstat(fd, &st);
  close(fd);
  if (r != 0) return jk_fail(info, JWTKIT_ERR_IO, NULL, "cannot stat %s: %s", path, strerror(errno));
  if (st.st_mode & 022)
    return jk_fail(info, JWTKIT_ERR_PERMISSION, NULL,
                   "keyring directory %s is writable by group or others (mode %03o): whoever can write it can replace "
                   "the keys; chmod 700 it",
                   path, (unsigned)(st.st_mode & 0777));
  return JWTKIT_OK;
}

static jwtkit_err d_lock(jk_store *s, int exclusive, jwtkit_errinfo *info) {
  dir_store *d = (dir_store *)s;
  char *p = path_join(d->dir, ".lock", NULL);
  if (p == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 && !exclusive) fd = open(p, O_RDONLY | O_CLOEXEC);
  jk_free(p);
  if (fd < 0 && !exclusive && (errno == EACCES || errno == EROFS || errno == ENOENT)) {
    d->lock_fd = -1; /* a reader without write access: read unlocked */
    return JWTKIT_OK;
  }
  if (fd < 0) return jk_fail(info, JWTKIT_ERR_IO, NULL, "cannot open the keyring lock: %s", strerror(errno));
  while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno != EINTR) {
      close(fd);
      return jk_fail(info, JWTKIT_ERR_IO, NULL, "cannot lock the keyring: %s", strerror(errno));
    }
  }
  d->lock_fd = fd;
  return JWTKIT_OK;
}

static jwtkit_err d_unlock(jk_store *s, int commit, jwtkit_errinfo *info) {
  (void)commit; /* every write was already made durable on its own */
  (void)info;
  dir_store *d = (dir_store *)s;
  if (d->lock_fd >= 0) close(d->lock_fd); /* releases the flock */
  d->lock_fd = -1;
  return JWTKIT_OK;
}

static jwtkit_err d_load_meta(jk_store *s, char **json, size_t *len, jwtkit_errinfo *info) {
  dir_store *d = (dir_store *)s;
  *json = NULL;
  char *p = path_join(d->dir, "keyring.json", NULL);
  char *kd = path_join(d->dir, "keys", NULL);
  jwtkit_err rc = p && kd ? JWTKIT_OK : jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  if (rc == JWTKIT_OK) rc = check_dir_mode(d->dir, info);
  if (rc == JWTKIT_OK) rc = read_meta_file(p, json, len, info);
  /* keys/ is made with the first key; a keyring without it holds none */
  if (rc == JWTKIT_OK && (rc = check_dir_mode(kd, info)) == JWTKIT_ERR_NOT_FOUND) rc = JWTKIT_OK;
  if (rc != JWTKIT_OK && *json != NULL) {
    jk_free(*json);
    *json = NULL;
  }
  jk_free(p);
  jk_free(kd);
  return rc;
}

static jwtkit_err d_save_meta(jk_store *s, const char *json, size_t len, jwtkit_errinfo *info) {
  dir_store *d = (dir_store *)s;
  char *p = path_join(d->dir, "keyring.json", NULL);
  if (p == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  jwtkit_err rc = jk_write_file_atomic(p, json, len, 0644, info);
  jk_free(p);
  return rc;
}

int jk_store_name_ok(const char *name) {
  if (name[0] == '\0' || strlen(name) > 128) return 0;
  for (const char *c = name; *c; c++)
    if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
      return 0;
  return 1;
}

static jwtkit_err d_put_key(jk_store *s, const char *name, const char *pem, size_t len, jwtkit_errinfo *info) {
  dir_store *d = (dir_store *)s;
  if (!jk_store_name_ok(name)) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "bad key file name");
  char *p = path_join(d->dir, "keys/", name);
  char *q = p ? jk_malloc(strlen(p) + 5) : NULL;
  if (q == NULL) {
    jk_free(p);
    return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  snprintf(q, strlen(p) + 5, "%s.pem", p);
  jwtkit_err rc = jk_write_file_atomic(q, pem, len, 0600, info);
  jk_free(p);
  jk_free(q);
  return rc;
}

static char *key_path(dir_store *d, const char *name) {
  size_t n = strlen(d->dir) + strlen(name) + 16;
  char *p = jk_malloc(n);
  if (p != NULL) snprintf(p, n, "%s/keys/%s.pem", d->dir, name);
  return p;
}

static jwtkit_err d_get_key(jk_store *s, const char *name, char **pem, size_t *len, jwtkit_errinfo *info) {
  dir_store *d = (dir_store *)s;
  *pem = NULL;
  if (!jk_store_name_ok(name)) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "bad key file name");
  char *p = key_path(d, name);
  if (p == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  /* the secret-file rule: owner-only, checked on the opened file */
  jwtkit_err rc = jk_read_secret_file(p, JK_MAX_PEM, pem, len, info);
  jk_free(p);
  return rc;
}

static jwtkit_err d_del_key(jk_store *s, const char *name) {
  dir_store *d = (dir_store *)s;
  if (!jk_store_name_ok(name)) return JWTKIT_ERR_INVALID_ARG;
  char *p = key_path(d, name);
  if (p == NULL) return JWTKIT_ERR_NOMEM;
  int fd = open(p, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0) { /* overwrite before unlinking: the key should not linger on disk */
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size < (off_t)JK_MAX_PEM) {
      char zero[512] = {0};
      for (off_t left = st.st_size; left > 0;) {
        ssize_t w = write(fd, zero, left > (off_t)sizeof zero ? sizeof zero : (size_t)left);
        if (w <= 0) break;
        left -= w;
      }
      (void)fsync(fd);
    }
    close(fd);
  }
  int r = unlink(p);
  jwtkit_err rc = (r == 0 || errno == ENOENT) ? JWTKIT_OK : JWTKIT_ERR_IO;
  if (r == 0) {
    char *kd = path_join(d->dir, "keys", NULL);
    if (kd) jk_fsync_dir(kd);
    jk_free(kd);
  }
  jk_free(p);
  return rc;
}

static jwtkit_err d_list_keys(jk_store *s, char **names, size_t *count) {
  dir_store *d = (dir_store *)s;
  *names = NULL;
  *count = 0;
  char *kd = path_join(d->dir, "keys", NULL);
  if (kd == NULL) return JWTKIT_ERR_NOMEM;
  DIR *dh = opendir(kd);
  jk_free(kd);
  if (dh == NULL) return JWTKIT_ERR_IO;
  size_t cap = 256, len = 0;
  char *buf = jk_malloc(cap);
  jwtkit_err rc = buf ? JWTKIT_OK : JWTKIT_ERR_NOMEM;
  struct dirent *e;
  while (rc == JWTKIT_OK && (e = readdir(dh)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 4, ".pem") != 0) continue;
    if (len + n + 1 > cap) {
      char *nb = jk_realloc(buf, cap * 2 + n);
      if (nb == NULL) {
        rc = JWTKIT_ERR_NOMEM;
        break;
      }
      buf = nb;
      cap = cap * 2 + n;
    }
    memcpy(buf + len, e->d_name, n - 4);
    buf[len + n - 4] = '\0';
    len += n - 3;
    (*count)++;
  }
  closedir(dh);
  if (rc != JWTKIT_OK) {
    jk_free(buf);
    *count = 0;
    return rc;
  }
  *names = buf;
  return JWTKIT_OK;
}

static void d_close(jk_store *s) {
  dir_store *d = (dir_store *)s;
  if (d == NULL) return;
  (void)d_unlock(s, 0, NULL);
  jk_free(d->dir);
  jk_free(d);
}

static const jk_store_ops k_dir_ops = {
    .lock = d_lock,
    .unlock = d_unlock,
    .load_meta = d_load_meta,
    .save_meta = d_save_meta,
    .put_key = d_put_key,
    .get_key = d_get_key,
    .del_key = d_del_key,
    .list_keys = d_list_keys,
    .rekey = NULL, /* a directory keyring has a passphrase, not KEKs */
    .interrupt = NULL,
    .close = d_close,
};

jwtkit_err jk_store_dir_open(jk_store **out, const char *dir, int create, jwtkit_errinfo *info) {
  *out = NULL;
  if (dir == NULL || dir[0] == '\0') return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "no keyring directory");
  if (create) {
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
      return jk_fail(info, JWTKIT_ERR_IO, NULL, "cannot create %s: %s", dir, strerror(errno));
    char *kd = path_join(dir, "keys", NULL);
    if (kd == NULL) return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
    int r = mkdir(kd, 0700);
    int err = errno;
    jk_free(kd);
    if (r != 0 && err != EEXIST) return jk_fail(info, JWTKIT_ERR_IO, NULL, "cannot create %s/keys: %s", dir, strerror(err));
    jk_fsync_dir(dir);
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return jk_fail(info, JWTKIT_ERR_NOT_FOUND, NULL, "%s is not a keyring directory", dir);
  dir_store *d = jk_calloc(1, sizeof *d);
  if (d == NULL || (d->dir = jk_strdup(dir)) == NULL) {
    jk_free(d);
    return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  d->base.ops = &k_dir_ops;
  d->lock_fd = -1;
  *out = &d->base;
  return JWTKIT_OK;
}
