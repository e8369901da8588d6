/*
 * monitor.c: restart detection, verification and repair from the snapshot.
 *
 * Timers only decide when; check_server() and verify() read the cache
 * synchronously (libmemcached has no other way) on the loop's store, with
 * every read bounded by store_probe(); a verify pass is cut into slices
 * (on_slice), one per turn of the loop.  repair() hands its writes to the
 * writer thread (wthread.h) and logs cache_repaired when they are done.
 * While the writer is busy (a publish holds it, or a job runs), repairs
 * wait (struct later) and verify slices pause, and both go on when it is
 * idle again: nothing is written between a publish's phases, and a pass
 * does not count as missing what a repair is writing.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "metrics.h"
#include "monitor.h"
#include "family.h"
#include "writer.h"
#include "util.h"
#include "wthread.h"

/* Seconds of disagreement tolerated between uptime and our clock. */
#define UPTIME_SLACK_S	2
/* Sentinels per server: site lists, or else its last few keys. */
#define SENTINELS_MAX	8
#define SENTINELS_ANY	4
/* Example keys in cache_miss and cache_diverged. */
#define EXAMPLES_MAX	5
/*
 * Keys asked for per turn of the loop in a verify pass, and the value
 * bytes they may bring back (a few milliseconds of reading).
 */
#define VERIFY_SLICE	1000
#define VERIFY_SLICE_BYTES	(2 * 1024 * 1024)

struct mon_server {
	bool		 known;		/* stats read before */
	bool		 down;		/* the last stats failed */
	struct store_stats seen;	/* that reading (id, uptime) */
	uint64_t	 at;		/* mono_ms of it */
	/*
	 * It holds the snapshot's keys: a verify pass found them (or put
	 * back the missing ones), or a repair wrote them, since it last
	 * restarted, was down or lost its sentinels; epoch counts those.
	 */
	bool		 confirmed;
	unsigned	 epoch;
	size_t		 sent[SENTINELS_MAX];	/* entry indexes */
	size_t		 nsent;
};

/* One key to put back on one server. */
struct fix {
	size_t	e;		/* entry index */
	size_t	srv;
	bool	differs;	/* there, with other bytes (else missing) */
};

/* A growable list of fixes. */
struct fixes {
	struct fix	*v;
	size_t		 n;
	size_t		 cap;
};

/* A verify pass in progress (verify(), on_slice()). */
struct vpass {
	bool			 active;
	size_t			 only;		/* a server, or SIZE_MAX */
	const char		*reason;	/* a literal */
	size_t			 srv;		/* being asked */
	size_t			 next;		/* entry to look from */
	struct fixes		 f;
	size_t			 asked;
	size_t			 missing;	/* of f */
	size_t			 diverged;	/* of f */
	size_t			 skipped;
	uint64_t		 t0;
	uint64_t		 snap;		/* what it verifies (serials) */
	uint64_t		 store;
	uint64_t		 unsure;	/* servers skipped (keys holding
						   other values are rewritten) */
	unsigned		 epoch[STORE_MAX_SERVERS];	/* at start */
	bool			 again;		/* asked for meanwhile */
	size_t			 again_only;
	const char		*again_reason;
};

/* Repairs asked for while the writer was busy, run when it is idle. */
struct later {
	bool			 all;		/* SIGUSR1 */
	const char		*all_reason;
	uint64_t		 servers;	/* restarted: repair whole */
	const char		*reasons[STORE_MAX_SERVERS];
	struct fixes		 f;		/* a pass's misses */
	const char		*f_reason;
	size_t			 f_only;
	uint64_t		 f_snap;	/* the snapshot they are of */
	uint64_t		 f_confirm;	/* as repair()'s */
	unsigned		 f_epoch[STORE_MAX_SERVERS];
};

struct monitor {
	struct event_base	*base;
	struct store		*store;
	uint64_t		 store_serial;	/* what sv[] describes */
	const struct snapshot	*snap;
	long			 check_ms;
	long			 verify_ms;
	bool			 started;
	struct event		*check_ev;
	struct event		*verify_ev;
	struct event		*slice_ev;	/* the pass's next slice */
	struct vpass		 pass;
	struct mon_server	 sv[STORE_MAX_SERVERS];
	void			(*repaired)(void *);
	void			*repaired_arg;
	const struct writer_gate *gate;	/* may it write (NULL: always) */
	bool			 idle;		/* stand-by: do nothing */
	struct wthread		*w;		/* writes */
	struct later		 later;
	struct event		*later_ev;	/* the writer is idle */
	bool			 paused;	/* a pass waits for the writer */
};

static void	on_check(evutil_socket_t, short, void *);
static void	on_verify(evutil_socket_t, short, void *);
static void	on_slice(evutil_socket_t, short, void *);
static void	on_later(evutil_socket_t, short, void *);
static void	verify(struct monitor *, size_t, const char *);
static void	next_slice(struct monitor *);

