/*
 * lease.h: several hosts, one writer (operations.md: Several hosts).
 *
 * With [lease] enabled, a daemon writes to the cache only while it holds a
 * lease kept in the cache itself: a key (through the key function) on the
 * server the key is placed on, whose value is the holder's id (hostname,
 * pid and a random number).  memcached: taken with add (exptime = ttl),
 * renewed with gets + cas, released with a checked delete.  The holder
 * renews at a third of the ttl; one that has not renewed for two thirds
 * of it is no longer valid and stops writing at once, before anyone else
 * can have taken the lease.  The others try to take it at the same pace.
 * If the lease's server fails, the lease moves with the key's placement
 * (or is retaken when the server returns).
 *
 * The lease only decides who writes: the daemon asks lease_valid() before
 * a refresh, a repair, and the writer thread before every batch it sends
 * (so lease_valid is thread-safe: the rest runs on the loop).  Events:
 * lease_acquired, lease_lost, lease_released.
 */
#ifndef PCD_LEASE_H
#define PCD_LEASE_H

#include <stdbool.h>

#include "config.h"
#include "keys.h"
#include "store.h"

struct event_base;
struct lease;

/* The lease was taken (held true) or lost (false). */
typedef void	(*lease_cb)(bool held, void *arg);

/* NULL when the configuration does not enable the lease. */
struct lease	*lease_new(struct event_base *, const struct cfg *,
		    struct store *, const struct keyfn *, lease_cb, void *arg);
/*
 * Another store or key function (SIGHUP): st is borrowed until the next
 * call; the old store must still be open.  If the lease moves (another
 * backend, server or wire key), a lease held is released on the old store
 * first (lease_released reason=reload: that store's daemons take over at
 * once), the callback says held=false (stand by: nothing is written to
 * the new store), and the lease is tried there on the next turn of the
 * loop.  The same server and key: the lease stays held.  [lease] enabled
 * and ttl need a restart.
 */
void		 lease_configure(struct lease *, struct store *,
		    const struct keyfn *, const char *key);
/* Release the lease if it is held (clean shutdown), and free. */
void		 lease_free(struct lease *);
/* Try to take the lease now, then keep trying or renewing. */
void		 lease_start(struct lease *);
/* Whether this daemon holds the lease and may write now (any thread). */
bool		 lease_valid(const struct lease *);
/* Whether another daemon held it at the last try (stand-by readiness). */
bool		 lease_held_elsewhere(const struct lease *);

#endif
