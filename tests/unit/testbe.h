/*
 * testbe.h: a store backend for the unit tests of the writer and the
 * state (store_new_with), holding keys in memory, that refuses, fails and
 * loses writes on command.  One instance per test program (its state is
 * global); testbe_reset() empties it.
 *
 * Placement: every key on server (hash of the wire key) % servers, like a
 * real distribution but predictable.  Writes are queued and applied at
 * flush, as the real backends do; what a command says happens there:
 *
 *	testbe_refuse(s)	a set whose wire key contains s is refused
 *				(reported through the flush's callback) and
 *				the old item dropped, as memcached does
 *	testbe_refuse_keep(s)	... refused, the old item kept, as Redis does
 *	testbe_lose(s)		... is lost without a word (flush says OK)
 *	testbe_fail_flush(i)	server i's next flush fails (marked down)
 *	testbe_down(i, b)	server i refuses everything (STORE_DOWN)
 *	testbe_item_max(n)	values over n bytes are STORE_TOO_BIG
 *	testbe_heal()		every command off again
 *
 * store_reconnect(i) drops what is queued on server i, unsent, as the
 * real backends do.  Counts: tb.sets, deletes, flushes, reconnects.
 */
#ifndef PCD_TESTBE_H
#define PCD_TESTBE_H

#include <stdlib.h>
#include <string.h>

#include "store_be.h"
#include "util.h"

#define TESTBE_SERVERS	2
#define TESTBE_KEYS	4096

struct testbe_item {
	char		*key;
	unsigned char	*val;
	size_t		 len;
	uint32_t	 flags;
	int		 srv;
};

struct testbe_op {
	struct testbe_item	 it;
	bool			 del;
	size_t			 tag;
};

static struct {
	struct testbe_item	 items[TESTBE_KEYS];
	size_t			 nitems;
	struct testbe_op	 queue[TESTBE_SERVERS][TESTBE_KEYS];
	size_t			 nqueue[TESTBE_SERVERS];
	char			 refuse[64];
	char			 refuse_keep[64];
	char			 lose[64];
	bool			 fail_flush[TESTBE_SERVERS];
	bool			 down[TESTBE_SERVERS];
	size_t			 item_max;
	size_t			 sets, deletes, flushes, reconnects;
} tb;

static void
testbe_reset(void)
{
	size_t	i, j;

	for (i = 0; i < tb.nitems; i++) {
		free(tb.items[i].key);
		free(tb.items[i].val);
	}
	for (i = 0; i < TESTBE_SERVERS; i++)
		for (j = 0; j < tb.nqueue[i]; j++) {
			free(tb.queue[i][j].it.key);
			free(tb.queue[i][j].it.val);
		}
	memset(&tb, 0, sizeof tb);
	tb.item_max = 1024 * 1024;
}

static __attribute__((unused)) void	testbe_refuse(const char *s) { snprintf(tb.refuse, sizeof tb.refuse, "%s", s); }
static __attribute__((unused)) void	testbe_refuse_keep(const char *s) { snprintf(tb.refuse_keep, sizeof tb.refuse_keep, "%s", s); }
static __attribute__((unused)) void	testbe_lose(const char *s) { snprintf(tb.lose, sizeof tb.lose, "%s", s); }
static __attribute__((unused)) void	testbe_fail_flush(int i) { tb.fail_flush[i] = true; }
static __attribute__((unused)) void	testbe_down(int i, bool b) { tb.down[i] = b; }
static __attribute__((unused)) void	testbe_item_max(size_t n) { tb.item_max = n; }

/* Every command off again (what is stored stays). */
static __attribute__((unused)) void
testbe_heal(void)
{
	tb.refuse[0] = tb.refuse_keep[0] = tb.lose[0] = '\0';
	memset(tb.fail_flush, 0, sizeof tb.fail_flush);
	memset(tb.down, 0, sizeof tb.down);
	tb.item_max = 1024 * 1024;
}

/* The item under a wire key, or NULL. */
static struct testbe_item *
testbe_find(const char *wire)
{
	size_t	i;

	for (i = 0; i < tb.nitems; i++)
		if (strcmp(tb.items[i].key, wire) == 0)
			return &tb.items[i];
	return NULL;
}

/* The value under a wire key as a C string (JSON values), or NULL. */
static __attribute__((unused)) const char *
testbe_get(const char *wire)
{
	static char		 out[8192];
	struct testbe_item	*it = testbe_find(wire);

	if (it == NULL)
		return NULL;
	snprintf(out, sizeof out, "%.*s", (int)it->len, (const char *)it->val);
	return out;
}

/* Remove a key behind the daemon's back (an eviction). */
static __attribute__((unused)) void
testbe_evict(const char *wire)
{
	struct testbe_item	*it = testbe_find(wire);

	if (it == NULL)
		return;
	free(it->key);
	free(it->val);
	*it = tb.items[--tb.nitems];
}

static size_t
testbe_hash(const char *s, size_t len)
{
	size_t	h = 5381, i;

	for (i = 0; i < len; i++)
		h = h * 33 + (unsigned char)s[i];
	return h;
}

static void
tbe_open(struct store *st, const struct cfg *cfg)
{
	size_t	i;

	(void)cfg;
	st->n = TESTBE_SERVERS;
	for (i = 0; i < st->n; i++)
		st->sv[i].name = xasprintf("test:%zu", i);
}

static void
tbe_close(struct store *st)
{
	(void)st;
}

static bool
tbe_fits(const struct store *st, size_t i, size_t keylen, size_t len)
{
	(void)st;
	(void)i;
	(void)keylen;
	return len <= tb.item_max;
}

