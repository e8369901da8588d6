/*
 * chgsrc.c: the change key on its source, polled and pushed (chgsrc.h).
 *
 * Each server has a polling connection (libmemcached, or hiredis's
 * blocking API, with short bounds) and, unless pushes are off, a watch
 * (mcwatch.c or rdwatch.c, on the loop).  A push schedules a poll on the
 * next turn of the loop: the watch's callback never reads the key itself.
 */
#include <sys/time.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libmemcached/memcached.h>

#include "chgsrc.h"
#include "mcwatch.h"
#include "metrics.h"
#include "rdwatch.h"
#include "secret.h"
#include "store.h"
#include "unpickle.h"
#include "util.h"

/* The largest password file read. */
#define PASSWORD_MAX	4096

/* One server of the source: how it is polled, watched, and what it held. */
struct csrv {
	struct chgsrc	*src;
	char		*name;		/* as logged */
	char		*host;		/* memcached */
	int		 port;
	memcached_st	*mc;		/* memcached: the polling connection */
	struct mcw	*mcw;		/* memcached: the push */
	bool		 known;		/* a poll has answered */
	bool		 present;	/* the key was there */
	unsigned char	*val;		/* its bytes then */
	size_t		 len;
	bool		 up;		/* the last poll answered */
	bool		 pushing;	/* the watch is up */
	char		 error[512];	/* why a poll failed */
	char		 push_error[512];	/* why the watch is not up */
};

struct chgsrc {
	struct event_base	*base;
	struct chgsrc_cbs	 cbs;
	void			*arg;
	enum cfg_backend	 backend;
	char			*key;
	size_t			 keylen;
	char			*name;
	long			 poll_ms;
	long			 connect_ms, io_ms;
	int			 notify;	/* enum cfg_change_notify */

	/* Redis: one server */
	char			*rhost;		/* NULL: rsocket */
	int			 rport;
	char			*rsocket;
	int			 rdb;
	char			*ruser;
	char			*rpassword;	/* from the URL */
	char			*ppath;		/* the password file */
	bool			 poptional;	/* it may be absent */
	redisContext		*rc;		/* the polling connection */
	struct rdw		*rdw;		/* the push */

	struct csrv		 sv[STORE_MAX_SERVERS];
	size_t			 n;

	struct event		*timer;		/* the next poll */
	struct event		*soon;		/* a poll after a push */
	bool			 told[2];	/* state told, by how */
	bool			 was_up[2];
};

/* --- the value --------------------------------------------------------- */

int64_t
chgsrc_timestamp_ms(const void *val, size_t len)
{
	json_t	*v;
	char	 why[128];
	double	 t;
	bool	 real;

	if ((v = unpickle(val, len, why, sizeof why)) == NULL)
		return -1;
	real = json_is_real(v);
	t = real ? json_real_value(v) : 0;
	json_decref(v);
	if (!real || !isfinite(t) || t < 978307200.0 || t >= 1e10)
		return -1;
	return (int64_t)llround(t * 1000);
}

/* --- state ------------------------------------------------------------- */

/* Tell the caller how polls or pushes are, if that changed. */
static void
tell(struct chgsrc *s, enum chgsrc_how how, bool up, const char *why)
{
	if (s->told[how] && s->was_up[how] == up)
		return;
	s->told[how] = true;
	s->was_up[how] = up;
	if (s->cbs.state != NULL)
		s->cbs.state(how, up, why, s->arg);
}

/* Pushes: up when every server's watch is; else the first one's reason. */
static void
push_state(struct chgsrc *s, struct csrv *v, bool up, const char *why)
{
	size_t	i;

	v->pushing = up;
	if (!up) {
		snprintf(v->push_error, sizeof v->push_error, "%s: %s",
		    v->name, why != NULL ? why : "down");
		tell(s, CHGSRC_NOTIFY, false, v->push_error);
		return;
	}
	for (i = 0; i < s->n; i++)
		if (!s->sv[i].pushing)
			return;
	tell(s, CHGSRC_NOTIFY, true, NULL);
}

/* A push: poll on the next turn of the loop. */
static void
pushed(struct chgsrc *s)
{
	event_active(s->soon, EV_TIMEOUT, 0);
}

