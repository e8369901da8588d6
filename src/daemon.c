/*
 * daemon.c: the loop that owns the refresh timer, the signals and the
 * generations.  Event callbacks only decode what happened and call the
 * function that does the work.  A refresh is fetched (fetch.c), then
 * published (state.c, on the writer thread), and only then over.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "catalog.h"
#include "change.h"
#include "daemon.h"
#include "fetch.h"
#include "http.h"
#include "keys.h"
#include "lease.h"
#include "log.h"
#include "metrics.h"
#include "monitor.h"
#include "rwatch.h"
#include "notify.h"
#include "ops.h"
#include "oauth.h"
#include "pool.h"
#include "settings.h"
#include "snapshot.h"
#include "state.h"
#include "store.h"
#include "util.h"
#include "wthread.h"

/* Grouped by what it is for, not packed: there is one of it. */
struct daemon {	/* NOLINT(clang-analyzer-optin.performance.Padding) */
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
	struct rwatch			*rwatch;	/* NULL: --once */
	struct lease			*lease;		/* NULL: always the writer */
	struct writer_gate		 gate;		/* lease_valid() */
	bool				 rewrite;	/* lease taken: write all */
	struct fetch			*fetch;		/* refresh running */
	bool				 publishing;	/* ... or publishing */
	struct fetch_result		*pub_fr;	/* what it publishes */
	uint64_t			 pub_started;
	struct pool			*pool;		/* parses, saves, writes */
	struct wthread			*writer;	/* every write */
	const char			*queued;	/* a full one's reason */
	bool				 stopping;
	int				 exit_code;
	int				 failures;	/* refreshes failed in a row */
	uint64_t			 refresh_started;
	struct event			*refresh_timer;
	struct event			*incr_timer;	/* incremental */
	bool				 incremental;	/* the running one */
	struct change			*change;	/* change key */
	bool				 change_wanted;	/* change.c asked */
	bool				 for_change;	/* the running one serves it */
	struct event			*sig_hup;
	struct event			*sig_term;
	struct event			*sig_int;

	struct event			*sig_usr1;
	struct ops			*ops;		/* systemd, /readyz */
};

/* The writer's gate: this daemon may write unless another holds the lease. */
static bool
may_write(void *arg)
{
	struct daemon	*d = arg;

	return d->lease == NULL || lease_valid(d->lease);
}

/* Standing by: another daemon is (or may be) the writer. */
static bool
standby(const struct daemon *d)
{
	return d->lease != NULL && !lease_valid(d->lease);
}

/* A refresh runs: fetching, or publishing what it fetched. */
static bool
refreshing(const struct daemon *d)
{
	return d->fetch != NULL || d->publishing;
}

static void	start_refresh(struct daemon *, const char *reason);
static void	start_incremental(struct daemon *, const char *reason);
static void	start_change(struct daemon *);
static void	schedule_incremental(struct daemon *);

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

/* The monitor follows what the state says the cache holds. */
static void
heal_follow(struct daemon *d)
{
	monitor_set_snapshot(d->mon, state_snapshot(d->state));
	if (d->rwatch != NULL)
		rwatch_set_snapshot(d->rwatch, state_snapshot(d->state));
}

/* The reader watch follows the configuration in use (rwatch.h). */
static void
watch_follow(struct daemon *d)
{
	if (d->rwatch == NULL)
		return;
	rwatch_configure(d->rwatch, d->cfg, d->store, &d->kf);
	rwatch_set_snapshot(d->rwatch, state_snapshot(d->state));
	/* The writer thread's connections write: they announce too. */
	wthread_set_announce(d->writer, d->cfg->backend != BACKEND_REDIS &&
	    d->cfg->reader_watch != READER_WATCH_OFF);
}

/* A repair put everything back: for /readyz, as good as a publish. */
static void
on_repaired(void *arg)
{
	struct daemon	*d = arg;

	ops_published(d->ops);
}

