/*
 * test_snapshot.c: the snapshot file round-trips (a base, then deltas),
 * wire keys and servers are derived on load, and a file that is corrupt
 * at any byte, truncated at any length, of another format version,
 * written with other settings or hand-made to hold what no writer writes
 * (with checksums that match) is refused.  A file replaced under a loaded
 * snapshot changes nothing it holds.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zstd.h>

#include "config.h"
#include "family.h"
#include "keys.h"
#include "log.h"
#include "snapfile.h"
#include "snapshot.h"
#include "statedir.h"
#include "store.h"
#include "capture.h"
#include "t.h"

static const char settings[] = "key_function=edx\nkey_prefix=default\n"
    "servers=127.0.0.1:1,127.0.0.1:2\n";

static char		 dir[] = "/tmp/pcd-test-snapshot-XXXXXX";
static char		 path[256];
static struct cfg	*cfg;
static struct store	*st;
static struct keyfn	 kf;

/* Save next over the file f holds prev of: 0 or -1, and the kind. */
static int
save(struct snapfile *f, const struct snapshot *prev,
    const struct snapshot *next, const char **kind)
{
	struct snapshot_outcome	o;
	int			rc;

	rc = snapfile_save(f, prev, next, settings, &o);
	if (kind != NULL)
		*kind = o.kind;
	return rc;
}

/* A whole save (a new snapfile: always a base). */
static int
save_new(const struct snapshot *s)
{
	struct snapfile	*f = snapfile_new(path);
	int		 rc = save(f, NULL, s, NULL);

	snapfile_free(f);
	return rc;
}

static struct snapshot *
load(void)
{
	return snapshot_load(path, settings, &kf, st, NULL);
}

/* An entry from C strings. */
static struct entry
entry(const char *key, const char *val, size_t len, uint32_t flags,
    enum family fam)
{
	struct entry	e;

	memset(&e, 0, sizeof e);
	e.key = key;
	e.val = (const unsigned char *)val;
	e.len = len;
	e.flags = flags;
	e.family = (uint8_t)fam;
	e.phase = (uint8_t)family_phase(fam);
	e.subject = (uint8_t)strlen(family_prefix(fam));
	return e;
}

/* A small snapshot: an empty value, a binary one, texts. */
static struct snapshot *
small(void)
{
	struct snapshot	*s = snapshot_new();
	struct entry	 e;

	e = entry("program-a", "\x80\x04N.", 4, 1, FAM_PROGRAM);
	e.wire = "planted:wire";
	e.wirelen = 12;
	e.servers = 7;
	snapshot_add(s, &e);
	e = entry("course-programs-x", "\0\1\2\3\4\5\6", 7, 1, FAM_COURSE);
	snapshot_add(s, &e);
	e = entry("program-uuids-lms.example.com", "", 0, 0,
	    FAM_SITE_PROGRAMS);
	snapshot_add(s, &e);
	snapshot_add_text(s, "sites", "{\"sites\":[]}", 12);
	snapshot_add_text(s, "site\nlms.example.com", "{}", 2);
	return s;
}

/* What a load must give for e: the wire key and servers of a publish. */
static int
derived(const struct entry *e)
{
	char	wire[KEY_MAX + 1];
	size_t	idx[STORE_MAX_SERVERS], i, k;
	int	wlen;
	uint64_t servers = 0;

	if ((wlen = key_make_short(&kf, e->key, strlen(e->key), wire)) == -1)
		return e->wire == NULL && e->servers == 0;
	k = store_place(st, wire, (size_t)wlen, idx);
	for (i = 0; i < k; i++)
		servers |= (uint64_t)1 << idx[i];
	return e->wire != NULL && e->wirelen == (uint32_t)wlen &&
	    strcmp(e->wire, wire) == 0 && e->servers == servers;
}

/* The entry of l called key, or NULL. */
static const struct entry *
find(const struct snapshot *l, const char *key)
{
	size_t	i;

	for (i = 0; i < snapshot_count(l); i++)
		if (strcmp(snapshot_entries(l)[i].key, key) == 0)
			return &snapshot_entries(l)[i];
	return NULL;
}

static const struct snapshot_text *
find_text(const struct snapshot *l, const char *name)
{
	size_t	i;

	for (i = 0; i < snapshot_ntexts(l); i++)
		if (strcmp(snapshot_texts(l)[i].name, name) == 0)
			return &snapshot_texts(l)[i];
	return NULL;
}

