/*
 * place.c: pymemcache's rendezvous hashing over murmur3_32.
 *
 * pymemcache hashes the code points of a Python str, each masked to 8 bits,
 * so the hash here runs over a stream of units fed one at a time: bytes for
 * murmur3_32, decoded code points for place_rendezvous.  Nothing allocates.
 */
#include <stdint.h>
#include <string.h>

#include "place.h"

#define MM3_C1		0xcc9e2d51U
#define MM3_C2		0x1b873593U

/* A MurmurHash3_x86_32 in progress. */
struct mm3 {
	uint32_t	h1;
	uint32_t	block;		/* pending units, little-endian */
	unsigned int	nblock;		/* how many are pending, 0-3 */
	uint32_t	len;		/* units so far (only mod 2^32 matters) */
};

/* Rotate x left by r bits (0 < r < 32). */
static uint32_t
mm3_rotl(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

/* Scramble a block or the tail before it meets h1. */
static uint32_t
mm3_mixk(uint32_t k1)
{
	k1 *= MM3_C1;
	k1 = mm3_rotl(k1, 15);
	k1 *= MM3_C2;
	return k1;
}

/* Start a hash. */
static void
mm3_init(struct mm3 *m, uint32_t seed)
{
	m->h1 = seed;
	m->block = 0;
	m->nblock = 0;
	m->len = 0;
}

/* Feed one unit (a byte, or a code point's low 8 bits). */
static void
mm3_unit(struct mm3 *m, uint32_t unit)
{
	m->block |= (unit & 0xff) << (8 * m->nblock);
	m->len++;
	if (++m->nblock < 4)
		return;
	m->h1 ^= mm3_mixk(m->block);
	m->h1 = mm3_rotl(m->h1, 13);
	m->h1 = m->h1 * 5 + 0xe6546b64U;
	m->block = 0;
	m->nblock = 0;
}

/* Fold in the tail and the length and finalise. */
static uint32_t
mm3_final(struct mm3 *m)
{
	uint32_t	h1 = m->h1;

	if (m->nblock != 0)
		h1 ^= mm3_mixk(m->block);
	h1 ^= m->len;
	h1 ^= h1 >> 16;
	h1 *= 0x85ebca6bU;
	h1 ^= h1 >> 13;
	h1 *= 0xc2b2ae35U;
	h1 ^= h1 >> 16;
	return h1;
}

/* MurmurHash3_x86_32 of len bytes. */
uint32_t
murmur3_32(const void *data, size_t len, uint32_t seed)
{
	const unsigned char	*p = data;
	struct mm3		 m;
	size_t			 i;

	mm3_init(&m, seed);
	for (i = 0; i < len; i++)
		mm3_unit(&m, p[i]);
	return mm3_final(&m);
}

/*
 * Decode one code point from well-formed UTF-8 (Unicode table 3-7, as
 * Python's strict decoder), returning the bytes used.  A byte that does not
 * start a well-formed sequence is one unit, U+DC80..U+DCFF as Python's
 * surrogateescape makes it, so its low 8 bits are the byte itself.
 */
static size_t
place_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char	c = s[0], lo = 0x80, hi = 0xbf;
	size_t		need, i;
	uint32_t	v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		v = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		v = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		goto invalid;
	if (len <= need)
		goto invalid;
	for (i = 1; i <= need; i++) {
		if (s[i] < lo || s[i] > hi)
			goto invalid;
		v = (v << 6) | (s[i] & 0x3f);
		lo = 0x80;
		hi = 0xbf;
	}
	*cp = v;
	return need + 1;

invalid:
	*cp = 0xdc00 | c;
	return 1;
}

/* Feed the code points of a UTF-8 string. */
static void
place_feed(struct mm3 *m, const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	uint32_t		 cp;
	size_t			 off = 0;

	while (off < len) {
		off += place_decode(p + off, len - off, &cp);
		mm3_unit(m, cp);
	}
}

/* A node's score for a key: murmur3_32(f"{node}-{key}", 0) over a str. */
static uint32_t
place_score(const char *node, const char *key, size_t keylen)
{
	struct mm3	m;

	mm3_init(&m, 0);
	place_feed(&m, node, strlen(node));
	mm3_unit(&m, '-');
	place_feed(&m, key, keylen);
	return mm3_final(&m);
}

/* Compare two UTF-8 strings as Python compares str: by code point. */
static int
place_compare(const char *a, const char *b)
{
	const unsigned char	*pa = (const unsigned char *)a;
	const unsigned char	*pb = (const unsigned char *)b;
	size_t			 la = strlen(a), lb = strlen(b), n;
	uint32_t		 ca, cb;

	while (la != 0 && lb != 0) {
		n = place_decode(pa, la, &ca);
		pa += n;
		la -= n;
		n = place_decode(pb, lb, &cb);
		pb += n;
		lb -= n;
		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
	if (la == lb)
		return 0;
	return la < lb ? -1 : 1;
}

/*
 * RendezvousHash.get_node: the highest score wins; on a tie the winner is
 * max(str(node), str(winner)).  A repeated node name keeps its first index,
 * as pymemcache keeps only one (add_node skips names it has).
 */
size_t
place_rendezvous(const char *const *nodes, size_t n, const char *key,
    size_t keylen)
{
	size_t		i, winner = 0;
	uint32_t	score, high;

	if (n <= 1)
		return 0;
	high = place_score(nodes[0], key, keylen);
	for (i = 1; i < n; i++) {
		score = place_score(nodes[i], key, keylen);
		if (score > high) {
			high = score;
			winner = i;
		} else if (score == high &&
		    place_compare(nodes[i], nodes[winner]) > 0)
			winner = i;
	}
	return winner;
}
