/*
 * rdwatch.c: one Redis subscriber connection (hiredis async on libevent)
 * for keymiss, evicted and change-key notifications, with the handshake
 * that checks (or sets) notify-keyspace-events first.
 *
 * hiredis frees a context itself after a failed connect or a disconnect,
 * and must not be freed from inside its own callbacks: every teardown this
 * file starts goes through the kill event, which runs outside hiredis.
 */
#include <arpa/inet.h>
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libevent.h>

#include "log.h"
#include "map.h"
#include "rdwatch.h"
#include "secret.h"
#include "util.h"

/* How long an expectation of the daemon's own keymiss is held, at least. */
#define LEDGER_MS	10000
/*
 * A watch that lasted this long starts the backoff again from the minimum:
 * a server restarted after a second of watching is watched again within
 * backoff_min (its keys go back at once); a connect loop still backs off.
 */
#define STEADY_MS	1000

enum phase {
	PH_IDLE,	/* waiting to (re)connect */
	PH_RESOLVE,	/* asking the resolver */
	PH_HELLO,	/* AUTH, INFO, CONFIG GET (and SET) */
	PH_SUBSCRIBE,	/* SUBSCRIBE sent, confirmations awaited */
	PH_UP		/* events flow */
};

/* One channel subscribed to. */
struct channel {
	unsigned	 feature;	/* RDW_* */
	char		*name;
	size_t		 len;
};

struct rdw {
	struct event_base	*base;
	struct evdns_base	*dns;
	char			*host;
	int			 port;
	char			*socket;
	int			 db;
	char			*user;
	rdw_password_fn		 password;
	void			*password_arg;
	enum rdw_mode		 mode;
	unsigned		 want;
	char			*change_key;
	size_t			 change_keylen;
	long			 timeout_ms, heartbeat_ms;
	long			 bmin, bmax, backoff;
	struct rdw_cbs		 cbs;
	void			*arg;

	struct channel		 ch[3];
	size_t			 nch;

	redisAsyncContext	*ac;
	struct evdns_getaddrinfo_request *dnsreq;
	struct event		*timer;		/* step timeouts, reconnects */
	struct event		*beat;		/* heartbeat */
	struct event		*kill;		/* deferred teardown */
	enum phase		 phase;
	int			 pending;	/* confirmations awaited */
	bool			 beat_wait;
	enum rdw_state		 state;
	bool			 reported;	/* state told once at least */
	struct rdw_info		 info;
	char			 add[16];	/* the flags CONFIG SET adds */
	uint64_t		 up_at;

	/* why the connection is being dropped (the first reason wins) */
	bool			 dying;
	enum rdw_state		 die_state;
	char			 die_why[384];

	/* expected own keymisses: counts; [0] the current, [1] the last */
	struct map		 ledger[2];
	uint64_t		 ledger_at;

	struct rdw_counts	 counts;

	/* waiting for the turn at CONFIG GET ... SET (mode on) */
	bool			 turn_waiting;
	TAILQ_ENTRY(rdw)	 turn_entry;
};

static void	rdw_connect(struct rdw *);
static void	config_get(struct rdw *);
static void	arm(struct event *, long);

/* --- taking turns at the flags ----------------------------------------- */

/*
 * The watches of this process in mode on take turns at CONFIG GET ... SET.
 * Two that both read the flags before either set them would each set what
 * it read plus its own letters, and the later SET would drop the other's
 * (on one server, the change key's K$ and the reader watch's Eme).  A
 * watch holds the turn from its CONFIG GET until its SET is answered, it
 * has decided none is needed, or its connection goes; the others wait in
 * the order they asked.  Only the loop thread runs this file.  Another
 * process setting the flags at the same moment is not covered (rdwatch.h).
 */
TAILQ_HEAD(rdw_queue, rdw);
static struct rdw	*turn;		/* holds it, or NULL */
static struct rdw_queue	 turn_queue = TAILQ_HEAD_INITIALIZER(turn_queue);

/* CONFIG GET now, or once the turn is w's. */
static void
turn_ask(struct rdw *w)
{
	if (w->mode != RDW_ON) {
		config_get(w);		/* reads only: no turn needed */
		return;
	}
	if (turn == NULL) {
		turn = w;
		config_get(w);
		return;
	}
	w->turn_waiting = true;
	TAILQ_INSERT_TAIL(&turn_queue, w, turn_entry);
}

