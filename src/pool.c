/*
 * pool.c: typed jobs on threads, whose results come back to the loop.
 *
 * One mutex guards every type's queue of jobs to run and the one list of
 * jobs done; a thread that finds the done list empty wakes the loop
 * through an eventfd (libevent itself is not told to be thread-safe).  The
 * loop takes done jobs one at a time, so that a done callback may cancel,
 * submit or wait.
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "pool.h"
#include "util.h"

struct job {
	struct job	*next;
	enum pool_type	 type;
	const void	*owner;
	pool_work_cb	 work;
	pool_done_cb	 done;
	void		*arg;
};

/* A FIFO of jobs. */
struct jobq {
	struct job	*head;
	struct job	*tail;
};

/* One thread: its type, and the job it runs (or NULL). */
struct worker {
	struct pool	*pool;
	enum pool_type	 type;
	pthread_t	 thread;
	struct job	*running;
};

struct pool {
	pthread_mutex_t	 mu;
	pthread_cond_t	 more[POOL_TYPES];	/* queued, or stop */
	pthread_cond_t	 idle;		/* a job finished running */
	struct jobq	 todo[POOL_TYPES];
	struct jobq	 done;
	bool		 stop;
	int		 efd;
	struct event	*ev;
	struct worker	*workers;
	int		 nworkers;
	int		 nthreads[POOL_TYPES];
	size_t		 pending[POOL_TYPES];	/* done not run (loop) */
};

static void
jobq_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct job *
jobq_pop(struct jobq *q)
{
	struct job	*j = q->head;

	if (j != NULL && (q->head = j->next) == NULL)
		q->tail = NULL;
	return j;
}

/* Move the jobs that match (an owner, a type) from q to out. */
static void
jobq_take(struct jobq *q, bool (*match)(const struct job *, const void *),
    const void *arg, struct jobq *out)
{
	struct job	*j, *keep = NULL, *keeptail = NULL, *next;

	for (j = q->head; j != NULL; j = next) {
		next = j->next;
		if (match(j, arg)) {
			jobq_push(out, j);
			continue;
		}
		j->next = NULL;
		if (keeptail != NULL)
			keeptail->next = j;
		else
			keep = j;
		keeptail = j;
	}
	q->head = keep;
	q->tail = keeptail;
}

static bool
of_owner(const struct job *j, const void *owner)
{
	return owner == NULL || j->owner == owner;
}

static bool
of_type(const struct job *j, const void *type)
{
	return j->type == *(const enum pool_type *)type;
}

/* Tell the loop that the done list is no longer empty. */
static void
wake_loop(struct pool *p)
{
	uint64_t	one = 1;

	while (write(p->efd, &one, sizeof one) == -1 && errno == EINTR)
		;	/* EAGAIN: the counter is already non-zero */
}

/* A thread: run queued jobs of its type until told to stop. */
static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	struct pool	*p = w->pool;
	struct jobq	*q = &p->todo[w->type];
	struct job	*j;
	bool		 was_empty;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && q->head == NULL)
			pthread_cond_wait(&p->more[w->type], &p->mu);
		if (p->stop)
			break;
		j = jobq_pop(q);
		w->running = j;
		pthread_mutex_unlock(&p->mu);

		j->work(j->arg);

		pthread_mutex_lock(&p->mu);
		w->running = NULL;
		was_empty = p->done.head == NULL;
		jobq_push(&p->done, j);
		if (was_empty)
			wake_loop(p);
		pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Run done jobs' callbacks on the loop (cancelled: they were dropped). */
static void
deliver(struct pool *p, struct jobq *q, bool cancelled)
{
	struct job	*j;

	while ((j = jobq_pop(q)) != NULL) {
		p->pending[j->type]--;
		j->done(j->arg, cancelled);
		free(j);
	}
}

/* The loop's side: hand finished jobs to their done, one at a time. */
static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	struct pool	*p = arg;
	struct jobq	 one;
	uint64_t	 n;

	(void)what;
	if (read(fd, &n, sizeof n) == -1 && errno != EAGAIN)
		log_event(LOG_ERR, "internal_error", "op=pool_read error=%s",
		    "the worker pool's eventfd cannot be read");
	for (;;) {
		one.head = one.tail = NULL;
		pthread_mutex_lock(&p->mu);
		if ((one.head = jobq_pop(&p->done)) != NULL) {
			one.tail = one.head;
			one.head->next = NULL;
		}
		pthread_mutex_unlock(&p->mu);
		if (one.head == NULL)
			break;
		deliver(p, &one, false);
	}
}

