/*
 * store_mc.c: the memcached backend, through libmemcached (1.1, the
 * awesome fork).
 *
 * Pitfalls measured on this libmemcached (Debian 12's 1.1.4):
 * BUFFER_REQUESTS without NOREPLY aborts the process, so buffering is
 * only ever used with NOREPLY; NOREPLY hides E2BIG, so item sizes are
 * checked here against the server's own item_size_max; a write pipeline
 * is only known to be done after a round trip on the same connection;
 * memcached_quit() sends what libmemcached has buffered before it closes
 * (and libmemcached writes its buffer out whenever it fills), so a batch
 * is kept here, unsent, until the flush: dropping it (store_reconnect)
 * then really drops it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmemcached/memcached.h>

#include "log.h"
#include "mcwatch.h"
#include "place.h"
#include "store_be.h"
#include "util.h"

/* memcached's per-item overhead beyond key and value, rounded up. */
#define ITEM_OVERHEAD	64
/*
 * Keys per multi-get: the request stays well under a socket buffer
 * (a huge mget can deadlock: both ends blocked writing, each with
 * its receive buffer full).
 */
#define MGET_BATCH	200

/*
 * A write queued for the next flush (sent then), and read back if the
 * server refused any set.
 */
struct pending {
	const char	*key;
	size_t		 keylen;
	const void	*val;
	size_t		 len;
	uint32_t	 flags;
	size_t		 tag;
	bool		 del;		/* a delete (else a set) */
	bool		 sent;		/* the set went out (read it back) */
};

/* One server; its name and up/down state are store.c's (store_be.h). */
struct server {
	struct store	*st;
	size_t		 i;		/* its index in st */
	const char	*name;		/* pymemcache's node name, st's */
	char		*host;
	int		 port;
	memcached_st	*mc;		/* writes: NOREPLY + buffered */
	memcached_st	*ctl;		/* stats: replying */
	memcached_st	*lc;		/* the lease: replying, with CAS */
	bool		 checked;	/* item_size_max read */
	size_t		 item_max;
	struct pending	*pend;		/* writes of the batch, unsent */
	size_t		 npend;
	size_t		 cappend;
	bool		 counted;	/* refusals read after the last batch */
	uint64_t	 refusals;	/* store_no_memory + store_too_large */
};

struct mc {
	struct server		 sv[STORE_MAX_SERVERS];
	size_t			 n;
	const char		*nodes[STORE_MAX_SERVERS];
	enum cfg_distribution	 dist;
	memcached_st		*placer;	/* ketama only */
	long			 connect_ms;
	long			 io_ms;
	bool			 probing;	/* store_probe(): short bounds */
};

static int	mc_mget(struct store *, size_t, const char *const *,
		    const size_t *, size_t, store_hit_cb, void *);

/* The backend's own state of a store. */
static struct mc *
mc_of(const struct store *st)
{
	return st->impl;
}

/*
 * The bound of the monitor's reads (store_probe): a stopped server (one
 * that accepts connections and never answers) costs the loop this long,
 * not io_timeout several times over.
 */
#define PROBE_MS	50

/* The connect and I/O timeouts that apply now. */
static long
conn_ms(const struct mc *st, long ms)
{
	return st->probing && ms > PROBE_MS ? PROBE_MS : ms;
}

/* Set a connection's timeouts to those that apply now. */
static void
conn_bound(const struct mc *st, memcached_st *mc)
{
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT,
	    (uint64_t)conn_ms(st, st->connect_ms));
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT,
	    (uint64_t)conn_ms(st, st->io_ms));
}

/* A connection to one server with our behaviours. */
static memcached_st *
conn_new(const struct mc *st, const struct server *s, bool noreply)
{
	memcached_st	*mc;

	if ((mc = memcached_create(NULL)) == NULL)
		fatalx("memcached_create failed");
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
	conn_bound(st, mc);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 1);
	if (noreply) {
		memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_NOREPLY, 1);
		memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_BUFFER_REQUESTS,
		    1);
	}
	if (memcached_server_add(mc, s->host, (in_port_t)s->port) !=
	    MEMCACHED_SUCCESS)
		fatalx("memcached_server_add %s failed", s->name);
	return mc;
}

