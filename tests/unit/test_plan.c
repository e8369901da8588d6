/*
 * test_plan.c: the plan builder (plan.c) and program records (program.c):
 * entries, their order, their wire keys, and what a kept or missing
 * program does to the indexes; the plan changes nothing in the
 * generation.  Values are written as JSON here
 * (value_format = json) so that they read as text; the pickles are
 * covered by test_pickle.c and the integration tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "log.h"
#include "plan.h"
#include "t.h"

static const struct plan_opts json_opts = {
	VALUE_JSON, 4, PATHWAY_IDS_KEYS
};

/* A detail with one course run, of a type and an organization. */
static json_t *
detail(const char *uuid, const char *run, const char *type)
{
	return json_pack("{s:s, s:s, s:s, s:{s:s}, s:[{s:s}],"
	    " s:[{s:s, s:[{s:s}]}], s:[]}",
	    "uuid", uuid, "title", uuid, "type", type, "type_attrs", "slug",
	    "slug-x", "authoring_organizations", "key", "OrgX",
	    "courses", "uuid", "c-1", "course_runs", "key", run,
	    "curricula");
}

/* A program record for a detail (the list names it by its own uuid). */
static struct program *
record(const char *uuid, const char *run, const char *type)
{
	json_t		*d = detail(uuid, run, type);
	char		 why[128] = "";
	struct program	*p;

	p = program_new(d, uuid, json_opts.format, json_opts.proto, NULL,
	    why, sizeof why);
	json_decref(d);
	T_CHECK(p != NULL);
	return p;
}

/* A site with programs a and b, and pathway 7 naming both. */
static struct catalog *
generation(void)
{
	struct catalog		*gen = catalog_new();
	struct catalog_site	*s = catalog_site_new("lms.example", 1);

	s->has_data = true;
	s->uuids = calloc(2, sizeof *s->uuids);
	s->uuids[0] = strdup("a");
	s->uuids[1] = strdup("b");
	s->nuuids = 2;
	catalog_site_add_program(s, record("a", "run-1", "MicroMasters"));
	catalog_site_add_program(s, record("b", "run-1", "XSeries"));
	s->pathways = json_pack("[{s:i, s:s, s:[{s:s}, {s:s}]}]", "id", 7,
	    "name", "P", "programs", "uuid", "a", "uuid", "b");
	catalog_add_site(gen, s);
	return gen;
}

/* The generation, its records finished with their pathway ids. */
static struct catalog *
finished(struct catalog *gen)
{
	size_t	errors = 0;

	gen_finish(gen, false, &errors);
	T_INTEQ(errors, 0);
	return gen;
}

/* Replace (p) or drop (NULL) a site's record, as gen.c would. */
static void
set_program(struct catalog_site *s, const char *uuid, struct program *p)
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
	T_CHECK(!"the site has the program");
}

/* The entry under key, or NULL. */
static const struct entry *
find(const struct plan *pl, const char *key)
{
	size_t	i;

	for (i = 0; i < pl->n; i++)
		if (strcmp(pl->v[i].key, key) == 0)
			return &pl->v[i];
	return NULL;
}

/* An entry's value as a C string (JSON text). */
static const char *
text(const struct plan *pl, const char *key)
{
	static char		 out[1024];
	const struct entry	*e = find(pl, key);

	if (e == NULL)
		return "(none)";
	snprintf(out, sizeof out, "%.*s", (int)e->len, (const char *)e->val);
	return out;
}

static void
test_families_and_order(void)
{
	struct catalog	*gen = finished(generation());
	struct keyfn	 kf;
	struct plan	*pl, *again;
	size_t		 i;
	int		 last = 0;

	key_init(&kf, KEYFN_EDX, KEYHASH_MD4, "default", "1");
	pl = plan_build(gen, &json_opts, &kf, NULL, 0);
	/* Planning changes nothing: a second plan is the same. */
	again = plan_build(gen, &json_opts, &kf, NULL, 0);
	T_INTEQ(again->n, pl->n);
	for (i = 0; i < pl->n; i++) {
		T_STREQ(again->v[i].key, pl->v[i].key);
		T_CHECK(again->v[i].len == pl->v[i].len &&
		    memcmp(again->v[i].val, pl->v[i].val, pl->v[i].len) == 0);
	}
	plan_free(again);
	/* The generation may go: the plan holds its own reference. */
	catalog_unref(gen);
	T_INTEQ(pl->errors, 0);
	T_INTEQ(pl->nprograms, 2);
	T_INTEQ(pl->npathways, 1);
	/*
	 * design.md: What a refresh does: every detail, then every index, the
	 * site lists last.
	 */
	for (i = 0; i < pl->n; i++) {
		int phase = pl->v[i].phase;

		T_INTEQ(phase, family_phase((enum family)pl->v[i].family));
		T_CHECK(phase >= last);
		last = phase;
	}
	T_CHECK(pl->v[pl->n - 1].phase == 2);
	T_STREQ(text(pl, "program-uuids-lms.example"), "[\"a\",\"b\"]");
	T_STREQ(text(pl, "pathway-ids-lms.example"), "[\"pathway-7\"]");
	T_STREQ(text(pl, "course-programs-run-1"), "[\"a\",\"b\"]");
	T_STREQ(text(pl, "programs-by-type-1-micromasters"), "[\"a\"]");
	T_STREQ(text(pl, "programs-by-type-slug-1-slug-x"), "[\"a\",\"b\"]");
	T_STREQ(text(pl, "organization-programs-OrgX"), "[\"a\",\"b\"]");
	T_CHECK(strstr(text(pl, "program-a"), "\"pathway_ids\":[7]") != NULL);
	T_CHECK(strstr(text(pl, "pathway-7"),
	    "\"program_uuids\":[\"a\",\"b\"]") != NULL);
	/* The wire key, computed once, with the key function. */
	T_STREQ(find(pl, "course-programs-run-1")->wire,
	    "default:1:course-programs-run-1");
	T_INTEQ(find(pl, "program-a")->servers, 0);	/* no store */
	/* Each entry knows its subject: no key is parsed back. */
	T_STREQ(entry_subject(find(pl, "program-a")), "a");
	T_STREQ(entry_subject(find(pl, "pathway-7")), "7");
	T_STREQ(entry_subject(find(pl, "programs-by-type-1-micromasters")),
	    "1-micromasters");
	plan_free(pl);
	key_clear(&kf);
}

