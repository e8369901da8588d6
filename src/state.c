/*
 * state.c: the last publish, and how the next one becomes the cache's.
 *
 * A publish is a sequence of steps: the loop makes the next generation
 * (the failure rules log as they go), then the writer thread plans it and
 * writes its details, the loop looks at what the cache refused (and plans
 * again, gen_refuse, while it refuses program values), the thread writes
 * the indexes, then the site lists, then records what reached the cache
 * (and deletes stale keys), and the loop adopts the record and saves it.
 * Between two steps the publish is the loop's; during one, what the step
 * reads or changes (the publish, the record's maps) is the thread's, and
 * the loop leaves it alone: it only reads the state's generation and
 * record, which nothing changes until the publish adopts its own.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "absentfile.h"
#include "dryrun.h"
#include "genfile.h"
#include "log.h"
#include "map.h"
#include "plan.h"
#include "pool.h"
#include "snapfile.h"
#include "state.h"
#include "util.h"
#include "wthread.h"

/* Rounds of writing the details again after the cache refused some. */
#define REFUSAL_ROUNDS	3

struct publish;

/*
 * A record and the plan its entries point into, held by the state and by
 * every save that reads them: the last holder frees them (on the loop).
 */
struct hold {
	int			 refs;
	struct snapshot		*snap;
	struct plan		*plan;		/* or NULL */
};

struct state {
	const struct cfg	*cfg;
	struct store		*store;		/* the loop's (placement, up) */
	struct wthread		*w;		/* writes */
	const struct keyfn	*kf;
	struct pool		*pool;		/* saves, or NULL */
	struct publish		*pub;		/* in progress, or NULL */
	struct catalog		*gen;		/* last published, or NULL */
	struct hold		*hold;		/* snap and plan, or NULL */
	struct plan		*plan;		/* snap's entries point into it */
	struct snapshot		*snap;		/* what the cache holds */
	struct snapshot		*loaded;	/* the file; kept: records point
						   into its values */
	struct snapfile		*file;		/* state_dir's, as of start-up;
						   the save thread's */
	struct map		 absent;	/* key -> absences + 1 */
	struct map		 unsure;	/* recorded, not confirmed */
};

/* The flags every value is written with. */
static uint32_t
value_flags(const struct cfg *cfg)
{
	return cfg->value_format == VALUE_PICKLE ? 1 : 0;
}

/* --- saving ------------------------------------------------------------ */

static struct hold *
hold_new(struct snapshot *snap, struct plan *plan)
{
	struct hold	*h = xcalloc(1, sizeof *h);

	h->refs = 1;
	h->snap = snap;
	h->plan = plan;
	return h;
}

static struct hold *
hold_ref(struct hold *h)
{
	if (h != NULL)
		h->refs++;
	return h;
}

static void
hold_drop(struct hold *h)
{
	if (h == NULL || --h->refs > 0)
		return;
	snapshot_free(h->snap);
	plan_free(h->plan);
	free(h);
}

/*
 * Make snap (and pl, its entries' plan) the record, taking them.  A save
 * that still reads the old one keeps it: nothing waits for it.
 */
static void
set_record(struct state *s, struct snapshot *snap, struct plan *pl)
{
	hold_drop(s->hold);
	s->hold = snap != NULL ? hold_new(snap, pl) : NULL;
	s->snap = snap;
	s->plan = pl;
}

/*
 * A save (a POOL_SAVE job): the thread makes the file hold next, as a
 * delta from prev (what the file held after the save before) or a new
 * base.  Both are held until the job's done has run; the snapfile is the
 * save thread's (jobs of one type run one at a time, in order).
 */
struct save_job {
	struct snapfile		*file;
	struct hold		*prev;		/* or NULL */
	struct hold		*next;
	char			*settings;
	int			 rc;
	struct snapshot_outcome	 o;
};


/*
 * A test hook: PCD_TEST_STOP_AT=save stops the process (SIGSTOP) when the
 * save thread starts a save, so that a test can send SIGTERM then.
 */
static void
test_stop_save(void)
{
	const char	*e = getenv("PCD_TEST_STOP_AT");

	if (e != NULL && strcmp(e, "save") == 0)
		raise(SIGSTOP);
}

/* On the save thread: nothing here logs. */
static void
save_work(void *arg)
{
	struct save_job	*sj = arg;

	test_stop_save();
	sj->rc = snapfile_save(sj->file, sj->prev != NULL ? sj->prev->snap :
	    NULL, sj->next->snap, sj->settings, &sj->o);
}

/* On the loop: say how it went, and let go of what it read. */
static void
save_done(void *arg, bool cancelled)
{
	struct save_job	*sj = arg;

	if (!cancelled)
		snapshot_log_save(sj->next->snap, snapfile_path(sj->file),
		    &sj->o, sj->rc);
	hold_drop(sj->prev);
	hold_drop(sj->next);
	free(sj->settings);
	free(sj);
}

