/*
 * detail.h: one program detail's body made into a record (configuration.md:
 * Keys, values and servers; design.md: Security): parsed with jansson (in an
 * arena, within a value budget), checked and encoded, on a worker of the pool,
 * or on the loop when there are no workers.  Every call with workers is queued
 * for them: the caller bounds how many bodies wait (fetch.c sends fewer
 * requests while the workers are behind), so the loop never parses while it
 * could serve transfers.
 *
 * A worker touches only its job: its copy of the body, and prev (which
 * the caller holds) through program_new's reading of it.  The result is
 * handed back on the loop, where it is logged and counted.
 */
#ifndef PCD_DETAIL_H
#define PCD_DETAIL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "config.h"
#include "program.h"

struct pool;

struct detail_req {
	const char		*uuid;		/* from the site's list */
	char			*body;		/* malloc'd: the callee's */
	size_t			 len;
	size_t			 max_values;	/* the parse's budget */
	struct program		*prev;		/* the last record, or NULL */
	enum cfg_value_format	 format;
	int			 proto;
};

struct detail_result {
	struct program	*p;		/* the record (the callee's), or NULL */
	bool		 malformed;	/* not JSON: why is jansson's */
	const char	*why;		/* why p is NULL */
	bool		 queued;	/* ran on a worker (not in the call) */
	bool		 cancelled;	/* the owner cancelled: p is NULL */
};

/* The result, on the loop thread (during detail_parse if not queued). */
typedef void	(*detail_cb)(const struct detail_result *, void *arg);

/* Make a record of req's body (owner: for detail_cancel). */
void	detail_parse(struct pool *, const void *owner,
	    const struct detail_req *, detail_cb, void *arg);
/* End owner's parses: each callback runs now with cancelled set. */
void	detail_cancel(struct pool *, const void *owner);

/*
 * Whether body is the very one prev was made from (its hash): the record
 * can be reused without parsing.
 */
bool	detail_same_body(const struct program *prev, const void *body,
	    size_t len, enum cfg_value_format, int proto);

#endif
