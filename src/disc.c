/*
 * disc.c: the request sequence of one refresh, and its failure rules.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "catalog.h"
#include "disc.h"
#include "http.h"
#include "jarena.h"
#include "jsonld.h"
#include "log.h"
#include "map.h"
#include "metrics.h"
#include "oauth.h"
#include "pool.h"
#include "util.h"

struct disc;

/* The state of the site being fetched. */
struct site_fetch {
	struct disc			*d;
	const struct cfg_site		*cs;
	const struct catalog_site	*prev;	/* last generation's, or NULL */
	struct map			 prevprog; /* uuid -> prev record */
	char				**uuids;
	size_t				 nuuids;
	struct map			 unique;	/* uuid -> slot + 1 */
	struct program			**slots;	/* per unique uuid */
	size_t				 next_detail;	/* first unsent */
	size_t				 details_out;	/* details sent */
	size_t				 outstanding;	/* requests, token waits */
	bool				 uuids_failed;
	bool				 partial;
	/* pagination of the UUID list (when enveloped) and of pathways */
	int				 uuid_pages;
	struct map			 uuid_next_seen;
	int				 pw_page;
	struct map			 pw_next_seen;
	json_t				*pathways;
	bool				 pathways_failed;
	/* an incremental refresh of the site (SPEC §10) */
	bool				 incr;
	bool				 incr_details;	/* phase 2 began */
	bool				 incr_off;	/* prev, as it is */
	enum catalog_incr		 incr_state;
	char				*since;		/* T, escaped */
	int				 filter_pages;
	struct map			 filter_next_seen;
	struct map			 changed;	/* uuid -> its ts */
	bool				 filter_failed;
};

struct disc {
	struct event_base	*base;
	struct http		*http;
	struct oauth		*oauth;		/* NULL: static token or none */
	const struct cfg	*cfg;
	struct catalog		*prev;		/* a reference, or NULL */
	char			*only;
	disc_cb			 cb;
	void			*arg;
	struct catalog_opts	 opts;
	char			*auth;		/* Authorization header value */
	bool			 auth_failed;	/* token_file unreadable */
	struct catalog		*next;
	size_t			 site;		/* index into cfg->sites */
	struct site_fetch	*sf;
	struct event		*deadline;
	struct event		*done_ev;
	bool			 expired;
	bool			 stopping;	/* disc_free: no callback */
	bool			 incremental;	/* SPEC §10 */
};

/* One request, and what to do with its answer. */
struct req {
	struct site_fetch	*sf;
	void			(*handle)(struct req *,
				    const struct http_result *);
	char			*url;
	char			*auth;		/* the header it went with */
	bool			 renewed;	/* a 401 got a new token */
	size_t			 slot;		/* details */
	char			*uuid;		/* details */
};

static void	next_site(struct disc *);
static void	site_maybe_done(struct site_fetch *);
static void	on_response(const struct http_result *, void *);
static void	on_pathways(struct req *, const struct http_result *);
static void	on_detail(struct req *, const struct http_result *);
static void	on_uuids(struct req *, const struct http_result *);
static void	feed_details(struct site_fetch *);
static void	site_begin(struct site_fetch *);
static bool	incr_details(struct site_fetch *);
static struct catalog_site *incr_result(struct site_fetch *);
static bool	incr_prepare(struct site_fetch *);

/* Log a failed request (or stage): one event, with all that is known. */
static void
req_failed(struct site_fetch *sf, const char *stage,
    const struct http_result *r, const char *error)
{
	metrics_failure(sf->cs->domain, stage);
	if (r == NULL) {
		log_event(LOG_ERR, "refresh_failed", "site=%s stage=%s "
		    "error=%s", sf->cs->domain, stage, error);
		return;
	}
	log_event(LOG_ERR, "refresh_failed", "site=%s stage=%s url=%s "
	    "http_status=%ld error=%s attempt=%d", sf->cs->domain, stage,
	    r->url, r->status, error != NULL ? error : r->error, r->attempts);
}

/* What an HTTP status most likely means for an operator. */
static const char *
status_hint(long status)
{
	switch (status) {
	case 401:
		return "HTTP 401: Discovery refused the token (check its "
		    "JWT_AUTH issuer, audience and secret or keys)";
	case 403:
		return "HTTP 403: the token's user may not read this (the "
		    "catalog service user must be staff)";
	case 404:
		return "HTTP 404: not found (check catalog_api_url)";
	default:
		return NULL;
	}
}

/* The most bytes a response of this stage may have (SPEC §12). */
static size_t
body_cap(const struct site_fetch *sf, const char *stage)
{
	const struct cfg	*cfg = sf->d->cfg;

	if (strcmp(stage, "detail") == 0 &&
	    (size_t)cfg->max_detail_size < cfg->max_response_size)
		return (size_t)cfg->max_detail_size;
	return cfg->max_response_size;
}

/*
 * Whether a response may hold JSON; false after logging why: an HTTP
 * failure or a content type that is not JSON.
 */
static bool
body_is_json(struct site_fetch *sf, const char *stage,
    const struct http_result *r)
{
	char		 msg[JSON_ERROR_TEXT_LENGTH + 64];

	if (r->error != NULL) {
		req_failed(sf, stage, r, status_hint(r->status));
		return false;
	}
	if (r->content_type != NULL && strstr(r->content_type, "json") ==
	    NULL) {
		snprintf(msg, sizeof msg, "unexpected content type %s",
		    r->content_type);
		req_failed(sf, stage, r, msg);
		return false;
	}
	return true;
}

/*
 * Parse a response body that must be JSON.  NULL after logging why: see
 * body_is_json(), or a body that does not parse (truncated bodies end
 * here even when libcurl saw no error).
 */
