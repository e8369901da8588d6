"""The change-driven refresh: Discovery's api_timestamp, bumped the
way Discovery bumps it (Django's cache.set('api_timestamp', time.time(),
None) through Django's own cache backends: django-redis under Tutor's
layout, PyMemcacheCache on a native install), starts an incremental refresh
whose result the LMS reads (Django's reader) within seconds.

Real redis-server and memcached, the fake Discovery with timestamps.  What is
checked: an edit plus a bump reaches the LMS cache within 2 s with
refresh_interval 1 h and incremental_interval 10 min, fetching only the
edited detail (with notifications, polling only, and a separate memcached
source); no bump, no Discovery request; a burst costs at most two refreshes,
a key that flaps every 10 ms too; a course-run-only edit reaches the cache
through the full refresh change_full_delay later; a source down, refusing
(password, ACL, a replica that will not serve), or without notifications is
logged once and changes nothing else (the schedule, /readyz); a value of any
bytes and size is a value; a missing key is no signal; only the lease holder
watches."""

import copy
import os
import signal
import threading
import time

from tests.integration.test_ops import http_get, scrape
from tests.support import catalog
from tests.support.harness import PcdTestCase, free_port
from tests.support.reader import Reader
from tests.support.rediscache import RedisReader, RedisServer

DOMAIN = "lms.example.com"
KEY = "discovery:1:api_timestamp"      # Discovery's KEY_PREFIX "discovery", VERSION 1