/*
 * Load the snapshot file: what the last publish wrote.  Every mode needs it
 * (the previous values the failure rules keep, the shrink guard's counts); the
 * daemon also starts the monitor, which can repair from the file before the
 * first fetch from Discovery.  A file that holds a real publish makes the
 * daemon ready (operations.md: Observe): the cache can be served from it.
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
		ops_published(d->ops);
	monitor_start(d->mon);
}

/*
 * Make cfg the configuration in use (taking it).  -1 if the listener it
 * names could not start (logged; the old one, if any, stays).
 */
static int
apply_config(struct daemon *d, struct cfg *cfg)
{
	struct http_opts	 ho;
	struct store		*old = NULL;
	bool			 changed = false;

	log_setup(cfg->log_format, cfg->log_level);
	http_opts_from(cfg, &ho);
	if (d->http == NULL)
		d->http = http_new(d->base, &ho);
	else
		http_set_opts(d->http, &ho);
	if (d->cfg == NULL || settings_differ(d->cfg, cfg, SETTING_NEW_TOKEN)) {
		/* A new client, secret or server needs a new token. */
		oauth_free(d->oauth);
		d->oauth = oauth_new(d->base, d->http, cfg);
	}
	if (d->store == NULL || d->cfg == NULL ||
	    settings_differ(d->cfg, cfg, SETTING_NEW_STORE)) {
		old = d->store;
		/* Nothing writes through the old servers from here on. */
		wthread_wait(d->writer);
		monitor_set_snapshot(d->mon, NULL);
		d->store = store_new(cfg);
		/* The writer thread's own: libmemcached is not thread-safe. */
		if (d->writer == NULL)
			d->writer = wthread_new(d->pool, store_new(cfg),
			    d->store);
		else
			wthread_set_store(d->writer, store_new(cfg), d->store);
		key_clear(&d->kf);
		key_init(&d->kf, cfg->key_function, cfg->long_key_hash,
		    cfg->key_prefix, cfg->key_version);
		/* Placement or encoding may differ: write everything again. */
		changed = true;
	}
	/*
	 * Before the old store goes: a lease that moves (another store, server
	 * or key) is released there first, and this daemon stands by until it
	 * holds the lease on the new one (operations.md: Several hosts).
	 */
	lease_configure(d->lease, d->store, &d->kf, cfg->lease_key);
	store_free(old);
	if (d->state == NULL)
		d->state = state_new(cfg, d->store, d->writer, &d->kf,
		    d->pool);
	else
		state_configure(d->state, cfg, d->store, &d->kf, changed);
	monitor_configure(d->mon, d->store, cfg->check_interval_ms,
	    cfg->verify_interval_ms);
	heal_follow(d);
	change_configure(d->change, cfg);	/* the old one still valid */
	if (d->cfg != cfg)
		cfg_free(d->cfg);
	d->cfg = cfg;
	watch_follow(d);
	return ops_configure(d->ops, d->cfg, d->store, &d->kf, d->lease);
}

