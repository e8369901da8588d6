/*
 * store.c: the store interface's dispatch to its backend, and the state
 * every backend shares: which servers are up, why one is down, and when
 * it may be tried again.  A backend logs through store_mark_down,
 * store_mark_up and store_refused so that logs, metrics and /readyz say
 * the same for each, and so that a deferred store (the writer thread's)
 * keeps what it would say for the loop (store_replay).
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

/* Free a log's notes and reset it. */
static void
log_clear(struct store_log *l)
{
	size_t	k;

	for (k = 0; k < l->nnotes; k++) {
		free(l->notes[k].key);
		free(l->notes[k].error);
	}
	free(l->notes);
	memset(l, 0, sizeof *l);
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
	log_clear(&st->kept);
	free(st);
}

void
store_defer(struct store *st)
{
	st->deferred = true;
}

struct store_log *
store_take_log(struct store *st)
{
	struct store_log	*l;

	if (st->kept.nnotes == 0 && st->kept.sets == 0 &&
	    st->kept.deletes == 0 && st->kept.gets == 0)
		return NULL;
	l = xmalloc(sizeof *l);
	*l = st->kept;
	memset(&st->kept, 0, sizeof st->kept);
	return l;
}

/* Keep a note for the loop (a deferred store). */
static void
note(struct store *st, enum store_note_kind kind, size_t i, const char *op,
    const char *key, size_t keylen, size_t bytes, size_t count,
    const char *error)
{
	struct store_log	*l = &st->kept;
	struct store_note	*n;

	if (l->nnotes == l->capnotes) {
		l->capnotes = l->capnotes == 0 ? 16 : l->capnotes * 2;
		l->notes = xreallocarray(l->notes, l->capnotes,
		    sizeof *l->notes);
	}
	n = &l->notes[l->nnotes++];
	n->kind = kind;
	n->srv = i;
	n->op = op;
	n->key = key != NULL ? xstrndup(key, keylen) : NULL;
	n->bytes = bytes;
	n->count = count;
	n->retried = 0;
	n->error = error != NULL ? xstrdup(error) : NULL;
}

/* The loop's side of store_refused. */
static void
log_refused(const struct store *st, size_t i, const char *op,
    const char *key, size_t keylen, size_t bytes, size_t count,
    const char *error)
{
	const char	*name = st->sv[i].name;

	metrics_store_error(name);
	if (count > 0)
		log_event(LOG_ERR, "memcached_error", "backend=%s server=%s "
		    "op=%s refused=%zu key=%.*s bytes=%zu error=%s",
		    st->be->name, name, op, count, (int)keylen, key, bytes,
		    error);
	else if (key != NULL)
		log_event(LOG_ERR, "memcached_error", "backend=%s server=%s "
		    "op=%s key=%.*s bytes=%zu error=%s", st->be->name, name,
		    op, (int)keylen, key, bytes, error);
	else
		log_event(LOG_ERR, "memcached_error", "backend=%s server=%s "
		    "op=%s error=%s", st->be->name, name, op, error);
}

/* The loop's side of store_retried. */
static void
log_retried(const struct store *st, size_t i, const char *key, size_t bytes,
    size_t refused, size_t retried, const char *error)
{
	if (refused > 0)
		metrics_store_error(st->sv[i].name);
	log_event(refused > 0 ? LOG_ERR : LOG_WARNING, "memcached_error",
	    "backend=%s server=%s op=set refused=%zu retried=%zu key=%s "
	    "bytes=%zu error=%s", st->be->name, st->sv[i].name, refused,
	    retried, key, bytes, error);
}

void
store_retried(struct store *st, size_t i, const char *key, size_t bytes,
    size_t refused, size_t retried, const char *error)
{
	if (st->deferred) {
		note(st, STORE_NOTE_RETRIED, i, "set", key, strlen(key), bytes,
		    refused, error);
		st->kept.notes[st->kept.nnotes - 1].retried = retried;
	} else
		log_retried(st, i, key, bytes, refused, retried, error);
}

void
store_refused(struct store *st, size_t i, const char *op, const char *key,
    size_t keylen, size_t bytes, size_t count, const char *error)
{
	if (st->deferred)
		note(st, STORE_NOTE_REFUSED, i, op, key, keylen, bytes, count,
		    error);
	else
		log_refused(st, i, op, key, keylen, bytes, count, error);
}

