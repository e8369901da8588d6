/*
 * metrics.c: the process's counters, in the Prometheus text format.
 */
#include <string.h>

#include "metrics.h"

struct metrics	metrics;

static const char *const outcome_names[OUTCOME_COUNT] = {
	"ok", "partial", "failed"
};

static const char *const http_class_names[METRICS_HTTP_CLASSES] = {
	"error", "1xx", "2xx", "3xx", "4xx", "5xx"
};

/* HELP and TYPE lines of one series. */
static void
head(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
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
	buf_printf(b, "%s %.17g\n", name, v);
}

void
metrics_render(struct buf *b)
{
	const struct metrics	*m = &metrics;
	uint64_t		 total = 0;
	int			 i;

	head(b, "programs_cached_refreshes_total", "counter",
	    "Refreshes by outcome.");
	for (i = 0; i < OUTCOME_COUNT; i++) {
		buf_printf(b, "programs_cached_refreshes_total{outcome=\"%s\"} "
		    "%llu\n", outcome_names[i],
		    (unsigned long long)m->refreshes[i]);
		total += m->refreshes[i];
	}
	gauge(b, "programs_cached_last_success_timestamp_seconds",
	    "When the last fully successful refresh ended (0: never).",
	    m->last_success);
	head(b, "programs_cached_refresh_duration_seconds", "summary",
	    "How long refreshes took, fetch and publish.");
	buf_printf(b, "programs_cached_refresh_duration_seconds_sum %.17g\n"
	    "programs_cached_refresh_duration_seconds_count %llu\n",
	    m->refresh_seconds_sum, (unsigned long long)total);
	gauge(b, "programs_cached_last_refresh_duration_seconds",
	    "How long the last refresh took.", m->last_refresh_seconds);
	gauge(b, "programs_cached_programs", "Programs in the last "
	    "generation.", (double)m->programs);
	gauge(b, "programs_cached_pathways", "Pathways in the last "
	    "generation.", (double)m->pathways);
	head(b, "programs_cached_keys", "gauge",
	    "Keys of the last generation, by family.");
	for (i = 0; i < FAM_COUNT; i++)
		buf_printf(b, "programs_cached_keys{family=\"%s\"} %llu\n",
		    catalog_family_name((enum catalog_family)i),
		    (unsigned long long)m->keys[i]);
	counter(b, "programs_cached_details_unchanged_total",
	    "Program details whose body had not changed: not parsed again.",
	    m->details_unchanged);
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
	counter(b, "programs_cached_keys_repaired_total",
	    "Keys rewritten from the snapshot.", m->keys_repaired);
	counter(b, "programs_cached_repairs_total",
	    "Repairs run (after a restart, misses or SIGUSR1).", m->repairs);
}

void
metrics_head(struct buf *b, const char *name, const char *type,
    const char *help)
{
	head(b, name, type, help);
}

void
metrics_sample(struct buf *b, const char *name, const char *label,
    const char *value, double v)
{
	const char	*p;

	buf_adds(b, name);
	if (label != NULL) {
		buf_printf(b, "{%s=\"", label);
		/* The text format escapes these three in label values. */
		for (p = value; *p != '\0'; p++) {
			if (*p == '\\')
				buf_adds(b, "\\\\");
			else if (*p == '"')
				buf_adds(b, "\\\"");
			else if (*p == '\n')
				buf_adds(b, "\\n");
			else
				buf_addc(b, (unsigned char)*p);
		}
		buf_adds(b, "\"}");
	}
	buf_printf(b, " %.17g\n", v);
}
