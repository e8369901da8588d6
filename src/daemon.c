/*
 * daemon.c: the loop that owns the refresh timer, the signals and the
 * generations.  Event callbacks only decode what happened and call the
 * function that does the work.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "catalog.h"
#include "daemon.h"
#include "disc.h"
#include "http.h"
#include "httpd.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "monitor.h"
#include "notify.h"
#include "oauth.h"
#include "publish.h"
#include "snapshot.h"
#include "store.h"
#include "util.h"

struct daemon {
	struct event_base		*base;
	const struct daemon_opts	*opts;
	struct cfg			*cfg;
	struct cfg			*pending_cfg;	/* from SIGHUP, mid-refresh */
	struct http			*http;
	struct oauth			*oauth;
	struct store			*store;
	struct keyfn			 kf;
	struct catalog			*last;		/* last published */
	struct pub_stale		*stale;		/* keys seen, absences */
	struct snapshot			*snap;		/* of last (+ loaded) */
	struct snapshot			*loaded;	/* from the file */
	bool				 snap_saved;	/* the file holds snap */
	struct monitor			*mon;
	struct disc			*disc;		/* refresh running */
	bool				 queued;	/* SIGHUP during a refresh */
	bool				 stopping;
	bool				 store_changed;	/* rewrite everything */
	int				 exit_code;
	uint64_t			 refresh_started;
	uint64_t			 unchanged_before;	/* metric */
	struct event			*refresh_timer;
	struct event			*sig_hup;
	struct event			*sig_term;
	struct event			*sig_int;

	/* operations: systemd, the HTTP listener (SPEC §6) */
	struct httpd			*httpd;
	char				*listen;	/* address httpd has */
	struct notify_watchdog		*watchdog;
	struct event			*status_timer;
	bool				 refreshed;	/* one has finished */
	enum metrics_outcome		 outcome;	/* of the last one */
	bool				 published;
	uint64_t			 published_ms;	/* mono, last one */
	struct event			*sig_usr1;
};

/* How often STATUS= is refreshed between refreshes (for its ages). */
#define STATUS_EVERY_S	60

static void	start_refresh(struct daemon *);
static int	listen_apply(struct daemon *);
static void	mark_published(struct daemon *);
static void	update_status(struct daemon *);

/* HTTP limits from the configuration. */
static void
http_opts_from(const struct cfg *cfg, struct http_opts *o)
{
	o->connect_timeout_ms = cfg->connect_timeout_ms;
	o->request_timeout_ms = cfg->request_timeout_ms;
	o->low_speed_limit = cfg->low_speed_limit;
	o->low_speed_time_ms = cfg->low_speed_time_ms;
	o->max_in_flight = cfg->max_in_flight;
	o->retries = cfg->retries;
	o->retry_backoff_ms = cfg->retry_backoff_ms;
	o->retry_backoff_max_ms = cfg->retry_backoff_max_ms;
	o->max_response_size = cfg->max_response_size;
}

/* Whether two optional strings are equal (both NULL counts). */
static bool
same_text(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Whether two configurations talk to memcached the same way. */
static bool
same_store(const struct cfg *a, const struct cfg *b)
{
	size_t	i;

	/* A Redis server's name is its URL without the password. */
	if (a->backend != b->backend ||
	    !same_text(a->redis_password, b->redis_password) ||
	    !same_text(a->redis_password_file, b->redis_password_file))
		return false;
	if (a->nservers != b->nservers || a->distribution != b->distribution ||
	    a->mc_connect_timeout_ms != b->mc_connect_timeout_ms ||
	    a->mc_io_timeout_ms != b->mc_io_timeout_ms ||
	    a->key_function != b->key_function ||
	    a->long_key_hash != b->long_key_hash ||
	    strcmp(a->key_prefix, b->key_prefix) != 0 ||
	    strcmp(a->key_version, b->key_version) != 0 ||
	    a->value_format != b->value_format ||
	    a->pickle_protocol != b->pickle_protocol)
		return false;
	for (i = 0; i < a->nservers; i++)
		if (strcmp(a->servers[i].name, b->servers[i].name) != 0)
			return false;
	return true;
}

static bool
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL &&
	    strcmp(a, b) == 0);
}

