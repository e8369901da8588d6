"""
keys.c and place.c against the Python they stand in for.

build/keytool prints what the C library computes for each line of stdin.
The same few thousand keys (ASCII, spaces, reserved and control characters,
"Ünïcode Org", CJK, emoji, long ones either side of 250 characters) go
through

  * edx-platform's safe_key (common/djangoapps/util/memcache.py, copied below
    verbatim) with urllib.parse.quote_plus and hashlib, MD4 and BLAKE2b-128;
  * Django's default_key_func and the checks that make Django
    (memcache_key_warnings) and pymemcache (check_key_helper) refuse a key;
  * pymemcache's RendezvousHash, nodes added in order, for 1, 2, 3 and 5
    nodes and for node names built to tie on every key.

MD4 needs OpenSSL's legacy provider on OpenSSL 3, so safe_key runs in a
child interpreter whose OPENSSL_CONF activates the default and legacy
providers.
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import unittest
from urllib.parse import quote_plus

BUILD = os.environ.get('PCD_BUILD', 'build')
KEYTOOL = os.path.join(BUILD, 'keytool')

OPENSSL_LEGACY_CONF = """\
openssl_conf = openssl_init

[openssl_init]
providers = provider_sect

[provider_sect]
default = default_sect
legacy = legacy_sect

[default_sect]
activate = 1

