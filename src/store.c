/*
 * store.c: memcached servers through libmemcached (1.1, the awesome fork).
 *
 * Pitfalls measured on this libmemcached (research/libs.md §0, §2):
 * BUFFER_REQUESTS without NOREPLY aborts the process, so buffering is
 * only ever used with NOREPLY; NOREPLY hides E2BIG, so item sizes are
 * checked here against the server's own item_size_max; a write pipeline
 * is only known to be done after a round trip on the same connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmemcached/memcached.h>

#include "log.h"
#include "metrics.h"
#include "place.h"
#include "store.h"
#include "util.h"

/* memcached's per-item overhead beyond key and value, rounded up. */
#define ITEM_OVERHEAD	64
/* How long a failed server is left alone before it is tried again. */
#define RETRY_MS	1000
/*
 * Keys per multi-get: the request stays well under a socket buffer
 * (research/libs.md §2.4: a huge mget can deadlock in the kernel).
 */
#define MGET_BATCH	200
/*
 * The bound of the monitor's reads (store_probe): a stopped server (one
 * that accepts connections and never answers) costs the loop this long,
 * not io_timeout several times over.
 */
#define PROBE_MS	50

/* A set sent since the last flush, to read back if the server refused any. */
struct pending {
	const char	*key;
	size_t		 keylen;
	const void	*val;
	size_t		 len;
	uint32_t	 flags;
	size_t		 tag;
};

struct server {
	char		*name;		/* pymemcache's node name */
	char		*host;
	int		 port;
	memcached_st	*mc;		/* writes: NOREPLY + buffered */
	memcached_st	*ctl;		/* stats: replying */
	bool		 up;
	bool		 checked;	/* item_size_max read */
	uint64_t	 retry_at;	/* mono_ms when down */
	size_t		 item_max;
	struct pending	*pend;		/* sets of the batch */
	size_t		 npend;
	size_t		 cappend;
	bool		 counted;	/* refusals read at batch start */
	uint64_t	 refusals;	/* store_no_memory + store_too_large */
};

struct store {
	struct server		 sv[STORE_MAX_SERVERS];
	size_t			 n;
	const char		*nodes[STORE_MAX_SERVERS];
	enum cfg_distribution	 dist;
	memcached_st		*placer;	/* ketama only */
	long			 connect_ms;
	long			 io_ms;
	bool			 probing;	/* store_probe(): short bounds */
};

/* The connect and I/O timeouts that apply now. */
static long
conn_ms(const struct store *st, long ms)
{
	return st->probing && ms > PROBE_MS ? PROBE_MS : ms;
}

/* A connection to one server with our behaviours. */
static memcached_st *
conn_new(const struct store *st, const struct server *s, bool noreply)
{
	memcached_st	*mc;

	if ((mc = memcached_create(NULL)) == NULL)
		fatalx("memcached_create failed");
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT,
	    (uint64_t)conn_ms(st, st->connect_ms));
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT,
	    (uint64_t)conn_ms(st, st->io_ms));
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

struct store *
store_new(const struct cfg *cfg)
{
	struct store	*st;
	size_t		 i;

	if (cfg->nservers > STORE_MAX_SERVERS)
		fatalx("more than %d memcached servers", STORE_MAX_SERVERS);
	st = xcalloc(1, sizeof *st);
	st->n = cfg->nservers;
	st->dist = cfg->distribution;
	st->connect_ms = cfg->mc_connect_timeout_ms;
	st->io_ms = cfg->mc_io_timeout_ms;
	for (i = 0; i < st->n; i++) {
		struct server *s = &st->sv[i];

		s->name = xstrdup(cfg->servers[i].name);
		s->host = xstrdup(cfg->servers[i].host);
		s->port = cfg->servers[i].port;
		s->up = true;
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
	return st;
}

void
store_free(struct store *st)
{
	size_t	i;

	if (st == NULL)
		return;
	for (i = 0; i < st->n; i++) {
		memcached_free(st->sv[i].mc);
		memcached_free(st->sv[i].ctl);
		free(st->sv[i].pend);
		free(st->sv[i].name);
		free(st->sv[i].host);
	}
	if (st->placer != NULL)
		memcached_free(st->placer);
	free(st);
}

size_t
store_nservers(const struct store *st)
{
	return st->n;
}

const char *
store_server_name(const struct store *st, size_t i)
{
	return st->sv[i].name;
}

bool
store_server_up(const struct store *st, size_t i)
{
	return st->sv[i].up;
}

/* Set a connection's timeouts to those that apply now. */
static void
conn_bound(const struct store *st, memcached_st *mc)
{
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT,
	    (uint64_t)conn_ms(st, st->connect_ms));
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT,
	    (uint64_t)conn_ms(st, st->io_ms));
}

void
store_probe(struct store *st, bool on)
{
	size_t	i;

	st->probing = on;
	for (i = 0; i < st->n; i++) {
		/* Both: a retried server is asked its settings on ctl. */
		conn_bound(st, st->sv[i].mc);
		conn_bound(st, st->sv[i].ctl);
	}
}

void
store_retry_now(struct store *st)
{
	size_t	i;

	for (i = 0; i < st->n; i++)
		st->sv[i].retry_at = 0;
}

bool
store_fits(const struct store *st, size_t i, size_t keylen, size_t len)
{
	return keylen + len + ITEM_OVERHEAD <= st->sv[i].item_max;
}

