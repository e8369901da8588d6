/*
 * pathway.c: process_pathways, without changing anything.
 */
#include <stdlib.h>
#include <string.h>

#include "family.h"
#include "log.h"
#include "map.h"
#include "pathway.h"
#include "py.h"
#include "util.h"

/*
 * A pathway that upstream's process_pathways raises on.  It is cached
 * exactly as upstream caches it, so the site is still fully published:
 * this is Discovery's inconsistency, reported, not a failed refresh.
 */
static void
unresolved(const struct catalog_site *s, bool log, const char *fmt, ...)
    PCD_ATTR_PRINTF(3, 4);

static void
unresolved(const struct catalog_site *s, bool log, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	if (!log)
		return;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	log_event(LOG_WARNING, "pathway_unresolved", "site=%s error=%s",
	    s->domain, msg);
	free(msg);
}

/* The item for key: a new one at the end, or the earlier one emptied. */
static struct pathway_item *
item_for(struct pathway_walk *w, struct map *bykey, const char *key)
{
	struct map_item		*it = map_put(bykey, key, strlen(key));
	struct pathway_item	*pi;

	if (it->val == NULL) {
		w->v = xreallocarray(w->v, w->n + 1, sizeof *w->v);
		pi = &w->v[w->n++];
		memset(pi, 0, sizeof *pi);
		pi->key = xstrdup(key);
		it->val = (void *)(uintptr_t)w->n;
		return pi;
	}
	pi = &w->v[(uintptr_t)it->val - 1];
	json_decref(pi->pw);
	json_decref(pi->id);
	json_decref(pi->uuids);
	pi->uuids = NULL;
	return pi;
}

/*
 * One pathway's programs: append its id to each program's ids and build
 * program_uuids.  false where upstream raises: the programs before the
 * bad one keep the id (the Python appended before it raised).
 */
static bool
walk_programs(const struct catalog_site *s, bool log, struct map *byuuid,
    struct pathway_walk *w, struct pathway_item *pi, const json_t *progs)
{
	const json_t	*prog, *uuid;
	struct map_item	*pit;
	size_t		 j, k;

	json_array_foreach(progs, j, prog) {
		if (!json_is_object(prog) || (uuid = json_object_get(prog,
		    "uuid")) == NULL || !json_is_string(uuid)) {
			unresolved(s, log, "%s: programs[%zu] has no uuid",
			    pi->key, j);
			return false;
		}
		pit = map_find(byuuid, json_string_value(uuid),
		    json_string_length(uuid));
		if (pit == NULL) {
			unresolved(s, log, "%s lists program %s, which is not "
			    "among the site's programs: cached unmodified, as "
			    "cache_programs does", pi->key,
			    json_string_value(uuid));
			return false;
		}
		k = (size_t)(uintptr_t)pit->val - 1;
		json_array_append(w->ids[k], pi->id);
		json_array_append(pi->uuids, (json_t *)uuid);
	}
	return true;
}

void
pathway_walk(const struct catalog_site *s, bool log, struct pathway_walk *w)
{
	struct map		 byuuid, bykey;
	struct pathway_item	*pi;
	json_t			*pw, *id, *progs;
	size_t			 i;
	char			*idtext, *key;

	memset(w, 0, sizeof *w);
	w->nprograms = s->nprograms;
	w->ids = xcalloc(s->nprograms + 1, sizeof *w->ids);
	map_init(&byuuid);
	for (i = 0; i < s->nprograms; i++) {
		w->ids[i] = json_array();
		map_put(&byuuid, program_uuid(s->programs[i]),
		    strlen(program_uuid(s->programs[i])))->val =
		    (void *)(uintptr_t)(i + 1);
	}
	map_init(&bykey);
	json_array_foreach(s->pathways, i, pw) {
		if (!json_is_object(pw) ||
		    (id = json_object_get(pw, "id")) == NULL) {
			unresolved(s, log, "pathway %zu has no id", i);
			continue;
		}
		if ((idtext = py_str(id)) == NULL) {
			unresolved(s, log, "pathway %zu: id is not a number or "
			    "string", i);
			continue;
		}
		key = family_key(FAM_PATHWAY, idtext);
		free(idtext);
		pi = item_for(w, &bykey, key);
		free(key);
		pi->pw = json_incref(pw);
		pi->id = json_incref(id);
		if ((progs = json_object_get(pw, "programs")) == NULL ||
		    !json_is_array(progs)) {
			unresolved(s, log, "pathway %s has no list of "
			    "programs", pi->key);
			continue;
		}
		pi->uuids = json_array();
		if (!walk_programs(s, log, &byuuid, w, pi, progs)) {
			json_decref(pi->uuids);
			pi->uuids = NULL;
		}
	}
	map_free(&bykey);
	map_free(&byuuid);
}

void
pathway_walk_free(struct pathway_walk *w)
{
	size_t	i;

	for (i = 0; i < w->n; i++) {
		free(w->v[i].key);
		json_decref(w->v[i].pw);
		json_decref(w->v[i].id);
		json_decref(w->v[i].uuids);
	}
	free(w->v);
	for (i = 0; i < w->nprograms; i++)
		json_decref(w->ids[i]);
	free(w->ids);
	memset(w, 0, sizeof *w);
}
