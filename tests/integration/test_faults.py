"""Discovery faults, each injected per URL over real HTTP, with the cache
contents compared before and after (the failure rules: a failed refresh never makes
the cache worse).

Each test publishes a catalogue, then changes every program's title (so a
successful fetch would change every program value), injects one fault,
refreshes again (SIGHUP) and checks that exactly what the fault touched
kept its old bytes while everything else moved on."""

import copy
import json
import signal
import time

from tests.support import catalog, reference
from tests.support.fakedisco import http_date
from tests.support.harness import PcdTestCase

SITE = "lms.example.com"


def v2(cat):
    """The catalogue after an edit in Discovery: every title changes."""
    cat = copy.deepcopy(cat)
    for p in cat["programs"].values():
        p["title"] = p["title"] + " (v2)"
    return cat


def expected(cat):
    return reference.expected_cache([{"domain": SITE, "site_id": 1, "catalogue": cat}])


class Faults(PcdTestCase):

    discovery = {"retries": 1, "retry_backoff": "50ms", "retry_backoff_max": "200ms"}

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(12, seed=3)
        self.fake = self.start_fake(self.cat, **self.fake_options())
        self.reader_ = self.reader([self.mc])

    def fake_options(self):
        return {}

    def start(self, discovery=None, daemon=None, args=()):
        disc = dict(self.discovery)
        disc.update(discovery or {})
        dmn = {"refresh_interval": "1h"}
        dmn.update(daemon or {})
        self.d = self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")],
                                         discovery=disc, daemon=dmn))
        self.d.start(*args)
        self.wait_refresh(1)
        self.before = self.cache()
        self.assertCacheMatches(self.reader_, expected(self.cat))

    def wait_refresh(self, n, timeout=30):
        """Wait for the n-th refresh to end, successful or not."""
        def ended():
            ok = self.d.events_named("refresh_succeeded")
            bad = self.d.events_named("refresh_incomplete")
            return len(ok) + len(bad)
        deadline = time.monotonic() + timeout
        while ended() < n:
            if time.monotonic() > deadline:
                self.fail("refresh %d did not end; events: %s" % (n, [e["event"] for e in self.d.events]))
            if not self.d.running:
                self.fail("daemon exited")
            time.sleep(0.05)
        return self.d.events[-1]

    def refresh_again(self, timeout=30):
        mark = len(self.d.events)
        self.d.send_signal(signal.SIGHUP)
        self.wait_refresh(2 + self.refreshes_done, timeout)
        self.refreshes_done += 1
        return self.d.events[mark:]

    refreshes_done = 0

    def cache(self):
        """Every key in memcached with its flags and bytes."""
        return {k: self.mc.get(k) for k in self.mc.dump_keys()}

    def wire(self, key):
        return self.reader_.make_key(key)

    def failures(self, events, stage):
        return [e for e in events if e["event"] == "refresh_failed" and e.get("stage") == stage]

    def assert_only(self, kept, events=None):
        """Keys in kept have their old bytes; all others are v2's values."""
        after = self.cache()
        new = expected(v2(self.cat))
        kept_wire = {self.wire(k) for k in kept}
        for k in kept_wire:
            self.assertEqual(after.get(k), self.before.get(k), "changed: %s" % k)
        for k, v in new.items():
            w = self.wire(k)
            if w in kept_wire:
                continue
            self.assertEqual(self.reader_.get(k), v, "not updated: %s" % k)

    # -- the UUID list ---------------------------------------------------------

    def test_uuid_list_5xx_keeps_the_whole_site(self):
        for status in (500, 502, 503):
            with self.subTest(status=status):
                self.tearDown_once()
                self.start()
                self.fake.set_catalogue(v2(self.cat))
                self.fake.set_fault(self.fake.uuids_path(), kind="status", status=status)
                events = self.refresh_again()
                self.assertEqual(self.cache(), self.before)
                f = self.failures(events, "uuids")
                self.assertEqual(len(f), 1)
                self.assertEqual(f[0]["http_status"], status)
                self.assertEqual(f[0]["attempt"], 2)
                self.assertEqual(f[0]["site"], SITE)
                self.assertIn("uuids_only=1", f[0]["url"])
                retries = [e for e in events if e["event"] == "http_retry"]
                self.assertEqual(len(retries), 1)
                self.assertEqual((retries[0]["site"], retries[0]["endpoint"]), (SITE, "uuids"))
                # Every event of the refresh names it; a boolean is one.
                self.assertEqual(retries[0]["refresh_id"], f[0]["refresh_id"])
                sig = [e for e in events if e["event"] == "signal"]
                self.assertIs(sig[0]["refreshing"], False)

    def tearDown_once(self):
        """Between subtests: a fresh memcached, daemon and catalogue."""
        if getattr(self, "d", None) is not None:
            self.d.stop()
            self.mc.flush()
            self.fake.clear_faults()
            self.fake.set_catalogue(self.cat)
            self.refreshes_done = 0

    def test_403_is_not_retried(self):
        self.start()
        self.fake.set_catalogue(v2(self.cat))
        self.fake.set_fault(self.fake.uuids_path(), kind="status", status=403)
        events = self.refresh_again()
        self.assertEqual(self.cache(), self.before)
        f = self.failures(events, "uuids")[0]
        self.assertEqual((f["http_status"], f["attempt"]), (403, 1))
        self.assertIn("staff", f["error"])

    def test_uuid_list_not_a_list(self):
        for body in ({"detail": "oops"}, json.dumps("a string"), 42, "null"):
            with self.subTest(body=body):
                self.tearDown_once()
                self.start()
                self.fake.set_catalogue(v2(self.cat))
                self.fake.set_fault(self.fake.uuids_path(), kind="body", body=body)
                events = self.refresh_again()
                self.assertEqual(self.cache(), self.before)
                self.assertIn("not a JSON list", self.failures(events, "uuids")[0]["error"])

    def test_429_with_retry_after_seconds_and_date(self):
        for value, delay in (("1", 1000), (http_date(-3600), 0)):
            with self.subTest(retry_after=value):
                self.tearDown_once()
                self.start(discovery={"retry_backoff": "5s", "retry_backoff_max": "5s"})
                self.fake.set_catalogue(v2(self.cat))
                self.fake.set_fault(self.fake.uuids_path(), kind="status", status=429,
                                    headers={"Retry-After": value}, times=1)
                events = self.refresh_again()
                retry = [e for e in events if e["event"] == "http_retry"]
                self.assertEqual(len(retry), 1)
                self.assertEqual(retry[0]["http_status"], 429)
                # The server's wait, not our 5 s backoff; a past date is 0.
                self.assertEqual(retry[0]["delay_ms"], delay)
                self.assert_only([])

    # -- one program -------------------------------------------------------------

    def one_program_fault(self, uuid_index=2, discovery=None, **fault):
        self.start(discovery=discovery)
        self.uuid = self.cat["uuids"][uuid_index]
        self.fake.set_catalogue(v2(self.cat))
        self.fake.set_fault(self.fake.program_path(self.uuid), **fault)
        return self.refresh_again()

    def assert_program_kept(self):
        """The faulted program keeps its old value and its place in every
        index; everything else is v2."""
        self.assert_only(["program-" + self.uuid])
        runs = reference.course_run_keys_for_program(self.cat["programs"][self.uuid])
        for run in runs:
            self.assertIn(self.uuid, self.reader_.get("course-programs-" + run))
        self.assertIn(self.uuid, self.reader_.get("program-uuids-" + SITE))

    def test_404_on_one_detail(self):
        events = self.one_program_fault(kind="status", status=404)
        self.assert_program_kept()
        f = self.failures(events, "detail")
        self.assertEqual(len(f), 1)
        self.assertEqual((f[0]["http_status"], f[0]["attempt"]), (404, 1))
        self.assertIn(self.uuid, f[0]["url"])

    def test_500_on_one_detail(self):
        events = self.one_program_fault(kind="status", status=500)
        self.assert_program_kept()
        f = self.failures(events, "detail")[0]
        self.assertEqual((f["http_status"], f["attempt"]), (500, 2))

    def test_malformed_json(self):
        events = self.one_program_fault(kind="malformed")
        self.assert_program_kept()
        self.assertIn("malformed JSON", self.failures(events, "detail")[0]["error"])

    def test_truncated_bodies(self):
        for framing in ("length", "chunked", "close"):
            with self.subTest(framing=framing):
                self.tearDown_once()
                events = self.one_program_fault(kind="truncate", framing=framing,
                                                discovery={"retries": 0})
                self.assert_program_kept()
                err = self.failures(events, "detail")[0]["error"]
                if framing == "close":
                    # libcurl sees a complete transfer; the parser does not.
                    self.assertIn("malformed JSON", err)
                else:
                    self.assertIn("partial", err.lower())

    def test_wrong_content_type(self):
        events = self.one_program_fault(kind="content_type", content_type="text/html")
        self.assert_program_kept()
        self.assertIn("content type text/html", self.failures(events, "detail")[0]["error"])

    def shape_fault(self, mutate):
        self.start()
        self.uuid = self.cat["uuids"][2]
        new = v2(self.cat)
        detail = copy.deepcopy(new["programs"][self.uuid])
        mutate(detail)
        self.fake.set_catalogue(new)
        self.fake.set_fault(self.fake.program_path(self.uuid), kind="body", body=detail)
        events = self.refresh_again()
        self.assert_program_kept()
        rej = [e for e in events if e["event"] == "program_rejected"]
        self.assertEqual(len(rej), 1)
        self.assertEqual(rej[0]["uuid"], self.uuid)
        return rej[0]["reason"]

    def test_uuid_missing(self):
        self.assertEqual(self.shape_fault(lambda d: d.pop("uuid")), "missing uuid")

    def test_type_attrs_null(self):
        self.assertIn("type_attrs is null", self.shape_fault(lambda d: d.update(type_attrs=None)))

    def test_courses_not_a_list(self):
        self.assertIn("courses is not a list", self.shape_fault(lambda d: d.update(courses=7)))

    def test_response_too_large(self):
        events = self.one_program_fault(kind="body", body={"x": "y" * 300000},
                                        discovery={"max_response_size": "100K"})
        self.assert_program_kept()
        self.assertIn("larger than", self.failures(events, "detail")[0]["error"])

    def test_hang_ends_within_request_timeout(self):
        t0 = time.monotonic()
        events = self.one_program_fault(kind="hang", discovery={
            "request_timeout": "1s", "retries": 0})
        self.assert_program_kept()
        self.assertIn("timed out", self.failures(events, "detail")[0]["error"].lower())
        self.fake.release_hangs()
        del t0

    def test_hang_ends_at_the_refresh_deadline(self):
        self.start(discovery={"refresh_deadline": "3s", "request_timeout": "1h"})
        self.uuid = self.cat["uuids"][2]
        self.fake.set_catalogue(v2(self.cat))
        self.fake.set_fault(self.fake.program_path(self.uuid), kind="hang")
        t0 = time.monotonic()
        events = self.refresh_again()
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 2.5)
        self.assertLess(elapsed, 15)
        self.assertTrue(self.failures(events, "deadline"))
        self.assert_program_kept()
        self.fake.release_hangs()

    def test_slow_trickle_is_aborted(self):
        events = self.one_program_fault(kind="trickle", chunk_size=8, interval=0.1,
                                        discovery={"low_speed_limit": "10K",
                                                   "low_speed_time": "1s", "retries": 0})
        self.assert_program_kept()
        self.assertIn("too slow", self.failures(events, "detail")[0]["error"].lower())

    # -- pathways ----------------------------------------------------------------

    def test_failed_pathways_page_keeps_previous_pathways(self):
        cat = catalog.generate(12, seed=3, n_pathways=45)
        self.cat = cat
        self.fake.set_catalogue(cat)
        self.start()
        new = v2(cat)
        for pw in new["pathways"]:
            pw["name"] = pw["name"] + " (v2)"
        self.fake.set_catalogue(new)
        self.fake.set_fault(self.fake.pathways_target(2), kind="status", status=500)
        events = self.refresh_again()
        self.assertTrue(self.failures(events, "pathways"))
        after = self.cache()
        for k in self.before:
            name = k.split(":", 2)[2]
            if name.startswith("pathway-"):
                self.assertEqual(after[k], self.before[k], k)

    def test_next_that_loops(self):
        self.start()
        page1 = json.loads(json.dumps({"count": 40, "previous": None,
                                       "next": self.fake.base_url() + "/pathways/?page=2",
                                       "results": []}))
        self.fake.set_catalogue(v2(self.cat))
        self.fake.set_fault(self.fake.pathways_target(1), kind="body", body=page1)
        self.fake.set_fault(self.fake.pathways_target(2), kind="body", body=page1)
        events = self.refresh_again()
        self.assertIn("pagination loop", self.failures(events, "pathways")[0]["error"])
        # The pathways were not published from the broken pages.
        self.assertEqual(self.reader_.get("pathway-ids-" + SITE),
                         expected(self.cat)["pathway-ids-" + SITE])

    def test_page_cap(self):
        """More pages than max_pages: the pathways fail (and, with nothing
        published before, no pathway is written from a partial list)."""
        cat = catalog.generate(12, seed=3, n_pathways=45)
        self.fake.set_catalogue(cat)
        d = self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")],
                                    discovery={"max_pages": 2}))
        rc, events, _ = d.run_once()
        self.assertEqual(rc, 1)
        f = self.failures(events, "pathways")
        self.assertIn("max_pages", f[0]["error"])
        self.assertEqual(len([r for r in self.fake.requests if r.kind == "pathways"]), 2)
        self.assertEqual([k for k in self.mc.dump_keys() if ":pathway-" in k and "-ids-" not in k], [])


