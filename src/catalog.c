/*
 * catalog.c: program records, pathway processing and the nine key families.
 *
 * The functions below follow cache_programs and its helpers in
 * openedx/core/djangoapps/catalog (research/edx-platform.md §2-§3): where
 * the Python raises on a wrong shape, the record is rejected instead (the
 * caller keeps the previous value); everything else is reproduced,
 * including the quirks (a pathway naming a program the site does not have
 * is cached unmodified; pathway-ids holds cache keys).
 */
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <wctype.h>

#include <xxhash.h>

#include "catalog.h"
#include "jsonld.h"
#include "log.h"
#include "map.h"
#include "pickle.h"
#include "util.h"

/* A list of C strings. */
struct strv {
	char	**v;
	size_t	  n;
};

struct catalog_program {
	int			 refs;
	char			*uuid;		/* from the site's list */
	char			*value_uuid;	/* program["uuid"] */
	struct strv		 runs;		/* course_run_keys_for_program */
	struct strv		 courses;	/* course_uuids_for_program */
	char			*type;		/* normalize_program_type */
	char			*slug;		/* str(type_attrs.get("slug")) */
	struct strv		 orgs;		/* authoring org keys, as listed */
	struct buf		 bytes;		/* the value */
	struct pickle_ckpt	 ckpt;		/* pickle: where pathway_ids goes */
	size_t			 json_open;	/* json: prefix length */
	json_t			*tree;		/* detail, if it has pathway_ids */
	json_t			*fin_ids;	/* ids the bytes end with */
	enum cfg_value_format	 format;
	int			 proto;
	bool			 has_body;
	unsigned char		 body[CATALOG_BODY_HASH];
};

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

static void
strv_add(struct strv *sv, const char *s)
{
	sv->v = xreallocarray(sv->v, sv->n + 1, sizeof *sv->v);
	sv->v[sv->n++] = xstrdup(s);
}

static void
strv_free(struct strv *sv)
{
	size_t	i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

static void
strv_copy(struct strv *dst, const struct strv *src)
{
	size_t	i;

	memset(dst, 0, sizeof *dst);
	for (i = 0; i < src->n; i++)
		strv_add(dst, src->v[i]);
}

/*
 * Python's str() of a JSON scalar used in a key template: strings as they
 * are, null "None", booleans "True"/"False", integers in decimal.  Anything
 * else (reals, lists, objects) is refused: upstream would make keys such as
 * "organization-programs-{'a': 1}", which no reader asks for.  NULL if
 * refused; the caller frees.  Strings with a NUL are refused too.
 */
static char *
py_str(const json_t *v)
{
	const char	*num;
	size_t		 len;

	if ((num = jsonld_number(v, &len)) != NULL)
		return strchr(num, '.') == NULL && strpbrk(num, "eE") == NULL ?
		    xstrndup(num, len) : NULL;
	switch (json_typeof(v)) {
	case JSON_STRING:
		if (strlen(json_string_value(v)) != json_string_length(v))
			return NULL;
		return xstrdup(json_string_value(v));
	case JSON_NULL:
		return xstrdup("None");
	case JSON_TRUE:
		return xstrdup("True");
	case JSON_FALSE:
		return xstrdup("False");
	case JSON_INTEGER:
		return xasprintf("%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	default:
		return NULL;
	}
}

/*
 * str.lower() for a type name.  Simple (one-to-one) Unicode case mapping
 * from the C.UTF-8 locale: the same as Python's for every letter used in
 * program type names; Python's full mappings (U+0130 to "i̇", final sigma)
 * are not reproduced.
 */
static char *
py_lower(const char *s)
{
	static locale_t	 loc;
	locale_t	 old;
	struct buf	 b;
	mbstate_t	 in, out;
	size_t		 len = strlen(s), n;
	wchar_t		 wc;
	char		 mb[8];

	if (loc == (locale_t)0 &&
	    (loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0)) ==
	    (locale_t)0)
		fatal("newlocale C.UTF-8");
	old = uselocale(loc);
	buf_init(&b);
	memset(&in, 0, sizeof in);
	memset(&out, 0, sizeof out);
	while (len > 0) {
		n = mbrtowc(&wc, s, len, &in);
		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			/* Not UTF-8 (jansson never gives us that): keep it. */
			buf_addc(&b, (unsigned char)*s);
			memset(&in, 0, sizeof in);
			s++;
			len--;
			continue;
		}
		wc = (wchar_t)towlower((wint_t)wc);
		buf_add(&b, mb, wcrtomb(mb, wc, &out));
		s += n;
		len -= n;
	}
	uselocale(old);
	if (b.data == NULL)
		buf_add(&b, "", 0);
	return (char *)buf_steal(&b, NULL);
}

