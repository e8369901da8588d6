/*
 * jsonld.h: parse a Discovery response with jansson, numbers included.
 *
 * jansson holds integers in 64 bits and reals in doubles, and refuses a
 * document with a number beyond them; Python's json (what the LMS command
 * parses with) makes arbitrary-size ints and inf.  The values must be the
 * command's (configuration.md: Keys, values and servers), ints of any size
 * included, so such a number is carried through jansson as a marked string:
 * JSONLD_NUMBER_MARK, then the number as it was written.  pickle_json() and
 * jsonld_dumps() turn it back into the number.
 *
 * The mark cannot come from Discovery (design.md: Security): it holds the byte
 * 0xFF, which is never part of valid UTF-8, and every string jansson's loader
 * makes is valid UTF-8 whatever the escaping ("\u00ff" is U+00FF, two bytes; a
 * lone surrogate is refused).  Only jsonld_load makes marked strings
 * (json_stringn_nocheck).  It starts with a NUL too, so that code refusing
 * strings with a NUL (keys, UUIDs) refuses a marked number.
 *
 * Integers of more than JSONLD_MAX_DIGITS digits refuse the whole
 * document, as Python's json does (int_max_str_digits): converting them is
 * quadratic.
 */
#ifndef PCD_JSONLD_H
#define PCD_JSONLD_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define JSONLD_NUMBER_MARK	"\0\377pcd-number:"
#define JSONLD_NUMBER_MARKLEN	(sizeof JSONLD_NUMBER_MARK - 1)
#define JSONLD_MAX_DIGITS	4300

/*
 * json_loadb(buf, len, flags | JSON_ALLOW_NUL) that accepts big numbers.
 * NULL with e filled in when the document does not parse, has an integer
 * of more than JSONLD_MAX_DIGITS digits, or has too many big numbers.
 */
json_t	*jsonld_load(const char *buf, size_t len, size_t flags,
	    json_error_t *);

/*
 * The same, refusing (before parsing) a document of more than max_values
 * values and keys (0: no limit).  jansson spends some 40 bytes on each,
 * so "[0,0,0,...]" takes 20 times its size; a limit of cap / 8 keeps any
 * document under a size cap within about 5 * cap, and real Discovery
 * JSON (13 bytes or more per value) is never near it.
 */
json_t	*jsonld_load_bounded(const char *buf, size_t len, size_t flags,
	    size_t max_values, json_error_t *);
#define JSONLD_BYTES_PER_VALUE	8

/* If v is a marked number, its text (e.g. "1180591620717411303425"). */
const char	*jsonld_number(const json_t *v, size_t *len);

/* json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) with marked numbers
 * written back as numbers.  Caller frees; NULL if it cannot be dumped. */
char	*jsonld_dumps(const json_t *v);

#endif