class Auth(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(10, seed=4)
        self.fake = self.start_fake(self.cat, require_auth=True, token_expires_in=3600)

    def test_token_is_fetched_once_and_used(self):
        d = self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")]))
        rc, events, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        tokens = [r for r in self.fake.requests if r.kind == "token"]
        self.assertEqual(len(tokens), 1)
        form = dict(p.split("=", 1) for p in tokens[0].body.decode().split("&"))
        self.assertEqual(form["grant_type"], "client_credentials")
        self.assertEqual(form["token_type"], "jwt")
        self.assertEqual(form["client_id"], self.fake.client_id)
        acquired = [e for e in events if e["event"] == "token_acquired"]
        self.assertEqual(acquired[0]["expires_in"], 3600)
        # Neither the secret nor the token ever reaches the logs.
        self.assertNotIn(self.fake.client_secret, stderr)
        for tok in self.fake.tokens:
            self.assertNotIn(tok, stderr)
        api = [r for r in self.fake.requests if r.kind != "token"]
        self.assertTrue(all(r.headers["authorization"].startswith("JWT ") for r in api))
        self.assertCacheMatches(self.reader([self.mc]), expected(self.cat))

    def test_401_renews_the_token_once(self):
        d = self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")],
                                    daemon={"refresh_interval": "1h"}))
        d.start()
        d.wait_event("refresh_succeeded", timeout=20)
        self.fake.expire_tokens()
        self.fake.set_catalogue(v2(self.cat))
        d.send_signal(signal.SIGHUP)
        d.wait_events("refresh_succeeded", 2, timeout=20)
        self.assertEqual(len(d.events_named("token_acquired")), 2)
        self.assertCacheMatches(self.reader([self.mc]), expected(v2(self.cat)))
        self.assertEqual(d.stop(), 0)

    def test_bad_secret_fails_without_writing(self):
        secret = self.write_file("wrong-secret", "not-the-secret\n")
        cfg = self.config(self.fake, [self.mc], [(SITE, 1, "")],
                          discovery={"client_secret_file": secret})
        rc, events, stderr = self.daemon(cfg).run_once()
        self.assertEqual(rc, 1)
        failed = [e for e in events if e["event"] == "token_failed"]
        self.assertEqual(failed[0]["http_status"], 401)
        self.assertIn("invalid_client", failed[0]["error"])
        self.assertNotIn("not-the-secret", stderr)
        self.assertEqual(self.mc.dump_keys(), set())

    def test_secret_from_credentials_directory(self):
        creds = self.write_file("client-secret", self.fake.client_secret + "\n")
        cfg = self.config(self.fake, [self.mc], [(SITE, 1, "")],
                          discovery={"client_secret_file": None})
        import os
        d = self.daemon(cfg, env={"CREDENTIALS_DIRECTORY": os.path.dirname(creds)})
        rc, _, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)

    def test_missing_secret_is_a_config_error(self):
        cfg = self.config(self.fake, [self.mc], [(SITE, 1, "")],
                          discovery={"client_secret_file": "/nonexistent/secret"})
        rc, events, _ = self.daemon(cfg).run_once()
        self.assertEqual(rc, 2)
        err = [e for e in events if e["event"] == "config_error"][0]
        self.assertEqual(err["key"], "client_secret_file")