/* --- Redis ------------------------------------------------------------- */

/*
 * The password to send, read now (a rotated one is picked up): the URL's,
 * or the file's (an optional credential that is absent: none).
 */
static int
redis_password(const struct chgsrc *s, char **pw, char *err, size_t errlen)
{
	size_t	len;

	*pw = NULL;
	if (s->rpassword != NULL) {
		*pw = xstrdup(s->rpassword);
		return 0;
	}
	if (s->ppath == NULL || (s->poptional && access(s->ppath, F_OK) != 0))
		return 0;
	if ((*pw = secret_read(s->ppath, PASSWORD_MAX, &len, err,
	    errlen)) == NULL)
		return -1;
	while (len > 0 && ((*pw)[len - 1] == '\n' || (*pw)[len - 1] == '\r'))
		(*pw)[--len] = '\0';
	return 0;
}

/* rdwatch's password callback. */
static int
rdw_password(char **pw, char *err, size_t errlen, void *arg)
{
	return redis_password(arg, pw, err, errlen);
}

/* A duration in milliseconds as hiredis wants it. */
static struct timeval
tv_ms(long ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	return tv;
}

/* One command on the polling connection; NULL with err set on failure. */
static redisReply *
redis_cmd(struct chgsrc *s, int argc, const char **argv, const size_t *lens,
    char *err, size_t errlen)
{
	redisReply	*r;

	if ((r = redisCommandArgv(s->rc, argc, argv, lens)) == NULL) {
		snprintf(err, errlen, "%s: %s", argv[0], s->rc->errstr[0] !=
		    '\0' ? s->rc->errstr : "no reply");
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "%s refused: %s", argv[0], r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* Connect, AUTH and SELECT, bounded; -1 with err set. */
static int
redis_connect(struct chgsrc *s, char *err, size_t errlen)
{
	const char	*argv[3];
	size_t		 lens[3];
	redisReply	*r;
	char		*pw = NULL, db[16];
	int		 argc = 0;

	if (redis_password(s, &pw, err, errlen) == -1)
		return -1;
	s->rc = s->rhost != NULL ? redisConnectWithTimeout(s->rhost, s->rport,
	    tv_ms(s->connect_ms)) : redisConnectUnixWithTimeout(s->rsocket,
	    tv_ms(s->connect_ms));
	if (s->rc == NULL || s->rc->err) {
		snprintf(err, errlen, "connect: %s", s->rc != NULL ?
		    s->rc->errstr : "out of memory");
		goto fail;
	}
	if (redisSetTimeout(s->rc, tv_ms(s->io_ms)) != REDIS_OK) {
		snprintf(err, errlen, "connect: cannot set the timeout");
		goto fail;
	}
	if (pw != NULL) {
		argv[argc] = "AUTH";
		lens[argc++] = 4;
		if (s->ruser != NULL) {
			argv[argc] = s->ruser;
			lens[argc++] = strlen(s->ruser);
		}
		argv[argc] = pw;
		lens[argc++] = strlen(pw);
		if ((r = redis_cmd(s, argc, argv, lens, err, errlen)) == NULL)
			goto fail;
		freeReplyObject(r);
	}
	snprintf(db, sizeof db, "%d", s->rdb);
	argv[0] = "SELECT";
	lens[0] = 6;
	argv[1] = db;
	lens[1] = strlen(db);
	if ((r = redis_cmd(s, 2, argv, lens, err, errlen)) == NULL)
		goto fail;
	freeReplyObject(r);
	secret_free(pw);
	return 0;
fail:
	secret_free(pw);
	if (s->rc != NULL)
		redisFree(s->rc);
	s->rc = NULL;
	return -1;
}

/*
 * GET the key: 1 with *val (malloc'ed) and *len, 0 if it is not there, -1
 * with err set (the connection is then dropped: the next poll connects
 * again).
 */
static int
redis_get(struct chgsrc *s, unsigned char **val, size_t *len, char *err,
    size_t errlen)
{
	const char	*argv[2] = { "GET", s->key };
	size_t		 lens[2] = { 3, s->keylen };
	redisReply	*r;
	int		 ret;

	if (s->rc == NULL && redis_connect(s, err, errlen) == -1)
		return -1;
	if ((r = redis_cmd(s, 2, argv, lens, err, errlen)) == NULL) {
		redisFree(s->rc);
		s->rc = NULL;
		return -1;
	}
	ret = 0;
	if (r->type == REDIS_REPLY_STRING) {
		*len = r->len;
		*val = xmalloc(r->len + 1);
		memcpy(*val, r->str, r->len);
		ret = 1;
	} else if (r->type != REDIS_REPLY_NIL) {
		snprintf(err, errlen, "GET answered something else (type %d)",
		    r->type);
		ret = -1;
	}
	freeReplyObject(r);
	return ret;
}

/* rdwatch: an event on the key's channel. */
static void
on_rdw_event(const struct rdw_event *ev, void *arg)
{
	struct chgsrc	*s = arg;

	if (ev->type == RDW_CHANGED)
		pushed(s);
}

/* rdwatch: the subscription's state. */
static void
on_rdw_state(enum rdw_state st, const char *why, const struct rdw_info *info,
    void *arg)
{
	struct chgsrc	*s = arg;
	bool		 up;

	up = st == RDW_UP && info != NULL && (info->active & RDW_CHANGE);
	push_state(s, &s->sv[0], up, why);
}

/* --- memcached --------------------------------------------------------- */

/* The polling connection to one memcached server. */
static memcached_st *
mc_conn(const struct chgsrc *s, const struct csrv *v)
{
	memcached_st	*mc;

	if ((mc = memcached_create(NULL)) == NULL)
		fatalx("memcached_create failed");
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT,
	    (uint64_t)s->connect_ms);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT,
	    (uint64_t)s->io_ms);
	memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 1);
	if (memcached_server_add(mc, v->host, (in_port_t)v->port) !=
	    MEMCACHED_SUCCESS)
		fatalx("memcached_server_add %s failed", v->name);
	return mc;
}

