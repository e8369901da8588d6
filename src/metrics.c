/*
 * metrics.c: the process's counters, in the Prometheus text format.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

/* The Makefile passes git's description of the tree built. */
#ifndef PCD_REVISION
#define PCD_REVISION	"unknown"
#endif

/* Without [lease], this daemon is always the writer (lease.c says otherwise). */
struct metrics	metrics = { .lease_holder = true };

static const char *const outcome_names[OUTCOME_COUNT] = {
	"ok", "partial", "failed"
};

static const char *const kind_names[2] = { "full", "incremental" };

static const char *const http_class_names[METRICS_HTTP_CLASSES] = {
	"error", "1xx", "2xx", "3xx", "4xx", "5xx"
};

/* HELP and TYPE lines of one series. */
static void
head(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * A sample value and its newline: the shortest decimal that reads back as
 * the same double, so 0.25 is "0.25" and not "0.25000000000000000".
 */
static void
value(struct buf *b, double v)
{
	char	s[32];
	int	prec;

	for (prec = 15; prec <= 17; prec++) {
		snprintf(s, sizeof s, "%.*g", prec, v);
		if (prec == 17 || strtod(s, NULL) == v)
			break;
	}
	buf_printf(b, " %s\n", s);
}

/*
 * Seconds (timestamps, durations) rounded to the millisecond they are kept
 * in, so sums and divisions print 1796044468.15, not 1796044468.1500001.
 */
static void
seconds(struct buf *b, double v)
{
	value(b, round(v * 1000) / 1000);
}

/* The text format's escaping of a label value: backslash, quote, newline. */
static void
label_value(struct buf *b, const char *v)
{
	const char	*p;

	for (p = v; *p != '\0'; p++) {
		if (*p == '\\')
			buf_adds(b, "\\\\");
		else if (*p == '"')
			buf_adds(b, "\\\"");
		else if (*p == '\n')
			buf_adds(b, "\\n");
		else
			buf_addc(b, (unsigned char)*p);
	}
}

static void
counter(struct buf *b, const char *name, const char *help, uint64_t v)
{
	head(b, name, "counter", help);
	buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void
gauge(struct buf *b, const char *name, const char *help, double v)
{
	head(b, name, "gauge", help);
	buf_adds(b, name);
	value(b, v);
}

/* A gauge of seconds (a timestamp or a duration), to the millisecond. */
static void
gauge_seconds(struct buf *b, const char *name, const char *help, double v)
{
	head(b, name, "gauge", help);
	buf_adds(b, name);
	seconds(b, v);
}

/*
 * When this process started, unix seconds: its start in clock ticks since
 * boot (/proc/self/stat, field 22) placed on the wall clock, as the
 * Prometheus client libraries do.  Computed once; 0 if /proc cannot say.
 */
static double
process_start_time(void)
{
	static double	 start = -1;
	struct timespec	 real, boot;
	char		 line[1024], *p, *end;
	unsigned long long ticks = 0;
	long		 hz;
	FILE		*f;
	int		 i;

	if (start >= 0)
		return start;
	start = 0;
	if ((f = fopen("/proc/self/stat", "r")) == NULL)
		return start;
	p = fgets(line, sizeof line, f);
	fclose(f);
	/* After the command name's closing parenthesis: fields 3 to 22. */
	if (p == NULL || (p = strrchr(line, ')')) == NULL)
		return start;
	for (i = 3; i <= 22 && p != NULL; i++)
		p = strchr(p + 1, ' ');
	if (p != NULL) {
		errno = 0;
		ticks = strtoull(p + 1, &end, 10);
		if (errno != 0 || end == p + 1 || *end != ' ')
			p = NULL;
	}
	if (p == NULL || (hz = sysconf(_SC_CLK_TCK)) <= 0 ||
	    clock_gettime(CLOCK_REALTIME, &real) == -1 ||
	    clock_gettime(CLOCK_BOOTTIME, &boot) == -1)
		return start;
	start = (double)real.tv_sec + real.tv_nsec / 1e9 -
	    ((double)boot.tv_sec + boot.tv_nsec / 1e9) + (double)ticks / hz;
	return start;
}

/*
 * Labelled series: one value per label set, in the order first seen.  The
 * label sets are few (sites, stages, servers, endpoints): a list is enough.
 */
struct lseries {
	const char	*name;		/* static */
	char		*labels;	/* rendered: site="a",stage="b" */
	double		 v;
};

static struct lseries	*lsv;
static size_t		 nlsv;

/* The series name{labels}, created at 0 if new. */
static struct lseries *
lseries(const char *name, const char *l1, const char *v1, const char *l2,
    const char *v2)
{
	struct buf	 b;
	size_t		 i;

	buf_init(&b);
	buf_printf(&b, "%s=\"", l1);
	label_value(&b, v1 != NULL ? v1 : "");
	buf_adds(&b, "\"");
	if (l2 != NULL) {
		buf_printf(&b, ",%s=\"", l2);
		label_value(&b, v2 != NULL ? v2 : "");
		buf_adds(&b, "\"");
	}
	for (i = 0; i < nlsv; i++) {
		if (lsv[i].name == name &&
		    strcmp(lsv[i].labels, (char *)b.data) == 0) {
			buf_free(&b);
			return &lsv[i];
		}
	}
	lsv = xreallocarray(lsv, nlsv + 1, sizeof *lsv);
	lsv[nlsv].name = name;
	lsv[nlsv].labels = (char *)buf_steal(&b, NULL);
	lsv[nlsv].v = 0;
	return &lsv[nlsv++];
}

static const char	site_programs[] = "programs_cached_site_programs";
static const char	site_success[] =
    "programs_cached_site_last_success_timestamp_seconds";
static const char	failures[] = "programs_cached_refresh_failures_total";

void
metrics_site(const char *site, size_t programs, bool success)
{
	lseries(site_programs, "site", site, NULL, NULL)->v =
	    (double)programs;
	if (success)
		lseries(site_success, "site", site, NULL, NULL)->v =
		    (double)wall_ms() / 1000;
	else
		(void)lseries(site_success, "site", site, NULL, NULL);
}

static const char	store_errors[] = "programs_cached_cache_errors_total";

void
metrics_store_error(const char *server)
{
	metrics.mc_errors++;
	lseries(store_errors, "server", server, NULL, NULL)->v++;
}

static const char	reader_gets[] = "programs_cached_reader_gets_total";
static const char	watch_up[] = "programs_cached_reader_watch_up";
static const char	watch_skipped[] =
    "programs_cached_reader_watch_skipped_total";
static const char	repairs_by[] = "programs_cached_repaired_keys_total";

void
metrics_reader_get(const char *family, const char *result, uint64_t n)
{
	lseries(reader_gets, "family", family, "result", result)->v +=
	    (double)n;
}

void
metrics_reader_watch(const char *server, bool up, uint64_t skipped)
{
	lseries(watch_up, "server", server, NULL, NULL)->v = up ? 1 : 0;
	lseries(watch_skipped, "server", server, NULL, NULL)->v +=
	    (double)skipped;
}

void
metrics_repair(const char *reason, size_t keys)
{
	lseries(repairs_by, "reason", reason, NULL, NULL)->v += (double)keys;
}

void
metrics_failure(const char *site, const char *stage)
{
	lseries(failures, "site", site != NULL ? site : "", "stage",
	    stage)->v++;
}

/* The histogram of Discovery request durations, by endpoint. */
static const double	dur_bounds[] = {
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};
#define NBOUNDS		(sizeof dur_bounds / sizeof dur_bounds[0])
static const char *const dur_endpoints[] = {
	"uuids", "detail", "pathways", "token", "other"
};
#define NENDPOINTS	(sizeof dur_endpoints / sizeof dur_endpoints[0])
static uint64_t		dur_buckets[NENDPOINTS][NBOUNDS + 1];
static double		dur_sum[NENDPOINTS];

void
metrics_http_duration(const char *endpoint, double seconds)
{
	size_t	e, i;

	for (e = 0; e + 1 < NENDPOINTS; e++)
		if (endpoint != NULL && strcmp(endpoint, dur_endpoints[e]) == 0)
			break;
	for (i = 0; i < NBOUNDS && seconds > dur_bounds[i]; i++)
		;
	dur_buckets[e][i]++;
	dur_sum[e] += seconds;
}

/* The histogram, cumulative as the text format wants it. */
static void
render_durations(struct buf *b)
{
	const char	*n = "programs_cached_discovery_request_duration_seconds";
	uint64_t	 cum;
	size_t		 e, i;

	head(b, n, "histogram", "Discovery requests, from the first attempt "
	    "to the answer (retries included), by endpoint.");
	for (e = 0; e < NENDPOINTS; e++) {
		for (i = 0, cum = 0; i <= NBOUNDS; i++) {
			cum += dur_buckets[e][i];
			if (i < NBOUNDS)
				buf_printf(b, "%s_bucket{endpoint=\"%s\","
				    "le=\"%g\"} %llu\n", n, dur_endpoints[e],
				    dur_bounds[i], (unsigned long long)cum);
			else
				buf_printf(b, "%s_bucket{endpoint=\"%s\","
				    "le=\"+Inf\"} %llu\n", n, dur_endpoints[e],
				    (unsigned long long)cum);
		}
		buf_printf(b, "%s_sum{endpoint=\"%s\"}", n, dur_endpoints[e]);
		seconds(b, dur_sum[e]);
		buf_printf(b, "%s_count{endpoint=\"%s\"} %llu\n", n,
		    dur_endpoints[e], (unsigned long long)cum);
	}
}

/*
 * The histogram of change to publish times (operations.md: the change key), in
 * seconds.
 */
static const double	chg_bounds[] = {
	0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 300, 900
};
#define NCHG		(sizeof chg_bounds / sizeof chg_bounds[0])
static uint64_t		chg_buckets[NCHG + 1];
static double		chg_sum;

void
metrics_change_publish(double secs)
{
	size_t	i;

	for (i = 0; i < NCHG && secs > chg_bounds[i]; i++)
		;
	chg_buckets[i]++;
	chg_sum += secs;
}

/* The change-driven refresh's series, when it is configured. */
static void
render_change(struct buf *b, const struct metrics *m)
{
	const char	*n = "programs_cached_change_to_publish_seconds";
	static const char *const how[2] = { "poll", "notification" };
	uint64_t	 cum;
	size_t		 i;

	if (!m->change_on)
		return;
	head(b, "programs_cached_changes_total", "counter", "Changes of "
	    "Discovery's change key seen, by how (a poll, a notification).");
	for (i = 0; i < 2; i++)
		buf_printf(b, "programs_cached_changes_total{how=\"%s\"} %llu\n",
		    how[i], (unsigned long long)m->changes[i]);
	head(b, "programs_cached_change_source_up", "gauge", "Whether the "
	    "change source answers polls (how=poll) and pushes changes "
	    "(how=notification): 1, or 0.");
	for (i = 0; i < (m->change_push_on ? 2U : 1U); i++)
		buf_printf(b, "programs_cached_change_source_up{how=\"%s\"} "
		    "%d\n", how[i], m->change_up[i] ? 1 : 0);
	counter(b, "programs_cached_change_polls_total", "Reads of the "
	    "change key (one round over the source's servers each).",
	    m->change_polls);
	head(b, "programs_cached_change_poll_seconds_total", "counter",
	    "Time the loop spent reading the change key.");
	buf_adds(b, "programs_cached_change_poll_seconds_total");
	value(b, m->change_poll_seconds);
	gauge_seconds(b, "programs_cached_change_poll_max_seconds",
	    "The longest round of reads of the change key.",
	    m->change_poll_max);
	head(b, n, "histogram", "From Discovery's bump of the change key to "
	    "the end of the publish of what the change-started refresh found.");
	for (i = 0, cum = 0; i <= NCHG; i++) {
		cum += chg_buckets[i];
		if (i < NCHG)
			buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", n,
			    chg_bounds[i], (unsigned long long)cum);
		else
			buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", n,
			    (unsigned long long)cum);
	}
	buf_printf(b, "%s_sum", n);
	seconds(b, chg_sum);
	buf_printf(b, "%s_count %llu\n", n, (unsigned long long)cum);
}

