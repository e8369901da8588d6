"""rediscache.py: a real redis-server for the tests, and the LMS-side reader of a
Redis-backed programs cache.

Tutor's LMS reads its default cache with django-redis:

    CACHES["default"] = {"BACKEND": "django_redis.cache.RedisCache",
                         "LOCATION": "redis://redis:6379/1",
                         "KEY_PREFIX": "default", "VERSION": "1"}

RedisReader builds exactly that backend (Debian's python3-django-redis over
Django 3.2), optionally with Open edX's safe_key as KEY_FUNCTION, and
compares the cache with the reference the same way reader.Reader does:

    srv = RedisServer().start()
    r = RedisReader(srv, db=1)
    r.compare(expected)                  # -> [] when the cache matches
"""

import functools
import os
import shutil
import socket
import subprocess
import tempfile
import time

from . import reader as _reader
from .harness import _live, _preexec, free_port

__all__ = ["RedisServer", "RedisReader", "REDIS_SERVER"]

REDIS_SERVER = os.environ.get("PCD_REDIS_SERVER", "/usr/bin/redis-server")


class RedisServer:
    """A real redis-server on 127.0.0.1 without persistence (a restart
    empties it).  password: requirepass.  maxmemory: bytes, with
    maxmemory-policy noeviction (writes are refused with -OOM).
    restart() keeps the port; the run_id changes."""

    def __init__(self, port=None, password=None, maxmemory=None, extra_args=()):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._fixed_port = port is not None
        self.password = password
        self.maxmemory = maxmemory
        self.extra_args = list(extra_args)
        self.proc = None
        self._dir = tempfile.mkdtemp(prefix="pcd-redis-")
        self._log = None

    def url(self, db=1, password=False):
        """redis://host:port/db (with the password if password=True)."""
        auth = ":%s@" % self.password if password and self.password else ""
        return "redis://%s%s:%d/%d" % (auth, self.host, self.port, db)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def args(self):
        a = [REDIS_SERVER, "--port", str(self.port), "--bind", self.host,
             "--save", "", "--appendonly", "no", "--dir", self._dir,
             "--daemonize", "no", "--protected-mode", "no"]
        if self.password:
            a += ["--requirepass", self.password]
        if self.maxmemory:
            a += ["--maxmemory", str(self.maxmemory),
                  "--maxmemory-policy", "noeviction"]
        return a + self.extra_args

    def start(self, timeout=5.0):
        if self.running:
            return self
        for attempt in range(5):
            if self._log is not None:
                self._log.close()
            self._log = tempfile.TemporaryFile()
            self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=subprocess.STDOUT,
                                         preexec_fn=_preexec())
            _live.add(self)
            if self._wait_ready(timeout):
                return self
            self._log.seek(0)
            err = self._log.read().decode("utf-8", "replace")
            self._kill_quietly()
            _live.discard(self)
            if "already in use" in err and not self._fixed_port:
                self.port = free_port()
                continue
            if "already in use" in err and attempt < 4:
                time.sleep(0.2)
                continue
            raise RuntimeError("redis-server did not start: %s" % err.strip()[-500:])
        raise RuntimeError("redis-server: no free port")

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64)[:1] in (b"+", b"-"):  # PONG, or NOAUTH
                        return True
            except OSError:
                pass
            time.sleep(0.01)
        return False

    def client(self, db=1):
        """A redis-py client on db (Debian's python3-redis)."""
        import redis
        return redis.Redis(host=self.host, port=self.port, db=db,
                           password=self.password, socket_timeout=5)

    def flushdb(self, db=1):
        c = self.client(db)
        try:
            c.flushdb()
        finally:
            c.close()

    def keys(self, db=1):
        """Every key of db, as str."""
        c = self.client(db)
        try:
            return {k.decode("utf-8") for k in c.keys("*")}
        finally:
            c.close()

    def info(self):
        c = self.client(0)
        try:
            return c.info("server")
        finally:
            c.close()

    def stop(self, timeout=5.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _live.discard(self)

    def kill9(self):
        """SIGKILL: without persistence the data is gone."""
        self._kill_quietly()
        _live.discard(self)

    def restart(self, timeout=5.0):
        self.kill9()
        self._fixed_port = True
        return self.start(timeout)

    def _kill_quietly(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        self.kill9()
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self._dir, ignore_errors=True)


class RedisReader(_reader.Reader):
    """django_redis.cache.RedisCache as Tutor configures it (KEY_PREFIX
    "default", VERSION "1", db 1, no KEY_FUNCTION), or with Open edX's
    safe_key (key_function="edx").  compare() and the other Reader methods
    work the same."""

    def __init__(self, server, db=1, key_function="django", prefix="default",
                 version="1", long_key_hash="md4"):
        super().__init__(["%s:%d" % (server.host, server.port)],
                         key_function=key_function, prefix=prefix, version=version,
                         long_key_hash=long_key_hash, options={})
        self.server = server
        self.db = db

    @property
    def cache(self):
        if self._cache is None:
            _reader._setup_django()
            from django_redis.cache import RedisCache
            key_func = functools.partial(_reader.safe_key, long_key_hash=self.long_key_hash) \
                if self.key_function == "edx" else None
            params = {"KEY_PREFIX": self.prefix, "VERSION": self.version,
                      "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"}}
            if key_func is not None:
                params["KEY_FUNCTION"] = key_func
            if self.server.password:
                params["OPTIONS"]["PASSWORD"] = self.server.password
            self._cache = RedisCache(self.server.url(self.db), params)
        return self._cache

    def close(self):
        self._cache = None

    reconnect = close

    def make_key(self, key):
        return str(self.cache.make_key(key))

    def key_problem(self, key):
        return None  # Redis takes any key

    def server_of(self, key):
        return self.server.url(self.db)

    def raw(self, key):
        """The bytes stored for key (no flags in Redis); None on a miss."""
        c = self.server.client(self.db)
        try:
            return c.get(self.make_key(key))
        finally:
            c.close()

    def extra_keys(self, expected):
        return self.server.keys(self.db) - set(self.wire_keys(expected))