class ShrinkGuard(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(20, seed=9)
        self.fake = self.start_fake(self.cat)

    def start(self, *args, **daemon):
        dmn = {"refresh_interval": "1h"}
        dmn.update(daemon)
        self.d = self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")], daemon=dmn))
        self.d.start(*args)
        self.d.wait_event("refresh_succeeded", timeout=20)
        return {k: self.mc.get(k) for k in self.mc.dump_keys()}

    def shrink(self, keep):
        cat = copy.deepcopy(self.cat)
        cat["uuids"] = cat["uuids"][:keep]
        self.fake.set_catalogue(cat)
        return cat

    def refresh(self, n):
        self.d.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while len([e for e in self.d.events if e["event"] == "refresh_started"]) < n or \
                len(self.d.events_named("refresh_succeeded")) + \
                len(self.d.events_named("refresh_incomplete")) < n:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)

    def test_empty_list_after_a_full_one_is_held(self):
        before = self.start()
        self.shrink(0)
        self.refresh(2)
        held = self.d.events_named("publish_held")
        self.assertEqual(len(held), 1)
        self.assertEqual((held[0]["programs_before"], held[0]["programs_now"]), (20, 0))
        self.assertEqual({k: self.mc.get(k) for k in self.mc.dump_keys()}, before)

    def test_shrinking_more_than_max_shrink_is_held(self):
        before = self.start()
        self.shrink(17)        # 15 % fewer, over the default 10 %
        self.refresh(2)
        self.assertEqual(len(self.d.events_named("publish_held")), 1)
        self.assertEqual({k: self.mc.get(k) for k in self.mc.dump_keys()}, before)

    def test_shrinking_within_max_shrink_is_published(self):
        self.start()
        cat = self.shrink(18)  # 10 %
        self.refresh(2)
        self.assertEqual(self.d.events_named("publish_held"), [])
        r = self.reader([self.mc])
        self.assertEqual(r.get("program-uuids-" + SITE), cat["uuids"])

    def test_force_flag_publishes(self):
        self.start("--force")
        self.shrink(0)
        self.refresh(2)
        self.assertEqual(self.d.events_named("publish_held"), [])
        self.assertEqual(len(self.d.events_named("publish_forced")), 1)
        self.assertEqual(self.reader([self.mc]).get("program-uuids-" + SITE), [])

    def test_force_publish_by_config_reload(self):
        self.start()
        self.shrink(0)
        self.refresh(2)
        self.assertEqual(len(self.d.events_named("publish_held")), 1)
        self.d.sections["daemon"]["force_publish"] = True
        self.d.write_config()
        self.refresh(3)
        self.assertEqual(self.reader([self.mc]).get("program-uuids-" + SITE), [])


