/*
 * mcwatch.c: memcached's watch stream: the line parser, and one connection
 * per server on the event loop (a bufferevent) that reads the server's
 * stats, starts the watch and hands every line on.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "log.h"
#include "mcwatch.h"
#include "util.h"

/* --- the line parser ------------------------------------------------- */

/* At most this many name=value fields after type= (1.6.18 prints 7). */
#define MAX_FIELDS	16

struct field {
	const char	*name;
	size_t		 namelen;
	const char	*val;
	size_t		 vallen;
};

/* Whether memcached's uriencode leaves the byte bare. */
static bool
uri_bare(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/* Decode memcached's URI encoding of a key; -1 if it is not one. */
int
mcw_uridecode(const char *in, size_t len, unsigned char out[MCW_KEY_MAX + 1])
{
	const unsigned char	*p = (const unsigned char *)in;
	size_t			 i, n = 0;
	int			 hi, lo;

	for (i = 0; i < len; i++) {
		if (n == MCW_KEY_MAX)
			return -1;
		if (p[i] == '%') {
			if (len - i < 3 || (hi = hex_digit(p[i + 1])) == -1 ||
			    (lo = hex_digit(p[i + 2])) == -1)
				return -1;
			out[n++] = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (uri_bare(p[i]))
			out[n++] = p[i];
		else
			return -1;
	}
	out[n] = '\0';
	return (int)n;
}

/* A decimal number of at most max; -1 if it is anything else. */
static int
parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t	n = 0;
	size_t		i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9 || n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	if (n > max)
		return -1;
	*out = n;
	return 0;
}

/* A decimal number, maybe negative, within [-max, max]; -1 otherwise. */
static int
parse_i64(const char *s, size_t len, uint64_t max, long long *out)
{
	uint64_t	n;

	if (len > 0 && s[0] == '-') {
		if (parse_u64(s + 1, len - 1, max, &n) == -1)
			return -1;
		*out = -(long long)n;
		return 0;
	}
	if (parse_u64(s, len, max, &n) == -1)
		return -1;
	*out = (long long)n;
	return 0;
}

/* Whether s (len bytes) is lit. */
static bool
is(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

/* Whether s starts with lit. */
static bool
starts(const char *s, size_t len, const char *lit)
{
	size_t	n = strlen(lit);

	return len >= n && memcmp(s, lit, n) == 0;
}

/* The index of s in names[0..n), or -1. */
static int
lookup(const char *s, size_t len, const char *const *names, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		if (is(s, len, names[i]))
			return i;
	return -1;
}

/* The field called name, or NULL. */
static const struct field *
find(const struct field *f, int n, const char *name)
{
	int	i;

	for (i = 0; i < n; i++)
		if (is(f[i].name, f[i].namelen, name))
			return &f[i];
	return NULL;
}

/*
 * Split "name=value name=value ..." (single spaces, no empty field) into
 * f; the number of fields, or -1.  A name given twice is an error.
 */
static int
split_fields(const char *s, size_t len, struct field *f, const char **why)
{
	size_t	i = 0, j;
	int	n = 0, k;

	while (i < len) {
		const char	*tok = s + i, *eq;
		size_t		 toklen;

		for (j = i; j < len && s[j] != ' '; j++)
			;
		toklen = j - i;
		if (toklen == 0) {
			*why = "empty field";
			return -1;
		}
		if ((eq = memchr(tok, '=', toklen)) == NULL || eq == tok) {
			*why = "field without name=value";
			return -1;
		}
		if (n == MAX_FIELDS) {
			*why = "too many fields";
			return -1;
		}
		f[n].name = tok;
		f[n].namelen = (size_t)(eq - tok);
		f[n].val = eq + 1;
		f[n].vallen = toklen - f[n].namelen - 1;
		for (k = 0; k < n; k++)
			if (f[k].namelen == f[n].namelen &&
			    memcmp(f[k].name, f[n].name, f[n].namelen) == 0) {
				*why = "field repeated";
				return -1;
			}
		n++;
		i = j + 1;
		if (j + 1 == len) {
			*why = "empty field";
			return -1;
		}
	}
	return n;
}

/* An unsigned field into *out (left alone when optional and absent). */
static int
field_u64(const struct field *f, int n, const char *name, bool required,
    uint64_t max, uint64_t *out, const char **why)
{
	const struct field	*x = find(f, n, name);

	if (x == NULL) {
		if (required)
			*why = "field missing";
		return required ? -1 : 0;
	}
	if (parse_u64(x->val, x->vallen, max, out) == -1) {
		*why = "bad number";
		return -1;
	}
	return 0;
}

/* The key= field, decoded. */
static int
field_key(const struct field *f, int n, struct mcw_line *out,
    const char **why)
{
	const struct field	*x = find(f, n, "key");
	int			 k;

	if (x == NULL) {
		*why = "key missing";
		return -1;
	}
	if ((k = mcw_uridecode(x->val, x->vallen, out->key)) == -1) {
		*why = "key not URI-encoded, or too long";
		return -1;
	}
	out->keylen = (size_t)k;
	return 0;
}

/* A field whose value is one of names, into *out. */
static int
field_enum(const struct field *f, int n, const char *name,
    const char *const *names, int nnames, int *out, const char **why)
{
	const struct field	*x = find(f, n, name);

	if (x == NULL) {
		*why = "field missing";
		return -1;
	}
	if ((*out = lookup(x->val, x->vallen, names, nnames)) == -1) {
		*why = "unknown value";
		return -1;
	}
	return 0;
}

/* cfd=, signed as memcached prints it. */
static int
field_cfd(const struct field *f, int n, bool required, struct mcw_line *out,
    const char **why)
{
	const struct field	*x = find(f, n, "cfd");
	long long		 v;

	if (x == NULL) {
		if (required)
			*why = "cfd missing";
		return required ? -1 : 0;
	}
	if (parse_i64(x->val, x->vallen, INT32_MAX, &v) == -1) {
		*why = "bad cfd";
		return -1;
	}
	out->cfd = (long)v;
	return 0;
}

/* A signed field that must be a number (ttl=, la=): checked, not kept. */
static int
field_check_i64(const struct field *f, int n, const char *name,
    const char **why)
{
	const struct field	*x = find(f, n, name);
	long long		 v;

	if (x != NULL && parse_i64(x->val, x->vallen, INT64_MAX, &v) == -1) {
		*why = "bad number";
		return -1;
	}
	return 0;
}

static const char *const get_status[] = {
	"not_found", "found", "flushed", "expired"
};
static const char *const store_status[] = {
	"not_stored", "stored", "exists", "not_found", "too_large", "no_memory"
};
static const char *const store_cmd[] = {
	"null", "add", "set", "replace", "append", "prepend", "cas", "na"
};
static const char *const yes_no[] = { "no", "yes" };

/* The fields of type=item_get. */
static int
parse_get(const struct field *f, int n, struct mcw_line *out,
    const char **why)
{
	uint64_t	clsid = 0;

	out->kind = MCW_GET;
	if (field_key(f, n, out, why) == -1 ||
	    field_enum(f, n, "status", get_status, 4, &out->status,
	    why) == -1 ||
	    field_u64(f, n, "clsid", false, 255, &clsid, why) == -1 ||
	    field_cfd(f, n, false, out, why) == -1 ||
	    field_u64(f, n, "size", false, INT32_MAX, &out->size, why) == -1)
		return -1;
	return 0;
}

/* The fields of type=item_store. */
static int
parse_store(const struct field *f, int n, struct mcw_line *out,
    const char **why)
{
	uint64_t	v = 0;

	out->kind = MCW_STORE;
	if (field_key(f, n, out, why) == -1 ||
	    field_enum(f, n, "status", store_status, 6, &out->status,
	    why) == -1 ||
	    field_enum(f, n, "cmd", store_cmd, 8, &out->cmd, why) == -1 ||
	    field_u64(f, n, "ttl", false, UINT32_MAX, &v, why) == -1 ||
	    field_u64(f, n, "clsid", false, 255, &v, why) == -1 ||
	    field_cfd(f, n, false, out, why) == -1 ||
	    field_u64(f, n, "size", false, INT32_MAX, &out->size, why) == -1)
		return -1;
	return 0;
}

/* The fields of type=eviction. */
static int
parse_eviction(const struct field *f, int n, struct mcw_line *out,
    const char **why)
{
	uint64_t	clsid = 0;
	int		fetched;

	out->kind = MCW_EVICTION;
	if (field_key(f, n, out, why) == -1 ||
	    field_enum(f, n, "fetch", yes_no, 2, &fetched, why) == -1 ||
	    field_check_i64(f, n, "ttl", why) == -1 ||
	    field_check_i64(f, n, "la", why) == -1 ||
	    field_u64(f, n, "clsid", false, 255, &clsid, why) == -1 ||
	    field_u64(f, n, "size", false, INT32_MAX, &out->size, why) == -1)
		return -1;
	out->fetched = fetched == 1;
	return 0;
}

/* The fields of type=conn_new and conn_close: only cfd matters. */
static int
parse_conn(const struct field *f, int n, enum mcw_kind kind,
    struct mcw_line *out, const char **why)
{
	uint64_t	port;

	out->kind = kind;
	if (field_cfd(f, n, true, out, why) == -1 ||
	    field_u64(f, n, "rport", false, 65535, &port, why) == -1)
		return -1;
	return 0;
}

/* "ts=S.U": seconds, and microseconds printed without leading zeros. */
static int
parse_ts(const struct field *x, struct mcw_line *out, const char **why)
{
	const char	*dot;
	uint64_t	 us;

	if (!is(x->name, x->namelen, "ts") ||
	    (dot = memchr(x->val, '.', x->vallen)) == NULL ||
	    parse_u64(x->val, (size_t)(dot - x->val), INT64_MAX,
	    &out->ts_sec) == -1 ||
	    parse_u64(dot + 1, x->vallen - (size_t)(dot - x->val) - 1, 999999,
	    &us) == -1) {
		*why = "bad ts";
		return -1;
	}
	out->ts_usec = (uint32_t)us;
	return 0;
}

/* A log line: ts= gid= type= and the type's fields. */
static int
parse_entry(const char *s, size_t len, struct mcw_line *out,
    const char **why)
{
	struct field	 f[MAX_FIELDS + 3];
	int		 n;

	if ((n = split_fields(s, len, f, why)) == -1)
		return -1;
	if (n < 3 || parse_ts(&f[0], out, why) == -1)
		return n < 3 ? (*why = "too few fields", -1) : -1;
	if (!is(f[1].name, f[1].namelen, "gid") ||
	    parse_u64(f[1].val, f[1].vallen, UINT64_MAX, &out->gid) == -1) {
		*why = "bad gid";
		return -1;
	}
	if (!is(f[2].name, f[2].namelen, "type") || f[2].vallen == 0) {
		*why = "type missing";
		return -1;
	}
	if (is(f[2].val, f[2].vallen, "item_get"))
		return parse_get(f + 3, n - 3, out, why);
	if (is(f[2].val, f[2].vallen, "item_store"))
		return parse_store(f + 3, n - 3, out, why);
	if (is(f[2].val, f[2].vallen, "eviction"))
		return parse_eviction(f + 3, n - 3, out, why);
	if (is(f[2].val, f[2].vallen, "conn_new"))
		return parse_conn(f + 3, n - 3, MCW_CONN_NEW, out, why);
	if (is(f[2].val, f[2].vallen, "conn_close"))
		return parse_conn(f + 3, n - 3, MCW_CONN_CLOSE, out, why);
	out->kind = MCW_OTHER;
	out->text = f[2].val;
	out->textlen = f[2].vallen;
	return 0;
}

/* Whether the line is one of the server's refusals of `watch`. */
static bool
is_refusal(const char *s, size_t len)
{
	return is(s, len, "ERROR") || starts(s, len, "ERROR ") ||
	    starts(s, len, "CLIENT_ERROR ") || starts(s, len, "SERVER_ERROR ") ||
	    starts(s, len, "WATCHER_TOO_MANY") ||
	    starts(s, len, "WATCHER_FAILED");
}

/* Parse one line of the stream. */
int
mcw_parse(const char *line, size_t len, struct mcw_line *out,
    const char **why)
{
	size_t	i;

	memset(out, 0, sizeof *out);
	out->cfd = -1;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len >= MCW_LINE_MAX) {
		*why = "line longer than memcached's";
		return -1;
	}
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 ||
		    (unsigned char)line[i] > 0x7e) {
			*why = "not printable ASCII";
			return -1;
		}
	if (is(line, len, "OK")) {
		out->kind = MCW_OK;
		return 0;
	}
	if (is_refusal(line, len)) {
		out->kind = MCW_REFUSED;
		out->text = line;
		out->textlen = len;
		return 0;
	}
	if (starts(line, len, "skipped=")) {
		out->kind = MCW_SKIPPED;
		if (parse_u64(line + 8, len - 8, UINT64_MAX, &out->skipped) ==
		    -1) {
			*why = "bad skipped count";
			return -1;
		}
		return 0;
	}
	if (starts(line, len, "ts="))
		return parse_entry(line, len, out, why);
	*why = "not a watch line";
	return -1;
}

