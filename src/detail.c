/*
 * detail.c: a detail's body into a record, on a worker or on the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detail.h"
#include "jarena.h"
#include "jsonld.h"
#include "pool.h"
#include "util.h"

/* A detail handed to a worker, and what it made of it. */
struct parse_job {
	struct detail_req	 req;		/* body and uuid: the job's */
	detail_cb		 cb;
	void			*arg;
	struct program		*p;
	bool			 malformed;
	char			 why[JSON_ERROR_TEXT_LENGTH + 64];
	unsigned char		 hash[PROGRAM_BODY_HASH];
};

/* Parse, record and encode one detail (on a worker, or on the loop). */
static void
parse_work(void *arg)
{
	struct parse_job	*pj = arg;
	struct detail_req	*r = &pj->req;
	struct jarena		 arena, *paused;
	json_error_t		 e;
	json_t			*j, *kept;

	/* The tree dies with the parse: jansson allocates it in an arena. */
	jarena_begin(&arena);
	if ((j = jsonld_load_bounded(r->body, r->len, JSON_DECODE_ANY,
	    r->max_values, &e)) == NULL) {
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
		pj->p = program_new(kept, r->uuid, r->format, r->proto,
		    r->prev, pj->why, sizeof pj->why);
		json_decref(kept);
		jarena_resume(paused);
	} else {
		pj->p = program_new(j, r->uuid, r->format, r->proto, r->prev,
		    pj->why, sizeof pj->why);
		json_decref(j);
	}
	jarena_end(&arena);
	if (pj->p != NULL)
		program_body_hash(r->body, r->len, pj->hash);
	/* Done with: a job waiting for the loop holds no body. */
	free(r->body);
	r->body = NULL;
}

static void
parse_job_free(struct parse_job *pj)
{
	free((char *)pj->req.uuid);
	free(pj->req.body);	/* a cancelled job's */
	free(pj);
}

/* On the loop: the record learns its body (it may be prev, shared). */
static void
parse_deliver(struct parse_job *pj, bool queued, bool cancelled)
{
	struct detail_result	res;

	memset(&res, 0, sizeof res);
	res.queued = queued;
	res.cancelled = cancelled;
	if (cancelled)
		program_unref(pj->p);
	else {
		if (pj->p != NULL)
			program_set_body(pj->p, pj->hash);
		res.p = pj->p;
		res.malformed = pj->malformed;
		res.why = pj->why;
	}
	pj->cb(&res, pj->arg);
	parse_job_free(pj);
}

static void
parse_done(void *arg, bool cancelled)
{
	parse_deliver(arg, true, cancelled);
}

void
detail_parse(struct pool *pool, const void *owner,
    const struct detail_req *req, detail_cb cb, void *arg)
{
	struct parse_job	*pj = xcalloc(1, sizeof *pj);

	pj->req = *req;
	pj->req.uuid = xstrdup(req->uuid);
	pj->cb = cb;
	pj->arg = arg;
	/*
	 * Never on the loop while there are workers: a parse there (a
	 * millisecond or so) holds every transfer and every request waiting
	 * to go out, and its results keep the count of jobs high enough to
	 * make the loop parse the next one too.  The caller bounds how many
	 * wait (fetch.c's window).
	 */
	if (pool_threads(pool, POOL_PARSE) == 0) {
		parse_work(pj);
		parse_deliver(pj, false, false);
		return;
	}
	pool_submit(pool, POOL_PARSE, owner, parse_work, parse_done, pj);
}

void
detail_cancel(struct pool *pool, const void *owner)
{
	pool_cancel(pool, owner);
}

bool
detail_same_body(const struct program *prev, const void *body, size_t len,
    enum cfg_value_format format, int proto)
{
	unsigned char	hash[PROGRAM_BODY_HASH];

	program_body_hash(body, len, hash);
	return program_same_body(prev, hash, format, proto);
}