/* Set up one connection pair per configured server. */
static void
mc_open(struct store *store, const struct cfg *cfg)
{
	struct mc	*st;
	size_t		 i;

	if (cfg->nservers > STORE_MAX_SERVERS)
		fatalx("more than %d memcached servers", STORE_MAX_SERVERS);
	st = xcalloc(1, sizeof *st);
	store->impl = st;
	store->n = st->n = cfg->nservers;
	st->dist = cfg->distribution;
	st->connect_ms = cfg->mc_connect_timeout_ms;
	st->io_ms = cfg->mc_io_timeout_ms;
	for (i = 0; i < st->n; i++) {
		struct server *s = &st->sv[i];

		store->sv[i].name = xstrdup(cfg->servers[i].name);
		s->st = store;
		s->i = i;
		s->name = store->sv[i].name;
		s->host = xstrdup(cfg->servers[i].host);
		s->port = cfg->servers[i].port;
		s->item_max = 1024 * 1024;
		s->mc = conn_new(st, s, true);
		s->ctl = conn_new(st, s, false);
		st->nodes[i] = s->name;
	}
	if (st->dist == DIST_KETAMA) {
		if ((st->placer = memcached_create(NULL)) == NULL)
			fatalx("memcached_create failed");
		memcached_behavior_set(st->placer, MEMCACHED_BEHAVIOR_KETAMA, 1);
		for (i = 0; i < st->n; i++)
			memcached_server_add(st->placer, st->sv[i].host,
			    (in_port_t)st->sv[i].port);
	}
}

/* Close every connection (the names are store.c's). */
static void
mc_close(struct store *store)
{
	struct mc	*st = mc_of(store);
	size_t		 i;

	for (i = 0; i < st->n; i++) {
		memcached_free(st->sv[i].mc);
		memcached_free(st->sv[i].ctl);
		if (st->sv[i].lc != NULL)
			memcached_free(st->sv[i].lc);
		free(st->sv[i].pend);
		free(st->sv[i].host);
	}
	if (st->placer != NULL)
		memcached_free(st->placer);
	free(st);
}

/* store_fits: under the server's item_size_max, with the item overhead. */
static bool
mc_fits(const struct store *store, size_t i, size_t keylen, size_t len)
{
	return keylen + len + ITEM_OVERHEAD <= mc_of(store)->sv[i].item_max;
}

/* store_place: pymemcache's rendezvous, libmemcached's ketama, or all. */
static size_t
mc_place(const struct store *store, const char *key, size_t keylen,
    size_t *idx)
{
	const struct mc	*st = mc_of(store);
	size_t		 i;

	switch (st->dist) {
	case DIST_ALL:
		for (i = 0; i < st->n; i++)
			idx[i] = i;
		return st->n;
	case DIST_KETAMA:
		idx[0] = memcached_generate_hash(st->placer, key, keylen);
		if (idx[0] >= st->n)
			idx[0] = 0;
		return 1;
	case DIST_RENDEZVOUS:
	default:
		idx[0] = place_rendezvous(st->nodes, st->n, key, keylen);
		return 1;
	}
}

/* A server failed: log it once, and leave it alone for a while. */
static void
server_down(struct server *s, const char *op, const char *error)
{
	store_mark_down(s->st, s->i, op, error);
	s->checked = false;
	s->counted = false;
	/* Drop the half-used connections; the next ones start clean. */
	memcached_quit(s->mc);
	memcached_quit(s->ctl);
	s->npend = 0;
}

/* stats settings callback: pick out item_size_max. */
static memcached_return_t
on_setting(const memcached_instance_st *inst, const char *key, size_t klen,
    const char *val, size_t vlen, void *arg)
{
	struct server	*s = arg;
	char		 num[32];

	(void)inst;
	if (klen == 13 && memcmp(key, "item_size_max", 13) == 0 &&
	    vlen < sizeof num) {
		memcpy(num, val, vlen);
		num[vlen] = '\0';
		s->item_max = (size_t)strtoull(num, NULL, 10);
	}
	return MEMCACHED_SUCCESS;
}

/* stats callback: add up the counters of sets the server refused. */
static memcached_return_t
on_refusal_stat(const memcached_instance_st *inst, const char *key,
    size_t klen, const char *val, size_t vlen, void *arg)
{
	uint64_t	*n = arg;
	char		 num[32];

	(void)inst;
	if (((klen == 15 && memcmp(key, "store_no_memory", 15) == 0) ||
	    (klen == 15 && memcmp(key, "store_too_large", 15) == 0)) &&
	    vlen < sizeof num) {
		memcpy(num, val, vlen);
		num[vlen] = '\0';
		n[0] += strtoull(num, NULL, 10);
		n[1]++;
	}
	return MEMCACHED_SUCCESS;
}