struct monitor *
monitor_new(struct event_base *base)
{
	struct monitor	*m;

	m = xcalloc(1, sizeof *m);
	m->base = base;
	m->check_ev = event_new(base, -1, EV_PERSIST, on_check, m);
	m->verify_ev = event_new(base, -1, EV_PERSIST, on_verify, m);
	m->slice_ev = event_new(base, -1, 0, on_slice, m);
	m->later_ev = event_new(base, -1, 0, on_later, m);
	return m;
}

void
monitor_free(struct monitor *m)
{
	if (m == NULL)
		return;
	if (m->w != NULL)
		wthread_on_idle(m->w, NULL, NULL);
	event_free(m->check_ev);
	event_free(m->verify_ev);
	event_free(m->slice_ev);
	event_free(m->later_ev);
	free(m->pass.f.v);
	free(m->later.f.v);
	free(m);
}

/* The writer is idle: on the next turn, what waited for it. */
static void
writer_idle(void *arg)
{
	struct monitor	*m = arg;
	struct timeval	 zero = { 0, 0 };

	if (m->later.all || m->later.servers != 0 || m->later.f.n > 0 ||
	    m->paused)
		evtimer_add(m->later_ev, &zero);
}

void
monitor_set_writer(struct monitor *m, struct wthread *w)
{
	m->w = w;
	wthread_on_idle(w, writer_idle, m);
}

/*
 * Run a persistent timer's work on the next turn of the loop, and every
 * interval from then on.  Not as a timeout (EV_TIMEOUT): libevent then
 * schedules the next run an interval after the run that was due, not
 * after this one, and the first timed check after start-up came two
 * check_intervals late.
 */
static void
run_soon(struct event *ev)
{
	event_active(ev, 0, 0);
}

/* Server i may have lost what it held: unconfirmed until found again. */
static void
unconfirm(struct monitor *m, size_t i)
{
	m->sv[i].confirmed = false;
	m->sv[i].epoch++;
}

/* Every server of the store, as a mask. */
static uint64_t
all_servers(const struct monitor *m)
{
	size_t	n = store_nservers(m->store);

	return n >= 64 ? UINT64_MAX : ((uint64_t)1 << n) - 1;
}

/* (Re)arm a persistent timer. */
static void
arm(struct event *ev, long ms)
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_add(ev, &tv);
}

/* Whether server i is meant to hold entry e (and can). */
static bool
wanted(const struct monitor *m, const struct entry *e, size_t i)
{
	return (e->servers >> i & 1) != 0 &&
	    store_fits(m->store, i, e->wirelen, e->len);
}

/* Pick each server's sentinels: site lists first, else its last keys. */
static void
pick_sentinels(struct monitor *m)
{
	const struct entry	*v;
	size_t				 i, j, n;

	for (i = 0; i < STORE_MAX_SERVERS; i++)
		m->sv[i].nsent = 0;
	if (m->snap == NULL || m->store == NULL)
		return;
	v = snapshot_entries(m->snap);
	n = snapshot_count(m->snap);
	for (i = 0; i < store_nservers(m->store); i++) {
		struct mon_server *ms = &m->sv[i];

		for (j = n; j > 0 && ms->nsent < SENTINELS_MAX; j--)
			if ((v[j - 1].family == FAM_SITE_PROGRAMS ||
			    v[j - 1].family == FAM_SITE_PATHWAYS) &&
			    wanted(m, &v[j - 1], i))
				ms->sent[ms->nsent++] = j - 1;
		if (ms->nsent > 0)
			continue;
		for (j = n; j > 0 && ms->nsent < SENTINELS_ANY; j--)
			if (wanted(m, &v[j - 1], i))
				ms->sent[ms->nsent++] = j - 1;
	}
}

void
monitor_configure(struct monitor *m, struct store *st, long check_ms,
    long verify_ms)
{
	if (m->store_serial != store_serial(st))
		memset(m->sv, 0, sizeof m->sv);
	m->store = st;
	m->store_serial = store_serial(st);
	m->check_ms = check_ms;
	m->verify_ms = verify_ms;
	pick_sentinels(m);
	if (m->started) {
		arm(m->check_ev, m->check_ms);
		arm(m->verify_ev, m->verify_ms);
	}
}

void
monitor_set_snapshot(struct monitor *m, const struct snapshot *snap)
{
	m->snap = snap;
	pick_sentinels(m);
}

void
monitor_on_repair(struct monitor *m, void (*cb)(void *), void *arg)
{
	m->repaired = cb;
	m->repaired_arg = arg;
}

void
monitor_set_gate(struct monitor *m, const struct writer_gate *gate)
{
	m->gate = gate;
}