/* Wait for the saves in progress (their outcomes are logged now). */
static void
save_wait(struct state *s)
{
	while (pool_pending(s->pool, POOL_SAVE) > 0)
		pool_wait(s->pool, POOL_SAVE);
}

/*
 * Save the record s->hold, which replaced prev: the save thread writes
 * what changed since prev (nothing, if nothing did).
 */
static void
save(struct state *s, struct hold *prev)
{
	struct save_job	*sj;

	if (snapshot_count(s->snap) == 0)
		return;		/* never a snapshot of nothing */
	sj = xcalloc(1, sizeof *sj);
	sj->file = s->file;
	sj->prev = hold_ref(prev);
	sj->next = hold_ref(s->hold);
	sj->settings = snapshot_settings(s->cfg);
	if (s->pool == NULL) {
		save_work(sj);
		save_done(sj, false);
		return;
	}
	pool_submit(s->pool, POOL_SAVE, s, save_work, save_done, sj);
}

/* --- the record -------------------------------------------------------- */

struct state *
state_new(const struct cfg *cfg, struct store *st, struct wthread *w,
    const struct keyfn *kf, struct pool *pool)
{
	struct state	*s = xcalloc(1, sizeof *s);
	char		*path;

	s->cfg = cfg;
	s->store = st;
	s->w = w;
	s->kf = kf;
	s->pool = pool;
	path = snapshot_path(cfg->state_dir);
	s->file = snapfile_new(path);
	free(path);
	map_init(&s->absent);
	map_init(&s->unsure);
	return s;
}

/* Forget everything recorded (the file stays as it is). */
static void
state_clear(struct state *s)
{
	set_record(s, NULL, NULL);
	catalog_unref(s->gen);
	s->gen = NULL;
	map_free(&s->absent);
	map_init(&s->absent);
	map_free(&s->unsure);
	map_init(&s->unsure);
}

static void	publish_abandon(struct publish *);

void
state_free(struct state *s)
{
	if (s == NULL)
		return;
	/* A publish cut short by wthread_stop() ends in its step's done. */
	wthread_wait(s->w);
	if (s->pub != NULL)
		publish_abandon(s->pub);
	save_wait(s);
	state_clear(s);
	snapshot_free(s->loaded);
	snapfile_free(s->file);
	map_free(&s->absent);
	map_free(&s->unsure);
	free(s);
}

void
state_configure(struct state *s, const struct cfg *cfg, struct store *st,
    const struct keyfn *kf, bool keys_changed)
{
	s->cfg = cfg;
	s->store = st;
	s->kf = kf;
	if (keys_changed) {
		/* Entries, wire keys and servers would all be wrong. */
		state_clear(s);
	}
}

const struct catalog *
state_generation(const struct state *s)
{
	return s->gen;
}

const struct snapshot *
state_snapshot(const struct state *s)
{
	return s->snap;
}

bool
state_load(struct state *s)
{
	struct snapshot		*snap, *view;
	const struct entry	*v;
	const char		*path = snapfile_path(s->file);
	char			*set;
	size_t			 i;

	/* The snapfile is the save thread's while a save runs. */
	save_wait(s);
	set = snapshot_settings(s->cfg);
	snap = snapshot_load(path, set, s->kf, s->store, s->file);
	free(set);
	if (snap == NULL || snapshot_count(snap) == 0) {
		/* Nothing was ever published here: nothing to trust. */
		snapshot_free(snap);
		return false;
	}
	state_clear(s);
	snapshot_free(s->loaded);
	s->loaded = snap;
	s->gen = genfile_read(snap, path);
	/* The record is the file's, borrowed from it (it stays loaded). */
	view = snapshot_new();
	v = snapshot_entries(snap);
	for (i = 0; i < snapshot_count(snap); i++) {
		snapshot_add(view, &v[i]);
		map_put(&s->absent, v[i].key, strlen(v[i].key))->val =
		    (void *)(uintptr_t)1;
	}
	for (i = 0; i < snapshot_ntexts(snap); i++)
		snapshot_add_text_ref(view, &snapshot_texts(snap)[i]);
	absentfile_read(snap, &s->absent, s->cfg->stale_after);
	snapfile_holds(s->file, snapshot_serial(view));
	set_record(s, view, NULL);
	return true;
}

/* --- publishing -------------------------------------------------------- */

/* A value written earlier in this publish: its length and hash. */
struct confirmed {
	size_t		len;
	XXH128_hash_t	hash;
};

/*
 * What one publish keeps while it works: the loop's between steps, the
 * writer thread's during one.
 */
