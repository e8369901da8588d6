/*
 * incr.c: incremental refreshes of a site (design.md: Incremental refresh):
 * the lists, what changed since the newest timestamp held, and the details of
 * only that.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch_int.h"
#include "log.h"
#include "py.h"
#include "tstamp.h"
#include "util.h"

/*
 * How far a data_modified_timestamp may be ahead of Discovery's own clock
 * (the Date header of its replies; the daemon's own clock when no reply
 * had one, as behind a proxy that drops it) and still count for the
 * watermark.
 * Date has a one-second resolution and Discovery's web servers and database
 * may disagree by seconds; five minutes covers that.  A timestamp ignored
 * only lowers the watermark (more of the list is fetched), never hides an
 * edit; one that counted while far ahead (2999-01-01) would hide every
 * edit until the next full refresh.
 */
#define CLOCK_TOLERANCE_US	(5 * 60 * INT64_C(1000000))

/*
 * The newest data_modified_timestamp a site's records hold, if any, of
 * those no later than clock_us (Discovery's clock plus the tolerance; 0:
 * unknown, none ignored).  Each record ignored is logged once.
 */
static bool
watermark(const struct catalog_site *cs, int64_t clock_us, int64_t *max)
{
	struct program_facts	f;
	int64_t			us;
	size_t			i;
	bool			any = false;

	for (i = 0; i < cs->nprograms; i++) {
		program_facts(cs->programs[i], &f);
		if (f.modified == NULL || !tstamp_parse(f.modified, &us))
			continue;
		if (clock_us != 0 && us > clock_us + CLOCK_TOLERANCE_US) {
			if (!program_note_future(cs->programs[i]))
				log_event(LOG_WARNING, "timestamp_ahead",
				    "site=%s program=%s modified=%s "
				    "tolerance_s=%lld", cs->domain, f.uuid,
				    f.modified, (long long)(CLOCK_TOLERANCE_US
				    / 1000000));
			continue;
		}
		if (!any || us > *max)
			*max = us;
		any = true;
	}
	return any;
}

/* Whether a site of the last generation can be refreshed incrementally. */
static bool
eligible(const struct catalog_site *cs)
{
	struct program_facts	f;
	int64_t			us;
	size_t			i;

	if (cs == NULL || !cs->has_data || !cs->full_ok ||
	    cs->incr == INCR_UNSUPPORTED)
		return false;
	for (i = 0; i < cs->nprograms; i++) {
		program_facts(cs->programs[i], &f);
		if (f.modified != NULL && tstamp_parse(f.modified, &us))
			return true;
	}
	return false;
}

bool
incr_prepare(struct site_fetch *sf)
{
	if (!eligible(sf->prev))
		return false;
	sf->incr = true;
	return true;
}

static void	get_filter(struct site_fetch *, const char *);

/*
 * T, from Discovery's clock: the newest timestamp held that is not ahead
 * of it, less the overlap.  None left (every one ahead): the site fails,
 * what changed cannot be known; the next full refresh mends it.
 */
static void
filter_from_clock(struct site_fetch *sf)
{
	int64_t	max = 0;
	char	ts[64];

	sf->filter_waits = false;
	/* No Date header: ours, or a far-future timestamp would count. */
	if (sf->clock_us == 0)
		sf->clock_us = (int64_t)wall_ms() * 1000;
	if (!watermark(sf->prev, sf->clock_us, &max)) {
		fetch_failed(sf, "filtered", NULL, "every data_modified_timestamp "
		    "held is ahead of Discovery's clock (see timestamp_ahead)");
		sf->filter_failed = true;
		return;
	}
	tstamp_format(max - (int64_t)sf->f->o.cfg->incremental_overlap_ms *
	    1000, ts, sizeof ts);
	sf->since = http_escape(ts);
	get_filter(sf, NULL);
}

void
incr_reply(struct site_fetch *sf, const struct http_result *r)
{
	if (r->date > 0 && r->date * INT64_C(1000000) > sf->clock_us)
		sf->clock_us = r->date * INT64_C(1000000);
	/* The filter's T waits for Discovery's clock: its first reply. */
	if (sf->filter_waits && r->status > 0 && !sf->f->expired)
		filter_from_clock(sf);
}

