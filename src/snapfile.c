/*
 * snapfile.c: the snapshot file, a base and its deltas.
 *
 * Layout (integers little-endian):
 *
 *	header	 at 0, rewritten in place by every append (its changing
 *		 fields and checksum are in its first 128 bytes):
 *		 "PCDSNAP\n", u32 version, u32 settings length, u64 header
 *		 length (where the segments start: 128 + settings length),
 *		 u64 committed length (where the last segment
 *		 ends), u64 segments, u64 raw bytes of all segments, u64 raw
 *		 bytes of the base, u64 time of the last commit (unix ms),
 *		 the last segment's digest (32 bytes), BLAKE2b-256 of the 96
 *		 bytes before it and the settings; then the settings text
 *	segment	 "PCDSEGM\n", u32 kind (1 base, 2 delta), u32 0, u64 number
 *		 (0 for the base, then 1, 2...), u64 payload length, u64 raw
 *		 length, u64 records, u64 time (unix ms), u64 0; its digest,
 *		 BLAKE2b-256 of the previous segment's digest (zeros for the
 *		 base), the payload and the 64 bytes before the digest; then
 *		 the payload: one zstd frame of raw length bytes of records
 *	record	 u8 op (1 entry, 2 entry removed, 3 text, 4 text removed),
 *		 u8 family (entries), u16 0, u32 flags (entries), u32 name
 *		 length, u32 0, u64 value length; the name (the Django key, or
 *		 the text's name) and a NUL, the value and a NUL
 *
 * Everything up to the committed length is checked (header checksum,
 * each segment's digest in the chain, the last one against the header's)
 * before any payload is decompressed, and decompressed only into buffers
 * of the length the checked header gives, bounded by SNAPSHOT_MAX_BYTES.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zstd.h>

#include "family.h"
#include "log.h"
#include "map.h"
#include "snapfile.h"
#include "statedir.h"

#define MAGIC		"PCDSNAP\n"
#define SEG_MAGIC	"PCDSEGM\n"
#define HDR_FIXED	128		/* the header before the settings */
#define HDR_SUMMED	96		/* the fields its checksum covers */
#define SEG_FIXED	64		/* a segment header before its digest */
#define SEG_LEN		(SEG_FIXED + SUM_LEN)
#define REC_LEN		24
#define SUM_LEN		32
#define SETTINGS_MAX	65536
#define NAME_MAX_LEN	65535
#define SEG_MAX		4096		/* segments before a new base */
#define JOURNAL_MIN	((uint64_t)1 << 20)
#define OBUF_LEN	(256 * 1024)
#define ZLEVEL		1		/* zstd: fast, ~10x on pickled JSON */
#define HDR_TRIES	5		/* a header read while it is rewritten */

enum { SEG_BASE = 1, SEG_DELTA = 2 };
enum { REC_ENTRY = 1, REC_ENTRY_GONE, REC_TEXT, REC_TEXT_GONE };

struct snapfile {
	char		*path;
	bool		 valid;		/* what follows describes the file */
	uint64_t	 holds;		/* serial of the snapshot it holds */
	dev_t		 dev;
	ino_t		 ino;
	unsigned char	*hdr;		/* its header, as written or read */
	size_t		 hdrlen;	/* HDR_FIXED + settings */
	uint64_t	 header_len;
	uint64_t	 committed;
	uint64_t	 nseg;
	uint64_t	 raw_total;
	uint64_t	 base_raw;
	unsigned char	 digest[SUM_LEN];	/* the last segment's */
	ZSTD_CCtx	*cctx;
};

/* One record to write. */
struct rec {
	uint8_t		 op;
	uint8_t		 family;
	uint32_t	 flags;
	const char	*name;
	size_t		 namelen;
	const void	*val;
	size_t		 len;
};

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

static void
sodium_ready(void)
{
	if (sodium_init() < 0)
		fatalx("sodium_init failed");
}

/* The header's checksum: its first 96 bytes and the settings after. */
static void
header_sum(const unsigned char *hdr, size_t hdrlen, unsigned char *sum)
{
	crypto_generichash_state	h;

	sodium_ready();
	crypto_generichash_init(&h, NULL, 0, SUM_LEN);
	crypto_generichash_update(&h, hdr, HDR_SUMMED);
	crypto_generichash_update(&h, hdr + HDR_FIXED, hdrlen - HDR_FIXED);
	crypto_generichash_final(&h, sum, SUM_LEN);
}

/* Bytes of a record in a payload. */
static uint64_t
rec_size(const struct rec *r)
{
	return REC_LEN + r->namelen + 1 + r->len + 1;
}

/* --- the writer object --------------------------------------------- */

struct snapfile *
snapfile_new(const char *path)
{
	struct snapfile	*f = xcalloc(1, sizeof *f);

	f->path = xstrdup(path);
	return f;
}

void
snapfile_free(struct snapfile *f)
{
	if (f == NULL)
		return;
	ZSTD_freeCCtx(f->cctx);
	free(f->hdr);
	free(f->path);
	free(f);
}

const char *
snapfile_path(const struct snapfile *f)
{
	return f->path;
}

void
snapfile_holds(struct snapfile *f, uint64_t serial)
{
	f->holds = serial;
}

/* Remember the header (and the fields it gives) as the file's. */
static void
learn_header(struct snapfile *f, const unsigned char *hdr, size_t hdrlen,
    const struct stat *sb)
{
	free(f->hdr);
	f->hdr = xmalloc(hdrlen);
	memcpy(f->hdr, hdr, hdrlen);
	f->hdrlen = hdrlen;
	f->header_len = get64(hdr + 16);
	f->committed = get64(hdr + 24);
	f->nseg = get64(hdr + 32);
	f->raw_total = get64(hdr + 40);
	f->base_raw = get64(hdr + 48);
	memcpy(f->digest, hdr + 64, SUM_LEN);
	f->dev = sb->st_dev;
	f->ino = sb->st_ino;
	f->valid = true;
}

