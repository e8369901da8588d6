/*
 * map.h: a string-keyed hash map (open addressing, insertion order kept).
 *
 * Insertion order matters here: cache_programs builds its key families as
 * Python dicts, where a key keeps its first position when updated.
 * Keys are copied; values are borrowed pointers.
 */
#ifndef PCD_MAP_H
#define PCD_MAP_H

#include <stddef.h>
#include <stdint.h>

struct map_item {
	char		*key;
	size_t		 keylen;
	void		*val;
	uint64_t	 hash;
};

struct map {
	struct map_item	*items;		/* insertion order */
	size_t		 nitems;
	size_t		 capitems;
	uint32_t	*slots;		/* index + 1 into items; 0 empty */
	size_t		 nslots;	/* power of two */
};

void	 map_init(struct map *);
/* Free the keys and tables; values are the caller's. */
void	 map_free(struct map *);
/* The value for key, or NULL. */
void	*map_get(const struct map *, const char *key, size_t keylen);
/* The item for key, or NULL. */
struct map_item	*map_find(const struct map *, const char *key, size_t keylen);
/* The item for key, created (val NULL) at the end if missing. */
struct map_item	*map_put(struct map *, const char *key, size_t keylen);
uint64_t	 map_hash(const void *, size_t);

#define MAP_FOREACH(m, it)						\
	for ((it) = (m)->items; (it) != NULL &&				\
	    (it) < (m)->items + (m)->nitems; (it)++)

#endif