static json_t *
parse_body(struct site_fetch *sf, const char *stage,
    const struct http_result *r)
{
	json_error_t	 e;
	json_t		*j;
	char		 msg[JSON_ERROR_TEXT_LENGTH + 64];

	if (!body_is_json(sf, stage, r))
		return NULL;
	if ((j = jsonld_load_bounded(r->body, r->len, JSON_DECODE_ANY,
	    body_cap(sf, stage) / JSONLD_BYTES_PER_VALUE, &e)) == NULL) {
		snprintf(msg, sizeof msg, "malformed JSON at line %d column "
		    "%d: %s", e.line, e.column, e.text);
		req_failed(sf, stage, r, msg);
		return NULL;
	}
	return j;
}

static void
req_free(struct req *q)
{
	free(q->url);
	free(q->auth);
	free(q->uuid);
	free(q);
}

/* Hand a request to the HTTP layer, details with their own size cap. */
static void
send_req(struct req *q)
{
	struct disc	*d = q->sf->d;

	struct http_req	*r;

	r = http_get_max(d->http, q->url, q->auth, q->handle == on_detail ?
	    body_cap(q->sf, "detail") : 0, on_response, q);
	http_set_tag(r, q->sf->cs->domain, q->handle == on_detail ? "detail" :
	    q->handle == on_uuids ? "uuids" : q->handle == on_pathways ?
	    "pathways" : NULL);
}

/* Queue a GET for this site. */
static void
get(struct site_fetch *sf, const char *url,
    void (*handle)(struct req *, const struct http_result *), size_t slot,
    const char *uuid)
{
	struct req	*q = xcalloc(1, sizeof *q);
	struct disc	*d = sf->d;

	q->sf = sf;
	q->handle = handle;
	q->url = xstrdup(url);
	q->auth = d->auth != NULL ? xstrdup(d->auth) : NULL;
	q->slot = slot;
	q->uuid = uuid != NULL ? xstrdup(uuid) : NULL;
	sf->outstanding++;
	send_req(q);
}

/* A new token after a 401 (or none): send the request again, once. */
static void
on_renewed(const char *header, void *arg)
{
	struct req		*q = arg;
	struct site_fetch	*sf = q->sf;
	struct disc		*d = sf->d;
	struct http_result	 r;

	if (header == NULL || d->stopping || d->expired) {
		memset(&r, 0, sizeof r);
		r.url = q->url;
		r.status = 401;
		r.body = "";
		r.attempts = 1;
		r.error = header == NULL ? "HTTP 401, and no new token could "
		    "be had (see token_failed)" : "cancelled";
		sf->outstanding--;
		q->handle(q, &r);
		req_free(q);
		site_maybe_done(sf);
		return;
	}
	free(d->auth);
	d->auth = xstrdup(header);
	free(q->auth);
	q->auth = xstrdup(header);
	send_req(q);
}

/* Every answer comes here first: a 401 renews the token once. */
static void
on_response(const struct http_result *r, void *arg)
{
	struct req		*q = arg;
	struct site_fetch	*sf = q->sf;
	struct disc		*d = sf->d;

	if (r->status == 401 && d->oauth != NULL && !q->renewed &&
	    !d->stopping && !d->expired) {
		q->renewed = true;
		oauth_get(d->oauth, q->auth, on_renewed, q);
		return;
	}
	sf->outstanding--;
	q->handle(q, r);
	req_free(q);
	site_maybe_done(sf);
}

/* Whether a pagination "next" is acceptable; logs why not. */
static bool
next_ok(struct site_fetch *sf, const char *stage, struct map *seen,
    int pages, const json_t *next, const struct http_result *r)
{
	char	msg[128];

	if (pages >= sf->d->cfg->max_pages) {
		snprintf(msg, sizeof msg, "more than %d pages (max_pages)",
		    sf->d->cfg->max_pages);
		req_failed(sf, stage, r, msg);
		return false;
	}
	if (json_is_string(next)) {
		struct map_item *it = map_put(seen, json_string_value(next),
		    json_string_length(next));

		if (it->val != NULL) {
			req_failed(sf, stage, r, "pagination loop: \"next\" "
			    "repeats an earlier page");
			return false;
		}
		it->val = seen;
	}
	return true;
}

/*
 * Whether a "next" that is about to be followed is on the site's own
 * scheme, host and port (SPEC §12: the token goes nowhere else, nor over
 * http when the site is https); logs why not.
 */
static bool
origin_ok(struct site_fetch *sf, const char *stage, const json_t *next,
    const struct http_result *r)
{
	if (http_same_origin(sf->cs->catalog_api_url, json_string_value(next)))
		return true;
	req_failed(sf, stage, r, "\"next\" is not on the scheme, host and "
	    "port of catalog_api_url: not followed");
	return false;
}

static void	on_detail_result(struct req *, const struct http_result *);

/*
 * A detail body handed to a worker (pool.h), and what it made of it.  The
 * worker touches only the job, its copy of the body and prev (which the
 * refresh holds through d->prev); the loop logs, counts and fills the slot.
 */
struct parse_job {
	struct site_fetch	*sf;
	size_t			 slot;
	char			*uuid;
	char			*url;
	long			 status;
	int			 attempts;
	struct program		*prev;		/* borrowed, or NULL */
	enum cfg_value_format	 format;
	int			 proto;
	char			*body;
	size_t			 len;
	size_t			 max_values;	/* the parse's budget (§12) */
	struct program		*p;		/* the result, or NULL */
	bool			 malformed;	/* why is jansson's */
	char			 why[JSON_ERROR_TEXT_LENGTH + 64];
	unsigned char		 hash[PROGRAM_BODY_HASH];
};

/* Details handed to each worker at most; the loop parses the next one. */
#define DISC_JOBS_PER_WORKER	4

/* Where details are parsed: a worker pool, or the loop (NULL). */
static struct pool	*disc_pool;

void
disc_use_pool(struct pool *p)
{
	disc_pool = p;
}

