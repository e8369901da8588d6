/*
 * rdwatch.h: Redis keyspace notifications, through hiredis's async API on
 * the event loop (hiredis/adapters/libevent.h).
 *
 * Redis publishes an event only for the classes its notify-keyspace-events
 * setting names (Redis >= 6.0 for keymiss; Debian 12 has 7.0.15):
 *   E   __keyevent@DB__:EVENT   carries the key        (one channel a kind)
 *   K   __keyspace@DB__:KEY     carries the event name (one channel a key)
 *   m   keymiss: every key of a GET, MGET or EXISTS that misses (hits are
 *       never published); e evicted; $ string commands (set); A is
 *       g$lshzxetd (not m, not n).
 * What each feature needs: reader misses Em, evictions Ee (the keyevent
 * channels: one subscription, not a pattern over every key), the change
 * key K$ (its own keyspace channel: set is a string command).
 *
 * CONFIG GET prints the setting canonically ("AKEm"); Redis 7.0 leaves n
 * out of what it prints when A is set, so in mode on a CONFIG SET of what
 * it printed plus what is missing drops n from a server that had "An".
 *
 * Sequence on each connection: AUTH (when there is a password), INFO
 * server (run_id, uptime: a changed run_id is a restarted server), CONFIG
 * GET notify-keyspace-events, in mode on a CONFIG SET adding what is
 * missing (keeping every flag already set; the watches of one process in
 * mode on take turns from GET to SET, so one cannot set over what another
 * just added; other processes are not ordered), then SUBSCRIBE to the
 * channels of the features available.  Subscribed, the connection can send
 * nothing but (un)subscriptions: a heartbeat re-SUBSCRIBEs the first
 * channel and expects Redis's confirmation, so a server that stopped
 * answering is noticed.  The db matters only for the channel names.
 */
#ifndef PCD_RDWATCH_H
#define PCD_RDWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
struct rdw;

/* The features a watch may ask for (a bit mask). */
#define RDW_MISSES	0x1	/* __keyevent@DB__:keymiss */
#define RDW_EVICTIONS	0x2	/* __keyevent@DB__:evicted */
#define RDW_CHANGE	0x4	/* __keyspace@DB__:<change key> */

enum rdw_mode {
	RDW_AUTO,	/* use the notifications the server has */
	RDW_ON		/* add the flags that are missing (CONFIG SET) */
};

enum rdw_state {
	RDW_DOWN,		/* not subscribed (connecting, or failed) */
	RDW_UP,			/* subscribed to info->active */
	RDW_UNAVAILABLE,	/* auto: none of the features is on */
	RDW_REFUSED		/* the server said no (AUTH, ACL, CONFIG SET) */
};

/* What the server said of itself on the last connection. */
struct rdw_info {
	char		 run_id[48];	/* "" if INFO was refused */
	uint64_t	 uptime;	/* seconds */
	char		 version[32];
	char		 flags[64];	/* notify-keyspace-events, as it printed */
	bool		 flags_known;	/* false: CONFIG GET refused (ACL) */
	unsigned	 active;	/* RDW_* subscribed to */
	unsigned	 missing;	/* RDW_* asked for but not on the server */
	/*
	 * When missing is not 0: the command that turns them on, keeping the
	 * flags already set: CONFIG SET notify-keyspace-events 'AKEm'.
	 */
	char		 config_set[128];
};

enum rdw_event_type {
	RDW_KEYMISS,
	RDW_EVICTED,
	RDW_CHANGED		/* an event on the change key */
};

struct rdw_event {
	enum rdw_event_type	 type;
	const char		*key;		/* borrowed for the call */
	size_t			 keylen;
	const char		*what;		/* CHANGED: the event ("set") */
	size_t			 whatlen;
	/* KEYMISS: it consumed an rdw_expect (one of the daemon's reads) */
	bool			 own;
};

/*
 * Callbacks, run on the event loop (never from inside rdw_new or
 * rdw_free); they may not call rdw_free on their own watch.
 */
