"""state_dir has one writer (the daemon, --once, --domain, under a flock
of programs-cache.lock) and read-only modes that leave it alone; the
snapshot is read into memory, so a file changed under the daemon cannot
hurt a later repair."""

import json
import os
import signal
from pathlib import Path

from tests.support import catalog, reference
from tests.support.harness import PcdTestCase

SITE = "lms.example.com"


def tree(path):
    """Every entry under path: {name: (bytes or link target, mode, mtime_ns)}."""
    out = {}
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            if os.path.islink(p):
                body = "-> " + os.readlink(p)
            elif os.path.isdir(p):
                body = None
            else:
                body = Path(p).read_bytes()
            out[os.path.relpath(p, path)] = (body, st.st_mode, st.st_mtime_ns)
    return out


class StateDir(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(40, seed=7)
        self.fake = self.start_fake(self.cat)

    def make(self, **daemon):
        daemon.setdefault("refresh_interval", "1h")
        return self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")],
                                       daemon=daemon))

    def changed(self, tag, one=False):
        """Every program's title changed (or the first one's)."""
        cat = json.loads(json.dumps(self.cat))
        for p in list(cat["programs"].values())[:1 if one else None]:
            p["title"] += " (%s)" % tag
        self.fake.set_catalogue(cat)
        return cat

    def test_second_writer_is_told_who_holds_the_directory(self):
        """--once (and --domain) beside a running daemon on one state_dir:
        exit 1 naming the daemon's pid, nothing written to the cache or the
        directory; the daemon goes on and its snapshot still verifies."""
        d = self.make()
        d.start()
        d.wait_event("snapshot_saved", timeout=30)
        files = tree(d.state_dir)
        sets = self.mc.stats()["cmd_set"]
        for args in (["--once"], ["--domain", SITE]):
            res = d.run(*args)
            self.assertEqual(res.returncode, 1, (args, res.stderr))
            locked = [e for e in res.events if e.get("event") == "state_dir_locked"]
            self.assertEqual(len(locked), 1, res.stderr)
            self.assertEqual(int(locked[0]["pid"]), d.pid)
            self.assertEqual(locked[0]["dir"], str(d.state_dir))
        self.assertEqual(self.mc.stats()["cmd_set"], sets)
        self.assertEqual(tree(d.state_dir), files)
        # The daemon is still the writer.
        mark = d.mark()
        self.changed("v2")
        d.send_signal(signal.SIGHUP)
        d.wait_event("snapshot_saved", timeout=30, since=mark)
        self.assertEqual(d.run("--verify").returncode, 0)
        d.stop()
        # Once it has gone, --once is the writer.
        res = d.run_once()
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertFalse([e for e in res.events if e.get("event") == "state_dir_locked"])

    def test_a_reload_keeps_the_directory_it_started_with(self):
        """state_dir (like workers and the lease's enabled and ttl) is read
        at start-up: a SIGHUP that names another directory and another
        lease ttl says so for each, and the daemon goes on holding the
        lock and saving its snapshot where it started; the new directory
        is never made."""
        d = self.make()
        d.start()
        d.wait_event("snapshot_saved", timeout=30)
        old = d.state_dir
        new = Path(self.tmpdir) / "elsewhere"
        d.sections["daemon"]["state_dir"] = str(new)
        d.sections["lease"] = {"ttl": "90s"}
        d.write_config()
        mark = d.mark()
        self.changed("v2")
        d.send_signal(signal.SIGHUP)
        kept = d.wait_events("config_not_applied", 2, since=mark)
        self.assertEqual(sorted((e["section"], e["key"]) for e in kept),
                         [("daemon", "state_dir"), ("lease", "ttl")])
        self.assertTrue(all(e["file"] == str(d.config_path) for e in kept), kept)
        saved = d.wait_event("snapshot_saved", timeout=30, since=mark)
        self.assertEqual(saved["file"], str(old / "programs-cache.snapshot"))
        self.assertFalse(os.path.lexists(new))
        self.assertEqual(d.events_named("config_not_applied", since=mark), kept)
        # The lock is still the running daemon's, on the old directory.
        d.sections["daemon"]["state_dir"] = str(old)
        d.write_config()
        res = d.run("--once")
        self.assertEqual(res.returncode, 1, res.stderr)
        locked = [e for e in res.events if e.get("event") == "state_dir_locked"]
        self.assertEqual([int(e["pid"]) for e in locked], [d.pid], res.stderr)
        self.assertEqual(d.stop(), 0)

    def test_read_only_modes_leave_the_directory_byte_identical(self):
        """--verify, --dry-run, --show, --check-config and --health create,
        change and remove nothing under state_dir: not with a snapshot, not
        with an empty directory, and a missing one is not made."""
        d = self.make()
        res = d.run_once()
        self.assertEqual(res.returncode, 0, res.stderr)
        key = "program-" + self.cat["uuids"][0]
        modes = (["--verify"], ["--dry-run"], ["--show", key], ["--check-config"],
                 ["--health"])
        # A crashed writer's temporary file stays too: only a writer removes it.
        (d.state_dir / "programs-cache.snapshot.99999.tmp").write_bytes(b"left")
        before = tree(d.state_dir)
        self.assertIn("programs-cache.snapshot", before)
        for args in modes:
            d.run(*args)
            self.assertEqual(tree(d.state_dir), before, args)
        for name in list(os.listdir(d.state_dir)):
            os.unlink(d.state_dir / name)
        before = tree(d.state_dir)
        for args in modes:
            d.run(*args)
            self.assertEqual(tree(d.state_dir), before, args)
        os.rmdir(d.state_dir)
        for args in modes:
            d.run(*args)
            self.assertFalse(os.path.lexists(d.state_dir), args)

    def test_verify_during_a_save(self):
        """--verify while a save is half done (its bytes written, not yet
        made the file's: PCD_TEST_SAVE_PAUSE_MS holds it there), for a
        new base and for a delta: it reads the whole previous file (never
        a torn one, never snapshot_ignored), and the save completes."""
        sections = self.config(self.fake, [self.mc], [(SITE, 1, "")],
                               daemon={"refresh_interval": "1h"})
        d = self.daemon(sections, env={"PCD_TEST_SAVE_PAUSE_MS": "1500"})
        d.start()
        d.wait_event("snapshot_saved", timeout=60)
        kinds = []
        for i in range(2):
            mark = d.mark()
            self.changed("v%d" % i, one=True)
            d.send_signal(signal.SIGHUP)
            d.wait_event("refresh_succeeded", timeout=60, since=mark)
            res = d.run("--verify")
            self.assertEqual(d.events_named("snapshot_saved", since=mark), [],
                             "the save ended before --verify did: no overlap")
            self.assertFalse([e for e in res.events
                              if e.get("event") == "snapshot_ignored"], res.stderr)
            # The cache is newer than the file it read: 1, not 2 (no file).
            self.assertEqual(res.returncode, 1, res.stderr)
            kinds.append(d.wait_event("snapshot_saved", timeout=60, since=mark)["kind"])
            self.assertEqual(d.run("--verify").returncode, 0)
        self.assertEqual(kinds, ["delta", "delta"])
        # A new base: the file is gone, so the next save cannot append.
        os.unlink(d.state_dir / "programs-cache.snapshot")
        self.assertEqual(d.run("--verify").returncode, 2)
        mark = d.mark()
        self.changed("v9")
        d.send_signal(signal.SIGHUP)
        d.wait_event("refresh_succeeded", timeout=60, since=mark)
        self.assertEqual(d.run("--verify").returncode, 2)
        self.assertEqual(d.events_named("snapshot_saved", since=mark), [])
        self.assertEqual(d.wait_event("snapshot_saved", timeout=60, since=mark)["kind"],
                         "base")
        self.assertEqual(d.run("--verify").returncode, 0)
        self.assertEqual(sorted(os.listdir(d.state_dir)),
                         ["programs-cache.lock", "programs-cache.snapshot"])
        self.assertEqual(d.events_named("snapshot_error"), [])

    def test_snapshot_replaced_under_the_daemon_cannot_hurt_a_repair(self):
        """The file truncated, then replaced by garbage, after the daemon
        loaded it: a memcached restart is repaired from what the daemon
        holds, and the daemon writes a good base again."""
        d = self.make(check_interval="1s")
        res = d.run_once()
        self.assertEqual(res.returncode, 0, res.stderr)
        d.start()
        d.wait_event("snapshot_loaded", timeout=30)
        snap = d.state_dir / "programs-cache.snapshot"
        with open(snap, "r+b") as f:
            f.truncate(100)
        tmp = d.state_dir / "garbage"
        tmp.write_bytes(os.urandom(4096))
        os.replace(tmp, snap)
        mark = d.mark()
        self.mc.restart()
        d.wait_event("cache_repaired", timeout=60, since=mark)
        self.assertTrue(d.running)
        reader = self.reader([self.mc])
        self.assertCacheMatches(reader, reference.expected_cache(
            [{"domain": SITE, "site_id": 1, "catalogue": self.cat}]))
        mark = d.mark()
        self.changed("v2")
        d.send_signal(signal.SIGHUP)
        saved = d.wait_event("snapshot_saved", timeout=30, since=mark)
        self.assertEqual(saved["kind"], "base")
        self.assertEqual(d.run("--verify").returncode, 0)

    def test_absent_counts_go_on_across_runs(self):
        """stale_after counts full refreshes, not runs of one process: a
        program removed upstream goes at the third --once after it went
        (stale_after = 3), each run a new process reading the file."""
        d = self.make(stale_after="3")
        self.assertEqual(d.run_once().returncode, 0)
        removed = self.cat["uuids"][3]
        cat = json.loads(json.dumps(self.cat))
        cat["uuids"].remove(removed)
        del cat["programs"][removed]
        self.fake.set_catalogue(cat)
        reader = self.reader([self.mc])
        for i in range(3):
            res = d.run_once()
            self.assertEqual(res.returncode, 0, res.stderr)
            deleted = [e for e in res.events if e.get("event") == "stale_deleted"]
            if i < 2:
                self.assertEqual(deleted, [], i)
                self.assertIsNotNone(reader.get("program-" + removed), i)
        self.assertTrue(deleted)
        self.assertIsNone(reader.get("program-" + removed))
        # One more run: the cache is what the catalogue now says.
        self.assertEqual(d.run_once().returncode, 0)
        self.assertCacheMatches(reader, reference.expected_cache(
            [{"domain": SITE, "site_id": 1, "catalogue": cat}]))