/* Parse, record and pickle one detail (on a worker, or on the loop). */
static void
parse_work(void *arg)
{
	struct parse_job	*pj = arg;
	struct jarena		 arena, *paused;
	json_error_t		 e;
	json_t			*j, *kept;

	/* The tree dies with the parse: jansson allocates it in an arena. */
	jarena_begin(&arena);
	if ((j = jsonld_load_bounded(pj->body, pj->len, JSON_DECODE_ANY,
	    pj->max_values, &e)) == NULL) {
		pj->malformed = true;
		snprintf(pj->why, sizeof pj->why, "malformed JSON at line %d "
		    "column %d: %s", e.line, e.column, e.text);
		jarena_end(&arena);
		return;
	}
	if (json_is_object(j) && json_object_get(j, "pathway_ids") != NULL) {
		/* The record keeps this tree (program.h): out of the arena. */
		paused = jarena_pause();
		kept = json_deep_copy(j);
		json_decref(j);
		pj->p = program_new(kept, pj->uuid, pj->format, pj->proto,
		    pj->prev, pj->why, sizeof pj->why);
		json_decref(kept);
		jarena_resume(paused);
	} else {
		pj->p = program_new(j, pj->uuid, pj->format, pj->proto,
		    pj->prev, pj->why, sizeof pj->why);
		json_decref(j);
	}
	jarena_end(&arena);
	if (pj->p != NULL)
		program_body_hash(pj->body, pj->len, pj->hash);
}

static void
parse_job_free(struct parse_job *pj)
{
	free(pj->uuid);
	free(pj->url);
	free(pj->body);
	free(pj);
}

/* Fill a detail's slot: p, or (p NULL) what SPEC §7 keeps. */
static void
fill_slot(struct site_fetch *sf, size_t slot, struct program *p,
    struct program *prev)
{
	struct program_facts	 f;

	if (p == NULL) {
		/* SPEC §7: the program keeps its published value, if any. */
		sf->partial = true;
		if (prev != NULL) {
			program_facts(prev, &f);
			/* Not known to be current: fetched again (§10). */
			f.modified = NULL;
			p = program_kept(&f, prev, NULL, 0);
		}
	}
	sf->slots[slot] = p;
}

/* Use a parsed detail (on the loop): log why it failed, fill the slot. */
static void
parse_apply(struct parse_job *pj)
{
	struct site_fetch	*sf = pj->sf;
	struct program		*p = pj->p;
	struct http_result	 r;

	if (pj->malformed) {
		memset(&r, 0, sizeof r);
		r.url = pj->url;
		r.status = pj->status;
		r.attempts = pj->attempts;
		req_failed(sf, "detail", &r, pj->why);
	} else if (p == NULL) {
		metrics.programs_rejected++;
		log_event(LOG_WARNING, "program_rejected",
		    "site=%s uuid=%s url=%s reason=%s",
		    sf->cs->domain, pj->uuid, pj->url, pj->why);
	} else
		program_set_body(p, pj->hash);
	fill_slot(sf, pj->slot, p, pj->prev);
}

/* A worker is done with a detail (or the refresh stopped first). */
static void
parse_done(void *arg, bool cancelled)
{
	struct parse_job	*pj = arg;
	struct site_fetch	*sf = pj->sf;

	if (cancelled)
		program_unref(pj->p);
	else
		parse_apply(pj);
	parse_job_free(pj);
	sf->outstanding--;
	site_maybe_done(sf);
}

/* One detail arrived (or failed). */
static void
on_detail(struct req *q, const struct http_result *r)
{
	struct site_fetch	*sf = q->sf;

	sf->details_out--;
	on_detail_result(q, r);
	/* A slot is free: send the next one (after the result is in). */
	feed_details(sf);
}

/*
 * What one detail (or its failure) makes of its program's slot: parsed on
 * a worker, or here when the workers have enough queued.
 */
static void
on_detail_result(struct req *q, const struct http_result *r)
{
	struct site_fetch	*sf = q->sf;
	struct program		*prev;
	struct parse_job	*pj;
	unsigned char		 hash[PROGRAM_BODY_HASH];

	metrics.details_fetched[sf->d->incremental ? 1 : 0]++;
	prev = map_get(&sf->prevprog, q->uuid, strlen(q->uuid));
	if (prev != NULL && r->error == NULL && (r->content_type == NULL ||
	    strstr(r->content_type, "json") != NULL)) {
		/* The very body the record was made of: nothing to parse. */
		program_body_hash(r->body, r->len, hash);
		if (program_same_body(prev, hash, sf->d->opts.format,
		    sf->d->opts.proto)) {
			sf->slots[q->slot] = program_ref(prev);
			metrics.details_unchanged++;
			return;
		}
	}
	if (!body_is_json(sf, "detail", r)) {
		fill_slot(sf, q->slot, NULL, prev);
		return;
	}
	pj = xcalloc(1, sizeof *pj);
	pj->sf = sf;
	pj->slot = q->slot;
	pj->prev = prev;
	pj->uuid = xstrdup(q->uuid);
	pj->url = xstrdup(r->url);
	pj->status = r->status;
	pj->attempts = r->attempts;
	pj->format = sf->d->opts.format;
	pj->proto = sf->d->opts.proto;
	pj->body = xmalloc(r->len + 1);
	memcpy(pj->body, r->body, r->len);
	pj->body[r->len] = '\0';
	pj->len = r->len;
	pj->max_values = body_cap(sf, "detail") / JSONLD_BYTES_PER_VALUE;
	/*
	 * Bodies arrive faster than the workers parse them: past a few per
	 * worker, the loop parses this one itself (a millisecond or so),
	 * which bounds the bodies held in memory and slows the fetching.
	 */
	if (disc_pool == NULL || pool_pending(disc_pool) >=
	    (size_t)pool_threads(disc_pool) * DISC_JOBS_PER_WORKER) {
		parse_work(pj);
		parse_apply(pj);
		parse_job_free(pj);
		return;
	}
	sf->outstanding++;
	pool_submit(disc_pool, sf->d, parse_work, parse_done, pj);
}

