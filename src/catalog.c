/*
 * catalog.c: generations, and the plan of the nine key families.
 *
 * The families follow cache_programs and its helpers in
 * openedx/core/djangoapps/catalog (process_pathways, get_courses,
 * get_catalog_courses, the by-type, by-slug and by-organization indexes),
 * including their quirks: a pathway naming a program the site does not
 * have is cached unmodified; pathway-ids holds cache keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "jsonld.h"
#include "log.h"
#include "map.h"
#include "pickle.h"
#include "py.h"
#include "store.h"
#include "util.h"

static const char *const family_names[FAM_COUNT] = {
	"program", "pathway", "course_programs", "catalog_course_programs",
	"programs_by_type", "programs_by_type_slug", "organization_programs",
	"program_uuids", "pathway_ids"
};

const char *
catalog_family_name(enum catalog_family f)
{
	return f < FAM_COUNT ? family_names[f] : "unknown";
}

int
catalog_phase(enum catalog_family f)
{
	switch (f) {
	case FAM_PROGRAM:
	case FAM_PATHWAY:
		return 0;
	case FAM_SITE_PROGRAMS:
	case FAM_SITE_PATHWAYS:
		return 2;
	default:
		return 1;
	}
}

void
catalog_opts_from(const struct cfg *cfg, struct catalog_opts *o)
{
	o->format = cfg->value_format;
	o->proto = cfg->pickle_protocol;
	o->pathway_ids = cfg->pathway_ids;
}

/* --- sites and generations ------------------------------------------ */

struct catalog_site *
catalog_site_new(const char *domain, long site_id)
{
	struct catalog_site	*s;

	s = xcalloc(1, sizeof *s);
	s->domain = xstrdup(domain);
	s->site_id = site_id;
	s->status = SITE_OK;
	return s;
}

struct catalog_site *
catalog_site_copy(const struct catalog_site *src)
{
	struct catalog_site	*s;
	size_t			 i;

	s = catalog_site_new(src->domain, src->site_id);
	s->status = src->status;
	s->has_data = src->has_data;
	s->pathways_failed = src->pathways_failed;
	s->full_ok = src->full_ok;
	s->incr = src->incr;
	s->uuids = xreallocarray(NULL, src->nuuids + 1, sizeof *s->uuids);
	for (i = 0; i < src->nuuids; i++)
		s->uuids[i] = xstrdup(src->uuids[i]);
	s->nuuids = src->nuuids;
	s->programs = xreallocarray(NULL, src->nprograms + 1,
	    sizeof *s->programs);
	for (i = 0; i < src->nprograms; i++)
		s->programs[i] = program_ref(src->programs[i]);
	s->nprograms = src->nprograms;
	s->pathways = src->pathways != NULL ? json_incref(src->pathways) :
	    NULL;
	return s;
}

void
catalog_site_free(struct catalog_site *s)
{
	size_t	i;

	if (s == NULL)
		return;
	free(s->domain);
	for (i = 0; i < s->nuuids; i++)
		free(s->uuids[i]);
	free(s->uuids);
	for (i = 0; i < s->nprograms; i++)
		program_unref(s->programs[i]);
	free(s->programs);
	json_decref(s->pathways);
	free(s);
}

void
catalog_site_add_program(struct catalog_site *s, struct program *p)
{
	s->programs = xreallocarray(s->programs, s->nprograms + 1,
	    sizeof *s->programs);
	s->programs[s->nprograms++] = p;
}

struct program *
catalog_site_program(const struct catalog_site *s, const char *uuid)
{
	size_t	i;

	for (i = 0; i < s->nprograms; i++)
		if (strcmp(program_uuid(s->programs[i]), uuid) == 0)
			return s->programs[i];
	return NULL;
}

bool
catalog_site_set_program(struct catalog_site *s, const char *uuid,
    struct program *p)
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
		return true;
	}
	if (p != NULL)
		program_unref(p);
	return false;
}

struct catalog *
catalog_new(void)
{
	struct catalog	*c = xcalloc(1, sizeof *c);

	c->refs = 1;
	return c;
}

struct catalog *
catalog_ref(struct catalog *c)
{
	c->refs++;
	return c;
}

void
catalog_unref(struct catalog *c)
{
	size_t	i;

	if (c == NULL || --c->refs > 0)
		return;
	for (i = 0; i < c->nsites; i++)
		catalog_site_free(c->sites[i]);
	free(c->sites);
	free(c);
}

