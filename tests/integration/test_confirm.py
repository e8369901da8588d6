"""Truthful success and the first check after start-up (issue 26).

A refresh succeeds only when every key it meant to have in the cache is
there: a value skipped as unchanged counts only on a server that answered
in this publish and that the monitor found holding its keys since it last
restarted.  A stopped memcached fails the refresh, named; one restarted
behind the daemon's back is refilled by the next refresh, not skipped.

The first check after start-up comes check_interval after it (it came two
intervals late: libevent scheduled the persistent timer from the run that
was due, not from the one made at start-up).  Every test reads the cache
back as the LMS does; the logs only say which server and why."""

import time

from tests.integration.test_ops import http_get, scrape
from tests.integration.test_redis import RedisCase
from tests.support import catalog, reference
from tests.support.harness import PcdTestCase

DOMAIN = "lms.example.com"


def expected_of(cat):
    return reference.expected_cache([{"domain": DOMAIN, "site_id": 1, "catalogue": cat}])


def wait_matches(reader, expected, within):
    """Seconds until the cache matches expected; AssertionError (with the
    differences) if it does not within `within` seconds."""
    t0 = time.monotonic()
    while True:
        diffs = reader.compare(expected, limit=5)
        if not diffs:
            return time.monotonic() - t0
        if time.monotonic() - t0 > within:
            raise AssertionError("cache not as expected within %.1f s: %s" % (within, diffs))
        time.sleep(0.05)


class TruthfulSuccess(PcdTestCase):
    """Incremental refreshes every second that find nothing new (so every
    value is skipped as unchanged), a monitor that would check only once an
    hour: what the publish itself asks is all that stands between a stopped
    or emptied memcached and a refresh_succeeded."""

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(25, seed=17)
        self.fake = self.start_fake(self.cat, timestamps=True)
        self.d = self.daemon(self.config(self.fake, [self.mc], [(DOMAIN, 1, "")], daemon={
            "incremental_interval": "1s", "refresh_interval": "1h",
            "check_interval": "1h", "verify_interval": "1h", "listen": "127.0.0.1:0",
            # the polling checks are under test, not the reader watch
            "reader_watch": "off"}))
        self.d.start()
        self.addr = self.d.wait_event("listening")["address"]
        self.d.wait_event("refresh_succeeded", timeout=20,
                          predicate=lambda e: e["kind"] == "full")
        self.d.wait_event("cache_verified", timeout=20)
        self.expected = expected_of(self.fake.served_catalogue())
        self.reader_ = self.reader([self.mc])
        self.assertCacheMatches(self.reader_, self.expected)
        # Confirmed by the verify pass: an idle incremental skips it all.
        ok = self.idle_success()
        self.assertEqual((ok["keys_written"], ok["keys_skipped"]), (0, len(self.expected)))

    def idle_success(self, since=None, timeout=20):
        since = self.d.mark() if since is None else since
        return self.d.wait_event("refresh_succeeded", timeout=timeout, since=since,
                                 predicate=lambda e: e["kind"] == "incremental")

    def ok_metrics(self):
        samples, _ = scrape(self.addr)
        return (samples[("programs_cached_refreshes_total", (("outcome", "ok"),))],
                samples[("programs_cached_last_success_timestamp_seconds", ())])

    def test_stopped_memcached_fails_the_refresh_naming_it(self):
        before = self.ok_metrics()
        mark = self.d.mark()
        self.mc.stop()
        inc = self.d.wait_event("refresh_incomplete", since=mark, timeout=20)
        self.assertEqual((inc["kind"], inc["outcome"]), ("incremental", "failed"))
        self.assertEqual(inc["keys_skipped"], 0)
        failed = [e for e in self.d.events_named("refresh_failed", since=mark)
                  if e.get("refresh_id") == inc["refresh_id"]]
        self.assertEqual([(e["stage"], e["server"]) for e in failed],
                         [("publish", self.mc.address)], failed)
        # Two more go by: none is a success, nothing counts as one.
        self.d.wait_events("refresh_incomplete", 3, since=mark, timeout=20)
        self.assertEqual(self.d.events_named("refresh_succeeded", since=mark), [])
        self.assertEqual(self.ok_metrics(), before)
        status, _, body = http_get(self.addr, "/readyz")
        self.assertEqual(status, 503, body)

        # Back, empty: the next refresh's own question finds the restart,
        # and the cache is whole before that refresh says it succeeded.
        mark = self.d.mark()
        self.mc.restart()
        self.idle_success(since=mark)
        self.reader_.reconnect()
        self.assertCacheMatches(self.reader_, self.expected)
        self.assertGreater(self.ok_metrics()[0], before[0])
        self.assertEqual(self.d.stop(), 0)

    def test_restart_between_refreshes_is_refilled_not_skipped(self):
        """memcached restarted (empty) between two incremental refreshes,
        with the monitor's next timed check an hour away: the refresh that
        follows asks first, so it does not skip 367 values that are gone."""
        mark = self.d.mark()
        self.mc.restart()
        self.assertEqual(self.mc.dump_keys(), set())
        ok = self.idle_success(since=mark)
        # Right after the success, before anything else could run.
        self.reader_.reconnect()
        self.assertCacheMatches(self.reader_, self.expected)
        empty = self.d.events_named("cache_empty_detected", since=mark)
        self.assertEqual([(e["reason"], e["pid"]) for e in empty],
                         [("pid changed", self.mc.pid)])
        self.assertEqual(ok["refresh_id"], empty[0]["refresh_id"])
        self.assertEqual(self.d.stop(), 0)


