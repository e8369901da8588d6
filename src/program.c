/*
 * program.c: a program record: its facts and its encoded value.
 *
 * The facts follow cache_programs' helpers in
 * openedx/core/djangoapps/catalog/utils.py: where the Python raises on a
 * wrong shape, the record is refused instead (the caller keeps the
 * previous value).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "jsonld.h"
#include "log.h"
#include "map.h"
#include "pickle.h"
#include "program.h"
#include "py.h"
#include "util.h"

/* A list of C strings. */
struct strv {
	char	**v;
	size_t	  n;
};

struct program {
	int			 refs;		/* atomic: workers ref prev */
	bool			 kept;		/* final value: kval or base's */
	struct program		*base;
	const unsigned char	*kval;
	size_t			 klen;
	char			*uuid;		/* from the site's list */
	char			*value_uuid;	/* program["uuid"] */
	struct strv		 runs;		/* course_run_keys_for_program */
	struct strv		 courses;	/* course_uuids_for_program */
	char			*type;		/* normalize_program_type */
	char			*slug;		/* str(type_attrs.get("slug")) */
	struct strv		 orgs;		/* authoring org keys, as listed */
	char			*modified;	/* data_modified_timestamp */
	struct buf		 bytes;		/* the value */
	struct pickle_ckpt	 ckpt;		/* pickle: where pathway_ids goes */
	size_t			 json_open;	/* json: prefix length */
	json_t			*tree;		/* detail, if it has pathway_ids */
	json_t			*fin_ids;	/* ids the bytes end with */
	enum cfg_value_format	 format;
	int			 proto;
	bool			 has_body;
	unsigned char		 body[PROGRAM_BODY_HASH];
	bool			 future;	/* program_note_future */
};

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
get_facts(struct program *p, const json_t *d, struct why *w)
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
	/*
	 * design.md: Incremental refresh: what incremental refreshes compare
	 * (a string, as sent).
	 */
	v = json_object_get(d, "data_modified_timestamp");
	if (json_is_string(v) && json_string_length(v) > 0 &&
	    json_string_length(v) < 64 &&
	    strlen(json_string_value(v)) == json_string_length(v))
		p->modified = xstrdup(json_string_value(v));
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
encode_open(struct program *p, const json_t *d, struct pickle *pk,
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
finish_open(struct program *p, const json_t *ids)
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
finish_tree(struct program *p, const json_t *ids)
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
same_open(const struct program *a, const struct program *b)
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

/*
 * Give back what a value's buffer grew beyond it: records live for a whole
 * generation, and doubling leaves up to half of each unused.
 */
static void
bytes_fit(struct buf *b, size_t slack)
{
	if (b->data == NULL || b->cap <= b->len + 1 + slack)
		return;
	b->data = xreallocarray(b->data, b->len + 1 + slack, 1);
	b->cap = b->len + 1 + slack;
}

static void
program_free(struct program *p)
{
	if (p->base != NULL)
		program_unref(p->base);
	free(p->uuid);
	free(p->value_uuid);
	strv_free(&p->runs);
	strv_free(&p->courses);
	free(p->type);
	free(p->slug);
	strv_free(&p->orgs);
	free(p->modified);
	buf_free(&p->bytes);
	json_decref(p->tree);
	json_decref(p->fin_ids);
	free(p);
}

struct program *
program_new(const json_t *detail, const char *list_uuid,
    enum cfg_value_format format, int proto, struct program *prev,
    char *whybuf, size_t whylen)
{
	struct program	*p;
	struct pickle		 pk;
	struct why		 w = { whybuf, whylen, false };

	if (!json_is_object(detail)) {
		why(&w, "the detail is not a JSON object");
		return NULL;
	}
	p = xcalloc(1, sizeof *p);
	p->refs = 1;
	p->uuid = xstrdup(list_uuid);
	p->format = format;
	p->proto = proto;
	buf_init(&p->bytes);
	if (get_facts(p, detail, &w) == -1)
		goto fail;
	if (strcmp(p->value_uuid, list_uuid) != 0) {
		why(&w, "the detail is program %s, not the one requested",
		    p->value_uuid);
		goto fail;
	}
	if (json_object_get(detail, "pathway_ids") != NULL) {
		/* Rare: upstream replaces the value in place; keep it all. */
		p->tree = json_deep_copy(detail);
	} else {
		pickle_init(&pk, proto);
		if (encode_open(p, detail, &pk, &w) == -1) {
			pickle_free(&pk);
			goto fail;
		}
		if (p->format == VALUE_PICKLE) {
			p->bytes = pk.out;
			buf_init(&pk.out);
		}
		pickle_free(&pk);
		/* Room for the pathway ids most programs have. */
		bytes_fit(&p->bytes, 256);
	}
	if (prev != NULL && !prev->kept && strcmp(prev->uuid, p->uuid) == 0 &&
	    same_open(p, prev)) {
		program_free(p);
		return program_ref(prev);
	}
	return p;
fail:
	program_free(p);
	return NULL;
}

void
program_body_hash(const void *data, size_t len,
    unsigned char out[PROGRAM_BODY_HASH])
{
	XXH128_canonical_t	c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
	memcpy(out, c.digest, PROGRAM_BODY_HASH);
}

void
program_set_body(struct program *p,
    const unsigned char hash[PROGRAM_BODY_HASH])
{
	/* Shared records may take it too: the same bytes come of it. */
	memcpy(p->body, hash, PROGRAM_BODY_HASH);
	p->has_body = true;
}

bool
program_same_body(const struct program *p,
    const unsigned char hash[PROGRAM_BODY_HASH], enum cfg_value_format format,
    int proto)
{
	return p->has_body && !p->kept && p->format == format &&
	    p->proto == proto &&
	    memcmp(p->body, hash, PROGRAM_BODY_HASH) == 0;
}

struct program *
program_ref(struct program *p)
{
	__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
	return p;
}

void
program_unref(struct program *p)
{
	if (p != NULL && __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) ==
	    0)
		program_free(p);
}

