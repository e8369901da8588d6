/*
 * writer.h: the one way the cache is changed (design.md: What a refresh does,
 * Failures).
 *
 * A publish, a repair after a restart or a miss, SIGUSR1 and the deletion
 * of stale keys all go through here: entries of one phase pipelined to
 * the servers each belongs on, in batches of at most 256 entries (or 16 MB
 * of values) per server, each ended by a round trip to every server it
 * went to, and so is the phase; deletes likewise.  Every entry gets an
 * outcome; refusals are always seen (the store reads back what it cannot
 * otherwise know), and a write whose outcome is unknown counts as failed.
 *
 * The gate (the writer's lease) is asked immediately before every batch
 * is sent, and the store sends nothing before that: a process paused
 * anywhere (SIGSTOP, a VM pause) has at most the one batch it had let
 * through in flight when it resumes.  A closed gate drops the batch
 * queued, unsent (store_reconnect), and its entries stay WRITE_PENDING.
 *
 * These functions run on the writer thread (wthread.h): they log nothing
 * and touch nothing of the loop's; what must be said is kept in the
 * report for writer_report_log() on the loop.
 */
#ifndef PCD_WRITER_H
#define PCD_WRITER_H

#include <stdbool.h>
#include <stddef.h>

#include "entry.h"
#include "store.h"

enum write_outcome {
	WRITE_PENDING,		/* not tried (yet) */
	WRITE_OK,		/* written (or deleted), and the server did it */
	WRITE_SAME,		/* the cache holds these bytes: not sent */
	WRITE_TOO_BIG,		/* over the item size: not sent, old value stays */
	WRITE_KEPT,		/* sent and refused, old value stays (Redis) */
	WRITE_INVALID,		/* the key function refuses the key */
	WRITE_REFUSED,		/* sent and refused: the key holds nothing
				   (memcached drops the old item) */
	WRITE_DOWN		/* a server was down or failed: unknown */
};

/* How a call ended: what the caller must do next. */
enum writer_rc {
	WRITER_OK,		/* every entry has its outcome */
	WRITER_FAILED,		/* a server failed: write no later phase */
	WRITER_LEASE_LOST	/* the gate closed: nothing more was sent */
};

/*
 * Whether this process may write now (the writer's lease, operations.md:
 * Several hosts): asked on the writer thread before every batch is sent, so it
 * must be thread-safe.  NULL: always.
 */
struct writer_gate {
	bool	(*may_write)(void *arg);
	void	*arg;
};

struct write_stats {
	size_t	written;	/* entries confirmed written */
	size_t	skipped;	/* the same bytes were there */
	size_t	failed;		/* any other outcome */
	size_t	bytes;		/* value bytes written */
};

/* What the loop logs for the writer: a value too big, a key invalid. */
struct writer_note {
	char			*key;		/* the entry's (a copy) */
	size_t			 bytes;
	size_t			 srv;		/* the server (too big) */
	enum write_outcome	 what;		/* WRITE_TOO_BIG, WRITE_INVALID */
};

/* What a call saw besides the outcomes (added to by each call). */
struct writer_report {
	struct write_stats	 ws;
	struct writer_note	*notes;
	size_t			 nnotes;
	size_t			 capnotes;
	bool			 lost;		/* the gate closed */
};

/*
 * Write the entries of v[0..n) whose phase is phase and whose out[] is
 * WRITE_PENDING, setting out[] for each; the caller marks what it knows
 * the cache holds as WRITE_SAME first (those are counted, not sent), and
 * entries with another outcome are left alone (a phase can be written
 * again after the caller changed some).  Refusals are counted in rep's
 * ws, and values too big and invalid keys noted (rep may be NULL).  On
 * WRITER_LEASE_LOST what was not sent stays WRITE_PENDING.
 */
enum writer_rc	writer_phase(struct store *, const struct entry *v, size_t n,
		    int phase, const struct writer_gate *,
		    enum write_outcome *out, struct writer_report *rep) PCD_WUR;
/*
 * Delete v[0..n) from the servers each is on (stale keys): out[i] is
 * WRITE_OK once every server has done it, WRITE_DOWN otherwise, and
 * WRITE_PENDING if the gate closed first.
 */
enum writer_rc	writer_delete(struct store *, const struct entry *v,
		    size_t n, const struct writer_gate *,
		    enum write_outcome *out);

/* Whether an outcome means the cache holds the entry's value. */
bool		writer_in_cache(enum write_outcome);

/*
 * On the loop: log what rep noted (memcached_error, naming st's servers),
 * and write_stopped if the gate closed (unless stopping: the process is
 * shutting down, not losing its lease).
 */
void		writer_report_log(const struct writer_report *,
		    const struct store *st, bool stopping);
void		writer_report_free(struct writer_report *);

#endif