static size_t
tbe_place(const struct store *st, const char *key, size_t keylen,
    size_t *idx)
{
	idx[0] = testbe_hash(key, keylen) % st->n;
	return 1;
}

static enum store_rc
tbe_queue(size_t i, const char *key, size_t keylen, const void *val,
    size_t len, uint32_t flags, size_t tag, bool del)
{
	struct testbe_op	*op;

	if (tb.down[i])
		return STORE_DOWN;
	if (!del && len > tb.item_max)
		return STORE_TOO_BIG;
	op = &tb.queue[i][tb.nqueue[i]++];
	op->it.key = xstrndup(key, keylen);
	op->it.val = xmalloc(len + 1);
	memcpy(op->it.val, val, len);
	op->it.len = len;
	op->it.flags = flags;
	op->it.srv = (int)i;
	op->del = del;
	op->tag = tag;
	return STORE_OK;
}

static enum store_rc
tbe_set(struct store *st, size_t i, const char *key, size_t keylen,
    const void *val, size_t len, uint32_t flags, size_t tag)
{
	(void)st;
	tb.sets++;
	return tbe_queue(i, key, keylen, val, len, flags, tag, false);
}

static enum store_rc
tbe_del(struct store *st, size_t i, const char *key, size_t keylen)
{
	(void)st;
	tb.deletes++;
	return tbe_queue(i, key, keylen, "", 0, 0, SIZE_MAX, true);
}

/* Apply one queued operation, as the command in force says. */
static void
tbe_apply(struct testbe_op *op, store_refused_cb refused, void *arg)
{
	struct testbe_item	*it = testbe_find(op->it.key);

	if (op->del) {
		if (it != NULL)
			testbe_evict(op->it.key);
		free(op->it.key);
		free(op->it.val);
		return;
	}
	if (tb.refuse[0] != '\0' && strstr(op->it.key, tb.refuse) != NULL) {
		/* A refused set deletes the old item, as memcached does. */
		if (it != NULL)
			testbe_evict(op->it.key);
		if (refused != NULL)
			refused(op->tag, false, arg);
		free(op->it.key);
		free(op->it.val);
		return;
	}
	if (tb.refuse_keep[0] != '\0' &&
	    strstr(op->it.key, tb.refuse_keep) != NULL) {
		/* Refused, the old item untouched, as Redis does. */
		if (refused != NULL)
			refused(op->tag, true, arg);
		free(op->it.key);
		free(op->it.val);
		return;
	}
	if (tb.lose[0] != '\0' && strstr(op->it.key, tb.lose) != NULL) {
		free(op->it.key);
		free(op->it.val);
		return;
	}
	if (it != NULL) {
		free(it->key);
		free(it->val);
	} else
		it = &tb.items[tb.nitems++];
	*it = op->it;
}

static int
tbe_flush(struct store *st, size_t i, store_refused_cb refused, void *arg)
{
	size_t	j;

	tb.flushes++;
	if (tb.fail_flush[i]) {
		tb.fail_flush[i] = false;
		for (j = 0; j < tb.nqueue[i]; j++) {
			free(tb.queue[i][j].it.key);
			free(tb.queue[i][j].it.val);
		}
		tb.nqueue[i] = 0;
		store_mark_down(st, i, "flush", "told to fail");
		return -1;
	}
	for (j = 0; j < tb.nqueue[i]; j++)
		tbe_apply(&tb.queue[i][j], refused, arg);
	tb.nqueue[i] = 0;
	store_mark_up(st, i);
	return 0;
}

static int
tbe_stats(struct store *st, size_t i, struct store_stats *out)
{
	(void)st;
	(void)i;
	out->pid = 1;
	out->uptime = 100;
	snprintf(out->id, sizeof out->id, "1");
	return 0;
}

/* Like the real backends: what is queued on server i is dropped unsent. */
static void
tbe_reconnect(struct store *st, size_t i)
{
	size_t	j;

	(void)st;
	tb.reconnects++;
	for (j = 0; j < tb.nqueue[i]; j++) {
		free(tb.queue[i][j].it.key);
		free(tb.queue[i][j].it.val);
	}
	tb.nqueue[i] = 0;
}

static int
tbe_mget(struct store *st, size_t i, const char *const *keys,
    const size_t *lens, size_t n, store_hit_cb cb, void *arg)
{
	struct testbe_item	*it;
	char			 k[512];
	size_t			 j;

	(void)st;
	if (tb.down[i])
		return -1;
	for (j = 0; j < n; j++) {
		snprintf(k, sizeof k, "%.*s", (int)lens[j], keys[j]);
		if ((it = testbe_find(k)) != NULL && it->srv == (int)i)
			cb(j, it->val, it->len, it->flags, arg);
	}
	return 0;
}

static int
tbe_lease(struct store *st, size_t i, enum store_lease_op op,
    const char *key, size_t keylen, const char *id, long ttl_ms, char *err,
    size_t errlen)
{
	(void)st;
	(void)i;
	(void)op;
	(void)key;
	(void)keylen;
	(void)id;
	(void)ttl_ms;
	snprintf(err, errlen, "no lease in the test backend");
	return -1;
}

static const struct store_be testbe = {
	.name = "test",
	.open = tbe_open,
	.close = tbe_close,
	.fits = tbe_fits,
	.place = tbe_place,
	.set = tbe_set,
	.del = tbe_del,
	.flush = tbe_flush,
	.stats = tbe_stats,
	.reconnect = tbe_reconnect,
	.mget = tbe_mget,
	.lease = tbe_lease,
	.probe = NULL,
};

#endif
