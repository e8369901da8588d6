/*
 * chgsrc.h: Discovery's change key on its source (operations.md: the change
 * key), watched two ways: pushed where the source can push, and polled always.
 *
 * Discovery sets its Django cache key api_timestamp (the pickled float of
 * time.time()) on every save or delete of a catalogue model.  The source
 * is a Redis db or a set of memcached servers (config.h: change_backend,
 * change_servers, change_redis_*), by default the cache the daemon writes.
 *
 * Polls: one GET of the key per server every change_poll, on a connection
 * of this module's own (never the writer's: a source that refuses a read
 * must not mark the daemon's cache down).  The bytes are compared as they
 * are: a value of any bytes and any size is a value, and nothing is
 * decoded here.  The first answer of a server is the baseline; after it,
 * other bytes (or a key that appears) are a change; a key that disappears
 * (evicted, flushed, a restarted server) is no signal.  A server that
 * fails keeps its last bytes, so a key that moved while it was down is a
 * change when it answers again.
 *
 * The GETs are synchronous (libmemcached has no asynchronous get, and one
 * small read a second does not need one), each step bounded by
 * CHGSRC_IO_MS (or the configured cache timeouts, if shorter): a source
 * that accepts connections and never answers holds the loop at most that
 * long per poll; /metrics shows what polls cost and the longest one
 * (metrics.h: change_polls, change_poll_seconds, change_poll_max).
 *
 * Pushes (change_notify auto or on; never off): Redis, a keyspace
 * notification subscription to __keyspace@DB__:KEY (rdwatch.h; needs K$
 * in notify-keyspace-events: auto uses what the server has and says which
 * line to run, on adds the flags); memcached, a `watch mutations`
 * connection per server (mcwatch.h), whose item_store lines name the key.
 * A push only makes the next poll come at once: the change is what that
 * poll sees (told as CHGSRC_NOTIFY), or, if the poll fails, the push
 * itself (with no value).
 */
#ifndef PCD_CHGSRC_H
#define PCD_CHGSRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* The bound of each connect, send and read of a poll, milliseconds. */
#define CHGSRC_IO_MS	50

struct event_base;
struct chgsrc;

enum chgsrc_how {
	CHGSRC_POLL,		/* a poll saw other bytes */
	CHGSRC_NOTIFY		/* the source pushed a change of the key */
};

struct chgsrc_cbs {
	/*
	 * The key changed: its new value (borrowed for the call), or val
	 * NULL when a push could not be read back.  Runs on the loop.
	 */
	void	(*changed)(enum chgsrc_how, const void *val, size_t len,
		    void *arg);
	/*
	 * Polls (CHGSRC_POLL) or pushes (CHGSRC_NOTIFY) work (up) or not (why:
	 * what failed, or for pushes what the source lacks and the line
	 * that turns it on).  Told on every change only, and once at the
	 * first outcome of each.  Pushes configured off are never told.
	 */
	void	(*state)(enum chgsrc_how, bool up, const char *why,
		    void *arg);
};

/*
 * Watch cfg's change key on cfg's change source (everything copied),
 * polling every change_poll from now on (the first at once).  cfg must
 * have a change_key.
 */
struct chgsrc	*chgsrc_new(struct event_base *, const struct cfg *,
		    const struct chgsrc_cbs *, void *arg);
/* Close every connection; no callback runs.  NULL is fine. */
void		 chgsrc_free(struct chgsrc *);
/* Whether a and b watch the same key on the same source the same way. */
bool		 chgsrc_same(const struct cfg *a, const struct cfg *b);
/* Whether polls (or pushes) work now. */
bool		 chgsrc_up(const struct chgsrc *, enum chgsrc_how);

/*
 * The time a Python pickle of a float holds (what Discovery's
 * cache.set('api_timestamp', time.time(), None) stores through Django's
 * cache backends: protocols 2 to 5, read by unpickle.h), as unix
 * milliseconds; -1 if the bytes are anything else or the float is not a
 * time since 2001 and before 2286.  Pure.
 */
int64_t		 chgsrc_timestamp_ms(const void *val, size_t len);

#endif
