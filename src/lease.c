/*
 * lease.c: the writer's lease, in memcached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <libmemcached/memcached.h>

#include "lease.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

struct lease {
	struct event_base	*base;
	struct event		*timer;
	memcached_st		*mc;		/* the key's server, replying */
	char			*server;	/* its name */
	char			 key[KEY_MAX + 1];
	size_t			 keylen;
	char			 id[128];
	long			 ttl_ms;
	bool			 held;
	bool			 elsewhere;	/* another held it, last try */
	uint64_t		 renewed;	/* mono_ms of the last success */
	lease_cb		 cb;
	void			*arg;
};

/* The memcached exptime for the ttl: whole seconds, at least one. */
static time_t
exptime(const struct lease *l)
{
	return (time_t)((l->ttl_ms + 999) / 1000);
}

/* Held, and renewed recently enough that nobody else can have it. */
bool
lease_valid(const struct lease *l)
{
	return l != NULL && l->held &&
	    mono_ms() < l->renewed + (uint64_t)l->ttl_ms * 2 / 3;
}

bool
lease_held_elsewhere(const struct lease *l)
{
	return l != NULL && l->elsewhere;
}

const char *
lease_id(const struct lease *l)
{
	return l->id;
}

/* The holder's id now in the cache (into out), or false if none / error. */
static bool
read_holder(struct lease *l, char *out, size_t outlen, uint64_t *cas,
    bool *error)
{
	const char		*keys[1] = { l->key };
	size_t			 lens[1] = { l->keylen };
	memcached_result_st	 res;
	memcached_return_t	 rc;
	bool			 found = false;

	*error = false;
	if (memcached_mget(l->mc, keys, lens, 1) != MEMCACHED_SUCCESS) {
		*error = true;
		return false;
	}
	memcached_result_create(l->mc, &res);
	while (memcached_fetch_result(l->mc, &res, &rc) != NULL) {
		snprintf(out, outlen, "%.*s",
		    (int)memcached_result_length(&res),
		    memcached_result_value(&res));
		*cas = memcached_result_cas(&res);
		found = true;
	}
	memcached_result_free(&res);
	if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND &&
	    rc != MEMCACHED_SUCCESS)
		*error = true;
	return found;
}

/* Tell the daemon, and log, that the lease was taken or lost. */
static void
changed(struct lease *l, bool held, const char *why)
{
	l->held = held;
	if (held) {
		metrics.lease_acquisitions++;
		log_event(LOG_NOTICE, "lease_acquired", "id=%s server=%s "
		    "ttl_ms=%ld", l->id, l->server, l->ttl_ms);
	} else {
		metrics.lease_losses++;
		log_event(LOG_WARNING, "lease_lost", "id=%s server=%s error=%s",
		    l->id, l->server, why);
	}
	metrics.lease_holder = held;
	l->cb(held, l->arg);
}

/* Try to take the lease. */
static void
take(struct lease *l)
{
	memcached_return_t	rc;

	rc = memcached_add(l->mc, l->key, l->keylen, l->id, strlen(l->id),
	    exptime(l), 0);
	if (rc == MEMCACHED_SUCCESS) {
		l->renewed = mono_ms();
		l->elsewhere = false;
		changed(l, true, NULL);
		return;
	}
	/* NOTSTORED: someone holds it.  Errors: nobody can tell. */
	l->elsewhere = rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS;
	if (!l->elsewhere)
		memcached_quit(l->mc);
}

/* Renew the lease while it is ours (gets + cas). */
static void
renew(struct lease *l)
{
	char			holder[128];
	uint64_t		cas = 0;
	bool			error, found;
	memcached_return_t	rc;

	found = read_holder(l, holder, sizeof holder, &cas, &error);
	if (error) {
		memcached_quit(l->mc);
		if (!lease_valid(l))
			changed(l, false, "could not renew in two thirds of "
			    "the ttl: stopped writing");
		return;
	}
	if (!found) {
		/* Expired or the server restarted: take it again. */
		rc = memcached_add(l->mc, l->key, l->keylen, l->id,
		    strlen(l->id), exptime(l), 0);
		if (rc == MEMCACHED_SUCCESS)
			l->renewed = mono_ms();
		else {
			l->elsewhere = true;
			changed(l, false, "the lease expired and another "
			    "daemon took it");
		}
		return;
	}
	if (strcmp(holder, l->id) != 0) {
		l->elsewhere = true;
		changed(l, false, "another daemon holds the lease");
		return;
	}
	rc = memcached_cas(l->mc, l->key, l->keylen, l->id, strlen(l->id),
	    exptime(l), 0, cas);
	if (rc == MEMCACHED_SUCCESS)
		l->renewed = mono_ms();
	else if (!lease_valid(l))
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

struct lease *
lease_new(struct event_base *base, const struct cfg *cfg,
    const struct store *st, const struct keyfn *kf, lease_cb cb, void *arg)
{
	struct lease	*l;
	struct timeval	 tv;
	char		 host[64];
	size_t		 idx[STORE_MAX_SERVERS], srv;
	int		 len;

	if (!cfg->lease_enabled)
		return NULL;
	l = xcalloc(1, sizeof *l);
	l->base = base;
	l->cb = cb;
	l->arg = arg;
	l->ttl_ms = cfg->lease_ttl_ms;
	if ((len = key_make(kf, cfg->lease_key, strlen(cfg->lease_key),
	    l->key)) == -1)
		fatalx("lease key %s: not a valid key", cfg->lease_key);
	l->keylen = (size_t)len;
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "unknown");
	host[sizeof host - 1] = '\0';
	snprintf(l->id, sizeof l->id, "%s:%ld:%08lx", host, (long)getpid(),
	    (unsigned long)(rand_unit() * 4294967295.0));
	/* The lease lives where its key is placed; the first one if many. */
	store_place(st, l->key, l->keylen, idx);
	srv = idx[0];
	l->server = xstrdup(cfg->servers[srv].name);
	if ((l->mc = memcached_create(NULL)) == NULL)
		fatalx("memcached_create failed");
	memcached_behavior_set(l->mc, MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);
	memcached_behavior_set(l->mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT,
	    (uint64_t)cfg->mc_connect_timeout_ms);
	memcached_behavior_set(l->mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT,
	    (uint64_t)cfg->mc_io_timeout_ms);
	if (memcached_server_add(l->mc, cfg->servers[srv].host,
	    (in_port_t)cfg->servers[srv].port) != MEMCACHED_SUCCESS)
		fatalx("memcached_server_add %s failed", l->server);
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
	char		holder[128];
	uint64_t	cas;
	bool		error;

	if (l == NULL)
		return;
	/* A checked delete: only our own lease, so that the next takes over
	 * at once instead of after the ttl. */
	if (l->held && read_holder(l, holder, sizeof holder, &cas, &error) &&
	    strcmp(holder, l->id) == 0 &&
	    memcached_delete(l->mc, l->key, l->keylen, 0) == MEMCACHED_SUCCESS)
		log_event(LOG_INFO, "lease_released", "id=%s server=%s", l->id,
		    l->server);
	event_free(l->timer);
	memcached_free(l->mc);
	free(l->server);
	free(l);
}