void
monitor_set_idle(struct monitor *m, bool idle)
{
	m->idle = idle;
	/* Back to work: a restart may have happened meanwhile. */
	if (!idle && m->started) {
		memset(m->sv, 0, sizeof m->sv);
		pick_sentinels(m);
		run_soon(m->check_ev);
		run_soon(m->verify_ev);
	}
}

void
monitor_start(struct monitor *m)
{
	m->started = true;
	arm(m->check_ev, m->check_ms);
	arm(m->verify_ev, m->verify_ms);
	run_soon(m->check_ev);
	if (m->snap != NULL)
		run_soon(m->verify_ev);
}

void
monitor_verify_soon(struct monitor *m)
{
	if (m->started)
		run_soon(m->verify_ev);
}

static void
fixes_add(struct fixes *f, size_t e, size_t srv)
{
	if (f->n == f->cap) {
		f->cap = f->cap == 0 ? 256 : f->cap * 2;
		f->v = xreallocarray(f->v, f->cap, sizeof *f->v);
	}
	f->v[f->n].e = e;
	f->v[f->n].srv = srv;
	f->v[f->n].differs = false;
	f->n++;
}

/* A repair on the writer thread: copies of the entries, one server each. */
struct repair_job {
	struct monitor		*m;
	struct entry		*ev;
	enum write_outcome	*out;
	size_t			 n;
	const char		*reason;	/* a literal */
	char			*server;	/* the one repaired, or NULL */
	uint64_t		 t0;
	struct writer_report	 rep;
	/*
	 * The servers it confirms once it wrote everything (monitor_confirmed),
	 * unless they lost something since: their epochs when it was asked
	 * for, of the store it was asked for on.
	 */
	uint64_t		 confirm;
	unsigned		 epoch[STORE_MAX_SERVERS];
	uint64_t		 store;
};

/*
 * Writer thread: phase by phase (details, indexes, site lists, each ended
 * by a round trip); a phase that failed stops the later ones.
 */
static void
repair_work(struct store *st, const struct writer_gate *gate, void *arg)
{
	struct repair_job	*rj = arg;
	int			 phase;

	for (phase = 0; phase < FAMILY_PHASES; phase++)
		if (writer_phase(st, rj->ev, rj->n, phase, gate, rj->out,
		    &rj->rep) != WRITER_OK)
			break;
}

/* On the loop: what the repair put back (cache_repaired). */
static void
repair_done(void *arg, bool stopped)
{
	struct repair_job	*rj = arg;
	struct monitor		*m = rj->m;
	size_t			 k, written = 0, bytes = 0;
	bool			 failed = false;

	writer_report_log(&rj->rep, m->store, stopped);
	for (k = 0; k < rj->n; k++) {
		if (rj->out[k] == WRITE_OK) {
			written++;
			bytes += rj->ev[k].len;
		} else
			failed = true;
	}
	/* The lease went before anything was sent: write_stopped says so. */
	if (!(rj->rep.lost && written == 0)) {
		metrics.repairs++;
		metrics.keys_repaired += written;
		metrics_repair(rj->reason, written);
		log_event(failed ? LOG_ERR : LOG_NOTICE, "cache_repaired",
		    "reason=%s server=%s keys=%zu bytes=%zu keys_failed=%zu "
		    "duration_ms=%llu", rj->reason, rj->server, written, bytes,
		    rj->n - written, (unsigned long long)(mono_ms() - rj->t0));
	}
	for (k = 0; !failed && !stopped && rj->store == m->store_serial &&
	    k < STORE_MAX_SERVERS; k++)
		if ((rj->confirm >> k & 1) != 0 && rj->epoch[k] == m->sv[k].epoch)
			m->sv[k].confirmed = true;
	if (!failed && !stopped && m->repaired != NULL)
		m->repaired(m->repaired_arg);
	writer_report_free(&rj->rep);
	free(rj->server);
	free(rj->ev);
	free(rj->out);
	free(rj);
}

/*
 * Write the fixes back through the writer thread; cache_repaired says how
 * it went.  server names the one server repaired, or NULL.  The servers
 * of confirm are confirmed once every fix is written, if their epochs are
 * still those of epoch (NULL: now).  The entries point into the snapshot,
 * which no publish replaces before the job is done (its own jobs come
 * after this one).
 */
