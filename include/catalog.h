/*
 * catalog.h: a generation (what one refresh knows of every site) and its
 * plan: every cache entry it makes, in publish order, with its wire key,
 * its servers and its value, computed once (SPEC §3, §4).
 *
 * A generation is reference counted, and so are its program records: the
 * refresh that builds the next one, the state that keeps the last one
 * published and the plan that points into it each hold what they use, so
 * the order in which they finish does not matter.
 */
#ifndef PCD_CATALOG_H
#define PCD_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "entry.h"
#include "keys.h"
#include "program.h"

struct store;

enum catalog_family {
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

/* The family's name as metrics and logs spell it. */
const char	*catalog_family_name(enum catalog_family);

/*
 * The publish phase of a family (SPEC §4): 0 the details (programs,
 * pathways), 1 the indexes, 2 the site lists.  Each phase is in the cache
 * before the next starts, so no reader finds an index naming a program
 * that is not there.
 */
#define CATALOG_PHASES	3
int		 catalog_phase(enum catalog_family);

struct catalog_opts {
	enum cfg_value_format	 format;
	int			 proto;		/* pickle protocol */
	enum cfg_pathway_ids	 pathway_ids;
};

/* The catalogue options a configuration implies. */
void		 catalog_opts_from(const struct cfg *, struct catalog_opts *);

enum site_status {
	SITE_OK,		/* everything fetched */
	SITE_PARTIAL,		/* fetched; some items kept old values */
	SITE_FAILED,		/* nothing new: the previous site carried over */
	SITE_HELD,		/* shrank too much: the previous site carried over */
	SITE_UNCONFIGURED	/* no catalog URL: [] lists */
};

/* Whether a site's Discovery filters its list by timestamp (SPEC §10). */
enum catalog_incr {
	INCR_UNKNOWN,		/* not probed yet (in this process) */
	INCR_SUPPORTED,
	INCR_UNSUPPORTED	/* full refreshes only */
};

/* What a generation knows about one site. */
struct catalog_site {
	char			 *domain;
	long			  site_id;
	enum site_status	  status;
	bool			  has_data;	/* something to publish */
	/* the UUID list as Discovery returned it */
	char			**uuids;
	size_t			  nuuids;
	/* the programs obtained (fetched or kept), one per UUID, list order */
	struct program		**programs;
	size_t			  nprograms;
	/* pathway objects in page order ("programs" still in), or NULL */
	json_t			 *pathways;
	bool			  pathways_failed;
	/* incremental refreshes (SPEC §10): carried from one to the next */
	bool			  full_ok;	/* last full refresh: listed */
	enum catalog_incr	  incr;
};

struct catalog_site	*catalog_site_new(const char *domain, long site_id);
/* A site carried over whole (new references to its records). */
struct catalog_site	*catalog_site_copy(const struct catalog_site *);
void			 catalog_site_free(struct catalog_site *);
/* Add a program to a site, taking the reference. */
void			 catalog_site_add_program(struct catalog_site *,
			    struct program *);
/* The site's record for a list UUID, or NULL. */
struct program		*catalog_site_program(const struct catalog_site *,
			    const char *uuid);
/*
 * Replace the record for uuid with p (taking it; NULL removes the
 * program).  Returns whether the site had it.
 */
bool			 catalog_site_set_program(struct catalog_site *,
			    const char *uuid, struct program *p);

struct catalog {
	int			  refs;
	struct catalog_site	**sites;	/* domain order */
	size_t			  nsites;
};

struct catalog	*catalog_new(void);
struct catalog	*catalog_ref(struct catalog *);
void		 catalog_unref(struct catalog *);
/* Append a site (taking it); sites must be added in domain order. */
void		 catalog_add_site(struct catalog *, struct catalog_site *);
struct catalog_site	*catalog_find_site(const struct catalog *,
			    const char *domain);

/* Every entry of a generation, in publish order. */
struct plan {
	struct entry	*v;
	size_t		 n;
	size_t		 nprograms;	/* distinct program keys */
	size_t		 npathways;	/* distinct pathway keys */
	int		 errors;	/* values not encodable (logged) */
	struct catalog	*gen;		/* a reference: values point into it */
	unsigned char	**own;		/* what the plan allocated */
	size_t		  nown;
};

/*
 * Do what cache_programs' process_pathways, get_courses and the rest do
 * for every site of gen (finishing each program with its pathway ids), and
 * lay out the entries in publish order, each with its wire key (kf) and
 * servers (st; NULL: none) and flags.  A value that cannot be encoded is
 * logged, left out (and out of the lists that would name it), and counted
 * in errors.  Keys shared between sites take the last site's value, as
 * upstream's dict.update() leaves them.
 */
struct plan	*plan_build(struct catalog *gen, const struct catalog_opts *,
		    const struct keyfn *kf, const struct store *st,
		    uint32_t flags);
void		 plan_free(struct plan *);
/* The UUID of a program entry's key ("program-{uuid}"), or NULL. */
const char	*plan_program_uuid(const struct entry *);

#endif
