/*
 * pickle.c: a Python pickle encoder for JSON-shaped values.
 *
 * Byte parity with CPython's C pickler (Modules/_pickle.c, 3.11) depends on
 * the order of small things, so the code follows _pickle.c closely:
 * pickle_save is the start of save() (the frame boundary check), pickle_room
 * is _Pickler_Write (which opens a frame), pickle_commit is
 * _Pickler_CommitFrame, and the batch opcodes are written at the moments
 * batch_dict_exact and batch_list_exact write them (the names are those
 * of CPython's Modules/_pickle.c).
 *
 * The memo only has to answer "was this object memoised, and at which
 * index?" for the objects that can repeat in a JSON-shaped value: dict keys
 * of one document (by text), objects passed with an identity pointer, and
 * CPython's singleton strings.  Containers and fresh strings only take a
 * memo index.  Keys live in an open-addressing table whose entries carry a
 * generation number, so forgetting them between values costs nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jsonld.h"
#include "pickle.h"
#include "pickle_op.h"
#include "util.h"

#define PICKLE_BATCH		1000
#define PICKLE_FRAME_MIN	4
#define PICKLE_FRAME_TARGET	(64 * 1024)
#define PICKLE_FRAME_HEADER	9

/* "" and the 256 one-character strings below U+0100. */
#define PICKLE_SINGLETONS	257
#define PICKLE_MEMO_MIN		256	/* initial key table slots */

#define PICKLE_STR(x)		PICKLE_STR1(x)
#define PICKLE_STR1(x)		#x

/* A memoised key (text in the memo's arena) or identity pointer. */
struct pickle_ent {
	uint64_t	 hash;
	const void	*ident;		/* NULL for a key */
	size_t		 off;		/* key text in memo->text */
	size_t		 len;
	uint32_t	 gen;		/* live if equal to memo->gen */
	uint32_t	 idx;		/* memo index */
};

struct pickle_memo {
	struct pickle_ent	*tab;
	size_t			 mask;		/* slots - 1 */
	size_t			 count;		/* live entries */
	uint32_t		 gen;
	struct buf		 text;		/* copies of the keys */
	uint32_t		 single[PICKLE_SINGLETONS]; /* index + 1, or 0 */
};

static void	pickle_fail(struct pickle *, const char *);
static void	pickle_clear(struct pickle *);
static void	pickle_memo_reset(struct pickle_memo *);
static void	pickle_memo_grow(struct pickle_memo *);
static struct pickle_ent *pickle_memo_find(struct pickle_memo *, uint64_t,
		    const void *, const char *, size_t);
static void	pickle_memo_add(struct pickle_memo *, struct pickle_ent *,
		    uint64_t, const void *, const char *, size_t, uint32_t);
static void	pickle_commit(struct pickle *);
static int	pickle_save(struct pickle *);
static void	pickle_done(struct pickle *);
static void	pickle_put(struct pickle *);
static void	pickle_get(struct pickle *, uint32_t);
static int	pickle_emit_str(struct pickle *, const char *, size_t);
static int	pickle_singleton(const char *, size_t);
static void	pickle_str_as(struct pickle *, const char *, size_t,
		    const void *, bool);
static void	pickle_container(struct pickle *, char, size_t);

/* Little-endian store of the low n bytes of v. */
static inline void
pickle_le(unsigned char *d, uint64_t v, int n)
{
	int	i;

	for (i = 0; i < n; i++) {
		d[i] = (unsigned char)v;
		v >>= 8;
	}
}

/*
 * Make room for n more bytes and return where they go, first opening a
 * frame (reserving its header) if framing is on and none is open, as
 * _Pickler_Write does.  pickle_wrote commits the bytes.
 */
static inline unsigned char *
pickle_room(struct pickle *p, size_t n)
{
	struct buf	*b = &p->out;
	bool		 open = p->framing && p->frame_start == -1;
	size_t		 need = n + (open ? PICKLE_FRAME_HEADER : 0);

	if (b->data == NULL || b->cap - b->len < need + 1)
		buf_reserve(b, need);
	if (open) {
		p->frame_start = (long)b->len;
		memset(b->data + b->len, 0xfe, PICKLE_FRAME_HEADER);
		b->len += PICKLE_FRAME_HEADER;
	}
	return b->data + b->len;
}

