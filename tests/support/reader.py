"""reader.py: read the programs cache the way the LMS does, and raw memcached helpers.

The LMS reads with Django's PyMemcacheCache (pymemcache HashClient,
pickle_serde) configured as openedx-platform's CACHES['default']
(lms/envs/common.py) and Open edX's KEY_FUNCTION safe_key (memcache.py).
Reader builds exactly that backend, so what it gets is what the LMS gets:

    r = Reader(["127.0.0.1:%d" % port])          # key_function="edx", md4
    r.get("program-<uuid>")                      # -> dict, or None on a miss
    r.get_many(["program-a", "program-b"])       # -> {key: value} (hits only)
    r.make_key("course-programs-course-v1:a+b+c")  # -> the wire key
    r.compare(expected)                          # -> [] when the cache matches
    r.close()

Raw helpers talk the memcached text protocol over a socket (no client
library in between): raw_get, raw_set, raw_delete, dump_keys, stats,
flush_all.

Long keys: safe_key hashes keys over 250 characters with MD4 (upstream
default) or BLAKE2b-128.  Debian 12's OpenSSL 3 hides MD4 from hashlib, so
MD4 falls back to ``openssl dgst -md4 -provider legacy -provider default``.
"""

import functools
import hashlib
import pickle
import socket
import subprocess
import time
from urllib.parse import quote_plus, unquote

__all__ = ["Reader", "safe_key", "fasthash", "md4_hexdigest", "first_difference",
           "raw_get", "raw_set", "raw_delete", "dump_keys", "stats", "flush_all",
           "UPSTREAM_OPTIONS"]

# openedx-platform CACHES['default']['OPTIONS'] (openedx/envs/common.py).
UPSTREAM_OPTIONS = {"no_delay": True, "ignore_exc": True, "use_pooling": True,
                    "connect_timeout": 0.5}

_django_ready = False


def _setup_django():
    """Configure Django once per process, minimally (no apps, no database)."""
    global _django_ready
    if _django_ready:
        return
    import warnings
    with warnings.catch_warnings():
        # Django 3.2 on Python 3.11: 'cgi' and getdefaultlocale deprecations.
        warnings.simplefilter("ignore", DeprecationWarning)
        import django
        from django.conf import settings
        if not settings.configured:
            settings.configure(
                CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
                INSTALLED_APPS=[], USE_TZ=True, SECRET_KEY="programs-cached-tests")
        django.setup()
        import django.core.cache.backends.memcached  # noqa: F401
        from django.utils.encoding import smart_str as _  # noqa: F401
        import django.http  # noqa: F401  (imports cgi)
    _django_ready = True


# --- common/djangoapps/util/memcache.py (upstream) ---------------------------

@functools.lru_cache(maxsize=4096)
def md4_hexdigest(data):
    """MD4 of bytes: hashlib if the OpenSSL build offers it, else the openssl
    command line with the legacy provider."""
    try:
        h = hashlib.new("md4")
    except ValueError:
        out = subprocess.run(["openssl", "dgst", "-md4", "-provider", "legacy",
                              "-provider", "default"], input=data,
                             capture_output=True, check=True)
        return out.stdout.decode("ascii").strip().rsplit("= ", 1)[-1]
    h.update(data)
    return h.hexdigest()


class _MD4:
    """The part of the hashlib object interface fasthash uses."""

    def __init__(self):
        self._data = b""

    def update(self, data):
        self._data += data

    def hexdigest(self):
        return md4_hexdigest(self._data)


def smart_str(val):
    _setup_django()
    from django.utils.encoding import smart_str as _smart_str
    return _smart_str(val)


def fasthash(string, long_key_hash="md4"):
    """
    Hashes `string` into a string representation of a 128-bit digest.
    """
    # upstream: if settings.FEATURES.get("ENABLE_BLAKE2B_HASHING", False):
    if long_key_hash == "blake2b":
        hash_obj = hashlib.new("blake2b", digest_size=16)
    else:
        hash_obj = _MD4()  # upstream: hashlib.new("md4")
    hash_obj.update(string.encode('utf-8'))
    return hash_obj.hexdigest()


