/*
 * lease.c: the writer's lease, in the cache itself (memcached or Redis,
 * through store_lease()).
 *
 * Everything here runs on the loop but lease_valid(), which the writer
 * thread asks before every batch: it reads one atomic, the moment until
 * which the loop knows nobody else can hold the lease.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "lease.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

struct lease {
	struct event		*timer;
	struct store		*store;
	size_t			 srv;		/* the server the key is on */
	char			*key;		/* the wire key */
	size_t			 keylen;
	char			 id[128];
	long			 ttl_ms;
	bool			 held;
	bool			 elsewhere;	/* another held it, last try */
	uint64_t		 renewed;	/* mono_ms of the last success */
	_Atomic uint64_t	 valid_until;	/* mono_ms; 0: not held */
	lease_cb		 cb;
	void			*arg;
};

/* Held, and renewed recently enough that nobody else can have it. */
bool
lease_valid(const struct lease *l)
{
	return l != NULL && mono_ms() < atomic_load(&l->valid_until);
}

/* Renewed (or taken) now: valid for two thirds of the ttl. */
static void
renewed(struct lease *l)
{
	l->renewed = mono_ms();
	atomic_store(&l->valid_until, l->renewed +
	    (uint64_t)l->ttl_ms * 2 / 3);
}

bool
lease_held_elsewhere(const struct lease *l)
{
	return l != NULL && l->elsewhere;
}

/* Tell the daemon, and log, that the lease was taken or lost. */
static void
changed(struct lease *l, bool held, const char *why)
{
	l->held = held;
	if (!held)
		atomic_store(&l->valid_until, 0);
	if (held) {
		metrics.lease_acquisitions++;
		log_event(LOG_NOTICE, "lease_acquired", "id=%s server=%s "
		    "ttl_ms=%ld", l->id, store_server_name(l->store, l->srv),
		    l->ttl_ms);
	} else {
		metrics.lease_losses++;
		log_event(LOG_WARNING, "lease_lost", "id=%s server=%s error=%s",
		    l->id, store_server_name(l->store, l->srv), why);
	}
	metrics.lease_holder = held;
	l->cb(held, l->arg);
}

/* Try to take the lease. */
static void
take(struct lease *l)
{
	char	err[256];
	int	rc;

	rc = store_lease(l->store, l->srv, STORE_LEASE_TAKE, l->key,
	    l->keylen, l->id, l->ttl_ms, err, sizeof err);
	/* 1: someone holds it.  -1: nobody can tell; try again later. */
	l->elsewhere = rc == 1;
	if (rc == 0) {
		renewed(l);
		changed(l, true, NULL);
	}
}

/* Renew the lease while it is ours. */
static void
renew(struct lease *l)
{
	char	err[256];
	int	rc;

	rc = store_lease(l->store, l->srv, STORE_LEASE_RENEW, l->key,
	    l->keylen, l->id, l->ttl_ms, err, sizeof err);
	if (rc == 0)
		renewed(l);
	else if (rc == 1) {
		l->elsewhere = true;
		changed(l, false, "another daemon holds the lease");
	} else if (!lease_valid(l))
		changed(l, false, "could not renew in two thirds of the ttl: "
		    "stopped writing");
}

/* Every third of the ttl: renew, or try to take. */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct lease	*l = arg;

	(void)fd;
	(void)what;
	if (l->held)
		renew(l);
	else
		take(l);
}

/*
 * Give the lease up on the store it is on now (a reload moves it): a
 * checked delete, so that the daemons of that store take over at once
 * instead of waiting out the ttl.  This daemon stands by until it holds
 * the lease where it writes next.
 */
