"""The Redis backend against a real redis-server started here, read
back the way Tutor's LMS reads it (Django 3.2 + Debian's django-redis,
RedisCache, KEY_PREFIX "default", VERSION "1", db 1): parity of all nine
families with cache_programs' reference, refused writes under maxmemory,
healing after FLUSHDB and a restart, passwords, and the configuration."""

import copy
import os
import signal
import threading
import time
import unittest
import urllib.error
import urllib.request

from tests.integration.test_parity import two_catalogues
from tests.support import catalog, reference
from tests.support.harness import PcdTestCase
from tests.support.rediscache import RedisReader, RedisServer

CHECK = 0.3          # check_interval in the healing tests, seconds


class RedisCase(PcdTestCase):

    def start_redis(self, **kw):
        s = RedisServer(**kw)
        self.addCleanup(s.close)
        return s.start()

    def redis_config(self, fake, srv, sites, redis=None, daemon=None, url=None,
                     discovery=None):
        """Config sections with [redis] instead of [memcached]."""
        sections = self.config(fake, [], sites, daemon=daemon, discovery=discovery)
        del sections["memcached"]
        red = {"url": url or srv.url(1)}
        red.update(redis or {})
        sections = dict([("redis", {k: v for k, v in red.items() if v is not None})]
                        + list(sections.items()))
        return sections

    def redis_reader(self, srv, **kw):
        r = RedisReader(srv, **kw)
        self.addCleanup(r.close)
        return r


class Parity(RedisCase):
    """The parity suite's catalogues, written to Redis and read by django-redis."""

    def setUp(self):
        super().setUp()
        self.a, self.c = two_catalogues()
        self.fake = self.start_fake(self.a)
        self.fake.set_catalogue(self.c, "/c")
        self.sites = [("a.example", 1, ""), ("b.example", 2, ""),
                      ("c.example", 3, "/c"), ("d.example", 4, None)]
        self.srv = self.start_redis()

    def expected(self):
        return reference.expected_cache([
            {"domain": "a.example", "site_id": 1, "catalogue": self.a},
            {"domain": "b.example", "site_id": 2, "catalogue": self.a},
            {"domain": "c.example", "site_id": 3, "catalogue": self.c},
            {"domain": "d.example", "site_id": 4, "catalogue": None},
        ])

    def check(self, redis=None, reader_kw=None, drop=()):
        d = self.daemon(self.redis_config(self.fake, self.srv, self.sites, redis=redis))
        rc, events, stderr = d.run_once()
        expected = self.expected()
        for k in drop:
            expected.pop(k)
        r = self.redis_reader(self.srv, **(reader_kw or {}))
        self.assertCacheMatches(r, expected)
        # Exactly these keys, in db 1 and nowhere else.
        self.assertEqual(self.srv.keys(1), {r.make_key(k) for k in expected})
        self.assertEqual(self.srv.keys(0), set())
        return rc, events, stderr, expected, r

    def test_every_family_tutor_defaults(self):
        """key_function defaults to django on Redis: Tutor's LMS reads every
        key of all nine families, equal to what cache_programs caches, the
        spaced and Unicode type names included; no expiry, protocol 4."""
        rc, events, stderr, expected, r = self.check()
        self.assertEqual(rc, 0, stderr)
        fams = {reference.family_of(k) for k in expected}
        self.assertEqual(len(fams), 9, fams)
        shared = self.a["uuids"][5]
        self.assertEqual(r.get("program-" + shared)["title"], "As site c sees it")
        self.assertEqual(r.get("program-uuids-d.example"), [])
        self.assertIsNotNone(r.get("programs-by-type-1-ünïcode études typé"))
        k = r.make_key("program-" + shared)
        self.assertTrue(k.startswith("default:1:program-"), k)
        c = self.srv.client(1)
        self.assertEqual(c.ttl(k), -1)          # no expiry
        self.assertEqual(c.get(k)[:2], b"\x80\x04")  # pickle protocol 4
        c.close()

    def test_django_key_over_250_bytes_is_written(self):
        """Redis is not memcached: a key over 250 bytes under the django key
        function is written as it is, and django-redis reads it back (the
        LMS reads what cache_programs would have written there)."""
        long_keys = [k for k in self.expected() if len("default:1:" + k) > 250]
        self.assertTrue(long_keys)
        rc, events, stderr, expected, r = self.check()
        self.assertEqual(rc, 0, stderr)
        self.assertFalse([e for e in events if e["event"] == "memcached_error"], stderr)
        for k in long_keys:
            self.assertEqual(r.make_key(k), "default:1:" + k)
            self.assertEqual(r.get(k), expected[k], k)

    def test_every_family_edx_key_function(self):
        """key_function = edx (safe_key as KEY_FUNCTION on Redis), with the
        long keys hashed and the Unicode, spaced type names quoted."""
        rc, _, stderr, expected, r = self.check(redis={"key_function": "edx"},
                                                reader_kw={"key_function": "edx"})
        self.assertEqual(rc, 0, stderr)
        self.assertEqual(len({reference.family_of(k) for k in expected}), 9)
        self.assertIsNotNone(r.get("programs-by-type-1-ünïcode études typé"))
        long_keys = [k for k in expected if len(r.make_key(k)) == 32]
        self.assertTrue(long_keys)

    def test_pickle_protocol_5_and_prefix(self):
        """Django's own RedisCache pickles with protocol 5; django-redis
        reads any.  Another KEY_PREFIX and VERSION too."""
        rc, _, stderr, expected, r = self.check(
            redis={"pickle_protocol": 5, "key_prefix": "lms", "key_version": "7"},
            reader_kw={"prefix": "lms", "version": "7"})
        self.assertEqual(rc, 0, stderr)
        self.assertEqual(r.raw("program-" + self.a["uuids"][0])[:2], b"\x80\x05")


