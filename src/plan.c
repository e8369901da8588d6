/*
 * plan.c: the nine key families of a generation, laid out for writing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonld.h"
#include "log.h"
#include "map.h"
#include "pathway.h"
#include "pickle.h"
#include "plan.h"
#include "store.h"
#include "util.h"

void
plan_opts_from(const struct cfg *cfg, struct plan_opts *o)
{
	o->format = cfg->value_format;
	o->proto = cfg->pickle_protocol;
	o->pathway_ids = cfg->pathway_ids;
}

/* A key being collected, before the plan is laid out. */
struct pending_entry {
	char			*key;
	const unsigned char	*val;
	size_t			 len;
	unsigned char		*own;		/* val, if allocated here */
};

/* A list of programs being collected under one index key. */
struct plist {
	const struct program	**v;
	size_t			  n;
};

/* What plan_build keeps while it works. */
struct builder {
	const struct plan_opts	*o;
	struct map		 fam[FAM_COUNT];	/* key -> entry */
	struct pickle		 pk;
	int			 errors;
	char			**failed;	/* "key\0error", for plan_log */
};

/*
 * Put a value under key in a family (taking key), replacing the value of
 * an earlier site but keeping the key's first position (dict.update).
 * With own set, the entry takes val.
 */
static void
put_entry(struct builder *b, enum family f, char *key,
    const unsigned char *val, size_t len, bool own)
{
	struct map_item		*it = map_put(&b->fam[f], key, strlen(key));
	struct pending_entry	*e = it->val;

	if (e == NULL) {
		e = xcalloc(1, sizeof *e);
		e->key = key;
		it->val = e;
	} else
		free(key);
	free(e->own);
	e->val = val;
	e->len = len;
	e->own = own ? (unsigned char *)val : NULL;
}

/*
 * A value that could not be encoded: counted, left out, and kept for
 * plan_log() (plan_build may run on the writer thread, which logs
 * nothing).
 */
static void
encode_failed(struct builder *b, const char *key, const char *error)
{
	size_t	kl = strlen(key), el = strlen(error);
	char	*f = xmalloc(kl + el + 2);

	memcpy(f, key, kl + 1);
	memcpy(f + kl + 1, error, el + 1);
	b->failed = xreallocarray(b->failed, (size_t)b->errors + 1,
	    sizeof *b->failed);
	b->failed[b->errors++] = f;
}

void
plan_log(const struct plan *pl)
{
	int	i;

	for (i = 0; i < pl->errors; i++)
		log_event(LOG_ERR, "refresh_failed", "stage=encode key=%s "
		    "error=%s", pl->failed[i], pl->failed[i] +
		    strlen(pl->failed[i]) + 1);
}

/* Encode a list of program uuids (program["uuid"] objects); take key. */
static void
put_uuid_list(struct builder *b, enum family f, char *key,
    const struct plist *pl)
{
	struct pickle		*pk = &b->pk;
	struct program_facts	 pf;
	json_t			*arr;
	unsigned char		*val;
	size_t			 i, len;
	char			*s;

	if (b->o->format == VALUE_JSON) {
		arr = json_array();
		for (i = 0; i < pl->n; i++) {
			program_facts(pl->v[i], &pf);
			json_array_append_new(arr, json_string(pf.value_uuid));
		}
		s = jsonld_dumps(arr);
		json_decref(arr);
		put_entry(b, f, key, (unsigned char *)s, strlen(s), true);
		return;
	}
	pickle_reset(pk);
	pickle_begin(pk);
	pickle_list_begin(pk, pl->n);
	for (i = 0; i < pl->n; i++) {
		program_facts(pl->v[i], &pf);
		/* One identity per program, as the Python objects have. */
		pickle_str_obj(pk, pf.value_uuid, strlen(pf.value_uuid),
		    pl->v[i]);
	}
	pickle_end(pk);
	if (pickle_finish(pk) == -1) {
		encode_failed(b, key, pickle_error(pk));
		free(key);
		return;
	}
	val = buf_steal(&pk->out, &len);
	put_entry(b, f, key, val, len, true);
}