class ChangeCase(PcdTestCase):
    """A fake Discovery with timestamps and helpers to edit and bump."""

    def setUp(self):
        super().setUp()
        self.cat = catalog.generate(25, seed=24)
        self.fake = self.start_fake(self.cat, timestamps=True)
        self.d = None

    def start_redis(self, **kw):
        s = RedisServer(**kw)
        self.addCleanup(s.close)
        return s.start()

    def discovery_cache_redis(self, srv, db=1):
        """Discovery's Django cache under Tutor: django-redis, KEY_PREFIX
        "discovery", VERSION 1, in the LMS's db."""
        r = RedisReader(srv, db=db, prefix="discovery", version="1")
        self.addCleanup(r.close)
        return r.cache

    def discovery_cache_memcached(self, mc):
        """Discovery's Django cache on a native install: PyMemcacheCache,
        Django's default key function."""
        r = Reader([mc], key_function="django", prefix="discovery", version="1")
        self.addCleanup(r.close)
        return r.cache

    def redis_sections(self, srv, discovery=None, daemon=None, redis=None):
        sections = self.config(self.fake, [], [(DOMAIN, 1, "")], daemon=daemon,
                               discovery=discovery)
        del sections["memcached"]
        red = {"url": srv.url(1)}
        red.update(redis or {})
        return dict([("redis", red)] + list(sections.items()))

    def start_daemon(self, sections, name="pcd"):
        d = self.daemon(sections, name=name)
        d.start()
        d.wait_event("refresh_succeeded", timeout=30)
        if self.d is None:
            self.d = d
        return d

    @staticmethod
    def schedule(**kw):
        """Tutor's layout of the issue: rare schedules, so that a change is
        what refreshes."""
        d = {"refresh_interval": "1h", "incremental_interval": "10m",
             "listen": "127.0.0.1:0"}
        d.update(kw)
        return d

    def edit_title(self, title, index=3):
        """Edit one program's title in Discovery (its timestamp moves)."""
        cat = copy.deepcopy(self.fake.catalogue())
        uuid = cat["uuids"][index]
        cat["programs"][uuid]["title"] = title
        self.fake.set_catalogue(cat)
        return uuid

    def wait_title(self, reader, uuid, title, timeout):
        """Seconds until the LMS reads the title (AssertionError if not in
        timeout)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            v = reader.get("program-" + uuid)
            if v is not None and v.get("title") == title:
                return time.monotonic() - t0
            time.sleep(0.02)
        raise AssertionError("the LMS did not read %r for %s within %.1fs"
                             % (title, uuid, timeout))

    def change_refreshes(self, d, since=0):
        return [e for e in d.events_named("refresh_started", since)
                if e.get("reason") == "change"]

    def quiet(self, d, seconds):
        """Let seconds pass; the events logged meanwhile."""
        mark = d.mark()
        time.sleep(seconds)
        return d.events[mark:]


class TutorLayout(ChangeCase):
    """The key in the LMS's own Redis db (Tutor), the daemon's own cache as
    the source."""

    def start_tutor(self, flags="K$", discovery=None, **sched):
        extra = ["--notify-keyspace-events", flags] if flags else []
        self.srv = self.start_redis(extra_args=extra)
        disc = {"change_key": KEY}
        disc.update(discovery or {})
        d = self.start_daemon(self.redis_sections(self.srv, discovery=disc,
                                                  daemon=self.schedule(**sched)))
        self.lms = self.redis_reader()
        self.bumper = self.discovery_cache_redis(self.srv)
        return d

    def redis_reader(self):
        r = RedisReader(self.srv, db=1)
        self.addCleanup(r.close)
        return r

    def bump(self):
        self.bumper.set("api_timestamp", time.time(), None)

    def edit_and_bump(self, d, title):
        """An edit, its bump, and the time until the LMS reads it; checks
        that only the edited detail was fetched."""
        time.sleep(1.2)          # past the start's polls and debounce
        self.fake.reset_requests()
        mark = d.mark()
        uuid = self.edit_title(title)
        self.bump()
        took = self.wait_title(self.lms, uuid, title, timeout=5)
        d.wait_event("refresh_succeeded", since=mark, timeout=5)
        details = [r.uuid for r in self.fake.requests if r.kind == "program"]
        self.assertEqual(details, [uuid])
        started = d.events_named("refresh_started", mark)
        self.assertEqual([(e["kind"], e["reason"]) for e in started],
                         [("incremental", "change")])
        return took, d.events_named("change_detected", mark)

    def test_edit_and_bump_reach_the_lms_within_2s(self):
        """Notifications (K$ set on the server): an edit plus a bump is in
        the LMS cache within 2 s, through one incremental refresh that
        fetches the edited detail only; the bump's delay is read from the
        pickled float."""
        d = self.start_tutor()
        d.wait_event("change_source_available",
                     predicate=lambda e: e["how"] == "notification")
        took, seen = self.edit_and_bump(d, "Edited through a bump")
        self.assertLess(took, 2.0)
        self.assertEqual([e["how"] for e in seen], ["notification"])
        self.assertEqual(seen[0]["source"], self.srv.url(1))
        self.assertGreaterEqual(int(seen[0]["delay_ms"]), 0)
        self.assertLess(int(seen[0]["delay_ms"]), 500)
        m, _ = scrape(d.wait_event("listening")["address"])
        self.assertEqual(m[("programs_cached_changes_total", (("how", "notification"),))], 1)
        self.assertEqual(m[("programs_cached_change_source_up", (("how", "poll"),))], 1)
        self.assertEqual(m[("programs_cached_change_to_publish_seconds_count", ())], 1)
        self.assertLess(m[("programs_cached_change_to_publish_seconds_sum", ())], 2.0)
        # The loop was never held long by the polls.
        self.assertLess(m[("programs_cached_change_poll_max_seconds", ())], 0.05)

    def test_polling_only(self):
        """change_notify = off: the poll sees the bump, and it is still in
        the LMS cache within 2 s (the debounce counts from the bump the
        pickled float names, not from the poll that saw it)."""
        d = self.start_tutor(discovery={"change_notify": "off"})
        took, seen = self.edit_and_bump(d, "Edited, polled")
        self.assertLess(took, 2.0)
        self.assertEqual([e["how"] for e in seen], ["poll"])
        self.assertEqual(d.events_named("change_source_unavailable"), [])
        self.assertFalse([e for e in d.events_named("change_source_available")
                          if e["how"] == "notification"])
        # Nothing subscribed: the server's config is as it was.
        c = self.srv.client(0)
        self.assertEqual(c.pubsub_numsub("__keyspace@1__:" + KEY)[0][1], 0)
        c.close()

    def test_auto_without_flags_says_the_line_and_polls(self):
        """A server without notify-keyspace-events (Redis's default) in
        mode auto: logged once with the CONFIG SET line, nothing changed on
        the server, and the polls still bring the edit within 2 s."""
        d = self.start_tutor(flags=None)
        ev = d.wait_event("change_source_unavailable")
        self.assertEqual(ev["how"], "notification")
        self.assertIn("CONFIG SET notify-keyspace-events 'K$'", ev["error"])
        c = self.srv.client(0)
        self.assertEqual(c.config_get("notify-keyspace-events")["notify-keyspace-events"], "")
        c.close()
        took, seen = self.edit_and_bump(d, "Edited without notifications")
        self.assertLess(took, 2.0)
        self.assertEqual([e["how"] for e in seen], ["poll"])
        self.assertEqual(len(d.events_named("change_source_unavailable")), 1)

    def test_on_sets_the_flags(self):
        """change_notify = on adds K$ to the server's flags, keeping the
        ones set."""
        d = self.start_tutor(flags="Ex", discovery={"change_notify": "on"})
        d.wait_event("change_source_available",
                     predicate=lambda e: e["how"] == "notification")
        c = self.srv.client(0)
        flags = c.config_get("notify-keyspace-events")["notify-keyspace-events"]
        c.close()
        self.assertTrue(set("K$Ex") <= set(flags), flags)

    def test_on_with_the_reader_watch_keeps_both_flags(self):
        """change_notify = on and reader_watch = on both add flags to a
        server that has none: each reads the flags and sets what it lacks,
        and neither may set over what the other just added (a GET of both
        before either SET would leave only one).  Both then work: a bump
        is pushed, and a reader's miss of a lost key is seen and put
        back."""
        for _ in range(3):
            d = self.start_tutor(flags="", discovery={"change_notify": "on"},
                                 reader_watch="on")
            d.wait_event("change_source_available", timeout=10,
                         predicate=lambda e: e["how"] == "notification")
            d.wait_event("reader_watch_up", timeout=10)
            d.wait_event("refresh_succeeded", timeout=20)
            c = self.srv.client(0)
            flags = c.config_get("notify-keyspace-events")["notify-keyspace-events"]
            self.assertTrue(set("K$Eme") <= set(flags), flags)
            mark = d.mark()
            self.bump()
            d.wait_event("change_detected", since=mark, timeout=5,
                         predicate=lambda e: e["how"] == "notification")
            c.close()
            key = "program-" + self.fake.catalogue()["uuids"][0]
            c = self.srv.client(1)
            self.assertEqual(c.delete(self.lms.make_key(key)), 1)
            c.close()
            self.assertIsNone(self.lms.get(key))
            d.wait_event("reader_miss", since=mark, timeout=5,
                         predicate=lambda e: int(e["lost"]) >= 1)
            deadline = time.monotonic() + 5
            while self.lms.get(key) is None:
                self.assertLess(time.monotonic(), deadline, "not put back")
                time.sleep(0.05)
            self.assertEqual(d.stop(), 0)
            self.srv.stop()

    def test_no_bump_no_discovery_request(self):
        """While the key does not move, Discovery hears nothing at all (the
        polls cost the cache one GET a second)."""
        d = self.start_tutor()
        self.bump()                  # a value to poll, then quiet
        time.sleep(7)                # that bump's refresh and its retry
        self.fake.reset_requests()
        mark = d.mark()
        time.sleep(5)
        self.assertEqual(self.fake.requests, [])
        self.assertEqual(d.events_named("refresh_started", mark), [])
        self.assertEqual(d.events_named("change_detected", mark), [])

    def test_ten_bumps_in_a_second_cost_at_most_two_refreshes(self):
        d = self.start_tutor()
        time.sleep(1.2)
        mark = d.mark()
        uuid = self.edit_title("Edited in a burst")
        for _ in range(10):
            self.bump()
            time.sleep(0.1)
        self.wait_title(self.lms, uuid, "Edited in a burst", timeout=5)
        time.sleep(6)                # the debounce, a retry, the quiet
        self.assertLessEqual(len(self.change_refreshes(d, mark)), 2)
        self.assertGreaterEqual(len(self.change_refreshes(d, mark)), 1)
        self.assertGreaterEqual(len(d.events_named("change_detected", mark)), 2)

    def test_a_key_that_flaps_every_10ms(self):
        """Bumps every 10 ms for 12 s: one refresh at most 10 s after the
        first bump (the edit made before the flapping is in the cache by
        then), one after the key goes quiet, none in between; the loop
        keeps answering."""
        # A debounce of 2 s: what the daemon sees of the bumps (pushes, and
        # a poll a second) has no quiet spell that long while they go on.
        d = self.start_tutor(discovery={"change_debounce": "2s"})
        addr = d.wait_event("listening")["address"]
        time.sleep(1.2)
        mark = d.mark()
        uuid = self.edit_title("Edited before the flapping")
        stop = threading.Event()

        bumps = []

        def flap():
            while not stop.is_set():
                self.bump()
                bumps.append(time.monotonic())
                time.sleep(0.01)

        def bursts():
            # A gap of change_debounce (2 s) ends a burst, as the daemon
            # sees it: on a loaded machine this thread can stall that long.
            return 1 + sum(1 for a, b in zip(bumps, bumps[1:]) if b - a >= 1.8)
        t = threading.Thread(target=flap, daemon=True)
        t0 = time.monotonic()
        t.start()
        try:
            took = self.wait_title(self.lms, uuid, "Edited before the flapping", 13)
            self.assertGreater(took, 8.0)         # debounced, not at once
            self.assertLess(took, 11.5)           # within the 10 s bound
            for _ in range(10):
                t1 = time.monotonic()
                self.assertEqual(http_get(addr, "/healthz")[0], 200)
                self.assertLess(time.monotonic() - t1, 0.5)
                time.sleep(0.1)
            while time.monotonic() - t0 < 12:
                time.sleep(0.1)
            if bursts() == 1:
                self.assertEqual(len(self.change_refreshes(d, mark)), 1)
        finally:
            stop.set()
            t.join()
        time.sleep(6)
        n = len(self.change_refreshes(d, mark))
        if bursts() == 1:
            self.assertEqual(n, 2)
        else:
            self.assertLessEqual(n, 2 * bursts(), "%d bursts" % bursts())

    def test_course_run_only_edit_reaches_the_cache_after_change_full_delay(self):
        """An edit that bumps no program's data_modified_timestamp (a course
        run's): the change's incremental refresh and its retry find
        nothing, a full refresh change_full_delay later brings it."""
        d = self.start_tutor(discovery={"change_full_delay": "6s"})
        time.sleep(1.2)
        cat = copy.deepcopy(self.fake.catalogue())
        uuid = cat["uuids"][4]
        p = cat["programs"][uuid]
        p["data_modified_timestamp"] = self.fake.modified(uuid)   # unchanged
        run = p["courses"][0]["course_runs"][0]
        run["title"] = "A course run edited"
        self.fake.set_catalogue(cat)
        mark = d.mark()
        self.bump()
        sched = d.wait_event("change_full_scheduled", since=mark, timeout=10)
        self.assertEqual(int(sched["delay_ms"]), 6000)
        self.assertEqual(len(self.change_refreshes(d, mark)), 2)    # one retry
        self.assertNotEqual(
            self.lms.get("program-" + uuid)["courses"][0]["course_runs"][0]["title"],
            "A course run edited")
        # Another change found nothing meanwhile: the same full refresh.
        self.bump()
        d.wait_event("refresh_started", since=mark, timeout=10,
                     predicate=lambda e: e.get("reason") == "change_full")
        d.wait_event("refresh_succeeded", since=mark, timeout=10,
                     predicate=lambda e: e["kind"] == "full")
        self.assertEqual(
            self.lms.get("program-" + uuid)["courses"][0]["course_runs"][0]["title"],
            "A course run edited")
        time.sleep(7)
        fulls = [e for e in d.events_named("refresh_started", mark) if e["kind"] == "full"]
        self.assertEqual(len(fulls), 1, fulls)

    def test_missing_key_is_no_signal(self):
        """A key deleted (evicted, flushed) starts nothing; set again, it
        is a change."""
        d = self.start_tutor()
        self.bump()
        time.sleep(6)
        mark = d.mark()
        self.bumper.delete("api_timestamp")
        time.sleep(2.5)
        self.assertEqual(d.events_named("change_detected", mark), [])
        self.assertEqual(d.events_named("refresh_started", mark), [])
        self.bump()
        d.wait_event("refresh_started", since=mark, timeout=5,
                     predicate=lambda e: e.get("reason") == "change")

    def test_any_bytes_any_size(self):
        """A value that is no pickle, with NUL bytes, of a megabyte: a
        change like any other (no delay in the event: nothing to read)."""
        d = self.start_tutor()
        time.sleep(1.2)
        c = self.srv.client(1)
        for value in (b"\x00\xffnot a pickle\x00", os.urandom(1024 * 1024)):
            mark = d.mark()
            c.set(KEY, value)
            ev = d.wait_event("change_detected", since=mark, timeout=5)
            self.assertEqual(int(ev["bytes"]), len(value))
            self.assertNotIn("delay_ms", ev)
            d.wait_event("refresh_started", since=mark, timeout=5,
                         predicate=lambda e: e.get("reason") == "change")
            time.sleep(5)
        c.close()


class MemcachedSource(ChangeCase):
    """A native install: Discovery's own memcached as change_source, the LMS
    cache elsewhere (here a Redis, so that the two are surely apart)."""

    def start_native(self, mc_args=(), discovery=None):
        self.srv = self.start_redis()
        self.mc = self.start_memcached(extra_args=list(mc_args))
        disc = {"change_key": KEY, "change_source": "memcached://" + self.mc.address}
        disc.update(discovery or {})
        d = self.start_daemon(self.redis_sections(self.srv, discovery=disc,
                                                  daemon=self.schedule()))
        self.lms = RedisReader(self.srv, db=1)
        self.addCleanup(self.lms.close)
        self.bumper = self.discovery_cache_memcached(self.mc)
        return d

    def run_edit(self, d, title):
        time.sleep(1.2)
        self.fake.reset_requests()
        mark = d.mark()
        uuid = self.edit_title(title)
        self.bumper.set("api_timestamp", time.time(), None)
        took = self.wait_title(self.lms, uuid, title, timeout=5)
        self.assertEqual([r.uuid for r in self.fake.requests if r.kind == "program"], [uuid])
        return took, d.events_named("change_detected", mark)

    def test_watch_mutations(self):
        """memcached's watch mutations names the key: the edit is in the
        LMS cache within 2 s."""
        d = self.start_native()
        d.wait_event("change_source_available",
                     predicate=lambda e: e["how"] == "notification")
        took, seen = self.run_edit(d, "Edited, memcached")
        self.assertLess(took, 2.0)
        self.assertEqual([e["how"] for e in seen], ["notification"])
        self.assertEqual(seen[0]["source"], "memcached://" + self.mc.address)
        self.assertIn("delay_ms", seen[0])

    def test_watch_refused_polls(self):
        """memcached -W refuses the watch: logged once, polls only, and the
        edit still arrives within 2 s."""
        d = self.start_native(mc_args=["-W"])
        ev = d.wait_event("change_source_unavailable")
        self.assertEqual(ev["how"], "notification")
        self.assertIn("-W", ev["error"])
        took, seen = self.run_edit(d, "Edited, memcached -W")
        self.assertLess(took, 2.0)
        self.assertEqual([e["how"] for e in seen], ["poll"])
        self.assertEqual(len(d.events_named("change_source_unavailable")), 1)

    def test_a_value_at_the_item_limit(self):
        """A value of (nearly) the server's item size is a value."""
        d = self.start_native(discovery={"change_notify": "off"})
        time.sleep(1.2)
        mark = d.mark()
        big = os.urandom(1024 * 1024 - 512)
        self.assertTrue(self.mc.set(KEY, big))
        ev = d.wait_event("change_detected", since=mark, timeout=5)
        self.assertEqual(int(ev["bytes"]), len(big))


class Faults(ChangeCase):
    """A change source down or refusing: logged once, the schedule holds,
    /readyz unaffected."""

    def check_unavailable(self, source, discovery=None, settle=4):
        srv = self.start_redis()
        disc = {"change_key": KEY, "change_source": source}
        disc.update(discovery or {})
        d = self.start_daemon(self.redis_sections(
            srv, discovery=disc, daemon=self.schedule(incremental_interval="1s")))
        addr = d.wait_event("listening")["address"]
        mark = d.mark()
        time.sleep(settle)
        polls = [e for e in d.events_named("change_source_unavailable") if e["how"] == "poll"]
        self.assertEqual(len(polls), 1, polls)
        # The schedule holds: incremental refreshes every second.
        sched = [e for e in d.events_named("refresh_started", mark)
                 if e.get("reason") == "schedule"]
        self.assertGreaterEqual(len(sched), 2)
        self.assertEqual(http_get(addr, "/readyz")[0], 200)
        m, _ = scrape(addr)
        self.assertEqual(m[("programs_cached_change_source_up", (("how", "poll"),))], 0)
        self.assertLess(m[("programs_cached_change_poll_max_seconds", ())], 0.2)
        return d, polls[0]

    def test_source_down(self):
        port = free_port()
        d, ev = self.check_unavailable("redis://127.0.0.1:%d/1" % port)
        self.assertIn("connect", ev["error"])

    def test_source_memcached_down(self):
        d, ev = self.check_unavailable("memcached://127.0.0.1:%d" % free_port())
        notes = [e for e in d.events_named("change_source_unavailable")
                 if e["how"] == "notification"]
        self.assertEqual(len(notes), 1)

    def test_source_wants_a_password(self):
        src = self.start_redis(password="s3cret")
        d, ev = self.check_unavailable(src.url(1))
        self.assertIn("NOAUTH", ev["error"])
        # The password file given: it works.
        pw = self.write_file("change-password", "s3cret\n")
        d.sections["discovery"]["change_password_file"] = pw
        d.write_config()
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_event("change_source_available", since=mark, timeout=5,
                     predicate=lambda e: e["how"] == "poll")
        mark = d.mark()
        RedisReader(src, db=1, prefix="discovery").cache.set("api_timestamp", time.time(), None)
        d.wait_event("change_detected", since=mark, timeout=5)

    def test_source_acl_refuses_get(self):
        src = self.start_redis()
        c = src.client(0)
        c.execute_command("ACL", "SETUSER", "pcd", "on", ">pw", "~*", "+@all", "-get")
        c.close()
        d, ev = self.check_unavailable("redis://pcd:pw@127.0.0.1:%d/1" % src.port)
        self.assertIn("NOPERM", ev["error"])

    def test_on_refused_config_set_polls(self):
        """change_notify = on where CONFIG is not allowed (an ACL, as on a
        managed Redis): the notifications are logged once as refused, the
        flags stay as they were, and the polls still see a bump."""
        src = self.start_redis()
        c = src.client(0)
        c.execute_command("ACL", "SETUSER", "pcd", "on", ">pw", "~*", "&*", "+@all",
                          "-config")
        c.close()
        srv = self.start_redis()
        d = self.start_daemon(self.redis_sections(
            srv, discovery={"change_key": KEY, "change_notify": "on",
                            "change_source": "redis://pcd:pw@127.0.0.1:%d/1" % src.port},
            daemon=self.schedule()))
        ev = d.wait_event("change_source_unavailable", timeout=5)
        self.assertEqual(ev["how"], "notification")
        self.assertIn("CONFIG GET refused", ev["error"])
        d.wait_event("change_source_available", timeout=5,
                     predicate=lambda e: e["how"] == "poll")
        c = src.client(0)
        self.assertEqual(c.config_get("notify-keyspace-events")["notify-keyspace-events"], "")
        c.close()
        time.sleep(1.2)
        mark = d.mark()
        self.discovery_cache_redis(src).set("api_timestamp", time.time(), None)
        ev = d.wait_event("change_detected", since=mark, timeout=5)
        self.assertEqual(ev["how"], "poll")
        d.wait_event("refresh_started", since=mark, timeout=5,
                     predicate=lambda e: e.get("reason") == "change")
        self.assertEqual(len([e for e in d.events_named("change_source_unavailable")
                              if e["how"] == "notification"]), 1)

    def test_source_replica_that_will_not_serve(self):
        """A replica of a master that is gone, told not to serve stale
        data, refuses every read (-MASTERDOWN)."""
        src = self.start_redis(extra_args=["--replicaof", "127.0.0.1", str(free_port()),
                                           "--replica-serve-stale-data", "no"])
        d, ev = self.check_unavailable(src.url(1))
        self.assertIn("MASTERDOWN", ev["error"])

    def test_source_stopped_does_not_hold_the_loop(self):
        """A source that accepts connections and never answers (SIGSTOP):
        each poll is bounded, /healthz answers at once."""
        src = self.start_redis()
        srv = self.start_redis()
        d = self.start_daemon(self.redis_sections(
            srv, discovery={"change_key": KEY, "change_source": src.url(1),
                            "change_notify": "off"},
            daemon=self.schedule(incremental_interval="1s")))
        addr = d.wait_event("listening")["address"]
        time.sleep(1.2)
        os.kill(src.proc.pid, signal.SIGSTOP)
        try:
            d.wait_event("change_source_unavailable", timeout=5)
            worst = 0
            for _ in range(20):
                t1 = time.monotonic()
                self.assertEqual(http_get(addr, "/healthz")[0], 200)
                worst = max(worst, time.monotonic() - t1)
                time.sleep(0.1)
            self.assertLess(worst, 0.3)
            m, _ = scrape(addr)
            self.assertLess(m[("programs_cached_change_poll_max_seconds", ())], 0.2)
            self.assertEqual(http_get(addr, "/readyz")[0], 200)
        finally:
            os.kill(src.proc.pid, signal.SIGCONT)
        d.wait_event("change_source_available", timeout=5,
                     predicate=lambda e: e["how"] == "poll")

    def test_recovered_source_sees_what_moved_meanwhile(self):
        """A bump while the source could not be read is a change once it
        answers again."""
        src = self.start_redis()
        srv = self.start_redis()
        bumper = self.discovery_cache_redis(src)
        bumper.set("api_timestamp", time.time(), None)
        d = self.start_daemon(self.redis_sections(
            srv, discovery={"change_key": KEY, "change_source": src.url(1),
                            "change_notify": "off"}, daemon=self.schedule()))
        time.sleep(1.5)
        os.kill(src.proc.pid, signal.SIGSTOP)
        d.wait_event("change_source_unavailable", timeout=5)
        mark = d.mark()
        os.kill(src.proc.pid, signal.SIGCONT)
        bumper.set("api_timestamp", time.time(), None)
        d.wait_event("change_detected", since=mark, timeout=5)


class Lease(ChangeCase):
    """Only the lease holder watches; a stand-by has no connection to the
    change source and logs no change."""

    def test_standby_watches_nothing(self):
        srv = self.start_redis(extra_args=["--notify-keyspace-events", "K$"])
        secs = lambda: self.redis_sections(
            srv, discovery={"change_key": KEY}, daemon=self.schedule())
        a = secs()
        a["lease"] = {"enabled": True, "ttl": "3s"}
        holder = self.start_daemon(a, name="a")
        b = secs()
        b["lease"] = {"enabled": True, "ttl": "3s"}
        standby = self.daemon(b, name="b")
        standby.start()
        time.sleep(3)
        c = srv.client(0)
        self.assertEqual(c.pubsub_numsub("__keyspace@1__:" + KEY)[0][1], 1)
        c.close()
        mark_a, mark_b = holder.mark(), standby.mark()
        self.discovery_cache_redis(srv).set("api_timestamp", time.time(), None)
        holder.wait_event("change_detected", since=mark_a, timeout=5)
        time.sleep(2)
        self.assertEqual(standby.events_named("change_detected", mark_b), [])
        self.assertEqual(standby.events_named("change_source_available"), [])
        # The holder goes: the other takes over, and watches.
        holder.stop()
        standby.wait_event("lease_acquired", timeout=15)
        standby.wait_event("change_source_available", timeout=5)
        mark_b = standby.mark()
        self.discovery_cache_redis(srv).set("api_timestamp", time.time(), None)
        standby.wait_event("change_detected", since=mark_b, timeout=5)


class Config(ChangeCase):
    """What --check-config says of the change_* keys."""

    def check(self, discovery, memcached_cache=True):
        if memcached_cache:
            mc = self.start_memcached()
            sections = self.config(self.fake, [mc], [(DOMAIN, 1, "")], discovery=discovery)
        else:
            sections = self.redis_sections(self.start_redis(), discovery=discovery)
        self.runs = getattr(self, "runs", 0) + 1
        return self.daemon(sections, name="cfg%d" % self.runs).run("--check-config")

    def test_errors_name_the_key(self):
        cases = [
            ({"change_key": "discovery:1:api timestamp"}, True, "change_key",
             "not a memcached key"),
            ({"change_key": KEY, "change_source": "memcached://127.0.0.1:1",
              "change_password_file": "/etc/passwd"}, False, "change_password_file",
             "only for a change_source of redis://"),
            ({"change_key": KEY, "change_source": "http://127.0.0.1:1/"}, False,
             "change_source", "bad source"),
            ({"change_key": KEY, "change_source": "redis://127.0.0.1:1/x"}, False,
             "change_source", ""),
            ({"change_key": KEY, "change_poll": "10ms"}, False, "change_poll", ""),
            ({"change_key": KEY, "change_notify": "sometimes"}, False, "change_notify", ""),
        ]
        for disc, mc, key, words in cases:
            with self.subTest(disc=disc):
                rc, events, stderr = self.check(disc, memcached_cache=mc)
                self.assertEqual(rc, 2, stderr)
                errs = [e for e in events if e["event"] == "config_error"]
                self.assertEqual([e.get("key") for e in errs], [key], stderr)
                self.assertIn(words, errs[0]["error"])

    def test_accepted(self):
        """Redis takes any bytes in a key; an empty change_key is off."""
        for disc, mc in (({"change_key": "discovery:1:api timestamp"}, False),
                         ({"change_key": ""}, True),
                         ({"change_key": KEY, "change_source": "unix:///run/r.sock?db=2",
                           "change_notify": "on", "change_full_delay": "1h"}, True)):
            with self.subTest(disc=disc):
                rc, events, stderr = self.check(disc, memcached_cache=mc)
                self.assertEqual(rc, 0, stderr)
