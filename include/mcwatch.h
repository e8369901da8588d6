/*
 * mcwatch.h: memcached's `watch` stream, the one place where the daemon
 * speaks memcached's text protocol itself (libmemcached has no call for it).
 *
 * A connection that sends `watch fetchers evictions connevents` (memcached
 * >= 1.5.17; Debian 12 has 1.6.18) is answered "OK\r\n" and from then on
 * receives one line per event of those streams, from every client of the
 * server, ended by "\n" (measured on 1.6.18; the formats are memcached's
 * logger.c):
 *
 *   ts=S.U gid=N type=item_get key=K status=found|not_found|flushed|expired
 *       clsid=N cfd=N size=N
 *   ts=S.U gid=N type=item_store key=K status=stored|not_stored|exists|
 *       not_found|too_large|no_memory cmd=set|add|replace|append|prepend|
 *       cas|null|na ttl=N clsid=N cfd=N size=N          (`mutations`)
 *   ts=S.U gid=N type=eviction key=K fetch=yes|no ttl=N la=N clsid=N size=N
 *   ts=S.U gid=N type=conn_new rip=A rport=N transport=T cfd=N
 *   ts=S.U gid=N type=conn_close rip=A rport=N transport=T reason=R cfd=N
 *   skipped=N             N lines this watcher lost because it fell behind
 *
 * K is the key URI-encoded (every byte but A-Z a-z 0-9 - . _ ~ as %XX);
 * U is the microseconds printed without leading zeros (S.9945 is S+9,945
 * us: memcached prints "%d.%d"); cfd is the server's descriptor of the
 * client's connection.  Lines of other streams or types (extwrite,
 * lru_crawler, ...) parse as MCW_OTHER.  Every fetch is logged, the
 * fetches inside a set, add, delete, touch or incr too (a set of a missing
 * key logs item_get not_found, then item_store).
 *
 * What the server refuses with: "CLIENT_ERROR watch commands not allowed"
 * (started with -W), "ERROR" (a stream it does not have, or no watch at
 * all), "WATCHER_TOO_MANY log watcher limit reached" (20 watchers),
 * "WATCHER_FAILED failed to add log watcher".
 *
 * Lines are lost in two places: a watcher whose socket is full is skipped
 * and told skipped=N before its next line; and a worker thread whose log
 * buffer (64 KiB) is full before memcached's logger thread drains it drops
 * lines silently (stats log_worker_dropped, server-wide).  The logger
 * thread sleeps up to 1 s while the server is idle, so the first line
 * after an idle spell may come that late.
 */
#ifndef PCD_MCWATCH_H
#define PCD_MCWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The longest line memcached sends, "\n" included: its logger formats a
 * line into a 4096-byte buffer and drops what does not fit.  A longer
 * line is not memcached's: it is an error.
 */
#define MCW_LINE_MAX	4096
/* The longest key, decoded (memcached's KEY_MAX_LENGTH). */
#define MCW_KEY_MAX	250
/*
 * The key whose fetch marks a connection as a programs-cached daemon's own
 * (store_announce in store.h sends a no-reply delete of it): every line of
 * that connection is flagged own until the server says it closed.
 */
#define MCW_SELF_KEY	"programs-cached:self"

enum mcw_kind {
	MCW_OK,		/* "OK": the watch has started */
	MCW_REFUSED,	/* ERROR, CLIENT_ERROR, WATCHER_*, SERVER_ERROR */
	MCW_SKIPPED,	/* skipped=N */
	MCW_GET,	/* type=item_get */
	MCW_STORE,	/* type=item_store */
	MCW_EVICTION,	/* type=eviction */
	MCW_CONN_NEW,	/* type=conn_new */
	MCW_CONN_CLOSE,	/* type=conn_close */
	MCW_OTHER	/* a well-formed line of another type */
};

/* item_get's status, in memcached's order. */
enum mcw_get_status {
	MCW_NOT_FOUND,
	MCW_FOUND,
	MCW_FLUSHED,
	MCW_EXPIRED
};

/* item_store's status, in memcached's order. */
enum mcw_store_status {
	MCW_NOT_STORED,
	MCW_STORED,
	MCW_EXISTS,
	MCW_STORE_NOT_FOUND,
	MCW_TOO_LARGE,
	MCW_NO_MEMORY
};

/* item_store's cmd, in memcached's order; MCW_CMD_NA for "na". */
enum mcw_store_cmd {
	MCW_CMD_NULL,
	MCW_CMD_ADD,
	MCW_CMD_SET,
	MCW_CMD_REPLACE,
	MCW_CMD_APPEND,
	MCW_CMD_PREPEND,
	MCW_CMD_CAS,
	MCW_CMD_NA
};

/* One line, parsed.  Fields that a kind does not have are 0 (cfd -1). */
struct mcw_line {
	enum mcw_kind	 kind;
	uint64_t	 ts_sec;
	uint32_t	 ts_usec;
	uint64_t	 gid;
	int		 status;	/* GET: mcw_get_status, STORE: ..._status */
	int		 cmd;		/* STORE: enum mcw_store_cmd */
	long		 cfd;		/* GET, STORE, CONN_*: else -1 */
	uint64_t	 skipped;	/* SKIPPED */
	uint64_t	 size;		/* GET, STORE, EVICTION: value bytes */
	bool		 fetched;	/* EVICTION: fetch=yes */
	/*
	 * Set by the connection (never by mcw_parse): the line comes from a
	 * connection that announced itself with MCW_SELF_KEY.
	 */
	bool		 own;
	/* GET, STORE, EVICTION: the key decoded (NUL-terminated; binary) */
	size_t		 keylen;
	unsigned char	 key[MCW_KEY_MAX + 1];
	/* REFUSED: the server's reply; OTHER: the type (borrowed from input) */
	const char	*text;
	size_t		 textlen;
};

