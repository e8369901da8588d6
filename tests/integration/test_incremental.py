"""Incremental refresh: between full refreshes, the UUID list, the
list filtered by Discovery's `timestamp`, the pathway pages, and only the
details that changed; only changed keys written.

Against the fake Discovery with timestamps (data_modified_timestamp bumped on
each edit, the filter as course-discovery's ProgramFilter), a real memcached
and the LMS's reader; which keys were written is read from memcached's own
CAS ids, not from the daemon's logs."""

import copy
import json
import signal
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from pymemcache.client.base import Client

from tests.support import catalog, reference
from tests.support.harness import PcdTestCase

DOMAIN = "lms.example.com"


def kinded(events, kind):
    return [e for e in events if e.get("kind") == kind]


class Incremental(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(25, seed=17)

    def start(self, interval="1s", overlap=None, fake_kw=None, discovery=None, **daemon):
        self.fake = self.start_fake(self.cat, timestamps=True, **(fake_kw or {}))
        d = {"incremental_interval": interval, "refresh_interval": "1h"}
        if overlap is not None:
            d["incremental_overlap"] = overlap
        d.update(daemon)
        self.d = self.daemon(self.config(self.fake, [self.mc], [(DOMAIN, 1, "")], daemon=d,
                                         discovery=discovery))
        self.d.start()
        self.wait_ok("full", since=0)
        self.reader_ = self.reader([self.mc])
        return self.d

    def wait_ok(self, kind, since=None, timeout=20):
        """The next refresh_succeeded of this kind after since (a mark)."""
        since = self.d.mark() if since is None else since
        return self.d.wait_event("refresh_succeeded", timeout=timeout, since=since,
                                 predicate=lambda e: e.get("kind") == kind)

    def expected(self):
        return reference.expected_cache([{"domain": DOMAIN, "site_id": 1,
                                          "catalogue": self.fake.served_catalogue()}])

    def cas_of(self, keys):
        """{cache key: CAS id} as memcached holds them now."""
        c = Client(self.mc.address)
        try:
            wire = {self.reader_.make_key(k): k for k in keys}
            got = c.gets_many(list(wire))
            return {wire[w]: cas for w, (_, cas) in got.items()}
        finally:
            c.close()

    def edit(self, fn):
        """Change the served catalogue through fn(cat) (the fake stamps what
        changed with its clock)."""
        cat = copy.deepcopy(self.fake.catalogue())
        cat = fn(cat) or cat
        self.fake.set_catalogue(cat)

    # ------------------------------------------------------------------
    def test_idle_incremental_is_three_lists_and_no_write(self):
        """Nothing changed: the UUID list, the filtered list's pages and the
        pathway pages; no detail; nothing written (CAS ids unchanged)."""
        self.start()
        mark = self.d.mark()
        self.wait_ok("incremental", since=mark)         # the first one probes
        expected = self.expected()
        before = self.cas_of(expected)
        self.fake.reset_requests()
        ev = self.wait_ok("incremental")
        reqs = self.fake.requests
        kinds = [r.kind for r in reqs]
        self.assertEqual(kinds.count("program"), 0, kinds)
        self.assertEqual(kinds.count("uuids"), 1, kinds)
        self.assertGreaterEqual(kinds.count("filtered"), 1, kinds)
        pw_pages = (len(self.cat["pathways"]) + 19) // 20
        self.assertEqual(kinds.count("pathways"), pw_pages, kinds)
        filtered_pages = kinds.count("filtered")
        self.assertEqual(len(reqs), 1 + filtered_pages + pw_pages)
        self.assertTrue(all(r.status == 200 for r in reqs), [(r.target, r.status) for r in reqs])
        self.assertEqual(ev["details_fetched"], 0)
        self.assertEqual(ev["keys_written"], 0)
        self.assertEqual(self.cas_of(expected), before)
        self.assertCacheMatches(self.reader_, expected)
        # The probe went once, before the first incremental only.
        probes = [e for e in self.d.events_named("incremental_unsupported")]
        self.assertEqual(probes, [])

    def test_edit_add_retire_remove(self):
        """After one incremental: exactly the changed programs' details are
        fetched, exactly the keys whose value changed are written, and the
        LMS reads what a full refresh leaves."""
        self.start(interval="2s")
        self.wait_ok("incremental")
        old = self.expected()
        before = self.cas_of(old)
        uuids = list(self.cat["uuids"])
        edited, retired, removed = uuids[3], uuids[5], uuids[7]
        added = []

        def change(cat):
            cat["programs"][edited]["title"] = "Edited title"
            cat["programs"][retired]["status"] = "retired"
            cat["uuids"].remove(removed)
            del cat["programs"][removed]
            cat2, new = catalog.add_program(cat, uuids[1], seed=99)
            added.append(new)
            return cat2
        self.fake.reset_requests()
        mark = self.d.mark()
        self.edit(change)
        ev = self.wait_ok("incremental", since=mark)
        if ev["details_fetched"] == 0:
            # The edit landed just after that incremental's lists: the next.
            ev = self.wait_ok("incremental")
        fetched = sorted(r.uuid for r in self.fake.requests if r.kind == "program")
        self.assertEqual(fetched, sorted([edited, retired, added[0]]))
        self.assertEqual(ev["details_fetched"], 3)
        new = self.expected()
        self.assertCacheMatches(self.reader_, new)
        after = self.cas_of(set(old) | set(new))
        written = {k for k in new if after.get(k) != before.get(k)}
        changed = {k for k in new if old.get(k) != new[k]}
        self.assertEqual(written, changed)
        self.assertIn("program-" + edited, written)
        self.assertIn("program-" + added[0], written)
        self.assertIn("program-uuids-" + DOMAIN, written)
        self.assertEqual(ev["keys_written"], len(changed))
        # The removed program's key stays until stale_after refreshes.
        self.assertIn("program-" + removed, after)

        # A full refresh (SIGHUP) of the same data writes nothing more.
        mark = self.d.mark()
        self.d.send_signal(signal.SIGHUP)
        full = self.wait_ok("full", since=mark)
        self.assertEqual(full["keys_written"], 0)
        self.assertCacheMatches(self.reader_, new)

    def test_removed_program_follows_stale_rules(self):
        """A removed program's key is deleted after stale_after successful
        full refreshes, not before, however many incremental ones run
        meanwhile (the delay does not depend on incremental_interval)."""
        self.start(stale_after="3")
        uuids = list(self.cat["uuids"])
        removed = uuids[2]
        self.wait_ok("incremental")

        def change(cat):
            cat["uuids"].remove(removed)
            del cat["programs"][removed]
        self.edit(change)
        for _ in range(4):
            self.wait_ok("incremental")
        self.assertIsNotNone(self.reader_.get("program-" + removed))
        self.assertEqual(self.d.events_named("stale_deleted"), [])
        for i in range(3):
            mark = self.d.mark()
            self.d.send_signal(signal.SIGHUP)
            self.wait_ok("full", since=mark)
            if i < 2:
                self.assertIsNotNone(self.reader_.get("program-" + removed))
        self.d.wait_event("stale_deleted", timeout=20)
        self.assertIsNone(self.reader_.get("program-" + removed))
        self.assertCacheMatches(self.reader_, self.expected())

    def test_timestamp_is_discoverys_minus_overlap(self):
        """T = the newest data_modified_timestamp held minus
        incremental_overlap, in Discovery's clock, with Z (never '+')."""
        self.start(overlap="10m")
        self.fake.reset_requests()
        self.wait_ok("incremental")
        filt = [r for r in self.fake.requests if r.kind == "filtered"
                and "2999-" not in r.target]      # not the probe
        self.assertTrue(filt)
        self.assertNotIn("+", filt[0].target)
        t = parse_qs(urlsplit(filt[0].target).query)["timestamp"][0]
        self.assertTrue(t.endswith("Z"), t)
        newest = max(datetime.fromisoformat(self.fake.modified(u)) for u in self.cat["uuids"])
        self.assertEqual(datetime.fromisoformat(t), newest - timedelta(minutes=10))

    def test_timestamps_with_offsets(self):
        """Timestamps with an offset or a fraction are read as the instants
        they are; T is written in UTC with Z."""
        for i, u in enumerate(self.cat["uuids"]):
            self.cat["programs"][u]["data_modified_timestamp"] = "2026-01-01T12:00:00+01:00"
        self.cat["programs"][self.cat["uuids"][3]]["data_modified_timestamp"] = \
            "2026-01-02T00:30:00.5+02:00"
        self.start()
        self.fake.reset_requests()
        self.wait_ok("incremental")
        t = [parse_qs(urlsplit(r.target).query)["timestamp"][0]
             for r in self.fake.requests if r.kind == "filtered" and "2999-" not in r.target]
        self.assertEqual(t[:1], ["2026-01-01T22:25:00.500000Z"])

    def test_discovery_without_the_filter(self):
        """A Discovery that ignores `timestamp` lists everything for the
        far-future probe: incremental_unsupported once, then no incremental
        requests; full refreshes still work."""
        self.start(fake_kw={"timestamp_filter": False})
        ev = self.d.wait_event("incremental_unsupported", timeout=10)
        self.assertEqual(ev["site"], DOMAIN)
        self.fake.reset_requests()
        time.sleep(3.5)
        self.assertEqual(self.fake.requests, [])
        self.assertEqual(len(self.d.events_named("incremental_unsupported")), 1)
        self.assertEqual(kinded(self.d.events_named("refresh_started"), "incremental"),
                         kinded(self.d.events_named("refresh_started"), "incremental")[:1])

        def change(cat):
            cat["programs"][cat["uuids"][0]]["title"] = "Seen by a full refresh"
        self.edit(change)
        mark = self.d.mark()
        self.d.send_signal(signal.SIGHUP)
        self.wait_ok("full", since=mark)
        self.assertCacheMatches(self.reader_, self.expected())
        self.assertEqual(len(self.d.events_named("incremental_unsupported")), 1)

    def _skew(self, seconds):
        self.cat = catalog.generate(12, seed=23)
        self.start(fake_kw={"clock_skew": seconds})
        self.wait_ok("incremental")
        target = self.cat["uuids"][4]

        def change(cat):
            cat["programs"][target]["title"] = "Skewed edit"
        mark = self.d.mark()
        self.edit(change)
        ev = self.wait_ok("incremental", since=mark)
        if ev["details_fetched"] == 0:
            ev = self.wait_ok("incremental")
        self.assertEqual(ev["details_fetched"], 1)
        self.assertEqual(self.reader_.get("program-" + target)["title"], "Skewed edit")
        self.assertCacheMatches(self.reader_, self.expected())

    def test_clock_ahead_one_hour(self):
        self._skew(3600)

    def test_clock_behind_one_hour(self):
        self._skew(-3600)

    def test_far_future_timestamp_does_not_stop_incremental(self):
        """A program stamped 2999-01-01 (Discovery lying): the watermark
        ignores it (timestamp_ahead, once), T stays Discovery's clock's, and
        an edit made after it is picked up by the next incremental
        refresh."""
        self._far_future()

    def test_far_future_timestamp_without_a_date_header(self):
        """The same behind a proxy that drops the Date header: the
        daemon's own clock caps the watermark instead."""
        self._far_future(send_date=False)

    def _far_future(self, send_date=True):
        liar = self.cat["uuids"][2]
        self.cat["programs"][liar]["data_modified_timestamp"] = "2999-01-01T00:00:00Z"
        self.start()
        self.fake.send_date = send_date      # the incremental refreshes' replies
        self.wait_ok("incremental")
        target = self.cat["uuids"][5]

        def change(cat):
            cat["programs"][target]["title"] = "Edited after the liar"
        mark = self.d.mark()
        self.edit(change)
        ev = self.wait_ok("incremental", since=mark)
        if ev["details_fetched"] == 0:
            ev = self.wait_ok("incremental")
        self.assertEqual(self.reader_.get("program-" + target)["title"], "Edited after the liar")
        self.assertCacheMatches(self.reader_, self.expected())
        ts = [parse_qs(urlsplit(r.target).query)["timestamp"][0]
              for r in self.fake.requests if r.kind == "filtered" and "2999-12-31" not in r.target]
        self.assertTrue(ts)
        self.assertFalse([t for t in ts if t.startswith("2998") or t.startswith("2999")], ts)
        ahead = self.d.events_named("timestamp_ahead")
        self.assertEqual([(e["site"], e["program"], e["modified"]) for e in ahead],
                         [(DOMAIN, liar, "2999-01-01T00:00:00Z")])
        self.assertEqual(ahead[0]["tolerance_s"], 300)

    def test_failed_filtered_list_writes_nothing_of_the_site(self):
        """The failure rules unchanged: a failed filtered list fails the site's
        incremental refresh (nothing written); the next one catches up."""
        self.start(discovery={"retries": "0"})
        self.wait_ok("incremental")
        target = self.cat["uuids"][0]
        fault = self.fake.set_fault(lambda r: r.kind == "filtered", "status", status=500)
        mark = self.d.mark()

        def change(cat):
            cat["programs"][target]["title"] = "After the failure"
        self.edit(change)
        self.d.wait_event("refresh_incomplete", since=mark, timeout=10,
                          predicate=lambda e: e.get("kind") == "incremental")
        self.assertNotEqual(self.reader_.get("program-" + target)["title"], "After the failure")
        self.assertEqual(fault.hits >= 1, True)
        self.fake.clear_faults()
        ev = self.wait_ok("incremental")
        if ev["details_fetched"] == 0:
            ev = self.wait_ok("incremental")
        self.assertEqual(self.reader_.get("program-" + target)["title"], "After the failure")
        self.assertCacheMatches(self.reader_, self.expected())

    def test_failed_detail_is_fetched_again(self):
        """A detail that fails in an incremental keeps its value and is
        fetched again by the next one, even when newer edits move T."""
        self.start(overlap="0s", discovery={"retries": "0"})
        self.wait_ok("incremental")
        a, b = self.cat["uuids"][1], self.cat["uuids"][2]
        self.fake.set_fault(self.fake.program_path(a), "status", status=500)
        mark = self.d.mark()
        self.edit(lambda cat: cat["programs"][a].update(title="A edited"))
        self.d.wait_event("refresh_incomplete", since=mark, timeout=10,
                          predicate=lambda e: e.get("kind") == "incremental")
        time.sleep(0.05)
        mark = self.d.mark()
        self.edit(lambda cat: cat["programs"][b].update(title="B edited"))
        # B is fetched (T moves past A's timestamp); A still fails.
        self.d.wait_event("refresh_incomplete", since=mark, timeout=10,
                          predicate=lambda e: e.get("kind") == "incremental" and
                          e.get("details_fetched") == 2)
        self.assertEqual(self.reader_.get("program-" + b)["title"], "B edited")
        self.fake.clear_faults()
        self.wait_ok("incremental")
        self.assertEqual(self.reader_.get("program-" + a)["title"], "A edited")
        self.assertEqual(self.reader_.get("program-" + b)["title"], "B edited")
        self.assertCacheMatches(self.reader_, self.expected())

    def test_restart_keeps_the_watermark(self):
        """The timestamps held are in the snapshot: after a restart the
        first refresh is an incremental one that fetches only what changed
        while the daemon was down."""
        self.start(interval="1s")
        self.wait_ok("incremental")
        self.d.stop()
        target = self.cat["uuids"][6]
        self.edit(lambda cat: cat["programs"][target].update(title="While down"))
        self.fake.reset_requests()
        self.d.start()
        ev = self.wait_ok("incremental", since=0)
        self.assertEqual(ev["details_fetched"], 1)
        fetched = [r.uuid for r in self.fake.requests if r.kind == "program"]
        self.assertEqual(fetched, [target])
        self.assertEqual(kinded(self.d.events_named("refresh_started"), "full"), [])
        self.assertEqual(self.reader_.get("program-" + target)["title"], "While down")
        self.assertCacheMatches(self.reader_, self.expected())

    def test_restart_with_pathway_change_refetches_kept_values(self):
        """After a restart the values come from the snapshot (final, their
        pathway_ids included): a pathway change makes the incremental fetch
        the programs it names, so pathway_ids are right."""
        self.start(interval="1s")
        self.wait_ok("incremental")
        self.d.stop()

        pw = max(self.cat["pathways"], key=lambda p: len(p["programs"]))
        dropped = pw["programs"][-1]["uuid"]
        self.assertIn(pw["id"], self.reader_.get("program-" + dropped)["pathway_ids"])

        def change(cat):
            for p in cat["pathways"]:
                if p["id"] == pw["id"]:
                    p["programs"] = p["programs"][:-1]
        self.edit(change)
        self.d.start()
        ev = self.wait_ok("incremental", since=0)
        self.assertGreaterEqual(ev["details_fetched"], 1)
        self.assertNotIn(pw["id"], self.reader_.get("program-" + dropped)["pathway_ids"])
        self.assertCacheMatches(self.reader_, self.expected())

    def test_held_site_waits_for_a_full_refresh(self):
        """An incremental refresh the shrink guard holds keeps the
        previous values, and the site gets no more incremental refreshes
        (no publish_held every minute) until a full one succeeds."""
        self.start()
        self.wait_ok("incremental")
        gone = self.cat["uuids"][:4]

        def change(cat):
            for u in gone:
                cat["uuids"].remove(u)
                del cat["programs"][u]
        mark = self.d.mark()
        self.edit(change)
        self.d.wait_event("publish_held", since=mark, timeout=10)
        self.assertEqual(self.reader_.get("program-uuids-" + DOMAIN), self.cat["uuids"])
        held = self.d.mark()
        time.sleep(3)
        self.assertEqual(self.d.events_named("publish_held", since=held), [])
        self.assertEqual(kinded(self.d.events_named("refresh_started", since=held),
                                "incremental"), [])

    def test_metrics_by_kind(self):
        """/metrics: refreshes and details fetched by kind, and the age of
        the last change published."""
        from tests.support.harness import free_port
        port = free_port()
        self.start(listen="127.0.0.1:%d" % port)
        self.wait_ok("incremental")
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port).read().decode()
        series = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                series[name] = float(value)
        self.assertEqual(series['programs_cached_refreshes_by_kind_total{kind="full"}'], 1)
        self.assertGreaterEqual(
            series['programs_cached_refreshes_by_kind_total{kind="incremental"}'], 1)
        self.assertEqual(series['programs_cached_details_fetched_total{kind="full"}'],
                         len(set(self.cat["uuids"])))
        self.assertEqual(series['programs_cached_details_fetched_total{kind="incremental"}'], 0)
        age = series["programs_cached_seconds_since_last_change"]
        self.assertGreaterEqual(age, 0)
        self.assertLess(age, 60)

    def test_full_refreshes_keep_their_schedule(self):
        """Incremental refreshes do not push the full ones back: with
        refresh_interval 3 s and incremental_interval 1 s, both kinds run."""
        self.start(interval="1s", refresh_interval="3s")
        mark = self.d.mark()
        self.d.wait_events("refresh_succeeded", 2, timeout=15, since=mark,
                           predicate=lambda e: e.get("kind") == "full")
        self.assertGreaterEqual(len(kinded(self.d.events_named("refresh_succeeded", since=mark),
                                           "incremental")), 1)

    def test_off_when_zero(self):
        """incremental_interval = 0: full refreshes only."""
        self.start(interval="0")
        time.sleep(2.5)
        self.assertEqual(kinded(self.d.events_named("refresh_started"), "incremental"), [])


class FakeTimestampFilter(PcdTestCase):

    def test_unparsable_timestamp_is_400(self):
        """As Django's DateTimeFilter: '+' decoded as a space is not a date."""
        fake = self.start_fake(catalog.generate(3, seed=5), timestamps=True)
        base = fake.base_url() + "/programs/?exclude_utm=1&status=active&status=retired"
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(base + "&timestamp=2026-01-01T00:00:00+00:00")
        self.assertEqual(cm.exception.code, 400)
        body = json.loads(urllib.request.urlopen(base + "&timestamp=2999-01-01T00%3A00%3A00Z").read())
        self.assertEqual(body["results"], [])
        body = json.loads(urllib.request.urlopen(base + "&timestamp=2000-01-01T00%3A00%3A00Z").read())
        self.assertEqual(body["count"], 3)
        # Both list forms: the UUID list takes the filter too.
        got = json.loads(urllib.request.urlopen(
            base + "&uuids_only=1&timestamp=2000-01-01T00%3A00%3A00Z").read())
        self.assertEqual(len(got), 3)
        got = json.loads(urllib.request.urlopen(
            base + "&uuids_only=1&timestamp=2999-01-01T00%3A00%3A00Z").read())
        self.assertEqual(got, [])
