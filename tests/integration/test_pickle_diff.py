"""Differential test: build/pickle_json against CPython's C pickler.

For a few hundred random JSON documents (fixed seed), the C encoder's bytes
must equal pickle.dumps(json.loads(doc), proto) for protocols 2 to 5, and
load back to json.loads(doc).  The documents cover what decides the bytes:
key identity across levels, duplicate keys, the "" and one-character
singletons, strings around the 255-byte and 64 KiB limits, ints at the
opcode boundaries, batches of 1, 1000, 1001 and 2000 items, more than 256
memo entries, and documents of 60-200 KB that cross frame boundaries.
"""

import concurrent.futures
import json
import os
import pickle
import random
import subprocess
import unittest

TOOL = os.path.join(os.environ.get('PCD_BUILD', 'build'), 'pickle_json')
PROTOS = (2, 3, 4, 5)
SEED = 20250101

SINGLES = ['', 'a', 'Z', '\n', '\u0000', '"', '\\', '\x7f', '\x80', 'é',
    'ÿ', 'Ā', '中', '\U0001f600']
KEYS = ['uuid', 'key', 'title', 'type', 'a', 'é', '中', '', 'k', 'courses',
    'course_runs', 'x' * 300, 'ключ', 'status']
INTS = [0, 1, 255, 256, 65535, 65536, -1, -255, -256, 2**31 - 1, 2**31,
    -2**31, -2**31 - 1, 2**32, 2**39, -2**39, 2**40 - 1, -2**40, 2**47,
    -2**47 - 1, 2**55, -2**55, 2**63 - 1, -2**63, 127, 128, -128, -129]
FLOATS = [0.0, -0.0, 1.5, -2.25, 1e300, -1e-300, 5e-324, 0.1, 3.0,
    1.7976931348623157e308]


class Pairs(list):
    """A JSON object as a list of (key, value) pairs: keys may repeat."""


def dump(v, rng):
    """Serialise v, choosing escaped or raw non-ASCII at random."""
    if isinstance(v, Pairs):
        return '{' + ', '.join(dump(k, rng) + ': ' + dump(x, rng)
            for k, x in v) + '}'
    if isinstance(v, list):
        return '[' + ','.join(dump(x, rng) for x in v) + ']'
    if isinstance(v, float):
        return repr(v)
    return json.dumps(v, ensure_ascii=rng.random() < 0.3)


def rand_str(rng):
    r = rng.random()
    if r < 0.25:
        return rng.choice(SINGLES)
    if r < 0.30:
        return rng.choice(KEYS)
    if r < 0.33:
        return ''.join(rng.choice('aé中\U0001f600') for _ in range(100))
    if r < 0.35:
        return 'y' * rng.choice([254, 255, 256, 300])
    alphabet = 'abcdefghij-_:+0123456789 éü中'
    return ''.join(rng.choice(alphabet) for _ in range(rng.randint(2, 40)))


def rand_key(rng, pool):
    if rng.random() < 0.6:
        return rng.choice(pool)
    return rand_str(rng).replace('\0', '0')	# jansson: no NUL in keys


def rand_atom(rng):
    r = rng.random()
    if r < 0.45:
        return rand_str(rng)
    if r < 0.65:
        return rng.choice(INTS) if rng.random() < 0.5 else \
            rng.randint(-2**63, 2**63 - 1) >> rng.randint(0, 62)
    if r < 0.80:
        return rng.choice(FLOATS) if rng.random() < 0.3 else \
            rng.uniform(-1e6, 1e6)
    return rng.choice([True, False, None])


def rand_value(rng, depth, pool, width=6):
    r = rng.random()
    if depth <= 0 or r < 0.45:
        return rand_atom(rng)
    n = rng.choice([0, 1, 1, 2, 3, rng.randint(2, width)])
    if r < 0.72:
        d = Pairs()
        for _ in range(n):
            d.append((rand_key(rng, pool), rand_value(rng, depth - 1, pool)))
        if d and rng.random() < 0.15:		# a duplicate key
            d.append((d[0][0], rand_value(rng, depth - 1, pool)))
        return d
    return [rand_value(rng, depth - 1, pool) for _ in range(n)]


