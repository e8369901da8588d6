"""Rows of the fault matrix (docs/design.md, Failures) that the other suites
do not cover, each asserting what is in the cache, not only the log."""

import signal
import time
from urllib.parse import unquote_plus

from tests.support import catalog, reference
from tests.support.harness import PcdTestCase

SITE = "lms.example.com"
INDEX_PREFIXES = ("course-programs-", "catalog-course-programs-",
                  "programs-by-type-", "organization-programs-", "program-uuids-")


def process_state(pid):
    """The state letter of /proc/PID/stat (T: stopped)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


class Matrix(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(40, seed=31, dangling_pathway=False)
        self.fake = self.start_fake(self.cat)

    def daemon_for(self, env=None, **daemon):
        dmn = {"refresh_interval": "1h"}
        dmn.update(daemon)
        return self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")], daemon=dmn),
                           env=env)

    def test_sighup_storm_gives_one_more_refresh(self):
        """100 SIGHUPs during a refresh: exactly one more refresh."""
        self.fake.set_latency(0.02)
        d = self.daemon_for()
        d.start()
        d.wait_event("refresh_started", timeout=10)
        self.fake.wait_requests(lambda r: r.kind == "program", 3, timeout=10)
        for _ in range(100):
            d.send_signal(signal.SIGHUP)
        d.wait_events("refresh_succeeded", 2, timeout=60)
        time.sleep(1.5)
        self.assertEqual(len(d.events_named("refresh_started")), 2)
        self.assertEqual(len(d.events_named("refresh_succeeded")), 2)
        self.assertEqual(d.stop(), 0)

    def indexes_point_at_programs(self, reader):
        """For every UUID in any index in memcached, the program is there."""
        # Wire keys back to cache keys (safe_key is quote_plus; the few
        # hashed long keys are course-programs-* and are skipped).
        present = {unquote_plus(k.split(":", 2)[2]) for k in self.mc.dump_keys()
                   if k.count(":") >= 2}
        checked = 0
        for key in present:
            if not key.startswith(INDEX_PREFIXES):
                continue
            for uuid in reader.get(key):
                self.assertIn("program-" + uuid, present, "%s names %s" % (key, uuid))
                checked += 1
        self.assertGreater(checked, 40)

    def test_crash_between_details_and_indexes(self):
        """kill -9 after the details are written and before the indexes:
        no index points at a missing program, old or new."""
        rc, _, stderr = self.daemon_for().run_once()
        self.assertEqual(rc, 0, stderr)
        grown = catalog.generate(50, seed=31, dangling_pathway=False)
        self.fake.set_catalogue(grown)
        r = self.reader([self.mc])
        for phase in ("0", "1"):
            with self.subTest(stop_after_phase=phase):
                d = self.daemon_for(env={"PCD_TEST_STOP_AFTER_PHASE": phase})
                d.start("--once")
                deadline = time.monotonic() + 30
                while process_state(d.proc.pid) != "T":
                    self.assertLess(time.monotonic(), deadline, "never stopped")
                    time.sleep(0.02)
                d.kill9()
                self.indexes_point_at_programs(r)
                new = [u for u in grown["uuids"] if u not in self.cat["uuids"]]
                # The details of the new programs are in ...
                for u in new:
                    self.assertIsNotNone(r.get("program-" + u))
                # ... but the site's list is still the old one.
                self.assertEqual(r.get("program-uuids-" + SITE), self.cat["uuids"])

    def test_memcached_down_at_start(self):
        """The daemon starts without memcached, says so once, keeps running,
        and publishes once memcached is there."""
        port = self.mc.port
        self.mc.stop()
        d = self.daemon_for()
        d.start()
        d.wait_event("refresh_incomplete", timeout=20)
        errs = d.events_named("memcached_error")
        self.assertEqual(len(errs), 1, errs)
        self.assertTrue(d.running)
        self.mc.start()
        self.assertEqual(self.mc.port, port)
        d.send_signal(signal.SIGHUP)
        d.wait_event("refresh_succeeded", timeout=30)
        expected = reference.expected_cache([{"domain": SITE, "site_id": 1,
                                              "catalogue": self.cat}])
        self.assertCacheMatches(self.reader([self.mc]), expected)
        self.assertEqual(d.stop(), 0)


class ConfigMistakes(PcdTestCase):

    def test_every_kind_of_mistake_in_one_file(self):
        """Each mistake is reported with its line and key; nothing starts."""
        text = "\n".join([
            "[discovery]",                           # 1
            "connect_timeout = 5 parsecs",           # 2 bad duration
            "max_response_size = lots",              # 3 bad size
            "retries = -1",                          # 4 out of range
            "max_in_flight = 8",                     # 5
            "max_in_flight = 9",                     # 6 duplicate
            "[memcached]",                           # 7
            "servers = 127.0.0.1:0",                 # 8 bad port
            "key_function = sha1",                   # 9 bad enum
            "pickle_protocol = 6",                   # 10 out of range
            "[daemon]",                              # 11
            "force_publish = maybe",                 # 12 bad boolean
            "max_shrink = 150%",                     # 13 bad fraction
            "colour = blue",                         # 14 unknown key
            "listen = " + "9" * 200,                 # 15 line too long
            "[daemons]",                             # 16
            "x = 1",                                 # 17 unknown section
            "[site a.example]",                      # 18
            "site_id = 1",                           # 19
            "catalog_api_url = gopher://x",          # 20 bad URL
            "[site b.example]",                      # 21
            "site_id = 1",                           # 22 duplicate site id
            "",
        ])
        path = self.write_file("mistakes.conf", text)
        d = self.daemon({"daemon": {}})
        rc, events, _ = d.run("-c", path, "--check-config")
        self.assertEqual(rc, 2)
        got = sorted((e["line"], e["key"]) for e in events if e["event"] == "config_error")
        want = sorted([(2, "connect_timeout"), (3, "max_response_size"), (4, "retries"),
                       (6, "max_in_flight"), (8, "servers"), (9, "key_function"),
                       (10, "pickle_protocol"), (12, "force_publish"), (13, "max_shrink"),
                       (14, "colour"), (15, None), (17, "x"), (20, "catalog_api_url")])
        self.assertEqual(got, want)
        # The whole-file checks run once the lines are right.
        fixed = "\n".join(l for i, l in enumerate(text.split("\n"), 1)
                          if i in (1, 5, 7, 11, 18, 19, 21, 22))
        rc, events, _ = d.run("-c", self.write_file("dup.conf", fixed), "--check-config")
        self.assertEqual(rc, 2)
        err = [e for e in events if e["event"] == "config_error"]
        self.assertEqual([(e["line"], e["key"]) for e in err], [(8, "site_id")])
        self.assertIn("used by [site a.example] too", err[0]["error"])