/* Account for n bytes written at pickle_room's pointer. */
static inline void
pickle_wrote(struct pickle *p, size_t n)
{
	p->out.len += n;
	p->out.data[p->out.len] = '\0';
}

/* Write one opcode byte. */
static inline void
pickle_op(struct pickle *p, unsigned char op)
{
	*pickle_room(p, 1) = op;
	pickle_wrote(p, 1);
}

/* Write two opcode bytes in one go (a batch end and the next MARK). */
static inline void
pickle_op2(struct pickle *p, unsigned char op1, unsigned char op2)
{
	unsigned char	*u = pickle_room(p, 2);

	u[0] = op1;
	u[1] = op2;
	pickle_wrote(p, 2);
}

/*
 * Hash key text a word at a time, as keys are short and hashed often: the
 * tail is read as overlapping loads rather than byte by byte.
 */
static inline uint64_t
pickle_hash(const char *s, size_t n)
{
	uint64_t	h = 0x9e3779b97f4a7c15ULL ^ (n * 0xff51afd7ed558ccdULL);
	uint64_t	w;
	uint32_t	a, b;
	size_t		left = n;

	while (left > 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 31;
		s += 8;
		left -= 8;
	}
	if (n >= 8)
		memcpy(&w, s + left - 8, 8);
	else if (left >= 4) {
		memcpy(&a, s, 4);
		memcpy(&b, s + left - 4, 4);
		w = (uint64_t)a << 32 | b;
	} else if (left != 0) {
		w = (uint64_t)(unsigned char)s[0] << 16 |
		    (uint64_t)(unsigned char)s[left / 2] << 8 |
		    (unsigned char)s[left - 1];
	} else
		w = 0;
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* Hash an identity pointer (different mixing from text is not needed). */
static inline uint64_t
pickle_hash_ptr(const void *ident)
{
	uint64_t	h = (uint64_t)(uintptr_t)ident;

	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	return h;
}

/* Record the first error; every later call becomes a no-op. */
static void
pickle_fail(struct pickle *p, const char *why)
{
	if (!p->failed) {
		p->failed = true;
		p->error = why;
	}
}

/* Forget every entry: a new generation makes old entries look empty. */
static void
pickle_memo_reset(struct pickle_memo *m)
{
	if (++m->gen == 0) {
		memset(m->tab, 0, (m->mask + 1) * sizeof *m->tab);
		m->gen = 1;
	}
	m->count = 0;
	if (m->text.data != NULL)
		buf_truncate(&m->text, 0);
	memset(m->single, 0, sizeof m->single);
}

/* Double the key table, keeping the live entries. */
static void
pickle_memo_grow(struct pickle_memo *m)
{
	struct pickle_ent	*old = m->tab, *e;
	size_t			 oldn = m->mask + 1, i, j;

	m->mask = oldn * 2 - 1;
	m->tab = xcalloc(oldn * 2, sizeof *m->tab);
	for (i = 0; i < oldn; i++) {
		if (old[i].gen != m->gen)
			continue;
		j = old[i].hash & m->mask;
		while (m->tab[j].gen == m->gen)
			j = (j + 1) & m->mask;
		e = &m->tab[j];
		*e = old[i];
	}
	free(old);
}

/*
 * Find a key (ident NULL) or identity pointer.  Returns the live entry, or
 * the empty slot where it belongs.  The caller has made room for one more.
 */
static struct pickle_ent *
pickle_memo_find(struct pickle_memo *m, uint64_t hash, const void *ident,
    const char *s, size_t n)
{
	struct pickle_ent	*e;
	size_t			 i = hash & m->mask;

	for (;;) {
		e = &m->tab[i];
		if (e->gen != m->gen)
			return e;
		if (e->hash == hash && e->ident == ident && (ident != NULL ||
		    (e->len == n && memcmp(m->text.data + e->off, s, n) == 0)))
			return e;
		i = (i + 1) & m->mask;
	}
}

/* Fill the empty slot e that pickle_memo_find returned. */
static void
pickle_memo_add(struct pickle_memo *m, struct pickle_ent *e, uint64_t hash,
    const void *ident, const char *s, size_t n, uint32_t idx)
{
	e->hash = hash;
	e->ident = ident;
	e->gen = m->gen;
	e->idx = idx;
	e->len = n;
	e->off = m->text.len;
	if (ident == NULL)
		buf_add(&m->text, s, n);
	m->count++;
}

/* Set up an encoder for one protocol; no value yet. */
void
pickle_init(struct pickle *p, int proto)
{
	memset(p, 0, sizeof *p);
	buf_init(&p->out);
	p->proto = proto;
	p->memo = xcalloc(1, sizeof *p->memo);
	p->memo->tab = xcalloc(PICKLE_MEMO_MIN, sizeof *p->memo->tab);
	p->memo->mask = PICKLE_MEMO_MIN - 1;
	buf_init(&p->memo->text);
	pickle_reset(p);
}

/* Free the memo and the output (unless taken). */
void
pickle_free(struct pickle *p)
{
	if (p->memo != NULL) {
		free(p->memo->tab);
		buf_free(&p->memo->text);
		free(p->memo);
		p->memo = NULL;
	}
	buf_free(&p->out);
}

/* Reset everything but the output bytes. */
static void
pickle_clear(struct pickle *p)
{
	pickle_memo_reset(p->memo);
	p->framing = false;
	p->frame_start = -1;
	p->memo_next = 0;
	p->depth = 0;
	p->complete = false;
	p->failed = false;
	p->error = NULL;
	if (p->proto < 2 || p->proto > 5)
		pickle_fail(p, "unsupported pickle protocol (not 2 to 5)");
}

/* Forget the value: memo, output, error. */
void
pickle_reset(struct pickle *p)
{
	pickle_clear(p);
	if (p->out.data != NULL)
		buf_truncate(&p->out, 0);
}

/* Start a value: reset, PROTO, then framing (4 and up). */
void
pickle_begin(struct pickle *p)
{
	unsigned char	hdr[2];

	pickle_reset(p);
	if (p->failed)
		return;
	hdr[0] = OP_PROTO;
	hdr[1] = (unsigned char)p->proto;
	buf_add(&p->out, hdr, sizeof hdr);
	p->framing = p->proto >= 4;
}

/*
 * Commit the open frame: write its header, or drop the header if the
 * payload is under FRAME_SIZE_MIN bytes (_Pickler_CommitFrame).
 */
static void
pickle_commit(struct pickle *p)
{
	unsigned char	*h;
	size_t		 flen;

	if (p->frame_start == -1)
		return;
	h = p->out.data + p->frame_start;
	flen = p->out.len - (size_t)p->frame_start - PICKLE_FRAME_HEADER;
	if (flen >= PICKLE_FRAME_MIN) {
		h[0] = OP_FRAME;
		pickle_le(h + 1, flen, 8);
	} else {
		memmove(h, h + PICKLE_FRAME_HEADER, flen);
		p->out.len -= PICKLE_FRAME_HEADER;
		p->out.data[p->out.len] = '\0';
	}
	p->frame_start = -1;
}

/*
 * Start saving one object, as save() starts: refuse one the enclosing
 * container has no room for, then commit the frame if it has reached the
 * target size (_Pickler_OpcodeBoundary).  0, or -1 if failed.
 */
static int
pickle_save(struct pickle *p)
{
	struct pickle_level	*l;

	if (p->failed)
		return -1;
	if (p->out.len == 0) {
		pickle_fail(p, "value written before pickle_begin");
		return -1;
	}
	if (p->depth == 0) {
		if (p->complete) {
			pickle_fail(p, "more than one top-level value");
			return -1;
		}
	} else {
		l = &p->level[p->depth - 1];
		if (!l->half && l->done == l->total) {
			pickle_fail(p, "more items than the container announced");
			return -1;
		}
	}
	if (p->frame_start != -1 && p->out.len - (size_t)p->frame_start -
	    PICKLE_FRAME_HEADER >= PICKLE_FRAME_TARGET)
		pickle_commit(p);
	return 0;
}

/*
 * Count a finished object in its container.  After the 1000th item of a
 * batch, write the batch end and the next MARK at once, as the batch loops
 * do before saving anything else: a dict always opens another batch (so a
 * dict of 1000k items ends with an empty one), a list only if items remain.
 */
static void
pickle_done(struct pickle *p)
{
	struct pickle_level	*l;

	if (p->depth == 0) {
		p->complete = true;
		return;
	}
	l = &p->level[p->depth - 1];
	if (l->kind == 'd') {
		if (!l->half) {
			l->half = true;
			return;
		}
		l->half = false;
	}
	l->done++;
	if (l->total < 2 || l->done % PICKLE_BATCH != 0)
		return;
	if (l->kind == 'd')
		pickle_op2(p, OP_SETITEMS, OP_MARK);
	else if (l->done < l->total)
		pickle_op2(p, OP_APPENDS, OP_MARK);
}

/* Memoise the object just written at the next index (memo_put). */
static void
pickle_put(struct pickle *p)
{
	uint32_t	 idx = p->memo_next++;
	unsigned char	*u;

	if (p->proto >= 4) {
		pickle_op(p, OP_MEMOIZE);
	} else if (idx < 256) {
		pickle_op2(p, OP_BINPUT, (unsigned char)idx);
	} else {
		u = pickle_room(p, 5);
		u[0] = OP_LONG_BINPUT;
		pickle_le(u + 1, idx, 4);
		pickle_wrote(p, 5);
	}
}

/* Refer to a memoised object (memo_get). */
static void
pickle_get(struct pickle *p, uint32_t idx)
{
	unsigned char	*u;

	if (idx < 256) {
		pickle_op2(p, OP_BINGET, (unsigned char)idx);
	} else {
		u = pickle_room(p, 5);
		u[0] = OP_LONG_BINGET;
		pickle_le(u + 1, idx, 4);
		pickle_wrote(p, 5);
	}
}

/*
 * Write a str and memoise it (save_unicode).  A payload of 64 KiB or more
 * goes outside any frame: the open one is committed and the next write
 * opens a new one (_Pickler_write_bytes).  0, or -1 if it cannot be written.
 */
static int
pickle_emit_str(struct pickle *p, const char *s, size_t n)
{
	unsigned char	 hdr[9], *u;
	size_t		 hl;

	if (n <= 0xff && p->proto >= 4) {
		hdr[0] = OP_SHORT_BINUNICODE;
		hdr[1] = (unsigned char)n;
		hl = 2;
	} else if (n <= 0xffffffffUL) {
		hdr[0] = OP_BINUNICODE;
		pickle_le(hdr + 1, n, 4);
		hl = 5;
	} else if (p->proto >= 4) {
		hdr[0] = OP_BINUNICODE8;
		pickle_le(hdr + 1, n, 8);
		hl = 9;
	} else {
		pickle_fail(p, "a string over 4 GiB needs protocol 4");
		return -1;
	}
	if (n >= PICKLE_FRAME_TARGET) {
		pickle_commit(p);
		buf_reserve(&p->out, hl + n);
		buf_add(&p->out, hdr, hl);
		buf_add(&p->out, s, n);
	} else {
		/* The common case: with MEMOIZE, in one reservation. */
		u = pickle_room(p, hl + n + 1);
		memcpy(u, hdr, hl);
		if (n != 0)
			memcpy(u + hl, s, n);
		if (p->proto >= 4) {
			u[hl + n] = OP_MEMOIZE;
			p->memo_next++;
			pickle_wrote(p, hl + n + 1);
			return 0;
		}
		pickle_wrote(p, hl + n);
	}
	pickle_put(p);
	return 0;
}

/*
 * CPython's shared str objects: "" is slot 0, a one-character string below
 * U+0100 (UTF-8: one byte below 0x80, or 0xc2/0xc3 and a continuation byte)
 * is 1 + its code point.  -1 for any other string.
 */
static int
pickle_singleton(const char *s, size_t n)
{
	const unsigned char	*u = (const unsigned char *)s;

	if (n == 0)
		return 0;
	if (n == 1 && u[0] < 0x80)
		return 1 + u[0];
	if (n == 2 && (u[0] == 0xc2 || u[0] == 0xc3) && (u[1] & 0xc0) == 0x80)
		return 1 + (((u[0] & 0x1f) << 6) | (u[1] & 0x3f));
	return -1;
}

/* None (save_none). */
void
pickle_none(struct pickle *p)
{
	if (pickle_save(p) != 0)
		return;
	pickle_op(p, OP_NONE);
	pickle_done(p);
}

/* True or False (save_bool). */
void
pickle_bool(struct pickle *p, bool v)
{
	if (pickle_save(p) != 0)
		return;
	pickle_op(p, v ? OP_NEWTRUE : OP_NEWFALSE);
	pickle_done(p);
}

/* An int in the opcode save_long picks for its size. */
void
pickle_int(struct pickle *p, int64_t v)
{
	unsigned char	*u;
	int		 n;

	if (pickle_save(p) != 0)
		return;
	u = pickle_room(p, 10);
	if (v >= 0 && v <= 0xff) {
		u[0] = OP_BININT1;
		u[1] = (unsigned char)v;
		n = 2;
	} else if (v >= 0 && v <= 0xffff) {
		u[0] = OP_BININT2;
		pickle_le(u + 1, (uint64_t)v, 2);
		n = 3;
	} else if (v >= INT32_MIN && v <= INT32_MAX) {
		u[0] = OP_BININT;
		pickle_le(u + 1, (uint64_t)v, 4);
		n = 5;
	} else {
		/* encode_long: the fewest two's-complement bytes, 5 to 8. */
		for (n = 5; n < 8; n++) {
			if (v >= -(INT64_C(1) << (8 * n - 1)) &&
			    v < (INT64_C(1) << (8 * n - 1)))
				break;
		}
		u[0] = OP_LONG1;
		u[1] = (unsigned char)n;
		pickle_le(u + 2, (uint64_t)v, n);
		n += 2;
	}
	pickle_wrote(p, (size_t)n);
	pickle_done(p);
}

/*
 * A JSON number of any size, from its text: what Python's json makes of it
 * (an int of any size, or a float, inf when it overflows), as save_long or
 * save_float writes it.  Ints beyond 64 bits get encode_long's bytes.
 */
void
pickle_number(struct pickle *p, const char *s, size_t n)
{
	unsigned char	*mag, *u;
	char		*text, *end;
	size_t		 i, k, len = 0, nbits, nbytes;
	long long	 v;
	bool		 neg;
	unsigned	 carry;
	int		 top;

	text = xstrndup(s, n);
	if (strpbrk(text, ".eE") != NULL) {
		pickle_float(p, strtod(text, NULL));
		free(text);
		return;
	}
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno == 0 && *end == '\0' && end != text) {
		pickle_int(p, v);
		free(text);
		return;
	}
	neg = text[0] == '-';
	/* The magnitude, little-endian base 256. */
	mag = xcalloc(n / 2 + 2, 1);
	for (i = neg ? 1 : 0; i < n; i++) {
		if (text[i] < '0' || text[i] > '9') {
			free(mag);
			free(text);
			pickle_fail(p, "not a JSON number");
			return;
		}
		carry = (unsigned)(text[i] - '0');
		for (k = 0; k < len || carry != 0; k++) {
			carry += (unsigned)mag[k] * 10;
			mag[k] = (unsigned char)carry;
			carry >>= 8;
		}
		if (k > len)
			len = k;
	}
	free(text);
	while (len > 0 && mag[len - 1] == 0)
		len--;
	for (top = 7; len > 0 && top >= 0 && !(mag[len - 1] & (1 << top));
	    top--)
		;
	nbits = len == 0 ? 0 : (len - 1) * 8 + (size_t)top + 1;
	nbytes = (nbits >> 3) + 1;
	if (neg) {
		/* Two's complement over nbytes, then encode_long's trim. */
		for (i = 0, carry = 1; i < nbytes; i++) {
			carry += (unsigned)(unsigned char)~(i < len ? mag[i] : 0);
			mag[i] = (unsigned char)carry;
			carry >>= 8;
		}
		if (nbytes > 1 && mag[nbytes - 1] == 0xff &&
		    (mag[nbytes - 2] & 0x80) != 0)
			nbytes--;
	}
	if (pickle_save(p) != 0) {
		free(mag);
		return;
	}
	u = pickle_room(p, nbytes + 5);
	if (nbytes < 256) {
		u[0] = OP_LONG1;
		u[1] = (unsigned char)nbytes;
		k = 2;
	} else {
		u[0] = OP_LONG4;
		pickle_le(u + 1, (uint64_t)nbytes, 4);
		k = 5;
	}
	memcpy(u + k, mag, nbytes);
	pickle_wrote(p, k + nbytes);
	pickle_done(p);
	free(mag);
}

