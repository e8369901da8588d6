/*
 * state.c: the last publish, and the rules that decide the next one.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "jsonld.h"
#include "log.h"
#include "map.h"
#include "metrics.h"
#include "state.h"
#include "util.h"

/* Rounds of writing the details again after the cache refused some. */
#define REFUSAL_ROUNDS	3

struct state {
	const struct cfg	*cfg;
	struct store		*store;
	const struct keyfn	*kf;
	struct catalog		*gen;		/* last published, or NULL */
	struct plan		*plan;		/* snap's entries point into it */
	struct snapshot		*snap;		/* what the cache holds */
	struct snapshot		*loaded;	/* the file; kept: records point
						   into its mapping */
	bool			 saved;		/* the file holds snap */
	struct saver		*saver;		/* writing snap, or NULL */
	struct map		 absent;	/* key -> absences + 1 */
	struct map		 unsure;	/* recorded, not confirmed */
};

/*
 * A snapshot being written and fsynced on a thread of its own (seconds at
 * 10,000 programs), while the loop keeps serving.  What it reads (the
 * state's snap, the plan and records its entries point into, the loaded
 * file) stays until save_wait() has joined it: every path that frees or
 * replaces them waits first, so a second save waits for the first.
 */
struct saver {
	pthread_t		 thread;
	const struct snapshot	*snap;
	char			*path;
	char			*settings;
	int			 rc;
};

/* The saver thread: snapshot_save logs its own outcome. */
static void *
saver_main(void *arg)
{
	struct saver	*sv = arg;

	sv->rc = snapshot_save(sv->snap, sv->path, sv->settings);
	return NULL;
}

/* Wait for a save in progress, and note whether the file holds snap. */
static void
save_wait(struct state *s)
{
	struct saver	*sv = s->saver;

	if (sv == NULL)
		return;
	pthread_join(sv->thread, NULL);
	s->saved = sv->rc == 0;
	free(sv->path);
	free(sv->settings);
	free(sv);
	s->saver = NULL;
}

/* The flags every value is written with. */
static uint32_t
value_flags(const struct cfg *cfg)
{
	return cfg->value_format == VALUE_PICKLE ? 1 : 0;
}

struct state *
state_new(const struct cfg *cfg, struct store *st, const struct keyfn *kf)
{
	struct state	*s = xcalloc(1, sizeof *s);

	s->cfg = cfg;
	s->store = st;
	s->kf = kf;
	map_init(&s->absent);
	map_init(&s->unsure);
	return s;
}

/* Forget everything recorded (the file stays as it is). */
static void
state_clear(struct state *s)
{
	save_wait(s);
	snapshot_free(s->snap);
	plan_free(s->plan);
	catalog_unref(s->gen);
	s->snap = NULL;
	s->plan = NULL;
	s->gen = NULL;
	s->saved = false;
	map_free(&s->absent);
	map_init(&s->absent);
	map_free(&s->unsure);
	map_init(&s->unsure);
}

void
state_free(struct state *s)
{
	if (s == NULL)
		return;
	state_clear(s);
	snapshot_free(s->loaded);
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

struct catalog *
state_generation(const struct state *s)
{
	return s->gen;
}

const struct snapshot *
state_snapshot(const struct state *s)
{
	return s->snap;
}

long long
state_site_programs(const struct state *s, const char *domain)
{
	const struct catalog_site	*site;

	site = catalog_find_site(s->gen, domain);
	if (site == NULL || !site->has_data)
		return -1;
	return (long long)site->nprograms;
}

/* --- the sites text ---------------------------------------------------- */

/* A JSON list of C strings. */
static json_t *
str_list(const char *const *v, size_t n)
{
	json_t	*a = json_array();
	size_t	 i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* One program's facts as JSON. */
static json_t *
facts_json(const struct program *p)
{
	struct program_facts	f;

	json_t			*j;

	program_facts(p, &f);
	j = json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:o}",
	    "uuid", f.uuid, "value_uuid", f.value_uuid,
	    "runs", str_list(f.runs, f.nruns),
	    "courses", str_list(f.courses, f.ncourses),
	    "type", f.type, "slug", f.slug,
	    "orgs", str_list(f.orgs, f.norgs));
	/* SPEC §10: the watermark of incremental refreshes survives. */
	if (f.modified != NULL)
		json_object_set_new(j, "modified", json_string(f.modified));
	return j;
}