/* w is done with the flags (or gone): the next waiting watch's turn. */
static void
turn_done(struct rdw *w)
{
	struct rdw	*next;

	if (w->turn_waiting) {
		TAILQ_REMOVE(&turn_queue, w, turn_entry);
		w->turn_waiting = false;
		return;
	}
	if (turn != w)
		return;
	turn = NULL;
	if ((next = TAILQ_FIRST(&turn_queue)) == NULL)
		return;
	TAILQ_REMOVE(&turn_queue, next, turn_entry);
	next->turn_waiting = false;
	turn = next;
	config_get(next);
	arm(next->timer, next->timeout_ms);
}

/* --- the flags --------------------------------------------------------- */

/* Whether the setting has the letter c (A stands for g$lshzxetd). */
static bool
has_flag(const char *flags, char c)
{
	if (strchr(flags, c) != NULL)
		return true;
	return strchr(flags, 'A') != NULL && strchr("g$lshzxetd", c) != NULL;
}

/* Add the letter c to add (once) if flags lacks it. */
static void
need_flag(const char *flags, char c, char add[16])
{
	size_t	n = strlen(add);

	if (!has_flag(flags, c) && strchr(add, c) == NULL && n < 15) {
		add[n] = c;
		add[n + 1] = '\0';
	}
}

/* The features on, and the letters missing for want. */
void
rdw_flags_needed(const char *flags, unsigned want, unsigned *have,
    char add[16])
{
	*have = 0;
	add[0] = '\0';
	if (has_flag(flags, 'E') && has_flag(flags, 'm'))
		*have |= RDW_MISSES;
	if (has_flag(flags, 'E') && has_flag(flags, 'e'))
		*have |= RDW_EVICTIONS;
	if (has_flag(flags, 'K') && has_flag(flags, '$'))
		*have |= RDW_CHANGE;
	if (want & RDW_CHANGE)
		need_flag(flags, 'K', add);
	if (want & (RDW_MISSES | RDW_EVICTIONS))
		need_flag(flags, 'E', add);
	if (want & RDW_CHANGE)
		need_flag(flags, '$', add);
	if (want & RDW_EVICTIONS)
		need_flag(flags, 'e', add);
	if (want & RDW_MISSES)
		need_flag(flags, 'm', add);
}

/* --- the ledger of the daemon's own reads ----------------------------- */

/* Start a new generation when the current one is old enough. */
static void
ledger_age(struct rdw *w)
{
	uint64_t	now = mono_ms();

	if (now - w->ledger_at < LEDGER_MS)
		return;
	map_free(&w->ledger[1]);
	w->ledger[1] = w->ledger[0];
	map_init(&w->ledger[0]);
	w->ledger_at = now;
}

/* Forget every expectation. */
static void
ledger_clear(struct rdw *w)
{
	map_free(&w->ledger[0]);
	map_free(&w->ledger[1]);
	w->ledger_at = mono_ms();
}

/* Take one expectation of key away; whether there was one. */
static bool
ledger_take(struct rdw *w, const char *key, size_t len)
{
	struct map_item	*it;
	int		 g;

	ledger_age(w);
	for (g = 0; g < 2; g++)
		if ((it = map_find(&w->ledger[g], key, len)) != NULL &&
		    (uintptr_t)it->val > 0) {
			it->val = (void *)((uintptr_t)it->val - 1);
			return true;
		}
	return false;
}

void
rdw_expect(struct rdw *w, const char *key, size_t len)
{
	struct map_item	*it;

	ledger_age(w);
	if (w->ledger[0].nitems + w->ledger[1].nitems >= RDW_EXPECT_MAX &&
	    map_find(&w->ledger[0], key, len) == NULL) {
		w->counts.expect_full++;
		return;
	}
	it = map_put(&w->ledger[0], key, len);
	it->val = (void *)((uintptr_t)it->val + 1);
}

void
rdw_unexpect(struct rdw *w, const char *key, size_t len)
{
	(void)ledger_take(w, key, len);
}

/* --- the connection ---------------------------------------------------- */

/* Arm ev for ms. */
static void
arm(struct event *ev, long ms)
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

/* The delay ms with +-20 % jitter. */
static long
jitter(long ms)
{
	return (long)((double)ms * (0.8 + 0.4 * rand_unit()));
}

