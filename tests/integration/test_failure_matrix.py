"""The failure rules (docs/design.md, Failures) in every mode: a mode x fault matrix.

Each case publishes catalogue v1 (a good run), then Discovery serves v2, in
which every program's title changes and the pathways change (one is
renamed and gains a program, another loses one), so that a key that keeps
its old value is told apart from one that took the new one; then one fault
is injected and the mode's next refresh runs.  Every key of all nine
families is then checked against what the rules say, not against the log:
through the LMS's own reader (tests/support/reader.py) for values, byte for
byte (raw memcached) where "kept" means the old value, and the set of keys
in memcached exactly.

Modes:
    once     --once after a good --once (the snapshot is the only memory)
    sighup   the daemon, its second refresh triggered by SIGHUP
    restart  the daemon's first refresh after a restart: a good run, the
             daemon stopped, the catalogue changed and the fault set, the
             daemon started again

Also: start-up with Discovery down and no snapshot never becomes ready,
not even after a restart; a failed refresh is retried sooner than
refresh_interval, backing off, and a success returns to the interval.
"""

import datetime
import http.client
import signal
import time
import uuid as uuidlib
from urllib.parse import unquote_plus

from tests.support import catalog, reference
from tests.support.harness import Memcached, PcdTestCase
from tests.support.reader import first_difference
from tests.support.rediscache import RedisReader, RedisServer

SITE = "lms.example.com"
SNAPSHOT = "programs-cache.snapshot"

# Fast failures: one retry after 50 ms, short timeouts.
DISCOVERY = {"retries": 1, "retry_backoff": "50ms", "retry_backoff_max": "100ms",
             "connect_timeout": "1s", "request_timeout": "10s"}

# Index families: their values are lists of program UUIDs.
INDEX_PREFIXES = ("course-programs-", "catalog-course-programs-", "programs-by-type-",
                  "organization-programs-", "program-uuids-")

MODES = ("once", "sighup", "restart")


def _v1():
    # Small (fanout 1, 2 courses of 1 run), with the quirks (parent/child,
    # shared course, no active curriculum, ...), no dangling pathway, and no
    # space in any key so that the same catalogue also serves the django
    # key function.  Pathways: 1 [p0], 2 [p1, p6], 3 [p2, p7, p0].
    return catalog.without_spaces(catalog.generate(
        12, seed=11, fanout=1, runs_per_course=1, courses_per_program=2,
        dangling_pathway=False))


V1 = _v1()
# Titles change; pathway 1 is renamed and gains p1, pathway 3 loses p0.
V2 = catalog.revise(V1)
UUIDS = V1["uuids"]
FAILED = UUIDS[1]          # the program whose detail fails (faults 2-4)
LIKE = UUIDS[6]            # a plain program that added programs copy


def expected(cat):
    """What cache_programs leaves for cat (the reference port)."""
    return reference.expected_cache([{"domain": SITE, "site_id": 1, "catalogue": cat}])


def with_detail(cat, uuid, detail):
    """cat with program uuid's detail replaced."""
    out = dict(cat)
    out["programs"] = dict(cat["programs"])
    out["programs"][uuid] = detail
    return out


def with_pathways(cat, pathways):
    out = dict(cat)
    out["pathways"] = pathways
    return out


def space_uuid(seed):
    """A program UUID with a space in it (Django refuses the key)."""
    u = str(uuidlib.UUID(int=seed, version=4))
    return u[:8] + " " + u[9:]


class Case:
    """One fault: how to set it up and what the rules say the cache holds.

    expect: "unchanged" (every key byte-identical), "model" (expected
    values, with the keys in kept byte-identical), or "invariant" (no
    index names a program that is not in the cache).
    """

    def __init__(self, name, serve, expect, model=None, kept=(), held=False,
                 memcached=None, config=None, never_succeeded=True, refused=()):
        self.name = name
        self.serve = serve            # serve(fake): catalogue and fault
        self.expect = expect
        self.model = model            # () -> {key: value}
        self.kept = set(kept)
        self.held = held
        self.memcached = memcached or {}
        self.config = config or {}
        self.never_succeeded = never_succeeded
        self.refused = list(refused)  # some of these must not fit


