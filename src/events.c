/*
 * events.c: the table of every event the daemon logs (see events.h).
 * Keep it sorted by name; a new event is a new row here, then
 * `make man-events` (make check-unit fails until both are done).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <sodium.h>

#include "events.h"
#include "log.h"
#include "logfmt.h"

/* The priority is the usual one; the call site may pick another. */
#define VARIES		EVENT_PRIO_VARIES

const struct event events_table[] = {
	{ "cache_diverged", LOG_WARNING, 0,
	  "reason diverged examples diverged_<family>?",
	  "a verification found published keys holding other bytes than this "
	  "daemon wrote (another writer: a paused former lease holder, a "
	  "cache_programs job): how many, a few example keys, a count for "
	  "each key family; they are written back" },
	{ "cache_empty_detected", LOG_WARNING, 0,
	  "server reason pid? run_id? uptime keys",
	  "a server looks restarted or flushed (its pid, or Redis's run_id, "
	  "changed, its uptime went back or the sentinel key is gone); keys: "
	  "how many published keys it should hold" },
	{ "cache_evicted", LOG_WARNING, 0,
	  "server evicted examples evicted_<family>?",
	  "the reader watch saw the server evict published keys (at most "
	  "once a second): how many, a few LMS keys, counts by family; they "
	  "are written back at once" },
	{ "cache_miss", LOG_WARNING, 0,
	  "reason missing examples missing_<family>?",
	  "a verification found published keys missing: how many, a few "
	  "example keys, and a count for each key family that had misses" },
	{ "cache_repaired", LOG_NOTICE, VARIES,
	  "reason server keys bytes keys_failed duration_ms",
	  "missing keys written back from the snapshot; an error when some "
	  "could not be written (keys_failed)" },
	{ "cache_verified", LOG_INFO, 0,
	  "reason keys missing diverged servers_skipped duration_ms",
	  "a verification of the cache against the snapshot ended" },
	{ "change_detected", LOG_INFO, 0,
	  "source how delay_ms? bytes",
	  "Discovery's change key moved, seen by a poll or a notification; "
	  "delay_ms: since the bump, when the value is a timestamp (negative: "
	  "the clocks disagree)" },
	{ "change_full_scheduled", LOG_INFO, 0,
	  "delay_ms",
	  "a change-started refresh found nothing new, twice: a full refresh "
	  "follows in delay_ms (change_full_delay)" },
	{ "change_source_available", LOG_NOTICE, 0,
	  "source how",
	  "the change source answers polls (how=poll) or pushes changes "
	  "(how=notification)" },
	{ "change_source_unavailable", LOG_WARNING, 0,
	  "source how error",
	  "the change source does not answer polls, or cannot push (the "
	  "error says what to turn on); logged once, the schedule holds" },
	{ "config_error", LOG_ERR, 0,
	  "file line? key? error domain?",
	  "the configuration is wrong: at start-up the daemon exits 2, on "
	  "reload it keeps the configuration in use" },
	{ "config_loaded", LOG_INFO, 0,
	  "file sites servers version?",
	  "the configuration was read (the version at start-up)" },
	{ "config_not_applied", LOG_WARNING, 0,
	  "file section key error",
	  "a reload changed a key that is read at start-up only (workers, "
	  "[lease] enabled and ttl, state_dir): the daemon runs on with the "
	  "value it started with; restart it for the new one" },
	{ "config_warning", LOG_WARNING, 0,
	  "file line key warning",
	  "a setting that does not stop the daemon, such as a secret file "
	  "this user cannot read" },
	{ "debug", LOG_DEBUG, 0,
	  "msg",
	  "free text for debugging (log_level = debug)" },
	{ "fatal", LOG_CRIT, EVENT_FATAL,
	  "error",
	  "the daemon cannot go on and exits 1 (on standard error even in "
	  "the journal, so without a MESSAGE_ID)" },
	{ "http_retry", LOG_WARNING, 0,
	  "site endpoint url attempt http_status error delay_ms",
	  "a Discovery request failed and is tried again after delay_ms" },
	{ "incremental_unsupported", LOG_WARNING, 0,
	  "site url listed error",
	  "Discovery ignores the timestamp filter: the site only gets full "
	  "refreshes" },
	{ "internal_error", LOG_ERR, 0,
	  "op error",
	  "a system call that cannot fail did" },
	{ "lease_acquired", LOG_NOTICE, 0,
	  "id server ttl_ms",
	  "this daemon holds the lease and writes the cache" },
	{ "lease_lost", LOG_WARNING, 0,
	  "id server error",
	  "the lease was lost or taken: this daemon stands by" },
	{ "lease_released", LOG_INFO, 0,
	  "id server reason",
	  "the lease was given up (reason: shutdown, or a reload that moved "
	  "it to another store, server or key), so that another daemon can "
	  "take over at once" },
	{ "libevent", LOG_ERR, VARIES,
	  "msg",
	  "a message of libevent's, at the priority of its severity" },
	{ "listen_error", LOG_WARNING, 0,
	  "address error events connections",
	  "the HTTP listener refused or failed connections (at most one line "
	  "a minute; events: how many since the last)" },
	{ "listen_failed", LOG_ERR, 0,
	  "host port error",
	  "the HTTP listener cannot start on the listen address" },
	{ "listening", LOG_INFO, 0,
	  "address paths",
	  "the HTTP listener is up" },
	{ "memcached_error", LOG_ERR, VARIES,
	  "backend? server? op refused? retried? key? bytes? error",
	  "a cache server failed or refused a value (memcached or Redis; "
	  "Redis keeps the old value of a refused key); a warning when Redis "
	  "took the values it had answered -LOADING or -BUSY when they were "
	  "sent again (retried)" },
	{ "memcached_recovered", LOG_NOTICE, 0,
	  "backend server",
	  "a cache server that failed answers again" },
	{ "notify_failed", LOG_WARNING, 0,
	  "socket? error value?",
	  "a message to the service manager was not sent, or its watchdog "
	  "settings are wrong" },
	{ "pathway_unresolved", LOG_WARNING, 0,
	  "site error",
	  "a pathway names a program the site does not have" },
	{ "program_rejected", LOG_WARNING, 0,
	  "site uuid? url index? entries? reason",
	  "a program detail or UUID list entry of the wrong shape: the "
	  "program keeps its previous value" },
	{ "publish_forced", LOG_WARNING, 0,
	  "site programs_before programs_now max_shrink",
	  "a site that shrank past max_shrink was published (--force or "
	  "force_publish)" },
	{ "publish_held", LOG_ERR, 0,
	  "site programs_before programs_now max_shrink error",
	  "a site that shrank past max_shrink or to nothing keeps its "
	  "previous values" },
	{ "reader_miss", LOG_WARNING, VARIES,
	  "server lost absent elsewhere examples lost_<family>? "
	  "absent_<family>? elsewhere_<family>?",
	  "the LMS missed keys of the programs cache (at most once a second "
	  "while it does): lost (published, written back at once), absent "
	  "(no program has it: a correct answer), elsewhere (published on "
	  "another server), a few LMS keys, counts by kind and family; info "
	  "when all were absent" },
	{ "reader_watch_down", LOG_WARNING, 0,
	  "server error",
	  "the reader watch of a server stopped (it reconnects, with a "
	  "backoff); polling covers the server meanwhile" },
	{ "reader_watch_skipped", LOG_WARNING, 0,
	  "server skipped",
	  "memcached skipped watch lines because the daemon fell behind "
	  "(at most once a minute: the lines since the last one)" },
	{ "reader_watch_unavailable", LOG_WARNING, VARIES,
	  "server error fix?",
	  "the server cannot be watched (memcached -W, Redis without the "
	  "notifications, CONFIG or SUBSCRIBE refused): fix says what to do; "
	  "polling covers it (once until the watch comes up)" },
	{ "reader_watch_up", LOG_INFO, 0,
	  "server version",
	  "the reader watch of a server started" },
	{ "refresh_dropped", LOG_WARNING, 0,
	  "error",
	  "the lease was lost during a refresh: nothing of it is written" },
	{ "refresh_failed", LOG_ERR, 0,
	  "site? stage server? key? uuid? url? http_status? error attempt? "
	  "details? deadline_ms?",
	  "one failure of a refresh, by stage (uuids, detail, pathways, "
	  "auth, probe, deadline, encode, publish)" },
	{ "refresh_incomplete", LOG_ERR, 0,
	  "kind outcome sites sites_partial sites_failed sites_held programs "
	  "pathways details_fetched keys_written keys_skipped keys_failed "
	  "duration_ms",
	  "ends a refresh that did not wholly succeed (outcome partial or "
	  "failed)" },
	{ "refresh_scheduled", LOG_INFO, 0,
	  "delay_ms after failures",
	  "the next refresh is due in delay_ms, after a success or a "
	  "failure" },
	{ "refresh_started", LOG_INFO, 0,
	  "kind reason sites domain?",
	  "a full or incremental refresh begins; reason: start, schedule, "
	  "signal, lease, change or change_full" },
	{ "refresh_succeeded", LOG_INFO, 0,
	  "kind sites programs pathways details_fetched keys_written "
	  "keys_skipped keys_deleted bytes_written details_unchanged "
	  "duration_ms publish_ms",
	  "every site and every key was published" },
	{ "repair_skipped", LOG_WARNING, 0,
	  "reason error",
	  "a repair was asked for but cannot run (no snapshot, or standing "
	  "by)" },
	{ "shutdown", LOG_INFO, 0,
	  "status",
	  "the daemon exits with status" },
	{ "signal", LOG_NOTICE, 0,
	  "signal refreshing",
	  "a signal was received" },
	{ "snapshot_error", LOG_ERR, 0,
	  "file op error",
	  "the state file cannot be written (the old one stays)" },
	{ "snapshot_ignored", LOG_ERR, 0,
	  "file error",
	  "the state file was not loaded (damaged, or other cache "
	  "settings)" },
	{ "snapshot_loaded", LOG_INFO, 0,
	  "file entries bytes texts age_s duration_ms",
	  "the state file was loaded at start-up: entries and their value "
	  "bytes, texts (the sites and programs as published)" },
	{ "snapshot_saved", LOG_INFO, 0,
	  "file kind entries bytes changed removed written file_bytes "
	  "duration_ms",
	  "the state file was written after a publish: a new base or a delta "
	  "(kind) of the records that changed or went, written bytes this "
	  "time, file_bytes in all" },
	{ "stale_deleted", LOG_INFO, 0,
	  "keys stale_after examples",
	  "keys absent upstream for stale_after refreshes were deleted" },
	{ "state_dir_locked", LOG_ERR, 0,
	  "dir pid error",
	  "another process (pid) writes this state_dir: --once or --domain "
	  "or a second daemon exits 1" },
	{ "timestamp_ahead", LOG_WARNING, 0,
	  "site program modified tolerance_s",
	  "a program's data_modified_timestamp is later than Discovery's own "
	  "clock (the Date of its replies) plus tolerance_s: the incremental "
	  "watermark ignores it (logged once per record)" },
	{ "token_acquired", LOG_INFO, 0,
	  "url expires_in",
	  "an OAuth2 token was obtained" },
	{ "token_failed", LOG_ERR, 0,
	  "url? http_status? file? error",
	  "no OAuth2 token, or no secret or token file to read" },
	{ "watchdog_enabled", LOG_INFO, 0,
	  "interval_ms ping_ms",
	  "the service manager's watchdog is pinged every ping_ms" },
	{ "write_stopped", LOG_WARNING, 0,
	  "error",
	  "the lease was lost while values were written: the rest are not" },
};

