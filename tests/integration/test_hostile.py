"""Hostile input and local attackers (docs/design.md, Security): a scriptable hostile
Discovery on loopback, a local client hammering the listener, planted files
under state_dir.  Each test fails against the code before its fix."""

import json
import os
import resource
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support import catalog, reference
from tests.support.harness import PcdTestCase

SITE = "lms.example.com"


class Thief:
    """An HTTP server on another port that records what reaches it."""

    def __init__(self):
        self.seen = []
        thief = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                thief.seen.append((self.path, dict(self.headers)))
                body = b'["00000000-0000-4000-8000-000000000000"]'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def expected(cat):
    return reference.expected_cache([{"domain": SITE, "site_id": 1, "catalogue": cat}])


class Hostile(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(6, seed=5)

    def fake(self, **kw):
        self.fake_ = self.start_fake(self.cat, **kw)
        return self.fake_

    def once(self, discovery=None, daemon=None, sites=None, *args):
        sites = sites or [(SITE, 1, "")]
        d = self.daemon(self.config(self.fake_, [self.mc], sites,
                                    discovery=discovery, daemon=daemon))
        return d, d.run_once(*args)

    def thief(self):
        t = Thief()
        self.addCleanup(t.close)
        return t

    def envelope(self, nxt):
        return {"count": len(self.cat["uuids"]) + 1, "next": nxt,
                "previous": None, "results": self.cat["uuids"]}

    # -- 1. next links and redirects -------------------------------------------

    def test_next_on_another_origin_is_not_followed(self):
        """A UUID page whose next names another port, scheme or host: the
        token never goes there, the site is not written, the run fails."""
        fake = self.fake(require_auth=True)
        thief = self.thief()
        port = fake.port
        for nxt in ("http://127.0.0.1:%d/steal" % thief.port,
                    "https://127.0.0.1:%d/api/v1/programs/?page=2" % port,
                    "http://localhost:%d/api/v1/programs/?page=2" % port,
                    "/api/v1/programs/?page=2",
                    "http://u:p@127.0.0.1:%d/api/v1/programs/?page=2" % port):
            with self.subTest(next=nxt):
                fake.clear_faults()
                thief.seen.clear()
                fake.set_fault(fake.uuids_path(), "body", body=self.envelope(nxt))
                _, (rc, events, stderr) = self.once()
                self.assertEqual(rc, 1, stderr)
                self.assertEqual(thief.seen, [])
                bad = [e for e in events if e["event"] == "refresh_failed"
                       and e.get("stage") == "uuids"]
                self.assertEqual(len(bad), 1, stderr)
                self.assertIn("next", bad[0]["error"])
                self.assertEqual(self.mc.dump_keys(), set())

    def test_filtered_list_next_on_another_origin_is_not_followed(self):
        """The incremental refresh's filtered list follows the same rule:
        a foreign next gets no token and the site is not written."""
        fake = self.fake(require_auth=True, timestamps=True)
        thief = self.thief()
        d = self.daemon(self.config(fake, [self.mc], [(SITE, 1, "")],
                                    daemon={"refresh_interval": "1h",
                                            "incremental_interval": "1s"}))
        d.start()
        d.wait_event("refresh_succeeded", timeout=20)
        before = {k: self.mc.get(k) for k in self.mc.dump_keys()}
        steal = "http://127.0.0.1:%d/steal" % thief.port
        fake.set_fault(lambda r: r.kind == "filtered" and "2999-" not in r.target,
                       "body", body={"count": 2, "next": steal, "previous": None,
                                     "results": [{"uuid": self.cat["uuids"][0],
                                                  "data_modified_timestamp":
                                                      "2030-01-01T00:00:00Z"}]})
        mark = d.mark()
        ev = d.wait_event("refresh_failed", timeout=20, since=mark,
                          predicate=lambda e: e.get("stage") == "filtered")
        self.assertIn("next", ev["error"])
        time.sleep(1)
        self.assertEqual(thief.seen, [])
        self.assertEqual({k: self.mc.get(k) for k in self.mc.dump_keys()}, before)
        self.assertEqual(d.stop(), 0)

    def test_same_origin_next_is_followed(self):
        """The rule does not break DRF's own absolute links (default port
        spelt out or not)."""
        fake = self.fake(uuids_page_size=2)
        _, (rc, events, stderr) = self.once()
        self.assertEqual(rc, 0, stderr)
        self.assertCacheMatches(self.reader([self.mc]), expected(self.cat))

    def test_redirect_is_not_followed(self):
        """A 301 to another server: no request reaches it."""
        fake = self.fake(require_auth=True)
        thief = self.thief()
        fake.set_fault(fake.uuids_path(), "status", status=301, body={},
                       headers={"Location": "http://127.0.0.1:%d/x" % thief.port})
        _, (rc, events, stderr) = self.once()
        self.assertEqual(rc, 1, stderr)
        self.assertEqual(thief.seen, [])
        self.assertEqual(self.mc.dump_keys(), set())

    # -- 9. token lifetime -----------------------------------------------------

    def test_huge_expires_in_is_clamped(self):
        """expires_in near 2^63 must not wrap: one token serves both sites."""
        fake = self.start_fake(sites={"": self.cat, "/b": self.cat},
                               require_auth=True, token_expires_in=2 ** 63 - 1)
        self.fake_ = fake
        _, (rc, events, stderr) = self.once(
            sites=[(SITE, 1, ""), ("b.example.com", 2, "/b")])
        self.assertEqual(rc, 0, stderr)
        self.assertEqual(len(fake.requests_of("token")), 1)

    # -- 7. state_dir and the snapshot's temporary file ------------------------

    def test_planted_tmp_symlink_is_not_followed(self):
        """The daemon's temporary file (programs-cache.snapshot.PID.tmp) and
        the old shared name, planted as symlinks to a victim while the
        daemon runs: a new base is still written, the victim keeps its
        bytes, and the daemon's own name is a file of its own again."""
        fake = self.fake()
        state = Path(self.tmpdir) / "state"
        state.mkdir(mode=0o700)
        victim = Path(self.tmpdir) / "victim"
        victim.write_bytes(b"precious\n")
        d = self.daemon(self.config(fake, [self.mc], [(SITE, 1, "")],
                                    daemon={"state_dir": str(state),
                                            "refresh_interval": "1h"}))
        d.start()
        d.wait_event("snapshot_saved", timeout=30)
        own = state / ("programs-cache.snapshot.%d.tmp" % d.pid)
        own.symlink_to(victim)
        (state / "programs-cache.snapshot.tmp").symlink_to(victim)
        # The file gone: the next save cannot append, it writes a base.
        snap = state / "programs-cache.snapshot"
        snap.unlink()
        cat = json.loads(json.dumps(self.cat))
        for p in cat["programs"].values():
            p["title"] += " (v2)"
        fake.set_catalogue(cat)
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        saved = d.wait_event("snapshot_saved", timeout=30, since=mark)
        self.assertEqual(saved["kind"], "base")
        self.assertEqual(victim.read_bytes(), b"precious\n")
        self.assertTrue(snap.is_file() and not snap.is_symlink())
        self.assertFalse(os.path.lexists(own))
        self.assertEqual(d.run("--verify").returncode, 0)

    def test_state_dir_writable_by_others_is_refused(self):
        """A state_dir anyone can write to is neither written nor read."""
        self.fake()
        good = Path(self.tmpdir) / "good"
        good.mkdir(mode=0o700)
        _, (rc, _, stderr) = self.once(daemon={"state_dir": str(good)})
        self.assertEqual(rc, 0, stderr)
        for mode in (0o777, 0o770, 0o1777):
            with self.subTest(mode=oct(mode)):
                bad = Path(self.tmpdir) / ("bad%o" % mode)
                bad.mkdir()
                bad.chmod(mode)
                # A snapshot planted there is not believed ...
                (bad / "programs-cache.snapshot").write_bytes(
                    (good / "programs-cache.snapshot").read_bytes())
                d = self.daemon(self.config(self.fake_, [self.mc], [(SITE, 1, "")],
                                            daemon={"state_dir": str(bad)}),
                                name="pcd%o" % mode)
                rc, events, stderr = d.run_once()
                ign = [e for e in events if e["event"] == "snapshot_ignored"]
                self.assertEqual(len(ign), 1, stderr)
                self.assertIn("writable by group or others", ign[0]["error"])
                # ... and none is written.
                err = [e for e in events if e["event"] == "snapshot_error"]
                self.assertEqual(len(err), 1, stderr)
                self.assertEqual(err[0]["op"], "state_dir")
                self.assertIn("writable by group or others", err[0]["error"])

    # -- 3, 4. numbers ---------------------------------------------------------

    def hostile_detail(self, uuid, raw):
        """Serve raw (bytes) as the detail of uuid."""
        self.fake_.set_fault(self.fake_.program_path(uuid), "body", body=raw)

    def test_string_spelling_the_number_mark_stays_a_string(self):
        """Strings that spell the loader's old in-band mark, in any
        escaping, reach the LMS as the strings they are (pickle and
        value_format = json), never as numbers or raw JSON text."""
        spellings = ["\u0000pcd-number:12345", "\u0000pcd-number:1]}{",
                     "\u0000\u00ffpcd-number:7", "\u00ffpcd-number:7"]
        cat = json.loads(json.dumps(self.cat))
        uuids = cat["uuids"]
        for i, text in enumerate(spellings):
            cat["programs"][uuids[i]]["title"] = text
        self.cat = cat
        fake = self.fake()
        # One more, with the mark spelt with other escapes on the wire.
        u = uuids[len(spellings)]
        body = json.dumps(cat["programs"][u]).replace(
            '"title": ' + json.dumps(cat["programs"][u]["title"]),
            '"title": "\\u0000p\\u0063d-number:99"')
        cat["programs"][u]["title"] = "\u0000pcd-number:99"
        self.hostile_detail(u, body.encode())
        for fmt in ("pickle", "json"):
            with self.subTest(value_format=fmt):
                self.mc.flush()
                rc, events, stderr = self.once_fmt(fmt)
                self.assertEqual(rc, 0, stderr)
                r = self.reader([self.mc])
                exp = expected(cat)
                for i in range(len(spellings) + 1):
                    key = "program-" + uuids[i]
                    if fmt == "pickle":
                        got = r.get(key)
                    else:
                        flags, data = self.mc.get(r.make_key(key))
                        got = json.loads(data)
                    self.assertEqual(got["title"], exp[key]["title"])
                    self.assertIsInstance(got["title"], str)
                if fmt == "pickle":
                    self.assertCacheMatches(r, exp)

    def once_fmt(self, fmt):
        d = self.daemon(self.config(self.fake_, [self.mc], [(SITE, 1, "")],
                                    memcached={"value_format": fmt}),
                        name="pcd-" + fmt)
        return d.run_once()

    def test_big_numbers_still_round_trip(self):
        """Ints beyond 64 bits (up to 4300 digits) still reach the LMS as
        Python ints, in both formats, next to a string that looks like one."""
        cat = json.loads(json.dumps(self.cat))
        u = cat["uuids"][0]
        big = int("7" * 4300)
        self.assertEqual(len(str(big)), 4300)
        cat["programs"][u]["max_hours_effort_per_week"] = big
        cat["programs"][u]["min_hours_effort_per_week"] = -2 ** 80
        cat["programs"][u]["subtitle"] = "\u0000pcd-number:5"
        self.cat = cat
        self.fake()
        for fmt in ("pickle", "json"):
            with self.subTest(value_format=fmt):
                self.mc.flush()
                rc, events, stderr = self.once_fmt(fmt)
                self.assertEqual(rc, 0, stderr)
                r = self.reader([self.mc])
                key = "program-" + u
                if fmt == "pickle":
                    got = r.get(key)
                else:
                    got = json.loads(self.mc.get(r.make_key(key))[1])
                self.assertEqual(got["max_hours_effort_per_week"], big)
                self.assertEqual(got["min_hours_effort_per_week"], -2 ** 80)
                self.assertEqual(got["subtitle"], "\u0000pcd-number:5")

    def test_integer_of_more_than_4300_digits_is_refused(self):
        """A 1,000,000-digit integer is refused at once (as Python's json
        refuses it), the other programs are written, and the loop answers
        SIGTERM at once."""
        fake = self.fake()
        u = self.cat["uuids"][0]
        body = json.dumps(self.cat["programs"][u])
        body = body[:-1] + ', "huge": ' + "9" * 1000000 + "}"
        self.hostile_detail(u, body.encode())
        # 4301 digits: refused too; 4300: accepted (see above).
        u2 = self.cat["uuids"][1]
        body2 = json.dumps(self.cat["programs"][u2])[:-1] + ', "n": -' + "1" * 4301 + "}"
        self.hostile_detail(u2, body2.encode())
        t0 = time.monotonic()
        _, (rc, events, stderr) = self.once()
        took = time.monotonic() - t0
        self.assertEqual(rc, 1, stderr)
        self.assertLess(took, 20, "the refresh stalled")
        rej = [e for e in events if e["event"] in ("program_rejected", "refresh_failed")
               and "4300 digits" in e.get("error", e.get("reason", ""))]
        self.assertEqual(len(rej), 2, stderr)
        r = self.reader([self.mc])
        self.assertIsNone(r.get("program-" + u))
        self.assertIsNone(r.get("program-" + u2))
        self.assertIsNotNone(r.get("program-" + self.cat["uuids"][2]))

    # -- 5, 6. memory ----------------------------------------------------------

    def peak_rss_mb(self, d):
        """The daemon's peak resident set (VmHWM), in MiB."""
        for line in Path("/proc/%d/status" % d.pid).read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        self.fail("no VmHWM")

    def test_memory_does_not_follow_the_list_length(self):
        """30,000 UUIDs listed, details that never answer: the daemon does
        not hold a request per UUID (before: ~6.6 KB each, 200 MB here)."""
        import re
        uuids = ["%08x-0000-4000-8000-%012x" % (i, i) for i in range(30000)]
        cat = {"uuids": uuids, "programs": {}, "pathways": []}
        fake = self.start_fake(cat, require_auth=True)
        self.fake_ = fake
        fake.set_fault(re.compile(r"/api/v1/programs/[^/?]+/"), "hang")
        d = self.daemon(self.config(fake, [self.mc], [(SITE, 1, "")],
                                    discovery={"max_in_flight": 4},
                                    daemon={"refresh_interval": "1h"}))
        d.start()
        fake.wait_requests(lambda r: r.kind == "program", count=4, timeout=20)
        time.sleep(1)
        rss = self.peak_rss_mb(d)
        self.assertLess(rss, 60, "peak RSS %.0f MiB" % rss)
        self.assertEqual(len(fake.requests_of("program")), 4)
        fake.release_hangs()

    def test_detail_memory_is_bounded(self):
        """A 20 MB detail (over max_detail_size) and a 3.9 MB one of
        [0,0,...] (under it, but 20 times its size once parsed) are refused
        without the daemon growing; the other programs are written."""
        fake = self.fake()
        u1, u2 = self.cat["uuids"][:2]
        self.hostile_detail(u1, b'{"x":[' + b"0," * 10000000 + b"0]}")
        self.hostile_detail(u2, b'{"x":[' + b"0," * 1950000 + b"0]}")
        d = self.daemon(self.config(fake, [self.mc], [(SITE, 1, "")],
                                    daemon={"refresh_interval": "1h"}))
        d.start()
        d.wait_event("refresh_incomplete", timeout=60)
        rss = self.peak_rss_mb(d)
        self.assertLess(rss, 60, "peak RSS %.0f MiB" % rss)
        bad = {e["url"].split("/")[-2]: e["error"] for e in d.events
               if e["event"] == "refresh_failed" and e.get("stage") == "detail"}
        self.assertIn("larger than 4194304 bytes", bad[u1])
        self.assertIn("values", bad[u2])
        r = self.reader([self.mc])
        self.assertIsNotNone(r.get("program-" + self.cat["uuids"][2]))

    # -- 2. the listener -------------------------------------------------------

    def listening_daemon(self):
        fake = self.fake()
        d = self.daemon(self.config(fake, [self.mc], [(SITE, 1, "")],
                                    daemon={"refresh_interval": "1h",
                                            "listen": "127.0.0.1:0"}))
        d.start()
        d.wait_event("refresh_succeeded", timeout=30)
        host, port = d.wait_event("listening")["address"].rsplit(":", 1)
        return d, (host, int(port))

    def connect_many(self, addr, n, first=b"GET /healthz HTTP/1.1\r\nX-"):
        socks = []
        for _ in range(n):
            s = socket.socket()
            s.settimeout(5)
            try:
                s.connect(addr)
                s.sendall(first)
            except OSError:
                s.close()
                continue
            socks.append(s)
        self.addCleanup(lambda: [s.close() for s in socks])
        return socks

    def healthz(self, addr, timeout=5):
        import http.client
        c = http.client.HTTPConnection(addr[0], addr[1], timeout=timeout)
        try:
            c.request("GET", "/healthz")
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def nfds(self, d):
        return len(os.listdir("/proc/%d/fd" % d.pid))

    def cpu_s(self, d):
        f = Path("/proc/%d/stat" % d.pid).read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def refresh_works(self, d):
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        d.wait_event("refresh_succeeded", timeout=30, since=mark)

    def test_trickling_connections_are_bounded(self):
        """300 connections trickling one header byte every 2 s: the daemon
        holds a bounded number of descriptors, /healthz answers, a refresh
        works, and every trickler is cut off by the whole-request deadline
        (evhttp restarted its timeout with each byte)."""
        d, addr = self.listening_daemon()
        base = self.nfds(d)
        socks = self.connect_many(addr, 300)
        stop = threading.Event()

        def trickle():
            while not stop.wait(2):
                for s in socks:
                    try:
                        s.send(b"x")
                    except OSError:
                        pass
        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        self.addCleanup(stop.set)
        time.sleep(1)
        self.assertLessEqual(self.nfds(d), base + 64 + 2)
        self.assertEqual(self.healthz(addr), (200, b"ok\n"))
        self.refresh_works(d)
        # The last connection made is cut off 10 s after it came, trickle
        # or not.
        late = self.connect_many(addr, 1)[0]
        t0 = time.monotonic()
        late.settimeout(20)
        while True:
            late.send(b"x")
            try:
                late.settimeout(1.5)
                if late.recv(100) == b"":
                    break
            except socket.timeout:
                pass
            except OSError:
                break
            self.assertLess(time.monotonic() - t0, 16, "never cut off")
        self.assertGreater(time.monotonic() - t0, 8)
        stop.set()
        self.assertLess(len(d.events), 200)

    def test_descriptors_running_out(self):
        """With few descriptors left, the listener refuses connections
        instead of spinning on EMFILE: little CPU, a log line or two, and
        the refresh still gets its sockets."""
        d, addr = self.listening_daemon()
        soft, hard = resource.prlimit(d.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (self.nfds(d) + 70, hard))
        mark = d.mark()
        cpu0 = self.cpu_s(d)
        socks = self.connect_many(addr, 200, first=b"")
        time.sleep(3)
        self.assertLess(self.cpu_s(d) - cpu0, 1.0)
        self.refresh_works(d)
        errs = [e for e in d.events[mark:] if e["event"] == "listen_error"]
        self.assertLessEqual(len(errs), 2)
        self.assertLess(len(d.events) - mark, 60)
        for s in socks:
            s.close()
        time.sleep(0.5)
        self.assertEqual(self.healthz(addr), (200, b"ok\n"))
        # None left at all: accept() fails with EMFILE; the listener
        # pauses instead of spinning, and says so once.
        limit = 3       # stdin, stdout, stderr: no descriptor is free
        resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (limit, hard))
        cpu0 = self.cpu_s(d)
        socks = self.connect_many(addr, 50, first=b"")
        time.sleep(3)
        self.assertLess(self.cpu_s(d) - cpu0, 1.0)
        errs = [e for e in d.events[mark:] if e["event"] == "listen_error"]
        self.assertLessEqual(len(errs), 3)
        self.assertLess(len(d.events) - mark, 80)
        for s in socks:
            s.close()
        resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (soft, hard))
        time.sleep(1.5)
        self.assertEqual(self.healthz(addr), (200, b"ok\n"))

    def test_list_of_non_strings_is_not_a_log_flood(self):
        """100,000 entries that are not UUIDs: a few program_rejected lines,
        not one per entry."""
        fake = self.fake()
        fake.set_fault(fake.uuids_path(), "body",
                       body=b"[" + b"0," * 100000 + b"0]")
        _, (rc, events, stderr) = self.once()
        self.assertEqual(rc, 1, stderr[-2000:])
        rej = [e for e in events if e["event"] == "program_rejected"]
        self.assertLessEqual(len(rej), 11)
        self.assertEqual(rej[-1]["entries"], 100001 - 10)


