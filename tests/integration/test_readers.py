"""The cache as the LMS sees it ([daemon] reader_watch): real memcached and
redis-server, the fake Discovery, and Django's own cache clients as the LMS.
check_interval and verify_interval are an hour, so that no poll can explain
a key coming back: only the reader watch can."""

import json
import os
import signal
import socket
import time

from tests.integration.test_ops import scrape
from tests.integration.test_redis import RedisCase
from tests.support import catalog, reference
from tests.support.harness import PcdTestCase

SITES = [("lms.example.com", 1, "")]
# A run no program of the catalogue has.
NOWHERE = "course-programs-course-v1:Nobody+None+2099"


def fam(key):
    """The daemon's spelling of a key's family ("course_programs")."""
    return reference.family_of(key).replace("-", "_")


def wait_for(fn, timeout, step=0.01):
    """Poll fn() until it is true; its last value (false at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


class ReaderCase(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.cat = catalog.generate(20, seed=23)
        self.fake = self.start_fake(self.cat)
        self.expected = reference.expected_cache([
            {"domain": "lms.example.com", "site_id": 1, "catalogue": self.cat}])

    def daemon_cfg(self, **kw):
        cfg = {"refresh_interval": "1h", "check_interval": "1h",
               "verify_interval": "1h", "listen": "127.0.0.1:0"}
        cfg.update(kw)
        return cfg

    def started(self, sections):
        d = self.daemon(sections)
        d.start()
        self.address = d.wait_event("listening")["address"]
        d.wait_event("refresh_succeeded", timeout=30)
        d.wait_event("cache_verified", timeout=30)
        return d

    def program_key(self):
        return sorted(k for k in self.expected if fam(k) == "program")[0]

    def course_key(self):
        return sorted(k for k in self.expected if fam(k) == "course_programs")[0]

    def gets(self, family, result):
        samples, _ = scrape(self.address)
        return samples.get(("programs_cached_reader_gets_total",
                            (("family", family), ("result", result))), 0)

    def assertLostOnce(self, d, mark, key, server):
        ev = d.wait_event("reader_miss", since=mark, timeout=5)
        self.assertEqual(ev["lost"], 1, ev)
        self.assertEqual(ev["absent"], 0, ev)
        self.assertEqual(ev["lost_" + fam(key)], 1, ev)
        self.assertEqual(ev["examples"], key)
        self.assertEqual(ev["server"], server)
        rep = d.wait_event("cache_repaired", since=mark, timeout=5)
        self.assertEqual((rep["reason"], rep["keys"], rep["keys_failed"]),
                         ("reader miss", 1, 0))
        self.assertEqual(self.gets(fam(key), "miss_lost"), 1)


class Memcached(ReaderCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()

    def start_daemon(self, **kw):
        d = self.started(self.config(self.fake, [self.mc], SITES,
                                     daemon=self.daemon_cfg(**kw)))
        d.wait_event("reader_watch_up", timeout=10)
        return d

    def test_lost_miss_back_within_a_second(self):
        """A program key deleted behind the daemon's back and read by the
        LMS misses once and is back within a second: reader_miss says lost
        and names the family; the daemon's own verify pass counted
        nothing."""
        d = self.start_daemon()
        self.assertEqual(d.events_named("reader_miss"), [])
        reader = self.reader([self.mc])
        key = self.program_key()
        wire = reader.make_key(key)
        mark = d.mark()
        self.mc.delete(wire)
        t0 = time.monotonic()
        self.assertIsNone(reader.get(key))
        # metadump, not get: a get would be a reader's miss too
        self.assertTrue(wait_for(lambda: wire in self.mc.dump_keys(), 1.0),
                        "not back within a second")
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(reader.get(key), self.expected[key])
        self.assertLostOnce(d, mark, key, self.mc.address)
        time.sleep(1.2)   # a second report would have come by now
        self.assertEqual(len(d.events_named("reader_miss", since=mark)), 1)
        self.assertEqual(d.events_named("cache_empty_detected"), [])
        self.assertEqual(d.stop(), 0)

    def test_own_verify_miss_not_counted(self):
        """A key deleted and found missing by the daemon's own verify pass
        (verify_interval 300 ms): cache_miss and a repair, no reader_miss."""
        d = self.start_daemon(verify_interval="300ms")
        reader = self.reader([self.mc])
        mark = d.mark()
        self.mc.delete(reader.make_key(self.program_key()))
        miss = d.wait_event("cache_miss", since=mark, timeout=5)
        self.assertEqual(miss["missing"], 1)
        d.wait_event("cache_repaired", since=mark, timeout=5)
        time.sleep(1.0)
        self.assertEqual(d.events_named("reader_miss"), [])
        self.assertEqual(self.gets("program", "miss_lost"), 0)
        self.assertEqual(d.stop(), 0)

    def test_absent_is_counted_never_written(self):
        """course-programs- of a run in no program: absent, nothing written."""
        d = self.start_daemon()
        reader = self.reader([self.mc])
        mark = d.mark()
        self.assertIsNone(reader.get(NOWHERE))
        ev = d.wait_event("reader_miss", since=mark, timeout=5)
        self.assertEqual((ev["lost"], ev["absent"], ev["absent_course_programs"]),
                         (0, 1, 1), ev)
        self.assertEqual(ev["examples"], NOWHERE)
        time.sleep(0.3)
        self.assertNotIn(reader.make_key(NOWHERE), self.mc.dump_keys())
        self.assertEqual(d.events_named("cache_repaired", since=mark), [])
        self.assertEqual(self.gets("course_programs", "miss_absent"), 1)
        self.assertEqual(self.gets("course_programs", "miss_lost"), 0)
        self.assertEqual(d.stop(), 0)

    def test_hits_per_family_and_an_idle_publish_counts_nothing(self):
        """A publish and its verify pass with nobody reading: 0 reader
        gets.  Then the LMS reads every key once: one hit per key, by
        family, and no miss."""
        d = self.start_daemon()
        time.sleep(0.5)
        samples, _ = scrape(self.address)
        self.assertEqual([k for k in samples
                          if k[0] == "programs_cached_reader_gets_total"], [])
        reader = self.reader([self.mc])
        got = reader.get_many(list(self.expected))
        self.assertEqual(len(got), len(self.expected))
        counts = {}
        for k in self.expected:
            counts[fam(k)] = counts.get(fam(k), 0) + 1

        def all_counted():
            return all(self.gets(f, "hit") == n for f, n in counts.items())
        self.assertTrue(wait_for(all_counted, 3.0), counts)
        for f in counts:
            self.assertEqual(self.gets(f, "miss_lost"), 0)
        self.assertEqual(d.events_named("reader_miss"), [])
        samples, _ = scrape(self.address)
        self.assertEqual(samples[("programs_cached_reader_watch_up",
                                  (("server", self.mc.address),))], 1)
        self.assertEqual(d.stop(), 0)

    def test_restart_with_discovery_down_every_key_back_within_2s(self):
        """memcached killed and restarted, Discovery gone, check_interval an
        hour: the watch comes back to another pid, and every key is back
        within 2 s."""
        d = self.start_daemon()
        reader = self.reader([self.mc])
        wire = {reader.make_key(k) for k in self.expected}
        self.fake.stop()
        mark = d.mark()
        self.mc.kill9()
        d.wait_event("reader_watch_down", since=mark, timeout=5)
        self.mc.restart()
        t0 = time.monotonic()
        self.assertTrue(wait_for(lambda: wire <= self.mc.dump_keys(), 2.0, 0.02),
                        "not every key back within 2 s")
        self.assertLess(time.monotonic() - t0, 2.0)
        reader.reconnect()
        self.assertCacheMatches(reader, self.expected)
        empty = d.wait_event("cache_empty_detected", since=mark)
        self.assertEqual(empty["reason"], "watch: pid changed")
        self.assertEqual(empty["keys"], len(self.expected))
        rep = d.wait_event("cache_repaired", since=mark)
        self.assertEqual((rep["reason"], rep["keys"], rep["keys_failed"]),
                         ("watch: pid changed", len(self.expected), 0))
        self.assertEqual(d.stop(), 0)

    def test_falling_behind_is_counted_and_logged(self):
        """The daemon stopped (SIGSTOP) while a flood of gets goes by:
        memcached skips lines, and the daemon says so once, counts them,
        and goes on classifying."""
        d = self.start_daemon()
        mark = d.mark()
        os.kill(d.pid, signal.SIGSTOP)
        try:
            junk = ["session:" + "x" * 200 + str(i) for i in range(10)]
            with socket.create_connection((self.mc.host, self.mc.port)) as s:
                line = ("get %s\r\n" % " ".join(junk)).encode()
                for _ in range(3000):
                    s.sendall(line)
                    s.recv(65536)
        finally:
            os.kill(d.pid, signal.SIGCONT)
        ev = d.wait_event("reader_watch_skipped", since=mark, timeout=10)
        self.assertGreater(ev["skipped"], 0)
        self.assertEqual(ev["server"], self.mc.address)
        samples, _ = scrape(self.address)
        self.assertGreater(samples[("programs_cached_reader_watch_skipped_total",
                                    (("server", self.mc.address),))], 0)
        # Still watching: a lost miss is still seen and put back.
        reader = self.reader([self.mc])
        key = self.course_key()
        mark = d.mark()
        self.mc.delete(reader.make_key(key))
        self.assertIsNone(reader.get(key))
        self.assertLostOnce(d, mark, key, self.mc.address)
        self.assertEqual(d.stop(), 0)


class MemcachedRefusing(ReaderCase):

    def test_minus_W_logged_and_polling_takes_over(self):
        """memcached -W refuses the watch: reader_watch_unavailable once,
        the daemon publishes, and the polling check still puts a
        restarted server back."""
        mc = self.start_memcached(extra_args=["-W"])
        d = self.daemon(self.config(self.fake, [mc], SITES, daemon=self.daemon_cfg(
            check_interval="300ms")))
        d.start()
        self.address = d.wait_event("listening")["address"]
        d.wait_event("refresh_succeeded", timeout=30)
        ev = d.wait_event("reader_watch_unavailable", timeout=10)
        self.assertIn("watch commands not allowed", ev["error"])
        self.assertIn("-W", ev["fix"])
        mark = d.mark()
        mc.kill9()
        mc.restart()
        empty = d.wait_event("cache_empty_detected", since=mark, timeout=10)
        self.assertEqual(empty["reason"], "pid changed")
        d.wait_event("cache_repaired", since=mark, timeout=10)
        self.assertEqual(len(d.events_named("reader_watch_unavailable")), 1)
        self.assertEqual(d.stop(), 0)

    def test_off_watches_nothing(self):
        """reader_watch = off: no watch, no reader gets counted."""
        mc = self.start_memcached()
        d = self.started(self.config(self.fake, [mc], SITES, daemon=self.daemon_cfg(
            reader_watch="off")))
        reader = self.reader([mc])
        mc.delete(reader.make_key(self.program_key()))
        self.assertIsNone(reader.get(self.program_key()))
        time.sleep(0.5)
        self.assertEqual(d.events_named("reader_watch_up"), [])
        self.assertEqual(d.events_named("reader_miss"), [])
        self.assertIsNone(mc.get(reader.make_key(self.program_key())))
        self.assertEqual(d.stop(), 0)


class Redis(RedisCase, ReaderCase):

    def start_daemon(self, srv, **kw):
        return self.started(self.redis_config(self.fake, srv, SITES,
                                              daemon=self.daemon_cfg(**kw)))

    def test_lost_miss_mode_on(self):
        """reader_watch = on turns keymiss events on; the daemon's own
        verify pass counts nothing, a key deleted and read by django-redis
        is back within a second."""
        srv = self.start_redis()
        d = self.start_daemon(srv, reader_watch="on")
        d.wait_event("reader_watch_up", timeout=10)
        c = srv.client(0)
        self.assertIn("m", c.config_get("notify-keyspace-events")
                      ["notify-keyspace-events"])
        c.close()
        self.assertEqual(d.events_named("reader_miss"), [])
        reader = self.redis_reader(srv)
        key = self.program_key()
        wire = reader.make_key(key)
        mark = d.mark()
        c = srv.client(1)
        c.delete(wire)
        self.assertIsNone(reader.get(key))
        c.close()
        # KEYS, not GET: a GET would be a reader's miss too
        self.assertTrue(wait_for(lambda: wire in srv.keys(1), 1.0),
                        "not back within a second")
        self.assertEqual(reader.get(key), self.expected[key])
        self.assertLostOnce(d, mark, key, srv.url(1))
        self.assertEqual(d.stop(), 0)

    def test_long_key_lost_and_back(self):
        """Redis takes keys of any length with the django key function: a
        course run key whose cache key is longer than memcached's 250
        bytes, deleted and read by django-redis, is seen as lost (named in
        full) and put back within a second."""
        self.cat = catalog.generate(20, seed=23, long_run_key=True)
        self.fake.set_catalogue(self.cat)
        self.expected = reference.expected_cache([
            {"domain": "lms.example.com", "site_id": 1, "catalogue": self.cat}])
        srv = self.start_redis()
        d = self.start_daemon(srv, reader_watch="on")
        d.wait_event("reader_watch_up", timeout=10)
        reader = self.redis_reader(srv)
        key = max((k for k in self.expected if fam(k) == "course_programs"), key=len)
        wire = reader.make_key(key)
        self.assertGreater(len(wire.encode()), 250)
        self.assertIn(wire, srv.keys(1))
        mark = d.mark()
        c = srv.client(1)
        c.delete(wire)
        c.close()
        self.assertIsNone(reader.get(key))
        self.assertTrue(wait_for(lambda: wire in srv.keys(1), 1.0),
                        "not back within a second")
        self.assertEqual(reader.get(key), self.expected[key])
        self.assertLostOnce(d, mark, key, srv.url(1))
        # --show names the whole key and finds it where the LMS reads it.
        res = d.run("--show", key, "--json")
        self.assertEqual(res.returncode, 0, res.stderr)
        o = json.loads(res.stdout)
        self.assertEqual((o["wire"], o["cache"][0]["agreement"]), (wire, "same bytes"))
        self.assertEqual(d.stop(), 0)

    def test_own_verify_miss_not_counted(self):
        """Redis names no client in keymiss: the daemon's verify pass that
        finds a key missing is still not a reader miss."""
        srv = self.start_redis()
        d = self.start_daemon(srv, reader_watch="on", verify_interval="300ms")
        d.wait_event("reader_watch_up", timeout=10)
        reader = self.redis_reader(srv)
        mark = d.mark()
        c = srv.client(1)
        c.delete(reader.make_key(self.program_key()))
        c.close()
        miss = d.wait_event("cache_miss", since=mark, timeout=5)
        self.assertEqual(miss["missing"], 1)
        d.wait_event("cache_repaired", since=mark, timeout=5)
        time.sleep(1.0)
        self.assertEqual(d.events_named("reader_miss"), [])
        self.assertEqual(d.stop(), 0)

    def test_absent_mode_on(self):
        srv = self.start_redis()
        d = self.start_daemon(srv, reader_watch="on")
        d.wait_event("reader_watch_up", timeout=10)
        reader = self.redis_reader(srv)
        mark = d.mark()
        self.assertIsNone(reader.get(NOWHERE))
        ev = d.wait_event("reader_miss", since=mark, timeout=5)
        self.assertEqual((ev["lost"], ev["absent"], ev["absent_course_programs"]),
                         (0, 1, 1), ev)
        time.sleep(0.3)
        self.assertEqual(d.events_named("cache_repaired", since=mark), [])
        self.assertIsNone(reader.raw(NOWHERE))
        self.assertEqual(d.stop(), 0)

    def test_auto_without_notifications_says_the_config_set_line(self):
        """auto on a Redis without notifications: reader_watch_unavailable
        with the exact CONFIG SET line; the daemon works on."""
        srv = self.start_redis()
        d = self.start_daemon(srv)
        ev = d.wait_event("reader_watch_unavailable", timeout=10)
        self.assertIn("CONFIG SET notify-keyspace-events", ev["fix"])
        self.assertEqual(d.stop(), 0)

    def test_config_forbidden_mode_on(self):
        """CONFIG renamed away, mode on: refused, logged, no crash; the
        publish went through."""
        srv = self.start_redis(extra_args=["--rename-command", "CONFIG", ""])
        d = self.start_daemon(srv, reader_watch="on")
        ev = d.wait_event("reader_watch_unavailable", timeout=10)
        self.assertTrue(ev["error"], ev)
        self.assertTrue(d.running)
        self.assertEqual(d.stop(), 0)

    def test_subscribe_forbidden_by_acl(self):
        """A user that may not SUBSCRIBE (ACL): logged, no crash."""
        srv = self.start_redis(extra_args=["--notify-keyspace-events", "Em"])
        c = srv.client(0)
        c.execute_command("ACL", "SETUSER", "lms", "on", ">pw", "~*", "&*",
                          "+@all", "-subscribe", "-psubscribe")
        c.close()
        sections = self.redis_config(self.fake, srv, SITES, daemon=self.daemon_cfg(),
                                     url="redis://lms:pw@%s:%d/1" % (srv.host, srv.port))
        d = self.started(sections)
        wait_for(lambda: d.events_named("reader_watch_down") or
                 d.events_named("reader_watch_unavailable"), 10)
        evs = d.events_named("reader_watch_down") + \
            d.events_named("reader_watch_unavailable")
        self.assertTrue(evs, "no event for the refused SUBSCRIBE")
        self.assertEqual(d.events_named("reader_watch_up"), [])
        self.assertTrue(d.running)
        self.assertEqual(d.stop(), 0)

    def test_restart_with_discovery_down_every_key_back_within_2s(self):
        srv = self.start_redis(extra_args=["--notify-keyspace-events", "Em"])
        d = self.start_daemon(srv)
        d.wait_event("reader_watch_up", timeout=10)
        reader = self.redis_reader(srv)
        wire = {reader.make_key(k) for k in self.expected}
        self.fake.stop()
        mark = d.mark()
        srv.restart()
        self.assertTrue(wait_for(lambda: wire <= srv.keys(1), 2.0, 0.02),
                        "not every key back within 2 s")
        reader.reconnect()
        self.assertCacheMatches(reader, self.expected)
        empty = d.wait_event("cache_empty_detected", since=mark)
        self.assertEqual(empty["reason"], "watch: run_id changed")
        self.assertEqual(d.stop(), 0)