/*
 * Whether a loaded snapshot holds what s does: the same entries and texts
 * (in the base's order, those a delta added after them: not compared).
 */
static int
same(const struct snapshot *a, const struct snapshot *l)
{
	const struct entry		*x = snapshot_entries(a), *y;
	const struct snapshot_text	*p = snapshot_texts(a), *q;
	size_t				 i;

	if (snapshot_count(a) != snapshot_count(l) ||
	    snapshot_bytes(a) != snapshot_bytes(l) ||
	    snapshot_ntexts(a) != snapshot_ntexts(l)) {
		return 0;
	}
	for (i = 0; i < snapshot_count(a); i++)
		if ((y = find(l, x[i].key)) == NULL || x[i].len != y->len ||
		    memcmp(x[i].val, y->val, x[i].len) != 0 ||
		    x[i].flags != y->flags || x[i].family != y->family ||
		    x[i].phase != y->phase || x[i].subject != y->subject ||
		    !derived(y))
			return 0;
	for (i = 0; i < snapshot_ntexts(a); i++)
		if ((q = find_text(l, p[i].name)) == NULL ||
		    p[i].len != q->len ||
		    memcmp(p[i].text, q->text, p[i].len) != 0 ||
		    q->text[q->len] != '\0')
			return 0;
	return 1;
}

/* The file's bytes. */
static unsigned char *
slurp(size_t *len)
{
	FILE		*f = fopen(path, "rb");
	unsigned char	*p;
	long		 n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	*len = fread(p, 1, (size_t)n, f);
	fclose(f);
	return p;
}

static void
spit(const unsigned char *p, size_t len)
{
	FILE	*f = fopen(path, "wb");

	fwrite(p, 1, len, f);
	fclose(f);
}

/* Whether the file at path loads (and frees what it loaded). */
static int
loads(const char *with)
{
	struct snapshot	*s = snapshot_load(path, with, &kf, st, NULL);

	if (s == NULL)
		return 0;
	snapshot_free(s);
	return 1;
}

/* Whether it is refused, and the reason has words in it. */
static int
refused_for(const char *words)
{
	struct snapshot	*s;
	int		 ok;

	log_setup(LOG_FORMAT_TEXT, LOG_INFO);
	CAPTURE(s = load());
	log_setup(LOG_FORMAT_TEXT, LOG_CRIT);
	ok = s == NULL && strstr(captured, "snapshot_ignored") != NULL &&
	    strstr(captured, words) != NULL;
	if (!ok)
		fprintf(stderr, "wanted \"%s\" in: %s", words, captured);
	snapshot_free(s);
	return ok;
}

static void
test_round_trip(void)
{
	struct snapshot	*s = small(), *l;
	struct stat	 sb;
	char		 tmp[300];

	T_INTEQ(save_new(s), 0);
	snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
	T_CHECK(stat(tmp, &sb) == -1 && errno == ENOENT);
	T_CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	l = load();
	T_CHECK(l != NULL);
	if (l == NULL)
		goto out;
	/* The wire key and servers are derived, never the ones given. */
	T_CHECK(same(s, l));
	T_CHECK(strcmp(snapshot_entries(l)[0].wire, "planted:wire") != 0);
	T_STREQ(snapshot_entries(l)[0].wire, "default:1:program-a");
	T_INTEQ(snapshot_created(l) / 1000, wall_ms() / 1000);
	T_INTEQ(snapshot_bytes(l), 11);
	T_STREQ(snapshot_texts(l)[0].text, "{\"sites\":[]}");

	/* Loaded without a key function: no wire keys, no servers. */
	snapshot_free(l);
	l = snapshot_load(path, settings, NULL, NULL, NULL);
	T_CHECK(l != NULL && snapshot_entries(l)[1].wire == NULL &&
	    snapshot_entries(l)[1].servers == 0);
out:
	snapshot_free(l);
	snapshot_free(s);
}