/*
 * Arm the refresh timer.  After a success: the interval, +/- 10 % so hosts
 * drift apart.  After a failure (design.md: Failures): failed_refresh_retry,
 * doubling with each failure in a row up to the interval, times 1 to 1.2.
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
record_metrics(const struct fetch_result *fr, const struct state_result *r,
    enum metrics_outcome o, uint64_t ms)
{
	int	kind = fr->incremental ? 1 : 0;
	size_t	i;

	metrics.refreshes[o]++;
	metrics.refreshes_by_kind[kind]++;
	metrics.details_fetched[kind] += fr->details_fetched;
	metrics.details_unchanged += fr->details_unchanged;
	metrics.programs_rejected += fr->programs_rejected;
	metrics.publishes_held += r->sites.sites_held;
	metrics.last_refresh_seconds = (double)ms / 1000;
	metrics.refresh_seconds_sum += (double)ms / 1000;
	if (o == OUTCOME_OK)
		metrics.last_success = (double)wall_ms() / 1000;
	if (r->ws.written > 0 || r->deleted > 0)
		metrics.last_change = (double)wall_ms() / 1000;
	metrics.programs = r->programs;
	metrics.pathways = r->pathways;
	memcpy(metrics.keys, r->keys, sizeof metrics.keys);
	metrics.keys_skipped += r->ws.skipped;
	for (i = 0; i < fr->nfailures; i++)
		metrics_failure(fr->failures[i].site, fr->failures[i].stage);
	if (r->server_failed)
		metrics_failure(NULL, "publish");
}

/* --dry-run: print what would change, write nothing, stop. */
static void
dry_run_done(struct daemon *d, struct fetch_result *fr)
{
	struct state_dry_opts	o;
	int			rc;

	memset(&o, 0, sizeof o);
	o.force = d->opts->force || d->cfg->force_publish;
	o.every_site = d->opts->domain == NULL;
	o.diff = d->opts->diff;
	rc = state_dry_run(d->state, fr, &o, stdout);
	fflush(stdout);
	d->exit_code = rc == 0 ? PCD_EXIT_OK : PCD_EXIT_FAIL;
	fetch_result_free(fr);
	event_base_loopexit(d->base, NULL);
}

/* How a refresh went, for metrics and STATUS=. */
static enum metrics_outcome
outcome_of(const struct state_result *r)
{
	if (r->complete)
		return OUTCOME_OK;
	/* Unconfigured sites' [] lists are not a success of anything. */
	if (!r->published || r->sites.sites_ok + r->sites.sites_partial == 0)
		return OUTCOME_FAILED;
	return OUTCOME_PARTIAL;
}

/* Log how a refresh went: one summary event. */
static void
log_result(const struct fetch_result *fr, const struct state_result *r,
    uint64_t ms, uint64_t pub)
{
	const char	*kind = fr->incremental ? "incremental" : "full";

	if (r->complete) {
		log_event(LOG_INFO, "refresh_succeeded", "kind=%s sites=%zu "
		    "programs=%zu pathways=%zu details_fetched=%zu "
		    "keys_written=%zu "
		    "keys_skipped=%zu keys_deleted=%zu bytes_written=%zu "
		    "details_unchanged=%zu duration_ms=%llu publish_ms=%llu",
		    kind, r->sites.sites, r->programs, r->pathways,
		    fr->details_fetched, r->ws.written, r->ws.skipped,
		    r->deleted, r->ws.bytes, fr->details_unchanged,
		    (unsigned long long)ms, (unsigned long long)pub);
		return;
	}
	/* The summary; each failure had its own refresh_failed. */
	log_event(LOG_ERR, "refresh_incomplete", "kind=%s outcome=%s "
	    "sites=%zu sites_partial=%zu sites_failed=%zu "
	    "sites_held=%zu programs=%zu pathways=%zu "
	    "details_fetched=%zu keys_written=%zu "
	    "keys_skipped=%zu keys_failed=%zu duration_ms=%llu", kind,
	    outcome_of(r) == OUTCOME_FAILED ? "failed" : "partial",
	    r->sites.sites, r->sites.sites_partial, r->sites.sites_failed,
	    r->sites.sites_held, r->programs, r->pathways,
	    fr->details_fetched, r->ws.written, r->ws.skipped,
	    r->ws.failed, (unsigned long long)ms);
}

/* What comes after a refresh: a queued one, or the timers. */
static void
after_refresh(struct daemon *d)
{
	if (d->opts->once) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	if (d->pending_cfg != NULL) {
		(void)apply_config(d, d->pending_cfg);
		d->pending_cfg = NULL;
	}
	if (d->queued != NULL) {
		const char	*reason = d->queued;

		d->queued = NULL;
		start_refresh(d, reason);
		return;
	}
	if (standby(d))
		return;		/* the holder refreshes */
	/*
	 * The full refreshes keep their own schedule (design.md: Incremental
	 * refresh).
	 */
	if (!d->incremental || !evtimer_pending(d->refresh_timer, NULL))
		schedule_refresh(d);
	schedule_incremental(d);
	if (d->change_wanted)
		start_change(d);
}