/*
 * The sites of a generation as text, for the file: each site's list, its
 * programs' facts and its pathways; the values themselves are entries.
 */
static char *
sites_text(const struct catalog *gen)
{
	json_t	*doc, *sites, *site, *progs;
	size_t	 i, j;
	char	*text;

	sites = json_array();
	for (i = 0; i < gen->nsites; i++) {
		const struct catalog_site *cs = gen->sites[i];

		progs = json_array();
		for (j = 0; j < cs->nprograms; j++)
			json_array_append_new(progs,
			    facts_json(cs->programs[j]));
		site = json_pack("{s:s, s:I, s:i, s:b, s:o, s:o}",
		    "domain", cs->domain, "site_id", (json_int_t)cs->site_id,
		    "status", (int)cs->status, "has_data", cs->has_data,
		    "uuids", str_list((const char *const *)cs->uuids,
		    cs->nuuids), "programs", progs);
		json_object_set(site, "pathways", cs->pathways != NULL ?
		    cs->pathways : json_null());
		json_object_set_new(site, "full_ok", json_boolean(cs->full_ok));
		json_array_append_new(sites, site);
	}
	doc = json_pack("{s:i, s:o}", "version", 1, "sites", sites);
	text = jsonld_dumps(doc);
	json_decref(doc);
	return text;
}

/* A list of strings from the text, as a C array (borrowed strings). */
static const char **
strings_of(const json_t *a, size_t *n)
{
	const char	**v;
	size_t		  i;

	*n = json_array_size(a);
	v = xcalloc(*n + 1, sizeof *v);
	for (i = 0; i < *n; i++) {
		if ((v[i] = json_string_value(json_array_get(a, i))) == NULL)
			v[i] = "";
	}
	return v;
}

/* A kept record from the text and the program's entry (or NULL). */
static struct program *
program_from(const json_t *jp, const struct map *byprog)
{
	struct program_facts	 f;
	const struct entry	*e;
	struct program		*p;
	const char		**runs, **courses, **orgs;

	memset(&f, 0, sizeof f);
	f.uuid = json_string_value(json_object_get(jp, "uuid"));
	f.value_uuid = json_string_value(json_object_get(jp, "value_uuid"));
	f.type = json_string_value(json_object_get(jp, "type"));
	f.slug = json_string_value(json_object_get(jp, "slug"));
	f.modified = json_string_value(json_object_get(jp, "modified"));
	if (f.uuid == NULL || f.value_uuid == NULL || f.type == NULL ||
	    f.slug == NULL)
		return NULL;
	/* Only a program whose value the cache holds is known. */
	if ((e = map_get(byprog, f.uuid, strlen(f.uuid))) == NULL)
		return NULL;
	runs = strings_of(json_object_get(jp, "runs"), &f.nruns);
	courses = strings_of(json_object_get(jp, "courses"), &f.ncourses);
	orgs = strings_of(json_object_get(jp, "orgs"), &f.norgs);
	f.runs = runs;
	f.courses = courses;
	f.orgs = orgs;
	p = program_kept(&f, NULL, e->val, e->len);
	free(runs);
	free(courses);
	free(orgs);
	return p;
}