/* Whether two configurations get their tokens the same way. */
static bool
same_oauth(const struct cfg *a, const struct cfg *b)
{
	return same_str(a->client_id, b->client_id) &&
	    same_str(a->oauth_url, b->oauth_url) &&
	    same_str(a->client_secret_file, b->client_secret_file);
}

/*
 * New settings for the monitor.  Other servers or keys make the snapshots
 * wrong (placement, keys, maybe values): they are dropped until the next
 * publish, which rewrites everything.
 */
static void
heal_configure(struct daemon *d, const struct cfg *cfg, bool store_changed)
{
	if (store_changed) {
		monitor_set_snapshot(d->mon, NULL);
		snapshot_free(d->snap);
		snapshot_free(d->loaded);
		d->snap = d->loaded = NULL;
		d->snap_saved = false;
	}
	monitor_configure(d->mon, d->store, cfg->check_interval_ms,
	    cfg->verify_interval_ms);
}

/* A repair put everything back: for /readyz, as good as a publish. */
static void
on_repaired(void *arg)
{
	struct daemon	*d = arg;

	d->published = true;
	d->published_ms = mono_ms();
	update_status(d);
}

/*
 * Load the snapshot file: what the last publish wrote, so that unchanged
 * values are not written again and the shrink guard knows each site's
 * last program count, in one-shot runs too.  The daemon also starts the
 * monitor, which can repair from the file before the first fetch from
 * Discovery, and remembers its keys for the stale-key sweep.
 */
static void
heal_start(struct daemon *d)
{
	char	*path, *set;

	path = snapshot_path(d->cfg->state_dir);
	set = snapshot_settings(d->cfg);
	d->loaded = snapshot_load(path, set);
	d->snap_saved = d->loaded != NULL;
	free(set);
	free(path);
	if (d->opts->once)
		return;
	monitor_on_repair(d->mon, on_repaired, d);
	if (d->loaded != NULL) {
		/* SPEC §6: ready once something can be served: the file. */
		notify_ready();
		pub_stale_sweep(d->stale, d->store, &d->kf,
		    snapshot_catalog(d->loaded), d->cfg->stale_after, false);
	}
	monitor_set_snapshot(d->mon, d->loaded);
	monitor_start(d->mon);
}

/* What publish compares with to skip unchanged values. */
static const struct catalog *
heal_prev(struct daemon *d)
{
	if (d->last != NULL)
		return d->last;
	return d->loaded != NULL ? snapshot_catalog(d->loaded) : NULL;
}

/*
 * next was just published: it becomes the snapshot, saved and verified.
 * While a site or program could not be fetched, what the loaded file had
 * for it is kept.  A one-shot run saves only a complete, successful
 * refresh of every site.
 */
static void
heal_published(struct daemon *d, struct catalog *next,
    const struct pub_stats *ps, bool complete)
{
	struct snapshot	*snap, *old = d->snap != NULL ? d->snap : d->loaded;
	char		*path, *set;
	bool		 same;

	if (d->opts->once && (d->exit_code != PCD_EXIT_OK ||
	    d->opts->domain != NULL))
		return;
	snap = snapshot_from_catalog(next, d->store, &d->kf,
	    d->cfg->value_format == VALUE_PICKLE ? 1 : 0,
	    complete ? NULL : d->loaded);
	/*
	 * Every value skipped as unchanged against old (the last publish, or
	 * the file before the first one), and as many entries: the file
	 * already holds exactly this.
	 */
	same = d->snap_saved && old != NULL &&
	    (d->last == NULL || d->loaded == NULL) &&
	    ps->written == 0 && ps->failed == 0 &&
	    ps->skipped == next->nentries &&
	    snapshot_count(snap) == snapshot_count(old);
	if (!same) {
		path = snapshot_path(d->cfg->state_dir);
		set = snapshot_settings(d->cfg);
		d->snap_saved = snapshot_save(snap, path, set) == 0;
		free(set);
		free(path);
	}
	monitor_set_snapshot(d->mon, snap);
	snapshot_free(d->snap);
	d->snap = snap;
	if (complete) {
		snapshot_free(d->loaded);
		d->loaded = NULL;
	}
	monitor_verify_soon(d->mon);
}

