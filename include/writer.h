/*
 * writer.h: the one way entries get into the cache (SPEC §4, §7).
 *
 * A publish, a repair after a restart or a miss, and SIGUSR1 all write
 * through writer_phase(): entries of one phase, pipelined to the servers
 * each belongs on, the phase ended by a round trip to every server written
 * to.  Every entry gets an outcome; refusals are always seen (the store
 * reads back what it cannot otherwise know), and a write whose outcome is
 * unknown counts as failed.
 */
#ifndef PCD_WRITER_H
#define PCD_WRITER_H

#include <stdbool.h>
#include <stddef.h>

#include "entry.h"
#include "store.h"

enum write_outcome {
	WRITE_PENDING,		/* not tried (yet) */
	WRITE_OK,		/* written, and the server has it */
	WRITE_SAME,		/* the cache holds these bytes already */
	WRITE_TOO_BIG,		/* over the item size: not sent, old value stays */
	WRITE_INVALID,		/* the key function refuses the key */
	WRITE_REFUSED,		/* sent and refused: the key holds nothing */
	WRITE_DOWN		/* a server was down or failed: unknown */
};

/*
 * Whether this process may write now (the writer's lease, SPEC §11): asked
 * before a phase and between pipeline batches.  NULL: always.
 */
struct writer_gate {
	bool	(*may_write)(void *arg);
	void	*arg;
};

/* Whether the cache holds exactly e's value already (skip it). */
typedef bool	(*writer_same_fn)(const struct entry *e, void *arg);

struct write_stats {
	size_t	written;	/* entries confirmed written */
	size_t	skipped;	/* the same bytes were there */
	size_t	failed;		/* any other outcome */
	size_t	bytes;		/* value bytes written */
};

/*
 * Write the entries of v[0..n) that belong to phase (catalog_phase) and
 * whose out[] is still WRITE_PENDING, setting out[] for each; entries
 * whose out[] is set already are left alone (a phase can be written again
 * after the caller changed some).  same, if not NULL, skips values the
 * cache holds.  Refusals are logged (memcached_error) and counted in ws
 * (added to, may be NULL).  0, or -1 if a server was down or failed, or
 * the gate closed (what was not sent stays WRITE_PENDING): the later
 * phases must then not be written.
 */
int	writer_phase(struct store *, const struct entry *v, size_t n,
	    int phase, writer_same_fn same, void *arg,
	    const struct writer_gate *gate, enum write_outcome *out,
	    struct write_stats *ws) PCD_WUR;

/* Whether an outcome means the cache holds the entry's value. */
bool	writer_in_cache(enum write_outcome);

#endif
