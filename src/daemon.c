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
#include "keys.h"
#include "lease.h"
#include "log.h"
#include "metrics.h"
#include "monitor.h"
#include "notify.h"
#include "ops.h"
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
	struct lease			*lease;		/* NULL: always the writer */
	struct writer_gate		 gate;		/* lease_valid() */
	bool				 rewrite;	/* lease taken: write all */
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
	struct event			*incr_timer;	/* SPEC §10 */
	bool				 incremental;	/* the running one */
	uint64_t			 fetched_before;	/* metric */
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

static void	start_refresh(struct daemon *);
static void	start_incremental(struct daemon *);
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

	ops_published(d->ops);
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
	lease_configure(d->lease, d->store, &d->kf, d->cfg->lease_key);
	return ops_configure(d->ops, d->cfg, d->store, &d->kf, d->lease);
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
	enum metrics_outcome		 outcome;
	uint64_t			 ms, fetched, pub;
	const char			*kind;

	d->disc = NULL;
	kind = d->incremental ? "incremental" : "full";
	if (d->opts->dry_run) {
		dry_run_done(d, next);
		return;
	}
	if (standby(d)) {
		/* Lost the lease while fetching: the holder publishes. */
		log_event(LOG_WARNING, "refresh_dropped", "error=%s", "the "
		    "lease was lost during the refresh: nothing written");
		log_context(NULL, NULL);
		catalog_unref(next);
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
	po.skip_same = !d->opts->once && !d->rewrite;
	po.gate = &d->gate;
	/* Only full refreshes count for stale keys: the same delay either way. */
	po.every_site = d->opts->domain == NULL && !d->incremental;
	pub = mono_ms();
	(void)state_publish(d->state, next, &po, &r);
	pub = mono_ms() - pub;
	if (r.published)
		d->rewrite = false;
	heal_follow(d);
	ms = mono_ms() - d->refresh_started;
	fetched = metrics.details_fetched[d->incremental] - d->fetched_before;
	metrics.refreshes_by_kind[d->incremental]++;
	if (r.ws.written > 0 || r.deleted > 0)
		metrics.last_change = (double)wall_ms() / 1000;
	if (r.complete) {
		log_event(LOG_INFO, "refresh_succeeded", "kind=%s sites=%zu "
		    "programs=%zu pathways=%zu details_fetched=%llu "
		    "keys_written=%zu "
		    "keys_skipped=%zu keys_deleted=%zu bytes_written=%zu "
		    "details_unchanged=%llu duration_ms=%llu publish_ms=%llu",
		    kind, r.sites, r.programs, r.pathways,
		    (unsigned long long)fetched, r.ws.written, r.ws.skipped,
		    r.deleted, r.ws.bytes, (unsigned long long)
		    (metrics.details_unchanged - d->unchanged_before),
		    (unsigned long long)ms, (unsigned long long)pub);
		d->exit_code = PCD_EXIT_OK;
		/* An incremental one says nothing of the full schedule. */
		if (!d->incremental)
			d->failures = 0;
	} else {
		/* The summary; each failure had its own refresh_failed. */
		log_event(LOG_ERR, "refresh_incomplete", "kind=%s outcome=%s "
		    "sites=%zu sites_partial=%zu sites_failed=%zu "
		    "sites_held=%zu programs=%zu pathways=%zu "
		    "details_fetched=%llu keys_written=%zu "
		    "keys_skipped=%zu keys_failed=%zu duration_ms=%llu", kind,
		    outcome_of(&r) == OUTCOME_FAILED ? "failed" : "partial",
		    r.sites, r.sites_partial, r.sites_failed, r.sites_held,
		    r.programs, r.pathways, (unsigned long long)fetched,
		    r.ws.written, r.ws.skipped,
		    r.ws.failed, (unsigned long long)ms);
		d->exit_code = PCD_EXIT_FAIL;
		if (!d->incremental)
			d->failures++;
	}
	outcome = outcome_of(&r);
	record_metrics(&r, outcome, ms);
	ops_refreshed(d->ops, outcome, r.programs);
	record_sites(state_generation(d->state), d->opts->domain);
	if (r.published)
		ops_published(d->ops);
	/* An incremental refresh that wrote nothing has nothing to check. */
	if (!d->incremental || r.ws.written > 0 || r.deleted > 0)
		monitor_verify_soon(d->mon);
	ops_status(d->ops);
	log_context(NULL, NULL);	/* the refresh's events end here */

	if (d->opts->once) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	if (d->pending_cfg != NULL) {
		(void)apply_config(d, d->pending_cfg);
		d->pending_cfg = NULL;
	}
	if (d->queued) {
		d->queued = false;
		start_refresh(d);
		return;
	}
	if (standby(d))
		return;		/* the holder refreshes */
	/* The full refreshes keep their own schedule (SPEC §10). */
	if (!d->incremental || !evtimer_pending(d->refresh_timer, NULL))
		schedule_refresh(d);
	schedule_incremental(d);
}

