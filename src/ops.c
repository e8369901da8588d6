/*
 * ops.c: readiness, STATUS=, the watchdog and the listener's hooks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "family.h"
#include "httpd.h"
#include "log.h"
#include "notify.h"
#include "ops.h"
#include "util.h"

/* How often STATUS= is said again between refreshes (for its ages). */
#define STATUS_EVERY_S	60

struct ops {
	struct event_base	*base;
	bool			 once;
	const struct cfg	*cfg;
	struct store		*store;
	const struct keyfn	*kf;
	struct lease		*lease;		/* NULL: always the writer */
	struct httpd		*httpd;
	char			*listen;	/* the address httpd has */
	struct notify_watchdog	*watchdog;
	struct event		*status_timer;
	bool			 refreshing;
	bool			 refreshed;	/* one has ended */
	enum metrics_outcome	 outcome;	/* of the last one */
	size_t			 programs;
	bool			 published;
	uint64_t		 published_ms;	/* mono, last one */
	bool			 sentinels_ok;	/* a stand-by's last look */
	uint64_t		 sentinels_at;
	char			*reload_error;	/* the last reload's; NULL: ok */
};

/* A duration as an operator reads it: 45s, 17m, 3h12m, 2d3h. */
static void
fmt_age(uint64_t ms, char *out, size_t len)
{
	uint64_t	s = ms / 1000;

	if (s < 120)
		snprintf(out, len, "%llus", (unsigned long long)s);
	else if (s < 3600)
		snprintf(out, len, "%llum", (unsigned long long)(s / 60));
	else if (s < 86400)
		snprintf(out, len, "%lluh%llum", (unsigned long long)(s / 3600),
		    (unsigned long long)(s % 3600 / 60));
	else
		snprintf(out, len, "%llud%lluh", (unsigned long long)(s / 86400),
		    (unsigned long long)(s % 86400 / 3600));
}

/* store_mget's callback: count what came back. */
static void
count_hit(size_t j, const void *val, size_t len, uint32_t flags, void *arg)
{
	(void)j;
	(void)val;
	(void)len;
	(void)flags;
	(*(size_t *)arg)++;
}

/*
 * A stand-by's look at the cache: every site's program-uuids key is there
 * (the holder's publish is in place).  At most once per check_interval.
 */
static bool
sentinels_present(struct ops *o)
{
	const char	*keys[1];
	char		*key;
	struct buf	 wire;
	size_t		 i, idx[STORE_MAX_SERVERS], lens[1], hits;
	bool		 ok = true;

	if (o->sentinels_at != 0 && mono_ms() - o->sentinels_at <
	    (uint64_t)o->cfg->check_interval_ms)
		return o->sentinels_ok;
	buf_init(&wire);
	for (i = 0; ok && i < o->cfg->nsites; i++) {
		key = family_key(FAM_SITE_PROGRAMS, o->cfg->sites[i].domain);
		if (key_make(o->kf, key, strlen(key), &wire) == -1) {
			free(key);
			continue;
		}
		free(key);
		store_place(o->store, (const char *)wire.data, wire.len, idx);
		keys[0] = (const char *)wire.data;
		lens[0] = wire.len;
		hits = 0;
		if (store_mget(o->store, idx[0], keys, lens, 1, count_hit,
		    &hits) == -1 || hits == 0)
			ok = false;
	}
	buf_free(&wire);
	o->sentinels_ok = ok;
	o->sentinels_at = mono_ms();
	return ok;
}

/* Ready, or why not (one line into why). */
static bool
readiness(struct ops *o, struct buf *why)
{
	uint64_t	limit = 3 * (uint64_t)o->cfg->refresh_interval_ms;
	uint64_t	age = mono_ms() - o->published_ms;
	char		a[32], l[32];
	size_t		i, down = 0;

	for (i = 0; i < store_nservers(o->store); i++) {
		if (store_server_up(o->store, i))
			continue;
		if (down++ == 0)
			buf_printf(why, "%s unreachable: ",
			    store_backend(o->store));
		else
			buf_adds(why, ", ");
		buf_printf(why, "%s (%s)", store_server_name(o->store, i),
		    store_server_error(o->store, i));
	}
	if (down > 0)
		return false;
	if (o->lease != NULL && !lease_valid(o->lease)) {
		/* Ready when the writer is someone else and its work shows. */
		if (!lease_held_elsewhere(o->lease)) {
			buf_adds(why, "standing by, and no daemon holds the "
			    "lease");
			return false;
		}
		if (!sentinels_present(o)) {
			buf_adds(why, "standing by, and the lease holder's "
			    "site lists are not in the cache");
			return false;
		}
		return true;
	}
	if (!o->published) {
		buf_adds(why, o->refreshed ? "nothing published yet: the "
		    "refreshes so far failed" : "nothing published yet: the "
		    "first refresh is running");
		return false;
	}
	if (age > limit) {
		fmt_age(age, a, sizeof a);
		fmt_age(limit, l, sizeof l);
		buf_printf(why, "last publish %s ago, more than 3 refresh "
		    "intervals (%s)", a, l);
		return false;
	}
	return true;
}

/* httpd hook: the readiness of /readyz. */
static bool
hook_ready(struct buf *why, void *arg)
{
	return readiness(arg, why);
}

