/*
 * snapshot.h: what the cache holds, as the last publish left it, kept to
 * refill the cache without Discovery and to know "the previous value" in
 * every mode (design.md: What a refresh does, Failures).
 *
 * An entry is one key as written: the Django cache key, the wire key, the
 * flags, the value bytes and the servers it went to.  Beside the entries,
 * a snapshot carries named texts: the sites as the last publish knew them
 * (genfile.h: each site's UUID list and pathways, each program's facts),
 * so that a run that starts from the file (--once, or the daemon after a
 * restart) keeps a failed program in its indexes exactly as the daemon
 * that published it would.
 *
 * Entries are borrowed (snapshot_add: key and value must outlive the
 * snapshot; the wire key is copied) or copied (snapshot_add_copy); texts
 * are copied.  A loaded snapshot (snapfile.h) owns the memory its entries
 * and texts point into.  Nothing changes a snapshot once it is made, so
 * one may be read from any thread while its owner keeps it.
 */
#ifndef PCD_SNAPSHOT_H
#define PCD_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "entry.h"

/* The file's name under state_dir (snapfile.h: what is in it). */
#define SNAPSHOT_FILE		"programs-cache.snapshot"

/* A named text (a site, a program's facts): NUL-terminated, len bytes. */
struct snapshot_text {
	const char	*name;
	const char	*text;
	size_t		 len;
};

struct snapshot;

/* An empty snapshot, to be filled with snapshot_add. */
struct snapshot	*snapshot_new(void);
/* Append an entry: key and val are borrowed, wire is copied (or NULL). */
void		 snapshot_add(struct snapshot *, const struct entry *);
/* Append a copy of an entry (key, wire and value). */
void		 snapshot_add_copy(struct snapshot *, const struct entry *);
/* Append a named text (both copied; names are unique by contract). */
void		 snapshot_add_text(struct snapshot *, const char *name,
		    const char *text, size_t len);
/* Append a borrowed text (name and text must outlive the snapshot). */
void		 snapshot_add_text_ref(struct snapshot *,
		    const struct snapshot_text *);
/* Append copies of every text of src. */
void		 snapshot_copy_texts(struct snapshot *, const struct snapshot *src);
/* Free p with the snapshot (the memory a loaded one points into). */
void		 snapshot_keep(struct snapshot *, void *p);
/* When it was made or saved (the file's time for a loaded one). */
void		 snapshot_set_created(struct snapshot *, uint64_t ms);
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
/* The texts, in the order they were added. */
size_t		 snapshot_ntexts(const struct snapshot *);
const struct snapshot_text	*snapshot_texts(const struct snapshot *);
/* When it was made or saved, unix milliseconds. */
uint64_t	 snapshot_created(const struct snapshot *);

/* The settings a file must have been written with (caller frees). */
char		*snapshot_settings(const struct cfg *);
/* The file under state_dir (caller frees). */
char		*snapshot_path(const char *state_dir);

#endif