/* The state asks whether a server holds what it recorded: the monitor. */
static bool
server_confirmed(void *arg, size_t i)
{
	return monitor_confirmed(arg, i);
}

/* The publish is over: report the refresh, and what comes next. */
static void
on_published(const struct state_result *rp, void *arg)
{
	struct daemon		*d = arg;
	struct fetch_result	*fr = d->pub_fr;
	struct state_result	 r = *rp;
	enum metrics_outcome	 outcome;
	uint64_t		 ms, pub;

	pub = mono_ms() - d->pub_started;
	d->publishing = false;
	d->pub_fr = NULL;
	if (r.published)
		d->rewrite = false;
	heal_follow(d);
	ms = mono_ms() - d->refresh_started;
	log_result(fr, &r, ms, pub);
	d->exit_code = r.complete ? PCD_EXIT_OK : PCD_EXIT_FAIL;
	/* An incremental one says nothing of the full schedule. */
	if (!d->incremental)
		d->failures = r.complete ? 0 : d->failures + 1;
	outcome = outcome_of(&r);
	record_metrics(fr, &r, outcome, ms);
	ops_refreshed(d->ops, outcome, r.programs);
	record_sites(state_generation(d->state), d->opts->domain);
	if (r.published)
		ops_published(d->ops);
	/* An incremental refresh that wrote nothing has nothing to check. */
	if (!d->incremental || r.ws.written > 0 || r.deleted > 0)
		monitor_verify_soon(d->mon);
	ops_status(d->ops);
	change_refresh_done(d->change, d->for_change, !d->incremental,
	    fr->details_fetched > 0 || r.ws.written > 0 || r.deleted > 0);
	log_context(NULL, NULL);	/* the refresh's events end here */
	fetch_result_free(fr);
	after_refresh(d);
}

/* A refresh has fetched all it could: publish it (on_published reports). */
static void
refresh_done(struct daemon *d, struct fetch_result *fr)
{
	struct state_publish_opts	 po;

	if (d->opts->dry_run) {
		dry_run_done(d, fr);
		return;
	}
	if (standby(d)) {
		/* Lost the lease while fetching: the holder publishes. */
		log_event(LOG_WARNING, "refresh_dropped", "error=%s", "the "
		    "lease was lost during the refresh: nothing written");
		log_context(NULL, NULL);
		fetch_result_free(fr);
		return;
	}
	memset(&po, 0, sizeof po);
	po.force = d->opts->force || d->cfg->force_publish;
	/*
	 * Skipping a value as unchanged trusts that the cache still holds
	 * it.  The daemon asks the monitor, server by server (a round trip
	 * now, and a verify pass or repair since the server last
	 * restarted); a one-shot run cannot, so it writes everything, as
	 * cache_programs does.
	 */
	po.skip_same = !d->opts->once && !d->rewrite;
	po.confirmed = server_confirmed;
	po.confirmed_arg = d->mon;
	po.gate = &d->gate;
	/* Only full refreshes count for stale keys: the same delay either way. */
	po.every_site = d->opts->domain == NULL && !d->incremental;
	d->publishing = true;
	d->pub_fr = fr;
	d->pub_started = mono_ms();
	state_publish(d->state, fr, &po, on_published, d);
}

/*
 * The lease was taken: start with a full refresh, and the monitor works
 * again.  Lost: whatever runs stops, nothing more is written.
 */