/*
 * How many sets the server has refused since it started; false if it
 * cannot tell (an old memcached without the counters, or an error).
 */
static bool
read_refusals(struct server *s, uint64_t *out)
{
	uint64_t	n[2] = { 0, 0 };

	if (memcached_stat_execute(s->ctl, NULL, on_refusal_stat, n) !=
	    MEMCACHED_SUCCESS || n[1] != 2) {
		memcached_quit(s->ctl);
		return false;
	}
	*out = n[0];
	return true;
}

/* A server answered: say so if it had been down. */
static void
server_up(struct server *s)
{
	store_mark_up(s->st, s->i);
}

/* Learn item_size_max over a replying connection; false if it failed. */
static bool
read_settings(struct server *s, memcached_st *ctl)
{
	memcached_return_t	rc;

	rc = memcached_stat_execute(ctl, "settings", on_setting, s);
	if (rc != MEMCACHED_SUCCESS) {
		server_down(s, "connect", memcached_strerror(NULL, rc));
		return false;
	}
	s->checked = true;
	return true;
}

/*
 * Make sure a server can be written to: retry a down server once its
 * pause is over, and learn its item size limit on first contact (through
 * a replying connection: stats callbacks never fire under ASCII NOREPLY).
 */
static bool
server_ready(struct server *s)
{
	memcached_st	*ctl;
	bool		 ok;

	if (!store_may_try(s->st, s->i))
		return false;
	if (s->checked)
		return true;
	ctl = s->ctl;
	ok = read_settings(s, ctl);
	if (ok)
		server_up(s);
	return ok;
}

/* Queue a write of the batch (sent at the flush). */
static void
pending_add(struct server *s, const char *key, size_t keylen,
    const void *val, size_t len, uint32_t flags, size_t tag, bool del)
{
	struct pending	*p;

	if (s->npend == s->cappend) {
		s->cappend = s->cappend == 0 ? 256 : s->cappend * 2;
		s->pend = xreallocarray(s->pend, s->cappend, sizeof *s->pend);
	}
	p = &s->pend[s->npend++];
	p->key = key;
	p->keylen = keylen;
	p->val = val;
	p->len = len;
	p->flags = flags;
	p->tag = tag;
	p->del = del;
	p->sent = false;
}

/* store_set: queued for the flush. */
static enum store_rc
mc_set(struct store *store, size_t i, const char *key, size_t keylen,
    const void *val, size_t len, uint32_t flags, size_t tag)
{
	struct server	*s = &mc_of(store)->sv[i];

	if (!server_ready(s))
		return STORE_DOWN;
	if (keylen + len + ITEM_OVERHEAD > s->item_max)
		return STORE_TOO_BIG;
	pending_add(s, key, keylen, val, len, flags, tag, false);
	return STORE_OK;
}

/* store_delete: queued for the flush. */
static enum store_rc
mc_del(struct store *store, size_t i, const char *key, size_t keylen)
{
	struct server	*s = &mc_of(store)->sv[i];

	if (!server_ready(s))
		return STORE_DOWN;
	pending_add(s, key, keylen, NULL, 0, 0, SIZE_MAX, true);
	return STORE_OK;
}

/* Whether a libmemcached error means the connection is gone. */
static bool
conn_failed(memcached_return_t rc)
{
	return memcached_fatal(rc) || rc == MEMCACHED_CONNECTION_FAILURE ||
	    rc == MEMCACHED_SERVER_TEMPORARILY_DISABLED ||
	    rc == MEMCACHED_SERVER_MARKED_DEAD;
}

/*
 * Send the batch (NOREPLY, buffered): a set libmemcached refuses is
 * reported through refused and not read back.  -1 if the connection
 * failed (the server is then down).
 */