/* A bigger snapshot: n programs of about 2 KB, their texts. */
static struct snapshot *
many(size_t n, char ***keep, const char *tag)
{
	struct snapshot	*s = snapshot_new();
	struct entry	 e;
	char		 key[64], val[2048], name[64];
	size_t		 i;

	*keep = NULL;
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof key, "program-%04zu", i);
		memset(val, 'a' + (int)(i % 26), sizeof val);
		snprintf(val, 40, "value %zu %s", i, i == n / 2 ? tag : "");
		e = entry(key, val, sizeof val, 1, FAM_PROGRAM);
		snapshot_add_copy(s, &e);
		snprintf(name, sizeof name, "program\nlms\n%04zu", i);
		snapshot_add_text(s, name, val, strlen(val));
	}
	return s;
}

static void
test_deltas(void)
{
	struct snapfile	*f = snapfile_new(path), *g;
	struct snapshot	*a, *b, *c, *l;
	struct entry	 e;
	struct stat	 sb, sb2;
	const char	*kind = NULL;
	char		**keep;
	size_t		 len1, len2;

	a = many(200, &keep, "");
	T_INTEQ(save(f, NULL, a, &kind), 0);
	T_STREQ(kind, "base");
	stat(path, &sb);
	len1 = (size_t)sb.st_size;

	/* One program changed, one gone, one new, a text changed. */
	b = snapshot_new();
	for (size_t i = 0; i < snapshot_count(a); i++)
		if (i != 7 && i != 100)
			snapshot_add(b, &snapshot_entries(a)[i]);
	e = entry("program-0100", "changed", 7, 1, FAM_PROGRAM);
	snapshot_add(b, &e);
	e = entry("course-programs-new", "[]", 2, 1, FAM_COURSE);
	snapshot_add(b, &e);
	snapshot_copy_texts(b, a);
	snapshot_add_text(b, "sites", "{\"version\":2}", 13);
	T_INTEQ(save(f, a, b, &kind), 0);
	T_STREQ(kind, "delta");
	stat(path, &sb2);
	len2 = (size_t)sb2.st_size;
	/* The same file, appended to; far less than the base. */
	T_CHECK(sb.st_ino == sb2.st_ino && len2 > len1 &&
	    len2 - len1 < len1 / 4);
	l = load();
	T_CHECK(l != NULL && same(b, l));
	snapshot_free(l);

	/* Nothing changed: nothing written. */
	c = snapshot_new();
	for (size_t i = 0; i < snapshot_count(b); i++)
		snapshot_add(c, &snapshot_entries(b)[i]);
	snapshot_copy_texts(c, b);
	T_INTEQ(save(f, b, c, &kind), 0);
	T_STREQ(kind, "none");
	stat(path, &sb);
	T_INTEQ(sb.st_size, len2);

	/* Texts removed, another delta on top; a fresh load follows. */
	snapshot_free(b);
	b = snapshot_new();
	for (size_t i = 1; i < snapshot_count(c); i++)
		snapshot_add(b, &snapshot_entries(c)[i]);
	snapshot_add_text(b, "sites", "{}", 2);
	T_INTEQ(save(f, c, b, &kind), 0);
	T_STREQ(kind, "delta");
	l = load();
	T_CHECK(l != NULL && same(b, l));
	snapshot_free(l);

	/* A writer that does not know what the file holds writes a base. */
	T_INTEQ(save(f, a, b, &kind), 0);
	T_STREQ(kind, "base");
	/* One that loaded it appends to it. */
	g = snapfile_new(path);
	l = snapshot_load(path, settings, &kf, st, g);
	T_CHECK(l != NULL);
	T_INTEQ(save(g, l, c, &kind), 0);
	T_STREQ(kind, "delta");
	snapshot_free(l);
	l = load();
	T_CHECK(l != NULL && same(c, l));
	snapshot_free(l);
	/* A file replaced behind its back is never appended to. */
	T_INTEQ(save(f, b, a, &kind), 0);
	T_INTEQ(save(g, c, b, &kind), 0);
	T_STREQ(kind, "base");
	l = load();
	T_CHECK(l != NULL && same(b, l));
	snapshot_free(l);
	snapfile_free(g);

	/* Deltas past a quarter of the base (at least 1 MB): a new base. */
	snapshot_free(c);
	c = many(200, &keep, "again");
	for (int round = 0; round < 2000 && strcmp(kind, "base") != 0;
	    round++) {
		struct snapshot	*d = snapshot_new();
		char		 val[32];

		for (size_t i = 0; i < snapshot_count(c); i++)
			snapshot_add(d, &snapshot_entries(c)[i]);
		snprintf(val, sizeof val, "%d", round);
		snapshot_add_text(d, "round", val, strlen(val));
		T_INTEQ(save(f, b, d, &kind), 0);
		snapshot_free(b);
		b = d;
		if (round == 0)
			T_STREQ(kind, "delta");
	}
	T_STREQ(kind, "base");
	l = load();
	T_CHECK(l != NULL && same(b, l));
	snapshot_free(l);
	snapfile_free(f);
	snapshot_free(a);
	snapshot_free(b);
	snapshot_free(c);
}