const char *
program_uuid(const struct program *p)
{
	return p->uuid;
}

int
program_finish(struct program **pp, json_t *ids)
{
	struct program	*p = *pp, *c;
	int		 rc;

	if (p->kept)
		return 0;	/* the published value stays */

	if (p->fin_ids != NULL && json_equal(p->fin_ids, ids))
		return 0;
	if (__atomic_load_n(&p->refs, __ATOMIC_ACQUIRE) > 1) {
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
		c->modified = p->modified != NULL ? xstrdup(p->modified) :
		    NULL;
		buf_init(&c->bytes);
		buf_add(&c->bytes, p->bytes.data, p->bytes.len);
		c->tree = p->tree != NULL ? json_incref(p->tree) : NULL;
		c->fin_ids = NULL;
		program_unref(p);
		*pp = p = c;
	}
	json_decref(p->fin_ids);
	p->fin_ids = json_incref(ids);
	rc = p->tree != NULL ? finish_tree(p, ids) : finish_open(p, ids);
	bytes_fit(&p->bytes, 0);
	return rc;
}

/* A copy of a list of C strings. */
static void
strv_from(struct strv *dst, const char *const *v, size_t n)
{
	size_t	i;

	memset(dst, 0, sizeof *dst);
	for (i = 0; i < n; i++)
		strv_add(dst, v[i]);
}

struct program *
program_kept(const struct program_facts *f, struct program *base,
    const unsigned char *val, size_t len)
{
	struct program	*p;

	p = xcalloc(1, sizeof *p);
	p->refs = 1;
	p->kept = true;
	p->uuid = xstrdup(f->uuid);
	p->value_uuid = xstrdup(f->value_uuid);
	strv_from(&p->runs, f->runs, f->nruns);
	strv_from(&p->courses, f->courses, f->ncourses);
	p->type = xstrdup(f->type);
	p->slug = xstrdup(f->slug);
	strv_from(&p->orgs, f->orgs, f->norgs);
	p->modified = f->modified != NULL ? xstrdup(f->modified) : NULL;
	buf_init(&p->bytes);
	if (base != NULL) {
		p->base = program_ref(base);
		p->kval = program_value(base, &p->klen);
	} else {
		p->kval = val;
		p->klen = len;
	}
	return p;
}

bool
program_is_kept(const struct program *p)
{
	return p->kept;
}

bool
program_note_future(struct program *p)
{
	bool	was = p->future;

	p->future = true;
	return was;
}

void
program_facts(const struct program *p, struct program_facts *f)
{
	f->uuid = p->uuid;
	f->value_uuid = p->value_uuid;
	f->runs = (const char *const *)p->runs.v;
	f->nruns = p->runs.n;
	f->courses = (const char *const *)p->courses.v;
	f->ncourses = p->courses.n;
	f->type = p->type;
	f->slug = p->slug;
	f->orgs = (const char *const *)p->orgs.v;
	f->norgs = p->orgs.n;
	f->modified = p->modified;
}

const unsigned char *
program_value(const struct program *p, size_t *len)
{
	if (p->kept) {
		*len = p->klen;
		return p->kval;
	}
	*len = p->bytes.len;
	return p->bytes.data;
}
