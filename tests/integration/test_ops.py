"""Operations: what systemd, journald and a Prometheus scraper see.

sd_notify messages are read from a datagram socket standing in for
$NOTIFY_SOCKET (path and abstract forms), journald entries from one standing
in for /run/systemd/journal/socket, and the HTTP listener is spoken to over
real HTTP; /metrics is read with prometheus_client's own text parser.
"""

import http.client
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support import catalog
from tests.support.harness import JournalSocket, PcdTestCase, daemon_binary, free_port

SITE = "lms.example.com"


def http_get(address, path, method="GET", timeout=5):
    """(status, headers dict with lower-case names, body text)."""
    host, port = address.rsplit(":", 1)
    c = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        body = r.read().decode("utf-8")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


def scrape(address):
    """/metrics parsed by prometheus_client: {(name, labels tuple): value},
    and the families by name."""
    status, headers, body = http_get(address, "/metrics")
    assert status == 200, (status, body)
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    samples, families = {}, {}
    for fam in text_string_to_metric_families(body):
        families[fam.name] = fam
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, families


def wait_until(fn, timeout=15.0, what="condition"):
    """Poll fn() until it returns a true value; return it."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("%s not met within %.1fs (last: %r)" % (what, timeout, v))
        time.sleep(0.05)


def mono_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class OpsCase(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(12, seed=21)
        self.fake = self.start_fake(self.cat)

    def make(self, notify=False, env=None, discovery=None, daemon=None, memcacheds=None,
             binary=None):
        cfg = {"refresh_interval": "1h"}
        cfg.update(daemon or {})
        return self.daemon(self.config(self.fake, memcacheds or [self.mc], [(SITE, 1, "")],
                                       discovery=discovery, daemon=cfg),
                           notify=notify, env=env, binary=binary)


class Notify(OpsCase):

    def test_ready_status_reload_and_stop(self):
        """READY=1 once the daemon runs, after a STATUS= that says nothing
        is published yet; STATUS= then says how the refresh went; SIGHUP
        is RELOADING=1 with MONOTONIC_USEC, then READY=1; SIGTERM is
        STOPPING=1."""
        d = self.make(notify=True).start()
        ok = d.wait_event("refresh_succeeded", timeout=20)
        n = d.notify
        i_ready, _ = n.wait_message("READY=1")
        self.assertEqual(n.count("READY=1"), 1)
        self.assertEqual(n.lines(0)[:2], ["STATUS=not ready: nothing published yet: the "
                                          "first refresh is running", "READY=1"])
        status = n.wait("STATUS=last refresh", since=i_ready, prefix=True)
        self.assertRegex(status, r"^STATUS=last refresh ok, %d programs; last success "
                                 r"\d+s ago$" % ok["programs"])

        before = mono_usec()
        mark = len(n.messages)
        d.send_signal(signal.SIGHUP)
        i_rel, msg = n.wait_message("RELOADING=1", since=mark)
        after = mono_usec()
        fields = dict(line.split("=", 1) for line in msg.split("\n"))
        self.assertEqual(fields["RELOADING"], "1")
        self.assertTrue(before <= int(fields["MONOTONIC_USEC"]) <= after,
                        (before, fields, after))
        n.wait("READY=1", since=i_rel + 1)
        d.wait_events("refresh_succeeded", 2, timeout=20)

        mark = len(n.messages)
        self.assertEqual(d.stop(), 0)
        n.wait("STOPPING=1", since=mark)

    def test_abstract_socket(self):
        """NOTIFY_SOCKET=@name (an abstract socket) reaches the exact name,
        not one padded with NULs."""
        name = "@pcd-test-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
        d = self.make(notify=name).start()
        self.assertTrue(d.notify.path.startswith("@"))
        d.wait_event("refresh_succeeded", timeout=20)
        d.notify.wait("READY=1")
        self.assertEqual(d.stop(), 0)

    def test_ready_while_the_first_refresh_is_held_up(self):
        """While the first refresh is held up, READY=1 is said (systemd
        252 would merge a reload into a start job still running) and
        STATUS= says nothing is published yet; a SIGHUP is a reload
        (RELOADING=1, READY=1), its refresh queued behind the first."""
        hang = self.fake.set_fault(self.fake.program_path(self.cat["uuids"][2]), kind="hang", times=1)
        d = self.make(notify=True).start()
        self.fake.wait_requests(lambda r: r.uuid == self.cat["uuids"][2], timeout=10)
        d.notify.wait("READY=1")
        d.notify.wait("STATUS=not ready: nothing published yet: the first refresh is running")
        mark = len(d.notify.messages)
        d.send_signal(signal.SIGHUP)
        d.wait_event("config_loaded", predicate=lambda e: "version" not in e)
        i_rel, _ = d.notify.wait_message("RELOADING=1", since=mark)
        d.notify.wait("READY=1", since=i_rel + 1)
        self.assertEqual(d.events_named("refresh_succeeded"), [])
        hang.release()
        d.wait_events("refresh_succeeded", 2, timeout=30)
        self.assertEqual(d.stop(), 0)

    def test_failed_first_refresh_is_not_ready(self):
        """A first refresh that publishes nothing: the daemon runs (READY=1
        once, at the start), and STATUS= says why it is not ready."""
        self.fake.set_fault(self.fake.uuids_path(), kind="status", status=403)
        d = self.make(notify=True, discovery={"retries": 0}).start()
        d.wait_event("refresh_incomplete")
        status = d.notify.wait("STATUS=last refresh", prefix=True)
        self.assertIn("last refresh failed, 0 programs; last success never", status)
        self.assertIn("not ready: nothing published yet", status)
        self.assertEqual(d.notify.count("READY=1"), 1)
        self.assertEqual(d.stop(), 0)

    def test_watchdog_pings_at_half_the_interval(self):
        """WATCHDOG_USEC=600000: WATCHDOG=1 about every 300 ms, from the
        loop, from the start (before anything is published)."""
        d = self.make(notify=True, env={"WATCHDOG_USEC": "600000"}).start()
        ev = d.wait_event("watchdog_enabled")
        self.assertEqual((ev["interval_ms"], ev["ping_ms"]), (600, 300))
        wait_until(lambda: d.notify.count("WATCHDOG=1") >= 4, what="4 pings")
        self.assertEqual(d.stop(), 0)

    def test_watchdog_pid_decides_who_pings(self):
        """WATCHDOG_PID naming another process: no pings; naming this one
        (set by a shell that then execs the daemon): pings."""
        d = self.make(notify=True, env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
        d.start()
        d.wait_event("refresh_succeeded", timeout=20)
        d.notify.wait("READY=1")
        time.sleep(0.6)  # three ping intervals
        self.assertEqual(d.notify.count("WATCHDOG=1"), 0)
        self.assertEqual(d.events_named("watchdog_enabled"), [])
        self.assertEqual(d.stop(), 0)
        d.close()

        wrapper = ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" "$@"',
                   d.binary]
        d2 = self.make(notify=True, env={"WATCHDOG_USEC": "200000"}, binary=wrapper).start()
        d2.wait_event("watchdog_enabled")
        wait_until(lambda: d2.notify.count("WATCHDOG=1") >= 3, what="3 pings")
        self.assertEqual(d2.stop(), 0)

    def test_bad_watchdog_usec_and_unreachable_socket_are_logged_once(self):
        """A malformed WATCHDOG_USEC is reported and ignored; a NOTIFY_SOCKET
        nobody listens on is reported once, and the daemon works on."""
        missing = os.path.join(self.tmpdir, "nobody-here.sock")
        d = self.make(env={"NOTIFY_SOCKET": missing, "WATCHDOG_USEC": "soon"}).start()
        d.wait_event("refresh_succeeded", timeout=20)
        d.send_signal(signal.SIGHUP)
        d.wait_events("refresh_succeeded", 2, timeout=20)
        fails = d.events_named("notify_failed")
        self.assertEqual(len([e for e in fails if "WATCHDOG_USEC" in e["error"]]), 1)
        sock = [e for e in fails if e.get("socket") == missing]
        self.assertEqual(len(sock), 1, fails)
        self.assertIn("No such file", sock[0]["error"])
        self.assertEqual(d.stop(), 0)


class Journal(OpsCase):

    def run_with_stderr(self, d, stream_matches):
        """Run --once with stderr on a file and JOURNAL_STREAM naming that
        file (or not); (returncode, stderr text)."""
        err_path = os.path.join(self.tmpdir, "stderr")
        with open(err_path, "w+b") as err:
            st = os.fstat(err.fileno())
            d.env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino + (0 if stream_matches else 1))
            p = subprocess.run(d.argv("--once"), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=err, env=d._environ(),
                               timeout=60)
            err.seek(0)
            return p.returncode, err.read().decode("utf-8")

    def setUp(self):
        super().setUp()
        self.journal = JournalSocket(os.path.join(self.tmpdir, "journal.sock"))
        self.addCleanup(self.journal.close)
        # Two sites: one whose UUID list fails, one fine; and a second
        # memcached server that is not there.
        self.fake.set_catalogue(catalog.generate(3, seed=2), prefix="/broken")
        self.fake.set_fault(self.fake.uuids_path("/broken"), kind="status", status=500)
        self.dead = "127.0.0.1:%d" % free_port()
        sections = self.config(self.fake, [self.mc, self.dead],
                               [(SITE, 1, ""), ("broken.example.com", 2, "/broken")],
                               discovery={"retries": 0},
                               daemon={"log_format": "auto"},
                               memcached={"connect_timeout": "200ms"})
        self.d = self.daemon(sections, env={"PCD_JOURNAL_SOCKET": self.journal.path})

    def test_auto_sends_native_fields_when_stderr_is_the_journal(self):
        """log_format = auto with JOURNAL_STREAM = stderr's dev:ino: every
        event is a native journald entry (EVENT, SITE, SERVER, PRIORITY,
        MESSAGE, ...), and nothing goes to stderr."""
        rc, err = self.run_with_stderr(self.d, True)
        self.assertEqual(rc, 1)
        self.assertEqual(err, "")
        wait_until(lambda: self.journal.named("shutdown"), what="shutdown entry")
        for e in self.journal.entries:
            self.assertEqual(e["SYSLOG_IDENTIFIER"], "programs-cached")
            self.assertTrue(e["MESSAGE"].startswith(e["EVENT"]), e)
            self.assertIn(e["PRIORITY"], [str(p) for p in range(8)])
        started = self.journal.named("refresh_started")
        self.assertEqual(started[0]["PRIORITY"], "6")
        failed = [e for e in self.journal.named("refresh_failed") if e.get("STAGE") == "uuids"]
        self.assertEqual(len(failed), 1, self.journal.entries)
        f = failed[0]
        self.assertEqual((f["PRIORITY"], f["SITE"], f["HTTP_STATUS"]),
                         ("3", "broken.example.com", "500"))
        self.assertIn("/broken/api/v1/programs/?", f["URL"])
        self.assertIn("site=broken.example.com", f["MESSAGE"])
        mc_err = self.journal.named("memcached_error")
        self.assertTrue(mc_err, self.journal.entries)
        self.assertEqual(mc_err[0]["SERVER"], self.dead)
        self.assertEqual(mc_err[0]["PRIORITY"], "3")
        # A fixed MESSAGE_ID per event name, as programs-cached(8) lists.
        for e in self.journal.entries:
            want = hashlib.blake2b(("programs-cached:" + e["EVENT"]).encode(),
                                   digest_size=16).hexdigest()
            self.assertEqual(e["MESSAGE_ID"], want)
        # Every event of the refresh carries its refresh_id; the shutdown
        # status does not pose as systemd's EXIT_CODE.
        rid = started[0]["REFRESH_ID"]
        self.assertRegex(rid, r"^[0-9a-f]{8}$")
        self.assertEqual(f["REFRESH_ID"], rid)
        shutdown = self.journal.named("shutdown")[0]
        self.assertNotIn("EXIT_CODE", shutdown)
        self.assertNotIn("REFRESH_ID", shutdown)
        self.assertEqual(shutdown["STATUS"], "1")

    def test_journal_socket_gone_falls_back_to_prefixed_stderr(self):
        """If the journal socket cannot be reached, each event still reaches
        the journal through stderr, with the "<N>" priority prefix journald
        reads (SyslogLevelPrefix=)."""
        self.d.env["PCD_JOURNAL_SOCKET"] = os.path.join(self.tmpdir, "no-journal.sock")
        rc, err = self.run_with_stderr(self.d, True)
        self.assertEqual(rc, 1)
        lines = err.splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[0-7]>[a-z_]+( |$)")
        self.assertTrue(any(l.startswith("<6>refresh_started ") for l in lines), err)
        self.assertTrue(any(l.startswith("<3>refresh_failed site=broken.example.com stage=uuids")
                            for l in lines), err)

    def test_auto_writes_json_when_the_stream_is_not_stderr(self):
        """A JOURNAL_STREAM that names some other file (inherited from a
        parent) is not trusted: JSON lines on stderr, nothing to journald."""
        rc, err = self.run_with_stderr(self.d, False)
        self.assertEqual(rc, 1)
        self.assertIn('"event":"refresh_failed"', err)
        time.sleep(0.2)
        self.assertEqual(self.journal.entries, [])


class Http(OpsCase):

    def start(self, **kw):
        daemon = {"listen": "127.0.0.1:0"}
        daemon.update(kw.pop("daemon", {}))
        d = self.make(daemon=daemon, **kw).start()
        ev = d.wait_event("listening")
        self.assertRegex(ev["address"], r"^127\.0\.0\.1:\d+$")
        self.assertNotEqual(ev["address"], "127.0.0.1:0")
        return d, ev["address"]

    def test_off_unless_listen_is_set(self):
        d = self.make().start()
        d.wait_event("refresh_succeeded", timeout=20)
        self.assertEqual(d.events_named("listening"), [])
        self.assertEqual(d.stop(), 0)

    def test_metrics_healthz_readyz_through_a_refresh(self):
        """Before the first publish: healthy, not ready.  After: ready, and
        /metrics (valid Prometheus text) counts what happened; a SIGHUP
        refresh moves the counters."""
        hang = self.fake.set_fault(self.fake.program_path(self.cat["uuids"][0]), kind="hang", times=1)
        d, addr = self.start()
        self.fake.wait_requests(lambda r: r.uuid == self.cat["uuids"][0], timeout=10)
        self.assertEqual(http_get(addr, "/healthz")[::2], (200, "ok\n"))
        status, _, body = http_get(addr, "/readyz")
        self.assertEqual((status, body), (503, "nothing published yet: the first refresh "
                                               "is running\n"))
        m, fams = scrape(addr)
        self.assertEqual(m[("programs_cached_ready", ())], 0)
        self.assertEqual(m[("programs_cached_refreshes_total", (("outcome", "ok"),))], 0)
        self.assertEqual(fams["programs_cached_refreshes"].type, "counter")

        hang.release()
        ok = d.wait_event("refresh_succeeded", timeout=30)
        self.assertEqual(http_get(addr, "/readyz")[::2], (200, "ready\n"))
        m, fams = scrape(addr)
        self.assertEqual(m[("programs_cached_ready", ())], 1)
        self.assertEqual(m[("programs_cached_memcached_up", (("server", self.mc.address),))], 1)
        self.assertEqual(fams["programs_cached_memcached_up"].type, "gauge")
        self.assertEqual(m[("programs_cached_refreshes_total", (("outcome", "ok"),))], 1)
        self.assertEqual(m[("programs_cached_programs", ())], ok["programs"])
        keys = sum(v for (name, _), v in m.items() if name == "programs_cached_keys")
        self.assertEqual(keys, ok["keys_written"])
        self.assertEqual(m[("programs_cached_memcached_sets_total", ())], ok["keys_written"])
        self.assertGreater(m[("programs_cached_last_success_timestamp_seconds", ())],
                           time.time() - 60)
        self.assertGreater(m[("programs_cached_http_responses_total", (("class", "2xx"),))], 0)
        dur = "programs_cached_discovery_request_duration_seconds"
        self.assertEqual(fams[dur].type, "histogram")
        self.assertEqual(m[(dur + "_count", (("endpoint", "detail"),))], len(self.cat["uuids"]))
        self.assertEqual(m[(dur + "_count", (("endpoint", "uuids"),))], 1)
        self.assertEqual(m[(dur + "_bucket", (("endpoint", "detail"), ("le", "+Inf")))],
                         len(self.cat["uuids"]))

        d.send_signal(signal.SIGHUP)
        d.wait_events("refresh_succeeded", 2, timeout=30)
        m2, _ = scrape(addr)
        self.assertEqual(m2[("programs_cached_refreshes_total", (("outcome", "ok"),))], 2)
        self.assertEqual(m2[("programs_cached_refresh_duration_seconds_count", ())], 2)
        self.assertEqual(m2[("programs_cached_keys_skipped_total", ())], ok["keys_written"])
        self.assertEqual(m2[("programs_cached_memcached_sets_total", ())], ok["keys_written"])
        self.assertEqual(d.stop(), 0)

    def test_per_site_metrics_and_failures_by_stage(self):
        """Per site: its programs and its last whole success; failures by
        site and stage.  A refresh where every configured site failed is
        "failed", even beside an unconfigured site's [] lists."""
        self.fake.set_catalogue(catalog.generate(5, seed=22), prefix="/b")
        cfg = self.config(self.fake, [self.mc], [(SITE, 1, ""), ("b.example.com", 2, "/b"),
                                                 ("z.example.com", 3, None)],
                          daemon={"refresh_interval": "1h", "listen": "127.0.0.1:0"})
        d = self.daemon(cfg).start()
        addr = d.wait_event("listening")["address"]
        d.wait_event("refresh_succeeded", timeout=20)
        m, fams = scrape(addr)
        self.assertEqual(m[("programs_cached_site_programs", (("site", SITE),))], 12)
        self.assertEqual(m[("programs_cached_site_programs", (("site", "b.example.com"),))], 5)
        self.assertNotIn(("programs_cached_site_programs", (("site", "z.example.com"),)), m)
        self.assertGreater(m[("programs_cached_site_last_success_timestamp_seconds",
                              (("site", "b.example.com"),))], time.time() - 60)
        self.assertEqual(fams["programs_cached_refresh_failures"].type, "counter")

        # b's list fails: its failure is counted under its stage, the
        # refresh is partial, and b's last success does not move.
        before = m[("programs_cached_site_last_success_timestamp_seconds",
                    (("site", "b.example.com"),))]
        self.fake.set_fault(self.fake.uuids_path("/b"), kind="status", status=404)
        d.send_signal(signal.SIGHUP)
        d.wait_event("refresh_incomplete", timeout=30)
        m, _ = scrape(addr)
        self.assertEqual(m[("programs_cached_refresh_failures_total",
                            (("site", "b.example.com"), ("stage", "uuids")))], 1)
        self.assertEqual(m[("programs_cached_refreshes_total", (("outcome", "partial"),))], 1)
        self.assertEqual(m[("programs_cached_site_last_success_timestamp_seconds",
                            (("site", "b.example.com"),))], before)
        self.assertEqual(m[("programs_cached_site_programs", (("site", "b.example.com"),))], 5)

        # Every configured site fails: "failed", not "partial".
        self.fake.set_fault(self.fake.uuids_path(), kind="status", status=404)
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        ev = d.wait_event("refresh_incomplete", timeout=30, since=mark)
        self.assertEqual(ev["outcome"], "failed")
        m, _ = scrape(addr)
        self.assertEqual(m[("programs_cached_refreshes_total", (("outcome", "failed"),))], 1)
        self.assertEqual(d.stop(), 0)

    def test_build_info_start_time_and_seconds_precision(self):
        """build_info names the version and the revision the Makefile
        recorded; process_start_time_seconds is when this process started;
        timestamps and durations print to the millisecond at most, and the
        whole page passes promtool when Debian's prometheus is installed."""
        before = time.time()
        d, addr = self.start()
        after = time.time()
        d.wait_event("refresh_succeeded", timeout=20)
        d.send_signal(signal.SIGHUP)
        d.wait_events("refresh_succeeded", 2, timeout=30)
        m, fams = scrape(addr)
        version = subprocess.run([daemon_binary(), "--version"], capture_output=True,
                                 text=True, check=True).stdout.split()[1]
        stamp = Path(daemon_binary()).parent / "revision"
        revision = stamp.read_text().strip() if stamp.exists() else None
        info = [labels for (name, labels), v in m.items()
                if name == "programs_cached_build_info" and v == 1]
        self.assertEqual(len(info), 1, m)
        labels = dict(info[0])
        self.assertEqual(labels["version"], version)
        self.assertRegex(labels["revision"], r"^(unknown|[0-9a-zA-Z._-]+)$")
        if revision is not None:
            self.assertEqual(labels["revision"], revision)
        self.assertEqual(fams["programs_cached_build_info"].type, "gauge")
        start = m[("process_start_time_seconds", ())]
        self.assertGreaterEqual(start, before - 1)
        self.assertLessEqual(start, after + 1)
        self.assertEqual(fams["process_start_time_seconds"].type, "gauge")

        body = http_get(addr, "/metrics")[2]
        timed = [line for line in body.splitlines()
                 if not line.startswith("#") and line.split("{")[0].split()[0].endswith(
                     ("_seconds", "_seconds_sum"))]
        self.assertGreaterEqual(len(timed), 4, body)
        for line in timed:
            self.assertRegex(line.rsplit(" ", 1)[1], r"^\d+(\.\d{1,3})?$", line)
        for line in body.splitlines():
            if not line.startswith("#"):
                self.assertNotRegex(line.rsplit(" ", 1)[1], r"\d{16}", line)
        promtool = shutil.which("promtool")
        if promtool:
            r = subprocess.run([promtool, "check", "metrics"], input=body,
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(d.stop(), 0)

    def test_methods_paths_and_head(self):
        d, addr = self.start()
        d.wait_event("refresh_succeeded", timeout=20)
        status, headers, body = http_get(addr, "/metrics", method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET, HEAD")
        self.assertEqual(http_get(addr, "/nope")[0], 404)
        self.assertEqual(http_get(addr, "/metrics?x=1")[0], 200)
        for path in ("/metrics", "/readyz", "/healthz"):
            get = http_get(addr, path)
            head = http_get(addr, path, method="HEAD")
            self.assertEqual(head[0], get[0])
            self.assertEqual(head[2], "")
            self.assertEqual(int(head[1]["content-length"]), len(get[2].encode()))
        self.assertEqual(d.stop(), 0)

    def test_readyz_follows_memcached(self):
        """A server that fails a write makes /readyz 503 naming it, and
        memcached_up 0; once it is back and written to, ready again."""
        d, addr = self.start()
        d.wait_event("refresh_succeeded", timeout=20)
        self.mc.kill9()
        self.fake.set_catalogue(catalog.generate(12, seed=22))
        d.send_signal(signal.SIGHUP)
        d.wait_event("refresh_incomplete")
        status, _, body = http_get(addr, "/readyz")
        self.assertEqual(status, 503)
        # The cause follows the server, in parentheses.
        self.assertRegex(body, r"^memcached unreachable: %s \(.+\)\n$" % re.escape(self.mc.address))
        m, _ = scrape(addr)
        self.assertEqual(m[("programs_cached_memcached_up", (("server", self.mc.address),))], 0)
        self.assertEqual(m[("programs_cached_ready", ())], 0)
        # Errors by server, beside the total.
        self.assertGreaterEqual(m[("programs_cached_cache_errors_total",
                                   (("server", self.mc.address),))], 1)

        self.mc.start()

        def refreshed_and_ready():
            mark = d.mark()
            d.send_signal(signal.SIGHUP)
            wait_until(lambda: d.events_named("refresh_succeeded", mark) or
                       d.events_named("refresh_failed", mark), what="a refresh")
            return http_get(addr, "/readyz")[0] == 200
        wait_until(refreshed_and_ready, timeout=30, what="ready after memcached came back")
        self.assertEqual(d.stop(), 0)

    def test_readyz_goes_stale_after_three_intervals(self):
        """Refreshes that keep failing leave the cache as it was: after 3
        refresh intervals without a publish /readyz says so."""
        d, addr = self.start(daemon={"refresh_interval": "1s"}, discovery={"retries": 0})
        d.wait_event("refresh_succeeded", timeout=20)
        self.fake.set_fault(self.fake.uuids_path(), kind="status", status=500)
        status, _, body = wait_until(lambda: (lambda r: r if r[0] == 503 else None)(
            http_get(addr, "/readyz")), timeout=20, what="/readyz 503")
        self.assertRegex(body, r"^last publish \d+s ago, more than 3 refresh intervals "
                               r"\(3s\)\n$")
        self.assertGreater(len(d.events_named("refresh_failed")), 0)
        self.assertEqual(d.stop(), 0)

    def test_listen_failure_stops_start_up(self):
        """An address already taken is a start-up failure: listen_failed
        names the reason, exit 1."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            d = self.make(daemon={"listen": "127.0.0.1:%d" % port})
            d.start()
            self.assertEqual(d.wait_exit(10), 1)
        ev = d.events_named("listen_failed")
        self.assertEqual(len(ev), 1)
        self.assertEqual(ev[0]["port"], port)
        self.assertIn("Address already in use", ev[0]["error"])
        self.assertEqual(d.events_named("refresh_started"), [])

    def test_reload_moves_the_listener(self):
        d, addr = self.start()
        d.wait_event("refresh_succeeded", timeout=20)
        port = free_port()
        d.sections["daemon"]["listen"] = str(port)  # a bare port: loopback
        d.write_config()
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        ev = d.wait_event("listening", since=mark)
        self.assertEqual(ev["address"], "127.0.0.1:%d" % port)
        self.assertEqual(http_get(ev["address"], "/healthz")[0], 200)
        with self.assertRaises(ConnectionRefusedError):
            http_get(addr, "/healthz")
        self.assertEqual(d.stop(), 0)

    def test_listen_values(self):
        """listen is checked with the rest of the configuration."""
        cases = [("127.0.0.1:9640", 0), ("9640", 0), ("[::1]:0", 0), ("localhost:80", 0),
                 ("", 0), ("::1:80", 2), ("127.0.0.1:", 2), ("127.0.0.1:http", 2),
                 ("127.0.0.1:70000", 2), (":80", 2), ("[::1]80", 2)]
        for value, want in cases:
            with self.subTest(listen=value):
                d = self.make(daemon={"listen": value})
                r = d.run("--check-config")
                self.assertEqual(r.returncode, want, r.stderr)
                if want:
                    err = r.named("config_error")[0]
                    self.assertEqual(err["key"], "listen")
                    self.assertIn("bad address", err["error"])