const size_t	events_count = sizeof events_table / sizeof events_table[0];

/* The MESSAGE_IDs, in the table's order, computed once. */
static char		event_ids[sizeof events_table /
			    sizeof events_table[0]][33];
static pthread_once_t	event_ids_once = PTHREAD_ONCE_INIT;

/* Compare a name with a row (bsearch). */
static int
row_cmp(const void *key, const void *row)
{
	return strcmp(key, ((const struct event *)row)->name);
}

const struct event *
events_find(const char *name)
{
	return bsearch(name, events_table, events_count,
	    sizeof events_table[0], row_cmp);
}

bool
events_field_next(const char **spec, struct event_field *f)
{
	const char	*p = *spec, *lt;

	while (*p == ' ')
		p++;
	if (*p == '\0')
		return false;
	f->name = p;
	f->len = strcspn(p, " ?");
	f->optional = p[f->len] == '?';
	lt = memchr(p, '<', f->len);
	f->pattern = lt != NULL;
	f->prefix = lt != NULL ? (size_t)(lt - p) : f->len;
	p += f->len + f->optional;
	*spec = p;
	return true;
}

/* Whether name (len bytes) is the field f or one that its pattern takes. */
static bool
field_matches(const struct event_field *f, const char *name, size_t len)
{
	if (!f->pattern)
		return len == f->len && memcmp(name, f->name, len) == 0;
	return len > f->prefix && memcmp(name, f->name, f->prefix) == 0 &&
	    logfmt_name_ok(name + f->prefix, len - f->prefix);
}