static void
on_lease(bool held, void *arg)
{
	struct daemon	*d = arg;
	struct fetch	*f = d->fetch;

	if (held) {
		/* Another writer may have changed anything since our record. */
		d->rewrite = true;
		monitor_set_idle(d->mon, false);
		change_watch(d->change, true);
		if (!refreshing(d))
			start_refresh(d, "lease");
		else
			d->queued = "lease";
	} else {
		monitor_set_idle(d->mon, true);
		change_watch(d->change, false);
		evtimer_del(d->refresh_timer);
		evtimer_del(d->incr_timer);
		d->queued = NULL;
		d->change_wanted = false;
		if (f != NULL) {
			d->fetch = NULL;
			fetch_free(f);
			log_context(NULL, NULL);
		}
	}
	ops_status(d->ops);
}

/* The fetch's callback: the refresh is over. */
static void
on_refresh_done(struct fetch_result *fr, void *arg)
{
	struct daemon	*d = arg;
	struct fetch	*f = d->fetch;

	d->fetch = NULL;
	refresh_done(d, fr);
	fetch_free(f);
}

/* Start a refresh of either kind. */
static void
begin_fetch(struct daemon *d, bool incremental)
{
	struct fetch_opts	o;

	memset(&o, 0, sizeof o);
	o.base = d->base;
	o.http = d->http;
	o.oauth = d->oauth;
	o.pool = d->pool;
	o.cfg = d->cfg;
	o.prev = state_generation(d->state);
	o.only_domain = incremental ? NULL : d->opts->domain;
	o.incremental = incremental;
	d->incremental = incremental;
	/* Begun after the bumps change.c saw: it serves them. */
	d->for_change = d->change_wanted;
	d->change_wanted = false;
	d->refresh_started = mono_ms();
	d->fetch = fetch_start(&o, on_refresh_done, d);
	ops_refreshing(d->ops, true);
}

/* Every event of a refresh carries its id, to grep one refresh out. */
static void
refresh_id_new(void)
{
	char	id[16];

	snprintf(id, sizeof id, "%08lx", (unsigned long)(rand_unit() *
	    4294967295.0));
	log_context("refresh_id", id);
}

static void
start_refresh(struct daemon *d, const char *reason)
{
	evtimer_del(d->refresh_timer);
	if (standby(d))
		return;		/* the holder refreshes; we take over later */
	evtimer_del(d->incr_timer);
	refresh_id_new();
	log_event(LOG_INFO, "refresh_started", "kind=full reason=%s "
	    "sites=%zu domain=%s", reason, d->cfg->nsites, d->opts->domain);
	begin_fetch(d, false);
}

/*
 * An incremental refresh (design.md: Incremental refresh): what changed since
 * the last one.  The full refresh timer keeps running.
 */
static void
start_incremental(struct daemon *d, const char *reason)
{
	evtimer_del(d->incr_timer);
	if (standby(d))
		return;
	refresh_id_new();
	log_event(LOG_INFO, "refresh_started", "kind=incremental reason=%s "
	    "sites=%zu", reason, d->cfg->nsites);
	begin_fetch(d, true);
}

/* Whether the next refresh may be an incremental one. */
static bool
incremental_ready(const struct daemon *d)
{
	return !d->opts->once && d->opts->domain == NULL &&
	    !d->opts->dry_run && d->cfg->incremental_interval_ms > 0 &&
	    fetch_incremental_ready(d->cfg, state_generation(d->state));
}

/* Arm the incremental timer: incremental_interval after this refresh. */
static void
schedule_incremental(struct daemon *d)
{
	long		ms = d->cfg->incremental_interval_ms;
	struct timeval	tv;

	if (d->opts->once || ms == 0)
		return;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(d->incr_timer, &tv);
}

static void
on_refresh_timer(evutil_socket_t fd, short what, void *arg)
{
	struct daemon	*d = arg;

	(void)fd;
	(void)what;
	if (refreshing(d)) {
		d->queued = "schedule";	/* after the incremental one */
		return;
	}
	start_refresh(d, "schedule");
}

