/*
 * test_pool.c: the pool of typed jobs.  Every job's done runs exactly
 * once, on the loop thread, after its work ran on a thread of its type;
 * pool_cancel() ends an owner's jobs before it returns (cancelled set,
 * queued work never run) and leaves the others alone; pool_wait() returns
 * once no job of its type is pending, their dones run; saves run one
 * after the other; pool_free() with jobs queued leaks nothing.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "pool.h"
#include "t.h"

#define NJOBS	2000

struct tjob {
	int		 id;
	int		 ran;		/* work calls */
	int		 done;		/* done calls */
	int		 cancelled;
	bool		 on_worker;	/* work ran off the loop thread */
	bool		 on_loop;	/* done ran on it */
	unsigned	 sleep_us;
};

static pthread_t		 loop_thread;
static struct event_base	*base;
static int			 ndone, nwanted;

static void
work(void *arg)
{
	struct tjob	*j = arg;

	j->ran++;
	j->on_worker = !pthread_equal(pthread_self(), loop_thread);
	if (j->sleep_us > 0)
		usleep(j->sleep_us);
}

static void
done(void *arg, bool cancelled)
{
	struct tjob	*j = arg;

	j->done++;
	j->cancelled += cancelled;
	j->on_loop = pthread_equal(pthread_self(), loop_thread);
	if (++ndone == nwanted)
		event_base_loopexit(base, NULL);
}

/* Each job: worked once off the loop, done once on it. */
static void
test_all_done(void)
{
	struct pool	*p = pool_new(base, 3);
	struct tjob	*jobs = calloc(NJOBS, sizeof *jobs);
	int		 i, bad = 0;

	T_INTEQ(pool_threads(p, POOL_PARSE), 3);
	ndone = 0;
	nwanted = NJOBS;
	for (i = 0; i < NJOBS; i++) {
		jobs[i].id = i;
		pool_submit(p, POOL_PARSE, &jobs, work, done, &jobs[i]);
	}
	T_INTEQ(pool_pending(p, POOL_PARSE), NJOBS);
	event_base_dispatch(base);
	T_INTEQ(pool_pending(p, POOL_PARSE), 0);
	for (i = 0; i < NJOBS; i++)
		bad += jobs[i].ran != 1 || jobs[i].done != 1 ||
		    jobs[i].cancelled != 0 || !jobs[i].on_worker ||
		    !jobs[i].on_loop;
	T_INTEQ(ndone, NJOBS);
	T_INTEQ(bad, 0);
	pool_free(p);
	free(jobs);
}

/* Cancelling one owner: its dones run before pool_cancel returns. */
static void
test_cancel(void)
{
	struct pool	*p = pool_new(base, 2);
	struct tjob	 a[50], b[50];
	int		 i, adone = 0, acancel = 0, aran = 0, bad = 0;

	memset(a, 0, sizeof a);
	memset(b, 0, sizeof b);
	ndone = 0;
	nwanted = 100;
	for (i = 0; i < 50; i++) {
		a[i].sleep_us = 2000;
		b[i].sleep_us = 100;
		pool_submit(p, POOL_PARSE, a, work, done, &a[i]);
		pool_submit(p, POOL_PARSE, b, work, done, &b[i]);
	}
	usleep(3000);
	pool_cancel(p, a);
	for (i = 0; i < 50; i++) {
		adone += a[i].done;
		acancel += a[i].cancelled;
		aran += a[i].ran;
	}
	T_INTEQ(adone, 50);
	T_INTEQ(acancel, 50);
	T_CHECK(pool_pending(p, POOL_PARSE) <= 50);
	T_CHECK(aran < 50);		/* queued work was dropped */
	event_base_dispatch(base);	/* b's results */
	for (i = 0; i < 50; i++) {
		bad += a[i].done != 1 || b[i].done != 1 || b[i].ran != 1 ||
		    b[i].cancelled != 0;
	}
	T_INTEQ(bad, 0);
	T_INTEQ(ndone, 100);
	pool_free(p);
}

/* Freeing a pool with work queued calls every done (cancelled). */
static void
test_free_busy(void)
{
	struct pool	*p = pool_new(base, 2);
	struct tjob	 j[20];
	int		 i, dones = 0;

	memset(j, 0, sizeof j);
	ndone = 0;
	nwanted = -1;
	for (i = 0; i < 20; i++) {
		j[i].sleep_us = 1000;
		pool_submit(p, POOL_PARSE, j, work, done, &j[i]);
	}
	pool_free(p);
	for (i = 0; i < 20; i++)
		dones += j[i].done;
	T_INTEQ(dones, 20);
}

/* Saves: one thread, in order; pool_wait runs their dones before it returns. */
static pthread_mutex_t	 order_mu = PTHREAD_MUTEX_INITIALIZER;
static int		 order[10], norder, overlap, inside;

static void
save_work(void *arg)
{
	struct tjob	*j = arg;

	pthread_mutex_lock(&order_mu);
	overlap += inside++ > 0;
	pthread_mutex_unlock(&order_mu);
	usleep(j->sleep_us);
	j->on_worker = !pthread_equal(pthread_self(), loop_thread);
	pthread_mutex_lock(&order_mu);
	order[norder++] = j->id;
	inside--;
	pthread_mutex_unlock(&order_mu);
}

static void
test_saves(void)
{
	struct pool	*p = pool_new(base, 0);
	struct tjob	 j[10], parse;
	int		 i, bad = 0;

	memset(j, 0, sizeof j);
	memset(&parse, 0, sizeof parse);
	T_INTEQ(pool_threads(p, POOL_PARSE), 0);
	T_INTEQ(pool_threads(p, POOL_SAVE), 1);
	ndone = 0;
	nwanted = -1;
	for (i = 0; i < 10; i++) {
		j[i].id = i;
		j[i].sleep_us = 500;
		pool_submit(p, POOL_SAVE, j, save_work, done, &j[i]);
	}
	T_INTEQ(pool_pending(p, POOL_SAVE), 10);
	pool_wait(p, POOL_SAVE);
	T_INTEQ(pool_pending(p, POOL_SAVE), 0);
	for (i = 0; i < 10; i++)
		bad += j[i].done != 1 || !j[i].on_loop || !j[i].on_worker ||
		    order[i] != i;
	T_INTEQ(bad, 0);
	T_INTEQ(overlap, 0);
	pool_free(p);
}

int
main(void)
{
	loop_thread = pthread_self();
	base = event_base_new();
	T_INTEQ(pool_size(0), 0);
	T_INTEQ(pool_size(5), 5);
	T_CHECK(pool_size(-1) >= 1 && pool_size(-1) <= POOL_AUTO_MAX);
	test_all_done();
	test_cancel();
	test_free_busy();
	test_saves();
	event_base_free(base);
	return t_done();
}
