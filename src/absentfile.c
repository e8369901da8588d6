/*
 * absentfile.c: the record's absent counts as the snapshot's "absent"
 * text (absentfile.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "absentfile.h"

#define ABSENT_VERSION	1
#define ABSENT_MAX	1000000

void
absentfile_put(struct snapshot *snap, const struct map *absent)
{
	const struct map_item	*it;
	json_t			*counts = json_object(), *doc;
	char			*text;

	MAP_FOREACH(absent, it)
		if ((uintptr_t)it->val > 1)
			json_object_set_new(counts, it->key,
			    json_integer((json_int_t)((uintptr_t)it->val - 1)));
	if (json_object_size(counts) == 0) {
		json_decref(counts);
		return;
	}
	doc = json_pack("{s:i, s:o}", "version", ABSENT_VERSION, "absent",
	    counts);
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	snapshot_add_text(snap, ABSENTFILE_TEXT, text, strlen(text));
	free(text);
	json_decref(doc);
}

void
absentfile_copy_others(struct snapshot *snap, const struct snapshot *src)
{
	const struct snapshot_text	*t;
	size_t				 i;

	for (i = 0; src != NULL && i < snapshot_ntexts(src); i++) {
		t = &snapshot_texts(src)[i];
		if (strcmp(t->name, ABSENTFILE_TEXT) != 0)
			snapshot_add_text(snap, t->name, t->text, t->len);
	}
}

void
absentfile_read(const struct snapshot *snap, struct map *absent,
    int stale_after)
{
	const struct snapshot_text	*t = NULL;
	struct map_item			*it;
	json_error_t			 err;
	json_t				*doc, *v;
	const char			*key;
	json_int_t			 n;
	size_t				 i;

	for (i = 0; i < snapshot_ntexts(snap) && t == NULL; i++)
		if (strcmp(snapshot_texts(snap)[i].name, ABSENTFILE_TEXT) == 0)
			t = &snapshot_texts(snap)[i];
	if (t == NULL || (doc = json_loadb(t->text, t->len, 0, &err)) == NULL)
		return;
	if (json_integer_value(json_object_get(doc, "version")) ==
	    ABSENT_VERSION)
		json_object_foreach(json_object_get(doc, "absent"), key, v) {
			n = json_integer_value(v);
			it = map_find(absent, key, strlen(key));
			if (it == NULL || !json_is_integer(v) || n < 1)
				continue;
			if (stale_after > 0 && n > (json_int_t)stale_after)
				n = (json_int_t)stale_after;
			if (n > ABSENT_MAX)
				n = ABSENT_MAX;
			it->val = (void *)(uintptr_t)(n + 1);
		}
	json_decref(doc);
}