/* One site from the text. */
static struct catalog_site *
site_from(const json_t *js, const struct map *byprog)
{
	struct catalog_site	*cs;
	const json_t		*v, *pw;
	struct program		*p;
	const char		*domain;
	size_t			 i;

	if ((domain = json_string_value(json_object_get(js, "domain"))) ==
	    NULL)
		return NULL;
	cs = catalog_site_new(domain,
	    (long)json_integer_value(json_object_get(js, "site_id")));
	cs->status = (enum site_status)json_integer_value(
	    json_object_get(js, "status"));
	cs->has_data = json_is_true(json_object_get(js, "has_data"));
	cs->full_ok = json_is_true(json_object_get(js, "full_ok"));
	json_array_foreach(json_object_get(js, "uuids"), i, v) {
		if (!json_is_string(v))
			continue;
		cs->uuids = xreallocarray(cs->uuids, cs->nuuids + 1,
		    sizeof *cs->uuids);
		cs->uuids[cs->nuuids++] = xstrdup(json_string_value(v));
	}
	json_array_foreach(json_object_get(js, "programs"), i, v) {
		if ((p = program_from(v, byprog)) != NULL)
			catalog_site_add_program(cs, p);
	}
	pw = json_object_get(js, "pathways");
	if (json_is_array(pw))
		cs->pathways = json_incref((json_t *)pw);
	return cs;
}

/*
 * The generation a snapshot was published from: kept records whose values
 * point into the snapshot.  NULL (logged) if the text does not hold.
 */
static struct catalog *
generation_from(const struct snapshot *snap, const char *path)
{
	const struct entry	*v = snapshot_entries(snap);
	struct catalog		*gen;
	struct catalog_site	*cs;
	struct map		 byprog;
	json_error_t		 err;
	json_t			*doc, *js;
	const char		*text = snapshot_sites(snap), *uuid;
	size_t			 i;

	if (text == NULL)
		return NULL;
	if ((doc = jsonld_load(text, strlen(text), 0, &err)) == NULL ||
	    !json_is_array(json_object_get(doc, "sites"))) {
		log_event(LOG_ERR, "snapshot_ignored", "file=%s error=%s",
		    path, "its sites cannot be read: repairs only");
		json_decref(doc);
		return NULL;
	}
	map_init(&byprog);
	for (i = 0; i < snapshot_count(snap); i++)
		if ((uuid = plan_program_uuid(&v[i])) != NULL)
			map_put(&byprog, uuid, strlen(uuid))->val =
			    (void *)&v[i];
	gen = catalog_new();
	json_array_foreach(json_object_get(doc, "sites"), i, js) {
		if ((cs = site_from(js, &byprog)) != NULL)
			catalog_add_site(gen, cs);
	}
	map_free(&byprog);
	json_decref(doc);
	return gen;
}

bool
state_load(struct state *s)
{
	struct snapshot		*snap;
	const struct entry	*v;
	char			*path, *set;
	size_t			 i;

	path = snapshot_path(s->cfg->state_dir);
	set = snapshot_settings(s->cfg);
	snap = snapshot_load(path, set);
	free(set);
	if (snap == NULL || snapshot_count(snap) == 0) {
		/* Nothing was ever published here: nothing to trust. */
		snapshot_free(snap);
		free(path);
		return false;
	}
	state_clear(s);
	snapshot_free(s->loaded);
	s->loaded = snap;
	s->gen = generation_from(snap, path);
	free(path);
	/* The record is the file's, borrowed from it (it stays mapped). */
	s->snap = snapshot_new();
	v = snapshot_entries(snap);
	for (i = 0; i < snapshot_count(snap); i++) {
		snapshot_add(s->snap, &v[i]);
		map_put(&s->absent, v[i].key, strlen(v[i].key))->val =
		    (void *)(uintptr_t)1;
	}
	snapshot_set_sites(s->snap, snapshot_sites(snap));
	s->saved = true;
	return true;
}

/* --- publishing -------------------------------------------------------- */

/* A value written earlier in this publish: its length and hash. */
struct confirmed {
	size_t		len;
	XXH128_hash_t	hash;
};

/* What one publish keeps while it works. */
struct publish {
	struct state			*s;
	const struct state_publish_opts	*opts;
	struct catalog			*next;
	struct map			 old;		/* key -> old entry */
	struct map			 confirmed;	/* key -> struct confirmed */
	struct program			**graveyard;	/* replaced records */
	size_t				  ngrave;
	struct plan			**plans;	/* earlier rounds */
	size_t				  nplans;
};

