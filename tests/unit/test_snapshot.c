/*
 * test_snapshot.c: the snapshot file round-trips, and a file that is
 * corrupt at any byte, truncated at any length, of another format version
 * or written with other settings is refused.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "family.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "snapshot.h"
#include "store.h"
#include "capture.h"
#include "t.h"

static const char settings[] = "key_function=edx\nkey_prefix=default\n"
    "servers=127.0.0.1:1,127.0.0.1:2\n";

static char	dir[] = "/tmp/pcd-test-snapshot-XXXXXX";
static char	path[256];

/* Save, as a test wants it: 0 or -1. */
static int
save(const struct snapshot *s, const char *file, const char *set)
{
	struct snapshot_outcome	o;

	return snapshot_save(s, file, set, &o);
}

/* An entry from C strings. */
static struct entry
entry(const char *key, const char *wire, const char *val, size_t len,
    uint64_t servers, uint32_t flags, enum family fam)
{
	struct entry	e;

	memset(&e, 0, sizeof e);
	e.key = key;
	e.wire = wire;
	e.wirelen = (uint32_t)strlen(wire);
	e.val = (const unsigned char *)val;
	e.len = len;
	e.servers = servers;
	e.flags = flags;
	e.family = (uint8_t)fam;
	return e;
}

/* A small snapshot: an empty value, a binary one, one on two servers. */
static struct snapshot *
small(void)
{
	struct snapshot		*s = snapshot_new();
	struct entry	 e;

	e = entry("program-a", "default:1:program-a", "\x80\x04N.", 4, 1, 1,
	    FAM_PROGRAM);
	snapshot_add(s, &e);
	e = entry("course-programs-x", "default:1:course-programs-x",
	    "\0\1\2\3\4\5\6", 7, 2, 1, FAM_COURSE);
	snapshot_add(s, &e);
	e = entry("program-uuids-lms.example.com",
	    "default:1:program-uuids-lms.example.com", "", 0, 3, 0,
	    FAM_SITE_PROGRAMS);
	snapshot_add(s, &e);
	snapshot_set_sites(s, "{\"sites\":[]}");
	return s;
}

/* Whether two snapshots hold the same entries, in the same order. */
static int
same(const struct snapshot *a, const struct snapshot *b)
{
	const struct entry	*x = snapshot_entries(a);
	const struct entry	*y = snapshot_entries(b);
	size_t				 i;

	if (snapshot_count(a) != snapshot_count(b) ||
	    snapshot_bytes(a) != snapshot_bytes(b))
		return 0;
	for (i = 0; i < snapshot_count(a); i++) {
		if (strcmp(x[i].key, y[i].key) != 0 ||
		    x[i].wirelen != y[i].wirelen ||
		    strcmp(x[i].wire, y[i].wire) != 0 ||
		    x[i].len != y[i].len ||
		    memcmp(x[i].val, y[i].val, x[i].len) != 0 ||
		    x[i].servers != y[i].servers ||
		    x[i].flags != y[i].flags || x[i].family != y[i].family)
			return 0;
	}
	return 1;
}

/* The file's bytes. */
static unsigned char *
slurp(size_t *len)
{
	FILE		*f = fopen(path, "rb");
	unsigned char	*p;
	long		 n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	*len = fread(p, 1, (size_t)n, f);
	fclose(f);
	return p;
}

static void
spit(const unsigned char *p, size_t len)
{
	FILE	*f = fopen(path, "wb");

	fwrite(p, 1, len, f);
	fclose(f);
}

/* Whether the file at path loads (and frees what it loaded). */
static int
loads(const char *with)
{
	struct snapshot	*s = snapshot_load(path, with);

	if (s == NULL)
		return 0;
	snapshot_free(s);
	return 1;
}

static void
test_round_trip(void)
{
	struct snapshot		*s = small(), *l;
	struct stat		 sb;
	char			 tmp[300];

	T_INTEQ(save(s, path, settings), 0);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	T_CHECK(stat(tmp, &sb) == -1 && errno == ENOENT);
	T_CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	l = snapshot_load(path, settings);
	T_CHECK(l != NULL);
	if (l == NULL)
		goto out;
	T_CHECK(same(s, l));
	T_INTEQ(snapshot_created(l), snapshot_created(s));
	T_INTEQ(snapshot_bytes(l), 11);

	/* The sites text goes along, as it was. */
	T_STREQ(snapshot_sites(l), "{\"sites\":[]}");

	/* Saving over an existing file replaces it. */
	snapshot_free(l);
	l = snapshot_new();
	T_INTEQ(save(l, path, settings), 0);
	snapshot_free(l);
	l = snapshot_load(path, settings);
	T_CHECK(l != NULL && snapshot_count(l) == 0);
out:
	snapshot_free(l);
	snapshot_free(s);
}

static void
test_every_byte_corrupt(void)
{
	struct snapshot	*s = small();
	unsigned char	*p;
	size_t		 len, i, accepted = 0;

	T_INTEQ(save(s, path, settings), 0);
	snapshot_free(s);
	p = slurp(&len);
	T_CHECK(p != NULL && len > 100);
	for (i = 0; p != NULL && i < len; i++) {
		p[i] ^= 0x20;
		spit(p, len);
		accepted += (size_t)loads(settings);
		p[i] ^= 0x01;		/* another flip, another bit */
		spit(p, len);
		accepted += (size_t)loads(settings);
		p[i] ^= 0x21;
	}
	T_INTEQ(accepted, 0);
	/* And the intact bytes still load. */
	spit(p, len);
	T_CHECK(loads(settings));
	free(p);
}

