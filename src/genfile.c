/*
 * genfile.c: the sites texts of the snapshot file.
 */
#include <stdlib.h>
#include <string.h>

#include "genfile.h"
#include "jsonld.h"
#include "log.h"
#include "map.h"
#include "util.h"

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
	/*
	 * design.md: Incremental refresh: the watermark of incremental
	 * refreshes survives.
	 */
	if (f.modified != NULL)
		json_object_set_new(j, "modified", json_string(f.modified));
	return j;
}

/* The name of a site's text, and of one of its programs'. */
static char *
site_name(const char *domain)
{
	return xasprintf("%s\n%s", GENFILE_SITE, domain);
}

static char *
program_name(const char *domain, const char *uuid)
{
	return xasprintf("%s\n%s\n%s", GENFILE_PROGRAM, domain, uuid);
}

/* Add a JSON document to snap as the text called name (taking doc). */
static void
put_json(struct snapshot *snap, const char *name, json_t *doc)
{
	char	*text = jsonld_dumps(doc);

	snapshot_add_text(snap, name, text, strlen(text));
	free(text);
	json_decref(doc);
}

/* One site's text: what it is, its lists, and its programs' names. */
static json_t *
site_json(const struct catalog_site *cs)
{
	json_t	*site, *progs;
	size_t	 j;

	progs = json_array();
	for (j = 0; j < cs->nprograms; j++)
		json_array_append_new(progs,
		    json_string(program_uuid(cs->programs[j])));
	site = json_pack("{s:s, s:I, s:i, s:b, s:o, s:o}",
	    "domain", cs->domain, "site_id", (json_int_t)cs->site_id,
	    "status", (int)cs->status, "has_data", cs->has_data,
	    "uuids", str_list((const char *const *)cs->uuids, cs->nuuids),
	    "programs", progs);
	json_object_set(site, "pathways", cs->pathways != NULL ?
	    cs->pathways : json_null());
	json_object_set_new(site, "full_ok", json_boolean(cs->full_ok));
	return site;
}

void
genfile_put(struct snapshot *snap, const struct catalog *gen)
{
	json_t		*domains = json_array();
	struct map	 done;
	const char	*uuid;
	char		*name;
	size_t		 i, j;

	for (i = 0; i < gen->nsites; i++) {
		const struct catalog_site *cs = gen->sites[i];

		json_array_append_new(domains, json_string(cs->domain));
		name = site_name(cs->domain);
		put_json(snap, name, site_json(cs));
		free(name);
		/* One text a program (a UUID listed twice is one record). */
		map_init(&done);
		for (j = 0; j < cs->nprograms; j++) {
			uuid = program_uuid(cs->programs[j]);
			if (map_find(&done, uuid, strlen(uuid)) != NULL)
				continue;
			map_put(&done, uuid, strlen(uuid))->val = &done;
			name = program_name(cs->domain, uuid);
			put_json(snap, name, facts_json(cs->programs[j]));
			free(name);
		}
		map_free(&done);
	}
	put_json(snap, GENFILE_SITES, json_pack("{s:i, s:o}", "version",
	    GENFILE_VERSION, "sites", domains));
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

/* The parsed text called name, or NULL. */
static json_t *
text_json(const struct map *texts, const char *name)
{
	const struct snapshot_text	*t;
	json_error_t			 err;

	if ((t = map_get(texts, name, strlen(name))) == NULL)
		return NULL;
	return jsonld_load(t->text, t->len, 0, &err);
}

/* One site from its text and its programs' texts. */
static struct catalog_site *
site_from(const json_t *js, const struct map *texts, const struct map *byprog)
{
	struct catalog_site	*cs;
	const json_t		*v, *pw;
	struct program		*p;
	const char		*domain;
	json_t			*jp;
	char			*name;
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
		if (!json_is_string(v))
			continue;
		name = program_name(domain, json_string_value(v));
		jp = text_json(texts, name);
		free(name);
		if (jp != NULL && (p = program_from(jp, byprog)) != NULL)
			catalog_site_add_program(cs, p);
		json_decref(jp);
	}
	pw = json_object_get(js, "pathways");
	if (json_is_array(pw))
		cs->pathways = json_incref((json_t *)pw);
	return cs;
}

/*
 * The generation a snapshot was published from: kept records whose values
 * point into the snapshot.  NULL (logged) if the texts do not hold.
 */
struct catalog *
genfile_read(const struct snapshot *snap, const char *path)
{
	const struct entry		*v = snapshot_entries(snap);
	const struct snapshot_text	*t = snapshot_texts(snap);
	struct catalog			*gen = NULL;
	struct catalog_site		*cs;
	struct map			 byprog, texts;
	json_t				*doc, *js, *d;
	const char			*uuid;
	char				*name;
	size_t				 i;

	map_init(&texts);
	for (i = 0; i < snapshot_ntexts(snap); i++)
		map_put(&texts, t[i].name, strlen(t[i].name))->val =
		    (void *)&t[i];
	doc = text_json(&texts, GENFILE_SITES);
	if (doc == NULL || json_integer_value(json_object_get(doc,
	    "version")) != GENFILE_VERSION ||
	    !json_is_array(json_object_get(doc, "sites"))) {
		log_event(LOG_ERR, "snapshot_ignored", "file=%s error=%s",
		    path, "its sites cannot be read: repairs only");
		goto out;
	}
	map_init(&byprog);
	for (i = 0; i < snapshot_count(snap); i++)
		if (v[i].family == FAM_PROGRAM) {
			uuid = entry_subject(&v[i]);
			map_put(&byprog, uuid, strlen(uuid))->val =
			    (void *)&v[i];
		}
	gen = catalog_new();
	json_array_foreach(json_object_get(doc, "sites"), i, d) {
		if (!json_is_string(d))
			continue;
		name = site_name(json_string_value(d));
		js = text_json(&texts, name);
		free(name);
		if (js != NULL && (cs = site_from(js, &texts, &byprog)) !=
		    NULL)
			catalog_add_site(gen, cs);
		json_decref(js);
	}
	map_free(&byprog);
out:
	json_decref(doc);
	map_free(&texts);
	return gen;
}
