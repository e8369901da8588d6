/*
 * family.c: the table of key families.
 */
#include <string.h>

#include "family.h"
#include "util.h"

static const struct {
	const char	*name;
	const char	*prefix;
	int		 phase;
} families[FAM_COUNT] = {
	[FAM_PROGRAM] =		{ "program", "program-", 0 },
	[FAM_PATHWAY] =		{ "pathway", "pathway-", 0 },
	[FAM_COURSE] =		{ "course_programs", "course-programs-", 1 },
	[FAM_CATALOG_COURSE] =	{ "catalog_course_programs",
				  "catalog-course-programs-", 1 },
	[FAM_TYPE] =		{ "programs_by_type", "programs-by-type-", 1 },
	[FAM_TYPE_SLUG] =	{ "programs_by_type_slug",
				  "programs-by-type-slug-", 1 },
	[FAM_ORG] =		{ "organization_programs",
				  "organization-programs-", 1 },
	[FAM_SITE_PROGRAMS] =	{ "program_uuids", "program-uuids-", 2 },
	[FAM_SITE_PATHWAYS] =	{ "pathway_ids", "pathway-ids-", 2 },
};

const char *
family_name(enum family f)
{
	return f < FAM_COUNT ? families[f].name : "unknown";
}

const char *
family_prefix(enum family f)
{
	return families[f].prefix;
}

int
family_phase(enum family f)
{
	return families[f].phase;
}

char *
family_key(enum family f, const char *subject)
{
	return xasprintf("%s%s", families[f].prefix, subject);
}

char *
family_site_key(enum family f, long site_id, const char *subject)
{
	return xasprintf("%s%ld-%s", families[f].prefix, site_id, subject);
}

int
family_of_key(const char *key, size_t len, size_t *prefixlen)
{
	size_t	i, n, best = 0;
	int	f = -1;

	for (i = 0; i < FAM_COUNT; i++) {
		n = strlen(families[i].prefix);
		if (n > best && n <= len &&
		    memcmp(key, families[i].prefix, n) == 0) {
			best = n;
			f = (int)i;
		}
	}
	if (prefixlen != NULL)
		*prefixlen = best;
	return f;
}
