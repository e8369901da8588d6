/*
 * test_mcwatch.c: the watch line parser on lines memcached 1.6.18 printed
 * (captured from a real server), and on what it must refuse.
 */
#include <stdlib.h>
#include <string.h>

#include "mcwatch.h"
#include "t.h"

/* Parse a C string; the return code. */
static int
parse(const char *s, struct mcw_line *l, const char **why)
{
	*why = NULL;
	return mcw_parse(s, strlen(s), l, why);
}

/* Must not parse. */
static void
bad(const char *s)
{
	struct mcw_line	 l;
	const char	*why;
	int		 rc = parse(s, &l, &why);

	T_INTEQ(rc, -1);
	if (rc == 0)
		fprintf(stderr, "  accepted: %s\n", s);
	else
		T_CHECK(why != NULL && why[0] != '\0');
}

static void
test_get(void)
{
	struct mcw_line	 l;
	const char	*why;

	T_INTEQ(parse("ts=1796197457.909594 gid=16 type=item_get key=foo "
	    "status=not_found clsid=0 cfd=27 size=0", &l, &why), 0);
	T_INTEQ(l.kind, MCW_GET);
	T_INTEQ(l.ts_sec, 1796197457);
	T_INTEQ(l.ts_usec, 909594);
	T_INTEQ(l.gid, 16);
	T_STREQ((char *)l.key, "foo");
	T_INTEQ(l.keylen, 3);
	T_INTEQ(l.status, MCW_NOT_FOUND);
	T_INTEQ(l.cfd, 27);
	T_CHECK(!l.own);

	/* microseconds without leading zeros: 58.9945 is 58 s 9,945 us */
	T_INTEQ(parse("ts=1796197458.9945 gid=19 type=item_get key=foo "
	    "status=found clsid=1 cfd=27 size=3", &l, &why), 0);
	T_INTEQ(l.ts_usec, 9945);
	T_INTEQ(l.status, MCW_FOUND);
	T_INTEQ(l.size, 3);

	/* a key with a space, an e-acute, a colon and a plus */
	T_INTEQ(parse("ts=1796197458.511354 gid=27 type=item_get "
	    "key=k%C3%A9y%3A1%2B2 status=not_found clsid=0 cfd=27 size=0", &l,
	    &why), 0);
	T_INTEQ(l.keylen, 8);
	T_CHECK(memcmp(l.key, "k\xc3\xa9y:1+2", 8) == 0);
	/* a literal "%20" in the key is encoded as %2520 */
	T_INTEQ(parse("ts=1.1 gid=26 type=item_get key=a%2520b "
	    "status=flushed clsid=0 cfd=27 size=0", &l, &why), 0);
	T_STREQ((char *)l.key, "a%20b");
	T_INTEQ(l.status, MCW_FLUSHED);
	T_INTEQ(parse("ts=1.1 gid=2 type=item_get key=x status=expired "
	    "clsid=0 cfd=5 size=0\r", &l, &why), 0);
	T_INTEQ(l.status, MCW_EXPIRED);
	/* older servers print fewer fields: cfd and size are optional */
	T_INTEQ(parse("ts=1.1 gid=2 type=item_get key=x status=found "
	    "clsid=3", &l, &why), 0);
	T_INTEQ(l.cfd, -1);
	/* a later field is ignored */
	T_INTEQ(parse("ts=1.1 gid=2 type=item_get key=x status=found "
	    "clsid=3 cfd=9 size=1 flags=0", &l, &why), 0);
	T_INTEQ(l.cfd, 9);
	/* a binary key, NUL byte included */
	T_INTEQ(parse("ts=1.1 gid=2 type=item_get key=a%00b status=found "
	    "cfd=1", &l, &why), 0);
	T_INTEQ(l.keylen, 3);
	T_CHECK(memcmp(l.key, "a\0b", 3) == 0);
}

