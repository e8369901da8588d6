/*
 * store.c: the store interface's dispatch to its backend, and the state
 * every backend shares: which servers are up, why one is down, and when
 * it may be tried again.  A backend logs through store_mark_down and
 * store_mark_up so that logs, metrics and /readyz say the same for each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "store_be.h"
#include "util.h"

struct store *
store_new(const struct cfg *cfg)
{
	return store_new_with(cfg->backend == BACKEND_REDIS ?
	    &store_be_redis : &store_be_memcached, cfg);
}

struct store *
store_new_with(const struct store_be *be, const struct cfg *cfg)
{
	static uint64_t	 serial;
	struct store	*st;
	size_t		 i;

	st = xcalloc(1, sizeof *st);
	st->serial = ++serial;
	st->be = be;
	st->be->open(st, cfg);
	for (i = 0; i < st->n; i++)
		st->sv[i].up = true;
	metrics.backend = st->be->name;
	return st;
}

void
store_free(struct store *st)
{
	size_t	i;

	if (st == NULL)
		return;
	st->be->close(st);
	for (i = 0; i < st->n; i++)
		free(st->sv[i].name);
	free(st);
}

uint64_t
store_serial(const struct store *st)
{
	return st != NULL ? st->serial : 0;
}

const char *
store_backend(const struct store *st)
{
	return st->be->name;
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

const char *
store_server_error(const struct store *st, size_t i)
{
	return st->sv[i].up ? "" : st->sv[i].error;
}

void
store_retry_now(struct store *st)
{
	size_t	i;

	for (i = 0; i < st->n; i++)
		st->sv[i].retry_at = 0;
}

void
store_mark_down(struct store *st, size_t i, const char *op,
    const char *error)
{
	struct store_server	*s = &st->sv[i];

	metrics_store_error(s->name);
	if (s->up)
		log_event(LOG_ERR, "memcached_error", "backend=%s server=%s "
		    "op=%s error=%s", st->be->name, s->name, op, error);
	s->up = false;
	snprintf(s->error, sizeof s->error, "%s", error);
	s->retry_at = mono_ms() + STORE_RETRY_MS;
}

void
store_mark_up(struct store *st, size_t i)
{
	struct store_server	*s = &st->sv[i];

	if (!s->up)
		log_event(LOG_NOTICE, "memcached_recovered", "backend=%s "
		    "server=%s", st->be->name, s->name);
	s->up = true;
	s->error[0] = '\0';
}

bool
store_may_try(const struct store *st, size_t i)
{
	return st->sv[i].up || mono_ms() >= st->sv[i].retry_at;
}

bool
store_fits(const struct store *st, size_t i, size_t keylen, size_t len)
{
	return st->be->fits(st, i, keylen, len);
}

size_t
store_place(const struct store *st, const char *key, size_t keylen,
    size_t idx[STORE_MAX_SERVERS])
{
	return st->be->place(st, key, keylen, idx);
}

enum store_rc
store_set(struct store *st, size_t i, const char *key, size_t keylen,
    const void *val, size_t len, uint32_t flags, size_t tag)
{
	enum store_rc	rc;

	if ((rc = st->be->set(st, i, key, keylen, val, len, flags, tag)) ==
	    STORE_OK) {
		metrics.mc_sets++;
		metrics.mc_set_bytes += len;
	}
	return rc;
}

enum store_rc
store_delete(struct store *st, size_t i, const char *key, size_t keylen)
{
	enum store_rc	rc;

	if ((rc = st->be->del(st, i, key, keylen)) == STORE_OK)
		metrics.mc_deletes++;
	return rc;
}

int
store_flush(struct store *st, size_t i, store_refused_cb refused, void *arg)
{
	return st->be->flush(st, i, refused, arg);
}

int
store_stats(struct store *st, size_t i, struct store_stats *out)
{
	memset(out, 0, sizeof *out);
	return st->be->stats(st, i, out);
}

void
store_reconnect(struct store *st, size_t i)
{
	st->be->reconnect(st, i);
}

int
store_mget(struct store *st, size_t i, const char *const *keys,
    const size_t *lens, size_t n, store_hit_cb cb, void *arg)
{
	metrics.mc_gets += n;
	return st->be->mget(st, i, keys, lens, n, cb, arg);
}

int
store_lease(struct store *st, size_t i, enum store_lease_op op,
    const char *key, size_t keylen, const char *id, long ttl_ms, char *err,
    size_t errlen)
{
	return st->be->lease(st, i, op, key, keylen, id, ttl_ms, err, errlen);
}

void
store_probe(struct store *st, bool on)
{
	if (st->be->probe != NULL)
		st->be->probe(st, on);
}

void
store_announce(struct store *st, size_t i)
{
	if (st->be->announce != NULL)
		st->be->announce(st, i);
}