/* --- the connection --------------------------------------------------- */

/* The most bytes one read callback handles: the loop keeps serving. */
#define READ_MAX	16384
/* The daemon's own connections remembered per server. */
#define OWN_MAX		64
/* STAT lines read before the watch, at most. */
#define STATS_MAX	512
/*
 * A watch that lasted this long starts the backoff again from the minimum:
 * a server restarted after a second of watching is watched again within
 * backoff_min (its keys go back at once); a connect loop still backs off.
 */
#define STEADY_MS	1000

/*
 * A connection of the daemon's: its cfd, and the gid of the line that
 * announced it.  Lines of different worker threads reach a watcher out of
 * gid order, so a conn_close of the cfd's previous connection may come
 * after the announcement: only events with a later gid forget it.
 */
struct own {
	long		 cfd;
	uint64_t	 gid;
};

enum phase {
	PH_IDLE,	/* no connection: waiting to (re)connect */
	PH_CONNECT,	/* connecting */
	PH_STATS,	/* "stats" sent: reading STAT lines */
	PH_WATCH,	/* "watch ..." sent: waiting for OK */
	PH_STREAM	/* lines flow */
};

struct mcw {
	struct event_base	*base;
	struct evdns_base	*dns;
	char			*host;
	int			 port;
	char			*watchcmd;	/* "watch STREAMS\r\n" */
	long			 timeout_ms;
	long			 bmin, bmax, backoff;
	struct mcw_cbs		 cbs;
	void			*arg;