/* The minimal program list (or one page): its list and "next". */
static bool
minimal_page(json_t *j, json_t **list, json_t **next)
{
	*list = j;
	*next = NULL;
	if (json_is_object(j)) {
		*list = json_object_get(j, "results");
		*next = json_object_get(j, "next");
	}
	return json_is_array(*list);
}

static void	on_filter(struct site_fetch *, const struct http_result *,
		    size_t, const char *);

/* Fetch the filtered list (its first page, or the page after). */
static void
get_filter(struct site_fetch *sf, const char *next)
{
	char	*url;

	pager_begin(&sf->filter_pager);
	if (next != NULL)
		url = xstrdup(next);
	else
		url = xasprintf("%s/programs/?exclude_utm=1&status=active&"
		    "status=retired&timestamp=%s", sf->cs->catalog_api_url,
		    sf->since);
	fetch_get(sf, url, on_filter, "filtered", 0, NULL);
	free(url);
}

/* The lists an incremental refresh asks for, all at once. */
static void
lists(struct site_fetch *sf)
{
	fetch_uuids(sf, NULL);
	fetch_pathways(sf);
	if (sf->clock_us != 0)
		filter_from_clock(sf);
	else
		sf->filter_waits = true;
}

/* One entry of the filtered list: its uuid and timestamp, remembered. */
static bool
note_changed(struct site_fetch *sf, const json_t *v)
{
	const json_t	*u, *ts;
	struct map_item	*it;

	u = json_object_get(v, "uuid");
	if (!json_is_string(u) || json_string_length(u) == 0 ||
	    strlen(json_string_value(u)) != json_string_length(u))
		return false;
	ts = json_object_get(v, "data_modified_timestamp");
	it = map_put(&sf->changed, json_string_value(u),
	    json_string_length(u));
	free(it->val);
	/* No timestamp: fetched (it cannot be compared). */
	it->val = xstrdup(json_is_string(ts) ? json_string_value(ts) : "");
	return true;
}

/*
 * A page of the filtered list arrived: the programs modified at or after
 * T, with their timestamps.  Any failure fails the site's refresh (what
 * changed cannot be known).
 */
static void
on_filter(struct site_fetch *sf, const struct http_result *r, size_t slot,
    const char *uuid)
{
	json_t		*j, *list, *next, *v;
	const char	*url;
	size_t		 i;
	int		 more;

	(void)slot;
	(void)uuid;
	if ((j = fetch_json(sf, "filtered", r)) == NULL)
		goto fail;
	if (!minimal_page(j, &list, &next)) {
		fetch_failed(sf, "filtered", r, "the filtered program list is "
		    "not a JSON list");
		json_decref(j);
		goto fail;
	}
	json_array_foreach(list, i, v) {
		if (!note_changed(sf, v)) {
			fetch_failed(sf, "filtered", r, "an entry of the "
			    "filtered program list has no uuid");
			json_decref(j);
			goto fail;
		}
	}
	more = fetch_follow(sf, &sf->filter_pager, "filtered", next, r, &url);
	if (more == 1)
		get_filter(sf, url);
	json_decref(j);
	if (more != -1)
		return;
fail:
	sf->filter_failed = true;
}

/*
 * The probe's answer: a Discovery that filters lists nothing after a
 * far-future timestamp; one that ignores the parameter lists everything.
 */
static void
on_probe(struct site_fetch *sf, const struct http_result *r, size_t slot,
    const char *uuid)
{
	json_t	*j, *list, *next;

	(void)slot;
	(void)uuid;
	if ((j = fetch_json(sf, "probe", r)) == NULL)
		goto fail;
	if (!minimal_page(j, &list, &next)) {
		fetch_failed(sf, "probe", r, "the program list is not a JSON "
		    "list");
		json_decref(j);
		goto fail;
	}
	if (json_array_size(list) > 0 || py_truthy(next)) {
		sf->incr_state = INCR_UNSUPPORTED;
		sf->incr_off = true;
		sf->incr = false;
		log_event(LOG_WARNING, "incremental_unsupported", "site=%s "
		    "url=%s listed=%zu error=%s", sf->cs->domain, r->url,
		    json_array_size(list), "Discovery ignores the timestamp "
		    "filter: full refreshes only for this site");
		json_decref(j);
		return;
	}
	json_decref(j);
	sf->incr_state = INCR_SUPPORTED;
	if (!sf->f->expired) {
		lists(sf);
		return;
	}
fail:
	sf->filter_failed = true;
}

