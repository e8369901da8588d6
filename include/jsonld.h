/*
 * jsonld.h: parse a Discovery response with jansson, numbers included.
 *
 * jansson holds integers in 64 bits and reals in doubles, and refuses a
 * document with a number beyond them; Python's json (what the LMS command
 * parses with) makes arbitrary-size ints and inf.  SPEC §3 asks for ints of
 * any size to round-trip, so such a number is carried through jansson as a
 * marked string: JSONLD_NUMBER_MARK, then the number as it was written.
 * pickle_json() and the JSON writer turn it back into the number.
 */
#ifndef PCD_JSONLD_H
#define PCD_JSONLD_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* NUL first: no string of the document itself can start this way unless it
 * is written "\u0000pcd-number:" in the text, which the loader refuses. */
#define JSONLD_NUMBER_MARK	"\0pcd-number:"
#define JSONLD_NUMBER_MARKLEN	(sizeof JSONLD_NUMBER_MARK - 1)

/* json_loadb(buf, len, flags | JSON_ALLOW_NUL) that accepts big numbers. */
json_t	*jsonld_load(const char *buf, size_t len, size_t flags,
	    json_error_t *);

/* If v is a marked number, its text (e.g. "1180591620717411303425"). */
const char	*jsonld_number(const json_t *v, size_t *len);

/* json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) with marked numbers
 * written back as numbers.  Caller frees. */
char	*jsonld_dumps(const json_t *v);

#endif