	struct bufferevent	*bev;
	struct event		*timer;		/* timeouts, reconnects */
	long			 awake_ms;	/* 0: no keep-awake */
	struct bufferevent	*abev;		/* the keep-awake connection */
	struct event		*atimer;
	enum phase		 phase;
	enum mcw_state		 state;
	bool			 reported;	/* state told once at least */
	struct mcw_info		 info;		/* being read */
	int			 nstats;
	bool			 discard;	/* dropping an overlong line */
	uint64_t		 up_at;		/* mono_ms of the last OK */
	struct own		 own[OWN_MAX];	/* server cfds that are ours */
	size_t			 nown;
	struct mcw_counts	 counts;
};

static void	mcw_connect(struct mcw *);

/* Arm ev for ms. */
static void
arm_ev(struct event *ev, long ms)
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

/* Arm the timer for ms. */
static void
arm(struct mcw *w, long ms)
{
	arm_ev(w->timer, ms);
}

/* Drop the keep-awake connection, if any. */
static void
awake_drop(struct mcw *w)
{
	if (w->abev != NULL)
		bufferevent_free(w->abev);
	w->abev = NULL;
}

/* Drop the connection, if any. */
static void
teardown(struct mcw *w)
{
	if (w->bev != NULL)
		bufferevent_free(w->bev);
	w->bev = NULL;
	awake_drop(w);
	if (w->atimer != NULL)
		evtimer_del(w->atimer);
	w->phase = PH_IDLE;
	w->discard = false;
	w->nown = 0;
	evtimer_del(w->timer);
}