static int
send_batch(struct store *st, size_t i, store_refused_cb refused, void *arg)
{
	struct server		*s = &mc_of(st)->sv[i];
	struct pending		*p;
	memcached_return_t	 rc;
	size_t			 k;

	for (k = 0; k < s->npend; k++) {
		p = &s->pend[k];
		if (p->del) {
			rc = memcached_delete(s->mc, p->key, p->keylen, 0);
			if (rc == MEMCACHED_SUCCESS ||
			    rc == MEMCACHED_BUFFERED || rc == MEMCACHED_NOTFOUND)
				continue;
			server_down(s, "delete", memcached_strerror(s->mc, rc));
			return -1;
		}
		rc = memcached_set(s->mc, p->key, p->keylen, p->val, p->len, 0,
		    p->flags);
		if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_BUFFERED) {
			p->sent = true;
			continue;
		}
		if (conn_failed(rc)) {
			server_down(s, "set", memcached_strerror(s->mc, rc));
			return -1;
		}
		store_refused(st, i, "set", p->key, p->keylen, p->len, 0,
		    memcached_strerror(s->mc, rc));
		if (refused != NULL)
			refused(p->tag, false, arg);
	}
	return 0;
}

/* What a read-back of a batch has found so far. */
struct readback {
	const struct pending	*pend;
	unsigned char		*same;		/* per pending set */
};

/* store_mget's callback: does the server hold what was sent? */
static void
on_readback(size_t j, const void *val, size_t len, uint32_t flags, void *arg)
{
	struct readback		*rb = arg;
	const struct pending	*p = &rb->pend[j];

	rb->same[j] = p->flags == flags && p->len == len &&
	    memcmp(p->val, val, len) == 0;
}

/*
 * Read back every set of the batch and report those the server does not
 * hold as sent.  -1 if the server failed while being read.
 */
static int
read_back(struct store *st, size_t i, store_refused_cb refused, void *arg)
{
	struct server	*s = &mc_of(st)->sv[i];
	struct readback	 rb;
	const char	**keys;
	size_t		*lens, j, n = s->npend;
	int		 rc;

	keys = xreallocarray(NULL, n, sizeof *keys);
	lens = xreallocarray(NULL, n, sizeof *lens);
	for (j = 0; j < n; j++) {
		keys[j] = s->pend[j].key;
		lens[j] = s->pend[j].keylen;
	}
	rb.pend = s->pend;
	rb.same = xcalloc(n, 1);
	rc = mc_mget(st, i, keys, lens, n, on_readback, &rb);
	for (j = 0; rc == 0 && j < n; j++) {
		if (rb.same[j] || !s->pend[j].sent)
			continue;
		store_refused(st, i, "set", s->pend[j].key, s->pend[j].keylen,
		    s->pend[j].len, 0, "refused by the server (out of memory?): "
		    "the value is not in the cache");
		if (refused != NULL)
			refused(s->pend[j].tag, false, arg);
	}
	free(rb.same);
	free(keys);
	free(lens);
	return rc;
}

/* store_flush: a get as a barrier, and a read-back if sets were refused. */
static int
mc_flush(struct store *st, size_t i, store_refused_cb refused, void *arg)
{
	struct server		*s = &mc_of(st)->sv[i];
	memcached_result_st	 res;
	memcached_return_t	 rc;
	const char		*keys[1] = { "programs-cached:barrier" };
	size_t			 lens[1] = { strlen(keys[0]) };
	uint64_t		 before = 0, after = 0;
	size_t			 k, nsets = 0;
	bool			 counted = false;
	int			 ret = -1;

	if (!st->sv[i].up)
		goto out;
	for (k = 0; k < s->npend; k++)
		nsets += !s->pend[k].del;
	/*
	 * The refusals so far, to tell whether this batch had any: as read
	 * after the last batch (the counters only grow, so another client's
	 * refusals since then can only cause a read-back), or now.
	 */
	if (nsets > 0 && s->counted) {
		before = s->refusals;
		counted = true;
	} else if (nsets > 0)
		counted = read_refusals(s, &before);
	if (send_batch(st, i, refused, arg) == -1)
		goto out;
	/*
	 * A get on the same connection: memcached answers in order, so its
	 * END means every buffered write before it has been processed.
	 */
	rc = memcached_mget(s->mc, keys, lens, 1);
	if (rc != MEMCACHED_SUCCESS) {
		server_down(s, "flush", memcached_strerror(s->mc, rc));
		goto out;
	}
	memcached_result_create(s->mc, &res);
	while (memcached_fetch_result(s->mc, &res, &rc) != NULL)
		;
	memcached_result_free(&res);
	if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND &&
	    rc != MEMCACHED_SUCCESS) {
		server_down(s, "flush", memcached_strerror(s->mc, rc));
		goto out;
	}
	ret = 0;
	/* NOREPLY hid any SERVER_ERROR: did the server refuse a set? */
	s->counted = false;
	if (nsets > 0 && (!counted || !(s->counted = read_refusals(s,
	    &after)) || after != before))
		ret = read_back(st, i, refused, arg);
	if (s->counted)
		s->refusals = after;
