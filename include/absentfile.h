/*
 * absentfile.h: the record's absent counts as a named text of the
 * snapshot file (snapshot.h), beside the generation's (genfile.h):
 *
 *	"absent"	{"version": 1, "absent": {key: count}}
 *
 * for every key absent from one full refresh or more (usually none: the
 * text is then left out), keys sorted, so that an unchanged count saves
 * nothing (snapfile.h keeps only what changed).  A restart, and every
 * --once run, goes on counting towards stale_after where the last writer
 * stopped.
 *
 * The counts live in state.c's map (key -> absences + 1); these
 * functions only turn them into the text and back.
 */
#ifndef PCD_ABSENTFILE_H
#define PCD_ABSENTFILE_H

#include "map.h"
#include "snapshot.h"

#define ABSENTFILE_TEXT	"absent"

/* Add the text for absent (key -> absences + 1) to snap, if any is > 0. */
void	absentfile_put(struct snapshot *snap, const struct map *absent);
/*
 * snap's counts into absent, for the keys it has already (at 1): what
 * does not hold is left out; a count is at most stale_after (0: no
 * bound but a million).
 */
void	absentfile_read(const struct snapshot *snap, struct map *absent,
	    int stale_after);
/* Copies of src's texts into snap, but for its absent counts. */
void	absentfile_copy_others(struct snapshot *snap,
	    const struct snapshot *src);

#endif
