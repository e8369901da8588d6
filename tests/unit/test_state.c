/*
 * test_state.c: the state's publish against the test backend (testbe.h), rule
 * by rule (design.md: Failures), asserting what the cache holds: a complete
 * publish; a failed detail keeps its value and its place in the indexes; a
 * failed list writes nothing of the site; a refused value drops the program
 * from every index (memcached) or keeps the old one and the program's place
 * (Redis); a value too big keeps the old one where the cache has it; the
 * shrink guard holds (and --force publishes); a server that fails stops the
 * later phases; a lost lease writes nothing more; stale keys go after
 * stale_after full refreshes, through the writer; an unchanged refresh writes
 * nothing, but only on servers that say they hold what was recorded: on
 * another the values are written again, and a down one fails the refresh.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "state.h"
#include "testbe.h"
#include "wthread.h"
#include "t.h"

static char		 dir[] = "/tmp/pcd-test-state-XXXXXX";
static struct cfg	*cfg;
static struct keyfn	 kf;
static struct store	*st;		/* the loop's */
static struct wthread	*w;		/* in the caller: no pool */

/* A detail: one course run, a type, an organization. */
static json_t *
detail(const char *uuid, const char *run, const char *title)
{
	return json_pack("{s:s, s:s, s:s, s:{s:s}, s:[{s:s}],"
	    " s:[{s:s, s:[{s:s}]}], s:[]}",
	    "uuid", uuid, "title", title, "type", "XSeries", "type_attrs",
	    "slug", "xseries", "authoring_organizations", "key", "OrgX",
	    "courses", "uuid", "c-1", "course_runs", "key", run,
	    "curricula");
}

/* One program of a report: a record, or NULL (the detail failed). */
struct prog {
	const char	*uuid;
	const char	*title;		/* NULL: failed */
};

/* A refresh's report of one site, lms.example, with these programs. */
static struct fetch_result *
report(const struct prog *p, size_t n, enum fetch_status status)
{
	struct fetch_result	*fr = xcalloc(1, sizeof *fr);
	struct fetch_site	*fs = xcalloc(1, sizeof *fs);
	char			 why[128];
	json_t			*d;
	size_t			 i;

	fs->domain = xstrdup("lms.example");
	fs->site_id = 1;
	fs->status = status;
	if (status == FETCH_LISTED) {
		fs->uuids = xcalloc(n + 1, sizeof *fs->uuids);
		fs->progs = xcalloc(n + 1, sizeof *fs->progs);
		for (i = 0; i < n; i++) {
			fs->uuids[i] = xstrdup(p[i].uuid);
			fs->progs[i].uuid = xstrdup(p[i].uuid);
			if (p[i].title == NULL) {
				fs->partial = true;
				continue;
			}
			d = detail(p[i].uuid, "run-1", p[i].title);
			fs->progs[i].p = program_new(d, p[i].uuid, VALUE_JSON,
			    4, NULL, why, sizeof why);
			json_decref(d);
		}
		fs->nuuids = fs->nprogs = n;
		fs->pathways = json_array();
	}
	fr->sites = xcalloc(2, sizeof *fr->sites);
	fr->sites[0] = fs;
	fr->nsites = 1;
	return fr;
}

/* The publish's callback: keep the result. */
static int	published;

static void
on_published(const struct state_result *r, void *arg)
{
	*(struct state_result *)arg = *r;
	published++;
}

/* What the monitor would say of each server (confirmed()). */
static bool	held[TESTBE_SERVERS];
static size_t	asked;

/* The daemon's monitor_confirmed, as the test sets it. */
static bool
confirmed(void *arg, size_t i)
{
	(void)arg;
	asked++;
	return held[i];
}

/*
 * Publish a report (freed here) as the daemon does; the result.  Without
 * a pool the writer's steps run in the call, so it is over on return.
 */
static struct state_result
publish(struct state *s, struct fetch_result *fr, bool force,
    const struct writer_gate *gate)
{
	struct state_publish_opts	 po;
	struct state_result		 r;
	int				 before = published;

	memset(&po, 0, sizeof po);
	memset(&r, 0, sizeof r);
	po.gate = gate;
	po.force = force;
	po.skip_same = true;
	po.every_site = true;
	po.confirmed = confirmed;
	state_publish(s, fr, &po, on_published, &r);
	T_INTEQ(published, before + 1);
	T_CHECK(!state_publishing(s));
	fetch_result_free(fr);
	return r;
}

