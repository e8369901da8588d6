/*
 * pager.h: the one way a paginated list's "next" is followed (design.md:
 * Talking to Discovery, Security), for the UUID list, the filtered list of an
 * incremental refresh and the pathway pages.
 *
 * A list whose next is a URL (PAGER_URL) is followed only to the scheme,
 * host and port of the site's catalog_api_url: the token goes nowhere
 * else, nor over http when the site is https; the pathway pages
 * (PAGER_NUMBERED) go on with page=N+1 while next is truthy, as
 * cache_programs' get_pathways does.  Either way at most max_pages pages,
 * and a next that repeats an earlier one is a loop.
 */
#ifndef PCD_PAGER_H
#define PCD_PAGER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "map.h"

enum pager_kind {
	PAGER_URL,		/* next is the URL of the next page */
	PAGER_NUMBERED		/* next only says there is another page */
};

enum pager_step {
	PAGER_DONE,		/* no next page */
	PAGER_NEXT,		/* fetch the next page */
	PAGER_REFUSED		/* a next that must not be followed (why) */
};

struct pager {
	enum pager_kind	 kind;
	const char	*origin;	/* borrowed */
	int		 max_pages;
	int		 pages;		/* asked for so far */
	struct map	 seen;		/* next links met */
};

void		 pager_init(struct pager *, enum pager_kind,
		    const char *origin, int max_pages);
void		 pager_free(struct pager *);
/* A page is being asked for: its number (1, 2, ...). */
int		 pager_begin(struct pager *);
/*
 * What a page's "next" (NULL: none) says.  PAGER_NEXT: for PAGER_URL,
 * *url is next's text (borrowed from next).  PAGER_REFUSED: why says why,
 * for refresh_failed.
 */
enum pager_step	 pager_next(struct pager *, const json_t *next,
		    const char **url, char *why, size_t whylen);

#endif
