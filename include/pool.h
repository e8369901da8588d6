/*
 * pool.h: the one background mechanism: typed jobs on threads, whose
 * results come back to the event loop (the model is redis's bio.c).
 *
 *	POOL_PARSE	parsing, recording and encoding a detail (detail.c),
 *			on the `workers` threads (none: the caller parses
 *			on the loop)
 *	POOL_SAVE	writing and fsyncing the snapshot file (state.c), on
 *			one thread of its own, one save after the other
 *	POOL_WRITE	every write to the cache (wthread.c: a publish's
 *			plan and phases, repairs, deletes), on one thread of
 *			its own with a store of its own, one job after the
 *			other in the order submitted
 *
 * A job is two functions: work runs on a thread of its type and touches
 * nothing the loop owns (no log_event, no metrics, no libevent, no shared
 * record's reference count other than through program_ref/unref); done
 * runs on the loop thread afterwards, in order of completion, and is where
 * the result is used, logged and counted.  Jobs are tagged with an owner:
 * pool_cancel() ends every job of one owner (those queued are never run)
 * and calls their done with cancelled set, before it returns.
 * pool_wait() waits until no job of a type is pending, running the done
 * of each there and then.
 *
 * Results come back through an eventfd watched by the loop; libevent is
 * never called from a thread of the pool.
 */
#ifndef PCD_POOL_H
#define PCD_POOL_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct pool;

enum pool_type {
	POOL_PARSE,
	POOL_SAVE,
	POOL_WRITE,
	POOL_TYPES
};

/* Runs on a thread of the pool. */
typedef void	(*pool_work_cb)(void *arg);
/* Runs on the loop thread once work has run (or was cancelled). */
typedef void	(*pool_done_cb)(void *arg, bool cancelled);

/*
 * The number of parse threads the setting asks for: -1 (auto) is one per
 * online CPU, at most POOL_AUTO_MAX; fewer than 2 is none (parsing on the
 * loop, as it always could).
 */
#define POOL_AUTO_MAX	8
int		 pool_size(int setting);
/*
 * A pool on base with parse_threads for POOL_PARSE (fewer than 2: none),
 * one thread for POOL_SAVE and one for POOL_WRITE.  fatal if a thread
 * cannot be started (start-up only).
 */
struct pool	*pool_new(struct event_base *, int parse_threads);
/* Cancel every job (see pool_cancel) and stop the threads. */
void		 pool_free(struct pool *);
/* The threads of a type (0 for POOL_PARSE without workers). */
int		 pool_threads(const struct pool *, enum pool_type);
/*
 * Jobs of a type submitted whose done has not run yet (queued, running or
 * waiting for the loop): a caller that produces faster than the threads
 * consume bounds its memory by doing the work itself past a limit.
 */
size_t		 pool_pending(const struct pool *, enum pool_type);
/* Queue a job; arg is the caller's until done has run. */
void		 pool_submit(struct pool *, enum pool_type, const void *owner,
		    pool_work_cb, pool_done_cb, void *arg);
/*
 * End owner's jobs: those queued are dropped, those running are waited
 * for, and each one's done runs now with cancelled set.
 */
void		 pool_cancel(struct pool *, const void *owner);
/* Wait for every job of a type; each one's done runs now. */
void		 pool_wait(struct pool *, enum pool_type);

#endif