/* Tell the caller. */
static void
set_state(struct rdw *w, enum rdw_state st, const char *why)
{
	if (st == w->state && st != RDW_UP && w->reported)
		return;
	w->state = st;
	w->reported = true;
	if (w->cbs.state != NULL)
		w->cbs.state(st, why, st == RDW_DOWN ? NULL : &w->info, w->arg);
}

/*
 * Drop the connection (from anywhere, hiredis callbacks included): the
 * kill event does it, outside hiredis.  The first reason given wins.
 */
static void
rdw_lost(struct rdw *w, enum rdw_state st, const char *why)
{
	if (w->dying)
		return;
	w->dying = true;
	w->die_state = st;
	snprintf(w->die_why, sizeof w->die_why, "%s", why);
	event_active(w->kill, EV_TIMEOUT, 0);
}

/* Close the connection and the resolver request, if any. */
static void
teardown(struct rdw *w)
{
	if (w->dnsreq != NULL)
		evdns_getaddrinfo_cancel(w->dnsreq);	/* runs its callback */
	w->dnsreq = NULL;
	if (w->ac != NULL) {
		w->ac->data = NULL;	/* its callbacks now do nothing */
		redisAsyncFree(w->ac);
	}
	w->ac = NULL;
	evtimer_del(w->timer);
	evtimer_del(w->beat);
	w->phase = PH_IDLE;
	w->pending = 0;
	w->beat_wait = false;
	turn_done(w);
}

/* The kill event: drop the connection, report, and plan the next one. */
static void
on_kill(evutil_socket_t fd, short what, void *arg)
{
	struct rdw	*w = arg;
	long		 delay;

	(void)fd;
	(void)what;
	if (w->phase == PH_UP && mono_ms() - w->up_at >= STEADY_MS)
		w->backoff = w->bmin;
	teardown(w);
	w->dying = false;
	if (w->die_state == RDW_DOWN) {
		delay = jitter(w->backoff);
		w->backoff = w->backoff * 2 > w->bmax ? w->bmax : w->backoff * 2;
	} else
		delay = jitter(w->bmax);
	set_state(w, w->die_state, w->die_why);
	arm(w->timer, delay);
}

/* The watch of w, or NULL if its connection is being dropped. */
static struct rdw *
watch_of(const redisAsyncContext *ac)
{
	struct rdw	*w = ac->data;

	return w != NULL && !w->dying ? w : NULL;
}

/* Whether an error reply means the password is wrong or missing. */
static bool
auth_error(const redisReply *r)
{
	return strncmp(r->str, "NOAUTH", 6) == 0 ||
	    strncmp(r->str, "WRONGPASS", 9) == 0;
}

/* A reply that should not be an error; false (and the watch dropped) if it is. */
static bool
reply_ok(struct rdw *w, const redisReply *r, const char *what)
{
	char	why[384];

	if (r->type != REDIS_REPLY_ERROR)
		return true;
	snprintf(why, sizeof why, "%s refused: %s", what, r->str);
	rdw_lost(w, RDW_REFUSED, why);
	return false;
}

/* Restart the step timeout. */
static void
step(struct rdw *w)
{
	arm(w->timer, w->timeout_ms);
}

/* Subscribed to every channel: the watch is up. */
static void
rdw_up(struct rdw *w)
{
	char	why[256];

	w->phase = PH_UP;
	w->up_at = mono_ms();
	w->counts.connects++;
	evtimer_del(w->timer);
	arm(w->beat, w->heartbeat_ms);
	ledger_clear(w);
	why[0] = '\0';
	if (!w->info.flags_known)
		snprintf(why, sizeof why, "CONFIG GET refused: whether "
		    "notify-keyspace-events has what is needed is unknown");
	else if (w->info.missing != 0)
		snprintf(why, sizeof why, "notify-keyspace-events is '%s': "
		    "run %s", w->info.flags, w->info.config_set);
	set_state(w, RDW_UP, why[0] != '\0' ? why : NULL);
}

