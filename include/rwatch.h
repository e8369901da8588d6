/*
 * rwatch.h: the cache as the LMS sees it ([daemon] reader_watch).
 *
 * One watch per cache server: memcached's `watch fetchers evictions
 * connevents` stream (mcwatch.h), or Redis's keymiss and evicted keyspace
 * notifications (rdwatch.h).  Every read of a key is classified against
 * the last publish (readers.h; the table is this module's, rebuilt when
 * the snapshot changes):
 *
 *   hit      memcached found it (Redis publishes no hits): counted;
 *   lost     a miss on a key the snapshot holds on that server: counted,
 *            and written back from the snapshot through the monitor's
 *            repair (the writer, gated by the lease), batched: a repair
 *            runs RWATCH_BATCH_MS after the first miss of a batch;
 *   absent   a miss on a key of the nine families that the publish does
 *            not hold (a run or an org in no program): counted, never
 *            written;
 *   foreign  anything else (sessions, other prefixes): ignored.
 *
 * The daemon's own reads and writes never count: memcached's lines of
 * the connections that announced themselves (store_announce), Redis's
 * keymiss events the store said it was about to cause (store_set_reads).
 * An eviction of a published key is cache_evicted and written back like
 * a lost miss.  reader_miss and cache_evicted are logged at most once a
 * second while they happen; skipped lines at most once a minute.
 *
 * A watch that comes back to a server whose pid or uptime (memcached) or
 * run_id (Redis) says it restarted, or RWATCH_BURST lost misses on one
 * server within a second, is monitor_server_lost(): cache_empty_detected
 * and every key it owns re-published at once.  The monitor's polling
 * stays: where watching is unavailable (reader_watch = off, memcached -W,
 * a Redis without notifications) it is what notices.
 */
#ifndef PCD_RWATCH_H
#define PCD_RWATCH_H

#include "config.h"
#include "keys.h"
#include "monitor.h"
#include "snapshot.h"
#include "store.h"

#define RWATCH_BATCH_MS		10
#define RWATCH_BURST		50

struct event_base;
struct rwatch;

/* mon (borrowed) does the repairs. */
struct rwatch	*rwatch_new(struct event_base *, struct monitor *);
void		 rwatch_free(struct rwatch *);
/*
 * After every change of configuration (st and kf borrowed until the next
 * call): another store, key function or reader_watch starts the watches
 * again (none with reader_watch = off).
 */
void		 rwatch_configure(struct rwatch *, const struct cfg *,
		    struct store *, const struct keyfn *);
/* What the cache should hold (borrowed until the next call; NULL: none). */
void		 rwatch_set_snapshot(struct rwatch *, const struct snapshot *);

#endif
