/*
 * show.h: --show KEY, one key looked at from both sides (read-only).
 *
 * KEY is an LMS cache key of one of the nine families
 * ("course-programs-course-v1:edX+DemoX+1T2025", "program-UUID", ...) or a
 * course run key alone, which means its course-programs key.  Printed: the
 * key's family, its wire key and the servers the LMS reads it from; what
 * each of them holds, decoded (a pickle through unpickle.h, raw JSON as
 * it is); what the snapshot file says the last publish put there; whether
 * the two agree; and for a program, which index keys of the snapshot list
 * it, and whether the cache's copy of each lists it too.
 *
 * Nothing is written, locked or created: the snapshot is only read, the
 * servers only asked (gets).  Text for people, or with json one JSON
 * object (jansson) for scripts.
 */
#ifndef PCD_SHOW_H
#define PCD_SHOW_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

/*
 * The LMS key KEY stands for (caller frees), or NULL if it names nothing
 * (empty, or a family prefix with nothing after it).
 */
char	*show_key_of(const char *arg);

/*
 * Look at key (as show_key_of makes it) in the cache and the snapshot of
 * cfg, printing on out.  0 when they agree (the same value, or neither has
 * the key), 1 when they do not or a server could not be read.
 */
int	 show_key(const struct cfg *, const char *key, bool json, FILE *out);

#endif
