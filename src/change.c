/*
 * change.c: the change-driven refresh's schedule (see change.h): bursts,
 * their one or two refreshes, and the full refresh that follows a change
 * found to be nothing new.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "change.h"
#include "chgsrc.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

enum phase {
	PH_IDLE,	/* no burst */
	PH_WAIT1,	/* a burst: its first refresh is due */
	PH_RUN1,	/* its first refresh was asked for */
	PH_WAIT2,	/* its second refresh is due */
	PH_RUN2		/* its second refresh was asked for */
};

struct change {
	struct event_base	*base;
	struct change_cbs	 cbs;
	void			*arg;
	const struct cfg	*cfg;
	struct chgsrc		*src;		/* NULL: not watching */
	bool			 watching;

	enum phase		 phase;
	uint64_t		 first;		/* the burst's first bump (mono) */
	uint64_t		 last;		/* its last */
	uint64_t		 retry_at;	/* WAIT2 no sooner (mono), or 0 */
	bool			 more;		/* bumps since the refresh began */
	uint64_t		 from;		/* the first bump not published */
	uint64_t		 running_from;	/* the one the running covers */
	uint64_t		 next_from;	/* the first since it began */
	struct event		*timer;		/* WAIT1, WAIT2 */
	struct event		*full;		/* change_full_delay */
};

