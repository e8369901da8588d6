/*
 * dryrun.h: --dry-run (SPEC §8): fetch and build, write nothing, and say
 * what a publish would change.
 */
#ifndef PCD_DRYRUN_H
#define PCD_DRYRUN_H

#include <stdio.h>

#include "plan.h"
#include "store.h"

/*
 * Read every key of the plan from the cache and print, on out, each key
 * that would be written (new or changed, family, bytes, key), then a table
 * per family.  0, or -1 if a server could not be read (the comparison is
 * then incomplete, and says so).
 */
int	dryrun_print(struct store *, const struct plan *, FILE *out);

#endif
