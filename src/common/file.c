/* Bounded, mode-checked reads of files that hold secrets (file.h). */
#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
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
