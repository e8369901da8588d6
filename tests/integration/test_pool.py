"""The worker pool ([daemon] workers): details parsed on threads give the
cache exactly what parsing on the event loop gives, including the details
that fail, are malformed or are refused, and the records a second refresh
reuses or keeps; the loop answers /healthz while a refresh is parsing and
while a verify pass meets a stopped memcached; a stop in the middle of a
refresh (jobs queued and running) ends cleanly.

Timings are not asserted here: bench/run.py measures them (BENCH.md)."""

import copy
import http.client
import signal
import threading
import time

from tests.support import catalog
from tests.support.harness import PcdTestCase

DOMAIN = "lms.example.com"


def healthz(address, timeout=5):
    """(status, seconds) of one GET /healthz."""
    host, port = address.rsplit(":", 1)
    t0 = time.monotonic()
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        return r.status, time.monotonic() - t0
    finally:
        c.close()


class Sampler:
    """GET /healthz every 50 ms on a thread until stop(); the answers."""

    def __init__(self, address):
        self.address = address
        self.answers = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.answers.append(healthz(self.address))
            except OSError as e:
                self.answers.append((str(e), None))
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self._t.join(10)
        return self.answers


class Workers(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.cat = catalog.generate(60, seed=5)
        # A detail with its own pathway_ids: the record keeps its tree,
        # which must not come from the parse's arena (jarena.h).
        self.cat["programs"][self.cat["uuids"][8]]["pathway_ids"] = [12345]
        self.fake = self.start_fake(copy.deepcopy(self.cat))
        self.uuids = self.cat["uuids"]

    def sequence(self, workers):
        """Two --once runs with this many workers into a fresh memcached:
        the first with a malformed, a non-JSON and a refused detail, the
        second with one program changed and one that now fails (kept).
        Every key and value afterwards, and the events of both runs."""
        mc = self.start_memcached()
        d = self.daemon(self.config(self.fake, [mc], [(DOMAIN, 1, "")],
                                    daemon={"workers": workers}),
                        name="w%d" % workers)
        u = self.uuids
        self.fake.set_catalogue(copy.deepcopy(self.cat))
        self.fake.clear_faults()
        self.fake.set_fault(self.fake.program_path(u[1]), "malformed")
        self.fake.set_fault(self.fake.program_path(u[2]), "content_type")
        other = copy.deepcopy(self.cat["programs"][u[4]])
        self.fake.set_fault(self.fake.program_path(u[3]), "body", body=other)
        rc1, ev1, err1 = d.run_once()
        self.assertNotEqual(rc1, 0, "a partial refresh is not a success")
        cat2 = copy.deepcopy(self.cat)
        cat2["programs"][u[5]]["title"] = "A title changed upstream"
        self.fake.set_catalogue(cat2)
        self.fake.clear_faults()
        self.fake.set_fault(self.fake.program_path(u[6]), "status", status=500)
        rc2, ev2, err2 = d.run_once()
        dump = {k: mc.get(k) for k in mc.dump_keys()}
        names = [sorted((e["event"], e.get("uuid") or e.get("url") or "")
                        for e in ev if e.get("event") in ("program_rejected",
                                                          "refresh_failed"))
                 for ev in (ev1, ev2)]
        return dump, names, (rc1, rc2)

    def test_threads_write_what_the_loop_writes(self):
        """workers = 0 and workers = 4: the same keys, the same bytes, the
        same failures logged, the same exit codes."""
        loop = self.sequence(0)
        pool = self.sequence(4)
        self.assertGreater(len(loop[0]), 100)
        self.assertEqual(sorted(loop[0]), sorted(pool[0]))
        diff = [k for k in loop[0] if loop[0][k] != pool[0][k]]
        self.assertEqual(diff, [], "values differ between workers 0 and 4")
        self.assertEqual(loop[1], pool[1])
        self.assertEqual(loop[2], pool[2])
        rejected = [n for n in pool[1][0] if n[0] == "program_rejected"]
        self.assertEqual(len(rejected), 1, pool[1][0])
        # The kept program's value is the first run's; the changed one is new.
        self.assertTrue(any(b"A title changed upstream" in v[1]
                            for v in pool[0].values()))
        # The program with its own pathway_ids is there (its tree was kept).
        uuid8 = self.uuids[8].encode()
        self.assertTrue(any(uuid8 in k.encode() if isinstance(k, str) else uuid8 in k
                            for k in pool[0]))

    def test_healthz_answers_while_parsing(self):
        """The loop serves /healthz during a refresh of 1,500 programs
        parsed on workers (every sample answers 200; the latency is
        bench/run.py's)."""
        big = catalog.generate(1500, seed=9, target_bytes=20000)
        self.fake.set_catalogue(big)
        mc = self.start_memcached(memory_mb=256)
        d = self.daemon(self.config(self.fake, [mc], [(DOMAIN, 1, "")],
                                    daemon={"workers": 2, "listen": "127.0.0.1:0",
                                            "refresh_interval": "1h"}))
        d.start()
        addr = d.wait_event("listening", timeout=10)["address"]
        s = Sampler(addr)
        d.wait_event("refresh_succeeded", timeout=120)
        answers = s.stop()
        self.assertGreater(len(answers), 0)
        self.assertEqual([a for a in answers if a[0] != 200], [])

    def test_healthz_answers_with_a_stopped_memcached(self):
        """One of two memcached servers stopped (SIGSTOP): checks and
        verify passes meet it, and /healthz still answers every sample."""
        mc1 = self.start_memcached()
        mc2 = self.start_memcached()
        d = self.daemon(self.config(self.fake, [mc1, mc2], [(DOMAIN, 1, "")],
                                    daemon={"listen": "127.0.0.1:0",
                                            "refresh_interval": "1h",
                                            "check_interval": "300ms",
                                            "verify_interval": "300ms"}))
        d.start()
        addr = d.wait_event("listening", timeout=10)["address"]
        d.wait_event("refresh_succeeded", timeout=30)
        mark = d.mark()
        mc2.proc.send_signal(signal.SIGSTOP)
        try:
            s = Sampler(addr)
            d.wait_event("memcached_error", timeout=10, since=mark)
            d.wait_events("cache_verified", 2, timeout=10, since=mark)
            answers = s.stop()
        finally:
            mc2.proc.send_signal(signal.SIGCONT)
        self.assertGreater(len(answers), 0)
        self.assertEqual([a for a in answers if a[0] != 200], [])
        # It comes back, and the monitor says so.
        d.wait_event("memcached_recovered", timeout=10, since=mark)

    def test_stop_in_the_middle_of_parsing(self):
        """SIGTERM while details are queued for the workers: a clean exit
        (under ASan: nothing leaked, nothing used after it was freed)."""
        big = catalog.generate(800, seed=3, target_bytes=20000)
        self.fake.set_catalogue(big)
        mc = self.start_memcached(memory_mb=128)
        d = self.daemon(self.config(self.fake, [mc], [(DOMAIN, 1, "")],
                                    discovery={"max_in_flight": 32},
                                    daemon={"workers": 2, "refresh_interval": "1h"}))
        d.start()
        self.fake.wait_requests(lambda r: r.kind == "program", count=100, timeout=30)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(d.events_named("refresh_succeeded"), [])
