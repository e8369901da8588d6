/*
 * store_redis.c: the Redis backend (operations.md: Redis), through hiredis.
 *
 * One server.  Writes are SET key value (no expiry) and DEL, appended to
 * the connection's output buffer and written out at store_flush (so that
 * store_reconnect drops a batch unsent: the writer's batches are bounded),
 * where the replies are read.  Every error reply to a SET is a refused
 * write reported through the flush's callback, nothing is silent, and
 * Redis keeps the key's old value (an error reply changes nothing, unlike
 * memcached, which drops the old item when it refuses a set): -OOM under
 * maxmemory with noeviction, -READONLY on a replica, -NOAUTH, -MISCONF...
 * -LOADING (a restarted server still reading its data file) and -BUSY (a
 * script running) pass: those SETs are sent again at the flush, a few
 * times.  AUTH and SELECT run at each connect, so a wrong password or
 * database is one clear error there.  Values carry no flags in Redis:
 * store_mget reports the configured ones.  Keys have no length limit.
 */
#include <sys/time.h>

#include <errno.h>
#include <time.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "config.h"
#include "log.h"
#include "store_be.h"
#include "secret.h"
#include "util.h"

/* Redis's default proto-max-bulk-len: the largest value it accepts. */
#define MAX_BULK	(512UL * 1024 * 1024)
/* Keys per MGET. */
#define MGET_BATCH	500
/*
 * SETs answered -LOADING or -BUSY are sent again after 100 ms, then after
 * pauses that double, five times: about three seconds in all.  Once that
 * ran out, batches do not wait again for as long.
 */
#define RETRY_TRIES	5
#define RETRY_FIRST_MS	100
#define RETRY_ALL_MS	3100

/* A command whose reply has not been read yet. */
struct rpend {
	const char	*key;		/* borrowed until the flush */
	size_t		 keylen;
	const void	*val;		/* SET: borrowed until the flush */
	size_t		 len;		/* value bytes */
	size_t		 tag;
	bool		 set;		/* SET (else DEL) */
};

/* A growable list of commands (sent, or to send again). */
struct rlist {
	struct rpend	*v;
	size_t		 n;
	size_t		 cap;
};

/* One per store: grouped by meaning, not packed. */
struct rd {	/* NOLINT(clang-analyzer-optin.performance.Padding) */
	char		*host;		/* NULL: unix socket */
	int		 port;
	char		*socket;
	int		 db;
	char		*user;
	char		*password;	/* from the URL, or NULL */
	char		*password_file;	/* cfg's redis_password_path */
	bool		 password_optional;	/* the credential: if present */
	struct timeval	 connect_tv;
	struct timeval	 io_tv;
	bool		 probing;	/* store_probe(): short bounds */
	uint32_t	 flags;		/* what store_mget reports */

	redisContext	*c;		/* the write connection */
	redisContext	*lc;		/* the lease's, or NULL */
	struct rlist	 pend;		/* replies not read yet */
	bool		 failed;	/* the connection failed in this batch */
	struct rlist	 again;		/* -LOADING, -BUSY: to send again */
	size_t		 retried;	/* SETs sent again in this batch */
	uint64_t	 gave_up;	/* mono_ms the retries last ran out */
	size_t		*refused;	/* tags refused in this batch */
	size_t		 nrefused;
	size_t		 caprefused;
	char		 first_key[256];	/* the first error reply, to log */
	char		 first_error[256];
	size_t		 first_len;
	bool		 first_seen;
};

/* The backend's own state of a store. */
static struct rd *
rd_of(const struct store *st)
{
	return st->impl;
}

/* A duration in milliseconds as hiredis wants it. */
static struct timeval
ms_tv(long ms)
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/* Keep what the connections need from the configuration. */
static void
rd_open(struct store *st, const struct cfg *cfg)
{
	struct rd	*rd;

	rd = xcalloc(1, sizeof *rd);
	rd->host = cfg->redis_host != NULL ? xstrdup(cfg->redis_host) : NULL;
	rd->port = cfg->redis_port;
	rd->socket = cfg->redis_socket != NULL ?
	    xstrdup(cfg->redis_socket) : NULL;
	rd->db = cfg->redis_db;
	rd->user = cfg->redis_user != NULL ? xstrdup(cfg->redis_user) : NULL;
	rd->password = cfg->redis_password != NULL ?
	    xstrdup(cfg->redis_password) : NULL;
	rd->password_file = cfg->redis_password_path != NULL ?
	    xstrdup(cfg->redis_password_path) : NULL;
	rd->password_optional = cfg->redis_password_optional;
	rd->connect_tv = ms_tv(cfg->mc_connect_timeout_ms);
	rd->io_tv = ms_tv(cfg->mc_io_timeout_ms);
	rd->flags = cfg->value_format == VALUE_PICKLE ? 1 : 0;
	st->impl = rd;
	st->n = 1;
	st->sv[0].name = xstrdup(cfg->servers[0].name);
}

