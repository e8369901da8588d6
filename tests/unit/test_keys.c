/*
 * test_keys.c: safe_key and Django's default key function, against the
 * examples of upstream's memcache.py and values from CPython's
 * urllib.parse.quote_plus and hashlib.
 */
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "t.h"

/* quote_plus(bytes(range(1, 256))) from CPython 3.11. */
static const char quoted_1_255[] =
    "%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10%11%12%13%14%15%16"
    "%17%18%19%1A%1B%1C%1D%1E%1F+%21%22%23%24%25%26%27%28%29%2A%2B%2C-."
    "%2F0123456789%3A%3B%3C%3D%3E%3F%40ABCDEFGHIJKLMNOPQRSTUVWXYZ%5B%5C"
    "%5D%5E_%60abcdefghijklmnopqrstuvwxyz%7B%7C%7D~%7F%80%81%82%83%84%85"
    "%86%87%88%89%8A%8B%8C%8D%8E%8F%90%91%92%93%94%95%96%97%98%99%9A%9B"
    "%9C%9D%9E%9F%A0%A1%A2%A3%A4%A5%A6%A7%A8%A9%AA%AB%AC%AD%AE%AF%B0%B1"
    "%B2%B3%B4%B5%B6%B7%B8%B9%BA%BB%BC%BD%BE%BF%C0%C1%C2%C3%C4%C5%C6%C7"
    "%C8%C9%CA%CB%CC%CD%CE%CF%D0%D1%D2%D3%D4%D5%D6%D7%D8%D9%DA%DB%DC%DD"
    "%DE%DF%E0%E1%E2%E3%E4%E5%E6%E7%E8%E9%EA%EB%EC%ED%EE%EF%F0%F1%F2%F3"
    "%F4%F5%F6%F7%F8%F9%FA%FB%FC%FD%FE%FF";

/* key_make on a C string; "(invalid)" when it returns -1. */
static const char *
make(const struct keyfn *kf, const char *key)
{
	static struct buf	out;

	if (key_make(kf, key, strlen(key), &out) == -1)
		return "(invalid)";
	T_INTEQ(strlen((const char *)out.data), out.len);
	return (const char *)out.data;
}

/* A string of n copies of c followed by tail; caller frees. */
static char *
repeat(char c, size_t n, const char *tail)
{
	char	*s;

	s = xmalloc(n + strlen(tail) + 1);
	memset(s, c, n);
	strcpy(s + n, tail);
	return s;
}

/* quote_plus byte by byte, and appending to what b holds. */
static void
test_quote_plus(void)
{
	struct buf	b;
	char		in[255];
	size_t		i;

	for (i = 0; i < sizeof in; i++)
		in[i] = (char)(i + 1);
	buf_init(&b);
	key_quote_plus(&b, in, sizeof in);
	T_STREQ((char *)b.data, quoted_1_255);
	T_INTEQ(b.len, strlen(quoted_1_255));

	buf_truncate(&b, 0);
	key_quote_plus(&b, "a\0b", 3);
	T_STREQ((char *)b.data, "a%00b");

	buf_truncate(&b, 0);
	buf_adds(&b, "x:");
	key_quote_plus(&b, "", 0);
	key_quote_plus(&b, "Az09_.-~ %+", 11);
	T_STREQ((char *)b.data, "x:Az09_.-~+%25%2B");

	buf_truncate(&b, 0);
	key_quote_plus(&b, "\xe8\xaf\xbe \xf0\x9f\x8e\x93", 8);	/* 课 🎓 */
	T_STREQ((char *)b.data, "%E8%AF%BE+%F0%9F%8E%93");
	buf_free(&b);
}

/* Upstream's examples with the default prefix and version. */
static void
test_edx_examples(void)
{
	struct keyfn	kf;

	key_init(&kf, KEYFN_EDX, KEYHASH_MD4, "default", "1");
	T_STREQ(make(&kf, "program-6f9c4e3a-2b1d-4c8e-9f0a-1234567890ab"),
	    "default:1:program-6f9c4e3a-2b1d-4c8e-9f0a-1234567890ab");
	T_STREQ(make(&kf, "course-programs-course-v1:edX+DemoX+Demo_Course"),
	    "default:1:course-programs-course-v1%3AedX%2BDemoX%2BDemo_Course");
	T_STREQ(make(&kf, "course-programs-edX/DemoX/Demo_Course"),
	    "default:1:course-programs-edX%2FDemoX%2FDemo_Course");
	T_STREQ(make(&kf, "programs-by-type-1-professional certificate"),
	    "default:1:programs-by-type-1-professional+certificate");
	T_STREQ(make(&kf, "organization-programs-\xc3\x9cn\xc3\xaf" "code Org"),
	    "default:1:organization-programs-%C3%9Cn%C3%AFcode+Org");
	T_STREQ(make(&kf, ""), "default:1:");
	key_clear(&kf);
	T_CHECK(kf.prefix == NULL && kf.version == NULL);

	/* The prefix and version are quoted too. */
	key_init(&kf, KEYFN_EDX, KEYHASH_MD4, "my prefix/x", "1.0+a");
	T_STREQ(make(&kf, "k y"), "my+prefix%2Fx:1.0%2Ba:k+y");
	key_clear(&kf);
}

