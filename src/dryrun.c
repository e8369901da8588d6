/*
 * dryrun.c: --dry-run, what a publish would change, read from the cache.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dryrun.h"
#include "jsonld.h"
#include "unpickle.h"
#include "util.h"

/* Value text longer than this is cut in a diff line (its size said). */
#define DIFF_VALUE_MAX	300

enum dry_state {
	DRY_NEW,
	DRY_CHANGED,
	DRY_SAME
};

struct dry {
	const struct plan	*c;
	const size_t		*entry;		/* request index -> entry */
	unsigned char		*found;		/* per entry: servers matching */
	unsigned char		*seen;		/* per entry: servers having it */
};

/* One key came back: does it hold what we would write? */
static void
dry_hit(size_t j, const void *val, size_t len, uint32_t flags, void *arg)
{
	struct dry			*dr = arg;
	size_t				 i = dr->entry[j];
	const struct entry		*e = &dr->c->v[i];

	dr->seen[i]++;
	if (flags == e->flags && len == e->len &&
	    memcmp(val, e->val, len) == 0)
		dr->found[i]++;
}

/* Read every entry of the plan, server by server; -1 if one failed. */
static int
compare_all(struct store *st, const struct plan *c, struct dry *dr)
{
	const char	**keys;
	size_t		*lens, *entry, i, j, n;
	int		 rc = 0;

	keys = xcalloc(c->n + 1, sizeof *keys);
	lens = xcalloc(c->n + 1, sizeof *lens);
	entry = xcalloc(c->n + 1, sizeof *entry);
	dr->entry = entry;
	/* Per server, the keys that live there, in one batched read. */
	for (j = 0; j < store_nservers(st); j++) {
		for (i = 0, n = 0; i < c->n; i++) {
			if (c->v[i].wire == NULL ||
			    (c->v[i].servers >> j & 1) == 0)
				continue;
			keys[n] = c->v[i].wire;
			lens[n] = c->v[i].wirelen;
			entry[n++] = i;
		}
		if (n > 0 && store_mget(st, j, keys, lens, n, dry_hit, dr) ==
		    -1)
			rc = -1;
	}
	free(keys);
	free(lens);
	free(entry);
	dr->entry = NULL;
	return rc;
}

/* "2 h", "15 min", "40 s": about how long ms is. */
static void
roughly(long long ms, char *out, size_t len)
{
	if (ms >= 2 * 3600 * 1000LL)
		snprintf(out, len, "%lld h", ms / (3600 * 1000LL));
	else if (ms >= 2 * 60 * 1000LL)
		snprintf(out, len, "%lld min", ms / (60 * 1000LL));
	else
		snprintf(out, len, "%lld s", ms / 1000);
}

/* The stale keys: deleted by this refresh, or counted on (and when). */
static void
print_stale(const struct dry_report *r, FILE *out)
{
	const struct dry_stale	*x;
	char			 when[32];
	size_t			 i;
	int			 left;

	for (i = 0; i < r->nstale; i++) {
		x = &r->stale[i];
		fprintf(out, "%-8s %-24s %8zu  %s  ", x->deleted ? "delete" :
		    "stale", family_name(x->e->family), x->e->len, x->e->key);
		if (x->deleted)
			fprintf(out, "(absent %u full refreshes, stale_after "
			    "%d)\n", x->absent, r->stale_after);
		else if (r->stale_after == 0)
			fprintf(out, "(absent %u full refreshes; stale_after = "
			    "0: never deleted)\n", x->absent);
		else {
			left = r->stale_after - (int)x->absent;
			roughly((long long)left * r->refresh_interval_ms,
			    when, sizeof when);
			fprintf(out, "(absent %u of %d full refreshes%s: "
			    "deleted after %d more complete full refresh%s, "
			    "in about %s)\n", x->absent, r->stale_after,
			    r->counts ? "" : "; this one does not count (not "
			    "complete, or --domain)", left, left == 1 ? "" :
			    "es", when);
		}
	}
	for (i = 0; i < r->nheld; i++)
		fprintf(out, "held     site=%s programs_before=%lld "
		    "programs_now=%zu max_shrink=%g (nothing of the site would "
		    "be written; --force publishes it)\n", r->held[i].domain,
		    r->held[i].before, r->held[i].now, r->max_shrink);
}

/* The counts of stale keys and held sites, after the table. */
static void
print_stale_summary(const struct dry_report *r, FILE *out)
{
	size_t	i, del = 0;

	for (i = 0; i < r->nstale; i++)
		del += r->stale[i].deleted;
	fprintf(out, "stale:   keys=%zu delete=%zu keep=%zu stale_after=%d\n",
	    r->nstale, del, r->nstale - del, r->stale_after);
	fprintf(out, "held:    sites=%zu\n", r->nheld);
}

