/*
 * monitor.h: keep what the snapshot says in memcached (design.md:
 * Self-healing).
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
 * and both are rewritten; cache_verified ends each pass.  Every rewrite
 * runs on the writer thread (wthread.h), follows publish's phases
 * (details, indexes, site lists, each ended by a round trip) and ends
 * with cache_repaired, logged on the loop once it is done.  While the
 * writer is busy (a publish holds it), repairs wait for it and verify
 * passes pause.  Values too big for a server are left out: publish could
 * not write them either, and the old value stays.
 *
 * Nothing here contacts Discovery.  libmemcached blocks, so each read is
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
/* The writer thread repairs go through (borrowed; set before start). */
struct wthread;
void		 monitor_set_writer(struct monitor *, struct wthread *);
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
 * was down or lost its sentinels.  false while idle or not started.  Loop
 * only: the daemon asks it for every server when a publish starts and
 * passes the answers in state_publish_opts (state.h).
 */
bool		 monitor_confirmed(struct monitor *, size_t i);
/*
 * Re-publish every entry of the snapshot (SIGUSR1), on the writer thread
 * now or once a publish lets it go.  0, or -1 if there is no snapshot or
 * this daemon stands by (logged).
 */
int		 monitor_repair_all(struct monitor *, const char *reason);

/*
 * For the reader watch (rwatch.h), which finds keys missing without a
 * poll.  Put back entry ids[k] of the current snapshot on server
 * srv[k] (k < n) through the writer thread and the gate; its
 * cache_repaired (with reason) says how it went.  0 once queued, or -1
 * if there is no snapshot, the monitor is idle, or a publish holds the
 * writer (nothing queued: the ids are of the record it replaces).
 */
int		 monitor_repair_keys(struct monitor *, const size_t *ids,
		    const size_t *srv, size_t n, const char *reason);
/*
 * Server i has lost what it held (its watch came back to another pid or
 * run_id, or the LMS missed many keys at once): cache_empty_detected with
 * reason and the server's stats, read now (so that the next check does
 * not take it for another restart), then every key it owns re-published.
 */
void		 monitor_server_lost(struct monitor *, size_t i,
		    const char *reason);

/*
 * Compare the cache with snap, for --verify: one line per key missing or
 * different, per server unreachable, and a summary, on out.  0 when the
 * cache holds every value, 1 otherwise.
 */
int		 monitor_compare(struct store *, const struct snapshot *,
		    FILE *out);

#endif
