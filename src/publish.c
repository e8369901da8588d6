/*
 * publish.c: a generation's entries into memcached, in phases.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "map.h"
#include "metrics.h"
#include "publish.h"
#include "util.h"

/* The phase an entry belongs to (see publish.h). */
static int
phase_of(enum catalog_family f)
{
	switch (f) {
	case FAM_PROGRAM:
	case FAM_PATHWAY:
		return 0;
	case FAM_SITE_PROGRAMS:
	case FAM_SITE_PATHWAYS:
		return 2;
	default:
		return 1;
	}
}

int
pub_phase(enum catalog_family f)
{
	return phase_of(f);
}

/* Entries written to a server since its last flush. */
struct pending {
	size_t	*v;
	size_t	 n;
};

/* Whether prev already wrote this exact value under this key. */
static bool
unchanged(const struct catalog *prev, const struct map *prevkeys,
    const struct catalog_entry *e)
{
	const struct catalog_entry	*p;
	uintptr_t			 ix;

	if (prev == NULL)
		return false;
	ix = (uintptr_t)map_get(prevkeys, e->key, strlen(e->key));
	if (ix == 0 || !prev->written[ix - 1])
		return false;
	p = &prev->entries[ix - 1];
	return p->len == e->len &&
	    (p->val == e->val || memcmp(p->val, e->val, e->len) == 0);
}

/* store_flush's callback: a value the server refused is not written. */
static void
on_refused(size_t tag, void *arg)
{
	struct catalog	*next = arg;

	next->written[tag] = false;
}

/* End a phase: a round trip to every server written to. */
static int
end_phase(struct store *st, struct catalog *next, struct pending *pend)
{
	size_t	i, j;
	int	rc = 0;

	for (i = 0; i < store_nservers(st); i++) {
		if (pend[i].n == 0)
			continue;
		if (store_flush(st, i, on_refused, next) == -1) {
			/* None of this server's batch can be trusted. */
			for (j = 0; j < pend[i].n; j++)
				next->written[pend[i].v[j]] = false;
			rc = -1;
		}
		pend[i].n = 0;
	}
	return rc;
}

/*
 * A test hook: PCD_TEST_STOP_AFTER_PHASE=N stops the process (SIGSTOP)
 * once phase N is in memcached, so that a test can kill -9 it exactly
 * between the details and the indexes (tests/integration/test_matrix.py).
 */
static void
test_stop_point(int phase)
{
	const char	*s = getenv("PCD_TEST_STOP_AFTER_PHASE");

	if (s != NULL && strtol(s, NULL, 10) == phase)
		raise(SIGSTOP);
}

/*
 * Queue one entry on every server it belongs on; false if any refused.
 * A server that is down counts in *down: it stops the later phases, where
 * a value refused for its size (the old one stays) does not.
 */
static bool
send_entry(struct store *st, const struct catalog_entry *e, size_t i,
    const char *wire, size_t wlen, uint32_t flags, struct pending *pend,
    size_t *down)
{
	size_t	idx[STORE_MAX_SERVERS], n, j;
	bool	ok = true;

	n = store_place(st, wire, wlen, idx);
	for (j = 0; j < n; j++) {
		struct pending *p = &pend[idx[j]];

		switch (store_set(st, idx[j], wire, wlen, e->val, e->len,
		    flags, i)) {
		case STORE_OK:
			p->v = xreallocarray(p->v, p->n + 1, sizeof *p->v);
			p->v[p->n++] = i;
			break;
		case STORE_TOO_BIG:
			log_event(LOG_ERR, "memcached_error", "server=%s op=set "
			    "key=%s bytes=%zu error=%s",
			    store_server_name(st, idx[j]), e->key, e->len,
			    "value over the server's item size limit: not "
			    "written, the old value stays");
			ok = false;
			break;
		case STORE_DOWN:
			(*down)++;
			ok = false;
			break;
		case STORE_ERROR:
			ok = false;
			break;
		}
	}
	return ok;
}

int
pub_write(struct store *st, const struct keyfn *kf, struct catalog *next,
    const struct catalog *prev, bool repair, uint32_t flags,
    struct pub_stats *ps)
{
	struct pending	 pend[STORE_MAX_SERVERS];
	struct map	 prevkeys;
	bool		*skipped;
	char		**wires;
	size_t		 i, down = 0;
	char		 wire[KEY_MAX + 1];
	int		 wlen, phase = 0, rc = 0;

	memset(ps, 0, sizeof *ps);
	memset(pend, 0, sizeof pend);
	/* A publish is worth one new try of a server that was down. */
	store_retry_now(st);
	free(next->written);
	next->written = xcalloc(next->nentries + 1, sizeof *next->written);
	skipped = xcalloc(next->nentries + 1, sizeof *skipped);
	wires = xcalloc(next->nentries + 1, sizeof *wires);
	map_init(&prevkeys);
	for (i = 0; prev != NULL && i < prev->nentries; i++)
		map_put(&prevkeys, prev->entries[i].key,
		    strlen(prev->entries[i].key))->val = (void *)(i + 1);

