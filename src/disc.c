/*
 * disc.c: the request sequence of one refresh, and its failure rules.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	struct program		**slots;	/* per unique uuid */
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
	if ((j = jsonld_load(r->body, r->len, JSON_DECODE_ANY, &e)) ==
	    NULL) {
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
	http_get(d->http, url, q->auth, on_response, q);
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
	http_get(d->http, q->url, q->auth, on_response, q);
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
	if ((j = jsonld_load(pj->body, pj->len, JSON_DECODE_ANY, &e)) ==
	    NULL) {
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
	struct program		*prev;
	struct parse_job	*pj;
	unsigned char		 hash[PROGRAM_BODY_HASH];

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

/* The UUID list is complete: fetch every detail and the pathways. */
static void
start_details(struct site_fetch *sf)
{
	size_t	i, n = 0;
	char	*url, *esc;

	sf->slots = xcalloc(sf->nuuids + 1, sizeof *sf->slots);
	for (i = 0; i < sf->nuuids; i++) {
		struct map_item	*it;

		it = map_put(&sf->unique, sf->uuids[i], strlen(sf->uuids[i]));
		if (it->val != NULL)
			continue;	/* listed twice: fetched once */
		it->val = (void *)(uintptr_t)(n + 1);
		esc = http_escape(sf->uuids[i]);
		url = xasprintf("%s/programs/%s/?exclude_utm=1",
		    sf->cs->catalog_api_url, esc);
		get(sf, url, on_detail, n, sf->uuids[i]);
		free(url);
		free(esc);
		n++;
	}
	get_pathways(sf);
}

static void	get_uuids(struct site_fetch *, const char *);

/* The UUID list (or one page of it) arrived. */
static void
on_uuids(struct req *q, const struct http_result *r)
{
	struct site_fetch	*sf = q->sf;
	json_t			*j, *list, *next = NULL, *v;
	size_t			 i;

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
	json_array_foreach(list, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			metrics.programs_rejected++;
			log_event(LOG_WARNING, "program_rejected", "site=%s "
			    "url=%s index=%zu reason=%s", sf->cs->domain,
			    r->url, i, "an entry of the UUID list is not a "
			    "UUID string");
			sf->partial = true;
			continue;
		}
		sf->uuids = xreallocarray(sf->uuids, sf->nuuids + 1,
		    sizeof *sf->uuids);
		sf->uuids[sf->nuuids++] = xstrdup(json_string_value(v));
	}
	if (json_is_string(next) && json_string_length(next) > 0) {
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
		get_uuids(sf, NULL);
	}
	site_maybe_done(sf);
}

static void
site_fetch_free(struct site_fetch *sf)
{
	size_t	i;

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

	s = catalog_site_new(sf->cs->domain, sf->cs->site_id);
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
	for (i = 0; sf->prev != NULL && i < sf->prev->nprograms; i++) {
		struct program *p = sf->prev->programs[i];

		map_put(&sf->prevprog, program_uuid(p),
		    strlen(program_uuid(p)))->val = p;
	}
	d->sf = sf;
	if (d->expired) {
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
		get_uuids(sf, NULL);
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

struct disc *
disc_start(struct event_base *base, struct http *http, struct oauth *oauth,
    const struct cfg *cfg, struct catalog *prev,
    const char *only_domain, disc_cb cb, void *arg)
{
	struct disc	*d;
	struct timeval	 tv;

	d = xcalloc(1, sizeof *d);
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