void
catalog_add_site(struct catalog *c, struct catalog_site *s)
{
	c->sites = xreallocarray(c->sites, c->nsites + 1, sizeof *c->sites);
	c->sites[c->nsites++] = s;
}

struct catalog_site *
catalog_find_site(const struct catalog *c, const char *domain)
{
	size_t	i;

	for (i = 0; c != NULL && i < c->nsites; i++)
		if (strcmp(c->sites[i]->domain, domain) == 0)
			return c->sites[i];
	return NULL;
}

/* --- the plan --------------------------------------------------------- */

/* A key being collected, before the plan is laid out. */
struct pending_entry {
	enum catalog_family	 family;
	char			*key;
	const unsigned char	*val;
	size_t			 len;
	unsigned char		*own;		/* val, if allocated here */
};

/* A list of programs being collected under one index key. */
struct plist {
	struct program	**v;
	size_t		  n;
};

/* What plan_build keeps while it works. */
struct builder {
	const struct catalog_opts	*o;
	struct map			 fam[FAM_COUNT];	/* key -> entry */
	struct pickle			 pk;
	int				 errors;
};

/*
 * Put a value under key in a family, replacing the value of an earlier
 * site but keeping the key's first position (dict.update).  With own set,
 * the entry takes val.
 */
static void
put_entry(struct builder *b, enum catalog_family f, const char *key,
    const unsigned char *val, size_t len, bool own)
{
	struct map_item		*it = map_put(&b->fam[f], key, strlen(key));
	struct pending_entry	*e = it->val;

	if (e == NULL) {
		e = xcalloc(1, sizeof *e);
		e->family = f;
		e->key = xstrdup(key);
		it->val = e;
	}
	free(e->own);
	e->val = val;
	e->len = len;
	e->own = own ? (unsigned char *)val : NULL;
}

/* Encode a list of program uuids (program["uuid"] objects) and store it. */
static void
put_uuid_list(struct builder *b, enum catalog_family f, const char *key,
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
		log_event(LOG_ERR, "refresh_failed", "stage=encode key=%s "
		    "error=%s", key, pickle_error(pk));
		b->errors++;
		return;
	}
	val = buf_steal(&pk->out, &len);
	put_entry(b, f, key, val, len, true);
}

/* Encode any JSON value and store it; false (logged) if it cannot be. */
static bool
put_json(struct builder *b, enum catalog_family f, const char *key,
    const json_t *v)
{
	unsigned char	*val;
	size_t		 len;
	char		*s;

	if (b->o->format == VALUE_JSON) {
		if ((s = jsonld_dumps(v)) == NULL) {
			log_event(LOG_ERR, "refresh_failed", "stage=encode "
			    "key=%s error=%s", key, "cannot encode as JSON");
			b->errors++;
			return false;
		}
		put_entry(b, f, key, (unsigned char *)s, strlen(s), true);
		return true;
	}
	pickle_reset(&b->pk);
	pickle_begin(&b->pk);
	pickle_json(&b->pk, v);
	if (pickle_finish(&b->pk) == -1) {
		log_event(LOG_ERR, "refresh_failed", "stage=encode key=%s "
		    "error=%s", key, pickle_error(&b->pk));
		b->errors++;
		return false;
	}
	val = buf_steal(&b->pk.out, &len);
	put_entry(b, f, key, val, len, true);
	return true;
}

/* Append p to the list under key in an index map. */
static void
index_add(struct map *idx, const char *key, struct program *p)
{
	struct map_item	*it = map_put(idx, key, strlen(key));
	struct plist	*pl = it->val;

	if (pl == NULL)
		it->val = pl = xcalloc(1, sizeof *pl);
	pl->v = xreallocarray(pl->v, pl->n + 1, sizeof *pl->v);
	pl->v[pl->n++] = p;
}

/* Store one site's index map in its family, then free it. */
static void
index_flush(struct builder *b, enum catalog_family f, struct map *idx)
{
	struct map_item	*it;

	MAP_FOREACH(idx, it) {
		struct plist *pl = it->val;

		put_uuid_list(b, f, it->key, pl);
		free(pl->v);
		free(pl);
	}
	map_free(idx);
}

/* A pathway after process_pathways. */
struct processed {
	json_t	*pw;		/* the pathway object (borrowed) */
	json_t	*id;		/* pathway['id'] (borrowed) */
	json_t	*uuids;		/* program_uuids, or NULL if unmodified */
};