def _serve(cat, *faults, expire_tokens=False):
    def serve(fake):
        fake.set_catalogue(cat)
        if expire_tokens:
            fake.expire_tokens()
        for f in faults:
            f(fake)
    return serve


def _fault(where, kind="status", **kw):
    """where(fake) -> a match; the fault applies to every such request."""
    return lambda fake: fake.set_fault(where(fake), kind=kind, **kw)


def _cases():
    uuids = lambda fake: fake.uuids_path()
    detail = lambda fake: fake.program_path(FAILED)
    pathways = lambda fake: fake.pathways_path()
    token = lambda fake: fake.token_path
    # Faults 2-4: the failed program keeps its old bytes and its place in
    # every index; everything else is v2, computed with its v1 detail.
    one_failed = lambda: expected(with_detail(V2, FAILED, V1["programs"][FAILED]))
    # Faults 5-6: v2 programs with the previous (v1) pathways.
    old_pathways = lambda: expected(with_pathways(V2, V1["pathways"]))
    pathway_keys = {"pathway-%d" % p["id"] for p in V1["pathways"]} | {"pathway-ids-" + SITE}
    other = V2["programs"][UUIDS[2]]

    # Eight added programs of 200 KB: memcached -m 2 -M gives their slab
    # class one 1 MB page, so about four of them are refused.
    oom, added = V2, []
    for i in range(8):
        oom, u = catalog.add_program(oom, LIKE, target_bytes=200_000, seed=1000 + i)
        added.append(u)
    too_big, _ = catalog.add_program(V2, LIKE, target_bytes=300_000, seed=77)
    bad_key, _ = catalog.add_program(V2, LIKE, uuid=space_uuid(99))
    unknown = dict(V2, uuids=[str(uuidlib.UUID(int=7000 + i, version=4))
                                  for i in range(len(UUIDS))])

    return [
        Case("1 uuid list 500", _serve(V2, _fault(uuids, status=500)), "unchanged"),
        Case("2 detail 500", _serve(V2, _fault(detail, status=500)), "model",
             one_failed, kept={"program-" + FAILED}),
        Case("3 detail cut short", _serve(V2, _fault(detail, kind="truncate")), "model",
             one_failed, kept={"program-" + FAILED}),
        Case("4 detail with another uuid",
             _serve(V2, _fault(detail, kind="body", body=catalog.to_json(other))),
             "model", one_failed, kept={"program-" + FAILED}),
        Case("5 pathways 500", _serve(V2, _fault(pathways, status=500)), "model",
             old_pathways, kept=pathway_keys),
        Case("6 pathways 403", _serve(V2, _fault(pathways, status=403)), "model",
             old_pathways, kept=pathway_keys),
        Case("7 token endpoint down",
             _serve(V2, _fault(token, status=503), expire_tokens=True), "unchanged"),
        Case("8 empty uuid list", _serve(dict(V2, uuids=[])), "unchanged", held=True),
        Case("9 unknown uuids, details 404", _serve(unknown), "unchanged", held=True),
        Case("10 memcached out of memory", _serve(oom), "invariant",
             memcached={"memory_mb": 2, "extra_args": ["-M"]}, refused=added),
        Case("11 new program over the item size", _serve(too_big), "model",
             lambda: expected(V2), memcached={"item_size": "256k"}),
        Case("12 key the django key function refuses", _serve(bad_key), "model",
             lambda: expected(V2), config={"key_function": "django"}),
    ]


def ended(e):
    """Whether event e ends a refresh (refresh_scheduled follows every
    refresh once the retry schedule exists)."""
    return e.get("event") == "refresh_succeeded" or (
        e.get("event") == "refresh_scheduled" and e.get("after") in ("failure", "success")) \
        or e.get("event") == "refresh_incomplete"


def wait_end(d, since=0, timeout=40.0):
    """The event that ends the first refresh after event index since."""
    deadline = time.monotonic() + timeout
    while True:
        with d._cond:
            for e in d.events[since:]:
                if ended(e):
                    return e
        if not d.running:
            raise AssertionError("daemon exited (%s); stderr tail:\n%s"
                                 % (d.proc.returncode, d.stderr_text[-3000:]))
        if time.monotonic() > deadline:
            raise AssertionError("no refresh end within %.0fs; stderr tail:\n%s"
                                 % (timeout, d.stderr_text[-3000:]))
        time.sleep(0.02)