/* --- --diff ------------------------------------------------------------ */

/* A value as compact JSON, cut to DIFF_VALUE_MAX bytes. */
static void
print_value(FILE *out, const json_t *v)
{
	char	*s = jsonld_dumps(v);
	size_t	 n;

	if (s == NULL) {
		fputs("(cannot be printed)", out);
		return;
	}
	n = strlen(s);
	if (n > DIFF_VALUE_MAX)
		fprintf(out, "%.*s... (%zu bytes)", DIFF_VALUE_MAX, s, n);
	else
		fputs(s, out);
	free(s);
}

/* One diff line: op, the JSON pointer, and the value(s). */
static void
diff_line(FILE *out, char op, const struct buf *path, const json_t *a,
    const json_t *b)
{
	fprintf(out, "%c %s: ", op, path->len > 0 ? (const char *)path->data :
	    "(the whole value)");
	print_value(out, a != NULL ? a : b);
	if (a != NULL && b != NULL) {
		fputs(" -> ", out);
		print_value(out, b);
	}
	fputc('\n', out);
}

/* Append "/" and a JSON pointer segment (RFC 6901: ~0, ~1). */
static void
path_push(struct buf *path, const char *seg, size_t len)
{
	size_t	i;

	buf_adds(path, "/");
	for (i = 0; i < len; i++) {
		if (seg[i] == '~')
			buf_adds(path, "~0");
		else if (seg[i] == '/')
			buf_adds(path, "~1");
		else
			buf_add(path, &seg[i], 1);
	}
}

/*
 * The field-level differences from a (the cache's) to b (what would be
 * written), under path: objects key by key, lists item by item, anything
 * else as a change.  How many lines.
 */
static size_t
diff_values(FILE *out, struct buf *path, const json_t *a, const json_t *b)
{
	const char	*k;
	json_t		*x, *y;
	char		 num[32];
	size_t		 n = 0, at = path->len, i, len;
	void		*it;

	if (json_equal(a, b))
		return 0;
	if (json_is_object(a) && json_is_object(b)) {
		json_object_keylen_foreach((json_t *)a, k, len, x) {
			path_push(path, k, len);
			if ((y = json_object_getn(b, k, len)) == NULL) {
				diff_line(out, '-', path, x, NULL);
				n++;
			} else
				n += diff_values(out, path, x, y);
			buf_truncate(path, at);
		}
		for (it = json_object_iter((json_t *)b); it != NULL;
		    it = json_object_iter_next((json_t *)b, it)) {
			k = json_object_iter_key(it);
			len = json_object_iter_key_len(it);
			if (json_object_getn(a, k, len) != NULL)
				continue;
			path_push(path, k, len);
			diff_line(out, '+', path, NULL,
			    json_object_iter_value(it));
			buf_truncate(path, at);
			n++;
		}
		return n;
	}
	if (json_is_array(a) && json_is_array(b)) {
		for (i = 0; i < json_array_size(a) || i < json_array_size(b);
		    i++) {
			snprintf(num, sizeof num, "%zu", i);
			path_push(path, num, strlen(num));
			x = json_array_get(a, i);
			y = json_array_get(b, i);
			if (x != NULL && y != NULL)
				n += diff_values(out, path, x, y);
			else {
				diff_line(out, x != NULL ? '-' : '+', path, x,
				    y);
				n++;
			}
			buf_truncate(path, at);
		}
		return n;
	}
	diff_line(out, '~', path, a, b);
	return 1;
}

/* store_mget's callback for the one key of --diff: decode it. */
static void
diff_hit(size_t j, const void *val, size_t len, uint32_t flags, void *arg)
{
	json_t	**v = arg;
	char	  why[256];

	(void)j;
	if ((*v = unpickle_value(val, len, flags, why, sizeof why)) == NULL)
		*v = json_string(why);		/* tells unreadable apart */
}

/* The plan's entry for key, or NULL. */
static const struct entry *
plan_entry(const struct plan *c, const char *key)
{
	size_t	i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->v[i].key, key) == 0)
			return &c->v[i];
	return NULL;
}

/* --diff KEY: what would be written against the cache's value.  -1 if the
 * cache could not be read. */