static void
repair(struct monitor *m, const struct fixes *f, const char *reason,
    const char *server, uint64_t confirm, const unsigned *epoch)
{
	const struct entry	*v = snapshot_entries(m->snap);
	struct repair_job	*rj;
	size_t			 k;

	/* Not the writer (the lease is gone): the holder repairs. */
	if (m->gate != NULL && !m->gate->may_write(m->gate->arg))
		return;
	rj = xcalloc(1, sizeof *rj);
	rj->m = m;
	rj->n = f->n;
	rj->reason = reason;
	rj->server = server != NULL ? xstrdup(server) : NULL;
	rj->t0 = mono_ms();
	rj->confirm = confirm;
	for (k = 0; k < STORE_MAX_SERVERS; k++)
		rj->epoch[k] = epoch != NULL ? epoch[k] : m->sv[k].epoch;
	rj->store = m->store_serial;
	rj->ev = xcalloc(f->n + 1, sizeof *rj->ev);
	rj->out = xcalloc(f->n + 1, sizeof *rj->out);
	for (k = 0; k < f->n; k++) {
		rj->ev[k] = v[f->v[k].e];
		rj->ev[k].servers = (uint64_t)1 << f->v[k].srv;
	}
	wthread_submit(m->w, "repair", m->gate, repair_work, repair_done, rj);
}

/* Put back every key server i owns (now, or once the writer is idle). */
static void
repair_server(struct monitor *m, size_t i, const char *reason)
{
	const struct entry	*v = snapshot_entries(m->snap);
	struct fixes			 f;
	size_t				 j, n = snapshot_count(m->snap);

	if (wthread_busy(m->w)) {
		m->later.servers |= (uint64_t)1 << i;
		m->later.reasons[i] = reason;
		return;
	}
	memset(&f, 0, sizeof f);
	for (j = 0; j < n; j++)
		if (wanted(m, &v[j], i))
			fixes_add(&f, j, i);
	repair(m, &f, reason, store_server_name(m->store, i),
	    (uint64_t)1 << i, NULL);
	free(f.v);
}

/* Every entry of the snapshot, on every server it belongs on. */
static void
repair_everything(struct monitor *m, const char *reason)
{
	const struct entry	*v = snapshot_entries(m->snap);
	struct fixes		 f;
	size_t			 i, j, n = snapshot_count(m->snap);

	memset(&f, 0, sizeof f);
	for (j = 0; j < n; j++)
		for (i = 0; i < store_nservers(m->store); i++)
			if (wanted(m, &v[j], i))
				fixes_add(&f, j, i);
	repair(m, &f, reason, NULL, all_servers(m), NULL);
	free(f.v);
}

int
monitor_repair_all(struct monitor *m, const char *reason)
{
	size_t	i;

	if (m->snap == NULL) {
		log_event(LOG_WARNING, "repair_skipped", "reason=%s error=%s",
		    reason, "no snapshot: nothing published or loaded yet");
		return -1;
	}
	if (m->idle) {
		log_event(LOG_WARNING, "repair_skipped", "reason=%s error=%s",
		    reason, "standing by: another daemon holds the lease");
		return -1;
	}
	/* Start clean: a restart not seen yet leaves a dead socket behind. */
	for (i = 0; i < store_nservers(m->store); i++) {
		store_reconnect(m->store, i);
		wthread_reconnect(m->w, i);
	}
	if (wthread_busy(m->w)) {
		m->later.all = true;
		m->later.all_reason = reason;
		return 0;
	}
	repair_everything(m, reason);
	return 0;
}

/*
 * A pass's misses: put back now, or once the writer is idle; confirm and
 * epoch as repair()'s.
 */
static void
repair_misses(struct monitor *m, struct fixes *f, const char *reason,
    size_t only, uint64_t confirm, const unsigned *epoch)
{
	struct later	*l = &m->later;

	if (!wthread_busy(m->w)) {
		repair(m, f, reason, only != SIZE_MAX ?
		    store_server_name(m->store, only) : NULL, confirm, epoch);
		return;
	}
	/* The last pass's misses are the ones that count. */
	free(l->f.v);
	l->f = *f;
	memset(f, 0, sizeof *f);
	l->f_reason = reason;
	l->f_only = only;
	l->f_snap = snapshot_serial(m->snap);
	l->f_confirm = confirm;
	memcpy(l->f_epoch, epoch, sizeof l->f_epoch);
}

/* What waited for the writer, now that it is idle. */
static void
run_later(struct monitor *m)
{
	struct later	*l = &m->later;
	struct fixes	 f;
	size_t		 i;

	if (m->snap == NULL || m->idle) {
		free(l->f.v);
		memset(l, 0, sizeof *l);
		return;
	}
	if (l->all) {
		/* Everything: the servers and misses with it. */
		repair_everything(m, l->all_reason);
		free(l->f.v);
		memset(l, 0, sizeof *l);
		return;
	}
	for (i = 0; i < store_nservers(m->store); i++)
		if ((l->servers >> i & 1) != 0)
			repair_server(m, i, l->reasons[i]);
	l->servers = 0;
	f = l->f;
	memset(&l->f, 0, sizeof l->f);
	/* Misses of a snapshot a publish replaced: its own pass follows. */
	if (f.n > 0 && l->f_snap == snapshot_serial(m->snap))
		repair(m, &f, l->f_reason, l->f_only != SIZE_MAX ?
		    store_server_name(m->store, l->f_only) : NULL, l->f_confirm,
		    l->f_epoch);
	free(f.v);
}

