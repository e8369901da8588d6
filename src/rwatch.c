/*
 * rwatch.c: the reader watch wired to the publish and the repairs.
 *
 * The watches (mcwatch.c, rdwatch.c) deliver lines and events; here they
 * are classified against the table of the last publish (readers.c, owned
 * here and rebuilt when the snapshot changes), counted, reported and
 * turned into repairs, which the monitor does (the one writer's path).
 * Nothing here writes the cache or blocks: repairs run from a timer.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "family.h"
#include "log.h"
#include "mcwatch.h"
#include "metrics.h"
#include "rdwatch.h"
#include "readers.h"
#include "rwatch.h"
#include "secret.h"
#include "util.h"

/* Example keys in reader_miss and cache_evicted. */
#define EXAMPLES_MAX	3
/* reader_miss and cache_evicted at most this often. */
#define REPORT_MS	1000
/* reader_watch_skipped at most this often. */
#define SKIPPED_MS	60000
/* Seconds of disagreement tolerated between uptime and our clock. */
#define UPTIME_SLACK_S	2

enum rw_kind {
	RW_LOST,
	RW_ABSENT,
	RW_ELSEWHERE,
	RW_KINDS
};

/* What one server's readers missed since the last report. */
struct rw_report {
	uint64_t	 n[RW_KINDS][FAM_COUNT];
	uint64_t	 total;
	uint64_t	 evicted[FAM_COUNT];
	uint64_t	 nevicted;
	char		*ex[EXAMPLES_MAX];	/* Django keys, any length */
	size_t		 nex;
	char		*evex[EXAMPLES_MAX];
	size_t		 nevex;
};

static void	report_clear(struct rw_report *);

struct rw_server {
	struct rwatch	*rw;
	size_t		 i;
	char		*name;
	struct mcw	*mc;
	struct rdw	*rd;
	bool		 up;
	bool		 known;		/* a watch came up before */
	long		 pid;		/* memcached, at that watch */
	uint64_t	 uptime;
	uint64_t	 up_at;		/* mono_ms */
	char		 run_id[48];	/* Redis */
	bool		 told_unavailable;
	bool		 told_down;	/* since it was last up */
	uint64_t	 skipped;	/* not logged yet */
	uint64_t	 skipped_at;	/* mono_ms of the last log */
	uint64_t	 burst_at;	/* the second lost misses are counted in */
	size_t		 burst;
	struct rw_report rep;
};

/* A key to write back, and why. */
struct rw_fix {
	size_t	 e;
	size_t	 srv;
	bool	 evicted;
};

struct rwatch {
	struct event_base	*base;
	struct monitor		*mon;
	struct store		*store;
	uint64_t		 store_serial;
	enum cfg_reader_watch	 mode;
	struct keyfn		 kf;
	size_t			 n;
	struct rw_server	 sv[STORE_MAX_SERVERS];
	/* Redis: what the watch connects with */
	char			*password;
	char			*password_file;
	bool			 password_optional;

	uint64_t		 snap_serial;
	const struct entry	*v;		/* the snapshot's entries */
	size_t			 nv;
	struct readers		*table;
	uint64_t		*pending;	/* per entry: servers queued */
	struct rw_fix		*fix;
	size_t			 nfix;
	size_t			 capfix;
	struct event		*batch_ev;
	struct event		*report_ev;
	uint64_t		 reported_at;
};

static void	on_batch(evutil_socket_t, short, void *);
static void	on_report(evutil_socket_t, short, void *);

struct rwatch *
rwatch_new(struct event_base *base, struct monitor *mon)
{
	struct rwatch	*rw;

	rw = xcalloc(1, sizeof *rw);
	rw->base = base;
	rw->mon = mon;
	rw->batch_ev = event_new(base, -1, 0, on_batch, rw);
	rw->report_ev = event_new(base, -1, 0, on_report, rw);
	return rw;
}