# -- the snapshot file, edited by hand with its digests recomputed -------------

def _u32(b, o):
    return int.from_bytes(b[o:o + 4], "little")


def _u64(b, o):
    return int.from_bytes(b[o:o + 8], "little")


def _p64(v):
    return v.to_bytes(8, "little")


def _zstd(data, *args):
    import subprocess
    return subprocess.run(["zstd", "-q", "-c", *args], input=data, check=True,
                          stdout=subprocess.PIPE).stdout


def recraft(path, edit):
    """Rewrite a one-segment snapshot file (format 4, see src/snapfile.c)
    with edit(records) applied to its records [op, family, flags, name,
    value], every length, digest and checksum recomputed: a file only the
    loader's own checks can refuse."""
    import hashlib
    b = Path(path).read_bytes()
    assert b[:8] == b"PCDSNAP\n" and _u64(b, 32) == 1, "one base segment"
    hlen = _u64(b, 16)
    seg = b[hlen:hlen + 64]
    plen = _u64(seg, 24)
    raw = _zstd(b[hlen + 96:hlen + 96 + plen], "-d")
    recs, o = [], 0
    while o < len(raw):
        op, fam, flags = raw[o], raw[o + 1], _u32(raw, o + 4)
        nlen, vlen = _u32(raw, o + 8), _u64(raw, o + 16)
        o += 24
        name = raw[o:o + nlen]
        o += nlen + 1
        recs.append([op, fam, flags, name, raw[o:o + vlen]])
        o += vlen + 1
    edit(recs)
    raw = b"".join(bytes([op, fam, 0, 0]) + flags.to_bytes(4, "little")
                   + len(name).to_bytes(4, "little") + bytes(4) + _p64(len(val))
                   + name + b"\0" + val + b"\0" for op, fam, flags, name, val in recs)
    payload = _zstd(raw, "-1", "--stream-size=%d" % len(raw))
    seg = seg[:24] + _p64(len(payload)) + _p64(len(raw)) + _p64(len(recs)) + seg[48:64]
    digest = hashlib.blake2b(bytes(32) + payload + seg, digest_size=32).digest()
    hdr = bytearray(b[:hlen])
    hdr[24:32] = _p64(hlen + 96 + len(payload))
    hdr[40:48] = _p64(len(raw))
    hdr[48:56] = _p64(len(raw))
    hdr[64:96] = digest
    hdr[96:128] = hashlib.blake2b(bytes(hdr[:96]) + bytes(hdr[128:]),
                                  digest_size=32).digest()
    Path(path).write_bytes(bytes(hdr) + seg + digest + payload)


