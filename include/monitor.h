/*
 * monitor.h: keep what the snapshot says in memcached (SPEC §5).
 *
 * Every check_interval (the first at start-up), per server: its stats
 * (memcached's pid, Redis's run_id; the uptime) and a few sentinel keys
 * (the site lists it holds, else its last few keys).  A server whose pid
 * or run_id changed or whose uptime went back has restarted, and
 * one that was down since start-up may hold nothing: cache_empty_detected,
 * then every key it owns is re-published from the snapshot at once.  A
 * server whose sentinels are missing (flush_all, eviction) is
 * cache_empty_detected too, and verified at once.
 *
 * Every verify_interval, after each publish and when a server comes back,
 * every key of the snapshot is asked for (batched multi-gets on the
 * connection that writes, so no write still in flight is missed), 1,000
 * keys (or 2 MB of values) per turn of the event loop so that the loop
 * keeps serving; a pass asked for while one runs follows it, and one
 * whose snapshot a publish replaced stops (the publish asks for its own),
 * and so does one of a monitor gone idle.  Missing keys are logged as
 * cache_miss, keys holding other bytes than the snapshot says as
 * cache_diverged (another writer: a former lease holder that was paused
 * and sent what it had queued, a cache_programs cron job; counts by
 * family, a few examples, programs_cached_cache_diverged_total{family}),
 * and both are rewritten; cache_verified ends each pass.  A pass never
 * overlaps this daemon's own writes: a publish has written and
 * round-tripped every batch before its snapshot is the monitor's, and
 * a pass whose snapshot changed is dropped.  Every rewrite follows publish's phases (details, indexes,
 * site lists, each ended by a round trip) and ends with cache_repaired.
 * Values too big for a server are left out: publish could not write them
 * either, and the old value stays.
 *
 * Nothing here contacts Discovery.  libmemcached blocks, so each call is
 * bounded by the memcached timeouts; a down server is skipped (logged once
 * by the store) and tried again at the next check.
 */
#ifndef PCD_MONITOR_H
#define PCD_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "snapshot.h"
#include "store.h"
#include "writer.h"

struct event_base;
struct monitor;

struct monitor	*monitor_new(struct event_base *);
void		 monitor_free(struct monitor *);
/*
 * The servers to watch (borrowed) and how often, after every change of
 * configuration; another store forgets what was known of the old servers.
 */
void		 monitor_configure(struct monitor *, struct store *,
		    long check_ms, long verify_ms);
/* What the cache should hold (borrowed until the next call; NULL: none). */
void		 monitor_set_snapshot(struct monitor *,
		    const struct snapshot *);
/*
 * Called after every repair that put all its keys back (cache_repaired
 * with no keys_failed): /readyz counts a repair as a publish.
 */
void		 monitor_on_repair(struct monitor *, void (*)(void *), void *);
/* Ask gate (borrowed) before every repair batch (the writer's lease). */
void		 monitor_set_gate(struct monitor *,
		    const struct writer_gate *);
/*
 * Idle: a stand-by daemon's monitor does nothing (another one holds the
 * lease).  Waking up checks every server and verifies at once.
 */
void		 monitor_set_idle(struct monitor *, bool);
/* Start the timers, with a check and a verification at once. */
void		 monitor_start(struct monitor *);
/* Verify every key on the next turn of the loop (after a publish). */
void		 monitor_verify_soon(struct monitor *);
/*
 * Whether server i holds what the snapshot says, asked now: a check of it
 * (stats and sentinels, as every check_interval; a restart found is
 * cache_empty_detected and repaired at once, as always), and its keys
 * found by a verify pass or written by a repair since it last restarted,
 * was down or lost its sentinels.  false while idle or not started.  The
 * state asks this before it skips a value as unchanged (state.h).
 */
bool		 monitor_confirmed(struct monitor *, size_t i);
/*
 * Re-publish every entry of the snapshot now (SIGUSR1).  0, or -1 if some
 * could not be written or there is no snapshot (logged).
 */
int		 monitor_repair_all(struct monitor *, const char *reason);

/*
 * Compare the cache with snap, for --verify: one line per key missing or
 * different, per server unreachable, and a summary, on out.  0 when the
 * cache holds every value, 1 otherwise.
 */
int		 monitor_compare(struct store *, const struct snapshot *,
		    FILE *out);

#endif
