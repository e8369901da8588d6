/*
 * snapshot.c: the published generation in memory and on disk.
 *
 * File layout (integers little-endian):
 *
 *	header	 "PCDSNAP\n", u32 version, u32 0, u64 entries, u64 settings
 *		 length, u64 body length, u64 creation time (unix ms)
 *	settings "name=value\n" lines (snapshot_settings)
 *	body	 per entry: u32 key length, u32 wire length, u64 value length,
 *		 u64 servers, u32 flags, u8 family, 3 zero bytes; the key and
 *		 a NUL, the wire key and a NUL, the value, zeros to 8 bytes
 *	trailer	 BLAKE2b-256 of everything before it
 *
 * Keys are NUL-terminated in the file so that a loaded snapshot can point
 * straight into the mapping.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"
#include "map.h"
#include "snapshot.h"
#include "util.h"

#define MAGIC		"PCDSNAP\n"
#define HDR_LEN		56
#define ENT_LEN		32
#define SUM_LEN		32
#define CHUNK_LEN	(256 * 1024)
#define WBUF_LEN	(256 * 1024)

struct snapshot {
	struct snapshot_entry	 *entries;
	size_t			  n;
	size_t			  cap;
	size_t			  bytes;
	uint64_t		  created;
	char			**chunks;	/* wire keys; never moved */
	size_t			  nchunks;
	size_t			  used;		/* in the last chunk */
	void			 *map;		/* the loaded file */
	size_t			  maplen;
	struct catalog		 *view;		/* snapshot_catalog */
	char			**domains;	/* per site: programs published */
	uint64_t		 *programs;
	size_t			  nsites;
};

/* Record (or update) a site's count. */
static void
site_put(struct snapshot *s, const char *domain, size_t dlen, uint64_t n)
{
	size_t	i;

	for (i = 0; i < s->nsites; i++) {
		if (strlen(s->domains[i]) == dlen &&
		    memcmp(s->domains[i], domain, dlen) == 0) {
			s->programs[i] = n;
			return;
		}
	}
	s->domains = xreallocarray(s->domains, s->nsites + 1,
	    sizeof *s->domains);
	s->programs = xreallocarray(s->programs, s->nsites + 1,
	    sizeof *s->programs);
	s->domains[s->nsites] = xstrndup(domain, dlen);
	s->programs[s->nsites++] = n;
}

long long
snapshot_site_programs(const struct snapshot *s, const char *domain)
{
	size_t	i;

	for (i = 0; i < s->nsites; i++)
		if (strcmp(s->domains[i], domain) == 0)
			return (long long)s->programs[i];
	return -1;
}

struct snapshot *
snapshot_new(void)
{
	struct snapshot	*s;

	s = xcalloc(1, sizeof *s);
	s->created = wall_ms();
	return s;
}

/* Room for len bytes that stay where they are. */
static char *
arena_alloc(struct snapshot *s, size_t len)
{
	char	*p;

	if (s->nchunks == 0 || s->used + len > CHUNK_LEN) {
		s->chunks = xreallocarray(s->chunks, s->nchunks + 1,
		    sizeof *s->chunks);
		s->chunks[s->nchunks++] = xmalloc(len > CHUNK_LEN ? len :
		    CHUNK_LEN);
		s->used = 0;
	}
	p = s->chunks[s->nchunks - 1] + s->used;
	s->used += len;
	return p;
}

/* Append an entry whose strings are already where they will stay. */
static void
push(struct snapshot *s, const struct snapshot_entry *e)
{
	if (s->n == s->cap) {
		s->cap = s->cap == 0 ? 256 : s->cap * 2;
		s->entries = xreallocarray(s->entries, s->cap,
		    sizeof *s->entries);
	}
	s->entries[s->n++] = *e;
	s->bytes += e->len;
}

void
snapshot_add(struct snapshot *s, const struct snapshot_entry *e)
{
	struct snapshot_entry	 c = *e;
	char			*w;

	w = arena_alloc(s, (size_t)e->wirelen + 1);
	memcpy(w, e->wire, e->wirelen);
	w[e->wirelen] = '\0';
	c.wire = w;
	push(s, &c);
}

