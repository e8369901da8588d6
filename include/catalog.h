/*
 * catalog.h: a generation, what one refresh knows of every site: each
 * site's UUID list, its program records and its pathways.
 *
 * Who writes one: gen.c makes the next generation from a refresh's report and
 * the last publish (the failure rules, design.md: Failures), genfile.c reads
 * the last one back from the snapshot file; nothing else changes a generation
 * (the plan, plan.h, only reads it).  A generation is reference counted, and
 * so are its program records: the refresh that builds the next one, the state
 * that keeps the last one published and the plan that points into it each hold
 * what they use, so the order in which they finish does not matter.
 */
#ifndef PCD_CATALOG_H
#define PCD_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "family.h"
#include "program.h"

enum site_status {
	SITE_OK,		/* everything fetched */
	SITE_PARTIAL,		/* fetched; some items kept old values */
	SITE_FAILED,		/* nothing new: the previous site carried over */
	SITE_HELD,		/* shrank too much: the previous site carried over */
	SITE_UNCONFIGURED	/* no catalog URL: [] lists */
};

/*
 * Whether a site's Discovery filters its list by timestamp (design.md:
 * Incremental refresh).
 */
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
	/* the programs obtained (fetched or kept), list order, finished
	   with their pathway ids (gen.c) */
	struct program		**programs;
	size_t			  nprograms;
	/* pathway objects in page order ("programs" still in), or NULL */
	json_t			 *pathways;
	bool			  pathways_failed;
	/*
	 * incremental refreshes (design.md: Incremental refresh): carried from
	 * one to the next
	 */
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

struct catalog {
	int			  refs;
	struct catalog_site	**sites;	/* domain order */
	size_t			  nsites;
};

struct catalog	*catalog_new(void);
struct catalog	*catalog_ref(struct catalog *);
/*
 * Another reference to a generation the holder only reads (a plan): the
 * count is bookkeeping, not content.
 */
const struct catalog *catalog_hold(const struct catalog *);
void		 catalog_release(const struct catalog *);
void		 catalog_unref(struct catalog *);
/* Append a site (taking it); sites must be added in domain order. */
void		 catalog_add_site(struct catalog *, struct catalog_site *);
struct catalog_site	*catalog_find_site(const struct catalog *,
			    const char *domain);
/* The programs a site would publish, counted (the shrink guard). */
long long	 catalog_site_count(const struct catalog *, const char *domain);

#endif
