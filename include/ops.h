/*
 * ops.h: what operators see of the daemon (operations.md: Observe): READY=1,
 * STATUS= and the watchdog for systemd, and the HTTP listener's /readyz and
 * the series /metrics adds to metrics_render()'s.
 *
 * READY=1 says the daemon runs (its loop, with a valid configuration),
 * not that the cache holds data: that is /readyz's, programs_cached_ready
 * and STATUS='s.  The daemon says what happens (a refresh runs or ended,
 * something real is in the cache); this module decides what that means
 * for readiness:
 * ready when the last publish or repair is younger than three refresh
 * intervals and every cache server answered when last used; a stand-by
 * (another daemon holds the lease) when someone holds the lease and every
 * site's list is in the cache.  Nothing here writes to the cache.
 */
#ifndef PCD_OPS_H
#define PCD_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "keys.h"
#include "lease.h"
#include "metrics.h"
#include "store.h"

struct event_base;
struct ops;

/* once: a one-shot run (no listener, no systemd messages). */
struct ops	*ops_new(struct event_base *, bool once);
void		 ops_free(struct ops *);
/*
 * What readiness is judged on (borrowed until the next call), and the
 * listener: started, moved or stopped as cfg says.  -1 if a listener
 * could not start (logged; the old one, if any, stays).
 */
int		 ops_configure(struct ops *, const struct cfg *,
		    struct store *, const struct keyfn *, struct lease *);
/*
 * The watchdog and the STATUS= timer, and READY=1: the daemon runs with a
 * valid configuration and its listener (not in one-shot runs).
 */
void		 ops_start(struct ops *);
/* A refresh started (true) or its result is in (false). */
void		 ops_refreshing(struct ops *, bool);
/* A refresh ended with this outcome, and the cache has programs. */
void		 ops_refreshed(struct ops *, enum metrics_outcome,
		    size_t programs);
/*
 * Something real is in the cache: a publish, a repair, or a snapshot file
 * that holds one.  Each restarts /readyz's clock.
 */
void		 ops_published(struct ops *);
/*
 * A reload (SIGHUP) read the configuration (error NULL), or did not:
 * STATUS= leads with error ("FILE line N: KEY: ERROR") until one does.
 */
void		 ops_reloaded(struct ops *, const char *error);
/* Say the state of things in STATUS= now. */
void		 ops_status(struct ops *);

#endif