static void
on_later(evutil_socket_t fd, short what, void *arg)
{
	struct monitor	*m = arg;

	(void)fd;
	(void)what;
	if (wthread_busy(m->w))
		return;		/* busy again: its idle calls back */
	run_later(m);
	if (m->paused) {
		m->paused = false;
		next_slice(m);
	}
}

/* What one server's multi-get is matched against. */
struct ask {
	const char			**keys;
	size_t				 *lens;
	size_t				 *ids;		/* entry indexes */
	unsigned char			 *seen;		/* 1 same, 2 differs */
	size_t				  n;
	const struct entry	 *v;
};

/* store_mget's callback: note the key, and whether its value is ours. */
static void
on_hit(size_t j, const void *val, size_t len, uint32_t flags, void *arg)
{
	struct ask			*a = arg;
	const struct entry	*e = &a->v[a->ids[j]];

	a->seen[j] = e->len == len && e->flags == flags &&
	    memcmp(e->val, val, len) == 0 ? 1 : 2;
}

/*
 * Ask server i for at most max of the keys it should hold (and about
 * maxbytes of their values), looking from
 * entry *from on (*from is then where the next slice starts: the count
 * when none is left); a->seen[] says which came back.  0, or -1 if the
 * server failed (a is then empty).
 */
static int
ask_server(struct store *st, const struct snapshot *snap, size_t i,
    size_t *from, size_t max, size_t maxbytes, struct ask *a)
{
	const struct entry	*v = snapshot_entries(snap);
	size_t				 j, n = snapshot_count(snap);
	size_t				 bytes = 0;

	memset(a, 0, sizeof *a);
	a->v = v;
	a->keys = xreallocarray(NULL, max + 1, sizeof *a->keys);
	a->lens = xreallocarray(NULL, max + 1, sizeof *a->lens);
	a->ids = xreallocarray(NULL, max + 1, sizeof *a->ids);
	for (j = *from; j < n && a->n < max && bytes < maxbytes; j++) {
		if ((v[j].servers >> i & 1) == 0 ||
		    !store_fits(st, i, v[j].wirelen, v[j].len))
			continue;
		a->keys[a->n] = v[j].wire;
		a->lens[a->n] = v[j].wirelen;
		a->ids[a->n] = j;
		a->n++;
		bytes += v[j].len;
	}
	*from = j;
	a->seen = xcalloc(a->n + 1, 1);
	if (a->n > 0 &&
	    store_mget(st, i, a->keys, a->lens, a->n, on_hit, a) == -1) {
		a->n = 0;
		return -1;
	}
	return 0;
}

static void
ask_free(struct ask *a)
{
	free(a->keys);
	free(a->lens);
	free(a->ids);
	free(a->seen);
}

/*
 * cache_miss (the keys missing) or cache_diverged (the keys holding other
 * bytes): the count, the counts of the families concerned, and a few
 * example keys.  The field list depends on which families had some, so
 * the format is built here and the counts passed in the same order.
 */
static void
log_fixes(const struct monitor *m, const struct fixes *f, bool differs,
    const char *reason)
{
	const struct entry	*v = snapshot_entries(m->snap);
	const char		*word = differs ? "diverged" : "missing";
	size_t			 count[FAM_COUNT], c[FAM_COUNT];
	size_t			 i, n = 0, nc = 0;
	struct buf		 fmt, ex;

	_Static_assert(FAM_COUNT == 9, "log_fixes passes 9 counts");
	memset(count, 0, sizeof count);
	memset(c, 0, sizeof c);
	buf_init(&ex);
	for (i = 0; i < f->n; i++) {
		if (f->v[i].differs != differs)
			continue;
		count[v[f->v[i].e].family]++;
		if (n++ < EXAMPLES_MAX)
			buf_printf(&ex, "%s%s", n > 1 ? " " : "",
			    v[f->v[i].e].key);
	}
	if (n == 0)
		goto out;
	buf_init(&fmt);
	buf_printf(&fmt, "reason=%%s %s=%%zu examples=%%s", word);
	for (i = 0; i < FAM_COUNT; i++) {
		if (count[i] == 0)
			continue;
		buf_printf(&fmt, " %s_%s=%%zu", word,
		    family_name((enum family)i));
		c[nc++] = count[i];
	}
	if (differs) {
		log_event(LOG_WARNING, "cache_diverged", (const char *)fmt.data,
		    reason, n, (const char *)ex.data, c[0], c[1], c[2], c[3],
		    c[4], c[5], c[6], c[7], c[8]);
		for (i = 0; i < FAM_COUNT; i++)
			metrics.cache_diverged[i] += count[i];
	} else {
		log_event(LOG_WARNING, "cache_miss", (const char *)fmt.data,
		    reason, n, (const char *)ex.data, c[0], c[1], c[2], c[3],
		    c[4], c[5], c[6], c[7], c[8]);
		metrics.cache_misses += n;
	}
	buf_free(&fmt);
out:
	buf_free(&ex);
}