/* Every series of one name, with its HELP and TYPE lines. */
static void
render_lseries(struct buf *b, const char *name, const char *type,
    const char *help, bool secs)
{
	size_t	i;

	head(b, name, type, help);
	for (i = 0; i < nlsv; i++) {
		if (lsv[i].name != name)
			continue;
		buf_printf(b, "%s{%s}", name, lsv[i].labels);
		if (secs)
			seconds(b, lsv[i].v);
		else
			value(b, lsv[i].v);
	}
}

void
metrics_render(struct buf *b)
{
	const struct metrics	*m = &metrics;
	uint64_t		 total = 0;
	int			 i;

	head(b, "programs_cached_build_info", "gauge",
	    "The version and git revision built (always 1).");
	buf_adds(b, "programs_cached_build_info{version=\"");
	label_value(b, PCD_VERSION);
	buf_adds(b, "\",revision=\"");
	label_value(b, PCD_REVISION);
	buf_adds(b, "\"} 1\n");
	gauge_seconds(b, "process_start_time_seconds",
	    "When the process started, unix seconds.", process_start_time());

	head(b, "programs_cached_refreshes_total", "counter",
	    "Refreshes by outcome.");
	for (i = 0; i < OUTCOME_COUNT; i++) {
		buf_printf(b, "programs_cached_refreshes_total{outcome=\"%s\"} "
		    "%llu\n", outcome_names[i],
		    (unsigned long long)m->refreshes[i]);
		total += m->refreshes[i];
	}
	gauge_seconds(b, "programs_cached_last_success_timestamp_seconds",
	    "When the last fully successful refresh ended (0: never).",
	    m->last_success);
	head(b, "programs_cached_refresh_duration_seconds", "summary",
	    "How long refreshes took, fetch and publish.");
	buf_adds(b, "programs_cached_refresh_duration_seconds_sum");
	seconds(b, m->refresh_seconds_sum);
	buf_printf(b, "programs_cached_refresh_duration_seconds_count %llu\n",
	    (unsigned long long)total);
	gauge_seconds(b, "programs_cached_last_refresh_duration_seconds",
	    "How long the last refresh took.", m->last_refresh_seconds);
	gauge(b, "programs_cached_programs", "Programs in the last "
	    "generation.", (double)m->programs);
	gauge(b, "programs_cached_pathways", "Pathways in the last "
	    "generation.", (double)m->pathways);
	head(b, "programs_cached_keys", "gauge",
	    "Keys of the last generation, by family.");
	for (i = 0; i < FAM_COUNT; i++)
		buf_printf(b, "programs_cached_keys{family=\"%s\"} %llu\n",
		    family_name((enum family)i),
		    (unsigned long long)m->keys[i]);
	counter(b, "programs_cached_details_unchanged_total",
	    "Program details whose body had not changed: not parsed again.",
	    m->details_unchanged);
	head(b, "programs_cached_refreshes_by_kind_total", "counter",
	    "Refreshes by kind: full, or incremental (only what changed).");
	for (i = 0; i < 2; i++)
		buf_printf(b, "programs_cached_refreshes_by_kind_total{kind="
		    "\"%s\"} %llu\n", kind_names[i],
		    (unsigned long long)m->refreshes_by_kind[i]);
	head(b, "programs_cached_details_fetched_total", "counter",
	    "Program details requested from Discovery, by kind of refresh.");
	for (i = 0; i < 2; i++)
		buf_printf(b, "programs_cached_details_fetched_total{kind="
		    "\"%s\"} %llu\n", kind_names[i],
		    (unsigned long long)m->details_fetched[i]);
	gauge_seconds(b, "programs_cached_seconds_since_last_change",
	    "Seconds since a publish last wrote a changed value (-1: none "
	    "since start-up).", m->last_change > 0 ?
	    (double)wall_ms() / 1000 - m->last_change : -1);
	counter(b, "programs_cached_programs_rejected_total",
	    "Program details refused for their shape or syntax.",
	    m->programs_rejected);
	counter(b, "programs_cached_publishes_held_total",
	    "Sites held back by the shrink guard.", m->publishes_held);

	head(b, "programs_cached_http_responses_total", "counter",
	    "Discovery responses by status class (error: no response).");
	for (i = 0; i < METRICS_HTTP_CLASSES; i++)
		buf_printf(b, "programs_cached_http_responses_total{class="
		    "\"%s\"} %llu\n", http_class_names[i],
		    (unsigned long long)m->http_responses[i]);
	counter(b, "programs_cached_http_retries_total",
	    "Discovery requests tried again.", m->http_retries);
	counter(b, "programs_cached_tokens_acquired_total",
	    "OAuth2 tokens obtained.", m->tokens_acquired);
	counter(b, "programs_cached_token_failures_total",
	    "OAuth2 token requests that failed.", m->token_failures);

	if (m->backend != NULL) {
		head(b, "programs_cached_backend_info", "gauge",
		    "The cache the daemon writes (the memcached_* series "
		    "count its operations, whichever it is).");
		buf_printf(b, "programs_cached_backend_info{backend=\"%s\"} "
		    "1\n", m->backend);
	}
	counter(b, "programs_cached_memcached_sets_total",
	    "Values written to memcached.", m->mc_sets);
	counter(b, "programs_cached_memcached_set_bytes_total",
	    "Value bytes written to memcached.", m->mc_set_bytes);
	counter(b, "programs_cached_memcached_deletes_total",
	    "Stale keys deleted from memcached.", m->mc_deletes);
	counter(b, "programs_cached_memcached_gets_total",
	    "Keys read back from memcached to verify them.", m->mc_gets);
	counter(b, "programs_cached_memcached_errors_total",
	    "memcached operations that failed.", m->mc_errors);
	counter(b, "programs_cached_keys_skipped_total",
	    "Values not written because they had not changed.",
	    m->keys_skipped);
	counter(b, "programs_cached_memcached_restarts_detected_total",
	    "memcached restarts (or emptied servers) detected.",
	    m->restarts_detected);
	counter(b, "programs_cached_cache_misses_total",
	    "Published keys found missing from memcached.", m->cache_misses);
	head(b, "programs_cached_cache_diverged_total", "counter",
	    "Published keys found holding other bytes than this daemon "
	    "wrote (another writer), rewritten; by family.");
	for (i = 0; i < FAM_COUNT; i++)
		buf_printf(b, "programs_cached_cache_diverged_total{family="
		    "\"%s\"} %llu\n", family_name((enum family)i),
		    (unsigned long long)m->cache_diverged[i]);
	counter(b, "programs_cached_keys_repaired_total",
	    "Keys rewritten from the snapshot.", m->keys_repaired);
	counter(b, "programs_cached_repairs_total",
	    "Repairs run (after a restart, misses or SIGUSR1).", m->repairs);

	render_durations(b);
	render_lseries(b, site_programs, "gauge", "Programs the site has in "
	    "the cache, as its last publish left them.", false);
	render_lseries(b, site_success, "gauge", "When the site was last "
	    "fetched and published whole (0: never).", true);
	render_lseries(b, store_errors, "counter", "Cache (memcached or "
	    "Redis) operations that failed or were refused, by server.", false);
	render_lseries(b, failures, "counter", "Failures by site and stage "
	    "(uuids, detail, pathways, auth, deadline, publish, ...).",
	    false);
	render_lseries(b, repairs_by, "counter", "Keys rewritten from the "
	    "snapshot, by reason (verify, pid changed, reader miss, "
	    "eviction, ...).", false);
	render_lseries(b, reader_gets, "counter", "The cache's readers' gets "
	    "of the programs cache's keys, seen by the reader watch: hit "
	    "(memcached only), miss_lost (a published key missing), "
	    "miss_absent (a key no publish holds).", false);
	render_lseries(b, watch_up, "gauge", "Whether the reader watch of "
	    "the server is up (1) or not (0).", false);
	render_lseries(b, watch_skipped, "counter", "Watch lines the server "
	    "skipped because the watcher fell behind.", false);

	gauge(b, "programs_cached_lease_holder", "Whether this daemon holds "
	    "the writer's lease (1) or stands by (0); 1 without [lease].",
	    m->lease_holder ? 1 : 0);
	counter(b, "programs_cached_lease_acquisitions_total",
	    "Times the lease was taken.", m->lease_acquisitions);
	counter(b, "programs_cached_lease_losses_total",
	    "Times the lease was lost.", m->lease_losses);

	render_change(b, m);

	gauge(b, "programs_cached_config_last_reload_success",
	    "Whether the last load of the configuration (start-up or SIGHUP) "
	    "succeeded; 0: the previous one is in use.",
	    m->config_reload_success ? 1 : 0);
	gauge(b, "programs_cached_config_last_reload_timestamp_seconds",
	    "When the configuration was last loaded or tried (unix seconds).",
	    (double)m->config_reload_time);
}

void
metrics_head(struct buf *b, const char *name, const char *type,
    const char *help)
{
	head(b, name, type, help);
}

void
metrics_sample(struct buf *b, const char *name, const char *label,
    const char *lvalue, double v)
{
	buf_adds(b, name);
	if (label != NULL) {
		buf_printf(b, "{%s=\"", label);
		label_value(b, lvalue);
		buf_adds(b, "\"}");
	}
	value(b, v);
}
