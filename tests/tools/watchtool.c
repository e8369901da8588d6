/*
 * watchtool: drive mcwatch.c or rdwatch.c against a real server, for
 * tests/integration/test_watch.py.  One line on stdout per thing seen:
 *
 *	watchtool mc HOST PORT STREAMS [CONFIG]
 *	    state up pid=N uptime=N version=V | state down why=... |
 *	    state unavailable why=...
 *	    line get key=K status=N cfd=N own=0|1   (store, eviction, conn_new,
 *	    conn_close, skipped n=N, other)
 *	watchtool redis HOST PORT DB auto|on FEATURES [CHANGE_KEY|-] [CONFIG]
 *	    FEATURES: a comma list of misses, evictions, change
 *	    state up run_id=R flags=F known=0|1 active=N missing=N
 *	    config_set=... why=... | state down why=... | ...
 *	    event keymiss|evicted|changed key=K what=W own=0|1
 *
 * Keys are printed URI-encoded (every byte but A-Z a-z 0-9 - . _ ~ as
 * %XX).  CONFIG is a programs-cached configuration naming the same
 * server: the daemon's store is opened on it, and stdin takes commands
 * that read and write through it the way the daemon does:
 *	own-get KEY		store_announce, store_mget (memcached);
 *				rdw_expect, store_mget, rdw_unexpect of hits
 *				(redis)
 *	own-set KEY VALUE	store_announce, store_set, store_flush
 *	counts			the watch's counters
 * each answered "done CMD ...".  The password of the redis watch is the
 * store's: the configuration's password_file, read at every connect.
 * End of input ends the tool.  $WATCHTOOL_AWAKE_MS sets mcwatch's awake_ms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "mcwatch.h"
#include "rdwatch.h"
#include "store.h"
#include "util.h"

static struct event_base	*base;
static struct mcw		*mc;
static struct rdw		*rd;
static struct store		*st;
static struct cfg		*cfg;

/* Say how to call us and fail. */
static PCD_NORETURN void
usage(void)
{
	fprintf(stderr, "usage: watchtool mc host port streams [config]\n"
	    "       watchtool redis host port db auto|on features "
	    "[change_key|-] [config]\n");
	exit(2);
}

/* Print bytes URI-encoded. */
static void
put_key(const void *p, size_t len)
{
	const unsigned char	*s = p;
	size_t			 i;

	for (i = 0; i < len; i++) {
		if ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' &&
		    s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    strchr("-._~", s[i]) != NULL)
			putchar(s[i]);
		else
			printf("%%%02X", s[i]);
	}
}

/* mcwatch: a line. */
static void
mc_line(const struct mcw_line *l, void *arg)
{
	static const char *const kinds[] = {
		"ok", "refused", "skipped", "get", "store", "eviction",
		"conn_new", "conn_close", "other"
	};

	(void)arg;
	printf("line %s", kinds[l->kind]);
	if (l->kind == MCW_SKIPPED)
		printf(" n=%llu", (unsigned long long)l->skipped);
	if (l->kind == MCW_GET || l->kind == MCW_STORE ||
	    l->kind == MCW_EVICTION) {
		printf(" key=");
		put_key(l->key, l->keylen);
		printf(" status=%d", l->status);
	}
	printf(" cfd=%ld own=%d gid=%llu\n", l->cfd, l->own,
	    (unsigned long long)l->gid);
}

/* mcwatch: a change of state. */
static void
mc_state(enum mcw_state s, const char *why, const struct mcw_info *info,
    void *arg)
{
	(void)arg;
	if (s == MCW_UP)
		printf("state up pid=%ld uptime=%llu version=%s\n", info->pid,
		    (unsigned long long)info->uptime, info->version);
	else
		printf("state %s why=%s\n", s == MCW_DOWN ? "down" :
		    "unavailable", why);
}

