/*
 * keys.h: the Django cache key function, as the LMS applies it.
 *
 * A cache key such as "course-programs-course-v1:edX+DemoX+1T2025" becomes
 * the memcached key the LMS reads:
 *   edx     quote_plus(prefix) ":" quote_plus(version) ":" quote_plus(key),
 *           replaced by its 32-hex-digit MD4 or BLAKE2b-128 digest when longer
 *           than 250 characters (common/djangoapps/util/memcache.py safe_key);
 *   django  prefix ":" version ":" key, unchanged (Django's default_key_func).
 * On memcached a django key must be one memcached accepts (at most 250
 * bytes, no space or control character); on Redis (django-redis) any key
 * is written as it is: Redis keys are binary and django-redis validates
 * nothing, so the LMS reads long keys unchanged.
 * Upstream: edx-platform's common/djangoapps/util/memcache.py;
 * tests/unit/test_keys.c has its test vectors.
 */
#ifndef PCD_KEYS_H
#define PCD_KEYS_H

#include <stddef.h>

#include "util.h"

/* memcached's key limit, in bytes (Redis has none). */
#define KEY_MAX		250

enum key_function {
	KEYFN_EDX,
	KEYFN_DJANGO,
	/*
	 * django on Redis: any key, any length (Redis keys are binary, and
	 * django-redis validates nothing; Django's own RedisCache only warns).
	 * Not a configuration name: [redis] key_function = django gives it.
	 */
	KEYFN_DJANGO_ANY
};

enum key_hash {
	KEYHASH_MD4,
	KEYHASH_BLAKE2B
};

struct keyfn {
	enum key_function	 fn;
	enum key_hash		 hash;
	char			*prefix;	/* as configured */
	char			*version;	/* as configured */
};

/* Copy the settings into kf (which owns copies of the strings). */
void	key_init(struct keyfn *, enum key_function, enum key_hash,
	    const char *prefix, const char *version);
void	key_clear(struct keyfn *);

/*
 * Write the wire key for a cache key (UTF-8, keylen bytes, which may
 * include NULs) into out, replacing what it held (NUL-terminated; out->len
 * is its length).  0, or -1 if this key function cannot make a key the
 * cache accepts: KEYFN_DJANGO with a key over 250 bytes or with bytes
 * below 33 or equal to 127 (Django raises InvalidCacheKey, pymemcache
 * MemcacheIllegalInputError).  KEYFN_DJANGO_ANY and edx never fail (edx
 * keys are printable ASCII, at most 250 bytes).
 */
int	key_make(const struct keyfn *, const char *key, size_t keylen,
	    struct buf *out);

/*
 * key_make into a fixed buffer (readers, --show, benches): the wire key's
 * length, or -1 if key_make fails or the key is longer than KEY_MAX (a long
 * Redis key: these look at memcached-sized keys only).
 */
int	key_make_short(const struct keyfn *, const char *key, size_t keylen,
	    char out[KEY_MAX + 1]);

/*
 * Python's urllib.parse.quote_plus(s) (safe=''), appended to b: keeps
 * A-Z a-z 0-9 _ . - ~, turns space into '+' and every other byte into %XX
 * (upper-case hex).  Bytes that are not valid UTF-8 are quoted as they are.
 */
void	key_quote_plus(struct buf *b, const char *s, size_t len);

/* Lower-case hex digests, 32 digits + NUL (nettle MD4, libsodium BLAKE2b). */
void	key_md4_hex(const void *, size_t, char out[33]);
void	key_blake2b128_hex(const void *, size_t, char out[33]);

#endif
