/*
 * unpickle.c: the pickle machine for JSON-shaped values, bounded.
 *
 * A stack of values (each with the height of the containers in it), the
 * marks, and the memo, as pickle's own machine has them; containers are
 * jansson's, filled in place (APPEND, SETITEMS) as pickle fills Python's.
 * A container is never taken from the memo, so every one has a single
 * parent: the result is a tree, with no cycle to free or dump.
 */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonld.h"
#include "pickle.h"
#include "pickle_op.h"
#include "unpickle.h"
#include "util.h"

/* A LONG of more bytes than this has more digits than JSON allows here. */
#define LONG_MAX_BYTES		(JSONLD_MAX_DIGITS * 10 / 24 + 2)
/* Marks open at once: one per container being filled, at most. */
#define MARKS_MAX		(2 * PICKLE_MAX_DEPTH)

/* A value on the stack, and how deep the containers in it go. */
struct slot {
	json_t	*v;
	int	 height;		/* 0: not a container */
};

struct machine {
	const unsigned char	*start, *p, *end;
	struct slot		*stack;
	size_t			 n, cap;
	size_t			 marks[MARKS_MAX];
	size_t			 nmarks;
	json_t			**memo;		/* by index; NULL: not put */
	size_t			 nmemo;
	size_t			 next;		/* MEMOIZE's index */
	char			*why;
	size_t			 whylen;
};