/* A base and a delta, in the file: what corruption tests break. */
static void
two_segments(void)
{
	struct snapfile	*f = snapfile_new(path);
	struct snapshot	*a = small(), *b = small();
	struct entry	 e = entry("program-b", "B", 1, 1, FAM_PROGRAM);

	snapshot_add(b, &e);
	T_INTEQ(save(f, NULL, a, NULL), 0);
	T_INTEQ(save(f, a, b, NULL), 0);
	snapfile_free(f);
	snapshot_free(a);
	snapshot_free(b);
}

static void
test_every_byte_corrupt(void)
{
	unsigned char	*p;
	size_t		 len, i, accepted = 0;

	two_segments();
	p = slurp(&len);
	T_CHECK(p != NULL && len > 200);
	for (i = 0; p != NULL && i < len; i++) {
		p[i] ^= 0x20;
		spit(p, len);
		accepted += (size_t)loads(settings);
		p[i] ^= 0x01;		/* another flip, another bit */
		spit(p, len);
		accepted += (size_t)loads(settings);
		p[i] ^= 0x21;
	}
	T_INTEQ(accepted, 0);
	/* And the intact bytes still load. */
	spit(p, len);
	T_CHECK(loads(settings));
	free(p);
}

static void
test_truncated(void)
{
	struct snapshot	*l;
	unsigned char	*p, *q;
	size_t		 len, i, accepted = 0;

	two_segments();
	p = slurp(&len);
	for (i = 0; p != NULL && i < len; i++) {
		spit(p, i);
		accepted += (size_t)loads(settings);
	}
	T_INTEQ(accepted, 0);
	spit(p, len / 2);
	T_CHECK(refused_for("truncated"));
	/*
	 * Bytes after the committed length (an append that crashed before
	 * its header) are never read: the file is what it was.
	 */
	q = malloc(len + 100);
	memcpy(q, p, len);
	memset(q + len, 0x5a, 100);
	spit(q, len + 100);
	l = load();
	T_CHECK(l != NULL && snapshot_count(l) == 4);
	snapshot_free(l);
	free(q);
	free(p);
}

static void
test_foreign(void)
{
	struct snapshot	*s = small();
	unsigned char	*p;
	size_t		 len;

	T_INTEQ(save_new(s), 0);
	snapshot_free(s);
	/* Other settings: refused, whatever the difference. */
	T_CHECK(!loads("key_function=edx\nkey_prefix=other\n"
	    "servers=127.0.0.1:1,127.0.0.1:2\n"));
	T_CHECK(!loads("key_function=edx\nkey_prefix=default\n"
	    "servers=127.0.0.1:1\n"));
	T_CHECK(!loads(""));
	T_CHECK(loads(settings));
	log_setup(LOG_FORMAT_TEXT, LOG_INFO);
	CAPTURE((void)loads("key_function=edx\nkey_prefix=other\n"
	    "servers=127.0.0.1:1,127.0.0.1:2\n"));
	log_setup(LOG_FORMAT_TEXT, LOG_CRIT);
	T_CHECK(strstr(captured, "key_prefix=default in the file, "
	    "key_prefix=other configured") != NULL);

	/* Not a snapshot at all; another format version (format 3's). */
	spit((const unsigned char *)"hello\n", 6);
	T_CHECK(refused_for("not a snapshot file"));
	p = malloc(4096);
	memset(p, 'x', 4096);
	spit(p, 4096);
	T_CHECK(!loads(settings));
	free(p);
	s = small();
	T_INTEQ(save_new(s), 0);
	snapshot_free(s);
	p = slurp(&len);
	p[8] = 3;
	spit(p, len);
	T_CHECK(refused_for("format version 3, this daemon reads 4"));
	free(p);

	/* A symbolic link is not followed; none there: NULL with ENOENT. */
	unlink(path);
	T_CHECK(symlink("/etc/passwd", path) == 0);
	T_CHECK(refused_for("symbolic link"));
	unlink(path);
	errno = 0;
	T_CHECK(load() == NULL && errno == ENOENT);
}

