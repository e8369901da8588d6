"""Self-healing (docs/design.md, Self-healing): real memcached processes are killed,
restarted, flushed and starved while the daemon runs, often with Discovery
stopped; every test ends by reading the cache back the way the LMS does and
comparing it with what cache_programs would have cached."""

import collections
import os
import signal
import threading
import time
import urllib.error
import urllib.request

from tests.support import catalog, reference
from tests.support.harness import PcdTestCase

CHECK = 0.3          # check_interval in these tests, seconds
SNAPSHOT = "programs-cache.snapshot"


def fam(key):
    """The daemon's spelling of a key's family ("course_programs")."""
    return reference.family_of(key).replace("-", "_")


class Healing(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(25, seed=11)
        self.fake = self.start_fake(self.cat)
        self.sites = [("lms.example.com", 1, ""), ("other.example.com", 2, None)]

    def expected(self, cat=None):
        return reference.expected_cache([
            {"domain": "lms.example.com", "site_id": 1, "catalogue": cat or self.cat},
            {"domain": "other.example.com", "site_id": 2, "catalogue": None},
        ])

    def sections(self, mcs=None, memcached=None, **daemon):
        # The polling checks are what these tests are about: the reader
        # watch, which would see the same restarts first, is off
        # (test_readers.py has it).
        cfg = {"refresh_interval": "1h", "check_interval": "%dms" % (CHECK * 1000),
               "verify_interval": "1h", "reader_watch": "off"}
        cfg.update(daemon)
        return self.config(self.fake, mcs or [self.mc], self.sites,
                           discovery={"retries": 0}, memcached=memcached, daemon=cfg)

    def start_daemon(self, mcs=None, name="pcd", **daemon):
        d = self.daemon(self.sections(mcs, **daemon), name=name)
        d.start()
        return d

    def wait_published(self, d, since=0):
        """Wait for a publish and the verification that follows it."""
        ok = d.wait_event("refresh_succeeded", since=since, timeout=30)
        d.wait_event("cache_verified", since=since, timeout=30,
                     predicate=lambda e: e["reason"] == "verify")
        return ok

    def wire_keys(self, reader, expected):
        return {reader.make_key(k) for k in expected}

    def wait_complete(self, wire, timeout, mc=None):
        """Poll until every wire key is on the server; the ones missing at
        the deadline, or set()."""
        mc = mc or self.mc
        deadline = time.monotonic() + timeout
        while True:
            missing = wire - mc.dump_keys()
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.02)

    def assertMissCounts(self, miss, keys):
        """A cache_miss event counts exactly keys (Django keys), by family."""
        self.assertEqual(miss["missing"], len(keys), miss)
        counts = collections.Counter(fam(k) for k in keys)
        got = {k[len("missing_"):]: v for k, v in miss.items()
               if k.startswith("missing_")}
        self.assertEqual(got, dict(counts))
        examples = miss["examples"].split(" ")
        self.assertEqual(len(examples), min(5, len(keys)))
        self.assertLessEqual(set(examples), set(keys))

    # -- the tests ---------------------------------------------------------

    def test_kill9_and_restart_with_discovery_stopped(self):
        """memcached killed -9 while the daemon runs, Discovery gone: the
        server being down is logged once, and once it is back every key is
        back within check_interval + 1 s, equal to what the LMS expects."""
        d = self.start_daemon()
        self.wait_published(d)
        expected = self.expected()
        reader = self.reader([self.mc])
        self.assertCacheMatches(reader, expected)
        wire = self.wire_keys(reader, expected)
        self.fake.stop()

        mark = d.mark()
        self.mc.kill9()
        d.wait_event("memcached_error", since=mark, timeout=10)
        time.sleep(4 * CHECK)          # several checks find it down
        self.mc.restart()
        missing = self.wait_complete(wire, CHECK + 1.0)
        self.assertEqual(missing, set(), "not back within check_interval + 1 s")
        reader.reconnect()
        self.assertCacheMatches(reader, expected)

        errors = [e for e in d.events_named("memcached_error", since=mark)]
        self.assertEqual(len(errors), 1, errors)
        self.assertEqual(errors[0]["server"], self.mc.address)
        self.assertEqual(len(d.events_named("memcached_recovered", since=mark)), 1)
        empty = d.events_named("cache_empty_detected", since=mark)
        self.assertEqual([e["reason"] for e in empty], ["pid changed"])
        self.assertEqual(empty[0]["server"], self.mc.address)
        self.assertEqual(empty[0]["keys"], len(expected))
        rep = d.wait_event("cache_repaired", since=mark)
        self.assertEqual((rep["reason"], rep["keys"], rep["keys_failed"]),
                         ("pid changed", len(expected), 0))
        self.assertEqual(d.stop(), 0)

    def test_flush_all_is_found_and_repaired(self):
        """flush_all empties the server: the sentinels say so at the next
        check, the misses are counted by family and every key rewritten."""
        d = self.start_daemon()
        self.wait_published(d)
        expected = self.expected()
        mark = d.mark()
        self.mc.flush()
        empty = d.wait_event("cache_empty_detected", since=mark, timeout=10)
        self.assertEqual(empty["reason"], "sentinel missing")
        miss = d.wait_event("cache_miss", since=mark, timeout=10)
        self.assertMissCounts(miss, list(expected))
        rep = d.wait_event("cache_repaired", since=mark, timeout=10)
        self.assertEqual((rep["keys"], rep["keys_failed"]), (len(expected), 0))
        self.assertCacheMatches(self.reader([self.mc]), expected)
        self.assertEqual(d.stop(), 0)

    def test_eviction_by_a_memory_starved_memcached(self):
        """A small memcached (-m 8) that other data fills evicts program
        values: the verification after the next publish counts exactly the
        evicted keys, by family, and puts them back."""
        mc = self.start_memcached(memory_mb=8)
        self.cat = catalog.generate(40, seed=3, target_bytes=20000)
        self.fake.set_catalogue(self.cat)
        d = self.start_daemon(mcs=[mc])
        self.wait_published(d)
        expected = self.expected()
        reader = self.reader([mc])
        wire = reader.wire_keys(expected)
        sizes = [len(mc.get(w)[1]) for w in wire]
        big = [s for s in sizes if s > 5000]
        n = 0
        while n < 3 * 8 * 1024 * 1024:          # other data, same sizes
            for s in big:
                mc.set("other-data-%d" % n, b"x" * s)
                n += s
        evicted = sorted(wire[w] for w in set(wire) - mc.dump_keys())
        self.assertTrue(evicted, "memcached evicted nothing")

        mark = d.mark()
        d.send_signal(signal.SIGHUP)             # a publish, then verification
        ok = self.wait_published(d, since=mark)
        self.assertEqual(ok["keys_written"], 0)  # nothing changed upstream
        miss = d.wait_event("cache_miss", since=mark, timeout=10)
        self.assertMissCounts(miss, evicted)
        rep = d.wait_event("cache_repaired", since=mark, timeout=10)
        self.assertEqual((rep["keys"], rep["keys_failed"]), (len(evicted), 0))
        self.assertCacheMatches(reader, expected)
        self.assertEqual(d.stop(), 0)

    def test_restart_in_the_middle_of_a_publish(self):
        """memcached killed and restarted while the daemon is writing: the
        next check finds the new pid and no key is missing afterwards."""
        self.cat = catalog.generate(300, seed=7, target_bytes=40000)
        self.fake.set_catalogue(self.cat)
        expected = self.expected()
        seen = []

        def kill_mid_publish():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                items = self.mc.stats()["curr_items"]
                if 0 < items < 150:      # programs are written first
                    seen.append(items)
                    self.mc.kill9()
                    self.mc.restart()
                    return
                time.sleep(0.001)

        watcher = threading.Thread(target=kill_mid_publish)
        watcher.start()
        d = self.start_daemon()
        watcher.join(70)
        self.assertTrue(seen, "the publish was never caught half-way")
        d.wait_event("cache_empty_detected", timeout=10,
                     predicate=lambda e: e["reason"] == "pid changed")
        # Which pass puts the keys back depends on when the check saw the
        # new pid.  After the first publish adopted its snapshot: the
        # check's own repair ("pid changed").  During that publish (a slow
        # build, TSan): there is no snapshot to repair from yet, the
        # publish fails, and the verification that follows every publish
        # finds the keys missing ("verify").  Either way nothing stays
        # missing, which is what wait_complete asserts below.
        rep = d.wait_event("cache_repaired", timeout=30,
                           predicate=lambda e: e["reason"] in
                           ("pid changed", "verify"))
        self.assertEqual(rep["keys_failed"], 0)
        reader = self.reader([self.mc])
        missing = self.wait_complete(self.wire_keys(reader, expected), 10)
        self.assertEqual(missing, set())
        self.assertCacheMatches(reader, expected)
        self.assertEqual(d.stop(), 0)

    def test_daemon_restarted_with_discovery_down_repairs_from_the_file(self):
        """The snapshot file outlives the daemon: restarted while Discovery
        is down and memcached is empty, it loads the file and refills the
        cache without a single successful fetch."""
        d = self.start_daemon()
        self.wait_published(d)
        saved = d.wait_event("snapshot_saved", timeout=30)
        expected = self.expected()
        self.assertEqual(saved["entries"], len(expected))
        self.assertTrue((d.state_dir / SNAPSHOT).exists())
        self.assertEqual(d.stop(), 0)
        self.fake.stop()
        self.mc.restart()
        self.assertEqual(self.mc.dump_keys(), set())

        d2 = self.start_daemon(name="pcd")
        loaded = d2.wait_event("snapshot_loaded", timeout=10)
        self.assertEqual(loaded["entries"], len(expected))
        miss = d2.wait_event("cache_miss", timeout=10)
        self.assertEqual(miss["missing"], len(expected))
        rep = d2.wait_event("cache_repaired", timeout=10)
        self.assertEqual((rep["keys"], rep["keys_failed"]), (len(expected), 0))
        self.assertCacheMatches(self.reader([self.mc]), expected)
        d2.wait_event("refresh_incomplete", timeout=30)
        self.assertEqual(d2.events_named("refresh_succeeded"), [])
        # A failed refresh keeps what the file had in force.
        mark = d2.mark()
        self.mc.flush()
        d2.wait_event("cache_repaired", since=mark, timeout=10)
        self.assertCacheMatches(self.reader([self.mc]), expected)
        self.assertEqual(d2.stop(), 0)

    def test_ready_from_the_file_and_after_a_repair(self):
        """Ready (/readyz) after the first publish *or snapshot load*.
        With Discovery down, a restarted daemon is ready from its file,
        and /readyz counts the repair as a publish."""
        d = self.start_daemon()
        self.wait_published(d)
        self.assertEqual(d.stop(), 0)
        self.fake.stop()
        self.mc.flush()
        d2 = self.daemon(self.sections(listen="127.0.0.1:0"), name="pcd", notify=True)
        d2.start()
        d2.notify.wait("READY=1", timeout=10)
        self.assertEqual(d2.events_named("refresh_succeeded"), [])
        d2.wait_event("cache_repaired", timeout=10)
        addr = d2.wait_event("listening", timeout=10)["address"]
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen("http://%s/readyz" % addr, timeout=5) as r:
                    self.assertEqual(r.status, 200)
                    break
            except urllib.error.HTTPError as e:
                self.assertLess(time.monotonic(), deadline, e.read())
                time.sleep(0.1)
        self.assertEqual(d2.stop(), 0)

    def test_bad_snapshot_files_are_reported_and_ignored(self):
        """A corrupt, a truncated and a foreign (other settings) snapshot:
        each is reported, nothing is repaired from it, the daemon starts,
        publishes and writes a good file over it."""
        d = self.daemon(self.sections())
        rc, _, stderr = d.run_once()
        self.assertEqual(rc, 0, stderr)
        path = d.state_dir / SNAPSHOT
        good = path.read_bytes()

        def corrupt(data):
            b = bytearray(data)
            b[len(b) // 2] ^= 0x55
            return bytes(b)

        cases = [("corrupt", corrupt(good), None, "checksum"),
                 ("truncated", good[:len(good) // 3], None, "truncated"),
                 ("foreign", good, {"key_prefix": "other"}, "key_prefix")]
        for name, data, mem, words in cases:
            with self.subTest(name):
                path.write_bytes(data)
                self.mc.flush()
                d = self.daemon(self.sections(memcached=mem), name="pcd-" + name)
                d.sections["daemon"]["state_dir"] = str(path.parent)
                d.write_config()
                d.start()
                bad = d.wait_event("snapshot_ignored", timeout=10)
                self.assertEqual(bad["file"], str(path))
                self.assertIn(words, bad["error"])
                d.wait_event("refresh_succeeded", timeout=30)
                saved = d.wait_event("snapshot_saved", timeout=10)
                self.assertEqual(d.events_named("snapshot_loaded"), [])
                self.assertEqual([e for e in d.events_named("cache_repaired")
                                  if e["reason"] != "verify"], [])
                self.assertEqual(d.stop(), 0)
                self.assertEqual(d.run("--verify").returncode, 0)
                self.assertGreater(saved["entries"], 0)
                path.write_bytes(good)

    def test_sigusr1_republishes_the_snapshot(self):
        """SIGUSR1: every key rewritten from the snapshot, without asking
        Discovery: deleted keys come back, a foreign value is overwritten."""
        d = self.start_daemon(check_interval="1h")
        self.wait_published(d)
        expected = self.expected()
        self.fake.stop()
        reader = self.reader([self.mc])
        keys = sorted(expected)
        for k in keys[:3]:
            self.assertTrue(self.mc.delete(reader.make_key(k)))
        self.mc.set(reader.make_key(keys[3]), b"not a pickle", flags=0)
        mark = d.mark()
        d.send_signal(signal.SIGUSR1)
        rep = d.wait_event("cache_repaired", since=mark, timeout=10)
        self.assertEqual((rep["reason"], rep["keys"], rep["keys_failed"]),
                         ("signal", len(expected), 0))
        self.assertEqual(d.events_named("cache_miss", since=mark), [])
        self.assertCacheMatches(reader, expected)
        self.assertEqual(d.stop(), 0)

    def test_verify_exit_codes(self):
        """--verify: 2 without a snapshot or with bad usage; 0 when the cache
        holds the snapshot; 1 listing each key missing or different, and
        when a server is unreachable."""
        d = self.daemon(self.sections())
        r = d.run("--verify")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no snapshot", r.stderr)
        self.assertEqual(d.run("--verify", "--once").returncode, 2)

        self.assertEqual(d.run_once().returncode, 0)
        expected = self.expected()
        r = d.run("--verify")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.splitlines(), [
            "summary keys=%d checked=%d missing=0 differ=0 unreachable_servers=0"
            % (len(expected), len(expected))])

        reader = self.reader([self.mc])
        keys = sorted(expected)
        for k in keys[:2]:
            self.mc.delete(reader.make_key(k))
        self.mc.set(reader.make_key(keys[2]), b"stale", flags=1)
        r = d.run("--verify")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(sorted(l.split(" key=", 1)[1] for l in lines
                                if l.startswith("missing ")), keys[:2])
        self.assertEqual([l.split(" key=", 1)[1] for l in lines
                          if l.startswith("differs ")], [keys[2]])
        self.assertIn("missing=2 differ=1", lines[-1])
        # Read-only: nothing was put back.
        self.assertIsNone(self.mc.get(reader.make_key(keys[0])))

        self.mc.kill9()
        r = d.run("--verify")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unreachable server=%s" % self.mc.address, r.stdout)