/* The cache's value under a Django key (key function django). */
static const char *
get(const char *key)
{
	char	wire[512];

	snprintf(wire, sizeof wire, "default:1:%s", key);
	return testbe_get(wire);
}

/* Whether the cached value under key mentions s. */
static bool
has(const char *key, const char *s)
{
	const char	*v = get(key);

	return v != NULL && strstr(v, s) != NULL;
}

static const struct prog	ab[] = { { "a", "A" }, { "b", "B" } };

static struct state *
fresh(void)
{
	size_t	i;

	for (i = 0; i < TESTBE_SERVERS; i++)
		held[i] = true;
	testbe_reset();
	return state_new(cfg, st, w, &kf, NULL);
}

static void
test_publish_and_same(void)
{
	struct state		*s = fresh();
	struct state_result	 r;
	size_t			 sets;

	r = publish(s, report(ab, 2, FETCH_LISTED), false, NULL);
	T_CHECK(r.complete && r.published);
	T_CHECK(has("program-a", "\"title\":\"A\""));
	T_STREQ(get("course-programs-run-1"), "[\"a\",\"b\"]");
	T_STREQ(get("program-uuids-lms.example"), "[\"a\",\"b\"]");
	T_CHECK(state_snapshot(s) != NULL);
	/* The same again: nothing is written. */
	sets = tb.sets;
	r = publish(s, report(ab, 2, FETCH_LISTED), false, NULL);
	T_CHECK(r.complete);
	T_INTEQ(r.ws.written, 0);
	T_INTEQ(tb.sets, sets);
	state_free(s);
}

/* The entries of a publish on server i (what the test backend holds). */
static size_t
on_server(int i)
{
	size_t	j, n = 0;

	for (j = 0; j < tb.nitems; j++)
		n += tb.items[j].srv == i;
	return n;
}

static void
test_unconfirmed_and_down(void)
{
	struct state		*s = fresh();
	struct state_result	 r;
	size_t			 sets, n0;

	r = publish(s, report(ab, 2, FETCH_LISTED), false, NULL);
	T_CHECK(r.complete);
	n0 = on_server(0);
	T_CHECK(n0 > 0 && on_server(1) > 0);
	/* Every server is asked, once, before anything is skipped. */
	asked = 0;
	sets = tb.sets;
	r = publish(s, report(ab, 2, FETCH_LISTED), false, NULL);
	T_INTEQ(asked, TESTBE_SERVERS);
	T_CHECK(r.complete);
	T_INTEQ(tb.sets, sets);
	/* Server 0 cannot say it holds them: its keys are written again. */
	held[0] = false;
	sets = tb.sets;
	r = publish(s, report(ab, 2, FETCH_LISTED), false, NULL);
	T_CHECK(r.complete && r.published);
	T_INTEQ(tb.sets - sets, n0);
	T_INTEQ(r.ws.written, n0);
	T_INTEQ(r.ws.skipped, on_server(1));
	/* Down (the monitor says so; the store learns it on writing): the
	   refresh fails for its keys. */
	testbe_down(0, true);
	sets = tb.sets;
	r = publish(s, report(ab, 2, FETCH_LISTED), false, NULL);
	T_CHECK(!r.complete && !r.published && r.server_failed);
	T_CHECK(r.ws.failed > 0);
	testbe_heal();
	store_retry_now(st);
	/* Back, and confirmed again: all there, nothing unsure is skipped. */
	held[0] = true;
	r = publish(s, report(ab, 2, FETCH_LISTED), false, NULL);
	T_CHECK(r.complete);
	T_STREQ(get("course-programs-run-1"), "[\"a\",\"b\"]");
	state_free(s);
}