static void
test_store(void)
{
	struct mcw_line	 l;
	const char	*why;

	T_INTEQ(parse("ts=1796197457.959755 gid=18 type=item_store key=foo "
	    "status=stored cmd=set ttl=0 clsid=1 cfd=27 size=3", &l, &why), 0);
	T_INTEQ(l.kind, MCW_STORE);
	T_INTEQ(l.status, MCW_STORED);
	T_INTEQ(l.cmd, MCW_CMD_SET);
	T_INTEQ(l.cfd, 27);
	T_INTEQ(l.size, 3);
	T_INTEQ(parse("ts=1796197458.110291 gid=23 type=item_store key=foo "
	    "status=not_stored cmd=add ttl=0 clsid=1 cfd=27 size=3", &l, &why),
	    0);
	T_INTEQ(l.status, MCW_NOT_STORED);
	T_INTEQ(l.cmd, MCW_CMD_ADD);
	T_INTEQ(parse("ts=1.2 gid=3 type=item_store key=k status=too_large "
	    "cmd=na ttl=4294967295 clsid=0 cfd=3 size=0", &l, &why), 0);
	T_INTEQ(l.cmd, MCW_CMD_NA);
	T_INTEQ(l.status, MCW_TOO_LARGE);
	bad("ts=1.2 gid=3 type=item_store key=k status=stored ttl=0 cfd=3");
	bad("ts=1.2 gid=3 type=item_store key=k status=kept cmd=set");
	bad("ts=1.2 gid=3 type=item_store key=k status=stored cmd=put");
}

static void
test_eviction_conn(void)
{
	struct mcw_line	 l;
	const char	*why;

	T_INTEQ(parse("ts=1796197506.666786 gid=2 type=eviction key=k0 "
	    "fetch=no ttl=-1 la=0 clsid=29 size=50000", &l, &why), 0);
	T_INTEQ(l.kind, MCW_EVICTION);
	T_STREQ((char *)l.key, "k0");
	T_CHECK(!l.fetched);
	T_INTEQ(l.size, 50000);
	T_INTEQ(l.cfd, -1);
	T_INTEQ(parse("ts=1.1 gid=2 type=eviction key=k0 fetch=yes ttl=30 "
	    "la=4 clsid=2", &l, &why), 0);
	T_CHECK(l.fetched);
	bad("ts=1.1 gid=2 type=eviction key=k0 fetch=maybe ttl=30 la=4");
	bad("ts=1.1 gid=2 type=eviction key=k0 fetch=no ttl=x la=4");

	T_INTEQ(parse("ts=1796197457.909558 gid=15 type=conn_new "
	    "rip=127.0.0.1 rport=46778 transport=tcp cfd=27", &l, &why), 0);
	T_INTEQ(l.kind, MCW_CONN_NEW);
	T_INTEQ(l.cfd, 27);
	T_INTEQ(parse("ts=1796197459.114074 gid=42 type=conn_close "
	    "rip=127.0.0.1 rport=46778 transport=tcp reason=normal cfd=27", &l,
	    &why), 0);
	T_INTEQ(l.kind, MCW_CONN_CLOSE);
	T_INTEQ(l.cfd, 27);
	bad("ts=1.1 gid=4 type=conn_close rip=127.0.0.1 rport=1");
	bad("ts=1.1 gid=4 type=conn_new rip=::1 rport=70000 cfd=3");

	/* another type: kept as OTHER, its name given */
	T_INTEQ(parse("ts=1.1 gid=4 type=extwrite key=k fetch=no ttl=-1 "
	    "la=0 clsid=1 bucket=0", &l, &why), 0);
	T_INTEQ(l.kind, MCW_OTHER);
	T_CHECK(l.textlen == 8 && memcmp(l.text, "extwrite", 8) == 0);
}

static void
test_replies(void)
{
	struct mcw_line	 l;
	const char	*why;

	T_INTEQ(parse("OK\r", &l, &why), 0);
	T_INTEQ(l.kind, MCW_OK);
	T_INTEQ(parse("skipped=1234", &l, &why), 0);
	T_INTEQ(l.kind, MCW_SKIPPED);
	T_INTEQ(l.skipped, 1234);
	T_INTEQ(parse("CLIENT_ERROR watch commands not allowed\r", &l, &why),
	    0);
	T_INTEQ(l.kind, MCW_REFUSED);
	T_CHECK(l.textlen == 39 &&
	    memcmp(l.text, "CLIENT_ERROR watch commands not allowed", 39) == 0);
	T_INTEQ(parse("ERROR", &l, &why), 0);
	T_INTEQ(l.kind, MCW_REFUSED);
	T_INTEQ(parse("WATCHER_TOO_MANY log watcher limit reached", &l, &why),
	    0);
	T_INTEQ(l.kind, MCW_REFUSED);
	T_INTEQ(parse("ERROR cannot pipeline other commands before watch",
	    &l, &why), 0);
	T_INTEQ(l.kind, MCW_REFUSED);
	bad("skipped=");
	bad("skipped=12x");
	bad("skipped=99999999999999999999999");
	bad("OKAY");
	bad("");
	bad("VALUE foo 0 3");
	bad("ERRORS");
}