/* GET the key from one server: as redis_get. */
static int
mc_get(struct csrv *v, unsigned char **val, size_t *len, char *err,
    size_t errlen)
{
	struct chgsrc		*s = v->src;
	memcached_return_t	 rc;
	uint32_t		 flags;
	char			*got;

	got = memcached_get(v->mc, s->key, s->keylen, len, &flags, &rc);
	if (got != NULL) {
		*val = (unsigned char *)got;
		return 1;
	}
	if (rc == MEMCACHED_NOTFOUND)
		return 0;
	snprintf(err, errlen, "get: %s", memcached_last_error_message(v->mc));
	return -1;
}

/* mcwatch: a line of the mutations stream. */
static void
on_mcw_line(const struct mcw_line *l, void *arg)
{
	struct csrv	*v = arg;
	struct chgsrc	*s = v->src;

	/* A skipped line may have been a store of the key. */
	if ((l->kind == MCW_STORE && l->keylen == s->keylen &&
	    memcmp(l->key, s->key, s->keylen) == 0) || l->kind == MCW_SKIPPED)
		pushed(s);
}

/* mcwatch: the watch's state. */
static void
on_mcw_state(enum mcw_state st, const char *why, const struct mcw_info *info,
    void *arg)
{
	struct csrv	*v = arg;

	(void)info;
	push_state(v->src, v, st == MCW_UP, st == MCW_UNAVAILABLE ?
	    "watch refused (memcached started with -W, or too old): polls "
	    "only" : why);
}

/* --- polls ------------------------------------------------------------- */

/* One server's GET: what it holds now, compared with what it held. */
static bool
poll_one(struct csrv *v, const unsigned char **newval, size_t *newlen)
{
	struct chgsrc	*s = v->src;
	unsigned char	*val = NULL;
	size_t		 len = 0;
	char		 err[256];
	bool		 moved;
	int		 got;

	if (s->backend == BACKEND_REDIS)
		got = redis_get(s, &val, &len, err, sizeof err);
	else
		got = mc_get(v, &val, &len, err, sizeof err);
	if (got == -1) {
		v->up = false;
		snprintf(v->error, sizeof v->error, "%s: %s", v->name, err);
		return false;
	}
	v->up = true;
	moved = v->known && got == 1 && (!v->present || v->len != len ||
	    memcmp(v->val, val, len) != 0);
	v->known = true;
	if (got == 1 || moved) {
		free(v->val);
		v->val = val;
		v->len = len;
	} else
		free(val);
	v->present = got == 1;
	if (moved) {
		*newval = v->val;
		*newlen = v->len;
	}
	return moved;
}

