/*
 * catalog.h: the programs catalogue as cache_programs sees it, and the
 * cache entries it makes of it (SPEC §3, research/edx-platform.md §3).
 *
 * A refresh parses each Discovery response as it arrives and keeps only
 * what the cache needs: per program, its encoded value (left open before
 * "pathway_ids", which is known only once the pathways are read) and the
 * facts the index families are made from; per pathway, its small JSON
 * object.  Whole-catalogue JSON trees are never kept.
 *
 * Programs are reference counted: a generation shares the records of the
 * previous one for programs whose detail did not change, or whose detail
 * could not be fetched this time (SPEC §7: they keep their previous value).
 */
#ifndef PCD_CATALOG_H
#define PCD_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"

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

struct catalog_opts {
	enum cfg_value_format	 format;
	int			 proto;		/* pickle protocol */
	enum cfg_pathway_ids	 pathway_ids;
};

struct catalog_program;		/* opaque, reference counted */

enum site_status {
	SITE_OK,		/* everything fetched and published */
	SITE_PARTIAL,		/* published; some items kept old values */
	SITE_FAILED,		/* nothing new: previous values kept */
	SITE_HELD,		/* shrank too much: previous values kept */
	SITE_UNCONFIGURED	/* no catalog URL: [] lists */
};

/* What one refresh knows about one site. */
struct catalog_site {
	char			*domain;
	long			 site_id;
	enum site_status	 status;
	bool			 has_data;	/* something to publish */
	/* program-uuids-{domain}: the list as Discovery returned it */
	char			**uuids;
	size_t			 nuuids;
	/* the site's programs, first-seen order, one per UUID */
	struct catalog_program	**programs;
	size_t			 nprograms;
	/* pathway objects in page order (with "programs" still in) */
	json_t			*pathways;
	bool			 pathways_failed;
	/* programs at the last publish of the site (the shrink guard) */
	size_t			 published_programs;
};

/* One key to write. */
struct catalog_entry {
	enum catalog_family	 family;
	char			*key;		/* Django cache key */
	const unsigned char	*val;
	size_t			 len;
	unsigned char		*own;		/* val, if the entry owns it */
};

/* A generation: every site, and the entries in publish order. */
struct catalog {
	struct catalog_site	**sites;	/* domain order */
	size_t			  nsites;
	struct catalog_entry	 *entries;
	size_t			  nentries;
	bool			 *written;	/* per entry, set by publish */
	size_t			  nprograms;	/* distinct program keys */
	size_t			  npathways;	/* distinct pathway keys */
};

/*
 * Make a program record from a parsed detail (borrowed).  list_uuid is the
 * UUID from the site's list (the key).  prev, if not NULL, is the record the
 * last generation had for it: when the new one encodes to the same bytes,
 * prev is returned with one more reference and no new memory is kept.
 * NULL with *why set (static text or in whybuf) when the detail has the
 * wrong shape, exactly where cache_programs would have raised.
 */
struct catalog_program	*catalog_program_new(const json_t *detail,
			    const char *list_uuid, const struct catalog_opts *,
			    struct catalog_program *prev, char *whybuf,
			    size_t whylen);
/*
 * The response a record was made from, by a 128-bit hash (XXH3): a
 * refresh whose detail body hashes the same reuses the record without
 * parsing it again, which is most of a refresh when little changes.
 */
#define CATALOG_BODY_HASH	16
void			 catalog_body_hash(const void *, size_t,
			    unsigned char out[CATALOG_BODY_HASH]);
void			 catalog_program_set_body(struct catalog_program *,
			    const unsigned char hash[CATALOG_BODY_HASH]);
bool			 catalog_program_same_body(
			    const struct catalog_program *,
			    const unsigned char hash[CATALOG_BODY_HASH],
			    const struct catalog_opts *);
struct catalog_program	*catalog_program_ref(struct catalog_program *);
void			 catalog_program_unref(struct catalog_program *);
const char		*catalog_program_uuid(const struct catalog_program *);

struct catalog_site	*catalog_site_new(const char *domain, long site_id);
/* A site carried over whole from the last generation (new references). */
struct catalog_site	*catalog_site_copy(const struct catalog_site *);
void			 catalog_site_free(struct catalog_site *);
/* Add a program to a site, taking the reference; one per list UUID. */
void			 catalog_site_add_program(struct catalog_site *,
			    struct catalog_program *);

struct catalog	*catalog_new(void);
/* Append a site (taking it); sites must be added in domain order. */
void		 catalog_add_site(struct catalog *, struct catalog_site *);
/*
 * Do what process_pathways, get_courses and the rest do, and lay out the
 * entries in publish order: programs, pathways, the index families, then
 * program-uuids-* and pathway-ids-* (SPEC §4).  Pathway processing failures
 * (a pathway naming a program the site does not have) are logged and make
 * the site partial, as they make cache_programs exit 1.  0, or -1 if a
 * value could not be encoded (logged).
 */
int		 catalog_build(struct catalog *, const struct catalog_opts *);
void		 catalog_free(struct catalog *);
/* The site with this domain, or NULL. */
struct catalog_site	*catalog_find_site(const struct catalog *,
			    const char *domain);

#endif