/* writer's "same" test: the cache holds these bytes already. */
static bool
is_same(const struct entry *e, void *arg)
{
	struct publish		*pb = arg;
	const struct entry	*o;
	struct confirmed	*c;

	c = map_get(&pb->confirmed, e->key, strlen(e->key));
	if (c != NULL)
		return c->len == e->len && XXH128_isEqual(c->hash,
		    XXH3_128bits(e->val, e->len));
	if (!pb->opts->skip_same ||
	    map_get(&pb->s->unsure, e->key, strlen(e->key)) != NULL)
		return false;
	o = map_get(&pb->old, e->key, strlen(e->key));
	return o != NULL && o->len == e->len && o->flags == e->flags &&
	    o->servers == e->servers && o->wire != NULL && e->wire != NULL &&
	    strcmp(o->wire, e->wire) == 0 &&
	    (o->val == e->val || memcmp(o->val, e->val, e->len) == 0);
}

/* The site as the last publish left it, marked status; NULL if none. */
static struct catalog_site *
carried_over(struct publish *pb, const char *domain, enum site_status st)
{
	const struct catalog_site	*prev;
	struct catalog_site		*cs;

	prev = catalog_find_site(pb->s->gen, domain);
	if (prev == NULL || !prev->has_data)
		return NULL;
	cs = catalog_site_copy(prev);
	cs->status = st;
	return cs;
}

/*
 * The shrink guard (SPEC §7): a site whose count of programs obtained falls
 * by more than max_shrink since the last publish, or to zero, is held
 * unless forced.  With no publish known, a list whose programs all failed
 * is held too: the cache may hold another writer's values.
 */
static bool
shrink_held(struct publish *pb, const struct catalog_site *cs)
{
	const struct cfg	*cfg = pb->s->cfg;
	long long		 before;
	size_t			 now = cs->nprograms;

	before = state_site_programs(pb->s, cs->domain);
	if (now > 0 && (before <= 0 ||
	    (double)now >= (double)before * (1 - cfg->max_shrink)))
		return false;
	if (now == 0 && before <= 0 && cs->nuuids == 0)
		return false;	/* an empty catalogue, and none before */
	if (pb->opts->force) {
		log_event(LOG_WARNING, "publish_forced", "site=%s "
		    "programs_before=%lld programs_now=%zu max_shrink=%g",
		    cs->domain, before, now, cfg->max_shrink);
		return false;
	}
	metrics.publishes_held++;
	log_event(LOG_ERR, "publish_held", "site=%s programs_before=%lld "
	    "programs_now=%zu max_shrink=%g error=%s", cs->domain, before, now,
	    cfg->max_shrink, now == 0 ? "the site would have no programs "
	    "left: kept the previous values (--force or force_publish to "
	    "publish)" : "the site would lose more programs than max_shrink "
	    "allows: kept the previous values (--force or force_publish to "
	    "publish)");
	return true;
}

/* Carry over the sites that failed or are held; count the outcomes. */
static void
settle_sites(struct publish *pb, struct state_result *r)
{
	struct catalog		*next = pb->next;
	struct catalog_site	*cs, *keep;
	size_t			 i;

	for (i = 0; i < next->nsites; i++) {
		cs = next->sites[i];
		if (cs->status == SITE_UNCONFIGURED)
			continue;
		if (cs->status != SITE_FAILED && shrink_held(pb, cs))
			cs->status = SITE_HELD;
		if (cs->status != SITE_FAILED && cs->status != SITE_HELD)
			continue;
		/* SPEC §7: nothing of the site is written; it stays. */
		keep = carried_over(pb, cs->domain, cs->status);
		if (keep == NULL) {
			keep = catalog_site_new(cs->domain, cs->site_id);
			keep->status = cs->status;
		}
		/* What the refresh learnt of its kinds (SPEC §10) holds; a
		   site held back waits for a full refresh. */
		keep->full_ok = cs->full_ok && cs->status != SITE_HELD;
		keep->incr = cs->incr;
		catalog_site_free(cs);
		next->sites[i] = keep;
	}
	for (i = 0; i < next->nsites; i++) {
		switch (next->sites[i]->status) {
		case SITE_OK:
			r->sites_ok++;
			break;
		case SITE_UNCONFIGURED:
			r->sites_unconfigured++;
			break;
		case SITE_PARTIAL:
			r->sites_partial++;
			break;
		case SITE_FAILED:
			r->sites_failed++;
			break;
		case SITE_HELD:
			r->sites_held++;
			break;
		}
	}
	r->sites = next->nsites;
}