/* Stop every watch (no callback runs after). */
static void
stop(struct rwatch *rw)
{
	size_t	i;

	for (i = 0; i < rw->n; i++) {
		struct rw_server *s = &rw->sv[i];

		mcw_free(s->mc);
		rdw_free(s->rd);
		if (s->up)
			metrics_reader_watch(s->name, false, 0);
		free(s->name);
		report_clear(&s->rep);
		memset(s, 0, sizeof *s);
	}
	rw->n = 0;
	if (rw->store != NULL) {
		store_set_reads(rw->store, NULL);
		store_set_announce(rw->store, false);
	}
}

static void
drop_table(struct rwatch *rw)
{
	readers_free(rw->table);
	rw->table = NULL;
	free(rw->pending);
	rw->pending = NULL;
	rw->nfix = 0;
	rw->v = NULL;
	rw->nv = 0;
	rw->snap_serial = 0;
}

void
rwatch_free(struct rwatch *rw)
{
	if (rw == NULL)
		return;
	stop(rw);
	drop_table(rw);
	free(rw->fix);
	event_free(rw->batch_ev);
	event_free(rw->report_ev);
	key_clear(&rw->kf);
	secret_free(rw->password);
	free(rw->password_file);
	free(rw);
}

void
rwatch_set_snapshot(struct rwatch *rw, const struct snapshot *snap)
{
	if (snap != NULL && snapshot_serial(snap) == rw->snap_serial &&
	    rw->table != NULL)
		return;
	/* Queued fixes name entries of the old snapshot. */
	drop_table(rw);
	if (snap == NULL || rw->mode == READER_WATCH_OFF)
		return;
	rw->v = snapshot_entries(snap);
	rw->nv = snapshot_count(snap);
	rw->snap_serial = snapshot_serial(snap);
	rw->table = readers_new(rw->v, rw->nv, &rw->kf);
	rw->pending = xcalloc(rw->nv + 1, sizeof *rw->pending);
}

/* --- reports ---------------------------------------------------------- */

static void
add_example(char **ex, size_t *n, const char *key)
{
	size_t	j;

	if (*n == EXAMPLES_MAX)
		return;
	for (j = 0; j < *n; j++)
		if (strcmp(ex[j], key) == 0)
			return;
	ex[(*n)++] = xstrdup(key);
}

/* Forget a report, its examples freed. */
static void
report_clear(struct rw_report *r)
{
	size_t	j;

	for (j = 0; j < r->nex; j++)
		free(r->ex[j]);
	for (j = 0; j < r->nevex; j++)
		free(r->evex[j]);
	memset(r, 0, sizeof *r);
}

static void
examples(struct buf *b, char *const *ex, size_t n)
{
	size_t	j;

	for (j = 0; j < n; j++)
		buf_printf(b, "%s%s", j > 0 ? " " : "", ex[j]);
	buf_addc(b, '\0');
}

/* Counts by family as "prefix_<family>=N" fields of fmt, into c[]. */
static size_t
family_fields(struct buf *fmt, const char *prefix, const uint64_t *n,
    unsigned long long *c, size_t nc)
{
	size_t	f;

	for (f = 0; f < FAM_COUNT; f++) {
		if (n[f] == 0)
			continue;
		buf_printf(fmt, " %s_%s=%%llu", prefix,
		    family_name((enum family)f));
		c[nc++] = n[f];
	}
	return nc;
}

static uint64_t
sum(const uint64_t *n)
{
	uint64_t	t = 0;
	size_t		f;

	for (f = 0; f < FAM_COUNT; f++)
		t += n[f];
	return t;
}