/* A float as BINFLOAT, big-endian (save_float). */
void
pickle_float(struct pickle *p, double v)
{
	unsigned char	*u;
	uint64_t	 bits;
	int		 i;

	if (pickle_save(p) != 0)
		return;
	memcpy(&bits, &v, sizeof bits);
	u = pickle_room(p, 9);
	u[0] = OP_BINFLOAT;
	for (i = 8; i >= 1; i--) {
		u[i] = (unsigned char)bits;
		bits >>= 8;
	}
	pickle_wrote(p, 9);
	pickle_done(p);
}

/*
 * A string with the given identity: a key of the document (ident NULL,
 * shared by text), an explicit object (ident), or a fresh one (fresh).
 */
static void
pickle_str_as(struct pickle *p, const char *s, size_t n, const void *ident,
    bool fresh)
{
	struct pickle_memo	*m = p->memo;
	struct pickle_ent	*e;
	uint64_t		 hash;
	uint32_t		 idx;
	int			 si;

	if (pickle_save(p) != 0)
		return;
	if ((si = pickle_singleton(s, n)) != -1) {
		if (m->single[si] != 0)
			pickle_get(p, m->single[si] - 1);
		else {
			idx = p->memo_next;
			if (pickle_emit_str(p, s, n) != 0)
				return;
			m->single[si] = idx + 1;
		}
	} else if (fresh) {
		if (pickle_emit_str(p, s, n) != 0)
			return;
	} else {
		if ((m->count + 1) * 2 > m->mask + 1)
			pickle_memo_grow(m);
		hash = ident != NULL ? pickle_hash_ptr(ident) : pickle_hash(s, n);
		e = pickle_memo_find(m, hash, ident, s, n);
		if (e->gen == m->gen)
			pickle_get(p, e->idx);
		else {
			idx = p->memo_next;
			if (pickle_emit_str(p, s, n) != 0)
				return;
			pickle_memo_add(m, e, hash, ident, s, n, idx);
		}
	}
	pickle_done(p);
}