def program(rng, target):
    """A program-shaped document of about target bytes."""
    courses = []
    size = 0
    while size < target:
        runs = [Pairs([('key', 'course-v1:edX+%d+%dT' % (rng.randint(0, 99),
            i)), ('uuid', '%032x' % rng.getrandbits(128)),
            ('title', rand_str(rng)), ('start', None if rng.random() < 0.2
            else '2025-01-01T00:00:00Z'), ('pacing_type', 'self_paced'),
            ('seats', [Pairs([('type', 'verified'), ('price', '49.00'),
            ('currency', 'USD'), ('sku', '')])])])
            for i in range(rng.randint(1, 6))]
        c = Pairs([('uuid', '%032x' % rng.getrandbits(128)),
            ('key', 'edX+C%d' % len(courses)), ('title', rand_str(rng)),
            ('short_description', rand_str(rng) * rng.randint(1, 8)),
            ('course_runs', runs), ('owners', [Pairs([('uuid', 'o1'),
            ('key', 'edX'), ('name', 'edX'), ('logo', '')])]),
            ('extra', rand_value(rng, 3, KEYS))])
        courses.append(c)
        size += len(dump(c, rng))
    return Pairs([('uuid', '%032x' % rng.getrandbits(128)),
        ('title', 'Demo'), ('subtitle', ''), ('type', 'MicroMasters'),
        ('hidden', False), ('price', 1.5), ('weeks', 10),
        ('authoring_organizations', [Pairs([('key', 'edX'),
        ('uuid', 'o1')])]), ('courses', courses), ('curricula', [])])


def documents():
    rng = random.Random(SEED)
    docs = []
    # Hand-picked shapes first.
    docs += ['[]', '{}', '""', '"a"', '1', '-1', '1.5', 'null', 'true',
        '[[]]', '[{}]', '{"a": {}}', '[1]', '{"a": 1}', '["", ""]',
        '{"": ""}', '{"a": "a", "b": ["a", "b"]}', '{"a": 1, "a": 2}',
        '{"a": 1, "b": 2, "a": 3}', '["\\u00e9", "\\u00e9", "é"]',
        '["中", "中"]', '{"中": "中", "x": {"中": 1}}',
        '["\\u0000", "\\u0000", "a\\u0000b"]',
        json.dumps(INTS), json.dumps(FLOATS)]
    for n in (1, 2, 999, 1000, 1001, 1999, 2000, 2001):
        docs.append(json.dumps(list(range(n))))
        docs.append(json.dumps({'k%d' % i: i for i in range(n)}))
        docs.append(json.dumps([['a', {'uuid': str(i)}] for i in range(n)]))
        docs.append(json.dumps({'uuid': {'k%d' % i: 'v' for i in range(n)},
            'x': ['uuid'] * n}))
    # Strings around the 64 KiB unframed limit, in bytes of UTF-8.
    for s in ('z' * 65535, 'z' * 65536, 'é' * 32767 + 'z', 'é' * 32768,
            '中' * 21846, 'z' * 70000):
        docs.append(json.dumps(s))
        docs.append(json.dumps([s]))
        docs.append(json.dumps({'a': s, 'b': 'c'}))
        docs.append(json.dumps(['x', s, s, 'y', {'k': s}], ensure_ascii=False))
        docs.append(json.dumps({'pad': 'p' * 65520, 'big': s, 'end': ''}))
    # The first frame reaching 64 KiB at each point of a small structure.
    tail = ['', 'a', {'a': 1, 'b': [1, 2], 'c': {}}, [{'k': 'v'}], 'é', '']
    for n in range(65536 - 60, 65536 - 6):
        docs.append(json.dumps(['p' * n] + tail))
    # Small and medium random documents.
    for _ in range(200):
        docs.append(dump(rand_value(rng, rng.randint(1, 6), KEYS), rng))
    # Wide ones with many distinct keys (memo indices past 256).
    for _ in range(10):
        pool = ['key%d' % i for i in range(400)] + KEYS
        d = Pairs((rand_key(rng, pool), rand_value(rng, 2, pool))
            for _ in range(rng.randint(300, 1200)))
        docs.append(dump(d, rng))
    # Program-shaped documents of 60-200 KB, some with 70 KB strings.
    for i in range(40):
        p = program(rng, rng.randint(60000, 200000))
        if i % 4 == 0:
            p.insert(rng.randint(0, len(p)), ('overview', 'o' * 70000))
        if i % 4 == 1:
            p[8][1].insert(rng.randint(0, len(p[8][1])),
                'é' * rng.randint(32760, 36000))
        docs.append(dump(p, rng))
    return docs