void
incr_begin(struct site_fetch *sf)
{
	char	*url;

	if (sf->incr_state != INCR_UNKNOWN) {
		lists(sf);
		return;
	}
	url = xasprintf("%s/programs/?exclude_utm=1&status=active&"
	    "status=retired&timestamp=2999-12-31T00%%3A00%%3A00Z",
	    sf->cs->catalog_api_url);
	fetch_get(sf, url, on_probe, "probe", 0, NULL);
	free(url);
}

/* The UUIDs of the programs a site's pathways name. */
static void
pathway_uuids(const json_t *pathways, struct map *out)
{
	const json_t	*pw, *progs, *p, *u;
	size_t		 i, j;

	json_array_foreach(pathways, i, pw) {
		progs = json_object_get(pw, "programs");
		json_array_foreach(progs, j, p) {
			u = json_object_get(p, "uuid");
			if (json_is_string(u))
				map_put(out, json_string_value(u),
				    json_string_length(u))->val = out;
		}
	}
}

/*
 * Whether program uuid's detail is to be fetched: new, modified (its
 * listed timestamp is not the one held), not known to be current, or a
 * kept record (final value) that changed pathways name.
 */
static bool
needs_detail(struct site_fetch *sf, const char *uuid, struct program *p,
    const struct map *inpw)
{
	struct program_facts	 f;
	const char		*listed;

	if (p == NULL)
		return true;
	program_facts(p, &f);
	listed = map_get(&sf->changed, uuid, strlen(uuid));
	return f.modified == NULL || (listed != NULL &&
	    strcmp(listed, f.modified) != 0) || (program_is_kept(p) &&
	    map_get(inpw, uuid, strlen(uuid)) != NULL);
}

bool
incr_details(struct site_fetch *sf)
{
	struct map	 inpw;
	struct program	*p;
	size_t		 i, n = 0, *wanted, nwanted = 0;

	sf->incr_details = true;
	if (sf->incr_off || sf->uuids_failed)
		return false;
	if (sf->filter_failed || sf->filter_waits || sf->f->expired) {
		/*
		 * What changed is not known: the site failed (design.md:
		 * Failures).
		 */
		sf->uuids_failed = true;
		return false;
	}
	/* A kept record's value is final, pathway_ids included. */
	map_init(&inpw);
	if (!sf->pathways_failed && (sf->prev->pathways == NULL ||
	    !json_equal(sf->pathways, sf->prev->pathways))) {
		pathway_uuids(sf->pathways, &inpw);
		if (sf->prev->pathways != NULL)
			pathway_uuids(sf->prev->pathways, &inpw);
	}
	sf->slots = xcalloc(sf->nuuids + 1, sizeof *sf->slots);
	wanted = xcalloc(sf->nuuids + 1, sizeof *wanted);
	for (i = 0; i < sf->nuuids; i++) {
		struct map_item	*it;
		const char	*uuid = sf->uuids[i];

		it = map_put(&sf->unique, uuid, strlen(uuid));
		if (it->val != NULL)
			continue;	/* listed twice: fetched once */
		it->val = (void *)(uintptr_t)(n + 1);
		p = map_get(&sf->prevprog, uuid, strlen(uuid));
		if (needs_detail(sf, uuid, p, &inpw))
			wanted[nwanted++] = n;
		else
			sf->slots[n] = program_ref(p);
		n++;
	}
	map_free(&inpw);
	fetch_details(sf, wanted, nwanted);
	return sf->outstanding > 0;
}

bool
fetch_incremental_ready(const struct cfg *cfg, const struct catalog *gen)
{
	const struct catalog_site	*cs;
	size_t				 i;
	bool				 any = false;

	if (gen == NULL || cfg->incremental_interval_ms == 0)
		return false;
	for (i = 0; i < cfg->nsites; i++) {
		if (cfg->sites[i].catalog_api_url == NULL)
			continue;
		cs = catalog_find_site(gen, cfg->sites[i].domain);
		if (cs == NULL || !cs->has_data)
			return false;	/* a full refresh comes first */
		if (eligible(cs))
			any = true;
	}
	return any;
}