/* A str that is a document key (shared by text) or fresh. */
void
pickle_str(struct pickle *p, const char *s, size_t n, enum pickle_ref ref)
{
	pickle_str_as(p, s, n, NULL, ref != PICKLE_KEY);
}

/* A str shared with others passed with the same ident. */
void
pickle_str_obj(struct pickle *p, const char *s, size_t n, const void *ident)
{
	pickle_str_as(p, s, n, ident, ident == NULL);
}

/*
 * Open a dict or list of n items: the empty container, its memo entry and,
 * for two items or more, the first batch's MARK, all before the first item's
 * frame boundary check (save_dict/save_list, then the batch loop).
 */
static void
pickle_container(struct pickle *p, char kind, size_t n)
{
	struct pickle_level	*l;

	if (pickle_save(p) != 0)
		return;
	if (p->depth == PICKLE_MAX_DEPTH) {
		pickle_fail(p, "nesting deeper than " PICKLE_STR(PICKLE_MAX_DEPTH)
		    " levels");
		return;
	}
	pickle_op(p, kind == 'd' ? OP_EMPTY_DICT : OP_EMPTY_LIST);
	pickle_put(p);
	if (n >= 2)
		pickle_op(p, OP_MARK);
	l = &p->level[p->depth++];
	l->kind = kind;
	l->total = n;
	l->done = 0;
	l->half = false;
}