/* Fetch the next page of pathways. */
static void
get_pathways(struct site_fetch *sf)
{
	char	*url;

	sf->pw_page++;
	url = xasprintf("%s/pathways/?status=published&exclude_utm=1&page=%d",
	    sf->cs->catalog_api_url, sf->pw_page);
	get(sf, url, on_pathways, 0, NULL);
	free(url);
}

/* Whether a "next" means there is another page (Python truthiness). */
static bool
has_next(const json_t *next)
{
	return next != NULL && !json_is_null(next) && !json_is_false(next) &&
	    !(json_is_string(next) && json_string_length(next) == 0);
}

/* A page of pathways arrived (or failed). */
static void
on_pathways(struct req *q, const struct http_result *r)
{
	struct site_fetch	*sf = q->sf;
	json_t			*j, *results, *next;

	if ((j = parse_body(sf, "pathways", r)) == NULL)
		goto fail;
	results = json_object_get(j, "results");
	next = json_object_get(j, "next");
	if (!json_is_object(j) || !json_is_array(results)) {
		req_failed(sf, "pathways", r, "a pathways page is not an "
		    "object with a list of results");
		json_decref(j);
		goto fail;
	}
	json_array_extend(sf->pathways, results);
	/* get_pathways: next_page + 1 while the body's next is truthy. */
	if (has_next(next)) {
		if (sf->d->expired || !next_ok(sf, "pathways",
		    &sf->pw_next_seen, sf->pw_page, next, r)) {
			json_decref(j);
			goto fail;
		}
		get_pathways(sf);
	}
	json_decref(j);
	return;
fail:
	/* SPEC §7: the site's previous pathways stay. */
	sf->pathways_failed = true;
	sf->partial = true;
}

/*
 * Send details while fewer than twice max_in_flight are out: a request
 * exists only from shortly before it goes in flight (SPEC §12), so memory
 * follows max_in_flight, not the length of the list.  After the deadline
 * (or at shutdown) the rest are not sent: they keep their previous values,
 * as failed details do (SPEC §7).
 */
static void
feed_details(struct site_fetch *sf)
{
	struct disc		*d = sf->d;
	struct map_item		*it;
	size_t			 i, n, window, skipped = 0;
	char			*url, *esc;
	struct program	*prev;

	window = 2 * (size_t)d->cfg->max_in_flight;
	while (sf->next_detail < sf->nuuids &&
	    (sf->details_out < window || d->expired || d->stopping)) {
		i = sf->next_detail++;
		it = map_put(&sf->unique, sf->uuids[i], strlen(sf->uuids[i]));
		if (it->val != NULL)
			continue;	/* listed twice: fetched once */
		n = sf->unique.nitems - 1;
		it->val = (void *)(uintptr_t)(n + 1);
		if (d->expired || d->stopping) {
			prev = map_get(&sf->prevprog, sf->uuids[i],
			    strlen(sf->uuids[i]));
			sf->slots[n] = prev != NULL ?
			    program_ref(prev) : NULL;
			sf->partial = true;
			skipped++;
			continue;
		}
		esc = http_escape(sf->uuids[i]);
		url = xasprintf("%s/programs/%s/?exclude_utm=1",
		    sf->cs->catalog_api_url, esc);
		sf->details_out++;
		get(sf, url, on_detail, n, sf->uuids[i]);
		free(url);
		free(esc);
	}
	if (skipped > 0 && !d->stopping)
		log_event(LOG_ERR, "refresh_failed", "site=%s stage=%s "
		    "error=%s details=%zu", sf->cs->domain, "detail",
		    "refresh deadline exceeded: details not fetched keep "
		    "their previous values", skipped);
}

/* The UUID list is complete: fetch every detail and the pathways. */
static void
start_details(struct site_fetch *sf)
{
	sf->slots = xcalloc(sf->nuuids + 1, sizeof *sf->slots);
	feed_details(sf);
	get_pathways(sf);
}

static void	get_uuids(struct site_fetch *, const char *);

/* The UUID list (or one page of it) arrived. */
static void
on_uuids(struct req *q, const struct http_result *r)
{
	struct site_fetch	*sf = q->sf;
	json_t			*j, *list, *next = NULL, *v;
	size_t			 i, bad = 0;

	if ((j = parse_body(sf, "uuids", r)) == NULL)
		goto fail;
	list = j;
	if (json_is_object(j)) {
		/* A paginated envelope {count, next, results}. */
		list = json_object_get(j, "results");
		next = json_object_get(j, "next");
	}
	if (!json_is_array(list)) {
		req_failed(sf, "uuids", r, "the UUID list is not a JSON list");
		json_decref(j);
		goto fail;
	}
	/* Room for the whole page at once (not one realloc per UUID). */
	sf->uuids = xreallocarray(sf->uuids,
	    sf->nuuids + json_array_size(list) + 1, sizeof *sf->uuids);
	json_array_foreach(list, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			metrics.programs_rejected++;
			/* A few lines, not one per entry of a hostile list. */
			if (++bad <= 10)
				log_event(LOG_WARNING, "program_rejected",
				    "site=%s url=%s index=%zu reason=%s",
				    sf->cs->domain, r->url, i, "an entry of "
				    "the UUID list is not a UUID string");
			sf->partial = true;
			continue;
		}
		sf->uuids[sf->nuuids++] = xstrdup(json_string_value(v));
	}
	if (bad > 10)
		log_event(LOG_WARNING, "program_rejected", "site=%s url=%s "
		    "entries=%zu reason=%s", sf->cs->domain, r->url, bad - 10,
		    "more entries of the UUID list are not UUID strings");
	if (json_is_string(next) && json_string_length(next) > 0) {
		if (!origin_ok(sf, "uuids", next, r)) {
			json_decref(j);
			goto fail;
		}
		if (sf->d->expired || !next_ok(sf, "uuids",
		    &sf->uuid_next_seen, sf->uuid_pages, next, r)) {
			json_decref(j);
			goto fail;
		}
		get_uuids(sf, json_string_value(next));
		json_decref(j);
		return;
	}
	json_decref(j);
	if (sf->d->expired)
		goto fail;
	if (!sf->incr)
		start_details(sf);
	return;
