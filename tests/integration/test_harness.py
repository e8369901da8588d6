"""Tests of the test infrastructure itself (tests/support), without the daemon.

The daemon's end-to-end tests trust four things: the catalogue generator
makes the cases that matter, the fake Discovery serves exactly Discovery's
URLs and breaks on demand in the ways it claims, the reference model is
cache_programs, and the reader reads like the LMS.  If any of them were
wrong, a daemon test could pass for the wrong reason; these tests pin them.
"""

import copy
import gzip
import http.client
import json
import os
import re
import signal
import socket
import sys
import time
import unittest
import urllib.error
import urllib.request
from pathlib import Path

from tests.support import catalog, reference
from tests.support.fakedisco import FakeDiscovery, http_date
from tests.support.harness import (Daemon, Memcached, PcdTestCase, REPO,
                                   free_port)
from tests.support.reader import (Reader, first_difference, md4_hexdigest, raw_get,
                                  raw_set, raw_delete, safe_key)

SAMPLE_PATH = REPO / "tests" / "data" / "sample_catalogue.json"


def load_sample():
    with open(SAMPLE_PATH, "rb") as f:
        return json.load(f)


def get(url, headers=None, timeout=5):
    """(status, headers, body bytes) of a GET; HTTP errors are returned too."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def run_keys(program):
    """Every course run key of a detail, at top level and in all curricula."""
    keys = {r["key"] for c in program["courses"] for r in c["course_runs"]}
    for cur in program["curricula"]:
        keys |= {r["key"] for c in cur["courses"] for r in c["course_runs"]}
    return keys


# --- catalog.py -------------------------------------------------------------------

class CatalogTest(unittest.TestCase):
    """The generator is deterministic and contains the special cases."""

    def test_same_seed_same_bytes_and_bundled_sample_is_current(self):
        """Failures must reproduce, and the committed sample must be what
        sample() makes (regenerate it with catalog.py --sample otherwise)."""
        a = catalog.to_json(catalog.generate(7, seed=3))
        self.assertEqual(a, catalog.to_json(catalog.generate(7, seed=3)))
        self.assertNotEqual(a, catalog.to_json(catalog.generate(7, seed=4)))
        self.assertEqual(load_sample(), catalog.sample(),
                         "tests/data/sample_catalogue.json is stale: run "
                         "tests/support/catalog.py --sample -o tests/data/sample_catalogue.json")

    def test_shapes_follow_the_factories(self):
        """Field order is the factories' (edx-platform's catalog tests): it decides the
        pickle bytes' order, so the daemon must keep document order."""
        cat = catalog.generate(3, seed=1, quirks=False, child_program=False)
        self.assertEqual(len(cat["uuids"]), 3)
        p = cat["programs"][cat["uuids"][0]]
        self.assertEqual(list(p)[:3], ["authoring_organizations", "applicable_seat_types",
                                       "banner_image"])
        self.assertEqual(list(p)[-4:], ["uuid", "video", "weeks_to_complete", "curricula"])
        self.assertEqual(list(p["curricula"][0]), ["uuid", "name", "marketing_text",
                                                   "marketing_text_brief", "is_active",
                                                   "courses", "programs"])
        course = p["courses"][0]
        self.assertEqual(list(course), ["course_runs", "entitlements", "image", "key",
                                        "owners", "title", "uuid"])
        self.assertEqual(list(course["course_runs"][0])[:4],
                         ["eligible_for_financial_aid", "end", "enrollment_end",
                          "enrollment_start"])
        self.assertEqual(list(p["authoring_organizations"][0]),
                         ["key", "name", "uuid", "logo_image_url"])
        self.assertEqual(list(p["staff"][0]),
                         ["bio", "given_name", "family_name", "profile_image_url", "uuid"])
        self.assertEqual(list(cat["pathways"][0])[:7], ["id", "description", "destination_url",
                                                        "email", "name", "org_name", "programs"])
        self.assertEqual(json.loads(catalog.to_json(cat)), cat, "not JSON-safe")

    def test_quirks_are_present(self):
        cat = catalog.sample()
        q = catalog.quirks_of(cat)
        progs = cat["programs"]
        parent = progs[q["parent"]]
        active = next(c for c in parent["curricula"] if c["is_active"])
        self.assertEqual(active["programs"][0]["uuid"], q["child"])
        self.assertIn(q["child"], cat["uuids"])
        child_active = next(c for c in active["programs"][0]["curricula"] if c["is_active"])
        self.assertEqual(len(child_active["programs"]), 1, "grandchild nested in the child")
        self.assertNotIn(child_active["programs"][0]["uuid"], cat["uuids"])
        inactive_first = progs[q["inactive_first"]]["curricula"]
        self.assertEqual([c["is_active"] for c in inactive_first], [False, True, False])
        orgs = progs[q["double_org"]]["authoring_organizations"]
        self.assertEqual(orgs[0], orgs[1])
        self.assertEqual(progs[q["unicode_org"]]["authoring_organizations"][0]["key"],
                         catalog.UNICODE_ORG_KEY)
        self.assertIn("Professional Certificate", {p["type"] for p in progs.values()})
        shared = progs[q["shared_a"]]["courses"][0]
        self.assertIn(shared, progs[q["shared_b"]]["courses"])
        self.assertNotIn(q["missing_program"], cat["uuids"])
        self.assertEqual(len(cat["uuids"]), 12)
        self.assertEqual(len(cat["pathways"]), 3)

    def test_long_run_key_option(self):
        cat = catalog.generate(8, long_run_key=True)
        keys = run_keys(cat["programs"][cat["uuids"][6]])
        self.assertTrue(any(len(k) > 250 for k in keys))

    def test_target_bytes_pads_each_detail(self):
        """Benchmarks need details of a known size with ~10 runs each."""
        cat = catalog.generate(20, seed=5, target_bytes=65000, child_program=False)
        for uuid in cat["uuids"]:
            size = len(catalog.to_json(cat["programs"][uuid]))
            self.assertGreaterEqual(size, 65000)
            self.assertLess(size, 65000 * 1.1, uuid)
        runs = [len({r["key"] for c in p["courses"] for r in c["course_runs"]})
                for p in cat["programs"].values()]
        self.assertTrue(all(8 <= n <= 12 for n in runs), runs)