/* Python truthiness of a JSON value (NULL: absent, as .get() gives). */
static bool
py_truthy(const json_t *v)
{
	if (v == NULL)
		return false;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return json_object_size(v) != 0;
	case JSON_ARRAY:
		return json_array_size(v) != 0;
	case JSON_STRING:
		return json_string_length(v) != 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0;
	case JSON_TRUE:
		return true;
	default:
		return false;
	}
}

/* The reason a record is refused, in the caller's buffer. */
struct why {
	char	*buf;
	size_t	 len;
	bool	 set;
};

static void
why(struct why *w, const char *fmt, ...) PCD_ATTR_PRINTF(2, 3);

static void
why(struct why *w, const char *fmt, ...)
{
	va_list	ap;

	if (w->set)
		return;		/* the first cause is the one to report */
	va_start(ap, fmt);
	vsnprintf(w->buf, w->len, fmt, ap);
	va_end(ap);
	w->set = true;
}

/*
 * container.get(name, []) for a container that must be a dict, when the
 * result will be iterated: NULL (absent) means an empty list.  -1 when
 * Python would raise.
 */
static int
get_list(const json_t *container, const char *name, const char *what,
    const json_t **out, struct why *w)
{
	const json_t	*v;

	if (!json_is_object(container)) {
		why(w, "%s is not an object", what);
		return -1;
	}
	v = json_object_get(container, name);
	if (v != NULL && !json_is_array(v)) {
		why(w, "%s.%s is not a list", what, name);
		return -1;
	}
	*out = v;
	return 0;
}

/* _primary_active_curriculum: the first active curriculum, or NULL. */
static int
active_curriculum(const json_t *program, const json_t **out, struct why *w)
{
	const json_t	*curricula, *c;
	size_t		 i;

	*out = NULL;
	if (get_list(program, "curricula", "program", &curricula, w) == -1)
		return -1;
	json_array_foreach(curricula, i, c) {
		if (!json_is_object(c)) {
			why(w, "curricula[%zu] is not an object", i);
			return -1;
		}
		if (py_truthy(json_object_get(c, "is_active"))) {
			*out = c;
			return 0;
		}
	}
	return 0;
}

/* A value of a set of keys: strings and None are kept apart, as in Python. */
static void
set_add(struct map *seen, struct strv *sv, const json_t *v, const char *what,
    struct why *w)
{
	char		*s, tagged[2];
	struct map_item	*it;
	struct buf	 k;

	if (!json_is_string(v) && !json_is_null(v) && v != NULL) {
		why(w, "%s is not a string", what);
		return;
	}
	if ((s = py_str(v != NULL ? v : json_null())) == NULL) {
		why(w, "%s contains a NUL character", what);
		return;
	}
	tagged[0] = json_is_string(v) ? 's' : 'n';
	tagged[1] = ':';
	buf_init(&k);
	buf_add(&k, tagged, 2);
	buf_adds(&k, s);
	it = map_put(seen, (char *)k.data, k.len);
	if (it->val == NULL) {
		it->val = seen;		/* any non-NULL marker */
		strv_add(sv, s);
	}
	buf_free(&k);
	free(s);
}

/* _course_runs_from_container and _courses_from_container, together. */
static int
from_container(const json_t *container, const char *what, struct map *runseen,
    struct strv *runs, struct map *courseseen, struct strv *courses,
    struct why *w)
{
	const json_t	*list, *course, *crs, *run;
	size_t		 i, j;

	if (get_list(container, "courses", what, &list, w) == -1)
		return -1;
	json_array_foreach(list, i, course) {
		if (!json_is_object(course)) {
			why(w, "%s.courses[%zu] is not an object", what, i);
			return -1;
		}
		set_add(courseseen, courses, json_object_get(course, "uuid"),
		    "course uuid", w);
		if (get_list(course, "course_runs", "course", &crs, w) == -1)
			return -1;
		json_array_foreach(crs, j, run) {
			if (!json_is_object(run)) {
				why(w, "course_runs[%zu] is not an object", j);
				return -1;
			}
			set_add(runseen, runs, json_object_get(run, "key"),
			    "course run key", w);
		}
	}
	return w->set ? -1 : 0;
}

