/*
 * disc.h: one refresh of every configured site from Discovery (SPEC §2).
 *
 * Per site, in domain order: the UUID list; then every program's detail,
 * concurrently (the HTTP layer bounds how many at once), together with the
 * pathway pages; each response is parsed as it arrives.  The engine
 * fetches and reports; the state decides what is published (state.h).
 * What it knows of the last publish it uses item by item: a program whose
 * detail fails or is malformed keeps its published value (a kept record),
 * failed pathways keep the previous pathways, and a site whose UUID list
 * fails comes back SITE_FAILED with no data.  Every failure is logged
 * once, where it is known, as refresh_failed or program_rejected.
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
struct pool;

/* The refresh is over: next is the new generation (the callee owns it). */
typedef void	(*disc_cb)(struct catalog *next, void *arg);

/*
 * Start a refresh.  oauth is NULL without OAuth (token_file or no auth).
 * prev (may be NULL; a reference is held) is the last published generation; only_domain, if set, limits the refresh to that
 * site.  The callback runs from the event loop once everything has ended.
 */
struct disc	*disc_start(struct event_base *, struct http *,
		    struct oauth *, const struct cfg *,
		    struct catalog *prev, const char *only_domain,
		    disc_cb, void *arg);
/*
 * An incremental refresh (SPEC §10), reusing prev (required) for what has
 * not changed: per site whose last full refresh had its list, the UUID
 * list, the list filtered by timestamp (from the newest
 * data_modified_timestamp held, less incremental_overlap), the pathway
 * pages, and only the details of programs new or modified since.  A site
 * is probed once (a far-future timestamp must list nothing); one whose
 * Discovery ignores the filter, or that is not ready for it, is carried
 * over as prev has it.  Failures are reported as in a full refresh.
 */
struct disc	*disc_start_incremental(struct event_base *, struct http *,
		    struct oauth *, const struct cfg *,
		    struct catalog *prev, disc_cb, void *arg);
/*
 * Whether an incremental refresh is worth starting from gen: every site
 * with a catalog URL has published data, and at least one can be
 * refreshed incrementally.
 */
bool		 disc_incremental_ready(const struct cfg *,
		    const struct catalog *gen);
/*
 * Parse details on this pool's workers from now on (NULL: on the loop, as
 * before); borrowed until the next call.  Set between refreshes only.
 */
void		 disc_use_pool(struct pool *);
/* Stop a refresh without calling back (shutdown). */
void		 disc_free(struct disc *);

#endif