class ShrinkGuardOnce(PcdTestCase):
    """A cron job of --once runs: the snapshot file carries each site's
    program count from one run to the next, so the guard holds there too."""

    def test_once_after_once(self):
        mc = self.start_memcached()
        cat = catalog.generate(20, seed=9)
        fake = self.start_fake(cat)
        d = self.daemon(self.config(fake, [mc], [(SITE, 1, "")]))
        rc, _, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        before = {k: mc.get(k) for k in mc.dump_keys()}
        empty = copy.deepcopy(cat)
        empty["uuids"] = []
        fake.set_catalogue(empty)
        rc, events, _ = d.run_once()
        self.assertEqual(rc, 1)
        held = [e for e in events if e["event"] == "publish_held"]
        self.assertEqual((held[0]["programs_before"], held[0]["programs_now"]), (20, 0))
        self.assertEqual({k: mc.get(k) for k in mc.dump_keys()}, before)
        # A second held run still knows the count (the file was not
        # replaced by the held run).
        rc, events, _ = d.run_once()
        self.assertEqual(rc, 1)
        rc, events, stderr = d.run_once("--force")
        self.assertEqual(rc, 0, stderr)
        self.assertEqual(self.reader([mc]).get("program-uuids-" + SITE), [])
        # A --once run cannot know that memcached still holds what the
        # file says: after a restart of memcached it writes everything.
        fake.set_catalogue(cat)
        d.run_once("--force")
        mc.restart()
        rc, events, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        self.assertCacheMatches(self.reader([mc]), reference.expected_cache(
            [{"domain": SITE, "site_id": 1, "catalogue": cat}]))
