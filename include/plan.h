/*
 * plan.h: every cache entry a generation makes, in publish order, with its
 * wire key, its servers and its value, computed once (configuration.md: Keys,
 * values and servers; design.md: What a refresh does).
 *
 * The families follow cache_programs and its helpers in
 * openedx/core/djangoapps/catalog (process_pathways, get_courses,
 * get_catalog_courses, the by-type, by-slug and by-organization indexes),
 * including their quirks: a pathway naming a program the site does not
 * have is cached unmodified; pathway-ids holds cache keys.  Planning reads
 * the generation and changes nothing in it: the records are finished with
 * their pathway ids when the generation is made (gen.c).
 */
#ifndef PCD_PLAN_H
#define PCD_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "config.h"
#include "entry.h"
#include "keys.h"

struct store;

struct plan_opts {
	enum cfg_value_format	 format;
	int			 proto;		/* pickle protocol */
	enum cfg_pathway_ids	 pathway_ids;
};

/* The plan options a configuration implies. */
void		 plan_opts_from(const struct cfg *, struct plan_opts *);

struct plan {
	struct entry		 *v;		/* phase order */
	size_t			  n;
	size_t			  nprograms;	/* distinct program keys */
	size_t			  npathways;	/* distinct pathway keys */
	int			  errors;	/* values not encodable */
	char			**failed;	/* their keys and errors */
	const struct catalog	 *gen;		/* held: values point into it */
	unsigned char		**own;		/* what the plan allocated */
	size_t			  nown;
};

/*
 * Lay out every entry of every site of gen in publish order, each with its
 * wire key (kf), servers (st; NULL: none) and flags.  A value that cannot
 * be encoded is left out (and out of the lists that would name it), and
 * counted in errors for plan_log().  Keys shared between sites take the
 * last site's value, as upstream's dict.update() leaves them.  It logs
 * nothing and changes nothing outside the plan but gen's hold (the
 * caller's to make safe): the writer thread plans a publish.
 */
struct plan	*plan_build(const struct catalog *gen, const struct plan_opts *,
		    const struct keyfn *kf, const struct store *st,
		    uint32_t flags);
/* On the loop: refresh_failed (stage encode) for each value left out. */
void		 plan_log(const struct plan *);
void		 plan_free(struct plan *);

#endif