# --- fakedisco.py --------------------------------------------------------------------

class FakeDiscoveryTest(PcdTestCase):
    """The fake serves Discovery's exact URLs and nothing else."""

    def setUp(self):
        super().setUp()
        self.cat = catalog.generate(5, seed=11, n_pathways=3)
        self.fake = self.start_fake(self.cat)
        self.base = self.fake.base_url()

    def test_uuid_list_detail_and_pathways_at_the_exact_urls(self):
        st, _, body = get(self.base + "/programs/?exclude_utm=1&status=active&status=retired&uuids_only=1")
        self.assertEqual((st, json.loads(body)), (200, self.cat["uuids"]))
        # Parameter order is free; the multiset is not.
        st, _, _ = get(self.base + "/programs/?uuids_only=1&status=retired&exclude_utm=1&status=active")
        self.assertEqual(st, 200)
        uuid = self.cat["uuids"][2]
        st, h, body = get(self.base + "/programs/%s/?exclude_utm=1" % uuid)
        self.assertEqual(st, 200)
        self.assertEqual(h["Content-Type"], "application/json")
        self.assertEqual(body, catalog.to_json(self.cat["programs"][uuid]))
        st, _, body = get(self.base + "/pathways/?status=published&exclude_utm=1&page=1")
        page = json.loads(body)
        self.assertEqual((st, page["count"], page["next"], page["previous"]), (200, 3, None, None))
        self.assertEqual(page["results"], self.cat["pathways"])
        kinds = [(r.kind, r.status) for r in self.fake.requests]
        self.assertEqual(kinds, [("uuids", 200), ("uuids", 200), ("program", 200),
                                 ("pathways", 200)])
        self.assertEqual(self.fake.requests[2].uuid, uuid)

    def test_wrong_query_strings_are_400_naming_the_problem(self):
        cases = {
            "/programs/?exclude_utm=1&status=active&uuids_only=1": "missing status=retired",
            "/programs/?exclude_utm=1&status=active&status=retired&uuids_only=1&x=1":
                "unexpected x=1",
            "/programs/?exclude_utm=1&exclude_utm=1&status=active&status=retired&uuids_only=1":
                "unexpected exclude_utm=1",
            "/programs/?status=active,retired&exclude_utm=1&uuids_only=1": "missing",
            "/programs/%s/" % self.cat["uuids"][0]: "missing exclude_utm=1",
            "/programs/%s/?exclude_utm=1&page=1" % self.cat["uuids"][0]: "unexpected page=1",
            "/pathways/?status=published&exclude_utm=1": "missing page",
            "/pathways/?exclude_utm=1&page=1": "missing status=published",
            "/pathways/?status=published&exclude_utm=1&page=1&page_size=100":
                "unexpected page_size=100",
        }
        for path, why in cases.items():
            with self.subTest(path=path):
                st, _, body = get(self.base + path)
                self.assertEqual(st, 400)
                self.assertIn(why, json.loads(body)["error"])

    def test_unknown_paths_and_programs_are_404(self):
        self.assertEqual(get(self.base + "/programs?exclude_utm=1&status=active&status=retired"
                             "&uuids_only=1")[0], 404)  # no trailing slash
        self.assertEqual(get(self.base + "/programs/nope/?exclude_utm=1")[0], 404)
        self.assertEqual(get(self.base + "/pathways/?status=published&exclude_utm=1&page=2")[0], 404)
        self.assertEqual(get(self.fake.root_url + "/api/v2/programs/")[0], 404)

    def test_pathways_paginate_20_20_3_with_absolute_next_urls(self):
        cat = catalog.generate(10, seed=2, n_pathways=43)
        self.fake.set_catalogue(cat)
        url = self.base + "/pathways/?status=published&exclude_utm=1&page=1"
        sizes, got = [], []
        while url:
            st, _, body = get(url)
            self.assertEqual(st, 200, body)
            page = json.loads(body)
            sizes.append(len(page["results"]))
            got.extend(page["results"])
            self.assertEqual(page["count"], 43)
            url = page["next"]
            if url:
                self.assertTrue(url.startswith("http://127.0.0.1:%d/api/v1/pathways/?"
                                               % self.fake.port), url)
        self.assertEqual(sizes, [20, 20, 3])
        self.assertEqual(got, cat["pathways"])
        self.assertEqual([r.page for r in self.fake.requests_of("pathways")], [1, 2, 3])

    def test_uuid_list_can_be_a_paginated_envelope(self):
        fake = self.start_fake(catalog.generate(5, seed=1), uuids_page_size=2)
        url = fake.base_url() + "/programs/?exclude_utm=1&status=active&status=retired&uuids_only=1"
        got = []
        while url:
            page = json.loads(get(url)[2])
            got += page["results"]
            url = page["next"]
        self.assertEqual(got, fake.catalogue()["uuids"])

    def test_oauth_token_and_required_jwt(self):
        fake = self.start_fake(self.cat, require_auth=True, client_id="cid",
                               client_secret="sec", token_expires_in=600)
        uuids_url = fake.root_url + fake.uuids_target()
        self.assertEqual(get(uuids_url)[0], 401)

        def token(**form):
            data = "&".join("%s=%s" % kv for kv in form.items()).encode()
            req = urllib.request.Request(fake.oauth_url + "/oauth2/access_token", data=data,
                                         headers={"Content-Type":
                                                  "application/x-www-form-urlencoded"})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        good = dict(grant_type="client_credentials", client_id="cid", client_secret="sec",
                    token_type="jwt")
        st, tok = token(**good)
        self.assertEqual(st, 200)
        self.assertEqual((tok["token_type"], tok["expires_in"]), ("JWT", 600))
        self.assertEqual(set(tok), {"access_token", "expires_in", "token_type", "scope"})
        self.assertEqual(token(**dict(good, client_secret="bad"))[0], 401)
        self.assertEqual(token(**dict(good, grant_type="password"))[0], 400)
        self.assertEqual(token(**dict(good, token_type="bearer"))[0], 400)
        jwt = {"Authorization": "JWT " + tok["access_token"]}
        self.assertEqual(get(uuids_url, jwt)[0], 200)
        self.assertEqual(get(uuids_url, {"Authorization": "Bearer " + tok["access_token"]})[0], 401)
        fake.expire_tokens()
        self.assertEqual(get(uuids_url, jwt)[0], 401)
        form = fake.requests_of("token")[0].body.decode()
        self.assertIn("grant_type=client_credentials", form)

    def test_gzip_when_accepted(self):
        uuid = self.cat["uuids"][0]
        url = self.fake.root_url + self.fake.program_target(uuid)
        st, h, body = get(url, {"Accept-Encoding": "gzip"})
        self.assertEqual(h["Content-Encoding"], "gzip")
        self.assertEqual(gzip.decompress(body), catalog.to_json(self.cat["programs"][uuid]))
        st, h, body = get(url)
        self.assertIsNone(h["Content-Encoding"])
        fake = self.start_fake(self.cat, gzip=False)
        st, h, body = get(fake.root_url + fake.program_target(uuid), {"Accept-Encoding": "gzip"})
        self.assertIsNone(h["Content-Encoding"])

    def test_keep_alive_and_recorded_headers(self):
        """Connection reuse is visible in Request.conn; headers are recorded."""
        c = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=5)
        for uuid in self.cat["uuids"][:3]:
            c.request("GET", self.fake.program_target(uuid),
                      headers={"Accept": "application/json", "User-Agent": "t/1"})
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        c.close()
        reqs = self.fake.requests
        self.assertEqual(len({r.conn for r in reqs}), 1)
        self.assertEqual(reqs[0].headers["user-agent"], "t/1")
        self.assertEqual(reqs[0].headers["accept"], "application/json")
        self.fake.reset_requests()
        self.assertEqual(self.fake.requests, [])

    def test_sites_share_one_server_under_prefixes(self):
        other = catalog.generate(2, seed=99, n_pathways=1)
        self.fake.set_catalogue(other, "/b")
        self.assertEqual(self.fake.base_url("/b"),
                         "http://127.0.0.1:%d/b/api/v1" % self.fake.port)
        st, _, body = get(self.fake.root_url + self.fake.uuids_target("/b"))
        self.assertEqual(json.loads(body), other["uuids"])
        st, _, body = get(self.fake.root_url + self.fake.uuids_target())
        self.assertEqual(json.loads(body), self.cat["uuids"])
        self.assertEqual([r.prefix for r in self.fake.requests], ["/b", ""])

    def test_latency_global_and_per_url(self):
        url = self.fake.root_url + self.fake.uuids_target()
        slow = self.fake.root_url + self.fake.program_target(self.cat["uuids"][0])
        self.fake.set_latency(0.2, match=self.fake.program_path(self.cat["uuids"][0]))
        t = time.monotonic()
        get(url)
        self.assertLess(time.monotonic() - t, 0.15)
        t = time.monotonic()
        get(slow)
        self.assertGreaterEqual(time.monotonic() - t, 0.2)
        self.fake.clear_latency()
        self.fake.set_latency(0.1)
        t = time.monotonic()
        get(url)
        self.assertGreaterEqual(time.monotonic() - t, 0.1)

    def test_command_line_mode_prints_ready_and_serves(self):
        import subprocess
        path = Path(self.tmpdir) / "cat.json"
        path.write_bytes(catalog.to_json(self.cat))
        p = subprocess.Popen([sys.executable, str(REPO / "tests/support/fakedisco.py"),
                              "--catalogue", str(path), "--port", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = p.stdout.readline().decode().strip()
            m = re.fullmatch(r"READY (http://127\.0\.0\.1:\d+/api/v1)", line)
            self.assertTrue(m, line)
            st, _, body = get(m.group(1) + "/programs/?exclude_utm=1&status=active"
                                           "&status=retired&uuids_only=1")
            self.assertEqual(json.loads(body), self.cat["uuids"])
        finally:
            p.terminate()
            self.assertEqual(p.wait(5), 0)
            p.stdout.close()
            p.stderr.close()


class FaultTest(PcdTestCase):
    """Each fault kind does what fakedisco's docstring promises."""

    def setUp(self):
        super().setUp()
        self.cat = catalog.generate(3, seed=5, n_pathways=1)
        self.fake = self.start_fake(self.cat)
        self.uuid = self.cat["uuids"][0]
        self.path = self.fake.program_path(self.uuid)
        self.url = self.fake.root_url + self.fake.program_target(self.uuid)
        self.detail = catalog.to_json(self.cat["programs"][self.uuid])

    def raw(self, target, timeout=2.0):
        """Send a GET over a raw socket; return everything until close."""
        s = socket.create_connection(("127.0.0.1", self.fake.port), timeout=timeout)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return head.decode("latin-1"), body

    def test_status_with_retry_after_first_n_times(self):
        f = self.fake.set_fault(self.path, "status", status=503,
                                headers={"Retry-After": "2"}, times=2)
        for _ in range(2):
            st, h, body = get(self.url)
            self.assertEqual((st, h["Retry-After"]), (503, "2"))
        self.assertEqual(get(self.url)[0], 200)
        self.assertEqual(f.hits, 2)
        date = http_date(30)
        self.fake.set_fault(self.path, "status", status=429, headers={"Retry-After": date},
                            body={"detail": "slow down"})
        st, h, body = get(self.url)
        self.assertEqual((st, h["Retry-After"], json.loads(body)), (429, date,
                                                                    {"detail": "slow down"}))
        self.fake.clear_faults()
        self.assertEqual(get(self.url)[0], 200)

    def test_path_query_regex_and_predicate_matching(self):
        self.fake.set_fault(self.path + "?exclude_utm=1", "status", status=500, times=1)
        self.assertEqual(get(self.url)[0], 500)
        self.fake.set_fault(re.compile(r"/pathways/.*page=1"), "status", status=502, times=1)
        self.assertEqual(get(self.fake.root_url + self.fake.pathways_target(1))[0], 502)
        self.fake.set_fault(lambda r: r.kind == "uuids", "status", status=504, times=1)
        self.assertEqual(get(self.fake.root_url + self.fake.uuids_target())[0], 504)
        self.assertEqual(get(self.fake.root_url + self.fake.uuids_target())[0], 200)
        self.assertEqual([r.fault is not None for r in self.fake.requests],
                         [True, True, True, False])

    def test_hang_until_released(self):
        f = self.fake.set_fault(self.path, "hang")
        with self.assertRaises(socket.timeout):
            get(self.url, timeout=0.3)
        f.release()
        head, body = self.raw(self.fake.program_target(self.uuid))
        self.assertEqual((head, body), ("", b""), "closed without an answer once released")

    def test_hang_after_headers(self):
        self.fake.set_fault(self.path, "hang", after_headers=True)
        c = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=0.3)
        c.request("GET", self.fake.program_target(self.uuid))
        r = c.getresponse()
        self.assertEqual((r.status, int(r.headers["Content-Length"])), (200, len(self.detail)))
        with self.assertRaises(socket.timeout):
            r.read()
        c.close()
        self.fake.release_hangs()

    def test_trickle_sends_the_body_slowly(self):
        self.fake.set_fault(self.path, "trickle", chunk_size=len(self.detail) // 5 + 1,
                            interval=0.05)
        t = time.monotonic()
        st, _, body = get(self.url)
        self.assertGreaterEqual(time.monotonic() - t, 0.25)
        self.assertEqual((st, body), (200, self.detail))

    def test_truncated_with_content_length(self):
        self.fake.set_fault(self.path, "truncate", framing="length", keep=0.5)
        c = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=2)
        c.request("GET", self.fake.program_target(self.uuid))
        r = c.getresponse()
        with self.assertRaises(http.client.IncompleteRead) as cm:
            r.read()
        self.assertEqual(len(cm.exception.partial), len(self.detail) // 2)
        c.close()

    def test_truncated_chunked_without_last_chunk(self):
        self.fake.set_fault(self.path, "truncate", framing="chunked", keep=3000)
        head, body = self.raw(self.fake.program_target(self.uuid))
        self.assertIn("Transfer-Encoding: chunked", head)
        self.assertFalse(body.endswith(b"0\r\n\r\n"))
        c = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=2)
        c.request("GET", self.fake.program_target(self.uuid))
        with self.assertRaises(http.client.IncompleteRead):
            c.getresponse().read()
        c.close()

    def test_truncated_close_delimited(self):
        """No length and Connection: close: only the JSON parse can tell."""
        self.fake.set_fault(self.path, "truncate", framing="close", keep=100)
        head, body = self.raw(self.fake.program_target(self.uuid))
        self.assertNotIn("Content-Length", head)
        self.assertIn("Connection: close", head)
        self.assertEqual(body, self.detail[:100])
        with self.assertRaises(ValueError):
            json.loads(body)

    def test_malformed_json_is_well_framed(self):
        self.fake.set_fault(self.path, "malformed")
        st, h, body = get(self.url)
        self.assertEqual((st, int(h["Content-Length"])), (200, len(self.detail) - 1))
        with self.assertRaises(ValueError):
            json.loads(body)

    def test_arbitrary_body_and_wrong_content_type(self):
        self.fake.set_fault(self.path, "body", body={"uuid": self.uuid, "type_attrs": None},
                            times=1)
        st, _, body = get(self.url)
        self.assertEqual(json.loads(body), {"uuid": self.uuid, "type_attrs": None})
        self.fake.set_fault(self.path, "body", body=b"<html>oops</html>",
                            content_type="text/html", status=200, times=1)
        st, h, body = get(self.url)
        self.assertEqual((body, h["Content-Type"]), (b"<html>oops</html>", "text/html"))
        self.fake.set_fault(self.path, "content_type", times=1)
        st, h, body = get(self.url)
        self.assertEqual((st, body), (200, self.detail))
        self.assertTrue(h["Content-Type"].startswith("text/html"))

    def test_reset_closes_without_answer(self):
        self.fake.set_fault(self.path, "reset", times=1)
        c = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=2)
        c.request("GET", self.fake.program_target(self.uuid))
        with self.assertRaises((ConnectionError, http.client.RemoteDisconnected)):
            c.getresponse()
        c.close()
        self.assertEqual(get(self.url)[0], 200)

    def test_extra_headers_on_a_normal_answer(self):
        self.fake.set_fault(self.path, "headers", headers={"X-Test": "1"}, times=1)
        st, h, body = get(self.url)
        self.assertEqual((st, h["X-Test"], body), (200, "1", self.detail))

    def test_stop_releases_hung_requests(self):
        """stop() must not wait for a hang, or every failing test would."""
        fake = FakeDiscovery(self.cat).start()
        fake.set_fault(lambda r: True, "hang")
        s = socket.create_connection(("127.0.0.1", fake.port), timeout=2)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        fake.wait_requests(count=1, timeout=2)
        t = time.monotonic()
        fake.stop()
        self.assertLess(time.monotonic() - t, 2)
        self.assertEqual(s.recv(10), b"")
        s.close()


