/*
 * publish.c: a generation's entries into memcached, in phases.
 */
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

/* End a phase: a round trip to every server written to. */
static int
end_phase(struct store *st, struct catalog *next, struct pending *pend)
{
	size_t	i, j;
	int	rc = 0;

	for (i = 0; i < store_nservers(st); i++) {
		if (pend[i].n == 0)
			continue;
		if (store_flush(st, i) == -1) {
			/* None of this server's batch can be trusted. */
			for (j = 0; j < pend[i].n; j++)
				next->written[pend[i].v[j]] = false;
			rc = -1;
		}
		pend[i].n = 0;
	}
	return rc;
}

/* Queue one entry on every server it belongs on; false if any refused. */
static bool
send_entry(struct store *st, const struct catalog_entry *e, size_t i,
    const char *wire, size_t wlen, uint32_t flags, struct pending *pend)
{
	size_t	idx[STORE_MAX_SERVERS], n, j;
	bool	ok = true;

	n = store_place(st, wire, wlen, idx);
	for (j = 0; j < n; j++) {
		struct pending *p = &pend[idx[j]];

		switch (store_set(st, idx[j], wire, wlen, e->val, e->len,
		    flags)) {
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
	size_t		 i, failed = 0;
	char		 wire[KEY_MAX + 1];
	int		 wlen, phase = 0, rc = 0;

	memset(ps, 0, sizeof *ps);
	memset(pend, 0, sizeof pend);
	free(next->written);
	next->written = xcalloc(next->nentries + 1, sizeof *next->written);
	skipped = xcalloc(next->nentries + 1, sizeof *skipped);
	map_init(&prevkeys);
	for (i = 0; prev != NULL && i < prev->nentries; i++)
		map_put(&prevkeys, prev->entries[i].key,
		    strlen(prev->entries[i].key))->val = (void *)(i + 1);

	for (i = 0; i < next->nentries; i++) {
		struct catalog_entry *e = &next->entries[i];

		if (phase_of(e->family) != phase) {
			if (end_phase(st, next, pend) == -1 ||
			    (phase == 0 && failed > 0)) {
				log_event(LOG_ERR, "refresh_failed",
				    "stage=publish error=%s", "program details "
				    "could not all be written: indexes and site "
				    "lists are not published, so that none "
				    "points at a missing program");
				break;
			}
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
			failed++;
			continue;
		}
		next->written[i] = send_entry(st, e, i, wire, (size_t)wlen,
		    flags, pend);
		if (!next->written[i])
			failed++;
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
	free(skipped);
	map_free(&prevkeys);
	return ps->failed > 0 ? -1 : rc;
}