/* Keep a record alive until the publish ends (plans point into it). */
static void
bury(struct publish *pb, struct program *p)
{
	pb->graveyard = xreallocarray(pb->graveyard, pb->ngrave + 1,
	    sizeof *pb->graveyard);
	pb->graveyard[pb->ngrave++] = program_ref(p);
}

/*
 * The cache refused program uuid's value: treat it like a failed detail
 * (SPEC §7).  Where the old value stays (too big: never sent), the
 * program keeps it and its place in the indexes; where the cache holds
 * nothing for it now, no index may name it.  Returns whether anything
 * changed.
 */
static bool
refuse_program(struct publish *pb, const char *uuid, enum write_outcome o)
{
	const struct catalog_site	*prev;
	struct program			*old, *cur, *kept;
	struct program_facts		 f;
	size_t				 i;
	bool				 changed = false;
	char				*key = xasprintf("program-%s", uuid);

	for (i = 0; i < pb->next->nsites; i++) {
		struct catalog_site *cs = pb->next->sites[i];

		if ((cur = catalog_site_program(cs, uuid)) == NULL)
			continue;
		bury(pb, cur);
		prev = catalog_find_site(pb->s->gen, cs->domain);
		old = prev != NULL ? catalog_site_program(prev, uuid) : NULL;
		kept = NULL;
		if (o == WRITE_TOO_BIG && old != NULL && old != cur &&
		    map_get(&pb->old, key, strlen(key)) != NULL) {
			program_facts(old, &f);
			kept = program_kept(&f, old, NULL, 0);
		}
		catalog_site_set_program(cs, uuid, kept);
		if (cs->status == SITE_OK)
			cs->status = SITE_PARTIAL;
		changed = true;
	}
	free(key);
	return changed;
}

