/*
 * publish.h: write a generation into memcached (SPEC §4).
 *
 * Entries go out in three phases, each ended by a round trip to every
 * server written to: program and pathway details; the index families;
 * the per-site lists.  A reader therefore never finds an index naming a
 * program that is not there yet, even across servers.  If a server failed
 * while details were written, the later phases are not written at all (a
 * value refused for its size is logged and skipped: its old value stays).
 * Values that
 * are byte-identical to what the last publish wrote to the same key are
 * skipped (unless repairing).
 */
#ifndef PCD_PUBLISH_H
#define PCD_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "catalog.h"
#include "keys.h"
#include "store.h"

struct pub_stats {
	size_t	written;	/* keys sent and confirmed by a round trip */
	size_t	skipped;	/* unchanged since the last publish */
	size_t	failed;		/* not written (logged) */
	size_t	bytes;		/* value bytes written */
};

/*
 * Write next.  prev (may be NULL) is the last published generation;
 * written[] flags of next are set for entries now known to be in place.
 * Returns 0 when every entry is in place, -1 otherwise.
 */
int	pub_write(struct store *, const struct keyfn *, struct catalog *next,
	    const struct catalog *prev, bool repair, uint32_t flags,
	    struct pub_stats *);

/*
 * Keys that disappeared upstream (SPEC §4): every key published since the
 * daemon started is remembered; after each fully successful refresh of
 * every site, the keys absent from it count one more absence, and at
 * stale_after absences in a row they are deleted from memcached (event
 * stale_deleted).  stale_after 0 keeps them forever, as cache_programs
 * does.  A key that comes back starts again from zero.
 */
struct pub_stale	*pub_stale_new(void);
void			 pub_stale_free(struct pub_stale *);
/*
 * Record next's keys; with sweep set (a successful refresh of every site),
 * count the absent ones and delete those absent stale_after times.
 * Returns how many keys were deleted.
 */
size_t			 pub_stale_sweep(struct pub_stale *, struct store *,
			    const struct keyfn *, const struct catalog *next,
			    int stale_after, bool sweep);

/*
 * --dry-run: what pub_write would do, without writing.  Each key that
 * would be written is printed (new or changed, family, bytes, key), then a
 * table per family; everything goes to out.  0, or -1 if a server could
 * not be read (the comparison is then incomplete, and says so).
 */
int	pub_dry_run(struct store *, const struct keyfn *,
	    const struct catalog *next, uint32_t flags, FILE *out);

/* Phases, in the order they are written (repairs follow them too). */
#define PUB_PHASES	3
/* The phase a family is written in: 0 details, 1 indexes, 2 site lists. */
int	pub_phase(enum catalog_family);

#endif
