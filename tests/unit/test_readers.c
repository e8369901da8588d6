/*
 * test_readers.c: the classifier of reader keys, with both key functions,
 * hashed long keys, and the family templates that start one another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "keys.h"
#include "readers.h"
#include "t.h"

/* Published entries under one key function. */
struct pub {
	struct entry	 v[8];
	char		 wire[8][KEY_MAX + 1];
	size_t		 n;
};

/* Add key (family f, on the servers of mask) as the key function makes it. */
static void
publish(struct pub *p, const struct keyfn *kf, const char *key, int f,
    uint64_t mask)
{
	struct entry	*e = &p->v[p->n];
	int		 len;

	len = key_make_short(kf, key, strlen(key), p->wire[p->n]);
	T_CHECK(len > 0);
	memset(e, 0, sizeof *e);
	e->key = key;
	e->wire = p->wire[p->n];
	e->wirelen = (uint16_t)len;
	e->family = (uint8_t)f;
	e->servers = mask;
	p->n++;
}

/* Classify a C string from server 0. */
static enum readers_kind
classify(const struct readers *r, const char *wire, struct readers_key *k)
{
	return readers_classify(r, 0, wire, strlen(wire), k);
}

/* A NOT_HELD key of family f whose LMS key is key. */
static void
not_held(const struct readers *r, const char *wire, int f, const char *key)
{
	struct readers_key	k;

	T_INTEQ(classify(r, wire, &k), READERS_NOT_HELD);
	T_INTEQ(k.family, f);
	T_STREQ(k.key, key);
	T_INTEQ(k.keylen, strlen(key));
}

/* A foreign key. */
static void
foreign(const struct readers *r, const char *wire)
{
	struct readers_key	k;

	T_INTEQ(classify(r, wire, &k), READERS_FOREIGN);
	T_INTEQ(k.family, -1);
	if (k.kind != READERS_FOREIGN)
		fprintf(stderr, "  not foreign: %s\n", wire);
}

static char	longkey[400];