/*
 * course_run_keys_for_program and course_uuids_for_program: the program,
 * then its child programs (depth first, as child_programs lists them), each
 * through its first active curriculum and its own courses.
 */
static int
walk_program(const json_t *program, int depth, struct map *runseen,
    struct strv *runs, struct map *courseseen, struct strv *courses,
    struct why *w)
{
	const json_t	*cur;

	if (depth > 64) {
		why(w, "child programs nest deeper than 64 levels");
		return -1;
	}
	if (active_curriculum(program, &cur, w) == -1)
		return -1;
	if (cur != NULL && from_container(cur, "curriculum", runseen, runs,
	    courseseen, courses, w) == -1)
		return -1;
	if (from_container(program, "program", runseen, runs, courseseen,
	    courses, w) == -1)
		return -1;
	return 0;
}

/* child_programs(program): every descendant through active curricula. */
static int
walk_children(const json_t *program, int depth, struct map *runseen,
    struct strv *runs, struct map *courseseen, struct strv *courses,
    struct why *w)
{
	const json_t	*cur, *children, *child;
	size_t		 i;

	if (depth > 64) {
		why(w, "child programs nest deeper than 64 levels");
		return -1;
	}
	if (active_curriculum(program, &cur, w) == -1)
		return -1;
	if (cur == NULL)
		return 0;
	if (get_list(cur, "programs", "curriculum", &children, w) == -1)
		return -1;
	json_array_foreach(children, i, child) {
		if (walk_program(child, depth + 1, runseen, runs, courseseen,
		    courses, w) == -1)
			return -1;
		if (walk_children(child, depth + 1, runseen, runs, courseseen,
		    courses, w) == -1)
			return -1;
	}
	return 0;
}

/* Everything the index families need, or -1 with the reason. */
static int
program_facts(struct catalog_program *p, const json_t *d, struct why *w)
{
	const json_t	*v, *attrs, *orgs, *org;
	struct map	 runseen, courseseen;
	char		*s;
	size_t		 i;
	int		 rc = -1;

	map_init(&runseen);
	map_init(&courseseen);
	if ((v = json_object_get(d, "uuid")) == NULL) {
		why(w, "missing uuid");
		goto out;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		why(w, "uuid is not a string");
		goto out;
	}
	p->value_uuid = xstrdup(json_string_value(v));

	/* [parent] + child_programs(parent), in that order. */
	if (walk_program(d, 0, &runseen, &p->runs, &courseseen, &p->courses,
	    w) == -1 || walk_children(d, 0, &runseen, &p->runs, &courseseen,
	    &p->courses, w) == -1)
		goto out;

	v = json_object_get(d, "type");
	if ((s = py_str(v != NULL ? v : json_null())) == NULL) {
		why(w, "type is not a string");
		goto out;
	}
	p->type = py_lower(s);
	free(s);

	/* program.get('type_attrs', {}).get('slug') */
	attrs = json_object_get(d, "type_attrs");
	if (attrs != NULL && !json_is_object(attrs)) {
		why(w, "type_attrs is %s, not an object",
		    json_is_null(attrs) ? "null" : "not an object");
		goto out;
	}
	v = attrs != NULL ? json_object_get(attrs, "slug") : NULL;
	if ((p->slug = py_str(v != NULL ? v : json_null())) == NULL) {
		why(w, "type_attrs.slug is not a string");
		goto out;
	}

	/* program['authoring_organizations'], each org['key'] */
	if ((orgs = json_object_get(d, "authoring_organizations")) == NULL) {
		why(w, "missing authoring_organizations");
		goto out;
	}
	if (!json_is_array(orgs)) {
		why(w, "authoring_organizations is not a list");
		goto out;
	}
	json_array_foreach(orgs, i, org) {
		if (!json_is_object(org) ||
		    (v = json_object_get(org, "key")) == NULL) {
			why(w, "authoring_organizations[%zu] has no key", i);
			goto out;
		}
		if ((s = py_str(v)) == NULL) {
			why(w, "authoring_organizations[%zu].key is not a "
			    "string", i);
			goto out;
		}
		strv_add(&p->orgs, s);
		free(s);
	}
	rc = 0;
out:
	map_free(&runseen);
	map_free(&courseseen);
	return rc;
}