/* A kept record keeps its value whatever the pathways now say. */
static void
test_kept_program(void)
{
	struct catalog		*gen = generation();
	struct catalog_site	*s = gen->sites[0];
	struct program_facts	 f;
	struct program		*old, *kept;
	struct keyfn		 kf;
	struct plan		*pl;

	key_init(&kf, KEYFN_EDX, KEYHASH_MD4, "default", "1");
	old = record("a", "run-1", "MicroMasters");
	program_facts(old, &f);
	kept = program_kept(&f, NULL, (const unsigned char *)"\"old\"", 5);
	program_unref(old);
	T_CHECK(program_is_kept(kept));
	set_program(s, "a", kept);
	pl = plan_build(finished(gen), &json_opts, &kf, NULL, 0);
	T_STREQ(text(pl, "program-a"), "\"old\"");
	/* Still obtained: in the indexes, and the pathway resolves. */
	T_STREQ(text(pl, "course-programs-run-1"), "[\"a\",\"b\"]");
	T_CHECK(strstr(text(pl, "pathway-7"),
	    "\"program_uuids\":[\"a\",\"b\"]") != NULL);
	T_CHECK(strstr(text(pl, "program-b"), "\"pathway_ids\":[7]") != NULL);
	plan_free(pl);
	catalog_unref(gen);
	key_clear(&kf);
}

/* A program not in the cache is named by no index, program-uuids too. */
static void
test_missing_program(void)
{
	struct catalog	*gen = generation();
	struct keyfn	 kf;
	struct plan	*pl;

	key_init(&kf, KEYFN_EDX, KEYHASH_MD4, "default", "1");
	set_program(gen->sites[0], "b", NULL);
	pl = plan_build(finished(gen), &json_opts, &kf, NULL, 0);
	T_CHECK(find(pl, "program-b") == NULL);
	T_STREQ(text(pl, "program-uuids-lms.example"), "[\"a\"]");
	T_STREQ(text(pl, "course-programs-run-1"), "[\"a\"]");
	T_CHECK(find(pl, "programs-by-type-1-xseries") == NULL);
	/* The pathway names a program the site lacks: as upstream, cached
	 * unmodified, and a's pathway_ids has the id appended before b. */
	T_CHECK(strstr(text(pl, "pathway-7"), "\"programs\":") != NULL);
	plan_free(pl);
	catalog_unref(gen);
	key_clear(&kf);
}

/* A key the django key function refuses has no wire key. */
static void
test_refused_key(void)
{
	struct catalog		*gen = catalog_new();
	struct catalog_site	*s = catalog_site_new("lms.example", 1);
	struct keyfn		 kf;
	struct plan		*pl;

	s->has_data = true;
	s->uuids = calloc(1, sizeof *s->uuids);
	s->uuids[0] = strdup("a");
	s->nuuids = 1;
	catalog_site_add_program(s, record("a", "run-1",
	    "Professional Certificate"));
	catalog_add_site(gen, s);
	key_init(&kf, KEYFN_DJANGO, KEYHASH_MD4, "default", "1");
	pl = plan_build(finished(gen), &json_opts, &kf, NULL, 0);
	T_CHECK(find(pl, "programs-by-type-1-professional certificate")
	    != NULL);
	T_CHECK(find(pl, "programs-by-type-1-professional certificate")->wire
	    == NULL);
	T_STREQ(find(pl, "program-a")->wire, "default:1:program-a");
	plan_free(pl);
	catalog_unref(gen);
	key_clear(&kf);
}

/*
 * design.md: Failures: a detail that is another program is refused, saying
 * why.
 */
static void
test_wrong_uuid(void)
{
	json_t		*d = detail("other", "run-1", "XSeries");
	char		 why[128] = "";
	struct program	*p;

	p = program_new(d, "asked", VALUE_PICKLE, 4, NULL, why, sizeof why);
	T_CHECK(p == NULL);
	T_CHECK(strstr(why, "not the one requested") != NULL);
	json_decref(d);
}

int
main(void)
{
	log_setup(LOG_FORMAT_TEXT, LOG_CRIT);
	test_families_and_order();
	test_kept_program();
	test_missing_program();
	test_refused_key();
	test_wrong_uuid();
	return t_done();
}