/* Encode any JSON value and store it (taking key); false if it cannot be. */
static bool
put_json(struct builder *b, enum family f, char *key, const json_t *v)
{
	unsigned char	*val;
	size_t		 len;
	char		*s;

	if (b->o->format == VALUE_JSON) {
		if ((s = jsonld_dumps(v)) == NULL) {
			encode_failed(b, key, "cannot encode as JSON");
			free(key);
			return false;
		}
		put_entry(b, f, key, (unsigned char *)s, strlen(s), true);
		return true;
	}
	pickle_reset(&b->pk);
	pickle_begin(&b->pk);
	pickle_json(&b->pk, v);
	if (pickle_finish(&b->pk) == -1) {
		encode_failed(b, key, pickle_error(&b->pk));
		free(key);
		return false;
	}
	val = buf_steal(&b->pk.out, &len);
	put_entry(b, f, key, val, len, true);
	return true;
}

/* Append p to the list under key (taken) in an index map. */
static void
index_add(struct map *idx, char *key, const struct program *p)
{
	struct map_item	*it = map_put(idx, key, strlen(key));
	struct plist	*pl = it->val;

	free(key);
	if (pl == NULL)
		it->val = pl = xcalloc(1, sizeof *pl);
	pl->v = xreallocarray(pl->v, pl->n + 1, sizeof *pl->v);
	pl->v[pl->n++] = p;
}

/* Store one site's index map in its family, then free it. */
static void
index_flush(struct builder *b, enum family f, struct map *idx)
{
	struct map_item	*it;

	MAP_FOREACH(idx, it) {
		struct plist *pl = it->val;

		put_uuid_list(b, f, xstrdup(it->key), pl);
		free(pl->v);
		free(pl);
	}
	map_free(idx);
}

/* Encode a processed pathway: "programs" out, "program_uuids" in. */
static bool
put_pathway(struct builder *b, const struct pathway_item *pr)
{
	struct pickle	*pk = &b->pk;
	const char	*k;
	json_t		*v, *copy;
	unsigned char	*val;
	size_t		 n, len;
	bool		 had, ok;

	if (pr->uuids == NULL)
		return put_json(b, FAM_PATHWAY, xstrdup(pr->key), pr->pw);
	had = json_object_get(pr->pw, "program_uuids") != NULL;
	if (b->o->format == VALUE_JSON) {
		copy = json_copy(pr->pw);
		json_object_del(copy, "programs");
		json_object_set(copy, "program_uuids", pr->uuids);
		ok = put_json(b, FAM_PATHWAY, xstrdup(pr->key), copy);
		json_decref(copy);
		return ok;
	}
	n = json_object_size(pr->pw) - 1 + (had ? 0 : 1);
	pickle_reset(pk);
	pickle_begin(pk);
	pickle_dict_begin(pk, n);
	json_object_foreach(pr->pw, k, v) {
		if (strcmp(k, "programs") == 0)
			continue;
		pickle_str(pk, k, strlen(k), PICKLE_KEY);
		pickle_json(pk, strcmp(k, "program_uuids") == 0 ?
		    pr->uuids : v);
	}
	if (!had) {
		pickle_str(pk, "program_uuids", strlen("program_uuids"),
		    PICKLE_NEW);
		pickle_json(pk, pr->uuids);
	}
	pickle_end(pk);
	if (pickle_finish(pk) == -1) {
		encode_failed(b, pr->key, pickle_error(pk));
		return false;
	}
	val = buf_steal(&pk->out, &len);
	put_entry(b, FAM_PATHWAY, xstrdup(pr->key), val, len, true);
	return true;
}

/* program-{uuid}: every program of the site, as finished. */
static void
family_programs(struct builder *b, const struct catalog_site *s)
{
	const unsigned char	*val;
	size_t			 i, len;

	for (i = 0; i < s->nprograms; i++) {
		val = program_value(s->programs[i], &len);
		put_entry(b, FAM_PROGRAM, family_key(FAM_PROGRAM,
		    program_uuid(s->programs[i])), val, len, false);
	}
}

