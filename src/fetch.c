/*
 * fetch.c: the request sequence of one refresh, reported as it went.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "detail.h"
#include "fetch_int.h"
#include "jsonld.h"
#include "log.h"
#include "oauth.h"
#include "util.h"

/* One request, and what to do with its answer. */
struct req {
	struct site_fetch	*sf;
	fetch_handler		 handle;
	const char		*endpoint;	/* a literal */
	char			*url;
	char			*auth;		/* the header it went with */
	bool			 renewed;	/* a 401 got a new token */
	size_t			 slot;		/* details */
	char			*uuid;		/* details */
};

static void	next_site(struct fetch *);
static void	site_maybe_done(struct site_fetch *);
static void	on_response(const struct http_result *, void *);
static void	on_detail(struct site_fetch *, const struct http_result *,
		    size_t, const char *);
static void	feed_details(struct site_fetch *);
static void	fetch_detail(struct site_fetch *, size_t, const char *);
static void	on_pathways(struct site_fetch *, const struct http_result *,
		    size_t, const char *);

void
fetch_failed(struct site_fetch *sf, const char *stage,
    const struct http_result *r, const char *error)
{
	struct fetch_result	*res = sf->f->res;
	struct fetch_failure	*ff;

	res->failures = xreallocarray(res->failures, res->nfailures + 1,
	    sizeof *res->failures);
	ff = &res->failures[res->nfailures++];
	ff->site = xstrdup(sf->cs->domain);
	ff->stage = stage;
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
status_hint(const struct fetch *f, long status)
{
	switch (status) {
	case 401:
		/* Requests go with the site's header: none, none was sent. */
		if (f->auth == NULL)
			return f->o.oauth == NULL &&
			    f->o.cfg->token_file == NULL ? "HTTP 401: "
			    "Discovery wants a token and none is configured "
			    "(set oauth_url and client_id, or token_file)" :
			    "HTTP 401: no token was sent (see token_failed)";
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
 * The most bytes a response of this endpoint may have (design.md: Security).
 */
static size_t
body_cap(const struct site_fetch *sf, const char *endpoint)
{
	const struct cfg	*cfg = sf->f->o.cfg;

	if (strcmp(endpoint, "detail") == 0 &&
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
		fetch_failed(sf, stage, r, status_hint(sf->f, r->status));
		return false;
	}
	if (r->content_type != NULL && strstr(r->content_type, "json") ==
	    NULL) {
		snprintf(msg, sizeof msg, "unexpected content type %s",
		    r->content_type);
		fetch_failed(sf, stage, r, msg);
		return false;
	}
	return true;
}

json_t *
fetch_json(struct site_fetch *sf, const char *stage,
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
		fetch_failed(sf, stage, r, msg);
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
	struct http_req	*r;

	r = http_get_max(q->sf->f->o.http, q->url, q->auth,
	    strcmp(q->endpoint, "detail") == 0 ? body_cap(q->sf, "detail") : 0,
	    on_response, q);
	http_set_tag(r, q->sf->cs->domain, q->endpoint);
}

void
fetch_get(struct site_fetch *sf, const char *url, fetch_handler handle,
    const char *endpoint, size_t slot, const char *uuid)
{
	struct req	*q = xcalloc(1, sizeof *q);
	struct fetch	*f = sf->f;

	q->sf = sf;
	q->handle = handle;
	q->endpoint = endpoint;
	q->url = xstrdup(url);
	q->auth = f->auth != NULL ? xstrdup(f->auth) : NULL;
	q->slot = slot;
	q->uuid = uuid != NULL ? xstrdup(uuid) : NULL;
	sf->outstanding++;
	send_req(q);
}

/* Run a request's handler; the site may be done after it. */
static void
handle(struct req *q, const struct http_result *r)
{
	struct site_fetch	*sf = q->sf;

	incr_reply(sf, r);
	sf->outstanding--;
	q->handle(sf, r, q->slot, q->uuid);
	req_free(q);
	site_maybe_done(sf);
}

/* A new token after a 401 (or none): send the request again, once. */
static void
on_renewed(const char *header, void *arg)
{
	struct req		*q = arg;
	struct fetch		*f = q->sf->f;
	struct http_result	 r;

	if (header == NULL || f->stopping || f->expired) {
		memset(&r, 0, sizeof r);
		r.url = q->url;
		r.status = 401;
		r.body = "";
		r.attempts = 1;
		r.error = header == NULL ? "HTTP 401, and no new token could "
		    "be had (see token_failed)" : "cancelled";
		handle(q, &r);
		return;
	}
	free(f->auth);
	f->auth = xstrdup(header);
	free(q->auth);
	q->auth = xstrdup(header);
	send_req(q);
}

/* Every answer comes here first: a 401 renews the token once. */
static void
on_response(const struct http_result *r, void *arg)
{
	struct req	*q = arg;
	struct fetch	*f = q->sf->f;

	if (r->status == 401 && f->o.oauth != NULL && !q->renewed &&
	    !f->stopping && !f->expired) {
		q->renewed = true;
		oauth_get(f->o.oauth, q->auth, on_renewed, q);
		return;
	}
	handle(q, r);
}

int
fetch_follow(struct site_fetch *sf, struct pager *pg, const char *stage,
    const json_t *next, const struct http_result *r, const char **url)
{
	char	why[160];

	switch (pager_next(pg, next, url, why, sizeof why)) {
	case PAGER_DONE:
		return 0;
	case PAGER_REFUSED:
		fetch_failed(sf, stage, r, why);
		return -1;
	case PAGER_NEXT:
	default:
		/* Past the deadline nothing more is asked (it is logged). */
		return sf->f->expired ? -1 : 1;
	}
}

/* A detail being parsed: what its result is logged with. */
struct parsing {
	struct site_fetch	*sf;
	size_t			 slot;
	char			*uuid;
	char			*url;
	long			 status;
	int			 attempts;
};

static void
parsing_free(struct parsing *pp)
{
	free(pp->uuid);
	free(pp->url);
	free(pp);
}

/* A parsed detail (on the loop): log why it failed, fill the slot. */
static void
on_parsed(const struct detail_result *res, void *arg)
{
	struct parsing		*pp = arg;
	struct site_fetch	*sf = pp->sf;
	struct http_result	 r;

	if (res->cancelled) {
		/* fetch_free: the site ends (and is freed) with its last job. */
		parsing_free(pp);
		sf->outstanding--;
		site_maybe_done(sf);
		return;
	}
	if (res->malformed) {
		memset(&r, 0, sizeof r);
		r.url = pp->url;
		r.status = pp->status;
		r.attempts = pp->attempts;
		fetch_failed(sf, "detail", &r, res->why);
	} else if (res->p == NULL) {
		sf->f->res->programs_rejected++;
		log_event(LOG_WARNING, "program_rejected",
		    "site=%s uuid=%s url=%s reason=%s",
		    sf->cs->domain, pp->uuid, pp->url, res->why);
	}
	/* A failed detail is reported as such (NULL): see gen.c. */
	if (res->p == NULL)
		sf->partial = true;
	sf->slots[pp->slot] = res->p;
	parsing_free(pp);
	sf->outstanding--;
	sf->details_out--;
	/* Done during detail_parse: the response's handler goes on. */
	if (res->queued) {
		feed_details(sf);
		site_maybe_done(sf);
	}
}

/*
 * What one detail (or its failure) makes of its program's slot: the very
 * body the last record was made of reuses it; any other is parsed.
 * Whether it went to be parsed (on_parsed settles it, maybe already).
 */
static bool
detail_result(struct site_fetch *sf, const struct http_result *r,
    size_t slot, const char *uuid)
{
	const struct cfg	*cfg = sf->f->o.cfg;
	struct detail_req	 dr;
	struct program		*prev;
	struct parsing		*pp;

	sf->f->res->details_fetched++;
	prev = map_get(&sf->prevprog, uuid, strlen(uuid));
	if (!body_is_json(sf, "detail", r)) {
		sf->partial = true;
		return false;
	}
	if (prev != NULL && detail_same_body(prev, r->body, r->len,
	    cfg->value_format, cfg->pickle_protocol)) {
		sf->slots[slot] = program_ref(prev);
		sf->f->res->details_unchanged++;
		return false;
	}
	memset(&dr, 0, sizeof dr);
	dr.uuid = uuid;
	dr.body = http_take_body(r);	/* not copied: the parse's now */
	dr.len = r->len;
	dr.max_values = body_cap(sf, "detail") / JSONLD_BYTES_PER_VALUE;
	dr.prev = prev;
	dr.format = cfg->value_format;
	dr.proto = cfg->pickle_protocol;
	pp = xcalloc(1, sizeof *pp);
	pp->sf = sf;
	pp->slot = slot;
	pp->uuid = xstrdup(uuid);
	pp->url = xstrdup(r->url);
	pp->status = r->status;
	pp->attempts = r->attempts;
	sf->outstanding++;
	detail_parse(sf->f->o.pool, sf->f, &dr, on_parsed, pp);
	return true;
}

/* One detail arrived (or failed). */
static void
on_detail(struct site_fetch *sf, const struct http_result *r, size_t slot,
    const char *uuid)
{
	if (!detail_result(sf, r, slot, uuid))
		sf->details_out--;
	/* A place may be free: send the next one (after the result is in). */
	feed_details(sf);
}

/* Ask for program uuid's detail into slot. */
static void
fetch_detail(struct site_fetch *sf, size_t slot, const char *uuid)
{
	char	*url, *esc;

	esc = http_escape(uuid);
	url = xasprintf("%s/programs/%s/?exclude_utm=1",
	    sf->cs->catalog_api_url, esc);
	fetch_get(sf, url, on_detail, "detail", slot, uuid);
	free(url);
	free(esc);
}

void
fetch_pathways(struct site_fetch *sf)
{
	char	*url;

	url = xasprintf("%s/pathways/?status=published&exclude_utm=1&page=%d",
	    sf->cs->catalog_api_url, pager_begin(&sf->pw_pager));
	fetch_get(sf, url, on_pathways, "pathways", 0, NULL);
	free(url);
}

/* A page of pathways arrived (or failed). */
static void
on_pathways(struct site_fetch *sf, const struct http_result *r, size_t slot,
    const char *uuid)
{
	json_t		*j, *results;
	const char	*url;

	(void)slot;
	(void)uuid;
	if ((j = fetch_json(sf, "pathways", r)) == NULL)
		goto fail;
	results = json_object_get(j, "results");
	if (!json_is_object(j) || !json_is_array(results)) {
		fetch_failed(sf, "pathways", r, "a pathways page is not an "
		    "object with a list of results");
		json_decref(j);
		goto fail;
	}
	json_array_extend(sf->pathways, results);
	/* get_pathways: next_page + 1 while the body's next is truthy. */
	switch (fetch_follow(sf, &sf->pw_pager, "pathways",
	    json_object_get(j, "next"), r, &url)) {
	case -1:
		json_decref(j);
		goto fail;
	case 1:
		fetch_pathways(sf);
		break;
	}
	json_decref(j);
	return;
fail:
	/*
	 * Reported: gen.c keeps the site's previous pathways (design.md:
	 * Failures).
	 */
	sf->pathways_failed = true;
	sf->partial = true;
}

/*
 * The next detail to send, its slot given: incr.c's choice, or the next
 * UUID of the list not seen before.  False when none is left.
 */
static bool
next_detail(struct site_fetch *sf, size_t *slot, const char **uuid)
{
	struct map_item	*it;
	const char	*u;

	if (sf->wanted != NULL) {
		if (sf->next_wanted == sf->nwanted)
			return false;
		*slot = sf->wanted[sf->next_wanted++];
		*uuid = sf->unique.items[*slot].key;
		return true;
	}
	while (sf->next_detail < sf->nuuids) {
		u = sf->uuids[sf->next_detail++];
		it = map_put(&sf->unique, u, strlen(u));
		if (it->val != NULL)
			continue;	/* listed twice: fetched once */
		*slot = sf->unique.nitems - 1;
		it->val = (void *)(uintptr_t)(*slot + 1);
		*uuid = u;
		return true;
	}
	return false;
}

/*
 * Send details while fewer than twice max_in_flight are out, a detail
 * being out from its request until its record (or failure) is in its
 * slot: a request exists only from shortly before it goes in flight
 * (design.md: Security), and the bodies held, in transfer or waiting for
 * a worker, are at most that many, so memory follows max_in_flight, not
 * the length of the list.  Parsing never runs on the loop while there are
 * workers: when they fall behind, fewer requests go out instead (the loop
 * keeps serving the transfers in flight).  After the deadline (or at
 * shutdown) the rest are not sent: they are reported failed, and keep their
 * previous values as failed details do (design.md: Failures).
 */
static void
feed_details(struct site_fetch *sf)
{
	struct fetch	*f = sf->f;
	const char	*uuid;
	size_t		 slot, window, skipped = 0;

	window = 2 * (size_t)f->o.cfg->max_in_flight;
	while ((sf->details_out < window || f->expired || f->stopping) &&
	    next_detail(sf, &slot, &uuid)) {
		if (f->expired || f->stopping) {
			sf->partial = true;
			skipped++;
			continue;
		}
		sf->details_out++;
		fetch_detail(sf, slot, uuid);
	}
	if (skipped > 0 && !f->stopping)
		log_event(LOG_ERR, "refresh_failed", "site=%s stage=%s "
		    "error=%s details=%zu", sf->cs->domain, "detail",
		    "refresh deadline exceeded: details not fetched keep "
		    "their previous values", skipped);
}

void
fetch_details(struct site_fetch *sf, size_t *slots, size_t n)
{
	free(sf->wanted);
	sf->wanted = slots;
	sf->nwanted = n;
	sf->next_wanted = 0;
	feed_details(sf);
}

/* The UUID list is complete: fetch every detail and the pathways. */
static void
start_details(struct site_fetch *sf)
{
	sf->slots = xcalloc(sf->nuuids + 1, sizeof *sf->slots);
	feed_details(sf);
	fetch_pathways(sf);
}

/* The entries of a UUID list page that are UUID strings, kept. */
static void
take_uuids(struct site_fetch *sf, const json_t *list,
    const struct http_result *r)
{
	json_t	*v;
	size_t	 i, bad = 0;

	/* Room for the whole page at once (not one realloc per UUID). */
	sf->uuids = xreallocarray(sf->uuids,
	    sf->nuuids + json_array_size(list) + 1, sizeof *sf->uuids);
	json_array_foreach(list, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			sf->f->res->programs_rejected++;
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
}

/* The UUID list (or one page of it) arrived. */
static void
on_uuids(struct site_fetch *sf, const struct http_result *r, size_t slot,
    const char *uuid)
{
	json_t		*j, *list, *next = NULL;
	const char	*url;
	int		 more;

	(void)slot;
	(void)uuid;
	if ((j = fetch_json(sf, "uuids", r)) == NULL)
		goto fail;
	list = j;
	if (json_is_object(j)) {
		/* A paginated envelope {count, next, results}. */
		list = json_object_get(j, "results");
		next = json_object_get(j, "next");
	}
	if (!json_is_array(list)) {
		fetch_failed(sf, "uuids", r, "the UUID list is not a JSON "
		    "list");
		json_decref(j);
		goto fail;
	}
	take_uuids(sf, list, r);
	more = fetch_follow(sf, &sf->uuid_pager, "uuids", next, r, &url);
	if (more == 1)
		fetch_uuids(sf, url);
	json_decref(j);
	if (more == -1 || (more == 0 && sf->f->expired))
		goto fail;
	if (more == 0 && !sf->incr)
		start_details(sf);
	return;
fail:
	sf->uuids_failed = true;
}

void
fetch_uuids(struct site_fetch *sf, const char *next)
{
	char	*url;

	pager_begin(&sf->uuid_pager);
	if (next != NULL)
		url = xstrdup(next);
	else
		url = xasprintf("%s/programs/?exclude_utm=1&status=active&"
		    "status=retired&uuids_only=1", sf->cs->catalog_api_url);
	fetch_get(sf, url, on_uuids, "uuids", 0, NULL);
	free(url);
}

/* The first requests of a site. */
static void
site_begin(struct site_fetch *sf)
{
	if (sf->incr)
		incr_begin(sf);
	else
		fetch_uuids(sf, NULL);
}

/* The site's token is here (or not): start with the UUID list. */
static void
on_site_token(const char *header, void *arg)
{
	struct site_fetch	*sf = arg;
	struct fetch		*f = sf->f;

	sf->outstanding--;
	if (header == NULL || f->stopping || f->expired) {
		fetch_failed(sf, "auth", NULL, header == NULL ? "no token (see "
		    "token_failed)" : "cancelled");
		sf->uuids_failed = true;
	} else {
		free(f->auth);
		f->auth = xstrdup(header);
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
	free(sf->wanted);
	map_free(&sf->unique);
	map_free(&sf->prevprog);
	pager_free(&sf->uuid_pager);
	pager_free(&sf->pw_pager);
	pager_free(&sf->filter_pager);
	MAP_FOREACH(&sf->changed, it)
		free(it->val);
	map_free(&sf->changed);
	free(sf->since);
	json_decref(sf->pathways);
	free(sf);
}

/* What the refresh found of the site (the records move to the report). */
static struct fetch_site *
site_report(struct site_fetch *sf)
{
	struct fetch_site	*fs = xcalloc(1, sizeof *fs);
	size_t			 i;

	fs->domain = xstrdup(sf->cs->domain);
	fs->site_id = sf->cs->site_id;
	fs->incremental = sf->incr;
	fs->incr = sf->incr_state;
	if (sf->incr_off) {
		fs->status = FETCH_SKIPPED;
		return fs;
	}
	if (sf->uuids_failed) {
		fs->status = FETCH_FAILED;
		return fs;
	}
	fs->status = FETCH_LISTED;
	fs->partial = sf->partial;
	fs->uuids = sf->uuids;
	fs->nuuids = sf->nuuids;
	sf->uuids = NULL;
	sf->nuuids = 0;
	fs->nprogs = sf->unique.nitems;
	fs->progs = xcalloc(fs->nprogs + 1, sizeof *fs->progs);
	for (i = 0; i < fs->nprogs; i++) {
		fs->progs[i].uuid = xstrdup(sf->unique.items[i].key);
		fs->progs[i].p = sf->slots[i];
		sf->slots[i] = NULL;
	}
	if (!sf->pathways_failed) {
		fs->pathways = sf->pathways;
		sf->pathways = NULL;
	}
	return fs;
}

/* A site with no catalog URL: [] lists. */
static struct fetch_site *
site_unconfigured(const struct cfg_site *cs)
{
	struct fetch_site	*fs = xcalloc(1, sizeof *fs);

	fs->domain = xstrdup(cs->domain);
	fs->site_id = cs->site_id;
	fs->status = FETCH_UNCONFIGURED;
	return fs;
}

static void
add_site(struct fetch_result *res, struct fetch_site *fs)
{
	res->sites = xreallocarray(res->sites, res->nsites + 1,
	    sizeof *res->sites);
	res->sites[res->nsites++] = fs;
}

/* When nothing of the site is outstanding, report it and go on. */
static void
site_maybe_done(struct site_fetch *sf)
{
	struct fetch	*f = sf->f;

	if (sf->outstanding > 0)
		return;
	/* Incremental: the lists are in; now the details that changed. */
	if (sf->incr && !sf->incr_details && !f->stopping &&
	    incr_details(sf))
		return;
	f->sf = NULL;
	if (f->stopping) {
		site_fetch_free(sf);
		return;
	}
	add_site(f->res, site_report(sf));
	site_fetch_free(sf);
	f->site++;
	next_site(f);
}

/* Everything has ended: call back from the loop, not from a callback. */
static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	struct fetch		*f = arg;
	struct fetch_result	*res = f->res;

	(void)fd;
	(void)what;
	f->res = NULL;
	f->cb(res, f->arg);
}

/* Start fetching one configured site. */
static void
start_site(struct fetch *f, const struct cfg_site *cs)
{
	struct site_fetch	*sf;
	int			 max = f->o.cfg->max_pages;
	size_t			 i;

	sf = xcalloc(1, sizeof *sf);
	sf->f = f;
	sf->cs = cs;
	sf->prev = catalog_find_site(f->o.prev, cs->domain);
	sf->pathways = json_array();
	map_init(&sf->prevprog);
	map_init(&sf->unique);
	map_init(&sf->changed);
	pager_init(&sf->uuid_pager, PAGER_URL, cs->catalog_api_url, max);
	pager_init(&sf->pw_pager, PAGER_NUMBERED, cs->catalog_api_url, max);
	pager_init(&sf->filter_pager, PAGER_URL, cs->catalog_api_url, max);
	if (sf->prev != NULL)
		sf->incr_state = sf->prev->incr;
	for (i = 0; sf->prev != NULL && i < sf->prev->nprograms; i++) {
		struct program *p = sf->prev->programs[i];

		map_put(&sf->prevprog, program_uuid(p),
		    strlen(program_uuid(p)))->val = p;
	}
	f->sf = sf;
	if (f->o.incremental && !incr_prepare(sf)) {
		/* Not to be refreshed incrementally: as prev has it. */
		sf->incr_off = true;
	} else if (f->expired) {
		fetch_failed(sf, "deadline", NULL, "refresh deadline exceeded "
		    "before the site was fetched");
		sf->uuids_failed = true;
	} else if (f->auth_failed) {
		fetch_failed(sf, "auth", NULL, "no token (see token_failed)");
		sf->uuids_failed = true;
	} else if (f->o.oauth != NULL) {
		sf->outstanding++;
		oauth_get(f->o.oauth, NULL, on_site_token, sf);
		return;
	} else {
		site_begin(sf);
		return;
	}
	site_maybe_done(sf);
}

/* Start the next site, or finish. */
static void
next_site(struct fetch *f)
{
	const struct cfg_site	*cs;

	for (; f->site < f->o.cfg->nsites; f->site++) {
		cs = &f->o.cfg->sites[f->site];
		if (f->o.only_domain != NULL &&
		    strcmp(cs->domain, f->o.only_domain) != 0)
			continue;
		if (cs->catalog_api_url == NULL) {
			add_site(f->res, site_unconfigured(cs));
			continue;
		}
		start_site(f, cs);
		return;
	}
	event_active(f->done_ev, EV_TIMEOUT, 0);
}

/* The whole refresh took too long: cancel what is still running. */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct fetch	*f = arg;

	(void)fd;
	(void)what;
	f->expired = true;
	log_event(LOG_ERR, "refresh_failed", "stage=deadline error=%s "
	    "deadline_ms=%ld", "refresh deadline exceeded: cancelling what "
	    "is still running", f->o.cfg->refresh_deadline_ms);
	http_cancel_all(f->o.http, "refresh deadline exceeded");
}

struct fetch *
fetch_start(const struct fetch_opts *o, fetch_cb cb, void *arg)
{
	struct fetch	*f;
	struct timeval	 tv;
	long		 ms = o->cfg->refresh_deadline_ms;

	f = xcalloc(1, sizeof *f);
	f->o = *o;
	f->o.prev = o->prev != NULL ? catalog_hold(o->prev) : NULL;
	f->o.only_domain = o->only_domain != NULL ? xstrdup(o->only_domain) :
	    NULL;
	f->cb = cb;
	f->arg = arg;
	f->res = xcalloc(1, sizeof *f->res);
	f->res->incremental = o->incremental;
	if (o->oauth == NULL && o->cfg->token_file != NULL &&
	    (f->auth = oauth_token_file(o->cfg->token_file)) == NULL)
		f->auth_failed = true;
	f->done_ev = event_new(o->base, -1, 0, on_done, f);
	f->deadline = evtimer_new(o->base, on_deadline, f);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(f->deadline, &tv);
	next_site(f);
	return f;
}

void
fetch_result_free(struct fetch_result *res)
{
	struct fetch_site	*fs;
	size_t			 i, j;

	if (res == NULL)
		return;
	for (i = 0; i < res->nsites; i++) {
		fs = res->sites[i];
		free(fs->domain);
		for (j = 0; j < fs->nuuids; j++)
			free(fs->uuids[j]);
		free(fs->uuids);
		for (j = 0; j < fs->nprogs; j++) {
			free(fs->progs[j].uuid);
			program_unref(fs->progs[j].p);
		}
		free(fs->progs);
		json_decref(fs->pathways);
		free(fs);
	}
	free(res->sites);
	for (i = 0; i < res->nfailures; i++)
		free(res->failures[i].site);
	free(res->failures);
	free(res);
}

void
fetch_free(struct fetch *f)
{
	if (f == NULL)
		return;
	f->stopping = true;
	if (f->sf != NULL) {
		/* Outstanding work points at sf: end it first. */
		http_cancel_all(f->o.http, "shutdown");
		detail_cancel(f->o.pool, f);
		if (f->o.oauth != NULL)
			oauth_cancel(f->o.oauth);
	}
	event_free(f->deadline);
	event_free(f->done_ev);
	fetch_result_free(f->res);
	catalog_release(f->o.prev);
	free((char *)f->o.only_domain);
	free(f->auth);
	free(f);
}
