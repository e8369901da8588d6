/*
 * daemon.h: the event loop, its timers and signals (design.md: What a refresh
 * does; configuration.md: Configuration).
 *
 * One refresh at start-up, then every refresh_interval +/- 10 %; between them,
 * every incremental_interval, an incremental refresh (design.md: Incremental
 * refresh) when the last generation allows one (after a restart, the start-up
 * refresh is incremental too when the snapshot allows it).  SIGHUP re-reads
 * the configuration and runs a full refresh now (coalesced: while a refresh
 * runs, at most one more is queued).  SIGTERM and SIGINT stop cleanly:
 * requests in flight are dropped, nothing half-written is left.
 */
#ifndef PCD_DAEMON_H
#define PCD_DAEMON_H

#include <stdbool.h>

#include "config.h"

struct daemon_opts {
	const char	*config_path;
	bool		 once;		/* one refresh, then exit */
	const char	*domain;	/* only this site */
	bool		 force;		/* publish what the shrink guard holds */
	bool		 dry_run;	/* once, printing instead of writing */
	const char	*diff;		/* dry_run: this key's changes too */
};

/* Exit codes of one-shot runs (design.md: Failures). */
#define PCD_EXIT_OK	0	/* every site published */
#define PCD_EXIT_FAIL	1	/* any failure, for any site */
#define PCD_EXIT_USAGE	2	/* bad usage or configuration */

/* Run until stopped (or one refresh with once); takes cfg.  Exit code. */
int	daemon_run(struct cfg *, const struct daemon_opts *);

#endif