/* pathway-{id}, and the list for pathway-ids-{domain} of those stored. */
static json_t *
family_pathways(struct builder *b, const struct pathway_walk *w)
{
	json_t	*list = json_array();
	size_t	 i;

	for (i = 0; i < w->n; i++) {
		/* A pathway that could not be stored is not listed either. */
		if (!put_pathway(b, &w->v[i]))
			continue;
		if (b->o->pathway_ids == PATHWAY_IDS_IDS)
			json_array_append(list, w->v[i].id);
		else
			json_array_append_new(list, json_string(w->v[i].key));
	}
	return list;
}

/*
 * get_courses, get_catalog_courses, programs by type, by type slug and by
 * organization: one index map per family, in program order.
 */
static void
family_indexes(struct builder *b, const struct catalog_site *s)
{
	struct map		 idx[FAM_COUNT];
	struct program_facts	 pf;
	const struct program	*p;
	size_t			 i, j;

	for (j = 0; j < FAM_COUNT; j++)
		map_init(&idx[j]);
	for (i = 0; i < s->nprograms; i++) {
		p = s->programs[i];
		program_facts(p, &pf);
		for (j = 0; j < pf.nruns; j++)
			index_add(&idx[FAM_COURSE],
			    family_key(FAM_COURSE, pf.runs[j]), p);
		for (j = 0; j < pf.ncourses; j++)
			index_add(&idx[FAM_CATALOG_COURSE],
			    family_key(FAM_CATALOG_COURSE, pf.courses[j]), p);
		index_add(&idx[FAM_TYPE], family_site_key(FAM_TYPE,
		    s->site_id, pf.type), p);
		index_add(&idx[FAM_TYPE_SLUG], family_site_key(FAM_TYPE_SLUG,
		    s->site_id, pf.slug), p);
		for (j = 0; j < pf.norgs; j++)
			index_add(&idx[FAM_ORG],
			    family_key(FAM_ORG, pf.orgs[j]), p);
	}
	for (j = 0; j < FAM_COUNT; j++)
		index_flush(b, (enum family)j, &idx[j]);
}

/*
 * program-uuids-{domain}: the list as Discovery returned it, less the programs
 * that are not in the generation (neither fetched now nor kept from before):
 * an index never names a program that is not there (design.md: Failures).
 */
static void
family_site_programs(struct builder *b, const struct catalog_site *s)
{
	struct map	 have;
	json_t		*uu = json_array();
	size_t		 i;

	map_init(&have);
	for (i = 0; i < s->nprograms; i++)
		map_put(&have, program_uuid(s->programs[i]),
		    strlen(program_uuid(s->programs[i])))->val = &have;
	for (i = 0; i < s->nuuids; i++)
		if (map_get(&have, s->uuids[i], strlen(s->uuids[i])) != NULL)
			json_array_append_new(uu, json_string(s->uuids[i]));
	map_free(&have);
	put_json(b, FAM_SITE_PROGRAMS, family_key(FAM_SITE_PROGRAMS,
	    s->domain), uu);
	json_decref(uu);
}

/* Everything one site contributes, into the builder's families. */
static void
build_site(struct builder *b, const struct catalog_site *s)
{
	struct pathway_walk	 w;
	json_t			*list;

	if (s->status == SITE_UNCONFIGURED) {
		/* No catalog URL: [] for both of its lists, as upstream. */
		list = json_array();
		put_json(b, FAM_SITE_PROGRAMS, family_key(FAM_SITE_PROGRAMS,
		    s->domain), list);
		put_json(b, FAM_SITE_PATHWAYS, family_key(FAM_SITE_PATHWAYS,
		    s->domain), list);
		json_decref(list);
		return;
	}
	if (!s->has_data)
		return;
	pathway_walk(s, false, &w);
	family_programs(b, s);
	list = family_pathways(b, &w);
	family_indexes(b, s);
	family_site_programs(b, s);
	put_json(b, FAM_SITE_PATHWAYS, family_key(FAM_SITE_PATHWAYS,
	    s->domain), list);
	json_decref(list);
	pathway_walk_free(&w);
}

