/*
 * log.h: the one way to say anything.
 *
 * Every line is one event with a stable name and typed fields (SPEC §6):
 *
 *	log_event(LOG_ERR, "refresh_failed",
 *	    "site=%s stage=%s url=%s http_status=%ld error=%s",
 *	    site, "uuids", url, status, err);
 *
 * The field list is printf-checked: space-separated name=value pairs, each
 * value a single conversion (%s %d %i %u %x %c %f %g %e, with l, ll, z or j
 * length modifiers on the integers, an optional width and precision in
 * digits, and %.*s) or literal text without spaces.  Numeric conversions
 * become JSON numbers; %s a JSON string (NULL is null).  Field names are
 * lower-case [a-z0-9_].  Any other conversion (a flag, %p, %hd, ...) is not
 * formatted: the walker stops reading arguments there and the line gets a
 * field log_error naming it.  log_check_format() applies the same rules
 * without arguments; tests/unit/test_logfmt.c runs every log_event format
 * in src/ through it.
 *
 * Formats (log_format): json, one object per line on stderr; text,
 * "ts level event k=v ..." for a terminal; journal, native journald fields
 * (EVENT=, SITE=, ..., PRIORITY=, MESSAGE=); auto picks journal when stderr
 * is the journal ($JOURNAL_STREAM), text on a terminal, json otherwise.
 */
#ifndef PCD_LOG_H
#define PCD_LOG_H

#include <stdarg.h>
#include <syslog.h>

#include "util.h"

enum log_format {
	LOG_FORMAT_AUTO,
	LOG_FORMAT_JSON,
	LOG_FORMAT_JOURNAL,
	LOG_FORMAT_TEXT
};

/* Choose the format and the most verbose priority shown (LOG_DEBUG..). */
void	log_setup(enum log_format, int level);
/* Parse "json", "text", ... / "debug", "info", ...; -1 if unknown. */
int	log_format_parse(const char *);
int	log_level_parse(const char *);

void	log_event(int prio, const char *event, const char *fields, ...)
	    PCD_ATTR_PRINTF(3, 4);
void	log_eventv(int prio, const char *event, const char *fields, va_list)
	    PCD_ATTR_PRINTF(3, 0);
/* Free text for debugging: event "debug", field msg. */
void	log_debug(const char *, ...) PCD_ATTR_PRINTF(1, 2);
/*
 * Whether the walker supports every conversion of a field list (and its
 * names are well formed): 0, or -1 with the reason in why.
 */
int	log_check_format(const char *fields, char *why, size_t len);
/*
 * A field added to every event until it is cleared (name NULL): the
 * daemon's refresh_id while a refresh runs.  Both strings are copied.
 */
void	log_context(const char *name, const char *value);
/*
 * The event's MESSAGE_ID in the journal: a fixed 128-bit id per event name
 * (BLAKE2b-128 of "programs-cached:" and the name), as 32 hex digits.
 */
void	log_message_id(const char *event, char out[33]);
/* Whether a field name is one of journald's own (written as pcd_NAME). */
int	log_field_collides(const char *name);
/* Whether prio would be shown (to skip building expensive fields). */
int	log_enabled(int prio);

/* Log event "fatal" (with strerror(errno) for fatal) and exit 1. */
PCD_NORETURN void	fatal(const char *, ...) PCD_ATTR_PRINTF(1, 2);
PCD_NORETURN void	fatalx(const char *, ...) PCD_ATTR_PRINTF(1, 2);

#endif