def with_run_key(cat, uuid, run_key):
    """cat with the first run of program uuid's first course renamed
    run_key, wherever the program lists that run."""
    cat = copy.deepcopy(cat)
    p = cat["programs"][uuid]
    old = p["courses"][0]["course_runs"][0]["key"]
    courses = list(p["courses"]) + [c for cur in p.get("curricula", [])
                                    for c in cur.get("courses", [])]
    for course in courses:
        for run in course.get("course_runs", []):
            if run.get("key") == old:
                run["key"] = run_key
    return cat


class LongKeys(RedisCase):
    """django-redis validates no key: what memcached would refuse, Redis
    stores, and the LMS reads it back unchanged."""

    def test_300_byte_course_run_key(self):
        cat = catalog.generate(6, seed=9, quirks=False, dangling_pathway=False)
        uuid = cat["uuids"][0]
        run_key = "course-v1:LongX+" + "L" * (300 - len("course-v1:LongX+") - 7) + "+1T2025"
        self.assertEqual(len(run_key), 300)
        cat = with_run_key(cat, uuid, run_key)
        fake = self.start_fake(cat)
        srv = self.start_redis()
        d = self.daemon(self.redis_config(fake, srv, [("lms.example.com", 1, "")]))
        rc, events, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        expected = reference.expected_cache(
            [{"domain": "lms.example.com", "site_id": 1, "catalogue": cat}])
        r = self.redis_reader(srv)
        self.assertCacheMatches(r, expected)
        key = "course-programs-" + run_key
        self.assertIn(key, expected)
        self.assertEqual(r.get(key), [uuid])
        self.assertIn("default:1:" + key, srv.keys(1))
        self.assertEqual(len(r.make_key(key)), 326)
        # The snapshot holds the long key: the next run loads it, and
        # --verify finds the cache whole.
        rc, events, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        self.assertTrue([e for e in events if e["event"] == "snapshot_loaded"], stderr)
        res = d.run("--verify")
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertIn("missing=0 differ=0", res.stdout)


