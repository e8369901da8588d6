/*
 * floor: the least a refresh has to do, with no HTTP.
 *
 * Reads a catalogue directory written by bench/gen.py into memory (not
 * timed), then, timed: parses every body with jansson (jsonld_load, as the
 * daemon does), pickles each value with the daemon's pickler, makes its key
 * with the daemon's key function, and pipelines the same key families into
 * one memcached with libmemcached NOREPLY + BUFFER_REQUESTS, as src/store.c
 * does; one round trip at the end proves memcached has processed it all.
 *
 *	bench-floor -d DIR -s HOST:PORT [-P proto] [-D domain] [-i site_id]
 *
 * The families are those of cache_programs: program-* (the detail plus
 * "pathway_ids"), pathway-* ("programs" replaced by "program_uuids"),
 * course-programs-* and catalog-course-programs-* (first active
 * curriculum, own courses, child programs), programs-by-type-*,
 * programs-by-type-slug-*, organization-programs-*, program-uuids-* and
 * pathway-ids-*.  What the floor skips: shape checks, the previous
 * generation, placement over several servers, and Python's str()/lower()
 * of non-ASCII or non-string type names (ASCII tolower here); none of
 * that changes the number of keys for a generated catalogue.
 *
 * Prints one JSON object on stdout: keys, bytes, and milliseconds spent
 * parsing, encoding (facts, pickles, keys), writing (memcached_set calls
 * and the final round trip) and in total.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libmemcached/memcached.h>

#include "jsonld.h"
#include "keys.h"
#include "map.h"
#include "pickle.h"
#include "util.h"

struct body {
	char	*data;
	size_t	 len;
};

/* A list of strings under a key (an index entry). */
struct strlist {
	char	**v;
	size_t	  n;
};

static struct {
	memcached_st	*mc;
	struct keyfn	 kf;
	struct pickle	 pk;
	size_t		 keys;
	size_t		 bytes;
	double		 parse_ms;
	double		 encode_ms;
	double		 write_ms;
} fl;

static PCD_NORETURN void
usage(void)
{
	fprintf(stderr, "usage: bench-floor -d dir -s host:port [-P proto] "
	    "[-D domain] [-i site_id]\n");
	exit(2);
}