struct publish {
	struct state			*s;
	struct state_publish_opts	 opts;
	state_done_cb			 cb;
	void				*arg;
	struct catalog			*next;
	struct map			 old;		/* key -> old entry */
	struct map			 confirmed;	/* key -> struct confirmed */
	uint64_t			 trusted;	/* servers asked: confirmed */
	struct plan_opts		 po;
	struct plan			*pl;
	enum write_outcome		*out;
	enum writer_rc			 rc;		/* the writer's last */
	struct writer_report		 rep;		/* the step's */
	int				 round;		/* of the details */
	int				 phase;
	struct state_result		 r;
	/* What the cache refused in a round of the details. */
	char				**uuids;
	bool				*stays;
	size_t				 nrefused;
	/* The record, made by the last step. */
	bool				 sweep;
	struct snapshot			*snap;
	struct catalog			*gen;
	struct buf			 stale_ex;	/* stale_deleted examples */
};

/*
 * The servers that hold what the record says, asked now (a value on any
 * other is written, not skipped): none without skip_same or someone to
 * ask.
 */
static uint64_t
trusted_servers(const struct state *s, const struct state_publish_opts *o)
{
	uint64_t	t = 0;
	size_t		i;

	if (!o->skip_same || o->confirmed == NULL)
		return 0;
	for (i = 0; i < store_nservers(s->store); i++)
		if (o->confirmed(o->confirmed_arg, i))
			t |= (uint64_t)1 << i;
	return t;
}

/* Every server of the store, as a mask. */
static uint64_t
all_servers(const struct state *s)
{
	size_t	n = store_nservers(s->store);

	return n >= 64 ? UINT64_MAX : ((uint64_t)1 << n) - 1;
}

/* Whether the cache holds e's bytes already (its write is skipped). */
static bool
is_same(const struct publish *pb, const struct entry *e)
{
	const struct entry	*o;
	struct confirmed	*c;

	c = map_get(&pb->confirmed, e->key, strlen(e->key));
	if (c != NULL)
		return c->len == e->len && XXH128_isEqual(c->hash,
		    XXH3_128bits(e->val, e->len));
	if (!pb->opts.skip_same || (e->servers & ~pb->trusted) != 0 ||
	    map_get(&pb->s->unsure, e->key, strlen(e->key)) != NULL)
		return false;
	o = map_get(&pb->old, e->key, strlen(e->key));
	return o != NULL && o->len == e->len && o->flags == e->flags &&
	    o->servers == e->servers && o->wire != NULL && e->wire != NULL &&
	    strcmp(o->wire, e->wire) == 0 &&
	    (o->val == e->val || memcmp(o->val, e->val, e->len) == 0);
}

/* Write one phase of the plan, skipping what the cache holds. */
static void
write_phase(struct publish *pb, struct store *st,
    const struct writer_gate *gate, int phase)
{
	const struct plan	*pl = pb->pl;
	size_t			 i;

	for (i = 0; i < pl->n; i++)
		if (pb->out[i] == WRITE_PENDING && pl->v[i].phase == phase &&
		    is_same(pb, &pl->v[i]))
			pb->out[i] = WRITE_SAME;
	pb->rc = writer_phase(st, pl->v, pl->n, phase, gate, pb->out,
	    &pb->rep);
}

/* Remember what a round confirmed, for the rounds after it. */
static void
confirm(struct publish *pb, const struct plan *pl,
    const enum write_outcome *out)
{
	struct confirmed	*c;
	struct map_item		*it;
	size_t			 i;

	for (i = 0; i < pl->n; i++) {
		if (!writer_in_cache(out[i]))
			continue;
		it = map_put(&pb->confirmed, pl->v[i].key,
		    strlen(pl->v[i].key));
		if ((c = it->val) == NULL)
			it->val = c = xcalloc(1, sizeof *c);
		c->len = pl->v[i].len;
		c->hash = XXH3_128bits(pl->v[i].val, pl->v[i].len);
	}
}

/*
 * Whether a write that did not happen left the key's old value in the
 * cache: too big (never sent), or refused by a cache that keeps what it
 * held (Redis).  memcached's refused set drops the old item.
 */
static bool
old_value_stays(enum write_outcome o)
{
	return o == WRITE_TOO_BIG || o == WRITE_KEPT;
}

/*
 * The programs whose value the cache refused in a round, and whether the
 * old value stays for each (not replaced, and recorded as in the cache).
 */
static size_t
refused_programs(const struct publish *pb, const struct plan *pl,
    const enum write_outcome *out, char ***uuids, bool **stays)
{
	size_t	i, n = 0;

	*uuids = xcalloc(pl->nprograms + 1, sizeof **uuids);
	*stays = xcalloc(pl->nprograms + 1, sizeof **stays);
	for (i = 0; i < pl->n; i++) {
		if (pl->v[i].family != FAM_PROGRAM || writer_in_cache(out[i]))
			continue;
		(*uuids)[n] = xstrdup(entry_subject(&pl->v[i]));
		(*stays)[n++] = old_value_stays(out[i]) &&
		    map_get(&pb->old, pl->v[i].key, strlen(pl->v[i].key)) !=
		    NULL;
	}
	return n;
}