def cleaned_string(val):
    """
    Converts `val` to unicode and URL-encodes special characters
    (including quotes and spaces)
    """
    return quote_plus(smart_str(val))


def safe_key(key, key_prefix, version, long_key_hash="md4"):
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

    # If the total length is too long for memcache, hash it
    if len(combined) > 250:
        combined = fasthash(combined, long_key_hash)

    # Return the result
    return combined


# --- comparing values ------------------------------------------------------------

def _short(v, n=80):
    r = repr(v)
    return r if len(r) <= n else r[:n - 3] + "..."


def first_difference(expected, got, path="", strict=True):
    """A one-line description of the first place where got differs from
    expected, or None if they are equal.  strict: types must match exactly
    (True is not 1, 1 is not 1.0) and dict keys must be in the same order."""
    if strict and type(expected) is not type(got):
        return "%s: expected %s %s, got %s %s" % (path or "value", type(expected).__name__,
                                               _short(expected), type(got).__name__,
                                               _short(got))
    if isinstance(expected, dict) and isinstance(got, dict):
        missing = [k for k in expected if k not in got]
        if missing:
            return "%s: missing key %s" % (path or "value", _short(missing[0]))
        extra = [k for k in got if k not in expected]
        if extra:
            return "%s: unexpected key %s" % (path or "value", _short(extra[0]))
        for k in expected:
            d = first_difference(expected[k], got[k], "%s[%r]" % (path, k), strict)
            if d:
                return d
        if strict and list(expected) != list(got):
            return "%s: key order %s, expected %s" % (path or "value", _short(list(got)),
                                                     _short(list(expected)))
        return None
    if isinstance(expected, list) and isinstance(got, list):
        for i, (a, b) in enumerate(zip(expected, got)):
            d = first_difference(a, b, "%s[%d]" % (path, i), strict)
            if d:
                return d
        if len(expected) != len(got):
            return "%s: expected %d items, got %d (%s)" % (
                path or "value", len(expected), len(got),
                "extra " + _short(got[len(expected)]) if len(got) > len(expected)
                else "missing " + _short(expected[len(got)]))
        return None
    if expected != got:
        return "%s: expected %s, got %s" % (path or "value", _short(expected), _short(got))
    return None


# --- the LMS-side reader -------------------------------------------------------------

def _server_spec(s):
    if isinstance(s, int):
        return "127.0.0.1:%d" % s
    if isinstance(s, tuple):
        return "%s:%d" % s
    if hasattr(s, "address"):
        return s.address
    return str(s)


def _split(spec):
    host, _, port = spec.rpartition(":")
    return host, int(port)