/* Write a program's pathway_ids list (ids are borrowed JSON values). */
static void
pickle_ids(struct pickle *pk, const json_t *ids)
{
	const json_t	*id;
	size_t		 i;

	pickle_list_begin(pk, json_array_size(ids));
	json_array_foreach(ids, i, id) {
		if (json_is_string(id))
			pickle_str_obj(pk, json_string_value(id),
			    json_string_length(id), id);
		else
			pickle_json(pk, id);
	}
	pickle_end(pk);
}

/*
 * Encode a program up to (not including) its pathway_ids.  The detail has
 * no "pathway_ids" key here, so upstream appends it as the last item.
 */
static int
encode_open(struct catalog_program *p, const json_t *d, struct pickle *pk,
    struct why *w)
{
	const char	*k;
	json_t		*v;
	char		*s;

	if (p->format == VALUE_JSON) {
		if ((s = jsonld_dumps(d)) == NULL) {
			why(w, "cannot encode the detail as JSON");
			return -1;
		}
		buf_adds(&p->bytes, s);
		free(s);
		p->json_open = p->bytes.len - 1;	/* without the '}' */
		return 0;
	}
	pickle_begin(pk);
	pickle_dict_begin(pk, json_object_size(d) + 1);
	json_object_foreach((json_t *)d, k, v) {
		pickle_str(pk, k, strlen(k), PICKLE_KEY);
		pickle_json(pk, v);
	}
	if (pk->failed) {
		why(w, "%s", pickle_error(pk));
		return -1;
	}
	pickle_checkpoint(pk, &p->ckpt);
	return 0;
}

/* Finish the value with these pathway ids: resume the open encoding. */
static int
finish_open(struct catalog_program *p, const json_t *ids)
{
	struct pickle	 pk;
	char		*s;
	int		 rc = 0;

	if (p->format == VALUE_JSON) {
		buf_truncate(&p->bytes, p->json_open);
		if ((s = jsonld_dumps(ids)) == NULL)
			fatalx("json_dumps of pathway ids");
		buf_printf(&p->bytes, "%s\"pathway_ids\":%s}",
		    p->json_open > 1 ? "," : "", s);
		free(s);
		return 0;
	}
	pickle_init(&pk, p->proto);
	/* Move the bytes in and resume in place: no copy of the value. */
	pk.out = p->bytes;
	buf_init(&p->bytes);
	pickle_resume(&pk, &pk.out, &p->ckpt);
	pickle_str(&pk, "pathway_ids", strlen("pathway_ids"), PICKLE_NEW);
	pickle_ids(&pk, ids);
	pickle_end(&pk);
	if (pickle_finish(&pk) == -1)
		rc = -1;
	p->bytes = pk.out;
	buf_init(&pk.out);
	pickle_free(&pk);
	return rc;
}

/* Finish a detail that had its own "pathway_ids" (kept in place). */
static int
finish_tree(struct catalog_program *p, const json_t *ids)
{
	struct pickle	 pk;
	json_t		*copy, *v;
	const char	*k;
	char		*s;
	int		 rc;

	buf_truncate(&p->bytes, 0);
	if (p->format == VALUE_JSON) {
		copy = json_copy(p->tree);
		json_object_set(copy, "pathway_ids", (json_t *)ids);
		s = jsonld_dumps(copy);
		json_decref(copy);
		if (s == NULL)
			return -1;
		buf_adds(&p->bytes, s);
		free(s);
		return 0;
	}
	pickle_init(&pk, p->proto);
	pickle_begin(&pk);
	pickle_dict_begin(&pk, json_object_size(p->tree));
	json_object_foreach(p->tree, k, v) {
		pickle_str(&pk, k, strlen(k), PICKLE_KEY);
		if (strcmp(k, "pathway_ids") == 0)
			pickle_ids(&pk, ids);
		else
			pickle_json(&pk, v);
	}
	pickle_end(&pk);
	rc = pickle_finish(&pk);
	buf_free(&p->bytes);
	p->bytes = pk.out;
	buf_init(&pk.out);
	pickle_free(&pk);
	return rc;
}

