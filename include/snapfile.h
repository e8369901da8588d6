/*
 * snapfile.h: the snapshot file under state_dir (design.md: What a refresh
 * does, Security).
 *
 * The file is a base (every entry and text of one snapshot) followed by
 * deltas (the entries and texts one later save changed or removed), each
 * a segment of records compressed with zstd and chained by BLAKE2b-256:
 * a save that changed one program appends a few kilobytes instead of
 * rewriting every value.  When the deltas grow past a quarter of the base
 * (or the file is not the one this process last wrote), the next save
 * writes a new base instead: a temporary file of this process
 * (statedir_tmp), fsynced, renamed over the old one, the directory
 * fsynced.  An append writes its segment, fdatasyncs, then rewrites the
 * header (which says how long the file is) and fdatasyncs again: a crash
 * before the header leaves the file as it was, and bytes after the length
 * the header gives are never read.
 *
 * Entries in the file carry the Django cache key, the family, the flags
 * and the value; never a wire key or servers.  Both are derived on load
 * with the configured key function and placement (the settings text in
 * the file says which ones it was written with), so a file cannot name a
 * key outside the nine families' own.
 *
 * Loading reads the file into memory (a file replaced or truncated under
 * the daemon afterwards changes nothing it holds), checks the header and
 * every segment before decompressing anything, bounds every length, and
 * refuses (snapshot_ignored, with the reason) a file that is truncated,
 * corrupt, over SNAPSHOT_MAX_BYTES, of another format version or written
 * with other settings.  Loading never creates, changes or removes
 * anything: --verify and --dry-run use it as well.
 *
 * Saving is done by one thread at a time (a struct snapfile belongs to
 * whoever saves: the POOL_SAVE thread) and logs nothing:
 * snapshot_log_save() reports the outcome, on the loop.  Only the process
 * that holds state_dir's lock (statedir.h) writes there.
 */
#ifndef PCD_SNAPFILE_H
#define PCD_SNAPFILE_H

#include <stdint.h>

#include "keys.h"
#include "snapshot.h"
#include "store.h"
#include "util.h"

/* The format this daemon writes and reads (3 was one file, wire keys). */
#define SNAPSHOT_VERSION	4
/* The largest file, and the most bytes its segments may hold. */
#define SNAPSHOT_MAX_BYTES	((uint64_t)4 << 30)

/* The writer of one file: what it last wrote there. */
struct snapfile;

struct snapfile	*snapfile_new(const char *path);
void		 snapfile_free(struct snapfile *);
const char	*snapfile_path(const struct snapfile *);

/*
 * Read a file written with these settings, its wire keys made with kf
 * and its servers placed by st (NULL kf: no wire keys; NULL st: no
 * servers).  NULL if there is none (errno ENOENT, nothing logged) or if
 * it cannot be trusted (logged as snapshot_ignored with the reason).
 * With f, f learns what the file holds, so that its next save can append
 * to it (snapfile_holds).
 */
struct snapshot	*snapshot_load(const char *path, const char *settings,
		    const struct keyfn *kf, const struct store *st,
		    struct snapfile *f);
/*
 * The file f last loaded or saved holds the snapshot with this serial,
 * entry for entry and text for text (a copy of the one loaded).
 */
void		 snapfile_holds(struct snapfile *, uint64_t serial);

/* How a save went. */
struct snapshot_outcome {
	const char	*op;		/* what failed: open, write, rename... */
	char		 error[256];	/* "" on success */
	const char	*kind;		/* "base", "delta" or "none" */
	uint64_t	 ms;		/* how long it took */
	uint64_t	 written;	/* bytes written into the file */
	uint64_t	 file_bytes;	/* its length afterwards */
	size_t		 changed;	/* records written (a delta: changes) */
	size_t		 removed;	/* entries and texts a delta removed */
};

/*
 * Make the file hold next: a delta from prev when the file holds prev
 * (the snapshot last saved or loaded, by serial) and the deltas stay
 * small, else a new base; nothing when next holds what prev did.  0, or
 * -1 with the old file left as it was.  prev may be NULL (a base).
 */
int		 snapfile_save(struct snapfile *, const struct snapshot *prev,
		    const struct snapshot *next, const char *settings,
		    struct snapshot_outcome *) PCD_WUR;
/* snapshot_saved or snapshot_error, for a save's outcome o and return rc. */
void		 snapshot_log_save(const struct snapshot *, const char *path,
		    const struct snapshot_outcome *o, int rc);

#endif