/* The monotonic clock in seconds, finer than mono_ms: polls take microseconds. */
static double
mono_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A round of polls: every server's GET, then what it means. */
static void
poll_all(struct chgsrc *s, enum chgsrc_how how)
{
	const unsigned char	*val = NULL;
	const char		*why = NULL;
	double			 t0 = mono_s(), secs;
	size_t			 i, len = 0;
	bool			 moved = false, failed = false;

	for (i = 0; i < s->n; i++) {
		if (poll_one(&s->sv[i], &val, &len))
			moved = true;
		if (!s->sv[i].up) {
			failed = true;
			if (why == NULL)
				why = s->sv[i].error;
		}
	}
	secs = mono_s() - t0;
	metrics.change_polls++;
	metrics.change_poll_seconds += secs;
	if (secs > metrics.change_poll_max)
		metrics.change_poll_max = secs;
	tell(s, CHGSRC_POLL, !failed, why);
	if (moved && s->cbs.changed != NULL)
		s->cbs.changed(how, val, len, s->arg);
	else if (how == CHGSRC_NOTIFY && failed && s->cbs.changed != NULL)
		s->cbs.changed(how, NULL, 0, s->arg);
}

/* The poll timer. */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct chgsrc	*s = arg;
	struct timeval	 tv = tv_ms(s->poll_ms);

	(void)fd;
	(void)what;
	evtimer_add(s->timer, &tv);
	poll_all(s, CHGSRC_POLL);
}

/* A push: poll now, and the next regular poll a whole interval later. */
static void
on_soon(evutil_socket_t fd, short what, void *arg)
{
	struct chgsrc	*s = arg;
	struct timeval	 tv = tv_ms(s->poll_ms);

	(void)fd;
	(void)what;
	evtimer_add(s->timer, &tv);
	poll_all(s, CHGSRC_NOTIFY);
}

/* --- life -------------------------------------------------------------- */

/* A bound: at most CHGSRC_IO_MS, or the configured one if shorter. */
static long
bound(long configured)
{
	return configured > 0 && configured < CHGSRC_IO_MS ? configured :
	    CHGSRC_IO_MS;
}

/* Start the watch of each server, unless pushes are off. */
static void
start_pushes(struct chgsrc *s)
{
	struct mcw_cbs	 mcbs = { on_mcw_line, on_mcw_state };
	struct rdw_cbs	 rcbs = { on_rdw_event, on_rdw_state };
	struct mcw_opts	 mo;
	struct rdw_opts	 ro;
	size_t		 i;

	if (s->notify == CHANGE_NOTIFY_OFF)
		return;
	if (s->backend == BACKEND_REDIS) {
		memset(&ro, 0, sizeof ro);
		ro.host = s->rhost;
		ro.port = s->rport;
		ro.socket = s->rsocket;
		ro.db = s->rdb;
		ro.user = s->ruser;
		ro.password = rdw_password;
		ro.password_arg = s;
		ro.mode = s->notify == CHANGE_NOTIFY_ON ? RDW_ON : RDW_AUTO;
		ro.want = RDW_CHANGE;
		ro.change_key = s->key;
		ro.change_keylen = s->keylen;
		s->rdw = rdw_new(s->base, &ro, &rcbs, s);
		return;
	}
	for (i = 0; i < s->n; i++) {
		memset(&mo, 0, sizeof mo);
		mo.host = s->sv[i].host;
		mo.port = s->sv[i].port;
		mo.streams = "mutations";
		s->sv[i].mcw = mcw_new(s->base, &mo, &mcbs, &s->sv[i]);
	}
}

static char *
dup_or_null(const char *p)
{
	return p != NULL ? xstrdup(p) : NULL;
}