# --- reference.py ------------------------------------------------------------------------

class ReferenceTest(unittest.TestCase):
    """The reference model reproduces cache_programs, quirks included."""

    @classmethod
    def setUpClass(cls):
        cls.cat = load_sample()
        cls.q = catalog.quirks_of(cls.cat)
        cls.site = {"domain": "lms.example.com", "site_id": 1, "catalogue": cls.cat}
        cls.out = reference.run([cls.site])
        cls.exp = cls.out.cache

    def courses_of(self, run_key):
        return self.exp["course-programs-" + run_key]

    def test_all_nine_families(self):
        fams = {reference.family_of(k) for k in self.exp}
        self.assertEqual(fams, {name for name, _ in reference.FAMILIES})
        self.assertEqual(self.exp["program-uuids-lms.example.com"], self.cat["uuids"])
        self.assertEqual(self.exp["pathway-ids-lms.example.com"],
                         ["pathway-%d" % p["id"] for p in self.cat["pathways"]])

    def test_program_is_the_detail_plus_pathway_ids(self):
        for uuid in self.cat["uuids"]:
            value = self.exp["program-" + uuid]
            self.assertEqual(list(value)[-1], "pathway_ids")
            detail = dict(value)
            ids = detail.pop("pathway_ids")
            self.assertEqual(detail, self.cat["programs"][uuid])
            expected_ids = []
            for p in self.cat["pathways"]:
                for prog in p["programs"]:
                    if prog["uuid"] == uuid:
                        expected_ids.append(p["id"])
                    if prog["uuid"] not in self.cat["programs"]:
                        break  # the KeyError stops the loop for that pathway
            self.assertEqual(ids, expected_ids, uuid)

    def test_child_program_runs_map_to_parent_and_child(self):
        parent, child = self.q["parent"], self.q["child"]
        child_detail = self.cat["programs"][child]
        for key in {r["key"] for c in child_detail["courses"] for r in c["course_runs"]}:
            self.assertEqual(self.courses_of(key), [parent, child])
        grandchild = next(c for c in child_detail["curricula"] if c["is_active"])["programs"][0]
        for key in {r["key"] for c in grandchild["courses"] for r in c["course_runs"]}:
            self.assertEqual(self.courses_of(key), [parent, child], "recursion reaches it")
        for c in grandchild["courses"]:
            self.assertEqual(self.exp["catalog-course-programs-" + c["uuid"]], [parent, child])

    def test_only_the_first_active_curriculum_counts(self):
        p = self.cat["programs"][self.q["inactive_first"]]
        inactive = {r["key"] for c in p["curricula"][0]["courses"] for r in c["course_runs"]}
        active = {r["key"] for c in p["curricula"][1]["courses"] for r in c["course_runs"]}
        for key in inactive:
            self.assertNotIn("course-programs-" + key, self.exp)
        for key in active:
            self.assertEqual(self.courses_of(key), [self.q["inactive_first"]])
        p = self.cat["programs"][self.q["curriculum_only"]]
        extra = p["curricula"][0]["courses"][-1]
        self.assertNotIn(extra, p["courses"])
        for r in extra["course_runs"]:
            self.assertEqual(self.courses_of(r["key"]), [self.q["curriculum_only"]])
        p = self.cat["programs"][self.q["no_active"]]
        for key in run_keys(p) - {r["key"] for c in p["courses"] for r in c["course_runs"]}:
            self.assertNotIn("course-programs-" + key, self.exp)

    def test_shared_runs_list_both_programs(self):
        shared = self.cat["programs"][self.q["shared_a"]]["courses"][0]
        for r in shared["course_runs"]:
            self.assertEqual(self.courses_of(r["key"]), [self.q["shared_a"], self.q["shared_b"]])
        self.assertEqual(self.exp["catalog-course-programs-" + shared["uuid"]],
                         [self.q["shared_a"], self.q["shared_b"]])

    def test_org_listed_twice_gives_the_uuid_twice(self):
        key = self.cat["programs"][self.q["double_org"]]["authoring_organizations"][0]["key"]
        value = self.exp["organization-programs-" + key]
        self.assertEqual(value.count(self.q["double_org"]), 2)
        self.assertIn("organization-programs-" + catalog.UNICODE_ORG_KEY, self.exp)

    def test_types_are_lowercased_and_slugs_are_not(self):
        self.assertIn(self.q["inactive_first"],
                      self.exp["programs-by-type-1-professional certificate"])
        self.assertIn("programs-by-type-1-zertifikat ökonomie", self.exp)
        self.assertIn("programs-by-type-slug-1-MicroBachelors", self.exp)
        every = sorted(u for k, v in self.exp.items() if k.startswith("programs-by-type-1-")
                       for u in v)
        self.assertEqual(every, sorted(self.cat["uuids"]))

    def test_pathway_with_unknown_program_is_cached_unmodified(self):
        """cache_programs' KeyError quirk: the pathway keeps "programs", gets
        no "program_uuids", earlier programs already got its id, and the run
        counts as failed (exit 1)."""
        pid = self.q["dangling_pathway"]
        original = next(p for p in self.cat["pathways"] if p["id"] == pid)
        self.assertEqual(self.exp["pathway-%d" % pid], original)
        first = original["programs"][0]["uuid"]
        after = original["programs"][2]["uuid"]
        self.assertIn(pid, self.exp["program-" + first]["pathway_ids"])
        self.assertNotIn(pid, self.exp["program-" + after]["pathway_ids"])
        self.assertEqual((self.out.exit_code, self.out.failed_sites), (1, ["lms.example.com"]))
        ok = next(p for p in self.cat["pathways"] if p["id"] != pid)
        value = self.exp["pathway-%d" % ok["id"]]
        self.assertEqual(list(value)[-1], "program_uuids")
        self.assertEqual(value["program_uuids"], [p["uuid"] for p in ok["programs"]])
        self.assertNotIn("programs", value)

    def test_clean_catalogue_exits_0_and_input_is_not_mutated(self):
        cat = catalog.generate(6, seed=8, dangling_pathway=False)
        before = copy.deepcopy(cat)
        out = reference.run([{"domain": "a", "site_id": 1, "catalogue": cat}])
        self.assertEqual((out.exit_code, out.failed_sites, out.crashed), (0, [], None))
        self.assertEqual(cat, before)

    def test_multi_page_pathways(self):
        cat = catalog.generate(10, seed=2, n_pathways=43, dangling_pathway=False)
        exp = reference.expected_cache([{"domain": "a", "site_id": 1, "catalogue": cat}])
        self.assertEqual(len(exp["pathway-ids-a"]), 43)
        self.assertEqual(len([k for k in exp if reference.family_of(k) == "pathway"]), 43)
        out = reference.run([{"domain": "a", "site_id": 1, "catalogue": cat,
                              "fail_pathways_page": 3}])
        self.assertEqual(len(out.cache["pathway-ids-a"]), 40, "pages 1-2 are kept")
        self.assertEqual(out.exit_code, 1)

    def test_sites_merge_last_wins_and_unconfigured_sites_get_empty_lists(self):
        a = catalog.generate(4, seed=1, dangling_pathway=False, child_program=False)
        b = copy.deepcopy(a)
        shared = a["uuids"][0]
        b["programs"][shared]["title"] = "B's title"
        b["pathways"] = []
        sites = [{"domain": "a.example.com", "site_id": 1, "catalogue": a},
                 {"domain": "b.example.com", "site_id": 2, "catalogue": b},
                 {"domain": "c.example.com", "site_id": 3, "catalogue": None}]
        exp = reference.expected_cache(sites)
        self.assertEqual(exp["program-" + shared]["title"], "B's title")
        self.assertEqual(exp["program-" + shared]["pathway_ids"], [], "b's pathways only")
        self.assertEqual(exp["program-uuids-c.example.com"], [])
        self.assertEqual(exp["pathway-ids-c.example.com"], [])
        self.assertEqual(exp["pathway-ids-b.example.com"], [])
        self.assertTrue(any(k.startswith("programs-by-type-1-") for k in exp))
        self.assertTrue(any(k.startswith("programs-by-type-2-") for k in exp))
        only_b = reference.expected_cache(sites, domain="b.example.com")
        self.assertNotIn("program-uuids-a.example.com", only_b)

    def test_pathway_ids_option_and_failures(self):
        cat = catalog.generate(4, seed=1, dangling_pathway=False)
        site = {"domain": "a", "site_id": 1, "catalogue": cat}
        exp = reference.expected_cache([site], pathway_ids="ids")
        self.assertEqual(exp["pathway-ids-a"], [p["id"] for p in cat["pathways"]])
        out = reference.run([dict(site, fail_uuids=True)])
        self.assertEqual((out.cache["program-uuids-a"], out.exit_code), ([], 1))
        bad = cat["uuids"][1]
        out = reference.run([dict(site, fail_programs={bad})])
        self.assertNotIn("program-" + bad, out.cache)
        self.assertEqual(out.cache["program-uuids-a"], cat["uuids"])
        broken = copy.deepcopy(cat)
        broken["programs"][bad]["type_attrs"] = None
        out = reference.run([{"domain": "a", "site_id": 1, "catalogue": broken}])
        self.assertIsInstance(out.crashed, AttributeError)
        self.assertEqual(out.exit_code, 1)
        self.assertEqual(out.cache, {}, "the crash comes before the site's lists are set")


