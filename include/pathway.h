/*
 * pathway.h: cache_programs' process_pathways over one site, as a value:
 * which pathways name which programs.
 *
 * For each pathway, by cache key in first-seen order (a later pathway with
 * the same id replaces the earlier one's content but keeps its position,
 * as the Python dict does), the program_uuids that replace its "programs",
 * or NULL where upstream raised and caches the pathway unmodified (no id,
 * a program without a uuid, or one the site does not have: the programs
 * before it keep the id).  For each program of the site (by its index in
 * s->programs), the ids of the pathways that name it, in order.
 *
 * gen.c walks once to finish each program's pathway_ids (logging what
 * upstream would raise on); plan.c walks again, quietly, for the pathway
 * values.  Nothing of the site is changed.
 */
#ifndef PCD_PATHWAY_H
#define PCD_PATHWAY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "catalog.h"

struct pathway_item {
	char		*key;		/* "pathway-{id}" */
	json_t		*pw;		/* the site's object (a reference) */
	json_t		*id;		/* pw["id"] (a reference) */
	json_t		*uuids;		/* program_uuids, or NULL */
};

struct pathway_walk {
	struct pathway_item	*v;
	size_t			 n;
	json_t			**ids;		/* per program: a list of ids */
	size_t			 nprograms;
};

/* Walk s's pathways; with log, each one upstream raises on is logged. */
void	pathway_walk(const struct catalog_site *s, bool log,
	    struct pathway_walk *out);
void	pathway_walk_free(struct pathway_walk *);

#endif