class Reader:
    """An LMS-configured Django cache backend over servers (see module doc).

    servers: a "host:port" string or a list of them (order matters, as in
    LOCATION), ports (ints, on 127.0.0.1) or harness.Memcached objects.
    key_function: "edx" (safe_key) or "django" (Django's default, unquoted).
    options: pymemcache options (default: upstream's, UPSTREAM_OPTIONS).
    Note pymemcache marks a server dead for 60 s after failures; call
    reconnect() after restarting memcached.
    """

    _MISSING = object()

    def __init__(self, servers, key_function="edx", prefix="default", version="1",
                 long_key_hash="md4", options=None):
        if key_function not in ("edx", "django"):
            raise ValueError("key_function must be 'edx' or 'django'")
        if long_key_hash not in ("md4", "blake2b"):
            raise ValueError("long_key_hash must be 'md4' or 'blake2b'")
        if not isinstance(servers, (list, tuple)) or (
                isinstance(servers, tuple) and len(servers) == 2 and isinstance(servers[1], int)):
            servers = [servers]
        self.servers = [_server_spec(s) for s in servers]
        self.key_function = key_function
        self.prefix = prefix
        self.version = version
        self.long_key_hash = long_key_hash
        self.options = dict(UPSTREAM_OPTIONS if options is None else options)
        self._cache = None

    @property
    def cache(self):
        """The django.core.cache.backends.memcached.PyMemcacheCache."""
        if self._cache is None:
            _setup_django()
            from django.core.cache.backends.memcached import PyMemcacheCache
            key_func = functools.partial(safe_key, long_key_hash=self.long_key_hash) \
                if self.key_function == "edx" else None
            self._cache = PyMemcacheCache(list(self.servers), {
                "KEY_PREFIX": self.prefix, "VERSION": self.version,
                "KEY_FUNCTION": key_func, "OPTIONS": dict(self.options)})
        return self._cache

    def close(self):
        """Close every connection of the backend."""
        if self._cache is not None:
            try:
                self._cache._cache.close()
            except Exception:
                pass
            self._cache = None

    reconnect = close  # the next call builds a fresh backend

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def make_key(self, key):
        """The key on the wire for an unprefixed cache key."""
        return self.cache.make_key(key)

    def key_problem(self, key):
        """Why memcached (and Django) cannot use this key, or None."""
        from django.core.cache.backends.base import memcache_key_warnings
        for w in memcache_key_warnings(self.make_key(key)):
            return w
        return None

    def server_of(self, key):
        """The "host:port" that pymemcache's HashClient reads key from."""
        return self.cache._cache.hasher.get_node(self.make_key(key))

    def raw(self, key):
        """(flags, bytes) stored for key on the server HashClient picks for
        it, read with the raw protocol; None on a miss."""
        return raw_get(*_split(self.server_of(key)), self.make_key(key))

    def get(self, key, default=None):
        """cache.get(key): the unpickled value, or default on a miss."""
        return self.cache.get(key, default)

    def get_many(self, keys):
        """cache.get_many(keys): {key: value} for the hits."""
        return self.cache.get_many(list(keys))

    def set_many(self, mapping):
        """cache.set_many(mapping, None), as cache_programs writes (for tests
        of the infrastructure; returns the keys that failed)."""
        return self.cache.set_many(dict(mapping), None)

    def wire_keys(self, keys):
        """{wire key: key} for unprefixed keys."""
        return {self.make_key(k): k for k in keys}

    def compare(self, expected, strict=True, batch=500, limit=None):
        """Differences between the cache and expected ({key: value}), as
        readable lines: "missing: ...", "differs: ...", "invalid key: ...".
        [] means the LMS reads every expected value, equal (and, with strict,
        of the same types and dict key order)."""
        diffs = []
        keys = list(expected)
        valid = []
        for k in keys:
            problem = self.key_problem(k)
            if problem:
                diffs.append("invalid key: %r: %s" % (k, problem))
            else:
                valid.append(k)
        for i in range(0, len(valid), batch):
            chunk = valid[i:i + batch]
            got = self.get_many(chunk)
            for k in chunk:
                if k not in got:
                    diffs.append("missing: %r (wire %r on %s)" % (k, self.make_key(k),
                                                                self.server_of(k)))
                    continue
                d = first_difference(expected[k], got[k], strict=strict)
                if d:
                    diffs.append("differs: %r: %s" % (k, d))
            if limit and len(diffs) >= limit:
                break
        return diffs[:limit] if limit else diffs

    def extra_keys(self, expected):
        """Wire keys present on the servers that expected does not explain."""
        want = set(self.wire_keys(expected))
        have = set()
        for s in self.servers:
            have |= dump_keys(*_split(s))
        return have - want


# --- raw memcached text protocol ---------------------------------------------------------