static void
on_incr_timer(evutil_socket_t fd, short what, void *arg)
{
	struct daemon	*d = arg;

	(void)fd;
	(void)what;
	if (refreshing(d))
		return;		/* armed again when it ends */
	if (incremental_ready(d))
		start_incremental(d, "schedule");
	else
		schedule_incremental(d);
}

/*
 * The refresh a change asked for (operations.md: the change key): an
 * incremental one where it can be, else a full one.
 */
static void
start_change(struct daemon *d)
{
	d->change_wanted = true;
	if (incremental_ready(d))
		start_incremental(d, "change");
	else
		start_refresh(d, "change");
}

/* change.c: a refresh now, or right after the one running. */
static void
on_change_refresh(enum change_refresh kind, void *arg)
{
	struct daemon	*d = arg;

	if (kind == CHANGE_FULL) {
		if (!refreshing(d))
			start_refresh(d, "change_full");
		else if (d->queued == NULL)
			d->queued = "change_full";
		return;
	}
	if (!refreshing(d))
		start_change(d);
	else
		d->change_wanted = true;	/* after_refresh starts it */
}

/* What /metrics says of the last load of the configuration. */
static void
config_loaded(bool ok)
{
	metrics.config_reload_success = ok;
	metrics.config_reload_time = wall_ms() / 1000;
}

/*
 * Keys read at start-up only (workers, the lease's enabled and ttl,
 * state_dir): a reload that changes one says so and keeps the running
 * value, so that the configuration in use is the one the daemon runs by.
 */
static void
keep_startup_keys(const struct cfg *running, struct cfg *cfg)
{
	const struct setting	*st;
	size_t			 i = 0;

	while ((st = settings_next_differ(running, cfg, SETTING_RESTART,
	    &i)) != NULL)
		log_event(LOG_WARNING, "config_not_applied", "file=%s "
		    "section=%s key=%s error=%s", cfg->path, st->section,
		    st->name, "read at start-up only: the daemon keeps the "
		    "value it started with until it is restarted");
	settings_keep(cfg, running, SETTING_RESTART);
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
	config_loaded(cfg != NULL);
	if (cfg == NULL) {
		log_event(LOG_ERR, "config_error", "file=%s error=%s",
		    d->opts->config_path, "reload failed: keeping the "
		    "configuration in use");
	} else {
		log_event(LOG_INFO, "config_loaded", "file=%s sites=%zu "
		    "servers=%zu", cfg->path, cfg->nsites, cfg->nservers);
		keep_startup_keys(d->cfg, cfg);
		if (refreshing(d)) {
			/* The running refresh still reads the old one. */
			cfg_free(d->pending_cfg);
			d->pending_cfg = cfg;
		} else
			(void)apply_config(d, cfg);
	}
	ops_reloaded(d->ops, metrics.config_reload_success ? NULL : why);
	/* Reloaded as systemd means it: the configuration is read. */
	notify_reloaded();
	if (refreshing(d))
		d->queued = "signal";
	else
		start_refresh(d, "signal");
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon	*d = arg;

	(void)what;
	log_event(LOG_NOTICE, "signal", "signal=SIG%s refreshing=%s",
	    sigabbrev_np((int)sig), refreshing(d) ? "true" : "false");
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
		/* A write in progress ends at its next batch. */
		wthread_stop(d->writer);
		event_base_loopexit(d->base, NULL);
		break;
	}
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