static void
report_server(struct rw_server *s)
{
	struct rw_report	*r = &s->rep;
	unsigned long long	 c[3 * FAM_COUNT];
	struct buf		 fmt, ex;
	size_t			 nc = 0;

	_Static_assert(FAM_COUNT == 9, "report_server passes 27 counts");
	memset(c, 0, sizeof c);
	if (r->total > 0) {
		buf_init(&fmt);
		buf_init(&ex);
		examples(&ex, r->ex, r->nex);
		buf_adds(&fmt, "server=%s lost=%llu absent=%llu "
		    "elsewhere=%llu examples=%s");
		nc = family_fields(&fmt, "lost", r->n[RW_LOST], c, nc);
		nc = family_fields(&fmt, "absent", r->n[RW_ABSENT], c, nc);
		nc = family_fields(&fmt, "elsewhere", r->n[RW_ELSEWHERE], c,
		    nc);
		buf_addc(&fmt, '\0');
		log_event(sum(r->n[RW_LOST]) + sum(r->n[RW_ELSEWHERE]) > 0 ?
		    LOG_WARNING : LOG_INFO, "reader_miss",
		    (const char *)fmt.data, s->name,
		    (unsigned long long)sum(r->n[RW_LOST]),
		    (unsigned long long)sum(r->n[RW_ABSENT]),
		    (unsigned long long)sum(r->n[RW_ELSEWHERE]),
		    (const char *)ex.data,
		    c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9],
		    c[10], c[11], c[12], c[13], c[14], c[15], c[16], c[17],
		    c[18], c[19], c[20], c[21], c[22], c[23], c[24], c[25],
		    c[26]);
		buf_free(&fmt);
		buf_free(&ex);
	}
	if (r->nevicted > 0) {
		memset(c, 0, sizeof c);
		buf_init(&fmt);
		buf_init(&ex);
		examples(&ex, r->evex, r->nevex);
		buf_adds(&fmt, "server=%s evicted=%llu examples=%s");
		nc = family_fields(&fmt, "evicted", r->evicted, c, 0);
		buf_addc(&fmt, '\0');
		log_event(LOG_WARNING, "cache_evicted", (const char *)fmt.data,
		    s->name, (unsigned long long)r->nevicted,
		    (const char *)ex.data, c[0], c[1], c[2], c[3], c[4], c[5],
		    c[6], c[7], c[8]);
		buf_free(&fmt);
		buf_free(&ex);
	}
	(void)nc;
	report_clear(r);
}

static void
on_report(evutil_socket_t fd, short what, void *arg)
{
	struct rwatch	*rw = arg;
	size_t		 i;

	(void)fd;
	(void)what;
	rw->reported_at = mono_ms();
	for (i = 0; i < rw->n; i++)
		report_server(&rw->sv[i]);
}

/* Report soon: now if the last report is a second old, else then. */
static void
report_soon(struct rwatch *rw)
{
	struct timeval	tv;
	uint64_t	now = mono_ms(), ms = 0;

	if (event_pending(rw->report_ev, EV_TIMEOUT, NULL))
		return;
	if (rw->reported_at != 0 && now < rw->reported_at + REPORT_MS)
		ms = rw->reported_at + REPORT_MS - now;
	tv.tv_sec = (long)(ms / 1000);
	tv.tv_usec = (long)(ms % 1000) * 1000;
	event_add(rw->report_ev, &tv);
}

/* --- repairs ---------------------------------------------------------- */

static void
on_batch(evutil_socket_t fd, short what, void *arg)
{
	struct rwatch	*rw = arg;
	size_t		*ids, *srv, k, n, pass;

	(void)fd;
	(void)what;
	if (rw->nfix == 0)
		return;
	ids = xreallocarray(NULL, rw->nfix, sizeof *ids);
	srv = xreallocarray(NULL, rw->nfix, sizeof *srv);
	/* Misses first, then evictions: each repair says its reason. */
	for (pass = 0; pass < 2; pass++) {
		for (k = n = 0; k < rw->nfix; k++) {
			if (rw->fix[k].evicted != (pass == 1))
				continue;
			ids[n] = rw->fix[k].e;
			srv[n++] = rw->fix[k].srv;
		}
		if (n > 0)
			(void)monitor_repair_keys(rw->mon, ids, srv, n,
			    pass == 0 ? "reader miss" : "eviction");
	}
	for (k = 0; k < rw->nfix; k++)
		rw->pending[rw->fix[k].e] = 0;
	rw->nfix = 0;
	free(ids);
	free(srv);
}

