/*
 * state.h: the one owner of what the cache holds (design.md: What a refresh
 * does, Failures).
 *
 * The state is the last publish as this process knows it: the generation
 * it published (sites, program records, pathways), the entries now in the
 * cache (a snapshot), and how many successful refreshes in a row each key
 * has been absent for.  It is the same in every mode: the daemon keeps it
 * in memory across refreshes; --once, --domain and the daemon's first
 * refresh after a restart load it from the snapshot file, so "the
 * previous value" of a program, a pathway or a site is the same wherever
 * the run starts.
 *
 * state_publish() is where a refresh becomes the cache's contents: the
 * next generation is made by the failure rules (gen.h) against the last
 * publish, planned, written in phases through the writer (a program whose
 * value the cache refuses is treated like a failed detail, and the plan
 * made again, so that no index names it), stale keys deleted, and the
 * record (and file) changed only for what reached the cache.  A snapshot
 * of nothing is never saved.  The planning, writing and recording run on
 * the writer thread (wthread.h), step by step with the loop in between;
 * the loop is never held for them, and the caller hears of the result in
 * a callback.
 *
 * The file is written and fsynced by a POOL_SAVE job while the loop goes
 * on; the next publish (once it has written, before it replaces the
 * record: it waits for the save's end without holding the loop),
 * state_configure() or state_free() waits for it before freeing anything
 * it reads (snapshot_saved or snapshot_error is logged then, on the loop).
 */
#ifndef PCD_STATE_H
#define PCD_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "catalog.h"
#include "config.h"
#include "fetch.h"
#include "gen.h"
#include "keys.h"
#include "snapshot.h"
#include "store.h"
#include "writer.h"

struct pool;
struct state;
struct wthread;

/*
 * cfg, st (the loop's store: placement, servers up), w (the writer), kf
 * and pool (saves; NULL: saved in the call) are borrowed until
 * state_configure() or state_free().
 */
struct state	*state_new(const struct cfg *, struct store *,
		    struct wthread *w, const struct keyfn *, struct pool *);
/*
 * After the writer's jobs (a publish that wthread_stop() cut short is
 * abandoned: nothing of it is recorded or saved) and the last save.
 */
void		 state_free(struct state *);
/*
 * Other settings (SIGHUP; never while a publish runs).  With keys_changed
 * (servers, key function, value format...), what is recorded no longer
 * describes the cache: it is dropped, and the next publish writes
 * everything.
 */
void		 state_configure(struct state *, const struct cfg *,
		    struct store *, const struct keyfn *, bool keys_changed);
/*
 * Load the snapshot file into the state (start-up, --once).  Whether it
 * holds a real publish (at least one entry).
 */
bool		 state_load(struct state *);
/* The last published generation (borrowed), or NULL if none is known. */
const struct catalog	*state_generation(const struct state *);
/* What the cache holds (borrowed until the next publish), or NULL. */
const struct snapshot	*state_snapshot(const struct state *);

struct state_publish_opts {
	const struct writer_gate *gate;	/* may this process write (NULL) */
	bool	force;		/* publish what the shrink guard would hold */
	bool	skip_same;	/* skip values the cache holds (the daemon) */
	bool	every_site;	/* all sites refreshed: stale keys count */
	/*
	 * Whether server i holds what the record says, asked once per
	 * server when a publish starts (the daemon: monitor_confirmed, a
	 * round trip now and the monitor's word since the server last
	 * restarted).  With skip_same, a value is skipped as unchanged only
	 * on servers that do; on the others it is written, so that a down
	 * server fails the refresh for the keys it owns.  NULL: none does.
	 */
	bool	(*confirmed)(void *arg, size_t i);
	void	*confirmed_arg;
};

struct state_result {
	struct gen_counts	sites;
	size_t			programs;	/* program keys planned */
	size_t			pathways;
	size_t			keys[FAM_COUNT];
	struct write_stats	ws;
	size_t			deleted;	/* stale keys */
	bool			server_failed;	/* a cache server failed */
	bool			lease_lost;	/* stopped: not the writer */
	bool			complete;	/* every site, every entry */
	bool			published;	/* something new is in place */
};

/* A publish has ended: r is borrowed for the call. */
typedef void	(*state_done_cb)(const struct state_result *r, void *arg);

/*
 * Publish a refresh's report (its records are taken at once; the caller
 * frees fr when it likes): make the next generation, plan, write in
 * phases, and record what reached the cache (saved to the snapshot file
 * when it changed).  done runs on the loop once it is over (at once when
 * there is nothing to write), with r->complete when everything of every
 * site is in the cache (each cause of anything less logged where it is
 * known).  One publish at a time; opts is copied, its gate borrowed until
 * done.  A publish that wthread_stop() cuts short never calls done: the
 * record and the file stay as the last complete publish left them.
 */
void		 state_publish(struct state *, struct fetch_result *fr,
		    const struct state_publish_opts *, state_done_cb done,
		    void *arg);
/* Whether a publish has started and not ended. */
bool		 state_publishing(const struct state *);

struct state_dry_opts {
	bool		 force;		/* as state_publish_opts */
	bool		 every_site;	/* as state_publish_opts */
	const char	*diff;		/* a key whose changes to print */
};

/*
 * --dry-run: what publishing fr would do, printed on out (dryrun.h:
 * written, deleted or held; nothing is written, nothing recorded): the
 * stale keys with the counts this state has (a new process starts them
 * from the snapshot file, which does not keep them: every key of it
 * present).  0 when every site would be published whole, -1 otherwise.
 */
int		 state_dry_run(struct state *, struct fetch_result *fr,
		    const struct state_dry_opts *, FILE *out);

#endif