	for (i = 0; i < next->nentries; i++) {
		struct catalog_entry *e = &next->entries[i];

		if (phase_of(e->family) != phase) {
			if (end_phase(st, next, pend) == -1 ||
			    (phase == 0 && down > 0)) {
				log_event(LOG_ERR, "refresh_failed",
				    "stage=publish error=%s", "program details "
				    "could not all be written: indexes and site "
				    "lists are not published, so that none "
				    "points at a missing program");
				break;
			}
			test_stop_point(phase);
			phase = phase_of(e->family);
		}
		if (!repair && unchanged(prev, &prevkeys, e)) {
			next->written[i] = skipped[i] = true;
			continue;
		}
		if ((wlen = key_make(kf, e->key, strlen(e->key), wire)) == -1) {
			log_event(LOG_ERR, "memcached_error", "op=set key=%s "
			    "error=%s", e->key, "not a valid memcached key "
			    "with key_function = django (space, control "
			    "character or over 250 bytes)");
			continue;
		}
		wires[i] = xstrdup(wire);	/* borrowed until the flush */
		next->written[i] = send_entry(st, e, i, wires[i], (size_t)wlen,
		    flags, pend, &down);
	}
	if (end_phase(st, next, pend) == -1)
		rc = -1;

	for (i = 0; i < next->nentries; i++) {
		if (skipped[i])
			ps->skipped++;
		else if (next->written[i]) {
			ps->written++;
			ps->bytes += next->entries[i].len;
		} else
			ps->failed++;
	}
	metrics.keys_skipped += ps->skipped;
	for (i = 0; i < STORE_MAX_SERVERS; i++)
		free(pend[i].v);
	for (i = 0; i < next->nentries; i++)
		free(wires[i]);
	free(wires);
	free(skipped);
	map_free(&prevkeys);
	return ps->failed > 0 ? -1 : rc;
}

/* --- dry run --------------------------------------------------------- */

enum dry_state {
	DRY_NEW,
	DRY_CHANGED,
	DRY_SAME
};

struct dry {
	const struct catalog	*c;
	uint32_t		 flags;
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
	const struct catalog_entry	*e = &dr->c->entries[i];

	dr->seen[i]++;
	if (flags == dr->flags && len == e->len &&
	    memcmp(val, e->val, len) == 0)
		dr->found[i]++;
}

int
pub_dry_run(struct store *st, const struct keyfn *kf,
    const struct catalog *c, uint32_t flags, FILE *out)
{
	struct dry	 dr;
	char		 wire[KEY_MAX + 1];
	char		**wires;
	unsigned char	*places;
	const char	**keys;
	size_t		*lens, *entry, idx[STORE_MAX_SERVERS], nsv, i, j, n;
	size_t		 count[FAM_COUNT][3], bytes[FAM_COUNT], total[3] = {0};
	int		 wlen, rc = 0, f;
	static const char *const names[] = { "new", "changed", "same" };

	memset(&dr, 0, sizeof dr);
	memset(count, 0, sizeof count);
	memset(bytes, 0, sizeof bytes);
	dr.c = c;
	dr.flags = flags;
	nsv = store_nservers(st);
	dr.found = xcalloc(c->nentries + 1, 1);
	dr.seen = xcalloc(c->nentries + 1, 1);
	wires = xcalloc(c->nentries + 1, sizeof *wires);
	places = xcalloc((c->nentries + 1) * nsv, 1);
	for (i = 0; i < c->nentries; i++) {
		wlen = key_make(kf, c->entries[i].key,
		    strlen(c->entries[i].key), wire);
		if (wlen == -1)
			continue;
		wires[i] = xstrdup(wire);
		n = store_place(st, wire, (size_t)wlen, idx);
		for (j = 0; j < n; j++)
			places[i * nsv + idx[j]] = 1;
	}
	/* Per server, the keys that live there, in one batched read. */
	keys = xcalloc(c->nentries + 1, sizeof *keys);
	lens = xcalloc(c->nentries + 1, sizeof *lens);
	entry = xcalloc(c->nentries + 1, sizeof *entry);
	dr.entry = entry;
	for (j = 0; j < nsv; j++) {
		for (i = 0, n = 0; i < c->nentries; i++) {
			if (wires[i] == NULL || !places[i * nsv + j])
				continue;
			keys[n] = wires[i];
			lens[n] = strlen(wires[i]);
			entry[n++] = i;
		}
		if (n > 0 && store_mget(st, j, keys, lens, n, dry_hit, &dr) ==
		    -1)
			rc = -1;
	}
	free(keys);
	free(lens);
	free(entry);
	for (i = 0; i < c->nentries; i++) {
		const struct catalog_entry *e = &c->entries[i];
		size_t want = 0;
		enum dry_state ds;

		for (j = 0; j < nsv; j++)
			want += places[i * nsv + j];
		if (wires[i] == NULL) {
			fprintf(out, "invalid  %-24s %8zu  %s\n",
			    catalog_family_name(e->family), e->len, e->key);
			continue;
		}
		ds = dr.found[i] == want ? DRY_SAME : dr.seen[i] > 0 ?
		    DRY_CHANGED : DRY_NEW;
		count[e->family][ds]++;
		bytes[e->family] += e->len;
		total[ds]++;
		if (ds != DRY_SAME)
			fprintf(out, "%-8s %-24s %8zu  %s\n", names[ds],
			    catalog_family_name(e->family), e->len, e->key);
	}
	fprintf(out, "\n%-24s %8s %12s %8s %8s %8s\n", "family", "keys",
	    "bytes", "new", "changed", "same");
	for (f = 0; f < FAM_COUNT; f++)
		fprintf(out, "%-24s %8zu %12zu %8zu %8zu %8zu\n",
		    catalog_family_name((enum catalog_family)f),
		    count[f][0] + count[f][1] + count[f][2], bytes[f],
		    count[f][0], count[f][1], count[f][2]);
	for (f = 0, n = 0; f < FAM_COUNT; f++)
		n += bytes[f];
	fprintf(out, "%-24s %8zu %12zu %8zu %8zu %8zu\n", "total",
	    total[0] + total[1] + total[2], n, total[0], total[1], total[2]);
	if (rc == -1)
		fprintf(out, "(a memcached server could not be read: keys on it "
		    "are counted as new)\n");
	for (i = 0; i < c->nentries; i++)
		free(wires[i]);
	free(wires);
	free(places);
	free(dr.found);
	free(dr.seen);
	return rc;
}