/* Tell the caller of a change of state. */
static void
set_state(struct mcw *w, enum mcw_state st, const char *why,
    const struct mcw_info *info)
{
	if (st == w->state && w->reported)
		return;
	w->state = st;
	w->reported = true;
	if (w->cbs.state != NULL)
		w->cbs.state(st, why, info, w->arg);
}

/* The connection failed: report it, and try again after the backoff. */
static void
mcw_fail(struct mcw *w, const char *why)
{
	long	delay;

	if (w->phase == PH_STREAM && mono_ms() - w->up_at >= STEADY_MS)
		w->backoff = w->bmin;
	teardown(w);
	set_state(w, MCW_DOWN, why, NULL);
	delay = (long)((double)w->backoff * (0.8 + 0.4 * rand_unit()));
	w->backoff = w->backoff * 2 > w->bmax ? w->bmax : w->backoff * 2;
	arm(w, delay);
}

/* The server refused the watch: try again now and then. */
static void
mcw_refused(struct mcw *w, const char *text, size_t len)
{
	char	why[256];

	snprintf(why, sizeof why, "%.*s", (int)len, text);
	teardown(w);
	set_state(w, MCW_UNAVAILABLE, why, NULL);
	arm(w, (long)((double)w->bmax * (0.8 + 0.4 * rand_unit())));
}

