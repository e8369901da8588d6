/*
 * snapshot.h: what the cache holds, as the last publish left it, kept to
 * refill the cache without Discovery and to know "the previous value" in
 * every mode (SPEC §4, §5, §7).
 *
 * An entry is one key as written: the Django cache key, the wire key, the
 * flags, the value bytes and the servers it went to.  Beside the entries,
 * a snapshot carries the sites as the last publish knew them (the state
 * module's text: each site's UUID list, its programs' facts, its
 * pathways), so that a run that starts from the file (--once, or the
 * daemon after a restart) keeps a failed program in its indexes exactly as
 * the daemon that published it would.
 *
 * Entries are borrowed (snapshot_add: key and value must outlive the
 * snapshot; the wire key is copied) or copied (snapshot_add_copy); a
 * loaded snapshot points into its file, mapped once.  Nothing changes a
 * snapshot once it is made.
 *
 * The file, under state_dir: a header (magic, format version, entry count,
 * lengths, creation time), the settings that shape keys, values and
 * placement as text, the sites text, the entries, and a BLAKE2b-256
 * checksum of everything before it.  It is written to a temporary file,
 * fsynced, renamed over the old one, and the directory fsynced.  A file
 * that is truncated, corrupt, of another format version or written with
 * other settings is reported (snapshot_ignored) and never trusted.
 */
#ifndef PCD_SNAPSHOT_H
#define PCD_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "entry.h"

/* The file's name under state_dir. */
#define SNAPSHOT_FILE		"programs-cache.snapshot"
/* The format this daemon writes and reads. */
#define SNAPSHOT_VERSION	3

struct snapshot;

/* An empty snapshot, to be filled with snapshot_add. */
struct snapshot	*snapshot_new(void);
/* Append an entry: key and val are borrowed, wire is copied. */
void		 snapshot_add(struct snapshot *, const struct entry *);
/* Append a copy of an entry (key, wire and value). */
void		 snapshot_add_copy(struct snapshot *, const struct entry *);
/* The sites text (copied; NULL: none). */
void		 snapshot_set_sites(struct snapshot *, const char *);
void		 snapshot_free(struct snapshot *);

/*
 * A number no other snapshot of this process has had (tells a new one
 * from an old one whose address was reused); 0 for NULL.
 */
uint64_t	 snapshot_serial(const struct snapshot *);
size_t		 snapshot_count(const struct snapshot *);
/* Value bytes of every entry. */
size_t		 snapshot_bytes(const struct snapshot *);
/* The entries, in publish order. */
const struct entry	*snapshot_entries(const struct snapshot *);
/* The sites text, or NULL. */
const char	*snapshot_sites(const struct snapshot *);
/* When it was saved (loaded) or made, unix milliseconds. */
uint64_t	 snapshot_created(const struct snapshot *);

/* The settings a file must have been written with (caller frees). */
char		*snapshot_settings(const struct cfg *);
/* The file under state_dir (caller frees). */
char		*snapshot_path(const char *state_dir);

/* How a save went: what it was doing when it failed, and why. */
struct snapshot_outcome {
	const char	*op;		/* a literal: open, write, rename, ... */
	char		 error[256];	/* "" on success */
	uint64_t	 ms;		/* how long it took */
};

/*
 * Write the file atomically (creating state_dir if it is missing): 0, or
 * -1 with the old file left as it was.  It logs nothing (it runs off the
 * loop): snapshot_log_save() says how it went, on the loop.
 */
int		 snapshot_save(const struct snapshot *, const char *path,
		    const char *settings, struct snapshot_outcome *) PCD_WUR;
/* snapshot_saved or snapshot_error, for save's outcome o and return rc. */
void		 snapshot_log_save(const struct snapshot *, const char *path,
		    const struct snapshot_outcome *o, int rc);
/*
 * Read a file written with these settings.  NULL if there is none (errno
 * ENOENT, nothing logged) or if it cannot be trusted (logged as
 * snapshot_ignored with the reason).
 */
struct snapshot	*snapshot_load(const char *path, const char *settings);

#endif