fail:
	sf->uuids_failed = true;
}

/* Fetch the UUID list (its first page, or the page after). */
static void
get_uuids(struct site_fetch *sf, const char *next)
{
	char	*url;

	sf->uuid_pages++;
	if (next != NULL)
		url = xstrdup(next);
	else
		url = xasprintf("%s/programs/?exclude_utm=1&status=active&"
		    "status=retired&uuids_only=1", sf->cs->catalog_api_url);
	get(sf, url, on_uuids, 0, NULL);
	free(url);
}

/* The site's token is here (or not): start with the UUID list. */
static void
on_site_token(const char *header, void *arg)
{
	struct site_fetch	*sf = arg;
	struct disc		*d = sf->d;

	sf->outstanding--;
	if (header == NULL || d->stopping || d->expired) {
		req_failed(sf, "auth", NULL, header == NULL ? "no token (see "
		    "token_failed)" : "cancelled");
		sf->uuids_failed = true;
	} else {
		free(d->auth);
		d->auth = xstrdup(header);
		site_begin(sf);
	}
	site_maybe_done(sf);
}

static void
site_fetch_free(struct site_fetch *sf)
{
	struct map_item	*it;
	size_t		 i;

	for (i = 0; i < sf->nuuids; i++)
		free(sf->uuids[i]);
	free(sf->uuids);
	for (i = 0; sf->slots != NULL && i < sf->unique.nitems; i++)
		program_unref(sf->slots[i]);
	free(sf->slots);
	map_free(&sf->unique);
	map_free(&sf->prevprog);
	map_free(&sf->uuid_next_seen);
	map_free(&sf->pw_next_seen);
	map_free(&sf->filter_next_seen);
	MAP_FOREACH(&sf->changed, it)
		free(it->val);
	map_free(&sf->changed);
	free(sf->since);
	json_decref(sf->pathways);
	free(sf);
}

/*
 * The site's result.  The engine only reports: a site whose list could
 * not be had is FAILED with no data, and the state decides what stays.
 */
static struct catalog_site *
site_result(struct site_fetch *sf)
{
	struct catalog_site	*s;
	size_t			 i;

	if (sf->incr_off)
		return incr_result(sf);
	s = catalog_site_new(sf->cs->domain, sf->cs->site_id);
	/* A full refresh that had the list makes incremental ones possible. */
	s->full_ok = sf->incr && sf->prev != NULL ? sf->prev->full_ok :
	    !sf->uuids_failed;
	s->incr = sf->incr_state;
	if (sf->uuids_failed) {
		s->status = SITE_FAILED;
		return s;
	}
	s->has_data = true;
	s->status = sf->partial ? SITE_PARTIAL : SITE_OK;
	s->uuids = sf->uuids;
	s->nuuids = sf->nuuids;
	sf->uuids = NULL;
	sf->nuuids = 0;
	for (i = 0; i < sf->unique.nitems; i++) {
		if (sf->slots[i] != NULL)
			catalog_site_add_program(s, sf->slots[i]);
		sf->slots[i] = NULL;
	}
	/* SPEC §7: failed pathways keep the previous ones. */
	if (!sf->pathways_failed)
		s->pathways = json_incref(sf->pathways);
	else if (sf->prev != NULL && sf->prev->pathways != NULL)
		s->pathways = json_incref(sf->prev->pathways);
	s->pathways_failed = sf->pathways_failed;
	return s;
}

/* When nothing of the site is outstanding, record it and go on. */
static void
site_maybe_done(struct site_fetch *sf)
{
	struct disc	*d = sf->d;

	if (sf->outstanding > 0)
		return;
	/* Incremental: the lists are in; now the details that changed. */
	if (sf->incr && !sf->incr_details && !d->stopping &&
	    incr_details(sf))
		return;
	d->sf = NULL;
	if (d->stopping) {
		site_fetch_free(sf);
		return;
	}
	catalog_add_site(d->next, site_result(sf));
	site_fetch_free(sf);
	d->site++;
	next_site(d);
}

/* Everything has ended: call back from the loop, not from a callback. */
static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	struct disc	*d = arg;
	struct catalog	*next = d->next;

	(void)fd;
	(void)what;
	d->next = NULL;
	d->cb(next, d->arg);
}

/* --- incremental refreshes (SPEC §10) -------------------------------- */

/* Exactly n decimal digits at *p (advanced past them), or -1. */
static int
ts_digits(const char **p, int n)
{
	int	v = 0;

	for (; n > 0; n--, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
	}
	return v;
}

/* One of the characters of set at *p (advanced past it). */
static bool
ts_char(const char **p, const char *set)
{
	if (**p == '\0' || strchr(set, **p) == NULL)
		return false;
	(*p)++;
	return true;
}

/*
 * A timestamp as Discovery writes it (ISO 8601: date, 'T', time, optional
 * fraction, 'Z' or an offset) in microseconds since the epoch; false if it
 * is not one.
 */