/* A message on a channel: an event, a confirmation, or garbage. */
static void
on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rdw		*w = watch_of(ac);
	const redisReply	*r = reply, *kind, *ch, *data;
	struct rdw_event	 ev;
	size_t			 i;

	(void)privdata;
	if (w == NULL || r == NULL)
		return;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    (kind = r->element[0])->type != REDIS_REPLY_STRING ||
	    (ch = r->element[1])->type != REDIS_REPLY_STRING) {
		w->counts.bad++;
		return;
	}
	data = r->element[2];
	if (strcmp(kind->str, "subscribe") == 0) {
		w->beat_wait = false;
		if (w->phase == PH_SUBSCRIBE && --w->pending == 0)
			rdw_up(w);
		return;
	}
	if (strcmp(kind->str, "message") != 0 ||
	    data->type != REDIS_REPLY_STRING) {
		w->counts.bad++;
		return;
	}
	for (i = 0; i < w->nch; i++)
		if (w->ch[i].len == ch->len &&
		    memcmp(w->ch[i].name, ch->str, ch->len) == 0)
			break;
	if (i == w->nch) {
		w->counts.bad++;
		return;
	}
	memset(&ev, 0, sizeof ev);
	switch (w->ch[i].feature) {
	case RDW_MISSES:
		ev.type = RDW_KEYMISS;
		ev.own = ledger_take(w, data->str, data->len);
		break;
	case RDW_EVICTIONS:
		ev.type = RDW_EVICTED;
		break;
	default:
		ev.type = RDW_CHANGED;
		break;
	}
	if (ev.type == RDW_CHANGED) {
		ev.key = w->change_key;
		ev.keylen = w->change_keylen;
		ev.what = data->str;
		ev.whatlen = data->len;
	} else {
		ev.key = data->str;
		ev.keylen = data->len;
	}
	w->counts.events++;
	if (ev.own)
		w->counts.own++;
	if (w->cbs.event != NULL)
		w->cbs.event(&ev, w->arg);
}

/* SUBSCRIBE to channel i. */
static void
subscribe(struct rdw *w, size_t i)
{
	const char	*argv[2] = { "SUBSCRIBE", w->ch[i].name };
	size_t		 lens[2] = { 9, w->ch[i].len };

	redisAsyncCommandArgv(w->ac, on_message, NULL, 2, argv, lens);
}

/* SUBSCRIBE to the channel of every feature active. */
static void
subscribe_all(struct rdw *w)
{
	size_t	i;

	w->phase = PH_SUBSCRIBE;
	w->pending = 0;
	for (i = 0; i < w->nch; i++)
		if (w->info.active & w->ch[i].feature) {
			subscribe(w, i);
			w->pending++;
		}
	step(w);
}

/* The heartbeat: was the last one confirmed?  Send the next. */
static void
on_beat(evutil_socket_t fd, short what, void *arg)
{
	struct rdw	*w = arg;
	size_t		 i;

	(void)fd;
	(void)what;
	if (w->phase != PH_UP || w->dying)
		return;
	if (w->beat_wait) {
		rdw_lost(w, RDW_DOWN, "no answer to the heartbeat");
		return;
	}
	for (i = 0; i < w->nch; i++)
		if (w->info.active & w->ch[i].feature)
			break;
	w->beat_wait = true;
	subscribe(w, i);
	arm(w->beat, w->heartbeat_ms);
}

/* CONFIG SET done: every feature is on. */
static void
on_config_set(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rdw		*w = watch_of(ac);
	const redisReply	*r = reply;
	char			 why[384];

	(void)privdata;
	if (w == NULL || r == NULL)
		return;
	turn_done(w);
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof why, "CONFIG SET refused: %s; run %s as "
		    "an administrator, or use reader_watch = auto", r->str,
		    w->info.config_set);
		rdw_lost(w, RDW_REFUSED, why);
		return;
	}
	snprintf(w->info.flags + strlen(w->info.flags),
	    sizeof w->info.flags - strlen(w->info.flags), "%s", w->add);
	w->info.active = w->want;
	w->info.missing = 0;
	w->info.config_set[0] = '\0';
	subscribe_all(w);
}

/*
 * What to do with the server's flags: subscribe, set them, or give up.
 * Whether a CONFIG SET was sent (the turn is kept until it is answered).
 */
