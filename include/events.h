/*
 * events.h: every event the daemon logs, one row each (src/events.c), as
 * memcached's logger.c keeps its entries: the name, the priority, the
 * fields and what it means.  The call sites keep their own field lists
 *
 *	log_event(LOG_ERR, "refresh_failed", "site=%s stage=%s error=%s", ...)
 *
 * and the table says what they may be: tests/unit/test_logfmt.c checks
 * that every log_event in src/ names a row, logs the row's priority, only
 * the row's fields, in the row's order, every field the row does not mark
 * optional, and that every row is logged somewhere.  The man page's list
 * of events (programs-cached(8), Message IDs) is printed from the table
 * (make man-events), and test_logfmt checks it is current.
 *
 * A row's fields are a space-separated list of names in the order the
 * call sites log them; "name?" is optional (some call sites leave it
 * out); "prefix_<what>" is a pattern, any number of fields named prefix_
 * and then [a-z0-9_]+ (a field list built at run time: cache_miss logs
 * missing_<family> for each key family that had misses).  Every event
 * also carries refresh_id while a refresh runs (log_context) and may end
 * with log_error (logfmt.h); neither is listed.
 *
 * The table is constant and the message ids are computed once: safe from
 * any thread.
 */
#ifndef PCD_EVENTS_H
#define PCD_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The call sites pick the priority; prio is the usual one (help says). */
#define EVENT_PRIO_VARIES	0x1
/*
 * Written by fatal()/fatalx() straight to stderr, without allocating:
 * in the journal it has no MESSAGE_ID or fields of its own.
 */
#define EVENT_FATAL		0x2

struct event {
	const char	*name;
	int		 prio;		/* LOG_ERR, LOG_INFO, ... */
	unsigned	 flags;		/* EVENT_* */
	const char	*fields;	/* as above */
	const char	*help;		/* one line, for the man page */
};

/* Sorted by name (test_logfmt checks): events_find is a binary search. */
extern const struct event	events_table[];
extern const size_t		events_count;

/* One field of a row, as events_field_next reads it. */
struct event_field {
	const char	*name;		/* len bytes, not NUL-terminated */
	size_t		 len;
	size_t		 prefix;	/* a pattern: the bytes before '<' */
	bool		 pattern;
	bool		 optional;
};

/* The row named name, or NULL. */
const struct event	*events_find(const char *name);
/*
 * Read the next field of a row's field list at *spec into f and advance
 * *spec; false at the end.
 */
bool	events_field_next(const char **spec, struct event_field *f);
/*
 * The position of the field called name (len bytes) in ev's list, or -1
 * if the row has none of that name (or pattern).
 */
int	events_field_index(const struct event *ev, const char *name,
	    size_t len);
/*
 * The event's MESSAGE_ID in the journal, 32 hex digits: BLAKE2b-128 of
 * "programs-cached:" and the name (events_hash_id), computed once.
 */
const char	*events_message_id(const struct event *ev);
void		 events_hash_id(const char *name, char out[33]);
/*
 * The man page's list of events (mdoc: one .Bl list with the name,
 * priority, MESSAGE_ID, help and fields of each).
 */
void	events_print_mdoc(FILE *);

#endif