/* Whether two records encode their open part to the same bytes. */
static bool
same_open(const struct catalog_program *a, const struct catalog_program *b)
{
	size_t	len, hdr;

	if (a->format != b->format || a->proto != b->proto ||
	    (a->tree != NULL) != (b->tree != NULL))
		return false;
	if (a->tree != NULL)
		return json_equal(a->tree, b->tree);
	if (a->format == VALUE_JSON)
		return a->json_open == b->json_open &&
		    memcmp(a->bytes.data, b->bytes.data, a->json_open) == 0;
	if (a->ckpt.len != b->ckpt.len ||
	    a->ckpt.frame_start != b->ckpt.frame_start ||
	    a->ckpt.memo_next != b->ckpt.memo_next ||
	    a->ckpt.total != b->ckpt.total || a->ckpt.done != b->ckpt.done)
		return false;
	len = a->ckpt.len;
	if (a->ckpt.frame_start < 0)
		return memcmp(a->bytes.data, b->bytes.data, len) == 0;
	/* The open frame's header is written when the value is finished. */
	hdr = (size_t)a->ckpt.frame_start;
	return memcmp(a->bytes.data, b->bytes.data, hdr) == 0 &&
	    memcmp(a->bytes.data + hdr + 9, b->bytes.data + hdr + 9,
	    len - hdr - 9) == 0;
}

static void
program_free(struct catalog_program *p)
{
	free(p->uuid);
	free(p->value_uuid);
	strv_free(&p->runs);
	strv_free(&p->courses);
	free(p->type);
	free(p->slug);
	strv_free(&p->orgs);
	buf_free(&p->bytes);
	json_decref(p->tree);
	json_decref(p->fin_ids);
	free(p);
}

struct catalog_program *
catalog_program_new(const json_t *detail, const char *list_uuid,
    const struct catalog_opts *o, struct catalog_program *prev,
    char *whybuf, size_t whylen)
{
	struct catalog_program	*p;
	struct pickle		 pk;
	struct why		 w = { whybuf, whylen, false };

	if (!json_is_object(detail)) {
		why(&w, "the detail is not a JSON object");
		return NULL;
	}
	p = xcalloc(1, sizeof *p);
	p->refs = 1;
	p->uuid = xstrdup(list_uuid);
	p->format = o->format;
	p->proto = o->proto;
	buf_init(&p->bytes);
	if (program_facts(p, detail, &w) == -1)
		goto fail;
	if (json_object_get(detail, "pathway_ids") != NULL) {
		/* Rare: upstream replaces the value in place; keep it all. */
		p->tree = json_deep_copy(detail);
	} else {
		pickle_init(&pk, o->proto);
		if (encode_open(p, detail, &pk, &w) == -1) {
			pickle_free(&pk);
			goto fail;
		}
		if (p->format == VALUE_PICKLE) {
			p->bytes = pk.out;
			buf_init(&pk.out);
		}
		pickle_free(&pk);
	}
	if (prev != NULL && strcmp(prev->uuid, p->uuid) == 0 &&
	    same_open(p, prev)) {
		program_free(p);
		return catalog_program_ref(prev);
	}
	return p;
fail:
	program_free(p);
	return NULL;
}

void
catalog_body_hash(const void *data, size_t len,
    unsigned char out[CATALOG_BODY_HASH])
{
	XXH128_canonical_t	c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
	memcpy(out, c.digest, CATALOG_BODY_HASH);
}

void
catalog_program_set_body(struct catalog_program *p,
    const unsigned char hash[CATALOG_BODY_HASH])
{
	/* Shared records may take it too: the same bytes come of it. */
	memcpy(p->body, hash, CATALOG_BODY_HASH);
	p->has_body = true;
}

bool
catalog_program_same_body(const struct catalog_program *p,
    const unsigned char hash[CATALOG_BODY_HASH],
    const struct catalog_opts *o)
{
	return p->has_body && p->format == o->format &&
	    p->proto == o->proto &&
	    memcmp(p->body, hash, CATALOG_BODY_HASH) == 0;
}

struct catalog_program *
catalog_program_ref(struct catalog_program *p)
{
	p->refs++;
	return p;
}

void
catalog_program_unref(struct catalog_program *p)
{
	if (p != NULL && --p->refs == 0)
		program_free(p);
}

const char *
catalog_program_uuid(const struct catalog_program *p)
{
	return p->uuid;
}

