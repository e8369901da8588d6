/*
 * statedir.h: the state directory (state_dir) and who may write in it.
 *
 * One process writes a state directory at a time: the daemon, --once and
 * --domain take an advisory lock (flock(2) on programs-cache.lock in it,
 * which holds the holder's pid) for their whole life, and a second writer
 * is told which process holds it.  --verify and --dry-run only read: they
 * never create, lock or remove anything there.
 *
 * The writer that holds the lock owns every file in the directory: it
 * removes the temporary files a crashed writer left when it takes the
 * lock, and its own temporary files carry its pid (statedir_tmp), created
 * with O_EXCL|O_NOFOLLOW.
 *
 * The directory itself is not trusted blindly (a local user could plant a
 * snapshot or a symlink there): it must be a directory of this user (or
 * root's) that group and others cannot write to, or it is neither read
 * nor written.
 *
 * The lock is one per process (module state): statedir_lock() once at
 * start-up, statedir_held() from any thread after that.
 */
#ifndef PCD_STATEDIR_H
#define PCD_STATEDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The lock file's name under state_dir. */
#define STATEDIR_LOCK	"programs-cache.lock"

enum statedir_rc {
	STATEDIR_LOCKED,	/* this process is the writer */
	STATEDIR_BUSY,		/* another process is (*holder: its pid) */
	STATEDIR_UNTRUSTED,	/* the directory may not be used (why) */
	STATEDIR_ERROR		/* it could not be made or locked (why) */
};

/*
 * Become the directory's writer: create it (mode 0700, one level) if it
 * is missing, lock programs-cache.lock without waiting, write our pid in
 * it and remove stale temporary files.  Nothing is logged: why (and
 * *holder with STATEDIR_BUSY, 0 if the file names nobody) say what went
 * wrong, for the caller to report.  The lock is held until exit.
 */
enum statedir_rc	 statedir_lock(const char *dir, pid_t *holder,
			    char *why, size_t whylen);
/* Whether this process holds the lock of dir. */
bool			 statedir_held(const char *dir);
/* Let the lock go (tests; a process that exits lets it go anyway). */
void			 statedir_unlock(void);

/*
 * Why the directory may not be trusted, or NULL (caller frees): not a
 * directory, writable by group or others, or another user's.
 */
char			*statedir_untrusted(const char *dir);
/* The directory a file is in (caller frees). */
char			*statedir_of(const char *path);
/* This process's temporary name for path: "path.PID.tmp" (caller frees). */
char			*statedir_tmp(const char *path);

#endif
