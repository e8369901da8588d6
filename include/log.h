/*
 * log.h: the one way to say anything.
 *
 * Every line is one event with a stable name and typed fields (operations.md:
 * Observe):
 *
 *	log_event(LOG_ERR, "refresh_failed",
 *	    "site=%s stage=%s url=%s http_status=%ld error=%s",
 *	    site, "uuids", url, status, err);
 *
 * Every event is a row of the table in events.c (its name, priority and
 * fields; events.h); the field list is printf-checked by the compiler and
 * walked by logfmt.c (logfmt.h: the conversions it takes; numeric ones
 * become JSON numbers, %s a JSON string, NULL null).  In a debug build
 * (make DEBUG=1, as make check builds), an event or field the table does
 * not have aborts the program; otherwise the event is logged as it is.
 *
 * Formats (log_format): json, one object per line on stderr; text,
 * "ts level event k=v ..." for a terminal; journal, native journald fields
 * (EVENT=, SITE=, ..., PRIORITY=, MESSAGE=, MESSAGE_ID=; journal.c), or
 * when the journal cannot take it the text line on stderr after "<N>";
 * auto picks journal when stderr is the journal ($JOURNAL_STREAM), text on
 * a terminal, json otherwise.
 *
 * Threads: only the loop thread logs.  Work on other threads (pool.h)
 * hands its results back to the loop, which logs them; nothing here is
 * locked.  fatal() and fatalx() (allocation failure) may run anywhere:
 * they write to stderr and exit.
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
/* The lower-case name of a priority: "error", "warning", ... */
const char	*log_level_name(int prio);

void	log_event(int prio, const char *event, const char *fields, ...)
	    PCD_ATTR_PRINTF(3, 4);
void	log_eventv(int prio, const char *event, const char *fields, va_list)
	    PCD_ATTR_PRINTF(3, 0);
/* Free text for debugging: event "debug", field msg. */
void	log_debug(const char *, ...) PCD_ATTR_PRINTF(1, 2);
/*
 * A field added to every event until it is cleared (name NULL): the
 * daemon's refresh_id while a refresh runs.  Both strings are copied.
 */
void	log_context(const char *name, const char *value);
/* Whether prio would be shown (to skip building expensive fields). */
int	log_enabled(int prio);

/* Log event "fatal" (with strerror(errno) for fatal) and exit 1. */
PCD_NORETURN void	fatal(const char *, ...) PCD_ATTR_PRINTF(1, 2);
PCD_NORETURN void	fatalx(const char *, ...) PCD_ATTR_PRINTF(1, 2);

#endif
