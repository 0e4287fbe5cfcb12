/* Bounded, mode-checked reads of files that hold secrets (file.h). */
#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error_internal.h"

jwtkit_err jk_read_file_mode(const char *path, size_t max, char **data, size_t *len, mode_t *mode_out,
                             jwtkit_errinfo *info) {
  if (data == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  *data = NULL;
  if (len != NULL) *len = 0;
  if (path == NULL) return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, NULL);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return jk_fail(info, JWTKIT_ERR_NOT_FOUND, NULL, "%s does not exist", path);
    return jk_fail(info, JWTKIT_ERR_IO, NULL, "cannot open %s: %s", path, strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return jk_fail(info, JWTKIT_ERR_IO, NULL, "%s is not a regular file", path);
  }
  if ((uintmax_t)st.st_size > max) {
    close(fd);
    return jk_fail(info, JWTKIT_ERR_TOO_LARGE, NULL, "%s is larger than the limit of %zu bytes", path, max);
  }
  size_t cap = (size_t)st.st_size + 2, n = 0; /* + 1 to see growth, + 1 for the NUL */
  char *buf = jk_malloc(cap);
  if (buf == NULL) {
    close(fd);
    return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  for (;;) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      jk_free_secret(buf, cap);
      return jk_fail(info, JWTKIT_ERR_IO, NULL, "cannot read %s: %s", path, strerror(e));
    }
    if (r == 0) break;
    n += (size_t)r;
    if (n == cap - 1) break;
  }
  close(fd);
  if (n > (size_t)st.st_size) {
    jk_free_secret(buf, cap);
    return jk_fail(info, JWTKIT_ERR_IO, NULL, "%s grew while it was read; try again", path);
  }
  buf[n] = '\0';
  *data = buf;
  if (len != NULL) *len = n;
  if (mode_out != NULL) *mode_out = st.st_mode & 07777;
  return JWTKIT_OK;
}

jwtkit_err jk_read_file(const char *path, size_t max, char **data, size_t *len, jwtkit_errinfo *info) {
  return jk_read_file_mode(path, max, data, len, NULL, info);
}

jwtkit_err jk_check_secret_mode(const char *path, mode_t mode, jwtkit_errinfo *info) {
  if ((mode & 077) == 0) return JWTKIT_OK;
  return jk_fail(info, JWTKIT_ERR_PERMISSION, NULL,
                 "%s has mode %04o: a file holding a secret must not be readable or writable by group or others "
                 "(chmod 600 %s)",
                 path, (unsigned)(mode & 07777), path);
}

jwtkit_err jk_read_secret_file(const char *path, size_t max, char **data, size_t *len, jwtkit_errinfo *info) {
  mode_t mode = 0;
  size_t n = 0;
  jwtkit_err rc = jk_read_file_mode(path, max, data, &n, &mode, info);
  if (rc != JWTKIT_OK) return rc;
  if ((rc = jk_check_secret_mode(path, mode, info)) != JWTKIT_OK) {
    jk_free_secret(*data, n + 1);
    *data = NULL;
    return rc;
  }
  if (len != NULL) *len = n;
  return JWTKIT_OK;
}

size_t jk_secret_text_len(const char *text, size_t len) {
  if (len > 0 && text[len - 1] == '\n') {
    len--;
    if (len > 0 && text[len - 1] == '\r') len--;
  }
  return len;
}

int jk_fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  if (rc != 0 && (errno == EINVAL || errno == EROFS)) rc = 0;
  close(fd);
  return rc;
}

static int write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

jwtkit_err jk_write_file_atomic_ex(const char *path, const void *data, size_t len, unsigned mode, unsigned flags,
                                   jwtkit_errinfo *info) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
    return jk_fail(info, JWTKIT_ERR_INVALID_ARG, NULL, "%s is not a file name", path);
  size_t dl = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
  size_t tl = strlen(path) + 32;
  char *dir = jk_malloc(dl + 1), *tmp = jk_malloc(tl);
  if (dir == NULL || tmp == NULL) {
    jk_free(dir);
    jk_free(tmp);
    return jk_fail(info, JWTKIT_ERR_NOMEM, NULL, NULL);
  }
  if (slash == NULL) memcpy(dir, ".", 2);
  else if (slash == path) memcpy(dir, "/", 2);
  else {
    memcpy(dir, path, dl);
    dir[dl] = '\0';
  }
  jwtkit_err rc = JWTKIT_OK;
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
    snprintf(tmp, tl, "%s/.%s.tmp.%ld.%d", dir, base, (long)getpid(), attempt);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    rc = jk_fail(info, JWTKIT_ERR_IO, NULL, "cannot create a file in %s: %s", dir, strerror(errno));
    goto out;
  }
  mode_t m = (mode_t)mode & 07777;
  if (flags & JK_WRITE_UMASK) {
    mode_t um = umask(0);
    umask(um);
    m &= ~um;
  }
  int ok = fchmod(fd, m) == 0 && write_all(fd, data, len) == 0 && fsync(fd) == 0;
  int err = errno;
  if (close(fd) != 0 && ok) {
    ok = 0;
    err = errno;
  }
  if (!ok) {
    rc = jk_fail(info, JWTKIT_ERR_IO, NULL, "cannot write %s: %s", path, strerror(err));
    unlink(tmp);
    goto out;
  }
  if (flags & JK_WRITE_REPLACE) {
    if (rename(tmp, path) != 0) {
      rc = jk_fail(info, JWTKIT_ERR_IO, NULL, "cannot write %s: %s", path, strerror(errno));
      unlink(tmp);
      goto out;
    }
  } else {
    struct stat st;
    if (link(tmp, path) != 0) {
      err = errno;
      if (err == EEXIST) {
        rc = jk_fail(info, JWTKIT_ERR_STATE, NULL, "%s exists", path);
      } else if ((err == EPERM || err == ENOTSUP || err == EOPNOTSUPP || err == EMLINK) && lstat(path, &st) != 0 &&
                 rename(tmp, path) == 0) {
        rc = JWTKIT_OK; /* a file system without hard links */
      } else {
        rc = jk_fail(info, JWTKIT_ERR_IO, NULL, "cannot write %s: %s", path, strerror(err));
      }
    }
    unlink(tmp);
    if (rc != JWTKIT_OK) goto out;
  }
  if (jk_fsync_dir(dir) != 0) rc = jk_fail(info, JWTKIT_ERR_IO, NULL, "cannot sync directory %s: %s", dir, strerror(errno));
out:
  jk_free(dir);
  jk_free(tmp);
  return rc;
}

jwtkit_err jk_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
                                jwtkit_errinfo *info) {
  return jk_write_file_atomic_ex(path, data, len, mode, JK_WRITE_REPLACE, info);
}

int jk_mkdirs(const char *path, unsigned mode, int create_last) {
  size_t n = strlen(path);
  if (n == 0) {
    errno = ENOENT;
    return -1;
  }
  char *buf = jk_malloc(n + 1);
  if (buf == NULL) {
    errno = ENOMEM;
    return -1;
  }
  memcpy(buf, path, n + 1);
  int rc = 0;
  char *end = buf + n;
  if (!create_last) {
    end = strrchr(buf, '/');
    if (end == NULL) end = buf; /* a bare file name: nothing to create */
    *end = '\0';
  }
  for (char *p = buf + 1; rc == 0 && p < end; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST) rc = -1;
    *p = '/';
  }
  if (rc == 0 && buf[0] != '\0' && mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST) rc = -1;
  int e = errno;
  jk_free(buf);
  errno = e;
  return rc;
}