out:
	s->npend = 0;
	return ret;
}

/* store_stats: memcached's general stats, on a fresh connection. */
static int
mc_stats(struct store *store, size_t i, struct store_stats *out)
{
	struct mc		*st = mc_of(store);
	struct server		*s = &st->sv[i];
	memcached_st		*ctl;
	memcached_stat_st	*stat;
	memcached_return_t	 rc;
	int			 ret = -1;

	/* No pause here: the caller's checks are the retries. */
	ctl = conn_new(st, s, false);
	stat = memcached_stat(ctl, NULL, &rc);
	if (stat == NULL || rc != MEMCACHED_SUCCESS) {
		if (rc == MEMCACHED_SOME_ERRORS)
			rc = memcached_last_error(ctl);
		server_down(s, "stats", memcached_strerror(ctl, rc));
		goto out;
	}
	out->pid = (long)stat[0].pid;
	out->uptime = stat[0].uptime;
	snprintf(out->id, sizeof out->id, "%ld", out->pid);
	if (!s->checked && !read_settings(s, ctl))
		goto out;
	server_up(s);
	ret = 0;
out:
	if (stat != NULL)
		memcached_stat_free(ctl, stat);
	memcached_free(ctl);
	return ret;
}

/*
 * store_reconnect: drop the batch (never sent: see the top) and both
 * connections; the next write reconnects.
 */
static void
mc_reconnect(struct store *st, size_t i)
{
	struct server	*s = &mc_of(st)->sv[i];

	s->npend = 0;
	s->counted = false;
	memcached_quit(s->mc);
	memcached_quit(s->ctl);
	/* A restarted server may have another item size limit. */
	s->checked = false;
	/* The caller knows better than the pause: try it at the next write. */
	st->sv[i].retry_at = 0;
}

/*
 * The index of the key k among keys[0..n), looking from cur on first
 * (memcached answers in request order), or n if it is not there.
 */
static size_t
match_key(const char *const *keys, const size_t *lens, size_t n, size_t cur,
    const char *k, size_t kl)
{
	size_t	j;

	for (j = cur; j < n; j++)
		if (lens[j] == kl && memcmp(keys[j], k, kl) == 0)
			return j;
	for (j = 0; j < cur && j < n; j++)
		if (lens[j] == kl && memcmp(keys[j], k, kl) == 0)
			return j;
	return n;
}

/* store_mget: batched multi-gets on the write connection. */
static int
mc_mget(struct store *st, size_t i, const char *const *keys,
    const size_t *lens, size_t n, store_hit_cb cb, void *arg)
{
	struct server		*s = &mc_of(st)->sv[i];
	memcached_result_st	 res;
	memcached_return_t	 rc;
	size_t			 off, nb, cur, j;
	int			 ret = -1;

	if (!server_ready(s))
		return -1;
	memcached_result_create(s->mc, &res);
	for (off = 0; off < n; off += nb) {
		nb = n - off < MGET_BATCH ? n - off : MGET_BATCH;
		rc = memcached_mget(s->mc, keys + off, lens + off, nb);
		if (rc != MEMCACHED_SUCCESS) {
			server_down(s, "get", memcached_strerror(s->mc, rc));
			goto out;
		}
		cur = 0;
		while (memcached_fetch_result(s->mc, &res, &rc) != NULL) {
			j = match_key(keys + off, lens + off, nb, cur,
			    memcached_result_key_value(&res),
			    memcached_result_key_length(&res));
			if (j == nb)
				continue;	/* not asked for */
			cur = j + 1;
			cb(off + j, memcached_result_value(&res),
			    memcached_result_length(&res),
			    memcached_result_flags(&res), arg);
		}
		if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND &&
		    rc != MEMCACHED_SUCCESS) {
			server_down(s, "get", memcached_strerror(s->mc, rc));
			goto out;
		}
	}
	ret = 0;
