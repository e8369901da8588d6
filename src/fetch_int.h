/*
 * fetch_int.h: what fetch.c and incr.c share of a refresh in progress (not
 * an interface: the rest of the daemon sees fetch.h).
 */
#ifndef PCD_FETCH_INT_H
#define PCD_FETCH_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "fetch.h"
#include "http.h"
#include "map.h"
#include "pager.h"

struct fetch;

/* The state of the site being fetched. */
struct site_fetch {
	struct fetch			*f;
	const struct cfg_site		*cs;
	const struct catalog_site	*prev;	/* last generation's, or NULL */
	struct map			 prevprog; /* uuid -> prev record */
	char				**uuids;
	size_t				 nuuids;
	struct map			 unique;	/* uuid -> slot + 1 */
	struct program			**slots;	/* per unique uuid */
	size_t				 next_detail;	/* first unsent */
	size_t				 details_out;	/* sent, slot not in */
	size_t				*wanted;	/* fetch_details' */
	size_t				 nwanted;
	size_t				 next_wanted;	/* first unsent */
	size_t				 outstanding;	/* requests, parses */
	bool				 uuids_failed;
	bool				 partial;
	struct pager			 uuid_pager;
	struct pager			 pw_pager;
	json_t				*pathways;
	bool				 pathways_failed;
	/*
	 * an incremental refresh of the site (design.md: Incremental refresh,
	 * incr.c)
	 */
	bool				 incr;
	bool				 incr_details;	/* phase 2 began */
	bool				 incr_off;	/* not refreshed */
	enum catalog_incr		 incr_state;
	char				*since;		/* T, escaped */
	int64_t				 clock_us;	/* Discovery's: the
							   newest Date */
	bool				 filter_waits;	/* for a reply */
	struct pager			 filter_pager;
	struct map			 changed;	/* uuid -> its ts */
	bool				 filter_failed;
};

struct fetch {
	struct fetch_opts	 o;
	fetch_cb		 cb;
	void			*arg;
	char			*auth;		/* Authorization header value */
	bool			 auth_failed;	/* token_file unreadable */
	struct fetch_result	*res;
	size_t			 site;		/* index into cfg->sites */
	struct site_fetch	*sf;
	struct event		*deadline;
	struct event		*done_ev;
	bool			 expired;
	bool			 stopping;	/* fetch_free: no callback */
};

/* What to do with a response. */
typedef void	(*fetch_handler)(struct site_fetch *, const struct http_result *,
		    size_t slot, const char *uuid);

/* Log a failed request (or stage, r NULL): one event, all that is known. */
void	fetch_failed(struct site_fetch *, const char *stage,
	    const struct http_result *r, const char *error);
/* Queue a GET for the site; slot and uuid (may be NULL) come back. */
void	fetch_get(struct site_fetch *, const char *url, fetch_handler,
	    const char *endpoint, size_t slot, const char *uuid);
/* A response body that must be JSON, or NULL after logging why. */
json_t	*fetch_json(struct site_fetch *, const char *stage,
	    const struct http_result *);
/*
 * Fetch the details of these slots (their UUIDs are the keys of unique),
 * in order, as the full refresh fetches the list's: within its window.
 * Takes slots (malloc'd).
 */
void	fetch_details(struct site_fetch *, size_t *slots, size_t n);
/* Ask for the UUID list (next NULL: its first page). */
void	fetch_uuids(struct site_fetch *, const char *next);
/* Ask for the next page of pathways. */
void	fetch_pathways(struct site_fetch *);
/*
 * What a list's next says, through its pager: 1 ask for the next page
 * (*url: its URL, for PAGER_URL), 0 the list is complete, -1 the list
 * failed (a next refused, logged; or the refresh's deadline passed).
 */
int	fetch_follow(struct site_fetch *, struct pager *, const char *stage,
	    const json_t *next, const struct http_result *, const char **url);

/* incr.c: make sf incremental (its T); false if it cannot be one. */
bool	incr_prepare(struct site_fetch *);
/* incr.c: a reply of the site arrived (before its handler runs). */
void	incr_reply(struct site_fetch *, const struct http_result *);
/* incr.c: the first requests of an incremental site. */
void	incr_begin(struct site_fetch *);
/*
 * incr.c: with the lists in, queue the details that changed and reuse
 * the rest; whether requests were queued (the site is not done yet).
 */
bool	incr_details(struct site_fetch *);

#endif