static int
print_diff(struct store *st, const struct dry_report *r, FILE *out)
{
	const struct entry	*e = plan_entry(r->plan, r->diff);
	json_t			*now = NULL, *next, *empty;
	struct buf		 path;
	char			 why[256];
	size_t			 i, srv = 0, n;
	const char		*keys[1];
	size_t			 lens[1];

	fprintf(out, "\ndiff %s\n", r->diff);
	if (e == NULL) {
		for (i = 0; i < r->nstale; i++)
			if (strcmp(r->stale[i].e->key, r->diff) == 0)
				break;
		fprintf(out, "  this refresh would not write it%s\n",
		    i == r->nstale ? ": no such key in what it would "
		    "publish" : r->stale[i].deleted ? ": it would be deleted "
		    "(stale)" : ": it is stale, kept for now");
		return 0;
	}
	if ((next = unpickle_value(e->val, e->len, e->flags, why,
	    sizeof why)) == NULL) {
		fprintf(out, "  what would be written cannot be read: %s\n",
		    why);
		return 0;
	}
	while (srv + 1 < store_nservers(st) && (e->servers >> srv & 1) == 0)
		srv++;
	keys[0] = e->wire;
	lens[0] = e->wirelen;
	if (e->wire == NULL || store_mget(st, srv, keys, lens, 1, diff_hit,
	    &now) == -1) {
		fprintf(out, "  the cache could not be read (%s)\n",
		    store_server_name(st, srv));
		json_decref(next);
		return -1;
	}
	fprintf(out, "  the cache's value (%s) -> what this refresh would "
	    "write\n", store_server_name(st, srv));
	if (json_is_string(now) && !json_is_string(next)) {
		fprintf(out, "  (the cache's value cannot be read: %s)\n",
		    json_string_value(now));
		json_decref(now);
		now = NULL;
	}
	if (now == NULL)
		fprintf(out, "  (not in the cache: all of it would be new)\n");
	buf_init(&path);
	empty = json_is_object(next) ? json_object() : json_array();
	n = diff_values(out, &path, now != NULL ? now : empty, next);
	if (n == 0)
		fprintf(out, "  no field differs\n");
	buf_free(&path);
	json_decref(empty);
	json_decref(now);
	json_decref(next);
	return 0;
}

int
dryrun_print(struct store *st, const struct dry_report *r, FILE *out)
{
	const struct plan	*c = r->plan;
	struct dry		 dr;
	size_t			 nsv, i, j, n;
	size_t			 count[FAM_COUNT][3], bytes[FAM_COUNT];
	size_t			 total[3] = { 0 };
	int			 rc, f;
	static const char *const names[] = { "new", "changed", "same" };

	memset(&dr, 0, sizeof dr);
	memset(count, 0, sizeof count);
	memset(bytes, 0, sizeof bytes);
	dr.c = c;
	nsv = store_nservers(st);
	dr.found = xcalloc(c->n + 1, 1);
	dr.seen = xcalloc(c->n + 1, 1);
	rc = compare_all(st, c, &dr);
	for (i = 0; i < c->n; i++) {
		const struct entry *e = &c->v[i];
		size_t want = 0;
		enum dry_state ds;

		for (j = 0; j < nsv; j++)
			want += e->servers >> j & 1;
		if (e->wire == NULL) {
			fprintf(out, "invalid  %-24s %8zu  %s\n",
			    family_name(e->family), e->len, e->key);
			continue;
		}
		ds = dr.found[i] == want ? DRY_SAME : dr.seen[i] > 0 ?
		    DRY_CHANGED : DRY_NEW;
		count[e->family][ds]++;
		bytes[e->family] += e->len;
		total[ds]++;
		if (ds != DRY_SAME)
			fprintf(out, "%-8s %-24s %8zu  %s\n", names[ds],
			    family_name(e->family), e->len, e->key);
	}
	print_stale(r, out);
	fprintf(out, "\n%-24s %8s %12s %8s %8s %8s\n", "family", "keys",
	    "bytes", "new", "changed", "same");
	for (f = 0; f < FAM_COUNT; f++)
		fprintf(out, "%-24s %8zu %12zu %8zu %8zu %8zu\n",
		    family_name((enum family)f),
		    count[f][0] + count[f][1] + count[f][2], bytes[f],
		    count[f][0], count[f][1], count[f][2]);
	for (f = 0, n = 0; f < FAM_COUNT; f++)
		n += bytes[f];
	fprintf(out, "%-24s %8zu %12zu %8zu %8zu %8zu\n", "total",
	    total[0] + total[1] + total[2], n, total[0], total[1], total[2]);
	print_stale_summary(r, out);
	if (rc == -1)
		fprintf(out, "(a cache server could not be read: keys on it "
		    "are counted as new)\n");
	if (r->diff != NULL && print_diff(st, r, out) == -1)
		rc = -1;
	free(dr.found);
	free(dr.seen);
	return rc;
}
