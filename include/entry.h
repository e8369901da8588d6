/*
 * entry.h: one key as the cache holds it.  A plan is made of entries, the
 * writer writes them, a snapshot keeps them; each says who owns what.
 */
#ifndef PCD_ENTRY_H
#define PCD_ENTRY_H

#include <stddef.h>
#include <stdint.h>

struct entry {
	const char		*key;		/* Django cache key */
	const char		*wire;		/* on the wire; NULL: refused */
	const unsigned char	*val;
	size_t			 len;
	uint64_t		 servers;	/* bit i: on server i */
	uint32_t		 flags;
	uint32_t		 wirelen;	/* Redis keys: any length */
	uint8_t			 family;	/* enum family */
	uint8_t			 phase;		/* family_phase(family) */
	uint8_t			 subject;	/* key + subject: the uuid,
						   run key, domain... */
};

/* What the key names within its family (a program's uuid, ...). */
static inline const char *
entry_subject(const struct entry *e)
{
	return e->key + e->subject;
}

#endif