def resumed_documents():
    """Objects with a fresh last item, for pickle_json -c."""
    rng = random.Random(SEED + 1)
    heads = []
    for n in range(65536 - 40, 65536 + 4, 3):
        heads.append(json.dumps({'pad': 'p' * (n - 20), 'a': '', 'b': [1],
            'c': {'a': 'x' * 30}}))
    for i in range(12):
        p = program(rng, rng.randint(60000, 110000))
        if i % 3 == 0:
            p.append(('overview', 'o' * rng.choice([65535, 65536, 70000])))
        heads.append(dump(p, rng))
    for _ in range(20):
        heads.append(dump(rand_dict(rng), rng))
    tails = ['"pathway_ids": [3]', '"pathway_ids": []',
        '"pathway_ids": ' + json.dumps(list(range(1500))),
        '"pathway_ids": "%s"' % ('w' * 70000), '"%s": 1' % ('q' * 70000)]
    docs = []
    for i, h in enumerate(heads):
        for t in (tails if i % 4 == 0 else tails[:1] + tails[3:]):
            docs.append(h.rstrip()[:-1] + ', ' + t + '}')
    return docs


def rand_dict(rng):
    d = Pairs()
    for _ in range(rng.randint(1, 8)):
        d.append((rand_key(rng, KEYS), rand_value(rng, 4, KEYS)))
    return d


def run_tool(proto, doc, *opts):
    return subprocess.run([TOOL, *opts, str(proto)], input=doc.encode(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run_all(docs, *opts):
    """Run the tool on every (doc, proto), a process per CPU at a time."""
    jobs = [(doc, proto) for doc in docs for proto in PROTOS]
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as ex:
        results = ex.map(lambda j: run_tool(j[1], j[0], *opts), jobs)
        return list(zip(jobs, results))


class PickleDiffTest(unittest.TestCase):

    def check(self, docs, *opts):
        for i, ((doc, proto), r) in enumerate(run_all(docs, *opts)):
            with self.subTest(doc=i // len(PROTOS), proto=proto,
                    size=len(doc)):
                self.assertEqual(r.returncode, 0, r.stderr.decode())
                value = json.loads(doc)
                want = pickle.dumps(value, proto)
                if r.stdout != want:
                    self.fail('bytes differ at offset %d (len %d vs %d)'
                        % (first_diff(r.stdout, want), len(r.stdout),
                        len(want)))
                self.assertEqual(pickle.loads(r.stdout), value)

    def test_documents(self):
        docs = documents()
        self.assertGreater(len(docs), 300)
        self.assertGreater(sum(len(d) > 65536 for d in docs), 40)
        self.check(docs)

    def test_resumed(self):
        """Finishing the outermost dict from a checkpoint, as for programs."""
        self.check(resumed_documents(), '-c')

    def test_numbers_beyond_jansson(self):
        """Ints of any size and reals that overflow a double (which jansson
        refuses) come out as Python's json makes them: LONG1/LONG4 ints and
        inf, byte for byte."""
        big = [2 ** 63, -2 ** 63 - 1, 2 ** 64, -2 ** 64, 2 ** 70 + 1,
               -(2 ** 70) - 1, 10 ** 40, -10 ** 40, 2 ** 2047, -2 ** 2047,
               2 ** 2048, 10 ** 700, -10 ** 700, -(2 ** 71), 2 ** 71 - 1]
        docs = ['[%s]' % ', '.join(str(b) for b in big),
                '{"a": %d, "b": [1e400, -1e400, 1e-400, 2.5], "c": %d}'
                % (2 ** 80, -3 ** 90),
                '{"price": {"total": %d}, "x": "text"}' % (2 ** 70 + 1)]
        self.check(docs)
        # A string spelling the loader's (old) mark stays a string.
        self.check(['["\\u0000pcd-number:1", %d]' % 2 ** 70,
                    '["\\u0000p\\u0063d-number:1", "\\u00ffpcd-number:2", %d]'
                    % 2 ** 70])

    def test_fuzz_corpus(self):
        """The fuzzer's inputs (tests/fuzz/corpus/pickle, minimised from
        `make fuzz` runs) that both jansson and Python's json accept give
        CPython's bytes exactly."""
        corpus = os.path.join(os.path.dirname(__file__), "..", "fuzz",
                              "corpus", "pickle")
        docs = []
        for name in sorted(os.listdir(corpus)):
            with open(os.path.join(corpus, name), "rb") as f:
                raw = f.read()
            try:
                text = raw.decode("utf-8")
                json.loads(text)
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue
            if run_tool(5, text).returncode == 0:
                docs.append(text)
        self.assertGreater(len(docs), 20)
        self.check(docs)

    def test_parse_error(self):
        r = run_tool(5, '{"a": ')
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, b'')
        self.assertIn(b'pickle_json:', r.stderr)

    def test_too_deep(self):
        r = run_tool(5, '[' * 201 + ']' * 201)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b'nesting deeper than 200 levels', r.stderr)
        r = run_tool(5, '[' * 200 + ']' * 200)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout, pickle.dumps(json.loads('[' * 200 +
            ']' * 200), 5))


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


if __name__ == '__main__':
    unittest.main()
