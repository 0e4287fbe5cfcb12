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

/* Length of a secret given as text (a file, stdin, an environment
 * variable): one trailing "\n" or "\r\n" is not part of it, every other byte
 * is. */
size_t jk_secret_text_len(const char *text, size_t len);

#endif