static void
test_bad(void)
{
	char		*big;
	struct mcw_line	 l;
	const char	*why;

	bad("ts=1.1 gid=2 type=item_get key=foo status=found cfd=1 cfd=2");
	bad("ts=1.1 gid=2 type=item_get key=foo  status=found");
	bad("ts=1.1 gid=2 type=item_get key=foo status=found ");
	bad("ts=1.1 gid=2 type=item_get status=found cfd=1");
	bad("ts=1.1 gid=2 type=item_get key=foo cfd=1");
	bad("ts=1.1 gid=2 type=item_get key=foo status=gone cfd=1");
	bad("ts=1.1 gid=2 type=item_get key=fo%2 status=found");
	bad("ts=1.1 gid=2 type=item_get key=fo%zz status=found");
	bad("ts=1.1 gid=2 type=item_get key=a:b status=found");
	bad("ts=1.1 gid=2 type=item_get key= status=found cfd=x");
	bad("ts=1.1 gid=2 type=item_get key=foo status=found cfd=-");
	bad("ts=1.1 gid=2 type=item_get key=foo status=found clsid=256");
	bad("ts=1.1 gid=2 type=item_get key=foo status=found\tcfd=1");
	bad("ts=1.1 gid=2 type=item_get key=foo status=found cfd=1\xff");
	bad("ts=1.1 gid=2 type=item_get key=foo status=found noequals");
	bad("ts=1.1 gid=2 type=item_get key=foo status=found =3");
	bad("ts=1 gid=2 type=item_get key=foo status=found");
	bad("ts=1.1000000 gid=2 type=item_get key=foo status=found");
	bad("ts=.1 gid=2 type=item_get key=foo status=found");
	bad("ts=1.1 gid=x type=item_get key=foo status=found");
	bad("ts=1.1 type=item_get gid=2 key=foo status=found");
	bad("ts=1.1 gid=2");
	bad("ts=1.1 gid=2 type=");
	bad("ts=1.1 gid=2 kind=item_get key=foo");
	bad("ts=1.1 gid=2 type=item_get a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9 "
	    "j=1 k=2 l=3 m=4 n=5 o=6 p=7 q=8");
	bad("gid=2 ts=1.1 type=item_get key=foo status=found");

	/* 251 bytes decoded: over memcached's key length */
	big = malloc(4200);
	strcpy(big, "ts=1.1 gid=2 type=item_get status=found key=");
	memset(big + strlen(big), 'a', 251);
	big[44 + 251] = '\0';
	bad(big);
	big[44 + 250] = '\0';
	T_INTEQ(parse(big, &l, &why), 0);
	T_INTEQ(l.keylen, 250);
	/* a line of MCW_LINE_MAX bytes and more is not memcached's */
	memset(big, 'x', 4199);
	memcpy(big, "ts=1.1 gid=2 type=other junk=", 29);
	big[MCW_LINE_MAX - 1] = '\0';
	T_INTEQ(parse(big, &l, &why), 0);
	big[MCW_LINE_MAX - 1] = 'x';
	big[MCW_LINE_MAX] = '\0';
	bad(big);
	/* length is honoured: nothing past len is read */
	T_INTEQ(mcw_parse("OKjunk", 2, &l, &why), 0);
	T_INTEQ(l.kind, MCW_OK);
	free(big);
}

static void
test_uridecode(void)
{
	unsigned char	out[MCW_KEY_MAX + 1];

	T_INTEQ(mcw_uridecode("a-b.c_d~e", 9, out), 9);
	T_STREQ((char *)out, "a-b.c_d~e");
	T_INTEQ(mcw_uridecode("%41%62%7e", 9, out), 3);
	T_STREQ((char *)out, "Ab~");
	T_INTEQ(mcw_uridecode("", 0, out), 0);
	T_INTEQ(mcw_uridecode("%4", 2, out), -1);
	T_INTEQ(mcw_uridecode("%", 1, out), -1);
	T_INTEQ(mcw_uridecode("a+b", 3, out), -1);
	T_INTEQ(mcw_uridecode("a/b", 3, out), -1);
}

int
main(void)
{
	test_get();
	test_store();
	test_eviction_conn();
	test_replies();
	test_bad();
	test_uridecode();
	return t_done();
}