static void
test_edx(enum key_hash hash)
{
	struct keyfn		 kf;
	struct pub		 p = { .n = 0 };
	struct readers		*r;
	struct readers_key	 k;
	char			 wire[KEY_MAX + 1], other[KEY_MAX + 1];

	key_init(&kf, KEYFN_EDX, hash, "default", "1");
	publish(&p, &kf, "program-7c3a7c3a-0000-4000-8000-000000000001",
	    FAM_PROGRAM, 1);
	publish(&p, &kf, "course-programs-course-v1:edX+DemoX+1T2025",
	    FAM_COURSE, 2);
	memset(longkey, 0, sizeof longkey);
	memcpy(longkey, "course-programs-course-v1:", 26);
	memset(longkey + 26, 'x', 240);
	publish(&p, &kf, longkey, FAM_COURSE, 1);
	r = readers_new(p.v, p.n, &kf);
	T_INTEQ(readers_size(r), 3);

	/* held, on its server; held elsewhere */
	T_INTEQ(classify(r, "default:1:program-7c3a7c3a-0000-4000-8000-"
	    "000000000001", &k), READERS_HELD);
	T_INTEQ(k.family, FAM_PROGRAM);
	T_CHECK(k.entry == &p.v[0]);
	T_STREQ(k.key, "program-7c3a7c3a-0000-4000-8000-000000000001");
	T_INTEQ(readers_classify(r, 1, p.wire[0], strlen(p.wire[0]), &k),
	    READERS_ELSEWHERE);
	T_STREQ(p.wire[1], "default:1:course-programs-course-v1%3AedX%2B"
	    "DemoX%2B1T2025");
	T_INTEQ(classify(r, p.wire[1], &k), READERS_ELSEWHERE);
	T_INTEQ(readers_classify(r, 1, p.wire[1], strlen(p.wire[1]), &k),
	    READERS_HELD);
	T_STREQ(k.key, "course-programs-course-v1:edX+DemoX+1T2025");

	/* a long key is on the wire as its digest: the table knows it */
	T_INTEQ(strlen(p.wire[2]), 32);
	T_INTEQ(classify(r, p.wire[2], &k), READERS_HELD);
	T_INTEQ(k.family, FAM_COURSE);
	T_STREQ(k.key, longkey);
	/* ... and an unknown digest is anything */
	foreign(r, "0123456789abcdef0123456789abcdef");

	/* family keys not published; the templates that start others */
	not_held(r, "default:1:course-programs-course-v1%3AedX%2BNone%2B1T",
	    FAM_COURSE, "course-programs-course-v1:edX+None+1T");
	not_held(r, "default:1:catalog-course-programs-8a8c8a8c-0000",
	    FAM_CATALOG_COURSE, "catalog-course-programs-8a8c8a8c-0000");
	not_held(r, "default:1:program-uuids-lms.example.com",
	    FAM_SITE_PROGRAMS, "program-uuids-lms.example.com");
	not_held(r, "default:1:program-00000000-0000-4000-8000-00000000000f",
	    FAM_PROGRAM, "program-00000000-0000-4000-8000-00000000000f");
	not_held(r, "default:1:pathway-ids-lms.example.com",
	    FAM_SITE_PATHWAYS, "pathway-ids-lms.example.com");
	not_held(r, "default:1:pathway-17", FAM_PATHWAY, "pathway-17");
	not_held(r, "default:1:programs-by-type-slug-1-masters",
	    FAM_TYPE_SLUG, "programs-by-type-slug-1-masters");
	not_held(r, "default:1:programs-by-type-1-micromasters", FAM_TYPE,
	    "programs-by-type-1-micromasters");
	not_held(r, "default:1:organization-programs-edX+Org", FAM_ORG,
	    "organization-programs-edX Org");
	not_held(r, "default:1:organization-programs-%C3%A9cole", FAM_ORG,
	    "organization-programs-\xc3\xa9" "cole");

	/* foreign: sessions, other versions and prefixes, non-canonical */
	foreign(r, "default:1:django.contrib.sessions.cachexyz");
	foreign(r, "default:2:program-7c3a7c3a-0000-4000-8000-000000000001");
	foreign(r, "other:1:program-7c3a7c3a-0000-4000-8000-000000000001");
	foreign(r, "default:1:program-");		/* nothing after it */
	foreign(r, "default:1:programs-x");
	foreign(r, "default:1:course-programs-a:b");	/* ':' not quoted */
	foreign(r, "default:1:course-programs-%61b");	/* 'a' quoted */
	foreign(r, "default:1:course-programs-a%2bb");	/* lower-case hex */
	foreign(r, "default:1:course-programs-a%2");
	foreign(r, "default:1:course-programs-a%20b");	/* space is '+' */
	foreign(r, "default:1:");
	foreign(r, "");
	foreign(r, "program-7c3a7c3a-0000-4000-8000-000000000001");
	/* longer than any memcached key */
	memset(wire, 'a', sizeof wire);
	T_INTEQ(readers_classify(r, 0, wire, sizeof wire, &k),
	    READERS_FOREIGN);
	readers_free(r);
	key_clear(&kf);

	/* a prefix and a version that quote_plus changes */
	key_init(&kf, KEYFN_EDX, hash, "my site/1", "v 2");
	p.n = 0;
	publish(&p, &kf, "pathway-3", FAM_PATHWAY, 1);
	r = readers_new(p.v, p.n, &kf);
	T_STREQ(p.wire[0], "my+site%2F1:v+2:pathway-3");
	T_INTEQ(classify(r, p.wire[0], &k), READERS_HELD);
	not_held(r, "my+site%2F1:v+2:pathway-4", FAM_PATHWAY, "pathway-4");
	foreign(r, "my site/1:v 2:pathway-4");
	/* a long unpublished key's digest is foreign, whatever its family */
	T_CHECK(key_make_short(&kf, longkey, strlen(longkey), other) == 32);
	foreign(r, other);
	readers_free(r);
	key_clear(&kf);
}

