/*
 * metrics.h: the counters and gauges behind /metrics (operations.md: Observe).
 *
 * One process-wide struct, as memcached keeps its stats: the loop is single
 * threaded, so modules bump fields directly where things happen, and
 * metrics_render() writes them in the Prometheus text format.
 */
#ifndef PCD_METRICS_H
#define PCD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "family.h"
#include "util.h"

enum metrics_outcome {
	OUTCOME_OK,
	OUTCOME_PARTIAL,
	OUTCOME_FAILED,
	OUTCOME_COUNT
};

/* HTTP responses by status class; 0 = no response (transport error). */
#define METRICS_HTTP_CLASSES	6

struct metrics {
	/* refreshes */
	uint64_t	refreshes[OUTCOME_COUNT];
	double		last_success;		/* unix seconds, 0 = never */
	double		last_refresh_seconds;	/* duration of the last one */
	double		refresh_seconds_sum;
	uint64_t	programs;		/* in the last generation */
	uint64_t	pathways;
	uint64_t	keys[FAM_COUNT];	/* by family, last generation */
	uint64_t	programs_rejected;
	uint64_t	details_unchanged;	/* same body: not parsed */
	/*
	 * by kind of refresh: 0 full, 1 incremental (design.md: Incremental
	 * refresh)
	 */
	uint64_t	refreshes_by_kind[2];
	uint64_t	details_fetched[2];
	double		last_change;		/* last write, unix s, or 0 */
	uint64_t	publishes_held;

	/* Discovery */
	uint64_t	http_responses[METRICS_HTTP_CLASSES];
	uint64_t	http_retries;
	uint64_t	tokens_acquired;
	uint64_t	token_failures;

	/* the cache (memcached or Redis: the series keep their names) */
	const char	*backend;		/* store_new's; NULL: none */
	uint64_t	mc_sets;
	uint64_t	mc_set_bytes;
	uint64_t	mc_deletes;
	uint64_t	mc_gets;		/* keys asked for in verification */
	uint64_t	mc_errors;
	uint64_t	keys_skipped;		/* unchanged, not rewritten */
	uint64_t	restarts_detected;
	uint64_t	cache_misses;
	/* published keys holding other bytes than the record, rewritten */
	uint64_t	cache_diverged[FAM_COUNT];
	uint64_t	keys_repaired;
	uint64_t	repairs;

	/* the writer's lease (operations.md: Several hosts) */
	bool		lease_holder;
	uint64_t	lease_acquisitions;
	uint64_t	lease_losses;

	/*
	 * The change-driven refresh (operations.md: the change key), while
	 * change_key is set: changes seen by how (0 a poll, 1 a push), whether
	 * polls and pushes work, what polls cost, and the time from a bump to
	 * the end of the publish that carried it (metrics_change_publish).
	 */
	bool		change_on;
	bool		change_push_on;		/* change_notify is not off */
	uint64_t	changes[2];
	bool		change_up[2];
	uint64_t	change_polls;
	double		change_poll_seconds;
	double		change_poll_max;	/* the longest, seconds */

	/* configuration: the last load, at start-up or on SIGHUP */
	bool		config_reload_success;
	uint64_t	config_reload_time;	/* unix seconds */
};

extern struct metrics	metrics;

/*
 * The Prometheus text exposition of everything above, appended to b, after
 * programs_cached_build_info{version,revision} and
 * process_start_time_seconds.  Seconds (timestamps, durations) print to
 * the millisecond, other values as the shortest decimal that reads back.
 */
void	metrics_render(struct buf *b);

/*
 * Per-site series: the site's programs in the cache, and (success set) the
 * time it was last fetched and published whole.
 */
void	metrics_site(const char *site, size_t programs, bool success);
/* A Discovery request took seconds (endpoint: uuids, detail, ...). */
void	metrics_http_duration(const char *endpoint, double seconds);
/* A change reached the cache this long after Discovery's bump. */
void	metrics_change_publish(double seconds);
/* A cache operation failed or was refused on a server (and mc_errors). */
void	metrics_store_error(const char *server);
/* Reader gets of a family's keys by result (hit, miss_lost, miss_absent). */
void	metrics_reader_get(const char *family, const char *result,
	    uint64_t n);
/* The reader watch of a server: up or not, and skipped lines to add. */
void	metrics_reader_watch(const char *server, bool up, uint64_t skipped);
/* A repair of reason wrote keys. */
void	metrics_repair(const char *reason, size_t keys);
/* One more failure of a site (NULL: none in particular) at a stage. */
void	metrics_failure(const char *site, const char *stage);

/*
 * For series kept elsewhere (per-server state, readiness): the HELP and
 * TYPE lines, and one sample with an optional label (label NULL: none),
 * its value escaped as the text format requires.
 */
void	metrics_head(struct buf *b, const char *name, const char *type,
	    const char *help);
void	metrics_sample(struct buf *b, const char *name, const char *label,
	    const char *value, double v);

#endif