int
pool_size(int setting)
{
	long	n;

	if (setting >= 0)
		return setting;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > POOL_AUTO_MAX ? POOL_AUTO_MAX : (int)n;
}

/* The index after the last thread of type t (threads are by type). */
static int
thread_end(const struct pool *p, int t)
{
	int	u, end = 0;

	for (u = 0; u <= t; u++)
		end += p->nthreads[u];
	return end;
}

struct pool *
pool_new(struct event_base *base, int parse_threads)
{
	struct pool	*p;
	struct worker	*w;
	int		 i, rc, t;

	p = xcalloc(1, sizeof *p);
	pthread_mutex_init(&p->mu, NULL);
	for (t = 0; t < POOL_TYPES; t++)
		pthread_cond_init(&p->more[t], NULL);
	pthread_cond_init(&p->idle, NULL);
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("eventfd");
	p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, on_done, p);
	event_add(p->ev, NULL);
	p->nthreads[POOL_PARSE] = parse_threads >= 2 ? parse_threads : 0;
	p->nthreads[POOL_SAVE] = 1;
	p->nthreads[POOL_WRITE] = 1;
	for (t = 0; t < POOL_TYPES; t++)
		p->nworkers += p->nthreads[t];
	p->workers = xcalloc((size_t)p->nworkers, sizeof *p->workers);
	for (i = 0, t = 0; i < p->nworkers; i++) {
		w = &p->workers[i];
		w->pool = p;
		while (i >= thread_end(p, t))
			t++;
		w->type = (enum pool_type)t;
		if ((rc = pthread_create(&w->thread, NULL, worker_main,
		    w)) != 0) {
			errno = rc;
			fatal("pthread_create");
		}
	}
	return p;
}

int
pool_threads(const struct pool *p, enum pool_type t)
{
	return p != NULL ? p->nthreads[t] : 0;
}

size_t
pool_pending(const struct pool *p, enum pool_type t)
{
	return p != NULL ? p->pending[t] : 0;
}

void
pool_submit(struct pool *p, enum pool_type t, const void *owner,
    pool_work_cb work, pool_done_cb done, void *arg)
{
	struct job	*j = xcalloc(1, sizeof *j);

	j->type = t;
	j->owner = owner;
	j->work = work;
	j->done = done;
	j->arg = arg;
	p->pending[t]++;
	pthread_mutex_lock(&p->mu);
	jobq_push(&p->todo[t], j);
	pthread_cond_signal(&p->more[t]);
	pthread_mutex_unlock(&p->mu);
}

/* Whether a job that matches is running on a thread. */
static bool
running(const struct pool *p, bool (*match)(const struct job *,
    const void *), const void *arg)
{
	int	i;

	for (i = 0; i < p->nworkers; i++)
		if (p->workers[i].running != NULL &&
		    match(p->workers[i].running, arg))
			return true;
	return false;
}

void
pool_cancel(struct pool *p, const void *owner)
{
	struct jobq	 out = { NULL, NULL };
	int		 t;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	for (t = 0; t < POOL_TYPES; t++)
		jobq_take(&p->todo[t], of_owner, owner, &out);
	while (running(p, of_owner, owner))
		pthread_cond_wait(&p->idle, &p->mu);
	jobq_take(&p->done, of_owner, owner, &out);
	pthread_mutex_unlock(&p->mu);
	deliver(p, &out, true);
}

void
pool_wait(struct pool *p, enum pool_type t)
{
	struct jobq	 out = { NULL, NULL };

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	while (p->todo[t].head != NULL || running(p, of_type, &t))
		pthread_cond_wait(&p->idle, &p->mu);
	jobq_take(&p->done, of_type, &t, &out);
	pthread_mutex_unlock(&p->mu);
	deliver(p, &out, false);
}

void
pool_free(struct pool *p)
{
	int	i, t;

	if (p == NULL)
		return;
	pool_cancel(p, NULL);
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	for (t = 0; t < POOL_TYPES; t++)
		pthread_cond_broadcast(&p->more[t]);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nworkers; i++)
		pthread_join(p->workers[i].thread, NULL);
	event_free(p->ev);
	close(p->efd);
	pthread_cond_destroy(&p->idle);
	for (t = 0; t < POOL_TYPES; t++)
		pthread_cond_destroy(&p->more[t]);
	pthread_mutex_destroy(&p->mu);
	free(p->workers);
	free(p);
}