def dump(mc):
    """{wire key: (flags, bytes)} of everything in memcached."""
    return {k: mc.get(k) for k in mc.dump_keys()}


def name_of(wire):
    """A wire key as a person reads it."""
    return unquote_plus(wire.split(":", 2)[-1])


class FailureMatrix(PcdTestCase):
    """Modes x faults; one subTest per fault."""

    def setUp(self):
        super().setUp()
        self.fake = self.start_fake(V1, require_auth=True)
        self.cases = _cases()

    def test_once(self):
        self.matrix("once")

    def test_sighup(self):
        self.matrix("sighup")

    def test_restart(self):
        self.matrix("restart")

    def matrix(self, mode):
        for case in self.cases:
            with self.subTest(mode=mode, fault=case.name):
                self.run_case(mode, case)

    # -- one case --------------------------------------------------------------

    def cache_for(self, case):
        """The cache server of one case, its config section and reader."""
        mc = Memcached(**case.memcached)
        mc.start()
        mem = {"servers": mc.address, "key_function": "edx"}
        mem.update(case.config)
        return mc, ("memcached", mem), self.reader([mc], key_function=mem["key_function"])

    def run_case(self, mode, case):
        self.fake.clear_faults()
        self.fake.set_catalogue(V1)
        mc, (section, mem), r = self.cache_for(case)
        d = None
        try:
            cfg = self.config(self.fake, [], [(SITE, 1, "")], discovery=DISCOVERY,
                              daemon={"refresh_interval": "1h"})
            del cfg["memcached"]
            cfg = dict([(section, mem)] + list(cfg.items()))
            tag = "%s-%s" % (mode, case.name.split()[0])
            d = self.daemon(cfg, name=tag)
            before, rc, events = self.run_mode(mode, case, d, r, mc)
            self.check(case, mode, r, mc, before, rc, events)
        finally:
            if d is not None:
                d.close()
            if r is not None:
                r.close()
            mc.kill9()

    def run_mode(self, mode, case, d, r, mc):
        """The good run, then the fault and the run under test: (the cache
        after the good run, --once's exit code or None, the events of the
        run under test)."""
        if mode == "once":
            res = d.run_once()
            self.assertEqual(res.returncode, 0, "good run: " + res.stderr[-2000:])
            self.assertCacheMatches(r, expected(V1), "good run")
            before = dump(mc)
            case.serve(self.fake)
            res = d.run_once()
            return before, res.returncode, res.events
        d.start()
        first = wait_end(d)
        self.assertEqual(first["event"], "refresh_succeeded", "good run")
        self.assertCacheMatches(r, expected(V1), "good run")
        if mode == "sighup":
            before = dump(mc)
            case.serve(self.fake)
            mark = d.mark()
            d.send_signal(signal.SIGHUP)
        else:
            self.assertEqual(d.stop(), 0)
            before = dump(mc)
            case.serve(self.fake)
            d.start()
            mark = 0
        wait_end(d, mark)
        time.sleep(0.2)  # nothing may change the cache after the refresh either
        with d._cond:
            events = list(d.events[mark:])
        return before, None, events

    # -- what the rules say -----------------------------------------------------

    def check(self, case, mode, r, mc, before, rc, events):
        """Every rule the case breaks, in one failure message."""
        problems = []
        if rc is not None and rc != 1:
            problems.append("--once exited %s, not 1 (a failure)" % rc)
        names = [e.get("event") for e in events]
        if case.never_succeeded and "refresh_succeeded" in names:
            problems.append("a failed refresh logged refresh_succeeded")
        if case.held and "publish_held" not in names:
            problems.append("no publish_held")
        if case.expect == "unchanged":
            problems += self.unchanged(mc, before)
        elif case.expect == "model":
            problems += self.model(r, mc, before, case.model(), case.kept)
        else:
            problems += self.indexes_resolve(r)
            there = r.get_many(["program-" + u for u in case.refused])
            if case.refused and len(there) == len(case.refused):
                problems.append("the fault did not happen: memcached stored every "
                                "added program")
        if problems:
            self.fail("%d problems:%s" % (len(problems),
                                          "\n  ".join([""] + problems[:25])))

    def unchanged(self, mc, before):
        """Every key in memcached is byte-identical to before."""
        after = dump(mc)
        diffs = ["gone: %s" % name_of(k) for k in sorted(set(before) - set(after))]
        diffs += ["new: %s" % name_of(k) for k in sorted(set(after) - set(before))]
        diffs += ["changed: %s" % name_of(k) for k in sorted(set(after) & set(before))
                  if after[k] != before[k]]
        return diffs

    def model(self, r, mc, before, model, kept):
        """Exactly the keys of model and of v1 are in memcached; kept keys,
        and v1 keys the model does not have, hold their old bytes; every
        other key reads as the model's value."""
        old = expected(V1)
        want = set(model) | set(old)
        wire = {r.make_key(k): k for k in want}
        have = mc.dump_keys()
        diffs = ["missing: %s" % wire[w] for w in sorted(set(wire) - have)]
        diffs += ["unexpected: %s" % name_of(w) for w in sorted(have - set(wire))]
        same_bytes = set(kept) | (set(old) - set(model))
        for k in sorted(same_bytes):
            w = r.make_key(k)
            if w in have and mc.get(w) != before.get(w):
                diffs.append("not kept: %s" % k)
        by_value = [k for k in model if k not in same_bytes]
        got = r.get_many(by_value)
        for k in by_value:
            if k in got:
                d = first_difference(model[k], got[k])
                if d:
                    diffs.append("differs: %s: %s" % (k, d))
        return diffs

    def indexes_resolve(self, r):
        """No index names a program whose program-* key is absent."""
        keys = set(expected(V1)) | set(expected(V2))
        # Every program any index could name, v1, v2 and added ones.
        got = r.get_many(keys)
        names = {}
        for k, v in got.items():
            if k.startswith(INDEX_PREFIXES):
                names[k] = list(v)
            elif k.startswith("pathway-") and not k.startswith("pathway-ids-"):
                names[k] = list(v.get("program_uuids", []))
        if "program-uuids-" + SITE not in names:
            return ["program-uuids-%s is not in the cache" % SITE]
        listed = {u for v in names.values() for u in v}
        present = r.get_many(["program-" + u for u in listed])
        dangling = sorted("%s names %s" % (k, u) for k, v in names.items() for u in v
                          if "program-" + u not in present)
        return ["index names a program not in the cache: " + x for x in dangling]