/* rdwatch: an event. */
static void
rd_event(const struct rdw_event *ev, void *arg)
{
	static const char *const types[] = { "keymiss", "evicted", "changed" };

	(void)arg;
	printf("event %s key=", types[ev->type]);
	put_key(ev->key, ev->keylen);
	printf(" what=");
	put_key(ev->what, ev->whatlen);
	printf(" own=%d\n", ev->own);
}

/* rdwatch: a change of state. */
static void
rd_state(enum rdw_state s, const char *why, const struct rdw_info *info,
    void *arg)
{
	static const char *const states[] = {
		"down", "up", "unavailable", "refused"
	};

	(void)arg;
	printf("state %s", states[s]);
	if (info != NULL)
		printf(" run_id=%s flags=%s known=%d active=%u missing=%u "
		    "config_set=%s", info->run_id, info->flags,
		    info->flags_known, info->active, info->missing,
		    info->config_set);
	printf(" why=%s\n", why != NULL ? why : "");
}

/* The redis watch's password: the configuration's file, if any. */
static int
rd_password(char **pw, char *err, size_t errlen, void *arg)
{
	const char	*path = arg;
	char		 buf[1024];
	FILE		*f;
	size_t		 n;

	*pw = NULL;
	if (cfg != NULL && cfg->redis_password != NULL) {
		*pw = xstrdup(cfg->redis_password);
		return 0;
	}
	if (path == NULL)
		return 0;
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "cannot read %s", path);
		return -1;
	}
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	*pw = xstrdup(buf);
	return 0;
}

/* store_mget's callback: count hits, and tell the redis watch. */
static void
on_hit(size_t j, const void *val, size_t len, uint32_t flags, void *arg)
{
	const char	**key = arg;

	(void)val;
	(void)len;
	(void)flags;
	(void)j;
	if (rd != NULL)
		rdw_unexpect(rd, key[0], strlen(key[0]));
	key[1] = "hit";
}

/* One command from stdin. */
static void
command(char *line)
{
	char		*cmd = strtok(line, " "), *key, *val;
	const char	*hit[2] = { NULL, NULL };
	size_t		 len;
	int		 rc;

	if (cmd == NULL)
		return;
	if (strcmp(cmd, "counts") == 0) {
		if (mc != NULL) {
			const struct mcw_counts *c = mcw_counts(mc);

			printf("done counts lines=%llu bad=%llu skipped=%llu "
			    "connects=%llu\n", (unsigned long long)c->lines,
			    (unsigned long long)c->bad,
			    (unsigned long long)c->skipped,
			    (unsigned long long)c->connects);
		} else {
			const struct rdw_counts *c = rdw_counts(rd);

			printf("done counts events=%llu own=%llu bad=%llu "
			    "connects=%llu\n", (unsigned long long)c->events,
			    (unsigned long long)c->own,
			    (unsigned long long)c->bad,
			    (unsigned long long)c->connects);
		}
		return;
	}
	if (st == NULL || (key = strtok(NULL, " ")) == NULL) {
		printf("done %s error=no-store-or-key\n", cmd);
		return;
	}
	len = strlen(key);
	if (strcmp(cmd, "own-get") == 0) {
		hit[0] = key;
		store_announce(st, 0);
		if (rd != NULL)
			rdw_expect(rd, key, len);
		rc = store_mget(st, 0, (const char *const *)&key, &len, 1,
		    on_hit, hit);
		printf("done own-get rc=%d hit=%d\n", rc, hit[1] != NULL);
	} else if (strcmp(cmd, "own-set") == 0 &&
	    (val = strtok(NULL, " ")) != NULL) {
		store_announce(st, 0);
		rc = store_set(st, 0, key, len, val, strlen(val), 0, 0);
		printf("done own-set rc=%d flush=%d\n", rc,
		    store_flush(st, 0, NULL, NULL));
	} else
		printf("done %s error=unknown\n", cmd);
}

