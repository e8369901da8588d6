/*
 * secret.c: bounded reads of regular files, wiping, and systemd's
 * credentials directory (see secret.h).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secret.h"

/* What a file that is not a regular one is, for an error. */
static const char *
file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file";
}

/* Up to max + 1 bytes of fd into data: one more than allowed is seen. */
static int
read_bounded(int fd, char *data, size_t max, size_t *got)
{
	ssize_t	n;

	*got = 0;
	while (*got <= max) {
		n = read(fd, data + *got, max + 1 - *got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return 0;
}

char *
secret_read(const char *path, size_t max, size_t *len, char *err,
    size_t errlen)
{
	struct stat	 sb;
	char		*data = NULL;
	size_t		 got;
	int		 fd;

	/* O_NONBLOCK: a FIFO without a writer must not hang the open. */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot read: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "cannot read: %s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "not a regular file: %s",
		    file_kind(sb.st_mode));
		goto fail;
	}
	if ((unsigned long long)sb.st_size > max) {
		snprintf(err, errlen, "too large: %lld bytes (at most %zu)",
		    (long long)sb.st_size, max);
		goto fail;
	}
	data = xmalloc(max + 2);
	if (read_bounded(fd, data, max, &got) == -1) {
		snprintf(err, errlen, "cannot read: %s", strerror(errno));
		goto fail;
	}
	if (got > max) {
		snprintf(err, errlen, "too large: over %zu bytes", max);
		goto fail;
	}
	close(fd);
	data[got] = '\0';
	*len = got;
	return data;
fail:
	if (data != NULL)
		explicit_bzero(data, max + 2);
	free(data);
	close(fd);
	return NULL;
}

void
secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

char *
secret_credential(const char *name)
{
	const char	*dir = getenv("CREDENTIALS_DIRECTORY");

	if (dir == NULL || *dir == '\0')
		return NULL;
	return xasprintf("%s/%s", dir, name);
}