out:
	memcached_result_free(&res);
	return ret;
}

/* The holder's id now under key (into out); 1 found, 0 none, -1 error. */
static int
lease_holder(memcached_st *lc, const char *key, size_t keylen, char *out,
    size_t outlen, uint64_t *cas)
{
	const char		*keys[1] = { key };
	size_t			 lens[1] = { keylen };
	memcached_result_st	 res;
	memcached_return_t	 rc;
	int			 found = 0;

	if (memcached_mget(lc, keys, lens, 1) != MEMCACHED_SUCCESS)
		return -1;
	memcached_result_create(lc, &res);
	while (memcached_fetch_result(lc, &res, &rc) != NULL) {
		snprintf(out, outlen, "%.*s",
		    (int)memcached_result_length(&res),
		    memcached_result_value(&res));
		*cas = memcached_result_cas(&res);
		found = 1;
	}
	memcached_result_free(&res);
	if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND &&
	    rc != MEMCACHED_SUCCESS)
		return -1;
	return found;
}

/* store_lease: add; gets + cas; gets + delete (memcached has no cas delete). */
static int
mc_lease(struct store *store, size_t i, enum store_lease_op op,
    const char *key, size_t keylen, const char *id, long ttl_ms, char *err,
    size_t errlen)
{
	struct server		*s = &mc_of(store)->sv[i];
	time_t			 exp = (time_t)((ttl_ms + 999) / 1000);
	memcached_return_t	 rc;
	uint64_t		 cas = 0;
	char			 holder[256];
	int			 found;

	if (s->lc == NULL) {
		s->lc = conn_new(mc_of(store), s, false);
		memcached_behavior_set(s->lc, MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);
	}
	if (op == STORE_LEASE_TAKE)
		goto take;
	if ((found = lease_holder(s->lc, key, keylen, holder, sizeof holder,
	    &cas)) == -1) {
		rc = memcached_last_error(s->lc);
		goto fail;
	}
	if (op == STORE_LEASE_RELEASE) {
		if (found == 0 || strcmp(holder, id) != 0)
			return 1;
		rc = memcached_delete(s->lc, key, keylen, 0);
		return rc == MEMCACHED_SUCCESS || rc == MEMCACHED_NOTFOUND ? 0 :
		    -1;
	}
	if (found == 0)
		goto take;	/* expired, or the server restarted */
	if (strcmp(holder, id) != 0)
		return 1;
	rc = memcached_cas(s->lc, key, keylen, id, strlen(id), exp, 0, cas);
	if (rc == MEMCACHED_SUCCESS)
		return 0;
	if (rc == MEMCACHED_DATA_EXISTS || rc == MEMCACHED_NOTFOUND)
		return 1;	/* changed under us: another holder */
	goto fail;
take:
	rc = memcached_add(s->lc, key, keylen, id, strlen(id), exp, 0);
	if (rc == MEMCACHED_SUCCESS)
		return 0;
	if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS)
		return 1;
fail:
	snprintf(err, errlen, "%s", memcached_strerror(s->lc, rc));
	memcached_quit(s->lc);
	return -1;
}

/* store_probe: the monitor's reads (and a retried server's settings). */
static void
mc_probe(struct store *store, bool on)
{
	struct mc	*st = mc_of(store);
	size_t		 i;

	st->probing = on;
	for (i = 0; i < st->n; i++) {
		conn_bound(st, st->sv[i].mc);
		conn_bound(st, st->sv[i].ctl);
	}
}

/* store_announce: a no-reply delete of the self key, sent with the batch. */
static void
mc_announce(struct store *store, size_t i)
{
	struct server	*s = &mc_of(store)->sv[i];

	if (!server_ready(s))
		return;
	(void)memcached_delete(s->mc, MCW_SELF_KEY, sizeof MCW_SELF_KEY - 1,
	    0);
}

const struct store_be store_be_memcached = {
	.name = "memcached",
	.open = mc_open,
	.close = mc_close,
	.fits = mc_fits,
	.place = mc_place,
	.set = mc_set,
	.del = mc_del,
	.flush = mc_flush,
	.stats = mc_stats,
	.reconnect = mc_reconnect,
	.mget = mc_mget,
	.lease = mc_lease,
	.probe = mc_probe,
	.announce = mc_announce,
};
