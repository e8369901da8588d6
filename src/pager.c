/*
 * pager.c: following "next", with the origin and loop rules.
 */
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "pager.h"
#include "py.h"

void
pager_init(struct pager *p, enum pager_kind kind, const char *origin,
    int max_pages)
{
	memset(p, 0, sizeof *p);
	p->kind = kind;
	p->origin = origin;
	p->max_pages = max_pages;
	map_init(&p->seen);
}

void
pager_free(struct pager *p)
{
	map_free(&p->seen);
}

int
pager_begin(struct pager *p)
{
	return ++p->pages;
}

enum pager_step
pager_next(struct pager *p, const json_t *next, const char **url, char *why,
    size_t whylen)
{
	struct map_item	*it;

	*url = NULL;
	if (p->kind == PAGER_URL) {
		if (!json_is_string(next) || json_string_length(next) == 0)
			return PAGER_DONE;
		if (!http_same_origin(p->origin, json_string_value(next))) {
			snprintf(why, whylen, "\"next\" is not on the scheme, "
			    "host and port of catalog_api_url: not followed");
			return PAGER_REFUSED;
		}
	} else if (!py_truthy(next))
		return PAGER_DONE;
	if (p->pages >= p->max_pages) {
		snprintf(why, whylen, "more than %d pages (max_pages)",
		    p->max_pages);
		return PAGER_REFUSED;
	}
	if (json_is_string(next)) {
		it = map_put(&p->seen, json_string_value(next),
		    json_string_length(next));
		if (it->val != NULL) {
			snprintf(why, whylen, "pagination loop: \"next\" "
			    "repeats an earlier page");
			return PAGER_REFUSED;
		}
		it->val = p;
		*url = json_string_value(next);
	}
	return PAGER_NEXT;
}
