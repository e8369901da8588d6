/*
 * fetch.h: one refresh of every configured site from Discovery (design.md:
 * Talking to Discovery, Incremental refresh), reported as it was found.
 *
 * Per site, in domain order: the UUID list; then every program's detail,
 * concurrently (the HTTP layer bounds how many at once), together with the
 * pathway pages; each detail is parsed as it arrives (detail.h).  An
 * incremental refresh (incr.c) asks for the lists and only the details of
 * programs new or modified since the last one, and reuses the records of
 * the last generation for the rest.
 *
 * The engine fetches and reports; it decides nothing about what is published:
 * a failed detail is reported as failed (p NULL), failed pathways as NULL, a
 * site whose list could not be had as FETCH_FAILED; gen.c applies the failure
 * rules (design.md: Failures) to the report.  Every failure is logged once,
 * where it is known, as refresh_failed or program_rejected.
 */
#ifndef PCD_FETCH_H
#define PCD_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "catalog.h"
#include "config.h"

struct event_base;
struct http;
struct oauth;
struct pool;
struct fetch;

enum fetch_status {
	FETCH_UNCONFIGURED,	/* no catalog URL: [] lists */
	FETCH_LISTED,		/* the list was had: programs, pathways */
	FETCH_FAILED,		/* the list could not be had: nothing new */
	FETCH_SKIPPED		/* incremental: not refreshed at all */
};

/* One program of a site's list. */
struct fetch_program {
	char		*uuid;		/* from the list (each once) */
	struct program	*p;		/* fetched or reused; NULL: failed */
};

/* What one refresh found of one site. */
struct fetch_site {
	char			 *domain;
	long			  site_id;
	enum fetch_status	  status;
	bool			  incremental;	/* refreshed incrementally */
	bool			  partial;	/* some item failed (logged) */
	char			**uuids;	/* the list as returned */
	size_t			  nuuids;
	struct fetch_program	 *progs;	/* list order */
	size_t			  nprogs;
	json_t			 *pathways;	/* page order; NULL: failed */
	enum catalog_incr	  incr;		/* the filter, as probed */
};

/* A stage of a site that failed (logged as refresh_failed). */
struct fetch_failure {
	char		*site;
	const char	*stage;		/* a literal: uuids, detail, ... */
};

/* A refresh's report; the figures are this refresh's alone. */
struct fetch_result {
	bool			  incremental;
	struct fetch_site	**sites;	/* domain order */
	size_t			  nsites;
	size_t			  details_fetched;
	size_t			  details_unchanged;	/* same body */
	size_t			  programs_rejected;
	struct fetch_failure	 *failures;
	size_t			  nfailures;
};

void		 fetch_result_free(struct fetch_result *);

/* The refresh is over; the callee owns the result. */
typedef void	(*fetch_cb)(struct fetch_result *, void *arg);

struct fetch_opts {
	struct event_base	*base;
	struct http		*http;
	struct oauth		*oauth;		/* NULL: token_file or none */
	struct pool		*pool;		/* parses details; NULL: loop */
	const struct cfg	*cfg;
	/* the last published generation (a reference is held), or NULL */
	const struct catalog	*prev;
	const char		*only_domain;	/* NULL: every site */
	bool			 incremental;	/* an incremental refresh */
};

/*
 * Start a refresh; everything in opts is borrowed until the callback,
 * which runs from the event loop once everything has ended.  An
 * incremental refresh needs prev: per site whose last full refresh had its
 * list, the UUID list, the list filtered by timestamp, the pathway pages,
 * and only the details of programs new or modified since.  A site is
 * probed once (a far-future timestamp must list nothing); one whose
 * Discovery ignores the filter, or that is not ready for it, is
 * FETCH_SKIPPED.
 */
struct fetch	*fetch_start(const struct fetch_opts *, fetch_cb, void *arg);
/*
 * Whether an incremental refresh is worth starting from gen: every site
 * with a catalog URL has published data, and at least one can be
 * refreshed incrementally.
 */
bool		 fetch_incremental_ready(const struct cfg *,
		    const struct catalog *gen);
/* Stop a refresh without calling back (shutdown, the lease lost). */
void		 fetch_free(struct fetch *);

#endif