static void
leave(struct lease *l, const char *why)
{
	char	err[256];
	int	rc;

	l->elsewhere = false;
	if (!l->held)
		return;
	rc = store_lease(l->store, l->srv, STORE_LEASE_RELEASE, l->key,
	    l->keylen, l->id, l->ttl_ms, err, sizeof err);
	if (rc == 0)
		log_event(LOG_INFO, "lease_released", "id=%s server=%s "
		    "reason=%s", l->id, store_server_name(l->store, l->srv),
		    why);
	else {
		metrics.lease_losses++;
		log_event(LOG_WARNING, "lease_lost", "id=%s server=%s error=%s",
		    l->id, store_server_name(l->store, l->srv), rc == 1 ?
		    "reload: another daemon held the lease already" :
		    "reload: could not release the lease (it expires after "
		    "lease_ttl)");
	}
	l->held = false;
	atomic_store(&l->valid_until, 0);	/* the writer's gate too */
	metrics.lease_holder = false;
	l->cb(false, l->arg);
}

/* Whether a lease on (st, server srv, key) is the one held now. */
static bool
same_lease(const struct lease *l, struct store *st, size_t srv,
    const struct buf *key)
{
	return l->store != NULL && l->keylen == key->len &&
	    memcmp(l->key, key->data, key->len) == 0 &&
	    strcmp(store_backend(l->store), store_backend(st)) == 0 &&
	    strcmp(store_server_name(l->store, l->srv),
	    store_server_name(st, srv)) == 0;
}

void
lease_configure(struct lease *l, struct store *st, const struct keyfn *kf,
    const char *key)
{
	size_t		idx[STORE_MAX_SERVERS];
	struct buf	w;

	if (l == NULL)
		return;
	buf_init(&w);
	if (key_make(kf, key, strlen(key), &w) == -1)
		fatalx("lease key %s: not a valid key", key);
	/*
	 * The lease lives where its key is placed (the first server if many).
	 * Other servers: the next renewal takes it there, if it is free.
	 */
	store_place(st, (const char *)w.data, w.len, idx);
	if (same_lease(l, st, idx[0], &w)) {
		l->store = st;		/* the same server, a new connection */
		buf_free(&w);
		return;
	}
	/* Another store, server or key: released there while it is open. */
	if (l->store != NULL)
		leave(l, "reload");
	free(l->key);
	l->key = (char *)buf_steal(&w, &l->keylen);
	l->store = st;
	l->srv = idx[0];
	/* Stand by there, and try to take it on the next turn of the loop. */
	if (l->timer != NULL)
		event_active(l->timer, EV_TIMEOUT, 0);
}

struct lease *
lease_new(struct event_base *base, const struct cfg *cfg, struct store *st,
    const struct keyfn *kf, lease_cb cb, void *arg)
{
	struct lease	*l;
	struct timeval	 tv;
	char		 host[64];

	if (!cfg->lease_enabled)
		return NULL;
	l = xcalloc(1, sizeof *l);
	atomic_init(&l->valid_until, 0);
	metrics.lease_holder = false;
	l->cb = cb;
	l->arg = arg;
	l->ttl_ms = cfg->lease_ttl_ms;
	lease_configure(l, st, kf, cfg->lease_key);
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "unknown");
	host[sizeof host - 1] = '\0';
	snprintf(l->id, sizeof l->id, "%s:%ld:%08lx", host, (long)getpid(),
	    (unsigned long)(rand_unit() * 4294967295.0));
	l->timer = event_new(base, -1, EV_PERSIST, on_timer, l);
	tv.tv_sec = l->ttl_ms / 3 / 1000;
	tv.tv_usec = (l->ttl_ms / 3 % 1000) * 1000;
	event_add(l->timer, &tv);
	return l;
}

void
lease_start(struct lease *l)
{
	if (l != NULL)
		take(l);
}

void
lease_free(struct lease *l)
{
	char	err[256];

	if (l == NULL)
		return;
	/* Only our own lease, so that the next takes over at once. */
	if (l->held && store_lease(l->store, l->srv, STORE_LEASE_RELEASE,
	    l->key, l->keylen, l->id, l->ttl_ms, err, sizeof err) == 0)
		log_event(LOG_INFO, "lease_released", "id=%s server=%s "
		    "reason=%s", l->id, store_server_name(l->store, l->srv),
		    "shutdown");
	event_free(l->timer);
	free(l->key);
	free(l);
}