/* The daemon's connection on cfd, or NULL. */
static struct own *
own_find(struct mcw *w, long cfd)
{
	size_t	i;

	for (i = 0; i < w->nown; i++)
		if (w->own[i].cfd == cfd)
			return &w->own[i];
	return NULL;
}

/* A connection on cfd opened or closed at gid: forget ours if it was before. */
static void
own_del(struct mcw *w, long cfd, uint64_t gid)
{
	struct own	*o;

	if ((o = own_find(w, cfd)) != NULL && o->gid < gid)
		*o = w->own[--w->nown];
}

/* Remember cfd as ours from gid on (the oldest goes when the table is full). */
static void
own_add(struct mcw *w, long cfd, uint64_t gid)
{
	struct own	*o;

	if (cfd < 0)
		return;
	if ((o = own_find(w, cfd)) != NULL) {
		if (o->gid < gid)
			o->gid = gid;
		return;
	}
	if (w->nown == OWN_MAX) {
		memmove(w->own, w->own + 1, (OWN_MAX - 1) * sizeof *w->own);
		w->nown--;
	}
	w->own[w->nown].cfd = cfd;
	w->own[w->nown].gid = gid;
	w->nown++;
}

/* Flag the daemon's own lines, learning and forgetting its connections. */
static void
own_mark(struct mcw *w, struct mcw_line *l)
{
	struct own	*o;

	switch (l->kind) {
	case MCW_GET:
		if (l->keylen == sizeof MCW_SELF_KEY - 1 &&
		    memcmp(l->key, MCW_SELF_KEY, l->keylen) == 0)
			own_add(w, l->cfd, l->gid);
		/* FALLTHROUGH */
	case MCW_STORE:
		/* a line of the cfd's previous connection may come late */
		l->own = l->cfd >= 0 && (o = own_find(w, l->cfd)) != NULL &&
		    l->gid >= o->gid;
		break;
	case MCW_CONN_NEW:
	case MCW_CONN_CLOSE:
		own_del(w, l->cfd, l->gid);
		break;
	default:
		break;
	}
}

/* One STAT line of the reply to "stats"; 1 at END, -1 if not stats. */
static int
stats_line(struct mcw *w, const char *s, size_t len)
{
	const char	*name, *val, *sp;
	size_t		 namelen, vallen;
	uint64_t	 n;

	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (is(s, len, "END"))
		return 1;
	if (!starts(s, len, "STAT ") || ++w->nstats > STATS_MAX)
		return -1;
	name = s + 5;
	if ((sp = memchr(name, ' ', len - 5)) == NULL)
		return -1;
	namelen = (size_t)(sp - name);
	val = sp + 1;
	vallen = len - 5 - namelen - 1;
	if (is(name, namelen, "version"))
		snprintf(w->info.version, sizeof w->info.version, "%.*s",
		    (int)vallen, val);
	else if (parse_u64(val, vallen, INT64_MAX, &n) == 0) {
		if (is(name, namelen, "pid"))
			w->info.pid = (long)n;
		else if (is(name, namelen, "uptime"))
			w->info.uptime = n;
		else if (is(name, namelen, "log_worker_dropped"))
			w->info.worker_dropped = n;
		else if (is(name, namelen, "log_watcher_skipped"))
			w->info.watcher_skipped = n;
	}
	return 0;
}

/* The keep-awake connection: whatever it is answered is dropped. */
static void
on_awake_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);

	(void)arg;
	evbuffer_drain(in, evbuffer_get_length(in));
}

/* The keep-awake connection failed or closed: the next tick reopens it. */
static void
on_awake_event(struct bufferevent *bev, short what, void *arg)
{
	struct mcw	*w = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		awake_drop(w);
}