class Refusals(RedisCase):
    """maxmemory with noeviction: Redis answers -OOM to SETs."""

    def run_starved(self):
        cat = catalog.generate(40, seed=3, quirks=False, dangling_pathway=False)
        fake = self.start_fake(cat)
        # Room for Redis itself and a part of the catalogue only.
        srv = self.start_redis(maxmemory=1)
        c = srv.client(0)
        used = int(c.info("memory")["used_memory"])
        c.config_set("maxmemory", used + 1200 * 1024)
        c.close()
        d = self.daemon(self.redis_config(fake, srv, [("lms.example.com", 1, "")]))
        rc, events, stderr = d.run_once()
        return srv, rc, events, stderr

    def test_oom_is_reported_and_fails_the_run(self):
        srv, rc, events, stderr = self.run_starved()
        errs = [e for e in events if e["event"] == "memcached_error"]
        self.assertTrue(errs, stderr)
        self.assertEqual(errs[0]["backend"], "redis")
        self.assertEqual(errs[0]["server"], srv.url(1))
        self.assertEqual(errs[0]["op"], "set")
        self.assertIn("OOM", errs[0]["error"])
        self.assertGreater(int(errs[0]["refused"]), 0)
        self.assertEqual(rc, 1, stderr)
        self.assertFalse([e for e in events if e["event"] == "refresh_succeeded"])
        self.assertTrue(srv.keys(1), "some values fit")

    def test_oom_no_index_names_a_missing_program(self):
        srv, rc, events, stderr = self.run_starved()
        r = self.redis_reader(srv)
        have = srv.keys(1)
        for k in have:
            v = r.cache.get(k.split(":", 2)[2])
            if isinstance(v, list) and v and all(isinstance(u, str) and len(u) == 36
                                                 for u in v):
                for u in v:
                    self.assertTrue(r.make_key("program-" + u) in have,
                                    "%s names program-%s, not in the cache" % (k, u))


def retitled(cat, suffix=" (v2)"):
    cat = copy.deepcopy(cat)
    for p in cat["programs"].values():
        p["title"] += suffix
    return cat