/* --- files made by hand, their checksums right ------------------------ */

static void
le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void
le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Append a record to b. */
static void
rec(struct buf *b, int op, int fam, uint32_t flags, const char *name,
    const char *val, size_t vlen)
{
	unsigned char	h[24];

	memset(h, 0, sizeof h);
	h[0] = (unsigned char)op;
	h[1] = (unsigned char)fam;
	le32(h + 4, flags);
	le32(h + 8, (uint32_t)strlen(name));
	le64(h + 16, vlen);
	buf_add(b, h, sizeof h);
	buf_add(b, name, strlen(name) + 1);
	buf_add(b, val, vlen);
	buf_addc(b, 0);
}

/*
 * Write path from raw segment payloads (nrec records each), the way the
 * format says, with every checksum right: what someone who edits a file
 * and recomputes its digests can make.  raw_lie: the raw length the first
 * segment claims instead (0: the truth).
 */
static void
craft(struct buf *segs, const size_t *nrec, size_t n, uint64_t raw_lie)
{
	crypto_generichash_state	 hs;
	unsigned char			 prev[32], hdr[128], sh[96], *z;
	struct buf			 body;
	uint64_t			 raw_total = 0, base_raw = 0;
	size_t				 i, zl, slen = strlen(settings);
	FILE				*fp;

	memset(prev, 0, sizeof prev);
	buf_init(&body);
	for (i = 0; i < n; i++) {
		uint64_t raw = i == 0 && raw_lie != 0 ? raw_lie : segs[i].len;

		z = malloc(ZSTD_compressBound(segs[i].len));
		zl = ZSTD_compress(z, ZSTD_compressBound(segs[i].len),
		    segs[i].data != NULL ? segs[i].data : (unsigned char *)"",
		    segs[i].len, 1);
		memset(sh, 0, sizeof sh);
		memcpy(sh, "PCDSEGM\n", 8);
		le32(sh + 8, i == 0 ? 1 : 2);
		le64(sh + 16, i);
		le64(sh + 24, zl);
		le64(sh + 32, raw);
		le64(sh + 40, nrec[i]);
		crypto_generichash_init(&hs, NULL, 0, 32);
		crypto_generichash_update(&hs, prev, 32);
		crypto_generichash_update(&hs, z, zl);
		crypto_generichash_update(&hs, sh, 64);
		crypto_generichash_final(&hs, prev, 32);
		memcpy(sh + 64, prev, 32);
		buf_add(&body, sh, sizeof sh);
		buf_add(&body, z, zl);
		free(z);
		raw_total += raw;
		if (i == 0)
			base_raw = raw;
	}
	memset(hdr, 0, sizeof hdr);
	memcpy(hdr, "PCDSNAP\n", 8);
	le32(hdr + 8, 4);
	le32(hdr + 12, (uint32_t)slen);
	le64(hdr + 16, 128 + slen);
	le64(hdr + 24, 128 + slen + body.len);
	le64(hdr + 32, n);
	le64(hdr + 40, raw_total);
	le64(hdr + 48, base_raw);
	le64(hdr + 56, wall_ms());
	memcpy(hdr + 64, prev, 32);
	crypto_generichash_init(&hs, NULL, 0, 32);
	crypto_generichash_update(&hs, hdr, 96);
	crypto_generichash_update(&hs, (const unsigned char *)settings, slen);
	crypto_generichash_final(&hs, hdr + 96, 32);
	fp = fopen(path, "wb");
	fwrite(hdr, 1, sizeof hdr, fp);
	fwrite(settings, 1, slen, fp);
	fwrite(body.data, 1, body.len, fp);
	fclose(fp);
	buf_free(&body);
}

