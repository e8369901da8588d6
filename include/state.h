/*
 * state.h: the one owner of what the cache holds (SPEC §4, §7).
 *
 * The state is the last publish as this process knows it: the generation
 * it published (sites, program records, pathways), the entries now in the
 * cache (a snapshot), each site's program count for the shrink guard, and
 * how many successful refreshes in a row each key has been absent for.
 * It is the same in every mode: the daemon keeps it in memory across
 * refreshes; --once, --domain and the daemon's first refresh after a
 * restart load it from the snapshot file, so "the previous value" of a
 * program, a pathway or a site is the same wherever the run starts.
 *
 * state_publish() is where every failure rule is decided: a site whose
 * list failed or that shrank too much is carried over from the previous
 * generation, a program whose value the cache refused is treated like a
 * failed detail, an index never names a program whose value is not in the
 * cache, and the record (and file) changes only for what reached the
 * cache.  A snapshot of nothing is never saved.
 *
 * The file is written and fsynced on a thread of its own while the loop
 * goes on; the next state_publish() (once it has written, before it
 * replaces the record), state_configure() or state_free() waits for it
 * before freeing anything it reads (snapshot_saved or snapshot_error is
 * logged when it ends).
 */
#ifndef PCD_STATE_H
#define PCD_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "config.h"
#include "keys.h"
#include "snapshot.h"
#include "store.h"
#include "writer.h"

struct state;

/* cfg, st and kf are borrowed until state_configure() or state_free(). */
struct state	*state_new(const struct cfg *, struct store *,
		    const struct keyfn *);
void		 state_free(struct state *);
/*
 * Other settings (SIGHUP).  With keys_changed (servers, key function,
 * value format...), what is recorded no longer describes the cache: it is
 * dropped, and the next publish writes everything.
 */
void		 state_configure(struct state *, const struct cfg *,
		    struct store *, const struct keyfn *, bool keys_changed);
/*
 * Load the snapshot file into the state (start-up, --once).  Whether it
 * holds a real publish (at least one entry).
 */
bool		 state_load(struct state *);
/* The last published generation (borrowed), or NULL if none is known. */
struct catalog	*state_generation(const struct state *);
/* What the cache holds (borrowed until the next publish), or NULL. */
const struct snapshot *state_snapshot(const struct state *);
/* A site's program count at its last publish, or -1 if unknown. */
long long	 state_site_programs(const struct state *, const char *domain);

struct state_publish_opts {
	const struct writer_gate *gate;	/* may this process write (NULL) */
	bool	force;		/* publish what the shrink guard would hold */
	bool	skip_same;	/* skip values the cache holds (the daemon) */
	bool	every_site;	/* all sites refreshed: stale keys count */
};

struct state_result {
	size_t			sites;
	size_t			sites_ok;	/* fetched whole, all written */
	size_t			sites_partial;
	size_t			sites_failed;	/* carried over */
	size_t			sites_held;	/* carried over: shrink guard */
	size_t			sites_unconfigured;	/* [] lists */
	size_t			programs;	/* program keys planned */
	size_t			pathways;
	size_t			keys[FAM_COUNT];
	struct write_stats	ws;
	size_t			deleted;	/* stale keys */
	bool			complete;	/* every site, every entry */
	bool			published;	/* something new is in place */
};

/*
 * Publish a refresh's generation (taking the reference): carry over the
 * sites that failed or shrank too much, plan, write in phases, and record
 * what reached the cache (saved to the snapshot file when it changed).
 * 0 when everything of every site is in the cache, -1 otherwise (each
 * cause logged where it is known).
 */
int		 state_publish(struct state *, struct catalog *next,
		    const struct state_publish_opts *, struct state_result *);

#endif
