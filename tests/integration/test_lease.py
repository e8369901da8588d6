"""Several daemons, one writer: the lease in the cache itself.

Real processes, one real memcached, the fake Discovery counting requests,
and the LMS's reader checking what is in the cache."""

import copy
import signal
import time

from tests.support import catalog, reference
from tests.support.harness import PcdTestCase
from tests.support.rediscache import RedisReader, RedisServer

SITE = "lms.example.com"
TTL = 3.0


def v2(cat):
    cat = copy.deepcopy(cat)
    for p in cat["programs"].values():
        p["title"] += " (v2)"
    return cat


def expected(cat):
    return reference.expected_cache([{"domain": SITE, "site_id": 1, "catalogue": cat}])


class Lease(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(10, seed=41)
        self.fake = self.start_fake(self.cat)
        self.r = self.reader([self.mc])

    def sections(self, refresh):
        return self.config(self.fake, [self.mc], [(SITE, 1, "")],
                           daemon={"refresh_interval": refresh, "check_interval": "500ms"})

    def restart_cache(self):
        self.mc.restart()

    def fleet(self, n=3, refresh="2s"):
        ds = []
        for i in range(n):
            cfg = self.sections(refresh)
            cfg["lease"] = {"enabled": True, "ttl": "%ds" % TTL}
            ds.append(self.daemon(cfg, name="d%d" % i).start())
        return ds

    @staticmethod
    def holding(d):
        """Whether d's last lease event says it holds the lease."""
        evs = [e for e in d.events if e.get("event") in ("lease_acquired", "lease_lost")]
        return bool(evs) and evs[-1]["event"] == "lease_acquired"

    def wait_holder(self, ds, timeout, exclude=()):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hs = [d for d in ds if d not in exclude and d.running and self.holding(d)]
            if hs:
                return hs
            time.sleep(0.05)
        self.fail("no daemon took the lease within %.1fs" % timeout)

    def test_one_writer_among_three(self):
        """Over three refresh intervals only the holder asks Discovery;
        the others never refresh, and the cache is the full state."""
        ds = self.fleet()
        holders = self.wait_holder(ds, 5)
        self.assertEqual(len(holders), 1)
        h = holders[0]
        h.wait_events("refresh_succeeded", 3, timeout=20)
        uuid_requests = len(self.fake.requests_of("uuids"))
        others = [d for d in ds if d is not h]
        for d in others:
            self.assertEqual(d.events_named("refresh_started"), [], d.name)
            self.assertEqual(d.events_named("lease_acquired"), [], d.name)
        # Only the holder's refreshes reached Discovery.
        self.assertLessEqual(uuid_requests, len(h.events_named("refresh_started")))
        self.assertCacheMatches(self.r, expected(self.cat))
        for d in ds:
            self.assertEqual(d.stop(), 0)

    def test_kill_9_of_the_holder(self):
        """Another daemon holds the lease within ttl + a check, and
        refreshes: a new catalogue reaches the cache."""
        ds = self.fleet()
        h = self.wait_holder(ds, 5)[0]
        h.wait_event("refresh_succeeded", timeout=20)
        self.fake.set_catalogue(v2(self.cat))
        h.kill9()
        t0 = time.monotonic()
        new = self.wait_holder(ds, TTL + 3, exclude=(h,))
        self.assertLess(time.monotonic() - t0, TTL + 3)
        self.assertEqual(len(new), 1)
        new[0].wait_event("refresh_succeeded", timeout=20)
        self.assertCacheMatches(self.r, expected(v2(self.cat)))

    def test_stopped_holder_does_not_write_after_losing_the_lease(self):
        """SIGSTOP the holder past the ttl: another takes over and publishes
        a new catalogue; SIGCONT: the old holder logs lease_lost, refreshes
        nothing and writes nothing (the cache keeps the new holder's)."""
        ds = self.fleet(2, refresh="1s")
        a = self.wait_holder(ds, 5)[0]
        a.wait_event("refresh_succeeded", timeout=20)
        a.send_signal(signal.SIGSTOP)
        self.fake.set_catalogue(v2(self.cat))
        b = self.wait_holder(ds, TTL + 3, exclude=(a,))[0]
        b.wait_event("refresh_succeeded", timeout=20)
        mark = a.mark()
        a.send_signal(signal.SIGCONT)
        a.wait_event("lease_lost", timeout=TTL + 2, since=mark)
        time.sleep(2.5)
        self.assertEqual(a.events_named("refresh_started", since=mark), [])
        self.assertEqual(a.events_named("cache_repaired", since=mark), [])
        self.assertTrue(self.holding(b) and not self.holding(a))
        self.assertCacheMatches(self.r, expected(v2(self.cat)))

    def member(self, name, verify="1s"):
        """One daemon of the fleet, with a short verify_interval."""
        cfg = self.sections("1h")
        cfg["daemon"]["verify_interval"] = verify
        cfg["lease"] = {"enabled": True, "ttl": "%ds" % TTL}
        return self.daemon(cfg, name=name).start()

    def test_stray_writer_is_overwritten(self):
        """A cache_programs job (or any stray writer) puts older values
        under the holder's keys: the holder's next verification finds the
        keys that differ from what it wrote (cache_diverged, by family) and
        writes its own back."""
        self.fake.set_catalogue(v2(self.cat))
        h = self.member("h")
        h.wait_event("lease_acquired", timeout=5)
        h.wait_event("refresh_succeeded", timeout=20)
        mark = h.mark()
        stale = {k: v for k, v in expected(self.cat).items() if k.startswith("program-")
                 and not k.startswith("program-uuids-")}
        self.assertTrue(stale)
        self.assertEqual(list(self.r.set_many(stale) or []), [])
        self.assertTrue(self.r.compare(expected(v2(self.cat))))
        ev = h.wait_event("cache_diverged", timeout=5, since=mark)
        self.assertEqual((ev["diverged"], ev["diverged_program"]), (len(stale), len(stale)))
        self.assertIn(ev["examples"].split()[0], stale)
        h.wait_event("cache_repaired", timeout=5, since=mark)
        self.assertCacheMatches(self.r, expected(v2(self.cat)))
        ver = h.wait_event("cache_verified", timeout=5, since=mark,
                           predicate=lambda e: e["diverged"] > 0)
        self.assertEqual((ver["diverged"], ver["missing"]), (len(stale), 0))

    def test_lease_server_restarted(self):
        """memcached restarts (the lease with it): exactly one holder again
        within the ttl."""
        ds = self.fleet()
        self.wait_holder(ds, 5)
        self.restart_cache()
        time.sleep(TTL + 1.5)
        holders = [d for d in ds if self.holding(d)]
        self.assertEqual(len(holders), 1, [d.name for d in holders])
        # And it put everything back (its monitor saw the restart).
        holders[0].wait_event("refresh_succeeded", timeout=20,
                              since=0, predicate=lambda e: True)
        deadline = time.monotonic() + 15
        while self.r.compare(expected(self.cat), limit=1) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertCacheMatches(self.r, expected(self.cat))


class LeaseOnRedis(Lease):
    """The same, with Tutor's Redis as the cache: SET NX PX, and scripts
    that renew and release only the holder's own lease."""

    def setUp(self):
        PcdTestCase.setUp(self)
        self.srv = RedisServer()
        self.addCleanup(self.srv.close)
        self.srv.start()
        self.cat = catalog.generate(10, seed=41)
        self.fake = self.start_fake(self.cat)
        self.r = RedisReader(self.srv)
        self.addCleanup(self.r.close)

    def sections(self, refresh):
        cfg = self.config(self.fake, [], [(SITE, 1, "")],
                          daemon={"refresh_interval": refresh, "check_interval": "500ms"})
        del cfg["memcached"]
        return dict([("redis", {"url": self.srv.url(1)})] + list(cfg.items()))

    def restart_cache(self):
        self.srv.restart()


RTTL = 9.0      # the reload tests' lease_ttl: renewals and takes every 3 s


class LeaseReload(PcdTestCase):
    """A SIGHUP that moves the store (memcached to Redis, other servers) or
    the lease key: the lease is released on the old store at once
    (its stand-bys take over without waiting out the ttl), and the daemon
    stands by on the new store until it holds the lease there: it writes
    nothing where another daemon holds it."""

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(10, seed=43)
        self.other = catalog.generate(7, seed=44)
        self.fake = self.start_fake(self.cat)
        self.fake.set_catalogue(self.other, "/other")

    def on_memcached(self, mc, prefix="", key=None):
        cfg = self.config(self.fake, [mc], [(SITE, 1, prefix)],
                          daemon={"refresh_interval": "1h", "check_interval": "500ms"})
        cfg["lease"] = {"enabled": True, "ttl": "%ds" % RTTL}
        if key:
            cfg["lease"]["key"] = key
        return cfg

    def on_redis(self, srv, prefix=""):
        cfg = self.on_memcached(self.mc, prefix)
        del cfg["memcached"]
        return dict([("redis", {"url": srv.url(1)})] + list(cfg.items()))

    def start_redis(self):
        srv = RedisServer()
        self.addCleanup(srv.close)
        return srv.start()

    def holder(self, cfg, name, timeout=10):
        """A daemon started on cfg that took the lease and published."""
        d = self.daemon(cfg, name=name).start()
        d.wait_event("lease_acquired", timeout=timeout)
        d.wait_event("refresh_succeeded", timeout=20)
        return d

    def reload(self, d, cfg):
        mark = d.mark()
        d.write_config(cfg)
        d.send_signal(signal.SIGHUP)
        return mark

    def assert_released_then_taken(self, a, mark, old_server, b):
        """a released the lease on old_server at the reload; b, standing by
        there, took it well before the ttl could have run out."""
        rel = a.wait_event("lease_released", timeout=5, since=mark)
        t_rel = time.monotonic()
        self.assertEqual((rel["server"], rel["reason"]), (old_server, "reload"))
        got = b.wait_event("lease_acquired", timeout=RTTL)
        self.assertEqual(got["server"], old_server)
        # Every RTTL/3 b tries; an unreleased lease would last >= 2/3 RTTL.
        self.assertLess(time.monotonic() - t_rel, RTTL / 3 + 1.5)

    def test_memcached_to_redis_where_another_holds(self):
        """A holds the lease on memcached (B stands by there); C holds it on
        Redis and publishes its own data.  A moves to Redis: B takes over on
        memcached at once, A stands by on Redis and writes nothing there;
        once C stops, A takes the lease on Redis and publishes."""
        srv = self.start_redis()
        a = self.holder(self.on_memcached(self.mc), "a")
        b = self.daemon(self.on_memcached(self.mc), name="b").start()
        c = self.holder(self.on_redis(srv, "/other"), "c")
        rr = RedisReader(srv)
        self.addCleanup(rr.close)
        self.assertCacheMatches(rr, expected(self.other))
        before = {k: rr.raw(k) for k in expected(self.other)}

        mark = self.reload(a, self.on_redis(srv))
        self.assert_released_then_taken(a, mark, self.mc.address, b)
        r = self.reader([self.mc])
        self.assertIn(b":%d:" % b.pid, self.mc.get(r.make_key("programs-cached:lease"))[1])
        lease = [k for k in srv.keys(1) if "lease" in k]
        self.assertEqual(len(lease), 1, lease)
        cl = srv.client(1)
        self.addCleanup(cl.close)
        self.assertIn(b":%d:" % c.pid, cl.get(lease[0]))
        # A stands by on Redis: nothing of its catalogue goes there.
        time.sleep(RTTL / 3 + 1)
        self.assertEqual(a.events_named("lease_acquired", since=mark), [])
        self.assertEqual(a.events_named("refresh_started", since=mark), [])
        self.assertEqual({k: rr.raw(k) for k in before}, before)
        self.assertIn(b":%d:" % c.pid, cl.get(lease[0]))
        self.assertEqual(rr.extra_keys(expected(self.other)) -
                         {k for k in srv.keys(1) if "lease" in k}, set())
        # C goes (and releases): A holds the lease on Redis, then writes.
        self.assertEqual(c.stop(), 0)
        got = a.wait_event("lease_acquired", timeout=RTTL, since=mark)
        self.assertEqual(got["server"], srv.url(1))
        self.assertIn(b":%d:" % a.pid, cl.get(lease[0]))
        a.wait_event("refresh_succeeded", timeout=20, since=mark)
        self.assertCacheMatches(rr, expected(self.cat))
        # And B writes memcached, alone.
        b.wait_event("refresh_succeeded", timeout=20)
        self.assertCacheMatches(self.reader([self.mc]), expected(self.cat))

    def test_other_servers(self):
        """[memcached] servers changes: released on the old server (its
        stand-by takes over at once), taken on the new one, which is
        written only after that."""
        mc2 = self.start_memcached()
        a = self.holder(self.on_memcached(self.mc), "a")
        b = self.daemon(self.on_memcached(self.mc), name="b").start()
        mark = self.reload(a, self.on_memcached(mc2))
        self.assert_released_then_taken(a, mark, self.mc.address, b)
        got = a.wait_event("lease_acquired", timeout=RTTL, since=mark)
        self.assertEqual(got["server"], mc2.address)
        a.wait_event("refresh_succeeded", timeout=20, since=mark)
        evs = [e["event"] for e in a.events[mark:]
               if e["event"] in ("lease_released", "lease_acquired", "refresh_started")]
        self.assertEqual(evs[:3], ["lease_released", "lease_acquired", "refresh_started"])
        self.assertCacheMatches(self.reader([mc2]), expected(self.cat))

    def test_other_lease_key(self):
        """[lease] key changes on the same memcached: the old key is released
        (its stand-by takes it at once) and the new one taken."""
        a = self.holder(self.on_memcached(self.mc), "a")
        b = self.daemon(self.on_memcached(self.mc), name="b").start()
        mark = self.reload(a, self.on_memcached(self.mc, key="other-fleet:lease"))
        self.assert_released_then_taken(a, mark, self.mc.address, b)
        a.wait_event("lease_acquired", timeout=RTTL, since=mark)
        r = self.reader([self.mc])
        old = self.mc.get(r.make_key("programs-cached:lease"))
        new = self.mc.get(r.make_key("other-fleet:lease"))
        self.assertIn(b":%d:" % b.pid, old[1])
        self.assertIn(b":%d:" % a.pid, new[1])

    def test_same_store_keeps_the_lease(self):
        """A reload that changes neither the store nor the key keeps the
        lease: nothing released, nothing lost."""
        a = self.holder(self.on_memcached(self.mc), "a")
        cfg = self.on_memcached(self.mc)
        cfg["daemon"]["check_interval"] = "700ms"
        mark = self.reload(a, cfg)
        a.wait_event("refresh_succeeded", timeout=20, since=mark)
        self.assertEqual(a.events_named("lease_released", since=mark), [])
        self.assertEqual(a.events_named("lease_lost", since=mark), [])
