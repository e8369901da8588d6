/*
 * store.h: the cache servers, memcached (store_mc.c, libmemcached) or
 * Redis (store_redis.c, hiredis), chosen by the configuration's section.
 * Every cache operation of the daemon goes through these functions,
 * whatever the backend (include/store_be.h is what a backend implements).
 *
 * Redis (operations.md: Redis) is one server: every key is placed on it,
 * writes are pipelined SETs with no expiry whose replies are read at
 * store_flush (an error reply, -OOM, -READONLY or -NOAUTH, is a refused write
 * that keeps the old value; -LOADING and -BUSY are sent again a few times
 * first), keys have no length limit, and values carry no flags: store_mget
 * reports the flags the configuration writes (1 for pickle), so callers
 * compare values the same way for both backends.
 *
 * memcached: each server has its own connection: the daemon decides placement itself
 * (pymemcache's rendezvous hashing is not among libmemcached's
 * distributions), so every key goes to exactly the server the LMS reads it
 * from.  Writes are pipelined without replies (NOREPLY + BUFFER_REQUESTS:
 * one round trip per batch instead of per key, measured), so
 * sizes and keys are checked here before sending, and store_flush() ends
 * each batch with a round trip that proves the server has processed it.
 *
 * A server that fails is marked down, logged once (memcached_error), and
 * skipped until it is tried again after a short pause; the caller learns
 * which writes did not happen.
 *
 * A store is used by one thread at a time.  The writer thread has a store
 * of its own, made from the same configuration (store_defer): what it
 * sees is kept, not logged or counted, and store_replay() gives it to the
 * loop's store afterwards, so that logs, metrics and /readyz are the
 * loop's and say the same whichever store saw it.
 */
#ifndef PCD_STORE_H
#define PCD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util.h"

/* At most this many servers (placement arrays are fixed). */
#define STORE_MAX_SERVERS	64

struct store;

struct store	*store_new(const struct cfg *);
void		 store_free(struct store *);
/*
 * Make st the writer thread's: from now on it logs nothing and bumps no
 * metric; what it would have said is kept, in order, for store_replay().
 */
void		 store_defer(struct store *st);
struct store_log;
/*
 * On the thread that uses the deferred store st: what it kept since the
 * last call (st forgets it), or NULL if nothing.
 */
struct store_log *store_take_log(struct store *st);
/*
 * On the loop: log and count what a deferred store kept, and make to's
 * servers (the same configuration) follow its ups and downs, as if to had
 * seen them (memcached_error, memcached_recovered: logged once per change
 * of to's state).  Frees log (NULL: nothing).
 */
void		 store_replay(struct store_log *log, struct store *to);
/*
 * A number no other store of this process has had: whoever keeps a
 * borrowed store across calls tells a new one by it (an address can be
 * reused once the old one is freed).
 */
uint64_t	 store_serial(const struct store *);

size_t		 store_nservers(const struct store *);
const char	*store_server_name(const struct store *, size_t);
/* Whether the server answered the last time it was asked. */
bool		 store_server_up(const struct store *, size_t);
/* "memcached" or "redis": for logs, metrics and /readyz. */
const char	*store_backend(const struct store *);
/* Why server i is down ("" if it is up); no secrets in it. */
const char	*store_server_error(const struct store *, size_t);
/*
 * Bound what follows by a short timeout (50 ms, or the configured ones if
 * shorter) until store_probe(st, false): the monitor's stats and reads,
 * so that a stopped server cannot stall the event loop for seconds.
 * Writes keep io_timeout: a large batch may take longer to be processed.
 */
void		 store_probe(struct store *, bool);
/* Let the next operation try servers that are down now, at once. */
void		 store_retry_now(struct store *);
/* Whether a value of len bytes under a keylen-byte key fits on server i. */
bool		 store_fits(const struct store *, size_t i, size_t keylen,
		    size_t len);

/*
 * The servers a wire key belongs on: idx[0] for rendezvous and ketama,
 * every server for "all".  Returns how many.
 */
size_t		 store_place(const struct store *, const char *key,
		    size_t keylen, size_t idx[STORE_MAX_SERVERS]);

enum store_rc {
	STORE_OK,		/* sent */
	STORE_TOO_BIG,		/* over the server's item size: not sent */
	STORE_DOWN,		/* server down: not sent */
	STORE_ERROR		/* libmemcached refused it (logged) */
};

/*
 * Queue a set (exptime 0) on server i: nothing is sent before
 * store_flush(i), and store_reconnect(i) drops it unsent.  key and val are
 * borrowed: they must stay valid until then.  tag is the caller's; it
 * comes back through store_flush's refused callback if the server did not
 * take the value.
 */
enum store_rc	 store_set(struct store *, size_t i, const char *key,
		    size_t keylen, const void *val, size_t len,
		    uint32_t flags, size_t tag) PCD_WUR;
/* Queue a delete on server i (sent by store_flush, like a set). */
enum store_rc	 store_delete(struct store *, size_t i, const char *key,
		    size_t keylen);

/*
 * A write the server did not apply, or whose outcome is unknown.  kept:
 * the server refused it and still holds the key's old value (Redis: an
 * error reply changes nothing); otherwise the key holds nothing (memcached
 * drops the old item when it refuses a set).
 */
typedef void	(*store_refused_cb)(size_t tag, bool kept, void *arg);

