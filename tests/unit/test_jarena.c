/*
 * test_jarena.c: jansson's arena.  Values made inside a bracket come from
 * its chunks and vanish with it; values made outside (or while paused)
 * are malloc's and survive it, and may be freed inside a bracket;
 * json_dumps' strings are handed out through jsonld_dumps as malloc's;
 * brackets nest; other threads are not affected.  Run under ASan or
 * valgrind, a free() of arena memory or a leak fails.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jarena.h"
#include "jsonld.h"
#include "t.h"

static const char doc[] =
    "{\"uuid\": \"a\", \"title\": \"T\", \"n\": 123456789012345678901234567890,"
    " \"list\": [1, 2.5, \"x\", {\"k\": null}], \"long\": \""
    "0123456789012345678901234567890123456789012345678901234567890123\"}";

/* A parse in a bracket, its dump copied out; the copy outlives it. */
static char *
parse_and_dump(void)
{
	struct jarena	 a;
	json_error_t	 e;
	json_t		*j;
	char		*s;

	jarena_begin(&a);
	j = jsonld_load(doc, strlen(doc), 0, &e);
	T_CHECK(j != NULL);
	T_CHECK(a.used > 0);			/* it came from the arena */
	s = jsonld_dumps(j);
	json_decref(j);
	jarena_end(&a);
	return s;
}

static void *
thread_main(void *arg)
{
	char	*s = parse_and_dump();

	(void)arg;
	return s;
}

int
main(void)
{
	struct jarena	 a, b, *paused;
	json_t		*outside, *kept, *j;
	json_error_t	 e;
	char		*s, *t;
	pthread_t	 th[4];
	int		 i;

	json_object_seed(1);
	jarena_init();

	/* Made outside, freed inside: malloc's free. */
	outside = json_pack("{s:s}", "a", "b");
	jarena_begin(&a);
	json_decref(outside);
	/* Kept: a copy made while paused is malloc's. */
	j = jsonld_load(doc, strlen(doc), 0, &e);
	paused = jarena_pause();
	kept = json_deep_copy(j);
	jarena_resume(paused);
	json_decref(j);
	/* Nested brackets. */
	jarena_begin(&b);
	j = json_pack("[i,i,s]", 1, 2, "three");
	T_CHECK(b.used > 0);
	json_decref(j);
	jarena_end(&b);
	jarena_end(&a);
	T_STREQ(json_string_value(json_object_get(kept, "title")), "T");
	json_decref(kept);

	/* jsonld_dumps gives malloc's memory, marked numbers restored. */
	s = parse_and_dump();
	T_CHECK(strstr(s, "123456789012345678901234567890") != NULL);
	T_CHECK(strstr(s, "pcd-number") == NULL);
	/* The same without a bracket. */
	j = jsonld_load(doc, strlen(doc), 0, &e);
	t = jsonld_dumps(j);
	json_decref(j);
	T_STREQ(t, s);
	free(t);

	/* Threads, each with its own bracket. */
	for (i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, thread_main, NULL);
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], (void **)&t);
		T_STREQ(t, s);
		free(t);
	}
	free(s);
	return t_done();
}
