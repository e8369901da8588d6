/*
 * pool.h: a few worker threads for the CPU work of a refresh (parsing,
 * recording and pickling a detail), so that the event loop only moves
 * bytes and schedules.
 *
 * A job is two functions: work runs on a worker thread and must touch
 * nothing the loop owns (no log_event, no metrics, no libevent, no shared
 * record's reference count other than through program_ref/unref); done
 * runs on the loop thread afterwards, in order of completion, and is
 * where the result is used, logged and counted.  Jobs are tagged with an
 * owner: pool_cancel() ends every job of one owner (those queued are
 * never run) and calls their done with cancelled set, before it returns.
 *
 * Results come back through an eventfd watched by the loop; libevent is
 * never called from a worker.
 */
#ifndef PCD_POOL_H
#define PCD_POOL_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct pool;

/* Runs on a worker thread. */
typedef void	(*pool_work_cb)(void *arg);
/* Runs on the loop thread once work has run (or was cancelled). */
typedef void	(*pool_done_cb)(void *arg, bool cancelled);

/*
 * The number of workers the setting asks for: -1 (auto) is one per online
 * CPU, at most POOL_AUTO_MAX.
 */
#define POOL_AUTO_MAX	8
int		 pool_size(int setting);
/*
 * nthreads workers on base.  NULL when nthreads < 2: the caller then does
 * the work on the loop, as it always did.  fatal if a thread cannot be
 * started (start-up only).
 */
struct pool	*pool_new(struct event_base *, int nthreads);
/* Cancel every job (see pool_cancel) and stop the threads. */
void		 pool_free(struct pool *);
int		 pool_threads(const struct pool *);
/*
 * Jobs submitted whose done has not run yet (queued, running or waiting
 * for the loop): a caller that produces faster than the workers consume
 * bounds its memory by doing the work itself past a limit.
 */
size_t		 pool_pending(const struct pool *);
/* Queue a job; arg is the caller's until done has run. */
void		 pool_submit(struct pool *, const void *owner, pool_work_cb,
		    pool_done_cb, void *arg);
/*
 * End owner's jobs: those queued are dropped, those running are waited
 * for, and each one's done runs now with cancelled set.
 */
void		 pool_cancel(struct pool *, const void *owner);

#endif