/* A crafted base of one record, then (if op) a delta of one. */
static void
craft2(int op, int fam, const char *name, const char *val, size_t vlen,
    bool delta)
{
	struct buf	s[2];
	size_t		n[2] = { 1, 1 };

	buf_init(&s[0]);
	buf_init(&s[1]);
	if (delta) {
		rec(&s[0], 1, FAM_PROGRAM, 1, "program-a", "A", 1);
		rec(&s[1], op, fam, 0, name, val, vlen);
	} else
		rec(&s[0], op, fam, 1, name, val, vlen);
	craft(s, n, delta ? 2 : 1, 0);
	buf_free(&s[0]);
	buf_free(&s[1]);
}

static void
test_hand_made(void)
{
	struct snapshot	*l;
	struct buf	 s[2];
	size_t		 n[2];

	/* The crafting itself is right: a good one loads. */
	craft2(1, FAM_PROGRAM, "program-x", "X", 1, false);
	l = load();
	T_CHECK(l != NULL && snapshot_count(l) == 1);
	/* ...with the wire key made here, whatever the file would say. */
	T_CHECK(l != NULL && derived(&snapshot_entries(l)[0]));
	snapshot_free(l);

	/* No key outside the nine families, none in another's. */
	craft2(1, FAM_PROGRAM, "victim", "X", 1, false);
	T_CHECK(refused_for("a key outside its family"));
	craft2(1, FAM_PROGRAM, "program-uuids-lms", "X", 1, false);
	T_CHECK(refused_for("a key outside its family"));
	craft2(1, FAM_COURSE, "program-x", "X", 1, false);
	T_CHECK(refused_for("a key outside its family"));
	craft2(1, FAM_COUNT, "program-x", "X", 1, false);
	T_CHECK(refused_for("a key outside its family"));
	/* Nothing but the four records; removals in deltas only. */
	craft2(9, 0, "program-x", "", 0, false);
	T_CHECK(refused_for("an unknown record"));
	craft2(2, 0, "program-a", "", 0, false);
	T_CHECK(refused_for("a malformed removal"));
	craft2(2, 0, "program-zz", "", 0, true);
	T_CHECK(refused_for("a removal of what is not there"));
	craft2(3, 0, "t", "a\0b", 3, false);
	T_CHECK(refused_for("a malformed text"));
	craft2(3, 1, "t", "ab", 2, false);
	T_CHECK(refused_for("a malformed text"));
	craft2(1, FAM_PROGRAM, "", "X", 1, false);
	T_CHECK(refused_for("a malformed record"));
	/* A removal, then the key again: what a delta may do. */
	buf_init(&s[0]);
	buf_init(&s[1]);
	rec(&s[0], 1, FAM_PROGRAM, 1, "program-a", "A", 1);
	rec(&s[0], 3, 0, 0, "t", "T", 1);
	rec(&s[1], 2, 0, 0, "program-a", "", 0);
	rec(&s[1], 1, FAM_PROGRAM, 1, "program-a", "A2", 2);
	rec(&s[1], 4, 0, 0, "t", "", 0);
	n[0] = 2;
	n[1] = 3;
	craft(s, n, 2, 0);
	l = load();
	T_CHECK(l != NULL && snapshot_count(l) == 1 && snapshot_ntexts(l) ==
	    0 && snapshot_entries(l)[0].len == 2);
	snapshot_free(l);
	/* A key twice in a base; a record count that lies. */
	rec(&s[0], 1, FAM_PROGRAM, 1, "program-a", "A", 1);
	n[0] = 3;
	craft(s, n, 1, 0);
	T_CHECK(refused_for("a key twice"));
	n[0] = 2;
	craft(s, n, 1, 0);
	T_CHECK(refused_for("bytes after its last record"));
	n[0] = 4;
	craft(s, n, 1, 0);
	T_CHECK(refused_for("malformed segment 0"));
	n[0] = 3;
	s[0].len -= 20;
	craft(s, n, 1, 0);
	T_CHECK(refused_for("a truncated record"));
	s[0].len += 20;
	/* A raw length that is not the frame's; one over the bound. */
	n[0] = 3;
	craft(s, n, 1, s[0].len + 1);
	T_CHECK(refused_for("not one zstd frame"));
	craft(s, n, 1, SNAPSHOT_MAX_BYTES + 1);
	T_CHECK(refused_for("over"));
	buf_free(&s[0]);
	buf_free(&s[1]);
}