class KeptRefusals(RedisCase):
    """Redis is not memcached: a SET it answers with an error leaves the
    key's old value in place.  A refused publish keeps every program (and
    its place in the indexes) as the cache holds it, fails as partial, and
    says the reply; -LOADING and -BUSY are sent again first."""

    SITE = "lms.example.com"

    def setUp(self):
        super().setUp()
        self.cat = catalog.generate(12, seed=23, quirks=False, dangling_pathway=False)
        self.fake = self.start_fake(self.cat)

    def expected(self, cat):
        return reference.expected_cache([{"domain": self.SITE, "site_id": 1,
                                          "catalogue": cat}])

    def first_publish(self, srv, **kw):
        """v1 in the cache through a daemon whose state_dir stays."""
        d = self.daemon(self.redis_config(self.fake, srv, [(self.SITE, 1, "")], **kw))
        rc, _, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        self.assertCacheMatches(self.redis_reader(srv), self.expected(self.cat))
        return d

    def assert_kept(self, events, stderr, reply, outcome="failed"):
        """The run refused with reply, every program kept: "failed" when
        nothing of it reached the cache, "partial" when some did."""
        inc = [e for e in events if e["event"] == "refresh_incomplete"]
        self.assertEqual(len(inc), 1, stderr)
        # Kept, not dropped: memcached's rule would have left fewer.
        self.assertEqual(int(inc[0]["programs"]), len(self.cat["uuids"]))
        self.assertEqual(inc[0]["outcome"], outcome)
        self.assertFalse([e for e in events if e["event"] == "refresh_succeeded"])
        errs = [e for e in events if e["event"] == "memcached_error"]
        self.assertTrue(errs, stderr)
        self.assertIn(reply, errs[0]["error"])
        self.assertIn("Redis keeps the old values", errs[0]["error"])
        self.assertGreater(int(errs[0]["refused"]), 0)
        return errs[0]

    def test_readonly_replica(self):
        """The URL names a node that became a replica: -READONLY, not sent
        again; the cache keeps the last publish whole."""
        a = self.start_redis()
        d = self.first_publish(a)
        b = self.start_redis()
        cb, ca = b.client(0), a.client(0)
        self.addCleanup(cb.close)
        self.addCleanup(ca.close)
        # b takes a's data, becomes the master; a replicates it (read-only).
        cb.replicaof(a.host, a.port)
        self.wait_link(cb)
        cb.replicaof("NO", "ONE")
        ca.replicaof(b.host, b.port)
        self.wait_link(ca)
        self.fake.set_catalogue(retitled(self.cat))
        rc, events, stderr = d.run_once()
        self.assertEqual(rc, 1, stderr)
        err = self.assert_kept(events, stderr, "READONLY")
        self.assertEqual(int(err["retried"]), 0)
        self.assertCacheMatches(self.redis_reader(a), self.expected(self.cat))

    def wait_link(self, client, timeout=10):
        deadline = time.monotonic() + timeout
        while client.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                self.fail("replication did not come up: %r" % client.info("replication"))
            time.sleep(0.05)

    def test_oom_keeps_the_program(self):
        """Redis full (maxmemory under what it holds, noeviction) when one
        program changed: its SET is -OOM, its old value stays, and so does
        its place in every index; the refresh is partial.  Room again: the
        next refresh writes it."""
        srv = self.start_redis()
        cfg = {"refresh_interval": "1h", "check_interval": "1h", "verify_interval": "1h"}
        d = self.daemon(self.redis_config(self.fake, srv, [(self.SITE, 1, "")], daemon=cfg))
        d.start()
        d.wait_event("refresh_succeeded", timeout=30)
        c = srv.client(0)
        self.addCleanup(c.close)
        c.config_set("maxmemory-policy", "noeviction")
        c.config_set("maxmemory", int(c.info("memory")["used_memory"]) // 2)
        uuid = self.cat["uuids"][4]
        self.fake.edit_program(uuid, {"title": "Edited while Redis is full"})
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_event("refresh_incomplete", timeout=30, since=mark)
        events = d.events[mark:]
        err = self.assert_kept(events, d.stderr_text, "OOM", outcome="partial")
        self.assertEqual(int(err["refused"]), 1)
        self.assertEqual(err["key"], "default:1:program-" + uuid)
        r = self.redis_reader(srv)
        self.assertCacheMatches(r, self.expected(self.cat))
        c.config_set("maxmemory", 0)
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_event("refresh_succeeded", timeout=30, since=mark)
        self.assertEqual(r.get("program-" + uuid)["title"], "Edited while Redis is full")
        self.assertCacheMatches(r, self.expected(self.fake.catalogue()))
        self.assertEqual(d.stop(), 0)

    def test_loading_is_retried_then_kept(self):
        """A restarted Redis still loading its data file (made slow with
        key-load-delay) answers -LOADING: the SETs are sent again for about
        three seconds, then given up as refused; the loaded file's values
        (the last publish) stay, and once loaded the next run writes."""
        srv = self.start_redis(extra_args=["--key-load-delay", "800",
                                           "--loading-process-events-interval-bytes",
                                           "1024"])
        d = self.first_publish(srv)
        c = srv.client(0)
        p = c.pipeline(transaction=False)
        for i in range(10000):
            p.set("filler-%d" % i, "x" * 64)
        p.execute()
        c.save()
        c.close()
        srv.restart(timeout=20)     # answers PING with -LOADING at once
        c = srv.client(0)
        self.addCleanup(c.close)
        self.assertEqual(int(c.info("persistence")["loading"]), 1)
        self.fake.set_catalogue(retitled(self.cat))
        t0 = time.monotonic()
        rc, events, stderr = d.run_once()
        took = time.monotonic() - t0
        self.assertEqual(int(c.info("persistence")["loading"]), 1,
                         "the load ended during the run: nothing was tested")
        self.assertEqual(rc, 1, stderr)
        err = self.assert_kept(events, stderr, "LOADING")
        self.assertGreater(int(err["retried"]), 0)
        # Sent again for about three seconds, once for the whole run.
        self.assertGreater(took, 3.0)
        self.assertLess(took, 8.0)
        deadline = time.monotonic() + 60
        while int(c.info("persistence")["loading"]) == 1:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        self.assertCacheMatches(self.redis_reader(srv), self.expected(self.cat))
        rc, _, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        self.assertCacheMatches(self.redis_reader(srv), self.expected(retitled(self.cat)))

    def test_loading_that_clears_is_retried_and_written(self):
        """Redis still loading for a second or so when the refresh writes:
        the SETs answered -LOADING are sent again and written once the load
        is over; the refresh succeeds and the warning says what was
        retried."""
        srv = self.start_redis(extra_args=["--key-load-delay", "800",
                                           "--loading-process-events-interval-bytes",
                                           "1024"])
        d = self.first_publish(srv)
        c = srv.client(0)
        p = c.pipeline(transaction=False)
        for i in range(1500):
            p.set("filler-%d" % i, "x" * 64)
        p.execute()
        c.save()
        c.close()
        srv.restart(timeout=20)
        c = srv.client(0)
        self.addCleanup(c.close)
        self.assertEqual(int(c.info("persistence")["loading"]), 1)
        self.fake.set_catalogue(retitled(self.cat))
        rc, events, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        self.assertTrue([e for e in events if e["event"] == "refresh_succeeded"], stderr)
        errs = [e for e in events if e["event"] == "memcached_error"]
        self.assertEqual(len(errs), 1, stderr)
        self.assertIn("LOADING", errs[0]["error"])
        self.assertIn("written when sent again", errs[0]["error"])
        self.assertEqual(int(errs[0]["refused"]), 0)
        self.assertGreater(int(errs[0]["retried"]), 0)
        self.assertCacheMatches(self.redis_reader(srv), self.expected(retitled(self.cat)))

    def test_busy_is_retried_and_written(self):
        """A script holds Redis (-BUSY) when a refresh writes: the SETs are
        sent again, and written once the script ends; the refresh succeeds
        and the warning says what was retried."""
        srv = self.start_redis()
        cfg = {"refresh_interval": "1h", "check_interval": "1h", "verify_interval": "1h"}
        d = self.daemon(self.redis_config(self.fake, srv, [(self.SITE, 1, "")], daemon=cfg))
        d.start()
        d.wait_event("refresh_succeeded", timeout=30)
        c = srv.client(0)
        self.addCleanup(c.close)
        c.config_set("busy-reply-threshold", 10)
        self.fake.set_catalogue(retitled(self.cat))
        script = ("local t0 = redis.call('TIME') "
                  "local s0 = t0[1] * 1000000 + t0[2] "
                  "while true do local t = redis.call('TIME') "
                  "if t[1] * 1000000 + t[2] - s0 > 2500000 then return 1 end end")
        busy = threading.Thread(target=lambda: srv.client(0).eval(script, 0), daemon=True)
        busy.start()
        self.addCleanup(busy.join, 10)
        deadline = time.monotonic() + 5
        while True:
            probe = srv.client(0)
            try:
                probe.ping()
            except Exception as e:
                if "BUSY" in str(e):
                    break
            finally:
                probe.close()
            self.assertLess(time.monotonic(), deadline, "the script never made Redis busy")
            time.sleep(0.01)
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        ev = d.wait_event("refresh_succeeded", timeout=30, since=mark)
        self.assertGreater(int(ev["keys_written"]), 0)
        errs = d.events_named("memcached_error", since=mark)
        self.assertEqual(len(errs), 1, errs)
        self.assertEqual(errs[0]["level"], "warning")
        self.assertIn("BUSY", errs[0]["error"])
        self.assertIn("written when sent again", errs[0]["error"])
        self.assertEqual(int(errs[0]["refused"]), 0)
        self.assertGreater(int(errs[0]["retried"]), 0)
        self.assertCacheMatches(self.redis_reader(srv), self.expected(retitled(self.cat)))
        self.assertEqual(d.stop(), 0)


class Healing(RedisCase):

    def setUp(self):
        super().setUp()
        self.cat = catalog.generate(25, seed=11)
        self.fake = self.start_fake(self.cat)
        self.sites = [("lms.example.com", 1, "")]
        self.srv = self.start_redis()

    def expected(self):
        return reference.expected_cache(
            [{"domain": "lms.example.com", "site_id": 1, "catalogue": self.cat}])

    def start_daemon(self, **daemon):
        cfg = {"refresh_interval": "1h", "check_interval": "%dms" % (CHECK * 1000),
               "verify_interval": "1h"}
        cfg.update(daemon)
        d = self.daemon(self.redis_config(self.fake, self.srv, self.sites,
                                          redis={"key_function": "edx"},
                                          discovery={"retries": 0}, daemon=cfg))
        d.start()
        d.wait_event("refresh_succeeded", timeout=30)
        return d

    def wait_healed(self, r, expected, within):
        deadline = time.monotonic() + within
        while True:
            diffs = r.compare(expected, limit=5)
            if not diffs:
                return time.monotonic() - (deadline - within)
            if time.monotonic() > deadline:
                self.fail("not healed within %.1f s: %s" % (within, diffs))
            time.sleep(0.05)

    def test_flushdb_is_repaired(self):
        d = self.start_daemon()
        r = self.redis_reader(self.srv, key_function="edx")
        expected = self.expected()
        self.assertCacheMatches(r, expected)
        self.fake.stop()
        self.srv.flushdb(1)
        self.assertEqual(self.srv.keys(1), set())
        self.wait_healed(r, expected, CHECK + 1)
        self.assertEqual(self.srv.keys(1), {r.make_key(k) for k in expected})
        d.wait_event("cache_empty_detected")

    def test_kill9_restart_is_repaired_with_discovery_down(self):
        d = self.start_daemon()
        r = self.redis_reader(self.srv, key_function="edx")
        expected = self.expected()
        self.assertCacheMatches(r, expected)
        old = self.srv.info()["run_id"]
        self.fake.stop()
        self.srv.restart()
        self.assertNotEqual(self.srv.info()["run_id"], old)
        r.reconnect()
        self.wait_healed(r, expected, CHECK + 1)
        e = d.wait_event("cache_empty_detected")
        self.assertEqual(e["server"], self.srv.url(1))

    def test_single_key_deleted_is_found_by_verification(self):
        """A key evicted or deleted alone (sentinels intact) is found by the
        verification pass (batched MGET) and rewritten."""
        d = self.start_daemon(verify_interval="500ms")
        r = self.redis_reader(self.srv, key_function="edx")
        expected = self.expected()
        victim = "program-" + self.cat["uuids"][3]
        c = self.srv.client(1)
        c.delete(r.make_key(victim))
        c.close()
        self.wait_healed(r, expected, 0.5 + 1)
        e = d.wait_event("cache_miss")
        self.assertEqual((e["missing"], e["examples"]), (1, victim))

    def test_down_at_start_logged_once_then_filled(self):
        """redis-server down when the daemon starts: one memcached_error,
        retries, and once it is up the cache is filled."""
        self.srv.kill9()
        cfg = {"refresh_interval": "1h", "check_interval": "%dms" % (CHECK * 1000),
               "verify_interval": "1h"}
        d = self.daemon(self.redis_config(self.fake, self.srv, self.sites,
                                          redis={"key_function": "edx"},
                                          discovery={"retries": 0}, daemon=cfg))
        d.start()
        d.wait_event("refresh_failed", timeout=30)
        time.sleep(1)
        errs = d.events_named("memcached_error")
        self.assertEqual(len(errs), 1, errs)
        self.assertIn("Connection refused", errs[0]["error"])
        self.srv.start()
        d.wait_event("memcached_recovered", timeout=10)
        r = self.redis_reader(self.srv, key_function="edx")
        # The failed refresh is retried after 30 s; a repair does not need
        # Discovery, but nothing was ever published: SIGHUP refreshes now.
        d.send_signal(signal.SIGHUP)
        d.wait_event("refresh_succeeded", timeout=30)
        self.assertCacheMatches(r, self.expected())

    def test_verify_command(self):
        d = self.start_daemon()
        d.stop()
        r = self.redis_reader(self.srv, key_function="edx")
        res = d.run("--verify")
        self.assertEqual(res[0], 0, res.stdout)
        self.assertIn("missing=0 differ=0 unreachable_servers=0", res.stdout)
        victim = r.make_key("program-" + self.cat["uuids"][0])
        c = self.srv.client(1)
        c.delete(victim)
        c.close()
        res = d.run("--verify")
        self.assertEqual(res[0], 1)
        self.assertIn("missing server=%s wire=%s" % (self.srv.url(1), victim), res.stdout)


class DryRun(RedisCase):

    def test_dry_run_compares_with_redis(self):
        """--dry-run reads Redis (MGET) to say what would change, and
        writes nothing."""
        from tests.integration.test_dry_run import summary
        cat = catalog.generate(15, seed=21)
        fake = self.start_fake(cat)
        srv = self.start_redis()
        d = self.daemon(self.redis_config(fake, srv, [("lms.example.com", 1, "")]))
        expected = reference.expected_cache(
            [{"domain": "lms.example.com", "site_id": 1, "catalogue": cat}])
        res = d.run("--dry-run")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(srv.keys(1), set())
        self.assertEqual(summary(res.stdout)["total"][2], len(expected))
        rc, _, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        res = d.run("--dry-run")
        self.assertEqual(summary(res.stdout)["total"][4], len(expected))


class Passwords(RedisCase):

    def setUp(self):
        super().setUp()
        self.cat = catalog.generate(10, seed=5, quirks=False, dangling_pathway=False)
        self.fake = self.start_fake(self.cat)
        self.srv = self.start_redis(password="s3cret-pass")
        self.expected = reference.expected_cache(
            [{"domain": "lms.example.com", "site_id": 1, "catalogue": self.cat}])

    def test_password_file(self):
        pw = self.write_file("redis-password", "s3cret-pass\n")
        d = self.daemon(self.redis_config(self.fake, self.srv, [("lms.example.com", 1, "")],
                                          redis={"password_file": pw}))
        rc, events, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        self.assertNotIn("s3cret-pass", stderr)
        self.assertCacheMatches(self.redis_reader(self.srv), self.expected)

    def test_systemd_credential(self):
        creds = os.path.join(self.tmpdir, "creds")
        os.mkdir(creds)
        with open(os.path.join(creds, "redis-password"), "w") as f:
            f.write("s3cret-pass")
        d = self.daemon(self.redis_config(self.fake, self.srv, [("lms.example.com", 1, "")]),
                        env={"CREDENTIALS_DIRECTORY": creds})
        rc, _, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        self.assertCacheMatches(self.redis_reader(self.srv), self.expected)

    def test_wrong_password_one_clear_error_and_readyz(self):
        pw = self.write_file("redis-password", "not-the-password\n")
        d = self.daemon(self.redis_config(
            self.fake, self.srv, [("lms.example.com", 1, "")],
            redis={"password_file": pw},
            daemon={"listen": "127.0.0.1:0", "check_interval": "200ms"}))
        d.start()
        e = d.wait_event("listening", timeout=10)
        addr = e["address"]
        d.wait_event("refresh_failed", timeout=30)
        time.sleep(1)
        errs = d.events_named("memcached_error")
        self.assertEqual(len(errs), 1, errs)
        self.assertEqual(errs[0]["backend"], "redis")
        self.assertIn("WRONGPASS", errs[0]["error"])
        self.assertNotIn("not-the-password", d.stderr_text)
        try:
            urllib.request.urlopen("http://%s/readyz" % addr, timeout=5)
            self.fail("/readyz answered 200")
        except urllib.error.HTTPError as err:
            self.assertEqual(err.code, 503)
            body = err.read().decode()
        self.assertIn("redis unreachable: %s" % self.srv.url(1), body)
        self.assertIn("WRONGPASS", body)
        with urllib.request.urlopen("http://%s/metrics" % addr, timeout=5) as resp:
            metrics = resp.read().decode()
        self.assertIn('programs_cached_backend_info{backend="redis"} 1', metrics)
        self.assertIn('programs_cached_memcached_up{server="%s"} 0' % self.srv.url(1),
                      metrics)
        self.assertEqual(self.srv.keys(1), set())


class Config(RedisCase):

    def check_config(self, sections):
        d = self.daemon(sections)
        return d.run("--check-config")

    def base(self, **redis):
        return self.redis_config(None, None, [("lms.example.com", 1, None)],
                                 url=redis.pop("url", "redis://127.0.0.1:6379/1"),
                                 redis=redis)

    def test_both_sections_refused(self):
        s = self.base()
        s["memcached"] = {"servers": "127.0.0.1:11211"}
        res = self.check_config(s)
        self.assertEqual(res[0], 2)
        self.assertTrue(any("exactly one" in e.get("error", "")
                            for e in res.named("config_error")), res[2])

    def test_rediss_refused_clearly(self):
        res = self.check_config(self.base(url="rediss://127.0.0.1:6380/1"))
        self.assertEqual(res[0], 2)
        self.assertIn("TLS", res[2])

    def test_urls(self):
        for url in ("redis://127.0.0.1:6379/1", "redis://cache", "redis://u@[::1]:7000/3",
                    "unix:///run/redis/redis.sock?db=2", "redis://:pw@h:1/0"):
            with self.subTest(url=url):
                self.assertEqual(self.check_config(self.base(url=url))[0], 0)
        for url in ("http://h:1/1", "redis://h:0/1", "redis://h:1/x", "unix://rel?db=1",
                    "redis://", "unix:///p?dbx=1"):
            with self.subTest(url=url):
                self.assertEqual(self.check_config(self.base(url=url))[0], 2)

    def test_password_never_logged(self):
        d = self.daemon(self.base(url="redis://user:hunter2@127.0.0.1:1/1"))
        res = d.run_once()
        self.assertNotEqual(res[0], 0)
        self.assertNotIn("hunter2", res[2])
        self.assertIn("redis://user@127.0.0.1:1/1", res[2])
