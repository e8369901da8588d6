/*
 * place.h: which memcached server a key lives on, as pymemcache's HashClient
 * (Django's PyMemcacheCache) chooses it: rendezvous hashing, the highest
 * murmur3_32(node + "-" + key, seed 0) wins, ties to the larger node name
 * (pymemcache/client/rendezvous.py, murmur3.py).  Node names are
 * "host:port" in the order of Django's LOCATION.
 *
 * pymemcache hashes a Python str: one unit per code point, masked to 8 bits,
 * and the length in code points.  Keys and node names here are UTF-8 and are
 * hashed the same way, so non-ASCII keys (django key function) land where
 * the LMS looks for them.  A byte that is not well-formed UTF-8 counts as
 * one unit of its own value (U+DC80..U+DCFF, as Python's surrogateescape
 * decodes it), in the hash and in the tie-break comparison alike.
 */
#ifndef PCD_PLACE_H
#define PCD_PLACE_H

#include <stddef.h>
#include <stdint.h>

/* MurmurHash3_x86_32 of len bytes. */
uint32_t	murmur3_32(const void *, size_t len, uint32_t seed);

/*
 * Index of the node that owns the UTF-8 key, or 0 when n is 0 or 1.  A name
 * given twice keeps its first index (pymemcache's add_node keeps one).
 * Does not allocate.
 */
size_t		place_rendezvous(const char *const *nodes, size_t n,
		    const char *key, size_t keylen);

#endif
