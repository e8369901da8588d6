/*
 * keys.c: the memcached key the LMS reads for a Django cache key.
 */
#include <stdlib.h>
#include <string.h>

#include <nettle/md4.h>
#include <sodium.h>

#include "keys.h"
#include "log.h"

static const char	key_hexdigits[] = "0123456789abcdef";

/* Whether quote_plus leaves the byte alone: A-Z a-z 0-9 _ . - ~. */
static int
key_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-' ||
	    c == '~';
}

/* Write len bytes as lower-case hex digits, NUL-terminated. */
static void
key_hex(const unsigned char *in, size_t len, char *out)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		out[2 * i] = key_hexdigits[in[i] >> 4];
		out[2 * i + 1] = key_hexdigits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

/* Copy the settings into kf (which owns copies of the strings). */
void
key_init(struct keyfn *kf, enum key_function fn, enum key_hash hash,
    const char *prefix, const char *version)
{
	kf->fn = fn;
	kf->hash = hash;
	kf->prefix = xstrdup(prefix);
	kf->version = xstrdup(version);
}

/* Free the copied strings. */
void
key_clear(struct keyfn *kf)
{
	free(kf->prefix);
	free(kf->version);
	kf->prefix = kf->version = NULL;
}

/* Percent-encode as urllib.parse.quote_plus(s) does, onto the end of b. */
void
key_quote_plus(struct buf *b, const char *s, size_t len)
{
	static const char	 upper[] = "0123456789ABCDEF";
	const unsigned char	*p = (const unsigned char *)s;
	char			 esc[3];
	size_t			 i;

	buf_reserve(b, len);		/* enough when nothing is escaped */
	for (i = 0; i < len; i++) {
		if (key_unreserved(p[i]))
			buf_addc(b, p[i]);
		else if (p[i] == ' ')
			buf_addc(b, '+');
		else {
			esc[0] = '%';
			esc[1] = upper[p[i] >> 4];
			esc[2] = upper[p[i] & 0xf];
			buf_add(b, esc, sizeof esc);
		}
	}
}

/* MD4, safe_key's fasthash before BLAKE2b. */
void
key_md4_hex(const void *in, size_t len, char out[33])
{
	struct md4_ctx	ctx;
	uint8_t		digest[MD4_DIGEST_SIZE];

	md4_init(&ctx);
	md4_update(&ctx, len, in);
	md4_digest(&ctx, sizeof digest, digest);
	key_hex(digest, sizeof digest, out);
}

/* BLAKE2b with a 16-byte digest, safe_key's fasthash with the flag on. */
void
key_blake2b128_hex(const void *in, size_t len, char out[33])
{
	static int	initialised;
	unsigned char	digest[16];

	if (!initialised) {
		if (sodium_init() < 0)
			fatalx("sodium_init failed");
		initialised = 1;
	}
	crypto_generichash(digest, sizeof digest, in, len, NULL, 0);
	key_hex(digest, sizeof digest, out);
}

/* safe_key: quote the three parts, join them, hash the result if too long. */
static void
key_make_edx(const struct keyfn *kf, const char *key, size_t keylen,
    struct buf *out)
{
	char	digest[33];

	key_quote_plus(out, kf->prefix, strlen(kf->prefix));
	buf_addc(out, ':');
	key_quote_plus(out, kf->version, strlen(kf->version));
	buf_addc(out, ':');
	key_quote_plus(out, key, keylen);

	if (out->len > KEY_MAX) {
		if (kf->hash == KEYHASH_BLAKE2B)
			key_blake2b128_hex(out->data, out->len, digest);
		else
			key_md4_hex(out->data, out->len, digest);
		buf_truncate(out, 0);
		buf_add(out, digest, 32);
	}
}

/* Whether memcached (and Django's validate_key) would refuse this byte. */
static int
key_bad_byte(unsigned char c)
{
	return c < 33 || c == 127;
}

/* Whether any of len bytes would be refused. */
static int
key_bad_bytes(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i;

	for (i = 0; i < len; i++) {
		if (key_bad_byte(p[i]))
			return 1;
	}
	return 0;
}

/*
 * default_key_func: prefix:version:key; on memcached, -1 where Django
 * would raise.
 */
static int
key_make_django(const struct keyfn *kf, const char *key, size_t keylen,
    struct buf *out)
{
	size_t	plen, vlen;

	plen = strlen(kf->prefix);
	vlen = strlen(kf->version);
	/* Redis: any byte, any length (django-redis validates nothing). */
	if (kf->fn == KEYFN_DJANGO && (plen > KEY_MAX || vlen > KEY_MAX ||
	    keylen > KEY_MAX || plen + 1 + vlen + 1 + keylen > KEY_MAX ||
	    key_bad_bytes(kf->prefix, plen) ||
	    key_bad_bytes(kf->version, vlen) || key_bad_bytes(key, keylen)))
		return -1;
	buf_reserve(out, plen + vlen + keylen + 2);
	buf_add(out, kf->prefix, plen);
	buf_addc(out, ':');
	buf_add(out, kf->version, vlen);
	buf_addc(out, ':');
	buf_add(out, key, keylen);
	return 0;
}

/* Write the wire key for a cache key; -1 if none is acceptable. */
int
key_make(const struct keyfn *kf, const char *key, size_t keylen,
    struct buf *out)
{
	buf_truncate(out, 0);
	if (kf->fn == KEYFN_DJANGO || kf->fn == KEYFN_DJANGO_ANY)
		return key_make_django(kf, key, keylen, out);
	key_make_edx(kf, key, keylen, out);
	return 0;
}

/*
 * The same into a fixed buffer, for the tools that look at memcached-sized
 * keys (readers, --show, the watch benches): its length, or -1 if there is
 * none or it is longer than KEY_MAX.
 */
int
key_make_short(const struct keyfn *kf, const char *key, size_t keylen,
    char out[KEY_MAX + 1])
{
	struct buf	w;
	int		n = -1;

	buf_init(&w);
	if (key_make(kf, key, keylen, &w) == 0 && w.len <= KEY_MAX) {
		memcpy(out, w.data, w.len);
		out[w.len] = '\0';
		n = (int)w.len;
	}
	buf_free(&w);
	return n;
}
