/*
 * family.h: the nine key families the LMS reads (configuration.md: Keys,
 * values and servers), in one table: each family's name as logs and metrics
 * spell it, the prefix of its keys, and the phase it is published in.
 *
 * Keys are made here and only here (family_key), and an entry remembers
 * where its subject starts (entry.h), so nothing parses a key it made.
 * family_of_key() is for keys that come from outside: the snapshot file
 * and the cache servers' own reports of what readers asked for.
 */
#ifndef PCD_FAMILY_H
#define PCD_FAMILY_H

#include <stddef.h>

enum family {
	FAM_PROGRAM,		/* program-{uuid} */
	FAM_PATHWAY,		/* pathway-{id} */
	FAM_COURSE,		/* course-programs-{course_run_key} */
	FAM_CATALOG_COURSE,	/* catalog-course-programs-{course_uuid} */
	FAM_TYPE,		/* programs-by-type-{site_id}-{type} */
	FAM_TYPE_SLUG,		/* programs-by-type-slug-{site_id}-{slug} */
	FAM_ORG,		/* organization-programs-{org_key} */
	FAM_SITE_PROGRAMS,	/* program-uuids-{domain} */
	FAM_SITE_PATHWAYS,	/* pathway-ids-{domain} */
	FAM_COUNT
};

/*
 * The publish phases (design.md: What a refresh does): 0 the details
 * (programs, pathways), 1 the indexes, 2 the site lists.  Each phase is in the
 * cache before the next starts, so no reader finds an index naming a program
 * not there yet.
 */
#define FAMILY_PHASES	3

/* The family's name in logs and metrics ("course_programs"). */
const char	*family_name(enum family);
/* The prefix of its keys ("course-programs-"). */
const char	*family_prefix(enum family);
int		 family_phase(enum family);

/*
 * A family's key for a subject (a uuid, a run key, a domain, ...), and
 * for the per-site families a site id: "programs-by-type-{site}-{subj}".
 * Caller frees.
 */
char		*family_key(enum family, const char *subject);
char		*family_site_key(enum family, long site_id,
		    const char *subject);

/*
 * The family of a Django cache key from outside (the longest prefix that
 * matches: "program-uuids-x" is a site list, not a program), with the
 * length of its prefix in *prefixlen; -1 if it is none of the nine.
 */
int		 family_of_key(const char *key, size_t len,
		    size_t *prefixlen);

#endif