static void
test_django(void)
{
	struct keyfn		 kf;
	struct pub		 p = { .n = 0 };
	struct readers		*r;
	struct readers_key	 k;

	key_init(&kf, KEYFN_DJANGO, KEYHASH_MD4, "default", "1");
	publish(&p, &kf, "course-programs-course-v1:edX+DemoX+1T2025",
	    FAM_COURSE, 1);
	r = readers_new(p.v, p.n, &kf);
	T_STREQ(p.wire[0], "default:1:course-programs-course-v1:edX+DemoX+"
	    "1T2025");
	T_INTEQ(classify(r, p.wire[0], &k), READERS_HELD);
	not_held(r, "default:1:course-programs-course-v1:edX+Other+1T2025",
	    FAM_COURSE, "course-programs-course-v1:edX+Other+1T2025");
	not_held(r, "default:1:organization-programs-a%20b", FAM_ORG,
	    "organization-programs-a%20b");
	foreign(r, "default:1:organization-programs-a b");	/* Django refuses */
	foreign(r, "default:1:sessions:abc");
	foreign(r, "default:10:program-x");
	readers_free(r);
	key_clear(&kf);

	/* Redis: any byte */
	key_init(&kf, KEYFN_DJANGO_ANY, KEYHASH_MD4, "default", "1");
	p.n = 0;
	r = readers_new(p.v, p.n, &kf);
	T_INTEQ(readers_size(r), 0);
	not_held(r, "default:1:organization-programs-a b", FAM_ORG,
	    "organization-programs-a b");
	readers_free(r);
	key_clear(&kf);
}

/*
 * Redis keeps keys of any length (django key function): a published key
 * longer than a memcached key is found, and one not published is foreign.
 */
static void
test_django_long(void)
{
	struct keyfn		 kf;
	struct entry		 e;
	struct buf		 wire, other;
	struct readers		*r;
	struct readers_key	 k;
	char			 key[400];

	key_init(&kf, KEYFN_DJANGO_ANY, KEYHASH_MD4, "default", "1");
	snprintf(key, sizeof key, "course-programs-course-v1:LongX+%0240d+1T2025",
	    0);
	buf_init(&wire);
	T_INTEQ(key_make(&kf, key, strlen(key), &wire), 0);
	T_CHECK(wire.len > KEY_MAX);
	memset(&e, 0, sizeof e);
	e.key = key;
	e.wire = (const char *)wire.data;
	e.wirelen = (uint32_t)wire.len;
	e.family = FAM_COURSE;
	e.servers = 1;
	r = readers_new(&e, 1, &kf);
	T_INTEQ(readers_classify(r, 0, (const char *)wire.data, wire.len, &k),
	    READERS_HELD);
	T_STREQ(k.key, key);
	T_CHECK(k.entry == &e);
	buf_init(&other);
	buf_add(&other, wire.data, wire.len);
	other.data[other.len - 1] = '6';	/* 1T2026: not published */
	T_INTEQ(readers_classify(r, 0, (const char *)other.data, other.len,
	    &k), READERS_FOREIGN);
	readers_free(r);
	buf_free(&wire);
	buf_free(&other);
	key_clear(&kf);
}

static void
test_family(void)
{
	size_t	n;

	T_INTEQ(readers_family("program-uuids-x", 15, &n), FAM_SITE_PROGRAMS);
	T_INTEQ(n, 14);
	T_INTEQ(readers_family("program-x", 9, &n), FAM_PROGRAM);
	T_INTEQ(n, 8);
	T_INTEQ(readers_family("program-", 8, NULL), -1);
	T_INTEQ(readers_family("pathway-ids-", 12, NULL), -1);
	T_INTEQ(readers_family("programs-by-type-slug-", 22, NULL), -1);
	T_INTEQ(readers_family("programs-by-type-", 17, NULL), -1);
	T_INTEQ(readers_family("Program-x", 9, NULL), -1);
}

int
main(void)
{
	test_edx(KEYHASH_MD4);
	test_edx(KEYHASH_BLAKE2B);
	test_django();
	test_django_long();
	test_family();
	return t_done();
}
