"""Full refreshes under valgrind: no leaks, no memory errors (make
check-valgrind).  Not part of `make check`'s discovery: valgrind makes a
refresh tens of times slower, so it runs as its own step in .ci/run."""

import os
import signal

from tests.support import catalog
from tests.support.harness import PcdTestCase, daemon_binary

VALGRIND = ["/usr/bin/valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=all",
            "--errors-for-leak-kinds=definite,indirect,possible",
            "--error-exitcode=99", "--track-fds=no"]


class Valgrind(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(40, seed=2, n_pathways=25)
        self.fake = self.start_fake(self.cat, require_auth=True)

    def vg_daemon(self, **daemon):
        return self.daemon(self.config(self.fake, [self.mc], [
            ("lms.example.com", 1, ""), ("other.example.com", 2, None)],
            daemon=daemon), binary=VALGRIND + [daemon_binary()])

    def assert_clean(self, rc, stderr):
        self.assertNotEqual(rc, 99, "valgrind found errors:\n" + "\n".join(
            l for l in stderr.splitlines() if l.startswith("==")))

    def test_once(self):
        rc, events, stderr = self.vg_daemon().run_once(timeout=300)
        self.assert_clean(rc, stderr)
        self.assertEqual(rc, 0, stderr[-2000:])

    def test_daemon_with_reloads_failures_and_stop(self):
        """Refreshes that succeed, one with failures (details, pathways),
        a reload, and SIGTERM in the middle of a refresh."""
        d = self.vg_daemon(refresh_interval="1h")
        d.start()
        d.wait_event("refresh_succeeded", timeout=300)
        self.fake.set_fault(self.fake.program_path(self.cat["uuids"][3]), kind="status",
                            status=500)
        self.fake.set_fault(self.fake.pathways_target(2), kind="malformed")
        d.send_signal(signal.SIGHUP)
        d.wait_event("refresh_incomplete", timeout=300)
        self.fake.clear_faults()
        self.fake.set_latency(0.2)
        d.send_signal(signal.SIGHUP)
        d.wait_event("refresh_started", timeout=60, since=len(d.events))
        d.send_signal(signal.SIGTERM)
        rc = d.stop(timeout=300)
        self.assert_clean(rc, "\n".join(d.raw_lines))
        self.assertEqual(rc, 0)

    def test_redis_lease_incremental_and_repair(self):
        """The daemon on Redis with the lease and incremental refreshes:
        a full refresh, incremental ones, a FLUSHDB repaired from the
        snapshot, SIGTERM (the lease released)."""
        from tests.support.rediscache import RedisServer
        srv = RedisServer()
        self.addCleanup(srv.close)
        srv.start()
        fake = self.start_fake(self.cat, timestamps=True)
        cfg = self.config(fake, [], [("lms.example.com", 1, "")],
                          daemon={"refresh_interval": "1h", "incremental_interval": "1s",
                                  "check_interval": "500ms"})
        del cfg["memcached"]
        cfg = dict([("redis", {"url": srv.url(1)})] + list(cfg.items()))
        cfg["lease"] = {"enabled": True, "ttl": "6s"}
        d = self.daemon(cfg, binary=VALGRIND + [daemon_binary()], name="vgredis")
        d.start()
        d.wait_event("refresh_succeeded", timeout=300)
        d.wait_event("refresh_succeeded", timeout=120,
                     predicate=lambda e: e.get("kind") == "incremental")
        srv.flushdb(1)
        d.wait_event("cache_repaired", timeout=120)
        d.send_signal(signal.SIGTERM)
        rc = d.stop(timeout=300)
        self.assert_clean(rc, "\n".join(d.raw_lines))
        self.assertEqual(rc, 0)
