"""Several daemons, one writer: the lease in the cache itself (SPEC §11).

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