static double
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Read a whole file; exit on failure (before timing starts). */
static void
slurp(const char *path, struct body *b)
{
	struct stat	 st;
	ssize_t		 n;
	size_t		 off = 0;
	int		 fd;

	if ((fd = open(path, O_RDONLY)) == -1 || fstat(fd, &st) == -1) {
		fprintf(stderr, "bench-floor: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	b->len = (size_t)st.st_size;
	b->data = xmalloc(b->len + 1);
	while (off < b->len) {
		if ((n = read(fd, b->data + off, b->len - off)) <= 0) {
			fprintf(stderr, "bench-floor: %s: short read\n", path);
			exit(1);
		}
		off += (size_t)n;
	}
	b->data[b->len] = '\0';
	close(fd);
}

/* Parse a body; exit if it is not JSON (the catalogue is ours). */
static json_t *
parse(const struct body *b)
{
	json_error_t	 e;
	json_t		*j;
	double		 t = now_ms();

	if ((j = jsonld_load(b->data, b->len, 0, &e)) == NULL) {
		fprintf(stderr, "bench-floor: bad JSON: %s\n", e.text);
		exit(1);
	}
	fl.parse_ms += now_ms() - t;
	return j;
}

/* Key and pipeline one finished pickle (in fl.pk.out). */
static void
put(const char *key)
{
	char			 wire[KEY_MAX + 1];
	int			 wlen;
	memcached_return_t	 rc;
	double			 t;

	if ((wlen = key_make_short(&fl.kf, key, strlen(key), wire)) == -1) {
		fprintf(stderr, "bench-floor: bad key %s\n", key);
		exit(1);
	}
	t = now_ms();
	rc = memcached_set(fl.mc, wire, (size_t)wlen, (char *)fl.pk.out.data,
	    fl.pk.out.len, 0, 1);
	if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_BUFFERED) {
		fprintf(stderr, "bench-floor: set %s: %s\n", key,
		    memcached_strerror(fl.mc, rc));
		exit(1);
	}
	fl.write_ms += now_ms() - t;
	fl.keys++;
	fl.bytes += fl.pk.out.len;
}

/* Pickle a JSON value and put it. */
static void
put_json(const char *key, const json_t *v)
{
	pickle_reset(&fl.pk);
	pickle_begin(&fl.pk);
	pickle_json(&fl.pk, v);
	if (pickle_finish(&fl.pk) == -1) {
		fprintf(stderr, "bench-floor: pickle %s: %s\n", key,
		    pickle_error(&fl.pk));
		exit(1);
	}
	put(key);
}

/* Append s to the list under key in an index (a uuid: borrowed). */
static void
index_add(struct map *idx, const char *key, char *s)
{
	struct map_item	*it = map_put(idx, key, strlen(key));
	struct strlist	*l = it->val;

	if (l == NULL)
		it->val = l = xcalloc(1, sizeof *l);
	l->v = xreallocarray(l->v, l->n + 1, sizeof *l->v);
	l->v[l->n++] = s;
}

/* Pickle and put every list of an index, then free it. */
static void
index_put(struct map *idx)
{
	struct map_item	*it;
	size_t		 i;
	double		 t;

	MAP_FOREACH(idx, it) {
		struct strlist *l = it->val;

		t = now_ms();
		pickle_reset(&fl.pk);
		pickle_begin(&fl.pk);
		pickle_list_begin(&fl.pk, l->n);
		for (i = 0; i < l->n; i++)
			pickle_str(&fl.pk, l->v[i], strlen(l->v[i]),
			    PICKLE_NEW);
		pickle_end(&fl.pk);
		pickle_finish(&fl.pk);
		fl.encode_ms += now_ms() - t;
		put(it->key);
		free(l->v);
		free(l);
	}
	map_free(idx);
}

/* Add a string (a run key or course uuid) under prefix+s, once per set. */
static void
set_add(struct map *seen, struct map *idx, const char *prefix,
    const json_t *v, char *uuid)
{
	char		*key;
	struct map_item	*it;

	if (!json_is_string(v))
		return;
	key = xasprintf("%s%s", prefix, json_string_value(v));
	it = map_put(seen, key, strlen(key));
	if (it->val == NULL) {
		it->val = seen;
		index_add(idx, key, uuid);
	}
	free(key);
}

/* The first active curriculum of a program, or NULL. */
static const json_t *
active_curriculum(const json_t *program)
{
	const json_t	*c;
	size_t		 i;

	json_array_foreach(json_object_get(program, "curricula"), i, c)
		if (json_is_true(json_object_get(c, "is_active")))
			return c;
	return NULL;
}

/* Run keys and course uuids of a container's courses. */
static void
from_container(const json_t *container, struct map *runs, struct map *crs,
    struct map *idx_run, struct map *idx_course, char *uuid)
{
	const json_t	*course, *run;
	size_t		 i, j;

	json_array_foreach(json_object_get(container, "courses"), i, course) {
		set_add(crs, idx_course, "catalog-course-programs-",
		    json_object_get(course, "uuid"), uuid);
		json_array_foreach(json_object_get(course, "course_runs"), j,
		    run)
			set_add(runs, idx_run, "course-programs-",
			    json_object_get(run, "key"), uuid);
	}
}

/* A program and its children, as course_run_keys_for_program walks them. */
static void
walk(const json_t *program, struct map *runs, struct map *crs,
    struct map *idx_run, struct map *idx_course, char *uuid)
{
	const json_t	*cur = active_curriculum(program), *child;
	size_t		 i;

	if (cur != NULL)
		from_container(cur, runs, crs, idx_run, idx_course, uuid);
	from_container(program, runs, crs, idx_run, idx_course, uuid);
	if (cur == NULL)
		return;
	json_array_foreach(json_object_get(cur, "programs"), i, child)
		walk(child, runs, crs, idx_run, idx_course, uuid);
}

/* str(v).lower() for the ASCII cases. */
static char *
lower(const json_t *v)
{
	char	*s, *p;

	s = xstrdup(json_is_string(v) ? json_string_value(v) : "None");
	for (p = s; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

int
main(int argc, char *argv[])
{
	struct body		 uuids_body, *programs, *pathways;
	struct map		 pw_ids, idx_run, idx_course, idx_type;
	struct map		 idx_slug, idx_org;
	json_t			*uuids, *d, *ids, *v, *orgs, *org;
	char			*dir = NULL, *server = NULL, *path, *key, *s;
	char			**uuidv, *host, *colon;
	const char		*domain = "lms.example.com", *pk;
	const char		*keys[1] = { "programs-cached:barrier" };
	size_t			 klen[1] = { 23 };
	size_t			 i, j, n, npw, loaded = 0;
	long			 site_id = 1, proto = 4;
	double			 t0, t;
	memcached_result_st	 res;
	struct map_item		*it;
	memcached_return_t	 rc;
	json_t			**pwv;
	int			 ch;

	while ((ch = getopt(argc, argv, "d:s:P:D:i:")) != -1) {
		switch (ch) {
		case 'd':
			dir = optarg;
			break;
		case 's':
			server = optarg;
			break;
		case 'P':
			proto = strtol(optarg, NULL, 10);
			break;
		case 'D':
			domain = optarg;
			break;
		case 'i':
			site_id = strtol(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (dir == NULL || server == NULL || optind != argc || proto < 2 ||
	    proto > 5 || (colon = strrchr(server, ':')) == NULL)
		usage();
	host = xstrndup(server, (size_t)(colon - server));

	/* Load everything (not timed). */
	path = xasprintf("%s/uuids.json", dir);
	slurp(path, &uuids_body);
	free(path);
	uuids = parse(&uuids_body);
	n = json_array_size(uuids);
	uuidv = xcalloc(n + 1, sizeof *uuidv);
	programs = xcalloc(n + 1, sizeof *programs);
	for (i = 0; i < n; i++) {
		uuidv[i] = xstrdup(json_string_value(json_array_get(uuids, i)));
		path = xasprintf("%s/programs/%s.json", dir, uuidv[i]);
		slurp(path, &programs[i]);
		loaded += programs[i].len;
		free(path);
	}
	json_decref(uuids);
	pathways = NULL;
	for (npw = 0;; npw++) {
		struct stat st;

		path = xasprintf("%s/pathways/%06zu.json", dir, npw);
		if (stat(path, &st) == -1) {
			free(path);
			break;
		}
		pathways = xreallocarray(pathways, npw + 1, sizeof *pathways);
		slurp(path, &pathways[npw]);
		loaded += pathways[npw].len;
		free(path);
	}

	fl.mc = memcached_create(NULL);
	memcached_behavior_set(fl.mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
	memcached_behavior_set(fl.mc, MEMCACHED_BEHAVIOR_NOREPLY, 1);
	memcached_behavior_set(fl.mc, MEMCACHED_BEHAVIOR_BUFFER_REQUESTS, 1);
	memcached_server_add(fl.mc, host, (in_port_t)atoi(colon + 1));
	key_init(&fl.kf, KEYFN_EDX, KEYHASH_MD4, "default", "1");
	pickle_init(&fl.pk, (int)proto);
	map_init(&pw_ids);
	map_init(&idx_run);
	map_init(&idx_course);
	map_init(&idx_type);
	map_init(&idx_slug);
	map_init(&idx_org);
	fl.parse_ms = 0;

	/* Timed from here. */
	t0 = now_ms();
	uuids = parse(&uuids_body);

	/* Pathways first: the program values carry their pathway ids. */
	pwv = xcalloc(npw + 1, sizeof *pwv);
	for (i = 0; i < npw; i++) {
		pwv[i] = parse(&pathways[i]);
		t = now_ms();
		json_array_foreach(json_object_get(pwv[i], "programs"), j, v) {
			pk = json_string_value(json_object_get(v, "uuid"));
			it = map_put(&pw_ids, pk, strlen(pk));
			if (it->val == NULL)
				it->val = json_array();
			json_array_append(it->val,
			    json_object_get(pwv[i], "id"));
		}
		fl.encode_ms += now_ms() - t;
	}

	for (i = 0; i < n; i++) {
		struct map runs, crs;

		d = parse(&programs[i]);
		t = now_ms();
		ids = map_get(&pw_ids, uuidv[i], strlen(uuidv[i]));
		json_object_set(d, "pathway_ids", ids != NULL ? ids :
		    json_array());
		map_init(&runs);
		map_init(&crs);
		walk(d, &runs, &crs, &idx_run, &idx_course, uuidv[i]);
		map_free(&runs);
		map_free(&crs);
		s = lower(json_object_get(d, "type"));
		key = xasprintf("programs-by-type-%ld-%s", site_id, s);
		index_add(&idx_type, key, uuidv[i]);
		free(key);
		free(s);
		v = json_object_get(json_object_get(d, "type_attrs"), "slug");
		key = xasprintf("programs-by-type-slug-%ld-%s", site_id,
		    json_is_string(v) ? json_string_value(v) : "None");
		index_add(&idx_slug, key, uuidv[i]);
		free(key);
		orgs = json_object_get(d, "authoring_organizations");
		json_array_foreach(orgs, j, org) {
			key = xasprintf("organization-programs-%s",
			    json_string_value(json_object_get(org, "key")));
			index_add(&idx_org, key, uuidv[i]);
			free(key);
		}
		key = xasprintf("program-%s", uuidv[i]);
		pickle_reset(&fl.pk);
		pickle_begin(&fl.pk);
		pickle_json(&fl.pk, d);
		pickle_finish(&fl.pk);
		fl.encode_ms += now_ms() - t;
		put(key);
		free(key);
		json_decref(d);
	}

	for (i = 0; i < npw; i++) {
		json_t *out = json_array();

		t = now_ms();
		json_array_foreach(json_object_get(pwv[i], "programs"), j, v)
			json_array_append(out, json_object_get(v, "uuid"));
		json_object_del(pwv[i], "programs");
		json_object_set_new(pwv[i], "program_uuids", out);
		key = xasprintf("pathway-%lld",
		    json_integer_value(json_object_get(pwv[i], "id")));
		fl.encode_ms += now_ms() - t;
		put_json(key, pwv[i]);
		free(key);
	}

	index_put(&idx_run);
	index_put(&idx_course);
	index_put(&idx_type);
	index_put(&idx_slug);
	index_put(&idx_org);

	key = xasprintf("program-uuids-%s", domain);
	put_json(key, uuids);
	free(key);
	t = now_ms();
	ids = json_array();
	for (i = 0; i < npw; i++) {
		s = xasprintf("pathway-%lld",
		    json_integer_value(json_object_get(pwv[i], "id")));
		json_array_append_new(ids, json_string(s));
		free(s);
	}
	fl.encode_ms += now_ms() - t;
	key = xasprintf("pathway-ids-%s", domain);
	put_json(key, ids);
	free(key);
	json_decref(ids);

	/* One round trip: memcached answers in order. */
	t = now_ms();
	rc = memcached_mget(fl.mc, keys, klen, 1);
	if (rc != MEMCACHED_SUCCESS) {
		fprintf(stderr, "bench-floor: mget: %s\n",
		    memcached_strerror(fl.mc, rc));
		return 1;
	}
	memcached_result_create(fl.mc, &res);
	while (memcached_fetch_result(fl.mc, &res, &rc) != NULL)
		;
	memcached_result_free(&res);
	fl.write_ms += now_ms() - t;
	t = now_ms() - t0;

	printf("{\"keys\":%zu,\"bytes\":%zu,\"loaded_bytes\":%zu,"
	    "\"parse_ms\":%.1f,\"encode_ms\":%.1f,\"write_ms\":%.1f,"
	    "\"total_ms\":%.1f}\n", fl.keys, fl.bytes, loaded, fl.parse_ms,
	    fl.encode_ms, fl.write_ms, t);

	for (i = 0; i < npw; i++) {
		json_decref(pwv[i]);
		free(pathways[i].data);
	}
	free(pwv);
	free(pathways);
	MAP_FOREACH(&pw_ids, it)
		json_decref(it->val);
	map_free(&pw_ids);
	json_decref(uuids);
	for (i = 0; i < n; i++) {
		free(uuidv[i]);
		free(programs[i].data);
	}
	free(uuidv);
	free(programs);
	free(uuids_body.data);
	pickle_free(&fl.pk);
	key_clear(&fl.kf);
	memcached_free(fl.mc);
	free(host);
	return 0;
}