/* Make cfg the configuration in use (taking it). */
static void
apply_config(struct daemon *d, struct cfg *cfg)
{
	struct http_opts	ho;
	bool			changed = false;

	log_setup(cfg->log_format, cfg->log_level);
	http_opts_from(cfg, &ho);
	if (d->http == NULL)
		d->http = http_new(d->base, &ho);
	else
		http_set_opts(d->http, &ho);
	if (d->cfg == NULL || !same_oauth(d->cfg, cfg)) {
		/* A new client, secret or server needs a new token. */
		oauth_free(d->oauth);
		d->oauth = oauth_new(d->base, d->http, cfg);
	}
	if (d->store == NULL || d->cfg == NULL || !same_store(d->cfg, cfg)) {
		store_free(d->store);
		d->store = store_new(cfg);
		key_clear(&d->kf);
		key_init(&d->kf, cfg->key_function, cfg->long_key_hash,
		    cfg->key_prefix, cfg->key_version);
		/* Placement or encoding may differ: write everything again. */
		d->store_changed = d->cfg != NULL;
		changed = true;
	}
	heal_configure(d, cfg, changed);
	if (d->cfg != cfg)
		cfg_free(d->cfg);
	d->cfg = cfg;
	listen_apply(d);
}

/* Arm the refresh timer: the interval, +/- 10 % so hosts drift apart. */
static void
schedule_refresh(struct daemon *d)
{
	double		ms = (double)d->cfg->refresh_interval_ms;
	long		delay;
	struct timeval	tv;

	delay = (long)(ms * (0.9 + 0.2 * rand_unit()));
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_add(d->refresh_timer, &tv);
	log_debug("next refresh in %ld ms", delay);
}

/* Count the sites by outcome. */
static void
count_sites(const struct catalog *c, size_t *ok, size_t *partial,
    size_t *failed)
{
	size_t	i;

	*ok = *partial = *failed = 0;
	for (i = 0; i < c->nsites; i++) {
		switch (c->sites[i]->status) {
		case SITE_OK:
		case SITE_UNCONFIGURED:
			(*ok)++;
			break;
		case SITE_PARTIAL:
			(*partial)++;
			break;
		case SITE_FAILED:
		case SITE_HELD:
			(*failed)++;
			break;
		}
	}
}

/* What /metrics shows of a finished refresh. */
static void
record_metrics(const struct catalog *c, enum metrics_outcome o, uint64_t ms)
{
	size_t	i;

	metrics.refreshes[o]++;
	metrics.last_refresh_seconds = (double)ms / 1000;
	metrics.refresh_seconds_sum += (double)ms / 1000;
	if (o == OUTCOME_OK)
		metrics.last_success = (double)wall_ms() / 1000;
	metrics.programs = c->nprograms;
	metrics.pathways = c->npathways;
	memset(metrics.keys, 0, sizeof metrics.keys);
	for (i = 0; i < c->nentries; i++)
		metrics.keys[c->entries[i].family]++;
}

/* --dry-run: print what would change, write nothing, stop. */
static void
dry_run_done(struct daemon *d, struct catalog *next)
{
	size_t	ok, partial, failed;
	int	rc;

	rc = pub_dry_run(d->store, &d->kf, next,
	    d->cfg->value_format == VALUE_PICKLE ? 1 : 0, stdout);
	fflush(stdout);
	count_sites(next, &ok, &partial, &failed);
	d->exit_code = rc == 0 && partial == 0 && failed == 0 ?
	    PCD_EXIT_OK : PCD_EXIT_FAIL;
	catalog_free(next);
	event_base_loopexit(d->base, NULL);
}

