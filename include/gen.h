/*
 * gen.h: the next generation, made from a refresh's report and the last
 * publish by the failure rules (design.md: Failures).  This is where they are
 * applied:
 *
 * - a site whose list failed, or that shrank too much (the shrink guard:
 *   more than max_shrink fewer programs than the last publish, or none;
 *   publish_held unless forced), is carried over as the last publish had
 *   it;
 * - a program whose detail failed keeps the value the last publish wrote
 *   (a kept record: final, and fetched again by the next incremental
 *   refresh), or is absent if it had none;
 * - failed pathways keep the site's previous pathways, and so every
 *   program's previous pathway ids;
 * - a program whose value the cache refused (gen_refuse) keeps its old
 *   value only where the cache still has it, and is otherwise dropped, so
 *   that no index names it.
 *
 * Every program is finished with the ids of the pathways that name it
 * (gen_finish), so a plan only reads the generation.  The generation made
 * is the caller's (the state's publish) until it is recorded; nothing
 * changes it after that.
 */
#ifndef PCD_GEN_H
#define PCD_GEN_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "config.h"
#include "fetch.h"

struct gen_opts {
	const struct cfg	*cfg;
	bool			 force;		/* past the shrink guard */
};

/* How the sites of a generation came out, for logs and metrics. */
struct gen_counts {
	size_t	sites;
	size_t	sites_ok;		/* fetched whole */
	size_t	sites_partial;
	size_t	sites_failed;		/* carried over */
	size_t	sites_held;		/* carried over: shrink guard */
	size_t	sites_unconfigured;	/* [] lists */
	size_t	errors;			/* programs not encodable (logged) */
};

/*
 * The generation a refresh's report makes, against last (the last
 * publish, or NULL).  The report's records are taken (fr keeps nothing).
 */
struct catalog	*gen_build(struct fetch_result *fr, const struct catalog *last,
		    const struct gen_opts *, struct gen_counts *);
/*
 * The cache refused program uuid's value in next: with old_stays (the
 * value was never sent, and the cache holds the last publish's), the
 * program keeps that value and its place in the indexes; otherwise it is
 * dropped.  Its sites become partial.  Whether anything changed; the
 * caller then finishes next again (pathway ids may change).
 */
bool		 gen_refuse(struct catalog *next, const struct catalog *last,
		    const char *uuid, bool old_stays);
/*
 * Finish every program of next with its pathway ids; one that cannot be
 * encoded is dropped (logged, counted in errors).  With log, what
 * upstream's process_pathways raises on is logged (pathway_unresolved).
 */
void		 gen_finish(struct catalog *next, bool log, size_t *errors);
/*
 * The generation to remember after next is published: next's sites, and
 * the sites of last that next did not cover (--domain) and that cfg still
 * has.  A new reference.
 */
struct catalog	*gen_merge(struct catalog *next, const struct catalog *last,
		    const struct cfg *);
/*
 * last, with what a refresh that published nothing learnt of its sites' kinds
 * (design.md: Incremental refresh: the probe's answer, a site held back) in
 * next.  A new generation sharing last's records (NULL if last is).
 */
struct catalog	*gen_learn(const struct catalog *last,
		    const struct catalog *next);

#endif