/*
 * Finish *pp with these pathway ids.  A record shared with the last
 * generation is copied first: that generation's entries point into it.
 */
static int
program_finish(struct catalog_program **pp, json_t *ids)
{
	struct catalog_program	*p = *pp, *c;

	if (p->fin_ids != NULL && json_equal(p->fin_ids, ids))
		return 0;
	if (p->refs > 1) {
		c = xcalloc(1, sizeof *c);
		*c = *p;
		c->refs = 1;
		c->uuid = xstrdup(p->uuid);
		c->value_uuid = xstrdup(p->value_uuid);
		strv_copy(&c->runs, &p->runs);
		strv_copy(&c->courses, &p->courses);
		c->type = xstrdup(p->type);
		c->slug = xstrdup(p->slug);
		strv_copy(&c->orgs, &p->orgs);
		buf_init(&c->bytes);
		buf_add(&c->bytes, p->bytes.data, p->bytes.len);
		c->tree = p->tree != NULL ? json_incref(p->tree) : NULL;
		c->fin_ids = NULL;
		catalog_program_unref(p);
		*pp = p = c;
	}
	json_decref(p->fin_ids);
	p->fin_ids = json_incref(ids);
	return p->tree != NULL ? finish_tree(p, ids) : finish_open(p, ids);
}

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
	s->published_programs = src->published_programs;
	s->uuids = xreallocarray(NULL, src->nuuids, sizeof *s->uuids);
	for (i = 0; i < src->nuuids; i++)
		s->uuids[i] = xstrdup(src->uuids[i]);
	s->nuuids = src->nuuids;
	s->programs = xreallocarray(NULL, src->nprograms,
	    sizeof *s->programs);
	for (i = 0; i < src->nprograms; i++)
		s->programs[i] = catalog_program_ref(src->programs[i]);
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
		catalog_program_unref(s->programs[i]);
	free(s->programs);
	json_decref(s->pathways);
	free(s);
}

void
catalog_site_add_program(struct catalog_site *s, struct catalog_program *p)
{
	s->programs = xreallocarray(s->programs, s->nprograms + 1,
	    sizeof *s->programs);
	s->programs[s->nprograms++] = p;
}

struct catalog *
catalog_new(void)
{
	return xcalloc(1, sizeof(struct catalog));
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

void
catalog_free(struct catalog *c)
{
	size_t	i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nentries; i++) {
		free(c->entries[i].key);
		free(c->entries[i].own);
	}
	free(c->entries);
	free(c->written);
	for (i = 0; i < c->nsites; i++)
		catalog_site_free(c->sites[i]);
	free(c->sites);
	free(c);
}

/* --- building the entries ------------------------------------------- */

/* A list of programs being collected under one index key. */
struct plist {
	struct catalog_program	**v;
	size_t			  n;
};

/* What catalog_build keeps while it works. */
struct builder {
	const struct catalog_opts	*o;
	struct map			 fam[FAM_COUNT];	/* key -> entry */
	struct pickle			 pk;
	int				 errors;
};

/* Put a value under key in a family, replacing the value of an earlier
 * site but keeping the key's first position (dict.update). */
static void
put_entry(struct builder *b, enum catalog_family f, const char *key,
    const unsigned char *val, size_t len, unsigned char *own)
{
	struct map_item		*it = map_put(&b->fam[f], key, strlen(key));
	struct catalog_entry	*e = it->val;

	if (e == NULL) {
		e = xcalloc(1, sizeof *e);
		e->family = f;
		e->key = xstrdup(key);
		it->val = e;
	}
	free(e->own);
	e->val = val;
	e->len = len;
	e->own = own;
}

/* Encode a list of program uuids (program["uuid"] objects) and store it. */
static void
put_uuid_list(struct builder *b, enum catalog_family f, const char *key,
    const struct plist *pl)
{
	struct pickle	*pk = &b->pk;
	json_t		*arr;
	unsigned char	*val;
	size_t		 i, len;
	char		*s;

	if (b->o->format == VALUE_JSON) {
		arr = json_array();
		for (i = 0; i < pl->n; i++)
			json_array_append_new(arr,
			    json_string(pl->v[i]->value_uuid));
		s = jsonld_dumps(arr);
		json_decref(arr);
		put_entry(b, f, key, (unsigned char *)s, strlen(s),
		    (unsigned char *)s);
		return;
	}
	pickle_reset(pk);
	pickle_begin(pk);
	pickle_list_begin(pk, pl->n);
	for (i = 0; i < pl->n; i++)
		pickle_str_obj(pk, pl->v[i]->value_uuid,
		    strlen(pl->v[i]->value_uuid), pl->v[i]);
	pickle_end(pk);
	pickle_finish(pk);
	val = buf_steal(&pk->out, &len);
	put_entry(b, f, key, val, len, val);
}