/* Queue entry e for a write back to server srv. */
static void
queue_fix(struct rwatch *rw, const struct entry *e, size_t srv, bool evicted)
{
	struct timeval	 tv = { 0, RWATCH_BATCH_MS * 1000 };
	size_t		 id = (size_t)(e - rw->v);

	if (id >= rw->nv || (rw->pending[id] >> srv & 1) != 0)
		return;
	rw->pending[id] |= (uint64_t)1 << srv;
	if (rw->nfix == rw->capfix) {
		rw->capfix = rw->capfix == 0 ? 64 : rw->capfix * 2;
		rw->fix = xreallocarray(rw->fix, rw->capfix, sizeof *rw->fix);
	}
	rw->fix[rw->nfix].e = id;
	rw->fix[rw->nfix].srv = srv;
	rw->fix[rw->nfix].evicted = evicted;
	rw->nfix++;
	if (!event_pending(rw->batch_ev, EV_TIMEOUT, NULL))
		event_add(rw->batch_ev, &tv);
}

/* A lost miss on s: many in a second mean the server lost everything. */
static void
count_burst(struct rw_server *s)
{
	uint64_t	now = mono_ms();

	if (now >= s->burst_at + 1000) {
		s->burst_at = now;
		s->burst = 0;
	}
	if (++s->burst == RWATCH_BURST)
		monitor_server_lost(s->rw->mon, s->i, "lost misses");
}

/* --- what a watch saw --------------------------------------------------- */

/* A read of wire (a miss unless hit) on server s. */
static void
saw_read(struct rw_server *s, const char *wire, size_t len, bool hit)
{
	struct rwatch		*rw = s->rw;
	struct readers_key	 k;
	enum rw_kind		 kind;
	const char		*fam;

	if (rw->table == NULL ||
	    readers_classify(rw->table, s->i, wire, len, &k) ==
	    READERS_FOREIGN)
		return;
	fam = family_name((enum family)k.family);
	if (hit) {
		metrics_reader_get(fam, "hit", 1);
		return;
	}
	switch (k.kind) {
	case READERS_HELD:
		kind = RW_LOST;
		queue_fix(rw, k.entry, s->i, false);
		count_burst(s);
		break;
	case READERS_ELSEWHERE:
		kind = RW_ELSEWHERE;
		break;
	default:
		kind = RW_ABSENT;
		break;
	}
	metrics_reader_get(fam, kind == RW_ABSENT ? "miss_absent" :
	    "miss_lost", 1);
	s->rep.n[kind][k.family]++;
	s->rep.total++;
	add_example(s->rep.ex, &s->rep.nex, k.key);
	report_soon(rw);
}

/* An eviction of wire on server s. */
static void
saw_eviction(struct rw_server *s, const char *wire, size_t len)
{
	struct readers_key	k;

	if (s->rw->table == NULL ||
	    readers_classify(s->rw->table, s->i, wire, len, &k) !=
	    READERS_HELD)
		return;
	queue_fix(s->rw, k.entry, s->i, true);
	s->rep.evicted[k.family]++;
	s->rep.nevicted++;
	add_example(s->rep.evex, &s->rep.nevex, k.key);
	report_soon(s->rw);
}

static void
saw_skipped(struct rw_server *s, uint64_t n)
{
	uint64_t	now = mono_ms();

	metrics_reader_watch(s->name, s->up, n);
	s->skipped += n;
	if (s->skipped_at != 0 && now < s->skipped_at + SKIPPED_MS)
		return;
	log_event(LOG_WARNING, "reader_watch_skipped", "server=%s "
	    "skipped=%llu", s->name, (unsigned long long)s->skipped);
	s->skipped = 0;
	s->skipped_at = now;
}

