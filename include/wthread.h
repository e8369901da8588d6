/*
 * wthread.h: the writer thread, where every write to the cache happens.
 *
 * The loop never waits for memcached or Redis to take a write: a
 * publish's plan and phases, every repair and the deletion of stale keys
 * run as jobs on the one POOL_WRITE thread (pool.h), which owns a store of
 * its own made from the same configuration (libmemcached and hiredis
 * handles are not thread-safe).  The loop keeps its store for the
 * monitor's reads, the lease, /readyz, --verify and --dry-run.
 *
 * A job is two functions.  work runs on the writer thread with the
 * thread's store and a gate to give the writer: the caller's gate (the
 * lease), closed for good once wthread_stop() is called.  done runs on
 * the loop afterwards, once what the thread's store saw (servers down and
 * back, refused writes, the counts) has been logged and counted there
 * (store_replay).  work logs nothing and touches nothing the loop owns
 * but what its caller handed it and leaves alone until done.  Jobs run one
 * at a time, in the order submitted.
 *
 * A sequence of jobs that nothing may come between (a publish's phases)
 * is claimed: while the writer is claimed or has a job, it is busy, and
 * whoever waits for it (the monitor's repairs) hears from the idle
 * callback when it is not.
 *
 * Without a pool (unit tests), work and done run in wthread_submit().
 *
 * A test hook: PCD_TEST_STOP_AT=WHAT:N stops the process (SIGSTOP) when
 * the N-th batch of a job called WHAT ("publish", "repair", "delete") is
 * about to be sent, then holds that batch until wthread_stop() (at most
 * 10 s), so that a test can send SIGTERM at an exact point.
 */
#ifndef PCD_WTHREAD_H
#define PCD_WTHREAD_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"
#include "writer.h"

struct pool;
struct wthread;

/* Runs on the writer thread: st is the thread's store. */
typedef void	(*wthread_work_cb)(struct store *st,
		    const struct writer_gate *gate, void *arg);
/*
 * Runs on the loop once work has run.  stopped: wthread_stop() was called
 * before or while it ran (work may not have run at all, or ended at a
 * closed gate).
 */
typedef void	(*wthread_done_cb)(void *arg, bool stopped);

/*
 * A writer on pool's POOL_WRITE thread (pool NULL: in the caller) writing
 * through own (taken, and made deferred: store_defer), replaying what own
 * saw on loop (borrowed).
 */
struct wthread	*wthread_new(struct pool *, struct store *own,
		    struct store *loop);
/* Wait for every job (wthread_wait), then free own. */
void		 wthread_free(struct wthread *);
/*
 * Other stores (a reload that changed the servers): waits for every job,
 * then frees the old own and takes this one.
 */
void		 wthread_set_store(struct wthread *, struct store *own,
		    struct store *loop);
/*
 * Whether the thread's store announces its connections (store_announce)
 * from the next job on: while the reader watch runs on memcached, the
 * item_get a set of this daemon logs is its own, not a reader's miss.
 */
void		 wthread_set_announce(struct wthread *, bool on);
/*
 * Queue a job called what (a literal: the test hook's name).  gate and
 * arg are borrowed until done has run.
 */
void		 wthread_submit(struct wthread *, const char *what,
		    const struct writer_gate *gate, wthread_work_cb work,
		    wthread_done_cb done, void *arg);
/* Claim the writer for a sequence of jobs; release it (idle callback). */
void		 wthread_claim(struct wthread *, const void *owner);
void		 wthread_release(struct wthread *, const void *owner);
/* Claimed, or a job submitted whose done has not run. */
bool		 wthread_busy(const struct wthread *);
/* Called on the loop each time the writer stops being busy. */
void		 wthread_on_idle(struct wthread *, void (*)(void *), void *);
/*
 * Before the next job, drop the thread's connection to server i (it
 * restarted: see store_reconnect), or let it try servers that are down at
 * once (store_retry_now).
 */
void		 wthread_reconnect(struct wthread *, size_t i);
void		 wthread_retry_now(struct wthread *);
/*
 * Shutting down: the gate closes for good, the job running ends at its
 * next batch (the one in flight is finished or dropped, never half
 * recorded), and later jobs do not run (their done says stopped).
 */
void		 wthread_stop(struct wthread *);
bool		 wthread_stopping(const struct wthread *);
/* Wait until no job is left; each one's done runs now. */
void		 wthread_wait(struct wthread *);

#endif