/*
 * Parse one line (len bytes, without its "\n"; a "\r" before it is
 * allowed).  0, or -1 with *why (a static string) saying what is wrong:
 * not printable ASCII, over MCW_LINE_MAX, a field missing, repeated or out
 * of range, a key that is not URI-encoded or decodes to more than
 * MCW_KEY_MAX bytes, an unknown reply.  Fields a known type does not have
 * are ignored (a later memcached may add some).  Never reads past len.
 */
int	mcw_parse(const char *line, size_t len, struct mcw_line *out,
	    const char **why);

/*
 * Decode memcached's URI encoding of a key (%XX, upper or lower case hex;
 * only A-Z a-z 0-9 - . _ ~ appear bare) into out (NUL-terminated).
 * Returns the decoded length, or -1 if the input is not such an encoding
 * or decodes to more than MCW_KEY_MAX bytes.
 */
int	mcw_uridecode(const char *in, size_t len,
	    unsigned char out[MCW_KEY_MAX + 1]);

/* --- one watch connection to one server, on the event loop ----------- */

struct event_base;
struct evdns_base;
struct mcw;

enum mcw_state {
	MCW_DOWN,		/* not watching (connecting, or failed) */
	MCW_UP,			/* the server said OK: lines flow */
	MCW_UNAVAILABLE		/* the server refused the watch (-W, ...) */
};

/* What the server said of itself before the watch (its `stats`). */
struct mcw_info {
	long		 pid;
	uint64_t	 uptime;		/* seconds */
	char		 version[32];
	uint64_t	 worker_dropped;	/* log_worker_dropped */
	uint64_t	 watcher_skipped;	/* log_watcher_skipped */
};

/*
 * Callbacks, run on the event loop, never from inside mcw_new or
 * mcw_free.  They may not call mcw_free on their own connection.
 */
struct mcw_cbs {
	/*
	 * Every line after OK, own flagged (the line is borrowed for the
	 * call).  MCW_REFUSED never comes here; MCW_SKIPPED does (and is
	 * counted).
	 */
	void	(*line)(const struct mcw_line *, void *arg);
	/*
	 * The state changed (only on a change, and the first failure to
	 * come up is one): MCW_UP with info (the server's
	 * stats, read on this connection just before the watch: compare pid
	 * and uptime with the last UP to tell a restart); MCW_DOWN with why
	 * (connect failed, timed out, closed, a line that is not memcached's);
	 * MCW_UNAVAILABLE with why = the server's reply.  info is NULL except
	 * for MCW_UP.
	 */
	void	(*state)(enum mcw_state, const char *why,
		    const struct mcw_info *info, void *arg);
};

struct mcw_opts {
	const char		*host;		/* copied */
	int			 port;
	/* "fetchers evictions connevents", "mutations", ... (copied) */
	const char		*streams;
	/* Names resolved through it; NULL: getaddrinfo, which may block. */
	struct evdns_base	*dns;
	long			 timeout_ms;	/* connect, stats and OK; 0: 5 s */
	long			 backoff_min_ms;	/* 0: 100 ms */
	long			 backoff_max_ms;	/* 0: 30 s */
	/*
	 * Keep memcached's logger awake: every awake_ms while watching, a get
	 * of MCW_SELF_KEY on a second connection (its lines come flagged
	 * own).  memcached's logger thread sleeps up to 1 s when it finds
	 * nothing, and after an idle spell of 2 s the first line took 240 to
	 * 350 ms (1.6.18); with 100 ms here every line came within 20 ms.
	 * 0: off.
	 */
	long			 awake_ms;
};

/* Counters since mcw_new (the connection keeps them across reconnects). */
struct mcw_counts {
	uint64_t	 lines;		/* parsed lines delivered */
	uint64_t	 bad;		/* lines that did not parse (dropped) */
	uint64_t	 skipped;	/* the sum of the server's skipped=N */
	uint64_t	 connects;	/* times the watch started */
	uint64_t	 bytes;
};

/*
 * A connection to host:port that reads the server's stats, sends `watch
 * STREAMS`, and delivers each line to cbs->line; started at once.  It
 * reconnects after every failure, with an exponential backoff between
 * backoff_min and backoff_max (+-20 % jitter; back to the minimum once a
 * watch lasted a second), and after a refusal every backoff_max (the
 * server may be restarted without -W).  Each read callback handles at
 * most 16 KiB, so a flood of lines never holds the loop; a line over
 * MCW_LINE_MAX is dropped (counted in bad) up to its end.  The input
 * buffer is a partial line plus one read: a watcher that falls behind
 * leaves the data in the kernel and the server skips lines (skipped=N),
 * which is counted.  The daemon's own connections are learnt from
 * MCW_SELF_KEY lines and forgotten at their conn_close (or a conn_new on
 * the same cfd), which needs the connevents stream.
 */
struct mcw	*mcw_new(struct event_base *, const struct mcw_opts *,
		    const struct mcw_cbs *, void *arg);
/* Close the connection and free it; no callback runs. */
void		 mcw_free(struct mcw *);
enum mcw_state	 mcw_state(const struct mcw *);
const struct mcw_counts	*mcw_counts(const struct mcw *);

#endif