static bool
ts_parse(const char *s, int64_t *us)
{
	struct tm	 tm;
	const char	*p = s;
	int		 y, mo, dd, h, mi, sec, oh = 0, om = 0, sign = 1;
	int64_t		 frac = 0, scale = 1000000;
	time_t		 t;

	if ((y = ts_digits(&p, 4)) < 0 || !ts_char(&p, "-") ||
	    (mo = ts_digits(&p, 2)) < 0 || !ts_char(&p, "-") ||
	    (dd = ts_digits(&p, 2)) < 0 || !ts_char(&p, "T ") ||
	    (h = ts_digits(&p, 2)) < 0 || !ts_char(&p, ":") ||
	    (mi = ts_digits(&p, 2)) < 0 || !ts_char(&p, ":") ||
	    (sec = ts_digits(&p, 2)) < 0)
		return false;
	if (ts_char(&p, ".")) {
		for (; *p >= '0' && *p <= '9'; p++) {
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
		}
	}
	if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if ((oh = ts_digits(&p, 2)) < 0)
			return false;
		(void)ts_char(&p, ":");
		if ((om = ts_digits(&p, 2)) < 0)
			return false;
	} else if (!ts_char(&p, "Z") && *p != '\0')
		return false;
	if (*p != '\0' || mo < 1 || mo > 12 || dd < 1 || dd > 31 ||
	    h > 23 || mi > 59 || sec > 60 || oh > 23 || om > 59 || y < 1970)
		return false;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = dd;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if ((t = timegm(&tm)) == (time_t)-1)
		return false;
	*us = ((int64_t)t - sign * ((int64_t)oh * 3600 + om * 60)) * 1000000 +
	    frac;
	return true;
}

/* Microseconds since the epoch as an ISO 8601 UTC timestamp ('Z'). */
static void
ts_format(int64_t us, char *out, size_t len)
{
	struct tm	tm;
	time_t		t;
	int64_t		frac;

	if (us < 0)
		us = 0;
	t = (time_t)(us / 1000000);
	frac = us % 1000000;
	gmtime_r(&t, &tm);
	snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (long long)frac);
}

/* The newest data_modified_timestamp a site's records hold, if any. */
static bool
incr_watermark(const struct catalog_site *cs, int64_t *max)
{
	struct program_facts	f;
	int64_t			us;
	size_t			i;
	bool			any = false;

	for (i = 0; i < cs->nprograms; i++) {
		program_facts(cs->programs[i], &f);
		if (f.modified == NULL || !ts_parse(f.modified, &us))
			continue;
		if (!any || us > *max)
			*max = us;
		any = true;
	}
	return any;
}

/* Whether a site of the last generation can be refreshed incrementally. */
static bool
incr_eligible(const struct catalog_site *cs, int64_t *max)
{
	return cs != NULL && cs->has_data && cs->full_ok &&
	    cs->incr != INCR_UNSUPPORTED && incr_watermark(cs, max);
}

/* Make sf an incremental fetch, with its T; false if it cannot be one. */
static bool
incr_prepare(struct site_fetch *sf)
{
	int64_t	max = 0;
	char	ts[64];

	if (!incr_eligible(sf->prev, &max))
		return false;
	/* Discovery's clock, never ours: the newest it stamped, less lag. */
	ts_format(max - (int64_t)sf->d->cfg->incremental_overlap_ms * 1000,
	    ts, sizeof ts);
	sf->since = http_escape(ts);
	sf->incr = true;
	return true;
}

/* The minimal program list (or one page): its list and "next". */
static bool
minimal_page(json_t *j, json_t **list, json_t **next)
{
	*list = j;
	*next = NULL;
	if (json_is_object(j)) {
		*list = json_object_get(j, "results");
		*next = json_object_get(j, "next");
	}
	return json_is_array(*list);
}

static void	on_filter(struct req *, const struct http_result *);

/* Fetch the filtered list (its first page, or the page after). */
static void
get_filter(struct site_fetch *sf, const char *next)
{
	char	*url;

	sf->filter_pages++;
	if (next != NULL)
		url = xstrdup(next);
	else
		url = xasprintf("%s/programs/?exclude_utm=1&status=active&"
		    "status=retired&timestamp=%s", sf->cs->catalog_api_url,
		    sf->since);
	get(sf, url, on_filter, 0, NULL);
	free(url);
}

/* The lists an incremental refresh asks for, all at once. */
static void
incr_lists(struct site_fetch *sf)
{
	get_uuids(sf, NULL);
	get_filter(sf, NULL);
	get_pathways(sf);
}

/*
 * A page of the filtered list arrived: the programs modified at or after
 * T, with their timestamps.  Any failure fails the site's refresh (what
 * changed cannot be known).
 */
static void
on_filter(struct req *q, const struct http_result *r)
{
	struct site_fetch	*sf = q->sf;
	json_t			*j, *list, *next, *v, *u, *ts;
	struct map_item		*it;
	size_t			 i;

	if ((j = parse_body(sf, "filtered", r)) == NULL)
		goto fail;
	if (!minimal_page(j, &list, &next)) {
		req_failed(sf, "filtered", r, "the filtered program list is "
		    "not a JSON list");
		json_decref(j);
		goto fail;
	}
	json_array_foreach(list, i, v) {
		u = json_object_get(v, "uuid");
		if (!json_is_string(u) || json_string_length(u) == 0 ||
		    strlen(json_string_value(u)) != json_string_length(u)) {
			req_failed(sf, "filtered", r, "an entry of the "
			    "filtered program list has no uuid");
			json_decref(j);
			goto fail;
		}
		ts = json_object_get(v, "data_modified_timestamp");
		it = map_put(&sf->changed, json_string_value(u),
		    json_string_length(u));
		free(it->val);
		/* No timestamp: fetched (it cannot be compared). */
		it->val = xstrdup(json_is_string(ts) ? json_string_value(ts) :
		    "");
	}
	if (json_is_string(next) && json_string_length(next) > 0) {
		if (!origin_ok(sf, "filtered", next, r)) {
			json_decref(j);
			goto fail;
		}
		if (sf->d->expired || !next_ok(sf, "filtered",
		    &sf->filter_next_seen, sf->filter_pages, next, r)) {
			json_decref(j);
			goto fail;
		}
		get_filter(sf, json_string_value(next));
	}
	json_decref(j);
	return;
fail:
	sf->filter_failed = true;
}