/* Say why the value cannot be read, at the opcode being read: -1. */
static int PCD_ATTR_PRINTF(2, 3)
fail(struct machine *m, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	n = snprintf(m->why, m->whylen, "byte %zu: ",
	    (size_t)(m->p - m->start));
	if (n < 0 || (size_t)n >= m->whylen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(m->why + n, m->whylen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* The next n bytes of argument, or NULL (the pickle ends too soon). */
static const unsigned char *
take(struct machine *m, size_t n)
{
	const unsigned char	*q = m->p;

	if ((size_t)(m->end - m->p) < n) {
		fail(m, "the pickle ends inside an opcode's argument");
		return NULL;
	}
	m->p += n;
	return q;
}

/* A little-endian unsigned argument of n bytes (n <= 8). */
static int
take_le(struct machine *m, size_t n, uint64_t *out)
{
	const unsigned char	*q = take(m, n);
	size_t			 i;

	if (q == NULL)
		return -1;
	*out = 0;
	for (i = n; i > 0; i--)
		*out = *out << 8 | q[i - 1];
	return 0;
}

/* Push v (taken; NULL: fail with what). */
static int
push(struct machine *m, json_t *v, int height, const char *what)
{
	if (v == NULL)
		return fail(m, "%s", what);
	if (m->n == m->cap) {
		m->cap = m->cap == 0 ? 64 : m->cap * 2;
		m->stack = xreallocarray(m->stack, m->cap, sizeof *m->stack);
	}
	m->stack[m->n].v = v;
	m->stack[m->n].height = height;
	m->n++;
	return 0;
}

/* Where the values after the innermost mark start (-1: no mark). */
static int
pop_mark(struct machine *m, size_t *from)
{
	if (m->nmarks == 0)
		return fail(m, "APPENDS or SETITEMS without a MARK");
	*from = m->marks[--m->nmarks];
	return 0;
}

/* The memo index put: the top of the stack, a new reference. */
static int
memo_put(struct machine *m, uint64_t idx)
{
	size_t	i, cap;

	if (m->n == 0 || (m->nmarks > 0 && m->marks[m->nmarks - 1] == m->n))
		return fail(m, "a memo put with nothing to put");
	if (idx > (uint64_t)(m->end - m->start))
		return fail(m, "memo index %llu: more than the pickle could "
		    "fill", (unsigned long long)idx);
	if (idx >= m->nmemo) {
		cap = m->nmemo == 0 ? 64 : m->nmemo;
		while (cap <= idx)
			cap *= 2;
		m->memo = xreallocarray(m->memo, cap, sizeof *m->memo);
		for (i = m->nmemo; i < cap; i++)
			m->memo[i] = NULL;
		m->nmemo = cap;
	}
	json_decref(m->memo[idx]);
	m->memo[idx] = json_incref(m->stack[m->n - 1].v);
	return 0;
}

/* Push memo entry idx again: strings and scalars only. */
static int
memo_get(struct machine *m, uint64_t idx)
{
	json_t	*v = idx < m->nmemo ? m->memo[idx] : NULL;

	if (v == NULL)
		return fail(m, "memo index %llu was never put",
		    (unsigned long long)idx);
	if (json_is_array(v) || json_is_object(v))
		return fail(m, "a list or dict referred to twice: not a "
		    "value of the programs cache");
	return push(m, json_incref(v), 0, "");
}

/*
 * The decimal text of the magnitude of a little-endian number of n bytes
 * (destroyed), into b: long division by 10^9.
 */
static void
decimal(unsigned char *mag, size_t n, struct buf *b)
{
	char		 digits[LONG_MAX_BYTES * 3 + 16];
	size_t		 nd = 0, i, top = n;
	uint64_t	 rem;
	int		 k;

	while (top > 0 && mag[top - 1] == 0)
		top--;
	while (top > 0) {
		rem = 0;
		for (i = top; i > 0; i--) {
			rem = rem << 8 | mag[i - 1];
			mag[i - 1] = (unsigned char)(rem / 1000000000u);
			rem %= 1000000000u;
		}
		while (top > 0 && mag[top - 1] == 0)
			top--;
		for (k = 0; k < 9 && (top > 0 || rem > 0); k++) {
			digits[nd++] = (char)('0' + rem % 10);
			rem /= 10;
		}
	}
	if (nd == 0)
		digits[nd++] = '0';
	while (nd > 0)
		buf_add(b, &digits[--nd], 1);
}

/* An int of n little-endian two's complement bytes (LONG1, LONG4). */
static int
push_long(struct machine *m, const unsigned char *q, size_t n)
{
	unsigned char	*mag;
	struct buf	 b;
	json_error_t	 e;
	json_t		*v;
	uint64_t	 u = 0;
	size_t		 i;
	bool		 neg = n > 0 && (q[n - 1] & 0x80) != 0;

	/* Bytes that only repeat the sign say nothing. */
	while (n > 1 && ((q[n - 1] == 0 && (q[n - 2] & 0x80) == 0) ||
	    (q[n - 1] == 0xff && (q[n - 2] & 0x80) != 0)))
		n--;
	if (n <= 8) {
		for (i = n; i > 0; i--)
			u = u << 8 | q[i - 1];
		if (neg && n < 8)
			u |= UINT64_MAX << (8 * n);
		return push(m, json_integer((json_int_t)u), 0, "");
	}
	if (n > LONG_MAX_BYTES)
		return fail(m, "an int of %zu bytes: more digits than %d",
		    n, JSONLD_MAX_DIGITS);
	mag = xmalloc(n);
	memcpy(mag, q, n);
	if (neg) {
		/* Two's complement: the magnitude is ~x + 1. */
		for (i = 0; i < n; i++)
			mag[i] = (unsigned char)~mag[i];
		for (i = 0; i < n && ++mag[i] == 0; i++)
			;
	}
	buf_init(&b);
	if (neg)
		buf_adds(&b, "-");
	decimal(mag, n, &b);
	free(mag);
	v = jsonld_load((const char *)b.data, b.len, JSON_DECODE_ANY, &e);
	buf_free(&b);
	return push(m, v, 0, "an int with more digits than JSON allows here");
}

/* BINFLOAT: eight bytes, big-endian. */
static int
push_float(struct machine *m)
{
	const unsigned char	*q = take(m, 8);
	json_error_t		 e;
	uint64_t		 u = 0;
	double			 d;
	int			 i;

	if (q == NULL)
		return -1;
	for (i = 0; i < 8; i++)
		u = u << 8 | q[i];
	memcpy(&d, &u, sizeof d);
	if (isnan(d))
		return fail(m, "NaN, which JSON cannot hold");
	if (isinf(d))
		/* What Python's json reads as inf, as a marked number. */
		return push(m, jsonld_load(d > 0 ? "1e999" : "-1e999", d > 0 ?
		    5 : 6, JSON_DECODE_ANY, &e), 0, "inf");
	return push(m, json_real(d), 0, "");
}

/* A string of n bytes of UTF-8. */
static int
push_str(struct machine *m, uint64_t n)
{
	const unsigned char	*q;

	if (n > (uint64_t)(m->end - m->p))
		return fail(m, "a string longer than the pickle");
	q = take(m, (size_t)n);
	return push(m, json_stringn((const char *)q, (size_t)n), 0,
	    "a string that is not UTF-8");
}

/* Add stack[from..n) to the container below them, and pop them. */
static int
fill(struct machine *m, size_t from, bool dict)
{
	struct slot	*c, *k;
	size_t		 i;
	int		 h;

	if (from == 0 || from > m->n ||
	    (m->nmarks > 0 && from - 1 < m->marks[m->nmarks - 1]))
		return fail(m, "nothing to add to above the MARK");
	c = &m->stack[from - 1];
	if (dict ? !json_is_object(c->v) : !json_is_array(c->v))
		return fail(m, "%s into something not a %s", dict ?
		    "SETITEM" : "APPEND", dict ? "dict" : "list");
	if (dict && (m->n - from) % 2 != 0)
		return fail(m, "a key without a value");
	for (i = from; i < m->n; i += dict ? 2 : 1) {
		k = &m->stack[i];
		h = k[dict ? 1 : 0].height + 1;
		if (h > PICKLE_MAX_DEPTH)
			return fail(m, "containers nested more than %d deep",
			    PICKLE_MAX_DEPTH);
		if (h > c->height)
			c->height = h;
		if (!dict) {
			json_array_append_new(c->v, k->v);
			k->v = NULL;
			continue;
		}
		if (!json_is_string(k->v))
			return fail(m, "a dict key that is not a string");
		json_object_setn_new(c->v, json_string_value(k->v),
		    json_string_length(k->v), k[1].v);
		k[1].v = NULL;
		json_decref(k->v);
		k->v = NULL;
	}
	m->n = from;
	return 0;
}

/* One opcode.  1 at STOP, 0 to go on, -1 (why said) to give up. */
static int
step(struct machine *m)
{
	const unsigned char	*q;
	uint64_t		 u;
	size_t			 from = 0;
	int			 op;

	if (m->p == m->end)
		return fail(m, "the pickle ends before STOP");
	op = *m->p++;
	switch (op) {
	case OP_PROTO:
		if ((q = take(m, 1)) == NULL)
			return -1;
		if (*q < 2 || *q > 5)
			return fail(m, "protocol %d (2 to 5 are read)", *q);
		return 0;
	case OP_FRAME:
		if (take_le(m, 8, &u) == -1)
			return -1;
		if (u > (uint64_t)(m->end - m->p))
			return fail(m, "a frame longer than the pickle");
		return 0;
	case OP_STOP:
		if (m->n != 1 || m->nmarks != 0)
			return fail(m, "STOP with %zu values and %zu marks "
			    "(1 and 0 expected)", m->n, m->nmarks);
		return 1;
	case OP_MARK:
		if (m->nmarks == MARKS_MAX)
			return fail(m, "more than %d marks open",
			    MARKS_MAX);
		m->marks[m->nmarks++] = m->n;
		return 0;
	case OP_EMPTY_DICT:
		return push(m, json_object(), 1, "");
	case OP_EMPTY_LIST:
		return push(m, json_array(), 1, "");
	case OP_APPEND:
		return m->n < 2 ? fail(m, "APPEND with too few values") :
		    fill(m, m->n - 1, false);
	case OP_SETITEM:
		return m->n < 3 ? fail(m, "SETITEM with too few values") :
		    fill(m, m->n - 2, true);
	case OP_APPENDS:
	case OP_SETITEMS:
		if (pop_mark(m, &from) == -1)
			return -1;
		return fill(m, from, op == OP_SETITEMS);
	case OP_NONE:
		return push(m, json_null(), 0, "");
	case OP_NEWTRUE:
	case OP_NEWFALSE:
		return push(m, json_boolean(op == OP_NEWTRUE), 0, "");
	case OP_BININT:
		if (take_le(m, 4, &u) == -1)
			return -1;
		return push(m, json_integer((int32_t)(uint32_t)u), 0, "");
	case OP_BININT1:
	case OP_BININT2:
		if (take_le(m, op == OP_BININT1 ? 1 : 2, &u) == -1)
			return -1;
		return push(m, json_integer((json_int_t)u), 0, "");
	case OP_LONG1:
	case OP_LONG4:
		if (take_le(m, op == OP_LONG1 ? 1 : 4, &u) == -1)
			return -1;
		if (u > LONG_MAX_BYTES)
			return fail(m, "an int of %llu bytes: more digits "
			    "than %d", (unsigned long long)u,
			    JSONLD_MAX_DIGITS);
		if ((q = take(m, (size_t)u)) == NULL)
			return -1;
		return push_long(m, q, (size_t)u);
	case OP_BINFLOAT:
		return push_float(m);
	case OP_SHORT_BINUNICODE:
	case OP_BINUNICODE:
	case OP_BINUNICODE8:
		if (take_le(m, op == OP_SHORT_BINUNICODE ? 1 :
		    op == OP_BINUNICODE ? 4 : 8, &u) == -1)
			return -1;
		return push_str(m, u);
	case OP_MEMOIZE:
		return memo_put(m, m->next++);
	case OP_BINPUT:
	case OP_LONG_BINPUT:
		if (take_le(m, op == OP_BINPUT ? 1 : 4, &u) == -1)
			return -1;
		return memo_put(m, u);
	case OP_BINGET:
	case OP_LONG_BINGET:
		if (take_le(m, op == OP_BINGET ? 1 : 4, &u) == -1)
			return -1;
		return memo_get(m, u);
	default:
		m->p--;
		return fail(m, "opcode 0x%02x is not one of a JSON-shaped "
		    "value (a class, a tuple or bytes?): not read", op);
	}
}

json_t *
unpickle(const void *data, size_t len, char *why, size_t whylen)
{
	struct machine	 m;
	json_t		*v = NULL;
	size_t		 i;
	int		 rc;

	memset(&m, 0, sizeof m);
	m.start = m.p = data;
	m.end = m.start + len;
	m.why = why;
	m.whylen = whylen;
	if (whylen > 0)
		why[0] = '\0';
	while ((rc = step(&m)) == 0)
		;
	if (rc == 1) {
		v = m.stack[0].v;
		m.stack[0].v = NULL;
	}
	for (i = 0; i < m.n; i++)
		json_decref(m.stack[i].v);
	for (i = 0; i < m.nmemo; i++)
		json_decref(m.memo[i]);
	free(m.stack);
	free(m.memo);
	return v;
}

json_t *
unpickle_value(const void *data, size_t len, uint32_t flags, char *why,
    size_t whylen)
{
	json_error_t	 e;
	json_t		*v;

	if (flags == 1)
		return unpickle(data, len, why, whylen);
	if ((v = jsonld_load(data, len, JSON_DECODE_ANY, &e)) == NULL)
		snprintf(why, whylen, "flags %u, and not JSON: %s",
		    (unsigned)flags, e.text);
	return v;
}