struct chgsrc *
chgsrc_new(struct event_base *base, const struct cfg *cfg,
    const struct chgsrc_cbs *cbs, void *arg)
{
	struct chgsrc	*s;
	struct timeval	 now = { 0, 0 };
	size_t		 i;

	if (cfg->change_key == NULL)
		fatalx("chgsrc_new without a change_key");
	s = xcalloc(1, sizeof *s);
	s->base = base;
	s->cbs = *cbs;
	s->arg = arg;
	s->backend = cfg->change_backend;
	s->key = xstrdup(cfg->change_key);
	s->keylen = strlen(s->key);
	s->name = xstrdup(cfg->change_name);
	s->poll_ms = cfg->change_poll_ms;
	s->connect_ms = bound(cfg->mc_connect_timeout_ms);
	s->io_ms = bound(cfg->mc_io_timeout_ms);
	s->notify = cfg->change_notify;
	if (s->backend == BACKEND_REDIS) {
		s->rhost = dup_or_null(cfg->change_redis_host);
		s->rport = cfg->change_redis_port;
		s->rsocket = dup_or_null(cfg->change_redis_socket);
		s->rdb = cfg->change_redis_db;
		s->ruser = dup_or_null(cfg->change_redis_user);
		s->rpassword = dup_or_null(cfg->change_redis_password);
		s->ppath = dup_or_null(cfg->change_password_path);
		s->poptional = cfg->change_password_optional;
		s->n = 1;
		s->sv[0].name = xstrdup(cfg->change_name);
	} else {
		s->n = cfg->nchange_servers;
		for (i = 0; i < s->n; i++) {
			s->sv[i].name = xstrdup(cfg->change_servers[i].name);
			s->sv[i].host = xstrdup(cfg->change_servers[i].host);
			s->sv[i].port = cfg->change_servers[i].port;
			s->sv[i].mc = mc_conn(s, &s->sv[i]);
		}
	}
	for (i = 0; i < s->n; i++)
		s->sv[i].src = s;
	if ((s->timer = evtimer_new(base, on_timer, s)) == NULL ||
	    (s->soon = event_new(base, -1, 0, on_soon, s)) == NULL)
		fatalx("event_new failed");
	evtimer_add(s->timer, &now);
	start_pushes(s);
	return s;
}

void
chgsrc_free(struct chgsrc *s)
{
	size_t	i;

	if (s == NULL)
		return;
	event_free(s->timer);
	event_free(s->soon);
	rdw_free(s->rdw);
	if (s->rc != NULL)
		redisFree(s->rc);
	for (i = 0; i < s->n; i++) {
		mcw_free(s->sv[i].mcw);
		if (s->sv[i].mc != NULL)
			memcached_free(s->sv[i].mc);
		free(s->sv[i].name);
		free(s->sv[i].host);
		free(s->sv[i].val);
	}
	free(s->key);
	free(s->name);
	free(s->rhost);
	free(s->rsocket);
	free(s->ruser);
	secret_free(s->rpassword);
	free(s->ppath);
	free(s);
}

/* Whether two optional strings are equal. */
static bool
same(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool
chgsrc_same(const struct cfg *a, const struct cfg *b)
{
	size_t	i;

	if (!same(a->change_key, b->change_key) ||
	    a->change_backend != b->change_backend ||
	    !same(a->change_name, b->change_name) ||
	    a->change_notify != b->change_notify ||
	    a->change_poll_ms != b->change_poll_ms ||
	    a->nchange_servers != b->nchange_servers ||
	    !same(a->change_redis_user, b->change_redis_user) ||
	    !same(a->change_redis_password, b->change_redis_password) ||
	    !same(a->change_password_path, b->change_password_path) ||
	    a->change_redis_db != b->change_redis_db ||
	    a->mc_connect_timeout_ms != b->mc_connect_timeout_ms ||
	    a->mc_io_timeout_ms != b->mc_io_timeout_ms)
		return false;
	for (i = 0; i < a->nchange_servers; i++)
		if (strcmp(a->change_servers[i].name,
		    b->change_servers[i].name) != 0)
			return false;
	return true;
}

bool
chgsrc_up(const struct chgsrc *s, enum chgsrc_how how)
{
	return s->told[how] && s->was_up[how];
}