/* Over 250 quoted characters the key becomes its digest, alone. */
static void
test_edx_long(void)
{
	struct keyfn	 md4, b2b;
	char		*key;

	key_init(&md4, KEYFN_EDX, KEYHASH_MD4, "default", "1");
	key_init(&b2b, KEYFN_EDX, KEYHASH_BLAKE2B, "default", "1");

	/* A 288-character key: hashed. */
	key = repeat('A', 26 + 250, "");
	memcpy(key, "course-programs-course-v1:", 26);
	T_STREQ(make(&md4, key), "3cb38801d242eca1122a6db52043cc91");
	T_STREQ(make(&b2b, key), "30c5f48e8848e49779828aae152c43d5");
	free(key);

	/* Exactly 250 is kept, 251 is hashed. */
	key = repeat('a', 240, "");
	T_INTEQ(strlen(make(&md4, key)), 250);
	T_CHECK(strncmp(make(&md4, key), "default:1:aaaa", 14) == 0);
	T_INTEQ(strlen(make(&b2b, key)), 250);
	free(key);
	key = repeat('a', 241, "");
	T_STREQ(make(&md4, key), "e712e736668576c5c91a9d4c192098ee");
	T_STREQ(make(&b2b, key), "afef706acd7462931f82c313798e0317");
	free(key);

	/* 239 bytes of key, but quoting makes it 251 characters. */
	key = repeat('a', 238, ":");
	T_STREQ(make(&md4, key), "bc22b2ca7c29847972124eb5993ea655");
	T_STREQ(make(&b2b, key), "63c2107cecb0e9bb71911ff4038a1abd");
	free(key);
	key = repeat('a', 237, ":");
	T_INTEQ(strlen(make(&md4, key)), 250);
	free(key);

	key_clear(&md4);
	key_clear(&b2b);
}

/* Django's default_key_func, and the keys it would refuse. */
static void
test_django(void)
{
	struct keyfn	 kf;
	struct buf	 out;
	char		*key;

	buf_init(&out);
	key_init(&kf, KEYFN_DJANGO, KEYHASH_MD4, "default", "1");
	T_STREQ(make(&kf, "course-programs-course-v1:edX+DemoX+Demo_Course"),
	    "default:1:course-programs-course-v1:edX+DemoX+Demo_Course");
	T_STREQ(make(&kf, "organization-programs-\xc3\x9cn\xc3\xaf" "code"),
	    "default:1:organization-programs-\xc3\x9cn\xc3\xaf" "code");
	T_STREQ(make(&kf, ""), "default:1:");
	T_STREQ(make(&kf, "professional certificate"), "(invalid)");
	T_STREQ(make(&kf, "tab\there"), "(invalid)");
	T_STREQ(make(&kf, "x\x1f"), "(invalid)");
	T_STREQ(make(&kf, "del\x7f"), "(invalid)");
	T_STREQ(make(&kf, "\x21~\x80\xff"), "default:1:!~\x80\xff");
	T_INTEQ(key_make(&kf, "a\0b", 3, &out), -1);

	key = repeat('a', 240, "");
	T_INTEQ(strlen(make(&kf, key)), 250);
	free(key);
	key = repeat('a', 241, "");
	T_STREQ(make(&kf, key), "(invalid)");
	free(key);
	key = repeat('a', 238, "\xc3\x9c");
	T_INTEQ(strlen(make(&kf, key)), 250);
	free(key);
	/* 250 characters but 251 bytes: pymemcache counts bytes. */
	key = repeat('a', 239, "\xc3\x9c");
	T_STREQ(make(&kf, key), "(invalid)");
	free(key);
	key = repeat('a', 1000, "");
	T_STREQ(make(&kf, key), "(invalid)");
	free(key);
	key_clear(&kf);

	key_init(&kf, KEYFN_DJANGO, KEYHASH_MD4, "my prefix", "1");
	T_STREQ(make(&kf, "k"), "(invalid)");
	key_clear(&kf);
	key_init(&kf, KEYFN_DJANGO, KEYHASH_MD4, "p", "1\n");
	T_STREQ(make(&kf, "k"), "(invalid)");
	key_clear(&kf);
	buf_free(&out);
}

/*
 * django on Redis (django-redis): no memcached rule applies, the key is
 * written as it is, of any length (django-redis reads it unchanged).
 */
static void
test_django_redis(void)
{
	struct keyfn	 kf;
	char		*key, *want;

	key_init(&kf, KEYFN_DJANGO_ANY, KEYHASH_MD4, "default", "1");
	T_STREQ(make(&kf, "programs-by-type-1-professional certificate"),
	    "default:1:programs-by-type-1-professional certificate");
	T_STREQ(make(&kf, "tab\there\x7f"), "default:1:tab\there\x7f");
	key = repeat('a', 300, "");
	want = xasprintf("default:1:%s", key);
	T_STREQ(make(&kf, key), want);
	free(want);
	free(key);
	key = repeat('r', 100000, "");
	T_INTEQ(strlen(make(&kf, key)), 100010);
	free(key);
	key_clear(&kf);
	/* The prefix and version too (KEY_PREFIX = "my prefix"). */
	key_init(&kf, KEYFN_DJANGO_ANY, KEYHASH_MD4, "my prefix", "1");
	T_STREQ(make(&kf, "k"), "my prefix:1:k");
	key_clear(&kf);
}

/* The digests on their own (RFC 1320; CPython's hashlib.blake2b). */
static void
test_digests(void)
{
	char	out[33];

	key_md4_hex("", 0, out);
	T_STREQ(out, "31d6cfe0d16ae931b73c59d7e0c089c0");
	key_md4_hex("abc", 3, out);
	T_STREQ(out, "a448017aaf21d8525fc10ae87aa6729d");
	key_blake2b128_hex("", 0, out);
	T_STREQ(out, "cae66941d9efbd404e4d88758ea67670");
	key_blake2b128_hex("abc", 3, out);
	T_STREQ(out, "cf4ab791c62b8d2b2109c90275287816");
}

int
main(void)
{
	test_quote_plus();
	test_edx_examples();
	test_edx_long();
	test_django();
	test_django_redis();
	test_digests();
	return t_done();
}