void
snapshot_free(struct snapshot *s)
{
	size_t	i;

	if (s == NULL)
		return;
	for (i = 0; i < s->nsites; i++)
		free(s->domains[i]);
	free(s->domains);
	free(s->programs);
	for (i = 0; i < s->nchunks; i++)
		free(s->chunks[i]);
	free(s->chunks);
	free(s->entries);
	if (s->map != NULL)
		munmap(s->map, s->maplen);
	if (s->view != NULL) {
		for (i = 0; i < s->view->nsites; i++)
			catalog_site_free(s->view->sites[i]);
		free(s->view->sites);
		free(s->view->entries);
		free(s->view->written);
		free(s->view);
	}
	free(s);
}

struct snapshot *
snapshot_from_catalog(const struct catalog *c, const struct store *st,
    const struct keyfn *kf, uint32_t flags, const struct snapshot *keep)
{
	struct snapshot		*s;
	struct snapshot_entry	 e;
	struct map		 have;
	size_t			 idx[STORE_MAX_SERVERS], i, j, n;
	char			 wire[KEY_MAX + 1];
	int			 wlen;

	s = snapshot_new();
	s->entries = xreallocarray(NULL, c->nentries + 1, sizeof *s->entries);
	s->cap = c->nentries + 1;
	for (i = 0; i < c->nentries; i++) {
		const struct catalog_entry *ce = &c->entries[i];

		/* Keys the key function refuses were not written either. */
		wlen = key_make(kf, ce->key, strlen(ce->key), wire);
		if (wlen == -1)
			continue;
		memset(&e, 0, sizeof e);
		e.key = ce->key;
		e.wire = wire;
		e.wirelen = (uint16_t)wlen;
		e.val = ce->val;
		e.len = ce->len;
		e.flags = flags;
		e.family = (uint8_t)ce->family;
		n = store_place(st, wire, (size_t)wlen, idx);
		for (j = 0; j < n; j++)
			e.servers |= (uint64_t)1 << idx[j];
		snapshot_add(s, &e);
	}
	if (keep != NULL)
		for (i = 0; i < keep->nsites; i++)
			site_put(s, keep->domains[i], strlen(keep->domains[i]),
			    keep->programs[i]);
	for (i = 0; i < c->nsites; i++)
		if (c->sites[i]->published_programs > 0 ||
		    c->sites[i]->has_data)
			site_put(s, c->sites[i]->domain,
			    strlen(c->sites[i]->domain),
			    c->sites[i]->published_programs);
	if (keep != NULL) {
		map_init(&have);
		for (i = 0; i < c->nentries; i++)
			map_put(&have, c->entries[i].key,
			    strlen(c->entries[i].key));
		for (i = 0; i < keep->n; i++) {
			const struct snapshot_entry *k = &keep->entries[i];

			if (map_find(&have, k->key, strlen(k->key)) == NULL)
				push(s, k);	/* keep outlives s */
		}
		map_free(&have);
	}
	return s;
}

size_t
snapshot_count(const struct snapshot *s)
{
	return s->n;
}

size_t
snapshot_bytes(const struct snapshot *s)
{
	return s->bytes;
}

const struct snapshot_entry *
snapshot_entries(const struct snapshot *s)
{
	return s->entries;
}

uint64_t
snapshot_created(const struct snapshot *s)
{
	return s->created;
}

