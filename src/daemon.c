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
#include "dryrun.h"
#include "oauth.h"
#include "pool.h"
#include "snapshot.h"
#include "state.h"
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
	struct state			*state;		/* what the cache holds */
	struct monitor			*mon;
	struct disc			*disc;		/* refresh running */
	struct pool			*pool;		/* parses details */
	bool				 queued;	/* SIGHUP during a refresh */
	bool				 stopping;
	int				 exit_code;
	int				 failures;	/* refreshes failed in a row */
	size_t				 programs;	/* of the last publish */
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

/* Whether two configurations talk to memcached the same way. */
static bool
same_store(const struct cfg *a, const struct cfg *b)
{
	size_t	i;

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

/* The monitor follows what the state says the cache holds. */
static void
heal_follow(struct daemon *d)
{
	monitor_set_snapshot(d->mon, state_snapshot(d->state));
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
 * Load the snapshot file: what the last publish wrote.  Every mode needs
 * it (the previous values of SPEC §7, the shrink guard's counts); the
 * daemon also starts the monitor, which can repair from the file before
 * the first fetch from Discovery.  A file that holds a real publish makes
 * the daemon ready (SPEC §6): the cache can be served from it.
 */
static void
heal_start(struct daemon *d)
{
	bool	loaded = state_load(d->state);

	if (d->opts->once)
		return;
	monitor_on_repair(d->mon, on_repaired, d);
	heal_follow(d);
	if (loaded)
		mark_published(d);
	monitor_start(d->mon);
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
		monitor_set_snapshot(d->mon, NULL);
		store_free(d->store);
		d->store = store_new(cfg);
		key_clear(&d->kf);
		key_init(&d->kf, cfg->key_function, cfg->long_key_hash,
		    cfg->key_prefix, cfg->key_version);
		/* Placement or encoding may differ: write everything again. */
		changed = true;
	}
	if (d->state == NULL)
		d->state = state_new(cfg, d->store, &d->kf);
	else
		state_configure(d->state, cfg, d->store, &d->kf, changed);
	monitor_configure(d->mon, d->store, cfg->check_interval_ms,
	    cfg->verify_interval_ms);
	heal_follow(d);
	if (d->cfg != cfg)
		cfg_free(d->cfg);
	d->cfg = cfg;
	listen_apply(d);
}

/*
 * Arm the refresh timer.  After a success: the interval, +/- 10 % so hosts
 * drift apart.  After a failure (SPEC §7): failed_refresh_retry, doubling
 * with each failure in a row up to the interval, times 1 to 1.2.
 */
static void
schedule_refresh(struct daemon *d)
{
	double		ms = (double)d->cfg->refresh_interval_ms, retry;
	long		delay;
	int		i;
	struct timeval	tv;

	if (d->failures == 0)
		delay = (long)(ms * (0.9 + 0.2 * rand_unit()));
	else {
		retry = (double)d->cfg->failed_refresh_retry_ms;
		for (i = 1; i < d->failures && retry < ms; i++)
			retry *= 2;
		if (retry > ms)
			retry = ms;
		delay = (long)(retry * (1 + 0.2 * rand_unit()));
	}
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_add(d->refresh_timer, &tv);
	log_event(LOG_INFO, "refresh_scheduled", "delay_ms=%ld after=%s "
	    "failures=%d", delay, d->failures == 0 ? "success" : "failure",
	    d->failures);
}

/* What /metrics shows of each site, as the last publish left it. */
static void
record_sites(const struct catalog *gen, const char *only)
{
	const struct catalog_site	*cs;
	size_t				 i;

	for (i = 0; gen != NULL && i < gen->nsites; i++) {
		cs = gen->sites[i];
		if (cs->status == SITE_UNCONFIGURED ||
		    (only != NULL && strcmp(only, cs->domain) != 0))
			continue;
		metrics_site(cs->domain, cs->nprograms, cs->status == SITE_OK);
	}
}

/* What /metrics shows of a finished refresh. */
static void
record_metrics(const struct state_result *r, enum metrics_outcome o,
    uint64_t ms)
{
	metrics.refreshes[o]++;
	metrics.last_refresh_seconds = (double)ms / 1000;
	metrics.refresh_seconds_sum += (double)ms / 1000;
	if (o == OUTCOME_OK)
		metrics.last_success = (double)wall_ms() / 1000;
	metrics.programs = r->programs;
	metrics.pathways = r->pathways;
	memcpy(metrics.keys, r->keys, sizeof metrics.keys);
	metrics.keys_skipped += r->ws.skipped;
}

/* --dry-run: print what would change, write nothing, stop. */
static void
dry_run_done(struct daemon *d, struct catalog *next)
{
	struct catalog_opts	 co;
	struct plan		*pl;
	size_t			 i;
	int			 rc;
	bool			 ok = true;

	catalog_opts_from(d->cfg, &co);
	pl = plan_build(next, &co, &d->kf, d->store,
	    d->cfg->value_format == VALUE_PICKLE ? 1 : 0);
	rc = dryrun_print(d->store, pl, stdout);
	fflush(stdout);
	for (i = 0; i < next->nsites; i++)
		if (next->sites[i]->status != SITE_OK &&
		    next->sites[i]->status != SITE_UNCONFIGURED)
			ok = false;
	d->exit_code = rc == 0 && ok && pl->errors == 0 ? PCD_EXIT_OK :
	    PCD_EXIT_FAIL;
	plan_free(pl);
	catalog_unref(next);
	event_base_loopexit(d->base, NULL);
}

/* How a refresh went, for metrics and STATUS=. */
static enum metrics_outcome
outcome_of(const struct state_result *r)
{
	if (r->complete)
		return OUTCOME_OK;
	/* Unconfigured sites' [] lists are not a success of anything. */
	if (!r->published || r->sites_ok + r->sites_partial == 0)
		return OUTCOME_FAILED;
	return OUTCOME_PARTIAL;
}

/* A refresh has fetched all it could: publish it and report. */
static void
refresh_done(struct daemon *d, struct catalog *next)
{
	struct state_publish_opts	 po;
	struct state_result		 r;
	uint64_t			 ms, pub;

	d->disc = NULL;
	if (d->opts->dry_run) {
		dry_run_done(d, next);
		return;
	}
	memset(&po, 0, sizeof po);
	po.force = d->opts->force || d->cfg->force_publish;
	/*
	 * Skipping a value as unchanged trusts that the cache still holds
	 * it.  The daemon checks that (the monitor verifies after every
	 * publish); a one-shot run cannot, so it writes everything, as
	 * cache_programs does.
	 */
	po.skip_same = !d->opts->once;
	po.every_site = d->opts->domain == NULL;
	pub = mono_ms();
	(void)state_publish(d->state, next, &po, &r);
	pub = mono_ms() - pub;
	heal_follow(d);
	ms = mono_ms() - d->refresh_started;
	if (r.complete) {
		log_event(LOG_INFO, "refresh_succeeded", "sites=%zu "
		    "programs=%zu pathways=%zu keys_written=%zu "
		    "keys_skipped=%zu keys_deleted=%zu bytes_written=%zu "
		    "details_unchanged=%llu duration_ms=%llu publish_ms=%llu",
		    r.sites, r.programs, r.pathways, r.ws.written,
		    r.ws.skipped, r.deleted, r.ws.bytes, (unsigned long long)
		    (metrics.details_unchanged - d->unchanged_before),
		    (unsigned long long)ms, (unsigned long long)pub);
		d->exit_code = PCD_EXIT_OK;
		d->failures = 0;
	} else {
		log_event(LOG_ERR, "refresh_failed", "stage=refresh "
		    "outcome=%s sites=%zu sites_partial=%zu sites_failed=%zu "
		    "sites_held=%zu programs=%zu pathways=%zu keys_written=%zu "
		    "keys_skipped=%zu keys_failed=%zu duration_ms=%llu",
		    outcome_of(&r) == OUTCOME_FAILED ? "failed" : "partial",
		    r.sites, r.sites_partial, r.sites_failed, r.sites_held,
		    r.programs, r.pathways, r.ws.written, r.ws.skipped,
		    r.ws.failed, (unsigned long long)ms);
		d->exit_code = PCD_EXIT_FAIL;
		d->failures++;
	}
	d->outcome = outcome_of(&r);
	record_metrics(&r, d->outcome, ms);
	record_sites(state_generation(d->state), d->opts->domain);
	d->refreshed = true;
	if (r.published) {
		d->programs = r.programs;
		mark_published(d);
	}
	monitor_verify_soon(d->mon);
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
	d->disc = disc_start(d->base, d->http, d->oauth, d->cfg,
	    state_generation(d->state), d->opts->domain, on_refresh_done, d);
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
	char		 why[512];

	notify_reloading();
	cfg = cfg_load_with(d->opts->config_path, CFG_SECRETS_READ, why,
	    sizeof why);
	metrics.config_reload_success = cfg != NULL;
	metrics.config_reload_time = wall_ms() / 1000;
	if (cfg == NULL) {
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
	/* After start_refresh's own STATUS=, so that this one shows. */
	if (!metrics.config_reload_success && !d->opts->once)
		notify_status("reload failed: %s; running with the previous "
		    "configuration", why);
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
		buf_printf(why, "%s%s", down++ == 0 ?
		    "memcached unreachable: " : ", ",
		    store_server_name(d->store, i));
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
	notify_status("%slast refresh %s, %zu programs; last success %s%s%s%s"
	    "%s", d->disc != NULL ? "refreshing; " : "", outcomes[d->outcome],
	    d->programs,
	    metrics.last_success > 0 ? age : "never",
	    metrics.last_success > 0 ? " ago" : "",
	    why.len > 0 ? "; not ready: " : "", (const char *)why.data,
	    metrics.config_reload_success ? "" : "; the last reload failed: "
	    "running with the previous configuration");
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
	d.pool = pool_new(d.base, pool_size(d.cfg->workers));
	disc_use_pool(d.pool);
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
	disc_use_pool(NULL);
	pool_free(d.pool);
	log_event(LOG_INFO, "shutdown", "exit_code=%d", d.exit_code);

	monitor_free(d.mon);
	state_free(d.state);
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
