/*
 * publish.h: write a generation into memcached (SPEC §4).
 *
 * Entries go out in three phases, each ended by a round trip to every
 * server written to: program and pathway details; the index families;
 * the per-site lists.  A reader therefore never finds an index naming a
 * program that is not there yet, even across servers.  If details could
 * not be written, the later phases are not written at all.  Values that
 * are byte-identical to what the last publish wrote to the same key are
 * skipped (unless repairing).
 */
#ifndef PCD_PUBLISH_H
#define PCD_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>

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

/* Phases, in the order they are written (repairs follow them too). */
#define PUB_PHASES	3
/* The phase a family is written in: 0 details, 1 indexes, 2 site lists. */
int	pub_phase(enum catalog_family);

#endif