/* Open a dict of n pairs. */
void
pickle_dict_begin(struct pickle *p, size_t n)
{
	pickle_container(p, 'd', n);
}

/* Open a list of n items. */
void
pickle_list_begin(struct pickle *p, size_t n)
{
	pickle_container(p, 'l', n);
}

/* Close the innermost container with its last batch opcode. */
void
pickle_end(struct pickle *p)
{
	struct pickle_level	*l;

	if (p->failed)
		return;
	if (p->depth == 0) {
		pickle_fail(p, "pickle_end without an open container");
		return;
	}
	l = &p->level[p->depth - 1];
	if (l->half || l->done != l->total) {
		pickle_fail(p, "container closed before all its items");
		return;
	}
	if (l->total == 1)
		pickle_op(p, l->kind == 'd' ? OP_SETITEM : OP_APPEND);
	else if (l->total != 0)
		pickle_op(p, l->kind == 'd' ? OP_SETITEMS : OP_APPENDS);
	p->depth--;
	pickle_done(p);
}

/* STOP and commit the last frame (the end of dump). */
int
pickle_finish(struct pickle *p)
{
	if (p->failed)
		return -1;
	if (p->depth != 0 || !p->complete) {
		pickle_fail(p, "pickle_finish before the value is complete");
		return -1;
	}
	pickle_op(p, OP_STOP);
	pickle_commit(p);
	p->framing = false;
	return 0;
}