int
events_field_index(const struct event *ev, const char *name, size_t len)
{
	const char		*spec = ev->fields;
	struct event_field	 f;
	int			 i;

	for (i = 0; events_field_next(&spec, &f); i++)
		if (field_matches(&f, name, len))
			return i;
	return -1;
}

void
events_hash_id(const char *name, char out[33])
{
	static const char	hex[] = "0123456789abcdef";
	unsigned char		d[16];
	char			in[160];
	size_t			i;

	if (sodium_init() < 0)
		fatalx("sodium_init failed");
	snprintf(in, sizeof in, "programs-cached:%s", name);
	crypto_generichash(d, sizeof d, (const unsigned char *)in, strlen(in),
	    NULL, 0);
	for (i = 0; i < sizeof d; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 0xf];
	}
	out[32] = '\0';
}

/* Fill event_ids (pthread_once: any thread may log first). */
static void
compute_ids(void)
{
	size_t	i;

	for (i = 0; i < events_count; i++)
		events_hash_id(events_table[i].name, event_ids[i]);
}

const char *
events_message_id(const struct event *ev)
{
	pthread_once(&event_ids_once, compute_ids);
	return event_ids[ev - events_table];
}

/* One row of the man page's list. */
static void
print_row(FILE *f, const struct event *ev)
{
	const char		*spec = ev->fields;
	struct event_field	 fd;

	fprintf(f, ".It Li %s Pq %s\n", ev->name, log_level_name(ev->prio));
	if ((ev->flags & EVENT_FATAL) == 0)
		fprintf(f, "%s\n.br\n", events_message_id(ev));
	fprintf(f, "%s.\n.br\n.No Fields:", ev->help);
	while (events_field_next(&spec, &fd)) {
		if (fd.optional)
			fprintf(f, " Oo Li %.*s Oc", (int)fd.len, fd.name);
		else
			fprintf(f, " Li %.*s", (int)fd.len, fd.name);
	}
	fprintf(f, "\n");
}

void
events_print_mdoc(FILE *f)
{
	size_t	i;

	fprintf(f, ".Bl -tag -width Ds\n");
	for (i = 0; i < events_count; i++)
		print_row(f, &events_table[i]);
	fprintf(f, ".El\n");
}