const struct catalog *
snapshot_catalog(struct snapshot *s)
{
	struct catalog	*c;
	size_t		 i;

	if (s->view != NULL)
		return s->view;
	c = xcalloc(1, sizeof *c);
	c->entries = xcalloc(s->n + 1, sizeof *c->entries);
	c->written = xcalloc(s->n + 1, sizeof *c->written);
	c->nentries = s->n;
	for (i = 0; i < s->n; i++) {
		/* Borrowed, read-only: the view is never freed as a catalog. */
		c->entries[i].key = (char *)(uintptr_t)s->entries[i].key;
		c->entries[i].val = s->entries[i].val;
		c->entries[i].len = s->entries[i].len;
		c->entries[i].family = (enum catalog_family)
		    s->entries[i].family;
		c->written[i] = true;
	}
	/* Sites with nothing but their last count, for the shrink guard. */
	c->sites = xcalloc(s->nsites + 1, sizeof *c->sites);
	for (i = 0; i < s->nsites; i++) {
		struct catalog_site *site;

		site = catalog_site_new(s->domains[i], -1);
		site->status = SITE_FAILED;
		site->has_data = false;
		site->published_programs = (size_t)s->programs[i];
		c->sites[c->nsites++] = site;
	}
	s->view = c;
	return c;
}

/* The settings' names for enums, as the configuration spells them. */
static const char *
keyfn_name(enum key_function f)
{
	return f == KEYFN_DJANGO ? "django" : f == KEYFN_DJANGO_ANY ?
	    "django-redis" : "edx";
}

static const char *
keyhash_name(enum key_hash h)
{
	return h == KEYHASH_BLAKE2B ? "blake2b" : "md4";
}

static const char *
dist_name(enum cfg_distribution d)
{
	switch (d) {
	case DIST_KETAMA:
		return "ketama";
	case DIST_ALL:
		return "all";
	case DIST_RENDEZVOUS:
	default:
		return "rendezvous";
	}
}

char *
snapshot_settings(const struct cfg *cfg)
{
	struct buf	b;
	size_t		i;

	buf_init(&b);
	buf_printf(&b, "key_function=%s\n", keyfn_name(cfg->key_function));
	buf_printf(&b, "key_prefix=%s\n", cfg->key_prefix);
	buf_printf(&b, "key_version=%s\n", cfg->key_version);
	buf_printf(&b, "long_key_hash=%s\n", keyhash_name(cfg->long_key_hash));
	buf_printf(&b, "value_format=%s\n",
	    cfg->value_format == VALUE_JSON ? "json" : "pickle");
	buf_printf(&b, "pickle_protocol=%d\n", cfg->pickle_protocol);
	buf_printf(&b, "pathway_ids=%s\n",
	    cfg->pathway_ids == PATHWAY_IDS_IDS ? "ids" : "keys");
	buf_printf(&b, "distribution=%s\n", dist_name(cfg->distribution));
	buf_adds(&b, "servers=");
	for (i = 0; i < cfg->nservers; i++)
		buf_printf(&b, "%s%s", i > 0 ? "," : "",
		    cfg->servers[i].name);
	buf_adds(&b, "\n");
	return (char *)buf_steal(&b, NULL);
}

char *
snapshot_path(const char *state_dir)
{
	return xasprintf("%s/%s", state_dir, SNAPSHOT_FILE);
}

/* --- little-endian fields ----------------------------------------- */

