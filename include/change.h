/*
 * change.h: the change-driven refresh (operations.md: the change key): when a
 * change of Discovery's api_timestamp (chgsrc.h) starts a refresh, and which.
 *
 * A burst is bumps less than change_debounce apart.  Its first refresh (an
 * incremental one, design.md: Incremental refresh) starts once the key has
 * been quiet for change_debounce, or CHANGE_DEBOUNCE_MAX (change_debounce if
 * longer) after the burst's first bump, whichever comes first.  Its second,
 * and last, starts once the key is quiet again, if it moved while the first
 * ran, or CHANGE_RETRY_MS after the first if that found nothing new (the bump
 * may come from a post_save signal whose transaction had not committed yet).
 * A burst never costs more than these two, however long the key keeps moving:
 * the schedule (incremental_interval, refresh_interval) covers the rest.  When
 * the burst's last refresh found nothing new (a course-run edit that bumped no
 * program's timestamp), a full refresh follows change_full_delay later: one
 * for every change that needs one meanwhile, and none if a full refresh ends
 * first.
 *
 * The time of a bump is when it was seen, or, when the value is a
 * timestamp (chgsrc_timestamp_ms), that time, as long as it lies between
 * the previous poll and now: a poll that sees a change late does not
 * delay its refresh by its own lateness.
 *
 * Only the writer watches: change_watch(false) (a stand-by) closes every
 * connection to the source and forgets every burst.
 */
#ifndef PCD_CHANGE_H
#define PCD_CHANGE_H

#include <stdbool.h>

#include "config.h"

/* A burst's first refresh comes at most this long after its first bump. */
#define CHANGE_DEBOUNCE_MAX_MS	10000
/* How long after a first refresh that found nothing it looks again. */
#define CHANGE_RETRY_MS		3000

struct event_base;
struct change;

enum change_refresh {
	CHANGE_INCREMENTAL,	/* a burst's refresh (reason=change) */
	CHANGE_FULL		/* change_full_delay after one found nothing */
};

struct change_cbs {
	/*
	 * Start a refresh now, or when the one running ends.  For
	 * CHANGE_INCREMENTAL the daemon later calls change_refresh_done with
	 * for_change (an incremental one, or a full one if that is what
	 * runs), unless change_watch(false) comes first.
	 */
	void	(*refresh)(enum change_refresh, void *arg);
};

struct change	*change_new(struct event_base *, const struct change_cbs *,
		    void *arg);
void		 change_free(struct change *);
/* The functions below do nothing with a NULL change (one-shot runs). */
/*
 * The configuration in use (borrowed until the next call; the previous
 * one must still be valid during this call): a new key or source
 * reconnects.
 */
void		 change_configure(struct change *, const struct cfg *);
/* Watch (the writer: no lease, or it holds it) or not (a stand-by). */
void		 change_watch(struct change *, bool on);
/*
 * A refresh ended: for_change if it was one asked for with
 * CHANGE_INCREMENTAL; full if it was a full refresh; found if it found
 * anything new (a detail fetched, a key written or deleted).
 */
void		 change_refresh_done(struct change *, bool for_change,
		    bool full, bool found);

#endif
