/*
 * snapshot.h: what the cache should hold, kept to refill it without
 * Discovery (SPEC §4, §5).
 *
 * An entry is what publish wrote for one key: the Django cache key, the
 * memcached key, the flags, the value bytes and the servers it went to.
 * A snapshot made from a generation references the generation's keys and
 * values (the generation must outlive it) and owns only its entry array
 * and the memcached keys; a loaded snapshot references its file, mapped
 * once.  Nothing changes a snapshot once it is made.
 *
 * The file, under state_dir: a header (magic, format version, entry count,
 * lengths, creation time), the settings that shape keys, values and
 * placement as text, each site's program count at its last publish (so
 * that the shrink guard works across restarts and --once runs), the
 * entries, and a BLAKE2b-256 checksum of everything before it.  It is written to a temporary file, fsynced, renamed over the
 * old one, and the directory fsynced.  A file that is truncated, corrupt,
 * of another format version or written with other settings is reported
 * (snapshot_ignored) and never trusted.
 */
#ifndef PCD_SNAPSHOT_H
#define PCD_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "config.h"
#include "keys.h"
#include "store.h"

/* The file's name under state_dir. */
#define SNAPSHOT_FILE		"programs-cache.snapshot"
/* The format this daemon writes and reads. */
#define SNAPSHOT_VERSION	2

struct snapshot_entry {
	const char		*key;		/* Django cache key */
	const char		*wire;		/* memcached key */
	const unsigned char	*val;
	size_t			 len;
	uint64_t		 servers;	/* bit i: on server i */
	uint32_t		 flags;
	uint16_t		 wirelen;
	uint8_t			 family;	/* enum catalog_family */
};

struct snapshot;

/* An empty snapshot, to be filled with snapshot_add. */
struct snapshot	*snapshot_new(void);
/* Append an entry: key and val are borrowed, wire is copied. */
void		 snapshot_add(struct snapshot *, const struct snapshot_entry *);
void		 snapshot_free(struct snapshot *);

/*
 * The snapshot of a generation just published through st, with kf's
 * memcached keys and the flags every value was written with.  Entries of
 * keep (borrowed, may be NULL; it must outlive the result) whose key the
 * generation lacks are kept too: a site or program that could not be
 * fetched keeps what the cache had.
 */
struct snapshot	*snapshot_from_catalog(const struct catalog *,
		    const struct store *, const struct keyfn *, uint32_t flags,
		    const struct snapshot *keep);

size_t		 snapshot_count(const struct snapshot *);
/* A site's program count at its last publish, or -1 if unknown. */
long long	 snapshot_site_programs(const struct snapshot *,
		    const char *domain);
/* Value bytes of every entry. */
size_t		 snapshot_bytes(const struct snapshot *);
/* The entries, in publish order (then entries kept from older ones). */
const struct snapshot_entry	*snapshot_entries(const struct snapshot *);
/* When it was saved (loaded) or made, unix milliseconds. */
uint64_t	 snapshot_created(const struct snapshot *);

/*
 * The snapshot as a generation every entry of which is written, for
 * publish to skip values that have not changed, and for the shrink guard:
 * its sites carry only published_programs, no data (owned by the
 * snapshot).
 */
const struct catalog	*snapshot_catalog(struct snapshot *);

/* The settings a file must have been written with (caller frees). */
char		*snapshot_settings(const struct cfg *);
/* The file under state_dir (caller frees). */
char		*snapshot_path(const char *state_dir);

/*
 * Write the file atomically (creating state_dir if it is missing).  0, or
 * -1 after logging snapshot_error; the old file is then left as it was.
 */
int		 snapshot_save(const struct snapshot *, const char *path,
		    const char *settings);
/*
 * Read a file written with these settings.  NULL if there is none (errno
 * ENOENT, nothing logged) or if it cannot be trusted (logged as
 * snapshot_ignored with the reason).
 */
struct snapshot	*snapshot_load(const char *path, const char *settings);

#endif
