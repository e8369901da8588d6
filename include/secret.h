/*
 * secret.h: files that hold a secret or the configuration, read with care.
 *
 * The configuration and the files holding secrets are named by an operator and
 * live where local users may put things (design.md: Security): a name may be a
 * FIFO (whose open would block without a writer), a device (/dev/zero never
 * ends) or a directory.  secret_read() reads only a regular file, and only up
 * to a bound.  systemd's credentials directory ($CREDENTIALS_DIRECTORY, filled
 * by LoadCredential=) is looked up here and nowhere else; the configuration
 * resolves it once, when it is loaded (config.h: client_secret_path,
 * redis_password_path).
 */
#ifndef PCD_SECRET_H
#define PCD_SECRET_H

#include <stddef.h>

#include "util.h"

/*
 * The whole of path, which must be a regular file (or a symbolic link to
 * one) of at most max bytes: opened without blocking, checked with fstat,
 * and refused if it grows past max while read.  NUL-terminated, its length
 * in *len; the caller frees it (secret_free() if it holds a secret).  NULL
 * with err set ("cannot read: ...", "not a regular file: a FIFO", "too
 * large: N bytes (at most M)"), nothing logged.
 */
char	*secret_read(const char *path, size_t max, size_t *len, char *err,
	    size_t errlen) PCD_WUR;
/* Wipe a secret string and free it (NULL is fine). */
void	 secret_free(char *);
/*
 * The path of systemd's credential name: "$CREDENTIALS_DIRECTORY/name",
 * or NULL when the variable is unset or empty.  Caller frees.
 */
char	*secret_credential(const char *name) PCD_WUR;

#endif
