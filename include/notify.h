/*
 * notify.h: telling the service manager how we are (sd_notify(3),
 * operations.md: Observe).
 *
 * Every call is a no-op returning 0 when $NOTIFY_SOCKET is not set, so the
 * daemon calls them unconditionally.  A message that cannot be delivered
 * is logged once (notify_failed) and otherwise ignored, as sd_notify(3)
 * recommends: the service manager is an observer, not a dependency.
 *
 *	READY=1		notify_ready(): the daemon runs (once)
 *	RELOADING=1	notify_reloading() ... notify_reloaded() around
 *			SIGHUP, only once ready (before that, READY=1 would
 *			claim a start-up that has not finished)
 *	STOPPING=1	notify_stopping()
 *	STATUS=...	notify_status(): one line for `systemctl status`
 *	WATCHDOG=1	notify_watchdog_start(): a timer on the loop at half
 *			of $WATCHDOG_USEC
 */
#ifndef PCD_NOTIFY_H
#define PCD_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct event_base;
struct notify_watchdog;

/* Whether $NOTIFY_SOCKET is set (messages have somewhere to go). */
bool	notify_enabled(void);
/* Send state ("A=1\nB=2"): 1 sent, 0 no socket, -1 failed (logged once). */
int	notify_send(const char *state);

void	notify_ready(void);
void	notify_reloading(void);
void	notify_reloaded(void);
void	notify_stopping(void);
void	notify_status(const char *, ...) PCD_ATTR_PRINTF(1, 2);

/*
 * sd_watchdog_enabled(3): 1 and *usec when $WATCHDOG_USEC is set and
 * $WATCHDOG_PID is unset or ours; 0 when no watchdog is expected of this
 * process; -1 when the variables are malformed (logged).
 */
int	notify_watchdog_usec(uint64_t *usec);
/* Ping WATCHDOG=1 from base every half interval; NULL when not enabled. */
struct notify_watchdog	*notify_watchdog_start(struct event_base *);
void			 notify_watchdog_stop(struct notify_watchdog *);

#endif
