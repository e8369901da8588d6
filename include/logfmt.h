/*
 * logfmt.h: the grammar of log_event's field lists, and the walker that
 * formats their values (log.c renders what it returns; nothing else
 * reads a field list).
 *
 * A field list is space-separated name=value pairs.  A value is literal
 * text without spaces and conversions: %s %d %i %u %x %c %f %g %e, with l,
 * ll, z or j length modifiers on the integers, an optional width and
 * precision in digits, and %.*s.  A value that is one conversion alone
 * keeps its kind: a number for %d %u %f ..., null for a NULL %s; anything
 * else (%x, %c, literal text, a mix) is a string.  Field names are
 * lower-case [a-z0-9_].
 *
 * Any other conversion (a flag, %p, %hd, a width '*', ...) is not
 * formatted: the walker stops reading arguments there, since it cannot
 * know the argument's size, and ends the fields with one named log_error
 * that names the conversion.  logfmt_check applies the same rules without
 * arguments (tests/unit/test_logfmt.c runs every format in src/ through
 * it).
 *
 * No state: safe from any thread.
 */
#ifndef PCD_LOGFMT_H
#define PCD_LOGFMT_H

#include <stdarg.h>
#include <stddef.h>

#include "util.h"

/* The most fields a field list has (logfmt_check refuses more). */
#define LOGFMT_MAX_FIELDS	30

enum logfmt_kind {
	LOGFMT_STRING,
	LOGFMT_NUMBER,
	LOGFMT_NULL
};

/* One formatted field; its value is len bytes at off in the walker's sb. */
struct logfmt_field {
	char		 name[32];
	enum logfmt_kind kind;
	size_t		 off;
	size_t		 len;
};

/*
 * Format the values of fields (ap, as for vprintf) into sb and describe
 * each field in fv, which has room for LOGFMT_MAX_FIELDS + 1 (the last
 * one log_error if the walker had to stop); the number of fields.  Past
 * LOGFMT_MAX_FIELDS fields the rest are dropped.  fields NULL: none.
 */
size_t	logfmt_walk(const char *fields, va_list ap, struct logfmt_field *fv,
	    struct buf *sb);
/* Add a string field name=value to fv[*nf] (room is the caller's). */
void	logfmt_add(struct logfmt_field *fv, size_t *nf, struct buf *sb,
	    const char *name, const char *value);
/*
 * Whether the walker supports every conversion of a field list and its
 * names are well formed: 0, or -1 with the reason in why.
 */
int	logfmt_check(const char *fields, char *why, size_t len);
/* Whether name is a well-formed field name: [a-z0-9_]+. */
bool	logfmt_name_ok(const char *name, size_t len);

#endif