void
store_replay(struct store_log *log, struct store *to)
{
	const struct store_note	*n;
	size_t			 k;

	if (log == NULL)
		return;
	for (k = 0; k < log->nnotes; k++) {
		n = &log->notes[k];
		if (n->srv >= to->n)
			continue;	/* not the same servers: cannot be */
		switch (n->kind) {
		case STORE_NOTE_DOWN:
			store_mark_down(to, n->srv, n->op, n->error);
			break;
		case STORE_NOTE_UP:
			store_mark_up(to, n->srv);
			break;
		case STORE_NOTE_REFUSED:
			log_refused(to, n->srv, n->op, n->key, n->key != NULL ?
			    strlen(n->key) : 0, n->bytes, n->count, n->error);
			break;
		case STORE_NOTE_RETRIED:
			log_retried(to, n->srv, n->key, n->bytes, n->count,
			    n->retried, n->error);
			break;
		}
	}
	metrics.mc_sets += log->sets;
	metrics.mc_set_bytes += log->set_bytes;
	metrics.mc_deletes += log->deletes;
	metrics.mc_gets += log->gets;
	log_clear(log);
	free(log);
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

	if (st->deferred)
		note(st, STORE_NOTE_DOWN, i, op, NULL, 0, 0, 0, error);
	else {
		metrics_store_error(s->name);
		if (s->up)
			log_event(LOG_ERR, "memcached_error", "backend=%s "
			    "server=%s op=%s error=%s", st->be->name, s->name,
			    op, error);
	}
	s->up = false;
	snprintf(s->error, sizeof s->error, "%s", error);
	s->retry_at = mono_ms() + STORE_RETRY_MS;
}

void
store_mark_up(struct store *st, size_t i)
{
	struct store_server	*s = &st->sv[i];

	if (st->deferred) {
		if (!s->up)
			note(st, STORE_NOTE_UP, i, NULL, NULL, 0, 0, 0, NULL);
	} else if (!s->up)
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

/* Mark the batch on server i as the daemon's own, once (store.h). */
static void
announce_batch(struct store *st, size_t i)
{
	if (st->announce && !st->sv[i].announced) {
		store_announce(st, i);
		st->sv[i].announced = true;
	}
}

enum store_rc
store_set(struct store *st, size_t i, const char *key, size_t keylen,
    const void *val, size_t len, uint32_t flags, size_t tag)
{
	enum store_rc	rc;

	announce_batch(st, i);
	if ((rc = st->be->set(st, i, key, keylen, val, len, flags, tag)) !=
	    STORE_OK)
		return rc;
	if (st->deferred) {
		st->kept.sets++;
		st->kept.set_bytes += len;
	} else {
		metrics.mc_sets++;
		metrics.mc_set_bytes += len;
	}
	return rc;
}

enum store_rc
store_delete(struct store *st, size_t i, const char *key, size_t keylen)
{
	enum store_rc	rc;

	announce_batch(st, i);
	if ((rc = st->be->del(st, i, key, keylen)) == STORE_OK) {
		if (st->deferred)
			st->kept.deletes++;
		else
			metrics.mc_deletes++;
	}
	return rc;
}

int
store_flush(struct store *st, size_t i, store_refused_cb refused, void *arg)
{
	st->sv[i].announced = false;
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
	st->sv[i].announced = false;
	st->be->reconnect(st, i);
}

/* A store_mget told to store_set_reads()'s found. */
struct reads_hit {
	struct store		 *st;
	size_t			  i;
	const char *const	 *keys;
	const size_t		 *lens;
	store_hit_cb		  cb;
	void			 *arg;
};

static void
on_reads_hit(size_t j, const void *val, size_t len, uint32_t flags,
    void *arg)
{
	struct reads_hit	*rh = arg;

	if (rh->st->reads.found != NULL)
		rh->st->reads.found(rh->st->reads.arg, rh->i, rh->keys[j],
		    rh->lens[j]);
	rh->cb(j, val, len, flags, rh->arg);
}

int
store_mget(struct store *st, size_t i, const char *const *keys,
    const size_t *lens, size_t n, store_hit_cb cb, void *arg)
{
	struct reads_hit	 rh;
	size_t			 j;

	if (st->deferred)
		st->kept.gets += n;
	else
		metrics.mc_gets += n;
	if (st->announce)
		store_announce(st, i);
	if (st->reads.asking == NULL)
		return st->be->mget(st, i, keys, lens, n, cb, arg);
	for (j = 0; j < n; j++)
		st->reads.asking(st->reads.arg, i, keys[j], lens[j]);
	rh.st = st;
	rh.i = i;
	rh.keys = keys;
	rh.lens = lens;
	rh.cb = cb;
	rh.arg = arg;
	return st->be->mget(st, i, keys, lens, n, on_reads_hit, &rh);
}

void
store_set_announce(struct store *st, bool on)
{
	st->announce = on;
}

void
store_set_reads(struct store *st, const struct store_reads *r)
{
	if (r != NULL)
		st->reads = *r;
	else
		memset(&st->reads, 0, sizeof st->reads);
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