/* Why the encoder failed. */
const char *
pickle_error(const struct pickle *p)
{
	return p->failed ? p->error : NULL;
}

/* Encode a parsed JSON value, keys as one document's keys. */
int
pickle_json(struct pickle *p, const json_t *j)
{
	json_t		*o = (json_t *)j;	/* jansson's iterators are not const */
	void		*it;
	const char	*num;
	size_t		 i, n;

	if (p->failed)
		return -1;
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		pickle_dict_begin(p, json_object_size(o));
		for (it = json_object_iter(o); it != NULL && !p->failed;
		    it = json_object_iter_next(o, it)) {
			pickle_str(p, json_object_iter_key(it),
			    json_object_iter_key_len(it), PICKLE_KEY);
			pickle_json(p, json_object_iter_value(it));
		}
		pickle_end(p);
		break;
	case JSON_ARRAY:
		n = json_array_size(o);
		pickle_list_begin(p, n);
		for (i = 0; i < n && !p->failed; i++)
			pickle_json(p, json_array_get(o, i));
		pickle_end(p);
		break;
	case JSON_STRING:
		if ((num = jsonld_number(o, &n)) != NULL)
			pickle_number(p, num, n);
		else
			pickle_str(p, json_string_value(o),
			    json_string_length(o), PICKLE_NEW);
		break;
	case JSON_INTEGER:
		pickle_int(p, json_integer_value(o));
		break;
	case JSON_REAL:
		pickle_float(p, json_real_value(o));
		break;
	case JSON_TRUE:
		pickle_bool(p, true);
		break;
	case JSON_FALSE:
		pickle_bool(p, false);
		break;
	case JSON_NULL:
		pickle_none(p);
		break;
	}
	return p->failed ? -1 : 0;
}