static void
test_failed_detail_and_list(void)
{
	struct state		*s = fresh();
	struct state_result	 r;
	static const struct prog a2b0[] = { { "a", "A2" }, { "b", NULL } };
	static const struct prog a3b3[] = { { "a", "A3" }, { "b", "B3" } };
	size_t			 sets;

	(void)publish(s, report(ab, 2, FETCH_LISTED), false, NULL);
	/* b's detail fails: its value stays, and so does its place. */
	r = publish(s, report(a2b0, 2, FETCH_LISTED), false, NULL);
	T_CHECK(!r.complete && r.published);
	T_INTEQ(r.sites.sites_partial, 1);
	T_CHECK(has("program-a", "\"A2\""));
	T_CHECK(has("program-b", "\"title\":\"B\""));
	T_STREQ(get("course-programs-run-1"), "[\"a\",\"b\"]");
	/* The list fails: nothing of the site is written. */
	sets = tb.sets;
	r = publish(s, report(a3b3, 2, FETCH_FAILED), false, NULL);
	T_CHECK(!r.complete && !r.published);
	T_INTEQ(r.sites.sites_failed, 1);
	T_INTEQ(tb.sets, sets);
	T_CHECK(has("program-a", "\"A2\""));
	state_free(s);
}

static void
test_refused_and_too_big(void)
{
	struct state		*s = fresh();
	struct state_result	 r;
	static const struct prog big[] = { { "a", "A" }, { "b",
	    "a title long enough to be over the item size of the test" } };
	static const struct prog b2[] = { { "a", "A" }, { "b", "B2" } };

	(void)publish(s, report(ab, 2, FETCH_LISTED), false, NULL);
	/* Too big: never sent; the old value stays, b with it. */
	testbe_item_max(strlen(get("program-b")) + 10);
	r = publish(s, report(big, 2, FETCH_LISTED), false, NULL);
	T_CHECK(!r.complete);
	T_CHECK(has("program-b", "\"title\":\"B\""));
	T_STREQ(get("course-programs-run-1"), "[\"a\",\"b\"]");
	/* Refused (the server deleted it): no index names b any more. */
	testbe_item_max(1024 * 1024);
	testbe_refuse("program-b");
	r = publish(s, report(b2, 2, FETCH_LISTED), false, NULL);
	T_CHECK(!r.complete && r.published);
	T_CHECK(get("program-b") == NULL);
	T_STREQ(get("course-programs-run-1"), "[\"a\"]");
	T_STREQ(get("program-uuids-lms.example"), "[\"a\"]");
	testbe_heal();
	state_free(s);
}

/* The record's entry for a Django key, or NULL. */
static const struct entry *
recorded(const struct state *s, const char *key)
{
	const struct snapshot	*snap = state_snapshot(s);
	size_t			 i;

	for (i = 0; snap != NULL && i < snapshot_count(snap); i++)
		if (strcmp(snapshot_entries(snap)[i].key, key) == 0)
			return &snapshot_entries(snap)[i];
	return NULL;
}

/*
 * Refused by a cache that keeps the old value (Redis: -OOM, -READONLY):
 * the program keeps its old value and its place in every index, the
 * record says the old value, and the refresh is partial.  The same when
 * the refused record is the very one published before (a rewrite of
 * everything after the lease was taken).
 */
static void
test_refused_kept(void)
{
	struct state		*s = fresh();
	struct state_publish_opts po;
	struct state_result	 r;
	struct fetch_result	*fr;
	const struct entry	*e;
	static const struct prog b2[] = { { "a", "A" }, { "b", "B2" } };
	static const struct prog c[] = { { "a", "A" }, { "b", "B" },
	    { "c", "C" } };
	static const struct prog c2[] = { { "a", "A" }, { "b", "B2" },
	    { "c", "C" } };

	(void)publish(s, report(ab, 2, FETCH_LISTED), false, NULL);
	testbe_refuse_keep("program-b");
	r = publish(s, report(b2, 2, FETCH_LISTED), false, NULL);
	T_CHECK(!r.complete && r.published);
	T_INTEQ(r.sites.sites_partial, 1);
	T_CHECK(has("program-b", "\"title\":\"B\""));
	T_STREQ(get("course-programs-run-1"), "[\"a\",\"b\"]");
	T_STREQ(get("program-uuids-lms.example"), "[\"a\",\"b\"]");
	e = recorded(s, "program-b");
	T_CHECK(e != NULL && e->len == strlen(get("program-b")) &&
	    memcmp(e->val, get("program-b"), e->len) == 0);

	/* Everything written again, b's record the one already published. */
	fr = report(c, 3, FETCH_LISTED);
	program_unref(fr->sites[0]->progs[1].p);
	fr->sites[0]->progs[1].p = program_ref(catalog_site_program(
	    state_generation(s)->sites[0], "b"));
	memset(&po, 0, sizeof po);
	po.every_site = true;
	state_publish(s, fr, &po, on_published, &r);
	T_CHECK(!state_publishing(s));
	fetch_result_free(fr);
	T_CHECK(!r.complete && r.published);
	T_CHECK(has("program-b", "\"title\":\"B\""));
	T_STREQ(get("course-programs-run-1"), "[\"a\",\"b\",\"c\"]");
	T_CHECK(recorded(s, "program-b") != NULL);

	/* Once the cache takes it, the new value goes in. */
	testbe_heal();
	r = publish(s, report(c2, 3, FETCH_LISTED), false, NULL);
	T_CHECK(r.complete);
	T_CHECK(has("program-b", "\"B2\""));
	state_free(s);
}