/*
 * Run the next slice after the loop has polled its sockets: an event made
 * active from a callback would run in the same turn (libevent 2.1 empties
 * its active queue), a timer of zero waits for the next one.
 */
static void
next_slice(struct monitor *m)
{
	struct timeval	zero = { 0, 0 };

	evtimer_add(m->slice_ev, &zero);
}

/*
 * The pass is over: log the keys missing and those holding other bytes
 * (another writer: a paused former lease holder, a stray cache_programs),
 * put them all back, say so.
 */
static void
verify_end(struct monitor *m)
{
	struct vpass	*p = &m->pass;
	uint64_t	 whole = 0;
	size_t		 i;

	/* What the pass found whole (and nothing lost since it began). */
	for (i = 0; i < store_nservers(m->store); i++)
		if ((p->only == SIZE_MAX || p->only == i) &&
		    (p->unsure >> i & 1) == 0 && p->epoch[i] == m->sv[i].epoch)
			whole |= (uint64_t)1 << i;
	if (p->f.n > 0) {
		log_fixes(m, &p->f, false, p->reason);
		log_fixes(m, &p->f, true, p->reason);
		/* Confirmed once what is missing or diverged is back. */
		repair_misses(m, &p->f, p->reason, p->only, whole, p->epoch);
	} else
		for (i = 0; i < store_nservers(m->store); i++)
			if ((whole >> i & 1) != 0)
				m->sv[i].confirmed = true;
	log_event(LOG_INFO, "cache_verified", "reason=%s keys=%zu missing=%zu "
	    "diverged=%zu servers_skipped=%zu duration_ms=%llu", p->reason,
	    p->asked, p->missing, p->diverged, p->skipped,
	    (unsigned long long)(mono_ms() - p->t0));
	free(p->f.v);
	memset(&p->f, 0, sizeof p->f);
	p->active = false;
}

/* Drop the pass in progress: what it found is not to be acted on. */
static void
verify_drop(struct monitor *m)
{
	free(m->pass.f.v);
	memset(&m->pass.f, 0, sizeof m->pass.f);
	m->pass.active = false;
}

/*
 * One slice of a pass: at most VERIFY_SLICE keys of one server, so that
 * the loop is never held for long; the next slice is scheduled at once.
 */
static void
on_slice(evutil_socket_t fd, short what, void *arg)
{
	struct monitor	*m = arg;
	struct vpass	*p = &m->pass;
	struct ask	 a;
	size_t		 j, n;
	int		 rc;

	(void)fd;
	(void)what;
	if (!p->active)
		return;
	/*
	 * A publish or a reload replaced the record or the store: the new
	 * one gets its own pass (a publish writes and round-trips every
	 * batch before its record is the monitor's, so no pass ever compares
	 * the cache with a record while writes to it are in flight).  A
	 * stand-by writes nothing.
	 */
	if (snapshot_serial(m->snap) != p->snap ||
	    store_serial(m->store) != p->store || m->idle) {
		verify_drop(m);
		return;
	}
	if (wthread_busy(m->w)) {
		/* What is being written is not missing: after it. */
		m->paused = true;
		return;
	}
	n = snapshot_count(m->snap);
	while (p->srv < store_nservers(m->store) && ((p->only != SIZE_MAX &&
	    p->srv != p->only) || p->next >= n)) {
		p->srv++;
		p->next = 0;
	}
	if (p->srv >= store_nservers(m->store)) {
		verify_end(m);
		if (p->again) {
			p->again = false;
			verify(m, p->again_only, p->again_reason);
		}
		return;
	}
	store_probe(m->store, true);
	rc = ask_server(m->store, m->snap, p->srv, &p->next, VERIFY_SLICE,
	    VERIFY_SLICE_BYTES, &a);
	store_probe(m->store, false);
	if (rc == -1) {
		/* A down server is skipped: the store logged it once. */
		p->skipped++;
		p->next = n;
		p->unsure |= (uint64_t)1 << p->srv;
	}
	for (j = 0; j < a.n; j++) {
		/* Held other bytes: rewritten with the missing ones. */
		if (a.seen[j] == 1)
			continue;
		fixes_add(&p->f, a.ids[j], p->srv);
		if (a.seen[j] == 2) {
			p->f.v[p->f.n - 1].differs = true;
			p->diverged++;
		} else
			p->missing++;
	}
	p->asked += a.n;
	ask_free(&a);
	next_slice(m);
}