/* Record the state between two items of the outermost dict. */
void
pickle_checkpoint(const struct pickle *p, struct pickle_ckpt *ck)
{
	const struct pickle_level	*l = &p->level[0];
	size_t				 flen;

	memset(ck, 0, sizeof *ck);
	ck->len = p->out.len;
	ck->frame_start = p->frame_start;
	ck->memo_next = p->memo_next;
	ck->total = l->total;
	ck->done = l->done;
	ck->proto = p->proto;
	ck->valid = !p->failed && p->depth == 1 && l->kind == 'd' && !l->half;
	if (ck->valid && p->frame_start != -1) {
		flen = p->out.len - (size_t)p->frame_start - PICKLE_FRAME_HEADER;
		if (flen < PICKLE_FRAME_MIN)
			memcpy(ck->small, p->out.data + p->out.len - flen, flen);
	}
}

/* Restore the state of a checkpoint over its bytes. */
void
pickle_resume(struct pickle *p, const struct buf *data,
    const struct pickle_ckpt *ck)
{
	struct pickle_level	*l = &p->level[0];
	unsigned char		*h;
	size_t			 flen;

	p->proto = ck->proto;
	if (data == &p->out)
		pickle_clear(p);
	else
		pickle_reset(p);
	if (p->failed)
		return;
	if (!ck->valid) {
		pickle_fail(p, "checkpoint not taken between the items of the "
		    "outermost dict");
		return;
	}
	if (data->len < ck->len) {
		pickle_fail(p, "checkpoint beyond the end of its data");
		return;
	}
	if (data == &p->out)
		buf_truncate(&p->out, ck->len);
	else
		buf_add(&p->out, data->data, ck->len);

	/*
	 * A value finished from this checkpoint before may have written the
	 * open frame's header, or dropped it and moved the payload down:
	 * put the header placeholder and the small payload back.
	 */
	if (ck->frame_start != -1) {
		h = p->out.data + ck->frame_start;
		flen = ck->len - (size_t)ck->frame_start - PICKLE_FRAME_HEADER;
		memset(h, 0xfe, PICKLE_FRAME_HEADER);
		if (flen < PICKLE_FRAME_MIN)
			memcpy(h + PICKLE_FRAME_HEADER, ck->small, flen);
	}
	p->framing = p->proto >= 4;
	p->frame_start = ck->frame_start;
	p->memo_next = ck->memo_next;
	p->depth = 1;
	l->kind = 'd';
	l->total = ck->total;
	l->done = ck->done;
	l->half = false;
}