/* Arm ev to fire at the monotonic time at (at once if it is past). */
static void
arm_at(struct event *ev, uint64_t at)
{
	uint64_t	now = mono_ms(), ms = at > now ? at - now : 0;
	struct timeval	tv = { (time_t)(ms / 1000),
			    (suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(ev, &tv);
}

/* The longest a burst waits for its first refresh. */
static uint64_t
debounce_max(const struct change *c)
{
	uint64_t	d = (uint64_t)c->cfg->change_debounce_ms;

	return d > CHANGE_DEBOUNCE_MAX_MS ? d : CHANGE_DEBOUNCE_MAX_MS;
}

/* WAIT1: quiet for change_debounce, or the burst's limit. */
static void
arm_first(struct change *c)
{
	uint64_t	quiet = c->last + (uint64_t)c->cfg->change_debounce_ms;
	uint64_t	limit = c->first + debounce_max(c);

	arm_at(c->timer, quiet < limit ? quiet : limit);
}

/* WAIT2: quiet for change_debounce, and not before the retry. */
static void
arm_second(struct change *c)
{
	uint64_t	quiet = c->last + (uint64_t)c->cfg->change_debounce_ms;

	arm_at(c->timer, quiet > c->retry_at ? quiet : c->retry_at);
}

/* A bump at t (monotonic): into the burst, or the start of one. */
static void
bump(struct change *c, uint64_t t)
{
	if (t > c->last || c->phase == PH_IDLE)
		c->last = t;
	switch (c->phase) {
	case PH_IDLE:
		c->phase = PH_WAIT1;
		c->first = c->last = t;
		if (c->from == 0)
			c->from = t;
		arm_first(c);
		break;
	case PH_WAIT1:
		arm_first(c);
		break;
	case PH_WAIT2:
		arm_second(c);
		break;
	case PH_RUN1:
	case PH_RUN2:
		c->more = true;
		if (c->next_from == 0)
			c->next_from = t;
		break;
	}
}

/* A burst's refresh is due: ask the daemon for it. */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct change	*c = arg;

	(void)fd;
	(void)what;
	if (c->phase != PH_WAIT1 && c->phase != PH_WAIT2)
		return;
	c->phase = c->phase == PH_WAIT1 ? PH_RUN1 : PH_RUN2;
	c->more = false;
	c->running_from = c->from;
	c->next_from = 0;
	c->cbs.refresh(CHANGE_INCREMENTAL, c->arg);
}

/* change_full_delay is over: the full refresh. */
static void
on_full(evutil_socket_t fd, short what, void *arg)
{
	struct change	*c = arg;

	(void)fd;
	(void)what;
	c->cbs.refresh(CHANGE_FULL, c->arg);
}

/* A change found nothing new: a full refresh later, unless one is due. */
static void
full_later(struct change *c)
{
	long		ms = c->cfg->change_full_delay_ms;
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	if (evtimer_pending(c->full, NULL))
		return;		/* coalesced with the one due */
	evtimer_add(c->full, &tv);
	log_event(LOG_INFO, "change_full_scheduled", "delay_ms=%ld", ms);
}

void
change_refresh_done(struct change *c, bool for_change, bool full, bool found)
{
	if (c == NULL)
		return;
	if (full)
		evtimer_del(c->full);	/* it covered every change before it */
	if (!for_change || (c->phase != PH_RUN1 && c->phase != PH_RUN2))
		return;
	if (found) {
		if (c->running_from != 0)
			metrics_change_publish((double)(mono_ms() -
			    c->running_from) / 1000);
		c->from = c->next_from;
	} else
		c->from = c->running_from != 0 ? c->running_from :
		    c->next_from;
	if (c->phase == PH_RUN1) {
		if (found && !c->more) {
			c->phase = PH_IDLE;
			return;
		}
		c->phase = PH_WAIT2;
		c->retry_at = found ? 0 : mono_ms() + CHANGE_RETRY_MS;
		arm_second(c);
		return;
	}
	/* The burst's last refresh. */
	if (!found) {
		full_later(c);
		c->from = c->next_from;
	}
	if (c->more) {
		/* Bumps after a quiet spell: a burst of their own. */
		c->phase = PH_WAIT1;
		c->first = c->next_from;
		arm_first(c);
		return;
	}
	c->phase = PH_IDLE;
}

/* --- the source's reports ---------------------------------------------- */

static const char *const how_names[2] = { "poll", "notification" };

/* chgsrc: the key moved. */
static void
on_changed(enum chgsrc_how how, const void *val, size_t len, void *arg)
{
	struct change	*c = arg;
	int64_t		 ts = val != NULL ? chgsrc_timestamp_ms(val, len) : -1;
	int64_t		 delay = ts >= 0 ? (int64_t)wall_ms() - ts : 0;
	int64_t		 since = delay;
	uint64_t	 now = mono_ms();

	metrics.changes[how]++;
	if (ts >= 0)
		log_event(LOG_INFO, "change_detected", "source=%s how=%s "
		    "delay_ms=%lld bytes=%zu", c->cfg->change_name,
		    how_names[how], (long long)delay, len);
	else
		log_event(LOG_INFO, "change_detected", "source=%s how=%s "
		    "bytes=%zu", c->cfg->change_name, how_names[how], len);
	/* The bump came after the previous poll, and not in the future. */
	if (since < 0)
		since = 0;
	if (since > c->cfg->change_poll_ms)
		since = c->cfg->change_poll_ms;
	bump(c, now - (uint64_t)since);
}

/* chgsrc: polls or pushes work, or not: said once each time. */
static void
on_state(enum chgsrc_how how, bool up, const char *why, void *arg)
{
	struct change	*c = arg;

	metrics.change_up[how] = up;
	if (up)
		log_event(LOG_NOTICE, "change_source_available", "source=%s "
		    "how=%s", c->cfg->change_name, how_names[how]);
	else
		log_event(LOG_WARNING, "change_source_unavailable", "source=%s "
		    "how=%s error=%s", c->cfg->change_name, how_names[how],
		    why != NULL ? why : "unknown");
}

/* --- life -------------------------------------------------------------- */

/* Forget every burst and the full refresh due. */
static void
forget(struct change *c)
{
	evtimer_del(c->timer);
	evtimer_del(c->full);
	c->phase = PH_IDLE;
	c->more = false;
	c->from = c->running_from = c->next_from = 0;
}

/* Open or close the source as watching and the configuration say. */
static void
follow(struct change *c, const struct cfg *old)
{
	struct chgsrc_cbs	cbs = { on_changed, on_state };
	bool			want = c->watching && c->cfg != NULL &&
				    c->cfg->change_key != NULL;

	if (c->src != NULL && (!want || old == NULL ||
	    !chgsrc_same(old, c->cfg))) {
		chgsrc_free(c->src);
		c->src = NULL;
	}
	if (want && c->src == NULL) {
		metrics.change_up[0] = metrics.change_up[1] = false;
		c->src = chgsrc_new(c->base, c->cfg, &cbs, c);
	}
	metrics.change_on = c->cfg != NULL && c->cfg->change_key != NULL;
	metrics.change_push_on = metrics.change_on &&
	    c->cfg->change_notify != CHANGE_NOTIFY_OFF;
	if (c->cfg != NULL && c->cfg->change_key == NULL)
		forget(c);
}

struct change *
change_new(struct event_base *base, const struct change_cbs *cbs, void *arg)
{
	struct change	*c;

	c = xcalloc(1, sizeof *c);
	c->base = base;
	c->cbs = *cbs;
	c->arg = arg;
	if ((c->timer = evtimer_new(base, on_timer, c)) == NULL ||
	    (c->full = evtimer_new(base, on_full, c)) == NULL)
		fatalx("evtimer_new failed");
	return c;
}

void
change_free(struct change *c)
{
	if (c == NULL)
		return;
	chgsrc_free(c->src);
	event_free(c->timer);
	event_free(c->full);
	free(c);
}

void
change_configure(struct change *c, const struct cfg *cfg)
{
	const struct cfg	*old;

	if (c == NULL)
		return;
	old = c->src != NULL ? c->cfg : NULL;
	c->cfg = cfg;
	follow(c, old);
}

void
change_watch(struct change *c, bool on)
{
	if (c == NULL || c->watching == on)
		return;
	c->watching = on;
	if (!on)
		forget(c);
	follow(c, c->cfg);
}