/* The watch of s is up again: a restart since the last time? */
static void
came_up(struct rw_server *s, long pid, uint64_t uptime, const char *run_id,
    const char *version)
{
	const char	*reason = NULL;
	uint64_t	 now = mono_ms();

	if (s->known && run_id != NULL && strcmp(run_id, s->run_id) != 0)
		reason = "watch: run_id changed";
	else if (s->known && run_id == NULL && pid != s->pid)
		reason = "watch: pid changed";
	else if (s->known && uptime + UPTIME_SLACK_S < s->uptime +
	    (now - s->up_at) / 1000)
		reason = "watch: uptime went back";
	s->known = true;
	s->pid = pid;
	s->uptime = uptime;
	s->up_at = now;
	snprintf(s->run_id, sizeof s->run_id, "%s", run_id != NULL ? run_id :
	    "");
	s->up = true;
	s->told_unavailable = false;
	s->told_down = false;
	metrics_reader_watch(s->name, true, 0);
	log_event(LOG_INFO, "reader_watch_up", "server=%s version=%s",
	    s->name, version);
	if (reason != NULL)
		monitor_server_lost(s->rw->mon, s->i, reason);
}

/* The watch of s is down: said once a spell (after it was up, or once). */
static void
went_down(struct rw_server *s, const char *why)
{
	bool	was_up = s->up;

	s->up = false;
	metrics_reader_watch(s->name, false, 0);
	if (was_up || !s->told_down)
		log_event(LOG_WARNING, "reader_watch_down", "server=%s error=%s",
		    s->name, why);
	s->told_down = true;
}

/* s cannot be watched (fully): said once until its watch comes up. */
static void
unavailable(struct rw_server *s, int prio, const char *why, const char *fix)
{
	s->up = false;
	metrics_reader_watch(s->name, false, 0);
	if (s->told_unavailable)
		return;
	s->told_unavailable = true;
	if (fix != NULL && fix[0] != '\0')
		log_event(prio, "reader_watch_unavailable", "server=%s error=%s "
		    "fix=%s", s->name, why, fix);
	else
		log_event(prio, "reader_watch_unavailable", "server=%s error=%s",
		    s->name, why);
}

/* memcached */

static void
mc_line(const struct mcw_line *l, void *arg)
{
	struct rw_server	*s = arg;

	switch (l->kind) {
	case MCW_GET:
		if (!l->own)
			saw_read(s, (const char *)l->key, l->keylen,
			    l->status == MCW_FOUND);
		break;
	case MCW_EVICTION:
		saw_eviction(s, (const char *)l->key, l->keylen);
		break;
	case MCW_SKIPPED:
		saw_skipped(s, l->skipped);
		break;
	default:
		break;
	}
}

static void
mc_state(enum mcw_state st, const char *why, const struct mcw_info *info,
    void *arg)
{
	struct rw_server	*s = arg;

	switch (st) {
	case MCW_UP:
		came_up(s, info->pid, info->uptime, NULL, info->version);
		break;
	case MCW_DOWN:
		went_down(s, why);
		break;
	case MCW_UNAVAILABLE:
		unavailable(s, LOG_WARNING, why,
		    "start memcached without -W, or set reader_watch = off");
		break;
	}
}

/* Redis */

static void
rd_event(const struct rdw_event *e, void *arg)
{
	struct rw_server	*s = arg;

	if (e->type == RDW_KEYMISS && !e->own)
		saw_read(s, e->key, e->keylen, false);
	else if (e->type == RDW_EVICTED)
		saw_eviction(s, e->key, e->keylen);
}

static void
rd_state(enum rdw_state st, const char *why, const struct rdw_info *info,
    void *arg)
{
	struct rw_server	*s = arg;

	switch (st) {
	case RDW_UP:
		came_up(s, 0, info->uptime, info->run_id, info->version);
		if (info->missing != 0)
			unavailable(s, LOG_WARNING,
			    why, info->config_set);
		s->up = true;
		metrics_reader_watch(s->name, true, 0);
		break;
	case RDW_DOWN:
		went_down(s, why);
		break;
	case RDW_UNAVAILABLE:
		unavailable(s, LOG_WARNING, why,
		    info != NULL ? info->config_set : NULL);
		break;
	case RDW_REFUSED:
		unavailable(s, LOG_ERR, why,
		    "allow CONFIG and SUBSCRIBE to the daemon's user, or set "
		    "reader_watch = auto");
		break;
	}
}

