"""End to end: the daemon against a fake Discovery over real HTTP and a real
memcached, read back by the LMS's own cache client (Django + pymemcache) and
compared with what cache_programs' algorithm makes of the same catalogue."""

import copy
import os
import signal
import time

from tests.support import catalog, reference
from tests.support.harness import PcdTestCase

VERSION = "0.1.0"


def named(events, name):
    """The events called name, in order."""
    return [e for e in events if e.get("event") == name]


class EndToEnd(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(25, seed=11)
        self.fake = self.start_fake(self.cat)
        self.sites = [("lms.example.com", 1, ""), ("other.example.com", 2, None)]

    def expected(self):
        return reference.expected_cache([
            {"domain": "lms.example.com", "site_id": 1, "catalogue": self.cat},
            {"domain": "other.example.com", "site_id": 2, "catalogue": None},
        ])

    def run_daemon(self, *args, **cfg):
        d = self.daemon(self.config(self.fake, [self.mc], self.sites, **cfg))
        return d, d.run_once(*args)

    def test_once_writes_what_the_lms_reads(self):
        """Every key of every family equals what cache_programs would have
        cached, read through Django's PyMemcacheCache with safe_key."""
        _, (rc, events, stderr) = self.run_daemon()
        self.assertEqual(rc, 0, stderr)
        expected = self.expected()
        families = {reference.family_of(k) for k in expected}
        for fam in ("program", "program-uuids", "course-programs"):
            self.assertIn(fam, families)
        reader = self.reader([self.mc])
        self.assertCacheMatches(reader, expected)
        # Nothing else was written.
        wire = {reader.make_key(k) for k in expected}
        self.assertEqual(self.mc.dump_keys(), wire)
        # Values are pickles with flags 1, as pymemcache's pickle_serde.
        flags, data = self.mc.get(reader.make_key("program-" + self.cat["uuids"][0]))
        self.assertEqual(flags, 1)
        self.assertEqual(data[:2], b"\x80\x04")
        ok = named(events, "refresh_succeeded")
        self.assertEqual(len(ok), 1)
        self.assertEqual(ok[0]["programs"], len(set(self.cat["uuids"])))
        self.assertEqual(ok[0]["keys_written"], len(expected))

    def test_child_program_runs_map_to_parent_and_child(self):
        """The curricula walk: a child program's course runs list both the
        parent's and the child's UUID (upstream's test asserts this)."""
        rc, _, stderr = self.run_daemon()[1]
        self.assertEqual(rc, 0, stderr)
        q = catalog.quirks_of(self.cat)
        parent = self.cat["programs"][q["parent"]]
        child = parent["curricula"][[c["is_active"] for c in parent["curricula"]].index(True)]["programs"][0]
        reader = self.reader([self.mc])
        # An organization listed twice lists the program twice (the same
        # str object: BINGET in the pickle), as upstream's test asserts.
        twice = self.cat["programs"][q["double_org"]]["authoring_organizations"][0]["key"]
        self.assertEqual(reader.get("organization-programs-" + twice).count(q["double_org"]), 2)
        run = child["courses"][0]["course_runs"][0]["key"]
        got = reader.get("course-programs-" + run)
        self.assertIn(parent["uuid"], got)
        self.assertIn(child["uuid"], got)

    def test_requests_are_discoverys_own(self):
        """The UUID list, every detail once, then pathway pages, with the
        exact query strings (the fake rejects any other) and headers."""
        rc, _, stderr = self.run_daemon()[1]
        self.assertEqual(rc, 0, stderr)
        reqs = self.fake.requests
        self.assertTrue(all(r.status == 200 for r in reqs), [(r.target, r.status) for r in reqs])
        kinds = [r.kind for r in reqs]
        self.assertEqual(kinds[0], "uuids")
        self.assertEqual(kinds.count("uuids"), 1)
        details = sorted(r.uuid for r in reqs if r.kind == "program")
        self.assertEqual(details, sorted(set(self.cat["uuids"])))
        self.assertEqual(kinds.count("pathways"), (len(self.cat["pathways"]) + 19) // 20)
        for r in reqs:
            self.assertEqual(r.headers.get("accept"), "application/json")
            self.assertEqual(r.headers.get("user-agent"), "programs-cached/" + VERSION)
            self.assertIn("gzip", r.headers.get("accept-encoding", ""))

    def test_details_run_concurrently_on_reused_connections(self):
        """With latency per request, details overlap (bounded by
        max_in_flight) and connections are kept alive."""
        self.fake.set_latency(0.2)
        d = self.daemon(self.config(self.fake, [self.mc], self.sites,
                                    discovery={"max_in_flight": 5}))
        t0 = time.monotonic()
        rc, _, stderr = d.run_once()
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0, stderr)
        n = len(self.fake.requests)
        # Serial would take n * 0.2 s; five at a time about a fifth.
        self.assertLess(elapsed, n * 0.2 / 2)
        conns = {r.conn for r in self.fake.requests}
        self.assertLessEqual(len(conns), 6)

    def test_static_token(self):
        """token_file: every request carries Authorization: JWT <token>."""
        fake = self.start_fake(self.cat, require_auth=True, static_tokens=("s3cret-token",))
        tok = self.write_file("token", "s3cret-token\n")
        d = self.daemon(self.config(fake, [self.mc], [("lms.example.com", 1, "")],
                                    auth=False, discovery={"token_file": tok}))
        rc, events, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        for r in fake.requests:
            self.assertEqual(r.headers.get("authorization"), "JWT s3cret-token")
        self.assertNotIn("s3cret-token", stderr)

    def test_domain_limits_the_refresh(self):
        """--domain refreshes one site: the other site's keys are not
        written."""
        rc, _, stderr = self.run_daemon("--domain", "other.example.com")[1]
        self.assertEqual(rc, 0, stderr)
        reader = self.reader([self.mc])
        self.assertEqual(reader.get("program-uuids-other.example.com"), [])
        self.assertIsNone(reader.get("program-uuids-lms.example.com"))
        self.assertEqual(self.fake.requests, [])

    def test_failed_uuid_list_writes_nothing_and_exits_1(self):
        """A site whose UUID list fails writes nothing (the failure rules), and the
        one-shot exit code says so."""
        self.fake.set_fault(self.fake.uuids_path(), kind="status", status=500)
        rc, events, stderr = self.run_daemon(discovery={"retries": 0})[1]
        self.assertEqual(rc, 1, stderr)
        fails = [e for e in named(events, "refresh_failed") if e.get("stage") == "uuids"]
        self.assertEqual(len(fails), 1)
        self.assertEqual(fails[0]["http_status"], 500)
        self.assertEqual(fails[0]["site"], "lms.example.com")
        self.assertIn("/programs/?", fails[0]["url"])
        reader = self.reader([self.mc])
        self.assertIsNone(reader.get("program-uuids-lms.example.com"))
        self.assertEqual(reader.get("program-uuids-other.example.com"), [])


class Signals(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(20, seed=5)
        self.fake = self.start_fake(self.cat)

    def start_daemon(self, **daemon):
        cfg = {"refresh_interval": "1h"}
        cfg.update(daemon)
        d = self.daemon(self.config(self.fake, [self.mc], [("lms.example.com", 1, "")],
                                    discovery={"max_in_flight": 2}, daemon=cfg))
        d.start()
        return d

    def test_sighup_during_a_refresh_queues_exactly_one_more(self):
        """SIGHUP five times during a refresh: one more refresh, and it
        writes nothing because nothing changed."""
        self.fake.set_latency(0.05)
        d = self.start_daemon()
        d.wait_event("refresh_started", timeout=10)
        self.fake.wait_requests(lambda r: r.kind == "program", 2, timeout=10)
        for _ in range(5):
            d.send_signal(signal.SIGHUP)
            time.sleep(0.02)
        d.wait_events("refresh_succeeded", 2, timeout=30)
        time.sleep(1.0)
        self.assertEqual(len(d.events_named("refresh_started")), 2)
        second = d.events_named("refresh_succeeded")[1]
        self.assertEqual(second["keys_written"], 0)
        self.assertGreater(second["keys_skipped"], 0)
        # Every detail came back byte for byte: none was parsed again.
        self.assertEqual(second["details_unchanged"], len(set(self.cat["uuids"])))
        self.assertEqual(len(d.events_named("signal")), 5)
        self.assertEqual(d.stop(), 0)

    def test_a_changed_detail_is_parsed_again(self):
        """Only the program whose body changed is parsed and rewritten."""
        d = self.start_daemon()
        d.wait_event("refresh_succeeded", timeout=20)
        cat = copy.deepcopy(self.cat)
        uuid = cat["uuids"][4]
        cat["programs"][uuid]["title"] = "A new title"
        self.fake.set_catalogue(cat)
        d.send_signal(signal.SIGHUP)
        second = d.wait_events("refresh_succeeded", 2, timeout=20)[1]
        self.assertEqual(second["details_unchanged"], len(cat["uuids"]) - 1)
        self.assertEqual(second["keys_written"], 1)
        self.assertEqual(self.reader([self.mc]).get("program-" + uuid)["title"], "A new title")
        self.assertEqual(d.stop(), 0)

    def test_sighup_when_idle_refreshes_now(self):
        d = self.start_daemon()
        d.wait_event("refresh_succeeded", timeout=20)
        d.send_signal(signal.SIGHUP)
        d.wait_events("refresh_succeeded", 2, timeout=20)
        self.assertEqual(len(d.events_named("config_loaded")), 2)
        self.assertEqual(d.stop(), 0)

    def test_sigterm_mid_refresh_exits_0_promptly(self):
        """A detail that never answers: SIGTERM still ends the daemon at
        once, with exit 0 and a shutdown event."""
        hang = self.fake.set_fault(self.fake.program_path(self.cat["uuids"][3]), kind="hang")
        d = self.start_daemon()
        d.wait_event("refresh_started", timeout=10)
        self.fake.wait_requests(lambda r: r.kind == "program", 4, timeout=10)
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        self.assertEqual(d.stop(timeout=5), 0)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(len(d.events_named("shutdown")), 1)
        hang.release()

    def test_sigint_stops_too(self):
        d = self.start_daemon()
        d.wait_event("refresh_succeeded", timeout=20)
        d.send_signal(signal.SIGINT)
        self.assertEqual(d.stop(timeout=5), 0)


class CommandLine(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()

    def conf(self, text):
        return self.write_file("bad.conf", text)

    def run_with(self, *args):
        d = self.daemon({"daemon": {}})
        return d.run(*args)

    def test_config_errors_name_file_line_and_key(self):
        cases = [
            ("[daemon]\nrefresh_interval = soon\n", 2, "refresh_interval", "bad duration"),
            ("[daemon]\nbogus = 1\n", 2, "bogus", "unknown key"),
            ("[nowhere]\nx = 1\n", 2, "x", "unknown section"),
            ("[memcached]\nservers = host:99999\n", 2, "servers", "bad server"),
            ("[site a.example]\nsite_id = one\n", 2, "site_id", "bad site id"),
            ("[discovery]\nmax_in_flight = 0\n[site a]\nsite_id=1\n", 2, "max_in_flight", "bad number"),
            ("[daemon]\nlisten = " + "x" * 250 + "\n", 2, None, "longer than"),
            ("[daemon]\nlog_level = loud\n", 2, "log_level", "bad value"),
            ("[site a]\nsite_id = 1\ncatalog_api_url = ftp://x\n", 3, "catalog_api_url", "bad URL"),
        ]
        for text, line, key, words in cases:
            with self.subTest(text=text):
                path = self.conf(text + ("[site z]\nsite_id = 9\n" if "[site" not in text else ""))
                rc, events, stderr = self.run_with("-c", path, "--check-config")
                self.assertEqual(rc, 2, stderr)
                errs = named(events, "config_error")
                self.assertTrue(errs, stderr)
                self.assertEqual(errs[0]["file"], path)
                self.assertEqual(errs[0]["line"], line)
                self.assertEqual(errs[0]["key"], key)
                self.assertIn(words, errs[0]["error"])

    def test_every_mistake_is_reported(self):
        path = self.conf("[daemon]\nbogus = 1\nstale_after = -1\n[site a]\n"
                         "site_id = x\n")
        rc, events, _ = self.run_with("-c", path, "--check-config")
        self.assertEqual(rc, 2)
        self.assertEqual([e["line"] for e in named(events, "config_error")], [2, 3, 5])

    def test_missing_file_and_no_sites(self):
        rc, events, _ = self.run_with("-c", os.path.join(self.tmpdir, "nope.conf"))
        self.assertEqual(rc, 2)
        self.assertIn("No such file", named(events, "config_error")[0]["error"])
        rc, events, _ = self.run_with("-c", self.conf("[daemon]\n"), "--check-config")
        self.assertEqual(rc, 2)
        self.assertIn("no [site", named(events, "config_error")[0]["error"])

    def test_check_config_ok(self):
        path = self.conf("[discovery]\nauth = none\n"
                         "[memcached]\nservers = 127.0.0.1:1, [::1]:2\n"
                         "[site b.example]\nsite_id = 2\n"
                         "[site a.example]\nsite_id = 1\ncatalog_api_url = http://x/api/v1/\n")
        rc, events, stderr = self.run_with("-c", path, "--check-config")
        self.assertEqual(rc, 0, stderr)
        self.assertEqual(named(events, "config_loaded")[0]["sites"], 2)

    def test_bad_flags_exit_2(self):
        for args in (["--bogus"], ["--domain"], ["extra"], ["-c"]):
            with self.subTest(args=args):
                rc, _, stderr = self.run_with(*args)
                self.assertEqual(rc, 2)
                self.assertIn("--help", stderr)

    def test_domain_must_be_configured(self):
        path = self.conf("[site a.example]\nsite_id = 1\n")
        rc, events, _ = self.run_with("-c", path, "--once", "--domain", "b.example")
        self.assertEqual(rc, 2)
        self.assertTrue(named(events, "config_error"))

    def test_help_and_version(self):
        rc, _, _ = self.run_with("--version")
        self.assertEqual(rc, 0)
        rc, _, _ = self.run_with("--help")
        self.assertEqual(rc, 0)