static void
rd_close(struct store *st)
{
	struct rd	*rd = rd_of(st);

	if (rd->c != NULL)
		redisFree(rd->c);
	if (rd->lc != NULL)
		redisFree(rd->lc);
	free(rd->host);
	free(rd->socket);
	free(rd->user);
	secret_free(rd->password);
	free(rd->password_file);
	free(rd->pend.v);
	free(rd->again.v);
	free(rd->refused);
	free(rd);
}

int
store_redis_password(const char *password, const char *path, bool optional,
    char **pw, char *err, size_t errlen)
{
	char		 buf[1024];
	FILE		*f;
	size_t		 n;

	*pw = NULL;
	if (password != NULL) {
		*pw = xstrdup(password);
		return 0;
	}
	if (path == NULL || (optional && access(path, F_OK) != 0))
		return 0;
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "cannot read the password file %s: %s",
		    path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	*pw = xstrdup(buf);
	explicit_bzero(buf, sizeof buf);
	return 0;
}

/* The password to send (store_redis_password), read at every connect. */
static int
read_password(const struct rd *rd, char **pw, char *err, size_t errlen)
{
	return store_redis_password(rd->password, rd->password_file,
	    rd->password_optional, pw, err, errlen);
}

/* The bound of the monitor's reads (store_probe), as for memcached. */
#define PROBE_MS	50

/* A timeout as it applies now: at most PROBE_MS while probing. */
static struct timeval
bounded(const struct rd *rd, struct timeval tv)
{
	struct timeval	probe = { 0, PROBE_MS * 1000 };

	if (rd->probing && (tv.tv_sec > 0 || tv.tv_usec > probe.tv_usec))
		return probe;
	return tv;
}

