/*
 * wthread.c: the writer thread's jobs, on the pool's POOL_WRITE thread.
 *
 * What the loop and the thread share: the job (handed over by
 * pool_submit, handed back through the pool's done list, both under the
 * pool's mutex), the thread's store (used by the thread only while a job
 * runs, by the loop only when none can: wthread_set_store and _free wait
 * first), and the stop flag (atomic).  What the thread's store kept is
 * taken out of it on the thread at the end of each job and replayed on
 * the loop, so the loop never reads the store while the next job uses it.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool.h"
#include "util.h"
#include "wthread.h"

struct wthread {
	struct pool		*pool;
	struct store		*own;		/* the thread's */
	struct store		*loop;		/* borrowed */
	atomic_bool		 stopping;
	uint64_t		 reconnect;	/* for the next job */
	bool			 retry;
	bool			 announce;	/* wthread_set_announce */
	size_t			 pending;	/* done not run yet */
	const void		*claim;
	void			(*idle)(void *);
	void			*idle_arg;
	char			 hook_what[16];	/* PCD_TEST_STOP_AT */
	long			 hook_batch;
};

struct wjob {
	struct wthread			*w;
	const char			*what;
	const struct writer_gate	*gate;
	wthread_work_cb			 work;
	wthread_done_cb			 done;
	void				*arg;
	uint64_t			 reconnect;
	bool				 retry;
	bool				 announce;
	struct store_log		*log;		/* the store's, after */
	long				 batches;	/* gate asked */
	bool				 stopped;
};

/* Read PCD_TEST_STOP_AT=WHAT:N (see wthread.h). */
static void
hook_read(struct wthread *w)
{
	const char	*e = getenv("PCD_TEST_STOP_AT"), *colon;
	size_t		 len;

	if (e == NULL || (colon = strchr(e, ':')) == NULL)
		return;
	len = (size_t)(colon - e);
	if (len >= sizeof w->hook_what)
		return;
	memcpy(w->hook_what, e, len);
	w->hook_what[len] = '\0';
	w->hook_batch = strtol(colon + 1, NULL, 10);
}

/* The test hook: stop the process here, then wait for wthread_stop. */
static void
hook_stop(struct wjob *j)
{
	struct wthread	*w = j->w;
	struct timespec	 ts = { 0, 10 * 1000 * 1000 };
	int		 k;

	if (w->hook_batch <= 0 || strcmp(j->what, w->hook_what) != 0 ||
	    j->batches != w->hook_batch)
		return;
	raise(SIGSTOP);
	for (k = 0; k < 1000 && !atomic_load(&w->stopping); k++)
		nanosleep(&ts, NULL);
}

/* The writer's gate, on the thread: closed once stopping, else the job's. */
static bool
job_may_write(void *arg)
{
	struct wjob	*j = arg;

	j->batches++;
	hook_stop(j);
	if (atomic_load(&j->w->stopping)) {
		j->stopped = true;
		return false;
	}
	return j->gate == NULL || j->gate->may_write(j->gate->arg);
}

/* On the thread: the job, with the store's notes taken out after it. */
static void
job_work(void *arg)
{
	struct wjob		*j = arg;
	struct wthread		*w = j->w;
	struct writer_gate	 g = { job_may_write, j };
	size_t			 i;

	if (atomic_load(&w->stopping)) {
		j->stopped = true;
		return;
	}
	for (i = 0; i < store_nservers(w->own); i++)
		if ((j->reconnect >> i & 1) != 0)
			store_reconnect(w->own, i);
	if (j->retry)
		store_retry_now(w->own);
	store_set_announce(w->own, j->announce);
	j->work(w->own, &g, j->arg);
	j->log = store_take_log(w->own);
}

/* On the loop: say what the store saw, then the caller's done. */
static void
job_done(void *arg, bool cancelled)
{
	struct wjob	*j = arg;
	struct wthread	*w = j->w;

	store_replay(j->log, w->loop);
	w->pending--;
	j->done(j->arg, j->stopped || cancelled);
	free(j);
	if (!wthread_busy(w) && w->idle != NULL)
		w->idle(w->idle_arg);
}

struct wthread *
wthread_new(struct pool *pool, struct store *own, struct store *loop)
{
	struct wthread	*w = xcalloc(1, sizeof *w);

	w->pool = pool;
	w->own = own;
	w->loop = loop;
	atomic_init(&w->stopping, false);
	store_defer(own);
	hook_read(w);
	return w;
}

void
wthread_free(struct wthread *w)
{
	if (w == NULL)
		return;
	wthread_wait(w);
	store_free(w->own);
	free(w);
}

void
wthread_set_store(struct wthread *w, struct store *own, struct store *loop)
{
	wthread_wait(w);
	if (own != w->own) {
		store_free(w->own);
		w->own = own;
		store_defer(own);
	}
	w->loop = loop;
	w->reconnect = 0;
}

void
wthread_set_announce(struct wthread *w, bool on)
{
	w->announce = on;
}

void
wthread_submit(struct wthread *w, const char *what,
    const struct writer_gate *gate, wthread_work_cb work,
    wthread_done_cb done, void *arg)
{
	struct wjob	*j = xcalloc(1, sizeof *j);

	j->w = w;
	j->what = what;
	j->gate = gate;
	j->work = work;
	j->done = done;
	j->arg = arg;
	j->reconnect = w->reconnect;
	j->retry = w->retry;
	j->announce = w->announce;
	w->reconnect = 0;
	w->retry = false;
	w->pending++;
	if (w->pool == NULL) {
		job_work(j);
		job_done(j, false);
		return;
	}
	pool_submit(w->pool, POOL_WRITE, w, job_work, job_done, j);
}

void
wthread_claim(struct wthread *w, const void *owner)
{
	w->claim = owner;
}

void
wthread_release(struct wthread *w, const void *owner)
{
	if (w->claim != owner)
		return;
	w->claim = NULL;
	if (!wthread_busy(w) && w->idle != NULL)
		w->idle(w->idle_arg);
}

bool
wthread_busy(const struct wthread *w)
{
	return w != NULL && (w->claim != NULL || w->pending > 0);
}

void
wthread_on_idle(struct wthread *w, void (*cb)(void *), void *arg)
{
	w->idle = cb;
	w->idle_arg = arg;
}

void
wthread_reconnect(struct wthread *w, size_t i)
{
	if (i < 64)
		w->reconnect |= (uint64_t)1 << i;
}

void
wthread_retry_now(struct wthread *w)
{
	w->retry = true;
}

void
wthread_stop(struct wthread *w)
{
	if (w != NULL)
		atomic_store(&w->stopping, true);
}

bool
wthread_stopping(const struct wthread *w)
{
	return atomic_load(&w->stopping);
}

void
wthread_wait(struct wthread *w)
{
	/* A done may submit the next job of a sequence: until none is left. */
	while (w != NULL && w->pending > 0 && w->pool != NULL)
		pool_wait(w->pool, POOL_WRITE);
}