static void
test_shrink_guard(void)
{
	struct state		*s = fresh();
	struct state_result	 r;
	struct prog		 ten[10];
	char			 u[10][8];
	size_t			 i;

	for (i = 0; i < 10; i++) {
		snprintf(u[i], sizeof u[i], "p%zu", i);
		ten[i].uuid = u[i];
		ten[i].title = "T";
	}
	(void)publish(s, report(ten, 10, FETCH_LISTED), false, NULL);
	T_STREQ(get("course-programs-run-1"),
	    "[\"p0\",\"p1\",\"p2\",\"p3\",\"p4\",\"p5\",\"p6\",\"p7\",\"p8\","
	    "\"p9\"]");
	/* One of ten left: held, the cache as it was. */
	r = publish(s, report(ten, 1, FETCH_LISTED), false, NULL);
	T_INTEQ(r.sites.sites_held, 1);
	T_CHECK(!r.complete && !r.published);
	T_CHECK(has("course-programs-run-1", "\"p9\""));
	/* Forced: published. */
	r = publish(s, report(ten, 1, FETCH_LISTED), true, NULL);
	T_CHECK(r.complete);
	T_STREQ(get("course-programs-run-1"), "[\"p0\"]");
	state_free(s);
}

static void
test_server_fails(void)
{
	struct state		*s = fresh();
	struct state_result	 r;
	static const struct prog c[] = { { "a", "A" }, { "b", "B" },
	    { "c", "C" } };

	(void)publish(s, report(ab, 2, FETCH_LISTED), false, NULL);
	/* The details' flush fails: no index may name c. */
	testbe_fail_flush(0);
	testbe_fail_flush(1);
	r = publish(s, report(c, 3, FETCH_LISTED), false, NULL);
	T_CHECK(r.server_failed && !r.complete && !r.published);
	T_STREQ(get("course-programs-run-1"), "[\"a\",\"b\"]");
	T_CHECK(get("program-c") == NULL);
	testbe_heal();
	store_retry_now(st);
	/* The next publish writes it all (what was unsure is not trusted). */
	r = publish(s, report(c, 3, FETCH_LISTED), false, NULL);
	T_CHECK(r.complete);
	T_STREQ(get("course-programs-run-1"), "[\"a\",\"b\",\"c\"]");
	T_CHECK(has("program-c", "\"C\""));
	state_free(s);
}

static bool
closed(void *arg)
{
	(void)arg;
	return false;
}

static void
test_lease_lost(void)
{
	struct state		*s = fresh();
	struct writer_gate	 gate = { closed, NULL };
	struct state_result	 r;
	static const struct prog a2[] = { { "a", "A2" }, { "b", "B" } };
	size_t			 flushes;

	(void)publish(s, report(ab, 2, FETCH_LISTED), false, NULL);
	flushes = tb.flushes;
	r = publish(s, report(a2, 2, FETCH_LISTED), false, &gate);
	T_CHECK(r.lease_lost && !r.server_failed && !r.complete);
	/* The batch queued when the gate was asked was dropped, unsent. */
	T_INTEQ(tb.flushes, flushes);
	T_INTEQ(tb.nqueue[0] + tb.nqueue[1], 0);
	T_CHECK(has("program-a", "\"title\":\"A\""));
	state_free(s);
}