class _Conn:
    """A blocking text-protocol connection with a read buffer."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("memcached closed the connection")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _key_bytes(key):
    return key.encode("utf-8") if isinstance(key, str) else key


def raw_get(host, port, wire_key):
    """(flags, bytes) stored under wire_key, or None."""
    with _Conn(host, port) as c:
        c.send(b"get " + _key_bytes(wire_key) + b"\r\n")
        line = c.line()
        if line == b"END":
            return None
        parts = line.split()
        if parts[0] != b"VALUE":
            raise RuntimeError("memcached: %r" % line)
        flags, size = int(parts[2]), int(parts[3])
        data = c.exactly(size + 2)[:-2]
        end = c.line()
        if end != b"END":
            raise RuntimeError("memcached: expected END, got %r" % end)
        return flags, data


def raw_set(host, port, wire_key, data, flags=0, exptime=0):
    """Store bytes (or a value pickled like pymemcache when pickle_value is
    wanted: pass pickle.dumps(v) and flags=1).  Returns the reply line."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with _Conn(host, port) as c:
        c.send(b"set %s %d %d %d\r\n%s\r\n" % (_key_bytes(wire_key), flags, exptime,
                                                len(data), data))
        return c.line().decode("ascii", "replace")


def raw_set_value(host, port, wire_key, value, protocol=pickle.HIGHEST_PROTOCOL):
    """Store value as pymemcache's pickle_serde would (flags 1)."""
    return raw_set(host, port, wire_key, pickle.dumps(value, protocol), flags=1)


def raw_delete(host, port, wire_key):
    """Delete wire_key; True if it existed."""
    with _Conn(host, port) as c:
        c.send(b"delete " + _key_bytes(wire_key) + b"\r\n")
        return c.line() == b"DELETED"


def dump_keys(host, port, retries=50):
    """The set of wire keys on the server (lru_crawler metadump all; its
    lines end in a bare LF, then "END" CRLF).  The crawler can miss items
    that memcached's LRU maintainer moves while it walks (recently read
    ones), so a dump with fewer keys than curr_items is taken again."""
    best = None
    for _ in range(retries):
        keys = _dump_once(host, port, retries)
        if best is None or len(keys) > len(best):
            best = keys
        if len(best) >= int(stats(host, port).get("curr_items", 0)):
            return best
        time.sleep(0.05)
    return best


def _dump_once(host, port, retries):
    for _ in range(retries):
        with _Conn(host, port, timeout=10.0) as c:
            c.send(b"lru_crawler metadump all\r\n")
            while not (c.buf == b"END\r\n" or c.buf.endswith(b"\nEND\r\n") or
                       (c.buf.startswith((b"BUSY", b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR"))
                        and c.buf.endswith(b"\r\n"))):
                c._fill()
            data = c.buf
        if data.startswith(b"BUSY"):
            time.sleep(0.02)
            continue
        if data.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
            raise RuntimeError("memcached metadump: %r" % data.strip())
        keys = set()
        for line in data.split(b"\n"):
            for field in line.split(b" "):
                if field.startswith(b"key="):
                    keys.add(unquote(field[4:].decode("ascii")))
                    break
        return keys
    raise RuntimeError("memcached metadump: crawler stayed busy")


def stats(host, port, group=None):
    """`stats [group]` as a dict; integer and float values converted."""
    out = {}
    with _Conn(host, port) as c:
        c.send(b"stats" + (b" " + group.encode() if group else b"") + b"\r\n")
        while True:
            line = c.line()
            if line == b"END":
                return out
            if not line.startswith(b"STAT "):
                raise RuntimeError("memcached stats: %r" % line)
            _, name, value = line.decode("utf-8", "replace").split(" ", 2)
            try:
                out[name] = int(value)
            except ValueError:
                try:
                    out[name] = float(value)
                except ValueError:
                    out[name] = value


def flush_all(host, port):
    """Invalidate every item on the server."""
    with _Conn(host, port) as c:
        c.send(b"flush_all\r\n")
        line = c.line()
        if line != b"OK":
            raise RuntimeError("memcached flush_all: %r" % line)