class HandEditedSnapshot(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat = catalog.generate(6, seed=9)
        self.fake = self.start_fake(self.cat)
        self.d = self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")],
                                         daemon={"refresh_interval": "1h",
                                                 "check_interval": "1s"}))
        self.assertEqual(self.d.run_once().returncode, 0)
        self.snap = self.d.state_dir / "programs-cache.snapshot"
        self.reader_ = self.reader([self.mc])
        self.victim = "victim-%d" % os.getpid()
        self.reader_.set_many({self.victim: "precious"})

    def restart_from_file(self):
        """memcached emptied but for the victim, the daemon started on the
        file: its snapshot_loaded or snapshot_ignored event."""
        self.mc.restart()
        self.reader_ = self.reader([self.mc])
        self.reader_.set_many({self.victim: "precious"})
        self.d.start()
        for _ in range(300):
            evs = [e for e in self.d.events
                   if e.get("event") in ("snapshot_loaded", "snapshot_ignored")]
            if evs:
                return evs[0]
            time.sleep(0.1)
        self.fail("neither snapshot_loaded nor snapshot_ignored")

    def test_the_crafting_is_right(self):
        """The file rewritten by hand (its records as they were, recompressed,
        its digests recomputed) loads: the refusal below is the loader's,
        not the crafting's."""
        key = ("program-" + self.cat["uuids"][0]).encode()
        recraft(self.snap, lambda recs: None)
        ev = self.restart_from_file()
        self.assertEqual(ev["event"], "snapshot_loaded", ev)
        # (The repair and the first refresh race to fill the cache.)
        self.d.wait_event("refresh_succeeded", timeout=60)
        self.assertIsNotNone(self.reader_.get(key.decode()))

    def test_a_key_outside_the_families_is_refused(self):
        """A program entry renamed to a key the daemon does not own (the
        digests recomputed): the file is refused, the key is neither
        written nor deleted, and the cache is filled from Discovery."""
        key = ("program-" + self.cat["uuids"][0]).encode()

        def edit(recs):
            for r in recs:
                if r[3] == key:
                    r[3] = self.victim.encode()
        recraft(self.snap, edit)
        self.assertEqual(self.d.run("--verify").returncode, 2)
        ev = self.restart_from_file()
        self.assertEqual(ev["event"], "snapshot_ignored", ev)
        self.assertIn("outside its family", ev["error"])
        self.d.wait_event("refresh_succeeded", timeout=30)
        self.assertEqual(self.reader_.get(self.victim), "precious")
        self.assertCacheMatches(self.reader_, expected(self.cat), "after the refresh")