/* A refresh has fetched all it could: publish it and report. */
static void
refresh_done(struct daemon *d, struct catalog *next)
{
	struct pub_stats	ps;
	size_t			ok, partial, failed;
	uint64_t		ms;
	size_t			deleted;
	int			prc;

	d->disc = NULL;
	if (d->opts->dry_run) {
		dry_run_done(d, next);
		return;
	}
	/*
	 * Skipping a value as unchanged trusts that memcached still holds
	 * it.  The daemon checks that (the monitor verifies after every
	 * publish); a one-shot run cannot, so it writes everything, as
	 * cache_programs does, and uses the file only for the shrink guard.
	 */
	prc = pub_write(d->store, &d->kf, next,
	    d->opts->once ? NULL : heal_prev(d), d->store_changed,
	    d->cfg->value_format == VALUE_PICKLE ? 1 : 0, &ps);
	if (prc == 0)
		d->store_changed = false;
	count_sites(next, &ok, &partial, &failed);
	/* Only a refresh that saw every site can tell what disappeared. */
	deleted = pub_stale_sweep(d->stale, d->store, &d->kf, next,
	    d->cfg->stale_after, prc == 0 && partial == 0 && failed == 0 &&
	    d->opts->domain == NULL);
	ms = mono_ms() - d->refresh_started;
	if (prc == 0 && partial == 0 && failed == 0) {
		log_event(LOG_INFO, "refresh_succeeded", "sites=%zu "
		    "programs=%zu pathways=%zu keys_written=%zu "
		    "keys_skipped=%zu keys_deleted=%zu bytes_written=%zu "
		    "details_unchanged=%llu duration_ms=%llu", next->nsites,
		    next->nprograms, next->npathways, ps.written, ps.skipped,
		    deleted, ps.bytes, (unsigned long long)
		    (metrics.details_unchanged - d->unchanged_before),
		    (unsigned long long)ms);
		d->exit_code = PCD_EXIT_OK;
	} else {
		log_event(LOG_ERR, "refresh_failed", "stage=refresh "
		    "outcome=%s sites=%zu sites_partial=%zu sites_failed=%zu "
		    "programs=%zu pathways=%zu keys_written=%zu "
		    "keys_skipped=%zu keys_failed=%zu duration_ms=%llu",
		    failed == next->nsites || ps.written + ps.skipped == 0 ?
		    "failed" : "partial",
		    next->nsites, partial, failed, next->nprograms,
		    next->npathways, ps.written, ps.skipped, ps.failed,
		    (unsigned long long)ms);
		d->exit_code = PCD_EXIT_FAIL;
	}
	d->outcome = d->exit_code == PCD_EXIT_OK ? OUTCOME_OK :
	    ps.written + ps.skipped == 0 ? OUTCOME_FAILED : OUTCOME_PARTIAL;
	record_metrics(next, d->outcome, ms);
	heal_published(d, next, &ps, partial == 0 && failed == 0);
	catalog_free(d->last);
	d->last = next;
	d->refreshed = true;
	/* Published: everything in place, and fresh data for some site. */
	if (prc == 0 && failed < next->nsites)
		mark_published(d);
	update_status(d);

	if (d->opts->once) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	if (d->pending_cfg != NULL) {
		apply_config(d, d->pending_cfg);
		d->pending_cfg = NULL;
	}
	if (d->queued) {
		d->queued = false;
		start_refresh(d);
		return;
	}
	schedule_refresh(d);
}

/* disc's callback. */
static void
on_refresh_done(struct catalog *next, void *arg)
{
	struct daemon	*d = arg;
	struct disc	*disc = d->disc;

	refresh_done(d, next);
	disc_free(disc);
}

static void
start_refresh(struct daemon *d)
{
	evtimer_del(d->refresh_timer);
	d->refresh_started = mono_ms();
	d->unchanged_before = metrics.details_unchanged;
	log_event(LOG_INFO, "refresh_started", "sites=%zu domain=%s",
	    d->cfg->nsites, d->opts->domain);
	d->disc = disc_start(d->base, d->http, d->oauth, d->cfg, heal_prev(d),
	    d->opts->domain, d->opts->force, on_refresh_done, d);
	update_status(d);
}

static void
on_refresh_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	start_refresh(arg);
}

/* SIGHUP: re-read the configuration, and refresh now (or right after). */
static void
reload(struct daemon *d)
{
	struct cfg	*cfg;

	notify_reloading();
	if ((cfg = cfg_load(d->opts->config_path)) == NULL) {
		log_event(LOG_ERR, "config_error", "file=%s error=%s",
		    d->opts->config_path, "reload failed: keeping the "
		    "configuration in use");
	} else {
		log_event(LOG_INFO, "config_loaded", "file=%s sites=%zu "
		    "servers=%zu", cfg->path, cfg->nsites, cfg->nservers);
		if (d->disc != NULL) {
			/* The running refresh still reads the old one. */
			cfg_free(d->pending_cfg);
			d->pending_cfg = cfg;
		} else
			apply_config(d, cfg);
	}
	/* Reloaded as systemd means it: the configuration is read. */
	notify_reloaded();
	if (d->disc != NULL)
		d->queued = true;
	else
		start_refresh(d);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon	*d = arg;

	(void)what;
	log_event(LOG_NOTICE, "signal", "signal=SIG%s refreshing=%s",
	    sigabbrev_np((int)sig), d->disc != NULL ? "true" : "false");
	switch (sig) {
	case SIGHUP:
		if (!d->opts->once)
			reload(d);
		break;
	case SIGUSR1:
		if (!d->opts->once)
			monitor_repair_all(d->mon, "signal");
		break;
	case SIGTERM:
	case SIGINT:
		notify_stopping();
		d->stopping = true;
		event_base_loopexit(d->base, NULL);
		break;
	}
}

