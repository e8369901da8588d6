/*
 * readers.h: what a wire key a reader asked for is, given the last publish
 * (operations.md: What the LMS misses): one of its keys (a miss on it is
 * "lost"), a key of one of the nine program families that it does not hold (a
 * miss is "absent": the LMS asked about a run or an org in no program), or
 * foreign (sessions, other prefixes or versions, anything else).
 *
 * The table is built once per publish from its entries (Django key, wire
 * key, family, servers).  A wire key that is not in it is decoded with the
 * configured key function: edx keys are quote_plus(prefix) ":"
 * quote_plus(version) ":" quote_plus(key) (each part unquoted back), django
 * keys prefix ":" version ":" key; the key must start with one of the
 * family templates (the longest that matches: "program-uuids-" before
 * "program-", "pathway-ids-" before "pathway-", "programs-by-type-slug-"
 * before "programs-by-type-"; no template's own keys can start with the
 * longer one), and encoding it again must give the same wire key, which
 * the LMS's key function would have sent.  An edx key longer than 250
 * characters goes on the wire as its 32-hex-digit digest: one the table
 * does not hold cannot be told from a foreign key.  A wire key longer than
 * KEY_MAX (Redis takes any length with the django key function) is looked
 * up in the table like any other; one it does not hold is not decoded and
 * counts as foreign.
 */
#ifndef PCD_READERS_H
#define PCD_READERS_H

#include <stdbool.h>
#include <stddef.h>

#include "entry.h"
#include "keys.h"

enum readers_kind {
	READERS_FOREIGN,	/* not a programs-cache key */
	READERS_HELD,		/* the publish holds it, on that server */
	READERS_ELSEWHERE,	/* it holds it, on other servers only */
	READERS_NOT_HELD	/* a family key the publish does not hold */
};

struct readers_key {
	enum readers_kind	 kind;
	int			 family;	/* catalog_family; -1: foreign */
	const struct entry	*entry;		/* HELD, ELSEWHERE: borrowed */
	/*
	 * HELD, ELSEWHERE, NOT_HELD: the LMS (Django) key, NUL-terminated:
	 * the entry's (any length), or buf; "" when foreign.  Valid while
	 * this struct and the table are.
	 */
	const char		*key;
	size_t			 keylen;
	char			 buf[KEY_MAX + 1];
};

struct readers;

/*
 * The table of n entries (borrowed: they must outlive it; entries whose
 * wire is NULL are left out) under the key function kf (copied).  The
 * first entry of a wire key wins.
 */
struct readers	*readers_new(const struct entry *v, size_t n,
		    const struct keyfn *kf);
void		 readers_free(struct readers *);
/* How many wire keys the table holds. */
size_t		 readers_size(const struct readers *);

/*
 * What the wire key (len bytes, any bytes) read from server is.  Returns
 * out->kind.  Cheap for foreign keys under another prefix (one compare),
 * a hash lookup otherwise.
 */
enum readers_kind readers_classify(const struct readers *, size_t server,
		    const char *wire, size_t len, struct readers_key *out);

/*
 * The family of a Django cache key by its template (-1 if none), and the
 * length of the template's prefix.
 */
int		 readers_family(const char *key, size_t len, size_t *prefixlen);

#endif