[legacy_sect]
activate = 1
"""

# common/djangoapps/util/memcache.py, the newest upstream version,
# with stand-ins for django.conf.settings and edx_django_utils' increment.
SAFE_KEY = r'''
import hashlib
from urllib.parse import quote_plus

from django.utils.encoding import smart_str


class settings:
    FEATURES = {}


def increment(name):
    pass


def fasthash(string):
    """
    Hashes `string` into a string representation of a 128-bit digest.
    """
    if settings.FEATURES.get("ENABLE_BLAKE2B_HASHING", False):
        hash_obj = hashlib.new("blake2b", digest_size=16)
    else:
        hash_obj = hashlib.new("md4")
    hash_obj.update(string.encode('utf-8'))
    return hash_obj.hexdigest()


def cleaned_string(val):
    """
    Converts `val` to unicode and URL-encodes special characters
    (including quotes and spaces)
    """
    return quote_plus(smart_str(val))


def safe_key(key, key_prefix, version):
    """
    Given a `key`, `key_prefix`, and `version`,
    return a key that is safe to use with memcache.

    `key`, `key_prefix`, and `version` can be numbers, strings, or unicode.
    """

    # Clean for whitespace and control characters, which
    # cause memcache to raise an exception
    key = cleaned_string(key)
    key_prefix = cleaned_string(key_prefix)
    version = cleaned_string(version)

    # Attempt to combine the prefix, version, and key
    combined = ":".join([key_prefix, version, key])

    # Temporary: Add observability to large-key hashing to help us
    # understand the safety of a cutover from md4 to blake2b hashing.
    # See https://github.com/edx/edx-arch-experiments/issues/872
    increment('memcache.safe_key.called')

    # If the total length is too long for memcache, hash it
    if len(combined) > 250:
        combined = fasthash(combined)
        # Temporary: See
        # https://github.com/edx/edx-arch-experiments/issues/872 and
        # previous comment.
        increment('memcache.safe_key.hash_large')

    # Return the result
    return combined
'''

# Reads {"blake2b", "prefix", "version", "keys"} as JSON, prints the keys.
SAFE_KEY_DRIVER = SAFE_KEY + r'''
import json
import sys

job = json.load(sys.stdin)
settings.FEATURES["ENABLE_BLAKE2B_HASHING"] = job["blake2b"]
json.dump([safe_key(k, job["prefix"], job["version"]) for k in job["keys"]],
          sys.stdout)
'''

# (prefix, version) pairs; quote_plus applies to these too.
KEY_CONFIGS = [
    ('default', '1'),
    ('general', '2'),
    ('my prefix/ü', '1.0+a'),
    ('', ''),
]

NODE_SETS = [
    ['10.0.0.1:11211'],
    ['10.0.0.1:11211', '10.0.0.2:11211'],
    ['10.0.0.1:11211', '10.0.0.2:11211', '10.0.0.3:11211'],
    ['memcached-0:11211', 'memcached-1:11211', 'memcached-2:11211',
     'cache.example.org:11212', '192.168.1.20:11211'],
]

TIE_SETS = [
    # Built so that murmur3 agrees on every key: every key ties, and the
    # larger name wins.  The second pair compares U+DCF5 (the byte 0xf5,
    # as surrogateescape decodes it) with U+E000: code points, not bytes.
    # With the index of the smaller name, which never wins.
    (['node-a:1qBW2', 'node-b:1P15b'], 0),
    (['node-b:1P15b', 'node-a:1qBW2'], 1),
    (['node-a:1qBW2', '10.0.0.1:11211', 'node-b:1P15b'], 0),
    (['n\udcf5:1ATtN', 'n\ue000:1u9G5'], 0),
    (['n\ue000:1u9G5', 'n\udcf5:1ATtN'], 1),
    (['10.0.0.2:11211', 'n\ue000:1u9G5', 'n\udcf5:1ATtN'], 2),
]

ASCII = ('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
         '_.-~')
RESERVED = ' :/?#[]@!$&\'()*+,;=%"<>\\^`{|}'
CONTROL = '\t\r\x00\x01\x1f\x7f\x0b\x0c'
NON_ASCII = ('Üïéñßø\u00a0\u0085ΩЖ中文课程键\u3000\u2028\ufeff'
             '\U0001f393\U0001f600\U0010ffff')


def make_keys(n=3000, seed=20250601):
    """Keys an LMS might use, and many it should not."""
    rng = random.Random(seed)
    keys = [
        'program-6f9c4e3a-2b1d-4c8e-9f0a-1234567890ab',
        'course-programs-course-v1:edX+DemoX+Demo_Course',
        'course-programs-edX/DemoX/Demo_Course',
        'programs-by-type-1-professional certificate',
        'organization-programs-Ünïcode Org',
        'organization-programs-清华大学',
        'course-programs-course-v1:' + 'A' * 250,
        '',
    ]
    # Either side of 250 characters once quoted, with default:1:.
    for n_a in range(235, 246):
        keys.append('a' * n_a)
        keys.append('a' * (n_a - 3) + ':')
        keys.append('a' * (n_a - 6) + 'Ü')
        keys.append('a' * (n_a - 2) + ' ')
    pools = [ASCII, ASCII + RESERVED, ASCII + ' ', ASCII + NON_ASCII,
             ASCII + RESERVED + NON_ASCII + CONTROL, NON_ASCII]
    while len(keys) < n:
        kind = rng.random()
        if kind < 0.2:
            keys.append('program-%08x-%04x-%04x-%04x-%012x' % (
                rng.getrandbits(32), rng.getrandbits(16),
                rng.getrandbits(16), rng.getrandbits(16),
                rng.getrandbits(48)))
        elif kind < 0.3:
            keys.append('course-programs-course-v1:%s+%s+%s' % tuple(
                ''.join(rng.choice(ASCII + NON_ASCII[:6]) for _ in
                        range(rng.randint(1, 40))) for _ in range(3)))
        else:
            pool = rng.choice(pools)
            length = rng.choice([rng.randint(0, 40), rng.randint(60, 120),
                                 rng.randint(200, 300)])
            keys.append(''.join(rng.choice(pool) for _ in range(length)))
    assert not any('\n' in k for k in keys)
    return keys


# Keys that are not UTF-8 as the C side sees them (surrogateescape here).
INVALID_UTF8 = [
    b'k\xe9y', b'k\xe4\xb8', b'\xed\xa0\x80', b'\xc0\xaf', b'\xff\xfe',
    b'\xf4\x90\x80\x80', b'\xf0\x9f\x8e', b'\x80abc', b'abc\xf5',
    b'\xe0\x80\xaf', b'\xf0\x80\x80\xaf', b'\xc2', b'\xe1\x80',
    b'default:1:\xce\xa9\xce',
]


def run_keytool(args, keys):
    """Run keytool on keys (str, surrogateescape for raw bytes)."""
    data = b''.join(k.encode('utf-8', 'surrogateescape') + b'\n'
                    for k in keys)
    proc = subprocess.run([KEYTOOL] + args, input=data,
                          stdout=subprocess.PIPE, check=True)
    out = proc.stdout.split(b'\n')
    if out and out[-1] == b'':
        out.pop()
    return [line.decode('utf-8', 'surrogateescape') for line in out]


class KeysDiffTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(KEYTOOL, os.X_OK):
            raise unittest.SkipTest('%s not built' % KEYTOOL)
        cls.keys = make_keys()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.openssl_conf = os.path.join(cls.tmp.name, 'openssl.cnf')
        with open(cls.openssl_conf, 'w') as f:
            f.write(OPENSSL_LEGACY_CONF)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def safe_keys(self, blake2b, prefix, version, keys):
        """safe_key for each key, in a child with MD4 available."""
        env = dict(os.environ, OPENSSL_CONF=self.openssl_conf)
        job = json.dumps({'blake2b': blake2b, 'prefix': prefix,
                          'version': version, 'keys': keys})
        proc = subprocess.run([sys.executable, '-c', SAFE_KEY_DRIVER],
                              input=job.encode(), stdout=subprocess.PIPE,
                              env=env, check=True)
        return json.loads(proc.stdout)

    def assertSameLists(self, keys, got, want, what):
        self.assertEqual(len(got), len(want), what)
        for key, g, w in zip(keys, got, want):
            if g != w:
                self.fail('%s: key %r: C %r, Python %r' % (what, key, g, w))

    def test_quote_plus(self):
        keys = self.keys + [b.decode('utf-8', 'surrogateescape')
                            for b in INVALID_UTF8]
        want = [quote_plus(k.encode('utf-8', 'surrogateescape'))
                for k in keys]
        self.assertSameLists(keys, run_keytool(['quote'], keys), want,
                             'quote_plus')

    def test_safe_key(self):
        env = dict(os.environ, OPENSSL_CONF=self.openssl_conf)
        probe = subprocess.run([sys.executable, '-c',
                                'import hashlib; hashlib.new("md4")'],
                               env=env, stderr=subprocess.DEVNULL)
        hashes = ['blake2b']
        if probe.returncode == 0:
            hashes.append('md4')
        hashed = 0
        for name in hashes:
            for prefix, version in KEY_CONFIGS:
                want = self.safe_keys(name == 'blake2b', prefix, version,
                                      self.keys)
                got = run_keytool(['edx', name, prefix, version], self.keys)
                self.assertSameLists(self.keys, got, want, 'safe_key %s %r %r'
                                     % (name, prefix, version))
                hashed += sum(1 for k in want if ':' not in k)
        self.assertGreater(hashed, 500)
        if 'md4' not in hashes:
            self.skipTest('MD4 unavailable even with the legacy provider')

    def test_django_key(self):
        from django.core.cache.backends.base import (default_key_func,
                                                     memcache_key_warnings)
        from pymemcache.client.base import check_key_helper
        from pymemcache.exceptions import MemcacheIllegalInputError

        def django_key(key, prefix, version):
            made = default_key_func(key, prefix, version)
            # BaseMemcachedCache.validate_key raises on the first warning.
            for _ in memcache_key_warnings(made):
                return '-'
            try:
                # PyMemcacheCache sets allow_unicode_keys=True.
                check_key_helper(made, True)
            except MemcacheIllegalInputError:
                return '-'
            return made

        configs = KEY_CONFIGS + [('default', '1\t'), ('déf', '1')]
        accepted = 0
        for prefix, version in configs:
            want = [django_key(k, prefix, version) for k in self.keys]
            got = run_keytool(['django', prefix, version], self.keys)
            self.assertSameLists(self.keys, got, want, 'django %r %r'
                                 % (prefix, version))
            accepted += sum(1 for k in want if k != '-')
        self.assertGreater(accepted, 1000)

    def test_rendezvous(self):
        from pymemcache.client.rendezvous import RendezvousHash

        # What HashClient hashes: safe_key output, and raw keys as the
        # django key function leaves them, including non-ASCII.
        keys = list(self.keys)
        keys += run_keytool(['edx', 'blake2b', 'default', '1'], self.keys)
        keys += ['default:1:' + k for k in self.keys[:1000]]
        keys += [b.decode('utf-8', 'surrogateescape') for b in INVALID_UTF8]
        for nodes, loser in ([(n, None) for n in NODE_SETS] + TIE_SETS):
            ring = RendezvousHash()
            for node in nodes:
                ring.add_node(node)
            want = [str(nodes.index(ring.get_node(k))) for k in keys]
            got = run_keytool(['place'] + nodes, keys)
            self.assertSameLists(keys, got, want, 'rendezvous %r' % nodes)
            if loser is None:
                # Every node wins some keys.
                self.assertEqual(len(set(want)), len(nodes), nodes)
            else:
                self.assertNotIn(str(loser), want, nodes)


if __name__ == '__main__':
    unittest.main()