/*
 * Every awake_ms while watching: a get of MCW_SELF_KEY on a connection of
 * our own, so that memcached's logger thread, which sleeps longer and
 * longer (up to 1 s) while it finds nothing to send, keeps waking within a
 * few milliseconds and a reader's miss reaches us at once.
 */
static void
on_awake(evutil_socket_t fd, short what, void *arg)
{
	static const char	 get[] = "get " MCW_SELF_KEY "\r\n";
	struct mcw		*w = arg;

	(void)fd;
	(void)what;
	if (w->phase != PH_STREAM)
		return;
	if (w->abev != NULL &&
	    evbuffer_get_length(bufferevent_get_output(w->abev)) > 4096)
		awake_drop(w);		/* not connecting, not writing */
	if (w->abev == NULL) {
		if ((w->abev = bufferevent_socket_new(w->base, -1,
		    BEV_OPT_CLOSE_ON_FREE)) == NULL)
			fatalx("bufferevent_socket_new failed");
		bufferevent_setcb(w->abev, on_awake_read, NULL, on_awake_event,
		    w);
		bufferevent_enable(w->abev, EV_READ | EV_WRITE);
		if (bufferevent_socket_connect_hostname(w->abev, w->dns,
		    AF_UNSPEC, w->host, w->port) == -1) {
			awake_drop(w);
			return;
		}
		/*
		 * A numeric host is "resolved" at once, and a connect that
		 * fails then (no descriptor left: EMFILE) runs
		 * on_awake_event before the call returns 0: the connection
		 * is already dropped.
		 */
		if (w->abev == NULL)
			return;
	}
	bufferevent_write(w->abev, get, sizeof get - 1);
}

/* The server said OK to the watch. */
static void
mcw_up(struct mcw *w)
{
	evtimer_del(w->timer);
	if (w->atimer != NULL)
		arm_ev(w->atimer, w->awake_ms);
	w->phase = PH_STREAM;
	w->up_at = mono_ms();
	w->counts.connects++;
	set_state(w, MCW_UP, NULL, &w->info);
}

/* A line of the stream, after OK. */
static void
stream_line(struct mcw *w, const char *s, size_t len)
{
	struct mcw_line	 l;
	const char	*why;

	if (mcw_parse(s, len, &l, &why) == -1 || l.kind == MCW_OK ||
	    l.kind == MCW_REFUSED) {
		w->counts.bad++;
		return;
	}
	if (l.kind == MCW_SKIPPED)
		w->counts.skipped += l.skipped;
	own_mark(w, &l);
	w->counts.lines++;
	if (w->cbs.line != NULL)
		w->cbs.line(&l, w->arg);
}

/*
 * Handle one complete line in the current phase; -1 if the connection
 * was dropped (the caller must not touch it any more).
 */
static int
handle_line(struct mcw *w, const char *s, size_t len)
{
	struct mcw_line	 l;
	const char	*why;
	int		 rc;
	char		 msg[128];

	switch (w->phase) {
	case PH_STATS:
		if ((rc = stats_line(w, s, len)) == -1) {
			snprintf(msg, sizeof msg, "unexpected reply to stats: "
			    "%.*s", (int)(len < 64 ? len : 64), s);
			mcw_fail(w, msg);
			return -1;
		}
		if (rc == 1) {
			w->phase = PH_WATCH;
			bufferevent_write(w->bev, w->watchcmd,
			    strlen(w->watchcmd));
		}
		return 0;
	case PH_WATCH:
		if (mcw_parse(s, len, &l, &why) == -1 ||
		    (l.kind != MCW_OK && l.kind != MCW_REFUSED)) {
			mcw_fail(w, "unexpected reply to watch");
			return -1;
		}
		if (l.kind == MCW_REFUSED) {
			mcw_refused(w, l.text, l.textlen);
			return -1;
		}
		mcw_up(w);
		return 0;
	case PH_STREAM:
		stream_line(w, s, len);
		return 0;
	default:
		return 0;
	}
}