/* A loaded snapshot is its own: the file replaced under it changes nothing. */
static void
test_replaced_under_a_load(void)
{
	struct snapshot	*s = small(), *l;
	const struct entry *v;
	size_t		 i, sum = 0;
	int		 fd;

	T_INTEQ(save_new(s), 0);
	l = load();
	T_CHECK(l != NULL);
	if (l == NULL) {
		snapshot_free(s);
		return;
	}
	/* Truncated in place, then overwritten: a mapping would fault. */
	fd = open(path, O_WRONLY);
	T_CHECK(fd != -1 && ftruncate(fd, 0) == 0);
	T_CHECK(write(fd, "garbage", 7) == 7);
	close(fd);
	v = snapshot_entries(l);
	for (i = 0; i < snapshot_count(l); i++)
		for (size_t j = 0; j < v[i].len; j++)
			sum += v[i].val[j];
	T_CHECK(sum > 0);
	T_CHECK(same(s, l));
	snapshot_free(l);
	snapshot_free(s);
}

static void
test_save_errors(void)
{
	struct snapshot		*s = small();
	struct snapfile		*f;
	struct snapshot_outcome	 o;
	char			 other[300];
	int			 rc = 0;

	/*
	 * A directory this process is not the writer of: -1, why in the
	 * outcome, nothing said (a save runs off the loop: the caller
	 * logs), nothing written.
	 */
	snprintf(other, sizeof other, "%s/other", dir);
	mkdir(other, 0700);
	snprintf(other, sizeof other, "%s/other/%s", dir, SNAPSHOT_FILE);
	f = snapfile_new(other);
	CAPTURE(rc = snapfile_save(f, NULL, s, settings, &o));
	T_INTEQ(rc, -1);
	T_STREQ(captured, "");
	T_STREQ(o.op, "lock");
	T_CHECK(access(other, F_OK) == -1);
	log_setup(LOG_FORMAT_TEXT, LOG_INFO);
	CAPTURE(snapshot_log_save(s, other, &o, rc));
	T_CHECK(strstr(captured, "snapshot_error") != NULL &&
	    strstr(captured, "op=lock") != NULL);
	log_setup(LOG_FORMAT_TEXT, LOG_CRIT);
	snapfile_free(f);
	/* One anybody can write to: op=state_dir. */
	snprintf(other, sizeof other, "%s/other", dir);
	chmod(other, 0777);
	snprintf(other, sizeof other, "%s/other/%s", dir, SNAPSHOT_FILE);
	f = snapfile_new(other);
	T_INTEQ(snapfile_save(f, NULL, s, settings, &o), -1);
	T_STREQ(o.op, "state_dir");
	T_CHECK(strstr(o.error, "writable by group or others") != NULL);
	snapfile_free(f);
	/* A save that works says nothing either, until it is logged. */
	f = snapfile_new(path);
	CAPTURE(rc = snapfile_save(f, NULL, s, settings, &o));
	T_INTEQ(rc, 0);
	T_STREQ(captured, "");
	T_STREQ(o.error, "");
	T_CHECK(o.written > 0 && o.written == o.file_bytes);
	snapfile_free(f);
	snapshot_free(s);
}

/* A temporary file planted at this process's own name is not followed. */
static void
test_planted_tmp(void)
{
	struct snapshot	*s = small();
	char		 tmp[300], victim[300], b[16];
	int		 fd;

	snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
	snprintf(victim, sizeof victim, "%s/victim", dir);
	fd = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	T_CHECK(write(fd, "precious", 8) == 8);
	close(fd);
	T_CHECK(symlink(victim, tmp) == 0);
	T_INTEQ(save_new(s), 0);
	fd = open(victim, O_RDONLY);
	T_INTEQ(read(fd, b, sizeof b), 8);
	close(fd);
	T_CHECK(memcmp(b, "precious", 8) == 0);
	T_CHECK(access(tmp, F_OK) == -1 && loads(settings));
	unlink(victim);
	snapshot_free(s);
}