static bool
decide(struct rdw *w)
{
	unsigned	have;
	char		why[384];

	if (!w->info.flags_known) {
		if (w->mode == RDW_ON) {
			rdw_lost(w, RDW_REFUSED, "CONFIG GET refused: cannot "
			    "check or turn on notify-keyspace-events");
			return false;
		}
		w->info.active = w->want;
		subscribe_all(w);
		return false;
	}
	rdw_flags_needed(w->info.flags, w->want, &have, w->add);
	w->info.active = have & w->want;
	w->info.missing = w->want & ~have;
	w->info.config_set[0] = '\0';
	if (w->info.missing != 0)
		snprintf(w->info.config_set, sizeof w->info.config_set,
		    "CONFIG SET notify-keyspace-events '%s%s'", w->info.flags,
		    w->add);
	if (w->info.missing != 0 && w->mode == RDW_ON) {
		const char	*argv[3] = { "CONFIG", "SET",
				    "notify-keyspace-events" };
		char		 flags[96];
		const char	*av[4];
		size_t		 lens[4];

		snprintf(flags, sizeof flags, "%s%s", w->info.flags, w->add);
		av[0] = argv[0];
		av[1] = argv[1];
		av[2] = argv[2];
		av[3] = flags;
		lens[0] = 6;
		lens[1] = 3;
		lens[2] = strlen(argv[2]);
		lens[3] = strlen(flags);
		redisAsyncCommandArgv(w->ac, on_config_set, NULL, 4, av, lens);
		step(w);
		return true;
	}
	if (w->info.active == 0) {
		snprintf(why, sizeof why, "notify-keyspace-events is '%s': "
		    "run %s", w->info.flags, w->info.config_set);
		rdw_lost(w, RDW_UNAVAILABLE, why);
		return false;
	}
	subscribe_all(w);
	return false;
}

/* CONFIG GET notify-keyspace-events: ["notify-keyspace-events", flags]. */
static void
on_config_get(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rdw		*w = watch_of(ac);
	const redisReply	*r = reply;

	(void)privdata;
	if (w == NULL || r == NULL)
		return;
	if (r->type == REDIS_REPLY_ERROR && auth_error(r)) {
		(void)reply_ok(w, r, "CONFIG GET");
		return;
	}
	w->info.flags_known = false;
	w->info.flags[0] = '\0';
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING &&
	    r->element[1]->len < sizeof w->info.flags &&
	    strspn(r->element[1]->str, "AKEg$lshzxetdmn") ==
	    r->element[1]->len) {
		memcpy(w->info.flags, r->element[1]->str, r->element[1]->len);
		w->info.flags[r->element[1]->len] = '\0';
		w->info.flags_known = true;
	}
	if (!decide(w))
		turn_done(w);
}

/* The value of "name:" in an INFO reply, into out. */
static void
info_field(const char *info, const char *name, char *out, size_t outlen)
{
	const char	*p = info;
	size_t		 n = strlen(name), len;

	out[0] = '\0';
	while ((p = strstr(p, name)) != NULL) {
		if ((p == info || p[-1] == '\n') && p[n] == ':') {
			p += n + 1;
			len = strcspn(p, "\r\n");
			snprintf(out, outlen, "%.*s", (int)len, p);
			return;
		}
		p += n;
	}
}

/* INFO server: run_id, uptime, version. */
static void
on_info(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rdw		*w = watch_of(ac);
	const redisReply	*r = reply;
	char			 up[32];

	(void)privdata;
	if (w == NULL || r == NULL)
		return;
	if (r->type == REDIS_REPLY_ERROR && auth_error(r)) {
		(void)reply_ok(w, r, "INFO");
		return;
	}
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
		info_field(r->str, "run_id", w->info.run_id,
		    sizeof w->info.run_id);
		info_field(r->str, "redis_version", w->info.version,
		    sizeof w->info.version);
		info_field(r->str, "uptime_in_seconds", up, sizeof up);
		w->info.uptime = strtoull(up, NULL, 10);
	}
	step(w);
}

/* AUTH: only an error matters. */
static void
on_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rdw		*w = watch_of(ac);
	const redisReply	*r = reply;

	(void)privdata;
	if (w == NULL || r == NULL)
		return;
	if (reply_ok(w, r, "AUTH"))
		step(w);
}

/*
 * Queue AUTH, INFO and CONFIG GET (or wait for the turn at the flags); -1
 * if the password cannot be read.
 */