static void
test_truncated(void)
{
	struct snapshot	*s = small();
	unsigned char	*p, *q;
	size_t		 len, i, accepted = 0;

	T_INTEQ(save(s, path, settings), 0);
	snapshot_free(s);
	p = slurp(&len);
	for (i = 0; p != NULL && i < len; i++) {
		spit(p, i);
		accepted += (size_t)loads(settings);
	}
	T_INTEQ(accepted, 0);
	/* Bytes appended. */
	q = malloc(len + 8);
	memcpy(q, p, len);
	memset(q + len, 0, 8);
	spit(q, len + 8);
	T_CHECK(!loads(settings));
	free(q);
	free(p);
}

static void
test_foreign(void)
{
	struct snapshot	*s = small();
	unsigned char	*p;
	size_t		 len;

	T_INTEQ(save(s, path, settings), 0);
	snapshot_free(s);
	/* Other settings: refused, whatever the difference. */
	T_CHECK(!loads("key_function=edx\nkey_prefix=other\n"
	    "servers=127.0.0.1:1,127.0.0.1:2\n"));
	T_CHECK(!loads("key_function=edx\nkey_prefix=default\n"
	    "servers=127.0.0.1:1\n"));
	T_CHECK(!loads(""));
	T_CHECK(loads(settings));

	/* Not a snapshot at all; another format version. */
	spit((const unsigned char *)"hello\n", 6);
	T_CHECK(!loads(settings));
	p = malloc(4096);
	memset(p, 'x', 4096);
	spit(p, 4096);
	T_CHECK(!loads(settings));
	free(p);

	s = small();
	T_INTEQ(save(s, path, settings), 0);
	snapshot_free(s);
	p = slurp(&len);
	p[8] = SNAPSHOT_VERSION + 1;
	spit(p, len);
	T_CHECK(!loads(settings));
	free(p);

	/* None there: NULL with ENOENT. */
	unlink(path);
	errno = 0;
	T_CHECK(snapshot_load(path, settings) == NULL && errno == ENOENT);
}

static void
test_save_errors(void)
{
	struct snapshot		*s = small();
	struct snapshot_outcome	 o;
	char			 bad[300];
	int			 rc = 0;

	/*
	 * A directory that cannot be made: -1, why in the outcome, nothing
	 * said (a save runs off the loop: the caller logs), nothing left.
	 */
	snprintf(bad, sizeof bad, "%s/no/such/dir/x", dir);
	CAPTURE(rc = snapshot_save(s, bad, settings, &o));
	T_INTEQ(rc, -1);
	T_STREQ(captured, "");
	T_CHECK(o.op != NULL && o.error[0] != '\0');
	log_setup(LOG_FORMAT_TEXT, LOG_INFO);
	CAPTURE(snapshot_log_save(s, bad, &o, rc));
	T_CHECK(strstr(captured, "snapshot_error") != NULL);
	log_setup(LOG_FORMAT_TEXT, LOG_CRIT);
	/* A save that works says nothing either, until it is logged. */
	CAPTURE(rc = snapshot_save(s, path, settings, &o));
	T_INTEQ(rc, 0);
	T_STREQ(captured, "");
	T_STREQ(o.error, "");
	snapshot_free(s);
}

/* A configuration file's text, loaded. */
static struct cfg *
config(const char *text)
{
	char		 p[300];
	FILE		*f;
	struct cfg	*cfg;

	snprintf(p, sizeof p, "%s/test.conf", dir);
	f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	cfg = cfg_load(p);
	unlink(p);
	return cfg;
}

/* Copied entries outlive what they were copied from. */
static void
test_copies(void)
{
	struct snapshot		*s, *l;
	struct entry		 e;
	char			 key[32], val[32];
	const struct entry	*v;

	s = snapshot_new();
	snprintf(key, sizeof key, "program-x");
	snprintf(val, sizeof val, "value");
	e = entry(key, "w:program-x", val, 5, 1, 1, FAM_PROGRAM);
	snapshot_add_copy(s, &e);
	memset(key, 0, sizeof key);
	memset(val, 0, sizeof val);
	v = snapshot_entries(s);
	T_STREQ(v[0].key, "program-x");
	T_CHECK(memcmp(v[0].val, "value", 5) == 0);
	T_INTEQ(snapshot_bytes(s), 5);
	/* A snapshot without sites text saves and loads without one. */
	T_INTEQ(save(s, path, "x=1\n"), 0);
	l = snapshot_load(path, "x=1\n");
	T_CHECK(l != NULL && snapshot_sites(l) == NULL &&
	    snapshot_count(l) == 1);
	snapshot_free(l);
	snapshot_free(s);
}

/* The settings a file is bound to, from a configuration. */
static void
test_settings(void)
{
	struct cfg	*cfg;
	char		*set;

	cfg = config("[memcached]\nservers = 127.0.0.1:1, 127.0.0.1:2\n"
	    "key_prefix = p q\n[site a.example]\nsite_id = 1\n");
	T_CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	set = snapshot_settings(cfg);
	T_STREQ(set, "key_function=edx\nkey_prefix=p q\nkey_version=1\n"
	    "long_key_hash=md4\nvalue_format=pickle\npickle_protocol=4\n"
	    "pathway_ids=keys\ndistribution=rendezvous\n"
	    "servers=127.0.0.1:1,127.0.0.1:2\n");
	free(set);
	cfg_free(cfg);
}

int
main(void)
{
	log_setup(LOG_FORMAT_TEXT, LOG_CRIT);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof path, "%s/%s", dir, SNAPSHOT_FILE);
	test_round_trip();
	test_every_byte_corrupt();
	test_truncated();
	test_foreign();
	test_save_errors();
	test_copies();
	test_settings();
	unlink(path);
	rmdir(dir);
	return t_done();
}