/*
 * Operations: what systemd, /metrics and /readyz see (SPEC §6).
 */

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

/*
 * Ready: the last publish (or repair) is younger than 3 refresh intervals
 * and every memcached server answered when last used.  If not, why.
 */
static bool
readiness(const struct daemon *d, struct buf *why)
{
	uint64_t	limit = 3 * (uint64_t)d->cfg->refresh_interval_ms;
	uint64_t	age = mono_ms() - d->published_ms;
	char		a[32], l[32];
	size_t		i, down = 0;

	for (i = 0; i < store_nservers(d->store); i++) {
		if (store_server_up(d->store, i))
			continue;
		if (down++ == 0)
			buf_printf(why, "%s unreachable: ",
			    store_backend(d->store));
		else
			buf_adds(why, ", ");
		buf_printf(why, "%s (%s)", store_server_name(d->store, i),
		    store_server_error(d->store, i));
	}
	if (down > 0)
		return false;
	if (!d->published) {
		buf_adds(why, d->refreshed ? "nothing published yet: the "
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
ops_ready(struct buf *why, void *arg)
{
	return readiness(arg, why);
}

/* httpd hook: the series /metrics adds to metrics_render()'s. */
static void
ops_metrics(struct buf *b, void *arg)
{
	struct daemon	*d = arg;
	struct buf	 why;
	size_t		 i;

	metrics_head(b, "programs_cached_memcached_up", "gauge",
	    "Whether the server answered when last used (1) or not (0).");
	for (i = 0; i < store_nservers(d->store); i++)
		metrics_sample(b, "programs_cached_memcached_up", "server",
		    store_server_name(d->store, i),
		    store_server_up(d->store, i) ? 1 : 0);
	buf_init(&why);
	metrics_head(b, "programs_cached_ready", "gauge",
	    "Whether /readyz answers 200 (1) or 503 (0).");
	metrics_sample(b, "programs_cached_ready", NULL, NULL,
	    readiness(d, &why) ? 1 : 0);
	buf_free(&why);
}

/* Start, move or stop the HTTP listener as d->cfg says; -1 if it failed. */
static int
listen_apply(struct daemon *d)
{
	const struct cfg	*cfg = d->cfg;
	struct httpd_hooks	 hooks = { ops_metrics, ops_ready, d };
	struct httpd		*h;

	if (d->opts->once)
		return 0;
	if (cfg->listen == NULL) {
		httpd_free(d->httpd);
		d->httpd = NULL;
		free(d->listen);
		d->listen = NULL;
		return 0;
	}
	if (d->listen != NULL && strcmp(d->listen, cfg->listen) == 0)
		return 0;
	/* On failure (logged) the old listener, if any, stays. */
	h = httpd_new(d->base, cfg->listen_host, cfg->listen_port, &hooks);
	if (h == NULL)
		return -1;
	httpd_free(d->httpd);
	d->httpd = h;
	free(d->listen);
	d->listen = xstrdup(cfg->listen);
	return 0;
}

/*
 * Something is in the cache now: a publish (and, from the snapshot and
 * repair code, a snapshot loaded or a repair).  The first finishes
 * start-up for systemd (READY=1); each restarts /readyz's clock.
 */
static void
mark_published(struct daemon *d)
{
	d->published = true;
	d->published_ms = mono_ms();
	if (!d->opts->once)
		notify_ready();
}

/* The STATUS= line of `systemctl status`: outcome, programs, age. */
static void
update_status(struct daemon *d)
{
	static const char *const outcomes[OUTCOME_COUNT] = {
		"ok", "partial", "failed"
	};
	struct buf	 why;
	char		 age[32];
	double		 ms;

	if (d->opts->once || !notify_enabled())
		return;
	if (!d->refreshed) {
		notify_status("first refresh running");
		return;
	}
	/* Wall clock (last_success is a timestamp); it may have stepped. */
	ms = (double)wall_ms() - metrics.last_success * 1000;
	fmt_age(ms > 0 ? (uint64_t)ms : 0, age, sizeof age);
	buf_init(&why);
	buf_adds(&why, "");
	if (readiness(d, &why))
		buf_truncate(&why, 0);
	notify_status("%slast refresh %s, %zu programs; last success %s%s%s%s",
	    d->disc != NULL ? "refreshing; " : "", outcomes[d->outcome],
	    d->last != NULL ? d->last->nprograms : 0,
	    metrics.last_success > 0 ? age : "never",
	    metrics.last_success > 0 ? " ago" : "",
	    why.len > 0 ? "; not ready: " : "", (const char *)why.data);
	buf_free(&why);
}

/* Keep the age in STATUS= current between refreshes. */
static void
on_status_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	update_status(arg);
}

/* libevent's own warnings, as events like everything else. */
static void
on_libevent_log(int severity, const char *msg)
{
	int	prio;

	switch (severity) {
	case EVENT_LOG_DEBUG:
		prio = LOG_DEBUG;
		break;
	case EVENT_LOG_MSG:
		prio = LOG_INFO;
		break;
	case EVENT_LOG_WARN:
		prio = LOG_WARNING;
		break;
	default:
		prio = LOG_ERR;
		break;
	}
	log_event(prio, "libevent", "msg=%s", msg);
}

/* The daemon's operator interfaces; -1 if one cannot start (logged). */
static int
ops_start(struct daemon *d)
{
	struct timeval	tv = { STATUS_EVERY_S, 0 };

	if (d->opts->once)
		return 0;
	if (d->cfg->listen != NULL && d->httpd == NULL)
		return -1;
	d->watchdog = notify_watchdog_start(d->base);
	if (notify_enabled()) {
		d->status_timer = event_new(d->base, -1, EV_PERSIST,
		    on_status_timer, d);
		event_add(d->status_timer, &tv);
	}
	return 0;
}

static void
ops_stop(struct daemon *d)
{
	notify_watchdog_stop(d->watchdog);
	if (d->status_timer != NULL)
		event_free(d->status_timer);
	httpd_free(d->httpd);
	free(d->listen);
}

int
daemon_run(struct cfg *cfg, const struct daemon_opts *opts)
{
	struct daemon	d;

	memset(&d, 0, sizeof d);
	d.opts = opts;
	d.exit_code = PCD_EXIT_FAIL;
	event_set_log_callback(on_libevent_log);
	if ((d.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	d.mon = monitor_new(d.base);
	apply_config(&d, cfg);
	d.stale = pub_stale_new();
	d.refresh_timer = evtimer_new(d.base, on_refresh_timer, &d);
	d.sig_hup = evsignal_new(d.base, SIGHUP, on_signal, &d);
	d.sig_term = evsignal_new(d.base, SIGTERM, on_signal, &d);
	d.sig_int = evsignal_new(d.base, SIGINT, on_signal, &d);
	d.sig_usr1 = evsignal_new(d.base, SIGUSR1, on_signal, &d);
	event_add(d.sig_hup, NULL);
	event_add(d.sig_term, NULL);
	event_add(d.sig_int, NULL);
	event_add(d.sig_usr1, NULL);

	if (ops_start(&d) == 0) {
		heal_start(&d);
		start_refresh(&d);
		event_base_dispatch(d.base);
	}

	if (d.stopping) {
		/* A daemon asked to stop has done its job; --once has not. */
		if (!opts->once)
			d.exit_code = PCD_EXIT_OK;
		else if (d.disc != NULL)
			d.exit_code = PCD_EXIT_FAIL;
	}
	disc_free(d.disc);
	log_event(LOG_INFO, "shutdown", "exit_code=%d", d.exit_code);

	monitor_free(d.mon);
	snapshot_free(d.snap);		/* before what it references */
	snapshot_free(d.loaded);
	catalog_free(d.last);
	pub_stale_free(d.stale);
	oauth_free(d.oauth);
	http_free(d.http);
	store_free(d.store);
	key_clear(&d.kf);
	cfg_free(d.pending_cfg);
	cfg_free(d.cfg);
	event_free(d.refresh_timer);
	event_free(d.sig_hup);
	event_free(d.sig_term);
	event_free(d.sig_int);
	event_free(d.sig_usr1);
	ops_stop(&d);
	event_base_free(d.base);
	return d.exit_code;
}