size_t
store_place(const struct store *st, const char *key, size_t keylen,
    size_t idx[STORE_MAX_SERVERS])
{
	size_t	i;

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
	metrics.mc_errors++;
	if (s->up)
		log_event(LOG_ERR, "memcached_error", "server=%s op=%s "
		    "error=%s", s->name, op, error);
	s->up = false;
	s->checked = false;
	s->retry_at = mono_ms() + RETRY_MS;
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
	if (!s->up)
		log_event(LOG_NOTICE, "memcached_recovered", "server=%s",
		    s->name);
	s->up = true;
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
server_ready(struct store *st, struct server *s)
{
	memcached_st	*ctl;
	bool		 ok;

	if (!s->up && mono_ms() < s->retry_at)
		return false;
	if (s->checked)
		return true;
	(void)st;
	ctl = s->ctl;
	ok = read_settings(s, ctl);
	if (ok)
		server_up(s);
	return ok;
}

/* Remember a set of the batch; the first one reads the refusal count. */
static void
pending_add(struct server *s, const char *key, size_t keylen,
    const void *val, size_t len, uint32_t flags, size_t tag)
{
	struct pending	*p;

	if (s->npend == 0)
		s->counted = read_refusals(s, &s->refusals);
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
}

enum store_rc
store_set(struct store *st, size_t i, const char *key, size_t keylen,
    const void *val, size_t len, uint32_t flags, size_t tag)
{
	struct server		*s = &st->sv[i];
	memcached_return_t	 rc;

	if (!server_ready(st, s))
		return STORE_DOWN;
	if (keylen + len + ITEM_OVERHEAD > s->item_max)
		return STORE_TOO_BIG;
	pending_add(s, key, keylen, val, len, flags, tag);
	rc = memcached_set(s->mc, key, keylen, val, len, 0, flags);
	if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_BUFFERED) {
		metrics.mc_sets++;
		metrics.mc_set_bytes += len;
		return STORE_OK;
	}
	if (memcached_fatal(rc) || rc == MEMCACHED_CONNECTION_FAILURE ||
	    rc == MEMCACHED_SERVER_TEMPORARILY_DISABLED ||
	    rc == MEMCACHED_SERVER_MARKED_DEAD) {
		server_down(s, "set", memcached_strerror(s->mc, rc));
		return STORE_DOWN;
	}
	s->npend--;		/* not sent: nothing to read back */
	metrics.mc_errors++;
	log_event(LOG_ERR, "memcached_error", "server=%s op=set key=%.*s "
	    "error=%s", s->name, (int)keylen, key,
	    memcached_strerror(s->mc, rc));
	return STORE_ERROR;
}

enum store_rc
store_delete(struct store *st, size_t i, const char *key, size_t keylen)
{
	struct server		*s = &st->sv[i];
	memcached_return_t	 rc;

	if (!server_ready(st, s))
		return STORE_DOWN;
	rc = memcached_delete(s->mc, key, keylen, 0);
	if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_BUFFERED ||
	    rc == MEMCACHED_NOTFOUND) {
		metrics.mc_deletes++;
		return STORE_OK;
	}
	server_down(s, "delete", memcached_strerror(s->mc, rc));
	return STORE_DOWN;
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
	struct server	*s = &st->sv[i];
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
	rc = store_mget(st, i, keys, lens, n, on_readback, &rb);
	for (j = 0; rc == 0 && j < n; j++) {
		if (rb.same[j])
			continue;
		metrics.mc_errors++;
		log_event(LOG_ERR, "memcached_error", "server=%s op=set key=%s "
		    "bytes=%zu error=%s", s->name, s->pend[j].key,
		    s->pend[j].len, "refused by the server (out of memory?): "
		    "the value is not in the cache");
		if (refused != NULL)
			refused(s->pend[j].tag, arg);
	}
	free(rb.same);
	free(keys);
	free(lens);
	return rc;
}

int
store_flush(struct store *st, size_t i, store_refused_cb refused, void *arg)
{
	struct server		*s = &st->sv[i];
	memcached_result_st	 res;
	memcached_return_t	 rc;
	const char		*keys[1] = { "programs-cached:barrier" };
	size_t			 lens[1] = { strlen(keys[0]) };
	uint64_t		 after;
	int			 ret = -1;

	if (!s->up)
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
	if (s->npend > 0 && (!s->counted || !read_refusals(s, &after) ||
	    after != s->refusals))
		ret = read_back(st, i, refused, arg);
out:
	s->npend = 0;
	return ret;
}

int
store_stats(struct store *st, size_t i, struct store_stats *out)
{
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

void
store_reconnect(struct store *st, size_t i)
{
	struct server	*s = &st->sv[i];

	memcached_quit(s->mc);
	memcached_quit(s->ctl);
	s->npend = 0;
	/* A restarted server may have another item size limit. */
	s->checked = false;
	/* The caller knows better than the pause: try it at the next write. */
	s->retry_at = 0;
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

int
store_mget(struct store *st, size_t i, const char *const *keys,
    const size_t *lens, size_t n, store_hit_cb cb, void *arg)
{
	struct server		*s = &st->sv[i];
	memcached_result_st	 res;
	memcached_return_t	 rc;
	size_t			 off, nb, cur, j;
	int			 ret = -1;

	if (!server_ready(st, s))
		return -1;
	memcached_result_create(s->mc, &res);
	for (off = 0; off < n; off += nb) {
		nb = n - off < MGET_BATCH ? n - off : MGET_BATCH;
		rc = memcached_mget(s->mc, keys + off, lens + off, nb);
		if (rc != MEMCACHED_SUCCESS) {
			server_down(s, "get", memcached_strerror(s->mc, rc));
			goto out;
		}
		metrics.mc_gets += nb;
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