/* httpd hook: the series /metrics adds to metrics_render()'s. */
static void
hook_metrics(struct buf *b, void *arg)
{
	struct ops	*o = arg;
	struct buf	 why;
	size_t		 i;

	metrics_head(b, "programs_cached_memcached_up", "gauge",
	    "Whether the server answered when last used (1) or not (0).");
	for (i = 0; i < store_nservers(o->store); i++)
		metrics_sample(b, "programs_cached_memcached_up", "server",
		    store_server_name(o->store, i),
		    store_server_up(o->store, i) ? 1 : 0);
	buf_init(&why);
	metrics_head(b, "programs_cached_ready", "gauge",
	    "Whether /readyz answers 200 (1) or 503 (0).");
	metrics_sample(b, "programs_cached_ready", NULL, NULL,
	    readiness(o, &why) ? 1 : 0);
	buf_free(&why);
}

int
ops_configure(struct ops *o, const struct cfg *cfg, struct store *st,
    const struct keyfn *kf, struct lease *lease)
{
	struct httpd_hooks	 hooks = { hook_metrics, hook_ready, o };
	struct httpd		*h;

	o->cfg = cfg;
	o->store = st;
	o->kf = kf;
	o->lease = lease;
	o->sentinels_at = 0;
	if (o->once)
		return 0;
	if (cfg->listen == NULL) {
		httpd_free(o->httpd);
		o->httpd = NULL;
		free(o->listen);
		o->listen = NULL;
		return 0;
	}
	if (o->listen != NULL && strcmp(o->listen, cfg->listen) == 0)
		return 0;
	/* On failure (logged) the old listener, if any, stays. */
	h = httpd_new(o->base, cfg->listen_host, cfg->listen_port, &hooks);
	if (h == NULL)
		return -1;
	httpd_free(o->httpd);
	o->httpd = h;
	free(o->listen);
	o->listen = xstrdup(cfg->listen);
	return 0;
}

void
ops_published(struct ops *o)
{
	o->published = true;
	o->published_ms = mono_ms();
	ops_status(o);
}

void
ops_reloaded(struct ops *o, const char *error)
{
	free(o->reload_error);
	o->reload_error = error != NULL ? xstrdup(error) : NULL;
	ops_status(o);
}

void
ops_refreshing(struct ops *o, bool running)
{
	o->refreshing = running;
	ops_status(o);
}

void
ops_refreshed(struct ops *o, enum metrics_outcome outcome, size_t programs)
{
	o->refreshing = false;
	o->refreshed = true;
	o->outcome = outcome;
	o->programs = programs;
}

void
ops_status(struct ops *o)
{
	static const char *const outcomes[OUTCOME_COUNT] = {
		"ok", "partial", "failed"
	};
	struct buf	 why, reload;
	char		 age[32];
	double		 ms;
	bool		 ready;

	if (o->once || !notify_enabled())
		return;
	/* Said until a reload succeeds, whatever happens meanwhile. */
	buf_init(&reload);
	buf_adds(&reload, "");
	if (o->reload_error != NULL)
		buf_printf(&reload, "reload failed: %s; running with the "
		    "previous configuration; ", o->reload_error);
	buf_init(&why);
	buf_adds(&why, "");
	ready = readiness(o, &why);
	if (!o->refreshed) {
		notify_status("%s%s%s", (const char *)reload.data, ready ?
		    "first refresh running" : "not ready: ", ready ? "" :
		    (const char *)why.data);
		goto out;
	}
	if (ready)
		buf_truncate(&why, 0);
	/* Wall clock (last_success is a timestamp); it may have stepped. */
	ms = (double)wall_ms() - metrics.last_success * 1000;
	fmt_age(ms > 0 ? (uint64_t)ms : 0, age, sizeof age);
	notify_status("%s%slast refresh %s, %zu programs; last success %s%s%s"
	    "%s", (const char *)reload.data, o->refreshing ? "refreshing; " :
	    "", outcomes[o->outcome], o->programs,
	    metrics.last_success > 0 ? age : "never",
	    metrics.last_success > 0 ? " ago" : "",
	    why.len > 0 ? "; not ready: " : "", (const char *)why.data);
out:
	buf_free(&why);
	buf_free(&reload);
}

/* Keep the age in STATUS= current between refreshes. */
static void
on_status_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ops_status(arg);
}

struct ops *
ops_new(struct event_base *base, bool once)
{
	struct ops	*o = xcalloc(1, sizeof *o);

	o->base = base;
	o->once = once;
	return o;
}

/*
 * READY=1 here, as the daemon runs with a valid configuration, and not
 * once data is in the cache (which /readyz says): systemd 252 merges a
 * reload asked for while a unit is activating into its start job, so
 * that `systemctl reload` would wait for the first publish, up to
 * TimeoutStartSec=, and the SIGHUP would never come.
 */
void
ops_start(struct ops *o)
{
	struct timeval	tv = { STATUS_EVERY_S, 0 };

	if (o->once)
		return;
	o->watchdog = notify_watchdog_start(o->base);
	if (notify_enabled()) {
		o->status_timer = event_new(o->base, -1, EV_PERSIST,
		    on_status_timer, o);
		event_add(o->status_timer, &tv);
	}
	ops_status(o);
	notify_ready();
}

void
ops_free(struct ops *o)
{
	if (o == NULL)
		return;
	notify_watchdog_stop(o->watchdog);
	if (o->status_timer != NULL)
		event_free(o->status_timer);
	httpd_free(o->httpd);
	free(o->listen);
	free(o->reload_error);
	free(o);
}