/*
 * The probe's answer: a Discovery that filters lists nothing after a
 * far-future timestamp; one that ignores the parameter lists everything.
 */
static void
on_probe(struct req *q, const struct http_result *r)
{
	struct site_fetch	*sf = q->sf;
	json_t			*j, *list, *next;

	if ((j = parse_body(sf, "probe", r)) == NULL)
		goto fail;
	if (!minimal_page(j, &list, &next)) {
		req_failed(sf, "probe", r, "the program list is not a JSON "
		    "list");
		json_decref(j);
		goto fail;
	}
	if (json_array_size(list) > 0 || has_next(next)) {
		sf->incr_state = INCR_UNSUPPORTED;
		sf->incr_off = true;
		sf->incr = false;
		log_event(LOG_WARNING, "incremental_unsupported", "site=%s "
		    "url=%s listed=%zu error=%s", sf->cs->domain, r->url,
		    json_array_size(list), "Discovery ignores the timestamp "
		    "filter: full refreshes only for this site");
		json_decref(j);
		return;
	}
	json_decref(j);
	sf->incr_state = INCR_SUPPORTED;
	if (!sf->d->expired) {
		incr_lists(sf);
		return;
	}
fail:
	sf->filter_failed = true;
}

/* The first requests of a site: the lists (after the probe, once). */
static void
site_begin(struct site_fetch *sf)
{
	char	*url;

	if (!sf->incr) {
		get_uuids(sf, NULL);
		return;
	}
	if (sf->incr_state != INCR_UNKNOWN) {
		incr_lists(sf);
		return;
	}
	url = xasprintf("%s/programs/?exclude_utm=1&status=active&"
	    "status=retired&timestamp=2999-12-31T00%%3A00%%3A00Z",
	    sf->cs->catalog_api_url);
	get(sf, url, on_probe, 0, NULL);
	free(url);
}

/* The UUIDs of the programs a site's pathways name. */
static void
pathway_uuids(const json_t *pathways, struct map *out)
{
	const json_t	*pw, *progs, *p, *u;
	size_t		 i, j;

	json_array_foreach(pathways, i, pw) {
		progs = json_object_get(pw, "programs");
		json_array_foreach(progs, j, p) {
			u = json_object_get(p, "uuid");
			if (json_is_string(u))
				map_put(out, json_string_value(u),
				    json_string_length(u))->val = out;
		}
	}
}

/*
 * Phase 2 of an incremental site: with the lists in, fetch the details of
 * the programs that are new, modified (their listed timestamp is not the
 * one held) or not known to be current, and reuse every other record.  A
 * kept record's value is final, pathway_ids included: when the pathways
 * changed, the kept records they name are fetched too.  Whether requests
 * were queued (the site is not done yet).
 */
static bool
incr_details(struct site_fetch *sf)
{
	struct program_facts	 f;
	struct program		*p;
	struct map		 inpw;
	const char		*listed;
	size_t			 i, n = 0, queued = 0;
	bool			 pwchanged, need;
	char			*url, *esc;

	sf->incr_details = true;
	if (sf->incr_off || sf->uuids_failed)
		return false;
	if (sf->filter_failed || sf->d->expired) {
		/* SPEC §7: what changed is not known; nothing is written. */
		sf->uuids_failed = true;
		return false;
	}
	map_init(&inpw);
	pwchanged = !sf->pathways_failed && (sf->prev->pathways == NULL ||
	    !json_equal(sf->pathways, sf->prev->pathways));
	if (pwchanged) {
		pathway_uuids(sf->pathways, &inpw);
		if (sf->prev->pathways != NULL)
			pathway_uuids(sf->prev->pathways, &inpw);
	}
	sf->slots = xcalloc(sf->nuuids + 1, sizeof *sf->slots);
	for (i = 0; i < sf->nuuids; i++) {
		struct map_item	*it;
		const char	*uuid = sf->uuids[i];

		it = map_put(&sf->unique, uuid, strlen(uuid));
		if (it->val != NULL)
			continue;	/* listed twice: fetched once */
		it->val = (void *)(uintptr_t)(n + 1);
		p = map_get(&sf->prevprog, uuid, strlen(uuid));
		need = p == NULL;
		if (p != NULL) {
			program_facts(p, &f);
			listed = map_get(&sf->changed, uuid, strlen(uuid));
			need = f.modified == NULL || (listed != NULL &&
			    strcmp(listed, f.modified) != 0) ||
			    (program_is_kept(p) && map_get(&inpw, uuid,
			    strlen(uuid)) != NULL);
		}
		if (need) {
			esc = http_escape(uuid);
			url = xasprintf("%s/programs/%s/?exclude_utm=1",
			    sf->cs->catalog_api_url, esc);
			get(sf, url, on_detail, n, uuid);
			free(url);
			free(esc);
			queued++;
		} else
			sf->slots[n] = program_ref(p);
		n++;
	}
	map_free(&inpw);
	return queued > 0;
}

/* A site not refreshed incrementally: carried over as prev has it. */
static struct catalog_site *
incr_result(struct site_fetch *sf)
{
	struct catalog_site	*s;

	if (sf->prev != NULL)
		s = catalog_site_copy(sf->prev);
	else {
		s = catalog_site_new(sf->cs->domain, sf->cs->site_id);
		s->status = SITE_FAILED;
	}
	s->incr = sf->incr_state;
	return s;
}

