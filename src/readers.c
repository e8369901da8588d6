/*
 * readers.c: classify the wire keys readers ask for against the last
 * publish: its table of wire keys, and the nine family templates.
 */
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "map.h"
#include "readers.h"
#include "util.h"

struct readers {
	struct map	 table;		/* wire key -> entry (borrowed) */
	struct keyfn	 kf;
	char		*prefix;	/* every family key's wire prefix */
	size_t		 prefixlen;
};

/*
 * The templates of catalog.c, the longer first where one starts another
 * ("program-uuids-" is a "program-" prefix; a program's UUID cannot start
 * with "uuids-", a pathway id with "ids-", a site id with "slug-").
 */
static const struct {
	const char	*prefix;
	size_t		 len;
	int		 family;
} templates[] = {
#define T(s, f)	{ (s), sizeof (s) - 1, (f) }
	T("program-uuids-", FAM_SITE_PROGRAMS),
	T("program-", FAM_PROGRAM),
	T("pathway-ids-", FAM_SITE_PATHWAYS),
	T("pathway-", FAM_PATHWAY),
	T("course-programs-", FAM_COURSE),
	T("catalog-course-programs-", FAM_CATALOG_COURSE),
	T("programs-by-type-slug-", FAM_TYPE_SLUG),
	T("programs-by-type-", FAM_TYPE),
	T("organization-programs-", FAM_ORG),
#undef T
};

/* The family of a Django key by its template, or -1. */
int
readers_family(const char *key, size_t len, size_t *prefixlen)
{
	size_t	i;

	for (i = 0; i < sizeof templates / sizeof templates[0]; i++) {
		if (len < templates[i].len ||
		    memcmp(key, templates[i].prefix, templates[i].len) != 0)
			continue;
		if (len == templates[i].len)
			return -1;	/* the template, filled with nothing */
		if (prefixlen != NULL)
			*prefixlen = templates[i].len;
		return templates[i].family;
	}
	return -1;
}

struct readers *
readers_new(const struct entry *v, size_t n, const struct keyfn *kf)
{
	struct readers	*r;
	struct map_item	*it;
	struct buf	 b;
	size_t		 i;

	r = xcalloc(1, sizeof *r);
	map_init(&r->table);
	for (i = 0; i < n; i++) {
		if (v[i].wire == NULL)
			continue;
		it = map_put(&r->table, v[i].wire, v[i].wirelen);
		if (it->val == NULL)
			it->val = (void *)(uintptr_t)&v[i];
	}
	key_init(&r->kf, kf->fn, kf->hash, kf->prefix, kf->version);
	buf_init(&b);
	if (kf->fn == KEYFN_EDX) {
		key_quote_plus(&b, kf->prefix, strlen(kf->prefix));
		buf_addc(&b, ':');
		key_quote_plus(&b, kf->version, strlen(kf->version));
		buf_addc(&b, ':');
	} else
		buf_printf(&b, "%s:%s:", kf->prefix, kf->version);
	r->prefix = (char *)buf_steal(&b, &r->prefixlen);
	return r;
}

void
readers_free(struct readers *r)
{
	if (r == NULL)
		return;
	map_free(&r->table);
	key_clear(&r->kf);
	free(r->prefix);
	free(r);
}

size_t
readers_size(const struct readers *r)
{
	return r->table.nitems;
}

/* Whether s is 32 lower-case hex digits: safe_key's digest of a long key. */
static bool
is_digest(const char *s, size_t len)
{
	size_t	i;

	if (len != 32)
		return false;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' &&
		    s[i] <= 'f')))
			return false;
	return true;
}

/* urllib.parse.unquote_plus, into out; its length, or -1 if malformed. */
static int
unquote_plus(const char *s, size_t len, char out[KEY_MAX + 1])
{
	size_t	i, n = 0;
	int	hi, lo;

	for (i = 0; i < len && n < KEY_MAX; i++) {
		if (s[i] == '+')
			out[n++] = ' ';
		else if (s[i] == '%') {
			if (len - i < 3 || (hi = hex_digit((unsigned char)s[i + 1]))
			    == -1 || (lo = hex_digit((unsigned char)s[i + 2])) == -1)
				return -1;
			out[n++] = (char)(hi << 4 | lo);
			i += 2;
		} else
			out[n++] = s[i];
	}
	if (i < len)
		return -1;
	out[n] = '\0';
	return (int)n;
}

/* A key held by the publish. */
static enum readers_kind
held(const struct entry *e, size_t server, struct readers_key *out)
{
	out->kind = server < 64 && (e->servers >> server & 1) ?
	    READERS_HELD : READERS_ELSEWHERE;
	out->family = e->family;
	out->entry = e;
	out->key = e->key;
	out->keylen = strlen(e->key);
	return out->kind;
}

enum readers_kind
readers_classify(const struct readers *r, size_t server, const char *wire,
    size_t len, struct readers_key *out)
{
	const struct entry	*e;
	char			 again[KEY_MAX + 1];
	int			 n, fam;

	out->kind = READERS_FOREIGN;
	out->family = -1;
	out->entry = NULL;
	out->buf[0] = '\0';
	out->key = out->buf;
	out->keylen = 0;
	if (r->kf.fn == KEYFN_EDX && is_digest(wire, len)) {
		if ((e = map_get(&r->table, wire, len)) != NULL)
			return held(e, server, out);
		return READERS_FOREIGN;		/* a digest of anything */
	}
	if (len <= r->prefixlen || memcmp(wire, r->prefix, r->prefixlen) != 0)
		return READERS_FOREIGN;
	if ((e = map_get(&r->table, wire, len)) != NULL)
		return held(e, server, out);	/* any length (Redis) */
	/* Longer than a memcached key: not decoded (out->buf's size). */
	if (len > KEY_MAX)
		return READERS_FOREIGN;

	wire += r->prefixlen;
	len -= r->prefixlen;
	if (r->kf.fn == KEYFN_EDX) {
		if ((n = unquote_plus(wire, len, out->buf)) == -1) {
			out->buf[0] = '\0';
			return READERS_FOREIGN;
		}
	} else {
		memcpy(out->buf, wire, len);
		out->buf[len] = '\0';
		n = (int)len;
	}
	if ((fam = readers_family(out->buf, (size_t)n, NULL)) == -1 ||
	    key_make_short(&r->kf, out->buf, (size_t)n, again) !=
	    (int)(len + r->prefixlen) ||
	    memcmp(again + r->prefixlen, wire, len) != 0) {
		out->buf[0] = '\0';
		return READERS_FOREIGN;
	}
	out->kind = READERS_NOT_HELD;
	out->family = fam;
	out->keylen = (size_t)n;
	return READERS_NOT_HELD;
}