/*
 * Ask for every key (of server only, or of every server when it is
 * SIZE_MAX), log the missing ones and put them back: a pass, run in
 * slices.  One asked for while another runs follows it.
 */
static void
verify(struct monitor *m, size_t only, const char *reason)
{
	struct vpass	*p = &m->pass;
	size_t		 i;

	if (m->snap == NULL)
		return;
	if (p->active) {
		if (p->again && p->again_only != only)
			only = SIZE_MAX;
		p->again = true;
		p->again_only = only;
		p->again_reason = reason;
		return;
	}
	memset(&p->f, 0, sizeof p->f);
	p->active = true;
	p->only = only;
	p->reason = reason;
	p->srv = 0;
	p->next = 0;
	p->asked = p->skipped = p->missing = p->diverged = 0;
	p->unsure = 0;
	for (i = 0; i < STORE_MAX_SERVERS; i++)
		p->epoch[i] = m->sv[i].epoch;
	p->t0 = mono_ms();
	p->snap = snapshot_serial(m->snap);
	p->store = store_serial(m->store);
	next_slice(m);
}

/* Whether server i still holds its sentinels (true if it cannot tell). */
static bool
sentinels_present(struct monitor *m, size_t i)
{
	const struct entry	*v = snapshot_entries(m->snap);
	struct mon_server		*ms = &m->sv[i];
	const char			*keys[SENTINELS_MAX];
	size_t				 lens[SENTINELS_MAX];
	size_t				 ids[SENTINELS_MAX], j, hits = 0;
	unsigned char			 seen[SENTINELS_MAX];
	struct ask			 a;
	int				 rc;

	if (ms->nsent == 0)
		return true;
	for (j = 0; j < ms->nsent; j++) {
		keys[j] = v[ms->sent[j]].wire;
		lens[j] = v[ms->sent[j]].wirelen;
		ids[j] = ms->sent[j];
	}
	memset(seen, 0, sizeof seen);
	memset(&a, 0, sizeof a);
	a.keys = keys;
	a.lens = lens;
	a.ids = ids;
	a.seen = seen;
	a.n = ms->nsent;
	a.v = v;
	store_probe(m->store, true);
	rc = store_mget(m->store, i, keys, lens, ms->nsent, on_hit, &a);
	store_probe(m->store, false);
	if (rc == -1)
		return true;
	for (j = 0; j < ms->nsent; j++)
		hits += seen[j] != 0;
	return hits == ms->nsent;
}

/* Whether the servers are Redis (restarts are told by run_id). */
static bool
redis(const struct monitor *m)
{
	return strcmp(store_backend(m->store), "redis") == 0;
}

/* Log that server i may have lost everything, and why. */
static void
empty_detected(struct monitor *m, size_t i, const char *reason,
    const struct store_stats *ss)
{
	const struct entry	*v;
	size_t				 j, n = 0;

	if (m->snap != NULL) {
		v = snapshot_entries(m->snap);
		for (j = 0; j < snapshot_count(m->snap); j++)
			n += wanted(m, &v[j], i);
	}
	metrics.restarts_detected++;
	/* Redis has no pid to speak of (pid 1 in a container): its run_id. */
	if (redis(m))
		log_event(LOG_WARNING, "cache_empty_detected", "server=%s "
		    "reason=%s run_id=%s uptime=%lu keys=%zu",
		    store_server_name(m->store, i), reason, ss->id,
		    ss->uptime, n);
	else
		log_event(LOG_WARNING, "cache_empty_detected", "server=%s "
		    "reason=%s pid=%ld uptime=%lu keys=%zu",
		    store_server_name(m->store, i), reason, ss->pid,
		    ss->uptime, n);
}

/* One server's stats and sentinels, and what they call for. */
static void
check_server(struct monitor *m, size_t i)
{
	struct mon_server	*ms = &m->sv[i];
	struct store_stats	 ss;
	const char		*reason = NULL;
	uint64_t		 now = mono_ms();
	bool			 was_down = ms->down;
	int			 rc;

	store_probe(m->store, true);
	rc = store_stats(m->store, i, &ss);
	store_probe(m->store, false);
	if (rc == -1) {
		ms->down = true;
		unconfirm(m, i);
		return;
	}
	ms->down = false;
	if (ms->known && strcmp(ss.id, ms->seen.id) != 0)
		reason = redis(m) ? "run_id changed" : "pid changed";
	else if (ms->known && ss.uptime + UPTIME_SLACK_S <
	    ms->seen.uptime + (now - ms->at) / 1000)
		reason = "uptime went back";
	else if (!ms->known && was_down)
		reason = "server was down";
	ms->known = true;
	ms->seen = ss;
	ms->at = now;

	if (reason != NULL) {
		/* Whatever was buffered on the old connections is lost. */
		store_reconnect(m->store, i);
		wthread_reconnect(m->w, i);
		unconfirm(m, i);
		empty_detected(m, i, reason, &ss);
		if (m->snap != NULL)
			repair_server(m, i, reason);
		return;
	}
	if (m->snap == NULL)
		return;
	if (!sentinels_present(m, i)) {
		unconfirm(m, i);
		empty_detected(m, i, "sentinel missing", &ss);
		verify(m, i, "sentinel missing");
	} else if (was_down) {
		/* Writes were skipped while it was away. */
		verify(m, i, "server was down");
	}
}