static void
test_stale(void)
{
	struct state		*s = fresh();
	static const struct prog onlya[] = { { "a", "A" } };
	int			 i;

	(void)publish(s, report(ab, 2, FETCH_LISTED), false, NULL);
	/* b disappears upstream: it stays until the stale_after'th (2)... */
	for (i = 0; i < 1; i++) {
		(void)publish(s, report(onlya, 1, FETCH_LISTED), true, NULL);
		T_CHECK(has("program-b", "\"B\""));
	}
	/* ...unless its server is down when it is due: it is kept. */
	testbe_down((int)(testbe_find("default:1:program-b")->srv), true);
	(void)publish(s, report(onlya, 1, FETCH_LISTED), true, NULL);
	testbe_heal();
	store_retry_now(st);
	T_CHECK(has("program-b", "\"B\""));
	/* Then it goes, through the writer. */
	(void)publish(s, report(onlya, 1, FETCH_LISTED), true, NULL);
	T_CHECK(get("program-b") == NULL);
	T_STREQ(get("course-programs-run-1"), "[\"a\"]");
	T_CHECK(tb.deletes > 0);
	state_free(s);
}

/* --dry-run's words for a report (forced past the shrink guard: one of
 * two programs left), against the state as it is now. */
static char *
dry_run(struct state *s, struct fetch_result *fr)
{
	struct state_dry_opts	 o = { true, true, NULL };
	char			*text = NULL;
	size_t			 len = 0;
	FILE			*f = open_memstream(&text, &len);

	(void)state_dry_run(s, fr, &o, f);
	fclose(f);
	fetch_result_free(fr);
	return text;
}

static void
test_dry_run_counts(void)
{
	struct state		*s = fresh();
	static const struct prog onlya[] = { { "a", "A" } };
	size_t			 sets;
	char			*text;

	(void)publish(s, report(ab, 2, FETCH_LISTED), false, NULL);
	/* First absence: b counted on, its run index too. */
	text = dry_run(s, report(onlya, 1, FETCH_LISTED));
	T_CHECK(strstr(text, "program-b  (absent 1 of 2 full refreshes: "
	    "deleted after 1 more complete full refresh,") != NULL);
	T_CHECK(strstr(text, "stale:   keys=1 delete=0 keep=1") != NULL);
	free(text);
	/* The state remembers what this process has counted: after one
	   refresh without b, the next would delete it (and writes nothing). */
	(void)publish(s, report(onlya, 1, FETCH_LISTED), true, NULL);
	sets = tb.sets;
	text = dry_run(s, report(onlya, 1, FETCH_LISTED));
	T_CHECK(strstr(text, "delete   program") != NULL);
	T_CHECK(strstr(text, "program-b  (absent 2 full refreshes, stale_after "
	    "2)") != NULL);
	T_CHECK(strstr(text, "stale:   keys=1 delete=1 keep=0") != NULL);
	T_INTEQ(tb.sets, sets);
	T_INTEQ(tb.deletes, 0);
	T_CHECK(has("program-b", "\"B\""));
	free(text);
	state_free(s);
}

int
main(void)
{
	char	path[300];
	FILE	*f;

	log_setup(LOG_FORMAT_TEXT, LOG_CRIT);
	T_CHECK(mkdtemp(dir) != NULL);
	chmod(dir, 0700);
	snprintf(path, sizeof path, "%s/test.conf", dir);
	f = fopen(path, "w");
	fprintf(f, "[memcached]\nservers = 127.0.0.1:1, 127.0.0.1:2\n"
	    "key_function = django\nvalue_format = json\n"
	    "[discovery]\nauth = none\n[daemon]\nstate_dir = %s\nstale_after = 2\n"
	    "[site lms.example]\nsite_id = 1\n"
	    "catalog_api_url = http://discovery.test/api/v1\n", dir);
	fclose(f);
	cfg = cfg_load(path);
	T_CHECK(cfg != NULL);
	if (cfg == NULL)
		return t_done();
	key_init(&kf, cfg->key_function, cfg->long_key_hash, cfg->key_prefix,
	    cfg->key_version);
	testbe_reset();
	st = store_new_with(&testbe, cfg);
	/* The writer's own store: the same servers, as the daemon's is. */
	w = wthread_new(NULL, store_new_with(&testbe, cfg), st);
	test_publish_and_same();
	test_unconfirmed_and_down();
	test_failed_detail_and_list();
	test_refused_and_too_big();
	test_refused_kept();
	test_shrink_guard();
	test_server_fails();
	test_lease_lost();
	test_stale();
	test_dry_run_counts();
	wthread_free(w);
	store_free(st);
	testbe_reset();
	key_clear(&kf);
	cfg_free(cfg);
	snprintf(path, sizeof path, "rm -rf %s", dir);
	(void)system(path);
	return t_done();
}