CHECK_S = 8      # check_interval of the first-check tests
RESTART_S = 5    # when the cache restarts, after the daemon started


class FirstCheck(RedisCase):
    """A cache restarted 5 s after the daemon started is whole again within
    check_interval + 1 s.  check_interval is 8 s so that the old schedule
    (the first timed check at 16 s) would miss it by far: 11 s after the
    restart."""

    def setUp(self):
        super().setUp()
        self.cat = catalog.generate(25, seed=5)
        self.fake = self.start_fake(self.cat)
        self.timers = {"refresh_interval": "1h", "incremental_interval": "0",
                       "check_interval": "%ds" % CHECK_S, "verify_interval": "1h",
                       "reader_watch": "off"}

    def restart_and_wait(self, d, reader, restart):
        t0 = time.monotonic()
        d.start()
        d.wait_event("refresh_succeeded", timeout=RESTART_S - 1)
        wait_matches(reader, self.expected, 1)
        self.fake.stop()         # the repair must come from the snapshot
        time.sleep(max(0, t0 + RESTART_S - time.monotonic()))
        t = time.monotonic()
        restart()
        reader.reconnect()
        wait_matches(reader, self.expected, CHECK_S + 1)
        self.assertLessEqual(time.monotonic() - t, CHECK_S + 1)
        return d.wait_event("cache_empty_detected", timeout=1)

    def test_memcached(self):
        mc = self.start_memcached()
        self.expected = expected_of(self.cat)
        d = self.daemon(self.config(self.fake, [mc], [(DOMAIN, 1, "")], daemon=self.timers))
        empty = self.restart_and_wait(d, self.reader([mc]), mc.restart)
        self.assertEqual((empty["reason"], empty["pid"]), ("pid changed", mc.pid))
        self.assertNotIn("run_id", empty)
        self.assertEqual(d.stop(), 0)

    def test_redis(self):
        """The same on Redis, whose restart is told by run_id, and logged as
        one (a 40-digit hex string), never as a pid."""
        srv = self.start_redis()
        self.expected = expected_of(self.cat)
        d = self.daemon(self.redis_config(self.fake, srv, [(DOMAIN, 1, "")],
                                          redis={"key_function": "edx"}, daemon=self.timers))
        empty = self.restart_and_wait(d, self.redis_reader(srv, key_function="edx"),
                                      srv.restart)
        self.assertEqual(empty["reason"], "run_id changed")
        self.assertEqual(empty["run_id"], srv.info()["run_id"])
        self.assertRegex(empty["run_id"], r"^[0-9a-f]{40}$")
        self.assertNotIn("pid", empty)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
