/*
 * store_be.h: what a store backend implements, and the state every backend
 * shares (server names, up/down, the retry pause, the last error).
 *
 * Only store.c and the backends (store_mc.c, store_redis.c) include this:
 * the rest of the daemon sees store.h alone.  store.c checks nothing on the
 * backends' behalf beyond what is written here; each backend function has
 * the contract of the store.h function of the same name.
 */
#ifndef PCD_STORE_BE_H
#define PCD_STORE_BE_H

#include "store.h"

/* One server as every backend sees it. */
struct store_server {
	char		*name;		/* as logs, metrics and /readyz say it */
	bool		 up;
	uint64_t	 retry_at;	/* mono_ms when down */
	char		 error[256];	/* why it is down (no secrets) */
	bool		 announced;	/* this batch's store_announce sent */
};

/* What a deferred store (store_defer) saw, kept for store_replay(). */
enum store_note_kind {
	STORE_NOTE_DOWN,	/* store_mark_down */
	STORE_NOTE_UP,		/* store_mark_up */
	STORE_NOTE_REFUSED,	/* store_refused */
	STORE_NOTE_RETRIED	/* store_retried */
};

struct store_note {
	enum store_note_kind	 kind;
	size_t			 srv;
	const char		*op;		/* a literal */
	char			*key;		/* or NULL */
	size_t			 bytes;
	size_t			 count;
	size_t			 retried;	/* STORE_NOTE_RETRIED */
	char			*error;		/* or NULL */
};

/* What a deferred store kept since store_take_log(). */
struct store_log {
	struct store_note	*notes;
	size_t			 nnotes;
	size_t			 capnotes;
	uint64_t		 sets, set_bytes, deletes, gets;
};

struct store {
	const struct store_be	*be;
	uint64_t		 serial;	/* store_serial() */
	void			*impl;		/* the backend's own */
	size_t			 n;
	struct store_server	 sv[STORE_MAX_SERVERS];
	bool			 deferred;	/* store_defer() */
	struct store_log	 kept;		/* (deferred) */
	struct store_reads	 reads;		/* store_set_reads() */
	bool			 announce;	/* store_set_announce() */
};

struct store_be {
	const char	*name;		/* "memcached", "redis" */
	/* Fill st->n, the names (xstrdup) and st->impl; fatal on misuse. */
	void		(*open)(struct store *, const struct cfg *);
	void		(*close)(struct store *);
	bool		(*fits)(const struct store *, size_t, size_t, size_t);
	size_t		(*place)(const struct store *, const char *, size_t,
			    size_t *);
	enum store_rc	(*set)(struct store *, size_t, const char *, size_t,
			    const void *, size_t, uint32_t, size_t);
	enum store_rc	(*del)(struct store *, size_t, const char *, size_t);
	int		(*flush)(struct store *, size_t, store_refused_cb,
			    void *);
	int		(*stats)(struct store *, size_t, struct store_stats *);
	void		(*reconnect)(struct store *, size_t);
	int		(*mget)(struct store *, size_t, const char *const *,
			    const size_t *, size_t, store_hit_cb, void *);
	int		(*lease)(struct store *, size_t, enum store_lease_op,
			    const char *, size_t, const char *, long, char *,
			    size_t);
	void		(*probe)(struct store *, bool);
	void		(*announce)(struct store *, size_t);	/* or NULL */
};

extern const struct store_be	store_be_memcached;
extern const struct store_be	store_be_redis;

/*
 * A store on another backend: the tests' own (tests/unit/testbe.h), which
 * refuses, fails and loses writes on command.  store_new() is this with
 * the backend the configuration's section names.
 */
struct store	*store_new_with(const struct store_be *, const struct cfg *);

/* How long a failed server is left alone before it is tried again. */
#define STORE_RETRY_MS	1000

/*
 * Server i failed: count it, log it once (memcached_error, with the
 * backend), remember why, and pause it.  The backend drops its own
 * connections.
 */
void	store_mark_down(struct store *, size_t i, const char *op,
	    const char *error);
/* Server i answered: log memcached_recovered if it had been down. */
void	store_mark_up(struct store *, size_t i);
/*
 * Server i did not apply a write (op "set" or "delete"): count it and log
 * it (memcached_error with the key and its value's bytes, or, with count
 * above 0, a summary of count refusals naming the first).  key may be
 * NULL.
 */
void	store_refused(struct store *, size_t i, const char *op,
	    const char *key, size_t keylen, size_t bytes, size_t count,
	    const char *error);
/*
 * A batch's SETs that server i answered with an error (Redis: the old
 * value stays): refused of them not written, retried sent again after
 * -LOADING or -BUSY; key, bytes and error those of the first.  One
 * memcached_error, a warning when none was refused in the end.
 */
void	store_retried(struct store *, size_t i, const char *key,
	    size_t bytes, size_t refused, size_t retried, const char *error);
/* Whether server i may be tried now (up, or its pause is over). */
bool	store_may_try(const struct store *, size_t i);

#endif