static void
refused_free(struct publish *pb)
{
	size_t	i;

	for (i = 0; pb->uuids != NULL && pb->uuids[i] != NULL; i++)
		free(pb->uuids[i]);
	free(pb->uuids);
	free(pb->stays);
	pb->uuids = NULL;
	pb->stays = NULL;
	pb->nrefused = 0;
}

/*
 * A key of the record that the plan does not have: its count (full
 * refreshes absent, plus one), this refresh included when it is a sweep.
 */
static uintptr_t
absences(const struct state *s, const char *key, size_t keylen, bool sweep)
{
	uintptr_t	n = (uintptr_t)map_get(&s->absent, key, keylen);

	return (n == 0 ? 1 : n) + (sweep ? 1 : 0);
}

/* Whether a sweep deletes o, whose count is n (absences + 1). */
static bool
stale_due(const struct state *s, const struct entry *o, uintptr_t n,
    bool sweep)
{
	return sweep && s->cfg->stale_after > 0 &&
	    n - 1 >= (uintptr_t)s->cfg->stale_after && o->wire != NULL;
}

/* Append the absent count of a key kept in the record. */
static void
keep_absent(struct map *absent, const struct map_item *it, uintptr_t n)
{
	map_put(absent, it->key, it->keylen)->val = (void *)n;
}

/*
 * Delete the stale keys (absent stale_after times) through the writer;
 * those it could not delete stay in the record, counting on.  The few
 * examples stale_deleted names are kept for the loop.
 */
static void
delete_stale(struct publish *pb, struct store *st,
    const struct writer_gate *gate, struct snapshot *snap,
    struct map *absent, const struct map_item **items,
    const struct entry **v, uintptr_t *counts, size_t n, size_t *deleted)
{
	struct entry		*ev = xcalloc(n + 1, sizeof *ev);
	enum write_outcome	*out = xcalloc(n + 1, sizeof *out);
	size_t			 i;

	for (i = 0; i < n; i++)
		ev[i] = *v[i];
	(void)writer_delete(st, ev, n, gate, out);
	for (i = 0; i < n; i++) {
		if (out[i] == WRITE_OK) {
			if ((*deleted)++ < 5)
				buf_printf(&pb->stale_ex, "%s%s",
				    *deleted > 1 ? " " : "", v[i]->key);
			continue;
		}
		keep_absent(absent, items[i], counts[i]);
		snapshot_add_copy(snap, v[i]);
	}
	free(ev);
	free(out);
}

/*
 * The new record: what the plan put in the cache, and what the cache still
 * holds of the old record (keys this publish did not write, or could not
 * write while the old value stayed).  With sweep (a complete refresh of
 * every site), keys absent stale_after times are deleted instead.
 */
static struct snapshot *
record(struct publish *pb, struct store *st, const struct writer_gate *gate,
    const struct plan *pl, const enum write_outcome *out, bool sweep,
    size_t *deleted)
{
	struct state		 *s = pb->s;
	struct snapshot		 *snap = snapshot_new();
	struct map		  inplan, absent;
	struct map_item		 *it;
	const struct map_item	**sitems;
	const struct entry	**sv;
	uintptr_t		 *scounts, n;
	size_t			  i, ns = 0;
	bool			  stopped = pb->rc != WRITER_OK;
	const struct entry	 *o;

	map_init(&inplan);
	map_init(&absent);
	map_free(&s->unsure);
	map_init(&s->unsure);
	for (i = 0; i < pl->n; i++) {
		map_put(&inplan, pl->v[i].key, strlen(pl->v[i].key))->val =
		    (void *)(uintptr_t)(i + 1);
		map_put(&absent, pl->v[i].key, strlen(pl->v[i].key))->val =
		    (void *)(uintptr_t)1;
		if (writer_in_cache(out[i]))
			snapshot_add(snap, &pl->v[i]);
		else if (stopped && (out[i] == WRITE_PENDING ||
		    out[i] == WRITE_DOWN)) {
			/*
			 * A server failed on the way (or writing stopped):
			 * what should be there is recorded for the monitor
			 * to put back, but never trusted as written.
			 */
			snapshot_add(snap, &pl->v[i]);
			map_put(&s->unsure, pl->v[i].key,
			    strlen(pl->v[i].key))->val = s;
		}
	}
	sitems = xcalloc(pb->old.nitems + 1, sizeof *sitems);
	sv = xcalloc(pb->old.nitems + 1, sizeof *sv);
	scounts = xcalloc(pb->old.nitems + 1, sizeof *scounts);
	MAP_FOREACH(&pb->old, it) {
		o = it->val;
		if ((n = (uintptr_t)map_get(&inplan, it->key, it->keylen))
		    != 0) {
			/* Not written, and the old value stays: keep it. */
			if ((out[n - 1] == WRITE_PENDING && !stopped) ||
			    old_value_stays(out[n - 1]))
				snapshot_add_copy(snap, o);
			continue;
		}
		n = absences(s, it->key, it->keylen, sweep);
		if (stale_due(s, o, n, sweep)) {
			sitems[ns] = it;
			sv[ns] = o;
			scounts[ns++] = n;
			continue;
		}
		keep_absent(&absent, it, n);
		snapshot_add_copy(snap, o);
	}
	if (ns > 0)
		delete_stale(pb, st, gate, snap, &absent, sitems, sv, scounts,
		    ns, deleted);
	free(sitems);
	free(sv);
	free(scounts);
	map_free(&inplan);
	map_free(&s->absent);
	s->absent = absent;
	return snap;
}

