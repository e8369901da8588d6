/*
 * test_place.c: murmur3_32 and pymemcache's rendezvous hashing, against
 * MurmurHash3's published vectors and values from pymemcache itself.
 */
#include <string.h>

#include "place.h"
#include "t.h"

static const char *const servers[] = {
	"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"
};
#define NSERVERS	(sizeof servers / sizeof servers[0])

/* murmur3_32 of a C string. */
static uint32_t
mm3(const char *s, uint32_t seed)
{
	return murmur3_32(s, strlen(s), seed);
}

/* place_rendezvous of a C string. */
static size_t
place(const char *const *nodes, size_t n, const char *key)
{
	return place_rendezvous(nodes, n, key, strlen(key));
}

/* Unseeded vectors and the usual seeded ones (0x9747b28c). */
static void
test_murmur3(void)
{
	T_INTEQ(mm3("", 0), 0);
	T_INTEQ(mm3("a", 0), 0x3c2569b2);
	T_INTEQ(mm3("abc", 0), 0xb3dd93fa);
	T_INTEQ(mm3("abcd", 0), 0x43ed676a);
	T_INTEQ(mm3("abcde", 0), 0xe89b9af6);
	T_INTEQ(mm3("hello", 0), 0x248bfa47);
	T_INTEQ(mm3("", 1), 0x514e28b7);
	T_INTEQ(mm3("", 0xffffffff), 0x81f16f39);
	T_INTEQ(mm3("aaaa", 0x9747b28c), 0x5a97808a);
	T_INTEQ(mm3("Hello, world!", 0x9747b28c), 0x24884cba);
	T_INTEQ(mm3("The quick brown fox jumps over the lazy dog",
	    0x9747b28c), 0x2fa826cd);
}

/* Three nodes, one key: scores 1856117098 / 564306481 / 2187447640. */
static void
test_example(void)
{
	const char	*key = "default:1:program-6f9c4e3a-2b1d-4c8e-9f0a-"
			    "1234567890ab";

	T_INTEQ(mm3("10.0.0.1:11211-default:1:program-6f9c4e3a-2b1d-4c8e-"
	    "9f0a-1234567890ab", 0), 1856117098U);
	T_INTEQ(mm3("10.0.0.2:11211-default:1:program-6f9c4e3a-2b1d-4c8e-"
	    "9f0a-1234567890ab", 0), 564306481U);
	T_INTEQ(mm3("10.0.0.3:11211-default:1:program-6f9c4e3a-2b1d-4c8e-"
	    "9f0a-1234567890ab", 0), 2187447640U);
	T_INTEQ(place(servers, NSERVERS, key), 2);
	T_INTEQ(place(servers, 2, key), 0);
	T_INTEQ(place(servers, 1, key), 0);
	T_INTEQ(place(servers, 0, key), 0);
	T_INTEQ(place(servers + 1, 2, key), 1);
}

/*
 * Non-ASCII keys hash one unit per code point, masked to 8 bits: the
 * placements (from pymemcache) differ from hashing the UTF-8 bytes.
 */
static void
test_code_points(void)
{
	/* Ü = U+00DC, ï = U+00EF: units 0xdc, 0xef. */
	T_INTEQ(mm3("10.0.0.1:11211-default:1:organization-programs-"
	    "\xdcn\xef" "code Org", 0), 715526138U);
	T_INTEQ(place(servers, NSERVERS, "default:1:organization-programs-"
	    "\xc3\x9cn\xc3\xaf" "code Org"), 2);
	/* 课 = U+8BFE, 程 = U+7A0B: units 0xfe, 0x0b. */
	T_INTEQ(mm3("10.0.0.1:11211-default:1:course-programs-\xfe\x0b", 0),
	    3384492949U);
	T_INTEQ(place(servers, NSERVERS, "default:1:course-programs-"
	    "\xe8\xaf\xbe\xe7\xa8\x8b"), 0);
	/* Ω = U+03A9. */
	T_INTEQ(place(servers, NSERVERS, "default:1:catalog-course-programs-"
	    "\xce\xa9mega"), 0);
	/* 🎓 = U+1F393. */
	T_INTEQ(place(servers, NSERVERS, "default:1:\xf0\x9f\x8e\x93"), 1);
}