/*
 * Send everything queued on server i and wait until the server has done it
 * (the writer's lease is asked just before: what is queued is what a process
 * paused at that moment may still send).  Refusals are always seen (design.md:
 * Failures): NOREPLY hides memcached's SERVER_ERROR answers, so the server's
 * store_no_memory and store_too_large counters are read before and after the
 * batch, and when they moved (or cannot be read) every value of the batch is
 * read back; each one missing or different is reported through refused (may be
 * NULL).  0, or -1 if the server failed on the way (it is then marked down and
 * none of its writes since the last flush can be trusted; they are not
 * reported one by one).
 */
int		 store_flush(struct store *, size_t i, store_refused_cb,
		    void *arg) PCD_WUR;

/*
 * What restart detection needs: an id that changes when the server
 * restarts (memcached's pid as text, Redis's run_id) and its uptime.
 * pid is memcached's pid, or for Redis a number derived from run_id (a
 * container's redis-server is always pid 1): compare id, or pid.
 */
struct store_stats {
	long		pid;
	unsigned long	uptime;		/* seconds */
	char		id[64];
};

/*
 * Read server i's stats (memcached: stats; Redis: INFO server) over a
 * fresh replying connection (stats callbacks
 * never fire on the NOREPLY write connection of libmemcached 1.1).
 * A down server is asked too (these calls are the retries); one that
 * answers is marked up (memcached_recovered).  0, or -1 (logged once per
 * change of state).
 */
int		 store_stats(struct store *, size_t i, struct store_stats *);
/*
 * Drop server i's write connection and what is queued on it, unsent:
 * after a restart its socket is dead and anything buffered on it would be
 * lost without an error; when the lease is lost, nothing queued may go.
 * The next write connects again at once, even to a server paused as down.
 */
void		 store_reconnect(struct store *, size_t i);

/* One key found by store_mget: its index in the request, and its value. */
typedef void	(*store_hit_cb)(size_t j, const void *val, size_t len,
		    uint32_t flags, void *arg);

/*
 * Ask server i for n keys, in bounded batches, on the connection that
 * writes: memcached answers in order, so every write sent before is seen.
 * cb runs for each key present (borrowed value, valid during the call).
 * 0, or -1 if the server failed (marked down, logged once).
 */
int		 store_mget(struct store *, size_t i, const char *const *keys,
		    const size_t *lens, size_t n, store_hit_cb, void *arg);

/*
 * The writer's lease (lease.h) on server i: key holds id for ttl_ms.
 * TAKE sets it only if nobody holds it (memcached add, Redis SET NX PX);
 * RENEW extends it only while it holds id, or takes it again if it is gone
 * (memcached gets + cas, a Redis script); RELEASE deletes it only while it
 * holds id.  0 done, 1 another holder has it (not taken, or lost), -1 the
 * server could not say (why in err).  Synchronous, on a connection of its
 * own, bounded by the configured timeouts.
 */
enum store_lease_op {
	STORE_LEASE_TAKE,
	STORE_LEASE_RENEW,
	STORE_LEASE_RELEASE
};
int		 store_lease(struct store *, size_t i, enum store_lease_op,
		    const char *key, size_t keylen, const char *id,
		    long ttl_ms, char *err, size_t errlen);

/*
 * Mark what follows on server i's write connection as the daemon's own, so
 * that a reader watch never counts it (operations.md: What the LMS misses).
 * memcached: queues a no-reply delete of MCW_SELF_KEY (mcwatch.h) ahead of the
 * next batch on that connection, sent with it (no round trip); the watch
 * learns the connection's cfd from that line.  Call it before every batch of
 * sets, deletes or gets on server i: a reconnect in between gives the
 * connection a new cfd, and the batch's own line comes first on it.  Redis:
 * nothing (keymiss events do not name the client; see rdwatch.h's rdw_expect).
 */
void		 store_announce(struct store *, size_t i);
/*
 * Whether store_set, store_delete and store_mget announce (store_announce)
 * by themselves: on while a reader watch needs it (rwatch.c); off by
 * default, so that --show, --verify and --once send nothing extra.
 */
void		 store_set_announce(struct store *, bool on);

/*
 * Who is told of the daemon's own reads (the Redis reader watch, whose
 * keymiss events do not name the client: rdw_expect, rdw_unexpect):
 * asking(key) for every key of a store_mget before it is sent, found(key)
 * for each one the server had.  NULL members: nobody.  With
 * store_set_announce on, store_set, store_delete and store_mget call
 * store_announce themselves (once per batch, ended by store_flush or
 * store_reconnect; before every mget).
 */
struct store_reads {
	void	(*asking)(void *arg, size_t i, const char *key, size_t len);
	void	(*found)(void *arg, size_t i, const char *key, size_t len);
	void	*arg;
};
void		 store_set_reads(struct store *, const struct store_reads *);

/*
 * The Redis password to send: password (the URL's) if not NULL, else the
 * contents of the file path (its line ends dropped; none if path is NULL,
 * or optional and it does not exist): the configuration resolved
 * password_file or systemd's credential redis-password.  *pw NULL if
 * none, else malloc'ed (secret_free it).  -1 with err set if the file
 * cannot be read.  Called at every connect: a rotated password is used.
 */
int		 store_redis_password(const char *password, const char *path,
		    bool optional, char **pw, char *err, size_t errlen);

#endif
