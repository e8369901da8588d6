/*
 * dryrun.h: --dry-run (configuration.md: Configuration): fetch and build,
 * write nothing, and say what a publish would do: which keys it would write
 * (new or changed, read from the cache), which stale keys it would delete or
 * keep counting (the state knows the counts), which sites the shrink guard
 * would hold; and with --diff KEY, the field-level changes of one value
 * against what the cache holds now.
 */
#ifndef PCD_DRYRUN_H
#define PCD_DRYRUN_H

#include <stdbool.h>
#include <stdio.h>

#include "plan.h"
#include "store.h"

/* A key of the last publish that this one would not have. */
struct dry_stale {
	const struct entry	*e;		/* the record's */
	unsigned		 absent;	/* full refreshes, this one
						   included if it counts */
	bool			 deleted;	/* by this refresh */
};

/* A site the shrink guard would hold. */
struct dry_held {
	const char	*domain;
	long long	 before;	/* programs of the last publish */
	size_t		 now;		/* programs this refresh obtained */
};

/* What a publish would do (all borrowed). */
struct dry_report {
	const struct plan	*plan;
	const struct dry_stale	*stale;
	size_t			 nstale;
	bool			 counts;	/* this refresh counts absences */
	int			 stale_after;
	long			 refresh_interval_ms;
	const struct dry_held	*held;
	size_t			 nheld;
	double			 max_shrink;
	const char		*diff;		/* a key to compare, or NULL */
};

/*
 * Read every key of the plan from the cache and print, on out, each key
 * that would be written (new or changed: family, bytes, key), deleted or
 * kept stale (with its count), each site held, a table per family, and the
 * diff asked for.  0, or -1 if a server could not be read (the comparison
 * is then incomplete, and says so).
 */
int	dryrun_print(struct store *, const struct dry_report *, FILE *out);

#endif
