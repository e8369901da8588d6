/*
 * test_wthread.c: the writer thread, against the test backend.  Work runs
 * on the pool's writer thread, one job at a time in the order submitted,
 * and done on the loop; what the thread's store saw (a server failing and
 * coming back, a refused write, the counts) is logged and counted on the
 * loop, by the loop's store, and nothing on the thread; a stop ends the
 * job running at its next batch (the batch in flight finished, the next
 * never sent) and the jobs after it never run; a claim keeps the writer
 * busy until it is released, and the idle callback says so; a reconnect
 * asked for on the loop happens before the next job.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "capture.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "testbe.h"
#include "wthread.h"
#include "t.h"

#define N	600

static struct event_base	*base;
static struct pool		*pool;
static struct store		*loop_st;
static pthread_t		 loop_thread;
static char			 keys[N][40], wires[N][48], vals[N][32];
static struct entry		 v[N];

/* n entries of phase 0, all on server 0. */
static void
entries(size_t n)
{
	size_t	i;

	memset(v, 0, sizeof v);
	for (i = 0; i < n; i++) {
		snprintf(keys[i], sizeof keys[i], "program-%zu", i);
		snprintf(wires[i], sizeof wires[i], "w:program-%zu", i);
		snprintf(vals[i], sizeof vals[i], "\"v%zu\"", i);
		v[i].key = keys[i];
		v[i].wire = wires[i];
		v[i].wirelen = (uint16_t)strlen(wires[i]);
		v[i].val = (const unsigned char *)vals[i];
		v[i].len = strlen(vals[i]);
		v[i].phase = 0;
		v[i].servers = 1;
	}
}

/* One job: entries to write, and what was seen where. */
struct tjob {
	int			 id;
	size_t			 n;
	enum write_outcome	 out[N];
	enum writer_rc		 rc;
	bool			 on_writer;	/* work off the loop thread */
	bool			 on_loop;	/* done on it */
	bool			 stopped;
	int			 done;
	int			 order;		/* when done ran */
	size_t			 reconnects;	/* tb's, when work started */
	uint64_t		 sets_at_done;	/* metrics.mc_sets then */
};

static int	ndone, nwanted, worked_order[8], nworked;

static void
work(struct store *st, const struct writer_gate *gate, void *arg)
{
	struct tjob	*j = arg;

	j->on_writer = !pthread_equal(pthread_self(), loop_thread);
	j->reconnects = tb.reconnects;
	if (nworked < 8)
		worked_order[nworked++] = j->id;
	j->rc = writer_phase(st, v, j->n, 0, gate, j->out, NULL);
}

static void
done(void *arg, bool stopped)
{
	struct tjob	*j = arg;

	j->on_loop = pthread_equal(pthread_self(), loop_thread);
	j->stopped = stopped;
	j->done++;
	j->order = ndone;
	j->sets_at_done = metrics.mc_sets;
	if (++ndone == nwanted)
		event_base_loopexit(base, NULL);
}

/* Run the loop until nwanted dones (at most 10 s). */
static void
run(int want)
{
	struct timeval	tv = { 10, 0 };

	ndone = 0;
	nwanted = want;
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static struct wthread *
writer(void)
{
	return wthread_new(pool, store_new_with(&testbe, NULL), loop_st);
}

/* Off the loop and back, in order, and the values are in the cache. */
static void
test_jobs(void)
{
	struct wthread	*w = writer();
	struct tjob	*a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);

	testbe_reset();
	entries(N);
	a->id = 1;
	a->n = N / 2;
	b->id = 2;
	b->n = N;
	nworked = 0;
	wthread_submit(w, "test", NULL, work, done, a);
	wthread_submit(w, "test", NULL, work, done, b);
	T_CHECK(wthread_busy(w));
	run(2);
	T_CHECK(a->on_writer && b->on_writer);
	T_CHECK(a->on_loop && b->on_loop);
	T_INTEQ(a->done, 1);
	T_INTEQ(b->done, 1);
	T_INTEQ(worked_order[0], 1);
	T_INTEQ(worked_order[1], 2);
	T_CHECK(a->order < b->order);
	T_INTEQ(a->rc, WRITER_OK);
	T_STREQ(testbe_get("w:program-599"), "\"v599\"");
	T_CHECK(!wthread_busy(w));
	wthread_free(w);
	free(a);
	free(b);
}

/*
 * The thread's store fails: nothing is logged on the thread, and the
 * loop's store learns it (and logs it once) when the job is done; the
 * counts too.  Then it comes back: memcached_recovered on the loop.
 */
static void
test_replay(void)
{
	struct wthread	*w = writer();
	struct tjob	*a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
	uint64_t	 sets0 = metrics.mc_sets;

	testbe_reset();
	entries(10);
	testbe_fail_flush(0);
	a->n = 10;
	wthread_submit(w, "test", NULL, work, done, a);
	T_CHECK(store_server_up(loop_st, 0));
	log_setup(LOG_FORMAT_JSON, LOG_INFO);
	CAPTURE(run(1));
	log_setup(LOG_FORMAT_TEXT, LOG_CRIT);
	T_INTEQ(a->rc, WRITER_FAILED);
	T_CHECK(!store_server_up(loop_st, 0));
	T_CHECK(strstr(captured, "\"event\":\"memcached_error\"") != NULL);
	T_CHECK(strstr(captured, "\"server\":\"test:0\"") != NULL);
	/* Counted on the loop, before done ran. */
	T_INTEQ(a->sets_at_done, sets0 + 10);

	memset(b->out, 0, sizeof b->out);
	b->n = 10;
	wthread_retry_now(w);
	wthread_submit(w, "test", NULL, work, done, b);
	log_setup(LOG_FORMAT_JSON, LOG_INFO);
	CAPTURE(run(1));
	log_setup(LOG_FORMAT_TEXT, LOG_CRIT);
	T_INTEQ(b->rc, WRITER_OK);
	T_CHECK(store_server_up(loop_st, 0));
	T_CHECK(strstr(captured, "\"event\":\"memcached_recovered\"") != NULL);
	wthread_free(w);
	free(a);
	free(b);
}

