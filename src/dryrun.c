/*
 * dryrun.c: --dry-run, what a publish would change, read from the cache.
 */
#include <stdlib.h>
#include <string.h>

#include "dryrun.h"
#include "util.h"

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

int
dryrun_print(struct store *st, const struct plan *c, FILE *out)
{
	struct dry	 dr;
	const char	**keys;
	size_t		*lens, *entry, nsv, i, j, n;
	size_t		 count[FAM_COUNT][3], bytes[FAM_COUNT], total[3] = {0};
	int		 rc = 0, f;
	static const char *const names[] = { "new", "changed", "same" };

	memset(&dr, 0, sizeof dr);
	memset(count, 0, sizeof count);
	memset(bytes, 0, sizeof bytes);
	dr.c = c;
	nsv = store_nservers(st);
	dr.found = xcalloc(c->n + 1, 1);
	dr.seen = xcalloc(c->n + 1, 1);
	/* Per server, the keys that live there, in one batched read. */
	keys = xcalloc(c->n + 1, sizeof *keys);
	lens = xcalloc(c->n + 1, sizeof *lens);
	entry = xcalloc(c->n + 1, sizeof *entry);
	dr.entry = entry;
	for (j = 0; j < nsv; j++) {
		for (i = 0, n = 0; i < c->n; i++) {
			if (c->v[i].wire == NULL ||
			    (c->v[i].servers >> j & 1) == 0)
				continue;
			keys[n] = c->v[i].wire;
			lens[n] = c->v[i].wirelen;
			entry[n++] = i;
		}
		if (n > 0 && store_mget(st, j, keys, lens, n, dry_hit, &dr) ==
		    -1)
			rc = -1;
	}
	free(keys);
	free(lens);
	free(entry);
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
	if (rc == -1)
		fprintf(out, "(a cache server could not be read: keys on it "
		    "are counted as new)\n");
	free(dr.found);
	free(dr.seen);
	return rc;
}