static int
rd_password(char **pw, char *err, size_t errlen, void *arg)
{
	struct rwatch	*rw = arg;

	return store_redis_password(rw->password, rw->password_file,
	    rw->password_optional, pw, err, errlen);
}

static void
rd_asking(void *arg, size_t i, const char *key, size_t len)
{
	struct rwatch	*rw = arg;

	if (i < rw->n && rw->sv[i].rd != NULL)
		rdw_expect(rw->sv[i].rd, key, len);
}

static void
rd_found(void *arg, size_t i, const char *key, size_t len)
{
	struct rwatch	*rw = arg;

	if (i < rw->n && rw->sv[i].rd != NULL)
		rdw_unexpect(rw->sv[i].rd, key, len);
}

/* --- configuration ---------------------------------------------------- */

static void
start(struct rwatch *rw, const struct cfg *cfg)
{
	static const struct mcw_cbs	mcbs = { mc_line, mc_state };
	static const struct rdw_cbs	rcbs = { rd_event, rd_state };
	size_t				i;

	rw->n = store_nservers(rw->store);
	for (i = 0; i < rw->n; i++) {
		struct rw_server *s = &rw->sv[i];

		s->rw = rw;
		s->i = i;
		s->name = xstrdup(store_server_name(rw->store, i));
		if (cfg->backend == BACKEND_REDIS) {
			struct rdw_opts	o;

			memset(&o, 0, sizeof o);
			o.host = cfg->redis_host;
			o.port = cfg->redis_port;
			o.socket = cfg->redis_socket;
			o.db = cfg->redis_db;
			o.user = cfg->redis_user;
			o.password = rd_password;
			o.password_arg = rw;
			o.mode = cfg->reader_watch == READER_WATCH_ON ? RDW_ON :
			    RDW_AUTO;
			o.want = RDW_MISSES | RDW_EVICTIONS;
			o.timeout_ms = cfg->mc_connect_timeout_ms;
			o.backoff_max_ms = 500;
			s->rd = rdw_new(rw->base, &o, &rcbs, s);
		} else {
			struct mcw_opts	o;

			memset(&o, 0, sizeof o);
			o.host = cfg->servers[i].host;
			o.port = cfg->servers[i].port;
			o.streams = "fetchers evictions connevents";
			o.timeout_ms = cfg->mc_connect_timeout_ms;
			o.backoff_max_ms = 500;
			o.awake_ms = 100;
			s->mc = mcw_new(rw->base, &o, &mcbs, s);
		}
	}
	if (cfg->backend == BACKEND_REDIS) {
		struct store_reads	r = { rd_asking, rd_found, rw };

		store_set_reads(rw->store, &r);
	} else
		store_set_announce(rw->store, true);
}

void
rwatch_configure(struct rwatch *rw, const struct cfg *cfg, struct store *st,
    const struct keyfn *kf)
{
	bool	same = rw->store == st && rw->store_serial == store_serial(st)
	    && rw->mode == cfg->reader_watch && rw->kf.fn == kf->fn &&
	    rw->kf.hash == kf->hash && rw->kf.prefix != NULL &&
	    strcmp(rw->kf.prefix, kf->prefix) == 0 &&
	    strcmp(rw->kf.version, kf->version) == 0;

	if (same)
		return;
	if (rw->store_serial != store_serial(st))
		rw->store = NULL;	/* freed: nothing to tell it */
	stop(rw);
	drop_table(rw);
	rw->store = st;
	rw->store_serial = store_serial(st);
	rw->mode = cfg->reader_watch;
	key_clear(&rw->kf);
	key_init(&rw->kf, kf->fn, kf->hash, kf->prefix, kf->version);
	secret_free(rw->password);
	free(rw->password_file);
	rw->password = cfg->redis_password != NULL ?
	    xstrdup(cfg->redis_password) : NULL;
	rw->password_file = cfg->redis_password_path != NULL ?
	    xstrdup(cfg->redis_password_path) : NULL;
	rw->password_optional = cfg->redis_password_optional;
	if (rw->mode != READER_WATCH_OFF)
		start(rw, cfg);
}