static void
put32(unsigned char *p, uint32_t v)
{
	int	i;

	for (i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void
put64(unsigned char *p, uint64_t v)
{
	int	i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Bytes of an entry in the file. */
static size_t
entry_size(const struct snapshot_entry *e)
{
	size_t	n = ENT_LEN + strlen(e->key) + 1 + e->wirelen + 1 + e->len;

	return (n + 7) & ~(size_t)7;
}

/* --- writing ---------------------------------------------------------- */

/* A buffered writer that also hashes what it writes. */
struct writer {
	crypto_generichash_state	hash;
	unsigned char			buf[WBUF_LEN];
	size_t				n;
	int				fd;
	int				error;		/* errno, 0 */
};

/* Write len bytes to the file, whatever write(2) does at a time. */
static void
write_fd(struct writer *w, const void *p, size_t len)
{
	const unsigned char	*b = p;
	ssize_t			 r;

	while (len > 0 && w->error == 0) {
		if ((r = write(w->fd, b, len)) == -1) {
			if (errno != EINTR)
				w->error = errno;
			continue;
		}
		b += r;
		len -= (size_t)r;
	}
}

static void
writer_flush(struct writer *w)
{
	write_fd(w, w->buf, w->n);
	w->n = 0;
}

/* Append (and hash, unless it is the checksum itself). */
static void
writer_put(struct writer *w, const void *p, size_t len, bool hashed)
{
	if (hashed)
		crypto_generichash_update(&w->hash, p, len);
	if (len > WBUF_LEN / 2) {
		writer_flush(w);
		write_fd(w, p, len);
		return;
	}
	if (w->n + len > WBUF_LEN)
		writer_flush(w);
	memcpy(w->buf + w->n, p, len);
	w->n += len;
}

/* Write the whole file to fd; errno-style error or 0. */
static int
write_file(int fd, const struct snapshot *s, const char *settings)
{
	static struct writer	 w;	/* large; the loop is single threaded */
	static const unsigned char zero[8];
	unsigned char		 h[HDR_LEN], eh[ENT_LEN], sum[SUM_LEN];
	unsigned char		 sh[12];
	size_t			 i, body = 0, klen, pad, slen, sites = 0;

	for (i = 0; i < s->n; i++)
		body += entry_size(&s->entries[i]);
	slen = strlen(settings);
	for (i = 0; i < s->nsites; i++)
		sites += sizeof sh + strlen(s->domains[i]);

	memset(&w, 0, sizeof w);
	w.fd = fd;
	if (sodium_init() < 0)
		fatalx("sodium_init failed");
	crypto_generichash_init(&w.hash, NULL, 0, SUM_LEN);

	memset(h, 0, sizeof h);
	/* The magic is 8 bytes, no NUL. */
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
	memcpy(h, MAGIC, 8);
	put32(h + 8, SNAPSHOT_VERSION);
	put64(h + 16, s->n);
	put64(h + 24, slen);
	put64(h + 32, body);
	put64(h + 40, s->created);
	put64(h + 48, sites);
	writer_put(&w, h, sizeof h, true);
	writer_put(&w, settings, slen, true);
	for (i = 0; i < s->nsites; i++) {
		put32(sh, (uint32_t)strlen(s->domains[i]));
		put64(sh + 4, s->programs[i]);
		writer_put(&w, sh, sizeof sh, true);
		writer_put(&w, s->domains[i], strlen(s->domains[i]), true);
	}
	for (i = 0; i < s->n && w.error == 0; i++) {
		const struct snapshot_entry *e = &s->entries[i];

		klen = strlen(e->key);
		memset(eh, 0, sizeof eh);
		put32(eh, (uint32_t)klen);
		put32(eh + 4, e->wirelen);
		put64(eh + 8, e->len);
		put64(eh + 16, e->servers);
		put32(eh + 24, e->flags);
		eh[28] = e->family;
		writer_put(&w, eh, sizeof eh, true);
		writer_put(&w, e->key, klen + 1, true);
		writer_put(&w, e->wire, (size_t)e->wirelen + 1, true);
		writer_put(&w, e->val, e->len, true);
		pad = entry_size(e) - (ENT_LEN + klen + 1 + e->wirelen + 1 +
		    e->len);
		writer_put(&w, zero, pad, true);
	}
	crypto_generichash_final(&w.hash, sum, sizeof sum);
	writer_put(&w, sum, sizeof sum, false);
	writer_flush(&w);
	if (w.error == 0 && fsync(fd) == -1)
		w.error = errno;
	return w.error;
}

/* fsync a directory, so that a rename in it is durable. */
static int
sync_dir(const char *path)
{
	char	*dir, *slash;
	int	 fd, rc = 0;

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else {
		free(dir);
		dir = xstrdup(".");
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(fd) == -1)
		rc = errno;
	if (fd != -1)
		close(fd);
	free(dir);
	return rc;
}

/* Create the directory path lives in, if it is missing (one level). */
static void
make_dir(const char *path)
{
	char	*dir, *slash;

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		(void)mkdir(dir, 0700);
	}
	free(dir);
}

int
snapshot_save(const struct snapshot *s, const char *path,
    const char *settings)
{
	char		*tmp;
	const char	*op = "open";
	uint64_t	 t0 = mono_ms();
	int		 fd, err = 0;
	bool		 renamed = false;

	tmp = xasprintf("%s.tmp", path);
	make_dir(path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1) {
		err = errno;
		goto out;
	}
	op = "write";
	err = write_file(fd, s, settings);
	if (close(fd) == -1 && err == 0)
		err = errno;
	if (err != 0)
		goto out;
	op = "rename";
	if (rename(tmp, path) == -1) {
		err = errno;
		goto out;
	}
	renamed = true;
	op = "fsync";
	err = sync_dir(path);
out:
	if (err != 0) {
		log_event(LOG_ERR, "snapshot_error", "file=%s op=%s error=%s",
		    path, op, strerror(err));
		if (!renamed)
			(void)unlink(tmp);
	} else
		log_event(LOG_INFO, "snapshot_saved", "file=%s entries=%zu "
		    "bytes=%zu duration_ms=%llu", path, s->n, s->bytes,
		    (unsigned long long)(mono_ms() - t0));
	free(tmp);
	return err != 0 ? -1 : 0;
}

/* --- reading ---------------------------------------------------------- */

/* The first line where two settings texts differ, for the report. */
static char *
settings_diff(const char *have, size_t hlen, const char *want)
{
	const char	*h = have, *w = want, *he, *we;
	size_t		 n;

	for (;;) {
		he = memchr(h, '\n', hlen - (size_t)(h - have));
		we = strchr(w, '\n');
		if (he == NULL || we == NULL)
			break;
		if ((size_t)(he - h) != (size_t)(we - w) ||
		    memcmp(h, w, (size_t)(he - h)) != 0) {
			n = (size_t)(we - w);
			return xasprintf("written with other settings: %.*s "
			    "in the file, %.*s configured", (int)(he - h), h,
			    (int)n, w);
		}
		h = he + 1;
		w = we + 1;
	}
	return xstrdup("written with other settings");
}

/*
 * Index one entry at *bp (not past end) and step over it; false if it
 * does not hold together.
 */
static bool
parse_entry(const unsigned char **bp, const unsigned char *end,
    struct snapshot_entry *e)
{
	const unsigned char	*b = *bp;
	uint64_t		 klen, wlen, vlen, need;

	if ((size_t)(end - b) < ENT_LEN)
		return false;
	klen = get32(b);
	wlen = get32(b + 4);
	vlen = get64(b + 8);
	memset(e, 0, sizeof *e);
	e->servers = get64(b + 16);
	e->flags = get32(b + 24);
	e->family = b[28];
	/* Each length is below 2^33 + the file's size: no overflow. */
	if (vlen > (uint64_t)(end - b))
		return false;
	need = ENT_LEN + klen + 1 + wlen + 1 + vlen;
	need = (need + 7) & ~(uint64_t)7;
	if (need > (uint64_t)(end - b) || wlen > KEY_MAX ||
	    e->family >= FAM_COUNT)
		return false;
	e->key = (const char *)b + ENT_LEN;
	e->wire = e->key + klen + 1;
	e->wirelen = (uint16_t)wlen;
	e->val = (const unsigned char *)e->wire + wlen + 1;
	e->len = (size_t)vlen;
	/* NUL-terminated, with no NUL inside. */
	if (memchr(e->key, '\0', klen + 1) != e->key + klen ||
	    memchr(e->wire, '\0', wlen + 1) != e->wire + wlen)
		return false;
	*bp = b + need;
	return true;
}

/* Check a mapped file and index its entries; NULL or why not (freed). */
static char *
parse(struct snapshot *s, const unsigned char *p, size_t len,
    const char *settings)
{
	unsigned char		 sum[SUM_LEN];
	uint64_t		 count, slen, blen, tlen, i, dlen;
	const unsigned char	*b, *end, *t, *tend;
	struct snapshot_entry	 e;

	if (len < HDR_LEN + SUM_LEN)
		return xasprintf("truncated: %zu bytes", len);
	if (memcmp(p, MAGIC, 8) != 0)
		return xstrdup("not a snapshot file");
	if (get32(p + 8) != SNAPSHOT_VERSION)
		return xasprintf("format version %u, this daemon reads %d",
		    get32(p + 8), SNAPSHOT_VERSION);
	count = get64(p + 16);
	slen = get64(p + 24);
	blen = get64(p + 32);
	tlen = get64(p + 48);
	if (slen > len || blen > len || tlen > len ||
	    HDR_LEN + slen + tlen + blen + SUM_LEN != len)
		return xasprintf("truncated or overlong: %zu bytes where the "
		    "header says %llu", len, (unsigned long long)(slen <= len &&
		    blen <= len && tlen <= len ? HDR_LEN + slen + tlen + blen +
		    SUM_LEN : 0));
	if (sodium_init() < 0)
		fatalx("sodium_init failed");
	crypto_generichash(sum, sizeof sum, p, len - SUM_LEN, NULL, 0);
	if (sodium_memcmp(sum, p + len - SUM_LEN, SUM_LEN) != 0)
		return xstrdup("checksum mismatch: the file is corrupt");
	if (slen != strlen(settings) ||
	    memcmp(p + HDR_LEN, settings, slen) != 0)
		return settings_diff((const char *)p + HDR_LEN, slen,
		    settings);
	s->created = get64(p + 40);

	for (t = p + HDR_LEN + slen, tend = t + tlen; t < tend; t += dlen) {
		if ((size_t)(tend - t) < 12)
			return xstrdup("malformed site counts");
		dlen = get32(t);
		i = get64(t + 4);
		t += 12;
		if (dlen > (uint64_t)(tend - t) || dlen == 0 ||
		    memchr(t, '\0', dlen) != NULL)
			return xstrdup("malformed site counts");
		site_put(s, (const char *)t, dlen, i);
	}
	b = p + HDR_LEN + slen + tlen;
	end = b + blen;
	if (count > blen / ENT_LEN)
		return xstrdup("malformed: more entries than bytes");
	s->cap = (size_t)count + 1;
	s->entries = xreallocarray(NULL, s->cap, sizeof *s->entries);
	for (i = 0; i < count; i++) {
		if (!parse_entry(&b, end, &e))
			return xasprintf("malformed entry %llu",
			    (unsigned long long)i);
		push(s, &e);
	}
	if (b != end)
		return xstrdup("malformed: bytes after the last entry");
	return NULL;
}

struct snapshot *
snapshot_load(const char *path, const char *settings)
{
	struct snapshot	*s = NULL;
	struct stat	 sb;
	char		*why = NULL, *tmp;
	void		*map = NULL;
	int		 fd;
	uint64_t	 t0 = mono_ms();

	/* A temporary file left by a crash is of no use. */
	tmp = xasprintf("%s.tmp", path);
	(void)unlink(tmp);
	free(tmp);

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return NULL;
		why = xasprintf("cannot open: %s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &sb) == -1) {
		why = xasprintf("cannot stat: %s", strerror(errno));
		goto out;
	}
	if (sb.st_size == 0) {
		why = xstrdup("empty");
		goto out;
	}
	map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		map = NULL;
		why = xasprintf("cannot map: %s", strerror(errno));
		goto out;
	}
	s = snapshot_new();
	s->map = map;
	s->maplen = (size_t)sb.st_size;
	why = parse(s, map, s->maplen, settings);
out:
	if (fd != -1)
		close(fd);
	if (why != NULL || s == NULL) {
		log_event(LOG_ERR, "snapshot_ignored", "file=%s error=%s",
		    path, why != NULL ? why : "unknown");
		free(why);
		if (s != NULL)
			snapshot_free(s);
		else if (map != NULL)
			munmap(map, (size_t)sb.st_size);
		errno = EINVAL;
		return NULL;
	}
	log_event(LOG_INFO, "snapshot_loaded", "file=%s entries=%zu bytes=%zu "
	    "age_s=%llu duration_ms=%llu", path, s->n, s->bytes,
	    (unsigned long long)(wall_ms() > s->created ?
	    (wall_ms() - s->created) / 1000 : 0),
	    (unsigned long long)(mono_ms() - t0));
	return s;
}
