/*
 * pickle.h: a Python pickle encoder for JSON-shaped values.
 *
 * The output is what CPython's C pickler (Modules/_pickle.c, 3.11) writes
 * for the same value built by simplejson/json and the cache_programs
 * command: protocol 4/5 framing (64 KiB target, headers dropped from frames
 * under 4 bytes, strings of 64 KiB or more written outside frames), MEMOIZE
 * after every str/list/dict, BINGET for objects seen before, batches of 1000
 * items with the exact 1-item and multiple-of-1000 rules.  Protocol 2 and 3
 * use BINUNICODE and BINPUT instead and have no frames.
 * The reference is CPython's Modules/_pickle.c; tests/unit/test_pickle.c
 * holds bytes CPython 3.11 wrote.
 *
 * Object identity (which decides BINGET against a repeated string) is
 * modelled as the Python values have it:
 *   - PICKLE_KEY: a dict key of a parsed JSON document.  All keys with equal
 *     text in one document are one object (the decoder's key memo).
 *   - PICKLE_NEW: a fresh object (JSON string values, strings the command
 *     builds).  Never shared.
 *   - pickle_str_obj(): shared by an explicit identity pointer (a program's
 *     uuid object that upstream appends to one list twice).
 * Whatever the kind, "" and one-character strings whose code point is below
 * 256 are CPython singletons and always shared.
 *
 * Usage: pickle_init, pickle_begin, one value (containers opened with their
 * item count and closed with pickle_end), pickle_finish, then take p->out.
 * Errors (nesting deeper than PICKLE_MAX_DEPTH, or a value that does not
 * match the item counts announced) are sticky: every call after one is a
 * no-op and pickle_finish returns -1.
 *
 * PICKLE_KEY text is copied into the memo, so the caller's string need only
 * live for the call; pickle_str_obj's identity pointer is only compared.
 */
#ifndef PCD_PICKLE_H
#define PCD_PICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util.h"

/* CPython raises RecursionError near 1000; refuse well before. */
#define PICKLE_MAX_DEPTH	200

enum pickle_ref {
	PICKLE_NEW,
	PICKLE_KEY
};

struct pickle_memo;			/* private */

struct pickle_level {
	char	 kind;			/* 'd' dict, 'l' list */
	size_t	 total;			/* items announced */
	size_t	 done;			/* items (pairs for a dict) written */
	bool	 half;			/* dict: key written, value pending */
};

struct pickle {
	struct buf		 out;		/* the pickle bytes */
	int			 proto;		/* 2..5 */
	bool			 framing;	/* protocol 4+, after PROTO */
	long			 frame_start;	/* open frame header offset, or -1 */
	uint32_t		 memo_next;	/* next memo index */
	int			 depth;
	bool			 complete;	/* the top-level value is written */
	bool			 failed;
	const char		*error;		/* why failed (static text) */
	struct pickle_level	 level[PICKLE_MAX_DEPTH];
	struct pickle_memo	*memo;
};

void	pickle_init(struct pickle *, int proto);
/* Free the memo and the output buffer (if not taken). */
void	pickle_free(struct pickle *);
/* Forget the memo, output and error, ready for another value. */
void	pickle_reset(struct pickle *);

/* Reset, write PROTO, then framing on (protocol 4 and up). */
void	pickle_begin(struct pickle *);
void	pickle_none(struct pickle *);
void	pickle_bool(struct pickle *, bool);
void	pickle_int(struct pickle *, int64_t);
void	pickle_float(struct pickle *, double);
/* A JSON number of any size from its text: an int (LONG1/LONG4 beyond
 * 64 bits) or a float (inf when it overflows), as Python's json makes it. */
void	pickle_number(struct pickle *, const char *, size_t);
void	pickle_str(struct pickle *, const char *, size_t, enum pickle_ref);
void	pickle_str_obj(struct pickle *, const char *, size_t, const void *ident);
/* Open a container of exactly n items (dict: n key/value pairs). */
void	pickle_dict_begin(struct pickle *, size_t n);
void	pickle_list_begin(struct pickle *, size_t n);
/* Close the innermost container; all its items must have been written. */
void	pickle_end(struct pickle *);
/* STOP and commit the last frame. 0, or -1 if an error happened. */
int	pickle_finish(struct pickle *);
/* The reason for the sticky error, or NULL if there is none. */
const char	*pickle_error(const struct pickle *);

/*
 * Encode a jansson value: object keys as PICKLE_KEY, strings as PICKLE_NEW,
 * integers, reals, true/false/null; objects in jansson's (insertion) order.
 * Returns 0, or -1 if p has failed (too deep).
 */
int	pickle_json(struct pickle *, const json_t *);

/*
 * A checkpoint inside the outermost dict, taken between two items, so that
 * the rest of the dict can be written later (a program's "pathway_ids" is
 * only known once every pathway has been read).  A checkpoint is small; the
 * bytes it refers to are the first len bytes of the buffer it was taken on,
 * which the caller keeps (a copy, or the buffer itself taken with buf_steal)
 * and may resume from any number of times.  Those bytes may even be a value
 * finished from the checkpoint: finishing only rewrites the header of the
 * frame open at the checkpoint, or drops it and moves its payload, which is
 * under 4 bytes then and kept in small.
 */
struct pickle_ckpt {
	size_t		len;
	long		frame_start;
	uint32_t	memo_next;
	size_t		total;
	size_t		done;
	int		proto;
	bool		valid;		/* taken where a checkpoint may be */
	unsigned char	small[3];	/* the open frame's payload if < 4 bytes */
};

/*
 * Take a checkpoint.  Valid only at depth 1, in a dict, between items, with
 * no error; otherwise resuming from it fails.
 */
void	pickle_checkpoint(const struct pickle *, struct pickle_ckpt *);
/*
 * Continue from a checkpoint: p (initialised) is reset, its output becomes
 * the first ck->len bytes of data (copied; data may also be &p->out, which
 * is then truncated in place) and the state at the checkpoint is restored,
 * protocol included.  The memo starts empty, so the items written after
 * resuming must not refer to memo entries from before (strings "" and the
 * one-character singletons included); ints and fresh strings are fine.
 */
void	pickle_resume(struct pickle *, const struct buf *data,
	    const struct pickle_ckpt *);

#endif
