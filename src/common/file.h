/* Files that hold secrets: one rule for every program of the project.
 *
 * jk_read_secret_file opens the file, checks the OPENED descriptor (fstat,
 * so nothing can swap the file between the check and the read): a regular
 * file, no permission bits for group or others (mode & 077 == 0), at most
 * max bytes.  HMAC secrets, passphrases, key-encryption keys, client lists
 * and private key files all go through it. */
#ifndef JK_FILE_H
#define JK_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "jwtkit/error.h"

#define JK_MAX_SECRET_FILE 65536u /* a secret, passphrase or KEK list file */

/* Read a whole regular file of at most max bytes, NUL-terminated, into a
 * buffer from jk_malloc (free with jk_free_secret(data, len + 1)).
 * mode_out (may be NULL) gets the file's permission bits as read from the
 * opened descriptor.  Errors: NOT_FOUND, IO (not a regular file, unreadable),
 * TOO_LARGE, NOMEM. */
jwtkit_err jk_read_file_mode(const char *path, size_t max, char **data, size_t *len, mode_t *mode_out,
                             jwtkit_errinfo *info);

/* The same without the mode. */
jwtkit_err jk_read_file(const char *path, size_t max, char **data, size_t *len, jwtkit_errinfo *info);

/* The same, and refused with JWTKIT_ERR_PERMISSION (naming the mode and the
 * fix) when group or others have any access. */
jwtkit_err jk_read_secret_file(const char *path, size_t max, char **data, size_t *len, jwtkit_errinfo *info);

/* Refuse a mode that gives group or others access to a secret. */
jwtkit_err jk_check_secret_mode(const char *path, mode_t mode, jwtkit_errinfo *info);

/* Atomic, durable file writes: a temp file in the same directory
 * (O_CREAT|O_EXCL, never following a symlink), written, given its mode,
 * fsynced, then moved into place, and the directory fsynced, so a crash
 * leaves the old file or the new one, never a mix.  A failure removes the
 * temp file.
 *   JK_WRITE_REPLACE: an existing file is replaced (rename); without it the
 *     file is created with link(), which never replaces one, even a file
 *     created meanwhile: JWTKIT_ERR_STATE "exists".
 *   JK_WRITE_UMASK: the process umask narrows mode (a user's output file);
 *     without it mode is exact (keyring files, private keys). */
#define JK_WRITE_REPLACE 1u
#define JK_WRITE_UMASK 2u
jwtkit_err jk_write_file_atomic_ex(const char *path, const void *data, size_t len, unsigned mode, unsigned flags,
                                   jwtkit_errinfo *info);
/* Replace (or create) with the exact mode. */
jwtkit_err jk_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
                                jwtkit_errinfo *info);
/* fsync a directory (after a rename in it); 0 or -1.  File systems that
 * cannot (EINVAL, EROFS) count as success. */
int jk_fsync_dir(const char *dir);

/* Length of a secret given as text (a file, stdin, an environment
 * variable): one trailing "\n" or "\r\n" is not part of it, every other byte
 * is. */
size_t jk_secret_text_len(const char *text, size_t len);

/* mkdir -p: create the missing directories of path's directory part
 * (create_last 0: "a/b/file" creates a and a/b), or of path itself
 * (create_last 1), each with mode.  0, or -1 with errno. */
int jk_mkdirs(const char *path, unsigned mode, int create_last);

#endif
