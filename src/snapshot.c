/*
 * snapshot.c: what the cache holds, in memory and on disk.
 *
 * File layout (integers little-endian):
 *
 *	header	 "PCDSNAP\n", u32 version, u32 0, u64 entries, u64 settings
 *		 length, u64 body length, u64 creation time (unix ms),
 *		 u64 sites length
 *	settings "name=value\n" lines (snapshot_settings)
 *	sites	 the state module's text (JSON), no NUL
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

#include "family.h"
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
	uint64_t		  serial;
	struct entry	 *entries;
	size_t			  n;
	size_t			  cap;
	size_t			  bytes;
	uint64_t		  created;
	char			**chunks;	/* wire keys; never moved */
	size_t			  nchunks;
	size_t			  used;		/* in the last chunk */
	void			 *map;		/* the loaded file */
	size_t			  maplen;
	char			 *sites;	/* the state's text */
};

struct snapshot *
snapshot_new(void)
{
	static uint64_t	 serial;
	struct snapshot	*s;

	s = xcalloc(1, sizeof *s);
	s->serial = ++serial;
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
push(struct snapshot *s, const struct entry *e)
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
snapshot_add(struct snapshot *s, const struct entry *e)
{
	struct entry	 c = *e;
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
	free(s->sites);
	for (i = 0; i < s->nchunks; i++)
		free(s->chunks[i]);
	free(s->chunks);
	free(s->entries);
	if (s->map != NULL)
		munmap(s->map, s->maplen);
	free(s);
}

void
snapshot_add_copy(struct snapshot *s, const struct entry *e)
{
	struct entry	 c = *e;
	size_t		 klen = strlen(e->key);
	char		*k;
	unsigned char	*v;

	k = arena_alloc(s, klen + 1);
	memcpy(k, e->key, klen + 1);
	c.key = k;
	v = (unsigned char *)arena_alloc(s, e->len + 1);
	memcpy(v, e->val, e->len);
	c.val = v;
	snapshot_add(s, &c);
}

void
snapshot_set_sites(struct snapshot *s, const char *text)
{
	free(s->sites);
	s->sites = text != NULL ? xstrdup(text) : NULL;
}

const char *
snapshot_sites(const struct snapshot *s)
{
	return s->sites;
}

uint64_t
snapshot_serial(const struct snapshot *s)
{
	return s != NULL ? s->serial : 0;
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

const struct entry *
snapshot_entries(const struct snapshot *s)
{
	return s->entries;
}

uint64_t
snapshot_created(const struct snapshot *s)
{
	return s->created;
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
entry_size(const struct entry *e)
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

/* Write the whole file to fd and fsync it: 0, or -1 with errno set. */
static int
write_file(int fd, const struct snapshot *s, const char *settings)
{
	struct writer		*wp = xmalloc(sizeof *wp);	/* 256K */
	static const unsigned char zero[8];
	unsigned char		 h[HDR_LEN], eh[ENT_LEN], sum[SUM_LEN];
	size_t			 i, body = 0, klen, pad, slen, sites;

	for (i = 0; i < s->n; i++)
		body += entry_size(&s->entries[i]);
	slen = strlen(settings);
	sites = s->sites != NULL ? strlen(s->sites) : 0;

	memset(wp, 0, sizeof *wp);
	wp->fd = fd;
	if (sodium_init() < 0)
		fatalx("sodium_init failed");
	crypto_generichash_init(&wp->hash, NULL, 0, SUM_LEN);

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
	writer_put(wp, h, sizeof h, true);
	writer_put(wp, settings, slen, true);
	if (sites > 0)
		writer_put(wp, s->sites, sites, true);
	for (i = 0; i < s->n && wp->error == 0; i++) {
		const struct entry *e = &s->entries[i];

		klen = strlen(e->key);
		memset(eh, 0, sizeof eh);
		put32(eh, (uint32_t)klen);
		put32(eh + 4, e->wirelen);
		put64(eh + 8, e->len);
		put64(eh + 16, e->servers);
		put32(eh + 24, e->flags);
		eh[28] = e->family;
		writer_put(wp, eh, sizeof eh, true);
		writer_put(wp, e->key, klen + 1, true);
		writer_put(wp, e->wire, (size_t)e->wirelen + 1, true);
		writer_put(wp, e->val, e->len, true);
		pad = entry_size(e) - (ENT_LEN + klen + 1 + e->wirelen + 1 +
		    e->len);
		writer_put(wp, zero, pad, true);
	}
	crypto_generichash_final(&wp->hash, sum, sizeof sum);
	writer_put(wp, sum, sizeof sum, false);
	writer_flush(wp);
	if (wp->error == 0 && fsync(fd) == -1)
		wp->error = errno;
	errno = wp->error;
	free(wp);
	return errno != 0 ? -1 : 0;
}

/* fsync a directory, so that a rename in it is durable: 0, or -1. */
static int
sync_dir(const char *path)
{
	char	*dir, *slash;
	int	 fd, rc = 0, saved;

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else {
		free(dir);
		dir = xstrdup(".");
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(fd) == -1)
		rc = -1;
	saved = errno;
	if (fd != -1)
		close(fd);
	free(dir);
	errno = saved;
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

/*
 * Why the directory path lives in may not be trusted, or NULL: it must be
 * a directory of ours (or root's) that nobody else can write to, or a
 * local user could plant the snapshot or its temporary file (SPEC §12).
 */
static char *
dir_untrusted(const char *path)
{
	struct stat	 sb;
	char		*dir, *slash, *why = NULL;

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else {
		free(dir);
		dir = xstrdup(".");
	}
	if (stat(dir, &sb) == -1)
		why = xasprintf("state_dir %s: %s", dir, strerror(errno));
	else if (!S_ISDIR(sb.st_mode))
		why = xasprintf("state_dir %s is not a directory", dir);
	else if ((sb.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		why = xasprintf("state_dir %s is writable by group or others "
		    "(mode %04o): chmod go-w it", dir,
		    (unsigned)(sb.st_mode & 07777));
	else if (sb.st_uid != geteuid() && sb.st_uid != 0)
		why = xasprintf("state_dir %s belongs to another user (uid "
		    "%u)", dir, (unsigned)sb.st_uid);
	free(dir);
	return why;
}

int
snapshot_save(const struct snapshot *s, const char *path,
    const char *settings, struct snapshot_outcome *o)
{
	char		*tmp, *why;
	uint64_t	 t0 = mono_ms();
	int		 fd, err = 0;
	bool		 renamed = false;

	memset(o, 0, sizeof *o);
	o->op = "open";
	tmp = xasprintf("%s.tmp", path);
	make_dir(path);
	if ((why = dir_untrusted(path)) != NULL) {
		o->op = "state_dir";
		snprintf(o->error, sizeof o->error, "%s", why);
		free(why);
		free(tmp);
		return -1;
	}
	/* A file left there (or planted: a symlink) is never written to. */
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		err = errno;
		goto out;
	}
	o->op = "write";
	if (write_file(fd, s, settings) == -1)
		err = errno;
	if (close(fd) == -1 && err == 0)
		err = errno;
	if (err != 0)
		goto out;
	o->op = "rename";
	if (rename(tmp, path) == -1) {
		err = errno;
		goto out;
	}
	renamed = true;
	o->op = "fsync";
	if (sync_dir(path) != 0)
		err = errno;
out:
	if (err != 0) {
		snprintf(o->error, sizeof o->error, "%s", strerror(err));
		if (!renamed)
			(void)unlink(tmp);
	}
	o->ms = mono_ms() - t0;
	free(tmp);
	return err != 0 ? -1 : 0;
}

void
snapshot_log_save(const struct snapshot *s, const char *path,
    const struct snapshot_outcome *o, int rc)
{
	if (rc == -1)
		log_event(LOG_ERR, "snapshot_error", "file=%s op=%s error=%s",
		    path, o->op, o->error);
	else
		log_event(LOG_INFO, "snapshot_saved", "file=%s entries=%zu "
		    "bytes=%zu duration_ms=%llu", path, s->n, s->bytes,
		    (unsigned long long)o->ms);
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
    struct entry *e)
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
	if (need > (uint64_t)(end - b) || e->family >= FAM_COUNT)
		return false;
	e->key = (const char *)b + ENT_LEN;
	/* The family's own prefix, which says where the subject starts. */
	e->phase = (uint8_t)family_phase((enum family)e->family);
	e->subject = (uint8_t)strlen(family_prefix((enum family)e->family));
	if (klen < e->subject || memcmp(e->key,
	    family_prefix((enum family)e->family), e->subject) != 0)
		return false;
	e->wire = e->key + klen + 1;
	e->wirelen = (uint32_t)wlen;
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
	uint64_t		 count, slen, blen, tlen, i;
	const unsigned char	*b, *end, *t;
	struct entry	 e;

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

	t = p + HDR_LEN + slen;
	if (tlen > 0) {
		if (memchr(t, '\0', tlen) != NULL)
			return xstrdup("malformed sites text");
		s->sites = xstrndup((const char *)t, tlen);
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
	if ((why = dir_untrusted(path)) != NULL)
		goto out;
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