/* Encode a processed pathway: "programs" out, "program_uuids" in. */
static bool
put_pathway(struct builder *b, const char *key, const struct processed *pr)
{
	struct pickle	*pk = &b->pk;
	const char	*k;
	json_t		*v, *copy;
	unsigned char	*val;
	size_t		 n, len;
	bool		 had, ok;

	if (pr->uuids == NULL)
		return put_json(b, FAM_PATHWAY, key, pr->pw);
	had = json_object_get(pr->pw, "program_uuids") != NULL;
	if (b->o->format == VALUE_JSON) {
		copy = json_copy(pr->pw);
		json_object_del(copy, "programs");
		json_object_set(copy, "program_uuids", pr->uuids);
		ok = put_json(b, FAM_PATHWAY, key, copy);
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
		log_event(LOG_ERR, "refresh_failed", "stage=encode key=%s "
		    "error=%s", key, pickle_error(pk));
		b->errors++;
		return false;
	}
	val = buf_steal(&pk->out, &len);
	put_entry(b, FAM_PATHWAY, key, val, len, true);
	return true;
}

/*
 * Log a pathway that upstream's process_pathways raises on.  It is cached
 * exactly as upstream caches it, so the site is still fully published: this
 * is Discovery's inconsistency, reported, not a failed refresh.
 */
static void
pathway_fail(struct catalog_site *s, const char *fmt, ...)
    PCD_ATTR_PRINTF(2, 3);

static void
pathway_fail(struct catalog_site *s, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	log_event(LOG_WARNING, "pathway_unresolved", "site=%s error=%s",
	    s->domain, msg);
	free(msg);
}

/*
 * process_pathways: for each pathway, append its id to the pathway_ids of
 * each of its programs and replace "programs" by "program_uuids".  A
 * program the site does not have raises KeyError upstream: the programs
 * before it keep the id, and the pathway is cached as it came.
 */
static void
process_pathways(struct catalog_site *s, struct map *byuuid, json_t **ids,
    struct map *processed)
{
	json_t		*pw, *id, *progs, *prog, *uuid;
	size_t		 i, j;
	char		*idtext, *key;

	json_array_foreach(s->pathways, i, pw) {
		struct processed	*pr;
		struct map_item		*it;

		if (!json_is_object(pw) ||
		    (id = json_object_get(pw, "id")) == NULL) {
			pathway_fail(s, "pathway %zu has no id", i);
			continue;
		}
		if ((idtext = py_str(id)) == NULL) {
			pathway_fail(s, "pathway %zu: id is not a number or "
			    "string", i);
			continue;
		}
		key = xasprintf("pathway-%s", idtext);
		free(idtext);
		it = map_put(processed, key, strlen(key));
		free(key);
		if ((pr = it->val) == NULL)
			it->val = pr = xcalloc(1, sizeof *pr);
		json_decref(pr->uuids);
		pr->pw = pw;
		pr->id = id;
		pr->uuids = NULL;

		if ((progs = json_object_get(pw, "programs")) == NULL ||
		    !json_is_array(progs)) {
			pathway_fail(s, "pathway %s has no list of programs",
			    it->key);
			continue;
		}
		pr->uuids = json_array();
		json_array_foreach(progs, j, prog) {
			struct map_item	*pit;
			size_t		 k;

			if (!json_is_object(prog) || (uuid =
			    json_object_get(prog, "uuid")) == NULL ||
			    !json_is_string(uuid)) {
				pathway_fail(s, "%s: programs[%zu] has no uuid",
				    it->key, j);
				goto unmodified;
			}
			pit = map_find(byuuid, json_string_value(uuid),
			    json_string_length(uuid));
			if (pit == NULL) {
				pathway_fail(s, "%s lists program %s, which is "
				    "not among the site's programs: cached "
				    "unmodified, as cache_programs does",
				    it->key, json_string_value(uuid));
				goto unmodified;
			}
			k = (size_t)(pit - byuuid->items);
			json_array_append(ids[k], id);
			json_array_append(pr->uuids, uuid);
		}
		continue;
unmodified:
		json_decref(pr->uuids);
		pr->uuids = NULL;
	}
}

/*
 * program-{uuid}: every program of the site finished with the ids of the
 * pathways that name it.  A program whose value cannot be encoded is left
 * out (logged): no index will name it.
 */