int
daemon_run(struct cfg *cfg, const struct daemon_opts *opts)
{
	struct daemon	d;
	int		listening;

	memset(&d, 0, sizeof d);
	d.opts = opts;
	d.exit_code = PCD_EXIT_FAIL;
	/* The configuration main() loaded is the first one that worked. */
	config_loaded(true);
	event_set_log_callback(on_libevent_log);
	if ((d.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	d.mon = monitor_new(d.base);
	if (!opts->once && !opts->dry_run)
		d.rwatch = rwatch_new(d.base, d.mon);
	if (!opts->once && !opts->dry_run)
		d.change = change_new(d.base, &(struct change_cbs){
		    on_change_refresh }, &d);
	d.ops = ops_new(d.base, opts->once);
	/* The threads for parsing and saving ([daemon] workers: restart). */
	d.pool = pool_new(d.base, pool_size(cfg->workers));
	listening = apply_config(&d, cfg);
	d.gate.may_write = may_write;
	d.gate.arg = &d;
	monitor_set_gate(d.mon, &d.gate);
	monitor_set_writer(d.mon, d.writer);
	if (!opts->once && (d.lease = lease_new(d.base, d.cfg, d.store, &d.kf,
	    on_lease, &d)) != NULL) {
		monitor_set_idle(d.mon, true);
		(void)ops_configure(d.ops, d.cfg, d.store, &d.kf, d.lease);
	}
	d.refresh_timer = evtimer_new(d.base, on_refresh_timer, &d);
	d.incr_timer = evtimer_new(d.base, on_incr_timer, &d);
	d.sig_hup = evsignal_new(d.base, SIGHUP, on_signal, &d);
	d.sig_term = evsignal_new(d.base, SIGTERM, on_signal, &d);
	d.sig_int = evsignal_new(d.base, SIGINT, on_signal, &d);
	d.sig_usr1 = evsignal_new(d.base, SIGUSR1, on_signal, &d);
	event_add(d.sig_hup, NULL);
	event_add(d.sig_term, NULL);
	event_add(d.sig_int, NULL);
	event_add(d.sig_usr1, NULL);

	/* A listener that cannot start stops the daemon (listen_failed). */
	if (listening == 0) {
		ops_start(d.ops);
		heal_start(&d);
		/*
		 * After a restart, a snapshot whose sites an incremental
		 * refresh can continue from needs no full one first
		 * (design.md: Incremental refresh); the full ones come on
		 * refresh_interval.  With a lease, the one that takes it
		 * starts with a full one.
		 */
		if (d.lease == NULL)
			change_watch(d.change, true);	/* always the writer */
		if (d.lease != NULL)
			lease_start(d.lease);	/* taken: on_lease refreshes */
		else if (incremental_ready(&d)) {
			schedule_refresh(&d);
			start_incremental(&d, "start");
		} else
			start_refresh(&d, "start");
		event_base_dispatch(d.base);
	}

	/*
	 * The writer finishes or drops the batch it has in flight and stops:
	 * a publish cut short is abandoned (nothing of it recorded or saved),
	 * a repair logs what it put back.
	 */
	wthread_stop(d.writer);
	wthread_wait(d.writer);
	if (d.stopping) {
		/* A daemon asked to stop has done its job; --once has not. */
		if (!opts->once)
			d.exit_code = PCD_EXIT_OK;
		else if (refreshing(&d))
			d.exit_code = PCD_EXIT_FAIL;
	}
	fetch_free(d.fetch);
	fetch_result_free(d.pub_fr);
	change_free(d.change);
	lease_free(d.lease);		/* released: the next takes over now */
	rwatch_free(d.rwatch);		/* before the store it tells */
	monitor_free(d.mon);
	state_free(d.state);		/* after the last save */
	wthread_free(d.writer);
	pool_free(d.pool);
	log_event(LOG_INFO, "shutdown", "status=%d", d.exit_code);
	log_context(NULL, NULL);

	oauth_free(d.oauth);
	http_free(d.http);
	store_free(d.store);
	key_clear(&d.kf);
	cfg_free(d.pending_cfg);
	cfg_free(d.cfg);
	event_free(d.refresh_timer);
	event_free(d.incr_timer);
	event_free(d.sig_hup);
	event_free(d.sig_term);
	event_free(d.sig_int);
	event_free(d.sig_usr1);
	ops_free(d.ops);
	event_base_free(d.base);
	return d.exit_code;
}