/* The state directory's one writer. */
static void
test_statedir(void)
{
	char	sub[200], stale[300], why[512];
	pid_t	holder, child;
	int	status, fds[2];

	snprintf(sub, sizeof sub, "%s/sd", dir);
	/* Made if missing; a second writer (another process) is refused. */
	T_INTEQ(statedir_lock(sub, &holder, why, sizeof why), STATEDIR_LOCKED);
	T_CHECK(statedir_held(sub) && !statedir_held(dir));
	T_CHECK(pipe(fds) == 0);
	if ((child = fork()) == 0) {
		statedir_unlock();	/* the parent's, inherited: not ours */
		status = statedir_lock(sub, &holder, why, sizeof why);
		(void)write(fds[1], &holder, sizeof holder);
		(void)write(fds[1], why, sizeof why);
		_exit(status);
	}
	waitpid(child, &status, 0);
	T_INTEQ(WEXITSTATUS(status), STATEDIR_BUSY);
	T_CHECK(read(fds[0], &holder, sizeof holder) == sizeof holder);
	T_CHECK(read(fds[0], why, sizeof why) == sizeof why);
	T_INTEQ(holder, getpid());
	T_CHECK(strstr(why, "in use by another programs-cached") != NULL);
	close(fds[0]);
	close(fds[1]);
	statedir_unlock();

	/* Stale temporary files go when the lock is taken; others stay. */
	snprintf(stale, sizeof stale, "%s/programs-cache.snapshot.99999.tmp",
	    sub);
	close(open(stale, O_WRONLY | O_CREAT, 0600));
	snprintf(why, sizeof why, "%s/programs-cache.snapshot.tmp", sub);
	close(open(why, O_WRONLY | O_CREAT, 0600));
	snprintf(sub, sizeof sub, "%s/sd/keep.tmp", dir);
	close(open(sub, O_WRONLY | O_CREAT, 0600));
	snprintf(sub, sizeof sub, "%s/sd", dir);
	T_INTEQ(statedir_lock(sub, &holder, why, sizeof why), STATEDIR_LOCKED);
	T_CHECK(access(stale, F_OK) == -1);
	snprintf(stale, sizeof stale, "%s/programs-cache.snapshot.tmp", sub);
	T_CHECK(access(stale, F_OK) == -1);
	snprintf(stale, sizeof stale, "%s/keep.tmp", sub);
	T_CHECK(access(stale, F_OK) == 0);
	statedir_unlock();
	/* A directory others may write to is not used. */
	chmod(sub, 0777);
	T_INTEQ(statedir_lock(sub, &holder, why, sizeof why),
	    STATEDIR_UNTRUSTED);
	T_CHECK(strstr(why, "writable by group or others") != NULL);
	T_CHECK(!statedir_held(sub));
}

/* The settings a file is bound to, from a configuration. */
static void
test_settings(void)
{
	char	*set = snapshot_settings(cfg);

	T_STREQ(set, "key_function=edx\nkey_prefix=default\nkey_version=1\n"
	    "long_key_hash=md4\nvalue_format=pickle\npickle_protocol=4\n"
	    "pathway_ids=keys\ndistribution=rendezvous\n"
	    "servers=127.0.0.1:1,127.0.0.1:2\n");
	free(set);
}

int
main(void)
{
	char	cpath[300], why[512];
	FILE	*f;
	pid_t	 holder;

	log_setup(LOG_FORMAT_TEXT, LOG_CRIT);
	if (mkdtemp(dir) == NULL || sodium_init() < 0) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof path, "%s/%s", dir, SNAPSHOT_FILE);
	snprintf(cpath, sizeof cpath, "%s/test.conf", dir);
	f = fopen(cpath, "w");
	fprintf(f, "[memcached]\nservers = 127.0.0.1:1, 127.0.0.1:2\n"
	    "[site a.example]\nsite_id = 1\n");
	fclose(f);
	cfg = cfg_load(cpath);
	unlink(cpath);
	T_CHECK(cfg != NULL);
	if (cfg == NULL)
		return t_done();
	st = store_new(cfg);
	key_init(&kf, KEYFN_EDX, KEYHASH_MD4, "default", "1");

	test_settings();
	test_statedir();
	T_INTEQ(statedir_lock(dir, &holder, why, sizeof why), STATEDIR_LOCKED);
	test_round_trip();
	test_deltas();
	test_every_byte_corrupt();
	test_truncated();
	test_foreign();
	test_hand_made();
	test_replaced_under_a_load();
	test_save_errors();
	test_planted_tmp();
	statedir_unlock();

	store_free(st);
	key_clear(&kf);
	cfg_free(cfg);
	snprintf(cpath, sizeof cpath, "rm -rf %s", dir);
	(void)system(cpath);
	return t_done();
}
