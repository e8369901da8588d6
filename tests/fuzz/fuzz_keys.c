/*
 * fuzz_keys.c: any cache key through both key functions and the placement:
 * edx keys are always valid memcached keys (at most 250 printable bytes),
 * django keys are either refused or valid.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "log.h"
#include "place.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* What memcached's text protocol accepts as a key. */
static void
check_wire(const char *k, int n)
{
	int	i;

	if (n < 1 || n > KEY_MAX || (int)strlen(k) != n)
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)k[i] <= ' ' || (unsigned char)k[i] == 0x7f)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const char *const nodes[] = {
		"10.0.0.1:11211", "10.0.0.2:11211", "mc-3.internal:11211"
	};
	struct keyfn	 kf;
	struct buf	 out;

	log_setup(LOG_FORMAT_JSON, -1);
	buf_init(&out);
	key_init(&kf, KEYFN_EDX, KEYHASH_MD4, "default", "1");
	if (key_make(&kf, (const char *)data, len, &out) == -1)
		abort();
	check_wire((const char *)out.data, (int)out.len);
	if (place_rendezvous(nodes, 3, (const char *)out.data, out.len) >= 3)
		abort();
	key_clear(&kf);
	key_init(&kf, KEYFN_EDX, KEYHASH_BLAKE2B, "pre fix", "v 2");
	if (key_make(&kf, (const char *)data, len, &out) == -1)
		abort();
	check_wire((const char *)out.data, (int)out.len);
	key_clear(&kf);
	key_init(&kf, KEYFN_DJANGO, KEYHASH_MD4, "default", "1");
	if (key_make(&kf, (const char *)data, len, &out) != -1)
		check_wire((const char *)out.data, (int)out.len);
	key_clear(&kf);
	/* Redis: the key itself, whatever it is, after prefix:version:. */
	key_init(&kf, KEYFN_DJANGO_ANY, KEYHASH_MD4, "default", "1");
	if (key_make(&kf, (const char *)data, len, &out) == -1 ||
	    out.len != len + 10 || memcmp(out.data, "default:1:", 10) != 0 ||
	    (len > 0 && memcmp(out.data + 10, data, len) != 0))
		abort();
	key_clear(&kf);
	buf_free(&out);
	/* Placement of raw bytes (non-UTF-8 included). */
	if (place_rendezvous(nodes, 3, (const char *)data, len) >= 3)
		abort();
	return 0;
}
