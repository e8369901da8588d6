/*
 * health.h: programs-cached --health, a health check for container
 * managers that needs nothing in the image but the daemon itself: it asks
 * the running daemon's own listener ([daemon] listen) for /readyz.
 */
#ifndef PCD_HEALTH_H
#define PCD_HEALTH_H

#include "config.h"

/*
 * GET /readyz of the listener cfg names (a wildcard address is asked on
 * loopback).  0 on 200 ("ready" on stdout); 1 on anything else, with why
 * on stderr: no listen in cfg, no answer, or the 503's reason.  Docker
 * reserves exit status 2 in health checks, so nothing here is 2.
 */
int	 health_check(const struct cfg *);

#endif
