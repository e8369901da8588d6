"""A lease holder paused in the middle of its publish: when it
resumes past the lease's ttl it must not send what it had queued, or the
older values it held would lie under the new holder's newer indexes for
good.

Real processes, one real memcached, the fake Discovery, the LMS's reader.
Two pauses: at the exact point where a batch is queued and about to be
sent (the writer thread's test hook PCD_TEST_STOP_AT=publish:N stops the
process there), and a SIGSTOP from outside as soon as the holder's first
keys reach the cache, i.e. while a batch is being sent (the test checks,
through memcached's own item count, that the publish was really cut)."""

import copy
import os
import signal
import socket
import time

from tests.support import catalog, reference
from tests.support.harness import PcdTestCase

SITE = "lms.example.com"
TTL = 3.0


def v2(cat):
    cat = copy.deepcopy(cat)
    for p in cat["programs"].values():
        p["title"] += " (v2)"
    return cat


def expected(cat):
    return reference.expected_cache([{"domain": SITE, "site_id": 1, "catalogue": cat}])


def process_state(pid):
    """The state letter of /proc/PID/stat (T: stopped)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def curr_items(mc):
    """memcached's item count, asked over its text protocol (a test's own
    probe: the daemon's writes are not seen through this)."""
    with socket.create_connection((mc.host, mc.port), timeout=2) as s:
        s.sendall(b"stats\r\n")
        buf = b""
        while not buf.endswith(b"END\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    for line in buf.decode().split("\r\n"):
        if line.startswith("STAT curr_items "):
            return int(line.split()[2])
    raise AssertionError("no curr_items in memcached's stats")


class PausedHolder(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached(memory_mb=256)
        # Enough keys for many batches of 256: the pause lands mid-publish.
        self.cat = catalog.generate(1500, seed=43, target_bytes=2000)
        self.fake = self.start_fake(self.cat)
        self.r = self.reader([self.mc])

    def holder_config(self, verify):
        cfg = self.config(self.fake, [self.mc], [(SITE, 1, "")],
                          daemon={"refresh_interval": "1h", "check_interval": "500ms",
                                  "verify_interval": verify})
        cfg["lease"] = {"enabled": True, "ttl": "%ds" % TTL}
        return cfg

    def pause_mid_publish(self, a, total):
        """SIGSTOP a once some of its keys are in the cache; the count it
        left must be short of the whole publish."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if curr_items(self.mc) > 8:     # past the lease and sentinel keys
                a.send_signal(signal.SIGSTOP)
                time.sleep(0.2)
                n = curr_items(self.mc)
                self.assertLess(n, total,
                                "the publish ended before the pause (%d keys): "
                                "nothing was left queued to test" % n)
                return n
            time.sleep(0.001)
        self.fail("the holder wrote nothing within 60 s")

    def run_pause(self, verify):
        want = expected(v2(self.cat))
        a = self.daemon(self.holder_config(verify), name="a").start()
        self.pause_mid_publish(a, len(want))
        self.fake.set_catalogue(v2(self.cat))
        b = self.daemon(self.holder_config(verify), name="b").start()
        b.wait_event("lease_acquired", timeout=TTL + 10)
        b.wait_event("refresh_succeeded", timeout=60)
        self.assertCacheMatches(self.r, want)
        mark = a.mark()
        a.send_signal(signal.SIGCONT)
        a.wait_event("lease_lost", timeout=TTL + 5, since=mark)
        return a, b, want

    def test_resumed_holder_sends_nothing_it_had_queued(self):
        """Paused with its second batch queued and about to be sent, past
        the ttl, while the other publishes newer data; verify_interval
        1 h, so that no pass can hide a stray write.  Resumed, it drops the
        batch at the gate: the cache stays the new holder's, key for key."""
        want = expected(v2(self.cat))
        a = self.daemon(self.holder_config("1h"), name="a")
        a.env["PCD_TEST_STOP_AT"] = "publish:2"
        a.start()
        deadline = time.monotonic() + 60
        while process_state(a.proc.pid) != "T":
            self.assertTrue(a.running, "a exited instead of stopping")
            self.assertLess(time.monotonic(), deadline, "a never stopped at the hook")
            time.sleep(0.02)
        self.fake.set_catalogue(v2(self.cat))
        b = self.daemon(self.holder_config("1h"), name="b").start()
        b.wait_event("lease_acquired", timeout=TTL + 10)
        b.wait_event("refresh_succeeded", timeout=60)
        self.assertCacheMatches(self.r, want)
        mark = a.mark()
        a.send_signal(signal.SIGCONT)
        # The hook holds the batch up to 10 s, then asks the gate.
        a.wait_event("write_stopped", timeout=20, since=mark)
        a.wait_event("lease_lost", timeout=TTL + 5, since=mark)
        time.sleep(1)
        self.assertCacheMatches(self.r, want)
        self.assertEqual(a.stop(), 0)
        self.assertEqual(b.stop(), 0)

    def test_paused_while_sending_within_a_verify_interval(self):
        """SIGSTOP while a batch is being sent, verify_interval 1 h: once
        resumed, it sends at most what was on its way (the rest of that
        one batch), never a later one."""
        a, b, want = self.run_pause("1h")
        time.sleep(1.5)
        bad = self.r.compare(want)
        self.assertLessEqual(len(bad), 256, bad[:5])
        self.assertEqual(a.stop(), 0)
        self.assertEqual(b.stop(), 0)

    def test_cache_equals_newest_publish_within_a_verify_interval(self):
        """The same with verify_interval 2 s: whatever was on its way when
        it was paused, within one verify interval of the resume the cache
        is the newest publish (the holder's verify rewrites what differs)."""
        a, b, want = self.run_pause("2s")
        deadline = time.monotonic() + 2 + 3
        while self.r.compare(want, limit=1) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertCacheMatches(self.r, want)
        self.assertEqual(a.stop(), 0)
        self.assertEqual(b.stop(), 0)
