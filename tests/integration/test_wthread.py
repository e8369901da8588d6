"""The writer thread: every write to the cache off the event loop.

A stop (SIGTERM) during a publish, a repair and a save exits cleanly with
the last complete snapshot on disk: the writer finishes or drops the batch
it has in flight, nothing of a publish cut short is recorded, a save in
progress is finished.  The points are exact: PCD_TEST_STOP_AT=publish:N
(or repair:N) stops the process when the N-th batch of such a job is about
to be sent and holds that batch until the stop; PCD_TEST_STOP_AT=save when
the save thread starts.  And the loop answers /healthz while the writer
waits for a memcached that does not answer.

How long anything takes is bench/run.py's (BENCH.md), not asserted here."""

import copy
import glob
import http.client
import os
import signal
import time

from tests.support import catalog
from tests.support.harness import PcdTestCase

SITE = "lms.example.com"
N = 600         # programs: their details are 3 batches of one server (256)


def process_state(pid):
    """The state letter of /proc/PID/stat (T: stopped)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def retitled(cat, suffix):
    cat = copy.deepcopy(cat)
    for p in cat["programs"].values():
        p["title"] += suffix
    return cat


def healthz(address, timeout=10):
    host, port = address.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


class StopDuring(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached(memory_mb=128)
        self.cat = catalog.generate(N, seed=13, dangling_pathway=False)
        self.fake = self.start_fake(copy.deepcopy(self.cat))
        self.r = self.reader([self.mc])

    def sections(self, **daemon):
        d = {"refresh_interval": "1h"}
        d.update(daemon)
        return self.config(self.fake, [self.mc], [(SITE, 1, "")], daemon=d)

    def snapshot_bytes(self, d):
        with open(os.path.join(d.state_dir, "programs-cache.snapshot"), "rb") as f:
            return f.read()

    def leftovers(self, d):
        """Files in the state directory besides the snapshot and the lock
        that keeps it to one writer (it stays, unlocked)."""
        return [p for p in glob.glob(os.path.join(d.state_dir, "*"))
                if not p.endswith(("/programs-cache.snapshot", "/programs-cache.lock"))]

    def wait_stopped(self, d, timeout=60):
        deadline = time.monotonic() + timeout
        while process_state(d.proc.pid) != "T":
            self.assertTrue(d.running, "exited instead of stopping:\n" + d.stderr_text[-3000:])
            self.assertLess(time.monotonic(), deadline, "never stopped at the hook")
            time.sleep(0.02)

    def stop_there(self, d):
        """SIGTERM while stopped at the hook, then SIGCONT; the exit code
        and the seconds from SIGCONT to the exit."""
        d.proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGCONT)
        rc = d.wait_exit(timeout=30)
        return rc, time.monotonic() - t0

    def published_titles(self, suffix):
        """How many programs the cache holds with the new title."""
        got = self.r.get_many(["program-" + u for u in self.cat["uuids"]])
        return sum(1 for v in got.values() if v["title"].endswith(suffix))

    def test_stop_during_a_publish(self):
        """Stopped with the second batch of the details let through to the
        gate: that batch is never sent, nothing of the publish is recorded
        (the snapshot is the last complete one, byte for byte, and no
        temporary file is left), the site's list is the old one, and the
        exit is clean."""
        d = self.daemon(self.sections())
        rc, _, err = d.run_once()
        self.assertEqual(rc, 0, err)
        before = self.snapshot_bytes(d)
        self.fake.set_catalogue(retitled(self.cat, " (v2)"))
        d.env["PCD_TEST_STOP_AT"] = "publish:2"
        d.start()
        self.wait_stopped(d)
        rc, _ = self.stop_there(d)
        self.assertEqual(rc, 0, d.stderr_text[-3000:])
        self.assertEqual(d.events_named("refresh_succeeded"), [])
        self.assertEqual(d.events_named("snapshot_saved"), [])
        self.assertEqual(d.events_named("write_stopped"), [], "a stop is not a lost lease")
        self.assertEqual(len(d.events_named("shutdown")), 1)
        self.assertEqual(self.snapshot_bytes(d), before)
        self.assertEqual(self.leftovers(d), [])
        # The first batch of details went, the second never did.
        self.assertEqual(self.published_titles(" (v2)"), 256)
        self.assertEqual(self.r.get("program-uuids-" + SITE), self.cat["uuids"])
        # The next run starts from that snapshot and publishes it all.
        del d.env["PCD_TEST_STOP_AT"]
        rc, _, err = d.run_once()
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.published_titles(" (v2)"), N)

    def test_stop_during_a_repair(self):
        """memcached flushed, the daemon started on the snapshot repairs it
        on the writer thread; stopped at the repair's second batch, it
        exits cleanly, says what it put back (the first batch), and the
        snapshot is untouched."""
        d = self.daemon(self.sections(check_interval="1h"))
        rc, _, err = d.run_once()
        self.assertEqual(rc, 0, err)
        before = self.snapshot_bytes(d)
        self.mc.flush()
        # The refresh at start-up waits on Discovery: the repair comes first.
        self.fake.set_latency(3.0)
        d.env["PCD_TEST_STOP_AT"] = "repair:2"
        d.start()
        self.wait_stopped(d)
        rc, _ = self.stop_there(d)
        self.assertEqual(rc, 0, d.stderr_text[-3000:])
        rep = d.events_named("cache_repaired")
        self.assertEqual(len(rep), 1, rep)
        self.assertEqual(rep[0]["keys"], 256)
        self.assertGreater(rep[0]["keys_failed"], 0)
        self.assertEqual(len(self.mc.dump_keys()), 256)
        self.assertEqual(self.snapshot_bytes(d), before)
        self.assertEqual(self.leftovers(d), [])

    def test_stop_during_a_save(self):
        """Stopped as the save thread starts writing the snapshot: the save
        is finished, then the daemon exits cleanly; the file is complete
        (--verify reads it and finds the cache holds every value)."""
        d = self.daemon(self.sections())
        d.env["PCD_TEST_STOP_AT"] = "save"
        d.start()
        self.wait_stopped(d)
        rc, _ = self.stop_there(d)
        self.assertEqual(rc, 0, d.stderr_text[-3000:])
        saved = d.events_named("snapshot_saved")
        self.assertEqual(len(saved), 1, d.stderr_text[-3000:])
        self.assertEqual(self.leftovers(d), [])
        del d.env["PCD_TEST_STOP_AT"]
        rc, _, err = d.run("--verify")
        self.assertEqual(rc, 0, err)

    def test_loop_answers_while_the_writer_waits(self):
        """memcached stopped (SIGSTOP) in the middle of a publish: the
        writer waits for it (io_timeout), and meanwhile the loop answers
        /healthz; once memcached is back the refresh ends."""
        d = self.daemon(self.sections(listen="127.0.0.1:0"),
                        env={"PCD_TEST_STOP_AFTER_PHASE": "0"})
        d.sections["memcached"]["io_timeout"] = "4s"
        d.write_config()
        self.fake.set_catalogue(self.cat)
        d.start()
        addr = d.wait_event("listening", timeout=20)["address"]
        # Stopped (by the test hook) once the details are in the cache.
        self.wait_stopped(d)
        self.mc.proc.send_signal(signal.SIGSTOP)
        try:
            d.proc.send_signal(signal.SIGCONT)
            # The indexes wait for memcached on the writer thread.
            time.sleep(0.5)
            answers = [healthz(addr) for _ in range(5)]
            ended = d.events_named("refresh_succeeded") + d.events_named("refresh_incomplete")
        finally:
            self.mc.proc.send_signal(signal.SIGCONT)
        self.assertEqual(answers, [200] * 5)
        self.assertEqual(ended, [], "the publish was over before memcached came back")
        d.wait_event("refresh_succeeded", timeout=30)
        self.assertEqual(d.stop(), 0)