static int
hello(struct rdw *w)
{
	const char	*argv[3];
	size_t		 lens[3];
	char		*pw = NULL, err[256], why[300];
	int		 argc = 0;

	if (w->password != NULL &&
	    w->password(&pw, err, sizeof err, w->password_arg) == -1) {
		snprintf(why, sizeof why, "%s", err);
		rdw_lost(w, RDW_DOWN, why);
		return -1;
	}
	if (pw != NULL) {
		argv[argc] = "AUTH";
		lens[argc++] = 4;
		if (w->user != NULL) {
			argv[argc] = w->user;
			lens[argc++] = strlen(w->user);
		}
		argv[argc] = pw;
		lens[argc++] = strlen(pw);
		redisAsyncCommandArgv(w->ac, on_auth, NULL, argc, argv, lens);
		secret_free(pw);
	}
	argv[0] = "INFO";
	argv[1] = "server";
	lens[0] = 4;
	lens[1] = 6;
	redisAsyncCommandArgv(w->ac, on_info, NULL, 2, argv, lens);
	turn_ask(w);
	return 0;
}

/* Queue CONFIG GET notify-keyspace-events (its answer decides). */
static void
config_get(struct rdw *w)
{
	const char	*argv[3] = { "CONFIG", "GET", "notify-keyspace-events" };
	size_t		 lens[3] = { 6, 3, 22 };

	redisAsyncCommandArgv(w->ac, on_config_get, NULL, 3, argv, lens);
}

/* hiredis: the connection is up, or failed (it then frees the context). */
static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct rdw	*w = ac->data;
	char		 why[300];

	if (w == NULL || status == REDIS_OK)
		return;
	snprintf(why, sizeof why, "connect: %s", ac->errstr != NULL ?
	    ac->errstr : "failed");
	w->ac = NULL;
	rdw_lost(w, RDW_DOWN, why);
}

/* hiredis: the connection is gone (it then frees the context). */
static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rdw	*w = ac->data;
	char		 why[300];

	if (w == NULL)
		return;
	if (status == REDIS_OK)
		snprintf(why, sizeof why, "closed");
	else
		snprintf(why, sizeof why, "%s", ac->errstr != NULL &&
		    ac->errstr[0] != '\0' ? ac->errstr :
		    "closed by the server");
	w->ac = NULL;
	rdw_lost(w, RDW_DOWN, why);
}

/* Open the hiredis connection to ip (or the socket) and say hello. */
static void
open_conn(struct rdw *w, const char *ip)
{
	redisAsyncContext	*ac;
	char			 why[300];

	ac = ip != NULL ? redisAsyncConnect(ip, w->port) :
	    redisAsyncConnectUnix(w->socket);
	if (ac == NULL) {
		rdw_lost(w, RDW_DOWN, "connect: out of memory");
		return;
	}
	if (ac->err) {
		snprintf(why, sizeof why, "connect: %s", ac->errstr);
		redisAsyncFree(ac);
		rdw_lost(w, RDW_DOWN, why);
		return;
	}
	ac->data = w;
	w->ac = ac;
	redisEnableKeepAlive(&ac->c);
	redisLibeventAttach(ac, w->base);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	w->phase = PH_HELLO;
	memset(&w->info, 0, sizeof w->info);
	step(w);
	(void)hello(w);
}