/*
 * The lease was taken: start with a full refresh, and the monitor works
 * again.  Lost: whatever runs stops, nothing more is written.
 */
static void
on_lease(bool held, void *arg)
{
	struct daemon	*d = arg;
	struct disc	*disc = d->disc;

	if (held) {
		/* Another writer may have changed anything since our record. */
		d->rewrite = true;
		monitor_set_idle(d->mon, false);
		if (d->disc == NULL)
			start_refresh(d);
		else
			d->queued = true;
	} else {
		monitor_set_idle(d->mon, true);
		evtimer_del(d->refresh_timer);
		evtimer_del(d->incr_timer);
		d->queued = false;
		if (disc != NULL) {
			d->disc = NULL;
			disc_free(disc);
			log_context(NULL, NULL);
		}
	}
	ops_status(d->ops);
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
start_refresh(struct daemon *d)
{
	evtimer_del(d->refresh_timer);
	if (standby(d))
		return;		/* the holder refreshes; we take over later */
	evtimer_del(d->incr_timer);
	d->incremental = false;
	d->refresh_started = mono_ms();
	d->unchanged_before = metrics.details_unchanged;
	d->fetched_before = metrics.details_fetched[0];
	refresh_id_new();
	log_event(LOG_INFO, "refresh_started", "kind=full sites=%zu "
	    "domain=%s", d->cfg->nsites, d->opts->domain);
	d->disc = disc_start(d->base, d->http, d->oauth, d->cfg,
	    state_generation(d->state), d->opts->domain, on_refresh_done, d);
	ops_refreshing(d->ops, true);
}

/*
 * An incremental refresh (SPEC §10): what changed since the last one.  The
 * full refresh timer keeps running.
 */
static void
start_incremental(struct daemon *d)
{
	evtimer_del(d->incr_timer);
	if (standby(d))
		return;
	d->incremental = true;
	d->refresh_started = mono_ms();
	d->unchanged_before = metrics.details_unchanged;
	d->fetched_before = metrics.details_fetched[1];
	refresh_id_new();
	log_event(LOG_INFO, "refresh_started", "kind=incremental sites=%zu",
	    d->cfg->nsites);
	d->disc = disc_start_incremental(d->base, d->http, d->oauth, d->cfg,
	    state_generation(d->state), on_refresh_done, d);
	ops_refreshing(d->ops, true);
}

/* Whether the next refresh may be an incremental one. */
static bool
incremental_ready(const struct daemon *d)
{
	return !d->opts->once && d->opts->domain == NULL &&
	    !d->opts->dry_run && d->cfg->incremental_interval_ms > 0 &&
	    disc_incremental_ready(d->cfg, state_generation(d->state));
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
	if (d->disc != NULL) {
		d->queued = true;	/* after the incremental one */
		return;
	}
	start_refresh(d);
}

static void
on_incr_timer(evutil_socket_t fd, short what, void *arg)
{
	struct daemon	*d = arg;

	(void)fd;
	(void)what;
	if (d->disc != NULL)
		return;		/* armed again when it ends */
	if (incremental_ready(d))
		start_incremental(d);
	else
		schedule_incremental(d);
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
			(void)apply_config(d, cfg);
	}
	ops_reloaded(d->ops, metrics.config_reload_success ? NULL : why);
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
	event_set_log_callback(on_libevent_log);
	if ((d.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	d.mon = monitor_new(d.base);
	d.ops = ops_new(d.base, opts->once);
	listening = apply_config(&d, cfg);
	d.gate.may_write = may_write;
	d.gate.arg = &d;
	monitor_set_gate(d.mon, &d.gate);
	metrics.lease_holder = true;
	if (!opts->once && (d.lease = lease_new(d.base, d.cfg, d.store, &d.kf,
	    on_lease, &d)) != NULL) {
		metrics.lease_holder = false;
		monitor_set_idle(d.mon, true);
		(void)ops_configure(d.ops, d.cfg, d.store, &d.kf, d.lease);
	}
	d.pool = pool_new(d.base, pool_size(d.cfg->workers));
	disc_use_pool(d.pool);
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
		 * refresh can continue from needs no full one first (SPEC
		 * §10); the full ones come on refresh_interval.  With a
		 * lease, the one that takes it starts with a full one.
		 */
		if (d.lease != NULL)
			lease_start(d.lease);	/* taken: on_lease refreshes */
		else if (incremental_ready(&d)) {
			schedule_refresh(&d);
			start_incremental(&d);
		} else
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
	lease_free(d.lease);		/* released: the next takes over now */
	log_event(LOG_INFO, "shutdown", "status=%d", d.exit_code);
	log_context(NULL, NULL);

	monitor_free(d.mon);
	state_free(d.state);
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
