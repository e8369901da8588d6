/*
 * gen.c: the next generation, by the failure rules.
 */
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "log.h"
#include "pathway.h"
#include "util.h"

/*
 * A kept record for a program whose detail failed: the last publish's value,
 * final whatever the pathways say now, and not known to be current (an
 * incremental refresh fetches it again, design.md: Incremental refresh).
 */
static struct program *
kept_from(struct program *old)
{
	struct program_facts	f;

	program_facts(old, &f);
	f.modified = NULL;
	return program_kept(&f, old, NULL, 0);
}

/* A listed site: what was fetched, and what the last publish keeps. */
static struct catalog_site *
site_listed(struct fetch_site *fs, const struct catalog_site *last)
{
	struct catalog_site	*cs;
	struct program		*old;
	size_t			 i;

	cs = catalog_site_new(fs->domain, fs->site_id);
	cs->has_data = true;
	cs->status = fs->partial ? SITE_PARTIAL : SITE_OK;
	cs->uuids = fs->uuids;
	cs->nuuids = fs->nuuids;
	fs->uuids = NULL;
	fs->nuuids = 0;
	for (i = 0; i < fs->nprogs; i++) {
		if (fs->progs[i].p != NULL) {
			catalog_site_add_program(cs, fs->progs[i].p);
			fs->progs[i].p = NULL;
			continue;
		}
		/*
		 * design.md: Failures: a failed detail keeps its published
		 * value.
		 */
		old = last != NULL ? catalog_site_program(last,
		    fs->progs[i].uuid) : NULL;
		if (old != NULL)
			catalog_site_add_program(cs, kept_from(old));
	}
	if (fs->pathways != NULL) {
		cs->pathways = fs->pathways;
		fs->pathways = NULL;
	} else {
		/*
		 * design.md: Failures: failed pathways keep the previous ones.
		 */
		cs->pathways_failed = true;
		if (last != NULL && last->pathways != NULL)
			cs->pathways = json_incref(last->pathways);
	}
	return cs;
}

/* The site a report makes, before the shrink guard. */
static struct catalog_site *
site_from(struct fetch_site *fs, const struct catalog_site *last)
{
	struct catalog_site	*cs;

	switch (fs->status) {
	case FETCH_UNCONFIGURED:
		cs = catalog_site_new(fs->domain, fs->site_id);
		cs->status = SITE_UNCONFIGURED;
		return cs;
	case FETCH_SKIPPED:
		/* Not refreshed: as the last publish has it. */
		if (last != NULL)
			cs = catalog_site_copy(last);
		else {
			cs = catalog_site_new(fs->domain, fs->site_id);
			cs->status = SITE_FAILED;
		}
		cs->incr = fs->incr;
		return cs;
	case FETCH_FAILED:
		cs = catalog_site_new(fs->domain, fs->site_id);
		cs->status = SITE_FAILED;
		break;
	case FETCH_LISTED:
	default:
		cs = site_listed(fs, last);
		break;
	}
	/* A full refresh that had the list makes incremental ones possible. */
	cs->full_ok = fs->incremental && last != NULL ? last->full_ok :
	    fs->status == FETCH_LISTED;
	cs->incr = fs->incr;
	return cs;
}

/*
 * The shrink guard (design.md: Failures): a site whose count of programs
 * obtained falls by more than max_shrink since the last publish, or to zero,
 * is held unless forced.  With no publish known, a list whose programs all
 * failed is held too: the cache may hold another writer's values.
 */
static bool
shrink_held(const struct catalog_site *cs, const struct catalog *last,
    const struct gen_opts *o)
{
	const struct cfg	*cfg = o->cfg;
	long long		 before;
	size_t			 now = cs->nprograms;

	before = catalog_site_count(last, cs->domain);
	if (now > 0 && (before <= 0 ||
	    (double)now >= (double)before * (1 - cfg->max_shrink)))
		return false;
	if (now == 0 && before <= 0 && cs->nuuids == 0)
		return false;	/* an empty catalogue, and none before */
	if (o->force) {
		log_event(LOG_WARNING, "publish_forced", "site=%s "
		    "programs_before=%lld programs_now=%zu max_shrink=%g",
		    cs->domain, before, now, cfg->max_shrink);
		return false;
	}
	log_event(LOG_ERR, "publish_held", "site=%s programs_before=%lld "
	    "programs_now=%zu max_shrink=%g error=%s", cs->domain, before, now,
	    cfg->max_shrink, now == 0 ? "the site would have no programs "
	    "left: kept the previous values (--force or force_publish to "
	    "publish)" : "the site would lose more programs than max_shrink "
	    "allows: kept the previous values (--force or force_publish to "
	    "publish)");
	return true;
}

/* A site that failed or is held: the last publish's, marked so. */
static struct catalog_site *
carried_over(struct catalog_site *cs, const struct catalog *last)
{
	const struct catalog_site	*prev;
	struct catalog_site		*keep;

	prev = catalog_find_site(last, cs->domain);
	if (prev != NULL && prev->has_data)
		keep = catalog_site_copy(prev);
	else
		keep = catalog_site_new(cs->domain, cs->site_id);
	/* design.md: Failures: nothing of the site is written; it stays. */
	keep->status = cs->status;
	/*
	 * What the refresh learnt of its kinds (design.md: Incremental
	 * refresh) holds; a site held back waits for a full refresh.
	 */
	keep->full_ok = cs->full_ok && cs->status != SITE_HELD;
	keep->incr = cs->incr;
	catalog_site_free(cs);
	return keep;
}