/* Encode any JSON value and store it. */
static void
put_json(struct builder *b, enum catalog_family f, const char *key,
    const json_t *v)
{
	unsigned char	*val;
	size_t		 len;
	char		*s;

	if (b->o->format == VALUE_JSON) {
		s = jsonld_dumps(v);
		put_entry(b, f, key, (unsigned char *)s, strlen(s),
		    (unsigned char *)s);
		return;
	}
	pickle_reset(&b->pk);
	pickle_begin(&b->pk);
	pickle_json(&b->pk, v);
	if (pickle_finish(&b->pk) == -1) {
		log_event(LOG_ERR, "refresh_failed", "stage=encode key=%s "
		    "error=%s", key, pickle_error(&b->pk));
		b->errors++;
		return;
	}
	val = buf_steal(&b->pk.out, &len);
	put_entry(b, f, key, val, len, val);
}

/* Append p to the list under key in an index map. */
static void
index_add(struct map *idx, const char *key, struct catalog_program *p)
{
	struct map_item	*it = map_put(idx, key, strlen(key));
	struct plist	*pl = it->val;

	if (pl == NULL)
		it->val = pl = xcalloc(1, sizeof *pl);
	pl->v = xreallocarray(pl->v, pl->n + 1, sizeof *pl->v);
	pl->v[pl->n++] = p;
}