class RedisCache:
    """A redis-server as the matrix handles a memcached: start, kill9,
    dump_keys and raw get (the pickle bytes alone: Redis has no flags)."""

    def __init__(self, **kw):
        self.srv = RedisServer(**kw)

    def start(self):
        self.srv.start()
        return self

    def kill9(self):
        self.srv.close()

    def dump_keys(self):
        return self.srv.keys(1)

    def get(self, key):
        c = self.srv.client(1)
        try:
            return c.get(key)
        finally:
            c.close()


class FailureMatrixOnRedis(FailureMatrix):
    """The same modes and faults with Tutor's Redis as the cache, read
    through django-redis (key function django, as Tutor).  Out of memory
    is maxmemory with noeviction (SET refused with -OOM).  Faults 11 and 12
    are memcached's alone: Redis takes values up to 512 MB and keys with
    spaces."""

    def setUp(self):
        super().setUp()
        oom = [c for c in self.cases if c.name.startswith("10 ")][0]
        self.cases = [c for c in self.cases if c.name.split()[0] in
                      ("1", "2", "3", "4", "5", "6", "7", "8", "9")]
        self.cases.append(Case("10 redis out of memory", oom.serve, "invariant",
                               memcached={"maxmemory": 2 * 1024 * 1024},
                               refused=oom.refused))

    def cache_for(self, case):
        rc = RedisCache(**case.memcached).start()
        r = RedisReader(rc.srv)
        self.addCleanup(r.close)
        return rc, ("redis", {"url": rc.srv.url(1)}), r