/*
 * A test hook: PCD_TEST_STOP_AFTER_PHASE=N stops the process (SIGSTOP)
 * once phase N is in the cache, so that a test can kill -9 it exactly
 * between the details and the indexes (tests/integration/test_matrix.py).
 */
static void
test_stop_point(int phase)
{
	const char	*e = getenv("PCD_TEST_STOP_AFTER_PHASE");

	if (e != NULL && strtol(e, NULL, 10) == phase)
		raise(SIGSTOP);
}

/* refresh_failed for a publish that a cache server stopped, naming it. */
static void
log_server_failed(const struct store *st)
{
	struct buf	names;
	size_t		i;

	buf_init(&names);
	for (i = 0; i < store_nservers(st); i++)
		if (!store_server_up(st, i))
			buf_printf(&names, "%s%s", names.len > 0 ? "," : "",
			    store_server_name(st, i));
	log_event(LOG_ERR, "refresh_failed", "stage=publish server=%s "
	    "error=%s", names.len > 0 ? (const char *)names.data : "-",
	    "a cache server failed or was down while the values were "
	    "written: its keys are not confirmed, and the indexes and site "
	    "lists written after them were not, so that none names a value "
	    "that is not there");
	buf_free(&names);
}

/* Count what a plan and its outcomes amount to. */
static void
tally(const struct plan *pl, const enum write_outcome *out,
    struct state_result *r)
{
	size_t	i;

	r->programs = pl->nprograms;
	r->pathways = pl->npathways;
	for (i = 0; i < pl->n; i++) {
		r->keys[pl->v[i].family]++;
		switch (out[i]) {
		case WRITE_OK:
			r->ws.written++;
			r->ws.bytes += pl->v[i].len;
			break;
		case WRITE_SAME:
			r->ws.skipped++;
			break;
		default:
			r->ws.failed++;
			break;
		}
	}
}

/*
 * Whether next is the generation last published, record for record: an
 * incremental refresh that found nothing new (design.md: Incremental refresh).
 * Every site fetched whole, the same lists, the very same program records
 * (shared, so the same values) and equal pathways; nothing unsure, no stale
 * key being counted, every server asked and holding what was recorded.
 */
static bool
same_generation(const struct state *s, const struct catalog *next,
    uint64_t trusted)
{
	const struct catalog		*gen = s->gen;
	const struct catalog_site	*a, *b;
	size_t				 i, j;

	if (gen == NULL || s->plan == NULL || s->snap == NULL ||
	    s->unsure.nitems > 0 || gen->nsites != next->nsites)
		return false;
	/* Keys recorded but not planned are absent: their count goes on. */
	if (s->cfg->stale_after > 0 &&
	    snapshot_count(s->snap) != s->plan->n)
		return false;
	if (trusted != all_servers(s))
		return false;
	for (i = 0; i < next->nsites; i++) {
		a = gen->sites[i];
		b = next->sites[i];
		if (strcmp(a->domain, b->domain) != 0 ||
		    a->site_id != b->site_id || a->status != b->status ||
		    (b->status != SITE_OK && b->status != SITE_UNCONFIGURED) ||
		    a->has_data != b->has_data || a->full_ok != b->full_ok ||
		    a->incr != b->incr || a->nuuids != b->nuuids ||
		    a->nprograms != b->nprograms ||
		    (a->pathways == NULL) != (b->pathways == NULL))
			return false;
		for (j = 0; j < b->nuuids; j++)
			if (strcmp(a->uuids[j], b->uuids[j]) != 0)
				return false;
		for (j = 0; j < b->nprograms; j++)
			if (a->programs[j] != b->programs[j])
				return false;
		if (b->pathways != NULL && a->pathways != b->pathways &&
		    !json_equal(a->pathways, b->pathways))
			return false;
	}
	return true;
}

/* The result of publishing the same generation again: all skipped. */
static void
same_result(const struct state *s, struct state_result *r)
{
	const struct plan	*pl = s->plan;
	size_t			 i;

	r->programs = pl->nprograms;
	r->pathways = pl->npathways;
	for (i = 0; i < pl->n; i++)
		r->keys[pl->v[i].family]++;
	r->ws.skipped = pl->n;
	r->complete = pl->errors == 0;
	r->published = r->sites.sites_ok > 0;
}