/* Store one site's index map in a family, then free it. */
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
static void
put_pathway(struct builder *b, const char *key, const struct processed *pr)
{
	struct pickle	*pk = &b->pk;
	const char	*k;
	json_t		*v, *copy;
	unsigned char	*val;
	size_t		 n, len;
	bool		 had;

	if (pr->uuids == NULL) {
		put_json(b, FAM_PATHWAY, key, pr->pw);
		return;
	}
	had = json_object_get(pr->pw, "program_uuids") != NULL;
	if (b->o->format == VALUE_JSON) {
		copy = json_copy(pr->pw);
		json_object_del(copy, "programs");
		json_object_set(copy, "program_uuids", pr->uuids);
		put_json(b, FAM_PATHWAY, key, copy);
		json_decref(copy);
		return;
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
		return;
	}
	val = buf_steal(&pk->out, &len);
	put_entry(b, FAM_PATHWAY, key, val, len, val);
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

/* Everything one site contributes, into the builder's families. */
static int
build_site(struct builder *b, struct catalog_site *s)
{
	struct map	 byuuid, processed, idx[FAM_COUNT];
	struct map_item	*it;
	json_t		**ids, *list;
	char		 *key;
	size_t		  i, j;
	int		  rc = 0;

	if (s->status == SITE_UNCONFIGURED) {
		list = json_array();
		key = xasprintf("program-uuids-%s", s->domain);
		put_json(b, FAM_SITE_PROGRAMS, key, list);
		free(key);
		key = xasprintf("pathway-ids-%s", s->domain);
		put_json(b, FAM_SITE_PATHWAYS, key, list);
		free(key);
		json_decref(list);
		return 0;
	}
	if (!s->has_data)
		return 0;
	s->published_programs = s->nprograms;

	/* new_programs: keyed by list uuid, in list order. */
	map_init(&byuuid);
	for (i = 0; i < s->nprograms; i++)
		map_put(&byuuid, s->programs[i]->uuid,
		    strlen(s->programs[i]->uuid))->val = &s->programs[i];
	ids = xcalloc(byuuid.nitems + 1, sizeof *ids);
	for (i = 0; i < byuuid.nitems; i++)
		ids[i] = json_array();

	map_init(&processed);
	if (s->pathways != NULL)
		process_pathways(s, &byuuid, ids, &processed);

	/* Programs, finished with their pathway ids. */
	for (i = 0; i < byuuid.nitems; i++) {
		struct catalog_program **pp = byuuid.items[i].val;

		if (program_finish(pp, ids[i]) == -1) {
			log_event(LOG_ERR, "refresh_failed", "site=%s "
			    "stage=encode uuid=%s error=%s", s->domain,
			    (*pp)->uuid, "cannot encode the program");
			rc = -1;
			continue;
		}
		key = xasprintf("program-%s", (*pp)->uuid);
		put_entry(b, FAM_PROGRAM, key, (*pp)->bytes.data,
		    (*pp)->bytes.len, NULL);
		free(key);
	}

	/* Pathways, and the site's list of them. */
	list = json_array();
	MAP_FOREACH(&processed, it) {
		struct processed *pr = it->val;

		put_pathway(b, it->key, pr);
		if (b->o->pathway_ids == PATHWAY_IDS_IDS)
			json_array_append(list, pr->id);
		else
			json_array_append_new(list, json_string(it->key));
		json_decref(pr->uuids);
		free(pr);
	}
	map_free(&processed);

	/* get_courses, get_catalog_courses, by type, by slug, by org. */
	for (j = 0; j < FAM_COUNT; j++)
		map_init(&idx[j]);
	for (i = 0; i < s->nprograms; i++) {
		struct catalog_program *p = s->programs[i];

		for (j = 0; j < p->runs.n; j++) {
			key = xasprintf("course-programs-%s", p->runs.v[j]);
			index_add(&idx[FAM_COURSE], key, p);
			free(key);
		}
		for (j = 0; j < p->courses.n; j++) {
			key = xasprintf("catalog-course-programs-%s",
			    p->courses.v[j]);
			index_add(&idx[FAM_CATALOG_COURSE], key, p);
			free(key);
		}
		key = xasprintf("programs-by-type-%ld-%s", s->site_id, p->type);
		index_add(&idx[FAM_TYPE], key, p);
		free(key);
		key = xasprintf("programs-by-type-slug-%ld-%s", s->site_id,
		    p->slug);
		index_add(&idx[FAM_TYPE_SLUG], key, p);
		free(key);
		for (j = 0; j < p->orgs.n; j++) {
			key = xasprintf("organization-programs-%s",
			    p->orgs.v[j]);
			index_add(&idx[FAM_ORG], key, p);
			free(key);
		}
	}
	for (j = 0; j < FAM_COUNT; j++)
		index_flush(b, (enum catalog_family)j, &idx[j]);

	/* The site's lists, written last. */
	key = xasprintf("program-uuids-%s", s->domain);
	{
		json_t *uu = json_array();

		for (i = 0; i < s->nuuids; i++)
			json_array_append_new(uu, json_string(s->uuids[i]));
		put_json(b, FAM_SITE_PROGRAMS, key, uu);
		json_decref(uu);
	}
	free(key);
	key = xasprintf("pathway-ids-%s", s->domain);
	put_json(b, FAM_SITE_PATHWAYS, key, list);
	free(key);
	json_decref(list);

	for (i = 0; i < byuuid.nitems; i++)
		json_decref(ids[i]);
	free(ids);
	map_free(&byuuid);
	return rc;
}

int
catalog_build(struct catalog *c, const struct catalog_opts *o)
{
	struct builder	 b;
	struct map_item	*it;
	size_t		 i, n = 0;
	int		 f, rc = 0;

	memset(&b, 0, sizeof b);
	b.o = o;
	for (f = 0; f < FAM_COUNT; f++)
		map_init(&b.fam[f]);
	pickle_init(&b.pk, o->proto);

	for (i = 0; i < c->nsites; i++)
		if (build_site(&b, c->sites[i]) == -1)
			rc = -1;

	for (f = 0; f < FAM_COUNT; f++)
		n += b.fam[f].nitems;
	c->entries = xreallocarray(NULL, n, sizeof *c->entries);
	c->nentries = 0;
	/* Publish order (SPEC §4): details, then indexes, site lists last. */
	for (f = 0; f < FAM_COUNT; f++) {
		MAP_FOREACH(&b.fam[f], it) {
			struct catalog_entry *e = it->val;

			c->entries[c->nentries++] = *e;
			free(e);
		}
	}
	c->nprograms = b.fam[FAM_PROGRAM].nitems;
	c->npathways = b.fam[FAM_PATHWAY].nitems;
	for (f = 0; f < FAM_COUNT; f++)
		map_free(&b.fam[f]);
	pickle_free(&b.pk);
	return b.errors ? -1 : rc;
}