/* One entry: its key (taken), value, wire key and servers. */
static void
lay_entry(struct plan *pl, enum family f, struct pending_entry *pe,
    const struct keyfn *kf, const struct store *st, uint32_t flags)
{
	struct entry	*e = &pl->v[pl->n++];
	size_t		 idx[STORE_MAX_SERVERS], i, k, wlen;
	struct buf	 wire;

	e->family = (uint8_t)f;
	e->phase = (uint8_t)family_phase(f);
	e->subject = (uint8_t)strlen(family_prefix(f));
	e->key = pe->key;
	pl->own[pl->nown++] = (unsigned char *)pe->key;
	e->val = pe->val;
	e->len = pe->len;
	if (pe->own != NULL)
		pl->own[pl->nown++] = pe->own;
	e->flags = flags;
	buf_init(&wire);
	if (key_make(kf, pe->key, strlen(pe->key), &wire) == -1) {
		buf_free(&wire);
		return;
	}
	e->wire = (char *)buf_steal(&wire, &wlen);
	e->wirelen = (uint32_t)wlen;
	pl->own[pl->nown++] = (unsigned char *)e->wire;
	k = st != NULL ? store_place(st, e->wire, wlen, idx) : 0;
	for (i = 0; i < k; i++)
		e->servers |= (uint64_t)1 << idx[i];
}

/*
 * Lay the collected entries out in publish order (design.md: What a refresh
 * does).
 */
static void
lay_out(struct builder *b, struct plan *pl, const struct keyfn *kf,
    const struct store *st, uint32_t flags)
{
	struct map_item	*it;
	size_t		 n = 0;
	int		 f, phase;

	for (f = 0; f < FAM_COUNT; f++)
		n += b->fam[f].nitems;
	pl->v = xcalloc(n + 1, sizeof *pl->v);
	pl->own = xcalloc(3 * n + 1, sizeof *pl->own);
	for (phase = 0; phase < FAMILY_PHASES; phase++) {
		for (f = 0; f < FAM_COUNT; f++) {
			if (family_phase((enum family)f) != phase)
				continue;
			MAP_FOREACH(&b->fam[f], it) {
				lay_entry(pl, (enum family)f, it->val, kf, st,
				    flags);
				free(it->val);
			}
		}
	}
}

struct plan *
plan_build(const struct catalog *gen, const struct plan_opts *o,
    const struct keyfn *kf, const struct store *st, uint32_t flags)
{
	struct builder	 b;
	struct plan	*pl;
	size_t		 i;
	int		 f;

	memset(&b, 0, sizeof b);
	b.o = o;
	for (f = 0; f < FAM_COUNT; f++)
		map_init(&b.fam[f]);
	pickle_init(&b.pk, o->proto);
	for (i = 0; i < gen->nsites; i++)
		build_site(&b, gen->sites[i]);

	pl = xcalloc(1, sizeof *pl);
	pl->gen = catalog_hold(gen);
	pl->nprograms = b.fam[FAM_PROGRAM].nitems;
	pl->npathways = b.fam[FAM_PATHWAY].nitems;
	pl->errors = b.errors;
	pl->failed = b.failed;
	lay_out(&b, pl, kf, st, flags);
	for (f = 0; f < FAM_COUNT; f++)
		map_free(&b.fam[f]);
	pickle_free(&b.pk);
	return pl;
}

void
plan_free(struct plan *pl)
{
	size_t	i;

	if (pl == NULL)
		return;
	for (i = 0; i < pl->nown; i++)
		free(pl->own[i]);
	free(pl->own);
	for (i = 0; i < (size_t)pl->errors; i++)
		free(pl->failed[i]);
	free(pl->failed);
	free(pl->v);
	catalog_release(pl->gen);
	free(pl);
}