/* --- stale keys ------------------------------------------------------ */

struct pub_stale {
	struct map	keys;		/* Django key -> absences + 1 */
};

struct pub_stale *
pub_stale_new(void)
{
	struct pub_stale	*ps = xcalloc(1, sizeof *ps);

	map_init(&ps->keys);
	return ps;
}

void
pub_stale_free(struct pub_stale *ps)
{
	if (ps == NULL)
		return;
	map_free(&ps->keys);
	free(ps);
}

/* Delete one key wherever it lives; false if a server refused. */
static bool
stale_delete(struct store *st, const struct keyfn *kf, const char *key,
    bool *touched)
{
	char	wire[KEY_MAX + 1];
	size_t	idx[STORE_MAX_SERVERS], n, j;
	int	wlen;
	bool	ok = true;

	if ((wlen = key_make(kf, key, strlen(key), wire)) == -1)
		return true;	/* it could never have been written */
	n = store_place(st, wire, (size_t)wlen, idx);
	for (j = 0; j < n; j++) {
		if (store_delete(st, idx[j], wire, (size_t)wlen) != STORE_OK)
			ok = false;
		touched[idx[j]] = true;
	}
	return ok;
}

size_t
pub_stale_sweep(struct pub_stale *ps, struct store *st,
    const struct keyfn *kf, const struct catalog *next, int stale_after,
    bool sweep)
{
	struct map	 now, kept;
	struct map_item	*it;
	struct buf	 examples;
	bool		 touched[STORE_MAX_SERVERS] = { false };
	uintptr_t	 absent;
	size_t		 i, deleted = 0;

	map_init(&now);
	for (i = 0; i < next->nentries; i++)
		map_put(&now, next->entries[i].key,
		    strlen(next->entries[i].key))->val = &now;
	buf_init(&examples);
	map_init(&kept);
	MAP_FOREACH(&ps->keys, it) {
		if (map_get(&now, it->key, it->keylen) != NULL)
			continue;	/* present: counted below */
		absent = (uintptr_t)it->val;	/* absences + 1 */
		if (sweep)
			absent++;
		if (sweep && stale_after > 0 &&
		    absent - 1 >= (uintptr_t)stale_after &&
		    stale_delete(st, kf, it->key, touched)) {
			if (deleted++ < 5)
				buf_printf(&examples, "%s%s", deleted > 1 ?
				    " " : "", it->key);
			continue;
		}
		map_put(&kept, it->key, it->keylen)->val = (void *)absent;
	}
	MAP_FOREACH(&now, it)
		map_put(&kept, it->key, it->keylen)->val = (void *)1;
	map_free(&now);
	map_free(&ps->keys);
	ps->keys = kept;
	for (i = 0; i < store_nservers(st); i++)
		if (touched[i])
			if (store_flush(st, i, NULL, NULL) == -1)
				continue;	/* logged by the store */
	if (deleted > 0)
		log_event(LOG_INFO, "stale_deleted", "keys=%zu stale_after=%d "
		    "examples=%s", deleted, stale_after,
		    (const char *)examples.data);
	buf_free(&examples);
	return deleted;
}
