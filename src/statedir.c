/*
 * statedir.c: the state directory's one writer (flock), its temporary
 * files and the trust check.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "statedir.h"
#include "util.h"

/* The files a writer of the directory names programs-cache.*.tmp. */
#define TMP_PREFIX	"programs-cache."
#define TMP_SUFFIX	".tmp"

/* The lock this process holds (set once at start-up, then only read). */
static int	 lock_fd = -1;
static char	*lock_dir;

char *
statedir_of(const char *path)
{
	const char	*slash = strrchr(path, '/');

	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

char *
statedir_tmp(const char *path)
{
	return xasprintf("%s.%ld%s", path, (long)getpid(), TMP_SUFFIX);
}

char *
statedir_untrusted(const char *dir)
{
	struct stat	sb;

	if (stat(dir, &sb) == -1)
		return xasprintf("state_dir %s: %s", dir, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return xasprintf("state_dir %s is not a directory", dir);
	if ((sb.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return xasprintf("state_dir %s is writable by group or others "
		    "(mode %04o): chmod go-w it", dir,
		    (unsigned)(sb.st_mode & 07777));
	if (sb.st_uid != geteuid() && sb.st_uid != 0)
		return xasprintf("state_dir %s belongs to another user (uid "
		    "%u)", dir, (unsigned)sb.st_uid);
	return NULL;
}

/* Whether a name is a temporary file of a writer of this directory. */
static bool
is_tmp(const char *name)
{
	size_t	n = strlen(name), p = strlen(TMP_PREFIX), s = strlen(TMP_SUFFIX);

	return n > p + s && strncmp(name, TMP_PREFIX, p) == 0 &&
	    strcmp(name + n - s, TMP_SUFFIX) == 0;
}

/*
 * Remove the temporary files left in the directory (dfd): only the
 * writer that holds the lock calls this, so none of them is in use.
 */
static void
remove_stale(int dfd)
{
	struct dirent	*de;
	DIR		*d;
	int		 fd;

	if ((fd = dup(dfd)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (is_tmp(de->d_name))
			(void)unlinkat(dfd, de->d_name, 0);
	closedir(d);
}

/* The pid written in a lock file, or 0. */
static pid_t
holder_of(int fd)
{
	char	b[32];
	ssize_t	n;
	long	pid;
	char	*end;

	if ((n = pread(fd, b, sizeof b - 1, 0)) <= 0)
		return 0;
	b[n] = '\0';
	pid = strtol(b, &end, 10);
	return end != b && pid > 0 && (*end == '\n' || *end == '\0') ?
	    (pid_t)pid : 0;
}

/* Lock the file in dfd, or say why not. */
static enum statedir_rc
take(int dfd, const char *dir, pid_t *holder, char *why, size_t whylen)
{
	struct stat	 sb;
	char		 pid[32];
	int		 fd, n;

	fd = openat(dfd, STATEDIR_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1) {
		snprintf(why, whylen, "%s/%s: %s", dir, STATEDIR_LOCK,
		    strerror(errno));
		return STATEDIR_ERROR;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		snprintf(why, whylen, "%s/%s is not a regular file", dir,
		    STATEDIR_LOCK);
		close(fd);
		return STATEDIR_ERROR;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK) {
			*holder = holder_of(fd);
			snprintf(why, whylen, "state_dir %s is in use by "
			    "another programs-cached (pid %ld, in %s)", dir,
			    (long)*holder, STATEDIR_LOCK);
			close(fd);
			return STATEDIR_BUSY;
		}
		snprintf(why, whylen, "flock %s/%s: %s", dir, STATEDIR_LOCK,
		    strerror(errno));
		close(fd);
		return STATEDIR_ERROR;
	}
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, pid, (size_t)n, 0) != n) {
		snprintf(why, whylen, "%s/%s: %s", dir, STATEDIR_LOCK,
		    strerror(errno));
		close(fd);
		return STATEDIR_ERROR;
	}
	lock_fd = fd;
	free(lock_dir);
	lock_dir = xstrdup(dir);
	return STATEDIR_LOCKED;
}

enum statedir_rc
statedir_lock(const char *dir, pid_t *holder, char *why, size_t whylen)
{
	enum statedir_rc	 rc;
	char			*bad;
	int			 dfd;

	*holder = 0;
	why[0] = '\0';
	if (statedir_held(dir))
		return STATEDIR_LOCKED;
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(why, whylen, "state_dir %s: %s", dir,
		    strerror(errno));
		return STATEDIR_ERROR;
	}
	if ((bad = statedir_untrusted(dir)) != NULL) {
		snprintf(why, whylen, "%s", bad);
		free(bad);
		return STATEDIR_UNTRUSTED;
	}
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(why, whylen, "state_dir %s: %s", dir,
		    strerror(errno));
		return STATEDIR_ERROR;
	}
	if ((rc = take(dfd, dir, holder, why, whylen)) == STATEDIR_LOCKED)
		remove_stale(dfd);
	close(dfd);
	return rc;
}

bool
statedir_held(const char *dir)
{
	return lock_fd != -1 && lock_dir != NULL && strcmp(lock_dir, dir) == 0;
}

void
statedir_unlock(void)
{
	if (lock_fd != -1)
		close(lock_fd);
	lock_fd = -1;
	free(lock_dir);
	lock_dir = NULL;
}