class Scenario(PcdTestCase):

    def test_keeping_old_values_is_observable(self):
        """v1 and v2 differ where the rules keep old values, so that the
        matrix can tell kept from updated."""
        e1, e2 = expected(V1), expected(V2)
        self.assertEqual(set(e1), set(e2))
        pid = lambda e: {k: v["pathway_ids"] for k, v in e.items()
                         if k.startswith("program-") and not k.startswith("program-uuids-")}
        # Titles change everywhere; pathway_ids of some programs change.
        self.assertTrue(all(e1[k]["title"] != e2[k]["title"] for k in pid(e1)))
        self.assertNotEqual(pid(e1), pid(e2))
        self.assertNotEqual(e1["program-" + FAILED]["pathway_ids"],
                            e2["program-" + FAILED]["pathway_ids"])
        # A pathway is renamed, one gains a program, one loses one.
        changed = [k for k in e1 if k.startswith("pathway-") and e1[k] != e2[k]]
        self.assertEqual(len(changed), 2, changed)
        # Keeping the failed program in its indexes differs from dropping it.
        gone = expected(dict(V2, uuids=[u for u in UUIDS if u != FAILED]))
        self.assertNotEqual({k: v for k, v in gone.items() if k.startswith(INDEX_PREFIXES)},
                            {k: v for k, v in e2.items() if k.startswith(INDEX_PREFIXES)})


# --- start-up and the retry schedule ------------------------------------------------

def http_get(address, path, timeout=5):
    host, port = address.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        c.request("GET", path)
        resp = c.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        c.close()


def ts(e):
    """An event's timestamp in seconds."""
    return datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class DiscoveryDown(PcdTestCase):

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.fake = self.start_fake(V1)

    def test_no_ready_without_a_publish_even_after_a_restart(self):
        """Discovery down and no snapshot: /readyz 503 and STATUS= "not
        ready" (READY=1 only says the daemon runs); no snapshot of nothing
        is saved, so a restart is not ready either."""
        self.fake.set_fault(lambda req: True, kind="status", status=503)
        d = self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, "")],
                                    discovery=dict(DISCOVERY, retries=0),
                                    daemon={"refresh_interval": "1h",
                                            "listen": "127.0.0.1:0"}),
                        notify=True)
        snapshot = d.state_dir / SNAPSHOT
        for start in (1, 2):
            with self.subTest(start=start):
                since = len(d.notify.messages)
                d.start()
                addr = d.wait_event("listening")["address"]
                end = wait_end(d)
                self.assertEqual(end["event"], "refresh_incomplete")
                status = d.notify.wait("STATUS=last refresh", since=since, prefix=True)
                self.assertIn("not ready: nothing published yet", status)
                self.assertEqual(http_get(addr, "/readyz")[0], 503)
                self.assertEqual(d.stop(), 0)
                self.assertFalse(snapshot.exists(), "a snapshot of nothing was saved")
                self.assertEqual(self.mc.dump_keys(), set())


class RetrySchedule(PcdTestCase):

    def test_failed_refresh_backs_off_then_returns_to_the_interval(self):
        """failed_refresh_retry = 1s: retries after ~1, ~2, ~4 s (times a
        jitter in [1, 1.2)); a success schedules the next one at
        refresh_interval (1 h +/- 10 %) and nothing runs before it."""
        mc = self.start_memcached()
        fake = self.start_fake(V1)
        down = fake.set_fault(fake.uuids_path(), kind="status", status=503)
        d = self.daemon(self.config(fake, [mc], [(SITE, 1, "")],
                                    discovery=dict(DISCOVERY, retries=0),
                                    daemon={"refresh_interval": "1h",
                                            "failed_refresh_retry": "1s"}))
        d.start()
        after = lambda what: (lambda e: e.get("after") == what)
        sched = []
        for n in range(3):
            sched = d.wait_events("refresh_scheduled", n + 1, timeout=20,
                                  predicate=after("failure"))
            delay = int(sched[n]["delay_ms"])
            base = 1000 * 2 ** n
            self.assertGreaterEqual(delay, base, sched[n])
            self.assertLess(delay, base * 1.2, sched[n])
        # Discovery is back before the fourth refresh starts.
        fake.clear_faults()
        self.assertEqual(down.hits, 3)
        ok = d.wait_event("refresh_scheduled", timeout=20, predicate=after("success"))
        delay = int(ok["delay_ms"])
        self.assertGreaterEqual(delay, 3600_000 * 0.9, ok)
        self.assertLessEqual(delay, 3600_000 * 1.1, ok)
        started = d.events_named("refresh_started")
        self.assertEqual(len(started), 4)
        self.assertEqual(len(d.events_named("refresh_succeeded")), 1)
        # Real timing: each retry starts its delay after it was scheduled.
        for s, nxt in zip(sched, started[1:]):
            gap = ts(nxt) - ts(s)
            want = int(s["delay_ms"]) / 1000
            self.assertGreater(gap, want - 0.05, (s, nxt))
            self.assertLess(gap, want + 0.75, (s, nxt))
        self.assertCacheMatches(self.reader([mc]), expected(V1))
        time.sleep(3)
        self.assertEqual(len(d.events_named("refresh_started")), 4)
        self.assertEqual(d.stop(), 0)


