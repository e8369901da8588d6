/*
 * fuzz_mcwatch.c: bytes off a memcached watch connection, split into lines
 * as the connection splits them, through the line parser and the reader
 * classifier: whatever the bytes, each line is parsed or refused with a
 * reason, a parsed key is at most 250 bytes and NUL-terminated, borrowed
 * text lies within the line, and every key classifies without crashing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "keys.h"
#include "log.h"
#include "mcwatch.h"
#include "readers.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* A small published table, under both key functions. */
static struct readers	*tables[2];

/* Build the tables once. */
static void
setup(void)
{
	static struct entry	 v[2][2];
	static char		 wire[2][2][KEY_MAX + 1];
	static const char *const keys[2] = {
		"program-7c3a7c3a-0000-4000-8000-000000000001",
		"course-programs-course-v1:edX+DemoX+1T2025"
	};
	struct keyfn		 kf;
	int			 f, i, n;

	for (f = 0; f < 2; f++) {
		key_init(&kf, f == 0 ? KEYFN_EDX : KEYFN_DJANGO, KEYHASH_MD4,
		    "default", "1");
		for (i = 0; i < 2; i++) {
			n = key_make_short(&kf, keys[i], strlen(keys[i]), wire[f][i]);
			if (n < 0)
				abort();
			v[f][i].key = keys[i];
			v[f][i].wire = wire[f][i];
			v[f][i].wirelen = (uint16_t)n;
			v[f][i].servers = 1;
			v[f][i].family = i == 0 ? FAM_PROGRAM : FAM_COURSE;
		}
		tables[f] = readers_new(v[f], 2, &kf);
		key_clear(&kf);
	}
}

/* Check one line's parse. */
static void
one(const char *line, size_t len)
{
	struct mcw_line		 l;
	struct readers_key	 k;
	const char		*why = NULL;
	int			 f;

	if (mcw_parse(line, len, &l, &why) == -1) {
		if (why == NULL || why[0] == '\0')
			abort();
		return;
	}
	if (len >= MCW_LINE_MAX + 1 || l.keylen > MCW_KEY_MAX ||
	    l.key[l.keylen] != '\0' || l.own)
		abort();
	if (l.text != NULL && (l.text < line || l.text + l.textlen >
	    line + len))
		abort();
	for (f = 0; f < 2; f++) {
		readers_classify(tables[f], 0, (const char *)l.key, l.keylen,
		    &k);
		if (k.kind == READERS_FOREIGN ? k.family != -1 :
		    (k.family < 0 || k.family >= FAM_COUNT ||
		    k.key[k.keylen] != '\0'))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const char	*p = (const char *)data, *nl;
	size_t		 off = 0;
	unsigned char	 key[MCW_KEY_MAX + 1];
	int		 n;

	log_setup(LOG_FORMAT_JSON, -1);
	if (tables[0] == NULL)
		setup();
	/* the whole input as a key encoding */
	if ((n = mcw_uridecode(p, len, key)) > MCW_KEY_MAX ||
	    (n >= 0 && key[n] != '\0'))
		abort();
	/* each line, as the connection hands them on */
	while (off < len) {
		size_t	l;

		nl = memchr(p + off, '\n', len - off);
		l = nl != NULL ? (size_t)(nl - (p + off)) : len - off;
		one(p + off, l);
		off += l + 1;
	}
	return 0;
}