/* The sites' outcomes after writing (some may have become partial). */
static void
recount(const struct catalog *next, struct gen_counts *c)
{
	size_t	i;

	c->sites_ok = c->sites_partial = 0;
	for (i = 0; i < next->nsites; i++) {
		if (next->sites[i]->status == SITE_OK)
			c->sites_ok++;
		else if (next->sites[i]->status == SITE_PARTIAL)
			c->sites_partial++;
	}
}

/* Free what a publish holds and let the writer go. */
static void
publish_free(struct publish *pb)
{
	struct map_item	*it;

	pb->s->pub = NULL;
	wthread_release(pb->s->w, pb);
	MAP_FOREACH(&pb->confirmed, it)
		free(it->val);
	map_free(&pb->confirmed);
	map_free(&pb->old);
	refused_free(pb);
	writer_report_free(&pb->rep);
	buf_free(&pb->stale_ex);
	plan_free(pb->pl);
	free(pb->out);
	snapshot_free(pb->snap);
	catalog_unref(pb->gen);
	catalog_unref(pb->next);
	free(pb);
}

/*
 * Stopped (wthread_stop: the process is shutting down) in the middle: the
 * record and the file stay as the last complete publish left them, and
 * done is not called.
 */
static void
publish_abandon(struct publish *pb)
{
	publish_free(pb);
}

/*
 * After each step of the writer thread: log what it saw.  false if the
 * publish was stopped (it is then abandoned).
 */
static bool
step_done(struct publish *pb, bool stopped)
{
	struct state	*s = pb->s;

	writer_report_log(&pb->rep, s->store, wthread_stopping(s->w));
	writer_report_free(&pb->rep);
	if (stopped) {
		publish_abandon(pb);
		return false;
	}
	return true;
}

static void	next_phase(struct publish *, int);
static void	details(struct publish *);

/* Writer thread: plan the generation and write its details. */
static void
details_work(struct store *st, const struct writer_gate *gate, void *arg)
{
	struct publish	*pb = arg;
	struct state	*s = pb->s;

	pb->pl = plan_build(pb->next, &pb->po, s->kf, st, value_flags(s->cfg));
	pb->out = xcalloc(pb->pl->n + 1, sizeof *pb->out);
	write_phase(pb, st, gate, 0);
}

/* Writer thread: done with a round's plan before next changes. */
static void
settle_work(struct store *st, const struct writer_gate *gate, void *arg)
{
	struct publish	*pb = arg;

	(void)st;
	(void)gate;
	confirm(pb, pb->pl, pb->out);
	plan_free(pb->pl);
	free(pb->out);
	pb->pl = NULL;
	pb->out = NULL;
}

/*
 * The programs the cache refused are settled (gen_refuse: a program
 * dropped can change others' pathway ids) and the details planned again.
 */
static void
settle_done(void *arg, bool stopped)
{
	struct publish	*pb = arg;
	size_t		 i;

	if (!step_done(pb, stopped))
		return;
	for (i = 0; i < pb->nrefused; i++)
		(void)gen_refuse(pb->next, pb->s->gen, pb->uuids[i],
		    pb->stays[i]);
	refused_free(pb);
	gen_finish(pb->next, false, &pb->r.sites.errors);
	pb->round++;
	details(pb);
}

/* The details are written: while the cache refuses programs, again. */
static void
details_done(void *arg, bool stopped)
{
	struct publish	*pb = arg;

	if (!step_done(pb, stopped))
		return;
	plan_log(pb->pl);
	if (pb->rc == WRITER_OK && pb->round + 1 < REFUSAL_ROUNDS) {
		pb->nrefused = refused_programs(pb, pb->pl, pb->out,
		    &pb->uuids, &pb->stays);
		if (pb->nrefused > 0) {
			wthread_submit(pb->s->w, "publish", pb->opts.gate,
			    settle_work, settle_done, pb);
			return;
		}
		refused_free(pb);
	}
	next_phase(pb, 1);
}

/* Plan and write the details (a round). */
static void
details(struct publish *pb)
{
	wthread_submit(pb->s->w, "publish", pb->opts.gate, details_work,
	    details_done, pb);
}

/* Writer thread: a later phase (indexes, site lists). */
static void
phase_work(struct store *st, const struct writer_gate *gate, void *arg)
{
	struct publish	*pb = arg;

	write_phase(pb, st, gate, pb->phase);
}

static void
phase_done(void *arg, bool stopped)
{
	struct publish	*pb = arg;

	if (!step_done(pb, stopped))
		return;
	next_phase(pb, pb->phase + 1);
}

/*
 * Writer thread: the record of what reached the cache (stale keys
 * deleted), and the generation it is of, with the sites text the file
 * keeps.
 */