/* stdin: commands, one a line; the end of input ends the loop. */
static void
on_stdin(struct bufferevent *bev, void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);
	char		*line;

	(void)arg;
	while ((line = evbuffer_readln(in, NULL, EVBUFFER_EOL_LF)) != NULL) {
		command(line);
		free(line);
	}
}

/* stdin closed. */
static void
on_stdin_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	(void)arg;
	event_base_loopbreak(base);
}

/* Open the daemon's store on a configuration file. */
static void
open_store(const char *path)
{
	char	why[512];

	if ((cfg = cfg_load_with(path, CFG_SECRETS_SKIP, why,
	    sizeof why)) == NULL) {
		fprintf(stderr, "watchtool: %s\n", why);
		exit(2);
	}
	st = store_new(cfg);
}

/* Which features a comma list names. */
static unsigned
features(const char *s)
{
	unsigned	f = 0;

	if (strstr(s, "misses") != NULL)
		f |= RDW_MISSES;
	if (strstr(s, "evictions") != NULL)
		f |= RDW_EVICTIONS;
	if (strstr(s, "change") != NULL)
		f |= RDW_CHANGE;
	return f;
}

int
main(int argc, char **argv)
{
	struct bufferevent	*in;
	struct evdns_base	*dns;

	setvbuf(stdout, NULL, _IOLBF, 0);
	log_setup(LOG_FORMAT_JSON, LOG_WARNING);
	if (argc < 5)
		usage();
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (strcmp(argv[1], "mc") == 0) {
		struct mcw_opts	o = { 0 };
		struct mcw_cbs	cbs = { mc_line, mc_state };

		if (argc > 5)
			open_store(argv[5]);
		o.host = argv[2];
		o.port = atoi(argv[3]);
		o.streams = argv[4];
		o.dns = dns;
		o.timeout_ms = 2000;
		o.backoff_min_ms = 50;
		o.backoff_max_ms = 1000;
		if (getenv("WATCHTOOL_AWAKE_MS") != NULL)
			o.awake_ms = atol(getenv("WATCHTOOL_AWAKE_MS"));
		mc = mcw_new(base, &o, &cbs, NULL);
	} else if (strcmp(argv[1], "redis") == 0 && argc >= 7) {
		struct rdw_opts	o = { 0 };
		struct rdw_cbs	cbs = { rd_event, rd_state };

		if (argc > 7 && strcmp(argv[7], "-") != 0)
			o.change_key = argv[7];
		if (argc > 8)
			open_store(argv[8]);
		o.host = argv[2];
		o.port = atoi(argv[3]);
		o.db = atoi(argv[4]);
		o.mode = strcmp(argv[5], "on") == 0 ? RDW_ON : RDW_AUTO;
		o.want = features(argv[6]);
		if (o.change_key != NULL)
			o.change_keylen = strlen(o.change_key);
		o.user = cfg != NULL ? cfg->redis_user : NULL;
		o.password = rd_password;
		o.password_arg = cfg != NULL ? cfg->redis_password_file : NULL;
		o.dns = dns;
		o.timeout_ms = 2000;
		o.heartbeat_ms = 500;
		o.backoff_min_ms = 50;
		o.backoff_max_ms = 1000;
		rd = rdw_new(base, &o, &cbs, NULL);
	} else
		usage();
	if ((in = bufferevent_socket_new(base, STDIN_FILENO, 0)) == NULL)
		fatalx("bufferevent_socket_new failed");
	bufferevent_setcb(in, on_stdin, NULL, on_stdin_event, NULL);
	bufferevent_enable(in, EV_READ);
	event_base_dispatch(base);
	bufferevent_free(in);
	mcw_free(mc);
	rdw_free(rd);
	if (st != NULL)
		store_free(st);
	if (cfg != NULL)
		cfg_free(cfg);
	evdns_base_free(dns, 0);
	event_base_free(base);
	return 0;
}
