/*
 * disc.h: one refresh of every configured site from Discovery (SPEC §2).
 *
 * Per site, in domain order: the UUID list; then every program's detail,
 * concurrently (the HTTP layer bounds how many at once), together with the
 * pathway pages; each response is parsed as it arrives.  The failure rules
 * of SPEC §7 are applied here: a site whose UUID list fails is carried over
 * whole from the last generation; a program whose detail fails or is
 * malformed keeps its previous record; failed pathways keep the previous
 * pathways.  Every failure is logged once, where it is known, as
 * refresh_failed or program_rejected.
 */
#ifndef PCD_DISC_H
#define PCD_DISC_H

#include <stdbool.h>

#include "catalog.h"
#include "config.h"

struct event_base;
struct http;
struct oauth;
struct disc;

/* The refresh is over: next is the new generation (the callee owns it). */
typedef void	(*disc_cb)(struct catalog *next, void *arg);

/*
 * Start a refresh.  oauth is NULL without OAuth (token_file or no auth).
 * prev (borrowed, may be NULL) is the last published generation;
 * only_domain, if set, limits the refresh to that site; force publishes a
 * site the shrink guard would hold.  The callback runs from the event loop
 * once everything has ended.
 */
struct disc	*disc_start(struct event_base *, struct http *,
		    struct oauth *, const struct cfg *,
		    const struct catalog *prev, const char *only_domain,
		    bool force, disc_cb, void *arg);
/* Stop a refresh without calling back (shutdown). */
void		 disc_free(struct disc *);
/* The catalogue options a configuration implies. */
void		 disc_catalog_opts(const struct cfg *, struct catalog_opts *);

#endif