/*
 * A deferred store says nothing itself: what it saw is taken (on its
 * thread) and replayed on the loop's store, in order, once per change.
 */
static void
test_deferred_store(void)
{
	struct store	*own = store_new_with(&testbe, NULL);

	store_defer(own);
	log_setup(LOG_FORMAT_JSON, LOG_INFO);
	CAPTURE({
		store_mark_down(own, 1, "set", "told to fail");
		store_mark_down(own, 1, "flush", "again");
		store_refused(own, 0, "set", "k1", 2, 7, 0, "no memory");
		store_mark_up(own, 1);
	});
	T_STREQ(captured, "");
	T_CHECK(store_server_up(loop_st, 1));
	CAPTURE(store_replay(store_take_log(own), loop_st));
	log_setup(LOG_FORMAT_TEXT, LOG_CRIT);
	/* Down once (the second was no change), the refusal, back up. */
	T_CHECK(strstr(captured, "\"op\":\"set\",\"error\":\"told to fail\"")
	    != NULL);
	T_CHECK(strstr(captured, "again") == NULL);
	T_CHECK(strstr(captured, "\"key\":\"k1\",\"bytes\":7") != NULL);
	T_CHECK(strstr(captured, "memcached_recovered") != NULL);
	T_CHECK(store_server_up(loop_st, 1));
	T_CHECK(store_take_log(own) == NULL);	/* forgotten once taken */
	store_free(own);
}

/* A gate that holds the first batch until the loop has asked to stop. */
static atomic_int	gate_asked;
static atomic_bool	stop_asked;

static bool
hold_first(void *arg)
{
	(void)arg;
	if (atomic_fetch_add(&gate_asked, 1) == 0)
		while (!atomic_load(&stop_asked))
			usleep(1000);
	return true;
}

/* The loop's side: wait for the first batch, then stop the writer. */
static void
stop_when_held(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	tv = { 0, 1000 };

	(void)fd;
	(void)what;
	if (atomic_load(&gate_asked) == 0) {
		event_base_once(base, -1, EV_TIMEOUT, stop_when_held, arg,
		    &tv);
		return;
	}
	wthread_stop(arg);
	atomic_store(&stop_asked, true);
}

/*
 * Stopped while a job waits at its first batch: that batch is sent (it
 * was let through), the second never is; the job after it does not run.
 */
static void
test_stop(void)
{
	struct wthread		*w = writer();
	struct writer_gate	 gate = { hold_first, NULL };
	struct tjob		*a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
	struct timeval		 tv = { 0, 1000 };
	size_t			 i, ok = 0, pending = 0;

	testbe_reset();
	entries(N);
	atomic_store(&gate_asked, 0);
	atomic_store(&stop_asked, false);
	a->n = N;
	b->n = N;
	nworked = 0;
	wthread_submit(w, "test", &gate, work, done, a);
	wthread_submit(w, "test", &gate, work, done, b);
	event_base_once(base, -1, EV_TIMEOUT, stop_when_held, w, &tv);
	run(2);
	T_CHECK(wthread_stopping(w));
	T_CHECK(a->stopped && b->stopped);
	T_INTEQ(a->rc, WRITER_LEASE_LOST);
	for (i = 0; i < N; i++) {
		ok += a->out[i] == WRITE_OK;
		pending += a->out[i] == WRITE_PENDING;
	}
	T_INTEQ(ok, 256);
	T_INTEQ(pending, N - 256);
	T_INTEQ(tb.nitems, 256);
	T_INTEQ(nworked, 1);		/* b never ran */
	T_INTEQ(b->done, 1);
	wthread_free(w);
	free(a);
	free(b);
}

static int	idles;

static void
on_idle(void *arg)
{
	(void)arg;
	idles++;
}

/* Claimed: busy between jobs; idle when released, or after the last. */
static void
test_claim_and_reconnect(void)
{
	struct wthread	*w = writer();
	struct tjob	*a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
	int		 owner;

	testbe_reset();
	entries(4);
	idles = 0;
	wthread_on_idle(w, on_idle, NULL);
	wthread_claim(w, &owner);
	T_CHECK(wthread_busy(w));
	a->n = 4;
	wthread_reconnect(w, 1);
	wthread_submit(w, "test", NULL, work, done, a);
	run(1);
	T_INTEQ(a->reconnects, 1);	/* before the job's work */
	T_CHECK(wthread_busy(w));	/* still claimed */
	T_INTEQ(idles, 0);
	wthread_release(w, &owner);
	T_CHECK(!wthread_busy(w));
	T_INTEQ(idles, 1);
	b->n = 4;
	wthread_submit(w, "test", NULL, work, done, b);
	run(1);
	T_INTEQ(b->reconnects, 1);	/* asked once: done once */
	T_INTEQ(idles, 2);
	wthread_free(w);
	free(a);
	free(b);
}

int
main(void)
{
	log_setup(LOG_FORMAT_TEXT, LOG_CRIT);
	loop_thread = pthread_self();
	base = event_base_new();
	pool = pool_new(base, 0);
	testbe_reset();
	loop_st = store_new_with(&testbe, NULL);
	test_deferred_store();
	test_jobs();
	test_replay();
	test_claim_and_reconnect();
	test_stop();
	pool_free(pool);
	store_free(loop_st);
	event_base_free(base);
	testbe_reset();
	return t_done();
}
