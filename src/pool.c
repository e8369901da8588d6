/*
 * pool.c: worker threads whose results come back to the loop.
 *
 * One mutex guards the queue of jobs to run and the list of jobs done; a
 * worker that finds the done list empty wakes the loop through an eventfd
 * (libevent itself is not told to be thread-safe).  The loop takes done
 * jobs one at a time, so that a done callback may cancel or submit.
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

struct pool {
	pthread_mutex_t	 mu;
	pthread_cond_t	 more;		/* a job was queued, or stop */
	pthread_cond_t	 idle;		/* a job finished running */
	struct jobq	 todo;
	struct jobq	 done;
	struct job	**running;	/* per thread: its job, or NULL */
	bool		 stop;
	int		 efd;
	struct event	*ev;
	pthread_t	*threads;
	int		 nthreads;
	size_t		 pending;	/* submitted, done not run (loop) */
};

/* What a worker needs to know: its pool and its slot in running. */
struct worker {
	struct pool	*pool;
	int		 id;
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

/* Move owner's jobs (all if owner is NULL) from q to out. */
static void
jobq_take(struct jobq *q, const void *owner, struct jobq *out)
{
	struct job	*j, *keep = NULL, *keeptail = NULL, *next;

	for (j = q->head; j != NULL; j = next) {
		next = j->next;
		if (owner == NULL || j->owner == owner) {
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

/* Tell the loop that the done list is no longer empty. */
static void
wake_loop(struct pool *p)
{
	uint64_t	one = 1;

	while (write(p->efd, &one, sizeof one) == -1 && errno == EINTR)
		;	/* EAGAIN: the counter is already non-zero */
}

/* A worker: run queued jobs until told to stop. */
static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	struct pool	*p = w->pool;
	struct job	*j;
	bool		 was_empty;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->todo.head == NULL)
			pthread_cond_wait(&p->more, &p->mu);
		if (p->stop)
			break;
		j = jobq_pop(&p->todo);
		p->running[w->id] = j;
		pthread_mutex_unlock(&p->mu);

		j->work(j->arg);

		pthread_mutex_lock(&p->mu);
		p->running[w->id] = NULL;
		was_empty = p->done.head == NULL;
		jobq_push(&p->done, j);
		if (was_empty)
			wake_loop(p);
		pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->mu);
	free(w);
	return NULL;
}

/* The loop's side: hand finished jobs to their done, one at a time. */
static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	struct pool	*p = arg;
	struct job	*j;
	uint64_t	 n;

	(void)what;
	if (read(fd, &n, sizeof n) == -1 && errno != EAGAIN)
		log_event(LOG_ERR, "internal_error", "op=pool_read error=%s",
		    "the worker pool's eventfd cannot be read");
	for (;;) {
		pthread_mutex_lock(&p->mu);
		j = jobq_pop(&p->done);
		pthread_mutex_unlock(&p->mu);
		if (j == NULL)
			break;
		p->pending--;
		j->done(j->arg, false);
		free(j);
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

struct pool *
pool_new(struct event_base *base, int nthreads)
{
	struct pool	*p;
	struct worker	*w;
	int		 i, rc;

	if (nthreads < 2)
		return NULL;
	p = xcalloc(1, sizeof *p);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->more, NULL);
	pthread_cond_init(&p->idle, NULL);
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("eventfd");
	p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, on_done, p);
	event_add(p->ev, NULL);
	p->nthreads = nthreads;
	p->threads = xcalloc((size_t)nthreads, sizeof *p->threads);
	p->running = xcalloc((size_t)nthreads, sizeof *p->running);
	for (i = 0; i < nthreads; i++) {
		w = xcalloc(1, sizeof *w);
		w->pool = p;
		w->id = i;
		if ((rc = pthread_create(&p->threads[i], NULL, worker_main,
		    w)) != 0) {
			errno = rc;
			fatal("pthread_create");
		}
	}
	return p;
}

int
pool_threads(const struct pool *p)
{
	return p != NULL ? p->nthreads : 0;
}

size_t
pool_pending(const struct pool *p)
{
	return p != NULL ? p->pending : 0;
}

void
pool_submit(struct pool *p, const void *owner, pool_work_cb work,
    pool_done_cb done, void *arg)
{
	struct job	*j = xcalloc(1, sizeof *j);

	j->owner = owner;
	j->work = work;
	j->done = done;
	j->arg = arg;
	p->pending++;
	pthread_mutex_lock(&p->mu);
	jobq_push(&p->todo, j);
	pthread_cond_signal(&p->more);
	pthread_mutex_unlock(&p->mu);
}

/* Whether a job of owner (any if NULL) is running on a worker. */
static bool
owner_running(const struct pool *p, const void *owner)
{
	int	i;

	for (i = 0; i < p->nthreads; i++)
		if (p->running[i] != NULL && (owner == NULL ||
		    p->running[i]->owner == owner))
			return true;
	return false;
}

void
pool_cancel(struct pool *p, const void *owner)
{
	struct jobq	 out = { NULL, NULL };
	struct job	*j;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	jobq_take(&p->todo, owner, &out);
	while (owner_running(p, owner))
		pthread_cond_wait(&p->idle, &p->mu);
	jobq_take(&p->done, owner, &out);
	pthread_mutex_unlock(&p->mu);
	while ((j = jobq_pop(&out)) != NULL) {
		p->pending--;
		j->done(j->arg, true);
		free(j);
	}
}

void
pool_free(struct pool *p)
{
	int	i;

	if (p == NULL)
		return;
	pool_cancel(p, NULL);
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	event_free(p->ev);
	close(p->efd);
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->more);
	pthread_mutex_destroy(&p->mu);
	free(p->running);
	free(p->threads);
	free(p);
}