static void
family_programs(struct builder *b, struct catalog_site *s, struct map *byuuid,
    json_t **ids)
{
	struct program	**pp;
	const unsigned char *val;
	size_t		  i, len;
	char		 *key;

	for (i = 0; i < byuuid->nitems; i++) {
		pp = byuuid->items[i].val;
		if (program_finish(pp, ids[i]) == -1) {
			log_event(LOG_ERR, "refresh_failed", "site=%s "
			    "stage=encode uuid=%s error=%s", s->domain,
			    program_uuid(*pp), "cannot encode the program");
			b->errors++;
			byuuid->items[i].val = NULL;
			continue;
		}
		val = program_value(*pp, &len);
		key = xasprintf("program-%s", program_uuid(*pp));
		put_entry(b, FAM_PROGRAM, key, val, len, false);
		free(key);
	}
}

/* pathway-{id}, and the list for pathway-ids-{domain} of those stored. */
static json_t *
family_pathways(struct builder *b, struct map *processed)
{
	struct map_item	*it;
	json_t		*list = json_array();

	MAP_FOREACH(processed, it) {
		struct processed *pr = it->val;

		/* A pathway that could not be stored is not listed either. */
		if (put_pathway(b, it->key, pr)) {
			if (b->o->pathway_ids == PATHWAY_IDS_IDS)
				json_array_append(list, pr->id);
			else
				json_array_append_new(list,
				    json_string(it->key));
		}
		json_decref(pr->uuids);
		free(pr);
	}
	map_free(processed);
	return list;
}

/*
 * get_courses, get_catalog_courses, programs by type, by type slug and by
 * organization: one index map per family, in program order.
 */
static void
family_indexes(struct builder *b, const struct catalog_site *s,
    struct program *const *progs, size_t n)
{
	struct map		 idx[FAM_COUNT];
	struct program_facts	 pf;
	size_t			 i, j;
	char			*key;

	for (j = 0; j < FAM_COUNT; j++)
		map_init(&idx[j]);
	for (i = 0; i < n; i++) {
		if (progs[i] == NULL)
			continue;
		program_facts(progs[i], &pf);
		for (j = 0; j < pf.nruns; j++) {
			key = xasprintf("course-programs-%s", pf.runs[j]);
			index_add(&idx[FAM_COURSE], key, progs[i]);
			free(key);
		}
		for (j = 0; j < pf.ncourses; j++) {
			key = xasprintf("catalog-course-programs-%s",
			    pf.courses[j]);
			index_add(&idx[FAM_CATALOG_COURSE], key, progs[i]);
			free(key);
		}
		key = xasprintf("programs-by-type-%ld-%s", s->site_id, pf.type);
		index_add(&idx[FAM_TYPE], key, progs[i]);
		free(key);
		key = xasprintf("programs-by-type-slug-%ld-%s", s->site_id,
		    pf.slug);
		index_add(&idx[FAM_TYPE_SLUG], key, progs[i]);
		free(key);
		for (j = 0; j < pf.norgs; j++) {
			key = xasprintf("organization-programs-%s", pf.orgs[j]);
			index_add(&idx[FAM_ORG], key, progs[i]);
			free(key);
		}
	}
	for (j = 0; j < FAM_COUNT; j++)
		index_flush(b, (enum catalog_family)j, &idx[j]);
}

/*
 * program-uuids-{domain}: the list as Discovery returned it, less the
 * programs that are not in the cache (neither fetched now nor kept from
 * before): an index never names a program that is not there (SPEC §7).
 */
static void
family_site_programs(struct builder *b, const struct catalog_site *s,
    const struct map *byuuid)
{
	const struct map_item	*it;
	json_t			*uu = json_array();
	size_t			 i;
	char			*key;

	for (i = 0; i < s->nuuids; i++) {
		it = map_find(byuuid, s->uuids[i], strlen(s->uuids[i]));
		if (it != NULL && it->val != NULL)
			json_array_append_new(uu, json_string(s->uuids[i]));
	}
	key = xasprintf("program-uuids-%s", s->domain);
	put_json(b, FAM_SITE_PROGRAMS, key, uu);
	free(key);
	json_decref(uu);
}

/* pathway-ids-{domain}. */
static void
family_site_pathways(struct builder *b, const struct catalog_site *s,
    json_t *list)
{
	char	*key;

	key = xasprintf("pathway-ids-%s", s->domain);
	put_json(b, FAM_SITE_PATHWAYS, key, list);
	free(key);
}