class DomainMode(PcdTestCase):
    """--domain refreshes one site and keeps the others as the state file
    records them; the failure rules hold for that site as in every mode,
    and the next full run still knows every site's previous values."""

    B = "b.example.com"

    def setUp(self):
        super().setUp()
        self.mc = self.start_memcached()
        self.cat_b = catalog.without_spaces(catalog.generate(
            6, seed=77, fanout=1, runs_per_course=1, courses_per_program=1,
            dangling_pathway=False, pathway_start_id=50))
        self.fake = self.start_fake(sites={"": V1, "/b": self.cat_b})
        self.d = self.daemon(self.config(self.fake, [self.mc], [(SITE, 1, ""), (self.B, 2, "/b")],
                                         discovery=DISCOVERY))
        self.r = self.reader([self.mc])

    def raw(self, key):
        return self.mc.get(self.r.make_key(key))

    def test_domain_then_full_run(self):
        rc, _, err = self.d.run_once()
        self.assertEqual(rc, 0, err)
        before = {k: self.mc.get(k) for k in self.mc.dump_keys()}
        b2 = catalog.revise(self.cat_b, pathways=False)
        failed, other = self.cat_b["uuids"][1], self.cat_b["uuids"][2]
        self.fake.set_catalogue(b2, prefix="/b")
        self.fake.set_catalogue(catalog.revise(V1, pathways=False))
        self.fake.set_fault(self.fake.program_path(failed, "/b"), kind="status", status=500)

        # --domain b: b's failed program keeps its bytes and its place,
        # b's others are new, and nothing of site a is written.
        rc, _, err = self.d.run_once("--domain", self.B)
        self.assertEqual(rc, 1, err)
        self.assertEqual(self.raw("program-" + failed), before[self.r.make_key("program-" + failed)])
        self.assertTrue(self.r.get("program-" + other)["title"].endswith("(v2)"))
        self.assertEqual(self.r.get("program-uuids-" + self.B), self.cat_b["uuids"])
        for u in V1["uuids"]:
            k = self.r.make_key("program-" + u)
            self.assertEqual(self.mc.get(k), before[k], "site a was written: %s" % u)
        self.assertEqual(self.raw("program-uuids-" + SITE),
                         before[self.r.make_key("program-uuids-" + SITE)])

        # A full run whose list fails for site a: a keeps its values (the
        # state file knows them although the last run was --domain b), and
        # b, now fetched whole, is v2 everywhere.
        self.fake.clear_faults()
        self.fake.set_fault(self.fake.uuids_path(), kind="status", status=500)
        rc, _, err = self.d.run_once()
        self.assertEqual(rc, 1, err)
        for u in V1["uuids"]:
            k = self.r.make_key("program-" + u)
            self.assertEqual(self.mc.get(k), before[k], "site a changed: %s" % u)
        self.assertTrue(self.r.get("program-" + failed)["title"].endswith("(v2)"))
        self.assertEqual(self.r.get("program-uuids-" + self.B), self.cat_b["uuids"])
        self.assertEqual(self.raw("program-uuids-" + SITE),
                         before[self.r.make_key("program-uuids-" + SITE)])