/* The resolver's answer. */
static void
on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct rdw	*w = arg;
	char		 ip[INET6_ADDRSTRLEN], why[300];
	const void	*addr;

	if (result == EVUTIL_EAI_CANCEL)
		return;		/* from teardown: w may be going away */
	w->dnsreq = NULL;
	if (result != 0 || res == NULL) {
		snprintf(why, sizeof why, "cannot resolve %s: %s", w->host,
		    evutil_gai_strerror(result));
		rdw_lost(w, RDW_DOWN, why);
		return;
	}
	if (res->ai_family == AF_INET6)
		addr = &((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr;
	else
		addr = &((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
	evutil_inet_ntop(res->ai_family, addr, ip, sizeof ip);
	evutil_freeaddrinfo(res);
	open_conn(w, ip);
}

/* Whether host is an address already (nothing to resolve). */
static bool
numeric(const char *host)
{
	unsigned char	buf[sizeof(struct in6_addr)];

	return evutil_inet_pton(AF_INET, host, buf) == 1 ||
	    evutil_inet_pton(AF_INET6, host, buf) == 1;
}

/* Resolve the host (if need be) and connect. */
static void
rdw_connect(struct rdw *w)
{
	struct evutil_addrinfo	hints;

	if (w->host == NULL || w->dns == NULL || numeric(w->host)) {
		open_conn(w, w->host);
		return;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	w->phase = PH_RESOLVE;
	step(w);
	w->dnsreq = evdns_getaddrinfo(w->dns, w->host, NULL, &hints,
	    on_resolved, w);
}

/* The timer: connect now, or give up on a step that is too slow. */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rdw	*w = arg;

	(void)fd;
	(void)what;
	if (w->phase == PH_IDLE)
		rdw_connect(w);
	else if (!w->dying)
		rdw_lost(w, RDW_DOWN, w->phase == PH_SUBSCRIBE ?
		    "SUBSCRIBE not confirmed in time" : "timed out");
}

/* A copy of len bytes, NUL-terminated. */
static char *
copy(const char *s, size_t len)
{
	char	*p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* Add the channel of a feature (len 0: name is a string). */
static void
add_channel(struct rdw *w, unsigned feature, char *name, size_t len)
{
	w->ch[w->nch].feature = feature;
	w->ch[w->nch].name = name;
	w->ch[w->nch].len = len != 0 ? len : strlen(name);
	w->nch++;
}

struct rdw *
rdw_new(struct event_base *base, const struct rdw_opts *o,
    const struct rdw_cbs *cbs, void *arg)
{
	struct rdw	*w;
	struct buf	 b;

	w = xcalloc(1, sizeof *w);
	w->base = base;
	w->dns = o->dns;
	w->host = o->host != NULL ? xstrdup(o->host) : NULL;
	w->port = o->port;
	w->socket = o->socket != NULL ? xstrdup(o->socket) : NULL;
	w->db = o->db;
	w->user = o->user != NULL ? xstrdup(o->user) : NULL;
	w->password = o->password;
	w->password_arg = o->password_arg;
	w->mode = o->mode;
	w->want = o->want;
	if (o->change_key == NULL)
		w->want &= ~(unsigned)RDW_CHANGE;
	else {
		w->change_key = copy(o->change_key, o->change_keylen);
		w->change_keylen = o->change_keylen;
	}
	w->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	w->heartbeat_ms = o->heartbeat_ms > 0 ? o->heartbeat_ms : 15000;
	w->bmin = o->backoff_min_ms > 0 ? o->backoff_min_ms : 100;
	w->bmax = o->backoff_max_ms > 0 ? o->backoff_max_ms : 30000;
	if (w->bmax < w->bmin)
		w->bmax = w->bmin;
	w->backoff = w->bmin;
	w->cbs = *cbs;
	w->arg = arg;
	w->state = RDW_DOWN;
	if (w->want & RDW_MISSES)
		add_channel(w, RDW_MISSES, xasprintf("__keyevent@%d__:keymiss",
		    w->db), 0);
	if (w->want & RDW_EVICTIONS)
		add_channel(w, RDW_EVICTIONS,
		    xasprintf("__keyevent@%d__:evicted", w->db), 0);
	if (w->want & RDW_CHANGE) {
		buf_init(&b);
		buf_printf(&b, "__keyspace@%d__:", w->db);
		buf_add(&b, w->change_key, w->change_keylen);
		add_channel(w, RDW_CHANGE, (char *)b.data, b.len);
	}
	map_init(&w->ledger[0]);
	map_init(&w->ledger[1]);
	w->ledger_at = mono_ms();
	if ((w->timer = evtimer_new(base, on_timer, w)) == NULL ||
	    (w->beat = evtimer_new(base, on_beat, w)) == NULL ||
	    (w->kill = event_new(base, -1, 0, on_kill, w)) == NULL)
		fatalx("event_new failed");
	arm(w->timer, 0);
	return w;
}

void
rdw_free(struct rdw *w)
{
	size_t	i;

	if (w == NULL)
		return;
	teardown(w);
	event_free(w->timer);
	event_free(w->beat);
	event_free(w->kill);
	for (i = 0; i < w->nch; i++)
		free(w->ch[i].name);
	map_free(&w->ledger[0]);
	map_free(&w->ledger[1]);
	free(w->host);
	free(w->socket);
	free(w->user);
	free(w->change_key);
	free(w);
}

enum rdw_state
rdw_state(const struct rdw *w)
{
	return w->state;
}

const struct rdw_counts *
rdw_counts(const struct rdw *w)
{
	return &w->counts;
}