bool
monitor_confirmed(struct monitor *m, size_t i)
{
	if (!m->started || m->idle || m->store == NULL ||
	    i >= store_nservers(m->store))
		return false;
	check_server(m, i);
	return !m->sv[i].down && m->sv[i].confirmed;
}

static void
on_check(evutil_socket_t fd, short what, void *arg)
{
	struct monitor	*m = arg;
	size_t		 i;

	(void)fd;
	(void)what;
	if (m->idle)
		return;
	for (i = 0; i < store_nservers(m->store); i++)
		check_server(m, i);
}

static void
on_verify(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	if (((struct monitor *)arg)->idle)
		return;
	verify(arg, SIZE_MAX, "verify");
}

/* --- for the reader watch (rwatch.c) --------------------------------- */

int
monitor_repair_keys(struct monitor *m, const size_t *ids, const size_t *srv,
    size_t n, const char *reason)
{
	struct fixes	 f;
	size_t		 k;
	int		 rc;

	if (m->snap == NULL || m->idle || m->store == NULL)
		return -1;
	/*
	 * A publish holds the writer: the ids are of the record it is about
	 * to replace, so they are not queued behind it.  The reader's next
	 * miss of the key asks again, after the publish.
	 */
	if (wthread_busy(m->w))
		return -1;
	memset(&f, 0, sizeof f);
	for (k = 0; k < n; k++)
		if (ids[k] < snapshot_count(m->snap) &&
		    srv[k] < store_nservers(m->store))
			fixes_add(&f, ids[k], srv[k]);
	rc = 0;
	if (f.n > 0)
		repair(m, &f, reason, n == 1 ?
		    store_server_name(m->store, srv[0]) : NULL, 0, NULL);
	free(f.v);
	return rc;
}

void
monitor_server_lost(struct monitor *m, size_t i, const char *reason)
{
	struct mon_server	*ms;
	struct store_stats	 ss;

	if (m->idle || m->store == NULL || i >= store_nservers(m->store))
		return;
	ms = &m->sv[i];
	store_reconnect(m->store, i);
	/* The writer thread's connection is to the old process too. */
	wthread_reconnect(m->w, i);
	store_probe(m->store, true);
	if (store_stats(m->store, i, &ss) == -1) {
		store_probe(m->store, false);
		ms->down = true;
		unconfirm(m, i);
		return;
	}
	store_probe(m->store, false);
	ms->down = false;
	ms->known = true;
	ms->seen = ss;
	ms->at = mono_ms();
	unconfirm(m, i);
	empty_detected(m, i, reason, &ss);
	if (m->snap != NULL)
		repair_server(m, i, reason);
}

int
monitor_compare(struct store *st, const struct snapshot *snap, FILE *out)
{
	const struct entry	*v = snapshot_entries(snap);
	struct ask			 a;
	struct store_stats		 ss;
	size_t				 i, j, checked = 0, missing = 0;
	size_t				 differ = 0, down = 0, from;

	for (i = 0; i < store_nservers(st); i++) {
		memset(&a, 0, sizeof a);
		from = 0;
		/* First contact: also learns the item size limit. */
		if (store_stats(st, i, &ss) == -1 ||
		    ask_server(st, snap, i, &from, snapshot_count(snap),
		    SIZE_MAX, &a) == -1) {
			fprintf(out, "unreachable server=%s\n",
			    store_server_name(st, i));
			down++;
		}
		for (j = 0; j < a.n; j++) {
			const struct entry *e = &v[a.ids[j]];

			checked++;
			if (a.seen[j] == 1)
				continue;
			if (a.seen[j] == 0)
				missing++;
			else
				differ++;
			fprintf(out, "%s server=%s wire=%s key=%s\n",
			    a.seen[j] == 0 ? "missing" : "differs",
			    store_server_name(st, i), e->wire, e->key);
		}
		ask_free(&a);
	}
	fprintf(out, "summary keys=%zu checked=%zu missing=%zu differ=%zu "
	    "unreachable_servers=%zu\n", snapshot_count(snap), checked,
	    missing, differ, down);
	return missing + differ + down > 0 ? 1 : 0;
}