static void
record_work(struct store *st, const struct writer_gate *gate, void *arg)
{
	struct publish	*pb = arg;
	struct state	*s = pb->s;

	pb->snap = record(pb, st, gate, pb->pl, pb->out, pb->sweep,
	    &pb->r.deleted);
	if (pb->r.published || pb->r.deleted > 0 || pb->rc != WRITER_OK) {
		pb->gen = gen_merge(pb->next, s->gen, s->cfg);
		genfile_put(pb->snap, pb->gen);
	} else {
		/* Nothing new reached the cache: the generation stays. */
		pb->gen = gen_learn(s->gen, pb->next);
		absentfile_copy_others(pb->snap, s->snap);
	}
}

/*
 * Make what was published (or learnt) the state's record, and tell the
 * caller.  A save still reading the record replaced here holds it
 * (struct hold): nothing waits for the disk.
 */
static void
adopt(struct publish *pb)
{
	struct state	*s = pb->s;
	state_done_cb	 cb = pb->cb;
	void		*arg = pb->arg;
	struct state_result r = pb->r;
	struct hold	*prev;

	if (!(r.published || r.deleted > 0 || pb->rc != WRITER_OK) &&
	    s->snap == NULL) {
		/* Nothing ever published: nothing to record. */
		publish_free(pb);
		cb(&r, arg);
		return;
	}
	absentfile_put(pb->snap, &s->absent);
	/* (What this publish wrote is in the record either way.) */
	catalog_unref(s->gen);
	s->gen = pb->gen;
	prev = hold_ref(s->hold);
	set_record(s, pb->snap, pb->pl);
	/* prev's reference keeps it: the analyzer does not count them. */
	save(s, prev);	/* NOLINT(clang-analyzer-unix.Malloc) */
	hold_drop(prev);
	pb->gen = NULL;
	pb->pl = NULL;
	pb->snap = NULL;
	publish_free(pb);
	cb(&r, arg);
}

static void
record_done(void *arg, bool stopped)
{
	struct publish	*pb = arg;
	struct state	*s = pb->s;

	if (!step_done(pb, stopped))
		return;
	if (pb->r.deleted > 0)
		log_event(LOG_INFO, "stale_deleted", "keys=%zu stale_after=%d "
		    "examples=%s", pb->r.deleted, s->cfg->stale_after,
		    (const char *)pb->stale_ex.data);
	adopt(pb);
}

/* Every phase written (or writing stopped): count, then record. */
static void
writes_done(struct publish *pb)
{
	struct state_result	*r = &pb->r;

	r->server_failed = pb->rc == WRITER_FAILED;
	r->lease_lost = pb->rc == WRITER_LEASE_LOST;
	if (r->server_failed)
		log_server_failed(pb->s->store);
	tally(pb->pl, pb->out, r);
	recount(pb->next, &r->sites);
	r->complete = pb->rc == WRITER_OK && r->ws.failed == 0 &&
	    pb->pl->errors == 0 && r->sites.errors == 0 &&
	    r->sites.sites_ok + r->sites.sites_unconfigured == r->sites.sites;
	r->published = pb->rc == WRITER_OK &&
	    r->sites.sites_ok + r->sites.sites_partial > 0 &&
	    r->ws.written + r->ws.skipped > 0;
	pb->sweep = r->complete && pb->opts.every_site;
	wthread_submit(pb->s->w, "publish", pb->opts.gate, record_work,
	    record_done, pb);
}

/* Write phase (and those after it) unless the writer stopped. */
static void
next_phase(struct publish *pb, int phase)
{
	if (pb->rc != WRITER_OK || phase >= FAMILY_PHASES) {
		writes_done(pb);
		return;
	}
	test_stop_point(phase - 1);
	pb->phase = phase;
	wthread_submit(pb->s->w, "publish", pb->opts.gate, phase_work,
	    phase_done, pb);
}

void
state_publish(struct state *s, struct fetch_result *fr,
    const struct state_publish_opts *opts, state_done_cb cb, void *arg)
{
	struct gen_opts		 go = { s->cfg, opts->force };
	struct publish		*pb;
	struct catalog		*next;
	struct state_result	 r;
	const struct entry	*v;
	uint64_t		 trusted;
	size_t			 i;

	memset(&r, 0, sizeof r);
	next = gen_build(fr, s->gen, &go, &r.sites);
	/*
	 * Asked here, on the loop (the monitor is the loop's): the writer
	 * thread reads the answers in pb->trusted, never the monitor.
	 */
	trusted = trusted_servers(s, opts);
	if (opts->skip_same && same_generation(s, next, trusted)) {
		/* Nothing to plan, write or record (stale keys: not counted). */
		same_result(s, &r);
		catalog_unref(next);
		cb(&r, arg);
		return;
	}
	pb = xcalloc(1, sizeof *pb);
	pb->s = s;
	pb->opts = *opts;
	pb->opts.confirmed = NULL;	/* asked above: trusted */
	pb->opts.confirmed_arg = NULL;
	pb->trusted = trusted;
	pb->cb = cb;
	pb->arg = arg;
	pb->next = next;
	pb->r = r;
	map_init(&pb->old);
	map_init(&pb->confirmed);
	buf_init(&pb->stale_ex);
	plan_opts_from(s->cfg, &pb->po);
	for (i = 0; s->snap != NULL && i < snapshot_count(s->snap); i++) {
		v = &snapshot_entries(s->snap)[i];
		map_put(&pb->old, v->key, strlen(v->key))->val = (void *)v;
	}
	s->pub = pb;
	wthread_claim(s->w, pb);
	/* A publish is worth one new try of a server that was down. */
	wthread_retry_now(s->w);
	details(pb);
}