/* A header: its fields, then its checksum (settings at HDR_FIXED). */
static void
seal_header(unsigned char *hdr, size_t hdrlen, uint64_t committed,
    uint64_t nseg, uint64_t raw_total, uint64_t base_raw,
    const unsigned char *digest)
{
	put64(hdr + 24, committed);
	put64(hdr + 32, nseg);
	put64(hdr + 40, raw_total);
	put64(hdr + 48, base_raw);
	put64(hdr + 56, wall_ms());
	memcpy(hdr + 64, digest, SUM_LEN);
	header_sum(hdr, hdrlen, hdr + HDR_SUMMED);
}

/* --- writing ---------------------------------------------------------- */

/* Where a segment's compressed bytes go: the file, and the digest. */
struct sink {	/* NOLINT(clang-analyzer-optin.performance.Padding): one per save */
	int				 fd;
	uint64_t			 off;
	int				 error;		/* errno */
	const char			*zerr;		/* zstd's */
	ZSTD_CCtx			*cctx;
	crypto_generichash_state	 hash;
	unsigned char			*buf;
	size_t				 n;
	uint64_t			 payload;
};

/* Write len bytes at off, whatever pwrite(2) does at a time. */
static int
pwrite_all(int fd, const void *p, size_t len, uint64_t off)
{
	const unsigned char	*b = p;
	ssize_t			 r;

	while (len > 0) {
		if ((r = pwrite(fd, b, len, (off_t)off)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static void
sink_flush(struct sink *k)
{
	if (k->n == 0 || k->error != 0)
		return;
	crypto_generichash_update(&k->hash, k->buf, k->n);
	if (pwrite_all(k->fd, k->buf, k->n, k->off) == -1)
		k->error = errno;
	k->off += k->n;
	k->payload += k->n;
	k->n = 0;
}

/* Compress len bytes into the sink (end: the frame's last ones). */
static void
sink_feed(struct sink *k, const void *p, size_t len, ZSTD_EndDirective end)
{
	ZSTD_inBuffer	in = { p, len, 0 };
	ZSTD_outBuffer	out;
	size_t		r;

	while (k->error == 0 && k->zerr == NULL) {
		if (k->n == OBUF_LEN)
			sink_flush(k);
		out.dst = k->buf + k->n;
		out.size = OBUF_LEN - k->n;
		out.pos = 0;
		r = ZSTD_compressStream2(k->cctx, &out, &in, end);
		k->n += out.pos;
		if (ZSTD_isError(r)) {
			k->zerr = ZSTD_getErrorName(r);
			return;
		}
		if (end == ZSTD_e_end ? r == 0 : in.pos == in.size)
			return;
	}
}

/* Compress one record into the sink. */
static void
sink_rec(struct sink *k, const struct rec *r)
{
	static const unsigned char	nul[1];
	unsigned char			h[REC_LEN];

	memset(h, 0, sizeof h);
	h[0] = r->op;
	h[1] = r->family;
	put32(h + 4, r->flags);
	put32(h + 8, (uint32_t)r->namelen);
	put64(h + 16, r->len);
	sink_feed(k, h, sizeof h, ZSTD_e_continue);
	sink_feed(k, r->name, r->namelen, ZSTD_e_continue);
	sink_feed(k, nul, 1, ZSTD_e_continue);
	if (r->len > 0)
		sink_feed(k, r->val, r->len, ZSTD_e_continue);
	sink_feed(k, nul, 1, ZSTD_e_continue);
}

/* Say why a save failed (the first cause only). */
static void
fail(struct snapshot_outcome *o, const char *op, const char *fmt, ...)
    PCD_ATTR_PRINTF(3, 4);

static void
fail(struct snapshot_outcome *o, const char *op, const char *fmt, ...)
{
	va_list	ap;

	if (o->error[0] != '\0')
		return;
	o->op = op;
	va_start(ap, fmt);
	vsnprintf(o->error, sizeof o->error, fmt, ap);
	va_end(ap);
}

/* A segment's geometry, once written. */
struct seg_out {
	uint64_t	raw;
	uint64_t	len;			/* header + payload */
	unsigned char	digest[SUM_LEN];
};

/*
 * Write a segment of n records at `at` in fd, chained to prev: its
 * payload first, then its header.  0, or -1 (o says why).
 */
static int
put_segment(struct snapfile *f, int fd, uint64_t at, uint32_t kind,
    uint64_t seq, const unsigned char *prev, const struct rec *r, size_t n,
    struct seg_out *so, struct snapshot_outcome *o)
{
	struct sink	k;
	unsigned char	h[SEG_LEN];
	size_t		i;

	so->raw = 0;
	for (i = 0; i < n; i++)
		so->raw += rec_size(&r[i]);
	if (f->cctx == NULL && (f->cctx = ZSTD_createCCtx()) == NULL)
		fatalx("ZSTD_createCCtx failed");
	(void)ZSTD_CCtx_reset(f->cctx, ZSTD_reset_session_and_parameters);
	(void)ZSTD_CCtx_setParameter(f->cctx, ZSTD_c_compressionLevel, ZLEVEL);
	(void)ZSTD_CCtx_setPledgedSrcSize(f->cctx, so->raw);

	memset(&k, 0, sizeof k);
	k.fd = fd;
	k.off = at + SEG_LEN;
	k.cctx = f->cctx;
	k.buf = xmalloc(OBUF_LEN);
	sodium_ready();
	crypto_generichash_init(&k.hash, NULL, 0, SUM_LEN);
	crypto_generichash_update(&k.hash, prev, SUM_LEN);
	for (i = 0; i < n && k.error == 0 && k.zerr == NULL; i++)
		sink_rec(&k, &r[i]);
	sink_feed(&k, NULL, 0, ZSTD_e_end);
	sink_flush(&k);
	free(k.buf);
	if (k.zerr != NULL) {
		fail(o, "compress", "%s", k.zerr);
		return -1;
	}
	if (k.error != 0) {
		fail(o, "write", "%s", strerror(k.error));
		return -1;
	}

	memset(h, 0, sizeof h);
	/* The magic is 8 bytes, no NUL. */
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
	memcpy(h, SEG_MAGIC, 8);
	put32(h + 8, kind);
	put64(h + 16, seq);
	put64(h + 24, k.payload);
	put64(h + 32, so->raw);
	put64(h + 40, n);
	put64(h + 48, wall_ms());
	crypto_generichash_update(&k.hash, h, SEG_FIXED);
	crypto_generichash_final(&k.hash, so->digest, SUM_LEN);
	memcpy(h + SEG_FIXED, so->digest, SUM_LEN);
	if (pwrite_all(fd, h, sizeof h, at) == -1) {
		fail(o, "write", "%s", strerror(errno));
		return -1;
	}
	so->len = SEG_LEN + k.payload;
	return 0;
}

/*
 * A test hook: PCD_TEST_SAVE_PAUSE_MS=N makes every save wait N ms once
 * its bytes are written, before they are made the file's (rename, or the
 * header of a delta), so that a test can run --verify in between
 * (tests/integration/test_statedir.py).
 */
static void
test_pause(void)
{
	const char	*e = getenv("PCD_TEST_SAVE_PAUSE_MS");
	struct timespec	 ts;
	long		 ms;

	if (e == NULL || (ms = strtol(e, NULL, 10)) <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* fsync the directory a file is in, so that a rename is durable. */
static int
sync_dir(const char *path)
{
	char	*dir = statedir_of(path);
	int	 fd, rc = 0, saved;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(fd) == -1)
		rc = -1;
	saved = errno;
	if (fd != -1)
		close(fd);
	errno = saved;
	free(dir);
	return rc;
}

/* Every entry and text of s, as records. */
static struct rec *
all_records(const struct snapshot *s, size_t *n)
{
	const struct entry		*v = snapshot_entries(s);
	const struct snapshot_text	*t = snapshot_texts(s);
	size_t				 i, ne = snapshot_count(s);
	size_t				 nt = snapshot_ntexts(s);
	struct rec			*r;

	r = xcalloc(ne + nt + 1, sizeof *r);
	for (i = 0; i < ne; i++) {
		r[i].op = REC_ENTRY;
		r[i].family = v[i].family;
		r[i].flags = v[i].flags;
		r[i].name = v[i].key;
		r[i].namelen = strlen(v[i].key);
		r[i].val = v[i].val;
		r[i].len = v[i].len;
	}
	for (i = 0; i < nt; i++) {
		r[ne + i].op = REC_TEXT;
		r[ne + i].name = t[i].name;
		r[ne + i].namelen = strlen(t[i].name);
		r[ne + i].val = t[i].text;
		r[ne + i].len = t[i].len;
	}
	*n = ne + nt;
	return r;
}

/* Whether every name fits the format (no one longer than it allows). */
static bool
names_fit(const struct rec *r, size_t n, struct snapshot_outcome *o)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (r[i].namelen == 0 || r[i].namelen > NAME_MAX_LEN) {
			fail(o, "write", "a key or text name of %zu bytes "
			    "(at most %d)", r[i].namelen, NAME_MAX_LEN);
			return false;
		}
	return true;
}

/* Write a new base into a temporary file and rename it over the file. */
static int
write_base(struct snapfile *f, const struct snapshot *next,
    const char *settings, struct snapshot_outcome *o)
{
	struct seg_out	 so;
	struct stat	 sb;
	struct rec	*r;
	unsigned char	*hdr = NULL;
	char		*tmp = statedir_tmp(f->path);
	size_t		 n, slen = strlen(settings), hdrlen;
	uint64_t	 hlen;
	int		 fd = -1, rc = -1;
	static const unsigned char zero[SUM_LEN];

	f->valid = false;
	o->kind = "base";
	r = all_records(next, &n);
	if (slen > SETTINGS_MAX) {
		fail(o, "write", "settings of %zu bytes", slen);
		goto out;
	}
	if (!names_fit(r, n, o))
		goto out;
	/* A file left there (or planted: a symlink) is never written to. */
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		fail(o, "open", "%s: %s", tmp, strerror(errno));
		goto out;
	}
	hdrlen = HDR_FIXED + slen;
	hlen = hdrlen;
	if (put_segment(f, fd, hlen, SEG_BASE, 0, zero, r, n, &so, o) == -1)
		goto out;
	hdr = xcalloc(1, hdrlen);
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
	memcpy(hdr, MAGIC, 8);
	put32(hdr + 8, SNAPSHOT_VERSION);
	put32(hdr + 12, (uint32_t)slen);
	put64(hdr + 16, hlen);
	/* The settings text without its NUL: the header says its length. */
	memcpy(hdr + HDR_FIXED, settings, slen);	/* NOLINT(bugprone-not-null-terminated-result) */
	seal_header(hdr, hdrlen, hlen + so.len, 1, so.raw, so.raw, so.digest);
	if (pwrite_all(fd, hdr, hdrlen, 0) == -1) {
		fail(o, "write", "%s", strerror(errno));
		goto out;
	}
	if (fsync(fd) == -1 || fstat(fd, &sb) == -1) {
		fail(o, "fsync", "%s", strerror(errno));
		goto out;
	}
	test_pause();
	if (rename(tmp, f->path) == -1) {
		fail(o, "rename", "%s", strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	learn_header(f, hdr, hdrlen, &sb);
	f->holds = snapshot_serial(next);
	o->written = hlen + so.len;
	o->file_bytes = f->committed;
	o->changed = n;
	if (sync_dir(f->path) == -1)
		fail(o, "fsync", "%s", strerror(errno));
	rc = o->error[0] != '\0' ? -1 : 0;
out:
	if (fd != -1)
		close(fd);
	if (tmp != NULL)
		(void)unlink(tmp);
	free(tmp);
	free(hdr);
	free(r);
	return rc;
}

/*
 * Append a delta of n records to the file, if it is still the one f
 * last wrote or read.  0; -1 if not appended (o says why).
 */
static int
append_delta(struct snapfile *f, const struct snapshot *next,
    const struct rec *r, size_t n, struct snapshot_outcome *o)
{
	struct seg_out	 so;
	struct stat	 sb;
	unsigned char	*hdr;
	int		 fd, rc = -1;

	o->kind = "delta";
	if (!names_fit(r, n, o))
		return -1;
	if ((fd = open(f->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		fail(o, "open", "%s", strerror(errno));
		return -1;
	}
	hdr = xmalloc(f->hdrlen);
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    sb.st_dev != f->dev || sb.st_ino != f->ino ||
	    (uint64_t)sb.st_size < f->committed ||
	    pread(fd, hdr, f->hdrlen, 0) != (ssize_t)f->hdrlen ||
	    memcmp(hdr, f->hdr, f->hdrlen) != 0) {
		fail(o, "append", "the file is not the one this process last "
		    "wrote");
		goto out;
	}
	/* What a crashed append left after the committed length goes. */
	if ((uint64_t)sb.st_size > f->committed &&
	    ftruncate(fd, (off_t)f->committed) == -1) {
		fail(o, "append", "ftruncate: %s", strerror(errno));
		goto out;
	}
	if (put_segment(f, fd, f->committed, SEG_DELTA, f->nseg, f->digest, r,
	    n, &so, o) == -1)
		goto out;
	if (fdatasync(fd) == -1) {
		fail(o, "fsync", "%s", strerror(errno));
		goto out;
	}
	test_pause();
	/* From here on the file may be either: only a new base is sure. */
	f->valid = false;
	seal_header(hdr, f->hdrlen, f->committed + so.len, f->nseg + 1,
	    f->raw_total + so.raw, f->base_raw, so.digest);
	if (pwrite_all(fd, hdr, HDR_FIXED, 0) == -1 || fdatasync(fd) == -1) {
		fail(o, "fsync", "%s", strerror(errno));
		goto out;
	}
	learn_header(f, hdr, f->hdrlen, &sb);
	f->holds = snapshot_serial(next);
	o->written = so.len + HDR_FIXED;
	o->file_bytes = f->committed;
	rc = 0;
out:
	free(hdr);
	close(fd);
	return rc;
}

/* Whether two entries are the same record in the file. */
static bool
same_entry(const struct entry *a, const struct entry *b)
{
	return a->len == b->len && a->flags == b->flags &&
	    a->family == b->family &&
	    (a->val == b->val || memcmp(a->val, b->val, a->len) == 0);
}

static bool
same_text(const struct snapshot_text *a, const struct snapshot_text *b)
{
	return a->len == b->len &&
	    (a->text == b->text || memcmp(a->text, b->text, a->len) == 0);
}

/* A record that removes name. */
static struct rec
gone(uint8_t op, const char *name)
{
	struct rec	r;

	memset(&r, 0, sizeof r);
	r.op = op;
	r.name = name;
	r.namelen = strlen(name);
	r.val = "";
	return r;
}

/*
 * What changed from prev to next, as records (*removed: how many remove
 * something).
 */
static struct rec *
diff(const struct snapshot *prev, const struct snapshot *next, size_t *n,
    size_t *removed)
{
	const struct entry		*pv = snapshot_entries(prev);
	const struct snapshot_text	*pt = snapshot_texts(prev);
	struct rec			*all, *r;
	struct map			 m;
	struct map_item			*it;
	size_t				 i, k = 0, na, np, npt;
	bool				*seen;

	np = snapshot_count(prev);
	npt = snapshot_ntexts(prev);
	all = all_records(next, &na);
	r = xcalloc(na + np + npt + 1, sizeof *r);
	seen = xcalloc(np + npt + 1, sizeof *seen);
	map_init(&m);
	for (i = 0; i < np; i++)
		map_put(&m, pv[i].key, strlen(pv[i].key))->val =
		    (void *)(uintptr_t)(i + 1);
	for (i = 0; i < snapshot_count(next); i++) {
		const struct entry *e = &snapshot_entries(next)[i];

		it = map_find(&m, all[i].name, all[i].namelen);
		if (it != NULL) {
			seen[(uintptr_t)it->val - 1] = true;
			if (same_entry(&pv[(uintptr_t)it->val - 1], e))
				continue;
		}
		r[k++] = all[i];
	}
	for (i = 0; i < np; i++)
		if (!seen[i])
			r[k++] = gone(REC_ENTRY_GONE, pv[i].key);
	map_free(&m);
	map_init(&m);
	for (i = 0; i < npt; i++)
		map_put(&m, pt[i].name, strlen(pt[i].name))->val =
		    (void *)(uintptr_t)(i + 1);
	for (i = snapshot_count(next); i < na; i++) {
		const struct snapshot_text *t =
		    &snapshot_texts(next)[i - snapshot_count(next)];

		it = map_find(&m, all[i].name, all[i].namelen);
		if (it != NULL) {
			seen[np + (uintptr_t)it->val - 1] = true;
			if (same_text(&pt[(uintptr_t)it->val - 1], t))
				continue;
		}
		r[k++] = all[i];
	}
	for (i = 0; i < npt; i++)
		if (!seen[np + i])
			r[k++] = gone(REC_TEXT_GONE, pt[i].name);
	map_free(&m);
	*removed = 0;
	for (i = 0; i < k; i++)
		if (r[i].op == REC_ENTRY_GONE || r[i].op == REC_TEXT_GONE)
			(*removed)++;
	free(seen);
	free(all);
	*n = k;
	return r;
}

/* Whether a delta of raw bytes should be a new base instead. */
static bool
base_due(const struct snapfile *f, uint64_t raw)
{
	uint64_t	journal = f->raw_total - f->base_raw;
	uint64_t	limit = f->base_raw / 4;

	if (limit < JOURNAL_MIN)
		limit = JOURNAL_MIN;
	return journal + raw > limit || f->nseg + 1 > SEG_MAX ||
	    f->committed + raw > SNAPSHOT_MAX_BYTES / 2;
}

/* Whether f's file was written with these settings. */
static bool
same_settings(const struct snapfile *f, const char *settings)
{
	size_t	slen = strlen(settings);

	return f->hdr != NULL && f->hdrlen == HDR_FIXED + slen &&
	    memcmp(f->hdr + HDR_FIXED, settings, slen) == 0;
}

/* Why this process may not write the file's directory, or NULL. */
static char *
not_ours(const char *path, const char **op)
{
	char	*dir = statedir_of(path), *why;

	*op = "state_dir";
	if ((why = statedir_untrusted(dir)) == NULL && !statedir_held(dir)) {
		*op = "lock";
		why = xasprintf("this process does not hold %s/%s: another "
		    "may write state_dir", dir, STATEDIR_LOCK);
	}
	free(dir);
	return why;
}

int
snapfile_save(struct snapfile *f, const struct snapshot *prev,
    const struct snapshot *next, const char *settings,
    struct snapshot_outcome *o)
{
	struct rec	*r = NULL;
	const char	*op;
	char		*why;
	uint64_t	 t0 = mono_ms(), raw = 0;
	size_t		 n = 0, i, removed = 0;
	int		 rc;

	memset(o, 0, sizeof *o);
	o->kind = "none";
	if ((why = not_ours(f->path, &op)) != NULL) {
		fail(o, op, "%s", why);
		free(why);
		o->ms = mono_ms() - t0;
		return -1;
	}
	if (f->valid && prev != NULL && f->holds == snapshot_serial(prev) &&
	    same_settings(f, settings)) {
		r = diff(prev, next, &n, &removed);
		if (n == 0) {
			f->holds = snapshot_serial(next);
			free(r);
			o->ms = mono_ms() - t0;
			return 0;
		}
		for (i = 0; i < n; i++)
			raw += rec_size(&r[i]);
		o->changed = n - removed;
		o->removed = removed;
		if (!base_due(f, raw) && append_delta(f, next, r, n, o) == 0) {
			free(r);
			o->ms = mono_ms() - t0;
			return 0;
		}
		/* A new base says what failed, if it fails too. */
		o->error[0] = '\0';
		o->changed = o->removed = 0;
	}
	free(r);
	rc = write_base(f, next, settings, o);
	o->ms = mono_ms() - t0;
	return rc;
}

void
snapshot_log_save(const struct snapshot *s, const char *path,
    const struct snapshot_outcome *o, int rc)
{
	if (rc == -1)
		log_event(LOG_ERR, "snapshot_error", "file=%s op=%s error=%s",
		    path, o->op, o->error);
	else if (strcmp(o->kind, "none") != 0)
		log_event(LOG_INFO, "snapshot_saved", "file=%s kind=%s "
		    "entries=%zu bytes=%zu changed=%zu removed=%zu "
		    "written=%llu file_bytes=%llu duration_ms=%llu", path,
		    o->kind, snapshot_count(s), snapshot_bytes(s), o->changed,
		    o->removed, (unsigned long long)o->written,
		    (unsigned long long)o->file_bytes,
		    (unsigned long long)o->ms);
}

/* --- reading ---------------------------------------------------------- */

/* Read len bytes at off: 0, or -1 (errno, or 0 for a short file). */
static int
pread_all(int fd, void *p, size_t len, uint64_t off)
{
	unsigned char	*b = p;
	ssize_t		 r;

	while (len > 0) {
		if ((r = pread(fd, b, len, (off_t)off)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = 0;
			return -1;
		}
		b += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* The first line where two settings texts differ, for the report. */
static char *
settings_diff(const char *have, size_t hlen, const char *want)
{
	const char	*h = have, *w = want, *he, *we;

	for (;;) {
		he = memchr(h, '\n', hlen - (size_t)(h - have));
		we = strchr(w, '\n');
		if (he == NULL || we == NULL)
			break;
		if ((size_t)(he - h) != (size_t)(we - w) ||
		    memcmp(h, w, (size_t)(he - h)) != 0)
			return xasprintf("written with other settings: %.*s "
			    "in the file, %.*s configured", (int)(he - h), h,
			    (int)(we - w), w);
		h = he + 1;
		w = we + 1;
	}
	return xstrdup("written with other settings");
}

/* Wait a little for a header being rewritten to be whole again. */
static void
pause_briefly(void)
{
	struct timespec	ts = { 0, 20 * 1000000L };

	(void)nanosleep(&ts, NULL);
}

/*
 * Read the header into *hdrp (caller frees, *hdrlen bytes) and check it
 * against the file (sb) and the settings: NULL, or why not (caller frees).
 * A checksum that does not match is read again a few times: an append may
 * be rewriting the header at this very moment.
 */
static char *
read_header(int fd, const char *settings, struct stat *sb,
    unsigned char **hdrp, size_t *hdrlen)
{
	unsigned char	 fixed[HDR_FIXED], sum[SUM_LEN], *hdr = NULL;
	uint64_t	 hlen, committed, nseg, raw, base;
	size_t		 slen = 0;
	ssize_t		 got;
	int		 try;

	for (try = 0; ; try++) {
		free(hdr);
		hdr = NULL;
		if (fstat(fd, sb) == -1)
			return xasprintf("cannot stat: %s", strerror(errno));
		if (!S_ISREG(sb->st_mode))
			return xstrdup("not a regular file");
		if (sb->st_size == 0)
			return xstrdup("empty");
		memset(fixed, 0, sizeof fixed);
		if ((got = pread(fd, fixed, sizeof fixed, 0)) == -1)
			return xasprintf("cannot read: %s", strerror(errno));
		if (got < 12 || memcmp(fixed, MAGIC, 8) != 0)
			return xstrdup("not a snapshot file");
		if (get32(fixed + 8) != SNAPSHOT_VERSION)
			return xasprintf("format version %u, this daemon reads "
			    "%d", get32(fixed + 8), SNAPSHOT_VERSION);
		if (got < HDR_FIXED)
			return xasprintf("truncated: %lld bytes",
			    (long long)sb->st_size);
		if ((slen = get32(fixed + 12)) > SETTINGS_MAX)
			return xstrdup("malformed header: settings too long");
		hdr = xmalloc(HDR_FIXED + slen);
		memcpy(hdr, fixed, HDR_FIXED);
		if (pread_all(fd, hdr + HDR_FIXED, slen, HDR_FIXED) == -1) {
			free(hdr);
			return xasprintf("truncated: %lld bytes",
			    (long long)sb->st_size);
		}
		header_sum(hdr, HDR_FIXED + slen, sum);
		if (sodium_memcmp(sum, hdr + HDR_SUMMED, SUM_LEN) == 0)
			break;
		if (try + 1 == HDR_TRIES) {
			free(hdr);
			return xstrdup("header checksum mismatch: the file is "
			    "corrupt");
		}
		pause_briefly();
	}
	*hdrp = hdr;
	*hdrlen = HDR_FIXED + slen;
	hlen = get64(hdr + 16);
	committed = get64(hdr + 24);
	nseg = get64(hdr + 32);
	raw = get64(hdr + 40);
	base = get64(hdr + 48);
	if (hlen != *hdrlen || committed < hlen ||
	    nseg == 0 || nseg > (committed - hlen) / SEG_LEN || base > raw)
		return xstrdup("malformed header");
	if (committed > (uint64_t)sb->st_size)
		return xasprintf("truncated: %lld bytes where the header says "
		    "%llu", (long long)sb->st_size,
		    (unsigned long long)committed);
	if (committed > SNAPSHOT_MAX_BYTES || raw > SNAPSHOT_MAX_BYTES)
		return xasprintf("over %llu bytes", (unsigned long long)
		    SNAPSHOT_MAX_BYTES);
	if (slen != strlen(settings) ||
	    memcmp(hdr + HDR_FIXED, settings, slen) != 0)
		return settings_diff((const char *)hdr + HDR_FIXED, slen,
		    settings);
	return NULL;
}

/* A checked segment. */
struct seg {
	uint64_t		 raw;
	uint64_t		 records;
	const unsigned char	*payload;
	size_t			 plen;
};

/*
 * Check the segments of the body b (len bytes) against the header: the
 * chain of digests, the lengths, the kinds.  NULL, or why not.
 */
static char *
check_segments(const unsigned char *b, size_t len, const unsigned char *hdr,
    struct seg *sg, uint64_t nseg)
{
	crypto_generichash_state	 hs;
	unsigned char			 prev[SUM_LEN], d[SUM_LEN];
	const unsigned char		*h;
	uint64_t			 i, raw = 0, plen;
	size_t				 off = 0;

	memset(prev, 0, sizeof prev);
	sodium_ready();
	for (i = 0; i < nseg; i++) {
		if (len - off < SEG_LEN)
			return xasprintf("truncated: segment %llu",
			    (unsigned long long)i);
		h = b + off;
		plen = get64(h + 24);
		if (memcmp(h, SEG_MAGIC, 8) != 0 ||
		    get32(h + 8) != (i == 0 ? SEG_BASE : SEG_DELTA) ||
		    get32(h + 12) != 0 || get64(h + 16) != i ||
		    get64(h + 56) != 0 || plen > len - off - SEG_LEN)
			return xasprintf("malformed segment %llu",
			    (unsigned long long)i);
		crypto_generichash_init(&hs, NULL, 0, SUM_LEN);
		crypto_generichash_update(&hs, prev, SUM_LEN);
		crypto_generichash_update(&hs, h + SEG_LEN, (size_t)plen);
		crypto_generichash_update(&hs, h, SEG_FIXED);
		crypto_generichash_final(&hs, d, SUM_LEN);
		if (sodium_memcmp(d, h + SEG_FIXED, SUM_LEN) != 0)
			return xasprintf("checksum mismatch in segment %llu: "
			    "the file is corrupt", (unsigned long long)i);
		sg[i].raw = get64(h + 32);
		sg[i].records = get64(h + 40);
		sg[i].payload = h + SEG_LEN;
		sg[i].plen = (size_t)plen;
		if (sg[i].raw > SNAPSHOT_MAX_BYTES - raw ||
		    sg[i].records > sg[i].raw / (REC_LEN + 2))
			return xasprintf("malformed segment %llu",
			    (unsigned long long)i);
		raw += sg[i].raw;
		memcpy(prev, d, SUM_LEN);
		off += SEG_LEN + (size_t)plen;
	}
	if (off != len || raw != get64(hdr + 40) || sg[0].raw !=
	    get64(hdr + 48) || sodium_memcmp(prev, hdr + 64, SUM_LEN) != 0)
		return xstrdup("malformed: the segments do not add up to the "
		    "header");
	return NULL;
}

/* Decompress a checked segment into *out (raw + 1 bytes): NULL or why. */
static char *
inflate(ZSTD_DCtx *dc, const struct seg *sg, uint64_t i, unsigned char **out)
{
	unsigned char	*dst;
	size_t		 r;

	*out = NULL;
	if (ZSTD_findFrameCompressedSize(sg->payload, sg->plen) != sg->plen ||
	    ZSTD_getFrameContentSize(sg->payload, sg->plen) != sg->raw)
		return xasprintf("segment %llu is not one zstd frame of %llu "
		    "bytes", (unsigned long long)i,
		    (unsigned long long)sg->raw);
	if ((dst = malloc((size_t)sg->raw + 1)) == NULL)
		return xasprintf("cannot allocate %llu bytes",
		    (unsigned long long)sg->raw);
	r = ZSTD_decompressDCtx(dc, dst, (size_t)sg->raw, sg->payload,
	    sg->plen);
	if (ZSTD_isError(r) || r != sg->raw) {
		free(dst);
		return xasprintf("segment %llu: %s", (unsigned long long)i,
		    ZSTD_isError(r) ? ZSTD_getErrorName(r) : "short");
	}
	*out = dst;
	return NULL;
}

/* The entries and texts as the segments leave them, while replaying. */
struct replay {
	struct map		 keys;		/* key -> index + 1 */
	struct entry		*v;
	bool			*vgone;
	size_t			 n;
	struct map		 names;		/* name -> index + 1 */
	struct snapshot_text	*t;
	bool			*tgone;
	size_t			 nt;
};

/* The family whose prefix is the longest that key starts with. */
static int
family_of(const char *key)
{
	size_t	best = 0, len;
	int	f, found = -1;

	for (f = 0; f < FAM_COUNT; f++) {
		len = strlen(family_prefix((enum family)f));
		if (len > best && strncmp(key, family_prefix((enum family)f),
		    len) == 0) {
			best = len;
			found = f;
		}
	}
	return found;
}

/* Put (or replace) a slot of name in a replay table. */
static size_t
slot(struct map *m, const char *name, size_t namelen, size_t *n,
    void **arr, size_t size, bool **gone, bool *existed)
{
	struct map_item	*it = map_put(m, name, namelen);

	*existed = it->val != NULL;
	if (*existed)
		return (uintptr_t)it->val - 1;
	it->val = (void *)(uintptr_t)(*n + 1);
	*arr = xreallocarray(*arr, *n + 1, size);
	*gone = xreallocarray(*gone, *n + 1, sizeof **gone);
	(*gone)[*n] = false;
	return (*n)++;
}

/* Apply one checked record; NULL or why not. */
static const char *
apply(struct replay *rp, bool base, uint8_t op, uint8_t fam, uint32_t flags,
    const char *name, size_t nlen, const unsigned char *val, size_t vlen)
{
	struct map_item	*it;
	struct entry	*e;
	size_t		 i;
	bool		 existed;

	switch (op) {
	case REC_ENTRY:
		if (fam >= FAM_COUNT || family_of(name) != fam)
			return "a key outside its family";
		i = slot(&rp->keys, name, nlen, &rp->n, (void **)&rp->v,
		    sizeof *rp->v, &rp->vgone, &existed);
		if (existed && base)
			return "a key twice";
		e = &rp->v[i];
		memset(e, 0, sizeof *e);
		e->key = name;
		e->val = val;
		e->len = vlen;
		e->flags = flags;
		e->family = fam;
		e->phase = (uint8_t)family_phase((enum family)fam);
		e->subject = (uint8_t)strlen(family_prefix((enum family)fam));
		rp->vgone[i] = false;
		return NULL;
	case REC_TEXT:
		if (fam != 0 || flags != 0 || memchr(val, '\0', vlen) != NULL)
			return "a malformed text";
		i = slot(&rp->names, name, nlen, &rp->nt, (void **)&rp->t,
		    sizeof *rp->t, &rp->tgone, &existed);
		if (existed && base)
			return "a text twice";
		rp->t[i].name = name;
		rp->t[i].text = (const char *)val;
		rp->t[i].len = vlen;
		rp->tgone[i] = false;
		return NULL;
	case REC_ENTRY_GONE:
	case REC_TEXT_GONE:
		if (base || fam != 0 || flags != 0 || vlen != 0)
			return "a malformed removal";
		it = map_find(op == REC_ENTRY_GONE ? &rp->keys : &rp->names,
		    name, nlen);
		if (it == NULL || (op == REC_ENTRY_GONE ?
		    rp->vgone : rp->tgone)[(uintptr_t)it->val - 1])
			return "a removal of what is not there";
		(op == REC_ENTRY_GONE ? rp->vgone : rp->tgone)
		    [(uintptr_t)it->val - 1] = true;
		return NULL;
	default:
		return "an unknown record";
	}
}

/* Replay one decompressed segment's records: NULL, or why not. */
static char *
replay_segment(struct replay *rp, const unsigned char *p, size_t len,
    const struct seg *sg, uint64_t segno)
{
	const unsigned char	*r, *val;
	const char		*name, *bad;
	uint64_t		 i, nlen, vlen;
	size_t			 off = 0;

	for (i = 0; i < sg->records; i++) {
		r = p + off;
		bad = "a truncated record";
		if (len - off < REC_LEN)
			goto bad;
		nlen = get32(r + 8);
		vlen = get64(r + 16);
		bad = "a malformed record";
		if (r[2] != 0 || r[3] != 0 || get32(r + 12) != 0 ||
		    nlen == 0 || nlen > NAME_MAX_LEN ||
		    vlen > len - off - REC_LEN ||
		    REC_LEN + nlen + 1 + vlen + 1 > len - off)
			goto bad;
		name = (const char *)r + REC_LEN;
		val = (const unsigned char *)name + nlen + 1;
		if (name[nlen] != '\0' || memchr(name, '\0', nlen) != NULL ||
		    val[vlen] != '\0')
			goto bad;
		if ((bad = apply(rp, segno == 0, r[0], r[1], get32(r + 4),
		    name, (size_t)nlen, val, (size_t)vlen)) != NULL)
			goto bad;
		off += REC_LEN + nlen + 1 + vlen + 1;
	}
	if (off != len)
		return xasprintf("segment %llu: bytes after its last record",
		    (unsigned long long)segno);
	return NULL;
bad:
	return xasprintf("segment %llu, record %llu: %s",
	    (unsigned long long)segno, (unsigned long long)i, bad);
}

static void
replay_free(struct replay *rp)
{
	map_free(&rp->keys);
	map_free(&rp->names);
	free(rp->v);
	free(rp->vgone);
	free(rp->t);
	free(rp->tgone);
}

/* An entry's wire key (kf) and servers (st), as a publish would make. */
static void
derive(struct entry *e, const struct keyfn *kf, const struct store *st,
    struct buf *wire)
{
	size_t	idx[STORE_MAX_SERVERS], i, k;

	e->wire = NULL;
	e->wirelen = 0;
	e->servers = 0;
	if (kf == NULL || key_make(kf, e->key, strlen(e->key), wire) == -1)
		return;
	e->wire = (const char *)wire->data;
	e->wirelen = (uint32_t)wire->len;
	k = st != NULL ? store_place(st, e->wire, wire->len, idx) : 0;
	for (i = 0; i < k; i++)
		e->servers |= (uint64_t)1 << idx[i];
}

/*
 * Decompress and replay the checked segments into s (which keeps the
 * decompressed bytes): NULL, or why not.
 */
static char *
build(struct snapshot *s, const struct seg *sg, uint64_t nseg,
    const struct keyfn *kf, const struct store *st)
{
	struct replay	 rp;
	ZSTD_DCtx	*dc;
	unsigned char	*raw;
	struct buf	 wire;
	char		*why = NULL;
	uint64_t	 i;

	memset(&rp, 0, sizeof rp);
	buf_init(&wire);
	map_init(&rp.keys);
	map_init(&rp.names);
	if ((dc = ZSTD_createDCtx()) == NULL)
		fatalx("ZSTD_createDCtx failed");
	for (i = 0; i < nseg && why == NULL; i++) {
		if ((why = inflate(dc, &sg[i], i, &raw)) != NULL)
			break;
		if (raw == NULL) {	/* inflate sets it when it says nothing */
			why = xstrdup("segment not decompressed");
			break;
		}
		snapshot_keep(s, raw);
		why = replay_segment(&rp, raw, (size_t)sg[i].raw, &sg[i], i);
	}
	ZSTD_freeDCtx(dc);
	for (i = 0; why == NULL && i < rp.n; i++)
		if (!rp.vgone[i]) {
			derive(&rp.v[i], kf, st, &wire);
			snapshot_add(s, &rp.v[i]);
		}
	for (i = 0; why == NULL && i < rp.nt; i++)
		if (!rp.tgone[i])
			snapshot_add_text_ref(s, &rp.t[i]);
	replay_free(&rp);
	buf_free(&wire);
	return why;
}

/* Read and check the file open on fd; NULL or why not. */
static char *
load_fd(int fd, const char *settings, const struct keyfn *kf,
    const struct store *st, struct snapfile *f, struct snapshot **sp)
{
	struct stat	 sb;
	struct seg	*sg = NULL;
	unsigned char	*hdr = NULL, *body = NULL;
	char		*why;
	size_t		 hdrlen = 0, len;
	uint64_t	 nseg;

	if ((why = read_header(fd, settings, &sb, &hdr, &hdrlen)) != NULL)
		goto out;
	if (hdr == NULL) {
		why = xstrdup("no header");	/* read_header sets it on success */
		goto out;
	}
	len = (size_t)(get64(hdr + 24) - get64(hdr + 16));
	nseg = get64(hdr + 32);
	if ((body = malloc(len + 1)) == NULL) {
		why = xasprintf("cannot allocate %zu bytes", len);
		goto out;
	}
	if (pread_all(fd, body, len, get64(hdr + 16)) == -1) {
		why = errno != 0 ? xasprintf("cannot read: %s",
		    strerror(errno)) : xstrdup("truncated while it was read");
		goto out;
	}
	sg = xcalloc((size_t)nseg, sizeof *sg);
	if ((why = check_segments(body, len, hdr, sg, nseg)) != NULL)
		goto out;
	*sp = snapshot_new();
	snapshot_set_created(*sp, get64(hdr + 56));
	if ((why = build(*sp, sg, nseg, kf, st)) != NULL) {
		snapshot_free(*sp);
		*sp = NULL;
		goto out;
	}
	if (f != NULL) {
		learn_header(f, hdr, hdrlen, &sb);
		f->holds = snapshot_serial(*sp);
	}
out:
	free(sg);
	free(body);
	free(hdr);
	return why;
}

struct snapshot *
snapshot_load(const char *path, const char *settings, const struct keyfn *kf,
    const struct store *st, struct snapfile *f)
{
	struct snapshot	*s = NULL;
	char		*why = NULL, *dir;
	int		 fd;
	uint64_t	 t0 = mono_ms();

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return NULL;
		why = errno == ELOOP ? xstrdup("a symbolic link: not read") :
		    xasprintf("cannot open: %s", strerror(errno));
		goto out;
	}
	dir = statedir_of(path);
	why = statedir_untrusted(dir);
	free(dir);
	if (why == NULL)
		why = load_fd(fd, settings, kf, st, f, &s);
	close(fd);
out:
	if (why != NULL) {
		log_event(LOG_ERR, "snapshot_ignored", "file=%s error=%s",
		    path, why);
		free(why);
		errno = EINVAL;
		return NULL;
	}
	log_event(LOG_INFO, "snapshot_loaded", "file=%s entries=%zu bytes=%zu "
	    "texts=%zu age_s=%llu duration_ms=%llu", path, snapshot_count(s),
	    snapshot_bytes(s), snapshot_ntexts(s),
	    (unsigned long long)(wall_ms() > snapshot_created(s) ?
	    (wall_ms() - snapshot_created(s)) / 1000 : 0),
	    (unsigned long long)(mono_ms() - t0));
	return s;
}