bool
disc_incremental_ready(const struct cfg *cfg, const struct catalog *gen)
{
	const struct catalog_site	*cs;
	int64_t				 max;
	size_t				 i;
	bool				 any = false;

	if (gen == NULL || cfg->incremental_interval_ms == 0)
		return false;
	for (i = 0; i < cfg->nsites; i++) {
		if (cfg->sites[i].catalog_api_url == NULL)
			continue;
		cs = catalog_find_site(gen, cfg->sites[i].domain);
		if (cs == NULL || !cs->has_data)
			return false;	/* a full refresh comes first */
		if (incr_eligible(cs, &max))
			any = true;
	}
	return any;
}

/* Start fetching one configured site. */
static void
start_site(struct disc *d, const struct cfg_site *cs)
{
	struct site_fetch	*sf;
	size_t			 i;

	sf = xcalloc(1, sizeof *sf);
	sf->d = d;
	sf->cs = cs;
	sf->prev = catalog_find_site(d->prev, cs->domain);
	sf->pathways = json_array();
	map_init(&sf->prevprog);
	map_init(&sf->unique);
	map_init(&sf->uuid_next_seen);
	map_init(&sf->pw_next_seen);
	map_init(&sf->filter_next_seen);
	map_init(&sf->changed);
	if (sf->prev != NULL)
		sf->incr_state = sf->prev->incr;
	for (i = 0; sf->prev != NULL && i < sf->prev->nprograms; i++) {
		struct program *p = sf->prev->programs[i];

		map_put(&sf->prevprog, program_uuid(p),
		    strlen(program_uuid(p)))->val = p;
	}
	d->sf = sf;
	if (d->incremental && !incr_prepare(sf)) {
		/* Not to be refreshed incrementally: as prev has it. */
		sf->incr_off = true;
	} else if (d->expired) {
		req_failed(sf, "deadline", NULL, "refresh deadline exceeded "
		    "before the site was fetched");
		sf->uuids_failed = true;
	} else if (d->auth_failed) {
		req_failed(sf, "auth", NULL, "no token (see token_failed)");
		sf->uuids_failed = true;
	} else if (d->oauth != NULL) {
		sf->outstanding++;
		oauth_get(d->oauth, NULL, on_site_token, sf);
		return;
	} else {
		site_begin(sf);
		return;
	}
	site_maybe_done(sf);
}

/* Start the next site, or finish. */
static void
next_site(struct disc *d)
{
	const struct cfg_site	*cs;
	struct catalog_site	*s;

	for (; d->site < d->cfg->nsites; d->site++) {
		cs = &d->cfg->sites[d->site];
		if (d->only != NULL && strcmp(cs->domain, d->only) != 0)
			continue;
		if (cs->catalog_api_url == NULL) {
			s = catalog_site_new(cs->domain, cs->site_id);
			s->status = SITE_UNCONFIGURED;
			catalog_add_site(d->next, s);
			continue;
		}
		start_site(d, cs);
		return;
	}
	event_active(d->done_ev, EV_TIMEOUT, 0);
}

/* The whole refresh took too long: cancel what is still running. */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct disc	*d = arg;

	(void)fd;
	(void)what;
	d->expired = true;
	log_event(LOG_ERR, "refresh_failed", "stage=deadline error=%s "
	    "deadline_ms=%ld", "refresh deadline exceeded: cancelling what "
	    "is still running", d->cfg->refresh_deadline_ms);
	http_cancel_all(d->http, "refresh deadline exceeded");
}

/* Start a refresh of either kind. */
static struct disc *
disc_begin(struct event_base *base, struct http *http, struct oauth *oauth,
    const struct cfg *cfg, struct catalog *prev,
    const char *only_domain, disc_cb cb, void *arg, bool incremental)
{
	struct disc	*d;
	struct timeval	 tv;

	d = xcalloc(1, sizeof *d);
	d->incremental = incremental;
	d->base = base;
	d->http = http;
	d->oauth = oauth;
	d->cfg = cfg;
	d->prev = prev != NULL ? catalog_ref(prev) : NULL;
	d->only = only_domain != NULL ? xstrdup(only_domain) : NULL;
	d->cb = cb;
	d->arg = arg;
	d->next = catalog_new();
	catalog_opts_from(cfg, &d->opts);
	if (oauth == NULL && cfg->token_file != NULL &&
	    (d->auth = oauth_token_file(cfg->token_file)) == NULL)
		d->auth_failed = true;
	d->done_ev = event_new(base, -1, 0, on_done, d);
	d->deadline = evtimer_new(base, on_deadline, d);
	tv.tv_sec = cfg->refresh_deadline_ms / 1000;
	tv.tv_usec = (cfg->refresh_deadline_ms % 1000) * 1000;
	evtimer_add(d->deadline, &tv);
	next_site(d);
	return d;
}

struct disc *
disc_start(struct event_base *base, struct http *http, struct oauth *oauth,
    const struct cfg *cfg, struct catalog *prev,
    const char *only_domain, disc_cb cb, void *arg)
{
	return disc_begin(base, http, oauth, cfg, prev, only_domain, cb, arg,
	    false);
}

struct disc *
disc_start_incremental(struct event_base *base, struct http *http,
    struct oauth *oauth, const struct cfg *cfg, struct catalog *prev,
    disc_cb cb, void *arg)
{
	return disc_begin(base, http, oauth, cfg, prev, NULL, cb, arg, true);
}

void
disc_free(struct disc *d)
{
	if (d == NULL)
		return;
	d->stopping = true;
	if (d->sf != NULL) {
		/* Outstanding work points at sf: end it first. */
		http_cancel_all(d->http, "shutdown");
		pool_cancel(disc_pool, d);
		if (d->oauth != NULL)
			oauth_cancel(d->oauth);
	}
	event_free(d->deadline);
	event_free(d->done_ev);
	catalog_unref(d->next);
	catalog_unref(d->prev);
	free(d->only);
	free(d->auth);
	free(d);
}