/* A site without a catalog URL: [] for both of its lists, as upstream. */
static void
build_unconfigured(struct builder *b, const struct catalog_site *s)
{
	json_t	*empty = json_array();
	char	*key;

	key = xasprintf("program-uuids-%s", s->domain);
	put_json(b, FAM_SITE_PROGRAMS, key, empty);
	free(key);
	family_site_pathways(b, s, empty);
	json_decref(empty);
}

/* Everything one site contributes, into the builder's families. */
static void
build_site(struct builder *b, struct catalog_site *s)
{
	struct map	  byuuid, processed;
	struct program	**progs;
	json_t		**ids, *list;
	size_t		  i, n;

	if (s->status == SITE_UNCONFIGURED) {
		build_unconfigured(b, s);
		return;
	}
	if (!s->has_data)
		return;

	/* new_programs: keyed by list uuid, in list order. */
	map_init(&byuuid);
	for (i = 0; i < s->nprograms; i++)
		map_put(&byuuid, program_uuid(s->programs[i]),
		    strlen(program_uuid(s->programs[i])))->val =
		    &s->programs[i];
	n = byuuid.nitems;
	ids = xcalloc(n + 1, sizeof *ids);
	for (i = 0; i < n; i++)
		ids[i] = json_array();

	map_init(&processed);
	if (s->pathways != NULL)
		process_pathways(s, &byuuid, ids, &processed);
	family_programs(b, s, &byuuid, ids);
	list = family_pathways(b, &processed);
	/* The records as finished (copies, where they were shared). */
	progs = xcalloc(n + 1, sizeof *progs);
	for (i = 0; i < n; i++)
		progs[i] = byuuid.items[i].val != NULL ?
		    *(struct program **)byuuid.items[i].val : NULL;
	family_indexes(b, s, progs, n);
	family_site_programs(b, s, &byuuid);
	family_site_pathways(b, s, list);

	json_decref(list);
	for (i = 0; i < n; i++)
		json_decref(ids[i]);
	free(ids);
	free(progs);
	map_free(&byuuid);
}

/* Lay the collected entries out in publish order, with wire keys. */
static void
lay_out(struct builder *b, struct plan *pl, const struct keyfn *kf,
    const struct store *st, uint32_t flags)
{
	struct map_item		*it;
	size_t			 idx[STORE_MAX_SERVERS], i, k, n = 0;
	char			 wire[KEY_MAX + 1];
	int			 f, phase, wlen;

	for (f = 0; f < FAM_COUNT; f++)
		n += b->fam[f].nitems;
	pl->v = xcalloc(n + 1, sizeof *pl->v);
	pl->own = xcalloc(3 * n + 1, sizeof *pl->own);
	/* SPEC §4: details, then indexes, the site lists last. */
	for (phase = 0; phase < CATALOG_PHASES; phase++) {
		for (f = 0; f < FAM_COUNT; f++) {
			if (catalog_phase((enum catalog_family)f) != phase)
				continue;
			MAP_FOREACH(&b->fam[f], it) {
				struct pending_entry	*pe = it->val;
				struct entry		*e = &pl->v[pl->n++];

				e->family = (uint8_t)f;
				e->key = pe->key;
				pl->own[pl->nown++] = (unsigned char *)pe->key;
				e->val = pe->val;
				e->len = pe->len;
				if (pe->own != NULL)
					pl->own[pl->nown++] = pe->own;
				e->flags = flags;
				wlen = key_make(kf, pe->key, strlen(pe->key),
				    wire);
				if (wlen != -1) {
					e->wire = xstrdup(wire);
					e->wirelen = (uint16_t)wlen;
					pl->own[pl->nown++] =
					    (unsigned char *)e->wire;
					k = st != NULL ? store_place(st, wire,
					    (size_t)wlen, idx) : 0;
					for (i = 0; i < k; i++)
						e->servers |= (uint64_t)1 <<
						    idx[i];
				}
				free(pe);
			}
		}
	}
}

struct plan *
plan_build(struct catalog *gen, const struct catalog_opts *o,
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
	pl->gen = catalog_ref(gen);
	pl->nprograms = b.fam[FAM_PROGRAM].nitems;
	pl->npathways = b.fam[FAM_PATHWAY].nitems;
	pl->errors = b.errors;
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
	free(pl->v);
	catalog_unref(pl->gen);
	free(pl);
}

const char *
plan_program_uuid(const struct entry *e)
{
	if (e->family != FAM_PROGRAM || strncmp(e->key, "program-", 8) != 0)
		return NULL;
	return e->key + 8;
}
