/*
 * unpickle.h: read a pickled JSON-shaped value back into jansson, to look
 * inside the cache (--show, --dry-run --diff).
 *
 * The values of the nine families are dicts, lists, strings, ints of any
 * size, floats, True/False/None: what pickle.c writes, and what CPython's
 * pickler writes for the same values (cache_programs through Django),
 * protocols 2 to 5 (and 1, whose binary opcodes these are, without PROTO).  Only the opcodes those use are read: PROTO, FRAME,
 * STOP, EMPTY_DICT/EMPTY_LIST with MARK, APPEND(S) and SETITEM(S),
 * BININT/BININT1/BININT2, LONG1/LONG4, BINFLOAT, NONE, NEWTRUE/NEWFALSE,
 * SHORT_BINUNICODE/BINUNICODE/BINUNICODE8, and the memo (MEMOIZE,
 * BINPUT/LONG_BINPUT, BINGET/LONG_BINGET).  Anything else (a global, a
 * reduce, a tuple, bytes) is refused with a reason, never run: a value in
 * the cache is not trusted.
 *
 * Bounded: containers nest at most PICKLE_MAX_DEPTH deep, a list or dict
 * is never referred to twice (a string may be), integers have at most
 * JSONLD_MAX_DIGITS digits (larger than 64 bits: a jsonld marked number),
 * strings must be UTF-8 and dict keys strings.  An infinite float is the
 * marked number 1e999 (or -1e999), as Python's json reads that; NaN is
 * refused.  Bytes after STOP are ignored, as pickle.loads ignores them.
 */
#ifndef PCD_UNPICKLE_H
#define PCD_UNPICKLE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * The value pickled in data[0..len), a new reference; NULL, with why
 * filled in (a sentence naming the offset), if it is not one of those.
 */
json_t	*unpickle(const void *data, size_t len, char *why, size_t whylen);
/*
 * A cache value as the daemon writes it with these flags: 1 a pickle,
 * anything else raw JSON (value_format = json).  The same otherwise.
 */
json_t	*unpickle_value(const void *data, size_t len, uint32_t flags,
	    char *why, size_t whylen);

#endif