/* Data from the server: every complete line, at most READ_MAX bytes. */
static void
on_read(struct bufferevent *bev, void *arg)
{
	struct mcw	*w = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	size_t		 n, off = 0;
	const char	*p, *nl;

	if ((n = evbuffer_get_length(in)) == 0)
		return;
	p = (const char *)evbuffer_pullup(in, (ssize_t)n);
	while (off < n && (nl = memchr(p + off, '\n', n - off)) != NULL) {
		size_t	len = (size_t)(nl - (p + off));

		if (w->discard) {
			w->discard = false;	/* the end of an overlong line */
		} else if (len >= MCW_LINE_MAX) {
			w->counts.bad++;
		} else if (handle_line(w, p + off, len) == -1)
			return;
		off += len + 1;
	}
	if (n - off >= MCW_LINE_MAX) {
		/* No newline within memcached's longest line: drop it. */
		if (!w->discard)
			w->counts.bad++;
		w->discard = true;
		off = n;
	}
	w->counts.bytes += off;
	evbuffer_drain(in, off);
}

/* Turn TCP keepalive on: a vanished server is noticed in minutes. */
static void
keepalive(evutil_socket_t fd)
{
	int	on = 1, idle = 60, intvl = 10, cnt = 3;

	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

/* Connected, closed or failed. */
static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct mcw	*w = arg;
	char		 why[256];
	int		 dns;

	if (what & BEV_EVENT_CONNECTED) {
		keepalive(bufferevent_getfd(bev));
		w->phase = PH_STATS;
		memset(&w->info, 0, sizeof w->info);
		w->nstats = 0;
		bufferevent_write(bev, "stats\r\n", 7);
		return;
	}
	if ((dns = bufferevent_socket_get_dns_error(bev)) != 0)
		snprintf(why, sizeof why, "cannot resolve %s: %s", w->host,
		    evutil_gai_strerror(dns));
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof why, "closed by the server");
	else
		snprintf(why, sizeof why, "%s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	mcw_fail(w, why);
}

/* The timer: connect now, or give up on a connection that is too slow. */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct mcw	*w = arg;

	(void)fd;
	(void)what;
	if (w->phase == PH_IDLE)
		mcw_connect(w);
	else
		mcw_fail(w, "timed out before the watch started");
}

/* Open a connection and arm the timeout. */
static void
mcw_connect(struct mcw *w)
{
	if ((w->bev = bufferevent_socket_new(w->base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("bufferevent_socket_new failed");
	bufferevent_setcb(w->bev, on_read, NULL, on_event, w);
	bufferevent_set_max_single_read(w->bev, READ_MAX);
	bufferevent_enable(w->bev, EV_READ | EV_WRITE);
	w->phase = PH_CONNECT;
	arm(w, w->timeout_ms);
	if (bufferevent_socket_connect_hostname(w->bev, w->dns, AF_UNSPEC,
	    w->host, w->port) == -1)
		mcw_fail(w, "cannot start connecting");
}

/* A watch connection to one server, started on the next turn of the loop. */
struct mcw *
mcw_new(struct event_base *base, const struct mcw_opts *o,
    const struct mcw_cbs *cbs, void *arg)
{
	struct mcw	*w;

	w = xcalloc(1, sizeof *w);
	w->base = base;
	w->dns = o->dns;
	w->host = xstrdup(o->host);
	w->port = o->port;
	w->watchcmd = xasprintf("watch %s\r\n", o->streams);
	w->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000;
	w->bmin = o->backoff_min_ms > 0 ? o->backoff_min_ms : 100;
	w->bmax = o->backoff_max_ms > 0 ? o->backoff_max_ms : 30000;
	if (w->bmax < w->bmin)
		w->bmax = w->bmin;
	w->backoff = w->bmin;
	w->cbs = *cbs;
	w->arg = arg;
	w->state = MCW_DOWN;
	if ((w->timer = evtimer_new(base, on_timer, w)) == NULL)
		fatalx("evtimer_new failed");
	if ((w->awake_ms = o->awake_ms) > 0 && (w->atimer = event_new(base,
	    -1, EV_PERSIST, on_awake, w)) == NULL)
		fatalx("event_new failed");
	arm(w, 0);
	return w;
}

/* Close and free; no callback runs. */
void
mcw_free(struct mcw *w)
{
	if (w == NULL)
		return;
	teardown(w);
	event_free(w->timer);
	if (w->atimer != NULL)
		event_free(w->atimer);
	free(w->host);
	free(w->watchcmd);
	free(w);
}

enum mcw_state
mcw_state(const struct mcw *w)
{
	return w->state;
}

const struct mcw_counts *
mcw_counts(const struct mcw *w)
{
	return &w->counts;
}
