/*
 * map.c: string-keyed hash map with insertion order, for the dict-shaped
 * bookkeeping of a refresh (tens of thousands of keys).
 */
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "util.h"

void
map_init(struct map *m)
{
	memset(m, 0, sizeof *m);
}

void
map_free(struct map *m)
{
	size_t	i;

	for (i = 0; i < m->nitems; i++)
		free(m->items[i].key);
	free(m->items);
	free(m->slots);
	map_init(m);
}

/* FNV-1a, 64 bits: fast and good enough for keys we generate. */
uint64_t
map_hash(const void *p, size_t len)
{
	const unsigned char	*s = p;
	uint64_t		 h = 0xcbf29ce484222325ULL;
	size_t			 i;

	for (i = 0; i < len; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Slot of key, or of the empty slot where it would go. */
static size_t
map_slot(const struct map *m, const char *key, size_t keylen, uint64_t h)
{
	size_t	mask = m->nslots - 1, i = (size_t)h & mask;

	for (;;) {
		uint32_t	 s = m->slots[i];
		struct map_item	*it;

		if (s == 0)
			return i;
		it = &m->items[s - 1];
		if (it->hash == h && it->keylen == keylen &&
		    memcmp(it->key, key, keylen) == 0)
			return i;
		i = (i + 1) & mask;
	}
}

/* Double the slot table (kept under 1/2 full) and re-index. */
static void
map_grow(struct map *m)
{
	size_t	i, n = m->nslots ? m->nslots * 2 : 16;

	free(m->slots);
	m->slots = xcalloc(n, sizeof *m->slots);
	m->nslots = n;
	for (i = 0; i < m->nitems; i++) {
		struct map_item *it = &m->items[i];

		m->slots[map_slot(m, it->key, it->keylen, it->hash)] =
		    (uint32_t)(i + 1);
	}
}

struct map_item *
map_find(const struct map *m, const char *key, size_t keylen)
{
	uint32_t	s;

	if (m->nslots == 0)
		return NULL;
	s = m->slots[map_slot(m, key, keylen, map_hash(key, keylen))];
	return s == 0 ? NULL : &m->items[s - 1];
}

void *
map_get(const struct map *m, const char *key, size_t keylen)
{
	struct map_item	*it = map_find(m, key, keylen);

	return it == NULL ? NULL : it->val;
}

struct map_item *
map_put(struct map *m, const char *key, size_t keylen)
{
	uint64_t	 h = map_hash(key, keylen);
	size_t		 slot;
	struct map_item	*it;

	if ((m->nitems + 1) * 2 > m->nslots)
		map_grow(m);
	slot = map_slot(m, key, keylen, h);
	if (m->slots[slot] != 0)
		return &m->items[m->slots[slot] - 1];
	if (m->nitems == m->capitems) {
		m->capitems = m->capitems ? m->capitems * 2 : 16;
		m->items = xreallocarray(m->items, m->capitems,
		    sizeof *m->items);
	}
	it = &m->items[m->nitems];
	it->key = xmalloc(keylen + 1);
	memcpy(it->key, key, keylen);
	it->key[keylen] = '\0';
	it->keylen = keylen;
	it->val = NULL;
	it->hash = h;
	m->slots[slot] = (uint32_t)(++m->nitems);
	return it;
}