static void
count(const struct catalog *next, struct gen_counts *c)
{
	size_t	i, errors = c->errors;

	memset(c, 0, sizeof *c);
	c->errors = errors;
	c->sites = next->nsites;
	for (i = 0; i < next->nsites; i++) {
		switch (next->sites[i]->status) {
		case SITE_OK:
			c->sites_ok++;
			break;
		case SITE_UNCONFIGURED:
			c->sites_unconfigured++;
			break;
		case SITE_PARTIAL:
			c->sites_partial++;
			break;
		case SITE_FAILED:
			c->sites_failed++;
			break;
		case SITE_HELD:
			c->sites_held++;
			break;
		}
	}
}

struct catalog *
gen_build(struct fetch_result *fr, const struct catalog *last,
    const struct gen_opts *o, struct gen_counts *c)
{
	struct catalog		*next = catalog_new();
	struct catalog_site	*cs;
	size_t			 i;

	for (i = 0; i < fr->nsites; i++) {
		cs = site_from(fr->sites[i],
		    catalog_find_site(last, fr->sites[i]->domain));
		if (cs->status != SITE_UNCONFIGURED) {
			if (cs->status != SITE_FAILED &&
			    shrink_held(cs, last, o))
				cs->status = SITE_HELD;
			if (cs->status == SITE_FAILED ||
			    cs->status == SITE_HELD)
				cs = carried_over(cs, last);
		}
		catalog_add_site(next, cs);
	}
	memset(c, 0, sizeof *c);
	gen_finish(next, true, &c->errors);
	count(next, c);
	return next;
}

/* Replace (p) or drop (p NULL) the record for uuid; takes p. */
static void
site_set_program(struct catalog_site *s, const char *uuid, struct program *p)
{
	size_t	i;

	for (i = 0; i < s->nprograms; i++) {
		if (strcmp(program_uuid(s->programs[i]), uuid) != 0)
			continue;
		program_unref(s->programs[i]);
		if (p != NULL)
			s->programs[i] = p;
		else {
			memmove(&s->programs[i], &s->programs[i + 1],
			    (s->nprograms - i - 1) * sizeof *s->programs);
			s->nprograms--;
		}
		return;
	}
	program_unref(p);
}

bool
gen_refuse(struct catalog *next, const struct catalog *last,
    const char *uuid, bool old_stays)
{
	const struct catalog_site	*prev;
	struct program			*old, *cur, *kept;
	size_t				 i;
	bool				 changed = false;

	for (i = 0; i < next->nsites; i++) {
		struct catalog_site *cs = next->sites[i];

		if ((cur = catalog_site_program(cs, uuid)) == NULL)
			continue;
		prev = catalog_find_site(last, cs->domain);
		old = prev != NULL ? catalog_site_program(prev, uuid) : NULL;
		kept = NULL;
		if (old_stays && old == cur) {
			/* The very record the cache holds: it stays as it is. */
			if (cs->status == SITE_OK)
				cs->status = SITE_PARTIAL;
			changed = true;
			continue;
		}
		if (old_stays && old != NULL) {
			struct program_facts f;

			program_facts(old, &f);
			kept = program_kept(&f, old, NULL, 0);
		}
		site_set_program(cs, uuid, kept);
		if (cs->status == SITE_OK)
			cs->status = SITE_PARTIAL;
		changed = true;
	}
	return changed;
}

/* Finish one site's programs; drop those that cannot be encoded. */
static void
finish_site(struct catalog_site *s, bool log, size_t *errors)
{
	struct pathway_walk	 w;
	size_t			 i, n = 0;

	pathway_walk(s, log, &w);
	for (i = 0; i < s->nprograms; i++) {
		if (program_finish(&s->programs[i], w.ids[i]) == 0) {
			s->programs[n++] = s->programs[i];
			continue;
		}
		log_event(LOG_ERR, "refresh_failed", "site=%s stage=encode "
		    "uuid=%s error=%s", s->domain,
		    program_uuid(s->programs[i]), "cannot encode the program");
		(*errors)++;
		program_unref(s->programs[i]);
	}
	s->nprograms = n;
	pathway_walk_free(&w);
}

void
gen_finish(struct catalog *next, bool log, size_t *errors)
{
	size_t	i;

	for (i = 0; i < next->nsites; i++)
		if (next->sites[i]->has_data)
			finish_site(next->sites[i], log, errors);
}

/* Whether a site is configured (old ones are forgotten). */
static bool
configured(const struct cfg *cfg, const char *domain)
{
	return cfg_site(cfg, domain) != NULL;
}

struct catalog *
gen_merge(struct catalog *next, const struct catalog *last,
    const struct cfg *cfg)
{
	struct catalog	*gen;
	size_t		 i = 0, j = 0;
	int		 c;

	if (last == NULL)
		return catalog_ref(next);
	gen = catalog_new();
	while (i < next->nsites || j < last->nsites) {
		if (i == next->nsites)
			c = 1;
		else if (j == last->nsites)
			c = -1;
		else
			c = strcmp(next->sites[i]->domain,
			    last->sites[j]->domain);
		if (c <= 0)
			catalog_add_site(gen,
			    catalog_site_copy(next->sites[i++]));
		else if (configured(cfg, last->sites[j]->domain))
			catalog_add_site(gen,
			    catalog_site_copy(last->sites[j]));
		if (c >= 0)
			j++;
	}
	return gen;
}

struct catalog *
gen_learn(const struct catalog *last, const struct catalog *next)
{
	struct catalog			*gen;
	const struct catalog_site	*n;
	struct catalog_site		*cs;
	size_t				 i;

	if (last == NULL)
		return NULL;
	gen = catalog_new();
	for (i = 0; i < last->nsites; i++) {
		cs = catalog_site_copy(last->sites[i]);
		if ((n = catalog_find_site(next, cs->domain)) != NULL) {
			cs->full_ok = n->full_ok;
			cs->incr = n->incr;
		}
		catalog_add_site(gen, cs);
	}
	return gen;
}