# --- reader.py and memcached -------------------------------------------------------------

class ReaderTest(PcdTestCase):
    """The reader reads what Django writes, and notices any difference."""

    @classmethod
    def setUpClass(cls):
        cls.exp = reference.expected_cache([{"domain": "lms.example.com", "site_id": 1,
                                             "catalogue": load_sample()}])

    def test_round_trip_through_django_and_detects_changes(self):
        mc = self.start_memcached()
        r = self.reader([mc.address])
        self.assertEqual(r.set_many(self.exp), [])
        self.assertEqual(r.compare(self.exp), [])
        self.assertEqual(mc.dump_keys(), set(r.wire_keys(self.exp)))
        self.assertEqual(r.extra_keys(self.exp), set())

        key = "program-uuids-lms.example.com"
        wire = r.make_key(key)
        flags, data = raw_get(mc.host, mc.port, wire)
        self.assertEqual(flags, 1)
        self.assertEqual(r.raw(key), (flags, data))
        import pickle
        self.assertEqual(pickle.loads(data), self.exp[key])
        changed = self.exp[key][:-1]
        self.assertEqual(raw_set(mc.host, mc.port, wire, pickle.dumps(changed, 4), 1), "STORED")
        diffs = r.compare(self.exp)
        self.assertEqual(len(diffs), 1, diffs)
        self.assertIn("differs: %r" % key, diffs[0])
        self.assertIn("expected 12 items, got 11", diffs[0])

        victim = "course-programs-" + next(k[len("course-programs-"):] for k in self.exp
                                          if k.startswith("course-programs-"))
        self.assertTrue(raw_delete(mc.host, mc.port, r.make_key(victim)))
        diffs = r.compare(self.exp)
        self.assertEqual(len(diffs), 2)
        self.assertTrue(any(d.startswith("missing: %r" % victim) for d in diffs), diffs)
        raw_set(mc.host, mc.port, "default:1:stray", b"x")
        self.assertEqual(r.extra_keys(self.exp), {"default:1:stray"})
        st = mc.stats()
        self.assertEqual(st["pid"], mc.pid)
        self.assertIn("uptime", st)
        mc.flush()
        self.assertEqual(len(r.compare(self.exp)), len(self.exp))

    def test_wire_keys_match_upstream_examples(self):
        """Examples of upstream safe_key (common/djangoapps/util/memcache.py)."""
        r = Reader(["127.0.0.1:1"])
        cases = {
            "program-6f9c4e3a-2b1d-4c8e-9f0a-1234567890ab":
                "default:1:program-6f9c4e3a-2b1d-4c8e-9f0a-1234567890ab",
            "course-programs-course-v1:edX+DemoX+Demo_Course":
                "default:1:course-programs-course-v1%3AedX%2BDemoX%2BDemo_Course",
            "course-programs-edX/DemoX/Demo_Course": "default:1:course-programs-edX%2FDemoX%2FDemo_Course",
            "programs-by-type-1-professional certificate":
                "default:1:programs-by-type-1-professional+certificate",
            "organization-programs-Ünïcode Org":
                "default:1:organization-programs-%C3%9Cn%C3%AFcode+Org",
        }
        for key, wire in cases.items():
            self.assertEqual(r.make_key(key), wire)
        d = Reader(["127.0.0.1:1"], key_function="django")
        self.assertEqual(d.make_key("course-programs-course-v1:edX+DemoX+Demo_Course"),
                         "default:1:course-programs-course-v1:edX+DemoX+Demo_Course")
        self.assertIsNotNone(d.key_problem("programs-by-type-1-professional certificate"))
        self.assertIsNone(r.key_problem("programs-by-type-1-professional certificate"))

    def test_long_keys_are_hashed_md4_or_blake2b(self):
        """A 288-character key, hashed by safe_key; MD4 via the fallback."""
        combined = "default:1:course-programs-course-v1%3A" + "A" * 250
        self.assertEqual(len(combined), 288)
        self.assertEqual(md4_hexdigest(combined.encode()), "3cb38801d242eca1122a6db52043cc91")
        key = "course-programs-course-v1:" + "A" * 250
        self.assertEqual(safe_key(key, "default", "1"), "3cb38801d242eca1122a6db52043cc91")
        self.assertEqual(safe_key(key, "default", "1", long_key_hash="blake2b"),
                         "30c5f48e8848e49779828aae152c43d5")
        self.assertEqual(Reader([1]).make_key(key), "3cb38801d242eca1122a6db52043cc91")
        self.assertEqual(Reader([1], long_key_hash="blake2b").make_key(key),
                         "30c5f48e8848e49779828aae152c43d5")
        # 250 characters exactly are not hashed.
        edge = "x" * (250 - len("default:1:"))
        self.assertEqual(safe_key(edge, "default", "1"), "default:1:" + edge)

    def test_long_key_round_trip(self):
        mc = self.start_memcached()
        r = self.reader(mc)
        cat = catalog.generate(8, seed=4, long_run_key=True, dangling_pathway=False)
        exp = reference.expected_cache([{"domain": "a", "site_id": 1, "catalogue": cat}])
        long_keys = [k for k in exp if len(r.make_key(k)) == 32 and ":" not in r.make_key(k)]
        self.assertEqual(len(long_keys), 1)
        r.set_many(exp)
        self.assertEqual(r.compare(exp), [])

    def test_two_servers_rendezvous(self):
        """With two servers each key lives where HashClient looks for it."""
        a, b = self.start_memcached(), self.start_memcached()
        r = self.reader([a.address, b.address])
        r.set_many(self.exp)
        self.assertEqual(r.compare(self.exp), [])
        on_a, on_b = a.dump_keys(), b.dump_keys()
        self.assertTrue(on_a and on_b)
        self.assertFalse(on_a & on_b)
        for k in self.exp:
            wire = r.make_key(k)
            self.assertIn(wire, on_a if r.server_of(k) == a.address else on_b)

    def test_first_difference_is_strict(self):
        self.assertIsNone(first_difference({"a": [1, "x"]}, {"a": [1, "x"]}))
        self.assertIn("expected bool", first_difference(True, 1))
        self.assertIn("expected int", first_difference(1, 1.0))
        self.assertIn("key order", first_difference({"a": 1, "b": 2}, {"b": 2, "a": 1}))
        self.assertIsNone(first_difference({"a": 1, "b": 2}, {"b": 2, "a": 1}, strict=False))
        self.assertIn("['c'][1]", first_difference({"c": [1, 2]}, {"c": [1, 3]}))