/* Run one command on c; NULL with err set if it failed or was refused. */
static redisReply *
command(redisContext *c, const char *what, int argc, const char **argv,
    const size_t *lens, char *err, size_t errlen)
{
	redisReply	*r;

	r = redisCommandArgv(c, argc, argv, lens);
	if (r == NULL) {
		snprintf(err, errlen, "%s: %s", what, c->errstr[0] != '\0' ?
		    c->errstr : "no reply");
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "%s refused: %s", what, r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/*
 * A new connection, authenticated and on the configured database (the
 * SELECT is also the round trip that proves the server answers); NULL
 * with err set.
 */
static redisContext *
connect_server(const struct rd *rd, char *err, size_t errlen)
{
	redisContext	*c;
	redisReply	*r;
	char		*pw = NULL, db[16];
	const char	*argv[3];
	size_t		 lens[3];
	int		 argc = 0;

	if (read_password(rd, &pw, err, errlen) == -1)
		return NULL;
	if (rd->host != NULL)
		c = redisConnectWithTimeout(rd->host, rd->port,
		    bounded(rd, rd->connect_tv));
	else
		c = redisConnectUnixWithTimeout(rd->socket,
		    bounded(rd, rd->connect_tv));
	if (c == NULL || c->err) {
		snprintf(err, errlen, "connect: %s", c != NULL ? c->errstr :
		    "out of memory");
		goto fail;
	}
	if (redisSetTimeout(c, bounded(rd, rd->io_tv)) != REDIS_OK) {
		snprintf(err, errlen, "connect: cannot set the I/O timeout");
		goto fail;
	}
	if (pw != NULL) {
		argv[argc] = "AUTH";
		lens[argc++] = 4;
		if (rd->user != NULL) {
			argv[argc] = rd->user;
			lens[argc++] = strlen(rd->user);
		}
		argv[argc] = pw;
		lens[argc++] = strlen(pw);
		if ((r = command(c, "AUTH", argc, argv, lens, err,
		    errlen)) == NULL)
			goto fail;
		freeReplyObject(r);
	}
	snprintf(db, sizeof db, "%d", rd->db);
	argv[0] = "SELECT";
	lens[0] = 6;
	argv[1] = db;
	lens[1] = strlen(db);
	if ((r = command(c, "SELECT", 2, argv, lens, err, errlen)) == NULL)
		goto fail;
	freeReplyObject(r);
	secret_free(pw);
	return c;
fail:
	secret_free(pw);
	if (c != NULL)
		redisFree(c);
	return NULL;
}

/* Drop the write connection: its pending replies are lost with it. */
static void
drop(struct rd *rd)
{
	if (rd->c != NULL)
		redisFree(rd->c);
	rd->c = NULL;
	if (rd->pend.n > 0)
		rd->failed = true;
	rd->pend.n = 0;
	rd->again.n = 0;
}

/* The write connection failed: mark the server down and drop it. */
static void
server_down(struct store *st, const char *op, const char *error)
{
	store_mark_down(st, 0, op, error);
	drop(rd_of(st));
}

/* Make sure there is a write connection; false if the server is down. */
static bool
ready(struct store *st)
{
	struct rd	*rd = rd_of(st);
	char		 err[256];

	if (rd->c != NULL)
		return true;
	if (!store_may_try(st, 0))
		return false;
	if ((rd->c = connect_server(rd, err, sizeof err)) == NULL) {
		store_mark_down(st, 0, "connect", err);
		return false;
	}
	store_mark_up(st, 0);
	return true;
}

/* Add a command to a list. */
static void
rlist_add(struct rlist *l, const struct rpend *p)
{
	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 256 : l->cap * 2;
		l->v = xreallocarray(l->v, l->cap, sizeof *l->v);
	}
	l->v[l->n++] = *p;
}

/* Remember the batch's first error reply to a SET, to log it. */
static void
note_error(struct rd *rd, const struct rpend *p, const char *error)
{
	if (rd->first_seen)
		return;
	rd->first_seen = true;
	snprintf(rd->first_error, sizeof rd->first_error, "%s", error);
	snprintf(rd->first_key, sizeof rd->first_key, "%.*s",
	    (int)(p->keylen < 255 ? p->keylen : 255), p->key);
	rd->first_len = p->len;
}

/* A SET the server refused: reported at the flush (the old value stays). */
static void
refusal(struct rd *rd, const struct rpend *p)
{
	if (rd->nrefused == rd->caprefused) {
		rd->caprefused = rd->caprefused == 0 ? 64 : rd->caprefused * 2;
		rd->refused = xreallocarray(rd->refused, rd->caprefused,
		    sizeof *rd->refused);
	}
	rd->refused[rd->nrefused++] = p->tag;
}

/*
 * Whether an error reply says "not now" rather than "no": the server is
 * loading its data file, or a script holds it.
 */
static bool
transient(const char *error)
{
	return strncmp(error, "LOADING ", 8) == 0 ||
	    strncmp(error, "BUSY ", 5) == 0;
}

/*
 * Read the reply of every command sent so far (hiredis writes the output
 * buffer first); error replies to SETs are remembered for the flush.
 * -1 if the connection failed (the server is then down).
 */
static int
drain(struct store *st, const char *op)
{
	struct rd	*rd = rd_of(st);
	redisReply	*r;
	void		*v;
	size_t		 k;

	for (k = 0; k < rd->pend.n; k++) {
		const struct rpend *p = &rd->pend.v[k];

		if (redisGetReply(rd->c, &v) != REDIS_OK || v == NULL) {
			server_down(st, op, rd->c->errstr[0] != '\0' ?
			    rd->c->errstr : "no reply");
			return -1;
		}
		r = v;
		if (r->type == REDIS_REPLY_ERROR) {
			if (p->set)
				note_error(rd, p, r->str);
			if (p->set && transient(r->str))
				rlist_add(&rd->again, p);
			else if (p->set)
				refusal(rd, p);
			else
				store_refused(st, 0, "delete", NULL, 0, 0, 0,
				    r->str);
		}
		freeReplyObject(r);
	}
	rd->pend.n = 0;
	return 0;
}

/* Append one command, remembering what its reply will be about. */
static enum store_rc
append(struct store *st, int argc, const char **argv, const size_t *lens,
    const struct rpend *p)
{
	struct rd	*rd = rd_of(st);

	if (!ready(st))
		return STORE_DOWN;
	if (redisAppendCommandArgv(rd->c, argc, argv, lens) != REDIS_OK)
		fatalx("redisAppendCommandArgv: out of memory");
	rlist_add(&rd->pend, p);
	return STORE_OK;
}

/* store_fits: Redis takes any value up to its bulk length limit. */
static bool
rd_fits(const struct store *st, size_t i, size_t keylen, size_t len)
{
	(void)st;
	(void)i;
	return keylen + len <= MAX_BULK;
}

/* store_place: the one server. */
static size_t
rd_place(const struct store *st, const char *key, size_t keylen,
    size_t *idx)
{
	(void)st;
	(void)key;
	(void)keylen;
	idx[0] = 0;
	return 1;
}

/* Append SET key value (no expiry) for p. */
static enum store_rc
append_set(struct store *st, const struct rpend *p)
{
	const char	*argv[3] = { "SET", p->key, p->val };
	size_t		 lens[3] = { 3, p->keylen, p->len };

	return append(st, 3, argv, lens, p);
}

/* store_set: SET key value, no expiry, no flags. */
static enum store_rc
rd_set(struct store *st, size_t i, const char *key, size_t keylen,
    const void *val, size_t len, uint32_t flags, size_t tag)
{
	struct rpend	 p = { .key = key, .keylen = keylen, .val = val,
			    .len = len, .tag = tag, .set = true };

	(void)i;
	(void)flags;
	if (len > MAX_BULK)
		return STORE_TOO_BIG;
	return append_set(st, &p);
}

/* store_delete: DEL key. */
static enum store_rc
rd_del(struct store *st, size_t i, const char *key, size_t keylen)
{
	struct rpend	 p = { .key = key, .keylen = keylen, .val = NULL,
			    .len = 0, .tag = SIZE_MAX, .set = false };
	const char	*argv[2] = { "DEL", key };
	size_t		 lens[2] = { 3, keylen };
	enum store_rc	 rc;

	(void)i;
	rc = append(st, 2, argv, lens, &p);
	return rc;
}

/* Sleep ms milliseconds (the loop waits: the store is synchronous). */
static void
pause_ms(long ms)
{
	struct timespec	ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * Send the SETs answered -LOADING or -BUSY again, after pauses that double,
 * until the server takes them or RETRY_TRIES ran out; those still answered
 * so are refused (the old value stays).  After the retries ran out, the
 * next batches refuse at once for RETRY_ALL_MS: a server loading a large
 * file would otherwise hold every phase that long.  -1 if the connection
 * failed.
 */
static int
retry_transient(struct store *st)
{
	struct rd	*rd = rd_of(st);
	struct rlist	 l;
	long		 pause = RETRY_FIRST_MS;
	size_t		 k;
	int		 tries;

	if (rd->again.n == 0) {
		rd->gave_up = 0;
		return 0;
	}
	for (tries = 0; rd->again.n > 0 && tries < RETRY_TRIES &&
	    (rd->gave_up == 0 || mono_ms() - rd->gave_up >= RETRY_ALL_MS);
	    tries++) {
		pause_ms(pause);
		pause *= 2;
		l = rd->again;
		memset(&rd->again, 0, sizeof rd->again);
		for (k = 0; k < l.n; k++) {
			rd->retried++;
			if (append_set(st, &l.v[k]) != STORE_OK)
				break;
		}
		free(l.v);
		if (k < l.n || drain(st, "set") == -1)
			return -1;
	}
	if (rd->again.n > 0) {
		rd->gave_up = mono_ms();
		for (k = 0; k < rd->again.n; k++)
			refusal(rd, &rd->again.v[k]);
		rd->again.n = 0;
	} else
		rd->gave_up = 0;
	return 0;
}

/*
 * The batch's error replies, as one memcached_error (the first reply in
 * it): through store_retried, so that the writer thread's store keeps it
 * for the loop.
 */
static void
note_refusals(struct store *st, const struct rd *rd)
{
	char	error[600];

	snprintf(error, sizeof error, "%s: %s", rd->first_error,
	    rd->nrefused > 0 ? "not written, Redis keeps the old values" :
	    "written when sent again");
	store_retried(st, 0, rd->first_key, rd->first_len, rd->nrefused,
	    rd->retried, error);
}

/* store_flush: read every reply; report the SETs refused. */
static int
rd_flush(struct store *st, size_t i, store_refused_cb refused, void *arg)
{
	struct rd	*rd = rd_of(st);
	size_t		 k;
	int		 ret = -1;

	(void)i;
	if (rd->failed || (rd->c == NULL && !st->sv[0].up))
		goto out;
	if (rd->c != NULL && (drain(st, "flush") == -1 ||
	    retry_transient(st) == -1))
		goto out;
	ret = 0;
	if (rd->nrefused > 0 || rd->retried > 0)
		note_refusals(st, rd);
	for (k = 0; refused != NULL && k < rd->nrefused; k++)
		refused(rd->refused[k], true, arg);
out:
	rd->failed = false;
	rd->nrefused = 0;
	rd->again.n = 0;
	rd->retried = 0;
	rd->first_seen = false;
	return ret;
}

/* A number for store_stats' pid: FNV-1a of the run_id. */
static long
id_number(const char *s)
{
	uint64_t	h = 14695981039346656037ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return (long)(h & LONG_MAX);
}

/* The value of "name:" in INFO's text, into out; false if absent. */
static bool
info_field(const char *info, const char *name, char *out, size_t outlen)
{
	const char	*p = info, *end;
	size_t		 nl = strlen(name), n;

	while ((p = strstr(p, name)) != NULL) {
		if ((p == info || p[-1] == '\n') && p[nl] == ':') {
			p += nl + 1;
			end = p + strcspn(p, "\r\n");
			n = (size_t)(end - p);
			if (n >= outlen)
				return false;
			memcpy(out, p, n);
			out[n] = '\0';
			return true;
		}
		p += nl;
	}
	return false;
}

/*
 * Whether a connection's or INFO's failure is a transient reply (a server
 * loading its file, a script running): not now, not down.  Every fresh
 * connection gets it, and the writer's SETs wait it out on their own.
 */
static bool
transient_refusal(const char *err)
{
	const char	*p = strstr(err, " refused: ");

	return p != NULL && transient(p + strlen(" refused: "));
}

/*
 * store_stats: INFO server's run_id and uptime, on a fresh connection.
 * -1 without marking the server down on a transient reply: the caller
 * treats the server as unknown for now (nothing confirmed).
 */
static int
rd_stats(struct store *st, size_t i, struct store_stats *out)
{
	struct rd	*rd = rd_of(st);
	redisContext	*c;
	redisReply	*r = NULL;
	const char	*argv[2] = { "INFO", "server" };
	size_t		 lens[2] = { 4, 6 };
	char		 err[256], up[32];
	int		 ret = -1;

	(void)i;
	if ((c = connect_server(rd, err, sizeof err)) == NULL) {
		if (!transient_refusal(err))
			server_down(st, "stats", err);
		return -1;
	}
	if ((r = command(c, "INFO", 2, argv, lens, err, sizeof err)) ==
	    NULL) {
		if (!transient_refusal(err))
			server_down(st, "stats", err);
		goto out;
	}
	if (r->type != REDIS_REPLY_STRING ||
	    !info_field(r->str, "run_id", out->id, sizeof out->id) ||
	    !info_field(r->str, "uptime_in_seconds", up, sizeof up)) {
		server_down(st, "stats", "INFO server has no run_id or "
		    "uptime_in_seconds");
		goto out;
	}
	out->uptime = strtoul(up, NULL, 10);
	out->pid = id_number(out->id);
	store_mark_up(st, 0);
	ret = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	redisFree(c);
	return ret;
}

/* store_reconnect: drop the write connection; the next write reconnects. */
static void
rd_reconnect(struct store *st, size_t i)
{
	struct rd	*rd = rd_of(st);

	(void)i;
	if (rd->c != NULL)
		redisFree(rd->c);
	rd->c = NULL;
	rd->pend.n = 0;
	rd->again.n = 0;
	rd->retried = 0;
	rd->first_seen = false;
	rd->nrefused = 0;
	rd->failed = false;
	st->sv[0].retry_at = 0;
}

/* store_mget: MGET in batches, after the replies of the writes before. */
static int
rd_mget(struct store *st, size_t i, const char *const *keys,
    const size_t *lens, size_t n, store_hit_cb cb, void *arg)
{
	struct rd	*rd = rd_of(st);
	redisReply	*r;
	const char	*argv[MGET_BATCH + 1];
	size_t		 alen[MGET_BATCH + 1], off, nb, j;

	(void)i;
	if (!ready(st) || drain(st, "get") == -1)
		return -1;
	argv[0] = "MGET";
	alen[0] = 4;
	for (off = 0; off < n; off += nb) {
		nb = n - off < MGET_BATCH ? n - off : MGET_BATCH;
		memcpy(argv + 1, keys + off, nb * sizeof *argv);
		memcpy(alen + 1, lens + off, nb * sizeof *alen);
		r = redisCommandArgv(rd->c, (int)nb + 1, argv, alen);
		if (r == NULL) {
			server_down(st, "get", rd->c->errstr[0] != '\0' ?
			    rd->c->errstr : "no reply");
			return -1;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements != nb) {
			server_down(st, "get", r->type == REDIS_REPLY_ERROR ?
			    r->str : "MGET answered something else");
			freeReplyObject(r);
			return -1;
		}
		for (j = 0; j < nb; j++)
			if (r->element[j]->type == REDIS_REPLY_STRING)
				cb(off + j, r->element[j]->str,
				    r->element[j]->len, rd->flags, arg);
		freeReplyObject(r);
	}
	return 0;
}

/*
 * The lease's scripts: compare and set, compare and delete.  RENEW takes
 * the lease again if it is gone (expired, or the server restarted empty).
 */
static const char	renew_lua[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == ARGV[1] then "
    "redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 "
    "elseif not v then "
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) "
    "then return 1 end end "
    "return 0";
static const char	release_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('DEL', KEYS[1]) end return 0";

/* store_lease: SET NX PX, and the scripts above, on a connection of its own. */
static int
rd_lease(struct store *st, size_t i, enum store_lease_op op, const char *key,
    size_t keylen, const char *id, long ttl_ms, char *err, size_t errlen)
{
	struct rd	*rd = rd_of(st);
	redisReply	*r;
	const char	*argv[6];
	size_t		 lens[6];
	char		 ttl[32];
	int		 argc, ret;

	(void)i;
	if (rd->lc == NULL && (rd->lc = connect_server(rd, err, errlen)) ==
	    NULL)
		return -1;
	snprintf(ttl, sizeof ttl, "%ld", ttl_ms);
	if (op == STORE_LEASE_TAKE) {
		argv[0] = "SET";
		argv[1] = key;
		argv[2] = id;
		argv[3] = "NX";
		argv[4] = "PX";
		argv[5] = ttl;
		argc = 6;
	} else {
		argv[0] = "EVAL";
		argv[1] = op == STORE_LEASE_RENEW ? renew_lua : release_lua;
		argv[2] = "1";
		argv[3] = key;
		argv[4] = id;
		argv[5] = ttl;
		argc = op == STORE_LEASE_RENEW ? 6 : 5;
	}
	for (ret = 0; ret < argc; ret++)
		lens[ret] = argv[ret] == key ? keylen : strlen(argv[ret]);
	if ((r = command(rd->lc, argv[0], argc, argv, lens, err, errlen)) ==
	    NULL) {
		redisFree(rd->lc);
		rd->lc = NULL;
		return -1;
	}
	if (op == STORE_LEASE_TAKE)
		ret = r->type == REDIS_REPLY_STATUS ? 0 : 1;	/* nil: held */
	else
		ret = r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? 0 : 1;
	freeReplyObject(r);
	return ret;
}

/* store_probe: the monitor's reads on the write connection, bounded. */
static void
rd_probe(struct store *st, bool on)
{
	struct rd	*rd = rd_of(st);

	rd->probing = on;
	if (rd->c != NULL)
		(void)redisSetTimeout(rd->c, bounded(rd, rd->io_tv));
}

const struct store_be store_be_redis = {
	.name = "redis",
	.open = rd_open,
	.close = rd_close,
	.fits = rd_fits,
	.place = rd_place,
	.set = rd_set,
	.del = rd_del,
	.flush = rd_flush,
	.stats = rd_stats,
	.reconnect = rd_reconnect,
	.mget = rd_mget,
	.lease = rd_lease,
	.probe = rd_probe,
};
