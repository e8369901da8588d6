"""The reader watch's connections (the reader watch, the change key) against real servers:
memcached's `watch` stream (mcwatch.c) and Redis keyspace notifications
(rdwatch.c), driven by build/watchtool, read by Django's own cache clients
(pymemcache through Django, django-redis), with the daemon's store doing the
daemon's reads and writes.  What is checked: lines and events arrive; the
daemon's own reads and writes are flagged own and a reader's are not; a
memcached started with -W is reported unavailable; a restarted server is
seen (pid, run_id); Redis without the notification flags in auto mode names
the exact CONFIG SET line, and in on mode sets them, keeping the flags set;
refusals (password, ACL) are reported, not fatal; and a peer that does not
speak memcached's protocol is dropped and counted."""

import os
import queue
import re
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

from tests.support.harness import PcdTestCase, REPO
from tests.support.rediscache import RedisReader, RedisServer

STREAMS = "fetchers evictions connevents"


def tool_binary():
    build = Path(os.environ.get("PCD_BUILD", "build"))
    if not build.is_absolute():
        build = REPO / build
    return str(build / "watchtool")


class WatchTool:
    """build/watchtool running; its stdout lines collected by a thread."""

    def __init__(self, args, env=None):
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([tool_binary()] + [str(a) for a in args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err,
                                     env=dict(os.environ, **(env or {})))
        self.lines = []
        self._q = queue.Queue()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            self._q.put(line)

    def send(self, cmd):
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()

    def wait(self, pattern, timeout=10.0, since=0):
        """The first line from index since matching the regex pattern."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines[since:]:
                if rx.search(line):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no line matching %r in %.1f s; got:\n  %s"
                                     % (pattern, timeout, "\n  ".join(self.lines[-40:])))
            try:
                self._q.get(timeout=min(left, 0.1))
            except queue.Empty:
                pass

    def mark(self):
        return len(self.lines)

    def wait_index(self, pattern, timeout=10.0, since=0):
        """The index of the first line from since matching pattern."""
        line = self.wait(pattern, timeout, since)
        return self.lines.index(line, since)

    def command(self, cmd, timeout=10.0):
        """Send cmd and return its "done" line."""
        since = self.mark()
        self.send(cmd)
        return self.wait(r"^done " + re.escape(cmd.split()[0]) + r"\b", timeout, since)

    def close(self):
        """End the tool (end of input); its exit status and stderr."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._t.join(5)
        self.proc.stdout.close()
        self._err.seek(0)
        err = self._err.read().decode("utf-8", "replace")
        self._err.close()
        return self.proc.returncode, err


def field(line, name):
    m = re.search(r"\b%s=(\S*)" % name, line)
    return m.group(1) if m else None


def uri(key):
    """A key as watchtool prints it."""
    return "".join(c if c.isalnum() and c.isascii() or c in "-._~" else
                   "".join("%%%02X" % b for b in c.encode()) for c in key)


class WatchCase(PcdTestCase):

    def tool(self, *args, env=None):
        t = WatchTool(args, env)

        def close():
            rc, err = t.close()
            # a clean exit at the end of input: no crash, no sanitizer report
            self.assertEqual(rc, 0, err)
            self.assertNotIn("Sanitizer", err)
            self.assertNotIn("runtime error", err)
        self.addCleanup(close)
        return t

    def store_config(self, section, keys):
        lines = ["[%s]" % section] + ["%s = %s" % kv for kv in keys.items()]
        lines += ["[site lms.example.com]", "site_id = 1", ""]
        return self.write_file("store.conf", "\n".join(lines))


class Memcached(WatchCase):

    def test_lines_own_and_reader(self):
        """A Django reader's gets arrive with their wire keys, not own; the
        daemon's store's reads and writes (the set's own fetch included)
        arrive own."""
        mc = self.start_memcached()
        conf = self.store_config("memcached", {"servers": mc.address})
        t = self.tool("mc", mc.host, mc.port, STREAMS, conf)
        up = t.wait(r"^state up ")
        self.assertEqual(int(field(up, "pid")), mc.pid)
        self.assertEqual(field(up, "version"), "1.6.18")

        r = self.reader([mc.address])
        run = "course-programs-course-v1:edX+DemoX+1T2025"
        self.assertIsNone(r.get(run))
        wire = r.make_key(run)
        line = t.wait(r"^line get key=%s status=0 " % re.escape(uri(wire)))
        self.assertEqual(field(line, "own"), "0")

        since = t.mark()
        done = t.command("own-set %s v" % wire)
        self.assertIn("rc=0 flush=0", done)
        done = t.command("own-get %s" % wire)
        self.assertIn("hit=1", done)
        t.wait(r"^line get key=%s status=1 " % re.escape(uri(wire)), since=since)
        own = [l for l in t.lines[since:] if l.startswith("line get ")]
        # self key, the set's fetch, the barrier; self key, the get
        keys = [field(l, "key") for l in own]
        self.assertEqual(keys.count(uri(wire)), 2, own)
        self.assertTrue(all(field(l, "own") == "1" for l in own), own)

        # the reader again: a hit now, and still not own
        since = t.mark()
        r.get(run)
        line = t.wait(r"^line get key=%s status=1 " % re.escape(uri(wire)), since=since)
        self.assertEqual(field(line, "own"), "0")
        self.assertIn("bad=0", t.command("counts"))

    def test_refused_by_W(self):
        """memcached -W: the watch is unavailable, with the server's reply."""
        mc = self.start_memcached(extra_args=["-W"])
        t = self.tool("mc", mc.host, mc.port, STREAMS)
        line = t.wait(r"^state unavailable ")
        self.assertIn("why=CLIENT_ERROR watch commands not allowed", line)
        self.assertNotIn("state up", "\n".join(t.lines))

    def test_unknown_stream_refused(self):
        mc = self.start_memcached()
        t = self.tool("mc", mc.host, mc.port, "fetchers nosuchstream")
        line = t.wait(r"^state unavailable ")
        self.assertTrue(line.endswith("why=ERROR"), line)

    def test_restart_seen(self):
        """A restarted server: the watch goes down, comes back, and the new
        pid and uptime tell the restart."""
        mc = self.start_memcached()
        t = self.tool("mc", mc.host, mc.port, STREAMS)
        first = t.wait(r"^state up ")
        old_pid = int(field(first, "pid"))
        since = t.mark()
        mc.restart()
        t.wait(r"^state down ", since=since)
        again = t.wait(r"^state up ", since=since)
        self.assertNotEqual(int(field(again, "pid")), old_pid)
        self.assertEqual(int(field(again, "pid")), mc.pid)
        self.assertLessEqual(int(field(again, "uptime")), 5)
        # and lines flow on the new connection
        r = self.reader([mc.address])
        r.get("program-after-restart")
        t.wait(r"^line get key=%s " % re.escape(uri(r.make_key("program-after-restart"))),
               since=since)

    def test_down_at_start(self):
        """Nothing listening: down, then up once the server starts."""
        mc = self.start_memcached()
        port = mc.port
        mc.stop()
        t = self.tool("mc", "127.0.0.1", port, STREAMS)
        t.wait(r"^state down ")
        mc.start()
        t.wait(r"^state up ")

    def test_keep_awake(self):
        """awake_ms: a connection of the watch's own gets the self key over
        and over (its lines own), and a reader's get still comes through
        not own; after a reconnect it starts again."""
        mc = self.start_memcached()
        t = self.tool("mc", mc.host, mc.port, STREAMS, env={"WATCHTOOL_AWAKE_MS": "50"})
        t.wait(r"^state up ")
        since = t.mark()
        time.sleep(0.6)
        awake = [l for l in t.lines[since:]
                 if l.startswith("line get key=programs-cached%3Aself ")]
        self.assertGreaterEqual(len(awake), 3, t.lines[since:])
        self.assertTrue(all(field(l, "own") == "1" for l in awake[1:]), awake)
        r = self.reader([mc.address])
        r.get("program-awake")
        line = t.wait(r"^line get key=%s " % re.escape(uri(r.make_key("program-awake"))))
        self.assertEqual(field(line, "own"), "0")
        mc.stop()
        since = t.wait_index(r"^state down ")
        mc.start()
        since = t.wait_index(r"^state up ", since=since)
        t.wait(r"^line get key=programs-cached%3Aself .* own=1 ", since=since)

    def test_evictions(self):
        mc = self.start_memcached(memory_mb=8)
        t = self.tool("mc", mc.host, mc.port, "evictions")
        t.wait(r"^state up ")
        with socket.create_connection((mc.host, mc.port)) as s:
            v = b"x" * 50000
            for i in range(400):
                s.sendall(b"set evict%d 0 0 %d noreply\r\n%s\r\n" % (i, len(v), v))
            s.sendall(b"version\r\n")
            s.recv(100)
        line = t.wait(r"^line eviction key=evict0 ")
        self.assertEqual(field(line, "cfd"), "-1")


class HostilePeer(WatchCase):
    """A peer that is not memcached (the network is not trusted):
    lines it sends that do not parse are counted and dropped, a line longer
    than memcached's longest is dropped up to its end, one cut off by the
    close is not delivered, and the watch reconnects."""

    def serve(self, script):
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        self.addCleanup(srv.close)
        conns = []

        def run():
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                conns.append(c)
                try:
                    c.recv(100)                      # stats
                    c.sendall(b"STAT pid 4242\r\nSTAT uptime 9\r\n"
                              b"STAT version 1.6.18\r\nEND\r\n")
                    c.recv(100)                      # watch ...
                    c.sendall(script)
                    time.sleep(0.3)
                    c.close()
                except OSError:
                    pass
        threading.Thread(target=run, daemon=True).start()
        return srv.getsockname()[1]

    def test_garbage(self):
        good = b"ts=1.1 gid=%d type=item_get key=k%d status=found clsid=1 cfd=5 size=1\n"
        script = (b"OK\r\n" + good % (1, 1) +
                  b"this is not a watch line\n" +
                  b"ts=1.1 gid=2 type=item_get key=" + b"x" * 5000 + b" status=found\n" +
                  good % (3, 3) +
                  b"\x00\xff\n" +
                  b"skipped=7\n" +
                  b"ts=1.1 gid=4 type=item_get key=cut")
        port = self.serve(script)
        t = self.tool("mc", "127.0.0.1", port, STREAMS)
        up = t.wait(r"^state up ")
        self.assertEqual(field(up, "pid"), "4242")
        t.wait(r"^line get key=k1 ")
        t.wait(r"^line get key=k3 ")
        t.wait(r"^line skipped n=7 ")
        t.wait(r"^state down why=closed by the server")
        t.wait(r"^state up ", since=t.lines.index(up) + 1)   # reconnected
        self.assertFalse(any("key=cut" in l or "key=x" in l for l in t.lines))
        counts = t.command("counts")
        # 3 bad lines on each connection so far, at least the first one's
        self.assertGreaterEqual(int(field(counts, "bad")), 3)
        self.assertGreaterEqual(int(field(counts, "skipped")), 7)


class Redis(WatchCase):

    def start_redis(self, **kw):
        s = RedisServer(**kw)
        self.addCleanup(s.close)
        return s.start()

    def config_get(self, srv):
        c = srv.client(0)
        try:
            return c.config_get("notify-keyspace-events")["notify-keyspace-events"]
        finally:
            c.close()

    def test_auto_without_flags(self):
        """auto on a server without notifications: unavailable, with the
        exact CONFIG SET line, and the server left as it was."""
        srv = self.start_redis()
        t = self.tool("redis", srv.host, srv.port, 1, "auto", "misses,evictions")
        line = t.wait(r"^state unavailable ")
        self.assertIn("config_set=CONFIG SET notify-keyspace-events 'Eem' ", line)
        self.assertEqual(self.config_get(srv), "")

    def test_auto_partial(self):
        """auto with misses on but not evictions: up for misses, the line for
        the rest keeps what is set."""
        srv = self.start_redis(extra_args=["--notify-keyspace-events", "Egm"])
        t = self.tool("redis", srv.host, srv.port, 1, "auto", "misses,evictions")
        up = t.wait(r"^state up ")
        self.assertEqual(field(up, "active"), "1")
        self.assertIn("CONFIG SET notify-keyspace-events 'gEme'", up)

    def test_on_sets_flags_and_events(self):
        """on: the missing flags are added (g kept); a django-redis reader's
        misses arrive, not own; the store's misses arrive own; a SET of the
        change key arrives; INFO's run_id is reported."""
        srv = self.start_redis(extra_args=["--notify-keyspace-events", "g"])
        conf = self.store_config("redis", {"url": srv.url(1)})
        change = "discovery:1:api_timestamp"
        t = self.tool("redis", srv.host, srv.port, 1, "on", "misses,evictions,change",
                      change, conf)
        up = t.wait(r"^state up ")
        self.assertEqual(field(up, "active"), "7")
        self.assertEqual(field(up, "run_id"), srv.info()["run_id"])
        flags = self.config_get(srv)
        for c in "gKE$em":
            self.assertIn(c, flags)

        r = RedisReader(srv, db=1)
        self.addCleanup(r.close)
        run = "course-programs-course-v1:edX+DemoX+1T2025"
        self.assertIsNone(r.get(run))
        line = t.wait(r"^event keymiss key=%s " % re.escape(uri(r.make_key(run))))
        self.assertEqual(field(line, "own"), "0")

        since = t.mark()
        self.assertIn("hit=0", t.command("own-get %s" % r.make_key(run)))
        line = t.wait(r"^event keymiss key=%s " % re.escape(uri(r.make_key(run))), since=since)
        self.assertEqual(field(line, "own"), "1")

        # a hit through the store leaves no expectation behind
        c = srv.client(1)
        c.set(r.make_key("program-x"), b"v")
        self.assertIn("hit=1", t.command("own-get %s" % r.make_key("program-x")))
        c.delete(r.make_key("program-x"))
        since = t.mark()
        self.assertIsNone(r.get("program-x"))
        line = t.wait(r"^event keymiss key=%s " % re.escape(uri(r.make_key("program-x"))),
                      since=since)
        self.assertEqual(field(line, "own"), "0")

        c.set(change, b"\x80\x04G@\xd9\x00\x00\x00\x00\x00\x00.")
        line = t.wait(r"^event changed key=%s what=set " % re.escape(uri(change)))
        c.close()

    def test_restart_seen(self):
        srv = self.start_redis(extra_args=["--notify-keyspace-events", "Em"])
        t = self.tool("redis", srv.host, srv.port, 1, "auto", "misses")
        first = t.wait(r"^state up ")
        since = t.mark()
        srv.restart()          # the flags are command-line ones: kept
        t.wait(r"^state down ", since=since)
        again = t.wait(r"^state up ", since=since)
        self.assertNotEqual(field(again, "run_id"), field(first, "run_id"))
        self.assertEqual(field(again, "run_id"), srv.info()["run_id"])

    def test_heartbeat_sees_a_stopped_server(self):
        """SIGSTOP: no FIN, no data; the heartbeat (0.5 s here) notices."""
        srv = self.start_redis(extra_args=["--notify-keyspace-events", "Em"])
        t = self.tool("redis", srv.host, srv.port, 1, "auto", "misses")
        t.wait(r"^state up ")
        since = t.mark()
        os.kill(srv.proc.pid, 19)
        try:
            line = t.wait(r"^state down ", timeout=5, since=since)
            self.assertIn("heartbeat", line)
        finally:
            os.kill(srv.proc.pid, 18)
        t.wait(r"^state up ", since=since)

    def test_password(self):
        srv = self.start_redis(password="s3cret", extra_args=["--notify-keyspace-events", "Em"])
        good = self.write_file("pw", "s3cret\n")
        conf = self.store_config("redis", {"url": srv.url(1), "password_file": good})
        t = self.tool("redis", srv.host, srv.port, 1, "auto", "misses", "-", conf)
        t.wait(r"^state up ")
        bad = self.write_file("pw-bad", "wrong\n")
        conf = self.store_config("redis", {"url": srv.url(1), "password_file": bad})
        t = self.tool("redis", srv.host, srv.port, 1, "auto", "misses", "-", conf)
        line = t.wait(r"^state refused ")
        self.assertIn("AUTH refused: WRONGPASS", line)
        # no password at all
        t = self.tool("redis", srv.host, srv.port, 1, "auto", "misses")
        line = t.wait(r"^state refused ")
        self.assertIn("NOAUTH", line)

    def acl_user(self, srv, name, rules):
        c = srv.client(0)
        try:
            c.execute_command("ACL", "SETUSER", name, "on", ">pw", *rules)
        finally:
            c.close()
        pw = self.write_file("pw-" + name, "pw\n")
        return self.store_config("redis", {"url": "redis://%s@%s:%d/1" % (name, srv.host, srv.port),
                                           "password_file": pw})

    def test_acl_without_config(self):
        """A user that may not run CONFIG: auto subscribes anyway, saying the
        flags are unknown; on is refused."""
        srv = self.start_redis(extra_args=["--notify-keyspace-events", "Em"])
        conf = self.acl_user(srv, "noconfig", ["~*", "&*", "+@all", "-config"])
        t = self.tool("redis", srv.host, srv.port, 1, "auto", "misses", "-", conf)
        up = t.wait(r"^state up ")
        self.assertEqual(field(up, "known"), "0")
        self.assertIn("CONFIG GET refused", up)
        r = RedisReader(srv, db=1)
        self.addCleanup(r.close)
        r.get("program-acl")
        t.wait(r"^event keymiss key=%s " % re.escape(uri(r.make_key("program-acl"))))
        t = self.tool("redis", srv.host, srv.port, 1, "on", "misses", "-", conf)
        line = t.wait(r"^state refused ")
        self.assertIn("CONFIG GET refused", line)

    def test_acl_without_channels(self):
        """A user that may not subscribe: reported, retried, never up."""
        srv = self.start_redis(extra_args=["--notify-keyspace-events", "Em"])
        conf = self.acl_user(srv, "nochan", ["~*", "resetchannels", "+@all"])
        t = self.tool("redis", srv.host, srv.port, 1, "auto", "misses", "-", conf)
        line = t.wait(r"^state down ")
        self.assertIn("NOPERM", line)
        time.sleep(1.5)
        self.assertFalse(any(l.startswith("state up") for l in t.lines), t.lines)


if __name__ == "__main__":
    unittest.main()