# --- harness.py ----------------------------------------------------------------------------

STUB_DAEMON = r'''
import json, os, signal, sys, time
def ev(name, **f):
    sys.stderr.write(json.dumps(dict({"ts": "t", "level": "info", "event": name}, **f)) + "\n")
    sys.stderr.flush()
args = sys.argv[1:]
conf = args[args.index("-c") + 1]
ev("config_loaded", path=conf, text=open(conf).read())
sys.stderr.write("not json\n")
if "--once" in args:
    ev("refresh_succeeded", programs=3)
    print("summary")
    sys.exit(1 if "--fail" in args else 0)
if "--crash" in args:
    sys.exit(3)
stop = []
signal.signal(signal.SIGHUP, lambda *a: ev("signal", signal="HUP"))
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
ev("refresh_started")
while not stop:
    time.sleep(0.01)
ev("shutdown")
sys.exit(0)
'''


class HarnessTest(PcdTestCase):
    """Process helpers work, and nothing leaks."""

    def stub(self, sections=None, **kw):
        path = Path(self.tmpdir) / "stub.py"
        path.write_text(STUB_DAEMON)
        return self.daemon(sections or {"memcached": {"servers": ["127.0.0.1:1", "h:2"]},
                                        "site lms.example.com": {"site_id": 1}},
                           binary=[sys.executable, str(path)], **kw)

    def test_free_port_is_bindable(self):
        port = free_port()
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))

    def test_memcached_restart_keeps_port_and_empties(self):
        mc = self.start_memcached(item_size="64k")
        port, pid = mc.port, mc.pid
        mc.set("default:1:k", b"v")
        self.assertEqual(mc.stats("settings")["item_size_max"], 65536)
        mc.restart()
        self.assertEqual(mc.port, port)
        self.assertNotEqual(mc.pid, pid)
        self.assertIsNone(mc.get("default:1:k"))
        mc.kill9()
        self.assertFalse(mc.running)
        with self.assertRaises(OSError):
            mc.stats()
        mc.restart()
        self.assertEqual(mc.set("default:1:k", b"v"), "STORED")

    def test_daemon_config_run_once_and_events(self):
        d = self.stub()
        text = d.config_path.read_text()
        self.assertIn("[memcached]\nservers = 127.0.0.1:1, h:2\n", text)
        self.assertIn("[site lms.example.com]\nsite_id = 1\n", text)
        self.assertIn("log_format = json", text)
        self.assertTrue(d.state_dir.is_dir())
        rc, events, stderr = d.run_once()
        self.assertEqual(rc, 0)
        self.assertEqual([e["event"] for e in events], ["config_loaded", "refresh_succeeded"])
        self.assertEqual(events[1]["programs"], 3)
        self.assertIn("not json", stderr)
        res = d.run_once("--fail")
        self.assertEqual((res.returncode, res.stdout), (1, "summary\n"))
        self.assertEqual(len(res.named("refresh_succeeded")), 1)

    def test_daemon_background_signals_and_stop(self):
        d = self.stub(notify=True)
        d.start()
        d.wait_event("refresh_started", timeout=5)
        mark = d.mark()
        d.send_signal(signal.SIGHUP)
        ev = d.wait_event("signal", timeout=5, since=mark,
                          predicate=lambda e: e["signal"] == "HUP")
        self.assertEqual(ev["level"], "info")
        self.assertEqual(len(d.events_named("signal")), 1)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(len(d.events_named("shutdown")), 1)
        self.assertTrue(d.notify.path.endswith(".notify"))

    def test_wait_event_fails_fast_when_the_daemon_exits(self):
        d = self.stub()
        d.start("--crash")
        t = time.monotonic()
        with self.assertRaises(AssertionError) as cm:
            d.wait_event("refresh_succeeded", timeout=10)
        self.assertLess(time.monotonic() - t, 5)
        self.assertIn("exited with 3", str(cm.exception))

    def test_nothing_leaks_when_a_test_fails(self):
        """A failing test's memcached, fake server and daemon are all gone
        after its cleanups run."""
        stub_path = Path(self.tmpdir) / "stub.py"
        stub_path.write_text(STUB_DAEMON)
        seen = {}

        class Failing(PcdTestCase):
            def runTest(inner):
                seen["mc"] = inner.start_memcached()
                seen["fake"] = inner.start_fake(None)
                seen["d"] = inner.daemon({}, binary=[sys.executable, str(stub_path)]).start()
                seen["d"].wait_event("refresh_started", timeout=5)
                seen["tmp"] = inner.tmpdir
                inner.fail("deliberate")

        result = unittest.TestResult()
        Failing().run(result)
        self.assertEqual(len(result.failures), 1)
        self.assertFalse(seen["mc"].running)
        self.assertFalse(seen["d"].running)
        self.assertFalse(os.path.exists(seen["tmp"]))
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", seen["fake"].port), timeout=0.5).close()


if __name__ == "__main__":
    unittest.main()