bool
state_publishing(const struct state *s)
{
	return s->pub != NULL;
}

/* --- --dry-run --------------------------------------------------------- */

/*
 * The programs a listed site would have: fetched, or kept from the last
 * publish for a failed detail (as gen.c's site_listed keeps them), the
 * count the shrink guard weighs.
 */
static size_t
obtained(const struct fetch_site *fs, const struct catalog *last)
{
	const struct catalog_site	*ls = catalog_find_site(last,
					    fs->domain);
	size_t				 i, n = 0;

	for (i = 0; i < fs->nprogs; i++)
		n += fs->progs[i].p != NULL || (ls != NULL &&
		    catalog_site_program(ls, fs->progs[i].uuid) != NULL);
	return n;
}

/* The sites the shrink guard holds in next, with their counts. */
static struct dry_held *
held_sites(const struct state *s, const struct catalog *next,
    const size_t *now, const struct fetch_result *fr, size_t *n)
{
	struct dry_held	*h = xcalloc(next->nsites + 1, sizeof *h);
	size_t		 i, j;

	*n = 0;
	for (i = 0; i < next->nsites; i++) {
		if (next->sites[i]->status != SITE_HELD)
			continue;
		for (j = 0; j < fr->nsites; j++)
			if (strcmp(fr->sites[j]->domain,
			    next->sites[i]->domain) == 0)
				h[*n].now = now[j];
		h[*n].domain = next->sites[i]->domain;
		h[*n].before = catalog_site_count(s->gen,
		    next->sites[i]->domain);
		(*n)++;
	}
	return h;
}

/* The record's keys the plan does not have: deleted, or counted on. */
static struct dry_stale *
stale_keys(const struct state *s, const struct plan *pl, bool sweep,
    size_t *n)
{
	const struct entry	*v;
	struct dry_stale	*x;
	struct map		 inplan;
	uintptr_t		 c;
	size_t			 i, count = s->snap != NULL ?
				    snapshot_count(s->snap) : 0;

	x = xcalloc(count + 1, sizeof *x);
	*n = 0;
	map_init(&inplan);
	for (i = 0; i < pl->n; i++)
		map_put(&inplan, pl->v[i].key, strlen(pl->v[i].key));
	for (i = 0; i < count; i++) {
		v = &snapshot_entries(s->snap)[i];
		if (map_find(&inplan, v->key, strlen(v->key)) != NULL)
			continue;
		c = absences(s, v->key, strlen(v->key), sweep);
		x[*n].e = v;
		x[*n].absent = (unsigned)(c - 1);
		x[*n].deleted = stale_due(s, v, c, sweep);
		(*n)++;
	}
	map_free(&inplan);
	return x;
}

int
state_dry_run(struct state *s, struct fetch_result *fr,
    const struct state_dry_opts *o, FILE *out)
{
	struct gen_opts		 go = { s->cfg, o->force };
	struct gen_counts	 c;
	struct plan_opts	 po;
	struct dry_report	 r;
	struct catalog		*next;
	struct plan		*pl;
	size_t			*now, i;
	bool			 complete;
	int			 rc;

	/* Counted before gen_build takes the records. */
	now = xcalloc(fr->nsites + 1, sizeof *now);
	for (i = 0; i < fr->nsites; i++)
		if (fr->sites[i]->status == FETCH_LISTED)
			now[i] = obtained(fr->sites[i], s->gen);
	next = gen_build(fr, s->gen, &go, &c);
	plan_opts_from(s->cfg, &po);
	pl = plan_build(next, &po, s->kf, s->store, value_flags(s->cfg));
	plan_log(pl);
	complete = pl->errors == 0 && c.errors == 0 &&
	    c.sites_ok + c.sites_unconfigured == c.sites;
	memset(&r, 0, sizeof r);
	r.plan = pl;
	r.counts = complete && o->every_site;
	r.stale = stale_keys(s, pl, r.counts, &r.nstale);
	r.stale_after = s->cfg->stale_after;
	r.refresh_interval_ms = s->cfg->refresh_interval_ms;
	r.held = held_sites(s, next, now, fr, &r.nheld);
	r.max_shrink = s->cfg->max_shrink;
	r.diff = o->diff;
	rc = dryrun_print(s->store, &r, out);
	if (!complete)
		rc = -1;
	free((void *)r.stale);
	free((void *)r.held);
	free(now);
	plan_free(pl);
	catalog_unref(next);
	return rc;
}
