/*
 * test_pickle.c: the pickle encoder against bytes CPython 3.11 wrote.
 *
 * The golden vectors are values built the way the
 * cache_programs command builds its values; the other expected bytes (and
 * the length + FNV-1a of the larger ones) come from pickle.dumps on
 * /usr/bin/python3 (3.11.2).  tests/integration/test_pickle_diff.py compares
 * against CPython on random documents; this file covers the API the daemon
 * uses beyond pickle_json: identity pointers, checkpoint and resume, errors.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pickle.h"
#include "util.h"

#include "t.h"

#define UUID	"6f9c4e3a-2b1d-4c8e-9f0a-1234567890ab"

static json_t	*parse(const char *);
static void	 unhex(struct buf *, const char *);
static int	 same(const struct buf *, const unsigned char *, size_t,
		     const char *, int);
static int	 same_hex(const struct buf *, const char *, const char *, int);
static uint64_t	 fnv(const unsigned char *, size_t);
static void	 encode_json(struct pickle *, const char *);
static void	 program_items(struct pickle *, json_t *, size_t extra);
static void	 program_tail(struct pickle *, const int64_t *, size_t);
static void	 test_golden(void);
static void	 test_program(void);
static void	 test_pathway(void);
static void	 test_atoms(void);
static void	 test_identity(void);
static void	 test_batches(void);
static void	 test_errors(void);
static json_t	*big_program(size_t, size_t, size_t);
static long	 check_resume(json_t *, int, const int64_t *, size_t);
static void	 test_resume_sizes(void);
static void	 test_resume_big_string(void);
static void	 test_resume_misc(void);

#define SAME(b, p, n)		same(b, p, n, __FILE__, __LINE__)
#define SAME_HEX(b, h)		same_hex(b, h, __FILE__, __LINE__)

/* Parse JSON the way the daemon does, or abort the test. */
static json_t *
parse(const char *s)
{
	json_error_t	 e;
	json_t		*j;

	j = json_loadb(s, strlen(s), JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (j == NULL) {
		fprintf(stderr, "parse: %s\n", e.text);
		abort();
	}
	return j;
}

/* Append the bytes a hex string spells. */
static void
unhex(struct buf *b, const char *h)
{
	unsigned int	x;

	for (; h[0] != '\0' && h[1] != '\0'; h += 2) {
		if (sscanf(h, "%2x", &x) != 1)
			abort();
		buf_addc(b, (unsigned char)x);
	}
}

/* Compare output with expected bytes; say where they differ. */
static int
same(const struct buf *b, const unsigned char *want, size_t n,
    const char *file, int line)
{
	size_t	i;

	t_run++;
	if (b->len == n && memcmp(b->data, want, n) == 0)
		return 1;
	for (i = 0; i < b->len && i < n && b->data[i] == want[i]; i++)
		;
	t_failed++;
	fprintf(stderr, "%s:%d: bytes differ at %zu (got %zu bytes, want %zu)\n",
	    file, line, i, b->len, n);
	return 0;
}

/* Compare output with hex. */
static int
same_hex(const struct buf *b, const char *hex, const char *file, int line)
{
	struct buf	w;
	size_t		i;
	int		ok;

	buf_init(&w);
	unhex(&w, hex);
	ok = same(b, w.data, w.len, file, line);
	if (!ok) {
		fprintf(stderr, "  got:  ");
		for (i = 0; i < b->len && i < 512; i++)
			fprintf(stderr, "%02x", b->data[i]);
		fprintf(stderr, "\n  want: %s\n", hex);
	}
	buf_free(&w);
	return ok;
}

/* FNV-1a 64, to compare with big outputs by length and hash. */
static uint64_t
fnv(const unsigned char *p, size_t n)
{
	uint64_t	h = 0xcbf29ce484222325ULL;

	while (n-- > 0) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* A whole pickle of one JSON document. */
static void
encode_json(struct pickle *p, const char *s)
{
	json_t	*j = parse(s);

	pickle_begin(p);
	pickle_json(p, j);
	T_INTEQ(pickle_finish(p), 0);
	json_decref(j);
}

/*
 * A program's value as cache_programs leaves it, up to its last item: the
 * detail's items with keys of the document, in a dict with room for extra
 * more items.
 */
static void
program_items(struct pickle *p, json_t *detail, size_t extra)
{
	const char	*k;
	json_t		*v;

	pickle_dict_begin(p, json_object_size(detail) + extra);
	json_object_foreach(detail, k, v) {
		pickle_str(p, k, strlen(k), PICKLE_KEY);
		pickle_json(p, v);
	}
}

/* The appended "pathway_ids" item, the end of the dict and STOP. */
static void
program_tail(struct pickle *p, const int64_t *ids, size_t n)
{
	size_t	i;

	pickle_str(p, "pathway_ids", 11, PICKLE_NEW);
	pickle_list_begin(p, n);
	for (i = 0; i < n; i++)
		pickle_int(p, ids[i]);
	pickle_end(p);
	pickle_end(p);
	T_INTEQ(pickle_finish(p), 0);
}

/* The golden vectors: the command's kinds of value, by CPython. */
static void
test_golden(void)
{
	struct pickle	p;

	pickle_init(&p, 5);

	/* A skipped site: an empty list built by the command. */
	pickle_begin(&p);
	pickle_list_begin(&p, 0);
	pickle_end(&p);
	T_INTEQ(pickle_finish(&p), 0);
	SAME_HEX(&p.out, "80055d942e");

	/* Program uuids: two value objects of different documents. */
	pickle_begin(&p);
	pickle_list_begin(&p, 2);
	pickle_str(&p, UUID, strlen(UUID), PICKLE_NEW);
	pickle_str(&p, "0b5e2c7d-1111-4222-8333-444455556666", 36, PICKLE_NEW);
	pickle_end(&p);
	T_INTEQ(pickle_finish(&p), 0);
	SAME_HEX(&p.out, "80059553000000000000005d94288c2436663963346533612d3262"
	    "31642d346338652d396630612d313233343536373839306162948c2430623565"
	    "326337642d313131312d343232322d383333332d343434343535353536363636"
	    "94652e");

	/* The pathway-ids value. */
	pickle_begin(&p);
	pickle_list_begin(&p, 2);
	pickle_str(&p, "pathway-1", 9, PICKLE_NEW);
	pickle_str(&p, "pathway-2", 9, PICKLE_NEW);
	pickle_end(&p);
	T_INTEQ(pickle_finish(&p), 0);
	SAME_HEX(&p.out, "8005951d000000000000005d94288c09706174687761792d31948c"
	    "09706174687761792d3294652e");

	encode_json(&p, "{\"a\":1}");
	SAME_HEX(&p.out, "8005950a000000000000007d948c0161944b01732e");

	encode_json(&p, "[\"x\"]");
	SAME_HEX(&p.out, "80059508000000000000005d948c017894612e");

	encode_json(&p, "{\"uuid\": \"abc\", \"title\": \"\", \"subtitle\": \"\", "
	    "\"type\": \"X\", \"courses\": [{\"uuid\": \"c1\", \"key\": \"k\"}, "
	    "{\"uuid\": \"c2\", \"key\": \"k2\"}]}");
	SAME_HEX(&p.out, "8005956a000000000000007d94288c0475756964948c0361626394"
	    "8c057469746c65948c00948c087375627469746c659468048c0474797065948c"
	    "0158948c07636f7572736573945d94287d942868018c026331948c036b657994"
	    "8c016b94757d942868018c02633294680c8c026b32947565752e");

	/* The same value in every protocol. */
	pickle_free(&p);
	pickle_init(&p, 2);
	encode_json(&p, "{\"a\":[1,\"\\u00e9\"]}");
	SAME_HEX(&p.out, "80027d710058010000006171015d7102284b015802000000c3a971"
	    "0365732e");
	pickle_free(&p);
	pickle_init(&p, 3);
	encode_json(&p, "{\"a\":[1,\"\\u00e9\"]}");
	SAME_HEX(&p.out, "80037d710058010000006171015d7102284b015802000000c3a971"
	    "0365732e");
	pickle_free(&p);
	pickle_init(&p, 4);
	encode_json(&p, "{\"a\":[1,\"\\u00e9\"]}");
	SAME_HEX(&p.out, "80049513000000000000007d948c0161945d94284b018c02c3a994"
	    "65732e");
	pickle_free(&p);
}

static const char program_json[] =
    "{\"uuid\": \"6f9c4e3a-2b1d-4c8e-9f0a-1234567890ab\", \"title\": \"Demo\", "
    "\"type\": \"MicroMasters\", \"type_attrs\": {\"uuid\": \"b1\", \"slug\": "
    "\"micromasters\"}, \"hidden\": false, \"status\": \"active\", "
    "\"weeks_to_complete\": 10, \"price\": 1.5, \"subtitle\": \"\", "
    "\"overview\": \"\", \"authoring_organizations\": [{\"key\": \"edX\", "
    "\"uuid\": \"o1\"}], \"courses\": [{\"uuid\": \"c1\", \"key\": "
    "\"edX+DemoX\", \"course_runs\": [{\"key\": "
    "\"course-v1:edX+DemoX+1T2025\", "
    "\"uuid\": \"r1\"}]}], \"curricula\": []}";

static const char program_hex[] =
    "8005959a010000000000007d94288c0475756964948c2436663963346533612d3262"
    "31642d346338652d396630612d313233343536373839306162948c057469746c6594"
    "8c0444656d6f948c0474797065948c0c4d6963726f4d617374657273948c0a747970"
    "655f6174747273947d942868018c026231948c04736c7567948c0c6d6963726f6d61"
    "737465727394758c0668696464656e94898c06737461747573948c06616374697665"
    "948c117765656b735f746f5f636f6d706c657465944b0a8c05707269636594473ff8"
    "0000000000008c087375627469746c65948c00948c086f766572766965779468128c"
    "17617574686f72696e675f6f7267616e697a6174696f6e73945d947d94288c036b65"
    "79948c036564589468018c026f319475618c07636f7572736573945d947d94286801"
    "8c0263319468178c096564582b44656d6f58948c0b636f757273655f72756e73945d"
    "947d942868178c1a636f757273652d76313a6564582b44656d6f582b315432303235"
    "9468018c02723194756175618c09637572726963756c61945d948c0b706174687761"
    "795f696473945d944b0361752e";

/* The program vector: in one go, and finished from a checkpoint. */
static void
test_program(void)
{
	struct pickle		p, q;
	struct pickle_ckpt	ck;
	struct buf		prefix, want;
	json_t			*detail = parse(program_json);
	const int64_t		 ids[] = { 3 };

	pickle_init(&p, 5);
	pickle_begin(&p);
	program_items(&p, detail, 1);
	program_tail(&p, ids, 1);
	SAME_HEX(&p.out, program_hex);
	T_INTEQ(p.out.len, 421);
	buf_init(&want);
	buf_add(&want, p.out.data, p.out.len);

	pickle_begin(&p);
	program_items(&p, detail, 1);
	pickle_checkpoint(&p, &ck);
	T_CHECK(ck.valid);
	buf_init(&prefix);
	buf_add(&prefix, p.out.data, p.out.len);

	pickle_init(&q, 5);
	pickle_resume(&q, &prefix, &ck);
	program_tail(&q, ids, 1);
	SAME(&q.out, want.data, want.len);
	pickle_resume(&q, &prefix, &ck);
	program_tail(&q, ids, 1);
	SAME(&q.out, want.data, want.len);
	/* In place, on the finished bytes. */
	pickle_resume(&q, &q.out, &ck);
	program_tail(&q, ids, 1);
	SAME(&q.out, want.data, want.len);

	pickle_free(&q);
	pickle_free(&p);
	buf_free(&prefix);
	buf_free(&want);
	json_decref(detail);
}

/* The pathway vector: results[0] without programs, plus program_uuids. */
static void
test_pathway(void)
{
	struct pickle	 p;
	json_t		*page, *pw, *programs, *v;
	const char	*k;
	size_t		 i;

	page = parse("{\"count\": 1, \"next\": null, \"results\": [{\"id\": 3, "
	    "\"name\": \"P\", \"org_name\": \"O\", \"email\": \"a@b.c\", "
	    "\"programs\": [{\"uuid\": \"6f9c4e3a-2b1d-4c8e-9f0a-1234567890ab\", "
	    "\"title\": \"Demo\"}], \"description\": \"\", \"destination_url\": "
	    "\"\", \"pathway_type\": \"credit\", \"status\": \"published\"}]}");
	pw = json_array_get(json_object_get(page, "results"), 0);
	programs = json_object_get(pw, "programs");

	pickle_init(&p, 5);
	pickle_begin(&p);
	pickle_dict_begin(&p, json_object_size(pw));
	json_object_foreach(pw, k, v) {
		if (strcmp(k, "programs") == 0)
			continue;
		pickle_str(&p, k, strlen(k), PICKLE_KEY);
		pickle_json(&p, v);
	}
	pickle_str(&p, "program_uuids", 13, PICKLE_NEW);
	pickle_list_begin(&p, json_array_size(programs));
	json_array_foreach(programs, i, v) {
		json_t	*u = json_object_get(v, "uuid");

		pickle_str_obj(&p, json_string_value(u), json_string_length(u),
		    u);
	}
	pickle_end(&p);
	pickle_end(&p);
	T_INTEQ(pickle_finish(&p), 0);
	SAME_HEX(&p.out, "800595c2000000000000007d94288c026964944b038c046e616d65"
	    "948c0150948c086f72675f6e616d65948c014f948c05656d61696c948c056140"
	    "622e63948c0b6465736372697074696f6e948c00948c0f64657374696e617469"
	    "6f6e5f75726c9468098c0c706174687761795f74797065948c06637265646974"
	    "948c06737461747573948c097075626c6973686564948c0d70726f6772616d5f"
	    "7575696473945d948c2436663963346533612d326231642d346338652d396630"
	    "612d3132333435363738393061629461752e");
	T_INTEQ(p.out.len, 205);
	pickle_free(&p);
	json_decref(page);
}

/* Ints at every opcode boundary, floats, None and bools. */
static void
test_atoms(void)
{
	static const int64_t	 ints[] = { 0, 255, 256, 65535, 65536, -1,
	    INT64_C(2147483647), INT64_C(2147483648), INT64_C(-2147483649),
	    INT64_C(-2147483648), INT64_MIN, INT64_MAX, -256,
	    INT64_C(1099511627776), INT64_C(-1099511627777),
	    INT64_C(549755813888), -129, -128 };
	static const char	*ints_hex =
	    "5d94284b004bff4d00014dffff4a000001004affffffff4affffff7f8a0500"
	    "000080008a05ffffff7fff4a000000808a0800000000000000808a08ffffff"
	    "ffffffff7f4a00ffffff8a060000000000018a06fffffffffffe8a06000000"
	    "0080004a7fffffff4a80ffffff652e";
	struct pickle		 p;
	char			 want[512];
	size_t			 i, n = sizeof ints / sizeof ints[0];

	pickle_init(&p, 5);
	pickle_begin(&p);
	pickle_list_begin(&p, n);
	for (i = 0; i < n; i++)
		pickle_int(&p, ints[i]);
	pickle_end(&p);
	T_INTEQ(pickle_finish(&p), 0);
	snprintf(want, sizeof want, "8005956c00000000000000%s", ints_hex);
	SAME_HEX(&p.out, want);
	pickle_free(&p);

	pickle_init(&p, 2);
	pickle_begin(&p);
	pickle_list_begin(&p, n);
	for (i = 0; i < n; i++)
		pickle_int(&p, ints[i]);
	pickle_end(&p);
	T_INTEQ(pickle_finish(&p), 0);
	/* Protocol 2: BINPUT instead of MEMOIZE, no frame. */
	snprintf(want, sizeof want, "80025d7100%s", ints_hex + 4);
	SAME_HEX(&p.out, want);
	pickle_free(&p);

	/* The golden ints, 2**64 left out (jansson has no such int). */
	pickle_init(&p, 5);
	encode_json(&p, "[0,255,256,65535,65536,-1,2147483647,2147483648,"
	    "-2147483649]");
	SAME_HEX(&p.out, "8005952c000000000000005d94284b004bff4d00014dffff4a0000"
	    "01004affffffff4affffff7f8a0500000080008a05ffffff7fff652e");

	encode_json(&p, "[1.5,-0.0,1e300,null,true,false]");
	SAME_HEX(&p.out, "80059523000000000000005d9428473ff8000000000000478000"
	    "000000000000477e37e43c8800759c4e8889652e");

	/* A scalar alone: too small for a frame. */
	encode_json(&p, "7");
	SAME_HEX(&p.out, "80054b072e");
	pickle_free(&p);
}

/* Keys by text, values fresh, singletons shared, identity pointers. */
static void
test_identity(void)
{
	struct pickle	p;
	const char	*u = UUID;
	int		 obj1, obj2;

	pickle_init(&p, 5);

	/* One uuid object appended twice (duplicate org): BINGET. */
	pickle_begin(&p);
	pickle_list_begin(&p, 2);
	pickle_str_obj(&p, u, strlen(u), &obj1);
	pickle_str_obj(&p, u, strlen(u), &obj1);
	pickle_end(&p);
	T_INTEQ(pickle_finish(&p), 0);
	SAME_HEX(&p.out, "8005952e000000000000005d94288c2436663963346533612d3262"
	    "31642d346338652d396630612d313233343536373839306162946801652e");

	/* Two objects with the same text are two strings. */
	pickle_begin(&p);
	pickle_list_begin(&p, 3);
	pickle_str_obj(&p, "ab", 2, &obj1);
	pickle_str_obj(&p, "ab", 2, &obj2);
	pickle_str(&p, "ab", 2, PICKLE_KEY);
	pickle_end(&p);
	T_INTEQ(pickle_finish(&p), 0);
	/* python: pickle.dumps([a, b, c], 5) with three distinct "ab". */
	SAME_HEX(&p.out, "80059514000000000000005d94288c026162948c026162948c"
	    "02616294652e");

	/*
	 * Keys of a document are shared across levels, values never, and a
	 * key "a" is the same object as a value "a"; "é" is a singleton,
	 * "中" is not.  python: pickle.dumps(json.loads(...), 5).
	 */
	encode_json(&p, "{\"ab\": \"ab\", \"a\": {\"ab\": \"a\", \"\\u00e9\": "
	    "[\"é\", \"中\", \"中\", \"\", \"\"]}}");
	SAME_HEX(&p.out, "80059537000000000000007d94288c026162948c026162948c0161"
	    "947d9428680168038c02c3a9945d942868058c03e4b8ad948c03e4b8ad948c00"
	    "9468096575752e");
	pickle_free(&p);
}

/* One batch case: JSON, protocol, and CPython's length, FNV and tail. */
struct batch_case {
	const char	*name;
	int		 proto;
	size_t		 len;
	uint64_t	 hash;
	const char	*tail;
};

/* Lists and dicts of 1000, 1001, 2000 items; memo indices past 255. */
static void
test_batches(void)
{
	static const struct batch_case cases[] = {
		{ "list1000", 2, 2752, 0xa4773ddc638ff352ULL, "034de703652e" },
		{ "list1000", 5, 2760, 0xa95a8ee029d38bd6ULL, "034de703652e" },
		{ "dict1000", 2, 15879, 0xe68b31de2532ae5fULL, "e7037528752e" },
		{ "dict1000", 5, 9652, 0x2fbc805f0a22fee4ULL, "e7037528752e" },
		{ "list1001", 2, 2757, 0x8a7ec131f0161e09ULL, "284de803652e" },
		{ "list1001", 5, 2765, 0x9856c4018edb3a46ULL, "284de803652e" },
		{ "dict1001", 2, 15897, 0xa8ad6388b65feb48ULL, "004de803752e" },
		{ "dict1001", 5, 9663, 0xadc2ee72d1a090dcULL, "944de803752e" },
		{ "list2000", 2, 5754, 0x625132879ae1a4b3ULL, "074dcf07652e" },
		{ "list2000", 5, 5762, 0x8bcada3117e5c079ULL, "074dcf07652e" },
		{ "dict2000", 2, 33881, 0x5ce04a9a35a2ff5aULL, "cf077528752e" },
		{ "dict2000", 5, 20654, 0xfe4723a043be9af6ULL, "cf077528752e" },
		{ "memo300", 2, 3368, 0xf0e4be0c0ca95c8dULL, "004b0273652e" },
		{ "memo300", 5, 2026, 0x186f0bbec3de6741ULL, "004b0273652e" },
	};
	const struct batch_case	*c;
	struct pickle		 p;
	struct buf		 js, tail;
	size_t			 i, j, n;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		c = &cases[i];
		buf_init(&js);
		n = strtoul(c->name + 4, NULL, 10);
		if (strncmp(c->name, "list", 4) == 0) {
			/* list(range(n)) */
			buf_addc(&js, '[');
			for (j = 0; j < n; j++)
				buf_printf(&js, "%s%zu", j ? "," : "", j);
			buf_addc(&js, ']');
		} else if (strncmp(c->name, "dict", 4) == 0) {
			/* {'k%d' % i: i for i in range(n)} */
			buf_addc(&js, '{');
			for (j = 0; j < n; j++)
				buf_printf(&js, "%s\"k%zu\":%zu", j ? "," : "",
				    j, j);
			buf_addc(&js, '}');
		} else {
			/* ['s%d' % i for i in range(300)] + [{'kk':1},{'kk':2}] */
			buf_addc(&js, '[');
			for (j = 0; j < 300; j++)
				buf_printf(&js, "\"s%zu\",", j);
			buf_adds(&js, "{\"kk\":1},{\"kk\":2}]");
		}
		pickle_init(&p, c->proto);
		encode_json(&p, (const char *)js.data);
		t_run++;
		if (p.out.len != c->len || fnv(p.out.data, p.out.len) != c->hash) {
			t_failed++;
			fprintf(stderr, "%s:%d: %s proto %d: %zu bytes, hash "
			    "%016llx; want %zu, %016llx\n", __FILE__, __LINE__,
			    c->name, c->proto, p.out.len,
			    (unsigned long long)fnv(p.out.data, p.out.len),
			    c->len, (unsigned long long)c->hash);
		}
		buf_init(&tail);
		unhex(&tail, c->tail);
		T_CHECK(p.out.len >= tail.len && memcmp(p.out.data + p.out.len -
		    tail.len, tail.data, tail.len) == 0);
		buf_free(&tail);
		pickle_free(&p);
		buf_free(&js);
	}
}

/* Sticky errors: nesting, item counts, misuse. */
static void
test_errors(void)
{
	struct pickle	p;
	int		i;

	pickle_init(&p, 5);
	pickle_begin(&p);
	for (i = 0; i < PICKLE_MAX_DEPTH; i++)
		pickle_list_begin(&p, 1);
	T_CHECK(pickle_error(&p) == NULL);
	pickle_list_begin(&p, 0);		/* level 201 */
	T_STREQ(pickle_error(&p), "nesting deeper than 200 levels");
	pickle_end(&p);
	pickle_int(&p, 1);
	T_INTEQ(pickle_finish(&p), -1);
	T_STREQ(pickle_error(&p), "nesting deeper than 200 levels");

	/* 200 levels are fine, and begin clears the error. */
	pickle_begin(&p);
	T_CHECK(pickle_error(&p) == NULL);
	for (i = 0; i < PICKLE_MAX_DEPTH; i++)
		pickle_list_begin(&p, i == PICKLE_MAX_DEPTH - 1 ? 0 : 1);
	for (i = 0; i < PICKLE_MAX_DEPTH; i++)
		pickle_end(&p);
	T_INTEQ(pickle_finish(&p), 0);
	T_INTEQ(p.out.len, 2 + 9 + 2 * PICKLE_MAX_DEPTH +
	    (PICKLE_MAX_DEPTH - 1) + 1);

	/* pickle_json stops at the limit too. */
	{
		json_t	*deep = json_array(), *a = deep;

		for (i = 0; i < PICKLE_MAX_DEPTH; i++) {
			json_t	*b = json_array();

			json_array_append_new(a, b);
			a = b;
		}
		pickle_begin(&p);
		T_INTEQ(pickle_json(&p, deep), -1);
		T_INTEQ(pickle_finish(&p), -1);
		T_STREQ(pickle_error(&p), "nesting deeper than 200 levels");
		json_decref(deep);
	}

	pickle_begin(&p);
	pickle_list_begin(&p, 1);
	pickle_int(&p, 1);
	pickle_int(&p, 2);
	T_INTEQ(pickle_finish(&p), -1);
	T_CHECK(pickle_error(&p) != NULL);

	pickle_begin(&p);
	pickle_dict_begin(&p, 1);
	pickle_str(&p, "k", 1, PICKLE_KEY);
	pickle_end(&p);
	T_INTEQ(pickle_finish(&p), -1);

	pickle_begin(&p);
	pickle_list_begin(&p, 2);
	pickle_end(&p);
	T_INTEQ(pickle_finish(&p), -1);

	pickle_begin(&p);
	T_INTEQ(pickle_finish(&p), -1);		/* no value */

	pickle_begin(&p);
	pickle_none(&p);
	pickle_none(&p);
	T_INTEQ(pickle_finish(&p), -1);		/* two values */

	pickle_reset(&p);
	pickle_none(&p);			/* no pickle_begin */
	T_INTEQ(pickle_finish(&p), -1);
	pickle_free(&p);

	pickle_init(&p, 1);
	pickle_begin(&p);
	pickle_none(&p);
	T_INTEQ(pickle_finish(&p), -1);
	T_CHECK(pickle_error(&p) != NULL);
	pickle_free(&p);
}

/*
 * A program-shaped detail: ncourses courses with runs, a 250-byte string,
 * then bigstr bytes of "o" as the last item if nonzero.  pad is the length
 * of an early string, for moving the frame boundaries around.
 */
static json_t *
big_program(size_t ncourses, size_t pad, size_t bigstr)
{
	json_t	*d, *courses, *c, *runs, *r;
	char	 s[64], *t;
	size_t	 i, k;

	d = json_object();
	json_object_set_new(d, "uuid", json_string(UUID));
	json_object_set_new(d, "title", json_string("Demo"));
	json_object_set_new(d, "subtitle", json_string(""));
	json_object_set_new(d, "hidden", json_false());
	json_object_set_new(d, "price", json_real(49.5));
	t = xmalloc(pad + 1);
	memset(t, 't', pad);
	t[pad] = '\0';
	json_object_set_new(d, "pad", json_string(t));
	free(t);
	courses = json_array();
	for (i = 0; i < ncourses; i++) {
		c = json_object();
		snprintf(s, sizeof s, "%032zx", i * 7919);
		json_object_set_new(c, "uuid", json_string(s));
		snprintf(s, sizeof s, "edX+C%zu", i);
		json_object_set_new(c, "key", json_string(s));
		json_object_set_new(c, "title", json_string("Course title "
		    "that is long enough to be realistic"));
		json_object_set_new(c, "image", json_null());
		runs = json_array();
		for (k = 0; k < 3; k++) {
			r = json_object();
			snprintf(s, sizeof s, "course-v1:edX+C%zu+%zuT2025", i, k);
			json_object_set_new(r, "key", json_string(s));
			snprintf(s, sizeof s, "%032zx", i * 31 + k);
			json_object_set_new(r, "uuid", json_string(s));
			json_object_set_new(r, "start",
			    json_string("2025-01-01T00:00:00Z"));
			json_object_set_new(r, "pacing_type",
			    json_string("self_paced"));
			json_object_set_new(r, "enrollment_count",
			    json_integer((json_int_t)(i * k * 977)));
			json_object_set_new(r, "status", json_string("published"));
			json_object_set_new(r, "type", json_string(""));
			json_array_append_new(runs, r);
		}
		json_object_set_new(c, "course_runs", runs);
		json_array_append_new(courses, c);
	}
	json_object_set_new(d, "courses", courses);
	json_object_set_new(d, "curricula", json_array());
	/* Long enough for frame boundaries to fall inside it often. */
	t = xmalloc(251);
	memset(t, 'm', 250);
	t[250] = '\0';
	json_object_set_new(d, "marketing_url", json_string(t));
	free(t);
	if (bigstr != 0) {
		t = xmalloc(bigstr + 1);
		memset(t, 'o', bigstr);
		t[bigstr] = '\0';
		json_object_set_new(d, "overview", json_string(t));
		free(t);
	}
	return d;
}

/*
 * Encode detail + pathway_ids in one go into want, and through a
 * checkpoint: resumed from a kept prefix twice, in place on a finished
 * buffer, and from a copy of a finished buffer.  All must be equal.
 * Returns the payload of the frame open at the checkpoint, or -1.
 */
static long
check_resume(json_t *detail, int proto, const int64_t *ids, size_t nids)
{
	struct pickle		p, q;
	struct pickle_ckpt	ck;
	struct buf		want, prefix, done;
	long			open;

	pickle_init(&p, proto);
	pickle_begin(&p);
	program_items(&p, detail, 1);
	program_tail(&p, ids, nids);
	buf_init(&want);
	buf_add(&want, p.out.data, p.out.len);

	pickle_begin(&p);
	program_items(&p, detail, 1);
	pickle_checkpoint(&p, &ck);
	T_CHECK(ck.valid);
	open = ck.frame_start == -1 ? -1 : (long)ck.len - ck.frame_start - 9;
	buf_init(&prefix);
	buf_add(&prefix, p.out.data, p.out.len);

	pickle_init(&q, proto == 2 ? 5 : 2);	/* resume takes ck's protocol */
	pickle_resume(&q, &prefix, &ck);
	program_tail(&q, ids, nids);
	SAME(&q.out, want.data, want.len);
	pickle_resume(&q, &prefix, &ck);
	program_tail(&q, ids, nids);
	SAME(&q.out, want.data, want.len);

	/* In place, on the pickle just finished from the checkpoint. */
	pickle_resume(&q, &q.out, &ck);
	program_tail(&q, ids, nids);
	SAME(&q.out, want.data, want.len);

	/* From a kept copy of a finished value. */
	buf_init(&done);
	buf_add(&done, q.out.data, q.out.len);
	pickle_resume(&p, &done, &ck);
	program_tail(&p, ids, nids);
	SAME(&p.out, want.data, want.len);

	pickle_free(&p);
	pickle_free(&q);
	buf_free(&want);
	buf_free(&prefix);
	buf_free(&done);
	return open;
}

/*
 * Programs with 60-70 KB pickles (about 90-100 KB of JSON), with the
 * checkpoint's frame short of, at, and past the 64 KiB target (then the
 * first save after resuming commits it), and pathway lists that push the
 * rest past it.
 */
static void
test_resume_sizes(void)
{
	static const int64_t	 ids[] = { 3, 70000, -5, INT64_MAX };
	int64_t			*many;
	json_t			*d;
	size_t			 pad, i, nc;
	long			 open;
	int			 proto, below = 0, above = 0, near = 0;

	many = xreallocarray(NULL, 3000, sizeof *many);
	for (i = 0; i < 3000; i++)
		many[i] = (int64_t)i * 3;
	for (nc = 116; nc <= 136; nc += 10) {
		for (pad = 0; pad < 1200; pad += 23) {
			d = big_program(nc, pad, 0);
			for (proto = 2; proto <= 5; proto++) {
				open = check_resume(d, proto, ids, 1);
				check_resume(d, proto, ids, 4);
				if (pad % 5 == 0)
					check_resume(d, proto, many, 3000);
				if (open >= 65536)
					above++;
				else if (open >= 0)
					below++;
				if (open >= 65536 - 40 && open < 65536 + 40)
					near++;
			}
			json_decref(d);
		}
	}
	fprintf(stderr, "resume: %d below, %d above, %d near\n", below, above, near);
	T_CHECK(below > 10 && above > 10 && near > 2);
	free(many);
}

/*
 * A string of 64 KiB or more just before the checkpoint, so that the
 * checkpoint's frame holds only its MEMOIZE; and a huge last key, so that
 * finishing drops that frame's header and moves the byte (in place, the
 * next resume must put it back).
 */
static void
test_resume_big_string(void)
{
	static const int64_t	 ids[] = { 3 };
	struct pickle		 p, q;
	struct pickle_ckpt	 ck;
	struct buf		 want, prefix, big;
	json_t			*d;
	size_t			 sz, r;
	int			 proto;

	for (sz = 65535; sz <= 70000; sz += 4465) {
		d = big_program(80, 0, sz);
		for (proto = 2; proto <= 5; proto++)
			check_resume(d, proto, ids, 1);

		buf_init(&big);
		for (r = 0; r < 70000; r++)
			buf_addc(&big, 'k');
		for (proto = 2; proto <= 5; proto++) {
			pickle_init(&p, proto);
			pickle_begin(&p);
			program_items(&p, d, 1);
			pickle_str(&p, (char *)big.data, big.len, PICKLE_NEW);
			pickle_int(&p, 1);
			pickle_end(&p);
			T_INTEQ(pickle_finish(&p), 0);
			buf_init(&want);
			buf_add(&want, p.out.data, p.out.len);

			pickle_begin(&p);
			program_items(&p, d, 1);
			pickle_checkpoint(&p, &ck);
			if (proto >= 4 && sz >= 65536)
				T_INTEQ(ck.len - (size_t)ck.frame_start, 9 + 1);
			buf_init(&prefix);
			buf_add(&prefix, p.out.data, p.out.len);
			pickle_init(&q, proto);
			for (r = 0; r < 3; r++) {
				pickle_resume(&q, r == 0 ? &prefix : &q.out, &ck);
				pickle_str(&q, (char *)big.data, big.len,
				    PICKLE_NEW);
				pickle_int(&q, 1);
				pickle_end(&q);
				T_INTEQ(pickle_finish(&q), 0);
				SAME(&q.out, want.data, want.len);
			}
			pickle_free(&p);
			pickle_free(&q);
			buf_free(&want);
			buf_free(&prefix);
		}
		buf_free(&big);
		json_decref(d);
	}
}

/* Checkpoints after a full batch, and where none may be taken. */
static void
test_resume_misc(void)
{
	struct pickle		p, q;
	struct pickle_ckpt	ck;
	struct buf		want;
	char			k[16];
	int			i, j;

	/* A 1001-pair dict checkpointed after 1000 pairs (after "u("). */
	for (j = 0; j < 2; j++) {
		pickle_init(&p, 5);
		pickle_begin(&p);
		pickle_dict_begin(&p, 1001);
		for (i = 0; i < 1001; i++) {
			if (i == 1000 && j == 1)
				pickle_checkpoint(&p, &ck);
			snprintf(k, sizeof k, "k%d", i);
			pickle_str(&p, k, strlen(k), PICKLE_KEY);
			pickle_int(&p, i);
		}
		pickle_end(&p);
		T_INTEQ(pickle_finish(&p), 0);
		if (j == 0) {
			buf_init(&want);
			buf_add(&want, p.out.data, p.out.len);
			T_INTEQ(p.out.len, 9663);	/* as dict1001 above */
		} else {
			T_CHECK(ck.valid);
			T_INTEQ(ck.done, 1000);
			pickle_init(&q, 5);
			pickle_resume(&q, &p.out, &ck);
			pickle_str(&q, "k1000", 5, PICKLE_KEY);
			pickle_int(&q, 1000);
			pickle_end(&q);
			T_INTEQ(pickle_finish(&q), 0);
			SAME(&q.out, want.data, want.len);
			pickle_free(&q);
			buf_free(&want);
		}
		pickle_free(&p);
	}

	/* Not at depth 1, or not in a dict: resuming fails. */
	pickle_init(&p, 5);
	pickle_begin(&p);
	pickle_dict_begin(&p, 1);
	pickle_str(&p, "a", 1, PICKLE_KEY);
	pickle_dict_begin(&p, 0);
	pickle_checkpoint(&p, &ck);
	T_CHECK(!ck.valid);
	pickle_init(&q, 5);
	pickle_resume(&q, &p.out, &ck);
	pickle_none(&q);
	T_INTEQ(pickle_finish(&q), -1);
	T_CHECK(pickle_error(&q) != NULL);

	pickle_begin(&p);
	pickle_list_begin(&p, 2);
	pickle_none(&p);
	pickle_checkpoint(&p, &ck);
	T_CHECK(!ck.valid);

	/* Half a pair written. */
	pickle_begin(&p);
	pickle_dict_begin(&p, 2);
	pickle_str(&p, "a", 1, PICKLE_KEY);
	pickle_checkpoint(&p, &ck);
	T_CHECK(!ck.valid);
	pickle_free(&p);
	pickle_free(&q);
}

/* Every test. */
int
main(void)
{
	json_object_seed(1);
	test_golden();
	test_program();
	test_pathway();
	test_atoms();
	test_identity();
	test_batches();
	test_errors();
	test_resume_sizes();
	test_resume_big_string();
	test_resume_misc();
	return t_done();
}