struct rdw_cbs {
	void	(*event)(const struct rdw_event *, void *arg);
	/*
	 * The state changed (the first failure to come up is a change), or
	 * the watch came up again (each RDW_UP is told): why says
	 * what went wrong (DOWN, REFUSED: the server's reply), or what is
	 * missing (UP with info->missing, UNAVAILABLE).  info is NULL for
	 * DOWN.
	 */
	void	(*state)(enum rdw_state, const char *why,
		    const struct rdw_info *info, void *arg);
};

/*
 * The password for a new connection: *pw a malloc'ed string the watch
 * wipes and frees, or NULL for none; -1 with err set if it cannot be read
 * (the connection then fails with that reason).  Called at every connect,
 * so that a rotated password is picked up.
 */
typedef int	(*rdw_password_fn)(char **pw, char *err, size_t errlen,
		    void *arg);

struct rdw_opts {
	const char		*host;		/* NULL: socket (copied) */
	int			 port;
	const char		*socket;	/* unix socket path (copied) */
	int			 db;
	const char		*user;		/* ACL user, or NULL (copied) */
	rdw_password_fn		 password;	/* or NULL: no AUTH */
	void			*password_arg;
	enum rdw_mode		 mode;
	unsigned		 want;		/* RDW_* */
	const char		*change_key;	/* RDW_CHANGE (copied) */
	size_t			 change_keylen;
	/* Names resolved through it; NULL: hiredis's getaddrinfo (blocks). */
	struct evdns_base	*dns;
	long			 timeout_ms;	/* each step; 0: 5 s */
	long			 heartbeat_ms;	/* 0: 15 s */
	long			 backoff_min_ms;	/* 0: 100 ms */
	long			 backoff_max_ms;	/* 0: 30 s */
};

/*
 * A watch of one Redis server's db, connecting on the next turn of the
 * loop, reconnecting after every failure with an exponential backoff
 * (+-20 % jitter; from the minimum again once a watch lasted a second),
 * and every backoff_max after a refusal or while nothing is available
 * (an operator may turn the notifications on: the next connection sees
 * it).  A server that refuses CONFIG GET (ACL) in mode auto is still
 * subscribed to, with info->flags_known false; in mode on it is refused.
 */
struct rdw	*rdw_new(struct event_base *, const struct rdw_opts *,
		    const struct rdw_cbs *, void *arg);
/* Close and free; no callback runs. */
void		 rdw_free(struct rdw *);
enum rdw_state	 rdw_state(const struct rdw *);

/*
 * The daemon's own reads: keymiss events do not name the client, so the
 * daemon says which keys it is about to read (rdw_expect, before sending
 * the MGET or EXISTS) and which of them it then found (rdw_unexpect); the
 * next keymiss of an expected key consumes the expectation and comes with
 * own set.  Expectations last 10 to 20 s and are forgotten when the watch
 * reconnects; at most RDW_EXPECT_MAX are held (more are counted in
 * rdw_counts and not held).  Call on the loop's thread.
 */
#define RDW_EXPECT_MAX	200000
void		 rdw_expect(struct rdw *, const char *key, size_t keylen);
void		 rdw_unexpect(struct rdw *, const char *key, size_t keylen);

struct rdw_counts {
	uint64_t	 events;	/* delivered */
	uint64_t	 own;		/* of which the daemon's own */
	uint64_t	 bad;		/* messages that were not events */
	uint64_t	 connects;	/* times the watch came up */
	uint64_t	 expect_full;	/* expectations not held */
};
const struct rdw_counts	*rdw_counts(const struct rdw *);

/*
 * The flags a server needs for the features want, given the ones it has
 * (as CONFIG GET prints them): the features already on go into *have,
 * the letters to add into add (NUL-terminated, "" if none).  Pure; for the
 * CONFIG SET line and the tests.
 */
void		 rdw_flags_needed(const char *flags, unsigned want,
		    unsigned *have, char add[16]);

#endif