/* A byte that is not well-formed UTF-8 is one unit of its own value. */
static void
test_invalid_utf8(void)
{
	static const char *const pairs[][2] = {
		{ "k\xe9y", "k\xc3\xa9y" },		/* lone é byte */
		{ "k\xe4\xb8", "k\xc3\xa4\xc2\xb8" },	/* truncated 中 */
		{ "\xed\xa0\x80", "\xc3\xad\xc2\xa0\xc2\x80" }, /* surrogate */
		{ "\xc0\xaf", "\xc3\x80\xc2\xaf" },	/* overlong / */
		{ "\xf4\x90\x80\x80", "\xc3\xb4\xc2\x90\xc2\x80\xc2\x80" },
		{ "\xff\xfe", "\xc3\xbf\xc3\xbe" },
		{ "\xf0\x9f\x8e", "\xc3\xb0\xc2\x9f\xc2\x8e" },
	};
	static const char *const five[] = {
		"a:1", "b:2", "c:3", "d:4", "e:5"
	};
	size_t	i;
	int	same;

	/* Each pair hashes identically, so lands identically everywhere. */
	for (i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		same = place(five, 5, pairs[i][0]) == place(five, 5,
		    pairs[i][1]) && place(five, 3, pairs[i][0]) ==
		    place(five, 3, pairs[i][1]) && place(five + 1, 4,
		    pairs[i][0]) == place(five + 1, 4, pairs[i][1]);
		T_CHECK(same);
	}
}

/*
 * Node names built so that their murmur3 states agree once the name is
 * hashed (murmur3 inverts block by block): every key ties, and the larger
 * name by code point wins, whatever the order.
 */
static void
test_ties(void)
{
	static const char *const ab[] = { "node-a:1qBW2", "node-b:1P15b" };
	static const char *const ba[] = { "node-b:1P15b", "node-a:1qBW2" };
	static const char *const abc[] = {
		"node-a:1qBW2", "node-b:1P15b", "node-a:1qBW2"
	};
	/* "n\udcf5:1ATtN" < "n\ue000:1u9G5", although 0xf5 > 0xee. */
	static const char *const inv[] = {
		"n\xf5:1ATtN", "n\xee\x80\x80:1u9G5"
	};
	static const char *const vni[] = {
		"n\xee\x80\x80:1u9G5", "n\xf5:1ATtN"
	};
	static const char *const keys[] = {
		"", "k", "default:1:program-x",
		("\xc3\x9cn\xc3\xaf" "code \xe4\xb8\xad")	/* one key */
	};
	size_t	i;

	T_INTEQ(mm3("node-a:1qBW2-k", 0), mm3("node-b:1P15b-k", 0));
	/* U+E000 hashes as the unit 0x00. */
	T_INTEQ(murmur3_32("n\xf5:1ATtN-k", 11, 0),
	    murmur3_32("n\0:1u9G5-k", 11, 0));
	for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		T_INTEQ(place(ab, 2, keys[i]), 1);
		T_INTEQ(place(ba, 2, keys[i]), 0);
		T_INTEQ(place(abc, 3, keys[i]), 1);
		T_INTEQ(place(inv, 2, keys[i]), 1);
		T_INTEQ(place(vni, 2, keys[i]), 0);
	}
}

/* A repeated name keeps its first index (pymemcache keeps one node). */
static void
test_duplicates(void)
{
	static const char *const dup[] = {
		"10.0.0.3:11211", "10.0.0.1:11211", "10.0.0.3:11211"
	};
	const char	*key = "default:1:program-6f9c4e3a-2b1d-4c8e-9f0a-"
			    "1234567890ab";

	T_INTEQ(place(dup, 3, key), 0);
}

int
main(void)
{
	test_murmur3();
	test_example();
	test_code_points();
	test_invalid_utf8();
	test_ties();
	test_duplicates();
	return t_done();
}