/* Remember what round one confirmed, for the rounds after it. */
static void
confirm(struct publish *pb, const struct plan *pl,
    const enum write_outcome *out)
{
	struct confirmed	*c;
	struct map_item		*it;
	size_t			 i;

	for (i = 0; i < pl->n; i++) {
		if (out[i] != WRITE_OK && out[i] != WRITE_SAME)
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
 * Write the details; while the cache refuses program values, settle those
 * programs and plan again (a program dropped can change others' pathway
 * ids).  Returns the final plan and its outcomes; *down when a server
 * failed (the later phases must not be written).
 */
static struct plan *
write_details(struct publish *pb, enum write_outcome **outp, bool *down)
{
	struct state		*s = pb->s;
	struct catalog_opts	 co;
	struct plan		*pl = NULL;
	enum write_outcome	*out = NULL;
	const char		*uuid;
	size_t			 i;
	int			 round;
	bool			 changed;

	catalog_opts_from(s->cfg, &co);
	for (round = 0; ; round++) {
		pl = plan_build(pb->next, &co, s->kf, s->store,
		    value_flags(s->cfg));
		out = xcalloc(pl->n + 1, sizeof *out);
		*down = writer_phase(s->store, pl->v, pl->n, 0, is_same, pb,
		    pb->opts->gate, out, NULL) == -1;
		if (*down || round + 1 == REFUSAL_ROUNDS)
			break;
		changed = false;
		for (i = 0; i < pl->n; i++) {
			if ((uuid = plan_program_uuid(&pl->v[i])) == NULL ||
			    out[i] == WRITE_OK || out[i] == WRITE_SAME)
				continue;
			changed |= refuse_program(pb, uuid, out[i]);
		}
		if (!changed)
			break;
		confirm(pb, pl, out);
		pb->plans = xreallocarray(pb->plans, pb->nplans + 1,
		    sizeof *pb->plans);
		pb->plans[pb->nplans++] = pl;
		free(out);
	}
	*outp = out;
	return pl;
}

/* Delete key (absent stale_after times) wherever it lives. */
static bool
delete_stale(struct state *s, const struct entry *e, bool *touched)
{
	size_t	j;
	bool	ok = true;

	if (e->wire == NULL)
		return true;
	for (j = 0; j < store_nservers(s->store); j++) {
		if ((e->servers >> j & 1) == 0)
			continue;
		if (store_delete(s->store, j, e->wire, e->wirelen) !=
		    STORE_OK)
			ok = false;
		touched[j] = true;
	}
	return ok;
}

/*
 * The new record: what the plan put in the cache, and what the cache still
 * holds of the old record (keys this publish did not write, or could not
 * write while the old value stayed).  With sweep (a complete refresh of
 * every site), keys absent stale_after times are deleted instead.
 */
static struct snapshot *
record(struct publish *pb, const struct plan *pl,
    const enum write_outcome *out, bool down, bool sweep, size_t *deleted)
{
	struct state		*s = pb->s;
	struct snapshot		*snap = snapshot_new();
	struct map		 inplan, absent;
	struct map_item		*it;
	bool			 touched[STORE_MAX_SERVERS] = { false };
	uintptr_t		 n;
	size_t			 i;
	const struct entry	*o;
	struct buf		 ex;

	map_init(&inplan);
	map_init(&absent);
	buf_init(&ex);
	map_free(&s->unsure);
	map_init(&s->unsure);
	for (i = 0; i < pl->n; i++) {
		map_put(&inplan, pl->v[i].key, strlen(pl->v[i].key))->val =
		    (void *)(uintptr_t)(i + 1);
		map_put(&absent, pl->v[i].key, strlen(pl->v[i].key))->val =
		    (void *)(uintptr_t)1;
		if (writer_in_cache(out[i]))
			snapshot_add(snap, &pl->v[i]);
		else if (down && (out[i] == WRITE_PENDING ||
		    out[i] == WRITE_DOWN)) {
			/*
			 * A server failed on the way: what should be there
			 * is recorded for the monitor to put back when the
			 * server returns, but never trusted as written.
			 */
			snapshot_add(snap, &pl->v[i]);
			map_put(&s->unsure, pl->v[i].key,
			    strlen(pl->v[i].key))->val = s;
		}
	}
	MAP_FOREACH(&pb->old, it) {
		o = it->val;
		if ((n = (uintptr_t)map_get(&inplan, it->key, it->keylen))
		    != 0) {
			/* Not written, and the old value stays: keep it. */
			if ((out[n - 1] == WRITE_PENDING && !down) ||
			    out[n - 1] == WRITE_TOO_BIG)
				snapshot_add_copy(snap, o);
			continue;
		}
		n = (uintptr_t)map_get(&s->absent, it->key, it->keylen);
		n = (n == 0 ? 1 : n) + (sweep ? 1 : 0);
		if (sweep && s->cfg->stale_after > 0 &&
		    n - 1 >= (uintptr_t)s->cfg->stale_after &&
		    delete_stale(s, o, touched)) {
			if ((*deleted)++ < 5)
				buf_printf(&ex, "%s%s", *deleted > 1 ? " " : "",
				    o->key);
			continue;
		}
		map_put(&absent, it->key, it->keylen)->val = (void *)n;
		snapshot_add_copy(snap, o);
	}
	for (i = 0; i < store_nservers(s->store); i++)
		if (touched[i] && store_flush(s->store, i, NULL, NULL) == -1)
			continue;	/* logged; deleted again next time */
	if (*deleted > 0) {
		log_event(LOG_INFO, "stale_deleted", "keys=%zu stale_after=%d "
		    "examples=%s", *deleted, s->cfg->stale_after,
		    (const char *)ex.data);
	}
	buf_free(&ex);
	map_free(&inplan);
	map_free(&s->absent);
	s->absent = absent;
	return snap;
}

/* Whether a site is configured (old ones are forgotten). */
static bool
configured(const struct cfg *cfg, const char *domain)
{
	return cfg_site(cfg, domain) != NULL;
}

/*
 * The generation to remember: next's sites, and the last publish's sites
 * that this refresh did not cover (--domain) and that are still
 * configured.
 */
static struct catalog *
merged(struct publish *pb)
{
	struct catalog	*gen, *old = pb->s->gen;
	size_t		 i = 0, j = 0;
	int		 c;

	if (old == NULL)
		return catalog_ref(pb->next);
	gen = catalog_new();
	while (i < pb->next->nsites || j < old->nsites) {
		if (i == pb->next->nsites)
			c = 1;
		else if (j == old->nsites)
			c = -1;
		else
			c = strcmp(pb->next->sites[i]->domain,
			    old->sites[j]->domain);
		if (c <= 0)
			catalog_add_site(gen,
			    catalog_site_copy(pb->next->sites[i++]));
		else if (configured(pb->s->cfg, old->sites[j]->domain))
			catalog_add_site(gen, catalog_site_copy(old->sites[j]));
		if (c >= 0)
			j++;
	}
	return gen;
}

/* Save the record, unless the file holds exactly this already. */
static void
save(struct state *s, struct snapshot *snap, const struct write_stats *ws,
    size_t deleted)
{
	const struct snapshot	*old = s->snap;
	struct saver		*sv;
	char			*path, *set;
	const char		*a, *b;
	int			 rc;

	if (snapshot_count(snap) == 0)
		return;		/* never a snapshot of nothing */
	a = snapshot_sites(snap);
	b = old != NULL ? snapshot_sites(old) : NULL;
	if (s->saved && old != NULL && ws->written == 0 && deleted == 0 &&
	    snapshot_count(snap) == snapshot_count(old) &&
	    a != NULL && b != NULL && strcmp(a, b) == 0)
		return;
	path = snapshot_path(s->cfg->state_dir);
	set = snapshot_settings(s->cfg);
	sv = xcalloc(1, sizeof *sv);
	sv->snap = snap;
	sv->path = path;
	sv->settings = set;
	s->saved = false;
	if ((rc = pthread_create(&sv->thread, NULL, saver_main, sv)) != 0) {
		/* No thread to be had: write it here, as before. */
		log_event(LOG_WARNING, "snapshot_error", "file=%s op=thread "
		    "error=%s", path, strerror(rc));
		s->saved = snapshot_save(snap, path, set) == 0;
		free(set);
		free(path);
		free(sv);
		return;
	}
	s->saver = sv;
}

static void
publish_free(struct publish *pb)
{
	struct map_item	*it;
	size_t		 i;

	for (i = 0; i < pb->nplans; i++)
		plan_free(pb->plans[i]);
	free(pb->plans);
	for (i = 0; i < pb->ngrave; i++)
		program_unref(pb->graveyard[i]);
	free(pb->graveyard);
	MAP_FOREACH(&pb->confirmed, it)
		free(it->val);
	map_free(&pb->confirmed);
	map_free(&pb->old);
	catalog_unref(pb->next);
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
 * incremental refresh that found nothing new (SPEC §10).  Every site
 * fetched whole, the same lists, the very same program records (shared,
 * so the same values) and equal pathways; nothing unsure, no stale key
 * being counted, every server up.
 */
static bool
same_generation(const struct state *s, const struct catalog *next)
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
	for (i = 0; i < store_nservers(s->store); i++)
		if (!store_server_up(s->store, i))
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
same_result(const struct state *s, const struct catalog *next,
    struct state_result *r)
{
	const struct plan	*pl = s->plan;
	size_t			 i;

	r->sites = next->nsites;
	for (i = 0; i < next->nsites; i++) {
		if (next->sites[i]->status == SITE_OK)
			r->sites_ok++;
		else
			r->sites_unconfigured++;
	}
	r->programs = pl->nprograms;
	r->pathways = pl->npathways;
	for (i = 0; i < pl->n; i++)
		r->keys[pl->v[i].family]++;
	r->ws.skipped = pl->n;
	r->complete = pl->errors == 0;
	r->published = r->sites_ok > 0;
}

/*
 * What a refresh that published nothing learnt of its sites (SPEC §10:
 * the probe's answer, a site held back) still holds for the next one.
 */
static void
learn_kinds(struct catalog *gen, const struct catalog *next)
{
	struct catalog_site	*cs;
	size_t			 i;

	for (i = 0; gen != NULL && i < next->nsites; i++) {
		if ((cs = catalog_find_site(gen, next->sites[i]->domain)) ==
		    NULL)
			continue;
		cs->full_ok = next->sites[i]->full_ok;
		cs->incr = next->sites[i]->incr;
	}
}

int
state_publish(struct state *s, struct catalog *next,
    const struct state_publish_opts *opts, struct state_result *r)
{
	struct publish		 pb;
	struct plan		*pl;
	struct snapshot		*snap;
	enum write_outcome	*out;
	const struct entry	*v;
	size_t			 i;
	int			 phase;
	bool			 down, complete;

	memset(r, 0, sizeof *r);
	if (opts->skip_same && same_generation(s, next)) {
		/* Nothing to plan, write or record (stale keys: not counted). */
		same_result(s, next, r);
		catalog_unref(next);
		return r->complete ? 0 : -1;
	}
	memset(&pb, 0, sizeof pb);
	pb.s = s;
	pb.opts = opts;
	pb.next = next;
	map_init(&pb.old);
	map_init(&pb.confirmed);
	for (i = 0; s->snap != NULL && i < snapshot_count(s->snap); i++) {
		v = &snapshot_entries(s->snap)[i];
		map_put(&pb.old, v->key, strlen(v->key))->val = (void *)v;
	}
	/* A publish is worth one new try of a server that was down. */
	store_retry_now(s->store);

	settle_sites(&pb, r);
	pl = write_details(&pb, &out, &down);
	for (phase = 1; phase < CATALOG_PHASES && !down; phase++) {
		test_stop_point(phase - 1);
		down = writer_phase(s->store, pl->v, pl->n, phase, is_same, &pb,
		    opts->gate, out, NULL) == -1;
	}
	if (down) {
		metrics_failure(NULL, "publish");
		log_event(LOG_ERR, "refresh_failed", "stage=publish error=%s",
		    "a cache server failed while the values were written: "
		    "the indexes and site lists written after it were not, "
		    "so that none names a value that is not there");
	}
	tally(pl, out, r);
	/* Partial sites may have become so while writing. */
	r->sites_ok = r->sites_partial = 0;
	for (i = 0; i < next->nsites; i++) {
		if (next->sites[i]->status == SITE_OK)
			r->sites_ok++;
		else if (next->sites[i]->status == SITE_PARTIAL)
			r->sites_partial++;
	}
	complete = !down && r->ws.failed == 0 && pl->errors == 0 &&
	    r->sites_ok + r->sites_unconfigured == r->sites;
	r->complete = complete;
	r->published = !down && r->sites_ok + r->sites_partial > 0 &&
	    r->ws.written + r->ws.skipped > 0;

	snap = record(&pb, pl, out, down, complete && opts->every_site,
	    &r->deleted);
	/*
	 * The last save reads the record, plan and generation replaced from
	 * here on (until now they were only read, and records shared with
	 * the new generation are copied before they change).
	 */
	save_wait(s);
	if (r->published || r->deleted > 0 || down) {
		struct catalog *gen = merged(&pb);
		char *text = sites_text(gen);

		snapshot_set_sites(snap, text);
		free(text);
		save(s, snap, &r->ws, r->deleted);
		catalog_unref(s->gen);
		s->gen = gen;
		plan_free(s->plan);
		s->plan = pl;
		snapshot_free(s->snap);
		s->snap = snap;
	} else {
		/* Nothing new reached the cache: the record stays. */
		learn_kinds(s->gen, next);
		snapshot_set_sites(snap, s->snap != NULL ?
		    snapshot_sites(s->snap) : NULL);
		if (s->snap != NULL) {
			/* ...but what this publish wrote is in it now. */
			plan_free(s->plan);
			s->plan = pl;
			snapshot_free(s->snap);
			s->snap = snap;
		} else {
			snapshot_free(snap);
			plan_free(pl);
		}
	}
	free(out);
	publish_free(&pb);
	return complete ? 0 : -1;
}
